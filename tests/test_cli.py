"""core.cli: the ``lbsmatte`` command line end to end, on real files, with tiny seeded networks.

The networks of ``small_bundle`` are untrained; ``LBSMATTE_ALLOW_UNTRAINED=1`` lets the pipeline
run them, so these tests check the plumbing and the known-region guarantees, not matte quality.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from core import cli
from core.io import MATTE_CHANNELS, read_image

H, W = 40, 56


def _write(path: Path, pixels: np.ndarray, channels: list[str], fmt: str, attributes: dict | None = None) -> None:
    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, oiio.TypeDesc(fmt))
    spec.channelnames = tuple(channels)
    for k, v in (attributes or {}).items():
        spec.attribute(k, v)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    assert out.write_image(np.ascontiguousarray(pixels, dtype=np.float32))
    out.close()


def _plate(frame: int) -> np.ndarray:
    """Scene-linear plate: a bright (> 1) orange FG disc over a blue-ish gradient BG."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    bg = np.dstack([0.05 + 0.002 * xx, 0.1 + 0.003 * yy, np.full_like(xx, 0.4)])
    disc = ((yy - H / 2) ** 2 + (xx - W / 2 - frame) ** 2) < 12**2
    fg = np.array([2.5, 0.6, 0.1], np.float32)
    return np.where(disc[..., None], fg, bg).astype(np.float32)


