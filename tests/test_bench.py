"""Smoke test of the pipeline benchmark (bench/bench_pipeline.py): it runs end to end on a tiny
frame with tiny untrained networks and writes the JSON it promises. No timing is asserted."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str) -> object:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location(f"bench.{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("unknown", [0.05, 0.15])
def test_frames_have_the_requested_unknown_band(tmp_path: Path, unknown: float) -> None:
    frames = _load("frames")
    frame = frames.build_frame(320, 180, unknown, data=tmp_path / "absent")  # procedural stand-in
    assert frame.plate.shape == (180, 320, 3) and frame.plate.dtype == np.float32
    assert set(np.unique(frame.trimap).tolist()) <= {0.0, 0.5, 1.0}
    assert frame.plate.min() >= 0 and frame.plate.max() <= 1
    assert abs(frame.unknown_fraction - unknown) < 0.03
    # Known regions agree with the exact alpha the plate was composited with.
    assert (frame.alpha[frame.trimap == 1.0] >= 0.5).all() and (frame.alpha[frame.trimap == 0.0] < 0.5).all()


def _one_photo_set(root: Path, shape: tuple[int, int] = (40, 48), edge: float = 18, soft: float = 12,
                   wobble: float = 0.0) -> None:
    """An alphamatting-style set of one photo ``A`` (``shape``): a soft vertical edge at ``edge`` px,
    ``soft`` px wide, waving ``wobble`` px down the frame, its matte and its trimap ``T1``."""
    from PIL import Image

    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    alpha = np.clip((xx - edge + wobble * np.sin(yy / 5.0)) / soft, 0, 1)
    plate = alpha[..., None] * [0.9, 0.6, 0.2] + (1 - alpha[..., None]) * [0.1, 0.2, 0.4]
    trimap = np.where(alpha <= 0, 0, np.where(alpha >= 1, 255, 128))
    for sub, pixels in (("image", plate * 255), ("alpha", alpha * 255), ("trimap/T1", trimap)):
        (root / sub).mkdir(parents=True)
        Image.fromarray(np.asarray(pixels, np.uint8)).save(root / sub / "A.png")


@pytest.mark.parametrize("solver", ["estimate_alpha_cf", "estimate_alpha_knn"])
def test_the_benches_pymatting_baseline_sees_the_plate_unclipped_and_keeps_the_known_regions(solver: str, tmp_path: Path,
                                                                                          capsys) -> None:
    """exposure, grain, flicker and motionblur set pymatting beside LBSMatte through one function:
    the plate as given (values above 1 and below 0 reach the solver), the alpha clipped to [0, 1],
    the trimap's known regions (and its stored 128/255 nowhere but the band) kept, no warning or
    stdout line from pymatting."""
    import warnings

    pymatting = pytest.importorskip("pymatting")
    photos = _load("photos")
    _one_photo_set(tmp_path)
    plate, tri, _ = photos.photo(tmp_path, "A", "T1", False, linear=True)
    plate = (plate * 4.0 - 0.05).astype(np.float32)  # two stops over, and a few negatives
    assert plate.max() > 1 and plate.min() < 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        alpha = photos.pymatting_alpha(plate, tri, solver)
    assert capsys.readouterr().out == ""
    unknown = (tri > 0) & (tri < 1)
    assert alpha.dtype == np.float64 and alpha.shape == tri.shape
    assert np.array_equal(alpha[~unknown], tri[~unknown])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.clip(getattr(pymatting, solver)(plate.astype(np.float64), tri.astype(np.float64)), 0, 1)
    assert np.array_equal(alpha[unknown], expected[unknown])


def test_exposure_bench_scores_every_photo_trimap_and_exposure(small_bundle, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")  # tiny untrained networks: the plumbing only
    exposure = _load("exposure")
    _one_photo_set(tmp_path)
    rows = exposure.measure(tmp_path, ["A"], ["T1"], [0.0625, 4.0], small_bundle, half=True, closed_form=False)
    assert [(r["name"], r["trimap"], r["exposure"]) for r in rows] == [("A", "T1", 0.0625), ("A", "T1", 4.0)]
    assert all(np.isfinite(r["sad"]) and np.isfinite(r["grad"]) for r in rows)
    assert capsys.readouterr().out.count('"sad"') == 2
    # 4 stops under is matted scaled up (the row says by how much), 2 over is not; and with
    # --no-match-exposure as it is, the figures before exposure matching.
    assert rows[0]["scale"] > 1 and rows[1]["scale"] == 1.0
    as_is = exposure.measure(tmp_path, ["A"], ["T1"], [0.0625], small_bundle, half=True, closed_form=False,
                             match_exposure=False)
    assert as_is[0]["scale"] == 1.0


def test_grain_is_photon_like_and_none_at_strength_zero() -> None:
    grain = _load("grain")
    plate = np.zeros((256, 256, 3), np.float32)
    plate[:, :128], plate[:, 128:] = 0.04, 0.64  # sqrt: 0.2 and 0.8, four times the noise
    assert grain.add_grain(plate, 0.0) is plate
    noisy = grain.add_grain(plate, 0.05, seed=1)
    assert noisy.dtype == np.float32 and noisy.shape == plate.shape
    dark, bright = (noisy - plate)[:, :128].std(), (noisy - plate)[:, 128:].std()
    expected = 0.05 * np.sqrt(1 + 0.25)  # luminance N(0, 1) plus chroma N(0, 0.5²)
    assert abs(dark / 0.2 - expected) < 0.05 * expected and abs(bright / 0.8 - expected) < 0.05 * expected
    # Luminance shared by the channels: their noise correlates (1 / 1.25 = 0.8).
    n = (noisy - plate)[:, 128:].reshape(-1, 3)
    assert abs(np.corrcoef(n[:, 0], n[:, 1])[0, 1] - 0.8) < 0.03
    # The correlated grain keeps the level's standard deviation; neighbours now correlate.
    soft = grain.add_grain(plate, 0.05, blur=1.0, seed=1) - plate
    assert abs(soft[:, 128:].std() / 0.8 - expected) < 0.05 * expected
    r = soft[:, 128:, 0]
    assert np.corrcoef(r[:, :-1].ravel(), r[:, 1:].ravel())[0, 1] > 0.5
    assert np.array_equal(grain.add_grain(plate, 0.05, seed=1), noisy)  # seeded


def test_grain_bench_scores_every_photo_trimap_and_level(small_bundle, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")  # tiny untrained networks: the plumbing only
    grain = _load("grain")
    _one_photo_set(tmp_path)
    rows = grain.measure(tmp_path, ["A"], ["T1"], ["clean", "correlated"], small_bundle, half=True, closed_form=False)
    assert [(r["name"], r["trimap"], r["grain"]) for r in rows] == [("A", "T1", "clean"), ("A", "T1", "correlated")]
    assert all(np.isfinite(r["sad"]) and np.isfinite(r["grad"]) for r in rows)
    assert capsys.readouterr().out.count('"sad"') == 2
    assert "| A, T1 |" in grain.table(rows, ["clean", "correlated"])
    with pytest.raises(SystemExit, match="unknown grain level"):
        grain.measure(tmp_path, ["A"], ["T1"], ["grainy"], small_bundle)


def test_screen_is_lit_one_stop_across_and_spill_falls_off_into_the_object() -> None:
    screens = _load("screens")
    back = screens.screen((90, 120), screens.SCREENS["green"])
    assert back.dtype == np.float32 and back.shape == (90, 120, 3)
    # One stop from the top left corner to the bottom right one (the 10 % fall-off down the frame
    # on top), the colour's hue the same everywhere.
    assert back[0, 0, 1] / back[-1, -1, 1] == pytest.approx(2.0 * 1.05 / 0.95, rel=1e-5)
    assert np.allclose(back / back[..., 1:2], np.asarray(screens.SCREENS["green"]) / screens.SCREENS["green"][1])
    alpha = np.zeros((40, 60), np.float32)
    alpha[:, 30:] = 1.0
    w = screens.spill_weight(alpha)
    assert w.min() >= 0 and w.max() <= 1 and w[:, :25].min() == 1.0
    assert w[20, 31] > w[20, 36] > w[20, 45] and w[20, -1] < 1e-3  # falls off into the object


def test_screens_bench_scores_every_object_trimap_screen_and_condition(small_bundle, tmp_path: Path, capsys,
                                                                      monkeypatch) -> None:
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")  # tiny untrained networks: the plumbing only
    screens = _load("screens")
    _one_photo_set(tmp_path)
    rows = screens.measure(tmp_path, ["A"], ["T1"], ["green", "blue"], 0.3, small_bundle, half=True,
                           baselines=False)
    assert [(r["screen"], r["condition"]) for r in rows] == [
        ("green", "clean"), ("green", "spill"), ("blue", "clean"), ("blue", "spill")]
    assert all(np.isfinite([r["sad"], r["grad"], r["fg_sad"], r["plate_fg_sad"]]).all() for r in rows)
    assert capsys.readouterr().out.count('"sad"') == 4
    assert "| A, T1 | blue | spill |" in screens.table(rows)
    with pytest.raises(SystemExit, match="unknown screen"):
        screens.measure(tmp_path, ["A"], ["T1"], ["red"], 0.0, small_bundle)


def test_trimap_faults_change_the_trimap_as_named_and_are_reproducible() -> None:
    trimaperr = _load("trimaperr")
    xx = np.mgrid[0:40, 0:60][1]
    gt = np.clip((xx - 26) / 8.0, 0, 1).astype(np.float32)  # a soft edge from x 26 to 34
    tri = np.where(xx < 25, 0.0, np.where(xx >= 35, 1.0, 0.5)).astype(np.float32)  # band x 25..34
    faults = {f: trimaperr.faulty_trimap(tri, gt, f, px=3, blobs=2, blob_px=2) for f in trimaperr.FAULTS}
    assert np.array_equal(faults["clean"], tri)
    for fault in trimaperr.FAULTS:
        assert set(np.unique(faults[fault]).tolist()) <= {0.0, 0.5, 1.0}
        assert np.array_equal(trimaperr.faulty_trimap(tri, gt, fault, px=3, blobs=2, blob_px=2), faults[fault])
    width = {f: int((faults[f][0] == 0.5).sum()) for f in trimaperr.FAULTS}
    assert (width["fg_grown"], width["bg_grown"], width["tight"]) == (7, 7, 4)
    assert (faults["fg_grown"][:, 32:35] == 1).all() and (faults["bg_grown"][:, 25:28] == 0).all()
    assert 28 <= width["wide"] <= 32  # the band's 10 px, about three times
    # The lies fall on the band only: known FG where the truth is background, known BG where it is mostly FG.
    fg_lie, bg_lie = faults["fg_lie"] != tri, faults["bg_lie"] != tri
    assert fg_lie.any() and (tri[fg_lie] == 0.5).all() and (faults["fg_lie"][fg_lie] == 1).all()
    assert bg_lie.any() and (tri[bg_lie] == 0.5).all() and (faults["bg_lie"][bg_lie] == 0).all()
    with pytest.raises(SystemExit, match="unknown fault"):
        trimaperr.faulty_trimap(tri, gt, "sloppy")


def test_trimap_fault_bench_scores_every_fault_on_the_same_pixels(small_bundle, tmp_path: Path, capsys,
                                                                   monkeypatch) -> None:
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")  # tiny untrained networks: the plumbing only
    trimaperr = _load("trimaperr")
    _one_photo_set(tmp_path, shape=(40, 64), edge=20, soft=20)
    rows = trimaperr.measure(tmp_path, ["A"], ["T1"], ["clean", "fg_grown"], small_bundle, baselines=False, px=2)
    assert [(r["name"], r["fault"]) for r in rows] == [("A", "clean"), ("A", "fg_grown")]
    assert all(np.isfinite(r["lbsmatte_sad"]) and np.isfinite(r["lbsmatte_grad"]) for r in rows)
    assert rows[0]["unknown"] == 1.0 and rows[1]["unknown"] < 1.0
    assert capsys.readouterr().out.count('"lbsmatte_sad"') == 2
    assert "| A, T1, lbsmatte |" in trimaperr.table(rows, ["clean", "fg_grown"])


def test_benchmark_runs_end_to_end_and_writes_json(small_bundle, tmp_path: Path, capsys, monkeypatch) -> None:
    bench = _load("bench_pipeline")
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    out = tmp_path / "bench.json"
    report = bench.main([
        "--weights", str(small_bundle.path), "--sizes", "256x144", "--sweep-bands", "--runs", "1",
        "--warmup", "0", "--baseline-runs", "1", "--threads", "1", "--data", str(tmp_path / "absent"),
        "--json", str(out),
    ])
    printed = capsys.readouterr().out
    assert "untrained weights: timing only" in printed and "speed-up" in printed
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["meta"]["untrained"] is True and written["meta"]["device"] == "cpu"
    (case,) = written["cases"]
    assert case["frame"] == "256x144" and 0 < case["unknown_fraction"] < 1
    pipe, base = case["pipeline"], case["baseline"]
    for key in ("seconds", "median_seconds", "cpu_seconds", "peak_rss_gib", "stage_seconds", "shares",
                "box_fraction", "computed_fraction", "gmac", "errors"):
        assert key in pipe, key
    roles = ("background", "foreground", "alpha")
    assert set(pipe["gmac"]) == {*roles, "total"} and all(pipe["gmac"][r] > 0 for r in roles)
    assert pipe["gmac"]["total"] == pytest.approx(sum(pipe["gmac"][r] for r in roles), rel=1e-12)
    assert all(pipe["gmac"][r] == pytest.approx(pipe["macs"][r] / 1e9, rel=1e-12) for r in roles)
    assert set(roles) <= set(pipe["stage_seconds"])
    # The profiled laps run back to back from the frame's start to its end: each stage's share
    # of the total, and together (up to the moment before the first lap) all of it.
    assert set(pipe["shares"]) == set(pipe["stage_seconds"]) - {"total"}
    assert all(share >= 0 for share in pipe["shares"].values())
    assert sum(pipe["shares"].values()) == pytest.approx(1.0, abs=0.02)
    assert 0 < pipe["computed_fraction"] <= 1.5
    for key in ("seconds", "median_seconds", "alpha_seconds", "foreground_seconds", "peak_rss_gib", "errors"):
        assert key in base, key
    # Both methods scored on the same band against the frame's exact alpha: real numbers, and a
    # band that is not empty (untrained networks are not exact there).
    for errors in (pipe["errors"], base["errors"]):
        assert set(errors) == {"sad", "mse"} and all(np.isfinite(v) for v in errors.values()), errors
        assert errors["sad"] > 0 and 0 < errors["mse"] <= 1
    assert set(case["ratios"]) == {"speedup", "cpu_seconds_ratio", "memory_ratio"}
    assert case["ratios"]["speedup"] == pytest.approx(base["median_seconds"] / pipe["median_seconds"])
    assert report["cases"][0]["frame"] == "256x144"
    # The pipeline's process starts as `lbsmatte` does (huge pages for torch, freed memory kept).
    assert pipe["startup"] == {"THP_MEM_ALLOC_ENABLE": "1", "keep_freed_memory": sys.platform.startswith("linux")}
    assert "startup" not in base


def test_peak_table_matches_gpu_names() -> None:
    bench = _load("bench_pipeline")
    assert bench.peak_tflops("NVIDIA H100 80GB HBM3", "float16") == pytest.approx(989.4)
    assert bench.peak_tflops("NVIDIA H100 PCIe", "bfloat16") == pytest.approx(756.5)
    assert bench.peak_tflops("NVIDIA H200 NVL", "float16") == pytest.approx(835.0)
    assert bench.peak_tflops("NVIDIA H200", "bfloat16") == pytest.approx(989.4)
    assert bench.peak_tflops("Some CPU", "float32") is None


@pytest.mark.gpu
def test_benchmark_on_cuda_reports_device_memory_and_a_floor(small_bundle, tmp_path: Path) -> None:
    bench = _load("bench_pipeline")
    report = bench.main([
        "--weights", str(small_bundle.path), "--device", "cuda", "--precision", "fp16", "bf16",
        "--sizes", "256x144", "--sweep-bands", "--runs", "1", "--warmup", "1", "--no-baselines",
        "--peak-tflops", "100", "--data", str(tmp_path / "absent"), "--json", str(tmp_path / "gpu.json"),
    ])
    fp16, bf16 = report["cases"]
    assert fp16["pipeline"]["device"].startswith("cuda") and fp16["pipeline"]["precision"] == "float16"
    assert bf16["pipeline"]["precision"] == "bfloat16"
    assert fp16["pipeline"]["cuda_peak_gib"] > 0
    assert fp16["pipeline"]["floor_seconds"]["total"] > 0


# -- bench_process.py: what it measures and how it reports it (fake timings; nothing is timed) ---------
def test_process_bench_reports_each_childs_own_peak_memory() -> None:
    """The closed-form process runs after LBSMatte's: its peak must be its own, not the largest
    of every child so far (``RUSAGE_CHILDREN``). Measured from a small parent, as the benchmark
    runs (Linux counts the parent's high-water mark in a ``vfork``-ed child's)."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); from bench import bench_process as b; "
        "big = b._run([sys.executable, '-c', \"x = b'x' * (400 * 2**20)\"])[1]; "
        "small = b._run([sys.executable, '-c', 'pass'])[1]; print(json.dumps([big, small]))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, check=True)
    big, small = json.loads(done.stdout.strip().splitlines()[-1])
    assert big > 0.35, big
    assert small < 0.1, (small, big)


