"""The demo's SAD under the shipped levels and under levels that leave mid alphas alone (screen).

python tools/experiments/stop40_levels/demo_curve.py"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from core.io import read_image  # noqa: E402
from core.pipeline import matte  # noqa: E402

DEMO = ROOT / "core" / "examples" / "demo"


def stretch(a: np.ndarray, b: float, w: float) -> np.ndarray:
    return np.clip((a - b) / (w - b), 0, 1)


def ends(a: np.ndarray, b: float, w: float) -> np.ndarray:
    """0 below b, 1 above w, identity between 2b and 2w − 1, linear ramps between."""
    out = a.copy()
    lo, hi = a < 2 * b, a > 2 * w - 1
    out[lo] = np.clip(2 * (a[lo] - b), 0, None)
    out[hi] = np.clip(1 - 2 * (w - a[hi]), None, 1)
    return out


def main() -> None:
    plate = read_image(DEMO / "image.png").pixels[..., :3].astype(np.float32)
    trimap = read_image(DEMO / "trimap.png").pixels[..., 0].astype(np.float32)
    truth = read_image(DEMO / "alpha.png").pixels[..., 0].astype(np.float32)
    unknown = (trimap > 0.01) & (trimap < 0.99)
    for weights in ("default", "none"):
        raw = matte(plate, trimap, weights=weights, colour="srgb", black_point=0.0, white_point=1.0).alpha
        for b, w in ((0.0, 1.0), (0.03, 0.96), (0.06, 0.92), (0.09, 0.92)):
            s = np.abs(stretch(raw, b, w) - truth)[unknown].sum() / 1000
            e = np.abs(ends(raw, b, w) - truth)[unknown].sum() / 1000
            print(f"{weights:8s} b {b:.2f} w {w:.2f}  stretch {s:.3f}  ends {e:.3f}", flush=True)


if __name__ == "__main__":
    main()
