"""The ``Example`` blocks of the core modules' docstrings run, and say what they show (STYLE:
"examples that run"). Nothing else ran them, so a docstring could drift from the code."""

from __future__ import annotations

import doctest
import importlib

import pytest

#: Modules whose docstrings hold examples; each must hold at least one (a module that loses
#: its examples is noticed here too).
MODULES = (
    "core.pipeline",  # matte(): the I/O contract, on the installed default bundle (CPU, 64×64)
    "core.trimap",
    "core.colour",
    "core.metrics",
    "core.baselines",
    "core.nets.config",
    "core.training.procedural",
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run_and_pass(name: str) -> None:
    if name == "core.pipeline":
        from core.weights import has_trained_default

        if not has_trained_default():
            pytest.skip("no trained default weights bundle installed")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} of {name}'s {result.attempted} examples failed (output above)"
