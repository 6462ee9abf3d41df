"""A panel to browse the weights bundles and their manifests, and pick one for the node.

Bundles come from :func:`nuke_plugin.bundles.find_bundles` (``manifest.json`` files read with
the standard library: no ``core``, no ``torch`` in Nuke's Python). The list shows every bundle
found, ``default`` first; the right side shows the manifest: description, version, parent
bundle, colour encoding, training summary and the networks.
"""

from nuke_plugin import bundles
from nuke_plugin.qt import QtCore, QtWidgets, exec_dialog


class WeightsPanel(QtWidgets.QDialog):
    """Pick a weights bundle.

    Parameters
    ----------
    found:
        :class:`nuke_plugin.bundles.BundleInfo` list (``default`` first).
    current:
        The node's current ``weights`` value, selected when it is in the list.
    """

    def __init__(self, found, current=None, parent=None):
        super(WeightsPanel, self).__init__(parent)
        self.setWindowTitle("LBSMatte weights")
        self.setObjectName("LBSMatteWeightsPanel")
        self.resize(720, 420)
        self._bundles = list(found)
        #: The name picked with *Use these weights* (``None`` until then).
        self.chosen = None

        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("bundles")
        for bundle in self._bundles:
            item = QtWidgets.QListWidgetItem(bundle.name if bundle.trained else "%s  (untrained)" % bundle.name)
            item.setData(QtCore.Qt.UserRole, bundle.name)
            item.setToolTip(bundle.path)
            self.list.addItem(item)
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
        if not self._bundles:
            layout.addWidget(QtWidgets.QLabel(
                "No weights bundles found. Check the installation (Troubleshoot) and %s." % bundles.WEIGHTS_PATH_ENV))
        layout.addWidget(split)
        layout.addWidget(buttons)

        self.list.currentRowChanged.connect(self._show_details)
        self.list.itemDoubleClicked.connect(lambda item: self.accept())
        names = [b.name for b in self._bundles]
        self.list.setCurrentRow(names.index(current) if current in names else 0 if names else -1)
        self.use_button.setEnabled(bool(self._bundles))

    def _show_details(self, row):
        if 0 <= row < len(self._bundles):
            self.details.setPlainText("\n".join(self._bundles[row].summary_lines()))
        else:
            self.details.setPlainText("")

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
    """
    from nuke_plugin import node as lbs_node

    found = bundles.find_bundles()
    if parent is None:
        parent = QtWidgets.QApplication.activeWindow()
    dialog = WeightsPanel(found, current=lbs_node.weights_value(node), parent=parent)
    exec_dialog(dialog)
    if dialog.chosen:
        lbs_node.set_weights(node, dialog.chosen)
    return dialog.chosen