def test_process_bench_builds_the_frames_in_a_child(tmp_path: Path) -> None:
    """The benchmark's own process stays small (no numpy, no frames): its memory would be a
    floor under both children's peaks."""
    code = (
        "import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "from bench import bench_process as b; "
        "setup = b._make_frames(Path(sys.argv[2]), 2, 64, 36, 0.1, None); "
        "print(json.dumps([setup, 'numpy' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(ROOT), str(tmp_path)], capture_output=True, text=True,
                          check=True)
    setup, numpy_loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert setup["frames"] == 2 and setup["size"] == "64x36" and setup["source"] == "procedural"
    assert not numpy_loaded
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "plate.1001.png", "plate.1002.png", "trimap.1001.png", "trimap.1002.png"]


def test_process_bench_ratio_is_the_medians_ratio() -> None:
    bench = _load("bench_process")
    rows = [{"lbsmatte_s": a, "closed_form_s": b, "lbsmatte_gib": 1.0, "closed_form_gib": g}
            for a, b, g in ((10.0, 20.0, 0.5), (20.0, 10.0, 0.7), (30.0, 40.0, 0.6))]
    med = bench.summarise(rows)
    # Pair ratios 0.5, 2.0, 0.75 (their median 0.75); the medians 20 s and 20 s: ratio 1.0.
    assert med["lbsmatte_s"] == 20.0 and med["closed_form_s"] == 20.0
    assert med["ratio"] == pytest.approx(1.0)
    assert (med["pair_ratio_min"], med["pair_ratio_max"]) == (pytest.approx(0.5), pytest.approx(2.0))
    assert (med["lbsmatte_s_min"], med["lbsmatte_s_max"], med["closed_form_s_min"], med["closed_form_s_max"]) == (
        10.0, 30.0, 10.0, 40.0)
    assert med["closed_form_gib"] == 0.7
    # Pair ratios LBSMatte / closed-form (not the other way round), peaks the largest of each side.
    lopsided = bench.summarise([{"lbsmatte_s": a, "closed_form_s": 10.0, "lbsmatte_gib": g, "closed_form_gib": 0.1}
                                for a, g in ((20.0, 1.5), (40.0, 0.5), (30.0, 1.0))])
    assert (lopsided["pair_ratio_min"], lopsided["pair_ratio_max"]) == (pytest.approx(2.0), pytest.approx(4.0))
    assert lopsided["ratio"] == pytest.approx(3.0) and lopsided["lbsmatte_gib"] == 1.5


