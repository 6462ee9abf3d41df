"""tools/cross_validate.py: folds by object, the choice of refinement settings, the report."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import cross_validate as cv  # noqa: E402

from core.errors import InputError  # noqa: E402

NAMES = [f"GT{i:02d}" for i in (1, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22, 24, 25, 27)]


def test_folds_split_the_objects_once_each() -> None:
    parts = cv.folds(NAMES, 3)
    assert [len(p) for p in parts] == [6, 6, 6]
    assert sorted(sum(parts, [])) == NAMES
    assert parts[0] == ["GT01", "GT06", "GT10", "GT15", "GT19", "GT24"]
    with pytest.raises(InputError, match="--folds"):
        cv.folds(NAMES, 1)


def test_the_choice_minimises_mean_sad_plus_gradient_error() -> None:
    a, b = json.dumps({"rounds": 1, "smoothing": 0.01, "confidence_scale": 0.1}), json.dumps({"rounds": 3, "smoothing": 0.003, "confidence_scale": 0.1})
    table = {a: {"sad": [4.0, 6.0], "grad": [1.0, 1.0]}, b: {"sad": [5.0, 5.0], "grad": [0.5, 0.5]}}
    choice = cv.choose(table)
    assert (choice["rounds"], choice["smoothing"]) == (3, 0.003) and choice["sad"] == 5.0 and choice["grad"] == 0.5


def test_the_report_scores_every_object_with_the_fold_that_held_it_out(tmp_path: Path) -> None:
    names = NAMES[:6]
    for i, fold in enumerate(cv.folds(names, 3)):
        folder = tmp_path / f"fold{i}"
        (folder / "bundle").mkdir(parents=True)
        (folder / "bundle" / "manifest.json").write_text(json.dumps({"refinement": {"rounds": 3, "smoothing": 0.003, "confidence_scale": 0.1,
                                                                               "tolerance": 0.0001}}))
        images = {}
        for n in fold:
            k = names.index(n)
            images[n] = {m: {"sad": float(k + j), "mse": 0.01, "grad": 2.0 * (k + j), "conn": 1.0}
                         for j, m in enumerate(cv.METHODS)}
        (folder / "evaluation.json").write_text(json.dumps({"variants": {v: {"images": images} for v in cv.VARIANTS}}))
        layers = {f"{n}_bg1": {"lbsmatte": {"sad": 1.0, "fg_sad": 2.0 + i, "bg_sad": 3.0}, "plate": {"fg_sad": 4.0, "bg_sad": 4.0}}
                  for n in fold}
        (folder / "composites.json").write_text(json.dumps({"variants": {"Trimap1": {"images": layers}}}))
    means = cv.report(tmp_path, 3, names)
    # objects 0..5, method j: SAD k + j, mean over k = 2.5 + j
    assert means["Trimap1"]["lbsmatte"]["sad"] == pytest.approx(2.5) and means["Trimap2"]["knn"]["sad"] == pytest.approx(6.5)
    assert means["Trimap1"]["lbsmatte"]["images"] == 6
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ratios"]["sad"]["vs_best_classical"] == pytest.approx(2.5 / 5.5)
    assert report["ratios"]["grad"]["vs_no_networks"] == pytest.approx(5.0 / 9.0)
    assert "fold0: GT01, GT06" in (tmp_path / "report.md").read_text()
    assert report["refinement"]["fold1"]["tolerance"] == 0.0001
    layers = report["composites"]["Trimap1"]
    assert layers["lbsmatte"]["fg_sad"] == pytest.approx(3.0) and layers["plate"]["bg_sad"] == 4.0
    assert layers["lbsmatte"]["images"] == 6 and "sad" not in layers["plate"]
    assert "| Trimap1 | plate | — | 4.00 | 4.00 | 6 |" in (tmp_path / "report.md").read_text()


def test_an_unevaluated_fold_is_named(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="fold 0"):
        cv.report(tmp_path, 3, NAMES)


def test_each_fold_is_given_the_choice_of_the_other_folds_held_out_objects() -> None:
    a, b = json.dumps({"rounds": 1}), json.dumps({"rounds": 3})
    fold0 = {a: {"sad": [2.0, 4.0], "grad": [1.0, 1.0]}, b: {"sad": [1.0, 1.0], "grad": [1.0, 1.0]}}
    fold1 = {a: {"sad": [6.0], "grad": [3.0]}, b: {"sad": [13.0], "grad": [3.0]}}
    fold2 = {a: {"sad": [1.0], "grad": [1.0]}, b: {"sad": [2.0], "grad": [1.0]}}
    pooled = cv.pool([fold0, fold1])
    assert pooled[a]["sad"] == [2.0, 4.0, 6.0] and pooled[b]["grad"] == [1.0, 1.0, 3.0]
    chosen = cv.nested_choices([fold0, fold1, fold2])
    # fold 0 on folds 1 and 2: a (6 + 1) / 2 = 3.5 + 2 against b 7.5 + 2; fold 1 on folds 0 and 2:
    # a 7/3 + 1 against b 4/3 + 1; fold 2 on folds 0 and 1: a 4 + 5/3 against b 5 + 5/3
    assert [c["rounds"] for c in chosen] == [1, 3, 1]
    assert chosen[0]["sad"] == pytest.approx(3.5) and chosen[1]["sad"] == pytest.approx(4 / 3)
    # a setting that one table lacks is not pooled
    assert list(cv.pool([fold0, {a: fold1[a]}])) == [a]


def test_the_choice_is_recorded_and_a_changed_one_says_so(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({"name": "fold"}))
    choice = {"rounds": 3, "smoothing": 0.0003, "confidence_scale": 0.1, "tolerance": 0.0001, "knn": 0.01,
              "network_weight": 0.0, "knn_neighbours": 10, "knn_position": 1.0, "sad": 2.5, "grad": 2.0}
    assert cv.write_choice(bundle, choice, ["GT03", "GT04"])
    recorded = json.loads((bundle / "manifest.json").read_text())["refinement"]
    assert (recorded["knn"], recorded["network_weight"]) == (0.01, 0.0)
    assert (recorded["knn_neighbours"], recorded["knn_position"]) == (10, 1.0)
    assert type(recorded["knn_neighbours"]) is int
    key = cv.layer_key({"layers": "multilevel", "layer_prior": 0.03, "layer_space": "display", "agree_ratio": 0.3})
    assert key in [cv.layer_key(e) for e in cv.LAYER_GRID]
    assert cv.write_layers(bundle, key, ["GT03_bg1"], [{key: {"fg_sad": 1.0}}])
    refinement = json.loads((bundle / "manifest.json").read_text())["refinement"]
    assert (refinement["tolerance"], refinement["layers"], refinement["layer_prior"]) == (0.0001, "multilevel", 0.03)
    assert (refinement["layer_space"], refinement["agree_ratio"]) == ("display", 0.3)
    assert refinement["chosen_on"]["objects"] == ["GT03", "GT04"] and refinement["chosen_on"]["sad"] == 2.5
    # the same choice again keeps the layers chosen for it; another alpha setting drops them
    assert not cv.write_choice(bundle, choice, ["GT03", "GT04"])
    assert not cv.write_layers(bundle, key, ["GT03_bg1"], [])
    assert json.loads((bundle / "manifest.json").read_text())["refinement"]["layer_space"] == "display"
    solve = cv.layer_key({"layers": "solve", "layer_prior": None, "layer_space": "solve", "agree_ratio": 0.3})
    assert cv.write_layers(bundle, solve, ["GT03_bg1"], [])  # another space: changed; the unused prior stays
    refinement = json.loads((bundle / "manifest.json").read_text())["refinement"]
    assert (refinement["layers"], refinement["layer_prior"], refinement["layer_space"]) == ("solve", 0.03, "solve")
    assert cv.write_choice(bundle, choice | {"tolerance": 0.001}, ["GT03", "GT04"])
    refinement = json.loads((bundle / "manifest.json").read_text())["refinement"]
    assert not set(cv.LAYER_KEYS) & set(refinement) and "layers" not in refinement["chosen_on"]
    # a manifest from before the neighbour sets were chosen refines with pymatting's: the same choice
    manifest = json.loads((bundle / "manifest.json").read_text())
    for key in ("knn_neighbours", "knn_position"):
        del manifest["refinement"][key]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert not cv.write_choice(bundle, choice | {"tolerance": 0.001, "knn_neighbours": 20, "knn_position": 2.0},
                               ["GT03", "GT04"])


def test_a_fold_bundle_trained_on_the_shared_data_says_its_terms(tmp_path: Path) -> None:
    """``lbsmatte train`` cannot know its data's terms; the tool that trained a fold on the shared
    data set writes them when it records the fold's choice, and never over terms already there."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    manifest = {"name": "fold", "training": {"data": {"objects": ["GT01", "GT02"]}}}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    choice = {"rounds": 3, "sad": 2.5, "grad": 2.0}
    cv.write_choice(bundle, choice, ["GT01", "GT02"])
    terms = json.loads((bundle / "manifest.json").read_text())["training_data_terms"]
    assert terms["summary"].startswith("NOT CLEARED FOR COMMERCIAL USE") and "2 objects" in terms["summary"]
    (bundle / "manifest.json").write_text(json.dumps(manifest | {"training_data_terms": {"summary": "ours"}}))
    cv.write_choice(bundle, choice, ["GT01", "GT02"])
    assert json.loads((bundle / "manifest.json").read_text())["training_data_terms"] == {"summary": "ours"}


