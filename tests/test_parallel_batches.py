"""Batches drawn ahead of the training step by worker processes (``lbsmatte train --workers``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from core.errors import InputError
from core.training.data import ParallelBatches

REPO = Path(__file__).resolve().parents[1]


def _factory(seed: int):
    """A batch source that says which seed drew it and for which role."""
    counter = iter(range(10**6))

    def batches(role: str) -> dict[str, torch.Tensor]:
        return {"seed": torch.tensor([seed]), "role": torch.tensor([len(role)]), "n": torch.tensor([next(counter)])}

    return batches


class _AbortsAsItEnds:
    """:func:`_factory`'s batches, whose worker process dies by SIGABRT when it lets them go at its
    end (as a C++ destructor's std::terminate does in a spawned worker's exit now and then)."""

    def __init__(self, seed: int) -> None:
        self.batches = _factory(seed)

    def __call__(self, role: str) -> dict[str, torch.Tensor]:
        return self.batches(role)

    def __del__(self) -> None:
        if torch.utils.data.get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGABRT)


def test_a_worker_that_dies_as_it_is_stopped_does_not_end_the_run(tmp_path, monkeypatch) -> None:
    # Whether torch's SIGCHLD check sees the death before its join returns is a race: either way
    # the run goes on (the deterministic case is the test below). The dying workers leave their
    # multiprocessing folders (pymp-*) behind: in tmp_path, not in the system's temporary folder.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    source = ParallelBatches(_AbortsAsItEnds, workers=2, seed=10, prefetch=1)
    assert int(source("background")["role"]) == len("background")
    assert int(source("alpha")["role"]) == len("alpha")  # the background stage's workers die on their way out
    source.close()


def test_a_worker_death_torch_reports_while_stopping_is_logged_not_raised(monkeypatch, caplog) -> None:
    from torch.utils.data import dataloader

    real = dataloader._MultiProcessingDataLoaderIter._shutdown_workers

    def raising(message):
        def shutdown(self):  # as torch's SIGCHLD check raises it from inside the join; once, as torch stops once
            first = not self._shutdown
            real(self)
            if first:
                raise RuntimeError(message)
        return shutdown

    monkeypatch.setattr(dataloader._MultiProcessingDataLoaderIter, "_shutdown_workers",
                        raising("DataLoader worker (pid 4242) is killed by signal: Aborted. "))
    source = ParallelBatches(_factory, workers=2, seed=10, prefetch=1)
    assert int(source("background")["role"]) == len("background")
    with caplog.at_level("INFO", logger="core.training.data"):
        source.close()
    assert "a batch worker ended abnormally as it was stopped (DataLoader worker (pid 4242) is killed by signal: " \
        "Aborted. )" in caplog.text
    monkeypatch.setattr(dataloader._MultiProcessingDataLoaderIter, "_shutdown_workers", raising("something else"))
    source("background")
    with pytest.raises(RuntimeError, match="^something else$"):  # only a worker's death is taken as harmless
        source.close()


def test_each_worker_draws_with_a_seed_of_its_own_and_a_new_role_restarts_them() -> None:
    source = ParallelBatches(_factory, workers=2, seed=10, prefetch=2)
    try:
        first = [source("background") for _ in range(6)]
        seeds = {int(b["seed"]) for b in first}
        assert len(seeds) == 2  # two workers, two streams, none of them the parent's own seed
        assert 10 not in seeds
        assert all(int(b["role"]) == len("background") for b in first)
        # Each worker's stream goes on: no batch is handed out twice.
        pairs = [(int(b["seed"]), int(b["n"])) for b in first]
        assert len(set(pairs)) == len(pairs)
        alpha = [source("alpha") for _ in range(4)]
        assert all(int(b["role"]) == len("alpha") for b in alpha)
        # The next stage's workers draw with other seeds than the last stage's.
        assert not seeds & {int(b["seed"]) for b in alpha}
    finally:
        source.close()


def test_workers_leave_a_process_groups_sigterm_and_ctrl_c_to_the_training_process(tmp_path) -> None:
    # A farm's kill or Ctrl-C signals the whole process group: the workers must not die of it
    # (the run then ended with "DataLoader worker killed by signal") but keep drawing until the
    # training loop, which got the signal too, checkpoints and closes them. A session of its own,
    # so the group signalled is the script's, not pytest's.
    import textwrap

    script = tmp_path / "group.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_parallel_batches import _factory
        from core.training.data import ParallelBatches
        got = []
        for sig in (signal.SIGTERM, signal.SIGINT):  # as the training loop's stop flag does
            signal.signal(sig, lambda signum, frame: got.append(signum))
        source = ParallelBatches(_factory, workers=2, seed=3, prefetch=1)
        source("background")
        workers = list(source._iterator._workers)
        # Each worker takes a group of its own as it starts; the first batch came from one of them,
        # the other may still be starting (under load): signalled before, it died of it ("DataLoader
        # worker exited unexpectedly", now and then). The start-up's window is not what is tested.
        import time
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(os.getpgid(w.pid) != w.pid for w in workers):
            time.sleep(0.01)
        os.killpg(0, signal.SIGTERM)
        os.killpg(0, signal.SIGINT)
        batches = [source("background") for _ in range(8)]
        alive = all(w.is_alive() for w in workers)
        source.close()
        print(sorted(got), alive, len({{(int(b["seed"]), int(b["n"])) for b in batches}}),
              any(w.is_alive() for w in workers), flush=True)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          start_new_session=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["[2,", "15]", "True", "8", "False"]  # closing still stops them


def test_no_workers_is_refused_by_name() -> None:
    with pytest.raises(InputError, match="workers must be at least 1"):
        ParallelBatches(_factory, workers=0, seed=0)


def test_train_with_workers_writes_a_bundle_and_says_so(tmp_path) -> None:
    from core.training.data import default_data_root
    from core.weights import load_bundle

    data = default_data_root()
    if not (data / "alphamatting").is_dir() or not (data / "backgrounds").is_dir():
        pytest.skip(f"training data not found in {data}")
    out = tmp_path / "workers"
    # A process of its own, as on the command line: this test process may already have used numba's
    # OpenMP pool (pymatting in other tests), after which the forked workers would be killed.
    done = subprocess.run([
        sys.executable, "-m", "core.cli", "train", "--out", str(out), "--steps", "1,1,2", "--crop", "32", "--batch",
        "2", "--backgrounds", "1", "--procedural", "0.5", "--real-photos", "0.5", "--workers", "2",
        "--run-dir", str(tmp_path / "run"), "--no-progress",
    ], cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TMPDIR=str(tmp_path)))  # a $TMPDIR of its own: what the run leaves there is seen
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in tmp_path.glob("pymp-*")) == []  # the workers' multiprocessing folder removed
    manifest = load_bundle(out).manifest
    assert manifest["training"]["data"]["workers"]["processes"] == 2
    assert manifest["training"]["stages"]["alpha"]["step"] == 2


def test_a_negative_worker_count_is_refused_by_name(tmp_path, capsys) -> None:
    from core.cli import main

    code = main(["train", "--out", str(tmp_path / "b"), "--steps", "1", "--workers", "-1",
                 "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert code != 0
    said = capsys.readouterr()
    assert "--workers must be 0 or more, not -1" in said.out + said.err


def _failing_factory(seed: int):
    """:func:`_factory`'s batches, each worker's second one failing (a plate that cannot be read, say)."""
    drawn = _factory(seed)
    count = iter(range(10**6))

    def batches(role: str) -> dict[str, torch.Tensor]:
        if next(count):
            raise ValueError(f"no second batch ({role})")
        return drawn(role)

    return batches


@pytest.mark.parametrize("ending", ["done", "error"])
def test_workers_leave_no_multiprocessing_folder_in_tmpdir(tmp_path, ending) -> None:
    # The training process ends with the last stage's workers still drawing (terminated as it exits),
    # or with a worker's error after they handed batches over: each worker made a pymp-* folder of its own in $TMPDIR for the
    # socket it hands batches over on, and one terminated left it there, a few a run.
    import textwrap

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    script = tmp_path / "ending.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_parallel_batches import _factory, _failing_factory
        from core.training.data import ParallelBatches
        source = ParallelBatches({'_factory' if ending == 'done' else '_failing_factory'}, workers=2, seed=3,
                                 prefetch=1)
        for role in ("background", "foreground", "foreground", "foreground"):  # the workers' first batches, then an error
            source(role)
        print("drawn", flush=True)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env=dict(os.environ, TMPDIR=str(tmp)))
    if ending == "done":
        assert done.returncode == 0 and done.stdout.split() == ["drawn"], done.stdout + done.stderr
    else:
        assert done.returncode == 1 and "no second batch (foreground)" in done.stderr, done.stdout + done.stderr
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith("pymp-")) == []


def test_a_group_sigterm_as_a_stage_s_workers_start_stops_the_run_cleanly(tmp_path, small_bundle, rng) -> None:
    # A farm's SIGTERM to the run's process group reached the foreground stage's workers before
    # they had taken a group of their own: they died of it, and the run ended with "DataLoader
    # worker ... killed by signal: Terminated" and a traceback (exit 1) instead of the clean stop:
    # checkpointed, exit 3, the same command continuing it. Sent here by the stage's first worker as
    # it starts, so that it lands in that window every time.
    import textwrap

    from test_finetune import _show

    _show(tmp_path / "show", rng)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    marks = tmp_path / "signalled"
    wrapper = tmp_path / "farm.py"
    wrapper.write_text(textwrap.dedent(f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from torch.utils.data import get_worker_info
        started, setpgid = Path({str(marks)!r} + ".background"), os.setpgid
        def signalled_first(pid, group):  # the first worker of the stage after the first one
            info = get_worker_info()
            if info is not None and info.id == 0 and started.exists() and not Path({str(marks)!r}).exists():
                Path({str(marks)!r}).touch()
                os.killpg(os.getpgid(0), signal.SIGTERM)
                time.sleep(1)
            started.touch()
            return setpgid(pid, group)
        os.setpgid = signalled_first
        from core.cli import main
        sys.exit(main(sys.argv[1:]))
    """))
    run = tmp_path / "run"
    command = [sys.executable, str(wrapper), "finetune", "--from", str(small_bundle.path), "--data",
               str(tmp_path / "show"), "--out", str(tmp_path / "out"), "--steps", "2,1,1", "--crop", "32", "--batch",
               "2", "--workers", "2", "--threads", "1", "--run-dir", str(run), "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, start_new_session=True,
                          env=dict(os.environ, TMPDIR=str(tmp), OMP_NUM_THREADS="1"))
    assert marks.exists()  # the signal was sent
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "SIGTERM: stopping after this step" in done.stderr
    assert (run / "background.safetensors").is_file() and (run / "foreground.safetensors").is_file()
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith("pymp-")) == []


