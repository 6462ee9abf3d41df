"""The alternating rounds after the networks: known answers on two-colour scenes, contracts, errors."""

from __future__ import annotations

import numpy as np
import pytest

from core.alternate import Settings, alternate
from core.errors import InputError

F_COLOUR = np.array([0.9, 0.3, 0.1], np.float32)
B_COLOUR = np.array([0.1, 0.4, 0.8], np.float32)


def _two_colour_scene(h: int = 40, w: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A soft edge between two flat colours: alpha ramps 1 -> 0 over x = 20..40; unknown band 16..44."""
    x = np.arange(w, dtype=np.float32)
    alpha = np.tile(np.clip((40 - x) / 20, 0, 1), (h, 1)).astype(np.float32)
    image = alpha[..., None] * F_COLOUR + (1 - alpha[..., None]) * B_COLOUR
    trimap = np.where(x < 16, 1.0, np.where(x >= 44, 0.0, 0.5)).astype(np.float32)
    return image.astype(np.float32), np.tile(trimap, (h, 1)), alpha


def _layers(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    return np.broadcast_to(F_COLOUR, (*shape, 3)).copy(), np.broadcast_to(B_COLOUR, (*shape, 3)).copy()


def test_true_alpha_and_colours_are_a_fixed_point() -> None:
    # With the true F and B, the F step gives F back and the compositing equation gives the true
    # alpha; a ramp between two colours is affine in the colour, so the matting Laplacian costs
    # nothing there either: every round returns the truth.
    image, trimap, truth = _two_colour_scene()
    fg, bg = _layers(truth.shape)
    alpha, f = alternate(image, trimap, truth, fg, bg, Settings(rounds=3))
    assert alpha.shape == truth.shape and alpha.dtype == np.float32 and f.shape == image.shape
    assert np.abs(alpha - truth).max() < 2e-3
    unknown = trimap == 0.5
    assert np.abs(f[unknown & (truth > 0.05)] - F_COLOUR).max() < 5e-3


def test_rounds_pull_a_biased_alpha_back_to_the_compositing_equation() -> None:
    # The matting network's typical failure: alpha too low across the band. With good F and B
    # samples, each round moves it towards the plate's own answer.
    image, trimap, truth = _two_colour_scene()
    fg, bg = _layers(truth.shape)
    unknown = trimap == 0.5
    biased = np.where(unknown, np.clip(truth - 0.2, 0, 1), truth).astype(np.float32)
    before = np.abs(biased - truth)[unknown].mean()
    errors = []
    for rounds in (1, 3):
        alpha, _ = alternate(image, trimap, biased, fg, bg, Settings(rounds=rounds))
        errors.append(np.abs(alpha - truth)[unknown].mean())
    assert errors[0] < 0.5 * before
    assert errors[1] < errors[0]
    assert errors[1] < 0.02


def test_known_pixels_keep_the_trimap_and_the_plate(rng: np.random.Generator) -> None:
    image, trimap, truth = _two_colour_scene()
    image = np.clip(image + rng.normal(0, 0.02, image.shape).astype(np.float32), 0, 1)
    fg, bg = _layers(truth.shape)
    noisy = np.clip(truth + rng.normal(0, 0.1, truth.shape), 0, 1).astype(np.float32)
    alpha, f = alternate(image, trimap, noisy, fg, bg)
    assert np.array_equal(alpha[trimap == 1], np.ones((trimap == 1).sum(), np.float32))
    assert np.array_equal(alpha[trimap == 0], np.zeros((trimap == 0).sum(), np.float32))
    assert np.array_equal(f[trimap == 1], image[trimap == 1])
    assert 0 <= alpha.min() and alpha.max() <= 1 and 0 <= f.min() and f.max() <= 1
    # Smoothing: the noise the "network" added is mostly gone.
    unknown = trimap == 0.5
    assert np.abs(alpha - truth)[unknown].mean() < 0.5 * np.abs(noisy - truth)[unknown].mean()


def test_no_rounds_keep_the_network_alpha_and_only_solve_the_foreground() -> None:
    image, trimap, truth = _two_colour_scene()
    fg, bg = _layers(truth.shape)
    guess = np.where(trimap == 0.5, 0.5, truth).astype(np.float32)
    alpha, f = alternate(image, trimap, guess, fg * 0.5, bg, Settings(rounds=0))
    assert np.array_equal(alpha, guess)
    # F moved from the network's (halved) colours towards what the plate and alpha 0.5 say.
    unknown = trimap == 0.5
    residual = np.abs(0.5 * f + 0.5 * bg - image)[unknown].mean()
    assert residual < np.abs(0.5 * (fg * 0.5) + 0.5 * bg - image)[unknown].mean()


def test_a_trimap_without_known_pixels_still_solves() -> None:
    image, _, truth = _two_colour_scene()
    fg, bg = _layers(truth.shape)
    trimap = np.full(truth.shape, 0.5, np.float32)
    alpha, _ = alternate(image, trimap, truth, fg, bg, Settings(rounds=1))
    assert np.all(np.isfinite(alpha)) and np.abs(alpha - truth).max() < 0.02


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rounds": -1}, "rounds must be a whole number >= 0"),
        ({"rounds": 1.5}, "rounds must be a whole number >= 0"),
        ({"rounds": True}, "rounds must be a whole number >= 0"),
        ({"smoothing": 0}, "smoothing must be a number > 0"),
        ({"smoothing": float("nan")}, "smoothing must be a number > 0"),
        ({"confidence_scale": -1}, "confidence_scale must be a number > 0"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Settings(**kwargs)


def test_the_foreground_weight_must_be_positive() -> None:
    image, trimap, truth = _two_colour_scene()
    fg, bg = _layers(truth.shape)
    with pytest.raises(InputError, match="fg_weight must be > 0"):
        alternate(image, trimap, truth, fg, bg, fg_weight=0)


def test_the_laplacian_matches_pymatting_on_the_unknown_pixels(rng: np.random.Generator) -> None:
    from pymatting import cf_laplacian

    from core.alternate import matting_laplacian

    image = rng.random((23, 31, 3))
    trimap = np.zeros((23, 31))
    trimap[5:18, 6:25] = 0.5
    trimap[9:14, 11:20] = 1.0
    trimap[0:3, 0:4] = 0.5  # unknown pixels on the frame's edge too
    unknown, fg = trimap == 0.5, trimap == 1.0
    full = cf_laplacian(image, epsilon=1e-7).tocsr()
    u, k = unknown.ravel(), ~unknown.ravel()
    matrix, pull = matting_laplacian(image, unknown, fg)
    assert matrix.shape == (u.sum(), u.sum())
    assert np.allclose(matrix.toarray(), full[u][:, u].toarray(), atol=1e-8)
    assert np.allclose(pull, -(full[u][:, k] @ fg.ravel()[k].astype(float)), atol=1e-8)
