"""Matte quality against exposure: SAD and gradient error of LBSMatte and of closed-form matting
(pymatting, on the same plate) on linearised photographs scaled by a few exposures.

Each alphamatting.com photo (``<data>/alphamatting/image/NAME.png``, read from the shared data,
never copied) is linearised as ``lbsmatte matte`` linearises an sRGB file, multiplied by each
exposure (×1/16 is 4 stops under, ×4 two stops over: highlights above 1) and matted as a
scene-linear plate (``colour="linear"``, what ``lbsmatte matte`` does with such an EXR), against
its measured alpha over the trimap's unknown pixels. ``--half`` halves the photos first (area
average in linear light, trimap and alpha alike) for a run of minutes on a busy CPU.

    python bench/exposure.py --names GT01,GT03,GT04 --half
    python bench/exposure.py --rounds 0          # the networks alone
    python bench/exposure.py --no-match-exposure # dark plates matted as they are (before exposure matching)
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


def measure(data: Path, names: list[str], trimaps: list[str], exposures: list[float], weights: str = "default",
            rounds: int | None = None, half: bool = False, closed_form: bool = True,
            match_exposure: bool = True) -> list[dict[str, object]]:
    """One row per photo, trimap and exposure: ``sad``, ``grad`` (and ``cf_sad``, ``cf_grad``)."""
    from core.metrics import gradient_error, sad
    from core.pipeline import Matter

    matter = Matter(weights, device="cpu", precision="fp32", rounds=rounds, match_exposure=match_exposure)
    rows: list[dict[str, object]] = []
    for name in names:
        for variant in trimaps:
            plate, tri, gt = photo(data, name, variant, half, linear=True)  # halved in linear light
            for exposure in exposures:
                scaled = (plate * exposure).astype(np.float32)
                alpha = matter.matte(scaled, tri, colour="linear").alpha
                row: dict[str, object] = {"name": name, "trimap": variant, "exposure": exposure,
                                          "scale": matter.stats.exposure,
                                          "sad": sad(alpha, gt, tri), "grad": gradient_error(alpha, gt, tri)}
                if closed_form:
                    cf = pymatting_alpha(scaled, tri)  # on the same linear values (above 1 included)
                    row.update(cf_sad=sad(cf, gt, tri), cf_grad=gradient_error(cf, gt, tri))
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA / "alphamatting"), help="an alphamatting-style set")
    parser.add_argument("--names", default="GT01,GT03,GT04")
    parser.add_argument("--trimaps", default="Trimap1,Trimap2")
    parser.add_argument("--exposures", default="0.0625,0.25,1,4")
    parser.add_argument("--weights", default="default")
    parser.add_argument("--rounds", type=int, default=None, help="refinement rounds (0: the networks alone)")
    parser.add_argument("--half", action="store_true", help="halve the photos first (area average)")
    parser.add_argument("--no-closed-form", action="store_true")
    parser.add_argument("--no-match-exposure", action="store_true",
                        help="matte the dark plates as they are (core.pipeline.Matter's match_exposure=False)")
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args(argv)
    rows = measure(Path(args.data), args.names.split(","), args.trimaps.split(","),
                   [float(e) for e in args.exposures.split(",")], args.weights, args.rounds, args.half,
                   not args.no_closed_form, not args.no_match_exposure)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
