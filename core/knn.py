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

Features: the display-encoded colour in [0, 1] and the position scaled by the frame's width and
height to [0, 1]. Two searches (:func:`searches`): ``K`` neighbours with the position weighted
``w`` (near pixels of like colour), then ``K / 2`` more with it weighted 0.1 (colour nearly alone,
anywhere in the crop); pymatting's defaults are ``K = 20``, ``w = 2.0``, and the bundle records
the pair its cross-validation chose (:class:`core.compositing.Settings`). The folds have chosen
ever weaker position weights (2.0, 1.0, 0.25, then 0.02 in stop 29): below 0.1 the first search
is the more colour-led of the two, and the second keeps some neighbours near. The neighbours are found by :class:`scipy.spatial.cKDTree`
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
#: The position's weight in the second, colour-led search.
COLOUR_SEARCH_POSITION = 0.1


def features(display: np.ndarray) -> np.ndarray:
    """The term's colour features from a display-encoded crop that may exceed [0, 1] (a linear HDR
    plate's highlights): values in [0, 1] as they are, above 1 compressed to ``1 + ln(x)`` rather
    than clipped (clipped, every highlight has the same colour and the colour-led search ties them
    all together), below 0 clipped to 0."""
    x = np.asarray(display, dtype=np.float32)
    return np.where(x > 1, 1 + np.log(np.maximum(x, 1)), np.maximum(x, 0)).astype(np.float32)


def band(unknown: np.ndarray, width: int) -> np.ndarray:
    """The pixels within ``width`` px (Euclidean) of an unknown pixel, the unknown ones included:
    :func:`knn_term`'s ``candidates`` for a term limited to a band around the unknown region."""
    from scipy import ndimage

    unknown = np.asarray(unknown, bool)
    if not unknown.any():
        return unknown.copy()
    return ndimage.distance_transform_edt(~unknown) <= width


def candidates_within(unknown: np.ndarray, width: int) -> np.ndarray | None:
    """:func:`knn_term`'s ``candidates`` for the setting ``knn_band``
    (:class:`core.compositing.Settings`): :func:`band` of ``width`` px, or None (every pixel of
    the region) where ``width`` is 0."""
    return band(unknown, width) if width else None


