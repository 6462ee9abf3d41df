"""The compositing maths after the networks (core.compositing): known answers on two-colour
scenes, the Laplacian against pymatting's and a direct solve, gradients against finite
differences, contracts and errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg
import torch
from test_training_data import DATA, needs_data

from core.compositing import (
    CONFIDENCE_SCALE,
    FG_SOLVE_WEIGHT,
    MAX_ITERATIONS,
    SMOOTHING,
    TOLERANCE,
    Settings,
    alpha_levels,
    estimate_layers,
    laplacian_product,
    matting_laplacian,
    refine,
)
from core.errors import InputError


def _tensor(a: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    a = np.asarray(a)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1) if a.ndim == 3 else a[None]))[None].to(dtype)


def alternate(image: np.ndarray, trimap: np.ndarray, alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray,
              settings: Settings | None = None, fg_weight: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """:func:`refine` on ``H×W(×3)`` arrays, back as arrays."""
    out = refine(_tensor(image), _tensor(trimap), _tensor(alpha), _tensor(fg), _tensor(bg), settings, fg_weight)
    return out.alpha[0, 0].numpy(), out.fg[0].permute(1, 2, 0).numpy()

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


def _starts_off_by(truth: np.ndarray, unknown: np.ndarray, by: float) -> tuple[np.ndarray, np.ndarray]:
    """Two matting networks' alphas, ``by`` too high and ``by`` too low over the unknown band."""
    return tuple(np.where(unknown, np.clip(truth + d, 0, 1), truth).astype(np.float32) for d in (by, -by))


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
    for rounds in (1, 3):  # solved to 1e-5: the default 1e-3 stops the later rounds at once here
        alpha, _ = alternate(image, trimap, biased, fg, bg, Settings(rounds=rounds, tolerance=1e-5))
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


def test_half_samples_keep_the_matting_networks_error_out_of_the_data_term() -> None:
    # The networks' F and B are first solved against the plate for some alpha. For the network's
    # own alpha, its error moves F and B and so the alpha the round reads off them; for 0.5
    # (sample_alpha="half") two networks' alphas, one too high and one too low, give the same
    # result (they are only where the conjugate gradients start), close to the truth.
    image, trimap, truth = _two_colour_scene()
    fg, bg = _layers(truth.shape)
    unknown = trimap == 0.5
    high, low = _starts_off_by(truth, unknown, 0.3)
    results = {}
    for mode in ("network", "half"):
        settings = Settings(rounds=1, tolerance=1e-7, max_iterations=4000, sample_alpha=mode)
        results[mode] = [alternate(image, trimap, a, fg * 0.8, bg * 0.8 + 0.1, settings)[0] for a in (high, low)]
    apart = {mode: np.abs(a - b)[unknown].mean() for mode, (a, b) in results.items()}
    assert apart["half"] < 1e-3 < 0.02 < apart["network"]
    assert np.abs(results["half"][0] - truth)[unknown].mean() < 0.05


def test_unsolved_samples_read_the_ramp_off_the_networks_colours_as_they_are() -> None:
    # A 20 px ramp between two flat colours, the networks' F and B exact. Solving them for alpha
    # 0.5 first (sample_alpha="half") moves F toward B where the truth is below 0.5 and past the
    # plate where it is above, so the data term reads the ramp compressed toward 0.5, and across a
    # ramp (affine in the colour: free for the Laplacian) the weak data term sets the level.
    # Unsolved, the data term reads the true alpha, wherever the conjugate gradients start.
    image, trimap, truth = _two_colour_scene()
    fg, bg = _layers(truth.shape)
    unknown = trimap == 0.5
    high, low = _starts_off_by(truth, unknown, 0.3)
    error = {}
    for mode in ("half", "unsolved"):
        settings = Settings(rounds=1, tolerance=1e-9, max_iterations=4000, sample_alpha=mode)
        got = [alternate(image, trimap, a, fg, bg, settings)[0] for a in (high, low)]
        assert np.abs(got[0] - got[1])[unknown].mean() < 1e-3
        error[mode] = np.abs(got[0] - truth)[unknown].mean()
    assert error["unsolved"] < 1e-3 < 0.01 < error["half"]


def test_a_trimap_without_known_pixels_still_solves() -> None:
    image, _, truth = _two_colour_scene()
    fg, bg = _layers(truth.shape)
    trimap = np.full(truth.shape, 0.5, np.float32)
    alpha, _ = alternate(image, trimap, truth, fg, bg, Settings(rounds=1))
    assert np.all(np.isfinite(alpha)) and np.abs(alpha - truth).max() < 0.02


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rounds": -1}, "rounds must be a whole number from 0 to 100, not -1"),
        ({"rounds": 1.5}, "rounds must be a whole number from 0 to 100"),
        ({"rounds": True}, "rounds must be a whole number from 0 to 100"),
        # past anything a run needs (WHOLE_NUMBER_RANGES): 100000 rounds ran for weeks without a word
        ({"rounds": 100_000}, "rounds must be a whole number from 0 to 100, not 100000"),
        ({"max_iterations": 10_001}, "max_iterations must be a whole number from 1 to 10000, not 10001"),
        ({"knn_neighbours": 201}, "knn_neighbours must be a whole number from 2 to 200, not 201"),
        ({"knn_stride": 0}, "knn_stride must be a whole number >= 1, not 0"),
        ({"smoothing": 0}, "smoothing must be a number > 0"),
        ({"smoothing": float("nan")}, "smoothing must be a number > 0"),
        ({"confidence_scale": -1}, "confidence_scale must be a number > 0"),
        ({"tolerance": 0}, "tolerance must be a number > 0"),
        ({"max_iterations": 0}, "max_iterations must be a whole number from 1 to 10000"),
        ({"layers": "pull-push"}, "layers must be one of solve, multilevel"),
        ({"layer_prior": -0.1}, "layer_prior must be a number >= 0"),
        ({"layer_prior": "x"}, "layer_prior must be a number >= 0"),
        ({"layer_space": "log"}, "layer_space must be one of solve, display"),
        ({"agree_ratio": 0}, "agree_ratio must be a number > 0"),
        ({"black_point": -0.1}, "0 <= black_point < white_point <= 1, not -0.1 and 1.0"),
        ({"black_point": 0.5, "white_point": 0.5}, "0 <= black_point < white_point <= 1"),
        ({"white_point": 1.2}, "0 <= black_point < white_point <= 1"),
        ({"white_point": "x"}, "0 <= black_point < white_point <= 1"),
        ({"sample_alpha": "quarter"}, "sample_alpha must be one of network, half, unsolved, not 'quarter'"),
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


