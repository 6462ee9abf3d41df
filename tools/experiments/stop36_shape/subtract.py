"""The matting Laplacian on the plate with the background taken away:
python tools/experiments/stop36_shape/subtract.py PREFIX

Closed-form matting assumes F and B each locally constant (a colour line); over a textured
background beside hair (the issue's tower and leaves) B is not, and the Laplacian ties hair to
the texture. With an estimate of B, the plate minus it, ``I − B = α(F − B)``, has the background's
texture taken out where the estimate is right. Here the Laplacian (and in one variant the KNN
term too) is built on the guide ``G = I − w·(B − 0.5)`` (clipped to [0, 1]), w 0 the shipped
plate, with B the first layers of the pipeline: the fold networks' (PREFIX photo) or pull-push's
(photo_none). The 36 held-out photo frames dumped by stop 34's dump.py; the shipped refinement
otherwise (λ 3e-4, κ 0.01, 20 neighbours at position 0.02 and 10 at 0.1, levels); each fold's w
chosen on the other two folds."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import LAM, NEIGH, POS, batch, photo_of, solve_system  # noqa: E402
from depth_trust import report, scores  # noqa: E402

from core.compositing import matting_laplacian  # noqa: E402
from core.knn import knn_term, searches  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
# (w, the KNN term on the guide too)
VARIANTS = [(0.0, False), (0.25, False), (0.5, False), (1.0, False), (0.5, True), (1.0, True)]


def guided(s: dict, depth: torch.Tensor, variant: tuple[float, bool]) -> torch.Tensor:
    w, knn_too = variant
    if not w:
        return s["a1"]
    if "plate" not in s:
        s["plate"], s["known"], s["unk"] = photo_of(s)
        s["bg"] = s["features"][6:9].float().numpy().transpose(1, 2, 0)
        s["knn"] = knn_term(s["plate"], s["unknown"], s["fg_known"], None, *searches(NEIGH, POS))
    guide = np.clip(s["plate"] - w * (s["bg"] - 0.5), 0, 1).astype(np.float32)
    lap = matting_laplacian(batch(guide)[0], s["unk"], s["known"])
    knn = knn_term(guide, s["unknown"], s["fg_known"], None, *searches(NEIGH, POS)) if knn_too else s["knn"]
    return solve_system(s, lap, knn, LAM * s["conf"])


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "photo"
    report(f"the Laplacian on the plate less w·B ({prefix})", scores(prefix, VARIANTS, guided),
           lambda v: f"w {v[0]:g}{', KNN too' if v[1] else ''}")


if __name__ == "__main__":
    main()
