"""Where the demo's alpha error lies, by the true alpha: python tools/experiments/stop36_shape/demo_bins.py

The demo fur ball (core/examples/demo, never trained on): SAD over the trimap's unknown region,
split by the true alpha (0-0.02, 0.02-0.3, 0.3-0.92, 0.92-0.999, 0.999-1), and the mean signed error
in each bin, for closed-form (pymatting, live), the shipped pipeline, the same without networks
(``--weights none``), and both with the data term off (λ 1e-9) or the KNN term off."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from core.io import read_image  # noqa: E402
from core.pipeline import matte  # noqa: E402

DEMO = ROOT / "core" / "examples" / "demo"
BINS = (0.0, 0.02, 0.3, 0.92, 0.999, 1.01)


def main() -> None:
    from pymatting import estimate_alpha_cf

    plate = read_image(DEMO / "image.png").pixels[..., :3].astype(np.float32)
    trimap = read_image(DEMO / "trimap.png").pixels[..., 0].astype(np.float32)
    truth = read_image(DEMO / "alpha.png").pixels[..., 0].astype(np.float32)
    unknown = (trimap > 0.01) & (trimap < 0.99)

    def report(name: str, alpha: np.ndarray) -> None:
        err = alpha - truth
        parts, bias = [], []
        for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
            m = unknown & (truth >= lo) & (truth < hi)
            parts.append(np.abs(err[m]).sum() / 1000)
            bias.append(err[m].mean())
        print(f"{name:34s} SAD {np.abs(err[unknown]).sum() / 1000:.3f}  by true alpha "
              + " ".join(f"{p:.2f}" for p in parts) + "  mean error " + " ".join(f"{b:+.3f}" for b in bias), flush=True)

    report("closed-form (pymatting)", estimate_alpha_cf(plate.astype(np.float64), trimap.astype(np.float64)))
    for weights in ("default", "none"):
        report(f"{weights}", matte(plate, trimap, weights=weights, colour="srgb").alpha)
        report(f"{weights}, data term off", matte(plate, trimap, weights=weights, colour="srgb", smoothing=1e-9).alpha)
        report(f"{weights}, KNN term off", matte(plate, trimap, weights=weights, colour="srgb", knn=0.0).alpha)
        report(f"{weights}, levels off", matte(plate, trimap, weights=weights, colour="srgb", black_point=0.0, white_point=1.0).alpha)


if __name__ == "__main__":
    main()
