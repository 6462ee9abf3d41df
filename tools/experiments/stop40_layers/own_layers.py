"""The networks' own F and B (refinement off) against the parameter-free fills (``--weights none``,
refinement off), each fold bundle on its held-out objects' linear-light composites (true F and B),
both trimaps; and the demo fur ball with the shipped bundle:
python tools/experiments/stop40_layers/own_layers.py [composites dir, default devdata/composites_linear]

Errors as ``lbsmatte evaluate`` scores the layers: α-weighted FG SAD and (1 − α)-weighted BG SAD over
the unknown region, display-encoded; and the plain mean |B − B_true| where the truth hides the
background most (α > 0.5) and |F − F_true| where it shows the foreground least (0 < α < 0.5)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from cross_validate import VARIANTS, _composites_of, folds, objects  # noqa: E402

from core.evaluate import _display, _read_alpha, _read_plate, _read_trimap, find_samples  # noqa: E402
from core.metrics import background_error, foreground_error  # noqa: E402
from core.pipeline import Matter  # noqa: E402
from core.trimap import split_trimap  # noqa: E402

torch.set_num_threads(2)
DATA = ROOT.parent / "shared" / "data"


def errors(fg, bg, fg_gt, bg_gt, a, unknown) -> np.ndarray:
    ef, eb = np.abs(fg - fg_gt).sum(2), np.abs(bg - bg_gt).sum(2)
    return np.array([foreground_error(fg, fg_gt, a, unknown)["fg_sad"], background_error(bg, bg_gt, a, unknown)["bg_sad"],
                     eb[unknown & (a > 0.5)].mean(), ef[unknown & (a > 0) & (a < 0.5)].mean()])


def main() -> None:
    composites = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "devdata" / "composites_linear"
    names = objects(DATA)
    rows = {"networks": [], "none": []}
    for k, held in enumerate(folds(names, 3)):
        bundle = ROOT / "docs" / "cross_validation" / "folds" / f"fold{k}" / "bundle"
        matters = {"networks": Matter(str(bundle), device="cpu", rounds=0, fg_solve=0),
                   "none": Matter("none", device="cpu", rounds=0, fg_solve=0)}
        samples, _ = find_samples(composites, _composites_of(composites, held), list(VARIANTS))
        fold_rows = {"networks": [], "none": []}
        for s in samples:
            plate, colour = _read_plate(s.image)
            a = _read_alpha(s.alpha)
            fg_gt, bg_gt = _display(*_read_plate(s.fg)), _display(*_read_plate(s.bg))
            for v in VARIANTS:
                trimap = _read_trimap(s.trimaps[v])
                unknown = split_trimap(trimap)[2]
                for which, m in matters.items():
                    out = m.matte(plate, trimap, colour=colour)
                    fold_rows[which].append(errors(_display(out.fg, colour), _display(out.bg, colour), fg_gt, bg_gt, a, unknown))
        for which in rows:
            rows[which] += fold_rows[which]
            print(f"fold {k} {which:8s} " + " ".join(f"{x:.4f}" for x in np.mean(fold_rows[which], 0)), flush=True)
    for which in rows:
        print(f"all    {which:8s} " + " ".join(f"{x:.4f}" for x in np.mean(rows[which], 0)) + f"  ({len(rows[which])} frames)")
    wins = np.mean(np.array(rows["networks"]) < np.array(rows["none"]), 0)
    print("share of frames the networks win: " + " ".join(f"{x:.2f}" for x in wins))
    print("columns: FG SAD (α-weighted), BG SAD ((1 − α)-weighted), mean |B − B_true| at α > 0.5, mean |F − F_true| at 0 < α < 0.5")


if __name__ == "__main__":
    main()