def test_an_inherited_refinement_counts_as_nothing_chosen(tmp_path: Path) -> None:
    """A fold bundle trained on from another records that bundle's settings (``inherited_from``):
    the fold's own choice must not keep its layers as if chosen for these networks, and ``--ship``
    must refuse a final bundle that has only inherited ones."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    choice = {"rounds": 1, "smoothing": 0.0003, "confidence_scale": 0.1, "tolerance": 0.0001, "knn": 0.01,
              "network_weight": 0.0, "knn_neighbours": 20, "knn_position": 0.02, "sad": 2.5, "grad": 2.0}
    inherited = {k: v for k, v in choice.items() if k not in ("sad", "grad")} | {
        "layers": "multilevel", "layer_prior": 0.03, "layer_space": "display", "agree_ratio": 0.003,
        "inherited_from": {"bundle": "default", "sha256": "0" * 64}}
    (bundle / "manifest.json").write_text(json.dumps({"name": "fold", "refinement": inherited}))
    assert cv.write_choice(bundle, choice, ["GT03", "GT04"])  # the same settings, but chosen now: changed
    refinement = json.loads((bundle / "manifest.json").read_text())["refinement"]
    assert "inherited_from" not in refinement and not set(cv.LAYER_KEYS) & set(refinement)
    assert refinement["chosen_on"]["objects"] == ["GT03", "GT04"]
    final = tmp_path / "cv" / "final" / "bundle"
    final.parent.mkdir(parents=True)
    from conftest import build_small_networks

    from core.weights import save_bundle

    save_bundle(final, build_small_networks(seed=0), name="final", description="x", refinement=inherited)
    (tmp_path / "cv" / "report.json").write_text("{}")
    with pytest.raises(SystemExit, match="no refinement settings chosen yet"):
        cv.ship(tmp_path / "cv", tmp_path / "shipped")
    assert not (tmp_path / "shipped").exists()

def _linear_composites(root: Path) -> None:
    """Two scene-linear EXR composites with true F and B, both trimaps (the validation layout)."""
    import numpy as np

    from core.io import write_image

    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:40, 0:48] + 0.5
    for i, name in enumerate(("GT01_bg1", "GT03_bg1")):
        r = np.hypot(yy - 20, xx - 24 + 3 * i)
        alpha = np.clip((13 - r) / 6 + 0.2 * np.sin(xx / 2), 0, 1)
        fg = np.clip(rng.uniform(0.2, 2.5, 3) + 0.3 * np.sin(yy / 3)[..., None], 0, None)
        bg = np.stack([xx / 48, yy / 40 * 0.6, np.full_like(xx, 0.05)], -1) * rng.uniform(0.5, 2.0)
        image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        for kind, pixels in (("image", image), ("fg", fg), ("bg", bg)):
            write_image(root / kind / f"{name}.exr", pixels.astype(np.float32), ["R", "G", "B"])
        write_image(root / "alpha" / f"{name}.png", alpha, ["Y"])
        for variant, (inner, outer) in (("Trimap1", (6, 15)), ("Trimap2", (3, 18))):
            trimap = np.where(r < inner, 1.0, np.where(r > outer, 0.0, 0.5))
            write_image(root / "trimap" / variant / f"{name}.png", trimap, ["Y"])


def test_the_layers_are_scored_as_the_pipeline_makes_them_once_per_frame(
        tmp_path: Path, small_bundle, monkeypatch) -> None:
    import shutil

    import core.pipeline
    from core.evaluate import evaluate_dataset

    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")  # small_bundle is untrained on purpose
    composites = tmp_path / "composites"
    _linear_composites(composites)
    bundle = tmp_path / "bundle"
    shutil.copytree(small_bundle.path, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    recorded = {"layers": "multilevel", "layer_prior": 0.3, "layer_space": "solve", "agree_ratio": 10.0}
    manifest["refinement"] = {"rounds": 1, "smoothing": 0.001, "confidence_scale": 0.1, "tolerance": 0.001} | recorded
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    table = cv.layer_scores(bundle, ["GT01", "GT03"], composites, tmp_path / "layers.json")
    assert sorted(table) == sorted(cv.layer_key(e) for e in cv.LAYER_GRID)
    # The bundle's own layers score what lbsmatte evaluate gives the whole pipeline.
    result = evaluate_dataset(composites, weights=str(bundle), baselines="none", device="cpu", progress=False,
                              trimaps=list(cv.VARIANTS))
    means = [result["variants"][v]["mean"]["lbsmatte"] for v in cv.VARIANTS]
    for metric in ("fg_sad", "bg_sad", "sad"):
        want = sum(m[metric] for m in means) / len(means)
        assert table[cv.layer_key(recorded)][metric] == pytest.approx(want, rel=1e-6, abs=1e-9)
    assert len({round(t["fg_sad"] + t["bg_sad"], 9) for t in table.values()}) > 10  # every entry makes other layers
    assert len({t["sad"] for t in table.values()}) == 1  # and none changes alpha
    best = cv.choose_layers([table])
    assert all(table[best]["fg_sad"] + table[best]["bg_sad"] <= t["fg_sad"] + t["bg_sad"] for t in table.values())
    # Cached per frame: a second call matts nothing.
    monkeypatch.setattr(core.pipeline, "Matter", lambda *a, **k: pytest.fail("matted again"))
    assert cv.layer_scores(bundle, ["GT01", "GT03"], composites, tmp_path / "layers.json") == table
    # Each fold's choice is made on several tables together.
    mine = cv.layer_key(recorded)
    other = {k: v | {"fg_sad": v["fg_sad"] - (1000.0 if k == mine else 0.0)} for k, v in table.items()}
    assert cv.choose_layers([table, other]) == mine


def test_the_final_bundle_needs_every_fold_first(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="fold 0 is not trained yet"):
        cv.main(["--out", str(tmp_path / "cv"), "--final"])
    assert not (tmp_path / "cv" / "final" / "bundle").exists()


def test_ship_attaches_the_report_it_is_given_and_keeps_the_chosen_refinement(tmp_path: Path, make_small_networks) -> None:
    from core.weights import load_bundle, save_bundle

    final = save_bundle(tmp_path / "cv" / "final" / "bundle", make_small_networks(seed=1), name="final",
                        description="test", training={"steps": {"alpha": 3}})
    manifest_path = final.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["refinement"] = {"rounds": 1, "smoothing": 0.0003, "confidence_scale": 0.3}
    manifest_path.write_text(json.dumps(manifest))
    (tmp_path / "cv" / "report.json").write_text("{}")
    with pytest.raises(SystemExit, match="neither its training data's terms nor the objects"):
        cv.ship(tmp_path / "cv", tmp_path / "shipped")
    (tmp_path / "cv" / "report.json").unlink()
    manifest["training"]["data"] = {"objects": ["GT01", "GT02"]}
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(SystemExit, match=r"report\.json missing"):
        cv.ship(tmp_path / "cv", tmp_path / "shipped")
    assert not (tmp_path / "shipped").exists()
    kept = tmp_path / "kept.json"
    kept.write_text(json.dumps({"ratios": {"sad": {"vs_best_classical": 1.07}}}))
    cv.ship(tmp_path / "cv", tmp_path / "shipped", kept)
    shipped = load_bundle(str(tmp_path / "shipped"))
    assert shipped.manifest["training"]["cross_validation"]["ratios"]["sad"]["vs_best_classical"] == 1.07
    assert shipped.manifest["training"]["steps"] == {"alpha": 3}
    assert shipped.manifest["refinement"]["confidence_scale"] == 0.3
    assert "2 objects" in shipped.manifest["training_data_terms"]["summary"]


def test_the_report_chooses_each_fold_on_the_others_and_redoes_what_a_new_choice_makes_stale(tmp_path: Path, monkeypatch) -> None:
    import core.evaluate

    names = NAMES[:6]
    parts = cv.folds(names, 3)
    a = json.dumps({"rounds": 1, "smoothing": 0.001, "confidence_scale": 0.1, "tolerance": 0.001}, sort_keys=True)
    b = json.dumps({"rounds": 3, "smoothing": 0.0003, "confidence_scale": 0.3, "tolerance": 0.0001}, sort_keys=True)
    # fold 0's objects like a, folds 1 and 2's like b: fold 0 gets b (5 against 1.5 on folds 1 and 2),
    # folds 1 and 2 get a (3 against 4 on folds 0 and 2, 3 against 3.5 on folds 0 and 1)
    tables = [{a: {"sad": [1.0], "grad": [0.0]}, b: {"sad": [6.0], "grad": [0.0]}},
              {a: {"sad": [5.0], "grad": [0.0]}, b: {"sad": [1.0], "grad": [0.0]}},
              {a: {"sad": [5.0], "grad": [0.0]}, b: {"sad": [2.0], "grad": [0.0]}}]
    for i in range(3):
        (tmp_path / f"fold{i}" / "bundle").mkdir(parents=True)
        (tmp_path / f"fold{i}" / "bundle" / "manifest.json").write_text(json.dumps({"name": f"fold{i}"}))
        (tmp_path / f"fold{i}" / "evaluation.json").write_text("{}")  # stale: made before any choice
    monkeypatch.setattr(cv, "grid_scores", lambda bundle, held, root, cache: tables[int(bundle.parent.name[-1])])
    # fold 0 gets multilevel (2 against 6), folds 1 and 2 the solve (3.5 against 4)
    solve, ml = (cv.layer_key(e) for e in (cv.LAYER_GRID[0], cv.LAYER_GRID[-1]))
    layer_tables = {0: {solve: {"fg_sad": 0.5, "bg_sad": 0.5}, ml: {"fg_sad": 3.0, "bg_sad": 3.0}},
                    1: {solve: {"fg_sad": 3.0, "bg_sad": 3.0}, ml: {"fg_sad": 1.0, "bg_sad": 1.0}},
                    2: {solve: {"fg_sad": 3.0, "bg_sad": 3.0}, ml: {"fg_sad": 1.0, "bg_sad": 1.0}}}
    monkeypatch.setattr(cv, "layer_scores", lambda bundle, held, composites, cache: layer_tables[int(bundle.parent.name[-1])])
    monkeypatch.setattr(cv, "_composites_of", lambda composites, objects: [f"{o}_bg1" for o in objects])
    evaluated = []

    def fake_evaluate(folder, *, weights, names, json_path, **kwargs):
        evaluated.append((Path(weights).parent.name, Path(json_path).name, list(names)))
        Path(json_path).write_text("{}")

    monkeypatch.setattr(core.evaluate, "evaluate_dataset", fake_evaluate)
    cv.prepare(tmp_path, 3, names, tmp_path / "data", tmp_path / "composites")
    refinement = [json.loads((tmp_path / f"fold{i}" / "bundle" / "manifest.json").read_text())["refinement"] for i in range(3)]
    assert [r["rounds"] for r in refinement] == [3, 1, 1] and refinement[0]["tolerance"] == 0.0001
    assert refinement[0]["chosen_on"]["objects"] == parts[1] + parts[2]
    assert [r["layers"] for r in refinement] == ["multilevel", "solve", "solve"]
    # every fold evaluated on its own held-out photographs and composites, once
    assert sorted(evaluated) == sorted([(f"fold{i}", f, [f"{o}_bg1" for o in p] if f == "composites.json" else p)
                                        for i, p in enumerate(parts) for f in ("evaluation.json", "composites.json")])
    evaluated.clear()
    cv.prepare(tmp_path, 3, names, tmp_path / "data", tmp_path / "composites")
    assert not evaluated  # the same choices again: nothing is stale


def test_a_fold_continues_from_the_same_fold_of_an_earlier_run(tmp_path: Path, monkeypatch) -> None:
    earlier = tmp_path / "cv"
    (earlier / "fold1" / "bundle").mkdir(parents=True)
    (earlier / "fold1" / "bundle" / "manifest.json").write_text("{}")
    seen: list[list[str]] = []
    monkeypatch.setattr(cv, "_train", lambda command: seen.append(command) or 0)
    args = argparse.Namespace(steps="0,0,400", real_photos=0.5, ema=0.99, seed=1, precision="fp32", threads=2,
                              decay_steps=400, continue_from=earlier, data=None, max_minutes=None)
    cv.train(tmp_path / "next" / "fold1", ["GT03"], args)
    command = seen[0]
    assert command[command.index("--from") + 1] == str(earlier / "fold1" / "bundle")
    assert command[command.index("--decay-steps") + 1] == "400"
    assert command[command.index("--steps") + 1] == "0,0,400"
    with pytest.raises(SystemExit, match="no bundle at .*fold2"):
        cv.train(tmp_path / "next" / "fold2", ["GT04"], args)
    # Trained for the result of the refinement the earlier fold's bundle runs, μ passed on.
    seen.clear()
    args.lr, args.result_weight, args.result_network_weight = 1e-4, 2.0, 0.001
    cv.train(tmp_path / "result" / "fold1", ["GT03"], args)
    command = seen[0]
    assert command[command.index("--result-refinement") + 1] == str(earlier / "fold1" / "bundle")
    assert command[command.index("--result-weight") + 1] == "2.0"
    assert command[command.index("--result-network-weight") + 1] == "0.001"
    assert command[command.index("--lr") + 1] == "0.0001"
    args.continue_from = None
    with pytest.raises(SystemExit, match="--result-weight needs --continue-from"):
        cv.train(tmp_path / "result" / "fold2", ["GT04"], args)


def test_a_bundle_that_learnt_a_folds_held_out_objects_is_never_scored_for_it(tmp_path: Path, monkeypatch) -> None:
    """A fold's bundle was taken as found in its folder, whatever it had trained on: the folds of a
    run with another --folds (or --data) in the same --out, or an earlier run's given by
    --continue-from, scored held-out objects with networks that had learnt them."""
    three, four = cv.folds(NAMES, 3), cv.folds(NAMES, 4)
    out = tmp_path / "cv"
    for i, held in enumerate(three):
        (out / f"fold{i}" / "bundle").mkdir(parents=True)
        (out / f"fold{i}" / "bundle" / "manifest.json").write_text(json.dumps({"name": f"fold{i}", "training": {
            "data": {"objects": [n for n in NAMES if n not in held], "validation_objects": held}}}))
    monkeypatch.setattr(cv, "_train", lambda command: pytest.fail(f"trained: {command}"))
    monkeypatch.setattr(cv, "grid_scores", lambda bundle, held, root, cache: {})
    args = argparse.Namespace(steps="0,0,400", real_photos=0.5, ema=0.99, seed=1, precision="fp32", threads=2,
                              decay_steps=0, continue_from=None, data=None, max_minutes=None)
    assert cv.train(out / "fold0", three[0], args) == out / "fold0" / "bundle"  # its own fold's objects held out
    assert len(cv._fold_tables(out, 3, NAMES, tmp_path / "data")) == 3
    said = r"fold0/bundle was trained on GT07, GT13, GT25 \(its manifest's training data\), which this fold holds out"
    with pytest.raises(SystemExit, match=said):
        cv.train(out / "fold0", four[0], args)
    with pytest.raises(SystemExit, match=said):
        cv._fold_tables(out, 4, NAMES, tmp_path / "data")
    args.continue_from = out
    with pytest.raises(SystemExit, match=said):
        cv.train(tmp_path / "next" / "fold0", four[0], args)


def test_the_kept_folds_were_trained_without_their_held_out_objects() -> None:
    """docs/cross_validation/folds: each bundle's manifest records training on the other 12 objects
    only (composites, real-photo crops, and no bundle trained from), and holds out its fold's six."""
    from core.training.cli import trained_objects

    kept = Path(__file__).resolve().parents[1] / "docs" / "cross_validation" / "folds"
    for i, held in enumerate(cv.folds(NAMES, 3)):
        cv.check_held_out(kept / f"fold{i}" / "bundle", held)
        manifest = json.loads((kept / f"fold{i}" / "bundle" / "manifest.json").read_text())
        assert trained_objects(manifest) == set(NAMES) - set(held)
        assert manifest["training"]["data"]["validation_objects"] == held and manifest["parent"] is None


