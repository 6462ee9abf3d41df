#!/bin/sh
# Makes what the later stops' experiments read, where it is missing: the linear composites
# (devdata/composites_linear) and stop 34's dumped photo frames (runs/conf/frames: dump.py photo
# and photo_none; dump.py skips the frames it has). Run from the repository root.
set -e
[ -d devdata/composites_linear ] || python tools/make_validation_composites.py --objects all --linear --out devdata/composites_linear
python tools/experiments/stop34_confidence/dump.py photo
python tools/experiments/stop34_confidence/dump.py photo_none
