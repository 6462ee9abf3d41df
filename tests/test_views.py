"""core.views: the views of a multi-view (stereo) EXR, on images read from files
(tests/test_cli_views.py runs them through ``lbsmatte matte``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from core.errors import InputError
from core.io import read_image
from core.views import check_no_view_variable, choose_views, file_views, split_view, view_channels


def _stereo(path: Path, channels: list[str], views: tuple[str, ...] = ("left", "right")) -> Path:
    pixels = np.arange(2 * 3 * len(channels), dtype=np.float32).reshape(2, 3, len(channels))
    spec = oiio.ImageSpec(3, 2, len(channels), oiio.FLOAT)
    spec.channelnames = tuple(channels)
    spec.attribute("multiView", oiio.TypeDesc(f"string[{len(views)}]"), views)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    assert out.write_image(pixels)
    out.close()
    return path


def test_the_views_of_one_part_and_the_channels_of_each(tmp_path: Path) -> None:
    image = read_image(_stereo(tmp_path / "t.exr", ["A", "right.A", "Z"]))
    assert file_views(image) == (["left", "right"], None)
    pixels, names = view_channels(image, ["left", "right"], "left")  # the default view's: unprefixed
    at = image.channels.index
    assert sorted(names) == ["A", "Z"]
    assert np.array_equal(pixels, image.pixels[..., [at(n) for n in names]])
    pixels, names = view_channels(image, ["left", "right"], "right")
    assert names == ["A"] and np.array_equal(pixels, image.pixels[..., [at("right.A")]])
    assert pixels.flags.c_contiguous


def test_a_multi_view_attribute_without_the_views_channels_makes_no_view(tmp_path: Path) -> None:
    assert file_views(read_image(_stereo(tmp_path / "t.exr", ["R", "G", "B"]))) == ([], None)


@pytest.mark.parametrize(("name", "expected"), [("right.A", ("right", "A")), ("left.A", ("left", "A")),
                                                ("matte.A", (None, "matte.A")), ("right", ("right", "")),
                                                ("A", (None, "A"))])
def test_split_view(name: str, expected: tuple[str | None, str]) -> None:
    assert split_view(["left", "right"], name) == expected


def test_choose_views_reads_the_trimap_in_the_plates_view(tmp_path: Path, caplog) -> None:
    plate = read_image(_stereo(tmp_path / "p.exr", ["R", "G", "B", "right.R", "right.G", "right.B"]))
    trimap = read_image(_stereo(tmp_path / "t.exr", ["A", "right.A"]))
    layer, channel, pixels, names = choose_views(plate, trimap, "right", "auto", "p.exr", "t.exr")
    assert (layer, channel, names) == ("right", "auto", ["A"])
    assert np.array_equal(pixels, trimap.pixels[..., [trimap.channels.index("right.A")]])
    assert "plate p.exr is a multi-view EXR (views left, right): its view right is matted with the trimap's " \
           "view right" in caplog.text
    with pytest.raises(InputError, match="matted in its view right but --trimap-channel left.A reads the trimap "
                                         "t.exr in its view left"):
        choose_views(plate, trimap, "right", "left.A", "p.exr", "t.exr")


def test_choose_views_gives_a_file_of_one_view_back_as_it_is(tmp_path: Path, caplog) -> None:
    path = tmp_path / "one.exr"
    spec = oiio.ImageSpec(3, 2, 1, oiio.FLOAT)
    spec.channelnames = ("A",)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    assert out.write_image(np.ones((2, 3, 1), np.float32))
    out.close()
    one = read_image(path)
    layer, channel, pixels, names = choose_views(one, one, None, "alpha", path, path)
    assert (layer, channel, names) == (None, "alpha", ["A"]) and pixels is one.pixels
    assert caplog.text == ""


@pytest.mark.parametrize("path", ["shot.%V.####.exr", "shot_%v.exr"])
def test_a_nuke_view_variable_is_refused(path: str) -> None:
    with pytest.raises(InputError, match="Nuke's view variable"):
        check_no_view_variable("--out", path)
    check_no_view_variable("--out", "shot.####.exr")
