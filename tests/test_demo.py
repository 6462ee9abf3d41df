"""core.demo and its bundled example (core/examples/demo, made by tools/make_demo_example.py)."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from core.colour import to_linear
from core.contact_sheet import sheet_size
from core.demo import EXAMPLE, EXAMPLE_FILES, add_arguments, load_example, run, run_demo
from core.io import read_image


def test_example_files_exist_and_match() -> None:
    for name in EXAMPLE_FILES:
        assert (EXAMPLE / name).is_file(), name
    assert sum((EXAMPLE / n).stat().st_size for n in EXAMPLE_FILES) < 2_000_000
    shapes = {n: read_image(EXAMPLE / n).pixels.shape for n in EXAMPLE_FILES if n.endswith(".png")}
    assert shapes == {"image.png": (400, 600, 3), "fg.png": (400, 600, 3), "bg.png": (400, 600, 3),
                      "alpha.png": (400, 600, 1), "trimap.png": (400, 600, 1),
                      "closed_form_alpha.png": (400, 600, 1), "closed_form_fg.png": (400, 600, 3)}
    trimap = np.round(read_image(EXAMPLE / "trimap.png").pixels[..., 0] * 255)
    assert set(np.unique(trimap).tolist()) == {0.0, 128.0, 255.0}


def test_example_recomposes_to_the_image() -> None:
    ex = load_example()
    a = ex["alpha"][..., None]
    recomposed = a * ex["fg"] + (1 - a) * ex["bg"]
    # Made from the stored 8-bit alpha, FG and BG: off by at most half an 8-bit step.
    assert np.abs(recomposed - ex["image"]).max() <= 0.5 / 255 + 1e-6
    # The trimap agrees with the ground truth: alpha is 0/1 where the trimap says BG/FG.
    assert np.all(ex["alpha"][ex["trimap"] == 0.0] == 0.0)
    assert np.all(ex["alpha"][ex["trimap"] == 1.0] == 1.0)
    soft = (ex["alpha"] > 0) & (ex["alpha"] < 1)
    assert soft.sum() > 10_000 and np.all(ex["trimap"][soft] == 0.5)


def test_example_says_where_it_came_from() -> None:
    source = json.loads((EXAMPLE / "source.json").read_text())
    assert source["licence"].startswith("CC0")
    assert set(source["parts"]) == {"image.png", "trimap.png", "alpha.png", "fg.png", "bg.png"}
    assert "coffee" in source["parts"]["bg.png"]["from"] and "chelsea" in source["parts"]["fg.png"]["from"]
    assert source["generator"] == "tools/make_demo_example.py"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser, "demo")
    return parser.parse_args(list(argv))


def test_demo_without_trained_default_says_so_and_fails(tmp_path: Path, monkeypatch, capsys) -> None:
    import core.weights

    monkeypatch.setattr(core.weights, "has_trained_default", lambda: False)
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")  # must not matter to the demo
    out = tmp_path / "demo"
    assert run(_args("--out", str(out))) != 0
    text = capsys.readouterr().out
    assert "ERROR: LBSMatte has no trained default weights bundle installed" in text
    assert "will not show the output of untrained networks" in text
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_demo_never_writes_into_the_packaged_bundles(tmp_path: Path, monkeypatch, capsys) -> None:
    import core.weights

    packaged = tmp_path / "package" / "bundles" / "default"
    packaged.mkdir(parents=True)
    monkeypatch.setattr(core.weights, "default_bundle_path", lambda: packaged)
    assert run(_args("--out", str(packaged.parent / "demo"))) == 2
    said = capsys.readouterr().out
    assert said.startswith(f"ERROR: --out: refusing to write {packaged.parent / 'demo' / 'demo.exr'}: it is inside "
                           "LBSMatte's packaged bundles")
    assert sorted(p.name for p in packaged.parent.iterdir()) == ["default"]


def test_demo_refuses_an_untrained_bundle(tmp_path: Path, small_bundle, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")  # the demo ignores it on purpose
    assert run(_args("--out", str(tmp_path), "--weights", str(small_bundle.path), "--device", "cpu")) == 1
    assert "untrained" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())


def test_demo_writes_everything(tmp_path: Path, small_bundle) -> None:
    """The writing path, with small untrained networks handed in explicitly (numbers meaningless)."""
    from core.demo import load_closed_form
    from core.metrics import alpha_errors
    from core.pipeline import Matter

    matter = Matter(small_bundle, device="cpu", allow_untrained=True)
    report = io.StringIO()
    result = run_demo(tmp_path, matter=matter, stream=report)
    exr = read_image(tmp_path / "demo.exr")
    assert sorted(exr.channels) == sorted(["R", "G", "B", "A", "fg.R", "fg.G", "fg.B", "bg.R", "bg.G", "bg.B"])
    assert exr.shape == (400, 600)
    for name in ("alpha", "fg", "bg", "composite"):
        assert read_image(tmp_path / f"{name}.png").shape == (400, 600)
    assert read_image(tmp_path / "contact_sheet.png").shape == sheet_size(400, 600, 8, columns=4)
    errors = json.loads((tmp_path / "errors.json").read_text())
    for method in ("lbsmatte", "closed_form"):
        assert set(errors[method]) == {"sad", "mse", "grad", "conn", "fg_sad", "fg_mse", "seconds"}
        assert errors[method] == pytest.approx(result[method])
    # The numbers must be those of the matte the demo wrote, not merely the ones it returned:
    # score demo.exr's alpha (half floats: a relative 1e-4 at most) and the stored closed-form
    # reference against the example's ground truth independently.
    ex = load_example()
    written = alpha_errors(exr.pixels[..., exr.channels.index("A")], ex["alpha"], ex["trimap"])
    assert {k: errors["lbsmatte"][k] for k in written} == pytest.approx(written, rel=2e-4)
    stored = alpha_errors(load_closed_form()[0], ex["alpha"], ex["trimap"])
    assert {k: errors["closed_form"][k] for k in stored} == pytest.approx(stored, rel=1e-12)
    # Closed-form on a fur ball with a tight trimap: a real, small error.
    assert 0 < errors["closed_form"]["sad"] < 10
    text = report.getvalue()
    assert "LBSMatte (small-test)" in text and "closed-form (pymatting, stored)" in text and "FG SAD" in text
    assert "--live-baseline computes it now" in text
    # The closed-form FG errors are of its own foreground, not LBSMatte's.
    from core.metrics import foreground_error

    cf_fg = foreground_error(load_closed_form()[1], ex["fg"], ex["alpha"], ex["trimap"])
    assert {k: errors["closed_form"][k] for k in cf_fg} == pytest.approx(cf_fg, rel=1e-12)
    # demo.exr is premultiplied (RGB = FG·A); the PNGs are its layers (sRGB, 8-bit) and its composite.
    from core.colour import from_linear
    from core.contact_sheet import composite

    def layer(prefix: str) -> np.ndarray:
        return np.dstack([exr.pixels[..., exr.channels.index(prefix + c)] for c in "RGB"])

    alpha = exr.pixels[..., exr.channels.index("A")]
    np.testing.assert_allclose(layer(""), layer("fg.") * alpha[..., None], rtol=2e-3, atol=1e-3)
    srgb = {name: np.clip(from_linear(layer(name + "."), "srgb"), 0, 1) for name in ("fg", "bg")}
    # The PNGs hold the sRGB solve's layers, as lbsmatte matte's PNG; the EXR's are moved in the
    # unknown band to recomposite the linearised plate (test below), so they agree where known.
    known = (ex["trimap"] == 0) | (ex["trimap"] == 1)
    for name in ("fg", "bg"):
        np.testing.assert_allclose(read_image(tmp_path / f"{name}.png").pixels[..., :3][known], srgb[name][known],
                                   atol=3 / 255)
    np.testing.assert_allclose(read_image(tmp_path / "alpha.png").pixels[..., 0], alpha, atol=1 / 255)
    fg_png = read_image(tmp_path / "fg.png").pixels[..., :3]
    np.testing.assert_allclose(read_image(tmp_path / "composite.png").pixels[..., :3], composite(fg_png, alpha),
                               atol=3 / 255)


def test_the_report_names_the_run_without_networks_a_diagnostic(tmp_path: Path) -> None:
    from core.demo import format_report

    errors = {m: {"sad": 4.2, "mse": 0.01, "grad": 2.2, "conn": 4.0, "fg_sad": 2.5, "fg_mse": 0.002, "seconds": 2.0}
              for m in ("lbsmatte", "closed_form")}
    text = format_report(errors, "none", {"alpha": tmp_path / "alpha.png"}, live=False)
    assert "LBSMatte (no networks, a diagnostic)" in text
    assert "LBSMatte (default)" in format_report(errors, "default", {}, live=False)


def test_the_stored_closed_form_reference_is_pymattings_answer() -> None:
    # The demo reads closed-form + multilevel foreground stored with the example (so a fresh
    # install's first demo compiles nothing); it is pymatting's answer to this plate and trimap:
    # in [0, 1], the trimap's 0/1 where known, and as far from the truth as pymatting's closed-form
    # is (SAD 4.05 when it was made, against LBSMatte's 8.7).
    from core.demo import load_closed_form
    from core.metrics import alpha_errors

    ex = load_example()
    alpha, fg, seconds = load_closed_form()
    known = ex["trimap"] != 0.5
    assert np.array_equal(alpha[known], ex["trimap"][known]) and 0 <= alpha.min() and alpha.max() <= 1
    assert fg.shape == ex["image"].shape and seconds > 0
    assert abs(alpha_errors(alpha, ex["alpha"], ex["trimap"])["sad"] - 4.05) < 0.01


def test_a_full_disk_at_errors_json_is_an_error_naming_it_and_the_old_one_stays(tmp_path: Path, monkeypatch,
                                                                                 capsys) -> None:
    import errno

    previous = json.dumps({"example": str(EXAMPLE), "weights": "none", "lbsmatte": {}, "closed_form": {}}) + "\n"
    (tmp_path / "errors.json").write_text(previous)  # an earlier demo's
    real_write_text = Path.write_text

    def full_disk(self: Path, text: str, *args, **kwargs) -> int:
        if self.name.startswith("errors.json") or self.name.startswith(".errors.json"):
            open(self, "w").close()  # opened (emptied), then the first write finds the disk full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    assert run(_args("--out", str(tmp_path), "--weights", "none", "--device", "cpu")) == 1
    assert f"ERROR: cannot write {tmp_path / 'errors.json'}: No space left on device" in capsys.readouterr().out
    assert (tmp_path / "errors.json").read_text() == previous
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_out_a_folder_holding_the_users_files_of_the_demos_names_is_refused_and_they_stay(
        tmp_path: Path, small_bundle, capsys) -> None:
    """``lbsmatte demo --out .`` in a shot's folder replaced the artist's alpha.png and
    composite.png (the demo's names are common ones) without a word. A folder an earlier demo
    wrote into (its errors.json, or demo.exr of one stopped before errors.json) is rewritten."""
    from core.pipeline import Matter

    shot = tmp_path / "shot"
    shot.mkdir()
    (shot / "composite.png").write_bytes(b"the artist's")
    (shot / "errors.json").write_text('{"notes": "mine"}')
    assert run(_args("--out", str(shot), "--weights", "none", "--device", "cpu")) == 2
    said = capsys.readouterr().out
    assert (f"ERROR: refusing to write the demo into --out {shot}: it holds composite.png, errors.json, which the "
            "demo would replace and an earlier demo did not write") in said
    assert (shot / "composite.png").read_bytes() == b"the artist's"
    assert sorted(p.name for p in shot.iterdir()) == ["composite.png", "errors.json"]

    matter = Matter(small_bundle, device="cpu", allow_untrained=True)
    run_demo(tmp_path / "demo", matter=matter, stream=io.StringIO())
    run_demo(tmp_path / "demo", matter=matter, stream=io.StringIO())  # a rerun: its own files
    stopped = tmp_path / "stopped"  # a demo stopped after demo.exr, before errors.json
    stopped.mkdir()
    for name in ("demo.exr", "alpha.png"):
        (stopped / name).write_bytes((tmp_path / "demo" / name).read_bytes())
    run_demo(stopped, matter=matter, stream=io.StringIO())
    assert json.loads((stopped / "errors.json").read_text())["example"] == str(EXAMPLE)


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL")
def test_a_demo_killed_while_writing_leaves_its_temporary_only_until_the_next_demo(tmp_path: Path, killed_once_started) -> None:
    # A SIGKILL while demo.exr is written left its temporary file in --out for good, run after run;
    # the next demo into that folder removes it, as matte does a frame's.
    out, started = tmp_path / "demo", tmp_path / "started"
    script = tmp_path / "killed_while_writing.py"
    script.write_text(
        "import time\n"
        "import core.io\n"
        "from core.cli import main\n"
        "def write_and_hang(path, *args, **kwargs):\n"
        "    with core.io.atomic_output(path) as tmp:\n"
        "        open(tmp, 'wb').write(b'half an EXR')\n"
        f"        open({str(started)!r}, 'w').close()\n"
        "        time.sleep(600)\n"
        "core.io.write_matte_exr = write_and_hang\n"
        f"main(['demo', '--out', {str(out)!r}, '--weights', 'none', '--device', 'cpu'])\n", encoding="utf-8")
    killed_once_started(script, started, what="demo")
    assert [p.name for p in out.glob(".demo.exr.tmp-*.exr")]  # what the kill left
    assert run(_args("--out", str(out), "--weights", "none", "--device", "cpu")) == 0
    assert (out / "demo.exr").is_file() and not list(out.glob(".*"))


def test_the_demo_never_writes_over_its_own_example(tmp_path: Path, monkeypatch, capsys) -> None:
    # lbsmatte demo --out core/examples/demo replaced the example's ground truth (alpha.png, fg.png,
    # bg.png) with its result: every later demo then scored itself against its own output.
    import shutil

    import core.demo

    copy = tmp_path / "demo"
    shutil.copytree(EXAMPLE, copy)
    monkeypatch.setattr(core.demo, "EXAMPLE", copy)  # what the check protects; the example is read as ever
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    assert run(_args("--out", str(copy), "--weights", "none", "--device", "cpu")) == 2  # usage, as 'matte --out' an input
    said = capsys.readouterr().out
    assert f"ERROR: refusing to write {copy / 'alpha.png'}: it is one of the input files ({copy / 'alpha.png'})" in said
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before


def test_the_closed_form_reference_of_a_missing_example_is_a_usage_error(tmp_path: Path, capsys) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import make_demo_example

    with pytest.raises(SystemExit):
        make_demo_example.main(["--closed-form", "--out", str(tmp_path / "none")])
    assert f"--closed-form needs an example in {tmp_path / 'none'}" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_demo_exr_layers_recomposite_the_linearised_plate(tmp_path: Path, small_bundle) -> None:
    """demo.exr ('the result as Nuke reads it') held the sRGB solve's F and B linearised as they
    were, so A·fg + (1 − A)·bg, Nuke's Merge of its layers, missed the linearised plate in the
    unknown band (by up to 0.23 on the demo), where lbsmatte matte's EXR of the same plate gives
    it back: the demo's layers get the same agreement, RGB stays fg·A, and the header is tagged
    lin_rec709_scene as matte's is."""
    from core.pipeline import Matter

    matter = Matter(small_bundle, device="cpu", allow_untrained=True)
    run_demo(tmp_path, matter=matter, stream=io.StringIO())
    exr = read_image(tmp_path / "demo.exr")

    def layer(prefix: str) -> np.ndarray:
        return np.dstack([exr.pixels[..., exr.channels.index(prefix + c)] for c in "RGB"])

    alpha = exr.pixels[..., exr.channels.index("A")][..., None]
    ex = load_example()
    plate = to_linear(ex["image"], "srgb")
    band = (ex["trimap"] > 0) & (ex["trimap"] < 1)
    recomposite = alpha * layer("fg.") + (1 - alpha) * layer("bg.")
    np.testing.assert_allclose(recomposite[band], plate[band], atol=2e-3)  # half floats
    np.testing.assert_allclose(layer(""), layer("fg.") * alpha, rtol=2e-3, atol=1e-3)
    # and its header says so, as matte's EXR of an sRGB plate does: it said nothing, so a Read
    # under an OCIO config's file rules took the linearised layers by its own rule
    assert exr.info.attribute("colorInteropID") == "lin_rec709_scene"
