"""``nuke_plugin.runner``: the command line, its output lines, exit codes and cancel."""

import os
import signal
import sys

import pytest

from nuke_plugin import runner


def test_command_spells_the_cli_contract():
    command = runner.matte_command("/py", "/b/plate.####.exr", "/b/trimap.####.exr", "/c/k/lbsmatte.####.exr",
                                   1001, 1100, "show_v1", device="cuda", colour="ACES - ACEScg",
                                   trimap_channel="alpha", premultiply=False, rounds=0)
    assert command == ["/py", "-m", "core.cli", "matte", "--plate", "/b/plate.####.exr",
                       "--trimap", "/b/trimap.####.exr", "--out", "/c/k/lbsmatte.####.exr",
                       "--frames=1001-1100", "--weights", "show_v1", "--device", "cuda",
                       "--colour", "ACES - ACEScg", "--trimap-channel", "alpha", "--rounds", "0",
                       "--unpremultiply"]
    default = runner.matte_command("p", "a", "b", "c", 1, 1, "default")
    # By default no --rounds: the tool takes the number the bundle records, as on the command line.
    assert "--unpremultiply" not in default and "--rounds" not in default
    assert runner.matte_command("p", "a", "b", "c", 1, 1, "default", rounds=2)[-2:] == ["--rounds", "2"]
    assert "--edge" not in default and "--write-trimap" not in default
    rough = runner.matte_command("p", "a", "b", "c", 1, 1, "default", edge=6, write_trimap="/c/k/t.####.exr")
    assert rough[-4:] == ["--edge", "6", "--write-trimap", "/c/k/t.####.exr"]


def test_negative_frames_reach_the_core_as_one_argument():
    """argparse reads ``--frames -5--1`` as two options (the value starts with "-"): the core's own
    parser must get the range."""
    from core.cli import build_parser

    command = runner.matte_command("p", "a.####.exr", "b.####.exr", "c.####.exr", -5, -1, "default")
    assert build_parser().parse_args(command[3:]).frames == "-5--1"
    command = runner.matte_command("p", "a.####.exr", "b.####.exr", "c.####.exr", -2, 3, "default")
    assert build_parser().parse_args(command[3:]).frames == "-2-3"


def test_frame_lists_put_runs_in_as_few_commands_as_fit():
    """Scattered missing frames are one ``--frames`` list (one core process, one start), split only
    where a list would outgrow a command line (Windows: 32767 characters), and the core reads it."""
    from core.cli import build_parser
    from core.io import parse_frames

    assert runner.frame_lists([(1001, 1003), (1007, 1007), (1010, 1012)]) == ["1001-1003,1007,1010-1012"]
    assert runner.frame_lists([]) == []
    assert runner.frame_lists([(1, 1), (3, 3), (5, 6)], limit=5) == ["1,3", "5-6"]
    scattered = [(f, f) for f in range(1001, 1001 + 2 * 2500, 2)]  # every other frame of a long shot: 2 lists
    lists = runner.frame_lists(scattered)
    assert all(len(text) <= runner.MAX_FRAMES_ARGUMENT for text in lists) and 1 < len(lists) < 20
    assert [f for text in lists for f in parse_frames(text)] == [f for f, _ in scattered]
    command = runner.matte_command("p", "a.####.exr", "b.####.exr", "c.####.exr", None, None, "default",
                                   frames=runner.frame_lists([(-5, -3), (-1, -1), (2, 2)])[0])
    frames = build_parser().parse_args(command[3:]).frames
    assert frames == "-5--3,-1,2" and parse_frames(frames) == [-5, -4, -3, -1, 2]


def test_parse_line():
    assert runner.parse_line("LBSMATTE PROGRESS 1001 1/100\n") == ("progress", 1001, 1, 100)
    assert runner.parse_line("LBSMATTE PROGRESS -5 2/3") == ("progress", -5, 2, 3)
    assert runner.parse_line("ERROR: frame 1002: plate.1002.exr is missing\r\n") == (
        "error", "frame 1002: plate.1002.exr is missing")
    assert runner.parse_line("LBSMATTE PROGRESS x 1/2") == ("text", "LBSMATTE PROGRESS x 1/2")
    assert runner.parse_line("warning: cuda absent") == ("text", "warning: cuda absent")
    assert runner.parse_line("WARNING: frame 1001: trimap t.1001.png: 9% of its pixels ...\n") == (
        "warning", "frame 1001: trimap t.1001.png: 9% of its pixels ...")


