"""Nested choice of the data-term variant: python tools/experiments/stop34_confidence/nest.py TAG [TAG ...]

Each fold's variant is chosen on the other two folds' held-out frames (lowest mean SAD + mean
gradient error) and scored on its own; the oracle is printed for reference, never chosen. The
pooled line is in-sample (every variant on all three folds): insight, not a result."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import WORK  # noqa: E402


def mean(tables: list[dict], variant: str) -> tuple[float, float]:
    rows = [r[variant] for t in tables for r in t.values()]
    return float(np.mean([r[0] for r in rows])), float(np.mean([r[1] for r in rows]))


def report(tag: str) -> None:
    tables = [json.loads((WORK / f"eval_fold{k}_{tag}.json").read_text()) for k in range(3)]
    variants = [v for v in next(iter(tables[0].values())) if not v.startswith("oracle")]
    chosen, nested = [], []
    for k in range(3):
        others = [tables[j] for j in range(3) if j != k]
        best = min(variants, key=lambda v, o=others: sum(mean(o, v)))
        chosen.append(best)
        nested += [r[best] for r in tables[k].values()]
    sad, grad = np.mean([r[0] for r in nested]), np.mean([r[1] for r in nested])
    base, oracle = mean(tables, "base"), mean(tables, "oracle_0.03")
    print(f"{tag}: chosen {chosen}; nested {sad:.3f}/{grad:.3f}; base {base[0]:.3f}/{base[1]:.3f}; "
          f"oracle {oracle[0]:.3f}/{oracle[1]:.3f}")
    for k in range(3):
        b, c = mean([tables[k]], "base"), mean([tables[k]], chosen[k])
        rest = " ".join(f"{v}:{mean([tables[k]], v)[0]:.2f}" for v in variants[1:])
        print(f"  fold {k} base {b[0]:.3f}/{b[1]:.3f} chosen {c[0]:.3f}/{c[1]:.3f} {rest}")
    pooled = " ".join(f"{v}:{mean(tables, v)[0]:.2f}/{mean(tables, v)[1]:.2f}" for v in [*variants, "oracle_0.03"])
    print(f"  pooled (in-sample): {pooled}")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        report(name)
