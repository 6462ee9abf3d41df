"""``tools/gpu_train.py``: the data copy that travels to a GPU machine, and time-boxed runs there."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("gpu_train", REPO / "tools" / "gpu_train.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_train"] = module
    spec.loader.exec_module(module)
    return module


def _data(root: Path) -> Path:
    """Two objects with alphas and trimaps, one without an alpha, and three background photos."""
    rng = np.random.default_rng(0)
    am = root / "alphamatting"
    yy, xx = np.mgrid[0:80, 0:96]
    for name, radius in (("GT01", 22), ("GT02", 30)):
        alpha = np.clip((radius - np.hypot(yy - 40, xx - 48)) / 5, 0, 1)
        image = rng.random((80, 96, 3)) * 0.5 + alpha[..., None] * 0.5
        for sub, pixels in (("image", image), ("alpha", alpha)):
            (am / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray((pixels * 255).round().astype(np.uint8)).save(am / sub / f"{name}.png")
        trimap = np.where(alpha >= 1, 255, np.where(alpha <= 0, 0, 128)).astype(np.uint8)
        for variant in ("Trimap1", "Trimap2"):
            (am / "trimap" / variant).mkdir(parents=True, exist_ok=True)
            Image.fromarray(trimap).save(am / "trimap" / variant / f"{name}.png")
    Image.fromarray((rng.random((80, 96, 3)) * 255).astype(np.uint8)).save(am / "image" / "GT03.png")  # no alpha
    (root / "backgrounds").mkdir()
    for i, size in enumerate(((300, 200), (120, 90), (200, 400))):
        Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(root / "backgrounds" / f"bg{i}.jpg")
    return root


def test_prepare_copies_the_objects_byte_for_byte_and_shrinks_the_backgrounds(tmp_path) -> None:
    tool = _tool()
    data = _data(tmp_path / "data")
    out = tmp_path / "payload"
    assert tool.main(["prepare", "--data", str(data), "--out", str(out), "--max-side", "150"]) == 0
    copied = out / "data" / "alphamatting"
    for name in ("GT01", "GT02"):
        for sub in ("image", "alpha", "trimap/Trimap1", "trimap/Trimap2"):
            assert (copied / sub / f"{name}.png").read_bytes() == (data / "alphamatting" / sub / f"{name}.png").read_bytes()
    assert not (copied / "image" / "GT03.png").exists()  # no alpha: training never reads it
    sizes = {p.name: Image.open(p).size for p in (out / "data" / "backgrounds").iterdir()}
    assert sizes == {"bg0.jpg": (150, 100), "bg1.jpg": (120, 90), "bg2.jpg": (75, 150)}
    payload = json.loads((out / "PAYLOAD.json").read_text())
    assert payload["objects"] == ["GT01", "GT02"] and payload["backgrounds"] == 3
    assert "long side at most 150 px" in payload["backgrounds_note"]


def test_prepare_keeps_the_background_photos_names_and_so_their_split(tmp_path) -> None:
    """The photos' training/validation split is made by their names: prepare saved every photo as
    NAME.jpg, so a .png or .jpeg photo was split otherwise on the GPU machine (a fold trained there
    drew photos the composites made here hold out), and a.png beside a.jpg became one photo."""
    from core.training.data import _background_split, background_photos

    tool = _tool()
    data = _data(tmp_path / "data")
    rng = np.random.default_rng(2)
    for name in ("bg0.png", "pier.jpeg", "roof.png", "wall.png"):
        Image.fromarray((rng.random((60, 80, 3)) * 255).astype(np.uint8)).save(data / "backgrounds" / name)
    (data / "backgrounds" / "._bg1.jpg").write_bytes(b"\0\5\26\7 a macOS resource fork")
    out = tmp_path / "payload"
    assert tool.main(["prepare", "--data", str(data), "--out", str(out), "--max-side", "150"]) == 0
    here, there = (background_photos(d / "backgrounds") for d in (data, out / "data"))
    assert there == here == ["bg0.jpg", "bg0.png", "bg1.jpg", "bg2.jpg", "pier.jpeg", "roof.png", "wall.png"]
    assert _background_split(there) == _background_split(here)
    assert Image.open(out / "data" / "backgrounds" / "roof.png").format == "PNG"


def test_a_job_is_a_plain_name_and_the_arguments_of_lbsmatte_train() -> None:
    tool = _tool()
    assert tool._job("paper0=--size paper --batch 16") == ("paper0", ["--size", "paper", "--batch", "16"])
    assert tool._caps(["--batch", "2", "--steps", "5,6,7"]) == (["--batch", "2"], [5, 6, 7])
    assert tool._caps(["--steps", "4"]) == ([], [4, 4, 4])
    assert tool._caps(["--batch", "2"]) == (["--batch", "2"], [tool.NO_CAP] * 3)
    import argparse

    for bad in ("no-equals-sign", "=--batch 2", "a/b=--batch 2", "pàper=--batch 2"):
        with pytest.raises(argparse.ArgumentTypeError, match="NAME=ARGS"):
            tool._job(bad)


def _stamps(folder: Path, keys: list[str]) -> dict[str, float | None]:
    """The modification times of the cached colours of ``keys`` in ``folder`` (None: absent)."""
    return {key: (folder / f"{key}_fg.npy").stat().st_mtime if (folder / f"{key}_fg.npy").exists() else None
            for key in keys}


def test_run_trains_each_stage_to_its_cap_and_writes_the_bundle(tmp_path) -> None:
    from core.training.data import CACHE_DIR, _file_key
    from core.weights import load_bundle

    data = _data(tmp_path / "data")
    out = tmp_path / "runs"
    job = ("tiny=--hold-out '' --steps 2,1,3 --batch 2 --crop 32 --backgrounds 1 --device cpu --threads 1 "
           "--workers 1 --procedural 0.5")
    am = data / "alphamatting"
    keys = [_file_key(am / "image" / f"{name}.png", am / "alpha" / f"{name}.png") + "_clean1" for name in ("GT01", "GT02")]
    in_checkout = _stamps(REPO / ".cache" / "fg", keys)
    # A process of its own, as the tool runs: this test process may already have used numba's OpenMP
    # pool (pymatting in other tests), after which the processes it forks would be killed.
    done = subprocess.run([sys.executable, str(REPO / "tools" / "gpu_train.py"), "run", "--data", str(data), "--out",
                           str(out), "--job", job, "--stage-seconds", "60,60,60", "--estimate-workers", "1",
                           "--return-to", str(tmp_path / "OUT")],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, TMPDIR=str(tmp_path)))  # its workers' pymp-* folders stay there
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tiny: bundle written with steps [2, 1, 3]" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    stages = summary["stages"]["tiny"]
    assert [stages[r]["step"] for r in ("background", "foreground", "alpha")] == [2, 1, 3]
    assert stages["bundle"]["exit"] == 0
    bundle = load_bundle(out / "tiny" / "bundle")
    assert {r: s["step"] for r, s in bundle.manifest["training"]["stages"].items()} == {
        "background": 2, "foreground": 1, "alpha": 3}
    assert bundle.manifest["training"]["data"]["workers"]["processes"] == 1
    # The colours estimated up front are cached where the trainings read them ($LBSMATTE_COLOUR_CACHE,
    # conftest's folder, inherited), not in the checkout's .cache/fg whatever the variable says.
    assert CACHE_DIR == Path(os.environ["LBSMATTE_COLOUR_CACHE"])
    assert all((CACHE_DIR / f"{key}_fg.npy").is_file() for key in keys)
    assert _stamps(REPO / ".cache" / "fg", keys) == in_checkout
    _check_the_bundle_comes_back(_tool(), out / "tiny" / "bundle", tmp_path / "OUT", tmp_path)


def _check_the_bundle_comes_back(tool, bundle: Path, returned: Path, tmp_path: Path) -> None:
    """What a lent GPU machine's $OUT brings back (8 files of at most 16 MiB, no checkpoints) holds
    the bundle whole, and ``unpack`` makes the folder that ``--weights`` loads."""
    from core.weights import load_bundle

    assert sorted(p.name for p in returned.iterdir()) == ["summary.json", "tiny.zip.001"]
    assert json.loads((returned / "summary.json").read_text())["stages"]["tiny"]["bundle"]["exit"] == 0
    assert tool.main(["unpack", str(returned / "tiny.zip.001"), "--out", str(tmp_path / "back")]) == 0
    files = {p.name: p.read_bytes() for p in bundle.iterdir()}
    assert {p.name: p.read_bytes() for p in (tmp_path / "back").iterdir()} == files
    # A paper bundle is 67 MiB: it comes back in parts, all of which unpack needs.
    assert tool.PART_SIZE < tool.RETURN_FILE_LIMIT
    tool.PART_SIZE = max(len(b) for b in files.values()) // 3
    (tmp_path / "parts").mkdir()
    parts = tool._pack(bundle, tmp_path / "parts", "tiny")
    assert len(parts) > 3 and all(p.stat().st_size <= tool.PART_SIZE for p in parts)
    assert tool.main(["unpack", *map(str, reversed(parts)), "--out", str(tmp_path / "back2")]) == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "back2").iterdir()} == files
    assert load_bundle(tmp_path / "back2").manifest["name"] == "tiny"
    with pytest.raises(SystemExit, match="parts of tiny.zip missing: 002 "):
        tool.main(["unpack", str(parts[0]), *map(str, parts[2:]), "--out", str(tmp_path / "back3")])
    with pytest.raises(SystemExit, match=r"tiny\.zip\.\*: not a whole bundle .*was the last part cut short"):
        tool.main(["unpack", *map(str, parts[:-1]), "--out", str(tmp_path / "back3")])
    with pytest.raises(SystemExit, match=f"--out {tmp_path / 'back2'} is not empty"):
        tool.main(["unpack", *map(str, parts), "--out", str(tmp_path / "back2")])


def test_prepare_never_deletes_the_data_it_copies(tmp_path) -> None:
    tool = _tool()
    data = _data(tmp_path / "data")
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    # --out/data would be the source itself; --out inside the source would write into it
    for out in (tmp_path, data / "payload", data):
        with pytest.raises(SystemExit, match=f"--out {out} overlaps the data it copies"):
            tool.main(["prepare", "--data", str(data), "--out", str(out)])
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before


def test_prepare_replaces_only_a_data_folder_it_made(tmp_path) -> None:
    # --out a folder of the user's holding a data/ of its own (a project folder): prepare deleted
    # it, with everything in it, to put the payload there.
    tool = _tool()
    source = _data(tmp_path / "source")
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "shots.csv").write_text("mine")
    with pytest.raises(SystemExit, match=f"--out {project} holds {project / 'data'}, which prepare did not make"):
        tool.main(["prepare", "--data", str(source), "--out", str(project)])
    assert sorted(p.name for p in project.rglob("*")) == ["data", "shots.csv"]
    (project / "data.partial").mkdir()
    with pytest.raises(SystemExit, match=f"holds {project / 'data'} and {project / 'data.partial'}, which prepare"):
        tool.main(["prepare", "--data", str(source), "--out", str(project)])
    # Its own payload, and one an earlier prepare made (no mark, PAYLOAD.json beside it), are replaced.
    out = tmp_path / "payload"
    assert tool.main(["prepare", "--data", str(source), "--out", str(out)]) == 0
    assert tool.main(["prepare", "--data", str(source), "--out", str(out)]) == 0
    (out / "data" / tool.PAYLOAD_MARK).unlink()
    assert tool.main(["prepare", "--data", str(source), "--out", str(out), "--max-side", "50"]) == 0
    assert (out / "data" / tool.PAYLOAD_MARK).is_file() and not (out / "data.partial").exists()


def test_prepare_names_missing_parts_before_touching_the_old_payload(tmp_path) -> None:
    tool = _tool()
    data = _data(tmp_path / "data")
    out = tmp_path / "payload"
    assert tool.main(["prepare", "--data", str(data), "--out", str(out)]) == 0
    old = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (data / "alphamatting" / "image" / "GT02.png").unlink()
    with pytest.raises(SystemExit, match=r"incomplete training data .*missing .*image/GT02\.png"):
        tool.main(["prepare", "--data", str(data), "--out", str(out)])
    shutil.rmtree(data / "alphamatting" / "trimap")
    with pytest.raises(SystemExit, match=r"missing .*alphamatting/trimap/"):
        tool.main(["prepare", "--data", str(data), "--out", str(out)])
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == old


def test_a_payload_over_the_carry_limit_is_refused_and_the_old_one_kept(tmp_path, monkeypatch) -> None:
    tool = _tool()
    data = _data(tmp_path / "data")
    out = tmp_path / "payload"
    assert tool.main(["prepare", "--data", str(data), "--out", str(out), "--max-side", "50"]) == 0
    old = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setattr(tool, "CARRY_LIMIT", sum(len(b) for b in old.values()) + 100)
    with pytest.raises(SystemExit, match=r"over the 0 MiB that travel .*--max-side \(now 400\)"):
        tool.main(["prepare", "--data", str(data), "--out", str(out), "--max-side", "400", "--quality", "100"])
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == old  # no data.partial left either


def test_prepare_cut_short_leaves_the_old_payload_whole(tmp_path, monkeypatch) -> None:
    tool = _tool()
    data = _data(tmp_path / "data")
    out = tmp_path / "payload"
    assert tool.main(["prepare", "--data", str(data), "--out", str(out)]) == 0
    old = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    from PIL import Image as PILImage

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # a SIGTERM/Ctrl-C while the photos are re-encoded

    monkeypatch.setattr(PILImage.Image, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        tool.main(["prepare", "--data", str(data), "--out", str(out), "--max-side", "20"])
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in (out / "data").rglob("*") if p.is_file()} == {
        p: b for p, b in old.items() if (out / "data") in p.parents}
    assert json.loads((out / "PAYLOAD.json").read_text())["bytes"] == sum(
        len(b) for p, b in old.items() if (out / "data") in p.parents)
    assert tool.main(["prepare", "--data", str(data), "--out", str(out), "--max-side", "20"]) == 0
    assert not (out / "data.partial").exists()
    assert max(Image.open(p).size[0] for p in (out / "data" / "backgrounds").iterdir()) == 20


def test_run_refuses_bad_jobs_and_missing_data_by_name(tmp_path, capsys) -> None:
    tool = _tool()
    base = ["run", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "runs")]
    for job, message in (("a=--steps 1,2", "--job a: --steps takes one or three counts (BG,FG,alpha), got '1,2'"),
                         ("a=--steps", "--job a: --steps takes one or three counts"),
                         ("a=--steps x", "got 'x'"),
                         ("a=--out elsewhere --batch 2", "--job a: --out is set by this tool for every job"),
                         ("a=--data=/elsewhere", "--job a: --data=/elsewhere is set by this tool"),
                         ("a=--hold-out 'GT01", "--job a: cannot split its arguments")):
        with pytest.raises(SystemExit):
            tool.main(base + ["--job", job])
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--job names must differ: a given more than once"):
        tool.main(base + ["--job", "a=--batch 2", "--job", "a=--batch 4"])
    with pytest.raises(SystemExit, match="--stage-seconds takes three positive numbers .*got '1,x,3'"):
        tool.main(base + ["--job", "a=--batch 2", "--stage-seconds", "1,x,3"])
    with pytest.raises(SystemExit, match=f"no training data in {tmp_path / 'nothing'}"):
        tool.main(base + ["--job", "a=--batch 2"])
    assert not (tmp_path / "runs").exists()


def test_a_sigterm_to_run_stops_its_trainings_and_starts_nothing_more(stopped_by_sigterm) -> None:
    # The device's time limit (or a kill) signals gpu_train alone: each training it runs from its
    # job threads must get the signal (checkpoint, exit 3) and no job may start another stage.
    out = stopped_by_sigterm(f"""
        import signal, sys, threading
        sys.path.insert(0, {str(REPO / "tools")!r})
        import gpu_train
        codes = []
        def job():
            codes.append(gpu_train._call([sys.executable, CHILD], sys.stdout))
            codes.append(gpu_train._call([sys.executable, "-c", "print('a next stage ran')"], sys.stdout))
        signal.signal(signal.SIGTERM, gpu_train._stop)
        thread = threading.Thread(target=job)
        thread.start()
        thread.join()
        print("codes", *codes, flush=True)
    """)
    assert out.split() == ["codes", "3", "3"]  # the second never started


def test_a_sigterm_while_the_colours_are_estimated_stops_the_workers_and_exits_3(stopped_by_sigterm, tmp_path) -> None:
    # The device's time limit can fall in the colour estimation (72 s on one run): the estimating
    # processes must stop with run, not go on orphaned, and run exits 3 as when it stops a training.
    data = tmp_path / "data"
    for sub in ("image", "alpha"):
        (data / "alphamatting" / sub).mkdir(parents=True)
        (data / "alphamatting" / sub / "GT01.png").write_bytes(b"")
    (data / "backgrounds").mkdir()
    pids = tmp_path / "workers"
    out = stopped_by_sigterm(f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO / "tools")!r})
        import gpu_train
        def slow(paths):
            with open({str(pids)!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            print("ready", flush=True)
            time.sleep(60)
            return "GT01"
        gpu_train._estimate = slow
        code = gpu_train.main(["run", "--data", {str(data)!r}, "--out", {str(tmp_path / "runs")!r},
                               "--job", "a=--batch 2", "--estimate-workers", "2"])
        print("code", code, flush=True)
    """)
    assert out.splitlines()[-1] == "code 3", out
    assert "stopped while estimating the objects' colours" in out
    import os
    import time

    time.sleep(0.5)
    for pid in map(int, pids.read_text().split()):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        os.kill(pid, 9)
        raise AssertionError(f"estimating worker {pid} went on after run stopped")
    assert not (tmp_path / "runs").exists()


