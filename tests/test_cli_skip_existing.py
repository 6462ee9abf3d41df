"""``lbsmatte matte --skip-existing``: a farm task retried after dying at frame 80 of 100 renders
the 20 frames left, not all 100 again; a frame whose files on disk are not this run's result
(missing, truncated, another tool's, other settings, weights or inputs) is rendered again,
saying why, and nothing is skipped that this run would not have written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import test_cli
from test_cli import _matte, _trimap, _write

from core import cli, colour
from core.io import read_image
from core.weights import file_sha256

shot = test_cli.shot  # plate.1001-1003.exr (half) and trimap.1001-1003.png (8-bit grey)
FRAMES = ("--frames", "1001-1003")


@pytest.fixture
def untrained_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LBSMATTE_ALLOW_UNTRAINED", "1")


def _stamps(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.iterdir())}


def _lines(stdout: str, start: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(start)]


def test_frames_already_rendered_with_these_settings_are_skipped_and_listed(shot: Path, small_bundle, untrained_ok,
                                                                            capsys, monkeypatch) -> None:
    trimaps = "--write-trimap", str(shot / "out" / "t.####.png")
    assert _matte(shot, small_bundle, *FRAMES, *trimaps) == 0
    capsys.readouterr()
    before = _stamps(shot / "out")

    def no_render(*args, **kwargs):
        raise AssertionError("a frame already there was rendered again")

    monkeypatch.setattr(cli, "_render", no_render)
    assert _matte(shot, small_bundle, *FRAMES, *trimaps, "--skip-existing") == 0
    stdout = capsys.readouterr().out
    # A publish step collecting WROTE and SKIPPED lines gets every file of the sequence.
    assert _lines(stdout, "LBSMATTE SKIPPED") == [
        f"LBSMATTE SKIPPED {f} {shot / 'out' / name}.{f}.{ext}" for f in (1001, 1002, 1003)
        for name, ext in (("t", "png"), ("matte", "exr"))]
    assert _lines(stdout, "LBSMATTE PROGRESS") == [f"LBSMATTE PROGRESS {f} {i}/3" for i, f in enumerate((1001, 1002, 1003), 1)]
    assert stdout.splitlines()[-2:] == ["skipped 3 frame(s) already there (--skip-existing)",
                                        f"wrote 0 frame(s) to {shot / 'out' / 'matte.####.exr'}"]
    assert "WROTE" not in stdout and "ERROR" not in stdout
    assert _stamps(shot / "out") == before  # nothing touched, no lock or temporary file left


def test_a_retry_renders_only_the_frames_that_are_not_there(shot: Path, small_bundle, untrained_ok, capsys) -> None:
    assert _matte(shot, small_bundle, *FRAMES) == 0
    (shot / "out" / "matte.1003.exr").unlink()  # the task died during frame 1003
    capsys.readouterr()
    assert _matte(shot, small_bundle, *FRAMES, "--skip-existing") == 0
    stdout = capsys.readouterr().out
    assert _lines(stdout, "LBSMATTE WROTE") == [f"LBSMATTE WROTE 1003 {shot / 'out' / 'matte.1003.exr'}"]
    assert [line.split()[3] for line in _lines(stdout, "LBSMATTE SKIPPED")] == [str(shot / "out" / "matte.1001.exr"),
                                                                                str(shot / "out" / "matte.1002.exr")]
    assert "rendering again" not in stdout  # nothing was there: rendered as any frame
    assert stdout.splitlines()[-1] == f"wrote 1 frame(s) to {shot / 'out' / 'matte.####.exr'}"


def test_the_result_records_its_input_files_and_the_trimap_its_own_making(shot: Path, small_bundle,
                                                                          untrained_ok) -> None:
    # The trimap --write-trimap writes carried the plate's header: a plate that is an earlier
    # result gave it that run's lbsmatte/settings, a record of a run that did not make it.
    from core import __version__

    plate = read_image(shot / "plate.1001.exr")
    _write(shot / "plate.1001.exr", plate.pixels, ["R", "G", "B"], "half",
           {"lbsmatte/settings": '{"edge": 99}', "Software": "Nuke"})
    assert _matte(shot, small_bundle, "--frames", "1001", "--write-trimap", str(shot / "out" / "t.####.exr"),
                  "--edge", "3") == 0
    digests = {name: file_sha256(shot / f"{name}.1001.{ext}") for name, ext in (("plate", "exr"),
                                                                                       ("trimap", "png"))}
    matte = read_image(shot / "out" / "matte.1001.exr").info
    trimap = read_image(shot / "out" / "t.1001.exr").info
    for info in (matte, trimap):
        assert json.loads(info.attribute("lbsmatte/inputs")) == digests
        assert info.attribute("lbsmatte/version") == __version__
        assert info.attribute("Software") == f"LBSMatte {__version__}"
    assert json.loads(trimap.attribute("lbsmatte/settings")) == {"edge": 3, "plate_layer": None,
                                                                  "trimap_channel": "auto"}
    assert trimap.attribute("lbsmatte/weights") is None  # the trimap does not depend on them


class _Reads:
    """Counts, by file, the times its pixels are decoded (OpenImageIO's ``read_*`` on an opened
    file) and its bytes hashed (``core.weights.file_sha256``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from core import weights

        self.decoded: dict[str, int] = {}
        self.hashed: dict[str, int] = {}
        opened, hashed = oiio.ImageInput.open, weights.file_sha256
        reads = self

        class Counted:  # an opened file, whose reads of pixels are counted; anything else is its own
            def __init__(self, inp, name: str) -> None:
                self._inp, self._name = inp, name

            def __getattr__(self, attr: str):
                found = getattr(self._inp, attr)
                if not attr.startswith("read_"):
                    return found

                def read(*args, **kwargs):
                    reads.decoded[self._name] = reads.decoded.get(self._name, 0) + 1
                    return found(*args, **kwargs)
                return read

        def counted_open(name, *args):
            inp = opened(name, *args)
            return None if inp is None else Counted(inp, os.fspath(name))

        def counted_hash(path):
            self.hashed[os.fspath(path)] = self.hashed.get(os.fspath(path), 0) + 1
            return hashed(path)

        monkeypatch.setattr(oiio.ImageInput, "open", staticmethod(counted_open))
        monkeypatch.setattr(weights, "file_sha256", counted_hash)

    def of(self, *paths: Path) -> list[tuple[int, int]]:
        """(decoded, hashed) of each of ``paths``."""
        return [(self.decoded.get(str(p), 0), self.hashed.get(str(p), 0)) for p in paths]


def test_the_check_reads_each_file_once_and_decodes_no_pixel_it_does_not_need(shot: Path, small_bundle, untrained_ok,
                                                                               capsys, monkeypatch) -> None:
    # A frame rendered again read its plate twice (the check decoded all of it for its header),
    # hashed plate and trimap twice, and decoded the old matte before its header said to render
    # again; a frame skipped decoded its plate too. On a 4K float plate: seconds a frame.
    out = shot / "out"
    trimaps = "--write-trimap", str(out / "t.####.png")
    assert _matte(shot, small_bundle, *FRAMES, *trimaps) == 0
    reads = _Reads(monkeypatch)
    again = _rerun(shot, small_bundle, capsys, *trimaps, "--unpremultiply")
    assert len(again) == 3
    for f in (1001, 1002, 1003):
        plate, trimap, matte, t = (shot / f"plate.{f}.exr", shot / f"trimap.{f}.png", out / f"matte.{f}.exr",
                                   out / f"t.{f}.png")
        assert reads.of(plate, trimap, matte, t) == [(1, 1), (1, 1), (0, 0), (0, 0)], f
    reads.decoded.clear()
    reads.hashed.clear()
    capsys.readouterr()
    assert _matte(shot, small_bundle, *FRAMES, *trimaps, "--unpremultiply", "--skip-existing") == 0
    assert len(_lines(capsys.readouterr().out, "LBSMATTE SKIPPED")) == 6
    for f in (1001, 1002, 1003):
        plate, trimap, matte, t = (shot / f"plate.{f}.exr", shot / f"trimap.{f}.png", out / f"matte.{f}.exr",
                                   out / f"t.{f}.png")
        # Its outputs decoded once: whether they read whole; the inputs hashed, never decoded.
        assert reads.of(plate, trimap, matte, t) == [(0, 1), (0, 1), (1, 0), (1, 0)], f


def _rerun(shot: Path, bundle, capsys, *extra: str) -> list[str]:
    """Run again with --skip-existing; the 'rendering again' lines (checked to be rendered)."""
    capsys.readouterr()
    assert _matte(shot, bundle, *FRAMES, "--skip-existing", *extra) == 0
    stdout = capsys.readouterr().out
    again = _lines(stdout, "frame ")
    wrote = {line.split()[2] for line in _lines(stdout, "LBSMATTE WROTE")}
    assert {line.split(":")[0].split()[1] for line in again} <= wrote
    return again


def test_frames_made_otherwise_are_rendered_again_saying_why(shot: Path, small_bundle, untrained_ok, capsys,
                                                             make_small_networks, tmp_path_factory) -> None:
    from core.weights import save_bundle

    out = shot / "out"
    assert _matte(shot, small_bundle, *FRAMES) == 0
    # Another tool's frame (no header of ours), a truncated one (a copy cut short on a share).
    _write(out / "matte.1001.exr", np.zeros((test_cli.H, test_cli.W, 4), np.float32), ["R", "G", "B", "A"], "half")
    data = (out / "matte.1002.exr").read_bytes()
    (out / "matte.1002.exr").write_bytes(data[: len(data) // 2])
    again = _rerun(shot, small_bundle, capsys)
    assert len(again) == 2
    assert again[0].startswith(f"frame 1001: rendering again: {out / 'matte.1001.exr'} holds channels R, G, B, A, not")
    assert again[1].startswith(f"frame 1002: rendering again: cannot read image {out / 'matte.1002.exr'}")
    assert read_image(out / "matte.1002.exr").info.attribute("lbsmatte/version")  # whole again

    # Other settings: each differing one named, with this run's value.
    again = _rerun(shot, small_bundle, capsys, "--unpremultiply")
    assert again == [f"frame {f}: rendering again: {out / f'matte.{f}.exr'} was made with other settings: "
                     "premultiplied true (this run false)" for f in (1001, 1002, 1003)]
    again = _rerun(shot, small_bundle, capsys, "--unpremultiply", "--float")
    assert again[0] == f"frame 1001: rendering again: {out / 'matte.1001.exr'} holds half pixels, this run writes float"

    # Other weights.
    other = save_bundle(tmp_path_factory.mktemp("bundles") / "other", make_small_networks(seed=1), name="other-test",
                        description="other untrained networks", training={"note": "untrained"}, trained=False)
    again = _rerun(shot, other, capsys, "--unpremultiply", "--float")
    assert len(again) == 3 and f"was made with the weights {small_bundle.name!r}" in again[0]
    assert again[0].endswith(f"this run uses {other.name!r} ({other.manifest_sha256()})")

    # Another trimap delivered for frame 1002 since: only that frame, naming the file.
    _write(shot / "trimap.1002.png", np.roll(_trimap(1), 3, axis=1)[..., None], ["Y"], "uint8")
    again = _rerun(shot, other, capsys, "--unpremultiply", "--float")
    assert again == [f"frame 1002: rendering again: {out / 'matte.1002.exr'} was made from other files than this "
                     f"run's: trimap {shot / 'trimap.1002.png'} changed since"]

    # A frame the core computed otherwise than asked (out of GPU memory): not the result asked for.
    buf = oiio.ImageBuf(str(out / "matte.1003.exr"))
    buf.specmod().attribute(cli.DEGRADED_ATTRIBUTE, "networks in tiles of 512 px, not 1024")
    assert buf.write(str(out / "degraded.exr"))
    buf.clear()
    os.replace(out / "degraded.exr", out / "matte.1003.exr")
    again = _rerun(shot, other, capsys, "--unpremultiply", "--float")
    assert again == [f"frame 1003: rendering again: {out / 'matte.1003.exr'} was computed otherwise than asked "
                     "(networks in tiles of 512 px, not 1024)"]
    assert _rerun(shot, other, capsys, "--unpremultiply", "--float") == []


def test_a_frame_whose_trimap_file_is_missing_or_made_otherwise_is_rendered_again(shot: Path, small_bundle,
                                                                                  untrained_ok, capsys) -> None:
    out = shot / "out"
    trimaps = "--write-trimap", str(out / "t.####.png")
    assert _matte(shot, small_bundle, *FRAMES, *trimaps, "--edge", "4") == 0
    (out / "t.1001.png").unlink()
    # An earlier run's trimap of another --edge (the matte since rendered again without --write-trimap).
    assert _matte(shot, small_bundle, "--frames", "1002", "--edge", "6", *trimaps) == 0
    assert _matte(shot, small_bundle, "--frames", "1002", "--edge", "4") == 0
    again = _rerun(shot, small_bundle, capsys, *trimaps, "--edge", "4")
    assert again == [f"frame 1001: rendering again: {out / 't.1001.png'} is not there",
                     f"frame 1002: rendering again: {out / 't.1002.png'} was made with other settings: edge 6 "
                     "(this run 4)"]


def test_outputs_whose_header_cannot_say_what_made_them_are_refused_with_skip_existing(shot: Path, capsys) -> None:
    for extra, flag in ((["--out", str(shot / "m.####.dpx")], "--out"),
                        (["--out", str(shot / "m.####.exr"), "--write-trimap", str(shot / "t.####.tif")],
                         "--write-trimap")):
        code = cli.main(["matte", "--plate", str(shot / "plate.####.exr"), "--trimap", str(shot / "trimap.####.png"),
                         "--skip-existing", "--weights", "no-such-bundle", "--no-progress", *extra])
        assert code == 2
        assert capsys.readouterr().out.startswith(f"ERROR: --skip-existing: {flag} ")


_OCIO_CONFIG = ("ocio_profile_version: 2\nroles: {{default: lin, scene_linear: lin}}\ndisplays: {{sRGB: [!<View> "
                "{{name: Raw, colorspace: lin}}]}}\ncolorspaces:\n  - !<ColorSpace> {{name: lin}}\n"
                "  - !<ColorSpace> {{name: sRGB - Texture, to_scene_reference: !<ExponentWithLinearTransform> "
                "{{gamma: 2.4, offset: 0.055}}}}\n"
                "  - !<ColorSpace> {{name: cam, to_scene_reference: !<ExponentTransform> {{value: {gamma}}}}}\n")


def test_frames_matted_under_another_ocio_config_are_rendered_again(shot: Path, small_bundle, untrained_ok, capsys,
                                                                    monkeypatch) -> None:
    # --colour cam: the show's config since redefined 'cam' (a new camera LUT). The frames on disk
    # were converted with the old definition, but their header named only 'cam', so a retry kept them.
    config = shot / "config.ocio"
    config.write_text(_OCIO_CONFIG.format(gamma=2.2))
    monkeypatch.setenv("OCIO", str(config))
    assert _matte(shot, small_bundle, *FRAMES, "--colour", "cam") == 0
    assert _rerun(shot, small_bundle, capsys, "--colour", "cam") == []
    config.write_text(_OCIO_CONFIG.format(gamma=1.8))
    monkeypatch.setattr(colour, "_configs", {})  # a new process: the config read again
    again = _rerun(shot, small_bundle, capsys, "--colour", "cam")
    assert len(again) == 3 and "was made with other settings: ocio " in again[0], again
    # The same config where another farm node mounts the share: the same result, not rendered again.
    moved = shot / "elsewhere" / "config.ocio"
    moved.parent.mkdir()
    moved.write_text(config.read_text())
    monkeypatch.setenv("OCIO", str(moved))
    assert _rerun(shot, small_bundle, capsys, "--colour", "cam") == []
