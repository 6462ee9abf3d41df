"""Training data composited on the fly (patent para. 0051-0052, SPEC §7).

Two sources of batches with the same keys:

- :class:`CompositeSampler`: real foregrounds (alphamatting.com objects, their colours estimated
  from the photo and its measured alpha) and procedural ones (:mod:`core.training.procedural`)
  composited over background photographs, with the patent's randomisations.
- :class:`ShowDataset`: a show's own plates and mattes for fine-tuning (para. 0056).

A batch is a ``dict[str, torch.Tensor]``, all float32, display-encoded (sRGB) in [0, 1]:

=========  ============  ===================================================================
key        shape         meaning
=========  ============  ===================================================================
image      N×3×H×W       the composite I (for a show, the plate)
trimap     N×1×H×W       0 = BG, 0.5 = unknown, 1 = FG
alpha      N×1×H×W       ground-truth alpha
fg         N×3×H×W       ground-truth foreground colour F (defined everywhere)
bg         N×3×H×W       ground-truth background colour B
unknown    N×1×H×W       1 where the trimap is unknown (core.trimap.split_trimap), else 0 (the region U of the losses)
=========  ============  ===================================================================

Colour: compositing happens on the display-encoded (sRGB) values, ``I = αF + (1 − α)B``, as in
Deep Image Matting, not in linear light. The networks see display-encoded colour (SPEC §2) and
the losses (eq. 5, 7 and the compositional term of eq. 10) assume the compositing equation holds
on exactly the values they are given; the real foreground colours are likewise estimated by
pymatting under that equation on the 8-bit sRGB photos. Compositing in linear light and encoding
afterwards would make every compositional loss disagree with its own ground truth.
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import tempfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from core.errors import InputError, TrainingError, TrimapError
from core.training.procedural import generate_foreground, smooth_noise
from core.trimap import ALPHA_NOISE, alpha_edge_seed, split_trimap
from core.trimap import trimap_from_alpha as _trimap_from_alpha

__all__ = [
    "VALIDATION_OBJECTS",
    "CompositeSampler",
    "adjust_colours",
    "ShowDataset",
    "background_photos",
    "clean_measured_alpha",
    "default_cache_dir",
    "default_data_root",
    "estimate_layers",
    "jitter_colours",
    "object_names",
    "rendered_foregrounds",
    "trimap_from_alpha",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The environment variable that moves :data:`CACHE_DIR` (a read-only install; the test suite
#: points it at a temporary folder, so that a test run writes nothing into the checkout).
CACHE_ENV = "LBSMATTE_COLOUR_CACHE"


def default_cache_dir(root: Path = REPO_ROOT) -> Path:
    """Where estimated colours are cached when ``$LBSMATTE_COLOUR_CACHE`` is not set.

    A checkout's (``root`` holds ``setup.cfg``): ``.cache/fg`` beside the code (git-ignored). An
    installed package's ``root`` is ``site-packages``, which no run may write into (a top-level
    ``.cache`` there belongs to no distribution and ``pip uninstall`` leaves it, hundreds of MB of
    a show's plates): there the user's cache, ``$XDG_CACHE_HOME/lbsmatte/fg`` (``~/.cache``).
    """
    if (root / "setup.cfg").is_file():
        return root / ".cache" / "fg"
    user_cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(user_cache) / "lbsmatte" / "fg"


#: Derived data (estimated foreground colours): ``$LBSMATTE_COLOUR_CACHE``, else
#: :func:`default_cache_dir`. Read once, when this module is imported.
CACHE_DIR = Path(os.environ.get(CACHE_ENV) or default_cache_dir())

# alphamatting.com objects held out of training. The suggested GT04, GT13, GT24, GT27 (trolls'
# hair, a plant, a plush toy, woollen strands) hold no translucent and no solid object. Instead:
#   GT04 - troll dolls: long fine hair, the hardest hair case of the set;
#   GT16 - koala with a flag: the only translucent object (the thin flag, alpha ~0.6-0.95), plus fur;
#   GT19 - pumpkin: a solid object with a hard, smooth edge (checks we do not blur sharp edges);
#   GT25 - wire-mesh pencil cup: a net with holes and thin structures.
# Training keeps hair (GT03, GT09, GT27 strands), fur (most toys) and plants (GT01, GT13, GT21);
# translucency and nets are also drawn procedurally in quantity.
VALIDATION_OBJECTS = ("GT04", "GT16", "GT19", "GT25")

#: Fraction of background photos held out for validation, chosen by a hash of the file name so
#: the split does not move when photos are added.
VALIDATION_BACKGROUND_FRACTION = 0.1

#: Alpha below which a render's colour (premultiplied, divided by alpha) is too noisy to trust:
#: there the foreground colour is continued from the covered pixels instead.
RENDER_COVERAGE = 0.02


def default_data_root() -> Path:
    """``$LBSMATTE_DATA``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("LBSMATTE_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


# ----------------------------------------------------------------------------------------------
# small array helpers


def _read_rgb8(path: Path) -> np.ndarray:
    """An 8-bit photo as ``H×W×3`` uint8 (PIL: fast for the PNG/JPEG files of shared/data)."""
    return _read_pil(path, "RGB")


def _read_grey8(path: Path) -> np.ndarray:
    return _read_pil(path, "L")


def _read_pil(path: Path, mode: str) -> np.ndarray:
    """``path`` read by PIL in ``mode``; a file it cannot read is an :class:`InputError` naming it.
    PIL's own error for a truncated or damaged photo ("image file is truncated (64 bytes not
    processed)") named no file: a bad background among hundreds, met by a training run hours in,
    stopped it without saying which one to replace."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert(mode))
    except (OSError, ValueError, SyntaxError) as exc:  # SyntaxError: PIL's for some broken PNG chunks
        if isinstance(exc, FileNotFoundError):
            raise InputError(f"{path} does not exist (was it moved or deleted while the run went on?)") from None
        reason = str(exc).replace(f"'{path}'", "").replace(str(path), "").strip(" :") or type(exc).__name__
        raise InputError(f"{path} cannot be read as an image ({reason}): replace or remove it") from None


def _file_key(*paths: Path, salt: str = "") -> str:
    """Cache key of the files' contents (and of ``salt``: how they were read, when that matters)."""
    h = hashlib.sha1()
    for p in paths:
        h.update(Path(p).read_bytes())
    if salt:
        h.update(b"\0" + salt.encode("utf-8"))
    return h.hexdigest()[:20]


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    from core.io import replace_file, set_default_mode

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        # mkstemp makes it 0600: in a cache shared by a studio's users (the install's), the next
        # user could not read it, and the fine-tune stopped on "Permission denied".
        set_default_mode(tmp)
        try:
            replace_file(tmp, path)
        except PermissionError:
            # Windows, where another process (a --workers worker) that wrote the same entry keeps
            # it open reading it: what it holds is what this one would have put there.
            if os.name != "nt" or not path.is_file():
                raise
            Path(tmp).unlink(missing_ok=True)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def estimate_layers(
    image: np.ndarray, alpha: np.ndarray, key: str | None = None, cache_dir: Path | None = CACHE_DIR
) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background colours of a photo with a known alpha, cached on disk.

    Uses pymatting's multilevel foreground estimation (``estimate_foreground_ml``,
    ``return_background=True``), which solves ``I = αF + (1 − α)B`` for smooth F and B.

    Args:
        image: ``H×W×3`` float in [0, 1], display-encoded.
        alpha: ``H×W`` float in [0, 1].
        key: cache key (e.g. a hash of the source files); ``None`` disables the cache.
        cache_dir: folder of ``<key>_fg.npy`` / ``<key>_bg.npy``.

    Returns:
        ``(fg, bg)``, ``H×W×3`` float32 in [0, 1].
    """
    if key is not None and cache_dir is not None:
        fg_path, bg_path = cache_dir / f"{key}_fg.npy", cache_dir / f"{key}_bg.npy"
        if fg_path.exists() and bg_path.exists():
            try:
                return np.load(fg_path), np.load(bg_path)
            except (OSError, ValueError):  # unreadable (another user's, damaged): estimated again below
                pass
    from pymatting import estimate_foreground_ml

    fg, bg = estimate_foreground_ml(image.astype(np.float64), alpha.astype(np.float64), return_background=True)
    fg = np.clip(fg, 0.0, 1.0).astype(np.float32)
    bg = np.clip(bg, 0.0, 1.0).astype(np.float32)
    if key is not None and cache_dir is not None:
        try:
            _save_npy_atomic(fg_path, fg)
            _save_npy_atomic(bg_path, bg)
        except OSError as exc:
            # A checkout's cache lives beside the code: one a studio keeps read-only must still
            # train. Without it the colours are only estimated again next time.
            import logging

            logging.getLogger(__name__).warning(
                "cannot cache estimated colours in %s (%s): they will be estimated again next time",
                cache_dir, exc.strerror or exc)
    return fg, bg


#: Alpha within this of 0 or 1 is exactly 0 or 1 in training's composites and crops (resampling
#: leaves such dust): what the shipped networks and the cross-validation folds were trained with,
#: their real-photo crops of the alphamatting objects included.
ALPHA_DUST = 1.0 / 1024


def _snap(alpha: np.ndarray, tolerance: float = ALPHA_DUST) -> np.ndarray:
    """Alpha within ``tolerance`` of 0 or 1 becomes exactly 0 or 1 (a new array)."""
    alpha = np.clip(alpha, 0.0, 1.0)
    alpha[alpha > 1.0 - tolerance] = 1.0
    alpha[alpha < tolerance] = 0.0
    return alpha


def clean_measured_alpha(alpha: np.ndarray, margin: float = 8.0) -> np.ndarray:
    """Remove the measurement noise of an 8-bit measured matte.

    Some alphamatting.com mattes (GT27 most) carry a haze of 1-5/255 over the background and
    250-254/255 speckle inside the opaque object; left in, it would make most of the trimap
    "unknown". Values ≤ 5/255 more than ``margin`` px from any alpha ≥ 0.1 become 0, values
    ≥ 250/255 more than ``margin`` px from any alpha < 0.9 become 1; faint hair tips and soft
    edges next to real structure are kept.
    """
    alpha = np.asarray(alpha, np.float32).copy()
    far_from_object = ndimage.distance_transform_edt(alpha < 0.1) > margin
    alpha[(alpha <= 5.0 / 255) & far_from_object] = 0.0
    far_from_edge = ndimage.distance_transform_edt(alpha >= 0.9) > margin
    alpha[(alpha >= 250.0 / 255) & far_from_edge] = 1.0
    return alpha


def object_names(alphamatting: Path) -> list[str]:
    """The objects of an alphamatting.com folder: each ``image/<name>.png`` with an ``alpha/<name>.png``."""
    return sorted(p.stem for p in (alphamatting / "image").glob("*.png") if (alphamatting / "alpha" / p.name).exists())


def _unknown_seed(alpha: np.ndarray) -> np.ndarray:
    """Pixels that must be unknown: partial alpha, and both sides of hard FG/BG edges
    (:func:`core.trimap.alpha_edge_seed`, the rule ``lbsmatte evaluate --trimaps-from-alpha`` uses)."""
    return alpha_edge_seed(alpha)


def _seed_distance(alpha: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) of every pixel to the nearest unknown-seed pixel."""
    seed = _unknown_seed(alpha)
    if not seed.any():
        return np.full(alpha.shape, np.inf, np.float32)
    return ndimage.distance_transform_edt(~seed).astype(np.float32)


