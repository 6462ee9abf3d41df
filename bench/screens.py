"""Matte quality on blue- and greenscreen plates: SAD and gradient error of LBSMatte, closed-form and
KNN matting (pymatting), and the foreground layer's error, on real objects composited over a screen.

Each alphamatting.com object (``<data>/alphamatting/{image,alpha}/NAME.png``, read from the shared data,
never copied) gets its foreground colours as the validation composites get theirs
(``tools/make_validation_composites.py``): pymatting's multilevel estimate on the photo with its cleaned
measured alpha. That F, linearised, is composited in linear light over a screen: a saturated green
or blue, lit unevenly (one stop brighter at the top left than at the bottom right corner, with a
gentle vertical fall-off), and given mild photon-like noise (``bench/grain.py``'s subtle level, seeded) after the
composite, so plate = αF + (1 − α)·screen + noise. The plate is rounded to half float, as a linear
EXR holds it, and matted as ``lbsmatte matte`` mattes such an EXR (``colour="linear"``, fp32 on the CPU).
Closed-form and KNN run on the plate's sRGB encoding clipped to [0, 1], as ``lbsmatte evaluate`` runs
its baselines on a linear composite. Alpha is scored over the trimap's unknown pixels against the
alpha the composite was made with; F over the same pixels, weighted by that alpha, in the sRGB encoding
(``core.metrics.foreground_error``, as ``lbsmatte evaluate`` scores it), for LBSMatte's ``fg`` layer,
closed-form + multilevel foreground (``core.baselines.estimate_foreground`` on closed-form's alpha),
and the plate itself taken as F (what premultiplying the plate by a matte gives, with the screen left in).

``--spill`` adds the second condition: a fraction of the screen's colour added to F near the edge,
F + s·w·screen, ``w`` 1 at the object's edge falling off over a few pixels into it (a Gaussian of
4 px of 1 − α), so the spilled F is the true F of that plate (a compositor despills it afterwards).
``--half`` halves the photos first (in their sRGB encoding, alpha alike), for a run of minutes.

    python bench/screens.py --half
    python bench/screens.py --half --names GT04 --screens green --rounds 0
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.grain import LEVELS, add_grain  # noqa: E402
from bench.photos import DEFAULT_DATA, photo  # noqa: E402

#: Screen colours in scene-linear Rec.709 at the frame's centre: a chroma green and a chroma blue
#: (sRGB encodings about (0.24, 0.71, 0.27) and (0.18, 0.31, 0.68)).
SCREENS: dict[str, tuple[float, float, float]] = {
    "green": (0.05, 0.46, 0.06),
    "blue": (0.03, 0.08, 0.42),
}

#: The objects measured by default: hair (GT03, GT04: the troll's green hair over green), fur
#: (GT15, GT24) and the see-through mesh of a pencil holder (GT25).
DEFAULT_NAMES = "GT03,GT04,GT15,GT24,GT25"


def screen(shape: tuple[int, int], colour: tuple[float, float, float]) -> np.ndarray:
    """``H×W×3`` float32 screen of ``colour`` (at the centre), lit one stop brighter at the top left
    corner than at the bottom right, and 10 % darker along the bottom edge than the top."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    diagonal = (x / max(w - 1, 1) + y / max(h - 1, 1)) / 2  # 0 top left .. 1 bottom right
    light = 2.0 ** (0.5 - diagonal) * (1.0 - 0.1 * (y / max(h - 1, 1) - 0.5))
    return (light[..., None] * np.asarray(colour, np.float32)).astype(np.float32)


def spill_weight(alpha: np.ndarray, sigma: float = 4.0) -> np.ndarray:
    """``H×W`` in [0, 1]: how much screen light reaches F, 1 where the object is thin or at its edge,
    falling off over about ``sigma`` px into it."""
    from scipy.ndimage import gaussian_filter

    return np.clip(2.0 * gaussian_filter(1.0 - alpha, sigma), 0.0, 1.0).astype(np.float32)


def true_foreground(data: Path, name: str, trimap: str, half: bool) -> tuple[np.ndarray, np.ndarray]:
    """``name``'s foreground colours ``H×W×3`` (scene-linear) and cleaned alpha ``H×W``, as the
    validation composites make them (halved first with ``half``; ``trimap``, any of the photo's, is
    not used)."""
    from core.colour import to_linear
    from core.training.data import clean_measured_alpha, estimate_layers

    image, _, gt = photo(data, name, trimap, half)
    alpha = clean_measured_alpha(gt)
    fg, _ = estimate_layers(image, alpha, key=None)
    return to_linear(fg, "srgb").astype(np.float32), alpha


