"""Exploratory (stop 51): the data term trusted more in the rounds after the first, whose F is
solved for the previous round's alpha instead of 0.5: λ × GAIN from the second round on (the first
round's λ as recorded). Each fold's held-out photographs (docs/cross_validation/folds), the shipped
bundle's pooled refinement (2 rounds, λ 3e-4, κ 0.005, levels 0.06 / 0.92, ``sample_alpha`` half)
for every fold, with the fold's networks (``nets``) or none (``none``); fp32, one thread. The
refinement's body is patched here (a copy of core.compositing.refine_with with the gain), nothing
in core changes. Resumable; writes runs/stop51_round_gain_<which>.json.

    python tools/experiments/stop51_round_gain/round_gain.py nets
    python tools/experiments/stop51_round_gain/round_gain.py none
"""
import inspect
import json
import sys
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
import cross_validate as cv  # noqa: E402

import core.compositing as compositing  # noqa: E402
from core.pipeline import Matter  # noqa: E402

GAINS = (1.0, 3.0, 10.0)
GAIN = {"value": 1.0}
source = textwrap.dedent(inspect.getsource(compositing.refine_with))
line = "d = smoothing * confidence.reshape(-1) + ridge"
assert source.count(line) == 1
namespace = dict(vars(compositing), _GAIN=GAIN)
exec(source.replace(line, "d = smoothing * (_GAIN['value'] if done > 0 else 1.0) * confidence.reshape(-1) + ridge"),
     namespace)
compositing.refine_with = namespace["refine_with"]

SHIPPED = {"rounds": 2, "smoothing": 3e-4, "confidence_scale": 0.1, "knn": 0.005, "network_weight": 0.0,
           "knn_neighbours": 20, "knn_position": 0.02, "knn_band": 32, "knn_stride": 3, "black_point": 0.06,
           "white_point": 0.92, "sample_alpha": "half"}
which = sys.argv[1] if len(sys.argv) > 1 else "nets"
data = cv._default_root()
out = ROOT / "runs" / f"stop51_round_gain_{which}.json"
out.parent.mkdir(exist_ok=True)
done = json.loads(out.read_text()) if out.exists() else {}
for k, names in enumerate(cv.folds(cv.objects(data), 3)):
    bundle = ROOT / "docs" / "cross_validation" / "folds" / f"fold{k}" / "bundle"
    m = Matter("none" if which == "none" else str(bundle), device="cpu", precision="fp32", threads=1, **SHIPPED)
    for gain in GAINS:
        GAIN["value"] = gain
        for name in names:
            for v in cv.VARIANTS:
                key = f"{gain:g} {name} {v}"
                if key in done:
                    continue
                plate, trimap, gt = cv._read_frame(data, name, v)
                done[key] = list(cv._scorer(gt, trimap)(m.matte(plate, trimap, colour="srgb").alpha))
                out.write_text(json.dumps(done))
                print(k, key, np.round(done[key], 3), flush=True)
folds = cv.folds(cv.objects(data), 3)
for gain in GAINS:
    per = [np.mean([done[f"{gain:g} {n} {v}"] for n in names for v in cv.VARIANTS], 0) for names in folds]
    print(f"{which} gain {gain:g}: SAD / Grad {np.mean(per, 0).round(4)}; folds "
          + ", ".join(f"{p[0]:.3f} / {p[1]:.3f}" for p in per))
