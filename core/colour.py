"""Colour encodings: what the networks see and what the plate holds (SPEC §2).

The networks see **display-encoded** colour (the sRGB transfer curve) in [0, 1]. Plates come as

``linear``
    scene-linear floats (Nuke's working space); values may exceed 1.
``srgb``
    already sRGB-encoded (8/16-bit PNG, JPEG, DPX, integer TIFF): :func:`to_display` is the identity.
any OpenColorIO colourspace name
    when ``$OCIO`` names a config (a file or a built-in such as ``ocio://cg-config-latest``):
    converted with that config's processor to its sRGB-encoded colourspace (see
    :data:`DISPLAY_SPACES`) and back.

**Values above 1.** For ``linear`` the sRGB curve is *continued analytically* above 1
(``1.055·x^(1/2.4) − 0.055`` for every ``x > 0.0031308``, the same extension OpenColorIO's sRGB
texture space uses), so 4.0 encodes to 1.823 and decodes back to 4.0 exactly (to float
precision): no highlight is lost in a round trip. The pipeline clips the encoded image to [0, 1]
for the networks only; known regions keep the plate's own values.

**Negatives** (and NaN) become 0 before the curve, so no NaN is ever produced; +inf stays +inf.
:func:`sanitise` cleans a plate for the networks and reports what it found.

**Premultiplication** (Nuke's convention: the colour channels hold ``F·α``) is defined once,
in :func:`premultiply` and :func:`unpremultiply`; the matte's writers and :class:`Matte` use them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import InputError
from core.paths import library_path

#: Encodings handled without OpenColorIO. ``auto`` is resolved per file by :func:`resolve_colour`.
BUILTIN = ("linear", "srgb")
CHOICES = ("auto",) + BUILTIN

#: sRGB-encoded colourspaces looked up, in this order, in an OCIO config as the networks' space;
#: ``LBSMATTE_OCIO_DISPLAY`` overrides. Then the ``color_picking`` and ``texture_paint`` roles.
DISPLAY_SPACES = (
    "srgb_tx",
    "sRGB - Texture",
    "sRGB Encoded Rec.709 (sRGB)",
    "Utility - sRGB - Texture",
    "Output - sRGB",
    "sRGB",
    "srgb",
)
DISPLAY_ROLES = ("color_picking", "texture_paint")
DISPLAY_ENV = "LBSMATTE_OCIO_DISPLAY"

#: The colour-space tag (``colorInteropID``) of an EXR whose layers are an sRGB plate's, linearised:
#: ``lbsmatte matte``'s result and the demo's ``demo.exr``.
LINEARISED_TAG = "lin_rec709_scene"

# sRGB transfer (IEC 61966-2-1).
_LIN_CUT = 0.0031308
_ENC_CUT = 12.92 * _LIN_CUT


def _linear_to_srgb(x: np.ndarray, signed: bool = False) -> np.ndarray:
    """The sRGB curve; negatives to 0, or with ``signed`` on the curve's linear segment (12.92·x),
    as OpenColorIO's sRGB transforms continue it (no information lost)."""
    # In place on one copy: a 1080p frame's eight temporaries of the plain expression cost as much
    # as the power itself. The same float32 operations, so the same bits.
    x = np.array(x, dtype=np.float32)
    np.nan_to_num(x, copy=False, nan=0.0, posinf=np.inf, neginf=-np.inf if signed else 0.0)
    if not signed:
        np.maximum(x, 0.0, out=x)
    # The power on max(x, cut): on the linear branch's values it is not taken (nor overflows).
    out = np.maximum(x, _LIN_CUT, out=np.empty_like(x))  # an array also for a 0-d x
    np.power(out, 1.0 / 2.4, out=out)
    out *= 1.055
    out -= 0.055
    np.multiply(x, 12.92, out=out, where=x <= _LIN_CUT)
    return out


def _srgb_to_linear(v: np.ndarray, signed: bool = False) -> np.ndarray:
    """The inverse of :func:`_linear_to_srgb` (``signed`` alike: negatives on the linear segment)."""
    v = np.array(v, dtype=np.float32)  # worked on in place, as _linear_to_srgb
    np.nan_to_num(v, copy=False, nan=0.0, posinf=np.inf, neginf=-np.inf if signed else 0.0)
    if not signed:
        np.maximum(v, 0.0, out=v)
    out = np.maximum(v, _ENC_CUT, out=np.empty_like(v))
    out += 0.055
    out /= 1.055
    np.power(out, 2.4, out=out)
    np.divide(v, 12.92, out=out, where=v <= _ENC_CUT)
    return out


