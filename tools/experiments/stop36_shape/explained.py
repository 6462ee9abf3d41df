"""A data term from how well each layer alone explains the pixel:
python tools/experiments/stop36_shape/explained.py [PREFIX]

The shipped data term reads an alpha off F and B by projection and trusts it by ``|F − B|``
alone. Sampling methods (robust matting and its kin) instead ask whether the pixel *is* its
background or its foreground sample: ``w_B = exp(−|I − B|² / h²)`` pulls toward 0, ``w_F =
exp(−|I − F|² / h²)`` toward 1, and a mixed pixel, near neither, is left to the Laplacian. Here
that term, of weight λ_s, is added to the shipped one (the stop's samples.py put the same samples
into the KNN term, where one neighbour in 30 is too weak to tell). h² and λ_s chosen on the other
two folds. The layers as the pipeline's networks give them, display-encoded: the fold networks'
(PREFIX photo) or pull-push's (photo_none). The 36 held-out photo frames dumped by stop 34's
dump.py; the shipped refinement otherwise."""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import LAM, solve  # noqa: E402
from depth_trust import report, scores  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
VARIANTS = [(0.0, 0.0)] + list(itertools.product((1e-3, 3e-3, 1e-2), (3e-4, 1e-3, 3e-3, 1e-2)))  # (h², λ_s)


def explained(s: dict, depth: torch.Tensor, variant: tuple[float, float]) -> torch.Tensor:
    h2, lam_s = variant
    if not lam_s:
        return s["a1"]
    f = s["features"].reshape(s["features"].shape[0], -1)[:, torch.from_numpy(s["where"])].float()
    plate, fg, bg = f[0:3], f[3:6], f[6:9]
    w_f = torch.exp(-((plate - fg) ** 2).sum(0) / h2)
    w_b = torch.exp(-((plate - bg) ** 2).sum(0) / h2)
    d_data = LAM * s["conf"]
    d = d_data + lam_s * (w_f + w_b)
    target = (d_data * s["prior"] + lam_s * w_f) / d.clamp_min(1e-30)
    return solve(s, d, target)


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "photo"
    report(f"a data term from the layers that explain the pixel ({prefix})", scores(prefix, VARIANTS, explained),
           lambda v: f"h² {v[0]:g} λ_s {v[1]:g}")


if __name__ == "__main__":
    main()
