"""``nuke_plugin.bundles`` finds bundles by ``core.weights``' rules, with the standard library."""

import json
import os

import pytest
from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import write_test_bundle

from nuke_plugin import bundles


@pytest.fixture
def layout(tmp_path):
    core = tmp_path / "site" / "core"
    write_test_bundle(core / "bundles" / "default", name="whatever", trained=True)
    show = tmp_path / "show"
    write_test_bundle(show / "b_second", name="show_v2")
    write_test_bundle(show / "a_first", name="show_v1", parent={"name": "default", "sha256": "ab" * 32})
    (show / "not_a_bundle").mkdir()
    (show / "broken").mkdir()
    (show / "broken" / "manifest.json").write_text("{not json")
    other = tmp_path / "other"
    (other / "foreign").mkdir(parents=True)
    (other / "foreign" / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    single = write_test_bundle(tmp_path / "single_bundle", name="")  # no name: the folder's
    shadow = write_test_bundle(tmp_path / "shadow", name="show_v1")
    path = os.pathsep.join([str(show), "", str(other), single, shadow, str(tmp_path / "missing")])
    return {"core": str(core), "env": {bundles.WEIGHTS_PATH_ENV: path}, "tmp": tmp_path}


def test_default_first_then_the_search_path_in_order(layout):
    found = bundles.find_bundles(core_dir=layout["core"], environ=layout["env"])
    assert [b.name for b in found] == ["default", "show_v1", "show_v2", "single_bundle"]
    assert found[0].path == os.path.join(layout["core"], "bundles", "default")
    assert found[1].path.endswith("a_first")  # the first with a name wins over 'shadow'
    assert found[1].manifest["parent"]["name"] == "default"


def test_no_default_without_core(layout):
    found = bundles.find_bundles(core_dir=os.path.join(str(layout["tmp"]), "nowhere"), environ=layout["env"])
    assert [b.name for b in found] == ["show_v1", "show_v2", "single_bundle"]


def test_resolve_names_and_folders(layout):
    env = layout["env"]
    assert bundles.resolve_bundle("show_v2", core_dir=layout["core"], environ=env).name == "show_v2"
    folder = os.path.join(str(layout["tmp"]), "shadow")
    by_path = bundles.resolve_bundle(folder, core_dir=layout["core"], environ=env)
    assert by_path.path == folder and by_path.name == "show_v1"
    assert bundles.resolve_bundle("nope", core_dir=layout["core"], environ=env) is None
    assert bundles.resolve_bundle("", core_dir=layout["core"], environ=env) is None
    assert bundles.resolve_bundle(os.path.join(str(layout["tmp"]), "other", "foreign"),
                                  core_dir=layout["core"], environ=env) is None


def test_manifest_hash_and_summary(layout):
    bundle = bundles.resolve_bundle("show_v1", core_dir=layout["core"], environ=layout["env"])
    import hashlib

    with open(os.path.join(bundle.path, "manifest.json"), "rb") as handle:
        assert bundle.manifest_sha256() == hashlib.sha256(handle.read()).hexdigest()
    text = "\n".join(bundle.summary_lines())
    assert "manifest-only bundle" in text and "parent: default" in text
    assert "iterations: 10" in text and "untrained" in text.lower()


def test_same_rules_as_core_weights(tmp_path, monkeypatch):
    """Compared with ``core.weights.find_bundles`` on the same search path."""
    weights = pytest.importorskip("core.weights")
    show = tmp_path / "show"
    write_test_bundle(show / "b", name="beta")
    write_test_bundle(show / "a", name="alpha")
    write_test_bundle(tmp_path / "gamma_folder", name="")
    write_test_bundle(tmp_path / "dup", name="alpha")
    monkeypatch.setenv(bundles.WEIGHTS_PATH_ENV, os.pathsep.join([str(show), str(tmp_path / "gamma_folder"),
                                                                   str(tmp_path / "dup")]))
    core_dir = os.path.dirname(os.path.abspath(weights.__file__))
    ours = [(b.name, os.path.realpath(b.path)) for b in bundles.find_bundles(core_dir=core_dir)]
    theirs = [(b.name, os.path.realpath(str(b.path))) for b in weights.find_bundles()]
    assert ours == theirs


def test_skips_what_core_skips_and_says_why(tmp_path, monkeypatch):
    """A newer format_version or no networks table: core refuses the bundle, so the knob must not
    offer it; every skipped folder comes back with its reason instead of silently disappearing."""
    weights = pytest.importorskip("core.weights")
    show = tmp_path / "show"
    write_test_bundle(show / "ok", name="ok")
    newer = write_test_bundle(show / "newer", name="newer")
    with open(os.path.join(newer, "manifest.json")) as handle:
        manifest = json.load(handle)
    with open(os.path.join(newer, "manifest.json"), "w") as handle:
        json.dump(dict(manifest, format_version=99), handle)
    (show / "nonets").mkdir()
    (show / "nonets" / "manifest.json").write_text(json.dumps({"format": "lbsmatte-bundle", "format_version": 1}))
    (show / "badjson").mkdir()
    (show / "badjson" / "manifest.json").write_text("{oops")
    (show / "halfcopy").mkdir()
    (show / "halfcopy" / "alpha.safetensors").write_bytes(b"")
    (show / "unrelated").mkdir()
    write_test_bundle(tmp_path / "dup", name="ok")
    monkeypatch.setenv(bundles.WEIGHTS_PATH_ENV, os.pathsep.join([str(show), str(tmp_path / "dup"),
                                                                   str(tmp_path / "missing")]))
    problems = []
    found = bundles.find_bundles(core_dir=str(tmp_path / "nocore"), problems=problems)
    assert [b.name for b in found] == ["ok"]
    assert [b.name for b in weights.find_bundles() if b.name != "default"] == ["ok"]
    reasons = {os.path.basename(folder): reason for folder, reason in problems}
    assert sorted(reasons) == ["badjson", "dup", "halfcopy", "missing", "newer", "nonets"]
    assert "newer than this LBSMatte reads" in reasons["newer"]
    assert "no 'networks' table" in reasons["nonets"]
    assert "not valid JSON" in reasons["badjson"]
    assert "manifest.json is missing" in reasons["halfcopy"]
    assert f"shadowed by the one in {os.path.join(str(show), 'ok')}" in reasons["dup"]
    assert "not a folder" in reasons["missing"]


def test_an_unlistable_entry_is_reported_not_raised(tmp_path, monkeypatch):
    show = tmp_path / "show"
    write_test_bundle(show / "ok", name="ok")
    real_listdir = os.listdir

    def listdir(path):
        if os.path.abspath(path) == str(show):
            raise PermissionError(13, "Permission denied", path)
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", listdir)
    problems = []
    found = bundles.find_bundles(core_dir=str(tmp_path / "nocore"), environ={bundles.WEIGHTS_PATH_ENV: str(show)},
                                 problems=problems)
    assert found == [] and len(problems) == 1 and "cannot be listed" in problems[0][1]


def test_missing_network_files_are_visible_without_hashing(tmp_path):
    folder = write_test_bundle(tmp_path / "b", name="b")
    for role in ("background", "alpha"):
        (tmp_path / "b" / (role + ".safetensors")).write_bytes(b"")
    bundle = bundles.resolve_bundle(folder, core_dir=str(tmp_path / "nocore"), environ={})
    assert bundle.problems() == ["foreground.safetensors is missing"]


def test_a_hostile_manifest_is_skipped_with_its_reason(tmp_path, monkeypatch):
    """JSON nested beyond the parser (or a few hundred deep) and a manifest far too big to be one
    are skipped with the reason, never a RecursionError that empties the weights knob."""
    show = tmp_path / "show"
    write_test_bundle(show / "ok", name="ok")
    (show / "deep").mkdir()
    (show / "deep" / "manifest.json").write_text("[" * 5000 + "]" * 5000)
    (show / "nested").mkdir()
    nested = {"format": "lbsmatte-bundle", "format_version": 1, "networks": {}}
    for _ in range(500):
        nested = {"x": nested}
    (show / "nested" / "manifest.json").write_text(json.dumps(nested))
    (show / "huge").mkdir()
    (show / "huge" / "manifest.json").write_text(" " * 20000 + "{}")
    monkeypatch.setattr(bundles, "MAX_MANIFEST", 12000)
    monkeypatch.setenv(bundles.WEIGHTS_PATH_ENV, str(show))
    problems = []
    found = bundles.find_bundles(core_dir=str(tmp_path / "nocore"), problems=problems)
    assert [b.name for b in found] == ["ok"]
    reasons = {os.path.basename(folder): reason for folder, reason in problems}
    assert "nested more than" in reasons["deep"]
    assert "nested more than" in reasons["nested"]
    assert "20002 bytes, more than the 12000" in reasons["huge"]


def test_a_killed_saves_hidden_folder_and_an_unselectable_name_are_skipped_as_core_skips_them(tmp_path, monkeypatch):
    weights = pytest.importorskip("core.weights")
    show = tmp_path / "show"
    write_test_bundle(show / "main", name="main")
    write_test_bundle(show / ".main.tmp-0123abcd", name="main")  # sorts first: it shadowed the real one
    write_test_bundle(show / "slashed", name="a/b")  # the knob would take 'a/b' for a folder
    write_test_bundle(show / "spaced", name="x ")  # the knob strips its value
    monkeypatch.setenv(bundles.WEIGHTS_PATH_ENV, str(show))
    problems = []
    found = bundles.find_bundles(core_dir=str(tmp_path / "nocore"), problems=problems)
    assert [(b.name, b.path) for b in found] == [("main", str(show / "main"))]
    assert [(b.name, str(b.path)) for b in weights.find_bundles() if b.name != "default"] == [("main", str(show / "main"))]
    reasons = {os.path.basename(folder): reason for folder, reason in problems}
    assert reasons == {"slashed": "its name 'a/b' holds '/' (a path separator or a character a folder name cannot hold)",
                       "spaced": "its name 'x ' begins or ends with white space"}
    assert bundles.resolve_bundle("main", core_dir=str(tmp_path / "nocore")).path == str(show / "main")


@pytest.mark.parametrize("name", ["show_x-v2.1", "a*b", "a?b", 'a"b', "a<b", "a>b", "a|b", "a\x7fb", "a\x1fb",
                                  "NONE", "None", "none", "show ", ".hidden", "a/b", "a\\b", "C:x", ""])
def test_the_name_rule_is_core_weights_rule(name):
    weights = pytest.importorskip("core.weights")
    assert bundles.name_problem(name) == weights.name_problem(name)
