"""``gizmos/LBSMatte.gizmo`` checked by a small parser: knobs, names the Python uses, scripts."""

import ast
import os
import re

import pytest
from fake_nuke import nkscript
from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import REPO

GIZMO = os.path.join(REPO, "gizmos", "LBSMatte.gizmo")
PLUGIN = os.path.join(REPO, "nuke_plugin")


@pytest.fixture(scope="module")
def gizmo():
    return nkscript.read_gizmo(GIZMO)


def test_it_is_a_gizmo_with_plate_and_trimap_inputs(gizmo):
    assert gizmo["header"].cls == "Gizmo"
    assert gizmo["ops"][-1] == ("end_group",)
    inputs = [b for b in gizmo["inner"] if b.cls == "Input"]
    assert [(b.get("name"), int(b.get("number", "0"))) for b in inputs] == [("plate", 0), ("trimap", 1)]
    assert gizmo["header"].get("inputs") == "2"


def test_braces_balance_outside_escapes_and_strings(gizmo):
    depth = 0
    text = re.sub(r"\\.", "", gizmo["text"])  # escaped characters do not count
    for line_no, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            continue
        for c in line:
            depth += {"{": 1, "}": -1}.get(c, 0)
            assert depth >= 0, f"unbalanced '}}' on line {line_no}"
    assert depth == 0


def test_knob_names_are_identifiers_and_unique(gizmo):
    names = [k.name for k in gizmo["header"].user_knobs() if k.name]
    assert len(names) == len(set(names)), "duplicate knob names"
    for name in names:
        assert re.match(r"^[a-z][a-z0-9_]*$", name), name
    inner_names = [b.get("name") for b in gizmo["inner"]]
    assert len(inner_names) == len(set(inner_names))


def test_every_knob_the_python_uses_exists(gizmo, fake_nuke):
    from nuke_plugin import node as lbs_node

    knobs = dict((k.name, k) for k in gizmo["header"].user_knobs())
    missing = [name for name in lbs_node.KNOBS if name not in knobs]
    assert not missing, f"nuke_plugin.node.KNOBS names knobs the gizmo lacks: {missing}"
    # and every node["..."] subscript in the plugin names one of them
    used = set()
    for filename in os.listdir(PLUGIN):
        if not filename.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(PLUGIN, filename)).read())
        for sub in ast.walk(tree):
            if (isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Name) and sub.value.id in ("node", "n")
                    and isinstance(sub.slice, ast.Constant) and isinstance(sub.slice.value, str)):
                used.add((filename, sub.slice.value))
    assert used, "found no knob access to check"
    unknown = sorted((f, k) for f, k in used if k not in knobs)
    assert not unknown, f"knobs read by the Python but absent from the gizmo: {unknown}"
    unlisted = sorted(k for f, k in used if k not in lbs_node.KNOBS)
    assert not unlisted, f"knobs used but not listed in nuke_plugin.node.KNOBS: {unlisted}"


def test_knob_types(gizmo, fake_nuke):
    codes = dict((k.name, k.code) for k in gizmo["header"].user_knobs())
    expected = {"weights": 1, "weights_list": 4, "device": 4, "trimap_channel": 4, "trimap_from": 11, "colour": 4,
                "premultiply": 6, "rounds": 3, "trimap_input": 4, "edge_width": 3, "show_trimap": 6, "cache_dir": 2, "frame_range": 4, "first_frame": 3, "last_frame": 3,
                "compute": 22, "clear_cache": 22, "troubleshoot": 22, "browse_weights": 22, "status": 26,
                "result_file": 1, "result_first": 3, "result_last": 3, "result_ready": 6, "result_key": 1,
                "trimap_file": 1, "result_shown": 1, "trimap_shown": 1, "result_inputs": 1, "result_stale": 6,
                "accept_stale": 6}
    assert dict((k, codes.get(k)) for k in expected) == expected
    menus = dict((k.name, k.menu) for k in gizmo["header"].user_knobs() if k.code == 4)
    from nuke_plugin import node as lbs_node

    assert menus["device"] == list(lbs_node.DEVICES)
    assert menus["trimap_channel"] == list(lbs_node.TRIMAP_CHANNELS)
    # the node (which cannot import core) keeps a twin of the channels the core reads: one the core
    # renamed or dropped would be offered, and fail every Compute as an unknown channel name
    from core.trimap import CHANNELS

    assert lbs_node.TRIMAP_CHANNELS == CHANNELS
    assert menus["colour"] == list(lbs_node.COLOURS)
    assert menus["trimap_input"] == list(lbs_node.TRIMAP_INPUTS) == ["trimap", "rough matte"]
    assert menus["weights_list"][0] == "default"
    flags = dict((k.name, k.flags) for k in gizmo["header"].user_knobs())
    assert "DO_NOT_WRITE" in flags["weights_list"]  # refilled on load; the value lives in weights
    for name in ("result_file", "result_first", "result_last", "result_ready", "result_key", "trimap_file",
                 "result_shown", "trimap_shown", "result_inputs", "result_stale"):
        assert "INVISIBLE" in flags[name]