def _trimap(frame: int) -> np.ndarray:
    """0 BG, 1 FG inside radius 9, 128/255 in the band between radius 9 and 15."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    r2 = (yy - H / 2) ** 2 + (xx - W / 2 - frame) ** 2
    t = np.zeros((H, W), np.float32)
    t[r2 < 15**2] = 128 / 255
    t[r2 < 9**2] = 1.0
    return t


@pytest.fixture
def shot(tmp_path: Path) -> Path:
    """plate.1001-1003.exr (half, with metadata) and trimap.1001-1003.png (8-bit grey)."""
    for f in (1001, 1002, 1003):
        _write(tmp_path / f"plate.{f}.exr", _plate(f - 1001), ["R", "G", "B"], "half",
               {"lbs:shot": "sh010", "compression": "piz"})
        _write(tmp_path / f"trimap.{f}.png", _trimap(f - 1001)[..., None], ["Y"], "uint8")
    return tmp_path


@pytest.fixture
def untrained_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")


def _matte(shot: Path, bundle, *extra: str, out: str = "out/matte.####.exr") -> int:
    return cli.main([
        "matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
        "--out", str(shot / out), "--weights", str(bundle.path), "--device", "cpu", "--no-progress", *extra,
    ])


def _half(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16).astype(np.float32)


def test_matte_sequence_end_to_end(shot: Path, small_bundle, untrained_ok, capsys) -> None:
    assert _matte(shot, small_bundle) == 0
    stdout = capsys.readouterr().out
    assert [line for line in stdout.splitlines() if line.startswith("LBSMATTE PROGRESS")] == [
        "LBSMATTE PROGRESS 1001 1/3", "LBSMATTE PROGRESS 1002 2/3", "LBSMATTE PROGRESS 1003 3/3"]
    assert "ERROR" not in stdout
    for f in (1001, 1002, 1003):
        img = read_image(shot / "out" / f"matte.{f}.exr")
        assert sorted(img.channels) == sorted(MATTE_CHANNELS)
        assert img.info.pixel_type == "half" and img.info.attribute("compression") == "zip"
        assert img.info.attribute("lbs:shot") == "sh010"
        plate = read_image(shot / f"plate.{f}.exr").rgb()
        t = _trimap(f - 1001)
        fg_known, bg_known = t == 1.0, t == 0.0
        alpha = img.channel("A")
        fg = np.dstack([img.channel(f"fg.{c}") for c in "RGB"])
        bg = np.dstack([img.channel(f"bg.{c}") for c in "RGB"])
        rgb = np.dstack([img.channel(c) for c in "RGB"])
        assert (alpha[fg_known] == 1.0).all() and (alpha[bg_known] == 0.0).all()
        assert ((alpha >= 0) & (alpha <= 1)).all()
        # Known regions: exactly the plate (it was half already), 2.5 included.
        np.testing.assert_array_equal(fg[fg_known], plate[fg_known])
        np.testing.assert_array_equal(bg[bg_known], plate[bg_known])
        np.testing.assert_array_equal(rgb[fg_known], plate[fg_known])
        np.testing.assert_array_equal(rgb[bg_known], 0.0)
        # Premultiplied: RGB = FG·alpha, to half precision.
        np.testing.assert_allclose(rgb, _half(fg * alpha[..., None]), rtol=2e-3, atol=1e-3)
        assert np.isfinite(img.pixels).all()


def test_png_output_is_srgb_rgba(tmp_path: Path, small_bundle, untrained_ok, capsys) -> None:
    # A PNG plate is sRGB (auto); the PNG result holds FG (straight) and alpha, sRGB-encoded.
    plate = np.clip(_plate(0), 0, 1)
    _write(tmp_path / "plate.png", plate, ["R", "G", "B"], "uint8")
    trimap = _trimap(0)
    _write(tmp_path / "trimap.png", np.dstack([np.zeros((H, W, 3)), trimap]), ["R", "G", "B", "A"], "uint8")
    code = cli.main(["matte", "--plate", str(tmp_path / "plate.png"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "out.png"), "--weights", str(small_bundle.path), "--no-progress"])
    assert code == 0
    assert "LBSMATTE PROGRESS - 1/1" in capsys.readouterr().out
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)
    inp = oiio.ImageInput.open(str(tmp_path / "out.png"), config)
    stored = inp.read_image(oiio.UINT8)
    inp.close()
    assert stored.shape == (H, W, 4)
    plate8 = np.round(plate * 255).astype(np.uint8)
    fg_known, bg_known = trimap == 1.0, trimap == 0.0
    np.testing.assert_array_equal(stored[..., 3][fg_known], 255)
    np.testing.assert_array_equal(stored[..., 3][bg_known], 0)
    # PNG stores straight colour: the default (premultiplied, marked associated) and --unpremultiply
    # must store the same FG where alpha is not ~0, not FG/alpha nor FG·alpha.
    code = cli.main(["matte", "--plate", str(tmp_path / "plate.png"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "straight.png"), "--weights", str(small_bundle.path), "--no-progress",
                     "--unpremultiply"])
    assert code == 0
    inp = oiio.ImageInput.open(str(tmp_path / "straight.png"), config)
    straight = inp.read_image(oiio.UINT8)
    inp.close()
    np.testing.assert_array_equal(straight[..., 3], stored[..., 3])
    seen = (stored[..., 3] >= 2) & (stored[..., 3] < 255)  # untrained networks: a faint band
    assert seen.any()
    diff = np.abs(straight[..., :3].astype(int) - stored[..., :3].astype(int))[seen]
    assert diff.max() <= 2
    np.testing.assert_array_equal(stored[..., :3][fg_known], plate8[fg_known])
    # --help said the default writes FG·alpha in RGB: a PNG holds FG, which Nuke reads straight.
    matte = next(a for a in cli.build_parser("matte")._actions if a.dest == "command").choices["matte"]
    assert "a PNG OUT holds FG, straight, either way" in next(a.help for a in matte._actions if a.dest == "unpremultiply")


def test_missing_frame_errors_and_the_others_render(shot: Path, small_bundle, untrained_ok, capsys) -> None:
    (shot / "trimap.1002.png").unlink()
    assert _matte(shot, small_bundle, "--frames", "1001-1004") == 1
    stdout = capsys.readouterr().out
    errors = [line for line in stdout.splitlines() if line.startswith("ERROR: frame")]
    assert len(errors) == 2
    assert errors[0].startswith("ERROR: frame 1002: file not found:") and "trimap.1002.png" in errors[0]
    assert errors[1].startswith("ERROR: frame 1004: file not found:") and "plate.1004.exr" in errors[1]
    # one progress line after every frame, failed ones included, in order: what a farm's bar counts
    assert [line for line in stdout.splitlines() if line.startswith("LBSMATTE PROGRESS")] == [
        f"LBSMATTE PROGRESS {frame} {i}/4" for i, frame in enumerate(range(1001, 1005), 1)]
    assert "ERROR: 2 of 4 frame(s) failed: 1002, 1004" in stdout
    assert sorted(p.name for p in (shot / "out").iterdir()) == ["matte.1001.exr", "matte.1003.exr"]


def test_gap_in_plate_sequence_on_disk_is_a_failed_frame(shot: Path, small_bundle, untrained_ok, capsys) -> None:
    (shot / "plate.1002.exr").unlink()
    assert _matte(shot, small_bundle) == 1
    stdout = capsys.readouterr().out
    assert "ERROR: frame 1002: file not found:" in stdout and "plate.1002.exr" in stdout
    assert sorted(p.name for p in (shot / "out").iterdir()) == ["matte.1001.exr", "matte.1003.exr"]


def test_trimaps_on_twos_fail_naming_the_trimap_frames_on_disk_unless_held(shot: Path, small_bundle, untrained_ok,
                                                                            capsys) -> None:
    # Roto delivered on twos: frame 1002 has no trimap. It failed with a bare "file not found", never
    # saying what the trimap sequence holds nor how to hold the earlier one.
    (shot / "trimap.1002.png").unlink()
    assert _matte(shot, small_bundle) == 1
    stdout = capsys.readouterr().out
    assert (f"ERROR: frame 1002: file not found: {shot / 'trimap.1002.png'} (the trimap sequence "
            f"{shot / 'trimap.####.png'} has frame(s) 1001,1003 on disk; --trimap-hold reads the nearest earlier "
            "one for a frame that has none)\n") in stdout
    # --trimap-hold: 1002 reads trimap 1001, and the run says so on that frame's line.
    assert _matte(shot, small_bundle, "--trimap-hold", out="held/matte.####.exr") == 0
    lines = capsys.readouterr().out.splitlines()
    wrote = [line for line in lines if line.startswith("LBSMATTE WROTE ")]  # a line per file, before its PROGRESS
    assert wrote == [f"LBSMATTE WROTE {f} {shot / 'held' / f'matte.{f}.exr'}" for f in (1001, 1002, 1003)]
    lines = [line for line in lines if line not in wrote]
    assert lines[:4] == ["LBSMATTE PROGRESS 1001 1/3", f"frame 1002: trimap frame 1001 held ({shot / 'trimap.1001.png'})",
                         "LBSMATTE PROGRESS 1002 2/3", "LBSMATTE PROGRESS 1003 3/3"]
    alpha = read_image(shot / "held" / "matte.1002.exr").pixels[..., 3]
    held = _trimap(0)  # trimap 1001's known regions, not 1002's (its disc is one pixel to the right)
    assert (alpha[held == 1] == 1).all() and (alpha[held == 0] == 0).all()
    assert (_trimap(1)[held == 0] > 0).any()  # 1002's own band reaches where 1001's is background


def test_a_trimap_frame_missing_says_what_the_sequence_holds(tmp_path: Path) -> None:
    # The frame each plate frame gets is said where it is not its own, whatever the sequence holds.
    plate, out = str(tmp_path / "plate.####.exr"), str(tmp_path / "out" / "m.####.exr")
    for f in (1, 2, 3):  # roto numbered from 1 for a plate from 1001
        _write(tmp_path / f"late.{f:04d}.png", _trimap(0)[..., None], ["Y"], "uint8")
        _write(tmp_path / f"nopad.{f}.png", _trimap(0)[..., None], ["Y"], "uint8")
    jobs = cli.plan_frames(plate, str(tmp_path / "late.####.png"), out, "1001-1002")
    assert [job.trimap_missing for job in jobs] == [
        f"file not found: {tmp_path / f'late.{f}.png'} (the trimap sequence {tmp_path / 'late.####.png'} has frame(s) "
        "1-3 on disk; --trimap-hold reads the nearest earlier one for a frame that has none)" for f in (1001, 1002)]
    # Held, frame by frame (never silently): the last frame on disk before each.
    jobs = cli.plan_frames(plate, str(tmp_path / "late.####.png"), out, "0-4", hold_trimap=True)
    assert [(job.frame, job.trimap_held, job.trimap.name) for job in jobs] == [
        (0, None, "late.0000.png"), (1, None, "late.0001.png"), (2, None, "late.0002.png"), (3, None, "late.0003.png"),
        (4, 3, "late.0003.png")]
    assert jobs[0].trimap_missing == (f"file not found: {tmp_path / 'late.0000.png'} (the trimap sequence "
                                      f"{tmp_path / 'late.####.png'} has frame(s) 1-3 on disk; none at or before "
                                      "frame 0 for --trimap-hold to hold)")
    assert not any(job.trimap_missing for job in jobs[1:])
    # Files of other padding than the token: no frame of it, and the message says why.
    jobs = cli.plan_frames(plate, str(tmp_path / "nopad.####.png"), out, "2", hold_trimap=True)
    assert jobs[0].trimap_held is None and jobs[0].trimap_missing == (
        f"file not found: {tmp_path / 'nopad.0002.png'} (no frames found on disk for {tmp_path / 'nopad.####.png'}: "
        f"{tmp_path / 'nopad.1.png'} and the like have other padding than its frame token '####' (4 digit(s)): give a "
        "token of the files' padding (one '#' per digit))")
    # A single trimap file serves every frame, held or not.
    jobs = cli.plan_frames(plate, str(tmp_path / "nopad.1.png"), out, "1-2")
    assert [(job.trimap.name, job.trimap_held, job.trimap_missing) for job in jobs] == [("nopad.1.png", None, "")] * 2


def test_an_output_format_that_cannot_hold_the_matte_is_refused_when_planned(tmp_path: Path) -> None:
    # Refused before any frame renders, naming the format's problem: .jpeg as .jpg (no alpha).
    plate, trimap = str(tmp_path / "plate.####.exr"), str(tmp_path / "trimap.####.png")
    for out in ("m.jpg", "m.JPEG"):
        with pytest.raises(cli.InputError, match="JPEG cannot hold the alpha channel"):
            cli.plan_frames(plate, trimap, str(tmp_path / out), "1")
    for out, ext in (("m.txt", "'.txt'"), ("m", "'(none)'"), ("m.####.gif", "'.gif'")):
        with pytest.raises(cli.InputError, match=re.escape(f"unsupported extension {ext}; use .exr, .png, .tif or .dpx")):
            cli.plan_frames(plate, trimap, str(tmp_path / out), "1")


def test_without_frames_the_plate_sequence_on_disk_decides_the_frames(tmp_path: Path) -> None:
    # A locked-off shot's one trimap file, or a trimap sequence longer than the plate: the plate's frames.
    for f in (1001, 1002, 1003):
        (tmp_path / f"plate.{f}.exr").touch()
    for f in range(1000, 1006):
        (tmp_path / f"trimap.{f}.png").touch()
    (tmp_path / "still.png").touch()
    plate, out = str(tmp_path / "plate.####.exr"), str(tmp_path / "out" / "m.####.exr")
    for trimap in ("still.png", "trimap.####.png"):
        jobs = cli.plan_frames(plate, str(tmp_path / trimap), out)
        assert [job.frame for job in jobs] == [1001, 1002, 1003], trimap
        assert [job.plate.name for job in jobs] == ["plate.1001.exr", "plate.1002.exr", "plate.1003.exr"]
    assert [job.trimap.name for job in jobs] == ["trimap.1001.png", "trimap.1002.png", "trimap.1003.png"]
    # ... and with a single plate file, the trimap sequence's
    (tmp_path / "plate.exr").touch()
    jobs = cli.plan_frames(str(tmp_path / "plate.exr"), str(tmp_path / "trimap.####.png"), out)
    assert [job.frame for job in jobs] == list(range(1000, 1006))


def test_a_float_trimap_on_the_8bit_scale_fails_its_frame_naming_the_fix(shot: Path, small_bundle, untrained_ok,
                                                                          capsys) -> None:
    # An EXR trimap holding 0/128/255 (8-bit values written as floats) read every grey as
    # foreground: a frame "matted" with no unknown pixel. Now that frame fails, saying why.
    for f in (1001, 1002):
        _write(shot / f"trimap.{f}.exr", (_trimap(f - 1001) * (255.0 if f == 1001 else 1.0))[..., None], ["Y"], "float")
    code = cli.main(["matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.exr"),
                     "--out", str(shot / "out/m.####.exr"), "--frames", "1001-1002", "--weights", str(small_bundle.path),
                     "--device", "cpu", "--no-progress"])
    stdout = capsys.readouterr().out
    assert code == 1
    assert "ERROR: frame 1001:" in stdout and "float values up to 255" in stdout and "divide it by 255" in stdout
    assert sorted(p.name for p in (shot / "out").iterdir()) == ["m.1002.exr"]


def test_size_mismatch_and_truncated_file(shot: Path, small_bundle, untrained_ok, capsys) -> None:
    _write(shot / "trimap.1001.png", np.zeros((H // 2, W // 2, 1), np.float32), ["Y"], "uint8")
    data = (shot / "plate.1003.exr").read_bytes()
    (shot / "plate.1003.exr").write_bytes(data[: len(data) // 2])
    assert _matte(shot, small_bundle) == 1
    stdout = capsys.readouterr().out
    assert (f"ERROR: frame 1001: plate and trimap differ in size: plate {shot / 'plate.1001.exr'} is {W}x{H}, "
            f"trimap {shot / 'trimap.1001.png'} is {W // 2}x{H // 2}") in stdout
    assert f"ERROR: frame 1003: cannot read image {shot / 'plate.1003.exr'}" in stdout
    assert sorted(p.name for p in (shot / "out").iterdir()) == ["matte.1002.exr"]


def test_trimap_whose_display_window_starts_elsewhere_is_refused(tmp_path: Path, capsys) -> None:
    # Same size, display window moved: read over the plate's pixels it was shifted (here entirely
    # off the plate, so the whole frame was matted as background), silently.
    _write(tmp_path / "plate.exr", _plate(0), ["R", "G", "B"], "half")
    spec = oiio.ImageSpec(W, H, 1, oiio.TypeDesc("half"))
    spec.channelnames = ("Y",)
    spec.x = spec.full_x = 100
    spec.y = spec.full_y = 100
    out = oiio.ImageOutput.create(str(tmp_path / "trimap.exr"))
    assert out.open(str(tmp_path / "trimap.exr"), spec)
    assert out.write_image(_trimap(0)[..., None])
    out.close()
    code = cli.main(["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.exr"),
                     "--out", str(tmp_path / "out.exr"), "--weights", "none", "--no-progress"])
    assert code == 1
    assert (f"ERROR: frame -: plate and trimap have their display windows at different places: plate "
            f"{tmp_path / 'plate.exr'} starts at (0, 0), trimap {tmp_path / 'trimap.exr'} at (100, 100)"
            ) in capsys.readouterr().out
    assert not (tmp_path / "out.exr").exists()


@pytest.mark.parametrize(("plate_file", "fmt", "bits", "out_file", "out_bits"), [
    ("plate.png", "uint16", 16, "out.png", 16),  # was an 8-bit PNG
    ("plate.dpx", "uint16", 12, "out.dpx", 12),  # was a 10-bit DPX
    ("plate.dpx", "uint16", 16, "out.dpx", 16),
    ("plate.dpx", "uint16", 12, "out.png", 16),
    ("plate.png", "uint8", 8, "out.dpx", 10),    # the format's own depth: never fewer bits
])
def test_an_integer_result_keeps_the_plates_bits(tmp_path: Path, capsys, plate_file: str, fmt: str, bits: int,
                                                 out_file: str, out_bits: int) -> None:
    # A 16-bit PNG plate matted to a PNG got an 8-bit PNG, a 12- or 16-bit DPX a 10-bit DPX: the
    # known FG, documented to be the plate's own values, came out quantised to fewer bits.
    rng = np.random.default_rng(3)
    top = 2**bits - 1
    plate = (np.round(rng.uniform(0.05, 0.95, (H, W, 3)) * top) / top).astype(np.float32)
    attributes = {"oiio:BitsPerSample": bits, "dpx:Transfer": "Unspecified video"} if bits == 12 else None
    _write(tmp_path / plate_file, plate, ["R", "G", "B"], fmt, attributes)
    trimap = _trimap(0)
    _write(tmp_path / "trimap.png", trimap[..., None], ["Y"], "uint8")
    code = cli.main(["matte", "--plate", str(tmp_path / plate_file), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / out_file), "--weights", "none", "--no-progress"])
    assert code == 0, capsys.readouterr().out
    result = read_image(tmp_path / out_file)
    assert result.info.bit_depth == out_bits
    fg_known = trimap == 1.0
    np.testing.assert_array_equal(result.channel("A")[fg_known], 1.0)
    # The plate's own values; to the result's rounding where it has more bits (8-bit codes in 10 bits).
    atol = 0.0 if out_bits == bits else 0.5 / (2**out_bits - 1) + 1e-7
    np.testing.assert_allclose(result.rgb()[fg_known], read_image(tmp_path / plate_file).rgb()[fg_known],
                               rtol=0, atol=atol)


def test_bad_plate_values_are_reported_never_written(tmp_path: Path, small_bundle, untrained_ok, capsys) -> None:
    plate = _plate(0)
    t = _trimap(0)
    yy, xx = np.nonzero(t == 1.0)
    plate[yy[0], xx[0]] = np.nan
    plate[yy[1], xx[1], 0] = np.inf
    ys, xs = np.nonzero((t > 0) & (t < 1))
    plate[ys[0], xs[0], 1] = -0.3
    plate[ys[1], xs[1]] = np.nan
    _write(tmp_path / "plate.exr", plate, ["R", "G", "B"], "float")
    _write(tmp_path / "trimap.exr", t[..., None], ["Y"], "float")
    code = cli.main(["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.exr"),
                     "--out", str(tmp_path / "out.exr"), "--weights", str(small_bundle.path), "--no-progress"])
    assert code == 0
    err = capsys.readouterr().out
    assert "with NaN" in err and "+inf" in err and "negative" in err and "sanitised" in err
    img = read_image(tmp_path / "out.exr")
    assert np.isfinite(img.pixels).all()  # NaN and inf never reach the file
    # A negative plate value is the plate's own (scene-linear values below 0 are never clipped):
    # the layers give it back, αF + (1 − α)B at that pixel is the plate's -0.3.
    pix = {c: img.pixels[ys[0], xs[0], img.channels.index(c)] for c in ("A", "fg.G", "bg.G")}
    assert abs(pix["A"] * pix["fg.G"] + (1 - pix["A"]) * pix["bg.G"] - (-0.3)) < 0.01


def test_trimap_without_unknown_gives_alpha_equal_trimap(tmp_path: Path, small_bundle, untrained_ok, capsys) -> None:
    t = (_trimap(0) == 1.0).astype(np.float32)
    _write(tmp_path / "plate.exr", _plate(0), ["R", "G", "B"], "half")
    _write(tmp_path / "trimap.png", t[..., None], ["Y"], "uint8")
    code = cli.main(["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "out.exr"), "--weights", str(small_bundle.path), "--no-progress"])
    assert code == 0
    assert "no unknown pixels" in capsys.readouterr().out
    np.testing.assert_array_equal(read_image(tmp_path / "out.exr").channel("A"), t)


def test_trimap_channel_can_name_a_layer_of_the_trimap(tmp_path: Path, small_bundle, untrained_ok, capsys,
                                                      exr_parts) -> None:
    # A layered EXR whose rgba is something else (here black) and whose trimap is in matte.Y:
    # --trimap-channel names it (before, only auto/alpha/red/luminance were accepted).
    t = (_trimap(0) == 1.0).astype(np.float32)
    _write(tmp_path / "plate.exr", _plate(0), ["R", "G", "B"], "half")
    _write(tmp_path / "trimap.exr", np.dstack([np.zeros((H, W, 3), np.float32), t]), ["R", "G", "B", "matte.Y"],
           "half")
    args = ["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.exr"),
            "--weights", str(small_bundle.path), "--no-progress"]
    assert cli.main([*args, "--out", str(tmp_path / "out.exr"), "--trimap-channel", "matte.Y"]) == 0
    np.testing.assert_array_equal(read_image(tmp_path / "out.exr").channel("A"), t)
    capsys.readouterr()
    assert cli.main([*args, "--out", str(tmp_path / "bad.exr"), "--trimap-channel", "matte.Z"]) == 1
    assert (f"ERROR: frame -: trimap {tmp_path / 'trimap.exr'}: the trimap has no channel 'matte.Z' (its channels: "
            "R, G, B, matte.Y;") in capsys.readouterr().out
    assert not (tmp_path / "bad.exr").exists()
    assert cli.main([*args, "--out", str(tmp_path / "bad.exr"), "--trimap-channel", " "]) == 2
    assert "--trimap-channel takes auto, alpha, red, luminance or the name of a channel" in capsys.readouterr().out
    # the same in a multi-part file, the matte in its own part after the (black) rgba part
    path = str(tmp_path / "parts.exr")
    exr_parts(path, [("rgba", ("R", "G", "B"), np.zeros((H, W, 3)), "half"), ("matte", ("matte.Y",), t[..., None], "half")])
    args[args.index(str(tmp_path / "trimap.exr"))] = path
    assert cli.main([*args, "--out", str(tmp_path / "parts_out.exr"), "--trimap-channel", "matte.Y"]) == 0
    np.testing.assert_array_equal(read_image(tmp_path / "parts_out.exr").channel("A"), t)

def test_plate_layer_picks_the_plates_colour_among_several_layers(tmp_path: Path, small_bundle, untrained_ok,
                                                                  capsys) -> None:
    # A layered plate (diffuse, spec; no rgba) could not be matted at all: nothing said which
    # layer is the plate. --plate-layer names it; the matte is the one of that layer as rgb.
    plate = _plate(0)
    _write(tmp_path / "layered.exr", np.dstack([plate * 0.5, plate]),
           ["diffuse.R", "diffuse.G", "diffuse.B", "spec.R", "spec.G", "spec.B"], "half")
    _write(tmp_path / "plate.exr", plate, ["R", "G", "B"], "half")
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")

    def matte(plate_file: str, out: str, *extra: str) -> int:
        return cli.main(["matte", "--plate", str(tmp_path / plate_file), "--trimap", str(tmp_path / "trimap.png"),
                         "--out", str(tmp_path / out), "--weights", str(small_bundle.path), "--no-progress", *extra])

    assert matte("layered.exr", "refused.exr") == 1
    assert "cannot tell which is the plate; name its layer (lbsmatte matte --plate-layer)" in capsys.readouterr().out
    assert matte("layered.exr", "spec.exr", "--plate-layer", "spec") == 0
    assert matte("plate.exr", "rgb.exr") == 0
    np.testing.assert_array_equal(read_image(tmp_path / "spec.exr").pixels, read_image(tmp_path / "rgb.exr").pixels)
    assert matte("layered.exr", "beauty.exr", "--plate-layer", "beauty") == 1
    assert "no layer 'beauty' holding R, G, B (its colour layers: diffuse, spec;" in capsys.readouterr().out
    assert not (tmp_path / "beauty.exr").exists()
    # The file's A belongs to its rgba, not to the layer named: no warning about the plate's alpha.
    _write(tmp_path / "layered_a.exr", np.dstack([plate * 0.5, plate, np.full(plate.shape[:2], 0.5, np.float32)]),
           ["diffuse.R", "diffuse.G", "diffuse.B", "spec.R", "spec.G", "spec.B", "A"], "half")
    assert matte("layered_a.exr", "spec_a.exr", "--plate-layer", "spec") == 0
    assert "alpha channel is below 1" not in capsys.readouterr().out

def test_unwritable_output_folder_fails_before_any_work(shot: Path, capsys) -> None:
    (shot / "blocker").write_text("a file where the output folder should be")
    # The weights name is bogus too: the folder check must come first.
    code = cli.main(["matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
                     "--out", str(shot / "blocker" / "m.####.exr"), "--weights", "no-such-bundle", "--no-progress"])
    assert code == 1
    stdout = capsys.readouterr().out
    assert "ERROR:" in stdout and "blocker" in stdout and "no-such-bundle" not in stdout
    assert "LBSMATTE PROGRESS" not in stdout


@pytest.mark.parametrize("flag", ["--plate", "--out", "--write-trimap"])
def test_a_path_of_bytes_that_are_not_utf8_is_a_usage_error_before_any_work(shot: Path, flag: str, capsys) -> None:
    """A file named on a Latin-1 system (b'cam\\xe9ra'): OpenImageIO takes UTF-8 paths only. The
    plate's frame failed with "TypeError: open(): incompatible function arguments", an output's
    only after its frame was matted; the weights are bogus here: the check comes first."""
    latin1 = os.fsdecode(os.fsencode(str(shot)) + b"/cam\xe9ra.####.exr")
    paths = {"--plate": str(shot / "plate.####.exr"), "--out": str(shot / "m.####.exr"), "--write-trimap": None}
    paths[flag] = latin1
    argv = ["matte", "--plate", paths["--plate"], "--trimap", str(shot / "trimap.####.png"), "--out", paths["--out"],
            "--weights", "no-such-bundle", "--no-progress"] + (["--write-trimap", latin1] if flag == "--write-trimap" else [])
    assert cli.main(argv) == 2
    stdout = capsys.readouterr().out
    assert f"ERROR: {flag} {shot}/cam\\xe9ra.####.exr: the path holds bytes that are not UTF-8 text" in stdout
    assert "TypeError" not in stdout and "no-such-bundle" not in stdout and "LBSMATTE PROGRESS" not in stdout


@pytest.mark.skipif(os.name == "nt", reason="Windows' file system encoding is always UTF-8")
def test_an_error_naming_a_path_beyond_ascii_is_one_line_under_lang_c(shot: Path) -> None:
    """Under LANG=C with Python's UTF-8 mode off, stdout is ASCII with surrogateescape (Python's
    choice, which the escaping of unencodable output left alone): the ERROR: line of a Latin-1
    file in a folder named 'Séquence' ended in UnicodeEncodeError and 'internal error ... a bug'."""
    folder = os.fsencode(str(shot)) + "/Séquence".encode()
    os.mkdir(folder)
    plate = os.fsdecode(folder + b"/cam\xe9ra.####.exr")
    env = dict(os.environ, LC_ALL="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0",
               PYTHONPATH=str(Path(cli.__file__).resolve().parents[1]))
    env.pop("PYTHONIOENCODING", None)
    done = subprocess.run([sys.executable, "-m", "core.cli", "matte", "--plate", plate,
                           "--trimap", str(shot / "trimap.####.png"), "--out", str(shot / "m.####.exr")],
                          capture_output=True, env=env, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    # The undecodable byte escaped as ever, the folder's 'é' too (ASCII cannot hold it), no traceback
    assert done.stdout.decode("ascii").splitlines() == [
        f"ERROR: --plate {shot}/S\\xe9quence/cam\\xe9ra.####.exr: the path holds bytes that are not UTF-8 text, "
        "which OpenImageIO cannot open: rename the file (or its folder) in UTF-8"]
    assert b"Traceback" not in done.stderr


def test_no_trained_weights_is_a_plain_error(shot: Path, small_bundle, monkeypatch, capsys) -> None:
    monkeypatch.delenv("LBSMATTE_ALLOW_UNTRAINED", raising=False)
    assert _matte(shot, small_bundle) == 1
    stdout = capsys.readouterr().out
    assert stdout.startswith("ERROR:") and "untrained" in stdout
    assert not list((shot / "out").iterdir())  # nothing written from random weights
    assert cli.main(["matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
                     "--out", str(shot / "o.####.exr"), "--weights", "no-such-bundle", "--no-progress"]) == 1
    assert "no-such-bundle" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--frames", "10-x"], "cannot understand the frame range '10-x'"),
        (["--colour", "rec709"], "unknown colour 'rec709'"),
        (["--out", "{shot}/plate.####.exr"], "--out would overwrite an input"),
        (["--out", "{shot}/single.exr"], "names a single file but 3 frames"),
        (["--out", "{shot}/single.exr", "--frames", "1001-1002"], "names a single file but 2 frames"),
        (["--out", "{shot}/o.####.jpg"], "JPEG cannot hold the alpha"),
        (["--out", "{shot}/o_####_v1.exr", "--frames", "1001"],
         "{shot}/o_####_v1.exr: the frame token '####' must come right before the extension"),
        (["--out", "{shot}/folder.####.exr", "--frames", "1001"], "--out {shot}/folder.1001.exr is a folder: name the file"),
        (["--plate", "{shot}/nothing.exr", "--trimap", "{shot}/gone.png", "--out", "{shot}/o.exr"],
         "--plate {shot}/nothing.exr: no such file; --trimap {shot}/gone.png: no such file"),
        (["--trimap", "{shot}", "--out", "{shot}/o.exr", "--plate", "{shot}/plate.1001.exr"],
         "--trimap {shot}: is a folder, not an image file"),
        (["--plate-layer", " "], "--plate-layer takes the name of the plate's colour layer"),
        (["--float", "--out", "{shot}/o.####.png"], "--float: only an EXR --out is written in float, not {shot}/o.####.png"),
        # A TIFF holds floats, but these results are sRGB-encoded: the message said a TIFF could not.
        (["--float", "--out", "{shot}/o.####.tif"], "--float: only an EXR --out is written in float, not "
                                                    "{shot}/o.####.tif: a PNG, TIFF or DPX result holds sRGB-encoded"),
    ],
)
def test_usage_errors_exit_2(shot: Path, argv: list[str], message: str, capsys) -> None:
    before = (shot / "plate.1001.exr").read_bytes()
    (shot / "folder.1001.exr").mkdir()
    base = ["matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
            "--out", str(shot / "o.####.exr"), "--weights", "no-such-bundle", "--no-progress"]
    assert cli.main(base + [a.format(shot=shot) for a in argv]) == 2
    assert message.format(shot=shot) in capsys.readouterr().out
    assert (shot / "plate.1001.exr").read_bytes() == before
    assert not list(shot.glob("o*"))  # nothing written, not even a lock or a temporary file


@pytest.mark.parametrize("value", ["-1", "two", "1.5", "101", "100000"])
def test_bad_rounds_is_a_usage_error(value: str, capsys) -> None:
    # 100000 (a typo for 1) was taken and ran for weeks: the rounds past 100 are refused, naming the range.
    assert cli.main(["matte", "--plate", "p.exr", "--trimap", "t.exr", "--out", "o.exr", "--rounds", value]) == 2
    assert f"--rounds takes a whole number from 0 to 100 (0: the networks alone), not '{value}'" in capsys.readouterr().out
    for command in (["evaluate", "data"], ["export", "--out", "m.pt"]):
        assert cli.main(command + ["--rounds", value]) == 2
        assert "--rounds takes a whole number from 0 to 100" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["-1", "wide", "2.5"])
def test_bad_knn_band_is_a_usage_error(value: str, capsys) -> None:
    assert cli.main(["matte", "--plate", "p.exr", "--trimap", "t.exr", "--out", "o.exr", "--knn-band", value]) == 2
    assert f"--knn-band takes a whole number of pixels >= 0 (0: anywhere in the crop), not '{value}'" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["0", "-2", "every", "1.5"])
def test_bad_knn_stride_is_a_usage_error(value: str, capsys) -> None:
    assert cli.main(["matte", "--plate", "p.exr", "--trimap", "t.exr", "--out", "o.exr", "--knn-stride", value]) == 2
    assert (f"--knn-stride takes a whole number >= 1 (1: every unknown pixel searches), not '{value}'"
            in capsys.readouterr().out)


def test_rounds_reach_the_pipeline(shot: Path, small_bundle, untrained_ok, capsys) -> None:
    from core.io import read_image

    assert _matte(shot, small_bundle, "--rounds", "0", "--frames", "1001", out="r0/m.####.exr") == 0
    assert _matte(shot, small_bundle, "--frames", "1001", out="r3/m.####.exr") == 0
    a0 = read_image(shot / "r0" / "m.1001.exr").alpha()
    a3 = read_image(shot / "r3" / "m.1001.exr").alpha()
    assert a0.shape == a3.shape and np.abs(a0 - a3).max() > 1e-3


def _threads_in_matte(monkeypatch) -> list[int]:
    """torch's CPU threads inside each frame's matte, as the pipeline runs it."""
    import torch

    import core.pipeline as pipeline

    seen: list[int] = []
    matte = pipeline.Matter._matte

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return matte(self, *args, **kwargs)

    monkeypatch.setattr(pipeline.Matter, "_matte", spy)
    return seen


@pytest.fixture
def threads_unset(monkeypatch):
    """No thread count in the environment, torch at 3 threads (put back after the test)."""
    import torch

    import core.pipeline as pipeline

    for name in pipeline.THREAD_ENVS:
        monkeypatch.delenv(name, raising=False)
    previous = torch.get_num_threads()
    torch.set_num_threads(3)
    yield
    torch.set_num_threads(previous)


def test_matte_runs_as_many_threads_as_the_jobs_cpu_quota(shot: Path, small_bundle, untrained_ok, threads_unset,
                                                          monkeypatch, capsys) -> None:
    # A farm job or container given 2 CPUs by a cgroup quota (docker --cpus=2) on a node whose
    # cores torch counts (3 here): torch ran a thread per core, throttled by the kernel; the
    # quota's count now, put back as main returns (called in-process).
    import torch

    import core.pipeline as pipeline

    monkeypatch.setattr(pipeline, "cgroup_cpus", lambda: 2.0)
    seen = _threads_in_matte(monkeypatch)
    assert _matte(shot, small_bundle, "--frames", "1001-1002") == 0
    assert seen == [2, 2] and torch.get_num_threads() == 3
    # OMP_NUM_THREADS, the README's way to say the job's cores, wins over the quota.
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    seen.clear()
    assert _matte(shot, small_bundle, "--frames", "1001", out="omp/m.####.exr") == 0
    assert seen == [3]
    assert "WARNING" not in capsys.readouterr().out


def test_matte_writes_its_exrs_with_as_many_threads_as_the_job_has_cpus(shot: Path, small_bundle, untrained_ok,
                                                                        threads_unset, monkeypatch) -> None:
    # OpenImageIO (and OpenEXR's compression under it) ran a thread per core of the node whatever
    # the job was given: a job bound to 8 of a node's 64 cores wrote each EXR with 64 threads taking
    # turns on its 8. Now the job's CPUs (its affinity, its quota, OMP_NUM_THREADS), put back as main
    # returns; a count the job gives OpenImageIO itself stands.
    import core.io as cio
    import core.pipeline as pipeline

    for name in cio.OIIO_THREAD_ENVS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(pipeline, "cgroup_cpus", lambda: None)
    seen: list[tuple[int, int]] = []
    write = cio.write_matte_exr

    def spy(*args, **kwargs):
        seen.append((oiio.get_int_attribute("threads"), oiio.get_int_attribute("exr_threads")))
        return write(*args, **kwargs)

    monkeypatch.setattr(cio, "write_matte_exr", spy)
    given = (oiio.get_int_attribute("threads"), oiio.get_int_attribute("exr_threads"))
    for name in ("threads", "exr_threads"):  # as OIIO counts a node of 4 cores
        oiio.attribute(name, 4)
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert _matte(shot, small_bundle, "--frames", "1001-1002") == 0
        assert seen == [(1, 1), (1, 1)]
        assert (oiio.get_int_attribute("threads"), oiio.get_int_attribute("exr_threads")) == (4, 4)
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setattr(pipeline, "cgroup_cpus", lambda: 1.5)  # a quota of 1.5 CPUs: one thread
        seen.clear()
        assert _matte(shot, small_bundle, "--frames", "1001", out="quota/m.####.exr") == 0
        assert seen == [(1, 1)]
        monkeypatch.setenv("OPENIMAGEIO_THREADS", "7")
        seen.clear()
        assert _matte(shot, small_bundle, "--frames", "1001", out="own/m.####.exr") == 0
        assert seen == [(4, 4)]
    finally:
        for name, value in zip(("threads", "exr_threads"), given, strict=True):
            oiio.attribute(name, value)


@pytest.mark.parametrize("value", ["0", "abc", "-2", ""])  # "": a template's OMP_NUM_THREADS=$NSLOTS, NSLOTS unset
def test_an_omp_num_threads_that_holds_no_count_is_said(shot: Path, small_bundle, untrained_ok, threads_unset,
                                                        monkeypatch, capsys, value: str) -> None:
    # OpenMP and torch ignore such a value (a line of libgomp's on stderr, the progress bar's
    # stream) and run a thread per core: the farm's log said nothing of it.
    import core.pipeline as pipeline

    monkeypatch.setenv("OMP_NUM_THREADS", value)
    monkeypatch.setattr(pipeline, "cgroup_cpus", lambda: None)
    assert _matte(shot, small_bundle, "--frames", "1001") == 0
    out = capsys.readouterr().out
    assert f"WARNING: OMP_NUM_THREADS={value!r} is not a whole number >= 1, and torch ignores it: running 3 CPU " \
           "thread(s)" in out


def test_matte_leaves_the_garbage_collector_as_it_was_and_its_process_says_nothing_on_stderr(
        shot: Path, small_bundle, untrained_ok) -> None:
    # matte runs with Python's collector as it is (only weights and fingerprint run without):
    # main called in-process gives it back as it found it, nothing frozen.
    import gc

    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert _matte(shot, small_bundle, "--frames", "1001") == 0
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        assert _matte(shot, small_bundle, "--frames", "1002") == 0
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()
    # As its process's command (python -m core.cli): nothing on stderr but the progress bar, turned
    # off here. Left frozen for the exit, OpenImageIO's objects were never freed, and its bindings
    # said so on stderr ('nanobind: leaked 269 instances!', ...) as the process ended.
    done = subprocess.run([sys.executable, "-m", "core.cli", "matte", "--plate", str(shot / "plate.####.exr"),
                           "--trimap", str(shot / "trimap.####.png"), "--out", str(shot / "p/m.####.exr"),
                           "--frames", "1001", "--weights", str(small_bundle.path), "--device", "cpu", "--no-progress"],
                          capture_output=True, text=True, cwd=Path(cli.__file__).resolve().parents[1])
    assert (done.returncode, done.stderr) == (0, ""), done.stdout + done.stderr


def test_fingerprint_runs_without_the_garbage_collector_and_leaves_no_young_objects_to_walk(small_bundle, monkeypatch,
                                                                                           capsys) -> None:
    # The Nuke node runs `lbsmatte fingerprint` at each Compute (a process importing torch): it
    # runs without collections to its end, and what it made is moved to the oldest generation
    # as collection comes back, not walked as young objects by the first collection after it
    # (0.7 s, more than the collections it saved).  Run as the process's command, it leaves it
    # all frozen for the exit.
    import gc

    import core.fingerprint

    seen = []
    record = core.fingerprint.fingerprint

    def fingerprint(*args, **kwargs):
        seen.append(gc.isenabled())
        return record(*args, **kwargs)

    monkeypatch.setattr(core.fingerprint, "fingerprint", fingerprint)
    assert cli.main(["fingerprint", "--weights", str(small_bundle.path), "--device", "cpu"]) == 0
    assert seen == [False] and gc.isenabled() and gc.get_freeze_count() == 0
    assert '"fingerprint"' in capsys.readouterr().out
    # In a process of its own, as Nuke runs it: torch's objects are in the oldest generation, so
    # the first collection after it (listing generation 1 starts one) has none to move there.
    code = ("import gc, sys\nfrom core import cli\n"
            "rc = cli.main(['fingerprint', '--weights', sys.argv[1], '--device', 'cpu'])\n"
            "print(rc, gc.isenabled(), gc.get_freeze_count(), len(gc.get_objects(1)), len(gc.get_objects(2)))")
    done = subprocess.run([sys.executable, "-c", code, str(small_bundle.path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(cli.__file__).resolve().parents[1])})
    rc, enabled, frozen, middle, oldest = done.stdout.split()[-5:]
    assert (rc, enabled, frozen) == ("0", "True", "0"), done.stdout + done.stderr
    assert int(middle) < 10_000 < int(oldest), done.stdout
    # As the process's own command (no argv: the console script, python -m core.cli), which ends
    # as main returns: what it made stays frozen, so that the exit does not walk and free it.
    code = ("import gc, sys\nfrom core import cli\n"
            "sys.argv = ['lbsmatte', 'fingerprint', '--weights', sys.argv[1], '--device', 'cpu']\n"
            "rc = cli.main()\nprint(rc, gc.isenabled(), gc.get_freeze_count())")
    done = subprocess.run([sys.executable, "-c", code, str(small_bundle.path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(cli.__file__).resolve().parents[1])})
    rc, enabled, frozen = done.stdout.split()[-3:]
    assert (rc, enabled) == ("0", "True") and int(frozen) > 100_000, done.stdout + done.stderr


def test_main_in_process_leaves_the_callers_environment_and_allocator_as_they_were(monkeypatch, capsys) -> None:
    # A pipeline tool calling cli.main([...]) in its own long-running process got
    # THP_MEM_ALLOC_ENABLE=1 in its environment (passed on to every process it starts) and glibc
    # set never to trim or unmap what it frees (its largest frame's memory held to its end).
    monkeypatch.delenv(cli.HUGE_PAGES_ENV, raising=False)
    applied: list[bool] = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: applied.append(True) or True)
    environ = dict(os.environ)
    assert cli.main(["weights", "list"]) == 0
    assert dict(os.environ) == environ and applied == []
    assert "default" in capsys.readouterr().out
    # As the process's own command, which ends as main returns: set up for rendering.
    code = ("import os, sys\nfrom core import cli\nsys.argv = ['lbsmatte', 'weights', 'list']\n"
            "kept = []\nkeep = cli.keep_freed_memory\ncli.keep_freed_memory = lambda: kept.append(keep()) or True\n"
            "rc = cli.main()\nprint(rc, os.environ.get(cli.HUGE_PAGES_ENV), kept == [sys.platform.startswith('linux')])")
    env = {k: v for k, v in os.environ.items() if k not in (cli.HUGE_PAGES_ENV, cli.KEEP_MEMORY_ENV)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(Path(cli.__file__).resolve().parents[1])})
    assert done.stdout.split()[-3:] == ["0", "1", "True"], done.stdout + done.stderr


def test_argparse_errors_and_help(capsys) -> None:
    assert cli.main(["matte", "--plate", "p.exr"]) == 2
    out = capsys.readouterr()
    assert out.out.startswith("ERROR: ") and "required: --trimap, --out" in out.out and out.err == ""
    assert cli.main(["matte", "--plate", "p", "--trimap", "t", "--out", "o.exr", "--device", "tpu"]) == 2
    assert cli.main([]) == 2
    assert cli.main(["--help"]) == 0
    help_text = capsys.readouterr().out
    for command in ("matte", "weights", "demo", "evaluate", "train", "finetune"):
        assert command in help_text
    assert cli.main(["matte", "--help"]) == 0
    help_text = capsys.readouterr().out
    for option in ("--plate", "--trimap", "--out", "--frames", "--weights", "--device", "--colour",
                   "--trimap-channel", "--unpremultiply", "--no-progress"):
        assert option in help_text


def test_unimportable_command_is_listed_and_says_so(monkeypatch, capsys) -> None:
    monkeypatch.setitem(cli.LAZY_COMMANDS, "demo", ("core.no_such_module", "make a demo"))
    assert cli.main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    assert cli.main(["demo", "--out", "x"]) == 1
    assert "'lbsmatte demo' is not available: core.no_such_module cannot be imported" in capsys.readouterr().out
    assert cli.main(["weights", "list"]) == 0  # the rest of the CLI still works


def test_weights_list_and_show(small_bundle, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LBSMATTE_WEIGHTS_PATH", str(small_bundle.path.parent))
    assert cli.main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert f"{small_bundle.name}\tUNTRAINED\t{small_bundle.path}" in out
    assert cli.main(["weights", "show", small_bundle.name]) == 0
    assert str(small_bundle.path) in capsys.readouterr().out
    assert cli.main(["weights", "show", small_bundle.name, "--json"]) == 0
    assert '"networks"' in capsys.readouterr().out
    assert cli.main(["weights", "show", "no-such-bundle"]) == 1
    assert "ERROR: no weights bundle named 'no-such-bundle'" in capsys.readouterr().out
    # A bundle the search skips: its warning on stdout (the stream a farm reads), said once.
    broken = small_bundle.path.parent / "zz_broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{cut off")
    assert cli.main(["weights", "list"]) == 0
    said = capsys.readouterr()
    assert said.err == "" and said.out.count(f"WARNING: skipping weights bundle {broken}: manifest.json is not valid JSON") == 1


def test_called_in_process_it_leaves_the_callers_logging_as_it_was(monkeypatch, capsys) -> None:
    # A pipeline script calling core.cli.main(["evaluate", ...]) got the root logger configured for
    # good (evaluate's, demo's and train's WARNING lines to stderr): its own logging.basicConfig
    # afterwards did nothing, and its INFO lines were lost.
    import logging

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # a script's fresh process (pytest's own handlers aside)
    monkeypatch.setattr(root, "level", logging.ERROR)
    assert cli.main(["evaluate", "/no/such/data/set"]) == 2
    assert "ERROR: data set folder not found" in capsys.readouterr().out
    assert root.handlers == [] and root.level == logging.ERROR


def test_a_bug_has_an_exit_status_of_its_own(small_bundle, monkeypatch, capsys) -> None:
    # An exception nothing planned for ended the process with Python's 1, the status of "the work
    # failed" (a missing frame, a damaged bundle): a farm's retry rule could not tell a bug from it.
    import core.weights

    def broken() -> list:
        raise TypeError("'NoneType' object is not iterable")

    monkeypatch.setattr(core.weights, "find_bundles", broken)
    assert cli.main(["weights", "list"]) == cli.EXIT_INTERNAL == 70
    said = capsys.readouterr()
    assert said.out.splitlines() == [f"ERROR: internal error in LBSMatte {cli.__version__}: TypeError: 'NoneType' "
                                     "object is not iterable (a bug, not the input: please report it with the "
                                     "traceback on stderr)"]
    assert said.err.startswith("Traceback (most recent call last):") and "def broken" not in said.out
    assert cli.main(["weights", "list", "--json"]) == 70  # stdout stays JSON or nothing
    said = capsys.readouterr()
    assert said.out == "" and "ERROR: internal error in LBSMatte" in said.err


def test_runs_as_a_module() -> None:
    proc = subprocess.run([sys.executable, "-m", "core.cli", "--version"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("lbsmatte ")


def test_plate_data_window_is_carried_over(tmp_path: Path, small_bundle, untrained_ok) -> None:
    # The plate's data window is a 40x30 box inside its 56x40 display window; the trimap (a PNG)
    # covers the display window. Sizes compare on display windows; the result keeps both windows.
    spec = oiio.ImageSpec(40, 30, 3, oiio.HALF)
    spec.x, spec.y = 8, 5
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, W, H
    out = oiio.ImageOutput.create(str(tmp_path / "plate.exr"))
    out.open(str(tmp_path / "plate.exr"), spec)
    out.write_image(np.ascontiguousarray(_plate(0)[5:35, 8:48]))
    out.close()
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    assert cli.main(["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "out.exr"), "--weights", str(small_bundle.path), "--no-progress"]) == 0
    info = read_image(tmp_path / "out.exr").info
    assert (info.x, info.y, info.width, info.height) == (8, 5, 40, 30)
    assert (info.full_x, info.full_y, info.full_width, info.full_height) == (0, 0, W, H)


def test_srgb_plate_to_exr_is_linearised(tmp_path: Path, small_bundle, untrained_ok) -> None:
    plate = np.clip(_plate(0), 0, 1)
    _write(tmp_path / "plate.png", plate, ["R", "G", "B"], "uint8")
    t = _trimap(0)
    _write(tmp_path / "trimap.png", t[..., None], ["Y"], "uint8")
    assert cli.main(["matte", "--plate", str(tmp_path / "plate.png"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "out.exr"), "--weights", str(small_bundle.path), "--no-progress"]) == 0
    img = read_image(tmp_path / "out.exr")
    fg = np.dstack([img.channel(f"fg.{c}") for c in "RGB"])
    plate8 = read_image(tmp_path / "plate.png").rgb()
    # sRGB 8-bit -> linear, known answer of the IEC curve: ((v + 0.055) / 1.055) ** 2.4
    expected = np.where(plate8 <= 0.04045, plate8 / 12.92, ((plate8 + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(fg[t == 1.0], _half(expected[t == 1.0]), rtol=1e-3)


@pytest.mark.parametrize("plate_name, colour", [("plate.png", None), ("plate16.tif", None), ("plate.exr", "srgb")])
def test_the_layers_of_an_srgb_plate_recomposite_it_as_the_exr_holds_it(tmp_path: Path, plate_name: str,
                                                                        colour: str | None) -> None:
    # An sRGB plate's F and B are solved in the sRGB encoding, in the least-squares sense; Nuke
    # composites the EXR's layers as they are, where A·fg + (1 − A)·bg missed the plate by up to
    # 0.23 over the band (the demo at 160 px, linearised). With the shipped networks (a soft edge).
    # Linearised (PNG, TIFF) or kept sRGB-encoded (a float file with --colour srgb, the Nuke node's
    # input colour srgb), they now give the plate back as the EXR holds it.
    from core.colour import to_linear
    from core.trimap import split_trimap

    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    soft = np.clip((13.0 - np.hypot(yy - H / 2, xx - W / 2)) / 4.0, 0.0, 1.0)[..., None]  # a 4 px soft edge
    plate = soft * np.array([0.9, 0.5, 0.1], np.float32) + (1 - soft) * np.clip(_plate(0), 0, 1)
    kind = {".png": "uint8", ".tif": "uint16", ".exr": "half"}[Path(plate_name).suffix]
    _write(tmp_path / plate_name, plate, ["R", "G", "B"], kind)
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    extra = ["--colour", colour] if colour else []
    assert cli.main(["matte", "--plate", str(tmp_path / plate_name), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "out.exr"), "--device", "cpu", "--no-progress", *extra]) == 0
    img = read_image(tmp_path / "out.exr")
    alpha = img.channel("A")[..., None]
    fg, bg = (np.dstack([img.channel(f"{layer}.{c}") for c in "RGB"]) for layer in ("fg", "bg"))
    # Linearised (PNG, TIFF): the plate back in linear light. Kept sRGB-encoded (a float file with
    # --colour srgb): the plate back as stored, which is what Nuke composites (linearised, those
    # layers missed the stored plate by up to 0.14).
    linear = read_image(tmp_path / plate_name).rgb() if colour else to_linear(read_image(tmp_path / plate_name).rgb(), "srgb")
    band = split_trimap(_trimap(0))[2]
    assert ((alpha[..., 0] > 0.05) & (alpha[..., 0] < 0.95) & band).sum() > 20  # a soft edge to recomposite
    # half floats: 2^-11 relative, F and B rounded apiece
    np.testing.assert_allclose((alpha * fg + (1 - alpha) * bg)[band], linear[band], rtol=2e-3, atol=2e-4)


def test_an_srgb_float_plate_with_nan_and_inf_in_the_band_gives_a_finite_exr(tmp_path: Path, small_bundle,
                                                                             untrained_ok) -> None:
    # The linear-light agreement of an sRGB plate's layers works on the plate as the pipeline
    # matted it (sanitised): on the raw values an inf in the band made F and B inf and NaN.
    plate = np.clip(_plate(0), 0, 1)
    band = np.argwhere((_trimap(0) > 0) & (_trimap(0) < 1))
    (y0, x0), (y1, x1) = band[0], band[len(band) // 2]
    plate[y0, x0] = [np.inf, np.nan, -1.0]
    plate[y1, x1, 0] = np.inf
    _write(tmp_path / "plate.exr", plate, ["R", "G", "B"], "half")
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    assert cli.main(["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "out.exr"), "--colour", "srgb", "--weights", str(small_bundle.path),
                     "--no-progress"]) == 0
    assert np.isfinite(read_image(tmp_path / "out.exr").pixels).all()


def test_an_srgb_float_plates_negatives_in_the_band_are_given_back_by_its_layers(tmp_path: Path, small_bundle,
                                                                                 untrained_ok) -> None:
    # A float plate matted with --colour srgb (the Nuke node's input colour srgb) keeps its
    # encoding in the EXR, and A·fg + (1 − A)·bg gives the stored plate back: also where the band
    # holds a negative value (a graded plate's lifted black), which the pipeline keeps in the solve.
    # The agreement worked on the plate sanitised for the networks, negatives set to 0, and those
    # pixels came back 0 instead (-0.125 here), the band's composite off by the negative value.
    from core.trimap import split_trimap

    plate = np.clip(_plate(0), 0, 1)
    band = split_trimap(_trimap(0))[2]
    where = np.argwhere(band)[::7]
    plate[where[:, 0], where[:, 1], 1] = -0.125  # exact in half float
    _write(tmp_path / "plate.exr", plate, ["R", "G", "B"], "half")
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    assert cli.main(["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "out.exr"), "--colour", "srgb", "--float",
                     "--weights", str(small_bundle.path), "--no-progress"]) == 0
    img = read_image(tmp_path / "out.exr")
    alpha = img.channel("A")[..., None]
    fg, bg = (np.dstack([img.channel(f"{layer}.{c}") for c in "RGB"]) for layer in ("fg", "bg"))
    np.testing.assert_allclose((alpha * fg + (1 - alpha) * bg)[band], _half(plate)[band], rtol=1e-4, atol=1e-5)


def test_an_srgb_encoded_exr_plate_keeps_its_encoding_in_the_exr(tmp_path: Path, small_bundle, untrained_ok) -> None:
    # A float file holding sRGB-encoded values (what the Nuke node bakes with input colour srgb:
    # its input's values, raw) is read by Nuke's Read as it is; its result was linearised, so the
    # node's fg layer, and its rgba where the trimap says FG, no longer equalled its input there.
    plate = np.clip(_plate(0), 0, 1)
    _write(tmp_path / "plate.exr", plate, ["R", "G", "B"], "half")
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    assert cli.main(["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "out.exr"), "--colour", "srgb", "--weights", str(small_bundle.path),
                     "--no-progress"]) == 0
    img = read_image(tmp_path / "out.exr")
    fg = np.dstack([img.channel(f"fg.{c}") for c in "RGB"])
    bg = np.dstack([img.channel(f"bg.{c}") for c in "RGB"])
    t = _trimap(0)
    np.testing.assert_array_equal(fg[t == 1.0], _half(plate)[t == 1.0])
    np.testing.assert_array_equal(bg[t == 0.0], _half(plate)[t == 0.0])


def test_matte_help_says_what_an_exr_result_holds_as_the_code_writes_it() -> None:
    # The help called every EXR result scene-linear, while a float plate matted with --colour srgb
    # (the Nuke node's input colour srgb) keeps its sRGB encoding in the EXR (the test above).
    matte = next(a for a in cli.build_parser("matte")._actions if a.dest == "command").choices["matte"]
    colour = next(a for a in matte._actions if a.dest == "colour")
    assert cli._linearised("srgb", float_plate=False) and not cli._linearised("srgb", float_plate=True)
    assert "an sRGB integer file (PNG, JPEG, 8/16-bit TIFF, DPX) is linearised to scene-linear" in matte.description
    assert "a float file (EXR, float TIFF) keeps its own encoding" in matte.description
    assert "with --colour srgb it stays sRGB-encoded" in matte.description
    assert "an EXR OUT of a float file then holds sRGB-encoded layers" in colour.help
    assert "bg.G bg.B, half float (--float: 32-bit), scene-linear" not in matte.description


def test_the_results_header_says_the_colour_space_it_holds(tmp_path: Path, small_bundle, untrained_ok) -> None:
    # OpenImageIO tags a file with its colour space (colorInteropID); the plate's tag was copied onto
    # results in another encoding: the sRGB PNG of a linear EXR said lin_rec709_scene, the linearised
    # EXR of a tagged PNG said srgb_rec709_scene (and OIIO read that EXR back as sRGB).
    plate = np.clip(_plate(0), 0, 1)
    _write(tmp_path / "lin.exr", plate, ["R", "G", "B"], "half", {"oiio:ColorSpace": "lin_rec709_scene"})
    _write(tmp_path / "ap1.exr", plate, ["R", "G", "B"], "half", {"oiio:ColorSpace": "ACEScg"})
    _write(tmp_path / "srgb.png", plate, ["R", "G", "B"], "uint8", {"colorInteropID": "srgb_rec709_scene"})
    assert read_image(tmp_path / "srgb.png").info.attribute("colorInteropID") == "srgb_rec709_scene"
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    args = ["matte", "--trimap", str(tmp_path / "trimap.png"), "--weights", str(small_bundle.path), "--no-progress"]
    for plate_name, out, expected in (("lin.exr", "lin.png", None), ("srgb.png", "srgb.exr", "lin_rec709_scene"),
                                      ("ap1.exr", "ap1.exr.exr", "lin_ap1_scene"), ("lin.exr", "lin.exr.exr",
                                                                                     "lin_rec709_scene")):
        assert cli.main([*args, "--plate", str(tmp_path / plate_name), "--out", str(tmp_path / out)]) == 0
        info = read_image(tmp_path / out).info
        assert info.attribute("colorInteropID") == expected, (plate_name, out)
        assert info.attribute("oiio:ColorSpace") == (expected or "srgb_rec709_scene"), (plate_name, out)


def test_an_ocio_plates_result_is_tagged_with_the_colourspace_named(tmp_path: Path, small_bundle, untrained_ok,
                                                                     monkeypatch: pytest.MonkeyPatch, aces2_ocio_config: str) -> None:
    # The EXR of a plate matted with --colour ACEScg holds ACEScg values but carried the plate's own
    # tag: none for an untagged render, lin_rec709_scene where --colour corrected a wrong one; the
    # config gives the colourspace's interop ID (OCIO 2.5's studio config: lin_ap1_scene). And an ID
    # that OpenImageIO's own colour config does not know (a show's, a camera log's) was dropped.
    monkeypatch.setenv("OCIO", aces2_ocio_config)
    plate = np.clip(_plate(0), 0, 1)
    _write(tmp_path / "untagged.exr", plate, ["R", "G", "B"], "half")
    _write(tmp_path / "mistagged.exr", plate, ["R", "G", "B"], "half", {"oiio:ColorSpace": "lin_rec709_scene"})
    _write(tmp_path / "show.exr", plate, ["R", "G", "B"], "half", {"colorInteropID": "show:lin_plate_scene"})
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    args = ["matte", "--trimap", str(tmp_path / "trimap.png"), "--weights", str(small_bundle.path), "--no-progress"]
    for name, colour, expected in (("untagged.exr", "ACEScg", "lin_ap1_scene"), ("mistagged.exr", "lin_ap1", "lin_ap1_scene"),
                                   ("untagged.exr", "ARRI LogC4", "ocio:arrilogc4_awg4_scene"),
                                   ("mistagged.exr", "linear", "lin_rec709_scene"), ("untagged.exr", "linear", None),
                                   ("show.exr", "linear", "show:lin_plate_scene")):
        out = tmp_path / f"out_{colour}_{name}"
        assert cli.main([*args, "--plate", str(tmp_path / name), "--out", str(out), "--colour", colour]) == 0
        assert read_image(out).info.attribute("colorInteropID") == expected, (name, colour)


def test_auto_on_a_plate_whose_header_says_another_colourspace_warns(tmp_path: Path, small_bundle, untrained_ok,
                                                                            capsys) -> None:
    # An ACEScg EXR says so in its header (OpenImageIO's colorInteropID, EXR's chromaticities); auto
    # reads it as linear Rec.709 (as Nuke's Read does) and the networks saw AP1 values as Rec.709
    # without a word. Linear Rec.709 tags, and a colour named on the command line, say nothing.
    plate = np.clip(_plate(0), 0, 1)
    ap1 = [0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767]
    _write(tmp_path / "tagged.exr", plate, ["R", "G", "B"], "half", {"oiio:ColorSpace": "ACEScg"})
    out = oiio.ImageOutput.create(str(tmp_path / "chroma.exr"))
    spec = oiio.ImageSpec(W, H, 3, oiio.HALF)
    spec.attribute("chromaticities", oiio.TypeDesc("float[8]"), ap1)
    assert out.open(str(tmp_path / "chroma.exr"), spec) and out.write_image(plate)
    out.close()
    _write(tmp_path / "linear.exr", plate, ["R", "G", "B"], "half", {"oiio:ColorSpace": "lin_rec709_scene"})
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    args = ["matte", "--trimap", str(tmp_path / "trimap.png"), "--weights", str(small_bundle.path), "--no-progress"]
    for name, said in (("tagged.exr", "colorInteropID 'lin_ap1_scene'"), ("chroma.exr", "chromaticities 0.713, 0.293"),
                       ("linear.exr", None)):
        assert cli.main([*args, "--plate", str(tmp_path / name), "--out", str(tmp_path / f"out_{name}")]) == 0
        lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("WARNING:")]
        if said is None:
            assert lines == []
        else:
            assert len(lines) == 1 and f"plate {tmp_path / name}: its header says its colours are not linear " \
                f"Rec.709 ({said}" in lines[0] and "--colour auto reads a float file as linear Rec.709" in lines[0]
    # An integer file auto reads as sRGB whose DPX header says linear: its values were linearised twice.
    _write(tmp_path / "linear.dpx", plate, ["R", "G", "B"], "uint16",
           {"oiio:BitsPerSample": 10, "oiio:ColorSpace": "lin_rec709_scene"})
    assert cli.main([*args, "--plate", str(tmp_path / "linear.dpx"), "--out", str(tmp_path / "out_dpx.exr")]) == 0
    assert (f"WARNING: frame -: plate {tmp_path / 'linear.dpx'}: its header says its values are linear (dpx:Transfer "
            "'Linear'), but --colour auto reads an integer file as sRGB: name its colourspace with --colour (linear"
            ) in capsys.readouterr().out
    assert cli.main([*args, "--plate", str(tmp_path / "tagged.exr"), "--out", str(tmp_path / "named.exr"),
                     "--colour", "linear"]) == 0
    assert "WARNING" not in capsys.readouterr().out


def test_auto_names_the_colourspace_a_plates_tag_names_in_the_ocio_config(tmp_path: Path, small_bundle, untrained_ok,
                                                                           capsys, monkeypatch: pytest.MonkeyPatch, aces2_ocio_config: str) -> None:
    # An ARRI LogC4 EXR (colorInteropID ocio:arrilogc4_awg4_scene) matted under auto was told to name
    # "ACEScg for ACES AP1": wrong advice for a log plate, when $OCIO's config says which space it is.
    monkeypatch.setenv("OCIO", aces2_ocio_config)
    plate = np.clip(_plate(0), 0, 1)
    _write(tmp_path / "logc4.exr", plate, ["R", "G", "B"], "half", {"colorInteropID": "ocio:arrilogc4_awg4_scene"})
    _write(tmp_path / "ap1.exr", plate, ["R", "G", "B"], "half", {"colorInteropID": "lin_ap1_scene"})
    _write(tmp_path / "show.exr", plate, ["R", "G", "B"], "half", {"colorInteropID": "show:plate_log"})
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    args = ["matte", "--trimap", str(tmp_path / "trimap.png"), "--weights", str(small_bundle.path), "--no-progress"]
    for name, named in (("logc4.exr", "('ARRI LogC4', the colourspace of $OCIO's config it names)"),
                        ("ap1.exr", "('ACEScg', the colourspace of $OCIO's config it names)"),
                        ("show.exr", "(ACEScg for ACES AP1, with $OCIO set)")):
        assert cli.main([*args, "--plate", str(tmp_path / name), "--out", str(tmp_path / f"out_{name}")]) == 0
        lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("WARNING:")]
        assert len(lines) == 1 and lines[0].endswith(f"name its colourspace with --colour {named}"), lines


def test_a_colourspace_whose_lut_is_missing_is_a_usage_error_before_any_frame(tmp_path: Path, small_bundle,
                                                                              capsys, monkeypatch) -> None:
    # --colour passed its check and every frame failed in turn at OpenColorIO's conversion.
    (tmp_path / "config.ocio").write_text(
        "ocio_profile_version: 2\nroles: {default: lin, scene_linear: lin}\ndisplays: {sRGB: [!<View> {name: Raw, "
        "colorspace: lin}]}\ncolorspaces:\n  - !<ColorSpace> {name: lin}\n  - !<ColorSpace> {name: sRGB - Texture, "
        "to_scene_reference: !<ExponentWithLinearTransform> {gamma: 2.4, offset: 0.055}}\n"
        "  - !<ColorSpace> {name: cam_log, to_scene_reference: !<FileTransform> {src: luts/cam.cube}}\n")
    monkeypatch.setenv("OCIO", str(tmp_path / "config.ocio"))
    _write(tmp_path / "plate.exr", np.clip(_plate(0), 0, 1), ["R", "G", "B"], "half")
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    assert cli.main(["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "out.exr"), "--weights", str(small_bundle.path), "--no-progress",
                     "--colour", "cam_log"]) == cli.EXIT_USAGE
    out = capsys.readouterr().out
    assert "ERROR: --colour cam_log: OpenColorIO cannot convert 'cam_log' to 'sRGB - Texture': " in out
    assert "cam.cube" in out and not (tmp_path / "out.exr").exists()
    assert cli.main(["fingerprint", "--weights", str(small_bundle.path), "--colour", "cam_log"]) == cli.EXIT_USAGE
    said = capsys.readouterr()  # fingerprint's stdout is its JSON alone
    assert said.out == "" and "ERROR: --colour: OpenColorIO cannot convert 'cam_log'" in said.err


def test_a_log_dpx_is_not_matted_as_srgb_under_auto(tmp_path: Path, small_bundle, untrained_ok, capsys) -> None:
    # A film scan's DPX says it is log-encoded (dpx:Transfer 'Logarithmic'); auto took every integer
    # file as sRGB, so its log values were matted as sRGB and 'linearised' into the EXR without a word.
    plate = np.clip(_plate(0), 0, 1)
    _write(tmp_path / "scan.dpx", plate, ["R", "G", "B"], "uint16",
           {"oiio:BitsPerSample": 10, "oiio:ColorSpace": "KodakLog"})
    _write(tmp_path / "video.dpx", plate, ["R", "G", "B"], "uint16", {"oiio:BitsPerSample": 10})
    assert read_image(tmp_path / "scan.dpx").info.attribute("dpx:Transfer") == "Logarithmic"
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    args = ["matte", "--trimap", str(tmp_path / "trimap.png"), "--weights", str(small_bundle.path), "--no-progress"]
    assert cli.main([*args, "--plate", str(tmp_path / "scan.dpx"), "--out", str(tmp_path / "scan.exr")]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'scan.dpx'} is log-encoded (dpx:Transfer 'Logarithmic'): --colour auto" in out
    assert "name the plate's encoding with --colour" in out
    assert not (tmp_path / "scan.exr").exists()
    # Named, it is matted as asked; a DPX that does not say log is sRGB under auto, as before.
    assert cli.main([*args, "--plate", str(tmp_path / "scan.dpx"), "--out", str(tmp_path / "scan.exr"),
                     "--colour", "srgb"]) == 0
    assert cli.main([*args, "--plate", str(tmp_path / "video.dpx"), "--out", str(tmp_path / "video.exr")]) == 0


def test_float_help_says_what_half_float_does_with_a_value_beyond_its_range() -> None:
    # The help named half float's 65504 but not what becomes of a highlight beyond it (the test
    # above: written as 65504, with a warning), which decides whether a shot needs --float.
    matte = next(a for a in cli.build_parser("matte")._actions if a.dest == "command").choices["matte"]
    text = " ".join(next(a for a in matte._actions if a.dest == "float_exr").help.split())
    assert "is written as ±65504 with a WARNING, never as inf" in text


def test_an_untagged_dpx_under_auto_warns_that_nukes_read_takes_it_as_log(tmp_path: Path, small_bundle, untrained_ok,
                                                                           capsys) -> None:
    # A DPX whose header names no encoding was matted as sRGB without a word, where Nuke's Read
    # takes a DPX as Cineon log by default: the node (which bakes what the Read made) and the
    # command line could disagree on the same file. One tagged Rec.709, or a colour named, says nothing.
    plate = np.clip(_plate(0), 0, 1)
    _write(tmp_path / "untagged.dpx", plate, ["R", "G", "B"], "uint16", {"oiio:BitsPerSample": 10})
    _write(tmp_path / "video.dpx", plate, ["R", "G", "B"], "uint16",
           {"oiio:BitsPerSample": 10, "oiio:ColorSpace": "srgb_rec709_scene"})
    assert read_image(tmp_path / "untagged.dpx").info.attribute("dpx:Transfer") == "Undefined"
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    args = ["matte", "--trimap", str(tmp_path / "trimap.png"), "--weights", str(small_bundle.path), "--no-progress"]
    assert cli.main([*args, "--plate", str(tmp_path / "untagged.dpx"), "--out", str(tmp_path / "a.exr")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("WARNING:")]
    assert lines == [f"WARNING: frame -: plate {tmp_path / 'untagged.dpx'}: a DPX whose header names no encoding "
                     "(dpx:Transfer 'Undefined'), read as sRGB by --colour auto; Nuke's Read reads a DPX as Cineon log "
                     "by default (the project's 'log files' setting; with an OCIO config, as its file rules say): if the "
                     "plate is log, name its colourspace with --colour (Cineon in Nuke's default OCIO config, $OCIO set)"]
    for name, extra in (("untagged.dpx", ["--colour", "srgb"]), ("video.dpx", [])):
        assert cli.main([*args, "--plate", str(tmp_path / name), "--out", str(tmp_path / "b.exr"), *extra]) == 0
        assert "WARNING" not in capsys.readouterr().out
        (tmp_path / "b.exr").unlink()


# -- premultiplied and unpremultiplied output ------------------------------------------------------
def test_unpremultiplied_exr_holds_fg_in_rgb(shot: Path, small_bundle, untrained_ok) -> None:
    assert _matte(shot, small_bundle, "--frames", "1001", out="pre/m.####.exr") == 0
    assert _matte(shot, small_bundle, "--frames", "1001", "--unpremultiply", out="straight/m.####.exr") == 0
    pre, straight = read_image(shot / "pre" / "m.1001.exr"), read_image(shot / "straight" / "m.1001.exr")
    fg = np.dstack([straight.channel(f"fg.{c}") for c in "RGB"])
    alpha = straight.channel("A")
    # the same matte either way; only RGB differs: F (straight) or F·alpha (premultiplied)
    np.testing.assert_array_equal(alpha, pre.channel("A"))
    np.testing.assert_array_equal(fg, np.dstack([pre.channel(f"fg.{c}") for c in "RGB"]))
    np.testing.assert_array_equal(np.dstack([straight.channel(c) for c in "RGB"]), fg)
    unknown = (alpha > 0) & (alpha < 1)
    assert unknown.any()
    rgb_pre = np.dstack([pre.channel(c) for c in "RGB"])
    np.testing.assert_allclose(rgb_pre, _half(fg * alpha[..., None]), rtol=2e-3, atol=1e-3)
    assert (np.abs(rgb_pre - fg)[unknown] > 1e-3).any()  # the two outputs do differ in the band
    plate = read_image(shot / "plate.1001.exr").rgb()
    fg_known = _trimap(0) == 1.0
    np.testing.assert_array_equal(rgb_pre[fg_known], plate[fg_known])  # 2.5 kept, not clipped


def test_float_writes_a_32_bit_exr_that_keeps_values_beyond_half(tmp_path: Path, small_bundle, untrained_ok,
                                                                  capsys) -> None:
    # Half float (the default) holds up to 65504: a sun at 1e5 was clamped, and no flag asked for more.
    plate = _plate(0)
    plate[H // 2, W // 2] = 1e5  # known foreground (the trimap's centre)
    _write(tmp_path / "plate.exr", plate, ["R", "G", "B"], "float")
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    args = ["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.png"),
            "--weights", str(small_bundle.path), "--no-progress"]
    assert cli.main([*args, "--out", str(tmp_path / "float.exr"), "--float"]) == 0
    img = read_image(tmp_path / "float.exr")
    assert img.info.pixel_type == "float"
    assert img.channel("fg.R")[H // 2, W // 2] == 1e5 and img.channel("R")[H // 2, W // 2] == 1e5
    capsys.readouterr()
    assert cli.main([*args, "--out", str(tmp_path / "half.exr")]) == 0
    assert read_image(tmp_path / "half.exr").channel("fg.R")[H // 2, W // 2] == 65504.0
    assert "beyond half float" in capsys.readouterr().out
    assert cli.main([*args, "--out", str(tmp_path / "m.png"), "--float"]) == 2
    assert f"ERROR: --float: only an EXR --out is written in float, not {tmp_path / 'm.png'}" in capsys.readouterr().out
    assert not (tmp_path / "m.png").exists()

# -- overscan and data windows --------------------------------------------------------------------
def _write_windowed(path: Path, pixels: np.ndarray, channels: list[str], data: tuple[int, int],
                    display: tuple[int, int, int, int], fmt: str = "half") -> None:
    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, oiio.TypeDesc(fmt))
    spec.x, spec.y = data
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = display
    spec.channelnames = tuple(channels)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    assert out.write_image(np.ascontiguousarray(pixels, dtype=np.float32))
    out.close()


def _read_data_window(path: Path) -> tuple[oiio.ImageSpec, dict[str, np.ndarray]]:
    """The file's own data window, channel by channel, as OIIO stores it (no reframing)."""
    inp = oiio.ImageInput.open(str(path))
    spec = inp.spec()
    px = inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT)
    inp.close()
    return spec, {name: px[..., i] for i, name in enumerate(spec.channelnames)}


