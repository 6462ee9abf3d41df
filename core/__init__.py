"""LBSMatte core: learning-based sampling matting (background -> foreground -> alpha).

The Python API, for scripts (the names below are re-exported from the modules that define them)::

    import core

    plate = core.read_image("plate.1001.exr")               # float32 H×W×C, scene-linear
    trimap = core.read_image("trimap.1001.png")             # 0 BG, 0.5 unknown, 1 FG
    result = core.matte(plate.rgb(), trimap.pixels, colour="linear")
    core.write_matte_exr("matte.1001.exr", result, like=plate.info)

- :func:`matte` / :class:`Matter` (many frames, networks loaded once) -> :class:`Matte`
  (``alpha`` ``H×W``, ``fg`` and ``bg`` ``H×W×3``, float32; ``Matte.rgba()`` premultiplied);
  :mod:`core.pipeline`.
- Readers and writers, kept apart from the pipeline: :func:`read_image` (-> :class:`Image`),
  :func:`write_matte_exr`, :func:`write_image`; :mod:`core.io`.
- Trimaps: :func:`normalise_trimap`, :func:`trimap_from_matte`; :mod:`core.trimap`.
- Premultiplication: :func:`premultiply`, :func:`unpremultiply`; :mod:`core.colour`.
- Weights bundles: :func:`load_bundle`, :class:`Bundle`; :mod:`core.weights`.
- Errors: :class:`LBSMatteError` and its subclasses; :mod:`core.errors`.

This package never imports ``nuke`` or Qt, and ``import core`` alone imports neither torch nor
OpenImageIO: each name is imported from its module when it is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from core.errors import (
    InputError,
    LBSMatteError,
    OutputError,
    ResourceError,
    TrainingError,
    TrimapError,
    WeightsError,
)

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first use, PEP 562).
_LAZY = {
    "matte": "core.pipeline",
    "Matter": "core.pipeline",
    "Matte": "core.pipeline",
    "read_image": "core.io",
    "write_matte_exr": "core.io",
    "write_image": "core.io",
    "Image": "core.io",
    "normalise_trimap": "core.trimap",
    "trimap_from_matte": "core.trimap",
    "premultiply": "core.colour",
    "unpremultiply": "core.colour",
    "load_bundle": "core.weights",
    "Bundle": "core.weights",
}

__all__ = [
    *_LAZY,
    "LBSMatteError",
    "InputError",
    "TrimapError",
    "WeightsError",
    "OutputError",
    "ResourceError",
    "TrainingError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
