"""The parameter-free priors that stand in for the three networks with ``--weights none``.

A diagnostic, not a product: the same pipeline and refinement with no learning at all, so an
evaluation can say what the networks add (the ablation beside every result).

- background and foreground: the pull-push fill of the known layer
  (:func:`core.nets.blocks.fill_from_known`, the sampling networks' own starting point);
- alpha: 0.5 over the unknown region.

They take the networks' inputs (``N×C×H×W``, the same channels) and give outputs of the same
shape, so the pipeline runs them unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from core.nets.blocks import fill_from_known


class FillPrior(nn.Module):
    """Background or foreground: the plate's known pixels filled into the hidden ones.

    Input ``N×C×H×W`` whose channels 0-2 are the plate and 3 is 1 where the layer is to be
    estimated (the sampling networks' convention); output ``N×3×H×W``.
    """

    stride = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fill_from_known(x[:, :3], 1 - x[:, 3:4])


class HalfAlpha(nn.Module):
    """Alpha 0.5 everywhere (the pipeline keeps it only over the unknown region); output ``N×1×H×W``."""

    stride = 1

    def forward(self, x: torch.Tensor, where: torch.Tensor | None = None) -> torch.Tensor:
        return torch.full_like(x[:, :1], 0.5)


class PriorBundle:
    """What :class:`core.pipeline.Matter` loads for ``weights="none"``: the priors above, with a
    manifest that says what they are.

    ``refinement`` (the settings a bundle's manifest records, see
    :func:`core.pipeline.refinement_settings`) and ``settings_of`` (that bundle's name) make the
    diagnostic the *same* pipeline as that bundle's with the priors in the networks' place; without
    them the refinement runs at the module defaults. The matting network's alpha as a data term
    (``network_weight``) is always off: the priors' alpha is a constant 0.5, and a pull toward it
    would only handicap them.
    """

    name = "none"
    path = None

    def __init__(self, refinement: dict[str, Any] | None = None, settings_of: str | None = None) -> None:
        from core.compositing import Settings

        fields = {f.name for f in dataclasses.fields(Settings)} - {"max_iterations"}
        chosen = {k: v for k, v in (refinement or {}).items() if k in fields}
        if chosen:
            chosen["network_weight"] = 0.0
        self.settings_of = settings_of if chosen else None
        where = (f"the refinement settings of the {settings_of!r} bundle" if self.settings_of
                 else "the refinement at its module defaults")
        self.manifest = {
            "name": "none",
            "description": "no networks: pull-push fill of the known layers for B and F, alpha 0.5, then "
                           f"{where} (a diagnostic)",
            "trained": True,  # nothing to train; the pipeline may run it
            "networks": {},
            **({"refinement": chosen, "settings_of": self.settings_of} if chosen else {}),
        }

    def load_networks(self, device: str | torch.device = "cpu") -> dict[str, nn.Module]:
        return {"background": FillPrior().to(device), "foreground": FillPrior().to(device),
                "alpha": HalfAlpha().to(device)}
