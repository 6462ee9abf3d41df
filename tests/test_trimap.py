"""core.trimap: every common trimap encoding normalises to exactly {0, 0.5, 1}."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import InputError, TrimapError
from core.trimap import (
    ALPHA_NOISE,
    BACKGROUND_MAX,
    FOREGROUND_MIN,
    TOLERANCE,
    check_edge,
    normalise_trimap,
    split_trimap,
    trimap_from_alpha,
    trimap_from_matte,
    trimap_stats,
    unit_scale,
)


def test_float_values_and_tolerance() -> None:
    t = np.array([[0.0, TOLERANCE, TOLERANCE + 1e-3, 0.5, 0.98, 1.0 - TOLERANCE, 1.0, -0.2, 1.3]], np.float32)
    out = normalise_trimap(t)
    assert out.dtype == np.float32 and out.shape == (1, 9)
    assert out.tolist() == [[0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 1.0, 0.0, 1.0]]


def test_8bit_trimap_read_as_floats_and_as_integers() -> None:
    as_float = np.array([[0, 128, 255]], np.float32) / 255.0  # what read_image gives for a PNG
    assert normalise_trimap(as_float).tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(np.array([[0, 128, 255]], np.uint8)).tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(np.array([[0, 32768, 65535]], np.uint16)).tolist() == [[0.0, 0.5, 1.0]]
    # JPEG-like noise of a few code values stays known.
    noisy = np.array([[3, 125, 251]], np.float32) / 255.0
    assert normalise_trimap(noisy).tolist() == [[0.0, 0.5, 1.0]]


def _rgba(rgb_value: float, alpha: np.ndarray) -> np.ndarray:
    h, w = alpha.shape
    return np.dstack([np.full((h, w, 3), rgb_value, np.float32), alpha.astype(np.float32)])


def test_channel_selection() -> None:
    alpha = np.array([[0.0, 0.5, 1.0]], np.float32)
    rgba = _rgba(1.0, alpha)
    # auto: a non-constant alpha wins; explicit red ignores it.
    assert normalise_trimap(rgba).tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(rgba, "alpha").tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(rgba, "red").tolist() == [[1.0, 1.0, 1.0]]
    # auto with a constant alpha (an opaque PNG): the grey RGB.
    opaque = np.dstack([np.dstack([alpha] * 3), np.ones_like(alpha)])
    assert normalise_trimap(opaque).tolist() == [[0.0, 0.5, 1.0]]
    # colour RGB: luminance, Rec.709 weights (pure green 0.7152 -> unknown, white -> FG).
    colour = np.array([[[0, 1, 0], [1, 1, 1], [0, 0, 0]]], np.float32)
    assert normalise_trimap(colour).tolist() == [[0.5, 1.0, 0.0]]
    assert normalise_trimap(colour, "red").tolist() == [[0.0, 1.0, 0.0]]
    assert normalise_trimap(colour, "luminance").tolist() == [[0.5, 1.0, 0.0]]


def test_channels_found_by_name_in_exr_order() -> None:
    # OpenEXR stores channels sorted: A, B, G, R.
    a = np.array([[0.0, 0.5, 1.0]], np.float32)
    r = np.array([[1.0, 0.0, 0.0]], np.float32)
    pixels = np.dstack([a, np.zeros_like(a), np.zeros_like(a), r])
    assert normalise_trimap(pixels, "alpha", ["A", "B", "G", "R"]).tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(pixels, "red", ["A", "B", "G", "R"]).tolist() == [[1.0, 0.0, 0.0]]
    assert normalise_trimap(pixels, "auto", ["A", "B", "G", "R"]).tolist() == [[0.0, 0.5, 1.0]]
    # a named channel of a layer
    assert normalise_trimap(pixels, "R", ["matte.A", "B", "G", "R"]).tolist() == [[1.0, 0.0, 0.0]]
    assert normalise_trimap(pixels, "alpha", ["matte.A", "B", "G", "R"]).tolist() == [[0.0, 0.5, 1.0]]


def test_nukes_names_of_the_rgba_channels_pick_a_files_r_g_b_a() -> None:
    # a compositor types Nuke's name: rgba.alpha was "no channel 'rgba.alpha'" for a PNG's R, G, B, A
    alpha = np.array([[0.0, 0.5, 1.0]], np.float32)
    rgba = np.dstack([alpha[..., None] * 0 + 1.0, np.dstack([alpha, 1 - alpha]), alpha])
    assert normalise_trimap(rgba, "rgba.alpha").tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(rgba, "rgba.red").tolist() == [[1.0, 1.0, 1.0]]
    assert normalise_trimap(rgba, "rgba.green").tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(rgba, "rgba.blue").tolist() == [[1.0, 0.5, 0.0]]
    exr = rgba[..., ::-1]  # OpenEXR's order A, B, G, R
    assert normalise_trimap(exr, "rgba.alpha", ["A", "B", "G", "R"]).tolist() == [[0.0, 0.5, 1.0]]
    # a channel really named so is read as named
    named = np.dstack([alpha, 1 - alpha])
    assert normalise_trimap(named, "rgba.alpha", ["A", "rgba.alpha"]).tolist() == [[1.0, 0.5, 0.0]]
    with pytest.raises(TrimapError, match="no channel 'rgba.alpha'"):
        normalise_trimap(rgba[..., :3], "rgba.alpha")


def test_nukes_name_of_a_layers_channel_picks_the_files_spelling_of_it() -> None:
    # Nuke shows a file's matte.A as matte.alpha: a compositor typing it got "no channel 'matte.alpha'"
    # (its channels: ..., matte.A), and matte.A, as the README spells it, was refused for a file
    # holding matte.alpha; rgba.alpha alone took either spelling.
    alpha = np.array([[0.0, 0.5, 1.0]], np.float32)
    pixels = np.dstack([np.ones_like(alpha), 1 - alpha, alpha])
    short = ["R", "other.A", "matte.A"]
    assert normalise_trimap(pixels, "matte.alpha", short).tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(pixels, "Matte.Alpha", short).tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(pixels, "other.alpha", short).tolist() == [[1.0, 0.5, 0.0]]
    long = ["R", "other.alpha", "matte.alpha"]
    assert normalise_trimap(pixels, "matte.A", long).tolist() == [[0.0, 0.5, 1.0]]
    red = ["matte.red", "other.alpha", "matte.alpha"]
    assert normalise_trimap(pixels, "matte.R", red).tolist() == [[1.0, 1.0, 1.0]]
    with pytest.raises(TrimapError, match="no channel 'depth.alpha'"):  # another layer's alpha is not it
        normalise_trimap(pixels, "depth.alpha", short)


def test_single_channel_any_name() -> None:
    t = np.array([[[0.0], [0.5], [1.0]]], np.float32)
    for channel in ("auto", "red", "luminance"):
        assert normalise_trimap(t, channel).tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(t, "alpha", ["A"]).tolist() == [[0.0, 0.5, 1.0]]


def test_a_grey_and_alpha_trimap_is_its_grey_unless_the_alpha_holds_it() -> None:
    # A two-channel PNG (grey + alpha) reads as Y, A: its luminance is the grey itself, and auto
    # takes the grey when the alpha is opaque, the alpha when the alpha carries the trimap.
    grey = np.array([[0.0, 0.5, 1.0]], np.float32)
    opaque = np.dstack([grey, np.ones_like(grey)])
    assert normalise_trimap(opaque, "luminance").tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(opaque).tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(np.dstack([np.ones_like(grey), grey])).tolist() == [[0.0, 0.5, 1.0]]
    # no channel named as red: auto takes the first one beside an opaque alpha
    assert normalise_trimap(opaque, "auto", ["mask", "A"]).tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(opaque[..., ::-1], "auto", ["A", "mask"]).tolist() == [[1.0, 1.0, 1.0]]
    # one colour channel beside an opaque alpha is grey, whichever it is and wherever it sits (the
    # alpha first: G, A of an EXR given in another order; --trimap-channel luminance of G, A was refused)
    for names in (["G", "A"], ["B", "A"], ["R", "A"], ["G", "depth.Z"]):
        assert normalise_trimap(opaque, "auto", names).tolist() == [[0.0, 0.5, 1.0]], names
        assert normalise_trimap(opaque, "luminance", names).tolist() == [[0.0, 0.5, 1.0]], names
        assert normalise_trimap(opaque, "red", names).tolist() == [[0.0, 0.5, 1.0]], names
    assert normalise_trimap(opaque[..., ::-1], "auto", ["A", "G"]).tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(opaque[..., ::-1], "auto", ["depth.Z", "G"]).tolist() == [[0.0, 0.5, 1.0]]


def test_two_of_the_three_colour_channels_are_refused_not_read_as_one() -> None:
    # R and G (no B): auto and luminance read R without a word, though the trimap may be painted in
    # G (here R is its inverse): a wrong matte. Refused, naming the channels; red, or a channel's
    # name, still reads the one asked for, and an alpha that holds the trimap is read as before.
    grey = np.array([[0.0, 0.5, 1.0]], np.float32)
    red_green = np.dstack([1 - grey, grey, np.ones_like(grey)])
    for channel in ("auto", "luminance"):
        with pytest.raises(TrimapError, match=r"the trimap holds R and G but no B \(its channels: R, G, A\): two of "
                                              r"the three colour channels .*--trimap-channel"):
            normalise_trimap(red_green, channel, ["R", "G", "A"])
    with pytest.raises(TrimapError, match=r"holds G and B but no R \(its channels: G, B\)"):
        normalise_trimap(red_green[..., :2], "red", ["G", "B"])
    assert normalise_trimap(red_green, "G", ["R", "G", "A"]).tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(red_green, "red", ["R", "G", "A"]).tolist() == [[1.0, 0.5, 0.0]]
    in_alpha = np.dstack([np.zeros_like(grey), np.zeros_like(grey), grey])
    assert normalise_trimap(in_alpha, "auto", ["R", "G", "A"]).tolist() == [[0.0, 0.5, 1.0]]


def test_errors_name_the_problem() -> None:
    with pytest.raises(TrimapError, match="no alpha channel.*R, G, B"):
        normalise_trimap(np.zeros((2, 2, 3), np.float32), "alpha")
    with pytest.raises(TrimapError, match="no alpha channel.*Y"):
        normalise_trimap(np.zeros((2, 2), np.float32), "alpha")
    with pytest.raises(TrimapError, match="no channel 'matte'"):
        normalise_trimap(np.zeros((2, 2, 3), np.float32), "matte")
    t = np.zeros((2, 2), np.float32)
    t[1, 1] = np.nan
    with pytest.raises(TrimapError, match="1 NaN or infinite"):
        normalise_trimap(t)
    with pytest.raises(TrimapError, match="shape"):
        normalise_trimap(np.zeros((2, 2, 2, 2), np.float32))
    with pytest.raises(TrimapError, match="shape"):
        normalise_trimap(np.zeros((0, 3), np.float32))
    with pytest.raises(TrimapError, match="3 channel.*2 names"):
        normalise_trimap(np.zeros((2, 2, 3), np.float32), channels=["R", "G"])
    assert issubclass(TrimapError, ValueError)


def test_stats() -> None:
    t = normalise_trimap(np.array([[0.0, 0.0, 0.5], [1.0, 0.3, 0.0]], np.float32))
    assert trimap_stats(t) == (3, 2, 1)


# -- the one definition of known and unknown ------------------------------------------------------
VALUES = [0.0, BACKGROUND_MAX, BACKGROUND_MAX + 1e-3, 0.25, 0.5, 0.75, FOREGROUND_MIN - 1e-3, FOREGROUND_MIN, 1.0, -0.5, 1.5]
EXPECTED_FG = [False, False, False, False, False, False, False, True, True, False, True]
EXPECTED_BG = [True, True, False, False, False, False, False, False, False, True, False]


def test_split_trimap_on_numpy_and_torch_agree() -> None:
    fg, bg, unknown = split_trimap(np.array(VALUES, np.float32))
    assert fg.tolist() == EXPECTED_FG and bg.tolist() == EXPECTED_BG
    assert unknown.tolist() == [not (f or b) for f, b in zip(EXPECTED_FG, EXPECTED_BG, strict=True)]
    tfg, tbg, tunknown = split_trimap(torch.tensor(VALUES, dtype=torch.float32)[None, None])
    assert isinstance(tfg, torch.Tensor) and tfg.dtype == torch.bool and tfg.shape == (1, 1, len(VALUES))
    assert tfg.flatten().tolist() == fg.tolist()
    assert tbg.flatten().tolist() == bg.tolist()
    assert tunknown.flatten().tolist() == unknown.tolist()
    assert BACKGROUND_MAX == TOLERANCE and FOREGROUND_MIN == 1.0 - TOLERANCE


def test_normalise_trimap_is_split_trimap() -> None:
    x = np.linspace(-0.2, 1.2, 141, dtype=np.float32)[None]
    fg, bg, unknown = split_trimap(x)
    out = normalise_trimap(x)
    assert (out[fg] == 1.0).all() and (out[bg] == 0.0).all() and (out[unknown] == 0.5).all()


def test_the_networks_training_and_metrics_ask_split_trimap() -> None:
    from core.metrics import unknown_region
    from core.nets.matting import MattingNetwork
    from core.training.train import sampling_input

    t = np.array([[0.0, 0.02, 0.3, 0.5, 0.97, 1.0]], np.float32)
    np.testing.assert_array_equal(unknown_region(t), split_trimap(t)[2])
    tri = torch.from_numpy(t)[None, None]
    batch = {"image": torch.zeros(1, 3, 1, 6), "trimap": tri}
    fg_known, bg_known, unknown = split_trimap(tri)
    assert sampling_input("background", batch)[:, 3].bool().tolist() == (~bg_known)[:, 0].tolist()
    bg = torch.zeros(1, 3, 1, 6)
    assert sampling_input("foreground", batch, bg)[:, 3].bool().tolist() == (~fg_known)[:, 0].tolist()

    class Stub:  # what MattingNetwork._inputs reads of its network, without building one
        in_channels = 10
        colour_line = False

    x = torch.cat([torch.zeros(1, 3, 1, 6), tri, torch.zeros(1, 6, 1, 6)], 1)
    out = MattingNetwork._inputs(Stub(), x)  # type: ignore[arg-type]
    assert out[:, 10].bool().tolist() == fg_known[:, 0].tolist()
    assert out[:, 11].bool().tolist() == unknown[:, 0].tolist()


# -- a trimap from a rough matte ------------------------------------------------------------------
@pytest.mark.parametrize("edge", [1, 2, 5, 12])
@pytest.mark.parametrize("vertical", [True, False])
def test_straight_edge_band_is_2_edge_wide(edge: int, vertical: bool) -> None:
    # Known answer: a straight edge between columns 39 and 40 -> unknown columns 40-edge .. 39+edge.
    m = np.zeros((30, 80), np.float32)
    m[:, 40:] = 1.0
    if not vertical:
        m = np.ascontiguousarray(m.T)
    t = trimap_from_matte(m, edge)
    if not vertical:
        t = t.T
    assert t.dtype == np.float32  # as documented, and as normalise_trimap gives
    assert set(np.unique(t).tolist()) == {0.0, 0.5, 1.0}
    for row in t:
        cols = np.flatnonzero(row == 0.5)
        assert len(cols) == 2 * edge
        assert cols[0] == 40 - edge and cols[-1] == 39 + edge
        assert (row[: 40 - edge] == 0.0).all() and (row[40 + edge :] == 1.0).all()


def test_a_matte_of_exactly_one_half_is_inside() -> None:
    matte = np.array([[0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0]], np.float32)
    assert trimap_from_matte(matte, 1).tolist() == [[0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 1.0]]


def test_soft_matte_is_cut_at_one_half_and_its_channel_chosen() -> None:
    # A soft ramp crossing 0.5 between columns 9 and 10, in the alpha of an RGBA image.
    ramp = np.clip((np.arange(20, dtype=np.float32) - 9.5) / 8.0 + 0.5, 0.0, 1.0)
    alpha = np.tile(ramp, (6, 1))
    rgba = np.dstack([np.ones((6, 20, 3), np.float32), alpha])
    t = trimap_from_matte(rgba, 3)
    np.testing.assert_array_equal(np.flatnonzero(t[0] == 0.5), np.arange(7, 13))
    assert (t[:, :7] == 0.0).all() and (t[:, 13:] == 1.0).all()
    # 8-bit integers are scaled as for trimaps
    np.testing.assert_array_equal(trimap_from_matte((alpha * 255).round().astype(np.uint8), 3), t)


def test_a_bool_mask_is_a_binary_matte_and_a_two_level_trimap() -> None:
    # "must hold numbers, got an array of dtype bool" for trimap_from_matte(roto > 0.5, ...), the
    # most direct rough matte there is, while Matter.matte took the same bool array as a trimap.
    mask = np.zeros((6, 20), bool)
    mask[:, 10:] = True
    as_float = mask.astype(np.float32)
    np.testing.assert_array_equal(trimap_from_matte(mask, 3), trimap_from_matte(as_float, 3))
    np.testing.assert_array_equal(trimap_from_matte(mask[..., None], 3), trimap_from_matte(as_float, 3))
    out = normalise_trimap(mask)
    assert out.dtype == np.float32 and np.array_equal(out, as_float)


def test_disc_band_is_round_and_the_border_is_no_edge() -> None:
    yy, xx = np.mgrid[0:101, 0:101]
    r = np.hypot(yy - 50, xx - 50)
    t = trimap_from_matte((r <= 30).astype(np.float32), 4)
    unknown = t == 0.5
    # Euclidean band: within 30 ± (4 + 1) of the centre, and every pixel 30 ± 3 away is unknown.
    assert (np.abs(r[unknown] - 30) <= 5).all()
    assert unknown[np.abs(r - 30) <= 3].all()
    assert (t[r < 25] == 1.0).all() and (t[r > 35] == 0.0).all()
    # touching the frame border is not an edge
    assert trimap_from_matte(np.ones((5, 5), np.float32), 2).tolist() == np.ones((5, 5)).tolist()
    assert (trimap_from_matte(np.zeros((5, 5), np.float32), 2) == 0.0).all()
    assert trimap_from_matte(np.ones((5, 5)), 2).dtype == np.float32  # float64 in, float32 out


@pytest.mark.parametrize("bad", [0, -3, 2.5, "two", "", None, float("nan"), float("inf"), True])
def test_bad_edge_values_name_edge(bad: object) -> None:
    with pytest.raises(InputError, match=r"--edge takes a whole number of pixels > 0.*not "):
        check_edge(bad)
    with pytest.raises(InputError, match=r"--edge"):
        trimap_from_matte(np.zeros((4, 4), np.float32), bad)  # type: ignore[arg-type]


def test_good_edge_values() -> None:
    assert check_edge(3) == 3 and check_edge(4.0) == 4 and check_edge(" 12 ") == 12


def test_rough_matte_errors_say_rough_matte() -> None:
    m = np.zeros((4, 4), np.float32)
    m[0, 0] = np.nan
    with pytest.raises(TrimapError, match="rough matte holds 1 NaN"):
        trimap_from_matte(m, 2)


def test_stray_greys_tell_a_soft_matte_from_a_trimap() -> None:
    from core.trimap import SRGB_UNKNOWN_TOLERANCE, STRAY_GREY, TOLERANCE, stray_share

    rng = np.random.default_rng(5)
    trimap = np.zeros((40, 50), np.float32)
    trimap[10:30, 10:40] = 0.5
    trimap[15:25, 20:30] = 1.0
    assert stray_share(trimap) == 0.0
    # Rounded, ringing or slightly off levels are still a trimap's.
    noisy = np.clip(trimap + rng.uniform(-0.03, 0.03, trimap.shape), 0, 1).astype(np.float32)
    assert stray_share(noisy) == 0.0
    assert stray_share(np.round(trimap * 255).astype(np.uint8)) == 0.0
    # A ramp from black to white: everything between the tolerance and 0.5 ± STRAY_GREY is stray,
    # but for SRGB_UNKNOWN_TOLERANCE each side of 0.5 through the sRGB curve (SRGB_UNKNOWNS).
    ramp = np.tile(np.linspace(0, 1, 1001, dtype=np.float32), (3, 1))
    assert stray_share(ramp) == pytest.approx(1 - 2 * TOLERANCE - 2 * STRAY_GREY - 2 * 2 * SRGB_UNKNOWN_TOLERANCE,
                                              abs=4e-3)
    # One stray pixel of 2000.
    trimap[0, 0] = 0.3
    assert stray_share(trimap) == pytest.approx(1 / 2000)


def test_a_float_trimap_above_one_and_a_half_is_refused_only_in_its_own_channel() -> None:
    grey = np.array([[0.0, 128.0, 255.0]], np.float32)
    with pytest.raises(TrimapError, match=r"float values up to 255: .*divide it by 255.*clamp it to 1"):
        normalise_trimap(grey)
    # the overshoot of a filtered trimap is still FG, up to 1.5 itself (the error message says "up to 1.5")
    assert normalise_trimap(np.array([[0.0, 0.5, 1.4]], np.float32)).tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(np.array([[0.0, 0.5, 1.5]], np.float32)).tolist() == [[0.0, 0.5, 1.0]]
    # an RGBA file whose colour is an HDR picture and whose alpha is the trimap: only alpha counts
    rgba = np.zeros((1, 3, 4), np.float32)
    rgba[..., :3] = 40.0
    rgba[..., 3] = [0.0, 0.5, 1.0]
    assert normalise_trimap(rgba, "alpha").tolist() == [[0.0, 0.5, 1.0]]
    # integers are scaled by their maximum, never refused
    assert normalise_trimap(np.array([[0, 128, 255]], np.uint8)).tolist() == [[0.0, 0.5, 1.0]]


def test_a_trimap_through_the_srgb_curve_has_no_stray_greys() -> None:
    # A painted 0/128/255 PNG read by Nuke's Read (linearised: its grey 0.216) and baked by the node,
    # or a Nuke trimap's 0.5 written to a PNG by a Write (encoded: 188/255): its unknown band was all
    # "stray", and the status line asked whether it was a soft matte, pointing to rough matte.
    from core.colour import from_linear, to_linear
    from core.trimap import stray_share

    trimap = np.zeros((40, 50), np.float32)
    trimap[10:30, 10:40] = 0.5
    trimap[15:25, 20:30] = 1.0
    painted = np.round(trimap * 255) / 255
    for through in (to_linear(painted, "srgb"), np.round(from_linear(trimap, "srgb") * 255).astype(np.uint8)):
        np.testing.assert_array_equal(normalise_trimap(through), trimap)
        assert stray_share(through) == 0.0
    # A soft matte stays a soft matte whichever way its greys went through the curve.
    ramp = np.tile(np.linspace(0, 1, 1001, dtype=np.float32), (3, 1))
    for soft in (ramp, to_linear(ramp, "srgb"), from_linear(ramp, "srgb")):
        assert stray_share(soft) > 0.3


def test_unknown_in_colour_finds_a_trimap_painted_over_transparency() -> None:
    from core.trimap import unknown_in_colour

    grey = np.array([[0.0, 0.5, 0.5, 1.0]], np.float32)
    over_transparency = (grey > 0).astype(np.float32)
    painted = np.dstack([grey, grey, grey, over_transparency])
    assert normalise_trimap(painted).tolist() == [[0.0, 1.0, 1.0, 1.0]]  # auto reads the alpha
    assert unknown_in_colour(painted) == 2
    assert unknown_in_colour(painted[..., ::-1], ["A", "B", "G", "R"]) == 2  # EXR's order
    assert unknown_in_colour(np.dstack([grey, over_transparency])) == 2  # grey and alpha (Y, A)
    # auto reads the colour, or an alpha that is the trimap: nothing hidden
    assert unknown_in_colour(np.dstack([grey, grey, grey, np.ones_like(grey)])) == 0  # opaque
    assert unknown_in_colour(np.dstack([np.zeros((1, 4, 3), np.float32), grey])) == 0  # the trimap in alpha
    assert unknown_in_colour(np.dstack([grey] * 3)) == 0  # no alpha
    assert unknown_in_colour(np.dstack([over_transparency] * 4)) == 0  # a roto in both: no unknown anywhere
    # NaN where auto does not read (a constant alpha but for NaN: the colour is read) is no error here
    nan_alpha = np.dstack([grey, grey, grey, np.array([[1.0, np.nan, 1.0, 1.0]], np.float32)])
    assert normalise_trimap(nan_alpha).tolist() == [[0.0, 0.5, 0.5, 1.0]]
    assert unknown_in_colour(nan_alpha) == 0


def test_matte_in_alpha_finds_a_roto_read_through_its_colour() -> None:
    from core.trimap import matte_in_alpha

    grey = np.array([[0.0, 0.5, 0.5, 1.0]], np.float32)
    black = np.zeros_like(grey)
    roto = np.dstack([black, black, black, grey])
    assert matte_in_alpha(roto, "red") and matte_in_alpha(roto, "luminance")
    assert matte_in_alpha(roto[..., ::-1], "red", ["A", "B", "G", "R"])  # EXR's order
    assert not matte_in_alpha(roto, "auto") and not matte_in_alpha(roto, "alpha")
    assert not matte_in_alpha(np.dstack([grey, grey, grey, grey]), "red")  # the colour holds it too
    assert not matte_in_alpha(np.dstack([black, black, black, black]), "red")  # empty everywhere: nothing hidden
    assert not matte_in_alpha(np.dstack([black] * 3), "red")  # no alpha


def test_mid_grey_share_tells_a_trimap_from_a_rough_matte() -> None:
    from core.colour import to_linear
    from core.trimap import mid_grey_share

    trimap = np.zeros((40, 50), np.float32)
    trimap[10:30, 10:40] = 0.5
    trimap[15:25, 20:30] = 1.0
    share = (20 * 30 - 10 * 10) / (40 * 50)
    assert mid_grey_share(trimap) == share
    assert mid_grey_share(np.round(trimap * 255).astype(np.uint8)) == share  # 128/255
    assert mid_grey_share(to_linear(np.round(trimap * 255) / 255, "srgb")) == share  # as the Nuke node bakes a PNG's
    # a roto, binary or with a soft edge: mid grey only along its edge
    roto = np.zeros((40, 50), np.float32)
    roto[:, 25:] = 1.0
    assert mid_grey_share(roto) == 0.0
    roto[:, 20:30] = np.linspace(0, 1, 10, dtype=np.float32)
    assert mid_grey_share(roto) == 1 / 50  # one column of its ramp, 0.222, is within 5/255 of 0.214


def test_unit_scale_divides_only_a_float_file_on_the_8_bit_scale(caplog: pytest.LogCaptureFixture) -> None:
    grey = np.array([[0.0, 128.0, 255.0]], np.float32)
    with caplog.at_level("WARNING", logger="core.trimap"):
        np.testing.assert_array_equal(unit_scale(grey, "gt/unit_scale_0001.exr", True, "matte"),
                                      grey / np.float32(255.0))
    assert "gt/unit_scale_0001.exr: the matte holds values up to 255: read as 0..255 and divided by 255" in caplog.text
    with_nan = np.array([[np.nan, 255.0]], np.float32)
    np.testing.assert_array_equal(unit_scale(with_nan, "n.exr", True, "matte")[0, 1], 1.0)
    for same, is_float in ((np.array([[0.0, 0.5, 1.5]], np.float32), True),  # 0..1, filtered overshoot kept
                           (np.array([[0.0, 1.0]], np.float32), False),  # an integer file, already scaled
                           (np.full((1, 1), np.nan, np.float32), True), (np.zeros((0, 3), np.float32), True)):
        assert unit_scale(same, "x.exr", is_float, "matte") is same
    with pytest.raises(InputError, match=r"too_big\.exr: the trimap holds values up to 300: expected 0\.\.1"):
        unit_scale(np.array([[0.0, 300.0]], np.float32), "too_big.exr", True, "trimap")


def test_trimap_from_alpha_marks_the_soft_alpha_dilated_and_keeps_the_rest_known() -> None:
    columns = np.arange(30)
    # Background, a soft ramp over columns 10-13, foreground (every row alike).
    ramp = np.zeros((5, 30), np.float32)
    ramp[:, 10:14] = [0.2, 0.4, 0.6, 0.8]
    ramp[:, 14:] = 1.0
    # A binary roto (no soft pixel), its edge between columns 19 and 20: both sides are unknown.
    roto = np.zeros((5, 30), np.float32)
    roto[:, 20:] = 1.0
    for k in (0, 1, 3):
        for alpha, first, last in ((ramp, 10, 13), (roto, 19, 20)):
            expect = np.where(columns < first - k, 0.0, np.where(columns > last + k, 1.0, 0.5))
            made = trimap_from_alpha(alpha, k)
            assert made.dtype == np.float32
            np.testing.assert_array_equal(made, np.broadcast_to(expect, alpha.shape))
    # The dilation is Euclidean, a disc: a single soft pixel's band at 3 px.
    dot = np.zeros((11, 11), np.float32)
    dot[5, 5] = 0.5
    yy, xx = np.mgrid[0:11, 0:11]
    np.testing.assert_array_equal(trimap_from_alpha(dot, 3) == 0.5, np.hypot(yy - 5, xx - 5) <= 3)


def test_trimap_from_alpha_reads_an_8_bit_mattes_noise_as_known() -> None:
    # A keyed 8-bit matte: 1-5/255 haze over its background, 250-254/255 speckle in its core.
    rng = np.random.default_rng(0)
    alpha = np.zeros((60, 60), np.float32)
    alpha[:, 30:] = 1.0
    alpha[:, 28:32] = [0.25, 0.5, 0.75, 0.9]
    noise = rng.integers(0, 6, alpha.shape).astype(np.float32) / np.float32(255)  # float32, as read_image gives
    noisy = np.where(alpha == 0, noise, np.where(alpha == 1, 1 - noise, alpha)).astype(np.float32)
    made = trimap_from_alpha(noisy, 2)
    np.testing.assert_array_equal(made, trimap_from_alpha(alpha, 2))  # the noise changes nothing
    assert (made[:, :26] == 0).all() and (made[:, 34:] == 1).all() and (made[:, 26:34] == 0.5).all()
    # read exactly, the haze made almost the whole frame unknown
    assert (trimap_from_alpha(noisy, 2, tolerance=0.0) == 0.5).mean() > 0.95
    # one level above the tolerance is soft: the rule is levels 0-5 known, 6 not (float32, 16-bit and half alike)
    for level, dtype in ((5, np.float32), (5, np.float16), (6, np.float32)):
        one = np.zeros((5, 5), np.float32)
        one[2, 2] = np.asarray(level / 255, dtype)
        assert (trimap_from_alpha(one, 0)[2, 2] == 0.5) == (level == 6)
        assert (trimap_from_alpha(1 - one, 0)[2, 2] == 0.5) == (level == 6)
    assert 5 / 255 < ALPHA_NOISE < 6 / 255
    # all known: no unknown pixel, no error
    assert (trimap_from_alpha(np.full((4, 4), 2 / 255, np.float32), 5) == 0).all()
    assert (trimap_from_alpha(np.ones((4, 4), np.float32), 5) == 1).all()
