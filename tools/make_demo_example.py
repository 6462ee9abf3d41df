"""Make the bundled demo example ``core/examples/demo/`` (run once; its output is committed).

A procedural fur ball — an opaque core with ~1,600 anti-aliased, tapering, curling hairs and a
few long plant-like wisps — coloured with the fur of scikit-image's ``chelsea`` photograph and
composited over its ``coffee`` photograph. Both photographs are CC0 (see ``skimage.data``), the
shape is ours, so the example may be redistributed with LBSMatte. Everything is known exactly:

``image.png``   the composite I = α·F + (1 − α)·B, computed from the **stored** 8-bit α, F, B
                (sRGB-encoded values, as Composition-1k composites), so recomposing the files
                matches ``image.png`` to half an 8-bit step;
``alpha.png``   ground-truth alpha (grey, 8-bit);
``fg.png``      ground-truth foreground colour (defined everywhere: outside the object it is
                filled with the nearest object colour);
``bg.png``      ground-truth background (``coffee``, 600×400, unchanged);
``trimap.png``  0/128/255, unknown = the soft band widened by :data:`BAND` px each way;
``source.json`` where each part came from, the licence, the seed and versions;
``closed_form_*.png``, ``closed_form.json``  the demo's classical reference (:func:`write_closed_form`).

Usage::

    python tools/make_demo_example.py [--out core/examples/demo] [--seed 0]

Coverage of a hair of width ``w`` at distance ``d`` from its centre line is
``min(w, 1) · clip(max(w, 1)/2 + 0.5 − d, 0, 1)`` (a box filter of the strand, one pixel wide),
so hairs thinner than a pixel are partly transparent, as real hair at this scale is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "core" / "examples" / "demo"

#: Half-width in pixels by which the soft band is widened into the trimap's unknown region.
BAND = 6
#: Centre (x, y) and core radius of the fur ball, in pixels of the 600×400 frame.
CENTRE = (318.0, 212.0)
RADIUS = 78.0
#: Texture pixel (x, y) of chelsea under the ball's centre, and texture pixels per frame pixel.
TEXTURE_CENTRE = (247.0, 46.0)
TEXTURE_SCALE = 0.5


def _curve(rng: np.random.Generator, root: np.ndarray, direction: float, length: float, curl: float) -> np.ndarray:
    """Points (``n×2``, x/y) of one hair: a random walk of the heading with a steady curl."""
    step = 1.25
    n = max(3, int(length / step))
    heading = direction + np.cumsum(curl * step + rng.normal(0.0, 0.045, n))
    xy = np.cumsum(np.stack([np.cos(heading), np.sin(heading)], 1) * step, axis=0)
    return root + np.vstack([[0.0, 0.0], xy])


def _coverage(points: np.ndarray, width0: float, width1: float, shape: tuple[int, int]) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Anti-aliased coverage of a tapering poly-line, over its bounding box."""
    h, w = shape
    pad = max(width0, 1.0) + 2
    x0, y0 = np.floor(points.min(0) - pad).astype(int)
    x1, y1 = np.ceil(points.max(0) + pad).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0)), (slice(0, 0), slice(0, 0))
    yy, xx = np.mgrid[y0:y1, x0:x1]
    pix = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], 1)  # pixel centres
    a, b = points[:-1], points[1:]
    ab = b - a
    len2 = np.maximum((ab * ab).sum(1), 1e-9)
    t = np.clip(((pix[:, None, :] - a[None]) * ab[None]).sum(2) / len2[None], 0.0, 1.0)
    closest = a[None] + t[..., None] * ab[None]
    dist = np.sqrt(((pix[:, None, :] - closest) ** 2).sum(2))
    seg = dist.argmin(1)
    d = dist[np.arange(len(pix)), seg]
    along = (seg + t[np.arange(len(pix)), seg]) / len(ab)  # 0 at the root, 1 at the tip
    width = width0 + (width1 - width0) * along
    cover = np.minimum(width, 1.0) * np.clip(np.maximum(width, 1.0) / 2 + 0.5 - d, 0.0, 1.0)
    return cover.reshape(yy.shape), (slice(y0, y1), slice(x0, x1))


