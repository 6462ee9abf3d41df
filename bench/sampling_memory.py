"""Peak memory and time of one sampling network on a whole frame, on this machine.

Each size runs in a fresh process so peak RSS belongs to that size alone:

    python bench/sampling_memory.py --sizes 2048x1152 4096x2304 --role background

Prints a table and, with --json, writes the figures. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _one(role: str, size: str, width: int, height: int, unknown: float, repeats: int) -> dict:
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
        for _ in range(repeats):
            t = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # KiB -> GiB
    return {"role": role, "size": size, "width": width, "height": height, "seconds": min(times),
            "peak_rss_gib": peak, "threads": torch.get_num_threads(),
            "attention_rate": net.attention.matching_rate(height // 4, width // 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["2048x1152", "4096x2304"])
    parser.add_argument("--role", default="background", choices=["background", "foreground"])
    parser.add_argument("--config", default="small", choices=["small", "paper"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        w, h = map(int, args.child.split("x"))
        print(json.dumps(_one(args.role, args.config, w, h, 0.10, args.repeats)))
        return
    rows = []
    for size in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", size, "--role", args.role, "--config", args.config,
             "--repeats", str(args.repeats)], capture_output=True, text=True, check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'network':<12}{'config':<8}{'frame':>12}{'seconds':>10}{'peak RSS GiB':>14}{'attn rate':>10}")
    for r in rows:
        print(f"{r['role']:<12}{r['size']:<8}{r['width']:>6}x{r['height']:<5}{r['seconds']:>10.2f}"
              f"{r['peak_rss_gib']:>14.2f}{r['attention_rate']:>10}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
