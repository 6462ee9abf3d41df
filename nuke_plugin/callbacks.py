"""Callbacks of the LBSMatte node, registered by node class from ``init.py``.

A callback never raises into Nuke: a problem here must not stop a script from loading on the
farm, so each one catches everything and prints a warning instead — except the render check
(:func:`before_frame_render`), whose whole point is to stop a render of a stale result.

Nothing here scans the file system or starts a process when a script loads or renders: the
weights menu is filled when the panel opens. Staleness (:func:`nuke_plugin.node.find_stale`)
compares Nuke's op hashes of the inputs and the setting knobs with what Compute recorded:

- ``updateUI`` (Nuke's idle loop, GUI) and ``knobChanged`` (panel open): the current frame;
- ``beforeFrameRender`` (every render: ``nuke -x``/``-X`` on the farm, the Render menu): each
  LBSMatte node upstream of the Write being rendered, at the frame it is read at (the frame
  being rendered, moved by any ``TimeOffset`` between them). A stale
  one prints ``ERROR: <node>: ... at frame(s) <frames>`` on stdout and stops the render,
  unless its *accept stale result* knob is on (then a ``WARNING:`` line, once per render).

``onScriptClose`` and the end of the Nuke process stop any core process still running.
"""

import atexit
import sys
import traceback

import nuke

from nuke_plugin import NODE_CLASS, runner
from nuke_plugin import node as lbs_node

#: Nodes already warned about (accepted stale results) in the current render.
_warned = set()  # type: set

#: knobChanged sends these pseudo-knobs when the panel opens and when an input is reconnected.
SHOW_PANEL = "showPanel"
INPUT_CHANGE = "inputChange"


def register():
    """Register the callbacks for the ``LBSMatte`` class and the ``fg``/``bg`` layers."""
    nuke.addOnCreate(on_create, nodeClass=NODE_CLASS)
    nuke.addKnobChanged(on_knob_changed, nodeClass=NODE_CLASS)
    nuke.addUpdateUI(on_update_ui, nodeClass=NODE_CLASS)
    nuke.addBeforeRender(before_render, nodeClass="*")
    nuke.addBeforeFrameRender(before_frame_render, nodeClass="*")
    nuke.addOnScriptClose(on_script_close)
    atexit.register(runner.terminate_all)
    try:
        lbs_node.register_layers()
    except Exception:  # Nuke reads the layers from the EXR anyway; only their names are at stake
        _warn("registering the fg and bg layers")


def _warn(what):
    sys.stderr.write("LBSMatte: %s failed:\n%s" % (what, traceback.format_exc()))


def on_create():
    """New node or script load: the weights menu shows the current value only (no scan)."""
    try:
        node = nuke.thisNode()
        lbs_node.show_weights_value(node)
        update_frame_knobs(node)
    except Exception:
        _warn("onCreate")


def update_frame_knobs(node):
    """First/last frame are editable only for a custom range."""
    custom = node["frame_range"].value() == "custom"
    node["first_frame"].setEnabled(custom)
    node["last_frame"].setEnabled(custom)


def on_knob_changed():
    """Panel opened: refresh the weights menu. A setting or an input changed: the shown result
    is stale, so switch the Read off until the next Compute."""
    try:
        node = nuke.thisNode()
        name = nuke.thisKnob().name()
        if name == SHOW_PANEL:
            lbs_node.refresh_weights_list(node)
            update_frame_knobs(node)
            return
        if name == "weights_list":
            if not lbs_node.weights_list_chosen(node):
                return
            # Nuke does not call knobChanged again for knobs set inside knobChanged: treat the
            # copy into ``weights`` here.
            name = "weights"
        if name == "frame_range":
            update_frame_knobs(node)
            return
        if name == "weights":
            lbs_node.refresh_weights_list(node)
        if name in lbs_node.SETTING_KNOBS or name in (INPUT_CHANGE, "accept_stale"):
            lbs_node.check_current_frame(node)
    except Exception:
        _warn("knobChanged")


def on_update_ui():
    """Nuke's idle loop (GUI): is the result at the current frame still what Compute made?"""
    try:
        lbs_node.check_current_frame(nuke.thisNode())
    except Exception:
        _warn("updateUI")


def on_script_close():
    """The script closes (or Nuke quits): stop the core processes this session started, and let no
    Compute of this script finish onto the next one's nodes."""
    try:
        from nuke_plugin import compute

        compute.script_closed()
        runner.terminate_all()
    except Exception:
        _warn("onScriptClose")


