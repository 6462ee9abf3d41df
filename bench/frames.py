"""Synthetic but realistic benchmark frames: a real matted object over a real photo, any size.

An alphamatting.com photo and its measured alpha (``<data>/image/GTxx.png``,
``<data>/alpha/GTxx.png``, read from the shared data folder, never copied) are scaled so that
the photo's height is ``scale`` times the frame's, placed bottom-centre (the objects stand on the
photo's lower edge), and composited over a background photo scaled to cover the frame::

    plate = alpha * photo + (1 - alpha) * background      (sRGB-encoded, H×W×3 float32 in [0, 1])

The trimap is a band around the object's soft edge: every pixel within ``r`` pixels of a pixel
whose alpha is neither 0 nor 1 (or of a hard FG/BG edge) is unknown, with ``r`` chosen so that
the unknown band holds the requested fraction of the frame's pixels (never less than the soft
pixels themselves). Outside the band, alpha >= 0.5 is FG and the rest BG.

Without the shared data (``--data`` missing) a procedural fuzzy blob over a procedural
background stands in, with the same trimap rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The shared copy of the alphamatting.com training set (SOURCES.md); read, never copied.
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: A fuzzy plush toy: a hairy outline with a moderate soft region (5 % of its photo).
DEFAULT_OBJECT = "GT24"
DEFAULT_BACKGROUND = "cbsd68_101085.jpg"


@dataclass
class Frame:
    """One benchmark frame.

    Attributes
    ----------
    plate:
        ``H×W×3`` float32 in [0, 1], sRGB-encoded.
    trimap:
        ``H×W`` float32 holding exactly 0 (BG), 0.5 (unknown), 1 (FG).
    alpha:
        ``H×W`` float32, the scaled ground-truth alpha (for reference; not timed).
    source:
        Where the pixels came from, for the benchmark's JSON.
    """

    plate: np.ndarray
    trimap: np.ndarray
    alpha: np.ndarray
    source: dict[str, object]

    @property
    def unknown_fraction(self) -> float:
        return float((self.trimap == 0.5).mean())


def _read(path: Path) -> np.ndarray:
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    pixels = buf.get_pixels(oiio.FLOAT)
    if pixels is None or buf.has_error:
        raise OSError(f"cannot read {path}: {buf.geterror()}")
    return np.asarray(pixels, dtype=np.float32)


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of ``H×W×C`` float32 (torch, so it is quick at 4K)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    t = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return np.ascontiguousarray(t[0].permute(1, 2, 0).numpy())


def _procedural(height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photo, alpha and background: a blob with a noisy, fuzzy rim over smooth colour noise."""
    rng = np.random.default_rng(seed)
    h, w = 256, 256
    yy, xx = np.mgrid[0:h, 0:w] / h
    angle = np.arctan2(yy - 0.6, xx - 0.5)
    radius = np.hypot(yy - 0.6, xx - 0.5)
    wobble = sum(rng.normal(0, 0.02) * np.cos(k * angle + rng.uniform(0, 6.3)) for k in range(2, 40))
    edge = 0.35 + wobble + 0.01 * rng.random((h, w))  # per-pixel jitter: hair-like fuzz
    alpha = np.clip((edge - radius) / 0.01 + 0.5, 0, 1).astype(np.float32)
    photo = np.stack([0.7 + 0.2 * xx, 0.5 + 0.1 * yy, 0.3 + 0.2 * rng.random((h, w))], 2).astype(np.float32)
    bg = rng.random((8, 8, 3)).astype(np.float32)
    return photo, alpha[..., None], bg