def test_process_bench_alternates_the_sides_and_does_not_count_the_warm_up(tmp_path: Path, monkeypatch, capsys) -> None:
    bench = _load("bench_process")
    monkeypatch.setattr(bench, "_make_frames", lambda *a, **k: {"frames": 1, "size": "64x36", "unknown": [0.1],
                                                                  "source": "procedural"})
    seconds = {"lbs": iter([99.0, 10.0, 20.0, 30.0]), "cf": iter([99.0, 20.0, 10.0, 40.0])}
    order = []

    def fake_run(command: list[str]) -> tuple[float, float]:
        side = "cf" if "--closed-form" in command else "lbs"
        order.append(side)
        return next(seconds[side]), 1.0

    monkeypatch.setattr(bench, "_run", fake_run)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    out = tmp_path / "results" / "process.json"  # a folder not made yet, as bench_pipeline.py's default
    assert bench.main(["--frames", "1", "--size", "64x36", "--pairs", "3", "--json", str(out)]) == 0
    assert order == ["lbs", "cf"] * 4  # one warm-up pair, then three counted pairs, in turn
    printed = capsys.readouterr().out
    assert "ratio of the medians 1.00 (pairs 0.50-2.00)" in printed, printed
    written = json.loads(out.read_text(encoding="utf-8"))
    assert len(written["runs"]) == 3 and written["median"]["ratio"] == pytest.approx(1.0)
    # What a quoted figure must name: the machine, its load, the threads' environment, the command.
    assert written["machine"]["cpus"] == os.cpu_count() and written["machine"]["cpu"]
    assert written["machine"]["environment"].get("OMP_NUM_THREADS") == "3"
    assert "load_after" in written and written["command"][1:4] == ["--frames", "1", "--size"]
    assert "load average" in printed and "OMP_NUM_THREADS" in printed


