"""The BG -> FG -> alpha inference pipeline (patent para. 0057-0060, SPEC §4).

One call, plate and trimap in, :class:`Matte` out::

    from core.pipeline import matte
    result = matte(plate, trimap, colour="linear")   # plate H×W×3 float32, trimap H×W
    rgba = result.rgba()                              # premultiplied, Nuke's convention

For many frames, load the networks once with :class:`Matter` and call :meth:`Matter.matte`.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import InputError, WeightsError

log = logging.getLogger(__name__)

#: Set to 1 to let the pipeline run bundles whose manifest says ``"trained": false`` (tests only).
ALLOW_UNTRAINED_ENV = "LBSMATTE_ALLOW_UNTRAINED"


@dataclass
class Matte:
    """Result of matting one frame.

    Attributes
    ----------
    alpha:
        ``H×W`` float32 in [0, 1]; exactly 1 where the trimap is FG and 0 where it is BG.
    fg:
        ``H×W×3`` float32, foreground colour, unpremultiplied, in the plate's colour encoding;
        equal to the plate where the trimap is FG.
    bg:
        ``H×W×3`` float32, background colour in the plate's colour encoding; equal to the plate
        where the trimap is BG.
    messages:
        Warnings a user should see (sanitised pixels, no known FG, ...).
    """

    alpha: np.ndarray
    fg: np.ndarray
    bg: np.ndarray
    messages: list[str] = field(default_factory=list)

    def rgba(self, premultiply: bool = True) -> np.ndarray:
        """``H×W×4``: FG·alpha with alpha (premultiplied, Nuke's convention) or FG with alpha."""
        a = self.alpha[..., None]
        rgb = self.fg * a if premultiply else self.fg
        return np.concatenate([rgb, a], axis=2).astype(np.float32)


def resolve_device(device: str = "auto", *, fallback: bool = True) -> torch.device:
    """``auto`` -> CUDA when available, else CPU. ``cuda`` without CUDA falls back to the CPU
    with a message, or raises :class:`InputError` when ``fallback`` is false."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if torch.cuda.is_available():
            return torch.device(device)
        if not fallback:
            raise InputError("--device cuda was requested but CUDA is not available (no GPU or a CPU-only torch)")
        log.warning("CUDA was requested but is not available: running on the CPU instead")
        return torch.device("cpu")
    if device == "cpu":
        return torch.device("cpu")
    raise InputError(f"unknown device {device!r}: expected auto, cpu or cuda")


def _bundle(weights: Any) -> Any:
    from core.weights import Bundle, load_bundle

    if isinstance(weights, Bundle):
        return weights
    try:
        return load_bundle(str(weights))
    except WeightsError as exc:
        if str(weights) == "default":
            raise WeightsError(
                "no trained 'default' weights bundle is installed, so LBSMatte cannot produce a matte "
                f"(it will not run untrained networks). {exc}"
            ) from exc
        raise


def _stride(nets: dict[str, nn.Module]) -> int:
    return math.lcm(*(int(getattr(n, "stride", 1)) for n in nets.values()))


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(1))
    cols = np.flatnonzero(mask.any(0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


class Matter:
    """The three networks of a weights bundle, loaded once, for many frames.

    Parameters
    ----------
    weights:
        Bundle name (found on ``LBSMATTE_WEIGHTS_PATH``), bundle folder, or :class:`core.weights.Bundle`.
    device:
        ``auto``, ``cpu`` or ``cuda``; CUDA absent -> CPU with a message unless ``fallback=False``.
    tile:
        Largest side, in pixels, of the region sent through a network at once; bigger regions
        are cut into overlapping tiles. Default: 2048 on the CPU, 4096 on CUDA.
    context:
        Pixels of known region kept around the unknown region's bounding box (default: the
        larger of 96 and 15 % of the box's longer side), so the sampling networks see known
        colours to sample from.
    allow_untrained:
        Run a bundle whose manifest says it is untrained (tests only; also ``LBSMATTE_ALLOW_UNTRAINED=1``).
    """

    def __init__(
        self,
        weights: Any = "default",
        device: str = "auto",
        *,
        tile: int | None = None,
        context: int | None = None,
        fallback: bool = True,
        allow_untrained: bool | None = None,
        threads: int | None = None,
    ) -> None:
        self.bundle = _bundle(weights)
        if allow_untrained is None:
            allow_untrained = os.environ.get(ALLOW_UNTRAINED_ENV, "") == "1"
        if not self.bundle.manifest.get("trained", False) and not allow_untrained:
            raise WeightsError(
                f"weights bundle {self.bundle.name!r} ({self.bundle.path}) holds untrained networks; "
                "LBSMatte will not present their output as a matte. Install a trained bundle "
                "(the packaged 'default', or one on LBSMATTE_WEIGHTS_PATH)."
            )
        if threads:
            torch.set_num_threads(threads)
        self.fallback = fallback
        self.device = resolve_device(device, fallback=fallback)
        self.nets = self.bundle.load_networks(self.device)
        self.stride = _stride(self.nets)
        tile = tile or (4096 if self.device.type == "cuda" else 2048)
        self.tile = max(self.stride, tile // self.stride * self.stride)
        self.context = context
        if self.device.type == "cpu":
            for net in self.nets.values():
                net.to(memory_format=torch.channels_last)

    # -- public -----------------------------------------------------------------------------
    def matte(self, plate: np.ndarray, trimap: np.ndarray, colour: str = "linear") -> Matte:
        """Matte one frame.

        Parameters
        ----------
        plate:
            ``H×W×3`` (or ``H×W×4``, alpha ignored) float32 in the encoding named by ``colour``
            (scene-linear floats may exceed 1).
        trimap:
            ``H×W`` float; 0 = BG, 1 = FG, strictly between = unknown (normalised with the
            tolerance of :func:`core.trimap.normalise_trimap`).
        colour:
            ``linear``, ``srgb`` or an OpenColorIO colourspace name.

        Returns
        -------
        Matte
            alpha, FG and BG in the plate's encoding; known regions pass through untouched.
        """
        from core.colour import from_display, sanitise, to_display
        from core.trimap import normalise_trimap

        plate = np.asarray(plate, dtype=np.float32)
        if plate.ndim == 2:
            plate = np.repeat(plate[..., None], 3, axis=2)
        if plate.ndim != 3 or plate.shape[2] < 3:
            raise InputError(f"the plate must be H×W×3, got an array of shape {plate.shape}")
        plate = plate[..., :3]
        trimap = np.asarray(trimap, dtype=np.float32)
        if trimap.ndim == 3 and trimap.shape[2] == 1:
            trimap = trimap[..., 0]
        if trimap.shape[:2] != plate.shape[:2]:
            raise InputError(
                f"plate and trimap differ in size: plate is {plate.shape[1]}x{plate.shape[0]}, "
                f"trimap is {trimap.shape[1] if trimap.ndim > 1 else '?'}x{trimap.shape[0]}"
            )
        trimap = normalise_trimap(trimap)
        messages: list[str] = []
        clean, report = sanitise(plate)
        if report:
            messages.append(f"plate: {report}; those pixels were sanitised for the networks")
        fg_known = trimap == 1.0
        bg_known = trimap == 0.0
        unknown = ~(fg_known | bg_known)
        h, w = trimap.shape
        alpha = trimap.copy()
        fg = np.zeros_like(clean)
        bg = np.zeros_like(clean)
        fg[fg_known] = clean[fg_known]
        bg[bg_known] = clean[bg_known]
        if not unknown.any():
            messages.append("trimap has no unknown pixels: alpha is the trimap, no network was run")
            return self._done(Matte(alpha, fg, bg, messages))
        if not fg_known.any():
            messages.append("trimap has no known foreground pixels: the result may be poor")
        if not bg_known.any():
            messages.append("trimap has no known background pixels: the result may be poor")

        y0, y1, x0, x1 = self._region(unknown)
        display = np.clip(to_display(clean[y0:y1, x0:x1], colour), 0.0, 1.0).astype(np.float32)
        a_box, fg_box, bg_box = self._run(display, trimap[y0:y1, x0:x1])
        fg_box = from_display(fg_box, colour)
        bg_box = from_display(bg_box, colour)
        region = (slice(y0, y1), slice(x0, x1))
        alpha[region] = np.where(unknown[region], a_box, alpha[region])
        fg[region] = np.where(fg_known[region][..., None], clean[region], fg_box)
        bg[region] = np.where(bg_known[region][..., None], clean[region], bg_box)
        return self._done(Matte(alpha, fg, bg, messages))

    # -- internals ---------------------------------------------------------------------------
    @staticmethod
    def _done(result: Matte) -> Matte:
        for message in result.messages:
            log.warning(message)
        result.alpha = np.ascontiguousarray(result.alpha, dtype=np.float32)
        result.fg = np.ascontiguousarray(result.fg, dtype=np.float32)
        result.bg = np.ascontiguousarray(result.bg, dtype=np.float32)
        return result

    def _region(self, unknown: np.ndarray) -> tuple[int, int, int, int]:
        """The unknown region's bounding box plus context, clipped to the frame."""
        y0, y1, x0, x1 = _bbox(unknown)
        margin = self.context if self.context is not None else max(96, round(0.15 * max(y1 - y0, x1 - x0)))
        h, w = unknown.shape
        return max(0, y0 - margin), min(h, y1 + margin), max(0, x0 - margin), min(w, x1 + margin)

    def _run(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the three networks on a display-encoded crop; returns alpha, FG, BG (display-encoded)."""
        while True:
            try:
                return self._run_at(image, trimap, self.tile)
            except torch.OutOfMemoryError:
                if self.device.type != "cuda" or self.tile <= 256 or not self.fallback:
                    raise
                torch.cuda.empty_cache()
                self.tile //= 2
                log.warning("out of GPU memory: retrying with tiles of %d px", self.tile)

    @torch.inference_mode()
    def _run_at(self, image: np.ndarray, trimap: np.ndarray, tile: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = trimap.shape
        s = self.stride
        ph, pw = (-h) % s, (-w) % s
        dev = self.device
        img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].to(dev)
        tri = torch.from_numpy(np.ascontiguousarray(trimap))[None, None].to(dev)
        # Replicate padding to the networks' stride: edges look like more of the same content.
        img = F.pad(img, (0, pw, 0, ph), mode="replicate")
        tri = F.pad(tri, (0, pw, 0, ph), mode="replicate")
        fg_known = (tri > 0.75).to(img.dtype)
        bg_known = (tri < 0.25).to(img.dtype)
        autocast = torch.autocast("cuda", dtype=torch.float16) if dev.type == "cuda" else _null()
        with autocast:
            bg = self._tiled(self.nets["background"], torch.cat([img, 1 - bg_known], 1), tile)
            bg = bg_known * img + (1 - bg_known) * bg  # keep the plate where the trimap is BG
            fg = self._tiled(self.nets["foreground"], torch.cat([img, 1 - fg_known, bg], 1), tile)
            fg = fg_known * img + (1 - fg_known) * fg  # keep the plate where the trimap is FG
            alpha = self._tiled(self.nets["alpha"], torch.cat([img, tri, bg, fg], 1), tile)
        alpha = alpha.float()[0, 0, :h, :w].clamp(0, 1).cpu().numpy()
        fg_np = fg.float()[0, :, :h, :w].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        bg_np = bg.float()[0, :, :h, :w].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        return alpha, fg_np, bg_np

    def _tiled(self, net: nn.Module, x: torch.Tensor, tile: int) -> torch.Tensor:
        """Run ``net`` on ``x`` (1×C×H×W, H and W multiples of the stride), in overlapping tiles
        when larger than ``tile``; overlaps are blended with linear ramps."""
        _, _, h, w = x.shape
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        if h <= tile and w <= tile:
            return net(x)
        s = self.stride
        overlap = max(s, (tile // 8) // s * s)
        step = max(s, (tile - overlap) // s * s)
        out: torch.Tensor | None = None
        weight = torch.zeros(1, 1, h, w, device=x.device)
        for ty in _starts(h, tile, step):
            for tx in _starts(w, tile, step):
                th, tw = min(tile, h - ty), min(tile, w - tx)
                piece = net(x[:, :, ty : ty + th, tx : tx + tw]).float()
                ramp = _ramp(th, tw, overlap, ty > 0, ty + th < h, tx > 0, tx + tw < w, x.device)
                if out is None:
                    out = torch.zeros(1, piece.shape[1], h, w, device=x.device)
                out[:, :, ty : ty + th, tx : tx + tw] += piece * ramp
                weight[:, :, ty : ty + th, tx : tx + tw] += ramp
        assert out is not None
        return out / weight.clamp_min(1e-6)


def _starts(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def _ramp(h: int, w: int, overlap: int, top: bool, bottom: bool, left: bool, right: bool, device: Any) -> torch.Tensor:
    """Blend weights of one tile: 1 inside, linear ramps over ``overlap`` px on sides shared with a neighbour."""
    wy = torch.ones(h, device=device)
    wx = torch.ones(w, device=device)
    r = torch.linspace(1.0 / (overlap + 1), 1.0, overlap, device=device)
    if top:
        wy[:overlap] = r[: min(overlap, h)]
    if bottom:
        wy[-overlap:] = torch.minimum(wy[-overlap:], r.flip(0)[-min(overlap, h) :])
    if left:
        wx[:overlap] = r[: min(overlap, w)]
    if right:
        wx[-overlap:] = torch.minimum(wx[-overlap:], r.flip(0)[-min(overlap, w) :])
    return (wy[:, None] * wx[None, :])[None, None]


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def matte(
    plate: np.ndarray,
    trimap: np.ndarray,
    *,
    weights: Any = "default",
    device: str = "auto",
    colour: str = "linear",
    **options: Any,
) -> Matte:
    """Matte one frame in one call: load ``weights`` on ``device`` and run BG -> FG -> alpha.

    ``plate`` is ``H×W×3`` float32 in ``colour`` (``linear``, ``srgb`` or an OCIO colourspace),
    ``trimap`` ``H×W`` (0 BG, 1 FG, between unknown). Returns a :class:`Matte` whose FG and BG
    are in the plate's encoding and whose known regions equal the plate / trimap exactly. Other
    keyword arguments go to :class:`Matter`.
    """
    return Matter(weights, device, **options).matte(plate, trimap, colour=colour)

