#!/bin/sh
# Stop 34's confidence experiment, start to end, on 2 cores (about 2 hours; everything it writes
# goes to the ignored runs/conf and devdata). Needs Blender for the renders (Debian: apt-get
# install blender) and the linear composites; see docs/cross_validation/HISTORY.md, stop 34.
set -e
cd "$(dirname "$0")/../../.."
X=tools/experiments/stop34_confidence
[ -d devdata/composites_linear ] || python tools/make_validation_composites.py --objects all --linear --out devdata/composites_linear
python tools/render_foregrounds.py --out devdata/rendered --count 73
# One thread each, as it was run (two of these at a time): on 2 cores a torch process with two
# threads beside another busy one took 20 s for a frame's state that took 1.2 s with one thread.
export THREADS=1
python $X/dump.py photo
python $X/dump.py photo_none
python $X/dump.py comp
python $X/dump.py render 0 73
python $X/dump.py proc 0 100
for k in 0 1 2; do python $X/train_conf.py $k obj 800 0 0; done
for k in 0 1 2; do python $X/train_conf.py $k rend 800 0.5 0; done
for k in 0 1 2; do python $X/train_conf.py $k rp 800 0.35 0.35; done
for k in 0 1 2; do MODE=cons python $X/train_conf.py $k consrp 800 0.35 0.35; done
for tag in obj rend rp consrp; do for k in 0 1 2; do python $X/eval.py $k $tag; done; done
python $X/nest.py obj rend rp consrp
python $X/oracle_where.py
python $X/depth_trust.py
python $X/depth_network.py
python $X/two_priors.py
