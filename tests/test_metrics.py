"""core.metrics: SAD, MSE, gradient and connectivity errors and the FG colour error, against
answers worked out by hand from their definitions (alphamatting.com / Deep Image Matting code)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import InputError
from core.metrics import (
    alpha_errors,
    connectivity_error,
    foreground_error,
    gaussian_derivative_kernel,
    gradient_error,
    gradient_magnitude,
    mse,
    sad,
    unknown_region,
)


def _trimap(h: int, w: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """BG everywhere, unknown (0.5) in rows y0:y1, columns x0:x1."""
    t = np.zeros((h, w), np.float32)
    y0, y1, x0, x1 = box
    t[y0:y1, x0:x1] = 0.5
    return t


def test_identical_mattes_score_zero(rng) -> None:
    gt = rng.random((32, 40)).astype(np.float32)
    tri = np.full((32, 40), 0.5, np.float32)
    assert alpha_errors(gt, gt, tri) == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}
    fg = rng.random((32, 40, 3))
    assert foreground_error(fg, fg, gt, tri) == {"fg_sad": 0.0, "fg_mse": 0.0}


def test_constant_offset_sad_and_mse_over_the_unknown_region_only() -> None:
    gt = np.full((20, 30), 0.4)
    alpha = gt + 0.1
    alpha[:5] = 1.0  # rows outside the unknown box: must not count
    tri = _trimap(20, 30, (5, 15, 10, 20))  # 10×10 = 100 unknown pixels
    # SAD = 100 · 0.1 / 1000; MSE = 0.1² (mean over the 100 unknown pixels)
    assert sad(alpha, gt, tri) == pytest.approx(0.01, abs=1e-12)
    assert mse(alpha, gt, tri) == pytest.approx(0.01, abs=1e-12)


def test_region_may_be_an_8bit_trimap_or_a_mask() -> None:
    tri8 = np.array([[0, 128, 255, 128]], np.float32) / 255  # as read from a 0/128/255 PNG
    assert unknown_region(tri8).tolist() == [[False, True, False, True]]
    mask = np.array([[False, True, False, True]])
    a, gt = np.array([[0.0, 0.3, 0.0, 0.5]]), np.zeros((1, 4))
    assert sad(a, gt, tri8) == sad(a, gt, mask) == pytest.approx(0.8 / 1000)
    assert mse(a, gt, np.zeros((1, 4))) == 0.0  # no unknown pixels: nothing is wrong


def test_gaussian_derivative_kernel_is_the_dim_one() -> None:
    h = gaussian_derivative_kernel(1.4)
    # half size = ceil(1.4·sqrt(-2·ln(sqrt(2π)·1.4·0.01))) = ceil(3.62) = 4
    assert h.shape == (9, 9)
    assert float((h * h).sum()) == pytest.approx(1.0)
    assert np.allclose(h, -h[:, ::-1])  # odd in x
    assert np.allclose(h, h[::-1, :])  # even in y


def test_gradient_magnitude_is_the_2d_convolution_with_the_dim_kernels(rng) -> None:
    from scipy import ndimage

    alpha = rng.random((37, 52))
    alpha[:, :5] = 1.0  # a step at the replicated border too
    h = gaussian_derivative_kernel(1.4)
    want = np.hypot(ndimage.convolve(alpha, h, mode="nearest"), ndimage.convolve(alpha, h.T, mode="nearest"))
    assert np.allclose(gradient_magnitude(alpha), want, rtol=0, atol=1e-12)


def test_gradient_error_of_a_ramp() -> None:
    """A ramp of slope s against a flat GT: |∇α| = s·K inside, so the error is N·(s·K)²/1000.

    K follows from the kernel h(i, j) = G(i)·G'(j)/‖G‖‖G'‖, G'(j) = −j·G(j)/σ²: convolving
    s·x gives s·ΣG(i)·Σj²G(j)/σ² / (‖G‖‖G'‖).
    """
    sigma, s = 1.4, 0.01
    j = np.arange(-4, 5, dtype=np.float64)
    g = np.exp(-(j**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    dg = -j * g / sigma**2
    k = g.sum() * (j * j * g).sum() / sigma**2 / (np.linalg.norm(g) * np.linalg.norm(dg))
    assert k == pytest.approx(9.684, abs=1e-3)

    x = np.arange(40, dtype=np.float64)
    ramp = np.tile(0.3 + s * x, (40, 1))
    flat = np.full((40, 40), 0.5)
    tri = _trimap(40, 40, (10, 30, 10, 30))  # 400 pixels, ≥ 4 px (the kernel half size) from the border
    expected = 400 * (s * k) ** 2 / 1000
    assert gradient_error(ramp, flat, tri) == pytest.approx(expected, rel=1e-9)
    assert gradient_error(flat, ramp, tri) == pytest.approx(expected, rel=1e-9)
    # The same ramp turned 90° (along y) scores the same.
    assert gradient_error(ramp.T, flat, tri) == pytest.approx(expected, rel=1e-9)
    # Two ramps of the same slope, offset: same gradients, no error.
    assert gradient_error(ramp, ramp + 0.1, tri) == pytest.approx(0.0, abs=1e-15)


def test_connectivity_error_penalises_a_disconnected_blob() -> None:
    gt = np.zeros((40, 40))
    gt[10:30, 10:30] = 1.0
    gt[9, 10:30] = 0.5  # a soft edge, connected to the body
    tri = np.full((40, 40), 0.5)
    assert connectivity_error(gt, gt, tri) == 0.0
    alpha = gt.copy()
    alpha[2:5, 2:5] = 0.8  # 9 px not connected to the matte, where the GT is 0
    # Those pixels leave Ω at the first threshold (0.1), so l = 0, φ(α) = 1 − 0.8 = 0.2 and
    # φ(α_gt) = 1: |Δφ| = 0.8 on 9 pixels.
    assert connectivity_error(alpha, gt, tri) == pytest.approx(9 * 0.8 / 1000, abs=1e-12)
    assert alpha_errors(alpha, gt, tri)["conn"] > 0


def test_connectivity_is_4_connected_a_diagonal_touch_is_no_connection() -> None:
    # The reference (bwconncomp(·, 4)): a blob touching the matte only at a corner is a component
    # of its own. GT 0.85 and alpha 0.65 on a 3×3 blob whose corner meets the square's.
    gt = np.zeros((40, 40))
    gt[10:30, 10:30] = 1.0
    gt[7:10, 7:10] = 0.85
    alpha = gt.copy()
    alpha[7:10, 7:10] = 0.65
    tri = np.full((40, 40), 0.5)
    # 4-connected: the blob is never in the largest component, l = 0, φ(α) = 0.35, φ(α_gt) = 0.15:
    # |Δφ| = 0.2 on 9 pixels. (8-connected it would stay joined up to 0.6: 9 · 0.25.)
    assert connectivity_error(alpha, gt, tri) == pytest.approx(9 * 0.2 / 1000, abs=1e-12)


def test_connectivity_counts_only_the_unknown_region() -> None:
    gt = np.zeros((20, 20))
    gt[5:15, 5:15] = 1.0
    alpha = gt.copy()
    alpha[0:2, 0:2] = 0.9
    tri = np.zeros((20, 20))
    tri[5:15, 5:15] = 1.0  # the blob lies in known BG: not scored
    assert connectivity_error(alpha, gt, tri) == 0.0


def test_foreground_error_is_alpha_weighted() -> None:
    fg_gt = np.full((4, 5, 3), 0.2)
    fg = fg_gt + 0.1
    alpha_gt = np.zeros((4, 5))
    alpha_gt[:2] = 0.5  # 10 pixels at α = 0.5; the other 10 at α = 0 do not count
    tri = np.full((4, 5), 0.5)
    err = foreground_error(fg, fg_gt, alpha_gt, tri)
    # SAD: 10 px · 3 channels · 0.5 · 0.1 / 1000; MSE: (10·3·0.5·0.01) / (20 px · 3 channels)
    assert err["fg_sad"] == pytest.approx(0.0015, abs=1e-12)
    assert err["fg_mse"] == pytest.approx(0.0025, abs=1e-12)


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(InputError, match="same"):
        sad(np.zeros((4, 4)), np.zeros((4, 5)), np.zeros((4, 4)))
    with pytest.raises(InputError, match="do not match"):
        foreground_error(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), np.zeros((4, 5)), np.zeros((4, 4)))


def test_background_error_weights_by_one_minus_alpha() -> None:
    from core.metrics import background_error

    alpha = np.array([[0.0, 0.25, 1.0]])
    bg_gt = np.zeros((1, 3, 3))
    bg = np.full((1, 3, 3), 0.5)
    unknown = np.ones((1, 3), bool)
    out = background_error(bg, bg_gt, alpha, unknown)
    # (1 - alpha)·|0.5| summed over 3 channels: (1 + 0.75 + 0)·1.5 = 2.625, / 1000.
    assert out["bg_sad"] == pytest.approx(2.625e-3)
    assert out["bg_mse"] == pytest.approx((1 + 0.75 + 0) * 0.25 * 3 / 9)


def test_connectivity_thresholds_are_the_exact_tenths() -> None:
    # The reference's thresholds 0:0.1:1 hold 0.3, 0.6 and 0.7 exactly (MATLAB's colon), so an
    # alpha of exactly 0.6 (153/255 of an 8-bit matte) is still >= the threshold 0.6. Summing
    # 0.1 six times (or 6 * 0.1) gives 0.6000000000000001 and drops it one step early.
    gt = np.ones((2, 5))
    alpha = np.full((2, 5), 153 / 255)  # == 0.6 in float64
    tri = np.full((2, 5), 0.5)
    # Ω holds every pixel up to t = 0.6 and none at 0.7: l = 0.6, d(α) = 0 (φ = 1),
    # d(α_gt) = 0.4 (φ = 0.6): |Δφ| = 0.4 on 10 pixels.
    assert connectivity_error(alpha, gt, tri) == pytest.approx(10 * 0.4 / 1000, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.dtype(">u2")])
def test_integer_mattes_and_trimaps_are_scaled_by_their_maximum(rng, dtype) -> None:
    # The reference code takes 8-bit files as read and divides by 255 itself; an integer array
    # given here means the same (not alpha 0..255, nor a 128 unknown that reads as foreground).
    # Big-endian 16-bit samples (np.frombuffer(..., ">u2")) too: refused as not uint16 before.
    top = np.iinfo(dtype).max
    gt = rng.integers(0, top, (24, 24), endpoint=True).astype(dtype)
    alpha = rng.integers(0, top, (24, 24), endpoint=True).astype(dtype)
    tri = np.zeros((24, 24), dtype)
    tri[4:20, 4:20] = top // 2 + 1  # 128 (8-bit), 32768 (16-bit): unknown
    tri[8:16, 8:16] = top
    expected = alpha_errors(alpha / top, gt / top, tri / top)
    assert expected["sad"] > 0 and expected["mse"] > 0
    got = alpha_errors(alpha, gt, tri)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert unknown_region(tri).sum() == 16 * 16 - 8 * 8


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint32])
def test_other_integer_types_are_refused_not_scaled_by_their_maximum(dtype) -> None:
    # np.array of Python ints is int64 (and PIL's mode "I" int32): divided by int64's maximum,
    # 0/128/255 all read as about 0, a trimap as all background and every error 0.
    tri = np.array([[0, 128, 255, 128]])
    gt = np.array([[0, 51, 255, 102]])
    alpha = np.array([[0, 102, 255, 102]])
    assert sad(alpha.astype(np.uint8), gt.astype(np.uint8), tri.astype(np.uint8)) == pytest.approx(0.2 / 1000)
    for args, what in (((alpha.astype(dtype), gt.astype(np.uint8), tri.astype(np.uint8)), "the alpha"),
                       ((alpha.astype(np.uint8), gt.astype(dtype), tri.astype(np.uint8)), "the ground-truth alpha"),
                       ((alpha.astype(np.uint8), gt.astype(np.uint8), tri.astype(dtype)), "the trimap")):
        with pytest.raises(InputError, match=f"{what} is an array of {np.dtype(dtype)}"):
            alpha_errors(*args)


def test_float_mattes_on_the_8bit_scale_are_refused() -> None:
    # 0..255 floats (np.asarray(Image.open(...)).astype(float), as the reference code's inputs) taken
    # as 0..1: a trimap with no unknown pixel (every error 0), an alpha error 255 times too large.
    tri = np.array([[0.0, 128.0, 255.0, 128.0]])
    gt = np.array([[0.0, 51.0, 255.0, 102.0]])
    alpha = np.array([[0.0, 102.0, 255.0, 102.0]])
    with pytest.raises(InputError, match="the trimap holds float values up to 255"):
        sad(alpha / 255, gt / 255, tri)
    with pytest.raises(InputError, match="the alpha holds float values up to 255.*divide it by 255"):
        mse(alpha, gt / 255, tri / 255)
    with pytest.raises(InputError, match="the ground-truth alpha holds float values up to 255"):
        foreground_error(np.zeros((1, 4, 3)), np.zeros((1, 4, 3)), gt, tri / 255)
    # Slightly above 1 (an unclamped prediction) is still an alpha, and colours may exceed 1.
    assert sad(alpha / 255 * 1.2, gt / 255, tri / 255) > 0
    hdr = np.full((1, 4, 3), 4.0)
    assert foreground_error(hdr, hdr + 1, gt / 255, tri / 255)["fg_sad"] == pytest.approx(3 * (0.2 + 0.4) / 1000)


def test_background_error_names_the_background() -> None:
    from core.metrics import background_error

    with pytest.raises(InputError, match="^background"):
        background_error(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)), np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(InputError, match="the ground-truth background is an array of int64"):
        background_error(np.zeros((4, 4, 3)), np.zeros((4, 4, 3), np.int64), np.zeros((4, 4)), np.zeros((4, 4)))


def test_gaussian_derivative_kernel_values_are_gaussgradient_m() -> None:
    # gaussgradient.m written out: hx(i, j) = gauss(i − 5)·dgauss(j − 5) for i, j = 1..9 (σ = 1.4),
    # gauss(x) = exp(−x²/2σ²)/(σ·sqrt(2π)), dgauss(x) = −x·gauss(x)/σ², then hx / sqrt(Σ hx²).
    sigma = 1.4

    def gauss(x: float) -> float:
        return math.exp(-x * x / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi))

    hx = np.array([[gauss(i - 4) * (-(j - 4) * gauss(j - 4) / sigma**2) for j in range(9)] for i in range(9)])
    hx /= math.sqrt((hx * hx).sum())
    np.testing.assert_allclose(gaussian_derivative_kernel(1.4), hx, rtol=1e-12, atol=1e-15)
    assert hx[4, 3] > 0 > hx[4, 5]  # −x·G: positive left of the centre column, as the reference's


def test_no_unknown_pixel_scores_zero_on_every_metric(rng) -> None:
    from core.metrics import background_error

    gt = rng.random((16, 16))
    alpha = 1.0 - gt  # wrong everywhere, but nothing is unknown
    tri = np.where(gt > 0.5, 1.0, 0.0)
    assert alpha_errors(alpha, gt, tri) == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}
    colours = rng.random((16, 16, 3))
    assert foreground_error(colours, 1 - colours, gt, tri) == {"fg_sad": 0.0, "fg_mse": 0.0}
    assert background_error(colours, 1 - colours, gt, tri) == {"bg_sad": 0.0, "bg_mse": 0.0}


def test_gradient_error_sees_known_pixels_only_through_the_kernel(rng) -> None:
    # As the reference: gradients of the whole mattes, summed over the unknown pixels. A change
    # more than the kernel's half size (4 px) from the unknown region changes nothing; one within
    # it changes the unknown pixels' gradients.
    gt = np.full((40, 40), 0.5)
    alpha = np.tile(0.3 + 0.01 * np.arange(40.0), (40, 1))
    tri = _trimap(40, 40, (15, 25, 15, 25))
    base = gradient_error(alpha, gt, tri)
    far = alpha.copy()
    far[:10] = rng.random((10, 40))  # rows 0..9: 5 or more rows from row 15
    far[:, 30:] = rng.random((40, 10))
    assert gradient_error(far, gt, tri) == pytest.approx(base, rel=1e-12)
    near = alpha.copy()
    near[12, 20] = 1.0  # 3 rows above the region
    assert gradient_error(near, gt, tri) > base * 1.01


def test_connectivity_level_of_a_blob_held_by_a_weak_bridge() -> None:
    # A body, and a blob joined to it by a bridge: in the GT the bridge is 0.9, in the prediction
    # 0.35. Ω keeps bridge and blob up to t = 0.3 (both ≥ t) and loses them at 0.4, so l = 0.3 there.
    # Blob (α = α_gt = 0.9): d = 0.6 for both, φ equal, no error. Bridge: d(α) = 0.05 < θ = 0.15,
    # φ(α) = 1; d(α_gt) = 0.6, φ(α_gt) = 0.4: |Δφ| = 0.6 on its 2 × 10 pixels.
    gt = np.zeros((30, 40))
    gt[5:25, 5:15] = 1.0
    gt[14:16, 15:25] = 0.9
    gt[10:20, 25:32] = 0.9
    alpha = gt.copy()
    alpha[14:16, 15:25] = 0.35
    tri = np.full(gt.shape, 0.5)
    assert connectivity_error(alpha, gt, tri) == pytest.approx(20 * 0.6 / 1000, abs=1e-12)
    # Only the bridge's pixels are scored when only they are unknown.
    tri_bridge = np.zeros(gt.shape)
    tri_bridge[14:16, 15:25] = 0.5
    assert connectivity_error(alpha, gt, tri_bridge) == pytest.approx(20 * 0.6 / 1000, abs=1e-12)


def test_connectivity_ties_go_to_the_first_component_in_column_major_order() -> None:
    # bwconncomp numbers components in MATLAB's column-major scan and max() takes the first of
    # equal sizes: of two equally large blobs the left one is Ω, even when the other starts higher.
    # A (top right): α_gt 0.9, α 0.8. B (bottom left): α_gt 0.9, α 0.5. Both 3×3, tied up to t = 0.5.
    gt = np.zeros((12, 12))
    gt[1:4, 7:10] = 0.9
    gt[7:10, 1:4] = 0.9
    alpha = gt.copy()
    alpha[1:4, 7:10] = 0.8
    alpha[7:10, 1:4] = 0.5
    tri = np.full(gt.shape, 0.5)
    # Ω = B up to 0.5: A leaves at 0.1 (l = 0; φ(α) = 0.2, φ(α_gt) = 0.1), B at 0.6 (l = 0.5;
    # φ(α) = 1, φ(α_gt) = 0.6). Had A been taken (row-major order), B's l = 0 and A's 0.8: 9 · 0.4.
    assert connectivity_error(alpha, gt, tri) == pytest.approx(9 * (0.1 + 0.4) / 1000, abs=1e-12)


def test_single_channel_images_score_as_their_plane(rng) -> None:
    # A grey file reads as H×W×1 (core.io.read_image, OpenImageIO): alpha, ground truth, trimap and
    # the colour metrics' alpha are taken as their one plane, not refused as not H×W.
    gt = rng.random((12, 14))
    alpha = np.clip(gt + rng.normal(0, 0.2, gt.shape), 0, 1)
    tri = _trimap(12, 14, (2, 10, 3, 12))
    expected = alpha_errors(alpha, gt, tri)
    assert expected["sad"] > 0 and expected["grad"] > 0
    assert alpha_errors(alpha[..., None], gt[..., None], tri[..., None]) == expected
    assert unknown_region(tri[..., None]).tolist() == unknown_region(tri).tolist()
    fg = rng.random((12, 14, 3))
    assert foreground_error(fg, fg * 0.5, gt[..., None], tri) == foreground_error(fg, fg * 0.5, gt, tri)


def test_a_trimap_of_another_size_is_refused_by_name() -> None:
    alpha = np.zeros((4, 4))
    with pytest.raises(InputError, match=r"trimap \(4, 5\) must all be the same"):
        sad(alpha, alpha, np.full((4, 5), 0.5))


def test_connectivity_theta_is_inclusive_and_unbroken_pixels_level_1() -> None:
    # The reference: φ = 1 − d·(d >= 0.15), and l = 1 where a pixel never left Ω.
    # A blob at α = 0.15 exactly, apart from the matte where α_gt = 0: l = 0, d(α) = 0.15 is
    # penalised (φ = 0.85), d(α_gt) = 0 (φ = 1): 0.15 on each of its 4 pixels.
    gt = np.zeros((20, 20))
    gt[8:16, 8:16] = 1.0
    alpha = gt.copy()
    alpha[1:3, 1:3] = 0.15
    tri = np.full(gt.shape, 0.5)
    assert connectivity_error(alpha, gt, tri) == pytest.approx(4 * 0.15 / 1000, abs=1e-12)
    # An unclamped α = 1.3 inside the matte never leaves Ω: l = 1, d(α) = 0.3, φ(α) = 0.7 against
    # φ(α_gt) = 1 (l = 0.9 would make it 0.6).
    over = gt.copy()
    over[10:12, 10:12] = 1.3
    assert connectivity_error(over, gt, tri) == pytest.approx(4 * 0.3 / 1000, abs=1e-12)


def test_connectivity_omega_needs_both_mattes_over_the_threshold() -> None:
    # Ω_t is the largest component of (α >= t) ∧ (α_gt >= t). A strip joined to the matte that the
    # prediction calls 0.9 where the ground truth is 0.2 leaves Ω at t = 0.3 (l = 0.2): φ(α) = 0.3,
    # φ(α_gt) = 1, |Δφ| = 0.7 on its 2 × 6 pixels. (Ω from α alone would keep it to t = 1: no error.)
    gt = np.zeros((20, 20))
    gt[5:15, 5:12] = 1.0
    gt[9:11, 12:18] = 0.2
    alpha = gt.copy()
    alpha[9:11, 12:18] = 0.9
    tri = np.full(gt.shape, 0.5)
    assert connectivity_error(alpha, gt, tri) == pytest.approx(12 * 0.7 / 1000, abs=1e-12)
