"""Time and memory of the LBSMatte pipeline next to pymatting's closed-form + multilevel foreground.

On the same synthetic frames (a real matted alphamatting.com object composited over a real
photo, scaled to the frame; a trimap whose unknown band holds a chosen share of the pixels, see
``bench/frames.py``) it measures, per frame size and band:

- the whole pipeline (:class:`core.pipeline.Matter`, networks loaded once per process and reused
  across frames): wall seconds per frame (median of ``--runs`` after ``--warmup``), CPU seconds,
  peak memory (RSS; on CUDA also ``torch.cuda.max_memory_allocated``), each network's share
  (timed inside the pipeline, ``Matter(profile=True)``), each network's multiply-accumulates
  (``torch.utils.flop_counter.FlopCounterMode``) and, where the device's peak throughput is
  known (H100/H200 table, or ``--peak-tflops``), the time that peak would need for them;
- the alternative a TD could use today: ``pymatting.estimate_alpha_cf`` then
  ``estimate_foreground_ml`` on the whole frame, same plate, same trimap;
- the ratios (speed-up, memory), which stay meaningful on a shared, noisy machine where the
  seconds do not.

Each method runs in a fresh process (``--no-isolate`` to run in this one), so each peak
belongs to that method alone. A benchmark, not a test::

    nice -n 19 python bench/bench_pipeline.py                       # CPU, the default bundle
    python bench/bench_pipeline.py --weights untrained-small        # seeded untrained small networks
    python bench/bench_pipeline.py --device cuda --precision bf16 --compile
    python bench/bench_pipeline.py --sizes 256x144 --runs 1 --warmup 0 --json /tmp/b.json

Prints tables and writes JSON (``--json``, default ``bench/results/bench_pipeline.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.frames import DEFAULT_DATA, DEFAULT_OBJECT, build_frame  # noqa: E402
from bench.sampling_memory import peak_rss_gib  # noqa: E402  (each process's own VmHWM)

RESULTS = ROOT / "bench" / "results"
DEFAULT_SIZES = ("1920x1080", "2048x1152", "3840x2160")
ROLES = ("background", "foreground", "alpha")
UNTRAINED_LABEL = "(untrained weights: timing only)"
_MARK = "BENCH_RESULT "

#: Dense peak throughput in TFLOPS by GPU and arithmetic (vendor data sheets, no sparsity).
#: fp16/bf16 are tensor-core figures; "tf32" is what float32 convolutions use on these GPUs
#: while ``torch.backends.cudnn.allow_tf32`` is on (PyTorch's default).
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200 NVL": {"fp16": 835.0, "bf16": 835.0, "tf32": 417.5, "fp32": 60.0},
    "H200": {"fp16": 989.4, "bf16": 989.4, "tf32": 494.7, "fp32": 66.9},
    "H100 NVL": {"fp16": 835.0, "bf16": 835.0, "tf32": 417.5, "fp32": 60.0},
    "H100 PCIe": {"fp16": 756.5, "bf16": 756.5, "tf32": 378.0, "fp32": 51.2},
    "H100": {"fp16": 989.4, "bf16": 989.4, "tf32": 494.7, "fp32": 66.9},  # SXM5
    "A100": {"fp16": 312.0, "bf16": 312.0, "tf32": 156.0, "fp32": 19.5},
}


# ----------------------------------------------------------------------------------------------
# Measurements (run in a child process, or in this one with --no-isolate)
# ----------------------------------------------------------------------------------------------
def _rss_gib() -> float:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    except OSError:
        return float("nan")


def _errors(alpha: Any, truth: Any, trimap: Any) -> dict[str, float]:
    """SAD (/1000) and MSE over the unknown band against the frame's exact alpha."""
    import numpy as np

    u = trimap == 0.5
    d = np.asarray(alpha, np.float64)[u] - np.asarray(truth, np.float64)[u]
    return {"sad": float(np.abs(d).sum() / 1000.0), "mse": float((d * d).mean()) if d.size else 0.0}


