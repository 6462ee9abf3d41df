"""core.colour: sRGB transfer, OCIO conversions, auto resolution, sanitising."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.colour import (
    check_colour,
    from_display,
    from_linear,
    resolve_colour,
    sanitise,
    to_display,
    to_linear,
)
from core.errors import InputError


@pytest.fixture(autouse=True)
def _no_ocio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCIO", raising=False)
    monkeypatch.delenv("LBSMATTE_OCIO_DISPLAY", raising=False)


def test_linear_to_display_known_values() -> None:
    # IEC 61966-2-1: 0.18 -> 0.46135, 1 -> 1, the linear toe below 0.0031308.
    x = np.array([[[0.0, 0.001, 0.18], [0.5, 1.0, 4.0]]], np.float32)
    y = to_display(x, "linear")
    expected = [[[0.0, 0.01292, 0.461356], [0.735357, 1.0, 1.055 * 4 ** (1 / 2.4) - 0.055]]]
    np.testing.assert_allclose(y, expected, atol=1e-5)
    assert y.dtype == np.float32


def test_linear_round_trip_keeps_values_above_one() -> None:
    x = np.array([0.0, 1e-4, 0.0031308, 0.18, 0.9, 1.0, 1.5, 8.0, 100.0], np.float32).reshape(1, 3, 3)
    back = from_display(to_display(x, "linear"), "linear")
    np.testing.assert_allclose(back, x, rtol=2e-6, atol=1e-7)


def test_negatives_and_nan_become_zero_without_nan() -> None:
    x = np.array([[[-0.5, np.nan, -np.inf]]], np.float32)
    for fn in (to_display, from_display):
        y = fn(x, "linear")
        assert np.isfinite(y).all()
        np.testing.assert_array_equal(y, 0.0)


def test_srgb_is_identity_and_copies() -> None:
    x = np.array([[[0.2, 0.5, 1.5]]], np.float32)
    y = to_display(x, "srgb")
    np.testing.assert_array_equal(y, x)
    y[0, 0, 0] = 9
    assert x[0, 0, 0] == np.float32(0.2)
    np.testing.assert_array_equal(from_display(x, "SRGB"), x)
    np.testing.assert_allclose(to_linear(np.array([[[0.461356]]], np.float32), "srgb"), 0.18, atol=1e-5)


def test_resolve_colour_auto_follows_nukes_read() -> None:
    assert resolve_colour("auto", is_float=True) == "linear"
    assert resolve_colour("auto", is_float=False) == "srgb"
    assert resolve_colour("Linear", is_float=False) == "linear"
    assert check_colour("auto") == "auto"


def test_unknown_colour_lists_valid_names() -> None:
    with pytest.raises(InputError, match=r"unknown colour 'rec709'.*auto, linear, srgb.*\$OCIO is not set"):
        resolve_colour("rec709", is_float=True)
    with pytest.raises(InputError, match="unknown colour"):
        to_display(np.zeros((1, 1, 3), np.float32), "ACEScg")


OCIO_CONFIG = """\
ocio_profile_version: 2
roles:
  default: raw
  scene_linear: lin
  color_picking: srgb_tex
displays:
  sRGB:
    - !<View> {name: Raw, colorspace: raw}
colorspaces:
  - !<ColorSpace>
    name: raw
    isdata: true
  - !<ColorSpace>
    name: lin
  - !<ColorSpace>
    name: srgb_tex
    to_scene_reference: !<ExponentWithLinearTransform> {gamma: 2.4, offset: 0.055, direction: forward}
  - !<ColorSpace>
    name: double_lin
    from_scene_reference: !<MatrixTransform> {matrix: [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1]}
