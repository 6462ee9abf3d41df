"""Callbacks of the LBSMatte node, registered by node class from ``init.py``.

A callback never raises into Nuke: a problem here must not stop a script from loading on the
farm, so each one catches everything and prints a warning instead.
"""

import sys
import traceback

import nuke

from nuke_plugin import NODE_CLASS
from nuke_plugin import node as lbs_node

#: knobChanged sends these pseudo-knobs when the panel opens and when an input is reconnected.
SHOW_PANEL = "showPanel"
INPUT_CHANGE = "inputChange"


def register():
    """Register the callbacks for the ``LBSMatte`` class and the ``fg``/``bg`` layers."""
    nuke.addOnCreate(on_create, nodeClass=NODE_CLASS)
    nuke.addKnobChanged(on_knob_changed, nodeClass=NODE_CLASS)
    try:
        lbs_node.register_layers()
    except Exception:  # Nuke reads the layers from the EXR anyway; only their names are at stake
        _warn("registering the fg and bg layers")


def _warn(what):
    sys.stderr.write("LBSMatte: %s failed:\n%s" % (what, traceback.format_exc()))


def on_create():
    """New node or script load: fill the weights menu (also in ``nuke -t``, cheap)."""
    try:
        node = nuke.thisNode()
        lbs_node.refresh_weights_list(node)
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
        if name in lbs_node.SETTING_KNOBS or name == INPUT_CHANGE:
            if lbs_node.shown_key(node):
                lbs_node.hide_result(node)
                lbs_node.set_status(node, "%s changed: press Compute" % ("an input" if name == INPUT_CHANGE else name))
    except Exception:
        _warn("knobChanged")