def test_a_folds_evaluation_of_objects_it_does_not_hold_out_is_made_again_never_reported(tmp_path: Path, monkeypatch) -> None:
    """A fold's evaluation.json and composites.json were kept whatever objects they scored: made when
    the fold held out others (another --folds or --data, with networks trained on none of the
    objects: --hold-out all), they were reported as this fold's held-out scores."""
    import core.evaluate

    names = NAMES[:6]
    parts = cv.folds(names, 3)
    a = json.dumps({"rounds": 1, "smoothing": 0.001, "confidence_scale": 0.1, "tolerance": 0.001}, sort_keys=True)
    scores = {m: {"sad": 1.0, "mse": 0.1, "grad": 1.0, "conn": 1.0, "fg_sad": 1.0, "bg_sad": 1.0} for m in cv.METHODS}

    def evaluation(images: list[str]) -> str:
        return json.dumps({"variants": {v: {"images": {n: scores for n in images}} for v in cv.VARIANTS}})

    for i, held in enumerate(parts):
        (tmp_path / f"fold{i}" / "bundle").mkdir(parents=True)
        (tmp_path / f"fold{i}" / "bundle" / "manifest.json").write_text(json.dumps({"name": f"fold{i}"}))
        (tmp_path / f"fold{i}" / "evaluation.json").write_text(evaluation(held))
        (tmp_path / f"fold{i}" / "composites.json").write_text(evaluation([f"{n}_bg1" for n in held]))
    monkeypatch.setattr(cv, "grid_scores", lambda bundle, held, root, cache: {a: {"sad": [1.0], "grad": [0.0]}})
    evaluated: list[tuple[str, str, list[str]]] = []

    def fake_evaluate(folder, *, weights, names, json_path, **kwargs):
        evaluated.append((Path(weights).parent.name, Path(json_path).name, list(names)))
        Path(json_path).write_text(evaluation(names))

    monkeypatch.setattr(core.evaluate, "evaluate_dataset", fake_evaluate)
    cv.prepare(tmp_path, 3, names, tmp_path / "data", None)
    evaluated.clear()  # the choices written: the evaluations made for them
    cv.report(tmp_path, 3, names)
    stale = tmp_path / "fold1" / "evaluation.json"
    stale.write_text(evaluation(["GT01", *parts[1]]))  # GT01: fold 0's
    (tmp_path / "fold2" / "composites.json").write_text(evaluation(["GT03_bg1", *(f"{n}_bg1" for n in parts[2])]))
    with pytest.raises(SystemExit, match=r"fold1/evaluation\.json scores GT01, which fold 1 does not hold out"):
        cv.report(tmp_path, 3, names)
    cv.prepare(tmp_path, 3, names, tmp_path / "data", None)
    assert evaluated == [("fold1", "evaluation.json", parts[1])]
    assert not (tmp_path / "fold2" / "composites.json").exists()  # made again by --report --composites
    for i, held in enumerate(parts):  # as --report --composites makes them, fold 2's of another fold's object
        (tmp_path / f"fold{i}" / "composites.json").write_text(evaluation([f"{n}_bg1" for n in held]))
    (tmp_path / "fold2" / "composites.json").write_text(evaluation(["GT03_bg1"]))
    with pytest.raises(SystemExit, match=r"fold2/composites\.json scores GT03_bg1, of objects fold 2 does not hold out"):
        cv.report(tmp_path, 3, names)


