"""The layers as features of the KNN term: python tools/experiments/stop35_adapt/knn_layers.py PREFIX

Colour alone does not say which pixels share an alpha: a pixel's colour is αF + (1 − α)B, and two
pixels of one colour over different backgrounds (a tower beside the sky) differ in alpha. Here the
KNN term searches the colour, the position and β_F·F, β_B·B, with F and B the first layers of the
pipeline: the fold networks' (PREFIX photo) or pull-push's (photo_none, the pipeline without
networks). The 36 held-out photo frames dumped by stop 34's dump.py; the shipped refinement
otherwise (λ 3e-4, κ 0.01, 20 neighbours at position 0.02 and 10 at 0.1, levels); each fold's
(β_F, β_B) chosen on the other two folds."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import LAM, solve_with_knn  # noqa: E402
from depth_trust import report, scores  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
VARIANTS = [(0.0, 0.0)] + [(bf, bb) for bf, bb in ((0.0, 0.3), (0.0, 1.0), (0.3, 0.0), (1.0, 0.0), (0.3, 0.3), (1.0, 1.0))]


def with_layers(s: dict, depth: torch.Tensor, variant: tuple[float, float]) -> torch.Tensor:
    bf, bb = variant
    if not (bf or bb):
        return s["a1"]
    f = s["features"].float().numpy()
    extra = np.concatenate([bf * f[3:6].transpose(1, 2, 0), bb * f[6:9].transpose(1, 2, 0)], 2)
    return solve_with_knn(s, LAM * s["conf"], extra=extra)


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "photo"
    report(f"KNN features with the layers ({prefix})", scores(prefix, VARIANTS, with_layers),
           lambda v: f"β_F {v[0]:g} β_B {v[1]:g}")


if __name__ == "__main__":
    main()
