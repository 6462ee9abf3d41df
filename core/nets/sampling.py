"""The two-stage sampling network used for the background and the foreground (patent para. 0039-0046).

Both stages are fully convolutional encoder-decoders after the inpainting network of Yu et al.
2018 ("Generative Image Inpainting with Contextual Attention"), changed as the patent says:

- stage 1 sees the **whole** image, not the image with its holes filled with white, plus the
  binary mask (and, for the foreground, the predicted background): it learns to tell the
  sought layer's colours from the mixed colours of the unknown region (para. 0041);
- stage 2 takes the coarse estimate pasted into the known pixels, the mask and the image, and runs
  two parallel encoders — dilated convolutions and contextual attention from masked positions to
  known ones — merged into one decoder;
- zero padding, no batch norm, ELU, outputs clipped rather than squashed, nearest-neighbour
  upsampling.

``prior_fill`` (on in both named configs): each stage predicts a *correction* instead of the
colours themselves. Stage 1 corrects a parameter-free first guess — the known pixels of the
sought layer (the BG region for the background network, the FG region for the foreground one)
filled into the masked ones by pull-push (:func:`core.nets.blocks.fill_from_known`) — and stage
2 corrects stage 1. The input contract is unchanged (the guess is a fixed function of the
image and the mask). Why: a freshly initialised inpainting network is far worse than copying
the nearest known colours, and on a CPU training budget of a few thousand steps it did not get
back to that level (measured: after 400 steps its background L1 over U was 0.22, the nearest
known colour's 0.17); with the guess it starts there and learns what sampling adds. The last
layer of each decoder is initialised small so that training starts from the guess.

``scale`` (optional, ``1/k`` for a whole ``k``; default 1): the network runs at that fraction of
its input's resolution — the input is averaged down ``k``×``k`` (a low-resolution pixel is to be
estimated when any of its pixels is), both stages run there, and their estimates are upsampled
bilinearly back to the input's size. Background colours behind a soft edge and foreground
colours inside it vary slowly, so at half resolution the estimates lose little while the two
sampling networks, most of the pipeline's arithmetic, cost a quarter. Training runs the network
the same way, so what the matting network learns from is what it gets at inference.

Inputs are in [0, 1]; internally they are mapped to [-1, 1] as in Yu et al.
"""

from __future__ import annotations

from typing import Any, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from core.nets.blocks import ContextualAttention, ConvELU, UpConvELU, fill_from_known


def _encoder_down(in_channels: int, c: int) -> nn.Sequential:
    """conv5, then two stride-2 steps to 1/4 resolution with 4c channels."""
    return nn.Sequential(
        ConvELU(in_channels, c, 5),
        ConvELU(c, 2 * c, 3, stride=2),
        ConvELU(2 * c, 2 * c, 3),
        ConvELU(2 * c, 4 * c, 3, stride=2),
        ConvELU(4 * c, 4 * c, 3),
        ConvELU(4 * c, 4 * c, 3),
    )


def _dilated(c: int) -> nn.Sequential:
    """Layer-by-layer dilated convolutions at 1/4 resolution (rates 2, 4, 8, 16)."""
    return nn.Sequential(*(ConvELU(4 * c, 4 * c, 3, dilation=d) for d in (2, 4, 8, 16)))


