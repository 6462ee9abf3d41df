"""Levels per frame: how much an oracle (the best black/white points of each frame) would gain
over each fold's recorded levels, and rules read off the raw alpha's histogram, each rule's
parameter chosen on the other folds. Reads runs/s40/raw_<which>/ (dump_raw.py):
python tools/experiments/stop40_levels/frame_levels.py {networks,none}"""
from __future__ import annotations

import sys
from itertools import product
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from cross_validate import _scorer  # noqa: E402

BLACKS = (0.0, 0.03, 0.06, 0.09, 0.12)
WHITES = (1.0, 0.96, 0.92, 0.88)


def levels(a: np.ndarray, b: float, w: float) -> np.ndarray:
    return np.clip((a - b) / (w - b), 0, 1)


def modes(a: np.ndarray, unknown: np.ndarray) -> tuple[float, float]:
    """The most common raw alpha below 0.25 and above 0.75 in the unknown region (bins of 0.01)."""
    v = a[unknown]
    lo = np.histogram(v[v < 0.25], bins=25, range=(0, 0.25))[0]
    hi = np.histogram(v[v > 0.75], bins=25, range=(0.75, 1.0))[0]
    return (np.argmax(lo) + 0.5) * 0.01, 0.75 + (np.argmax(hi) + 0.5) * 0.01


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "networks"
    frames = []
    for path in sorted((ROOT / "runs" / "s40" / f"raw_{which}").glob("*.npz")):
        z = np.load(path)
        raw, tri, gt = z["raw"], z["trimap"], z["gt"]
        unknown = (tri > 0.04) & (tri < 0.96)
        score = _scorer(gt, tri)
        grid = {(b, w): score(levels(raw, b, w)) for b, w in product(BLACKS, WHITES)}
        recorded = score(levels(raw, float(z["black"]), float(z["white"])))
        frames.append({"name": path.stem, "fold": int(z["fold"]), "grid": grid, "recorded": recorded,
                       "modes": modes(raw, unknown)})
    rec = np.mean([f["recorded"] for f in frames], 0)
    ora = np.mean([min(f["grid"].values(), key=lambda s: s[0] + s[1]) for f in frames], 0)
    print(f"{which}: {len(frames)} frames; recorded levels {rec[0]:.3f} / {rec[1]:.3f}; per-frame oracle {ora[0]:.3f} / {ora[1]:.3f}")
    for f in frames:
        best = min(f["grid"], key=lambda k: sum(f["grid"][k]))
        print(f"  {f['name']:14s} fold {f['fold']} modes {f['modes'][0]:.3f} {f['modes'][1]:.3f}  best b/w {best}  "
              f"{f['recorded'][0]:.2f} → {f['grid'][best][0]:.2f}")
    # rule: b = mode_lo + δb, w = mode_hi − δw (snapped to the grid's nearest), δ chosen on the other folds
    deltas = [(db, dw) for db in (0.0, 0.02, 0.04, 0.06) for dw in (0.0, 0.02, 0.04, 0.06)]

    def ruled(f: dict, d: tuple[float, float]) -> tuple[float, float]:
        b = min(BLACKS, key=lambda x: abs(x - (f["modes"][0] + d[0])))
        w = min(WHITES, key=lambda x: abs(x - (f["modes"][1] - d[1])))
        return f["grid"][(b, w)]

    held = []
    for k in range(3):
        train = [f for f in frames if f["fold"] != k]
        d = min(deltas, key=lambda d: np.mean([sum(ruled(f, d)) for f in train]))
        held += [ruled(f, d) for f in frames if f["fold"] == k]
        print(f"fold {k}: δ {d}")
    h = np.mean(held, 0)
    print(f"{which}: mode rule, nested {h[0]:.3f} / {h[1]:.3f}")


if __name__ == "__main__":
    main()
