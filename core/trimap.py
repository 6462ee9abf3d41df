"""Trimap normalisation (SPEC §2): any common encoding in, exactly {0, 0.5, 1} out.

0 = background, 1 = foreground, 0.5 = unknown. Inputs may be 1-channel, RGB or RGBA arrays
(``H×W``, ``H×W×1``, ``H×W×3``, ``H×W×4``, or more channels when their names are given), as
floats in [0, 1] — 8-bit 0/128/255 files read through :func:`core.io.read_image` arrive as
0, 0.502, 1 — or as raw 8-bit integers (``uint8`` arrays are divided by 255).

Tolerance: a value ``<= TOLERANCE`` is background, ``>= 1 - TOLERANCE`` is foreground, anything
strictly between is unknown. ``TOLERANCE = 10/255`` (about 0.039): it absorbs 8-bit JPEG ringing,
16-bit/half rounding and the filtering of a trimap baked through Nuke, while staying far from the
0.5 of a real unknown band — a pixel is only forced to known when it is plainly black or white.

**One definition.** :func:`split_trimap` (with :data:`BACKGROUND_MAX` and :data:`FOREGROUND_MIN`)
is the only place that says which pixels are known: normalisation, the networks' inputs,
training, metrics and baselines all ask it, on numpy arrays and torch tensors alike.

**A trimap from a rough matte.** :func:`trimap_from_matte` turns a roto or garbage matte (binary
or soft) into a trimap whose unknown band lies ``edge_px`` pixels each side of the matte's 0.5
edge (``lbsmatte matte --edge PX``).

**A trimap from a ground-truth alpha.** :func:`trimap_from_alpha` makes the trimaps of the
matting benchmarks (Deep Image Matting's Composition-1k): unknown where the true alpha is soft,
dilated by ``dilate_px``, for scoring on a show's own mattes (``lbsmatte evaluate
--trimaps-from-alpha``) and for training (:func:`core.training.trimap_from_alpha`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Tuple, overload

import numpy as np

from core.colour import from_linear, grey_channel, scale_integers, to_linear
from core.errors import InputError, TrimapError

if TYPE_CHECKING:
    import torch

_log = logging.getLogger(__name__)

#: Values within this distance of 0 (or 1) count as known background (or foreground).
TOLERANCE = 10.0 / 255.0
#: A trimap value ``<= BACKGROUND_MAX`` is known background.
BACKGROUND_MAX = TOLERANCE
#: A trimap value ``>= FOREGROUND_MIN`` is known foreground; strictly between the two: unknown.
FOREGROUND_MIN = 1.0 - TOLERANCE
#: The value of the unknown region in a normalised trimap (and in :func:`trimap_from_matte`'s).
UNKNOWN = 0.5
#: A float trimap or matte whose values reach above this is on the 8-bit scale (0/128/255), not
#: 0..1 (no coverage is 1.5): :meth:`core.pipeline.Matter.matte` refuses such a trimap rather than
#: read every grey as foreground; a data set's files (evaluation, fine-tuning) are divided by 255
#: (:func:`unit_scale`).
EIGHT_BIT_SCALE_ABOVE = 1.5
#: Where a rough matte is cut into inside and outside by :func:`trimap_from_matte`.
MATTE_EDGE = 0.5
#: A ground-truth alpha closer than this to 0 (or 1) counts as exactly 0 (or 1) when
#: :func:`trimap_from_alpha` makes a trimap of it for ``lbsmatte evaluate``: an 8-bit matte's
#: levels 0-5 are background, 250-255 foreground. Measured and keyed 8-bit mattes carry a haze of
#: 1-5/255 over their background (alphamatting.com's GT27: 31 % of its pixels; dilated by 10 px,
#: read exactly, 96 % of the frame was unknown, 32 % with this); half a level more than 5/255, so
#: that the float32 of 5/255, 16-bit and half-float roundings of it fall on the same side.
#: Faint wisps next to real structure stay unknown through the dilation.
ALPHA_NOISE = 5.5 / 255.0

CHANNELS = ("auto", "alpha", "red", "luminance")

# Rec.709 luma weights.
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)

_ALPHA_NAMES = ("a", "alpha")
_RED_NAMES = ("r", "red", "y")
#: Nuke's names of the rgba layer's channels, and the names a file's channels take for them.
_NUKE_RGBA = {"red": _RED_NAMES, "green": ("g", "green"), "blue": ("b", "blue"), "alpha": _ALPHA_NAMES}
#: The two spellings of another layer's R, G, B, A: Nuke shows a file's ``matte.A`` as ``matte.alpha``.
_LAYER_SPELLINGS = {name: pair for pair in (("r", "red"), ("g", "green"), ("b", "blue"), ("a", "alpha")) for name in pair}


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
    if channel == "auto" and a is not None:
        plane = x[..., a]
        if np.nanmax(plane) != np.nanmin(plane):  # a constant alpha carries no trimap
            return plane
    if channel in ("red", "auto", "luminance") and None in (r, g, b):
        if channel == "red" and r is not None:
            return x[..., r]
        # Y, or a single colour channel (G beside a constant alpha), is grey: its red and its
        # luminance; two of R, G, B are refused (core.colour.grey_channel), not read as one of them.
        try:
            grey = grey_channel({"R": _find(names, ("r", "red")), "G": g, "B": b,
                                 "Y": _find(names, ("y", "luminance"))}, names, "the trimap")
        except InputError as exc:
            raise TrimapError(f"{exc}; or name the channel to read (--trimap-channel)") from exc
        if grey is not None:
            return x[..., grey]
        if channel == "red":
            raise TrimapError(f"the trimap has no red channel (its channels: {listing})")
        if channel == "luminance":
            raise TrimapError(f"the trimap has no R, G, B channels to take the luminance of (its channels: {listing})")
        return x[..., 0]
    if channel == "red":
        return x[..., r]
    if channel == "luminance":
        return x[..., [r, g, b]] @ _LUMA
    if channel == "auto":
        rgb = x[..., [r, g, b]]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return rgb[..., 0]  # grey: red is exact, no rounding through the luma weights
        return rgb @ _LUMA
    idx = _find(names, [channel.lower()])
    layer, _, name = channel.lower().partition(".")
    if idx is None and layer == "rgba" and name in _NUKE_RGBA:
        idx = _find(names, _NUKE_RGBA[name])  # Nuke's name of a file's R, G, B or A (rgba.alpha: A)
    if idx is None and layer not in ("", "rgba") and name in _LAYER_SPELLINGS:
        # Nuke's name of a layer's channel (matte.alpha) for the file's (matte.A), and the other way round
        idx = _find(names, [f"{layer}.{spelling}" for spelling in _LAYER_SPELLINGS[name]])
    if idx is None:
        raise TrimapError(
            f"the trimap has no channel {channel!r} (its channels: {listing}; "
            f"or use one of {', '.join(CHANNELS)})"
        )
    return x[..., idx]


@overload
def split_trimap(trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
@overload
def split_trimap(trimap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...
def split_trimap(trimap: Any) -> tuple[Any, Any, Any]:
    """The one definition of what a trimap says: ``(fg_known, bg_known, unknown)`` boolean masks.

    Parameters
    ----------
    trimap:
        numpy array or torch tensor of any shape (``H×W``, ``N×1×H×W`` ...), values in [0, 1]:
        ``>= FOREGROUND_MIN`` known foreground, ``<= BACKGROUND_MAX`` known background, strictly
        between (and NaN) unknown. A normalised trimap (0, 0.5, 1) splits exactly.

    Returns
    -------
    tuple
        Three boolean masks of ``trimap``'s type and shape; every pixel is in exactly one.

    Example
    -------
    >>> fg, bg, unknown = split_trimap(np.array([0.0, 0.5, 1.0]))
    >>> fg.tolist(), bg.tolist(), unknown.tolist()
    ([False, False, True], [True, False, False], [False, True, False])
    """
    return split_trimap_tensor(trimap)


def split_trimap_tensor(trimap: torch.Tensor, foreground_min: float = FOREGROUND_MIN,
                        background_max: float = BACKGROUND_MAX) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The body of :func:`split_trimap`, typed for TorchScript (networks and the exported module
    compiled by :func:`torch.jit.script` call it; numpy arrays pass through it too). The
    thresholds are arguments because TorchScript cannot read a module's float constants; their
    defaults are :data:`FOREGROUND_MIN` and :data:`BACKGROUND_MAX`, and no caller passes others."""
    fg = trimap >= foreground_min
    bg = trimap <= background_max
    unknown = ~(fg | bg)
    return fg, bg, unknown


