"""Where the KNN term's time goes, and pykdtree against scipy's cKDTree (README, Benchmarks, "Stop 38"):
pip install pykdtree && python tools/experiments/stop38_speed/knn_search.py

The benchmark's GT24 frame at 1920×1080 (10 % unknown), the shipped searches (20 neighbours at
position weight 0.02, 10 at 0.1) over the known pixels within 32 px of the unknown region: each
tree's build and query, one thread, and how many neighbours pykdtree finds alike (ties between
equidistant pixels may be broken otherwise). Not part of the product: pykdtree was not adopted."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from frames import build_frame  # noqa: E402

from core.knn import candidates_within, features  # noqa: E402
from core.trimap import split_trimap  # noqa: E402


def main() -> None:
    from pykdtree.kdtree import KDTree

    frame = build_frame(1920, 1080, 0.10, data=ROOT.parent / "shared" / "data", obj="GT24")
    fg, _, unknown = split_trimap(frame.trimap)
    h, w = unknown.shape
    pool = np.flatnonzero(candidates_within(unknown, 32).reshape(-1) | unknown.reshape(-1))
    where = np.flatnonzero(unknown.reshape(-1))
    colour = features(frame.plate).reshape(-1, 3).astype(np.float64)
    x, y = np.tile(np.arange(w) / (w - 1), h), np.repeat(np.arange(h) / (h - 1), w)
    print(f"{where.size} unknown pixels, {pool.size} candidates")
    for k, weight in ((21, 0.02), (11, 0.1)):
        f = np.column_stack([colour, weight * x, weight * y])
        t0 = time.perf_counter()
        tree = cKDTree(f[pool], balanced_tree=False, compact_nodes=False)
        t1 = time.perf_counter()
        _, ref = tree.query(f[where], k=k, workers=1)
        t2 = time.perf_counter()
        fast = KDTree(f[pool])
        t3 = time.perf_counter()
        _, found = fast.query(f[where], k=k)
        t4 = time.perf_counter()
        alike = float((np.sort(found, 1) == np.sort(ref, 1)).mean())
        print(f"k {k}, position {weight}: cKDTree build {t1 - t0:.2f} s, query {t2 - t1:.2f} s; "
              f"pykdtree build {t3 - t2:.2f} s, query {t4 - t3:.2f} s; neighbours alike {alike:.4%}")


if __name__ == "__main__":
    main()
