"""Building blocks shared by the networks: ELU convolutions and contextual attention."""

from __future__ import annotations

import math
from typing import List

import torch
import torch.nn.functional as F
from torch import nn


class ConvELU(nn.Module):
    """Zero-padded convolution followed by ELU (patent para. 0041: no batch norm, ELU, zero padding).

    ``activation=False`` gives the last layer of a decoder, whose output is clipped by the caller
    instead of squashed.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        activation: bool = True,
    ) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation
        )
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return F.elu(x) if self.activation else x


class UpConvELU(nn.Module):
    """Nearest-neighbour x2 upsampling then a convolution (patent para. 0041: nearest-neighbour upsampling)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = ConvELU(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ContextualAttention(nn.Module):
    """Contextual attention of Yu et al. 2018, expressed through scaled dot-product attention.

    Each masked position (query) is rebuilt as a softmax-weighted sum of the *raw* feature patches
    of known positions (values), weighted by the cosine similarity of its feature patch with
    theirs (keys). Only masked positions are queries and only known positions are keys, gathered
    beforehand, so no attention mask (and no score entry) is ever spent on pairs that cannot
    matter.

    Scaling: attention is quadratic in positions, so matching runs on a grid whose resolution is
    *capped*: the matching stride ``rate`` starts at the configured value and doubles until the
    grid holds at most ``max_positions`` cells (4096 for ``small``: a 4096x4096 score block is
    64 MB and a few hundred MFLOP, whatever the plate size). The capped resolution was chosen over
    a bounded neighbourhood because background samples often come from far away (the method's
    point, para. 0041: "attend on distant background features"). Raw value patches are
    ``2*rate`` wide with stride ``rate``, so what is pasted back keeps the feature map's full
    resolution, and the unfolded value tensor is always 4x the feature map, independent of the
    rate. Queries are processed in chunks (softmax of the scaled scores times the values, the
    computation of :func:`torch.nn.functional.scaled_dot_product_attention`), bounding peak
    memory further.

    Yu et al.'s score propagation ("fuse") step is left out: it needs the full score matrix
    reshaped to an image, which is what this implementation avoids.
    """

    def __init__(
        self, patch: int = 3, rate: int = 2, max_positions: int = 4096, scale: float = 10.0,
        query_chunk: int = 4096,
    ) -> None:
        super().__init__()
        if rate < 2 or rate & (rate - 1):
            raise ValueError(f"contextual attention rate must be a power of two >= 2, got {rate}")
        self.patch = patch
        self.rate = rate
        self.max_positions = max_positions
        self.scale = scale
        self.query_chunk = query_chunk

    def matching_rate(self, height: int, width: int) -> int:
        """The matching stride used for a feature map of ``height`` x ``width``."""
        rate = self.rate
        while math.ceil(height / rate) * math.ceil(width / rate) > self.max_positions:
            rate *= 2
        return rate

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Fill masked positions of ``features`` from known ones.

        Parameters
        ----------
        features: N×C×H×W
        mask: N×1×H'×W', 1 where the position must be filled (resized to H×W here).

        Returns
        -------
        N×C×H×W: attention output at masked positions, ``features`` unchanged elsewhere.
        """
        n, c, h, w = features.shape
        rate = self.matching_rate(h, w)
        # Pad so the grid divides evenly; padded cells count as masked (never used as keys).
        ph, pw = (-h) % rate, (-w) % rate
        feats = F.pad(features, (0, pw, 0, ph))
        m = F.interpolate(mask.float(), size=(h, w), mode="nearest")
        m = F.pad(m, (0, pw, 0, ph), value=1.0)
        # Keys and queries: patch x patch neighbourhoods on the matching grid.
        small = F.avg_pool2d(feats, rate) if rate > 1 else feats
        keys = F.unfold(small, self.patch, padding=self.patch // 2)  # N x C*p*p x gh*gw
        keys = F.normalize(keys, dim=1)
        # A cell is known only if every pixel under it is known.
        cell_masked = F.max_pool2d(m, rate).flatten(1) > 0.5  # N x gh*gw
        # Values: raw 2r x 2r patches with stride r, so pasting them back covers the map twice.
        vpad = rate // 2
        values = F.unfold(feats, 2 * rate, stride=rate, padding=vpad)  # N x C*4r^2 x L
        # col2im sums overlapping 2r x 2r patches (each pixel covered 4 times); normalise by the count.
        ones = torch.ones_like(feats[:1, :1])
        count = F.fold(
            F.unfold(ones, 2 * rate, stride=rate, padding=vpad), feats.shape[2:], 2 * rate,
            stride=rate, padding=vpad,
        )
        outputs: List[torch.Tensor] = []
        for b in range(n):
            masked = cell_masked[b]
            known = ~masked
            if not bool(known.any()) or not bool(masked.any()):
                outputs.append(feats[b : b + 1])
                continue
            k = keys[b][:, known].t()  # Nk x Dk
            v = values[b][:, known].t()  # Nk x Dv
            q_idx = masked.nonzero().squeeze(1)
            q_all = keys[b][:, q_idx].t()  # Nq x Dk
            filled = torch.empty(q_idx.numel(), v.shape[1], dtype=v.dtype, device=v.device)
            for start in range(0, q_idx.numel(), self.query_chunk):
                q = q_all[start : start + self.query_chunk]
                # Scaled dot-product attention written out: the fused operator is newer than
                # the torch of the Nuke versions the exported module must load in (1.6, 1.12).
                filled[start : start + q.shape[0]] = torch.softmax(q @ k.t() * self.scale, -1) @ v
            pasted = values[b].clone()
            pasted[:, q_idx] = filled.t().to(pasted.dtype)
            rebuilt = F.fold(pasted[None], feats.shape[2:], 2 * rate, stride=rate, padding=vpad) / count
            # Known pixels keep their own features; only masked pixels take the attention output.
            outputs.append(torch.where(m[b : b + 1] > 0.5, rebuilt, feats[b : b + 1]))
        out = torch.cat(outputs, 0)
        return out[:, :, :h, :w]


def fill_from_known(image: torch.Tensor, known: torch.Tensor, leak: float = 1e-6) -> torch.Tensor:
    """Fill the pixels where ``known`` is 0 from the nearby known ones, by pull-push.

    A parameter-free first guess of the hidden layer (the sampling networks' prior, see
    :class:`core.nets.sampling.SamplingNetwork`): the colours of the known pixels are averaged
    down an image pyramid (pull: 2×2 means of ``known·image`` and of ``known``), then pushed back
    up, each level keeping its own average where it has enough known support and taking the
    coarser level's (bilinearly upsampled) where it has little. Known pixels come back unchanged;
    a hole is filled with a smooth blend of the colours around it, the nearer ones weighing
    more. The cost is linear in the pixels (a few poolings), so it is as cheap at 4K as at 320².

    Written here rather than taken from a library: it has to be a differentiable torch function
    running on the networks' device inside ``forward``, and OpenCV's inpainting is neither.

    Args:
        image: ``N×C×H×W``.
        known: ``N×1×H×W``, 1 where the pixel's value is the layer's own, 0 where it is to be filled.
        leak: weight every pixel gets whatever ``known`` says, so that an image with no known
            pixel at all is filled with its own mean colour instead of zeros (and nothing is
            ever divided by zero). The hidden pixels' own values count ``leak`` times as much as
            a known pixel's: nothing in practice. The trained networks saw the default:
            changing it changes their input.

    Returns:
        ``N×C×H×W``, equal to ``image`` where ``known`` is 1 (to within ``leak``).
    """
    weight = known.to(image.dtype) * (1 - leak) + leak
    colour = image * weight
    pyramid = [(colour, weight)]
    while colour.shape[-2] > 1 or colour.shape[-1] > 1:  # down to one pixel, so every hole has known support
        kernel = [2 if colour.shape[-2] > 1 else 1, 2 if colour.shape[-1] > 1 else 1]
        colour = F.avg_pool2d(colour, kernel, ceil_mode=True)
        weight = F.avg_pool2d(weight, kernel, ceil_mode=True)
        pyramid.append((colour, weight))
    estimate = pyramid[-1][0] / pyramid[-1][1]
    for level in range(len(pyramid) - 2, -1, -1):  # back up, finest last
        colour, weight = pyramid[level]
        coarser = F.interpolate(estimate, size=colour.shape[-2:], mode="bilinear", align_corners=False)
        # Full trust in a level's own average once a quarter of its footprint is known.
        trust = (4 * weight).clamp(max=1.0)
        estimate = trust * (colour / weight) + (1 - trust) * coarser
    return estimate
