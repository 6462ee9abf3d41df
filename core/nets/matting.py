"""The matting network (patent para. 0049-0050): AlphaGAN-style encoder-decoder over 10 channels.

Input: RGB (3) + trimap (1) + predicted BG (3) + predicted FG (3), all in [0, 1]; output one alpha
channel through a sigmoid. The generator of AlphaGAN (Lutz et al. 2018): a residual encoder
with an atrous spatial pyramid at the bottom, a decoder with skip connections to the early
features and to the input. Optional last stage: the refinement network of Deep Image Matting
(four full-resolution convolutions over RGB + alpha, residual on alpha).

``colour_line_feature`` (on in both named configs) adds, *inside* the network, the alpha that the
compositing equation I = aF + (1-a)B gives for the predicted F and B (projection of I - B on
F - B), and how reliable it is (|F - B|). It is a fixed function of the 10 input channels, so the
input contract is unchanged; it hands a small network the relation the sampling networks were
trained to make useful (patent para. 0047: good F/B samples make alpha estimation easy).
"""

from __future__ import annotations

from typing import Any, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from core.compositing import alpha_from_composite
from core.trimap import split_trimap_tensor


def _norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels)


class ResidualBlock(nn.Module):
    """ResNet basic block (two 3x3 convolutions with batch norm, identity or 1x1 shortcut)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = _norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = _norm(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), _norm(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class AtrousPyramid(nn.Module):
    """Atrous spatial pyramid pooling (DeepLab v3), as in AlphaGAN's encoder."""

    def __init__(self, in_channels: int, out_channels: int, rates: List[int]) -> None:
        super().__init__()
        branches = [nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), _norm(out_channels))]
        for r in rates:
            branches.append(
                nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 3, padding=r, dilation=r, bias=False),
                    _norm(out_channels),
                )
            )
        self.branches = nn.ModuleList(branches)
        self.pool = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), _norm(out_channels))
        self.project = nn.Sequential(
            nn.Conv2d(out_channels * (len(rates) + 2), out_channels, 1, bias=False), _norm(out_channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: List[torch.Tensor] = []
        for branch in self.branches:
            outs.append(F.relu(branch(x)))
        pooled = F.relu(self.pool(x.mean((2, 3), keepdim=True)))
        outs.append(pooled.expand(-1, -1, x.shape[2], x.shape[3]))
        return F.relu(self.project(torch.cat(outs, 1)))


class MattingNetwork(nn.Module):
    """AlphaGAN-style matting generator.

    Input ``x``: ``N×10×H×W`` in [0, 1] — RGB, trimap (0 BG, 0.5 unknown, 1 FG), BG, FG; H and W
    multiples of :attr:`stride`. Output: alpha ``N×1×H×W`` in [0, 1].
    """

    stride = 16

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        self.in_channels = int(config["in_channels"])
        widths = [int(w) for w in config["widths"]]
        blocks = [int(b) for b in config["blocks"]]
        self.colour_line = bool(config.get("colour_line_feature", False))
        extra = 2 if self.colour_line else 0
        # Trimap as two one-hot planes (FG, unknown) plus the raw inputs.
        stem_in = self.in_channels + 2 + extra
        self.stem = nn.Sequential(
            nn.Conv2d(stem_in, widths[0], 3, 2, 1, bias=False), _norm(widths[0]), nn.ReLU(inplace=True)
        )  # 1/2
        stages = []
        in_c = widths[0]
        for i, (w, nb) in enumerate(zip(widths, blocks, strict=True)):
            layers = [ResidualBlock(in_c, w, stride=1 if i == 0 else 2)]
            layers += [ResidualBlock(w, w) for _ in range(nb - 1)]
            stages.append(nn.Sequential(*layers))
            in_c = w
        self.stages = nn.ModuleList(stages)  # 1/2, 1/4, 1/8, 1/16
        self.aspp = AtrousPyramid(widths[-1], int(config["aspp_width"]), [int(r) for r in config["aspp_rates"]])
        d = int(config["decoder_width"])
        aw = int(config["aspp_width"])
        # Decoder: 1/16 -> 1/8 -> 1/4 -> 1/2 -> 1, with skips to encoder features and the input.
        self.up3 = self._fuse(aw + widths[2], 2 * d)
        self.up2 = self._fuse(2 * d + widths[1], 2 * d)
        self.up1 = self._fuse(2 * d + widths[0], d)
        self.up0 = self._fuse(d + stem_in, d)
        self.head = nn.Conv2d(d, 1, 3, padding=1)
        self.refine_net: Optional[nn.Module] = None
        if config.get("refine"):
            rw = int(config["refine_width"])
            # Deep Image Matting's refinement stage: 4 convolutions at full resolution, residual on alpha.
            self.refine_net = nn.Sequential(
                nn.Conv2d(4, rw, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(rw, rw, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(rw, rw, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(rw, 1, 3, padding=1),
            )

    @staticmethod
    def _fuse(in_channels: int, out_channels: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), _norm(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), _norm(out_channels), nn.ReLU(inplace=True),
        )

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {x.shape[1]}")
        image, trimap, bg, fg = x[:, 0:3], x[:, 3:4], x[:, 4:7], x[:, 7:10]
        fg_known, _, unknown = split_trimap_tensor(trimap)
        planes = [x, fg_known.to(x.dtype), unknown.to(x.dtype)]
        if self.colour_line:
            line_alpha, distance = alpha_from_composite(image, bg, fg)
            planes += [line_alpha, distance]
        return torch.cat(planes, 1)

    def forward_logits(self, x: torch.Tensor, where: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Alpha before the sigmoid (for losses that need it); ``where``: see :meth:`forward`."""
        inp = self._inputs(x)
        s0 = self.stem(inp)
        feats: List[torch.Tensor] = []
        h = s0
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        y = self.aspp(feats[-1])
        y = self.up3(torch.cat([F.interpolate(y, size=feats[2].shape[2:], mode="bilinear", align_corners=False), feats[2]], 1))
        y = self.up2(torch.cat([F.interpolate(y, size=feats[1].shape[2:], mode="bilinear", align_corners=False), feats[1]], 1))
        y = self.up1(torch.cat([F.interpolate(y, size=feats[0].shape[2:], mode="bilinear", align_corners=False), feats[0]], 1))
        if where is None:
            return self._full_resolution(x, inp, y)
        return self._full_resolution_where(x, inp, y, where)

    def _full_resolution(self, x: torch.Tensor, inp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The last, full-resolution layers: ``up0``, the head and the optional refinement."""
        y = self.up0(torch.cat([F.interpolate(y, size=inp.shape[2:], mode="bilinear", align_corners=False), inp], 1))
        logits = self.head(y)
        if self.refine_net is not None:
            alpha = torch.sigmoid(logits)
            logits = logits + self.refine_net(torch.cat([x[:, 0:3], alpha], 1))
        return logits

    #: Side of the pieces :meth:`_full_resolution_where` cuts the frame into, and the margin each
    #: piece is computed with: the full-resolution layers see 3 px around a pixel (up0's two
    #: convolutions and the head), 4 more with the refinement, and the half-resolution
    #: features 1 px around (bilinear upsampling); 8 px covers all of it with room to spare.
    PIECE, HALO = 64, 8
    __constants__ = ["PIECE", "HALO"]  # class constants TorchScript reads

    def _full_resolution_where(self, x: torch.Tensor, inp: torch.Tensor, y: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        """:meth:`_full_resolution` only on the ``PIECE``-px pieces that hold a ``where`` pixel.

        The full-resolution layers are half of the network's arithmetic but see only a few pixels
        around each output pixel, so a piece computed with ``HALO`` px of context gives the
        values of the whole-frame computation. Outside the pieces the logits are -30 (alpha 0).
        """
        n, _, hh, ww = inp.shape
        p, m = self.PIECE, self.HALO
        need = F.max_pool2d(where.to(inp.dtype), p, ceil_mode=True) > 0  # N×1×ceil(H/p)×ceil(W/p)
        out = inp.new_full((n, 1, hh, ww), -30.0)
        lh, lw = y.shape[2:]
        for piece in need.nonzero():  # (batch, channel, piece row, piece column)
            b, y0, x0 = int(piece[0]), int(piece[2]) * p, int(piece[3]) * p
            y1, x1 = min(hh, y0 + p), min(ww, x0 + p)
            # The piece plus its halo, on even coordinates so the half-resolution grid lines up.
            a0, c0 = max(0, y0 - m) // 2 * 2, max(0, x0 - m) // 2 * 2
            a1, c1 = min(hh, y1 + m), min(ww, x1 + m)
            a1, c1 = min(hh, a1 + a1 % 2), min(ww, c1 + c1 % 2)
            # Bilinear ×2 upsampling reads one low-res pixel either side: take one more, upsample,
            # and cut the window out; away from the frame's edge that is exactly the whole-frame value.
            l0, l1 = max(0, a0 // 2 - 1), min(lh, a1 // 2 + 1)
            k0, k1 = max(0, c0 // 2 - 1), min(lw, c1 // 2 + 1)
            up = F.interpolate(y[b : b + 1, :, l0:l1, k0:k1], size=(2 * (l1 - l0), 2 * (k1 - k0)),
                               mode="bilinear", align_corners=False)
            up = up[:, :, a0 - 2 * l0 : a1 - 2 * l0, c0 - 2 * k0 : c1 - 2 * k0]
            z = self.head(self.up0(torch.cat([up, inp[b : b + 1, :, a0:a1, c0:c1]], 1)))
            if self.refine_net is not None:
                z = z + self.refine_net(torch.cat([x[b : b + 1, 0:3, a0:a1, c0:c1], torch.sigmoid(z)], 1))
            out[b : b + 1, :, y0:y1, x0:x1] = z[:, :, y0 - a0 : y1 - a0, x0 - c0 : x1 - c0]
        return out

    def forward(self, x: torch.Tensor, where: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Alpha ``N×1×H×W``. With ``where`` (``N×1×H×W`` bool), only alpha at those pixels is
        wanted: the full-resolution layers run only on the 64-px pieces that hold one (the same
        values at those pixels; elsewhere in the pieces too, and 0 outside them). Used at
        inference, where only the unknown pixels' alpha is kept."""
        return torch.sigmoid(self.forward_logits(x, where))