def _plane(pixels: np.ndarray, channel: str, channels: Sequence[str] | None, what: str) -> np.ndarray:
    """The ``H×W`` float32 plane of a trimap (or rough matte) image: integer types scaled to [0, 1],
    the channel picked by :func:`_select`, NaN and infinities refused."""
    try:
        x = scale_integers(pixels, f"the {what}")
    except InputError as exc:
        raise TrimapError(str(exc)) from exc
    if x.dtype.kind == "b":  # a binary mask (roto > 0.5): True is inside, foreground
        x = x.astype(np.float32)
    if x.dtype.kind != "f":
        raise TrimapError(f"the {what} must hold numbers, got an array of dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise TrimapError(f"the {what} must be an H×W or H×W×C image, got an array of shape {x.shape}")
    names = list(channels) if channels is not None else _default_names(x.shape[2])
    if len(names) != x.shape[2]:
        raise TrimapError(f"the {what} has {x.shape[2]} channel(s) but {len(names)} names were given: {names}")
    key = channel.strip()
    if key.lower() in CHANNELS:
        key = key.lower()
    plane = _select(x, key, names)
    if not np.isfinite(plane).all():
        n = int((~np.isfinite(plane)).sum())
        raise TrimapError(f"the {what} holds {n} NaN or infinite value(s); a {what} must be 0, 1 or in between")
    return plane


def normalise_trimap(
    pixels: np.ndarray, channel: str = "auto", channels: Sequence[str] | None = None
) -> np.ndarray:
    """Normalise a trimap to exactly 0 (BG), 0.5 (unknown) and 1 (FG).

    Parameters
    ----------
    pixels:
        ``H×W`` or ``H×W×C`` array: floats in [0, 1] (values outside are clamped by the
        tolerance rule; above :data:`EIGHT_BIT_SCALE_ABOVE` refused), ``uint8``/``uint16`` integers (scaled by their maximum)
        or bool (True = FG).
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
    plane = _plane(pixels, channel, channels, "trimap")
    top = float(plane.max())
    if np.asarray(pixels).dtype.kind == "f" and top > EIGHT_BIT_SCALE_ABOVE:
        # Read by the tolerance rule, every grey of 0/128/255 would be foreground: a matte with
        # no unknown pixel, returned without a word of what went wrong.
        raise TrimapError(
            f"the trimap holds float values up to {top:g}: a float trimap is 0..1 (0 BG, 1 FG, between "
            f"unknown; up to {EIGHT_BIT_SCALE_ABOVE:g} counts as FG); for one on the 8-bit scale 0/128/255, "
            "divide it by 255 (or pass it as uint8); for a sum of mattes, clamp it to 1")
    fg, bg, _ = split_trimap(plane)
    out = np.full(plane.shape, UNKNOWN, dtype=np.float32)
    out[bg] = 0.0
    out[fg] = 1.0
    return out


#: A grey this far from the unknown's 0.5 (and not within the tolerance of black or white) is a
#: level a trimap does not use: the input is more likely a soft matte or an image.
STRAY_GREY = 0.15
#: The unknown's 0.5 after the sRGB curve, either way: a painted 0/128/255 PNG linearised by Nuke's
#: Read (0.216, as the node bakes it) and a Nuke trimap written to a PNG by a Write (188/255). A
#: level within :data:`SRGB_UNKNOWN_TOLERANCE` of one of them is a trimap's too.
SRGB_UNKNOWNS = (float(to_linear(np.float32(UNKNOWN), "srgb")), float(from_linear(np.float32(UNKNOWN), "srgb")))
#: 5/255: 8-bit rounding and a few code values of JPEG noise. Narrower than 0.5's band, so that a
#: soft matte's greys stay stray: every matte of the alphamatting set that gave the warning still does.
SRGB_UNKNOWN_TOLERANCE = TOLERANCE / 2


def stray_share(pixels: np.ndarray, channel: str = "auto", channels: Sequence[str] | None = None) -> float:
    """The share of the pixels that :func:`normalise_trimap` makes unknown although their value is
    neither mid grey nor near it (further than :data:`STRAY_GREY` from 0.5, and than
    :data:`SRGB_UNKNOWN_TOLERANCE` from its sRGB-curved :data:`SRGB_UNKNOWNS`): about 0 for a trimap
    (anti-aliased edges, 8-bit or JPEG rounding, a PNG's grey linearised by Nuke's Read included),
    most of the frame for a soft matte or a photograph given as the trimap. Same arguments as
    :func:`normalise_trimap`."""
    plane = _plane(pixels, channel, channels, "trimap")
    _, _, unknown = split_trimap(plane)
    stray = unknown & (np.abs(plane - UNKNOWN) > STRAY_GREY) & ~_near_srgb_unknowns(plane)
    return float(np.count_nonzero(stray)) / max(plane.size, 1)


def _near_srgb_unknowns(plane: np.ndarray) -> np.ndarray:
    """Where ``plane`` is within :data:`SRGB_UNKNOWN_TOLERANCE` of one of :data:`SRGB_UNKNOWNS`."""
    return np.any([np.abs(plane - grey) <= SRGB_UNKNOWN_TOLERANCE for grey in SRGB_UNKNOWNS], axis=0)


def mid_grey_share(matte: np.ndarray, channel: str = "auto", channels: Sequence[str] | None = None) -> float:
    """The share of a rough matte's pixels that are mid grey: within :data:`SRGB_UNKNOWN_TOLERANCE`
    of 0.5 or of its sRGB-curved :data:`SRGB_UNKNOWNS`. Under 3 % for every soft matte of the
    alphamatting set (a matte is 0.5 only along its edge), from 5 % for its trimaps, whose
    unknown band is mid grey: a trimap given to :func:`trimap_from_matte` is cut with its band
    inside. Same arguments as :func:`trimap_from_matte` (but ``edge_px``)."""
    plane = _plane(matte, channel, channels, "rough matte")
    mid = (np.abs(plane - UNKNOWN) <= SRGB_UNKNOWN_TOLERANCE) | _near_srgb_unknowns(plane)
    return float(np.count_nonzero(mid)) / max(plane.size, 1)


def unknown_in_colour(pixels: np.ndarray, channels: Sequence[str] | None = None) -> int:
    """The unknown pixels the colour channels of ``pixels`` hold where ``auto`` reads a varying
    alpha that holds none; 0 otherwise (the alpha has unknown pixels, or ``auto`` does not read it).

    A trimap painted in RGB over transparency (alpha 0 in the background, 1 elsewhere) is read by
    ``auto`` from its alpha: a trimap with no unknown pixel, a binary matte, while its colour holds
    the unknown band. ``--trimap-channel red`` reads the colour. Same arguments as
    :func:`normalise_trimap` (``channels``: the names; None: assumed from the count)."""
    x = np.asarray(pixels)
    if x.ndim != 3 or x.shape[2] < 2:
        return 0
    names = list(channels) if channels is not None else _default_names(x.shape[2])
    a = _find(names, _ALPHA_NAMES)
    if a is None or len(names) != x.shape[2]:
        return 0
    colour = [i for i in range(x.shape[2]) if i != a]
    try:  # a plane normalise_trimap did not read may hold NaN: no warning then, nor an error of its own
        alpha = _plane(x[..., a], "auto", None, "trimap")
        if alpha.max() == alpha.min() or split_trimap(alpha)[2].any():
            return 0  # a constant alpha is not read; one with unknown pixels is a trimap
        plane = _plane(x[..., colour], "auto", [names[i] for i in colour], "trimap")
    except TrimapError:
        return 0
    return int(np.count_nonzero(split_trimap(plane)[2]))


def matte_in_alpha(pixels: np.ndarray, channel: str, channels: Sequence[str] | None = None) -> bool:
    """Whether ``channel`` (``red`` or ``luminance``) reads a constant plane of ``pixels`` while their
    alpha varies: a Roto's output (its shape in alpha, its colour black) read from the colour with
    the channel a painted trimap needed, every pixel background (or foreground) with no word of
    why. Same arguments as :func:`normalise_trimap`; ``False`` for ``auto``, ``alpha`` or a named channel."""
    x = np.asarray(pixels)
    if channel not in ("red", "luminance") or x.ndim != 3 or x.shape[2] < 2:
        return False
    names = list(channels) if channels is not None else _default_names(x.shape[2])
    a = _find(names, _ALPHA_NAMES)
    if a is None or len(names) != x.shape[2]:
        return False
    try:
        plane = _plane(x, channel, names, "trimap")
        alpha = _plane(x[..., a], "auto", None, "trimap")
    except TrimapError:
        return False
    return bool(plane.max() == plane.min() and alpha.max() != alpha.min())


def unit_scale(pixels: np.ndarray, path: Any, is_float: bool, what: str) -> np.ndarray:
    """``pixels`` of a data set's float matte or trimap (``lbsmatte evaluate``'s ground truth, a
    fine-tune's ``alpha/`` and ``trimap/``) holding 0..255, above :data:`EIGHT_BIT_SCALE_ABOVE`,
    divided by 255 with a warning naming ``path`` (once a process: a fine-tune reads a plate again
    once its memory is wanted, and its workers, forked, know it was said); other values as they are. Integer files are
    already in [0, 1] as read. :class:`InputError` naming ``path`` above 255 (no scale of either).

    The one rule for every reader of such files: read otherwise, a float matte saved 0..255 was
    clipped to 1 wherever it was not 0 (a fine-tune learnt from that, without a word), and a float
    trimap 0/128/255 was all foreground."""
    if not is_float or pixels.size == 0:
        return pixels
    top = float(np.nanmax(pixels)) if not np.isnan(pixels).all() else 0.0
    if top <= EIGHT_BIT_SCALE_ABOVE:
        return pixels
    if top > 255.5:
        raise InputError(f"{path}: the {what} holds values up to {top:g}: expected 0..1 (or 0..255)")
    if (str(path), what) not in _SAID_EIGHT_BIT:
        _SAID_EIGHT_BIT.add((str(path), what))
        _log.warning("%s: the %s holds values up to %g: read as 0..255 and divided by 255", path, what, top)
    return pixels / np.float32(255.0)


_SAID_EIGHT_BIT: set[tuple[str, str]] = set()


def check_edge(edge_px: object) -> int:
    """``edge_px`` (an int, a whole float such as Nuke's ``4.0``, or text) as an int > 0.

    Raises :class:`InputError` naming ``--edge`` and the value otherwise.
    """
    try:
        value = float(edge_px)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(edge_px, bool) or not (np.isfinite(value) and value == int(value) and value >= 1):
        raise InputError(
            f"--edge takes a whole number of pixels > 0 (the unknown band each side of the matte's edge), not {edge_px!r}"
        )
    return int(value)


def trimap_from_matte(
    matte: np.ndarray, edge_px: int, channel: str = "auto", channels: Sequence[str] | None = None
) -> np.ndarray:
    """A trimap from a rough matte (roto, garbage matte): unknown ``edge_px`` pixels each side of its 0.5 edge.

    The matte is cut at :data:`MATTE_EDGE` (``>= 0.5`` inside). A pixel is unknown when the
    Euclidean distance from its centre to the nearest pixel centre on the other side is at most
    ``edge_px`` — that is, the edge, half-way between the two pixels, is less than ``edge_px``
    away. A straight edge gets a band exactly ``2·edge_px`` wide, ``edge_px`` on each side; the
    rest of the inside is foreground (1), of the outside background (0). The frame border is not
    an edge. A matte with no edge (all inside or all outside) gives an all-known trimap.

    Parameters
    ----------
    matte:
        ``H×W`` or ``H×W×C`` float (0-1, soft or binary), integer or bool (True inside) image; the
        plane is picked as by :func:`normalise_trimap` (``channel``, ``channels``).
    edge_px:
        Half the band's width, a whole number of pixels > 0.

    Returns
    -------
    numpy.ndarray
        ``H×W`` float32 holding only 0.0, 0.5 and 1.0.

    Raises
    ------
    InputError
        ``edge_px`` not a whole number > 0 (the message names ``--edge``).
    TrimapError
        NaN or infinite values, a shape that is not an image, a channel that does not exist.

    Example
    -------
    >>> trimap_from_matte(np.array([[0, 0, 0, 1, 1, 1]], np.float32), 1).tolist()
    [[0.0, 0.0, 0.5, 0.5, 1.0, 1.0]]
    """
    from scipy.ndimage import distance_transform_edt

    edge = check_edge(edge_px)
    plane = _plane(matte, channel, channels, "rough matte")
    inside = plane >= MATTE_EDGE
    out = inside.astype(np.float32)
    if inside.all() or not inside.any():
        return out
    # distance_transform_edt: each non-zero pixel's distance to the nearest zero pixel.
    band = (distance_transform_edt(inside) <= edge) & inside
    band |= (distance_transform_edt(~inside) <= edge) & ~inside
    out[band] = UNKNOWN
    return out


def check_dilation(dilate_px: object, what: str = "--trimaps-from-alpha") -> int:
    """``dilate_px`` (an int, a whole float, or text) as an int >= 0; :class:`InputError` naming
    ``what`` and the value otherwise."""
    try:
        value = float(dilate_px)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(dilate_px, bool) or not (np.isfinite(value) and value == int(value) and value >= 0):
        raise InputError(f"{what} takes whole numbers of pixels >= 0 (how far the unknown band reaches "
                         f"beyond the soft alpha), not {dilate_px!r}")
    return int(value)


def alpha_edge_seed(alpha: np.ndarray) -> np.ndarray:
    """``H×W`` bool: the pixels of an alpha (already snapped to exact 0 and 1 where it is known)
    that must be unknown: every soft pixel (strictly between 0 and 1), and both sides of a hard
    edge between 0 and 1 (8-connected: a binary roto or an aliased CG matte has no soft pixel)."""
    from scipy import ndimage

    opaque = alpha >= 1.0
    clear = alpha <= 0.0
    seed = ~(opaque | clear)
    seed |= opaque & ndimage.maximum_filter(clear, size=3)
    seed |= clear & ndimage.maximum_filter(opaque, size=3)
    return seed


def trimap_from_alpha(alpha: np.ndarray, dilate_px: float, tolerance: float = ALPHA_NOISE) -> np.ndarray:
    """The benchmark trimap of a ground-truth alpha: unknown within ``dilate_px`` of its soft pixels.

    Alpha closer than ``tolerance`` to 0 or 1 counts as exactly 0 or 1 (:data:`ALPHA_NOISE`: an
    8-bit matte's 1-5/255 haze is background). A pixel is unknown when its Euclidean distance to
    the nearest pixel of :func:`alpha_edge_seed` (soft alpha, or either side of a hard edge) is at
    most ``dilate_px`` (0: those pixels only); the rest is foreground (1) where the alpha is 1,
    background (0) where it is 0. A matte with no soft pixel and no edge gives a trimap with no
    unknown pixel.

    Parameters
    ----------
    alpha:
        ``H×W`` float in [0, 1] (values outside are clipped).
    dilate_px:
        Dilation of the soft region in pixels, >= 0.
    tolerance:
        How close to 0 or 1 counts as known, in alpha.

    Returns
    -------
    numpy.ndarray
        ``H×W`` float32 holding only 0.0, 0.5 and 1.0.

    Example
    -------
    >>> trimap_from_alpha(np.array([[0, 0, 0, 0.5, 1, 1, 1]], np.float32), 1).tolist()
    [[0.0, 0.0, 0.5, 0.5, 0.5, 1.0, 1.0]]
    """
    from scipy import ndimage

    a = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    a[a > 1.0 - tolerance] = 1.0
    a[a < tolerance] = 0.0
    seed = alpha_edge_seed(a)
    unknown = ndimage.distance_transform_edt(~seed) <= dilate_px if seed.any() else np.zeros(a.shape, bool)
    return np.where(unknown, UNKNOWN, np.where(a >= 1.0, 1.0, 0.0)).astype(np.float32)


def trimap_stats(trimap: np.ndarray) -> tuple[int, int, int]:
    """Pixel counts ``(n_bg, n_unknown, n_fg)`` of a trimap, split by :func:`split_trimap`."""
    fg, bg, unknown = split_trimap(np.asarray(trimap))
    return int(bg.sum()), int(unknown.sum()), int(fg.sum())
