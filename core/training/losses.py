"""Training losses of the three networks (patent para. 0039-0050, eq. 2-10).

All tensors are ``N×C×H×W`` float, colours display-encoded in [0, 1]; ``alpha`` is ``N×1×H×W``;
``unknown`` is ``N×1×H×W``, 1 (or True) on the trimap's unknown region U and 0 elsewhere.

Conventions shared by every loss here:

- ``|U|`` is the number of unknown *pixels* in the whole batch (not pixels × channels).
- A colour difference at a pixel is the **mean over its 3 channels** (so an error of 0.1 in every
  channel costs 0.1, like an alpha error of 0.1).
- When U is empty the loss is 0 (the sum is divided by ``max(|U|, 1)``), never NaN.

The adversarial term of AlphaGAN (para. 0049, "a generative adversarial network ... may be used")
is optional in the patent and is not implemented: the matting network is trained with eq. 10 only.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

#: How many times a training crop's size the frame its KNN term's positions are scaled by
#: (:func:`result_loss`).
RESULT_FRAME_SCALE = 3.0

__all__ = [
    "background_loss",
    "foreground_l1_loss",
    "compositional_loss",
    "composition_weight",
    "weighted_compositional_loss",
    "foreground_loss",
    "gradient_magnitude",
    "matting_loss",
]


def _unknown_mean(per_pixel: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
    """(1/|U|) Σ_{i∈U} per_pixel_i for a ``N×1×H×W`` per-pixel map; 0 when U is empty."""
    u = unknown.to(per_pixel.dtype)
    return (per_pixel * u).sum() / u.sum().clamp_min(1.0)


def _channel_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=1, keepdim=True)


def background_loss(pred_bg: torch.Tensor, bg: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
    """Eq. 2, L1 background loss over the unknown region: (1/|U|) Σ_{i∈U} |B̂_i − B_i|.

    Args:
        pred_bg: predicted background B̂, ``N×3×H×W``.
        bg: ground-truth background B, ``N×3×H×W``.
        unknown: ``N×1×H×W`` mask of U.

    Returns:
        Scalar tensor; |B̂_i − B_i| is the mean of the absolute differences of the 3 channels.
    """
    return _unknown_mean(_channel_mean((pred_bg - bg).abs()), unknown)


def foreground_l1_loss(pred_fg: torch.Tensor, fg: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
    """Eq. 4, L1 foreground loss over U: (1/|U|) Σ_{i∈U} |F̂_i − F_i| (channel mean per pixel)."""
    return _unknown_mean(_channel_mean((pred_fg - fg).abs()), unknown)


def compositional_loss(
    pred_fg: torch.Tensor, bg: torch.Tensor, alpha: torch.Tensor, image: torch.Tensor, unknown: torch.Tensor
) -> torch.Tensor:
    """Eq. 5: (1/|U|) Σ_{i∈U} |α_i F̂_i + (1 − α_i) B̂_i − I_i| with the ground-truth α.

    ``bg`` is the background used in the composite (the background network's prediction B̂ when
    training the foreground network, as in the patent).
    """
    composite = alpha * pred_fg + (1.0 - alpha) * bg
    return _unknown_mean(_channel_mean((composite - image).abs()), unknown)


def composition_weight(alpha: torch.Tensor) -> torch.Tensor:
    """Eq. 6, the weight ω(α): 3α + 1/4 on [0, 0.5], −3α + 13/4 on [0.5, 1].

    A tent peaking at ω(0.5) = 1.75, with ω(0) = ω(1) = 0.25: the composite matters most where
    foreground and background are mixed half and half.
    """
    return torch.where(alpha <= 0.5, 3.0 * alpha + 0.25, -3.0 * alpha + 3.25)


def weighted_compositional_loss(
    pred_fg: torch.Tensor, bg: torch.Tensor, alpha: torch.Tensor, image: torch.Tensor, unknown: torch.Tensor
) -> torch.Tensor:
    """Eq. 7: (1/|U|) Σ_{i∈U} ω_i |α_i F̂_i + (1 − α_i) B̂_i − I_i|, ω from eq. 6, ground-truth α."""
    composite = alpha * pred_fg + (1.0 - alpha) * bg
    per_pixel = composition_weight(alpha) * _channel_mean((composite - image).abs())
    return _unknown_mean(per_pixel, unknown)


def foreground_loss(
    pred_fg: torch.Tensor,
    fg: torch.Tensor,
    bg: torch.Tensor,
    alpha: torch.Tensor,
    image: torch.Tensor,
    unknown: torch.Tensor,
    lambda_comp: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Eq. 8, foreground-network loss: L_F = L_fg (eq. 4) + λ_comp · L_wcomp (eq. 7).

    Args:
        pred_fg: predicted foreground F̂, ``N×3×H×W``.
        fg: ground-truth foreground F, ``N×3×H×W``.
        bg: background used in the composite (predicted B̂), ``N×3×H×W``.
        alpha: ground-truth alpha, ``N×1×H×W``.
        image: the input composite I, ``N×3×H×W``.
        unknown: ``N×1×H×W`` mask of U.
        lambda_comp: weight λ_comp of the weighted compositional term.

    Returns:
        ``{"fg": L_fg, "wcomp": L_wcomp, "total": L_F}`` (scalar tensors; ``total`` carries the graph).
    """
    l_fg = foreground_l1_loss(pred_fg, fg, unknown)
    l_wcomp = weighted_compositional_loss(pred_fg, bg, alpha, image, unknown)
    return {"fg": l_fg, "wcomp": l_wcomp, "total": l_fg + lambda_comp * l_wcomp}


