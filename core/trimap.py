"""Trimap normalisation (SPEC §2): any common encoding in, exactly {0, 0.5, 1} out.

0 = background, 1 = foreground, 0.5 = unknown. Inputs may be 1-channel, RGB or RGBA arrays
(``H×W``, ``H×W×1``, ``H×W×3``, ``H×W×4``, or more channels when their names are given), as
floats in [0, 1] — 8-bit 0/128/255 files read through :func:`core.io.read_image` arrive as
0, 0.502, 1 — or as raw 8-bit integers (``uint8`` arrays are divided by 255).

Tolerance: a value ``<= TOLERANCE`` is background, ``>= 1 - TOLERANCE`` is foreground, anything
strictly between is unknown. ``TOLERANCE = 10/255`` (about 0.039): it absorbs 8-bit JPEG ringing,
16-bit/half rounding and the filtering of a trimap baked through Nuke, while staying far from the
0.5 of a real unknown band — a pixel is only forced to known when it is plainly black or white.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.errors import TrimapError

#: Values within this distance of 0 (or 1) count as known background (or foreground).
TOLERANCE = 10.0 / 255.0

CHANNELS = ("auto", "alpha", "red", "luminance")

# Rec.709 luma weights.
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)

_ALPHA_NAMES = ("a", "alpha")
_RED_NAMES = ("r", "red", "y")


def _default_names(n: int) -> list[str]:
    return {1: ["Y"], 2: ["Y", "A"], 3: ["R", "G", "B"], 4: ["R", "G", "B", "A"]}.get(n, [f"channel{i}" for i in range(n)])


def _find(names: Sequence[str], wanted: Sequence[str]) -> int | None:
    lower = [n.lower() for n in names]
    for w in wanted:
        if w in lower:
            return lower.index(w)
    # layer-qualified names such as "rgba.alpha" or "matte.A"
    for w in wanted:
        for i, n in enumerate(lower):
            if n.rsplit(".", 1)[-1] == w:
                return i
    return None


def _select(x: np.ndarray, channel: str, names: list[str]) -> np.ndarray:
    """Pick the trimap plane out of ``x`` (``H×W×C``)."""
    c = x.shape[2]
    if c == 1 and channel in ("auto", "red", "luminance"):
        return x[..., 0]  # a single channel is the trimap, whatever its name
    a = _find(names, _ALPHA_NAMES)
    r = _find(names, _RED_NAMES)
    g = _find(names, ("g", "green"))
    b = _find(names, ("b", "blue"))
    listing = ", ".join(names)
    if channel == "alpha":
        if a is None:
            raise TrimapError(f"the trimap has no alpha channel (its channels: {listing})")
        return x[..., a]
    if channel == "red":
        if r is None:
            raise TrimapError(f"the trimap has no red channel (its channels: {listing})")
        return x[..., r]
    if channel == "luminance":
        if None in (r, g, b):
            if r is not None:  # a grey (Y) image: its luminance is itself
                return x[..., r]
            raise TrimapError(f"the trimap has no R, G, B channels to take the luminance of (its channels: {listing})")
        return x[..., [r, g, b]] @ _LUMA
    if channel == "auto":
        if a is not None:
            plane = x[..., a]
            if np.nanmax(plane) != np.nanmin(plane):  # a constant alpha carries no trimap
                return plane
        if r is None:
            return x[..., 0]
        if g is None or b is None:
            return x[..., r]
        rgb = x[..., [r, g, b]]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return rgb[..., 0]  # grey: red is exact, no rounding through the luma weights
        return rgb @ _LUMA
    idx = _find(names, [channel.lower()])
    if idx is None:
        raise TrimapError(
            f"the trimap has no channel {channel!r} (its channels: {listing}; "
            f"or use one of {', '.join(CHANNELS)})"
        )
    return x[..., idx]


def normalise_trimap(
    pixels: np.ndarray, channel: str = "auto", channels: Sequence[str] | None = None
) -> np.ndarray:
    """Normalise a trimap to exactly 0 (BG), 0.5 (unknown) and 1 (FG).

    Parameters
    ----------
    pixels:
        ``H×W`` or ``H×W×C`` array: floats in [0, 1] (values outside are clamped by the
        tolerance rule) or ``uint8``/``uint16`` integers (scaled by their maximum).
    channel:
        ``auto`` (one channel: that one; a non-constant alpha: alpha; grey RGB: red; colour RGB:
        luminance), ``alpha``, ``red``, ``luminance``, or the name of a channel in ``channels``.
    channels:
        Channel names of ``pixels`` (e.g. ``Image.channels``: ``["R", "G", "B", "A"]``); when
        None they are assumed from the count (Y; Y, A; R, G, B; R, G, B, A).

    Returns
    -------
    numpy.ndarray
        ``H×W`` float32 holding only 0.0, 0.5 and 1.0.

    Raises
    ------
    TrimapError
        NaN or infinite values, a shape that is not an image, a channel that does not exist.

    Example
    -------
    >>> normalise_trimap(np.array([[0, 128, 255]], np.uint8)).tolist()
    [[0.0, 0.5, 1.0]]
    """
    x = np.asarray(pixels)
    if x.dtype.kind in "ui":
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
    elif x.dtype.kind != "f":
        raise TrimapError(f"the trimap must hold numbers, got an array of dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise TrimapError(f"the trimap must be an H×W or H×W×C image, got an array of shape {x.shape}")
    names = list(channels) if channels is not None else _default_names(x.shape[2])
    if len(names) != x.shape[2]:
        raise TrimapError(f"the trimap has {x.shape[2]} channel(s) but {len(names)} names were given: {names}")
    key = channel.strip()
    if key.lower() in CHANNELS:
        key = key.lower()
    plane = _select(x, key, names)
    if not np.isfinite(plane).all():
        n = int((~np.isfinite(plane)).sum())
        raise TrimapError(f"the trimap holds {n} NaN or infinite value(s); a trimap must be 0, 1 or in between")
    out = np.full(plane.shape, 0.5, dtype=np.float32)
    out[plane <= TOLERANCE] = 0.0
    out[plane >= 1.0 - TOLERANCE] = 1.0
    return out


def trimap_stats(trimap: np.ndarray) -> tuple[int, int, int]:
    """Pixel counts ``(n_bg, n_unknown, n_fg)`` of a normalised trimap (0, between, 1)."""
    t = np.asarray(trimap)
    n_bg = int((t == 0).sum())
    n_fg = int((t == 1).sum())
    return n_bg, int(t.size) - n_bg - n_fg, n_fg