def _edge_scene(rng: np.random.Generator, h: int = 23, w: int = 31) -> tuple[np.ndarray, np.ndarray]:
    image = rng.random((h, w, 3))
    trimap = np.zeros((h, w))
    trimap[5:18, 6:25] = 0.5
    trimap[9:14, 11:20] = 1.0
    trimap[0:3, 0:4] = 0.5  # unknown pixels on the frame's edge too
    return image, trimap


def _pymatting_system(image: np.ndarray, trimap: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """``L_UU`` and the known pixels' pull from pymatting's own Laplacian (the reference)."""
    from pymatting import cf_laplacian

    full = cf_laplacian(image, epsilon=1e-7).tocsr()
    u, k = (trimap == 0.5).ravel(), ~(trimap == 0.5).ravel()
    return full[u][:, u], -(full[u][:, k] @ (trimap == 1.0).ravel()[k].astype(float))


def _scipy(matrix: torch.Tensor) -> sp.csr_matrix:
    return sp.csr_matrix((matrix.values().double().numpy(), matrix.col_indices().numpy(), matrix.crow_indices().numpy()),
                         shape=tuple(matrix.shape))


def test_the_laplacian_matches_pymatting_on_the_unknown_pixels(rng: np.random.Generator) -> None:
    image, trimap = _edge_scene(rng)
    unknown, fg = trimap == 0.5, trimap == 1.0
    want, want_pull = _pymatting_system(image, trimap)
    lap = matting_laplacian(torch.from_numpy(image.transpose(2, 0, 1).copy()), torch.from_numpy(unknown), torch.from_numpy(fg))
    assert tuple(lap.matrix.shape) == (unknown.sum(), unknown.sum()) and lap.matrix.dtype == torch.float32
    got = _scipy(lap.matrix)
    assert np.allclose(got.toarray(), want.toarray(), atol=1e-5)
    assert np.allclose(lap.pull.numpy(), want_pull, atol=1e-5)
    assert np.allclose(lap.diagonal.numpy(), want.diagonal(), atol=1e-5)
    assert np.array_equal(lap.index.numpy(), np.flatnonzero(unknown))
    assert abs(got - got.T).max() == 0  # symmetric to the bit


def test_the_laplacians_epsilon_matches_pymatting_where_it_matters(rng: np.random.Generator) -> None:
    # On a random image the windows' covariances (~1/12) dwarf ε/9 = 1.1e-8, so a wrong ε (say
    # ε instead of ε/9) still matches pymatting to 1e-5. On a low-contrast plate (colours within
    # 0.01) the covariance is ~1e-5 and the regularisation shows: entries move by ~0.1.
    image = 0.5 + 0.01 * rng.random((12, 14, 3))
    trimap = np.zeros((12, 14))
    trimap[3:9, 3:11] = 0.5
    trimap[5:7, 6:8] = 1.0
    unknown, fg = trimap == 0.5, trimap == 1.0
    want, want_pull = _pymatting_system(image, trimap)
    lap = matting_laplacian(torch.from_numpy(image.transpose(2, 0, 1).copy()), torch.from_numpy(unknown), torch.from_numpy(fg))
    got = _scipy(lap.matrix).toarray()
    assert np.abs(want.toarray()).max() > 5  # entries of order 1-10: the tolerance below is tight
    assert np.allclose(got, want.toarray(), atol=1e-3)
    assert np.allclose(lap.pull.numpy(), want_pull, atol=1e-3)


def test_laplacians_built_in_two_threads_at_once_leave_the_warning_filters_as_they_were(monkeypatch) -> None:
    # warnings.catch_warnings saves and restores the whole filter list: two Matters matting at once
    # (torch releases the GIL while it builds the matrix) restored each other's list, and
    # "ignore UserWarning" stayed in the caller's process for good (5 runs in 6 on 400×400 crops).
    import threading
    import time
    import warnings

    real = torch.sparse_csr_tensor

    def slow(*args, **kwargs):  # the overlap that a large crop gives, every time
        time.sleep(0.2)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "sparse_csr_tensor", slow)
    img = torch.rand(3, 12, 12)
    unknown = torch.zeros(12, 12, dtype=torch.bool)
    unknown[:, 4:8] = True
    fg = torch.zeros(12, 12, dtype=torch.bool)
    fg[:, 8:] = True
    before = list(warnings.filters)
    threads = [threading.Thread(target=matting_laplacian, args=(img, unknown, fg)) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert warnings.filters == before


def test_the_stencil_is_the_same_operator_as_the_sparse_matrix(rng: np.random.Generator) -> None:
    """The exported module's form of L (no sparse tensors: Nuke 13/14's torch) is the CSR matrix's."""
    from core.compositing import laplacian_rows, stencil_index, stencil_product

    image, trimap = _edge_scene(rng)
    unknown, fg = torch.from_numpy(trimap == 0.5), torch.from_numpy(trimap == 1.0)
    img = torch.from_numpy(image.transpose(2, 0, 1).copy())
    lap = matting_laplacian(img, unknown, fg)
    rows, columns, pull, index = laplacian_rows(img, unknown, fg)
    assert torch.equal(index, lap.index) and torch.equal(pull.float(), lap.pull)
    x = torch.from_numpy(rng.normal(size=int(index.numel())).astype(np.float32))
    assert torch.allclose(stencil_product(rows.float(), stencil_index(columns), x), torch.mv(lap.matrix, x), atol=1e-5)
    assert torch.equal(rows.float(), lap.rows) and torch.equal(columns, lap.columns)
    # and refine() solved through it gives what it gives through the matrix
    from core.compositing import refine_with

    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    alpha = t(rng.uniform(size=trimap.shape))[None, None]
    fg_net, bg_net = t(rng.uniform(size=(1, 3, *trimap.shape))), t(rng.uniform(size=(1, 3, *trimap.shape)))
    args = (img[None].float(), t(trimap)[None, None], alpha, fg_net, bg_net)
    want = refine(*args, Settings(rounds=2), clip=None, exact=True)
    got = refine_with(*args, 2, SMOOTHING, CONFIDENCE_SCALE, TOLERANCE, MAX_ITERATIONS, FG_SOLVE_WEIGHT, None, True)
    for a, b in zip((want.alpha, want.fg, want.bg), got[:3], strict=True):
        assert torch.allclose(a, b, atol=1e-4)
    assert torch.jit.script(refine_with) is not None  # what the exported module compiles


def test_the_matrix_free_product_is_the_same_operator(rng: np.random.Generator) -> None:
    # He, Sun and Tang's box-filter form of L·p against pymatting's assembled matrix: two
    # independent derivations of Levin's operator (valid windows, transposed sums).
    from pymatting import cf_laplacian

    image = rng.random((17, 21, 3))
    p = rng.random((17, 21))
    want = cf_laplacian(image, epsilon=1e-7) @ p.ravel()
    got = laplacian_product(torch.from_numpy(image.transpose(2, 0, 1).copy()), torch.from_numpy(p))
    assert got.dtype == torch.float64
    assert np.allclose(got.numpy().ravel(), want, atol=1e-7)


def test_a_round_equals_a_direct_solve_of_the_same_system(rng: np.random.Generator) -> None:
    # One round from the network's alpha: F solved for it, alpha read off the compositing
    # equation, then min aᵀLa + λ Σ c (a − â)² with the known pixels fixed. The conjugate
    # gradients' answer equals scipy's sparse direct solve of that system (pymatting's L) to 1e-4.
    from core.compositing import alpha_from_composite, solve_foreground

    image, trimap = _edge_scene(rng, 40, 48)
    image = image * 0.3 + 0.35 * np.linspace(0, 1, 48)[None, :, None]  # some structure to follow
    alpha = np.where(trimap == 0.5, rng.random(trimap.shape), trimap == 1.0)
    fg, bg = rng.random(image.shape), rng.random(image.shape)
    settings = Settings(rounds=1, smoothing=0.01, tolerance=1e-7, max_iterations=2000)
    got, _ = alternate(image, trimap, alpha, fg, bg, settings)

    u = (trimap == 0.5).ravel()
    col = lambda a: _tensor(a, torch.float64).reshape(1, a.shape[-1] if a.ndim == 3 else 1, -1)[:, :, u][..., None]  # noqa: E731
    f_u = solve_foreground(col(image), col(alpha), col(bg), col(fg), 0.1)
    prior, distance = alpha_from_composite(col(image), col(bg), f_u)
    d = 0.01 * (1 - np.exp(-distance.numpy().ravel() ** 2 / settings.confidence_scale)) + 1e-9
    matrix, pull = _pymatting_system(image, trimap)
    want = np.clip(scipy.sparse.linalg.spsolve((matrix + sp.diags(d)).tocsc(), pull + d * prior.numpy().ravel()), 0, 1)
    assert np.abs(got.ravel()[u] - want).max() < 1e-4
    assert np.array_equal(got.ravel()[~u], (trimap == 1.0).ravel()[~u].astype(np.float32))


def test_gradients_flow_into_the_networks_outputs_and_match_finite_differences(rng: np.random.Generator) -> None:
    # A tiny frame in float64: d(refined alpha, F)/d(network alpha, F, B) by autograd through the
    # conjugate gradients, against central differences (torch.autograd.gradcheck).
    h, w = 7, 8
    image = torch.from_numpy(rng.random((1, 3, h, w)) * 0.6 + 0.2)
    trimap = torch.zeros(1, 1, h, w, dtype=torch.float64)
    trimap[:, :, 1:6, 2:7] = 0.5
    trimap[:, :, 3, 4] = 1.0
    alpha = torch.from_numpy(rng.random((1, 1, h, w)) * 0.6 + 0.2).requires_grad_()
    fg = torch.from_numpy(rng.random((1, 3, h, w)) * 0.6 + 0.2).requires_grad_()
    bg = torch.from_numpy(rng.random((1, 3, h, w)) * 0.6 + 0.2).requires_grad_()
    settings = Settings(rounds=2, smoothing=0.05, tolerance=1e-13, max_iterations=500)

    def run(a: torch.Tensor, f: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = refine(image, trimap, a, f, b, settings, clip=None)
        return out.alpha, out.fg

    assert torch.autograd.gradcheck(run, (alpha, fg, bg), eps=1e-6, atol=1e-5)
    out = refine(image, trimap, alpha, fg, bg, settings)
    (out.alpha.sum() + out.fg.sum()).backward()
    unknown = (trimap > 0) & (trimap < 1)
    assert alpha.grad is not None and float(alpha.grad[unknown].abs().sum()) > 0
    assert float(alpha.grad[~unknown].abs().sum()) == 0  # known pixels do not depend on the network
    assert fg.grad is not None and bg.grad is not None and float(bg.grad.abs().sum()) > 0


def test_half_precision_inputs_are_solved_in_float32(rng: np.random.Generator) -> None:
    image, trimap, truth = _two_colour_scene()
    fg, bg = _layers(truth.shape)
    args = [_tensor(a) for a in (image, trimap, np.clip(truth - 0.2, 0, 1), fg, bg)]
    solved = Settings(tolerance=1e-6)  # converged: the answer, not where a loose stop lands, is compared
    full = refine(*args, solved)
    half = refine(*[a.to(torch.float16) for a in args[:1]], args[1], *[a.to(torch.bfloat16) for a in args[2:]], solved)
    assert half.alpha.dtype == torch.float32 and half.fg.dtype == torch.float32
    assert float((half.alpha - full.alpha).abs().max()) < 0.02


def test_the_default_path_compiles_nothing_just_in_time(small_bundle) -> None:
    # No numba (pymatting's Laplacian and incomplete Cholesky, the old rounds) on a user's
    # first frame: a fresh process mattes a frame with the default rounds and never imports it.
    code = (
        "import sys, numpy as np\n"
        "from core.pipeline import Matter\n"
        f"m = Matter({str(small_bundle.path)!r}, device='cpu', allow_untrained=True)\n"
        "plate = np.random.default_rng(0).random((48, 64, 3), dtype=np.float32)\n"
        "tri = np.zeros((48, 64), np.float32); tri[10:38, 10:54] = 0.5; tri[18:30, 20:44] = 1\n"
        "r = m.matte(plate, tri, colour='srgb')\n"
        "assert m.refinement.rounds == 3 and len(m.stats.iterations) == 3, m.stats.iterations\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('numba', 'pymatting', 'llvmlite')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@needs_data
def test_multilevel_layers_match_pymatting_on_a_photograph() -> None:
    from pymatting import estimate_foreground_ml

    from core.io import read_image

    image = read_image(DATA / "alphamatting" / "image" / "GT04.png").pixels[::2, ::2, :3].astype(np.float64)
    alpha = read_image(DATA / "alphamatting" / "alpha" / "GT04.png").pixels[::2, ::2, 0].astype(np.float64)
    f_ref, b_ref = estimate_foreground_ml(image, alpha, return_background=True)
    img, a = _tensor(image), _tensor(alpha)
    f, b = (t[0].permute(1, 2, 0).numpy() for t in estimate_layers(img, a, img, img, 0.0))
    band = (alpha > 0.01) & (alpha < 0.99)
    # Red-black sweeps instead of pymatting's row-major ones: the same minimiser, reached a
    # little differently.
    assert np.abs(f - f_ref)[band].mean() < 0.01 and np.abs(b - b_ref)[band].mean() < 0.01
    composite = alpha[..., None] * f + (1 - alpha[..., None]) * b
    assert np.abs(composite - image)[band].mean() < 0.01


def test_multilevel_layers_keep_known_colours_and_follow_a_strong_prior(rng: np.random.Generator) -> None:
    image, trimap, truth = _two_colour_scene()
    fg, bg = _layers(truth.shape)
    settings = Settings(rounds=1, layers="multilevel", layer_prior=0.0)
    out = refine(_tensor(image), _tensor(trimap), _tensor(truth), _tensor(fg), _tensor(bg), settings)
    f, b = out.fg[0].permute(1, 2, 0).numpy(), out.bg[0].permute(1, 2, 0).numpy()
    assert np.array_equal(f[trimap == 1], image[trimap == 1]) and np.array_equal(b[trimap == 0], image[trimap == 0])
    # The two-colour scene: the colours the known pixels show are carried into the band.
    band = (trimap > 0) & (trimap < 1) & (truth > 0.2) & (truth < 0.8)
    assert np.abs(f[band] - image[trimap == 1][0]).max() < 0.05
    assert np.abs(b[band] - image[trimap == 0][0]).max() < 0.05
    # A heavy prior: the networks' colours win.
    img, a = _tensor(image), _tensor(truth)
    f_prior, b_prior = torch.full_like(img, 0.25), torch.full_like(img, 0.75)
    f_heavy, b_heavy = estimate_layers(img, a, f_prior, b_prior, 1e4)
    assert torch.allclose(f_heavy, f_prior, atol=1e-3) and torch.allclose(b_heavy, b_prior, atol=1e-3)


def test_the_laplacian_does_not_depend_on_how_its_windows_are_chunked(rng: np.random.Generator) -> None:
    from core.compositing import laplacian_rows

    image, trimap = _edge_scene(rng)
    unknown, fg = torch.from_numpy(trimap == 0.5), torch.from_numpy(trimap == 1.0)
    img = torch.from_numpy(image.transpose(2, 0, 1).copy())
    whole = laplacian_rows(img, unknown, fg, chunk=10**9)
    pieces = laplacian_rows(img, unknown, fg, chunk=7)
    assert torch.allclose(whole[0], pieces[0], atol=1e-6)  # sums in another order
    for a, b in zip(whole[1:], pieces[1:], strict=True):
        assert torch.allclose(a.double(), b.double(), atol=1e-6)


def test_the_agreement_with_the_plate_moves_the_background_more_when_its_weight_is_lower() -> None:
    # Linear light: whatever the ratio, αF + (1 − α)B is the plate; a low w_B / w_F leaves F
    # nearer the multilevel colours and puts the residual into B, a high one the other way round.
    image, trimap, truth = _two_colour_scene()
    fg, bg = _layers(truth.shape)
    alpha = np.clip(truth + 0.15 * (trimap == 0.5), 0, 1)  # a wrong alpha: the layers cannot fit it
    args = (_tensor(image), _tensor(trimap), _tensor(alpha), _tensor(fg), _tensor(bg))
    loose = refine(*args, Settings(rounds=0, layers="multilevel", layer_prior=0.0), clip=None)
    moved = {}
    for ratio in (0.1, 10.0):
        out = refine(*args, Settings(rounds=0, layers="multilevel", layer_prior=0.0, agree_ratio=ratio), clip=None, exact=True)
        composite = out.alpha * out.fg + (1 - out.alpha) * out.bg
        assert torch.allclose(composite, args[0], atol=1e-5)
        moved[ratio] = ((out.fg - loose.fg).abs().mean().item(), (out.bg - loose.bg).abs().mean().item())
    assert moved[0.1][0] < moved[10.0][0] and moved[0.1][1] > moved[10.0][1]


def test_the_agreement_never_takes_a_colour_below_zero_and_stays_exact() -> None:
    from core.compositing import agree_with_plate

    # One pixel per column, three channels: (a) the free answer would put B at -0.6 (alpha 0.8,
    # F too bright for the plate); (b) with a high w_B / w_F F would go to -0.15; (c) a plate
    # below zero (an out-of-gamut linear value): its own value is the floor; (d) nothing to clamp.
    def column(*values: float) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float64).repeat(3, 1)[None, :, :, None]

    image, alpha = column(0.5, 0.05, -0.3, 0.45), column(0.8, 0.3, 0.5, 0.5)[:, :1]
    fg, bg = column(0.9, 0.3, 0.2, 0.5), column(0.5, 0.4, 0.1, 0.3)
    f, b = agree_with_plate(image, alpha, fg, bg, 1.0, 1e-4)
    assert torch.allclose(alpha * f + (1 - alpha) * b, image, atol=1e-12)
    assert b[0, 0, 0, 0].item() == 0.0 and f[0, 0, 0, 0].item() == pytest.approx(0.5 / 0.8)  # (a)
    assert (f[..., 3, :] > 0).all() and (b[..., 3, :] > 0).all()
    f, b = agree_with_plate(image, alpha, fg, bg, 1.0, 100.0)
    assert torch.allclose(alpha * f + (1 - alpha) * b, image, atol=1e-12)
    assert f[0, 0, 1, 0].item() == 0.0 and b[0, 0, 1, 0].item() == pytest.approx(0.05 / 0.7)  # (b)
    for ratio in (1e-4, 1.0, 100.0):
        f, b = agree_with_plate(image, alpha, fg, bg, 1.0, ratio)
        assert (f[..., 2, :] >= -0.3 - 1e-12).all() and (b[..., 2, :] >= -0.3 - 1e-12).all()  # (c)
        assert torch.allclose(alpha * f + (1 - alpha) * b, image, atol=1e-12)
    # (d) where the free answer is above the floor it is the answer: the closed form.
    f, b = agree_with_plate(image, alpha, fg, bg, 1.0, 1.0)
    r = 0.45 - 0.5 * 0.5 - 0.5 * 0.3
    assert f[0, 0, 3, 0].item() == pytest.approx(0.5 + r) and b[0, 0, 3, 0].item() == pytest.approx(0.3 + r)


def test_multilevel_layers_in_the_display_encoding_are_smoothed_there_and_brought_back() -> None:
    from core.colour import decode_srgb, encode_srgb

    image, trimap, truth = _two_colour_scene()
    fg, bg = _layers(truth.shape)
    image = image * 3.0  # linear light, highlights over 1
    args = (_tensor(image), _tensor(trimap), _tensor(truth), _tensor(fg), _tensor(bg))
    settings = Settings(rounds=0, layers="multilevel", layer_prior=0.03, layer_space="display")
    out = refine(*args, settings, clip=None)
    unknown = args[1] == 0.5
    img, a, f_net, b_net = args[0], args[2], args[3], args[4]
    f_prior, b_prior = torch.where(args[1] == 1, img, f_net), torch.where(args[1] == 0, img, b_net)
    f, b = estimate_layers(encode_srgb(img), a, encode_srgb(f_prior), encode_srgb(b_prior), 0.03, None, unknown)
    want_f, want_b = decode_srgb(f), decode_srgb(b)
    mask = unknown.expand_as(want_f)
    assert torch.allclose(out.fg[mask], want_f[mask], atol=1e-5) and torch.allclose(out.bg[mask], want_b[mask], atol=1e-5)
    assert float(out.fg.max()) > 1.5  # nothing clipped in linear light
    same = refine(*args, Settings(rounds=0, layers="multilevel", layer_prior=0.03), clip=None)
    assert not torch.allclose(same.fg, out.fg, atol=1e-3)  # it is another smoothing than in linear light
    # A plate solved in the display encoding (clipped layers) is smoothed there anyway.
    shown = (_tensor(np.clip(image / 3.0, 0, 1)), *args[1:])
    for space in ("solve", "display"):
        got = refine(*shown, Settings(rounds=0, layers="multilevel", layer_prior=0.03, layer_space=space))
        if space == "solve":
            first = got
    assert torch.equal(first.fg, got.fg) and torch.equal(first.bg, got.bg)


def test_levels_clip_the_last_rounds_alpha_and_the_layers_follow_it() -> None:
    image, trimap, truth = _two_colour_scene()
    fg, bg = _layers(truth.shape)
    args = (_tensor(image), _tensor(trimap), _tensor(truth * 0.8 + 0.1), _tensor(fg), _tensor(bg))
    plain = refine(*args, Settings(rounds=2, tolerance=1e-7))
    levelled = refine(*args, Settings(rounds=2, tolerance=1e-7, black_point=0.1, white_point=0.8), clip=None, exact=True)
    want = ((plain.alpha - 0.1) / 0.7).clamp(0, 1)
    assert torch.allclose(levelled.alpha, want, atol=1e-6)
    assert torch.equal(alpha_levels(plain.alpha, 0.0, 1.0), plain.alpha)
    known = torch.from_numpy(trimap != 0.5)
    assert torch.equal(levelled.alpha[0, 0][known], plain.alpha[0, 0][known])  # 0 and 1 stay
    assert bool((levelled.alpha == 0).sum() > (plain.alpha == 0).sum())
    # the layers are made for the levelled alpha: with exact=True they composite back to the plate
    a = levelled.alpha
    assert torch.allclose(a * levelled.fg + (1 - a) * levelled.bg, args[0].to(a.dtype), atol=1e-4)
    assert alpha_levels(torch.tensor([0.0, 0.05, 0.45, 0.85, 1.0]), 0.05, 0.85).tolist() == pytest.approx([0, 0, 0.5, 1, 1])


@pytest.mark.parametrize("highlight", [300.0, 65504.0])
def test_hdr_highlights_keep_the_laplacian_positive_semi_definite_and_the_matte_finite(highlight: float) -> None:
    # A linear plate's highlight (65504: half float's largest) beside dark pixels made window
    # covariances so ill-conditioned that their adjugate inverses gave indefinite blocks (smallest
    # eigenvalue -0.7 at 300, -156 at 65504); the conjugate gradients then diverged to a NaN matte.
    rng = np.random.default_rng(5)
    image = rng.random((3, 40, 50)).astype(np.float32)
    image[:, 15:25, 22:28] = highlight
    trimap = np.zeros((40, 50), np.float32)
    trimap[:, 25:] = 1.0
    trimap[:, 20:30] = 0.5
    unknown, fg = torch.from_numpy(trimap == 0.5), torch.from_numpy(trimap == 1.0)
    lap = matting_laplacian(torch.from_numpy(image), unknown, fg)
    dense = lap.matrix.to_dense().double().numpy()
    assert np.linalg.eigvalsh(dense).min() > -1e-5 * np.abs(dense).max()
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    out = refine(t(image)[None], t(trimap)[None, None], t(rng.uniform(size=trimap.shape))[None, None],
                 t(rng.uniform(size=(1, 3, 40, 50))), t(rng.uniform(size=(1, 3, 40, 50))),
                 Settings(rounds=1, tolerance=1e-4), clip=None, exact=True)
    for layer in (out.alpha, out.fg, out.bg):
        assert torch.isfinite(layer).all()
    # Windows of colours in [0, 1] keep the adjugate's numbers: the steep path is for HDR only.
    from core.compositing import laplacian_rows

    plain = torch.from_numpy(rng.random((3, 40, 50)).astype(np.float32))
    assert torch.equal(laplacian_rows(plain, unknown, fg)[0], laplacian_rows(plain, unknown, fg, condition_limit=float("inf"))[0])


def test_conjugate_gradients_survive_degenerate_systems() -> None:
    from core.compositing import conjugate_gradients

    empty_rows, empty_gather = torch.zeros(0, 25), torch.zeros(0, dtype=torch.int64)
    # b = 0 (no pixel known, F = B so no data term): the solution is 0. The iterations ran 400
    # times from the warm start, amplifying the rounding of L's near-null space, into a NaN matte.
    lap = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    shift = torch.full((2,), 1e-9)
    x, made = conjugate_gradients(lap, empty_rows, empty_gather, shift, torch.zeros(2), torch.full((2,), 0.5),
                                  torch.diagonal(lap) + shift, 1e-4, 400)
    assert made == 0 and torch.equal(x, torch.zeros(2))
    # A direction of negative curvature (what float32 rounding makes of a shift below it): the
    # clamp of p·Ap to 1e-30 turned it into a step of ~1e30 and then NaN; now the iterations stop.
    indefinite = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    x, made = conjugate_gradients(indefinite, empty_rows, empty_gather, torch.zeros(2), torch.tensor([1.0, 1.0]),
                                  torch.zeros(2), torch.ones(2), 1e-6, 50)
    assert torch.isfinite(x).all() and made < 50


def test_all_unknown_constant_plate_without_networks_gives_a_finite_matte() -> None:
    from core.pipeline import Matter

    plate = np.full((24, 32, 3), 0.4, np.float32)
    trimap = np.full((24, 32), 0.5, np.float32)
    result = Matter("none", device="cpu").matte(plate, trimap, colour="linear")
    for layer in (result.alpha, result.fg, result.bg):
        assert np.isfinite(layer).all()
    # finite is not enough: the matte is a matte, and its layers still composite to the plate
    assert result.alpha.min() >= 0.0 and result.alpha.max() <= 1.0
    a = result.alpha[..., None]
    np.testing.assert_allclose(a * result.fg + (1 - a) * result.bg, plate, atol=1e-5)
    assert result.messages == ["trimap has no known foreground pixels: the result may be poor",
                               "trimap has no known background pixels: the result may be poor"]


@pytest.mark.parametrize("firefly", [1e7, 1e8, 1e12, 1e16])
def test_fireflies_keep_the_laplacian_positive_semi_definite_and_the_matte_finite(firefly: float) -> None:
    # A pixel's channel far above its neighbours (a render's firefly) in the unknown band: the
    # steep windows' blocks came from an eigendecomposition of CᵀC, whose small eigenvectors that
    # outlier scrambles; the blocks were indefinite (smallest eigenvalue -0.9 from 1e7 up), the
    # conjugate gradients diverged and the whole matte came out NaN.
    rng = np.random.default_rng(7)
    image = rng.random((3, 24, 30)).astype(np.float32)
    for y, x, c in ((4, 12, 0), (12, 14, 1), (19, 17, 2), (8, 16, 1)):
        image[c, y, x] = firefly
    trimap = np.zeros((24, 30), np.float32)
    trimap[:, 15:] = 1.0
    trimap[:, 11:19] = 0.5
    unknown, fg = torch.from_numpy(trimap == 0.5), torch.from_numpy(trimap == 1.0)
    dense = matting_laplacian(torch.from_numpy(image), unknown, fg).matrix.to_dense().double().numpy()
    assert np.linalg.eigvalsh(dense).min() > -1e-5
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    out = refine(t(image)[None], t(trimap)[None, None], t(rng.uniform(size=trimap.shape))[None, None],
                 t(rng.uniform(size=(1, 3, 24, 30))), t(rng.uniform(size=(1, 3, 24, 30))),
                 Settings(rounds=1, tolerance=1e-4), clip=None, exact=True)
    for layer in (out.alpha, out.fg, out.bg):
        assert torch.isfinite(layer).all()
    assert float(out.alpha.min()) >= 0.0 and float(out.alpha.max()) <= 1.0


def test_solve_layers_minimises_its_energy_with_the_background_weight_three_times_the_foregrounds() -> None:
    # (αF + (1 − α)B − I)² + w_F (F − F')² + w_B (B − B')², w_B = FG_SOLVE_BG_RATIO · w_F by default:
    # at the answer both partial derivatives vanish (the background moves less than the foreground).
    from core.compositing import FG_SOLVE_BG_RATIO, solve_layers

    g = torch.Generator().manual_seed(0)
    image, bg, fg = (torch.rand(1, 3, 5, 4, generator=g, dtype=torch.float64) for _ in range(3))
    alpha = torch.rand(1, 1, 5, 4, generator=g, dtype=torch.float64)
    wf = 0.1
    f, b = solve_layers(image, alpha, bg, fg, wf, clip=None)
    r = alpha * f + (1 - alpha) * b - image
    assert FG_SOLVE_BG_RATIO != 1.0
    assert torch.allclose(alpha * r + wf * (f - fg), torch.zeros_like(f), atol=1e-12)
    assert torch.allclose((1 - alpha) * r + FG_SOLVE_BG_RATIO * wf * (b - bg), torch.zeros_like(b), atol=1e-12)


def test_conjugate_gradients_stop_at_a_residual_relative_to_the_right_hand_side() -> None:
    # |b − Ax| <= tolerance · |b|: a right-hand side of 1e-6 is solved as well as one of 1 (an
    # absolute test would stop at once and return the starting point).
    from core.compositing import conjugate_gradients

    empty_rows, empty_gather = torch.zeros(0, 25), torch.zeros(0, dtype=torch.int64)
    lap = torch.tensor([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]], dtype=torch.float64)
    shift = torch.full((3,), 0.1, dtype=torch.float64)
    b = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) * 1e-6
    x, made = conjugate_gradients(lap, empty_rows, empty_gather, shift, b, torch.zeros(3, dtype=torch.float64),
                                  torch.diagonal(lap) + shift, 1e-3, 100)
    want = torch.linalg.solve(lap + torch.diag(shift), b)
    assert made > 0 and float((lap @ x + shift * x - b).norm()) <= 1e-3 * float(b.norm())
    assert made <= 3  # and stop there: conjugate gradients solve n unknowns in n steps, not max_iterations
    assert torch.allclose(x, want, rtol=1e-2, atol=0)


