"""The refinement's non-local KNN term (core.knn) and the network's alpha as a data term: the
term against a brute-force construction of its energy, its symmetry and definiteness, what it
does to a matte, and the settings that switch both on."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg
import torch

from core.compositing import Settings, matting_laplacian, refine
from core.errors import InputError
from core.knn import DISTANCE_WEIGHTS, NEIGHBOURS, knn_term, searches
from core.trimap import split_trimap


def _tensor(a: np.ndarray) -> torch.Tensor:
    a = np.asarray(a, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1) if a.ndim == 3 else a[None]))[None]


def _scene(rng: np.random.Generator, h: int = 9, w: int = 11) -> tuple[np.ndarray, np.ndarray]:
    colour = rng.random((h, w, 3)).astype(np.float32)
    trimap = np.full((h, w), 0.5, np.float32)
    trimap[:, :3] = 1.0
    trimap[:, -3:] = 0.0
    return colour, trimap


def _brute_force(colour: np.ndarray, trimap: np.ndarray, neighbours: tuple[int, ...],
                 weights: tuple[float, ...], stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The energy Σ_{i ∈ U} Σ_{j ∈ N(i)} (a_i − a_j)² / (2K) as ``aᵀMa − 2 pᵀa + c`` over the
    unknown pixels: every distance computed, no tree. With ``stride``, ``i`` only over the
    unknown pixels on every ``stride``-th row and column, each pair counted ``stride²`` times."""
    h, w = trimap.shape
    fg_known, _, unknown = split_trimap(trimap)
    where = np.flatnonzero(unknown)
    ys, xs = np.divmod(np.arange(h * w), w)
    share = stride**2 / (2 * sum(neighbours))
    m = np.zeros((where.size, where.size))
    p = np.zeros(where.size)
    position = {int(q): k for k, q in enumerate(where)}
    for k, weight in zip(neighbours, weights, strict=True):
        f = np.column_stack([colour.reshape(-1, 3), weight * xs / (w - 1), weight * ys / (h - 1)])
        for a, q in enumerate(where):
            if ys[q] % stride or xs[q] % stride:
                continue
            near = np.argsort(((f - f[q]) ** 2).sum(1), kind="stable")[: k + 1]
            for j in near[near != q]:
                m[a, a] += share
                if j in position:
                    b = position[int(j)]
                    m[b, b] += share
                    m[a, b] -= share
                    m[b, a] -= share
                else:
                    p[a] += share * float(fg_known.reshape(-1)[j])
    return m, p


def test_the_term_is_the_energy_of_the_unknown_pixels_nearest_neighbours(rng: np.random.Generator) -> None:
    colour, trimap = _scene(rng)
    fg_known, _, unknown = split_trimap(trimap)
    term = knn_term(colour, unknown, fg_known, neighbours=(4, 2), distance_weights=(2.0, 0.1))
    want_m, want_p = _brute_force(colour, trimap, (4, 2), (2.0, 0.1))
    got = term.matrix.toarray()
    assert np.allclose(got, want_m, atol=1e-12)
    assert np.allclose(term.pull, want_p, atol=1e-12)
    assert np.allclose(term.diagonal, np.diag(want_m), atol=1e-12)


def test_a_stride_searches_from_every_strideth_row_and_column_only(rng: np.random.Generator) -> None:
    colour, trimap = _scene(rng, 10, 13)
    fg_known, _, unknown = split_trimap(trimap)
    for stride in (2, 3):
        term = knn_term(colour, unknown, fg_known, neighbours=(4, 2), distance_weights=(2.0, 0.1), stride=stride)
        want_m, want_p = _brute_force(colour, trimap, (4, 2), (2.0, 0.1), stride)
        assert np.allclose(term.matrix.toarray(), want_m, atol=1e-12)
        assert np.allclose(term.pull, want_p, atol=1e-12)
        assert np.allclose(term.diagonal, np.diag(want_m), atol=1e-12)
        assert np.linalg.eigvalsh(want_m).min() > -1e-9
    # The grid is the frame's: a crop whose corner is at an odd row and column of its frame searches
    # from the pixels that are even in the frame, which are odd in the crop.
    crop = knn_term(colour, unknown, fg_known, (11, 14, 1, 1), stride=2)
    grid = np.zeros_like(unknown)
    grid[1::2, 1::2] = True
    searched = np.zeros(unknown.size)
    searched[np.flatnonzero(unknown)] = crop.pull
    assert (searched.reshape(unknown.shape)[~grid] == 0).all() and (searched.reshape(unknown.shape)[grid & unknown] > 0).any()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="stride must be a whole number >= 1"):
            knn_term(colour, unknown, fg_known, stride=bad)
    with pytest.raises(InputError, match="knn_stride must be a whole number >= 1"):
        Settings(knn_stride=0)


