"""The sRGB curve on tensors, for :mod:`core.colour` (which re-exports these two functions).

In a module of its own so that :mod:`core.colour`, and :mod:`core.io` with it, import without
torch. Each function keeps ``core.colour`` as its module: TorchScript names it by that (the code of
an exported module says ``core.colour.encode_srgb``, as before the split), and the docs refer to it
there.
"""

from __future__ import annotations

import torch

from core.colour import _ENC_CUT, _LIN_CUT


def decode_srgb(encoded: torch.Tensor, cut: float = _ENC_CUT) -> torch.Tensor:
    """The sRGB decoding of :func:`to_linear` on a tensor, on its device (display encoding ->
    scene-linear): the networks' colours brought into linear light without a trip to the host.
    Scriptable (:func:`torch.jit.script`); ``cut`` is the curve's constant, an argument only
    because TorchScript reads module constants as defaults."""
    v = encoded.clamp_min(0.0)
    return torch.where(v <= cut, v / 12.92, ((v.clamp_min(cut) + 0.055) / 1.055) ** 2.4)


def encode_srgb(linear: torch.Tensor, cut: float = _LIN_CUT) -> torch.Tensor:
    """:func:`to_display` of a ``linear`` plate on a tensor (the sRGB curve, continued above 1;
    negatives and NaN to 0), the inverse of :func:`decode_srgb`. Scriptable, like it: the
    exported module (:mod:`core.export`) encodes the plate for the networks with it."""
    x = torch.where(torch.isnan(linear), torch.zeros_like(linear), linear).clamp_min(0.0)
    return torch.where(x <= cut, 12.92 * x, 1.055 * x.clamp_min(cut) ** (1.0 / 2.4) - 0.055)


for _fn in (decode_srgb, encode_srgb):
    _fn.__module__ = "core.colour"