def test_process_bench_closed_form_job_runs_without_torch(tmp_path: Path) -> None:
    """The baseline job reads, mattes and writes without importing torch: LBSMatte's start-up is
    LBSMatte's, and the closed-form side is not charged for torch's."""
    frames = _load("frames")
    from core.io import read_image, write_image

    frame = frames.build_frame(64, 36, 0.15, data=tmp_path / "absent")
    write_image(tmp_path / "plate.1001.png", frame.plate, ["R", "G", "B"])
    write_image(tmp_path / "trimap.1001.png", frame.trimap, ["Y"])
    code = (
        "import runpy, sys; sys.modules['torch'] = None; "  # any `import torch` now fails
        "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "bench" / "bench_process.py"), "--closed-form",
         str(tmp_path / "plate.####.png"), str(tmp_path / "trimap.####.png"), str(tmp_path / "cf.####.exr")],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    written = read_image(tmp_path / "cf.1001.exr")
    assert {"R", "G", "B", "A", "fg.R", "fg.G", "fg.B", "bg.R", "bg.G", "bg.B"} <= set(written.channels)


# -- peak memory is each measuring process's own; the time quoted is a median ------------------------
def _raise_own_high_water_mark(gib: float) -> None:
    """Touch ``gib`` of memory and free it: this process's high-water mark is now at least that."""
    block = b"x" * int(gib * 2**30)
    del block