def test_multilevel_layers_of_a_wide_strip_reach_across_its_length() -> None:
    # A 2x64 strip: opaque red over the first 8 columns, blue background elsewhere. B behind the
    # red comes from the blue: the levels go down to one pixel along the longer side
    # (ceil(log2(64)) = 6), so the coarse levels carry it; counted on the shorter side (1 level)
    # the red leaked into B (0.12).
    from core.compositing import estimate_layers

    image, alpha = torch.zeros(1, 3, 2, 64), torch.zeros(1, 1, 2, 64)
    image[:, 0, :, :8] = 1.0
    alpha[..., :8] = 1.0
    image[:, 2, :, 8:] = 1.0
    prior = torch.full((1, 3, 2, 64), 0.5)
    f, b = estimate_layers(image, alpha, prior, prior, 0.0)
    assert torch.allclose(b[0, :, :, 0], torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]), atol=1e-3)
    assert torch.allclose(f[0, :, :, -1], torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]), atol=1e-3)


def test_a_round_with_the_networks_data_term_equals_a_direct_solve(rng: np.random.Generator) -> None:
    # network_weight μ adds μ·t·(a − a_net)² with t = c·exp(−(a_net − â)²/τ): the matting
    # network's alpha pulls where the plate's own estimate â agrees with it and is confident.
    from core.compositing import NETWORK_AGREEMENT, alpha_from_composite, solve_foreground

    image, trimap = _edge_scene(rng, 40, 48)
    image = image * 0.3 + 0.35 * np.linspace(0, 1, 48)[None, :, None]
    alpha = np.where(trimap == 0.5, rng.random(trimap.shape), trimap == 1.0)
    fg, bg = rng.random(image.shape), rng.random(image.shape)
    mu = 0.05
    settings = Settings(rounds=1, smoothing=0.01, tolerance=1e-7, max_iterations=2000, network_weight=mu)
    got, _ = alternate(image, trimap, alpha, fg, bg, settings)

    u = (trimap == 0.5).ravel()
    col = lambda a: _tensor(a, torch.float64).reshape(1, a.shape[-1] if a.ndim == 3 else 1, -1)[:, :, u][..., None]  # noqa: E731
    f_u = solve_foreground(col(image), col(alpha), col(bg), col(fg), 0.1)
    prior, distance = alpha_from_composite(col(image), col(bg), f_u)
    prior = prior.numpy().ravel()
    c = 1 - np.exp(-distance.numpy().ravel() ** 2 / settings.confidence_scale)
    a_net = np.clip(alpha.ravel()[u], 0, 1)
    trust = c * np.exp(-((a_net - prior) ** 2) / NETWORK_AGREEMENT)
    d = 0.01 * c + 1e-9
    matrix, pull = _pymatting_system(image, trimap)
    want = np.clip(scipy.sparse.linalg.spsolve((matrix + sp.diags(d + mu * trust)).tocsc(),
                                               pull + d * prior + mu * trust * a_net), 0, 1)
    assert np.abs(got.ravel()[u] - want).max() < 1e-4
    without, _ = alternate(image, trimap, alpha, fg, bg, dataclasses.replace(settings, network_weight=0.0))
    assert np.abs(without.ravel()[u] - want).max() > 1e-3  # the term matters here