def measure_pipeline(frame_dir: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Load the networks once, warm up, time ``runs`` frames, then count each network's MACs."""
    import numpy as np
    import torch

    from core.pipeline import Matter

    plate = np.load(frame_dir / "plate.npy")
    trimap = np.load(frame_dir / "trimap.npy")
    truth = np.load(frame_dir / "alpha.npy")
    t0 = time.perf_counter()
    matter = Matter(
        settings["bundle"], device=settings["device"], fallback=False, allow_untrained=settings["untrained"],
        threads=settings["threads"], precision=settings["precision"], channels_last=settings["channels_last"],
        compile=settings["compile"], tile=settings["tile"], profile=True,
        **({} if settings.get("alpha_context") == "default" else {"alpha_context": settings["alpha_context"]}),
        **({} if settings.get("rounds") is None else {"rounds": settings["rounds"]}),
    )
    load_s = time.perf_counter() - t0
    cuda = matter.device.type == "cuda"
    # On CUDA the per-step laps synchronise the device: time whole frames without them.
    matter.profile = not cuda
    rss_loaded = _rss_gib()
    warm: list[float] = []
    for _ in range(settings["warmup"]):
        t = time.perf_counter()
        matter.matte(plate, trimap, colour="srgb")
        warm.append(time.perf_counter() - t)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    wall: list[float] = []
    cpu: list[float] = []
    stages: dict[str, list[float]] = {}
    result = None
    for _ in range(settings["runs"]):
        t, c = time.perf_counter(), time.process_time()
        result = matter.matte(plate, trimap, colour="srgb")
        if cuda:
            torch.cuda.synchronize()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        for key, value in matter.stats.seconds.items():
            stages.setdefault(key, []).append(value)
    out: dict[str, Any] = {
        "device": str(matter.device),
        "device_name": torch.cuda.get_device_name(matter.device) if cuda else _cpu_name(),
        "threads": matter.threads or torch.get_num_threads(),  # Matter sets its threads per call only
        "precision": str(matter.dtype).replace("torch.", "") if matter.dtype is not None else "float32",
        "channels_last": matter.channels_last,
        "load_seconds": load_s,
        "warmup_seconds": warm,
        "seconds": wall,
        "cpu_seconds": cpu,
        "peak_rss_gib": peak_rss_gib(),
        "rss_after_load_gib": rss_loaded,
        "box": matter.stats.box,
        "padded": matter.stats.padded,
        "tiles": matter.stats.tiles,
        "computed_pixels": matter.stats.computed,
        "box_fraction": matter.stats.box_fraction,
        "computed_fraction": matter.stats.computed_fraction,
        "refine_iterations": list(matter.stats.iterations),
    }
    if cuda:
        out["cuda_peak_gib"] = torch.cuda.max_memory_allocated(matter.device) / 2**30
        # Per-network shares from separate, synchronised runs (as many as the timed ones).
        matter.profile = True
        for _ in range(settings["runs"]):
            matter.matte(plate, trimap, colour="srgb")
            for key, value in matter.stats.seconds.items():
                stages.setdefault(key, []).append(value)
    out["stage_seconds"] = {k: statistics.median(v) for k, v in stages.items()}
    if result is not None:
        out["errors"] = _errors(result.alpha, truth, trimap)
    if settings["flops"]:
        out["macs"] = _count_macs(matter, plate, trimap)
    return out


def _count_macs(matter: Any, plate: Any, trimap: Any) -> dict[str, float]:
    """Multiply-accumulates of each network on this frame (FLOPs / 2, convolutions, matmuls, attention)."""
    import contextlib

    from torch.utils.flop_counter import FlopCounterMode

    counts: dict[str, float] = {}

    @contextlib.contextmanager
    def count(role: str) -> Any:
        mode = FlopCounterMode(display=False)
        with mode:
            yield
        counts[role] = counts.get(role, 0.0) + mode.get_total_flops() / 2

    matter.stage_context = count
    profile, matter.profile = matter.profile, False
    try:
        matter.matte(plate, trimap, colour="srgb")
    finally:
        matter.stage_context = None
        matter.profile = profile
    return counts


def measure_baseline(frame_dir: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """pymatting closed-form alpha then multilevel foreground/background, on the whole frame."""
    import numpy as np

    from core.baselines import estimate_alpha_closed_form, estimate_foreground

    plate = np.load(frame_dir / "plate.npy")
    trimap = np.load(frame_dir / "trimap.npy")
    truth = np.load(frame_dir / "alpha.npy")
    # Warm-up on a small crop around unknown pixels: compiles pymatting's numba kernels
    # (a full-size warm-up would only double the time this takes).
    ys, xs = np.nonzero(trimap == 0.5)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    y0, x0 = max(0, cy - 48), max(0, cx - 48)
    crop = (slice(y0, y0 + 96), slice(x0, x0 + 96))
    t = time.perf_counter()
    estimate_foreground(plate[crop], estimate_alpha_closed_form(plate[crop], trimap[crop]))
    warm = time.perf_counter() - t
    rss_loaded = _rss_gib()
    wall, cpu, alpha_s, fg_s = [], [], [], []
    alpha = None
    for _ in range(settings["baseline_runs"]):
        t, c = time.perf_counter(), time.process_time()
        alpha = estimate_alpha_closed_form(plate, trimap)
        t1 = time.perf_counter()
        estimate_foreground(plate, alpha)
        t2 = time.perf_counter()
        wall.append(t2 - t)
        cpu.append(time.process_time() - c)
        alpha_s.append(t1 - t)
        fg_s.append(t2 - t1)
    out = {
        "method": "pymatting estimate_alpha_cf + estimate_foreground_ml (whole frame)",
        "warmup_seconds": [warm],
        "seconds": wall,
        "cpu_seconds": cpu,
        "alpha_seconds": alpha_s,
        "foreground_seconds": fg_s,
        "peak_rss_gib": peak_rss_gib(),
        "rss_after_load_gib": rss_loaded,
    }
    if alpha is not None:
        out["errors"] = _errors(alpha, truth, trimap)
    return out


def cli_startup() -> dict[str, Any]:
    """What ``lbsmatte`` does at start-up before any frame (:func:`core.cli.main`): torch's huge
    pages for its large CPU buffers (``THP_MEM_ALLOC_ENABLE``, unless set) and glibc keeping
    freed memory. The pipeline's process makes the same start, so its frames cost what they cost
    in ``lbsmatte matte`` (without it, 1080p frames paid a page fault per 4 kB of every tensor).
    The baseline's process keeps the C library's and torch's defaults, as a pymatting job would."""
    from core.cli import HUGE_PAGES_ENV, keep_freed_memory

    os.environ.setdefault(HUGE_PAGES_ENV, "1")  # before torch's first large allocation
    return {HUGE_PAGES_ENV: os.environ[HUGE_PAGES_ENV], "keep_freed_memory": keep_freed_memory()}


def _child(kind: str, frame_dir: Path, settings: dict[str, Any]) -> None:
    if kind == "pipeline":
        startup = cli_startup()
        out = measure_pipeline(frame_dir, settings)
        out["startup"] = startup
    else:
        out = measure_baseline(frame_dir, settings)
    print(_MARK + json.dumps(out), flush=True)


def _run_measurement(kind: str, frame_dir: Path, settings: dict[str, Any], isolate: bool) -> dict[str, Any]:
    if not isolate:
        return (measure_pipeline if kind == "pipeline" else measure_baseline)(frame_dir, settings)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--frame-dir", str(frame_dir),
         "--settings", json.dumps(settings)],
        capture_output=True, text=True, env=env,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the {kind} measurement failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len(_MARK):])


