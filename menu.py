"""LBSMatte GUI start-up: the nodes in the Nodes toolbar (runs only in the GUI, after init.py)."""

import sys

import nuke

try:
    if nuke.GUI:
        _menu = nuke.menu("Nodes").addMenu("LBSMatte", icon="LBSMatte.png")
        _menu.addCommand("LBSMatte", "nuke.createNode('LBSMatte')", icon="LBSMatte.png")
        _menu.addCommand("LBSMatteLive", "nuke.createNode('LBSMatteLive')", icon="LBSMatte.png")
except Exception as _exc:
    sys.stderr.write("LBSMatte: no menu (%s: %s)\n" % (type(_exc).__name__, _exc))