def _decoder(c: int) -> nn.Sequential:
    """Back to full resolution; the last layer has no activation (the output is clipped)."""
    return nn.Sequential(
        ConvELU(4 * c, 4 * c, 3),
        ConvELU(4 * c, 4 * c, 3),
        UpConvELU(4 * c, 2 * c),
        ConvELU(2 * c, 2 * c, 3),
        UpConvELU(2 * c, c),
        ConvELU(c, max(c // 2, 1), 3),
        ConvELU(max(c // 2, 1), 3, 3, activation=False),
    )


class SamplingNetwork(nn.Module):
    """Two-stage background / foreground sampling network.

    Parameters
    ----------
    config:
        From :func:`core.nets.network_config` (``architecture == "sampling"``): ``in_channels``
        (4 for background: RGB + mask; 7 for foreground: RGB + mask + predicted BG), ``width``,
        and the contextual attention settings.

    Input ``x`` is ``N×C×H×W`` in [0, 1] with RGB in channels 0-2 and the mask (1 = to be
    estimated) in channel 3; H and W must be multiples of :attr:`stride`. Output ``N×3×H×W``
    in [0, 1].
    """

    #: At full resolution: two stride-2 steps to 1/4, then contextual attention matches at a
    #: further stride >= 2. With ``scale = 1/k`` the input must be a multiple of ``8k``.
    base_stride = 8

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        self.in_channels = int(config["in_channels"])
        scale = float(config.get("scale", 1.0))
        factor = round(1.0 / scale) if scale > 0 else 0
        if factor < 1 or abs(factor * scale - 1.0) > 1e-6:
            raise ValueError(f"sampling network scale must be 1/k for a whole k >= 1, got {scale}")
        self.factor = factor
        self.stride = self.base_stride * factor
        c = int(config["width"])
        # Stage 1: coarse estimate from the whole input.
        self.coarse_encoder = _encoder_down(self.in_channels, c)
        self.coarse_middle = nn.Sequential(_dilated(c), ConvELU(4 * c, 4 * c, 3))
        self.coarse_decoder = _decoder(c)
        # Stage 2: composite (3) + mask (1) + image (3).
        refine_in = 7
        self.dilated_encoder = nn.Sequential(_encoder_down(refine_in, c), _dilated(c))
        self.attention_encoder = _encoder_down(refine_in, c)
        self.attention = ContextualAttention(
            patch=int(config["attention_patch"]),
            rate=int(config["attention_rate"]),
            max_positions=int(config["attention_max_positions"]),
            scale=float(config["attention_scale"]),
        )
        self.attention_after = nn.Sequential(ConvELU(4 * c, 4 * c, 3), ConvELU(4 * c, 4 * c, 3))
        self.merge = ConvELU(8 * c, 4 * c, 3)
        self.fine_decoder = _decoder(c)
        self.prior_fill = bool(config.get("prior_fill", False))
        if self.prior_fill:
            for decoder in (self.coarse_decoder, self.fine_decoder):
                last = decoder[-1].conv
                assert isinstance(last, nn.Conv2d)
                with torch.no_grad():
                    last.weight.mul_(0.1)
                    last.bias.zero_()

    def forward_stages(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return ``(coarse, fine)`` estimates, both ``N×3×H×W`` in [0, 1] (training uses both)."""
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {x.shape[1]}")
        if self.factor == 1:
            return self._stages(x)
        k = self.factor
        small = F.avg_pool2d(x, k)
        small[:, 3:4] = (small[:, 3:4] > 0).to(small.dtype)  # to be estimated if any of its pixels is
        coarse, fine = self._stages(small)
        size = x.shape[-2:]
        return (F.interpolate(coarse, size=size, mode="bilinear", align_corners=False),
                F.interpolate(fine, size=size, mode="bilinear", align_corners=False))

    def _stages(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        image = x[:, :3] * 2 - 1
        mask = x[:, 3:4]
        rest = x[:, 4:] * 2 - 1
        inputs = torch.cat([image, mask, rest], 1)
        coarse = self.coarse_decoder(self.coarse_middle(self.coarse_encoder(inputs)))
        if self.prior_fill:
            coarse = coarse + fill_from_known(image, 1 - mask)
        coarse = coarse.clamp(-1, 1)
        # Known pixels keep the image, masked ones take the coarse estimate (Yu et al.).
        composite = image * (1 - mask) + coarse * mask
        refine_in = torch.cat([composite, mask, image], 1)
        dilated = self.dilated_encoder(refine_in)
        attended = self.attention_after(self.attention(self.attention_encoder(refine_in), mask))
        fine = self.fine_decoder(self.merge(torch.cat([dilated, attended], 1)))
        if self.prior_fill:
            fine = fine + coarse
        fine = fine.clamp(-1, 1)
        return (coarse + 1) / 2, (fine + 1) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[1]
