"""core.io: real OpenImageIO reads and writes of EXR, DPX, TIFF, PNG, JPEG; sequences; atomic writes."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio
import pytest

from core import io
from core.errors import InputError, OutputError


def _write_raw(path: Path, pixels: np.ndarray, channels: list[str], fmt: str = "half", *,
               data_window: tuple[int, int] | None = None, display: tuple[int, int, int, int] | None = None,
               attributes: dict | None = None) -> None:
    """Write a file with OIIO directly (independent of core.io)."""
    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, oiio.TypeDesc(fmt))
    spec.channelnames = tuple(channels)
    if data_window:
        spec.x, spec.y = data_window
    if display:
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = display
    for k, v in (attributes or {}).items():
        spec.attribute(k, v)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    assert out.write_image(pixels.astype(np.float32))
    out.close()


@dataclass
class _Matte:
    alpha: np.ndarray
    fg: np.ndarray
    bg: np.ndarray


# -- reading -------------------------------------------------------------------------------------
def test_read_exr_float_values_and_channels_by_name(tmp_path: Path) -> None:
    px = np.zeros((4, 5, 4), np.float32)
    px[..., 0], px[..., 1], px[..., 2], px[..., 3] = 0.25, 2.5, -0.5, 1.0
    _write_raw(tmp_path / "p.exr", px, ["R", "G", "B", "A"], "float")
    img = io.read_image(tmp_path / "p.exr")
    assert img.pixels.dtype == np.float32 and img.shape == (4, 5)
    assert img.info.is_float and img.info.bit_depth == 32 and img.info.format_name == "openexr"
    np.testing.assert_array_equal(img.rgb()[0, 0], [0.25, 2.5, -0.5])  # > 1 and < 0 kept as stored
    np.testing.assert_array_equal(img.channel("a"), 1.0)
    np.testing.assert_array_equal(img.alpha(), 1.0)
    np.testing.assert_array_equal(img.channel("green"), 2.5)
    with pytest.raises(InputError, match=r"p\.exr: no channel 'Z'"):
        img.channel("Z")


def test_read_integer_formats_normalised(tmp_path: Path) -> None:
    px = np.zeros((3, 4, 3), np.float32)
    px[..., 0], px[..., 1], px[..., 2] = 0.0, 128 / 255, 1.0
    cases = {"png": ("uint8", 8), "tif": ("uint16", 16), "jpg": ("uint8", 8)}
    for ext, (fmt, bits) in cases.items():
        _write_raw(tmp_path / f"i.{ext}", px, ["R", "G", "B"], fmt)
        img = io.read_image(tmp_path / f"i.{ext}")
        assert not img.info.is_float and img.info.bit_depth == bits, ext
        tol = 0.03 if ext == "jpg" else 1e-4
        np.testing.assert_allclose(img.rgb()[1, 1], [0.0, 128 / 255, 1.0], atol=tol, err_msg=ext)
    _write_raw(tmp_path / "i.dpx", px, ["R", "G", "B"], "uint16", attributes={"oiio:BitsPerSample": 10})
    dpx = io.read_image(tmp_path / "i.dpx")
    assert not dpx.info.is_float and dpx.info.bit_depth == 10
    np.testing.assert_allclose(dpx.rgb()[0, 0], [0.0, 128 / 255, 1.0], atol=1 / 1023)


def test_one_channel_image_gives_grey_rgb(tmp_path: Path) -> None:
    _write_raw(tmp_path / "y.png", np.full((2, 3, 1), 128 / 255, np.float32), ["Y"], "uint8")
    img = io.read_image(tmp_path / "y.png")
    assert img.rgb().shape == (2, 3, 3)
    np.testing.assert_allclose(img.rgb(), 128 / 255, atol=1e-6)
    assert img.alpha() is None


def test_an_alpha_only_image_gives_that_channel_as_grey(tmp_path: Path) -> None:
    # A 1-channel image is grey whatever its channel is called, "A" included (was H×W×0).
    _write_raw(tmp_path / "a.exr", np.full((2, 3, 1), 0.25, np.float32), ["A"])
    img = io.read_image(tmp_path / "a.exr")
    assert img.rgb().shape == (2, 3, 3)
    np.testing.assert_array_equal(img.rgb(), 0.25)


def test_a_single_colour_channel_is_grey_and_two_of_three_are_refused(tmp_path: Path) -> None:
    # R beside a depth channel was refused ('cannot find colour channels') though Y beside it is a
    # grey plate; R and G were refused without saying which channel was missing.
    for names in (["R", "depth.Z"], ["B", "Z"], ["G", "A"], ["Y", "Z"]):
        _write_raw(tmp_path / "grey.exr", np.ones((2, 3, 2), np.float32) * np.array([0.25, 7.0], np.float32), names)
        np.testing.assert_array_equal(io.read_image(tmp_path / "grey.exr").rgb()[1, 2], [0.25] * 3, err_msg=str(names))
    for names, have, missing in ((["R", "G"], "R and G", "B"), (["G", "B", "A"], "G and B", "R"),
                                 (["rgba.R", "rgba.B"], "R and B", "G")):
        _write_raw(tmp_path / "two.exr", np.ones((2, 3, len(names)), np.float32), names)
        with pytest.raises(InputError, match=rf"two\.exr holds {have} but no {missing} \(its channels: .*\): two of the "
                                             r"three colour channels"):
            io.read_image(tmp_path / "two.exr").rgb()


def test_colour_in_a_layer_is_found_by_name_never_taken_from_other_channels(tmp_path: Path) -> None:
    # EXR sorts A and Z before the layer: taking the first three channels gave A, Z, beauty.R.
    px = np.ones((2, 3, 5), np.float32) * np.array([0.25, 0.5, 0.75, 1.0, 7.0], np.float32)
    _write_raw(tmp_path / "beauty.exr", px, ["beauty.R", "beauty.G", "beauty.B", "A", "Z"])
    np.testing.assert_array_equal(io.read_image(tmp_path / "beauty.exr").rgb()[1, 2], [0.25, 0.5, 0.75])
    two = np.ones((2, 3, 7), np.float32)
    _write_raw(tmp_path / "two.exr", two, ["diffuse.R", "diffuse.G", "diffuse.B", "spec.R", "spec.G", "spec.B", "A"])
    with pytest.raises(InputError, match=r"two\.exr.*no R, G, B.*several layers.*diffuse.*spec"):
        io.read_image(tmp_path / "two.exr").rgb()
    _write_raw(tmp_path / "depth.exr", np.ones((2, 3, 3), np.float32), ["A", "Z", "id"])
    with pytest.raises(InputError, match=r"depth\.exr: cannot find colour channels .* among A, Z, id"):
        io.read_image(tmp_path / "depth.exr").rgb()


def test_luminance_chroma_channels_are_never_matted_as_grey(tmp_path: Path) -> None:
    # Y, RY, BY that OIIO leaves unconverted: taking Y alone dropped the colour without a word.
    _write_raw(tmp_path / "yc.exr", np.full((2, 3, 3), 0.5, np.float32), ["Y", "RY", "BY"])
    with pytest.raises(InputError, match=r"yc\.exr: a luminance-chroma \(YC\) image whose chroma \(RY, BY\) "
                                         r"OpenImageIO did not convert to RGB: .* \(its channels: Y, BY, RY\)"):
        io.read_image(tmp_path / "yc.exr").rgb()
    for chroma in ("RY", "BY"):  # either chroma channel alone is colour that Y lacks
        _write_raw(tmp_path / f"y{chroma}.exr", np.full((2, 3, 2), 0.5, np.float32), ["Y", chroma])
        with pytest.raises(InputError, match=rf"y{chroma}\.exr: a luminance-chroma \(YC\) image"):
            io.read_image(tmp_path / f"y{chroma}.exr").rgb()
    _write_raw(tmp_path / "y.exr", np.full((2, 3, 1), 0.5, np.float32), ["Y"])  # luminance alone is grey
    np.testing.assert_array_equal(io.read_image(tmp_path / "y.exr").rgb()[0, 0], [0.5] * 3)


def test_an_exrs_uint_channels_are_read_as_the_numbers_they_hold(tmp_path: Path) -> None:
    # OpenEXR's UINT is a count: OpenEXR and Nuke's Read give 255 as 255.0. OpenImageIO scaled it
    # by 2^32 - 1: a uint32 trimap of 0/128/255 read as about 0, all background, and was matted
    # as a trimap with no unknown pixel without a word of what went wrong.
    from core.trimap import normalise_trimap

    t = np.array([[0, 128, 255], [255, 128, 0]], np.uint32)
    spec = oiio.ImageSpec(3, 2, 1, oiio.UINT32)
    spec.channelnames = ("Y",)
    out = oiio.ImageOutput.create(str(tmp_path / "trimap.exr"))
    assert out.open(str(tmp_path / "trimap.exr"), spec) and out.write_image(t[..., None])
    out.close()
    img = io.read_image(tmp_path / "trimap.exr")
    np.testing.assert_array_equal(img.pixels[..., 0], t.astype(np.float32))
    assert img.info.is_float  # an EXR: scene-linear to --colour auto, as to Nuke's Read; 0..255 to unit_scale
    with pytest.raises(InputError, match=r"holds float values up to 255.*divide it by 255"):
        normalise_trimap(img.pixels, "auto", img.channels)
    # an object ID beside half colour keeps its number; the colour is untouched
    spec = oiio.ImageSpec(3, 2, 4, oiio.HALF)
    spec.channelnames = ("R", "G", "B", "id")
    spec.channelformats = (oiio.TypeDesc("half"),) * 3 + (oiio.TypeDesc("uint"),)
    out = oiio.ImageOutput.create(str(tmp_path / "id.exr"))
    assert out.open(str(tmp_path / "id.exr"), spec)
    # (OpenImageIO writes a float as a fraction of 2^32 - 1: 7 / (2^32 - 1) is stored as 7)
    assert out.write_image(np.dstack([np.full((2, 3, 3), 0.25), np.full((2, 3), 7 / 4294967295)]).astype(np.float32))
    out.close()
    img = io.read_image(tmp_path / "id.exr")
    np.testing.assert_array_equal(img.rgb(), 0.25)
    assert img.channels == ["R", "G", "B", "id"]
    np.testing.assert_array_equal(img.channel("id"), 7.0)


def test_multi_part_exr_is_read_from_its_rgba_part(tmp_path: Path, exr_parts) -> None:
    # A depth part first, the colour in the second (as renderers write them): the plate is the
    # part holding R, G, B, as Nuke shows it in rgba, not the depth matted as grey.
    path = str(tmp_path / "parts.exr")
    colour = np.ones((3, 4, 3), np.float32) * np.array([0.25, 0.5, 0.75], np.float32)
    exr_parts(path, [("depth", ("Z",), np.full((3, 4, 1), 9.0), "float"), ("rgba", ("R", "G", "B"), colour, "half")])
    img = io.read_image(path)
    assert img.channels == ["R", "G", "B"] and img.info.channels == ["R", "G", "B"]
    np.testing.assert_array_equal(img.rgb()[2, 3], [0.25, 0.5, 0.75])
    assert img.info.attribute("name") == "rgba"


def test_multi_part_exr_whose_colour_is_a_layer_is_read_from_that_part(tmp_path: Path, exr_parts) -> None:
    # Renderers name a part after its pass and qualify its channels (depth.Z, beauty.R): the plate
    # is the part holding a colour layer, not the depth part before it repeated into grey.
    path = str(tmp_path / "passes.exr")
    colour = np.ones((3, 4, 3), np.float32) * np.array([0.25, 0.5, 0.75], np.float32)
    exr_parts(path, [("depth", ("depth.Z",), np.full((3, 4, 1), 9.0), "float"),
                     ("beauty", ("beauty.R", "beauty.G", "beauty.B"), colour, "half")])
    img = io.read_image(path)
    assert img.channels == ["beauty.R", "beauty.G", "beauty.B"]
    np.testing.assert_array_equal(img.rgb()[2, 3], [0.25, 0.5, 0.75])
    assert img.info.attribute("name") == "beauty"


def test_a_multi_part_exr_with_colour_in_several_parts_and_no_rgba_is_refused(tmp_path: Path, exr_parts) -> None:
    # A renderer's passes, diffuse before beauty, a part each and none holding rgba: the plate was
    # read from the first colour part, the diffuse pass matted as the plate without a word, where
    # the same layers in one part are refused. Now refused alike, naming the parts' layers.
    colour = np.ones((3, 4, 3), np.float32) * np.array([0.25, 0.5, 0.75], np.float32)
    for name, diffuse, beauty in (("layered", ("diffuse.R", "diffuse.G", "diffuse.B"), ("beauty.R", "beauty.G",
                                                                                        "beauty.B", "beauty.A")),
                                  ("nuke", ("R", "G", "B"), ("R", "G", "B", "A"))):  # Nuke's part per layer
        path = str(tmp_path / f"{name}.exr")
        exr_parts(path, [("diffuse", diffuse, np.full((3, 4, 3), 7.0), "half"),
                         ("beauty", beauty, np.dstack([colour, np.ones((3, 4))]), "half")])
        with pytest.raises(InputError, match=rf"{name}\.exr: no R, G, B channels and colour in several layers of its "
                                             r"parts \(diffuse, beauty\): cannot tell which is the plate; name its "
                                             r"layer \(lbsmatte matte --plate-layer\)"):
            io.read_image(path).rgb()
        np.testing.assert_array_equal(io.read_image(path, layer="beauty").rgb("beauty")[2, 3], [0.25, 0.5, 0.75])
        np.testing.assert_array_equal(io.read_image(path, layer="diffuse").rgb("diffuse")[0, 0], [7.0] * 3)
    # one colour part beside a depth part stays the plate, and so does an rgba part beside passes
    path = str(tmp_path / "one.exr")
    exr_parts(path, [("depth", ("depth.Z",), np.full((3, 4, 1), 9.0), "float"),
                     ("beauty", ("beauty.R", "beauty.G", "beauty.B"), colour, "half")])
    np.testing.assert_array_equal(io.read_image(path).rgb()[2, 3], [0.25, 0.5, 0.75])
    exr_parts(path, [("diffuse", ("diffuse.R", "diffuse.G", "diffuse.B"), np.full((3, 4, 3), 7.0), "half"),
                     ("rgba", ("R", "G", "B"), colour, "half")])
    np.testing.assert_array_equal(io.read_image(path).rgb()[2, 3], [0.25, 0.5, 0.75])


def test_the_plates_colour_layer_can_be_named(tmp_path: Path) -> None:
    # Several colour layers and no rgba: rgb() cannot tell which is the plate; rgb(layer) takes
    # the one named (any case), and rgba means R, G, B.
    px = np.ones((2, 3, 7), np.float32) * np.array([1, 2, 3, 4, 5, 6, 0.5], np.float32)
    _write_raw(tmp_path / "two.exr", px, ["diffuse.R", "diffuse.G", "diffuse.B", "spec.R", "spec.G", "spec.B", "A"])
    img = io.read_image(tmp_path / "two.exr")
    with pytest.raises(InputError, match=r"several layers \(diffuse, spec\): cannot tell which is the plate; name "
                                         r"its layer \(lbsmatte matte --plate-layer\)"):
        img.rgb()
    np.testing.assert_array_equal(img.rgb("spec")[1, 2], [4, 5, 6])
    np.testing.assert_array_equal(img.rgb("Diffuse")[1, 2], [1, 2, 3])
    with pytest.raises(InputError, match=r"two\.exr: no layer 'beauty' holding R, G, B \(its colour layers: "
                                         r"diffuse, spec; its channels: "):
        img.rgb("beauty")
    _write_raw(tmp_path / "rgba.exr", px[..., :6], ["R", "G", "B", "spec.R", "spec.G", "spec.B"])
    np.testing.assert_array_equal(io.read_image(tmp_path / "rgba.exr").rgb("rgba")[0, 0], [1, 2, 3])
    np.testing.assert_array_equal(io.read_image(tmp_path / "rgba.exr").rgb("rgb")[0, 0], [1, 2, 3])
    np.testing.assert_array_equal(img.rgb(" spec ")[1, 2], [4, 5, 6])  # as the knob and the CLI strip it


def test_a_named_layer_is_read_from_the_part_of_a_multi_part_exr_holding_it(tmp_path: Path, exr_parts) -> None:
    path = str(tmp_path / "parts.exr")
    rgba = ("rgba", ("R", "G", "B"), np.full((3, 4, 3), 0.25), "half")
    exr_parts(path, [rgba, ("spec", ("spec.R", "spec.G", "spec.B"), np.full((3, 4, 3), 0.75), "half")])
    np.testing.assert_array_equal(io.read_image(path).rgb()[0, 0], [0.25] * 3)
    img = io.read_image(path, layer="spec")
    assert img.info.attribute("name") == "spec"
    np.testing.assert_array_equal(img.rgb("spec")[0, 0], [0.75] * 3)
    # the layer in any case, as rgb(layer) takes it ('spec' of a part whose channels are Spec.R ...)
    cased = str(tmp_path / "cased.exr")
    exr_parts(cased, [rgba, ("spec", ("Spec.R", "Spec.G", "Spec.B"), np.full((3, 4, 3), 0.75), "half")])
    np.testing.assert_array_equal(io.read_image(cased, layer="spec").rgb("spec")[0, 0], [0.75] * 3)
    # a layer no part holds: the usual part, and rgb() names what it has
    with pytest.raises(InputError, match=r"no layer 'beauty' holding R, G, B \(its colour layers: rgba;"):
        io.read_image(path, layer="beauty").rgb("beauty")


def test_a_multi_part_exr_as_nukes_write_makes_it_is_read_as_nukes_read_shows_it(tmp_path: Path) -> None:
    # Nuke's Write with 'interleave: channels' writes a part per layer in the layers' order, each
    # named layer.view, its channels without the layer ('write full layer names' off, the default):
    # bg.main (red, green, blue), depth.main (Z), fg.main, rgba.main (R, G, B, A), trimap.main
    # (alpha). Nuke's Read takes the layers from the part names; the plate was read from bg.main,
    # whose 'red' looked like rgba's, and matted as the plate without a word.
    path = str(tmp_path / "nuke.exr")
    parts = [("bg.main", ("red", "green", "blue"), 0.125), ("depth.main", ("Z",), 9.0),
             ("fg.main", ("red", "green", "blue"), 0.75), ("rgba.main", ("R", "G", "B", "A"), 0.5),
             ("trimap.main", ("alpha",), 0.25)]
    specs = []
    for name, channels, _ in parts:
        spec = oiio.ImageSpec(4, 3, len(channels), oiio.HALF)
        spec.channelnames = channels
        spec.attribute("name", name)
        spec.attribute("view", "main")
        specs.append(spec)
    out = oiio.ImageOutput.create(path)
    assert out.open(path, specs)
    for index, (spec, (_, channels, value)) in enumerate(zip(specs, parts, strict=True)):
        assert index == 0 or out.open(path, spec, "AppendSubimage")
        assert out.write_image(np.full((3, 4, len(channels)), value, np.float32))
    assert out.close()
    img = io.read_image(path)
    assert img.channels == ["R", "G", "B", "A"] and img.info.attribute("name") == "rgba.main"
    np.testing.assert_array_equal(img.rgb()[0, 0], [0.5] * 3)
    fg = io.read_image(path, layer="fg")
    assert fg.channels == ["fg.red", "fg.green", "fg.blue"]
    np.testing.assert_array_equal(fg.rgb("fg")[0, 0], [0.75] * 3)
    trimap = io.read_image(path, layer="trimap")
    assert trimap.channels == ["trimap.alpha"] and trimap.channel("trimap.alpha")[0, 0] == 0.25
    # a part per view ('interleave: channels and layers'), each named after its view: no layer
    views = str(tmp_path / "views.exr")
    specs = []
    for view in ("left", "right"):
        spec = oiio.ImageSpec(4, 3, 4, oiio.HALF)
        spec.channelnames = ("R", "G", "B", "A")
        spec.attribute("name", view)
        spec.attribute("view", view)
        specs.append(spec)
    out = oiio.ImageOutput.create(views)
    assert out.open(views, specs) and out.write_image(np.full((3, 4, 4), 0.25, np.float32))
    assert out.open(views, specs[1], "AppendSubimage") and out.write_image(np.ones((3, 4, 4), np.float32))
    assert out.close()
    left = io.read_image(views)
    assert left.channels == ["R", "G", "B", "A"] and left.rgb()[0, 0].tolist() == [0.25] * 3


def test_data_window_padded_to_display_window(tmp_path: Path) -> None:
    px = np.ones((3, 4, 3), np.float32)
    _write_raw(tmp_path / "dw.exr", px, ["R", "G", "B"], data_window=(2, 1), display=(0, 0, 8, 6),
               attributes={"lbs:shot": "sh010", "lbs:gain": 1.5})
    img = io.read_image(tmp_path / "dw.exr")
    assert img.shape == (6, 8)
    expected = np.zeros((6, 8), np.float32)
    expected[1:4, 2:6] = 1.0
    np.testing.assert_array_equal(img.channel("R"), expected)
    i = img.info
    assert (i.x, i.y, i.width, i.height) == (2, 1, 4, 3)
    assert (i.full_x, i.full_y, i.full_width, i.full_height) == (0, 0, 8, 6)
    assert not i.data_matches_display
    assert i.attribute("lbs:shot") == "sh010" and i.attribute("lbs:gain") == 1.5
    assert ("lbs:gain", "float", 1.5) in i.metadata


def test_data_window_larger_than_display_is_cropped(tmp_path: Path) -> None:
    px = np.arange(6 * 10, dtype=np.float32).reshape(6, 10, 1)
    _write_raw(tmp_path / "over.exr", px, ["Y"], "float", data_window=(-2, -1), display=(0, 0, 6, 4))
    img = io.read_image(tmp_path / "over.exr")
    np.testing.assert_array_equal(img.pixels[..., 0], px[1:5, 2:8, 0])


def test_read_over_the_union_window_keeps_overscan(tmp_path: Path) -> None:
    # data window (-2, -1) 10x6 over a display window (0, 0) 6x4: it sticks out left and top only
    px = np.arange(6 * 10, dtype=np.float32).reshape(6, 10, 1) + 1.0
    _write_raw(tmp_path / "over.exr", px, ["Y"], "float", data_window=(-2, -1), display=(0, 0, 6, 4))
    img = io.read_image(tmp_path / "over.exr", window="union")
    assert img.window == img.info.union_window == (-2, -1, 10, 6)
    np.testing.assert_array_equal(img.pixels[..., 0], px[..., 0])  # every stored pixel, nothing dropped
    assert io.read_image(tmp_path / "over.exr").window is None  # the default: the display window
    # a data window inside the display window: the union is the display window, zeros around
    _write_raw(tmp_path / "in.exr", px, ["Y"], "float", data_window=(3, 2), display=(0, 0, 16, 9))
    inside = io.read_image(tmp_path / "in.exr", window="union")
    assert inside.window == (0, 0, 16, 9) and inside.pixels[0, 0, 0] == 0.0 and inside.pixels[2, 3, 0] == 1.0
    # any window, e.g. another image's
    other = io.read_image(tmp_path / "over.exr", window=(-3, 0, 4, 2))
    np.testing.assert_array_equal(other.pixels[..., 0], [[0, 11, 12, 13], [0, 21, 22, 23]])
    # None, a number or a string in the box raised Python's TypeError; 10.7 px was cut to 10 silently.
    for bad in ("overscan", None, 5, (0, 0, "a", 1), (0, 0, 10.7, 2), (0, 0, 4), (0, 0, 0, 2)):
        with pytest.raises(InputError, match=r"over\.exr: window must be 'display', 'union' or \(x, y, width, height\)"):
            io.read_image(tmp_path / "over.exr", window=bad)  # type: ignore[arg-type]
    same = io.read_image(tmp_path / "over.exr", window=[np.int64(-3), 0, 4, 2])
    assert same.window == (-3, 0, 4, 2) and np.array_equal(same.pixels, other.pixels)


def test_a_bounding_box_far_off_the_frame_is_refused_before_its_empty_union_is_allocated(tmp_path: Path) -> None:
    # a 4x3 data window 100 000 px off a 64x36 frame: the union would be 10^10 pixels
    px = np.ones((3, 4, 3), np.float32)
    _write_raw(tmp_path / "far.exr", px, ["R", "G", "B"], "float", data_window=(100_000, 100_000), display=(0, 0, 64, 36))
    with pytest.raises(InputError, match=r"far\.exr: its data window \(100000, 100000, 4, 3\) lies far outside "
                                         r"its display window \(0, 0, 64, 36\).*crop the bounding box"):
        io.read_image(tmp_path / "far.exr", window="union")
    assert io.read_image(tmp_path / "far.exr").shape == (36, 64)  # the display window alone still reads
    # overscan of a quarter of the frame on every side is fine
    _write_raw(tmp_path / "near.exr", np.ones((54, 96, 3), np.float32), ["R", "G", "B"], "float",
               data_window=(-16, -9), display=(0, 0, 64, 36))
    assert io.read_image(tmp_path / "near.exr", window="union").window == (-16, -9, 96, 54)


def test_writers_put_pixels_of_a_window_back_into_the_plates_windows(tmp_path: Path) -> None:
    px = np.random.default_rng(1).random((6, 10, 3)).astype(np.float32) * 4.0
    _write_raw(tmp_path / "plate.exr", px, ["R", "G", "B"], "float", data_window=(-2, -1), display=(0, 0, 6, 4))
    plate = io.read_image(tmp_path / "plate.exr", window="union")
    alpha = np.full(plate.shape, 0.5, np.float32)
    io.write_matte_exr(tmp_path / "m.exr", _Matte(alpha, plate.rgb(), plate.rgb()), like=plate.info,
                       window=plate.window, half=False)
    back = io.read_image(tmp_path / "m.exr", window="union")
    assert (back.info.x, back.info.y, back.info.width, back.info.height) == (-2, -1, 10, 6)
    assert back.info.display_window == (0, 0, 6, 4)
    np.testing.assert_array_equal(np.dstack([back.channel(f"fg.{c}") for c in "RGB"]), px)
    np.testing.assert_array_equal(np.dstack([back.channel(c) for c in "RGB"]), px * 0.5)  # premultiplied
    io.write_image(tmp_path / "m.png", np.dstack([plate.rgb() / 4.0, alpha]), ["R", "G", "B", "A"],
                   like=plate.info, window=plate.window)
    assert io.read_image(tmp_path / "m.png").shape == (4, 6)  # PNG: the display window
    with pytest.raises(OutputError, match="the result is 10x6 but the window it should cover is 4x4"):
        io.write_image(tmp_path / "bad.exr", plate.pixels, plate.channels, like=plate.info, window=(0, 0, 4, 4))


def test_missing_unreadable_truncated_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"file not found: .*nope\.exr"):
        io.read_image(tmp_path / "nope.exr")
    junk = tmp_path / "junk.exr"
    junk.write_bytes(b"this is not an image at all")
    with pytest.raises(InputError, match=r"cannot read image .*junk\.exr"):
        io.read_image(junk)
    rng = np.random.default_rng(0)
    px = rng.random((64, 80, 3)).astype(np.float32)
    for ext, fmt in (("exr", "half"), ("png", "uint8"), ("tif", "uint16")):
        whole = tmp_path / f"whole.{ext}"
        _write_raw(whole, px, ["R", "G", "B"], fmt)
        cut = tmp_path / f"cut.{ext}"
        data = whole.read_bytes()
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(InputError, match=rf"cannot read image .*cut\.{ext}.*: \S"):
            io.read_image(cut)
    with pytest.raises(InputError, match="is a folder"):
        io.read_image(tmp_path)


def test_read_info_is_read_images_info_from_the_header_and_check_whole_finds_a_file_cut_short_or_damaged(
        tmp_path: Path, exr_parts) -> None:
    # --skip-existing wants a plate's header and whether a result reads whole; read_image decoded
    # every pixel into 32-bit floats for either (a 4K plate or matte: a second or more a file).
    rng = np.random.default_rng(0)
    px = rng.random((64, 80, 3)).astype(np.float32)
    files = []
    for ext, fmt in (("exr", "half"), ("png", "uint16"), ("tif", "uint8"), ("dpx", "uint10")):
        files.append(tmp_path / f"whole.{ext}")
        _write_raw(files[-1], px, ["R", "G", "B"], fmt, attributes={"lbsmatte/version": "1"} if ext == "exr" else None)
    overscan = tmp_path / "overscan.exr"
    _write_raw(overscan, px, ["R", "G", "B"], "float", data_window=(-4, -2), display=(0, 0, 72, 60))
    parts = str(tmp_path / "parts.exr")
    exr_parts(parts, [("depth", ("Z",), np.full((3, 4, 1), 9.0), "float"),
                      ("beauty", ("beauty.R", "beauty.G", "beauty.B"), np.ones((3, 4, 3)), "half")])
    for path, layer in [(f, None) for f in files] + [(overscan, None), (parts, None), (parts, "beauty")]:
        info = io.read_image(path, window="union", layer=layer).info
        assert io.read_info(path, layer=layer) == info, path
        assert io.check_whole(path, layer=layer) == info, path
    data = files[0].read_bytes()
    cut, damaged = tmp_path / "cut.exr", tmp_path / "damaged.exr"
    cut.write_bytes(data[: len(data) // 2])
    middle = len(data) // 2
    damaged.write_bytes(data[:middle] + bytes(b ^ 0x5A for b in data[middle:middle + 256]) + data[middle + 256:])
    for path in (cut, damaged):
        assert io.read_info(path).attribute("lbsmatte/version") == "1"  # the header is whole
        with pytest.raises(InputError, match=rf"cannot read image .*{path.name} \(truncated or damaged\?\): \S"):
            io.check_whole(path)
    with pytest.raises(InputError, match=r"file not found: .*nope\.exr"):
        io.read_info(tmp_path / "nope.exr")


# -- writing -------------------------------------------------------------------------------------
def test_write_matte_exr_channels_windows_metadata(tmp_path: Path) -> None:
    plate = tmp_path / "plate.exr"
    _write_raw(plate, np.ones((3, 4, 3), np.float32), ["R", "G", "B"], data_window=(2, 1),
               display=(0, 0, 8, 6), attributes={"lbs:shot": "sh010", "compression": "piz",
                                                 "Exif:ColorSpace": 1, "photoshop:Mode": "rgb"})
    info = io.read_image(plate).info
    assert info.attribute("Exif:ColorSpace") == 1 and info.attribute("photoshop:Mode") == "rgb"
    alpha = np.full((6, 8), 0.5, np.float32)
    fg = np.dstack([np.full((6, 8), v, np.float32) for v in (2.0, 0.4, 0.2)])
    bg = np.dstack([np.full((6, 8), v, np.float32) for v in (0.1, 0.3, 5.0)])
    out = tmp_path / "out" / "m.exr"
    io.write_matte_exr(out, _Matte(alpha, fg, bg), like=info)
    img = io.read_image(out)
    assert sorted(img.channels) == sorted(io.MATTE_CHANNELS)
    assert img.info.pixel_type == "half"
    i = img.info
    assert (i.x, i.y, i.width, i.height, i.full_width, i.full_height) == (2, 1, 4, 3, 8, 6)
    assert i.attribute("lbs:shot") == "sh010"
    assert i.attribute("compression") == "zip"
    # attributes that describe the plate's encoding, not the matte's (Exif:ColorSpace 1 says sRGB)
    assert i.attribute("Exif:ColorSpace") is None and i.attribute("photoshop:Mode") is None
    inside = (slice(1, 4), slice(2, 6))
    np.testing.assert_array_equal(img.channel("R")[inside], 1.0)  # 2.0 * 0.5, premultiplied
    np.testing.assert_array_equal(img.channel("A")[inside], 0.5)
    np.testing.assert_allclose(img.channel("fg.G")[inside], 0.4, rtol=1e-3)
    np.testing.assert_array_equal(img.channel("bg.B")[inside], 5.0)
    assert img.channel("A")[0, 0] == 0.0  # outside the data window
    # unpremultiplied, 32-bit float
    io.write_matte_exr(out, _Matte(alpha, fg, bg), like=info, premultiply=False, half=False)
    img = io.read_image(out)
    assert img.info.pixel_type == "float"
    np.testing.assert_array_equal(img.channel("R")[inside], 2.0)
    np.testing.assert_array_equal(img.channel("fg.G")[inside], np.float32(0.4))


def test_the_matte_does_not_claim_the_plates_views_luminance_chroma_or_texture_layout(tmp_path: Path) -> None:
    # A stereo plate's multiView names a right view the matte does not hold (Nuke would offer it);
    # a YC plate (OIIO reads it as RGB) would mark the RGB matte luminance-chroma; a mip-mapped
    # plate would make the scanline matte claim to be a texture. The picture's own facts stay.
    plate = tmp_path / "plate.exr"
    _write_raw(plate, np.ones((3, 4, 3), np.float32), ["R", "G", "B"],
               attributes={"openexr:luminancechroma": 1, "textureformat": "Plain Texture",
                           "PixelAspectRatio": 2.0, "owner": "sh010 plates"})
    info = io.read_image(plate).info
    info.metadata.append(("multiView", "string[2]", ("left", "right")))  # as a stereo plate's reads
    assert info.attribute("openexr:luminancechroma") == 1 and info.attribute("textureformat") == "Plain Texture"
    out = tmp_path / "m.exr"
    ones = np.ones((3, 4, 3), np.float32)
    io.write_matte_exr(out, _Matte(np.ones((3, 4), np.float32), ones, ones), like=info)
    written = oiio.ImageInput.open(str(out))
    spec = written.spec()
    written.close()
    assert not {a.name for a in spec.extra_attribs} & {"multiView", "openexr:luminancechroma", "textureformat"}
    assert spec.get_float_attribute("PixelAspectRatio") == 2.0
    assert spec.get_string_attribute("Copyright") == "sh010 plates"

def test_a_failed_encode_names_the_users_file_not_the_memory_file(tmp_path: Path) -> None:
    """On Linux OIIO encodes into an anonymous memory file: its own message, naming
    ``/proc/self/fd/N``, must reach the user naming the file they asked for."""
    spec = oiio.ImageSpec(4, 4, 3, oiio.HALF)
    spec.attribute("PixelAspectRatio", 0.0)  # OpenEXR refuses it at open
    dest = str(tmp_path / "matte.exr")
    with pytest.raises(OutputError) as caught:
        io._write_pixels(str(tmp_path / ".matte.tmp.exr"), spec, np.zeros((4, 4, 3), np.float32), dest)
    assert "/proc/self/fd" not in str(caught.value)
    assert str(caught.value).startswith(f"cannot write {dest}:") and "pixel aspect" in str(caught.value)


def test_a_plates_pixel_aspect_openexr_cannot_hold_gives_the_matte_square_pixels(tmp_path: Path) -> None:
    # A DPX whose pixel aspect fields read 0:1 (OIIO gives PixelAspectRatio 0) failed every frame's
    # EXR result: OpenEXR refuses "Invalid pixel aspect ratio in image header". An aspect it holds
    # is still carried, to the EXR and the DPX alike.
    for aspect, expected in ((0.0, 1.0), (2.0, 2.0)):
        plate = tmp_path / f"plate{aspect}.dpx"
        spec = oiio.ImageSpec(4, 3, 3, "uint16")
        spec.attribute("PixelAspectRatio", aspect)
        out = oiio.ImageOutput.create(str(plate))
        assert out.open(str(plate), spec) and out.write_image(np.full((3, 4, 3), 0.5, np.float32)) and out.close()
        info = io.read_image(plate).info
        assert info.attribute("PixelAspectRatio") == aspect  # as OIIO reads the file
        ones = np.ones((3, 4, 3), np.float32)
        io.write_matte_exr(tmp_path / "m.exr", _Matte(np.ones((3, 4), np.float32), ones, ones), like=info)
        io.write_image(tmp_path / "m.dpx", np.ones((3, 4, 4), np.float32), ["R", "G", "B", "A"], like=info)
        for name in ("m.exr", "m.dpx"):
            written = oiio.ImageInput.open(str(tmp_path / name))
            assert written.spec().get_float_attribute("PixelAspectRatio") == expected, (aspect, name)
            written.close()


def test_the_plates_integer_vector_and_box_attributes_reach_the_matte(tmp_path: Path) -> None:
    # EXR's v2i, v3i and box2i attributes (OIIO reads them as vector2i, vectori, vector2i[2]) were
    # dropped from the result without a word: oiio.TypeDesc() does not parse those names back.
    vec = oiio.TypeDesc(oiio.INT, oiio.VEC2, oiio.VECTOR)
    attributes = {"studio/offset": (vec, (3, -4)), "studio/cell": (oiio.TypeDesc(oiio.INT, oiio.VEC3, oiio.VECTOR), (1, 2, 3)),
                  "studio/crop": (oiio.TypeDesc(oiio.INT, oiio.VEC2, oiio.VECTOR, 2), (0, 0, 1919, 1079)),
                  "studio/centre": (oiio.TypeDesc("float2"), (0.5, 0.25))}
    spec = oiio.ImageSpec(4, 3, 3, oiio.HALF)
    spec.channelnames = ("R", "G", "B")
    for name, (kind, value) in attributes.items():
        spec.attribute(name, kind, value)
    plate = str(tmp_path / "plate.exr")
    out = oiio.ImageOutput.create(plate)
    assert out.open(plate, spec) and out.write_image(np.ones((3, 4, 3), np.float32)) and out.close()
    info = io.read_image(plate).info
    ones = np.ones((3, 4, 3), np.float32)
    io.write_matte_exr(tmp_path / "m.exr", _Matte(np.ones((3, 4), np.float32), ones, ones), like=info)
    written = oiio.ImageInput.open(str(tmp_path / "m.exr"))
    kept = {a.name: (str(a.type), a.value) for a in written.spec().extra_attribs}
    written.close()
    for name, (kind, value) in attributes.items():
        assert kept.get(name) == (str(kind), value), name


def test_a_scans_frame_rate_and_film_header_reach_its_dpx_and_exr_mattes(tmp_path: Path) -> None:
    # OpenImageIO reads and writes a DPX's frame rate only as dpx:FrameRate, which was dropped with
    # every other dpx: field: a scan's DPX (and EXR) matte lost the shot's frame rate, its shutter
    # angle and slate, and an EXR plate's DPX matte its FramesPerSecond.
    scan = tmp_path / "scan.dpx"
    _write_raw(scan, np.full((3, 4, 3), 0.5, np.float32), ["R", "G", "B"], "uint16",
               attributes={"dpx:FrameRate": 23.976, "dpx:ShutterAngle": 180.0, "dpx:SlateInfo": "SH010 TK3",
                           "dpx:Transfer": "Logarithmic"})
    info = io.read_image(scan).info
    ones = np.ones((3, 4, 3), np.float32)
    io.write_image(tmp_path / "m.dpx", ones, ["R", "G", "B"], like=info)
    dpx = io.read_image(tmp_path / "m.dpx").info
    assert dpx.attribute("dpx:FrameRate") == pytest.approx(23.976)
    assert dpx.attribute("dpx:ShutterAngle") == 180.0 and dpx.attribute("dpx:SlateInfo") == "SH010 TK3"
    assert dpx.attribute("dpx:Transfer") != "Logarithmic"  # the encoding is the result's, not the scan's
    io.write_matte_exr(tmp_path / "m.exr", _Matte(np.ones((3, 4), np.float32), ones, ones), like=info)
    exr = io.read_image(tmp_path / "m.exr").info
    # under OpenEXR's own name, which other EXR readers look for (it had OIIO's FramesPerSecond)
    assert tuple(exr.attribute("framesPerSecond")) == (24000, 1001)
    assert exr.attribute("FramesPerSecond") is None
    assert not [name for name, _, _ in exr.metadata if name.startswith("dpx:")]
    # and the other way round: an EXR plate's rate as the DPX's, under either name (OpenEXR's, as
    # OpenEXR's own writers and the matte's name it, was not read)
    io.write_image(tmp_path / "e.dpx", ones, ["R", "G", "B"], like=exr)
    assert io.read_image(tmp_path / "e.dpx").info.attribute("dpx:FrameRate") == pytest.approx(24000 / 1001)
    for name in ("framesPerSecond", "FramesPerSecond"):
        plate = str(tmp_path / f"{name}.exr")
        spec = oiio.ImageSpec(4, 3, 3, oiio.HALF)
        spec.attribute(name, oiio.TypeDesc("rational"), (30000, 1001))
        out = oiio.ImageOutput.create(plate)
        assert out.open(plate, spec) and out.write_image(np.full((3, 4, 3), 0.5, np.float32)) and out.close()
        io.write_image(tmp_path / "r.dpx", ones, ["R", "G", "B"], like=io.read_image(plate).info)
        assert io.read_image(tmp_path / "r.dpx").info.attribute("dpx:FrameRate") == pytest.approx(30000 / 1001), name


def test_write_matte_exr_every_channel_and_a_display_window_off_the_origin(tmp_path: Path) -> None:
    # Read back with OIIO directly (not core.io): each of the ten channels holds its own layer's
    # value under its own name, and both windows (the display window's origin included) are the plate's.
    plate = tmp_path / "plate.exr"
    _write_raw(plate, np.ones((3, 4, 3), np.float32), ["R", "G", "B"], "float", data_window=(-1, 4),
               display=(-3, 2, 8, 6))
    info = io.read_image(plate).info
    rng = np.random.default_rng(3)
    alpha = rng.uniform(0.1, 0.9, (6, 8)).astype(np.float32)
    fg = rng.uniform(0.0, 4.0, (6, 8, 3)).astype(np.float32)
    bg = rng.uniform(0.0, 4.0, (6, 8, 3)).astype(np.float32)
    out = tmp_path / "m.exr"
    io.write_matte_exr(out, _Matte(alpha, fg, bg), like=info, half=False)
    inp = oiio.ImageInput.open(str(out))
    assert inp is not None, oiio.geterror()
    spec = inp.spec()
    stored = inp.read_image(oiio.FLOAT)
    inp.close()
    assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (-3, 2, 8, 6)
    assert (spec.x, spec.y, spec.width, spec.height) == (-1, 4, 4, 3)
    names = list(spec.channelnames)
    assert sorted(names) == sorted(io.MATTE_CHANNELS)
    # The data window's pixels: rows 4-6 and columns -1..2 of the frame, i.e. [2:5, 2:6] of the display window.
    inside = (slice(2, 5), slice(2, 6))
    want = {"A": alpha, **{c: fg[..., i] * alpha for i, c in enumerate("RGB")},
            **{f"fg.{c}": fg[..., i] for i, c in enumerate("RGB")}, **{f"bg.{c}": bg[..., i] for i, c in enumerate("RGB")}}
    for name, plane in want.items():
        np.testing.assert_array_equal(stored[..., names.index(name)], plane[inside], err_msg=name)


def test_values_beyond_half_float_are_clamped_and_reported_not_written_as_inf(tmp_path: Path, caplog) -> None:
    # A linear plate's highlight of 1e5 passes into FG (and FG·alpha): a half-float EXR took it as
    # inf, silently, and Nuke's merges spread that as NaN.
    alpha = np.array([[1.0, 0.5, 0.0]], np.float32)
    fg = np.array([[[1e5, 0.2, -2e5], [7e4, 1e-9, 0.3], [0.5, 0.5, 0.5]]], np.float32)
    bg = np.array([[[0.1, 0.1, 0.1], [0.2, 0.2, 0.2], [3e38, 60000.0, -1e-30]]], np.float32)
    with caplog.at_level("WARNING", logger="core.io"):
        io.write_matte_exr(tmp_path / "m.exr", _Matte(alpha, fg, bg))
    img = io.read_image(tmp_path / "m.exr")
    for name in io.MATTE_CHANNELS:
        assert np.isfinite(img.channel(name)).all(), name
    np.testing.assert_array_equal(img.channel("fg.R")[0, :2], [65504.0, 65504.0])
    assert img.channel("fg.B")[0, 0] == -65504.0
    assert img.channel("R")[0, 0] == 65504.0 and img.channel("R")[0, 1] == 35008.0  # 7e4 · 0.5 fits
    assert img.channel("bg.R")[0, 2] == 65504.0 and img.channel("bg.G")[0, 2] == 60000.0
    warned = [r.getMessage() for r in caplog.records if "65504" in r.getMessage()]
    assert len(warned) == 1 and "m.exr" in warned[0] and "fg.R" in warned[0] and "bg.R" in warned[0]
    # 32-bit float holds them: nothing clamped, nothing said
    caplog.clear()
    io.write_matte_exr(tmp_path / "f.exr", _Matte(alpha, fg, bg), half=False)
    assert io.read_image(tmp_path / "f.exr").channel("fg.R")[0, 0] == 1e5
    assert not [r for r in caplog.records if "65504" in r.getMessage()]
    # write_image's half-float EXR alike
    io.write_image(tmp_path / "i.exr", fg, ["R", "G", "B"])
    written = io.read_image(tmp_path / "i.exr")
    assert np.isfinite(written.pixels).all()
    assert written.info.pixel_type == "half" and written.info.attribute("compression") == "zip"  # as documented
    # only finite values are clamped: an inf or NaN given is written as given, not hidden as 65504
    given = np.array([[[np.inf, -np.inf, np.nan]]], np.float32)
    io.write_image(tmp_path / "n.exr", given, ["R", "G", "B"])
    np.testing.assert_array_equal(io.read_image(tmp_path / "n.exr").pixels, given)


def test_a_result_within_half_floats_range_is_written_without_scanning_it_for_what_to_clamp(monkeypatch) -> None:
    # The usual frame: two reductions say every value fits, instead of a frame-sized abs, a mask of
    # finite values and the test of every channel (a quarter of a second at 1080p, every frame).
    pixels = np.array([[[65504.0, -65504.0, 0.5, -1e-30]]], np.float32)
    scans: list[str] = []
    isfinite, absolute = np.isfinite, np.abs
    monkeypatch.setattr(np, "isfinite", lambda *a, **k: scans.append("isfinite") or isfinite(*a, **k))
    monkeypatch.setattr(np, "abs", lambda *a, **k: scans.append("abs") or absolute(*a, **k))
    assert io._fit_half(pixels, ["R", "G", "B", "A"], "m.exr") is pixels
    assert scans == []
    for beyond, written in ((np.nan, np.nan), (np.inf, np.inf), (-7e4, -65504.0)):  # the full test, as before
        given = pixels.copy()
        given[0, 0, 2] = beyond
        np.testing.assert_array_equal(io._fit_half(given, ["R", "G", "B", "A"], "m.exr")[0, 0],
                                      np.array([65504.0, -65504.0, written, -1e-30], np.float32))
    assert scans


def test_write_matte_exr_without_like_and_size_mismatch(tmp_path: Path) -> None:
    m = _Matte(np.zeros((2, 3), np.float32), np.zeros((2, 3, 3), np.float32), np.ones((2, 3, 3), np.float32))
    io.write_matte_exr(tmp_path / "m.exr", m)
    img = io.read_image(tmp_path / "m.exr")
    assert img.shape == (2, 3) and (img.info.x, img.info.full_width) == (0, 3)
    np.testing.assert_array_equal(img.channel("bg.R"), 1.0)
    other = io.read_image(tmp_path / "m.exr").info
    other.full_width = 4
    with pytest.raises(OutputError, match="3x2 .* is 4x2"):
        io.write_matte_exr(tmp_path / "n.exr", m, like=other)
    assert not (tmp_path / "n.exr").exists()
    # Another extension wrote the ten channels as a half-float TIFF, or failed naming the temporary file.
    for name in ("m.tif", "m", "m.png"):
        with pytest.raises(OutputError, match=rf"cannot write .*{re.escape(os.sep + name)}: write_matte_exr writes OpenEXR"):
            io.write_matte_exr(tmp_path / name, m)
        assert not (tmp_path / name).exists()
    io.write_matte_exr(tmp_path / "upper.EXR", m)
    assert io.read_image(tmp_path / "upper.EXR").channels[4:] == ["bg.R", "bg.G", "bg.B", "fg.R", "fg.G", "fg.B"]


def test_write_image_quantises_and_clips(tmp_path: Path) -> None:
    px = np.array([[[-0.5, 0.5, 1.7]]], np.float32)
    io.write_image(tmp_path / "o.png", px, ["R", "G", "B"])
    raw = oiio.ImageInput.open(str(tmp_path / "o.png"))
    assert str(raw.spec().format) == "uint8"
    assert raw.read_image(oiio.UINT8).tolist() == [[[0, 128, 255]]]
    raw.close()
    io.write_image(tmp_path / "o.tif", px, ["R", "G", "B"])
    np.testing.assert_allclose(io.read_image(tmp_path / "o.tif").pixels, [[[0.0, 0.5, 1.0]]], atol=1e-4)
    io.write_image(tmp_path / "o.jpg", np.full((8, 8, 3), 0.5, np.float32), ["R", "G", "B"])
    np.testing.assert_allclose(io.read_image(tmp_path / "o.jpg").pixels, 0.5, atol=0.01)
    io.write_image(tmp_path / "o.exr", px, ["R", "G", "B"])
    np.testing.assert_array_equal(io.read_image(tmp_path / "o.exr").pixels, px.astype(np.float16))  # not clipped
    with pytest.raises(OutputError, match="JPEG holds 1 or 3 channels"):
        io.write_image(tmp_path / "a.jpg", np.zeros((2, 2, 4), np.float32), ["R", "G", "B", "A"])
    with pytest.raises(OutputError, match="unsupported extension '.gif'"):
        io.write_image(tmp_path / "a.gif", px, ["R", "G", "B"])
    # A misspelt pixel_type was written in the format's default depth: 8-bit for "unit16", half for "flaot".
    for name, typo in (("t.tif", "unit16"), ("f.exr", "flaot"), ("u.png", "UINT8")):
        with pytest.raises(OutputError, match=rf"cannot write .*{name}: unknown pixel_type '{typo}' \(uint8, uint16"):
            io.write_image(tmp_path / name, px, ["R", "G", "B"], pixel_type=typo)
        assert not (tmp_path / name).exists()
    io.write_image(tmp_path / "f.exr", px, ["R", "G", "B"], pixel_type="float")
    np.testing.assert_array_equal(io.read_image(tmp_path / "f.exr").pixels, px)


def test_write_png_rgba_premultiplied_round_trip(tmp_path: Path) -> None:
    # PNG holds unpremultiplied colour: OIIO unpremultiplies on writing; read_image gives the
    # colour back as the file stores it (straight), as Nuke's Read does.
    rgba = np.array([[[0.25, 0.1, 0.0, 0.5]]], np.float32)
    io.write_image(tmp_path / "p.png", rgba, ["R", "G", "B", "A"])
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)
    raw = oiio.ImageInput.open(str(tmp_path / "p.png"), config)
    assert raw.read_image(oiio.UINT8).tolist() == [[[128, 51, 0, 128]]]
    raw.close()
    np.testing.assert_allclose(io.read_image(tmp_path / "p.png").pixels, [[[128 / 255, 51 / 255, 0, 128 / 255]]],
                               atol=1e-6)
    straight = np.array([[[0.5, 0.2, 0.0, 0.5]]], np.float32)
    io.write_image(tmp_path / "s.png", straight, ["R", "G", "B", "A"], unassociated_alpha=True)
    assert (tmp_path / "s.png").read_bytes() == (tmp_path / "p.png").read_bytes()


@pytest.mark.parametrize("ext", ["png", "tif", "tga"])
def test_straight_alpha_files_are_read_as_stored_as_nukes_read_does(tmp_path: Path, ext: str) -> None:
    # A PNG (TGA, TIFF marked unassociated) stores straight colour; Nuke's Read brings it in as
    # stored (its premultiplied knob off), so the node bakes these values. OpenImageIO would
    # premultiply them on reading (200 at alpha 0.5 read as 100, 0 at alpha 0): the CLI matted
    # other colours than the node, and a trimap's white at alpha 0.5 read as unknown grey.
    stored = np.array([[[200, 100, 50, 128], [200, 100, 50, 0]], [[255, 255, 255, 128], [10, 20, 30, 255]]], np.uint8)
    _write_raw(tmp_path / f"s.{ext}", stored / 255.0, ["R", "G", "B", "A"], "uint8",
               attributes={"oiio:UnassociatedAlpha": 1})
    image = io.read_image(tmp_path / f"s.{ext}")
    np.testing.assert_allclose(image.pixels, stored / 255.0, atol=1e-6)
    np.testing.assert_allclose(image.rgb(), stored[..., :3] / 255.0, atol=1e-6)
    # An EXR holds premultiplied colour: read as it is, never divided.
    premultiplied = np.array([[[0.2, 0.1, 0.05, 0.5]]], np.float32)
    _write_raw(tmp_path / "p.exr", premultiplied, ["R", "G", "B", "A"], "float")
    np.testing.assert_array_equal(io.read_image(tmp_path / "p.exr").pixels, premultiplied)
    # The hint is OpenImageIO's, never carried onto a result written like the file.
    io.write_image(tmp_path / "out.exr", image.pixels, image.channels, like=image.info)
    assert "oiio:UnassociatedAlpha" not in [m[0] for m in io.read_image(tmp_path / "out.exr").info.metadata]


def test_a_trimap_painted_in_rgb_over_soft_transparency_keeps_its_colour(tmp_path: Path) -> None:
    # Painted white (FG) and mid grey (unknown) with a soft brush over transparency: the red
    # channel is read as painted, as the node's bake reads it, not multiplied by the alpha.
    from core.trimap import normalise_trimap

    red = np.array([[255, 128, 0, 255]], np.uint8)
    alpha = np.array([[255, 255, 0, 64]], np.uint8)
    stored = np.dstack([red, red, red, alpha])
    _write_raw(tmp_path / "t.png", stored / 255.0, ["R", "G", "B", "A"], "uint8",
               attributes={"oiio:UnassociatedAlpha": 1})
    t = io.read_image(tmp_path / "t.png")
    np.testing.assert_array_equal(normalise_trimap(t.pixels, "red", t.channels), [[1.0, 0.5, 0.0, 1.0]])


def test_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "frame.exr"
    dest.write_bytes(b"previous frame")
    calls = []

    def crash(tmp: str, spec: object, pixels: np.ndarray, d: str) -> None:
        calls.append(tmp)
        Path(tmp).write_bytes(b"half a fr")  # a partial write, then the process dies
        raise OSError("disk full")

    monkeypatch.setattr(io, "_write_pixels", crash)
    m = _Matte(np.zeros((2, 2), np.float32), np.zeros((2, 2, 3), np.float32), np.zeros((2, 2, 3), np.float32))
    with pytest.raises(OutputError, match="disk full"):
        io.write_matte_exr(dest, m)
    assert dest.read_bytes() == b"previous frame"
    assert Path(calls[0]).name.startswith(".frame.exr.tmp-") and calls[0].endswith(".exr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.exr"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("ext", [".png", ".exr", ".tif"])
def test_a_full_disk_is_an_error_naming_the_file_and_the_frame_before_stays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ext: str) -> None:
    # The temporary file is made a link to /dev/full, where every write fails with ENOSPC, as on a
    # full disk. libpng reports success then (a truncated PNG renamed into place); the error must
    # come out, naming the file, and the previous frame stay as it was.
    dest = tmp_path / f"frame{ext}"
    dest.write_bytes(b"previous frame")
    real_mkstemp = io.tempfile.mkstemp

    def full_disk_mkstemp(**kwargs: object) -> tuple[int, str]:
        fd, tmp = real_mkstemp(**kwargs)
        os.unlink(tmp)
        os.symlink("/dev/full", tmp)
        return fd, tmp

    monkeypatch.setattr(io.tempfile, "mkstemp", full_disk_mkstemp)
    noise = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    with pytest.raises(OutputError, match=re.escape(f"cannot write {dest}: No space left on device")):
        io.write_image(dest, noise, ["R", "G", "B"])
    assert dest.read_bytes() == b"previous frame"
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name]


def test_writes_work_where_memory_files_are_forbidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object) -> int:
        raise OSError(38, "Function not implemented")  # a sandbox's seccomp filter

    monkeypatch.setattr(os, "memfd_create", forbidden, raising=False)
    pixels = np.random.default_rng(1).random((8, 8, 3), dtype=np.float32)
    io.write_image(tmp_path / "m.exr", pixels, ["R", "G", "B"])
    np.testing.assert_allclose(io.read_image(tmp_path / "m.exr").pixels, pixels, atol=1e-3)


def test_written_file_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        io.write_image(tmp_path / "m.png", np.zeros((2, 2, 3), np.float32), ["R", "G", "B"])
    finally:
        os.umask(old)
    assert (tmp_path / "m.png").stat().st_mode & 0o777 == 0o644


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux says the umask in /proc/self/status")
@pytest.mark.parametrize("mask", [0o022, 0o002, 0o027])
def test_writing_a_file_never_sets_the_process_umask_not_even_for_a_moment(tmp_path: Path, monkeypatch,
                                                                          mask: int) -> None:
    # The mode of a new file was found by setting the umask to 0 and back: meanwhile every file
    # and folder another thread made was world writable, and two threads writing frames at once
    # left it 0 for good (the second read the first one's 0 and put that back).
    old = os.umask(mask)
    set_to: list[int] = []
    umask = os.umask
    monkeypatch.setattr(os, "umask", lambda value: set_to.append(value) or umask(value))
    try:
        io.write_image(tmp_path / "m.png", np.zeros((2, 2, 3), np.float32), ["R", "G", "B"])
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert set_to == []
    assert (tmp_path / "m.png").stat().st_mode & 0o777 == 0o666 & ~mask


def test_the_umask_read_elsewhere_is_put_back_and_never_0_meanwhile(monkeypatch) -> None:
    # Where /proc/self/status says nothing (macOS, Windows) it is read by setting it: to 0o077,
    # never 0, and put back.
    real_open = open

    def no_proc(path, *args, **kwargs):
        if str(path) == "/proc/self/status":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_proc)
    old = os.umask(0o027)
    try:
        set_to: list[int] = []
        umask = os.umask
        monkeypatch.setattr(os, "umask", lambda value: set_to.append(value) or umask(value))
        assert io._umask() == 0o027
        monkeypatch.setattr(os, "umask", umask)
        assert set_to == [0o077, 0o027] and os.umask(0o027) == 0o027
    finally:
        os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and groups")
def test_a_replaced_file_keeps_its_permissions_and_group(tmp_path: Path) -> None:
    # A group-writable frame on a show's share became 0644 on a rerun (--overwrite, or a frame
    # written again), locking the rest of the team out of it.
    pixels = np.zeros((2, 2, 3), np.float32)
    matte = _Matte(np.zeros((2, 2), np.float32), pixels, pixels)
    shared, private = tmp_path / "shared.exr", tmp_path / "private.png"
    for path, mode in ((shared, 0o664), (private, 0o600)):
        path.write_bytes(b"old")
        os.chmod(path, mode)
    group = 4242 if os.geteuid() == 0 else os.getegid()  # root may give any group; others their own
    os.chown(shared, -1, group)
    link = tmp_path / "latest.exr"
    link.symlink_to(shared)
    old = os.umask(0o022)
    try:
        io.write_matte_exr(link, matte)  # through a link: the file it points to keeps its mode
        io.write_image(private, pixels, ["R", "G", "B"])
        io.write_image(tmp_path / "new.png", pixels, ["R", "G", "B"])
    finally:
        os.umask(old)
    assert sorted(io.read_image(shared).channels) == sorted(io.MATTE_CHANNELS)  # replaced ...
    assert (shared.stat().st_mode & 0o7777, shared.stat().st_gid) == (0o664, group)  # ... keeping its mode, group
    assert private.stat().st_mode & 0o7777 == 0o600 and io.read_image(private).shape == (2, 2)
    assert (tmp_path / "new.png").stat().st_mode & 0o7777 == 0o644  # a new file: the umask's mode


def test_a_replaced_file_does_not_keep_set_user_id_or_set_group_id(tmp_path: Path) -> None:
    # Only the rwx bits of a replaced file are kept: a new image is not made set-user-ID.
    path = tmp_path / "flagged.png"
    path.write_bytes(b"old")
    os.chmod(path, 0o6755)
    io.write_image(path, np.zeros((2, 2, 3), np.float32), ["R", "G", "B"])
    assert path.stat().st_mode & 0o7777 == 0o755


def test_refuses_to_overwrite_an_input(tmp_path: Path) -> None:
    plate = tmp_path / "plate.exr"
    _write_raw(plate, np.ones((2, 2, 3), np.float32), ["R", "G", "B"])
    before = plate.read_bytes()
    m = _Matte(np.zeros((2, 2), np.float32), np.zeros((2, 2, 3), np.float32), np.zeros((2, 2, 3), np.float32))
    link = tmp_path / "link.exr"
    link.symlink_to(plate)
    for target in (plate, link, tmp_path / "sub" / ".." / "plate.exr"):
        with pytest.raises(OutputError, match="input"):
            io.write_matte_exr(target, m, protect=[plate])
    with pytest.raises(OutputError, match="input"):
        io.write_image(plate, np.zeros((2, 2, 3), np.float32), ["R", "G", "B"], protect=[str(plate)])
    assert plate.read_bytes() == before


def test_check_writable_dir(tmp_path: Path) -> None:
    new = tmp_path / "a" / "b"
    assert io.check_writable_dir(new) == new and new.is_dir()
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"cannot create the output folder .*file\.txt/sub"):
        io.check_writable_dir(blocker / "sub")
    with pytest.raises(OutputError, match="not a folder"):
        io.check_writable_dir(blocker)


# -- sequences -----------------------------------------------------------------------------------
def test_expand_sequence_tokens_and_ranges(tmp_path: Path) -> None:
    d = tmp_path
    assert io.expand_sequence(d / "plate.exr") == [(None, d / "plate.exr")]
    assert io.expand_sequence(d / "plate.1001.exr") == [(None, d / "plate.1001.exr")]  # digits, no token
    assert io.expand_sequence(d / "p.####.exr", "1001-1003") == [
        (1001, d / "p.1001.exr"), (1002, d / "p.1002.exr"), (1003, d / "p.1003.exr")]
    assert io.expand_sequence(d / "p.%04d.exr", "1-10x4") == [
        (1, d / "p.0001.exr"), (5, d / "p.0005.exr"), (9, d / "p.0009.exr")]
    assert io.expand_sequence(d / "p.@.exr", "1,3,12") == [(1, d / "p.1.exr"), (3, d / "p.3.exr"), (12, d / "p.12.exr")]
    assert io.expand_sequence(d / "p.#.exr", [7]) == [(7, d / "p.7.exr")]
    assert io.expand_sequence(d / "p.##.exr", "5") == [(5, d / "p.05.exr")]
    with pytest.raises(InputError, match="cannot understand the frame range 'abc'"):
        io.expand_sequence(d / "p.####.exr", "abc")


def test_frame_tokens_count_only_in_the_file_name(tmp_path: Path) -> None:
    # '@', '#' and '%' in a folder's name are no frame tokens (was: "cannot understand the
    # sequence pattern" for a single file in such a folder).
    for folder in ("sh#010", "v@2", "100%"):
        d = tmp_path / folder
        assert not io.has_frame_token(d / "plate.exr")
        assert io.expand_sequence(d / "plate.exr") == [(None, d / "plate.exr")]
        assert io.expand_sequence(d / "p.####.exr", "1,1002") == [(1, d / "p.0001.exr"), (1002, d / "p.1002.exr")]
        assert io.frame_path(d / "p.%03d.exr", -2) == d / "p.-02.exr"
    d = tmp_path / "sh#010"
    d.mkdir()
    (d / "p.0001.exr").write_bytes(b"")
    # found on disk too (was: "cannot search the disk ... give the frames with --frames")
    assert io.expand_sequence(d / "p.####.exr") == [(1, d / "p.0001.exr")]


def test_frames_on_disk_are_found_whatever_the_names_hold(tmp_path: Path) -> None:
    # fileseq's findSequenceOnDisk globs: '[v2]' in a folder's name (or '[1]' in a file's) is a
    # character class there, so a plate folder 'plates [v2]' had "no frames found on disk", and
    # 'a*b/' read the frames of 'axb/' too.
    for folder, name in (("plates [v2]", "p.####.exr"), ("a*b", "p.####.exr"), ("plain", "p[1].%04d.exr"),
                         ("q?", "p{a,b}.####.exr")):
        d = tmp_path / folder
        d.mkdir()
        for f in (1, 3):
            (d / name.replace("####", f"{f:04d}").replace("%04d", f"{f:04d}")).write_bytes(b"")
        (d / name.replace("####", "0002").replace("%04d", "0002").replace(".exr", ".png")).write_bytes(b"")
        (d / name.replace("####", "7").replace("%04d", "7")).write_bytes(b"")  # other padding: not frame 7
        assert io.find_frames(d / name) == [1, 2, 3], folder
    (tmp_path / "axb").mkdir()
    (tmp_path / "axb" / "p.0009.exr").write_bytes(b"")
    assert io.find_frames(tmp_path / "a*b" / "p.####.exr") == [1, 2, 3]


def test_frames_on_a_file_system_that_ignores_case_are_found_in_any_case(tmp_path: Path, monkeypatch) -> None:
    # macOS's and Windows' file systems (and their shares) list a name as it was stored and open it in
    # any case: a DI delivery's A001C003.0001.DPX is the file a001c003.0001.dpx there, and
    # --plate a001c003.####.dpx (--frames given) matted it, but without --frames it had "no frames
    # found on disk". Simulated: the files are there in the pattern's case, the listing shows them upper.
    for f in (1, 2, 4):
        (tmp_path / f"a001c003.{f:04d}.dpx").write_bytes(b"")
    (tmp_path / "a001c003.7.dpx").write_bytes(b"")  # other padding: still not frame 7
    real_listdir = os.listdir

    def listdir(path: str = ".") -> list[str]:
        names = real_listdir(path)
        return [n.upper() for n in names] if Path(path) == tmp_path else names

    monkeypatch.setattr(os, "listdir", listdir)
    pattern = tmp_path / "a001c003.####.dpx"
    assert io.find_frames(pattern) == [1, 2, 3, 4]
    assert io.expand_sequence(pattern)[0] == (1, tmp_path / "a001c003.0001.dpx")
    monkeypatch.undo()
    # where case counts (Linux), other files are no frames of it
    other = tmp_path / "other"
    other.mkdir()
    (other / "A001C003.0001.DPX").write_bytes(b"")
    with pytest.raises(InputError) as caught:
        io.find_frames(other / "a001c003.####.dpx")
    assert str(caught.value) == f"no frames found on disk for {other / 'a001c003.####.dpx'}"


def test_frames_listed_decomposed_as_macos_lists_them_are_found(tmp_path: Path, monkeypatch) -> None:
    # macOS (HFS+, and names a Mac wrote to a share) lists 'é' decomposed (e + U+0301) where the
    # typed pattern holds it composed, and opens the file by either: --plate café.####.exr (--frames
    # given) matted it, without --frames "no frames found on disk". Simulated as for case above.
    import unicodedata

    for f in (1, 2):
        (tmp_path / f"café.{f:04d}.exr").write_bytes(b"")
    real_listdir = os.listdir

    def listdir(path: str = ".") -> list[str]:
        names = real_listdir(path)
        return [unicodedata.normalize("NFD", n) for n in names] if Path(path) == tmp_path else names

    monkeypatch.setattr(os, "listdir", listdir)
    assert io.find_frames(tmp_path / "café.####.exr") == [1, 2]
    monkeypatch.undo()
    other = tmp_path / "other"  # Linux: a decomposed name is another file
    other.mkdir()
    (other / unicodedata.normalize("NFD", "café.0001.exr")).write_bytes(b"")
    with pytest.raises(InputError, match="no frames found on disk"):
        io.find_frames(other / "café.####.exr")


def test_expand_sequence_from_disk_includes_gaps(tmp_path: Path) -> None:
    for f in (1001, 1002, 1004):
        (tmp_path / f"p.{f:04d}.exr").write_bytes(b"")
    (tmp_path / "p.12.exr").write_bytes(b"")  # not 4-digit padded: not part of p.####.exr
    got = io.expand_sequence(str(tmp_path / "p.####.exr"))
    assert [f for f, _ in got] == [1001, 1002, 1003, 1004]
    assert got[2] == (1003, tmp_path / "p.1003.exr") and not got[2][1].exists()
    with pytest.raises(InputError, match=r"no frames found on disk for .*q\.####\.exr"):
        io.expand_sequence(str(tmp_path / "q.####.exr"))
    # files of the sequence with other padding only: named, with what is wrong
    with pytest.raises(InputError) as caught:
        io.expand_sequence(str(tmp_path / "p.#####.exr"))
    assert str(caught.value) == (f"no frames found on disk for {tmp_path / 'p.#####.exr'}: {tmp_path / 'p.1001.exr'} "
                                 "and the like have other padding than its frame token '#####' (5 digit(s)): give "
                                 "a token of the files' padding (one '#' per digit)")


def test_a_damaged_png_is_one_error_naming_it_and_nothing_on_stderr(tmp_path: Path, capfd) -> None:
    # libpng prints 'libpng error: ...' to file descriptor 2, which carries only the progress bar:
    # what it says is in the error already.
    whole = (Path(io.__file__).parent / "examples" / "demo" / "image.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 3])
    with pytest.raises(InputError, match=r"cannot read image .*cut\.png \(truncated or damaged\?\).*IDAT"):
        io.read_image(tmp_path / "cut.png")
    assert capfd.readouterr().err == ""
    print("python's own stderr still works", file=sys.stderr)
    assert capfd.readouterr().err == "python's own stderr still works\n"


def _reading_held(monkeypatch) -> tuple[Any, Any]:
    """``(inside, release)``: read_image calls wait, once inside the file's reading, for ``release``
    (each sets ``inside`` on arriving)."""
    import threading

    inside, release = threading.Semaphore(0), threading.Event()
    part_channels = io._part_channels

    def waiting(inp: Any) -> Any:
        inside.release()
        assert release.wait(20)
        return part_channels(inp)

    monkeypatch.setattr(io, "_part_channels", waiting)
    return inside, release


@pytest.mark.parametrize("name", ["plate.exr", "plate.png"])
def test_what_other_threads_write_to_stderr_while_a_file_is_read_still_shows(tmp_path: Path, capfd, monkeypatch,
                                                                               name: str) -> None:
    # A tool reading frames in a thread pool while other threads log to stderr: reading an EXR
    # sent the whole process's stderr to a sink for the read, so their warnings went to the
    # debug log. Now an EXR leaves stderr alone, and a PNG's read (libpng's own lines held)
    # writes the rest back.
    import threading

    io.write_image(tmp_path / name, np.full((4, 5, 3), 0.5, np.float32), ["R", "G", "B"])
    inside, release = _reading_held(monkeypatch)
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(io.read_image(tmp_path / name)))
    reader.start()
    try:
        assert inside.acquire(timeout=20)
        # What a log handler on sys.stderr writes, outside pytest: file descriptor 2
        os.write(2, b"WARNING: frame 1003: plate sanitised\n")
    finally:
        release.set()
        reader.join(20)
    assert got and got[0].pixels.shape == (4, 5, 3)
    assert capfd.readouterr().err == "WARNING: frame 1003: plate sanitised\n"


def test_a_png_is_read_where_python_has_no_stderr(tmp_path: Path, monkeypatch) -> None:
    # pythonw, and GUI hosts embedding Python, set sys.stderr to None: reading a PNG (whose
    # libpng lines are held) failed with "'NoneType' object has no attribute 'flush'".
    io.write_image(tmp_path / "trimap.png", np.full((4, 5, 3), 0.5, np.float32), ["R", "G", "B"])
    monkeypatch.setattr(sys, "stderr", None)
    image = io.read_image(tmp_path / "trimap.png")
    assert image.pixels.shape == (4, 5, 3) and float(image.pixels[0, 0, 0]) == pytest.approx(128 / 255)


def test_exrs_are_read_by_several_threads_at_once(tmp_path: Path, monkeypatch) -> None:
    # A thread pool over frames read one EXR at a time (a process-wide lock held for each read).
    import threading

    for n in (1, 2):
        io.write_image(tmp_path / f"plate.{n}.exr", np.full((4, 5, 3), 0.25 * n, np.float32), ["R", "G", "B"])
    inside, release = _reading_held(monkeypatch)
    got: dict[int, Any] = {}
    readers = [threading.Thread(target=lambda n=n: got.__setitem__(n, io.read_image(tmp_path / f"plate.{n}.exr")))
               for n in (1, 2)]
    for reader in readers:
        reader.start()
    try:
        both = inside.acquire(timeout=20) and inside.acquire(timeout=20)  # both inside their reads at once
    finally:
        release.set()
        for reader in readers:
            reader.join(20)
    assert both
    assert {n: float(image.pixels[0, 0, 0]) for n, image in got.items()} == {1: 0.25, 2: 0.5}


def test_atomic_writes_go_to_a_hidden_temporary_file_beside_the_destination(tmp_path: Path) -> None:
    # Beside it (same folder, so the rename is atomic and never crosses file systems) and named
    # .NAME.tmp-XXXX.EXT, which temp_files finds (stale ones are removed by that name).
    from core.io import atomic_output, temp_files

    dest = tmp_path / "out" / "matte.0001.exr"
    dest.parent.mkdir()
    with atomic_output(dest) as tmp:
        assert Path(tmp).parent == dest.parent and Path(tmp).name.startswith(".matte.0001.exr.tmp-")
        assert Path(tmp).suffix == ".exr" and temp_files(dest) == [Path(tmp)]
        Path(tmp).write_bytes(b"x")
    assert dest.read_bytes() == b"x" and temp_files(dest) == []


def _exr_with_windows(path: Path, width: int, height: int, full: tuple[int, int], channels: int = 4) -> None:
    spec = oiio.ImageSpec(width, height, channels, oiio.HALF)
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, full[0], full[1]
    spec.attribute("compression", "zip")
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    out.write_image(np.zeros((height, width, channels), np.float32))
    out.close()


def _png_claiming(path: Path, width: int, height: int) -> None:
    """A PNG of a few dozen bytes whose header claims ``width x height`` (a decompression bomb's shape)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda p: _exr_with_windows(p, 16, 16, (200_000, 200_000)), "its display window is 200000x200000 pixels"),
        (lambda p: _exr_with_windows(p, 16, 16, (8192, 8192), channels=64), "8192x8192 pixels of 64 channels"),
        (lambda p: _png_claiming(p, 30_000, 30_000), "its data window is 30000x30000 pixels"),
    ],
    ids=["exr-display-window", "exr-channels", "png-bomb"],
)
def test_a_header_claiming_a_huge_image_is_refused_before_allocating(tmp_path: Path, make: Any, expected: str) -> None:
    """A few bytes of header can claim 10^10 pixels (a hostile EXR's windows, a PNG bomb): a clear
    error naming the file before anything that size is allocated, not a MemoryError or the OOM killer."""
    path = tmp_path / ("bomb.png" if "png" in expected or "30000" in expected else "bomb.exr")
    make(path)
    with pytest.raises(InputError, match=re.escape(str(path)) + ".*" + re.escape(expected)):
        io.read_image(path)


