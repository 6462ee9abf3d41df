"""Leave-objects-out cross-validation of the whole recipe: training, then the refinement's settings.

The 18 alphamatting objects are split into ``--folds`` folds by object (sorted names, every k-th
one). Every setting is chosen on objects scored by networks that never saw them:

1. ``--fold K`` **trains** (``lbsmatte train --hold-out <fold>``: the three networks from scratch
   on composites of the other objects and procedural foregrounds over the training photos, and on
   crops of the other objects' own photographs; the last step's weights are kept, no checkpoint
   is picked on anything), then **scores** every refinement setting of :data:`GRID` on the fold's
   held-out photographs, both trimaps, with the fold's networks (``grid_heldout.json``).
2. ``--report`` (all folds trained) **chooses** each fold's refinement on the *other* folds'
   held-out scores (lowest mean SAD + gradient error), and its final layers (:data:`LAYER_GRID`)
   on the other folds' held-out composites with true F and B (``--composites``), writes them into
   the fold bundle's manifest (``"refinement"``, read by :class:`core.pipeline.Matter`), then
   **evaluates** the fold's held-out objects (``lbsmatte evaluate --ablations``: the pipeline, the
   networks alone, the same pipeline with no networks, closed-form and KNN on the same inputs) and
   puts the folds together: every object is scored once, by networks and settings that never saw
   it.
3. ``--final`` trains on all 18 objects with the same recipe and gives it the settings the folds'
   held-out scores choose all together: the bundle to ship (``--ship``).

Choosing on the networks' own training objects (what this tool did until stop 21) favours
trusting the networks: they have learnt those objects. On fold 0 (stop 21) that choice scored
3.05 SAD on the held-out objects where the held-out objects' own best setting scored 2.64.

Each step is skipped when its output exists, training resumes from its checkpoints, and scores
are cached per frame, so the same command continues after an interruption. A fold's bundle found
there (or given by ``--continue-from``) whose manifest records training on any of the fold's
held-out objects is refused, and an evaluation of objects the fold does not hold out is made
again::

    python tools/cross_validate.py --out runs/cv --fold 0      # then --fold 1, --fold 2
    python tools/cross_validate.py --out runs/cv --report      # runs/cv/report.md and .json
    python tools/cross_validate.py --out runs/cv --final       # runs/cv/final/bundle

Exit status, as ``lbsmatte``'s (``core/cli.py``): 0 done; 1 a failure (a training that failed, a
fold missing); 2 a usage error (a bad value, a missing folder or bundle); 3 a training stopped
before the end (``--max-minutes``, SIGTERM), checkpointed: the same command continues it.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.errors import InputError, WeightsError  # noqa: E402
from core.io import replace_file  # noqa: E402
from core.training.cli import EXIT_STOPPED  # noqa: E402
from core.weights import INHERITED  # noqa: E402

#: The refinement settings scored on each fold's held-out objects (``tolerance``: where each
#: round's conjugate gradients stop, a looser one keeps more of the matting network's alpha;
#: ``knn``: κ of the non-local KNN term, 0 off, with ``knn_neighbours`` near neighbours at
#: position weight ``knn_position`` and half as many by colour; ``network_weight``: μ of the
#: matting network's alpha as a data term, 0 off). Until stop 27 the grid was rounds (1, 3) ×
#: smoothing (1e-4, 3e-4, 1e-3, 3e-3) × confidence_scale (0.03, 0.1, 0.3) × tolerance (1e-3, 1e-4)
#: with neither term: the folds chose 1 or 3 rounds, λ 1e-4 to 1e-3, σ² 0.1 or 0.3; with the KNN
#: term a first look at 9 frames put one round, λ 1e-4 to 3e-4 and σ² 0.1 first. Stop 27's grid,
#: tolerance (1e-3, 1e-4) × κ (0, 0.003, 0.01, 0.03) × μ (0, 1e-4) at pymatting's 20 neighbours
#: and position weight 2.0, chose tolerance 1e-4, κ 0.01 and μ 0 on every fold, for the networks
#: and without them; an exploratory look at the neighbour sets found half the neighbours as good
#: and a weaker position weight better. Stop 28's grid, λ (1e-4, 3e-4, 1e-3) × κ (0, 0.01, 0.02,
#: 0.03) × neighbours (10, 20) × position weight (1.0, 2.0) × the levels, chose λ 1e-4 or 3e-4,
#: κ 0.02 or 0.03, 20 neighbours and position weight 1.0, its lowest, on every fold; a look below
#: that edge found 0.5 and 0.25 better still. Its second run, position weight (0.25, 0.5, 1.0) ×
#: κ (0, 0.02, 0.03), chose 0.25, the edge again; a look below it (stop 29: 0.1, 0.05, 0.02,
#: 0.01, κ 0.02 and 0.03, the networks only) put 0.05 first, then 0.1, then 0.02, with κ 0.02
#: chosen on every fold; a first run of this grid with κ (0, 0.01, 0.02) × position (0.02, 0.05,
#: 0.1) chose κ 0.01 at 0.02 on every fold, both edges, so this one reaches below both; it chose
#: 0.02 again on every fold, now inside the grid, with κ 0.01 (fold 0) or 0.005 (the lowest above
#: 0; κ 0 scores far worse). Below 0.1 the first search is the more colour-led of the two (the
#: second's position weight is 0.1). Its second run kept κ (0, 0.005, 0.01) × position weight
#: (0.02, 0.05) and added ``sample_alpha`` (network, half): an exploratory look (stop 29) found the
#: matting network's alpha costing the round through the first F/B solve.
#: Stop 50 tried ``unsolved`` (the first round reads alpha off the networks' F and B with no solve:
#: stop 49 found the solve for 0.5 pulling the prior of alphas above 0.5 down on long ramps): no
#: fold chose it, and on GT16, where the matting network is confidently wrong, it doubled the SAD
#: (10.0 against 21.7); it is not in the grid. Stop 50 put two and three rounds back (one round
#: since stop 27, when the KNN term came in; the levels came later) and fixed the KNN term's
#: position weight at 0.02 and its band at 32 px, chosen on every fold and pooled in stops 37 and
#: 39 (the nested answer is the same to the last digit with those two fixed).
#: ``network_weight`` stays at 0: stop 32 scored μ 3e-4 to 1e-2 on the neighbourhood of the
#: shipped choice, with the data term gated by agreement (:data:`core.compositing.NETWORK_AGREEMENT`)
#: and without, for stop 29's fold networks and for matting networks trained for the result, and
#: every μ above 0 lost once chosen on the other folds (docs/cross_validation/HISTORY.md).
#: ``black_point`` and ``white_point``: the levels of the refined alpha (a faint haze at 0 and 1;
#: white 0.96, the lowest of stop 28's grid, was chosen on every fold, so 0.92 is tried too).
#: ``knn_band``: the KNN term's searches find known pixels only within this many px of the
#: unknown region (0: the whole region), a cut in the term's cost (stop 36); stop 37's run chose
#: 32 on every fold and pooled. ``knn_stride``: only the unknown pixels on every third row and
#: column search (each pair counting 9 times), fixed for speed as the tolerance is (stop 51 scored
#: 1e-5 at each fold's choice: the same matte at twice the iterations), the rest chosen
#: at it (stop 39: held out as good as stride 1, the term's time a third; the scores of stop 37's
#: keys, without it, are stride 1's and stay in the kept caches).
GRID = {"rounds": (1, 2, 3), "smoothing": (0.0001, 0.0003), "confidence_scale": (0.1,),
        "tolerance": (0.0001,), "knn": (0.0, 0.005, 0.01), "network_weight": (0.0,),
        "knn_neighbours": (20,), "knn_position": (0.02,), "knn_band": (32,), "knn_stride": (3,),
        "black_point": (0.0, 0.03, 0.06, 0.09), "white_point": (1.0, 0.96, 0.92),
        "sample_alpha": ("network", "half")}
#: The settings of the KNN term's neighbour sets (nothing to a setting without the term).
KNN_KEYS = ("knn_neighbours", "knn_position", "knn_band", "knn_stride")
#: The weights of the background against the foreground in the exact agreement with the plate
#: (:class:`core.compositing.Settings` ``agree_ratio``).
AGREE_RATIOS = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
#: How the final F and B are made (:class:`core.compositing.Settings` ``layers``, ``layer_prior``,
#: ``layer_space``, ``agree_ratio``), chosen on held-out composites with true F and B.
LAYER_GRID = tuple(
    [{"layers": "solve", "layer_prior": None, "layer_space": "solve", "agree_ratio": r} for r in AGREE_RATIOS]
    + [{"layers": "multilevel", "layer_prior": p, "layer_space": space, "agree_ratio": r}
       for p in (0.0, 0.03, 0.3) for space in ("solve", "display") for r in AGREE_RATIOS])
#: What the layers' choice writes into the manifest's ``"refinement"``.
LAYER_KEYS = ("layers", "layer_prior", "layer_space", "agree_ratio")
VARIANTS = ("Trimap1", "Trimap2")
#: A fold's results made by its networks (the priors' grid scores and the classical methods' levels
#: scores involve none): they are the fold's only while its bundle holds the networks that made them.
NETWORK_RESULTS = ("grid_heldout.json", "layers_heldout.json", "evaluation.json", "composites.json")
#: Where a fold records which networks (the sha256 of each file) its :data:`NETWORK_RESULTS` are of.
SCORED_BY = "scored_by.json"
METHODS = ("lbsmatte", "networks_alone", "no_networks", "closed_form", "knn")


def objects(data_root: Path) -> list[str]:
    from core.training.data import object_names

    am = data_root / "alphamatting"
    names = object_names(am)
    if not names:
        raise InputError(f"no alphamatting objects with alpha in {am}")
    return names


def folds(names: list[str], k: int) -> list[list[str]]:
    """``k`` folds by object: every k-th name of the sorted list."""
    if not 2 <= k <= len(names):
        raise InputError(f"--folds must be between 2 and {len(names)}, not {k}")
    return [names[i::k] for i in range(k)]


def _atomic_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    replace_file(tmp, path)  # core's one os.replace: retried on Windows while a reader holds the file
    _gzipped(path).unlink(missing_ok=True)  # the plain file made now supersedes a kept copy


def _gzipped(path: Path) -> Path:
    """Where a score cache ``path`` is kept gzipped. docs/cross_validation/folds keeps the grid
    scores so (9 MB of JSON each, 0.5 MB gzipped): the checkout must be small enough to travel to
    a GPU machine with its payload (64 MiB in all, tools/gpu_train.py)."""
    return path.with_name(path.name + ".gz")


def _exists(path: Path) -> bool:
    """A score cache at ``path``, plain or gzipped (:func:`_gzipped`)."""
    return path.exists() or _gzipped(path).exists()


def _read_json(path: Path, default: Any = None) -> Any:
    """The JSON at ``path``, else at its gzipped copy (:func:`_gzipped`), else ``default``."""
    import gzip

    if path.exists():
        return json.loads(path.read_text())
    if _gzipped(path).exists():
        with gzip.open(_gzipped(path), "rt", encoding="utf-8") as f:
            return json.load(f)
    return default


def check_held_out(bundle: Path, held_out: list[str]) -> None:
    """Refuse a fold's ``bundle`` whose networks were trained on any of the fold's ``held_out``
    objects, as its manifest records them (:func:`core.training.cli.trained_objects`, the bundles
    it was trained on from included): one found in the fold's folder (a fold of a run with another
    ``--folds`` or ``--data``, a bundle copied in) or given by ``--continue-from`` would score its
    held-out objects with networks that learnt them."""
    from core.training.cli import trained_objects

    path = bundle / "manifest.json"
    seen = sorted(set(held_out) & trained_objects(json.loads(path.read_text())))
    if seen:
        raise SystemExit(f"{bundle} was trained on {', '.join(seen)} (its manifest's training data), which this fold "
                         f"holds out ({', '.join(held_out)}): its scores would not be held out; train the fold anew "
                         "in another --out, or run with the --folds and --data of the run that trained it")


def train(out: Path, held_out: list[str], args: argparse.Namespace) -> Path:
    """The fold's bundle (trained now, or resumed, or found; never one trained on ``held_out``)."""
    bundle = out / "bundle"
    if (bundle / "manifest.json").exists():
        check_held_out(bundle, held_out)
        return bundle
    # Networks trained now: whatever an earlier bundle in this folder scored is not theirs.
    _unlink(*(out / name for name in (*NETWORK_RESULTS, SCORED_BY)))
    command = [
        sys.executable, "-m", "core.cli", "train", "--out", str(bundle), "--run-dir", str(out / "run"),
        "--hold-out", ",".join(held_out), "--steps", args.steps, "--real-photos", str(args.real_photos),
        "--ema", str(args.ema), "--seed", str(args.seed), "--precision", args.precision, "--no-progress",
        "--description", (f"cross-validation fold: trained without {','.join(held_out)}" if held_out else "trained on all alphamatting objects with the cross-validated recipe (tools/cross_validate.py)"),
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.decay_steps:
        command += ["--decay-steps", str(args.decay_steps)]
    if args.continue_from:  # the same fold (or the final) of an earlier run, trained further
        parent = args.continue_from / out.name / "bundle"
        if not (parent / "manifest.json").exists():
            raise SystemExit(f"--continue-from: no bundle at {parent}")
        check_held_out(parent, held_out)
        command += ["--from", str(parent)]
        if getattr(args, "result_weight", 0.0):
            # Trained for the result of the refinement that fold's bundle runs (chosen by the earlier
            # run on the other folds), with the matting network's alpha as a data term.
            command += ["--result-weight", str(args.result_weight), "--result-refinement", str(parent),
                        "--result-network-weight", str(args.result_network_weight)]
    elif getattr(args, "result_weight", 0.0):
        raise SystemExit("--result-weight needs --continue-from: the refinement it trains for is that bundle's")
    if getattr(args, "lr", None) is not None:
        command += ["--lr", str(args.lr)]
    if args.data:
        command += ["--data", str(args.data)]
    if getattr(args, "rendered", None) is not None:  # no object in them: the same renders serve every fold
        command += ["--rendered", str(args.rendered), "--rendered-fraction", str(args.rendered_fraction)]
    if args.max_minutes:
        command += ["--max-minutes", str(args.max_minutes)]
    print("$", " ".join(command), flush=True)
    code = _train(command)
    if code == EXIT_STOPPED:  # --max-minutes or a SIGTERM: not an error, lbsmatte train's own 3 passed on
        print(f"training of {out} stopped before the end; run the same command again to continue", flush=True)
        raise SystemExit(EXIT_STOPPED)
    if code != 0:
        raise SystemExit(f"training of {out} failed (exit {code})")
    return bundle


def _train(command: list[str]) -> int:
    """Run ``lbsmatte train`` as a child and wait for it. A SIGTERM or SIGINT sent to this process
    alone (a scheduler's kill, ``timeout``) is passed on, so the child checkpoints and stops
    (exit 3) instead of training on orphaned; a terminal's Ctrl-C reaches both already."""
    children: list[subprocess.Popen[bytes]] = []

    received: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        received.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        children.append(subprocess.Popen(command, cwd=ROOT))
        for signum in received:  # one that came while the child was being started
            children[0].send_signal(signum)
        return children[0].wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _read_frame(data_root: Path, name: str, variant: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from core.io import read_image
    from core.trimap import normalise_trimap

    am = data_root / "alphamatting"
    image = read_image(am / "image" / f"{name}.png")
    plate = image.pixels[..., [image.channels.index(c) for c in "RGB"]]
    trimap = normalise_trimap(read_image(am / "trimap" / variant / f"{name}.png").pixels[..., 0])
    alpha = read_image(am / "alpha" / f"{name}.png").pixels[..., 0]
    return plate, trimap, alpha


def _batch_of_one(a: np.ndarray) -> Any:
    """``H×W`` or ``H×W×C`` numpy as a ``1×C×H×W`` float32 tensor."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1) if a.ndim == 3 else a[None]))[None].float()


def settings_grid() -> list[dict[str, Any]]:
    """Every combination of :data:`GRID`."""
    return [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]


def _alike(key: str, priors: bool = False) -> str:
    """The key of the setting that refines as ``key`` does: with κ = 0 the KNN term's neighbour
    sets and band are those of :data:`GRID`'s first entries; for the parameter-free priors (``priors``),
    whose alpha is 0.5 already, ``sample_alpha`` ``half`` is ``network``, and the matting
    network's data term (``network_weight``) is not there at all, as in ``lbsmatte evaluate``'s
    ablation (a pull toward their constant 0.5 would only handicap them)."""
    setting = json.loads(key)
    if not setting.get("knn"):
        setting |= {k: GRID[k][0] for k in KNN_KEYS if k in setting}
    if priors and setting.get("sample_alpha") == "half":
        setting["sample_alpha"] = "network"
    if priors and "network_weight" in setting:
        setting["network_weight"] = 0.0
    return json.dumps(setting, sort_keys=True)


def _knn_key(setting: dict[str, Any]) -> tuple[int, float, int, int]:
    """What builds a setting's KNN term: neighbours, position weight, band and stride (a key
    scored before a setting was in the grid has its default: band 0, stride 1)."""
    return (setting["knn_neighbours"], setting["knn_position"], setting.get("knn_band", 0), setting.get("knn_stride", 1))


def _scorer(gt: np.ndarray, trimap: np.ndarray) -> Any:
    """``alpha -> (SAD, gradient error)`` against ``gt`` on the unknown region's bounding box plus
    the gradient kernel's reach (the same sums as on the whole frame, a fraction of the work)."""
    from core.metrics import gradient_error, sad, unknown_region

    rows, cols = np.nonzero(unknown_region(trimap))
    if not rows.size:
        return lambda alpha: (sad(alpha, gt, trimap), gradient_error(alpha, gt, trimap))
    reach = 8  # ≥ the σ = 1.4 kernel's half size (4): the region's gradients see only the crop
    box = (slice(max(rows.min() - reach, 0), rows.max() + reach + 1), slice(max(cols.min() - reach, 0), cols.max() + reach + 1))
    gt, trimap = gt[box], trimap[box]
    return lambda alpha: (sad(alpha[box], gt, trimap), gradient_error(alpha[box], gt, trimap))


def grid_scores(bundle: Path, names: list[str], data_root: Path, cache: Path) -> dict[str, dict[str, list[float]]]:
    """``{setting: {"sad": [...], "grad": [...]}}`` over ``names`` × both trimaps: the networks run
    once per frame, each setting of :data:`GRID` refines their output (the pipeline's refinement,
    on the whole frame). ``cache`` keeps each frame's scores; a frame is computed again only for
    the settings it lacks."""
    from tqdm import tqdm

    from core.compositing import Settings, alpha_levels, matting_laplacian, refine
    from core.knn import candidates_within, knn_term, searches
    from core.pipeline import Matter
    from core.trimap import split_trimap

    done: dict[str, Any] = _read_json(cache, {})
    keys = [json.dumps(s, sort_keys=True) for s in settings_grid()]
    priors = str(bundle).strip().lower() == "none"
    frames = [(n, v) for n in names for v in VARIANTS]
    nets = None
    for name, variant in tqdm(frames, desc="refinement settings", unit="frame", file=sys.stderr):
        scores = done.get(f"{name}/{variant}", {})
        missing = [k for k in keys if k not in scores]
        if not missing:
            continue
        if nets is None:  # the networks' own alpha, F and B
            nets = Matter(str(bundle), device="cpu", rounds=0, fg_solve=0)
        plate, trimap, gt = _read_frame(data_root, name, variant)
        out = nets.matte(plate, trimap, colour="srgb")
        img, tri = _batch_of_one(plate), _batch_of_one(trimap)
        fg_known, _, unknown = split_trimap(tri[0, 0])
        lap = matting_laplacian(img[0], unknown, fg_known)
        score = _scorer(gt, trimap)
        knn: dict[tuple[int, float, int, int], Any] = {}  # each neighbour set's term, built once per frame
        for key in missing:
            setting = json.loads(key)
            which = _knn_key(setting)
            if setting["knn"] and which not in knn:
                knn[which] = knn_term(plate, unknown.numpy(), fg_known.numpy(), None, *searches(*which[:2]),
                                      candidates=candidates_within(unknown.numpy(), which[2]), stride=which[3])
        fg, bg = _batch_of_one(out.fg), _batch_of_one(out.bg)
        # A round's only state is alpha (F and B are solved afresh from the networks' colours in
        # each), so the settings that differ only in rounds are one run, scored after each count;
        # the levels are a last step on the final alpha, each scored on the same run's alpha.
        # Without the KNN term its neighbour sets change nothing: those settings are one run.
        run = sorted({_alike(key, priors) for key in missing} - set(scores))
        groups: dict[str, dict[int, list[tuple[float, float]]]] = {}
        for key in run:
            setting = json.loads(key)
            group = json.dumps(setting | {"rounds": 0, "black_point": 0.0, "white_point": 1.0}, sort_keys=True)
            groups.setdefault(group, {}).setdefault(setting["rounds"], []).append(
                (setting["black_point"], setting["white_point"]))
        for group, counts in groups.items():
            alpha, made = _batch_of_one(out.alpha), 0
            for rounds in sorted(counts):
                setting = json.loads(group) | {"rounds": rounds - made}
                if setting["rounds"]:
                    term = knn.get(_knn_key(setting))
                    alpha = refine(img, tri, alpha, fg, bg, Settings(**setting), laplacian=lap, knn=term).alpha
                made = rounds
                for black, white in counts[rounds]:
                    a = (alpha_levels(alpha, black, white) if rounds else alpha)[0, 0].numpy()
                    key = json.dumps(setting | {"rounds": rounds, "black_point": black, "white_point": white},
                                     sort_keys=True)
                    scores[key] = score(a)
        for key in missing:
            scores[key] = scores[_alike(key, priors)]
        done[f"{name}/{variant}"] = scores
        _atomic_json(cache, done)
    table: dict[str, dict[str, list[float]]] = {k: {"sad": [], "grad": []} for k in keys}
    for name, variant in frames:
        for key in keys:
            s_sad, s_grad = done[f"{name}/{variant}"][key]
            table[key]["sad"].append(s_sad)
            table[key]["grad"].append(s_grad)
    return table


def choose(table: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """The setting with the lowest mean SAD + mean gradient error."""
    best = min(table, key=lambda s: np.mean(table[s]["sad"]) + np.mean(table[s]["grad"]))
    return json.loads(best) | {"sad": float(np.mean(table[best]["sad"])), "grad": float(np.mean(table[best]["grad"]))}


def pool(tables: list[dict[str, dict[str, list[float]]]]) -> dict[str, dict[str, list[float]]]:
    """Score tables of different objects put together (the settings every table has)."""
    keys = [k for k in tables[0] if all(k in t for t in tables)]
    return {k: {m: sum((t[k][m] for t in tables), []) for m in ("sad", "grad")} for k in keys}


def nested_choices(tables: list[dict[str, dict[str, list[float]]]]) -> list[dict[str, Any]]:
    """For each fold, :func:`choose` on the other folds' tables (``tables[i]``: fold ``i``'s
    settings scored on its held-out objects by its own networks)."""
    return [choose(pool([t for j, t in enumerate(tables) if j != i])) for i in range(len(tables))]


def write_choice(bundle: Path, choice: dict[str, Any], names: list[str]) -> bool:
    """Record the chosen refinement settings in the bundle's manifest (read by ``Matter``), the
    layers recorded there kept; whether the alpha settings changed."""
    from core.compositing import Settings

    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    old = manifest.get("refinement") or {}
    if INHERITED in old:  # taken from the bundle it was trained from: nothing chosen for it yet
        old = {}
    defaults = dataclasses.asdict(Settings())  # what a manifest without the setting refines with
    chosen = {k: type(defaults[k])(choice.get(k, defaults[k])) for k in GRID}
    changed = any(old.get(k, defaults[k]) != chosen[k] for k in GRID)
    refinement = chosen | {
        "chosen_on": {"objects": names, "trimaps": list(VARIANTS), "grid": {k: list(v) for k, v in GRID.items()},
                      "scored_by": "each object by the cross-validation fold's networks that held it out",
                      "criterion": "lowest mean SAD + mean gradient error",
                      "sad": choice["sad"], "grad": choice["grad"]},
    }
    if not changed:  # the layers chosen for this alpha still hold
        refinement |= {k: old[k] for k in LAYER_KEYS if k in old}
        if "layers" in old.get("chosen_on", {}):
            refinement["chosen_on"]["layers"] = old["chosen_on"]["layers"]
    manifest["refinement"] = refinement
    trained_on = ((manifest.get("training") or {}).get("data") or {}).get("objects")
    if "training_data_terms" not in manifest and trained_on:  # lbsmatte train cannot know the data's terms
        manifest["training_data_terms"] = shipped_data_terms(list(trained_on))
    _atomic_json(path, manifest)
    return changed


def _composites_of(composites: Path, objects: list[str]) -> list[str]:
    from core.evaluate import find_samples

    samples, _ = find_samples(composites, None, list(VARIANTS))
    return sorted({s.name for s in samples if s.name.split("_")[0] in objects})


def layer_key(entry: dict[str, Any]) -> str:
    """A :data:`LAYER_GRID` entry as the key of the score tables."""
    return json.dumps(entry, sort_keys=True)


def layer_scores(bundle: Path, names: list[str], composites: Path, cache: Path) -> dict[str, dict[str, float]]:
    """``{layer_key: {"fg_sad", "bg_sad", "sad"}}``: each :data:`LAYER_GRID` entry's mean errors
    on the composites of ``names`` (both trimaps), the bundle's refinement otherwise as recorded.

    The layers are the refinement's last step, made for the final alpha: each frame is matted once
    (its alpha, which no entry changes) and its networks' own layers are read once, then every
    entry makes the layers for that alpha as :func:`core.compositing.refine` does after its last
    round (the same crop, space, clip and agreement as :class:`core.pipeline.Matter`), scored as
    ``lbsmatte evaluate`` scores them. ``cache`` keeps each frame's scores."""
    import torch
    from tqdm import tqdm

    from core.colour import from_display, from_linear, to_display, to_linear
    from core.compositing import Settings, refine
    from core.evaluate import _display, _read_alpha, _read_plate, _read_trimap, find_samples
    from core.metrics import background_error, foreground_error, sad
    from core.pipeline import Matter
    from core.trimap import split_trimap

    samples, _ = find_samples(composites, _composites_of(composites, names), list(VARIANTS))
    done: dict[str, Any] = _read_json(cache, {})
    keys = [layer_key(e) for e in LAYER_GRID]
    frames = [(s, v) for s in samples for v in VARIANTS]
    matters = None
    for sample, variant in tqdm(frames, desc="final layers", unit="frame", file=sys.stderr):
        scores = done.get(f"{sample.name}/{variant}", {})
        missing = [k for k in keys if k not in scores]
        if not missing:
            continue
        if matters is None:  # the pipeline as the bundle records it, and the networks alone
            matters = (Matter(str(bundle), device="cpu"), Matter(str(bundle), device="cpu", rounds=0, fg_solve=0))
        matter, nets = matters
        plate, colour = _read_plate(sample.image)
        trimap = _read_trimap(sample.trimaps[variant])
        alpha_gt = _read_alpha(sample.alpha)
        fg_gt = _display(*_read_plate(sample.fg))
        bg_gt = _display(*_read_plate(sample.bg))
        final = matter.matte(plate, trimap, colour=colour)
        raw = nets.matte(plate, trimap, colour=colour)
        linear = matter.solve_space(colour) == "linear"
        into, back = (to_linear, from_linear) if linear else (to_display, from_display)
        _, _, unknown = split_trimap(trimap)
        ys, xs = np.nonzero(unknown)
        h, w = unknown.shape
        crop = (slice(max(0, ys.min() - 2), min(h, ys.max() + 3)), slice(max(0, xs.min() - 2), min(w, xs.max() + 3)))
        inputs = tuple(_batch_of_one(a[crop]) for a in (into(plate, colour), trimap, final.alpha,
                                                       into(raw.fg, colour), into(raw.bg, colour)))
        u, a_gt = unknown[crop], alpha_gt[crop]
        alpha_sad = sad(final.alpha, alpha_gt, trimap)
        for key in missing:
            entry = json.loads(key)
            settings = Settings(rounds=0, layers=entry["layers"], layer_prior=entry["layer_prior"] or 0.0,
                                layer_space=entry["layer_space"], agree_ratio=entry["agree_ratio"])
            with torch.no_grad():
                made = refine(*inputs, settings, matter.fg_solve, clip=None if linear else (0.0, 1.0), exact=linear)
            fg, bg = (_display(back(t[0].permute(1, 2, 0).numpy(), colour), colour) for t in (made.fg, made.bg))
            scores[key] = (foreground_error(fg, fg_gt[crop], a_gt, u)["fg_sad"],
                           background_error(bg, bg_gt[crop], a_gt, u)["bg_sad"], alpha_sad)
        done[f"{sample.name}/{variant}"] = scores
        _atomic_json(cache, done)
    table = {}
    for key in keys:
        rows = np.array([done[f"{s.name}/{v}"][key] for s, v in frames], dtype=np.float64).reshape(-1, 3)
        table[key] = {"fg_sad": float(rows[:, 0].mean()), "bg_sad": float(rows[:, 1].mean()), "sad": float(rows[:, 2].mean())}
    return table


def choose_layers(tables: list[dict[str, dict[str, float]]]) -> str:
    """The :data:`LAYER_GRID` key with the lowest mean FG SAD + BG SAD over ``tables`` (each a
    :func:`layer_scores` result of equally many composites)."""
    return min(tables[0], key=lambda k: np.mean([t[k]["fg_sad"] + t[k]["bg_sad"] for t in tables]))


def write_layers(bundle: Path, key: str, composites: list[str], scores: list[dict[str, dict[str, float]]]) -> bool:
    """Record the chosen final layers (``key``, a :func:`layer_key`) in the bundle's manifest;
    whether they changed."""
    entry = json.loads(key)
    if entry["layer_prior"] is None:  # not used by these layers: whatever was recorded stays
        entry.pop("layer_prior")
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    refinement = manifest["refinement"]
    changed = any(refinement.get(k) != v for k, v in entry.items())
    refinement.update(entry)
    refinement["chosen_on"]["layers"] = {
        "composites": composites, "grid": [layer_key(e) for e in LAYER_GRID],
        "criterion": "lowest mean FG SAD + BG SAD", "scores": scores,
    }
    _atomic_json(path, manifest)
    return changed


def run_fold(out: Path, held_out: list[str], args: argparse.Namespace) -> None:
    """Train a fold and score the refinement grid on its held-out objects."""
    out.mkdir(parents=True, exist_ok=True)
    data_root = args.data or _default_root()
    started = time.time()
    bundle = train(out, held_out, args)
    own_scores(out, bundle)
    table = grid_scores(bundle, held_out, data_root, out / "grid_heldout.json")
    best = choose(table)
    print(f"{out.name}: trained and scored; its held-out objects alone would pick {best} (not used for this fold)",
          flush=True)
    print(f"{out.name}: done in {time.time() - started:.0f} s", flush=True)


def _networks_of(bundle: Path) -> dict[str, str]:
    """``{role: sha256}`` of the bundle's network files, as its manifest records them."""
    networks = json.loads((bundle / "manifest.json").read_text()).get("networks") or {}
    return {role: str(entry.get("sha256", "")) for role, entry in sorted(networks.items())}


def own_scores(fold: Path, bundle: Path) -> None:
    """Keep only results of the fold's own networks: where :data:`SCORED_BY` names other networks (a
    fold trained anew, a bundle copied in), the :data:`NETWORK_RESULTS` are removed, to be made again
    by the bundle's networks, never reported for them. A fold without the record (one scored before
    it existed) is taken to have been scored by the networks it holds, and recorded so."""
    networks = _networks_of(bundle)
    path = fold / SCORED_BY
    if path.exists():
        if json.loads(path.read_text()).get("networks") == networks:
            return
        stale = [name for name in NETWORK_RESULTS if _exists(fold / name)]
        if stale:
            print(f"{fold.name}: {', '.join(stale)} made by other networks than {bundle}'s: made again", flush=True)
        _unlink(*(fold / name for name in NETWORK_RESULTS))
    _atomic_json(path, {"networks": networks,
                        "note": f"{', '.join(NETWORK_RESULTS)} here were made by these networks (sha256 of each file)"})


def _fold_tables(out: Path, k: int, names: list[str], data_root: Path) -> list[dict[str, dict[str, list[float]]]]:
    tables = []
    for i, held in enumerate(folds(names, k)):
        bundle = out / f"fold{i}" / "bundle"
        if not (bundle / "manifest.json").exists():
            raise SystemExit(f"fold {i} is not trained yet ({bundle} missing): run --fold {i}")
        check_held_out(bundle, held)
        own_scores(out / f"fold{i}", bundle)
        tables.append(grid_scores(bundle, held, data_root, out / f"fold{i}" / "grid_heldout.json"))
    return tables


def _fold_layer_scores(out: Path, parts: list[list[str]], composites: Path) -> list[dict[str, dict[str, float]]]:
    """Each fold's :func:`layer_scores` on its held-out composites."""
    return [layer_scores(out / f"fold{i}" / "bundle", held, composites, out / f"fold{i}" / "layers_heldout.json")
            for i, held in enumerate(parts)]


def _unlink(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
        _gzipped(path).unlink(missing_ok=True)


def prepare(out: Path, k: int, names: list[str], data_root: Path, composites: Path | None) -> None:
    """Choose each fold's settings on the other folds' held-out objects, then evaluate its own
    held-out objects with them (results that a changed choice makes stale are redone)."""
    from core.evaluate import evaluate_dataset

    parts = folds(names, k)
    tables = _fold_tables(out, k, names, data_root)
    for i, choice in enumerate(nested_choices(tables)):
        fold = out / f"fold{i}"
        others = [n for j, p in enumerate(parts) if j != i for n in p]
        if write_choice(fold / "bundle", choice, others):
            _unlink(fold / "layers_heldout.json", fold / "evaluation.json", fold / "composites.json")
        print(f"fold{i}: refinement chosen on {', '.join(others)}: {choice}", flush=True)
    if composites:
        scores = _fold_layer_scores(out, parts, composites)
        for i in range(k):
            others = [j for j in range(k) if j != i]
            key = choose_layers([scores[j] for j in others])
            mine = [c for j in others for c in _composites_of(composites, parts[j])]
            if write_layers(out / f"fold{i}" / "bundle", key, mine, [scores[j] for j in others]):
                _unlink(out / f"fold{i}" / "composites.json")
            print(f"fold{i}: layers chosen on the other folds' composites: {key}", flush=True)
    for i, held in enumerate(parts):
        fold, bundle = out / f"fold{i}", out / f"fold{i}" / "bundle"
        for name in ("evaluation.json", "composites.json"):
            if _scored_beyond(fold / name, held):  # made when the fold held out other objects: made again
                (fold / name).unlink()
        if not (fold / "evaluation.json").exists():
            evaluate_dataset(data_root / "alphamatting", weights=str(bundle), baselines="closed_form,knn",
                             device="cpu", names=held, trimaps=list(VARIANTS), ablations=True,
                             json_path=fold / "evaluation.json", progress=True)
        mine = _composites_of(composites, held) if composites else []
        if mine and not (fold / "composites.json").exists():
            # closed-form + multilevel foreground and the plate are what the layers must beat (KNN's
            # alpha is scored on the photographs; on the composites it would double the time).
            evaluate_dataset(composites, weights=str(bundle), baselines="closed_form", device="cpu", names=mine,
                             trimaps=list(VARIANTS), ablations=True, json_path=fold / "composites.json", progress=True)


def _scored_beyond(path: Path, objects: list[str]) -> list[str]:
    """The images an evaluation at ``path`` (``lbsmatte evaluate --json``: the photographs
    ``GT01``, the composites ``GT01_bg1``) scored of objects not among ``objects``: a fold's kept
    evaluation made when it held out others (another ``--folds`` or ``--data``, with networks
    trained on none of them)."""
    if not path.exists():
        return []
    variants = json.loads(path.read_text()).get("variants") or {}
    return sorted({n for block in variants.values() for n in block.get("images", {}) if n.split("_")[0] not in objects})


def run_final(out: Path, k: int, names: list[str], args: argparse.Namespace) -> None:
    """Train on every object; the settings are those all folds' held-out scores choose together."""
    data_root = args.data or _default_root()
    tables = _fold_tables(out, k, names, data_root)  # before training: fail early when a fold is missing
    parts = folds(names, k)
    if args.composites:
        missing = [i for i in range(k) if not (out / f"fold{i}" / "layers_heldout.json").exists()]
        if missing:
            raise SystemExit(f"fold {missing[0]} has no layer scores on its held-out composites: run --report "
                             "with --composites first")
    final = out / "final"
    final.mkdir(parents=True, exist_ok=True)
    bundle = train(final, [], args)
    choice = choose(pool(tables))
    write_choice(bundle, choice, names)
    print(f"final: refinement chosen on every fold's held-out objects: {choice}", flush=True)
    if args.composites:
        scores = _fold_layer_scores(out, parts, args.composites)
        key = choose_layers(scores)
        write_layers(bundle, key, _composites_of(args.composites, names), scores)
        print(f"final: layers chosen on every fold's held-out composites: {key}", flush=True)


def levels_scores(method: str, names: list[str], data_root: Path, cache: Path) -> dict[str, dict[str, list[float]]]:
    """``{levels: {"sad": [...], "grad": [...]}}`` over ``names`` × both trimaps: a classical
    method's alpha (:data:`core.baselines.BASELINES`) through each of :data:`GRID`'s levels, the
    same last step LBSMatte's refinement is given. ``cache`` keeps each frame's scores."""
    import torch
    from tqdm import tqdm

    from core.baselines import BASELINES
    from core.compositing import alpha_levels

    levels = [{"black_point": b, "white_point": w} for b in GRID["black_point"] for w in GRID["white_point"]]
    keys = [json.dumps(x, sort_keys=True) for x in levels]
    done: dict[str, Any] = _read_json(cache, {})
    frames = [(n, v) for n in names for v in VARIANTS]
    for name, variant in tqdm(frames, desc=f"{method} levels", unit="frame", file=sys.stderr):
        scores = done.get(f"{name}/{variant}", {})
        if all(key in scores for key in keys):
            continue
        plate, trimap, gt = _read_frame(data_root, name, variant)
        alpha = torch.from_numpy(BASELINES[method](plate, trimap))
        score = _scorer(gt, trimap)
        for key, x in zip(keys, levels, strict=True):
            scores[key] = score(alpha_levels(alpha, x["black_point"], x["white_point"]).numpy())
        done[f"{name}/{variant}"] = scores
        _atomic_json(cache, done)
    return {key: {"sad": [done[f"{n}/{v}"][key][0] for n, v in frames],
                  "grad": [done[f"{n}/{v}"][key][1] for n, v in frames]} for key in keys}


def _nested_scores(tables: list[dict[str, dict[str, list[float]]]], names: tuple[str, ...]) -> dict[str, Any]:
    """Each fold scored with the setting (of the fields ``names``) the other folds choose:
    ``{"sad", "grad", "folds": [{"setting", "sad", "grad"}]}``, means over the folds."""
    per_fold = []
    for table, choice in zip(tables, nested_choices(tables), strict=True):
        key = json.dumps({g: choice[g] for g in names}, sort_keys=True)
        per_fold.append({"setting": json.loads(key), "sad": float(np.mean(table[key]["sad"])),
                         "grad": float(np.mean(table[key]["grad"]))})
    return {"sad": float(np.mean([f["sad"] for f in per_fold])),
            "grad": float(np.mean([f["grad"] for f in per_fold])), "folds": per_fold}


def same_chance(out: Path, k: int, names: list[str], data_root: Path) -> dict[str, Any]:
    """The pipeline without networks given the same chance as LBSMatte: the refinement grid scored
    on each fold's held-out objects with the parameter-free priors (``--weights none``) in place of
    the networks (``grid_heldout_none.json``), each fold's setting chosen on the other folds'
    objects as LBSMatte's is, and LBSMatte's own nested grid scores beside it (both scored as
    :func:`grid_scores` scores: the refinement on the whole frame, the networks' raw layers).
    Returns ``{method: {"sad", "grad", "folds": [{"setting", "sad", "grad"}]}}``."""
    parts = folds(names, k)
    result: dict[str, Any] = {}
    for method, cache in (("lbsmatte", "grid_heldout.json"), ("no_networks", "grid_heldout_none.json")):
        tables = [grid_scores(out / f"fold{i}" / "bundle" if method == "lbsmatte" else Path("none"), held, data_root,
                              out / f"fold{i}" / cache) for i, held in enumerate(parts)]
        result[method] = _nested_scores(tables, tuple(GRID))
    # The classical methods given the refinement's last step, its levels chosen as LBSMatte's are.
    for method in ("closed_form", "knn"):
        tables = [levels_scores(method, held, data_root, out / f"fold{i}" / f"levels_{method}.json")
                  for i, held in enumerate(parts)]
        result[f"{method}_levels"] = _nested_scores(tables, ("black_point", "white_point"))
    for metric in ("sad", "grad"):
        result["lbsmatte"][f"{metric}_vs_classical_levels"] = result["lbsmatte"][metric] / min(
            result["closed_form_levels"][metric], result["knn_levels"][metric])
    return result


def report(out: Path, k: int, names: list[str]) -> dict[str, Any]:
    """Every object scored by the fold that held it out: per trimap, the mean of each method."""
    rows: dict[str, dict[str, dict[str, list[float]]]] = {v: {} for v in VARIANTS}
    held: dict[str, list[str]] = {}
    choices: dict[str, Any] = {}
    for i, fold in enumerate(folds(names, k)):
        path = out / f"fold{i}" / "evaluation.json"
        if not path.exists():
            raise SystemExit(f"fold {i} is not evaluated yet ({path} missing): run --fold {i}")
        results = json.loads(path.read_text())
        beyond = _scored_beyond(path, fold)
        if beyond:
            raise SystemExit(f"{path} scores {', '.join(beyond)}, which fold {i} does not hold out ({', '.join(fold)}): "
                             "it was made for other folds; run --report to evaluate the fold again")
        held[f"fold{i}"] = fold
        manifest = json.loads((out / f"fold{i}" / "bundle" / "manifest.json").read_text())
        choices[f"fold{i}"] = {key: manifest["refinement"][key] for key in (*GRID, *LAYER_KEYS)
                               if key in manifest["refinement"]}
        for variant in VARIANTS:
            for scores in results["variants"][variant]["images"].values():
                for method, metrics in scores.items():
                    for metric in ("sad", "mse", "grad", "conn"):
                        if metric in metrics:
                            rows[variant].setdefault(method, {}).setdefault(metric, []).append(metrics[metric])
    means = {v: {m: {metric: float(np.mean(x)) for metric, x in per.items()} | {"images": len(per["sad"])}
                 for m, per in rows[v].items()} for v in VARIANTS}
    both = {m: {metric: float(np.mean([means[v][m][metric] for v in VARIANTS])) for metric in ("sad", "mse", "grad", "conn")}
            for m in METHODS if all(m in means[v] for v in VARIANTS)}
    lines = ["| trimap | method | SAD | MSE | Grad | Conn | images |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for v in VARIANTS:
        for m in METHODS:
            if m in means[v]:
                r = means[v][m]
                lines.append(f"| {v} | {m} | {r['sad']:.2f} | {r['mse']:.4f} | {r['grad']:.2f} | {r['conn']:.2f} | {r['images']} |")
    for m, r in both.items():
        lines.append(f"| both | {m} | {r['sad']:.2f} | {r['mse']:.4f} | {r['grad']:.2f} | {r['conn']:.2f} | |")
    ratios = {}
    if {"lbsmatte", "closed_form", "knn", "no_networks"} <= set(both):
        for metric in ("sad", "grad"):
            classical = min(both["closed_form"][metric], both["knn"][metric])
            ratios[metric] = {"vs_best_classical": both["lbsmatte"][metric] / classical,
                              "vs_no_networks": both["lbsmatte"][metric] / both["no_networks"][metric]}
        lines += ["", "| ratio (both trimaps) | SAD | Grad |", "| --- | --- | --- |",
                  f"| LBSMatte / better of closed-form and KNN | {ratios['sad']['vs_best_classical']:.2f} | {ratios['grad']['vs_best_classical']:.2f} |",
                  f"| LBSMatte / no networks | {ratios['sad']['vs_no_networks']:.2f} | {ratios['grad']['vs_no_networks']:.2f} |"]
    lines += ["", "Held out: " + "; ".join(f"{f}: {', '.join(o)}" for f, o in held.items()),
              "Refinement chosen for each fold on the other folds' held-out objects: "
              + "; ".join(f"{f}: {c}" for f, c in choices.items())]
    layers = _layer_means(out, k, folds(names, k))
    if layers:
        lines += ["", "Composites in linear light with true F and B (held-out objects over held-out photos):", "",
                  "| trimap | method | alpha SAD | FG SAD (α-weighted) | BG SAD ((1−α)-weighted) | images |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for v, per in layers.items():
            for m in (*METHODS, "plate"):
                if m in per:
                    r = per[m]
                    sad_text = f"{r['sad']:.2f}" if "sad" in r else "—"
                    lines.append(f"| {v} | {m} | {sad_text} | {r['fg_sad']:.2f} | {r['bg_sad']:.2f} | {r['images']} |")
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    _atomic_json(out / "report.json", {"means": means, "both_trimaps": both, "ratios": ratios, "held_out": held,
                                       "refinement": choices, "composites": layers})
    print(text)
    return means


def _layer_means(out: Path, k: int, parts: list[list[str]]) -> dict[str, dict[str, dict[str, float]]]:
    """Means over every fold's ``composites.json`` (empty unless all folds have one)."""
    paths = [out / f"fold{i}" / "composites.json" for i in range(k)]
    if not all(p.exists() for p in paths):
        return {}
    for i, path in enumerate(paths):
        beyond = _scored_beyond(path, parts[i])
        if beyond:
            raise SystemExit(f"{path} scores {', '.join(beyond)}, of objects fold {i} does not hold out "
                             f"({', '.join(parts[i])}): it was made for other folds; run --report to evaluate the fold again")
    rows: dict[str, dict[str, dict[str, list[float]]]] = {}
    for path in paths:
        for variant, block in json.loads(path.read_text())["variants"].items():
            for scores in block["images"].values():
                for method, metrics in scores.items():
                    for metric in ("sad", "fg_sad", "bg_sad"):
                        if metric in metrics:
                            rows.setdefault(variant, {}).setdefault(method, {}).setdefault(metric, []).append(metrics[metric])
    return {v: {m: {metric: float(np.mean(x)) for metric, x in per.items()} | {"images": len(per["fg_sad"])}
                for m, per in methods.items()} for v, methods in rows.items()}


def shipped_data_terms(objects: list[str]) -> dict[str, Any]:
    """The ``"training_data_terms"`` of a bundle trained by this tool on ``objects`` of the shared
    data set (:func:`core.training.terms.shared_data_terms`)."""
    from core.training.terms import shared_data_terms

    return shared_data_terms(objects)


def ship(out: Path, dest: Path, report_path: Path | None = None) -> None:
    """The ``--final`` bundle as the packaged ``default``: float16 storage, its manifest's training
    record and chosen refinement kept, the cross-validation report attached (``report_path``,
    default ``out/report.json``; a kept copy such as ``docs/cross_validation/*.json`` when the
    folds ran in an earlier session)."""
    from core.weights import load_bundle, save_bundle

    final = load_bundle(str(out / "final" / "bundle"))
    recorded = final.manifest.get("refinement") or {}
    if not recorded or INHERITED in recorded:  # none, or only those of the bundle it was trained from
        raise SystemExit(f"{final.path} has no refinement settings chosen yet: run --final to the end")
    report_path = report_path or out / "report.json"
    if not report_path.exists():
        raise SystemExit(f"{report_path} missing: run --report first (the bundle ships with its cross-validation)")
    nets = final.load_networks("cpu")
    training = dict(final.manifest["training"]) | {"cross_validation": json.loads(report_path.read_text())}
    # The release step: the one writer allowed to replace a packaged bundle (core/bundles/default).
    trained_on = ((final.manifest.get("training") or {}).get("data") or {}).get("objects")
    terms = final.manifest.get("training_data_terms") or (trained_on and shipped_data_terms(list(trained_on)))
    if not terms:
        raise SystemExit(f"{final.path}'s manifest records neither its training data's terms nor the objects it was "
                         "trained on: the shipped bundle must say under which terms its data may be used")
    bundle = save_bundle(dest, nets, name="default", storage="float16", overwrite=True, replace_packaged=True,
                         training=training, data_terms=terms, description=(
        "small networks trained from scratch on all 18 alphamatting objects (composites with procedural foregrounds "
        "over background photos, and the objects' own photographs) with the recipe evaluated by leave-objects-out "
        "cross-validation (tools/cross_validate.py; its report is under training.cross_validation)"))
    manifest = json.loads((bundle.path / "manifest.json").read_text())
    manifest["refinement"] = final.manifest["refinement"]
    _atomic_json(bundle.path / "manifest.json", manifest)
    print(f"wrote {bundle.path}")


def _default_root() -> Path:
    from core.training.data import default_data_root

    return default_data_root()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the folds' bundles, runs and results")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--fold", type=int, help="train, choose and evaluate this fold (0-based)")
    what.add_argument("--report", action="store_true",
                      help="choose each fold's settings on the other folds' held-out objects, evaluate its own "
                           "held-out objects, and put the folds together")
    what.add_argument("--final", action="store_true",
                      help="train on all objects, with the settings all folds' held-out scores choose: the bundle to ship")
    what.add_argument("--ship", type=Path, metavar="DEST", help="write the --final bundle there as the packaged default")
    parser.add_argument("--cv-report", type=Path, default=None,
                        help="with --ship: the cross-validation report to attach (default OUT/report.json)")
    parser.add_argument("--folds", type=int, default=3, help="number of folds (default 3)")
    parser.add_argument("--data", type=Path, default=None, help="data root (default $LBSMATTE_DATA or ../shared/data)")
    parser.add_argument("--steps", default="1000,1000,900", help="training steps BG,FG,alpha (default 1000,1000,900)")
    parser.add_argument("--decay-steps", type=int, default=0,
                        help="anneal each stage's learning rate linearly to 0 over its last K steps (default 0)")
    parser.add_argument("--continue-from", type=Path, default=None, metavar="OUT",
                        help="start each fold (and the final) from that fold's bundle in an earlier --out, "
                             "--steps more steps per stage, instead of from scratch")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: lbsmatte train's)")
    parser.add_argument("--result-weight", type=float, default=0.0, metavar="W",
                        help="with --continue-from: also train for the result of the refinement that the earlier "
                             "bundle runs (lbsmatte train --result-weight, --result-refinement)")
    parser.add_argument("--result-network-weight", type=float, default=0.001, metavar="MU",
                        help="with --result-weight: the matting network's alpha as a data term of that refinement "
                             "(default 0.001)")
    parser.add_argument("--real-photos", type=float, default=0.5, help="fraction of batches from the training objects' photos")
    parser.add_argument("--rendered", type=Path, default=None, metavar="DIR",
                        help="Blender renders (tools/render_foregrounds.py) drawn among the training foregrounds")
    parser.add_argument("--rendered-fraction", type=float, default=0.3, metavar="FRACTION",
                        help="with --rendered: their share of the training foregrounds (default 0.3)")
    parser.add_argument("--ema", type=float, default=0.99, help="weight averaging decay (default 0.99)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for training")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="the networks' forward passes in training: auto (the default) is bf16 where the CPU "
                             "computes it natively (AVX512-BF16 or AMX) and fp32 where torch would emulate it, "
                             "about 9x slower; each bundle's manifest records which ran")
    parser.add_argument("--composites", type=Path, default=None,
                        help="the objects' composites with true F and B (made by tools/make_validation_composites.py "
                             "--objects all --linear): the final layers are chosen and the FG and BG errors scored on them")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop training cleanly after this long (resumable)")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, not {args.threads}")
    if args.precision == "auto":
        from core.pipeline import cpu_has_bf16

        args.precision = "bf16" if cpu_has_bf16() else "fp32"
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    names = objects(args.data or _default_root())
    parts = folds(names, args.folds)
    if args.ship:
        ship(args.out, args.ship, args.cv_report)
    elif args.report:
        prepare(args.out, args.folds, names, args.data or _default_root(), args.composites)
        report(args.out, args.folds, names)
        chance = same_chance(args.out, args.folds, names, args.data or _default_root())
        lines = ["", "Each refinement chosen for its own inputs (grid scores: whole frame, nested choice per fold):", "",
                 "| method | SAD | Grad | per fold (SAD / Grad) |", "| --- | --- | --- | --- |"]
        for method, r in chance.items():
            folds_text = "; ".join(f"{f['sad']:.2f} / {f['grad']:.2f}" for f in r["folds"])
            lines.append(f"| {method} | {r['sad']:.2f} | {r['grad']:.2f} | {folds_text} |")
        lines.append(f"| LBSMatte / no networks | {chance['lbsmatte']['sad'] / chance['no_networks']['sad']:.2f} | "
                     f"{chance['lbsmatte']['grad'] / chance['no_networks']['grad']:.2f} | |")
        lines.append("| LBSMatte / better classical with levels | "
                     f"{chance['lbsmatte']['sad_vs_classical_levels']:.2f} | "
                     f"{chance['lbsmatte']['grad_vs_classical_levels']:.2f} | |")
        with open(args.out / "report.md", "a") as handle:
            handle.write("\n".join(lines) + "\n")
        data = json.loads((args.out / "report.json").read_text())
        _atomic_json(args.out / "report.json", data | {"same_chance": chance})
        print("\n".join(lines))
    elif args.final:
        run_final(args.out, args.folds, names, args)
    else:
        if not 0 <= args.fold < args.folds:
            parser.error(f"--fold must be between 0 and {args.folds - 1}, not {args.fold}")
        held_out = parts[args.fold]
        run_fold(args.out / f"fold{args.fold}", held_out, args)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (InputError, WeightsError) as exc:  # a missing folder or bundle, a bad value: the message, not a traceback
        print(f"ERROR: {exc}", file=sys.stderr)
        sys.exit(2)
