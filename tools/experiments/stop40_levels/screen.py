"""Levels that leave mid alphas alone, screened on the protocol's held-out photographs:
python tools/experiments/stop40_levels/screen.py {networks,none}

Each fold's held-out photographs (both trimaps), matted as the protocol's evaluation mattes them
(the fold bundle and the refinement its nested choice recorded, or the priors with the same
settings), the levels taken off; then the fold's recorded black and white points applied as a
stretch (the shipped levels: ``clip((a − b) / (w − b))``) and as ``ends`` (0 below b, 1 above w,
alpha itself between 2b and 2w − 1, linear between), and with no levels. Scores kept in
runs/conf/stop40_levels_<which>.json."""
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
sys.path.insert(0, str(Path(__file__).parent))
from cross_validate import _read_frame, _scorer  # noqa: E402
from demo_curve import ends, stretch  # noqa: E402

from core.pipeline import Matter  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import DATA, FOLDS, WORK, bundle  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
VARIANTS = ("Trimap1", "Trimap2")
CURVES = ("none", "stretch", "ends")


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "networks"
    out = WORK / f"stop40_levels_{which}.json"
    done = json.loads(out.read_text()) if out.exists() else {}
    for k, names in enumerate(FOLDS):
        fold = Matter(bundle(k), device="cpu")
        settings = {f: v for f, v in dataclasses.asdict(fold.refinement).items() if f != "max_iterations"}
        b, w = settings["black_point"], settings["white_point"]
        matter = Matter(bundle(k) if which == "networks" else "none", device="cpu",
                        **(settings | {"black_point": 0.0, "white_point": 1.0}))
        for name in names:
            for v in VARIANTS:
                if f"{name} {v} ends" in done:
                    continue
                plate, trimap, gt = _read_frame(DATA, name, v)
                raw = matter.matte(plate, trimap, colour="srgb").alpha
                score = _scorer(gt, trimap)
                for curve, a in zip(CURVES, (raw, stretch(raw, b, w), ends(raw, b, w)), strict=True):
                    done[f"{name} {v} {curve}"] = list(score(a))
                out.write_text(json.dumps(done))
                print(name, v, " ".join(f"{c} {done[f'{name} {v} {c}'][0]:.3f}" for c in CURVES), flush=True)
    frames = [[f"{n} {v}" for n in names for v in VARIANTS] for names in FOLDS]
    for curve in CURVES:
        per = [np.mean([done[f"{f} {curve}"] for f in fs], 0) for fs in frames]
        m = np.mean([done[f"{f} {curve}"] for fs in frames for f in fs], 0)
        print(f"{which} {curve:8s}: {m[0]:.3f} / {m[1]:.3f}; folds " + " ".join(f"{p[0]:.2f}/{p[1]:.2f}" for p in per))


if __name__ == "__main__":
    main()
