"""Contact sheets: labelled images side by side in one PNG, for people to look at.

A sheet is a grid of equally sized tiles, each with a label above it, drawn straight into a
numpy array (labels rasterised with the DejaVu Sans font that ships with matplotlib; no figure,
no GUI backend). A label wider than its tile is wrapped at spaces (a word wider than the tile at
any character) and the label strips of the sheet grow to hold the longest. Its size is known in
advance (:func:`sheet_size`, given the labels)::

    tiles = [("plate", plate), ("trimap", trimap), ("alpha", alpha), ("composite", comp)]
    write_contact_sheet("sheet.png", tiles, columns=2)

Tiles are ``H×W`` (grey) or ``H×W×3`` float arrays in [0, 1], display-encoded (sRGB); all of one
sheet share ``H×W``. Tiles larger than ``max_tile`` on their longer side are shrunk (area
averaging) so a sheet of 8 tiles of a 4K plate stays a reasonable file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InputError, OutputError

log = logging.getLogger(__name__)

#: Height in pixels of the label strip above each tile, for a label of one line.
LABEL_HEIGHT = 18
#: Height in pixels each further line of a wrapped label adds to the strip.
LINE_HEIGHT = 13
#: Gap in pixels between tiles and around the sheet.
GAP = 4
#: Sheet background grey (display-encoded).
PAPER = 0.12
#: Font size of the labels, in pixels.
FONT_SIZE = 11

Tile = tuple[str, np.ndarray]


def tile_size(height: int, width: int, max_tile: int | None = 360) -> tuple[int, int]:
    """``(h, w)`` a ``height×width`` image takes on a sheet: shrunk to ``max_tile`` on its longer side."""
    if max_tile is None or max(height, width) <= max_tile:
        return height, width
    scale = max_tile / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def sheet_size(height: int, width: int, n_tiles: int, columns: int = 4, max_tile: int | None = 360,
               labels: Sequence[str] = ()) -> tuple[int, int]:
    """``(H, W)`` in pixels of a sheet of ``n_tiles`` tiles of ``height×width`` images.

    ``labels``: the tiles' labels; those wider than a tile wrap and make every label strip taller
    (without them, or when all fit, the strips hold one line)."""
    th, tw = tile_size(height, width, max_tile)
    columns = max(1, min(columns, n_tiles))
    rows = -(-n_tiles // columns)
    return rows * (th + _strip_height(labels, tw)) + (rows + 1) * GAP, columns * tw + (columns + 1) * GAP


def checker_background(height: int, width: int, square: int = 16) -> np.ndarray:
    """A new background to composite over: ``H×W×3`` float32 checkerboard of two blue-greys.

    Procedural, so every composite on every sheet can be compared and nothing needs a licence.
    """
    yy, xx = np.mgrid[0:height, 0:width]
    odd = ((yy // square + xx // square) % 2).astype(bool)
    out = np.empty((height, width, 3), np.float32)
    out[~odd] = (0.30, 0.36, 0.45)
    out[odd] = (0.55, 0.62, 0.70)
    return out


def composite(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray | None = None, *,
              colour: str | None = None) -> np.ndarray:
    """``α·F + (1 − α)·B`` (``H×W×3`` float32) of straight (unpremultiplied) ``fg``; ``bg``
    (display-encoded, as the sheet's tiles) defaults to :func:`checker_background`.

    ``colour``: the encoding ``fg`` is in (``linear``, ``srgb`` or an OpenColorIO name), where the
    matte's F and B recomposite the plate; the composite is made in it, as Nuke's Merge over
    composites the layers (in linear light for a scene-linear plate), and returned display-encoded
    in [0, 1] for a sheet. ``None``: ``fg`` is display-encoded and composited as it is."""
    a = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)[..., None]
    f = np.asarray(fg, dtype=np.float32)[..., :3]
    b = checker_background(*a.shape[:2]) if bg is None else np.asarray(bg, dtype=np.float32)[..., :3]
    if colour is None:
        return (a * f + (1.0 - a) * b).astype(np.float32)
    from core.colour import from_display, to_display

    mixed = a * f + (1.0 - a) * from_display(b, colour)
    return np.clip(np.nan_to_num(to_display(mixed, colour), nan=0.0), 0.0, 1.0).astype(np.float32)


def make_contact_sheet(tiles: Sequence[Tile], *, columns: int = 4, max_tile: int | None = 360) -> np.ndarray:
    """Lay ``tiles`` (label, image) out in rows of ``columns``; returns ``H×W×3`` float32 in [0, 1].

    The size is :func:`sheet_size` of the tiles' shape. NaN/inf pixels show as black.
    """
    if not tiles:
        raise InputError("a contact sheet needs at least one tile")
    shape = np.shape(tiles[0][1])[:2]
    for label, image in tiles:
        if np.shape(image)[:2] != shape:
            raise InputError(f"tile {label!r} is {np.shape(image)[:2]}, the sheet's tiles are {shape}")
    th, tw = tile_size(shape[0], shape[1], max_tile)
    columns = max(1, min(columns, len(tiles)))
    labels = [str(label) for label, _ in tiles]
    height, width = sheet_size(shape[0], shape[1], len(tiles), columns, max_tile, labels)
    strip = _strip_height(labels, tw)
    sheet = np.full((height, width, 3), PAPER, np.float32)
    for i, (_, image) in enumerate(tiles):
        row, col = divmod(i, columns)
        y = GAP + row * (th + strip + GAP)
        x = GAP + col * (tw + GAP)
        _draw_label(sheet, labels[i], y, x, tw)
        sheet[y + strip : y + strip + th, x : x + tw] = _fit(_rgb(image), th, tw)
    return sheet


def write_contact_sheet(
    path: str | os.PathLike[str], tiles: Sequence[Tile], *, columns: int = 4, max_tile: int | None = 360
) -> Path:
    """Make a sheet (:func:`make_contact_sheet`) and write it as an 8-bit sRGB PNG, atomically."""
    sheet = make_contact_sheet(tiles, columns=columns, max_tile=max_tile)
    return write_png(path, sheet)


def write_png(path: str | os.PathLike[str], pixels: np.ndarray) -> Path:
    """Write display-encoded ``H×W`` or ``H×W×3`` floats in [0, 1] as an 8-bit PNG, atomically.

    The values are stored as they are (no colour conversion): give sRGB-encoded pixels.
    """
    from core.io import write_image

    data = np.asarray(pixels, dtype=np.float32)
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[..., 0]
    channels = ["Y"] if data.ndim == 2 else ["R", "G", "B", "A"][: data.shape[2]]
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from exc
    write_image(path, np.clip(np.nan_to_num(data, nan=0.0), 0.0, 1.0), channels, unassociated_alpha=True)
    return path


# -- internals ---------------------------------------------------------------------------------
def _rgb(image: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return np.clip(a[..., :3], 0.0, 1.0)


def _fit(image: np.ndarray, th: int, tw: int) -> np.ndarray:
    """Shrink ``image`` to ``th×tw`` by area averaging (no-op at the same size)."""
    if image.shape[:2] == (th, tw):
        return image
    from skimage.transform import resize

    return resize(image, (th, tw), order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)


@lru_cache(maxsize=1)
def _font() -> Any:
    try:
        from matplotlib import font_manager
        from matplotlib.ft2font import FT2Font

        return FT2Font(font_manager.findfont("DejaVu Sans", fallback_to_default=True))
    except Exception as exc:  # labels are a nicety: a sheet without them is still useful
        log.debug("no font for contact sheet labels: %s", exc)
        return None


def _text_bitmap(text: str) -> np.ndarray | None:
    """Anti-aliased coverage of ``text`` (``h×w`` float32 in [0, 1]), or None without a font."""
    font = _font()
    if font is None or not text:
        return None
    try:
        font.set_size(FONT_SIZE, 72)
        font.set_text(text)
        font.draw_glyphs_to_bitmap(antialiased=True)
        bitmap = np.asarray(font.get_image(), dtype=np.float32) / 255.0
    except Exception as exc:
        log.debug("cannot draw label %r: %s", text, exc)
        return None
    return bitmap


def _text_width(text: str) -> int:
    bitmap = _text_bitmap(text)
    return 0 if bitmap is None else bitmap.shape[1]


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines no wider than ``width`` px: broken at spaces, a word wider than ``width``
    at characters (one character a line at the least). One line without a font."""
    if _font() is None or not text or _text_width(text) <= width:
        return [text]
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if _text_width(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for char in word:  # what fits of a word wider than a line; the rest starts the next
            if line and _text_width(line + char) > width:
                lines.append(line)
                line = ""
            line += char
    if line:
        lines.append(line)
    return lines


def _strip_height(labels: Sequence[str], tile_width: int) -> int:
    """Height of the label strips above tiles ``tile_width`` px wide: one line, and
    :data:`LINE_HEIGHT` for each further line the longest wrapped label needs."""
    lines = max((len(_wrap(str(label), _label_width(tile_width))) for label in labels), default=1)
    return LABEL_HEIGHT + (lines - 1) * LINE_HEIGHT


def _label_width(tile_width: int) -> int:
    return max(1, tile_width - 4)  # 2 px either side


def _draw_label(sheet: np.ndarray, text: str, y: int, x: int, width: int) -> None:
    for i, line in enumerate(_wrap(text, _label_width(width))):
        bitmap = _text_bitmap(line)
        if bitmap is None or bitmap.size == 0:
            continue
        h = min(bitmap.shape[0], LABEL_HEIGHT - 2)
        w = min(bitmap.shape[1], _label_width(width))
        top = y + max(1, (LABEL_HEIGHT - h) // 2) + i * LINE_HEIGHT
        cover = bitmap[:h, :w, None]
        region = sheet[top : top + h, x + 2 : x + 2 + w]
        region[:] = region * (1.0 - cover) + 0.92 * cover