def test_buttons_are_one_wrapped_call_into_nuke_plugin(gizmo, fake_nuke):
    buttons = [k for k in gizmo["header"].user_knobs() if k.code == 22]
    assert set(b.name for b in buttons) == {"compute", "clear_cache", "troubleshoot", "browse_weights"}
    for button in buttons:
        tree = ast.parse(button.value)
        assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Try), button.name
        body = tree.body[0].body
        calls = [n for n in body if isinstance(n, ast.Expr)]
        assert len(calls) == 1, f"{button.name}: one call into nuke_plugin"
        assert ast.unparse(calls[0]).startswith("nuke_plugin.buttons.")
        assert "nuke.thisNode()" in ast.unparse(calls[0])
        handler = tree.body[0].handlers[0]
        assert ast.unparse(handler.type) == "Exception"
        assert "nuke.message" in ast.unparse(handler)
        from nuke_plugin import buttons as plugin_buttons

        assert hasattr(plugin_buttons, ast.unparse(calls[0]).split(".")[2].split("(")[0])


def test_internal_reads_follow_hidden_knobs(gizmo, fake_nuke):
    reads = dict((b.get("name"), b) for b in gizmo["inner"] if b.cls == "Read")
    from nuke_plugin import node as lbs_node

    assert sorted(reads) == sorted([lbs_node.RESULT_READ, lbs_node.TRIMAP_READ])
    for name, file_knob in ((lbs_node.RESULT_READ, "result_shown"), (lbs_node.TRIMAP_READ, "trimap_shown")):
        read = reads[name]
        assert read.get("file") == f"[value parent.{file_knob}]"
        assert read.get("first") == "{parent.result_first}"
        assert read.get("last") == "{parent.result_last}"
        assert read.get("disable") == "{!parent.result_ready}"
        assert read.get("before") == read.get("after") == "black"  # no held frame outside the range
        assert read.get("raw") == "true"
        # stated, so that a studio's knobDefault("Read.on_error", "black") or ("Read.auto_alpha", "true")
        # cannot make a STALE mark or a missing frame black, or give the RGB trimap an alpha
        assert read.get("on_error") == "error"
        assert read.get("auto_alpha") == "false"
    # stack: the Switch takes the two Reads (the top of the stack, the matte, is its input 0, shown
    # while 'show trimap' is off); Output takes the Switch
    nodes = [op[1] for op in gizmo["ops"] if op[0] == "node"]
    assert [(b.cls, b.get("name")) for b in nodes[-4:]] == [
        ("Read", lbs_node.TRIMAP_READ), ("Read", lbs_node.RESULT_READ), ("Switch", "ShowTrimap"), ("Output", "Output1")]
    assert nodes[-2].get("inputs") == "2" and nodes[-2].get("which") == "{parent.show_trimap}"


def test_rough_matte_knobs(gizmo, fake_nuke):
    knobs = dict((k.name, k) for k in gizmo["header"].user_knobs())
    assert knobs["trimap_input"].label == "trimap input" and knobs["edge_width"].label == "edge width"
    assert knobs["show_trimap"].label == "show trimap"
    assert "0.5 edge" in knobs["edge_width"].tooltip and "--edge" in knobs["edge_width"].tooltip
    assert gizmo["header"].get("edge_width") == "8"
    from nuke_plugin import node as lbs_node

    assert {"trimap_input", "edge_width"} <= set(lbs_node.SETTING_KNOBS)  # they change the result
    assert "show_trimap" not in lbs_node.SETTING_KNOBS  # only what is shown


def test_show_trimap_switches_the_output_between_the_two_reads(fake_nuke, tmp_path):
    import numpy as np
    import OpenImageIO as oiio

    def write(path, value, channels):
        spec = oiio.ImageSpec(4, 3, len(channels), oiio.HALF)
        spec.channelnames = tuple(channels)
        out = oiio.ImageOutput.create(str(path))
        out.open(str(path), spec)
        out.write_image(np.full((3, 4, len(channels)), value, np.float32))
        out.close()

    write(tmp_path / "lbsmatte.1001.exr", 0.25, ["R", "G", "B", "A", "fg.R", "fg.G", "fg.B", "bg.R", "bg.G", "bg.B"])
    write(tmp_path / "lbsmatte_trimap.1001.exr", 0.5, ["R", "G", "B"])
    node = fake_nuke.createNode("LBSMatte", inpanel=False)
    from nuke_plugin import node as lbs_node

    lbs_node.show_result(node, str(tmp_path), 1001, 1001, "k")
    assert node["trimap_file"].value() == str(tmp_path) + "/lbsmatte_trimap.####.exr"
    shown = node._image(1001)  # what the gizmo outputs (the fake has no sample())
    assert shown.pixels[1, 1, shown.channels.index("rgba.red")] == 0.25 and "fg.red" in shown.channels
    node["show_trimap"].setValue(True)
    shown = node._image(1001)
    assert shown.pixels[1, 1, shown.channels.index("rgba.red")] == 0.5 and "fg.red" not in shown.channels
    lbs_node.forget_result(node)
    assert node["trimap_file"].value() == ""