# ----------------------------------------------------------------------------------------------
# Weights
# ----------------------------------------------------------------------------------------------
def resolve_weights(name: str) -> tuple[Path, bool, str]:
    """``(bundle folder, untrained?, label)`` for ``--weights``.

    ``untrained-small`` / ``untrained-paper`` build (once) seeded, untrained networks of that
    config into ``bench/results/bundles/`` — time does not depend on training.
    """
    from core.errors import WeightsError
    from core.weights import load_bundle

    if name in ("untrained-small", "untrained-paper"):
        folder = RESULTS / "bundles" / name
        if not (folder / "manifest.json").is_file():
            import torch

            from core.nets import build_network, network_config
            from core.weights import save_bundle

            torch.manual_seed(0)
            size = name.split("-", 1)[1]
            nets = {role: build_network(network_config(role, size)) for role in ROLES}
            save_bundle(folder, nets, name=name, description=f"seeded untrained {size} networks, timing only",
                        training={"note": "untrained, torch.manual_seed(0)"}, trained=False, overwrite=True)
        name = str(folder)
    try:
        bundle = load_bundle(name)
    except WeightsError as exc:
        hint = " (try --weights untrained-small: same networks, untrained, same time)" if name == "default" else ""
        raise SystemExit(f"bench_pipeline: {exc}{hint}") from exc
    untrained = not bundle.trained
    size = bundle.config("background").get("size", "?")
    label = f"{bundle.name} ({size})" + (f" {UNTRAINED_LABEL}" if untrained else "")
    return bundle.path, untrained, label


