"""The data term raised deep in the unknown band: python tools/experiments/stop34_confidence/depth_trust.py

The oracle's gain lies 8-64 px from the nearest known pixel (oracle_where.py), where the
Laplacian carries little from the known regions. Here, with no learned confidence: the data term
``λ c`` plus ``λ_deep c`` where the pixel lies more than D px from any known pixel, on the 36
held-out photo frames, for the fold networks (dump.py photo) and for the parameter-free priors
(dump.py photo_none), each fold's (λ_deep, D) chosen on the other two folds (mean SAD + mean
gradient error), scored on its own. A gain that the priors get as well is the classical step's."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))
from common import FOLDS, FRAMES, LAM, full_alpha, scorer, solve  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
VARIANTS = [(0.0, 0)] + [(lam, depth) for lam in (3e-4, 1e-3, 3e-3) for depth in (8, 16, 32)]


def scores(prefix: str, variants: list, alpha) -> list[dict[tuple[float, int], list[tuple[float, float]]]]:
    """Per fold: {variant: [(SAD, Grad) per frame]}, ``alpha(state, depth, variant)`` the unknown
    pixels' alpha of a variant (``depth``: each unknown pixel's distance to the nearest known one)."""
    out = []
    for names in FOLDS:
        table: dict[tuple[float, int], list[tuple[float, float]]] = {v: [] for v in variants}
        for name in names:
            for trimap in ("Trimap1", "Trimap2"):
                path = FRAMES / f"{prefix}_{name}_{trimap}.pt"
                s = torch.load(path, weights_only=False) | {"path": path}
                score = scorer(s)
                depth = torch.from_numpy(ndimage.distance_transform_edt(s["unknown"]).reshape(-1)[s["where"]]).float()
                for v in variants:
                    table[v].append(score(full_alpha(s, alpha(s, depth, v))))
        out.append(table)
    return out


def raised(s: dict, depth: torch.Tensor, variant: tuple[float, int]) -> torch.Tensor:
    """The shipped data term plus ``λ_deep c`` beyond D px."""
    lam, beyond = variant
    return solve(s, LAM * s["conf"] + lam * s["conf"] * (depth > beyond).float()) if lam else s["a1"]


def mean(rows: list[tuple[float, float]]) -> tuple[float, float]:
    return float(np.mean([r[0] for r in rows])), float(np.mean([r[1] for r in rows]))


def nested(tables: list[dict]) -> tuple[tuple[float, float], list]:
    rows, chosen = [], []
    variants = list(tables[0])
    for k in range(3):
        best = min(variants, key=lambda v, k=k: sum(mean([r for j in range(3) if j != k for r in tables[j][v]])))
        chosen.append(best)
        rows += tables[k][best]
    return mean(rows), chosen


def report(title: str, tables: list[dict], describe) -> None:
    """The nested score and each variant's pooled (in-sample) score and per-fold SAD;
    ``describe(variant)`` names a variant."""
    (sad, grad), chosen = nested(tables)
    print(f"{title}: nested {sad:.3f} / {grad:.3f}, chosen {chosen}")
    for v in tables[0]:
        m = mean([r for t in tables for r in t[v]])
        per_fold = " ".join(f"{mean(t[v])[0]:.2f}" for t in tables)
        print(f"  {describe(v)}: pooled (in-sample) {m[0]:.3f} / {m[1]:.3f}; folds {per_fold}")


def main() -> None:
    for title, prefix in (("networks", "photo"), ("priors (no networks)", "photo_none")):
        report(title, scores(prefix, VARIANTS, raised), lambda v: f"λ_deep {v[0]:g} beyond {v[1]} px")


if __name__ == "__main__":
    main()