def test_no_absolute_paths(gizmo):
    for line in gizmo["text"].splitlines():
        if line.startswith("#"):
            continue
        assert not re.search(r"(^|[\s\"'])(/[A-Za-z]|[A-Za-z]:[\\/]|\\\\)", line), f"absolute path in: {line}"
        assert "/home/" not in line and "/Users/" not in line and "/work/" not in line


def test_the_fake_builds_it_as_nuke_would(fake_nuke):
    node = fake_nuke.createNode("LBSMatte", inpanel=False)
    assert node.maxInputs() == 2
    assert node["weights_list"].values()[0] == "default"  # onCreate ran (init.py callbacks)
    assert node["premultiply"].value() is True
    assert node["status"].value() == "not computed"
    assert node.node("Result")["disable"].value() is True


def test_parser_rejects_what_nuke_would_misread():
    with pytest.raises(nkscript.NkSyntaxError, match="unescaped"):
        nkscript.parse_script('Gizmo {\n help "see [this]"\n}\n')
    with pytest.raises(nkscript.NkSyntaxError, match="unbalanced"):
        nkscript.parse_script("Gizmo {\n addUserKnob {1 a}\n")
    with pytest.raises(nkscript.NkSyntaxError, match="unbalanced"):
        nkscript.parse_script("Gizmo {\n}\n}\n")
    assert nkscript.quote('a "b" [c] $d') == '"a \\"b\\" \\[c\\] \\$d"'


def test_the_rounds_tooltip_gives_the_shipped_bundles_recorded_rounds(gizmo):
    import json

    with open(os.path.join(REPO, "core", "bundles", "default", "manifest.json"), encoding="utf-8") as f:
        rounds = json.load(f)["refinement"]["rounds"]
    assert f"cross-validation ({rounds} for the shipped bundle)" in gizmo["text"]


def test_a_new_nodes_settings_run_the_tool_with_the_command_lines_defaults(fake_nuke, monkeypatch):
    # One result, whichever way a show makes it: a new node's command line parses to what a bare
    # `lbsmatte matte` defaults to. Only what the node sets for its own reasons differs: the range
    # it computes, the trimap it writes to show, and the colour of its bake (a float EXR, which
    # --colour auto reads as linear).
    from core.cli import build_parser
    from core.colour import resolve_colour
    from nuke_plugin import interpreter, runner
    from nuke_plugin import node as lbs_node

    monkeypatch.setattr(interpreter, "core_dir", lambda *args, **kwargs: None)  # no bundle scan
    node = fake_nuke.createNode("LBSMatte", inpanel=False)
    settings, _ = lbs_node.read_settings(node)
    command = runner.matte_command(
        "python", "p.####.exr", "t.####.exr", "o.####.exr", 1001, 1100, settings.weights,
        device=settings.device, colour=settings.colour, trimap_channel=settings.trimap_channel,
        premultiply=settings.premultiply, rounds=settings.rounds, edge=settings.edge_px,
        write_trimap="w.####.exr")
    assert command[1:3] == ["-m", "core.cli"]
    parser = build_parser("matte")
    ours = vars(parser.parse_args(command[3:]))
    bare = vars(parser.parse_args(["matte", "--plate", "p.####.exr", "--trimap", "t.####.exr", "--out", "o.####.exr"]))
    assert (ours.pop("frames"), bare.pop("frames")) == ("1001-1100", None)
    assert (ours.pop("write_trimap"), bare.pop("write_trimap")) == ("w.####.exr", None)
    assert ours.pop("colour") == resolve_colour(bare.pop("colour"), is_float=True) == "linear"
    assert ours == bare
    assert node["edge_width"].value() == 8  # with a rough matte: --edge has no default of its own


def test_the_clear_cache_tooltip_says_it_keeps_what_another_node_shows(gizmo):
    # Clear cache keeps a folder another node shows (tests/test_nuke_compute.py checks the code)
    knobs = dict((k.name, k) for k in gizmo["header"].user_knobs())
    assert "When another LBSMatte node of the script shows them too" in knobs["clear_cache"].tooltip
