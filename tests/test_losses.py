"""Losses of core.training.losses against values worked out by hand (patent eq. 2-10)."""

from __future__ import annotations

import pytest
import torch

from core.training import losses

TOL = 1e-5


def _pixels(*rgb: tuple[float, float, float]) -> torch.Tensor:
    """A 1×3×1×W image from W RGB triples."""
    return torch.tensor(rgb, dtype=torch.float32).T.reshape(1, 3, 1, len(rgb))


def _row(*values: float) -> torch.Tensor:
    """A 1×1×1×W map."""
    return torch.tensor(values, dtype=torch.float32).reshape(1, 1, 1, len(values))


def test_background_loss_eq2():
    pred = _pixels((0.5, 0.5, 0.5), (1.0, 1.0, 1.0))
    bg = _pixels((0.2, 0.5, 0.8), (0.0, 0.0, 0.0))
    # pixel 0: |diff| = (0.3, 0, 0.3), channel mean 0.2; pixel 1: (1, 1, 1), mean 1.
    assert float(losses.background_loss(pred, bg, _row(1, 0))) == pytest.approx(0.2, abs=TOL)
    # both unknown: (0.2 + 1) / 2 = 0.6
    assert float(losses.background_loss(pred, bg, _row(1, 1))) == pytest.approx(0.6, abs=TOL)
    # |U| = 0 is 0, not NaN; a bool mask works too
    assert float(losses.background_loss(pred, bg, _row(0, 0))) == 0.0
    assert float(losses.background_loss(pred, bg, _row(1, 0).bool())) == pytest.approx(0.2, abs=TOL)


def test_unknown_pixels_are_counted_over_the_whole_batch():
    # |U| is the batch's unknown pixels, not a mean of per-crop means: crop 0 has 1 unknown pixel
    # off by 0.9, crop 1 has 3 off by 0.1 -> (0.9 + 3·0.1) / 4 = 0.3 (per-crop means would give 0.5).
    pred = torch.zeros(2, 3, 1, 3)
    bg = torch.zeros(2, 3, 1, 3)
    bg[0] = 0.9
    bg[1] = 0.1
    unknown = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]]).reshape(2, 1, 1, 3)
    assert float(losses.background_loss(pred, bg, unknown)) == pytest.approx(0.3, abs=TOL)
    alpha = torch.zeros(2, 1, 1, 3)
    terms = losses.matting_loss(alpha + bg[:, :1], alpha, torch.zeros(2, 3, 1, 3), torch.zeros(2, 3, 1, 3),
                                torch.zeros(2, 3, 1, 3), unknown)
    assert float(terms["alpha"]) == pytest.approx(0.3, abs=TOL)


def test_foreground_l1_loss_eq4():
    pred = _pixels((0.0, 0.0, 0.0), (0.4, 0.4, 0.4), (0.9, 0.9, 0.9))
    fg = _pixels((0.3, 0.6, 0.0), (0.1, 0.4, 0.7), (0.9, 0.9, 0.9))
    # pixel 0 excluded; pixel 1: |diff| = (0.3, 0, 0.3) mean 0.2; pixel 2: 0. (0.2 + 0) / 2 = 0.1
    assert float(losses.foreground_l1_loss(pred, fg, _row(0, 1, 1))) == pytest.approx(0.1, abs=TOL)


@pytest.mark.parametrize(
    "alpha, weight",
    [(0.0, 0.25), (0.25, 1.0), (0.5, 1.75), (0.75, 1.0), (1.0, 0.25)],
)
def test_composition_weight_eq6(alpha, weight):
    # 3·0 + 1/4; 3·0.25 + 1/4 = 1; 3·0.5 + 1/4 = 1.75 = −3·0.5 + 13/4; −3·0.75 + 13/4 = 1; −3 + 13/4
    assert float(losses.composition_weight(torch.tensor(alpha))) == pytest.approx(weight, abs=TOL)


