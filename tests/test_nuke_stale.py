"""issue 14 in the Nuke node: a stale result is caught (viewer, status line, farm render), the
cache key holds the core's fingerprint, nothing slow runs at script load, the core process ends
with the script, and the fake Write writes the headers Nuke writes."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import FAKE_DIR, REPO, cli_calls, make_graph, read_exr, write_exr, write_shot
from fake_nuke.fixtures import write_test_bundle as write_bundle

from nuke_plugin import cache, compute, exr, runner
from nuke_plugin import node as lbs_node
from nuke_plugin.errors import NodeError


def _comp(nuke, node, path):
    """A Write rendering the node's output (the comp render of a shot)."""
    write = nuke.nodes.Write()
    write.setInput(0, node)
    write["file"].setValue(path)
    write["file_type"].setValue("exr")
    write["channels"].setValue("rgba")
    return write


def _with_grade(nuke, node):
    """Put a Grade between the plate Read and the node (the artist's upstream edit)."""
    grade = nuke.nodes.Grade()
    grade.setInput(0, node.input(0))
    node.setInput(0, grade)
    return grade


# -- staleness in the GUI ----------------------------------------------------------------------------
def test_an_upstream_edit_with_the_panel_closed_shows_stale_in_the_viewer(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    grade = _with_grade(fake_nuke, node)
    assert compute.compute(node).ok
    fake_nuke.frame(1002)
    fake_nuke._update_ui()
    assert node["result_stale"].value() is False and "fg.red" in node._image(1002).channels

    grade["white"].setValue(2.0)  # the panel is closed: no knobChanged reaches the node
    fake_nuke._update_ui()  # Nuke's idle loop
    assert node["status"].value() == ("STALE: LBSMatte1: plate or trimap changed since Compute at frame(s) 1002"
                                      " - press Compute")
    with pytest.raises(RuntimeError, match="Read error: STALE - LBSMatte1: plate or trimap changed"):
        node._image(1002)  # never the old matte as if current

    grade["white"].setValue(1.0)  # undone: the result is current again
    fake_nuke._update_ui()
    assert node["result_stale"].value() is False and node["status"].value().startswith("inputs match the Compute")
    assert node.node("Result")["file"].evaluate() == cache.frame_path(node["result_file"].value(), fake_nuke.frame())


def test_a_stale_result_is_not_written_again_on_every_idle_tick(fake_nuke, lbs_env, sequences):
    # updateUI runs on every idle tick: while nothing changes, no knob is set again (each write of
    # a knob the internal Reads follow would make Nuke reload and redraw them).
    node = make_graph(fake_nuke, sequences)
    grade = _with_grade(fake_nuke, node)
    assert compute.compute(node).ok
    fake_nuke.frame(1002)
    grade["white"].setValue(0.5)
    fake_nuke._update_ui()
    assert node["status"].value().startswith("STALE")
    writes = []

    def counted(knob, name):
        set_value = knob.setValue

        def spy(value):
            writes.append(name)
            return set_value(value)

        knob.setValue = spy

    for name in ("result_stale", "result_shown", "trimap_shown", "status"):
        counted(node[name], name)
    for _ in range(3):
        fake_nuke._update_ui()
    assert writes == []
    node["accept_stale"].setValue(True)  # a real change is still written, once
    fake_nuke._update_ui()
    fake_nuke._update_ui()
    assert sorted(writes) == ["result_shown", "status", "trimap_shown"]


def test_a_new_plate_version_makes_it_stale_and_compute_makes_it_current(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    first = compute.compute(node)
    v2 = str(sequences["folder"] / "plate_v2.####.exr")
    for frame in (1001, 1002, 1003):
        os.link(sequences["plate"].replace("####", str(frame)), v2.replace("####", str(frame)))
    node.input(0)["file"].setValue(v2)
    fake_nuke.frame(1001)
    fake_nuke._update_ui()
    assert node["result_stale"].value() is True
    second = compute.compute(node)  # the bake is not stopped by the stale check
    assert second.ok and node["result_stale"].value() is False
    assert second.job.key == first.job.key  # same pixels: a cache hit, now recorded as current
    fake_nuke._update_ui()
    assert node["result_stale"].value() is False



def test_a_reads_colourspace_changed_makes_the_result_stale_and_compute_a_new_key(fake_nuke, lbs_env, sequences):
    # The plate's Read reads its file as sRGB now: other pixels in the working space, as Nuke's Read
    # gives them (its colorspace knob is in its op hash); the node must not go on showing the linear one's.
    node = make_graph(fake_nuke, sequences)
    first = compute.compute(node)
    assert first.ok
    fake_nuke.frame(1002)
    node.input(0)["colorspace"].setValue("sRGB")
    fake_nuke._update_ui()
    assert node["status"].value().startswith("STALE: LBSMatte1: plate or trimap changed since Compute at frame(s) 1002")
    again = compute.compute(node)
    assert again.job.key != first.job.key and again.computed == [1001, 1002, 1003]
    node.input(0)["colorspace"].setValue("default")  # back: the first result, from the cache
    assert compute.compute(node).job.key == first.job.key


def test_a_plate_copied_over_with_its_time_kept_is_seen_after_the_reads_reload(fake_nuke, lbs_env, sequences):
    # As the Nuke guide's known limits say: a file replaced under its name with its modification time
    # kept (cp -p, rsync -t) is read from Nuke's cache by the viewer and the bake alike until the Read is
    # reloaded; then the result is stale and Compute computes the frame whose pixels changed.
    node = make_graph(fake_nuke, sequences)
    first = compute.compute(node)
    path = cache.frame_path(sequences["plate"], 1002)
    before = os.stat(path)
    write_exr(path, np.full((24, 32, 3), 0.25, np.float32), ["R", "G", "B"])
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert lbs_node.find_stale(node) == ("", [])
    assert compute.compute(node).job.key == first.job.key
    node.input(0)["reload"].execute()
    assert lbs_node.find_stale(node) == ("plate or trimap changed since Compute", [1001, 1002, 1003])
    again = compute.compute(node)
    assert again.job.key != first.job.key and again.computed == [1002]
    assert lbs_node.find_stale(node) == ("", [])

def test_accept_stale_shows_the_old_result_but_says_stale(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    grade = _with_grade(fake_nuke, node)
    assert compute.compute(node).ok
    node["accept_stale"].setValue(True)
    grade["white"].setValue(3.0)
    fake_nuke.frame(1001)
    fake_nuke._update_ui()
    assert node["status"].value().startswith("STALE (accepted): LBSMatte1: plate or trimap changed")
    assert node.node("Result")["file"].evaluate() == cache.frame_path(node["result_file"].value(), fake_nuke.frame())


# -- staleness on the farm: nuke -x / -X ------------------------------------------------------------
def test_a_render_through_a_stale_node_fails_naming_node_and_frames(fake_nuke, lbs_env, sequences, tmp_path, capsys):
    node = make_graph(fake_nuke, sequences)
    grade = _with_grade(fake_nuke, node)
    assert compute.compute(node).ok
    write = _comp(fake_nuke, node, str(tmp_path / "comp.####.exr"))
    fake_nuke.execute(write, 1001, 1003)  # current: renders
    assert os.path.isfile(str(tmp_path / "comp.1002.exr"))
    capsys.readouterr()

    grade["white"].setValue(0.5)
    with pytest.raises(RuntimeError, match="LBSMatte: stale or missing result: LBSMatte1: plate or trimap changed"):
        fake_nuke.execute(write, 1001, 1003)
    out = capsys.readouterr().out
    assert ("ERROR: LBSMatte1: plate or trimap changed since Compute at frame(s) 1001-1003; press Compute "
            "(or nuke -t nuke_plugin/batch.py), or turn on accept stale result") in out

    node["accept_stale"].setValue(True)  # the wrangler accepts it: renders, with one warning
    fake_nuke.execute(write, 1001, 1003)
    out = capsys.readouterr().out
    assert out.count("WARNING: LBSMatte1: plate or trimap changed since Compute at frame(s) 1001") == 1
    assert "ERROR" not in out


def test_a_render_through_a_node_without_a_result_fails_instead_of_rendering_black(fake_nuke, lbs_env, sequences,
                                                                                   tmp_path, capsys):
    node = make_graph(fake_nuke, sequences)
    write = _comp(fake_nuke, node, str(tmp_path / "comp.####.exr"))
    with pytest.raises(RuntimeError, match="LBSMatte1 has no result to render"):
        fake_nuke.execute(write, 1001, 1003)  # never computed
    assert "ERROR: LBSMatte1 has no result to render (never computed" in capsys.readouterr().out
    assert not os.path.exists(str(tmp_path / "comp.1001.exr"))
    node["frame_range"].setValue("custom")
    node["first_frame"].setValue(1001)
    node["last_frame"].setValue(1002)
    assert compute.compute(node).ok
    fake_nuke.execute(write, 1001, 1002)
    with pytest.raises(RuntimeError, match="LBSMatte1: frame 1003 is outside its computed range 1001-1002"):
        fake_nuke.execute(write, 1003, 1003)
    node["accept_stale"].setValue(True)  # the artist's choice: black there, said once
    capsys.readouterr()
    fake_nuke.execute(write, 1003, 1003)
    assert "WARNING: LBSMatte1: frame 1003 is outside its computed range" in capsys.readouterr().out
    node["accept_stale"].setValue(False)
    node["disable"].setValue(True)  # disabled, it passes its input through: nothing to check
    fake_nuke.execute(write, 1003, 1003)


def test_lbsmattes_own_bake_is_not_stopped_by_the_render_check(fake_nuke, lbs_env, sequences, tmp_path,
                                                               monkeypatch):
    # While a node bakes its inputs (a render, through whatever LBSMatte node is upstream), the
    # check stands aside: what is being computed cannot be stale yet.
    node = make_graph(fake_nuke, sequences)
    write = _comp(fake_nuke, node, str(tmp_path / "comp.####.exr"))
    monkeypatch.setattr(lbs_node, "_baking", [node])
    fake_nuke.execute(write, 1001, 1001)  # never computed, and no error


def test_a_write_inside_a_group_still_checks_the_node_upstream(fake_nuke, lbs_env, sequences, tmp_path, capsys):
    # A studio's Write gizmo: the Write sits in a group, reading the group's Input.
    node = make_graph(fake_nuke, sequences)
    grade = _with_grade(fake_nuke, node)
    assert compute.compute(node).ok
    group = fake_nuke.nodes.Group()
    with group:
        inner = fake_nuke.nodes.Input()
        write = _comp(fake_nuke, inner, str(tmp_path / "comp.####.exr"))
    group.setInput(0, node)  # the group has an input once it holds an Input node
    fake_nuke.execute(write, 1001, 1001)  # current: renders
    grade["white"].setValue(0.5)
    with pytest.raises(RuntimeError, match="stale or missing result: LBSMatte1: plate or trimap changed"):
        fake_nuke.execute(write, 1001, 1001)


def test_nuke_x_of_a_saved_script_edited_after_compute_fails(fake_nuke, lbs_env, sequences, tmp_path, capsys):
    """Compute, save; the next day someone swaps the trimap in the script text; the farm opens it."""
    shot = write_shot(str(tmp_path / "shot.nk"), sequences)
    fake_nuke.scriptOpen(shot)
    node = fake_nuke.toNode("LBSMatte1")
    assert compute.compute(node).ok
    fake_nuke.scriptSave(shot)

    def farm_render():
        fake_nuke._reset()
        fake_nuke._startup()
        fake_nuke.scriptOpen(shot)
        comp = _comp(fake_nuke, fake_nuke.toNode("LBSMatte1"), str(tmp_path / "comp.####.exr"))
        fake_nuke.execute(comp, 1001, 1003)

    farm_render()  # op hashes are the same in a new session: renders
    assert os.path.isfile(str(tmp_path / "comp.1003.exr"))
    text = open(shot).read().replace(sequences["trimap"], sequences["plate"])
    with open(shot, "w") as handle:
        handle.write(text)
    capsys.readouterr()
    with pytest.raises(RuntimeError, match="stale or missing result"):
        farm_render()
    assert "ERROR: LBSMatte1: plate or trimap changed since Compute at frame(s) 1001-1003" in capsys.readouterr().out


def test_a_result_without_a_record_is_stale(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    node["result_inputs"].setValue("")  # as saved by an LBSMatte before issue 14
    reason, frames = lbs_node.find_stale(node)
    assert reason.startswith("no record of the inputs") and frames == [1001, 1002, 1003]



def test_a_fine_tune_saved_over_the_bundle_makes_the_result_stale(fake_nuke, lbs_env, sequences, tmp_path, capsys):
    # The knob holds the bundle's name only: a new fine-tune saved under it (finetune --overwrite) is
    # another key at Compute, and the result of the old weights must not be shown or rendered as current.
    node = make_graph(fake_nuke, sequences)
    first = compute.compute(node)
    assert first.ok
    fake_nuke.frame(1002)
    fake_nuke._update_ui()
    assert node["result_stale"].value() is False
    folder = os.path.join(lbs_env["bundles"], "testbundle")
    write_bundle(folder, description="the show's second fine-tune")
    fake_nuke._update_ui()
    assert node["status"].value() == (f"STALE: LBSMatte1: weights changed since Compute (bundle {folder}) at frame(s) "
                                      "1001-1003 - press Compute")
    with pytest.raises(RuntimeError, match="Read error: STALE - LBSMatte1: weights changed since Compute"):
        node._image(1002)
    write = _comp(fake_nuke, node, str(tmp_path / "comp.####.exr"))
    with pytest.raises(RuntimeError, match="stale or missing result: LBSMatte1: weights changed since Compute"):
        fake_nuke.execute(write, 1001, 1003)
    assert f"ERROR: LBSMatte1: weights changed since Compute (bundle {folder}) at frame(s) 1001-1003" \
        in capsys.readouterr().out
    again = compute.compute(node)
    assert again.job.key != first.job.key and again.computed == [1001, 1002, 1003]
    fake_nuke._update_ui()
    assert node["result_stale"].value() is False and "ready" in node["status"].value()
    # A bundle folder this machine does not have (the artist's, on the farm) tells nothing: current.
    record = lbs_node.recorded_inputs(node)
    record["bundle"]["path"] = str(tmp_path / "elsewhere" / "testbundle")
    node["result_inputs"].setValue(json.dumps(record))
    assert lbs_node.find_stale(node) == ("", [])


def test_a_fine_tune_saved_over_the_bundle_after_an_older_compute_makes_the_result_stale(fake_nuke, lbs_env,
                                                                                         sequences):
    # The node's record of an LBSMatte before 6c2bc1b holds no bundle; the result's cache folder
    # records it (lbsmatte.json's bundle_path and settings.bundle_sha256, since a5706b3).
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    record = lbs_node.recorded_inputs(node)
    del record["bundle"], record["views"]  # as written then
    node["result_inputs"].setValue(json.dumps(record, sort_keys=True))
    assert lbs_node.find_stale(node) == ("", [])
    folder = os.path.join(lbs_env["bundles"], "testbundle")
    write_bundle(folder, description="the show's second fine-tune")
    assert lbs_node.find_stale(node) == (f"weights changed since Compute (bundle {folder})", [1001, 1002, 1003])
    # The cache folder's record of another key (a hidden knob edited) tells nothing.
    shown = lbs_node.shown_folder(node)
    cached = cache.read_record(shown)
    cache.write_record(shown, "0123456789abcdef", cache.Settings(bundle_sha256="x"), {}, extra=dict(
        bundle_path=cached["bundle_path"]))
    assert lbs_node.find_stale(node) == ("", [])


def test_a_weights_folder_read_from_another_script_folder_makes_the_result_stale(fake_nuke, lbs_env, sequences,
                                                                                 tmp_path):
    # The weights knob names a folder relative to the script, as Compute reads it: the script copied
    # to another shot's folder (and opened there) names that folder's bundle with the same text.
    here, there = tmp_path / "sh010", tmp_path / "sh020"
    write_bundle(here / "weights" / "show")
    write_bundle(there / "weights" / "show", description="sh020's own fine-tune")
    shot = write_shot(str(here / "shot.nk"), sequences, weights="weights/show")
    fake_nuke.scriptOpen(shot)
    assert compute.compute(fake_nuke.toNode("LBSMatte1")).ok
    fake_nuke.scriptSave(shot)
    fake_nuke.scriptSave(str(there / "shot.nk"))  # the copy: the knob's text, the result's folder kept

    def reopened(path):
        fake_nuke._reset()
        fake_nuke._startup()
        fake_nuke.scriptOpen(path)
        return fake_nuke.toNode("LBSMatte1")

    assert lbs_node.find_stale(reopened(shot)) == ("", [])
    assert lbs_node.find_stale(reopened(str(there / "shot.nk"))) == (
        "weights changed since Compute (bundle %s)" % (there / "weights" / "show"), [1001, 1002, 1003])
    write_bundle(there / "weights" / "show")  # the same weights there: current
    assert lbs_node.find_stale(reopened(str(there / "shot.nk"))) == ("", [])

# -- the fingerprint in the key -----------------------------------------------------------------------
def test_a_new_core_or_another_resolved_device_is_a_new_key(fake_nuke, lbs_env, sequences, monkeypatch):
    node = make_graph(fake_nuke, sequences)
    first = compute.compute(node)
    assert first.job.settings.fingerprint == first.job.core["fingerprint"]
    assert cache.read_record(first.job.folder)["core"]["core_sha256"] == "core-1"
    assert compute.compute(node).computed == []  # same core: cache hit
    monkeypatch.setenv("FAKE_CLI_CORE", "core-2")  # the core's sources changed
    second = compute.compute(node)
    assert second.job.key != first.job.key and second.computed == [1001, 1002, 1003]
    monkeypatch.setenv("FAKE_CLI_DEVICE", "cuda")  # device auto now resolves to CUDA (half precision)
    third = compute.compute(node)
    assert third.job.core["precision"] == "fp16" and third.job.key not in (first.job.key, second.job.key)
    # One matte run per key (the first core, core-2, CUDA); the cache hit in between ran none.
    assert len([c for c in cli_calls(lbs_env) if c[:3] == ["-m", "core.cli", "matte"]]) == 3


def test_a_core_that_cannot_fingerprint_is_a_clear_error(fake_nuke, lbs_env, sequences, monkeypatch):
    node = make_graph(fake_nuke, sequences)
    monkeypatch.setenv("FAKE_CLI_FINGERPRINT_FAIL", "1")
    with pytest.raises(NodeError, match="LBSMatte1: the LBSMatte core cannot run: weights bundle 'x': "
                                        "alpha.safetensors: tensor stem.0.weight not finite"):
        compute.prepare(node)
    assert cli_calls(lbs_env) == []  # nothing was computed


# -- nothing slow at script load or render -----------------------------------------------------------
def test_opening_and_rendering_a_script_starts_no_process_and_scans_nothing(fake_nuke, lbs_env, sequences,
                                                                             tmp_path, monkeypatch):
    shot = write_shot(str(tmp_path / "shot.nk"), sequences)
    fake_nuke.scriptOpen(shot)
    assert compute.compute(fake_nuke.toNode("LBSMatte1")).ok
    fake_nuke.scriptSave(shot)
    fake_nuke._reset()
    fake_nuke._startup()
    from nuke_plugin import bundles, interpreter

    def forbidden(*args, **kwargs):
        raise AssertionError(f"called at script load or render: {args[:1]!r}")

    for owner, name in ((subprocess, "Popen"), (subprocess, "run"), (subprocess, "check_output"),
                        (os, "listdir"), (os, "scandir"), (interpreter, "core_dir"), (bundles, "find_bundles")):
        monkeypatch.setattr(owner, name, forbidden)
    fake_nuke.scriptOpen(shot)
    node = fake_nuke.toNode("LBSMatte1")
    assert node["weights_list"].values() == ["testbundle"]  # the current value only
    fake_nuke._update_ui()
    comp = _comp(fake_nuke, node, str(tmp_path / "comp.####.exr"))
    fake_nuke.execute(comp, 1001, 1003)
    assert os.path.isfile(str(tmp_path / "comp.1001.exr"))


# -- the core process ends with the script and with Nuke ----------------------------------------------
def _wait_for(path, seconds=60):
    deadline = time.time() + seconds
    while not os.path.exists(path) or not open(path).read().strip():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return int(open(path).read())


def _gone(pid, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # reap it if it is our child (a zombie still answers kill 0)
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return False


@pytest.mark.skipif(os.name == "nt", reason="POSIX process ids")
def test_closing_the_script_stops_the_core_process(fake_nuke, lbs_env, sequences, monkeypatch):
    pidfile = str(lbs_env["tmp"] / "cli.pid")
    monkeypatch.setenv("FAKE_CLI_SLEEP", "60")
    monkeypatch.setenv("FAKE_CLI_PIDFILE", pidfile)
    monkeypatch.setattr(fake_nuke, "GUI", True)
    node = make_graph(fake_nuke, sequences)
    thread = compute.compute_in_background(node)
    pid = _wait_for(pidfile)
    fake_nuke.scriptClose()
    assert _gone(pid), "the core process outlived the script"
    thread.join(30)
    assert not thread.is_alive() and runner._live == set()
    fake_nuke._run_main_queue()  # Nuke's main loop goes on: the Compute is no longer counted as running
    assert compute._running == []



def test_a_script_saved_while_computing_does_not_say_computing_when_reopened(fake_nuke, lbs_env, sequences,
                                                                            monkeypatch, tmp_path):
    # Saved while a Compute runs (an autosave, Ctrl+S), reopened later: nothing computes then, and a
    # status line that still said 'computing 3 frame(s)...' over a black node would wait for nothing.
    monkeypatch.setenv("FAKE_CLI_SLEEP", "0.3")
    monkeypatch.setattr(fake_nuke, "GUI", True)
    node = make_graph(fake_nuke, sequences)
    shot = str(tmp_path / "shot.nk")
    thread = compute.compute_in_background(node)
    assert node["status"].value() == "computing 3 frame(s) of 1001-1003..."
    fake_nuke.scriptSave(shot)
    thread.join(30)
    fake_nuke._run_main_queue()
    assert "ready" in node["status"].value()
    fake_nuke.scriptClose()
    fake_nuke.scriptOpen(shot)
    node = fake_nuke.toNode("LBSMatte1")
    fake_nuke._update_ui()
    assert node["status"].value() == ("not finished here: saved or copied while computing 3 frame(s) of 1001-1003; "
                                      "press Compute (the frames it made are cached)")
    assert not node["result_ready"].value()
    assert compute.compute(node).computed == []  # the frames it made
    assert "ready" in node["status"].value()

_QUIT = textwrap.dedent("""
    import sys, threading, time
    sys.path[:0] = [%(fake)r, %(repo)r]
    import nuke
    from nuke_plugin import runner
    command = [sys.executable, "-c", "import os, time; print(os.getpid(), flush=True); time.sleep(60)"]
    thread = threading.Thread(target=runner.run, args=(command,), kwargs={"on_line": lambda p: print(p[1], flush=True)})
    thread.daemon = True
    thread.start()
    while not runner._live:
        time.sleep(0.05)
    time.sleep(0.5)
    sys.exit(0)  # Nuke quits while a Compute runs
""")


@pytest.mark.skipif(os.name == "nt", reason="POSIX process ids")
def test_quitting_nuke_stops_the_core_process(tmp_path):
    env = dict(os.environ, NUKE_PATH=REPO, PYTHONPATH="")
    done = subprocess.run([sys.executable, "-c", _QUIT % {"fake": FAKE_DIR, "repo": REPO}], capture_output=True,
                          text=True, timeout=120, env=env, cwd=str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    pid = int(done.stdout.split()[0])
    assert _gone(pid), "the core process outlived Nuke"


# -- the fake Write writes Nuke's headers: cache hits and overscan through them -------------------------
def _write_overscan_plate(path, pixels):
    import OpenImageIO as oiio

    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], 3, oiio.HALF)
    spec.channelnames = ("R", "G", "B")
    spec.x, spec.y = -4, -2  # data window beyond the format on every side (overscan)
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, pixels.shape[1] - 8, pixels.shape[0] - 4
    spec.attribute("lbs:shot", "sh010")
    out = oiio.ImageOutput.create(path)
    assert out.open(path, spec)
    assert out.write_image(np.ascontiguousarray(pixels, dtype=np.float32))
    out.close()


def test_baked_inputs_carry_nukes_windows_and_metadata_and_still_hit_the_cache(fake_nuke, lbs_env, sequences,
                                                                              tmp_path, monkeypatch):
    import OpenImageIO as oiio

    rng = np.random.default_rng(3)
    folder = tmp_path / "over"
    folder.mkdir()
    for frame in (1001, 1002, 1003):
        _write_overscan_plate(str(folder / f"plate.{frame}.exr"), rng.uniform(0, 1, (28, 40, 3)))
    seq = dict(sequences, plate=str(folder / "plate.####.exr"))
    node = make_graph(fake_nuke, seq)
    seen = []
    real_hash = cache.hash_inputs

    def keep(plate, trimap, frames):
        spec = oiio.ImageInput.open(plate.replace("####", "1001"))
        seen.append((spec.spec().roi, spec.spec().roi_full, dict((a.name, a.value) for a in spec.spec().extra_attribs)))
        spec.close()
        return real_hash(plate, trimap, frames)

    monkeypatch.setattr(cache, "hash_inputs", keep)
    job = compute.prepare(node)
    roi, full, attributes = seen[0]
    assert (roi.xbegin, roi.ybegin, roi.xend, roi.yend) == (-4, -2, 36, 26)  # the data window, as Nuke writes it
    assert (full.xbegin, full.ybegin, full.xend, full.yend) == (0, 0, 32, 24)  # the format
    assert attributes["lbs:shot"] == "sh010" and "nuke/node_hash" in attributes and "DateTime" in attributes
    assert not [name for name in attributes if name.startswith("input/")]  # "all metadata except input/*"
    cache.remove_folder(job.bake_dir)
    import time as time_module

    monkeypatch.setattr(time_module, "strftime", lambda *a: "2031:01:01 00:00:00")  # another write time
    again = compute.prepare(node)
    assert seen[1][2]["DateTime"] == "2031:01:01 00:00:00" != seen[0][2]["DateTime"]  # capDate, as OIIO names it
    assert again.key == job.key  # neither the time stamp nor Nuke's node hash is part of the key
    plate = again.plate.replace("####", "1001")
    assert exr.content_sha256(plate) == real_hash(again.plate, again.trimap, [1001])[1001][0]
    cache.remove_folder(again.bake_dir)


def test_a_node_that_shows_nothing_never_says_its_inputs_match(fake_nuke, lbs_env, sequences, monkeypatch):
    # A stale result, then a Compute that makes no frame (or one still running, which hides the old
    # result): the idle loop must not replace FAILED / computing with "inputs match the Compute
    # again", which claims a current result while the node shows none.
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    node.showControlPanel()
    node["premultiply"].setValue(False)
    assert node["status"].value().startswith("STALE")
    monkeypatch.setenv("FAKE_CLI_FAIL_FRAMES", "1001,1002,1003")
    assert not compute.compute(node).ok
    status = node["status"].value()
    assert status.startswith("FAILED") and not node["result_ready"].value()
    fake_nuke._update_ui()
    assert node["status"].value() == status
    assert node["result_stale"].value() is False  # nothing shown, so nothing stale

    monkeypatch.delenv("FAKE_CLI_FAIL_FRAMES")
    assert compute.compute(node).ok
    node["premultiply"].setValue(True)  # stale again; Compute in the background
    monkeypatch.setattr(fake_nuke, "GUI", True)
    monkeypatch.setenv("FAKE_CLI_SLEEP", "0.3")
    node["rounds"].setValue(0)
    node["compute"].execute()
    fake_nuke._update_ui()  # idle ticks while it computes
    assert node["status"].value().startswith("computing"), (node["status"].value(), fake_nuke._messages)
    for worker in [t for t in threading.enumerate() if t.name.startswith("LBSMatte")]:
        worker.join(30)
    fake_nuke._run_main_queue()
    assert "ready" in node["status"].value() and node["result_ready"].value()


def test_a_knob_that_takes_no_part_does_not_make_the_result_stale(fake_nuke, lbs_env, sequences):
    # The edge width counts only for a rough matte and the OCIO colourspace only with input colour
    # ocio (as in the cache key): typing them ahead is not a reason to hide a current matte.
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    fake_nuke.frame(1002)
    node.showControlPanel()
    node["edge_width"].setValue(3)
    node["ocio_colourspace"].setValue("ACES - ACEScg")
    node["weights"].setValue(" testbundle ")
    fake_nuke._update_ui()
    assert node["result_stale"].value() is False and "ready" in node["status"].value()
    assert "fg.red" in node._image(1002).channels
    node["trimap_input"].setValue("rough matte")  # now the edge width counts
    assert node["status"].value().startswith("STALE: LBSMatte1: settings changed")
    node["trimap_input"].setValue("trimap")
    node["colour"].setValue("ocio")  # and now the colourspace
    assert node["status"].value().startswith("STALE: LBSMatte1: settings changed")
    node["colour"].setValue("linear")
    assert node["result_stale"].value() is False


def test_a_result_recorded_by_the_previous_settings_hash_stays_current(fake_nuke, lbs_env, sequences):
    # Scripts saved before the hash left unused knobs out hold the hash of every knob as written.
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    record = lbs_node.recorded_inputs(node)
    record["settings"] = lbs_node.settings_hash(node, legacy=True)
    node["result_inputs"].setValue(json.dumps(record))
    assert lbs_node.find_stale(node) == ("", [])
    node["edge_width"].setValue(5)  # a change after the upgrade is judged by the new hash only
    assert lbs_node.find_stale(node)[0] == "settings changed since Compute"


def _record_as_written_before_the_upgrade(node):
    """``result_inputs`` as LBSMatte wrote it before the stale check read knobs' values (cca5352^):
    the SHA-256 of every setting knob's script, an expression's text as it is."""
    import hashlib

    record = lbs_node.recorded_inputs(node)
    # the setting knobs of that LBSMatte (trimap_from came later)
    knobs = ("weights", "device", "trimap_channel", "colour", "ocio_colourspace", "premultiply", "rounds",
             "trimap_input", "edge_width", "cache_dir")
    values = dict((name, node[name].toScript()) for name in knobs)
    record["settings"] = hashlib.sha256(json.dumps(values, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    record.pop("bundle", None), record.pop("views", None)  # fields added since
    node["result_inputs"].setValue(json.dumps(record, sort_keys=True))


def test_an_older_record_of_an_animated_setting_is_stale(fake_nuke, lbs_env, sequences):
    # The older record holds the expression's text, which reads the same whatever the knob it follows
    # was at Compute (and keys it read at the frame Compute was pressed at): whether the matte was
    # made with today's value cannot be told, so it is stale, as docs/nuke.md says.
    node = make_graph(fake_nuke, sequences)
    control = fake_nuke.nodes.Grade()
    control["white"].setValue(1.0)
    node["rounds"].setExpression(f"{control.name()}.white")
    assert compute.compute(node).ok
    _record_as_written_before_the_upgrade(node)
    control["white"].setValue(2.0)  # the matte was made with 1 round; the node would now run 2
    assert lbs_node.find_stale(node) == (
        "the refine rounds knob has keyframes or an expression, whose value at Compute an older LBSMatte did not "
        "record", [1001, 1002, 1003])
    node["rounds"].clearAnimated()
    node["rounds"].setAnimated()  # keys: an older Compute read them at the frame it was pressed at
    node["rounds"].setValueAt(1, 1001)
    node["rounds"].setValueAt(2, 1003)
    _record_as_written_before_the_upgrade(node)
    assert lbs_node.find_stale(node)[0].startswith("the refine rounds knob has keyframes or an expression")
    node["rounds"].clearAnimated()
    node["rounds"].setValue(1)  # a plain value: the older record's hash of it is trusted
    _record_as_written_before_the_upgrade(node)
    assert lbs_node.find_stale(node) == ("", [])


def test_a_render_at_a_frame_the_compute_could_not_make_names_the_node(fake_nuke, lbs_env, sequences, tmp_path,
                                                                       capsys):
    # A plate frame missing upstream: the others are computed and shown; a render at that frame
    # stops with the node's ERROR line (as the docs say), not only the internal Read's file error.
    plate_1002 = cache.frame_path(sequences["plate"], 1002)
    os.rename(plate_1002, plate_1002 + ".away")
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).missing == [1002] and node["result_ready"].value()
    write = _comp(fake_nuke, node, str(tmp_path / "comp.####.exr"))
    fake_nuke.execute(write, 1001, 1001)
    capsys.readouterr()
    with pytest.raises(RuntimeError, match="LBSMatte1: frame 1002 has no result"):
        fake_nuke.execute(write, 1002, 1002)
    assert "ERROR: LBSMatte1: frame 1002 has no result (the last Compute failed" in capsys.readouterr().out


def test_a_node_reached_by_two_paths_is_checked_once(fake_nuke, lbs_env, sequences, tmp_path, capsys):
    # The matte feeds two branches that meet again (a Switch here, a Merge in a comp). Nuke hands
    # out a new Python object per input() call, so the walk upstream must know a node by its
    # name, not by id(): else it is reported once per path (and a freed id may hide another node).
    node = make_graph(fake_nuke, sequences)
    branches = [fake_nuke.nodes.Grade(), fake_nuke.nodes.Grade()]
    switch = fake_nuke.nodes.Switch()
    for i, grade in enumerate(branches):
        grade.setInput(0, node)
        switch.setInput(i, grade)
    write = _comp(fake_nuke, switch, str(tmp_path / "comp.####.exr"))
    with pytest.raises(RuntimeError, match="LBSMatte1 has no result to render"):
        fake_nuke.execute(write, 1001, 1001)
    assert capsys.readouterr().out.count("ERROR: LBSMatte1 has no result") == 1
    from nuke_plugin import callbacks

    assert [(n.fullName(), frames) for n, frames in callbacks.upstream_lbsmatte(write, 1001)] == [("LBSMatte1", (1001,))]


def test_input_hashes_cover_every_op_hash_of_an_input(fake_nuke):
    # Nuke's opHashes() lists one hash per op of the node (a node may hold several): a change in
    # any of them, not only the first, is a change of the input.
    class Op:
        def __init__(self, hashes):
            self.hashes = hashes

        def opHashes(self):  # noqa: N802 (Nuke's name)
            return list(self.hashes)

    plate, trimap = Op([11, 12]), Op([13])

    class Node:
        def input(self, i):
            return {lbs_node.PLATE_INPUT: plate, lbs_node.TRIMAP_INPUT: trimap}[i]

    frame = fake_nuke.frame()
    before = lbs_node.input_hashes(Node(), [frame])
    plate.hashes = [11, 99]
    assert lbs_node.input_hashes(Node(), [frame]) != before


# -- setting knobs with an expression or keyframes -----------------------------------------------------
def test_a_setting_linked_to_another_knob_is_stale_when_that_knob_changes(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    control = fake_nuke.nodes.Grade()  # a knob the artist links the node's rounds to
    control["white"].setValue(1.0)
    node["rounds"].setExpression(f"{control.name()}.white")
    assert compute.compute(node).ok
    assert lbs_node.find_stale(node) == ("", [])
    control["white"].setValue(2.0)  # the expression reads the same; its value does not
    assert lbs_node.find_stale(node) == ("settings changed since Compute", [1001, 1002, 1003])
    control["white"].setValue(1.0)
    assert lbs_node.find_stale(node) == ("", [])


def test_a_link_keyed_after_compute_makes_only_the_frames_it_changes_stale(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    control = fake_nuke.nodes.Grade()
    control["white"].setValue(1.0)
    node["rounds"].setExpression(f"{control.name()}.white")
    assert compute.compute(node).ok
    fake_nuke.frame(1001)
    control["white"].setAnimated()  # 1 at 1001 ...
    control["white"].setValueAt(1.0, 1002)
    control["white"].setValueAt(3.0, 1003)  # ... 3 at 1003: frame 1003 would be made with 3 rounds now
    assert lbs_node.find_stale(node) == ("settings changed since Compute", [1003])
    fake_nuke.frame(1003)
    lbs_node.check_current_frame(node)
    assert node["status"].value() == ("STALE: LBSMatte1: settings changed since Compute at frame(s) 1003"
                                      " - press Compute")
    fake_nuke.frame(1002)
    lbs_node.check_current_frame(node)
    assert node["result_stale"].value() is False


def test_a_setting_keyed_to_one_value_stays_current_after_save_and_reopen(fake_nuke, lbs_env, sequences, tmp_path):
    shot = write_shot(str(tmp_path / "shot.nk"), sequences)
    fake_nuke.scriptOpen(shot)
    node = fake_nuke.toNode("LBSMatte1")
    fake_nuke.frame(1001)
    node["rounds"].setAnimated()
    node["rounds"].setValue(2)
    node["rounds"].setValueAt(2, 1003)
    assert compute.compute(node).ok
    fake_nuke.scriptSave(shot)
    assert "rounds {{curve x1001 2 x1003 2}}" in open(shot).read()
    fake_nuke._reset()
    fake_nuke._startup()
    fake_nuke.scriptOpen(shot)
    node = fake_nuke.toNode("LBSMatte1")
    assert node["rounds"].isAnimated() and node["rounds"].getValueAt(1002) == 2.0
    assert lbs_node.find_stale(node) == ("", [])
    node["rounds"].setValueAt(1, 1003)  # the key edited in the reopened script
    assert lbs_node.find_stale(node) == ("settings changed since Compute", [1001, 1002, 1003])


# -- a TimeOffset between the node and the Write -------------------------------------------------------
def _offset_comp(fake_nuke, node, tmp_path, offset):
    """The matte slipped in time (``offset`` frames later) and rendered."""
    shift = fake_nuke.nodes.TimeOffset()
    shift["time_offset"].setValue(offset)
    shift.setInput(0, node)
    return _comp(fake_nuke, shift, str(tmp_path / "comp.####.exr"))


def test_a_render_through_a_time_offset_checks_the_frames_the_node_is_read_at(fake_nuke, lbs_env, sequences,
                                                                              tmp_path):
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok  # 1001-1003
    write = _offset_comp(fake_nuke, node, tmp_path, 2)
    fake_nuke.execute(write, 1003, 1005)  # reads the node at 1001-1003: its computed range
    assert os.path.isfile(str(tmp_path / "comp.1005.exr"))
    comp, result = read_exr(str(tmp_path / "comp.1005.exr")), read_exr(cache.frame_path(node["result_file"].value(), 1003))
    assert np.array_equal(comp[0][..., 3], result[0][..., 3])  # the alpha of the node's frame 1003


def test_a_render_through_a_disabled_time_offset_reads_the_node_at_the_frame_rendered(fake_nuke, lbs_env, sequences,
                                                                                     tmp_path):
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok  # 1001-1003
    write = _offset_comp(fake_nuke, node, tmp_path, 2)
    write.input(0)["disable"].setValue(True)  # moves nothing: frame 1001 reads the node's 1001, not 999
    fake_nuke.execute(write, 1001, 1003)
    assert os.path.isfile(str(tmp_path / "comp.1001.exr"))


def test_a_render_through_a_time_offset_fails_where_the_node_is_read_outside_its_range(
        fake_nuke, lbs_env, sequences, tmp_path, capsys):
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    write = _offset_comp(fake_nuke, node, tmp_path, 2)
    with pytest.raises(RuntimeError, match="stale or missing result"):
        fake_nuke.execute(write, 1001, 1003)  # frame 1001 reads the node at 999: black, not a matte
    assert "ERROR: LBSMatte1: frame 999 is outside its computed range 1001-1003" in capsys.readouterr().out


def test_a_render_through_a_time_offset_sees_the_stale_frame_it_reads(fake_nuke, lbs_env, sequences, tmp_path,
                                                                      capsys):
    node = make_graph(fake_nuke, sequences)
    grade = _with_grade(fake_nuke, node)
    fake_nuke.frame(1001)
    grade["white"].setAnimated()
    grade["white"].setValueAt(1.0, 1002)
    grade["white"].setValueAt(1.0, 1003)
    assert compute.compute(node).ok
    write = _offset_comp(fake_nuke, node, tmp_path, -2)
    grade["white"].setValueAt(2.0, 1003)  # the grade keyed brighter at 1003 only ...
    fake_nuke.execute(write, 1000, 1000)  # (the node's 1002 is as computed)
    with pytest.raises(RuntimeError, match="stale or missing result"):
        fake_nuke.execute(write, 1001, 1001)  # ... which frame 1001 of the comp reads
    assert "ERROR: LBSMatte1: plate or trimap changed since Compute at frame(s) 1003;" in capsys.readouterr().out
def test_a_setting_linked_to_another_knob_makes_the_result_stale_when_that_knob_changes(fake_nuke, lbs_env,
                                                                                       sequences):
    # rounds = {{Grade1.white}} (a control node driving several LBSMattes): the expression as
    # written stays the same when Grade1.white changes, but the rounds a Compute uses do not.
    controls = fake_nuke.createNode("Grade", inpanel=False)
    controls["white"].setValue(1.0)
    node = make_graph(fake_nuke, sequences)
    node["rounds"].setExpression(f"{controls.name()}.white")
    assert compute.compute(node).ok and lbs_node.find_stale(node) == ("", [])
    controls["white"].setValue(2.0)
    assert node["rounds"].value() == 2
    assert lbs_node.find_stale(node)[0] == "settings changed since Compute"
    controls["white"].setValue(1.0)
    assert lbs_node.find_stale(node) == ("", [])


# -- other time nodes between the node and the Write ---------------------------------------------------
def _time_node(fake_nuke, node, cls, **knobs):
    timed = getattr(fake_nuke.nodes, cls)()
    for name, value in knobs.items():
        timed[name].setValue(value)
    timed.setInput(0, node)
    return timed


def _graded_at(fake_nuke, node, frame):
    """Compute the node with a Grade upstream keyed to 1 over the range, then key it brighter at
    ``frame`` only: that frame of the result is stale, the others current."""
    grade = _with_grade(fake_nuke, node)
    grade["white"].setAnimated()
    for f in (1001, 1002, 1003):
        grade["white"].setValueAt(1.0, f)
    assert compute.compute(node).ok  # 1001-1003
    grade["white"].setValueAt(2.0, frame)


def test_a_render_through_a_frame_hold_checks_the_held_frame(fake_nuke, lbs_env, sequences, tmp_path):
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    write = _comp(fake_nuke, _time_node(fake_nuke, node, "FrameHold", first_frame=1002), str(tmp_path / "c.####.exr"))
    fake_nuke.execute(write, 1004, 1006)  # outside the computed range, but each reads the node's 1002
    comp, result = read_exr(str(tmp_path / "c.1006.exr")), read_exr(cache.frame_path(node["result_file"].value(), 1002))
    assert np.array_equal(comp[0][..., 3], result[0][..., 3])


def test_a_render_through_a_frame_hold_with_an_increment_sees_the_stale_frame_it_holds(
        fake_nuke, lbs_env, sequences, tmp_path, capsys):
    node = make_graph(fake_nuke, sequences)
    _graded_at(fake_nuke, node, 1003)
    hold = _time_node(fake_nuke, node, "FrameHold", first_frame=1001, increment=2)
    write = _comp(fake_nuke, hold, str(tmp_path / "c.####.exr"))
    fake_nuke.execute(write, 1002, 1002)  # holds 1001: current
    with pytest.raises(RuntimeError, match="stale or missing result"):
        fake_nuke.execute(write, 1004, 1004)  # holds 1003: stale
    assert "ERROR: LBSMatte1: plate or trimap changed since Compute at frame(s) 1003;" in capsys.readouterr().out



def test_a_render_of_current_frames_renders_them_while_the_viewer_flagged_another(fake_nuke, lbs_env, sequences,
                                                                                 tmp_path, capsys):
    # The viewer stood at the stale 1003 (the Read switched to the STALE message for every frame) and the
    # script was saved so: a farm render of 1001-1002, current, passed the check and then failed on the
    # Read's STALE message, as did a render of them from the open script.
    shot = write_shot(str(tmp_path / "shot.nk"), sequences)
    fake_nuke.scriptOpen(shot)
    node = fake_nuke.toNode("LBSMatte1")
    control = fake_nuke.nodes.Grade()
    control["white"].setValue(1.0)
    node["rounds"].setExpression(f"{control.name()}.white")
    assert compute.compute(node).ok  # 1001-1003
    control["white"].setAnimated()
    control["white"].setValueAt(1.0, 1002)
    control["white"].setValueAt(3.0, 1003)  # frame 1003 of the result is stale, 1001-1002 current
    fake_nuke.frame(1003)
    fake_nuke._update_ui()
    assert node["status"].value().startswith("STALE: LBSMatte1: settings changed since Compute at frame(s) 1003")
    fake_nuke.scriptSave(shot)
    fake_nuke.execute(_comp(fake_nuke, node, str(tmp_path / "gui.####.exr")), 1001, 1002)
    assert os.path.isfile(str(tmp_path / "gui.1002.exr"))
    fake_nuke._reset()
    fake_nuke._startup()
    fake_nuke.scriptOpen(shot)  # nuke -x on the farm: no idle loop
    write = _comp(fake_nuke, fake_nuke.toNode("LBSMatte1"), str(tmp_path / "farm.####.exr"))
    fake_nuke.execute(write, 1001, 1002)
    assert os.path.isfile(str(tmp_path / "farm.1002.exr"))
    capsys.readouterr()
    with pytest.raises(RuntimeError, match="stale or missing result"):
        fake_nuke.execute(write, 1003, 1003)  # still stopped by the check, naming the stale frame
    assert "ERROR: LBSMatte1: settings changed since Compute at frame(s) 1003;" in capsys.readouterr().out

def test_a_render_through_a_retime_checks_every_computed_frame(fake_nuke, lbs_env, sequences, tmp_path, capsys):
    # Retime's frame mapping (speed curves, ranges, blending) is not followed: frame 1002 at speed 2
    # reads the node's 1003, which is stale; checking the frame rendered (1002) let it through.
    node = make_graph(fake_nuke, sequences)
    _graded_at(fake_nuke, node, 1003)
    write = _comp(fake_nuke, _time_node(fake_nuke, node, "Retime", speed=2.0), str(tmp_path / "c.####.exr"))
    with pytest.raises(RuntimeError, match="stale or missing result"):
        fake_nuke.execute(write, 1002, 1002)
    out = capsys.readouterr().out
    assert ("WARNING: LBSMatte1 is read through a time node whose frames this check does not follow: every "
            "frame of its result is checked") in out
    assert "ERROR: LBSMatte1: plate or trimap changed since Compute at frame(s) 1003;" in out
    assert not os.path.exists(str(tmp_path / "c.1002.exr"))


def test_a_render_through_a_reversed_time_offset_checks_every_computed_frame(
        fake_nuke, lbs_env, sequences, tmp_path, capsys):
    node = make_graph(fake_nuke, sequences)
    _graded_at(fake_nuke, node, 1003)
    reverse = _time_node(fake_nuke, node, "TimeOffset", reverse_input=True)
    with pytest.raises(RuntimeError, match="stale or missing result"):
        fake_nuke.execute(_comp(fake_nuke, reverse, str(tmp_path / "c.####.exr")), 1001, 1001)
    assert "ERROR: LBSMatte1: plate or trimap changed since Compute at frame(s) 1003;" in capsys.readouterr().out


def test_the_render_check_maps_frames_through_time_nodes(fake_nuke, lbs_env, sequences):
    from nuke_plugin import callbacks

    node = make_graph(fake_nuke, sequences)

    def read_at(top, frame):
        return [(n.fullName(), frames) for n, frames in callbacks.upstream_lbsmatte(top, frame)]

    span = _time_node(fake_nuke, node, "FrameRange", first_frame=1001, last_frame=1002)
    assert read_at(span, 1002) == [("LBSMatte1", (1002,))]  # inside its range: passed through
    assert read_at(span, 1005) == [("LBSMatte1", None)]  # outside: not followed
    hold = _time_node(fake_nuke, node, "FrameHold", first_frame=1010, increment=5)
    assert [read_at(hold, f) for f in (1010, 1014, 1015, 1009)] == [
        [("LBSMatte1", (1010,))], [("LBSMatte1", (1010,))], [("LBSMatte1", (1015,))], [("LBSMatte1", None)]]
    hold["increment"].setValue(-5)  # undocumented in Nuke: not followed rather than guessed
    assert read_at(hold, 1014) == [("LBSMatte1", None)]
    hold["increment"].setValue(5)
    hold["disable"].setValue(True)
    assert read_at(hold, 1014) == [("LBSMatte1", (1014,))]
    offset = _time_node(fake_nuke, _time_node(fake_nuke, node, "FrameHold", first_frame=1002), "TimeOffset",
                        time_offset=3)
    assert read_at(offset, 1200) == [("LBSMatte1", (1002,))]
    # A group (a gizmo) holding a time node: where it reads its input is not followed.
    group = fake_nuke.nodes.Group()
    with group:
        inner = fake_nuke.nodes.Input()
        shifted = _time_node(fake_nuke, inner, "TimeOffset", time_offset=1)
        fake_nuke.nodes.Output().setInput(0, shifted)
    group.setInput(0, node)
    dot = fake_nuke.nodes.Dot()
    dot.setInput(0, group)
    assert read_at(dot, 1002) == [("LBSMatte1", None)]
    shifted["disable"].setValue(True)
    assert read_at(dot, 1002) == [("LBSMatte1", (1002,))]


# -- the viewer's check through a TimeOffset ----------------------------------------------------------
def _viewed_through_offset(fake_nuke, node, offset):
    viewer = fake_nuke.nodes.Viewer()
    viewer.setInput(0, _time_node(fake_nuke, node, "TimeOffset", time_offset=offset))
    return viewer


def test_the_viewer_checks_the_frame_it_reads_through_a_time_offset(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    control = fake_nuke.nodes.Grade()
    control["white"].setValue(1.0)
    node["rounds"].setExpression(f"{control.name()}.white")
    assert compute.compute(node).ok  # 1001-1003
    fake_nuke.frame(1001)
    control["white"].setAnimated()
    control["white"].setValueAt(1.0, 1002)
    control["white"].setValueAt(3.0, 1003)  # frame 1003 of the result is stale
    _viewed_through_offset(fake_nuke, node, 2)
    fake_nuke.frame(1005)  # the comp at 1005 shows the node's 1003 (the timeline's 1005 is past its range)
    fake_nuke._update_ui()
    assert node["status"].value() == ("STALE: LBSMatte1: settings changed since Compute at frame(s) 1003"
                                      " - press Compute")
    fake_nuke.frame(1004)  # shows the node's 1002: current again
    fake_nuke._update_ui()
    assert node["result_stale"].value() is False


def test_the_viewer_does_not_flag_a_frame_it_does_not_read(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    _graded_at(fake_nuke, node, 1003)  # the node's 1003 is stale
    _viewed_through_offset(fake_nuke, node, 2)
    fake_nuke.frame(1003)  # ... but the comp at 1003 shows its 1001, as a render of 1003 would read
    fake_nuke._update_ui()
    assert node["result_stale"].value() is False
    assert lbs_node.find_stale(node, [1003]) == ("plate or trimap changed since Compute", [1003])


def test_a_render_through_a_retime_hashes_the_whole_range_once(fake_nuke, lbs_env, sequences, tmp_path,
                                                               monkeypatch, capsys):
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    write = _comp(fake_nuke, _time_node(fake_nuke, node, "Retime", speed=0.5), str(tmp_path / "c.####.exr"))
    hashed = []
    real = lbs_node.input_hashes
    monkeypatch.setattr(lbs_node, "input_hashes", lambda n, frames: hashed.append(list(frames)) or real(n, frames))
    fake_nuke.execute(write, 1001, 1003)  # reads 1001, 1002, 1002: current
    assert hashed == [[1001, 1002, 1003]]  # not once per frame rendered
    assert capsys.readouterr().out.count("WARNING: LBSMatte1 is read through a time node") == 1
    fake_nuke.execute(write, 1001, 1001)  # a new render checks again
    assert hashed == [[1001, 1002, 1003]] * 2


def test_a_render_through_a_disabled_retime_checks_only_the_frame_it_reads(fake_nuke, lbs_env, sequences, tmp_path,
                                                                          capsys):
    # A disabled Retime passes its input's frames through: the render of 1001 reads the node's 1001,
    # which is current; its stale 1003 must neither stop the render nor be warned about.
    node = make_graph(fake_nuke, sequences)
    _graded_at(fake_nuke, node, 1003)
    retime = _time_node(fake_nuke, node, "Retime", speed=2.0)
    retime["disable"].setValue(True)
    fake_nuke.execute(_comp(fake_nuke, retime, str(tmp_path / "c.####.exr")), 1001, 1001)
    assert os.path.isfile(str(tmp_path / "c.1001.exr"))
    assert "WARNING" not in capsys.readouterr().out


def test_a_node_read_at_two_frames_by_two_paths_is_checked_at_both(fake_nuke, lbs_env, sequences, tmp_path,
                                                                   capsys):
    # A Switch's two branches read the node at 1003 (directly) and 1001 (through a TimeOffset): the
    # walk upstream knows the node by name and frames, so the second path is not skipped as seen.
    from nuke_plugin import callbacks

    node = make_graph(fake_nuke, sequences)
    switch = fake_nuke.nodes.Switch()
    switch.setInput(0, _time_node(fake_nuke, node, "TimeOffset", time_offset=2))
    switch.setInput(1, node)
    found = sorted((n.fullName(), frames) for n, frames in callbacks.upstream_lbsmatte(switch, 1003))
    assert found == [("LBSMatte1", (1001,)), ("LBSMatte1", (1003,))]
    switch.setInput(0, node)
    switch.setInput(1, _time_node(fake_nuke, node, "TimeOffset", time_offset=2))
    found = sorted((n.fullName(), frames) for n, frames in callbacks.upstream_lbsmatte(switch, 1003))
    assert found == [("LBSMatte1", (1001,)), ("LBSMatte1", (1003,))]


def test_the_viewer_check_takes_only_the_frames_the_viewers_read_this_node_at(fake_nuke, lbs_env, sequences):
    # The viewer shows another LBSMatte node through a TimeOffset: that node's frames are not this one's.
    from nuke_plugin import callbacks

    shown, other = make_graph(fake_nuke, sequences), make_graph(fake_nuke, sequences)
    fake_nuke.frame(1003)
    _viewed_through_offset(fake_nuke, shown, 2)
    assert callbacks.viewed_frames(shown) == [1001]
    assert callbacks.viewed_frames(other) == [1003]  # not viewed: the current frame


def test_an_idle_pass_walks_up_from_the_viewers_once_for_all_the_nodes(fake_nuke, lbs_env, sequences, monkeypatch):
    # Nuke calls updateUI on every node in each idle pass (every frame change): walking the whole
    # comp from the viewers for each LBSMatte node made a pass cost nodes x comp.
    from nuke_plugin import callbacks

    nodes = [make_graph(fake_nuke, sequences) for _ in range(3)]
    switch = fake_nuke.nodes.Switch()
    for index, node in enumerate(nodes):
        switch.setInput(index, node)
    fake_nuke.nodes.Viewer().setInput(0, switch)
    walks = []
    real = callbacks.upstream_lbsmatte
    monkeypatch.setattr(callbacks, "upstream_lbsmatte",
                        lambda start, frame: walks.append(start.Class()) or real(start, frame))
    for now in (1001, 1001, 1002):
        fake_nuke.frame(now)
        fake_nuke._update_ui()
    assert walks == ["Viewer"] * 3  # once a pass, not once a node


def test_an_idle_pass_stats_a_shared_bundle_once_and_the_next_pass_sees_it_replaced(fake_nuke, lbs_env, sequences,
                                                                                     monkeypatch):
    # The bundle's manifest sits on the show's share: each LBSMatte node stat-ing it on every idle
    # pass was one network round trip per node per frame change.
    nodes = [make_graph(fake_nuke, sequences) for _ in range(3)]
    for node in nodes:
        assert compute.compute(node).ok
    fake_nuke.nodes.Viewer().setInput(0, nodes[0])
    manifest = os.path.join(lbs_env["bundles"], "testbundle", "manifest.json")
    stats = []
    real = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: (stats.append(path) if os.fspath(path) == manifest else None)
                        or real(path, *a, **k))
    fake_nuke.frame(1002)
    fake_nuke._update_ui()
    assert stats == [manifest] and not any(node["result_stale"].value() for node in nodes)
    write_bundle(os.path.dirname(manifest), description="the show's second fine-tune")
    fake_nuke._update_ui()
    assert stats == [manifest] * 2
    assert all(node["status"].value().startswith(f"STALE: {node.name()}: weights changed since Compute")
               for node in nodes)


def test_an_idle_pass_after_a_graph_edit_checks_the_frames_now_read(fake_nuke, lbs_env, sequences):
    # The walk kept for a pass is not used by the next one: the viewer reconnected (the panel
    # closed, the frame unchanged) makes the node read at another frame, which is stale.
    first = make_graph(fake_nuke, sequences)
    node = make_graph(fake_nuke, sequences)
    control = fake_nuke.nodes.Grade()
    control["white"].setValue(1.0)
    node["rounds"].setExpression(f"{control.name()}.white")
    assert compute.compute(node).ok  # 1001-1003
    control["white"].setAnimated()
    control["white"].setValueAt(1.0, 1001)
    control["white"].setValueAt(3.0, 1003)  # frame 1003 of the result is stale
    viewer = _viewed_through_offset(fake_nuke, node, 2)
    viewer.setInput(1, first)
    fake_nuke.frame(1003)  # the viewer reads the node's 1001: current
    fake_nuke._update_ui()
    assert node["result_stale"].value() is False
    viewer.setInput(0, node)  # now its 1003
    fake_nuke._update_ui()
    assert node["status"].value() == ("STALE: LBSMatte2: settings changed since Compute at frame(s) 1003"
                                      " - press Compute")


def test_an_accepted_render_outside_the_range_warns_of_black_not_of_the_old_result(fake_nuke, lbs_env, sequences,
                                                                                  tmp_path, capsys):
    # Every frame read is outside the computed range: black is rendered there, not an old result,
    # so the settings changed since Compute are not warned about as "rendering the old result".
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok  # 1001-1003
    node["accept_stale"].setValue(True)
    node["rounds"].setValue(node["rounds"].value() + 1)
    fake_nuke.execute(_offset_comp(fake_nuke, node, tmp_path, 10), 1020, 1020)  # reads the node's 1010
    out = capsys.readouterr().out
    assert "WARNING: LBSMatte1: frame 1010 is outside its computed range 1001-1003 (accept stale result is on: " \
           "rendering black there)" in out
    assert "rendering the old result" not in out


def test_the_viewer_check_hashes_the_inputs_at_the_current_frame_only(fake_nuke, lbs_env, sequences, monkeypatch):
    # The comp at 1005 shows the node's 1003 through a TimeOffset: the idle check reads the node
    # at 1003 but must not pull its inputs at another frame than Nuke's current one.
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok  # 1001-1003
    _viewed_through_offset(fake_nuke, node, 2)
    hashed = []
    real = lbs_node.input_hashes
    monkeypatch.setattr(lbs_node, "input_hashes", lambda n, frames: hashed.append(list(frames)) or real(n, frames))
    for now in (1005, 1003):
        fake_nuke.frame(now)
        fake_nuke._update_ui()
    assert hashed == [[], []]  # the node's 1003, then its 1001: neither is the current frame
    assert node["result_stale"].value() is False


def test_the_render_check_reads_animated_time_nodes_at_the_frame_rendered(fake_nuke, lbs_env, sequences):
    # The offset and the held frame keyed over the shot: at 1005 they are 4 and 1003, whatever
    # frame the timeline shows.
    from nuke_plugin import callbacks

    node = make_graph(fake_nuke, sequences)
    fake_nuke.frame(1001)
    offset = _time_node(fake_nuke, node, "TimeOffset")
    offset["time_offset"].setAnimated()  # 0 at 1001
    offset["time_offset"].setValueAt(4, 1005)
    hold = _time_node(fake_nuke, node, "FrameHold", first_frame=1001)
    hold["first_frame"].setAnimated()
    hold["first_frame"].setValueAt(1003, 1005)
    for top, read in ((offset, (1001,)), (hold, (1003,))):
        assert [(n.fullName(), frames) for n, frames in callbacks.upstream_lbsmatte(top, 1005)] == [("LBSMatte1", read)]


def test_an_accepted_render_warns_of_a_stale_frame_and_of_a_missing_one(fake_nuke, lbs_env, sequences, tmp_path,
                                                                        capsys):
    node = make_graph(fake_nuke, sequences)
    _graded_at(fake_nuke, node, 1003)
    node["accept_stale"].setValue(True)
    fake_nuke.execute(_comp(fake_nuke, node, str(tmp_path / "c.####.exr")), 1003, 1004)
    out = capsys.readouterr().out
    assert ("WARNING: LBSMatte1: plate or trimap changed since Compute at frame(s) 1003 (accept stale result is on: "
            "rendering the old result)") in out
    assert ("WARNING: LBSMatte1: frame 1004 is outside its computed range 1001-1003 (accept stale result is on: "
            "rendering black there)") in out


# -- proxy mode --------------------------------------------------------------------------------------
def test_a_result_computed_at_full_resolution_stays_current_in_proxy_mode(fake_nuke, lbs_env, sequences):
    # Compute runs at full resolution only; the artist then works in proxy mode (Ctrl/Cmd+P), where
    # Nuke builds every op for the proxy context and its op hashes differ from full resolution's.
    node = make_graph(fake_nuke, sequences)
    grade = _with_grade(fake_nuke, node)
    assert compute.compute(node).ok
    status = node["status"].value()
    fake_nuke.frame(1002)
    fake_nuke.root()["proxy"].setValue(True)
    fake_nuke._update_ui()
    assert node["result_stale"].value() is False and node["status"].value() == status
    assert "fg.red" in node._image(1002).channels
    assert lbs_node.find_stale(node) == ("", [])  # the render check, every frame
    grade["white"].setValue(2.0)  # an upstream edit in proxy mode is still caught
    fake_nuke._update_ui()
    assert node["status"].value() == ("STALE: LBSMatte1: plate or trimap changed since Compute at frame(s) 1002"
                                      " - press Compute")
    grade["white"].setValue(1.0)
    fake_nuke.root()["proxy"].setValue(False)  # and back at full resolution, current again
    fake_nuke._update_ui()
    assert node["result_stale"].value() is False and lbs_node.find_stale(node) == ("", [])
    assert fake_nuke.root()["proxy"].value() is False


def test_proxy_settings_other_than_computed_at_say_the_inputs_cannot_be_checked(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    fake_nuke.root()["proxy"].setValue(True)
    fake_nuke.root()["proxy_scale"].setValue(0.25)  # Compute recorded the inputs at the script's 0.5
    reason, frames = lbs_node.find_stale(node)
    assert reason == ("proxy mode is on at proxy scale 0.25, where Compute did not record the inputs (it did at "
                      "proxy scale 0.5): turn proxy mode off, or set the proxy settings back, to check them")
    assert frames == list(range(1001, 1004))
    fake_nuke.root()["proxy_scale"].setValue(0.5)
    assert lbs_node.find_stale(node) == ("", [])
