"""The non-local term of the refinement: alpha pulled toward that of pixels of like colour.

The matting Laplacian (:func:`core.compositing.matting_laplacian`) ties each pixel to its 3×3
windows' neighbours; a hair strand whose colour repeats 40 px away learns nothing from there. KNN
matting (Chen, Li and Tang, "KNN Matting", TPAMI 2013) ties each pixel to its ``k`` nearest
neighbours in a feature space of colour and position, wherever they are. The refinement adds
``κ · E_knn(a)`` to its energy, with

``E_knn(a) = Σ_{i ∈ U} Σ_{j ∈ N(i)} (a_i − a_j)² / (2K)``

over the unknown pixels ``U`` and their neighbours ``N(i)`` (known or unknown; a known neighbour's
alpha is its trimap value), ``K`` the neighbours per pixel in all. Only the unknown pixels search
for neighbours: pymatting's :func:`pymatting.knn_laplacian` searches from every pixel of the
image (and row-normalises, which makes its matrix unsymmetric); this term is symmetric, positive
semi-definite (conjugate gradients need both), and its cost follows the unknown band, not the
frame.

Features as pymatting's defaults: the display-encoded colour in [0, 1] and the position scaled by
the frame's width and height to [0, 1], weighted 2.0 for 20 neighbours and 0.1 for 10 more (near
first, then colour alone, anywhere). The neighbours are found by :class:`scipy.spatial.cKDTree`
on the CPU (no k-d tree in torch; brute force on a GPU is quadratic in the crop's pixels), and the
term is a scipy matrix: :func:`core.compositing.add_knn` adds it to the Laplacian with scipy and
hands the sum to the refinement's device (torch's own sum of two sparse CSR tensors leaks about
20 MB a call in torch 2.13).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import InputError

#: Neighbours per search, and each search's weight of position against colour (pymatting's defaults).
NEIGHBOURS: tuple[int, ...] = (20, 10)
DISTANCE_WEIGHTS: tuple[float, ...] = (2.0, 0.1)


@dataclass
class KnnTerm:
    """``E_knn`` as the refinement's linear system needs it (module docstring), on the CPU:
    :func:`core.compositing.add_knn` adds it, weighted, to the matting Laplacian's system.

    Attributes:
        matrix: ``n×n`` :class:`scipy.sparse.csr_matrix` (float64), the Hessian's half over the
            unknown pixels (row-major), symmetric positive semi-definite.
        pull: ``n`` float64: the known neighbours' alpha, weighted (the system's right-hand side).
        diagonal: ``n`` float64: the matrix's diagonal (the Jacobi preconditioner's share).
    """

    matrix: Any
    pull: np.ndarray
    diagonal: np.ndarray


def knn_term(
    colour: np.ndarray, unknown: np.ndarray, fg_known: np.ndarray,
    frame: tuple[int, int, int, int] | None = None,
    neighbours: Sequence[int] = NEIGHBOURS, distance_weights: Sequence[float] = DISTANCE_WEIGHTS,
) -> KnnTerm:
    """The KNN term over the unknown pixels of a region.

    Args:
        colour: ``H×W×3`` float, the region's display-encoded colours in [0, 1] (the features).
        unknown, fg_known: ``H×W`` bool masks of the region (:func:`core.trimap.split_trimap`).
        frame: ``(frame height, frame width, top, left)``: the region's place in its frame, so that
            positions are scaled by the frame (a crop gets the features the whole frame gives it);
            default: the region is the frame.
        neighbours, distance_weights: one search per pair (module docstring).

    Returns:
        :class:`KnnTerm` for the unknown pixels in row-major order (that of
        :func:`core.compositing.matting_laplacian`'s ``index`` for the same region).
    """
    import scipy.sparse
    from scipy.spatial import cKDTree

    colour = np.asarray(colour, dtype=np.float32)
    h, w = unknown.shape
    if colour.shape[:2] != (h, w) or colour.ndim != 3 or colour.shape[2] != 3:
        raise InputError(f"the KNN term needs H×W×3 colours the size of the trimap ({w}x{h}), got {colour.shape}")
    if len(neighbours) != len(distance_weights) or not neighbours or min(neighbours) < 1:
        raise InputError(f"neighbours {tuple(neighbours)} and distance weights {tuple(distance_weights)} must pair up, "
                         "each search finding at least one")
    frame_h, frame_w, top, left = frame if frame is not None else (h, w, 0, 0)
    flat_unknown = unknown.reshape(-1)
    where = np.flatnonzero(flat_unknown)
    n = where.size
    # Position of each unknown pixel among the unknowns (-1: known), and the known pixels' alpha.
    order = np.full(h * w, -1, dtype=np.int64)
    order[where] = np.arange(n)
    known_alpha = fg_known.reshape(-1).astype(np.float64)
    ys, xs = np.divmod(np.arange(h * w, dtype=np.float64), w)
    x = (xs + left) / max(frame_w - 1, 1)
    y = (ys + top) / max(frame_h - 1, 1)
    rgb = colour.reshape(-1, 3).astype(np.float64)
    share = 1.0 / (2.0 * sum(int(k) for k in neighbours))
    rows, cols = [], []
    for k, weight in zip(neighbours, distance_weights, strict=True):
        features = np.column_stack([rgb, weight * x, weight * y])
        k = min(int(k) + 1, h * w)  # the pixel itself is its own nearest neighbour: one more
        _, found = cKDTree(features).query(features[where], k=k, workers=-1)
        found = found.reshape(n, -1)
        rows.append(np.repeat(np.arange(n), found.shape[1]))
        cols.append(found.reshape(-1))
    i = np.concatenate(rows)
    j = np.concatenate(cols)
    keep = j != where[i]  # a pixel paired with itself adds nothing
    i, j = i[keep], j[keep]
    j_order = order[j]
    both = j_order >= 0
    # Each pair (i, j) adds share · (a_i − a_j)²: +share on i's diagonal (and j's when unknown),
    # −share off the diagonal between two unknowns, +share · α_j to i's pull when j is known.
    diagonal = np.bincount(i, minlength=n) * share + np.bincount(j_order[both], minlength=n) * share
    pull = np.bincount(i[~both], weights=known_alpha[j[~both]], minlength=n) * share
    ii, jj = i[both], j_order[both]
    entries_r = np.concatenate([ii, jj, np.arange(n)])
    entries_c = np.concatenate([jj, ii, np.arange(n)])
    values = np.concatenate([np.full(2 * ii.size, -share), diagonal])
    # scipy sums the duplicate pairs (a neighbour found by both searches, or from both ends).
    matrix = scipy.sparse.coo_matrix((values, (entries_r, entries_c)), shape=(n, n)).tocsr()
    return KnnTerm(matrix, pull, diagonal)
