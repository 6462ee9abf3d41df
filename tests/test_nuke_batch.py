"""The farm entry ``nuke -t nuke_plugin/batch.py shot.nk --node N --frames A-B``."""

import os
import signal
import subprocess
import sys
import time

import pytest
from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import FAKE_DIR, REPO, cli_calls, fill_cache_disk, write_shot

from nuke_plugin import batch
from nuke_plugin import node as lbs_node


@pytest.fixture
def shot(tmp_path, sequences):
    return write_shot(str(tmp_path / "shot.nk"), sequences)


def _reopen(nuke, path):
    nuke._reset()
    nuke._startup()
    nuke.scriptOpen(path)
    return nuke.toNode("LBSMatte1")


def test_precompute_writes_a_copy_never_the_script_and_reruns_hit_the_cache(fake_nuke, lbs_env, shot, capsys):
    artist = open(shot, "rb").read()
    stamp = os.stat(shot).st_mtime_ns
    comp = shot.replace("shot.nk", "shot.lbsmatte.nk")
    assert batch.main([shot, "--node", "LBSMatte1", "--frames", "1001-1003", "--save-as", comp]) == batch.EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if line.startswith("LBSMATTE PROGRESS")] == [
        "LBSMATTE PROGRESS 1001 1/3", "LBSMATTE PROGRESS 1002 2/3", "LBSMATTE PROGRESS 1003 3/3"]
    assert any(line.startswith("LBSMATTE RESULT ") and line.endswith("/lbsmatte.####.exr") for line in out)
    assert f"LBSMATTE SAVED {comp}" in out
    assert not [line for line in out if line.startswith("ERROR")]
    assert open(shot, "rb").read() == artist and os.stat(shot).st_mtime_ns == stamp  # never saved

    node = _reopen(fake_nuke, comp)  # what the comp render (nuke -X) will load
    read = node.node("Result")
    assert read["disable"].value() is False
    assert (read.firstFrame(), read.lastFrame()) == (1001, 1003)
    fake_nuke.frame(1002)
    path = read["file"].evaluate()  # the file of the current frame, as in Nuke
    assert path.endswith("/lbsmatte.1002.exr") and os.path.isfile(path)
    assert "fg.red" in node.channels()

    fake_nuke._reset()
    fake_nuke._startup()
    assert batch.main([shot, "--node", "LBSMatte1"]) == batch.EXIT_OK  # the node's own range, no copy
    out = capsys.readouterr().out
    assert out.count("LBSMATTE PROGRESS") == 3 and "LBSMATTE CACHE 3 of 3" in out
    assert "SAVED" not in out and os.stat(shot).st_mtime_ns == stamp
    assert len(cli_calls(lbs_env)) == 1


def test_frames_known_answers():
    def span(text):
        return batch.frame_range(batch.parse_frames(text), text)

    assert span("1001-1100") == (1001, 1100)
    assert span("1001") == (1001, 1001)
    assert span("1001-1001") == (1001, 1001)  # one frame, as Nuke's own ranges allow
    assert span(" 7 - 9 ") == (7, 9)
    assert batch.parse_frames("9-7") == [9, 8, 7]  # as lbsmatte matte --frames 9-7 reads it
    assert span("9-7") == (7, 9)
    assert span("1-3,4-6") == (1, 6)
    with pytest.raises(ValueError, match=r"^--frames 1-10x2 leaves out frames 2, 4, 6, \.\.\. of 1-9: an LBSMatte node "
                                         r"computes one range of frames without gaps; give that \(--frames 1-9\)"):
        span("1-10x2")
    with pytest.raises(ValueError, match=r"^the frame range '1-3x0.5' holds subframes \(1.5, 2.5\): LBSMatte renders "
                                         r"whole frames"):
        batch.parse_frames("1-3x0.5")


def test_negative_frames_as_a_farm_template_fills_them_in():
    args = batch.parse_args(["shot.nk", "--node", "LBSMatte1", "--frames", "-5--1"])
    assert batch.parse_frames(args.frames) == [-5, -4, -3, -2, -1]
    args = batch.parse_args(["shot.nk", "--frames", "-2-3", "--node", "LBSMatte1"])
    assert batch.parse_frames(args.frames) == [-2, -1, 0, 1, 2, 3] and args.node == ["LBSMatte1"]