def test_the_term_is_symmetric_and_positive_semi_definite(rng: np.random.Generator) -> None:
    colour, trimap = _scene(rng, 14, 16)
    fg_known, _, unknown = split_trimap(trimap)
    m = knn_term(colour, unknown, fg_known).matrix.toarray()
    assert np.array_equal(m, m.T)
    assert np.linalg.eigvalsh(m).min() > -1e-9
    # Unknown pixels with known neighbours make it definite: the system has one solution.
    assert np.linalg.eigvalsh(m).min() > 0


def test_a_crop_placed_in_its_frame_sees_the_frames_positions(rng: np.random.Generator) -> None:
    # Positions are scaled by the frame, not the crop: the whole frame passed as a "crop" at
    # (0, 0) is the default, and the same crop at another place in a larger frame still pairs
    # each pixel with the same neighbours when colour decides (weights of position near 0).
    colour, trimap = _scene(rng)
    fg_known, _, unknown = split_trimap(trimap)
    whole = knn_term(colour, unknown, fg_known)
    placed = knn_term(colour, unknown, fg_known, frame=(9, 11, 0, 0))
    assert np.array_equal(whole.matrix.toarray(), placed.matrix.toarray())
    far = knn_term(colour, unknown, fg_known, frame=(900, 1100, 300, 400), distance_weights=(2.0, 0.1))
    near = knn_term(colour, unknown, fg_known, frame=(9, 11, 0, 0), distance_weights=(2.0, 0.1))
    assert not np.array_equal(far.matrix.toarray(), near.matrix.toarray())  # positions weigh less in a larger frame


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((np.zeros((4, 5, 3)),), {}, "H×W×3 colours the size of the trimap"),
        ((np.zeros((5, 6)),), {}, "H×W×3 colours the size of the trimap"),
        ((np.zeros((5, 6, 3)),), {"neighbours": (3,), "distance_weights": (1.0, 0.1)}, "must pair up"),
        ((np.zeros((5, 6, 3)),), {"neighbours": (0,), "distance_weights": (1.0,)}, "must pair up"),
    ],
)
def test_bad_inputs_are_refused(args: tuple, kwargs: dict, message: str) -> None:
    unknown = np.ones((5, 6), bool)
    with pytest.raises(InputError, match=message):
        knn_term(*args, unknown, ~unknown, **kwargs)


def test_extra_features_are_searched_beside_colour_and_position(rng: np.random.Generator) -> None:
    colour, trimap = _scene(rng, 12, 14)
    fg_known, _, unknown = split_trimap(trimap)
    plain = knn_term(colour, unknown, fg_known).matrix.toarray()
    # A constant feature moves no distance: the same term.
    same = knn_term(colour, unknown, fg_known, extra=np.full((12, 14, 2), 0.7, np.float32)).matrix.toarray()
    assert np.array_equal(plain, same)
    # A heavily weighted label splits the search: no unknown pixel is paired with one of the other label.
    label = (np.arange(12)[:, None] % 2 == 0) & np.ones((1, 14), bool)
    split = knn_term(colour, unknown, fg_known, extra=100.0 * label[..., None].astype(np.float32)).matrix.toarray()
    side = label[unknown]
    assert not np.any(split[np.ix_(side, ~side)])
    assert np.any(plain[np.ix_(side, ~side)])
    with pytest.raises(InputError, match="extra features must be H×W×E"):
        knn_term(colour, unknown, fg_known, extra=np.zeros((12, 13, 1), np.float32))


