"""Matte quality against film grain and sensor noise: SAD and gradient error of LBSMatte and of
closed-form matting (pymatting, on the same plate) on linearised photographs with added grain.

Each alphamatting.com photo (``<data>/alphamatting/image/NAME.png``, read from the shared data,
never copied) is linearised as ``lbsmatte matte`` linearises an sRGB file, given grain in linear
light and matted as a scene-linear plate (``colour="linear"``, what ``lbsmatte matte`` does with
such an EXR), against its measured alpha over the trimap's unknown pixels. The grain is photon-like:
Gaussian, its standard deviation ``strength · sqrt(signal)`` per pixel and channel, a luminance part
(one draw for the three channels) and a chroma part of half its size (a draw per channel), seeded.
At mid-grey (0.18) the levels ``subtle`` (35 mm), ``heavy`` (16 mm, high ISO) and ``very heavy``
are about 4 %, 10 % and 21 % of the signal in each channel; ``correlated`` is the heavy grain blurred by a
Gaussian of 1 px and scaled back to the heavy level's standard deviation (grain clumps of a few
pixels, as scanned film and debayered sensors give). Negative values the grain makes in the
shadows are kept (a linear plate has them). ``--half`` halves the photos first (area average in
linear light, trimap and alpha alike), before the grain, for a run of minutes on a busy CPU.

    python bench/grain.py --names GT01,GT03,GT04 --half
    python bench/grain.py --rounds 0          # the networks alone
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

#: Grain levels: name -> (strength, blur sigma in px; 0 none).
LEVELS: dict[str, tuple[float, float]] = {
    "clean": (0.0, 0.0),
    "subtle": (0.015, 0.0),
    "heavy": (0.04, 0.0),
    "very_heavy": (0.08, 0.0),
    "correlated": (0.04, 1.0),
}


def add_grain(plate: np.ndarray, strength: float, blur: float = 0.0, seed: int = 0) -> np.ndarray:
    """``plate`` (H×W×3 scene-linear float32) with photon-like grain: luminance N(0, 1) plus chroma
    N(0, 0.5²) per channel, blurred by a Gaussian of ``blur`` px (each field scaled back to its own
    standard deviation), times ``strength · sqrt(max(plate, 0))``. ``strength`` 0: the plate as it is."""
    if strength == 0:
        return plate
    rng = np.random.default_rng(seed)
    h, w = plate.shape[:2]
    luma = rng.standard_normal((h, w, 1))
    chroma = 0.5 * rng.standard_normal((h, w, 3))
    if blur > 0:
        from scipy.ndimage import gaussian_filter

        def soften(field: np.ndarray) -> np.ndarray:
            soft = gaussian_filter(field, sigma=(blur, blur, 0))
            return soft * (field.std() / soft.std())

        luma, chroma = soften(luma), soften(chroma)
    noise = (luma + chroma) * strength * np.sqrt(np.maximum(plate, 0.0))
    return (plate + noise).astype(np.float32)


def measure(data: Path, names: list[str], trimaps: list[str], levels: list[str], weights: str = "default",
            rounds: int | None = None, half: bool = False, closed_form: bool = True,
            seed: int = 0) -> list[dict[str, object]]:
    """One row per photo, trimap and grain level: ``sad``, ``grad`` (and ``cf_sad``, ``cf_grad``)."""
    from core.metrics import gradient_error, sad
    from core.pipeline import Matter

    unknown = [level for level in levels if level not in LEVELS]
    if unknown:
        raise SystemExit(f"unknown grain level(s) {', '.join(unknown)}: choose from {', '.join(LEVELS)}")
    matter = Matter(weights, device="cpu", precision="fp32", rounds=rounds)
    rows: list[dict[str, object]] = []
    for name in names:
        for variant in trimaps:
            plate, tri, gt = photo(data, name, variant, half, linear=True)  # halved in linear light
            for level in levels:
                strength, blur = LEVELS[level]
                grainy = add_grain(plate.astype(np.float32), strength, blur, seed)
                alpha = matter.matte(grainy, tri, colour="linear").alpha
                row: dict[str, object] = {"name": name, "trimap": variant, "grain": level,
                                          "sad": sad(alpha, gt, tri), "grad": gradient_error(alpha, gt, tri)}
                if closed_form:
                    cf = pymatting_alpha(grainy, tri)  # on the same linear values (negatives included)
                    row.update(cf_sad=sad(cf, gt, tri), cf_grad=gradient_error(cf, gt, tri))
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def table(rows: list[dict[str, object]], levels: list[str]) -> str:
    """A Markdown table: one line per photo and trimap, SAD of LBSMatte (closed-form) per level."""
    lines = ["| photo, trimap | " + " | ".join(levels) + " |", "| --- |" + " --- |" * len(levels)]
    keys = sorted({(str(r["name"]), str(r["trimap"])) for r in rows})
    for name, variant in keys:
        cells = []
        for level in levels:
            hit = [r for r in rows if (r["name"], r["trimap"], r["grain"]) == (name, variant, level)]
            if not hit:
                cells.append("")
                continue
            cell = f"{hit[0]['sad']:.3f}"
            if "cf_sad" in hit[0]:
                cell += f" ({hit[0]['cf_sad']:.3f})"
            cells.append(cell)
        lines.append(f"| {name}, {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA / "alphamatting"), help="an alphamatting-style set")
    parser.add_argument("--names", default="GT01,GT03,GT04")
    parser.add_argument("--trimaps", default="Trimap1,Trimap2")
    parser.add_argument("--levels", default=",".join(LEVELS), help=f"grain levels, of {', '.join(LEVELS)}")
    parser.add_argument("--weights", default="default")
    parser.add_argument("--rounds", type=int, default=None, help="refinement rounds (0: the networks alone)")
    parser.add_argument("--half", action="store_true", help="halve the photos first (area average)")
    parser.add_argument("--seed", type=int, default=0, help="the grain's random seed")
    parser.add_argument("--no-closed-form", action="store_true")
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args(argv)
    levels = args.levels.split(",")
    rows = measure(Path(args.data), args.names.split(","), args.trimaps.split(","), levels, args.weights,
                   args.rounds, args.half, not args.no_closed_form, args.seed)
    print("\nSAD over the unknown band, LBSMatte (closed-form):\n" + table(rows, levels), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