"""


def test_ocio_colourspace_from_a_config_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.ocio"
    config.write_text(OCIO_CONFIG)
    monkeypatch.setenv("OCIO", str(config))
    # 'lin' -> the color_picking role (srgb_tex, the sRGB curve) equals the built-in curve.
    x = np.array([[[0.0, 0.18, 1.0], [0.5, 0.02, 0.7]]], np.float32)
    np.testing.assert_allclose(to_display(x, "lin"), to_display(x, "linear"), atol=1e-5)
    # double_lin holds 2x scene-linear: 0.36 in it is 0.18 linear.
    np.testing.assert_allclose(to_display(np.full((1, 1, 3), 0.36, np.float32), "double_lin"), 0.461356, atol=1e-5)
    back = from_display(to_display(x, "double_lin"), "double_lin")
    np.testing.assert_allclose(back, x, atol=1e-5)
    assert resolve_colour("double_lin", is_float=True) == "double_lin"
    with pytest.raises(InputError, match=r"unknown colour 'nope'.*raw, lin, srgb_tex, double_lin"):
        check_colour("nope")


@pytest.mark.skipif(os.name == "nt", reason="Windows' file system encoding is always UTF-8")
def test_an_ocio_config_in_a_non_ascii_folder_loads_under_a_locale_that_is_not_utf8(tmp_path) -> None:
    """$OCIO reaches Python in the locale's encoding (here LANG=C with UTF-8 mode off: 'é' as lone
    surrogates; under a Latin-1 locale as 'Ã©'), and OpenColorIO takes the path as UTF-8: the
    config of a show folder named 'Séries' was "file does not exist"."""
    folder = tmp_path / "Séries 日本"
    folder.mkdir()
    (folder / "config.ocio").write_text(OCIO_CONFIG, encoding="utf-8")
    script = "from core.colour import check_colour, to_display; import numpy as np; check_colour('double_lin'); " \
             "print(float(to_display(np.full((1, 1, 3), 0.36, np.float32), 'double_lin')[0, 0, 0]))"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), OCIO=str(folder / "config.ocio"),
               LC_ALL="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    assert float(done.stdout) == pytest.approx(0.461356, abs=1e-5)


def test_ocio_display_space_named_by_the_environment(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # $LBSMATTE_OCIO_DISPLAY replaces the looked-up sRGB space (here the config's role would give
    # srgb_tex): with double_lin named, 0.18 in 'lin' is shown to the networks as 0.36, and back.
    config = tmp_path / "config.ocio"
    config.write_text(OCIO_CONFIG)
    monkeypatch.setenv("OCIO", str(config))
    monkeypatch.setenv("LBSMATTE_OCIO_DISPLAY", "double_lin")
    x = np.full((1, 2, 3), 0.18, np.float32)
    np.testing.assert_allclose(to_display(x, "lin"), 0.36, atol=1e-6)
    np.testing.assert_allclose(from_display(np.full((1, 1, 3), 0.36, np.float32), "lin"), 0.18, atol=1e-6)
    monkeypatch.setenv("LBSMATTE_OCIO_DISPLAY", "nope")
    with pytest.raises(InputError, match=r"has no colourspace 'nope' \(named by \$LBSMATTE_OCIO_DISPLAY\)"):
        to_display(x, "lin")


def test_ocio_builtin_config_works_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIO", "ocio://cg-config-latest")
    x = np.array([[[0.18, 0.18, 0.18]]], np.float32)
    # 'lin_rec709' is an alias of 'Linear Rec.709 (sRGB)'; the display space is 'sRGB - Texture'.
    np.testing.assert_allclose(to_display(x, "lin_rec709"), 0.461356, atol=1e-4)
    acescg = np.array([[[0.2, 0.1, 0.05]]], np.float32)
    np.testing.assert_allclose(from_display(to_display(acescg, "ACEScg"), "ACEScg"), acescg, atol=1e-4)
    # Roles and aliases name colourspaces too; a role the config does not define is refused
    # with the roles it does define, the valid spellings, in the message.
    assert check_colour("scene_linear") == check_colour("lin_ap1") == "ACEScg"
    with pytest.raises(InputError, match=r"unknown colour 'compositing_linear'.*ACEScg.*roles.*scene_linear"):
        check_colour("compositing_linear")


def test_a_colour_of_bytes_that_are_not_utf8_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, tmp_path, capsys) -> None:
    """``--colour`` typed in a Latin-1 terminal reaches Python as lone surrogates ('cam\\udce9ra'):
    with $OCIO set, OpenColorIO's getColorSpace raised a TypeError, a traceback out of lbsmatte."""
    from core import cli

    monkeypatch.setenv("OCIO", "ocio://cg-config-latest")
    with pytest.raises(InputError, match=r"unknown colour 'cam\\udce9ra': it holds bytes that are not UTF-8 text.*"
                                         r"OpenColorIO config \$OCIO='ocio://cg-config-latest'"):
        check_colour("cam\udce9ra")
    assert check_colour(" ACEScg ") == "ACEScg"  # names in UTF-8 as before
    code = cli.main(["matte", "--plate", str(tmp_path / "p.exr"), "--trimap", str(tmp_path / "t.exr"),
                     "--out", str(tmp_path / "out.exr"), "--colour", "cam\udce9ra"])
    assert code == 2
    assert "ERROR: --colour cam\\udce9ra: unknown colour" in capsys.readouterr().out