def test_pipeline_bench_child_reports_its_own_peak_not_its_parents(tmp_path: Path) -> None:
    """The parent builds the frames (1.1 GiB at 4K); a vfork-ed child's ru_maxrss counts that."""
    bench = _load("bench_pipeline")
    frames = _load("frames")
    frame = frames.build_frame(64, 36, 0.15, data=tmp_path / "absent")
    for name in ("plate", "trimap", "alpha"):
        np.save(tmp_path / f"{name}.npy", getattr(frame, name))
    _raise_own_high_water_mark(1.2)
    base = bench._run_measurement("baseline", tmp_path, {"baseline_runs": 1}, True)
    assert 0 < base["peak_rss_gib"] < 0.8, base["peak_rss_gib"]


def test_sampling_memory_reports_the_median_after_a_warm_up_and_its_own_peak(tmp_path: Path) -> None:
    bench = _load("sampling_memory")
    _raise_own_high_water_mark(1.5)
    (row,) = bench.main(["--sizes", "64x48", "--repeats", "3", "--warmup", "1", "--json", str(tmp_path / "new" / "m.json")])
    assert row["warmup"] == 1 and len(row["all_seconds"]) == 3
    assert row["seconds"] == pytest.approx(sorted(row["all_seconds"])[1])
    assert 0 < row["peak_rss_gib"] < 1.2, row["peak_rss_gib"]
    assert json.loads((tmp_path / "new" / "m.json").read_text(encoding="utf-8")) == [row]


