"""Peak memory and time of one sampling network on a whole frame, on this machine.

Each size runs in a fresh process so peak RSS belongs to that size alone (the process's own
high-water mark, ``VmHWM``). Time: the median of ``--repeats`` timed passes after ``--warmup``
untimed ones (torch's first pass at a shape sets up its kernels and memory):

    python bench/sampling_memory.py --sizes 2048x1152 4096x2304 --role background

Prints a table and, with --json, writes the figures. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the child runs as bench/sampling_memory.py: this checkout's core, not an installed one
    sys.path.insert(0, str(ROOT))


def peak_rss_gib() -> float:
    """This process's largest resident memory, GiB: ``VmHWM`` (its own address space's high-water
    mark). ``ru_maxrss`` is the fallback where there is no ``/proc``: on Linux it also counts the
    process that started this one (a ``vfork``-ed child inherits its parent's high-water mark)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _one(role: str, size: str, width: int, height: int, unknown: float, repeats: int, warmup: int = 1) -> dict:
    import numpy as np
    import torch

    from core.nets import build_network, network_config

    torch.manual_seed(0)
    net = build_network(network_config(role, size)).eval()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((1, net.in_channels, height, width), dtype=np.float32))
    # A realistic mask: a band of `unknown` of the frame around an object in the middle.
    yy, xx = np.mgrid[0:height, 0:width]
    r = np.hypot((yy - height / 2) / height, (xx - width / 2) / width)
    band = unknown / (2 * np.pi * 0.25) / 2
    mask = (r < 0.25 + band).astype(np.float32)
    x[0, 3] = torch.from_numpy(mask)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            net(x)
        for _ in range(repeats):
            t = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t)
    peak = peak_rss_gib()
    return {"role": role, "size": size, "width": width, "height": height, "seconds": statistics.median(times),
            "all_seconds": times, "warmup": warmup,
            "peak_rss_gib": peak, "threads": torch.get_num_threads(),
            "attention_rate": net.attention.matching_rate(height // 4, width // 4)}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["2048x1152", "4096x2304"])
    parser.add_argument("--role", default="background", choices=["background", "foreground"])
    parser.add_argument("--config", default="small", choices=["small", "paper"])
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the median is reported (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes first (default 1)")
    parser.add_argument("--json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        w, h = map(int, args.child.split("x"))
        print(json.dumps(_one(args.role, args.config, w, h, 0.10, args.repeats, args.warmup)))
        return []
    rows = []
    for size in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", size, "--role", args.role, "--config", args.config,
             "--repeats", str(args.repeats), "--warmup", str(args.warmup)], capture_output=True, text=True, check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'network':<12}{'config':<8}{'frame':>12}{'median s':>10}{'peak RSS GiB':>14}{'attn rate':>10}")
    for r in rows:
        print(f"{r['role']:<12}{r['size']:<8}{r['width']:>6}x{r['height']:<5}{r['seconds']:>10.2f}"
              f"{r['peak_rss_gib']:>14.2f}{r['attention_rate']:>10}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)  # as bench_pipeline.py: not a traceback after the run
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    # SIGTERM (a scheduler, `timeout`) unwinds like Ctrl-C: subprocess.run then kills the child
    # measuring a size (it was left running, a whole 4K frame's worth of memory, after its parent died).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    main()