# ----------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------
def peak_tflops(device_name: str, precision: str) -> float | None:
    """Dense peak TFLOPS of a GPU for ``precision`` (float16/bfloat16/float32), from :data:`PEAK_TFLOPS`."""
    key = {"float16": "fp16", "bfloat16": "bf16"}.get(precision, "fp32")
    if key == "fp32":
        try:
            import torch

            key = "tf32" if torch.backends.cudnn.allow_tf32 else "fp32"
        except ImportError:
            pass
    for gpu, table in PEAK_TFLOPS.items():  # most specific names first
        if gpu in device_name:
            return table[key]
    return None


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarise(case: dict[str, Any], peak: float | None) -> None:
    """Add medians, ratios, shares and floors to one case (in place)."""
    pipe, base = case["pipeline"], case.get("baseline")
    pipe["median_seconds"] = _median(pipe["seconds"])
    pipe["min_seconds"] = min(pipe["seconds"]) if pipe["seconds"] else float("nan")
    pipe["median_cpu_seconds"] = _median(pipe["cpu_seconds"])
    stages = pipe.get("stage_seconds", {})
    total = stages.get("total") or pipe["median_seconds"]
    pipe["shares"] = {k: v / total for k, v in stages.items() if k != "total" and total}
    macs = pipe.get("macs")
    if macs:
        pipe["gmac"] = {k: v / 1e9 for k, v in macs.items()}
        pipe["gmac"]["total"] = sum(macs.values()) / 1e9
        pipe["achieved_tflops"] = {
            k: 2 * macs[k] / stages[k] / 1e12 for k in macs if stages.get(k)
        }
        if peak:
            pipe["peak_tflops"] = peak
            pipe["floor_seconds"] = {k: 2 * v / (peak * 1e12) for k, v in macs.items()}
            pipe["floor_seconds"]["total"] = 2 * sum(macs.values()) / (peak * 1e12)
    if base:
        base["median_seconds"] = _median(base["seconds"])
        base["median_cpu_seconds"] = _median(base["cpu_seconds"])
        base["median_alpha_seconds"] = _median(base["alpha_seconds"])
        base["median_foreground_seconds"] = _median(base["foreground_seconds"])
        case["ratios"] = {
            "speedup": base["median_seconds"] / pipe["median_seconds"],
            "cpu_seconds_ratio": base["median_cpu_seconds"] / pipe["median_cpu_seconds"],
            "memory_ratio": base["peak_rss_gib"] / pipe["peak_rss_gib"],
        }


