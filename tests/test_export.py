"""``lbsmatte export``: the saved TorchScript file, loaded with plain ``torch.jit.load`` (no Nuke),
against ``lbsmatte matte`` on a real photograph, on odd sizes, half precision, HDR and NaN pixels
and a trimap with no unknown pixel.

The module runs under ``torch.jit.optimized_execution(False)``: the same values, without the
graph executor's first-calls optimisation (seconds per new input size on this CPU)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from core.cli import main
from core.export import INFO_FILE, NUKE_CHANNELS_OUT, OUTPUT_CHANNELS, read_export_info

#: Mean alpha difference over the unknown region allowed between the module and the pipeline.
#: Measured: 8e-5 on GT01, 1e-5 and 2e-8 on the odd sizes, 6e-5 from half-precision input. At 0.02
#: a module with the wrong levels (white point 0.96 for the bundle's 0.92) or a CG tolerance 30
#: times the bundle's passed as "the same result as lbsmatte matte".
AGREEMENT = 1e-3


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, torch.jit.ScriptModule]:
    path = str(tmp_path_factory.mktemp("export") / "lbsmatte.pt")
    assert main(["export", "--out", path]) == 0
    return path, torch.jit.load(path)


@pytest.fixture(scope="module")
def matter():
    from core.pipeline import Matter

    return Matter("default", "cpu", knn=0)  # the module has no KNN term (knn_left_out)


def _run(module: torch.jit.ScriptModule, plate: np.ndarray, trimap: np.ndarray,
         dtype: torch.dtype = torch.float32) -> np.ndarray:
    """``H×W×7`` float32 out of the module for a plate ``H×W×3`` and a trimap ``H×W``."""
    x = torch.from_numpy(np.concatenate([plate, trimap[..., None]], 2).transpose(2, 0, 1).copy())[None].to(dtype)
    with torch.no_grad(), torch.jit.optimized_execution(False):
        out = module(x)
    assert out.dtype == dtype and tuple(out.shape) == (1, 7, *trimap.shape)
    return out[0].float().numpy().transpose(1, 2, 0)


def _demo(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A crop of the packaged demo example (fur ball over a photograph), scene-linear."""
    from core.colour import to_linear
    from core.demo import load_example

    ex = load_example()
    return to_linear(ex["image"], "srgb")[40 : 40 + h, 150 : 150 + w], ex["trimap"][40 : 40 + h, 150 : 150 + w]


def _check_known(out: np.ndarray, plate: np.ndarray, trimap: np.ndarray) -> None:
    fg, bg = trimap == 1, trimap == 0
    assert np.array_equal(out[..., 0][fg], np.ones(fg.sum())) and np.array_equal(out[..., 0][bg], np.zeros(bg.sum()))
    assert np.array_equal(out[..., 1:4][fg], plate[fg]) and np.array_equal(out[..., 4:7][bg], plate[bg])


def test_the_file_records_what_made_it_and_has_knob_attributes(exported, tmp_path, capsys) -> None:
    path, module = exported
    info = read_export_info(path)
    assert info["torch_version"] == torch.__version__ == module.torch_version
    assert info["weights"].startswith("default sha256:") and info["weights"] == module.weights
    assert info["output"] == list(OUTPUT_CHANNELS) and len(info["nuke_channels_out"]) == 7
    assert info["nuke_channels_out"] == list(NUKE_CHANNELS_OUT)
    extra = {INFO_FILE: ""}
    torch.jit.load(path, _extra_files=extra)  # the record as torch itself reads it
    assert json.loads(extra[INFO_FILE]) == info
    # CatFileCreator makes knobs of int / float attributes.
    # The refinement the bundle records for its networks (chosen by cross-validation).
    from core.weights import load_bundle

    recorded = load_bundle("default").manifest["refinement"]
    assert (module.rounds, module.max_iterations) == (recorded["rounds"], 400)
    assert (module.smoothing, module.confidence_scale) == (recorded["smoothing"], recorded["confidence_scale"])
    assert module.layers_encoded == (recorded.get("layer_space", "solve") == "display")
    assert module.agree_ratio == recorded.get("agree_ratio", 3.0)
    assert module.network_weight == recorded.get("network_weight", 0.0)
    assert (module.black_point, module.white_point) == (recorded.get("black_point", 0.0), recorded.get("white_point", 1.0))
    assert info["knn_left_out"] == recorded.get("knn", 0.0)
    other = tmp_path / "one_round.pt"
    capsys.readouterr()
    assert main(["export", "--out", str(other), "--rounds", "1", "--max-iterations", "50"]) == 0
    # The warning about the KNN term points to a place in docs/nuke.md that exists.
    warned = capsys.readouterr().out
    assert "(docs/nuke.md, 'Export the module': the row 'KNN term')" in warned
    guide = (Path(__file__).parents[1] / "docs" / "nuke.md").read_text(encoding="utf-8")
    assert "### 1. Export the module" in guide and "\n| KNN term | left out" in guide
    assert (torch.jit.load(str(other)).rounds, read_export_info(other)["knobs"]["max_iterations"]) == (1, 50)
    import zipfile

    # The archive's folder is torch's "archive", not the temporary file's name it was written under.
    assert {name.split("/")[0] for name in zipfile.ZipFile(other).namelist()} == {"archive"}
    assert main(["export", "--out", str(tmp_path / "x.pt"), "--rounds", "-1"]) == 2


