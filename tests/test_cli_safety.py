"""issue 14 on the command line: one stream convention, every argument checked before any work,
broken weights and non-finite frames refused, no temporary files left behind, one writer per
output, and the fingerprint the Nuke node's cache key is made of."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import test_cli
import torch
from test_cli import _matte

from core import cli, fingerprint
from core.io import lock_output, lock_path, read_image
from core.pipeline import cpu_has_bf16

ROOT = Path(__file__).resolve().parents[1]
shot = test_cli.shot  # the same plate.1001-1003.exr / trimap.1001-1003.png fixture


@pytest.fixture
def untrained_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")


def _run_cli(*argv: str, env: dict | None = None, code: str | None = None) -> subprocess.CompletedProcess:
    """``python -m core.cli ARGV`` (or ``python -c CODE ARGV``) in a fresh process."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT), LBSMATTE_ALLOW_UNTRAINED="1", **(env or {}))
    command = [sys.executable, "-c", code, *argv] if code else [sys.executable, "-m", "core.cli", *argv]
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=str(ROOT), timeout=300)


# -- one stream convention ---------------------------------------------------------------------
def test_every_line_goes_to_stdout_and_stderr_stays_empty(shot, small_bundle, untrained_ok, capsys) -> None:
    (shot / "trimap.1002.png").unlink()
    assert _matte(shot, small_bundle, "--frames", "1001-1003", "--device", "cuda") == 1
    out = capsys.readouterr()
    assert out.err == ""
    lines = out.out.splitlines()
    # --device cuda (not auto): without CUDA the pipeline falls back to the CPU and must say so,
    # once, on stdout; with CUDA there is nothing to warn about.
    warnings = [line for line in lines if line.startswith("WARNING:")]
    if torch.cuda.is_available():
        assert warnings == []
    else:
        assert len(warnings) == 1 and re.fullmatch(
            r"WARNING: CUDA was requested but is not available \((this PyTorch is a CPU-only build|PyTorch .* sees no "
            r"CUDA GPU: .*)\): running on the CPU instead", warnings[0])
    assert [line for line in lines if line.startswith("LBSMATTE PROGRESS")] == [
        "LBSMATTE PROGRESS 1001 1/3", "LBSMATTE PROGRESS 1002 2/3", "LBSMATTE PROGRESS 1003 3/3"]
    assert any(line.startswith("ERROR: frame 1002: file not found:") for line in lines)
    assert lines[-1] == "ERROR: 1 of 3 frame(s) failed: 1002"
    assert _matte(shot, small_bundle, "--frames", "1001", out="ok/m.####.exr") == 0
    out = capsys.readouterr()
    assert out.err == "" and out.out.splitlines()[-1] == f"wrote 1 frame(s) to {shot / 'ok/m.####.exr'}"


def test_each_file_written_is_named_on_a_wrote_line(shot, small_bundle, untrained_ok, capsys) -> None:
    # A publish step needs the files a run wrote: "wrote 2 frame(s) to m.####.exr" named a pattern
    # (frames padded by Nuke's rules, --write-trimap's files not at all), and after a failed frame
    # nothing said which were written.
    (shot / "plate.1002.exr").unlink()
    assert _matte(shot, small_bundle, "--frames", "1001-1003", "--write-trimap", str(shot / "t" / "tri.####.png"),
                  out="m/m.####.exr") == 1
    lines = capsys.readouterr().out.splitlines()
    told = [line for line in lines if line.startswith("LBSMATTE ")]
    assert told == [
        f"LBSMATTE WROTE 1001 {shot / 't' / 'tri.1001.png'}", f"LBSMATTE WROTE 1001 {shot / 'm' / 'm.1001.exr'}",
        "LBSMATTE PROGRESS 1001 1/3", "LBSMATTE PROGRESS 1002 2/3",
        f"LBSMATTE WROTE 1003 {shot / 't' / 'tri.1003.png'}", f"LBSMATTE WROTE 1003 {shot / 'm' / 'm.1003.exr'}",
        "LBSMATTE PROGRESS 1003 3/3"]
    wrote = {Path(line.split(" ", 3)[3]) for line in told if line.startswith("LBSMATTE WROTE ")}
    assert wrote == set((shot / "t").iterdir()) | set((shot / "m").iterdir())  # no more, no less
    assert _matte(shot, small_bundle, "--frames", "1001", out="one.exr") == 0
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("LBSMATTE WROTE")] == [
        f"LBSMATTE WROTE 1001 {shot / 'one.exr'}"]


def test_a_frame_stopped_by_sigterm_still_names_the_trimap_it_wrote(shot, small_bundle, untrained_ok, capsys,
                                                                     monkeypatch) -> None:
    # --write-trimap's file is written before the matting: a farm's SIGTERM during the matting left
    # it on disk, complete, with no WROTE line for a publish step to find it by.
    import core.pipeline

    def stopped(*args, **kwargs):
        raise cli._Terminated()

    monkeypatch.setattr(core.pipeline.Matter, "matte", stopped)
    assert _matte(shot, small_bundle, "--frames", "1001", "--write-trimap", str(shot / "t.####.png")) == 143
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("LBSMATTE ")] == [f"LBSMATTE WROTE 1001 {shot / 't.1001.png'}"]
    assert (shot / "t.1001.png").is_file() and not list(shot.glob("out/*.exr"))


@pytest.mark.parametrize(("error", "code", "said"), [
    (BrokenPipeError(32, "Broken pipe"), 128 + signal.SIGPIPE, ""),  # lbsmatte matte ... | head -1
    (OSError(28, "No space left on device"), 1, "ERROR: cannot write to stdout: No space left on device\n"),  # a log on a full disk
])
def test_a_stdout_that_fails_ends_the_run_without_a_traceback(
        shot, small_bundle, untrained_ok, capsys, monkeypatch, tmp_path, error, code, said) -> None:
    # The first line (the device fallback's WARNING, logged) finds stdout failing. That must end
    # the run (as a print does), not print logging's '--- Logging error ---' traceback on stderr
    # and render on, nor end in a traceback. CUDA is made absent, so that the line is said on a
    # machine with a GPU too (the test was skipped there).
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    sink = open(tmp_path / "sink", "w")

    class Failing:
        def write(self, text: str) -> int:
            raise error

        def flush(self) -> None:
            pass

        def fileno(self) -> int:  # main() points it at /dev/null so that the exit flush is quiet
            return sink.fileno()

    monkeypatch.setattr(sys, "stdout", Failing())
    try:
        assert _matte(shot, small_bundle, "--device", "cuda") == code
    finally:
        sink.close()
    assert capsys.readouterr().err == said
    assert not list((shot / "out").glob("matte.*"))  # stopped at once, before the first frame