def _f(value: Any, fmt: str) -> str:
    """``format(value, fmt)``, or a dash as wide when there is no value."""
    if value is None or value != value:
        width = "".join(ch for ch in fmt.split(".")[0] if ch.isdigit())
        return "-".rjust(int(width or 1))
    return format(value, fmt)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def print_tables(report: dict[str, Any]) -> None:
    meta, cases = report["meta"], report["cases"]
    print(f"\nLBSMatte pipeline vs pymatting closed-form + multilevel foreground ({meta['date']})")
    print(f"  weights   {meta['weights']}")
    print(f"  device    {meta['device']} [{meta['device_name']}], {meta['threads']} thread(s), {meta['precision']}"
          f"{', channels-last' if meta['channels_last'] else ''}{', torch.compile' if meta['compile'] else ''}")
    print(f"  machine   {meta['cpu_count']} CPU(s), load average {meta['load_before']} before, "
          f"{meta['load_after']} after (shared machine: read the ratios)")
    print(f"  frames    {meta['object']} over a photo; runs: pipeline {meta['runs']} after {meta['warmup']} warm-up, "
          f"baseline {meta['baseline_runs']}; times are medians")
    mem = "cuda GiB" if meta["device"].startswith("cuda") else "peak GiB"
    head = (f"{'frame':<10}{'unknown':>8}{'box':>6}{'comp.':>6} {'prec.':<9}| {'LBSMatte s':>10}{'cpu s':>7}{mem:>9}"
            f" | {'cf+ml s':>8}{'(cf':>7}{'ml)':>6}{'peak GiB':>9} | {'speed-up':>8}{'mem':>6}")
    print("\n" + head + "\n" + "-" * len(head))
    for c in cases:
        p, b, r = c["pipeline"], c.get("baseline") or {}, c.get("ratios") or {}
        pmem = p.get("cuda_peak_gib", p["peak_rss_gib"])
        print(f"{c['frame']:<10}{c['unknown_fraction']:>8.1%}{p['box_fraction']:>6.0%}{p['computed_fraction']:>6.0%}"
              f" {p['precision']:<9}| "
              f"{p['median_seconds']:>10.2f}{p['median_cpu_seconds']:>7.1f}{pmem:>9.2f} | "
              f"{_f(b.get('median_seconds'), '8.2f')}{_f(b.get('median_alpha_seconds'), '7.1f')}"
              f"{_f(b.get('median_foreground_seconds'), '6.1f')}{_f(b.get('peak_rss_gib'), '9.2f')} | "
              f"{_f(r.get('speedup'), '7.2f')}x{_f(r.get('memory_ratio'), '5.2f')}x")
    print("unknown: share of the frame's pixels in the trimap's unknown band; box: unknown bounding box plus"
          " context; comp.: pixels the networks computed (padding, tile overlaps); speed-up and mem: baseline"
          " over LBSMatte (peak RSS of each method's own process)")

    # Per network.
    peak = next((c["pipeline"].get("peak_tflops") for c in cases if c["pipeline"].get("peak_tflops")), None)
    head = (f"{'frame':<10}{'unknown':>8} {'prec.':<9}{'step':<11}{'share':>6}{'seconds':>9}{'GMAC':>8}{'TFLOPS':>8}"
            + (f"{'floor s':>10}{'of peak':>8}" if peak else ""))
    print("\n" + head + "\n" + "-" * len(head))
    for c in cases:
        p = c["pipeline"]
        st, gm, ach = p.get("stage_seconds", {}), p.get("gmac", {}), p.get("achieved_tflops", {})
        floor = p.get("floor_seconds", {})
        for step in ("prepare",) + ROLES + ("refine", "finish"):
            if step not in st:
                continue
            line = (f"{c['frame']:<10}{c['unknown_fraction']:>8.1%} {p['precision']:<9}{step:<11}{p['shares'].get(step, 0):>6.0%}"
                    f"{st[step]:>9.3f}{_f(gm.get(step), '8.1f')}{_f(ach.get(step), '8.3f')}")
            if peak:
                frac = floor.get(step, 0) / st[step] if step in floor and st[step] else None
                line += f"{_f(floor.get(step), '10.4f')}{_f(frac, '8.1%')}"
            print(line)
    for c in cases:
        p = c["pipeline"]
        its, secs = p.get("refine_iterations") or [], p.get("stage_seconds", {}).get("refine")
        if its and secs:
            print(f"{c['frame']:<10}{c['unknown_fraction']:>8.1%} refinement: {sum(its)} conjugate-gradient iterations "
                  f"({' + '.join(map(str, its))} over the rounds), {sum(its) / secs:.0f} iterations/s "
                  f"(the Laplacian's assembly included)"
                  + (f"; peak GPU memory {p['cuda_peak_gib']:.2f} GiB" if "cuda_peak_gib" in p else ""))
    if peak:
        print(f"floor s: the time {peak:g} TFLOPS (dense peak of this GPU at this precision, or --peak-tflops)"
              " would need for the network's multiply-accumulates; of peak: floor / measured")
    else:
        print("GMAC: multiply-accumulates per frame (FlopCounterMode); TFLOPS: achieved; "
              "give --peak-tflops for a floor")

    # Growth with band and frame size, relative to the first case.
    refs: dict[str, dict[str, Any]] = {}
    for c in cases:
        refs.setdefault(c["pipeline"]["precision"], c)
    head = (f"{'frame':<10}{'unknown':>8} {'prec.':<9}| {'pixels':>7}{'unknown':>8}{'computed':>9} | "
            f"{'LBSMatte':>9}{'cf+ml':>7} | {'ms/Mpx comp.':>12}")
    print("\nGrowth, relative to the first row of the same precision\n" + head + "\n" + "-" * len(head))
    for c in cases:
        p, b = c["pipeline"], c.get("baseline")
        ref = refs[p["precision"]]
        bref = ref.get("baseline")
        bt = b["median_seconds"] / bref["median_seconds"] if b and bref else None
        print(f"{c['frame']:<10}{c['unknown_fraction']:>8.1%} {p['precision']:<9}| {c['pixels'] / ref['pixels']:>6.2f}x"
              f"{c['unknown_pixels'] / ref['unknown_pixels']:>7.2f}x"
              f"{p['computed_pixels'] / ref['pipeline']['computed_pixels']:>8.2f}x | "
              f"{p['median_seconds'] / ref['pipeline']['median_seconds']:>8.2f}x{_f(bt, '6.2f')}x | "
              f"{1000 * p['median_seconds'] / (p['computed_pixels'] / 1e6):>12.0f}")


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------
def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from exc
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError(f"frame {text} is too small (32x32 at least)")
    return w, h


