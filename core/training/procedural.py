"""Procedural foregrounds for the hard cases of matting (SPEC §7).

The 14 real training objects (alphamatting.com) cover fur and soft toys well but have little
long hair, smoke, glass, motion blur, wire, netting or lace. This module draws such mattes in
quantity: :func:`generate_foreground` returns a foreground colour layer and an anti-aliased alpha
with, always, a fully opaque core (alpha exactly 1) and a band of partial alpha, so that a trimap
built from it has all three regions.

Colours come from photographs: the caller passes ``texture``, a photo patch (the sampler takes it
from a training background or a real foreground), so strands, glass and lace carry natural
texture rather than flat colours. Only numpy and scipy are used; a 320×320 foreground takes about
10-40 ms on one core.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy import ndimage

__all__ = ["KINDS", "generate_foreground", "smooth_noise"]

#: The kinds of foreground :func:`generate_foreground` draws from, chosen uniformly.
KINDS = ("hair", "translucent", "motion", "thin", "holes")

_Size = int | tuple[int, int]


@lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy.setflags(write=False)
    xx.setflags(write=False)
    return yy, xx


@lru_cache(maxsize=32)
def _spline_matrix(n_out: int, n_in: int) -> np.ndarray:
    """``n_out×n_in`` weights of a cubic B-spline through ``n_in`` knots spread over ``n_out`` px."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) / n_out * (n_in - 3) + 1.0  # knot coordinates
    d = np.abs(pos[:, None] - np.arange(n_in)[None, :])
    w = np.where(d < 1, 2 / 3 - d**2 + d**3 / 2, np.where(d < 2, (2 - d) ** 3 / 6, 0.0))
    w /= w.sum(axis=1, keepdims=True)
    m = w.astype(np.float32)
    m.setflags(write=False)
    return m


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, channels: int = 0) -> np.ndarray:
    """Smooth (cubic B-spline) noise in [0, 1] with about ``cells`` bumps across, ``h×w`` (``×channels``).

    Two small matrix products instead of an image resampling: fast, and free of blocks. Float32,
    drawn from ``rng`` only (the same generator state gives the same noise): the procedural
    foregrounds' textures here, and the varying width of the training trimaps' unknown band in
    :mod:`core.training.data`.
    """
    n = cells + 3
    coarse = rng.random((n, n) + ((channels,) if channels else ()), dtype=np.float32)
    my, mx = _spline_matrix(h, n), _spline_matrix(w, n)
    if channels:
        return np.ascontiguousarray(np.einsum("yi,ijc,xj->yxc", my, coarse, mx, optimize=True))
    return my @ coarse @ mx.T


def _radius_function(rng: np.random.Generator, radius: float, wobble: float) -> Callable[[np.ndarray], np.ndarray]:
    """r(φ) of a star-shaped blob: a circle with a few random low harmonics."""
    n = 5
    ks = np.arange(1, n + 1, dtype=np.float32)
    amps = (wobble * rng.normal(0.0, 1.0, n) / ks).astype(np.float32)
    phases = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    aspect = float(rng.uniform(0.6, 1.0))
    rotation = float(rng.uniform(0, np.pi))

    def r(phi: np.ndarray) -> np.ndarray:
        out = np.ones_like(phi)
        for k, a, p in zip(ks, amps, phases, strict=True):
            out += a * np.cos(k * phi + p)
        # an ellipse's radius in polar form, modulated by the harmonics
        ell = aspect / np.sqrt((aspect * np.cos(phi - rotation)) ** 2 + np.sin(phi - rotation) ** 2)
        return np.float32(radius) * np.maximum(out, 0.35) * ell

    return r


