"""The KNN term's band width R chosen the protocol's way: python tools/experiments/stop36_shape/knn_band_protocol.py {networks,none}

Each fold's held-out photographs (both trimaps), matted by the whole pipeline as the protocol's
evaluation runs it — the fold bundle with the refinement its nested choice recorded (networks),
or the priors with the same settings (none) — with ``knn_band`` R added; R 0 is the protocol's
answer as it stands (README, Evaluation). Then each fold's R chosen on the other two folds
(lowest mean SAD + mean gradient error), and its held-out scores pooled. Resumable: the scores
are kept in runs/conf/stop36_band_<which>.json."""
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
WIDTHS = (0, 8, 16, 32, 64)
VARIANTS = ("Trimap1", "Trimap2")


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "networks"
    out = WORK / f"stop36_band_{which}.json"
    done = json.loads(out.read_text()) if out.exists() else {}
    for k, names in enumerate(FOLDS):
        fold = Matter(bundle(k), device="cpu")
        settings = {f: v for f, v in dataclasses.asdict(fold.refinement).items() if f != "max_iterations"}
        settings["network_weight"] = 0.0 if which == "none" else settings["network_weight"]
        for r in WIDTHS:
            matter = Matter(bundle(k) if which == "networks" else "none", device="cpu", **(settings | {"knn_band": r}))
            for name in names:
                for v in VARIANTS:
                    key = f"{name} {v} {r}"
                    if key in done:
                        continue
                    plate, trimap, gt = _read_frame(DATA, name, v)
                    done[key] = _scorer(gt, trimap)(matter.matte(plate, trimap, colour="srgb").alpha)
                    out.write_text(json.dumps(done))
                    print(key, " ".join(f"{x:.3f}" for x in done[key]), flush=True)
    frames = [[f"{n} {v}" for n in names for v in VARIANTS] for names in FOLDS]

    def mean(keys: list[str], r: int) -> np.ndarray:
        return np.mean([done[f"{f} {r}"] for f in keys], 0)

    held = []
    for k in range(3):
        train = [f for j in range(3) if j != k for f in frames[j]]
        best = min(WIDTHS, key=lambda r: mean(train, r).sum())
        held += [done[f"{f} {best}"] for f in frames[k]]
        print(f"fold {k}: R {best} chosen on the other folds: {mean(frames[k], best)[0]:.3f} / "
              f"{mean(frames[k], best)[1]:.3f} (R 0: {mean(frames[k], 0)[0]:.3f} / {mean(frames[k], 0)[1]:.3f})")
    nested = np.mean(held, 0)
    print(f"{which}: nested {nested[0]:.3f} / {nested[1]:.3f}")
    every = [f for fs in frames for f in fs]
    for r in WIDTHS:
        m = mean(every, r)
        print(f"  R {r}: {m[0]:.3f} / {m[1]:.3f}; folds " + " ".join(f"{mean(fs, r)[0]:.2f}" for fs in frames))


if __name__ == "__main__":
    main()
