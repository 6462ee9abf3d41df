"""*Troubleshoot* says what is wrong with an installation, in words."""

import os
import sys

from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import REPO, write_test_bundle

from nuke_plugin import troubleshoot as ts


def _statuses(checks):
    return [(c.status, c.title) for c in checks]


def test_probe_findings():
    good = {"python": "3.11.7", "core": "/x/core/__init__.py", "core_version": "0.1.0", "cli": True,
            "torch": "2.3.0", "cuda": True, "cuda_build": "12.1", "cuda_device": "NVIDIA H100", "oiio": "2.5"}
    assert all(c.status == ts.OK for c in ts.check_probe(good))
    assert "CUDA 12.1 on NVIDIA H100" in " ".join(c.title for c in ts.check_probe(good))
    cpu = dict(good, cuda=False, cuda_build=None)
    warn = [c for c in ts.check_probe(cpu) if c.status == ts.WARN]
    assert len(warn) == 1 and "CPU-only" in warn[0].detail
    broken = {"python": "3.7.7", "core_error": "ModuleNotFoundError: No module named 'core'",
              "torch_error": "ModuleNotFoundError: No module named 'torch'", "oiio_error": "x"}
    failed = [c.title for c in ts.check_probe(broken) if c.status == ts.FAIL]
    assert any("too old" in t for t in failed) and any("core package" in t for t in failed)
    assert any("torch" in t for t in failed) and any("OpenImageIO" in t for t in failed)
    assert ts.check_probe({"error": "cannot be started"})[0].status == ts.FAIL
    assert ts.check_probe(dict(good, bundle_problems=["alpha.safetensors: bad checksum"]))[-1].status == ts.FAIL


def test_missing_interpreter_and_unwritable_cache(tmp_path):
    check = ts.check_interpreter(str(tmp_path / "nope" / "python"), "LBSMATTE_PYTHON")
    assert check.status == ts.FAIL and "LBSMATTE_PYTHON" in check.detail
    assert ts.check_interpreter(sys.executable, "config").status == ts.OK
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert ts.check_cache(str(blocker / "cache")).status == ts.FAIL
    assert ts.check_cache(str(tmp_path / "cache")).status in (ts.OK, ts.WARN)


def test_bundle_findings(lbs_env, tmp_path, monkeypatch):
    core = tmp_path / "nocore"
    checks = ts.check_bundles("testbundle", core_dir=str(core))
    assert checks[0].status == ts.WARN and "default bundle is missing" in checks[0].title
    assert any("untrained" in c.title for c in checks)
    assert any(c.status == ts.FAIL for c in ts.check_bundles("nope", core_dir=str(core)))
    # A folder renamed on the show's path: its manifest keeps the name; said as Compute says it.
    write_test_bundle(os.path.join(lbs_env["bundles"], "abc_v1_approved"), name="abc_v1")
    failed = [c for c in ts.check_bundles("abc_v1_approved", core_dir=str(core)) if c.status == ts.FAIL]
    assert failed[0].title == "the weights knob names 'abc_v1_approved', which is not found"
    assert "holds the bundle 'abc_v1' (a bundle is picked by the name its manifest.json gives" in failed[0].detail
    monkeypatch.setenv("LBSMATTE_WEIGHTS_PATH", str(tmp_path / "empty"))
    checks = ts.check_bundles("default", core_dir=str(core))
    assert checks[0].status == ts.WARN and "not a folder" in checks[0].title
    assert checks[1].status == ts.FAIL and checks[1].title == "no weights bundles found"


def test_the_real_probe_with_this_python(monkeypatch):
    # This python is the project's own environment: everything the probe looks for is there, so
    # any *_error key is a real installation problem, not something to tolerate.
    import torch

    import core

    info = ts.probe(sys.executable)
    assert info.get("python") == ".".join(map(str, sys.version_info[:3])), info
    assert [key for key in info if key.endswith("error")] == [], info
    assert os.path.samefile(info["core"], core.__file__) and info["cli"] is True
    assert info["torch"] == torch.__version__ and info["cuda"] == torch.cuda.is_available()
    assert [c for c in ts.check_probe(info) if c.status == ts.FAIL] == []