WINDOWS = {
    # data window (x, y, width, height) against the W x H display window at the origin
    "larger": (-6, -4, W + 12, H + 8),    # overscan on every side
    "smaller": (8, 5, 40, 30),            # a tight bounding box inside the format
    "offset": (-5, 3, W - 2, H - 10),     # beyond the left edge, short of the right and bottom
}


@pytest.mark.parametrize("case", sorted(WINDOWS))
def test_data_windows_round_trip(case: str, tmp_path: Path, small_bundle, untrained_ok) -> None:
    x0, y0, dw, dh = WINDOWS[case]
    yy, xx = np.mgrid[y0:y0 + dh, x0:x0 + dw].astype(np.float32)
    # Scene-linear plate over its data window, > 1 in places; nothing in it is 0.
    plate = _half(np.dstack([0.2 + 0.05 * (xx - x0), 0.1 + 0.02 * (yy - y0), np.full_like(xx, 0.3)]))
    # Trimap over the same data window, in plate coordinates: FG left of x = 10, unknown to x = 20, BG after.
    trimap = np.where(xx < 10, 1.0, np.where(xx < 20, 0.5, 0.0)).astype(np.float32)[..., None]
    _write_windowed(tmp_path / "plate.exr", plate, ["R", "G", "B"], (x0, y0), (0, 0, W, H))
    _write_windowed(tmp_path / "trimap.exr", trimap, ["Y"], (x0, y0), (0, 0, W, H))
    assert cli.main(["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.exr"),
                     "--out", str(tmp_path / "out.exr"), "--write-trimap", str(tmp_path / "used.exr"),
                     "--weights", str(small_bundle.path), "--device", "cpu", "--no-progress"]) == 0
    for name in ("out.exr", "used.exr"):
        spec, _ = _read_data_window(tmp_path / name)
        assert (spec.x, spec.y, spec.width, spec.height) == (x0, y0, dw, dh), name
        assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (0, 0, W, H), name
    _, out = _read_data_window(tmp_path / "out.exr")
    _, used = _read_data_window(tmp_path / "used.exr")
    np.testing.assert_array_equal(used["R"], trimap[..., 0])  # every pixel of the data window, overscan too
    fg_known, bg_known = trimap[..., 0] == 1.0, trimap[..., 0] == 0.0
    assert (out["A"][fg_known] == 1.0).all() and (out["A"][bg_known] == 0.0).all()
    for i, c in enumerate("RGB"):
        np.testing.assert_array_equal(out[c][fg_known], plate[..., i][fg_known])  # matted, never black
        np.testing.assert_array_equal(out[f"bg.{c}"][bg_known], plate[..., i][bg_known])  # passed through
        assert (out[c][bg_known] == 0.0).all()
    outside = (xx < 0) | (yy < 0) | (xx >= W) | (yy >= H)
    if case != "smaller":
        assert outside.any() and (out["A"][outside & fg_known] == 1.0).all()
        assert (out["R"][outside & fg_known] > 0.1).all() and (out["bg.R"][outside & bg_known] > 0.1).all()