def test_a_descending_range_computes_the_range(fake_nuke, lbs_env, shot, capsys):
    # A farm template or a TD that gives the frames last first: the core's --frames reads 1003-1001 as
    # 1003, 1002, 1001; batch.py refused it as empty.
    assert batch.main([shot, "--node", "LBSMatte1", "--frames", "1003-1001"]) == batch.EXIT_OK
    out = capsys.readouterr().out
    assert out.count("LBSMATTE PROGRESS") == 3 and "LBSMATTE RESULT" in out


@pytest.mark.parametrize("args, message", [
    (["--node", "LBSMatte1"], "does not exist"),
    (["SHOT", "--frames", "1001-1003"], "--node"),
    (["SHOT", "--node", "LBSMatte1", "--frames", "10-x"], "cannot understand the frame range '10-x'"),
    (["SHOT", "--node", "LBSMatte1", "--frames", "1001.5"], "holds subframes (1001.5)"),
    (["SHOT", "--node", "LBSMatte1", "--frames", "1001,1003"], "leaves out frames 1002 of 1001-1003"),
    (["SHOT", "--node", "Nope"], "no LBSMatte node named 'Nope' (found: LBSMatte1)"),
    (["SHOT", "--node", "Plate"], "no LBSMatte node named 'Plate'"),
    (["SHOT", "--node", "LBSMatte1", "--save-as", "SHOT"], "is the script itself: the artist's script is never saved"),
])
def test_usage_errors_exit_2(fake_nuke, lbs_env, shot, capsys, args, message):
    args = [shot if a == "SHOT" else a for a in args]
    if args[0] == "--node":
        args = [shot + ".missing"] + args
    assert batch.main(args) == batch.EXIT_USAGE
    out = capsys.readouterr().out
    assert out.startswith("ERROR: ") and message in out
    assert cli_calls(lbs_env) == []


def test_save_as_naming_the_script_by_another_name_is_refused(fake_nuke, lbs_env, shot, tmp_path, capsys):
    """On macOS's and Windows' file systems ``Shot.nk`` is the file ``shot.nk`` (a hard link here: one
    file, two names, as there): the copy would have been saved over the artist's script."""
    other_name = str(tmp_path / "Shot.nk")
    os.link(shot, other_name)
    before = open(shot, encoding="utf-8").read()
    assert batch.main([shot, "--node", "LBSMatte1", "--save-as", other_name]) == batch.EXIT_USAGE
    assert capsys.readouterr().out == (f"ERROR: --save-as {other_name} is the script itself: the artist's script "
                                       "is never saved; name a copy\n")
    assert open(shot, encoding="utf-8").read() == before
    assert cli_calls(lbs_env) == []