def build_frame(
    width: int,
    height: int,
    unknown: float = 0.10,
    *,
    data: Path | None = DEFAULT_DATA,
    obj: str = DEFAULT_OBJECT,
    background: str = DEFAULT_BACKGROUND,
    scale: float = 1.0,
    seed: int = 0,
) -> Frame:
    """Build a ``width×height`` frame whose trimap's unknown band is ``unknown`` of the pixels.

    Parameters
    ----------
    width, height:
        Frame size in pixels.
    unknown:
        Wanted fraction of unknown pixels (e.g. 0.10); the band is widened around the soft edge
        until it holds that many (it cannot be thinner than the soft region itself).
    data:
        Folder holding ``alphamatting/{image,alpha}/`` and ``backgrounds/``; ``None`` (or a
        folder without them) gives the procedural stand-in.
    obj:
        alphamatting.com image name (``GT24``).
    background:
        File in ``<data>/backgrounds/``.
    scale:
        Height of the object's photo relative to the frame's.
    seed:
        Seed of the procedural stand-in.
    """
    from scipy import ndimage

    root = Path(data) if data is not None else None
    paths = (
        [root / "alphamatting" / "image" / f"{obj}.png", root / "alphamatting" / "alpha" / f"{obj}.png",
         root / "backgrounds" / background]
        if root is not None else []
    )
    source: dict[str, object]
    if paths and all(p.is_file() for p in paths):
        photo, alpha, bg = _read(paths[0])[..., :3], _read(paths[1])[..., :1], _read(paths[2])[..., :3]
        source = {"object": str(paths[0]), "alpha": str(paths[1]), "background": str(paths[2])}
    else:
        photo, alpha, bg = _procedural(256, 256, seed)
        source = {"object": "procedural", "background": "procedural", "seed": seed}
    source["scale"] = scale

    # Object photo: `scale` of the frame's height, bottom-centre; cropped where it overflows.
    oh = max(1, round(height * scale))
    ow = max(1, round(photo.shape[1] * oh / photo.shape[0]))
    layer = _resize(np.concatenate([photo, alpha], 2), oh, ow)
    bg_scale = max(height / bg.shape[0], width / bg.shape[1])
    bh, bw = round(bg.shape[0] * bg_scale), round(bg.shape[1] * bg_scale)
    bgf = _resize(bg, max(bh, height), max(bw, width))
    by, bx = (bgf.shape[0] - height) // 2, (bgf.shape[1] - width) // 2
    plate = np.ascontiguousarray(bgf[by : by + height, bx : bx + width])
    a_full = np.zeros((height, width), np.float32)
    y0, x0 = height - oh, (width - ow) // 2
    fy0, fx0 = max(0, y0), max(0, x0)
    ly0, lx0 = fy0 - y0, fx0 - x0
    hh, ww = min(height - fy0, oh - ly0), min(width - fx0, ow - lx0)
    piece = layer[ly0 : ly0 + hh, lx0 : lx0 + ww]
    a = np.clip(piece[..., 3], 0, 1)
    a_full[fy0 : fy0 + hh, fx0 : fx0 + ww] = a
    region = plate[fy0 : fy0 + hh, fx0 : fx0 + ww]
    region[:] = a[..., None] * np.clip(piece[..., :3], 0, 1) + (1 - a[..., None]) * region
    plate = np.clip(plate, 0, 1).astype(np.float32)

    # Trimap: a band of radius r around the soft edge, r set by the wanted unknown fraction.
    # 8-bit alpha has a little measurement noise: below 2 % / above 98 % counts as hard.
    soft = (a_full > 0.02) & (a_full < 0.98)
    hard_fg = a_full >= 0.5
    edge = soft | (hard_fg ^ ndimage.binary_erosion(hard_fg, border_value=1))
    distance = ndimage.distance_transform_edt(~edge)
    wanted = int(round(unknown * distance.size))
    if wanted <= int(edge.sum()):
        band = edge
    else:
        r = float(np.partition(distance.ravel(), wanted - 1)[wanted - 1])
        band = distance <= r
        # Distances come in discrete steps: the step below may land closer to the wanted count.
        below = distance < r
        if abs(int(below.sum()) - wanted) < abs(int(band.sum()) - wanted):
            band = below | edge
    trimap = np.where(band, 0.5, np.where(hard_fg, 1.0, 0.0)).astype(np.float32)
    return Frame(plate, trimap, a_full, source)
