"""Foregrounds rendered in Blender: reading a render's exact layers, drawing them into composites,
the errors, and the tool that renders them (the render itself only where Blender is installed)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.colour import to_display
from core.errors import InputError
from core.io import read_image, write_image
from core.training.data import RENDER_COVERAGE, CompositeSampler, _RenderedForeground, rendered_foregrounds
from tests.test_training_data import DATA, OBJECTS, _check_batch, needs_data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import cross_validate as cv  # noqa: E402
import render_foregrounds as rf  # noqa: E402

COLOUR = np.array([0.05, 0.2, 0.6], np.float32)  # scene-linear, straight


def _render(path: Path, size: int = 64) -> np.ndarray:
    """A soft disc of one colour as Cycles writes it: RGBA EXR, colour premultiplied. Returns alpha."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    alpha = np.clip((size * 0.35 - r) / 6.0, 0.0, 1.0).astype(np.float32)
    write_image(path, np.concatenate([alpha[..., None] * COLOUR, alpha[..., None]], -1), ["R", "G", "B", "A"])
    return read_image(path).pixels[..., 3]  # as stored (half float)


def test_a_render_gives_its_exact_colour_where_covered_and_a_continuation_elsewhere(tmp_path: Path) -> None:
    alpha = _render(tmp_path / "000000.exr")
    item = _RenderedForeground(tmp_path / "000000.exr")
    item.load(cache_dir=None)
    assert item.fg.shape == (64, 64, 3) and item.alpha.shape == (64, 64)
    assert np.allclose(item.alpha, alpha, atol=1e-3)
    assert 0 < ((item.alpha > 0) & (item.alpha < 1)).mean() < 0.5
    covered = item.alpha > RENDER_COVERAGE
    want = to_display(COLOUR[None, None], "linear")[0, 0]
    # half-float colour divided by alpha: exact to the file's precision where the render covers the pixel
    assert np.abs(item.fg[covered] - want).max() < 0.01
    # beyond the coverage, a smooth continuation of the same colour, defined and in range everywhere
    assert np.isfinite(item.fg).all() and item.fg.min() >= 0 and item.fg.max() <= 1
    assert np.abs(item.fg[~covered] - want).mean() < 0.05
    assert item.seeds is not None and len(item.seeds) > 0


def test_bad_renders_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder"):
        rendered_foregrounds(tmp_path / "missing")
    with pytest.raises(InputError, match="no .exr files in"):
        rendered_foregrounds(tmp_path)
    write_image(tmp_path / "flat.exr", np.zeros((8, 8, 3), np.float32), ["R", "G", "B"])
    with pytest.raises(InputError, match="flat.exr has channels .* not RGBA"):
        _RenderedForeground(tmp_path / "flat.exr").load(cache_dir=None)
    (tmp_path / ".000001.partial.exr").write_bytes(b"")  # an interrupted render is not drawn
    assert rendered_foregrounds(tmp_path) == [tmp_path / "flat.exr"]


@needs_data
def test_composites_of_renders_obey_the_compositing_equation(tmp_path: Path) -> None:
    _render(tmp_path / "000000.exr")
    _render(tmp_path / "000001.exr", size=96)
    renders = rendered_foregrounds(tmp_path)
    sampler = CompositeSampler(DATA, split="train", crop=48, seed=0, objects=OBJECTS, rendered=renders,
                               rendered_fraction=1.0, two_foregrounds=0.0, cache_dir=None)
    batch = sampler.sample(6, n_backgrounds=2)
    _check_batch(batch, 6, 48)
    alpha = batch["alpha"]
    assert ((alpha > 0) & (alpha < 1)).any()
    # every foreground is the disc's one colour where it covers
    want = torch.from_numpy(to_display(COLOUR[None, None], "linear")[0, 0]).view(1, 3, 1)
    covered = (alpha > 0.5).expand_as(batch["fg"])
    assert float((batch["fg"] - want.view(1, 3, 1, 1)).abs()[covered].max()) < 0.02
    assert sampler.describe()["n_rendered"] == 2 and sampler.describe()["rendered_fraction"] == 1.0
    with pytest.raises(InputError, match="rendered_fraction must be in"):
        CompositeSampler(DATA, split="train", crop=48, objects=OBJECTS, rendered=renders, rendered_fraction=1.5)
    with pytest.raises(InputError, match="needs rendered foregrounds"):
        CompositeSampler(DATA, split="train", crop=48, objects=OBJECTS, rendered_fraction=0.5)