def test_the_pipeline_without_networks_gets_the_same_nested_choice(tmp_path: Path, monkeypatch) -> None:
    # Two settings; the networks' folds and the priors' folds each prefer a different one, and each
    # fold is scored with the setting the *other* folds chose.
    a = json.dumps({"rounds": 1, "smoothing": 1e-4, "confidence_scale": 0.1, "tolerance": 1e-4, "knn": 0.0,
                    "network_weight": 0.0}, sort_keys=True)
    b = json.dumps({"rounds": 1, "smoothing": 1e-4, "confidence_scale": 0.1, "tolerance": 1e-4, "knn": 0.01,
                    "network_weight": 0.0}, sort_keys=True)
    monkeypatch.setattr(cv, "GRID", {"rounds": (1,), "smoothing": (1e-4,), "confidence_scale": (0.1,),
                                     "tolerance": (1e-4,), "knn": (0.0, 0.01), "network_weight": (0.0,)})
    seen = []

    def fake_scores(bundle, names, data_root, cache):
        seen.append((str(bundle), cache.name))
        fold = int(cache.parent.name[-1])
        if str(bundle) == "none" and fold == 2:  # the priors: b a little better in fold 2 only
            return {b: {"sad": [3.0], "grad": [1.0]}, a: {"sad": [3.5], "grad": [2.0]}}
        good, bad = (a, b) if str(bundle) == "none" else (b, a)  # else a, and the networks b everywhere
        return {good: {"sad": [1.0 + fold], "grad": [1.0]}, bad: {"sad": [2.0 + fold], "grad": [2.0]}}

    monkeypatch.setattr(cv, "grid_scores", fake_scores)
    plain = json.dumps({"black_point": 0.0, "white_point": 1.0}, sort_keys=True)
    levelled = json.dumps({"black_point": 0.06, "white_point": 0.96}, sort_keys=True)

    def fake_levels(method, names, data_root, cache):
        fold = int(cache.parent.name[-1])
        assert cache.name == f"levels_{method}.json"
        if method == "knn":  # levels help KNN on folds 1 and 2 and hurt fold 0, scored with them all the same
            return {plain: {"sad": [4.0], "grad": [4.0]}, levelled: {"sad": [4.5 if fold == 0 else 3.0], "grad": [4.0]}}
        return {plain: {"sad": [6.0], "grad": [6.0]}, levelled: {"sad": [7.0], "grad": [6.0]}}

    monkeypatch.setattr(cv, "levels_scores", fake_levels)
    chance = cv.same_chance(tmp_path, 3, NAMES, tmp_path)
    assert [f["setting"] for f in chance["knn_levels"]["folds"]] == [json.loads(levelled)] * 3
    assert chance["knn_levels"]["sad"] == pytest.approx((4.5 + 3.0 + 3.0) / 3)
    assert chance["closed_form_levels"]["sad"] == pytest.approx(6.0)  # no levels chosen
    assert {c for _, c in seen} == {"grid_heldout.json", "grid_heldout_none.json"}
    assert [f["setting"]["knn"] for f in chance["lbsmatte"]["folds"]] == [0.01, 0.01, 0.01]
    assert chance["lbsmatte"]["sad"] == pytest.approx(2.0)  # 1, 2, 3: each fold's best
    # fold 2 is scored with a (folds 0 and 1 chose it), where its own best was b
    assert [f["setting"]["knn"] for f in chance["no_networks"]["folds"]] == [0.0, 0.0, 0.0]
    assert [f["sad"] for f in chance["no_networks"]["folds"]] == [1.0, 2.0, 3.5]


