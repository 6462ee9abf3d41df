"""docs/CONTRACTS.md's "one place only" rules, held by reading the product code's source."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _product_sources() -> list[Path]:
    files = sorted((ROOT / "core").rglob("*.py")) + sorted((ROOT / "tools").glob("*.py"))
    return [f for f in files if "experiments" not in f.parts]


def test_os_replace_only_in_core_io_replace_file() -> None:
    # core.io.replace_file is the one os.replace of core and tools (retried on Windows).
    offenders = [str(f.relative_to(ROOT)) for f in _product_sources()
                 if f != ROOT / "core" / "io.py" and "os.replace(" in f.read_text(encoding="utf-8")]
    assert offenders == []


def test_no_trimap_threshold_outside_split_trimap() -> None:
    # What counts as known is core.trimap.split_trimap's: no hand-made `trimap > 0.01` elsewhere.
    pattern = re.compile(r"\btri(map)?\w*\s*[<>]=?\s*(0\.\d+|\d+\s*/\s*255)")
    offenders = [f"{f.relative_to(ROOT)}:{n}" for f in _product_sources() if f != ROOT / "core" / "trimap.py"
                 for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_premultiplication_is_colour_premultiply() -> None:
    import numpy as np

    from core.colour import premultiply

    fg = np.random.default_rng(0).random((4, 5, 3), dtype=np.float32)
    alpha = np.random.default_rng(1).random((4, 5), dtype=np.float32)
    # the rendered foregrounds' input to the layer estimate relies on this being F·α exactly
    assert np.array_equal(premultiply(fg, alpha), fg * alpha[..., None])


def test_the_degraded_result_attribute_is_the_same_in_core_and_the_nuke_cache() -> None:
    # core.cli writes it into a frame computed otherwise than asked; nuke_plugin.cache (which
    # cannot import core) reads it to compute that frame again rather than serve it.
    from core.cli import DEGRADED_ATTRIBUTE
    from nuke_plugin import cache

    assert cache.DEGRADED_ATTRIBUTE == DEGRADED_ATTRIBUTE == "lbsmatte/degraded"
