"""docs/CONTRACTS.md's "one place only" rules, held by reading the product code's source."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

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
    # The Nuke layer too: it hands the trimap to the tool as baked and must not classify it itself.
    pattern = re.compile(r"\btri(map)?\w*\s*[<>]=?\s*(0\.\d+|\d+\s*/\s*255)")
    sources = _product_sources() + sorted((ROOT / "nuke_plugin").glob("*.py"))
    offenders = [f"{f.relative_to(ROOT)}:{n}" for f in sources if f != ROOT / "core" / "trimap.py"
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


def test_the_most_rounds_is_the_same_in_core_and_the_nuke_node() -> None:
    # The node refuses refine rounds past what the tool takes (it cannot import core to ask).
    import fake_nuke.fixtures  # noqa: F401 (import nuke: the test double)

    from core.compositing import WHOLE_NUMBER_RANGES
    from nuke_plugin import node

    assert node.MAX_ROUNDS == WHOLE_NUMBER_RANGES["rounds"][1] == 100


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and groups")
@pytest.mark.parametrize("twin", ["core.io.replace_file", "nuke_plugin.cache._replace"])
def test_a_replaced_file_keeps_its_mode_and_group_in_core_and_the_nuke_cache(twin: str, tmp_path: Path) -> None:
    # A show's group-writable cache or frame became 0644 on a rerun; nuke_plugin.cache (which
    # cannot import core) keeps a twin of core.io.replace_file: both keep what was there.
    from core import io
    from nuke_plugin import cache

    replace = {"core.io.replace_file": io.replace_file, "nuke_plugin.cache._replace": cache._replace}[twin]
    group = 4242 if os.geteuid() == 0 else os.getegid()  # root may give any group; others their own
    modes = {"shared": 0o664, "private": 0o600, "flagged": 0o6755}
    old = os.umask(0o022)
    try:
        for name, mode in modes.items():
            (tmp_path / name).write_text("old")
            os.chmod(tmp_path / name, mode)
        os.chown(tmp_path / "shared", -1, group)
        for name in [*modes, "new"]:
            (tmp_path / "tmp").write_text("new")
            replace(tmp_path / "tmp", tmp_path / name)
    finally:
        os.umask(old)
    got = {p.name: (p.read_text(), p.stat().st_mode & 0o7777) for p in tmp_path.iterdir()}
    assert got == {"shared": ("new", 0o664), "private": ("new", 0o600), "flagged": ("new", 0o755),
                   "new": ("new", 0o644)}
    assert (tmp_path / "shared").stat().st_gid == group


def _replace_on_windows(twin: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, read_only: bool,
                        refusals: int) -> tuple[str, int]:
    """What ``twin`` does on Windows (``os.name`` patched: Windows cannot run here) where
    ``os.replace`` is refused ``refusals`` times (-1: always) with the PermissionError Windows gives
    both for a file another process holds open and for one with the read-only attribute (``os.access``
    patched to report it): ``("replaced" or "refused", how many tries)``."""
    import types

    from core import io
    from nuke_plugin import cache

    module, replace = {"core.io.replace_file": (io, io.replace_file),
                       "nuke_plugin.cache._replace": (cache, cache._replace)}[twin]
    tries: list[str] = []

    def refuse(src, dst):
        tries.append(os.fspath(dst))
        if refusals < 0 or len(tries) <= refusals:
            raise PermissionError(13, "Access is denied", os.fspath(src))
        os.replace(src, dst)

    windows = types.SimpleNamespace(**{name: getattr(os, name) for name in dir(os) if not name.startswith("__")})
    windows.name, windows.replace = "nt", refuse
    windows.access = lambda path, mode: not (read_only and mode == os.W_OK) and os.access(path, mode)
    monkeypatch.setattr(module, "os", windows)
    monkeypatch.setattr(module, "REPLACE_RETRY_S", 0.3)
    (tmp_path / "dest").write_text("old")
    (tmp_path / "tmp").write_text("new")
    try:
        replace(str(tmp_path / "tmp"), str(tmp_path / "dest"))
    except PermissionError:
        return "refused", len(tries)
    return "replaced", len(tries)


@pytest.mark.parametrize("twin", ["core.io.replace_file", "nuke_plugin.cache._replace"])
def test_on_windows_a_replace_is_retried_and_a_read_only_file_is_not_waited_for_in_core_and_the_nuke_cache(
        twin: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The Nuke copy retried a read-only cache file for REPLACE_RETRY_S and then failed anyway (core
    # gives up at once): the artist waited for nothing. Both wait out a reader letting go.
    assert _replace_on_windows(twin, monkeypatch, tmp_path, read_only=True, refusals=-1) == ("refused", 1)
    assert _replace_on_windows(twin, monkeypatch, tmp_path, read_only=False, refusals=2) == ("replaced", 3)
    _, tries = _replace_on_windows(twin, monkeypatch, tmp_path, read_only=False, refusals=-1)
    assert tries > 1  # held open for good: retried until REPLACE_RETRY_S ran out, then refused


#: ``--frames`` strings read by ``core.io.parse_frames`` (fileseq) and by its standard-library twin
#: ``nuke_plugin.batch.parse_frames`` (``nuke -t`` runs without core): the same frames in the same
#: order, or the same message.
FRAME_STRINGS = [
    "1001-1100", "1001", "1001-1001", " 7 - 9 ", "5-1", "10-1x2", "5-1x2", "5-1x-1", "-5--1", "-2-3", "1--3", "-3",
    "1-10x2", "1-10y3", "1-10:3", "1-3:1", "1,3,5", "1-3 , 7", "1-3,2-5", "1,,3", "1.0", "1-3x1.0",
    # refused alike
    "1-100000",  # exactly the most frames one run renders
    "1.5", "1-3x0.5", "1-2x0.5", "1-3x0.25", "1-10x2.5", "1-10x-2", "1-3x0", "x", "1-", "10-x", "", ",", "1-3y1",
    "#FRAME_START#-#FRAME_END#", "0-100000", "1-100000001",
    # where fileseq's FrameSet alone went wrong: padding characters dropped ('1@0@0@1' was 1001), a
    # subframe overlapping an earlier part lost or made up, a frame moved; a subframe named as typed
    "1001-1100#", "@1001", "1@0@0@1", "1-3,2.5", "1.5,1-3", "2-1.5,9-0.1", "1--1.5,-3-6",
    "1-10:1.5", "1-3y1.5", "1.50", "1-3x0.50", "0.1-12x0.25", "-1.5-0.25:2", "0.0000001",
]


@pytest.mark.parametrize("text", FRAME_STRINGS)
def test_the_farm_script_reads_frames_as_the_core_does(text: str) -> None:
    from core.errors import InputError
    from core.io import parse_frames
    from nuke_plugin import batch

    def read(parse, error):
        try:
            return parse(text)
        except error as exc:
            return str(exc)

    assert read(batch.parse_frames, ValueError) == read(parse_frames, InputError)


def test_the_nuke_layer_bounds_frames_as_the_core_does() -> None:
    from core.io import MAX_FRAMES
    from nuke_plugin import cache

    assert cache.MAX_FRAMES == MAX_FRAMES


def test_no_module_below_the_cli_imports_its_private_names() -> None:
    # core.cli is the top of the data flow: a step the demo shares with it (the sRGB layers'
    # agreement with the plate as an EXR stores them) has one public home below it, not a private
    # name of the CLI's (core.demo imported core.cli._agree_as_stored).
    import ast

    offenders = []
    for f in _product_sources():
        if f == ROOT / "core" / "cli.py":
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "core.cli":
                offenders += [f"{f.relative_to(ROOT)}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert offenders == []



#: A private module that is the other half of one public module (split to import without torch):
#: the two share their private names as one module would.
_HALVES = {"core._colour_torch": "core.colour"}


def _foreign_private(me: str, module: str, name: str) -> bool:
    """Whether module ``me`` using ``module``'s ``name`` uses another module's private name."""
    if not name.startswith("_") or name.startswith("__") or module == me:
        return False
    # one module's two halves: the private half using the public's, or the public naming its half
    return me not in (_HALVES.get(module), _HALVES.get(f"{module}.{name}")) and _HALVES.get(me) != module


def _private_uses(f: Path) -> list[str]:
    """``from m import _x`` and ``m._x`` in ``f`` where ``_x`` is another module's private name."""
    import ast

    parts = list(f.relative_to(ROOT).with_suffix("").parts)
    me = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    package = me if f.name == "__init__.py" else me.rpartition(".")[0]
    tree = ast.parse(f.read_text(encoding="utf-8"))
    found, modules = [], {}  # modules: local name -> what it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: from .x import _y
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            for alias in node.names:
                modules[alias.asname or alias.name] = f"{module}.{alias.name}"
                if _foreign_private(me, module, alias.name):
                    found.append(f"{f.relative_to(ROOT)}:{node.lineno}: from {module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                modules[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        value, chain = node.value, []  # core.io._atomic: core, then io
        while isinstance(value, ast.Attribute):
            value, chain = value.value, [value.attr, *chain]
        if isinstance(value, ast.Name) and value.id in modules:
            module = ".".join([modules[value.id], *chain])
            if module.split(".")[0] in ("core", "nuke_plugin") and _foreign_private(me, module, node.attr):
                found.append(f"{f.relative_to(ROOT)}:{node.lineno}: {module}.{node.attr}")
    return found


def test_no_module_of_core_or_the_nuke_layer_uses_another_modules_private_names() -> None:
    # A helper that other modules need has one public, documented home (core.io.replace_file,
    # core.pipeline.resolve_bundle): core.fingerprint imported core.pipeline._autocast_dtype, the
    # training core.io._atomic, the Nuke callbacks read nuke_plugin.node._baking, and nothing told
    # whoever changed such a name, "private to its module", that another module relied on it.
    sources = sorted((ROOT / "core").rglob("*.py")) + sorted((ROOT / "nuke_plugin").glob("*.py"))
    offenders = [use for f in sources for use in _private_uses(f)]
    assert not offenders, "private names used outside their module:\n" + "\n".join(offenders)


@pytest.mark.parametrize("argv", [
    ["--node", "LBSMatte1", "--frames", "-5--1"], ["--frames", "-3"], ["--frames", "-3-4", "--frames", "-1"],
    ["--frames", "1001-1100"], ["--frames"], ["--frames", "--save-as"], ["x.nk", "--frames=-5--1"], [],
])
def test_the_farm_script_joins_a_negative_frame_range_as_the_core_does(argv: list[str]) -> None:
    # A farm template fills in --frames <START>-<END>; argparse takes "-5--1" for an option.
    # nuke_plugin.batch (run by nuke -t, without core) keeps a twin of core.cli's joining.
    from core.cli import _join_frames
    from nuke_plugin import batch

    assert batch._join_frames(argv) == _join_frames(argv)


@pytest.mark.parametrize("terms", [
    None, "CC-BY", {}, {"summary": None}, {"summary": ""}, {"summary": "  \n"}, {"summary": 3},
    {"summary": "  Research only: the alphamatting.com photos.  ", "source": "x"},
])
def test_the_nuke_panel_states_a_bundles_data_terms_as_weights_show_does(terms: object) -> None:
    # The terms are a legal restriction on the weights: the panel (nuke_plugin.bundles, which cannot
    # import core) states them in core.weights.data_terms_summary's words.
    from core.weights import DATA_TERMS, data_terms_summary
    from nuke_plugin.bundles import BundleInfo

    manifest = {} if terms is None else {DATA_TERMS: terms}
    lines = BundleInfo("b", "/nowhere/b", manifest).summary_lines()
    assert [line for line in lines if line.startswith("training data terms: ")] == [
        f"training data terms: {data_terms_summary(manifest)}"]


@pytest.mark.parametrize("parent, shown", [
    ({"name": "default", "sha256": "ab" * 32}, "default (manifest sha256 abababababab)"),
    # core writes a dict or null; a hand-edited or older manifest may name its parent by a string:
    # `lbsmatte weights show` said "none" where the panel named it
    ("default", "default (manifest sha256 not recorded)"), (" show_v1 ", "show_v1 (manifest sha256 not recorded)"),
    ({"name": "show_v1"}, "show_v1 (manifest sha256 not recorded)"), ({"sha256": ""}, "? (manifest sha256 not recorded)"),
    (None, "none"), ("", "none"), ("  ", "none"), (3, "none"), (["default"], "none"),
])
def test_the_nuke_panel_names_a_bundles_parent_as_weights_show_does(parent: object, shown: str) -> None:
    # nuke_plugin.bundles (which cannot import core) names the parent in core.weights.parent_summary's words.
    from core.weights import Bundle, parent_summary
    from nuke_plugin.bundles import BundleInfo

    manifest = {"parent": parent}
    lines = BundleInfo("b", "/nowhere/b", manifest).summary_lines()
    assert parent_summary(manifest) == shown
    assert f"  parent: {shown}" in Bundle("b", Path("/nowhere/b"), manifest).summary().splitlines()
    assert [line for line in lines if line.startswith("parent: ")] == [f"parent: {shown}"]