def test_the_button_reports_in_a_message(fake_nuke, lbs_env, monkeypatch):
    monkeypatch.setattr(fake_nuke, "GUI", True)
    node = fake_nuke.createNode("LBSMatte", inpanel=False)
    node["weights"].setValue("testbundle")
    node["troubleshoot"].execute()
    text = fake_nuke._messages[-1]
    assert text.splitlines()[0].startswith("LBSMatte")
    assert "Nuke 15.1v1, gizmo from" in text
    assert f"Python for LBSMatte: {lbs_env['python']} (from LBSMATTE_PYTHON)" in text
    assert "the LBSMatte Python does not run" in text  # the test wrapper is no real python
    assert "untrained" in text and f"cache folder {lbs_env['cache']}" in text


def test_runs_without_nuke(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LBSMATTE_PYTHON", str(tmp_path / "no" / "python"))
    code = ts.main(["default", str(tmp_path / "cache")])
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith("problem(s) to fix") and code == 1
    assert "FAIL  Python for LBSMatte not found" in out and "OK    cache folder" in out
    assert os.path.isdir(str(tmp_path / "cache"))


def test_an_interpreter_that_is_a_folder_or_not_executable_says_so(tmp_path):
    folder = ts.check_interpreter(str(tmp_path), "LBSMATTE_PYTHON")
    assert folder.status == ts.FAIL and "is a folder" in folder.title and "bin/python" in folder.detail.replace("\\", "/")
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\n")
    os.chmod(str(script), 0o644)
    if os.access(str(script), os.X_OK):  # Windows: every file counts as executable
        return
    check = ts.check_interpreter(str(script), "LBSMATTE_PYTHON")
    assert check.status == ts.FAIL and "not executable" in check.title and "chmod +x" in check.detail


def test_every_failure_says_how_to_fix_it():
    broken = {"python": "3.9.1", "core_error": "ModuleNotFoundError: No module named 'core'",
              "cli_error": "ModuleNotFoundError: No module named 'numpy'",
              "torch_error": "ModuleNotFoundError: No module named 'torch'", "oiio_error": "x",
              "bundle_problems": ["cannot import the networks to check architectures: No module named 'torch'"]}
    failed = [c for c in ts.check_probe(broken, "/opt/py/bin/python") if c.status == ts.FAIL]
    assert [c.title.split(":")[0] for c in failed] == [
        "Python 3.9.1 is too old", "the core package does not import", "core.cli does not import",
        "torch does not import", "OpenImageIO does not import"]  # no bundle failure: torch's, said once
    for check in failed:
        assert "LBSMATTE_PYTHON" in check.detail, check
    # pip refuses LBSMatte in a Python older than 3.10: the fix is another Python, not an install there
    assert "/opt/py/bin/python -m pip install" not in failed[3].detail
    assert "Installing into Python 3.9.1 cannot fix this (core needs 3.10 or newer)" in failed[3].detail
    no_torch = ts.check_probe({"python": "3.11.4", "torch_error": "ModuleNotFoundError: No module named 'torch'"},
                              "/opt/py/bin/python")
    torch = [c for c in no_torch if c.title == "torch does not import"][0]
    assert f"/opt/py/bin/python -m pip install -e {REPO})" in torch.detail  # the folder itself, no placeholder
    error = ts.check_probe({"error": "cannot be started: [Errno 8] Exec format error"}, "/x/python")[0]
    assert "Exec format error" in error.detail and "LBSMATTE_PYTHON" in error.detail


def test_broken_and_shadowed_bundles_are_reported(lbs_env, tmp_path, monkeypatch):
    root = lbs_env["bundles"]
    os.makedirs(os.path.join(root, "badjson"))
    with open(os.path.join(root, "badjson", "manifest.json"), "w") as handle:
        handle.write("{oops")
    from fake_nuke.fixtures import write_test_bundle

    write_test_bundle(str(tmp_path / "dup"), name="testbundle")
    monkeypatch.setenv("LBSMATTE_WEIGHTS_PATH", os.pathsep.join([root, str(tmp_path / "dup")]))
    checks = ts.check_bundles("testbundle", core_dir=str(tmp_path / "nocore"))
    text = ts.format_checks(checks)
    assert f"broken weights bundle skipped: {os.path.join(root, 'badjson')}" in text
    assert "not valid JSON" in text and "shadowed by the one in" in text
    # the manifest-only test bundle has no network files: the selected bundle is broken, and says why
    assert "FAIL  the selected weights bundle 'testbundle' is broken" in text
    assert "background.safetensors is missing" in text


def test_never_raises(monkeypatch, tmp_path):
    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ts.bundles, "find_bundles", boom)
    monkeypatch.setattr(ts.interpreter, "core_python", boom)
    checks = ts.check_install("default", str(tmp_path / "cache"))
    failed = [c.title for c in checks if c.status == ts.FAIL]
    assert any("disk on fire" in t for t in failed) and len(failed) == 2
    assert checks[-1].status == ts.OK and "cache folder" in checks[-1].title  # the cache check still ran


