"""Image files and frame sequences, through OpenImageIO (SPEC §5, §8, §11).

Reading: :func:`read_image` gives float32 ``H×W×C`` pixels over the file's **display** (full)
window — zeros where the data window does not cover it — with the channel names and an
:class:`ImageInfo` that keeps both windows and the metadata, to be written back on the result.
With ``window="union"`` (or an explicit window) it reads over the union of the data and display
windows instead, so that overscan — pixels outside the format, Nuke's bounding box beyond the
frame — is kept; the writers take the same ``window`` and write the plate's windows back.
Integer files (PNG, JPEG, DPX, integer TIFF) are normalised to [0, 1]. Colour is read as the
file stores it, as Nuke's Read gives it (its ``premultiplied`` knob off, the default): the
straight (unassociated) colour of a PNG, TGA or unassociated TIFF with alpha is not multiplied
by its alpha, as OpenImageIO would do unless told not to (:data:`_READ_CONFIG`).

Writing: :func:`write_matte_exr` (the ten channels of SPEC §5) and :func:`write_image` write to a
temporary file in the destination folder (``.NAME.tmp-XXXX.EXT``) and rename it over the
destination, so a crash never leaves a half-written frame; a path that is one of the inputs
(``protect=``) is refused. A destination that is a symbolic link is written through: the file it
points to is replaced (:func:`output_target`), the link stays. A file replaced keeps its permissions
and group (:func:`replace_file`).

Sequences: :func:`expand_sequence` turns ``plate.####.exr`` / ``plate.%04d.exr`` /
``plate.@.exr`` / ``plate.#.exr`` and a frame range into paths (``#`` is one digit of padding,
as in Nuke: ``####`` is 4 digits; ``@`` is unpadded).
"""

from __future__ import annotations

import errno
import logging
import operator
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

from core import colour
from core.errors import InputError, OutputError
from core.paths import library_path

log = logging.getLogger(__name__)

#: Channel names of the matte EXR, in this order (Nuke reads them as the rgba, fg and bg layers).
MATTE_CHANNELS = ("R", "G", "B", "A", "fg.R", "fg.G", "fg.B", "bg.R", "bg.G", "bg.B")

#: Pixel types of fewer bits than their container (DPX's 10 and 12 bits), written as uint16 with
#: ``oiio:BitsPerSample``.
_PACKED_BITS = {"uint10": 10, "uint12": 12}

#: Extensions :func:`write_image` writes, and the pixel type each gets by default.
WRITE_FORMATS = {
    ".exr": "half",
    ".png": "uint8",
    ".jpg": "uint8",
    ".jpeg": "uint8",
    ".tif": "uint16",
    ".tiff": "uint16",
    ".dpx": "uint10",
}

#: The integer depths each format holds, by the pixel type :func:`write_image` takes for them.
_FORMAT_DEPTHS = {
    ".png": {8: "uint8", 16: "uint16"},
    ".tif": {8: "uint8", 16: "uint16"},
    ".tiff": {8: "uint8", 16: "uint16"},
    ".dpx": {8: "uint8", 10: "uint10", 12: "uint12", 16: "uint16"},
}


# Metadata that describes the file rather than the picture, or that would contradict the file we
# write (its compression, channels, bit depth, colour encoding, views, luminance-chroma or texture
# layout: the result is one view, RGB, scanline): never copied from the plate.
_DROP_ATTRIBUTES = {
    "compression",
    "multiView",
    "openexr:luminancechroma",
    "textureformat",
    "planarconfig",
    "channelformats",
    "ICCProfile",
    "openexr:chunkCount",
    "openexr:dwaCompressionLevel",
    "openexr:levelmode",
    "openexr:roundingmode",
    "openexr:zipCompressionLevel",
    "PixelFormat",
    "DateTime",
    # The colour space OpenImageIO tags a file with (EXR's header, a PNG's text): the plate's,
    # which a result in another encoding (a linearised PNG, an sRGB PNG of a linear EXR) does not
    # hold. The writers' ``colourspace`` says what the result holds.
    "colorInteropID",
}
_DROP_PREFIXES = ("oiio:", "tiff:", "png:", "jpeg:", "dpx:", "Exif:ColorSpace", "photoshop:", "ICCProfile:")

#: How every file is opened: ``oiio:UnassociatedAlpha`` keeps the straight colour of a file with
#: unassociated alpha (PNG, TGA, a TIFF marked so) as stored, as Nuke's Read brings it in, where
#: OpenImageIO by default premultiplies it (a PNG plate's pixels at alpha 0.5 read half as bright
#: as the node bakes them, and a trimap's red 1 at alpha 0.5 read unknown). Files that store
#: premultiplied colour (EXR) are read as they are either way.
_READ_CONFIG = oiio.ImageSpec()
_READ_CONFIG.attribute("oiio:UnassociatedAlpha", 1)

#: Header values that say a file's values are log-encoded (a film scan's DPX: Cineon printing
#: density), which ``--colour auto`` cannot read as sRGB (:attr:`ImageInfo.log_encoding`).
_LOG_MARKS = {"dpx:Transfer": ("Logarithmic", "Printing density"), "oiio:ColorSpace": ("KodakLog", "Cineon")}


@dataclass
class ImageInfo:
    """What was read besides pixels, to be carried over onto the written result.

    Windows are in pixels, OpenEXR/OIIO convention (y down): the data window is ``x, y, width,
    height``; the display (full) window is ``full_x, full_y, full_width, full_height``.
    ``metadata`` holds ``(name, type, value)`` triples, ``type`` an OIIO type string such as
    ``"float"``, ``"string"``, ``"float2"``, ``"matrix"``, ``"timecode"``.
    """

    path: str
    format_name: str
    x: int
    y: int
    width: int
    height: int
    full_x: int
    full_y: int
    full_width: int
    full_height: int
    channels: list[str]
    metadata: list[tuple[str, str, Any]] = field(default_factory=list)
    is_float: bool = False
    bit_depth: int = 8
    pixel_type: str = "uint8"
    #: Colour layers (``diffuse`` of ``diffuse.R``) that the file's other parts hold and the part
    #: read does not: a multi-part file's plate is ambiguous when its colour is in several parts
    #: and none holds rgba (:meth:`Image.rgb`).
    other_part_layers: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the display window: the size of :attr:`Image.pixels`."""
        return self.full_width, self.full_height

    @property
    def data_window(self) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` of the data window."""
        return self.x, self.y, self.width, self.height

    @property
    def display_window(self) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` of the display (full) window."""
        return self.full_x, self.full_y, self.full_width, self.full_height

    @property
    def union_window(self) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` of the smallest window holding both the data and the display
        window: every pixel the file stores (overscan included) and the whole format."""
        return union_window(self.data_window, self.display_window)

    @property
    def turned(self) -> bool:
        """True when the file's EXIF orientation (5 to 8) tells viewers to turn it a quarter turn:
        its pixels are read as stored (as Nuke's Read does), so they are ``width × height`` where
        a photo viewer or paint package shows ``height × width``."""
        return self.attribute("Orientation", 1) in (5, 6, 7, 8)

    @property
    def data_matches_display(self) -> bool:
        return (self.x, self.y, self.width, self.height) == (
            self.full_x, self.full_y, self.full_width, self.full_height)

    @property
    def log_encoding(self) -> str | None:
        """What the header says when the file's values are log-encoded (a DPX film scan's
        ``dpx:Transfer 'Logarithmic'``), naming the file; None otherwise."""
        for name, values in _LOG_MARKS.items():
            value = self.attribute(name)
            if value is not None and str(value) in values:
                return f"{self.path} is log-encoded ({name} {str(value)!r})"
        return None

    def attribute(self, name: str, default: Any = None) -> Any:
        """The value of metadata attribute ``name`` (case-sensitive), or ``default``."""
        for n, _, v in self.metadata:
            if n == name:
                return v
        return default


def union_window(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The smallest ``(x, y, width, height)`` window holding windows ``a`` and ``b``."""
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return x0, y0, x1 - x0, y1 - y0


def _colour_layers(channels: list[str]) -> dict[str, list[int]]:
    """Layers (``beauty`` of ``beauty.R``) among ``channels`` holding all three of R, G, B: name ->
    their indices."""
    found: dict[str, dict[str, int]] = {}
    for i, name in enumerate(channels):
        layer, dot, last = name.rpartition(".")
        key = {"r": "r", "red": "r", "g": "g", "green": "g", "b": "b", "blue": "b"}.get(last.lower())
        if dot and key:
            found.setdefault(layer, {}).setdefault(key, i)
    return {layer: [keys[k] for k in "rgb"] for layer, keys in found.items() if len(keys) == 3}