def test_a_range_of_millions_of_frames_is_refused_not_planned(tmp_path: Path) -> None:
    """``--frames 1-100000000`` (or 1-1000000: minutes of planning) and a plate folder holding
    frames 1 and 100000000 (the gap planned frame by frame) are refused with the count, at once."""
    with pytest.raises(InputError, match=r"'1-100000000' holds over 10 million frames, more than the 100,000"):
        io.parse_frames("1-100000000")
    with pytest.raises(InputError, match=r"'1-1000000' holds 1,000,000 frames, more than the 100,000 one run renders"):
        io.parse_frames("1-1000000")
    assert len(io.parse_frames("1-100000")) == 100_000
    for frame in (1, 100_000_000):
        (tmp_path / f"plate.{frame:04d}.exr").write_bytes(b"")
    with pytest.raises(InputError, match=r"frames 1 to 100000000, gaps included\) holds 100,000,000 frames"):
        io.expand_sequence(tmp_path / "plate.####.exr")


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="POSIX symbolic links")
def test_a_symbolic_link_output_is_written_through_to_its_target(tmp_path: Path) -> None:
    """A show's 'latest' link to a versioned file: the versioned file gets the new pixels, written
    atomically beside it, and the link stays a link (it was replaced by a plain file)."""
    versions = tmp_path / "versions"
    versions.mkdir()
    target = versions / "matte_v003.png"
    target.write_bytes(b"old")
    latest = tmp_path / "latest.png"
    latest.symlink_to(Path("versions") / "matte_v003.png")
    io.write_image(latest, np.full((2, 3, 3), 0.5, np.float32), ["R", "G", "B"])
    assert latest.is_symlink() and os.readlink(latest) == os.path.join("versions", "matte_v003.png")
    assert io.read_image(target).pixels.shape == (2, 3, 3)
    assert np.allclose(io.read_image(latest).pixels, 128 / 255)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.png", "versions"]  # no temporary left
    assert [p.name for p in versions.iterdir()] == ["matte_v003.png"]
    # A dangling link whose folder exists: the file it names is created, as a shell's '>' would.
    fresh = tmp_path / "fresh.exr"
    fresh.symlink_to(versions / "matte_v004.exr")
    io.write_matte_exr(fresh, _Matte(np.zeros((2, 2), np.float32), np.zeros((2, 2, 3), np.float32),
                                     np.zeros((2, 2, 3), np.float32)))
    assert fresh.is_symlink() and (versions / "matte_v004.exr").is_file()
    # The lock and the leftover temporaries of a link are those of its target.
    assert io.lock_path(latest) == versions / ".matte_v003.png.lock"
    stale = versions / ".matte_v003.png.tmp-abc.png"
    stale.write_bytes(b"")
    assert io.temp_files(latest) == [stale]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/sys is read-only even to root on Linux")