def _composite_case():
    pred_fg = _pixels((1.0, 1.0, 1.0), (1.0, 1.0, 1.0))
    bg = _pixels((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    alpha = _row(0.5, 0.25)
    image = _pixels((0.4, 0.4, 0.4), (0.05, 0.05, 0.05))
    return pred_fg, bg, alpha, image


def test_compositional_loss_eq5():
    pred_fg, bg, alpha, image = _composite_case()
    # composites α·1 + (1−α)·0 = 0.5 and 0.25; |0.5 − 0.4| = 0.1, |0.25 − 0.05| = 0.2; mean 0.15
    assert float(losses.compositional_loss(pred_fg, bg, alpha, image, _row(1, 1))) == pytest.approx(0.15, abs=TOL)


def test_weighted_compositional_loss_eq7():
    pred_fg, bg, alpha, image = _composite_case()
    # ω(0.5) = 1.75, ω(0.25) = 1: (1.75·0.1 + 1·0.2) / 2 = (0.175 + 0.2) / 2 = 0.1875
    got = losses.weighted_compositional_loss(pred_fg, bg, alpha, image, _row(1, 1))
    assert float(got) == pytest.approx(0.1875, abs=TOL)
    # only pixel 1 unknown: 0.2
    got = losses.weighted_compositional_loss(pred_fg, bg, alpha, image, _row(0, 1))
    assert float(got) == pytest.approx(0.2, abs=TOL)


def test_foreground_loss_eq8():
    pred_fg, bg, alpha, image = _composite_case()
    fg = _pixels((0.9, 0.9, 0.9), (0.9, 0.9, 0.9))
    # L_fg = 0.1 (every channel off by 0.1); L_wcomp = 0.1875; λ = 2: 0.1 + 2·0.1875 = 0.475
    terms = losses.foreground_loss(pred_fg, fg, bg, alpha, image, _row(1, 1), lambda_comp=2.0)
    assert float(terms["fg"]) == pytest.approx(0.1, abs=TOL)
    assert float(terms["wcomp"]) == pytest.approx(0.1875, abs=TOL)
    assert float(terms["total"]) == pytest.approx(0.475, abs=TOL)
    # default λ = 1: 0.2875
    terms = losses.foreground_loss(pred_fg, fg, bg, alpha, image, _row(1, 1))
    assert float(terms["total"]) == pytest.approx(0.2875, abs=TOL)


def test_gradient_magnitude_central_differences_replicate():
    # α[y, x] = 0.1·x + 0.2·y on 3×3.
    ys, xs = torch.meshgrid(torch.arange(3.0), torch.arange(3.0), indexing="ij")
    alpha = (0.1 * xs + 0.2 * ys).reshape(1, 1, 3, 3)
    g = losses.gradient_magnitude(alpha)
    # centre: g_x = (0.2 − 0)/2 = 0.1, g_y = (0.4 − 0)/2 = 0.2 -> sqrt(0.01 + 0.04) = 0.223607
    assert float(g[0, 0, 1, 1]) == pytest.approx(0.223607, abs=TOL)
    # corner (0, 0), replicate padding: g_x = (0.1 − 0)/2 = 0.05, g_y = (0.2 − 0)/2 = 0.1
    # -> sqrt(0.0025 + 0.01) = 0.111803
    assert float(g[0, 0, 0, 0]) == pytest.approx(0.111803, abs=TOL)
    # a constant matte has no gradient, also at the border (replicate, not zero, padding)
    assert float(losses.gradient_magnitude(torch.ones(1, 1, 4, 4)).max()) < 2e-6


def _matting_case():
    pred = _row(0.0, 0.5, 1.0)
    alpha = _row(0.0, 0.0, 1.0)
    fg = _pixels((1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0))
    bg = _pixels((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    image = _pixels((0.0, 0.0, 0.0), (0.3, 0.3, 0.3), (1.0, 1.0, 1.0))
    return pred, alpha, image, fg, bg


def test_matting_loss_eq9_eq10():
    pred, alpha, image, fg, bg = _matting_case()
    terms = losses.matting_loss(pred, alpha, image, fg, bg, _row(1, 1, 1))
    # L_alpha: |α_p − α_g| = (0, 0.5, 0) -> (ε + 0.5 + ε) / 3 = 0.166667
    assert float(terms["alpha"]) == pytest.approx(0.5 / 3, abs=TOL)
    # L_comp: c_p = α_p·1 + (1 − α_p)·0 = (0, 0.5, 1) vs image (0, 0.3, 1): (0 + 0.2 + 0) / 3 = 0.066667
    assert float(terms["comp"]) == pytest.approx(0.2 / 3, abs=TOL)
    # L_dm = 0.5·0.166667 + 0.5·0.066667 = 0.116667
    assert float(terms["dm"]) == pytest.approx(0.35 / 3, abs=TOL)
    # L_grad: replicate-padded pred (0, 0, .5, 1, 1) -> g_x = (.25, .5, .25);
    # gt (0, 0, 0, 1, 1) -> g_x = (0, .5, .5); g_y = 0 (one row). |diff| = (.25, 0, .25) -> 0.5/3
    assert float(terms["grad"]) == pytest.approx(0.5 / 3, abs=TOL)
    # eq. 10: 0.116667 + 0.166667 = 0.283333
    assert float(terms["total"]) == pytest.approx(0.85 / 3, abs=TOL)
    # only the middle pixel unknown: L_alpha = 0.5, L_comp = 0.2, L_grad = 0 -> 0.35
    terms = losses.matting_loss(pred, alpha, image, fg, bg, _row(0, 1, 0))
    assert float(terms["total"]) == pytest.approx(0.35, abs=TOL)


def test_losses_backpropagate_without_nan():
    torch.manual_seed(0)
    pred = torch.full((2, 1, 8, 8), 0.5, requires_grad=True)  # flat: gradient magnitude 0
    alpha = torch.rand(2, 1, 8, 8)
    image, fg, bg = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    unknown = (torch.rand(2, 1, 8, 8) > 0.5).float()
    losses.matting_loss(pred, alpha, image, fg, bg, unknown)["total"].backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert pred.grad.abs().sum() > 0
    empty = torch.zeros(2, 1, 8, 8)
    assert float(losses.matting_loss(pred, alpha, image, fg, bg, empty)["total"].detach()) == 0.0
