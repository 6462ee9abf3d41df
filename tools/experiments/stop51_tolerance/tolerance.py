"""Exploratory (stop 51): the conjugate gradients' stopping tolerance 1e-5 against 1e-4 on each
fold's held-out photographs (docs/cross_validation/folds), at the refinement the fold's nested
choice recorded (chosen at 1e-4), with the fold's networks (``nets``) and with none (``none``),
fp32 on the CPU, one thread. Resumable; writes runs/stop51_tolerance_<which>.json.

    python tools/experiments/stop51_tolerance/tolerance.py nets
    python tools/experiments/stop51_tolerance/tolerance.py none
"""
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
import cross_validate as cv  # noqa: E402

from core.pipeline import Matter  # noqa: E402

which = sys.argv[1] if len(sys.argv) > 1 else "nets"
data = cv._default_root()
out = ROOT / "runs" / f"stop51_tolerance_{which}.json"
out.parent.mkdir(exist_ok=True)
done = json.loads(out.read_text()) if out.exists() else {}
KEYS = ("rounds", "smoothing", "confidence_scale", "knn", "network_weight", "knn_neighbours", "knn_position",
        "knn_band", "knn_stride", "black_point", "white_point", "sample_alpha")
for k, names in enumerate(cv.folds(cv.objects(data), 3)):
    bundle = ROOT / "docs" / "cross_validation" / "folds" / f"fold{k}" / "bundle"
    ref = json.loads((bundle / "manifest.json").read_text())["refinement"]
    settings = {key: ref[key] for key in KEYS}
    for tol in (1e-4, 1e-5):
        m = Matter("none" if which == "none" else str(bundle), device="cpu", precision="fp32", threads=1,
                   tolerance=tol, **settings)
        for name in names:
            for v in cv.VARIANTS:
                key = f"{tol:g} {name} {v}"
                if key in done:
                    continue
                plate, trimap, gt = cv._read_frame(data, name, v)
                done[key] = list(cv._scorer(gt, trimap)(m.matte(plate, trimap, colour="srgb").alpha))
                out.write_text(json.dumps(done))
                print(k, key, done[key], flush=True)
for tol in ("0.0001", "1e-05"):
    scores = [x for key, x in done.items() if key.startswith(tol + " ")]
    print(f"{which} tolerance {tol}: SAD / Grad {np.mean(scores, 0).round(4)} over {len(scores)} frames")