def test_it_agrees_with_lbsmatte_matte_on_a_real_photograph(exported, tmp_path) -> None:
    """GT01 of alphamatting.com at half size, scene-linear EXR through ``lbsmatte matte``."""
    from core.colour import to_linear
    from core.io import read_image, write_image
    from core.training.data import default_data_root

    root = default_data_root() / "alphamatting"
    if not (root / "image" / "GT01.png").is_file():
        pytest.skip(f"the alphamatting.com photographs are not in {root}")
    image = to_linear(read_image(root / "image" / "GT01.png").rgb(), "srgb")
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    plate = image[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean((1, 3)).astype(np.float32)
    trimap = read_image(root / "trimap" / "Trimap1" / "GT01.png").pixels[:h:2, :w:2, 0]
    trimap = np.where(trimap < 0.1, 0.0, np.where(trimap > 0.9, 1.0, 0.5)).astype(np.float32)
    write_image(tmp_path / "plate.exr", plate, ["R", "G", "B"], pixel_type="float")
    write_image(tmp_path / "trimap.exr", trimap[..., None], ["Y"], pixel_type="float")
    assert main(["matte", "--plate", str(tmp_path / "plate.exr"), "--trimap", str(tmp_path / "trimap.exr"),
                 "--out", str(tmp_path / "out.exr"), "--colour", "linear", "--knn", "0", "--no-progress"]) == 0
    result = read_image(tmp_path / "out.exr")
    alpha = result.pixels[..., result.channels.index("A")]
    out = _run(exported[1], plate, trimap)
    unknown = trimap == 0.5
    difference = float(np.abs(out[..., 0] - alpha)[unknown].mean())
    print(f"GT01 at {w // 2}x{h // 2}: mean |alpha difference| over {unknown.sum()} unknown px = {difference:.2e}")
    assert difference < AGREEMENT
    _check_known(out, plate, trimap)
    assert np.array_equal(out[..., 0][~unknown], alpha[~unknown])


@pytest.mark.parametrize("size", [(37, 53), (61, 127)])
def test_odd_sizes_are_padded_inside(exported, matter, size) -> None:
    plate, trimap = _demo(*size)
    assert (trimap == 0.5).any()
    out = _run(exported[1], plate, trimap)
    ref = matter.matte(plate, trimap, colour="linear")
    unknown = trimap == 0.5
    assert float(np.abs(out[..., 0] - ref.alpha)[unknown].mean()) < AGREEMENT
    assert np.abs(out[..., 1:4] - ref.fg).max() < 0.05 and np.abs(out[..., 4:7] - ref.bg).max() < 0.05
    _check_known(out, plate, trimap)


def test_half_precision_input_gives_half_output_close_to_full(exported) -> None:
    plate, trimap = _demo(96, 120)
    full = _run(exported[1], plate, trimap)
    half = _run(exported[1], plate, trimap, torch.float16)
    unknown = trimap == 0.5
    assert np.isfinite(half).all()
    assert float(np.abs(half[..., 0] - full[..., 0])[unknown].mean()) < AGREEMENT
    assert np.array_equal(half[..., 0][~unknown], full[..., 0][~unknown])  # 0 and 1 are exact in half


def test_hdr_values_pass_through_and_nan_inf_never_come_out(exported) -> None:
    plate, trimap = _demo(80, 100)
    plate = plate * 40.0  # a bright plate: values far above 1
    plate[0, 0] = [1e5, -2.0, 3.0]  # over half's range, and negative, in known background
    plate[5, 7] = [np.nan, np.inf, -np.inf]
    trimap = trimap.copy()
    trimap[0, 0] = 0.0
    out = _run(exported[1], plate, trimap)
    assert np.isfinite(out).all()
    assert np.array_equal(out[0, 0, 4:7], plate[0, 0])  # the plate's own values, not clipped
    finite = np.isfinite(plate).all(2)
    _check_known(out, np.where(finite[..., None], plate, out[..., 1:4] * (trimap == 1)[..., None]
                               + out[..., 4:7] * (trimap == 0)[..., None]), trimap)
    # Linear light, exact agreement: alpha F + (1 - alpha) B is the plate over the unknown region.
    unknown = (trimap == 0.5) & finite
    a = out[..., :1]
    composite = a * out[..., 1:4] + (1 - a) * out[..., 4:7]
    assert np.allclose(composite[unknown], plate[unknown], rtol=1e-3, atol=1e-3)
    half = _run(exported[1], plate, trimap, torch.float16)  # 1e5 arrives as +inf: sanitised
    assert np.isfinite(half).all()


def test_a_trimap_with_no_unknown_pixels_is_passed_through(exported) -> None:
    plate, trimap = _demo(40, 50)
    trimap = (trimap > 0.5).astype(np.float32)
    trimap[:, :10] = 0.0
    trimap[:, -10:] = 1.0
    out = _run(exported[1], plate, trimap)
    assert np.array_equal(out[..., 0], trimap)
    assert np.array_equal(out[..., 1:4], plate * trimap[..., None])
    assert np.array_equal(out[..., 4:7], plate * (1 - trimap)[..., None])


def test_the_module_runs_the_projects_own_code(exported) -> None:
    """Compiled from core.compositing and core.nets, not a second copy of the maths."""
    code = exported[1].region.code
    assert "core.compositing.refine_with" in code
    assert "core.colour.encode_srgb" in code and "core.colour.decode_srgb" in code


@pytest.mark.parametrize(("space", "ratio", "sample"),
                         [("solve", 3.0, "network"), ("display", 0.3, "half"), ("solve", 1.0, "unsolved")])
def test_multilevel_layers_are_exported_as_the_pipeline_makes_them(space: str, ratio: float, sample: str,
                                                                   tmp_path) -> None:
    import shutil

    from core.export import build_module
    from core.pipeline import Matter
    from core.weights import load_bundle

    # A copy of the default bundle that records these layers (as tools/cross_validate.py writes them).
    folder = tmp_path / "layers"
    shutil.copytree(load_bundle("default").path, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["refinement"] |= {"layers": "multilevel", "layer_prior": 0.03, "layer_space": space, "agree_ratio": ratio,
                               "black_point": 0.05, "white_point": 0.95,
                               "sample_alpha": sample}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    module = torch.jit.script(build_module(str(folder)))
    assert (module.multilevel, module.layers_encoded, module.agree_ratio) == (True, space == "display", ratio)
    assert (module.black_point, module.white_point, module.half_samples, module.unsolved_samples) == (
        0.05, 0.95, sample == "half", sample == "unsolved")
    plate, trimap = _demo(61, 127)
    out = _run(module, plate, trimap)
    ref = Matter(str(folder), "cpu", precision="fp32", knn=0).matte(plate, trimap, colour="linear")
    unknown = trimap == 0.5
    assert float(np.abs(out[..., 0] - ref.alpha)[unknown].mean()) < 1e-3
    assert np.abs(out[..., 1:4] - ref.fg)[unknown].max() < 1e-2 and np.abs(out[..., 4:7] - ref.bg)[unknown].max() < 1e-2
    _check_known(out, plate, trimap)


def test_export_refuses_a_folder_and_a_name_that_is_not_pt_before_any_work(tmp_path, capsys) -> None:
    """A bundle's own .safetensors, or a user's image, is never replaced by the export."""
    victim = tmp_path / "alpha.safetensors"
    victim.write_bytes(b"the user's weights")
    assert main(["export", "--out", str(victim)]) == 2
    assert f"--out {victim}: the TorchScript file's name must end in .pt" in capsys.readouterr().out
    assert victim.read_bytes() == b"the user's weights"
    (tmp_path / "folder.pt").mkdir()
    assert main(["export", "--out", str(tmp_path / "folder.pt")]) == 2  # a usage error, as its wrong suffix
    assert f"--out {tmp_path / 'folder.pt'} is a folder: give the path of the .pt file to write" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alpha.safetensors", "folder.pt"]


def _not_scripted(module: torch.nn.Module) -> torch.nn.Module:
    """For the tests of the file's writing, whose stand-in for ``torch.jit.save`` never reads the
    module: the module as built, without the scripting (seconds of each export) nothing checks."""
    return module


def test_a_full_disk_is_an_error_naming_the_file_and_the_previous_export_stays(tmp_path, monkeypatch, capsys) -> None:
    import errno

    out = tmp_path / "lbsmatte.pt"
    out.write_bytes(b"the previous export")

    def full_disk(module: object, handle: object, **kwargs: object) -> None:
        handle.write(b"PK\x03\x04 half an archive")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch.jit, "save", full_disk)
    monkeypatch.setattr(torch.jit, "script", _not_scripted)
    assert main(["export", "--out", str(out)]) == 1
    assert f"ERROR: cannot write {out}: No space left on device" in capsys.readouterr().out
    assert out.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lbsmatte.pt"]


def test_sigterm_while_the_file_is_written_leaves_no_temporary_and_the_previous_export(tmp_path, monkeypatch, capsys) -> None:
    # A farm's kill during export (demo and evaluate alike) unwinds, so the temporary file is removed.
    import signal

    out = tmp_path / "lbsmatte.pt"
    out.write_bytes(b"the previous export")

    def killed(module: object, handle: object, **kwargs: object) -> None:
        handle.write(b"PK\x03\x04 half an archive")
        os.kill(os.getpid(), signal.SIGTERM)
        handle.write(b" and the rest")  # never reached: the handler raises first

    monkeypatch.setattr(torch.jit, "save", killed)
    monkeypatch.setattr(torch.jit, "script", _not_scripted)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["export", "--out", str(out)]) == 143
    assert "ERROR: stopped by SIGTERM; no file was left half-written" in capsys.readouterr().out
    assert out.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lbsmatte.pt"]
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler is back


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL")
def test_an_export_killed_while_writing_leaves_its_temporary_only_until_the_next_export(tmp_path, monkeypatch, capsys,
                                                                                       killed_once_started) -> None:
    # A farm's SIGKILL (after its grace period) while the file is written leaves the temporary file
    # (the size of the export); the next export of that file removes it, as matte does a frame's.
    out, started = tmp_path / "lbsmatte.pt", tmp_path / "started"
    out.write_bytes(b"the previous export")
    script = tmp_path / "killed_while_exporting.py"
    script.write_text(
        "import sys, time\n"
        "import torch\n"
        "from core.cli import main\n"
        "def save_and_hang(module, handle, **kwargs):\n"
        "    handle.write(b'PK half an archive')\n"
        "    handle.flush()\n"
        f"    open({str(started)!r}, 'w').close()\n"
        "    time.sleep(600)\n"
        "torch.jit.save, torch.jit.script = save_and_hang, lambda module: module\n"
        f"main(['export', '--out', {str(out)!r}])\n", encoding="utf-8")
    killed_once_started(script, started, what="export")
    assert out.read_bytes() == b"the previous export"
    assert len(list(tmp_path.glob(".lbsmatte.pt.tmp-*.pt"))) == 1  # what the kill left

    def saved(module: object, handle: object, **kwargs: object) -> None:
        handle.write(b"the new export")

    monkeypatch.setattr(torch.jit, "save", saved)
    monkeypatch.setattr(torch.jit, "script", _not_scripted)
    assert main(["export", "--out", str(out)]) == 0
    assert out.read_bytes() == b"the new export"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_export_never_writes_into_the_packaged_bundles(tmp_path, monkeypatch, capsys) -> None:
    import core.weights

    packaged = tmp_path / "package" / "bundles" / "default"
    packaged.mkdir(parents=True)
    monkeypatch.setattr(core.weights, "default_bundle_path", lambda: packaged)
    assert main(["export", "--out", str(packaged / "lbsmatte.pt")]) == 2
    assert (f"ERROR: --out: refusing to write {packaged / 'lbsmatte.pt'}: it is inside LBSMatte's packaged bundles"
            in capsys.readouterr().out)
    assert list(packaged.iterdir()) == []