def before_render():
    """A render starts: warn again about accepted stale results."""
    _warned.clear()


def _outer_input(inner):
    """For a group's ``Input`` node, what the group itself is fed at that input (or None)."""
    full = inner.fullName()
    if "." not in full:
        return None
    with nuke.root():
        group = nuke.toNode(full.rsplit(".", 1)[0])
    return group.input(int(inner["number"].value())) if group is not None else None


def _time_shift(other):
    """Frames a ``TimeOffset`` moves its input by (its output's frame f is its input's f - shift);
    0 for any other node (``other`` is never an LBSMatte), or a disabled one. ``None`` when the
    frame cannot be told (a reversed input)."""
    if other.Class() != "TimeOffset" or other["disable"].value():
        return 0
    if other["reverse_input"].value():
        return None
    return int(round(other["time_offset"].value()))


def upstream_lbsmatte(node):
    """LBSMatte nodes that ``node`` reads from: through its inputs, inside groups and gizmos on the
    way, and out of a group through its ``Input`` nodes (a studio's Write gizmo wraps its Write in one).

    Returns ``[(node, shift)]``: ``node`` is read at the frame rendered minus ``shift``, the sum of
    the ``TimeOffset`` nodes on the way (``None`` past a reversed one: at a frame not known here).
    A node reached by two paths with different shifts is listed for each."""
    # Known by full name: Nuke makes a new Python object for a node on every input() call, so
    # id() tells nothing (a freed object's id comes back for another node) and `is` never holds.
    found, seen, todo = [], set(), [(node, 0)]
    while todo:
        current, shift = todo.pop()
        if current is None or (current.fullName(), shift) in seen:
            continue
        seen.add((current.fullName(), shift))
        if lbs_node.is_lbsmatte(current):
            if not current["disable"].value():  # a disabled node passes its input through
                found.append((current, shift))
                todo.extend((current.input(i), shift) for i in range(current.inputs()))
            else:
                todo.append((current.input(0), shift))
            continue
        if current.fullName() != node.fullName() and isinstance(current, nuke.Group):
            todo.extend((inner, shift) for inner in nuke.allNodes(NODE_CLASS, current, recurseGroups=True))
        if current.Class() == "Input":
            todo.append((_outer_input(current), shift))
        step = _time_shift(current)
        upstream_shift = None if shift is None or step is None else shift + step
        todo.extend((current.input(i), upstream_shift) for i in range(current.inputs()))
    return found


def before_frame_render():
    """Stop a render that would use a stale result (see the module notes).

    Raises
    ------
    RuntimeError
        Naming each stale node and its stale frames (Nuke stops the render).
    """
    if lbs_node._baking:  # LBSMatte's own bake: its inputs are what is being computed
        return
    try:
        rendered = nuke.frame()
        problems = []
        for node, shift in upstream_lbsmatte(nuke.thisNode()):
            # The frame the node is read at (a TimeOffset downstream moves it); behind a reversed
            # one it is not known here: the frame rendered, as for any other retiming node.
            frame = rendered if shift is None else rendered - shift
            missing = lbs_node.missing_result(node, frame)
            if missing:
                if node["accept_stale"].value():
                    if node.fullName() not in _warned:
                        _warned.add(node.fullName())
                        print("WARNING: %s (accept stale result is on: rendering black there)" % missing, flush=True)
                else:
                    problems.append(missing)
                continue
            reason, frames = lbs_node.find_stale(node, [frame])
            if not reason:
                continue
            if node["accept_stale"].value():
                text = lbs_node.show_staleness(node, reason, frames)
                if node.fullName() not in _warned:
                    _warned.add(node.fullName())
                    print("WARNING: %s (accept stale result is on: rendering the old result)" % text, flush=True)
                continue
            # Name every stale frame of the result, not just this one.
            reason, frames = lbs_node.find_stale(node)
            problems.append(lbs_node.show_staleness(node, reason, frames or [frame]))
    except Exception:
        _warn("the stale-result check")
        return
    if problems:
        for text in problems:
            print("ERROR: %s; press Compute (or nuke -t nuke_plugin/batch.py), or turn on "
                  "accept stale result" % text, flush=True)
        raise RuntimeError("LBSMatte: stale or missing result: " + "; ".join(problems))