def test_usage_errors_are_one_error_line_on_stdout_in_a_real_process(tmp_path: Path) -> None:
    proc = _run_cli("matte", "--plate", "p.exr", "--trimap", "t.exr", "--out", str(tmp_path / "o.exr"), "--rounds", "x")
    assert proc.returncode == 2 and proc.stderr == ""
    assert proc.stdout.startswith("ERROR: argument --rounds: --rounds takes a whole number from 0 to 100")


# -- arguments checked before any work, in the flags' own spelling ------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fg-solve", "0"], "--fg-solve 0 needs --rounds 0: the alternating rounds the bundle records (the default)"),
        (["--fg-solve", "0", "--rounds", "2"], "--fg-solve 0 needs --rounds 0: the 2 alternating round(s) (--rounds 2)"),
        (["--fg-solve", "-1"], "argument --fg-solve: --fg-solve takes a weight >= 0"),
        (["--fg-solve", "nan"], "--fg-solve takes a weight >= 0"),
        (["--knn", "-0.5"], "argument --knn: --knn takes a weight >= 0 (0: no KNN term)"),
        (["--knn", "inf"], "--knn takes a weight >= 0"),
        (["--levels", "0.1"], "argument --levels: --levels takes BLACK,WHITE with 0 <= BLACK < WHITE <= 1"),
        (["--levels", "0.5,0.4"], "--levels takes BLACK,WHITE with 0 <= BLACK < WHITE <= 1 (0,1: none), not '0.5,0.4'"),
        (["--levels", "a,b"], "--levels takes BLACK,WHITE"),
        (["--colour", "rec709"], "--colour rec709: unknown colour 'rec709'"),
        (["--rounds", "0", "--levels", "0.1,0.9"], "--levels 0.1,0.9 shapes the refinement's rounds, and --rounds 0 runs "
                                                   "none (the matting network's alpha as it is): leave it out"),
        (["--rounds", "0", "--knn", "0.5", "--knn-band", "4", "--knn-stride", "2"],
         "--knn 0.5, --knn-band 4, --knn-stride 2 shape the refinement's rounds, and --rounds 0 runs none"),
        # --knn 0 turns the term off: its searches' flags were dropped without a word.
        (["--knn", "0", "--knn-band", "4", "--knn-stride", "2"],
         "--knn-band 4, --knn-stride 2 shape the KNN term's neighbour searches, and --knn 0 turns the term off "
         "(the matting Laplacian alone): leave them out, or give --knn a weight > 0"),
        (["--knn", "0", "--knn-stride", "1"], "--knn-stride 1 shapes the KNN term's neighbour searches, and --knn 0"),
    ],
)
def test_arguments_are_checked_before_the_networks_load(shot, argv, message, capsys) -> None:
    # The weights name is bogus: had the networks been loaded first, the message would name it.
    code = cli.main(["matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
                     "--out", str(shot / "o.####.exr"), "--weights", "no-such-bundle", "--no-progress", *argv])
    out = capsys.readouterr().out
    assert code == 2 and message in out and "no-such-bundle" not in out and "fg_solve" not in out
    assert not list(shot.glob("o.*"))


@pytest.mark.parametrize(
    ("recorded", "argv", "message"),
    [
        ({"knn": 0.0, "knn_band": 16}, ["--knn-band", "32"],
         "--knn-band 32 shapes the KNN term's neighbour searches, and knn 0, as the weights bundle 'recorded' records "
         "it, turns the term off (the matting Laplacian alone): leave it out, or give --knn a weight > 0"),
        ({"rounds": 0}, ["--levels", "0.1,0.9"],
         "--levels 0.1,0.9 shapes the refinement's rounds, and rounds 0, as the weights bundle 'recorded' records it, "
         "runs none"),
    ],
)
def test_a_setting_the_bundle_records_is_named_with_the_flag_given(tmp_path, shot, small_bundle, untrained_ok, recorded,
                                                                    argv, message, capsys) -> None:
    # The pipeline's own check answered 'knn_band=32: only the refinement's KNN term uses it, and
    # knn is 0': the Python API's spelling, neither the flag typed nor where the 0 came from.
    bundle = tmp_path / "recorded"
    shutil.copytree(small_bundle.path, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["name"] = "recorded"
    manifest["refinement"] = {**(manifest.get("refinement") or {}), **recorded}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    code = cli.main(["matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
                     "--out", str(shot / "o.####.exr"), "--weights", str(bundle), "--no-progress", *argv])
    out = capsys.readouterr().out
    assert code == 2 and message in out and "_band=" not in out and "rounds=" not in out, out
    assert not list(shot.glob("o.*"))


def test_fg_solve_zero_with_rounds_zero_runs(shot, small_bundle, untrained_ok) -> None:
    assert _matte(shot, small_bundle, "--frames", "1001", "--fg-solve", "0", "--rounds", "0") == 0
    assert (shot / "out" / "matte.1001.exr").is_file()


def test_rounds_zero_with_levels_and_knn_that_ask_for_nothing_runs(shot, small_bundle, untrained_ok) -> None:
    assert _matte(shot, small_bundle, "--frames", "1001", "--rounds", "0", "--levels", "0,1", "--knn", "0") == 0
    assert (shot / "out" / "matte.1001.exr").is_file()


def test_knn_reaches_the_refinement(shot, small_bundle, untrained_ok, monkeypatch) -> None:
    # --knn is handed to the pipeline's refinement settings (0: the Laplacian alone, what the
    # exported module computes); without it the bundle's recorded weight holds.
    from core import pipeline

    made = []
    original = pipeline.Matter.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self.refinement.knn)

    monkeypatch.setattr(pipeline.Matter, "__init__", spy)
    assert _matte(shot, small_bundle, "--frames", "1001", "--knn", "0.02") == 0
    assert _matte(shot, small_bundle, "--frames", "1001", "--knn", "0") == 0
    assert made == [0.02, 0.0]



