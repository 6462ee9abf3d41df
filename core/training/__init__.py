"""Training of the three networks (SPEC §7): training data, losses, the training loop.

Public names are re-exported lazily so ``import core.training`` stays light: the losses need only
torch, and the data generators (numpy, scipy, pymatting) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "background_loss": "core.training.losses",
    "foreground_l1_loss": "core.training.losses",
    "compositional_loss": "core.training.losses",
    "composition_weight": "core.training.losses",
    "weighted_compositional_loss": "core.training.losses",
    "foreground_loss": "core.training.losses",
    "gradient_magnitude": "core.training.losses",
    "matting_loss": "core.training.losses",
    "CompositeSampler": "core.training.data",
    "ShowDataset": "core.training.data",
    "VALIDATION_OBJECTS": "core.training.data",
    "trimap_from_alpha": "core.training.data",
    "jitter_colours": "core.training.data",
    "generate_foreground": "core.training.procedural",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'core.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
