"""LBSMatte's Nuke layer: the Python side of the ``LBSMatte`` gizmo.

Nuke has no Python pixel operator, so the node works by *bake, compute, read back*: plate and
trimap are rendered to EXR with temporary ``Write`` nodes, ``core`` mattes them in a separate
Python process (``LBSMATTE_PYTHON``) and the gizmo's internal ``Read`` shows the result.

Modules, one concept each:

``bundles``      find weights bundles and read their manifests (standard library only)
``interpreter``  which Python runs ``core``, and a clean environment for it
``cache``        cache keys and folders (pure functions over paths)
``cachetool``    ``lbsmatte cache list | prune``: what a cache folder holds, removing what no script uses
``runner``       run ``core.cli matte`` as a subprocess, parse its progress lines, cancel it
``progress``     progress for people (``nuke.ProgressTask``) and for farm managers (stdout lines)
``node``         everything that reads or writes the gizmo's knobs and internal nodes
``compute``      Compute / Clear cache: bake, key, run, point the Read
``callbacks``    onCreate / knobChanged, registered by node class from ``init.py``
``buttons``      what the gizmo's buttons call (errors become a message, not a traceback)
``troubleshoot`` checks the installation and says what is wrong
``qt``, ``panel`` the weights browser (PySide2 in Nuke 13-15, PySide6 in Nuke 16)
``batch``        ``nuke -t nuke_plugin/batch.py shot.nk --node LBSMatte1 --frames 1001-1100``

Everything here imports under Python 3.7 (Nuke 13) with only the standard library and ``nuke``;
this ``__init__`` imports neither, so ``python -m nuke_plugin.interpreter`` works without Nuke.
"""

__version__ = "0.1.0"

#: Class name of the gizmo (the file is ``gizmos/LBSMatte.gizmo``).
NODE_CLASS = "LBSMatte"