def test_levels_reach_the_refinement(shot, small_bundle, untrained_ok, monkeypatch) -> None:
    from core import pipeline

    made = []
    original = pipeline.Matter.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append((self.refinement.black_point, self.refinement.white_point))

    monkeypatch.setattr(pipeline.Matter, "__init__", spy)
    assert _matte(shot, small_bundle, "--frames", "1001", "--levels", "0.05,0.9") == 0
    assert _matte(shot, small_bundle, "--frames", "1001") == 0  # the bundle records none: 0 and 1
    assert made == [(0.05, 0.9), (0.0, 1.0)]


def test_frame_pattern_out_with_a_single_file_plate_is_refused(tmp_path: Path, shot, capsys) -> None:
    code = cli.main(["matte", "--plate", str(shot / "plate.1001.exr"), "--trimap", str(shot / "trimap.1001.png"),
                     "--out", str(shot / "o" / "out.####.exr"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 2
    assert f"ERROR: --out {shot / 'o' / 'out.####.exr'} is a frame sequence but --plate" in out
    assert not (shot / "o").exists()


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="POSIX symbolic links")
def test_matte_never_writes_into_the_packaged_bundles(tmp_path: Path, shot, monkeypatch, capsys) -> None:
    import core.weights

    packaged = tmp_path / "package" / "bundles" / "default"
    packaged.mkdir(parents=True)
    monkeypatch.setattr(core.weights, "default_bundle_path", lambda: packaged)
    link = shot / "latest.1001.exr"
    link.symlink_to(packaged / "matte.exr")  # a link is followed: the file it names would be written
    inputs = ["--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"), "--frames", "1001"]
    for extra, flag, refused in (
        (["--out", str(packaged / "m.####.exr")], "--out", packaged / "m.1001.exr"),
        (["--out", str(shot / "latest.####.exr")], "--out", link),
        (["--out", str(shot / "o.####.exr"), "--write-trimap", str(packaged.parent / "t.####.png")], "--write-trimap",
         packaged.parent / "t.1001.png"),
    ):
        assert cli.main(["matte", *inputs, *extra, "--no-progress"]) == 2
        assert capsys.readouterr().out == (f"ERROR: {flag}: refusing to write {refused}: it is inside LBSMatte's "
                                           f"packaged bundles ({packaged.parent}), which no command changes; write "
                                           "to a folder of your own\n")
    assert list(packaged.iterdir()) == [] and sorted(p.name for p in packaged.parent.iterdir()) == ["default"]
    assert not (shot / "o.1001.exr").exists()


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="POSIX symbolic links")
def test_two_frames_that_are_one_file_are_refused_before_any_work(shot, capsys) -> None:
    # out.1001.exr and out.1002.exr linking to one file: frame 1002 silently replaced frame 1001.
    links = shot / "links"
    links.mkdir()
    target = shot / "shared.exr"
    for f in (1001, 1002):
        (links / f"out.{f}.exr").symlink_to(target)
        (links / f"t.{f}.png").symlink_to(shot / "shared.png")
    inputs = ["--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
              "--weights", "no-such-bundle", "--no-progress"]
    cases = (
        (["--out", str(links / "out.####.exr")],
         f"--out {links / 'out.1002.exr'} (frame 1002) and {links / 'out.1001.exr'} (frame 1001) are one file, "
         f"{target}, through symbolic links: each frame needs a file of its own, or one would replace the other"),
        (["--out", str(shot / "o.####.exr"), "--write-trimap", str(links / "t.####.png")],
         f"--write-trimap {links / 't.1002.png'} (frame 1002) and {links / 't.1001.png'} (frame 1001) are one file, "
         f"{shot / 'shared.png'}, through symbolic links: each frame needs a file of its own, or one would replace "
         "the other"),
        (["--out", str(shot / "o.####.exr"), "--write-trimap", str(shot / "O.####.exr")],  # one file on macOS
         f"--write-trimap {shot / 'O.1001.exr'} is also where the matte goes (--out): it is one file with "
         f"{shot / 'o.1001.exr'}; give the trimap a file of its own"),
    )
    for extra, message in cases:
        assert cli.main(["matte", *inputs, *extra]) == 2
        assert capsys.readouterr().out == f"ERROR: {message}\n"
    assert not target.exists() and not (shot / "shared.png").exists() and not (shot / "o.1001.exr").exists()
    jobs = cli.plan_frames(str(shot / "plate.####.exr"), str(shot / "trimap.####.png"), str(links / "out.####.exr"),
                           "1001")  # one frame through a link is no collision
    assert [job.out for job in jobs] == [links / "out.1001.exr"]


def test_a_single_plate_with_a_trimap_sequence_takes_the_trimaps_frames(shot) -> None:
    # a locked-off plate (one file) with an animated trimap: the frames are the trimap's
    jobs = cli.plan_frames(str(shot / "plate.1001.exr"), str(shot / "trimap.####.png"), str(shot / "o.####.exr"))
    assert [(j.frame, j.plate.name, j.trimap.name, j.out.name) for j in jobs] == [
        (f, "plate.1001.exr", f"trimap.{f}.png", f"o.{f}.exr") for f in (1001, 1002, 1003)]


# -- broken results never pass --------------------------------------------------------------------
@pytest.fixture
def nan_bundle(tmp_path: Path):
    """A bundle with valid checksums whose matting network holds NaN (as a diverged fine-tune)."""
    import torch
    from conftest import build_small_networks

    from core.weights import save_bundle

    networks = build_small_networks(seed=1)
    name, param = next(iter(networks["alpha"].named_parameters()))
    with torch.no_grad():
        param.view(-1)[0] = float("nan")
    bundle = save_bundle(tmp_path / "diverged", networks, name="diverged", description="NaN", trained=False)
    return bundle, name


