"""Build a validation set with known foreground colours from the held-out alphamatting objects.

The alphamatting.com photographs come with measured alpha but no true foreground colour, so the
foreground half of the evaluation (SPEC §9, alpha-weighted FG error) cannot be run on them as
they are. This script makes a set where it can: each validation object that training never saw
(:data:`core.training.data.VALIDATION_OBJECTS`) is cut out of its photo — alpha cleaned as in
training, foreground colours estimated from the photo and its alpha by pymatting's multilevel
estimation — and composited over background photos of the validation split, so the composite's
``fg/``, ``bg/`` and ``alpha/`` are exact by construction. The object's own alphamatting trimaps
(``Trimap1`` tight, ``Trimap2`` loose) are kept.

The FG "truth" is pymatting's estimate on the real photo; the baseline's FG is the same estimator
run on closed-form alpha, so this set, if anything, favours the baseline.

The output is derived from ``../shared/data`` and goes to a git-ignored folder (``devdata/``);
it is never committed. A run writes the whole set beside ``--out`` and then replaces ``--out``
with it (never a folder this tool did not make, never one inside the data root)::

    python tools/make_validation_composites.py [--out devdata/val_composites] [--per-object 2]
    lbsmatte evaluate devdata/val_composites --json eval_composites.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.training.data import (  # noqa: E402
    CACHE_DIR,
    VALIDATION_OBJECTS,
    _background_split,
    _file_key,
    _read_grey8,
    _read_rgb8,
    background_photos,
    clean_measured_alpha,
    default_data_root,
    estimate_layers,
)

DEFAULT_OUT = ROOT / "devdata" / "val_composites"
GENERATOR = "tools/make_validation_composites.py"


def _fit_background(photo: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Scale a photo to cover ``shape`` (H, W), then centre-crop it to exactly that."""
    from PIL import Image

    h, w = shape
    ph, pw = photo.shape[:2]
    scale = max(h / ph, w / pw)
    size = (max(w, round(pw * scale)), max(h, round(ph * scale)))
    resized = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))
    y0 = (resized.shape[0] - h) // 2
    x0 = (resized.shape[1] - w) // 2
    return resized[y0 : y0 + h, x0 : x0 + w]


