"""Stop 52: the packaged ``default`` bundle with its background network trained for the result.

TRAINED is ``lbsmatte train --from core/bundles/default --steps 240,0,0 --result-weight 5
--result-refinement core/bundles/default ...`` (HISTORY, stop 52). Its foreground and matting
networks are the default's, its refinement the one the cross-validation chose for the default
(recorded again as chosen, with where it was chosen); its manifest keeps the training record
(the default's own under ``continued_from``), the cross-validation report that chose the
refinement, and the held-out summary of the folds trained the same way (SUMMARY:
``evaluate_folds.py``'s summary.json).

    python tools/experiments/stop52_bg_result/ship.py TRAINED SUMMARY
"""
import json
import sys
from pathlib import Path

from core.weights import INHERITED, default_bundle_path, load_bundle, save_bundle

trained, summary = load_bundle(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
current = load_bundle(str(default_bundle_path()))
refinement = dict(current.manifest["refinement"])
if INHERITED in refinement or not refinement.get("chosen_on"):
    sys.exit(f"{current.path} has no chosen refinement of its own to keep")
inherited = dict(trained.manifest.get("refinement") or {})
inherited.pop(INHERITED, None)
if any(inherited.get(k) != v for k, v in refinement.items() if k != "chosen_on"):
    sys.exit(f"{trained.path} was trained for another refinement than {current.path}'s")
training = dict(trained.manifest["training"])
earlier = (training.get("continued_from") or {}).get("training") or {}
# The protocol's report stays where --ship puts it (stop 50's, which chose the refinement); the
# held-out figures of the folds trained for the result the same way go beside it.
training["cross_validation"] = earlier.pop("cross_validation", None) or current.manifest["training"]["cross_validation"]
training["trained_for_the_result"] = {
    "protocol": "stop 52: each fold's stop-50 bundle with its background network trained 240 steps further for the "
                "refined result through the fold's nested refinement, scored on the fold's held-out objects at that "
                "refinement (docs/cross_validation/HISTORY.md; tools/experiments/stop52_bg_result)",
    "held_out": summary,
}
nets = trained.load_networks("cpu")
# The release step: the one writer allowed to replace the packaged bundle, as tools/cross_validate.py --ship.
save_bundle(current.path, nets, name="default", storage="float16", overwrite=True, replace_packaged=True,
            training=training, refinement=refinement,
            data_terms=trained.manifest.get("training_data_terms") or current.manifest.get("training_data_terms"),
            description=(
    "small networks trained from scratch on all 18 alphamatting objects (composites with procedural foregrounds over "
    "background photos, and the objects' own photographs) with the recipe evaluated by leave-objects-out "
    "cross-validation (tools/cross_validate.py), the background network then trained 240 steps further for the "
    "refined result (stop 52; its held-out summary is under training.trained_for_the_result)"))
print(f"wrote {current.path}")