def test_without_rounds_half_samples_change_nothing(rng: np.random.Generator) -> None:
    # sample_alpha "half" solves the networks' F and B for alpha 0.5 before the rounds, "unsolved"
    # not at all; without rounds the layers are those of the network's own alpha, whatever
    # sample_alpha says.
    image, trimap = _edge_scene(rng, 12, 16)
    alpha = np.where(trimap == 0.5, rng.random(trimap.shape), trimap == 1.0)
    fg, bg = rng.random(image.shape), rng.random(image.shape)
    args = [_tensor(x) for x in (image, trimap, alpha, fg, bg)]
    network = refine(*args, Settings(rounds=0, sample_alpha="network"), 0.1)
    for mode in ("half", "unsolved"):
        other = refine(*args, Settings(rounds=0, sample_alpha=mode), 0.1)
        assert torch.equal(other.fg, network.fg) and torch.equal(other.bg, network.bg)
    assert not torch.equal(refine(*args, Settings(rounds=1, sample_alpha="half"), 0.1).alpha,
                           refine(*args, Settings(rounds=1, sample_alpha="network"), 0.1).alpha)


def _layer_energy_minimiser(image: np.ndarray, alpha: np.ndarray, f_prior: np.ndarray, b_prior: np.ndarray,
                            prior_weight: float, regularization: float = 1e-5, gradient_weight: float = 1.0
                            ) -> tuple[np.ndarray, np.ndarray]:
    """The minimiser of estimate_layers' energy, by a direct solve: per channel,
    Σ_i (α_i F_i + (1 − α_i) B_i − I_i)² + w_p (|F_i − F'_i|² + |B_i − B'_i|²)
    + Σ over 4-neighbour pairs (r + g |α_i − α_j|)(|F_i − F_j|² + |B_i − B_j|²)."""
    h, w = alpha.shape
    n = h * w
    a = alpha.reshape(-1)
    m = np.zeros((2 * n, 2 * n))
    m[:n, :n] = np.diag(a * a + prior_weight)
    m[n:, n:] = np.diag((1 - a) ** 2 + prior_weight)
    m[:n, n:] = m[n:, :n] = np.diag(a * (1 - a))
    for y in range(h):
        for x in range(w):
            for y2, x2 in ((y + 1, x), (y, x + 1)):
                if y2 < h and x2 < w:
                    i, j = y * w + x, y2 * w + x2
                    weight = regularization + gradient_weight * abs(a[i] - a[j])
                    for o in (0, n):
                        m[o + i, o + i] += weight
                        m[o + j, o + j] += weight
                        m[o + i, o + j] -= weight
                        m[o + j, o + i] -= weight
    f, b = np.empty((h, w, 3)), np.empty((h, w, 3))
    for c in range(3):
        i_c = image[..., c].reshape(-1)
        rhs = np.concatenate([a * i_c + prior_weight * f_prior[..., c].reshape(-1),
                              (1 - a) * i_c + prior_weight * b_prior[..., c].reshape(-1)])
        solution = np.linalg.solve(m, rhs)
        f[..., c], b[..., c] = solution[:n].reshape(h, w), solution[n:].reshape(h, w)
    return f, b


