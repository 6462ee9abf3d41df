"""core.evaluate on a tiny data set written in tmp_path (SPEC §9 layout)."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from core import baselines as baselines_module
from core.contact_sheet import sheet_size
from core.errors import InputError
from core.evaluate import MadeTrimaps, add_arguments, evaluate_dataset, find_samples, run
from core.io import read_image, write_image

SIZE = 48


def _example(seed: int) -> dict[str, np.ndarray]:
    """A soft disc of one colour over a smooth background, with tight and loose trimaps."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    r = np.hypot(yy - SIZE / 2, xx - SIZE / 2)
    alpha = np.clip((14 - r) / 6, 0, 1)  # 1 inside r=8, 0 outside r=14
    fg = np.broadcast_to(rng.uniform(0.5, 0.9, 3), (SIZE, SIZE, 3))
    bg = np.stack([xx / SIZE * 0.4, yy / SIZE * 0.3 + 0.1, np.full_like(xx, 0.2)], -1)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    tight = np.where(r < 7, 1.0, np.where(r > 15, 0.0, 0.5))
    loose = np.where(r < 5, 1.0, np.where(r > 19, 0.0, 0.5))
    return {"image": image, "alpha": alpha, "fg": np.array(fg), "bg": bg, "Trimap1": tight, "Trimap2": loose}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("set")
    for seed, name in enumerate(["A01", "B02"]):
        ex = _example(seed)
        write_image(root / "image" / f"{name}.png", ex["image"], ["R", "G", "B"])
        write_image(root / "alpha" / f"{name}.png", ex["alpha"], ["Y"])
        for variant in ("Trimap1", "Trimap2"):
            write_image(root / "trimap" / variant / f"{name}.png", ex[variant], ["Y"])
    return root


@pytest.fixture(scope="module")
def dataset_with_fg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("set_fg")
    ex = _example(3)
    write_image(root / "image" / "C03.png", ex["image"], ["R", "G", "B"])
    write_image(root / "alpha" / "C03.png", ex["alpha"], ["Y"])
    write_image(root / "fg" / "C03.png", ex["fg"], ["R", "G", "B"])
    write_image(root / "bg" / "C03.png", ex["bg"], ["R", "G", "B"])
    write_image(root / "trimap" / "C03.png", ex["Trimap1"], ["Y"])  # flat layout: one variant
    return root


def test_find_samples(dataset: Path) -> None:
    samples, variants = find_samples(dataset)
    assert [s.name for s in samples] == ["A01", "B02"] and variants == ["Trimap1", "Trimap2"]
    assert samples[0].fg is None
    samples, variants = find_samples(dataset, names=["B02"], trimaps=["Trimap2"])
    assert [s.name for s in samples] == ["B02"] and variants == ["Trimap2"]
    with pytest.raises(InputError, match="no image ZZ.*A01, B02"):
        find_samples(dataset, names=["ZZ"])
    with pytest.raises(InputError, match="no trimap variant Trimap9.*Trimap1, Trimap2"):
        find_samples(dataset, trimaps=["Trimap9"])


def test_baselines_only(dataset: Path, tmp_path: Path) -> None:
    out, json_path, table = tmp_path / "sheets", tmp_path / "r.json", io.StringIO()
    results = evaluate_dataset(
        dataset, weights=None, baselines="closed_form,clustering", out=out, json_path=json_path,
        progress=False, stream=table,
    )
    on_disk = json.loads(json_path.read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert on_disk["methods"] == ["closed_form", "clustering"]
    assert on_disk["metrics"] == ["sad", "mse", "grad", "conn"]  # no fg/: no FG columns
    assert on_disk["weights"] is None and on_disk["failures"] == []
    assert set(on_disk["variants"]) == {"Trimap1", "Trimap2"}
    for variant in ("Trimap1", "Trimap2"):
        block = on_disk["variants"][variant]
        assert set(block["images"]) == {"A01", "B02"}
        for method in ("closed_form", "clustering"):
            per_image = [block["images"][n][method] for n in ("A01", "B02")]
            for row in per_image:
                assert set(row) == {"sad", "mse", "grad", "conn", "seconds"}
                assert all(np.isfinite(v) and v >= 0 for v in row.values())
            mean = block["mean"][method]
            assert mean["images"] == 2
            assert mean["sad"] == pytest.approx((per_image[0]["sad"] + per_image[1]["sad"]) / 2)
        # A single-colour disc over a smooth background is easy: closed-form gets it nearly right.
        assert block["mean"]["closed_form"]["sad"] < 0.05
    # The looser trimap has more unknown pixels to get wrong.
    assert on_disk["variants"]["Trimap2"]["mean"]["clustering"]["sad"] >= on_disk["variants"]["Trimap1"]["mean"]["clustering"]["sad"]

    text = table.getvalue()
    assert "== Trimap1: 2 images" in text and "== Trimap2: 2 images" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("mean over images"))
    assert header.split() == ["mean", "over", "images", "SAD", "MSE", "Grad", "Conn", "s/image", "images"]
    row = next(line for line in lines if line.startswith("closed_form"))
    assert row.split()[-1] == "2"
    # Right-aligned columns: every row of a table ends at the same column as its header.
    assert len(row.rstrip()) == len(header.rstrip())

    for variant in ("Trimap1", "Trimap2"):
        for name in ("A01", "B02"):
            sheet = read_image(out / variant / f"{name}.png")
            # as wide as the tiles; taller: at SIZE px the labels wrap (tests/test_contact_sheet.py)
            assert sheet.shape[1] == sheet_size(SIZE, SIZE, 8, columns=4)[1]
            assert sheet.shape[0] > sheet_size(SIZE, SIZE, 8, columns=4)[0]
            assert sheet.pixels.shape[2] == 3


def test_all_four_baselines_and_the_foreground_columns(dataset_with_fg: Path) -> None:
    results = evaluate_dataset(dataset_with_fg, weights=None, baselines="all", progress=False, stream=io.StringIO())
    # With true layers, the plate itself is scored as FG and as BG: what estimated layers must beat.
    assert results["methods"] == ["closed_form", "knn", "lbdm", "clustering", "plate"]
    assert results["metrics"] == ["sad", "mse", "grad", "conn", "fg_sad", "fg_mse", "bg_sad", "bg_mse"]
    block = results["variants"]["trimap"]  # flat trimap/ layout
    for method in results["methods"]:
        row = block["images"]["C03"][method]
        assert row["fg_mse"] >= 0 and np.isfinite(row["fg_sad"]) and row["bg_mse"] >= 0 and np.isfinite(row["bg_sad"])
    assert set(block["images"]["C03"]["plate"]) == {"fg_sad", "fg_mse", "bg_sad", "bg_mse"}  # no alpha
    # One flat FG colour and a good alpha: multilevel FG estimation is close to the truth, and
    # much closer than the plate, which mixes in the background over the soft edge.
    cf, plate = block["images"]["C03"]["closed_form"], block["images"]["C03"]["plate"]
    assert cf["fg_mse"] < 1e-3 and cf["fg_sad"] < 0.5 * plate["fg_sad"] and cf["bg_sad"] < plate["bg_sad"]


def test_lbsmatte_with_the_small_bundle(dataset: Path, small_bundle, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")  # small_bundle is untrained on purpose
    results = evaluate_dataset(
        dataset, weights=str(small_bundle.path), baselines=["clustering"], device="cpu", names="A01",
        trimaps="Trimap1", out=tmp_path, progress=False, stream=io.StringIO(),
    )
    assert results["methods"] == ["lbsmatte", "clustering"]
    assert results["weights"]["path"] == str(small_bundle.path) and results["weights"]["trained"] is False
    row = results["variants"]["Trimap1"]["images"]["A01"]["lbsmatte"]
    assert set(row) == {"sad", "mse", "grad", "conn", "seconds"} and row["seconds"] > 0
    # The score is that of the pipeline's own matte of this plate and trimap (the bundle's
    # settings, as evaluate loads it), scored over the trimap's unknown region.
    from core.metrics import mse, sad
    from core.pipeline import Matter
    from core.trimap import normalise_trimap

    plate = read_image(dataset / "image" / "A01.png").pixels[..., :3]
    trimap = normalise_trimap(read_image(dataset / "trimap" / "Trimap1" / "A01.png").pixels[..., 0])
    alpha_gt = read_image(dataset / "alpha" / "A01.png").pixels[..., 0]
    alpha = Matter(str(small_bundle.path), device="cpu").matte(plate, trimap, colour="srgb").alpha
    assert row["sad"] == pytest.approx(sad(alpha, alpha_gt, trimap), rel=1e-5) and row["sad"] > 0
    assert row["mse"] == pytest.approx(mse(alpha, alpha_gt, trimap), rel=1e-5)
    sheet = read_image(tmp_path / "Trimap1" / "A01.png")
    assert sheet.shape[1] == sheet_size(SIZE, SIZE, 8, columns=4)[1]
    assert sheet.shape[0] > sheet_size(SIZE, SIZE, 8, columns=4)[0]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser, "evaluate")
    return parser.parse_args(list(argv))


def test_cli_run(dataset: Path, tmp_path: Path, capsys) -> None:
    json_path = tmp_path / "out.json"
    code = run(_args(str(dataset), "--no-lbsmatte", "--baselines", "clustering", "--json", str(json_path),
                     "--names", "A01,B02", "--trimaps", "Trimap2", "--no-progress"))
    assert code == 0
    assert "== Trimap2: 2 images" in capsys.readouterr().out
    assert list(json.loads(json_path.read_text())["variants"]) == ["Trimap2"]


