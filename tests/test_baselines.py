"""core.baselines on synthetic images whose alpha is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from core.baselines import BASELINES, estimate_alpha_clustering, estimate_foreground

F = np.array([0.9, 0.3, 0.1])
B = np.array([0.1, 0.4, 0.8])


def _ramp_example(h: int = 24, w: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two flat colours mixed by a linear alpha ramp across columns 8..w-9; unknown band between."""
    x = np.arange(w)
    alpha = np.tile(np.clip((x - 8) / (w - 17), 0.0, 1.0), (h, 1))
    image = alpha[..., None] * F + (1 - alpha[..., None]) * B
    trimap = np.full((h, w), 0.5)
    trimap[:, :5] = 0.0
    trimap[:, -5:] = 1.0
    return image, trimap, alpha


def test_registry_names() -> None:
    assert list(BASELINES) == ["closed_form", "knn", "lbdm", "clustering"]


@pytest.mark.parametrize("name, tolerance", [("closed_form", 1e-3), ("lbdm", 1e-3), ("clustering", 1e-6)])
def test_recovers_a_linear_ramp_between_two_flat_colours(name: str, tolerance: float) -> None:
    # Closed-form and LBDM: alpha is an affine function of colour in every window, which those
    # Laplacians reproduce exactly (up to their ε regularisation). Clustering: both sides have one
    # colour, every mixed pixel lies on the line between them.
    image, trimap, alpha = _ramp_example()
    result = BASELINES[name](image, trimap)
    assert result.shape == alpha.shape and result.dtype == np.float32
    assert np.abs(result - alpha).max() < tolerance


def test_knn_is_close_on_the_ramp() -> None:
    # KNN matting has no affine model: it is only near the ramp (mean error measured 0.028).
    image, trimap, alpha = _ramp_example()
    result = BASELINES["knn"](image, trimap)
    assert np.abs(result - alpha).mean() < 0.05
    assert np.all(np.diff(result.mean(0)) >= -1e-3)  # still a ramp


@pytest.mark.parametrize("name", list(BASELINES))
def test_known_regions_are_forced_to_the_trimap(name: str, rng) -> None:
    image, trimap, _ = _ramp_example()
    image = np.clip(image + rng.normal(0, 0.2, image.shape), 0, 1)  # known regions no longer match F, B
    trimap8 = np.round(trimap * 255) / 255  # as read from a 0/128/255 file
    result = BASELINES[name](image, trimap8)
    assert np.all(result[:, :5] == 0.0) and np.all(result[:, -5:] == 1.0)
    assert result.min() >= 0.0 and result.max() <= 1.0


@pytest.mark.parametrize("name", list(BASELINES))
def test_degenerate_trimaps(name: str) -> None:
    image, trimap, _ = _ramp_example(8, 12)
    known = np.where(trimap < 0.5, 0.0, 1.0)
    np.testing.assert_array_equal(BASELINES[name](image, known), known)  # nothing unknown
    no_fg = np.where(trimap == 1.0, 0.5, trimap)
    assert np.all(BASELINES[name](image, no_fg) == 0.0)  # only BG known: all background
    no_bg = np.where(trimap == 0.0, 0.5, trimap)
    assert np.all(BASELINES[name](image, no_bg) == 1.0)


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_clustering_picks_the_right_pair_of_clusters(method: str, rng) -> None:
    """Two FG colours and two BG colours (with a little noise, so sklearn really clusters):
    mixtures of a known pair get that pair's alpha."""
    red, yellow, blue, green = np.eye(3)[0], np.array([1.0, 1.0, 0.0]), np.eye(3)[2], np.array([0.0, 0.6, 0.0])
    h, w = 20, 40
    image = np.zeros((h, w, 3))
    trimap = np.full((h, w), 0.5)
    trimap[:, :12], trimap[:, -12:] = 0.0, 1.0
    image[:10, :12], image[10:, :12] = blue, green
    image[:10, -12:], image[10:, -12:] = red, yellow
    image[:, :12] += rng.normal(0, 0.01, (h, 12, 3))
    image[:, -12:] += rng.normal(0, 0.01, (h, 12, 3))
    truth = np.tile(np.linspace(0.1, 0.9, 16), (h, 1))
    image[:10, 12:-12] = truth[:10, :, None] * red + (1 - truth[:10, :, None]) * blue
    image[10:, 12:-12] = truth[10:, :, None] * yellow + (1 - truth[10:, :, None]) * green
    image = np.clip(image, 0, 1)
    result = estimate_alpha_clustering(image, trimap, method=method, clusters=2)
    assert np.abs(result[:, 12:-12] - truth).max() < 0.03
    again = estimate_alpha_clustering(image, trimap, method=method, clusters=2)
    np.testing.assert_array_equal(result, again)  # seeded: reproducible


def test_estimate_foreground_recovers_flat_colours() -> None:
    image, _, alpha = _ramp_example()
    fg, bg = estimate_foreground(image, alpha)
    assert fg.shape == bg.shape == image.shape and fg.dtype == np.float32
    assert np.abs(fg - F)[alpha > 0.05].max() < 1e-3
    assert np.abs(bg - B)[alpha < 0.95].max() < 1e-3


@pytest.mark.parametrize("name", ["clustering", "closed_form"])
def test_8bit_arrays_as_pil_reads_them(name: str) -> None:
    # A uint8 trimap was cast to float first and refused as a 0..255 float one ("pass it as
    # uint8"), and a uint8 image clipped to [0, 1] (almost all white): both are scaled by 255.
    image, trimap, _ = _ramp_example()
    image8 = np.round(image * 255).astype(np.uint8)
    trimap8 = np.round(trimap * 255).astype(np.uint8)  # 0/128/255
    want = BASELINES[name](image8.astype(np.float32) / 255, trimap8.astype(np.float32) / 255)
    np.testing.assert_allclose(BASELINES[name](image8, trimap8), want, atol=1e-6)


def test_estimate_foreground_scales_8bit_arrays() -> None:
    image, _, alpha = _ramp_example()
    image8, alpha8 = np.round(image * 255).astype(np.uint8), np.round(alpha * 255).astype(np.uint8)
    fg, bg = estimate_foreground(image8, alpha8)
    want_fg, want_bg = estimate_foreground(image8.astype(np.float32) / 255, alpha8.astype(np.float32) / 255)
    np.testing.assert_allclose(fg, want_fg, atol=1e-6)
    np.testing.assert_allclose(bg, want_bg, atol=1e-6)