@dataclass
class Image:
    """Pixels of one image over its display window (or the window it was read over), with their channel names.

    ``pixels`` is ``H×W×C`` float32 over :attr:`window` (by default the display window);
    ``channels`` has C names as stored in the file (EXR keeps them sorted, e.g. ``A, B, G, R``:
    look them up by name).
    """

    pixels: np.ndarray
    channels: list[str]
    info: ImageInfo
    #: ``(x, y, width, height)`` the pixels cover, OpenEXR convention; None: the display window.
    window: tuple[int, int, int, int] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])

    def index(self, name: str) -> int | None:
        """Index of channel ``name`` (case-insensitive; ``red``/``green``/``blue``/``alpha`` and
        layer-qualified names such as ``rgba.R`` also match ``R`` ...), or None."""
        aliases = {"red": "r", "green": "g", "blue": "b", "alpha": "a", "luminance": "y"}
        want = name.lower()
        want = aliases.get(want, want)
        lower = [c.lower() for c in self.channels]
        if want in lower:
            return lower.index(want)
        for full in (f"rgba.{want}", f"rgb.{want}"):
            if full in lower:
                return lower.index(full)
        long = {v: k for k, v in aliases.items()}.get(want)
        if long and long in lower:
            return lower.index(long)
        return None

    def channel(self, name: str) -> np.ndarray:
        """``H×W`` plane of channel ``name``; :class:`InputError` naming the file if absent."""
        i = self.index(name)
        if i is None:
            raise InputError(
                f"{self.info.path}: no channel {name!r} (its channels: {', '.join(self.channels)})"
            )
        return self.pixels[..., i]

    def rgb(self, layer: str | None = None) -> np.ndarray:
        """``H×W×3`` float32 colour: R, G, B found by name (or the one layer holding ``.R .G .B``,
        such as ``beauty.R``); a 1-channel (or Y / Y+A) image, or one with a single colour channel
        (``R``, ``G`` and ``A``), is repeated into three, and two of R, G, B are refused
        (:func:`core.colour.grey_channel`); channels
        the file does not name (OIIO's ``channel0`` ...) are taken in order. Otherwise (alpha,
        depth or several colour layers) :class:`InputError` naming the file and its channels.
        ``layer``: the layer to take instead (``beauty`` of ``beauty.R``, any case; ``rgba`` is
        ``R G B``); :class:`InputError` naming the file and its colour layers when it has none such."""
        if layer is not None:
            return self._layer_rgb(layer)
        idx = [self.index(c) for c in ("R", "G", "B")]
        if None not in idx:
            return np.ascontiguousarray(self.pixels[..., idx])
        # Y, or a single colour channel (R alone, G beside Z): grey; two of R, G, B refused (core.colour)
        y = colour.grey_channel(dict(zip("RGBY", idx + [self.index("Y")], strict=True)), self.channels,
                                str(self.info.path))
        c = self.pixels.shape[2]
        if y is None and (c == 1 or (c == 2 and self.index("A") is not None)):
            y = 0 if c == 1 or self.index("A") != 0 else 1
        if y is not None:
            if self.index("RY") is not None or self.index("BY") is not None:  # its colour is not in Y alone
                raise InputError(
                    f"{self.info.path}: a luminance-chroma (YC) image whose chroma (RY, BY) OpenImageIO did not "
                    f"convert to RGB: it would be matted as grey; write it as RGB (its channels: "
                    f"{', '.join(self.channels)})"
                )
            return np.repeat(self.pixels[..., y : y + 1], 3, axis=2)
        layers = self._colour_layers()
        if len(layers) == 1 and not self.info.other_part_layers:
            return np.ascontiguousarray(self.pixels[..., next(iter(layers.values()))])
        if layers and len(self.file_colour_layers()) > 1:
            parts = " of its parts" if self.info.other_part_layers else ""
            raise InputError(
                f"{self.info.path}: no R, G, B channels and colour in several layers{parts} "
                f"({', '.join(self.file_colour_layers())}): cannot tell which is the plate; name its layer "
                f"(lbsmatte matte --plate-layer) (its channels: {', '.join(self.channels)})"
            )
        if c >= 3 and all(n.lower().startswith("channel") for n in self.channels[:3]):
            return np.ascontiguousarray(self.pixels[..., :3])
        raise InputError(
            f"{self.info.path}: cannot find colour channels (R, G, B or one grey channel) among "
            f"{', '.join(self.channels)}"
        )

    def _colour_layers(self) -> dict[str, list[int]]:
        """Layers (``beauty`` of ``beauty.R``) holding all three of R, G, B: name -> their indices."""
        return _colour_layers(self.channels)

    def file_colour_layers(self) -> list[str]:
        """The colour layers of the whole file: those of the part read, then those only its other
        parts hold (:attr:`ImageInfo.other_part_layers`)."""
        return [*self._colour_layers(), *self.info.other_part_layers]

    def _layer_rgb(self, layer: str) -> np.ndarray:
        """``H×W×3`` R, G, B of layer ``layer`` (see :meth:`rgb`)."""
        layers = {name.lower(): idx for name, idx in self._colour_layers().items()}
        rgba = [self.index(c) for c in ("R", "G", "B")]
        if None not in rgba:
            layers.setdefault("rgba", rgba)
            layers.setdefault("rgb", rgba)
        idx = layers.get(layer.strip().lower())
        if idx is None:
            found = sorted(set(self._colour_layers()) | ({"rgba"} if None not in rgba else set()))
            raise InputError(
                f"{self.info.path}: no layer {layer!r} holding R, G, B (its colour layers: "
                f"{', '.join(found) or 'none'}; its channels: {', '.join(self.channels)})"
            )
        return np.ascontiguousarray(self.pixels[..., idx])

    def alpha(self, layer: str | None = None) -> np.ndarray | None:
        """``H×W`` alpha plane, or None when the image has no alpha channel. ``layer``: the alpha of
        the layer :meth:`rgb` takes for ``layer`` (``beauty.A`` of ``beauty``, any case; ``rgba`` is ``A``)."""
        want = None if layer is None else layer.strip().lower()
        if want is not None and want not in ("rgba", "rgb"):
            lower = [c.lower() for c in self.channels]
            found = [lower.index(n) for n in (f"{want}.a", f"{want}.alpha") if n in lower]
            return self.pixels[..., found[0]] if found else None
        i = self.index("A")
        return None if i is None else self.pixels[..., i]

    def matte(self) -> np.ndarray:
        """``H×W`` plane of a matte file (a ground-truth alpha): its A channel when that varies,
        else its first channel. Mattes are usually stored grey; an RGBA file whose A is constant
        (an opaque PNG of a grey matte, as paint packages save one) holds the matte in its colour.
        The one rule for every reader of mattes (evaluation, fine-tuning)."""
        a = self.alpha()
        if a is None or float(a.min()) == float(a.max()):
            return self.pixels[..., 0]
        return a


# -- reading ---------------------------------------------------------------------------------------
def _oiio_error(obj: Any = None) -> str:
    messages = []
    if obj is not None:
        try:
            messages.append(obj.geterror())
        except Exception:  # pragma: no cover - older bindings
            pass
    messages.append(oiio.geterror())  # also clears OIIO's global error
    lines = [line.strip() for m in messages if m for line in m.splitlines()]
    text = "; ".join(dict.fromkeys(line for line in lines if line))
    return text or "unknown OpenImageIO error"


_STDERR_LOCK = threading.Lock()

#: The first bytes of a PNG file. libpng is the one image library under OpenImageIO that writes
#: to file descriptor 2 itself ('libpng error: ...', 'libpng warning: ...'); libjpeg's, libtiff's,
#: OpenEXR's and the DPX and TGA readers' messages reach OIIO's error (checked with OIIO 3.2 on
#: truncated and damaged files of each).
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _is_png(path: str) -> bool:
    """Whether ``path`` starts as a PNG file does (whatever its name)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(_PNG_SIGNATURE)) == _PNG_SIGNATURE
    except OSError:
        return False


def _flush_stderr() -> None:
    """Flush Python's ``sys.stderr``, where there is one: None under ``pythonw`` and in some GUI
    hosts embedding Python (reading a PNG there failed with 'NoneType' object has no attribute
    'flush'), closed or replaced by one without ``flush`` elsewhere."""
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass


@contextmanager
def _library_stderr_held(path: str) -> Iterator[None]:
    """Hold what libpng writes to file descriptor 2 while ``path``, a PNG, is read, and drop it
    (logged at debug level); other files are read without touching file descriptor 2.

    File descriptor 2 is the process's, not the thread's: what other threads write to stderr
    meanwhile (a pipeline's log handler, a progress bar) is held too, and written to stderr once
    the file is read, all but libpng's own lines. Reading an EXR held it too, and one at a time:
    a tool reading frames in a thread pool read them in turn, and the warnings its other threads
    logged to stderr meanwhile went to the debug log instead."""
    if not _is_png(path):
        yield
        return
    with _STDERR_LOCK:
        _flush_stderr()
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to hold
            yield
            return
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                _flush_stderr()  # what Python's stderr buffered meanwhile belongs in the sink
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                lines = sink.read().splitlines(keepends=True)
                library = [line for line in lines if line.startswith(b"libpng ")]
                others = b"".join(line for line in lines if not line.startswith(b"libpng "))
                try:
                    while others:
                        others = others[os.write(2, others):]
                except OSError:
                    pass
                held = b"".join(library).decode("utf-8", "replace").strip()
                if held:
                    log.debug("image library said: %s", held)


def check_utf8_path(path: str | os.PathLike[str], what: str = "") -> str:
    """:class:`InputError` when ``path``'s bytes are not UTF-8 (a file named on a Latin-1 system:
    Python keeps such bytes as lone surrogates), naming it and the way out (``what``: the
    flag, ``--plate``, that gave it). OpenImageIO takes UTF-8 paths only: it raised a TypeError
    ("incompatible function arguments") that said neither, and an output so named failed only
    after its frame was matted. Returns ``path`` as OpenImageIO takes it (:func:`library_path`)."""
    p = os.fspath(path)
    try:
        return library_path(p)
    except UnicodeDecodeError:
        shown = p.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise InputError(f"{what + ' ' if what else ''}{shown}: the path holds bytes that are not UTF-8 text, which "
                         "OpenImageIO cannot open: rename the file (or its folder) in UTF-8") from None


def read_image(path: str | os.PathLike[str], window: str | tuple[int, int, int, int] = "display",
               layer: str | None = None) -> Image:
    """Read an EXR, DPX, TIFF, PNG or JPEG file as float32 over its display window.

    A multi-part (multi-subimage) file is read from its first part holding an rgba channel
    (R, G, B, A, Y, ``rgba.R`` ...), else its first part holding R, G, B of one layer
    (``beauty.R`` ...; :meth:`Image.rgb` refuses it when other parts hold other colour layers,
    :attr:`ImageInfo.other_part_layers`), else its first part. With ``layer`` (``beauty`` of ``beauty.R``, see
    :meth:`Image.rgb`; ``matte`` of a trimap's ``matte.A``), from its first part holding a channel
    of that layer. Its metadata is that part's and the first part's (where Nuke's Write puts a
    multi-part file's metadata, and which Nuke's Read shows), the part's own where both have one.

    Parameters
    ----------
    path:
        The file.
    window:
        ``"display"`` (default): the pixels cover the display window, overscan is dropped.
        ``"union"``: the union of the data and display windows (overscan kept, the format
        filled). ``(x, y, width, height)``: that window. Pixels the file does not hold are 0;
        :attr:`Image.window` says which window the pixels cover.

    Returns
    -------
    Image
        ``pixels`` ``H×W×C`` float32 (integer formats scaled to [0, 1]; float formats as
        stored, scene-linear values above 1 kept; colour as stored: a PNG's straight colour is
        not premultiplied by its alpha, as in Nuke's Read), ``channels``, ``info``.

    Raises
    ------
    InputError
        Missing, unreadable or truncated file, deep image: the message names the file and
        gives OpenImageIO's error.
    """
    data, info = _read(path, layer, decode="float")
    p, channels = info.path, info.channels
    if window == "display":
        pixels = _reframe(data, (info.x, info.y), info.display_window)
        return Image(pixels=pixels, channels=channels, info=info)
    if window == "union":
        window = info.union_window
        _check_union_size(p, info)
    box = None if isinstance(window, str) else _window_box(window)
    if box is None:
        raise InputError(f"cannot read image {p}: window must be 'display', 'union' or (x, y, width, height) in "
                         f"whole pixels, width and height > 0, not {window!r}")
    _check_pixels(p, "window read", box[2], box[3], len(channels))
    return Image(pixels=_reframe(data, (info.x, info.y), box), channels=channels, info=info, window=box)


def read_info(path: str | os.PathLike[str], layer: str | None = None) -> ImageInfo:
    """The :class:`ImageInfo` :func:`read_image` gives for ``path`` and ``layer``, from the file's
    header alone: no pixel is decoded (a 4K float EXR plate: a tenth of a millisecond against a
    second), so a file whose pixels are cut short or damaged is not found out here.

    Raises
    ------
    InputError
        Missing or unreadable file, deep or volume image, a window past the bounds
        :func:`read_image` reads, as :func:`read_image` says them.
    """
    return _read(path, layer, decode=None)[1]


def check_whole(path: str | os.PathLike[str], layer: str | None = None) -> ImageInfo:
    """:func:`read_info`, after decoding every pixel of that part as :func:`read_image` would, but
    in the file's own pixel type and kept nowhere: whether the file reads whole (not cut short or
    damaged) at a fraction of :func:`read_image`'s time and memory (a 4K matte EXR's ten half
    channels are not made 32-bit floats over its display window).

    Raises
    ------
    InputError
        As :func:`read_image` does, naming the file and giving OpenImageIO's error.
    """
    return _read(path, layer, decode="native")[1]


def _read(path: str | os.PathLike[str], layer: str | None,
          decode: str | None) -> tuple[np.ndarray | None, ImageInfo]:
    """The :class:`ImageInfo` of the part of ``path`` that :func:`read_image` reads, and its
    pixels: with ``decode="float"`` ``height×width×C`` float32 over the data window (as
    :func:`read_image` takes them), with ``"native"`` decoded in the file's own type (OpenImageIO's
    flat buffer, only to know that they decode), with None none (the header alone)."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise InputError(f"file not found: {p}")
    name = check_utf8_path(p)
    if os.path.isdir(p):
        raise InputError(f"{p} is a folder, not an image file")
    # The image libraries' own messages (libpng's 'libpng error: ...', libjpeg's 'Premature end of
    # JPEG file') would go to stderr, which carries only the progress bar; OIIO's error, in our
    # message naming the file, says the same.
    with _library_stderr_held(p):
        inp = oiio.ImageInput.open(name, _READ_CONFIG)
        if inp is None:  # OIIO's message names the file as it was given it
            raise InputError(f"cannot read image {p}: {_oiio_error().replace(name, p)}")
        try:
            parts = _part_channels(inp)
            subimage = _rgba_subimage(parts, layer)
            spec = inp.spec(subimage, 0)
            first = inp.spec(0, 0) if subimage else None
            if spec.deep:
                raise InputError(f"cannot read image {p}: deep images are not supported")
            if spec.depth > 1:
                raise InputError(f"cannot read image {p}: volume images are not supported")
            nch = spec.nchannels
            for what, (w, h) in (("data window", (spec.width, spec.height)),
                                 ("display window", (spec.full_width, spec.full_height))):
                _check_pixels(p, what, w, h, nch)
            format_name = inp.format_name()
            data = None
            if decode is not None:
                data = inp.read_image(subimage, 0, 0, nch, oiio.FLOAT if decode == "float" else oiio.UNKNOWN)
                if data is None or inp.has_error:
                    raise InputError(f"cannot read image {p} (truncated or damaged?): {_oiio_error(inp)}")
            if decode == "float":
                data = np.asarray(data, dtype=np.float32).reshape(spec.height, spec.width, nch)
                if str(format_name) == "openexr":
                    _exr_uint_by_value(inp, subimage, spec, data, p)
        finally:
            inp.close()
    basetype = spec.format.basetype
    # An EXR's uint channels are read as the numbers they hold, not scaled into [0, 1] as an
    # integer file's are; and Nuke's Read takes every EXR as linear.
    is_float = basetype in (oiio.FLOAT, oiio.HALF, oiio.DOUBLE) or str(format_name) == "openexr"
    bits = spec.get_int_attribute("oiio:BitsPerSample", 0) or spec.format.size() * 8
    if decode == "float" and str(format_name) == "dpx" and nch == 4 and bits == 10 and spec.width % 3 == 1:
        _restore_dpx_last_samples(p, data)
    metadata = [(str(a.name), str(a.type), a.value) for a in spec.extra_attribs]
    if first is not None:
        # Nuke's Write puts a multi-part file's metadata (frame rate, nuke/*, the plate's camera
        # keys) in its first part only, and Nuke's Read shows that part's: a plate read from a
        # later part keeps it beside its own.
        own = {name for name, _, _ in metadata}
        metadata += [(str(a.name), str(a.type), a.value) for a in first.extra_attribs if str(a.name) not in own]
    channels = parts[subimage]
    # A multi-part file's colour layers in the other parts: with no rgba, the plate is not the
    # first of them without a word (a renderer's diffuse part before its beauty part).
    own_layers = {name.lower() for name in _colour_layers(channels)}
    others = list(dict.fromkeys(name for i, names in enumerate(parts) if i != subimage
                                for name in _colour_layers(names) if name.lower() not in own_layers))
    info = ImageInfo(
        path=p, format_name=str(format_name),
        x=spec.x, y=spec.y, width=spec.width, height=spec.height,
        full_x=spec.full_x, full_y=spec.full_y, full_width=spec.full_width, full_height=spec.full_height,
        channels=channels, metadata=metadata, is_float=is_float, bit_depth=int(bits),
        pixel_type=str(spec.format), other_part_layers=others,
    )
    return (data if decode == "float" else None), info


