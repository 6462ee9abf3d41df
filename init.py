"""LBSMatte start-up for every Nuke mode (GUI and ``nuke -t``): plugin paths and callbacks, no UI.

Nuke runs this when this folder is on ``NUKE_PATH`` (or added with ``nuke.pluginAddPath``).
Nothing here may stop Nuke from starting: a problem prints a warning and LBSMatte stays off.
"""

import os
import sys

import nuke

try:
    _here = os.path.dirname(os.path.abspath(__file__))
except NameError:  # very old Nukes run init.py without __file__
    _here = next((p for p in nuke.pluginPath() if os.path.isdir(os.path.join(p, "nuke_plugin"))), os.getcwd())

try:
    # The gizmo folder holds no init.py of its own; this folder is already on the plugin path,
    # and adding it again with pluginAddPath would run this file a second time.
    nuke.pluginAddPath(os.path.join(_here, "gizmos"))
    if _here not in sys.path:
        sys.path.append(_here)
    import nuke_plugin.callbacks

    nuke_plugin.callbacks.register()
except Exception as _exc:
    sys.stderr.write("LBSMatte: not loaded (%s: %s); see docs/nuke.md\n" % (type(_exc).__name__, _exc))
