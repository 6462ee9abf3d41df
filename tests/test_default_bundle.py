"""The packaged ``default`` bundle: really trained, small, described, and better than trivial answers.

These tests read the committed weights themselves (``core/bundles/default``). They check what the
manifest promises and that the trained networks do what training was for, on the bundled demo
example (exact ground truth, never seen in training): each network beats the obvious
parameter-free answer, and the networks are not the seeded untrained ones. The committed bundle is
part of the package: if it is missing or untrained these tests fail, they do not skip.

The foreground network's own colours are also checked where it can be checked without having
seen the answer: the cross-validation's fold bundles (``docs/cross_validation/folds``, trained as
the shipped one was, each without six objects) on composites of the objects they never saw, in
linear light over background photos training never used (read from ``../shared/data``; skipped
where that is absent).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.demo import load_example
from core.metrics import alpha_errors, foreground_error, unknown_region
from core.training.data import default_data_root
from core.weights import ROLES, default_bundle_path, has_trained_default, load_bundle

ROOT = Path(__file__).resolve().parents[1]
FOLDS = ROOT / "docs" / "cross_validation" / "folds"


def test_the_default_bundle_is_packaged_and_trained() -> None:
    assert has_trained_default(), f"no trained default bundle at {default_bundle_path()}"


@pytest.fixture(scope="module")
def result():
    from core.pipeline import Matter

    example = load_example()
    matter = Matter("default", device="cpu")
    return example, matter.matte(example["image"], example["trimap"], colour="srgb")


def test_manifest_says_how_it_was_trained() -> None:
    bundle = load_bundle("default")
    m = bundle.manifest
    assert bundle.path == default_bundle_path() and m["trained"] is True
    assert m["storage"] == "float16"
    size = sum((bundle.path / f"{role}.safetensors").stat().st_size for role in ROLES)
    assert size < 8 * 2**20, f"{size / 2**20:.1f} MiB is not a few MB"
    # A bundle trained further (train --from) records its own stages and, under continued_from,
    # those of the bundle it started from: every network has been trained, somewhere in the chain.
    chain, training = [], m["training"]
    while training:
        chain.append(training)
        training = (training.get("continued_from") or {}).get("training")
    for role in ROLES:
        runs = [t["stages"][role] for t in chain if (t.get("stages") or {}).get(role, {}).get("step")]
        assert sum(r["step"] for r in runs) >= 100 and all(r["seconds"] > 0 and r["machine"] for r in runs), role
        assert any(role in t.get("final_validation", {}) for t in chain), role
    for t in chain:
        data = t["data"]
        assert data["objects"] and set(data["validation_objects"]).isdisjoint(data["objects"])
        assert set(data.get("real_photos", {}).get("plates", [])) <= set(data["objects"])


def test_alpha_beats_the_trivial_matte_and_keeps_known_regions(result) -> None:
    example, matte = result
    trimap, gt = example["trimap"], example["alpha"]
    assert matte.alpha.shape == gt.shape and matte.alpha.dtype == np.float32
    assert np.all(matte.alpha[trimap == 1] == 1) and np.all(matte.alpha[trimap == 0] == 0)
    ours = alpha_errors(matte.alpha, gt, trimap)
    half = alpha_errors(np.where(unknown_region(trimap), 0.5, trimap).astype(np.float32), gt, trimap)
    assert ours["sad"] < 0.5 * half["sad"] and ours["mse"] < 0.5 * half["mse"]


def test_foreground_beats_copying_the_plate(result) -> None:
    example, matte = result
    trimap, gt = example["trimap"], example["alpha"]
    ours = foreground_error(matte.fg, example["fg"], gt, trimap)
    plate = foreground_error(example["image"], example["fg"], gt, trimap)
    assert ours["fg_sad"] < plate["fg_sad"]


def test_background_beats_copying_the_plate(result) -> None:
    example, matte = result
    unknown = unknown_region(example["trimap"])
    # Where the background is hidden the most (alpha > 0.5), the estimate is closer than the plate.
    hidden = unknown & (example["alpha"] > 0.5)
    ours = np.abs(matte.bg - example["bg"])[hidden].mean()
    plate = np.abs(example["image"] - example["bg"])[hidden].mean()
    assert ours < plate


def test_weights_are_not_the_seeded_untrained_ones() -> None:
    from core.nets import build_network

    bundle = load_bundle("default")
    for role in ROLES:
        torch.manual_seed(0)
        fresh = build_network(bundle.config(role)).state_dict()
        trained = bundle.load_network(role).state_dict()
        moved = [k for k in fresh if fresh[k].is_floating_point() and not torch.allclose(fresh[k], trained[k], atol=1e-3)]
        assert len(moved) > 0.9 * len([k for k in fresh if fresh[k].is_floating_point()]), role


def test_the_networks_own_alpha_beats_the_parameter_free_one_on_the_demo() -> None:
    # Refinement off on both sides, so the networks cannot hide behind the classical step: the
    # shipped matting network's alpha against alpha 0.5 (`--weights none`), both with the layers
    # left as the networks / the pull-push fills give them. Measured: SAD 13.5 (the cross-validated bundle; 10.6 the one before)
    # against 28.2 over the demo's unknown region.
    from core.pipeline import Matter

    ex = load_example()
    unknown = ex["trimap"] == 0.5
    sad = {}
    for name in ("default", "none"):
        out = Matter(name, device="cpu", rounds=0, fg_solve=0).matte(ex["image"], ex["trimap"], colour="srgb")
        sad[name] = float(np.abs(out.alpha - ex["alpha"])[unknown].sum() / 1000)
    assert sad["default"] < 0.5 * sad["none"], sad


@pytest.fixture(scope="module")
def held_out_composites(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, list[str]]]:
    """Each fold's held-out objects composited in linear light over one validation background
    photo (``tools/make_validation_composites.py``, as the protocol's layer scores use them):
    the folder and ``{fold: [composite names]}``."""
    data = default_data_root()
    if not (data / "alphamatting").is_dir() or not (data / "backgrounds").is_dir():
        pytest.skip(f"the alphamatting.com photographs or the background photos are not in {data}")
    sys.path.insert(0, str(ROOT / "tools"))
    import cross_validate as cv
    from make_validation_composites import make_set

    out = tmp_path_factory.mktemp("composites")
    held = {}
    for k, names in enumerate(cv.folds(cv.objects(data), 3)):
        recorded = load_bundle(str(FOLDS / f"fold{k}" / "bundle")).manifest["training"]["data"]
        assert set(names).isdisjoint(recorded["objects"]), f"fold {k}'s bundle saw its held-out objects"
        held[k] = make_set(data, out, 1, objects=tuple(names), linear=True)
    return out, held


def _own_foreground_sad(weights: str, folder: Path, names: list[str]) -> list[float]:
    """The α-weighted FG SAD of ``weights``' own foreground (refinement off, as the networks give
    it with the plate pasted on the known pixels), both trimaps, display-encoded as ``lbsmatte
    evaluate`` scores it."""
    from core.evaluate import _display, _read_alpha, _read_plate, _read_trimap
    from core.pipeline import Matter

    matter = Matter(weights, device="cpu", rounds=0, fg_solve=0)
    matting = matter.nets["alpha"]
    scores = []
    for name in names:
        plate, colour = _read_plate(folder / "image" / f"{name}.exr")
        alpha = _read_alpha(folder / "alpha" / f"{name}.png")
        fg_true = _display(*_read_plate(folder / "fg" / f"{name}.exr"))
        for variant in ("Trimap1", "Trimap2"):
            trimap = _read_trimap(folder / "trimap" / variant / f"{name}.png")
            fg = matter.matte(plate, trimap, colour=colour).fg
            if matter.nets["alpha"] is matting:
                # The matting network (about 40 % of the three networks' time on these frames) is
                # left out from here on: the FG scored is the same to the bit without it, as
                # checked on this first frame.
                matter.nets["alpha"] = _NoAlpha(getattr(matting, "stride", 1))
                assert np.array_equal(matter.matte(plate, trimap, colour=colour).fg, fg), (weights, name, variant)
            scores.append(foreground_error(_display(fg, colour), fg_true, alpha, trimap)["fg_sad"])
    return scores


class _NoAlpha(torch.nn.Module):
    """Stands in for the matting network where only the FG is scored: with ``rounds=0`` and
    ``fg_solve=0`` the FG is the foreground network's (on the plate and the background network's
    B), pasted on the known pixels; alpha reaches none of it. Its alpha is 0."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor, where: torch.Tensor | None = None) -> torch.Tensor:
        return x.new_zeros((x.shape[0], 1, *x.shape[2:]))


def test_the_foreground_networks_own_colours_beat_the_parameter_free_fill_on_objects_they_never_saw(
        held_out_composites) -> None:
    # Refinement off on both sides: the fold's networks' F against pull-push's (`--weights none`),
    # each fold on its own held-out objects. Measured (one background each, both trimaps): fold 0
    # 4.54 against 5.82, fold 1 13.01 against 15.26, fold 2 14.15 against 17.08 (0.78-0.85). The
    # background network is not held to the same: its own B is no better than pull-push's
    # (README, Evaluation).
    folder, held = held_out_composites
    for k, names in held.items():
        nets = _own_foreground_sad(str(FOLDS / f"fold{k}" / "bundle"), folder, names)
        fill = _own_foreground_sad("none", folder, names)
        assert np.mean(nets) < 0.92 * np.mean(fill), (k, np.mean(nets), np.mean(fill))