def test_a_broken_selected_bundle_is_reported_once_with_a_fitting_fix(lbs_env, tmp_path, monkeypatch):
    import json

    good = {"python": "3.11.7", "core": "/x/core/__init__.py", "core_version": "0.1.0", "cli": True,
            "torch": "2.3.0", "cuda": True, "cuda_build": "12.1", "cuda_device": "GPU", "oiio": "2.5",
            "bundle_problems": ["background.safetensors is missing"]}
    monkeypatch.setattr(ts, "probe", lambda python, weights=None: dict(good))
    monkeypatch.setenv("LBSMATTE_PYTHON", sys.executable)
    newer = os.path.join(lbs_env["bundles"], "newer")
    os.makedirs(newer)
    with open(os.path.join(newer, "manifest.json"), "w") as handle:
        json.dump({"format": "lbsmatte-bundle", "format_version": 7, "networks": {}}, handle)
    text = ts.format_checks(ts.check_install("testbundle"))
    assert text.count("background.safetensors is missing") == 1
    lines = text[text.index("broken weights bundle skipped: " + newer):].splitlines()
    assert "update LBSMatte" in lines[1] and "Copy the bundle again" not in lines[2]  # no copy will help


def test_the_write_checks_never_follow_a_link_planted_in_a_shared_cache(fake_nuke, tmp_path):
    """A farm's cache folder is writable by every user: a link at the probe's predictable name
    (``.lbsmatte-write-test-<pid>``) must not make Compute or Troubleshoot truncate its target."""
    from nuke_plugin import compute

    shared = tmp_path / "cache"
    shared.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's own file")
    for name in (f".lbsmatte-write-test-{os.getpid()}", f".lbsmatte-troubleshoot-{os.getpid()}"):
        os.symlink(str(victim), str(shared / name))
    compute._writable_dir(str(shared))
    assert ts.check_cache(str(shared)).status in (ts.OK, ts.WARN)
    assert victim.read_text() == "the user's own file"


def test_a_cache_folder_with_under_5_gib_free_is_a_warning(tmp_path, monkeypatch):
    import collections

    usage = collections.namedtuple("usage", "total used free")
    for gib, status in ((4.9, ts.WARN), (5.1, ts.OK)):
        monkeypatch.setattr(ts.shutil, "disk_usage", lambda folder, gib=gib: usage(1 << 40, 0, int(gib * (1 << 30))))
        check = ts.check_cache(str(tmp_path / "cache"))
        assert check.status == status, (gib, check.title)
    assert "5 GiB free" in check.title


def test_a_cache_folder_knob_nuke_would_put_the_frame_number_in_is_reported_by_name(fake_nuke, lbs_env, tmp_path):
    # Nuke's File_Knob.evaluate() fills in '#': the folder would be another at each frame.
    node = fake_nuke.createNode("LBSMatte", inpanel=False)
    node["cache_dir"].setValue(str(tmp_path / "sh#01" / "cache"))
    text = ts.troubleshoot_node(node)
    assert "FAIL  cache folder refused" in text
    assert f"the cache folder {tmp_path / 'sh#01' / 'cache'} has '#' in it, which Nuke reads as a frame number" in text
    assert not (tmp_path / "sh#01").exists()
