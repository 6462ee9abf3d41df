#!/bin/sh
# Stop 36's figures (docs/cross_validation/HISTORY.md, "Stop 36"), about an hour on 2 cores.
# Needs stop 34's dumped frames (runs/conf/frames: dump.py photo and photo_none) and the linear
# composites; makes whichever of them are missing first. Writes only to the ignored runs/ and devdata/.
set -e
cd "$(dirname "$0")/../../.."
[ -d devdata/composites_linear ] || python tools/make_validation_composites.py --objects all --linear --out devdata/composites_linear
python tools/experiments/stop34_confidence/dump.py photo
python tools/experiments/stop34_confidence/dump.py photo_none
E=tools/experiments/stop36_shape
python $E/demo_bins.py
for prefix in photo photo_none; do
  python $E/extremes.py $prefix
  python $E/sigma.py $prefix
  python $E/subtract.py $prefix
done
python $E/extremes.py photo bg
