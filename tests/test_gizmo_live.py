"""``gizmos/LBSMatteLive.gizmo`` (the Inference-node path) checked by the same small parser as the
bake node: inputs, knobs, and the wiring, followed through the script's stack as Nuke builds it."""

import os
import re

import pytest
from fake_nuke import nkscript
from fake_nuke.fixtures import REPO

from core.export import NUKE_CHANNELS_IN, NUKE_CHANNELS_OUT, OUTPUT_CHANNELS

GIZMO = os.path.join(REPO, "gizmos", "LBSMatteLive.gizmo")


@pytest.fixture(scope="module")
def gizmo():
    parsed = nkscript.read_gizmo(GIZMO)
    return {**parsed, "graph": _wire(parsed["ops"])}


def _wire(ops):
    """Each inner node's inputs by name, built as Nuke reads a script: a node takes its inputs off
    the top of the stack (the top is input 0) and pushes itself; ``set``/``push`` name and reuse."""
    stack, variables, inputs = [], {}, {}
    for op in ops[ops.index(next(o for o in ops if o[0] == "node")) + 1:]:
        if op[0] == "node":
            block = op[1]
            n = int(block.get("inputs", "1"))
            assert len(stack) >= n, f"{block.get('name')}: {n} inputs but {len(stack)} on the stack"
            taken = [stack.pop() for _ in range(n)]
            inputs[block.get("name")] = taken
            stack.append(block.get("name"))
        elif op[0] == "set":
            variables[op[1]] = stack[-1]
        elif op[0] == "push":
            stack.append(variables[op[1]] if op[1] else None)
    return inputs


def _nodes(gizmo, cls):
    return {b.get("name"): b for b in gizmo["inner"] if b.cls == cls}


def test_it_is_a_gizmo_with_plate_and_trimap_inputs(gizmo):
    assert gizmo["header"].cls == "Gizmo" and gizmo["header"].get("inputs") == "2"
    assert gizmo["ops"][-1] == ("end_group",)
    inputs = [b for b in gizmo["inner"] if b.cls == "Input"]
    assert sorted((b.get("name"), int(b.get("number", "0"))) for b in inputs) == [("plate", 0), ("trimap", 1)]
    layers = [op[1] for op in gizmo["ops"] if op[0] == "add_layer"]
    assert ["fg", "fg.red", "fg.green", "fg.blue"] in layers and ["bg", "bg.red", "bg.green", "bg.blue"] in layers


def test_braces_balance_and_knob_names_are_unique_identifiers(gizmo):
    depth = 0
    for line in re.sub(r"\\.", "", gizmo["text"]).splitlines():
        if not line.startswith("#"):
            for c in line:
                depth += {"{": 1, "}": -1}.get(c, 0)
                assert depth >= 0
    assert depth == 0
    names = [k.name for k in gizmo["header"].user_knobs() if k.name]
    assert len(names) == len(set(names)) and all(re.match(r"^[a-z][a-z0-9_]*$", n) for n in names)
    inner = [b.get("name") for b in gizmo["inner"]]
    assert len(inner) == len(set(inner))
    codes = dict((k.name, k.code) for k in gizmo["header"].user_knobs())
    assert {k: codes.get(k) for k in ("cat_file", "trimap_input", "edge_width", "premultiply", "use_gpu")} == {
        "cat_file": 2, "trimap_input": 4, "edge_width": 3, "premultiply": 6, "use_gpu": 6}
    menus = dict((k.name, k.menu) for k in gizmo["header"].user_knobs() if k.code == 4)
    assert menus["trimap_input"] == ["trimap", "rough matte"]  # the bake node's menu, in the same order


