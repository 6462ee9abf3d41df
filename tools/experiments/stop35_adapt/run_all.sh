#!/bin/sh
# Stop 35's figures (docs/cross_validation/HISTORY.md, "Stop 35"), about 2 hours on 2 cores.
# Needs stop 34's dumped frames (runs/conf/frames: dump.py photo and photo_none) and the linear
# composites; makes whichever of them are missing first. Writes only to the ignored runs/ and devdata/.
set -e
cd "$(dirname "$0")/../../.."
sh tools/experiments/stop34_confidence/ensure_dumps.sh
E=tools/experiments/stop35_adapt
python $E/warm_start.py
python $E/flips.py photo
python $E/mix_layers.py
for prefix in photo photo_none; do
  python $E/knn_layers.py $prefix
  python $E/shrink.py $prefix
  python $E/frame_lambda.py $prefix
done
OBJECTS=6 python $E/feasibility.py 0 60
OBJECTS=2 LR=3e-4 python $E/feasibility.py 0 200
python $E/adapt_photos.py
