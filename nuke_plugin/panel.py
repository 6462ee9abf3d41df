"""A panel to browse the weights bundles and their manifests, and pick one for the node.

Bundles come from :func:`nuke_plugin.bundles.find_bundles` (``manifest.json`` files read with
the standard library: no ``core``, no ``torch`` in Nuke's Python). The list shows every bundle
found, ``default`` first; the right side shows the manifest: description, version, parent
bundle, colour encoding, training summary and the networks. Broken bundles are listed too, marked
``(broken)`` and not selectable for the node, with what is wrong: a network file missing, or a
folder the search skipped (manifest missing or unreadable, a newer format, a name shadowed by an
earlier bundle).
"""

import os

from nuke_plugin import bundles
from nuke_plugin.qt import QtCore, QtGui, QtWidgets, exec_dialog


class WeightsPanel(QtWidgets.QDialog):
    """Pick a weights bundle.

    Parameters
    ----------
    found:
        :class:`nuke_plugin.bundles.BundleInfo` list (``default`` first).
    current:
        The node's current ``weights`` value, selected when it is in the list.
    problems:
        ``(folder, reason)`` pairs from ``find_bundles(problems=...)``: listed as broken.
    """

    def __init__(self, found, current=None, parent=None, problems=None):
        super(WeightsPanel, self).__init__(parent)
        self.setWindowTitle("LBSMatte weights")
        self.setObjectName("LBSMatteWeightsPanel")
        self.resize(720, 420)
        self._bundles = list(found)
        #: One entry per list row: (name or None when it cannot be used, details lines, name shown).
        self._rows = []
        #: The name picked with *Use these weights* (``None`` until then).
        self.chosen = None

        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("bundles")
        for bundle in self._bundles:
            broken = bundle.problems()
            lines = bundle.summary_lines()
            if broken:
                label = "%s  (broken)" % bundle.name
                lines = ["BROKEN - cannot be used until this is fixed:"] + ["    %s" % p for p in broken] + [""] + lines
            else:
                label = bundle.name if bundle.trained else "%s  (untrained)" % bundle.name
                lines = lines + ["", "Checksums and architectures are verified when the matte is computed; "
                                     "Troubleshoot checks the selected bundle now."]
            self._add_row(label, None if broken else bundle.name, bundle.path, lines, bundle.name)
        for folder, reason in problems or []:
            label = "%s  (%s)" % (os.path.basename(os.path.normpath(folder)) or folder,
                                  "shadowed" if "shadowed" in reason else "broken")
            self._add_row(label, None, folder, ["%s: skipped" % folder, "", reason])
        self.details = QtWidgets.QPlainTextEdit()
        self.details.setObjectName("details")
        self.details.setReadOnly(True)

        split = QtWidgets.QSplitter()
        split.addWidget(self.list)
        split.addWidget(self.details)
        split.setStretchFactor(1, 2)

        buttons = QtWidgets.QDialogButtonBox()
        self.use_button = buttons.addButton("Use these weights", QtWidgets.QDialogButtonBox.AcceptRole)
        self.use_button.setObjectName("use")
        close = buttons.addButton(QtWidgets.QDialogButtonBox.Close)
        self.use_button.clicked.connect(self.accept)
        close.clicked.connect(self.reject)

        layout = QtWidgets.QVBoxLayout(self)
        if not any(row[0] for row in self._rows):
            layout.addWidget(QtWidgets.QLabel(
                "No weights bundles found%s. Check the installation (Troubleshoot) and %s."
                % (" that can be used (those listed are broken)" if self._rows else "", bundles.WEIGHTS_PATH_ENV)))
        layout.addWidget(split)
        layout.addWidget(buttons)

        self.list.currentRowChanged.connect(self._show_details)
        self.list.itemDoubleClicked.connect(lambda item: self.accept())
        names = [row[2] for row in self._rows]
        usable = [i for i, row in enumerate(self._rows) if row[0]]
        self.list.setCurrentRow(names.index(current) if current and current in names else usable[0] if usable else
                                0 if names else -1)
        self._show_details(self.list.currentRow())

    def _add_row(self, label, name, tooltip, lines, shown=None):
        item = QtWidgets.QListWidgetItem(label)
        item.setData(QtCore.Qt.UserRole, name)
        item.setToolTip(tooltip)
        if name is None:
            item.setForeground(QtWidgets.QApplication.palette().brush(QtGui.QPalette.Disabled, QtGui.QPalette.Text))
        self.list.addItem(item)
        self._rows.append((name, lines, shown))

    def _show_details(self, row):
        if 0 <= row < len(self._rows):
            self.details.setPlainText("\n".join(self._rows[row][1]))
            self.use_button.setEnabled(bool(self._rows[row][0]))
        else:
            self.details.setPlainText("")
            self.use_button.setEnabled(False)

    def accept(self):
        self.chosen = self.selected_name()
        super(WeightsPanel, self).accept()

    def selected_name(self):
        """Name of the selected bundle, or ``None``."""
        item = self.list.currentItem()
        return item.data(QtCore.Qt.UserRole) if item is not None else None


def browse(node, parent=None):
    """Show the panel for an LBSMatte node; set its ``weights`` knob when the user picks one.

    Returns the name chosen, or ``None``.

    Raises
    ------
    NodeError
        Without Nuke's interface (``nuke -t``): Qt has no ``QApplication`` there, and making a
        window without one aborts the whole process (Qt's "Must construct a QApplication before
        a QWidget"), Nuke and its render with it, without a word to the farm.
    """
    from nuke_plugin import node as lbs_node
    from nuke_plugin.errors import NodeError

    if QtWidgets.QApplication.instance() is None:
        raise NodeError("%s: the weights browser needs Nuke's interface, which nuke -t has not: set the weights "
                        "knob to a bundle's name or folder instead (lbsmatte weights list lists the bundles)"
                        % node.name())
    problems = []
    found = bundles.find_bundles(problems=problems)
    if parent is None:
        parent = QtWidgets.QApplication.activeWindow()
    dialog = WeightsPanel(found, current=lbs_node.weights_value(node), parent=parent, problems=problems)
    exec_dialog(dialog)
    if dialog.chosen:
        lbs_node.set_weights(node, dialog.chosen)
    return dialog.chosen