def test_plate_and_trimap_are_packed_into_the_four_channels_the_cat_reads(gizmo):
    graph = gizmo["graph"]
    pack = _nodes(gizmo, "Copy")["Pack"]
    assert graph["Pack"] == ["plate", "TrimapSource"]  # B = plate (rgb kept), A = the trimap
    assert (pack.get("from0"), pack.get("to0"), pack.get("bbox")) == ("rgba.alpha", "rgba.alpha", "B")
    assert NUKE_CHANNELS_IN == ("rgba.red", "rgba.green", "rgba.blue", "rgba.alpha")
    # trimap, or the band made from a rough matte: 1 inside (eroded), 0 outside (dilated), 0.5 between
    assert graph["TrimapSource"] == ["Pick", "Band"]
    assert _nodes(gizmo, "Switch")["TrimapSource"].get("which") == "{parent.trimap_input}"
    erode = _nodes(gizmo, "FilterErode")
    assert erode["Inside"].get("size") == "{parent.edge_width}" and erode["Outside"].get("size") == "{-parent.edge_width}"
    assert sorted(graph["Band"]) == ["Inside", "Outside"] and graph["Inside"] == graph["Outside"] == ["Hard"]
    assert _nodes(gizmo, "MergeExpression")["Band"].get("expr3") == "(Aa + Ba) / 2"
    # The rough matte is cut where lbsmatte matte --edge cuts it (core.trimap.trimap_from_matte: >= 0.5
    # inside); "a > 0.5" put a matte's pixels at exactly 0.5 (an edge through pixel centres) outside.
    from core.trimap import MATTE_EDGE

    assert _nodes(gizmo, "Expression")["Hard"].get("expr3") == f"a >= {MATTE_EDGE:g} ? 1 : 0"


def test_the_inference_node_runs_the_cat_and_its_seven_channels_are_shuffled_out(gizmo):
    graph = gizmo["graph"]
    inference = _nodes(gizmo, "Inference")["Inference1"]
    assert inference.get("modelFile") == "[value parent.cat_file]"
    assert inference.get("useGPUIfAvailable") == "{parent.use_gpu}"
    assert graph["Inference1"] == ["Pack"]
    # The .cat's Channels Out, in the module's output order: where each of the 7 lands.
    landed = dict(zip(OUTPUT_CHANNELS, NUKE_CHANNELS_OUT, strict=True))
    assert landed["alpha"] == "rgba.alpha"
    copies = {}
    for name in ("FgLayer", "BgLayer"):
        block = _nodes(gizmo, "Copy")[name]
        for i in range(4):
            if block.get(f"from{i}"):
                copies[block.get(f"to{i}")] = block.get(f"from{i}")
    for i, channel in enumerate(("red", "green", "blue")):
        assert copies[f"fg.{channel}"] == landed[f"fg.{'RGB'[i]}"]
        assert copies[f"bg.{channel}"] == landed[f"bg.{'RGB'[i]}"]
    assert graph["FgLayer"] == ["Inference1", "Inference1"] and graph["BgLayer"] == ["FgLayer", "Inference1"]
    remove = _nodes(gizmo, "Remove")["RemoveVessels"]
    assert {remove.get("channels"), remove.get("channels2")} == {"forward", "backward"}
    assert _nodes(gizmo, "Premult")["Premult1"].get("disable") == "{!parent.premultiply}"


def test_the_plates_bounding_box_is_kept_and_the_output_is_last(gizmo):
    graph = gizmo["graph"]
    assert graph["KeepBBox"] == ["Premult1", "plate"]  # B = the result, A = the plate's bbox
    assert graph["Output1"] == ["KeepBBox"]
    assert [b.cls for b in gizmo["inner"]][-1] == "Output"


def test_no_absolute_paths(gizmo):
    for line in gizmo["text"].splitlines():
        if not line.startswith("#"):
            assert not re.search(r"(^|[\s\"'])(/[A-Za-z]|[A-Za-z]:[\\/]|\\\\)", line), line


#: Knobs of the inner nodes whose value decides what the node computes and that studios set with
#: ``nuke.knobDefault`` in their menu.py (a knob a gizmo leaves out takes the studio's default when
#: Nuke loads it): ``Remove.operation keep`` with ``Remove.channels rgb`` is a common artist's
#: preference, and turned RemoveVessels into "keep forward and backward only" (no rgba, fg or bg out).
STUDIO_DEFAULTS = {
    "Remove": {"operation": "remove"},
    "Premult": {"channels": "rgb", "alpha": "rgba.alpha"},  # "all" premultiplied the fg and bg layers
    "FilterErode": {"filter": "box"},  # "gaussian" softened the band: not the bake node's --edge trimap
    "Copy": {"bbox": "B"},  # "Copy.bbox A" gave Pack the trimap's bbox, not the plate's
}


def test_inner_nodes_state_the_knobs_a_studios_knob_defaults_change(gizmo):
    for block in gizmo["inner"]:
        for knob, value in STUDIO_DEFAULTS.get(block.cls, {}).items():
            assert block.get(knob) == value, f"{block.get('name')} ({block.cls}) must state {knob} {value}"