def render(seed: int = 0) -> dict[str, np.ndarray]:
    """The example as 8-bit arrays: ``image, alpha, fg, bg, trimap``."""
    from scipy import ndimage
    from skimage import data

    rng = np.random.default_rng(seed)
    bg = data.coffee().astype(np.float64) / 255.0  # 400×600×3
    h, w = bg.shape[:2]
    # Fur colours: the tabby forehead of skimage's chelsea, at half scale, mapped onto the ball
    # (the ball's centre lands on texture pixel TEXTURE_CENTRE; the eyes stay outside the core).
    fur = data.chelsea().astype(np.float64) / 255.0  # 300×451×3

    def fur_at(x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        tx = np.clip(TEXTURE_CENTRE[0] + TEXTURE_SCALE * (np.asarray(x) - CENTRE[0]), 0, fur.shape[1] - 1)
        ty = np.clip(TEXTURE_CENTRE[1] + TEXTURE_SCALE * (np.asarray(y) - CENTRE[1]), 0, fur.shape[0] - 1)
        coords = np.stack([np.ravel(ty), np.ravel(tx)])
        rgb = [ndimage.map_coordinates(fur[..., c], coords, order=1, mode="nearest") for c in range(3)]
        return np.stack(rgb, -1).reshape(np.shape(tx) + (3,))

    premult = np.zeros((h, w, 3))
    acc = np.zeros((h, w))

    def over(cover: np.ndarray, colour: np.ndarray, where: tuple[slice, slice]) -> None:
        c = cover[..., None]
        premult[where] = colour * c + premult[where] * (1 - c)
        acc[where] = cover + acc[where] * (1 - cover)

    # Opaque core with a slightly wobbly, anti-aliased rim.
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    angle = np.arctan2(yy - CENTRE[1], xx - CENTRE[0])
    rim = RADIUS * (1 + 0.04 * np.sin(5 * angle + 1.0) + 0.03 * np.sin(11 * angle))
    core = np.clip(rim - np.hypot(xx - CENTRE[0], yy - CENTRE[1]) + 0.5, 0.0, 1.0)
    shade = 0.75 + 0.35 * np.clip(1 - np.hypot(xx - CENTRE[0] + 25, yy - CENTRE[1] + 30) / (1.6 * RADIUS), 0, 1)
    over(core, np.clip(fur_at(xx, yy) * shade[..., None], 0, 1), (slice(0, h), slice(0, w)))

    # Hairs, back to front: short dense fur, then longer curls, then a few long plant-like wisps.
    hairs = [(1100, 14, 40, 0.5, 1.3, 0.012), (450, 35, 85, 0.35, 1.0, 0.02), (40, 90, 170, 0.3, 0.7, 0.008)]
    for count, len0, len1, wmin, wmax, curl in hairs:
        for _ in range(count):
            theta = rng.uniform(-np.pi, np.pi)
            r = RADIUS * rng.uniform(0.75, 0.98)
            root = np.array([CENTRE[0] + r * np.cos(theta), CENTRE[1] + r * np.sin(theta)])
            direction = theta + rng.normal(0.0, 0.35)
            points = _curve(rng, root, direction, rng.uniform(len0, len1), rng.choice([-1, 1]) * curl * rng.uniform(0.3, 1.5))
            width = rng.uniform(wmin, wmax)
            cover, where = _coverage(points, width, width * 0.35, (h, w))
            if cover.size == 0:
                continue
            cover *= rng.uniform(0.65, 1.0)  # some hairs are translucent
            tint = fur_at(root[0], root[1]) * rng.uniform(0.8, 1.25) + rng.uniform(0.0, 0.08)
            over(cover, np.clip(tint, 0, 1), where)

    alpha = np.clip(acc, 0.0, 1.0)
    fg = np.where(alpha[..., None] > 1e-6, premult / np.maximum(alpha, 1e-6)[..., None], 0.0)
    # Define the foreground everywhere: nearest colour of the object where alpha is (almost) 0.
    _, (iy, ix) = ndimage.distance_transform_edt(alpha < 1.0 / 255, return_indices=True)
    fg = np.clip(fg[iy, ix], 0.0, 1.0)

    a8 = np.round(alpha * 255).astype(np.uint8)
    f8 = np.round(fg * 255).astype(np.uint8)
    b8 = np.round(bg * 255).astype(np.uint8)
    a = a8.astype(np.float64)[..., None] / 255
    image = a * (f8 / 255.0) + (1 - a) * (b8 / 255.0)
    i8 = np.round(image * 255).astype(np.uint8)

    soft = a8 > 0
    solid = a8 == 255
    disk = np.hypot(*np.mgrid[-BAND : BAND + 1, -BAND : BAND + 1]) <= BAND
    unknown = ndimage.binary_dilation(soft & ~solid, disk) | (ndimage.binary_dilation(soft, disk) & ~ndimage.binary_erosion(solid, disk))
    trimap = np.where(unknown, 128, np.where(solid, 255, 0)).astype(np.uint8)
    return {"image": i8, "alpha": a8, "fg": f8, "bg": b8, "trimap": trimap}


def source_record(seed: int) -> dict[str, object]:
    import skimage

    cc0 = "CC0-1.0"
    return {
        "what": "LBSMatte demo example: a procedural fur ball composited over a photograph, with exact ground truth",
        "generator": "tools/make_demo_example.py",
        "seed": seed,
        "versions": {"scikit-image": skimage.__version__, "numpy": np.__version__},
        "size": "600x400",
        "encoding": "8-bit PNG, sRGB-encoded values; image = alpha*fg + (1-alpha)*bg computed on the stored 8-bit values",
        "licence": (
            "CC0-1.0. Derived only from CC0 photographs bundled with scikit-image and from procedural "
            "shapes made by this script; LBSMatte may redistribute it."
        ),
        "parts": {
            "bg.png": {
                "from": "skimage.data.coffee() (scikit-image: skimage/data/coffee.png), unchanged",
                "credit": "Rachel Michetti, courtesy of Pikolo Espresso Bar",
                "licence": cc0,
            },
            "fg.png": {
                "from": "colours of the forehead of skimage.data.chelsea() (scikit-image: skimage/data/chelsea.png) "
                        "at half scale, shaded and mapped onto the procedural fur ball; filled with the nearest object colour where alpha is 0",
                "credit": "Stefan van der Walt",
                "licence": cc0,
            },
            "alpha.png": {"from": "procedural (this script): opaque core plus anti-aliased tapering hairs and wisps",
                          "licence": cc0},
            "image.png": {"from": "alpha.png, fg.png, bg.png composited", "licence": cc0},
            "trimap.png": {"from": f"alpha.png: soft band (0 < alpha < 1) widened by {BAND} px; 0/128/255",
                           "licence": cc0},
        },
    }


def write(out: Path, seed: int = 0) -> None:
    import OpenImageIO as oiio

    out.mkdir(parents=True, exist_ok=True)
    for name, pixels in render(seed).items():
        buf = oiio.ImageBuf(np.ascontiguousarray(pixels))
        if not buf.write(str(out / f"{name}.png"), oiio.UINT8):
            raise SystemExit(f"cannot write {out / name}.png: {buf.geterror()}")
    (out / "source.json").write_text(json.dumps(source_record(seed), indent=2) + "\n", encoding="utf-8")


def write_closed_form(out: Path) -> None:
    """The demo's classical reference, computed once here and stored with the example:
    pymatting's closed-form alpha and multilevel foreground (``closed_form_alpha.png`` 16-bit,
    ``closed_form_fg.png`` 8-bit) and ``closed_form.json`` (versions, seconds). pymatting
    compiles its kernels just in time on first use, which would cost a fresh install's first
    ``lbsmatte demo`` minutes; ``lbsmatte demo --live-baseline`` computes it again instead."""
    import time

    import pymatting

    sys.path.insert(0, str(ROOT))
    from core.baselines import estimate_alpha_closed_form, estimate_foreground
    from core.demo import load_example
    from core.io import write_image

    ex = load_example(out)
    start = time.perf_counter()
    alpha = estimate_alpha_closed_form(ex["image"], ex["trimap"])
    fg, _ = estimate_foreground(ex["image"], alpha)
    seconds = time.perf_counter() - start
    write_image(out / "closed_form_alpha.png", alpha, ["Y"], pixel_type="uint16")
    write_image(out / "closed_form_fg.png", fg, ["R", "G", "B"], pixel_type="uint8")
    record = {"what": "pymatting.estimate_alpha_cf then estimate_foreground_ml on image.png and trimap.png "
                      "(core.baselines); alpha stored 16-bit, foreground 8-bit",
              "generator": "tools/make_demo_example.py --closed-form", "pymatting": pymatting.__version__,
              "seconds": round(seconds, 2), "seconds_note": "after pymatting's just-in-time compilation"}
    (out / "closed_form.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--closed-form", action="store_true",
                        help="only (re)compute the stored closed-form reference of an existing example")
    args = parser.parse_args(argv)
    if args.closed_form:
        if not (args.out / "image.png").is_file():
            parser.error(f"--closed-form needs an example in {args.out} ({args.out / 'image.png'} missing): "
                         "make it first, without --closed-form")
        write_closed_form(args.out)
        print(f"wrote the closed-form reference into {args.out}")
        return 0
    write(args.out, args.seed)
    write_closed_form(args.out)
    total = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
    print(f"wrote {args.out} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
