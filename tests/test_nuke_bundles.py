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
