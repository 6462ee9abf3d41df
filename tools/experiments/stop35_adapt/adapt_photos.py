"""The background network adapted to each held-out photograph: python tools/experiments/stop35_adapt/adapt_photos.py

mix_layers.py found that the networks' share comes through their background: F from pull-push and
B from the networks score 4.500 against 4.469 with both from the networks and 4.904 with both from
pull-push. Here each of the 36 held-out photo frames gets its fold's background network trained
STEPS steps on the frame itself (feasibility.py's self-supervised crops: the frame's own estimated
object pasted over its known background), and the shipped round then runs with that background,
at λ 3e-4 (shipped) and 1e-3; each fold's λ chosen on the other two."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import FOLDS, FRAMES, LAM, bundle, full_alpha, read_photo, scorer, solve, state  # noqa: E402
from depth_trust import nested  # noqa: E402
from feasibility import adapt  # noqa: E402

from core.pipeline import Matter  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
STEPS = int(os.environ.get("STEPS", "60"))
LAMBDAS = (LAM, 1e-3)


def main() -> None:
    tables = []
    for k, names in enumerate(FOLDS):
        raw = Matter(bundle(k), device="cpu", rounds=0, fg_solve=0)
        full = Matter(bundle(k), device="cpu")
        net0 = raw.nets["background"]
        table: dict = {("shipped", lam): [] for lam in LAMBDAS} | {("adapted", lam): [] for lam in LAMBDAS}
        for name in names:
            for v in ("Trimap1", "Trimap2"):
                plate, trimap, _ = read_photo(name, v)
                before = torch.load(FRAMES / f"photo_{name}_{v}.pt", weights_only=False)
                score = scorer(before)
                res = full.matte(plate, trimap, colour="srgb")
                raw.nets["background"] = adapt(net0, plate, trimap, res.alpha, res.fg, STEPS)
                s = state(raw, plate, trimap)
                raw.nets["background"] = net0
                for lam in LAMBDAS:
                    table[("shipped", lam)].append(score(full_alpha(before, before["a1"] if lam == LAM else solve(before, lam * before["conf"]))))
                    table[("adapted", lam)].append(score(full_alpha(s, s["a1"] if lam == LAM else solve(s, lam * s["conf"]))))
                print(name, v, " ".join(f"{key[0]} {key[1]:g} {rows[-1][0]:.3f}" for key, rows in table.items()), flush=True)
        tables.append(table)
    for key in tables[0]:
        m = np.mean([r for t in tables for r in t[key]], 0)
        print(f"{key[0]} background, λ {key[1]:g}: {m[0]:.3f} / {m[1]:.3f}; folds " + " ".join(f"{np.mean([r[0] for r in t[key]]):.2f}" for t in tables))
    adapted = [{lam: t[("adapted", lam)] for lam in LAMBDAS} for t in tables]
    (sad, grad), chosen = nested(adapted)
    print(f"adapted background, λ nested: {sad:.3f} / {grad:.3f}, chosen {chosen}")


if __name__ == "__main__":
    main()