# -- OpenColorIO --------------------------------------------------------------------------------
_configs: dict[str, Any] = {}


def ocio_config() -> Any | None:
    """The OpenColorIO config named by ``$OCIO`` (a ``PyOpenColorIO.Config``, loaded once per
    value), or None when ``$OCIO`` is not set: the one config every conversion here uses, and
    the one :func:`core.fingerprint.ocio_identity` records.

    Raises
    ------
    InputError
        ``$OCIO`` names a config that cannot be loaded (naming it and OCIO's reason).
    """
    source = os.environ.get("OCIO", "").strip()
    if not source:
        return None
    if source not in _configs:
        import PyOpenColorIO as ocio

        try:
            # As OpenColorIO reads a path: its bytes as UTF-8, whatever the locale (a Latin-1 farm's)
            _configs[source] = ocio.Config.CreateFromFile(library_path(source))
        except UnicodeDecodeError:
            raise InputError(f"cannot load the OpenColorIO config $OCIO={source!r}: the path holds bytes that are "
                             "not UTF-8 text, which OpenColorIO cannot open: rename the file (or its folder) in "
                             "UTF-8") from None
        except Exception as exc:  # OCIO raises its own Exception type
            raise InputError(f"cannot load the OpenColorIO config $OCIO={source!r}: {exc}") from exc
    return _configs[source]


def _display_space(config: Any) -> str:
    override = os.environ.get(DISPLAY_ENV, "").strip()
    names = (override,) if override else DISPLAY_SPACES
    for name in names:
        space = config.getColorSpace(name)  # resolves aliases too
        if space is not None:
            return str(space.getName())
    if not override:
        for role in DISPLAY_ROLES:
            if config.hasRole(role):
                return str(config.getRoleColorSpace(role))
    source = os.environ.get("OCIO")
    if override:
        raise InputError(f"the OpenColorIO config $OCIO={source!r} has no colourspace {override!r} "
                         f"(named by ${DISPLAY_ENV})")
    raise InputError(
        f"the OpenColorIO config $OCIO={source!r} has no sRGB-encoded colourspace (looked for "
        f"{', '.join(DISPLAY_SPACES)} and the roles {', '.join(DISPLAY_ROLES)}); name one with ${DISPLAY_ENV}"
    )


def _ocio_apply(pixels: np.ndarray, src: str, dst: str) -> np.ndarray:
    config = ocio_config()
    assert config is not None
    import PyOpenColorIO as ocio

    try:
        # Lossless: no fast pow/log approximations, so a round trip returns the input.
        processor = config.getProcessor(src, dst).getOptimizedCPUProcessor(ocio.OPTIMIZATION_LOSSLESS)
    except Exception as exc:
        raise InputError(f"OpenColorIO cannot convert {src!r} to {dst!r}: {exc}") from exc
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim != 3 or pixels.shape[2] < 3:
        raise InputError(f"an OpenColorIO conversion needs H×W×3 pixels, got shape {pixels.shape}")
    rgb = np.array(pixels[..., :3], dtype=np.float32, order="C")  # a new array, converted in place
    # As an image, not applyRGB's flat buffer: OpenColorIO's packed-image path gives the same
    # values in two thirds of the time (about 0.4 s instead of 0.6 s a 1080p frame).
    processor.apply(ocio.PackedImageDesc(rgb, rgb.shape[1], rgb.shape[0], 3))
    if pixels.shape[2] == 3:
        return rgb
    out = pixels.copy()
    out[..., :3] = rgb
    return out


def conversion_id(colour: str) -> str | None:
    """What the conversions between the OpenColorIO colourspace ``colour`` and the networks' sRGB
    space are, as one string: OpenColorIO's cache IDs of the processors both ways under ``$OCIO``'s
    config (and ``$LBSMATTE_OCIO_DISPLAY``). They follow the transforms and the LUTs' contents, not
    the config's path or its files' dates: a config redefining ``colour`` (a new camera LUT) gives
    another; the same config where another machine mounts the share, the same. None for
    ``linear``/``srgb``, which need no config."""
    name = _check(colour)
    if name in BUILTIN:
        return None
    config = ocio_config()
    display = _display_space(config)
    try:
        return " ".join(str(config.getProcessor(src, dst).getCacheID()) for src, dst in ((name, display),
                                                                                         (display, name)))
    except Exception as exc:  # OCIO raises its own Exception type
        raise InputError(f"OpenColorIO cannot convert {name!r} to {display!r}: {exc}") from exc


