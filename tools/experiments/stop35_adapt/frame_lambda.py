"""Can a frame say how far to trust its data term? python tools/experiments/stop35_adapt/frame_lambda.py [PREFIX]

Every way of trusting the networks' layers more (stops 32-35) gains on fold 1 (GT16) and loses on
fold 2's loose trimaps. Here λ is chosen per frame by a rule on one statistic of the frame that
needs no ground truth — ``λ_hi`` when the statistic is below (or above) a threshold, the shipped
3e-4 otherwise — the statistic, the direction, the threshold and λ_hi chosen on the other two
folds. The 36 held-out photo frames dumped by stop 34's dump.py (PREFIX photo: the networks;
photo_none: the priors)."""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import FOLDS, FRAMES, LAM, full_alpha, scorer, solve  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
LAMBDAS = (LAM, 1e-3, 3e-3, 1e-2)


def statistics(s: dict) -> dict[str, float]:
    conf, prior, a1 = s["conf"], s["prior"], s["a1"]
    depth = ndimage.distance_transform_edt(s["unknown"].numpy()).reshape(-1)[s["where"]]
    return {
        "mean confidence": float(conf.mean()),
        "confidence-weighted |a1 - prior|": float((conf * (a1 - prior).abs()).sum() / conf.sum()),
        "|a1 - prior|": float((a1 - prior).abs().mean()),
        "|a_net - prior|": float((s["a_net"] - prior).abs().mean()),
        "mean depth (px)": float(depth.mean()),
        "share of prior in (0.05, 0.95)": float(((prior > 0.05) & (prior < 0.95)).float().mean()),
        "share of a1 in (0.05, 0.95)": float(((a1 > 0.05) & (a1 < 0.95)).float().mean()),
    }


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "photo"
    frames = []  # (fold, name, stats, {λ: (SAD, Grad)})
    for k, names in enumerate(FOLDS):
        for name in names:
            for v in ("Trimap1", "Trimap2"):
                s = torch.load(FRAMES / f"{prefix}_{name}_{v}.pt", weights_only=False)
                score = scorer(s)
                result = {lam: score(full_alpha(s, s["a1"] if lam == LAM else solve(s, lam * s["conf"]))) for lam in LAMBDAS}
                frames.append((k, f"{name} {v}", statistics(s), result))
                print(frames[-1][1], " ".join(f"{lam:g}: {r[0]:.2f}" for lam, r in result.items()),
                      " ".join(f"{x:.3f}" for x in frames[-1][2].values()), flush=True)
    names = list(frames[0][2])

    def total(rule, subset) -> float:
        stat, sign, tau, lam = rule
        return sum(sum(f[3][lam if sign * f[2][stat] < sign * tau else LAM]) for f in subset)

    def rules(subset):
        for stat in names:
            values = sorted({f[2][stat] for f in subset})
            cuts = [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]
            for sign, tau, lam in itertools.product((1, -1), cuts, LAMBDAS[1:]):
                yield stat, sign, tau, lam

    rows, chosen = [], []
    for k in range(3):
        train = [f for f in frames if f[0] != k]
        best = min(rules(train), key=lambda r, train=train: total(r, train))
        base = total((names[0], 1, -np.inf, LAM), train)
        if total(best, train) >= base:
            best = (names[0], 1, -np.inf, LAM)
        chosen.append(best)
        for f in frames:
            if f[0] == k:
                stat, sign, tau, lam = best
                rows.append(f[3][lam if sign * f[2][stat] < sign * tau else LAM])
    r = np.array(rows).mean(0)
    shipped = np.array([f[3][LAM] for f in frames]).mean(0)
    print(f"{prefix}: λ by a per-frame rule, nested {r[0]:.3f} / {r[1]:.3f} against the shipped {shipped[0]:.3f} / {shipped[1]:.3f}")
    for k, (stat, sign, tau, lam) in enumerate(chosen):
        print(f"  fold {k}: λ {lam:g} where {stat} {'<' if sign > 0 else '>'} {tau:.4g}")
    for lam in LAMBDAS:
        m = np.array([f[3][lam] for f in frames]).mean(0)
        print(f"  every frame at λ {lam:g}: {m[0]:.3f} / {m[1]:.3f}")
    oracle = np.array([min(f[3].values(), key=sum) for f in frames]).mean(0)
    print(f"  the best λ of each frame (oracle): {oracle[0]:.3f} / {oracle[1]:.3f}")


if __name__ == "__main__":
    main()
