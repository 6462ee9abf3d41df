"""Trust where two independent priors agree: python tools/experiments/stop34_confidence/two_priors.py

The prior alpha read off the networks' F and B, and the one read off the parameter-free pull-push
F and B (dump.py photo and photo_none: the same frames, the unknown pixels in the same order). Where
they agree within τ, the data term is raised by ``λ_hi c``; elsewhere it stays the shipped one.
Each fold's (λ_hi, τ) chosen on the other two folds."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import FRAMES, LAM, solve  # noqa: E402
from depth_trust import report, scores  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
VARIANTS = [(0.0, 0.0)] + [(lam, tau) for lam in (1e-3, 3e-3, 1e-2) for tau in (0.02, 0.05, 0.1)]


def agreed(s: dict, depth: torch.Tensor, variant: tuple[float, float]) -> torch.Tensor:
    lam, tau = variant
    if not lam:
        return s["a1"]
    if "other_prior" not in s:
        name = s["path"].name.replace("photo_", "photo_none_")
        s["other_prior"] = torch.load(FRAMES / name, weights_only=False)["prior"]
    agree = ((s["prior"] - s["other_prior"]).abs() < tau).float()
    return solve(s, LAM * s["conf"] + lam * s["conf"] * agree)


def agreement_precision(tau: float = 0.05) -> None:
    """How often the networks' prior is within 0.1 of the truth, where the two priors agree and over all."""
    hit = agree = right = total = 0.0
    for path in sorted(FRAMES.glob("photo_GT*.pt")):
        s = torch.load(path, weights_only=False)
        other = torch.load(FRAMES / path.name.replace("photo_", "photo_none_"), weights_only=False)["prior"]
        within = s["label"].reshape(-1)[torch.from_numpy(s["where"])].float()
        mask = ((s["prior"] - other).abs() < tau).float()
        hit, agree = hit + float((within * mask).sum()), agree + float(mask.sum())
        right, total = right + float(within.sum()), total + within.numel()
    print(f"the networks' prior within 0.1 of the truth: {hit / agree:.3f} where the priors agree within {tau:g} "
          f"({agree / total:.3f} of the unknown pixels), {right / total:.3f} over all")


def main() -> None:
    agreement_precision()
    report("trust where the networks' prior and pull-push's agree", scores("photo", VARIANTS, agreed), lambda v: f"λ_hi {v[0]:g} within {v[1]:g}")


if __name__ == "__main__":
    main()
