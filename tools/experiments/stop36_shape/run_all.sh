#!/bin/sh
# Stop 36's figures (docs/cross_validation/HISTORY.md, "Stop 36"), about 3 hours on 2 cores.
# Needs stop 34's dumped frames (runs/conf/frames: dump.py photo and photo_none) and the linear
# composites; makes whichever of them are missing first. Writes only to the ignored runs/ and devdata/.
set -e
cd "$(dirname "$0")/../../.."
sh tools/experiments/stop34_confidence/ensure_dumps.sh
E=tools/experiments/stop36_shape
python $E/share_by_frame.py
python $E/demo_bins.py
for prefix in photo photo_none; do
  python $E/extremes.py $prefix
  python $E/sigma.py $prefix
  python $E/subtract.py $prefix
  python $E/samples.py $prefix
  python $E/explained.py $prefix
  python $E/knn_band.py $prefix
done
python $E/knn_band_protocol.py networks
python $E/knn_band_protocol.py none
python $E/extremes.py photo bg