def test_multilevel_layers_converge_to_the_minimiser_of_their_energy(rng: np.random.Generator) -> None:
    # Run long enough, the sweeps reach the energy's minimum: each pixel's 2×2 system, its 4
    # neighbours (each pair once, none past the frame's border) with the weights r + g·|Δα|.
    h, w = 5, 7
    image, f_prior, b_prior = (rng.random((h, w, 3)) for _ in range(3))
    alpha = rng.random((h, w))
    want_f, want_b = _layer_energy_minimiser(image, alpha, f_prior, b_prior, 0.05)
    f, b = estimate_layers(_tensor(image, torch.float64), _tensor(alpha, torch.float64), _tensor(f_prior, torch.float64),
                           _tensor(b_prior, torch.float64), 0.05, None, small_iterations=200)
    np.testing.assert_allclose(f[0].permute(1, 2, 0).numpy(), want_f, rtol=0, atol=1e-9)
    np.testing.assert_allclose(b[0].permute(1, 2, 0).numpy(), want_b, rtol=0, atol=1e-9)


def test_multilevel_layers_stay_in_the_clip_range(rng: np.random.Generator) -> None:
    image = _tensor(rng.random((12, 14, 3)))
    alpha = _tensor(rng.random((12, 14)))
    f, b = estimate_layers(image, alpha, image, 1 - image, 0.05, (0.25, 0.75))
    for layer in (f, b):
        assert float(layer.min()) == 0.25 and float(layer.max()) == 0.75