def test_a_symbolic_link_output_that_cannot_be_written_names_the_link_and_its_target(tmp_path: Path) -> None:
    pixels = np.zeros((2, 2, 3), np.float32)
    dangling = tmp_path / "broken.png"
    dangling.symlink_to(tmp_path / "unmounted" / "share" / "v001.png")
    message = (f"cannot write {dangling} (a symbolic link to {tmp_path}/unmounted/share/v001.png): the folder "
               f"{tmp_path}/unmounted/share does not exist (a broken link?)")
    for check in (lambda: io.write_image(dangling, pixels, ["R", "G", "B"]), lambda: io.check_output_folder(dangling)):
        with pytest.raises(OutputError) as caught:
            check()
        assert str(caught.value) == message
    assert not (tmp_path / "unmounted").exists()  # nothing created where a share should be mounted
    read_only = tmp_path / "ro.png"
    read_only.symlink_to("/sys/lbsmatte_v001.png")
    with pytest.raises(OutputError, match=re.escape(f"cannot write {read_only} (a symbolic link to "
                                                    "/sys/lbsmatte_v001.png): the output folder /sys is not writable")):
        io.write_image(read_only, pixels, ["R", "G", "B"])
    loop = tmp_path / "loop.png"
    loop.symlink_to(tmp_path / "loop.png")
    with pytest.raises(OutputError, match=re.escape(f"cannot write {loop}: it is a symbolic link that cannot be "
                                                    "followed (Too many levels of symbolic links)")):
        io.write_image(loop, pixels, ["R", "G", "B"])
    assert loop.is_symlink() and dangling.is_symlink() and read_only.is_symlink()