def _save(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_set(data: Path, out: Path, per_object: int, objects: tuple[str, ...] = VALIDATION_OBJECTS,
             linear: bool = False) -> list[str]:
    """Write the set; return the image names.

    ``linear``: composite in linear light, ``I = αF + (1 − α)B`` on the sRGB-decoded F and B, and
    write the plate, F and B as float EXR (scene-linear), as a plate from a render or a camera
    would come; alpha stays an 8-bit PNG."""
    from core.colour import to_linear
    from core.io import write_image

    am = data / "alphamatting"
    # The photos the training sampler splits, so that these are photos no training draws.
    _, val_backgrounds = _background_split(background_photos(data / "backgrounds"))
    if not val_backgrounds:
        raise SystemExit(f"no validation background photos in {data / 'backgrounds'}")
    names: list[str] = []
    sources: dict[str, str] = {}
    for i, obj in enumerate(objects):
        image_path, alpha_path = am / "image" / f"{obj}.png", am / "alpha" / f"{obj}.png"
        image = _read_rgb8(image_path).astype(np.float32) / 255.0
        alpha = clean_measured_alpha(_read_grey8(alpha_path).astype(np.float32) / 255.0)
        key = _file_key(image_path, alpha_path) + "_clean1"  # the cache training uses
        fg, _ = estimate_layers(image, alpha, key=key, cache_dir=CACHE_DIR)
        # Quantise first and composite the stored values, so the files obey I = aF + (1-a)B.
        a8 = np.round(alpha * 255).astype(np.uint8)
        f8 = np.round(fg * 255).astype(np.uint8)
        for j in range(per_object):
            bg_name = val_backgrounds[(i * per_object + j) % len(val_backgrounds)]
            b8 = _fit_background(_read_rgb8(data / "backgrounds" / bg_name), alpha.shape)
            a = a8.astype(np.float32)[..., None] / 255
            name = f"{obj}_bg{j + 1}"
            if linear:
                f_lin, b_lin = to_linear(f8.astype(np.float32) / 255, "srgb"), to_linear(b8.astype(np.float32) / 255, "srgb")
                comp = a * f_lin + (1 - a) * b_lin
                for folder, layer in (("image", comp), ("fg", f_lin), ("bg", b_lin)):
                    (out / folder).mkdir(parents=True, exist_ok=True)
                    write_image(out / folder / f"{name}.exr", layer.astype(np.float32), ["R", "G", "B"], pixel_type="float")
            else:
                comp = a * f8.astype(np.float32) / 255 + (1 - a) * b8.astype(np.float32) / 255
                _save(out / "image" / f"{name}.png", np.round(comp * 255).astype(np.uint8))
                _save(out / "fg" / f"{name}.png", f8)
                _save(out / "bg" / f"{name}.png", b8)
            _save(out / "alpha" / f"{name}.png", a8)
            for variant in ("Trimap1", "Trimap2"):
                trimap = _read_grey8(am / "trimap" / variant / f"{obj}.png")
                _save(out / "trimap" / variant / f"{name}.png", trimap)
            names.append(name)
            sources[name] = bg_name
    (out / "source.json").write_text(json.dumps({
        "generator": GENERATOR,
        "objects": list(objects),
        "composite": "in linear light, float EXR (scene-linear sRGB primaries)" if linear else "on the 8-bit sRGB values, PNG",
        "backgrounds": "validation split of backgrounds/ (core.training.data._background_split)",
        "fg": "pymatting estimate_foreground_ml on the photo with its cleaned measured alpha",
        "images": sources,
    }, indent=1) + "\n", encoding="utf-8")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="data root (default $LBSMATTE_DATA or ../shared/data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--per-object", type=int, default=2, help="background photos per object (default 2)")
    parser.add_argument("--objects", default=",".join(VALIDATION_OBJECTS),
                        help="alphamatting objects, comma-separated, or 'all' (default: the validation objects)")
    parser.add_argument("--linear", action="store_true", help="composite in linear light and write float EXR")
    args = parser.parse_args(argv)
    if args.per_object < 1:
        parser.error(f"--per-object must be at least 1, not {args.per_object}")
    data = args.data or default_data_root()
    am = data / "alphamatting"
    available = sorted(p.stem for p in (am / "image").glob("*.png") if (am / "alpha" / p.name).exists())
    if args.objects == "all":
        objects = tuple(available)
    else:
        objects = tuple(o.strip() for o in args.objects.split(",") if o.strip())
    if not objects:
        parser.error(f"no objects to composite: none with an alpha in {am}" if args.objects == "all" else "--objects is empty")
    for obj in objects:
        needed = [am / "image" / f"{obj}.png", am / "alpha" / f"{obj}.png",
                  *(am / "trimap" / variant / f"{obj}.png" for variant in ("Trimap1", "Trimap2"))]
        missing = [str(path) for path in needed if not path.is_file()]
        if missing:
            parser.error(f"object {obj}: missing {', '.join(missing)} (objects with an alpha in {am}: "
                         f"{', '.join(available) or 'none'})")
    if not (data / "backgrounds").is_dir():
        parser.error(f"no background photos: {data / 'backgrounds'} is not a folder")
    out = args.out
    if out.resolve().is_relative_to(data.resolve()):
        parser.error(f"--out {out} is inside the data root {data}: the set is derived data, write it elsewhere (devdata/)")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not _made_here(out))):
        parser.error(f"--out {out} exists and is not a set this tool made (no source.json of it): choose another folder")
    # Written beside the old set and swapped in when whole: a rerun replaces the set (no composites of
    # another --objects or --linear left beside the new ones), and a run cut short leaves the old set.
    partial = out.parent / f".{out.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    names = make_set(data, partial, args.per_object, objects, args.linear)
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    print(f"wrote {len(names)} composites to {out}")
    return 0


def _made_here(folder: Path) -> bool:
    """Whether ``folder`` holds a set written by this tool (its ``source.json`` says so)."""
    try:
        return json.loads((folder / "source.json").read_text(encoding="utf-8")).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


if __name__ == "__main__":
    raise SystemExit(main())
