"""Does adapting the background network to one frame lower its B error? (stop 35, exploratory)

python tools/experiments/stop35_adapt/feasibility.py FOLD [STEPS]

(environment: OBJECTS, the first how many of the fold's objects, default 6; LR, default 1e-4)

On fold FOLD's held-out linear composites (true B known): the fold bundle's raw background
network, then the same network after STEPS steps of self-supervised training on the frame itself
(the frame's own estimated foreground, shifted, composited over its known background; the
target there is the plate), α-weighted B error over the unknown band before and after."""
from __future__ import annotations

import copy
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import FOLDS, bundle, read_composite  # noqa: E402

from core.colour import to_display  # noqa: E402
from core.io import read_image  # noqa: E402
from core.pipeline import Matter  # noqa: E402
from core.trimap import split_trimap  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
torch.set_num_threads(2)


def true_bg(stem: str) -> np.ndarray:
    im = read_image(ROOT / "devdata" / "composites_linear" / "bg" / f"{stem}.exr")
    lin = im.pixels[..., [im.channels.index(c) for c in "RGB"]].astype(np.float32)
    return np.clip(to_display(lin, "linear"), 0, 1).astype(np.float32)


def samples(rng, plate, trimap, a_hat, f_hat, n, size):
    """``n`` crops of ``size``: the frame's own object (â, F̂ from a shifted window) over its known
    background. Returns input (N×4×S×S), target (N×3×S×S) and loss mask (N×1×S×S)."""
    _, bg_known, unknown = split_trimap(trimap)
    h, w = trimap.shape
    uy, ux = np.nonzero(unknown)
    xs, ts, ls = [], [], []
    tries = 0
    while len(xs) < n and tries < 50 * n:
        tries += 1
        i = rng.integers(len(uy))
        sy, sx = uy[i] - size // 2, ux[i] - size // 2  # source window: centred on an unknown pixel
        ang = rng.uniform(0, 2 * np.pi)
        r = rng.uniform(size * 0.15, size * 0.6)
        by, bx = int(sy + r * np.sin(ang)), int(sx + r * np.cos(ang))
        if not (0 <= sy <= h - size and 0 <= sx <= w - size and 0 <= by <= h - size and 0 <= bx <= w - size):
            continue
        src = (slice(sy, sy + size), slice(sx, sx + size))
        dst = (slice(by, by + size), slice(bx, bx + size))
        kb = bg_known[dst]
        hole_src = ~bg_known[src]
        loss = kb & unknown[src]
        if loss.sum() < 0.02 * size * size:
            continue
        a = np.where(hole_src, a_hat[src], 0.0)[..., None]
        base = plate[dst]
        img = np.where(kb[..., None], a * f_hat[src] + (1 - a) * base, base)
        mask = (~kb) | hole_src
        xs.append(np.concatenate([img.transpose(2, 0, 1), mask[None].astype(np.float32)], 0))
        ts.append(base.transpose(2, 0, 1))
        ls.append(loss[None].astype(np.float32))
    f = lambda v: torch.from_numpy(np.stack(v)).float()  # noqa: E731
    return f(xs), f(ts), f(ls)


def adapt(net, plate, trimap, a_hat, f_hat, steps, lr=1e-4, batch=4, size=192, seed=0):
    net = copy.deepcopy(net).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x, t, m = samples(rng, plate, trimap, a_hat, f_hat, batch, size)
        coarse, fine = net.forward_stages(x)
        loss = sum((((p - t).abs().mean(1, keepdim=True)) * m).sum() / m.sum() for p in (coarse, fine))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def b_error(bg, bt, alpha, unknown):
    w = (1 - alpha)[unknown]
    return float((np.abs(bg - bt).mean(-1)[unknown] * w).sum() / w.sum())


def main() -> None:
    k = int(sys.argv[1])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    raw = Matter(bundle(k), device="cpu", rounds=0, fg_solve=0)
    full = Matter(bundle(k), device="cpu")
    net0 = raw.nets["background"]
    rows = []
    for name in FOLDS[k][: int(os.environ.get("OBJECTS", "6"))]:
        for b in ("bg1", "bg2"):
            for v in ("Trimap1", "Trimap2"):
                stem = f"{name}_{b}"
                plate, trimap, alpha = read_composite(stem, v)
                bt = true_bg(stem)
                unknown = (trimap > 0) & (trimap < 1)
                raw.nets["background"] = net0
                e0 = b_error(raw.matte(plate, trimap, colour="srgb").bg, bt, alpha, unknown)
                res = full.matte(plate, trimap, colour="srgb")
                t0 = time.perf_counter()
                net1 = adapt(net0, plate, trimap, res.alpha, res.fg, steps, lr=float(os.environ.get("LR", "1e-4")))
                dt = time.perf_counter() - t0
                raw.nets["background"] = net1
                e1 = b_error(raw.matte(plate, trimap, colour="srgb").bg, bt, alpha, unknown)
                ep = b_error(plate, bt, alpha, unknown)
                rows.append((e0, e1, ep))
                print(f"{stem} {v}: B error {e0:.4f} -> {e1:.4f} (plate {ep:.4f}), {dt:.1f} s", flush=True)
    r = np.array(rows).mean(0)
    print(f"fold {k} mean: {r[0]:.4f} -> {r[1]:.4f} (plate {r[2]:.4f})")


if __name__ == "__main__":
    main()
