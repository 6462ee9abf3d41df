"""Where the data term's prior alpha comes from, screened: ``python screen.py blur`` (the cases
capture.py kept: bench/motionblur.py's blurred GT04, GT16, GT25, halved, Trimap1, shipped bundle)
and ``python screen.py photos`` (the protocol's 36 held-out photo frames, each fold's bundle with
the refinement its nested choice recorded, as tools/experiments/stop40_levels/screen.py runs them).

The refinement's first (only) round reads alpha off the compositing equation,
``â = <I − B, F − B> / |F − B|²``, with B the background network's and F:

- ``half`` (shipped, ``sample_alpha="half"``): F solved against the plate for alpha 0.5;
- ``network`` (``sample_alpha="network"``): F solved for the matting network's alpha;
- ``raw``: the foreground network's F as it is (no solve; an experiment only, patched in here).

Each with the levels its bundle records and with none. Writes runs/conf/stop49_ramps_<which>.json.
``blur --rounds N`` runs the captured cases with N rounds instead of the captured refinement's
(stop 51: 1 against the 2 shipped since stop 50; writes stop49_ramps_blur_rounds<N>.json).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import core.compositing as compositing  # noqa: E402
import core.pipeline as pipeline  # noqa: E402
from core.trimap import split_trimap  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "1")))
CANDIDATES = ("half", "network", "raw")
WORK = ROOT / "runs" / "conf"
_real_solve_layers = compositing.solve_layers
_raw = {"on": False}


def _solve_layers(image, alpha, bg, fg, weight, bg_weight=None, clip=(0.0, 1.0), bg_ratio=3.0):
    if _raw["on"]:  # the first solve of a `raw` refinement: the networks' layers as they are
        _raw["on"] = False
        return (fg, bg) if clip is None else (fg.clamp(*clip), bg.clamp(*clip))
    return _real_solve_layers(image, alpha, bg, fg, weight, bg_weight, clip, bg_ratio)


compositing.solve_layers = _solve_layers


def variants(settings: compositing.Settings) -> dict[str, compositing.Settings]:
    out = {}
    for cand in CANDIDATES:
        s = dataclasses.replace(settings, sample_alpha="network" if cand == "network" else "half")
        out[f"{cand} levels"] = s
        out[f"{cand} none"] = dataclasses.replace(s, black_point=0.0, white_point=1.0)
    return out


def run(image, trimap, alpha, fg, bg, settings, fg_weight, clip, exact, knn) -> dict[str, torch.Tensor]:
    got = {}
    for label, s in variants(settings).items():
        _raw["on"] = label.startswith("raw")
        got[label] = compositing.refine(image, trimap, alpha, fg, bg, s, fg_weight, clip=clip, exact=exact,
                                        knn=knn).alpha[0, 0]
        _raw["on"] = False
    return got


def blur(rounds: int | None = None) -> dict[str, list[float]]:
    from core.metrics import sad

    done = {}
    for path in sorted(Path(os.environ.get("CASES", "/tmp/ramps_cases")).glob("*.pt")):
        d = torch.load(path, weights_only=False)
        settings = d["settings"] if rounds is None else dataclasses.replace(d["settings"], rounds=rounds)
        got = run(d["image"], d["trimap"], d["alpha"], d["fg"], d["bg"], settings, d["fg_weight"], None, True,
                  d["knn"])
        tri = d["trimap"][0, 0].numpy()
        truth = d["alpha_true"].numpy()
        unknown = split_trimap(tri)[2]
        ramp = unknown & (truth > 0.02) & (truth < 0.98)
        for label, a in got.items():
            a = a.numpy()
            done[f"{path.stem} {label}"] = [sad(a, truth, tri), float((a - truth)[ramp].mean())]
        print(path.stem, "  ".join(f"{lab} {done[f'{path.stem} {lab}'][0]:.3f} ({done[f'{path.stem} {lab}'][1]:+.3f})"
                                    for lab in got), flush=True)
    return done


def photos() -> dict[str, list[float]]:
    from cross_validate import _read_frame, _scorer, folds, objects

    data = ROOT.parent / "shared" / "data"
    out = WORK / "stop49_ramps_photos.json"
    done = json.loads(out.read_text()) if out.exists() else {}
    seen: dict = {}

    def spy(image, trimap, alpha, fg, bg, settings=None, fg_weight=0.1, clip=None, exact=False, laplacian=None,
            knn=None):
        seen["got"] = run(image, trimap, alpha, fg, bg, settings, fg_weight, clip, exact, knn)
        seen["shape"] = tuple(trimap.shape[2:])
        return compositing.refine(image, trimap, alpha, fg, bg, settings, fg_weight, clip, exact, laplacian, knn)

    pipeline.refine = spy
    for k, names in enumerate(folds(objects(data), 3)):
        matter = pipeline.Matter(str(ROOT / "docs" / "cross_validation" / "folds" / f"fold{k}" / "bundle"), device="cpu")
        for name in names:
            for v in ("Trimap1", "Trimap2"):
                if f"{name} {v} raw none" in done:
                    continue
                plate, trimap, gt = _read_frame(data, name, v)
                result = matter.matte(plate, trimap, colour="srgb").alpha
                unk = split_trimap(trimap)[2]
                ys, xs = np.nonzero(unk)
                y0, x0 = max(0, ys.min() - 2), max(0, xs.min() - 2)
                h, w = seen["shape"]
                score = _scorer(gt, trimap)
                assert np.allclose(result[y0:y0 + h, x0:x0 + w], seen["got"]["half levels"].numpy(), atol=1e-5)
                for label, a in seen["got"].items():
                    full = result.copy()
                    full[y0:y0 + h, x0:x0 + w] = a.numpy()
                    done[f"{name} {v} {label}"] = list(score(full))
                out.write_text(json.dumps(done))
                print(k, name, v, "  ".join(f"{lab} {done[f'{name} {v} {lab}'][0]:.3f}" for lab in seen["got"]),
                      flush=True)
    return done


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "blur"
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else None
    WORK.mkdir(parents=True, exist_ok=True)
    done = blur(rounds) if which == "blur" else photos()
    (WORK / f"stop49_ramps_{which}{'' if rounds is None else f'_rounds{rounds}'}.json").write_text(json.dumps(done))
    labels = [f"{c} {lv}" for c in CANDIDATES for lv in ("levels", "none")]
    frames = sorted({key.rsplit(" ", 2)[0] for key in done})
    for lab in labels:
        m = np.mean([done[f"{f} {lab}"] for f in frames], 0)
        print(f"{which} {lab:16s}: {m[0]:.3f} / {m[1]:+.4f}  ({len(frames)} frames)")


if __name__ == "__main__":
    main()
