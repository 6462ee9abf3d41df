"""Capture the refinement's linear system of the whole-process benchmark's 1080p frames (runs/s40/system_<i>.pt)."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import core.compositing as comp  # noqa: E402
from bench.bench_process import BACKGROUNDS, OBJECTS  # noqa: E402
from bench.frames import build_frame  # noqa: E402
from core.pipeline import Matter  # noqa: E402

OUT = ROOT / "runs" / "s40"
OUT.mkdir(parents=True, exist_ok=True)
original = comp.conjugate_gradients
seen: list = []


def spy(matrix, rows, gather, shift, b, x0, diagonal, tolerance=1e-4, max_iterations=10000):
    x, made = original(matrix, rows, gather, shift, b, x0, diagonal, tolerance, max_iterations)
    seen.append({"crow": matrix.crow_indices(), "col": matrix.col_indices(), "val": matrix.values(),
                 "shift": shift, "b": b, "x0": x0, "diagonal": diagonal, "x": x, "made": made,
                 "tolerance": tolerance})
    return x, made


comp.conjugate_gradients = spy
matter = Matter(threads=2)
for i in range(3):
    f = build_frame(1920, 1080, 0.10, data=ROOT.parent / "shared" / "data", obj=OBJECTS[i], background=BACKGROUNDS[i], seed=i)
    seen.clear()
    matter.matte(f.plate, f.trimap, colour="srgb")
    torch.save(seen[0], OUT / f"system_{i}.pt")
    print(i, seen[0]["b"].numel(), seen[0]["made"], flush=True)