def test_prepare_counts_the_checkout_that_travels_with_the_payload(tmp_path, monkeypatch) -> None:
    # The lent machine takes the checkout's tracked and untracked-not-ignored files as well as the
    # carried payload, all in 64 MiB: a payload that fits alone can still make the call refused.
    tool = _tool()
    data = _data(tmp_path / "data")
    checkout = tmp_path / "checkout"
    (checkout / "docs").mkdir(parents=True)
    (checkout / "docs" / "big.json").write_bytes(b"x" * 50_000)
    (checkout / "notes.txt").write_bytes(b"y" * 1_000)  # untracked, not ignored: travels too
    (checkout / ".gitignore").write_text("/gpu_payload/\n")
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    subprocess.run(["git", "-C", str(checkout), "add", "docs", ".gitignore"], check=True)
    out = checkout / "gpu_payload"
    assert tool.main(["prepare", "--data", str(data), "--out", str(out), "--max-side", "50"]) == 0
    payload = json.loads((out / "PAYLOAD.json").read_text())
    assert payload["checkout_bytes"] == 50_000 + 1_000 + len("/gpu_payload/\n")
    (out / "wheels").mkdir()
    (out / "wheels" / "a.whl").write_bytes(b"w" * 2_000)
    old = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setattr(tool, "CARRY_LIMIT", payload["bytes"] + 40_000)  # the payload alone fits
    with pytest.raises(SystemExit, match=r"with 0\.0 MiB beside it .* of checkout \(largest: docs 0\.0 MiB, \. 0\.0 MiB\): "):
        tool.main(["prepare", "--data", str(data), "--out", str(out), "--max-side", "50"])
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == old
    monkeypatch.setattr(tool, "CARRY_LIMIT", payload["bytes"] + 52_500)  # the checkout fits, the wheels not
    with pytest.raises(SystemExit, match=r"over the 0 MiB"):
        tool.main(["prepare", "--data", str(data), "--out", str(out), "--max-side", "50"])
    monkeypatch.setattr(tool, "CARRY_LIMIT", payload["bytes"] + 56_000)
    assert tool.main(["prepare", "--data", str(data), "--out", str(out), "--max-side", "50"]) == 0