def test_the_grid_scores_on_the_unknown_box_as_on_the_whole_frame() -> None:
    import numpy as np

    from core.metrics import gradient_error, sad

    rng = np.random.default_rng(3)
    gt = rng.random((60, 70)).astype(np.float32)
    alpha = np.clip(gt + rng.normal(0, 0.2, gt.shape), 0, 1).astype(np.float32)
    for box in ((20, 30, 25, 40), (0, 9, 60, 70)):  # inside the frame; at its corner
        trimap = np.zeros(gt.shape, np.float32)
        trimap[box[0]:box[1], box[2]:box[3]] = 0.5
        want = (sad(alpha, gt, trimap), gradient_error(alpha, gt, trimap))
        assert cv._scorer(gt, trimap)(alpha) == pytest.approx(want, rel=1e-12)
    assert cv._scorer(gt, np.ones(gt.shape, np.float32))(alpha) == (0.0, 0.0)  # nothing unknown


def test_the_grid_scores_each_setting_as_the_refinement_with_it_would(tmp_path: Path, monkeypatch) -> None:
    """The grid's shortcuts (one run for the settings that differ in levels only, or in neighbour
    sets with κ = 0; levels on that run's alpha; scores on the unknown box) give what refining
    with each setting gives."""
    import numpy as np

    from core.compositing import Settings, refine
    from core.io import write_image
    from core.metrics import gradient_error, sad
    from core.pipeline import Matter

    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:36, 0:44] + 0.5
    truth = np.clip((14 - np.hypot(yy - 18, xx - 22)) / 5 + 0.15 * rng.standard_normal(yy.shape), 0, 1)
    plate = truth[..., None] * np.array([0.9, 0.6, 0.2]) + (1 - truth[..., None]) * rng.uniform(0, 0.5, (36, 44, 3))
    am = tmp_path / "alphamatting"
    write_image(am / "image" / "GT01.png", plate.astype(np.float32), ["R", "G", "B"])
    write_image(am / "alpha" / "GT01.png", truth[..., None].astype(np.float32), ["Y"])
    for variant, width in (("Trimap1", 3), ("Trimap2", 6)):
        r = np.hypot(yy - 18, xx - 22)
        trimap = np.where(r < 14 - width, 1.0, np.where(r > 14 + width, 0.0, 0.5))
        write_image(am / "trimap" / variant / "GT01.png", trimap[..., None].astype(np.float32), ["Y"])
    monkeypatch.setattr(cv, "GRID", {"rounds": (1, 2), "smoothing": (1e-3,), "confidence_scale": (0.1,),
                                     "tolerance": (1e-7,), "knn": (0.0, 0.02), "network_weight": (0.0,),
                                     "knn_neighbours": (4, 6), "knn_position": (2.0,), "knn_band": (0, 2),
                                     "knn_stride": (1, 2), "black_point": (0.0, 0.1), "white_point": (1.0, 0.9),
                                     "sample_alpha": ("network", "half")})
    cache = tmp_path / "grid.json"
    table = cv.grid_scores(Path("none"), ["GT01"], tmp_path, cache)
    assert len(table) == 2 * 2 * 2 * 2 * 2 * 2 * 2 * 2
    # Refining all 2 × 256 settings directly takes 12 s on 2 idle cores and minutes on busy ones:
    # a sixth of the keys per trimap, a different sixth for each, is checked. Together they hold
    # every pair of values of any two entries, so each shortcut (κ = 0 with other neighbour sets,
    # levels, half) meets every other.
    keys = [json.dumps(s, sort_keys=True) for s in cv.settings_grid()]
    checked = {v: [k for i, k in enumerate(keys) if i % 6 == v] for v in range(len(cv.VARIANTS))}
    chosen = [json.loads(k) for ks in checked.values() for k in ks]
    for a, b in itertools.combinations(cv.GRID, 2):
        assert {(s[a], s[b]) for s in chosen} == set(itertools.product(cv.GRID[a], cv.GRID[b])), (a, b)
    nets = Matter("none", device="cpu", rounds=0, fg_solve=0)
    for variant_index, variant in enumerate(cv.VARIANTS):
        plate_in, trimap_in, gt = cv._read_frame(tmp_path, "GT01", variant)
        out = nets.matte(plate_in, trimap_in, colour="srgb")
        args = [cv._batch_of_one(a) for a in (plate_in, trimap_in, out.alpha, out.fg, out.bg)]
        for key in checked[variant_index]:
            alpha = refine(*args, Settings(**json.loads(key))).alpha[0, 0].numpy()
            want = (sad(alpha, gt, trimap_in), gradient_error(alpha, gt, trimap_in))
            got = (table[key]["sad"][variant_index], table[key]["grad"][variant_index])
            assert got == pytest.approx(want, rel=1e-4, abs=1e-6), key
    # κ = 0: the neighbour sets change nothing; levels change the scores
    base = {"rounds": 1, "smoothing": 1e-3, "confidence_scale": 0.1, "tolerance": 1e-7, "network_weight": 0.0,
            "knn_position": 2.0, "knn_band": 0, "knn_stride": 1, "black_point": 0.0, "white_point": 1.0, "sample_alpha": "network"}
    key = lambda **kw: json.dumps(base | kw, sort_keys=True)  # noqa: E731
    assert table[key(knn=0.0, knn_neighbours=4)] == table[key(knn=0.0, knn_neighbours=6)]
    assert table[key(knn=0.0, knn_neighbours=4)] == table[key(knn=0.0, knn_neighbours=4, knn_band=2)]
    assert table[key(knn=0.0, knn_neighbours=4)] == table[key(knn=0.0, knn_neighbours=4, knn_stride=2)]
    # searches from every other row and column only: another term
    assert table[key(knn=0.02, knn_neighbours=4, knn_stride=2)] != table[key(knn=0.02, knn_neighbours=4)]
    assert table[key(knn=0.02, knn_neighbours=4)] != table[key(knn=0.02, knn_neighbours=6)]
    # a band of 2 px drops the known pixels beyond it from the searches: another term
    assert table[key(knn=0.02, knn_neighbours=4, knn_band=2)] != table[key(knn=0.02, knn_neighbours=4)]
    assert table[key(knn=0.02, knn_neighbours=4, black_point=0.1)] != table[key(knn=0.02, knn_neighbours=4)]
    # the priors' alpha is 0.5 already: F and B solved for 0.5 are the same run
    assert table[key(knn=0.02, knn_neighbours=4, sample_alpha="half")] == table[key(knn=0.02, knn_neighbours=4)]
    # the cache holds every frame's scores: a second call refines nothing
    monkeypatch.setattr("core.compositing.refine", lambda *a, **k: pytest.fail("refined again"))
    assert cv.grid_scores(Path("none"), ["GT01"], tmp_path, cache) == table


