"""Leave-objects-out cross-validation of the whole recipe: training, then the refinement's settings.

The 18 alphamatting objects are split into ``--folds`` folds by object (sorted names, every k-th
one). For each fold, everything LBSMatte would choose is chosen without it:

1. **train**: ``lbsmatte train --hold-out <fold>`` trains the three networks from scratch on
   composites of the other objects and procedural foregrounds over the training photos, and on
   crops of the other objects' own photographs (the last step's weights are kept: no checkpoint
   is picked on anything);
2. **choose**: the refinement's rounds, λ and σ² are picked on the *training* objects' own
   photographs, both trimaps, from :data:`GRID` (lowest mean SAD + gradient error), and written
   into the fold bundle's manifest (``"refinement"``), where :class:`core.pipeline.Matter` reads
   them;
3. **evaluate**: ``lbsmatte evaluate --ablations`` on the held-out objects' photographs, both
   trimaps: the pipeline, the networks alone, the same pipeline with no networks, closed-form and
   KNN (pymatting's defaults), on the same inputs.

``--report`` puts the folds together: every object is scored once, by the networks that never saw
it. ``--final`` runs steps 1-2 on all 18 objects: the bundle to ship, trained with the same recipe.
Each step is skipped when its output exists, and training resumes from its checkpoints, so the
same command continues after an interruption::

    python tools/cross_validate.py --out runs/cv --fold 0      # then --fold 1, --fold 2
    python tools/cross_validate.py --out runs/cv --report      # runs/cv/report.md and .json
    python tools/cross_validate.py --out runs/cv --final       # runs/cv/final/bundle
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.errors import InputError  # noqa: E402

#: The refinement settings tried on the training objects of each fold.
GRID = {"rounds": (1, 3), "smoothing": (0.0003, 0.001, 0.003, 0.01, 0.03), "confidence_scale": (0.03, 0.1, 0.3)}
#: How the final F and B are made (:class:`core.compositing.Settings` ``layers``, ``layer_prior``),
#: chosen on the training objects' composites, where the true F and B are known.
LAYER_GRID = (("solve", None), ("multilevel", 0.0), ("multilevel", 0.03), ("multilevel", 0.3))
VARIANTS = ("Trimap1", "Trimap2")
METHODS = ("lbsmatte", "networks_alone", "no_networks", "closed_form", "knn")


def objects(data_root: Path) -> list[str]:
    am = data_root / "alphamatting"
    names = sorted(p.stem for p in (am / "image").glob("*.png") if (am / "alpha" / p.name).exists())
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
    os.replace(tmp, path)


def train(out: Path, held_out: list[str], args: argparse.Namespace) -> Path:
    """The fold's bundle (trained now, or resumed, or found)."""
    bundle = out / "bundle"
    if (bundle / "manifest.json").exists():
        return bundle
    command = [
        sys.executable, "-m", "core.cli", "train", "--out", str(bundle), "--run-dir", str(out / "run"),
        "--hold-out", ",".join(held_out), "--steps", args.steps, "--real-photos", str(args.real_photos),
        "--ema", str(args.ema), "--seed", str(args.seed), "--precision", args.precision, "--no-progress",
        "--description", (f"cross-validation fold: trained without {','.join(held_out)}" if held_out else "trained on all alphamatting objects with the cross-validated recipe (tools/cross_validate.py)"),
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.data:
        command += ["--data", str(args.data)]
    if args.max_minutes:
        command += ["--max-minutes", str(args.max_minutes)]
    print("$", " ".join(command), flush=True)
    code = subprocess.call(command, cwd=ROOT)
    if code == 3:
        raise SystemExit(f"training of {out} stopped before the end; run the same command again to continue")
    if code != 0:
        raise SystemExit(f"training of {out} failed (exit {code})")
    return bundle


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


def grid_scores(bundle: Path, names: list[str], data_root: Path, cache: Path) -> dict[str, dict[str, list[float]]]:
    """``{setting: {"sad": [...], "grad": [...]}}`` over ``names`` × both trimaps: the networks run
    once per frame, each setting of :data:`GRID` refines their output (the pipeline's refinement,
    on the whole frame)."""
    from tqdm import tqdm

    from core.compositing import Settings, matting_laplacian, refine
    from core.metrics import gradient_error, sad
    from core.pipeline import Matter
    from core.trimap import split_trimap

    done: dict[str, Any] = json.loads(cache.read_text()) if cache.exists() else {}
    nets = Matter(str(bundle), device="cpu", rounds=0, fg_solve=0)  # the networks' own alpha, F and B
    settings = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    frames = [(n, v) for n in names for v in VARIANTS]
    for name, variant in tqdm(frames, desc="refinement settings", unit="frame", file=sys.stderr):
        key = f"{name}/{variant}"
        if key in done:
            continue
        plate, trimap, gt = _read_frame(data_root, name, variant)
        out = nets.matte(plate, trimap, colour="srgb")
        img, tri = _batch_of_one(plate), _batch_of_one(trimap)
        fg_known, _, unknown = split_trimap(tri[0, 0])
        lap = matting_laplacian(img[0], unknown, fg_known)
        scores = {}
        for s in settings:
            r = refine(img, tri, _batch_of_one(out.alpha), _batch_of_one(out.fg), _batch_of_one(out.bg), Settings(**s), laplacian=lap)
            a = r.alpha[0, 0].numpy()
            scores[json.dumps(s, sort_keys=True)] = (sad(a, gt, trimap), gradient_error(a, gt, trimap))
        done[key] = scores
        _atomic_json(cache, done)
    table: dict[str, dict[str, list[float]]] = {}
    for scores in done.values():
        for s, (s_sad, s_grad) in scores.items():
            row = table.setdefault(s, {"sad": [], "grad": []})
            row["sad"].append(s_sad)
            row["grad"].append(s_grad)
    return table


def choose(table: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """The setting with the lowest mean SAD + mean gradient error."""
    best = min(table, key=lambda s: np.mean(table[s]["sad"]) + np.mean(table[s]["grad"]))
    return json.loads(best) | {"sad": float(np.mean(table[best]["sad"])), "grad": float(np.mean(table[best]["grad"]))}


def write_choice(bundle: Path, choice: dict[str, Any], names: list[str]) -> None:
    """Record the chosen refinement settings in the bundle's manifest (read by ``Matter``)."""
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["refinement"] = {
        "rounds": int(choice["rounds"]), "smoothing": float(choice["smoothing"]),
        "confidence_scale": float(choice["confidence_scale"]),
        "chosen_on": {"objects": names, "trimaps": list(VARIANTS), "grid": {k: list(v) for k, v in GRID.items()},
                      "criterion": "lowest mean SAD + mean gradient error",
                      "sad": choice["sad"], "grad": choice["grad"]},
    }
    _atomic_json(path, manifest)


def _composites_of(composites: Path, objects: list[str]) -> list[str]:
    from core.evaluate import find_samples

    samples, _ = find_samples(composites, None, list(VARIANTS))
    return sorted({s.name for s in samples if s.name.split("_")[0] in objects})


def choose_layers(bundle: Path, names: list[str], composites: Path, cache: Path) -> dict[str, Any]:
    """The :data:`LAYER_GRID` entry with the lowest mean FG SAD + BG SAD on the composites of
    ``names`` (both trimaps), the bundle's refinement otherwise as recorded; written into its
    manifest's ``"refinement"``."""
    from core.evaluate import evaluate_dataset

    mine = _composites_of(composites, names)
    done: dict[str, Any] = json.loads(cache.read_text()) if cache.exists() else {}
    for layers, prior in LAYER_GRID:
        key = f"{layers}/{prior}"
        if key in done:
            continue
        result = evaluate_dataset(composites, weights=str(bundle), baselines="none", device="cpu", names=mine,
                                  trimaps=list(VARIANTS), layers=layers, layer_prior=prior, progress=True)
        means = [result["variants"][v]["mean"]["lbsmatte"] for v in VARIANTS]
        done[key] = {"fg_sad": float(np.mean([m["fg_sad"] for m in means])),
                     "bg_sad": float(np.mean([m["bg_sad"] for m in means])),
                     "sad": float(np.mean([m["sad"] for m in means]))}
        _atomic_json(cache, done)
    best = min(done, key=lambda k: done[k]["fg_sad"] + done[k]["bg_sad"])
    layers, prior = best.split("/")
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    refinement = manifest["refinement"]
    refinement["layers"] = layers
    if prior != "None":
        refinement["layer_prior"] = float(prior)
    refinement["chosen_on"]["layers"] = {
        "composites": mine, "grid": [f"{a}/{b}" for a, b in LAYER_GRID],
        "criterion": "lowest mean FG SAD + BG SAD", "scores": done,
    }
    _atomic_json(path, manifest)
    return {"layers": layers, "layer_prior": None if prior == "None" else float(prior), **done[best]}


def run_fold(out: Path, train_names: list[str], held_out: list[str], args: argparse.Namespace) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data_root = args.data or _default_root()
    started = time.time()
    bundle = train(out, held_out, args)
    manifest = json.loads((bundle / "manifest.json").read_text())
    if "refinement" not in manifest:
        choice = choose(grid_scores(bundle, train_names, data_root, out / "grid.json"))
        write_choice(bundle, choice, train_names)
        print(f"{out.name}: chose {choice}", flush=True)
    if args.composites and "layers" not in json.loads((bundle / "manifest.json").read_text())["refinement"]:
        picked = choose_layers(bundle, train_names, args.composites, out / "layers.json")
        print(f"{out.name}: chose layers {picked}", flush=True)
    if held_out and not (out / "evaluation.json").exists():
        from core.evaluate import evaluate_dataset

        evaluate_dataset(data_root / "alphamatting", weights=str(bundle), baselines="closed_form,knn", device="cpu",
                         names=held_out, trimaps=list(VARIANTS), ablations=True, json_path=out / "evaluation.json",
                         progress=True)
    if held_out and args.composites and not (out / "composites.json").exists():
        from core.evaluate import evaluate_dataset

        mine = _composites_of(args.composites, held_out)
        if mine:
            # closed-form + multilevel foreground and the plate are what the layers must beat (KNN's
            # alpha is scored on the photographs; on the composites it would double the time).
            evaluate_dataset(args.composites, weights=str(bundle), baselines="closed_form", device="cpu",
                             names=mine, trimaps=list(VARIANTS), ablations=True, json_path=out / "composites.json",
                             progress=True)
    print(f"{out.name}: done in {time.time() - started:.0f} s", flush=True)


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
        held[f"fold{i}"] = fold
        manifest = json.loads((out / f"fold{i}" / "bundle" / "manifest.json").read_text())
        choices[f"fold{i}"] = {key: manifest["refinement"][key] for key in ("rounds", "smoothing", "confidence_scale",
                                                                     "layers", "layer_prior") if key in manifest["refinement"]}
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
              "Refinement chosen per fold on its training objects: " + "; ".join(f"{f}: {c}" for f, c in choices.items())]
    layers = _layer_means(out, k)
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


def _layer_means(out: Path, k: int) -> dict[str, dict[str, dict[str, float]]]:
    """Means over every fold's ``composites.json`` (empty unless all folds have one)."""
    paths = [out / f"fold{i}" / "composites.json" for i in range(k)]
    if not all(p.exists() for p in paths):
        return {}
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


def pool_held_out(tables: list[dict[str, dict[str, list[float]]]], chosen: list[str]) -> dict[str, Any]:
    """The folds' grid tables on their *held-out* objects put together: every setting's mean SAD
    and gradient error over all objects, sorted best first (lowest SAD + Grad), and what each
    fold's own choice (``chosen``, the setting keys) scored on its held-out objects."""
    pooled: dict[str, dict[str, list[float]]] = {}
    for table in tables:
        for setting, scores in table.items():
            row = pooled.setdefault(setting, {"sad": [], "grad": []})
            row["sad"] += scores["sad"]
            row["grad"] += scores["grad"]
    means = {s: {"sad": float(np.mean(r["sad"])), "grad": float(np.mean(r["grad"]))} for s, r in pooled.items()}
    ranked = sorted(means, key=lambda s: means[s]["sad"] + means[s]["grad"])
    folds_own = [{"setting": key, "sad": float(np.mean(t[key]["sad"])), "grad": float(np.mean(t[key]["grad"])),
                  "pooled": means[key]} for t, key in zip(tables, chosen, strict=True)]
    return {"ranked": [{"setting": s, **means[s]} for s in ranked], "folds_own": folds_own}


def held_out_grid(out: Path, k: int, names: list[str], data_root: Path) -> dict[str, Any]:
    """An analysis, not a choice: the refinement grid scored on each fold's held-out objects with
    the fold's networks, to see how far the choice made on the training objects is from the
    setting the held-out objects would have liked (``out/heldout_grid.json``)."""
    tables, chosen = [], []
    for i, held in enumerate(folds(names, k)):
        bundle = out / f"fold{i}" / "bundle"
        refinement = json.loads((bundle / "manifest.json").read_text()).get("refinement")
        if refinement is None:
            raise SystemExit(f"fold {i} has no refinement chosen yet: run --fold {i}")
        tables.append(grid_scores(bundle, held, data_root, out / f"fold{i}" / "grid_heldout.json"))
        chosen.append(json.dumps({key: refinement[key] for key in GRID}, sort_keys=True))
    result = pool_held_out(tables, chosen)
    _atomic_json(out / "heldout_grid.json", result)
    for row in result["folds_own"]:
        print(f"fold's own choice {row['setting']}: held-out SAD {row['sad']:.3f} Grad {row['grad']:.3f}; "
              f"over all objects {row['pooled']['sad']:.3f} / {row['pooled']['grad']:.3f}")
    for row in result["ranked"][:5]:
        print(f"{row['setting']}: SAD {row['sad']:.3f} Grad {row['grad']:.3f}")
    return result


def ship(out: Path, dest: Path, report_path: Path | None = None) -> None:
    """The ``--final`` bundle as the packaged ``default``: float16 storage, its manifest's training
    record and chosen refinement kept, the cross-validation report attached (``report_path``,
    default ``out/report.json``; a kept copy such as ``docs/cross_validation/*.json`` when the
    folds ran in an earlier session)."""
    from core.weights import load_bundle, save_bundle

    final = load_bundle(str(out / "final" / "bundle"))
    if "refinement" not in final.manifest:
        raise SystemExit(f"{final.path} has no refinement settings chosen yet: run --final to the end")
    report_path = report_path or out / "report.json"
    if not report_path.exists():
        raise SystemExit(f"{report_path} missing: run --report first (the bundle ships with its cross-validation)")
    nets = final.load_networks("cpu")
    training = dict(final.manifest["training"]) | {"cross_validation": json.loads(report_path.read_text())}
    bundle = save_bundle(dest, nets, name="default", storage="float16", overwrite=True, training=training, description=(
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
    what.add_argument("--report", action="store_true", help="put the evaluated folds together")
    what.add_argument("--final", action="store_true", help="train and choose on all objects: the bundle to ship")
    what.add_argument("--ship", type=Path, metavar="DEST", help="write the --final bundle there as the packaged default")
    what.add_argument("--held-out-grid", action="store_true",
                      help="analysis: score the refinement grid on each evaluated fold's held-out objects")
    what.add_argument("--choose-layers", type=Path, metavar="BUNDLE",
                      help="choose the final layers of this bundle folder on all objects' composites (needs "
                           "--composites) and record them in its manifest, as --final does for its own bundle")
    parser.add_argument("--cv-report", type=Path, default=None,
                        help="with --ship: the cross-validation report to attach (default OUT/report.json)")
    parser.add_argument("--folds", type=int, default=3, help="number of folds (default 3)")
    parser.add_argument("--data", type=Path, default=None, help="data root (default $LBSMATTE_DATA or ../shared/data)")
    parser.add_argument("--steps", default="1000,1000,900", help="training steps BG,FG,alpha (default 1000,1000,900)")
    parser.add_argument("--real-photos", type=float, default=0.5, help="fraction of batches from the training objects' photos")
    parser.add_argument("--ema", type=float, default=0.99, help="weight averaging decay (default 0.99)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for training")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="the networks' forward passes in training: auto (the default) is bf16 where the CPU "
                             "computes it natively (AVX512-BF16 or AMX) and fp32 where torch would emulate it, "
                             "about 9x slower; each bundle's manifest records which ran")
    parser.add_argument("--composites", type=Path, default=None,
                        help="also evaluate the held-out objects' composites with true F and B here (made by "
                             "tools/make_validation_composites.py --objects all --linear): FG and BG errors")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop training cleanly after this long (resumable)")
    args = parser.parse_args(argv)
    if args.precision == "auto":
        from core.pipeline import cpu_has_bf16

        args.precision = "bf16" if cpu_has_bf16() else "fp32"
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    names = objects(args.data or _default_root())
    parts = folds(names, args.folds)
    if args.choose_layers:
        if not args.composites:
            raise SystemExit("--choose-layers needs --composites (the linear composites with true F and B)")
        args.out.mkdir(parents=True, exist_ok=True)
        print(choose_layers(args.choose_layers, names, args.composites, args.out / "layers_chosen.json"))
    elif args.ship:
        ship(args.out, args.ship, args.cv_report)
    elif args.report:
        report(args.out, args.folds, names)
    elif args.held_out_grid:
        held_out_grid(args.out, args.folds, names, args.data or _default_root())
    elif args.final:
        run_fold(args.out / "final", names, [], args)
    else:
        if not 0 <= args.fold < args.folds:
            raise SystemExit(f"--fold must be between 0 and {args.folds - 1}, not {args.fold}")
        held_out = parts[args.fold]
        run_fold(args.out / f"fold{args.fold}", [n for n in names if n not in held_out], held_out, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