def _not_a_colourspace(config: Any, key: str, names: list[str]) -> str:
    """What ``key``, no colourspace of ``config``, is there instead (a display, a view of one, a named
    transform, a view transform, a look), or the colourspaces and aliases spelt like it: a clause for the message, or ''."""
    import difflib

    lower = key.lower()
    for display in config.getDisplays():
        if str(display).lower() == lower:
            return (" (in the OpenColorIO config it is a display, the device images are shown on, not the colourspace "
                    "the plate's values are in)")
        for view in config.getViews(display):
            if str(view).lower() == lower:
                return (f" (in the OpenColorIO config it is a view of the display {str(display)!r}: how images are "
                        "shown, not the colourspace the plate's values are in)")
    if hasattr(config, "getNamedTransform") and config.getNamedTransform(key) is not None:
        return " (in the OpenColorIO config it is a named transform, not a colourspace)"
    if any(str(name).lower() == lower for name in config.getViewTransformNames()):
        return (" (in the OpenColorIO config it is a view transform, how scene-linear is rendered for a display, "
                "not the colourspace the plate's values are in)")
    if any(str(look.getName()).lower() == lower for look in config.getLooks()):
        return " (in the OpenColorIO config it is a look, a grade applied to images, not a colourspace)"
    spellings = {name.lower(): name for name in names}
    for cs in config.getColorSpaces():
        spellings.update({str(alias).lower(): str(alias) for alias in cs.getAliases()})
    close = difflib.get_close_matches(lower, list(spellings), n=3, cutoff=0.75)
    return f" (did you mean {' or '.join(repr(spellings[c]) for c in close)}?)" if close else ""


def _check(colour: str) -> str:
    """The canonical name of ``colour`` (``linear``, ``srgb`` or an OCIO colourspace name)."""
    key = str(colour).strip()
    if key.lower() in BUILTIN:
        return key.lower()
    config = ocio_config()
    if config is not None:
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            # A command line's bytes that are not UTF-8 (a Latin-1 terminal's 'caméra'), which Python
            # keeps as lone surrogates: no colourspace is named so, and OpenColorIO's getColorSpace
            # raised a TypeError on them (a traceback).
            raise InputError(f"unknown colour {colour!r}: it holds bytes that are not UTF-8 text; expected auto, "
                             "linear, srgb or a colourspace of the OpenColorIO config "
                             f"$OCIO={os.environ.get('OCIO')!r}, spelt in UTF-8") from None
        space = config.getColorSpace(key)
        if space is not None and space.isData():
            # OpenColorIO converts a data colourspace to nothing (every processor from it is the
            # identity), so its values would reach the networks as sRGB-encoded colour unsaid.
            via = "" if str(space.getName()).lower() == key.lower() else f" ({str(space.getName())!r})"
            raise InputError(
                f"colour {colour!r}{via} is a data colourspace of the OpenColorIO config "
                f"$OCIO={os.environ.get('OCIO')!r} (isdata: normals, depth, IDs, mattes), which OpenColorIO never "
                "converts: there is no colour in it to matte. Name the plate's colourspace (the one its Read uses), "
                "or srgb or linear to take its values as they are")
        if space is not None:
            return str(space.getName())
        names = [cs.getName() for cs in config.getColorSpaces()]
        roles = [str(role) for role, _ in config.getRoles()]
        raise InputError(
            f"unknown colour {colour!r}{_not_a_colourspace(config, key, names)}: expected auto, linear, srgb or a "
            f"colourspace of the OpenColorIO config $OCIO={os.environ.get('OCIO')!r}: {', '.join(names)} (or an "
            f"alias of one, or one of the roles it defines: {', '.join(roles) or 'none'})"
        )
    raise InputError(
        f"unknown colour {colour!r}: expected one of auto, linear, srgb "
        "(or an OpenColorIO colourspace name when $OCIO names a config; $OCIO is not set)"
    )