@needs_data
def test_renders_at_fraction_zero_leave_the_batches_as_they_were(tmp_path: Path) -> None:
    _render(tmp_path / "000000.exr")
    a = CompositeSampler(DATA, split="train", crop=48, seed=3, objects=OBJECTS).sample(4, n_backgrounds=2)
    b = CompositeSampler(DATA, split="train", crop=48, seed=3, objects=OBJECTS,
                         rendered=rendered_foregrounds(tmp_path), rendered_fraction=0.0).sample(4, n_backgrounds=2)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_train_refuses_a_missing_render_folder_and_a_bad_fraction(tmp_path: Path, capsys) -> None:
    from core.cli import main

    base = ["train", "--out", str(tmp_path / "b"), "--steps", "1,1,1", "--data", str(DATA)]
    if not (DATA / "alphamatting").is_dir():
        pytest.skip(f"training data not found in {DATA}")
    assert main(base + ["--rendered", str(tmp_path / "none")]) != 0
    assert f"{tmp_path / 'none'} is not a folder" in capsys.readouterr().out
    (tmp_path / "r").mkdir()
    _render(tmp_path / "r" / "000000.exr")
    assert main(base + ["--rendered", str(tmp_path / "r"), "--rendered-fraction", "0"]) != 0
    assert "--rendered-fraction must be above 0 and at most 1, not 0.0" in capsys.readouterr().out
    assert not (tmp_path / "b").exists()


def test_cross_validation_passes_the_renders_on(tmp_path: Path, monkeypatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(cv, "_train", lambda command: seen.append(command) or 0)
    args = argparse.Namespace(steps="100,100,100", real_photos=0.5, ema=0.99, seed=0, precision="fp32", threads=None,
                              decay_steps=0, continue_from=None, data=None, max_minutes=None,
                              rendered=tmp_path / "renders", rendered_fraction=0.4)
    cv.train(tmp_path / "fold0", ["GT01"], args)
    command = seen[0]
    assert command[command.index("--rendered") + 1] == str(tmp_path / "renders")
    assert command[command.index("--rendered-fraction") + 1] == "0.4"


def test_the_render_tool_names_a_missing_blender_and_bad_values(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("BLENDER", raising=False)
    with pytest.raises(SystemExit, match="Blender not found .*no-such-blender.*apt install blender"):
        rf.main(["--out", str(tmp_path / "r"), "--blender", "no-such-blender"])
    with pytest.raises(SystemExit):
        rf.main(["--out", str(tmp_path / "r"), "--count", "0"])
    assert "--count must be at least 1, not 0" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit):
        rf.main(["--out", str(tmp_path / "file")])
    assert "is a file, not a folder" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    # a manifest cut short while written is named, not a JSONDecodeError traceback
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "manifest.json").write_text("")
    monkeypatch.setattr(rf, "find_blender", lambda given: sys.executable)
    with pytest.raises(SystemExit, match=r"manifest.json is not readable JSON: the recipe of the renders in .*cut is unknown"):
        rf.main(["--out", str(tmp_path / "cut")])


@pytest.mark.skipif(shutil.which("blender") is None, reason="Blender is not installed (apt install blender)")
def test_blender_renders_a_foreground_with_partial_alpha(tmp_path: Path) -> None:
    assert rf.main(["--out", str(tmp_path), "--count", "2", "--first-seed", "4", "--size", "48", "--samples", "2",
                    "--threads", "1"]) == 0
    renders = rendered_foregrounds(tmp_path)
    assert [p.name for p in renders] == ["000004.exr", "000005.exr"]
    image = read_image(renders[0])
    assert image.channels == ["R", "G", "B", "A"] and image.pixels.shape == (48, 48, 4)
    a = image.pixels[..., 3]
    assert a.min() >= 0 and a.max() <= 1 and ((a > 0) & (a < 1)).any()
    # run again: nothing rendered twice, and another recipe in the same folder is refused
    assert rf.main(["--out", str(tmp_path), "--count", "2", "--first-seed", "4", "--size", "48", "--samples", "2"]) == 0
    with pytest.raises(SystemExit, match="another recipe"):
        rf.main(["--out", str(tmp_path), "--count", "1", "--size", "64", "--samples", "2"])


def test_sigterm_stops_the_blender_render_too(tmp_path: Path) -> None:
    """SIGTERM to the render tool (a farm or a user stopping it) must not leave Blender rendering, orphaned."""
    import os
    import signal
    import subprocess
    import time

    started = tmp_path / "blender.pid"
    fake = tmp_path / "blender"
    fake.write_text(f"#!/bin/sh\n[ \"$1\" = --version ] && {{ echo 'Blender 9.9'; exit 0; }}\n"
                    f"echo $$ > {started}\nexec sleep 60\n")
    fake.chmod(0o755)
    out = tmp_path / "renders"
    tool = subprocess.Popen([sys.executable, str(ROOT / "tools" / "render_foregrounds.py"), "--out", str(out),
                             "--count", "1", "--blender", str(fake)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 30
    while not (started.exists() and started.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    blender_pid = int(started.read_text())
    tool.send_signal(signal.SIGTERM)
    stdout, _ = tool.communicate(timeout=30)
    time.sleep(0.2)
    try:
        os.kill(blender_pid, 0)
        alive = not Path(f"/proc/{blender_pid}/stat").read_text().split()[2] == "Z"
    except ProcessLookupError:
        alive = False
    if alive:
        os.kill(blender_pid, signal.SIGKILL)
    assert not alive, "the Blender child went on after SIGTERM"
    assert tool.returncode == 143, stdout
    assert "stopped by SIGTERM" in stdout
    assert not list(out.glob(".*partial*"))
