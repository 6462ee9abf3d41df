"""Where the networks' share lies, frame by frame: python tools/experiments/stop36_shape/share_by_frame.py

The 36 held-out photo frames dumped by stop 34's dump.py, each at the shipped setting with the
fold networks' layers (photo) and with pull-push's (photo_none): SAD per frame, sorted by the
difference, then the means with and without the objects that carry the difference."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import FOLDS, FRAMES, full_alpha, scorer  # noqa: E402


def main() -> None:
    rows = []
    for names in FOLDS:
        for name in names:
            for v in ("Trimap1", "Trimap2"):
                got = []
                for prefix in ("photo", "photo_none"):
                    s = torch.load(FRAMES / f"{prefix}_{name}_{v}.pt", weights_only=False)
                    got.append(scorer(s)(full_alpha(s, s["a1"])))
                rows.append((name, v, got[0], got[1]))
    rows.sort(key=lambda r: r[2][0] - r[3][0])
    for name, v, nets, none in rows:
        print(f"{name} {v}: networks {nets[0]:6.2f} / {nets[1]:5.2f}  none {none[0]:6.2f} / {none[1]:5.2f}  "
              f"difference {nets[0] - none[0]:+6.2f}")
    for left_out in ((), ("GT16",), ("GT16", "GT04")):
        kept = [r for r in rows if r[0] not in left_out]
        nets = np.mean([r[2] for r in kept], 0)
        none = np.mean([r[3] for r in kept], 0)
        print(f"{len(kept)} frames{' without ' + ', '.join(left_out) if left_out else ''}: networks "
              f"{nets[0]:.3f} / {nets[1]:.3f}, none {none[0]:.3f} / {none[1]:.3f}, ratio {nets[0] / none[0]:.3f} / "
              f"{nets[1] / none[1]:.3f}")


if __name__ == "__main__":
    main()
