"""core.trimap: every common trimap encoding normalises to exactly {0, 0.5, 1}."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import TrimapError
from core.trimap import TOLERANCE, normalise_trimap, trimap_stats


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


def test_single_channel_any_name() -> None:
    t = np.array([[[0.0], [0.5], [1.0]]], np.float32)
    for channel in ("auto", "red", "luminance"):
        assert normalise_trimap(t, channel).tolist() == [[0.0, 0.5, 1.0]]
    assert normalise_trimap(t, "alpha", ["A"]).tolist() == [[0.0, 0.5, 1.0]]


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
