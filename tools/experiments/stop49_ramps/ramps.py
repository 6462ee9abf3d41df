"""Where the refinement's low reading of long alpha ramps comes from: the signed error inside the
ramp (truth strictly between 0.02 and 0.98) at each stage, and with each part of the data term
swapped for the truth. Reads the cases capture.py kept.

    python tools/experiments/stop49_ramps/ramps.py /tmp/ramps_cases/GT04_motion40_diag.pt ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.compositing import (  # noqa: E402
    RIDGE,
    add_knn,
    alpha_from_composite,
    alpha_levels,
    conjugate_gradients,
    matting_laplacian,
    solve_layers,
)
from core.trimap import split_trimap_tensor  # noqa: E402

BINS = (0.02, 0.25, 0.5, 0.75, 0.98)


class Case:
    def __init__(self, path: str) -> None:
        d = torch.load(path, weights_only=False)
        self.name = Path(path).stem
        self.d = d
        self.s = d["settings"]
        img = d["image"].double()
        self.img = img
        fg_known, _, unknown = split_trimap_tensor(d["trimap"][0, 0])
        self.unknown = unknown
        self.where = torch.nonzero(unknown.reshape(-1)).reshape(-1)
        lap = matting_laplacian(img[0].float(), unknown, fg_known)
        self.lap = lap
        self.truth = d["alpha_true"].double().reshape(-1)[self.where]
        self.ramp = (self.truth > 0.02) & (self.truth < 0.98)
        col = lambda x: x.double().reshape(3, -1)[:, self.where][None, :, :, None]  # noqa: E731
        self.I, self.Bn, self.Fn = col(img), col(d["bg"]), col(d["fg"])
        self.Ft = col(d["fg_true"].permute(2, 0, 1))
        self.Bt = col(d["bg_true"].permute(2, 0, 1))
        self.anet = d["alpha"].double().reshape(-1)[self.where].clamp(0, 1)
        self.mats = {}

    def matrix(self, knn: float):
        if knn not in self.mats:
            if knn > 0:
                m, pull, diag = add_knn(self.lap, self.d["knn"], knn)
            else:
                m, pull, diag = self.lap.matrix, self.lap.pull, self.lap.diagonal
            self.mats[knn] = (m, pull, diag, m.to(torch.float64))
        return self.mats[knn]

    def stats(self, a: torch.Tensor) -> dict:
        e = (a.double() - self.truth)
        r = self.ramp
        out = {"sad": float(e.abs().sum()) / 1000, "ramp_sad": float(e[r].abs().sum()) / 1000,
               "bias": float(e[r].mean())}
        for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
            m = (self.truth > lo) & (self.truth <= hi)
            out[f"{lo:.2f}-{hi:.2f}"] = float(e[m].mean())
        return out

    def layers(self, a: torch.Tensor, fg=None, bg=None):
        return solve_layers(self.I, a[None, None, :, None], self.Bn if bg is None else bg,
                            self.Fn if fg is None else fg, self.d["fg_weight"], None, None)

    def solve(self, prior, conf, smoothing, knn, x0=None, exact=True, tol=None, anet_weight=0.0):
        m, pull, diag, m64 = self.matrix(knn)
        d = smoothing * conf + RIDGE
        b = pull.double() + d * prior
        if exact:  # converged: float64 conjugate gradients to a relative residual of 1e-8
            x, _ = conjugate_gradients(m64, torch.zeros(0, 25), torch.zeros(0, dtype=torch.int64),
                                       d, b, (self.anet if x0 is None else x0), diag.double() + d, 1e-8, 20000)
            return x.clamp(0, 1)
        x, _ = conjugate_gradients(m, torch.zeros(0, 25), torch.zeros(0, dtype=torch.int64), d.float(), b.float(),
                                   (self.anet if x0 is None else x0).float(), diag + d.float(),
                                   self.s.tolerance if tol is None else tol, self.s.max_iterations)
        return x.double().clamp(0, 1)


def row(label: str, st: dict) -> str:
    bins = " ".join(f"{st[k]:+.3f}" for k in st if "-" in k)
    return f"  {label:<44} SAD {st['sad']:6.3f}  ramp SAD {st['ramp_sad']:6.3f}  bias {st['bias']:+.4f}  by truth [{bins}]"


def conf_of(dist, sigma2):
    return (1 - torch.exp(-(dist * dist) / sigma2)).reshape(-1)


def study(path: str) -> None:
    c = Case(path)
    s = c.s
    lv = lambda a: alpha_levels(a, s.black_point, s.white_point)  # noqa: E731
    print(f"\n{c.name}: {len(c.where)} unknown px, {int(c.ramp.sum())} in the ramp; bins of truth {BINS}")
    print(row("shipped result (as rendered)", c.stats(c.d["result_alpha"].double().reshape(-1)[c.where])))
    print(row("networks' alpha", c.stats(c.anet)))
    print(row("networks' alpha, levels", c.stats(lv(c.anet))))
    half = torch.full_like(c.anet, 0.5)
    Fh, Bh = c.layers(half)
    Fa, Ba = c.layers(c.anet)
    print(" data-term prior a^ = <I-B,F-B>/|F-B|^2 (all unknown px; bias over the ramp):")
    priors = {
        "F solved for 0.5 (shipped), B net": (Fh, c.Bn),
        "F solved for a_net, B net": (Fa, c.Bn),
        "F net, B net (no solve)": (c.Fn, c.Bn),
        "F true, B net": (c.Ft, c.Bn),
        "F net, B true": (c.Fn, c.Bt),
        "F solved for 0.5, B true": (Fh, c.Bt),
        "F solved for 0.5, B solved for 0.5": (Fh, Bh),
        "F true, B true": (c.Ft, c.Bt),
    }
    pri = {}
    for label, (f, b) in priors.items():
        p, dist = alpha_from_composite(c.I, b, f)
        pri[label] = (p.reshape(-1), dist)
        conf = conf_of(dist, s.confidence_scale)
        st = c.stats(p.reshape(-1))
        e = p.reshape(-1) - c.truth
        wbias = float((conf * e)[c.ramp].sum() / conf[c.ramp].sum())
        print(row(label, st) + f"  conf-weighted bias {wbias:+.4f}  mean conf {float(conf[c.ramp].mean()):.3f}")
    # distances: how far the networks' F and B are from the truth, along F-B
    print(" layers vs truth inside the ramp (linear, mean over channels):")
    for label, x, t in (("F net - F true", c.Fn, c.Ft), ("F solved(0.5) - F true", Fh, c.Ft),
                        ("B net - B true", c.Bn, c.Bt), ("B solved(0.5) - B true", Bh, c.Bt)):
        dd = (x - t)[0, :, :, 0]
        dirn = (c.Ft - c.Bt)[0, :, :, 0]
        along = (dd * dirn).sum(0) / ((dirn * dirn).sum(0) + 1e-4)
        print(f"  {label:<26} mean |d| {float(dd.abs().mean(0)[c.ramp].mean()):.4f}  "
              f"along (Ft-Bt), in units of |Ft-Bt|: mean {float(along[c.ramp].mean()):+.3f} "
              f"median {float(along[c.ramp].median()):+.3f}")
    print(" one round (shipped λ, σ², κ), alpha before levels / after levels:")
    sm, kn = s.smoothing, s.knn
    ph, dh = pri["F solved for 0.5 (shipped), B net"]
    conf = conf_of(dh, s.confidence_scale)
    a_cg = c.solve(ph, conf, sm, kn, exact=False)
    print(row("round 1, CG as shipped (tol 1e-4 from a_net)", c.stats(a_cg)))
    print(row("round 1, CG as shipped, levels", c.stats(lv(a_cg))))
    a_ex = c.solve(ph, conf, sm, kn, exact=True)
    print(row("round 1, exact solve", c.stats(a_ex)))
    print(row("round 1, exact solve, levels", c.stats(lv(a_ex))))
    a = a_cg
    for r in (2, 3):
        Fr, _ = c.layers(a)
        pr, dr = alpha_from_composite(c.I, c.Bn, Fr)
        a = c.solve(pr.reshape(-1), conf_of(dr, s.confidence_scale), sm, kn, x0=a, exact=False)
        print(row(f"round {r} (CG), before levels", c.stats(a)))
    print(" the same solve with the prior swapped (exact, shipped λ κ σ², before levels):")
    for label in ("F true, B true", "F true, B net", "F net, B true", "F solved for a_net, B net", "F net, B net (no solve)"):
        p, dist = pri[label]
        print(row(label, c.stats(c.solve(p, conf_of(dist, s.confidence_scale), sm, kn))))
    print(" weights (exact, shipped prior, before levels):")
    for lam in (0.0, 3e-5, 3e-4, 3e-3, 3e-2, 3e-1):
        for k in (0.0, kn):
            a = c.solve(ph, conf, lam if lam > 0 else 1e-12, k)
            print(row(f"λ {lam:g} κ {k:g}", c.stats(a)))
    print(" σ² (exact, shipped λ κ):")
    for sig in (0.01, 0.1, 1.0, 1e6):
        print(row(f"σ² {sig:g}", c.stats(c.solve(ph, conf_of(dh, sig), sm, kn))))


if __name__ == "__main__":
    for p in sys.argv[1:]:
        study(p)
