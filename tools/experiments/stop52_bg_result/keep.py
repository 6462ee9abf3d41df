"""Stop 52: keep a fold's background network trained for the result in the repository, and put
its bundle together again.

Only what training changed is kept, beside the fold's bundle: ``stop52_background.safetensors``
(the background network in float16, as the fold bundles store theirs) and
``stop52_manifest.json`` (the trained bundle's manifest: its training record, the refinement
inherited from the fold's nested choice). ``assemble`` writes the bundle again from those and the
fold bundle's foreground and matting networks, stored in float16 like the fold bundles: the
bundles HISTORY's stop 52 entry scored.

    python tools/experiments/stop52_bg_result/keep.py store TRAINED FOLD_DIR
    python tools/experiments/stop52_bg_result/keep.py assemble FOLD_DIR OUT
"""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from core.nets import build_network
from core.weights import load_bundle, save_bundle

mode, a, b = sys.argv[1:4]
if mode == "store":
    trained, fold = load_bundle(a), Path(b)
    net = trained.load_network("background", "cpu")
    save_file({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in net.state_dict().items()},
              str(fold / "stop52_background.safetensors"), metadata={"format": "pt", "role": "background"})
    (fold / "stop52_manifest.json").write_text(json.dumps(trained.manifest, indent=1) + "\n")
    print(f"stored {fold / 'stop52_background.safetensors'} and stop52_manifest.json")
elif mode == "assemble":
    fold, out = Path(a), Path(b)
    manifest = json.loads((fold / "stop52_manifest.json").read_text())
    nets = load_bundle(str(fold / "bundle")).load_networks("cpu")
    background = build_network(manifest["networks"]["background"]["config"])
    background.load_state_dict({k: v.float() for k, v in load_file(str(fold / "stop52_background.safetensors")).items()})
    nets["background"] = background.eval()
    save_bundle(out, nets, name=f"{json.loads((fold / 'bundle' / 'manifest.json').read_text())['name']}_stop52",
                description=manifest["description"], parent=manifest.get("parent"), training=manifest.get("training"),
                storage="float16", refinement=manifest.get("refinement"), data_terms=manifest.get("training_data_terms"),
                overwrite=True)
    print(f"wrote {out}")
else:
    sys.exit(f"unknown mode {mode!r}: store or assemble")
