"""Dump frames for the confidence experiment: python tools/experiments/stop34_confidence/dump.py KIND [first count]

KIND photo: the 36 photo frames (system kept, for evaluation and as training frames);
photo_none: the same run with the parameter-free priors in place of the networks;
comp: the 72 linear composites (as display plates); render: composites of the renders
(3 per render, each run by another fold bundle). Each frame's state by the fold bundle that
held its object out (renders: by bundle (i + j) % 3). Resumable: existing files are skipped."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import (  # noqa: E402
    DATA,
    FOLDS,
    FRAMES,
    ROOT,
    bundle,
    features,
    fold_of,
    label,
    read_composite,
    read_photo,
    state,
)

from core.pipeline import Matter  # noqa: E402

FRAMES.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)
_nets: dict[int, Matter] = {}


def nets(k: int) -> Matter:
    """Fold ``k``'s bundle; -1: the parameter-free priors (``--weights none``)."""
    if k not in _nets:
        _nets[k] = Matter("none" if k < 0 else bundle(k), device="cpu", rounds=0, fg_solve=0)
    return _nets[k]


def save(path: Path, s: dict, gt: np.ndarray, system: bool, **extra) -> None:
    f = features(s)
    lab = label(s, gt)
    rec = dict(features=torch.from_numpy(f).half(), label=torch.from_numpy(lab).bool(),
               unknown=torch.from_numpy(s["unknown"]), gt=torch.from_numpy(gt).half(), **extra)
    if system:
        rec |= {k: s[k] for k in ("matrix", "pull", "diag", "a_net", "prior", "conf", "a1", "where", "fg_known", "shape")}
        rec["gt"] = torch.from_numpy(gt)
    tmp = path.with_suffix(".tmp")
    torch.save(rec, tmp)
    tmp.replace(path)


def _patch(rng, backgrounds, h, w):
    from core.training.data import _read_rgb8, _resize

    photo = _read_rgb8(backgrounds[int(rng.integers(len(backgrounds)))])
    ph, pw = photo.shape[:2]
    n = int(rng.integers(min(ph, pw) // 3, min(ph, pw) + 1))
    y0, x0 = int(rng.integers(0, ph - n + 1)), int(rng.integers(0, pw - n + 1))
    bg = _resize(photo[y0:y0 + n, x0:x0 + n].astype(np.float32).transpose(2, 0, 1) / 255.0, (h, w)).transpose(1, 2, 0)
    return np.clip(bg, 0, 1)


def render_frame(i: int, j: int, paths: list[Path] | None, backgrounds: list[Path]):
    from core.training.data import (
        CACHE_DIR,
        _RenderedForeground,
        _seed_distance,
        _snap,
        _trimap_at,
        _wide_trimap,
    )

    rng = np.random.default_rng(1000 * i + j + 77 + (0 if paths is not None else 10**7))
    if paths is not None:
        item = _RenderedForeground(paths[i])
        item.load(CACHE_DIR)
        fg, alpha = item.fg, _snap(item.alpha)
    else:  # a procedural foreground of the training generator, textured by another photo
        from core.training.procedural import generate_foreground

        fg, alpha = generate_foreground(rng, 320, texture=_patch(rng, backgrounds, 320, 320))
        alpha = _snap(alpha)
    if rng.random() < 0.5:
        fg, alpha = fg[:, ::-1], alpha[:, ::-1]
    h, w = alpha.shape
    bg = _patch(rng, backgrounds, h, w)
    distance = _seed_distance(alpha)
    if rng.random() < 0.5:
        trimap = _wide_trimap(rng, alpha, distance, 48)
    else:
        trimap = _trimap_at(alpha, distance, int(rng.integers(3, 21)))
    plate = (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.float32)
    return np.ascontiguousarray(plate), trimap.astype(np.float32), np.ascontiguousarray(alpha, dtype=np.float32)


def main() -> None:
    kind = sys.argv[1]
    names = sorted(n for f in FOLDS for n in f)
    t0 = time.time()
    if kind in ("photo", "photo_none"):
        jobs = [(n, v) for n in names for v in ("Trimap1", "Trimap2")]
        for n, v in jobs:
            path = FRAMES / f"{kind}_{n}_{v}.pt"
            if path.exists():
                continue
            plate, tri, gt = read_photo(n, v)
            s = state(nets(-1 if kind == "photo_none" else fold_of(n)), plate, tri)
            save(path, s, gt, True, fold=fold_of(n), obj=n)
            print(kind, n, v, f"{time.time() - t0:.0f}s", flush=True)
    elif kind == "comp":
        stems = sorted(p.stem for p in (ROOT / "devdata/composites_linear/image").glob("*.exr"))
        for stem in stems:
            for v in ("Trimap1", "Trimap2"):
                path = FRAMES / f"comp_{stem}_{v}.pt"
                if path.exists():
                    continue
                obj = stem.split("_")[0]
                plate, tri, gt = read_composite(stem, v)
                s = state(nets(fold_of(obj)), plate, tri, system=False)
                save(path, s, gt, False, fold=fold_of(obj), obj=obj)
                print(kind, stem, v, f"{time.time() - t0:.0f}s", flush=True)
    elif kind in ("render", "proc"):
        from core.training.data import _background_split

        first, count = int(sys.argv[2]), int(sys.argv[3])
        paths = sorted(p for p in (ROOT / "devdata/rendered").glob("*.exr") if not p.name.startswith("."))
        if kind == "proc":
            paths = [Path(f"{i:06d}") for i in range(first + count)]
        bgdir = DATA / "backgrounds"
        train_bg, _ = _background_split([p.name for p in bgdir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")])
        backgrounds = [bgdir / n for n in train_bg]
        for i in range(first, min(first + count, len(paths))):
            for j in range(3):
                path = FRAMES / f"{kind}_{paths[i].stem}_{j}.pt"
                if path.exists():
                    continue
                plate, tri, gt = render_frame(i, j, paths if kind == "render" else None, backgrounds)
                if not (tri == 0.5).any():
                    continue
                k = (i + j) % 3
                s = state(nets(k), plate, tri, system=False)
                save(path, s, gt, False, fold=-1, obj=paths[i].stem, bundle=k)
                print(kind, i, j, f"{time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