def test_layer_samples_join_the_candidates_as_known_pixels_of_their_alpha(rng: np.random.Generator) -> None:
    colour, trimap = _scene(rng, 12, 14)
    fg_known, _, unknown = split_trimap(trimap)
    plain = knn_term(colour, unknown, fg_known)
    # A background layer equal to the plate: each unknown pixel's own sample lies at distance 0,
    # so it is among its neighbours and pulls toward 0 (the pull falls), and the term stays symmetric.
    as_bg = knn_term(colour, unknown, fg_known, samples=[(colour, 0.0)])
    assert abs(as_bg.matrix - as_bg.matrix.T).max() == 0
    assert np.all(as_bg.pull <= plain.pull + 1e-12) and as_bg.pull.sum() < plain.pull.sum()
    # The same layer as foreground pulls toward 1 by as much.
    as_fg = knn_term(colour, unknown, fg_known, samples=[(colour, 1.0)])
    assert np.allclose(as_fg.matrix.toarray(), as_bg.matrix.toarray())
    assert np.all(as_fg.pull >= plain.pull - 1e-12) and as_fg.pull.sum() > plain.pull.sum()
    # Layers far from every colour are never anyone's neighbours: the plain term.
    far = knn_term(colour, unknown, fg_known, samples=[(colour + 50.0, 0.0), (colour - 50.0, 1.0)])
    assert np.array_equal(far.matrix.toarray(), plain.matrix.toarray()) and np.array_equal(far.pull, plain.pull)
    with pytest.raises(InputError, match="sample layer must be H×W×3"):
        knn_term(colour, unknown, fg_known, samples=[(colour[:, :13], 0.0)])
    with pytest.raises(InputError, match="extra features or samples, not both"):
        knn_term(colour, unknown, fg_known, extra=np.zeros((12, 14, 1), np.float32), samples=[(colour, 0.0)])


def test_candidates_limit_the_searches_to_a_band_around_the_unknown_region() -> None:
    from core.knn import band

    # band: the pixels within the width (Euclidean) of an unknown pixel, those included.
    mask = np.zeros((5, 9), bool)
    mask[2, 4] = True
    near = band(mask, 2)
    ys, xs = np.mgrid[:5, :9]
    assert np.array_equal(near, (ys - 2) ** 2 + (xs - 4) ** 2 <= 4)
    assert not band(np.zeros((3, 3), bool), 5).any()
    # Known foreground far to the left in the unknown pixels' own colour, known background of
    # another colour beside them: over the whole region the colour-led search finds the
    # foreground; within a 3 px band it cannot.
    h, w = 8, 30
    colour = np.zeros((h, w, 3), np.float32)
    colour[:, :10] = colour[:, 20:25] = [0.9, 0.2, 0.1]
    colour[:, 10:20] = colour[:, 25:] = [0.1, 0.3, 0.9]
    trimap = np.zeros((h, w), np.float32)
    trimap[:, :10] = 1.0
    trimap[:, 20:25] = 0.5
    fg_known, _, unknown = split_trimap(trimap)
    whole = knn_term(colour, unknown, fg_known)
    assert whole.pull.sum() > 0
    assert np.array_equal(knn_term(colour, unknown, fg_known, candidates=np.ones((h, w), bool)).pull, whole.pull)
    banded = knn_term(colour, unknown, fg_known, candidates=band(unknown, 3))
    assert banded.pull.sum() == 0 and abs(banded.matrix - banded.matrix.T).max() == 0
    with pytest.raises(InputError, match="candidates must be an H×W mask"):
        knn_term(colour, unknown, fg_known, candidates=np.ones((h, w - 1), bool))


