"""Compute / Clear cache end to end in the fake node graph.

The subprocess is ``tests/fake_nuke/fake_core_cli.py`` (the ``core.cli matte`` contract without
torch) except in ``test_compute_with_core_and_a_small_bundle``, which runs the real core.
"""

import os
import threading

import numpy as np
import pytest
from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import SIZE, cli_calls, fill_cache_disk, make_graph, read_exr, write_exr

from nuke_plugin import buttons, cache, compute
from nuke_plugin import node as lbs_node
from nuke_plugin.errors import NodeError
from nuke_plugin.progress import PrintReporter


def _frames_of(node):
    """``{frame: (pixels, channel names)}`` of the files the internal Read shows."""
    import nuke

    read = node.node("Result")
    assert read["disable"].value() is False, "the Read is switched off"
    now, frames = nuke.frame(), {}
    try:
        for f in range(read.firstFrame(), read.lastFrame() + 1):
            nuke.frame(f)  # Nuke's File_Knob.evaluate() gives the file of the current frame
            frames[f] = read_exr(read["file"].evaluate())
    finally:
        nuke.frame(now)
    return frames


def _frames_arg(command):
    """The ``--frames`` value of a tool command (passed as ``--frames=A-B``)."""
    return next(a.split("=", 1)[1] for a in command if a.startswith("--frames="))


def test_compute_three_frames_then_cache_hit(fake_nuke, lbs_env, sequences, capsys):
    node = make_graph(fake_nuke, sequences)
    result = compute.compute(node, reporter=PrintReporter())
    assert result.ok and sorted(result.computed) == [1001, 1002, 1003]
    out = capsys.readouterr().out
    assert "LBSMATTE PROGRESS 1003 3/3" in out
    frames = _frames_of(node)
    assert sorted(frames) == [1001, 1002, 1003]
    for pixels, names in frames.values():
        assert set(names) == {"R", "G", "B", "A", "fg.R", "fg.G", "fg.B", "bg.R", "bg.G", "bg.B"}
        rgba = pixels[:, :, [names.index(c) for c in "RGBA"]]
        fg = pixels[:, :, [names.index("fg." + c) for c in "RGB"]]
        np.testing.assert_allclose(rgba[:, :, :3], fg * rgba[:, :, 3:], atol=2e-3)  # premultiplied
    assert node.channels() == ["rgba.red", "rgba.green", "rgba.blue", "rgba.alpha",
                               "bg.red", "bg.green", "bg.blue", "fg.red", "fg.green", "fg.blue"]
    assert "ready" in node["status"].value() and result.job.key in node["status"].value()
    command = cli_calls(lbs_env)[0]
    assert command[:3] == ["-m", "core.cli", "matte"]
    assert _frames_arg(command) == "1001-1003"
    assert command[command.index("--weights") + 1] == os.path.join(lbs_env["bundles"], "testbundle")
    assert command[command.index("--colour") + 1] == "linear"
    assert "--unpremultiply" not in command
    assert not os.listdir(os.path.join(lbs_env["cache"], cache.BAKE_FOLDER))  # baked inputs removed
    reloads = node.node("Result")._reloads

    again = compute.compute(node, reporter=PrintReporter())
    assert again.ok and again.computed == [] and again.job.key == result.job.key
    assert sorted(again.job.cached) == [1001, 1002, 1003] and "0 computed, 3 cached" in node["status"].value()
    assert len(cli_calls(lbs_env)) == 1, "a cache hit must not run the tool"
    assert capsys.readouterr().out.count("LBSMATTE PROGRESS") == 3  # cached frames still reported
    assert node.node("Result")._reloads == reloads + 1


def test_the_tools_warnings_reach_the_nodes_status(fake_nuke, lbs_env, sequences, monkeypatch):
    # A soft matte wired in as the trimap still renders; the artist reads why it may look wrong
    # on the node itself, the first warning and how many more.
    monkeypatch.setenv("FAKE_CLI_WARN_FRAMES", "1001,1003")
    node = make_graph(fake_nuke, sequences)
    result = compute.compute(node, reporter=PrintReporter())
    assert result.ok and sorted(result.computed) == [1001, 1002, 1003]
    assert [w.split(":")[0] for w in result.warnings] == ["frame 1001", "frame 1003"]
    status = node["status"].value()
    assert "ready" in status and "; WARNING: frame 1001: trimap " in status and status.endswith("(and 1 more)")


def test_a_compute_that_ends_after_its_script_closed_leaves_the_next_script_alone(fake_nuke, lbs_env, sequences,
                                                                                  monkeypatch):
    monkeypatch.setattr(fake_nuke, "GUI", True)
    monkeypatch.setenv("FAKE_CLI_SLEEP", "0.5")
    node = make_graph(fake_nuke, sequences)
    node["compute"].execute()
    worker = [t for t in threading.enumerate() if t.name.startswith("LBSMatte")][0]
    fake_nuke.scriptClose()  # File > Close while it computes (its process is stopped)
    other = make_graph(fake_nuke, sequences)  # the next script: a node of the same name
    assert other.fullName() == "LBSMatte1"
    status = other["status"].value()
    worker.join(30)
    fake_nuke._run_main_queue()
    assert other["status"].value() == status and not other["result_ready"].value()
    assert other["result_file"].value() == "" and other["result_inputs"].value() == ""


def test_a_node_renamed_while_it_computes_still_gets_its_result(fake_nuke, lbs_env, sequences, monkeypatch):
    monkeypatch.setattr(fake_nuke, "GUI", True)
    monkeypatch.setenv("FAKE_CLI_SLEEP", "0.3")
    node = make_graph(fake_nuke, sequences)
    node["compute"].execute()
    worker = [t for t in threading.enumerate() if t.name.startswith("LBSMatte")][0]
    node.setName("hair_matte")  # the artist names the node while it computes
    other = make_graph(fake_nuke, sequences)  # and a new node takes the old name
    assert other.name() == "LBSMatte1"
    worker.join(30)
    fake_nuke._run_main_queue()
    assert node["result_ready"].value() and "ready" in node["status"].value()
    assert node.node("Result")["disable"].value() is False
    assert not other["result_ready"].value() and other["result_file"].value() == ""
    assert fake_nuke._messages == []


def test_a_node_renamed_while_it_computes_is_still_the_one_computing(fake_nuke, lbs_env, sequences, monkeypatch):
    monkeypatch.setattr(fake_nuke, "GUI", True)
    monkeypatch.setenv("FAKE_CLI_SLEEP", "0.3")
    node = make_graph(fake_nuke, sequences)
    node["compute"].execute()
    worker = [t for t in threading.enumerate() if t.name.startswith("LBSMatte")][0]
    node.setName("hair_matte")
    other = make_graph(fake_nuke, sequences)  # a new node takes the old name: it computes nothing
    with pytest.raises(NodeError, match=r"^hair_matte is computing: cancel it \(its progress bar\) before "
                                        r"clearing its cache$"):
        compute.clear_cache(node)  # its folder may be the one being written
    assert compute.clear_cache(other) == "" and other["status"].value() == "nothing cached"
    other["compute"].execute()  # not "LBSMatte1 is already computing."
    assert fake_nuke._messages == []
    for thread in [t for t in threading.enumerate() if t.name.startswith("LBSMatte")] + [worker]:
        thread.join(30)
    fake_nuke._run_main_queue()
    assert node["result_ready"].value() and other["result_ready"].value() and compute._running == []