def test_multilevel_layers_of_wanted_pixels_are_those_of_the_whole_frame() -> None:
    # `where`: the levels above small_size sweep only near the wanted pixels (a margin of one more
    # than the half-sweeps, in both directions); those pixels get what sweeping everything gives
    # (within 3e-4, the docstring's bound), though pixels far from them are left unswept. A ramp
    # with no prior: where alpha is 0, F comes only from far along the smoothing.
    rng = np.random.default_rng(0)
    h, w = 80, 96  # two levels above small_size = 32
    image = _tensor(rng.random((h, w, 3)))
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = _tensor(np.clip((xx - 30) / 20, 0, 1))
    wanted = torch.from_numpy((xx >= 40) & (xx < 56) & (yy >= 30) & (yy < 50))[None, None]
    f_all, b_all = estimate_layers(image, alpha, image, image, 0.0)
    f, b = estimate_layers(image, alpha, image, image, 0.0, where=wanted)
    mask = wanted.expand_as(f)
    assert float((f - f_all).abs()[mask].max()) < 3e-4 and float((b - b_all).abs()[mask].max()) < 3e-4
    assert float((f - f_all).abs()[~mask].max()) > 0.1  # the far pixels were indeed left as they were


def test_the_laplacian_matches_pymatting_where_the_unknown_region_meets_the_frames_edges(
        rng: np.random.Generator) -> None:
    # Only windows wholly inside the frame count: one centred on an edge column would reach past
    # it (into the next row, in flat indices). An unknown region touching all four edges.
    image = rng.random((9, 11, 3))
    trimap = np.full((9, 11), 0.5)
    trimap[4, 5], trimap[2, 2] = 1.0, 0.0
    unknown, fg = trimap == 0.5, trimap == 1.0
    want, want_pull = _pymatting_system(image, trimap)
    lap = matting_laplacian(torch.from_numpy(image.transpose(2, 0, 1).copy()), torch.from_numpy(unknown), torch.from_numpy(fg))
    assert np.allclose(_scipy(lap.matrix).toarray(), want.toarray(), atol=1e-5)
    assert np.allclose(lap.pull.numpy(), want_pull, atol=1e-5)


