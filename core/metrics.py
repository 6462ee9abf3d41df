"""Matting error metrics of the alphamatting.com benchmark and Deep Image Matting (SPEC §9).

All alpha metrics compare a predicted matte with the ground truth over the trimap's **unknown**
region only, exactly as the alphamatting.com benchmark (Rhemann et al., CVPR 2009) and the
Composition-1k evaluation code of Deep Image Matting (Xu et al., CVPR 2017) do:

========  =====================================================================  ===========
name      definition                                                             scale
========  =====================================================================  ===========
``sad``   Σ |α − α_gt|                                                           ÷ 1000
``mse``   mean (α − α_gt)² (over the unknown pixels)                             none
``grad``  Σ (|∇α| − |∇α_gt|)², Gaussian-derivative gradients with σ = 1.4        ÷ 1000
``conn``  Σ |φ(α) − φ(α_gt)|, connectivity: threshold step 0.1, θ = 0.15, p = 1   ÷ 1000
========  =====================================================================  ===========

Alphas are ``H×W`` floats in [0, 1] (not 0..255: the reference code divides 8-bit mattes by 255
first, so the numbers are the same); integer arrays (``uint8``/``uint16`` as PIL or OpenCV read
8- and 16-bit files) are divided by their type's maximum first, trimaps too. Other integer types,
and float alphas or trimaps above 1.5 (0..255 floats), are refused with :class:`InputError`
rather than scored as something they are not. The region is either
a boolean ``H×W`` mask or a trimap split as everywhere else by :func:`core.trimap.split_trimap`
(unknown: strictly between 10/255 and 245/255; 8-bit trimaps read as 128/255 count as unknown).

Example
-------
>>> import numpy as np
>>> gt = np.zeros((4, 4)); trimap = np.full((4, 4), 0.5)
>>> round(sad(gt + 0.25, gt, trimap), 6), round(mse(gt + 0.25, gt, trimap), 6)
(0.004, 0.0625)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import ndimage

from core.colour import is_8_or_16_bit, scale_integers
from core.errors import InputError
from core.trimap import EIGHT_BIT_SCALE_ABOVE, split_trimap

#: Names of the alpha metrics, in the order tables show them.
ALPHA_METRICS = ("sad", "mse", "grad", "conn")

#: Names of the foreground-colour metrics (:func:`foreground_error`).
FG_METRICS = ("fg_sad", "fg_mse")

#: Names of the background-colour metrics (:func:`background_error`).
BG_METRICS = ("bg_sad", "bg_mse")


def _unit(x: np.ndarray, what: str, matte: bool = True) -> np.ndarray:
    """``x`` as float64, ``uint8``/``uint16`` arrays (8- or 16-bit files as read by PIL/OpenCV)
    divided by their type's maximum, as the reference code divides 8-bit mattes by 255: never
    0..255 taken as alpha. Other integer types are refused (:func:`core.colour.scale_integers`,
    the one rule: by ``int64``'s maximum 0/128/255 would all read as 0), and so is a float
    ``matte`` (an alpha or trimap) above :data:`EIGHT_BIT_SCALE_ABOVE`: 0..255 floats would
    multiply SAD by 255, or leave a trimap with no unknown pixel and every error 0."""
    a = np.asarray(x)
    if a.dtype.kind in "ui":
        if not is_8_or_16_bit(a.dtype):
            scale_integers(a, what)  # raises InputError, naming what
        return a.astype(np.float64) / float(np.iinfo(a.dtype).max)
    a = a.astype(np.float64)
    top = float(np.nanmax(a, initial=-np.inf)) if matte and a.size else 0.0
    if top > EIGHT_BIT_SCALE_ABOVE:
        raise InputError(
            f"{what} holds float values up to {top:g}: it must be 0..1; for one on the 8-bit scale 0..255, "
            "divide it by 255 (or pass it as uint8)")
    return a


def unknown_region(trimap: np.ndarray) -> np.ndarray:
    """Boolean ``H×W`` mask of the unknown region.

    ``trimap`` is a boolean mask (returned as is) or a trimap, split by
    :func:`core.trimap.split_trimap` (0.5, or 128/255 from an 8-bit file, is unknown; values within
    ``TOLERANCE`` of 0 or 1 are known). A trailing channel axis of size 1 is dropped.
    """
    t = np.asarray(trimap)
    if t.ndim == 3 and t.shape[2] == 1:
        t = t[..., 0]
    if t.ndim != 2:
        raise InputError(f"a trimap or region mask must be H×W, got shape {t.shape}")
    if t.dtype == bool:
        return t
    return split_trimap(_unit(t, "the trimap"))[2]


def _check(alpha: np.ndarray, alpha_gt: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = _unit(alpha, "the alpha")
    g = _unit(alpha_gt, "the ground-truth alpha")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if g.ndim == 3 and g.shape[2] == 1:
        g = g[..., 0]
    region = unknown_region(trimap)
    if a.ndim != 2 or a.shape != g.shape or region.shape != a.shape:
        raise InputError(
            f"alpha {np.shape(alpha)}, ground truth {np.shape(alpha_gt)} and trimap {np.shape(trimap)} "
            "must all be the same H×W"
        )
    return a, g, region


def sad(alpha: np.ndarray, alpha_gt: np.ndarray, trimap: np.ndarray) -> float:
    """Sum of absolute differences over the unknown region, divided by 1000."""
    a, g, region = _check(alpha, alpha_gt, trimap)
    return float(np.abs(a - g)[region].sum() / 1000.0)


def mse(alpha: np.ndarray, alpha_gt: np.ndarray, trimap: np.ndarray) -> float:
    """Mean squared error over the unknown pixels (0 when there are none)."""
    a, g, region = _check(alpha, alpha_gt, trimap)
    n = int(region.sum())
    return float(np.square(a - g)[region].sum() / n) if n else 0.0


@lru_cache(maxsize=4)
def _gaussian_factors(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """``(G, G')`` scaled so that their outer product is :func:`gaussian_derivative_kernel`."""
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * 1e-2)))
    u = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(u**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    dg = -u * g / sigma**2
    # ‖outer(g, dg)‖_F = ‖g‖·‖dg‖: each factor normalised on its own.
    return g / np.linalg.norm(g), dg / np.linalg.norm(dg)


def gaussian_derivative_kernel(sigma: float = 1.4) -> np.ndarray:
    """The ``x`` kernel of ``gaussgradient.m`` (alphamatting.com / Deep Image Matting code).

    ``h[i, j] = G(i) · G'(j)`` with ``G`` the 1-D Gaussian of standard deviation ``sigma``,
    half size ``ceil(σ·sqrt(−2·ln(sqrt(2π)·σ·0.01)))`` (4 for σ = 1.4), normalised to unit
    Frobenius norm. The ``y`` kernel is its transpose. Because of that normalisation the
    gradient magnitude of a linear ramp of slope ``s`` is ``s · K`` with ``K`` ≈ 9.68 for
    σ = 1.4, not ``s``: the benchmark's numbers are in those units, and so are ours.
    """
    h = np.outer(*_gaussian_factors(float(sigma)))
    h.setflags(write=False)
    return h


def gradient_magnitude(alpha: np.ndarray, sigma: float = 1.4) -> np.ndarray:
    """``|∇α|`` by Gaussian-derivative filtering (convolution, replicated borders), ``H×W`` float64.

    The kernel (:func:`gaussian_derivative_kernel`) is an outer product, so each 2-D convolution
    is two 1-D ones: the same sums with 2·9 products a pixel for 81 (replicated borders extend
    each axis on its own, as in the 2-D convolution)."""
    g, dg = _gaussian_factors(float(sigma))
    a = np.asarray(alpha, dtype=np.float64)
    gx = ndimage.convolve1d(ndimage.convolve1d(a, dg, axis=1, mode="nearest"), g, axis=0, mode="nearest")
    gy = ndimage.convolve1d(ndimage.convolve1d(a, dg, axis=0, mode="nearest"), g, axis=1, mode="nearest")
    return np.sqrt(gx * gx + gy * gy)


def gradient_error(alpha: np.ndarray, alpha_gt: np.ndarray, trimap: np.ndarray, sigma: float = 1.4) -> float:
    """Σ over the unknown region of ``(|∇α| − |∇α_gt|)²``, divided by 1000 (σ = 1.4)."""
    a, g, region = _check(alpha, alpha_gt, trimap)
    diff = gradient_magnitude(a, sigma) - gradient_magnitude(g, sigma)
    return float(np.square(diff)[region].sum() / 1000.0)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """Largest 4-connected component of ``mask`` (empty when ``mask`` is empty).

    As MATLAB's ``bwconncomp(·, 4)`` in the reference code: only ``True`` pixels form
    components (some Python ports count the background as a component; we do not), numbered in
    MATLAB's column-major scan, so that of equally large ones ``max`` takes the same (the first).
    """
    labels, n = ndimage.label(mask.T)  # default structure = 4-connectivity; the transpose: column-major
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return (labels == int(np.argmax(sizes))).T


def connectivity_error(
    alpha: np.ndarray, alpha_gt: np.ndarray, trimap: np.ndarray, step: float = 0.1, p: float = 1.0
) -> float:
    """Connectivity error (Rhemann et al. 2009; ``compute_connectivity_error.m`` of DIM), ÷ 1000.

    For each threshold ``t`` in ``step, 2·step, …, 1`` the largest 4-connected component Ω_t of
    ``(α ≥ t) ∧ (α_gt ≥ t)`` is found; ``l(i)`` is the last threshold before pixel ``i`` left Ω
    (1 if it never did). With ``d = α − l``, ``φ(α) = 1 − d·[d ≥ 0.15]``; the error is
    ``Σ_unknown |φ(α) − φ(α_gt)|^p``. A pixel whose alpha is only held up by a blob not
    connected to the main matte is penalised; the ground truth against itself scores 0.
    """
    a, g, region = _check(alpha, alpha_gt, trimap)
    n_steps = int(round(1.0 / step))
    # i / n, each correctly rounded: 0.3, 0.6 and 0.7 exactly, as MATLAB's colon 0:0.1:1 of the
    # reference gives them (linspace's i·(1/n) makes 0.6000000000000001, which an alpha of
    # exactly 0.6, 153/255 of an 8-bit matte, would fail one step early).
    thresholds = np.arange(n_steps + 1) / n_steps
    level = np.full(a.shape, -1.0)
    for i in range(1, len(thresholds)):
        omega = _largest_component((a >= thresholds[i]) & (g >= thresholds[i]))
        leaving = (level == -1.0) & ~omega
        level[leaving] = thresholds[i - 1]
    level[level == -1.0] = 1.0
    d_pred = a - level
    d_gt = g - level
    phi_pred = 1.0 - d_pred * (d_pred >= 0.15)
    phi_gt = 1.0 - d_gt * (d_gt >= 0.15)
    return float((np.abs(phi_pred - phi_gt) ** p)[region].sum() / 1000.0)


def alpha_errors(alpha: np.ndarray, alpha_gt: np.ndarray, trimap: np.ndarray) -> dict[str, float]:
    """All four alpha metrics: ``{"sad", "mse", "grad", "conn"}`` (see the module docstring)."""
    return {
        "sad": sad(alpha, alpha_gt, trimap),
        "mse": mse(alpha, alpha_gt, trimap),
        "grad": gradient_error(alpha, alpha_gt, trimap),
        "conn": connectivity_error(alpha, alpha_gt, trimap),
    }


def foreground_error(
    fg: np.ndarray, fg_gt: np.ndarray, alpha_gt: np.ndarray, unknown: np.ndarray
) -> dict[str, float]:
    """Alpha-weighted error of the foreground colour, as pymatting's foreground evaluation.

    Where alpha is small the foreground colour hardly matters (and is barely observable), so each
    pixel's error is weighted by the ground-truth alpha
    (``pymatting/foreground-estimation-evaluation``):

    - ``fg_sad`` = Σ_unknown Σ_rgb α_gt·|F − F_gt|, divided by 1000 like the alpha SAD;
    - ``fg_mse`` = mean over unknown pixels and the 3 channels of α_gt·(F − F_gt)².

    Parameters
    ----------
    fg, fg_gt:
        ``H×W×3`` foreground colours, same encoding (e.g. sRGB in [0, 1]).
    alpha_gt:
        ``H×W`` ground-truth alpha in [0, 1].
    unknown:
        Boolean ``H×W`` mask or trimap (see :func:`unknown_region`).
    """
    return dict(zip(FG_METRICS, _weighted_error(fg, fg_gt, alpha_gt, unknown, "foreground"), strict=True))


def background_error(
    bg: np.ndarray, bg_gt: np.ndarray, alpha_gt: np.ndarray, unknown: np.ndarray
) -> dict[str, float]:
    """``(1 − α_gt)``-weighted error of the background colour: :func:`foreground_error` with the
    weight that matters for a background (where alpha is 1 the background is not seen).

    Returns ``{"bg_sad", "bg_mse"}``, scaled as ``fg_sad`` and ``fg_mse``.
    """
    return dict(zip(BG_METRICS, _weighted_error(bg, bg_gt, alpha_gt, unknown, "background"), strict=True))


def _weighted_error(
    layer: np.ndarray, layer_gt: np.ndarray, alpha_gt: np.ndarray, unknown: np.ndarray, which: str
) -> tuple[float, float]:
    """``(SAD / 1000, MSE)`` of a colour layer over the unknown region, each pixel weighted by
    ``α_gt`` (``which`` ``"foreground"``) or ``1 − α_gt`` (``"background"``)."""
    f = _unit(layer, f"the {which}", matte=False)[..., :3]
    t = _unit(layer_gt, f"the ground-truth {which}", matte=False)[..., :3]
    w = _unit(alpha_gt, "the ground-truth alpha")
    if w.ndim == 3 and w.shape[2] == 1:
        w = w[..., 0]
    if which == "background":
        w = 1.0 - w
    region = unknown_region(unknown)
    if f.shape != t.shape or f.ndim != 3 or f.shape[:2] != w.shape or w.shape != region.shape:
        raise InputError(
            f"{which} {np.shape(layer)}, ground truth {np.shape(layer_gt)}, alpha {np.shape(alpha_gt)} and "
            f"region {np.shape(unknown)} do not match (expected H×W×3, H×W×3, H×W, H×W)"
        )
    n = int(region.sum())
    if n == 0:
        return 0.0, 0.0
    weight = w[region][:, None]
    diff = f[region] - t[region]
    return float((weight * np.abs(diff)).sum() / 1000.0), float((weight * np.square(diff)).sum() / (n * diff.shape[1]))