def test_prepare_warns_when_the_wheels_the_gpu_machine_lacks_are_not_beside_the_data(tmp_path, capsys) -> None:
    tool = _tool()
    data = _data(tmp_path / "data")
    out = tmp_path / "payload"
    assert tool.main(["prepare", "--data", str(data), "--out", str(out)]) == 0
    assert f"WARNING: no wheel of OpenImageIO, pymatting in {out / 'wheels'}" in capsys.readouterr().out
    (out / "wheels").mkdir()
    (out / "wheels" / "openimageio-3.2.2.0-cp312-cp312-manylinux_2_28_x86_64.whl").write_bytes(b"")
    (out / "wheels" / "pymatting-1.1.16-py3-none-any.whl").write_bytes(b"")
    assert tool.main(["prepare", "--data", str(data), "--out", str(out)]) == 0
    assert "WARNING" not in capsys.readouterr().out


def test_run_refuses_a_machine_without_cuda_or_the_packages_before_any_work(tmp_path, monkeypatch) -> None:
    # On a lent GPU machine a job's --device cuda without CUDA would train on the CPU for the whole
    # run (train falls back with a warning in the job's log), and a missing OpenImageIO or pymatting
    # ended it in a traceback from the colour estimation's workers.
    import os

    tool = _tool()
    data = _data(tmp_path / "data")
    base = ["run", "--data", str(data), "--out", str(tmp_path / "runs"), "--estimate-workers", "1"]
    probe = tool._probe()  # this machine's, in a process of its own
    assert probe["missing"] == {}
    monkeypatch.setattr(tool, "_probe", lambda: probe | {"cuda": False, "build": None})
    for job in ("gpu=--batch 2 --device cuda", "gpu=--device=cuda:0"):
        with pytest.raises(SystemExit, match=r"--job gpu asks for --device cuda, but .* has no CUDA \(a CPU-only PyTorch "
                                             r"build\): the trainings would run on the CPU"):
            tool.main(base + ["--job", "cpu=--device cpu", "--job", job])
    monkeypatch.undo()
    blocked = tmp_path / "blocked" / "pymatting"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'pymatting'\", name='pymatting')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(blocked.parent), os.environ.get("PYTHONPATH", "")]))
    with pytest.raises(SystemExit, match=r"cannot import pymatting \(No module named 'pymatting'\): carry the wheels "
                                         r"in gpu_payload/wheels"):
        tool.main(base + ["--job", "cpu=--device cpu"])
    assert not (tmp_path / "runs").exists()


