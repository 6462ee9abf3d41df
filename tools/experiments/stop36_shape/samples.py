"""The layers as samples in the KNN term: python tools/experiments/stop36_shape/samples.py PREFIX

The patent's networks give samples of F and B for each unknown pixel; the data term reads an
alpha off them by projection (``(I − B)·(F − B) / |F − B|²``), which errs wherever F or B is off
in any direction. Here each unknown pixel's F and B join the KNN term's candidates instead, as
known pixels of alpha 1 and 0 at its position (``core.knn.knn_term(samples=...)``): a pixel whose
colour lies nearer its own estimated B than its other neighbours is pulled toward 0, one near its
F toward 1, and a mid-alpha pixel, near neither, is left to its real neighbours — a pull that
gates itself by how well the layers explain the plate. With the fold networks' layers (PREFIX
photo) or pull-push's (photo_none, the pipeline without networks); the layers as the pipeline's
networks give them (before any solve), display-encoded. The 36 held-out photo frames dumped by
stop 34's dump.py; the shipped refinement otherwise (λ 3e-4, κ 0.01, 20 neighbours at position
0.02 and 10 at 0.1, levels); each fold's variant chosen on the other two folds."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import LAM, solve_with_knn  # noqa: E402
from depth_trust import report, scores  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
# (which layers join as samples, λ of the data term)
VARIANTS = [("", LAM), ("FB", LAM), ("B", LAM), ("F", LAM), ("FB", 1e-4), ("FB", 0.0)]


def with_samples(s: dict, depth: torch.Tensor, variant: tuple[str, float]) -> torch.Tensor:
    which, lam = variant
    if not which:
        return s["a1"]
    f = s["features"].float().numpy()
    layers = {"F": (f[3:6].transpose(1, 2, 0), 1.0), "B": (f[6:9].transpose(1, 2, 0), 0.0)}
    return solve_with_knn(s, lam * s["conf"], samples=[layers[k] for k in which])


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "photo"
    report(f"the layers as KNN samples ({prefix})", scores(prefix, VARIANTS, with_samples),
           lambda v: f"samples {v[0] or 'none'}, λ {v[1]:g}")


if __name__ == "__main__":
    main()