def _exr_uint_by_value(inp: Any, subimage: int, spec: Any, data: np.ndarray, path: str) -> None:
    """Put the values of an EXR's ``uint`` channels into ``data`` (``H×W×C`` float32, read as
    OpenImageIO's FLOAT) as the numbers they hold. OpenEXR's ``UINT`` is a count, not a fraction:
    OpenEXR's own conversion and Nuke's Read give 255 as 255.0 (an object ID as its number), where
    OpenImageIO scales it by 2^32 - 1: a uint32 trimap of 0/128/255 (or a 0/1 mask) read as
    about 0 everywhere, all background, and was matted as a trimap with no unknown pixel."""
    for c in range(spec.nchannels):
        if spec.channelformat(c).basetype != oiio.UINT32:
            continue
        values = inp.read_image(subimage, 0, c, c + 1, oiio.UINT32)
        if values is None or inp.has_error:
            raise InputError(f"cannot read image {path} (truncated or damaged?): {_oiio_error(inp)}")
        data[..., c] = np.asarray(values).reshape(spec.height, spec.width)


def _restore_dpx_last_samples(path: str, data: np.ndarray) -> None:
    """Put back the last sample of each row of a 10-bit RGBA DPX ``data`` (``H×W×4``, W % 3 == 1),
    read from the file itself. Such a row's 4·W samples leave one in its last 32-bit word, and
    OpenImageIO's reader (3.2) returns 0 for it: the last column's alpha read as 0 (an RGBA
    trimap's, --trimap-channel auto then taking an opaque alpha for the trimap), though the file
    holds it (OpenImageIO writes it, and Nuke reads it). Only the common layout is read (one
    RGBA element, filled method A, no run-length encoding); another is left as OpenImageIO gave it."""
    try:
        with open(path, "rb") as f:
            header = f.read(820)
            order = {b"SDPX": ">", b"XPDS": "<"}.get(header[:4])
            if order is None or len(header) < 820:
                return
            start, = np.frombuffer(header, order + "u4", 1, 4)
            descriptor, bits = header[800], header[803]
            packing, encoding = np.frombuffer(header, order + "u2", 2, 804)
            element_start, padding = np.frombuffer(header, order + "u4", 2, 808)
            if (descriptor, bits, packing, encoding) != (51, 10, 1, 0):
                return
            height, width = data.shape[:2]
            words = (4 * width + 2) // 3  # a row's 32-bit words, 3 samples each: its last holds 1
            stride = 4 * words + (0 if padding == 0xFFFFFFFF else int(padding))
            f.seek(int(element_start or start) + 4 * (words - 1))
            rows = np.frombuffer(f.read(stride * (height - 1) + 4), np.uint8)
    except OSError:
        return
    if rows.size < stride * (height - 1) + 4:
        return
    last = np.lib.stride_tricks.as_strided(rows, (height, 4), (stride, 1)).copy().view(order + "u4")[:, 0]
    data[:, -1, 3] = ((last >> 22) & 1023) / np.float32(1023)  # the word's first sample: its top 10 bits


def _window_box(window: Any) -> tuple[int, int, int, int] | None:
    """``window`` as ``(x, y, width, height)`` whole numbers with width and height > 0, else None
    (None, a number, a float such as 10.7 that would be cut to 10, too few values)."""
    try:
        box = tuple(operator.index(v) for v in window)
    except TypeError:
        return None
    if len(box) != 4 or box[2] <= 0 or box[3] <= 0:
        return None
    return box  # type: ignore[return-value]


#: The most pixels a window of an image read may hold (16384 x 16384; 8K UHD is 33 M), and the
#: most values (pixels x channels, 4 bytes each) its float32 copy may hold: a header of a few
#: bytes can claim a window of 10^12 pixels or hundreds of channels (a hostile EXR, a PNG
#: decompression bomb), which would take all memory before any other check could fail.
MAX_PIXELS = 1 << 28
MAX_VALUES = 1 << 31


def _check_pixels(path: str, what: str, width: int, height: int, channels: int) -> None:
    """:class:`InputError` naming the file when ``width x height x channels`` is past the bounds."""
    if width * height > MAX_PIXELS or width * height * max(channels, 1) > MAX_VALUES:
        raise InputError(
            f"cannot read image {path}: its {what} is {width}x{height} pixels of {channels} channels, more than "
            f"LBSMatte reads ({MAX_PIXELS:,} pixels, {MAX_VALUES:,} values); a damaged or hostile file?"
        )


#: Channel names (lower case) of Nuke's rgba layer: a part holding one of them is the picture.
_RGBA_NAMES = {"r", "g", "b", "a", "y", "red", "green", "blue", "alpha"} | {
    f"{layer}.{c}" for layer in ("rgba", "rgb") for c in ("r", "g", "b", "a", "red", "green", "blue", "alpha")}


def _part_channels(inp: Any) -> list[list[str]]:
    """Each part's channel names as Nuke's Read names them. A multi-part file none of whose
    channels names its layer (``Z``, ``red``: never ``depth.Z``) is how Nuke's Write stores a part
    per layer ('write full layer names' off, its default): each part named after its layer and
    view (``fg.main``), its channels without the layer; Nuke's Read takes the layer from the
    part's name (``fg.red``), so they are named so here (``rgba``'s stay ``R G B A``)."""
    parts: list[tuple[str, list[str]]] = []
    while inp.seek_subimage(len(parts), 0):
        spec = inp.spec()
        name, view = spec.get_string_attribute("oiio:subimagename"), spec.get_string_attribute("view")
        if view and name.endswith(f".{view}"):
            name = name[: -len(view) - 1]
        elif view and name == view:  # a part per view ('interleave: channels and layers'): no layer
            name = ""
        parts.append((name, [str(c) for c in spec.channelnames]))
    inp.geterror()  # seeking past the last subimage leaves an error: clear it
    if len(parts) < 2 or any("." in c for _, names in parts for c in names):
        return [names for _, names in parts]
    return [names if layer.lower() in ("", "rgba", "rgb") else [f"{layer}.{c}" for c in names]
            for layer, names in parts]


def _rgba_subimage(parts: list[list[str]], layer: str | None = None) -> int:
    """The subimage to read, of the parts' channel names (:func:`_part_channels`): the first that
    holds an rgba channel (a multi-part EXR whose first part is depth or another pass keeps its
    colour in a later part, which Nuke shows as rgba), else the first holding R, G and B of one
    layer (``beauty.R`` ...: a renderer's part named after its pass), else the first. With
    ``layer`` (not ``rgba``): the first holding a channel of that layer (``beauty`` of
    ``beauty.R``, ``matte`` of ``matte.A``), if one does."""
    want = None if layer is None or layer.strip().lower() in ("rgba", "rgb") else layer.strip().lower()
    rgba, layered = None, None
    for i, names in enumerate(parts):
        layers = {name.lower() for name in _colour_layers(names)}
        if want is not None and want in {n.rpartition(".")[0].lower() for n in names}:
            return i
        if rgba is None and _RGBA_NAMES & {n.lower() for n in names}:
            if want is None:
                return i
            rgba = i
        if layered is None and layers:
            layered = i
    return next((part for part in (rgba, layered) if part is not None), 0)


#: How many times the display and data windows' pixels together their union may hold.
UNION_LIMIT = 4


def _check_union_size(path: str, info: ImageInfo) -> None:
    """Refuse a data window so far from the display window that their union is mostly empty: a
    small bounding box thousands of pixels off the frame would otherwise cost gigabytes of memory
    (and the process, killed for it, would say nothing)."""
    union, display, data = info.union_window, info.display_window, info.data_window
    if union[2] * union[3] > UNION_LIMIT * (display[2] * display[3] + data[2] * data[3]):
        raise InputError(
            f"{path}: its data window {data} lies far outside its display window {display}: together they "
            f"span {union[2]}x{union[3]} pixels, mostly empty; crop the bounding box to the frame "
            "(in Nuke: a Crop node, or 'crop to format') before matting"
        )


