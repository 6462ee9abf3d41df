"""The matting network's alpha as a data term deep in the band only:
python tools/experiments/stop34_confidence/depth_network.py

Stop 32's term (``μ (a − a_net)²``) lost near the edges of loose trimaps; deep in a wide band the
question is mostly whether a pixel is foreground or background, which a network may answer better
than fine strands. Here the term is ``μ c`` beyond D px from any known pixel only (c: the |F − B|
confidence, as the shipped term), μ 1e-4 to 3e-3, D 8, 16 or 32, on the 36 held-out photo frames
(dump.py photo), each fold's choice made on the other two. The priors have no such network: their
figure is the shipped setting's (depth_trust.py)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import LAM, solve  # noqa: E402
from depth_trust import report, scores  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
VARIANTS = [(0.0, 0)] + [(mu, depth) for mu in (1e-4, 3e-4, 1e-3, 3e-3) for depth in (8, 16, 32)]


def network_term(s: dict, depth: torch.Tensor, variant: tuple[float, int]) -> torch.Tensor:
    """The shipped data term plus ``μ c (a − a_net)²`` beyond D px."""
    mu, beyond = variant
    if not mu:
        return s["a1"]
    d1 = LAM * s["conf"]
    d2 = mu * s["conf"] * (depth > beyond).float()
    target = (d1 * s["prior"] + d2 * s["a_net"]) / (d1 + d2).clamp_min(1e-12)
    return solve(s, d1 + d2, target)


def main() -> None:
    report("networks, the matting network's alpha trusted deep in the band", scores("photo", VARIANTS, network_term), lambda v: f"μ {v[0]:g} beyond {v[1]} px")


if __name__ == "__main__":
    main()
