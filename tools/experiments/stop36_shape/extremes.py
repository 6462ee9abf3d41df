"""Does the data term pay more where its prior says "clearly background / foreground"?
python tools/experiments/stop36_shape/extremes.py [PREFIX] [SHAPE]

On the demo fur ball the data term at the shipped λ hurts the mid alphas with either layers
(networks' or pull-push's; HISTORY, stop 36). Here the data term's weight is shaped by its own
prior, ``λ · c · |2p − 1|^γ`` (γ 0: the shipped term), so that it pulls where the layers say 0 or
1 and leaves the mid alphas to the Laplacian and the KNN term; γ and λ chosen on the other two
folds. SHAPE ``both`` (default) is that; ``bg`` weights ``(1 − p)^γ`` (the prior trusted where it
says background, where the networks' share enters: the background network) and ``fg`` ``p^γ``.
The 36 held-out photo frames dumped by stop 34's dump.py (PREFIX photo: the networks;
photo_none: the priors)."""
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
VARIANTS = list(itertools.product((0.0, 0.5, 1.0, 2.0), (LAM, 1e-3, 3e-3)))  # (γ, λ)


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "photo"
    kind = sys.argv[2] if len(sys.argv) > 2 else "both"
    shapes = {"both": lambda p: (2 * p - 1).abs(), "bg": lambda p: 1 - p, "fg": lambda p: p}

    def shaped(s: dict, depth: torch.Tensor, variant: tuple[float, float]) -> torch.Tensor:
        gamma, lam = variant
        if gamma == 0 and lam == LAM:
            return s["a1"]
        return solve(s, lam * s["conf"] * shapes[kind](s["prior"].clamp(0, 1)) ** gamma)

    report(f"the data term shaped by its prior, {kind} ({prefix})", scores(prefix, VARIANTS, shaped),
           lambda v: f"γ {v[0]:g} λ {v[1]:g}")


if __name__ == "__main__":
    main()
