"""The sampling networks run again on the trimap the first round shrinks: python
tools/experiments/stop35_adapt/shrink.py [PREFIX]

After the shipped round, the unknown pixels it sets within 0.01 of 0 or 1 (before the levels), and
whose 3×3 neighbours are all set the same way, join the known regions; the networks run again on
that trimap (closer to what they must fill), and their F and B give a second round's data term
over the original unknown region (the same system, started from the first round). PREFIX photo:
each frame by the fold bundle that held its object out; photo_none: the pull-push priors on the
same shrunk trimap (the classical share of any gain). The 36 held-out photo frames dumped by stop
34's dump.py; each fold's variant chosen on the other two folds."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import FOLDS, at_unknown, batch, bundle, prior_from_layers, read_photo, solve  # noqa: E402
from depth_trust import report, scores  # noqa: E402

from core.pipeline import Matter  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
#: (erosion of the confident masks in px, λ of the second round); (0, 0): the shipped round alone.
VARIANTS = [(0, 0.0)] + [(e, lam) for e in (1, 3) for lam in (3e-4, 1e-3, 3e-3)]
#: The first round's alpha (before the levels) within this of 0 or 1 is taken as known.
THRESHOLD = 0.01
_matters: dict[int, Matter] = {}


def matter(prefix: str, name: str) -> Matter:
    k = next(i for i, f in enumerate(FOLDS) if name in f)
    key = -1 if prefix == "photo_none" else k
    if key not in _matters:
        _matters[key] = Matter("none" if key < 0 else bundle(k), device="cpu", rounds=0, fg_solve=0)
    return _matters[key]


def prior(s: dict, erosion: int, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The data term's prior alpha and confidence over the original unknown pixels, from the
    layers the networks give on the shrunk trimap."""
    key = ("prior", erosion)
    if key not in s:
        prefix_, name, variant = s["path"].stem.rsplit("_", 2)
        plate, trimap, _ = read_photo(name, variant)
        unknown = s["unknown"].numpy()
        a = torch.zeros(unknown.size)  # the first round's alpha before the levels
        a[torch.from_numpy(s["where"])] = s["a1"]
        a = a.reshape(unknown.shape).numpy()
        zero = ndimage.binary_erosion(a <= THRESHOLD, iterations=erosion, border_value=1)
        one = ndimage.binary_erosion(a >= 1 - THRESHOLD, iterations=erosion, border_value=1)
        shrunk = trimap.copy()
        shrunk[unknown & zero] = 0.0
        shrunk[unknown & one] = 1.0
        s["shrunk_share"] = float((unknown & (zero | one)).sum() / unknown.sum())
        out = matter(prefix, name).matte(plate, shrunk, colour="srgb")
        where = torch.from_numpy(s["where"])
        s[key] = prior_from_layers(*(at_unknown(batch(x), where) for x in (plate, out.fg, out.bg)))[:2]
    return s[key]


def second_round(prefix: str):
    def alpha(s: dict, depth: torch.Tensor, variant: tuple[int, float]) -> torch.Tensor:
        erosion, lam = variant
        if not lam:
            return s["a1"]
        p, conf = prior(s, erosion, prefix)
        return solve(s | {"prior": p, "a_net": s["a1"]}, lam * conf)
    return alpha


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "photo"
    report(f"a second round on the shrunk trimap ({prefix})", scores(prefix, VARIANTS, second_round(prefix)),
           lambda v: f"erosion {v[0]} px, λ {v[1]:g}")


if __name__ == "__main__":
    main()
