"""Which Python runs core, and what environment it gets (``nuke_plugin.interpreter``)."""

import json
import os
import sys

from nuke_plugin import interpreter


def test_order_env_then_config_then_venv_then_path(tmp_path, monkeypatch):
    config = tmp_path / "lbsmatte.json"
    monkeypatch.setattr(interpreter, "config_path", lambda: str(config))
    assert interpreter.core_python({"LBSMATTE_PYTHON": " /opt/py/bin/python "}) == ("/opt/py/bin/python", "LBSMATTE_PYTHON")
    config.write_text(json.dumps({"python": "/from/config/python"}))
    assert interpreter.core_python({}) == ("/from/config/python", "config")
    config.write_text("not json")
    monkeypatch.setattr(interpreter, "plugin_root", lambda: str(tmp_path))
    assert interpreter.core_python({}) == ("python" if os.name == "nt" else "python3", "PATH")
    venv = tmp_path / ".venv" / ("Scripts" if os.name == "nt" else "bin")
    venv.mkdir(parents=True)
    (venv / ("python.exe" if os.name == "nt" else "python")).write_text("")
    assert interpreter.core_python({})[1] == "venv"
    config.write_text(json.dumps({"python": "/from/config/python"}))  # the config still comes before the venv
    assert interpreter.core_python({}) == ("/from/config/python", "config")
    # Explorer's "Copy as path" quotes, with spaces inside them
    assert interpreter.core_python({"LBSMATTE_PYTHON": '" /opt/py/bin/python "'}) == ("/opt/py/bin/python",
                                                                                      "LBSMATTE_PYTHON")


def test_write_config_records_this_python_and_core(tmp_path):
    path = interpreter.write_config(str(tmp_path / "c.json"))
    data = json.loads(open(path).read())
    assert data["python"] == sys.executable
    assert data["core_dir"] and os.path.isfile(os.path.join(data["core_dir"], "__init__.py"))
    assert interpreter.read_config(path) == data


