"""Jacobi CG (the shipped solve) against pyamg-preconditioned CG on captured systems."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pyamg
import scipy.sparse
import scipy.sparse.linalg
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
import core.compositing as comp  # noqa: E402

torch.set_num_threads(2)
for i in range(3):
    s = torch.load(ROOT / "runs" / "s40" / f"system_{i}.pt")
    n = s["b"].numel()
    m = torch.sparse_csr_tensor(s["crow"], s["col"], s["val"], (n, n))
    t = time.perf_counter()
    x, made = comp.conjugate_gradients(m, torch.zeros(0, 25), torch.zeros(0, dtype=torch.int64), s["shift"], s["b"],
                                       s["x0"], s["diagonal"], s["tolerance"])
    tj = time.perf_counter() - t
    A = scipy.sparse.csr_matrix((s["val"].double().numpy(), s["col"].numpy(), s["crow"].numpy()), shape=(n, n))
    A = (A + scipy.sparse.diags(s["shift"].double().numpy())).tocsr()
    b = s["b"].double().numpy()
    x0 = s["x0"].double().numpy()
    ref = s["x"].double().numpy()
    for name, kw in (("sa", {}), ("sa sym", {"symmetry": "symmetric"}), ("rs", None)):
        t = time.perf_counter()
        if kw is None:
            ml = pyamg.ruge_stuben_solver(A)
        else:
            ml = pyamg.smoothed_aggregation_solver(A, **kw)
        setup = time.perf_counter() - t
        res: list = []
        t = time.perf_counter()
        xa = ml.solve(b, x0=x0, tol=s["tolerance"], accel="cg", residuals=res)
        solve = time.perf_counter() - t
        print(f"frame {i} n {n}: jacobi {made} its {tj:.2f} s | {name}: setup {setup:.2f} s solve {solve:.2f} s its {len(res)-1}"
              f" max|x−x_jacobi| {np.abs(np.clip(xa,0,1)-np.clip(ref,0,1)).max():.4f} mean {np.abs(np.clip(xa,0,1)-np.clip(ref,0,1)).mean():.5f}"
              f" rel res {np.linalg.norm(b-A@xa)/np.linalg.norm(b):.1e}", flush=True)