def _speckled_scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Red foreground on the left, a background of four colours at random on the right, and
    between them a band of isolated red pixels (alpha 1) in that background (alpha 0): strands
    whose 3×3 windows hold three colours or more, which the colour-line model cannot follow."""
    h, w = 30, 40
    truth = np.zeros((h, w), np.float32)
    truth[:, :10] = 1
    truth[:, 10:30] = rng.random((h, 20)) < 0.3
    red = np.array([0.9, 0.2, 0.1], np.float32)
    palette = np.array([[0.1, 0.3, 0.9], [0.2, 0.8, 0.3], [0.9, 0.9, 0.2], [0.5, 0.1, 0.6]], np.float32)
    image = truth[..., None] * red + (1 - truth[..., None]) * palette[rng.integers(0, 4, (h, w))]
    image = np.clip(image + rng.normal(0, 0.01, image.shape), 0, 1).astype(np.float32)
    trimap = np.full((h, w), 0.5, np.float32)
    trimap[:, :8] = 1
    trimap[:, 32:] = 0
    return image, trimap, truth


def test_the_knn_term_recovers_isolated_strands_the_laplacian_alone_blurs(rng: np.random.Generator) -> None:
    image, trimap, truth = _speckled_scene(rng)
    half = np.where(trimap == 0.5, 0.5, trimap).astype(np.float32)
    grey = np.full(image.shape, 0.5, np.float32)  # the layers say nothing: no data term to lean on
    unknown = trimap == 0.5
    errors = {}
    for kappa in (0.0, 1.0, 100.0):
        settings = Settings(rounds=1, smoothing=1e-4, confidence_scale=0.1, tolerance=1e-6, max_iterations=2000,
                            knn=kappa)
        alpha = refine(_tensor(image), _tensor(trimap), _tensor(half), _tensor(grey), _tensor(grey), settings).alpha
        errors[kappa] = float(np.abs(alpha[0, 0].numpy() - truth)[unknown].mean())
    # Measured: 0.138, 0.126, 0.061 (the more the neighbours of like colour count, the crisper).
    assert errors[100.0] < errors[1.0] < errors[0.0] and errors[100.0] < 0.5 * errors[0.0], errors


def test_a_round_with_both_terms_solves_their_system(rng: np.random.Generator) -> None:
    # One round: F solved for the network's alpha, â read off the compositing equation, then
    # min aᵀ(L + κM)a − 2(p_L + κp_M)ᵀa + Σ c_λ (a − â)² + μ Σ c g (a − a_net)² with the known pixels
    # fixed (c the confidence of |F − B|, g the agreement of a_net with â). The conjugate
    # gradients' answer equals scipy's direct solve of that system.
    from core.compositing import (
        FG_SOLVE_WEIGHT,
        NETWORK_AGREEMENT,
        RIDGE,
        alpha_from_composite,
        solve_foreground,
    )

    image, trimap, _ = _speckled_scene(rng)
    alpha = np.where(trimap == 0.5, rng.random(trimap.shape), trimap).astype(np.float32)
    fg, bg = rng.random(image.shape).astype(np.float32), rng.random(image.shape).astype(np.float32)
    lam, sigma, kappa, mu = 1e-3, 0.1, 0.01, 0.05
    settings = Settings(rounds=1, smoothing=lam, confidence_scale=sigma, tolerance=1e-8, max_iterations=5000,
                        knn=kappa, network_weight=mu)
    got = refine(_tensor(image), _tensor(trimap), _tensor(alpha), _tensor(fg), _tensor(bg), settings).alpha
    fg_known, _, unknown = split_trimap(trimap)
    u = unknown.ravel()
    col = lambda a: _tensor(a).double().reshape(1, a.shape[-1] if a.ndim == 3 else 1, -1)[:, :, u][..., None]  # noqa: E731
    f_u = solve_foreground(col(image), col(alpha), col(bg), col(fg), FG_SOLVE_WEIGHT)
    prior, distance = alpha_from_composite(col(image), col(bg), f_u)
    confidence = 1 - np.exp(-distance.numpy().ravel() ** 2 / sigma)
    c = lam * confidence + RIDGE
    trust = mu * confidence * np.exp(-(alpha.ravel()[u] - prior.numpy().ravel()) ** 2 / NETWORK_AGREEMENT)
    assert 0.01 < trust.mean() / mu < 0.99  # some pixels agree, some do not
    lap = matting_laplacian(_tensor(image)[0], torch.from_numpy(unknown), torch.from_numpy(fg_known))
    term = knn_term(image, unknown, fg_known)
    matrix = lap.matrix.to_dense().double().numpy() + kappa * term.matrix.toarray()
    rhs = (lap.pull.double().numpy() + kappa * term.pull + c * prior.numpy().ravel()
           + trust * alpha.ravel()[u])
    want = np.clip(scipy.sparse.linalg.spsolve(scipy.sparse.csc_matrix(matrix + np.diag(c + trust)), rhs), 0, 1)
    assert np.abs(got[0, 0].numpy().ravel()[u] - want).max() < 1e-4


def test_the_network_weight_pulls_the_result_toward_the_networks_alpha_where_f_and_b_agree(
    rng: np.random.Generator,
) -> None:
    image, trimap, truth = _speckled_scene(rng)
    unknown = trimap == 0.5
    # Layers that explain the plate: red F; B the plate where the truth is background, blue behind the strands.
    fg = np.broadcast_to(np.array([0.9, 0.2, 0.1], np.float32), image.shape).copy()
    bg = np.where(truth[..., None] > 0, np.array([0.1, 0.3, 0.9], np.float32), image).astype(np.float32)

    def errors(net: np.ndarray) -> list[float]:
        out = []
        for mu in (0.0, 1.0, 1000.0):
            settings = Settings(rounds=1, smoothing=1e-6, tolerance=1e-6, network_weight=mu)
            alpha = refine(_tensor(image), _tensor(trimap), _tensor(net), _tensor(fg), _tensor(bg), settings).alpha
            out.append(float(np.abs(alpha[0, 0].numpy() - truth)[unknown].mean()))
        return out

    right = errors(np.where(unknown, truth, trimap).astype(np.float32))
    assert right[0] > right[1] > right[2] and right[2] < 0.01, right
    # A network that says the opposite of what F and B say is not trusted, however large μ.
    wrong = errors(np.where(unknown, 1 - truth, trimap).astype(np.float32))
    assert abs(wrong[2] - wrong[0]) < 0.01, wrong


@pytest.mark.parametrize(("kwargs", "message"), [({"knn": -0.1}, "knn must be a number >= 0"),
                                                 ({"network_weight": float("inf")}, "network_weight must be a number >= 0"),
                                                 ({"knn_neighbours": 1}, "knn_neighbours must be a whole number from 2 to 200"),
                                                 ({"knn_neighbours": 10.5}, "knn_neighbours must be a whole number from 2 to 200"),
                                                 ({"knn_position": 0}, "knn_position must be a number > 0"),
                                                 ({"knn_band": -1}, "knn_band must be a whole number >= 0"),
                                                 ({"knn_band": 2.5}, "knn_band must be a whole number >= 0")])
def test_bad_weights_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Settings(**kwargs)


def test_the_settings_name_two_searches_near_then_by_colour() -> None:
    assert searches(20, 2.0) == ((20, 10), (2.0, 0.1))  # pymatting's, the defaults
    assert searches(11, 1.0) == ((11, 5), (1.0, 0.1))
    assert searches(Settings().knn_neighbours, Settings().knn_position) == (NEIGHBOURS, DISTANCE_WEIGHTS)
    with pytest.raises(InputError, match="whole number of neighbours >= 2, not 1"):
        searches(1, 1.0)
    with pytest.raises(InputError, match="position weight must be > 0, not -1"):
        searches(10, -1)


def test_the_neighbour_sets_change_the_term_as_the_searches_say(rng: np.random.Generator) -> None:
    image, trimap, _ = _speckled_scene(rng)
    fg_known, _, unknown = split_trimap(trimap)
    fewer = knn_term(image, unknown, fg_known, None, *searches(6, 0.5))
    # 6 near neighbours and 3 by colour: each unknown pixel is paired 9 times (its diagonal counts
    # every pair of its own plus those that find it), at 1 / (2 · 9) a pair.
    assert fewer.matrix.shape == (int(unknown.sum()),) * 2
    assert np.all(fewer.diagonal >= 9 / 18 - 1e-12)
    assert np.allclose(fewer.matrix.toarray(), knn_term(image, unknown, fg_known, None, (6, 3), (0.5, 0.1)).matrix.toarray())
    assert not np.allclose(fewer.matrix.toarray(), knn_term(image, unknown, fg_known).matrix.toarray())


def test_a_term_of_another_trimap_is_refused(rng: np.random.Generator) -> None:
    image, trimap, _ = _speckled_scene(rng)
    other = trimap.copy()
    other[:, 8:12] = 1
    fg_known, _, unknown = split_trimap(other)
    wrong = knn_term(image, unknown, fg_known)
    with pytest.raises(InputError, match="must be built on the same trimap"):
        refine(_tensor(image), _tensor(trimap), _tensor(trimap), _tensor(image), _tensor(image),
               Settings(rounds=1, knn=0.01), knn=wrong)


def test_the_pipeline_reads_both_weights_from_the_bundle_and_builds_the_term_on_its_crop(small_bundle, rng, tmp_path) -> None:
    import json
    import shutil

    from core.pipeline import Matter

    image, trimap, _ = _speckled_scene(rng)
    path = small_bundle.path
    plain = Matter(str(path), device="cpu", allow_untrained=True, rounds=1, tolerance=1e-6)
    assert plain.refinement.knn == 0 and plain.refinement.network_weight == 0
    base = plain.matte(image, trimap, colour="srgb").alpha
    with_knn = Matter(str(path), device="cpu", allow_untrained=True, rounds=1, tolerance=1e-6, knn=0.03,
                      network_weight=1e-4, profile=True)
    assert with_knn.refinement.knn == 0.03 and with_knn.refinement.network_weight == 1e-4
    out = with_knn.matte(image, trimap, colour="srgb").alpha
    assert "knn" in with_knn.stats.seconds
    assert not np.allclose(out, base)
    assert np.array_equal(out[trimap == 1], np.ones(int((trimap == 1).sum()), np.float32))
    # Recorded in the manifest: read back as the bundle's own setting.
    dest = tmp_path / "knn_bundle"
    shutil.copytree(path, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["refinement"] = {"rounds": 1, "tolerance": 1e-6, "knn": 0.03, "network_weight": 1e-4}
    (dest / "manifest.json").write_text(json.dumps(manifest))
    recorded = Matter(str(dest), device="cpu", allow_untrained=True)
    assert recorded.refinement.knn == 0.03 and recorded.refinement.network_weight == 1e-4
    assert np.allclose(recorded.matte(image, trimap, colour="srgb").alpha, out, atol=1e-6)
    # The neighbour sets too: recorded, they change the matte as given ones do.
    manifest["refinement"] |= {"knn_neighbours": 6, "knn_position": 0.5}
    (dest / "manifest.json").write_text(json.dumps(manifest))
    sets = Matter(str(dest), device="cpu", allow_untrained=True)
    assert (sets.refinement.knn_neighbours, sets.refinement.knn_position) == (6, 0.5)
    given = Matter(str(path), device="cpu", allow_untrained=True, rounds=1, tolerance=1e-6, knn=0.03,
                   network_weight=1e-4, knn_neighbours=6, knn_position=0.5)
    fewer = sets.matte(image, trimap, colour="srgb").alpha
    assert np.allclose(given.matte(image, trimap, colour="srgb").alpha, fewer, atol=1e-6)
    assert not np.allclose(fewer, out, atol=1e-4)
    # The band: recorded or given, the searches find known pixels only within it. The scene's
    # known pixels lie 1-8 px from the unknown band on either side: a band of 1 px leaves most of
    # them out, one wider than the crop changes nothing.
    manifest["refinement"] |= {"knn_band": 1}
    (dest / "manifest.json").write_text(json.dumps(manifest))
    banded = Matter(str(dest), device="cpu", allow_untrained=True)
    assert banded.refinement.knn_band == 1
    narrow = banded.matte(image, trimap, colour="srgb").alpha
    assert not np.allclose(narrow, fewer, atol=1e-4)
    assert np.allclose(Matter(str(dest), device="cpu", allow_untrained=True, knn_band=10**6).matte(
        image, trimap, colour="srgb").alpha, fewer, atol=1e-6)
    # The stride: recorded, searches from every other row and column change the matte; given as 1,
    # every unknown pixel searches again.
    manifest["refinement"] |= {"knn_band": 0, "knn_stride": 2}
    (dest / "manifest.json").write_text(json.dumps(manifest))
    strided = Matter(str(dest), device="cpu", allow_untrained=True)
    assert strided.refinement.knn_stride == 2
    assert not np.allclose(strided.matte(image, trimap, colour="srgb").alpha, fewer, atol=1e-4)
    assert np.allclose(Matter(str(dest), device="cpu", allow_untrained=True, knn_stride=1).matte(
        image, trimap, colour="srgb").alpha, fewer, atol=1e-6)


def test_adding_the_term_keeps_no_memory_per_call(rng: np.random.Generator) -> None:
    # torch 2.13's sum of two sparse CSR tensors keeps ~20 MB a call; add_knn must not (a render of
    # a thousand frames would grow by as much). Resident memory after 30 sums of a 60 000-pixel
    # band's system against after the first few.
    from core.compositing import add_knn

    def resident() -> int:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) * 1024

    h, w = 200, 400
    colour = rng.random((h, w, 3)).astype(np.float32)
    trimap = np.full((h, w), 0.5, np.float32)
    trimap[:, :25] = 1
    trimap[:, -25:] = 0
    fg_known, _, unknown = split_trimap(trimap)
    lap = matting_laplacian(_tensor(colour)[0], torch.from_numpy(unknown), torch.from_numpy(fg_known))
    term = knn_term(colour, unknown, fg_known)
    for _ in range(3):
        add_knn(lap, term, 0.01)
    before = resident()
    for i in range(30):
        matrix, pull, diagonal = add_knn(lap, term, 0.01 + i * 1e-4)
    grown = resident() - before
    # torch's own sum kept ~20 MB a call here (600 MB); the allocator's own slack stays far below that
    assert grown < 150 * 2**20, f"{grown / 2**20:.0f} MB kept by 30 sums"
    x = rng.random(int(unknown.sum()))
    want = torch.mv(lap.matrix, torch.from_numpy(x).float()).double().numpy() + (0.01 + 29e-4) * (term.matrix @ x)
    assert np.allclose(torch.mv(matrix, torch.from_numpy(x).float()).numpy(), want, atol=1e-4)
    assert np.allclose(diagonal.numpy(), lap.diagonal.numpy() + (0.01 + 29e-4) * term.diagonal, atol=1e-5)


def test_the_search_runs_on_the_threads_it_is_given(rng: np.random.Generator, monkeypatch) -> None:
    # One thread or all cores, the same neighbours; the pipeline hands torch's thread count on, so
    # OMP_NUM_THREADS on a shared farm node caps the search as it caps the networks.
    import scipy.spatial

    colour, trimap = _scene(rng, 20, 24)
    fg_known, _, unknown = split_trimap(trimap)
    one = knn_term(colour, unknown, fg_known, workers=1)
    every = knn_term(colour, unknown, fg_known, workers=-1)
    assert np.array_equal(one.matrix.toarray(), every.matrix.toarray())

    asked = []
    tree = scipy.spatial.cKDTree

    class Spy(tree):
        def query(self, *args, **kwargs):
            asked.append(kwargs.get("workers"))
            return super().query(*args, **kwargs)

    monkeypatch.setattr(scipy.spatial, "cKDTree", Spy)
    from core.pipeline import Matter

    image, trimap, _ = _speckled_scene(rng)
    threads = torch.get_num_threads()
    Matter("none", device="cpu", rounds=1, knn=0.01).matte(image, trimap, colour="srgb")
    assert asked == [threads, threads]


def test_the_features_keep_hdr_highlights_apart_and_ldr_colours_as_they_are() -> None:
    from core.knn import features

    ldr = np.array([[[0.0, 0.5, 1.0]]], np.float32)
    assert np.array_equal(features(ldr), ldr)
    hdr = features(np.array([[[1.5, 3.0, -0.2]]], np.float32))
    assert hdr[0, 0, 0] == pytest.approx(1 + np.log(1.5)) and hdr[0, 0, 1] == pytest.approx(1 + np.log(3.0))
    assert hdr[0, 0, 2] == 0.0 and hdr[0, 0, 0] < hdr[0, 0, 1]  # ordered, apart, not clipped to one value


def test_a_band_between_the_strides_grid_lines_gives_an_empty_term(rng: np.random.Generator) -> None:
    # A 1-px unknown column at x = 4: with stride 3 no unknown pixel is on the grid, none searches,
    # and the term is empty (it used to fail reshaping the searches' empty results).
    colour = rng.random((9, 11, 3)).astype(np.float32)
    trimap = np.zeros((9, 11), np.float32)
    trimap[:, 5:] = 1.0
    trimap[:, 4] = 0.5
    fg_known, _, unknown = split_trimap(trimap)
    term = knn_term(colour, unknown, fg_known, neighbours=(4, 2), distance_weights=(2.0, 0.1), stride=3)
    assert term.matrix.shape == (9, 9) and term.matrix.nnz == 0
    assert np.array_equal(term.pull, np.zeros(9)) and np.array_equal(term.diagonal, np.zeros(9))
    # The pipeline with the KNN term strided so (the shipped bundle's knn_stride 3) mattes such a band.
    from core.pipeline import Matter

    result = Matter("none", device="cpu", rounds=1, knn=0.01, knn_stride=3).matte(colour, trimap, colour="srgb")
    assert np.isfinite(result.alpha).all() and np.array_equal(result.alpha[:, 5:], np.ones((9, 6), np.float32))
    assert np.array_equal(result.alpha[:, :4], np.zeros((9, 4), np.float32))


def test_unknown_pixels_are_candidates_whatever_the_candidates_mask_says() -> None:
    from core.knn import band

    # A candidates mask of known pixels only (the unknown region left out) gives the same term as
    # the band that includes it: the unknown pixels may always be found (the module's pairs between
    # unknowns; without them the term loses its smoothing within the region).
    rng = np.random.default_rng(3)
    h, w = 6, 12
    colour = rng.random((h, w, 3)).astype(np.float32)
    trimap = np.zeros((h, w), np.float32)
    trimap[:, :3] = 1.0
    trimap[:, 4:8] = 0.5
    fg_known, _, unknown = split_trimap(trimap)
    near = band(unknown, 2)
    full = knn_term(colour, unknown, fg_known, candidates=near)
    known_only = knn_term(colour, unknown, fg_known, candidates=near & ~unknown)
    assert full.matrix.nnz > unknown.sum()  # pairs between unknown pixels exist
    assert abs(full.matrix - known_only.matrix).max() == 0 and np.array_equal(full.pull, known_only.pull)


def test_the_rounds_run_without_the_laplacians_own_copies(rng: np.random.Generator, monkeypatch) -> None:
    # With the KNN term the rounds solve the sum of the two (add_knn); the Laplacian's own matrix
    # and its 25-entry stencil, about 500 bytes an unknown pixel, were still held through every
    # round: a 960x540 frame with 40 % unknown peaked 0.45 GiB above the process, 0.38 without them.
    import weakref

    import core.compositing as compositing

    built: list[weakref.ref] = []
    alive: list[bool] = []
    make, solve = compositing.matting_laplacian, compositing.conjugate_gradients

    def laplacian(*args, **kwargs):
        lap = make(*args, **kwargs)
        built.extend(weakref.ref(t) for t in (lap.matrix, lap.rows, lap.columns))
        return lap

    def rounds(*args, **kwargs):
        alive.append(any(ref() is not None for ref in built))
        return solve(*args, **kwargs)

    monkeypatch.setattr(compositing, "matting_laplacian", laplacian)
    monkeypatch.setattr(compositing, "conjugate_gradients", rounds)
    h, w = 40, 60
    image = rng.random((h, w, 3)).astype(np.float32)
    trimap = np.full((h, w), 0.5, np.float32)
    trimap[:, :10], trimap[:, -10:] = 1.0, 0.0
    refined = refine(_tensor(image), _tensor(trimap), _tensor(np.full((h, w), 0.5)), _tensor(image), _tensor(image),
                     Settings(rounds=2, knn=0.01))
    assert len(built) == 3 and alive == [False, False]
    assert torch.isfinite(refined.alpha).all()


def test_the_summed_systems_diagonal_is_its_matrixs(rng: np.random.Generator) -> None:
    # add_knn's diagonal feeds the Jacobi preconditioner: it must be that of L + κM, κ included
    # (a wrong one still converges, only more slowly, so no solve would notice).
    from core.compositing import add_knn

    colour, trimap = _scene(rng)
    fg_known, _, unknown = split_trimap(trimap)
    lap = matting_laplacian(torch.from_numpy(colour.transpose(2, 0, 1).copy()), torch.from_numpy(unknown),
                            torch.from_numpy(fg_known))
    term = knn_term(colour, unknown, fg_known, neighbours=(4, 2), distance_weights=(2.0, 0.1))
    matrix, pull, diagonal = add_knn(lap, term, 0.3)
    dense = matrix.to_dense().double().numpy()
    np.testing.assert_allclose(diagonal.double().numpy(), np.diag(dense), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(diagonal.double().numpy(), lap.diagonal.double().numpy() + 0.3 * term.diagonal,
                               rtol=1e-6, atol=1e-6)