def _reframe(data: np.ndarray, origin: tuple[int, int], window: tuple[int, int, int, int]) -> np.ndarray:
    """Copy ``data`` (``h×w×C`` whose top-left pixel is at ``origin``) into a zero array covering
    ``window = (x, y, width, height)``; parts outside the window are dropped."""
    x0, y0 = origin
    wx, wy, ww, wh = window
    h, w = data.shape[:2]
    if (x0, y0, w, h) == (wx, wy, ww, wh):
        return np.ascontiguousarray(data, dtype=np.float32)
    out = np.zeros((wh, ww, data.shape[2]), dtype=np.float32)
    ax0, ax1 = max(x0, wx), min(x0 + w, wx + ww)
    ay0, ay1 = max(y0, wy), min(y0 + h, wy + wh)
    if ax0 < ax1 and ay0 < ay1:
        out[ay0 - wy : ay1 - wy, ax0 - wx : ax1 - wx] = data[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0]
    return out


#: The environment variables OpenImageIO reads its thread count from at its start: where the job
#: gives it a count in them, that count stands (:func:`fit_threads`).
OIIO_THREAD_ENVS = ("OPENIMAGEIO_THREADS", "CUE_THREADS")


def oiio_env_threads() -> int | None:
    """The thread count OpenImageIO took from :data:`OIIO_THREAD_ENVS` at its start, read as it
    reads them, or None: ``OPENIMAGEIO_THREADS`` where it is set at all (empty too; then
    ``CUE_THREADS`` is not read), else ``CUE_THREADS``; the whole number it starts with (``4``,
    `` 4``, ``4,2``), where that is 1 or more. ``0``, ``abc`` or an empty value give no count, and
    OpenImageIO then runs one thread per core of the node."""
    text = os.environ.get(OIIO_THREAD_ENVS[0], os.environ.get(OIIO_THREAD_ENVS[1], ""))
    found = re.match(r"\s*\+?([0-9]+)", text)
    return int(found.group(1)) if found and int(found.group(1)) >= 1 else None


def fit_threads(count: int) -> Callable[[], None] | None:
    """Hold OpenImageIO's threads to ``count`` (the job's CPUs) where it would run more: its own
    pool (``threads``) and OpenEXR's (``exr_threads``), which compress an EXR's chunks as it is
    written and decompress them as it is read. OIIO counts every core of the node (C++'s
    ``hardware_concurrency``), whatever the process's CPU affinity (``taskset``, a cpuset, Slurm's
    binding), cgroup quota or ``OMP_NUM_THREADS`` says: a job given 8 cores of a 64-core node
    wrote each EXR with 64 threads, which then took turns on its 8 cores (on a core of its own, one
    EXR writer thread wrote a 1080p matte in 0.97 s where OIIO's two took 1.17 s). Left alone
    where the job gave OIIO a count (:func:`oiio_env_threads`; ``OPENIMAGEIO_THREADS=0`` or
    ``abc`` is none, and OIIO counted the node's cores), and never raised. Returns what puts the
    previous counts back (``main`` called in-process), or None where nothing changed."""
    if oiio_env_threads() is not None:
        return None
    count = max(1, int(count))
    previous = {name: oiio.get_int_attribute(name) for name in ("threads", "exr_threads")}
    # exr_threads 0 means one per core of the node; -1 no pool at all (OpenEXR works in the caller's thread).
    fitted = {name: count if value == 0 or value > count else value for name, value in previous.items()}
    if fitted == previous:
        return None
    for name, value in fitted.items():
        oiio.attribute(name, value)

    def restore() -> None:
        for name, value in previous.items():
            oiio.attribute(name, value)
    return restore


# -- writing ---------------------------------------------------------------------------------------
class InputFiles:
    """Input files, each known by its resolved path and its device and inode (a symbolic or hard
    link to one is the same file), worked out once: checking the outputs of a long sequence
    against its inputs costs one look-up per output, not one comparison per input."""

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self._by_path: dict[str, str] = {}
        self._by_inode: dict[tuple[int, int], str] = {}
        for path in paths:
            q = os.fspath(path)
            self._by_path.setdefault(_same_path_key(q), q)
            inode = _inode(q)
            if inode is not None:
                self._by_inode.setdefault(inode, q)

    def find(self, path: str | os.PathLike[str]) -> str | None:
        """The input that ``path`` is (or resolves to), or None."""
        p = os.fspath(path)
        found = self._by_path.get(_same_path_key(p))
        if found is None:
            inode = _inode(p)
            found = self._by_inode.get(inode) if inode is not None else None
        return found


def _same_path_key(path: str) -> str:
    """``path`` resolved, in the case the file system compares names in: on Windows
    ``C:/Shows/Plate.EXR`` and ``c:\\shows\\plate.exr`` are one file, there or not."""
    return os.path.normcase(os.path.realpath(path))


def output_key(path: str | os.PathLike[str]) -> str:
    """What two output paths that are one file have in common: the path resolved through symbolic
    links (two links to one file, a linked folder) and case-folded (``Out.1001.exr`` and
    ``out.1001.exr`` are one file on macOS's and Windows' file systems and their shares). Outputs
    of one run with equal keys would replace each other; case is folded on every system, so a
    plan refused on a show's case-insensitive share is refused everywhere."""
    return _same_path_key(os.fspath(path)).casefold()