def test_nan_weights_are_refused_by_weights_show_and_at_load(nan_bundle, shot, untrained_ok, capsys) -> None:
    bundle, tensor = nan_bundle
    assert cli.main(["weights", "show", str(bundle.path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("ERROR: ") and "alpha.safetensors" in out and tensor in out and "not finite" in out
    assert out.count("not finite") == 1, out  # said once (it was printed twice)
    code = cli.main(["matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
                     "--out", str(shot / "o.####.exr"), "--weights", str(bundle.path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and "alpha.safetensors" in out and tensor in out and "NaN" in out
    assert not list(shot.glob("o.*"))
    from core.weights import verify_bundle

    assert any(tensor in p for p in verify_bundle(bundle))


def test_a_frame_that_is_not_finite_is_an_error_and_never_written(shot, small_bundle, untrained_ok,
                                                                  monkeypatch, capsys) -> None:
    from core import pipeline

    real = pipeline.Matter.matte
    calls = []

    def matte(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            result.alpha[0, :3] = np.nan
            result.fg[1, 1, 0] = np.inf
        return result

    monkeypatch.setattr(pipeline.Matter, "matte", matte)
    assert _matte(shot, small_bundle) == 1
    out = capsys.readouterr().out
    assert "ERROR: frame 1002: the result is not finite (alpha has 3 non-finite value(s); fg has 1 " in out
    assert sorted(p.name for p in (shot / "out").iterdir()) == ["matte.1001.exr", "matte.1003.exr"]
    assert np.isfinite(read_image(shot / "out" / "matte.1003.exr").pixels).all()


# -- nothing left behind, nothing overwritten unseen ------------------------------------------------------
_KILL_DURING_WRITE = textwrap.dedent("""
    import os, signal, sys
    import core.io
    from core import cli
    real, count = core.io._write_pixels, []
    def write(tmp, *args):
        real(tmp, *args)
        count.append(tmp)
        if len(count) == 2:  # the second frame's temporary file exists and is complete
            os.kill(os.getpid(), getattr(signal, os.environ["KILL_WITH"]))
    core.io._write_pixels = write
    sys.exit(cli.main(sys.argv[1:]))
""")


_SIGNAL_AT_START = textwrap.dedent("""
    import os, signal, sys
    from core import cli
    def signalled():  # while torch imports, the first seconds of every command that renders once checked
        os.kill(os.getpid(), getattr(signal, os.environ["SIGNAL"]))
    cli._fit_threads = signalled
    sys.exit(cli.main(sys.argv[1:]))
""")


_TORCH_AFTER = textwrap.dedent("""
    import sys
    from core import cli
    code = cli.main(sys.argv[1:])
    print("torch imported:", "torch" in sys.modules)
    sys.exit(code)
""")


def test_a_matte_usage_error_is_said_without_importing_torch(tmp_path) -> None:
    # Every command but weights and fingerprint imported torch (a second or more; several on a
    # busy farm node) to fit its threads before anything else, so a TD's typo in a plate path
    # waited for it before its ERROR line. The threads are fitted once the arguments are checked.
    proc = _run_cli("matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.png"),
                    "--out", str(tmp_path / "out.exr"), code=_TORCH_AFTER, env={"OMP_NUM_THREADS": "abc"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [f"ERROR: --plate {tmp_path / 'plate.exr'}: no such file; --trimap "
                                        f"{tmp_path / 'trimap.png'}: no such file", "torch imported: False"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
@pytest.mark.parametrize(("name", "code", "line"), [("SIGTERM", 143, "ERROR: stopped by SIGTERM; no file was left "
                                                     "half-written"), ("SIGINT", 130, "ERROR: interrupted")])
def test_a_task_stopped_as_it_starts_exits_with_its_code_and_a_line(tmp_path, name, code, line) -> None:
    # A farm stopping the task in its first seconds killed it without a word (SIGTERM's default
    # action, exit -15), or Ctrl-C ended it in a traceback of torch's import.
    # Inputs that pass the checks: torch imports (the threads fitted) before the networks load.
    from core.demo import EXAMPLE

    argv = ("matte", "--plate", str(EXAMPLE / "image.png"), "--trimap", str(EXAMPLE / "trimap.png"),
            "--out", str(tmp_path / "out.exr"))
    proc = _run_cli(*argv, code=_SIGNAL_AT_START, env={"SIGNAL": name})
    assert (proc.returncode, proc.stdout, proc.stderr) == (code, line + "\n", "")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_sigterm_leaves_no_temporary_file_and_sigkill_leftovers_are_removed_next_run(shot, small_bundle) -> None:
    argv = ("matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
            "--out", str(shot / "out" / "m.####.exr"), "--weights", str(small_bundle.path), "--no-progress")
    proc = _run_cli(*argv, code=_KILL_DURING_WRITE, env={"KILL_WITH": "SIGTERM"})
    assert proc.returncode == 143, proc.stdout + proc.stderr
    assert "ERROR: stopped by SIGTERM" in proc.stdout
    assert sorted(p.name for p in (shot / "out").iterdir()) == ["m.1001.exr"]  # no temp, no lock

    proc = _run_cli(*argv, code=_KILL_DURING_WRITE, env={"KILL_WITH": "SIGKILL"})
    assert proc.returncode == -signal.SIGKILL
    leftovers = sorted(p.name for p in (shot / "out").glob(".m.1002.exr.tmp-*.exr"))
    assert len(leftovers) == 1  # SIGKILL cannot be caught: the temp stays ...
    unrelated = shot / "out" / ".other.exr.tmp-abc.exr"
    unrelated.write_text("not ours")

    proc = _run_cli(*argv)  # ... and the next run removes it
    assert proc.returncode == 0, proc.stdout
    assert f"WARNING: frame 1002: removed {shot / 'out' / leftovers[0]}, left by an earlier run that was killed" \
        in proc.stdout
    assert sorted(p.name for p in (shot / "out").iterdir()) == [
        ".other.exr.tmp-abc.exr", "m.1001.exr", "m.1002.exr", "m.1003.exr"]


def test_a_long_frame_range_is_checked_against_its_inputs_in_one_pass(tmp_path: Path, monkeypatch) -> None:
    # Each output used to be compared with every input, both paths resolved each time: 800 frames
    # with --write-trimap took 6.4 million realpath calls, 81 s before the first frame.
    plate = tmp_path / "plate.0007.exr"
    plate.write_bytes(b"a plate")
    (tmp_path / "out").mkdir()
    calls = []
    real = os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda path, *a, **k: calls.append(path) or real(path, *a, **k))
    jobs = cli.plan_frames(str(tmp_path / "plate.####.exr"), str(tmp_path / "trimap.####.png"),
                           str(tmp_path / "out" / "m.####.exr"), "1-400")
    cli.plan_trimap_outputs(jobs, str(tmp_path / "out" / "t.####.png"))
    assert len(calls) < 10 * 400
    # Still refused: an output that is an input under another name (here a hard link).
    os.link(plate, tmp_path / "out" / "m.0007.exr")
    with pytest.raises(cli.InputError, match="--out would overwrite an input: refusing to write .*m.0007.exr: it is "
                                             "one of the input files .*plate.0007.exr"):
        cli.plan_frames(str(tmp_path / "plate.####.exr"), str(tmp_path / "trimap.####.png"),
                        str(tmp_path / "out" / "m.####.exr"), "1-400")


def test_a_run_lists_its_output_folder_once(shot, small_bundle, untrained_ok, monkeypatch) -> None:
    # For a killed run's temporaries, each frame listed the output folder (twice with --write-trimap):
    # in a long shot's folder, or one holding many sequences, every frame took longer than the last.
    listings = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": listings.append(os.path.abspath(path)) or real(path))
    assert test_cli._matte(shot, small_bundle, "--write-trimap", str(shot / "out" / "t.####.png")) == 0
    assert listings.count(str(shot / "out")) == 1
    assert sorted(p.name for p in (shot / "out").iterdir()) == [
        "matte.1001.exr", "matte.1002.exr", "matte.1003.exr", "t.1001.png", "t.1002.png", "t.1003.png"]


def test_a_long_run_resolves_its_inputs_once_not_at_every_write(tmp_path: Path, monkeypatch, capsys) -> None:
    # Each write was checked against a set of the run's inputs, every one of them resolved again:
    # a 2000-frame run spent 0.7 s a frame on it with --write-trimap, growing with the run's length.
    frames = 30
    for f in range(1, frames + 1):
        test_cli._write(tmp_path / f"plate.{f:04d}.exr", test_cli._plate(0)[:16, 20:36], ["R", "G", "B"], "half")
        test_cli._write(tmp_path / f"trimap.{f:04d}.png", test_cli._trimap(0)[:16, 20:36, None], ["Y"], "uint8")
    calls = []
    real = os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda path, *a, **k: calls.append(path) or real(path, *a, **k))
    assert cli.main(["matte", "--plate", str(tmp_path / "plate.####.exr"), "--trimap", str(tmp_path / "trimap.####.png"),
                     "--out", str(tmp_path / "out" / "m.####.exr"), "--write-trimap", str(tmp_path / "out" / "t.####.exr"),
                     "--weights", "none", "--no-progress"]) == 0, capsys.readouterr().out
    assert len(calls) < 20 * frames  # a few for each frame's files, not each write times every input


def test_a_long_frame_range_reads_each_pattern_once(tmp_path: Path, monkeypatch) -> None:
    # Each frame's paths used to parse their patterns again with fileseq (a few ms each): 1000 frames
    # with --write-trimap spent 7 s before the first frame, 100 000 frames (a run's limit) 11 minutes.
    import fileseq

    parsed = []
    real = fileseq.FileSequence.__init__
    monkeypatch.setattr(fileseq.FileSequence, "__init__", lambda self, *a, **k: parsed.append(a) or real(self, *a, **k))
    jobs = cli.plan_frames(str(tmp_path / "plate.####.exr"), str(tmp_path / "trimap.%04d.png"),
                           str(tmp_path / "out" / "m.####.exr"), "1-400")
    cli.plan_trimap_outputs(jobs, str(tmp_path / "out" / "t.####.png"))
    assert len(parsed) < 20
    assert [(j.plate.name, j.trimap.name, j.out.name, j.trimap_out.name) for j in jobs[::399]] == [
        ("plate.0001.exr", "trimap.0001.png", "m.0001.exr", "t.0001.png"),
        ("plate.0400.exr", "trimap.0400.png", "m.0400.exr", "t.0400.png")]


def test_a_frame_another_run_is_writing_fails_naming_it_and_the_others_render(shot, small_bundle, untrained_ok,
                                                                              capsys) -> None:
    busy = shot / "out" / "matte.1002.exr"
    (shot / "out").mkdir()
    with lock_output(busy) as held:  # another run writing frame 1002 right now
        assert held == lock_path(busy) == shot / "out" / ".matte.1002.exr.lock" and held.is_file()
        assert _matte(shot, small_bundle) == 1
        text = capsys.readouterr().out
        assert f"ERROR: frame 1002: {busy} is being written by another lbsmatte run (pid {os.getpid()} on " in text
        assert text.splitlines()[-1] == "ERROR: 1 of 3 frame(s) failed: 1002"
        assert sorted(p.name for p in (shot / "out").iterdir()) == [".matte.1002.exr.lock", "matte.1001.exr",
                                                                    "matte.1003.exr"]
    assert not lock_path(busy).exists()
    assert _matte(shot, small_bundle) == 0  # free again
    assert sorted(p.name for p in (shot / "out").iterdir()) == ["matte.1001.exr", "matte.1002.exr", "matte.1003.exr"]


_PAUSE_DURING_WRITE = textwrap.dedent("""
    import os, sys, time
    import core.io
    from core import cli
    real = core.io._write_pixels
    def write(tmp, spec, pixels, dest):
        real(tmp, spec, pixels, dest)
        if dest.endswith(os.environ["PAUSE_AT"]):  # that frame's temporary file is complete: hold it there
            open(os.environ["PAUSED"], "w").close()
            while not os.path.exists(os.environ["GO_ON"]):
                time.sleep(0.02)
    core.io._write_pixels = write
    sys.exit(cli.main(sys.argv[1:]))
""")


@pytest.mark.skipif(os.name == "nt", reason="POSIX paths in the child's code")
def test_farm_chunks_of_one_output_render_side_by_side(shot, small_bundle, untrained_ok, tmp_path_factory,
                                                       capsys) -> None:
    # A farm splits a shot into chunks (--frames 1001-1002, --frames 1003, ...) that run at once on
    # one OUT. A lock on the whole OUT used to refuse every chunk but the first (exit 1, nothing
    # rendered); only a frame that two chunks write at the same moment may be refused.
    flags = tmp_path_factory.mktemp("flags")
    argv = ("matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
            "--out", str(shot / "out" / "matte.####.exr"), "--weights", str(small_bundle.path), "--no-progress")
    env = dict(os.environ, PYTHONPATH=str(ROOT), LBSMATTE_ALLOW_UNTRAINED="1", PAUSE_AT="matte.1002.exr",
               PAUSED=str(flags / "paused"), GO_ON=str(flags / "go_on"))
    first = subprocess.Popen([sys.executable, "-c", _PAUSE_DURING_WRITE, *argv, "--frames", "1001-1002"], env=env,
                             stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
    try:
        deadline = time.monotonic() + 240
        while not (flags / "paused").exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (flags / "paused").exists(), "the first chunk never reached frame 1002"
        # The first chunk is in the middle of writing frame 1002: a disjoint chunk renders all of its frames.
        assert cli.main([*argv, "--frames", "1003"]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == f"wrote 1 frame(s) to {shot / 'out' / 'matte.####.exr'}"
        # An overlapping chunk: the frame being written fails, naming the run writing it; the others render.
        assert cli.main([*argv, "--frames", "1002-1003"]) == 1
        text = capsys.readouterr().out
        assert f"ERROR: frame 1002: {shot / 'out' / 'matte.1002.exr'} is being written by another lbsmatte run " \
               f"(pid {first.pid} on " in text
        assert "LBSMATTE PROGRESS 1003 2/2" in text and text.splitlines()[-1] == "ERROR: 1 of 2 frame(s) failed: 1002"
    finally:
        (flags / "go_on").touch()
        out, _ = first.communicate(timeout=120)
    assert first.returncode == 0, out
    assert sorted(p.name for p in (shot / "out").iterdir()) == ["matte.1001.exr", "matte.1002.exr", "matte.1003.exr"]


# -- the fingerprint -------------------------------------------------------------------------------
def test_fingerprint_command_prints_one_json_line(small_bundle, capsys) -> None:
    assert cli.main(["fingerprint", "--weights", str(small_bundle.path), "--device", "cpu"]) == 0
    out = capsys.readouterr()
    record = json.loads(out.out)
    assert out.err == "" and len(out.out.splitlines()) == 1
    # auto: bfloat16 on a CPU that computes it natively, float32 elsewhere
    expected = "bf16" if cpu_has_bf16() else "fp32"
    assert record["device"] == "cpu" and record["precision"] == expected and record["ocio"] is None
    assert record["bundle_sha256"] == small_bundle.manifest_sha256()
    assert record["core_sha256"] == fingerprint.source_sha256()
    # The keys the README lists (Farm-friendly, 'lbsmatte fingerprint'): what a pipeline script reads.
    assert sorted(record) == ["bundle_sha256", "core_sha256", "core_version", "device", "fingerprint", "libraries",
                              "ocio", "precision"]
    assert sorted(record["libraries"]) == ["OpenImageIO", "numpy", "scipy", "torch"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert all(f"`{key}`" in readme for key in [*record, *record["libraries"]])
    assert record == fingerprint.fingerprint(small_bundle, device="cpu")
    assert cli.main(["fingerprint", "--weights", str(small_bundle.path), "--device", "cpu", "--precision", "fp32"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "fp32"
    # matte's diagnostic without networks has no bundle: a usage error that says so, not "no bundle named 'none'"
    assert cli.main(["fingerprint", "--weights", "none"]) == 2
    said = capsys.readouterr()  # stdout is for the JSON line alone: the error on stderr
    assert said.out == "" and said.err.startswith("ERROR: --weights none has no bundle to fingerprint")
    assert cli.main(["fingerprint", "--weights", "no-such-bundle"]) == 1
    said = capsys.readouterr()
    assert said.out == "" and said.err.startswith("ERROR: no weights bundle named 'no-such-bundle'")


def test_fingerprints_device_fallback_is_a_warning_line_on_stderr(small_bundle, capsys, monkeypatch) -> None:
    # A pipeline script's json.loads(stdout) failed on the WARNING line printed before the record.
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main(["fingerprint", "--weights", str(small_bundle.path), "--device", "cuda"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["device"] == "cpu" and len(out.out.splitlines()) == 1
    assert out.err.startswith("WARNING: CUDA was requested but is not available") and len(out.err.splitlines()) == 1


def test_matte_and_fingerprint_take_one_gpu_of_several_as_cuda_n(small_bundle, capsys, monkeypatch) -> None:
    # A farm node with several GPUs runs one task on each: --device cuda:1 was a usage error for
    # matte (its choices were auto/cpu/cuda) while train, evaluate and demo took it.
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main(["fingerprint", "--weights", str(small_bundle.path), "--device", "cuda:1"]) == 0
    said = capsys.readouterr()
    assert said.err.startswith("WARNING: CUDA was requested but is not available")
    assert json.loads(said.out)["device"] == "cpu"
    assert cli.main(["matte", "--plate", "p.png", "--trimap", "t.png", "--out", "o.exr", "--device", "gpu"]) == 2
    assert "--device takes auto, cpu, cuda or cuda:N, not 'gpu'" in capsys.readouterr().out


def test_fingerprint_changes_with_the_core_source_the_bundle_and_the_ocio_config(
        tmp_path: Path, small_bundle, nan_bundle, monkeypatch) -> None:
    copy = tmp_path / "core"
    shutil.copytree(ROOT / "core", copy, ignore=shutil.ignore_patterns("__pycache__", "*.safetensors", "*.png"))
    assert fingerprint.source_sha256(copy) == fingerprint.source_sha256(copy)
    before = fingerprint.source_sha256(copy)
    (copy / "compositing.py").write_text((copy / "compositing.py").read_text() + "\n# a changed constant\n")
    assert fingerprint.source_sha256(copy) != before

    base = fingerprint.fingerprint(small_bundle, device="cpu", precision="fp32")["fingerprint"]
    assert fingerprint.fingerprint(nan_bundle[0], device="cpu", precision="fp32")["fingerprint"] != base
    assert fingerprint.fingerprint(small_bundle, device="cpu", precision="bf16")["precision"] == "bf16"
    assert fingerprint.fingerprint(small_bundle, device="cpu", precision="bf16")["fingerprint"] != base

    from test_colour import OCIO_CONFIG

    monkeypatch.delenv("LBSMATTE_OCIO_DISPLAY", raising=False)
    config = tmp_path / "config.ocio"
    config.write_text(OCIO_CONFIG)
    monkeypatch.setenv("OCIO", str(config))
    first = fingerprint.fingerprint(small_bundle, device="cpu", colour="lin")
    assert first["ocio"]["conversions"] and "OCIO" not in first["ocio"]
    assert fingerprint.fingerprint(small_bundle, device="cpu", precision="fp32", colour="linear")["fingerprint"] == base
    # The built-in colours as --colour reads them (any case): no config in their record, as for "linear".
    for spelling in ("Linear", " LINEAR ", "Auto"):
        assert fingerprint.fingerprint(small_bundle, device="cpu", precision="fp32", colour=spelling)["fingerprint"] == base
    assert fingerprint.fingerprint(small_bundle, device="cpu", colour="sRGB")["ocio"] is None
    other = tmp_path / "other.ocio"
    other.write_text(OCIO_CONFIG.replace("matrix: [2, 0, 0, 0, 0, 2", "matrix: [3, 0, 0, 0, 0, 3"))
    doubled = fingerprint.fingerprint(small_bundle, device="cpu", colour="double_lin")
    monkeypatch.setenv("OCIO", str(other))
    assert fingerprint.fingerprint(small_bundle, device="cpu", colour="double_lin")["fingerprint"] != doubled["fingerprint"]
    # A colourspace the edit did not touch converts as before: its results keep their key.
    assert fingerprint.fingerprint(small_bundle, device="cpu", colour="lin")["fingerprint"] == first["fingerprint"]


_LUT_CONFIG = """ocio_profile_version: 2
search_path: luts
roles:
  default: lin
  scene_linear: lin
file_rules:
  - !<Rule> {name: Default, colorspace: default}
displays:
  sRGB:
    - !<View> {name: Raw, colorspace: lin}
colorspaces:
  - !<ColorSpace>
    name: lin
  - !<ColorSpace>
    name: srgb_tx
    from_scene_reference: !<ExponentTransform> {value: [2.2, 2.2, 2.2, 1], direction: inverse}
  - !<ColorSpace>
    name: cam
    to_scene_reference: !<FileTransform> {src: cam.spi1d, interpolation: linear}
"""


def _lut_config(root: Path, power: float) -> Path:
    """A config whose ``cam`` colourspace reads the file LUT ``luts/cam.spi1d`` (x ** power), under ``root``."""
    (root / "luts").mkdir(parents=True)
    values = "".join(f"{(i / 15) ** power:.6f}\n" for i in range(16))
    (root / "luts" / "cam.spi1d").write_text(f"Version 1\nFrom 0.0 1.0\nLength 16\nComponents 1\n{{\n{values}}}\n")
    (root / "config.ocio").write_text(_LUT_CONFIG)
    return root / "config.ocio"


def test_fingerprint_follows_an_ocio_luts_content_not_where_the_config_is_mounted(tmp_path: Path, small_bundle,
                                                                                  monkeypatch) -> None:
    # The studio's config on a share the artist mounts at /mnt/a and a farm machine at /net/b: the
    # same pixels, one key (the config's cache ID and $OCIO's path gave each root its own, so the
    # farm computed every frame again). A camera LUT edited in place (its time stamp kept, as a
    # sync tool keeps it): another key.
    monkeypatch.delenv("LBSMATTE_OCIO_DISPLAY", raising=False)
    records = []
    for root, power in (("artist", 2.0), ("farm", 2.0), ("edited", 2.2)):
        config = _lut_config(tmp_path / root / "ocio", power)
        lut = config.parent / "luts" / "cam.spi1d"
        os.utime(lut, (1e9, 1e9))
        monkeypatch.setenv("OCIO", str(config))
        records.append(fingerprint.fingerprint(small_bundle, device="cpu", precision="fp32", colour="cam"))
    artist, farm, edited = (r["fingerprint"] for r in records)
    assert artist == farm, (records[0]["ocio"], records[1]["ocio"])
    assert edited != artist
    assert str(tmp_path) not in json.dumps(records[0])


def test_fingerprint_changes_with_the_libraries_that_compute_the_pixels(small_bundle, monkeypatch) -> None:
    # A venv upgraded between two Computes of a shot (torch's kernels, SciPy's solver): another key,
    # not a shot whose frames mix the two releases' last bits.
    import torch

    record = fingerprint.fingerprint(small_bundle, device="cpu", precision="fp32")
    assert record["libraries"]["torch"] == torch.__version__  # its local tag too: +cpu, +cu126
    assert set(record["libraries"]) == {"torch", "numpy", "scipy", "OpenImageIO"}  # no CUDA on the CPU
    installed = fingerprint._version
    for name in fingerprint.LIBRARIES:
        monkeypatch.setattr(fingerprint, "_version", lambda dist, name=name: "0.0.1" if dist == name else installed(dist))
        assert fingerprint.fingerprint(small_bundle, device="cpu", precision="fp32")["fingerprint"] != \
            record["fingerprint"], name
    monkeypatch.setattr(fingerprint, "_version", installed)
    assert fingerprint.fingerprint(small_bundle, device="cpu", precision="fp32") == record
    assert fingerprint._version("no-such-distribution-lbsmatte") == ""
    cuda = fingerprint.library_versions(torch.device("cuda"))
    assert cuda["cuda"] == str(torch.version.cuda) and "cudnn" in cuda


def test_write_trimap_files_are_outputs_too_locked_and_their_leftovers_removed(shot, small_bundle, untrained_ok,
                                                                               capsys) -> None:
    out = shot / "out"
    out.mkdir()
    trimaps = out / "t.####.png"
    leftover = out / ".t.1002.png.tmp-k2_9nvw9.png"  # a run killed (SIGKILL) while writing that trimap
    leftover.write_bytes(b"half a trimap")
    with lock_output(out / "t.1002.png"):  # another run writing that trimap
        assert _matte(shot, small_bundle, "--write-trimap", str(trimaps)) == 1
        assert f"ERROR: frame 1002: {out / 't.1002.png'} is being written by another lbsmatte run (pid {os.getpid()} " \
            in capsys.readouterr().out
        assert leftover.exists() and not (out / "matte.1002.exr").exists()  # not its to remove, nor that frame's
    assert _matte(shot, small_bundle, "--write-trimap", str(trimaps)) == 0
    assert f"WARNING: frame 1002: removed {leftover}, left by an earlier run that was killed" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        f"{kind}.{f}.{ext}" for kind, ext in (("matte", "exr"), ("t", "png")) for f in (1001, 1002, 1003)]


def test_an_output_folder_removed_while_the_shot_renders_is_not_made_again(shot, small_bundle, untrained_ok, capsys,
                                                                          monkeypatch) -> None:
    # The output folder goes after frame 1001 (a wrangler clears the version, or the share holding
    # it unmounts and leaves its empty mount point): the run made it again, wrote 1002 and 1003 into
    # it (on a farm node's own disk, for an unmounted share) and said "wrote 3 frame(s)", exit 0.
    import shutil

    out = shot / "out"
    render = cli._render

    def then_removed(job, *args, **kwargs):
        done = render(job, *args, **kwargs)
        if job.frame == 1001:
            shutil.rmtree(out)
        return done

    monkeypatch.setattr(cli, "_render", then_removed)
    assert _matte(shot, small_bundle, "--write-trimap", str(out / "t.####.png")) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ERROR")]
    assert lines == [f"ERROR: frame {f}: cannot write {out / f'matte.{f}.exr'}: its folder {out} was removed while "
                     "this run was writing (or the share holding it is no longer mounted); it is not made again: "
                     "make it, or mount the share, and render the missing frames again" for f in (1002, 1003)] + [
        "ERROR: 2 of 3 frame(s) failed: 1002, 1003"]
    assert not out.exists()


def test_a_multi_line_message_is_one_protocol_line(shot, small_bundle, untrained_ok, capsys, monkeypatch) -> None:
    # A farm adaptor reads stdout line by line: an error whose message spans lines (pybind11's
    # "incompatible function arguments" lists the overloads, one a line) left lines that
    # carry no ERROR: prefix and the rest of the message out of the ERROR: line.
    render = cli._render

    def failing(job, *args, **kwargs):
        if job.frame == 1002:
            raise TypeError("open(): incompatible function arguments. The following argument types are supported:\n"
                            "    1. open(filename: str) -> ImageInput\n\nInvoked with types: str")
        if job.frame == 1003:
            cli.log.warning("first line\nsecond line")
        return render(job, *args, **kwargs)

    monkeypatch.setattr(cli, "_render", failing)
    assert _matte(shot, small_bundle) == 1
    lines = capsys.readouterr().out.splitlines()
    assert all(line.startswith(("LBSMATTE PROGRESS ", "LBSMATTE WROTE ", "ERROR: ", "WARNING: ")) for line in lines), lines
    assert any(line.startswith("ERROR: frame 1002: TypeError: open(): incompatible function arguments. The following "
                               "argument types are supported: 1. open(filename: str) -> ImageInput Invoked with types: "
                               "str (plate ") for line in lines), lines
    assert "WARNING: frame 1003: first line second line" in lines


def test_fingerprints_options_said_to_be_as_for_matte_have_matte_s_defaults() -> None:
    # --colour defaulted to linear while matte's is auto, and its help said "as for 'matte'"
    commands = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    matte, printed = commands["matte"], commands["fingerprint"]
    said = [a for a in printed._actions if a.help == "as for 'matte'"]
    assert {a.dest for a in said} >= {"device", "precision", "colour"}
    for action in said:
        assert action.default == matte.get_default(action.dest), action.dest


def test_fingerprint_counts_a_renamed_source_file_and_the_ocio_display(tmp_path: Path, small_bundle,
                                                                      monkeypatch) -> None:
    # The same bytes under another module's name are other code (an import reads another file).
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.py").write_text("X = 1\n")
    before = fingerprint.source_sha256(tree)
    (tree / "a.py").rename(tree / "b.py")
    assert fingerprint.source_sha256(tree) != before
    # An OCIO colourspace's pixels depend on the display $LBSMATTE_OCIO_DISPLAY picks: its record holds it.
    from test_colour import OCIO_CONFIG

    from core.colour import DISPLAY_ENV

    config = tmp_path / "config.ocio"
    config.write_text(OCIO_CONFIG)
    monkeypatch.setenv("OCIO", str(config))
    records = []
    for display in ("srgb_tex", "double_lin"):  # colourspaces of the config, as matte requires
        monkeypatch.setenv(DISPLAY_ENV, display)
        records.append(fingerprint.fingerprint(small_bundle, device="cpu", precision="fp32", colour="lin"))
    assert [r["ocio"][DISPLAY_ENV] for r in records] == ["srgb_tex", "double_lin"]
    assert records[0]["fingerprint"] != records[1]["fingerprint"]