def _python(code):
    return [sys.executable, "-c", code]


def test_run_forwards_progress_and_errors():
    seen = []
    code = ("import sys\nprint('LBSMATTE PROGRESS 1001 1/2', flush=True)\nprint('ERROR: frame 2: bad', flush=True)\n"
            "print('WARNING: frame 1: odd trimap', flush=True)\nsys.stderr.write('a warning\\n')\nsys.exit(1)")
    result = runner.run(_python(code), on_line=seen.append)
    assert result.returncode == 1 and not result.ok and not result.cancelled
    assert result.frames_done == [1001] and result.errors == ["frame 2: bad"]  # the frame, not the count
    assert result.warnings == ["frame 1: odd trimap"] and ("warning", "frame 1: odd trimap") in seen
    assert ("progress", 1001, 1, 2) in seen and ("text", "a warning") in seen
    assert result.describe() == "frame 2: bad"


def test_a_crash_without_error_lines_is_described_by_its_output():
    result = runner.run(_python("import sys\nprint('Traceback: boom')\nsys.exit(3)"))
    assert not result.ok and "status 3" in result.describe() and "boom" in result.describe()
    assert runner.run(_python("pass")).ok


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_a_core_killed_by_a_signal_is_said_so_and_sigkill_names_memory():
    # A core process killed by the out-of-memory killer (or a job's memory limit) was described as
    # 'exited with status -9', followed by its progress lines, which batch.py printed again as
    # 'ERROR: LBSMATTE PROGRESS ...' lines in the farm's log.
    # Nor are its LBSMATTE WROTE lines (a file each) its last words.
    code = ("import os, signal\nprint('LBSMATTE WROTE 1001 /shots/m.1001.exr', flush=True)\n"
            "print('LBSMATTE PROGRESS 1001 1/2', flush=True)\n"
            "print('WARNING: frame 1001: odd', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)")
    result = runner.run(_python(code))
    assert result.returncode == -signal.SIGKILL and not result.ok
    described = result.describe()
    assert described.startswith("the LBSMatte process was killed by SIGKILL (signal 9), which is what the system's "
                                "out-of-memory killer and a job's memory limit send: ")
    assert described.endswith(":\nWARNING: frame 1001: odd") and "PROGRESS" not in described and "WROTE" not in described
    terminated = runner.run(_python("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)"))
    assert terminated.describe() == "the LBSMatte process was killed by SIGTERM (signal 15) (no output)"
    assert runner.ended(3) == "exited with status 3"


def test_cancel_terminates_the_process():
    # Cancel once the first progress line has arrived, so the child is certainly in its sleep;
    # a child that was not stopped would print the marker when the sleep ends and exit 0.
    seen = []
    code = ("import time\nprint('LBSMATTE PROGRESS 1 1/9', flush=True)\ntime.sleep(60)\n"
            "print('SLEPT TO THE END', flush=True)")
    result = runner.run(_python(code), on_line=seen.append,
                        is_cancelled=lambda: ("progress", 1, 1, 9) in seen, poll=0.05)
    assert result.cancelled and result.describe() == "cancelled"
    assert result.frames_done == [1] and result.errors == []
    assert "SLEPT TO THE END" not in result.tail and ("text", "SLEPT TO THE END") not in seen
    if os.name == "nt":
        assert result.returncode not in (None, 0)  # TerminateProcess: no signal to read back
    else:
        assert result.returncode == -signal.SIGTERM  # ended by the runner's SIGTERM, not by itself


def test_a_missing_interpreter_is_an_error_not_an_exception():
    result = runner.run(["/nonexistent/python", "-m", "core.cli"])
    assert not result.ok and result.returncode is None
    assert "cannot start /nonexistent/python" in result.errors[0]
