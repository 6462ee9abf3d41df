"""The three networks of learning-based sampling matting (SPEC §3).

``build_network(config)`` turns a config from :func:`network_config` (or from a weights bundle's
manifest) into a module; the module keeps its config at ``.config`` so it can be saved with it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from core.errors import WeightsError
from core.nets.blocks import ContextualAttention
from core.nets.config import IN_CHANNELS, MAX_PARAMETERS, ROLES, SIZES, check_bounds, network_config
from core.nets.matting import MattingNetwork
from core.nets.sampling import SamplingNetwork

__all__ = [
    "ContextualAttention",
    "IN_CHANNELS",
    "MattingNetwork",
    "ROLES",
    "SIZES",
    "SamplingNetwork",
    "build_network",
    "network_config",
]

_ARCHITECTURES: dict[str, type[nn.Module]] = {"sampling": SamplingNetwork, "matting": MattingNetwork}


def build_network(config: dict[str, Any]) -> nn.Module:
    """Build an untrained network from its architecture config.

    Raises
    ------
    WeightsError
        If the config names an unknown architecture, lacks a key the architecture needs, or has
        a size outside the bounds of :func:`core.nets.config.check_bounds` or more than
        :data:`~core.nets.config.MAX_PARAMETERS` parameters (checked before any memory is
        allocated: a manifest is whoever made the bundle's).
    """
    if not isinstance(config, dict):
        raise WeightsError(f"a network config must be a dict, got {type(config).__name__}")
    arch = config.get("architecture")
    if not isinstance(arch, str) or arch not in _ARCHITECTURES:  # a list or table is unhashable: a TypeError
        raise WeightsError(f"unknown network architecture {arch!r}; expected one of {', '.join(_ARCHITECTURES)}")
    try:
        check_bounds(config)
        # Sized first on the meta device (shapes only, no memory): a config within every bound
        # may still multiply up to more parameters than any network of ours has. The torch of
        # Nuke 14's export (1.12, docs/nuke.md) has no device context: there it is counted built.
        meta = hasattr(torch.device, "__enter__")
        with torch.device("meta") if meta else contextlib.nullcontext():
            net = _ARCHITECTURES[arch](config)
        count = sum(p.numel() for p in net.parameters())
        if count > MAX_PARAMETERS:
            raise WeightsError(f"it describes a network of {count:,} parameters, more than the {MAX_PARAMETERS:,} "
                               "allowed")
        return _ARCHITECTURES[arch](config) if meta else net
    except (WeightsError, KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"invalid {arch} network config: {exc}") from exc