def test_cli_through_lbsmatte_main(dataset: Path, capsys) -> None:
    from core.cli import main

    assert main(["evaluate", str(dataset), "--no-lbsmatte", "--baselines", "clustering", "--no-progress"]) == 0
    assert "clustering" in capsys.readouterr().out


def test_untrained_weights_are_refused_with_a_hint(dataset: Path, small_bundle, monkeypatch, capsys) -> None:
    monkeypatch.delenv("LBSMATTE_ALLOW_UNTRAINED", raising=False)
    code = run(_args(str(dataset), "--weights", str(small_bundle.path), "--baselines", "none", "--no-progress"))
    out = capsys.readouterr().out
    assert code == 1
    assert "ERROR:" in out and "untrained" in out and "--no-lbsmatte" in out


def test_bad_requests(dataset: Path, capsys) -> None:
    # Usage errors exit 2, as lbsmatte matte's do.
    assert run(_args(str(dataset), "--no-lbsmatte", "--baselines", "none")) == 2
    assert "nothing to evaluate" in capsys.readouterr().out
    assert run(_args(str(dataset), "--no-lbsmatte", "--baselines", "magic")) == 2
    assert "unknown baseline magic" in capsys.readouterr().out
    assert run(_args(str(dataset / "nope"), "--no-lbsmatte")) == 2
    assert "not found" in capsys.readouterr().out
    # An empty list (a shell variable that was not set) is said as such, not as images lacking trimaps.
    for flag, said in (("--names", "--names names no image (there is: A01, B02)"),
                       ("--trimaps", "--trimaps names no trimap variant (there is: Trimap1, Trimap2)")):
        for empty in ("", ","):
            assert run(_args(str(dataset), "--no-lbsmatte", "--baselines", "clustering", flag, empty)) == 2
            assert f"ERROR: {dataset}: {said}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:  # checked by argparse, before anything is imported or read
        _args(str(dataset), "--device", "tpu")
    assert exc.value.code == 2 and "--device takes auto, cpu, cuda or cuda:N, not 'tpu'" in capsys.readouterr().err
    assert _args(str(dataset), "--device", "cuda:1").device == "cuda:1"



def test_results_never_replace_the_data_sets_own_files(dataset: Path, tmp_path: Path, capsys) -> None:
    """--json or --out inside image/, alpha/ or trimap/ would replace the user's inputs: refused
    before any scoring, the inputs byte for byte as they were."""
    image = next((dataset / "image").iterdir())
    before = image.read_bytes()
    for flag, path in (("--json", image), ("--json", dataset / "alpha" / "results.json"), ("--out", dataset / "image")):
        assert run(_args(str(dataset), "--no-lbsmatte", "--baselines", "clustering", flag, str(path),
                         "--no-progress")) == 2  # a usage error, as 'matte --out' an input
        said = capsys.readouterr().out
        assert f"refusing to write {flag} {path}: it lies in the data set's" in said and "== " not in said
    assert image.read_bytes() == before and not (dataset / "alpha" / "results.json").exists()
    (tmp_path / "folder").mkdir()
    assert run(_args(str(dataset), "--no-lbsmatte", "--baselines", "clustering", "--json", str(tmp_path / "folder"),
                     "--no-progress")) == 2
    said = capsys.readouterr().out
    assert f"--json {tmp_path / 'folder'} is a folder: give the path of a .json file" in said and "== " not in said

def test_contact_sheets_into_the_data_set_itself_never_replace_its_trimaps(
    dataset_with_fg: Path, tmp_path: Path, capsys
) -> None:
    """--out the data set folder: the sheets' out/<variant>/ of the flat layout is trimap/ itself."""
    import shutil

    root = shutil.copytree(dataset_with_fg, tmp_path / "set")
    trimap = root / "trimap" / "C03.png"
    before = trimap.read_bytes()
    assert run(_args(str(root), "--no-lbsmatte", "--baselines", "clustering", "--out", str(root),
                     "--no-progress")) == 2
    said = capsys.readouterr().out
    assert f"refusing to write --out {root} (its files would go to {root / 'trimap'})" in said and "== " not in said
    assert trimap.read_bytes() == before


