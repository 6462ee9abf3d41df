"""A 2:1 anamorphic plate, matted as stored against desqueezed first; and ``--edge`` counted in stored
against display pixels. The README's *Overscan and data windows* quotes the figures.

python tools/experiments/anamorphic/squeeze.py [--names GT01,GT04] [--edge 10] [--threads 1]

Each alphamatting.com photograph (Trimap1) is squeezed 2:1 horizontally, as an anamorphic lens
records it at half the horizontal resolution: each pair of columns averaged in linear light, the
ground truth alpha averaged likewise, a trimap pixel known only where both columns are known. Then,
with the default bundle, SAD over the squeezed trimap's unknown pixels, doubled (a squeezed pixel
stands for two of the photograph's), of:

- ``full``: the photograph matted as it is, its alpha squeezed afterwards (what the lens lost);
- ``stored``: the squeezed plate matted as stored, as ``lbsmatte matte`` and the node matte it;
- ``desqueezed``: the squeezed plate desqueezed to the photograph's width (linear interpolation;
  the trimap's columns repeated), matted, its alpha squeezed back.

With ``--edge PX``, a rough matte (the squeezed truth cut at 0.5) made into a trimap by
:func:`core.trimap.trimap_from_matte` (PX stored pixels each side of the edge) and by the same rule
in display pixels (a stored pixel 2 wide: PX rows above and below a horizontal edge, PX / 2 columns
each side of a vertical one); SAD over the whole frame, doubled.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from core.colour import _linear_to_srgb, _srgb_to_linear  # noqa: E402
from core.io import read_image  # noqa: E402
from core.metrics import sad  # noqa: E402
from core.pipeline import Matter  # noqa: E402
from core.trimap import trimap_from_matte  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "alphamatting"
SQUEEZE = 2


def squeeze(x: np.ndarray) -> np.ndarray:
    """Columns averaged in pairs (an odd last column dropped)."""
    w = x.shape[1] // SQUEEZE * SQUEEZE
    return 0.5 * (x[:, 0:w:2] + x[:, 1:w:2])


def squeeze_trimap(t: np.ndarray) -> np.ndarray:
    w = t.shape[1] // SQUEEZE * SQUEEZE
    a, b = t[:, 0:w:2], t[:, 1:w:2]
    out = np.full(a.shape, 0.5, np.float32)
    out[(a == 0) & (b == 0)] = 0.0
    out[(a == 1) & (b == 1)] = 1.0
    return out


def desqueeze(x: np.ndarray) -> np.ndarray:
    """Linear interpolation to twice the width, pixel centres aligned."""
    w = x.shape[1]
    pos = np.clip((np.arange(SQUEEZE * w) + 0.5) / SQUEEZE - 0.5, 0, w - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, w - 1)
    f = (pos - i0).reshape((1, -1) + (1,) * (x.ndim - 2))
    return x[:, i0] * (1 - f) + x[:, i1] * f


def display_band_trimap(rough: np.ndarray, edge: int) -> np.ndarray:
    """:func:`trimap_from_matte`'s rule with distances in display pixels (a stored pixel 2 wide)."""
    inside = rough >= 0.5
    out = inside.astype(np.float32)
    band = (distance_transform_edt(inside, sampling=(1.0, SQUEEZE)) <= edge) & inside
    band |= (distance_transform_edt(~inside, sampling=(1.0, SQUEEZE)) <= edge) & ~inside
    out[band] = 0.5
    return out


def read_unit(path: Path) -> np.ndarray:
    x = read_image(path).pixels.astype(np.float32)
    return x / 255 if x.max() > 1.5 else x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", default="GT01,GT04,GT06,GT10,GT13,GT15,GT19,GT24")
    parser.add_argument("--edge", type=int, default=0, help="also compare --edge bands of this many px")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    matter = Matter(weights="default", device="cpu")
    totals: dict[str, float] = {}
    for name in args.names.split(","):
        photo = read_unit(DATA / "image" / f"{name}.png")[..., :3]
        truth = read_unit(DATA / "alpha" / f"{name}.png")[..., 0]
        trimap = read_unit(DATA / "trimap" / "Trimap1" / f"{name}.png")[..., 0]
        trimap = np.where(trimap < 0.04, 0.0, np.where(trimap > 0.96, 1.0, 0.5)).astype(np.float32)
        linear = _srgb_to_linear(photo)
        plate = _linear_to_srgb(squeeze(linear))
        s_trimap, s_truth = squeeze_trimap(trimap), squeeze(truth)
        scores: dict[str, float] = {}
        start = time.perf_counter()
        scores["full"] = SQUEEZE * sad(squeeze(matter.matte(photo, trimap, colour="srgb").alpha), s_truth, s_trimap)
        scores["stored"] = SQUEEZE * sad(matter.matte(plate, s_trimap, colour="srgb").alpha, s_truth, s_trimap)
        wide = _linear_to_srgb(desqueeze(squeeze(linear)))
        alpha = matter.matte(wide, np.repeat(s_trimap, SQUEEZE, axis=1), colour="srgb").alpha
        scores["desqueezed"] = SQUEEZE * sad(squeeze(alpha), s_truth, s_trimap)
        if args.edge:
            rough = (s_truth >= 0.5).astype(np.float32)
            everywhere = np.full(s_truth.shape, 0.5, np.float32)
            for label, made in (("edge_stored", trimap_from_matte(rough, args.edge)),
                                ("edge_display", display_band_trimap(rough, args.edge))):
                scores[label] = SQUEEZE * sad(matter.matte(plate, made, colour="srgb").alpha, s_truth, everywhere)
        for key, value in scores.items():
            totals[key] = totals.get(key, 0.0) + value
        print(name, json.dumps({k: round(v, 3) for k, v in scores.items()}),
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    print("total", json.dumps({k: round(v, 3) for k, v in totals.items()}))


if __name__ == "__main__":
    main()
