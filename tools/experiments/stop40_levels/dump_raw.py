"""Each fold's held-out photographs matted as the protocol's evaluation mattes them, the levels
taken off; the raw alphas (unknown pixels, float16) and the truth kept for offline rules:
python tools/experiments/stop40_levels/dump_raw.py {networks,none}  →  runs/s40/raw_<which>/"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from cross_validate import _read_frame  # noqa: E402

from core.pipeline import Matter  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import DATA, FOLDS, bundle  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "networks"
    out = ROOT / "runs" / "s40" / f"raw_{which}"
    out.mkdir(parents=True, exist_ok=True)
    for k, names in enumerate(FOLDS):
        fold = Matter(bundle(k), device="cpu")
        settings = {f: v for f, v in dataclasses.asdict(fold.refinement).items() if f != "max_iterations"}
        matter = Matter(bundle(k) if which == "networks" else "none", device="cpu",
                        **(settings | {"black_point": 0.0, "white_point": 1.0}))
        for name in names:
            for v in ("Trimap1", "Trimap2"):
                path = out / f"{name}_{v}.npz"
                if path.exists():
                    continue
                plate, trimap, gt = _read_frame(DATA, name, v)
                raw = matter.matte(plate, trimap, colour="srgb").alpha
                np.savez_compressed(path, raw=raw.astype(np.float32), trimap=trimap.astype(np.float32),
                                    gt=gt.astype(np.float32), fold=k, black=settings["black_point"],
                                    white=settings["white_point"])
                print(name, v, flush=True)


if __name__ == "__main__":
    main()
