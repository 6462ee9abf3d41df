"""Train the confidence network for one fold:
python tools/experiments/stop34_confidence/train_conf.py FOLD TAG STEPS [RENDER_SHARE [PROCEDURAL_SHARE]]

Training frames: the photos and linear composites of the other two folds' objects (each run by
the fold bundle that held it out) and, with a share > 0, the render or procedural composites (that
share of the crops). Binary cross-entropy on the unknown pixels: is the prior within 0.1 of the
truth; with MODE=cons, only where the first solve and the prior differ by more than 0.05: is the
prior the nearer to the truth."""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import A1, FOLDS, FRAMES, PRIOR, WORK, ConfNet  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
CROP = 96
MODE = os.environ.get("MODE", "within")


def load(paths: list[Path]) -> list[dict]:
    out = []
    for p in paths:
        r = torch.load(p, weights_only=False)
        u = r["unknown"]
        if MODE == "cons":  # only where trusting the prior changes the answer: is it the nearer one
            x, gt = r["features"].float(), r["gt"].float()
            prior, a1 = x[PRIOR], x[A1]
            u = u & ((a1 - prior).abs() > 0.05)
            r["label"] = (prior - gt).abs() < (a1 - gt).abs()
        ys, xs = torch.nonzero(u, as_tuple=True)
        if len(ys) == 0:
            continue
        out.append(dict(x=r["features"], y=r["label"], u=u, ys=ys, xs=xs, name=p.stem))
    return out


def crop(fr: dict, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    h, w = fr["u"].shape
    i = int(rng.integers(len(fr["ys"])))
    cy, cx = int(fr["ys"][i]), int(fr["xs"][i])
    y0 = min(max(cy - CROP // 2, 0), max(h - CROP, 0))
    x0 = min(max(cx - CROP // 2, 0), max(w - CROP, 0))
    sl = (slice(y0, y0 + CROP), slice(x0, x0 + CROP))
    x, y, u = fr["x"][:, sl[0], sl[1]].float(), fr["y"][sl].float(), fr["u"][sl].float()
    ph, pw = CROP - x.shape[1], CROP - x.shape[2]
    if ph or pw:
        x = torch.nn.functional.pad(x, (0, pw, 0, ph))
        y = torch.nn.functional.pad(y, (0, pw, 0, ph))
        u = torch.nn.functional.pad(u, (0, pw, 0, ph))
    if rng.random() < 0.5:
        x, y, u = x.flip(-1), y.flip(-1), u.flip(-1)
    return x, y, u


def main() -> None:
    k, tag, steps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    share = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    pshare = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    held = set(FOLDS[k])
    objs = [p for p in sorted(FRAMES.glob("photo_GT*.pt")) + sorted(FRAMES.glob("comp_*.pt")) if p.stem.split("_")[1] not in held]
    renders = sorted(FRAMES.glob("render_*.pt")) if share > 0 else []
    procs = sorted(FRAMES.glob("proc_*.pt")) if pshare > 0 else []
    test = [p for p in sorted(FRAMES.glob("photo_GT*.pt")) if p.stem.split("_")[1] in held]
    t0 = time.time()
    A, R, P, T = load(objs), load(renders), load(procs), load(test)
    print(f"fold {k} {tag}: {len(A)} object frames, {len(R)} render frames, {len(P)} procedural frames, {len(T)} test frames, loaded {time.time() - t0:.0f}s", flush=True)
    rng = np.random.default_rng(k)
    torch.manual_seed(k)
    net = ConfNet()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    batch = 8
    for step in range(steps):
        lr = 1e-3 * 0.5 * (1 + math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = lr
        xs, ys, us = [], [], []
        for _ in range(batch):
            draw = rng.random()
            pool = R if R and draw < share else P if P and draw < share + pshare else A
            x, y, u = crop(pool[int(rng.integers(len(pool)))], rng)
            xs.append(x)
            ys.append(y)
            us.append(u)
        x, y, u = torch.stack(xs), torch.stack(ys)[:, None], torch.stack(us)[:, None]
        logit = net(x)
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="none") * u).sum() / u.sum().clamp_min(1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 200 == 0 or step == steps - 1:
            print(f"step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
    torch.save(net.state_dict(), WORK / f"conf_fold{k}_{tag}.pt")
    net.eval()
    scores, labs = [], []
    with torch.no_grad():
        for fr in T:
            p = torch.sigmoid(net(fr["x"].float()[None]))[0, 0]
            scores.append(p[fr["u"]].numpy())
            labs.append(fr["y"][fr["u"]].numpy())
    s, lab = np.concatenate(scores), np.concatenate(labs)
    trusted = s > 0.5
    print(f"fold {k} {tag}: held-out AUC {roc_auc_score(lab, s):.3f}, positives {lab.mean():.3f}, "
          f"trusted {trusted.mean():.3f} of which right {lab[trusted].mean():.3f}", flush=True)


if __name__ == "__main__":
    main()