def _trimap_at(alpha: np.ndarray, distance: np.ndarray, radius: float | np.ndarray) -> np.ndarray:
    unknown = distance <= radius
    return np.where(unknown, 0.5, np.where(alpha >= 1.0, 1.0, 0.0)).astype(np.float32)


def _wide_trimap(rng: np.random.Generator, alpha: np.ndarray, distance: np.ndarray, max_radius: float) -> np.ndarray:
    """A trimap like a hand-drawn one: an unknown band whose width wanders along the edge.

    The radius at each pixel is smooth noise between a small floor and a peak drawn up to
    ``max_radius``, so the band is thin in places and, elsewhere, reaches deep into opaque parts
    and into the background, as a compositor's quick strokes do (alphamatting.com's Trimap2 has
    unknown pixels up to 100 px from any known one at 800 px wide).
    """
    h, w = alpha.shape
    peak = float(rng.uniform(0.4, 1.0)) * max_radius
    floor = float(rng.uniform(1.0, 6.0))
    noise = smooth_noise(rng, h, w, cells=int(rng.integers(2, 6)))
    noise = (noise - noise.min()) / max(float(noise.max() - noise.min()), 1e-6)  # the whole span, floor to peak
    return _trimap_at(alpha, distance, floor + (peak - floor) * noise)


def trimap_from_alpha(alpha: np.ndarray, radius: float) -> np.ndarray:
    """Trimap of a ground-truth alpha, the way training draws it (para. 0051, as DIM does).

    Unknown = every pixel within ``radius`` px (Euclidean) of a pixel of partial alpha or of a
    hard FG/BG edge; the FG and BG regions are thereby eroded by ``radius`` px. Alpha is first
    snapped (within 1/1024 of 0 or 1 counts as 0 or 1: training's composites are resampled
    floats, and :func:`core.trimap.trimap_from_alpha`, which ``lbsmatte evaluate`` uses, is this
    with an 8-bit matte's noise, :data:`core.trimap.ALPHA_NOISE`, as its tolerance).

    Args:
        alpha: ``H×W`` float in [0, 1].
        radius: dilation in pixels (training draws 1-19).

    Returns:
        ``H×W`` float32 with values 0, 0.5 and 1 only.
    """
    return _trimap_from_alpha(alpha, radius, tolerance=ALPHA_DUST)


def _window_index(start: int, n: int, size: int) -> np.ndarray:
    return np.clip(np.arange(start, start + n), 0, size - 1)


def _take_window(arr: np.ndarray, y0: int, x0: int, n: int, m: int, zero_outside: bool) -> np.ndarray:
    """``n×m`` window at (y0, x0); outside the array: edge values, or 0 if ``zero_outside``."""
    h, w = arr.shape[:2]
    if 0 <= y0 and y0 + n <= h and 0 <= x0 and x0 + m <= w:
        return arr[y0 : y0 + n, x0 : x0 + m]
    out = arr[_window_index(y0, n, h)][:, _window_index(x0, m, w)]
    if zero_outside:
        out = out.copy()
        rows = (np.arange(y0, y0 + n) < 0) | (np.arange(y0, y0 + n) >= h)
        cols = (np.arange(x0, x0 + m) < 0) | (np.arange(x0, x0 + m) >= w)
        out[rows] = 0
        out[:, cols] = 0
    return out


def _resize(chw: np.ndarray, size: tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    """Resize a ``C×H×W`` float32 array (antialiased when shrinking)."""
    if chw.shape[1:] == size:
        return chw
    t = torch.from_numpy(np.ascontiguousarray(chw, dtype=np.float32))[None]
    if mode == "nearest":
        out = F.interpolate(t, size=size, mode="nearest")
    else:
        out = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
    return out[0].numpy()


def _truncated_normal(rng: np.random.Generator, mu: float, sigma: float, low: float, high: float) -> float:
    while True:
        x = rng.normal(mu, sigma)
        if low <= x <= high:
            return float(x)


_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)


def adjust_colours(
    fg: np.ndarray, alpha: np.ndarray, brightness: float, contrast: float, saturation: float, hue: float
) -> np.ndarray:
    """Brightness, contrast, saturation and hue of an ``H×W×3`` foreground, as one affine map.

    In this order: multiply by ``brightness``; pivot the luminance Y (of YIQ) on its
    alpha-weighted mean by ``contrast`` (chroma scaled with it, as RGB contrast does); scale the
    chroma (I, Q) by ``saturation`` and rotate it by ``hue`` turns of the colour wheel. Clipped
    to [0, 1].
    """
    b, c = float(brightness), float(contrast)
    r, g, bl = fg[..., 0], fg[..., 1], fg[..., 2]
    luma = _RGB_TO_YIQ[0, 0] * r + _RGB_TO_YIQ[0, 1] * g + _RGB_TO_YIQ[0, 2] * bl
    mean_y = b * float((luma * alpha).sum() / max(float(alpha.sum()), 1e-6))
    angle = 2.0 * np.pi * float(hue)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    in_yiq = np.zeros((3, 3))
    in_yiq[0, 0] = b * c
    in_yiq[1:, 1:] = rotation * float(saturation) * b * c
    matrix = (_YIQ_TO_RGB.astype(np.float64) @ in_yiq @ _RGB_TO_YIQ.astype(np.float64)).astype(np.float32)
    offset = (_YIQ_TO_RGB[:, 0] * (mean_y * (1.0 - c))).astype(np.float32)
    out = np.empty(fg.shape, np.float32)
    for k in range(3):  # 9 multiply-adds: much faster than an N×3 @ 3×3 matmul
        out[..., k] = matrix[k, 0] * r + matrix[k, 1] * g + matrix[k, 2] * bl + offset[k]
    return np.clip(out, 0.0, 1.0, out=out)


def jitter_colours(
    rng: np.random.Generator, fg: np.ndarray, alpha: np.ndarray
) -> tuple[np.ndarray, dict[str, float]]:
    """Random brightness, contrast, saturation and hue of a foreground (para. 0052).

    Brightness, contrast and saturation factors are drawn from a Gaussian μ=1, σ=0.2 truncated to
    [0.5, 1.5]; the hue shift from a Gaussian μ=0, σ=0.1 truncated to [-0.2, 0.2], in turns of the
    colour wheel (0.2 = 72°); applied by :func:`adjust_colours`.

    Returns:
        The jittered ``H×W×3`` float32 in [0, 1] and the factors drawn.
    """
    b = _truncated_normal(rng, 1.0, 0.2, 0.5, 1.5)
    c = _truncated_normal(rng, 1.0, 0.2, 0.5, 1.5)
    s = _truncated_normal(rng, 1.0, 0.2, 0.5, 1.5)
    hue = _truncated_normal(rng, 0.0, 0.1, -0.2, 0.2)
    out = adjust_colours(fg, alpha, b, c, s, hue)
    return out, {"brightness": b, "contrast": c, "saturation": s, "hue": hue}


