"""Callbacks of the LBSMatte node, registered by node class from ``init.py``.

A callback never raises into Nuke: a problem here must not stop a script from loading on the
farm, so each one catches everything and prints a warning instead — except the render check
(:func:`before_frame_render`), whose whole point is to stop a render of a stale result.

Nothing here scans the file system or starts a process when a script loads or renders: the
weights menu is filled when the panel opens. Staleness (:func:`nuke_plugin.node.find_stale`)
compares Nuke's op hashes of the inputs and the setting knobs with what Compute recorded:

- ``updateUI`` (Nuke's idle loop, GUI) and ``knobChanged`` (panel open): the frames the viewers
  read the node at (:func:`viewed_frames`: the current frame moved by the time nodes between, as
  the render check moves it), the inputs' op hashes at the current frame only;
- ``beforeFrameRender`` (every render: ``nuke -x``/``-X`` on the farm, the Render menu): each
  LBSMatte node upstream of the Write being rendered, at the frame(s) it is read at (the frame
  being rendered, moved by the ``TimeOffset``, ``FrameHold`` and ``FrameRange`` nodes between
  them; past another time node, such as a ``Retime``, every frame of its result). A stale
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
#: Nodes whose every frame was found current in this render (read through a time node not followed):
#: not hashed over their whole range again for each frame rendered.
_current_throughout = set()  # type: set

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
    """New node or script load: the weights menu shows the current value only (no scan); a status
    line saved while a Compute ran no longer says 'computing' (:func:`nuke_plugin.compute.interrupted`)."""
    try:
        from nuke_plugin import compute

        node = nuke.thisNode()
        lbs_node.show_weights_value(node)
        update_frame_knobs(node)
        compute.interrupted(node)
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
        if name in (INPUT_CHANGE, "name", "disable"):
            _viewer_walk.clear()  # the graph the idle check walked has changed
        if name in lbs_node.SETTING_KNOBS or name in (INPUT_CHANGE, "accept_stale"):
            lbs_node.check_current_frame(node, viewed_frames(node))
    except Exception:
        _warn("knobChanged")


def on_update_ui():
    """Nuke's idle loop (GUI): is the result the viewers show still what Compute made?"""
    try:
        node = nuke.thisNode()
        frames = viewed_frames(node, shared=True)
        lbs_node.check_current_frame(node, frames, _viewer_walk["stats"])
    except Exception:
        _warn("updateUI")


def on_script_close():
    """The script closes (or Nuke quits): stop the core processes this session started, and let no
    Compute of this script finish onto the next one's nodes."""
    try:
        from nuke_plugin import compute

        _viewer_walk.clear()
        compute.script_closed()
        runner.terminate_all()
    except Exception:
        _warn("onScriptClose")


def before_render():
    """A render starts: warn again about accepted stale results."""
    _warned.clear()
    _current_throughout.clear()


def _outer_input(inner):
    """For a group's ``Input`` node, what the group itself is fed at that input (or None)."""
    full = inner.fullName()
    if "." not in full:
        return None
    with nuke.root():
        group = nuke.toNode(full.rsplit(".", 1)[0])
    return group.input(int(inner["number"].value())) if group is not None else None


#: Time nodes whose output frame -> input frame mapping the render check follows exactly (:func:`_input_frames`).
FOLLOWED_TIME_NODES = ("TimeOffset", "FrameHold", "FrameRange")
#: Nodes that read their input at other frames in ways not followed here (speed curves, blends of
#: several frames, clips placed in time, motion estimation): through one, every computed frame is checked.
UNFOLLOWED_TIME_NODES = ("Retime", "TimeWarp", "TimeEcho", "TimeBlur", "FrameBlend", "AppendClip", "TimeClip",
                         "OFlow", "OFlow2", "Kronos", "MotionBlur")


