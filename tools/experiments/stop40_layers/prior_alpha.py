"""What the background network's B is for: the data term's alpha prior, α̂ = <I − B, F − B> / |F − B|²
(core.compositing.alpha_from_composite), read off the networks' own F and B (refinement off)
or off the pull-push fills, against the true alpha, each fold bundle on its held-out objects'
linear composites, both trimaps, in the display encoding the data term uses here:
python tools/experiments/stop40_layers/prior_alpha.py [composites dir]

Columns: SAD of α̂ over the unknown region (/1000) with F and B from (networks, networks),
(fills, fills), (fills, networks' B), (networks' F, fills); then the same weighted by the data
term's confidence 1 − exp(−|F − B|² / σ²), σ² 0.1 (what the refinement trusts)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from cross_validate import VARIANTS, _composites_of, folds, objects  # noqa: E402

from core.compositing import alpha_from_composite  # noqa: E402
from core.evaluate import _display, _read_alpha, _read_plate, _read_trimap, find_samples  # noqa: E402
from core.pipeline import Matter  # noqa: E402
from core.trimap import split_trimap  # noqa: E402

torch.set_num_threads(1)
DATA = ROOT.parent / "shared" / "data"
PAIRS = (("networks", "networks"), ("none", "none"), ("none", "networks"), ("networks", "none"))


def prior(image: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = [torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].double() for x in (image, bg, fg)]
    a, d = alpha_from_composite(*t)
    return a[0, 0].numpy(), (1 - np.exp(-(d[0, 0].numpy() ** 2) / 0.1))


def main() -> None:
    composites = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "devdata" / "composites_linear"
    rows = []
    for k, held in enumerate(folds(objects(DATA), 3)):
        bundle = ROOT / "docs" / "cross_validation" / "folds" / f"fold{k}" / "bundle"
        matters = {"networks": Matter(str(bundle), device="cpu", rounds=0, fg_solve=0),
                   "none": Matter("none", device="cpu", rounds=0, fg_solve=0)}
        samples, _ = find_samples(composites, _composites_of(composites, held), list(VARIANTS))
        for s in samples:
            plate, colour = _read_plate(s.image)
            truth = _read_alpha(s.alpha)
            shown = _display(plate, colour)
            for v in VARIANTS:
                trimap = _read_trimap(s.trimaps[v])
                unknown = split_trimap(trimap)[2]
                outs = {w: m.matte(plate, trimap, colour=colour) for w, m in matters.items()}
                row = []
                for fw, bw in PAIRS:
                    a, c = prior(shown, _display(outs[fw].fg, colour), _display(outs[bw].bg, colour))
                    err = np.abs(a - truth)[unknown]
                    row += [err.sum() / 1000, (c[unknown] * err).sum() / 1000]
                rows.append([k] + row)
        r = np.array([x[1:] for x in rows if x[0] == k])
        print(f"fold {k}: " + " ".join(f"{x:.2f}" for x in r.mean(0)[0::2]) + " | confidence-weighted "
              + " ".join(f"{x:.2f}" for x in r.mean(0)[1::2]), flush=True)
    r = np.array([x[1:] for x in rows])
    print("all:    " + " ".join(f"{x:.2f}" for x in r.mean(0)[0::2]) + " | confidence-weighted "
          + " ".join(f"{x:.2f}" for x in r.mean(0)[1::2]))
    print("pairs (F from, B from): " + ", ".join(f"({f}, {b})" for f, b in PAIRS))
    wins = np.mean(r[:, 2 * 2] < r[:, 2 * 1]), np.mean(r[:, 0] < r[:, 2])
    print(f"frames where the networks' B beats the fill's (F from the fill): {wins[0]:.2f}; both networks beat both fills: {wins[1]:.2f}")


if __name__ == "__main__":
    main()
