"""``lbsmatte matte`` on stereo material: multi-view EXRs (one file, both views) and Nuke's ``%V`` paths.

A multi-view EXR as Nuke's Write makes it (one part; ``multiView`` = left, right; the default view's
channels without a view name, ``R``, the other's with it, ``right.R``) is matted in one view, the one
``--plate-layer`` names (else the default), with the trimap's same view, and the run says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from core import cli
from core.io import read_image

H, W = 24, 40
VIEWS = ("left", "right")


def _write(path: Path, pixels: np.ndarray, channels: list[str], views: tuple[str, ...] = ()) -> None:
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2], oiio.HALF)
    spec.channelnames = tuple(channels)
    if views:
        spec.attribute("multiView", oiio.TypeDesc(f"string[{len(views)}]"), views)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    assert out.write_image(np.ascontiguousarray(pixels, dtype=np.float32))
    out.close()


def _trimap(start: int) -> np.ndarray:
    """BG left of ``start``, unknown for 8 columns, FG after."""
    t = np.zeros((H, W, 1), np.float32)
    t[:, start:] = 0.5
    t[:, start + 8:] = 1.0
    return t


@pytest.fixture
def stereo(tmp_path: Path) -> Path:
    """stereo.exr (plate, views left and right) and stereo_trimap.exr (their trimaps, 10 px apart in A)."""
    rng = np.random.default_rng(3)
    left, right = rng.uniform(0, 1, (H, W, 3)), rng.uniform(0, 1, (H, W, 3))
    _write(tmp_path / "stereo.exr", np.dstack([left, right]), ["R", "G", "B", "right.R", "right.G", "right.B"], VIEWS)
    _write(tmp_path / "stereo_trimap.exr", np.dstack([_trimap(8), _trimap(18)]), ["A", "right.A"], VIEWS)
    return tmp_path


def _matte(folder: Path, out: str, *extra: str, trimap: str = "stereo_trimap.exr") -> int:
    return cli.main(["matte", "--plate", str(folder / "stereo.exr"), "--trimap", str(folder / trimap),
                     "--out", str(folder / out), "--weights", "none", "--no-progress", *extra])


def _known_alpha(path: Path) -> np.ndarray:
    image = read_image(path)
    return image.pixels[..., image.channels.index("A")]


def test_a_multi_view_plate_is_matted_in_the_view_named_with_that_views_trimap(stereo: Path, capsys) -> None:
    # --plate-layer right read the right eye's colour, and the trimap's default view (left) was
    # matted with it without a word: the right eye's matte made with the left eye's trimap.
    assert _matte(stereo, "right.exr", "--plate-layer", "right") == 0
    out = capsys.readouterr().out
    assert ("plate %s is a multi-view EXR (views left, right): its view right is matted with the trimap's view "
            "right, and the result holds that view only" % (stereo / "stereo.exr")) in out
    alpha = _known_alpha(stereo / "right.exr")
    assert (alpha[:, :18] == 0).all() and (alpha[:, 26:] == 1).all()  # the right view's trimap: 18 and 26
    # The default view, by its name too (it was 'no layer left'), or by default; the run says which.
    assert _matte(stereo, "left.exr", "--plate-layer", "left") == 0
    assert _matte(stereo, "default.exr") == 0
    out = capsys.readouterr().out
    assert out.count("its view left is matted with the trimap's view left") == 2
    for name in ("left.exr", "default.exr"):
        alpha = _known_alpha(stereo / name)
        assert (alpha[:, :8] == 0).all() and (alpha[:, 16:] == 1).all()


def test_a_trimap_channel_of_another_view_than_the_plates_is_refused(stereo: Path, capsys) -> None:
    assert _matte(stereo, "mixed.exr", "--plate-layer", "right", "--trimap-channel", "left.A") == 1
    out = capsys.readouterr().out
    assert "is matted in its view right but --trimap-channel left.A reads the trimap" in out
    assert "give --trimap-channel right.A" in out
    assert not (stereo / "mixed.exr").exists()
    assert _matte(stereo, "right.exr", "--plate-layer", "right", "--trimap-channel", "right.A") == 0


def test_a_multi_view_trimap_for_a_plate_of_one_view_says_which_view_it_read(stereo: Path, capsys) -> None:
    plate = read_image(stereo / "stereo.exr").pixels[..., 3:]
    _write(stereo / "plate_right.exr", plate, ["R", "G", "B"])
    assert cli.main(["matte", "--plate", str(stereo / "plate_right.exr"), "--trimap", str(stereo / "stereo_trimap.exr"),
                     "--trimap-channel", "right.A", "--out", str(stereo / "out.exr"), "--weights", "none",
                     "--no-progress"]) == 0
    assert "its view right is read for the plate" in capsys.readouterr().out
    alpha = _known_alpha(stereo / "out.exr")
    assert (alpha[:, :18] == 0).all() and (alpha[:, 26:] == 1).all()


@pytest.mark.parametrize("flag", ["--plate", "--trimap", "--out", "--write-trimap"])
def test_a_nuke_view_variable_in_a_path_is_refused_saying_what_to_do(tmp_path: Path, flag: str, capsys) -> None:
    paths = {"--plate": "plate.####.exr", "--trimap": "trimap.####.exr", "--out": "out.####.exr",
             "--write-trimap": "used.####.exr"}
    paths[flag] = paths[flag].replace(".####", ".%V.####")
    for frame in (1001, 1002):  # the frames on disk: only the view variable is wrong
        _write(tmp_path / f"plate.{frame}.exr", np.zeros((H, W, 3)), ["R", "G", "B"])
        _write(tmp_path / f"trimap.{frame}.exr", _trimap(8), ["A"])
    code = cli.main(["matte", *[a for f, p in paths.items() for a in (f, str(tmp_path / p))], "--weights", "none"])
    assert code == 2
    out = capsys.readouterr().out
    assert f"ERROR: {flag} {tmp_path / paths[flag]} holds %V, Nuke's view variable" in out
    assert f"it mattes one view per run. Run it once per view, the view named in each path ({flag} " \
           f"{tmp_path / paths[flag].replace('%V', 'left')}, then right)" in out
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob("used*"))


def _write_parts(path: Path, views: dict[str, np.ndarray], channels: list[str] | list[list[str]],
                 names: list[str] | None = None) -> None:
    """A multi-part EXR of a part per view (Nuke's Write, interleave 'channels and layers'); with
    ``names``, parts of those names, each of its view (``rgba.main``: a part per layer of one view)."""
    specs = []
    for i, (view, pixels) in enumerate(views.items()):
        spec = oiio.ImageSpec(W, H, pixels.shape[2], oiio.HALF)
        spec.channelnames = tuple(channels[i] if isinstance(channels[0], list) else channels)
        spec.attribute("oiio:subimagename", names[i] if names else view)
        spec.attribute("view", view.partition("#")[0])
        if not names:
            spec.attribute("multiView", oiio.TypeDesc(f"string[{len(views)}]"), tuple(views))
        specs.append(spec)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), specs), oiio.geterror()
    for i, pixels in enumerate(views.values()):
        if i:
            assert out.open(str(path), specs[i], "AppendSubimage")
        assert out.write_image(np.ascontiguousarray(pixels, dtype=np.float32))
    out.close()


def test_a_part_per_view_is_said_and_a_trimap_of_another_view_refused(stereo: Path, capsys) -> None:
    # A part per view: its first part (left) is read, and was matted without a word; with the
    # right eye's plate, its left trimap would make the right eye's matte of the left eye's trimap.
    both = read_image(stereo / "stereo.exr").pixels
    _write_parts(stereo / "parts.exr", {"left": both[..., :3], "right": both[..., 3:]}, ["R", "G", "B"])
    _write_parts(stereo / "parts_trimap.exr", {"left": _trimap(8), "right": _trimap(18)}, ["A"])
    assert cli.main(["matte", "--plate", str(stereo / "parts.exr"), "--trimap", str(stereo / "parts_trimap.exr"),
                     "--out", str(stereo / "parts_out.exr"), "--weights", "none", "--no-progress"]) == 0
    assert ("plate %s is a multi-view EXR (views left, right) (a part per view: its first is read): its view left "
            "is matted with the trimap's view left" % (stereo / "parts.exr")) in capsys.readouterr().out
    assert _matte(stereo, "mixed.exr", "--plate-layer", "right", trimap="parts_trimap.exr") == 1
    assert ("but the trimap %s holds a part per view and its first, left, is read: the matte of one view with the "
            "trimap of another" % (stereo / "parts_trimap.exr")) in capsys.readouterr().out
    assert not (stereo / "mixed.exr").exists()


def test_a_multi_view_attribute_without_the_views_channels_is_no_multi_view_file(stereo: Path, capsys) -> None:
    # A file of one view that carries a multiView attribute from the file it was made from (a
    # Write keeping its input's metadata) holds no other view: nothing is said of views.
    plate = read_image(stereo / "stereo.exr").pixels[..., :3]
    _write(stereo / "one.exr", plate, ["R", "G", "B"], VIEWS)
    _write(stereo / "one_trimap.exr", _trimap(8), ["A"], VIEWS)
    assert cli.main(["matte", "--plate", str(stereo / "one.exr"), "--trimap", str(stereo / "one_trimap.exr"),
                     "--out", str(stereo / "one_out.exr"), "--weights", "none", "--no-progress"]) == 0
    assert "WARNING" not in capsys.readouterr().out


def test_a_part_per_layer_of_one_view_is_no_multi_view_file(stereo: Path, capsys) -> None:
    # Nuke's Write of a mono script, a part per layer: parts rgba.main and depth.main, each of view main.
    both = read_image(stereo / "stereo.exr").pixels
    _write_parts(stereo / "layers.exr", {"main": both[..., :3], "main#depth": both[..., 3:4]}, [["R", "G", "B"], ["Z"]],
                 names=["rgba.main", "depth.main"])
    _write(stereo / "trimap.exr", _trimap(8), ["A"])
    assert cli.main(["matte", "--plate", str(stereo / "layers.exr"), "--trimap", str(stereo / "trimap.exr"),
                     "--out", str(stereo / "layers_out.exr"), "--weights", "none", "--no-progress"]) == 0
    assert "WARNING" not in capsys.readouterr().out