def _unreadable_photo_factory(seed: int):
    """Batches whose drawing meets a damaged photo, as a worker reading the data set does."""

    def batches(role: str) -> dict[str, torch.Tensor]:
        raise InputError("/show/backgrounds/broken.jpg cannot be read as an image (image file is truncated)")

    return batches


def _killed_factory(seed: int):
    """Batches whose worker is killed as it draws (the kernel's out-of-memory killer)."""

    def batches(role: str) -> dict[str, torch.Tensor]:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("not reached")

    return batches


def test_a_worker_s_error_reaches_the_run_as_its_own_message_not_torch_s_traceback() -> None:
    source = ParallelBatches(_unreadable_photo_factory, workers=2, seed=0, prefetch=1)
    try:
        with pytest.raises(InputError) as caught:
            source("alpha")
    finally:
        source.close()
    # The run's one ERROR: line: the file and what is wrong, not "Caught InputError in DataLoader worker
    # process 0. Original Traceback (most recent call last): ..." with the file at its end.
    assert str(caught.value) == "/show/backgrounds/broken.jpg cannot be read as an image (image file is truncated)"
    assert source._iterator is None  # the workers stopped with it


def test_a_worker_killed_as_it_draws_ends_the_run_with_an_lbsmatte_error_naming_workers() -> None:
    from core.errors import TrainingError

    source = ParallelBatches(_killed_factory, workers=1, seed=0, prefetch=1)
    try:
        with pytest.raises(TrainingError, match=r"a --workers process drawing the batches ended unexpectedly .*"
                                                r"fewer --workers, or 0"):
            source("alpha")
    finally:
        source.close()