def _check_convertible(name: str) -> str:
    """``name`` once OpenColorIO has built its conversions to the networks' space and back: a LUT
    file the colourspace names that is missing, or a config without an sRGB-encoded space, is an
    :class:`InputError` here, before any work, not at every frame's conversion."""
    if name in BUILTIN:
        return name
    config = ocio_config()
    display = _display_space(config)
    for src, dst in ((name, display), (display, name)):
        try:
            config.getProcessor(src, dst)
        except Exception as exc:  # OCIO raises its own Exception type
            raise InputError(f"OpenColorIO cannot convert {src!r} to {dst!r}: {exc}") from exc
    return name


def check_colour(colour: str) -> str:
    """Validate a ``--colour`` value; returns it (``auto`` included) or raises :class:`InputError`,
    for an OpenColorIO colourspace also when the config cannot convert it (a missing LUT file)."""
    if str(colour).strip().lower() == "auto":
        return "auto"
    return _check_convertible(_check(colour))


def resolve_colour(colour: str, is_float: bool, log: str | None = None) -> str:
    """``auto`` -> ``linear`` for float files (EXR, float TIFF), ``srgb`` for integer files
    (PNG, JPEG, DPX, integer TIFF), as Nuke's Read does; any other value is validated and returned.

    ``log``: what says the file is log-encoded (:attr:`core.io.ImageInfo.log_encoding`); ``auto``
    is then refused with :class:`InputError`, as it would read a film scan's log values as sRGB."""
    if str(colour).strip().lower() == "auto":
        if log:
            raise InputError(
                f"{log}: --colour auto reads integer files as sRGB, which would matte log values as sRGB "
                "and write a result neither linear nor log; name the plate's encoding with --colour and an "
                "OpenColorIO colourspace ($OCIO set; Cineon in Nuke's default config), or convert it to a "
                "linear EXR first")
        return "linear" if is_float else "srgb"
    return _check_convertible(_check(colour))


def interop_id(colour: str) -> str | None:
    """The colour-interop ID (``lin_ap1_scene`` for ACEScg: what OpenImageIO writes as an EXR's
    ``colorInteropID``) that the OpenColorIO config gives the colourspace ``colour``; None for
    ``linear``/``srgb`` (what they are tagged depends on the file), or where the config gives none
    (configs before OCIO 2.5's, or a space it leaves untagged)."""
    name = _check(colour)
    if name in BUILTIN:
        return None
    space = ocio_config().getColorSpace(name)
    interop = str(space.getInteropID() or "") if hasattr(space, "getInteropID") else ""
    return interop or None


def colourspace_for_tag(tag: str) -> str | None:
    """The colourspace of the ``$OCIO`` config that a file's colour-space tag (``colorInteropID``:
    ``lin_ap1_scene``, ``ocio:arrilogc4_awg4_scene``) names, by name, alias or interop ID, for a
    message to suggest; None without ``$OCIO``, with a config that does not load, for a data
    colourspace, or where none matches."""
    tag = str(tag or "").strip()
    try:
        config = ocio_config() if tag else None
    except InputError:
        return None
    if config is None:
        return None
    space = config.getColorSpace(tag)  # a name or an alias (OCIO 2.5's configs alias their interop IDs)
    if space is None:  # else an interop ID that is no alias (OCIO 2.5's getInteropID)
        space = next((cs for cs in config.getColorSpaces()
                      if str(getattr(cs, "getInteropID", lambda: "")() or "").lower() == tag.lower()), None)
    return str(space.getName()) if space is not None and not space.isData() else None


def to_display(pixels: np.ndarray, colour: str) -> np.ndarray:
    """Encode ``pixels`` (``H×W×C`` float32, in ``colour``) to the sRGB display encoding.

    Returns float32 of the same shape; not clipped above (scene-linear values over 1 map above 1,
    see the module notes); negatives and NaN become 0. For OCIO, only the first 3 channels are
    converted.
    """
    name = _check(colour)
    if name == "srgb":
        return np.asarray(pixels, dtype=np.float32).copy()
    if name == "linear":
        return _linear_to_srgb(pixels)
    config = ocio_config()
    return _ocio_apply(np.maximum(np.nan_to_num(pixels, nan=0.0, neginf=0.0, posinf=np.inf), 0.0), name,
                       _display_space(config))