def test_overscan_plate_with_a_format_sized_trimap_and_png_output(tmp_path: Path, small_bundle, untrained_ok) -> None:
    # The trimap (a PNG) covers only the format: the plate's overscan is background there, its
    # colour passed through in the bg layer; a PNG result holds the format (no windows in PNG).
    x0, y0, dw, dh = WINDOWS["larger"]
    plate = np.full((dh, dw, 3), 0.5, np.float32)
    _write_windowed(tmp_path / "plate.exr", plate, ["R", "G", "B"], (x0, y0), (0, 0, W, H))
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    args = ["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.png"),
            "--weights", str(small_bundle.path), "--device", "cpu", "--no-progress"]
    assert cli.main(args + ["--out", str(tmp_path / "out.exr")]) == 0
    spec, out = _read_data_window(tmp_path / "out.exr")
    assert (spec.x, spec.y, spec.width, spec.height) == (x0, y0, dw, dh)
    overscan = np.ones((dh, dw), bool)
    overscan[-y0:-y0 + H, -x0:-x0 + W] = False
    assert (out["A"][overscan] == 0.0).all() and (out["bg.G"][overscan] == 0.5).all()
    assert cli.main(args + ["--out", str(tmp_path / "out.png")]) == 0
    assert read_image(tmp_path / "out.png").pixels.shape == (H, W, 4)


