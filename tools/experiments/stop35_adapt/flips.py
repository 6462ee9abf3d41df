"""The networks run on the frame and its mirror images, their F, B and alpha averaged (test-time
augmentation): python tools/experiments/stop35_adapt/flips.py [PREFIX]

Does averaging the networks over the 4 flips (none, left-right, up-down, both) give F and B that
the shipped round's data term trusts better? The 36 held-out photo frames, each by the fold bundle
that held its object out (PREFIX photo; photo_none: the parameter-free priors, for which a flip
changes nothing but the fill's order), the shipped round otherwise; SAD / Grad against the same
frames without flips (stop 34's dump.py)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import FOLDS, FRAMES, bundle, full_alpha, read_photo, scorer, state  # noqa: E402

from core.pipeline import Matte, Matter  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
FLIPS = ((False, False), (True, False), (False, True), (True, True))


class Flipped:
    """A :class:`Matter` whose :meth:`matte` averages the networks over the four flips."""

    def __init__(self, matter: Matter) -> None:
        self.matter = matter

    def matte(self, plate: np.ndarray, trimap: np.ndarray, colour: str) -> Matte:
        outs = []
        for lr, ud in FLIPS:
            def f(x, lr=lr, ud=ud):
                x = x[:, ::-1] if lr else x
                return np.ascontiguousarray(x[::-1] if ud else x)
            out = self.matter.matte(f(plate), f(trimap), colour=colour)
            outs.append((f(out.alpha), f(out.fg), f(out.bg)))
        a, fg, bg = (np.mean([o[i] for o in outs], 0).astype(np.float32) for i in range(3))
        return Matte(a, fg, bg, [])


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "photo"
    rows = []
    for k, names in enumerate(FOLDS):
        matter = Matter("none" if prefix == "photo_none" else bundle(k), device="cpu", rounds=0, fg_solve=0)
        for name in names:
            for v in ("Trimap1", "Trimap2"):
                plate, trimap, gt = read_photo(name, v)
                before = torch.load(FRAMES / f"{prefix}_{name}_{v}.pt", weights_only=False)
                score = scorer(before)
                s = state(Flipped(matter), plate, trimap)
                rows.append([*score(full_alpha(before, before["a1"])), *score(full_alpha(s, s["a1"])), k])
                print(name, v, " ".join(f"{x:.3f}" for x in rows[-1][:4]), flush=True)
    r = np.array(rows)
    for k in range(3):
        m = r[r[:, 4] == k].mean(0)
        print(f"fold {k}: {m[0]:.3f} / {m[1]:.3f} -> {m[2]:.3f} / {m[3]:.3f}")
    m = r.mean(0)
    print(f"all 36: {m[0]:.3f} / {m[1]:.3f} -> {m[2]:.3f} / {m[3]:.3f} (no flips -> 4 flips averaged)")


if __name__ == "__main__":
    main()
