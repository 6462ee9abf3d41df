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

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))
from common import FOLDS, FRAMES, LAM, ROOT, full_alpha, solve  # noqa: E402
from depth_trust import mean, nested  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))
from cross_validate import _scorer  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
VARIANTS = [(0.0, 0)] + [(mu, depth) for mu in (1e-4, 3e-4, 1e-3, 3e-3) for depth in (8, 16, 32)]


def main() -> None:
    import depth_trust

    depth_trust.VARIANTS = VARIANTS  # nested() chooses among these
    tables = []
    for names in FOLDS:
        table: dict[tuple[float, int], list[tuple[float, float]]] = {v: [] for v in VARIANTS}
        for name in names:
            for trimap in ("Trimap1", "Trimap2"):
                s = torch.load(FRAMES / f"photo_{name}_{trimap}.pt", weights_only=False)
                gt = s["gt"].numpy()
                tri = np.where(s["fg_known"], 1.0, np.where(s["unknown"], 0.5, 0.0)).astype(np.float32)
                score = _scorer(gt, tri)
                dist = torch.from_numpy(ndimage.distance_transform_edt(s["unknown"]).reshape(-1)[s["where"]]).float()
                d1 = LAM * s["conf"]
                for mu, depth in VARIANTS:
                    if not mu:
                        table[(mu, depth)].append(score(full_alpha(s, s["a1"])))
                        continue
                    d2 = mu * s["conf"] * (dist > depth).float()
                    target = (d1 * s["prior"] + d2 * s["a_net"]) / (d1 + d2).clamp_min(1e-12)
                    table[(mu, depth)].append(score(full_alpha(s, solve(s, d1 + d2, target))))
        tables.append(table)
    (sad, grad), chosen = nested(tables)
    print(f"networks, the matting network's alpha trusted deep in the band: nested {sad:.3f} / {grad:.3f}, chosen {chosen}")
    for v in VARIANTS:
        m = mean([r for t in tables for r in t[v]])
        per_fold = " ".join(f"{mean(t[v])[0]:.2f}" for t in tables)
        print(f"  μ {v[0]:g} beyond {v[1]} px: pooled (in-sample) {m[0]:.3f} / {m[1]:.3f}; folds {per_fold}")


if __name__ == "__main__":
    main()