def gradient_magnitude(alpha: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Gradient magnitude of a ``N×1×H×W`` matte used by eq. 9.

    Central differences, ``g_x = (α[y, x+1] − α[y, x−1]) / 2`` and likewise ``g_y``, with
    **replicate** padding (so a matte that is constant up to the crop border has no gradient
    there), and ``G = sqrt(g_x² + g_y² + eps²)``: the eps keeps the square root differentiable
    where the matte is flat (it adds at most eps to G).
    """
    padded = F.pad(alpha, (1, 1, 1, 1), mode="replicate")
    gx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) * 0.5
    gy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) * 0.5
    return torch.sqrt(gx * gx + gy * gy + eps * eps)


def matting_loss(
    pred_alpha: torch.Tensor,
    alpha: torch.Tensor,
    image: torch.Tensor,
    fg: torch.Tensor,
    bg: torch.Tensor,
    unknown: torch.Tensor,
    eps: float = 1e-6,
) -> dict[str, torch.Tensor]:
    """Eq. 10, matting-network loss: L_matting = L_dm + L_grad.

    - L_alpha (Deep Image Matting): mean over U of sqrt((α_p − α_g)² + ε²).
    - L_comp (Deep Image Matting): mean over U (and over the 3 channels) of
      sqrt((c_p − c_g)² + ε²), where c_p = α_p F + (1 − α_p) B is composited with the predicted
      alpha and the ground-truth F and B, and c_g is the input image.
    - L_dm = 0.5 · L_alpha + 0.5 · L_comp, the weighting Deep Image Matting uses.
    - L_grad (eq. 9): mean over U of |‖∇α_p‖ − ‖∇α_g‖| with :func:`gradient_magnitude`
      (central differences, replicate padding).

    Args:
        pred_alpha: predicted alpha, ``N×1×H×W`` in [0, 1].
        alpha: ground-truth alpha, ``N×1×H×W``.
        image: input composite, ``N×3×H×W``.
        fg, bg: ground-truth foreground and background, ``N×3×H×W``.
        unknown: ``N×1×H×W`` mask of U.
        eps: ε of the Charbonnier-style square roots.

    Returns:
        ``{"alpha", "comp", "dm", "grad", "total"}``, scalar tensors.
    """
    l_alpha = _unknown_mean(torch.sqrt((pred_alpha - alpha) ** 2 + eps * eps), unknown)
    composite = pred_alpha * fg + (1.0 - pred_alpha) * bg
    l_comp = _unknown_mean(_channel_mean(torch.sqrt((composite - image) ** 2 + eps * eps)), unknown)
    l_dm = 0.5 * l_alpha + 0.5 * l_comp
    l_grad = _unknown_mean((gradient_magnitude(pred_alpha) - gradient_magnitude(alpha)).abs(), unknown)
    return {"alpha": l_alpha, "comp": l_comp, "dm": l_dm, "grad": l_grad, "total": l_dm + l_grad}


def result_loss(
    image: torch.Tensor,
    trimap: torch.Tensor,
    alpha: torch.Tensor,
    fg: torch.Tensor,
    bg: torch.Tensor,
    alpha_gt: torch.Tensor,
    fg_gt: torch.Tensor,
    bg_gt: torch.Tensor,
    unknown: torch.Tensor,
    settings: Any = None,
    frame_scale: float = RESULT_FRAME_SCALE,
) -> dict[str, torch.Tensor]:
    """The loss on what the user gets: the networks' alpha, F and B through the refinement.

    Each crop is refined by :func:`core.compositing.refine` (differentiable: the conjugate
    gradients are unrolled), then scored as :mod:`core.evaluate` scores a matte, over the unknown
    pixels: L1 of alpha, alpha-weighted L1 of F and (1 − alpha)-weighted L1 of B (true alpha
    weights). Returns ``{"alpha", "fg", "bg", "total"}`` (total: their sum), means over crops.

    Args:
        image, fg, bg, fg_gt, bg_gt: ``N×3×H×W``; trimap, alpha, alpha_gt, unknown: ``N×1×H×W``.
        settings: :class:`core.compositing.Settings` of the refinement (default: its defaults);
            with ``knn`` > 0 each crop gets the KNN term built from its own colours.
        frame_scale: the KNN term's positions are scaled as if each crop lay in a frame this many
            times its size (:func:`core.knn.knn_term`'s ``frame``): real foregrounds are drawn at
            480-640 px and cropped at 192 px, so a crop is about a third of the frame the pipeline
            would refine it in.
    """
    from core.compositing import refine
    from core.knn import term_for
    from core.trimap import split_trimap_tensor

    terms: dict[str, list[torch.Tensor]] = {"alpha": [], "fg": [], "bg": []}
    for i in range(image.shape[0]):
        crop = slice(i, i + 1)
        knn = None
        if settings is not None and settings.knn > 0:
            fg_known, _, band = split_trimap_tensor(trimap[i, 0])
            if bool(band.any()):
                h, w = band.shape
                frame = (int(round(h * frame_scale)), int(round(w * frame_scale)), 0, 0)
                colour = image[i].detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
                knn = term_for(settings, colour, band.cpu().numpy(), fg_known.cpu().numpy(), frame, workers=1)
        refined = refine(image[crop], trimap[crop], alpha[crop], fg[crop], bg[crop], settings, knn=knn)
        u = unknown[crop].to(image.dtype)
        n = u.sum().clamp_min(1.0)
        a = alpha_gt[crop]
        terms["alpha"].append(((refined.alpha - a).abs() * u).sum() / n)
        terms["fg"].append(((refined.fg - fg_gt[crop]).abs() * a * u).sum() / (3 * n))
        terms["bg"].append(((refined.bg - bg_gt[crop]).abs() * (1 - a) * u).sum() / (3 * n))
    out = {k: torch.stack(v).mean() for k, v in terms.items()}
    out["total"] = out["alpha"] + out["fg"] + out["bg"]
    return out