def test_failed_frames_exit_1_and_say_which(fake_nuke, lbs_env, shot, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_CLI_FAIL_FRAMES", "1002")
    before = open(shot).read()
    assert batch.main([shot, "--node", "LBSMatte1", "--no-save"]) == batch.EXIT_FAILED
    out = capsys.readouterr().out
    assert "ERROR: frame 1002" in out and "ERROR: 1 of 3 frames not computed: 1002" in out
    assert open(shot).read() == before


def test_a_full_cache_disk_fails_the_job_naming_the_record_and_the_cause(fake_nuke, lbs_env, shot, capsys,
                                                                          monkeypatch):
    # The farm's cache share is full: the job's log held a traceback and "ERROR: OSError: [Errno 28]
    # No space left on device", naming no file. Now one ERROR line naming it, the cause and the way out.
    fill_cache_disk(monkeypatch, lbs_env["cache"])
    assert batch.main([shot, "--node", "LBSMatte1", "--no-save"]) == batch.EXIT_FAILED
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    errors = [line for line in out.out.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and errors[0].startswith(f"ERROR: LBSMatte1: cannot write {lbs_env['cache']}")
    assert errors[0].endswith("lbsmatte.json: No space left on device; make room there (or set the cache folder "
                              "knob, or LBSMATTE_CACHE, to a folder with space) and press Compute again")
    assert cli_calls(lbs_env) == []  # nothing rendered into a cache that cannot hold it


def test_a_script_saved_meanwhile_gives_no_copy(fake_nuke, lbs_env, shot, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_CLI_TOUCH", shot)
    comp = shot + ".comp.nk"
    assert batch.main([shot, "--node", "LBSMatte1", "--save-as", comp]) == batch.EXIT_NOT_SAVED
    out = capsys.readouterr().out
    assert f"was saved by someone else while this job ran: {comp} not written" in out
    assert open(shot).read().endswith("# saved by someone else\n") and not os.path.exists(comp)


def test_the_tools_warnings_reach_the_farm_log(fake_nuke, lbs_env, shot, capsys, monkeypatch):
    # A soft matte wired in as the trimap, the CPU for lack of CUDA, a frame cut in smaller tiles
    # for lack of GPU memory: the frame is made, and the farm's log said nothing of it.
    monkeypatch.setenv("FAKE_CLI_WARN_FRAMES", "1001,1003")
    assert batch.main([shot, "--node", "LBSMatte1"]) == batch.EXIT_OK
    out = capsys.readouterr().out.splitlines()
    warnings = [line for line in out if line.startswith("WARNING: ")]
    assert [line.split(":")[1].strip() for line in warnings] == ["frame 1001", "frame 1003"]
    assert out.index(warnings[0]) < out.index("LBSMATTE PROGRESS 1001 1/3")  # before its frame's progress


def test_a_save_as_copy_that_cannot_be_written_is_refused_before_any_work(fake_nuke, lbs_env, shot, capsys):
    # The copy is written after the whole shot is computed: a folder missing there (a typo in the
    # farm template) ended hours of work in a traceback, with no ERROR: line for the farm manager.
    missing = os.path.join(os.path.dirname(shot), "no_such_folder", "shot.lbsmatte.nk")
    assert batch.main([shot, "--node", "LBSMatte1", "--save-as", missing]) == batch.EXIT_USAGE
    assert capsys.readouterr().out == (f"ERROR: --save-as {missing} cannot be written: its folder "
                                       f"{os.path.dirname(missing)} does not exist\n")
    folder = os.path.join(os.path.dirname(shot), "a_folder.nk")
    os.mkdir(folder)
    assert batch.main([shot, "--node", "LBSMatte1", "--save-as", folder]) == batch.EXIT_USAGE
    assert capsys.readouterr().out == f"ERROR: --save-as {folder} cannot be written: it is a folder\n"
    assert cli_calls(lbs_env) == []


def test_a_copy_nuke_cannot_save_after_the_work_is_an_error_line_and_exit_1(fake_nuke, lbs_env, shot, capsys,
                                                                           monkeypatch):
    def refuse(filename=None):
        raise RuntimeError(f"{filename}: Permission denied")

    monkeypatch.setattr(fake_nuke, "scriptSave", refuse)
    comp = shot.replace("shot.nk", "shot.lbsmatte.nk")
    assert batch.main([shot, "--node", "LBSMatte1", "--save-as", comp]) == batch.EXIT_FAILED
    out = capsys.readouterr().out
    assert "LBSMATTE PROGRESS 1003 3/3" in out
    assert f"\nERROR: {comp} not written: {comp}: Permission denied. The results are in " in out


def test_an_unexpected_error_is_an_error_line_and_exit_1(fake_nuke, lbs_env, shot, capsys, monkeypatch):
    """A bug: farm managers watch for ERROR: lines and the exit status, not for a Python traceback."""
    from nuke_plugin import cache

    def broken(folder, *args, **kwargs):
        raise KeyError("settings")

    monkeypatch.setattr(cache, "write_record", broken)
    assert batch.main([shot, "--node", "LBSMatte1"]) == batch.EXIT_FAILED
    out = capsys.readouterr().out
    assert "ERROR: KeyError: 'settings'" in out


def test_a_key_folder_the_farm_user_may_not_write_is_named(fake_nuke, lbs_env, shot, capsys, monkeypatch):
    """A key folder another artist made, not writable by the farm user: the ERROR line names the file."""
    from nuke_plugin import cache

    def refuse(folder, *args, **kwargs):
        raise PermissionError(13, "Permission denied", os.path.join(folder, "lbsmatte.json"))

    monkeypatch.setattr(cache, "write_record", refuse)
    assert batch.main([shot, "--node", "LBSMatte1"]) == batch.EXIT_FAILED
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("ERROR"))
    assert line.startswith(f"ERROR: LBSMatte1: cannot write {lbs_env['cache']}")
    assert line.endswith("lbsmatte.json: Permission denied; make the folder writable (or set the cache folder knob, "
                         "or LBSMATTE_CACHE, to another folder) and press Compute again")


def test_a_bad_setting_fails_cleanly(fake_nuke, lbs_env, sequences, tmp_path, capsys):
    path = write_shot(str(tmp_path / "bad.nk"), sequences, weights="no_such_bundle")
    assert batch.main([path, "--node", "LBSMatte1"]) == batch.EXIT_FAILED
    assert "ERROR: weights bundle 'no_such_bundle' not found" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["LBSMATTE_CACHE", "knob"])
def test_a_relative_cache_folder_is_the_same_folder_for_the_farm_and_the_comp_render(fake_nuke, lbs_env, shot,
                                                                                   tmp_path, monkeypatch, capsys, where):
    # The farm task, the comp render and the artist's Nuke each start in a folder of their own: a
    # relative cache folder read from the current folder put the results where the comp render
    # did not look (LBSMATTE_CACHE: "frame 1001 has no result"; the knob: each machine its own cache).
    if where == "knob":
        text = open(shot).read().replace(" weights ", " cache_dir lbsmatte_shared\n weights ", 1)
        with open(shot, "w") as handle:
            handle.write(text)
    else:
        monkeypatch.setenv("LBSMATTE_CACHE", "lbsmatte_shared")
    farm = tmp_path / "farm_task"
    farm.mkdir()
    monkeypatch.chdir(farm)
    comp = str(tmp_path / "comp" / "shot.lbsmatte.nk")
    os.mkdir(os.path.dirname(comp))
    assert batch.main([shot, "--node", "LBSMatte1", "--save-as", comp]) == batch.EXIT_OK
    result = os.path.join(os.path.dirname(shot), "lbsmatte_shared")
    assert f"LBSMATTE RESULT {result}/" in capsys.readouterr().out  # next to the script, as the default is
    assert not os.listdir(str(farm))

    render = tmp_path / "render_task"
    render.mkdir()
    monkeypatch.chdir(render)
    node = _reopen(fake_nuke, comp)
    write = fake_nuke.nodes.Write()
    write.setInput(0, node)
    write["file"].setValue(str(tmp_path / "comp.####.exr"))
    write["file_type"].setValue("exr")
    fake_nuke.execute(write, 1001, 1003, 1)  # the render check finds every frame of the result
    assert os.path.isfile(str(tmp_path / "comp.1003.exr"))


def test_a_relative_weights_folder_typed_on_windows_is_found_by_a_linux_farm(fake_nuke, lbs_env, sequences,
                                                                              tmp_path, monkeypatch, capsys):
    # The weights knob is a text knob: an artist on Windows types weights\sh010_v1 (Nuke keeps the
    # backslash), the Linux or macOS farm's batch.py read the whole of it as a bundle name and
    # failed "not found" (a name never holds a backslash: core.weights.name_problem).
    from fake_nuke.fixtures import write_test_bundle

    shot_dir = tmp_path / "shots" / "sh010"
    write_test_bundle(shot_dir / "weights" / "sh010_v1", name="sh010_v1")
    # as Nuke saves the knob: a backslash escaped in the .nk's quoted text
    path = write_shot(str(shot_dir / "sh010.nk"), sequences, weights="weights\\\\sh010_v1")
    assert batch.main([path, "--node", "LBSMatte1", "--frames", "1001"]) == batch.EXIT_OK, capsys.readouterr().out
    command = cli_calls(lbs_env)[-1]
    assert command[command.index("--weights") + 1] == str(shot_dir / "weights" / "sh010_v1")


def test_a_relative_weights_folder_is_read_from_the_scripts_folder_as_the_cache_folder_is(
        fake_nuke, lbs_env, sequences, tmp_path, monkeypatch, capsys):
    # A show keeps its bundle next to its scripts and types a relative folder in the weights knob:
    # it was read from the folder Nuke started in (the farm task's own), "not found" there, while
    # a relative cache folder is read from the script's folder.
    from fake_nuke.fixtures import write_test_bundle

    from nuke_plugin import troubleshoot

    shot_dir = tmp_path / "shots" / "sh010"
    write_test_bundle(shot_dir / "weights" / "sh010_v1", name="sh010_v1")
    path = write_shot(str(shot_dir / "sh010.nk"), sequences, weights=os.path.join("weights", "sh010_v1"))
    farm = tmp_path / "farm_task"
    farm.mkdir()
    monkeypatch.chdir(farm)
    assert batch.main([path, "--node", "LBSMatte1", "--frames", "1001"]) == batch.EXIT_OK, capsys.readouterr().out
    command = cli_calls(lbs_env)[-1]
    assert command[command.index("--weights") + 1] == str(shot_dir / "weights" / "sh010_v1")
    # Troubleshoot finds it where Compute does, and has the core check that folder.
    asked = []
    monkeypatch.setattr(troubleshoot, "probe", lambda python, weights=None: asked.append(weights) or {"error": "x"})
    monkeypatch.setenv("LBSMATTE_PYTHON", sys.executable)
    node = _reopen(fake_nuke, path)
    text = troubleshoot.troubleshoot_node(node)
    assert "the weights knob names" not in text and asked == [str(shot_dir / "weights" / "sh010_v1")], (text, asked)
    # Not there: the message names the folder it was looked for in.
    node["weights"].setValue(os.path.join("weights", "sh010_v2"))
    from nuke_plugin import node as lbs_node
    from nuke_plugin.errors import NodeError

    with pytest.raises(NodeError, match="and the folder " + str(shot_dir / "weights" / "sh010_v2") + "$"):
        lbs_node.read_settings(node)


def test_as_a_separate_process(lbs_env, sequences, tmp_path):
    """``python nuke_plugin/batch.py`` with the fake nuke on PYTHONPATH, as ``nuke -t`` runs it."""
    shot = write_shot(str(tmp_path / "proc.nk"), sequences)
    env = dict(os.environ, PYTHONPATH=FAKE_DIR, NUKE_PATH=REPO)
    script = os.path.join(REPO, "nuke_plugin", "batch.py")
    done = subprocess.run([sys.executable, script, shot, "--node", "LBSMatte1", "--frames", "1001-1002"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "LBSMATTE PROGRESS 1001 1/2" in lines and "LBSMATTE PROGRESS 1002 2/2" in lines
    failed = subprocess.run([sys.executable, script, shot, "--node", "Missing"],
                            env=env, capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert failed.returncode == 2 and failed.stdout.startswith("ERROR: ")


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
@pytest.mark.parametrize(("name", "code", "line"), [
    ("SIGTERM", 143, "ERROR: stopped by SIGTERM; the frames written so far are in the cache"),
    ("SIGINT", 130, "ERROR: interrupted; the frames written so far are in the cache")])
def test_sigterm_from_the_farm_stops_the_computation(lbs_env, sequences, tmp_path, name, code, line):
    # Both exited 1 with 'ERROR: cancelled', the code of a failed frame: a render manager (or the
    # TD reading its log) could not tell a task it stopped from one that failed. lbsmatte's codes now.
    shot = write_shot(str(tmp_path / "term.nk"), sequences)
    pidfile = tmp_path / "cli.pid"
    env = dict(os.environ, PYTHONPATH=FAKE_DIR, NUKE_PATH=REPO, FAKE_CLI_SLEEP="60", FAKE_CLI_PIDFILE=str(pidfile))
    process = subprocess.Popen([sys.executable, os.path.join(REPO, "nuke_plugin", "batch.py"), shot,
                                "--node", "LBSMatte1"], env=env, stdout=subprocess.PIPE, text=True, cwd=str(tmp_path))
    deadline = time.time() + 60
    while not pidfile.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert pidfile.exists(), "the computation never started"
    time.sleep(0.3)
    process.send_signal(getattr(signal, name))
    out, _ = process.communicate(timeout=30)
    assert process.returncode == code and line in out.splitlines(), out
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)


def _farm_regexes():
    """The stdout patterns docs/nuke.md gives for a Deadline plugin, by the table's first column."""
    import re

    text = open(os.path.join(REPO, "docs", "nuke.md"), encoding="utf-8").read()
    rows = re.findall(r"^\s*\| (progress|a failure|the result|a warning) \| `([^`]+)` \|", text, re.M)
    return {name: re.compile(pattern) for name, pattern in rows}


def test_the_farm_regexes_of_the_docs_match_what_batch_prints(lbs_env, sequences, tmp_path):
    """Run as the farm runs it (a separate process, stdout a pipe), one frame failing, negative
    frames too: each line the regexes are for is matched, with the numbers a plugin reads."""
    regexes = _farm_regexes()
    assert sorted(regexes) == ["a failure", "a warning", "progress", "the result"]
    shot = write_shot(str(tmp_path / "farm.nk"), sequences)
    env = dict(os.environ, PYTHONPATH=FAKE_DIR, NUKE_PATH=REPO, FAKE_CLI_FAIL_FRAMES="1002", FAKE_CLI_WARN_FRAMES="1003")
    done = subprocess.run([sys.executable, os.path.join(REPO, "nuke_plugin", "batch.py"), shot,
                           "--node", "LBSMatte1", "--frames", "1001-1003"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert done.returncode == batch.EXIT_FAILED
    lines = done.stdout.splitlines()
    progress = [regexes["progress"].match(line) for line in lines if line.startswith("LBSMATTE PROGRESS")]
    # after each frame, the failed one too, as lbsmatte matte prints them (its ERROR: line says it failed)
    assert [m.groups() for m in progress] == [("1001", "1", "3"), ("1002", "2", "3"), ("1003", "3", "3")]
    errors = [m.group(1) for m in map(regexes["a failure"].match, lines) if m]
    assert errors[0].startswith("frame 1002: ") and errors[-1] == "1 of 3 frames not computed: 1002"
    assert len(errors) == len([line for line in lines if line.startswith("ERROR")])
    warnings = [m.group(1) for m in map(regexes["a warning"].match, lines) if m]
    assert len(warnings) == 1 and warnings[0].startswith("frame 1003: trimap ")
    results = [m.group(1) for m in map(regexes["the result"].match, lines) if m]
    assert len(results) == 1 and results[0].endswith("/lbsmatte.####.exr")
    # nothing else matches: a STAGE or CACHE line is not progress, a progress line is not an error
    for line in lines:
        matched = [name for name, regex in regexes.items() if regex.match(line)]
        assert len(matched) <= 1, line
    assert regexes["progress"].match("LBSMATTE PROGRESS -5 1/5").groups() == ("-5", "1", "5")
    assert not regexes["progress"].match("LBSMATTE STAGE computing 3 frame(s)")


def test_a_script_saved_in_proxy_mode_is_computed_at_full_resolution(fake_nuke, lbs_env, shot, capsys):
    # The artist saved the shot in proxy mode (Ctrl/Cmd+P, a proxy scale of 0.25): nuke -t opens it
    # so. The farm computes at full resolution, as Compute does, and the copy keeps proxy mode.
    text = open(shot).read().replace(" first_frame 1001\n", " first_frame 1001\n proxy true\n proxy_scale 0.25\n", 1)
    with open(shot, "w") as handle:
        handle.write(text)
    comp = shot.replace("shot.nk", "shot.lbsmatte.nk")
    assert batch.main([shot, "--node", "LBSMatte1", "--save-as", comp]) == batch.EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert f"LBSMATTE proxy mode is on in {shot}: computing LBSMatte1 at full resolution" in out
    assert not [line for line in out if line.startswith("ERROR")] and f"LBSMATTE SAVED {comp}" in out
    assert open(shot).read() == text

    node = _reopen(fake_nuke, comp)  # as the artist saved it: in proxy mode, and the result current there
    root = fake_nuke.root()
    assert root["proxy"].value() is True and root["proxy_scale"].value() == 0.25
    assert node["result_ready"].value() and lbs_node.find_stale(node) == ("", [])
    root["proxy"].setValue(False)
    assert lbs_node.find_stale(node) == ("", [])
