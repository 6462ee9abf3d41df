"""Does the data term pay more where its prior says "clearly background / foreground"?
python tools/experiments/stop36_shape/extremes.py [PREFIX] [SHAPE]

On the demo fur ball the data term at the shipped λ hurts the mid alphas with either layers
(networks' or pull-push's; HISTORY, stop 36). Here the data term's weight is shaped by its own
prior, ``λ · c · |2p − 1|^γ`` (γ 0: the shipped term), so that it pulls where the layers say 0 or
1 and leaves the mid alphas to the Laplacian and the KNN term; γ and λ chosen on the other two
folds. SHAPE ``both`` (default) is that; ``bg`` weights ``(1 − p)^γ`` (the prior trusted where it
says background, where the networks' share enters: the background network) and ``fg`` ``p^γ``.
The 36 held-out photo frames dumped by stop 34's dump.py (PREFIX photo: the networks;
photo_none: the priors)."""
from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import FOLDS, FRAMES, LAM, WORK, full_alpha, scorer, solve  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
GAMMAS = (0.0, 0.5, 1.0, 2.0)
LAMBDAS = (LAM, 1e-3, 3e-3)


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "photo"
    kind = sys.argv[2] if len(sys.argv) > 2 else "both"
    out = WORK / (f"stop36_extremes_{prefix}.json" if kind == "both" else f"stop36_extremes_{prefix}_{kind}.json")
    done = json.loads(out.read_text()) if out.exists() else {}
    for names in FOLDS:
        for name in names:
            for v in ("Trimap1", "Trimap2"):
                key = f"{name} {v}"
                if key in done:
                    continue
                s = torch.load(FRAMES / f"{prefix}_{name}_{v}.pt", weights_only=False)
                score = scorer(s)
                p = s["prior"].clamp(0, 1)
                shape = {"both": (2 * p - 1).abs(), "bg": 1 - p, "fg": p}[kind]
                row = {}
                for g, lam in itertools.product(GAMMAS, LAMBDAS):
                    a = s["a1"] if (g == 0 and lam == LAM) else solve(s, lam * s["conf"] * shape ** g)
                    row[f"{g:g} {lam:g}"] = score(full_alpha(s, a))
                done[key] = row
                out.write_text(json.dumps(done))
                print(key, " ".join(f"{k}: {r[0]:.2f}" for k, r in row.items()), flush=True)
    settings = list(next(iter(done.values())))
    folds = [[f"{n} {v}" for n in names for v in ("Trimap1", "Trimap2")] for names in FOLDS]

    def mean(keys, setting, i=None):
        vals = [done[k][setting] for k in keys]
        return sum(sum(x) if i is None else x[i] for x in vals) / len(vals)

    total = [0.0, 0.0]
    for k in range(3):
        train = [key for j in range(3) if j != k for key in folds[j]]
        best = min(settings, key=lambda st: mean(train, st))
        sad, grad = mean(folds[k], best, 0), mean(folds[k], best, 1)
        print(f"fold {k}: chose γ λ = {best}: held out {sad:.3f} / {grad:.3f}"
              f" (shipped {mean(folds[k], f'0 {LAM:g}', 0):.3f} / {mean(folds[k], f'0 {LAM:g}', 1):.3f})")
        total[0] += sad * len(folds[k])
        total[1] += grad * len(folds[k])
    n = sum(len(f) for f in folds)
    all_keys = [k for f in folds for k in f]
    print(f"nested: {total[0] / n:.3f} / {total[1] / n:.3f}; shipped {mean(all_keys, f'0 {LAM:g}', 0):.3f} / "
          f"{mean(all_keys, f'0 {LAM:g}', 1):.3f}")
    for st in settings:
        print(f"  {st}: {mean(all_keys, st, 0):.3f} / {mean(all_keys, st, 1):.3f}")


if __name__ == "__main__":
    main()
