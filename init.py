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
    # Two LBSMatte folders on the plugin path (two versions): the first is used, as Nuke's gizmo lookup
    # does; Nuke runs the last one's init.py first, and its Python must not serve the other's gizmo.
    _first = next((os.path.abspath(p) for p in nuke.pluginPath() if all(os.path.isfile(os.path.join(p, f)) for f in
                   ("init.py", "nuke_plugin/interpreter.py", "gizmos/LBSMatte.gizmo"))), _here)
    if os.path.realpath(_first) != os.path.realpath(_here):
        sys.stderr.write("LBSMatte: %s not loaded: %s comes first on the plugin path and is used\n" % (_here, _first))
    else:
        # The gizmo folder holds no init.py of its own; this folder is already on the plugin path,
        # and adding it again with pluginAddPath would run this file a second time.
        nuke.pluginAddPath(os.path.join(_here, "gizmos"))
        sys.path.insert(0, _here)  # this folder's nuke_plugin, not one found earlier on sys.path
        try:
            import nuke_plugin.callbacks
        finally:
            sys.path.remove(_here)
        _loaded = os.path.dirname(os.path.dirname(os.path.realpath(nuke_plugin.__file__)))
        if _loaded != os.path.realpath(_here):
            raise ImportError("another LBSMatte's nuke_plugin is already loaded, from %s" % _loaded)
        sys.path.append(_here)
        nuke_plugin.callbacks.register()
except Exception as _exc:
    sys.stderr.write("LBSMatte: not loaded (%s: %s); see docs/nuke.md\n" % (type(_exc).__name__, _exc))
