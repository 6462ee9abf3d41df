"""Classical matting baselines that LBSMatte is evaluated against (SPEC §9).

Every baseline has the same signature, ``fn(image, trimap) -> alpha``:

image
    ``H×W×3`` float in [0, 1], display-encoded (sRGB), as the networks see it; or ``uint8`` /
    ``uint16``, scaled by their maximum.
trimap
    ``H×W`` float, 0 = BG, 1 = FG, strictly between = unknown (normalised by
    :func:`core.trimap.normalise_trimap`, so 8-bit 0/128/255 files work as read, ``uint8`` too).
alpha
    ``H×W`` float32 in [0, 1]; exactly the trimap's 0/1 in its known regions.

========================  ========================================================================
``closed_form``           Levin et al. 2008, :func:`pymatting.estimate_alpha_cf`
``knn``                   Chen et al. 2013, :func:`pymatting.estimate_alpha_knn`
``lbdm``                  Zheng & Kambhamettu 2009, :func:`pymatting.estimate_alpha_lbdm`
``clustering``            K-means/GMM colour clustering (seed 002), :func:`estimate_alpha_clustering`
========================  ========================================================================

Foreground and background colours for any alpha come from the multilevel estimator of Germer et
al. 2020 (:func:`estimate_foreground`).

Example
-------
>>> import numpy as np
>>> image = np.zeros((8, 8, 3)); image[:, 4:] = 1.0
>>> trimap = np.full((8, 8), 0.5); trimap[:, 0] = 0.0; trimap[:, -1] = 1.0
>>> alpha = BASELINES["clustering"](image, trimap)
>>> alpha[0].tolist()
[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable

import numpy as np

from core.colour import scale_integers
from core.errors import InputError
from core.trimap import split_trimap

log = logging.getLogger(__name__)

Baseline = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _prepare(image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 ``H×W×3`` image and an exact {0, 0.5, 1} float64 trimap (``uint8``/``uint16`` arrays
    of either scaled by their maximum, :func:`core.colour.scale_integers`)."""
    img = np.asarray(scale_integers(image, "the image"), dtype=np.float64)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] < 3:
        raise InputError(f"a baseline needs an H×W×3 image, got shape {np.shape(image)}")
    img = np.clip(np.nan_to_num(img[..., :3], nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    from core.trimap import normalise_trimap

    # As given: cast to float first, a uint8 0/128/255 trimap was refused as a float one of 0..255.
    clean = normalise_trimap(np.asarray(trimap)).astype(np.float64)
    if clean.shape != img.shape[:2]:
        raise InputError(
            f"image and trimap differ in size: image is {img.shape[1]}x{img.shape[0]}, "
            f"trimap is {clean.shape[1]}x{clean.shape[0]}"
        )
    return np.ascontiguousarray(img), clean


def _solve(solver: Callable[..., np.ndarray], image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Run a pymatting solver, keep the known regions and handle the degenerate trimaps.

    pymatting refuses trimaps without known FG or BG; then the smoothest answer those
    Laplacian methods could give is the constant of the known region (or 0 with none known).
    """
    img, tri = _prepare(image, trimap)
    fg_known, bg_known, unknown = split_trimap(tri)
    has_fg, has_bg = bool(fg_known.any()), bool(bg_known.any())
    if not unknown.any():
        return tri.astype(np.float32)
    if not (has_fg and has_bg):
        return np.where(unknown, 1.0 if has_fg else 0.0, tri).astype(np.float32)
    # pymatting prints "PERFORMANCE WARNING" lines when its incomplete-Cholesky preconditioner
    # needs a retry; keep them out of the tables on stdout.
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        alpha = solver(img, tri)
    if captured.getvalue().strip():
        log.debug("%s: %s", getattr(solver, "__name__", "solver"), captured.getvalue().strip())
    return _finish(alpha, tri)


def _finish(alpha: np.ndarray, tri: np.ndarray) -> np.ndarray:
    alpha = np.clip(np.nan_to_num(np.asarray(alpha, dtype=np.float64), nan=0.0), 0.0, 1.0)
    alpha = np.where(split_trimap(tri)[2], alpha, tri)
    return alpha.astype(np.float32)


def estimate_alpha_closed_form(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Closed-form matting (Levin, Lischinski, Weiss 2008) via :func:`pymatting.estimate_alpha_cf`."""
    from pymatting import estimate_alpha_cf

    return _solve(estimate_alpha_cf, image, trimap)


def estimate_alpha_knn(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """KNN matting (Chen, Li, Tang 2013) via :func:`pymatting.estimate_alpha_knn`."""
    from pymatting import estimate_alpha_knn as knn

    return _solve(knn, image, trimap)


def estimate_alpha_lbdm(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Learning-based digital matting (Zheng, Kambhamettu 2009) via :func:`pymatting.estimate_alpha_lbdm`."""
    from pymatting import estimate_alpha_lbdm as lbdm

    return _solve(lbdm, image, trimap)


def estimate_alpha_clustering(
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    method: str = "kmeans",
    clusters: int = 5,
    max_samples: int = 20000,
    seed: int = 0,
) -> np.ndarray:
    """The K-means/GMM colour-clustering baseline of seed 002.

    The known FG colours and the known BG colours are each clustered (``method`` ``"kmeans"``:
    :class:`sklearn.cluster.KMeans`; ``"gmm"``: :class:`sklearn.mixture.GaussianMixture`, its
    component means). For every unknown pixel ``I`` and every pair of cluster means ``(F, B)``,
    alpha is the projection of ``I`` on the colour line through them,
    ``α = clip((I − B)·(F − B) / |F − B|², 0, 1)``, and the pair whose composite
    ``α·F + (1 − α)·B`` lies closest to ``I`` (smallest chromatic distortion) wins.

    It uses colour only, no spatial smoothness: the floor any learned matte must beat.

    Parameters
    ----------
    image, trimap:
        As every baseline (module docstring).
    method:
        ``"kmeans"`` or ``"gmm"``.
    clusters:
        Clusters per side (fewer when a side has fewer distinct colours).
    max_samples:
        Known pixels per side used for fitting (a seeded random subset above this).
    seed:
        Seed of the subsampling and of the clustering: the result is reproducible.
    """
    if method not in ("kmeans", "gmm"):
        raise InputError(f"unknown clustering method {method!r}: expected 'kmeans' or 'gmm'")
    img, tri = _prepare(image, trimap)
    fg_known, bg_known, unknown = split_trimap(tri)
    if not unknown.any():
        return tri.astype(np.float32)
    if not (fg_known.any() and bg_known.any()):
        return np.where(unknown, 1.0 if fg_known.any() else 0.0, tri).astype(np.float32)
    rng = np.random.default_rng(seed)
    fg_means = _cluster_means(img[fg_known], method, clusters, max_samples, rng, seed)
    bg_means = _cluster_means(img[bg_known], method, clusters, max_samples, rng, seed)

    pixels = img[unknown]  # N×3
    best_alpha = np.zeros(len(pixels))
    best_cost = np.full(len(pixels), np.inf)
    for f in fg_means:
        for b in bg_means:
            line = f - b
            length2 = float(line @ line)
            if length2 < 1e-12:  # identical means: any alpha explains the pixel equally (badly)
                a = np.full(len(pixels), 0.5)
            else:
                a = np.clip((pixels - b) @ line / length2, 0.0, 1.0)
            residual = pixels - (a[:, None] * f + (1.0 - a[:, None]) * b)
            cost = np.einsum("ij,ij->i", residual, residual)
            better = cost < best_cost
            best_cost[better] = cost[better]
            best_alpha[better] = a[better]
    alpha = tri.copy()
    alpha[unknown] = best_alpha
    return _finish(alpha, tri)


def _cluster_means(
    colours: np.ndarray, method: str, clusters: int, max_samples: int, rng: np.random.Generator, seed: int
) -> np.ndarray:
    """``k×3`` cluster centres of ``colours`` (``N×3``)."""
    if len(colours) > max_samples:
        colours = colours[rng.choice(len(colours), size=max_samples, replace=False)]
    distinct = np.unique(np.round(colours, 4), axis=0)
    k = max(1, min(clusters, len(distinct)))
    if k == len(distinct):
        return distinct
    if method == "gmm":
        from sklearn.mixture import GaussianMixture

        gmm = GaussianMixture(n_components=k, covariance_type="full", reg_covar=1e-4, random_state=seed)
        return np.asarray(gmm.fit(colours).means_, dtype=np.float64)
    from sklearn.cluster import KMeans

    kmeans = KMeans(n_clusters=k, n_init=3, random_state=seed)
    return np.asarray(kmeans.fit(colours).cluster_centers_, dtype=np.float64)


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background colours for ``alpha`` by multilevel estimation (Germer et al. 2020).

    Wraps ``pymatting.estimate_foreground_ml(image, alpha, return_background=True)``; returns
    ``(fg, bg)``, each ``H×W×3`` float32 in [0, 1] in the image's encoding.
    """
    from pymatting import estimate_foreground_ml

    img = np.clip(np.asarray(scale_integers(image, "the image"), dtype=np.float64)[..., :3], 0.0, 1.0)
    a = np.clip(np.asarray(scale_integers(alpha, "the alpha"), dtype=np.float64), 0.0, 1.0)
    fg, bg = estimate_foreground_ml(img, a, return_background=True)
    fg = np.clip(np.asarray(fg, dtype=np.float32), 0.0, 1.0)
    bg = np.clip(np.asarray(bg, dtype=np.float32), 0.0, 1.0)
    return fg, bg


#: Registry of the baselines by the names ``lbsmatte evaluate --baselines`` takes.
BASELINES: dict[str, Baseline] = {
    "closed_form": estimate_alpha_closed_form,
    "knn": estimate_alpha_knn,
    "lbdm": estimate_alpha_lbdm,
    "clustering": estimate_alpha_clustering,
}