def test_an_anamorphic_plate_is_matted_as_stored_and_its_header_carried(tmp_path: Path, small_bundle,
                                                                        untrained_ok) -> None:
    # As the README says: a 2:1 anamorphic plate with overscan, as Nuke's Write bakes it, is matted
    # pixel for pixel as stored (no desqueeze), and its pixel aspect reaches the EXR (with its
    # windows), DPX, TIFF and PNG results and the trimap --write-trimap writes (which the node's
    # 'show trimap' reads), so Nuke's Read gives them the plate's format; its time code and frame
    # rate (OpenEXR's framesPerSecond) reach the EXR and the DPX.
    x0, y0, dw, dh = WINDOWS["larger"]
    yy, xx = np.mgrid[y0:y0 + dh, x0:x0 + dw].astype(np.float32)
    plate = _half(np.dstack([0.2 + 0.01 * (xx - x0), 0.1 + 0.02 * (yy - y0), np.full_like(xx, 0.3)]))
    spec = oiio.ImageSpec(dw, dh, 3, oiio.HALF)
    spec.x, spec.y, spec.full_width, spec.full_height = x0, y0, W, H
    spec.channelnames = ("R", "G", "B")
    spec.attribute("PixelAspectRatio", 2.0)
    spec.attribute("smpte:TimeCode", oiio.TypeDesc("timecode"), (0x01020304, 0))
    spec.attribute("framesPerSecond", oiio.TypeDesc("rational"), (24000, 1001))
    out = oiio.ImageOutput.create(str(tmp_path / "plate.exr"))
    assert out.open(str(tmp_path / "plate.exr"), spec) and out.write_image(plate) and out.close()
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    args = ["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.png"),
            "--weights", str(small_bundle.path), "--device", "cpu", "--no-progress"]
    for name in ("out.exr", "out.dpx", "out.tif", "out.png"):
        trimap_out = tmp_path / ("trimap_" + name)
        assert cli.main(args + ["--out", str(tmp_path / name), "--write-trimap", str(trimap_out)]) == 0
        for path in (tmp_path / name, trimap_out):
            written, layers = _read_data_window(path)
            assert written.get_float_attribute("PixelAspectRatio") == 2.0, path.name
            assert (written.full_width, written.full_height) == (W, H), path.name  # not desqueezed to 2W
        written, layers = _read_data_window(tmp_path / name)
        if name == "out.exr":
            assert (written.x, written.y, written.width, written.height) == (x0, y0, dw, dh)
            assert written.getattribute("framesPerSecond") == (24000, 1001)
            np.testing.assert_array_equal(layers["bg.G"][0], plate[0, :, 1])  # overscan, BG: passed through
        if name in ("out.exr", "out.dpx"):
            assert written.getattribute("smpte:TimeCode") == (0x01020304, 0), name
        if name == "out.dpx":
            assert written.get_float_attribute("dpx:FrameRate") == pytest.approx(24000 / 1001, abs=1e-4)