def test_the_priors_refine_without_the_matting_networks_data_term() -> None:
    # The priors' alpha is a constant 0.5: a setting with the network's alpha as a data term (μ)
    # refines them as μ = 0 does (lbsmatte evaluate's ablation), while the networks keep their μ.
    setting = {"knn": 0.01, "knn_neighbours": 20, "knn_position": 0.02, "network_weight": 0.001,
               "sample_alpha": "half", "smoothing": 0.0003}
    key = json.dumps(setting, sort_keys=True)
    assert json.loads(cv._alike(key))["network_weight"] == 0.001
    priors = json.loads(cv._alike(key, priors=True))
    assert priors == setting | {"network_weight": 0.0, "sample_alpha": "network"}


def test_a_sigterm_to_the_fold_loop_stops_its_training_child_cleanly(stopped_by_sigterm) -> None:
    # A scheduler's kill (or `timeout`) signals the fold loop alone: its training child must get it
    # too and stop (exit 3, checkpointed), not train on orphaned. The parent's handler is in place
    # before the child starts, so "ready" means a SIGTERM now reaches it.
    out = stopped_by_sigterm(f"""
        import sys
        sys.path.insert(0, {str(Path(cv.__file__).parent)!r})
        import cross_validate
        print("child exit", cross_validate._train([sys.executable, CHILD]), flush=True)
    """)
    assert out.strip() == "child exit 3"


