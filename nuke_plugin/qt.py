"""The one place that imports Qt: PySide2 (Nuke 13-15) or PySide6 (Nuke 16).

Use ``from nuke_plugin.qt import QtCore, QtGui, QtWidgets`` everywhere; :data:`BINDING` says
which binding was found and :func:`exec_dialog` hides the ``exec_``/``exec`` rename.

The binding the running Nuke has already loaded wins; otherwise Nuke's major version decides
which to try first. A studio's shared site-packages often holds PySide2 for older hosts: taken
first inside Nuke 16 it would load Qt 5 into a Qt 6 process.
"""

import importlib
import sys


def _bindings():
    """The bindings to try, in order."""
    for name in ("PySide6", "PySide2"):
        if name in sys.modules:
            return [name]
    try:
        import nuke

        major = int(getattr(nuke, "NUKE_VERSION_MAJOR", 0))
    except (ImportError, TypeError, ValueError):
        major = 0
    return ["PySide6", "PySide2"] if major >= 16 else ["PySide2", "PySide6"]


def _load():
    names = _bindings()
    for name in names:
        try:
            return (name,) + tuple(importlib.import_module(name + "." + part)
                                   for part in ("QtCore", "QtGui", "QtWidgets"))
        except ImportError:
            if name == names[-1]:
                raise


BINDING, QtCore, QtGui, QtWidgets = _load()

__all__ = ["BINDING", "QtCore", "QtGui", "QtWidgets", "exec_dialog"]


def exec_dialog(dialog):
    """Run a modal dialog; returns its result code (``QDialog.Accepted`` when accepted)."""
    run = getattr(dialog, "exec", None) or dialog.exec_
    return run()