def test_the_machine_check_leaves_the_colour_estimation_s_workers_working(tmp_path) -> None:
    # Importing pymatting in run's own process to check it took GNU OpenMP's pool there: every
    # forked estimating worker was killed at its first numba kernel and respawned, for ever.
    script = tmp_path / "check.py"
    script.write_text(f"""
import multiprocessing, sys
import numpy as np
sys.path.insert(0, {str(REPO / "tools")!r})
import gpu_train

def estimate(_):
    from pymatting import estimate_foreground_ml
    rng = np.random.default_rng(0)
    estimate_foreground_ml(rng.random((40, 40, 3)), rng.random((40, 40)))
    return "estimated"

if __name__ == "__main__":
    gpu_train._check_machine([("cpu", ["--device", "cpu"])])
    pool = multiprocessing.Pool(1, initializer=gpu_train._estimate_worker_init)
    try:
        print(pool.map_async(estimate, [0]).get(timeout=120)[0], flush=True)
    finally:
        pool.terminate()
""")
    done = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "estimated", done.stdout + done.stderr


def test_the_budget_cuts_the_stages_boxes_and_the_bundle_is_still_written(tmp_path, monkeypatch) -> None:
    # The device's limit stops the command whatever it is doing: the run must end itself in time, with
    # a bundle of the steps reached, however long the colours or the trainings' start-up took.
    tool = _tool()
    clock = [1000.0]
    calls: list[list[str]] = []

    def call(command, stream):
        calls.append(command)
        if "--max-minutes" in command:
            clock[0] += 60 * float(command[command.index("--max-minutes") + 1]) + 5  # + the process's start-up
        return 0

    monkeypatch.setattr(tool.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(tool, "_call", call)
    monkeypatch.setattr(tool, "_progress", lambda run_dir: [7, 0, 0])
    log: dict = {}
    tool._train("a", ["--batch", "2"], tmp_path / "data", tmp_path / "runs", [70, 100, 200], log, deadline=1000 + 120)
    boxes = [round(60 * float(c[c.index("--max-minutes") + 1])) for c in calls if "--max-minutes" in c]
    assert boxes == [70, 45]  # the foreground gets what is left; the alpha stage, under a second, none
    assert log["a"]["alpha"]["skipped"] == "--budget spent"
    assert "--max-minutes" not in calls[-1] and calls[-1][calls[-1].index("--steps") + 1] == "7,0,0"
    assert log["a"]["bundle"]["exit"] == 0
    with pytest.raises(SystemExit, match="--budget must be a positive number of seconds, not 0.0"):
        tool.main(["run", "--data", str(tmp_path), "--out", str(tmp_path / "runs"), "--job", "a=--batch 2", "--budget", "0"])


def test_the_readme_s_gpu_commands_parse_and_the_device_command_fits(monkeypatch) -> None:
    # The device call takes one command of at most 2,000 characters and has 600 s at most; what it
    # brings back is $OUT alone. The README's steps must be what the tool takes.
    tool = _tool()
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text[text.index("### Training on a GPU machine"):]
    block = block[block.index("```bash\n") + 8:]
    lines = block[:block.index("```")].replace("\\\n", " ").splitlines()
    device = next(line for line in lines if "pip install" in line)
    assert len(device) <= 2000 and "gpu_payload/wheels/*.whl" in device
    seen: dict = {}
    for command in ("prepare", "run", "unpack"):
        monkeypatch.setattr(tool, command, lambda args, command=command: seen.setdefault(command, args) and 0)
    prepare = next(line for line in lines if "gpu_train.py prepare" in line)
    unpack = next(line for line in lines if "gpu_train.py unpack" in line)
    download = next(line for line in lines if "pip download" in line)
    for line in (prepare, device, unpack):
        tool.main(shlex.split(line.split("tools/gpu_train.py ", 1)[1]))
    assert seen["prepare"].out == REPO / "gpu_payload" and "-d gpu_payload/wheels " in download
    args = seen["run"]
    assert args.data == Path("gpu_payload/data") and args.return_to == Path("$OUT")
    stages = [float(v) for v in args.stage_seconds.split(",")]
    assert sum(stages) <= args.budget <= 600 - 120  # the bundle written and packed well before the limit
    assert [name for name, _ in args.job] == ["paper0"] and "--device" in args.job[0][1]
    assert seen["unpack"].parts == [Path("FILES_AT/paper0.zip.*")]
    assert f"--weights {seen['unpack'].out}" in next(line for line in lines if "lbsmatte evaluate" in line)


def test_a_failed_stage_says_why_on_the_console(tmp_path, monkeypatch, capsys) -> None:
    # A device call shows the console's tail, not the job's train.log: out of GPU memory must be read there.
    tool = _tool()
    oom = ("ERROR: out of memory on cuda training the background network at step 12, with batches of 16 crops of "
           "192 px (--batch 16 --crop 192; paper networks, bf16); no checkpoint was written yet")

    def call(command, stream):
        stream.write("some progress\n" + oom + "\n")
        stream.flush()
        return 1

    monkeypatch.setattr(tool, "_call", call)
    monkeypatch.setattr(tool, "_progress", lambda run_dir: [0, 0, 0])
    log: dict = {}
    tool._train("a", ["--batch", "16"], tmp_path / "data", tmp_path / "runs", [70, 100, 200], log)
    assert capsys.readouterr().out.splitlines() == ["a: background at step 0 (0 s, exit 1)", f"a: {oom}"]
    assert log["a"]["background"]["exit"] == 1 and "bundle" not in log["a"]


def test_a_job_without_a_bundle_returns_its_log_and_too_much_is_named(tmp_path, capsys) -> None:
    import argparse

    tool = _tool()
    out, back = tmp_path / "runs", tmp_path / "OUT"
    (out / "a").mkdir(parents=True)
    (out / "a" / "train.log").write_text("ERROR: out of memory on cuda ...\n")
    (out / "summary.json").write_text("{}")
    args = argparse.Namespace(return_to=back, out=out, job=[("a", ["--batch", "16"])])
    tool._return(args, {"a": {"background": {"exit": 1, "step": 0, "seconds": 3.0}}})
    assert sorted(p.name for p in back.iterdir()) == ["a.train.log", "summary.json"]
    assert "WARNING" not in capsys.readouterr().out
    for i in range(7):
        (back / f"extra{i}").write_bytes(b"")
    tool._return(args, {"a": {}})
    assert "WARNING: " + str(back) + " holds 9 files" in capsys.readouterr().out


def test_the_summary_and_logs_reach_out_after_every_stage_not_only_at_the_end(tmp_path, monkeypatch) -> None:
    # The device's time limit can kill the run outright (rc 137), with no time to write anything then:
    # what $OUT holds by each stage's end is all that comes back. It must say where each stage got to.
    tool = _tool()
    data, out, back = tmp_path / "data", tmp_path / "runs", tmp_path / "OUT"
    for sub in ("image", "alpha"):
        (data / "alphamatting" / sub).mkdir(parents=True)
        (data / "alphamatting" / sub / "GT01.png").write_bytes(b"")
    (data / "backgrounds").mkdir()
    steps = [0, 0, 0]
    seen: list = []

    def call(command, stream):
        stream.write(f"trained {len(seen)}\n")
        stream.flush()
        summary = back / "summary.json"
        seen.append((json.loads(summary.read_text())["stages"] if summary.exists() else None,
                     (back / "a.train.log").read_text() if (back / "a.train.log").exists() else None))
        if "--max-minutes" in command:
            steps[len(seen) - 1] = 10 * len(seen)
        else:
            (out / "a" / "bundle").mkdir()
            (out / "a" / "bundle" / "manifest.json").write_text("{}")
        return 3 if "--max-minutes" in command else 0

    monkeypatch.setattr(tool, "_check_machine", lambda jobs: None)
    monkeypatch.setattr(tool, "_estimate_all", lambda pairs, workers: ["GT01"])
    monkeypatch.setattr(tool, "_call", call)
    monkeypatch.setattr(tool, "_progress", lambda run_dir: list(steps))
    assert tool.main(["run", "--data", str(data), "--out", str(out), "--return-to", str(back), "--job", "a=--batch 2",
                      "--stage-seconds", "1,1,1"]) == 0
    assert seen[0] == (None, None)
    assert {role: stage["step"] for role, stage in seen[2][0]["a"].items()} == {"background": 10, "foreground": 20}
    assert seen[2][1] == "trained 0\ntrained 1\n"
    assert seen[3][0]["a"]["alpha"] == {"exit": 3, "step": 30, "seconds": seen[3][0]["a"]["alpha"]["seconds"]}
    # The bundle came back: its job's log is left out of the 8 files, as before.
    assert sorted(p.name for p in back.iterdir()) == ["a.zip.001", "summary.json"]
    assert json.loads((back / "summary.json").read_text())["stages"]["a"]["bundle"]["exit"] == 0
