"""The matting Laplacian with the network's alpha as a fourth guide channel:
python tools/experiments/stop38_guide/guide.py PREFIX

Stop 36 found that in the usual narrow band the known pixels, the Laplacian and the KNN term
settle alpha whatever the layers say: the networks can only earn more there by shaping the
smoothness terms themselves. Closed-form matting's local model is alpha affine in the colour
within each 3×3 window; with a fourth channel ``γ·A`` in the guide (``A`` the matting network's
alpha over the unknown pixels, the trimap's 0 / 1 elsewhere) the model becomes alpha affine in
(colour, A), so that alpha may follow the network's alpha where the colours cannot tell hair from
a textured background. γ sets, against ε, how freely (γ² var(A) ≫ ε: the fourth coefficient is
free). Also with ``A`` the data term's prior (the alpha read off the layers). Without networks
``A`` is 0.5 over the unknown region (the trimap alone). Scored like stop 36's: the 36 held-out
photo frames dumped by stop 34's dump.py (PREFIX photo: the fold networks; photo_none: the
priors), the shipped refinement otherwise, each fold's variant chosen on the other two."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import LAM, NEIGH, POS, photo_of, solve_system  # noqa: E402
from depth_trust import report, scores  # noqa: E402

from core.compositing import EPSILON, Laplacian  # noqa: E402
from core.knn import knn_term, searches  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
# (the fourth channel's source, γ); γ 0: the shipped three-channel Laplacian
VARIANTS = [("a_net", 0.0)] + [(src, g) for src in ("a_net", "prior") for g in (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 1.0)]


def laplacian_d(guide: np.ndarray, unknown: torch.Tensor, fg_known: torch.Tensor, epsilon: float = EPSILON) -> Laplacian:
    """:func:`core.compositing.matting_laplacian` for a ``d×H×W`` guide (``torch.linalg.inv``
    on the d×d window covariances; the product code is 3-channel only)."""
    g = torch.from_numpy(guide).to(torch.float64)
    d, height, width = g.shape
    index = torch.nonzero(unknown.reshape(-1)).reshape(-1)
    n = int(index.numel())
    rank = torch.full((height * width,), -1, dtype=torch.int64)
    rank[index] = torch.arange(n)
    near = torch.nn.functional.max_pool2d(unknown[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0
    near[0, :] = near[-1, :] = False
    near[:, 0] = near[:, -1] = False
    centres = torch.nonzero(near.reshape(-1)).reshape(-1)
    nine = torch.arange(9)
    shifts = (nine // 3 - 1) * width + (nine % 3 - 1)
    flat = g.reshape(d, -1).t()
    eye = (epsilon / 9.0) * torch.eye(d, dtype=torch.float64)
    base = torch.eye(9, dtype=torch.float64) - 1.0 / 9.0
    rows, cols, vals = [], [], []
    for start in range(0, int(centres.numel()), 20000):
        pixels = centres[start:start + 20000, None] + shifts[None, :]
        c = flat[pixels]
        c = c - c.mean(1, keepdim=True)
        inv = torch.linalg.inv(c.transpose(1, 2) @ c / 9.0 + eye)
        block = base - (c @ inv @ c.transpose(1, 2)) / 9.0
        rows.append(pixels[:, :, None].expand(-1, 9, 9).reshape(-1))
        cols.append(pixels[:, None, :].expand(-1, 9, 9).reshape(-1))
        vals.append(block.reshape(-1))
    import scipy.sparse
    r, c, v = torch.cat(rows).numpy(), torch.cat(cols).numpy(), torch.cat(vals).numpy()
    full = scipy.sparse.csr_matrix((v, (r, c)), shape=(height * width, height * width))
    idx = index.numpy()
    fg = fg_known.reshape(-1).numpy().astype(np.float64)
    uu = full[idx][:, idx].tocsr()
    pull = -(full[idx] @ fg)
    matrix = torch.sparse_csr_tensor(torch.from_numpy(uu.indptr).long(), torch.from_numpy(uu.indices).long(),
                                     torch.from_numpy(uu.data).float(), (n, n))
    diagonal = torch.from_numpy(uu.diagonal()).float()
    return Laplacian(matrix, torch.from_numpy(pull).float(), diagonal, index, None, None)


def guided(s: dict, depth: torch.Tensor, variant: tuple[str, float]) -> torch.Tensor:
    source, gamma = variant
    if not gamma:
        return s["a1"]
    if "plate" not in s:
        s["plate"], s["known"], s["unk"] = photo_of(s)
        s["knn"] = knn_term(s["plate"], s["unknown"], s["fg_known"], None, *searches(NEIGH, POS))
    a = s["fg_known"].astype(np.float32).reshape(-1)
    a[s["where"]] = s[source].float().numpy()
    guide = np.concatenate([s["plate"].transpose(2, 0, 1), gamma * a.reshape(1, *s["shape"])]).astype(np.float32)
    lap = laplacian_d(guide, s["unk"], s["known"])
    return solve_system(s, lap, s["knn"], LAM * s["conf"])


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "photo"
    report(f"the Laplacian guided by (plate, γ·A) ({prefix})", scores(prefix, VARIANTS, guided),
           lambda v: f"A {v[0]}, γ {v[1]:g}")


if __name__ == "__main__":
    main()