def from_display(pixels: np.ndarray, colour: str) -> np.ndarray:
    """Decode sRGB display-encoded ``pixels`` back to ``colour``: the inverse of :func:`to_display`
    (``from_display(to_display(x, c), c) == x`` for ``x >= 0``, above 1 included). For an
    OpenColorIO colourspace negatives are kept (NaN becomes 0): a colour outside the sRGB gamut
    (a saturated ACEScg light) is negative in the display encoding, and comes back from it."""
    name = _check(colour)
    if name == "srgb":
        return np.asarray(pixels, dtype=np.float32).copy()
    if name == "linear":
        return _srgb_to_linear(pixels)
    config = ocio_config()
    return _ocio_apply(np.nan_to_num(pixels, nan=0.0, neginf=-np.inf, posinf=np.inf), _display_space(config), name)


def to_linear(pixels: np.ndarray, colour: str) -> np.ndarray:
    """Convert ``pixels`` in ``colour`` to scene-linear (sRGB primaries); identity for ``linear``
    (negatives and values above 1 kept). An OpenColorIO colourspace's negatives, and colours
    outside the sRGB gamut (negative in sRGB primaries: a saturated ACEScg light), are kept too,
    on the sRGB curve's linear segment as OpenColorIO continues it: :func:`from_linear` gives them
    back, so the compositing equation solved here holds in the plate's own encoding."""
    name = _check(colour)
    if name == "linear":
        return np.asarray(pixels, dtype=np.float32).copy()
    if name == "srgb":
        return _srgb_to_linear(pixels)  # to_display's float32 copy: the curve makes its own
    x = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0)
    return _srgb_to_linear(_ocio_apply(x, name, _display_space(ocio_config())), signed=True)


def display_and_linear(clean: np.ndarray, pixels: np.ndarray, colour: str) -> tuple[np.ndarray, np.ndarray]:
    """``(to_display(clean, colour), to_linear(pixels, colour))``: what the pipeline needs of a
    crop, the networks' view of the sanitised plate and the plate's own values in linear light.

    For an OpenColorIO colourspace both come from one conversion wherever ``clean`` and
    ``pixels`` are the same (everywhere but the pixels :func:`sanitise` changed): the crop goes
    through OpenColorIO once, not twice (about 0.4 s a 1080p crop), and the results are the two
    calls' bit for bit. ``clean`` and ``pixels``: ``H×W×3`` float32 of the same shape.
    """
    name = _check(colour)
    clean, pixels = np.asarray(clean, dtype=np.float32), np.asarray(pixels, dtype=np.float32)
    if name in BUILTIN or clean.shape != pixels.shape or clean.ndim != 3 or clean.shape[2] != 3:
        return to_display(clean, name), to_linear(pixels, name)
    display = _display_space(ocio_config())
    theirs = np.nan_to_num(pixels, nan=0.0)  # what to_linear converts
    ours = np.maximum(np.nan_to_num(clean, nan=0.0, neginf=0.0, posinf=np.inf), 0.0)  # what to_display does
    encoded = _ocio_apply(theirs, name, display)
    shown = encoded.copy()
    differ = _any_channel(ours.view(np.uint32) != theirs.view(np.uint32))
    if differ.any():  # each pixel is converted on its own: the others' results stand
        shown[differ] = _ocio_apply(ours[differ][None], name, display)[0]
    return shown, _srgb_to_linear(encoded, signed=True)


def from_linear(pixels: np.ndarray, colour: str) -> np.ndarray:
    """The inverse of :func:`to_linear`: scene-linear ``pixels`` back to ``colour`` (for an
    OpenColorIO colourspace without clipping negatives, as :func:`to_linear`)."""
    name = _check(colour)
    if name == "linear":
        return np.asarray(pixels, dtype=np.float32).copy()
    if name == "srgb":
        return _linear_to_srgb(pixels)  # a new array: from_display would copy it again
    return _ocio_apply(_linear_to_srgb(pixels, signed=True), _display_space(ocio_config()), name)


