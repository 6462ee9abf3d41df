"""The matting Laplacian's ε (regularisation of each window's colour covariance):
python tools/experiments/stop37_epsilon/epsilon.py [PREFIX] [below]

The refinement has always built Levin et al.'s Laplacian at ε 1e-7 (pymatting's default, and the
closed-form baseline's); a larger ε makes the windows' colour lines stiffer, smoothing alpha where
the colours are noisy or nearly flat. Scored like stop 36's experiments: the 36 held-out photo
frames dumped by stop 34's dump.py (PREFIX photo: the networks; photo_none: the priors), the
shipped refinement otherwise (the KNN term built again over the photo once per frame), each fold's
ε chosen on the other two folds; ``below`` tries ε under the shipped 1e-7 instead. ``cf`` instead of a prefix scores pymatting's closed-form matting
at the same ε values (given the same chance)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import FOLDS, LAM, NEIGH, POS, batch, photo_of, read_photo, solve_system  # noqa: E402
from depth_trust import mean, report, scores  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[3] / "tools"))
from cross_validate import _scorer  # noqa: E402

from core.compositing import matting_laplacian  # noqa: E402
from core.knn import knn_term, searches  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
VARIANTS = [1e-7, 1e-6, 1e-5, 1e-4, 1e-3]  # 1e-7: the shipped Laplacian
if "below" in sys.argv[2:]:
    VARIANTS = [1e-7, 3e-8, 1e-8, 1e-9]


def with_epsilon(s: dict, depth: torch.Tensor, eps: float) -> torch.Tensor:
    if eps == 1e-7:
        return s["a1"]
    if "knn" not in s:
        s["plate"], s["fgk"], s["unk"] = photo_of(s)
        s["knn"] = knn_term(s["plate"], s["unknown"], s["fg_known"], None, *searches(NEIGH, POS))
    lap = matting_laplacian(batch(s["plate"])[0], s["unk"], s["fgk"], epsilon=eps)
    return solve_system(s, lap, s["knn"], LAM * s["conf"])


def closed_form() -> None:
    from pymatting import estimate_alpha_cf

    tables = []
    for names in FOLDS:
        table: dict[float, list] = {v: [] for v in VARIANTS}
        for name in names:
            for trimap in ("Trimap1", "Trimap2"):
                plate, tri, gt = read_photo(name, trimap)
                score = _scorer(gt, tri)
                for eps in VARIANTS:
                    a = estimate_alpha_cf(plate.astype(np.float64), tri.astype(np.float64),
                                          laplacian_kwargs={"epsilon": eps})
                    table[eps].append(score(np.clip(a, 0, 1).astype(np.float32)))
        tables.append(table)
    report("closed-form (pymatting) at each ε", tables, lambda v: f"ε {v:g}")
    print("  (mean of the shipped ε:", mean([r for t in tables for r in t[1e-7]]), ")")


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "photo"
    if prefix == "cf":
        closed_form()
        return
    report(f"the matting Laplacian's ε ({prefix})", scores(prefix, VARIANTS, with_epsilon), lambda v: f"ε {v:g}")


if __name__ == "__main__":
    main()
