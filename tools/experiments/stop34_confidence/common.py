"""Stop 34's experiment: a learned confidence for the refinement's data term (HISTORY, stop 34).

Exploratory code, kept so that the figures in docs/cross_validation/HISTORY.md can be made
again; not part of the product, and nothing in core imports it. What it writes goes to the
ignored runs/conf. Here: one frame's state (a fold bundle's raw networks, the shipped
refinement's system: the matting Laplacian plus the KNN term, λ 3e-4, F and B solved for 0.5,
one round, levels 0.06 / 0.92), the per-pixel features a confidence network sees, the label
(|prior − truth| < 0.1 at the unknown pixels) and the network."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from core.compositing import (  # noqa: E402
    add_knn,
    alpha_from_composite,
    alpha_levels,
    conjugate_gradients,
    matting_laplacian,
    solve_layers,
)
from core.knn import knn_term, searches  # noqa: E402
from core.trimap import split_trimap  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))
from cross_validate import _batch_of_one as batch  # noqa: E402
from cross_validate import _read_frame, _scorer, folds, objects  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
WORK = ROOT / "runs" / "conf"  # ignored: frames, networks, scores
WORK.mkdir(parents=True, exist_ok=True)  # a fresh clone has no runs/
FRAMES = WORK / "frames"
FOLDS = folds(objects(DATA), 3)  # the protocol's folds (HISTORY: fold 0 GT01, GT06, ...)
LAM, SIGMA2, KAPPA, NEIGH, POS = 3e-4, 0.1, 0.01, 20, 0.02
BLACK, WHITE = 0.06, 0.92
TOL, MAXIT = 1e-4, 400
NFEAT = 18
PRIOR, A1 = 10, 12  # the prior's and the first solve's channels among the features


def fold_of(name: str) -> int:
    return next(k for k, f in enumerate(FOLDS) if name in f)


def bundle(k: int) -> str:
    return str(ROOT / "docs" / "cross_validation" / "folds" / f"fold{k}" / "bundle")


def state(nets, plate: np.ndarray, trimap: np.ndarray, system: bool = True) -> dict:
    """Everything about one display-encoded frame that the experiments need."""
    out = nets.matte(plate, trimap, colour="srgb")
    img, tri = batch(plate), batch(trimap)
    fg_known, _, unknown = split_trimap(tri[0, 0])
    lap = matting_laplacian(img[0], unknown, fg_known)
    u_np = unknown.numpy()
    knn = knn_term(plate, u_np, fg_known.numpy(), None, *searches(NEIGH, POS))
    matrix, pull, diag = add_knn(lap, knn, KAPPA)
    where = lap.index
    img_u, bg_u = at_unknown(img, where), at_unknown(batch(out.bg), where)
    a_net = torch.from_numpy(out.alpha).reshape(-1)[where].float().clamp(0, 1)
    prior, conf, f_u = prior_from_layers(img_u, at_unknown(batch(out.fg), where), bg_u)
    s = dict(shape=trimap.shape, unknown=u_np, fg_known=fg_known.numpy(), where=where.numpy(),
             matrix=matrix, pull=pull.float(), diag=diag.float(), a_net=a_net, prior=prior, conf=conf,
             plate=plate, net_fg=out.fg, net_bg=out.bg)
    s["a1"] = solve(s, LAM * conf)
    s["resid"] = (img_u - (prior[None, None, :, None] * f_u + (1 - prior[None, None, :, None]) * bg_u)).abs().sum(1).reshape(-1)
    if not system:
        for key in ("matrix", "pull", "diag"):
            s.pop(key)
    return s


def at_unknown(image: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """A ``1×3×H×W`` image's values at the unknown pixels ``where`` (flat indices), as the
    ``1×3×n×1`` the layer solve takes."""
    return image.reshape(3, -1)[:, where][None, :, :, None].float()


def prior_from_layers(img_u: torch.Tensor, fg_u: torch.Tensor, bg_u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The data term's prior alpha and confidence (``n`` each) from layers at the unknown pixels,
    as the shipped round makes them: F solved against the plate for alpha 0.5, the prior read off
    that F and the given B (as refine_with does), confidence ``1 − exp(−|F − B|² / σ²)``; and the
    solved F."""
    half = torch.full((1, 1, img_u.shape[2], 1), 0.5)
    f_u, _ = solve_layers(img_u, half, bg_u, fg_u, 0.1, None, (0.0, 1.0), 3.0)
    prior, dist = alpha_from_composite(img_u, bg_u, f_u)
    dist = dist.reshape(-1)
    return prior.reshape(-1), 1.0 - torch.exp(-(dist * dist) / SIGMA2), f_u


