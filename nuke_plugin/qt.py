"""The one place that imports Qt: PySide2 (Nuke 13-15), else PySide6 (Nuke 16).

Use ``from nuke_plugin.qt import QtCore, QtGui, QtWidgets`` everywhere; :data:`BINDING` says
which binding was found and :func:`exec_dialog` hides the ``exec_``/``exec`` rename.
"""

try:
    from PySide2 import QtCore, QtGui, QtWidgets

    BINDING = "PySide2"
except ImportError:
    from PySide6 import QtCore, QtGui, QtWidgets

    BINDING = "PySide6"

__all__ = ["BINDING", "QtCore", "QtGui", "QtWidgets", "exec_dialog"]


def exec_dialog(dialog):
    """Run a modal dialog; returns its result code (``QDialog.Accepted`` when accepted)."""
    run = getattr(dialog, "exec", None) or dialog.exec_
    return run()