def _over(fg_a: np.ndarray, a: np.ndarray, fg_b: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Foreground A over foreground B: α = α_A + (1 − α_A) α_B, αF = α_A F_A + (1 − α_A) α_B F_B."""
    alpha = a + (1.0 - a) * b
    premult = a[..., None] * fg_a + ((1.0 - a) * b)[..., None] * fg_b
    safe = np.maximum(alpha, 1e-6)[..., None]
    fg = np.where(alpha[..., None] > 1e-6, premult / safe, fg_a)
    return np.clip(fg, 0.0, 1.0).astype(np.float32), alpha.astype(np.float32)


def _to_batch(samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Stack ``H×W×C`` / ``H×W`` arrays into ``N×C×H×W`` float32 tensors; add ``unknown``."""
    batch: dict[str, torch.Tensor] = {}
    for key in ("image", "trimap", "alpha", "fg", "bg"):
        arrays = [s[key] if s[key].ndim == 3 else s[key][..., None] for s in samples]
        stacked = np.stack(arrays).transpose(0, 3, 1, 2)
        batch[key] = torch.from_numpy(np.ascontiguousarray(stacked, dtype=np.float32))
    batch["unknown"] = split_trimap(batch["trimap"])[2].to(torch.float32)
    return batch


# ----------------------------------------------------------------------------------------------
# real foregrounds


@dataclass
class _RealObject:
    name: str
    image_path: Path
    alpha_path: Path
    fg: np.ndarray | None = None
    alpha: np.ndarray | None = None
    seeds: np.ndarray | None = None  # flat indices of unknown-seed pixels
    opaque: np.ndarray | None = None  # flat indices of opaque pixels

    def load(self, cache_dir: Path | None) -> None:
        if self.fg is not None:
            return
        image = _read_rgb8(self.image_path).astype(np.float32) / 255.0
        alpha = clean_measured_alpha(_read_grey8(self.alpha_path).astype(np.float32) / 255.0)
        key = _file_key(self.image_path, self.alpha_path) + "_clean1"  # estimated with the cleaned alpha
        fg, _ = estimate_layers(image, alpha, key=key, cache_dir=cache_dir)
        self.fg, self.alpha = fg, alpha
        self.seeds = np.flatnonzero(_unknown_seed(alpha))
        self.opaque = np.flatnonzero(alpha >= 1.0)


@dataclass
class _RenderedForeground:
    """A foreground rendered with exact alpha (``tools/render_foregrounds.py``): a scene-linear
    EXR whose colour is premultiplied by its alpha."""

    path: Path
    fg: np.ndarray | None = None
    alpha: np.ndarray | None = None
    seeds: np.ndarray | None = None  # flat indices of unknown-seed pixels

    def load(self, cache_dir: Path | None) -> None:
        if self.fg is not None:
            return
        from core.colour import premultiply, to_display
        from core.io import read_image

        image = read_image(self.path)
        if "A" not in image.channels or not all(c in image.channels for c in "RGB"):
            raise InputError(f"rendered foreground {self.path} has channels {image.channels}, not RGBA")
        pixels = image.pixels
        alpha = _snap(pixels[..., image.channels.index("A")].astype(np.float32))
        premultiplied = pixels[..., [image.channels.index(c) for c in "RGB"]]
        # The exact colour where the render has enough coverage to say it; below that, a smooth
        # continuation (pymatting's multilevel estimate, as for the photographed objects) so that
        # F is defined over the whole unknown band.
        covered = alpha > RENDER_COVERAGE
        straight = np.where(covered[..., None], premultiplied / np.maximum(alpha, RENDER_COVERAGE)[..., None], 0.0)
        exact = np.clip(to_display(straight.astype(np.float32), "linear"), 0.0, 1.0)
        fg, _ = estimate_layers(premultiply(exact, alpha), alpha, key=_file_key(self.path) + "_render1", cache_dir=cache_dir)
        self.fg = np.where(covered[..., None], exact, fg).astype(np.float32)
        self.alpha = alpha
        self.seeds = np.flatnonzero(_unknown_seed(alpha))


def rendered_foregrounds(folder: Path | str) -> list[Path]:
    """The renders of ``tools/render_foregrounds.py`` in ``folder`` (its ``*.exr``, sorted)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"rendered foregrounds: {folder} is not a folder (make one with tools/render_foregrounds.py)")
    paths = sorted(p for p in folder.glob("*.exr") if not p.name.startswith("."))
    if not paths:
        raise InputError(f"rendered foregrounds: no .exr files in {folder} (make them with tools/render_foregrounds.py)")
    return paths


#: What counts as a background photo in ``backgrounds/`` (:func:`background_photos`).
BACKGROUND_SUFFIXES = (".jpg", ".jpeg", ".png")


def background_photos(folder: Path | str) -> list[str]:
    """The background photos' file names in ``folder``, sorted: ``.jpg``, ``.jpeg`` and ``.png``
    files, hidden ones (macOS's ``._NAME`` resource forks) passed over. The one list the
    training/validation split (:func:`_background_split`) is made from, by the training sampler
    and by ``tools/make_validation_composites.py`` alike: the split depends on how many photos
    there are, so two lists that differ put a held-out composite over a training photo."""
    return sorted(p.name for p in Path(folder).iterdir()
                  if p.suffix.lower() in BACKGROUND_SUFFIXES and not p.name.startswith(".") and p.is_file())


def _background_split(names: list[str]) -> tuple[list[str], list[str]]:
    """(train, val) background file names; val is the 10 % with the smallest CRC32 of the name."""
    ranked = sorted(names, key=lambda n: (zlib.crc32(n.encode()), n))
    n_val = max(1, round(len(names) * VALIDATION_BACKGROUND_FRACTION)) if len(names) > 1 else 0
    val = set(ranked[:n_val])
    return [n for n in sorted(names) if n not in val], [n for n in sorted(names) if n in val]


class CompositeSampler:
    """Composites drawn on the fly from real and procedural foregrounds over background photos.

    Per foreground group (para. 0051-0052): pick a foreground (rendered in Blender with
    probability ``rendered_fraction``; else real with probability ``1 − procedural_fraction``,
    else procedural); with probability ``two_foregrounds`` put a
    second random foreground under it (A over B); jitter its colours when ``jitter`` (for the
    foreground network); then composite it over ``n_backgrounds`` random background photos, each
    with its own trimap dilation radius drawn from 1-19 px.

    A real foreground is rescaled so its long side is one of ``scales`` (480 or 640 px) times a
    random factor in [1/``scale_jitter``, ``scale_jitter``] (log-uniform), then a ``crop``×``crop``
    patch is cut centred on a random unknown pixel (partial alpha or hard edge), padded with
    alpha 0 where the object is smaller than the crop. Procedural foregrounds are drawn at crop
    size, coloured with a photo patch. Every crop is flipped horizontally with probability 0.5.
    A background patch is cut from a photo region at least ``crop`` pixels wide (photos smaller
    than that are resized up), at a random scale, and resized to ``crop``.

    Args:
        data_root: folder with ``alphamatting/`` and ``backgrounds/`` (``$LBSMATTE_DATA``).
        split: ``"train"`` or ``"val"``: objects and background photos of that split.
        crop: patch size in pixels (square).
        seed: seed of the random generator; batches are a function of it and of the call order.
        procedural_fraction: probability that a foreground is procedural.
        jitter: colour jitter of the foreground (the foreground network's data).
        n_backgrounds: default backgrounds per foreground in :meth:`sample`.
        two_foregrounds: probability of compositing two foregrounds over each other.
        objects: restrict the real objects to these names (they must belong to ``split``).
        held_out: the objects of the ``"val"`` split, never drawn for ``"train"`` (default
            :data:`VALIDATION_OBJECTS`; a cross-validation fold passes its own).
        scales, scale_jitter: the rescaling of real foregrounds, see above.
        max_radius: largest trimap dilation radius (px); the smallest is 1.
        wide_trimaps: probability that a composite's trimap is a wide, uneven band like a
            hand-drawn one (radius wandering up to ``wide_radius`` px) rather than a dilation.
        wide_radius: the widest such band's radius (px).
        rendered: EXRs of :func:`rendered_foregrounds` (Blender renders with exact alpha).
        rendered_fraction: probability that a foreground is one of ``rendered``, cut and
            rescaled like a real one (before the real/procedural draw, which the rest follow).
        cache_dir: where the estimated foreground colours are cached.

    Example:
        >>> sampler = CompositeSampler(split="train", crop=128, seed=0)  # doctest: +SKIP
        >>> batch = sampler.sample(8, n_backgrounds=4)  # doctest: +SKIP
        >>> batch["image"].shape  # doctest: +SKIP
        torch.Size([8, 3, 128, 128])
    """

    def __init__(
        self,
        data_root: Path | str | None = None,
        split: str = "train",
        crop: int = 320,
        seed: int = 0,
        procedural_fraction: float = 0.5,
        jitter: bool = False,
        n_backgrounds: int = 8,
        two_foregrounds: float = 0.5,
        objects: tuple[str, ...] | list[str] | None = None,
        scales: tuple[int, ...] = (480, 640),
        scale_jitter: float = 1.25,
        max_radius: int = 19,
        cache_dir: Path | None = CACHE_DIR,
        held_out: Sequence[str] = VALIDATION_OBJECTS,
        wide_trimaps: float = 0.0,
        wide_radius: int = 48,
        rendered: Sequence[Path] = (),
        rendered_fraction: float = 0.0,
    ) -> None:
        if split not in ("train", "val"):
            raise InputError(f"split must be 'train' or 'val', not {split!r}")
        if not 0.0 <= procedural_fraction <= 1.0:
            raise InputError(f"procedural_fraction must be in [0, 1], not {procedural_fraction}")
        if not 0.0 <= wide_trimaps <= 1.0:
            raise InputError(f"wide_trimaps must be in [0, 1], not {wide_trimaps}")
        if not 0.0 <= rendered_fraction <= 1.0:
            raise InputError(f"rendered_fraction must be in [0, 1], not {rendered_fraction}")
        if rendered_fraction > 0 and not rendered:
            raise InputError("rendered_fraction > 0 needs rendered foregrounds (none given)")
        self.rendered = [_RenderedForeground(Path(p)) for p in rendered]
        self.rendered_fraction = float(rendered_fraction) if self.rendered else 0.0
        self.wide_trimaps = float(wide_trimaps)
        self.wide_radius = int(wide_radius)
        self.data_root = Path(data_root) if data_root is not None else default_data_root()
        self.split = split
        self.crop = int(crop)
        self.seed = int(seed)
        self.procedural_fraction = float(procedural_fraction)
        self.jitter = bool(jitter)
        self.n_backgrounds = int(n_backgrounds)
        self.two_foregrounds = float(two_foregrounds)
        self.scales = tuple(int(s) for s in scales)
        self.scale_jitter = float(scale_jitter)
        self.max_radius = int(max_radius)
        self.cache_dir = cache_dir
        self.held_out = tuple(str(o) for o in held_out)
        self.rng = np.random.default_rng(self.seed)

        am = self.data_root / "alphamatting"
        bg_dir = self.data_root / "backgrounds"
        if not bg_dir.is_dir():
            raise InputError(f"background photos not found: {bg_dir} is not a folder (set LBSMATTE_DATA)")
        names = object_names(am)
        unknown = [o for o in self.held_out if o not in names]
        if unknown:
            raise InputError(f"held-out objects {unknown} are not objects of {am} (those are {names})")
        in_split = [n for n in names if (n in self.held_out) == (split == "val")]
        if objects is not None:
            wrong = [o for o in objects if o not in in_split]
            if wrong:
                raise InputError(f"objects {wrong} are not {split} objects of {am} (those are {in_split})")
            in_split = [n for n in in_split if n in objects]
        self.objects = [_RealObject(n, am / "image" / f"{n}.png", am / "alpha" / f"{n}.png") for n in in_split]
        if not self.objects and self.procedural_fraction < 1.0:
            raise InputError(f"no {split} foreground objects in {am}; use procedural_fraction=1")
        train_bg, val_bg = _background_split(background_photos(bg_dir))
        self.backgrounds = [bg_dir / n for n in (train_bg if split == "train" else val_bg)]
        if not self.backgrounds:
            raise InputError(f"no {split} background photos in {bg_dir}")
        self._photo_cache: OrderedDict[Path, np.ndarray] = OrderedDict()

    # -- bookkeeping ----------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable summary of the data (for a run's settings)."""
        return {
            "split": self.split,
            "objects": [o.name for o in self.objects],
            "validation_objects": list(self.held_out),
            "n_background_photos": len(self.backgrounds),
            "crop": self.crop,
            "seed": self.seed,
            "procedural_fraction": self.procedural_fraction,
            "two_foregrounds": self.two_foregrounds,
            "jitter": self.jitter,
            "scales": list(self.scales),
            "scale_jitter": self.scale_jitter,
            "trimap_radius": [1, self.max_radius],
            **({"wide_trimaps": self.wide_trimaps, "wide_radius": self.wide_radius} if self.wide_trimaps else {}),
            **({"rendered_fraction": self.rendered_fraction, "n_rendered": len(self.rendered),
                "rendered_folder": str(self.rendered[0].path.parent)} if self.rendered_fraction else {}),
            "composite": "display-encoded sRGB, I = aF + (1-a)B",
        }

    def state_dict(self) -> dict[str, Any]:
        """The random generator's state, to resume a run with the same batches."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

    # -- pieces ---------------------------------------------------------------------------------

    def _photo(self, path: Path) -> np.ndarray:
        cached = self._photo_cache.get(path)
        if cached is not None:
            self._photo_cache.move_to_end(path)
            return cached
        photo = _read_rgb8(path)
        self._photo_cache[path] = photo
        if len(self._photo_cache) > 24:
            self._photo_cache.popitem(last=False)
        return photo

    def _photo_patch(self, path: Path, size: int) -> np.ndarray:
        """A ``size×size`` float32 patch of a photo at a random scale (never below the photo's)."""
        rng = self.rng
        photo = self._photo(path)
        h, w = photo.shape[:2]
        short = min(h, w)
        low = min(size, short)
        n = int(round(math.exp(rng.uniform(math.log(low), math.log(short))))) if short > low else short
        y0 = int(rng.integers(0, h - n + 1))
        x0 = int(rng.integers(0, w - n + 1))
        patch = photo[y0 : y0 + n, x0 : x0 + n].astype(np.float32).transpose(2, 0, 1) / 255.0
        patch = _resize(patch, (size, size))
        if rng.random() < 0.5:
            patch = patch[:, :, ::-1]
        return np.ascontiguousarray(np.clip(patch, 0.0, 1.0).transpose(1, 2, 0))

    def _background(self) -> np.ndarray:
        path = self.backgrounds[int(self.rng.integers(len(self.backgrounds)))]
        return self._photo_patch(path, self.crop)

    def _cut(self, fg: np.ndarray, alpha: np.ndarray, seeds: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """An ``n×n`` window of a foreground's layers centred on one of its ``seeds`` (clamped to
        the image; alpha 0 outside it), resized to the crop and flipped half the time."""
        rng = self.rng
        h, w = alpha.shape
        pool = seeds if len(seeds) else np.arange(h * w)
        cy, cx = divmod(int(pool[int(rng.integers(len(pool)))]), w)
        y0 = min(max(cy - n // 2, 0), h - n) if h >= n else (h - n) // 2
        x0 = min(max(cx - n // 2, 0), w - n) if w >= n else (w - n) // 2
        fg = _take_window(fg, y0, x0, n, n, zero_outside=False)
        alpha = _take_window(alpha, y0, x0, n, n, zero_outside=True)
        layers = _resize(np.concatenate([fg.transpose(2, 0, 1), alpha[None]], axis=0), (self.crop, self.crop))
        if rng.random() < 0.5:
            layers = layers[:, :, ::-1]
        fg = np.clip(layers[:3].transpose(1, 2, 0), 0.0, 1.0)
        return np.ascontiguousarray(fg, dtype=np.float32), _snap(np.ascontiguousarray(layers[3]))

    def _real_foreground(self) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        obj = self.objects[int(rng.integers(len(self.objects)))]
        obj.load(self.cache_dir)
        assert obj.fg is not None and obj.alpha is not None and obj.seeds is not None
        long_side = float(self.scales[int(rng.integers(len(self.scales)))])
        long_side *= math.exp(rng.uniform(-math.log(self.scale_jitter), math.log(self.scale_jitter)))
        scale = long_side / max(obj.alpha.shape)
        return self._cut(obj.fg, obj.alpha, obj.seeds, max(1, int(round(self.crop / scale))))  # n: the photo's pixels

    def _texture(self) -> np.ndarray:
        """Colour texture of a procedural foreground: a background photo or a real object's colours."""
        rng = self.rng
        if self.objects and rng.random() < 0.3:
            obj = self.objects[int(rng.integers(len(self.objects)))]
            obj.load(self.cache_dir)
            assert obj.fg is not None and obj.opaque is not None
            h, w = obj.alpha.shape if obj.alpha is not None else obj.fg.shape[:2]
            n = min(h, w, int(round(self.crop * math.exp(rng.uniform(-0.5, 0.5)))))
            pool = obj.opaque if len(obj.opaque) else np.arange(h * w)
            cy, cx = divmod(int(pool[int(rng.integers(len(pool)))]), w)
            y0, x0 = min(max(cy - n // 2, 0), h - n), min(max(cx - n // 2, 0), w - n)
            patch = obj.fg[y0 : y0 + n, x0 : x0 + n].transpose(2, 0, 1)
            return np.ascontiguousarray(_resize(patch, (self.crop, self.crop)).transpose(1, 2, 0))
        return self._background()

    def _procedural_foreground(self) -> tuple[np.ndarray, np.ndarray]:
        fg, alpha = generate_foreground(self.rng, self.crop, texture=self._texture())
        if self.rng.random() < 0.5:
            fg, alpha = fg[:, ::-1], alpha[:, ::-1]
        return np.ascontiguousarray(fg), np.ascontiguousarray(alpha)

    def _rendered_foreground(self) -> tuple[np.ndarray, np.ndarray]:
        """A crop of a render around one of its unknown pixels, at 0.6-1.6× the render's scale."""
        item = self.rendered[int(self.rng.integers(len(self.rendered)))]
        item.load(self.cache_dir)
        assert item.fg is not None and item.alpha is not None and item.seeds is not None
        scale = math.exp(self.rng.uniform(math.log(0.6), math.log(1.6)))
        return self._cut(item.fg, item.alpha, item.seeds, max(1, int(round(self.crop / scale))))

    def _single_foreground(self) -> tuple[np.ndarray, np.ndarray]:
        # No draw at all without renders, so that a run without them sees the batches it always saw.
        if self.rendered_fraction and self.rng.random() < self.rendered_fraction:
            return self._rendered_foreground()
        if not self.objects or self.rng.random() < self.procedural_fraction:
            return self._procedural_foreground()
        return self._real_foreground()

    def foreground(self) -> tuple[np.ndarray, np.ndarray]:
        """One training foreground: ``(fg H×W×3, alpha H×W)`` float32, crop-sized, jittered if set."""
        fg, alpha = self._single_foreground()
        if self.rng.random() < self.two_foregrounds:
            fg_b, alpha_b = self._single_foreground()
            fg, alpha = _over(fg, alpha, fg_b, alpha_b)
        alpha = _snap(alpha)
        if self.jitter:
            fg, _ = jitter_colours(self.rng, fg, alpha)
        return fg, alpha

    # -- batches --------------------------------------------------------------------------------

    def sample(self, batch_size: int, n_backgrounds: int | None = None) -> dict[str, torch.Tensor]:
        """A batch of ``batch_size`` composites (keys in the module docstring).

        The batch holds ``ceil(batch_size / n_backgrounds)`` foregrounds, each composited over
        ``n_backgrounds`` different random backgrounds (the last one over fewer if it does not
        divide), each composite with its own trimap radius.
        """
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, not {batch_size}")
        per_fg = max(1, min(int(n_backgrounds or self.n_backgrounds), batch_size))
        samples: list[dict[str, np.ndarray]] = []
        while len(samples) < batch_size:
            fg, alpha = self.foreground()
            distance = _seed_distance(alpha)
            a3 = alpha[..., None]
            for _ in range(min(per_fg, batch_size - len(samples))):
                bg = self._background()
                if self.wide_trimaps and self.rng.random() < self.wide_trimaps:
                    trimap = _wide_trimap(self.rng, alpha, distance, self.wide_radius)
                else:
                    trimap = _trimap_at(alpha, distance, int(self.rng.integers(1, self.max_radius + 1)))
                image = a3 * fg + (1.0 - a3) * bg
                samples.append({
                    "image": image, "trimap": trimap,
                    "alpha": alpha, "fg": fg, "bg": bg,
                })
        return _to_batch(samples)


# ----------------------------------------------------------------------------------------------
# a show's own plates


#: Files an operating system writes into a folder of images on its own (Windows Explorer's
#: thumbnail caches, a folder's view settings): never a show's plate or matte.
SYSTEM_FILES = frozenset({"thumbs.db", "ehthumbs.db", "ehthumbs_vista.db", "desktop.ini"})


#: The folders of a show data set (SPEC §9): ``image/`` and ``alpha/`` required, the others optional.
SHOW_FOLDERS = ("image", "alpha", "trimap", "fg", "bg")


def _show_files(folder: Path) -> list[Path]:
    """The files of a show data set's ``folder`` that may be plates, mattes, trimaps or layers, in
    name order: not hidden ones (macOS's ``.DS_Store`` and ``._NAME`` resource forks, a killed
    write's temporary) nor :data:`SYSTEM_FILES`, which ``lbsmatte evaluate`` passes over too. Both
    were taken for plates: in ``image/`` and ``alpha/`` alike they paired up (``.DS_Store``,
    ``Thumbs``) and the fine-tune stopped failing to read them as images.

    :class:`InputError` naming a link whose target cannot be reached (a data set of links onto a
    show's share that is not mounted here): passed over as "not a file", its plate was left out
    without a word (its matte only warned of as having no plate) and the run trained on the rest."""
    from core.io import check_link_reachable

    files = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.name.lower() in SYSTEM_FILES:
            continue
        check_link_reachable(p)
        if p.is_file():
            files.append(p)
    return files


def show_files_sha256(folder: Path | str) -> dict[str, str]:
    """``{path relative to folder: SHA-256}`` of every file a show data set trains on or could
    (``image/``, ``alpha/``, ``trimap/`` and its variants, ``fg/``, ``bg/``): what a fine-tune's
    checkpoints are recorded as made from, so that a continuation on a data set changed since
    (plates added, a matte fixed) is refused instead of shipping the earlier networks as trained
    on the new files. ``{}`` for a folder that is not there (refused later, by name)."""
    from core.weights import file_sha256

    root = Path(folder)
    folders = [root / name for name in SHOW_FOLDERS]
    if (root / "trimap").is_dir():
        folders += [p for p in sorted((root / "trimap").iterdir()) if p.is_dir() and not p.name.startswith(".")]
    found = {}
    for sub in folders:
        for path in _show_files(sub) if sub.is_dir() else []:
            try:
                found[path.relative_to(root).as_posix()] = file_sha256(path)
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return found


def _find_file(folder: Path, stem: str) -> Path | None:
    """The file of ``folder`` named ``stem`` (any extension), or None; :class:`InputError` when
    several are (``sh010.exr`` and a ``sh010.jpg`` proxy): which one is the plate's cannot be
    told, and the first in name order was taken silently (a ``sh010.json`` sidecar failed to
    read as an image) while the plate was drawn once for each."""
    if not folder.is_dir():
        return None
    found = [p for p in _show_files(folder) if p.stem == stem]
    if len(found) > 1:
        raise InputError(f"{folder} holds {len(found)} files named {stem}: {', '.join(p.name for p in found)}; "
                         "keep only the one to train on there")
    return found[0] if found else None


def _listed(names: list[str]) -> str:
    """``names`` in a message: the first four and how many more when there are over five."""
    return ", ".join(names[:4]) + f" and {len(names) - 4} more" if len(names) > 5 else ", ".join(names)


def _subfolders(folder: Path) -> list[str]:
    """The names of ``folder``'s folders that are not hidden, in name order."""
    return [p.name for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")]


def _layout_error(folder: Path) -> str:
    """Why ``folder`` is no show data set, in words: which of ``image/`` and ``alpha/`` it lacks
    (a link to one that cannot be reached named as such), what it holds instead, and the folder
    above where ``--data`` named one of the data set's own folders (``--data show/image``). It said
    only "must hold image/ and alpha/ folders", whatever was there."""
    if not folder.is_dir():
        return f"{folder} is not a folder"
    missing = []
    for name in ("image", "alpha"):
        sub = folder / name
        if sub.is_symlink() and not sub.exists():
            missing.append(f"{name}/ (a link to {os.readlink(sub)}, which cannot be reached)")
        elif not sub.is_dir():
            missing.append(f"{name}/" if not sub.exists() else f"{name}/ ({sub} is a file)")
    held = [f"{n}/" for n in _subfolders(folder)]
    said = (f"{folder} has no {' and no '.join(missing)} folder: a fine-tune's data set is a folder holding image/ "
            "(the plates) and alpha/ (their mattes, each named as its plate), optionally trimap/, fg/ and bg/ "
            f"(SPEC §9 layout); it holds " + (f"the folders {_listed(held)}" if held else "no folder"))
    if folder.name in SHOW_FOLDERS and (folder.parent / "image").is_dir() and (folder.parent / "alpha").is_dir():
        said += f": give --data {folder.parent}, the folder holding image/ and alpha/"
    return said


@dataclass
class _ShowItem:
    name: str
    image: np.ndarray
    alpha: np.ndarray
    fg: np.ndarray
    bg: np.ndarray
    trimaps: list[np.ndarray]  # the plate's own trimaps (trimap/NAME.* and trimap/<variant>/NAME.*)
    centres: np.ndarray  # flat indices a crop may be centred on (unknown pixels)

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in (self.image, self.alpha, self.fg, self.bg, self.centres, *self.trimaps))


class ShowDataset:
    """A show's plates and mattes for fine-tuning (patent para. 0056), in the SPEC §9 layout.

    ``folder/image/NAME.*`` (the plates) and ``folder/alpha/NAME.*`` (their mattes) are required;
    ``folder/trimap/NAME.*`` (or ``folder/trimap/<variant>/NAME.*``), ``folder/fg/NAME.*`` and ``folder/bg/NAME.*`` are optional. Missing
    foreground *and* background colours are estimated with pymatting's
    ``estimate_foreground_ml(..., return_background=True)`` (so the background is an estimate
    too) and cached in :data:`CACHE_DIR`. Without a trimap, trimaps are drawn from the alpha as in
    :class:`CompositeSampler` (radius 1-19 px), alpha within ``alpha_tolerance`` of 0 or 1 counting
    as known, and crops are centred on the pixels that rule leaves soft or on an edge.

    Unlike :class:`CompositeSampler`, ``image`` is the plate itself (the show's real background),
    not a new composite, so ``image`` equals ``αF + (1 − α)B`` only as well as F and B are known.
    Each sample is a ``crop``×``crop`` patch centred on an unknown pixel, at a random scale
    between the plate's own and the one at which the whole plate fits the crop, flipped
    horizontally with probability 0.5.

    Args:
        folder: the data set.
        crop: patch size in pixels.
        seed: random seed.
        colour: encoding of the files: ``auto`` (float files such as EXR scene-linear, 8/16-bit
            files sRGB, as ``lbsmatte matte --colour auto`` and Nuke's Read take them), ``srgb``,
            ``linear`` or an OCIO name; converted to the display encoding the networks see.
        cache_dir: cache of estimated colours.
        names: only these plates (default: every plate with a matte).
        given_trimaps: probability that a crop takes one of the plate's own trimaps (chosen at
            random when it has several, as ``trimap/Trimap1/`` and ``trimap/Trimap2/``) rather
            than one drawn from the alpha; plates without a trimap always draw one.
        min_scale: smallest scale a crop is taken at (default: the one at which the whole plate
            fits the crop). Mattes at a much smaller scale than the one they will be pulled at
            teach a different problem: the training objects' photos use 0.5.
        max_bytes: memory the decoded plates (with their colours, mattes and trimaps) are kept
            in, most recently used first (default 4 GiB, about 40 plates of 2048×1152); a plate beyond
            it is read again when drawn (0.5 s for such a plate with its colours cached).
        alpha_tolerance: how close to 0 or 1 a matte's alpha counts as known background or
            foreground where trimaps are drawn from it, where crops are centred and whether a
            matte is all 0 or all 1. The default, :data:`core.trimap.ALPHA_NOISE` (5.5/255, the
            rule of ``lbsmatte evaluate --trimaps-from-alpha``), reads a keyed or rotoed matte's
            haze of 1-5/255 over the background and 250-254/255 inside as known: read exactly,
            such a matte made nearly every trimap all unknown and centred the crops anywhere on
            the background. :data:`ALPHA_DUST` (1/1024) is the rule ``lbsmatte train`` cuts
            its real-photo crops of the alphamatting objects with (the shipped recipe), and that
            of fine-tunes begun before the rule was recorded. The ground-truth alpha itself is
            kept as read (within 1/1024), its haze included: the losses only look at the
            unknown band.
    """

    def __init__(
        self, folder: Path | str, crop: int = 320, seed: int = 0, colour: str = "auto",
        max_radius: int = 19, cache_dir: Path | None = CACHE_DIR, names: Sequence[str] | None = None,
        given_trimaps: float = 1.0, min_scale: float | None = None, max_bytes: int = 4 << 30,
        alpha_tolerance: float = ALPHA_NOISE,
    ) -> None:
        if not ALPHA_DUST <= alpha_tolerance < 0.5:
            raise InputError(f"alpha_tolerance must be at least {ALPHA_DUST} (1/1024) and below 0.5, "
                             f"not {alpha_tolerance}")
        self.alpha_tolerance = float(alpha_tolerance)
        if min_scale is not None and not 0.0 < min_scale <= 1.0:
            raise InputError(f"min_scale must be in (0, 1], not {min_scale}")
        self.min_scale = min_scale
        if not 0.0 <= given_trimaps <= 1.0:
            raise InputError(f"given_trimaps must be in [0, 1], not {given_trimaps}")
        self.given_trimaps = float(given_trimaps)
        self.folder = Path(folder)
        self.crop = int(crop)
        self.seed = int(seed)
        self.colour = colour
        self.max_radius = int(max_radius)
        self.cache_dir = cache_dir
        self.rng = np.random.default_rng(self.seed)
        image_dir, alpha_dir = self.folder / "image", self.folder / "alpha"
        if not image_dir.is_dir() or not alpha_dir.is_dir():
            raise InputError(_layout_error(self.folder))
        plates = list(dict.fromkeys(p.stem for p in _show_files(image_dir)))
        self.names = [n for n in plates if _find_file(alpha_dir, n)]
        self.unmatched = [n for n in plates if n not in self.names]  # plates without a matte: not trained on
        #: Folders inside ``image/`` and ``alpha/`` (``image/sh020/``, a shot's sequence in a folder of
        #: its own): their files are not read, so their frames are not trained on.
        self.skipped_folders = [f"{sub}/{n}/" for sub in (image_dir, alpha_dir) for n in _subfolders(sub)]
        #: Mattes of ``alpha/`` with no plate of their name (a plate not copied, a name mistyped).
        self.orphan_mattes = [f.name for f in _show_files(alpha_dir) if f.stem not in plates]
        if not self.names:
            def listed(folder: Path) -> str:  # what is there, so that the names that do not pair up are seen
                files = [f.name for f in _show_files(folder)]
                more = f" and {len(files) - 4} more" if len(files) > 5 else ""
                if not files:
                    # A sequence per shot in a folder of its own (image/sh010/sh010.1001.exr): "nothing".
                    folders = _subfolders(folder)
                    return f"only the folders {_listed([f'{n}/' for n in folders])}" if folders else "nothing"
                return ", ".join(files[:4] if more else files) + more

            raise InputError(f"no plate in {image_dir} has a matte of the same name in {alpha_dir} (the plates: "
                             f"{listed(image_dir)}; the mattes: {listed(alpha_dir)}): name each matte as its plate, "
                             "whatever its extension (image/sh010.exr and alpha/sh010.png)"
                             + ("; the files inside folders there are not read: put the plates and mattes directly "
                                "in image/ and alpha/, a frame a file (image/sh010.1001.exr)"
                                if _subfolders(image_dir) or _subfolders(alpha_dir) else ""))
        if names is not None:
            missing = sorted(set(names) - set(self.names))
            if missing:
                raise InputError(f"{self.folder}: no plate with a matte named {', '.join(missing)}")
            wanted = set(names)
            self.names = [n for n in self.names if n in wanted]
            if not self.names:
                raise InputError(f"{self.folder}: no plates named (an empty list of names)")
        # The plates read, most recently used last, kept up to ``max_bytes`` (a show's 2K plate with
        # its F, B and matte takes about 100 MB: every plate kept made memory grow with the data
        # set, in each worker process); one evicted is read again (its estimated colours from the
        # disk cache) when a batch draws it.
        self._items: OrderedDict[str, _ShowItem] = OrderedDict()
        self.max_bytes = int(max_bytes)
        #: Plates left out by :meth:`check`: their matte is all 0 or all 1 (name -> that value).
        self.constant: dict[str, float] = {}
        #: The encoding each plate read was taken to be in (``linear``, ``srgb``, an OCIO name):
        #: under ``--colour auto`` a folder of EXRs and PNGs holds both.
        self.encodings: dict[str, str] = {}

    def check(self) -> None:
        """Read every plate with its matte, trimaps and colours now (keeping them up to
        ``max_bytes``): a file that cannot be used is an :class:`InputError` naming it before
        training starts, not when a batch first draws it hours later. Plates whose matte is all 0
        or all 1 are left out (:attr:`constant`); :class:`InputError` when every matte is."""
        # A matte all 0 or all 1 (the object is not in the frame; an export gone
        # wrong) has no edge, so the trimaps drawn from it have no unknown pixel, and the losses,
        # taken over the unknown region, learn nothing from it: its crops would only dilute the
        # batches, and a data set of such mattes would write a "fine-tuned" bundle that is its
        # parent. Such plates are left out (said by the caller); a plate's own trimap with an
        # unknown region keeps it (its matte is then what the networks must learn there).
        constant = {}
        for name in self.names:
            item = self._item(name)
            # (A matte of one value between, all 0.5 say, is unknown everywhere: it teaches. One
            # all within the tolerance of 0, a key's haze over an empty frame, is all 0.)
            known = self._known(item.alpha)
            if float(known.min()) == float(known.max()) in (0.0, 1.0) and not any(
                    split_trimap(t)[2].any() for t in item.trimaps):
                constant[name] = float(known.flat[0])
        if constant and len(constant) == len(self.names):
            listed = ", ".join(f"{_find_file(self.folder / 'alpha', n)} (all {v:g})" for n, v in constant.items())
            raise InputError(f"every matte in {self.folder / 'alpha'} is all 0 or all 1, with no edge to learn from: "
                             f"{listed}{self.tolerance_note()}; check the mattes were written from the right "
                             "channel, or give trimap/ files marking where the networks must decide")
        self.constant = {n: v for n, v in constant.items()}
        self.names = [n for n in self.names if n not in constant]

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable summary of the data set; after :meth:`check`, ``read_as`` names the
        plates read in each encoding (``--colour auto`` recorded only as "auto": whether a show's
        EXRs had been read scene-linear, or its PNGs sRGB, the bundle could not say)."""
        read_as: dict[str, list[str]] = {}
        for name in self.names:
            if name in self.encodings:
                read_as.setdefault(self.encodings[name], []).append(name)
        return {"folder": str(self.folder), "plates": list(self.names), "crop": self.crop, "seed": self.seed,
                "colour": self.colour, "read_as": read_as, "given_trimaps": self.given_trimaps,
                "min_scale": self.min_scale, "alpha_tolerance": self.alpha_tolerance}

    def tolerance_note(self) -> str:
        """Words to follow a list of mattes read as all 0 or all 1, where :attr:`alpha_tolerance`
        made them so: a faint veil (smoke, glass at alpha 0.01) reads as 0 within 5.5/255, and
        its plate was left out with nothing saying how to keep it. Empty under :data:`ALPHA_DUST`."""
        if self.alpha_tolerance == ALPHA_DUST:
            return ""
        return (f"; alpha within {self.alpha_tolerance:.4g} of 0 or 1 counts as 0 or 1 (where fainter values are "
                f"real, a veil of smoke or glass, --alpha-tolerance {ALPHA_DUST} reads them as they are)")

    def _known(self, alpha: np.ndarray) -> np.ndarray:
        """``alpha`` (snapped within 1/1024) with what is within :attr:`alpha_tolerance` of 0 or 1
        made exactly 0 or 1: what trimaps are drawn from. ``alpha`` itself where that is the rule."""
        return alpha if self.alpha_tolerance == ALPHA_DUST else _snap(alpha, self.alpha_tolerance)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

    def _read_colour(self, path: Path) -> np.ndarray:
        return self._read_colour_as(path)[0]

    def _read_colour_as(self, path: Path) -> tuple[np.ndarray, str]:
        """The file's RGB display-encoded in [0, 1], and the encoding it was read in."""
        from core.colour import resolve_colour, to_display
        from core.io import read_image

        image = read_image(path)
        # The colour channels as lbsmatte matte finds them (a grey plate with alpha is Y, A: the
        # first three channels were two, and the first batch failed with an IndexError).
        try:
            rgb = np.ascontiguousarray(image.rgb(), dtype=np.float32)
        except InputError:
            layers = image.file_colour_layers()
            if len(layers) < 2:
                raise
            # lbsmatte matte's refusal names its --plate-layer, which a fine-tune has not.
            raise InputError(f"{path}: no R, G, B channels and colour in several layers ({', '.join(layers)}): "
                             "cannot tell which to train on; a fine-tune reads a file's R, G, B: write the layer "
                             "to train on as them (in Nuke, a Shuffle of it into rgba before the Write)") from None
        bad = rgb.size - np.count_nonzero(np.isfinite(rgb))
        if bad:  # a NaN reaches every weight through the loss: the run would end with a broken bundle
            raise InputError(f"{path}: {bad} value(s) are NaN or infinite; training needs finite plates "
                             "(fix the file or take it out of the data set)")
        colour = resolve_colour(self.colour, image.info.is_float, image.info.log_encoding)  # auto: as lbsmatte matte reads it
        if colour != "srgb":
            rgb = to_display(rgb, colour)
        return np.clip(rgb, 0.0, 1.0).astype(np.float32), colour

    def _item(self, name: str) -> _ShowItem:
        if name in self._items:
            self._items.move_to_end(name)
            return self._items[name]
        from core.io import read_image
        from core.trimap import normalise_trimap, unit_scale

        d = self.folder
        image_path = _find_file(d / "image", name)
        alpha_path = _find_file(d / "alpha", name)
        assert image_path is not None and alpha_path is not None
        image, encoding = self._read_colour_as(image_path)
        self.encodings[name] = encoding
        matte = read_image(alpha_path)
        a = matte.matte()  # the channel lbsmatte evaluate scores against
        if not np.isfinite(a).all():
            raise InputError(f"{alpha_path}: the matte holds NaN or infinite values")
        # A float matte saved 0..255 is read as lbsmatte evaluate reads it: clipped to 0..1, it was
        # all 1 wherever it was not 0, and the networks learnt that without a word.
        read = a
        a = unit_scale(a, alpha_path, matte.info.is_float, "matte")
        alpha = _snap(np.ascontiguousarray(a, dtype=np.float32).copy())
        if alpha.shape != image.shape[:2]:
            raise InputError(f"{alpha_path} is {alpha.shape[1]}×{alpha.shape[0]} but {image_path} is "
                             f"{image.shape[1]}×{image.shape[0]}")
        given = {}
        for layer in ("fg", "bg"):
            layer_path = _find_file(d / layer, name)
            if layer_path is not None:
                given[layer] = self._read_colour(layer_path)
                if given[layer].shape[:2] != alpha.shape:  # it was cut at the plate's positions, misaligned
                    raise InputError(f"{layer_path} is {given[layer].shape[1]}×{given[layer].shape[0]} but "
                                     f"{image_path} is {image.shape[1]}×{image.shape[0]}")
        if len(given) == 2:
            fg, bg = given["fg"], given["bg"]
        else:
            # The plate's encoding is in the key: the same file read as sRGB and as linear gives
            # other display colours, whose layers a cache keyed by the files alone mixed up. So is a
            # 0..255 matte's division (its layers cached before were estimated for the matte clipped)
            # and the reading of a straight alpha's colour (as stored, no longer premultiplied: the
            # layers cached from a PNG plate with alpha read premultiplied are not these colours').
            salt = f"{encoding}, colour as stored" + ("" if a is read else ";matte/255")
            est_fg, est_bg = estimate_layers(image, alpha, key=_file_key(image_path, alpha_path, salt=salt),
                                             cache_dir=self.cache_dir)
            fg, bg = given.get("fg", est_fg), given.get("bg", est_bg)
        trimap_dir = d / "trimap"
        # Hidden sub-folders (a viewer's .thumbnails) are no trimap variants, as for lbsmatte evaluate.
        folders = [trimap_dir] + (sorted(p for p in trimap_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
                                  if trimap_dir.is_dir() else [])
        trimaps = []
        for folder in folders:
            trimap_path = _find_file(folder, name)
            if trimap_path is not None:
                t = read_image(trimap_path)
                try:  # a float trimap 0/128/255 as lbsmatte evaluate reads it (refused, unnamed, before)
                    trimap = normalise_trimap(unit_scale(t.pixels, trimap_path, t.info.is_float, "trimap"),
                                              channels=t.channels)
                except TrimapError as exc:
                    raise InputError(f"{trimap_path}: {exc}") from None
                if trimap.shape != alpha.shape:
                    raise InputError(f"{trimap_path} is {trimap.shape[1]}×{trimap.shape[0]} but {image_path} is "
                                     f"{image.shape[1]}×{image.shape[0]}")
                known = self._known(alpha)
                flat = float(known.min()) == float(known.max()) and float(known.max()) in (0.0, 1.0)
                if not split_trimap(trimap)[2].any() and not flat:
                    # The losses are taken over the unknown region: every crop cut with it taught
                    # nothing (a roto or a 0/1/2 label map given as the trimap: all losses 0, and a
                    # "fine-tuned" bundle written without a word). lbsmatte evaluate refuses it too.
                    # (A matte all 0 or all 1 is left out by check(), trimap or not.)
                    raise InputError(f"{trimap_path}: the trimap has no unknown pixel (0.5, or 128 of 255) although "
                                     f"the matte {alpha_path} has an edge: the networks learn only where the trimap "
                                     "is unknown, so the plate would teach nothing; mark the band they must decide "
                                     "in grey, or take the trimap out to have trimaps drawn from the matte")
                trimaps.append(trimap)
        if trimaps:
            centres = np.flatnonzero(np.any([split_trimap(t)[2] for t in trimaps], axis=0))
        else:
            centres = np.flatnonzero(_unknown_seed(self._known(alpha)))
        if not len(centres):
            centres = np.arange(alpha.size)
        item = _ShowItem(name, image, alpha, fg, bg, trimaps, centres)
        self._items[name] = item
        total = sum(i.nbytes for i in self._items.values())
        while total > self.max_bytes and len(self._items) > 1:
            total -= self._items.popitem(last=False)[1].nbytes
        return item

    def _crop(self, item: _ShowItem) -> dict[str, np.ndarray]:
        rng = self.rng
        h, w = item.alpha.shape
        smallest = min(1.0, self.crop / max(h, w))  # whole plate fits the crop
        if self.min_scale is not None:
            smallest = max(smallest, self.min_scale)
        scale = math.exp(rng.uniform(math.log(smallest), 0.0)) if smallest < 1.0 else 1.0
        n = max(1, int(round(self.crop / scale)))
        cy, cx = divmod(int(item.centres[int(rng.integers(len(item.centres)))]), w)
        y0 = min(max(cy - n // 2, 0), h - n) if h >= n else (h - n) // 2
        x0 = min(max(cx - n // 2, 0), w - n) if w >= n else (w - n) // 2
        size = (self.crop, self.crop)
        colours = np.concatenate([_take_window(x, y0, x0, n, n, False) for x in (item.image, item.fg, item.bg)], axis=2)
        layers = np.concatenate([colours.transpose(2, 0, 1), _take_window(item.alpha, y0, x0, n, n, False)[None]])
        layers = np.clip(_resize(layers, size), 0.0, 1.0)
        alpha = _snap(layers[9].copy())
        if item.trimaps and rng.random() < self.given_trimaps:
            given = item.trimaps[int(rng.integers(len(item.trimaps)))]
            trimap = _resize(_take_window(given, y0, x0, n, n, False)[None], size, mode="nearest")[0]
        else:
            known = self._known(alpha)
            trimap = _trimap_at(known, _seed_distance(known), int(rng.integers(1, self.max_radius + 1)))
        out = {"image": layers[0:3].transpose(1, 2, 0), "fg": layers[3:6].transpose(1, 2, 0),
               "bg": layers[6:9].transpose(1, 2, 0), "alpha": alpha, "trimap": trimap}
        if rng.random() < 0.5:
            out = {k: v[:, ::-1] for k, v in out.items()}
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}

    def sample(self, batch_size: int, n_backgrounds: int | None = None) -> dict[str, torch.Tensor]:
        """A batch of ``batch_size`` random crops (same keys as :class:`CompositeSampler`).

        ``n_backgrounds`` is accepted for the same call signature and ignored: a plate has one
        background, its own.
        """
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, not {batch_size}")
        samples = []
        for _ in range(batch_size):
            name = self.names[int(self.rng.integers(len(self.names)))]
            samples.append(self._crop(self._item(name)))
        return _to_batch(samples)


# ----------------------------------------------------------------------------------------------
# batches drawn ahead of the training step, by several processes


_ROLE_INDEX = {"background": 0, "foreground": 1, "alpha": 2}


class _BatchStream(torch.utils.data.IterableDataset):
    """Endless batches of one role from one worker's own batch source."""

    def __init__(self, factory: Callable[[int], Callable[[str], dict[str, torch.Tensor]]], role: str, seed: int) -> None:
        super().__init__()
        self.factory, self.role, self.seed = factory, role, seed

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        if info is not None:
            # pymatting's numba kernels (estimating a cold cache's colours) would take GNU OpenMP's
            # thread pool, which the forked worker inherits broken from its parent: they hang there.
            os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
        try:
            # A seed of its own per worker (and per stage), so no two workers draw the same crops.
            batches = self.factory(self.seed + 1_000_003 * (worker + 1) + 7_919 * _ROLE_INDEX.get(self.role, 3))
            while True:
                yield batches(self.role)
        except Exception as exc:
            if info is None:
                raise
            # Handed over as the worker's batch, for the training process to raise as it is: torch
            # re-raises a worker's error with the worker's whole traceback as its message, which the
            # run's one ERROR: line then was ("Caught InputError in DataLoader worker process 0.
            # Original Traceback (most recent call last): ..."), the file it named at its very end.
            yield _WorkerFailure(exc)


class _WorkerFailure:
    """An error a batch worker met, carried to the training process (:meth:`ParallelBatches.__call__`)."""

    def __init__(self, exc: Exception) -> None:
        import pickle

        try:  # what the queue does to it: an exception whose arguments do not rebuild it cannot go as it is
            pickle.loads(pickle.dumps(exc))
            self.error: Exception = exc
        except Exception:
            self.error = RuntimeError(f"{type(exc).__name__}: {exc}")
        self.error.__traceback__ = None  # the worker's frames do not pickle


#: The signals a farm's kill and a terminal's Ctrl-C send to the run's whole process group: the
#: training process's to handle (it checkpoints, then stops the workers), never a worker's.
_GROUP_SIGNALS = frozenset(getattr(signal, name) for name in ("SIGTERM", "SIGINT") if hasattr(signal, name))


def _start_worker(worker_id: int) -> None:
    """A batch worker's start (torch's ``worker_init_fn``): a process group of its own, so that
    SIGTERM and Ctrl-C sent to the run's group (a farm's kill, a terminal) are the parent's to handle;
    a worker killed by them ended the run with "DataLoader worker ... killed by signal" instead of
    the clean stop. (Not ignored: the parent's own terminate() must still end a worker, or the
    interpreter's exit waits for it forever.) The workers still end with the parent (torch's
    watchdog) or when it closes them.

    The parent starts the workers with those signals blocked (:meth:`ParallelBatches.__call__`):
    one sent to the group while a worker was still starting, before it took its group (at a stage's
    start), killed it. Held pending here, the group's signal is the parent's alone: it is taken
    off this process's pending ones before they are let through again."""
    if not hasattr(os, "setpgid"):  # Windows, where a console's Ctrl-C reaches every process attached to
        return                      # it, workers included (SIGTERM is not sent there)
    os.setpgid(0, 0)
    if hasattr(signal, "pthread_sigmask"):
        for signum in sorted(signal.sigpending() & _GROUP_SIGNALS):
            signal.sigwait({signum})  # pending (and blocked): taken at once, never acted on
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _GROUP_SIGNALS)


class ParallelBatches:
    """A batch source whose batches ``workers`` processes draw ahead of the training step.

    Drawing a composite takes about 25 ms of one CPU core (8 crops of 192 px: 0.21 s), which is
    longer than a step of the networks on a GPU; with ``workers`` processes (torch's
    ``DataLoader``, ``prefetch`` batches queued per worker) the step no longer waits for them.
    ``factory(seed)`` builds the batch source (a callable taking the role) that each worker
    draws from, with a seed of its own per worker and stage. Batches are pinned for the copy to
    a GPU when ``pin_memory``.

    Called with a role, it returns the next batch of that role; asked for another role, it stops
    the workers of the previous one (the stages train one after the other).
    """

    def __init__(
        self,
        factory: Callable[[int], Callable[[str], dict[str, torch.Tensor]]],
        workers: int,
        seed: int,
        prefetch: int = 4,
        pin_memory: bool = False,
    ) -> None:
        if workers < 1:
            raise InputError(f"workers must be at least 1, not {workers}")
        self.factory, self.workers, self.seed = factory, int(workers), int(seed)
        self.prefetch, self.pin_memory = int(prefetch), bool(pin_memory)
        self._role: str | None = None
        self._loader: Any = None
        self._iterator: Iterator[dict[str, torch.Tensor]] | None = None

    def __call__(self, role: str) -> dict[str, torch.Tensor]:
        if role != self._role or self._iterator is None:
            self.close()
            self._loader = torch.utils.data.DataLoader(
                _BatchStream(self.factory, role, self.seed), batch_size=None, num_workers=self.workers,
                prefetch_factor=self.prefetch, pin_memory=self.pin_memory, worker_init_fn=_start_worker,
            )
            # This process's multiprocessing folder (pymp-*, removed as it exits, after an error or a
            # SIGTERM too), made before the workers fork: they share it. Otherwise each worker made
            # its own for the socket it hands batches over on, and a worker ended by terminate()
            # (the last stage's, as the run exits) left it behind in $TMPDIR, one per worker a run.
            import multiprocessing.util

            multiprocessing.util.get_temp_dir()
            # The workers fork with the group's signals blocked, until each has taken a group of its
            # own (_start_worker); this process gets one sent meanwhile once they have started.
            held = (signal.pthread_sigmask(signal.SIG_BLOCK, _GROUP_SIGNALS)
                    if hasattr(signal, "pthread_sigmask") else None)
            try:
                self._iterator = iter(self._loader)
            finally:
                if held is not None:
                    signal.pthread_sigmask(signal.SIG_SETMASK, held)
            self._role = role
        try:
            batch = next(self._iterator)
        except RuntimeError as exc:
            if "DataLoader worker" not in str(exc):
                raise
            # A worker gone without a word (the kernel's out-of-memory killer, a crash in a C
            # library): torch's RuntimeError ended the run in a traceback.
            self.close()
            raise TrainingError(f"a --workers process drawing the batches ended unexpectedly ({exc}); each "
                                f"worker holds its own copy of the data set's photos (a machine short of memory "
                                f"kills one): run again with fewer --workers, or 0") from None
        if isinstance(batch, _WorkerFailure):
            self.close()
            raise batch.error
        return batch

    def close(self) -> None:
        """Stop the workers (they also stop when this object is garbage collected)."""
        iterator, self._iterator, self._loader, self._role = self._iterator, None, None, None
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is None:
            return
        try:
            shutdown()
        except RuntimeError as exc:
            # torch's SIGCHLD check: a worker died on its way out ("DataLoader worker (pid N) is
            # killed by signal: Aborted", a C++ destructor's std::terminate as a spawned worker's
            # interpreter ends, seen about one stop in six on these machines). The batches it drew
            # were taken, or are thrown away now, and torch's own clean-up (its ``finally``: the
            # other workers ended) has run; a training run must not end there.
            if "DataLoader worker" not in str(exc):
                raise
            import logging

            logging.getLogger(__name__).info("a batch worker ended abnormally as it was stopped (%s)", exc)
            for queue in getattr(iterator, "_index_queues", ()):  # what the interrupted shutdown left open
                queue.cancel_join_thread()
                queue.close()
