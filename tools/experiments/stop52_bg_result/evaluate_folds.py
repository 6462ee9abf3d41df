"""Stop 52: each fold's bundle with its background network trained for the result, evaluated as
the protocol evaluates a fold (``lbsmatte evaluate`` on its held-out photographs, both trimaps, and
on its held-out linear-light composites for the FG and BG layers), at the refinement and layers the
fold's nested choice recorded (inherited by the new bundle); the classical methods, the pipeline
without networks and the plate read from the protocol's kept scores of the same frames
(docs/cross_validation/folds/fold*/{evaluation,composites}.json), which no network changes.

    python tools/experiments/stop52_bg_result/evaluate_folds.py BUNDLES COMPOSITES

BUNDLES holds fold0/bundle, fold1/bundle, fold2/bundle (as written by the training commands of
HISTORY's stop 52 entry); the evaluations are kept beside them (evaluation.json, composites.json).
"""
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools"))
import cross_validate as cv  # noqa: E402

from core.evaluate import evaluate_dataset  # noqa: E402

bundles, composites = Path(sys.argv[1]), Path(sys.argv[2])
data = cv._default_root()
parts = cv.folds(cv.objects(data), 3)
kept = ROOT / "docs" / "cross_validation" / "folds"
rows: dict[str, dict[str, dict[str, list[float]]]] = {}
for k, held in enumerate(parts):
    fold = bundles / f"fold{k}"
    if not (fold / "bundle" / "manifest.json").exists():
        print(f"fold {k}: no bundle yet at {fold / 'bundle'}: run again when it is trained")
        continue
    cv.check_held_out(fold / "bundle", held)
    if not (fold / "evaluation.json").exists():
        evaluate_dataset(data / "alphamatting", weights=str(fold / "bundle"), baselines=None, device="cpu", names=held,
                         trimaps=list(cv.VARIANTS), ablations=True, json_path=fold / "evaluation.json", progress=False)
    if not (fold / "composites.json").exists():
        evaluate_dataset(composites, weights=str(fold / "bundle"), baselines=None, device="cpu",
                         names=cv._composites_of(composites, held), trimaps=list(cv.VARIANTS), ablations=True,
                         json_path=fold / "composites.json", progress=False)
    for kind in ("evaluation", "composites"):
        new = json.loads((fold / f"{kind}.json").read_text())["variants"]
        old = json.loads((kept / f"fold{k}" / f"{kind}.json").read_text())["variants"]
        for variant, block in old.items():
            for image, scores in block["images"].items():
                mine = new[variant]["images"][image]
                # The same frames and the same pipeline without networks: a check that nothing else moved
                # (within what another thread count's order of sums moves, the README's farm-node table).
                assert abs(mine["no_networks"]["sad"] / scores["no_networks"]["sad"] - 1) < 1e-3, (image, variant)
                merged = {f"{m} (stop 50)": s for m, s in scores.items() if m in ("lbsmatte", "networks_alone")}
                merged |= {m: s for m, s in scores.items() if m not in ("lbsmatte", "networks_alone")}
                merged |= {m: mine[m] for m in ("lbsmatte", "networks_alone")}
                for method, metrics in merged.items():
                    for metric in ("sad", "grad", "fg_sad", "bg_sad"):
                        if metric in metrics:
                            key = f"{kind} {variant}"
                            rows.setdefault(key, {}).setdefault(method, {}).setdefault(metric, []).append(metrics[metric])
                            rows.setdefault(f"{kind} both", {}).setdefault(method, {}).setdefault(metric, []).append(
                                metrics[metric])
if any(not (bundles / f"fold{k}" / "composites.json").exists() for k in range(3)):
    sys.exit(0)
summary = {block: {m: {metric: float(np.mean(v)) for metric, v in per.items()} for m, per in methods.items()}
           for block, methods in rows.items()}
(bundles / "summary.json").write_text(json.dumps(summary, indent=1))
for block, methods in summary.items():
    print(f"== {block} ==")
    for m, per in methods.items():
        print(f"  {m:28s} " + "  ".join(f"{metric} {v:.3f}" for metric, v in per.items()))
photos = summary["evaluation both"]
best = min(photos["closed_form"]["sad"], photos["knn"]["sad"]), min(photos["closed_form"]["grad"], photos["knn"]["grad"])
print("LBSMatte / better classical: SAD %.3f  Grad %.3f" % (photos["lbsmatte"]["sad"] / best[0],
                                                            photos["lbsmatte"]["grad"] / best[1]))
print("LBSMatte / no networks:      SAD %.3f  Grad %.3f" % (photos["lbsmatte"]["sad"] / photos["no_networks"]["sad"],
                                                            photos["lbsmatte"]["grad"] / photos["no_networks"]["grad"]))
