"""``init.py`` / ``menu.py`` start-up and the node's callbacks (``nuke_plugin.callbacks``)."""

import os
import sys

import pytest
from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import REPO, make_graph, write_test_bundle

from nuke_plugin import compute


def test_init_adds_paths_and_registers_callbacks_by_class(fake_nuke):
    assert os.path.join(REPO, "gizmos") in fake_nuke.pluginPath()
    for kind in ("onCreate", "knobChanged"):
        classes = [c[3] for c in fake_nuke._callbacks[kind]]
        assert classes == ["LBSMatte"], kind
    assert fake_nuke._layers == {"fg": ["fg.red", "fg.green", "fg.blue"], "bg": ["bg.red", "bg.green", "bg.blue"]}
    assert fake_nuke._menus == {}  # no UI in nuke -t


def test_init_never_stops_nuke(fake_nuke, monkeypatch, capsys):
    fake_nuke._reset()
    monkeypatch.setitem(sys.modules, "nuke_plugin.callbacks", None)  # as if nuke_plugin were broken
    fake_nuke._startup()
    assert "LBSMatte: not loaded" in capsys.readouterr().err
    assert fake_nuke._callbacks["onCreate"] == []


def test_a_missing_layer_api_only_warns(fake_nuke, monkeypatch, capsys):
    fake_nuke._reset()
    monkeypatch.setattr(fake_nuke, "Layer", None)  # a Nuke whose nuke.Layer fails: the node still works
    fake_nuke._startup()
    assert "registering the fg and bg layers failed" in capsys.readouterr().err
    assert len(fake_nuke._callbacks["onCreate"]) == 1


def test_menu_only_in_the_gui(fake_nuke, monkeypatch):
    namespace = {}
    exec(compile(open(os.path.join(REPO, "menu.py")).read(), "menu.py", "exec"), namespace)  # -t: nothing
    assert fake_nuke._menus == {}
    fake_nuke._reset()
    monkeypatch.setattr(fake_nuke, "GUI", True)
    fake_nuke._startup()
    item = fake_nuke.menu("Nodes").findItem("LBSMatte/LBSMatte")
    assert item is not None and item.icon() == "LBSMatte.png"
    assert os.path.isfile(os.path.join(REPO, "gizmos", item.icon()))  # found on the plugin path
    item.invoke()
    created = fake_nuke.allNodes("LBSMatte")
    assert len(created) == 1 and created[0].shown()  # opened in the panel as Nuke does
    # the native node too, which docs/nuke.md tells the compositor to create
    live = fake_nuke.menu("Nodes").findItem("LBSMatte/LBSMatteLive")
    assert live is not None and live.icon() == "LBSMatte.png"
    assert live.script() == "nuke.createNode('LBSMatteLive')"
    assert os.path.isfile(os.path.join(REPO, "gizmos", "LBSMatteLive.gizmo"))


def test_weights_menu_lists_bundles_default_first_and_refreshes_on_show_panel(fake_nuke, lbs_env):
    node = fake_nuke.createNode("LBSMatte", inpanel=False)
    assert node["weights_list"].values() == ["default"]  # no scan when a node is made or a script loads
    assert node["weights_list"].value() == "default"
    node.showControlPanel()
    assert node["weights_list"].values() == ["default", "testbundle"]
    write_test_bundle(os.path.join(lbs_env["bundles"], "late"), name="late_bundle")
    node.hideControlPanel()
    node.showControlPanel()
    assert node["weights_list"].values() == ["default", "late_bundle", "testbundle"]
    node["weights"].setValue("/some/folder/bundle")  # a folder is listed too
    assert node["weights_list"].values()[-1] == "/some/folder/bundle"
    assert node["weights_list"].value() == "/some/folder/bundle"


def test_picking_from_the_menu_sets_weights_and_shows_the_result_stale(fake_nuke, lbs_env, sequences):
    write_test_bundle(os.path.join(lbs_env["bundles"], "other"), name="other")
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    node.showControlPanel()
    node["weights_list"].setValue("other")
    assert node["weights"].value() == "other"
    assert node["result_stale"].value() is True
    assert node.node("Result")["file"].evaluate().startswith("STALE - LBSMatte1: settings changed since Compute")
    assert node["status"].value().startswith("STALE: LBSMatte1: settings changed since Compute at frame(s) 1001-1003")


def test_reconnecting_an_input_shows_the_result_stale(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    node.showControlPanel()
    fake_nuke.frame(1002)
    node.setInput(1, node.input(0))
    assert node["status"].value() == ("STALE: LBSMatte1: plate or trimap changed since Compute at frame(s) 1002"
                                      " - press Compute")
    with pytest.raises(RuntimeError, match="STALE - LBSMatte1"):
        node._image(1002)


def test_frame_knobs_follow_the_range_mode(fake_nuke):
    node = fake_nuke.createNode("LBSMatte", inpanel=False)
    assert not node["first_frame"].enabled()
    node.showControlPanel()
    node["frame_range"].setValue("custom")
    assert node["first_frame"].enabled() and node["last_frame"].enabled()


def test_a_failing_callback_only_warns(fake_nuke, monkeypatch, capsys):
    from nuke_plugin import node as lbs_node

    def broken(node):
        raise OSError("disk on fire")

    monkeypatch.setattr(lbs_node, "refresh_weights_list", broken)
    monkeypatch.setattr(lbs_node, "show_weights_value", broken)
    node = fake_nuke.createNode("LBSMatte", inpanel=False)
    node.showControlPanel()
    err = capsys.readouterr().err
    assert "LBSMatte: onCreate failed" in err and "LBSMatte: knobChanged failed" in err and "disk on fire" in err


@pytest.mark.parametrize("name", ["init.py", "menu.py"])
def test_startup_files_stay_tiny(name):
    lines = [line for line in open(os.path.join(REPO, name)) if line.strip() and not line.strip().startswith("#")]
    assert len(lines) <= 30
