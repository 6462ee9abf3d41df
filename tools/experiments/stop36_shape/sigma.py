"""The data term's confidence scale σ² again, beside λ: python tools/experiments/stop36_shape/sigma.py [PREFIX]

The protocol's grid has held σ² at 0.1 since stop 9, before the KNN term and the levels. The
confidence ``1 − exp(−|F − B|² / σ²)`` of a dumped frame gives ``|F − B|²`` back, so each
(σ², λ) is one solve; both chosen on the other two folds. The 36 held-out photo frames dumped by
stop 34's dump.py (PREFIX photo: the networks; photo_none: the priors)."""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import LAM, SIGMA2, solve  # noqa: E402
from depth_trust import report, scores  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
VARIANTS = list(itertools.product((0.01, 0.03, SIGMA2, 0.3), (1e-4, LAM, 1e-3)))  # (σ², λ)


def rescaled(s: dict, depth: torch.Tensor, variant: tuple[float, float]) -> torch.Tensor:
    sigma2, lam = variant
    if sigma2 == SIGMA2 and lam == LAM:
        return s["a1"]
    keep = (1 - s["conf"].double()).clamp_min(1e-300)  # exp(−|F − B|² / σ²) at the shipped σ²
    return solve(s, lam * (1 - keep ** (SIGMA2 / sigma2)).float())


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "photo"
    report(f"σ² and λ ({prefix})", scores(prefix, VARIANTS, rescaled), lambda v: f"σ² {v[0]:g} λ {v[1]:g}")


if __name__ == "__main__":
    main()
