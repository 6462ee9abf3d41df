"""``tools/make_validation_composites.py``: its refusals, and a rerun that replaces the set whole."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.test_gpu_train import _data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import make_validation_composites as mvc  # noqa: E402


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_bad_arguments_are_named_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    data = _data(tmp_path / "data")
    out = tmp_path / "set"
    for argv, message in ((["--objects", "GT99"], "object GT99: missing "),
                          (["--objects", "GT99"], "(objects with an alpha in "),
                          (["--objects", "GT03"], "alpha/GT03.png"),  # a photo without an alpha
                          (["--per-object", "0"], "--per-object must be at least 1, not 0"),
                          (["--per-object", "-1"], "--per-object must be at least 1, not -1"),
                          (["--objects", " , "], "--objects is empty"),
                          (["--objects", "GT01", "--out", str(data / "composites")], "is inside the data root")):
        with pytest.raises(SystemExit):
            mvc.main(["--data", str(data), "--out", str(out), *argv])
        assert message in capsys.readouterr().err, argv
    with pytest.raises(SystemExit):
        mvc.main(["--data", str(tmp_path / "none"), "--out", str(out), "--objects", "all"])
    assert "no objects to composite: none with an alpha in" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(SystemExit):
        mvc.main(["--data", str(data), "--out", str(tmp_path / "mine"), "--objects", "GT01"])
    assert "is not a set this tool made" in capsys.readouterr().err
    assert _files(tmp_path / "mine") == ["notes.txt"]
    assert not out.exists() and not (data / "composites").exists()


def test_a_rerun_replaces_the_set_and_one_cut_short_leaves_the_old_one(tmp_path: Path, monkeypatch) -> None:
    data = _data(tmp_path / "data")
    out = tmp_path / "set"
    assert mvc.main(["--data", str(data), "--out", str(out), "--objects", "all", "--per-object", "1"]) == 0
    assert "image/GT02_bg1.png" in _files(out)
    # another --objects and --linear: only the new set's files, not PNG composites of GT02 beside them
    assert mvc.main(["--data", str(data), "--out", str(out), "--objects", "GT01", "--per-object", "1", "--linear"]) == 0
    assert [f for f in _files(out) if f.startswith(("image/", "fg/", "bg/"))] == [
        "bg/GT01_bg1.exr", "fg/GT01_bg1.exr", "image/GT01_bg1.exr"]
    assert json.loads((out / "source.json").read_text())["objects"] == ["GT01"]
    before = {f: (out / f).read_bytes() for f in _files(out)}

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # SIGTERM / Ctrl-C half-way through the set

    monkeypatch.setattr(mvc, "_fit_background", killed)
    with pytest.raises(KeyboardInterrupt):
        mvc.main(["--data", str(data), "--out", str(out), "--objects", "all", "--per-object", "1"])
    assert {f: (out / f).read_bytes() for f in _files(out)} == before
    monkeypatch.undo()
    assert mvc.main(["--data", str(data), "--out", str(out), "--objects", "GT02", "--per-object", "1"]) == 0
    assert "image/GT02_bg1.png" in _files(out) and not (tmp_path / ".set.partial").exists()


def test_the_composites_lie_over_photos_no_training_draws(tmp_path: Path) -> None:
    """The held-out composites' backgrounds are the validation split of the photos the training
    sampler splits. The tool listed .jpg and .png only and the sampler .jpeg too: the split's size
    and order differ with a .jpeg among them, and a composite went over a photo training draws."""
    import zlib

    import numpy as np
    from PIL import Image

    from core.training.data import CompositeSampler

    data = _data(tmp_path / "data")
    backgrounds = data / "backgrounds"
    rng = np.random.default_rng(1)
    # The photo of the smallest CRC32 (the first held out) a .jpeg; ten photos hold out one.
    first = min((f"extra{i}.jpeg" for i in range(100)), key=lambda n: zlib.crc32(n.encode()))
    for name in (first, "more0.png", "more1.png", "more2.jpg", "more3.jpg", "more4.png", "more5.jpg"):
        Image.fromarray((rng.random((90, 120, 3)) * 255).astype(np.uint8)).save(
            backgrounds / name, format="PNG" if name.endswith(".png") else "JPEG")
    (backgrounds / "._bg0.jpg").write_bytes(b"\0\5\26\7 a macOS resource fork")  # not a photo
    train = CompositeSampler(data, split="train", crop=32, held_out=("GT02",))
    val = CompositeSampler(data, split="val", crop=32, held_out=("GT02",))
    assert len(train.backgrounds) + len(val.backgrounds) == 10 and "._bg0.jpg" not in {p.name for p in train.backgrounds}
    out = tmp_path / "set"
    assert mvc.main(["--data", str(data), "--out", str(out), "--objects", "all", "--per-object", "2"]) == 0
    used = set(json.loads((out / "source.json").read_text())["images"].values())
    assert used == {p.name for p in val.backgrounds} == {first}
    assert not used & {p.name for p in train.backgrounds}
