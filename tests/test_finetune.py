"""``lbsmatte finetune``: a tiny run on a show's own plates and mattes writes a child bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio
import pytest
import torch

from core.cli import main
from core.weights import load_bundle


def _write_png(path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = oiio.ImageBuf(np.ascontiguousarray((np.clip(pixels, 0, 1) * 255).round().astype(np.uint8)))
    assert buf.write(str(path))


def _show(folder, rng) -> None:
    for name in ("shot010", "shot020"):
        h, w = 48, 64
        yy, xx = np.mgrid[0:h, 0:w]
        alpha = np.clip((20 - np.hypot(yy - 24, xx - 32)) / 6, 0, 1).astype(np.float32)
        fg = np.broadcast_to(rng.random(3, dtype=np.float32), (h, w, 3))
        bg = rng.random((h, w, 3), dtype=np.float32)
        image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        _write_png(folder / "image" / f"{name}.png", image)
        _write_png(folder / "alpha" / f"{name}.png", alpha)


def test_finetune_writes_a_child_bundle_naming_its_parent(tmp_path, small_bundle, rng) -> None:
    _show(tmp_path / "show", rng)
    out = tmp_path / "show_weights"
    code = main([
        "finetune", "--from", str(small_bundle.path), "--data", str(tmp_path / "show"), "--out", str(out),
        "--steps", "2,1,1", "--crop", "32", "--batch", "2", "--run-dir", str(tmp_path / "run"), "--no-progress",
    ])
    assert code == 0
    child = load_bundle(out)
    assert child.manifest["parent"]["name"] == small_bundle.name
    assert child.manifest["parent"]["sha256"] == small_bundle.manifest_sha256()
    assert child.manifest["training"]["stages"]["background"]["step"] == 2
    assert child.manifest["training"]["data"]["plates"] == ["shot010", "shot020"]
    # The weights moved away from the parent's: training really happened.
    parent_bg = small_bundle.load_network("background").state_dict()
    child_bg = child.load_network("background").state_dict()
    assert any(not torch.equal(parent_bg[k], child_bg[k]) for k in parent_bg)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["role"] for r in log if r["kind"] == "train"] == ["background", "background", "foreground", "alpha"]
    assert (tmp_path / "run" / "losses.png").is_file()
    # The bundle says where its losses are drawn and how they ended (a fine-tune has no validation).
    training = child.manifest["training"]
    assert training["log"]["folder"] == str((tmp_path / "run").resolve()) and training["log"]["plot"] == "losses.png"
    # Every file of the run folder readable as the umask allows (the checkpoints were 0600).
    import os
    import stat

    from core.io import _umask

    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in (tmp_path / "run").iterdir()}
    assert modes == dict.fromkeys(modes, 0o666 & ~_umask()) and "alpha.safetensors" in modes
    assert set(training["final_train_loss"]) == {"background", "foreground", "alpha"}
    assert training["final_train_loss"]["background"]["steps"] == 2
    assert "constant learning rate 2e-05" in training["optimizer"]


def test_finetune_refuses_to_overwrite_an_existing_bundle(tmp_path, small_bundle, rng, capsys) -> None:
    _show(tmp_path / "show", rng)
    code = main(["finetune", "--from", str(small_bundle.path), "--data", str(tmp_path / "show"),
                 "--out", str(small_bundle.path), "--steps", "1", "--no-progress"])
    assert code != 0
    assert "already exists" in capsys.readouterr().out


def test_train_from_a_bundle_continues_it_and_keeps_its_history(tmp_path, small_bundle) -> None:
    from core.training.data import default_data_root

    data = default_data_root()
    if not (data / "alphamatting").is_dir() or not (data / "backgrounds").is_dir():
        import pytest

        pytest.skip(f"training data not found in {data}")
    out = tmp_path / "default_v2"
    code = main([
        "train", "--from", str(small_bundle.path), "--out", str(out), "--steps", "1,1,2", "--crop", "32",
        "--batch", "2", "--backgrounds", "1", "--procedural", "1.0", "--storage", "float16",
        "--run-dir", str(tmp_path / "run"), "--no-progress",
    ])
    assert code == 0
    child = load_bundle(out)
    assert child.manifest["storage"] == "float16"
    assert child.manifest["parent"]["sha256"] == small_bundle.manifest_sha256()
    assert child.manifest["training"]["continued_from"]["name"] == small_bundle.name
    assert child.manifest["training"]["stages"]["alpha"]["step"] == 2
    assert "trained further" in child.manifest["description"]
    # Same architecture as the parent (its config, not --size), and the weights moved.
    assert child.config("alpha") == small_bundle.config("alpha")
    parent_alpha = small_bundle.load_network("alpha").state_dict()
    child_alpha = child.load_network("alpha").state_dict()
    assert any(not torch.equal(parent_alpha[k].half().float(), child_alpha[k]) for k in parent_alpha)


def test_a_fold_from_a_bundle_that_learnt_its_held_out_objects_is_refused(tmp_path, make_small_networks, capsys) -> None:
    """``--hold-out`` with ``--from`` a bundle trained on those objects (``default``: all 18) made a
    "fold" whose networks had learnt the objects its manifest named as held out; the bundles it was
    trained on from count too. A bundle trained without them is continued."""
    from core.weights import save_bundle
    from tests.test_gpu_train import _data

    learnt = {"data": {"objects": ["GT01", "GT03"], "real_photos": {"plates": ["GT01", "GT03"]}}}
    everything = save_bundle(tmp_path / "all", make_small_networks(seed=0), name="all", description="x",
                             training=learnt)
    grandchild = save_bundle(tmp_path / "on", make_small_networks(seed=1), name="on", description="x",
                             training={"data": {"objects": ["GT03"]}, "continued_from": {"name": "all", "training": learnt}})
    data = _data(tmp_path / "data")  # GT01 and GT02
    args = ["train", "--data", str(data), "--out", str(tmp_path / "fold"), "--steps", "0,0,1", "--crop", "32",
            "--batch", "2", "--backgrounds", "1", "--run-dir", str(tmp_path / "run"), "--no-progress", "--threads", "1"]
    for parent, hold_out in ((everything, "GT01,GT02"), (grandchild, "GT01,GT02"), (everything, "all")):
        assert main([*args, "--from", str(parent.path), "--hold-out", hold_out, "--procedural", "1"]) == 2
        said = capsys.readouterr().out
        assert f"--from bundle {parent.path} was trained on GT01 (its manifest's training data)" in said, said
        assert "background, foreground, alpha networks would carry it into this one" in said
        assert not (tmp_path / "fold").exists() and not (tmp_path / "run").exists()
    assert main([*args, "--from", str(everything.path), "--hold-out", "GT02"]) == 0
    assert load_bundle(tmp_path / "fold").manifest["training"]["data"]["validation_objects"] == ["GT02"]


@pytest.mark.parametrize(("training", "seen"), [
    ({"data": "show plates v3, 2000 frames"}, set()),  # another vendor's free-form summary
    ({"data": ["GT01"]}, set()),
    ({"data": {"objects": 5, "real_photos": ["GT02"]}}, set()),
    ({"data": {"objects": "GT01"}}, {"GT01"}),  # one name, not its letters
    ({"data": {"plates": ["sh010"]}, "continued_from": "default"}, {"sh010"}),
    ({"continued_from": {"training": {"data": {"real_photos": {"plates": "GT03"}}}}}, {"GT03"}),
    ("free text", set()),
])
def test_the_objects_a_bundle_learnt_are_read_from_any_training_summary(training: Any, seen: set[str]) -> None:
    """``training`` is free-form in a manifest: a vendor's bundle saying ``"data": "show plates v3"``
    made ``lbsmatte train --from it --hold-out GT01`` end in an AttributeError traceback."""
    from core.training.cli import trained_objects

    assert trained_objects({"training": training}) == seen


def test_train_on_the_objects_own_photos_with_half_resolution_sampling(tmp_path, small_bundle, capsys) -> None:
    import pytest

    from core.training.data import VALIDATION_OBJECTS, default_data_root

    data = default_data_root()
    if not (data / "alphamatting").is_dir() or not (data / "backgrounds").is_dir():
        pytest.skip(f"training data not found in {data}")
    out = tmp_path / "halfres"
    args = ["train", "--from", str(small_bundle.path), "--out", str(out), "--steps", "0,0,1", "--crop", "32",
            "--batch", "2", "--run-dir", str(tmp_path / "run"), "--no-progress", "--sampling-scale", "0.5"]
    assert main([*args, "--real-photos", "1.0", "--validation", "photos"]) == 0
    child = load_bundle(out)
    assert child.manifest["training"]["data"]["validation"] == "photos"
    for role in ("background", "foreground"):
        assert child.config(role)["scale"] == 0.5
        assert child.load_network(role).stride == 16
        # Only the scale changed: the sampling weights are the parent's.
        parent_state = small_bundle.load_network(role).state_dict()
        assert all(torch.equal(v, child.load_network(role).state_dict()[k]) for k, v in parent_state.items())
    photos = child.manifest["training"]["data"]["real_photos"]
    assert photos["fraction"] == 1.0 and photos["plates"]
    # their own Trimap1/Trimap2 for half the crops, cut at no less than half their scale (README)
    assert (photos["own_trimaps"], photos["min_scale"]) == (0.5, 0.5)
    # their mattes read as the shipped recipe read them, not as a show's keyed mattes are
    assert photos["alpha_tolerance"] == 1.0 / 1024
    assert not set(photos["plates"]) & set(VALIDATION_OBJECTS)
    for bad, message in ((["--real-photos", "1.5"], "--real-photos"), (["--sampling-scale", "0.3"], "--sampling-scale")):
        argv = [*args, *bad]
        argv[argv.index("--out") + 1] = str(tmp_path / "never")
        assert main(argv) != 0
        assert message in capsys.readouterr().out
        assert not (tmp_path / "never").exists()


def test_bf16_on_a_cpu_that_emulates_it_warns_and_names_the_way_out(tmp_path, small_bundle, caplog, monkeypatch) -> None:
    import logging

    import pytest

    import core.pipeline
    from core.training.data import default_data_root

    data = default_data_root()
    if not (data / "alphamatting").is_dir() or not (data / "backgrounds").is_dir():
        pytest.skip(f"training data not found in {data}")
    monkeypatch.setattr(core.pipeline, "cpu_has_bf16", lambda: False)
    caplog.set_level(logging.WARNING)
    args = ["train", "--from", str(small_bundle.path), "--out", str(tmp_path / "bf16"), "--steps", "0,0,1",
            "--crop", "32", "--batch", "2", "--procedural", "1.0", "--run-dir", str(tmp_path / "run"),
            "--no-progress", "--device", "cpu", "--precision", "bf16"]
    assert main(args) == 0
    assert "no native bfloat16" in caplog.text and "--precision fp32" in caplog.text
    assert load_bundle(tmp_path / "bf16").manifest["training"]["settings"]["precision"] == "bf16"


def test_train_from_a_bundle_with_a_larger_matting_network_keeps_its_sampling_networks(tmp_path, small_bundle) -> None:
    import pytest

    from core.training.data import default_data_root

    data = default_data_root()
    if not (data / "alphamatting").is_dir() or not (data / "backgrounds").is_dir():
        pytest.skip(f"training data not found in {data}")
    out = tmp_path / "medium"
    code = main([
        "train", "--from", str(small_bundle.path), "--size", "small,small,medium", "--out", str(out),
        "--steps", "0,0,1", "--crop", "32", "--batch", "2", "--backgrounds", "1", "--procedural", "1.0",
        "--run-dir", str(tmp_path / "run"), "--no-progress",
    ])
    assert code == 0
    child = load_bundle(out)
    assert child.config("alpha")["size"] == "medium"
    assert child.config("alpha")["widths"] == [32, 64, 128, 256] and child.config("alpha")["refine"] is True
    assert child.manifest["training"]["settings"]["size"] == "small,small,medium"
    # The sampling networks are the parent's, untouched (no steps asked for them).
    for role in ("background", "foreground"):
        assert child.config(role) == small_bundle.config(role)
        parent_state = small_bundle.load_network(role).state_dict()
        assert all(torch.equal(parent_state[k], v) for k, v in child.load_network(role).state_dict().items())


def test_a_size_that_does_not_exist_is_refused_by_name(tmp_path, capsys) -> None:
    code = main(["train", "--size", "small,huge,paper", "--out", str(tmp_path / "b"), "--steps", "1",
                 "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert code != 0
    said = capsys.readouterr()
    assert "--size" in said.out + said.err and "'small,huge,paper'" in said.out + said.err


def test_role_sizes_names_each_network() -> None:
    from core.nets.config import role_sizes

    assert role_sizes("paper") == {"background": "paper", "foreground": "paper", "alpha": "paper"}
    assert role_sizes("small,small,medium")["alpha"] == "medium"


def test_a_finetuned_bundle_runs_with_its_parents_refinement_marked_as_inherited(tmp_path, small_bundle, rng) -> None:
    """Without the parent's recorded refinement a show's fine-tune would run the module's older
    defaults (3 rounds, no KNN term, no levels): another pipeline than the one it was tuned from."""
    import shutil

    from core.pipeline import refinement_settings

    parent_folder = tmp_path / "parent"
    shutil.copytree(small_bundle.path, parent_folder)
    manifest = json.loads((parent_folder / "manifest.json").read_text())
    chosen = {"rounds": 1, "smoothing": 3e-4, "knn": 0.01, "knn_band": 32, "black_point": 0.06,
              "white_point": 0.92, "layers": "multilevel", "layer_prior": 0.03}
    manifest["refinement"] = chosen | {"chosen_on": {"objects": ["GT01"], "criterion": "lowest mean SAD + mean gradient error"}}
    (parent_folder / "manifest.json").write_text(json.dumps(manifest))
    parent = load_bundle(parent_folder)
    _show(tmp_path / "show", rng)
    for source, out in ((parent, tmp_path / "child"), (small_bundle, tmp_path / "child_of_none")):
        assert main(["finetune", "--from", str(source.path), "--data", str(tmp_path / "show"), "--out", str(out),
                     "--steps", "1,1,1", "--crop", "32", "--batch", "2", "--run-dir", str(tmp_path / f"run_{out.name}"),
                     "--no-progress"]) == 0
    child = load_bundle(tmp_path / "child")
    assert child.manifest["refinement"] == chosen | {
        "inherited_from": {"bundle": parent.name, "sha256": parent.manifest_sha256()}}
    assert refinement_settings(child) == refinement_settings(parent)
    assert refinement_settings(child).knn_band == 32 and refinement_settings(child).rounds == 1
    assert f"inherited from: {parent.name} (chosen for its networks, not re-chosen for these)" in child.summary()
    # A parent that records no refinement passes none on: the child says the defaults apply.
    orphan = load_bundle(tmp_path / "child_of_none")
    assert "refinement" not in orphan.manifest
    assert "refinement: none recorded" in orphan.summary()


def _finetune(tmp_path, bundle, data, out, *extra: str) -> int:
    return main(["finetune", "--from", str(bundle), "--data", str(data), "--out", str(out), "--steps", "1,1,1",
                 "--crop", "32", "--batch", "2", "--run-dir", str(tmp_path / "run"), "--no-progress", *extra])


def test_checkpoints_of_another_run_are_not_continued(tmp_path, small_bundle, rng, capsys) -> None:
    # The same --run-dir (or the same --out name under runs/) with other data or another --lr: the
    # second run must not pick up the first one's networks and ship them under its own name.
    _show(tmp_path / "show_a", rng)
    _show(tmp_path / "show_b", rng)
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show_a", tmp_path / "a") == 0
    capsys.readouterr()
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show_b", tmp_path / "b") == 2
    said = capsys.readouterr().out
    assert f"{tmp_path / 'run'} holds the checkpoints of another run (data {str(tmp_path / 'show_a')!r}, now " in said
    assert "--run-dir" in said and not (tmp_path / "b").exists()
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show_a", tmp_path / "c", "--lr", "0.5") == 2
    assert "lr 2e-05, now 0.5" in capsys.readouterr().out and not (tmp_path / "c").exists()
    # Another --colour reads the same files as other images: another run too.
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show_a", tmp_path / "c", "--colour", "linear") == 2
    assert "colour 'auto', now 'linear'" in capsys.readouterr().out and not (tmp_path / "c").exists()
    # The same run asked for more steps continues.
    assert main(["finetune", "--from", str(small_bundle.path), "--data", str(tmp_path / "show_a"), "--out",
                 str(tmp_path / "d"), "--steps", "2,1,1", "--crop", "32", "--batch", "2", "--run-dir",
                 str(tmp_path / "run"), "--no-progress"]) == 0
    assert load_bundle(tmp_path / "d").manifest["training"]["stages"]["background"]["step"] == 2


def test_bad_show_data_is_refused_by_name_before_training(tmp_path, small_bundle, rng, capsys, caplog) -> None:
    from core.io import write_image

    _show(tmp_path / "show", rng)
    plate = np.full((48, 64, 3), 0.5, np.float32)
    plate[3, 4] = np.nan
    write_image(tmp_path / "show" / "image" / "shot030.exr", plate, ["R", "G", "B"], pixel_type="float")
    _write_png(tmp_path / "show" / "alpha" / "shot030.png", np.zeros((48, 64), np.float32))
    _write_png(tmp_path / "show" / "image" / "orphan.png", np.zeros((48, 64, 3), np.float32))
    _write_png(tmp_path / "show" / "alpha" / "sh099.png", np.zeros((48, 64), np.float32))
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w") == 2
    said = capsys.readouterr()
    assert f"{tmp_path / 'show' / 'image' / 'shot030.exr'}: 3 value(s) are NaN or infinite" in said.out
    assert "1 plate(s) in" in caplog.text and "have no matte of the same name" in caplog.text
    assert "are not trained on: orphan\n" in caplog.text
    # A matte whose plate is not there is named too (it was passed over without a word).
    assert (f"1 matte(s) in {tmp_path / 'show' / 'alpha'} have no plate of the same name in "
            f"{tmp_path / 'show' / 'image'} and are not trained on: sh099.png") in caplog.text
    assert not (tmp_path / "w").exists() and not (tmp_path / "run" / "background.json").exists()


def test_finetune_warnings_on_stderr_carry_the_warning_prefix(tmp_path, small_bundle, rng) -> None:
    # As every command prints its warnings (a farm's log filter looks for ^WARNING:): fine-tune's
    # logging.basicConfig(format="%(message)s") printed them as bare messages.
    import os
    import subprocess
    import sys

    _show(tmp_path / "show", rng)
    _write_png(tmp_path / "show" / "image" / "orphan.png", np.zeros((48, 64, 3), np.float32))
    _write_png(tmp_path / "show" / "alpha" / "sh099.png", np.zeros((48, 64), np.float32))
    _write_png(tmp_path / "show" / "image" / "shot030.png", np.zeros((48, 64, 3), np.float32))
    (tmp_path / "show" / "alpha" / "shot030.png").write_bytes(b"not a PNG")  # refused before training
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "core.cli", "finetune", "--from", str(small_bundle.path), "--data",
         str(tmp_path / "show"), "--out", str(tmp_path / "w"), "--steps", "1,1,1", "--crop", "32", "--batch", "2",
         "--run-dir", str(tmp_path / "run"), "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith("WARNING: 1 plate(s) in ") and line.endswith("not trained on: orphan") for line in lines)
    assert any(line.startswith("WARNING: 1 matte(s) in ") and line.endswith("not trained on: sh099.png")
               for line in lines)


def test_out_may_not_be_the_bundle_it_starts_from_nor_lie_in_the_data(tmp_path, small_bundle, rng, capsys) -> None:
    import shutil

    _show(tmp_path / "show", rng)
    parent = tmp_path / "parent"
    shutil.copytree(small_bundle.path, parent)
    before = {p.name: p.read_bytes() for p in parent.iterdir()}
    assert _finetune(tmp_path, parent, tmp_path / "show", parent, "--overwrite") == 2
    assert f"--out {parent} is the --from bundle" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in parent.iterdir()} == before
    assert _finetune(tmp_path, parent, tmp_path / "show", tmp_path / "show" / "weights") == 2
    assert "overlap: the bundle would be written into the data set" in capsys.readouterr().out
    # --overwrite onto a folder that is not a bundle: refused before training, not after it.
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    assert _finetune(tmp_path, parent, tmp_path / "show", tmp_path / "notes", "--overwrite") == 2
    assert "it is not a weights bundle" in capsys.readouterr().out
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine" and not (tmp_path / "run").exists()
    # --overwrite onto a bundle folder that holds the user's files too (an evaluation's --json put
    # beside the weights): refused before training; the replaced folder took them with it.
    shown = tmp_path / "v2"
    shutil.copytree(small_bundle.path, shown)
    (shown / "scores.json").write_text("mine")
    assert _finetune(tmp_path, parent, tmp_path / "show", shown, "--overwrite") == 2
    assert f"refusing to replace {shown}: besides the weights bundle it holds scores.json" in capsys.readouterr().out
    assert (shown / "scores.json").read_text() == "mine" and not (tmp_path / "run").exists()


def test_a_file_of_the_users_put_in_the_bundle_folder_while_it_trains_is_kept_and_so_is_the_training(
        tmp_path, small_bundle, rng, monkeypatch, capsys) -> None:
    # Checked before training, the folder then given a file of the user's (an evaluation's --json of
    # the old bundle): the write at the end is refused, the file stays, and the same command writes
    # the bundle from the checkpoints once it is moved out.
    import shutil

    import core.training.train as train_module

    _show(tmp_path / "show", rng)
    target = tmp_path / "v2"
    shutil.copytree(small_bundle.path, target)
    real = train_module.train

    def meanwhile(*args, **kwargs):
        nets = real(*args, **kwargs)
        (target / "scores.json").write_text("mine")
        return nets

    monkeypatch.setattr(train_module, "train", meanwhile)
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", target, "--overwrite") == 1
    said = capsys.readouterr().out
    assert (f"ERROR: refusing to replace {target}: besides the weights bundle it holds scores.json" in said
            and f"the trained networks are kept in {tmp_path / 'run'}: run the same command again" in said)
    assert (target / "scores.json").read_text() == "mine"
    monkeypatch.undo()
    (target / "scores.json").unlink()
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", target, "--overwrite") == 0
    assert "wrote bundle 'v2'" in capsys.readouterr().out


def test_a_run_dir_holding_the_users_files_of_a_runs_names_is_refused_and_they_stay(
        tmp_path, small_bundle, rng, capsys) -> None:
    # --run-dir naming a folder of the user's (a project holding its own settings.json): the run
    # replaced settings.json and losses.png there, and an alpha.json that is not JSON stopped it
    # with a traceback. A run's own folder is continued as before.
    _show(tmp_path / "show", rng)
    project = tmp_path / "project"
    project.mkdir()
    (project / "settings.json").write_text('{"editor.tabSize": 4}')
    (project / "alpha.json").write_text("not json")
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--run-dir", str(project)) == 2
    said = capsys.readouterr().out
    assert (f"the checkpoints' folder {project} holds settings.json, alpha.json, which no LBSMatte training wrote "
            "there and the run would replace; give the run a folder of its own (--run-dir)") in said
    assert sorted(p.name for p in project.iterdir()) == ["alpha.json", "settings.json"]
    assert (project / "settings.json").read_text() == '{"editor.tabSize": 4}' and not (tmp_path / "w").exists()

    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w") == 0
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--overwrite") == 0  # its own


def test_bad_numbers_are_usage_errors_in_the_flags_words(tmp_path, capsys) -> None:
    for flag, value, said in (("--lr", "0", "--lr takes a number > 0, not '0'"), ("--lr", "nan", "--lr takes a number > 0"),
                              ("--crop", "7", "--crop takes a whole number of pixels, a multiple of 32"),
                              ("--crop", "48", "a multiple of 32 (32, 64, ... 192), not '48'"),
                              ("--threads", "0", "--threads takes a whole number >= 1, not '0'"),
                              ("--max-minutes", "-1", "--max-minutes takes a number > 0, not '-1'")):
        assert main(["finetune", "--from", "default", "--data", str(tmp_path), "--out", str(tmp_path / "w"),
                     flag, value]) == 2
        assert said in capsys.readouterr().out


def test_show_plates_are_read_as_matte_reads_them(tmp_path, capsys) -> None:
    # --colour auto (the default): a float EXR is scene-linear, an 8-bit PNG sRGB; both reach the
    # networks display-encoded. Linear 0.2140 is sRGB 0.5.
    from core.io import write_image
    from core.training.data import ShowDataset

    for name, ext in (("lin", "exr"), ("disp", "png")):
        value = 0.2140 if ext == "exr" else 0.5
        write_image(tmp_path / "show" / "image" / f"{name}.{ext}", np.full((40, 40, 3), value, np.float32),
                    ["R", "G", "B"], **({"pixel_type": "float"} if ext == "exr" else {}))
        _write_png(tmp_path / "show" / "alpha" / f"{name}.png", np.full((40, 40), 0.5, np.float32))
    data = ShowDataset(tmp_path / "show", crop=32, cache_dir=None)
    data.check()
    for name in ("lin", "disp"):
        assert np.allclose(data._item(name).image, 0.5, atol=3e-3), name
    # What the bundle records of it: how each plate was read, not only "auto".
    assert data.describe()["colour"] == "auto"
    assert data.describe()["read_as"] == {"srgb": ["disp"], "linear": ["lin"]}
    assert main(["finetune", "--from", "default", "--data", str(tmp_path / "show"), "--out", str(tmp_path / "w"),
                 "--colour", "rec709ish"]) == 2
    assert "--colour rec709ish: unknown colour" in capsys.readouterr().out


def test_a_full_disk_when_the_bundle_is_written_names_it_and_the_same_command_writes_it_later(
        tmp_path, small_bundle, rng, monkeypatch, capsys) -> None:
    import safetensors.torch
    from safetensors import SafetensorError

    import core.training.checkpoint  # noqa: F401  (binds the real save_file before the patch)

    def full_disk(*args, **kwargs) -> None:
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    _show(tmp_path / "show", rng)
    out = tmp_path / "weights" / "show_weights"
    with monkeypatch.context() as patch:
        patch.setattr(safetensors.torch, "save_file", full_disk)  # the bundle's files, not the checkpoints
        assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", out) == 1
    said = capsys.readouterr().out
    assert f"ERROR: cannot write the weights bundle {out}: " in said and "No space left on device" in said
    assert f"the trained networks are kept in {tmp_path / 'run'}: run the same command again" in said
    assert list((tmp_path / "weights").iterdir()) == []  # no half-written bundle, no temporary folder
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", out) == 0
    assert load_bundle(out).manifest["training"]["stages"]["alpha"]["step"] == 1


def test_estimated_layers_are_cached_per_encoding_of_the_plate(tmp_path) -> None:
    # The same EXR read as linear and as sRGB gives two display images: each must get the layers
    # estimated from itself, not those cached for the other.
    from core.io import write_image
    from core.training.data import ShowDataset

    yy, xx = np.mgrid[0:40, 0:40]
    alpha = np.clip((14 - np.hypot(yy - 20, xx - 20)) / 5, 0, 1).astype(np.float32)
    plate = np.where(alpha[..., None] > 0.5, [1.8, 0.9, 0.2], [0.05, 0.2, 0.6]).astype(np.float32)
    write_image(tmp_path / "show" / "image" / "sh.exr", plate, ["R", "G", "B"], pixel_type="float")
    _write_png(tmp_path / "show" / "alpha" / "sh.png", alpha)
    cache = tmp_path / "cache"
    linear = ShowDataset(tmp_path / "show", crop=32, colour="linear", cache_dir=cache)._item("sh")
    srgb = ShowDataset(tmp_path / "show", crop=32, colour="srgb", cache_dir=cache)._item("sh")
    fresh = ShowDataset(tmp_path / "show", crop=32, colour="srgb", cache_dir=None)._item("sh")
    assert not np.allclose(linear.image, srgb.image, atol=0.05)
    np.testing.assert_allclose(srgb.bg, fresh.bg, atol=1e-6)
    np.testing.assert_allclose(srgb.fg, fresh.fg, atol=1e-6)


def test_an_rgba_matte_is_read_as_evaluate_reads_it(tmp_path, rng) -> None:
    # A grey matte saved as an opaque RGBA PNG (A = 1 everywhere): the matte is in the colour.
    # Fine-tuning trained on the constant A (all foreground) while evaluate scored the colour.
    from core.evaluate import _read_alpha
    from core.training.data import ShowDataset

    _show(tmp_path / "show", rng)
    grey = tmp_path / "show" / "alpha" / "shot010.png"
    buf = oiio.ImageBuf(str(grey))
    matte = buf.get_pixels(oiio.FLOAT)[..., 0]
    _write_png(grey, np.dstack([matte, matte, matte, np.ones_like(matte)]))
    assert oiio.ImageBuf(str(grey)).nchannels == 4
    data = ShowDataset(tmp_path / "show", crop=32, cache_dir=None)
    np.testing.assert_allclose(data._item("shot010").alpha, _read_alpha(grey), atol=1.5 / 1024)
    assert 0.2 < float(data._item("shot010").alpha.mean()) < 0.8



@pytest.mark.parametrize("ext", [".exr", ".tif"])
def test_float_mattes_and_trimaps_saved_0_to_255_are_read_as_evaluate_reads_them(tmp_path, rng, caplog, ext) -> None:
    # A float matte holding 0..255 was clipped to 1 wherever it was not 0 (an edge of 1/255 read as
    # opaque), and the networks learnt that without a word; a float trimap 0/128/255 was refused
    # naming no file. lbsmatte evaluate divides both by 255, saying so, and so does a fine-tune now.
    import logging

    from core.errors import InputError
    from core.evaluate import _read_alpha
    from core.io import read_image, write_image
    from core.training.data import ShowDataset

    _show(tmp_path / "show", rng)
    png = tmp_path / "show" / "alpha" / "shot010.png"
    alpha8 = read_image(png).pixels[..., 0]
    png.unlink()
    matte = tmp_path / "show" / "alpha" / f"shot010{ext}"
    write_image(matte, np.round(alpha8 * 255), ["Y"], pixel_type="float")
    trimap = tmp_path / "show" / "trimap" / f"shot010{ext}"
    trimap.parent.mkdir()
    known = np.where(alpha8 >= 1, 255.0, 0.0)
    write_image(trimap, np.where((alpha8 > 0) & (alpha8 < 1), 128.0, known), ["Y"], pixel_type="float")
    assert read_image(matte).info.is_float and float(read_image(matte).pixels.max()) == 255
    with caplog.at_level(logging.WARNING):
        item = ShowDataset(tmp_path / "show", crop=32, cache_dir=None)._item("shot010")
    np.testing.assert_allclose(item.alpha, alpha8, atol=1.5 / 1024)
    np.testing.assert_allclose(item.alpha, _read_alpha(matte), atol=1.5 / 1024)
    assert 0.2 < float(item.alpha.mean()) < 0.8
    assert len(item.trimaps) == 1 and set(np.unique(item.trimaps[0])) == {0.0, 0.5, 1.0}
    said = [r.getMessage() for r in caplog.records]
    assert any(str(matte) in m and "divided by 255" in m for m in said), said
    assert any(str(trimap) in m and "divided by 255" in m for m in said), said
    # Past 255 it is neither scale: refused, naming the file and the value.
    write_image(matte, np.round(alpha8 * 1000), ["Y"], pixel_type="float")
    with pytest.raises(InputError, match=rf"shot010\{ext}: the matte holds values up to 1000"):
        ShowDataset(tmp_path / "show", crop=32, cache_dir=None).check()

def test_mattes_of_one_value_are_left_out_and_a_set_of_only_those_is_refused(tmp_path, small_bundle, rng, capsys,
                                                                            caplog) -> None:
    # All-0 / all-1 mattes have no edge: no unknown pixel, nothing for the losses. A set of only
    # those wrote a "fine-tuned" bundle, exit 0, that had learnt nothing.
    _show(tmp_path / "show", rng)
    _write_png(tmp_path / "show" / "alpha" / "shot010.png", np.zeros((48, 64), np.float32))
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w") == 0
    assert "1 matte(s) in" in caplog.text and "not trained on: shot010 (all 0)" in caplog.text
    assert load_bundle(tmp_path / "w").manifest["training"]["data"]["plates"] == ["shot020"]
    _write_png(tmp_path / "show" / "alpha" / "shot020.png", np.ones((48, 64), np.float32))
    capsys.readouterr()
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w2", "--run-dir",
                     str(tmp_path / "run2")) == 2
    said = capsys.readouterr().out
    assert "every matte in" in said and "is all 0 or all 1" in said
    assert f"{tmp_path / 'show' / 'alpha' / 'shot010.png'} (all 0)" in said
    assert f"{tmp_path / 'show' / 'alpha' / 'shot020.png'} (all 1)" in said
    assert not (tmp_path / "w2").exists() and not (tmp_path / "run2").exists()




def test_layers_cached_for_a_0_to_255_matte_read_clipped_are_estimated_again(tmp_path, rng) -> None:
    # The colours estimated for a plate are cached by its files' contents: those estimated while a
    # float matte holding 0..255 was read clipped to 1 would have been taken again for it now.
    from core.io import read_image, write_image
    from core.training.data import ShowDataset, _file_key

    _show(tmp_path / "show", rng)
    png = tmp_path / "show" / "alpha" / "shot010.png"
    alpha8 = read_image(png).pixels[..., 0]
    png.unlink()
    matte = tmp_path / "show" / "alpha" / "shot010.exr"
    write_image(matte, np.round(alpha8 * 255), ["Y"], pixel_type="float")
    cache = tmp_path / "cache"
    cache.mkdir()
    stale = _file_key(tmp_path / "show" / "image" / "shot010.png", matte, salt="srgb")  # the key they had
    for layer in ("fg", "bg"):
        np.save(cache / f"{stale}_{layer}.npy", np.zeros((48, 64, 3), np.float32))
    cached = ShowDataset(tmp_path / "show", crop=32, cache_dir=cache)._item("shot010")
    fresh = ShowDataset(tmp_path / "show", crop=32, cache_dir=None)._item("shot010")
    np.testing.assert_allclose(cached.fg, fresh.fg, atol=1e-6)
    np.testing.assert_allclose(cached.bg, fresh.bg, atol=1e-6)
    assert float(fresh.bg.max()) > 0.1

def test_a_trimap_with_no_unknown_pixel_is_refused_by_name_before_training(tmp_path, small_bundle, rng, capsys) -> None:
    # The losses are taken over the trimap's unknown region: a plate's own trimap with none (a roto,
    # or a 0/1/2 label map saved 8-bit, given as the trimap) made every loss 0, and a bundle that had
    # learnt nothing was written, exit 0, as fine-tuned.
    _show(tmp_path / "show", rng)
    for name in ("shot010", "shot020"):
        alpha = oiio.ImageBuf(str(tmp_path / "show" / "alpha" / f"{name}.png")).get_pixels(oiio.FLOAT)[..., 0]
        _write_png(tmp_path / "show" / "trimap" / f"{name}.png", np.where(alpha > 0, 1 / 255, 0.0))  # labels 0/1
    code = _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w")
    said = capsys.readouterr().out
    assert code == 2, said
    assert f"ERROR: {tmp_path / 'show' / 'trimap' / 'shot010.png'}: the trimap has no unknown pixel" in said
    assert not (tmp_path / "w").exists()
    # A matte all 0 with an all-background trimap (the object out of frame) is still only left out.
    _write_png(tmp_path / "show" / "alpha" / "shot010.png", np.zeros((48, 64), np.float32))
    _write_png(tmp_path / "show" / "trimap" / "shot010.png", np.zeros((48, 64), np.float32))
    (tmp_path / "show" / "trimap" / "shot020.png").unlink()
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w2", "--run-dir",
                     str(tmp_path / "run2")) == 0
    assert load_bundle(tmp_path / "w2").manifest["training"]["data"]["plates"] == ["shot020"]

def test_output_folders_that_cannot_be_written_or_lie_in_the_data_are_refused_before_training(
        tmp_path, small_bundle, rng, capsys) -> None:
    # An --out or --run-dir that cannot be created was found only when written: the bundle after
    # the whole training ("File exists: ..."), the checkpoints with a bare "No such file" line.
    _show(tmp_path / "show", rng)
    (tmp_path / "a_file").write_text("mine")
    for out, run, said in ((tmp_path / "a_file" / "w", tmp_path / "run", f"cannot write to {tmp_path / 'a_file'}"),
                           (tmp_path / "w", tmp_path / "a_file" / "run", f"cannot write to {tmp_path / 'a_file' / 'run'}")):
        code = main(["finetune", "--from", str(small_bundle.path), "--data", str(tmp_path / "show"), "--out", str(out),
                     "--steps", "1,1,1", "--crop", "32", "--batch", "2", "--run-dir", str(run), "--no-progress"])
        assert code == 2
        assert said in capsys.readouterr().out
        assert not (tmp_path / "run").exists() and not (tmp_path / "w").exists()
    assert (tmp_path / "a_file").read_text() == "mine"
    # Checkpoints into the show's own folders: refused, the data set left as it was.
    before = sorted(p.name for p in (tmp_path / "show").rglob("*"))
    code = main(["finetune", "--from", str(small_bundle.path), "--data", str(tmp_path / "show"), "--out",
                 str(tmp_path / "w"), "--steps", "1,1,1", "--crop", "32", "--batch", "2", "--run-dir",
                 str(tmp_path / "show" / "image"), "--no-progress"])
    assert code == 2
    assert "overlap: the run's checkpoints" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "show").rglob("*")) == before and not (tmp_path / "w").exists()


def test_a_name_another_bundle_has_is_refused_before_training(tmp_path, small_bundle, rng, capsys,
                                                             monkeypatch) -> None:
    # Bundles are picked by name, the first found winning: a fine-tune named like the user's own
    # bundle took its place under --weights NAME (or, named default, could never be picked).
    import shutil

    from core.weights import find_bundles

    _show(tmp_path / "show", rng)
    shows = tmp_path / "weights"
    shutil.copytree(small_bundle.path, shows / "zz_mine")  # its manifest names it small-test
    monkeypatch.setenv("LBSMATTE_WEIGHTS_PATH", str(shows))
    before = {p.name: p.read_bytes() for p in (shows / "zz_mine").iterdir()}
    for extra, clash in ((["--name", "small-test"], "small-test"), (["--name", "default"], "default")):
        assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", shows / "aa_new", *extra) == 2
        assert f"a weights bundle named {clash!r} already exists" in capsys.readouterr().out
        assert not (shows / "aa_new").exists() and not (tmp_path / "run").exists()
    assert {p.name: p.read_bytes() for p in (shows / "zz_mine").iterdir()} == before
    assert [b.path.name for b in find_bundles() if b.name == "small-test"] == ["zz_mine"]
    # Its own name at its own --out, replaced with --overwrite, is no clash.
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", shows / "v1") == 0
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", shows / "v1", "--overwrite") == 0


def test_a_cache_that_cannot_be_written_does_not_stop_a_fine_tune(tmp_path, rng, caplog) -> None:
    # The estimated colours are cached beside the code; in a read-only install writing them raised
    # "Permission denied: .../.cache/fg/<key>_fg.npy" and the fine-tune ended before its first step.
    from core.training.data import ShowDataset

    _show(tmp_path / "show", rng)
    (tmp_path / "read_only").write_text("a file where the cache folder would be")
    data = ShowDataset(tmp_path / "show", crop=32, cache_dir=tmp_path / "read_only" / "fg")
    data.check()
    fresh = ShowDataset(tmp_path / "show", crop=32, cache_dir=None)._item("shot010")
    np.testing.assert_allclose(data._item("shot010").fg, fresh.fg, atol=1e-6)
    assert "cannot cache estimated colours in" in caplog.text


def test_a_grey_plate_with_alpha_is_read_as_matte_reads_it(tmp_path, rng) -> None:
    # A grey+alpha PNG plate (Y, A) was cut to its first three channels (two): check() passed and
    # the first batch raised an IndexError.
    from core.io import read_image
    from core.training.data import ShowDataset

    _show(tmp_path / "show", rng)
    plate = tmp_path / "show" / "image" / "shot010.png"
    grey = oiio.ImageBuf(str(plate)).get_pixels(oiio.FLOAT).mean(axis=2)
    _write_png(plate, np.dstack([grey, np.ones_like(grey)]))
    assert read_image(plate).channels == ["Y", "A"]
    data = ShowDataset(tmp_path / "show", crop=32, cache_dir=None, names=["shot010"])
    data.check()
    np.testing.assert_allclose(data._item("shot010").image, read_image(plate).rgb(), atol=1e-6)
    assert data.sample(2)["image"].shape == (2, 3, 32, 32)



def test_a_plate_of_several_colour_layers_is_refused_saying_what_a_fine_tune_can_do(tmp_path, rng) -> None:
    # lbsmatte matte's refusal told the compositor to name the layer with --plate-layer, which a
    # fine-tune does not take.
    from core.errors import InputError
    from core.io import write_image
    from core.training.data import ShowDataset

    _show(tmp_path / "show", rng)
    plate = tmp_path / "show" / "image" / "shot010.png"
    plate.unlink()
    write_image(plate.with_suffix(".exr"), rng.random((48, 64, 6), dtype=np.float32),
                ["beauty.R", "beauty.G", "beauty.B", "diffuse.R", "diffuse.G", "diffuse.B"])
    data = ShowDataset(tmp_path / "show", crop=32, cache_dir=None)
    with pytest.raises(InputError, match=r"shot010\.exr: no R, G, B channels and colour in several layers "
                                         r"\(beauty, diffuse\).*Shuffle") as caught:
        data.check()
    assert "--plate-layer" not in str(caught.value)


def test_a_foreground_cut_out_with_straight_alpha_trains_on_its_stored_colour(tmp_path, rng) -> None:
    # fg/NAME.png saved as a cut-out with its alpha (RGBA PNG: straight colour). It was read
    # premultiplied by that alpha, so the FG network's target in the band was F·α, darker, and
    # 0 where the cut-out is transparent: a show's fine-tune taught it to darken edges.
    from core.io import read_image, write_image
    from core.training.data import ShowDataset

    _show(tmp_path / "show", rng)
    alpha = read_image(tmp_path / "show" / "alpha" / "shot010.png").pixels[..., 0]
    assert ((alpha > 0) & (alpha < 1)).any()
    colour = np.broadcast_to(np.array([0.8, 0.4, 0.2], np.float32), alpha.shape + (3,))
    write_image(tmp_path / "show" / "fg" / "shot010.png", np.dstack([colour, alpha]), ["R", "G", "B", "A"],
                unassociated_alpha=True)
    fg = ShowDataset(tmp_path / "show", crop=32, cache_dir=None)._item("shot010").fg
    np.testing.assert_allclose(fg, np.round(colour * 255) / 255, atol=1e-6)


def test_layers_cached_from_a_plate_read_premultiplied_are_not_reused(tmp_path, rng) -> None:
    # A PNG plate with alpha was read premultiplied by it, and its estimated F and B cached under
    # a key of the files and the encoding; read as stored now, the same key served the layers of
    # the darker colours.
    from core.io import read_image, write_image
    from core.training.data import ShowDataset, _file_key

    _show(tmp_path / "show", rng)
    plate = tmp_path / "show" / "image" / "shot010.png"
    colour = read_image(plate).rgb()
    write_image(plate, np.dstack([colour, np.full(colour.shape[:2], 0.5, np.float32)]), ["R", "G", "B", "A"],
                unassociated_alpha=True)
    cache = tmp_path / "cache"
    old = _file_key(plate, tmp_path / "show" / "alpha" / "shot010.png", salt="srgb")
    cache.mkdir()
    for layer in ("fg", "bg"):  # what the earlier reading left there: the layers of F·alpha
        np.save(cache / f"{old}_{layer}.npy", np.zeros(colour.shape, np.float32))
    item = ShowDataset(tmp_path / "show", crop=32, cache_dir=cache)._item("shot010")
    fresh = ShowDataset(tmp_path / "show", crop=32, cache_dir=None)._item("shot010")
    np.testing.assert_allclose(item.image, colour, atol=1e-6)
    np.testing.assert_allclose(item.fg, fresh.fg, atol=1e-6)
    np.testing.assert_allclose(item.bg, fresh.bg, atol=1e-6)


def test_a_foreground_or_background_file_of_another_size_is_refused_by_name(tmp_path, rng) -> None:
    # fg/ and bg/ files were cut at the plate's positions whatever their size: misaligned layers,
    # silently, where a matte of another size is refused.
    import pytest

    from core.errors import InputError
    from core.training.data import ShowDataset

    _show(tmp_path / "show", rng)
    _write_png(tmp_path / "show" / "fg" / "shot010.png", np.full((24, 32, 3), 0.5, np.float32))
    _write_png(tmp_path / "show" / "bg" / "shot010.png", np.full((48, 64, 3), 0.5, np.float32))
    data = ShowDataset(tmp_path / "show", crop=32, cache_dir=None)
    with pytest.raises(InputError, match=r"fg/shot010\.png is 32×24 but .*image/shot010\.png is 64×48"):
        data.check()


def test_decoded_plates_are_kept_within_a_memory_budget(tmp_path, rng) -> None:
    # Every plate read was kept for the whole run (about 100 MB a 2K plate with its F, B and matte,
    # in each worker process too): a show's few hundred frames outgrew the machine's memory.
    from core.training.data import ShowDataset

    _show(tmp_path / "show", rng)
    for name in ("shot030", "shot040"):
        for folder in ("image", "alpha"):
            source = tmp_path / "show" / folder / "shot010.png"
            (tmp_path / "show" / folder / f"{name}.png").write_bytes(source.read_bytes())
    everything = ShowDataset(tmp_path / "show", crop=32, seed=3, cache_dir=tmp_path / "cache")
    everything.check()
    one_plate = everything._item("shot010").nbytes
    bounded = ShowDataset(tmp_path / "show", crop=32, seed=3, cache_dir=tmp_path / "cache", max_bytes=one_plate)
    bounded.check()
    assert len(everything._items) == 4 and len(bounded._items) == 1
    for _ in range(3):  # plates evicted are read again, to the same crops
        a, b = everything.sample(4), bounded.sample(4)
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert len(bounded._items) == 1


def test_cached_colours_are_readable_by_other_users_and_an_unreadable_entry_is_estimated_again(
        tmp_path, monkeypatch) -> None:
    # The cache files were 0600 (mkstemp): in a studio's shared install the next user's fine-tune
    # stopped on "Permission denied" reading them.
    import os
    import stat

    from core.io import _umask
    from core.training import data

    image = np.random.default_rng(1).random((16, 16, 3), dtype=np.float32)
    alpha = np.clip(np.linspace(-0.5, 1.5, 16, dtype=np.float32)[None].repeat(16, 0), 0, 1)
    fg, bg = data.estimate_layers(image, alpha, key="k", cache_dir=tmp_path)
    for name in ("k_fg.npy", "k_bg.npy"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~_umask()

    def unreadable(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(data.np, "load", unreadable)
    again_fg, again_bg = data.estimate_layers(image, alpha, key="k", cache_dir=tmp_path)
    np.testing.assert_allclose(again_fg, fg, atol=1e-6)
    np.testing.assert_allclose(again_bg, bg, atol=1e-6)


@pytest.mark.parametrize(("flag", "value"), [("real_photos", 1.5), ("wide_trimaps", -0.5), ("wide_trimaps", 1.01)])
def test_a_fraction_out_of_range_is_named_before_a_continuation_is_compared(flag, value) -> None:
    # A continuation compares the recipe with the recorded one: a bad fraction must be named as
    # such there, not reported as "the checkpoints of another run".
    import argparse
    import types

    from core.errors import InputError
    from core.training.cli import _recipe

    values = {"real_photos": 0.0, "wide_trimaps": 0.0, flag: value}
    args = argparse.Namespace(command="train", hold_out=None, rendered=None, procedural=0.5, **values)
    with pytest.raises(InputError, match=f"--{flag.replace('_', '-')} must be between 0 and 1, not {value}"):
        _recipe(args, None, types.SimpleNamespace(size="small"))


def test_a_name_that_would_escape_its_folder_is_refused_by_name_before_training(tmp_path, small_bundle, rng, capsys,
                                                                                monkeypatch) -> None:
    # Without --run-dir the checkpoints go to runs/<name>: '--name ../../x' put them outside runs/.
    _show(tmp_path / "show", rng)
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code = main(["finetune", "--from", str(small_bundle.path), "--data", str(tmp_path / "show"), "--out",
                 str(tmp_path / "out"), "--name", "../../escaped", "--steps", "1,1,1", "--no-progress"])
    assert code == 2
    assert ("ERROR: --name: '../../escaped' cannot be a weights bundle name: it begins with '.'"
            in capsys.readouterr().out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "show"] and list(work.iterdir()) == []
    # The --out folder's name is the name when there is no --name: the same rule, said of it.
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "none") == 2
    assert f"the --out folder name of {tmp_path / 'none'}: 'none' cannot be a weights bundle name" in capsys.readouterr().out
    # A hidden --out under another --name: written, but never found in a folder of bundles.
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / ".abc", "--name", "abc") == 2
    assert f"--out {tmp_path / '.abc'}: a folder whose name begins with '.' is hidden" in capsys.readouterr().out
    assert not (tmp_path / ".abc").exists() and not (tmp_path / "run").exists()


def test_the_packaged_bundles_are_never_written_even_with_overwrite(tmp_path, small_bundle, rng, capsys,
                                                                    monkeypatch) -> None:
    import shutil

    import core.weights

    packaged = tmp_path / "package" / "bundles" / "default"
    shutil.copytree(small_bundle.path, packaged)
    monkeypatch.setattr(core.weights, "default_bundle_path", lambda: packaged)
    before = {p.name: p.read_bytes() for p in packaged.iterdir()}
    _show(tmp_path / "show", rng)
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", packaged, "--name", "default", "--overwrite") == 2
    assert f"refusing to write {packaged}: it is inside LBSMatte's packaged bundles" in capsys.readouterr().out
    code = main(["finetune", "--from", str(small_bundle.path), "--data", str(tmp_path / "show"), "--out",
                 str(tmp_path / "mine"), "--run-dir", str(packaged / "run"), "--steps", "1,1,1", "--no-progress"])
    assert code == 2
    assert f"refusing to write {packaged / 'run'}: it is inside LBSMatte's packaged bundles" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in packaged.iterdir()} == before
    assert not (tmp_path / "run").exists() and not (tmp_path / "mine").exists()


def test_files_the_operating_system_leaves_in_the_data_are_passed_over(tmp_path, rng) -> None:
    # A show folder browsed on a Mac or in Windows Explorer: .DS_Store, ._NAME resource forks and
    # Thumbs.db in image/ and alpha/ alike paired up as plates, and the fine-tune stopped failing
    # to read them as images; a viewer's hidden trimap/.thumbnails/ was read as a trimap variant.
    from core.training.data import ShowDataset

    _show(tmp_path / "show", rng)
    for folder in ("image", "alpha"):
        for junk in (".DS_Store", "._shot010.png", "Thumbs.db", "desktop.ini"):
            (tmp_path / "show" / folder / junk).write_bytes(b"\0\5\26\7 not an image")
    (tmp_path / "show" / "trimap" / ".thumbnails").mkdir(parents=True)
    (tmp_path / "show" / "trimap" / ".thumbnails" / "shot010.png").write_bytes(b"not an image")
    data = ShowDataset(tmp_path / "show", crop=32, cache_dir=None)
    assert data.names == ["shot010", "shot020"] and data.unmatched == []
    data.check()
    assert data._item("shot010").trimaps == []


def test_mattes_named_otherwise_than_their_plates_are_refused_naming_both(tmp_path, rng) -> None:
    # alpha/shot010_matte.png beside image/shot010.png: the refusal named only the two folders,
    # not what in them fails to pair up.
    from core.errors import InputError
    from core.training.data import ShowDataset

    _show(tmp_path / "show", rng)
    for matte in sorted((tmp_path / "show" / "alpha").iterdir()):
        matte.rename(matte.with_name(matte.stem + "_matte.png"))
    with pytest.raises(InputError) as caught:
        ShowDataset(tmp_path / "show", crop=32, cache_dir=None)
    said = str(caught.value)
    assert "(the plates: shot010.png, shot020.png; the mattes: shot010_matte.png, shot020_matte.png)" in said
    assert "name each matte as its plate" in said
    for i in range(3, 9):
        _write_png(tmp_path / "show" / "image" / f"shot0{i}0.png", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(InputError, match="the plates: shot010.png, shot020.png, shot030.png, shot040.png and 4 more;"):
        ShowDataset(tmp_path / "show", crop=32, cache_dir=None)


def test_the_bundle_records_the_data_folder_whole_when_given_relative(tmp_path, small_bundle, rng, monkeypatch,
                                                                      capsys) -> None:
    # '--data show' from the show's folder: the manifest said the data was 'show', and the
    # description 'fine-tuned from ... on show', whichever folder the bundle was later used from.
    _show(tmp_path / "show", rng)
    monkeypatch.chdir(tmp_path)
    assert _finetune(tmp_path, small_bundle.path, "show", tmp_path / "w") == 0
    manifest = load_bundle(tmp_path / "w").manifest
    assert manifest["training"]["data"]["show_data"] == str(tmp_path.resolve() / "show")
    assert manifest["training"]["data"]["folder"] == str(tmp_path.resolve() / "show")
    assert manifest["training"]["data"]["read_as"] == {"srgb": ["shot010", "shot020"]}
    assert manifest["description"] == f"fine-tuned from {small_bundle.name} on {tmp_path.resolve() / 'show'}"
    # A file given as --data is named as one, not as missing.
    capsys.readouterr()
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show" / "image" / "shot010.png", tmp_path / "w2",
                     "--run-dir", str(tmp_path / "run2")) == 2
    assert f"fine-tuning data folder {tmp_path / 'show' / 'image' / 'shot010.png'} is a file, not a folder" in \
        capsys.readouterr().out


def test_an_out_that_is_a_file_or_another_folder_is_named_as_such_without_overwrite(tmp_path, small_bundle, rng,
                                                                                    capsys) -> None:
    # Without --overwrite these were told "pass --overwrite to replace it", which was refused then.
    _show(tmp_path / "show", rng)
    (tmp_path / "notes.txt").write_text("mine")
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "notes.txt") == 2
    said = capsys.readouterr().out
    assert f"cannot write a weights bundle to {tmp_path / 'notes.txt'}: it exists and is not a folder" in said
    assert "--overwrite" not in said
    (tmp_path / "shots").mkdir()
    (tmp_path / "shots" / "todo.txt").write_text("mine")
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "shots") == 2
    said = capsys.readouterr().out
    assert f"refusing to replace {tmp_path / 'shots'}: it is not a weights bundle" in said and "--overwrite" not in said
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "shots" / "todo.txt").read_text() == "mine"


def test_checkpoints_of_a_data_set_changed_since_are_not_continued(tmp_path, small_bundle, rng, capsys) -> None:
    # Plates added to the data folder (or a matte fixed) and the same command run again with
    # --overwrite: the finished checkpoints were written out at once as the new bundle, whose
    # manifest listed the new plates that its networks had never seen.
    _show(tmp_path / "show", rng)
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w") == 0
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--overwrite") == 0  # unchanged
    capsys.readouterr()
    h, w = 48, 64
    _write_png(tmp_path / "show" / "image" / "shot030.png", rng.random((h, w, 3), dtype=np.float32))
    _write_png(tmp_path / "show" / "alpha" / "shot030.png", rng.random((h, w), dtype=np.float32))
    _write_png(tmp_path / "show" / "alpha" / "shot010.png", rng.random((h, w), dtype=np.float32))
    before = (tmp_path / "w" / "manifest.json").read_bytes()
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--overwrite") == 2
    said = capsys.readouterr().out
    assert (f"{tmp_path / 'run'} holds the checkpoints of another run (files of the data set since the checkpoints "
            "were made: added alpha/shot030.png, image/shot030.png; changed alpha/shot010.png)") in said
    assert (tmp_path / "w" / "manifest.json").read_bytes() == before
    assert load_bundle(tmp_path / "w").manifest["training"]["data"]["plates"] == ["shot010", "shot020"]


def test_the_checkpoints_never_replace_a_bundles_network_files(tmp_path, small_bundle, rng, capsys,
                                                               monkeypatch) -> None:
    # 'lbsmatte train --out runs/base', then 'finetune --from runs/base --out .../base': the run
    # folder runs/base was the --from bundle, whose network files the checkpoints replaced (its
    # checksums then failed: the bundle was lost). The same for --run-dir naming any bundle.
    import shutil

    _show(tmp_path / "show", rng)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(small_bundle.path, tmp_path / "runs" / "base")
    before = {p.name: p.read_bytes() for p in (tmp_path / "runs" / "base").iterdir()}
    code = main(["finetune", "--from", "runs/base", "--data", "show", "--out", str(tmp_path / "weights" / "base"),
                 "--steps", "1", "--crop", "32", "--batch", "2", "--no-progress"])
    assert code == 2
    said = capsys.readouterr().out
    assert f"the checkpoints' folder {Path('runs') / 'base'} holds a manifest.json, a weights bundle's folder" in said
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--run-dir",
                     str(tmp_path / "runs" / "base")) == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "runs" / "base").iterdir()} == before
    assert not (tmp_path / "weights").exists()


def test_a_continued_fine_tune_records_the_seed_its_batches_were_drawn_from(tmp_path, small_bundle, rng) -> None:
    # The batches of a continued run go on from the random state of the checkpoint, which the
    # first run's --seed began: the manifest named the seed the continuation made for itself
    # (--seed + 7919 x the steps done), which drew nothing.
    _show(tmp_path / "show", rng)
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--seed", "5") == 0
    assert load_bundle(tmp_path / "w").manifest["training"]["data"]["seed"] == 5
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--seed", "5", "--steps", "2",
                     "--overwrite") == 0
    data = load_bundle(tmp_path / "w").manifest["training"]["data"]
    assert data["seed"] == 5


def test_a_plate_linked_onto_a_share_that_cannot_be_reached_is_refused_by_name(tmp_path, small_bundle, rng,
                                                                               capsys) -> None:
    # A data set of links onto the show's share, run where the share is not mounted: the dangling
    # link was passed over as "not a file", its matte only warned of as having no plate, and the
    # fine-tune trained on the rest and wrote a bundle without a word about the missing plate.
    import os

    _show(tmp_path / "show", rng)
    os.symlink(tmp_path / "share" / "sh030_plate_v003.1001.exr", tmp_path / "show" / "image" / "shot030.exr")
    _write_png(tmp_path / "show" / "alpha" / "shot030.png", np.zeros((48, 64), np.float32))
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w") == 2
    said = capsys.readouterr().out
    assert (f"ERROR: {tmp_path / 'show' / 'image' / 'shot030.exr'} is a link to "
            f"{tmp_path / 'share' / 'sh030_plate_v003.1001.exr'}, which cannot be reached") in said
    assert not (tmp_path / "w").exists() and not (tmp_path / "run" / "background.json").exists()
    # Reached again (the share mounted), the link is a plate like any other.
    (tmp_path / "share").mkdir()
    _write_png(tmp_path / "share" / "sh030_plate_v003.1001.png", rng.random((48, 64, 3), dtype=np.float32))
    (tmp_path / "share" / "sh030_plate_v003.1001.png").rename(tmp_path / "share" / "sh030_plate_v003.1001.exr")
    from core.training.data import ShowDataset

    assert ShowDataset(tmp_path / "show", crop=32, cache_dir=None).names == ["shot010", "shot020", "shot030"]


def test_a_data_set_laid_out_otherwise_is_told_what_it_lacks_and_holds(tmp_path, rng, small_bundle, capsys,
                                                                       caplog) -> None:
    # Every layout that was not image/ + alpha/ got "must hold image/ and alpha/ folders": the
    # plates with the matte in their own alpha and no alpha/ folder, --data naming image/ itself,
    # a shot's sequence in a folder of its own inside image/ ("the plates: nothing"), whose frames,
    # beside plates that did pair up, were left out without a word.
    from core.errors import InputError
    from core.training.data import ShowDataset

    _show(tmp_path / "show", rng)
    with pytest.raises(InputError) as caught:
        ShowDataset(tmp_path / "show" / "image", crop=32, cache_dir=None)
    assert str(caught.value) == (
        f"{tmp_path / 'show' / 'image'} has no image/ and no alpha/ folder: a fine-tune's data set is a folder "
        "holding image/ (the plates) and alpha/ (their mattes, each named as its plate), optionally trimap/, fg/ "
        f"and bg/ (SPEC §9 layout); it holds no folder: give --data {tmp_path / 'show'}, the folder holding image/ "
        "and alpha/")
    (tmp_path / "show" / "alpha").rename(tmp_path / "show" / "mattes")
    with pytest.raises(InputError, match=r"show has no alpha/ folder: .*; it holds the folders image/, mattes/$"):
        ShowDataset(tmp_path / "show", crop=32, cache_dir=None)
    (tmp_path / "show" / "mattes").rename(tmp_path / "show" / "alpha")
    # A shot's frames in a folder of their own are named, whether or not other plates pair up.
    for sub in ("image", "alpha"):
        (tmp_path / "show" / sub / "sh030").mkdir()
        (tmp_path / "show" / sub / "sh030" / "sh030.1001.png").write_bytes((tmp_path / "show" / sub / "shot010.png")
                                                                            .read_bytes())
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w") == 0
    assert ("2 folder(s) inside image/ or alpha/ are not read, their files not trained on (the plates and mattes "
            "are files directly in image/ and alpha/, a frame a file): "
            f"{tmp_path / 'show' / 'image' / 'sh030'}/, {tmp_path / 'show' / 'alpha' / 'sh030'}/") in caplog.text
    for sub in ("image", "alpha"):
        for plate in ("shot010", "shot020"):
            (tmp_path / "show" / sub / f"{plate}.png").unlink()
    with pytest.raises(InputError) as caught:
        ShowDataset(tmp_path / "show", crop=32, cache_dir=None)
    assert "(the plates: only the folders sh030/; the mattes: only the folders sh030/)" in str(caught.value)
    assert str(caught.value).endswith("the files inside folders there are not read: put the plates and mattes "
                                      "directly in image/ and alpha/, a frame a file (image/sh010.1001.exr)")


def test_a_fine_tune_continues_on_its_data_set_moved_elsewhere_but_not_on_other_files(tmp_path, small_bundle, rng,
                                                                                     capsys, caplog) -> None:
    # The data set copied to a farm node's local disk (or the share mounted at another path there)
    # and the same command run on it: refused as "another run" by the folder's name alone, although
    # every file the checkpoints had learnt from was the same.
    import logging
    import shutil

    tmp_path = tmp_path.resolve()  # as the run records its data folder
    _show(tmp_path / "show", rng)
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w") == 0
    shutil.copytree(tmp_path / "show", tmp_path / "scratch" / "show")
    with caplog.at_level(logging.INFO):
        assert _finetune(tmp_path, small_bundle.path, tmp_path / "scratch" / "show", tmp_path / "w", "--steps", "2,1,1",
                         "--overwrite") == 0
    assert (f"continuing {tmp_path / 'run'} on the data set the checkpoints were made from, now in "
            f"{tmp_path / 'scratch' / 'show'} (was {tmp_path / 'show'}): the same files") in caplog.text
    data = load_bundle(tmp_path / "w").manifest["training"]
    assert data["data"]["show_data"] == str(tmp_path / "scratch" / "show")
    assert data["stages"]["background"]["step"] == 2 and data["stages"]["alpha"]["step"] == 1
    # Moved and changed: refused, naming both.
    _write_png(tmp_path / "show" / "alpha" / "shot010.png", rng.random((48, 64), dtype=np.float32))
    capsys.readouterr()
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--steps", "3,1,1",
                     "--overwrite") == 2
    said = capsys.readouterr().out
    assert f"data {str(tmp_path / 'scratch' / 'show')!r}, now {str(tmp_path / 'show')!r}" in said
    assert "changed alpha/shot010.png" in said


def test_a_fine_tune_records_how_it_read_its_mattes_and_a_run_begun_before_continues_as_it_began(
        tmp_path, small_bundle, rng, capsys, caplog) -> None:
    import logging

    from core.training.data import ALPHA_DUST
    from core.trimap import ALPHA_NOISE

    # A show's keyed mattes carry a haze of 1-5/255: a fine-tune reads it as known (ALPHA_NOISE)
    # where it draws trimaps, and its bundle says so.
    _show(tmp_path / "show", rng)
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w") == 0
    assert load_bundle(tmp_path / "w").manifest["training"]["data"]["alpha_tolerance"] == ALPHA_NOISE
    source = tmp_path / "run" / "source.json"
    assert json.loads(source.read_text())["alpha_tolerance"] == ALPHA_NOISE
    # A run folder begun before the rule was recorded learnt from trimaps read within 1/1024: the
    # same command continues it so, and its bundle and folder say which rule it was.
    record = json.loads(source.read_text())
    del record["alpha_tolerance"]
    source.write_text(json.dumps(record))
    # Asked for another rule, it is refused, naming the one it began with.
    capsys.readouterr()
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--steps", "2,1,1",
                     "--overwrite", "--alpha-tolerance", str(ALPHA_NOISE)) == 2
    assert (f"the checkpoints in {tmp_path / 'run'} drew their trimaps with alpha within {ALPHA_DUST} of 0 or 1 "
            f"counting as known ({source}, begun before the rule was recorded)") in capsys.readouterr().out
    with caplog.at_level(logging.INFO):
        assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--steps", "2,1,1",
                         "--overwrite") == 0
    assert (f"continuing {tmp_path / 'run'} with alpha within 1/1024 of 0 or 1 counting as known where trimaps are "
            "drawn, as it began before the rule was recorded") in caplog.text
    assert load_bundle(tmp_path / "w").manifest["training"]["data"]["alpha_tolerance"] == ALPHA_DUST
    assert json.loads(source.read_text())["alpha_tolerance"] == ALPHA_DUST
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--steps", "3,1,1",
                     "--overwrite") == 0
    assert load_bundle(tmp_path / "w").manifest["training"]["data"]["alpha_tolerance"] == ALPHA_DUST
    # A new run in another folder reads them as a show's.
    assert main(["finetune", "--from", str(small_bundle.path), "--data", str(tmp_path / "show"), "--out",
                 str(tmp_path / "v"), "--steps", "1,1,1", "--crop", "32", "--batch", "2", "--run-dir",
                 str(tmp_path / "run2"), "--no-progress"]) == 0
    assert load_bundle(tmp_path / "v").manifest["training"]["data"]["alpha_tolerance"] == ALPHA_NOISE


def _smoke(folder, rng) -> None:
    """A plate whose matte is a faint veil, alpha 0 to 0.02 (5/255) across the frame: smoke."""
    h, w = 48, 64
    _write_png(folder / "image" / "smoke.png", rng.random((h, w, 3), dtype=np.float32))
    _write_png(folder / "alpha" / "smoke.png", np.broadcast_to(np.linspace(0, 0.02, w, dtype=np.float32), (h, w)))


def test_a_fine_tune_on_faint_veils_keeps_them_with_alpha_tolerance(tmp_path, small_bundle, rng, capsys, caplog) -> None:
    # A CG smoke element's matte, alpha 0.01 at most of a frame: read within 5.5/255 it is all 0,
    # and the plate was left out with nothing saying how to keep it.
    import logging

    from core.trimap import ALPHA_NOISE

    _show(tmp_path / "show", rng)
    _smoke(tmp_path / "show", rng)
    with caplog.at_level(logging.WARNING):
        assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--run-dir",
                         str(tmp_path / "run0")) == 0
    assert "smoke (all 0); alpha within 0.02157 of 0 or 1 counts as 0 or 1" in caplog.text
    assert "--alpha-tolerance 0.0009765625 reads them as they are" in caplog.text
    assert load_bundle(tmp_path / "w").manifest["training"]["data"]["plates"] == ["shot010", "shot020"]
    # --alpha-tolerance 0.001: the veil is unknown, trained on, and the rule recorded.
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "v", "--alpha-tolerance", "0.001") == 0
    data = load_bundle(tmp_path / "v").manifest["training"]["data"]
    assert data["plates"] == ["shot010", "shot020", "smoke"] and data["alpha_tolerance"] == 0.001
    assert json.loads((tmp_path / "run" / "source.json").read_text())["alpha_tolerance"] == 0.001
    # Continued without the flag, the run keeps its rule; with another, it is refused, naming both.
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "v", "--steps", "2,1,1",
                     "--overwrite") == 0
    assert load_bundle(tmp_path / "v").manifest["training"]["data"]["alpha_tolerance"] == 0.001
    capsys.readouterr()
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "v", "--steps", "3,1,1",
                     "--overwrite", "--alpha-tolerance", str(ALPHA_NOISE)) == 2
    said = capsys.readouterr().out
    assert (f"--alpha-tolerance {ALPHA_NOISE}: the checkpoints in {tmp_path / 'run'} drew their trimaps with alpha "
            "within 0.001 of 0 or 1 counting as known") in said
    assert "continue them with --alpha-tolerance 0.001 (or without the flag)" in said
    assert load_bundle(tmp_path / "v").manifest["training"]["stages"]["background"]["step"] == 2


def test_alpha_tolerance_out_of_range_is_a_usage_error_naming_it(tmp_path, capsys) -> None:
    for value in ("0", "0.0005", "0.5", "1", "nan", "inf", "-0.01", "5.5/255"):
        assert main(["finetune", "--from", "default", "--data", str(tmp_path), "--out", str(tmp_path / "w"),
                     "--alpha-tolerance", value]) == 2
        said = capsys.readouterr().out
        assert (f"--alpha-tolerance takes a number from 0.0009765625 (1/1024, the least: mattes are read to within "
                f"it) up to below 0.5, not {value!r}") in said
    assert not (tmp_path / "w").exists()


def test_checkpoints_without_their_source_record_are_continued_only_with_a_named_rule(
        tmp_path, small_bundle, rng, capsys) -> None:
    # A fine-tune's folder holding checkpoints but no source.json (made before LBSMatte wrote one,
    # or copied without it) went on under the new 5.5/255 rule without a word, its earlier steps
    # having learnt from trimaps read within 1/1024.
    from core.training.data import ALPHA_DUST

    _show(tmp_path / "show", rng)
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w") == 0
    (tmp_path / "run" / "source.json").unlink()
    capsys.readouterr()
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--steps", "2,1,1",
                     "--overwrite") == 2
    said = capsys.readouterr().out
    assert f"the checkpoints in {tmp_path / 'run'} have no source.json beside them" in said
    assert ("--alpha-tolerance 0.0009765625 (1/1024) for a run begun before the rule was recorded or "
            "--alpha-tolerance 0.021568627450980392 (5.5/255) for a later one") in said
    assert load_bundle(tmp_path / "w").manifest["training"]["stages"]["background"]["step"] == 1  # untouched
    assert not (tmp_path / "run" / "source.json").exists()
    # Named, the run continues with that rule, and records it for the next continuation.
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--steps", "2,1,1",
                     "--overwrite", "--alpha-tolerance", str(ALPHA_DUST)) == 0
    data = load_bundle(tmp_path / "w").manifest["training"]
    assert data["data"]["alpha_tolerance"] == ALPHA_DUST and data["stages"]["background"]["step"] == 2
    assert json.loads((tmp_path / "run" / "source.json").read_text())["alpha_tolerance"] == ALPHA_DUST
    assert _finetune(tmp_path, small_bundle.path, tmp_path / "show", tmp_path / "w", "--steps", "3,1,1",
                     "--overwrite") == 0
    assert load_bundle(tmp_path / "w").manifest["training"]["data"]["alpha_tolerance"] == ALPHA_DUST