def _fraction(text: str) -> float:
    """``0.1``, ``10`` and ``10%`` all mean a tenth of the pixels."""
    try:
        value = float(text.rstrip("%"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a share of the pixels such as 0.1 or 10%, got {text!r}") from exc
    if text.endswith("%") or value >= 1:
        value /= 100
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"an unknown band is a share of the pixels in (0, 1), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_pipeline.py",
        description="Time and peak memory of the LBSMatte pipeline (and of each network) next to pymatting's "
        "closed-form + multilevel foreground, on realistic synthetic frames. Prints tables, writes JSON.",
    )
    parser.add_argument("--weights", default="default",
                        help="bundle name or folder; 'untrained-small'/'untrained-paper' build seeded untrained "
                        "networks (timing only) into bench/results/bundles/ (default: default)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="default cpu")
    parser.add_argument("--sizes", nargs="+", type=_size, default=[_size(s) for s in DEFAULT_SIZES],
                        metavar="WxH", help=f"frame sizes (default {' '.join(DEFAULT_SIZES)})")
    parser.add_argument("--band", type=_fraction, default=0.10,
                        help="unknown band as a share of the pixels, for every size (default 0.10)")
    parser.add_argument("--sweep-bands", nargs="*", type=_fraction, default=[0.05, 0.15], metavar="F",
                        help="more bands, at the first size only: how time grows with the band (default 0.05 0.15)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="height of the object's photo relative to the frame (default 1.0)")
    parser.add_argument("--object", default=DEFAULT_OBJECT, help=f"alphamatting.com image (default {DEFAULT_OBJECT})")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder with alphamatting/ and backgrounds/ (read only; procedural frames without it)")
    parser.add_argument("--runs", type=int, default=3, help="timed pipeline runs per frame (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed pipeline runs first (default 1)")
    parser.add_argument("--baseline-runs", type=int, default=3,
                        help="timed baseline runs per frame (default 3; its numba warm-up is on a small crop)")
    parser.add_argument("--no-baselines", dest="baselines", action="store_false", help="time LBSMatte only")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's, one per core)")
    parser.add_argument("--precision", nargs="+", default=["auto"], choices=["auto", "fp32", "fp16", "bf16"],
                        help="autocast precision(s); several give a row each on the same frames "
                        "(default auto: fp16 on CUDA; on the CPU bf16 where it computes bfloat16 natively, else fp32)")
    parser.add_argument("--channels-last", dest="channels_last", action="store_true", default=None,
                        help="channels-last on CUDA too (always on for the CPU)")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks (warm-up compiles)")
    parser.add_argument("--tile", type=int, default=None, help="largest tile side (default: the pipeline's)")
    parser.add_argument("--alpha-context", type=_alpha_context, default="default",
                        help="pixels around the unknown box for the matting network, or 'box' for the whole region "
                             "(default: the pipeline's)")
    parser.add_argument("--rounds", type=int, default=None, metavar="N",
                        help="alternating rounds after the networks (default: the pipeline's; 0: networks only)")
    parser.add_argument("--no-flops", dest="flops", action="store_false", help="skip counting multiply-accumulates")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="device peak for the floor column (default: the H100/H200 table on CUDA)")
    parser.add_argument("--no-isolate", dest="isolate", action="store_false",
                        help="measure in this process (peaks then cover everything run so far)")
    parser.add_argument("--json", type=Path, default=RESULTS / "bench_pipeline.json", help="where to write the figures")
    parser.add_argument("--child", choices=["pipeline", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--frame-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    return parser


def _alpha_context(value: str) -> int | str | None:
    if value in ("default", "box"):
        return None if value == "box" else value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--alpha-context takes pixels or 'box', not {value!r}") from None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.child:
        _child(args.child, args.frame_dir, json.loads(args.settings))
        return {}
    import numpy as np

    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("bench_pipeline: --device cuda, but CUDA is not available here (no GPU or a CPU-only torch)")
    bundle, untrained, label = resolve_weights(args.weights)
    settings: dict[str, Any] = {
        "bundle": str(bundle), "untrained": untrained, "device": args.device, "threads": args.threads,
        "precision": args.precision, "channels_last": args.channels_last, "compile": args.compile,
        "tile": args.tile, "alpha_context": args.alpha_context, "rounds": args.rounds, "warmup": args.warmup, "runs": args.runs, "baseline_runs": args.baseline_runs,
        "flops": args.flops,
    }
    plan = [(w, h, args.band) for w, h in args.sizes]
    plan += [(args.sizes[0][0], args.sizes[0][1], band) for band in args.sweep_bands if band != args.band]
    load_before = " ".join(f"{v:.1f}" for v in os.getloadavg())
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lbsmatte-bench-") as tmp:
        for i, (w, h, band) in enumerate(plan):
            frame = build_frame(w, h, band, data=args.data, obj=args.object, scale=args.scale)
            frame_dir = Path(tmp) / f"frame{i}"
            frame_dir.mkdir()
            np.save(frame_dir / "plate.npy", frame.plate)
            np.save(frame_dir / "trimap.npy", frame.trimap)
            np.save(frame_dir / "alpha.npy", frame.alpha)
            case: dict[str, Any] = {
                "frame": f"{w}x{h}", "width": w, "height": h, "pixels": w * h,
                "unknown_fraction": frame.unknown_fraction, "unknown_pixels": int((frame.trimap == 0.5).sum()),
                "source": frame.source,
            }
            del frame
            print(f"[{i + 1}/{len(plan)}] {w}x{h}, unknown {case['unknown_fraction']:.1%}: LBSMatte", end="", flush=True)
            rows: list[dict[str, Any]] = []
            for j, precision in enumerate(args.precision):
                # The multiply-accumulates do not depend on the precision: counted once per frame.
                run = _run_measurement(
                    "pipeline", frame_dir, {**settings, "precision": precision, "flops": args.flops and j == 0},
                    args.isolate,
                )
                if j and "macs" in rows[0]["pipeline"]:
                    run["macs"] = rows[0]["pipeline"]["macs"]
                rows.append({**case, "pipeline": run})
                print(f" {run['precision']} {_median(run['seconds']):.2f} s", end="", flush=True)
            if args.baselines:
                print("; closed-form + ML", end="", flush=True)
                baseline = _run_measurement("baseline", frame_dir, settings, args.isolate)
                print(f" {_median(baseline['seconds']):.2f} s", end="", flush=True)
                for row in rows:
                    row["baseline"] = baseline
            print(flush=True)
            cases.extend(rows)
    first = cases[0]["pipeline"]
    peak = args.peak_tflops
    if peak is None and first["device"].startswith("cuda"):
        peak = peak_tflops(first["device_name"], first["precision"])
    for case in cases:
        summarise(case, peak)
    report = {
        "meta": {
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name if argv is None else "bench_pipeline.py"]
                                + (sys.argv[1:] if argv is None else list(argv))),
            "weights": label, "bundle": str(bundle), "untrained": untrained,
            "device": first["device"], "device_name": first["device_name"], "threads": first["threads"],
            "precision": " ".join(dict.fromkeys(c["pipeline"]["precision"] for c in cases)),
            "channels_last": first["channels_last"], "compile": args.compile,
            "runs": args.runs, "warmup": args.warmup, "baseline_runs": args.baseline_runs if args.baselines else 0,
            "object": args.object, "scale": args.scale, "isolated": args.isolate,
            "cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": _torch_version(), "load_before": load_before,
            "load_after": " ".join(f"{v:.1f}" for v in os.getloadavg()), "peak_tflops": peak,
        },
        "cases": cases,
    }
    print_tables(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"\nwrote {args.json}")
    return report


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


if __name__ == "__main__":
    # SIGTERM (a scheduler, `timeout`) unwinds like Ctrl-C, so the frames' temporary folder is removed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    main()
