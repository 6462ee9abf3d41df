"""Folders whose names Nuke's TCL would mangle: brackets, dollars, braces, spaces.

Nuke evaluates a file knob's text as TCL when it reads or writes (``[v2]`` runs the command
``v2``, ``$1`` reads the variable ``1``, a backslash escapes), and the fake does the same
(``tests/fake_nuke/nuke.py``, ``_eval_tcl``). A shot's own folder may be named so; the node's
bake Writes and result Read must get the folder as it is, and the core process its path unmangled.
"""

import os

import pytest
from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import cli_calls, make_graph, write_shot, write_test_bundle
from fake_nuke.nkscript import quote

from nuke_plugin import batch, compute
from nuke_plugin import node as lbs_node
from nuke_plugin.errors import NodeError

FOLDERS = ["Shot [v2]", "proj$1", "a{b}", "sh ${x} 010", "with space", "Séries 日本語 🎬 @v2 -x"]


def _plate_argument(env):
    command = cli_calls(env)[0]
    return command[command.index("--plate") + 1]


def test_the_fake_evaluates_file_knobs_as_nukes_tcl(fake_nuke, monkeypatch):
    read = fake_nuke.nodes.Read()
    read["file"].setValue("/shows/Shot [v2]/plate.####.exr")
    with pytest.raises(RuntimeError, match='unknown command "v2"'):
        read["file"].evaluate()
    read["file"].setValue("/shows/proj$1/plate.exr")
    with pytest.raises(RuntimeError, match='can\'t read "1"'):
        read["file"].evaluate()
    monkeypatch.setenv("LBS_SHOW", "/shows/x")
    read["file"].setValue("$env(LBS_SHOW)/Shot \\[v2\\]/a\\$1.exr")
    assert read["file"].evaluate() == "/shows/x/Shot [v2]/a$1.exr"


@pytest.mark.parametrize("name", FOLDERS)
def test_compute_in_a_script_folder_tcl_would_mangle(fake_nuke, lbs_env, sequences, tmp_path, monkeypatch, name):
    # The default cache is lbsmatte_cache beside the script: its folder is the shot's.
    monkeypatch.delenv("LBSMATTE_CACHE")
    folder = tmp_path / name
    folder.mkdir()
    weights = write_test_bundle(folder / "weights" / "sh010")  # the weights knob is text, never TCL
    node = make_graph(fake_nuke, sequences, weights=weights)
    fake_nuke.root()["name"].setValue(str(folder / "shot.nk"))
    result = compute.compute(node)
    assert result.ok, node["status"].value()
    assert sorted(result.computed) == [1001, 1002, 1003]
    cache_dir = str(folder / "lbsmatte_cache")
    command = cli_calls(lbs_env)[0]  # the core gets every folder as it is
    for option in ("--plate", "--trimap", "--out", "--write-trimap"):
        assert command[command.index(option) + 1].startswith(cache_dir + os.sep), option
    assert command[command.index("--weights") + 1] == weights
    fake_nuke.frame(1002)
    shown = node.node("Result")["file"].evaluate()
    assert shown.startswith(cache_dir + os.sep) and os.path.isfile(shown)


def test_an_lbsmatte_cache_folder_tcl_would_mangle(fake_nuke, lbs_env, sequences, tmp_path, monkeypatch):
    cache_dir = str(tmp_path / "cache [v2] $1")
    monkeypatch.setenv("LBSMATTE_CACHE", cache_dir)
    node = make_graph(fake_nuke, sequences)
    result = compute.compute(node)
    assert result.ok, node["status"].value()
    assert _plate_argument(lbs_env).startswith(cache_dir + os.sep)
    assert lbs_node.shown_folder(node).startswith(cache_dir + os.sep)


def test_the_cache_folder_knob_is_tcl_brackets_escaped_are_a_folders_name(fake_nuke, lbs_env, sequences, tmp_path):
    node = make_graph(fake_nuke, sequences)
    node["cache_dir"].setValue(str(tmp_path / "Shot \\[v2\\]" / "cache"))  # as Nuke's docs say: \[ for [
    result = compute.compute(node)
    assert result.ok, node["status"].value()
    assert lbs_node.shown_folder(node).startswith(str(tmp_path / "Shot [v2]" / "cache") + os.sep)


@pytest.mark.parametrize("text, what", [("Shot [v2]", 'unknown command "v2"'), ("proj$1", 'can\'t read "1"')])
def test_a_cache_folder_knob_tcl_cannot_evaluate_is_a_message_naming_it(fake_nuke, lbs_env, sequences, tmp_path,
                                                                        text, what):
    node = make_graph(fake_nuke, sequences)
    typed = str(tmp_path / text / "cache")
    node["cache_dir"].setValue(typed)
    with pytest.raises(NodeError) as error:
        compute.prepare(node)
    message = str(error.value)
    assert typed in message and what in message and "\\[" in message and "\\$" in message
    assert cli_calls(lbs_env) == []


@pytest.mark.parametrize("name", ["Shot [v2]", "proj$1"])
def test_batch_in_a_script_folder_tcl_would_mangle_and_the_comp_render_reads_it(fake_nuke, lbs_env, sequences,
                                                                                tmp_path, monkeypatch, capsys, name):
    monkeypatch.delenv("LBSMATTE_CACHE")
    folder = tmp_path / name
    folder.mkdir()
    shot = write_shot(str(folder / "shot.nk"), sequences)
    with open(shot) as handle:  # the script's name as Nuke saves it: \[ and \$ in its quoted string
        text = handle.read().replace(f'name "{shot}"', "name " + quote(shot), 1)
    with open(shot, "w") as handle:
        handle.write(text)
    comp = str(folder / "shot.lbsmatte.nk")
    assert batch.main([shot, "--node", "LBSMatte1", "--save-as", comp]) == batch.EXIT_OK
    out = capsys.readouterr().out
    assert f"LBSMATTE RESULT {folder / 'lbsmatte_cache'}/" in out and "ERROR" not in out

    fake_nuke._reset()
    fake_nuke._startup()
    fake_nuke.scriptOpen(comp)
    write = fake_nuke.nodes.Write()
    write.setInput(0, fake_nuke.toNode("LBSMatte1"))
    write["file"].setValue(str(tmp_path / "comp.####.exr"))
    write["file_type"].setValue("exr")
    fake_nuke.execute(write, 1001, 1003, 1)
    assert os.path.isfile(str(tmp_path / "comp.1003.exr"))