def test_the_result_says_it_was_made_by_lbsmatte_with_which_weights_and_settings(tmp_path: Path, small_bundle,
                                                                                   untrained_ok) -> None:
    # The plate's Software (the package that wrote the plate) was copied onto the matte, which then
    # claimed to be a Nuke render; nothing said LBSMatte, its version or its weights made it. A plate
    # that is an earlier result must not pass that run's record on either.
    import json

    from core import __version__

    _write(tmp_path / "plate.exr", _plate(0), ["R", "G", "B"], "half",
           {"Software": "Nuke 15.1v3", "lbsmatte/weights": "old", "lbsmatte/version": "0.0.1", "owner": "sh010"})
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    args = ["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.png"),
            "--weights", str(small_bundle.path), "--device", "cpu", "--precision", "fp32", "--no-progress"]
    for name in ("out.exr", "out.png", "out.dpx", "out.tif"):
        assert cli.main(args + ["--out", str(tmp_path / name)]) == 0
        info = read_image(tmp_path / name).info
        assert info.attribute("Software") == f"LBSMatte {__version__}", name
    info = read_image(tmp_path / "out.exr").info
    assert info.attribute("Copyright") == "sh010"  # the plate's own facts stay
    assert info.attribute("lbsmatte/version") == __version__
    assert info.attribute("lbsmatte/weights") == small_bundle.name
    assert info.attribute("lbsmatte/bundle_sha256") == small_bundle.manifest_sha256()  # as 'lbsmatte fingerprint'
    settings = json.loads(info.attribute("lbsmatte/settings"))
    assert (settings["device"], settings["precision"], settings["colour"]) == ("cpu", "fp32", "linear")
    assert settings["premultiplied"] is True and "rounds" in settings["refinement"]
    # the bundle's folder, a user's path, is named nowhere in the header
    assert not [n for n, _, v in info.metadata if str(small_bundle.path) in str(v)]


def test_the_headers_settings_are_this_runs_as_resolved() -> None:
    # Each field of lbsmatte/settings is what this run used (a Nuke cache and a pipeline script read
    # them): not a default in place of the flag given.
    import argparse
    import json
    from types import SimpleNamespace

    import torch

    from core import __version__
    from core.compositing import Settings

    bundle = SimpleNamespace(name="abc_v1", path="/shows/abc/lbsmatte_weights/abc_v1",
                             manifest_sha256=lambda: "f" * 64)
    matter = SimpleNamespace(bundle=bundle, device=torch.device("cpu"), precision="bf16", fg_solve=0.5,
                             refinement=Settings(rounds=2, knn=0.25), match_exposure=False)
    args = argparse.Namespace(trimap_channel="red", plate_layer="beauty", edge=7)
    records = cli._provenance(matter, args, "srgb", False)
    assert [(name, kind) for name, kind, _ in records] == [
        ("Software", "string"), ("lbsmatte/version", "string"), ("lbsmatte/weights", "string"),
        ("lbsmatte/bundle_sha256", "string"), ("lbsmatte/settings", "string")]
    values = {name: value for name, _, value in records}
    assert values["Software"] == f"LBSMatte {__version__}" and values["lbsmatte/version"] == __version__
    assert values["lbsmatte/weights"] == "abc_v1" and values["lbsmatte/bundle_sha256"] == "f" * 64
    assert json.loads(values["lbsmatte/settings"]) == {
        "device": "cpu", "precision": "bf16", "colour": "srgb", "premultiplied": False, "fg_solve": 0.5,
        "refinement": Settings(rounds=2, knn=0.25).applied(), "trimap_channel": "red", "plate_layer": "beauty", "edge": 7,
        "match_exposure": False}
    # --weights none has no bundle to hash: no bundle_sha256, the rest as ever
    matter.bundle = SimpleNamespace(name="none")
    assert [name for name, _, _ in cli._provenance(matter, args, "linear", True)] == [
        "Software", "lbsmatte/version", "lbsmatte/weights", "lbsmatte/settings"]


def test_the_results_settings_name_only_the_refinement_that_ran(tmp_path: Path) -> None:
    # With --rounds 0 the header listed the bundle's levels (black_point 0.06, white_point 0.92) and
    # KNN term (knn 0.01, knn_band 32, ...), which no round applied: a TD reading the header took the
    # matte for a levelled, KNN-refined one.
    import json

    from core.compositing import KNN_SEARCH_SETTINGS, LAYER_SETTINGS, ROUND_SETTINGS

    _write(tmp_path / "plate.exr", _plate(0), ["R", "G", "B"], "half")
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    base = ["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.png"),
            "--weights", "none", "--device", "cpu", "--precision", "fp32", "--no-progress"]

    def refinement(name: str, *flags: str) -> dict:
        assert cli.main(base + ["--out", str(tmp_path / name), *flags]) == 0
        return json.loads(read_image(tmp_path / name).info.attribute("lbsmatte/settings"))["refinement"]

    # the bundle's record (the default bundle's, which --weights none refines with): levels and KNN
    full = refinement("rounds.exr")
    assert full["rounds"] >= 1 and full["knn"] > 0 and full["black_point"] > 0
    assert set(ROUND_SETTINGS) | set(LAYER_SETTINGS) <= set(full)
    none = refinement("none.exr", "--rounds", "0")
    assert none == {name: value for name, value in full.items() if name not in ROUND_SETTINGS} | {"rounds": 0}
    assert set(LAYER_SETTINGS) <= set(none)  # the layers are still solved for the networks' alpha
    no_knn = refinement("no_knn.exr", "--knn", "0")
    assert no_knn["knn"] == 0 and not set(KNN_SEARCH_SETTINGS) & set(no_knn)
    assert no_knn["black_point"] == full["black_point"]  # the levels still applied
    # --fg-solve 0: the networks' colours as they are, no layers solved either
    assert refinement("as_is.exr", "--rounds", "0", "--fg-solve", "0") == {"rounds": 0}


def test_a_multi_part_plates_metadata_is_its_first_parts_as_nuke_writes_it(tmp_path: Path, small_bundle,
                                                                          untrained_ok) -> None:
    # Nuke's Write (a part per layer, parts in the layers' order: depth before rgba) puts the
    # metadata in the first part only, and its Read shows that part's: the matte of the rgba part
    # had lost the plate's frame rate, nuke/* and camera keys.
    x0, y0, dw, dh = WINDOWS["larger"]
    specs = []
    for name, channels, data_type in (("depth.main", ("depth.Z",), "float"), ("rgba.main", ("R", "G", "B", "A"), "half")):
        spec = oiio.ImageSpec(dw, dh, len(channels), data_type)
        spec.x, spec.y, spec.full_width, spec.full_height = x0, y0, W, H
        spec.channelnames = channels
        spec.attribute("name", name)
        spec.attribute("PixelAspectRatio", 2.0)
        specs.append(spec)
    specs[0].attribute("framesPerSecond", oiio.TypeDesc("rational"), (24000, 1001))
    specs[0].attribute("nuke/node_hash", "5e1f0c2a")
    specs[0].attribute("arri/lens", "Master Prime 32mm")
    path = str(tmp_path / "plate.exr")
    out = oiio.ImageOutput.create(path)
    assert out.open(path, specs) and out.write_image(np.full((dh, dw, 1), 9.0, np.float32))
    assert out.open(path, specs[1], "AppendSubimage") and out.write_image(np.full((dh, dw, 4), 0.5, np.float32))
    assert out.close()
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    assert cli.main(["matte", "--plate", path, "--trimap", str(tmp_path / "trimap.png"), "--out",
                     str(tmp_path / "out.exr"), "--weights", str(small_bundle.path), "--device", "cpu",
                     "--no-progress"]) == 0
    written, layers = _read_data_window(tmp_path / "out.exr")
    assert written.getattribute("framesPerSecond") == (24000, 1001)
    assert written.getattribute("nuke/node_hash") == "5e1f0c2a"
    assert written.getattribute("arri/lens") == "Master Prime 32mm"
    assert written.get_float_attribute("PixelAspectRatio") == 2.0
    assert (written.x, written.y, written.width, written.height) == (x0, y0, dw, dh)
    assert (layers["bg.R"][0] == 0.5).all()  # the rgba part's colour, not the depth part's 9


# -- a trimap from a rough matte: --edge -----------------------------------------------------------
def test_edge_makes_the_trimap_from_a_rough_matte(tmp_path: Path, small_bundle, untrained_ok) -> None:
    from core.trimap import trimap_from_matte

    _write(tmp_path / "plate.exr", _plate(0), ["R", "G", "B"], "half")
    rough = np.zeros((H, W), np.float32)
    rough[:, :28] = 1.0  # a straight vertical edge between columns 27 and 28
    rough[0:3, 0:4] = 0.3  # soft values below one half count as outside
    _write(tmp_path / "roto.png", np.dstack([np.zeros((H, W, 3)), rough]), ["R", "G", "B", "A"], "uint8")
    assert cli.main(["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "roto.png"),
                     "--out", str(tmp_path / "out.exr"), "--edge", "4", "--write-trimap", str(tmp_path / "t.exr"),
                     "--weights", str(small_bundle.path), "--device", "cpu", "--no-progress"]) == 0
    made = read_image(tmp_path / "t.exr").channel("R")
    expected = trimap_from_matte(read_image(tmp_path / "roto.png").pixels, 4, channels=["R", "G", "B", "A"])
    np.testing.assert_array_equal(made, expected)
    for row in made[10:]:  # away from the soft corner: a band 2·4 px wide, 4 each side of the edge
        assert np.flatnonzero(row == 0.5).tolist() == list(range(24, 32))
    alpha = read_image(tmp_path / "out.exr").channel("A")
    assert (alpha[made == 1.0] == 1.0).all() and (alpha[made == 0.0] == 0.0).all()
    assert made[1, 1] == 0.5  # 0.3 < 0.5: a hole, outside, with a band of its own (inside it would be 1)


def test_a_trimap_given_as_the_rough_matte_is_said_to_look_like_one(tmp_path: Path, small_bundle, untrained_ok,
                                                                   capsys) -> None:
    # --edge (the node's trimap input 'rough matte') with a trimap wired in: its unknown band is cut
    # into the inside and a band made around its outside, the band drawn by hand lost, without a word.
    yy, xx = np.mgrid[0:H, 0:W]
    soft = np.clip(1.2 - np.hypot(yy - H / 2, xx - W / 2) / 12, 0, 1).astype(np.float32)  # a blurred disc
    _write(tmp_path / "plate.exr", _plate(0), ["R", "G", "B"], "half")
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    _write(tmp_path / "soft.png", soft[..., None], ["Y"], "uint8")
    base = ["matte", "--plate", str(tmp_path / "plate.exr"), "--edge", "3", "--weights", str(small_bundle.path),
            "--device", "cpu", "--no-progress"]
    assert cli.main(base + ["--trimap", str(tmp_path / "trimap.png"), "--out", str(tmp_path / "a.exr")]) == 0
    out = capsys.readouterr().out
    assert (f"WARNING: frame -: rough matte {tmp_path / 'trimap.png'}: 20% of its pixels are mid grey, as a "
            "trimap's unknown band") in out and "without --edge" in out
    assert cli.main(base + ["--trimap", str(tmp_path / "soft.png"), "--out", str(tmp_path / "b.exr")]) == 0
    assert "WARNING" not in capsys.readouterr().out


def test_write_trimap_without_edge_is_the_normalised_trimap(tmp_path: Path, small_bundle, untrained_ok) -> None:
    _write(tmp_path / "plate.exr", _plate(0), ["R", "G", "B"], "half")
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    assert cli.main(["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "out.exr"), "--write-trimap", str(tmp_path / "t.png"),
                     "--weights", str(small_bundle.path), "--device", "cpu", "--no-progress"]) == 0
    t = read_image(tmp_path / "t.png")
    assert t.channels == ["R", "G", "B"]
    expected = np.where(_trimap(0) == 1.0, 1.0, np.where(_trimap(0) == 0.0, 0.0, 128 / 255))
    np.testing.assert_allclose(t.channel("G"), expected, atol=1e-6)


