"""The weights panel, offscreen with PySide6, and the Qt shim (the binding Nuke loaded, else by its version)."""

import os
import runpy
import sys

import pytest
from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import REPO, write_test_bundle

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
QtWidgets = pytest.importorskip("PySide6.QtWidgets")

from nuke_plugin import bundles, qt  # noqa: E402  (after the platform is set)
from nuke_plugin.panel import WeightsPanel, browse  # noqa: E402


@pytest.fixture(scope="module")
def qapp():
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["lbsmatte-tests"])
    yield app


@pytest.fixture
def found(lbs_env):
    write_test_bundle(os.path.join(lbs_env["bundles"], "show"), name="show_v2", trained=True,
                      description="fine-tuned on the show's hair shots",
                      parent={"name": "default", "sha256": "cd" * 32},
                      training={"iterations": 20000, "data": "show plates 1001-1400", "final_loss": 0.0123})
    _add_weight_files(os.path.join(lbs_env["bundles"], "show"))
    _add_weight_files(os.path.join(lbs_env["bundles"], "testbundle"))
    return bundles.find_bundles()


def _add_weight_files(folder):
    """The manifest-only test bundles with (empty) network files: enough for the panel's stat checks."""
    for role in ("background", "foreground", "alpha"):
        with open(os.path.join(folder, role + ".safetensors"), "wb"):
            pass


def test_the_shim_takes_pyside6_here():
    assert qt.BINDING == "PySide6"
    assert qt.QtWidgets is QtWidgets


def _fake_pyside2(tmp_path, monkeypatch):
    """A PySide2 on the path (PySide6 under its name) and none loaded yet."""
    package = tmp_path / "PySide2"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("QtCore", "QtGui", "QtWidgets"):
        (package / (name + ".py")).write_text(f"from PySide6.{name} import *  # noqa\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def _run_shim(hidden):
    """nuke_plugin/qt.py run afresh with the modules named ``hidden`` not yet loaded."""
    saved = {m: sys.modules.pop(m) for m in list(sys.modules) if m.split(".")[0] in hidden}
    try:
        return runpy.run_path(os.path.join(REPO, "nuke_plugin", "qt.py"))
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] in hidden]:
            del sys.modules[name]
        sys.modules.update(saved)


@pytest.mark.parametrize("major, expected", [(16, "PySide6"), (15, "PySide2"), (13, "PySide2")])
def test_the_shim_takes_the_binding_of_the_nuke_it_runs_in(tmp_path, monkeypatch, fake_nuke, major, expected):
    """A studio's PySide2 on the path must not be loaded into Nuke 16's Qt 6 process."""
    _fake_pyside2(tmp_path, monkeypatch)
    monkeypatch.setattr(fake_nuke, "NUKE_VERSION_MAJOR", major)
    shim = _run_shim({"PySide2", "PySide6"})
    assert shim["BINDING"] == expected
    assert shim["QtWidgets"].__name__ == expected + ".QtWidgets"


def test_the_shim_takes_the_binding_already_loaded(tmp_path, monkeypatch):
    """Whatever Nuke's version says, a binding the host has loaded is the one to use."""
    _fake_pyside2(tmp_path, monkeypatch)
    shim = _run_shim({"PySide2"})  # PySide6 stays loaded (this test process's own)
    assert shim["BINDING"] == "PySide6"


def test_panel_lists_bundles_and_shows_their_manifests(qapp, found):
    panel = WeightsPanel(found, current="show_v2")
    labels = [panel.list.item(i).text() for i in range(panel.list.count())]
    assert labels == ["show_v2", "testbundle  (untrained)"]
    assert panel.selected_name() == "show_v2"
    text = panel.details.toPlainText()
    for expected in ("fine-tuned on the show's hair shots", "parent: default", "iterations: 20000",
                     "final_loss: 0.0123", "data: show plates 1001-1400", "trained: yes"):
        assert expected in text
    panel.list.setCurrentRow(1)
    assert "untrained networks" in panel.details.toPlainText()
    assert panel.chosen is None
    panel.use_button.click()
    assert panel.chosen == "testbundle"


def test_an_empty_list_says_what_to_check(qapp):
    panel = WeightsPanel([])
    assert panel.selected_name() is None and not panel.use_button.isEnabled()
    texts = [w.text() for w in panel.findChildren(QtWidgets.QLabel)]
    assert any("No weights bundles found" in t for t in texts)


