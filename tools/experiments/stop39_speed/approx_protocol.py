"""Cheaper KNN terms and looser solves, scored the protocol's way (README, Benchmarks, "Stop 39"):
python tools/experiments/stop39_speed/approx_protocol.py {networks,none}

Each fold's held-out photographs (both trimaps), matted by the whole pipeline as the protocol's
evaluation runs it — the fold bundle with the refinement its nested choice recorded (networks),
or the priors with the same settings (none) — and then with one approximation for speed: the KNN
term's searches from every ``stride``-th row and column only (``knn_stride``), fewer neighbours,
or a looser tolerance of the conjugate gradients. Each fold's variant chosen on the other two folds (lowest mean SAD + mean gradient error), its held-out scores
pooled; and each variant's seconds in the KNN term and the refinement. Resumable: the scores are
kept in runs/conf/stop39_approx_<which>.json."""
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
from cross_validate import _read_frame, _scorer  # noqa: E402

from core.pipeline import Matter  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import DATA, FOLDS, WORK, bundle  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
VARIANTS = ("Trimap1", "Trimap2")
#: name: the settings changed from the fold bundle's recorded ones (stop 37's choice, every unknown
#: pixel searching; since stop 39 the bundles record stride 3, so each variant names its stride)
APPROX = {
    "as chosen": {"knn_stride": 1},
    "stride 2": {"knn_stride": 2},
    "stride 3": {"knn_stride": 3},
    "stride 4": {"knn_stride": 4},
    "stride 6": {"knn_stride": 6},
    "neighbours 10": {"knn_stride": 1, "knn_neighbours": 10},
    "tolerance 1e-3": {"knn_stride": 1, "tolerance": 1e-3},
    "stride 2, tolerance 1e-3": {"knn_stride": 2, "tolerance": 1e-3},
}


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "networks"
    out = WORK / f"stop39_approx_{which}.json"
    done = json.loads(out.read_text()) if out.exists() else {}
    for k, names in enumerate(FOLDS):
        fold = Matter(bundle(k), device="cpu")
        settings = {f: v for f, v in dataclasses.asdict(fold.refinement).items() if f != "max_iterations"}
        settings["network_weight"] = 0.0 if which == "none" else settings["network_weight"]
        for label, change in APPROX.items():
            matter = Matter(bundle(k) if which == "networks" else "none", device="cpu", profile=True,
                            **(settings | change))
            for name in names:
                for v in VARIANTS:
                    key = f"{name} {v} {label}"
                    if key in done:
                        continue
                    plate, trimap, gt = _read_frame(DATA, name, v)
                    alpha = matter.matte(plate, trimap, colour="srgb").alpha
                    seconds = matter.stats.seconds
                    done[key] = list(_scorer(gt, trimap)(alpha)) + [seconds.get("knn", 0.0) + seconds.get("refine", 0.0)]
                    out.write_text(json.dumps(done))
                    print(key, " ".join(f"{x:.3f}" for x in done[key]), flush=True)
    frames = [[f"{n} {v}" for n in names for v in VARIANTS] for names in FOLDS]

    def mean(keys: list[str], label: str) -> np.ndarray:
        return np.mean([done[f"{f} {label}"] for f in keys], 0)

    held = []
    for k in range(3):
        train = [f for j in range(3) if j != k for f in frames[j]]
        best = min(APPROX, key=lambda a: mean(train, a)[:2].sum())
        held += [done[f"{f} {best}"] for f in frames[k]]
        print(f"fold {k}: {best!r} chosen on the other folds: {mean(frames[k], best)[0]:.3f} / {mean(frames[k], best)[1]:.3f}")
    nested = np.mean(held, 0)
    print(f"{which}: nested {nested[0]:.3f} / {nested[1]:.3f}")
    every = [f for fs in frames for f in fs]
    for label in APPROX:
        m = mean(every, label)
        print(f"  {label:>26}: {m[0]:.3f} / {m[1]:.3f}, {m[-1]:.2f} s a frame in the term and the refinement; "
              "folds " + " ".join(f"{mean(fs, label)[0]:.2f}" for fs in frames))


if __name__ == "__main__":
    main()
