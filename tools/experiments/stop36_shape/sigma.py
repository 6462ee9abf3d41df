"""The data term's confidence scale σ² again, beside λ: python tools/experiments/stop36_shape/sigma.py [PREFIX]

The protocol's grid has held σ² at 0.1 since stop 9, before the KNN term and the levels. The
confidence ``1 − exp(−|F − B|² / σ²)`` of a dumped frame gives ``|F − B|²`` back, so each
(σ², λ) is one solve; both chosen on the other two folds. The 36 held-out photo frames dumped by
stop 34's dump.py (PREFIX photo: the networks; photo_none: the priors)."""
from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import FOLDS, FRAMES, LAM, SIGMA2, WORK, full_alpha, scorer, solve  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
SIGMAS = (0.01, 0.03, SIGMA2, 0.3)
LAMBDAS = (1e-4, LAM, 1e-3)


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "photo"
    out = WORK / f"stop36_sigma_{prefix}.json"
    done = json.loads(out.read_text()) if out.exists() else {}
    for names in FOLDS:
        for name in names:
            for v in ("Trimap1", "Trimap2"):
                key = f"{name} {v}"
                if key in done:
                    continue
                s = torch.load(FRAMES / f"{prefix}_{name}_{v}.pt", weights_only=False)
                score = scorer(s)
                keep = (1 - s["conf"].double()).clamp_min(1e-300)  # exp(−d² / σ²) at the shipped σ²
                row = {}
                for sig, lam in itertools.product(SIGMAS, LAMBDAS):
                    conf = (1 - keep ** (SIGMA2 / sig)).float()
                    a = s["a1"] if (sig == SIGMA2 and lam == LAM) else solve(s, lam * conf)
                    row[f"{sig:g} {lam:g}"] = score(full_alpha(s, a))
                done[key] = row
                out.write_text(json.dumps(done))
                print(key, " ".join(f"{k}: {r[0]:.2f}" for k, r in row.items()), flush=True)
    settings = list(next(iter(done.values())))
    folds = [[f"{n} {v}" for n in names for v in ("Trimap1", "Trimap2")] for names in FOLDS]

    def mean(keys, setting, i=None):
        vals = [done[k][setting] for k in keys]
        return sum(sum(x) if i is None else x[i] for x in vals) / len(vals)

    shipped = f"{SIGMA2:g} {LAM:g}"
    total = [0.0, 0.0]
    for k in range(3):
        train = [key for j in range(3) if j != k for key in folds[j]]
        best = min(settings, key=lambda st: mean(train, st))
        sad, grad = mean(folds[k], best, 0), mean(folds[k], best, 1)
        print(f"fold {k}: chose σ² λ = {best}: held out {sad:.3f} / {grad:.3f}"
              f" (shipped {mean(folds[k], shipped, 0):.3f} / {mean(folds[k], shipped, 1):.3f})")
        total[0] += sad * len(folds[k])
        total[1] += grad * len(folds[k])
    n = sum(len(f) for f in folds)
    all_keys = [k for f in folds for k in f]
    print(f"nested: {total[0] / n:.3f} / {total[1] / n:.3f}; shipped {mean(all_keys, shipped, 0):.3f} / "
          f"{mean(all_keys, shipped, 1):.3f}")
    for st in settings:
        print(f"  {st}: {mean(all_keys, st, 0):.3f} / {mean(all_keys, st, 1):.3f}")


if __name__ == "__main__":
    main()