@pytest.mark.parametrize("value", ["0", "-2", "1.5", "wide", ""])
def test_bad_edge_is_a_usage_error(value: str, capsys) -> None:
    assert cli.main(["matte", "--plate", "p.exr", "--trimap", "t.exr", "--out", "o.exr", "--edge", value]) == 2
    err = capsys.readouterr().out
    assert "argument --edge: --edge takes a whole number of pixels > 0" in err and repr(value) in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--write-trimap", "{shot}/t.####.txt"], "--write-trimap {shot}/t.####.txt: unsupported extension '.txt'"),
        (["--write-trimap", "{shot}/t.exr"], "--write-trimap {shot}/t.exr names a single file but 3 frames"),
        (["--write-trimap", "{shot}/trimap.####.png"], "--write-trimap would overwrite an input: refusing to write "
                                                         "{shot}/trimap.1001.png"),
        (["--write-trimap", "{shot}/o.####.exr"], "--write-trimap {shot}/o.1001.exr is also where the matte goes (--out)"),
        (["--write-trimap", "{shot}/folder.png", "--frames", "1001"], "--write-trimap {shot}/folder.png is a folder"),
    ],
)
def test_write_trimap_usage_errors(shot: Path, argv: list[str], message: str, capsys) -> None:
    (shot / "folder.png").mkdir()
    before = (shot / "trimap.1001.png").read_bytes()
    base = ["matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
            "--out", str(shot / "o.####.exr"), "--weights", "no-such-bundle", "--no-progress"]
    assert cli.main(base + [a.format(shot=shot) for a in argv]) == 2
    assert message.format(shot=shot) in capsys.readouterr().out
    assert (shot / "trimap.1001.png").read_bytes() == before


def test_write_trimap_sequence_for_single_files_is_a_usage_error(shot: Path, capsys) -> None:
    # As --out out.####.exr is: without a frame to fill in, the token would name one file,
    # literally 't.####.png'.
    argv = ["matte", "--plate", str(shot / "plate.1001.exr"), "--trimap", str(shot / "trimap.1001.png"),
            "--out", str(shot / "o.exr"), "--write-trimap", str(shot / "t.####.png"), "--weights", "no-such-bundle",
            "--no-progress"]
    assert cli.main(argv) == 2
    assert (f"ERROR: --write-trimap {shot / 't.####.png'} is a frame sequence but the plate and trimap are single "
            "files") in capsys.readouterr().out
    assert not (shot / "t.####.png").exists() and not (shot / "o.exr").exists()