def test_browse_sets_the_nodes_weights(qapp, fake_nuke, found):
    node = fake_nuke.createNode("LBSMatte", inpanel=False)
    picked = []

    def pick():
        panels = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, WeightsPanel) and w.isVisible()]
        assert len(panels) == 1
        panels[0].list.setCurrentRow(0)
        picked.append(panels[0].selected_name())
        panels[0].use_button.click()

    qt.QtCore.QTimer.singleShot(0, pick)
    assert browse(node) == "show_v2"
    assert picked == ["show_v2"]
    assert node["weights"].value() == "show_v2"
    assert node["weights_list"].value() == "show_v2"

    def close():
        for w in QtWidgets.QApplication.topLevelWidgets():
            if isinstance(w, WeightsPanel) and w.isVisible():
                w.reject()

    qt.QtCore.QTimer.singleShot(0, close)
    assert browse(node) is None and node["weights"].value() == "show_v2"


def test_broken_bundles_are_listed_with_the_reason_and_cannot_be_used(qapp, lbs_env, fake_nuke, tmp_path, monkeypatch):
    root = lbs_env["bundles"]
    write_test_bundle(os.path.join(root, "good"), name="good", trained=True)
    _add_weight_files(os.path.join(root, "good"))
    write_test_bundle(os.path.join(root, "nofiles"), name="nofiles", trained=True)  # weights not copied
    os.makedirs(os.path.join(root, "badjson"))
    with open(os.path.join(root, "badjson", "manifest.json"), "w") as handle:
        handle.write("{oops")
    write_test_bundle(str(tmp_path / "later"), name="good")
    monkeypatch.setenv("LBSMATTE_WEIGHTS_PATH", os.pathsep.join([root, str(tmp_path / "later")]))
    problems = []
    found = bundles.find_bundles(problems=problems)
    panel = WeightsPanel(found, current="nofiles", problems=problems)
    labels = [panel.list.item(i).text() for i in range(panel.list.count())]
    assert labels == ["good", "nofiles  (broken)", "testbundle  (broken)", "badjson  (broken)", "later  (shadowed)"]
    assert panel.list.currentRow() == 1 and panel.selected_name() is None and not panel.use_button.isEnabled()
    text = panel.details.toPlainText()
    assert "BROKEN" in text and "background.safetensors is missing" in text
    panel.list.setCurrentRow(3)
    assert "manifest.json is not valid JSON" in panel.details.toPlainText() and not panel.use_button.isEnabled()
    panel.list.setCurrentRow(4)
    assert "shadowed by the one in" in panel.details.toPlainText()
    panel.list.setCurrentRow(0)
    assert panel.use_button.isEnabled()
    panel.list.setCurrentRow(3)
    panel.accept()  # a double click on a broken row
    assert panel.chosen is None

    node = fake_nuke.createNode("LBSMatte", inpanel=False)

    def look():
        shown = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, WeightsPanel) and w.isVisible()]
        labels[:] = [shown[0].list.item(i).text() for i in range(shown[0].list.count())]
        shown[0].reject()

    qt.QtCore.QTimer.singleShot(0, look)
    assert browse(node) is None
    assert "badjson  (broken)" in labels  # browse() passes the skipped folders on


def test_only_broken_bundles_says_so(qapp, tmp_path):
    panel = WeightsPanel([], problems=[(str(tmp_path / "x"), "manifest.json is not valid JSON")])
    assert panel.list.count() == 1 and not panel.use_button.isEnabled()
    texts = [w.text() for w in panel.findChildren(QtWidgets.QLabel)]
    assert any("No weights bundles found that can be used" in t for t in texts)


def test_exec_dialog_takes_either_spelling():
    """PySide2 (Nuke 13-15) dialogs have ``exec_`` only; PySide6 (Nuke 16) has ``exec`` too."""

    class PySide2Dialog:
        def exec_(self):
            return "exec_"

    class PySide6Dialog(PySide2Dialog):
        def exec(self):
            return "exec"

    assert qt.exec_dialog(PySide2Dialog()) == "exec_"
    assert qt.exec_dialog(PySide6Dialog()) == "exec"


def test_browse_in_terminal_mode_says_why_instead_of_aborting_nuke(lbs_env, tmp_path):
    """``nuke -t`` has no QApplication: a window made there aborts the process (Qt's 'Must construct
    a QApplication before a QWidget'), Nuke with it. The button says what to do instead. Run in a
    process of its own, as this test process has a QApplication."""
    import subprocess

    from fake_nuke.fixtures import FAKE_DIR

    code = ("import nuke\n"
            "from nuke_plugin import buttons\n"
            "node = nuke.createNode('LBSMatte', inpanel=False)\n"
            "buttons.browse_weights_pressed(node)\n"
            "print('STATUS ' + node['status'].value())\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([FAKE_DIR, REPO]), NUKE_PATH=REPO, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LBSMatte: LBSMatte1: the weights browser needs Nuke's interface" in done.stdout
    assert "STATUS ERROR: LBSMatte1: the weights browser needs Nuke's interface" in done.stdout
