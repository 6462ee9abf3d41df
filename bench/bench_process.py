"""Whole-process speed: ``lbsmatte matte`` on a short sequence against closed-form + multilevel foreground.

What a TD sees on the farm: a fresh process per job, start-up, reading PNG plates and trimaps,
matting, writing multi-layer EXRs. Both sides run as fresh processes on the same files, in turn
(A B A B ...), so a drift of the shared machine's speed hits both; the ratio is LBSMatte's
median over closed-form's, with the pairs' own ratios as its spread::

    python bench/bench_process.py                        # 3 frames of 1920x1080, 10 % unknown, 3 pairs
    python bench/bench_process.py --frames 3 --size 1920x1080 --band 0.10 --pairs 5
    python bench/bench_process.py --lbsmatte-args "--rounds 0"

- **LBSMatte**: ``lbsmatte matte --plate plate.####.png --trimap trimap.####.png --out lbs.####.exr``
  with the default settings (the default bundle, the refinement and layers it records, the
  precision `auto` resolves to).
- **closed-form + multilevel foreground**: ``python bench/bench_process.py --closed-form ...``, a
  process that reads the same files through the same reader (:func:`core.io.read_image`), runs
  ``pymatting.estimate_alpha_cf`` and ``estimate_foreground_ml`` on each whole frame (through
  :mod:`core.baselines`) and writes the same EXR layers with the same writer. It does not import
  torch (a pymatting job has no use for it). Its warm-up run also fills pymatting's just-in-time
  compilation cache, so the counted runs do not pay for it.

The frames come from :mod:`bench.frames` (an alphamatting.com object and its measured alpha
over a background photo, from ``../shared/data``; a procedural stand-in without it), one object
per frame. Wall-clock seconds and the largest resident memory of each process are printed.
"""

from __future__ import annotations

import argparse
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OBJECTS = ("GT24", "GT13", "GT21", "GT01", "GT06")
BACKGROUNDS = ("cbsd68_101085.jpg", "kodak_kodim05.jpg", "urban100_img_001.jpg", "kodak_kodim13.jpg", "cbsd68_3096.jpg")


def _write_frames(folder: Path, count: int, width: int, height: int, band: float, data: Path | None) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    from bench.frames import build_frame
    from core.io import write_image

    unknown = []
    for i in range(count):
        frame = build_frame(width, height, band, data=data, obj=OBJECTS[i % len(OBJECTS)],
                            background=BACKGROUNDS[i % len(BACKGROUNDS)], seed=i)
        write_image(folder / f"plate.{1001 + i}.png", frame.plate, ["R", "G", "B"])
        write_image(folder / f"trimap.{1001 + i}.png", frame.trimap, ["Y"])
        unknown.append(frame.unknown_fraction)
    return {"frames": count, "size": f"{width}x{height}", "unknown": [round(u, 4) for u in unknown],
            "source": str(data) if data else "procedural"}


def _make_frames(folder: Path, count: int, width: int, height: int, band: float, data: Path | None) -> dict[str, object]:
    """:func:`_write_frames` in a child process, so that this one stays small.

    Linux counts the memory of the process that starts a child (``vfork``: the parent's whole
    high-water mark) in the child's largest resident memory: built here, the frames' peak would
    be a floor under both sides' figures.
    """
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--write-frames", str(folder), str(count),
                           str(width), str(height), str(band), str(data or "")],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"writing the frames failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def closed_form(plate: str, trimap: str, out: str) -> None:
    """The baseline job: closed-form alpha and multilevel foreground for every frame, EXR out."""
    from types import SimpleNamespace

    import numpy as np

    from core.baselines import estimate_alpha_closed_form, estimate_foreground
    from core.colour import to_linear
    from core.io import expand_sequence, frame_path, read_image, write_matte_exr
    from core.trimap import normalise_trimap

    for frame, plate_path in expand_sequence(plate):
        image = read_image(plate_path)
        rgb = image.pixels[..., [image.channels.index(c) for c in "RGB"]]
        tri = normalise_trimap(read_image(frame_path(trimap, frame)).pixels[..., 0])
        alpha = estimate_alpha_closed_form(rgb, tri)
        fg, bg = estimate_foreground(rgb, alpha)
        # Nothing of LBSMatte's torch side: this job pays for what a pymatting job needs, no more.
        result = SimpleNamespace(alpha=alpha.astype(np.float32), fg=to_linear(fg, "srgb"), bg=to_linear(bg, "srgb"))
        write_matte_exr(frame_path(out, frame), result, like=image.info)


