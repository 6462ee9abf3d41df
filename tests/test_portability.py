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