def test_frame_ranges_keep_the_order_given_and_refuse_subframes() -> None:
    known = {
        "5-1": [5, 4, 3, 2, 1],
        "10-1x2": [10, 8, 6, 4, 2],
        "10-1x-1": [10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
        "1-10x2": [1, 3, 5, 7, 9],
        "3,1,2": [3, 1, 2],
        "1-3,2-5": [1, 2, 3, 4, 5],  # a frame named twice renders once
        "-5--3": [-5, -4, -3],
        "1.0": [1],
        "2-1.5,9-0.1": [2, 9, 8, 7, 6, 5, 4, 3, 1],  # fileseq's FrameSet alone gave 0 for 1
    }
    for text, frames in known.items():
        assert io.parse_frames(text) == frames, text
    for text, shown in (("1.5", "1.5"), ("1-3x0.5", "1.5, 2.5"), ("1-3x1.5", "2.5"),
                        ("1-2x0.25", "1.25, 1.5, 1.75"), ("1-3x0.25", "1.25, 1.5, 1.75, ..."),  # three shown
                        ("1-3,2.5", "2.5"), ("1.5,1-3", "1.5"), ("1.50", "1.5")):  # each part read alone, as typed
        with pytest.raises(InputError) as caught:
            io.parse_frames(text)
        assert str(caught.value) == (f"the frame range {text!r} holds subframes ({shown}): LBSMatte renders whole "
                                     "frames (e.g. 1001-1100, 1-10x2 or 1,3,5)")
    with pytest.raises(InputError, match=r"cannot understand the frame range '1-10x0'"):
        io.parse_frames("1-10x0")
    with pytest.raises(InputError, match=r"cannot understand the frame range '1001-1100#'"):
        io.parse_frames("1001-1100#")  # fileseq drops '#' and '@' ('1@0@0@1' was frame 1001)


def test_a_frame_token_that_is_not_before_the_extension_is_refused_not_taken_literally() -> None:
    # fileseq finds no token in 'matte_####_v1.exr': the name was a single file, so every frame of
    # '--frames 1001' went to a file literally named 'matte_####_v1.exr' (and a plate so named was
    # 'no such file').
    # fileseq cannot parse '%04d' or '$F4' followed by a digit ("mismatched input '1'"): the same message.
    for name in ("matte_####_v1.exr", "sh010_#_comp_v003.exr", "matte_%04d_v1.exr", "matte_$F4_v1.exr",
                 "matte_@@@@_v1.exr"):
        with pytest.raises(InputError) as caught:
            io.has_frame_token(name)
        token = re.search(r"#+|@+|%04d|\$F4", name).group(0)
        assert str(caught.value) == (f"{name}: the frame token {token!r} must come right before the extension "
                                     "(plate.####.exr, plate_####.exr, plate.####.beauty.exr), or the frames would "
                                     "all be one file of that literal name")
    assert io.frame_path("matte_####.exr", 7) == Path("matte_0007.exr")
    assert io.frame_path("matte.####.beauty.exr", 7) == Path("matte.0007.beauty.exr")
    # An '@' elsewhere in the name keeps fileseq from finding a token that is in its place: said so,
    # not that the token is misplaced.
    # The name suggested is the files' own without the '@' (sh010@v2 was told 'plate_2x'), and is read.
    for name, token, renamed in (("plate@2x.####.exr", "####", "plate_2x.####.exr"),
                                 ("sh010@v2.%04d.exr", "%04d", "sh010_v2.%04d.exr")):
        with pytest.raises(InputError) as caught:
            io.has_frame_token(name)
        assert str(caught.value) == (f"{name}: its file name holds '@' besides the frame token {token!r}; '@' is a "
                                     "frame token too (plate.@@@@.exr), so the name cannot be read: name the files "
                                     f"without it ({renamed})")
        assert io.frame_path(renamed, 7) == Path(renamed.replace(token, "0007"))
    for single in ("plate@2x.png", "100%.exr", "plate.1001.exr"):  # no token: single files as ever
        assert not io.has_frame_token(single)


def test_digits_right_before_the_frame_token_are_refused_not_taken_literally() -> None:
    # fileseq reads 'plate2####.exr' as 'plate' with frame 2 and no frame to fill in: the name was
    # one file, so '--frames 1001' wrote a file literally named 'plate2####.exr' (Nuke fills the
    # token: plate21001.exr), and on disk plate20001.exr was frame 20001. 'p.1001-1100#.exr'
    # (fileseq's own range-in-name) the same.
    # With a '-' between ('plate-v2-####.exr', 'sh-010-%04d.exr') fileseq reads '2-' as a range and
    # cannot parse the name: that was said to be a token not right before the extension.
    # The names suggested are the files' own with a '.' or '_' before the token ('plate-v2-####.exr'
    # was told 'plate2.####.exr', another shot's name), and are read as sequences.
    for name, token, stem, after in (("plate2####.exr", "####", "plate2", ".exr"),
                                     ("sh010_v2%04d.exr", "%04d", "sh010_v2", ".exr"), ("v2$F4.exr", "$F4", "v2", ".exr"),
                                     ("v2@@@@.exr", "@@@@", "v2", ".exr"), ("plate-v2-####.exr", "####", "plate-v2", ".exr"),
                                     ("sh-010-%04d.exr", "%04d", "sh-010", ".exr"),
                                     ("sh-010-####.beauty.exr", "####", "sh-010", ".beauty.exr")):
        for call, args in ((io.frame_path, (name, 7)), (io.expand_sequence, (name, "1-3")),
                           (io.has_frame_token, (name,))):
            with pytest.raises(InputError) as caught:
                call(*args)
            assert str(caught.value) == (f"{name}: the digits right before the frame token {token!r} are read as "
                                         "frame numbers (as in fileseq's plate.1-100#.exr), not as part of the "
                                         f"name: name the files with a '.' or '_' before the token ({stem}.{token}{after} "
                                         f"or {stem}_{token}{after}); Nuke reads them as they are, lbsmatte reads "
                                         "sequences as fileseq does")
        for renamed, sep in ((f"{stem}.{token}{after}", "."), (f"{stem}_{token}{after}", "_")):
            assert io.frame_path(renamed, 7) == Path(f"{stem}{sep}0007{after}")
    with pytest.raises(InputError) as caught:  # fileseq's range in the name: the range is the frames
        io.has_frame_token("p.1001-1100#.exr")
    assert str(caught.value).endswith("not as part of the name: name the sequence p.#.exr and give the frames with "
                                      "--frames 1001-1100")
    assert io.frame_path("plate2.####.exr", 7) == Path("plate2.0007.exr")
    assert io.frame_path("plate2_####.exr", 7) == Path("plate2_0007.exr")


def test_a_file_name_with_two_frame_tokens_is_refused() -> None:
    # 'm.####.####.exr' was read by fileseq as frame and subframe: frame 7 became m.0007.0000.exr,
    # where Nuke's Read and Write fill both tokens (m.0007.0007.exr).
    for name, tokens in (("m.####.####.exr", "####.####"), ("m.%04d.%04d.exr", "%04d.%04d"), ("m.@.@.exr", "@.@"),
                         ("m.####.$F4.exr", "####.$F4")):
        for call, args in ((io.frame_path, (name, 7)), (io.expand_sequence, (name, "1-3")),
                           (io.has_frame_token, (name,))):
            with pytest.raises(InputError) as caught:
                call(*args)
            assert str(caught.value) == (f"{name}: its file name holds more than one frame token ({tokens!r}); Nuke "
                                         "fills each with the frame, other tools read the second as a subframe: name "
                                         "the files with one frame token (plate.####.exr)")
    assert io.frame_path("shot_####/m.####.exr", 7) == Path("shot_####/m.0007.exr")  # a folder's '#' stays literal
    assert io.frame_path("m.####@.exr", 7) == Path("m.00007.exr")  # one token of five digits, as fileseq reads it
    # one token of each kind is one token, not refused as two
    for single, path in (("m.%04d.exr", "m.0007.exr"), ("m.$F4.exr", "m.0007.exr"), ("m.@@.exr", "m.07.exr")):
        assert io.has_frame_token(single) and io.frame_path(single, 7) == Path(path)


def test_only_the_exif_orientations_that_turn_a_quarter_turn_count_as_turned(tmp_path: Path) -> None:
    # 5 to 8 swap width and height in a photo viewer (transposed, turned 90°, transversed, 270°);
    # 1 to 4 keep them (mirrored or turned 180°): only the first kind explains a plate/trimap size mismatch.
    for orientation in range(1, 9):
        path = tmp_path / f"o{orientation}.exr"
        _write_raw(path, np.zeros((2, 3, 3), np.float32), ["R", "G", "B"], attributes={"Orientation": orientation})
        assert io.read_image(path).info.turned == (orientation >= 5), orientation


@pytest.mark.parametrize("errno_, text", [(28, "No space left on device"), (122, "Disk quota exceeded")])
def test_a_full_disk_while_locking_names_the_lock_and_leaves_no_lock_file(tmp_path: Path, monkeypatch, errno_,
                                                                         text) -> None:
    # A full output disk (or a show's quota): the lock file is made (an empty file still fits) but
    # its owner record is refused. Each frame of 'matte' failed so and left its empty .NAME.lock in
    # the user's output folder, a thousand of them for a thousand-frame shot; evaluate --json one too.
    out = tmp_path / "m.1001.exr"
    lock = io.lock_path(out)
    real_write = os.write

    def full(fd, data):
        if lock.exists() and os.path.samestat(os.fstat(fd), os.stat(lock)):
            raise OSError(errno_, text)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OutputError, match=re.escape(f"cannot lock {out} ({lock}): {text}")):
        with io.lock_output(out):
            pass
    assert sorted(os.listdir(tmp_path)) == []
    monkeypatch.setattr(os, "write", real_write)
    with io.lock_output(out) as held:  # room again: locked as ever
        assert held == lock and lock.read_text().startswith(f"pid {os.getpid()} on ")
    assert not lock.exists()