def test_results_never_go_into_the_packaged_bundles(dataset: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    import core.weights

    packaged = tmp_path / "package" / "bundles" / "default"
    packaged.mkdir(parents=True)
    monkeypatch.setattr(core.weights, "default_bundle_path", lambda: packaged)
    link = tmp_path / "results.json"
    link.symlink_to(packaged / "results.json")  # followed: the file it names is the one written
    (tmp_path / "sheets").mkdir()
    (tmp_path / "sheets" / "Trimap1").symlink_to(packaged)  # the sheets of variant Trimap1 go to sheets/Trimap1/
    for flag, path, refused in (("--json", packaged / "r.json", packaged / "r.json"), ("--json", link, link),
                                ("--out", packaged.parent / "sheets", packaged.parent / "sheets"),
                                ("--out", tmp_path / "sheets", tmp_path / "sheets" / "Trimap1")):
        assert run(_args(str(dataset), "--no-lbsmatte", "--baselines", "clustering", flag, str(path),
                         "--no-progress")) == 2
        said = capsys.readouterr().out
        assert f"ERROR: {flag}: refusing to write {refused}: it is inside LBSMatte's packaged bundles" in said
        assert "== " not in said
    assert list(packaged.iterdir()) == [] and sorted(p.name for p in packaged.parent.iterdir()) == ["default"]


def test_a_contact_sheet_linked_to_a_data_set_file_or_the_json_is_refused(dataset: Path, tmp_path: Path,
                                                                          capsys) -> None:
    # A sheet that is a symbolic link to the image's ground truth was written through the link.
    sheets = tmp_path / "sheets"
    (sheets / "Trimap2").mkdir(parents=True)
    (sheets / "Trimap2" / "B02.png").symlink_to(dataset / "alpha" / "B02.png")
    before = (dataset / "alpha" / "B02.png").read_bytes()
    assert run(_args(str(dataset), "--no-lbsmatte", "--baselines", "clustering", "--out", str(sheets),
                     "--no-progress")) == 2
    assert capsys.readouterr().out == (f"ERROR: refusing to write --out {sheets}: its contact sheet "
                                       f"{sheets / 'Trimap2' / 'B02.png'} is one of the data set's files "
                                       f"({dataset / 'alpha' / 'B02.png'}); write the sheets to a folder of their own\n")
    assert (dataset / "alpha" / "B02.png").read_bytes() == before
    (sheets / "Trimap2" / "B02.png").unlink()
    json_path = sheets / "Trimap1" / "A01.png"
    assert run(_args(str(dataset), "--no-lbsmatte", "--baselines", "clustering", "--out", str(sheets),
                     "--json", str(json_path), "--no-progress")) == 2
    assert capsys.readouterr().out == (f"ERROR: --json {json_path} is also where the contact sheet of A01 goes "
                                       f"(--out, {json_path}); give the results a file of their own\n")
    assert list(sheets.rglob("*.png")) == []
    linked = tmp_path / "linked"  # the same file named through a link to the sheets' folder
    linked.symlink_to(sheets)
    json_path = linked / "Trimap1" / "A01.png"
    assert run(_args(str(dataset), "--no-lbsmatte", "--baselines", "clustering", "--out", str(sheets),
                     "--json", str(json_path), "--no-progress")) == 2
    assert capsys.readouterr().out == (f"ERROR: --json {json_path} is also where the contact sheet of A01 goes "
                                       f"(--out, {sheets / 'Trimap1' / 'A01.png'}); give the results a file of "
                                       "their own\n")
    assert list(sheets.rglob("*.png")) == []


@pytest.mark.parametrize("target", ["image/B02.png", "trimap/Trimap2/B02.png"])
def test_a_contact_sheet_linked_to_its_image_or_trimap_is_refused(dataset: Path, tmp_path: Path, capsys,
                                                                  target: str) -> None:
    sheets = tmp_path / "sheets"
    (sheets / "Trimap2").mkdir(parents=True)
    (sheets / "Trimap2" / "B02.png").symlink_to(dataset / target)
    before = (dataset / target).read_bytes()
    assert run(_args(str(dataset), "--no-lbsmatte", "--baselines", "clustering", "--out", str(sheets),
                     "--no-progress")) == 2
    assert capsys.readouterr().out == (f"ERROR: refusing to write --out {sheets}: its contact sheet "
                                       f"{sheets / 'Trimap2' / 'B02.png'} is one of the data set's files "
                                       f"({dataset / target}); write the sheets to a folder of their own\n")
    assert (dataset / target).read_bytes() == before


def test_one_images_bad_files_fail_that_image_and_the_others_are_still_scored(
    dataset: Path, tmp_path: Path, capsys
) -> None:
    """A trimap of another size (or a damaged file) stopped the whole evaluation with exit 2 and no
    JSON, whatever had been scored before it."""
    import shutil

    root = shutil.copytree(dataset, tmp_path / "set")
    write_image(root / "trimap" / "Trimap1" / "A01.png", np.zeros((SIZE - 8, SIZE)), ["Y"])
    json_path = tmp_path / "r.json"
    code = run(_args(str(root), "--no-lbsmatte", "--baselines", "clustering", "--trimaps", "Trimap1",
                     "--json", str(json_path), "--no-progress"))
    out = capsys.readouterr().out
    assert code == 1
    bad = root / "trimap" / "Trimap1" / "A01.png"
    assert f"ERROR: Trimap1/A01: {bad}: the trimap is {SIZE}x{SIZE - 8} but the image is {SIZE}x{SIZE}; not scored" in out
    record = json.loads(json_path.read_text())
    assert list(record["variants"]["Trimap1"]["images"]) == ["B02"]
    assert record["failures"] == [{"variant": "Trimap1", "image": "A01", "method": None,
                                   "error": f"{bad}: the trimap is {SIZE}x{SIZE - 8} but the image is {SIZE}x{SIZE}"}]


def test_a_failing_method_is_reported_and_the_rest_still_scored(dataset: Path, monkeypatch, capsys) -> None:
    def broken(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        raise RuntimeError("solver diverged")

    monkeypatch.setitem(baselines_module.BASELINES, "broken", broken)
    code = run(_args(str(dataset), "--no-lbsmatte", "--baselines", "broken,clustering", "--trimaps", "Trimap1",
                     "--no-progress"))
    out = capsys.readouterr().out
    assert code == 1
    assert "ERROR: Trimap1/A01 broken: RuntimeError: solver diverged" in out
    assert "clustering" in out


def test_weights_none_is_the_pipeline_without_networks_plainly_labelled(dataset: Path, tmp_path: Path, capsys) -> None:
    json_path = tmp_path / "none.json"
    assert run(_args(str(dataset), "--weights", "none", "--baselines", "none", "--json", str(json_path), "--no-progress")) == 0
    out = capsys.readouterr().out
    assert "--weights none, NO NETWORKS" in out and "a diagnostic" in out
    record = json.loads(json_path.read_text())
    assert record["weights"]["name"] == "none" and record["methods"] == ["lbsmatte"]
    # no folder and no manifest file, said as null (the path was the string "None")
    assert record["weights"]["path"] is None and record["weights"]["manifest_sha256"] is None


#: The KNN term's neighbour searches' settings (:class:`core.compositing.Settings`).
KNN_SEARCH = ("knn_neighbours", "knn_position", "knn_band", "knn_stride")


def test_ablations_score_the_networks_alone_and_the_pipeline_without_them_on_the_same_inputs(
    dataset: Path, small_bundle, monkeypatch
) -> None:
    from core.pipeline import Matter
    from core.trimap import normalise_trimap

    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")
    results = evaluate_dataset(
        dataset, weights=str(small_bundle.path), baselines=["closed_form"], device="cpu", names="A01",
        trimaps="Trimap1", progress=False, stream=io.StringIO(), ablations=True,
    )
    assert results["methods"] == ["lbsmatte", "networks_alone", "no_networks", "closed_form"]
    row = results["variants"]["Trimap1"]["images"]["A01"]
    # Each ablation is exactly the pipeline it names, on the same plate and trimap.
    plate = read_image(dataset / "image" / "A01.png").pixels[..., :3]
    trimap = normalise_trimap(read_image(dataset / "trimap" / "Trimap1" / "A01.png").pixels[..., 0])
    alpha_gt = read_image(dataset / "alpha" / "A01.png").pixels[..., 0]
    import dataclasses

    from core.metrics import sad

    # The bundle records no refinement: both it and the priors run the module defaults.
    settings = dataclasses.asdict(Matter(str(small_bundle.path), device="cpu").refinement)
    settings.pop("max_iterations")
    assert settings["knn"] == 0  # no KNN term: its searches' settings are refused, not passed (Matter)
    for key in KNN_SEARCH:
        settings.pop(key)
    assert settings["layers"] == "solve"  # per pixel, with no prior: a layer_prior is refused too
    settings.pop("layer_prior")
    for method, matter in (("networks_alone", Matter(str(small_bundle.path), device="cpu", rounds=0)),
                           ("no_networks", Matter("none", device="cpu", **settings))):
        alpha = matter.matte(plate, trimap, colour="srgb").alpha
        assert row[method]["sad"] == pytest.approx(sad(alpha, alpha_gt, trimap), rel=1e-5)
    assert row["networks_alone"]["sad"] != pytest.approx(row["lbsmatte"]["sad"], rel=1e-3)


def test_the_pipeline_without_networks_refines_and_makes_layers_as_the_bundle_records(
    dataset: Path, small_bundle, tmp_path: Path, monkeypatch
) -> None:
    import shutil

    import core.pipeline

    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")
    folder = tmp_path / "recorded"
    shutil.copytree(small_bundle.path, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["refinement"] = {"rounds": 1, "smoothing": 0.001, "confidence_scale": 0.3, "tolerance": 0.001,
                              "layers": "multilevel", "layer_prior": 0.3, "layer_space": "display", "agree_ratio": 0.01,
                              "network_weight": 0.001}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    made = []

    class Recording(core.pipeline.Matter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(core.pipeline, "Matter", Recording)
    evaluate_dataset(dataset, weights=str(folder), baselines="none", device="cpu", names="A01", trimaps="Trimap1",
                     progress=False, stream=io.StringIO(), ablations=True)
    pipeline, alone, without = made
    # Everything the bundle records but the matting network's own data term (μ): no network, no term.
    assert pipeline.refinement.network_weight == 0.001
    assert without.bundle.name != pipeline.bundle.name
    # The KNN term's searches aside: the bundle records no term (knn 0), and Matter refuses its
    # searches' settings without one, so the priors keep the default bundle's, which act on nothing.
    assert pipeline.refinement.knn == without.refinement.knn == 0
    searches = {key: getattr(without.refinement, key) for key in KNN_SEARCH}
    assert without.refinement == dataclasses.replace(pipeline.refinement, network_weight=0.0, **searches)
    assert (alone.refinement.rounds, alone.refinement.layers, alone.refinement.agree_ratio) == (0, "solve", 0.01)


def test_with_no_refinement_rounds_there_is_no_pipeline_without_networks(dataset: Path, small_bundle,
                                                                          monkeypatch, caplog) -> None:
    # --rounds 0: the pipeline is the networks alone; the priors with no refinement would be no matte
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")
    with caplog.at_level("WARNING", logger="core.evaluate"):
        results = evaluate_dataset(dataset, weights=str(small_bundle.path), baselines="none", device="cpu",
                                   names="A01", trimaps="Trimap1", progress=False, stream=io.StringIO(),
                                   ablations=True, rounds=0)
    assert results["methods"] == ["lbsmatte", "networks_alone"]
    assert not results["failures"]
    # said so: the row asked for is not silently missing
    assert any("--rounds 0" in r.getMessage() and "no_networks" in r.getMessage() for r in caplog.records)


def test_ablations_need_lbsmatte(dataset: Path) -> None:
    with pytest.raises(InputError, match="ablations"):
        evaluate_dataset(dataset, weights=None, baselines=["closed_form"], progress=False, stream=io.StringIO(), ablations=True)


def test_the_json_is_written_through_a_temporary_file_of_its_own(tmp_path: Path) -> None:
    from core.evaluate import _write_json

    path = tmp_path / "r.json"
    other = tmp_path / ".r.json.tmp"  # the temporary file of another run writing the same --json
    other.write_text('{"half of another run')
    _write_json(path, {"score": 1.5})
    assert json.loads(path.read_text()) == {"score": 1.5}
    assert other.read_text() == '{"half of another run'
    assert sorted(p.name for p in tmp_path.iterdir()) == [".r.json.tmp", "r.json"]


def test_what_an_evaluation_killed_while_writing_left_is_removed_by_the_next(dataset: Path, tmp_path: Path) -> None:
    # A SIGKILL (a farm's, after its grace period) while the JSON or a contact sheet was written
    # left its temporary file (named as core.io.atomic_output names them) for good, run after run.
    results, sheets = tmp_path / "r.json", tmp_path / "sheets"
    (sheets / "Trimap1").mkdir(parents=True)
    left = [tmp_path / ".r.json.tmp-k3j9x2ab.json", sheets / "Trimap1" / ".A01.png.tmp-0m1x_8qz.png"]
    for path in left:
        path.write_bytes(b"half of a killed run's file")
    assert run(_args(str(dataset), "--no-lbsmatte", "--baselines", "clustering", "--names", "A01", "--trimaps",
                     "Trimap1", "--json", str(results), "--out", str(sheets), "--no-progress")) == 0
    assert json.loads(results.read_text()) and (sheets / "Trimap1" / "A01.png").is_file()
    assert [p.name for p in tmp_path.rglob(".*")] == []


def test_a_methods_scores_are_the_metrics_over_the_trimaps_unknown_pixels(dataset: Path, monkeypatch) -> None:
    # A stand-in baseline with a known answer (alpha 0.5 everywhere): its row must be
    # core.metrics over this variant's unknown region of the 8-bit files, not over the frame.
    from core.metrics import connectivity_error, gradient_error

    seen: list[np.ndarray] = []

    def grey(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        seen.append(trimap)
        return np.full(trimap.shape, 0.5)

    monkeypatch.setitem(baselines_module.BASELINES, "grey", grey)
    results = evaluate_dataset(dataset, weights=None, baselines="grey", trimaps="Trimap1", progress=False,
                               stream=io.StringIO())
    ex = _example(0)  # A01
    gt = np.round(ex["alpha"] * 255) / 255  # as stored in its PNG
    trimap = ex["Trimap1"]
    unknown = trimap == 0.5
    assert any(np.array_equal(t, trimap) for t in seen)  # the baseline got the normalised trimap
    row = results["variants"]["Trimap1"]["images"]["A01"]["grey"]
    assert row["sad"] == pytest.approx(np.abs(0.5 - gt)[unknown].sum() / 1000, rel=1e-6)
    assert row["mse"] == pytest.approx(np.square(0.5 - gt)[unknown].mean(), rel=1e-6)
    assert row["grad"] == pytest.approx(gradient_error(np.full_like(gt, 0.5), gt, trimap), rel=1e-6)
    assert row["conn"] == pytest.approx(connectivity_error(np.full_like(gt, 0.5), gt, trimap), rel=1e-6)
    assert np.abs(0.5 - gt).sum() / 1000 > row["sad"] + 0.1  # a frame-wide SAD would be far larger


def test_a_name_given_twice_is_scored_once(dataset: Path, monkeypatch) -> None:
    calls: list[tuple[int, ...]] = []

    def grey(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        calls.append(image.shape)
        return np.full(trimap.shape, 0.5)

    monkeypatch.setitem(baselines_module.BASELINES, "grey", grey)
    samples, _ = find_samples(dataset, names=["B02", "B02", "A01"])
    assert [s.name for s in samples] == ["B02", "A01"]
    results = evaluate_dataset(dataset, weights=None, baselines="grey", names="A01,A01", trimaps="Trimap1",
                               progress=False, stream=io.StringIO())
    # the image's call (the other is the untimed warm-up's, on a plate of its own)
    assert calls.count((SIZE, SIZE, 3)) == 1 and results["variants"]["Trimap1"]["mean"]["grey"]["images"] == 1


def test_the_means_have_every_metric_of_the_images_even_when_the_first_lacks_some(
    dataset: Path, dataset_with_fg: Path, tmp_path: Path
) -> None:
    """The mean's keys were the first image's: with fg/ for some images only, an image without it
    first (by name) left FG/BG errors out of every mean."""
    import shutil

    root = shutil.copytree(dataset_with_fg, tmp_path / "set")
    for sub in ("image", "alpha"):
        shutil.copy(dataset / sub / "A01.png", root / sub / "A01.png")  # no fg/, sorts first
    shutil.copy(dataset / "trimap" / "Trimap1" / "A01.png", root / "trimap" / "A01.png")
    results = evaluate_dataset(root, weights=None, baselines="clustering", progress=False, stream=io.StringIO())
    block = results["variants"]["trimap"]
    assert set(block["images"]["A01"]["clustering"]) == {"sad", "mse", "grad", "conn", "seconds"}
    mean = block["mean"]["clustering"]
    assert mean["images"] == 2
    assert mean["sad"] == pytest.approx((block["images"]["A01"]["clustering"]["sad"]
                                         + block["images"]["C03"]["clustering"]["sad"]) / 2)
    for key in ("fg_sad", "fg_mse", "bg_sad", "bg_mse"):  # only C03 has them: its values
        assert mean[key] == pytest.approx(block["images"]["C03"]["clustering"][key])


def test_float_mattes_and_trimaps_stored_0_to_255_read_as_8_bit_ones(dataset: Path, tmp_path: Path) -> None:
    """A float (EXR) ground truth holding 0..255 was clipped to 1 everywhere it was not 0, and a float
    trimap holding 0/128/255 became all foreground: wrong or zero scores, and no word of it."""
    import shutil

    root = shutil.copytree(dataset, tmp_path / "set")
    alpha8 = read_image(root / "alpha" / "A01.png").pixels[..., 0]
    trimap8 = read_image(root / "trimap" / "Trimap1" / "A01.png").pixels[..., 0]
    (root / "alpha" / "A01.png").unlink()
    (root / "trimap" / "Trimap1" / "A01.png").unlink()
    write_image(root / "alpha" / "A01.exr", np.round(alpha8 * 255), ["Y"])
    write_image(root / "trimap" / "Trimap1" / "A01.exr", np.round(trimap8 * 255), ["Y"])
    kw = dict(weights=None, baselines="clustering", trimaps="Trimap1", names="A01", progress=False)
    got = evaluate_dataset(root, stream=io.StringIO(), **kw)
    want = evaluate_dataset(dataset, stream=io.StringIO(), **kw)
    assert got["failures"] == []
    row, expected = got["variants"]["Trimap1"]["images"]["A01"]["clustering"], \
        want["variants"]["Trimap1"]["images"]["A01"]["clustering"]
    assert expected["sad"] > 0.01
    for key in ("sad", "mse", "grad", "conn"):
        assert row[key] == pytest.approx(expected[key], rel=1e-5)


def test_a_trimap_without_unknown_pixels_is_not_scored_as_a_perfect_matte(
    dataset: Path, tmp_path: Path, capsys
) -> None:
    """Every metric is 0 over an empty region: such an image counted as a perfect score and pulled
    the means down, silently."""
    import shutil

    root = shutil.copytree(dataset, tmp_path / "set")
    write_image(root / "trimap" / "Trimap1" / "A01.png", np.round(_example(0)["alpha"]), ["Y"])  # 0/1 only
    json_path = tmp_path / "r.json"
    code = run(_args(str(root), "--no-lbsmatte", "--baselines", "clustering", "--trimaps", "Trimap1",
                     "--json", str(json_path), "--no-progress"))
    out = capsys.readouterr().out
    assert code == 1
    assert "ERROR: Trimap1/A01: " in out and "no unknown pixel" in out
    record = json.loads(json_path.read_text())
    assert list(record["variants"]["Trimap1"]["images"]) == ["B02"]
    assert record["variants"]["Trimap1"]["mean"]["clustering"]["images"] == 1
    assert [(f["image"], f["method"]) for f in record["failures"]] == [("A01", None)]


def test_numpy_nan_and_infinity_are_written_as_null(tmp_path: Path) -> None:
    """Only Python floats were checked: a numpy float32 NaN made the whole JSON unwritable
    ("cannot write") at the end of the evaluation."""
    from core.evaluate import _write_json

    path = tmp_path / "r.json"
    _write_json(path, {"a": np.float32("nan"), "b": [np.float16("inf"), np.float32(0.5)], "c": float("nan")})
    assert json.loads(path.read_text()) == {"a": None, "b": [None, 0.5], "c": None}


def test_none_and_all_stand_alone_in_the_baselines_list() -> None:
    from core.evaluate import _baselines

    for bad in ("none,knn", "all,knn", "knn,none"):
        with pytest.raises(InputError, match="'none' and 'all' stand alone"):
            _baselines(bad)
    assert list(_baselines("none")) == [] and list(_baselines("knn,knn,lbdm")) == ["knn", "lbdm"]
    assert list(_baselines(" knn , lbdm ")) == ["knn", "lbdm"]  # spaces after the commas, as typed


def test_the_sheets_best_baseline_is_a_baseline_not_an_ablation(tmp_path: Path, monkeypatch) -> None:
    """With --ablations the sheet's fourth tile read 'best baseline: no_networks alpha': an
    ablation of LBSMatte itself, which beats the classical methods, shown as a baseline."""
    import core.contact_sheet
    from core.evaluate import LBSMATTE, NETWORKS_ALONE, NO_NETWORKS, _write_sheet

    seen: list[list[str]] = []
    monkeypatch.setattr(core.contact_sheet, "write_contact_sheet",
                        lambda path, tiles, columns: seen.append([label for label, _ in tiles]))
    h = w = 8
    grey, rgb = np.full((h, w), 0.5, np.float32), np.full((h, w, 3), 0.5, np.float32)
    layers = {"alpha": grey, "fg": rgb, "bg": rgb}
    outputs = {LBSMATTE: dict(layers), NETWORKS_ALONE: dict(layers), NO_NETWORKS: dict(layers),
               "knn": {"alpha": grey}, "closed_form": {"alpha": grey}}
    scores = {LBSMATTE: {"sad": 1.0}, NETWORKS_ALONE: {"sad": 0.5}, NO_NETWORKS: {"sad": 0.7},
              "knn": {"sad": 3.0}, "closed_form": {"sad": 2.0}}
    _write_sheet(tmp_path / "s.png", rgb, grey, grey, scores, outputs)
    assert seen[0][3] == "best baseline: closed_form alpha, SAD 2.00"
    assert seen[0][6] == "LBSMatte alpha, SAD 1.00"


def test_ablations_need_networks_to_take_apart(dataset: Path) -> None:
    # --weights none --ablations scored the priors' alpha 0.5 as "networks_alone", and no_networks
    # as a copy of the lbsmatte row
    with pytest.raises(InputError, match="--weights none has no networks"):
        evaluate_dataset(dataset, weights="none", baselines="none", device="cpu", progress=False,
                         stream=io.StringIO(), ablations=True)


def test_an_image_missing_from_image_or_from_a_trimap_variant_is_named(tmp_path: Path, caplog) -> None:
    # Ground truth and trimaps without their image, and an image without one variant's trimap,
    # were left out of the scores without a word (a variant's mean over fewer images)
    for seed, name in enumerate(["A01", "B02", "C03"]):
        ex = _example(seed)
        if name != "B02":
            write_image(tmp_path / "image" / f"{name}.png", ex["image"], ["R", "G", "B"])
        write_image(tmp_path / "alpha" / f"{name}.png", ex["alpha"], ["Y"])
        for variant in ("Trimap1", "Trimap2"):
            if (name, variant) != ("C03", "Trimap2"):
                write_image(tmp_path / "trimap" / variant / f"{name}.png", ex[variant], ["Y"])
    with caplog.at_level("WARNING", logger="core.evaluate"):
        samples, variants = find_samples(tmp_path)
    assert [s.name for s in samples] == ["A01", "C03"] and variants == ["Trimap1", "Trimap2"]
    messages = [r.getMessage() for r in caplog.records]
    assert (f"{tmp_path}: no image/B02.* for alpha/B02.png, trimap/Trimap1/B02.png, trimap/Trimap2/B02.png, "
            "not scored") in messages
    assert f"{tmp_path}: no trimap trimap/Trimap2/C03.*, C03 not scored with Trimap2" in messages
    assert len(messages) == 2
    caplog.clear()
    with caplog.at_level("WARNING", logger="core.evaluate"):
        find_samples(tmp_path, names=["A01"], trimaps=["Trimap1"])  # what was asked for is all there
    assert not caplog.records


def test_two_files_of_one_name_are_refused_naming_them(tmp_path: Path) -> None:
    # alpha/A01.exr beside its 8-bit preview alpha/A01.png: the PNG was scored without a word
    ex = _example(0)
    write_image(tmp_path / "image" / "A01.png", ex["image"], ["R", "G", "B"])
    write_image(tmp_path / "alpha" / "A01.exr", ex["alpha"], ["Y"], pixel_type="float")
    write_image(tmp_path / "alpha" / "A01.png", ex["alpha"], ["Y"])
    write_image(tmp_path / "trimap" / "A01.png", ex["Trimap1"], ["Y"])
    (tmp_path / "image" / "A01.json").write_text("{}")  # a sidecar is no image: not counted
    with pytest.raises(InputError, match=r"alpha holds two files named A01: A01\.exr and A01\.png; keep only"):
        find_samples(tmp_path)
    (tmp_path / "alpha" / "A01.png").unlink()
    samples, _ = find_samples(tmp_path)
    assert samples[0].alpha == tmp_path / "alpha" / "A01.exr" and samples[0].image.name == "A01.png"


def test_the_json_records_the_settings_the_flags_chose(dataset: Path, tmp_path: Path) -> None:
    # --layers, --layer-prior and --precision changed the scores but not the file's record of the
    # run: two runs' JSON could not be told apart
    # (--layer-prior only with the multilevel layers, which the default bundle records: with
    # --layers solve it is refused, test_layer_prior_with_the_layers_solved_per_pixel_is_refused)
    records = []
    for i, flags in enumerate(({}, {"layers": "solve", "rounds": 2, "precision": "fp32"}, {"layer_prior": 0.3})):
        evaluate_dataset(dataset, weights="none", baselines="none", device="cpu", names="A01", trimaps="Trimap1",
                         json_path=tmp_path / f"{i}.json", progress=False, stream=io.StringIO(), **flags)
        records.append(json.loads((tmp_path / f"{i}.json").read_text())["weights"])
    default, chosen, prior = records
    assert chosen["precision"] == "float32"
    assert (chosen["refinement"]["layers"], chosen["rounds"]) == ("solve", 2)
    assert chosen["refinement"]["rounds"] == 2 and default["refinement"] != chosen["refinement"]
    assert {k: v for k, v in chosen["refinement"].items() if k not in ("layers", "rounds")} == {
        k: v for k, v in default["refinement"].items() if k not in ("layers", "rounds")}
    assert default["refinement"]["layers"] == "multilevel" and prior["refinement"]["layer_prior"] == 0.3
    assert {k: v for k, v in prior["refinement"].items() if k != "layer_prior"} == {
        k: v for k, v in default["refinement"].items() if k != "layer_prior"}


def test_the_json_records_no_levels_or_knn_term_without_rounds(dataset: Path, tmp_path: Path) -> None:
    # With --rounds 0 the record listed the bundle's levels and KNN term, which no round applied.
    from core.compositing import ROUND_SETTINGS

    evaluate_dataset(dataset, weights="none", baselines="none", device="cpu", names="A01", trimaps="Trimap1",
                     rounds=0, json_path=tmp_path / "r0.json", progress=False, stream=io.StringIO())
    record = json.loads((tmp_path / "r0.json").read_text())["weights"]
    assert record["rounds"] == 0 and record["refinement"]["rounds"] == 0
    assert not set(ROUND_SETTINGS) & set(record["refinement"]) and "layers" in record["refinement"]


@pytest.mark.parametrize(("recorded", "flags", "message"), [
    ("multilevel", ["--layers", "solve"], "--layer-prior 0.3 weights the networks' colours in the multilevel layers, "
     "and --layers solve makes the layers per pixel without it: leave it out, or give --layers multilevel"),
    ("solve", [], "--layer-prior 0.3 weights the networks' colours in the multilevel layers, and layers solve, as the "
     "weights bundle 'solved' records it, makes the layers per pixel without it"),
])
def test_layer_prior_with_the_layers_solved_per_pixel_is_refused(dataset: Path, tmp_path: Path, small_bundle,
                                                                 monkeypatch, capsys, recorded, flags, message) -> None:
    # --layer-prior W was taken and did nothing: the per-pixel solve uses no prior, and the scores
    # were those without it.
    import shutil

    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")
    bundle = tmp_path / "solved"
    shutil.copytree(small_bundle.path, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["name"] = "solved"
    manifest["refinement"] = {**(manifest.get("refinement") or {}), "layers": recorded}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    parser = argparse.ArgumentParser()
    add_arguments(parser, "evaluate")
    args = parser.parse_args([str(dataset), "--weights", str(bundle), "--baselines", "none", "--no-progress",
                              "--json", str(tmp_path / "r.json"), "--layer-prior", "0.3", *flags])
    assert run(args) == 2
    out = capsys.readouterr().out
    assert message in out and "layer_prior=" not in out
    assert not (tmp_path / "r.json").exists()


def test_a_contact_sheet_that_is_a_folder_is_refused_before_any_work(dataset: Path, tmp_path: Path, monkeypatch) -> None:
    # out/Trimap1/B02.png a folder: the run stopped at B02 with an OutputError, after A01's work,
    # with no tables and no JSON
    (tmp_path / "sheets" / "Trimap1" / "B02.png").mkdir(parents=True)
    monkeypatch.setitem(baselines_module.BASELINES, "clustering",
                        lambda *a: pytest.fail("the check comes before any work"))
    with pytest.raises(InputError, match=r"its contact sheet .*B02\.png is a folder"):
        evaluate_dataset(dataset, weights=None, baselines="clustering", trimaps="Trimap1", out=tmp_path / "sheets",
                         json_path=tmp_path / "r.json", progress=False, stream=io.StringIO())
    assert not (tmp_path / "r.json").exists()


def test_the_no_lbsmatte_hint_is_for_weights_that_cannot_be_used_only(dataset: Path, tmp_path: Path, capsys) -> None:
    # Any message naming a bundle got "(use --no-lbsmatte ...)": a --json among the packaged
    # bundles with --no-lbsmatte given already, --ablations with --weights none
    import core.weights

    packaged = Path(core.weights.__file__).resolve().parent / "bundles"
    assert run(_args(str(dataset), "--no-lbsmatte", "--baselines", "clustering", "--json",
                     str(packaged / "r.json"), "--no-progress")) == 2
    assert run(_args(str(dataset), "--weights", "none", "--ablations", "--baselines", "none", "--no-progress")) == 2
    out = capsys.readouterr().out
    assert out.count("ERROR:") == 2 and "packaged bundles" in out and "--no-lbsmatte to score" not in out
    assert run(_args(str(dataset), "--weights", str(tmp_path / "no_such_bundle"), "--no-progress")) == 1
    assert "(use --no-lbsmatte to score the baselines only)" in capsys.readouterr().out


def test_the_seconds_leave_out_a_methods_first_call_costs(dataset: Path, monkeypatch) -> None:
    # pymatting's numba kernels load (or compile) and scikit-learn imports at a baseline's first
    # call: about 3 s, a minute or more uncached, all counted in the first image's seconds
    import time

    calls = []

    def slow_at_first(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        if not calls:
            time.sleep(1.0)
        calls.append(image.shape)
        return np.clip(trimap, 0.0, 1.0).astype(np.float32)

    monkeypatch.setitem(baselines_module.BASELINES, "clustering", slow_at_first)
    results = evaluate_dataset(dataset, weights=None, baselines="clustering", names="A01", trimaps="Trimap1",
                               progress=False, stream=io.StringIO())
    assert len(calls) == 2 and calls[1] == (SIZE, SIZE, 3)  # an untimed first call, then the image's
    assert results["variants"]["Trimap1"]["images"]["A01"]["clustering"]["seconds"] < 0.5


def test_a_contact_sheet_that_cannot_be_written_is_a_failure_of_its_image_only(dataset: Path, tmp_path: Path,
                                                                                monkeypatch) -> None:
    # An OutputError writing one sheet (a full disk) ended the run: no tables, no JSON, every
    # image's scores lost
    import core.contact_sheet
    from core.errors import OutputError

    real = core.contact_sheet.write_contact_sheet

    def full_at_a01(path, *args, **kwargs):
        if Path(path).stem == "A01":
            raise OutputError(f"cannot write {path}: No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(core.contact_sheet, "write_contact_sheet", full_at_a01)
    results = evaluate_dataset(dataset, weights=None, baselines="clustering", trimaps="Trimap1", out=tmp_path / "s",
                               json_path=tmp_path / "r.json", progress=False, stream=io.StringIO())
    assert set(results["variants"]["Trimap1"]["images"]) == {"A01", "B02"}
    assert results["failures"] == [{"variant": "Trimap1", "image": "A01", "method": "contact sheet",
                                    "error": f"cannot write {tmp_path / 's' / 'Trimap1' / 'A01.png'}: No space left on device"}]
    assert (tmp_path / "s" / "Trimap1" / "B02.png").is_file() and (tmp_path / "r.json").is_file()


def test_the_last_line_says_how_many_contact_sheets_a_full_disk_refused(dataset: Path, tmp_path: Path, monkeypatch,
                                                                        capsys) -> None:
    # Every sheet refused by a full disk, and the run still ended "contact sheets in OUT", as if
    # they were all there.
    import core.contact_sheet
    from core.errors import OutputError

    def full(path, *args, **kwargs):
        raise OutputError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr(core.contact_sheet, "write_contact_sheet", full)
    sheets = tmp_path / "s"
    assert run(_args(str(dataset), "--no-lbsmatte", "--baselines", "clustering", "--trimaps", "Trimap1", "--out",
                     str(sheets), "--no-progress")) == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"ERROR: Trimap1/B02 contact sheet: cannot write {sheets / 'Trimap1' / 'B02.png'}: No space left on device" \
        in lines
    assert lines[-1] == f"contact sheets in {sheets} (2 not written: see the ERROR lines above)"
    monkeypatch.undo()
    assert run(_args(str(dataset), "--no-lbsmatte", "--baselines", "clustering", "--trimaps", "Trimap1", "--out",
                     str(sheets), "--no-progress")) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"contact sheets in {sheets}"


def test_layers_of_a_linear_set_are_scored_in_the_srgb_encoding(tmp_path: Path) -> None:
    # As README's Evaluation and the JSON's units say: an EXR set's plate, F and B (scene-linear)
    # are sRGB-encoded and clipped to [0, 1] before the α- and (1 − α)-weighted errors.
    from core.colour import to_display, to_linear

    ex = _example(5)
    f_lin, b_lin = to_linear(ex["fg"], "srgb"), to_linear(ex["bg"], "srgb")
    f_lin[:, : SIZE // 2] *= 3.0  # highlights above 1 on the left: clipped once encoded
    a = ex["alpha"][..., None]
    plate = a * f_lin + (1 - a) * b_lin
    for folder, layer in (("image", plate), ("fg", f_lin), ("bg", b_lin)):
        write_image(tmp_path / folder / "L01.exr", layer.astype(np.float32), ["R", "G", "B"], pixel_type="float")
    write_image(tmp_path / "alpha" / "L01.exr", ex["alpha"].astype(np.float32), ["Y"], pixel_type="float")
    write_image(tmp_path / "trimap" / "L01.exr", ex["Trimap1"].astype(np.float32), ["Y"], pixel_type="float")
    results = evaluate_dataset(tmp_path, weights=None, baselines="clustering", progress=False, stream=io.StringIO())
    got = results["variants"]["trimap"]["images"]["L01"]["plate"]

    unknown = ex["Trimap1"] == 0.5
    w = ex["alpha"][unknown][:, None]

    def encoded(x: np.ndarray) -> np.ndarray:
        return np.clip(to_display(x.astype(np.float32), "linear"), 0, 1)[unknown]

    fg_err, bg_err = np.abs(encoded(plate) - encoded(f_lin)), np.abs(encoded(plate) - encoded(b_lin))
    assert got["fg_sad"] == pytest.approx((w * fg_err).sum() / 1000, rel=1e-4)
    assert got["bg_sad"] == pytest.approx(((1 - w) * bg_err).sum() / 1000, rel=1e-4)
    linear_fg_sad = (w * np.abs(plate[unknown] - f_lin[unknown])).sum() / 1000
    assert abs(got["fg_sad"] - linear_fg_sad) > 0.05 * linear_fg_sad  # not the linear-light error


def test_a_ground_truth_foreground_with_straight_alpha_is_scored_against_its_stored_colour(tmp_path: Path) -> None:
    # fg/NAME.png as a cut-out saved with its alpha (RGBA, PNG: straight colour). It was read
    # premultiplied by that alpha (OpenImageIO's default): the ground truth was F·α, darker in the
    # band, and every method's FG error was measured against it (the plate's too).
    from core.metrics import foreground_error

    ex = _example(6)
    write_image(tmp_path / "image" / "S01.png", ex["image"], ["R", "G", "B"])
    write_image(tmp_path / "alpha" / "S01.png", ex["alpha"], ["Y"])
    write_image(tmp_path / "trimap" / "S01.png", ex["Trimap1"], ["Y"])
    write_image(tmp_path / "fg" / "S01.png", np.dstack([ex["fg"], ex["alpha"]]), ["R", "G", "B", "A"],
                unassociated_alpha=True)
    results = evaluate_dataset(tmp_path, weights=None, baselines="clustering", progress=False, stream=io.StringIO())
    got = results["variants"]["trimap"]["images"]["S01"]["plate"]
    stored = np.round(ex["fg"] * 255) / 255  # the 8-bit colour, whatever the alpha
    plate = read_image(tmp_path / "image" / "S01.png").rgb()
    alpha = read_image(tmp_path / "alpha" / "S01.png").pixels[..., 0]
    want = foreground_error(plate, stored.astype(np.float32), alpha, ex["Trimap1"].astype(np.float32))
    assert got["fg_sad"] == pytest.approx(want["fg_sad"], rel=1e-4)
    assert got["fg_mse"] == pytest.approx(want["fg_mse"], rel=1e-4)


def test_a_warning_on_stderr_carries_the_warning_prefix(tmp_path: Path) -> None:
    # As every command prints its warnings: logging's last-resort handler wrote the bare message.
    import os
    import subprocess
    import sys

    ex = _example(0)
    for name in ("A01", "B02"):
        write_image(tmp_path / "image" / f"{name}.png", ex["image"], ["R", "G", "B"])
        write_image(tmp_path / "trimap" / f"{name}.png", ex["Trimap1"], ["Y"])
    write_image(tmp_path / "alpha" / "A01.png", ex["alpha"], ["Y"])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "core.cli", "evaluate", str(tmp_path), "--no-lbsmatte", "--baselines",
                           "knn", "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"WARNING: {tmp_path}: no ground-truth alpha/B02.*, not scored" in done.stderr.splitlines()


def test_a_linear_data_sets_sheet_composites_the_matte_in_linear_light(tmp_path: Path, monkeypatch) -> None:
    """The sheet's 'over a new background' tile of a scene-linear (EXR) plate was α·F + (1 − α)·B
    of the sRGB-encoded layers, where the matte's F and B recomposite the plate in linear light and
    Nuke's Merge over composites them there: a bright edge showed darker than it comps. It is made
    in the plate's encoding (linear light here), then encoded for the sheet."""
    import core.contact_sheet
    from core.colour import from_display, to_display
    from core.contact_sheet import checker_background

    ex = _example(5)
    for folder, layer in (("image", ex["image"]), ("fg", ex["fg"])):
        write_image(tmp_path / "set" / folder / "L01.exr", layer.astype(np.float32), ["R", "G", "B"], pixel_type="float")
    write_image(tmp_path / "set" / "alpha" / "L01.exr", ex["alpha"].astype(np.float32), ["Y"], pixel_type="float")
    write_image(tmp_path / "set" / "trimap" / "L01.exr", ex["Trimap1"].astype(np.float32), ["Y"], pixel_type="float")
    seen: list[dict[str, np.ndarray]] = []
    monkeypatch.setattr(core.contact_sheet, "write_contact_sheet",
                        lambda path, tiles, columns: seen.append({label.split(",")[0]: t for label, t in tiles}))
    evaluate_dataset(tmp_path / "set", weights="none", baselines="none", device="cpu", out=tmp_path / "sheets",
                     progress=False, stream=io.StringIO())
    tiles = seen[0]
    alpha = tiles["LBSMatte alpha"][..., None]
    fg = from_display(tiles["LBSMatte foreground"], "linear")  # F <= 0.9: the display tile is not clipped
    assert fg.max() < 1.0
    band = (alpha[..., 0] > 0.2) & (alpha[..., 0] < 0.8)
    assert band.sum() > 20
    checker = checker_background(*alpha.shape[:2])
    linear = to_display(alpha * fg + (1 - alpha) * from_display(checker, "linear"), "linear")
    np.testing.assert_allclose(tiles["LBSMatte over a new background"], linear, atol=1e-5)
    encoded = alpha * tiles["LBSMatte foreground"] + (1 - alpha) * checker  # the composite it was
    assert np.abs(tiles["LBSMatte over a new background"] - encoded)[band].max() > 0.02


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_is_drawn_on_a_terminal_only(dataset: Path, monkeypatch, capsys) -> None:
    # Run on a farm (stderr a log file), the bar wrote a carriage-return line per image into the
    # log; as matte's, it is for people at a terminal, where --no-progress still turns it off.
    args = (str(dataset), "--no-lbsmatte", "--baselines", "clustering", "--names", "A01", "--trimaps", "Trimap1")
    assert run(_args(*args)) == 0
    assert capsys.readouterr().err == ""  # stderr not a terminal (captured, as a log file)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert run(_args(*args)) == 0
    assert "\revaluate: 100%" in terminal.getvalue()
    terminal.seek(0)
    terminal.truncate()
    assert run(_args(*args, "--no-progress")) == 0
    assert terminal.getvalue() == ""


def test_the_json_says_which_networks_and_which_lbsmatte_scored(dataset: Path, small_bundle, tmp_path: Path,
                                                              monkeypatch) -> None:
    # A show compares its fine-tune's file with one written weeks before: the record gave the
    # bundle's name and folder only, and abc_v1 fine-tuned again under that name read the same.
    from core import __version__
    from core.weights import load_bundle, save_bundle
    from tests.conftest import build_small_networks

    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")  # small_bundle is untrained on purpose
    again = save_bundle(tmp_path / "again", build_small_networks(seed=1), name="small-test",
                        description="the same name, other networks", parent=load_bundle(str(small_bundle.path)),
                        trained=False)
    records = []
    for i, weights in enumerate((str(small_bundle.path), str(again.path))):
        evaluate_dataset(dataset, weights=weights, baselines="none", device="cpu", names="A01", trimaps="Trimap1",
                         json_path=tmp_path / f"{i}.json", progress=False, stream=io.StringIO(), rounds=0)
        records.append(json.loads((tmp_path / f"{i}.json").read_text()))
    first, second = records
    assert first["lbsmatte_version"] == second["lbsmatte_version"] == __version__
    assert first["weights"]["name"] == second["weights"]["name"] == "small-test"
    assert first["weights"]["manifest_sha256"] == small_bundle.manifest_sha256()
    assert second["weights"]["manifest_sha256"] == again.manifest_sha256() != small_bundle.manifest_sha256()
    assert first["weights"]["parent"] is None
    assert second["weights"]["parent"] == {"name": "small-test", "sha256": small_bundle.manifest_sha256()}


def test_a_fine_tunes_data_set_without_trimaps_or_mattes_is_told_what_it_lacks(tmp_path: Path, caplog,
                                                                             capsys) -> None:
    # A show's fine-tune data (image/ and alpha/, the trimaps drawn from the mattes) was refused
    # with "no trimaps" only; without alpha/ each image was warned of alone, then "no image has
    # both a ground-truth alpha and a trimap"; the data set's image/ folder given for the set
    # looked for image/image/.
    ex = _example(0)
    for frame in (1001, 1002):
        write_image(tmp_path / "image" / f"sh010.{frame}.exr", ex["image"], ["R", "G", "B"], pixel_type="float")
        write_image(tmp_path / "alpha" / f"sh010.{frame}.exr", ex["alpha"], ["Y"], pixel_type="float")
    with pytest.raises(InputError) as caught:
        find_samples(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path}: no trimaps in {tmp_path / 'trimap'} (expected trimap/NAME.png or trimap/<variant>/NAME.png): "
        "the metrics are over a trimap's unknown region; give each image the trimap it is to be matted with, or "
        "--trimaps-from-alpha PX to make them from the mattes as the matting benchmarks do; "
        f"{tmp_path} holds the folders alpha/, image/")
    assert run(_args(str(tmp_path), "--baselines", "none", "--no-progress")) == 2
    assert "--trimaps-from-alpha PX" in capsys.readouterr().out
    for frame in (1001, 1002):
        write_image(tmp_path / "trimap" / f"sh010.{frame}.png", ex["Trimap1"], ["Y"])
        (tmp_path / "alpha" / f"sh010.{frame}.exr").unlink()
    with caplog.at_level("WARNING", logger="core.evaluate"), pytest.raises(InputError) as caught:
        find_samples(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path}: no ground-truth mattes in {tmp_path / 'alpha'} (expected "
                                        "alpha/NAME.png, each named as its image;")
    assert str(caught.value).endswith(f"; {tmp_path} holds the folders alpha/, image/, trimap/")
    assert not caplog.records  # said once, not a warning per frame
    with pytest.raises(InputError, match=rf"holds no folder: give {tmp_path}, the folder holding image/$"):
        find_samples(tmp_path / "image")


def test_a_link_onto_a_share_not_mounted_is_refused_naming_it(tmp_path: Path, caplog) -> None:
    # A data set of links onto the show's share, run where it is not mounted: a plate's dangling
    # link was passed over and its frame warned of as having "no image" (a matte's: "no
    # ground-truth alpha"), and the evaluation went on over the frames that were left.
    for seed, name in enumerate(["sh010.1001", "sh010.1002"]):
        ex = _example(seed)
        write_image(tmp_path / "image" / f"{name}.png", ex["image"], ["R", "G", "B"])
        write_image(tmp_path / "trimap" / f"{name}.png", ex["Trimap1"], ["Y"])
        write_image(tmp_path / "alpha" / f"{name}.png", ex["alpha"], ["Y"])
    for folder in ("image", "alpha"):
        link = tmp_path / folder / "sh010.1002.png"
        link.unlink()
        link.symlink_to("/mnt/unmounted_share/sh010.1002.png")
        with caplog.at_level("WARNING", logger="core.evaluate"), pytest.raises(InputError) as caught:
            find_samples(tmp_path)
        assert str(caught.value) == (f"{link} is a link to /mnt/unmounted_share/sh010.1002.png, which cannot be "
                                     "reached (a share not mounted here, a file moved or removed): mount it or fix "
                                     "the link, or take the link out of the data set")
        assert not caplog.records
        link.unlink()
        write_image(link, _example(1)["image" if folder == "image" else "alpha"], ["R", "G", "B"] if folder == "image"
                    else ["Y"])
    (tmp_path / "image" / "notes.txt").symlink_to("/mnt/unmounted_share/notes.txt")  # no image: passed over
    assert [s.name for s in find_samples(tmp_path)[0]] == ["sh010.1001", "sh010.1002"]


def test_the_printed_tables_say_which_weights_scored_and_what_the_numbers_are(dataset_with_fg: Path) -> None:
    # --weights abc_v1's table and --weights default's read alike (every row "lbsmatte"), and no
    # column said SAD was divided by 1000 or that the layers' errors are of sRGB-encoded colours.
    results = {"weights": {"name": "abc_v1", "path": "/shows/abc/lbsmatte_weights/abc_v1",
                           "manifest_sha256": "0123456789abcdef" * 4, "rounds": 3, "precision": "float32"},
               "methods": ["lbsmatte"], "metrics": ["sad", "mse", "grad", "conn", "fg_sad", "fg_mse"],
               "variants": {}, "failures": []}
    from core.evaluate import format_tables

    assert format_tables(results).splitlines() == [
        "lbsmatte: weights bundle 'abc_v1' (/shows/abc/lbsmatte_weights/abc_v1, manifest sha256 0123456789ab), "
        "3 refinement round(s), float32",
        "",
        "SAD, Grad, Conn, FG SAD: sums over the unknown region / 1000; MSE, FG MSE: means there; alpha in 0..1 "
        "whatever the plates' encoding, FG colours in the sRGB encoding; s/image: seconds"]
    table = io.StringIO()
    evaluate_dataset(dataset_with_fg, weights=None, baselines="clustering", progress=False, stream=table)
    lines = table.getvalue().splitlines()
    assert not lines[0].startswith("lbsmatte") and lines[0].startswith("SAD, Grad, Conn, FG SAD, BG SAD: ")
    assert "FG/BG colours in the sRGB encoding" in lines[0]


def test_the_table_lines_up_image_names_of_wide_characters() -> None:
    # An image named in CJK characters (two terminal columns each) was padded by len(): its row's
    # numbers stood two columns right of the others per character.
    from core.evaluate import format_table, text_width

    assert [text_width(t) for t in ("GT04", "日本_01", "ｶﾒﾗ", "e\u0301")] == [4, 7, 3, 1]
    lines = format_table(["image", "SAD"], [["GT04", "1.000"], ["日本_01", "22.500"], ["mean", "11.750"]]).splitlines()
    assert lines == ["image       SAD", "-------  ------", "GT04      1.000", "日本_01  22.500", "mean     11.750"]
    assert len({text_width(line) for line in lines}) == 1


@pytest.fixture(scope="module")
def show_mattes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A show's frames with their finished mattes and no trimap/ folder."""
    root = tmp_path_factory.mktemp("show")
    for seed, name in enumerate(["sh010", "sh020", "sh030"]):
        ex = _example(seed)
        write_image(root / "image" / f"{name}.png", ex["image"], ["R", "G", "B"])
        write_image(root / "alpha" / f"{name}.png", ex["alpha"], ["Y"])
    return root


def test_trimaps_made_from_the_mattes_score_a_show_without_trimaps(show_mattes: Path, tmp_path: Path,
                                                                   capsys) -> None:
    from core.trimap import ALPHA_NOISE, trimap_from_alpha

    json_path = tmp_path / "made.json"
    code = run(_args(str(show_mattes), "--no-lbsmatte", "--baselines", "clustering", "--json", str(json_path),
                     "--trimaps-from-alpha", "4,1-19", "--trimap-seed", "7", "--out", str(tmp_path / "sheets"),
                     "--no-progress"))
    out = capsys.readouterr().out
    assert code == 0, out
    saved = json.loads(json_path.read_text())
    assert list(saved["variants"]) == ["from_alpha_4px", "from_alpha_1-19px_seed7"]
    fixed, drawn = saved["variants"]["from_alpha_4px"], saved["variants"]["from_alpha_1-19px_seed7"]
    assert fixed["trimap"]["made_from"] == "alpha" and fixed["trimap"]["dilate_px"] == 4
    assert fixed["trimap"]["alpha_tolerance"] == ALPHA_NOISE
    assert fixed["trimap"]["dilate_px_per_image"] == {"sh010": 4, "sh020": 4, "sh030": 4}
    assert drawn["trimap"]["dilate_px"] == [1, 19] and drawn["trimap"]["seed"] == 7
    per_image = drawn["trimap"]["dilate_px_per_image"]
    assert all(1 <= k <= 19 for k in per_image.values()) and len(set(per_image.values())) > 1
    assert set(fixed["images"]) == set(drawn["images"]) == {"sh010", "sh020", "sh030"}
    # The table says how its trimaps were made.
    assert "== from_alpha_4px: 3 images" in out and "trimaps made from the ground-truth alpha" in out
    assert "dilated 1-19 px, drawn per image with seed 7" in out
    # The scores are those over the trimap trimap_from_alpha makes: the same as with it given as a file.
    given = tmp_path / "given"
    for sub in ("image", "alpha"):
        (given / sub).mkdir(parents=True)
        for f in (show_mattes / sub).iterdir():
            (given / sub / f.name).write_bytes(f.read_bytes())
    alpha = read_image(show_mattes / "alpha" / "sh020.png").pixels[..., 0]
    write_image(given / "trimap" / "sh020.png", trimap_from_alpha(alpha, 4), ["Y"])
    as_file = evaluate_dataset(given, weights=None, baselines="clustering", names="sh020", progress=False,
                               stream=io.StringIO())
    assert as_file["variants"]["trimap"]["images"]["sh020"]["clustering"]["sad"] == pytest.approx(
        fixed["images"]["sh020"]["clustering"]["sad"])
    assert as_file["variants"]["trimap"]["trimap"] == {"made_from": "files"}


def test_trimaps_drawn_per_image_do_not_depend_on_what_else_is_scored() -> None:
    from core.evaluate import parse_trimaps_from_alpha

    (made,) = parse_trimaps_from_alpha("1-19", seed=3)
    (again,) = parse_trimaps_from_alpha(["1-19"], seed=3)
    assert [made.dilation(n) for n in ("a", "b", "c")] == [again.dilation(n) for n in ("a", "b", "c")]
    assert parse_trimaps_from_alpha("10, 5,10") == parse_trimaps_from_alpha("10,5")  # each variant once
    for bad, said in (("ten", "'ten'"), ("-3", "'-3'"), ("2.5", "'2.5'"), ("19-1", "19-1"), ("", "names no")):
        with pytest.raises(InputError, match=f"--trimaps-from-alpha.*{said}|{said}.*--trimaps-from-alpha"):
            parse_trimaps_from_alpha(bad)


def test_a_drawn_dilation_follows_the_names_bytes_whatever_the_locale() -> None:
    from core.evaluate import parse_trimaps_from_alpha

    (made,) = parse_trimaps_from_alpha("1-19", seed=0)
    # 'café.png' as Python names it under a farm's LANG=C with UTF-8 mode off: its bytes as lone
    # surrogates. Drawing from the name's UTF-8 raised UnicodeEncodeError (an internal error).
    under_c = "café".encode().decode("ascii", "surrogateescape")
    assert made.dilation(under_c) == made.dilation("café")
    assert [made.dilation(n) for n in ("GT04", "sh010")] == [4, 16]  # what ASCII names drew before


def test_a_negative_trimap_seed_is_refused_naming_it(show_mattes: Path, capsys) -> None:
    # numpy's generators take no negative seed: the run ended in a traceback ("internal error").
    code = run(_args(str(show_mattes), "--no-lbsmatte", "--baselines", "clustering", "--trimaps-from-alpha", "1-19",
                     "--trimap-seed", "-1", "--no-progress"))
    out = capsys.readouterr().out
    assert code == 2 and "ERROR: --trimap-seed takes a whole number >= 0, not -1" in out, out
    from core.evaluate import parse_trimaps_from_alpha

    for bad in (-1, 1.5, True, "x", float("nan")):
        with pytest.raises(InputError, match="--trimap-seed takes a whole number >= 0"):
            parse_trimaps_from_alpha("1-19", seed=bad)
    for same in (np.int64(2), 2.0, "2"):
        assert parse_trimaps_from_alpha("1-19", seed=same) == parse_trimaps_from_alpha("1-19", seed=2)


def test_trimaps_from_alpha_is_refused_with_trimap_files_chosen(dataset: Path, show_mattes: Path, capsys) -> None:
    code = run(_args(str(dataset), "--no-lbsmatte", "--baselines", "clustering", "--trimaps", "Trimap1",
                     "--trimaps-from-alpha", "10", "--no-progress"))
    out = capsys.readouterr().out
    assert code == 2 and "ERROR:" in out and "--trimaps Trimap1" in out and "give one or the other" in out
    # A data set with trimap files: made ones replace them (its own are not read).
    samples, variants = find_samples(dataset, made=[MadeTrimaps(3, 3)])
    assert variants == ["from_alpha_3px"] and all(s.trimaps == {"from_alpha_3px": s.alpha} for s in samples)
    # Without the option, a data set without trimaps is told of it.
    assert run(_args(str(show_mattes), "--no-lbsmatte", "--baselines", "clustering", "--no-progress")) == 2
    assert "--trimaps-from-alpha PX" in capsys.readouterr().out
    # A seed with nothing to draw would change nothing: refused, not ignored.
    for made in (("--trimaps-from-alpha", "10,20"), ()):
        code = run(_args(str(show_mattes), "--no-lbsmatte", "--baselines", "clustering", *made, "--trimap-seed", "5",
                         "--no-progress"))
        out = capsys.readouterr().out
        assert code == 2 and "ERROR: --trimap-seed 5: only a --trimaps-from-alpha range (MIN-MAX" in out


def test_a_matte_with_no_edge_is_not_a_perfect_score_with_made_trimaps(tmp_path: Path, capsys) -> None:
    ex = _example(0)
    write_image(tmp_path / "image" / "X.png", ex["image"], ["R", "G", "B"])
    write_image(tmp_path / "alpha" / "X.png", np.full((SIZE, SIZE), 3 / 255, np.float32), ["Y"])  # haze only
    write_image(tmp_path / "image" / "Y.png", ex["image"], ["R", "G", "B"])
    write_image(tmp_path / "alpha" / "Y.png", ex["alpha"], ["Y"])
    code = run(_args(str(tmp_path), "--no-lbsmatte", "--baselines", "clustering", "--trimaps-from-alpha", "5",
                     "--no-progress"))
    out = capsys.readouterr().out
    assert code == 1 and "X.png: the matte has no soft pixel and no edge" in out and "nothing to score" in out
    assert "== from_alpha_5px: 1 image " in out


def test_the_tables_align_their_columns_and_show_each_metric_at_its_precision() -> None:
    # Names left, numbers right, a rule under each header as wide as its column; MSEs to 5
    # decimals, seconds to 2, a missing or NaN metric as "-", the per-image SAD then its mean.
    from core.evaluate import format_tables

    results = {
        "methods": ["lbsmatte", "closed_form"], "metrics": ["sad", "mse", "grad", "conn", "fg_sad", "fg_mse"],
        "failures": [{"image": "GT02"}],
        "variants": {"Trimap1": {
            "images": {"GT01": {"lbsmatte": {"sad": 1.23456, "grad": 9.0}, "closed_form": {"sad": 12.5}}},
            "mean": {"lbsmatte": {"sad": 1.23456, "mse": 0.000123456, "grad": float("nan"), "conn": 2.0, "fg_sad": 3.0,
                                  "fg_mse": 0.0012345, "seconds": 1.234, "images": 1},
                     "closed_form": {"sad": 12.5, "mse": 0.01, "grad": 4.0, "conn": 5.0, "seconds": 10.0,
                                     "images": 1.0}}}},
    }
    assert format_tables(results).split("\n\n", 1)[1] == (
        "== Trimap1: 1 image (metrics over the trimap's unknown region) ==\n"
        "mean over images     SAD      MSE   Grad   Conn  FG SAD   FG MSE  s/image  images\n"
        "----------------  ------  -------  -----  -----  ------  -------  -------  ------\n"
        "lbsmatte           1.235  0.00012      -  2.000   3.000  0.00123     1.23       1\n"
        "closed_form       12.500  0.01000  4.000  5.000       -        -    10.00       1\n"
        "\n"
        "SAD per image  lbsmatte  closed_form\n"
        "-------------  --------  -----------\n"
        "GT01              1.235       12.500\n"
        "mean              1.235       12.500\n"
        "\n"
        "1 failure(s): see the ERROR lines above")
    results["variants"]["Trimap1"]["images"]["GT04"] = {}
    assert "== Trimap1: 2 images (metrics" in format_tables(results)
    results["weights"] = {"name": "none"}
    assert format_tables(results).startswith("lbsmatte: --weights none, NO NETWORKS (pull-push fill")
