"""Matte quality on imperfect trimaps, as artists draw them: SAD and gradient error of LBSMatte and of
closed-form and KNN matting (pymatting, on the same plate and trimap) when the trimap is wrong.

Each alphamatting.com photo (``<data>/alphamatting/image/NAME.png``, read from the shared data, never
copied) is matted as ``lbsmatte matte`` mattes that PNG (its stored sRGB values, ``colour="srgb"``,
``--precision auto``, the bundle's own settings), and the baselines run on the same values (as
``lbsmatte evaluate`` runs them). From the photo's trimap (``Trimap1`` by default) each fault makes
another, reproducibly (distances in the pixels matted, so halved with ``--half``; blobs seeded):

``clean``
    the trimap as it is;
``fg_grown``
    known foreground grown ``--px`` px into the unknown band (a roto's known FG that clips strands);
``bg_grown``
    known background grown ``--px`` px into the band (a known BG that cuts off wisps);
``tight``
    both at once (a band far too tight);
``wide``
    both known regions shrunk by the band's median width, a band about three times as wide (far too wide);
``fg_lie``
    ``--blobs`` discs of ``--blob-px`` px radius, centred on unknown pixels whose true alpha is under
    0.05 and clipped to the band, marked known foreground (known FG painted over the background);
``bg_lie``
    the same centred on unknown pixels whose true alpha is at least 0.5, marked known background
    (known BG painted over a wisp).

Every method's error is measured over the same pixels for every fault of a photo: those unknown in
the photo's own trimap or in the faulty one, so a pixel a fault forces to 0 or 1 counts with its error.

    python bench/trimaperr.py --names GT01,GT13,GT24 --half
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

from bench.photos import DEFAULT_DATA, photo  # noqa: E402

FAULTS = ("clean", "fg_grown", "bg_grown", "tight", "wide", "fg_lie", "bg_lie")
METHODS = ("lbsmatte", "closed_form", "knn")


def _grow(known: np.ndarray, into: np.ndarray, px: int) -> np.ndarray:
    """The pixels of ``into`` within ``px`` px (Euclidean) of ``known``."""
    from scipy.ndimage import distance_transform_edt

    return into & (distance_transform_edt(~known) <= px)


def faulty_trimap(trimap: np.ndarray, gt: np.ndarray, fault: str, px: int = 3, blobs: int = 8,
                  blob_px: int = 4, seed: int = 0) -> np.ndarray:
    """``trimap`` (``H×W``, any encoding :func:`core.trimap.split_trimap` reads) made wrong as ``fault``
    says (one of :data:`FAULTS`), as a {0, 0.5, 1} float32 trimap; ``gt`` (``H×W`` alpha in [0, 1]) only
    places the lie blobs."""
    from scipy.ndimage import distance_transform_edt

    from core.trimap import split_trimap

    fg, bg, unknown = split_trimap(np.asarray(trimap, np.float32))
    fg, bg = fg.copy(), bg.copy()
    if fault == "clean":
        pass
    elif fault in ("fg_grown", "bg_grown", "tight"):
        grown_fg = _grow(fg, unknown, px) if fault != "bg_grown" else np.zeros_like(fg)
        grown_bg = _grow(bg, unknown, px) if fault != "fg_grown" else np.zeros_like(bg)
        fg |= grown_fg
        bg |= grown_bg & ~grown_fg
    elif fault == "wide":
        # the band's width where it is: an unknown pixel's distances to known FG and to known BG summed;
        # each known region shrunk by the median of that makes the band about three times as wide
        to_fg, to_bg = distance_transform_edt(~fg), distance_transform_edt(~bg)
        reach = float(np.median((to_fg + to_bg)[unknown])) if unknown.any() else 0.0
        fg &= distance_transform_edt(fg) > reach
        bg &= distance_transform_edt(bg) > reach
    elif fault in ("fg_lie", "bg_lie"):
        where = unknown & ((gt < 0.05) if fault == "fg_lie" else (gt >= 0.5))
        ys, xs = np.nonzero(where)
        if len(ys):
            rng = np.random.default_rng(seed)
            picks = rng.choice(len(ys), size=min(blobs, len(ys)), replace=False)
            yy, xx = np.mgrid[0 : trimap.shape[0], 0 : trimap.shape[1]]
            disc = np.zeros_like(unknown)
            for i in picks:
                disc |= (yy - ys[i]) ** 2 + (xx - xs[i]) ** 2 <= blob_px**2
            disc &= unknown
            if fault == "fg_lie":
                fg |= disc
            else:
                bg |= disc
    else:
        raise SystemExit(f"unknown fault {fault!r}: choose from {', '.join(FAULTS)}")
    out = np.full(trimap.shape, 0.5, np.float32)
    out[fg] = 1.0
    out[bg] = 0.0
    return out


def measure(data: Path, names: list[str], trimaps: list[str], faults: list[str], weights: str = "default",
            half: bool = False, baselines: bool = True, px: int = 3, blobs: int = 8, blob_px: int = 4,
            seed: int = 0) -> list[dict[str, object]]:
    """One row per photo, trimap and fault: ``<method>_sad`` and ``<method>_grad`` for each method run,
    ``unknown`` (the faulty trimap's unknown pixels over the clean one's)."""
    from core.baselines import estimate_alpha_closed_form, estimate_alpha_knn
    from core.metrics import gradient_error, sad
    from core.pipeline import Matter
    from core.trimap import split_trimap

    matter = Matter(weights, device="cpu")  # as `lbsmatte matte` runs it: precision auto, the bundle's settings
    rows: list[dict[str, object]] = []
    for name in names:
        for variant in trimaps:
            plate, tri, gt = photo(data, name, variant, half)  # sRGB as stored, as `lbsmatte matte` reads a PNG
            clean_unknown = split_trimap(tri)[2]
            for fault in faults:
                bad = faulty_trimap(tri, gt, fault, px, blobs, blob_px, seed)
                scored = clean_unknown | split_trimap(bad)[2]
                alphas = {"lbsmatte": matter.matte(plate, bad, colour="srgb").alpha}
                if baselines:
                    alphas["closed_form"] = estimate_alpha_closed_form(plate, bad)
                    alphas["knn"] = estimate_alpha_knn(plate, bad)
                row: dict[str, object] = {"name": name, "trimap": variant, "fault": fault,
                                          "unknown": round(float(split_trimap(bad)[2].sum() / clean_unknown.sum()), 3)}
                for method, alpha in alphas.items():
                    row[f"{method}_sad"] = sad(alpha, gt, scored)
                    row[f"{method}_grad"] = gradient_error(alpha, gt, scored)
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def table(rows: list[dict[str, object]], faults: list[str], metric: str = "sad") -> str:
    """A Markdown table: one line per photo, trimap and method, ``metric`` per fault."""
    lines = ["| photo, trimap, method | " + " | ".join(faults) + " |", "| --- |" + " --- |" * len(faults)]
    keys = sorted({(str(r["name"]), str(r["trimap"])) for r in rows})
    for name, variant in keys:
        for method in METHODS:
            cells = []
            for fault in faults:
                hit = [r for r in rows if (r["name"], r["trimap"], r["fault"]) == (name, variant, fault)]
                value = hit[0].get(f"{method}_{metric}") if hit else None
                cells.append("" if value is None else f"{value:.3f}")
            if any(cells):
                lines.append(f"| {name}, {variant}, {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA / "alphamatting"), help="an alphamatting-style set")
    parser.add_argument("--names", default="GT01,GT13,GT24")
    parser.add_argument("--trimaps", default="Trimap1")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"of {', '.join(FAULTS)}")
    parser.add_argument("--weights", default="default")
    parser.add_argument("--half", action="store_true", help="halve the photos first (area average)")
    parser.add_argument("--px", type=int, default=3, help="how far the grown faults grow a known region, px")
    parser.add_argument("--blobs", type=int, default=8, help="lie blobs per trimap")
    parser.add_argument("--blob-px", type=int, default=4, help="a lie blob's radius, px")
    parser.add_argument("--seed", type=int, default=0, help="where the lie blobs fall")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args(argv)
    faults = args.faults.split(",")
    rows = measure(Path(args.data), args.names.split(","), args.trimaps.split(","), faults, args.weights,
                   args.half, not args.no_baselines, args.px, args.blobs, args.blob_px, args.seed)
    for metric, what in (("sad", "SAD (/1000)"), ("grad", "gradient error (/1000)")):
        print(f"\n{what} over the clean and the faulty trimap's unknown pixels:\n" + table(rows, faults, metric),
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