@pytest.mark.parametrize(("workers", "cpus", "quota", "said"), [
    (8, 16, 4.0, "--workers 8: this job may use 4 CPU(s)"),  # a farm's cgroup quota on a 16-core node
    (4, 4, None, "--workers 4: this job may use 4 CPU(s)"),  # every core taken, none left for the step
    (3, 4, None, None),
    (1, 64, 2.5, None),  # a quota of 2.5 CPUs: 2, one for the worker
])
def test_workers_that_oversubscribe_the_job_s_cpus_are_said(monkeypatch, caplog, workers, cpus, quota, said) -> None:
    import logging

    import core.pipeline
    from core.training import cli

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setattr(core.pipeline, "cgroup_cpus", lambda: quota)
    with caplog.at_level(logging.WARNING, logger="core.training.cli"):
        cli.warn_oversubscribed_workers(workers)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if said is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warnings[0].startswith(said)
        assert warnings[0].endswith(f"use at most {min(cpus, int(quota or cpus)) - 1}")


def test_train_says_workers_beyond_the_job_s_cpus_before_it_starts(tmp_path, caplog, monkeypatch) -> None:
    # Through the command, with the data missing so that nothing trains: the line comes with the checks.
    import core.pipeline
    from core.cli import main

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(core.pipeline, "cgroup_cpus", lambda: None)
    code = main(["train", "--out", str(tmp_path / "b"), "--steps", "1", "--workers", "6", "--data",
                 str(tmp_path / "nodata"), "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert code == 2  # the data is not there
    assert any(r.getMessage().startswith("--workers 6: this job may use 2 CPU(s)") and r.levelname == "WARNING"
               for r in caplog.records)