def test_the_steep_windows_blocks_are_levins_formula(rng: np.random.Generator) -> None:
    # _steep_blocks writes base − C (CᵀC + ε I)⁻¹ Cᵀ (C: the window's centred colours, which is
    # (C (Σ + ε/9 I)⁻¹ Cᵀ) / 9) by the SVD of C. Windows whose colours lie close to a line, with a
    # spread across it of the order of sqrt(ε), where ε's size decides the block.
    from core.compositing import EPSILON, _steep_blocks

    t = rng.random((4, 9, 1))
    colours = 0.2 + t * np.array([0.5, 0.3, 0.1]) + 3e-4 * rng.standard_normal((4, 9, 3))
    base = np.eye(9) - 1.0 / 9.0
    want = []
    for c in colours:
        centred = c - c.mean(0)
        want.append(base - centred @ np.linalg.inv(centred.T @ centred + EPSILON * np.eye(3)) @ centred.T)
    got = _steep_blocks(torch.from_numpy(colours.astype(np.float32)), EPSILON, torch.from_numpy(base.astype(np.float32)))
    np.testing.assert_allclose(got.numpy(), np.array(want), rtol=0, atol=2e-4)


def test_the_laplacian_refuses_masks_of_another_size() -> None:
    image = torch.rand(3, 6, 7)
    with pytest.raises(InputError, match=r"3×H×W image and H×W masks, got \(3, 6, 7\) and \(6, 8\)"):
        matting_laplacian(image, torch.ones(6, 8, dtype=torch.bool), torch.zeros(6, 8, dtype=torch.bool))


def test_a_trimap_without_unknown_pixels_keeps_the_plate_in_its_known_layers(rng: np.random.Generator) -> None:
    image = rng.random((6, 8, 3)).astype(np.float32)
    trimap = np.zeros((6, 8), np.float32)
    trimap[:, :3] = 1.0
    fg, bg = _layers((6, 8))
    out = refine(_tensor(image), _tensor(trimap), _tensor(np.full((6, 8), 0.5)), _tensor(fg), _tensor(bg), Settings(rounds=1))
    assert torch.equal(out.alpha, _tensor(trimap)) and out.iterations == []
    f, b = out.fg[0].permute(1, 2, 0).numpy(), out.bg[0].permute(1, 2, 0).numpy()
    assert np.array_equal(f[trimap == 1], image[trimap == 1]) and np.array_equal(b[trimap == 0], image[trimap == 0])