def _blob(
    rng: np.random.Generator, h: int, w: int, cy: float, cx: float, radius: float, wobble: float = 0.15
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Anti-aliased star-shaped opaque blob (coverage from the radial distance to its edge)."""
    yy, xx = _grid(h, w)
    dy, dx = yy - np.float32(cy), xx - np.float32(cx)
    rho = np.sqrt(dy * dy + dx * dx)
    phi = np.arctan2(dy, dx)
    r = _radius_function(rng, radius, wobble)
    alpha = np.clip(r(phi) - rho + 0.5, 0.0, 1.0)
    return alpha.astype(np.float32), r


def _union(*alphas: np.ndarray) -> np.ndarray:
    """Alpha of layers composited over each other: 1 − Π(1 − α)."""
    out = np.ones_like(alphas[0])
    for a in alphas:
        out *= 1.0 - a
    return 1.0 - out


def _core_blob(rng: np.random.Generator, h: int, w: int, scale: float = 1.0) -> tuple[np.ndarray, tuple, Callable]:
    m = min(h, w)
    radius = m * rng.uniform(0.12, 0.3) * scale
    cy = rng.uniform(0.3, 0.7) * h
    cx = rng.uniform(0.3, 0.7) * w
    alpha, r = _blob(rng, h, w, cy, cx, radius)
    return alpha, (cy, cx), r


def _polygon(rng: np.random.Generator, h: int, w: int, cy: float, cx: float, radius: float) -> np.ndarray:
    """Anti-aliased convex polygon: coverage from the signed distance to its nearest edge."""
    n = int(rng.integers(3, 9))
    # vertices spread round the centre (each in its own sector) so the polygon contains it
    angles = (np.arange(n) + rng.uniform(-0.2, 0.2, n)) * (2 * np.pi / n) + rng.uniform(0, 2 * np.pi)
    aspect = rng.uniform(0.5, 1.0)
    vy = cy + radius * aspect * np.sin(angles)
    vx = cx + radius * np.cos(angles)
    my, mx = vy.mean(), vx.mean()  # the vertex centroid is inside a convex polygon
    yy, xx = _grid(h, w)
    outside = np.full((h, w), -np.inf, np.float32)
    for i in range(n):
        j = (i + 1) % n
        ey, ex = vy[j] - vy[i], vx[j] - vx[i]
        norm = np.hypot(ey, ex)
        if norm < 1e-3:
            continue
        ny, nx = -ex / norm, ey / norm  # outward normal of a counter-clockwise (in x, y) edge
        if ny * (my - vy[i]) + nx * (mx - vx[i]) > 0:  # make sure it points away from the inside
            ny, nx = -ny, -nx
        outside = np.maximum(outside, np.float32(ny) * (yy - np.float32(vy[i])) + np.float32(nx) * (xx - np.float32(vx[i])))
    return np.clip(0.5 - outside, 0.0, 1.0).astype(np.float32)


def _core_shape(rng: np.random.Generator, h: int, w: int, scale: float = 1.0) -> tuple[np.ndarray, tuple]:
    """An opaque object of varied outline: a smooth blob, a convex polygon, or a union of two."""
    m = min(h, w)
    choice = rng.random()
    if choice < 0.4:
        alpha, centre, _ = _core_blob(rng, h, w, scale)
        return alpha, centre
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    alpha = _polygon(rng, h, w, cy, cx, m * rng.uniform(0.15, 0.35) * scale)
    if choice > 0.75:  # a second part makes the outline concave
        oy, ox = cy + rng.normal(0, 0.12) * m * scale, cx + rng.normal(0, 0.12) * m * scale
        other = _polygon(rng, h, w, oy, ox, m * rng.uniform(0.1, 0.25) * scale) if rng.random() < 0.5 else \
            _blob(rng, h, w, oy, ox, m * rng.uniform(0.08, 0.2) * scale)[0]
        alpha = _union(alpha, other)
    return alpha, (cy, cx)


def _strands(
    rng: np.random.Generator,
    h: int,
    w: int,
    roots: np.ndarray,
    angles: np.ndarray,
    lengths: np.ndarray,
    widths: np.ndarray,
    opacity: np.ndarray,
    curl: float,
    ss: int = 3,
) -> np.ndarray:
    """Draw thin curved strands, supersampled ``ss``× and box-filtered down (anti-aliasing).

    ``roots`` (n×2, y x in pixels), ``angles`` (start direction), ``lengths`` and ``widths`` in
    pixels; a strand of width 0.3 px covers 30 % of the pixels it crosses. Opacity tapers to 0
    toward the tip.
    """
    n = len(roots)
    big_h, big_w = h * ss, w * ss
    step = 1.0  # high-res pixels per point, so no gaps along a strand
    steps = int(np.ceil(lengths.max() * ss / step)) + 1
    bend = rng.normal(0.0, curl, (n, 1)).astype(np.float32) / ss
    wiggle = rng.normal(0.0, curl * 0.5, (n, steps)).astype(np.float32) / ss
    theta = angles[:, None].astype(np.float32) + np.cumsum(bend + wiggle, axis=1)
    dy, dx = np.sin(theta), np.cos(theta)
    y = roots[:, 0:1].astype(np.float32) * ss + np.cumsum(dy * step, axis=1)
    x = roots[:, 1:2].astype(np.float32) * ss + np.cumsum(dx * step, axis=1)
    t = np.arange(steps, dtype=np.float32)[None, :] * step / (lengths[:, None] * ss)
    value = opacity[:, None] * np.clip(1.0 - t, 0.0, 1.0) ** 0.5
    buf = np.zeros(big_h * big_w, np.float32)
    wmax = int(np.ceil(widths.max() * ss))
    for k in range(max(wmax, 1)):
        # stamp the strand once per high-res pixel of its width, across the direction of travel
        off = k - (widths[:, None] * ss - 1.0) / 2.0
        keep = (t < 1.0) & (k < widths[:, None] * ss)
        yk = np.rint(y - dx * off).astype(np.int64)
        xk = np.rint(x + dy * off).astype(np.int64)
        keep &= (yk >= 0) & (yk < big_h) & (xk >= 0) & (xk < big_w)
        idx = yk[keep] * big_w + xk[keep]
        vals = value[keep] if value.shape == keep.shape else np.broadcast_to(value, keep.shape)[keep]
        np.maximum.at(buf, idx, vals)
    return buf.reshape(h, ss, w, ss).mean(axis=(1, 3))


def _hair(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Hair or fur: many thin curved strands of partial opacity growing out of an opaque root."""
    core, (cy, cx), r = _core_blob(rng, h, w)
    m = min(h, w)
    fur = rng.random() < 0.4
    n = int(rng.integers(150, 450))
    if fur:  # short strands all around
        phi = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
        lengths = rng.uniform(0.03, 0.12, n).astype(np.float32) * m
        curl = 0.05
    else:  # long hair from one side of the root
        centre = rng.uniform(0, 2 * np.pi)
        spread = rng.uniform(0.5, 1.8)
        phi = (centre + rng.uniform(-spread, spread, n)).astype(np.float32)
        lengths = rng.uniform(0.15, 0.6, n).astype(np.float32) * m
        curl = rng.uniform(0.005, 0.04)
    start = r(phi) * rng.uniform(0.8, 0.98, n).astype(np.float32)
    roots = np.stack([cy + start * np.sin(phi), cx + start * np.cos(phi)], axis=1)
    angles = phi + rng.normal(0.0, 0.3, n).astype(np.float32)
    widths = rng.uniform(0.25, 1.5, n).astype(np.float32)
    opacity = rng.uniform(0.4, 1.0, n).astype(np.float32)
    strands = _strands(rng, h, w, roots, angles, lengths, widths, opacity, curl)
    return _union(core, strands)


def _translucent(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Glass, smoke or a veil: large alpha fields of partial opacity next to an opaque object.

    Glass is mostly see-through (body 0.05-0.5); a veil (a flag, a curtain, thin fabric) is mostly
    opaque (0.6-0.97) over a large area, where the plate is a poor guess at the background.
    """
    core, (cy, cx) = _core_shape(rng, h, w, scale=0.7)
    yy, xx = _grid(h, w)
    m = min(h, w)
    kind = rng.random()
    if kind < 1 / 3:  # veil: a wobbly sheet of near-uniform high opacity, its edge anti-aliased
        gy, gx = cy + rng.uniform(-0.3, 0.3) * h, cx + rng.uniform(-0.3, 0.3) * w
        sheet, _ = _blob(rng, h, w, gy, gx, m * rng.uniform(0.25, 0.5), wobble=0.25)
        level = rng.uniform(0.6, 0.97)
        veil = sheet * np.clip(level + rng.uniform(0.02, 0.1) * (smooth_noise(rng, h, w, 8) - 0.5), 0.0, 1.0)
        return _union(core, veil.astype(np.float32))
    if kind < 2 / 3:  # glass: faint body, stronger rim (Fresnel-like)
        gy, gx = cy + rng.uniform(-0.2, 0.2) * h, cx + rng.uniform(-0.2, 0.2) * w
        shell, r = _blob(rng, h, w, gy, gx, m * rng.uniform(0.25, 0.45), wobble=0.05)
        dy, dx = yy - gy, xx - gx
        inside = r(np.arctan2(dy, dx)) - np.sqrt(dy * dy + dx * dx)  # px to the rim
        rim = np.exp(-np.maximum(inside, 0.0) / rng.uniform(2.0, 10.0))
        body = rng.uniform(0.05, 0.5)
        glass = shell * (body + (rng.uniform(0.7, 1.0) - body) * rim)
        glass *= 0.85 + 0.15 * smooth_noise(rng, h, w, 6)
        return _union(core, glass.astype(np.float32))
    # smoke: thresholded smooth noise inside a soft envelope
    noise = 0.6 * smooth_noise(rng, h, w, int(rng.integers(3, 8))) + 0.4 * smooth_noise(rng, h, w, 16)
    ey, ex = cy + rng.uniform(-0.25, 0.25) * h, cx + rng.uniform(-0.25, 0.25) * w
    envelope = np.exp(-(((yy - ey) / (0.35 * h)) ** 2 + ((xx - ex) / (0.35 * w)) ** 2))
    density = np.clip((noise - rng.uniform(0.3, 0.5)) * rng.uniform(1.5, 4.0), 0.0, 1.0) * envelope
    smoke = np.clip(density * rng.uniform(1.0, 2.5), 0.0, 1.0) * rng.uniform(0.5, 0.95)
    return _union(core, smoke.astype(np.float32))


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    """Normalised anti-aliased line segment (the path of a moving point)."""
    half = int(np.ceil(length / 2)) + 1
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32)
    ux, uy = np.cos(angle), np.sin(angle)
    along = np.clip(xx * ux + yy * uy, -length / 2, length / 2)
    dist = np.hypot(xx - along * ux, yy - along * uy)
    k = np.clip(1.0 - dist, 0.0, 1.0)
    return (k / k.sum()).astype(np.float32)


def _fft_blur(layers: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve ``C×H×W`` layers with a small kernel by FFT, zero outside the frame."""
    c, h, w = layers.shape
    kh, kw = kernel.shape
    fh, fw = h + kh, w + kw
    spec = np.fft.rfft2(layers, s=(fh, fw)) * np.fft.rfft2(kernel, s=(fh, fw))[None]
    full = np.fft.irfft2(spec, s=(fh, fw))
    return full[:, kh // 2 : kh // 2 + h, kw // 2 : kw // 2 + w].astype(np.float32)


def _motion_blur(rng: np.random.Generator, fg: np.ndarray, alpha: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray]:
    """Blur a layer along a random direction as a moving object blurs: blur αF and α, F = blur(αF) / blur(α)."""
    kernel = _motion_kernel(length, float(rng.uniform(0, np.pi)))
    layers = np.concatenate([alpha[None], fg.transpose(2, 0, 1) * alpha[None]], axis=0)
    blurred = _fft_blur(layers, kernel)
    out_alpha = np.clip(blurred[0], 0.0, 1.0)
    colour = blurred[1:] / np.maximum(blurred[0], 1e-4)
    out_fg = np.where(out_alpha[None] > 1e-4, np.clip(colour, 0.0, 1.0), fg.transpose(2, 0, 1))
    # inside the shape, farther than the blur length from its edge, alpha is 1 up to rounding;
    # generate_foreground snaps it to exactly 1
    return np.ascontiguousarray(out_fg.transpose(1, 2, 0)), out_alpha


def _motion(rng: np.random.Generator, h: int, w: int, fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A motion-blurred opaque shape, wider than its blur so the middle stays opaque."""
    core, _ = _core_shape(rng, h, w, scale=1.2)
    return _motion_blur(rng, fg, core, float(rng.uniform(4.0, 0.15 * min(h, w))))


def _line_family(u: np.ndarray, period: float, width: float) -> np.ndarray:
    """Coverage of parallel lines ``width`` px wide every ``period`` px along coordinate u."""
    d = np.abs((u % period) - period / 2)  # distance to the nearest line (lines at period/2)
    return np.clip(width / 2 - d + 0.5, 0.0, 1.0) if width >= 1 else np.clip(1.0 - d, 0.0, 1.0) * width


def _thin(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Wires and nets: lines a fraction of a pixel to a few pixels wide, with an opaque core."""
    core, (cy, cx) = _core_shape(rng, h, w, scale=0.8)
    yy, xx = _grid(h, w)
    m = min(h, w)
    if rng.random() < 0.5:  # a net or grid, possibly warped, inside a soft-edged region
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(5.0, 25.0)
        width = rng.uniform(0.4, 3.0)
        warp = rng.uniform(0.0, 3.0)
        wy = np.sin(yy / rng.uniform(20, 80) + rng.uniform(0, 6)) * warp
        wx = np.sin(xx / rng.uniform(20, 80) + rng.uniform(0, 6)) * warp
        u = (xx + wy) * np.cos(theta) + (yy + wx) * np.sin(theta)
        v = -(xx + wy) * np.sin(theta) + (yy + wx) * np.cos(theta)
        skew = rng.uniform(np.pi / 4, np.pi / 2)  # angle between the two families
        v2 = u * np.cos(skew) + v * np.sin(skew)
        net = _union(_line_family(u, period, width), _line_family(v2, period * rng.uniform(0.7, 1.4), width))
        region, _ = _blob(rng, h, w, h / 2 + rng.uniform(-0.2, 0.2) * h, w / 2 + rng.uniform(-0.2, 0.2) * w, m * 0.45)
        return _union(core, (net * region * rng.uniform(0.6, 1.0)).astype(np.float32))
    # wires: a few long smooth curves crossing the frame
    n = int(rng.integers(3, 15))
    roots = np.stack([rng.uniform(0, h, n), rng.uniform(0, w, n)], axis=1)
    angles = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    lengths = rng.uniform(0.5, 1.5, n).astype(np.float32) * m
    widths = rng.uniform(0.3, 3.0, n).astype(np.float32)
    opacity = np.ones(n, np.float32)
    wires = _strands(rng, h, w, roots, angles, lengths * 2.0, widths, opacity, curl=0.004)
    # taper was for hair: wires keep full opacity until far past the frame (length doubled)
    return _union(core, np.clip(wires * 1.25, 0.0, 1.0))


def _holes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Opaque shapes with holes: lace (a lattice of holes) or a few random holes."""
    m = min(h, w)
    shape, (cy, cx) = _core_shape(rng, h, w, scale=1.5)
    yy, xx = _grid(h, w)
    if rng.random() < 0.6:  # lace: a rotated lattice of round holes
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(6.0, 30.0)
        radius = period * rng.uniform(0.2, 0.45)
        u = xx * np.cos(theta) + yy * np.sin(theta)
        v = -xx * np.sin(theta) + yy * np.cos(theta)
        du = (u % period) - period / 2
        dv = (v % period) - period / 2
        hole = np.clip(radius - np.sqrt(du * du + dv * dv) + 0.5, 0.0, 1.0)
        # leave a solid border and patch so the shape has an opaque core
        solid = _blob(rng, h, w, cy, cx, m * rng.uniform(0.08, 0.2))[0]
        hole *= 1.0 - solid
    else:  # a handful of random holes of varied sizes
        hole = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(3, 12))):
            hy, hx = cy + rng.normal(0, 0.15) * h, cx + rng.normal(0, 0.15) * w
            hole = np.maximum(hole, _blob(rng, h, w, hy, hx, m * rng.uniform(0.01, 0.08), wobble=0.3)[0])
    return (shape * (1.0 - hole)).astype(np.float32)


def _texture(rng: np.random.Generator, h: int, w: int, texture: np.ndarray | None) -> np.ndarray:
    if texture is None:  # smooth random colours when no photograph is given
        return (0.7 * smooth_noise(rng, h, w, 4, 3) + 0.3 * smooth_noise(rng, h, w, 32, 3)).astype(np.float32)
    if texture.shape[:2] != (h, w) or texture.ndim != 3 or texture.shape[2] < 3:
        raise ValueError(f"texture must be {h}×{w}×3, got {texture.shape}")
    fg = np.asarray(texture[..., :3], np.float32)
    if rng.random() < 0.5:  # recolour a little: different objects from the same photos
        fg = fg[..., rng.permutation(3)]
    return np.ascontiguousarray(fg)


def _ensure_core_and_band(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """Guarantee an opaque core (α = 1) and some partial alpha (0 < α < 1)."""
    h, w = alpha.shape
    opaque = alpha >= 1.0
    partial = (alpha > 0.0) & (alpha < 1.0)
    if opaque.sum() < 0.005 * h * w or partial.sum() < 0.002 * h * w:
        core, _, _ = _core_blob(rng, h, w, scale=0.6)
        alpha = _union(alpha, core)
    return alpha


def generate_foreground(
    rng: np.random.Generator, size: _Size, texture: np.ndarray | None = None, kind: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one procedural foreground.

    Args:
        rng: numpy random generator (the result is a function of its state).
        size: ``H`` or ``(H, W)`` in pixels.
        texture: ``H×W×3`` float32 photo patch in [0, 1] (display-encoded) used as the foreground
            colour; ``None`` uses smooth random colours.
        kind: one of :data:`KINDS`, or ``None`` for a random kind.

    Returns:
        ``(fg, alpha)``: ``fg`` ``H×W×3`` float32 in [0, 1], ``alpha`` ``H×W`` float32 in [0, 1],
        with both pixels of alpha exactly 1 (an opaque core) and of partial alpha.

    Example:
        >>> fg, alpha = generate_foreground(np.random.default_rng(0), 64)
        >>> fg.shape, alpha.shape, bool((alpha == 1).any()), bool(((alpha > 0) & (alpha < 1)).any())
        ((64, 64, 3), (64, 64), True, True)
    """
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if kind is None:
        kind = KINDS[int(rng.integers(len(KINDS)))]
    fg = _texture(rng, h, w, texture)
    if kind == "hair":
        alpha = _hair(rng, h, w)
        fg = ndimage.uniform_filter(fg, size=(3, 3, 1), mode="nearest")  # strands: no sharp texture across them
    elif kind == "translucent":
        alpha = _translucent(rng, h, w)
    elif kind == "motion":
        fg, alpha = _motion(rng, h, w, fg)
    elif kind == "thin":
        alpha = _thin(rng, h, w)
    elif kind == "holes":
        alpha = _holes(rng, h, w)
    else:
        raise ValueError(f"unknown procedural foreground kind {kind!r}; expected one of {KINDS}")
    if kind != "motion" and rng.random() < 0.15:  # a little motion blur on anything
        fg, alpha = _motion_blur(rng, fg, alpha, float(rng.uniform(2.0, 0.05 * min(h, w) + 2.0)))
    alpha = _ensure_core_and_band(rng, np.clip(alpha, 0.0, 1.0).astype(np.float32))
    # snap values within 8-bit noise of 0 or 1 so that the trimap's FG/BG are exact
    alpha[alpha > 1.0 - 1.0 / 1024] = 1.0
    alpha[alpha < 1.0 / 1024] = 0.0
    return np.clip(fg, 0.0, 1.0).astype(np.float32), alpha