def test_a_setting_changes_the_key_and_shows_the_result_stale(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    first = compute.compute(node)
    node.showControlPanel()
    node["premultiply"].setValue(False)  # the user unticks premultiply
    with pytest.raises(RuntimeError, match="STALE - LBSMatte1: settings changed since Compute at frame"):
        node._image(1001)  # the viewer shows Nuke's red Read error, not the old matte
    assert node["status"].value().startswith("STALE: LBSMatte1: settings changed since Compute")
    second = compute.compute(node)
    assert second.ok and second.job.key != first.job.key
    assert "--unpremultiply" in cli_calls(lbs_env)[-1]
    frames = _frames_of(node)
    pixels, names = frames[1001]
    np.testing.assert_allclose(pixels[:, :, [names.index(c) for c in "RGB"]],
                               pixels[:, :, [names.index("fg." + c) for c in "RGB"]], atol=1e-3)
    # both results stay on disk: going back is a cache hit
    node["premultiply"].setValue(True)
    third = compute.compute(node)
    assert third.job.key == first.job.key and third.computed == []


@pytest.mark.parametrize("machine, same, other", [("cpu", "cpu", None), ("cpu", "cuda", None), ("cuda", "cuda", "cpu")])
def test_a_device_knob_that_resolves_as_auto_did_reuses_its_frames(fake_nuke, lbs_env, sequences, monkeypatch,
                                                                   machine, same, other):
    # auto on a GPU machine is cuda (fp16), on a CPU machine cpu (and cuda there falls back to the
    # CPU): the fingerprint in the key holds the device as resolved, and the knob's text must not
    # split one result into two keys.
    monkeypatch.setenv("FAKE_CLI_DEVICE", machine)
    node = make_graph(fake_nuke, sequences)
    first = compute.compute(node)
    node["device"].setValue(same)
    again = compute.compute(node)
    assert again.ok and again.job.key == first.job.key and again.computed == []
    assert len(cli_calls(lbs_env)) == 1, "the same result was computed again"
    assert "0 computed, 3 cached" in node["status"].value()
    if other:  # a device that resolves otherwise (another precision) is another result
        node["device"].setValue(other)
        changed = compute.compute(node)
        assert changed.job.key != first.job.key and sorted(changed.computed) == [1001, 1002, 1003]


def test_upstream_change_gives_a_new_key_and_never_shows_the_old_frame(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    first = compute.compute(node)
    plate, names = read_exr(sequences["plate"].replace("####", "1002"))
    from fake_nuke.fixtures import write_exr

    write_exr(sequences["plate"].replace("####", "1002"), plate * 0.5, names)
    node.node("Result")  # the Read still shows the first result until Compute runs
    job = compute.prepare(node)
    assert job.key != first.job.key
    assert node.node("Result")["disable"].value() is True, "stale result still shown while computing"
    assert job.missing == [1002] and sorted(job.reused) == [1001, 1003]  # unchanged frames are copied
    result = compute.run(job)
    compute.finish(node, job, result)
    assert result.ok and result.computed == [1002]
    assert node["result_key"].value() == job.key


def test_a_longer_range_reuses_computed_frames(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    compute.compute(node, frames=(1001, 1002))
    longer = compute.compute(node, frames=(1001, 1003))
    assert longer.ok and longer.computed == [1003] and sorted(longer.job.reused) == [1001, 1002]
    assert "1 computed, 2 cached" in node["status"].value()  # reused frames count as cached
    assert _frames_arg(cli_calls(lbs_env)[-1]) == "1003"


def test_a_failed_frame_fails_the_job_but_keeps_the_others(fake_nuke, lbs_env, sequences, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_CLI_FAIL_FRAMES", "1002")
    node = make_graph(fake_nuke, sequences)
    result = compute.compute(node, reporter=PrintReporter())
    assert not result.ok and result.missing == [1002]
    assert "frame 1002" in result.errors[0]
    assert "ERROR: frame 1002" in capsys.readouterr().out
    assert node["status"].value().startswith("FAILED") and "2 of 3" in node["status"].value()
    assert node.node("Result")["disable"].value() is False  # 1001 and 1003 are correct: shown
    monkeypatch.delenv("FAKE_CLI_FAIL_FRAMES")
    retry = compute.compute(node)
    assert retry.ok and retry.computed == [1002]


def test_a_missing_input_frame_fails_that_frame_and_the_others_compute(fake_nuke, lbs_env, sequences, capsys):
    # SPEC §8 in the node: a plate frame that is not on disk fails that frame only.
    plate_1002 = cache.frame_path(sequences["plate"], 1002)
    os.rename(plate_1002, plate_1002 + ".away")
    node = make_graph(fake_nuke, sequences)
    result = compute.compute(node, reporter=PrintReporter())
    assert not result.ok and result.missing == [1002] and sorted(result.computed) == [1001, 1003]
    assert len(result.errors) == 1 and result.errors[0].startswith("frame 1002: could not bake the plate (Read1): ")
    assert "ERROR: frame 1002: could not bake the plate" in capsys.readouterr().out
    assert node["status"].value().startswith("FAILED") and "2 of 3" in node["status"].value()
    written = [f for f in (1001, 1002, 1003) if os.path.isfile(cache.frame_path(cache.result_pattern(result.job.folder), f))]
    assert written == [1001, 1003]
    assert [_frames_arg(c) for c in cli_calls(lbs_env)] == ["1001,1003"]  # one core process
    os.rename(plate_1002 + ".away", plate_1002)  # the frame is back: only it is computed
    fake_nuke.toNode("Read1")["reload"].execute()
    retry = compute.compute(node)
    assert retry.ok and retry.computed == [1002] and sorted(_frames_of(node)) == [1001, 1002, 1003]


def test_a_frame_nuke_could_not_bake_is_never_counted_as_computed(fake_nuke, lbs_env, sequences, capsys):
    # The farm log of a rerun said "CACHE 3 of 3 frame(s) already computed" with the plate of 1002
    # missing: that frame was never computed.
    plate_1002 = cache.frame_path(sequences["plate"], 1002)
    os.rename(plate_1002, plate_1002 + ".away")
    node = make_graph(fake_nuke, sequences)
    compute.compute(node, reporter=PrintReporter())
    capsys.readouterr()
    again = compute.compute(node, reporter=PrintReporter())
    assert not again.ok and again.missing == [1002] and sorted(again.job.cached) == [1001, 1003]
    out = capsys.readouterr().out
    assert "LBSMATTE CACHE 2 of 3 frame(s) already computed" in out
    assert "ERROR: frame 1002: could not bake the plate" in out
    # each frame of the range has its PROGRESS line, the failed one too (as lbsmatte matte prints them)
    assert sorted(line.split()[2] for line in out.splitlines() if line.startswith("LBSMATTE PROGRESS")) == [
        "1001", "1002", "1003"]


def test_nothing_to_bake_fails_the_compute_naming_the_first_frame(fake_nuke, lbs_env, sequences):
    for frame in range(1001, 1004):
        os.remove(cache.frame_path(sequences["trimap"], frame))
    node = make_graph(fake_nuke, sequences)
    from nuke_plugin.errors import NodeError

    with pytest.raises(NodeError, match=r"LBSMatte1: no frame of 1001-1003 could be baked; frame 1001: could not bake "
                                        r"the trimap \(Read2\)"):
        compute.compute(node)


def test_a_crash_is_reported_with_its_output(fake_nuke, lbs_env, sequences, monkeypatch):
    monkeypatch.setenv("FAKE_CLI_CRASH", "1")
    node = make_graph(fake_nuke, sequences)
    result = compute.compute(node)
    assert not result.ok and "status 3" in result.errors[0] and "no module named torch" in result.errors[0]
    assert node.node("Result")["disable"].value() is True


def test_cancel_kills_the_subprocess(fake_nuke, lbs_env, sequences, monkeypatch):
    monkeypatch.setenv("FAKE_CLI_SLEEP", "30")
    node = make_graph(fake_nuke, sequences)
    job = compute.prepare(node)
    fake_nuke._cancel_hook = lambda task: True
    from nuke_plugin.progress import TaskReporter

    reporter = TaskReporter(fake_nuke)
    result = compute.run(job, reporter)
    compute.finish(node, job, result)
    assert result.cancelled and not result.ok
    assert node["status"].value().startswith("cancelled")
    assert result.missing, "a 30 s frame cannot have finished"


def test_scattered_missing_frames_are_one_core_process(fake_nuke, lbs_env, sequences):
    # A long shot's frames missing here and there (a paint fix on single frames upstream, frames a
    # failed or busy run left) are computed by one core process, which pays its start (Python,
    # torch, the networks) once: a process a run of frames paid it for each.
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    rng = np.random.default_rng(3)
    for frame in (1001, 1003):  # fixed upstream on these frames only
        write_exr(cache.frame_path(sequences["plate"], frame), rng.uniform(0.0, 1.5, SIZE + (3,)), ["R", "G", "B"])
    fake_nuke.toNode("Read1")["reload"].execute()
    result = compute.compute(node)
    assert result.ok and sorted(result.computed) == [1001, 1003] and result.job.reused == [1002]
    mattes = [c for c in cli_calls(lbs_env) if "matte" in c]
    assert len(mattes) == 2 and _frames_arg(mattes[-1]) == "1001,1003"
    assert sorted(_frames_of(node)) == [1001, 1002, 1003]


def test_a_long_range_goes_through_its_frame_lists_once(fake_nuke, lbs_env, sequences, monkeypatch):
    # Each frame of the range was looked up in a list of the missing frames (or in a set made of it
    # again, frame by frame): quadratic in the range, 26 s of a frozen Nuke at 10 000 frames. Each
    # such list is now gone through a few times whatever the range, never once a frame.
    class Counted(list):
        passes = 0

        def __iter__(self):
            Counted.passes += 1
            return super().__iter__()

        def __contains__(self, item):
            Counted.passes += 1
            return super().__contains__(item)

    real = cache.missing_frames
    monkeypatch.setattr(cache, "missing_frames", lambda folder, frames: Counted(real(folder, frames)))
    node = make_graph(fake_nuke, sequences)
    frames = 30  # the Reads hold their first and last frames beyond 1001-1003
    job = compute.prepare(node, frames=(1001, 1000 + frames))
    job.missing = Counted(job.missing)
    result = compute.run(job)
    assert result.ok and len(result.computed) == frames
    assert Counted.passes < 10, Counted.passes  # 124 when a frame went through them


def test_cancel_runs_no_further_command(fake_nuke, lbs_env, sequences, monkeypatch):
    # 1002 computed: 1001 and 1003 are two runs of missing frames, two commands where their list
    # is longer than one command takes; cancelling the first must not start the second.
    monkeypatch.setattr(compute.runner, "MAX_FRAMES_ARGUMENT", len("1001"))
    node = make_graph(fake_nuke, sequences)
    compute.compute(node, frames=(1002, 1002))
    job = compute.prepare(node, frames=(1001, 1003))
    assert len(job.commands) == 2
    started = []

    class Cancelled:
        cancelled, ok, errors, warnings = True, False, [], []

        def describe(self):
            return "cancelled"

    monkeypatch.setattr(compute.runner, "run", lambda command, **kw: started.append(command) or Cancelled())
    result = compute.run(job)
    assert result.cancelled and len(started) == 1


def test_background_compute_in_the_gui(fake_nuke, lbs_env, sequences, monkeypatch):
    monkeypatch.setattr(fake_nuke, "GUI", True)
    node = make_graph(fake_nuke, sequences)
    node["compute"].execute()  # the gizmo's button script
    workers = [t for t in threading.enumerate() if t.name.startswith("LBSMatte")]
    assert len(workers) == 1
    workers[0].join(30)
    assert node.node("Result")["disable"].value() is True  # not before the main thread reads back
    fake_nuke._run_main_queue()
    assert node.node("Result")["disable"].value() is False
    task = fake_nuke._progress_tasks[-1]
    assert task._progress == [33, 67, 100]  # one step a frame of 3
    assert any("frame 1003 (3/3)" in m for m in task._messages)
    assert fake_nuke._messages == []
    # all cached: no thread, read back at once
    assert compute.compute_in_background(node) is None


def test_buttons_show_messages_not_tracebacks(fake_nuke, lbs_env, sequences, monkeypatch):
    monkeypatch.setattr(fake_nuke, "GUI", True)
    node = make_graph(fake_nuke, sequences)
    node.setInput(1, None)
    node["compute"].execute()
    assert fake_nuke._messages and "connect a trimap to input 1" in fake_nuke._messages[-1]
    assert "Traceback" not in fake_nuke._messages[-1]
    assert node["status"].value().startswith("ERROR")
    node["weights"].setValue("no_such_bundle")
    node.setInput(1, node.input(0))
    node["compute"].execute()
    assert "weights bundle 'no_such_bundle' not found" in fake_nuke._messages[-1]
    assert "testbundle" in fake_nuke._messages[-1]  # lists what was found


def test_a_bundle_the_search_skipped_or_a_renamed_folder_is_named_with_why_not_reported_missing(fake_nuke, lbs_env, sequences):
    """A script's weights knob naming a bundle on the show's path that this install cannot read (its
    manifest written by a newer LBSMatte, or damaged) says so, naming the folder, as ``lbsmatte
    matte --weights`` does: "not found", listing the others, sent the artist looking elsewhere."""
    import json
    import re

    from fake_nuke.fixtures import write_test_bundle

    node = make_graph(fake_nuke, sequences)
    newer = write_test_bundle(os.path.join(lbs_env["bundles"], "abc_v3"), name="abc_v3")
    manifest = os.path.join(newer, "manifest.json")
    with open(manifest) as handle:
        record = json.load(handle)
    with open(manifest, "w") as handle:
        json.dump(dict(record, format_version=2), handle)
    node["weights"].setValue("abc_v3")
    with pytest.raises(NodeError, match=rf"^weights bundle 'abc_v3' \({re.escape(newer)}\) cannot be used: manifest.json has "
                       r"format_version 2, newer than this LBSMatte reads \(1\); update LBSMatte$"):
        lbs_node.read_settings(node)
    with open(manifest, "w") as handle:
        handle.write('{"format": "lbsmatte-bundle", ')  # cut short by a copy
    with pytest.raises(NodeError, match=r"^weights bundle 'abc_v3' \(.*abc_v3\) cannot be used: manifest.json is not valid JSON"):
        lbs_node.read_settings(node)
    node["weights"].setValue(newer)  # the folder itself
    with pytest.raises(NodeError, match=r"cannot be used: manifest.json is not valid JSON"):
        lbs_node.read_settings(node)
    renamed = write_test_bundle(os.path.join(lbs_env["bundles"], "abc_v1_approved"), name="abc_v1")
    node["weights"].setValue("abc_v1_approved")  # a folder renamed: its manifest still names abc_v1
    with pytest.raises(NodeError, match=rf"^weights bundle 'abc_v1_approved' not found: the folder {re.escape(renamed)} "
                       r"holds the bundle 'abc_v1' \(a bundle is picked by the name its manifest.json gives, not by "
                       r"its folder's\): pick 'abc_v1', or give the folder's path$"):
        lbs_node.read_settings(node)
    os.mkdir(os.path.join(str(lbs_env["tmp"]), "elsewhere"))  # no bundle of that name anywhere: not found
    node["weights"].setValue("elsewhere")
    with pytest.raises(NodeError, match=r"^weights bundle 'elsewhere' not found"):
        lbs_node.read_settings(node)


def test_refine_rounds_past_what_the_tool_takes_is_refused_at_compute(fake_nuke, lbs_env, sequences):
    # The knob took 100000 (a typo for 1) and the tool then ran for weeks: refused, naming the range.
    node = make_graph(fake_nuke, sequences)
    node["rounds"].setValue(lbs_node.MAX_ROUNDS)
    assert lbs_node.read_settings(node)[0].rounds == lbs_node.MAX_ROUNDS
    for bad in (lbs_node.MAX_ROUNDS + 1, 100000, -2):
        node["rounds"].setValue(bad)
        with pytest.raises(NodeError, match=r"^refine rounds must be a whole number from 0 to 100 \(0: the networks "
                                            rf"alone\), or -1 for the number the weights bundle records, not {bad}"):
            lbs_node.read_settings(node)


def test_a_broken_install_shows_a_message(fake_nuke, lbs_env, sequences, monkeypatch):
    import sys

    monkeypatch.setattr(fake_nuke, "GUI", True)
    node = make_graph(fake_nuke, sequences)
    monkeypatch.setitem(sys.modules, "nuke_plugin.buttons", None)  # import fails as in a broken install
    for button in ("compute", "clear_cache", "troubleshoot", "browse_weights"):
        node[button].execute()
        assert "LBSMatte is not installed correctly" in fake_nuke._messages[-1]
    assert len(fake_nuke._messages) == 4


def test_clear_cache(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    result = compute.compute(node)
    assert os.path.isdir(result.job.folder)
    buttons.clear_cache_pressed(node)
    assert not os.path.exists(result.job.folder)
    assert node.node("Result")["disable"].value() is True and node["result_file"].value() == ""
    assert node["status"].value() == "cache cleared"
    assert compute.clear_cache(node) == "" and node["status"].value() == "nothing cached"


def test_frame_ranges_and_colour_knobs(fake_nuke, lbs_env, sequences, monkeypatch):
    node = make_graph(fake_nuke, sequences)
    assert lbs_node.frame_range(node) == (1001, 1003)
    node["frame_range"].setValue("custom")
    node["first_frame"].setValue(1002)
    node["last_frame"].setValue(1002)
    assert lbs_node.frame_range(node) == (1002, 1002)
    node["last_frame"].setValue(1000)
    with pytest.raises(NodeError, match=r"^frame range 1002-1000 is empty \(last frame before first\)$"):
        lbs_node.frame_range(node)
    node["frame_range"].setValue("global")
    fake_nuke.root()["first_frame"].setValue(1001)
    fake_nuke.root()["last_frame"].setValue(1002)
    assert lbs_node.frame_range(node) == (1001, 1002)
    node["colour"].setValue("ocio")
    with pytest.raises(NodeError, match="^input colour is 'ocio' but no OCIO colourspace is given$"):
        lbs_node.read_settings(node)
    node["ocio_colourspace"].setValue("ACES - ACEScg")
    # Without $OCIO the core knows no OCIO colourspace: said at once, with where the config comes from
    # (a config picked in the Project Settings alone is not the core's), not as 'unknown colour'.
    monkeypatch.delenv("OCIO", raising=False)
    with pytest.raises(NodeError, match=r"^input colour is 'ocio' \('ACES - ACEScg'\) but \$OCIO is not set: the core "
                                        r"runs outside Nuke .* not from the Project Settings; set OCIO"):
        lbs_node.read_settings(node)
    monkeypatch.setenv("OCIO", "ocio://cg-config-latest")
    node["trimap_channel"].setValue("red")
    node["device"].setValue("cpu")
    result = compute.compute(node)
    assert result.ok
    command = cli_calls(lbs_env)[-1]
    assert command[command.index("--colour") + 1] == "ACES - ACEScg"
    assert command[command.index("--trimap-channel") + 1] == "red"
    assert command[command.index("--device") + 1] == "cpu"


def test_a_frame_range_of_millions_is_refused_before_any_frame_is_touched(fake_nuke, lbs_env, sequences, monkeypatch):
    """A script from elsewhere with a custom range of 1-100000000: a clear error at once, not a
    Nuke hashing and baking frames for hours; the core bounds its frames the same way."""
    node = make_graph(fake_nuke, sequences)
    node["frame_range"].setValue("custom")
    node["first_frame"].setValue(1)
    node["last_frame"].setValue(100000000)
    monkeypatch.setattr(lbs_node, "input_hashes", lambda *a: pytest.fail("frames were hashed"))
    with pytest.raises(NodeError, match=r"frame range 1-100000000 holds 100000000 frames, more than the 100000"):
        compute.compute(node)
    assert cli_calls(lbs_env) == []


def test_cache_folder_knob_and_unwritable_folder(fake_nuke, lbs_env, sequences, tmp_path):
    node = make_graph(fake_nuke, sequences)
    node["cache_dir"].setValue(str(tmp_path / "here"))
    assert lbs_node.cache_dir(node) == str(tmp_path / "here")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    node["cache_dir"].setValue(str(blocker / "cache"))
    with pytest.raises(NodeError, match=r"^the cache folder .*a_file/cache is not writable: "):
        compute.prepare(node)
    assert cli_calls(lbs_env) == []


def test_a_moved_cache_folder_takes_the_shown_results_frames_not_computing_them_again(fake_nuke, lbs_env,
                                                                                      sequences, tmp_path):
    # The TD points the cache folder at the shared storage the farm reads: the result is the same
    # (the key holds no folder), so the frames shown are copied there, not computed again.
    node = make_graph(fake_nuke, sequences)
    first = compute.compute(node)
    node["cache_dir"].setValue(str(tmp_path / "shared"))
    moved = compute.compute(node)
    assert moved.ok and moved.job.key == first.job.key and moved.computed == []
    assert sorted(moved.job.reused) == [1001, 1002, 1003] and len(cli_calls(lbs_env)) == 1
    assert node["result_file"].value().startswith(str(tmp_path / "shared"))
    for frame in (1001, 1002, 1003):
        old = cache.frame_path(first.job.out_pattern, frame)
        assert read_exr(cache.frame_path(moved.job.out_pattern, frame))[0].tobytes() == read_exr(old)[0].tobytes()
    # a folder the node shows that LBSMatte did not make for that key is no source
    other = make_graph(fake_nuke, sequences)
    fake = tmp_path / "elsewhere" / first.job.key
    fake.mkdir(parents=True)
    for frame in (1001, 1002, 1003):
        with open(cache.frame_path(first.job.out_pattern, frame), "rb") as src:
            (fake / os.path.basename(cache.frame_path(first.job.out_pattern, frame))).write_bytes(src.read())
    with open(os.path.join(first.job.folder, cache.RECORD_NAME)) as src:
        (fake / cache.RECORD_NAME).write_text(src.read().replace(first.job.key, "0" * 16))
    other["result_file"].setValue(cache.result_pattern(str(fake)))
    other["cache_dir"].setValue(str(tmp_path / "third"))
    assert sorted(compute.compute(other).computed) == [1001, 1002, 1003]


def test_a_bake_by_another_nuke_release_with_the_same_pixels_is_the_same_key(fake_nuke, lbs_env, sequences,
                                                                              monkeypatch):
    # The artist's Nuke 15.1v1 computed the shot; the farm's batch.py runs 15.1v3, whose Write puts
    # its own version in the baked headers: the same pixels are the same result, not a whole shot
    # computed again.
    node = make_graph(fake_nuke, sequences)
    first = compute.compute(node)
    monkeypatch.setattr(fake_nuke, "NUKE_VERSION_STRING", "15.1v3")
    again = compute.compute(node)
    assert again.ok and again.job.key == first.job.key and again.computed == []
    assert len(cli_calls(lbs_env)) == 1


def test_compute_with_core_and_a_small_bundle(fake_nuke, sequences, small_bundle, monkeypatch, tmp_path):
    """End to end with the real ``core.cli`` and the ``small_bundle`` fixture (untrained nets).

    The only Nuke test that runs the real tool, so nothing here may turn breakage into a skip:
    core is always importable in this checkout. Untrained networks say nothing about the band,
    but the known regions are exact whatever the networks: alpha 1 and F = the plate on the
    trimap's FG, alpha 0 on its BG.
    """
    import sys

    from fake_nuke.fixtures import FRAMES, SIZE, make_trimap

    monkeypatch.setenv("LBSMATTE_PYTHON", sys.executable)
    monkeypatch.setenv("LBSMATTE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")  # the pipeline refuses untrained bundles otherwise
    monkeypatch.delenv("LBSMATTE_WEIGHTS_PATH", raising=False)
    node = make_graph(fake_nuke, sequences, weights=str(small_bundle.path))
    result = compute.compute(node)
    assert result.ok, result.errors
    frames = _frames_of(node)
    assert sorted(frames) == list(range(FRAMES[0], FRAMES[1] + 1))
    for frame, (pixels, names) in frames.items():
        assert {"R", "G", "B", "A", "fg.R", "fg.G", "fg.B", "bg.R", "bg.G", "bg.B"} <= set(names)
        assert pixels.shape[:2] == SIZE
        assert np.all(np.isfinite(pixels))
        alpha = pixels[:, :, names.index("A")]
        rgb = pixels[:, :, [names.index(c) for c in "RGB"]]
        fg = pixels[:, :, [names.index("fg." + c) for c in "RGB"]]
        np.testing.assert_allclose(rgb, fg * alpha[..., None], atol=5e-3, rtol=5e-3)
        plate, _ = read_exr(sequences["plate"].replace("####", f"{frame:04d}"))
        trimap = make_trimap(*SIZE, frame - FRAMES[0])  # what the sequence's trimap frame holds
        fg_known, bg_known = trimap == 1.0, trimap == 0.0
        assert fg_known.any() and bg_known.any()
        np.testing.assert_array_equal(alpha[fg_known], 1.0)
        np.testing.assert_array_equal(alpha[bg_known], 0.0)
        np.testing.assert_array_equal(fg[fg_known], plate[fg_known])
        np.testing.assert_array_equal(rgb[bg_known], 0.0)  # premultiplied by alpha 0
    again = compute.compute(node)
    assert again.ok and again.computed == [] and again.job.key == result.job.key
    # cpu is another result than auto only where auto resolves to CUDA: the key holds the device
    # as the core resolves it (its fingerprint), not as the knob spells it
    import torch

    node["device"].setValue("cpu")
    assert (compute.prepare(node).key == result.job.key) == (not torch.cuda.is_available())


def test_input_colour_srgb_gives_a_result_in_the_inputs_encoding(fake_nuke, sequences, small_bundle, monkeypatch,
                                                                 tmp_path):
    """With input colour ``srgb`` the input's values are sRGB-encoded; the node's output replaces
    them in the stream, so it must be sRGB-encoded too. The real core linearised it: the fg
    layer (and rgba) where the trimap says FG was the input linearised, not the input."""
    import sys

    from fake_nuke.fixtures import FRAMES, SIZE, make_trimap

    monkeypatch.setenv("LBSMATTE_PYTHON", sys.executable)
    monkeypatch.setenv("LBSMATTE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")
    monkeypatch.delenv("LBSMATTE_WEIGHTS_PATH", raising=False)
    node = make_graph(fake_nuke, sequences, weights=str(small_bundle.path))
    node["colour"].setValue("srgb")
    node["frame_range"].setValue("custom")
    node["first_frame"].setValue(FRAMES[0])
    node["last_frame"].setValue(FRAMES[0])
    result = compute.compute(node)
    assert result.ok, result.errors
    pixels, names = _frames_of(node)[FRAMES[0]]
    fg = pixels[:, :, [names.index("fg." + c) for c in "RGB"]]
    bg = pixels[:, :, [names.index("bg." + c) for c in "RGB"]]
    plate, _ = read_exr(sequences["plate"].replace("####", f"{FRAMES[0]:04d}"))
    trimap = make_trimap(*SIZE, 0)
    fg_known, bg_known = trimap == 1.0, trimap == 0.0
    assert (plate[fg_known] > 0.01).any()  # values the sRGB curve would move
    np.testing.assert_array_equal(fg[fg_known], plate[fg_known])
    np.testing.assert_array_equal(bg[bg_known], plate[bg_known])


def test_a_png_plate_with_alpha_gives_the_node_and_the_command_line_one_result(fake_nuke, sequences, small_bundle,
                                                                              monkeypatch, tmp_path):
    """A PNG plate whose (straight) alpha is below 1: Nuke's Read brings its colour in as stored
    and the node bakes that; ``lbsmatte matte`` on the same PNG read it premultiplied by its
    alpha (OpenImageIO's default), so the farm's command line and the artist's node matted other
    colours and gave other layers. Input colour ``linear`` on both: the fake Read does not
    linearise a PNG, so both matte the file's values as they are."""
    import sys

    import OpenImageIO as oiio
    from fake_nuke.fixtures import FRAMES, SIZE, make_trimap

    from core import cli

    monkeypatch.setenv("LBSMATTE_PYTHON", sys.executable)
    monkeypatch.setenv("LBSMATTE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")
    monkeypatch.delenv("LBSMATTE_WEIGHTS_PATH", raising=False)
    h, w = SIZE
    rgb = np.random.default_rng(3).integers(0, 256, size=(h, w, 3)).astype(np.uint8)
    alpha = np.full((h, w, 1), 255, np.uint8)
    alpha[:, w // 2:] = 128
    png = str(sequences["folder"] / f"straight.{FRAMES[0]:04d}.png")
    spec = oiio.ImageSpec(w, h, 4, oiio.UINT8)
    spec.attribute("oiio:UnassociatedAlpha", 1)  # stored as given: straight colour
    out = oiio.ImageOutput.create(png)
    assert out.open(png, spec) and out.write_image(np.dstack([rgb, alpha]))
    out.close()
    seq = dict(sequences, plate=str(sequences["folder"] / "straight.####.png"))
    node = make_graph(fake_nuke, seq, weights=str(small_bundle.path))
    node["colour"].setValue("linear")
    node["frame_range"].setValue("custom")
    node["first_frame"].setValue(FRAMES[0])
    node["last_frame"].setValue(FRAMES[0])
    result = compute.compute(node)
    assert result.ok, result.errors
    nodes_pixels, names = _frames_of(node)[FRAMES[0]]
    command_line = str(tmp_path / "cli.####.exr")
    assert cli.main(["matte", "--plate", seq["plate"], "--trimap", seq["trimap"], "--out", command_line,
                     "--frames", str(FRAMES[0]), "--weights", str(small_bundle.path), "--colour", "linear",
                     "--no-progress"]) == 0
    pixels, cli_names = read_exr(command_line.replace("####", f"{FRAMES[0]:04d}"))
    assert cli_names == names
    np.testing.assert_array_equal(pixels, nodes_pixels)
    fg = pixels[:, :, [names.index("fg." + c) for c in "RGB"]]
    fg_known = make_trimap(h, w, 0) == 1.0
    assert (fg_known & (alpha[..., 0] < 255)).any()
    np.testing.assert_allclose(fg[fg_known], rgb[fg_known] / 255.0, atol=1e-3)  # the stored colour, half float


def test_rough_matte_reaches_the_tool_as_edge_and_its_trimap_can_be_shown(fake_nuke, lbs_env, sequences):
    from core.trimap import trimap_from_matte

    node = make_graph(fake_nuke, sequences)
    plain = compute.compute(node)
    command = cli_calls(lbs_env)[-1]
    assert "--edge" not in command
    assert command[command.index("--write-trimap") + 1] == cache.trimap_pattern(plain.job.folder)
    node["trimap_input"].setValue("rough matte")
    node["edge_width"].setValue(3)
    rough = compute.compute(node)
    assert rough.ok and rough.job.key != plain.job.key
    command = cli_calls(lbs_env)[-1]
    assert command[command.index("--edge") + 1] == "3"
    node["edge_width"].setValue(5)
    assert compute.prepare(node).key != rough.job.key  # the width is part of the key
    node["edge_width"].setValue(3)
    assert compute.compute(node).computed == []  # back to 3: a cache hit
    # 'show trimap': the gizmo outputs the trimap the tool made, the core's band by construction
    node["show_trimap"].setValue(True)
    shown = node._image(1001)
    baked, names = read_exr(cache.frame_path(sequences["trimap"], 1001))
    expected = trimap_from_matte(baked, 3, channels=names)
    np.testing.assert_array_equal(shown.pixels[:, :, shown.channels.index("rgba.red")], expected)
    assert (expected == 0.5).any()
    # A changed edge width makes the result stale: the trimap shown is stale with it, and shows
    # the same red error as the matte instead of the old band.
    node["edge_width"].setValue(6)
    lbs_node.check_current_frame(node)
    assert node["status"].value().startswith("STALE")
    with pytest.raises(RuntimeError, match="STALE - LBSMatte1: settings changed since Compute"):
        node._image(1001)
    node["edge_width"].setValue(3)  # back: current again, the trimap shown again
    lbs_node.check_current_frame(node)
    np.testing.assert_array_equal(node._image(1001).pixels[:, :, shown.channels.index("rgba.red")], expected)


def test_bad_edge_width_is_a_node_error(fake_nuke, lbs_env, sequences):
    from nuke_plugin.errors import NodeError

    node = make_graph(fake_nuke, sequences)
    node["edge_width"].setValue(0)
    compute.prepare(node)  # not used with a trimap: no error
    node["trimap_input"].setValue("rough matte")
    with pytest.raises(NodeError, match=r"edge width must be a whole number of pixels > 0.*not 0"):
        compute.prepare(node)


def test_a_shot_at_negative_frames_computes(fake_nuke, lbs_env, sequences, tmp_path):
    """Frames before 0 (a pre-roll): the range reaches the tool as one argument and reads back."""
    import shutil

    folder = tmp_path / "neg"
    folder.mkdir()
    for source, target in ((1001, -2), (1002, -1), (1003, 0)):
        for name in ("plate", "trimap"):
            shutil.copy(cache.frame_path(sequences[name], source), cache.frame_path(str(folder / (name + ".####.exr")), target))
    seq = {"plate": str(folder / "plate.####.exr"), "trimap": str(folder / "trimap.####.exr")}
    node = make_graph(fake_nuke, seq, first=-2, last=0)
    result = compute.compute(node)
    assert result.ok, result.errors
    assert _frames_arg(cli_calls(lbs_env)[0]) == "-2-0"
    assert sorted(_frames_of(node)) == [-2, -1, 0]


def test_clear_cache_keeps_a_folder_another_node_shows(fake_nuke, lbs_env, sequences):
    # Two nodes on the same plate and trimap with the same settings share one key folder (so does a
    # copy pasted from a computed node): Clear cache on one must not take the other's result away.
    first = make_graph(fake_nuke, sequences)
    second = fake_nuke.createNode("LBSMatte", inpanel=False)
    second.setInput(0, first.input(0))
    second.setInput(1, first.input(1))
    second["weights"].setValue("testbundle")
    one, two = compute.compute(first), compute.compute(second)
    assert one.job.key == two.job.key and two.computed == []
    buttons.clear_cache_pressed(first)
    assert os.path.isfile(cache.frame_path(two.job.out_pattern, 1001))
    assert first.node("Result")["disable"].value() is True and first["result_file"].value() == ""
    assert first["status"].value() == "result switched off; its cache is kept: LBSMatte2 shows it too"
    assert "fg.red" in second._image(1001).channels
    buttons.clear_cache_pressed(second)  # the last node showing it: deleted
    assert not os.path.exists(two.job.folder) and second["status"].value() == "cache cleared"


def test_clear_cache_deletes_only_a_folder_lbsmatte_made(fake_nuke, lbs_env, sequences, tmp_path):
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    user = tmp_path / "renders" / "0123456789abcdef"  # a key-like name, not made by LBSMatte
    user.mkdir(parents=True)
    (user / "comp.0001.exr").write_text("the artist's render")
    node["result_file"].setValue(str(user / "lbsmatte.####.exr"))
    buttons.clear_cache_pressed(node)
    assert (user / "comp.0001.exr").exists() and node["status"].value() == "nothing cached"


def test_clear_cache_while_computing_is_refused(fake_nuke, lbs_env, sequences, monkeypatch):
    # A retry of a failed frame writes into the folder the node shows: Clear cache would delete
    # it under the running core (and its record with it).
    monkeypatch.setattr(fake_nuke, "GUI", True)
    monkeypatch.setenv("FAKE_CLI_FAIL_FRAMES", "1002")
    node = make_graph(fake_nuke, sequences)
    first = compute.compute(node)
    assert first.missing == [1002] and node["result_ready"].value()
    monkeypatch.delenv("FAKE_CLI_FAIL_FRAMES")
    monkeypatch.setenv("FAKE_CLI_SLEEP", "0.5")
    node["compute"].execute()
    node["clear_cache"].execute()
    assert "LBSMatte1 is computing: cancel it" in fake_nuke._messages[-1]
    assert "Traceback" not in fake_nuke._messages[-1]
    for worker in [t for t in threading.enumerate() if t.name.startswith("LBSMatte")]:
        worker.join(30)
    fake_nuke._run_main_queue()
    assert os.path.isfile(cache.frame_path(first.job.out_pattern, 1002))
    assert "ready" in node["status"].value() and sorted(_frames_of(node)) == [1001, 1002, 1003]
    node["clear_cache"].execute()  # done computing: cleared
    assert node["status"].value() == "cache cleared" and not os.path.exists(first.job.folder)


def _small_trimaps(sequences, frames):
    from fake_nuke.fixtures import make_trimap, write_exr

    for frame in frames:  # half the plate's size
        t = make_trimap(12, 16)
        write_exr(cache.frame_path(sequences["trimap"], frame), np.stack([t, t, t, t], axis=2), ["R", "G", "B", "A"])


def test_a_trimap_of_another_format_is_a_message_naming_the_inputs(fake_nuke, lbs_env, sequences, monkeypatch):
    monkeypatch.setattr(fake_nuke, "GUI", True)
    _small_trimaps(sequences, (1001, 1002, 1003))
    node = make_graph(fake_nuke, sequences)
    node["compute"].execute()
    assert fake_nuke._messages[-1] == ("LBSMatte: LBSMatte1: the trimap (Read2) is 16x12 but the plate (Read1) is 32x24: "
                                       "reformat the trimap to the plate's format")
    assert node["status"].value().startswith("ERROR: LBSMatte1: the trimap (Read2) is 16x12")
    assert not [c for c in cli_calls(lbs_env) if "matte" in c]  # the core is not run for nothing
    assert os.listdir(os.path.join(lbs_env["cache"], ".bake")) == []


def test_one_frame_of_another_format_fails_alone(fake_nuke, lbs_env, sequences):
    _small_trimaps(sequences, (1002,))
    node = make_graph(fake_nuke, sequences)
    result = compute.compute(node)
    assert result.missing == [1002] and sorted(result.computed) == [1001, 1003]
    assert result.errors == ["frame 1002: the trimap (Read2) is 16x12 but the plate (Read1) is 32x24: reformat the "
                             "trimap to the plate's format"]


# -- animated setting knobs ----------------------------------------------------------------------------
def test_a_setting_keyed_to_change_within_the_range_is_refused_before_anything_runs(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    node["trimap_input"].setValue("rough matte")
    fake_nuke.frame(1001)
    node["edge_width"].setAnimated()  # a key of 8 at 1001 ...
    node["edge_width"].setValueAt(20, 1003)  # ... and 20 at 1003: the roto's edge grows
    with pytest.raises(NodeError) as caught:
        compute.compute(node)
    assert str(caught.value) == (
        "LBSMatte1: the edge width knob is animated (8 at frame 1001, 14 at frame 1002) but one Compute uses one "
        "value for every frame: remove its keyframes or expression, or give each part of the range its own "
        "LBSMatte node with a custom frame range")
    assert cli_calls(lbs_env) == []  # not even the fingerprint: nothing baked, nothing keyed
    assert node["result_ready"].value() is False


def test_a_menu_driven_by_a_frame_expression_is_refused_naming_its_entries(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    node["frame_range"].setValue("custom")
    node["first_frame"].setValue(0)
    node["last_frame"].setValue(1)
    node["premultiply"].setExpression("frame")  # off at 0, on from 1
    node["device"].setExpression("frame")  # auto at 0, cpu at 1
    with pytest.raises(NodeError, match=r"^LBSMatte1: the device knob is animated \(auto at frame 0, cpu at frame 1\)"):
        compute.compute(node)


def test_a_setting_animated_to_one_value_over_the_range_is_read_there_not_at_the_current_frame(
        fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    node["trimap_input"].setValue("rough matte")
    fake_nuke.frame(1001)
    node["edge_width"].setAnimated()
    node["edge_width"].setValue(12)  # a key at 1001
    node["edge_width"].setValueAt(12, 1003)
    node["edge_width"].setValueAt(30, 1)  # the animation before the shot starts
    fake_nuke.frame(1)  # the timeline is parked outside the range
    assert compute.compute(node).ok
    command = [c for c in cli_calls(lbs_env) if "matte" in c][-1]
    assert command[command.index("--edge") + 1] == "12"
    assert fake_nuke.frame() == 1  # put back
    assert lbs_node.find_stale(node) == ("", [])


def test_the_menus_that_decide_what_takes_part_are_read_at_the_range_not_the_current_frame(
        fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)  # 1001-1003
    fake_nuke.frame(1001)
    node["trimap_input"].setValue("rough matte")
    node["trimap_input"].setAnimated()  # a rough matte over the shot ...
    node["trimap_input"].setValueAt(node["trimap_input"].values().index("trimap"), 1)  # ... a trimap before it
    node["edge_width"].setAnimated()  # a key of 8 at 1001 ...
    node["edge_width"].setValueAt(20, 1003)  # ... and 20 at 1003: in use over the whole range
    fake_nuke.frame(1)  # the timeline is parked where the edge width takes no part
    with pytest.raises(NodeError, match=r"^LBSMatte1: the edge width knob is animated \(8 at frame 1001, 14 at frame 1002\)"):
        compute.compute(node)
    assert cli_calls(lbs_env) == []
    node["edge_width"].setValueAt(8, 1003)  # constant over the range: computed, and current wherever the timeline is
    assert compute.compute(node).ok
    assert lbs_node.find_stale(node) == ("", [])
    node["edge_width"].setValueAt(9, 1001)  # edited at the range's first frame: stale, seen from frame 1 too
    assert lbs_node.find_stale(node)[0] == "settings changed since Compute"


def test_compute_in_proxy_mode_is_refused_and_leaves_the_shown_result_alone(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    key, calls = node["result_key"].value(), len(cli_calls(lbs_env))
    fake_nuke.root()["proxy"].setValue(True)  # the artist works at half resolution (Ctrl/Cmd+P)
    with pytest.raises(NodeError) as caught:
        compute.compute(node)
    assert str(caught.value) == (
        "LBSMatte1: proxy mode is on, and Nuke would bake plate and trimap at the proxy scale: turn proxy mode off "
        "(Ctrl/Cmd+P) and press Compute; the result then shows in proxy mode too")
    assert len(cli_calls(lbs_env)) == calls and node["result_key"].value() == key and node["result_ready"].value()
    assert os.listdir(os.path.join(lbs_env["cache"], ".bake")) == []


def test_an_animated_edge_width_that_takes_no_part_is_not_refused(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)  # trimap input: a trimap, so the edge width is not used
    node["edge_width"].setExpression("frame")
    assert compute.compute(node).ok
    assert lbs_node.find_stale(node) == ("", [])


def test_a_still_held_over_the_range_is_computed_once(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    for index in (0, 1):  # one plate and one trimap frame, held (a Read holds before and after its range)
        node.input(index)["first"].setValue(1001)
        node.input(index)["last"].setValue(1001)
    node["frame_range"].setValue("custom")
    node["first_frame"].setValue(1001)
    node["last_frame"].setValue(1003)
    result = compute.compute(node)
    assert result.ok and result.computed == [1001, 1002, 1003]
    mattes = [c for c in cli_calls(lbs_env) if "matte" in c]
    assert len(mattes) == 1 and "--frames=1001" in mattes[0]  # not three times the same frame
    folder = result.job.folder
    for frame in (1002, 1003):
        for pattern in (cache.result_pattern(folder), cache.trimap_pattern(folder)):
            with open(cache.frame_path(pattern, frame), "rb") as copy, open(cache.frame_path(pattern, 1001), "rb") as one:
                assert copy.read() == one.read()
    assert node["status"].value().startswith("1001-1003 ready at ") and ": 3 computed, 0 cached" in node["status"].value()
def test_a_bake_folder_a_full_cache_disk_cannot_hold_is_named(fake_nuke, lbs_env, sequences, monkeypatch):
    # The disk is full before the bake: its folder cannot be made (a folder takes a block too).
    import errno

    node = make_graph(fake_nuke, sequences)
    makedirs = os.makedirs

    def full(path, *args, **kwargs):
        if os.sep + cache.BAKE_FOLDER + os.sep in os.fspath(path):
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(path))
        return makedirs(path, *args, **kwargs)

    monkeypatch.setattr(cache.os, "makedirs", full)
    bake = os.path.join(lbs_env["cache"], cache.BAKE_FOLDER)
    with pytest.raises(NodeError) as caught:
        compute.prepare(node)
    assert str(caught.value) == (f"LBSMatte1: cannot write {bake}: No space left on device; make room there (or set "
                                 "the cache folder knob, or LBSMATTE_CACHE, to a folder with space) and press "
                                 "Compute again")
    assert not [c for c in cli_calls(lbs_env) if "matte" in c]


def test_a_held_frame_that_cannot_be_copied_on_a_full_disk_names_the_file_and_the_cause(
        fake_nuke, lbs_env, sequences, monkeypatch):
    # A still held over 1001-1003 on a share that refuses hard links: 1002 and 1003 are copies of
    # 1001's result. The disk filled while copying: the status said "FAILED ...; frames missing" and
    # the farm's log "2 of 3 frames not computed", naming neither the file nor the cause.
    import errno
    import shutil

    node = make_graph(fake_nuke, sequences)
    for index in (0, 1):
        node.input(index)["first"].setValue(1001)
        node.input(index)["last"].setValue(1001)
    node["frame_range"].setValue("custom")
    node["first_frame"].setValue(1001)
    node["last_frame"].setValue(1003)

    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    def full(source, target, *args, **kwargs):
        with open(target, "wb") as handle:  # a part of the file fits
            handle.write(b"\x76\x2f\x31\x01")
        raise OSError(errno.ENOSPC, "No space left on device")

    copyfile = shutil.copyfile
    monkeypatch.setattr(cache.os, "link", no_links)
    monkeypatch.setattr(cache.shutil, "copyfile", full)
    result = compute.compute(node)
    monkeypatch.setattr(cache.shutil, "copyfile", copyfile)
    assert not result.ok and result.computed == [1001] and result.missing == [1002, 1003]
    folder = result.job.folder
    said = [f"frame {f}: cannot write {cache.frame_path(cache.trimap_pattern(folder), f)}: No space left on device "
            "(the result of frame 1001, whose inputs it holds)" for f in (1002, 1003)]
    assert result.errors == said
    assert f"1 of 3 frames ready; {said[0]}" in node["status"].value()  # then the warning: frames past the Read's
    assert sorted(os.listdir(folder)) == sorted([cache.RECORD_NAME, os.path.basename(
        cache.frame_path(cache.result_pattern(folder), 1001)), os.path.basename(
        cache.frame_path(cache.trimap_pattern(folder), 1001))])  # no half copy, no temporary file

    again = compute.compute(node)  # room again
    assert again.ok and again.computed == [1002, 1003], again.errors


def test_the_plate_is_baked_with_values_beyond_half_float_as_they_are(fake_nuke, lbs_env, sequences):
    # A linear highlight of 1e5 (or a value past the core's ±1e16 solve limit) reaches the core as
    # it is, which keeps, clamps and warns by its own rules; baked in half it would be inf, a
    # "broken" pixel the core sanitises to the frame's largest finite value.
    from fake_nuke.fixtures import SIZE, write_exr

    plate = np.full(SIZE + (3,), 0.5, np.float32)
    plate[0, 0], plate[1, 1], plate[2, 2] = 1e5, -1e5, 1e20
    write_exr(str(sequences["folder"] / "hot.1001.exr"), plate, ["R", "G", "B"], half=False)
    node = make_graph(fake_nuke, dict(sequences, plate=str(sequences["folder"] / "hot.####.exr")), last=1001)
    job = compute.prepare(node, frames=(1001, 1001))
    try:
        baked, _ = read_exr(cache.frame_path(job.plate, 1001))
    finally:
        cache.remove_folder(job.bake_dir)
    np.testing.assert_array_equal(baked, plate)


def test_a_frame_computed_after_running_out_of_gpu_memory_is_not_served_as_the_keys_result(
        fake_nuke, lbs_env, sequences, monkeypatch):
    # Out of GPU memory, the core ran frame 1002's networks in smaller tiles, which changes their
    # output: shown (with the core's warning), but a later Compute computes it again rather than
    # serve it as what the settings give, and a longer range never copies it into its folder.
    monkeypatch.setenv("FAKE_CLI_DEGRADED_FRAMES", "1002")
    node = make_graph(fake_nuke, sequences)
    first = compute.compute(node, frames=(1001, 1002))
    assert first.ok and sorted(first.computed) == [1001, 1002]
    assert "WARNING: frame 1002: the networks ran in tiles of 2048 px" in node["status"].value()
    assert cache.degraded_frames(first.job.folder, [1001, 1002]) == {
        1002: "networks in tiles of 2048 px, not 4096 (out of GPU memory)"}

    monkeypatch.delenv("FAKE_CLI_DEGRADED_FRAMES")  # memory to spare now
    again = compute.compute(node, frames=(1001, 1002))
    assert again.ok and again.job.key == first.job.key and again.job.redo == [1002]
    assert again.job.cached == [1001] and again.computed == [1002]
    assert _frames_arg(cli_calls(lbs_env)[-1]) == "1002"
    assert cache.degraded_frames(first.job.folder, [1001, 1002]) == {}
    assert compute.compute(node, frames=(1001, 1002)).computed == []  # computed as asked: cached now

    cache.remove_folder(first.job.folder)
    monkeypatch.setenv("FAKE_CLI_DEGRADED_FRAMES", "1001")
    alone = compute.compute(node, frames=(1001, 1001))  # 1001 alone, degraded, in a folder of its own
    assert alone.computed == [1001] and cache.degraded_frames(alone.job.folder, [1001])
    monkeypatch.delenv("FAKE_CLI_DEGRADED_FRAMES")
    longer = compute.compute(node, frames=(1001, 1003))
    assert longer.job.reused == [] and sorted(longer.computed) == [1001, 1002, 1003]


def test_an_unexpected_error_is_on_the_nodes_status_too(fake_nuke, lbs_env, sequences, monkeypatch):
    # A bug while Compute writes the cache's record: the message box shows the traceback,
    # and the status line no longer says the result from before is ready.
    monkeypatch.setattr(fake_nuke, "GUI", True)
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok and "ready" in node["status"].value()

    def broken(*args, **kwargs):
        raise KeyError("settings")

    monkeypatch.setattr(cache, "write_record", broken)
    node["rounds"].setValue(0)
    node["compute"].execute()
    assert "Traceback" in fake_nuke._messages[-1]
    assert node["status"].value() == "ERROR: KeyError: 'settings' (Troubleshoot checks the installation)"


@pytest.mark.parametrize("errno_, text", [(28, "No space left on device"), (122, "Disk quota exceeded")])
def test_a_full_cache_disk_is_a_message_naming_the_record_and_the_cause(
        fake_nuke, lbs_env, sequences, monkeypatch, errno_, text):
    # The cache's share is full (or the show's quota is reached) as Compute writes the record of
    # a new key: the artist read "unexpected error (Troubleshoot checks the installation)" and a
    # traceback that named no file. Now: the record's path, the cause and the way out, on the node
    # and in the message; the earlier result's record untouched, no temporary file left.
    monkeypatch.setattr(fake_nuke, "GUI", True)
    node = make_graph(fake_nuke, sequences)
    first = compute.compute(node)
    assert first.ok
    record = os.path.join(first.job.folder, cache.RECORD_NAME)
    with open(record, "rb") as handle:
        before = handle.read()
    fill_cache_disk(monkeypatch, lbs_env["cache"], errno_, text)
    node["rounds"].setValue(0)  # another key: a new folder and record
    node["compute"].execute()
    message = fake_nuke._messages[-1]
    assert "Traceback" not in message and "Troubleshoot" not in message
    status = node["status"].value()
    assert status.startswith(f"ERROR: LBSMatte1: cannot write {lbs_env['cache']}"), status
    assert status.endswith(f"lbsmatte.json: {text}; make room there (or set the cache folder knob, or LBSMATTE_CACHE, "
                           "to a folder with space) and press Compute again"), status
    with open(record, "rb") as handle:
        assert handle.read() == before
    left = [name for _, _, names in os.walk(lbs_env["cache"]) for name in names if name.endswith(".tmp")]
    assert left == []
    assert not os.listdir(os.path.join(lbs_env["cache"], cache.BAKE_FOLDER))  # baked inputs removed


def test_a_setting_that_changes_over_the_range_is_refused_naming_it_and_the_frames(fake_nuke, lbs_env, sequences):
    # edge width = {{frame}}: the tool would have run the whole range with the current frame's value.
    node = make_graph(fake_nuke, sequences)
    node["trimap_input"].setValue("rough matte")
    node["edge_width"].setExpression("frame")
    with pytest.raises(NodeError, match=r"^LBSMatte1: the edge width knob is animated \(1001 at frame 1001, "
                                        r"1002 at frame 1002\) but one Compute uses one value for every frame"):
        compute.prepare(node)
    assert cli_calls(lbs_env) == []
    assert compute.compute(node, frames=(1003, 1003)).ok  # one frame, one value
    assert "--edge" in cli_calls(lbs_env)[-1] and cli_calls(lbs_env)[-1][cli_calls(lbs_env)[-1].index("--edge") + 1] \
        == "1003"
    node["trimap_input"].setValue("trimap")  # then the edge width takes no part
    controls = fake_nuke.createNode("Grade", inpanel=False)
    node["rounds"].setExpression(f"{controls.name()}.white")  # an expression, but the same at every frame
    assert compute.compute(node).ok
    assert cli_calls(lbs_env)[-1][cli_calls(lbs_env)[-1].index("--rounds") + 1] == "1"


def test_a_setting_that_changes_only_at_the_last_frame_is_refused(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)  # 1001-1003
    fake_nuke.frame(1001)
    node["rounds"].setAnimated()
    node["rounds"].setValueAt(1, 1001)
    node["rounds"].setValueAt(1, 1002)
    node["rounds"].setValueAt(2, 1003)
    with pytest.raises(NodeError, match=r"^LBSMatte1: the .* knob is animated \(1 at frame 1001, 2 at frame 1003\)"):
        compute.prepare(node)
    assert cli_calls(lbs_env) == []


def test_an_ocio_colourspace_that_takes_no_part_leaves_the_result_current(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)  # colour: not ocio, so the colourspace knob is not used
    assert node["colour"].value() != "ocio"
    assert compute.compute(node).ok
    node["ocio_colourspace"].setValue("ACES - ACEScg")
    assert lbs_node.find_stale(node) == ("", [])


def test_a_cache_folder_another_session_makes_first_is_no_failure(fake_nuke, lbs_env, sequences, monkeypatch):
    """Two artists (or a farm task and an artist) Computing one node of a shared script: both find
    the cache folder and the key's folder missing, and the other makes each first, between this
    session's look and its own mkdir. That is no failure: no 'not writable: File exists', no
    FileExistsError traceback."""
    import shutil

    from nuke_plugin import troubleshoot

    shutil.rmtree(lbs_env["cache"], ignore_errors=True)
    real_makedirs = os.makedirs
    beaten = []

    def the_other_session_first(path, *args, **kwargs):
        name = os.path.basename(os.path.normpath(path))
        if os.path.normpath(path) == os.path.normpath(lbs_env["cache"]) or len(name) == cache.KEY_LENGTH:
            if not os.path.isdir(path):
                real_makedirs(path)
                beaten.append(name)
        return real_makedirs(path, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", the_other_session_first)
    result = compute.compute(make_graph(fake_nuke, sequences), reporter=PrintReporter())
    assert result.ok and sorted(result.computed) == [1001, 1002, 1003]
    assert beaten == ["cache", result.job.key]
    shutil.rmtree(lbs_env["cache"])
    assert troubleshoot.check_cache(lbs_env["cache"]).status in (troubleshoot.OK, troubleshoot.WARN)


def test_a_frame_another_session_was_computing_is_no_failure_once_it_is_there(fake_nuke, lbs_env, sequences,
                                                                              monkeypatch, capsys):
    """Two sessions computing one key (two artists, or the farm's batch.py and an artist): each core
    run fails the frame the other holds the lock of, and the two overtake each other frame by frame,
    so both Computes ended FAILED (a popup in the GUI, exit 1 on the farm) with every frame there.
    A frame the other session has written by the end is no failure; one it has not is."""
    monkeypatch.setenv("FAKE_CLI_BUSY_FRAMES", "1002")
    node = make_graph(fake_nuke, sequences)
    result = compute.compute(node, reporter=PrintReporter())
    out = capsys.readouterr().out
    assert result.ok and result.errors == [] and sorted(result.computed) == [1001, 1002, 1003], result.errors
    assert "ERROR" not in out and "LBSMATTE 1 frame(s) computed by another session at the same time: 1002" in out
    assert "ready" in node["status"].value()

    compute.clear_cache(node)
    monkeypatch.setenv("FAKE_CLI_BUSY_FRAMES", "")
    monkeypatch.setenv("FAKE_CLI_BUSY_UNFINISHED", "1002")  # the other session is still on it
    result = compute.compute(node, reporter=PrintReporter())
    out = capsys.readouterr().out
    assert not result.ok and result.missing == [1002]
    assert [e.split(" is ")[0] for e in result.errors] == ["frame 1002: " + cache.frame_path(result.job.out_pattern,
                                                                                               1002),
                                                           "1 of 3 frame(s) failed: 1002"]
    assert "being written by another lbsmatte run (pid 4242 on farm07" in node["status"].value()
    assert "ERROR: 1 of 3 frame(s) failed: 1002" in out

    compute.clear_cache(node)
    monkeypatch.setenv("FAKE_CLI_BUSY_UNFINISHED", "")
    monkeypatch.setenv("FAKE_CLI_BUSY_FRAMES", "1001")
    monkeypatch.setenv("FAKE_CLI_FAIL_FRAMES", "1003")  # a failure of its own is one still
    result = compute.compute(node, reporter=PrintReporter())
    assert not result.ok and result.missing == [1003]
    assert [e.split(":")[0] for e in result.errors] == ["frame 1003", "2 of 3 frame(s) failed"]


def test_the_words_of_a_frame_another_run_holds_are_the_cores(tmp_path):
    # nuke_plugin cannot import core: the core's lock message, as core.cli prints it for a frame,
    # and its last line when frames failed (tests/test_cli_safety.py holds that one to the core).
    from core.errors import OutputError
    from core.io import lock_output

    out = tmp_path / "lbsmatte.1002.exr"
    with lock_output(out):
        with pytest.raises(OutputError) as caught:
            with lock_output(out):
                pass
    assert compute._busy_frame(f"frame 1002: {caught.value}") == 1002
    assert compute._busy_frame("frame 1002: the plate is truncated") is None
    assert compute._FAILED_SUMMARY.match("1 of 3 frame(s) failed: 1002").group(1) == "1002"


def test_a_warning_reaches_the_artist_when_another_frame_fails(fake_nuke, lbs_env, sequences, monkeypatch):
    # A Roto that exists on 1001 only (the tool warns that the other frames' trimap is empty) and a
    # plate frame missing on 1002: the Compute fails, and the warning must still be on the node and
    # in the message, not only in a log the artist never sees.
    monkeypatch.setattr(fake_nuke, "GUI", True)
    monkeypatch.setenv("FAKE_CLI_WARN_FRAMES", "1001,1003")
    monkeypatch.setenv("FAKE_CLI_FAIL_FRAMES", "1002")
    node = make_graph(fake_nuke, sequences)
    node["compute"].execute()
    worker = [t for t in threading.enumerate() if t.name.startswith("LBSMatte")][0]
    worker.join(30)
    fake_nuke._run_main_queue()
    status = node["status"].value()
    assert status.startswith("FAILED") and "2 of 3" in status
    assert "; WARNING: frame 1001: trimap " in status and status.endswith("(and 1 more)")
    assert "WARNING: frame 1001: trimap " in fake_nuke._messages[-1]


def test_trimap_channel_alpha_on_a_trimap_without_alpha_names_the_input_and_the_way_out(fake_nuke, lbs_env,
                                                                                          sequences, monkeypatch):
    # A painted RGB trimap (no alpha) with the trimap channel menu left at 'alpha' from a Roto before it.
    monkeypatch.setattr(fake_nuke, "GUI", True)
    for frame in range(1001, 1004):
        path = cache.frame_path(sequences["trimap"], frame)
        pixels, _ = read_exr(path)
        write_exr(path, pixels[:, :, :3], ["R", "G", "B"])
    node = make_graph(fake_nuke, sequences)
    node["trimap_channel"].setValue("alpha")
    node["compute"].execute()
    message = fake_nuke._messages[-1]
    assert "Traceback" not in message
    assert ("trimap channel is 'alpha' but the trimap input (Read2) has no alpha channel: set trimap channel to "
            "auto or red") in message
    assert node["status"].value().startswith("ERROR: LBSMatte1: trimap channel is 'alpha'")
    assert not [c for c in cli_calls(lbs_env) if "matte" in c]


def _rewrite_frames(pattern, channels, pick):
    """Rewrite each frame of ``pattern`` with ``pick(pixels)`` as the channels ``channels``."""
    for frame in range(1001, 1004):
        path = cache.frame_path(pattern, frame)
        pixels, _ = read_exr(path)
        write_exr(path, pick(pixels), channels)


@pytest.mark.parametrize("channels, setting", [
    (["mask.A"], "auto"),                                 # a Roto output to a mask layer
    (["trimap.R", "trimap.G", "trimap.B"], "auto"),       # a trimap in a layer of a multi-layer EXR
    (["trimap.R", "trimap.G", "trimap.B"], "red"),
    (["trimap.R", "trimap.G", "trimap.B"], "luminance"),
])
def test_a_trimap_in_another_layer_than_rgba_is_refused_naming_its_channels(fake_nuke, lbs_env, sequences,
                                                                            monkeypatch, channels, setting):
    # The bake Write took rgba from it: black, a trimap all background, matted without a word of why.
    monkeypatch.setattr(fake_nuke, "GUI", True)
    _rewrite_frames(sequences["trimap"], channels, lambda p: p[:, :, 3:] if len(channels) == 1 else p[:, :, :3])
    node = make_graph(fake_nuke, sequences)
    node["trimap_channel"].setValue(setting)
    node["compute"].execute()
    message = fake_nuke._messages[-1]
    assert "Traceback" not in message
    assert f"trimap channel is '{setting}'" in message and "the trimap input (Read2) has none of them" in message
    assert "its channels: " + ", ".join(fake_nuke._nuke_channel(c) for c in channels) in message
    others = ", ".join(fake_nuke._nuke_channel(c) for c in channels)
    assert f"Set trimap from (next to trimap channel) to the channel that holds the trimap (one of {others})" \
        in message
    assert node["status"].value().startswith("ERROR: LBSMatte1: trimap channel")
    assert not [c for c in cli_calls(lbs_env) if "matte" in c]
    assert not os.listdir(os.path.join(lbs_env["cache"], cache.BAKE_FOLDER))  # nothing left baked


@pytest.mark.parametrize("channels, pick, picked", [
    (["mask.A"], lambda p: p[:, :, 3:], "mask.alpha"),                              # a Roto output to a mask layer
    (["R", "G", "B", "trimap.R"], lambda p: np.concatenate([p[:, :, :3] * 0.0, p[:, :, :1]], axis=2),
     "trimap.red"),                                                                  # beside a black rgb
])
def test_trimap_from_reads_a_trimap_in_another_layer(fake_nuke, lbs_env, sequences, channels, pick, picked):
    # Refused until now, with a Shuffle to add by hand: trimap from picks the channel, and the bake
    # copies it into the trimap's alpha (a temporary Copy, gone afterwards), which the tool reads.
    node = make_graph(fake_nuke, sequences)
    expected = compute.compute(node)
    assert expected.ok
    wanted = dict((f, pixels[:, :, names.index("A")]) for f, (pixels, names) in _frames_of(node).items())
    _rewrite_frames(sequences["trimap"], channels, pick)
    node.input(1)["reload"].execute()
    assert node["trimap_from"].value() == "none"
    node["trimap_from"].setValue(picked)
    result = compute.compute(node)
    assert result.ok and result.job.key != expected.job.key
    assert cli_calls(lbs_env)[-1][cli_calls(lbs_env)[-1].index("--trimap-channel") + 1] == "alpha"
    for frame, (pixels, names) in _frames_of(node).items():
        np.testing.assert_array_equal(pixels[:, :, names.index("A")], wanted[frame])
    assert not fake_nuke.allNodes("Copy") and not fake_nuke.allNodes("Write")
    assert not lbs_node.find_stale(node)[0]
    node["trimap_channel"].setValue("red")  # not used while trimap from picks a channel
    assert not lbs_node.find_stale(node)[0]
    node["trimap_from"].setValue("none")  # rgba again: the result is stale
    assert lbs_node.find_stale(node)[0] == "settings changed since Compute"


def test_trimap_from_a_channel_the_trimap_input_lacks_is_refused_naming_its_channels(fake_nuke, lbs_env, sequences):
    node = make_graph(fake_nuke, sequences)
    node["trimap_from"].setValue("mask.alpha")
    with pytest.raises(NodeError, match=r"trimap from is 'mask\.alpha', but the trimap input \(Read2\) has no such "
                                        r"channel \(its channels: rgba\.red, rgba\.green, rgba\.blue, rgba\.alpha\)"):
        compute.compute(node)
    assert not [c for c in cli_calls(lbs_env) if "matte" in c]
    assert not fake_nuke.allNodes("Copy")


def test_trimap_from_left_at_none_keeps_the_keys_and_records_of_earlier_results(fake_nuke, lbs_env, sequences):
    # Results computed before the knob existed stay current and keep their cache key.
    settings = cache.Settings(weights="w", bundle_sha256="ab" * 32, fingerprint="f")
    legacy = dict((name, getattr(settings, name)) for name in cache.Settings.FIELDS if name != "trimap_from")
    identity = {"version": cache.KEY_VERSION, "weights": "sha256:" + "ab" * 32, "device": None, "colour": "linear",
                "trimap_channel": "auto", "premultiply": True, "rounds": -1, "edge": None, "fingerprint": "f"}
    import hashlib
    import json

    assert settings.key() == hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    assert cache.Settings(trimap_from="mask.a", **legacy).key() != settings.key()
    node = make_graph(fake_nuke, sequences)
    before = lbs_node.settings_hash(node, legacy=True)
    hashed = lbs_node.settings_hash(node)
    node["trimap_from"].setValue("mask.alpha")
    assert lbs_node.settings_hash(node, legacy=True) != before and lbs_node.settings_hash(node) != hashed
    node["trimap_from"].setValue("none")
    assert (lbs_node.settings_hash(node, legacy=True), lbs_node.settings_hash(node)) == (before, hashed)


def test_trimap_channel_red_on_a_trimap_with_only_an_alpha_says_to_pick_alpha(fake_nuke, lbs_env, sequences):
    _rewrite_frames(sequences["trimap"], ["A"], lambda p: p[:, :, 3:])
    node = make_graph(fake_nuke, sequences)
    node["trimap_channel"].setValue("red")
    with pytest.raises(NodeError, match=r"trimap channel is 'red', which reads rgba\.red, but the trimap input "
                                        r"\(Read2\) has none of them \(its channels: rgba\.alpha\).*set trimap "
                                        r"channel to alpha \(or auto\)"):
        compute.compute(node)
    node["trimap_channel"].setValue("auto")  # the alpha it has: computed
    assert compute.compute(node).ok


def test_a_plate_with_no_colour_channel_is_refused_naming_the_input(fake_nuke, lbs_env, sequences):
    # A Roto (alpha only) wired into the plate input, the two inputs swapped: the bake wrote a black
    # plate, and a matte of nothing came back as a result.
    _rewrite_frames(sequences["plate"], ["A"], lambda p: p[:, :, :1])
    node = make_graph(fake_nuke, sequences)
    with pytest.raises(NodeError, match=r"the plate input \(Read1\) has no red, green or blue channel \(its "
                                        r"channels: rgba\.alpha\).*plate input \(input 0\)"):
        compute.compute(node)
    assert not [c for c in cli_calls(lbs_env) if "matte" in c]


def test_a_plate_whose_alpha_holds_the_trimap_is_matted_from_one_node_on_both_inputs(fake_nuke, lbs_env, sequences):
    from fake_nuke.fixtures import make_trimap

    _rewrite_frames(sequences["plate"], ["R", "G", "B", "A"],
                    lambda p: np.concatenate([p, make_trimap(*SIZE)[..., None]], axis=2))
    node = make_graph(fake_nuke, sequences)
    node.setInput(1, None)  # one input: the error says how to give it the plate's alpha
    with pytest.raises(NodeError, match=r"connect a trimap to input 1 \(a plate whose alpha holds the trimap: "
                                        r"connect the plate to the trimap input too\)"):
        compute.compute(node)
    node.setInput(1, node.input(0))
    assert compute.compute(node).ok
    for pixels, names in _frames_of(node).values():
        np.testing.assert_array_equal(pixels[:, :, names.index("A")],
                                      np.where(make_trimap(*SIZE) == 0.5, 0.5, make_trimap(*SIZE)))


def test_clear_cache_keeps_a_folder_another_node_is_computing_into(fake_nuke, lbs_env, sequences, monkeypatch):
    # A second node on the same plate and trimap with the same settings (made afresh, not a copy:
    # it shows no result yet) computes the frame the first node's Compute failed, into the folder
    # the first one shows. Clear cache on the first must not delete it under the running core.
    monkeypatch.setattr(fake_nuke, "GUI", True)
    monkeypatch.setenv("FAKE_CLI_FAIL_FRAMES", "1002")
    first = make_graph(fake_nuke, sequences)
    one = compute.compute(first)
    assert one.missing == [1002] and first["result_ready"].value()
    second = fake_nuke.createNode("LBSMatte", inpanel=False)
    second.setInput(0, first.input(0))
    second.setInput(1, first.input(1))
    second["weights"].setValue("testbundle")
    monkeypatch.delenv("FAKE_CLI_FAIL_FRAMES")
    monkeypatch.setenv("FAKE_CLI_SLEEP", "0.5")
    second["compute"].execute()
    first["clear_cache"].execute()
    assert os.path.isdir(one.job.folder)
    assert first["status"].value() == "result switched off; its cache is kept: LBSMatte2 is computing into it"
    assert first["result_ready"].value() is False
    for worker in [t for t in threading.enumerate() if t.name.startswith("LBSMatte")]:
        worker.join(30)
    fake_nuke._run_main_queue()
    assert "ready" in second["status"].value() and sorted(_frames_of(second)) == [1001, 1002, 1003]
    second["clear_cache"].execute()  # done computing, shown by no other node: deleted
    assert second["status"].value() == "cache cleared" and not os.path.exists(one.job.folder)


_SHOW_GIZMO = """version 15.1 v1
Gizmo {
 inputs 2
}
 Input {
  inputs 0
  name trimap
  number 1
 }
 Input {
  inputs 0
  name plate
 }
 LBSMatte {
  inputs 2
  weights testbundle
  name LBSMatte1
 }
 Output {
  name Output1
 }
end_group
"""


def test_compute_inside_a_gizmo_is_refused_before_anything_runs(fake_nuke, lbs_env, sequences, tmp_path):
    # A show's gizmo made of an LBSMatte node ('export as gizmo'): Nuke saves only the gizmo's own
    # knobs and rebuilds its inside from the .gizmo file when the script opens, so the inner node's
    # result (its hidden result knobs) would be gone after a save and reopen, and the farm's comp
    # render of a batch.py --save-as copy would have none. Said at Compute, with the way out.
    plugins = tmp_path / "show_plugins"
    plugins.mkdir()
    (plugins / "ShowKeyer.gizmo").write_text(_SHOW_GIZMO)
    fake_nuke.pluginAddPath(str(plugins))
    outer = make_graph(fake_nuke, sequences)
    keyer = fake_nuke.createNode("ShowKeyer", inpanel=False)
    keyer.setInput(0, outer.input(0))
    keyer.setInput(1, outer.input(1))
    inner = keyer.node("LBSMatte1")
    with pytest.raises(NodeError, match=r"^ShowKeyer1\.LBSMatte1 is inside the gizmo ShowKeyer1 "
                                        r"\(.*ShowKeyer\.gizmo\).*Group"):
        compute.prepare(inner)
    assert cli_calls(lbs_env) == [] and not os.path.exists(lbs_env["cache"])
    buttons.compute_pressed(inner)  # the button: a message and the status line, no traceback
    assert inner["status"].value().startswith("ERROR: ShowKeyer1.LBSMatte1 is inside the gizmo ShowKeyer1")
    # Inside a Group (its inside is saved with the script) it computes.
    group = fake_nuke.nodes.Group()
    with group:
        trimap, plate = fake_nuke.nodes.Input(name="trimap", number=1), fake_nuke.nodes.Input(name="plate")
        node = fake_nuke.nodes.LBSMatte(weights="testbundle")
        node.setInput(0, plate)
        node.setInput(1, trimap)
        fake_nuke.nodes.Output().setInput(0, node)
    group.setInput(0, outer.input(0))
    group.setInput(1, outer.input(1))
    assert compute.compute(node).ok


@pytest.mark.skipif(cache.fcntl is None, reason="key locks need flock (not on Windows)")
def test_clear_cache_keeps_a_folder_a_job_elsewhere_holds(fake_nuke, lbs_env, sequences):
    # A farm task or another artist's Nuke sharing the cache folder computes this key now (it holds
    # the key's lock, as compute's own claim does): Clear cache here must not delete it under that job.
    import fcntl

    node = make_graph(fake_nuke, sequences)
    result = compute.compute(node)
    assert result.ok
    lock = os.path.join(lbs_env["cache"], cache.LOCKS_FOLDER, result.job.key)
    with open(lock, "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_SH)
        buttons.clear_cache_pressed(node)
        assert os.path.isfile(cache.frame_path(result.job.out_pattern, 1001))
        assert node["status"].value() == "result switched off; its cache is kept: in use by a Compute or farm job"
    assert compute.compute(node).ok  # shown again, then cleared once the job has let go
    buttons.clear_cache_pressed(node)
    assert node["status"].value() == "cache cleared" and not os.path.exists(result.job.folder)


def test_clear_cache_keeps_a_folder_of_another_cache_folder(fake_nuke, lbs_env, sequences, monkeypatch, tmp_path):
    # A node copied from another show's script (its cache folder elsewhere) and pasted here shows
    # the result in that script's cache: Clear cache here must not delete it under that script's node.
    node = make_graph(fake_nuke, sequences)
    result = compute.compute(node)
    assert result.ok
    monkeypatch.setenv("LBSMATTE_CACHE", str(tmp_path / "this_show_cache"))  # the session the node is pasted into
    buttons.clear_cache_pressed(node)
    assert os.path.isfile(cache.frame_path(result.job.out_pattern, 1001))
    assert node["result_ready"].value() is False and node["result_file"].value() == ""
    assert node["status"].value() == (
        f"result switched off; its cache is kept: it is in the cache folder {lbs_env['cache']}, "
        f"not this node's ({tmp_path / 'this_show_cache'})")


def test_a_range_reaching_past_the_plates_frames_is_computed_with_a_warning_naming_them(fake_nuke, lbs_env, sequences):
    # A custom (or the script's) range past the plate's 1001-1003: its Reads hold their last frame
    # there, which is matted too, but the artist is told, not left with a held matte unawares.
    node = make_graph(fake_nuke, sequences)
    node["frame_range"].setValue("custom")
    node["first_frame"].setValue(1001)
    node["last_frame"].setValue(1005)
    result = compute.compute(node)
    warning = ("frame(s) 1004-1005 are outside the {}'s frame range 1001-1003 ({}): they are matted from "
               "what Nuke gives there (a Read holds its first or last frame, or gives black)")
    assert result.ok and result.warnings == [warning.format("plate", "Read1"), warning.format("trimap", "Read2")]
    assert node["status"].value().endswith("; WARNING: " + warning.format("plate", "Read1") + " (and 1 more)")
    node["first_frame"].setValue(1002)
    node["last_frame"].setValue(1003)
    assert compute.compute(node).warnings == []


@pytest.mark.parametrize("studio_default", ["DWAA", "DWAB"])
def test_a_studio_default_of_lossy_exr_compression_never_reaches_the_baked_inputs(fake_nuke, lbs_env, sequences,
                                                                                   tmp_path, studio_default):
    # A studio's menu.py often sets knobDefault("Write.exr.compression", "DWAA") to keep renders
    # small: the bake's Writes took it, and the tool matted a plate off by up to 2.6e-2 here.
    import OpenImageIO as oiio

    fake_nuke.knobDefault("Write.exr.compression", studio_default)
    node = make_graph(fake_nuke, sequences)
    folder = tmp_path / "bake"
    folder.mkdir()
    plate, trimap, failed = lbs_node.bake(node, str(folder), 1001, 1001)
    assert not failed
    for baked, source in ((plate, sequences["plate"]), (trimap, sequences["trimap"])):
        path = baked.replace("####", "1001")
        assert oiio.ImageInput.open(path).spec().get_string_attribute("compression") == "zips"
        pixels, names = read_exr(path)
        expected, source_names = read_exr(source.replace("####", "1001"))
        np.testing.assert_array_equal(pixels, expected[:, :, [source_names.index(n) for n in names]])


def test_frames_past_the_trimap_reads_range_are_computed_with_a_warning_naming_them(fake_nuke, lbs_env, sequences):
    # Roto delivered for part of the shot (or one trimap frame for a locked-off one): the trimap Read
    # holds its last frame for the plate's other frames. Those were matted with it without a word.
    node = make_graph(fake_nuke, sequences)
    trimap = node.input(1)
    trimap["last"].setValue(1001)
    result = compute.compute(node)
    warning = (f"frame(s) 1002-1003 are outside the trimap's frame range 1001-1001 ({trimap.name()}): they are "
               "matted from what Nuke gives there (a Read holds its first or last frame, or gives black)")
    assert result.ok and result.warnings == [warning]
    assert node["status"].value().endswith("; WARNING: " + warning)
    trimap["last"].setValue(1003)
    assert compute.compute(node).warnings == []