def solve(s: dict, d: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """One round: (L + diag d) a = pull + d * target (target: the prior), from the network's alpha."""
    d = d.float() + 1e-9
    t = s["prior"] if target is None else target
    b = s["pull"] + d * t
    empty = torch.zeros(0)
    x, _ = conjugate_gradients(s["matrix"], empty, empty.long(), d, b, s["a_net"],
                               s["diag"] + d, TOL, MAXIT)
    return x.clamp(0, 1)


def solve_system(s: dict, lap, knn, d: torch.Tensor) -> torch.Tensor:
    """One round as :func:`solve`, with the system a given Laplacian plus κ times a given KNN term
    (both of the frame's region) instead of the dumped one."""
    matrix, pull, diag = add_knn(lap, knn, KAPPA)
    return solve(s | {"matrix": matrix, "pull": pull.float(), "diag": diag.float()}, d)


def photo_of(s: dict) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """A dumped photo frame's plate (display-encoded), FG-known and unknown masks (tensors, as
    :func:`matting_laplacian` takes them), read again from the data set by the dump's file name."""
    _, name, trimap = s["path"].stem.rsplit("_", 2)
    plate, tri, _ = read_photo(name, trimap)
    fg_known, _, unknown = split_trimap(batch(tri)[0, 0])
    return plate, fg_known, unknown


def solve_with_knn(s: dict, d: torch.Tensor, **knn_options) -> torch.Tensor:
    """One round as :func:`solve` with the shipped KNN term built again over the frame's photo
    with ``knn_options`` (:func:`knn_term`'s ``extra``, ``samples`` or ``candidates``); the photo
    and its matting Laplacian are kept in ``s`` for the next call."""
    if "lap" not in s:
        s["plate"], fg_known, unknown = photo_of(s)
        s["lap"] = matting_laplacian(batch(s["plate"])[0], unknown, fg_known)
    knn = knn_term(s["plate"], s["unknown"], s["fg_known"], None, *searches(NEIGH, POS), **knn_options)
    return solve_system(s, s["lap"], knn, d)


def full_alpha(s: dict, a_u: torch.Tensor) -> np.ndarray:
    """The frame's alpha: the unknown pixels' ``a_u`` through the shipped levels, 0 / 1 elsewhere."""
    a = torch.from_numpy(s["fg_known"].astype(np.float32)).reshape(-1)
    a[torch.from_numpy(s["where"])] = alpha_levels(a_u, BLACK, WHITE)
    return a.reshape(s["shape"]).numpy()


def scorer(s: dict):
    """``alpha -> (SAD, gradient error)`` of a dumped frame, as the protocol scores it."""
    tri = np.where(s["fg_known"], 1.0, np.where(s["unknown"], 0.5, 0.0)).astype(np.float32)
    return _scorer(s["gt"].numpy(), tri)


def features(s: dict) -> np.ndarray:
    """NFEAT×H×W float32 over the frame (zero at known pixels for the per-unknown values)."""
    h, w = s["shape"]
    where = s["where"]

    def img(v: torch.Tensor) -> np.ndarray:
        a = np.zeros(h * w, np.float32)
        a[where] = v.float().numpy()
        return a.reshape(h, w)

    a1, prior, a_net = s["a1"], s["prior"], s["a_net"]
    chans = [s["plate"].transpose(2, 0, 1), s["net_fg"].transpose(2, 0, 1), s["net_bg"].transpose(2, 0, 1)]
    chans += [img(a_net)[None], img(prior)[None], img(s["conf"])[None], img(a1)[None],
              img((a1 - prior).abs())[None], img((a_net - prior).abs())[None], img(s["resid"])[None],
              s["unknown"][None].astype(np.float32), s["fg_known"][None].astype(np.float32)]
    f = np.concatenate(chans, 0).astype(np.float32)
    assert f.shape[0] == NFEAT, f.shape
    return f


def label(s: dict, gt: np.ndarray, within: float = 0.1) -> np.ndarray:
    h, w = s["shape"]
    lab = np.zeros(h * w, np.float32)
    g = gt.reshape(-1)[s["where"]]
    lab[s["where"]] = (np.abs(s["prior"].numpy() - g) < within).astype(np.float32)
    return lab.reshape(h, w)


class ConfNet(torch.nn.Module):
    """A small dilated CNN: per-pixel logit that the prior is within 0.1 of the truth."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        layers = [torch.nn.Conv2d(NFEAT, width, 3, padding=1), torch.nn.ReLU()]
        for dil in (1, 2, 4, 8, 16, 1):
            layers += [torch.nn.Conv2d(width, width, 3, padding=dil, dilation=dil), torch.nn.ReLU()]
        layers += [torch.nn.Conv2d(width, 1, 1)]
        self.body = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def read_photo(name: str, variant: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _read_frame(DATA, name, variant)


def read_composite(stem: str, variant: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A linear composite, encoded to sRGB (display) for this experiment."""
    from core.colour import to_display
    from core.io import read_image
    from core.trimap import normalise_trimap

    c = ROOT / "devdata" / "composites_linear"
    image = read_image(c / "image" / f"{stem}.exr")
    lin = image.pixels[..., [image.channels.index(ch) for ch in "RGB"]].astype(np.float32)
    plate = np.clip(to_display(lin, "linear"), 0, 1).astype(np.float32)
    trimap = normalise_trimap(read_image(c / "trimap" / variant / f"{stem}.png").pixels[..., 0])
    alpha = read_image(c / "alpha" / f"{stem}.png").pixels[..., 0].astype(np.float32)
    return plate, trimap, alpha