def test_ship_without_a_final_bundle_is_an_error_line_not_a_traceback(tmp_path) -> None:
    import subprocess

    from core.training.data import default_data_root

    data = default_data_root()
    if not (data / "alphamatting").is_dir():
        pytest.skip(f"alphamatting data not found in {data}")
    run = subprocess.run([sys.executable, str(Path(cv.__file__)), "--out", str(tmp_path / "cv"), "--data", str(data),
                          "--ship", str(tmp_path / "dest")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.startswith("ERROR: weights bundle folder") and "final/bundle does not exist" in run.stderr


def test_a_thread_count_below_one_is_a_usage_error_not_a_traceback(tmp_path, capsys) -> None:
    for threads in ("0", "-1"):
        with pytest.raises(SystemExit):
            cv.main(["--out", str(tmp_path / "cv"), "--fold", "0", "--threads", threads])
        assert f"--threads must be at least 1, not {threads}" in capsys.readouterr().err
    assert not (tmp_path / "cv").exists()


def _fold_with_networks(fold: Path, sha: str) -> None:
    """A fold bundle whose networks' files hash to ``sha``-something, the refinement recorded kept."""
    path = fold / "bundle" / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(path.read_text()) if path.exists() else {"name": fold.name}
    manifest["networks"] = {r: {"file": f"{r}.safetensors", "sha256": f"{sha}{r}"}
                            for r in ("background", "foreground", "alpha")}
    path.write_text(json.dumps(manifest))


def test_scores_made_by_other_networks_are_never_reported_for_a_fold(tmp_path: Path, monkeypatch) -> None:
    """A fold's grid scores, layer scores and evaluations are its own networks': after its bundle is
    replaced (trained anew, copied in) the ones made by the old networks are made again, not reused."""
    import core.evaluate

    names = NAMES[:6]
    a = json.dumps({"rounds": 1, "smoothing": 0.001, "confidence_scale": 0.1, "tolerance": 0.001}, sort_keys=True)
    for i in range(3):
        _fold_with_networks(tmp_path / f"fold{i}", "old")
    cached: list[tuple[str, bool]] = []

    def fake_grid(bundle, held, root, cache):
        cached.append((bundle.parent.name, cache.exists()))
        cache.write_text("{}")
        return {a: {"sad": [1.0], "grad": [0.0]}}

    monkeypatch.setattr(cv, "grid_scores", fake_grid)
    evaluated: list[str] = []

    def fake_evaluate(folder, *, weights, names, json_path, **kwargs):
        evaluated.append(Path(weights).parent.name)
        Path(json_path).write_text("{}")

    monkeypatch.setattr(core.evaluate, "evaluate_dataset", fake_evaluate)
    cv.prepare(tmp_path, 3, names, tmp_path / "data", None)
    assert sorted(evaluated) == ["fold0", "fold1", "fold2"]
    evaluated.clear()
    cached.clear()
    cv.prepare(tmp_path, 3, names, tmp_path / "data", None)
    assert not evaluated and all(existed for _, existed in cached)  # the same networks: every score kept
    _fold_with_networks(tmp_path / "fold1", "new")  # other networks, the same settings recorded (copied in)
    cached.clear()
    cv.prepare(tmp_path, 3, names, tmp_path / "data", None)
    assert evaluated == ["fold1"]
    assert ("fold1", False) in cached and ("fold0", True) in cached


def test_a_fold_trained_anew_keeps_no_scores_of_earlier_networks(tmp_path: Path, monkeypatch) -> None:
    fold = tmp_path / "cv" / "fold0"
    fold.mkdir(parents=True)
    stale = ("grid_heldout.json", "layers_heldout.json", "evaluation.json", "composites.json")
    for name in (*stale, "grid_heldout_none.json", "levels_knn.json"):
        (fold / name).write_text("{}")
    monkeypatch.setattr(cv, "_train", lambda command: _fold_with_networks(fold, "new") or 0)
    args = argparse.Namespace(steps="1,1,1", real_photos=0.5, ema=0.99, seed=0, precision="fp32", threads=None,
                              decay_steps=0, continue_from=None, data=None, max_minutes=None)
    cv.train(fold, ["GT01"], args)
    assert not any((fold / name).exists() for name in stale)
    # the priors' and the classical methods' scores involve no networks: they stay
    assert (fold / "grid_heldout_none.json").exists() and (fold / "levels_knn.json").exists()


def test_gzipped_score_caches_are_read_superseded_and_made_stale_like_plain_ones(tmp_path: Path, monkeypatch) -> None:
    import gzip

    fold = tmp_path / "cv" / "fold0"
    fold.mkdir(parents=True)
    scores = {"GT01/Trimap1": {"a": [1.5, 2.5]}}
    for name in ("grid_heldout.json", "grid_heldout_none.json"):
        with gzip.open(fold / f"{name}.gz", "wt", encoding="utf-8") as f:
            json.dump(scores, f)
    assert cv._read_json(fold / "grid_heldout.json", {}) == scores
    assert cv._read_json(fold / "missing.json", {}) == {}
    # a plain file written now supersedes the kept gzipped copy, which is removed
    cv._atomic_json(fold / "grid_heldout_none.json", {"new": 1})
    assert cv._read_json(fold / "grid_heldout_none.json") == {"new": 1}
    assert not (fold / "grid_heldout_none.json.gz").exists()
    # new networks: their gzipped grid scores are stale too
    (fold / "scored_by.json").write_text(json.dumps({"networks": {"old": "0"}}))
    monkeypatch.setattr(cv, "_train", lambda command: _fold_with_networks(fold, "new") or 0)
    args = argparse.Namespace(steps="1,1,1", real_photos=0.5, ema=0.99, seed=0, precision="fp32", threads=None,
                              decay_steps=0, continue_from=None, data=None, max_minutes=None)
    cv.train(fold, ["GT01"], args)
    assert not (fold / "grid_heldout.json.gz").exists()


def test_the_kept_folds_grid_scores_are_gzipped_and_read_whole() -> None:
    # 9 MB of JSON each: plain, the checkout was too large to travel to a GPU machine (64 MiB)
    folds = Path(__file__).resolve().parents[1] / "docs" / "cross_validation" / "folds"
    for i in range(3):
        for name in ("grid_heldout.json", "grid_heldout_none.json"):
            assert not (folds / f"fold{i}" / name).exists()
            table = cv._read_json(folds / f"fold{i}" / name)
            assert len(table) == 12 and all(len(scores) > 1000 for scores in table.values())


def test_a_fold_whose_training_stopped_early_exits_3_as_lbsmatte_train_does(tmp_path: Path, monkeypatch, capsys) -> None:
    # --max-minutes or a SIGTERM: checkpointed, the same command continues; not a failure (exit 1).
    monkeypatch.setattr(cv, "objects", lambda root: [f"GT0{i}" for i in range(1, 7)])
    monkeypatch.setattr(cv, "_train", lambda command: 3)
    with pytest.raises(SystemExit) as stopped:
        cv.main(["--out", str(tmp_path / "cv"), "--fold", "1", "--data", str(tmp_path)])
    assert stopped.value.code == 3
    assert (f"training of {tmp_path / 'cv' / 'fold1'} stopped before the end; run the same command again to continue"
            in capsys.readouterr().out)
    with pytest.raises(SystemExit) as usage:  # a fold that does not exist is a usage error, as lbsmatte's
        cv.main(["--out", str(tmp_path / "cv"), "--fold", "3", "--data", str(tmp_path)])
    assert usage.value.code == 2
    assert "--fold must be between 0 and 2, not 3" in capsys.readouterr().err