# -- a stopped benchmark leaves no process and no files behind ----------------------------------------
def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True  # dead, not yet reaped
        except OSError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")
@pytest.mark.parametrize("script, args", [
    ("bench_process.py", ["--frames", "1", "--size", "64x36", "--pairs", "50", "--data", "absent"]),
    ("sampling_memory.py", ["--sizes", "64x48", "--repeats", "1000000"]),
    ("bench_pipeline.py", ["--sizes", "64x36", "--sweep-bands", "--runs", "1000000", "--warmup", "0", "--no-flops",
                           "--data", "absent", "--json", "out.json"]),
])
def test_sigterm_stops_the_benchmark_its_child_and_removes_its_files(tmp_path: Path, script: str, args: list[str]) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / script), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    kids: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            kids = _children(proc.pid)
            # bench_process: wait for a measured child (the frames' writer comes first).
            if kids and (script != "bench_process.py" or any(
                    "--write-frames" not in Path(f"/proc/{k}/cmdline").read_text(errors="replace") for k in kids)):
                break
            time.sleep(0.1)
        assert kids and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else "no child in 120 s"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
        assert all(_gone(k, 10) for k in kids), "a child outlived the stopped benchmark"
        assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for k in kids:  # a child the benchmark left running: not left to run on after the test
            with contextlib.suppress(OSError):
                if "bench" in Path(f"/proc/{k}/cmdline").read_text(errors="replace"):
                    os.kill(k, signal.SIGKILL)