def _run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and the largest resident memory (GiB) of one fresh process.

    The memory is that child's own (``os.wait4``'s resource usage), not ``RUSAGE_CHILDREN``,
    which is the largest of every child waited for so far: with it the closed-form process,
    run after LBSMatte's, reported LBSMatte's peak whenever LBSMatte's was the larger.
    A stop (SIGTERM, Ctrl-C) while it waits kills the child and waits for it.
    """
    with tempfile.TemporaryFile(mode="w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{err.read()[-2000:]}")
    return wall, usage.ru_maxrss / 2**20  # KiB on Linux


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    """Medians of the counted runs, and the ratio LBSMatte / closed-form of those medians.

    The ratio is the medians' (as ``bench_pipeline.py``'s speed-up), so the printed seconds and
    the printed ratio agree; the pairs' own ratios give its spread.
    """
    out: dict[str, float] = {}
    for key in ("lbsmatte_s", "closed_form_s"):
        values = [r[key] for r in rows]
        out.update({key: statistics.median(values), f"{key}_min": min(values), f"{key}_max": max(values)})
    pairs = [r["lbsmatte_s"] / r["closed_form_s"] for r in rows]
    out.update({"ratio": out["lbsmatte_s"] / out["closed_form_s"], "pair_ratio_min": min(pairs),
                "pair_ratio_max": max(pairs), "lbsmatte_gib": max(r["lbsmatte_gib"] for r in rows),
                "closed_form_gib": max(r["closed_form_gib"] for r in rows)})
    return out


#: Variables that set threads, allocation or JIT behaviour: both sides inherit them alike; printed
#: with the figures so that a quoted ratio says what it ran under.
ENVIRONMENT = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
               "NUMBA_THREADING_LAYER", "NUMBA_CACHE_DIR", "THP_MEM_ALLOC_ENABLE", "LBSMATTE_KEEP_FREED_MEMORY")


def machine() -> dict[str, object]:
    """The CPU, its count, the load average now and the environment of :data:`ENVIRONMENT` that is set."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    load = " ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {"cpu": name, "cpus": os.cpu_count(), "load": load,
            "environment": {k: os.environ[k] for k in ENVIRONMENT if k in os.environ}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=3, help="frames in the sequence (default 3)")
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT (default 1920x1080)")
    parser.add_argument("--band", type=float, default=0.10, help="share of unknown pixels (default 0.10)")
    parser.add_argument("--pairs", type=int, default=3, help="counted runs of each side, in turn (default 3)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"),
                        help="folder with alphamatting/ and backgrounds/ (read only; procedural frames without it)")
    parser.add_argument("--lbsmatte-args", default="", help="extra arguments for lbsmatte matte, e.g. '--rounds 0'")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--closed-form", nargs=3, metavar=("PLATE", "TRIMAP", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--write-frames", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.closed_form:
        sys.path.insert(0, str(ROOT))
        closed_form(*args.closed_form)
        return 0
    if args.write_frames:
        folder, count, w, h, band, source = args.write_frames
        print(json.dumps(_write_frames(Path(folder), int(count), int(w), int(h), float(band), Path(source) if source else None)))
        return 0
    width, height = (int(v) for v in args.size.lower().split("x"))
    data = Path(args.data)
    with tempfile.TemporaryDirectory(prefix="lbsmatte-bench-") as tmp:
        folder = Path(tmp)
        setup = _make_frames(folder, args.frames, width, height, args.band,
                             data if (data / "alphamatting").is_dir() else None)
        plate, trimap = str(folder / "plate.####.png"), str(folder / "trimap.####.png")
        lbs = [sys.executable, "-m", "core.cli", "matte", "--plate", plate, "--trimap", trimap,
               "--out", str(folder / "lbs.####.exr"), "--no-progress", *args.lbsmatte_args.split()]
        base = [sys.executable, str(Path(__file__).resolve()), "--closed-form", plate, trimap, str(folder / "cf.####.exr")]
        before = machine()
        print(f"{before['cpus']} x {before['cpu']}, load average {before['load']}, "
              f"environment {before['environment'] or 'none of ' + ' '.join(ENVIRONMENT)}")
        print(f"{setup['frames']} frames of {setup['size']}, unknown {setup['unknown']}, from {setup['source']}")
        print("warm-up: one run of each (fills caches; not counted)")
        _run(lbs)
        _run(base)
        rows = []
        for i in range(args.pairs):
            a, a_mem = _run(lbs)
            b, b_mem = _run(base)
            rows.append({"lbsmatte_s": a, "lbsmatte_gib": a_mem, "closed_form_s": b, "closed_form_gib": b_mem})
            print(f"pair {i + 1}: LBSMatte {a:6.1f} s  closed-form + ML {b:6.1f} s  ratio {a / b:.2f}")
    med = summarise(rows)
    print(f"load average after: {machine()['load']}")
    print(f"median of {len(rows)}: LBSMatte {med['lbsmatte_s']:.1f} s ({med['lbsmatte_s_min']:.1f}-{med['lbsmatte_s_max']:.1f}), "
          f"closed-form + ML {med['closed_form_s']:.1f} s ({med['closed_form_s_min']:.1f}-{med['closed_form_s_max']:.1f}), "
          f"ratio of the medians {med['ratio']:.2f} (pairs {med['pair_ratio_min']:.2f}-{med['pair_ratio_max']:.2f}); "
          f"peak memory of one process {med['lbsmatte_gib']:.2f} / {med['closed_form_gib']:.2f} GiB")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)  # as bench_pipeline.py: not a traceback after the run
        Path(args.json).write_text(json.dumps({"setup": setup, "runs": rows, "median": med, "cpus": os.cpu_count(),
                                               "machine": before, "load_after": machine()["load"],
                                               "command": ["bench_process.py", *(sys.argv[1:] if argv is None else argv)]},
                                              indent=2))
    return 0


if __name__ == "__main__":
    # SIGTERM (a scheduler, `timeout`) unwinds like Ctrl-C, so the frames' temporary folder is removed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    raise SystemExit(main())
