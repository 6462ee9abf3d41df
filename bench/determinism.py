"""How far a frame's matte moves with what a farm node changes under it: torch's CPU thread count,
the networks' precision, the instruction set the kernels are held to, and the order of a chunk's
frames. The README's "A frame and the farm node" paragraph quotes these figures.

Each configuration runs in its own process (thread counts and instruction sets are fixed when torch
starts), mattes the same frames with the default bundle and its recorded refinement on the CPU
(:class:`core.pipeline.Matter`, in-process as ``lbsmatte matte`` does, float results, no file
written), and keeps alpha, FG and BG. Every configuration is compared with the reference (one
thread, fp32, frames in order) over each frame's unknown band: the largest and the mean
``|Δalpha|``, and the largest ``|ΔFG|``, ``|ΔBG|`` over the band's pixels and channels (sRGB-encoded
layers, as the plate). ``reversed`` (the reference's settings, the frames in the other order) must
give the same bits: a frame's matte never depends on the frames before it.

Frames: alphamatting.com's ``--names`` (full size, ``--trimap``, read from the shared data, never
copied) and the demo's example (``core/examples/demo``).

    python bench/determinism.py
    python bench/determinism.py --names GT04 --configs threads2,bf16 --rounds 0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.photos import DEFAULT_DATA, photo  # noqa: E402

#: name: (environment, precision, frames reversed). The reference is ``ref``.
CONFIGS: dict[str, tuple[dict[str, str], str, bool]] = {
    "ref": ({"OMP_NUM_THREADS": "1"}, "fp32", False),
    "reversed": ({"OMP_NUM_THREADS": "1"}, "fp32", True),
    "threads2": ({"OMP_NUM_THREADS": "2"}, "fp32", False),
    "threads3": ({"OMP_NUM_THREADS": "3"}, "fp32", False),
    "bf16": ({"OMP_NUM_THREADS": "1"}, "bf16", False),
    # oneDNN's and ATen's kernels held to SSE4.1, as on an older farm node
    "sse41": ({"OMP_NUM_THREADS": "1", "ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"}, "fp32",
              False),
}


def frames(data: Path, names: list[str], trimap: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, plate ``H×W×3`` sRGB in [0, 1], trimap ``H×W``) for each photo, then the demo's."""
    from core.demo import load_example

    out = [(name, *photo(data, name, trimap, half=False)[:2]) for name in names]
    ex = load_example()
    return out + [("demo", ex["image"], ex["trimap"])]


def worker(out: Path, precision: str, reverse: bool, data: Path, names: list[str], trimap: str,
           rounds: int | None, weights: str) -> None:
    """Matte the frames (in reverse order with ``reverse``) and keep alpha, FG and BG in ``out``."""
    from core.pipeline import Matter

    matter = Matter(weights, device="cpu", precision=precision, rounds=rounds)
    todo = frames(data, names, trimap)
    for label, plate, tri in reversed(todo) if reverse else todo:
        result = matter.matte(plate, tri, colour="srgb")
        np.savez(out / f"{label}.npz", alpha=result.alpha, fg=result.fg, bg=result.bg)


def compare(ref: Path, other: Path, label: str, tri: np.ndarray) -> dict[str, float]:
    """The differences over ``label``'s unknown band between two configurations' results."""
    from core.trimap import split_trimap

    a, b = np.load(ref / f"{label}.npz"), np.load(other / f"{label}.npz")
    band = split_trimap(tri)[2]
    da = np.abs(a["alpha"].astype(np.float64) - b["alpha"])[band]
    dfg = np.abs(a["fg"].astype(np.float64) - b["fg"])[band]
    dbg = np.abs(a["bg"].astype(np.float64) - b["bg"])[band]
    return {"alpha_max": float(da.max()), "alpha_mean": float(da.mean()), "fg_max": float(dfg.max()),
            "bg_max": float(dbg.max()), "identical": bool(all(np.array_equal(a[k], b[k]) for k in ("alpha", "fg", "bg")))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA / "alphamatting", help="an alphamatting-style set")
    parser.add_argument("--names", default="GT01,GT04")
    parser.add_argument("--trimap", default="Trimap1")
    parser.add_argument("--configs", default=",".join(c for c in CONFIGS if c != "ref"),
                        help=f"compared with 'ref' (one thread, fp32): {', '.join(CONFIGS)}")
    parser.add_argument("--rounds", type=int, default=None, help="refinement rounds (default: the bundle's)")
    parser.add_argument("--weights", default="default", help="the bundle (a name or a folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--worker", nargs=3, metavar=("OUT", "PRECISION", "REVERSE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = [n for n in args.names.split(",") if n]
    if args.worker:
        out, precision, reverse = args.worker
        worker(Path(out), precision, reverse == "1", args.data, names, args.trimap, args.rounds, args.weights)
        return 0
    wanted = [c for c in args.configs.split(",") if c]
    unknown = [c for c in wanted if c not in CONFIGS]
    if unknown:
        parser.error(f"--configs: no configuration {', '.join(unknown)} (there are {', '.join(CONFIGS)})")
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="lbsmatte_determinism_") as tmp:
        for config in ["ref", *wanted]:
            env_extra, precision, reverse = CONFIGS[config]
            out = Path(tmp) / config
            out.mkdir()
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(out), precision,
                   "1" if reverse else "0", "--data", str(args.data), "--names", ",".join(names),
                   "--trimap", args.trimap, "--weights", args.weights]
            if args.rounds is not None:
                cmd += ["--rounds", str(args.rounds)]
            subprocess.run(cmd, env={**env, **env_extra}, check=True)
            print(f"{config}: done", file=sys.stderr, flush=True)
        todo = frames(args.data, names, args.trimap)
        print(f"{'config':10s} {'frame':6s} {'max|Δα|':>9s} {'mean|Δα|':>9s} {'max|ΔFG|':>9s} {'max|ΔBG|':>9s}  identical")
        for config in wanted:
            results[config] = {}
            for label, _, tri in todo:
                d = compare(Path(tmp) / "ref", Path(tmp) / config, label, tri)
                results[config][label] = d
                print(f"{config:10s} {label:6s} {d['alpha_max']:9.2e} {d['alpha_mean']:9.2e} {d['fg_max']:9.2e} "
                      f"{d['bg_max']:9.2e}  {'yes' if d['identical'] else 'no'}")
    if args.json:
        args.json.write_text(json.dumps({"weights": args.weights, "rounds": args.rounds, "trimap": args.trimap, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
