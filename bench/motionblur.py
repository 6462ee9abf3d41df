"""Matte quality on motion-blurred and defocused edges: SAD and gradient error of LBSMatte, of
closed-form and of KNN matting (pymatting, on the same plate), and the foreground layer's error,
on alphamatting.com objects blurred in linear light and composited over a background photo.

Each object (``<data>/alphamatting/image/NAME.png`` and its measured alpha, read from the shared
data, never copied) is linearised as ``lbsmatte matte`` linearises an sRGB file, optionally halved
(``--half``, area average in linear light), and cut out: its foreground colours F are pymatting's
multilevel estimate from the photo and its alpha (in the sRGB encoding, decoded back), as
``tools/make_validation_composites.py`` makes them. Then the blur is applied as a lens or a shutter
applies it, to the premultiplied layer: ``α' = k * α`` and ``(αF)' = k * (αF)`` in linear light, and
the plate is ``(αF)' + (1 − α')·B`` over a background photo B of the validation split (linear,
kept sharp: the object moves, or is out of focus, against it). The composite is exact: its alpha is
``α'`` and its foreground ``(αF)' / α'``. The kernels (``BLURS``) are a horizontal motion blur of
15 px, a diagonal one of 40 px and a defocus disk of radius 8 px at the photo's full size (half
that with ``--half``). The trimap is the object's own, widened by the blur's reach as an artist
would draw it for the blurred plate: a pixel stays known only if every pixel the kernel gathers
from was known with the same label (an erosion of each known region by the kernel's footprint),
so the blurred alpha is exactly 0 or 1 there.

LBSMatte runs as ``lbsmatte matte`` runs on a linear EXR plate (``colour="linear"``, the shipped
bundle, fp32 on the CPU). Closed-form and KNN get the same linear values (pymatting's solvers,
negatives included, not clipped). The foreground is scored in the sRGB encoding (alpha-weighted
SAD over the band, :func:`core.metrics.foreground_error`, as ``lbsmatte evaluate`` scores it)
for LBSMatte's ``fg`` layer, for closed-form's alpha with pymatting's multilevel foreground
(``core.baselines.estimate_foreground``, on the sRGB-encoded plate) and for the plate itself.

    python bench/motionblur.py --half
    python bench/motionblur.py --half --names GT04 --blurs sharp,defocus8 --rounds 0   # the networks alone
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.photos import DEFAULT_DATA, photo, pymatting_alpha  # noqa: E402

#: Blurs at the photo's full size: name -> (kind, size in px, angle in degrees).
BLURS: dict[str, tuple[str, float, float]] = {
    "sharp": ("none", 0.0, 0.0),
    "motion15": ("motion", 15.0, 0.0),
    "motion40_diag": ("motion", 40.0, 45.0),
    "defocus8": ("disk", 8.0, 0.0),
}


def kernel(kind: str, size: float, angle: float = 0.0, samples: int = 8) -> np.ndarray:
    """A normalised, centred, point-symmetric blur kernel (odd ``n×n`` float64, summing to 1).

    ``motion``: a line ``size`` px long at ``angle`` degrees (0 horizontal, 45 rising to the right),
    rasterised by ``samples``² subpixel samples a pixel; ``disk``: a disk of radius ``size`` px, the
    same way (a defocused lens's circle of confusion); ``none``: the 1×1 identity."""
    if kind == "none" or size <= 0:
        return np.ones((1, 1))
    reach = int(np.ceil(size / 2 if kind == "motion" else size))
    n = 2 * reach + 1
    sub = (np.arange(n * samples) + 0.5) / samples - n / 2  # subpixel centres, pixel 0 centred
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    if kind == "motion":
        theta = np.deg2rad(angle)
        along = xx * np.cos(theta) - yy * np.sin(theta)  # image rows grow downwards
        across = xx * np.sin(theta) + yy * np.cos(theta)
        inside = (np.abs(along) <= size / 2) & (np.abs(across) <= 0.5)
    elif kind == "disk":
        inside = xx**2 + yy**2 <= size**2
    else:
        raise ValueError(f"unknown blur kind {kind!r}: motion, disk or none")
    k = inside.reshape(n, samples, n, samples).mean(axis=(1, 3))
    k = (k + k[::-1, ::-1]) / 2  # exactly point-symmetric
    return k / k.sum()


def blur_composite(alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray,
                   k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The plate, alpha and foreground of ``alpha``/``fg`` (``H×W``, ``H×W×3`` linear) blurred by
    ``k`` as premultiplied colour, over the sharp ``bg``: ``(plate, alpha', fg')``, float32. The frame's
    edges repeat their pixels (``nearest``). Where ``alpha'`` is 0, ``fg'`` is the unblurred F."""
    from scipy.ndimage import convolve

    a = convolve(alpha.astype(np.float64), k, mode="nearest")
    pre = np.stack([convolve(alpha * fg[..., c], k, mode="nearest") for c in range(3)], axis=-1)
    a = np.clip(a, 0.0, 1.0)
    f = np.where(a[..., None] > 1e-6, pre / np.maximum(a[..., None], 1e-6), fg)
    plate = pre + (1 - a[..., None]) * bg
    return plate.astype(np.float32), a.astype(np.float32), f.astype(np.float32)


def widen_trimap(trimap: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``trimap`` (``H×W``, 0/0.5/1 or 0/128/255 scaled) with each known region eroded by ``k``'s
    footprint: a pixel stays FG (BG) only if every pixel the kernel reaches is FG (BG)."""
    from scipy.ndimage import minimum_filter

    from core.trimap import split_trimap

    fg_known, bg_known, _ = split_trimap(trimap)
    foot = k > 0
    fg_w = minimum_filter(fg_known.astype(np.uint8), footprint=foot, mode="nearest").astype(bool)
    bg_w = minimum_filter(bg_known.astype(np.uint8), footprint=foot, mode="nearest").astype(bool)
    out = np.full(trimap.shape, 0.5, np.float32)
    out[fg_w], out[bg_w] = 1.0, 0.0
    return out


def cut_out(plate_linear: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The object's foreground colours, linear ``H×W×3``: pymatting's multilevel estimate on the
    sRGB encoding of the photo with its alpha, decoded."""
    from core.colour import to_display, to_linear
    from core.training.data import estimate_layers

    display = np.clip(to_display(plate_linear, "linear"), 0.0, 1.0)
    fg, _ = estimate_layers(display, alpha, key=None)
    return to_linear(fg, "srgb")


def background(folder: Path, index: int, shape: tuple[int, int]) -> np.ndarray:
    """The ``index``-th photo of ``folder``'s validation split (the photos no training draws),
    linear, scaled and centre-cropped to ``shape``."""
    from core.colour import to_linear
    from core.training.data import _background_split, _read_rgb8, background_photos
    from tools.make_validation_composites import _fit_background

    _, names = _background_split(background_photos(folder))
    if not names:
        raise SystemExit(f"{folder}: no background photos (.jpg, .jpeg, .png) to composite over")
    photo8 = _fit_background(_read_rgb8(folder / names[index % len(names)]), shape)
    return to_linear(photo8.astype(np.float32) / 255, "srgb")


def measure(data: Path, names: list[str], trimaps: list[str], blurs: list[str], weights: str = "default",
            rounds: int | None = None, half: bool = False, baselines: bool = True,
            knn: bool = True, backgrounds: Path | None = None) -> list[dict[str, object]]:
    """One row per object, trimap and blur: ``sad``, ``grad``, ``fg`` (LBSMatte), ``cf_*`` and
    ``knn_*`` (alpha), ``cf_fg`` (closed-form + multilevel foreground), ``plate_fg`` (the plate as
    FG) and the band's size ``unknown`` (pixels). ``backgrounds``: the photos' folder (default
    ``backgrounds/`` beside ``data``)."""
    from core.baselines import estimate_foreground
    from core.colour import to_display
    from core.metrics import foreground_error, gradient_error, sad
    from core.pipeline import Matter
    from core.trimap import split_trimap

    unknown = [b for b in blurs if b not in BLURS]
    if unknown:
        raise SystemExit(f"unknown blur(s) {', '.join(unknown)}: choose from {', '.join(BLURS)}")
    matter = Matter(weights, device="cpu", precision="fp32", rounds=rounds)
    scale = 0.5 if half else 1.0
    rows: list[dict[str, object]] = []

    def display(x: np.ndarray) -> np.ndarray:
        return np.clip(to_display(x, "linear"), 0.0, 1.0)

    for i, name in enumerate(names):
        cut: dict[str, np.ndarray] = {}
        for variant in trimaps:
            plate, tri, gt = photo(data, name, variant, half, linear=True)
            if not cut:
                cut = {"fg": cut_out(plate, gt), "bg": background(backgrounds or data.parent / "backgrounds", i, gt.shape)}
            for blur in blurs:
                kind, size, angle = BLURS[blur]
                k = kernel(kind, size * scale, angle)
                comp, alpha_t, fg_t = blur_composite(gt, cut["fg"], cut["bg"], k)
                wide = widen_trimap(tri, k)
                band = split_trimap(wide)[2]
                result = matter.matte(comp, wide, colour="linear")
                fg_true = display(fg_t)

                def fg_err(fg: np.ndarray) -> float:
                    return foreground_error(display(fg), fg_true, alpha_t, wide)["fg_sad"]  # noqa: B023

                row: dict[str, object] = {
                    "name": name, "trimap": variant, "blur": blur, "unknown": int(band.sum()),
                    "sad": sad(result.alpha, alpha_t, wide), "grad": gradient_error(result.alpha, alpha_t, wide),
                    "fg": fg_err(result.fg), "plate_fg": fg_err(comp),
                }
                if baselines:
                    cf = pymatting_alpha(comp, wide).astype(np.float32)
                    cf_fg, _ = estimate_foreground(display(comp), cf)
                    row.update(cf_sad=sad(cf, alpha_t, wide), cf_grad=gradient_error(cf, alpha_t, wide),
                               cf_fg=foreground_error(cf_fg, fg_true, alpha_t, wide)["fg_sad"])
                    if knn:
                        kn = pymatting_alpha(comp, wide, "estimate_alpha_knn").astype(np.float32)
                        row.update(knn_sad=sad(kn, alpha_t, wide), knn_grad=gradient_error(kn, alpha_t, wide))
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def table(rows: list[dict[str, object]]) -> str:
    """A Markdown table: one line per object, trimap and blur; SAD and gradient error of each
    method, and the foreground's alpha-weighted SAD."""
    cols = [("sad", "SAD"), ("cf_sad", "CF SAD"), ("knn_sad", "KNN SAD"), ("grad", "Grad"), ("cf_grad", "CF Grad"),
            ("knn_grad", "KNN Grad"), ("fg", "FG"), ("cf_fg", "CF+ML FG"), ("plate_fg", "plate FG")]
    cols = [(key, head) for key, head in cols if any(key in r for r in rows)]
    lines = ["| object, trimap, blur | " + " | ".join(head for _, head in cols) + " |",
             "| --- |" + " --- |" * len(cols)]
    for r in rows:
        cells = [f"{float(r[key]):.3f}" if key in r else "" for key, _ in cols]  # type: ignore[arg-type]
        lines.append(f"| {r['name']}, {r['trimap']}, {r['blur']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA / "alphamatting"), help="an alphamatting-style set")
    parser.add_argument("--names", default="GT04,GT16,GT25", help="objects (default: validation objects)")
    parser.add_argument("--trimaps", default="Trimap1,Trimap2")
    parser.add_argument("--blurs", default=",".join(BLURS), help=f"of {', '.join(BLURS)}")
    parser.add_argument("--weights", default="default")
    parser.add_argument("--rounds", type=int, default=None, help="refinement rounds (0: the networks alone)")
    parser.add_argument("--half", action="store_true", help="halve the photos first (area average), kernels too")
    parser.add_argument("--no-baselines", action="store_true", help="LBSMatte only")
    parser.add_argument("--no-knn", action="store_true", help="closed-form but not KNN")
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args(argv)
    rows = measure(Path(args.data), args.names.split(","), args.trimaps.split(","), args.blurs.split(","),
                   args.weights, args.rounds, args.half, not args.no_baselines, not args.no_knn)
    print("\nOver the widened trimap's band: alpha SAD and gradient error, FG alpha-weighted SAD (sRGB):\n"
          + table(rows), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