def test_flicker_bench_aligns_the_push_and_scores_both_shots(small_bundle, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")  # tiny untrained networks: the plumbing only
    flicker = _load("flicker")
    _one_photo_set(tmp_path, shape=(72, 80), edge=30, soft=14, wobble=4)
    # The truth cropped with the push is the same picture once aligned: no change, whatever the drift.
    photo, tri, gt = flicker.load(tmp_path, "A", "T1", half=False)
    for drift in ((1, 2), (-2, 1), (0, -3)):
        seq = flicker.sequence(photo, tri, gt, 4, drift, grain=0.0)
        assert flicker.temporal([s[2] for s in seq], [s[1] for s in seq], drift) == (0.0, 0.0)
    rows = flicker.measure(tmp_path, ["A"], "T1", 3, (1, 2), 0.01, [""], str(small_bundle.path), blend=3)
    assert [(r["shot"], r["method"]) for r in rows] == [
        ("static", "lbsmatte"), ("static", "lbsmatte + FrameBlend 3"), ("static", "closed-form"),
        ("static", "closed-form + FrameBlend 3"), ("drift", "lbsmatte"), ("drift", "closed-form")]
    assert all(r["truth"] == 0.0 and np.isfinite(r["temporal"]) and len(r["sad"]) == 3 for r in rows)
    # grain alone moves closed-form's alpha; a 3-frame blend moves it less
    assert 0 < rows[3]["temporal"] < rows[2]["temporal"]
    assert "temporal" in flicker.table(rows)


@pytest.mark.parametrize("blur", ["motion15", "motion40_diag", "defocus8"])
def test_motion_blur_composite_is_exact_and_the_widened_trimap_right(blur: str) -> None:
    motionblur = _load("motionblur")
    kind, size, angle = motionblur.BLURS[blur]
    k = motionblur.kernel(kind, size / 2, angle)
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert abs(k.sum() - 1) < 1e-12 and np.array_equal(k, k[::-1, ::-1])  # centred: no shift
    if kind == "motion":  # a line of about its length, along its angle
        rows, cols = np.nonzero(k > 0.05 * k.max())
        assert abs(np.hypot(np.ptp(rows), np.ptp(cols)) - size / 2) <= 2.0
        assert (np.ptp(rows) == 0) == (angle == 0)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:72]
    alpha = (np.hypot(yy - 32, xx - 36) < 16).astype(np.float64)
    fg, bg = rng.uniform(0, 4, (64, 72, 3)), rng.uniform(0, 1, (64, 72, 3))
    plate, a, f = motionblur.blur_composite(alpha, fg, bg, k)
    np.testing.assert_allclose(plate, a[..., None] * f + (1 - a[..., None]) * bg, atol=1e-5)  # exact
    assert (a > 0).sum() > (alpha > 0).sum()  # it spread
    trimap = np.where(alpha > 0, 1.0, 0.0)
    trimap[(np.hypot(yy - 32, xx - 36) > 14) & (np.hypot(yy - 32, xx - 36) < 18)] = 0.5
    wide = motionblur.widen_trimap(trimap, k)
    assert (wide == 0.5).sum() > (trimap == 0.5).sum()
    assert (a[wide == 1.0] > 1 - 1e-6).all() and (a[wide == 0.0] < 1e-6).all()  # known stays known


