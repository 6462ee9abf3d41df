"""Algebraic multigrid as the refinement's preconditioner (README, Benchmarks, "Stop 38"):
pip install pyamg && python tools/experiments/stop38_speed/preconditioner.py

The shipped system on the benchmark's GT24 frame at 1920×1080 (the matting Laplacian plus 0.01
times the KNN term within 32 px, a data term of 3e-4): torch's Jacobi-preconditioned conjugate
gradients (the pipeline's) against scipy's with pyamg's smoothed-aggregation and Ruge-Stüben
V-cycles, each to the shipped tolerance 1e-4, one thread. Not part of the product: not adopted."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from frames import build_frame  # noqa: E402

from core.compositing import add_knn, conjugate_gradients, matting_laplacian  # noqa: E402
from core.knn import candidates_within, features, knn_term, searches  # noqa: E402
from core.trimap import split_trimap  # noqa: E402


def main() -> None:
    import pyamg

    torch.set_num_threads(1)
    frame = build_frame(1920, 1080, 0.10, data=ROOT.parent / "shared" / "data", obj="GT24")
    fg, _, unknown = split_trimap(frame.trimap)
    image = torch.from_numpy(frame.plate.transpose(2, 0, 1).copy())
    lap = matting_laplacian(image, torch.from_numpy(unknown), torch.from_numpy(fg))
    knn = knn_term(features(frame.plate), unknown, fg, None, *searches(20, 0.02), workers=1,
                   candidates=candidates_within(unknown, 32))
    matrix, pull, diagonal = add_knn(lap, knn, 0.01)
    n = pull.numel()
    d = torch.full((n,), 3e-4 * 0.8) + 1e-6
    b = pull + d * torch.from_numpy(np.random.default_rng(0).random(n).astype(np.float32))
    start = torch.full((n,), 0.5)
    empty = torch.zeros(0)
    t0 = time.perf_counter()
    x, iterations = conjugate_gradients(matrix, empty, empty.long(), d, b, start, diagonal + d, 1e-4, 2000)
    print(f"torch, Jacobi: {iterations} iterations, {time.perf_counter() - t0:.2f} s")
    a = sp.csr_matrix((matrix.values().numpy().astype(np.float64), matrix.col_indices().numpy(),
                       matrix.crow_indices().numpy()), shape=(n, n)) + sp.diags(d.numpy().astype(np.float64))
    for name, build in (("smoothed aggregation", lambda: pyamg.smoothed_aggregation_solver(a, symmetry="symmetric")),
                        ("Ruge-Stüben", lambda: pyamg.ruge_stuben_solver(a))):
        t0 = time.perf_counter()
        levels = build()
        t1 = time.perf_counter()
        steps: list[int] = []
        sla.cg(a, b.numpy().astype(np.float64), x0=start.numpy().astype(np.float64), rtol=1e-4,
               M=levels.aspreconditioner(cycle="V"), callback=lambda _, steps=steps: steps.append(1), maxiter=400)
        print(f"pyamg {name}: set-up {t1 - t0:.2f} s, {len(steps)} iterations, {time.perf_counter() - t1:.2f} s")


if __name__ == "__main__":
    main()
