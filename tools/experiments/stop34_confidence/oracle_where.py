"""Where the oracle's gain lies: python tools/experiments/stop34_confidence/oracle_where.py

On the 36 held-out photo frames (dumped by dump.py photo): the shipped round's alpha and the
oracle's (data term 3e-2 where the prior is within 0.1 of the truth, off elsewhere), their summed
absolute errors over the unknown pixels split by the distance to the nearest known pixel and by
the prior's own confidence (|F - B|), and how the trusted pixels' share of the gain compares with
the pixels the trust reaches through the Laplacian."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))
from common import BLACK, FOLDS, FRAMES, LAM, WHITE, solve  # noqa: E402

from core.compositing import alpha_levels  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "1")))
DIST_BINS = (0, 4, 8, 16, 32, 64, 10**6)
CONF_BINS = (0.0, 0.1, 0.3, 0.6, 0.9, 1.01)


def main() -> None:
    by_dist = np.zeros((2, len(DIST_BINS) - 1))
    by_conf = np.zeros((2, len(CONF_BINS) - 1))
    by_trust = np.zeros((2, 2))
    count_d = np.zeros(len(DIST_BINS) - 1)
    totals = np.zeros(4)  # base, oracle, trust raised with the data term kept elsewhere, data term only switched off
    for name in sorted(n for f in FOLDS for n in f):
        for v in ("Trimap1", "Trimap2"):
            s = torch.load(FRAMES / f"photo_{name}_{v}.pt", weights_only=False)
            where = torch.from_numpy(s["where"])
            gt = s["gt"].reshape(-1)[where].double().numpy()
            lab = s["label"].reshape(-1)[where].float()
            base = alpha_levels(s["a1"], BLACK, WHITE).double().numpy()
            oracle = alpha_levels(solve(s, 3e-2 * lab), BLACK, WHITE).double().numpy()
            d = LAM * s["conf"]
            raised = alpha_levels(solve(s, d * (1 - lab) + 3e-2 * lab), BLACK, WHITE).double().numpy()
            switched = alpha_levels(solve(s, d * lab), BLACK, WHITE).double().numpy()
            totals += [np.abs(a - gt).sum() for a in (base, oracle, raised, switched)]
            known = ~s["unknown"]
            dist = ndimage.distance_transform_edt(~known).reshape(-1)[s["where"]]
            conf = s["conf"].numpy()
            errs = (np.abs(base - gt), np.abs(oracle - gt))
            for i, e in enumerate(errs):
                by_dist[i] += np.histogram(dist, DIST_BINS, weights=e)[0]
                by_conf[i] += np.histogram(conf, CONF_BINS, weights=e)[0]
                by_trust[i] += [e[lab.numpy() == 0].sum(), e[lab.numpy() == 1].sum()]
            count_d += np.histogram(dist, DIST_BINS)[0]
    scale = 1 / 1000 / 36  # SAD units (thousands), mean per frame
    print("unknown-pixel SAD: shipped {:.3f}, oracle {:.3f}, trusted pixels raised and the rest as shipped {:.3f}, "
          "the data term only switched off where the prior is wrong {:.3f}".format(*(totals * scale)))
    print("distance to the nearest known pixel (px): base SAD, oracle SAD, share of pixels")
    for i in range(len(DIST_BINS) - 1):
        print(f"  {DIST_BINS[i]:>3}-{DIST_BINS[i + 1]:<7} {by_dist[0, i] * scale:6.3f} {by_dist[1, i] * scale:6.3f} "
              f"{count_d[i] / count_d.sum():.3f}")
    print("confidence of |F - B|: base SAD, oracle SAD")
    for i in range(len(CONF_BINS) - 1):
        print(f"  {CONF_BINS[i]:.1f}-{CONF_BINS[i + 1]:.1f} {by_conf[0, i] * scale:6.3f} {by_conf[1, i] * scale:6.3f}")
    print("pixels the oracle does not trust / trusts: base SAD, oracle SAD")
    print(f"  not trusted {by_trust[0, 0] * scale:6.3f} {by_trust[1, 0] * scale:6.3f}")
    print(f"  trusted     {by_trust[0, 1] * scale:6.3f} {by_trust[1, 1] * scale:6.3f}")


if __name__ == "__main__":
    main()