def _inode(path: str) -> tuple[int, int] | None:
    """The file's device and inode, or None where it has no such identity: missing, or a file
    system that gives every file the number 0 (some network shares and FAT volumes on Windows),
    where the number would make every file the same one."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if st.st_ino else None


def check_not_input(path: str | os.PathLike[str],
                    protect: Iterable[str | os.PathLike[str]] | InputFiles = ()) -> None:
    """Raise :class:`OutputError` when ``path`` is (or resolves to) one of ``protect``."""
    p = os.fspath(path)
    found = (protect if isinstance(protect, InputFiles) else InputFiles(protect)).find(p)
    if found is not None:
        raise OutputError(f"refusing to write {p}: it is one of the input files ({found})")


def check_link_reachable(path: Path) -> None:
    """:class:`InputError` naming ``path`` if it is a link whose target cannot be reached (a data
    set of links onto a show's share not mounted here): ``is_file()`` is false for it, so a
    listing passed it over without a word. ``lbsmatte finetune`` and ``evaluate`` list their data
    sets through this."""
    if path.is_symlink() and not path.exists():
        raise InputError(f"{path} is a link to {os.readlink(path)}, which cannot be reached (a share not mounted "
                         "here, a file moved or removed): mount it or fix the link, or take the link out of the "
                         "data set")


def check_writable_dir(path: str | os.PathLike[str]) -> Path:
    """Create folder ``path`` if needed and check a file can be created in it.

    Call before any work. Returns the folder; raises :class:`OutputError` naming it otherwise.
    """
    folder = Path(path) if os.fspath(path) else Path(".")
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"the output folder {folder} is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from exc
    if not folder.is_dir():
        raise OutputError(f"the output folder {folder} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".lbsmatte-write-test-")
    except OSError as exc:
        raise OutputError(f"the output folder {folder} is not writable: {exc.strerror or exc}") from exc
    os.close(fd)
    os.unlink(probe)
    return folder


def check_creatable_dir(path: str | os.PathLike[str]) -> None:
    """Check that folder ``path`` can be created (or, if it exists, written into), leaving nothing
    behind: for outputs written only at the end of a long job (a training's bundle), checked before
    it starts. Raises :class:`OutputError` naming the folder otherwise."""
    folder = Path(os.path.abspath(os.fspath(path) or "."))
    existing = folder
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "the output folder" if existing == folder else f"{existing}, on the way to the output folder,"
        raise OutputError(f"cannot write to {folder}: {what} is not a folder")
    try:
        probe = tempfile.mkdtemp(dir=existing, prefix=".lbsmatte-write-test-")
    except OSError as exc:
        raise OutputError(f"cannot write to {folder}: {existing} is not writable ({exc.strerror or exc})") from exc
    os.rmdir(probe)


#: Held while the umask is read by setting it (where the system gives no other way).
_UMASK_HELD = threading.Lock()


def _umask() -> int:
    """The process's umask, for the mode a written file gets (``0o666 & ~umask``).

    Read from ``/proc/self/status`` (Linux 4.7 and later) without touching it: reading it the
    only portable way, by setting it and setting it back, left it 0 for a moment for the whole
    process, and a thread pool writing frames lost it for good (a second thread read the first
    one's 0 and put that back): every file and folder the process made afterwards was world
    writable. Elsewhere it is still read that way, one thread at a time, with 0o077 (no one else
    may read or write a file another thread makes meanwhile) in place of 0."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_HELD:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def set_default_mode(path: str | os.PathLike[str]) -> None:
    """Give the file ``path`` the permission bits a file this process makes with ``open`` gets,
    ``0o666 & ~umask`` (the umask read without setting it): for a file that
    :func:`tempfile.mkstemp` or safetensors made ``0600``, which the farm's or another artist's
    user could not read in a shared folder."""
    os.chmod(path, 0o666 & ~_umask())


#: Seconds a replace that Windows refuses (PermissionError) is retried for: see :func:`replace_file`.
REPLACE_RETRY_S = 3.0


def replace_file(tmp: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """``os.replace(tmp, dest)``, on Windows retried for up to :data:`REPLACE_RETRY_S` seconds
    while it is refused with :class:`PermissionError`. POSIX replaces a file under whoever has it
    open; Windows refuses while any process holds ``dest`` (or ``tmp``) open without sharing its
    deletion: a virus scanner or the search indexer looking at the new file for a moment,
    another process reading ``dest`` — or a program that keeps it open (a Nuke ``Read`` showing
    it), which no retry outlasts: the last PermissionError is raised. A ``dest`` with the
    read-only attribute, which Windows refuses the same way, is not waited for.

    A ``dest`` that exists keeps its permissions and, where this user may set it, its group
    (:func:`keep_mode`): a rerun does not lock the rest of a show's team out of a shared file."""
    import time

    keep_mode(tmp, dest)
    deadline = None
    while True:
        try:
            os.replace(tmp, dest)
            return
        except PermissionError:
            if os.name != "nt" or _read_only(dest):  # no retry outlasts a read-only attribute
                raise
            now = time.monotonic()
            deadline = now + REPLACE_RETRY_S if deadline is None else deadline
            if now >= deadline:
                raise
            time.sleep(0.1)


def keep_mode(tmp: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Give ``tmp`` the permission bits (``rwx`` of owner, group and others; never set-user-ID or
    sticky, set-group-ID only on a folder) and the group of ``dest`` when it exists and is of the
    same kind (a file, or a folder replaced whole: a weights bundle), as writing over it in place
    (``cp``, Nuke's Write) would: a group-writable ``0664`` frame on a show's share stays ``0664``
    rather than becoming this user's umask default. The group is kept only where the system lets
    this user give it (a member of that group, or root); otherwise the new file keeps its own."""
    try:
        old, new = os.stat(dest), os.stat(tmp)
    except OSError:  # nothing there yet: the new file's mode (the umask's) stands
        return
    if stat.S_IFMT(old.st_mode) != stat.S_IFMT(new.st_mode) or not (stat.S_ISREG(old.st_mode)
                                                                  or stat.S_ISDIR(old.st_mode)):
        return
    if hasattr(os, "chown") and new.st_gid != old.st_gid:
        try:
            os.chown(tmp, -1, old.st_gid)  # before chmod: a change of group may clear mode bits
        except OSError:
            pass
    os.chmod(tmp, stat.S_IMODE(old.st_mode) & (0o2777 if stat.S_ISDIR(old.st_mode) else 0o777))


def _read_only(path: str | os.PathLike[str]) -> bool:
    """Whether existing file ``path`` has Windows' read-only attribute (``os.access`` reads it there),
    which makes Windows refuse to replace it with the PermissionError a file held open gives."""
    return os.path.isfile(path) and not os.access(path, os.W_OK)


def _open_elsewhere(dest: str, exc: OSError, what: str | None = None) -> str:
    """Why ``dest`` could not be replaced, for an :class:`OutputError` (naming it as ``what``)."""
    what = dest if what is None else what
    if os.name == "nt" and isinstance(exc, PermissionError) and _read_only(dest):
        return (f"cannot write {what}: it is read-only (Windows replaces no read-only file): clear its read-only "
                "attribute (attrib -R, or its Properties), or write to another name")
    if os.name == "nt" and isinstance(exc, PermissionError) and os.path.exists(dest):
        return (f"cannot write {what}: {exc.strerror or exc}: on Windows a file that another program holds open "
                "(a Nuke Read or a viewer showing it) cannot be replaced; close it there, or write to another name")
    return f"cannot write {what}: {exc.strerror or exc}"


def output_target(path: str | os.PathLike[str]) -> str:
    """The file that writing output ``path`` replaces: ``path`` itself, or, when it is a symbolic
    link (a show's ``latest`` link to a versioned file, a folder of links), the file the link
    points to, followed to the end. The writers replace that file and leave the link a link, as
    Nuke's Write, ``cp`` or a shell's ``>`` would; a dangling link's file is created.

    Raises :class:`OutputError` naming ``path`` for a link that cannot be followed (a loop).
    """
    p = os.fspath(path)
    if not os.path.islink(p):
        return p
    try:
        return os.path.realpath(p, strict=True)
    except FileNotFoundError:  # dangling: the file it names is the one to create
        return os.path.realpath(p)
    except OSError as exc:  # a loop of links, a link through a file
        raise OutputError(f"cannot write {p}: it is a symbolic link that cannot be followed "
                          f"({exc.strerror or exc})") from exc


def _describe_output(dest: str, target: str) -> str:
    """``dest`` for a message, with the file it links to when it is a link."""
    return dest if target == dest else f"{dest} (a symbolic link to {target})"


def check_output_folder(path: str | os.PathLike[str]) -> None:
    """Check before any work that output file ``path`` can be written: its folder is created
    if needed (:func:`check_writable_dir`); for a symbolic link, the folder of the file it points
    to must already exist (a link into a folder that is not there is broken, or its share is not
    mounted: nothing is created there) and be writable. :class:`OutputError` naming ``path``."""
    dest = os.fspath(path)
    target = output_target(dest)
    if target == dest:
        check_writable_dir(os.path.dirname(dest))
        return
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise OutputError(f"cannot write {_describe_output(dest, target)}: the folder {folder} does not exist "
                          "(a broken link?)")
    try:
        check_writable_dir(folder)
    except OutputError as exc:
        raise OutputError(f"cannot write {_describe_output(dest, target)}: {exc}") from exc


@contextmanager
def atomic_output(path: str | os.PathLike[str], protect: Iterable[str | os.PathLike[str]] | InputFiles = ()) -> Iterator[str]:
    """Yield a temporary path next to ``path`` (same extension); on success rename it over
    ``path``, on any error remove it and leave ``path`` untouched. An :class:`OSError` (a full
    disk: ``No space left on device``) becomes an :class:`OutputError` naming ``path``.
    A ``path`` that is a symbolic link is written through: the temporary file goes next to the
    file it points to (:func:`output_target`) and replaces that file; the link stays.
    ``protect``: the run's inputs, which ``path`` must not be (:func:`check_not_input`). The file
    gets the umask's mode (:func:`set_default_mode`), or the mode and group of the file it
    replaces (:func:`replace_file`). Every whole-file writer of ``core`` goes through it::

        with atomic_output("eval.json") as tmp:
            Path(tmp).write_text(text)
    """
    dest = os.fspath(path)
    try:
        check_utf8_path(dest)
    except InputError as exc:
        raise OutputError(f"cannot write {exc}") from None
    check_not_input(dest, protect)
    target = output_target(dest)
    what = _describe_output(dest, target)
    folder = os.path.dirname(os.path.abspath(target))
    if target != dest:
        check_output_folder(dest)
    elif not os.path.isdir(folder):
        check_writable_dir(folder)
    name = os.path.basename(target)
    ext = os.path.splitext(name)[1]
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.tmp-", suffix=ext)
    except OSError as exc:
        raise OutputError(f"cannot write {what}: {exc.strerror or exc}") from exc
    os.close(fd)
    try:
        try:
            yield tmp
            set_default_mode(tmp)  # mkstemp makes 0600 files; give the usual mode
            replace_file(tmp, target)
        except OSError as exc:  # a full disk, the folder removed or made read-only meanwhile, ...
            raise OutputError(_open_elsewhere(target, exc, what)) from exc
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def temp_files(path: str | os.PathLike[str], listed: dict[Path, list[str]] | None = None) -> list[Path]:
    """Temporary files that :func:`atomic_output` makes for ``path`` (``.NAME.tmp-XXXX.EXT``) and that
    are still there: left by a run that was killed (SIGKILL) before it could remove them.

    ``listed``: the temporary names of each folder, listed once and kept there for a whole run
    (see :func:`remove_stale_temps`); None lists the folder now."""
    dest = Path(os.path.abspath(output_target(path)))
    if not dest.parent.is_dir():
        return []
    if listed is None or dest.parent not in listed:
        names = [name for name in os.listdir(dest.parent) if name.startswith(".") and ".tmp-" in name]
        if listed is not None:
            listed[dest.parent] = names
    else:
        names = listed[dest.parent]
    prefix, suffix = f".{dest.name}.tmp-", dest.suffix
    return sorted(dest.parent / name for name in names
                  if name.startswith(prefix) and name.endswith(suffix) and (dest.parent / name).is_file())


def remove_stale_temps(paths: Iterable[str | os.PathLike[str]],
                       listed: dict[Path, list[str]] | None = None) -> list[Path]:
    """Remove the leftover temporary files of ``paths`` (see :func:`temp_files`); returns them.

    Only safe while holding :func:`lock_output` for those paths: then no other run is writing them.
    One that cannot be removed (another user's, in a folder with the sticky bit) stays, with a
    warning: it is hidden and never read as the output, which is written through a temporary
    file of its own all the same.

    ``listed`` (an empty dict a run passes for each of its frames): each output folder is listed
    once, at the run's first frame there, not for every frame: a folder holding a long shot's
    frames (or many sequences) was listed twice a frame, which grew each frame's time with the
    frames written (120 ms a frame at 8000 files here, seconds on a slow share). A temporary file
    that a run killed after that listing leaves is removed by the next run on that frame.
    """
    removed = []
    for path in paths:
        for tmp in temp_files(path, listed):
            try:
                tmp.unlink()
                removed.append(tmp)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("cannot remove %s, left by an earlier run that was killed (%s): it stays",
                            tmp, exc.strerror or exc)
    return removed


def lock_path(out: str | os.PathLike[str]) -> Path:
    """The lock of an output (a file or a pattern such as ``out.####.exr``): ``.NAME.lock`` beside it
    (beside the file it points to, for a symbolic link: two links to one file share its lock)."""
    dest = Path(os.path.abspath(output_target(out)))
    return dest.parent / f".{dest.name}.lock"


@contextmanager
def lock_output(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the lock of output ``out`` (a file or a frame pattern) while writing it.

    A second run writing the same output is refused at once (no waiting), with an
    :class:`OutputError` naming the lock file and the process holding it. The lock is the
    operating system's (``filelock``): a run that is killed, even with SIGKILL, releases it.
    The lock file is removed when the run ends normally; one left by a killed run holds no lock
    and is taken over by the next run; one that another user's killed run left, which this user
    may not open for writing, is removed and made again (:func:`_take_over_stale_lock`).
    """
    import socket
    import time

    from filelock import FileLock, Timeout

    path = lock_path(out)

    def record_owner(fd: int) -> None:
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
                     .encode())
        except OSError:
            # A full disk or a quota: the frame fails (cannot lock ...), and the empty lock file must
            # not stay, one a frame in the user's output folder. Removed while still held, as at the end.
            if os.name != "nt":
                try:
                    path.unlink()
                except OSError:
                    pass
            raise

    lock = FileLock(path, timeout=0, on_acquired=record_owner)
    try:
        try:
            lock.acquire()
        except PermissionError as exc:  # a lock file this user may not open for writing: another user's
            why = _take_over_stale_lock(path)
            if why is not None:
                raise OutputError(f"cannot lock {os.fspath(out)} ({path}): {exc.strerror or exc}{why}") from exc
            lock.acquire()
    except Timeout:
        try:
            owner = path.read_text(encoding="utf-8", errors="replace").strip() or "another process"
        except OSError:
            owner = "another process"
        raise OutputError(
            f"{os.fspath(out)} is being written by another lbsmatte run ({owner}; lock {path}); "
            "wait for it to finish or stop it"
        ) from None
    except OSError as exc:
        raise OutputError(f"cannot lock {os.fspath(out)} ({path}): {exc.strerror or exc}") from exc
    try:
        yield path
    finally:
        if os.name != "nt":  # filelock removes it on Windows; on POSIX unlink while still held, which
            try:             # filelock's acquire detects (an unlinked inode is never taken as the lock)
                path.unlink()
            except OSError:
                pass
        lock.release()


@contextmanager
def locked_outputs(paths: Iterable[str | os.PathLike[str]],
                   listed: dict[Path, list[str]] | None = None) -> Iterator[None]:
    """Hold the lock of each output in ``paths`` (:func:`lock_output`) while they are written, and,
    once held, remove their leftover temporary files (:func:`remove_stale_temps`, each with a
    warning): a run killed with SIGKILL while writing one left it, and no other run is writing
    them now. ``matte`` holds a frame's outputs so (its folders listed once a run: ``listed``),
    ``demo``, ``export`` and ``evaluate`` theirs."""
    paths = list(paths)
    with ExitStack() as held:
        for path in paths:
            held.enter_context(lock_output(path))
        for tmp in remove_stale_temps(paths, listed):
            log.warning("removed %s, left by an earlier run that was killed", tmp)
        yield


def _take_over_stale_lock(path: Path) -> str | None:
    """Remove lock file ``path``, which this user may not open for writing, when no run holds it:
    one that another user's run left when it was killed (its mode that user's umask's, ``0644``),
    which would fail the frame for everyone else, run after run. None when removed (the lock can be
    taken now); else why not, for the message (``""`` where it cannot be told: no ``flock`` on
    Windows, an NFS share where ``flock`` needs the file open for writing); raises filelock's
    ``Timeout`` when a run holds it (that run is writing the output).

    The file is removed while this process holds its ``flock`` and only if it is still the file at
    ``path``: no other run can hold it or have put another in its place meanwhile (a run that opened
    it before sees an unlinked file, which filelock never takes as the lock)."""
    try:
        import fcntl
    except ImportError:
        return ""
    from filelock import Timeout

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return ""
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise Timeout(os.fspath(path)) from None
            return ""
        try:
            if not os.path.samestat(os.fstat(fd), os.lstat(path)):
                return ""
            os.unlink(path)
        except OSError:  # a folder with the sticky bit: only the file's owner may remove it
            return ("; it is another user's lock file, left by a run that was killed (no run holds it), which this "
                    "user may not remove here: ask its owner to")
        log.warning("removed the lock file %s, left by another user's run that was killed", path)
        return None
    finally:
        os.close(fd)


#: A DPX's film and TV header fields (OpenImageIO's names): facts of the shot and the frame, not of
#: the file's encoding, which a DPX result keeps as Nuke's Write does (``dpx:FrameRate`` is the
#: only frame rate OpenImageIO reads from or writes to a DPX; every other ``dpx:`` field is dropped).
_DPX_SHOT_ATTRIBUTES = frozenset("dpx:" + name for name in (
    "FrameRate", "TemporalFrameRate", "TimeOffset", "ShutterAngle", "FramePosition", "SequenceLength",
    "HeldCount", "FrameId", "SlateInfo", "Format", "InputDevice", "InputDeviceSerialNumber", "XScannedSize",
    "YScannedSize", "SourceDateTime"))

#: The pixel aspects OpenEXR writes (``Header::sanityCheck``): a plate's outside them (a DPX whose
#: aspect fields read 0:1, which OIIO gives as 0) failed every frame's EXR result ("Invalid pixel
#: aspect ratio in image header"); such a result gets 1, as OIIO reads undefined fields.
_PIXEL_ASPECT_RANGE = (1e-6, 1e6)


def _copy_metadata(spec: Any, like: ImageInfo | None, colourspace: str | None = None, ext: str = ".exr") -> None:
    """Carry ``like``'s metadata onto ``spec`` of a file of extension ``ext`` (but for what
    :data:`_DROP_ATTRIBUTES` and :data:`_DROP_PREFIXES` name), the frame rate across formats: a
    DPX's ``dpx:FrameRate`` as EXR's ``framesPerSecond`` and the other way round, so that an EXR
    plate's DPX result, or a DPX scan's, keeps its rate."""
    if colourspace:  # OIIO writes it as the format's own tag (EXR's colorInteropID, TIFF's Exif)
        spec.attribute("oiio:ColorSpace", colourspace)
    if like is None:
        return
    dpx = ext == ".dpx"
    for name, type_name, value in like.metadata:
        if name in _DROP_ATTRIBUTES or name.startswith(_DROP_PREFIXES):
            if not (dpx and name in _DPX_SHOT_ATTRIBUTES):
                continue
        if name == "PixelAspectRatio" and not _PIXEL_ASPECT_RANGE[0] <= value <= _PIXEL_ASPECT_RANGE[1]:
            continue
        try:
            spec.attribute(name, _type_desc(type_name), value)
        except Exception:  # an attribute OIIO cannot express again: skip it rather than fail
            continue
    fps = _frame_rate(like)
    if fps is not None:
        if dpx and like.attribute("dpx:FrameRate") is None:
            spec.attribute("dpx:FrameRate", float(fps[0]) / fps[1])
        elif not dpx and all(like.attribute(name) is None for name in _EXR_RATE_NAMES):
            spec.attribute(_EXR_RATE_NAMES[0], oiio.TypeDesc("rational"), fps)


#: An EXR's frame rate: OpenEXR's standard attribute ``framesPerSecond`` (``ImfStandardAttributes.h``;
#: OIIO 3.2 reads and writes it under that name, and under ``FramesPerSecond`` only a file that
#: OIIO was given that name for: neither is mapped to the other).
_EXR_RATE_NAMES = ("framesPerSecond", "FramesPerSecond")


def _frame_rate(info: ImageInfo) -> tuple[int, int] | None:
    """``info``'s frame rate as a fraction (EXR's ``framesPerSecond``, else a DPX's ``dpx:FrameRate``,
    NTSC's 23.976 as 24000/1001), or None when it has none, or one that is not a positive number."""
    rate = next((info.attribute(name) for name in _EXR_RATE_NAMES if info.attribute(name) is not None), None)
    try:
        if rate is not None:
            numerator, denominator = (int(v) for v in np.asarray(rate).ravel()[:2])
            return (numerator, denominator) if numerator > 0 and denominator > 0 else None
        fps = float(info.attribute("dpx:FrameRate", "nan"))
    except (TypeError, ValueError):
        return None
    if not 0 < fps < 10000:  # NaN: a DPX whose header leaves it undefined
        return None
    ntsc = fps * 1.001
    if abs(ntsc - round(ntsc)) < 1e-3 and abs(fps - round(fps)) > 1e-3:
        return (round(ntsc) * 1000, 1001)
    fraction = Fraction(fps).limit_denominator(1000)
    return (fraction.numerator, fraction.denominator)


#: OIIO's names of integer vectors, ``str()`` of the types it reads EXR's ``v2i`` and ``v3i`` as (and
#: ``box2i`` as two ``v2i``), which ``oiio.TypeDesc()`` does not parse back.
_INT_VECTORS = {"vector2i": oiio.VEC2, "vectori": oiio.VEC3}


def _type_desc(type_name: str) -> Any:
    """``oiio.TypeDesc`` of an OIIO type string of :attr:`ImageInfo.metadata`, integer vectors and
    their arrays (``vector2i``, ``vectori``, ``vector2i[2]``) included: parsed as unknown, a plate's
    ``v2i``, ``v3i`` and ``box2i`` attributes were dropped from the result without a word."""
    desc = oiio.TypeDesc(type_name)
    base, _, count = type_name.partition("[")
    if desc.basetype == oiio.UNKNOWN and base in _INT_VECTORS:
        desc = oiio.TypeDesc(oiio.INT, _INT_VECTORS[base], oiio.VECTOR, int(count.rstrip("]") or 0))
    return desc


def _write_pixels(tmp: str, spec: Any, pixels: np.ndarray, dest: str) -> None:
    """Write ``pixels`` (the spec's data window, ``h×w×C`` float32) to ``tmp`` with OIIO.

    OIIO's writers do not all report a failed write: on a full disk libpng stops writing and
    reports success, leaving a truncated PNG that would be renamed into place, and libjpeg ends
    the process. So where the system has anonymous memory files (Linux), OIIO encodes the image
    into one and Python copies the bytes to ``tmp``, where every failed write raises with its
    cause (``No space left on device``, ``Disk quota exceeded``, ...): an :class:`OutputError`
    naming ``dest``.
    """
    try:
        fd = os.memfd_create("lbsmatte-image") if os.path.isdir("/proc/self/fd") else -1
    except (AttributeError, OSError):  # not Linux, or a sandbox that forbids it
        fd = -1
    if fd < 0:
        _encode(library_path(tmp), tmp, spec, pixels, dest)
        return
    try:
        _encode(f"/proc/self/fd/{fd}", tmp, spec, pixels, dest)
        os.lseek(fd, 0, os.SEEK_SET)
        with open(fd, "rb", closefd=False) as encoded, open(tmp, "wb") as target:
            shutil.copyfileobj(encoded, target, 1 << 20)
    except OSError as exc:
        raise OutputError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def _encode(target: str, name: str, spec: Any, pixels: np.ndarray, dest: str) -> None:
    """Encode ``pixels`` with OIIO into file ``target``, in the format ``name``'s extension says."""
    def failed(out: Any = None) -> OutputError:
        # OIIO's message names the file it was given: the anonymous memory file's /proc/self/fd/N
        # means nothing to the user, whose file is ``dest``.
        return OutputError(f"cannot write {dest}: {_oiio_error(out).replace(target, dest)}")

    out = oiio.ImageOutput.create(library_path(name))
    if out is None:
        raise failed()
    try:
        if not out.open(target, spec):
            raise failed(out)
        if not out.write_image(np.ascontiguousarray(pixels, dtype=np.float32)):
            raise failed(out)
    finally:
        closed = out.close()
    # Trust the return values: OIIO 3.2's TIFF writer leaves a harmless Exif-directory message
    # in the error state on files it wrote correctly.
    if not closed:
        raise failed(out)
    _oiio_error(out)  # clear it


def _windowed_spec(pixels: np.ndarray, channels: list[str], fmt: Any, like: ImageInfo | None,
                   keep_windows: bool, window: tuple[int, int, int, int] | None = None) -> tuple[Any, np.ndarray]:
    """Spec and the pixels to write: over ``like``'s data window when ``keep_windows``, else the
    display window at the origin. ``window``: what ``pixels`` cover (default ``like``'s display window)."""
    h, w, c = pixels.shape
    if window is not None and (window[2], window[3]) != (w, h):
        raise OutputError(f"the result is {w}x{h} but the window it should cover is {window[2]}x{window[3]}")
    if window is None and like is not None and (like.full_width, like.full_height) != (w, h):
        raise OutputError(
            f"the result is {w}x{h} but the image it should match ({like.path}) is "
            f"{like.full_width}x{like.full_height}"
        )
    if like is None:
        spec = oiio.ImageSpec(w, h, c, fmt)
        data = pixels
    elif not keep_windows:  # formats without windows: the display window (the format)
        spec = oiio.ImageSpec(like.full_width, like.full_height, c, fmt)
        data = pixels if window is None else _reframe(pixels, window[:2], like.display_window)
    else:
        spec = oiio.ImageSpec(like.width, like.height, c, fmt)
        spec.x, spec.y = like.x, like.y
        spec.full_x, spec.full_y = like.full_x, like.full_y
        spec.full_width, spec.full_height = like.full_width, like.full_height
        origin = (like.full_x, like.full_y) if window is None else window[:2]
        data = _reframe(pixels, origin, like.data_window)
    spec.channelnames = tuple(channels)
    alpha = [i for i, n in enumerate(channels) if n.lower() in ("a", "alpha")]
    spec.alpha_channel = alpha[0] if alpha else -1
    return spec, data


#: The largest finite half float: a float beyond it is written as inf in a half-float file.
HALF_MAX = 65504.0


def _fit_half(pixels: np.ndarray, channels: list[str] | tuple[str, ...], dest: str) -> np.ndarray:
    """``pixels`` for a half-float file: finite values beyond ±:data:`HALF_MAX` clamped to it, with
    a warning naming the file, the channels and the largest magnitude (written as they are they
    would become ±inf, which Nuke's merges spread as NaN). NaN and infinities are left as given."""
    # The usual result, all of it within half float's range, in two reductions: the masks below
    # cost a quarter of a second on a 1080p frame's ten channels. (NaN fails the test.)
    if pixels.size == 0 or (-HALF_MAX <= float(pixels.min()) and float(pixels.max()) <= HALF_MAX):
        return pixels
    over = np.abs(pixels) > HALF_MAX
    over &= np.isfinite(pixels)
    if not over.any():
        return pixels
    names = [name for name, hit in zip(channels, over.reshape(-1, over.shape[-1]).any(0), strict=False) if hit]
    log.warning("%s: %d value(s) beyond half float's ±%g (largest %.4g; in %s) written as ±%g, the most a half-float "
                "EXR holds (they would have been inf)", dest, int(over.sum()), HALF_MAX,
                float(np.abs(pixels[over]).max()), ", ".join(names), HALF_MAX)
    return np.where(over, np.copysign(np.float32(HALF_MAX), pixels), pixels).astype(np.float32)


def write_matte_exr(
    path: str | os.PathLike[str],
    matte: Any,
    *,
    like: ImageInfo | None = None,
    premultiply: bool = True,
    half: bool = True,
    protect: Iterable[str | os.PathLike[str]] | InputFiles = (),
    window: tuple[int, int, int, int] | None = None,
    colourspace: str | None = None,
) -> None:
    """Write a matte as a multi-layer OpenEXR: ``R G B A fg.R fg.G fg.B bg.R bg.G bg.B``.

    Parameters
    ----------
    path:
        Destination ``.exr`` (another extension raises :class:`OutputError`); written atomically.
    matte:
        Any object with ``alpha`` (``H×W``), ``fg`` and ``bg`` (``H×W×3``) float arrays, in the
        encoding the file should hold (scene-linear for Nuke); e.g. :class:`core.pipeline.Matte`.
    like:
        :class:`ImageInfo` of the plate: its display/data windows and metadata are carried over
        (minus compression, channel and colour-encoding attributes). ``H×W`` must be its display size.
    premultiply:
        ``rgb = fg·alpha`` (Nuke's convention) when true, else the unpremultiplied FG.
    half:
        16-bit half floats (default) or 32-bit floats. Compression is zip.
    protect:
        Input paths that must not be overwritten (:class:`OutputError`); for the many writes of a
        sequence an :class:`InputFiles`, resolved once, not at every write.
    window:
        ``(x, y, width, height)`` the matte's pixels cover (e.g. ``Image.window`` of a plate read
        with ``window="union"``); default ``like``'s display window. The file gets ``like``'s data
        and display windows, filled from these pixels, so overscan is written back.
    colourspace:
        The colour interop ID of the space the layers are in, for the header (``colorInteropID``,
        written as given, and ``oiio:ColorSpace``: ``lin_rec709_scene``, ``lin_ap1_scene``,
        ``ocio:arrilogc4_awg4_scene`` ...); default none said.
        ``like``'s own is never copied: the layers need not be in the plate's encoding.
    """
    if os.path.splitext(os.fspath(path))[1].lower() != ".exr":
        # OIIO would write the ten channels into whatever the extension names (a half-float TIFF
        # whose layers Nuke does not read), or fail naming the hidden temporary file.
        raise OutputError(f"cannot write {os.fspath(path)}: write_matte_exr writes OpenEXR, name the file .exr "
                          "(other formats: write_image(path, matte.rgba(), ['R', 'G', 'B', 'A']))")
    alpha = np.asarray(matte.alpha, dtype=np.float32)
    fg = np.asarray(matte.fg, dtype=np.float32)
    bg = np.asarray(matte.bg, dtype=np.float32)
    if alpha.ndim == 3:
        alpha = alpha[..., 0]
    if fg.shape != alpha.shape + (3,) or bg.shape != alpha.shape + (3,):
        raise OutputError(
            f"cannot write {os.fspath(path)}: alpha {alpha.shape}, fg {fg.shape} and bg {bg.shape} do not match"
        )
    rgb = colour.premultiply(fg, alpha) if premultiply else fg
    pixels = np.concatenate([rgb, alpha[..., None], fg, bg], axis=2)
    if half:
        pixels = _fit_half(pixels, MATTE_CHANNELS, os.fspath(path))
    spec, data = _windowed_spec(pixels, list(MATTE_CHANNELS), oiio.HALF if half else oiio.FLOAT, like, True, window)
    _copy_metadata(spec, like, colourspace, ".exr")
    if colourspace:
        # As it is: from oiio:ColorSpace alone OIIO writes only an ID its own colour config (the
        # $OCIO of its first use in the process, else its built-in one) knows, and dropped a camera
        # log's ('ocio:arrilogc4_awg4_scene'), or a plate's own, without a word.
        spec.attribute("colorInteropID", colourspace)
    spec.attribute("compression", "zip")
    with atomic_output(path, protect) as tmp:
        _write_pixels(tmp, spec, data, os.fspath(path))


def output_pixel_type(path: str | os.PathLike[str], like: ImageInfo | None = None) -> str:
    """The pixel type of a result written to ``path`` (by its extension) from a plate ``like``.

    The format's default (:data:`WRITE_FORMATS`: PNG 8-bit, TIFF 16-bit, DPX 10-bit, EXR half),
    or, for an integer plate of more bits than that, the format's depth that holds them (its
    deepest, if none does): a 16-bit PNG plate gives a 16-bit PNG, a 12- or 16-bit DPX a 12- or
    16-bit DPX, a 10- or 12-bit DPX a 16-bit PNG, so that the known regions keep the plate's values
    rather than being quantised to fewer bits. A float plate gets the default.
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    default = WRITE_FORMATS.get(ext, "")
    depths = _FORMAT_DEPTHS.get(ext)
    if not depths or like is None or like.is_float:
        return default
    default_bits = next(bits for bits, kind in depths.items() if kind == default)
    if like.bit_depth <= default_bits:
        return default
    holding = [bits for bits in depths if bits >= like.bit_depth]
    return depths[min(holding) if holding else max(depths)]


def write_image(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    channels: list[str] | tuple[str, ...],
    *,
    like: ImageInfo | None = None,
    protect: Iterable[str | os.PathLike[str]] | InputFiles = (),
    pixel_type: str | None = None,
    unassociated_alpha: bool = False,
    window: tuple[int, int, int, int] | None = None,
    colourspace: str | None = None,
) -> None:
    """Write ``pixels`` (``H×W×C`` float) as PNG, JPEG, TIFF, DPX or EXR, atomically.

    Integer formats (PNG 8-bit, JPEG 8-bit, TIFF 16-bit, DPX 10-bit by default; ``pixel_type``
    such as ``"uint8"``/``"uint16"``/``"half"``/``"float"`` overrides, and ``"uint10"``/``"uint12"``
    for DPX; a name OpenImageIO does not know raises :class:`OutputError`) get values clipped to
    [0, 1] and rounded to the nearest code value. EXR is half float, zip-compressed, with ``like``'s windows.
    ``like``'s metadata is carried over. With an alpha channel, OIIO takes the colour as
    premultiplied and stores it the way the format wants (PNG holds unpremultiplied colour);
    ``unassociated_alpha=True`` says the colour given is already unpremultiplied.
    ``window``: the ``(x, y, width, height)`` ``pixels`` cover (default ``like``'s display
    window); EXR gets ``like``'s windows filled from them, other formats the display window.
    ``colourspace``: the colour space of ``pixels`` for the file's header (``srgb_rec709_scene``,
    as for :func:`write_matte_exr`); ``like``'s own is never copied.
    """
    dest = os.fspath(path)
    ext = os.path.splitext(dest)[1].lower()
    if ext not in WRITE_FORMATS:
        raise OutputError(f"cannot write {dest}: unsupported extension {ext!r} (use {', '.join(WRITE_FORMATS)})")
    px = np.asarray(pixels, dtype=np.float32)
    if px.ndim == 2:
        px = px[..., None]
    if px.ndim != 3 or px.shape[2] != len(channels):
        raise OutputError(f"cannot write {dest}: pixels of shape {px.shape} do not match channels {list(channels)}")
    if ext in (".jpg", ".jpeg") and px.shape[2] not in (1, 3):
        raise OutputError(f"cannot write {dest}: JPEG holds 1 or 3 channels, not {px.shape[2]} ({', '.join(channels)})")
    kind = pixel_type or WRITE_FORMATS[ext]
    bits = _PACKED_BITS.get(kind)
    fmt = oiio.TypeDesc("uint16" if bits else str(kind))
    if fmt.basetype == oiio.UNKNOWN:  # OIIO would write its default depth: a typo must not give 8-bit or half
        raise OutputError(f"cannot write {dest}: unknown pixel_type {pixel_type!r} "
                          "(uint8, uint16, uint10, uint12, half or float)")
    if fmt.basetype not in (oiio.FLOAT, oiio.HALF, oiio.DOUBLE):
        px = np.clip(np.nan_to_num(px, nan=0.0), 0.0, 1.0)
    if bits:
        # OIIO (3.2) rounds to 16 bits and keeps the top ``bits`` of that, which truncates (and
        # maps by 2^bits rather than 2^bits - 1): 10-bit 1.94 written as 1, 1021.4 as 1022. Rounded
        # here to the code value, the 16-bit value OIIO makes of it keeps that code in its top bits.
        scale = np.float32(2**bits - 1)
        px = np.round(px * scale) / scale
    elif fmt.basetype == oiio.HALF:
        px = _fit_half(px, channels, dest)
    spec, data = _windowed_spec(px, list(channels), fmt, like, ext == ".exr", window)
    _copy_metadata(spec, like, colourspace, ext)
    if bits:
        spec.attribute("oiio:BitsPerSample", bits)
    if unassociated_alpha:
        spec.attribute("oiio:UnassociatedAlpha", 1)
    if ext == ".exr":
        spec.attribute("compression", "zip")
    with atomic_output(dest, protect) as tmp:
        _write_pixels(tmp, spec, data, dest)


# -- sequences -------------------------------------------------------------------------------------
def _sequence(pattern: str) -> Any | None:
    """A fileseq FileSequence when ``pattern`` has a frame token (``#``, ``@``, ``%04d``, ``$F4``), else None."""
    import fileseq

    # Only the file name holds the frame token: '#', '@' or '%' in a folder's name is part of it.
    folder, name = os.path.split(pattern)
    if not any(token in name for token in ("#", "@", "%", "$F")):
        return None
    # '@@@@' is '####'; a single '@' elsewhere is part of a name ('plate@2x.png').
    token = re.search(r"#+|@{2,}|%0?\d*d|\$F\d*", name)
    try:
        seq = fileseq.FileSequence(name, pad_style=fileseq.PAD_STYLE_HASH1, allow_subframes=False)
    except Exception as exc:
        if token:  # 'plate_%04d_v1.exr': fileseq cannot parse it ("mismatched input '1'"): say what is wrong
            raise InputError(_misplaced_token(pattern, token.group(0))) from exc
        raise InputError(f"cannot understand the sequence pattern {pattern!r}: {exc}") from exc
    if token and seq.padding() and seq.frameSet() is not None:
        # 'plate2####.exr': fileseq reads the digits right before the token as the sequence's frames
        # ('plate' frame 2; on disk plate20001.exr is frame 20001): the name would be one literal file,
        # where Nuke fills the token (plate20007.exr).
        raise InputError(_digits_before_token(pattern, token.group(0)))
    if not seq.padding() or seq.frameSet() is not None:  # 'x2@.exr': a single '@' stays part of a name
        if token:  # 'plate_####_v1.exr': fileseq finds no token, the name would be literal
            raise InputError(_misplaced_token(pattern, token.group(0)))
        return None
    if not re.fullmatch(r"[#@]+|%0?\d*d|\$F\d*", seq.padding()):
        # 'm.####.####.exr': fileseq reads the second token as a subframe (frame 7 is m.0007.0000.exr),
        # Nuke's Read and Write fill both with the frame (m.0007.0007.exr): one of the two would be wrong.
        raise InputError(f"{pattern}: its file name holds more than one frame token ({seq.padding()!r}); Nuke fills "
                         "each with the frame, other tools read the second as a subframe: name the files with one "
                         "frame token (plate.####.exr)")
    if folder:
        seq.setDirname(os.path.join(folder, ""))
    return seq


def _digits_before_token(pattern: str, token: str) -> str:
    """The message for digits right before the frame token ``token`` of ``pattern``, which fileseq
    reads as frames: ``plate2####.exr`` is 'plate' frame 2, ``plate-v2-####.exr`` cannot be read."""
    before, _, after = os.path.basename(pattern).partition(token)
    what = (f"{pattern}: the digits right before the frame token {token!r} are read as frame numbers (as in "
            "fileseq's plate.1-100#.exr), not as part of the name: ")
    span = re.search(r"\.(-?\d+)-(-?\d+)$", before)
    if span:  # 'p.1001-1100#.exr': fileseq's range in the name
        return what + f"name the sequence {before[:span.start()]}.{token}{after} and give the frames with --frames " \
                      f"{span.group(1)}-{span.group(2)}"
    # The files' own name, with a '.' or '_' before the token: 'plate-v2-####.exr' was told to be
    # named 'plate2.####.exr', another shot's name.
    stem = before[:-1] if before.endswith("-") else before
    return what + (f"name the files with a '.' or '_' before the token ({stem}.{token}{after} or "
                   f"{stem}_{token}{after}); Nuke reads them as they are, lbsmatte reads sequences as fileseq does")


def _misplaced_token(pattern: str, token: str) -> str:
    """The message for a frame token ``token`` that is not right before the extension of ``pattern``
    (or that fileseq cannot find for an '@' elsewhere in the name, or digits right before it)."""
    name = os.path.basename(pattern)
    before, _, after = name.partition(token)
    if re.search(r"\d-?$", before) and re.fullmatch(r"(\.\w+)+", after):  # 'plate-v2-####.exr': '2-' a range
        return _digits_before_token(pattern, token)
    if "@" in before + after:  # 'plate@2x.####.exr': fileseq's own token
        return (f"{pattern}: its file name holds '@' besides the frame token {token!r}; '@' is a frame token "
                f"too (plate.@@@@.exr), so the name cannot be read: name the files without it "
                f"({before.replace('@', '_')}{token}{after.replace('@', '_')})")
    return (f"{pattern}: the frame token {token!r} must come right before the extension "
            "(plate.####.exr, plate_####.exr, plate.####.beauty.exr), or the frames would all "
            "be one file of that literal name")


def has_frame_token(pattern: str | os.PathLike[str]) -> bool:
    """True when ``pattern`` names a frame sequence (``####``, ``%04d``, ``@``, ``#``, ``$F4``)."""
    return _sequence(os.fspath(pattern)) is not None


def parse_frames(frames: str) -> list[int]:
    """Frames of a range string (``1001-1100``, ``1-10x2``, ``1,3,5``, ``1-3,7``; fileseq's syntax),
    in the order given: ``5-1`` is 5, 4, 3, 2, 1 and ``10-1x2`` 10, 8, 6, 4, 2 (a TD who asks for
    the last frames first gets them first). A frame named twice (``1-3,2-5``) is rendered once.

    Raises :class:`InputError` naming the string when it cannot be parsed, or when it holds
    subframes (``1.5``, ``1-3x0.5``): frames are whole numbers, and a subframe would otherwise be
    rendered as the whole frame below it.
    """
    import fileseq

    text = str(frames).strip()
    if "#" in text or "@" in text:  # fileseq drops them (the padding of its '1-100#'): '1@0@0@1' would be 1001
        raise InputError(f"cannot understand the frame range {frames!r}: expected e.g. 1001-1100, 1-10x2 or 1,3,5")
    try:
        frame_set = fileseq.FrameSet(text)
    except fileseq.MaxSizeException as exc:  # fileseq's own bound, 10 million
        raise InputError(_too_many_frames(f"the frame range {frames!r}", None)) from exc
    except Exception as exc:
        raise InputError(
            f"cannot understand the frame range {frames!r}: expected e.g. 1001-1100, 1-10x2 or 1,3,5"
        ) from exc
    if len(frame_set) > MAX_FRAMES:
        raise InputError(_too_many_frames(f"the frame range {frames!r}", len(frame_set)))
    values = _frames_by_part(text) if "." in text else list(frame_set)  # whole frames only: fileseq is exact
    if len(values) > MAX_FRAMES:
        raise InputError(_too_many_frames(f"the frame range {frames!r}", len(values)))
    subframes = [f for f in values if f != int(f)]
    if subframes:
        shown = ", ".join(_frame_text(f) for f in subframes[:3]) + (", ..." if len(subframes) > 3 else "")
        raise InputError(f"the frame range {frames!r} holds subframes ({shown}): LBSMatte renders whole frames "
                         "(e.g. 1001-1100, 1-10x2 or 1,3,5)")
    out = [int(f) for f in values]
    if not out:
        raise InputError(f"the frame range {frames!r} holds no frames")
    return out


def _frames_by_part(text: str) -> list[Any]:
    """The frames of range string ``text`` read part by part (``1-3``, ``2.5``), in order, each
    once. fileseq's FrameSet loses, moves or makes up frames where a part with decimals overlaps
    an earlier one: ``1-3,2.5`` is 1, 2, 3 (the subframe lost), ``1.5,1-3`` is 1.5, 1, 2.5, and
    ``2-1.5,9-0.1`` renders frame 0 instead of 1."""
    import fileseq

    frames: list[Any] = []
    seen: set[Any] = set()
    for part in text.split(","):
        for frame in fileseq.FrameSet(part):
            if frame not in seen:
                seen.add(frame)
                frames.append(frame)
    return frames


def _frame_text(frame: Any) -> str:
    """A frame or subframe as the messages name it: ``1.5`` (never ``1.50`` or ``1E+1``)."""
    from decimal import Decimal

    return format(Decimal(str(frame)).normalize(), "f")


#: The most frames one run plans (each is checked on disk before any renders; 100000 take
#: about 40 s): ``--frames 1-100000000``, or a plate folder holding frames 1 and 100000000 (the
#: gap is planned frame by frame, to be reported), would otherwise take hours and all memory.
MAX_FRAMES = 100_000


def _too_many_frames(what: str, count: int | None) -> str:
    holds = f"holds {count:,} frames" if count is not None else "holds over 10 million frames"
    return (f"{what} {holds}, more than the {MAX_FRAMES:,} one run renders; render it in chunks "
            "(--frames 1001-2000, then 2001-3000, ...)")


def frame_path(pattern: str | os.PathLike[str], frame: int | None) -> Path:
    """The path of ``frame`` in ``pattern``; a pattern without a frame token is itself."""
    return frame_paths(pattern, [frame])[0]


def frame_paths(pattern: str | os.PathLike[str], frames: Iterable[int | None]) -> list[Path]:
    """:func:`frame_path` of each of ``frames``, the pattern read once: fileseq's parser takes a few
    milliseconds a pattern, which read again for every frame was seconds before a long shot's first
    frame (7 s for 1000 frames with ``--write-trimap`` here), 11 minutes at the 100 000 a run may hold."""
    seq = _sequence(os.fspath(pattern))
    return [Path(pattern) if seq is None or frame is None else Path(seq.frame(frame)) for frame in frames]


def find_frames(pattern: str | os.PathLike[str]) -> list[int]:
    """Frames first..last of the sequence found on disk for ``pattern`` (gaps included, so a
    missing frame is reported rather than skipped): the files of its folder named as
    :func:`frame_path` names their frame, so one with other padding (``plate.1.exr`` for
    ``####``) is not a frame. :class:`InputError` when none exists."""
    p = os.fspath(pattern)
    frames = frames_on_disk(p)
    first, last = frames[0], frames[-1]
    if last - first + 1 > MAX_FRAMES:
        raise InputError(_too_many_frames(f"the sequence {p} on disk (frames {first} to {last}, gaps included)",
                                          last - first + 1))
    return list(range(first, last + 1))


def frames_on_disk(pattern: str | os.PathLike[str]) -> list[int]:
    """The frames of sequence ``pattern`` that have a file on disk, in order, gaps left out (the
    files :func:`find_frames` finds). :class:`InputError` when none exists, saying so for files
    of other padding (``plate.1.exr`` for ``####``)."""
    p = os.fspath(pattern)
    seq = _sequence(p)
    if seq is None:
        raise InputError(f"{p} is not a sequence pattern (no ####, %04d or @)")
    # The folder is listed, not globbed (fileseq's findSequenceOnDisk): there '[' or '*' in a
    # folder's or a file's name is glob syntax ('plates [v2]/' found nothing, 'a*b/' also read
    # 'axb/'), and '#' or '@' in a folder's name a frame token.
    # A file system that ignores case (macOS's, Windows', their shares) lists A001C003.0001.DPX,
    # which is the pattern's a001c003.0001.dpx there, and macOS lists café.0001.exr with its 'é'
    # decomposed, the pattern's composed one there: a listed name in another case or Unicode form
    # is the pattern's where the file system opens it by the pattern's (:func:`_named_as_pattern`).
    folder = os.path.dirname(p) or os.curdir
    numbered = re.compile(re.escape(_composed(seq.basename())) + r"(-?\d+)" + re.escape(_composed(seq.extension())),
                          re.IGNORECASE)
    try:
        names = os.listdir(folder)
    except OSError:
        names = []
    cased = [(match, name) for listed in sorted(names) if (match := numbered.fullmatch(_composed(listed)))
             and (name := _named_as_pattern(seq, folder, listed, match))]
    matches = [match for match, _ in cased]
    frames = sorted({int(match.group(1)) for match, name in cased
                     if os.path.basename(seq.frame(int(match.group(1)))) == name})
    if not frames and matches:  # 'plate.1.exr' ... for plate.####.exr: say why they are not its frames
        raise InputError(f"no frames found on disk for {p}: {os.path.join(os.path.dirname(p), matches[0].group(0))} "
                         f"and the like have other padding than its frame token {seq.padding()!r} "
                         f"({seq.zfill()} digit(s)): give a token of the files' padding (one '#' per digit)")
    if not frames:
        raise InputError(f"no frames found on disk for {p}")
    return frames


def _composed(text: str) -> str:
    """``text`` in Unicode's composed form (NFC), in which names are compared whatever form a
    file system lists them in."""
    return unicodedata.normalize("NFC", text)


def _named_as_pattern(seq: Any, folder: str, listed: str, match: re.Match[str]) -> str | None:
    """Listed name ``listed`` of :func:`find_frames` (``match``: the pattern's name in it, case and
    Unicode form aside) as the pattern writes it: when it is written so, or when the file system
    opens it by that name (one that ignores case, or macOS's Unicode forms); None where the
    difference makes it another file."""
    name = seq.basename() + match.group(1) + seq.extension()
    return name if name == listed or os.path.isfile(os.path.join(folder, name)) else None


def expand_sequence(pattern: str | os.PathLike[str], frames: str | Iterable[int] | None = None) -> list[tuple[int | None, Path]]:
    """Frames and paths of a single file or a frame sequence.

    Parameters
    ----------
    pattern:
        ``plate.exr`` (a single file: ``[(None, Path("plate.exr"))]``) or a sequence pattern
        ``plate.####.exr``, ``plate.%04d.exr``, ``plate.@.exr``, ``plate.#.exr``.
    frames:
        Range string (``1001-1100``, ``1-10x2``, ``1,3,5``) or iterable of ints; None for a
        sequence: the frames on disk, first to last (a gap appears as a path that does not
        exist; :class:`InputError` when no frame is found). Ignored for a single file.

    Returns
    -------
    list of ``(frame, path)``
        Missing files are not an error here: the caller reports them frame by frame.
    """
    p = os.fspath(pattern)
    seq = _sequence(p)
    if seq is None:
        return [(None, Path(p))]
    if frames is None:
        numbers = find_frames(p)
    elif isinstance(frames, str):
        numbers = parse_frames(frames)
    else:
        numbers = [int(f) for f in frames]
    return [(f, Path(seq.frame(f))) for f in numbers]