@pytest.mark.skipif(os.name == "nt", reason="flock: POSIX; Windows removes a lock file when its run lets go")
def test_a_lock_file_another_users_killed_run_left_is_taken_over(tmp_path: Path, monkeypatch) -> None:
    # A shared output folder (a show's share, the Nuke cache): a run of the farm's user killed with
    # SIGKILL leaves .NAME.lock with that user's umask's mode (0644). Another user may not open it
    # for writing, and the frame failed for everyone else with 'cannot lock ...: Permission denied',
    # run after run, though no run held it. Whether this user may write it is what os.open is made
    # to refuse here (root may write any file).
    import fcntl

    out = tmp_path / "m.1001.exr"
    lock = io.lock_path(out)
    theirs = b"pid 4242 on farm07 since 2026-01-01 00:00:00"
    real_open = os.open

    def as_another_user(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR) and os.fspath(path) == os.fspath(lock) and lock.is_file() \
                and lock.read_bytes() == theirs:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", as_another_user)
    lock.write_bytes(theirs)
    with io.lock_output(out) as held:  # no run holds it: removed, made again and held
        assert held == lock and lock.read_text().startswith(f"pid {os.getpid()} on ")
    assert not lock.exists()

    lock.write_bytes(theirs)  # their run is writing the frame now: refused as any run's would be
    holder = real_open(lock, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(OutputError, match=re.escape(f"{out} is being written by another lbsmatte run "
                                                        f"({theirs.decode()}; lock {lock})")):
            with io.lock_output(out):
                pass
        assert lock.read_bytes() == theirs
    finally:
        os.close(holder)

    # A folder with the sticky bit: only its owner may remove it; the message says whose it is to remove.
    real_unlink = os.unlink
    monkeypatch.setattr(os, "unlink", lambda path, *a, **k: (_ for _ in ()).throw(PermissionError(1, "no"))
                        if os.fspath(path) == os.fspath(lock) else real_unlink(path, *a, **k))
    with pytest.raises(OutputError, match=re.escape(f"cannot lock {out} ({lock}): Permission denied; it is another "
                                                    "user's lock file, left by a run that was killed (no run holds "
                                                    "it), which this user may not remove here: ask its owner to")):
        with io.lock_output(out):
            pass


def test_a_stale_temporary_that_cannot_be_removed_does_not_fail_the_frame(tmp_path: Path, monkeypatch,
                                                                          caplog) -> None:
    # Another user's run killed with SIGKILL left .NAME.tmp-XXXX.EXT in a folder with the sticky bit
    # (only its owner may remove it): the frame failed with 'cannot remove the stale temporary file',
    # run after run, though it is written through a temporary file of its own.
    out = tmp_path / "m.1001.png"
    theirs, ours = tmp_path / ".m.1001.png.tmp-farm07.png", tmp_path / ".m.1001.png.tmp-ours.png"
    theirs.write_bytes(b"half a frame")
    ours.write_bytes(b"half a frame")
    real_unlink = Path.unlink

    def sticky(self, *args, **kwargs):
        if self == theirs:
            raise PermissionError(1, "Operation not permitted", str(self))
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", sticky)
    with caplog.at_level("WARNING", logger="core.io"):
        assert io.remove_stale_temps([out]) == [ours]
    assert theirs.is_file() and not ours.exists()
    assert f"cannot remove {theirs}, left by an earlier run that was killed (Operation not permitted): it stays" \
        in caplog.text
    io.write_image(out, np.full((2, 2, 3), 0.5, np.float32), ["R", "G", "B"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [theirs.name, out.name]


def test_a_runs_leftover_temporaries_are_found_listing_each_folder_once(tmp_path: Path, monkeypatch) -> None:
    # A long shot's folder was listed twice a frame to find a killed run's temporaries: each frame's
    # time grew with the files written (120 ms a frame at 8000 files). One listing a folder a run.
    outs = [tmp_path / f"m.{f}.exr" for f in range(1, 201)]
    for out in outs[::2]:
        out.write_bytes(b"a frame")
    stale = tmp_path / ".m.150.exr.tmp-k1ll.exr"
    other = tmp_path / ".n.150.exr.tmp-k1ll.exr"
    for leftover in (stale, other):
        leftover.write_bytes(b"half a frame")
    listings = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": listings.append(path) or real(path))
    listed: dict = {}
    removed = [tmp for out in outs for tmp in io.remove_stale_temps([out], listed)]
    assert removed == [stale] and not stale.exists() and other.is_file()
    assert len(listings) == 1
    assert io.remove_stale_temps([tmp_path / "n.150.exr"]) == [other]  # without a run's listing: listed now


@pytest.mark.parametrize("width", [1, 4, 5, 7, 6])
def test_a_10_bit_rgba_dpx_reads_its_last_columns_alpha(tmp_path: Path, width: int) -> None:
    # A row of 4·W 10-bit samples with W % 3 == 1 leaves one sample in its last 32-bit word, and
    # OpenImageIO's reader gave 0 for it: an RGBA DPX's last column read as alpha 0 (an opaque
    # trimap's alpha then varied, and --trimap-channel auto took it for the trimap). The file holds it.
    rng = np.random.default_rng(width)
    pixels = (np.round(rng.uniform(0.5, 1.0, (5, width, 4)) * 1023) / 1023).astype(np.float32)  # 10-bit codes
    io.write_image(tmp_path / "rgba.dpx", pixels, ["R", "G", "B", "A"], unassociated_alpha=True)
    got = io.read_image(tmp_path / "rgba.dpx")
    assert got.info.bit_depth == 10 and got.channels == ["R", "G", "B", "A"]
    np.testing.assert_allclose(got.pixels, pixels, atol=1 / 1023 / 2)


def test_a_path_of_bytes_that_are_not_utf8_is_named_on_read_and_write(tmp_path: Path) -> None:
    """OpenImageIO takes UTF-8 paths only: a file named on a Latin-1 system (b'cam\\xe9ra.exr')
    raised its TypeError ("incompatible function arguments"), naming neither file nor fix."""
    good = tmp_path / "plate.exr"
    io.write_image(good, np.full((2, 3, 3), 0.25, np.float32), ["R", "G", "B"])
    latin1 = os.fsdecode(os.fsencode(str(tmp_path)) + b"/cam\xe9ra.exr")
    os.link(good, latin1)
    with pytest.raises(InputError, match=re.escape(f"{tmp_path}/cam\\xe9ra.exr: the path holds bytes that are not "
                                                   "UTF-8 text, which OpenImageIO cannot open: rename")):
        io.read_image(latin1)
    out = os.fsdecode(os.fsencode(str(tmp_path)) + b"/out\xe9.exr")
    with pytest.raises(OutputError, match=re.escape(f"cannot write {tmp_path}/out\\xe9.exr: the path holds bytes")):
        io.write_image(out, np.zeros((2, 3, 3), np.float32), ["R", "G", "B"])
    assert sorted(os.listdir(os.fsencode(str(tmp_path)))) == sorted([b"cam\xe9ra.exr", b"plate.exr"])  # nothing left behind


def _latin1_locale() -> str | None:
    """A Latin-1 locale this machine has (``de_DE``, ``en_US.iso88591``), or None."""
    import subprocess

    try:
        names = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    latin1 = re.compile(r"(de_DE|en_US|en_GB|fr_FR|es_ES|it_IT|pt_BR|nl_NL)(\.iso88591)?", re.IGNORECASE)
    return next((n for n in names if latin1.fullmatch(n.replace("-", ""))), None)


#: Environments whose file system encoding is not UTF-8: LANG=C with Python's UTF-8 mode and
#: locale coercion off (ASCII; also how an embedding application may run Python), and a Latin-1
#: locale (a farm's LANG=de_DE, CentOS's LANG=en_US) where the machine has one.
NON_UTF8_LOCALES = [
    pytest.param({"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}, "ascii", id="C"),
    pytest.param({"LC_ALL": _latin1_locale() or "", "PYTHONUTF8": "0"}, "iso8859-1", id="latin-1",
                 marks=pytest.mark.skipif(_latin1_locale() is None, reason="no Latin-1 locale on this machine")),
]


@pytest.mark.skipif(os.name == "nt", reason="Windows' file system encoding is always UTF-8")
@pytest.mark.parametrize(("env", "encoding"), NON_UTF8_LOCALES)
def test_utf8_file_names_are_read_and_written_under_a_locale_that_is_not_utf8(
        tmp_path: Path, env: dict[str, str], encoding: str) -> None:
    """Python reads a path's bytes in the locale's encoding, OpenImageIO as UTF-8: under a Latin-1
    locale ``plate é.png`` was 'plate Ã©.png' to Python and "Could not open file" to OpenImageIO,
    under LANG=C (UTF-8 mode off) it was refused as "not UTF-8 text" and then a TypeError on write."""
    import subprocess

    folder = tmp_path / "shot é 日本 🎬"
    folder.mkdir()
    io.write_image(folder / "plate é.png", np.full((2, 3, 3), 0.5, np.float32), ["R", "G", "B"])
    script = ("import sys; from core import io; src, dst = sys.argv[1:]; "
              "print(sys.getfilesystemencoding()); img = io.read_image(src); "
              "io.write_image(dst, img.pixels, img.channels, like=img.info)")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script, str(folder / "plate é.png"), str(folder / "out ü.exr")],
                          env=dict(os.environ, PYTHONPATH=str(root), **env), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    assert done.stdout.decode().split() == [encoding]
    assert sorted(os.listdir(folder)) == ["out ü.exr", "plate é.png"]  # the names as given, no other bytes
    np.testing.assert_allclose(io.read_image(folder / "out ü.exr").pixels, io.read_image(folder / "plate é.png").pixels,
                               atol=1e-3)


@pytest.mark.parametrize(("pixel_type", "bits"), [("uint10", 10), ("uint12", 12)])
def test_a_dpx_of_10_or_12_bits_rounds_to_the_nearest_code_value(tmp_path: Path, pixel_type: str, bits: int) -> None:
    # OIIO rounds to 16 bits and keeps the top bits: 10-bit 1.94 (an alpha of 0.0019) was written as
    # 1 and 1021.4 as 1022, a code off in the matte's soft edge; every value is now its nearest code.
    top = 2**bits - 1
    codes = np.array([0.0, 0.4, 0.6, 1.4, 1.94, 300.5001, top / 2, top - 1.6, top - 1.4, top - 0.4, top], np.float32)
    px = np.repeat((codes / top)[None, :, None], 4, axis=2)
    io.write_image(tmp_path / "m.dpx", px, ["R", "G", "B", "A"], pixel_type=pixel_type)
    got = io.read_image(tmp_path / "m.dpx")
    assert got.info.bit_depth == bits
    np.testing.assert_array_equal(np.round(got.pixels * top), np.repeat(np.round(codes)[None, :, None], 4, axis=2))


def test_output_pixel_type_is_the_formats_unless_an_integer_plate_has_more_bits() -> None:
    def plate(bits: int, is_float: bool = False) -> io.ImageInfo:
        return io.ImageInfo(path="p", format_name="x", x=0, y=0, width=1, height=1, full_x=0, full_y=0,
                            full_width=1, full_height=1, channels=["R"], metadata=[], is_float=is_float,
                            bit_depth=bits, pixel_type="")
    assert [io.output_pixel_type("o.png", plate(b)) for b in (8, 10, 16, 32)] == ["uint8", "uint16", "uint16", "uint16"]
    assert [io.output_pixel_type("o.DPX", plate(b)) for b in (8, 10, 12, 16)] == ["uint10", "uint10", "uint12", "uint16"]
    assert io.output_pixel_type("o.tif", plate(8)) == "uint16"
    assert io.output_pixel_type("o.png", plate(32, is_float=True)) == "uint8"  # a float plate: the format's
    assert io.output_pixel_type("o.exr", plate(16)) == "half"
    assert io.output_pixel_type("o.png") == "uint8"


def test_frame_range_limits_count_every_frame_and_an_empty_range_is_refused() -> None:
    # A farm template that fills in nothing ('--frames ""') rendered no frame and exited 0.
    for text in ("", " ", ","):
        with pytest.raises(InputError, match=re.escape(f"the frame range {text!r} holds no frames")):
            io.parse_frames(text)
    # fileseq's own count loses the subframe of '1-100000,2.5'; the limit counts it
    with pytest.raises(InputError, match="holds 100,001 frames, more than the 100,000 one run renders"):
        io.parse_frames("1-100000,2.5")


def test_frames_on_disk_past_the_limit_by_one_are_refused_and_negative_frames_found(tmp_path: Path) -> None:
    pattern = str(tmp_path / "plate.####.exr")
    for frame in (-5, -4, 0, 2):
        io.frame_path(pattern, frame).touch()
    assert io.frames_on_disk(pattern) == [-5, -4, 0, 2]
    assert io.find_frames(pattern) == list(range(-5, 3))
    far = str(tmp_path / "far.####.exr")
    io.frame_path(far, 1).touch()
    io.frame_path(far, io.MAX_FRAMES).touch()
    assert len(io.find_frames(far)) == io.MAX_FRAMES  # first to last: exactly the limit
    io.frame_path(far, io.MAX_FRAMES + 1).touch()
    with pytest.raises(InputError, match="holds 100,001 frames"):
        io.find_frames(far)


@pytest.mark.parametrize(("environ", "fitted"), [
    ({}, True),
    ({"OPENIMAGEIO_THREADS": "3"}, False),               # the job's own count stands
    ({"CUE_THREADS": "3"}, False),
    ({"OPENIMAGEIO_THREADS": " 3,2"}, False),            # OIIO reads the number it starts with
    ({"OPENIMAGEIO_THREADS": "0"}, True),                # no count: OIIO ran one thread per core of the node
    ({"OPENIMAGEIO_THREADS": "abc"}, True),
    ({"OPENIMAGEIO_THREADS": "", "CUE_THREADS": "3"}, True),  # set, even empty, it hides CUE_THREADS from OIIO
])
def test_openimageios_threads_are_held_to_the_jobs_cpus_unless_the_job_gave_it_a_count(monkeypatch, environ,
                                                                                        fitted) -> None:
    # OPENIMAGEIO_THREADS=0 or abc (OIIO then counts the node's cores) was taken for the job's own
    # count and left OpenEXR's compression at one thread per core of a 64-core node on a job of 8.
    for name in io.OIIO_THREAD_ENVS:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    given = {name: oiio.get_int_attribute(name) for name in ("threads", "exr_threads")}
    try:
        oiio.attribute("threads", 4)      # as OIIO counts a node of 4 cores
        oiio.attribute("exr_threads", 0)  # 0: one per core
        restore = io.fit_threads(2)
        got = (oiio.get_int_attribute("threads"), oiio.get_int_attribute("exr_threads"))
        assert got == ((2, 2) if fitted else (4, 0)), got
        assert (restore is not None) == fitted
        if restore is not None:
            restore()
        assert (oiio.get_int_attribute("threads"), oiio.get_int_attribute("exr_threads")) == (4, 0)
    finally:
        for name, value in given.items():
            oiio.attribute(name, value)
