"""Windows and macOS, simulated on Linux: what the core and the Nuke plugin assume about the
platform (streams' encodings, start methods, process trees, file replacement, interpreters)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)

ROOT = Path(__file__).resolve().parents[1]


def _core(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **env)
    return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=ROOT, env=environ, capture_output=True,
                          timeout=300, encoding="utf-8", errors="replace")


def test_an_error_naming_a_file_the_log_encoding_cannot_hold_is_one_error_line_not_a_traceback(tmp_path) -> None:
    # On Windows stdout into a pipe or a file (a farm's log) is written in the ANSI code page,
    # cp1252, with errors raised: as PYTHONIOENCODING=cp1252 makes it here.
    plate = tmp_path / "日本" / "plate.exr"
    done = _core(["matte", "--plate", str(plate), "--trimap", str(tmp_path / "t.exr"),
                  "--out", str(tmp_path / "out.exr"), "--weights", "none"], PYTHONIOENCODING="cp1252")
    assert "Traceback" not in done.stderr, done.stderr
    assert "UnicodeEncodeError" not in done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "\\u65e5\\u672c" in errors[0] and "no such file" in errors[0], done.stdout
    assert done.returncode not in (0, 1), done.returncode  # the usage error's own status, not a crash's


class _Captured(Exception):
    """Raised by the stand-in for ``train()`` once it holds the batch source."""


def _batch_source(monkeypatch, argv: list[str]):
    """The batch source ``lbsmatte train``/``finetune`` hands to ``train()`` (nothing trained)."""
    import core.training.train
    from core.cli import main

    seen = {}

    def fake_train(run_dir, batches, *args, **kwargs):
        seen["batches"] = batches
        raise _Captured

    monkeypatch.setattr(core.training.train, "train", fake_train)
    try:
        main(argv)
    except _Captured:
        pass
    return seen["batches"]


def test_finetune_workers_batch_source_survives_pickling_as_spawned_workers_need(tmp_path, monkeypatch, small_bundle,
                                                                                 rng) -> None:
    # Windows has no fork and macOS starts processes with spawn: each DataLoader worker gets its
    # dataset (and the factory in it) pickled. A function defined inside another could not be.
    import pickle

    from test_finetune import _show

    _show(tmp_path / "show", rng)
    source = _batch_source(monkeypatch, [
        "finetune", "--from", str(small_bundle.path), "--data", str(tmp_path / "show"), "--out", str(tmp_path / "o"),
        "--steps", "1,1,1", "--crop", "32", "--batch", "2", "--workers", "2", "--run-dir", str(tmp_path / "run"),
        "--no-progress"])
    factory = pickle.loads(pickle.dumps(source.factory))
    batch = factory(7)("alpha")
    assert batch["image"].shape[0] == 2


def test_train_workers_batch_source_survives_pickling_as_spawned_workers_need(tmp_path, monkeypatch) -> None:
    import pickle

    import pytest

    from core.training.data import default_data_root

    data = default_data_root()
    if not (data / "alphamatting").is_dir() or not (data / "backgrounds").is_dir():
        pytest.skip(f"training data not found in {data}")
    source = _batch_source(monkeypatch, [
        "train", "--out", str(tmp_path / "o"), "--steps", "1,1,1", "--crop", "32", "--batch", "2", "--backgrounds",
        "1", "--procedural", "0.5", "--real-photos", "0.5", "--workers", "2", "--run-dir", str(tmp_path / "run"),
        "--no-progress"])
    factory = pickle.loads(pickle.dumps(source.factory))
    batch = factory(7)("foreground")
    assert batch["image"].shape[0] == 2


def test_workers_started_with_spawn_draw_batches_and_need_no_process_groups(tmp_path) -> None:
    # As on Windows: the spawn start method, and no os.setpgid in the workers.
    import textwrap

    script = tmp_path / "spawned.py"
    script.write_text(textwrap.dedent(f"""
        import multiprocessing, os, sys
        sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_parallel_batches import _factory
        from core.training.data import ParallelBatches

        if __name__ == "__main__":
            multiprocessing.set_start_method("spawn")
            os.environ["LBSMATTE_TEST_NO_SETPGID"] = "1"
            source = ParallelBatches(_factory, workers=2, seed=3, prefetch=1)
            seeds = {{int(source("background")["seed"]) for _ in range(6)}}
            source.close()
            print(len(seeds), flush=True)
    """))
    sitecustomize = tmp_path / "site"
    sitecustomize.mkdir()
    # In each process, as on Windows: os has no setpgid.
    (sitecustomize / "sitecustomize.py").write_text(
        "import os\nif os.environ.get('LBSMATTE_TEST_NO_SETPGID'):\n    del os.setpgid\n")
    env = dict(os.environ, PYTHONPATH=f"{sitecustomize}{os.pathsep}{ROOT}", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["2"]


# -- the Nuke plugin on Windows (os.name "nt", simulated) ------------------------------------------
def _as_windows(monkeypatch, *modules) -> None:
    """``os.name`` is ``"nt"`` as ``modules`` see it (the rest of ``os``, pytest's own use
    included, is this system's)."""
    import types

    fake = types.SimpleNamespace(**{name: getattr(os, name) for name in dir(os) if not name.startswith("__")})
    fake.name = "nt"
    for module in modules:
        monkeypatch.setattr(module, "os", fake)


class _Running:
    """A process that runs until something ends it (for runner._terminate)."""

    pid = 4242
    returncode = None

    def __init__(self) -> None:
        self.terminated = False

    def poll(self):
        return self.returncode

    def terminate(self) -> None:
        self.terminated = True
        self.returncode = 1

    def kill(self) -> None:
        self.returncode = -9

    def wait(self, timeout=None):
        return self.returncode


def test_cancel_on_windows_ends_the_whole_process_tree_not_only_a_launcher(monkeypatch) -> None:
    # TerminateProcess (Popen.terminate on Windows) ends one process: a .bat/.cmd or launcher
    # given as LBSMATTE_PYTHON would leave the python.exe it started writing frames after Cancel.
    from nuke_plugin import interpreter, runner

    process = _Running()
    calls = []

    def fake_run(command, **kwargs):
        calls.append((command, kwargs))
        process.returncode = 1  # taskkill ended it
        return subprocess.CompletedProcess(command, 0)

    _as_windows(monkeypatch, runner, interpreter)
    monkeypatch.setattr(runner.subprocess, "run", fake_run)
    runner._terminate(process, grace=0.1)
    assert calls and calls[0][0] == ["taskkill", "/F", "/T", "/PID", "4242"]
    assert calls[0][1].get("creationflags") == 0x08000000  # no console window over Nuke
    assert not process.terminated


def test_cancel_on_windows_falls_back_to_terminate_without_taskkill(monkeypatch) -> None:
    from nuke_plugin import interpreter, runner

    process = _Running()

    def no_taskkill(command, **kwargs):
        raise FileNotFoundError(command[0])

    _as_windows(monkeypatch, runner, interpreter)
    monkeypatch.setattr(runner.subprocess, "run", no_taskkill)
    runner._terminate(process, grace=0.1)
    assert process.terminated


def test_on_posix_cancel_is_still_sigterm_to_the_process(monkeypatch) -> None:
    from nuke_plugin import runner

    process = _Running()
    monkeypatch.setattr(runner.subprocess, "run", lambda *a, **k: pytest_fail("no taskkill on POSIX"))
    runner._terminate(process, grace=0.1)
    assert process.terminated


def pytest_fail(message: str) -> None:
    raise AssertionError(message)


def test_interpreter_probes_on_windows_open_no_console_window(monkeypatch, tmp_path) -> None:
    from nuke_plugin import interpreter, troubleshoot

    seen = []

    def fake_check_output(command, **kwargs):
        seen.append(kwargs.get("creationflags"))
        return str(tmp_path).encode() + b"\n"

    _as_windows(monkeypatch, interpreter)
    monkeypatch.setattr(interpreter.subprocess, "check_output", fake_check_output)
    monkeypatch.setattr(interpreter, "plugin_root", lambda: str(tmp_path / "elsewhere"))  # no core beside it
    monkeypatch.setattr(interpreter, "read_config", lambda path=None: {})
    monkeypatch.setattr(interpreter, "child_environment", lambda environ=None, nuke_dir=None: {})
    interpreter._core_dir_cache.clear()
    try:
        interpreter.core_dir("C:/lbs/python.exe")
        troubleshoot.probe("C:/lbs/python.exe")
    finally:
        interpreter._core_dir_cache.clear()
    assert seen == [0x08000000, 0x08000000]


def test_lbsmatte_python_copied_as_a_quoted_path_or_without_exe_is_found(monkeypatch, tmp_path) -> None:
    from fake_nuke.fixtures import import_fake_nuke

    import_fake_nuke()  # compute imports nuke
    from nuke_plugin import compute, interpreter

    folder = tmp_path / "Program Files" / "lbs"
    folder.mkdir(parents=True)
    (folder / "python.exe").write_bytes(b"")
    quoted = '"%s"' % (folder / "python.exe")
    assert interpreter.core_python({"LBSMATTE_PYTHON": quoted}) == (str(folder / "python.exe"), "LBSMATTE_PYTHON")
    _as_windows(monkeypatch, compute, interpreter)
    compute.check_python(str(folder / "python"))  # CreateProcess adds .exe: so does the check
    compute.check_python(str(folder / "python.exe"))
    import pytest

    from nuke_plugin.errors import NodeError

    with pytest.raises(NodeError, match="does not exist"):
        compute.check_python(str(folder / "pythonw3"))


# -- replacing a file on Windows (os.name "nt", simulated) -----------------------------------------
def _windows_replace(monkeypatch, refusals: int) -> list[str]:
    """core.io on Windows, where os.replace is refused ``refusals`` times (-1: always) with the
    PermissionError a file open in another process gives there."""
    import core.io

    calls: list[str] = []
    real_replace = os.replace

    def replace(src, dst):
        calls.append(os.fspath(dst))
        if refusals < 0 or len(calls) <= refusals:
            raise PermissionError(13, "The process cannot access the file because it is being used by another process",
                                  os.fspath(src))
        real_replace(src, dst)

    _as_windows(monkeypatch, core.io)
    core.io.os.replace = replace
    monkeypatch.setattr(core.io, "REPLACE_RETRY_S", 0.3)
    return calls


def test_on_windows_a_replace_refused_for_a_moment_is_retried(monkeypatch, tmp_path) -> None:
    # A virus scanner or the indexer opening the new file for a moment: the write still succeeds.
    import core.io

    dest = tmp_path / "matte.exr"
    dest.write_bytes(b"old")
    calls = _windows_replace(monkeypatch, refusals=2)
    with core.io.atomic_output(dest) as tmp:
        Path(tmp).write_bytes(b"new")
    assert dest.read_bytes() == b"new" and len(calls) == 3
    assert core.io.temp_files(dest) == []


def test_on_windows_a_file_held_open_elsewhere_is_a_clear_error_and_stays(monkeypatch, tmp_path) -> None:
    # The output open in Nuke's Read: never replaced there; the error says why, the old file stays.
    import pytest

    import core.io
    from core.errors import OutputError

    dest = tmp_path / "matte.exr"
    dest.write_bytes(b"old")
    _windows_replace(monkeypatch, refusals=-1)
    with pytest.raises(OutputError, match="another program holds open .*close it there, or write to another name"):
        with core.io.atomic_output(dest) as tmp:
            Path(tmp).write_bytes(b"new")
    assert dest.read_bytes() == b"old"
    assert core.io.temp_files(dest) == []


def test_on_windows_a_read_only_output_is_said_to_be_read_only_and_not_waited_for(monkeypatch, tmp_path) -> None:
    # Windows refuses to replace a file with the read-only attribute (a publish step's frames) with
    # the PermissionError a file held open gives: it was waited for 3 s a frame and called held open
    # by another program ("close it there"), which no program did.
    import pytest

    import core.io
    from core.errors import OutputError

    dest = tmp_path / "matte.exr"
    dest.write_bytes(b"published")
    calls = _windows_replace(monkeypatch, refusals=-1)
    monkeypatch.setattr(core.io, "REPLACE_RETRY_S", 30.0)
    real_access = os.access
    core.io.os.access = lambda path, mode: mode != os.W_OK and real_access(path, mode)  # attrib +R
    with pytest.raises(OutputError) as caught:
        with core.io.atomic_output(dest) as tmp:
            Path(tmp).write_bytes(b"new")
    assert str(caught.value) == (f"cannot write {dest}: it is read-only (Windows replaces no read-only file): clear "
                                 "its read-only attribute (attrib -R, or its Properties), or write to another name")
    assert len(calls) == 1 and dest.read_bytes() == b"published" and core.io.temp_files(dest) == []


def test_on_posix_a_refused_replace_is_not_retried(monkeypatch, tmp_path) -> None:
    import pytest

    import core.io
    from core.errors import OutputError

    calls: list[str] = []

    def replace(src, dst):
        calls.append(dst)
        raise PermissionError(13, "Permission denied", src)

    monkeypatch.setattr(core.io.os, "replace", replace)
    with pytest.raises(OutputError, match="Permission denied$"):
        with core.io.atomic_output(tmp_path / "m.exr") as tmp:
            Path(tmp).write_bytes(b"new")
    assert len(calls) == 1


def test_on_windows_the_cache_record_is_rewritten_after_a_reader_lets_go(monkeypatch, tmp_path) -> None:
    # Another job reading lbsmatte.json (to reuse its frames) while this one rewrites it.
    from nuke_plugin import cache

    calls = []
    real_replace = os.replace

    def replace(src, dst):
        calls.append(dst)
        if len(calls) <= 2:
            raise PermissionError(13, "being used by another process", src)
        real_replace(src, dst)

    _as_windows(monkeypatch, cache)
    cache.os.replace = replace
    cache.write_record(str(tmp_path), "k" * 16, cache.Settings(), {1: "a"})
    assert cache.read_record(str(tmp_path))["key"] == "k" * 16 and len(calls) == 3
    assert [p.name for p in tmp_path.iterdir()] == [cache.RECORD_NAME]

    calls.clear()
    monkeypatch.setattr(cache, "REPLACE_RETRY_S", 0.2)
    cache.os.replace = lambda src, dst: (_ for _ in ()).throw(PermissionError(13, "in use", src))
    import pytest

    with pytest.raises(PermissionError):
        cache.write_record(str(tmp_path), "j" * 16, cache.Settings(), {1: "a"})
    assert [p.name for p in tmp_path.iterdir()] == [cache.RECORD_NAME]  # no temporary left behind


# -- a checkout on Windows with CRLF line endings --------------------------------------------------
def test_the_core_fingerprint_is_the_same_for_a_checkout_with_crlf_line_endings(tmp_path) -> None:
    # Git for Windows' default core.autocrlf=true turns LF into CRLF: the same commit must give the
    # Nuke cache key the same fingerprint on an artist's Windows machine as on the Linux farm.
    import shutil

    from core.fingerprint import source_sha256

    lf, crlf = tmp_path / "lf", tmp_path / "crlf"
    shutil.copytree(ROOT / "core", lf, ignore=shutil.ignore_patterns("__pycache__", "bundles", "examples"))
    shutil.copytree(lf, crlf)
    for path in crlf.rglob("*.py"):
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert source_sha256(crlf) == source_sha256(lf)
    assert source_sha256(lf) == source_sha256(ROOT / "core")


def test_git_keeps_hashed_text_lf_and_binaries_unconverted_on_every_platform() -> None:
    import pytest

    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = ["core/fingerprint.py", "core/bundles/default/manifest.json", "core/bundles/default/alpha.safetensors"]
    done = subprocess.run(["git", "check-attr", "text", "eol", "--", *files], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    attrs = {tuple(line.rsplit(": ", 2)[:2]): line.rsplit(": ", 1)[1] for line in done.stdout.splitlines()}
    assert attrs[("core/fingerprint.py", "eol")] == "lf"
    assert attrs[("core/bundles/default/manifest.json", "eol")] == "lf"
    assert attrs[("core/bundles/default/alpha.safetensors", "text")] == "unset"


# -- outputs against inputs where files have no inode numbers and names no case --------------------
def test_on_a_share_without_file_ids_other_files_are_not_inputs_but_the_input_in_other_case_is(monkeypatch,
                                                                                                tmp_path) -> None:
    # Windows on some network shares and FAT volumes: os.stat gives st_ino 0 for every file, and
    # names compare without case (os.path.normcase lowers them).
    import posixpath
    import types

    import pytest

    import core.io
    from core.errors import OutputError

    real_stat = os.stat

    def stat(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        return os.stat_result((st.st_mode, 0, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, st.st_size,
                               int(st.st_atime), int(st.st_mtime), int(st.st_ctime)))

    _as_windows(monkeypatch, core.io)
    core.io.os.stat = stat
    core.io.os.path = types.SimpleNamespace(**{n: getattr(posixpath, n) for n in dir(posixpath) if not n.startswith("__")})
    core.io.os.path.normcase = lambda p: os.fspath(p).lower()
    plate = tmp_path / "plate.exr"
    plate.write_bytes(b"plate")
    matte = tmp_path / "matte.exr"
    matte.write_bytes(b"an earlier run's matte")
    inputs = core.io.InputFiles([plate])
    assert inputs.find(matte) is None  # rewriting last run's matte is allowed
    with pytest.raises(OutputError, match="one of the input files"):
        core.io.check_not_input(tmp_path / "PLATE.EXR", inputs)


def test_a_bundle_written_on_windows_has_the_manifest_bytes_it_has_elsewhere(monkeypatch, tmp_path,
                                                                             make_small_networks) -> None:
    # Text mode on Windows writes "\n" as "\r\n" (simulated: open's default newline as there).
    import builtins

    import core.weights

    real_open = builtins.open

    def windows_open(file, mode="r", *args, **kwargs):
        if "b" not in mode and any(m in mode for m in "wax") and kwargs.get("newline") is None and len(args) < 3:
            kwargs["newline"] = "\r\n"
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", windows_open)
    bundle = core.weights.save_bundle(tmp_path / "b", make_small_networks(seed=0), name="b", description="d",
                                      training={"note": "untrained"}, trained=False)
    assert b"\r" not in (bundle.path / "manifest.json").read_bytes()


def test_a_bundle_is_written_on_windows_where_fsync_needs_a_handle_open_for_writing(monkeypatch, tmp_path,
                                                                                   make_small_networks) -> None:
    # Windows' os.fsync (FlushFileBuffers) fails with EBADF on a file opened read-only.
    import errno
    import fcntl

    import core.weights

    real_fsync = os.fsync

    def windows_fsync(fd):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(errno.EBADF, "Bad file descriptor")
        real_fsync(fd)

    _as_windows(monkeypatch, core.weights)
    core.weights.os.fsync = windows_fsync
    del core.weights.os.O_DIRECTORY  # and no folders to open
    bundle = core.weights.save_bundle(tmp_path / "b", make_small_networks(seed=0), name="b", description="d",
                                      training={"note": "untrained"}, trained=False)
    assert core.weights.load_bundle(bundle.path).name == "b"


def test_on_windows_the_memory_free_is_asked_of_the_system_not_of_proc(monkeypatch) -> None:
    # No /proc/meminfo there: without GlobalMemoryStatusEx the refinement's memory check was off,
    # and a frame too large for the machine paged the node to a halt instead of failing clearly.
    import ctypes
    import types

    import torch

    import core.pipeline

    def global_memory_status_ex(pointer) -> int:
        status = pointer._obj
        assert status.dwLength == ctypes.sizeof(status)
        status.ullAvailPhys = 5 * 2**30
        return 1

    kernel32 = types.SimpleNamespace(GlobalMemoryStatusEx=global_memory_status_ex)
    monkeypatch.setattr(ctypes, "windll", types.SimpleNamespace(kernel32=kernel32), raising=False)
    monkeypatch.setattr(core.pipeline.sys, "platform", "win32")
    free = core.pipeline.available_memory(torch.device("cpu"))
    monkeypatch.undo()  # this system's own sys.platform before anything is reported
    assert free == 5 * 2**30


# -- bake folders of killed jobs on Windows (no flock; msvcrt's byte-range locks, simulated) -------
_FAKE_MSVCRT = '''
import fcntl, types
from nuke_plugin import cache

def locking(fd, mode, nbytes):  # as msvcrt.locking: the system's lock, gone with its process
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

cache.fcntl = None
cache.msvcrt = types.SimpleNamespace(LK_NBLCK=2, locking=locking)
'''


def test_on_windows_bake_folders_of_killed_jobs_are_removed_and_live_ones_kept(monkeypatch, tmp_path) -> None:
    import signal
    import types

    from nuke_plugin import cache

    root = str(tmp_path / "cache")
    killed = subprocess.run(
        [sys.executable, "-c", _FAKE_MSVCRT + "\nimport os, signal, sys\n"
         "folder = cache.new_bake_folder(sys.argv[1], 'LBSMatte1')\n"
         "assert os.listdir(folder) == ['.owner'], os.listdir(folder)\n"
         "open(os.path.join(folder, 'plate.1001.exr'), 'wb').write(b'baked'); print(folder, flush=True)\n"
         "os.kill(os.getpid(), signal.SIGKILL)\n", root],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = killed.stdout.strip()
    assert os.path.isfile(os.path.join(left, "plate.1001.exr"))

    import fcntl

    def locking(fd, mode, nbytes):  # the same stand-in, in this process
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    monkeypatch.setattr(cache, "fcntl", None)
    monkeypatch.setattr(cache, "msvcrt", types.SimpleNamespace(LK_NBLCK=2, locking=locking))
    live = cache.new_bake_folder(root, "LBSMatte2")  # the killed job's owner file is new: kept a while
    assert os.path.isdir(left)
    monkeypatch.setattr(cache, "OWNER_GRACE_S", 0.0)
    other = cache.new_bake_folder(root, "LBSMatte3")  # later: the killed job's folder goes, the live one stays
    assert not os.path.exists(left)
    assert os.path.isdir(live) and os.path.isdir(other)
    cache.remove_folder(live)
    cache.remove_folder(other)
    assert os.listdir(os.path.join(root, cache.BAKE_FOLDER)) == []


def test_a_cache_folder_nuke_would_read_a_frame_number_in_is_refused_by_name(fake_nuke, lbs_env, sequences,
                                                                              tmp_path) -> None:
    # A show folder such as C:/shows/sh#01 (the default cache sits next to the script).
    import pytest
    from fake_nuke.fixtures import make_graph

    from nuke_plugin import compute
    from nuke_plugin.errors import NodeError
    from nuke_plugin.progress import PrintReporter

    node = make_graph(fake_nuke, sequences)
    node["cache_dir"].setValue(str(tmp_path / "sh#01" / "cache"))
    with pytest.raises(NodeError, match=r"has '#' in it, which Nuke reads as a frame number.*cache folder"):
        compute.compute(node, reporter=PrintReporter())
    assert not (tmp_path / "sh#01").exists()  # nothing baked anywhere


# -- nuke -t's stdout on Windows: a farm's log in the ANSI code page ---------------------------------
def test_batch_lines_naming_a_folder_the_log_encoding_cannot_hold_do_not_end_the_job(lbs_env, sequences,
                                                                                      tmp_path) -> None:
    # On Windows nuke -t's stdout into a pipe (a farm's log) is written in cp1252 with errors raised,
    # as PYTHONIOENCODING=cp1252 makes it here: a WARNING: line of the core naming the shot's folder
    # (Polish, Czech, Cyrillic, Japanese names) raised UnicodeEncodeError, which ended the job and
    # terminated the core at its first warning; a missing script was a traceback, not ERROR: and 2.
    from fake_nuke.fixtures import FAKE_DIR, REPO, write_shot

    from nuke_plugin import batch

    folder = tmp_path / "Złoty"
    folder.mkdir()
    shot = write_shot(str(folder / "shot.nk"), sequences)
    env = dict(os.environ, PYTHONPATH=FAKE_DIR, NUKE_PATH=REPO, PYTHONIOENCODING="cp1252",
               FAKE_CLI_WARN_FRAMES="1001")
    env.pop("LBSMATTE_CACHE", None)  # the default cache, beside the script in Złoty
    script = os.path.join(REPO, "nuke_plugin", "batch.py")
    done = subprocess.run([sys.executable, script, shot, "--node", "LBSMatte1", "--frames", "1001-1002"],
                          env=env, capture_output=True, timeout=120, cwd=str(tmp_path))
    out = done.stdout.decode("cp1252")
    assert done.returncode == batch.EXIT_OK, out + done.stderr.decode("utf-8", "replace")
    assert "LBSMATTE PROGRESS 1002 2/2" in out.splitlines()
    warnings = [line for line in out.splitlines() if line.startswith("WARNING: ")]
    assert len(warnings) == 1 and "Z\\u0142oty" in warnings[0], out
    assert any(line.startswith("LBSMATTE RESULT ") and "Z\\u0142oty" in line for line in out.splitlines()), out
    missing = subprocess.run([sys.executable, script, str(folder / "other.nk"), "--node", "LBSMatte1"],
                             env=env, capture_output=True, timeout=120, cwd=str(tmp_path))
    assert missing.returncode == batch.EXIT_USAGE, missing.stderr.decode("utf-8", "replace")
    assert missing.stdout.decode("cp1252").startswith("ERROR: script ") and not missing.stderr


def test_a_button_without_a_gui_prints_what_the_log_encoding_cannot_hold_escaped(fake_nuke, monkeypatch) -> None:
    # nuke -t (a studio's script pressing Troubleshoot or Compute) on Windows: stdout in cp1252.
    import io

    from nuke_plugin import buttons

    stdout = io.TextIOWrapper(io.BytesIO(), encoding="cp1252")
    monkeypatch.setattr(sys, "stdout", stdout)
    buttons._show("LBSMatte: the cache folder D:/projekty/Złoty/cache is not writable")
    stdout.seek(0)
    assert stdout.read() == "LBSMatte: the cache folder D:/projekty/Z\\u0142oty/cache is not writable\n"


def test_lbsmatte_python_naming_an_environments_folder_is_told_the_python_in_it(monkeypatch, tmp_path) -> None:
    # LBSMATTE_PYTHON=C:\envs\lbs: a venv's python on Windows is Scripts\python.exe, a conda env's
    # python.exe at its top; the fix named <folder>\python.exe, which a venv does not have.
    from nuke_plugin import troubleshoot

    _as_windows(monkeypatch, troubleshoot)
    venv, conda = tmp_path / "venv", tmp_path / "conda"
    (venv / "Scripts").mkdir(parents=True)
    (venv / "Scripts" / "python.exe").write_bytes(b"")
    conda.mkdir()
    (conda / "python.exe").write_bytes(b"")
    for folder, python in ((venv, venv / "Scripts" / "python.exe"), (conda, conda / "python.exe"),
                           (tmp_path, tmp_path / "Scripts" / "python.exe")):
        check = troubleshoot.check_interpreter(str(folder), "LBSMATTE_PYTHON")
        assert check.status == troubleshoot.FAIL and "is a folder" in check.title
        assert f"(e.g. {python})" in check.detail, check.detail
    monkeypatch.undo()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3").write_bytes(b"")  # a venv's bin given itself on Linux or macOS
    for folder, python in ((tmp_path, tmp_path / "bin" / "python3"), (tmp_path / "bin", tmp_path / "bin" / "python3")):
        assert f"(e.g. {python})" in troubleshoot.check_interpreter(str(folder), "LBSMATTE_PYTHON").detail


def test_troubleshoot_and_interpreter_reports_piped_in_cp1252_name_every_path(monkeypatch, tmp_path) -> None:
    # python -m nuke_plugin.troubleshoot > report.txt on Windows: stdout in cp1252, errors raised;
    # a path naming Złoty ended the report in a traceback and the file held nothing.
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="cp1252",
               LBSMATTE_PYTHON=str(tmp_path / "Złoty" / "python"))
    for module, args in (("nuke_plugin.troubleshoot", ["default", str(tmp_path / "Złoty" / "cache")]),
                         ("nuke_plugin.interpreter", [])):
        done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, timeout=120, cwd=ROOT,
                              env=env)
        assert b"Traceback" not in done.stderr, done.stderr.decode("utf-8", "replace")
        out = done.stdout.decode("cp1252")
        assert "Z\\u0142oty" in out and ("FAIL  Python for LBSMatte not found" in out or "python: " in out), out