def test_ocio_to_linear_keeps_negatives_and_out_of_gamut_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ACEScg plate's negatives and its colours outside the sRGB gamut survive the trip to the
    solve space and back: the pipeline solves the compositing equation against them."""
    monkeypatch.setenv("OCIO", "ocio://cg-config-latest")
    acescg = np.array([[[6.0, 1.0, 0.2], [-0.02, 0.5, 0.1], [2.0, 0.5, 0.1], [0.05, 0.02, 0.01]]], np.float32)
    # ACEScg -> linear sRGB primaries is a matrix (AP1 -> Rec.709): the linear values are its product.
    ap1_to_rec709 = np.array([[1.70505, -0.62179, -0.08326], [-0.13026, 1.14080, -0.01055],
                              [-0.02400, -0.12897, 1.15297]], np.float32)
    linear = to_linear(acescg, "ACEScg")
    np.testing.assert_allclose(linear, acescg @ ap1_to_rec709.T, atol=2e-3)
    assert (linear < 0).any()  # out of the sRGB gamut: negative there, not clipped to 0
    np.testing.assert_allclose(from_linear(linear, "ACEScg"), acescg, atol=1e-4)


def test_ocio_linear_round_trip_keeps_negatives_and_colours_outside_srgb(monkeypatch: pytest.MonkeyPatch) -> None:
    # to_linear went through the display encoding clamped at 0: an ACEScg colour outside the sRGB
    # gamut (a saturated light: negative in sRGB primaries) or a negative value came back from
    # from_linear changed by up to 1.1, so the matte's FG and BG no longer composited to the plate.
    from core.colour import from_linear

    monkeypatch.setenv("OCIO", "ocio://cg-config-latest")
    x = np.array([[[3.0, 0.1, 0.05], [0.02, 2.5, 0.01], [-0.2, 0.5, 0.5], [0.18, 0.18, 0.18]]], np.float32)
    for space in ("ACEScg", "lin_rec709", "ACES2065-1"):
        np.testing.assert_allclose(from_linear(to_linear(x, space), space), x, atol=1e-5, err_msg=space)
    # the linear light is the same where nothing was out of range
    np.testing.assert_allclose(to_linear(x[:, 3:], "lin_rec709"), x[:, 3:], atol=1e-6)
    # and the matte agrees with the plate in its own encoding, saturated colours included
    from core.pipeline import Matter

    rng = np.random.default_rng(4)
    plate = rng.random((24, 32, 3), dtype=np.float32) * np.array([3.0, 0.2, 0.1], np.float32)
    trimap = np.zeros((24, 32), np.float32)
    trimap[:, 16:] = 1.0
    trimap[:, 12:20] = 0.5
    result = Matter("none", device="cpu").matte(plate, trimap, colour="ACEScg")
    a = result.alpha[..., None]
    unknown = trimap == 0.5
    np.testing.assert_allclose((a * result.fg + (1 - a) * result.bg)[unknown], plate[unknown], atol=1e-4)


def test_ocio_conversions_are_opencolorios_own_per_pixel_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # Converted as a packed image, a strided crop and a 4-channel one (its last channel kept), and
    # display_and_linear's one conversion for both of the pipeline's needs: the values of
    # applyRGB on each pixel, and of to_display and to_linear called apart, bit for bit.
    import PyOpenColorIO as ocio

    from core.colour import _display_space, _srgb_to_linear, display_and_linear, ocio_config

    monkeypatch.setenv("OCIO", "ocio://cg-config-latest")
    rng = np.random.default_rng(5)
    plate = rng.normal(0.4, 0.8, (40, 50, 3)).astype(np.float32)
    plate[0, :4, 0] = [np.nan, np.inf, -np.inf, -0.0]
    crop = plate[3:31:2, 5:45]
    display = _display_space(ocio_config())
    processor = ocio_config().getProcessor("ACEScg", display).getOptimizedCPUProcessor(ocio.OPTIMIZATION_LOSSLESS)
    flat = np.nan_to_num(crop, nan=0.0).reshape(-1).copy()
    processor.applyRGB(flat)
    with np.errstate(all="ignore"):
        linear = to_linear(crop, "ACEScg")
        np.testing.assert_array_equal(linear, _srgb_to_linear(flat.reshape(crop.shape), signed=True))
        four = np.dstack([crop, np.full(crop.shape[:2] + (1,), 0.25, np.float32)])
        np.testing.assert_array_equal(to_linear(four, "ACEScg")[..., :3], linear)
        clean = sanitise(crop)[0]
        shown, solve = display_and_linear(clean, np.where(np.isfinite(crop), crop, clean), "ACEScg")
        np.testing.assert_array_equal(shown.view(np.uint32), to_display(clean, "ACEScg").view(np.uint32))
        np.testing.assert_array_equal(solve.view(np.uint32),
                                      to_linear(np.where(np.isfinite(crop), crop, clean), "ACEScg").view(np.uint32))


def test_ocio_bad_config_is_an_input_error(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "broken.ocio"
    bad.write_text("not: [a config")
    monkeypatch.setenv("OCIO", str(bad))
    with pytest.raises(InputError, match="broken.ocio"):
        to_display(np.zeros((1, 1, 3), np.float32), "lin")


def test_sanitise_reports_and_replaces() -> None:
    x = np.zeros((2, 3, 3), np.float32)
    x[0, 0, 1] = np.nan
    x[0, 1, :] = np.nan  # one pixel, three NaN channels: counted once
    x[0, 2, 0] = np.inf
    x[1, 0, 2] = -np.inf
    x[1, 1, 0] = -0.25
    x[1, 2, :] = 3.0
    clean, report = sanitise(x)
    assert (report.nan, report.posinf, report.neginf, report.negative) == (2, 1, 1, 1)
    assert bool(report) and report.total == 5
    assert "2 pixel(s) with NaN" in str(report) and "+inf (set to 3)" in str(report)
    assert np.isfinite(clean).all() and clean.min() == 0.0
    assert clean[0, 2, 0] == 3.0  # +inf -> the largest finite value
    np.testing.assert_array_equal(clean[1, 2], 3.0)
    assert np.isnan(x[0, 0, 1])  # input untouched


def test_sanitise_report_says_pixels_whichever_kind_comes_first() -> None:
    # A plate with only negatives (or only infinities) was reported as "plate: 51 with negative
    # values": the count said nothing of what it counted.
    negative = np.full((1, 3, 3), 0.5, np.float32)
    negative[0, :2, 0] = -3e38
    assert str(sanitise(negative)[1]) == "2 pixel(s) with negative values (set to 0)"
    infinite = np.full((1, 3, 3), 0.5, np.float32)
    infinite[0, 0] = np.inf
    infinite[0, 1, 1] = -np.inf
    assert str(sanitise(infinite)[1]) == "1 pixel(s) with +inf (set to 1), 1 with -inf (set to 0)"


def test_sanitise_replaces_an_infinite_highlight_in_an_otherwise_clean_plate() -> None:
    # No NaN and nothing negative: a blown-out +inf pixel alone must still be found and replaced.
    x = np.full((1, 3, 3), 0.5, np.float32)
    x[0, 1, 2] = 7.0
    x[0, 0, 0] = np.inf
    clean, report = sanitise(x)
    assert (report.nan, report.posinf, report.neginf, report.negative) == (0, 1, 0, 0)
    assert clean[0, 0, 0] == 7.0 and np.isfinite(clean).all()


def test_sanitise_a_grainy_float_plate_counts_its_negatives_without_the_nan_and_inf_scans(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A float plate's grain (or a CG render's) leaves small negatives in a finite plate: the usual
    # EXR. Its clean-up took a quarter of a second at 1080p looking for NaN and infinities that a
    # finite plate cannot hold, and counting each kind with any(axis=2).
    x = np.full((3, 4, 3), 0.25, np.float32)
    x[0, 0] = -0.01  # three negative channels, one pixel
    x[1, 2, 1] = -1e-6
    x[2, 3, 2] = 5.0
    scans: list[str] = []

    def counted(name: str):
        original = getattr(np, name)

        def scan(*args, **kwargs):
            scans.append(name)
            return original(*args, **kwargs)
        return scan

    for name in ("isnan", "isposinf", "isneginf"):
        monkeypatch.setattr(np, name, counted(name))
    clean, report = sanitise(x)
    monkeypatch.undo()
    assert scans == []
    assert (report.nan, report.posinf, report.neginf, report.negative) == (0, 0, 0, 2)
    assert str(report) == "2 pixel(s) with negative values (set to 0)"
    assert report.replacement_for_inf == 5.0  # as the full scan gives it
    np.testing.assert_array_equal(clean, np.maximum(x, 0.0))
    assert clean.dtype == np.float32 and x[0, 0, 0] == np.float32(-0.01)  # input untouched


@pytest.mark.parametrize("channels", [None, 1, 3, 4])
def test_sanitise_counts_pixels_as_any_of_their_channels(channels: int | None) -> None:
    rng = np.random.default_rng(channels or 0)
    shape = (17, 23) if channels is None else (17, 23, channels)
    x = rng.normal(0.2, 0.3, shape).astype(np.float32)
    x.flat[::29] = np.nan
    x.flat[::31] = np.inf
    report = sanitise(x)[1]

    def pixels(mask: np.ndarray) -> int:
        return int(mask.any(axis=2).sum()) if mask.ndim == 3 else int(mask.sum())

    assert (report.nan, report.posinf, report.negative) == (
        pixels(np.isnan(x)), pixels(np.isposinf(x)), pixels(x < 0))
    finite = x.copy()
    finite[~np.isfinite(finite)] = 0.0
    assert sanitise(finite)[1].negative == pixels(finite < 0)


def test_sanitise_clean_image_reports_nothing() -> None:
    x = np.full((2, 2, 3), 0.5, np.float32)
    clean, report = sanitise(x)
    assert not report and report.total == 0
    np.testing.assert_array_equal(clean, x)


def test_ocio_conversions_turn_nan_and_minus_inf_to_black_as_their_docstrings_say(monkeypatch: pytest.MonkeyPatch) -> None:
    # to_display says "negatives and NaN become 0" and to_linear "NaN becomes 0" for an OCIO
    # colourspace too; only the built-in linear/sRGB curves were checked for it.
    monkeypatch.setenv("OCIO", "ocio://cg-config-latest")
    bad = np.array([[[np.nan, -np.inf, -0.5]]], np.float32)
    np.testing.assert_array_equal(to_display(bad, "lin_rec709"), 0.0)
    np.testing.assert_array_equal(to_linear(np.array([[[np.nan, 0.0, 0.0]]], np.float32), "ACEScg"), 0.0)


# -- integer pixels -----------------------------------------------------------------------------
def test_only_8_and_16_bit_unsigned_pixels_are_scaled_and_floats_pass_as_they_are() -> None:
    from core.colour import scale_integers

    np.testing.assert_array_equal(scale_integers(np.array([0, 128, 255], np.uint8), "x"),
                                  np.array([0, 128, 255], np.float32) / np.float32(255))
    np.testing.assert_array_equal(scale_integers(np.array([0, 65535], ">u2"), "x"), [0.0, 1.0])
    half = np.array([0.25, 2.0], np.float16)  # a half-float plate: 2 bytes a sample, but not 16-bit integers
    assert scale_integers(half, "x") is half
    for dtype in (np.int8, np.int16, np.uint32):
        with pytest.raises(InputError, match=f"the plate is an array of {np.dtype(dtype)}"):
            scale_integers(np.zeros(2, dtype), "the plate")


@pytest.mark.parametrize("signed", [False, True])
def test_the_curves_give_the_plain_formulas_bits(signed: bool) -> None:
    # The curves work in place on one copy (a 1080p frame's temporaries cost as much as the
    # power): every float32 of a sweep, NaN, ±inf and the cuts among them, must come out as the
    # textbook expression gives it, so no earlier result changes by a bit.
    from core.colour import _ENC_CUT, _LIN_CUT, _linear_to_srgb, _srgb_to_linear

    sweep = np.arange(0, 2**32, 16411, dtype=np.uint64).astype(np.uint32).view(np.float32)
    cuts = np.array([_LIN_CUT, _ENC_CUT, -0.0, 1.0, np.nan, np.inf, -np.inf, 3e38], np.float32)
    x = np.concatenate([sweep, cuts, np.nextafter(cuts, np.float32(np.inf))])
    given = x.copy()
    with np.errstate(all="ignore"):
        v = np.nan_to_num(x, nan=0.0, posinf=np.inf, neginf=-np.inf if signed else 0.0)
        v = v if signed else np.maximum(v, 0.0)
        encoded = np.where(v <= _LIN_CUT, 12.92 * np.minimum(v, _LIN_CUT),
                           1.055 * np.power(np.maximum(v, _LIN_CUT), 1.0 / 2.4) - 0.055).astype(np.float32)
        decoded = np.where(v <= _ENC_CUT, v / 12.92,
                           np.power((np.maximum(v, _ENC_CUT) + 0.055) / 1.055, 2.4)).astype(np.float32)
        for curve, expected in ((_linear_to_srgb, encoded), (_srgb_to_linear, decoded)):
            got = curve(x, signed)
            assert got.dtype == np.float32 and got is not x
            np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
            grid = x[:60].reshape(4, 5, 3)
            np.testing.assert_array_equal(curve(grid, signed).view(np.uint32), expected[:60].reshape(4, 5, 3).view(np.uint32))
            scalar = curve(np.float32(0.5), signed)  # trimap.py's constants: a 0-d array
            assert isinstance(scalar, np.ndarray) and scalar.shape == ()
    np.testing.assert_array_equal(x.view(np.uint32), given.view(np.uint32))  # the input untouched


# -- premultiplication: the one definition --------------------------------------------------------
def test_premultiply_keeps_hdr_and_unpremultiply_inverts_it() -> None:
    from core.colour import premultiply, unpremultiply

    fg = np.array([[[4.0, 0.5, -0.25], [2.0, 1.0, 0.0], [0.3, 0.6, 0.9]]], np.float32)
    alpha = np.array([[0.5, 1.0, 0.0]], np.float32)
    rgb = premultiply(fg, alpha)
    assert rgb.dtype == np.float32 and rgb.shape == (1, 3, 3)
    np.testing.assert_array_equal(rgb, [[[2.0, 0.25, -0.125], [2.0, 1.0, 0.0], [0.0, 0.0, 0.0]]])
    np.testing.assert_array_equal(premultiply(fg, alpha[..., None]), rgb)
    back = unpremultiply(rgb, alpha)
    np.testing.assert_array_equal(back[:, :2], fg[:, :2])  # exact where alpha is a power of two
    np.testing.assert_array_equal(back[:, 2], 0.0)  # alpha 0: left as it is (Nuke's Unpremult)
    kept = unpremultiply(np.array([[[0.1, 0.2, 0.3]]], np.float32), np.zeros((1, 1), np.float32))
    np.testing.assert_array_equal(kept, np.array([[[0.1, 0.2, 0.3]]], np.float32))


def test_the_tensor_curves_are_the_numpy_ones() -> None:
    # encode_srgb / decode_srgb run on the device in the pipeline (linear plates) and in the
    # exported module; they must be to_display / from_display of "linear", on both sides of the cut.
    import torch

    from core.colour import decode_srgb, encode_srgb

    x = np.array([0.0, 1e-4, 0.0031308, 0.01, 0.18, 0.5, 1.0, 4.0, 100.0], np.float32)
    encoded = encode_srgb(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(encoded, to_display(x, "linear"), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(encoded[[1, 4, 6]], [0.001292, 0.461356, 1.0], atol=1e-5)  # IEC 61966-2-1
    v = np.array([0.0, 0.01, 0.04045, 0.2, 0.461356, 0.9, 1.0, 1.8], np.float32)
    decoded = decode_srgb(torch.from_numpy(v)).numpy()
    np.testing.assert_allclose(decoded, from_display(v, "linear"), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(decoded[[1, 4, 6]], [0.01 / 12.92, 0.18, 1.0], atol=1e-5)
    np.testing.assert_allclose(decode_srgb(encode_srgb(torch.from_numpy(x))).numpy(), x, rtol=2e-6, atol=1e-7)
    # NaN and negatives to 0, as the numpy curve
    assert encode_srgb(torch.tensor([float("nan"), -2.0])).tolist() == [0.0, 0.0]


def test_an_ocio_view_or_a_misspelt_colourspace_is_named_as_such(monkeypatch: pytest.MonkeyPatch,
                                                                  aces2_ocio_config: str) -> None:
    # A view (what a compositor picks in the viewer) and a named transform exist in the config but
    # are not colourspaces: 'unknown colour' alone sent them looking for a typo. A typo gets the
    # colourspaces and aliases spelt like it. (The config is named by its version: studio-config-latest
    # is another config in each OpenColorIO release, 2.3's without ACES 2.0's views.)
    monkeypatch.setenv("OCIO", aces2_ocio_config)
    with pytest.raises(InputError, match=r"unknown colour 'ACES 2.0 - SDR 100 nits \(Rec.709\)' \(in the OpenColorIO "
                                         r"config it is a view of the display 'sRGB - Display': how images are shown"):
        check_colour("ACES 2.0 - SDR 100 nits (Rec.709)")
    with pytest.raises(InputError, match=r"unknown colour 'ARRI LogC3 - Curve \(EI800\)' \(in the OpenColorIO config "
                                         r"it is a named transform, not a colourspace\)"):
        check_colour("ARRI LogC3 - Curve (EI800)")
    with pytest.raises(InputError, match=r"unknown colour 'ACEScgg' \(did you mean 'ACEScg' or 'ACEScc'\?\): expected"):
        check_colour("ACEScgg")
    with pytest.raises(InputError, match=r"unknown colour 'zzz': expected auto"):
        check_colour("zzz")


def test_a_data_colourspace_is_refused(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A data colourspace (isdata: Raw, the 'data' role) is one OpenColorIO never converts: it was
    # accepted and the plate's values reached the networks as sRGB colour, unsaid, whatever they were.
    config = tmp_path / "config.ocio"
    config.write_text(OCIO_CONFIG)
    monkeypatch.setenv("OCIO", str(config))
    x = np.full((1, 1, 3), 0.18, np.float32)
    with pytest.raises(InputError, match=r"colour 'raw' is a data colourspace of the OpenColorIO config .*config.ocio"
                                         r".*never converts.*srgb or linear"):
        to_display(x, "raw")
    monkeypatch.setenv("OCIO", "ocio://cg-config-latest")
    for name in ("Raw", "data"):  # by name and by its role
        with pytest.raises(InputError, match=r"is a data colourspace"):
            check_colour(name)
        with pytest.raises(InputError, match=r"is a data colourspace"):
            resolve_colour(name, is_float=True)
    with pytest.raises(InputError, match=r"colour 'data' \('Raw'\) is a data colourspace"):
        to_linear(x, "data")
    assert check_colour("ACEScg") == "ACEScg"  # the config's colour spaces still are


def test_an_ocio_display_given_as_the_colour_is_named_as_such(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An ACES 1.x style config names its display 'ACES' (views sRGB, Rec.709): given as --colour it
    # was 'unknown colour' with 'did you mean ACEScg?', as if a typo, not what it is.
    config = tmp_path / "config.ocio"
    config.write_text(OCIO_CONFIG.replace("  sRGB:\n", "  ACES:\n").replace("name: lin\n", "name: ACEScg\n")
                      .replace("scene_linear: lin", "scene_linear: ACEScg"))
    monkeypatch.setenv("OCIO", str(config))
    with pytest.raises(InputError, match=r"unknown colour 'ACES' \(in the OpenColorIO config it is a display, the device "
                                         r"images are shown on, not the colourspace"):
        check_colour("ACES")
    with pytest.raises(InputError, match=r"unknown colour 'ACEScgg' \(did you mean 'ACEScg'\?\)"):
        check_colour("ACEScgg")


def test_colourspace_for_tag_finds_a_files_tag_in_the_config(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                             aces2_ocio_config: str) -> None:
    from core.colour import colourspace_for_tag

    assert colourspace_for_tag("lin_ap1_scene") is None  # no $OCIO
    monkeypatch.setenv("OCIO", aces2_ocio_config)
    assert colourspace_for_tag("lin_ap1_scene") == "ACEScg"
    assert colourspace_for_tag("ocio:arrilogc4_awg4_scene") == "ARRI LogC4"
    assert colourspace_for_tag("ACEScct") == "ACEScct"
    assert colourspace_for_tag("data") is None and colourspace_for_tag("show:plate") is None
    monkeypatch.setenv("OCIO", str(tmp_path / "missing.ocio"))  # a message's helper: never an error of its own
    assert colourspace_for_tag("lin_ap1_scene") is None


def test_a_colourspace_the_config_cannot_convert_is_refused_when_checked(tmp_path, monkeypatch: pytest.MonkeyPatch
                                                                          ) -> None:
    # A colourspace whose LUT file is missing passed --colour's check; the conversion failed at
    # every frame after the networks had loaded (and the Nuke node's, after baking the plate).
    config = tmp_path / "config.ocio"
    config.write_text(OCIO_CONFIG + "  - !<ColorSpace>\n    name: cam_log\n"
                      "    to_scene_reference: !<FileTransform> {src: cam_log.cube}\n")
    monkeypatch.setenv("OCIO", str(config))
    for check in (check_colour, lambda c: resolve_colour(c, is_float=True)):
        with pytest.raises(InputError, match=r"OpenColorIO cannot convert 'cam_log' to 'srgb_tex': .*cam_log.cube"):
            check("cam_log")
    assert check_colour("double_lin") == "double_lin"  # the others still convert
    lut = "LUT_3D_SIZE 2\n" + "".join(f"{r} {g} {b}\n" for b in (0, 1) for g in (0, 1) for r in (0, 1))
    (tmp_path / "show").mkdir()
    (tmp_path / "show" / "cam_log.cube").write_text(lut)  # an identity 3D LUT: inverted for the way back
    (tmp_path / "show" / "config.ocio").write_text(config.read_text())
    monkeypatch.setenv("OCIO", str(tmp_path / "show" / "config.ocio"))
    assert check_colour("cam_log") == "cam_log"
    x = np.array([[[0.2, 0.3, 0.4], [0.8, 0.1, 0.5]]], np.float32)
    np.testing.assert_allclose(from_linear(to_linear(x, "cam_log"), "cam_log"), x, atol=1e-5)


def test_an_ocio_view_transform_or_look_given_as_the_colour_is_named_as_such(tmp_path, monkeypatch) -> None:
    # A view transform whose name no view shares, and a look, were 'unknown colour' like a typo.
    config = tmp_path / "config.ocio"
    config.write_text(OCIO_CONFIG.replace("displays:", "view_transforms:\n  - !<ViewTransform>\n    name: Filmic Base\n"
                                          "    from_scene_reference: !<ExponentTransform> {value: 2.2}\n"
                                          "looks:\n  - !<Look>\n    name: Show Grade\n    process_space: lin\n"
                                          "    transform: !<ExponentTransform> {value: 1.1}\ndisplays:"))
    monkeypatch.setenv("OCIO", str(config))
    with pytest.raises(InputError, match=r"unknown colour 'filmic base' \(in the OpenColorIO config it is a view "
                                         r"transform, how scene-linear is rendered for a display, not the colourspace"):
        check_colour("filmic base")
    with pytest.raises(InputError, match=r"unknown colour 'Show Grade' \(in the OpenColorIO config it is a look, a "
                                         r"grade applied to images, not a colourspace\)"):
        check_colour("Show Grade")


def test_ocio_display_round_trip_keeps_colours_outside_srgb(monkeypatch: pytest.MonkeyPatch) -> None:
    # A saturated ACEScg colour is negative in the sRGB display encoding; from_display clamped that
    # to 0, so from_display(to_display(x)) was x >= 0 no more (1.9 off here), as its docstring says.
    monkeypatch.setenv("OCIO", "ocio://cg-config-latest")
    x = np.array([[[3.0, 0.1, 0.05], [0.02, 2.5, 0.01], [0.0, 0.5, 0.5], [0.18, 0.18, 0.18]]], np.float32)
    shown = to_display(x, "ACEScg")
    assert (shown < 0).any()
    np.testing.assert_allclose(from_display(shown, "ACEScg"), x, atol=1e-5)
    np.testing.assert_array_equal(from_display(np.full((1, 1, 3), np.nan, np.float32), "ACEScg"), 0.0)
