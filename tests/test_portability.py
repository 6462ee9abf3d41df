"""Windows and macOS, simulated on Linux: what the core and the Nuke plugin assume about the
platform (streams' encodings, start methods, process trees, file replacement, interpreters)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
