"""Installing LBSMatte as a studio does: site-wide ``NUKE_PATH`` folders, two versions on it.

Each run starts a fresh Python with the fake ``nuke`` (``tests/fake_nuke``), copies of the
checkout's start-up files in folders of their own, and Nuke's start-up order: the plugin path is
``NUKE_PATH`` in order, but the last folder's ``init.py`` runs first.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import FAKE_DIR, REPO, write_shot, write_test_bundle

_PROBE = r"""
import json, os, sys
import nuke  # starts up as Nuke does, NUKE_PATH's init.py files (tests/fake_nuke/nuke.py)
import nuke_plugin
from nuke_plugin import troubleshoot
node = nuke.createNode("LBSMatte", inpanel=False)
report = troubleshoot.troubleshoot_node(node, run_probe=False)
print("RESULT " + json.dumps({
    "nuke_plugin": os.path.dirname(os.path.dirname(os.path.abspath(nuke_plugin.__file__))),
    "gizmo": nuke._find_gizmo("LBSMatte"),
    "on_create": len(nuke._callbacks["onCreate"]),
    "report": report,
}))
"""


def _copy_install(folder, version):
    """An LBSMatte folder as a studio installs one: start-up files, nuke_plugin, gizmos."""
    os.makedirs(folder)
    for name in ("init.py", "menu.py"):
        shutil.copy(os.path.join(REPO, name), folder)
    for name in ("nuke_plugin", "gizmos"):
        shutil.copytree(os.path.join(REPO, name), os.path.join(folder, name),
                        ignore=shutil.ignore_patterns("__pycache__", "lbsmatte.json"))
    with open(os.path.join(folder, "nuke_plugin", "__init__.py"), "a") as handle:
        handle.write(f"__version__ = {version!r}\n")
    return folder


def _start(tmp_path, nuke_path, pythonpath=()):
    env = dict(os.environ, NUKE_PATH=os.pathsep.join(nuke_path),
               PYTHONPATH=os.pathsep.join([FAKE_DIR] + list(pythonpath)), PYTHONIOENCODING="utf-8",
               LBSMATTE_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, env=env,
                          cwd=str(tmp_path), encoding="utf-8")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads([line for line in done.stdout.splitlines() if line.startswith("RESULT ")][-1][7:])
    return result, done.stderr


@pytest.mark.parametrize("pythonpath_has_the_other", [False, True])
def test_two_versions_on_nuke_path_the_first_is_used_whole_and_the_other_is_named(tmp_path, pythonpath_has_the_other):
    show = _copy_install(str(tmp_path / "show tools" / "LBSMatte 1.1 ü"), "1.1")  # spaces, non-ASCII
    site = _copy_install(str(tmp_path / "site" / "lbsmatte-1.0"), "1.0")
    # The site's copy on PYTHONPATH too (a TD's setting for the lbsmatte command line) must not
    # slip its Python under the show's gizmo.
    result, err = _start(tmp_path, [show, site], [site] if pythonpath_has_the_other else [])
    assert result["nuke_plugin"] == show
    assert result["gizmo"] == os.path.join(show, "gizmos", "LBSMatte.gizmo")
    assert result["on_create"] == 1  # the callbacks once, the show's
    assert err.count(f"LBSMatte: {site} not loaded: {show} comes first on the plugin path and is used\n") == 1
    assert f"LBSMatte is on the plugin path 2 times: {show} is used, {site} ignored" in result["report"]
    assert "LBSMatte.gizmo comes from" not in result["report"]


def test_one_install_loads_without_a_word(tmp_path):
    only = _copy_install(str(tmp_path / "LBSMatte ü"), "1.1")
    result, err = _start(tmp_path, [only, str(tmp_path)])  # another studio folder after it
    assert result["nuke_plugin"] == only and result["on_create"] == 1
    assert "LBSMatte" not in err, err
    assert "plugin path 2 times" not in result["report"] and "WARN  LBSMatte is on" not in result["report"]


def test_troubleshoot_fails_a_gizmo_from_another_lbsmatte_folder(tmp_path):
    from nuke_plugin import interpreter, troubleshoot

    old = _copy_install(str(tmp_path / "lbsmatte-1.0"), "1.0")  # its gizmos/ added to the path by hand
    checks = troubleshoot.check_copies([os.path.join(old, "gizmos"), interpreter.plugin_root(), old],
                                       os.path.join(old, "gizmos"))
    assert [c.status for c in checks] == ["WARN", "FAIL"]
    assert checks[0].title == f"LBSMatte is on the plugin path 2 times: {REPO} is used, {old} ignored"
    assert checks[1].title == (
        f"LBSMatte.gizmo comes from {os.path.join(old, 'gizmos')}, but the node's Python from {REPO}")
    assert troubleshoot.check_copies([interpreter.plugin_root()], os.path.join(REPO, "gizmos")) == []


def _shared_venv(tmp_path):
    """A venv made on the TD's workstation and put on a share: its python is a link to the Python
    it was made from, which this machine does not have."""
    env = tmp_path / "share" / "lbsmatte" / ".venv"
    (env / "bin").mkdir(parents=True)
    gone = tmp_path / "td-workstation" / "python3.11" / "bin"
    (env / "pyvenv.cfg").write_text(f"home = {gone}\ninclude-system-site-packages = false\nversion = 3.11.7\n")
    os.symlink(str(gone / "python3.11"), str(env / "bin" / "python"))
    return str(env / "bin" / "python"), str(gone)


@pytest.mark.skipif(os.name == "nt", reason="a POSIX venv's link")
def test_a_shared_venv_whose_python_this_machine_lacks_is_named_as_such(tmp_path):
    from nuke_plugin import compute
    from nuke_plugin import troubleshoot as ts
    from nuke_plugin.errors import NodeError

    python, gone = _shared_venv(tmp_path)
    assert os.path.lexists(python)  # the TD's `ls` shows it
    check = ts.check_interpreter(python, "LBSMATTE_PYTHON")
    assert check.status == ts.FAIL and check.title.startswith(f"Python for LBSMatte not found: {python}")
    assert f"It is a link to {os.path.join(gone, 'python3.11')}, which does not exist on this machine" in check.detail
    assert f"(pyvenv.cfg: home = {gone})" in check.detail and "LBSMATTE_PYTHON" in check.detail
    with pytest.raises(NodeError) as caught:
        compute.check_python(python)
    assert f"the LBSMatte Python {python} cannot run: it is a link to {os.path.join(gone, 'python3.11')}" in str(
        caught.value)


def test_a_relative_interpreter_path_is_named_relative_to_where_nuke_started(tmp_path, monkeypatch):
    from nuke_plugin import compute
    from nuke_plugin import troubleshoot as ts
    from nuke_plugin.errors import NodeError

    started = tmp_path / "shots" / "sh010"  # Nuke started from a shot's folder
    started.mkdir(parents=True)
    monkeypatch.chdir(started)
    relative = os.path.join(".venv", "bin", "python")
    check = ts.check_interpreter(relative, "LBSMATTE_PYTHON")
    assert check.status == ts.FAIL
    assert f"It is a relative path, read from the folder Nuke was started in ({started})" in check.detail
    with pytest.raises(NodeError, match="cannot run: it is a relative path"):
        compute.check_python(relative)
    # found there by chance: works here, not on the farm
    (started / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(sys.executable, str(started / relative))
    check = ts.check_interpreter(relative, "LBSMATTE_PYTHON")
    assert check.status == ts.WARN and check.title.startswith("Python for LBSMatte is a relative path")
    assert "Give an absolute path" in check.detail


def test_the_install_config_is_named_by_its_file(tmp_path):
    from nuke_plugin import interpreter
    from nuke_plugin import troubleshoot as ts

    check = ts.check_interpreter(str(tmp_path / "old-venv" / "bin" / "python"), "config")
    assert check.status == ts.FAIL and f"(from the install config {interpreter.config_path()})" in check.title
    assert ts.check_interpreter(sys.executable, "config").title.endswith(
        f"(from the install config {interpreter.config_path()})")


def test_batch_on_a_farm_machine_without_lbsmatte_on_nuke_path_says_so(fake_nuke, lbs_env, sequences, tmp_path,
                                                                       monkeypatch, capsys):
    from nuke_plugin import batch

    shot = write_shot(str(tmp_path / "shot.nk"), sequences)
    monkeypatch.setenv("NUKE_PATH", str(tmp_path / "studio_nuke"))  # the farm's NUKE_PATH, without LBSMatte
    fake_nuke._reset()
    fake_nuke._startup()
    assert batch.main([shot, "--node", "LBSMatte1"]) == batch.EXIT_USAGE
    out = capsys.readouterr().out
    assert out.startswith(f"ERROR: LBSMatte is not on this Nuke's plugin path (NUKE_PATH={tmp_path / 'studio_nuke'}): "
                          f"add the LBSMatte folder ({REPO}) to NUKE_PATH on this machine")
    assert "Unknown command" not in out


def test_the_install_fix_names_a_folder_with_spaces_quoted(tmp_path, monkeypatch):
    from nuke_plugin import interpreter
    from nuke_plugin import troubleshoot as ts

    folder = tmp_path / "Studio Tools" / "LBSMatte ü"
    folder.mkdir(parents=True)
    (folder / "init.py").write_text("")
    monkeypatch.setattr(interpreter, "plugin_root", lambda: str(folder))
    checks = ts.check_probe({"python": "3.11.4", "oiio_error": "ModuleNotFoundError: No module named 'OpenImageIO'"},
                            "/opt/py/bin/python")
    oiio = [c for c in checks if c.title == "OpenImageIO does not import"][0]
    assert f'/opt/py/bin/python -m pip install -e "{folder}")' in oiio.detail  # a command that runs as pasted


def test_a_folder_with_a_nuke_plugin_but_no_lbsmatte_init_before_the_install_does_not_switch_it_off(tmp_path):
    # an environment's site-packages (an installed wheel: nuke_plugin, no init.py) put on NUKE_PATH, and
    # an artist's ~/.nuke with their own init.py and a nuke_plugin copied in by hand (no gizmo)
    wheel = tmp_path / "venv-site-packages"
    home = tmp_path / "home" / ".nuke"
    for folder in (wheel, home):
        shutil.copytree(os.path.join(REPO, "nuke_plugin"), str(folder / "nuke_plugin"),
                        ignore=shutil.ignore_patterns("__pycache__"))
    (home / "init.py").write_text("import nuke\n")
    only = _copy_install(str(tmp_path / "lbsmatte"), "1.1")
    result, err = _start(tmp_path, [str(home), str(wheel), only])
    assert result["nuke_plugin"] == only and result["on_create"] == 1
    assert "LBSMatte" not in err, err


def test_a_relative_weights_path_entry_is_a_troubleshoot_warning(tmp_path, monkeypatch):
    from nuke_plugin import troubleshoot as ts

    started = tmp_path / "show"
    write_test_bundle(str(started / "weights" / "showbundle"), name="showbundle")
    monkeypatch.chdir(started)  # found from here, by chance
    monkeypatch.setenv("LBSMATTE_WEIGHTS_PATH", os.pathsep.join(["weights", str(tmp_path)]))
    checks = ts.check_bundles(core_dir=str(tmp_path / "no-core"))
    relative = [c for c in checks if "relative" in c.title]
    assert [(c.status, c.title) for c in relative] == [(ts.WARN, "LBSMATTE_WEIGHTS_PATH entry weights is a relative path")]
    assert f"read from the folder Nuke was started in ({started})" in relative[0].detail
    assert any(c.title.startswith("bundles: showbundle") for c in checks)  # still listed: it is found here


def _copied_venv(tmp_path):
    env = tmp_path / "share" / "venv"
    (env / "bin").mkdir(parents=True)
    gone = tmp_path / "td-workstation" / "python3.11" / "bin"
    (env / "pyvenv.cfg").write_text(f"home = {gone}\n")
    python = env / "bin" / "python"  # venv --copies: a file, which cannot find its standard library
    python.write_text("#!/bin/sh\necho 'Could not find platform independent libraries <prefix>' >&2\nexit 1\n")
    os.chmod(str(python), 0o755)
    return python, gone


@pytest.mark.skipif(os.name == "nt", reason="a POSIX shell stands in for the copied python")
def test_a_copied_venv_python_whose_base_python_is_missing_is_named(tmp_path):
    from nuke_plugin import troubleshoot as ts

    python, gone = _copied_venv(tmp_path)
    assert ts.check_interpreter(str(python), "LBSMATTE_PYTHON").status == ts.OK
    [check] = ts.check_probe(ts.probe(str(python)), str(python))
    assert check.status == ts.FAIL and check.title == "the LBSMatte Python does not run"
    assert "Could not find platform independent libraries" in check.detail
    assert f"Its virtual environment was made from the Python in {gone}, which this machine lacks" in check.detail


@pytest.mark.skipif(os.name == "nt", reason="a POSIX shell stands in for the copied python")
def test_compute_with_a_copied_venv_python_whose_base_python_is_missing_says_so(fake_nuke, lbs_env, sequences,
                                                                                tmp_path, monkeypatch):
    from fake_nuke.fixtures import make_graph

    from nuke_plugin import compute
    from nuke_plugin.errors import NodeError

    python, gone = _copied_venv(tmp_path)
    monkeypatch.setenv("LBSMATTE_PYTHON", str(python))
    node = make_graph(fake_nuke, sequences)
    with pytest.raises(NodeError) as caught:
        compute.prepare(node)
    message = str(caught.value)
    assert message.startswith("LBSMatte1: the LBSMatte core cannot run: ")
    assert "Could not find platform independent libraries" in message
    assert message.endswith(f"; the virtual environment of {python} was made from the Python in {gone}, which this "
                            "machine lacks (run Troubleshoot)")