def __getattr__(name: str) -> Any:
    """:func:`decode_srgb` and :func:`encode_srgb`, the tensor forms of the curve, from
    :mod:`core._colour_torch` on first use: this module and :mod:`core.io` import without torch
    (a reader of plates, such as the closed-form job of ``bench/bench_process.py``, does not
    pay torch's start-up)."""
    if name in ("decode_srgb", "encode_srgb"):
        from core import _colour_torch

        return getattr(_colour_torch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def grey_channel(found: dict[str, int | None], channels: list[str], what: str) -> int | None:
    """The channel holding a grey image, for one without all three of R, G, B: the one rule for
    plates (:meth:`core.io.Image.rgb`) and trimaps (:func:`core.trimap.normalise_trimap`).

    ``found`` maps ``R``, ``G``, ``B`` and ``Y`` to the index of the channel of that name (None:
    absent), as the caller looks names up. ``Y`` (luminance) is the grey; else a single colour
    channel (``R`` alone, ``G`` beside an alpha) is, as ``Y`` is; ``None`` when the image has none of
    them. Two of R, G, B are an :class:`InputError` naming ``what`` and its ``channels``: neither is
    the grey, and the missing one read as black would give another matte without a word.
    """
    if found.get("Y") is not None:
        return found["Y"]
    have = [name for name in "RGB" if found.get(name) is not None]
    if len(have) == 1:
        return found[have[0]]
    if len(have) == 2:
        missing = next(name for name in "RGB" if name not in have)
        raise InputError(f"{what} holds {have[0]} and {have[1]} but no {missing} (its channels: {', '.join(channels)}): "
                         f"two of the three colour channels are neither a colour image nor a grey one; write it with "
                         f"R, G and B, or with one grey channel")
    return None


def is_8_or_16_bit(dtype: np.dtype[Any]) -> bool:
    """Whether ``dtype`` holds 8- or 16-bit image data (:func:`scale_integers`): ``uint8`` or
    ``uint16`` in either byte order. A big-endian ``>u2`` (a 16-bit DPX or PNG's samples read with
    ``np.frombuffer``) is ``uint16`` as much as ``<u2``, though numpy's ``==`` with ``np.uint16``
    says otherwise on a little-endian machine: such a plate was refused as not ``uint16``."""
    return dtype.kind == "u" and dtype.itemsize in (1, 2)


def scale_integers(pixels: np.ndarray, what: str) -> np.ndarray:
    """``pixels`` as floats: ``uint8``/``uint16`` scaled by their maximum to [0, 1] (8/16-bit
    image data), floats as they are. The one rule for integer plates and trimaps.

    Other integer types (``int64`` from ``np.array`` of Python ints, ``int32``, ``uint32``) are
    refused with :class:`InputError` naming ``what``: scaled by their own maximum, 0/128/255
    would all read as black — a trimap as all background, silently.

    Example
    -------
    >>> scale_integers(np.array([0, 255], np.uint8), "the plate").tolist()
    [0.0, 1.0]
    """
    x = np.asarray(pixels)
    if is_8_or_16_bit(x.dtype):
        return x.astype(np.float32) / float(np.iinfo(x.dtype).max)
    if x.dtype.kind in "ui":
        raise InputError(
            f"{what} is an array of {x.dtype}: integer pixels must be uint8 or uint16 (scaled by 255 or 65535); "
            "for 8-bit values held in a wider type use .astype(np.uint8), or pass floats in 0..1")
    return x


@dataclass
class SanitiseReport:
    """What :func:`sanitise` found, counted in pixels (a pixel counts once per kind, whatever
    the number of its channels affected). False when the image was clean."""

    nan: int = 0
    posinf: int = 0
    neginf: int = 0
    negative: int = 0
    replacement_for_inf: float = 1.0

    @property
    def total(self) -> int:
        return self.nan + self.posinf + self.neginf + self.negative

    def __bool__(self) -> bool:
        return self.total > 0

    def __str__(self) -> str:
        if not self:
            return "no NaN, infinite or negative values"
        kinds = [(self.nan, "NaN (set to 0)"), (self.posinf, f"+inf (set to {self.replacement_for_inf:g})"),
                 (self.neginf, "-inf (set to 0)"), (self.negative, "negative values (set to 0)")]
        # The first kind found says what is counted, whichever it is: "3 pixel(s) with -inf ...".
        parts = [f"{count}{' pixel(s)' if not i else ''} with {what}"
                 for i, (count, what) in enumerate((c, w) for c, w in kinds if c)]
        return ", ".join(parts)


def _any_channel(mask: np.ndarray) -> np.ndarray:
    """``mask.any(axis=2)`` of an ``H×W×C`` mask (``H×W`` as it is): its channel planes or-ed
    together, which numpy does ten times as fast as ``any`` over an axis of 3 (50 ms a 1080p mask)."""
    if mask.ndim != 3:
        return mask
    hit = mask[..., 0].copy()
    for c in range(1, mask.shape[2]):
        hit |= mask[..., c]
    return hit


def _count_pixels(mask: np.ndarray) -> int:
    """The pixels of ``mask`` (``H×W``, or ``H×W×C``: a pixel counts once, whichever of its channels
    is set) that are true."""
    return int(np.count_nonzero(_any_channel(mask)))


def sanitise(pixels: np.ndarray) -> tuple[np.ndarray, SanitiseReport]:
    """Replace NaN, ±inf and negative values so the networks get finite, non-negative input.

    NaN, -inf and negatives -> 0; +inf -> the largest finite value of the image (at least 1).

    Parameters
    ----------
    pixels:
        ``H×W×C`` (or ``H×W``) float array.

    Returns
    -------
    (clean, report)
        ``clean`` float32 of the same shape (a new array); ``report`` a :class:`SanitiseReport`,
        false when nothing was replaced.

    Example
    -------
    >>> clean, report = sanitise(np.array([[[np.nan, -1.0, 0.5]]], np.float32))
    >>> clean.tolist(), str(report)
    ([[[0.0, 0.0, 0.5]]], '1 pixel(s) with NaN (set to 0), 1 with negative values (set to 0)')
    """
    x = np.asarray(pixels, dtype=np.float32)
    if x.size == 0:
        return x.copy(), SanitiseReport()
    if bool(np.isfinite(x).all()):
        if float(x.min()) >= 0.0:
            return x.copy(), SanitiseReport()  # the usual plate: two passes, not the eight of counting
        # A float plate's grain or a CG render's negatives, nothing else: one count, one clamp.
        report = SanitiseReport(negative=_count_pixels(x < 0), replacement_for_inf=max(1.0, float(x.max())))
        return np.maximum(x, 0.0), report
    nan = np.isnan(x)
    posinf = np.isposinf(x)
    neginf = np.isneginf(x)
    negative = (x < 0) & ~neginf
    report = SanitiseReport(nan=_count_pixels(nan), posinf=_count_pixels(posinf), neginf=_count_pixels(neginf),
                            negative=_count_pixels(negative))
    if not report:
        return x.copy(), report
    finite = np.isfinite(x)
    top = float(x[finite].max()) if finite.any() else 1.0
    report.replacement_for_inf = max(1.0, top)
    clean = np.where(finite, np.maximum(x, 0.0), 0.0).astype(np.float32)
    clean[posinf] = report.replacement_for_inf
    return clean, report


def premultiply(fg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The one definition of premultiplication: ``F·α``, Nuke's ``rgb`` convention.

    Parameters
    ----------
    fg:
        ``H×W×C`` foreground colour, unpremultiplied, any encoding and range (HDR values are
        kept: nothing is clipped).
    alpha:
        ``H×W`` (or ``H×W×1``) alpha.

    Returns
    -------
    numpy.ndarray
        ``H×W×C`` float32.

    Example
    -------
    >>> premultiply(np.array([[[4.0, 0.5, 1.0]]]), np.array([[0.5]])).tolist()
    [[[2.0, 0.25, 0.5]]]
    """
    a = np.asarray(alpha, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    return (np.asarray(fg, dtype=np.float32) * a).astype(np.float32, copy=False)


def unpremultiply(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The inverse of :func:`premultiply`, as Nuke's Unpremult: ``rgb / α`` where ``α != 0``.

    Where alpha is 0 the colour is returned as it is (Nuke's behaviour; a premultiplied colour is
    0 there anyway). ``rgb`` ``H×W×C``, ``alpha`` ``H×W`` (or ``H×W×1``); float32 out.

    Example
    -------
    >>> unpremultiply(np.array([[[2.0, 0.25, 0.5], [0.1, 0.2, 0.3]]]), np.array([[0.5, 0.0]])).tolist()
    [[[4.0, 0.5, 1.0], [0.10000000149011612, 0.20000000298023224, 0.30000001192092896]]]
    """
    a = np.asarray(alpha, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    c = np.asarray(rgb, dtype=np.float32)
    safe = np.where(a != 0, a, 1.0)
    return np.where(a != 0, c / safe, c).astype(np.float32, copy=False)