@pytest.mark.parametrize("weights", ["none", "None"])
def test_weights_none_is_refused_naming_it_not_a_traceback(weights: str, tmp_path, capsys) -> None:
    """``--weights none`` is matte's and evaluate's diagnostic without networks: nothing to export."""
    out = tmp_path / "lbsmatte.pt"
    assert main(["export", "--out", str(out), "--weights", weights]) == 2
    said = capsys.readouterr().out
    assert said.startswith("ERROR: --weights none is the parameter-free priors") and "nothing to export" in said
    assert list(tmp_path.iterdir()) == []


def test_a_huge_value_in_the_unknown_region_is_clamped_for_the_refinement_as_the_pipeline_does(exported, matter) -> None:
    """One pixel past core.pipeline.SOLVE_LIMIT (an unpremultiplied near-zero alpha): its float32
    squares overflowed and NaN spread through the whole unknown region's solve."""
    plate, trimap = _demo(61, 127)
    unknown = trimap == 0.5
    y, x = np.argwhere(unknown)[unknown.sum() // 2]
    plate = plate.copy()
    plate[y, x] = [1e20, 0.2, 0.2]
    out = _run(exported[1], plate, trimap)
    ref = matter.matte(plate, trimap, colour="linear")
    assert float(np.abs(out[..., 0] - ref.alpha)[unknown].mean()) < AGREEMENT
    # The layers as the pipeline's, away from the pixel whose colour the layers carry around it.
    plain = unknown & (np.abs(ref.fg).max(2) < 10) & (np.abs(ref.bg).max(2) < 10)
    assert plain.sum() > 0.9 * unknown.sum()
    assert np.abs(out[..., 1:4] - ref.fg)[plain].max() < 0.05 and np.abs(out[..., 4:7] - ref.bg)[plain].max() < 0.05
    _check_known(out, plate, trimap)


def test_an_out_link_into_a_missing_folder_is_refused_before_any_work(tmp_path, monkeypatch, capsys) -> None:
    """As ``matte --out``: a broken link (a share not mounted) is named before the module is scripted
    and saved."""
    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the module was scripted before --out was checked")

    monkeypatch.setattr(torch.jit, "script", no_work)
    link = tmp_path / "lbsmatte.pt"
    link.symlink_to(tmp_path / "unmounted" / "lbsmatte.pt")
    assert main(["export", "--out", str(link)]) == 1
    assert (f"ERROR: cannot write {link} (a symbolic link to {tmp_path / 'unmounted' / 'lbsmatte.pt'}): the folder "
            f"{tmp_path / 'unmounted'} does not exist" in capsys.readouterr().out)
    assert not (tmp_path / "unmounted").exists()


def test_a_module_without_rounds_says_its_rounds_knob_runs_them_without_the_knn_term(tmp_path, capsys) -> None:
    """With ``--rounds 0`` nothing uses the KNN term, in the module or in ``lbsmatte matte --rounds 0``:
    the warning that the module's matte is not lbsmatte matte's was false. But its ``rounds`` knob,
    raised in Nuke, runs the bundle's refinement without the term, and the export said nothing of it."""
    from core.pipeline import Matter

    out = tmp_path / "fast.pt"
    assert main(["export", "--out", str(out), "--rounds", "0"]) == 0
    said = capsys.readouterr().out
    knn = read_export_info(out)["knn_left_out"]
    assert read_export_info(out)["knobs"]["rounds"] == 0 and knn > 0
    assert "so its matte is not lbsmatte matte's" not in said and f"\nwrote {out} " in said
    assert said.startswith("WARNING: with --rounds 0 the module gives lbsmatte matte --rounds 0's matte; its 'rounds' "
                           "knob, raised in Nuke, runs the refinement without the bundle's KNN term "
                           f"(knn={knn:g}), which the module cannot hold: lbsmatte matte --knn 0's matte, not "
                           "lbsmatte matte's (docs/nuke.md, 'Export the module': the row 'KNN term')")
    # What it says is so: the module with rounds 0 is the networks alone; with its rounds raised, the
    # refinement without the KNN term, which is not the bundle's refinement with it.
    module = torch.jit.load(str(out))
    plate, trimap = _demo(61, 127)
    unknown = trimap == 0.5
    alone = Matter("default", "cpu", rounds=0).matte(plate, trimap, colour="linear").alpha
    assert float(np.abs(_run(module, plate, trimap)[..., 0] - alone)[unknown].mean()) < AGREEMENT
    module.rounds = 1
    raised = _run(module, plate, trimap)[..., 0]
    without = Matter("default", "cpu", rounds=1, knn=0).matte(plate, trimap, colour="linear").alpha
    recorded = Matter("default", "cpu", rounds=1).matte(plate, trimap, colour="linear").alpha
    assert float(np.abs(raised - without)[unknown].mean()) < AGREEMENT
    assert float(np.abs(raised - recorded)[unknown].mean()) > 10 * AGREEMENT


def test_the_file_runs_where_lbsmatte_is_not_installed(exported, tmp_path) -> None:
    """Nuke loads the file with its own torch and no LBSMatte: a fresh process where ``core`` cannot
    be imported gives the values this one does."""
    import subprocess
    import sys

    plate, trimap = _demo(37, 53)
    x = np.concatenate([plate, trimap[..., None]], 2).transpose(2, 0, 1)[None].astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys\n"
        "sys.modules['core'] = sys.modules['nuke_plugin'] = None  # not importable\n"
        "import numpy as np, torch\n"
        "torch.set_num_threads(int(sys.argv[4]))\n"
        "m = torch.jit.load(sys.argv[1], map_location='cpu')\n"
        "with torch.no_grad(), torch.jit.optimized_execution(False):\n"
        "    y = m(torch.from_numpy(np.load(sys.argv[2])))\n"
        "np.save(sys.argv[3], y.numpy())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # The same thread count as this process's torch (which an earlier test's training may have set):
    # a convolution's sums are split by thread, and its last bit with them.
    threads = str(torch.get_num_threads())
    subprocess.run([sys.executable, "-I", "-c", script, exported[0], str(tmp_path / "x.npy"), str(tmp_path / "y.npy"),
                    threads], check=True, cwd=tmp_path, env=env, timeout=300)
    there = np.load(tmp_path / "y.npy")[0].transpose(1, 2, 0)
    assert np.array_equal(there, _run(exported[1], plate, trimap))


def test_a_weights_typo_leaves_no_out_folder_behind(tmp_path, capsys) -> None:
    out = tmp_path / "exports" / "lbsmatte.pt"
    assert main(["export", "--out", str(out), "--weights", "no-such-bundle"]) == 1
    assert "no weights bundle named 'no-such-bundle'" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_a_night_plate_is_matted_scaled_up_as_the_pipeline_does(exported, matter) -> None:
    """A plate 4 stops under: the pipeline mattes it scaled up in linear light
    (:func:`core.pipeline.exposure_scale`) and scales FG and BG back; the module, which computes
    what the pipeline does for a linear plate, had matted it as it is (another alpha)."""
    plate, trimap = _demo(61, 127)
    night = (plate / 16).astype(np.float32)
    unknown = trimap == 0.5
    ref = matter.matte(night, trimap, colour="linear")
    assert matter.stats.exposure > 2
    out = _run(exported[1], night, trimap)
    assert float(np.abs(out[..., 0] - ref.alpha)[unknown].mean()) < AGREEMENT
    assert np.abs(out[..., 1:4] - ref.fg)[unknown].max() < 0.05 / 16  # in the night plate's units
    assert np.abs(out[..., 4:7] - ref.bg)[unknown].max() < 0.05 / 16
    _check_known(out, night, trimap)
    # Its attribute (a knob in CatFileCreator) turns it off: the plate matted as it is, as before.
    module = exported[1]
    module.match_exposure = False
    try:
        as_is = _run(module, night, trimap)
    finally:
        module.match_exposure = True
    from core.pipeline import Matter

    plain = Matter("default", "cpu", knn=0, match_exposure=False).matte(night, trimap, colour="linear")
    assert float(np.abs(as_is[..., 0] - plain.alpha)[unknown].mean()) < AGREEMENT  # as the pipeline mattes it as it is
    assert float(np.abs(plain.alpha - ref.alpha)[unknown].mean()) > AGREEMENT  # another alpha than scaled up
