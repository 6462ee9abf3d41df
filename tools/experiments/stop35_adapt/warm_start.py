"""What the networks give the shipped round: python tools/experiments/stop35_adapt/warm_start.py

The round's conjugate gradients stop at a relative residual of 1e-4, so where the system is slow
to converge (deep in a wide band) the answer keeps some of its starting point: the matting
network's alpha with the networks, 0.5 without. On the 36 held-out photo frames (stop 34's dump.py
photo and photo_none), the networks' data term started from 0.5 and the priors' started from the
networks' alpha: which of the two (the start or the data term) carries the networks' share."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import FOLDS, FRAMES, LAM, full_alpha, scorer, solve  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))


def main() -> None:
    rows = []
    for names in FOLDS:
        for name in names:
            for v in ("Trimap1", "Trimap2"):
                nets = torch.load(FRAMES / f"photo_{name}_{v}.pt", weights_only=False)
                none = torch.load(FRAMES / f"photo_none_{name}_{v}.pt", weights_only=False)
                score = scorer(nets)
                half = torch.full_like(nets["a_net"], 0.5)
                rows.append([
                    *score(full_alpha(nets, nets["a1"])),
                    *score(full_alpha(nets, solve(nets | {"a_net": half}, LAM * nets["conf"]))),
                    *score(full_alpha(none, none["a1"])),
                    *score(full_alpha(none, solve(none | {"a_net": nets["a_net"]}, LAM * none["conf"]))),
                    *score(full_alpha(nets, nets["a_net"].clamp(0, 1))),
                ])
    r = np.array(rows).mean(0)
    print("SAD / Grad over the 36 held-out frames:")
    for i, what in enumerate(("networks (start: the matting network's alpha)", "networks' data term, start 0.5",
                              "priors (start 0.5)", "priors' data term, start: the matting network's alpha",
                              "the matting network's alpha alone (levels applied)")):
        print(f"  {what}: {r[2 * i]:.3f} / {r[2 * i + 1]:.3f}")


if __name__ == "__main__":
    main()
