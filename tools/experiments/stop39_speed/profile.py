"""Where a 1080p frame's time goes with the shipped bundle, step by step (README, Benchmarks):
python tools/experiments/stop39_speed/profile.py [--threads 2] [--runs 3] [-- extra Matter settings as key=value]

The whole-process benchmark's three frames (bench/bench_process.py: GT24, GT13, GT21 over photos,
1920×1080, 10 % unknown), `Matter(profile=True)` with the default bundle, one warm-up frame, then
``--runs`` timed passes over the three; medians of each step's seconds and the iterations."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("settings", nargs="*", help="Matter settings, key=value (JSON values)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from bench.bench_process import BACKGROUNDS, OBJECTS
    from bench.frames import build_frame
    from core.pipeline import Matter

    given = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.settings)}
    frames = [build_frame(1920, 1080, 0.10, data=ROOT.parent / "shared" / "data", obj=OBJECTS[i],
                          background=BACKGROUNDS[i], seed=i) for i in range(args.frames)]
    matter = Matter(profile=True, threads=args.threads, **given)
    matter.matte(frames[0].plate, frames[0].trimap, colour="srgb")
    laps: dict[str, list[float]] = {}
    for _ in range(args.runs):
        for i, f in enumerate(frames):
            t0 = time.perf_counter()
            result = matter.matte(f.plate, f.trimap, colour="srgb")
            laps.setdefault("wall", []).append(time.perf_counter() - t0)
            for step, s in matter.stats.seconds.items():
                laps.setdefault(step, []).append(s)
            laps.setdefault("iterations", []).append(float(sum(matter.stats.iterations or [0])))
            laps.setdefault(f"sad frame {i}", []).append(float(abs(result.alpha - f.alpha).sum() / 1000))
    for step, values in laps.items():
        print(f"{step:>24}: median {statistics.median(values):.3f}  ({', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
