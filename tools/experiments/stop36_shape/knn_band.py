"""The KNN term's searches limited to a band around the unknown region (speed):
python tools/experiments/stop36_shape/knn_band.py [PREFIX]

The term's k-d trees hold every pixel of the networks' crop (2 million at 1080p); limited to the
known pixels within R px of the unknown region (``core.knn.band``, ``knn_term(candidates=...)``)
they are smaller and the term cheaper, an approximation (stop 29's lead). Scored like the
others: the 36 held-out photo frames dumped by stop 34's dump.py (PREFIX photo: the networks;
photo_none: the priors), the shipped refinement otherwise; the term over the photo itself (the
dumps' own term was built over the same region)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import LAM, solve_with_knn  # noqa: E402
from depth_trust import report, scores  # noqa: E402

from core.knn import band  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
VARIANTS = [0, 8, 16, 32, 64]  # R px; 0: the whole region (the shipped term)


def banded(s: dict, depth: torch.Tensor, width: int) -> torch.Tensor:
    if not width:
        return s["a1"]
    return solve_with_knn(s, LAM * s["conf"], candidates=band(s["unknown"], width))


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "photo"
    report(f"the KNN term within R px of the unknown region ({prefix})", scores(prefix, VARIANTS, banded),
           lambda v: f"R {v or 'whole region'}")


if __name__ == "__main__":
    main()