def _input_frames(other, frames):
    """The frames of its input that ``other`` is read at for its output ``frames`` (a tuple), or
    None when that cannot be told here (an unfollowed time node, a group or gizmo holding a time
    node). ``other`` is never an LBSMatte node; a node that is not a time node, or a disabled
    one, reads its input at the frames it is read at."""
    cls = other.Class()
    if isinstance(other, nuke.Group):
        inside = nuke.allNodes(group=other, recurseGroups=True)
        if any(inner.Class() in FOLLOWED_TIME_NODES + UNFOLLOWED_TIME_NODES and not inner["disable"].value()
               for inner in inside):
            return None
        return frames
    if cls in UNFOLLOWED_TIME_NODES and not other["disable"].value():
        return None
    if cls not in FOLLOWED_TIME_NODES or other["disable"].value():
        return frames
    read = set()
    for frame in frames:
        if cls == "TimeOffset":
            if other["reverse_input"].value():  # mirrored about the input's frame range: not followed
                return None
            read.add(frame - int(round(other["time_offset"].getValueAt(frame))))
        elif cls == "FrameHold":
            # Nuke: increment 0 holds first_frame everywhere; n > 0 uses first_frame, first_frame + n, ...
            first = int(round(other["first_frame"].getValueAt(frame)))
            step = int(round(other["increment"].getValueAt(frame)))
            if step == 0:
                read.add(first)
            elif step > 0 and frame >= first:
                read.add(first + (frame - first) // step * step)
            else:  # before the first held frame, or a negative increment (undocumented): not followed
                return None
        else:  # FrameRange: its frames pass through; outside its range not followed
            if not other["first_frame"].value() <= frame <= other["last_frame"].value():
                return None
            read.add(frame)
    return tuple(sorted(read))


def upstream_lbsmatte(node, frame):
    """LBSMatte nodes that ``node`` reads from at ``frame``: through its inputs, inside groups and
    gizmos on the way, and out of a group through its ``Input`` nodes (a studio's Write gizmo wraps
    its Write in one).

    Returns ``[(node, frames)]``: ``frames``, a sorted tuple, are the frames the node is read at,
    ``frame`` moved by the time nodes on the way (:func:`_input_frames`), or None past one whose
    mapping is not followed (the node may then be read at any frame). A node reached by two paths
    at different frames is listed for each."""
    # Known by full name: Nuke makes a new Python object for a node on every input() call, so
    # id() tells nothing (a freed object's id comes back for another node) and `is` never holds.
    found, seen, todo = [], set(), [(node, (int(frame),))]
    while todo:
        current, frames = todo.pop()
        if current is None or (current.fullName(), frames) in seen:
            continue
        seen.add((current.fullName(), frames))
        if lbs_node.is_lbsmatte(current):
            if not current["disable"].value():  # a disabled node passes its input through
                found.append((current, frames))
                todo.extend((current.input(i), frames) for i in range(current.inputs()))
            else:
                todo.append((current.input(0), frames))
            continue
        inside = isinstance(current, nuke.Group) and current.fullName() != node.fullName()
        upstream = frames if frames is None or isinstance(current, nuke.Group) and not inside \
            else _input_frames(current, frames)
        if inside:
            todo.extend((inner, upstream) for inner in nuke.allNodes(NODE_CLASS, current, recurseGroups=True))
        if current.Class() == "Input":
            todo.append((_outer_input(current), frames))
        todo.extend((current.input(i), upstream) for i in range(current.inputs()))
    return found


#: The idle check's walk up from the viewers (:func:`viewed_frames` with ``shared``): ``key`` (the
#: current frame and the viewers), ``found`` (``{node's full name: frames the viewers read it at}``)
#: ``served`` (the nodes that took their frames from it) and ``stats`` (the files stat-ed in the
#: pass: :func:`nuke_plugin.node.check_current_frame`).
_viewer_walk = {}


def viewed_frames(node, shared=False):
    """The frames of ``node`` the viewers read at the current frame, mapped through the time nodes
    between them as the render check maps them (:func:`upstream_lbsmatte`); the current frame
    where no viewer reads the node, or reads it through a time node not followed (the idle check
    does not check every frame of the result on each tick).

    One walk up from the viewers finds every LBSMatte node they read. ``shared`` (the idle check:
    Nuke calls ``updateUI`` on every node in each idle pass) keeps that walk for the other nodes
    of the same pass, so a pass walks the graph once, not once per LBSMatte node (50 nodes: 50
    walks of the whole comp on each frame change). A node asking again starts a new pass, and so
    does another current frame or another set of viewers: what changed in the graph between two
    passes is walked again before any node that was checked is checked again."""
    now = nuke.frame()
    with nuke.root():
        viewers = nuke.allNodes("Viewer")
    key = (now, tuple(viewer.fullName() for viewer in viewers))
    name = node.fullName()
    if not shared or _viewer_walk.get("key") != key or name in _viewer_walk["served"]:
        found = {}
        for viewer in viewers:
            for lbs, read in upstream_lbsmatte(viewer, now):
                found.setdefault(lbs.fullName(), set()).update(read if read is not None else (now,))
        if not shared:
            return sorted(found.get(name, ())) or [now]
        _viewer_walk.clear()
        _viewer_walk.update(key=key, found=found, served=set(), stats={})
    _viewer_walk["served"].add(name)
    return sorted(_viewer_walk["found"].get(name, ())) or [now]


def before_frame_render():
    """Stop a render that would use a stale result (see the module notes).

    Raises
    ------
    RuntimeError
        Naming each stale node and its stale frames (Nuke stops the render).
    """
    if lbs_node.baking():  # LBSMatte's own bake: its inputs are what is being computed
        return
    try:
        problems = []
        for node, frames in upstream_lbsmatte(nuke.thisNode(), nuke.frame()):
            if frames is None:
                _warn_once(node, "unfollowed", "%s is read through a time node whose frames this check does not "
                           "follow: every frame of its result is checked" % node.fullName())
            problems.extend(_check_frames(node, frames))
    except Exception:
        _warn("the stale-result check")
        return
    if problems:
        for text in problems:
            print("ERROR: %s; press Compute (or nuke -t nuke_plugin/batch.py), or turn on "
                  "accept stale result" % text, flush=True)
        raise RuntimeError("LBSMatte: stale or missing result: " + "; ".join(problems))


def _warn_once(node, kind, text):
    """A ``WARNING:`` line on stdout, once per node and ``kind`` of warning in a render."""
    if (node.fullName(), kind) not in _warned:
        _warned.add((node.fullName(), kind))
        print("WARNING: %s" % text, flush=True)


def _check_frames(node, frames):
    """The render check of ``node`` read at ``frames`` (None: at any frame of its result): the
    problems that stop the render; an accepted stale or missing result prints a warning instead."""
    accept = node["accept_stale"].value()
    whole = frames is None
    if whole and node.fullName() in _current_throughout:
        return []
    if whole:
        if not node["result_ready"].value():
            frames = (nuke.frame(),)  # nothing to read anywhere: missing_result says so
        else:
            frames = tuple(range(int(node["result_first"].value()), int(node["result_last"].value()) + 1))
    present = []
    for frame in frames:
        missing = lbs_node.missing_result(node, frame)
        if not missing:
            present.append(frame)
        elif not accept:
            return [missing]  # one missing frame names the problem
        elif lbs_node.missing_file(node, frame):
            # A frame of the range without its file: the internal Read (on_error error) fails there,
            # accepted or not, with an error naming only its file.
            return ["%s (accept stale result renders black only outside the computed range or where nothing was "
                    "computed: at a frame of the range the internal Read has no file to read)" % missing]
        else:
            _warn_once(node, "missing", "%s (accept stale result is on: rendering black there)" % missing)
    if not present:
        return []
    reason, stale = lbs_node.find_stale(node, present)
    if not reason:
        # The frames read here are current, but the Read may show the STALE message of another
        # frame (the viewer's check flagged the frame it stood at, and the script may have been
        # saved so): the Read must give these frames their result, not fail on that message.
        lbs_node.show_staleness(node, "", [])
        if whole and len(present) == len(frames):
            _current_throughout.add(node.fullName())
        return []
    if accept:
        _warn_once(node, "stale", "%s (accept stale result is on: rendering the old result)"
                   % lbs_node.show_staleness(node, reason, stale))
        return []
    # Name every stale frame of the result, not just those read here.
    reason, every = lbs_node.find_stale(node)
    return [lbs_node.show_staleness(node, reason, every or stale)]