_FAULTS = """
import resource, sys
import numpy as np
from core.cli import keep_freed_memory
applied = keep_freed_memory()
np.ones(2**24)  # 128 MB, touched, then freed
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(2**24)  # the same size again
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
@pytest.mark.parametrize("setting", ["1", "0"])
def test_freed_memory_is_reused_without_page_faults(setting: str) -> None:
    """With the allocator keeping freed memory, a second 128 MB array lands in pages the process
    already has (no faults); with LBSMATTE_KEEP_FREED_MEMORY=0 it is faulted in afresh."""
    env = dict(os.environ, **{cli.KEEP_MEMORY_ENV: setting})
    done = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True, env=env,
                          cwd=Path(cli.__file__).resolve().parents[1], check=True)
    applied, faults = done.stdout.split()
    if setting == "1":
        assert applied == "True" and int(faults) < 20
    else:
        assert applied == "False" and int(faults) > 50  # 64 at least, with 2 MB pages


def test_help_and_weights_list_start_without_modules_they_never_use(tmp_path: Path) -> None:
    # Every lbsmatte command starts through main, which keeps freed memory (mallopt): it found the
    # C library with ctypes.util.find_library, importing subprocess and running ldconfig at each
    # start; nor do the commands that render nothing import torch, scipy or matplotlib.
    code = ("import contextlib, io, sys\nfrom core import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    codes = [cli.main(['--help']), cli.main(['weights', 'list'])]\n"
            "print(codes, sorted(m for m in ('ctypes.util', 'subprocess', 'torch', 'scipy', 'matplotlib', 'OpenImageIO')"
            " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "LBSMATTE_WEIGHTS_PATH": str(tmp_path)},
                          cwd=Path(cli.__file__).resolve().parents[1])
    assert done.stdout.split("\n")[-2] == "[0, 0] []", done.stdout + done.stderr


@pytest.mark.parametrize("value", ["0", "-3", "many", "10001"])
def test_bad_export_iterations_is_a_usage_error_in_the_flags_spelling(value: str, tmp_path: Path, capsys) -> None:
    assert cli.main(["export", "--out", str(tmp_path / "m.pt"), "--max-iterations", value]) == 2
    assert f"--max-iterations takes a whole number from 1 to 10000 (per round), not '{value}'" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGPIPE"), reason="no SIGPIPE on this platform")
def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    # `lbsmatte weights show default | head -1`: the pipe's reader is gone before anything is
    # written (closed at once; the process takes seconds to start), so the first write fails.
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "weights", "show", "default"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == ""  # 128 + SIGPIPE, as a Unix tool ends; no traceback


def test_ctrl_c_ends_with_130_and_one_error_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run_weights", interrupted)
    assert cli.main(["weights", "list"]) == 130
    assert capsys.readouterr().out.splitlines()[-1] == "ERROR: interrupted"


def test_a_soft_matte_given_as_the_trimap_is_said_to_look_like_one(tmp_path: Path, small_bundle, untrained_ok,
                                                                   capsys) -> None:
    plate = _plate(0)
    yy, xx = np.mgrid[0:H, 0:W]
    soft = np.clip(1.2 - np.hypot(yy - H / 2, xx - W / 2) / 12, 0, 1).astype(np.float32)  # a blurred disc
    _write(tmp_path / "plate.exr", plate, ["R", "G", "B"], "half")
    _write(tmp_path / "soft.png", soft[..., None], ["Y"], "uint8")
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    base = ["matte", "--plate", str(tmp_path / "plate.exr"), "--weights", str(small_bundle.path), "--device", "cpu",
            "--no-progress"]
    assert cli.main(base + ["--trimap", str(tmp_path / "soft.png"), "--out", str(tmp_path / "a.exr")]) == 0
    out = capsys.readouterr().out
    assert f"WARNING: frame -: trimap {tmp_path / 'soft.png'}: " in out and "grey levels a trimap does not use" in out
    assert "--edge PX makes the trimap from it" in out
    assert cli.main(base + ["--trimap", str(tmp_path / "trimap.png"), "--out", str(tmp_path / "b.exr")]) == 0
    assert "grey levels" not in capsys.readouterr().out
    # That trimap as the Nuke node bakes it from a Read of the PNG (linearised: its grey 0.216), and
    # as a Nuke Write stores a trimap's 0.5 in a PNG (188): no warning. Each was said to be a soft
    # matte, pointing the compositor to --edge (the node's rough matte).
    from core.colour import from_linear, to_linear

    _write(tmp_path / "baked.exr", np.repeat(to_linear(_trimap(0), "srgb")[..., None], 3, axis=2), ["R", "G", "B"],
           "half")
    _write(tmp_path / "written.png", from_linear(np.round(_trimap(0) * 2) / 2, "srgb")[..., None], ["Y"], "uint8")
    for name in ("baked.exr", "written.png"):
        assert cli.main(base + ["--trimap", str(tmp_path / name), "--out", str(tmp_path / "c.exr")]) == 0
        assert "grey levels" not in capsys.readouterr().out


def test_a_trimap_in_rgb_over_a_transparent_background_is_named(tmp_path: Path, small_bundle, untrained_ok,
                                                                capsys) -> None:
    # A trimap painted in RGB on a layer over transparency (alpha 0 in the background, 1 elsewhere):
    # --trimap-channel auto reads the varying alpha, which has no unknown pixel, and the matte came
    # back binary with only "trimap has no unknown pixels", naming neither the file nor the channel.
    trimap = _trimap(0)
    alpha = (trimap > 0).astype(np.float32)
    _write(tmp_path / "plate.exr", _plate(0), ["R", "G", "B"], "half")
    _write(tmp_path / "painted.png", np.dstack([trimap, trimap, trimap, alpha]), ["R", "G", "B", "A"], "uint8")
    base = ["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "painted.png"),
            "--weights", str(small_bundle.path), "--device", "cpu", "--no-progress"]
    assert cli.main(base + ["--out", str(tmp_path / "a.exr")]) == 0
    out = capsys.readouterr().out
    assert (f"WARNING: frame -: trimap {tmp_path / 'painted.png'}: --trimap-channel auto reads its alpha, which "
            f"varies but has no unknown pixel; its colour channels hold {int((trimap == 128 / 255).sum())}") in out
    assert "--trimap-channel red" in out
    assert cli.main(base + ["--out", str(tmp_path / "b.exr"), "--trimap-channel", "red"]) == 0
    assert "WARNING" not in capsys.readouterr().out
    # A roto in alpha with --edge: a binary alpha is what is expected
    assert cli.main(base + ["--out", str(tmp_path / "c.exr"), "--edge", "3"]) == 0
    assert "WARNING" not in capsys.readouterr().out


def test_a_roto_read_through_its_black_colour_is_named(tmp_path: Path, small_bundle, untrained_ok, capsys) -> None:
    # A Roto's output (its shape in alpha, its colour black) given with --trimap-channel red, kept from
    # a painted trimap: every pixel background, and the only word was "trimap has no unknown pixels".
    trimap = _trimap(0)
    roto = np.dstack([np.zeros_like(trimap)] * 3 + [trimap])
    _write(tmp_path / "plate.exr", _plate(0), ["R", "G", "B"], "half")
    _write(tmp_path / "roto.exr", roto, ["R", "G", "B", "A"], "half")
    base = ["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "roto.exr"),
            "--weights", str(small_bundle.path), "--device", "cpu", "--no-progress"]
    for channel, edge in (("red", []), ("luminance", ["--edge", "3"])):
        assert cli.main(base + ["--out", str(tmp_path / f"{channel}.exr"), "--trimap-channel", channel] + edge) == 0
        assert (f"WARNING: frame -: trimap {tmp_path / 'roto.exr'}: --trimap-channel {channel} reads a constant plane, "
                "but its alpha varies: a Roto's matte (its colour black)? --trimap-channel alpha (or auto) reads "
                "it") in capsys.readouterr().out
    for channel in ("auto", "alpha"):  # the alpha read: nothing to say
        assert cli.main(base + ["--out", str(tmp_path / f"{channel}.exr"), "--trimap-channel", channel]) == 0
        assert "reads a constant plane" not in capsys.readouterr().out


def test_negative_frames_as_a_farm_template_fills_them_in(tmp_path: Path, small_bundle, untrained_ok, capsys) -> None:
    # A farm fills in "--frames <START>-<END>"; for a shot at negative frames that is "--frames -2--1",
    # which argparse took for an option ("expected one argument", exit 2). nuke_plugin/batch.py
    # already takes it; so must the command line.
    for f in (-2, -1, 0):
        _write(tmp_path / f"plate.{f:04d}.exr", _plate(f + 2), ["R", "G", "B"], "half")
        _write(tmp_path / f"trimap.{f:04d}.png", _trimap(f + 2)[..., None], ["Y"], "uint8")
    for frames, done in (("-2--1", [-2, -1]), ("-1-0", [-1, 0]), ("-2", [-2])):
        out = tmp_path / frames / "m.####.exr"
        assert _matte(tmp_path, small_bundle, "--frames", frames, out=str(out)) == 0, capsys.readouterr().out
        lines = capsys.readouterr().out.splitlines()
        assert [line for line in lines if line.startswith("LBSMATTE PROGRESS")] == [
            f"LBSMATTE PROGRESS {f} {i}/{len(done)}" for i, f in enumerate(done, 1)]
        assert sorted(p.name for p in out.parent.iterdir()) == sorted(f"m.{f:04d}.exr" for f in done)
    # A value that is no frame range is still a usage error naming --frames.
    assert _matte(tmp_path, small_bundle, "--frames", "-x") == 2
    assert capsys.readouterr().out.startswith("ERROR: argument --frames: expected one argument")


def test_a_frame_computed_otherwise_than_asked_says_so_in_its_header(shot: Path, small_bundle, untrained_ok,
                                                                     monkeypatch, capsys) -> None:
    # The Nuke node's cache reads it (nuke_plugin.cache.degraded_frames) to compute the frame again
    # rather than keep it as what the settings give; a plate carrying one (an earlier result) does
    # not hand it on, and a frame computed as asked has none.
    from core.pipeline import Matter

    real_run = Matter._run
    calls: list[int] = []

    def run(self, *args, **kwargs):  # the second frame (1002) ran out of GPU memory in its refinement
        calls.append(1)
        out = real_run(self, *args, **kwargs)
        if len(calls) == 2:
            self.stats.degraded.append("refinement on the CPU (out of GPU memory)")
        return out

    monkeypatch.setattr(Matter, "_run", run)
    _write(shot / "plate.1001.exr", _plate(0), ["R", "G", "B"], "half", {cli.DEGRADED_ATTRIBUTE: "old news"})
    assert _matte(shot, small_bundle) == 0
    headers = [read_image(shot / f"out/matte.{f}.exr").info.attribute(cli.DEGRADED_ATTRIBUTE) for f in (1001, 1002, 1003)]
    assert headers == [None, "refinement on the CPU (out of GPU memory)", None]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX symbolic links")
def test_an_output_linked_into_a_missing_folder_fails_before_any_work(shot: Path, capsys) -> None:
    (shot / "out").mkdir()
    link = shot / "out" / "m.1001.exr"
    link.symlink_to(shot / "unmounted" / "m_v001.1001.exr")
    # The weights name is bogus too: the check of the link's folder must come first.
    code = cli.main(["matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
                     "--out", str(shot / "out" / "m.####.exr"), "--frames", "1001", "--weights", "no-such-bundle",
                     "--no-progress"])
    assert code == 1
    assert capsys.readouterr().out.splitlines() == [
        f"ERROR: cannot write {link} (a symbolic link to {shot}/unmounted/m_v001.1001.exr): the folder "
        f"{shot}/unmounted does not exist (a broken link?)"]
    assert not (shot / "unmounted").exists() and link.is_symlink()


def test_an_output_linked_out_of_a_read_only_folder_is_checked_where_it_is_written(shot: Path, monkeypatch,
                                                                                    capsys) -> None:
    # A show's folder of 'latest' links, read-only to artists, pointing into a writable versions
    # folder: the file written (and its lock) is the target, so only the target's folder counts.
    import core.io

    links, versions = shot / "latest", shot / "versions"
    links.mkdir()
    versions.mkdir()
    (links / "m.1001.exr").symlink_to(versions / "m_v001.1001.exr")
    real = core.io.check_writable_dir

    def read_only_links(folder):
        if Path(folder).resolve() == links.resolve():
            raise core.io.OutputError(f"the output folder {folder} is not writable")
        return real(folder)

    monkeypatch.setattr(core.io, "check_writable_dir", read_only_links)
    code = cli.main(["matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
                     "--out", str(links / "m.####.exr"), "--frames", "1001", "--weights", "no-such-bundle",
                     "--no-progress"])
    said = capsys.readouterr().out
    assert code == 1 and "not writable" not in said and "no-such-bundle" in said, said


def test_every_subcommand_exits_with_the_same_codes(shot: Path, small_bundle, untrained_ok, capsys) -> None:
    """One table for all (cli.exit_code): 2 the command line cannot be carried out as given (a bad
    value; an input it names missing; an output that is a folder or an input), found before any
    work; 1 the work, or what it needs, failed (a frame or an image that cannot be read mid-run: the
    others still done); 0 all done."""
    from core.demo import EXAMPLE

    data = shot / "set"
    for sub in ("image", "trimap", "alpha"):
        (data / sub).mkdir(parents=True)
    for f in (1001, 1002):
        _write(data / "image" / f"s{f}.png", np.clip(_plate(f - 1001), 0, 1), ["R", "G", "B"], "uint8")
        _write(data / "trimap" / f"s{f}.png", _trimap(f - 1001)[..., None], ["Y"], "uint8")
        _write(data / "alpha" / f"s{f}.png", (_trimap(f - 1001) > 0.6).astype(np.float32)[..., None], ["Y"], "uint8")
    (shot / "bad").mkdir()
    (shot / "bad" / "plate.1001.exr").write_bytes((shot / "plate.1001.exr").read_bytes()[:200])  # truncated
    (shot / "folder.pt").mkdir()
    matte = ["matte", "--trimap", str(shot / "trimap.####.png"), "--weights", str(small_bundle.path), "--device", "cpu",
             "--no-progress", "--out", str(shot / "o" / "m.####.exr"), "--frames", "1001", "--plate"]
    evaluate = ["evaluate", "--no-lbsmatte", "--baselines", "clustering", "--no-progress", str(data)]
    cases = [
        (matte + [str(shot / "plate.####.exr"), "--frames", "x"], 2),  # usage: a range that is none
        (matte[:-1] + ["--out", str(shot / "o.exr"), "--plate", str(shot / "gone.exr")], 2),  # input not there
        (matte + [str(shot / "bad" / "plate.####.exr")], 1),  # a frame that cannot be read: fails mid-run
        (matte + [str(shot / "plate.####.exr")], 0),
        (evaluate + ["--baselines", "nothing"], 2),
        (evaluate + ["--json", str(data / "image" / "s1001.png")], 2),  # would replace an input
        (["evaluate", "--no-progress", str(shot / "no-such-set")], 2),
        (evaluate + ["--names", "s1001"], 0),
        (["export", "--out", str(shot / "folder.pt")], 2),
        (["export", "--out", str(shot / "m.safetensors")], 2),
        (["export", "--out", str(shot / "m.pt"), "--weights", "no-such-bundle"], 1),
        (["demo", "--out", str(EXAMPLE), "--weights", "none"], 2),  # the example's own files are its inputs
        (["demo", "--out", str(shot / "plate.1001.exr"), "--weights", "none"], 1),  # not a folder: cannot write
        (["weights", "fetch"], 2),
        (["weights", "show", "no-such-bundle"], 1),
        (["weights", "list"], 0),
    ]
    for argv, code in cases:
        assert cli.main(argv) == code, (argv, capsys.readouterr().out)
        said = capsys.readouterr().out
        assert (code == 0) != ("ERROR:" in said), (argv, said)
    # A data set image that cannot be read fails mid-run (that image), the other is still scored.
    (data / "image" / "s1002.png").write_bytes(b"\x89PNG not really")
    assert cli.main(evaluate) == 1
    said = capsys.readouterr().out
    assert "ERROR:" in said and "s1002.png" in said
    assert not (EXAMPLE / "demo.exr").exists() and not (data / "image" / "s1001.png.json").exists()
def test_a_plate_with_alpha_below_1_is_matted_from_its_colour_with_a_warning(tmp_path: Path, small_bundle,
                                                                             untrained_ok, capsys) -> None:
    # An RGBA plate: its alpha is ignored (core.pipeline.plate_alpha_note), the known BG is the
    # colour as read, and the farm log says the plate was not opaque; an opaque one says nothing.
    plate = np.clip(_plate(0), 0, 1)
    trimap = _trimap(0)[..., None]
    _write(tmp_path / "trimap.png", trimap, ["Y"], "uint8")
    alpha = np.ones((H, W, 1), np.float32)
    _write(tmp_path / "opaque.exr", np.dstack([plate, alpha]), ["R", "G", "B", "A"], "float")
    alpha[:, :4] = 0.5
    _write(tmp_path / "holed.exr", np.dstack([plate, alpha]), ["R", "G", "B", "A"], "float")
    for name in ("opaque", "holed"):
        code = cli.main(["matte", "--plate", str(tmp_path / f"{name}.exr"), "--trimap", str(tmp_path / "trimap.png"),
                         "--out", str(tmp_path / f"{name}_matte.exr"), "--weights", str(small_bundle.path),
                         "--device", "cpu", "--no-progress"])
        assert code == 0
        out = capsys.readouterr().out
        assert ("WARNING: frame -: plate: its alpha channel is below 1 at 160 of 2240 pixel(s) (0 at 0); LBSMatte "
                "ignores the plate's alpha" in out) == (name == "holed"), out
    opaque, holed = read_image(tmp_path / "opaque_matte.exr"), read_image(tmp_path / "holed_matte.exr")
    np.testing.assert_array_equal(holed.pixels, opaque.pixels)
    bg = [holed.channels.index(c) for c in ("bg.R", "bg.G", "bg.B")]
    known = trimap[..., 0] == 0
    np.testing.assert_array_equal(holed.pixels[..., bg][known], plate[known].astype(np.float16))


def test_a_plate_of_only_an_alpha_channel_is_refused_not_matted_as_grey(tmp_path: Path, small_bundle,
                                                                        untrained_ok, capsys) -> None:
    # A matte (or the trimap) given as the plate, --plate and --trimap swapped: its one channel was
    # read as a grey plate and matted, with only the warning that the plate's alpha is below 1.
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    for name, channels in (("a", ["A"]), ("mask", ["mask.A"])):
        _write(tmp_path / f"{name}.exr", _trimap(0)[..., None], channels, "float")
        code = cli.main(["matte", "--plate", str(tmp_path / f"{name}.exr"), "--trimap", str(tmp_path / "trimap.png"),
                         "--out", str(tmp_path / f"{name}_matte.exr"), "--weights", str(small_bundle.path),
                         "--device", "cpu", "--no-progress"])
        out = capsys.readouterr().out
        assert code == 1
        assert (f"ERROR: frame -: plate {tmp_path / f'{name}.exr'} holds only an alpha channel ({channels[0]}): no "
                "colour to matte. Is it a matte or the trimap (--plate and --trimap swapped)?") in out, out
        assert not (tmp_path / f"{name}_matte.exr").exists()
    _write(tmp_path / "y.exr", np.clip(_plate(0), 0, 1)[..., :1], ["Y"], "float")  # a grey plate still mattes
    assert cli.main(["matte", "--plate", str(tmp_path / "y.exr"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "y_matte.exr"), "--weights", str(small_bundle.path),
                     "--device", "cpu", "--no-progress"]) == 0


def test_a_png_plate_with_alpha_is_matted_on_its_stored_colour_as_the_node_bakes_it(tmp_path: Path, small_bundle,
                                                                                   untrained_ok, capsys) -> None:
    # A PNG stores straight colour; Nuke's Read brings it in as stored and the node bakes that.
    # The CLI read it premultiplied by its alpha (OpenImageIO's default): where the alpha is 0.5
    # the plate was matted half as bright and the FG passed through the known FG was F·alpha.
    plate = np.clip(_plate(0), 0, 1)
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    alpha = np.ones((H, W, 1), np.float32)
    alpha[:, W // 2:] = 0.5  # through the disc: known FG, unknown band and BG at alpha 0.5
    _write(tmp_path / "opaque.png", plate, ["R", "G", "B"], "uint8")
    _write(tmp_path / "straight.png", np.dstack([plate, alpha]), ["R", "G", "B", "A"], "uint8",
           {"oiio:UnassociatedAlpha": 1})
    for name in ("opaque", "straight"):
        code = cli.main(["matte", "--plate", str(tmp_path / f"{name}.png"), "--trimap", str(tmp_path / "trimap.png"),
                         "--out", str(tmp_path / f"{name}_matte.exr"), "--weights", str(small_bundle.path),
                         "--device", "cpu", "--no-progress"])
        assert code == 0
        out = capsys.readouterr().out
        assert ("LBSMatte ignores the plate's alpha" in out) == (name == "straight"), out
    opaque, straight = read_image(tmp_path / "opaque_matte.exr"), read_image(tmp_path / "straight_matte.exr")
    np.testing.assert_array_equal(straight.pixels, opaque.pixels)
    fg = np.dstack([straight.channel(f"fg.{c}") for c in "RGB"])
    inside = (_trimap(0) == 1.0) & (alpha[..., 0] < 1)
    assert inside.any()
    opaque_fg = fg[(_trimap(0) == 1.0) & (alpha[..., 0] == 1)].mean(axis=0)  # the disc is one colour
    np.testing.assert_allclose(fg[inside], np.broadcast_to(opaque_fg, fg[inside].shape), atol=1e-3)


def test_plate_layer_takes_that_layers_alpha_for_the_plate_alpha_warning(tmp_path: Path, small_bundle,
                                                                         untrained_ok, capsys) -> None:
    # --plate-layer beauty mattes beauty.R G B: the alpha the warning is about is beauty.A (holed
    # here), not the file's A (opaque); before, any --plate-layer dropped the plate's alpha and the warning.
    plate = np.clip(_plate(0), 0, 1)
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    opaque, holed = np.ones((H, W, 1), np.float32), np.ones((H, W, 1), np.float32)
    holed[:, :4] = 0.5
    _write(tmp_path / "layered.exr", np.dstack([plate, opaque, plate, holed]),
           ["R", "G", "B", "A", "beauty.R", "beauty.G", "beauty.B", "beauty.A"], "float")
    warning = "WARNING: frame -: plate: its alpha channel is below 1 at 160 of 2240 pixel(s) (0 at 0)"
    for layer, warned in (("beauty", True), ("rgba", False), (None, False)):
        code = cli.main(["matte", "--plate", str(tmp_path / "layered.exr"), "--trimap", str(tmp_path / "trimap.png"),
                         "--out", str(tmp_path / f"{layer}.exr"), "--weights", str(small_bundle.path),
                         "--device", "cpu", "--no-progress", *(["--plate-layer", layer] if layer else [])])
        out = capsys.readouterr().out
        assert code == 0 and (warning in out) == warned, (layer, out)
    _write(tmp_path / "rgba.exr", np.dstack([plate, holed]), ["R", "G", "B", "A"], "float")
    assert cli.main(["matte", "--plate", str(tmp_path / "rgba.exr"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "rgba_out.exr"), "--weights", str(small_bundle.path), "--device", "cpu",
                     "--no-progress", "--plate-layer", "rgba"]) == 0
    assert warning in capsys.readouterr().out  # rgba is R G B, its alpha A


def test_a_gpu_the_machine_lacks_is_a_usage_error_for_matte_as_for_fingerprint(tmp_path: Path, small_bundle, untrained_ok,
                                                                              capsys, monkeypatch) -> None:
    # --device cuda:3 on a one-GPU machine is refused by name (core.pipeline.resolve_device, an
    # InputError): exit 2 for every command, as the README's table says; matte said 1.
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    _write(tmp_path / "plate.exr", _plate(0), ["R", "G", "B"], "half")
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    said = "ERROR: --device cuda:3: this machine has 1 CUDA GPU (cuda:0)"
    assert cli.main(["fingerprint", "--weights", str(small_bundle.path), "--device", "cuda:3"]) == 2
    assert said in capsys.readouterr().err  # stdout is fingerprint's JSON alone
    assert cli.main(["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "out.exr"), "--weights", str(small_bundle.path), "--device", "cuda:3",
                     "--no-progress"]) == 2
    assert said in capsys.readouterr().out and not (tmp_path / "out.exr").exists()


def test_a_size_mismatch_from_an_exif_orientation_says_so(tmp_path: Path, capsys) -> None:
    # A phone JPEG stored sideways with EXIF orientation 6, and a trimap painted over it upright in a
    # paint package (which turns it): the sizes differ by a quarter turn, and the error says why.
    _write(tmp_path / "plate.jpg", np.full((H, W, 3), 0.5, np.float32), ["R", "G", "B"], "uint8", {"Orientation": 6})
    _write(tmp_path / "trimap.png", np.full((W, H, 1), 0.5, np.float32), ["Y"], "uint8")
    assert read_image(tmp_path / "plate.jpg").info.turned and not read_image(tmp_path / "trimap.png").info.turned
    code = cli.main(["matte", "--plate", str(tmp_path / "plate.jpg"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "out.exr"), "--weights", "none", "--no-progress"])
    assert code == 1
    assert (f"ERROR: frame -: plate and trimap differ in size: plate {tmp_path / 'plate.jpg'} is {W}x{H}, trimap "
            f"{tmp_path / 'trimap.png'} is {H}x{W}; {tmp_path / 'plate.jpg'} carries an EXIF orientation that turns it "
            "a quarter turn in photo viewers and paint packages, but LBSMatte (like Nuke's Read) uses its pixels as "
            "stored: save it upright, without the orientation tag") in capsys.readouterr().out
    assert not (tmp_path / "out.exr").exists()
    # A turned plate whose trimap is not that quarter turn off: the orientation does not explain it.
    _write(tmp_path / "trimap.png", np.full((H, W + 1, 1), 0.5, np.float32), ["Y"], "uint8")
    code = cli.main(["matte", "--plate", str(tmp_path / "plate.jpg"), "--trimap", str(tmp_path / "trimap.png"),
                     "--out", str(tmp_path / "out.exr"), "--weights", "none", "--no-progress"])
    assert code == 1
    said = capsys.readouterr().out
    assert f"trimap {tmp_path / 'trimap.png'} is {W + 1}x{H}\n" in said and "EXIF" not in said, said


def test_float_takes_an_exr_out_in_any_case(shot: Path, capsys) -> None:
    # OUT.EXR is an EXR (as every other check reads the extension): --float is not a usage error;
    # the run goes on to load its weights (none here).
    code = cli.main(["matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
                     "--out", str(shot / "o.####.EXR"), "--float", "--weights", "no-such-bundle", "--no-progress"])
    said = capsys.readouterr().out
    assert code == 1 and "--float" not in said and "no-such-bundle" in said, said


def test_a_night_plate_says_its_exposure_scale_in_the_header_and_the_flag_turns_it_off(tmp_path: Path, small_bundle,
                                                                                       untrained_ok) -> None:
    # A plate 4 stops under (a night plate) is matted scaled up in linear light; the result's
    # header says by how much, and --no-match-exposure mattes it as it is. A plate at a normal
    # exposure has no such attribute.
    import json

    from core.cli import EXPOSURE_ATTRIBUTE

    night = (np.clip(_plate(0), 0, 1) / 64).astype(np.float32)
    _write(tmp_path / "night.exr", night, ["R", "G", "B"], "float")
    _write(tmp_path / "day.exr", _plate(0), ["R", "G", "B"], "float")
    _write(tmp_path / "trimap.png", _trimap(0)[..., None], ["Y"], "uint8")
    base = ["matte", "--trimap", str(tmp_path / "trimap.png"), "--weights", str(small_bundle.path), "--device", "cpu",
            "--precision", "fp32", "--no-progress"]
    assert cli.main(base + ["--plate", str(tmp_path / "night.exr"), "--out", str(tmp_path / "matched.exr")]) == 0
    assert cli.main(base + ["--plate", str(tmp_path / "night.exr"), "--out", str(tmp_path / "as_is.exr"),
                            "--no-match-exposure"]) == 0
    assert cli.main(base + ["--plate", str(tmp_path / "day.exr"), "--out", str(tmp_path / "day.exr.out.exr")]) == 0
    matched, as_is = read_image(tmp_path / "matched.exr"), read_image(tmp_path / "as_is.exr")
    assert matched.info.attribute(EXPOSURE_ATTRIBUTE) == pytest.approx(16.0)  # capped
    assert json.loads(matched.info.attribute("lbsmatte/settings"))["match_exposure"] is True
    assert as_is.info.attribute(EXPOSURE_ATTRIBUTE) is None
    assert json.loads(as_is.info.attribute("lbsmatte/settings"))["match_exposure"] is False
    assert read_image(tmp_path / "day.exr.out.exr").info.attribute(EXPOSURE_ATTRIBUTE) is None
    assert not np.array_equal(matched.channel("A"), as_is.channel("A"))
    # Scaled back: the night result's layers are in the night plate's units.
    unknown = (_trimap(0) > 0) & (_trimap(0) < 1)
    fg = np.dstack([matched.channel(f"fg.{c}") for c in "RGB"])
    assert fg[unknown].max() <= night.max() * 1.5