def searches(neighbours: int, position: float) -> tuple[tuple[int, int], tuple[float, float]]:
    """The two searches for ``K = neighbours`` and ``w = position`` (module docstring), as
    :func:`knn_term`'s ``neighbours`` and ``distance_weights``: ``K`` at ``w``, ``K // 2`` at 0.1."""
    if isinstance(neighbours, bool) or int(neighbours) != neighbours or neighbours < 2:
        raise InputError(f"the KNN term needs a whole number of neighbours >= 2, not {neighbours!r}")
    if not float(position) > 0:
        raise InputError(f"the KNN term's position weight must be > 0, not {position!r}")
    return (int(neighbours), int(neighbours) // 2), (float(position), COLOUR_SEARCH_POSITION)


def term_for(settings: Any, colour: np.ndarray, unknown: np.ndarray, fg_known: np.ndarray,
             frame: tuple[int, int, int, int] | None = None, workers: int = -1) -> KnnTerm:
    """:func:`knn_term` as a :class:`core.compositing.Settings` asks for it: its neighbour sets
    (:func:`searches`), band (:func:`candidates_within`) and stride; the other arguments as
    :func:`knn_term`'s."""
    return knn_term(colour, unknown, fg_known, frame, *searches(settings.knn_neighbours, settings.knn_position),
                    workers=workers, candidates=candidates_within(unknown, settings.knn_band), stride=settings.knn_stride)


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
    workers: int = -1,
    extra: np.ndarray | None = None,
    samples: Sequence[tuple[np.ndarray, float]] = (),
    candidates: np.ndarray | None = None,
    stride: int = 1,
) -> KnnTerm:
    """The KNN term over the unknown pixels of a region.

    Args:
        colour: ``H×W×3`` float, the region's display-encoded colours in [0, 1] (the features).
        unknown, fg_known: ``H×W`` bool masks of the region (:func:`core.trimap.split_trimap`).
        frame: ``(frame height, frame width, top, left)``: the region's place in its frame, so that
            positions are scaled by the frame (a crop gets the features the whole frame gives it);
            default: the region is the frame.
        neighbours, distance_weights: one search per pair (module docstring).
        workers: threads of the neighbour search (-1: one per core; the pipeline passes torch's
            thread count, so ``OMP_NUM_THREADS`` on a shared farm node caps both).
        extra: optional ``H×W×E`` further features, already weighted, searched beside the colour
            and the position (none by default; for experiments with other features).
        samples: optional ``(layer, alpha)`` pairs, each an ``H×W×3`` colour layer (an estimate of
            F, ``alpha`` 1, or of B, ``alpha`` 0) whose values at the unknown pixels join the
            candidates as known pixels of that alpha at those pixels' positions: an unknown pixel
            whose colour lies nearer its estimated B than its other neighbours is pulled toward
            0 (none by default; for experiments; ``extra`` must then be empty).
        candidates: optional ``H×W`` bool mask of the known pixels the searches may find (the
            unknown pixels always may); default: every pixel of the region. A band of known
            pixels around the unknown region (:func:`band`) makes the k-d trees smaller and the
            term cheaper, an approximation: a neighbour beyond the band is not found.
        stride: only the unknown pixels on every ``stride``-th row and column of the frame search
            (1: every unknown pixel); the others are still found as neighbours and tied to their
            own pixels by the matting Laplacian. Each pair then counts ``stride²`` times, so that
            the term pulls as hard in all; ``stride²`` times fewer searches, an approximation.

    Returns:
        :class:`KnnTerm` for the unknown pixels in row-major order (that of
        :func:`core.compositing.matting_laplacian`'s ``index`` for the same region).
    """
    import scipy.sparse
    from scipy.spatial import cKDTree

    colour = np.asarray(colour, dtype=np.float32)
    unknown, fg_known = np.asarray(unknown, dtype=bool), np.asarray(fg_known, dtype=bool)
    h, w = unknown.shape
    if colour.shape[:2] != (h, w) or colour.ndim != 3 or colour.shape[2] != 3:
        raise InputError(f"the KNN term needs H×W×3 colours the size of the trimap ({w}x{h}), got {colour.shape}")
    if len(neighbours) != len(distance_weights) or not neighbours or min(neighbours) < 1:
        raise InputError(f"neighbours {tuple(neighbours)} and distance weights {tuple(distance_weights)} must pair up, "
                         "each search finding at least one")
    extra = np.zeros((h, w, 0), np.float32) if extra is None else np.asarray(extra, dtype=np.float32)
    if extra.ndim != 3 or extra.shape[:2] != (h, w):
        raise InputError(f"the KNN term's extra features must be H×W×E the size of the trimap ({w}x{h}), got {extra.shape}")
    if samples and extra.shape[2]:
        raise InputError("the KNN term takes extra features or samples, not both")
    for layer, _ in samples:
        if np.shape(layer) != (h, w, 3):
            raise InputError(f"a KNN sample layer must be H×W×3 the size of the trimap ({w}x{h}), got {np.shape(layer)}")
    if candidates is not None and np.shape(candidates) != (h, w):
        raise InputError(f"the KNN term's candidates must be an H×W mask the size of the trimap ({w}x{h}), "
                         f"got {np.shape(candidates)}")
    if isinstance(stride, bool) or int(stride) != stride or stride < 1:
        raise InputError(f"the KNN term's stride must be a whole number >= 1, not {stride!r}")
    frame_h, frame_w, top, left = frame if frame is not None else (h, w, 0, 0)
    where = np.flatnonzero(unknown.reshape(-1))
    n = where.size
    # The searching pixels: every unknown one, or those on the stride's grid (in frame coordinates).
    if stride > 1:
        on_grid = (((np.arange(h) + top) % stride == 0)[:, None] & ((np.arange(w) + left) % stride == 0)[None, :])
        query = np.flatnonzero((unknown & on_grid).reshape(-1))
    else:
        query = where
    m = len(samples) * n  # the sample candidates, after the region's pixels
    # Position of each unknown pixel among the unknowns (-1: known).
    order = np.full(h * w, -1, dtype=np.int64)
    order[where] = np.arange(n)
    x = (np.arange(w, dtype=np.float64) + left) / max(frame_w - 1, 1)
    y = (np.arange(h, dtype=np.float64) + top) / max(frame_h - 1, 1)
    features = np.empty((h * w + m, 5 + extra.shape[2]), np.float64)
    features[: h * w, :3] = colour.reshape(-1, 3)
    features[: h * w, 5:] = extra.reshape(h * w, -1)
    for j, (layer, _) in enumerate(samples):
        features[h * w + j * n: h * w + (j + 1) * n, :3] = np.asarray(layer, np.float64).reshape(-1, 3)[where]
    # The rows of features the searches may find: the region's candidate pixels, then the samples.
    pool = None if candidates is None else np.concatenate(
        [np.flatnonzero(np.asarray(candidates, bool).reshape(-1) | unknown.reshape(-1)), h * w + np.arange(m)])
    found = []
    for k, weight in zip(neighbours, distance_weights, strict=True):
        features[: h * w, 3] = np.tile(weight * x, h)
        features[: h * w, 4] = np.repeat(weight * y, w)
        features[h * w:, 3:5] = np.tile(features[where, 3:5], (len(samples), 1))  # each sample at its pixel
        k = min(int(k) + 1, h * w + m if pool is None else pool.size)  # the pixel itself is its own nearest neighbour: one more
        # Sliding-midpoint splits, not median ones: the same exact search, the tree built in about
        # half the time (a 1080p frame's 2 million points: 0.4-0.5 s against 0.8 s a search).
        tree = cKDTree(features if pool is None else features[pool], balanced_tree=False, compact_nodes=False)
        _, nearest = tree.query(features[query], k=k, workers=workers)
        # (query.size, k), not (query.size, -1): no unknown pixel on the stride's grid (a 1-px band
        # between its columns) searches from nowhere, and the term is then empty.
        found.append((nearest if pool is None else pool[nearest]).reshape(query.size, k))
    neighbour = np.hstack(found)  # q×K: each searching pixel's neighbours, all searches
    share = float(stride) ** 2 / (2.0 * sum(int(k) for k in neighbours))
    # Each candidate's alpha where known (a pixel of the region, then the samples).
    known_alpha = np.concatenate([fg_known.reshape(-1).astype(np.float64)]
                                 + [np.full(n, float(a)) for _, a in samples])
    rank = np.concatenate([order, np.full(m, -1, np.int64)])[neighbour]
    own = order[query]  # each searching pixel's place among the unknowns
    not_self = neighbour != query[:, None]  # a pixel paired with itself adds nothing
    inner = (rank >= 0) & not_self
    # Each pair (i, j) adds share · (a_i − a_j)²: +share on i's diagonal (and j's when unknown),
    # −share off the diagonal between two unknowns (both ways), +share · α_j to i's pull when j is known.
    diagonal = share * (np.bincount(own, weights=not_self.sum(1), minlength=n) + np.bincount(rank[inner], minlength=n))
    pull = np.zeros(n)
    pull[own] = share * np.where(rank < 0, known_alpha[neighbour], 0.0).sum(1)
    # The pairs between unknowns, row by row in row-major order (``own`` ascends): a CSR matrix without sorting.
    counts = np.zeros(n, np.int64)
    counts[own] = inner.sum(1)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    pairs = scipy.sparse.csr_matrix((np.full(int(indptr[-1]), share), rank[inner], indptr), shape=(n, n))
    # scipy sums the duplicates (a neighbour found by both searches, or from both ends).
    matrix = (scipy.sparse.diags(diagonal, format="csr") - pairs - pairs.T).tocsr()
    matrix.sum_duplicates()
    return KnnTerm(matrix, pull, diagonal)
