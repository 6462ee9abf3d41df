"""The three networks of learning-based sampling matting (SPEC §3).

``build_network(config)`` turns a config from :func:`network_config` (or from a weights bundle's
manifest) into a module; the module keeps its config at ``.config`` so it can be saved with it.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from core.errors import WeightsError
from core.nets.blocks import ContextualAttention
from core.nets.config import IN_CHANNELS, ROLES, SIZES, network_config
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
        If the config names an unknown architecture or lacks a key the architecture needs.
    """
    if not isinstance(config, dict):
        raise WeightsError(f"a network config must be a dict, got {type(config).__name__}")
    arch = config.get("architecture")
    if arch not in _ARCHITECTURES:
        raise WeightsError(f"unknown network architecture {arch!r}; expected one of {', '.join(_ARCHITECTURES)}")
    try:
        return _ARCHITECTURES[arch](config)
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"invalid {arch} network config: {exc}") from exc