def test_write_config_where_it_cannot_write_says_so_and_what_to_do_instead(tmp_path, monkeypatch, capsys):
    # A studio checkout read-only to the user who runs the install step: a bare PermissionError
    # traceback, and nothing said of LBSMATTE_PYTHON, which needs no file there.
    target = tmp_path / "read_only" / "lbsmatte.json"  # a folder that cannot be written in
    monkeypatch.setattr(interpreter, "config_path", lambda: str(target))
    assert interpreter.main(["--write-config"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"ERROR: cannot write the install config {target}: ")
    assert captured.err.rstrip().endswith(f"set LBSMATTE_PYTHON={sys.executable} in Nuke's environment instead")


def test_core_dir_next_to_the_plugin():
    assert interpreter.core_dir() == os.path.join(interpreter.plugin_root(), "core")


def test_child_environment_drops_nukes_python_and_libraries(tmp_path):
    nuke_dir = tmp_path / "Nuke15.1v1"
    (nuke_dir / "lib").mkdir(parents=True)
    other = tmp_path / "cuda" / "lib64"
    other.mkdir(parents=True)
    environ = {
        "PYTHONHOME": str(nuke_dir), "PYTHONPATH": str(nuke_dir / "plugins"), "PYTHONSTARTUP": "x",
        "LD_LIBRARY_PATH": os.pathsep.join([str(nuke_dir / "lib"), str(other)]),
        "PATH": os.pathsep.join([str(nuke_dir), "/usr/bin"]),
        "DYLD_LIBRARY_PATH": str(nuke_dir),
        "OCIO": "/studio/config.ocio", "LBSMATTE_WEIGHTS_PATH": "/show/weights",
        "OMP_NUM_THREADS": "4",  # the farm task's cores (docs/nuke.md, On the farm)
    }
    env = interpreter.child_environment(environ, nuke_dir=str(nuke_dir))
    assert "PYTHONHOME" not in env and "PYTHONSTARTUP" not in env
    assert env["PYTHONPATH"] == interpreter.plugin_root()  # core lives next to nuke_plugin here
    assert env["LD_LIBRARY_PATH"] == str(other)
    assert env["PATH"] == "/usr/bin"
    assert "DYLD_LIBRARY_PATH" not in env
    assert env["OCIO"] == "/studio/config.ocio" and env["LBSMATTE_WEIGHTS_PATH"] == "/show/weights"
    assert env["OMP_NUM_THREADS"] == "4"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert environ["PYTHONHOME"]  # the input is not modified
    extra = interpreter.child_environment(dict(environ, LBSMATTE_PYTHONPATH="/studio/py"), nuke_dir=str(nuke_dir))
    assert extra["PYTHONPATH"] == os.pathsep.join([interpreter.plugin_root(), "/studio/py"])


def test_an_installed_wheels_site_packages_is_not_put_on_the_core_pythons_path(tmp_path, monkeypatch):
    # python -m nuke_plugin.troubleshoot from a wheel's venv probed python3 from PATH with that
    # venv's whole site-packages on its PYTHONPATH: torch and OpenImageIO of another Python's
    # build failed to import there, and where none was installed the probe said OK all the same.
    site = tmp_path / "lib" / "python3.10" / "site-packages"
    for package in ("core", "nuke_plugin"):
        (site / package).mkdir(parents=True)
        (site / package / "__init__.py").write_text("")
    monkeypatch.setattr(interpreter, "plugin_root", lambda: str(site))
    assert "PYTHONPATH" not in interpreter.child_environment({"PATH": "/usr/bin"}, nuke_dir="")
    (site / "init.py").write_text("")  # a checkout: the folder on NUKE_PATH
    assert interpreter.child_environment({"PATH": "/usr/bin"}, nuke_dir="")["PYTHONPATH"] == str(site)


def test_write_config_from_an_installed_wheel_writes_nothing_nuke_never_reads(tmp_path, monkeypatch, capsys):
    # From a wheel's venv it wrote site-packages/nuke_plugin/lbsmatte.json, which the nuke_plugin
    # Nuke loads (the NUKE_PATH folder's) never reads, and pip uninstall left behind.
    site = tmp_path / "site-packages"
    (site / "nuke_plugin").mkdir(parents=True)
    monkeypatch.setattr(interpreter, "plugin_root", lambda: str(site))
    monkeypatch.setattr(interpreter, "config_path", lambda: str(site / "nuke_plugin" / "lbsmatte.json"))
    assert interpreter.main(["--write-config"]) == 1
    assert not (site / "nuke_plugin" / "lbsmatte.json").exists()
    err = capsys.readouterr().err
    assert err.startswith(f"ERROR: {site / 'nuke_plugin'} is an installed package, not the LBSMatte folder on NUKE_PATH")
    assert err.rstrip().endswith(f"set LBSMATTE_PYTHON={sys.executable} in Nuke's environment instead")


def test_inside_nuke_its_folder_is_found_by_itself(tmp_path):
    from fake_nuke.fixtures import import_fake_nuke

    nuke = import_fake_nuke()
    nuke_dir = os.path.dirname(nuke.EXE_PATH)
    env = interpreter.child_environment({"LD_LIBRARY_PATH": os.pathsep.join([nuke_dir, "/opt/cuda/lib64"])})
    assert env["LD_LIBRARY_PATH"] == "/opt/cuda/lib64"


def test_main_prints_the_choice(capsys):
    assert interpreter.main([]) == 0
    out = capsys.readouterr().out
    assert "python:" in out and "core:" in out
    assert interpreter.main(["--bogus"]) == 2


def test_one_config_serves_the_artists_windows_and_the_linux_farm(tmp_path, monkeypatch):
    # A shared LBSMatte folder: --write-config run on a Windows workstation, then on a Linux farm
    # machine (faked by the platform key); each system reads its own python.
    config = tmp_path / "lbsmatte.json"
    monkeypatch.setattr(interpreter, "config_path", lambda: str(config))
    monkeypatch.setattr(interpreter, "plugin_root", lambda: str(tmp_path))  # no .venv there
    monkeypatch.setattr(interpreter, "platform_key", lambda: "windows")
    interpreter.write_config(python="P:\\lbsmatte\\venv\\Scripts\\python.exe", core="P:\\lbsmatte\\core")
    monkeypatch.setattr(interpreter, "platform_key", lambda: "linux")
    interpreter.write_config(python="/mnt/p/lbsmatte/venv/bin/python", core="/mnt/p/lbsmatte/core")
    assert interpreter.core_python({}) == ("/mnt/p/lbsmatte/venv/bin/python", "config")
    monkeypatch.setattr(interpreter, "platform_key", lambda: "windows")
    assert interpreter.core_python({}) == ("P:\\lbsmatte\\venv\\Scripts\\python.exe", "config")
    data = json.loads(config.read_text())
    assert sorted(data["platforms"]) == ["linux", "windows"]


def test_a_config_written_on_windows_only_is_not_run_on_linux_and_troubleshoot_says_so(tmp_path, monkeypatch):
    from nuke_plugin import troubleshoot as ts

    config = tmp_path / "lbsmatte.json"
    monkeypatch.setattr(interpreter, "config_path", lambda: str(config))
    monkeypatch.setattr(interpreter, "plugin_root", lambda: str(tmp_path))
    windows = "C:\\Program Files\\LBSMatte\\venv\\Scripts\\python.exe"
    config.write_text(json.dumps({"python": windows, "core_dir": "C:\\Program Files\\LBSMatte\\core"}))  # older LBSMatte
    if os.name == "nt":
        assert interpreter.core_python({}) == (windows, "config")
        return
    monkeypatch.setattr(interpreter, "platform_key", lambda: "linux")
    assert interpreter.core_python({}) == ("python3", "PATH")  # not 'C:\\...', a file name on Linux
    assert interpreter.configured("python") == (None, windows)
    checks = ts.check_install(run_probe=False)
    warning = [c for c in checks if "install config" in c.title]
    assert len(warning) == 1 and warning[0].status == ts.WARN
    assert warning[0].title == (f"the install config {config} holds the python of another system ({windows}), "
                                "none for this linux machine")
    assert "--write-config` on this machine too" in warning[0].detail