def measure(data: Path, names: list[str], trimaps: list[str], screens: list[str], spill: float,
            weights: str = "default", rounds: int | None = None, half: bool = False,
            baselines: bool = True, seed: int = 0) -> list[dict[str, object]]:
    """One row per object, trimap, screen and condition (``clean``; ``spill`` when ``spill`` > 0)."""
    from core.baselines import estimate_alpha_closed_form, estimate_alpha_knn, estimate_foreground
    from core.colour import to_display
    from core.metrics import foreground_error, gradient_error, sad
    from core.pipeline import Matter

    unknown = [s for s in screens if s not in SCREENS]
    if unknown:
        raise SystemExit(f"unknown screen(s) {', '.join(unknown)}: choose from {', '.join(SCREENS)}")
    matter = Matter(weights, device="cpu", precision="fp32", rounds=rounds)
    conditions = [("clean", 0.0)] + ([("spill", spill)] if spill > 0 else [])
    noise = LEVELS["subtle"][0]
    rows: list[dict[str, object]] = []

    def display(x: np.ndarray) -> np.ndarray:
        return np.clip(to_display(x, "linear"), 0.0, 1.0).astype(np.float32)

    for name in names:
        fg_lin, alpha = true_foreground(data, name, trimaps[0], half)
        a = alpha[..., None]
        for variant in trimaps:
            _, tri, _ = photo(data, name, variant, half)
            for screen_name in screens:
                colour = SCREENS[screen_name]
                back = screen(alpha.shape, colour)
                for condition, amount in conditions:
                    f = fg_lin + amount * spill_weight(alpha)[..., None] * back
                    plate = add_grain(a * f + (1 - a) * back, noise, 0.0, seed)
                    plate = plate.astype(np.float16).astype(np.float32)  # a half-float EXR's values
                    result = matter.matte(plate, tri, colour="linear")
                    f_disp = display(f)
                    row: dict[str, object] = {
                        "name": name, "trimap": variant, "screen": screen_name, "condition": condition,
                        "exposure": round(float(getattr(matter.stats, "exposure", 1.0)), 3),
                        "sad": sad(result.alpha, alpha, tri), "grad": gradient_error(result.alpha, alpha, tri),
                        "fg_sad": foreground_error(display(result.fg), f_disp, alpha, tri)["fg_sad"],
                        "plate_fg_sad": foreground_error(display(plate), f_disp, alpha, tri)["fg_sad"],
                    }
                    if baselines:
                        shown = display(plate)
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            cf = estimate_alpha_closed_form(shown, tri)
                            knn = estimate_alpha_knn(shown, tri)
                        cf_fg, _ = estimate_foreground(shown, cf)
                        row.update(cf_sad=sad(cf, alpha, tri), cf_grad=gradient_error(cf, alpha, tri),
                                   knn_sad=sad(knn, alpha, tri), knn_grad=gradient_error(knn, alpha, tri),
                                   cf_fg_sad=foreground_error(cf_fg, f_disp, alpha, tri)["fg_sad"])
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    return rows


def table(rows: list[dict[str, object]]) -> str:
    """A Markdown table, one line per row: SAD / gradient error of LBSMatte, closed-form and KNN, and
    FG SAD of LBSMatte, closed-form + multilevel and the plate."""
    def pair(r: dict[str, object], s: str, g: str) -> str:
        return f"{r[s]:.2f} / {r[g]:.2f}" if s in r else ""

    lines = ["| object, trimap | screen | condition | LBSMatte SAD / grad | closed-form | KNN "
             "| FG SAD LBSMatte | closed-form + ML | plate |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(
            f"| {r['name']}, {r['trimap']} | {r['screen']} | {r['condition']} | {pair(r, 'sad', 'grad')} "
            f"| {pair(r, 'cf_sad', 'cf_grad')} | {pair(r, 'knn_sad', 'knn_grad')} | {r['fg_sad']:.3f} "
            f"| {r.get('cf_fg_sad', float('nan')):.3f} | {r['plate_fg_sad']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA / "alphamatting"), help="an alphamatting-style set")
    parser.add_argument("--names", default=DEFAULT_NAMES)
    parser.add_argument("--trimaps", default="Trimap1,Trimap2")
    parser.add_argument("--screens", default=",".join(SCREENS), help=f"of {', '.join(SCREENS)}")
    parser.add_argument("--spill", type=float, default=0.3,
                        help="the spill condition's fraction of the screen colour added to F (0: none)")
    parser.add_argument("--weights", default="default")
    parser.add_argument("--rounds", type=int, default=None, help="refinement rounds (0: the networks alone)")
    parser.add_argument("--half", action="store_true", help="halve the photos first (area average)")
    parser.add_argument("--seed", type=int, default=0, help="the noise's random seed")
    parser.add_argument("--no-baselines", action="store_true", help="LBSMatte and the plate only")
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args(argv)
    rows = measure(Path(args.data), args.names.split(","), args.trimaps.split(","), args.screens.split(","),
                   args.spill, args.weights, args.rounds, args.half, not args.no_baselines, args.seed)
    print("\nSAD / gradient error over the unknown band; FG SAD alpha-weighted, sRGB encoding:\n" + table(rows),
          flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