def test_motion_blur_bench_scores_every_photo_trimap_and_blur(small_bundle, tmp_path: Path, capsys,
                                                               monkeypatch) -> None:
    from PIL import Image

    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")  # tiny untrained networks: the plumbing only
    motionblur = _load("motionblur")
    _one_photo_set(tmp_path / "set", shape=(48, 64), edge=24, soft=6)
    (tmp_path / "bg").mkdir()
    for i in range(2):
        Image.fromarray(np.full((30, 40, 3), 60 * (i + 1), np.uint8)).save(tmp_path / "bg" / f"{i}.jpg")
    rows = motionblur.measure(tmp_path / "set", ["A"], ["T1"], ["sharp", "defocus8"], small_bundle,
                              baselines=False, backgrounds=tmp_path / "bg")
    assert [(r["name"], r["trimap"], r["blur"]) for r in rows] == [("A", "T1", "sharp"), ("A", "T1", "defocus8")]
    assert all(np.isfinite(r[key]) for r in rows for key in ("sad", "grad", "fg", "plate_fg"))
    assert rows[1]["unknown"] > rows[0]["unknown"]  # the trimap widened by the blur's reach
    assert capsys.readouterr().out.count('"sad"') == 2
    assert "| A, T1, defocus8 |" in motionblur.table(rows)
    with pytest.raises(SystemExit, match="unknown blur"):
        motionblur.measure(tmp_path / "set", ["A"], ["T1"], ["shaky"], small_bundle)


def test_determinism_bench_compares_each_configuration_with_one_thread_in_its_own_process(
        small_bundle, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")  # tiny untrained networks: the plumbing only
    determinism = _load("determinism")
    _one_photo_set(tmp_path / "set", shape=(72, 80), edge=30, soft=14, wobble=4)
    out = tmp_path / "figures.json"
    assert determinism.main(["--data", str(tmp_path / "set"), "--names", "A", "--trimap", "T1", "--weights",
                             str(small_bundle.path), "--configs", "reversed,threads2", "--json", str(out)]) == 0
    got = json.loads(out.read_text())["results"]
    assert sorted(got) == ["reversed", "threads2"] and all(sorted(v) == ["A", "demo"] for v in got.values())
    # a frame's matte does not depend on the frames matted before it in the process
    assert all(d["identical"] and d["alpha_max"] == 0.0 for d in got["reversed"].values())
    for d in got["threads2"].values():
        assert 0.0 <= d["alpha_mean"] <= d["alpha_max"] <= 1.0 and 0.0 <= d["fg_max"] <= 1.0
    assert "reversed   A" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        determinism.main(["--configs", "threads2,avx512"])
    assert stop.value.code == 2 and "no configuration avx512" in capsys.readouterr().err
