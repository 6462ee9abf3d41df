"""A studio's knob defaults (``nuke.knobDefault`` in its menu.py or init.py) and render callbacks
reach every node LBSMatte makes or drives: the bake Writes, the gizmo's Reads. None may change
what the node bakes or shows, and a callback that interferes where it cannot be kept out is named."""

import os

import numpy as np
import pytest
from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import make_graph, read_exr, write_exr

from nuke_plugin import cache, compute
from nuke_plugin import node as lbs_node
from nuke_plugin.errors import NodeError


def _stale(fake_nuke, node):
    """Compute, then an upstream edit the node has not computed."""
    assert compute.compute(node).ok
    grade = fake_nuke.nodes.Grade()
    grade.setInput(0, node.input(0))
    node.setInput(0, grade)
    grade["white"].setValue(2.0)
    fake_nuke.frame(1001)
    fake_nuke._update_ui()
    assert node["result_stale"].value()


# -- the gizmo's Reads -----------------------------------------------------------------------------
@pytest.mark.parametrize("missing_frames", ["black", "nearest frame"])
def test_a_studio_default_for_missing_frames_never_shows_a_stale_or_missing_result_as_a_picture(
        fake_nuke, lbs_env, sequences, missing_frames):
    # knobDefault("Read.on_error", "black") is common (a comp renders on over a missing plate frame).
    # The gizmo's Reads left the knob to it: the STALE mark (a file that is not there) showed black
    # in the viewer instead of Nuke's red error naming it, and a result frame gone from the cache
    # showed black, or the frame next to it, as if it were the matte.
    fake_nuke.knobDefault("Read.on_error", missing_frames)
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    os.remove(cache.frame_path(node["result_file"].value(), 1002))
    with pytest.raises(RuntimeError, match="Read error: .*lbsmatte.1002.exr: No such file"):
        node._image(1002)
    _stale(fake_nuke, node)
    with pytest.raises(RuntimeError, match="Read error: STALE - LBSMatte1: plate or trimap changed"):
        node._image(1001)
    node["show_trimap"].setValue(True)
    with pytest.raises(RuntimeError, match="Read error: STALE - LBSMatte1: plate or trimap changed"):
        node._image(1001)


def test_a_studio_default_of_auto_alpha_adds_no_alpha_to_the_trimap_shown(fake_nuke, lbs_env, sequences):
    # The trimap the tool used is written as RGB: with knobDefault("Read.auto_alpha", "true") the
    # internal Read gave it an opaque alpha that it does not have.
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    node["show_trimap"].setValue(True)
    expected = node._image(1001)
    fake_nuke._reset()
    fake_nuke._startup()
    fake_nuke.knobDefault("Read.auto_alpha", "true")
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    node["show_trimap"].setValue(True)
    shown = node._image(1001)
    assert shown.channels == expected.channels and "rgba.alpha" not in shown.channels
    np.testing.assert_array_equal(shown.pixels, expected.pixels)


def test_studio_defaults_of_colourspace_and_raw_leave_the_shown_result_as_written(fake_nuke, lbs_env, sequences):
    # The gizmo's Reads say raw: a class-wide colourspace or raw default does not reach them.
    fake_nuke.knobDefault("Read.colorspace", "sRGB")
    fake_nuke.knobDefault("Read.raw", "false")
    fake_nuke.knobDefault("Read.premultiplied", "true")
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    written, names = read_exr(cache.frame_path(node["result_file"].value(), 1001))
    shown = node._image(1001)
    assert shown.pixels.shape == written.shape
    np.testing.assert_array_equal(shown.pixels[:, :, shown.channels.index("rgba.alpha")],
                                  written[:, :, names.index("A")])


# -- the bake Writes -------------------------------------------------------------------------------
def _bake(fake_nuke, node, tmp_path):
    folder = tmp_path / "bake"
    folder.mkdir(exist_ok=True)
    return lbs_node.bake(node, str(folder), 1001, 1001)


def test_a_studio_default_of_exr_autocrop_keeps_the_baked_plates_data_window(fake_nuke, lbs_env, sequences,
                                                                             tmp_path):
    # knobDefault("Write.exr.autocrop", "true") shrank the baked plate's data window to its pixels
    # that are not black: the result, which gets the plate's data window, lost the matte there
    # (a foreground's crushed blacks at the frame's edge, a letterbox).
    plate, names = read_exr(sequences["plate"].replace("####", "1001"))
    plate[:, :5] = 0.0
    plate[:3] = 0.0
    write_exr(sequences["plate"].replace("####", "1001"), plate, names, half=False)
    fake_nuke.knobDefault("Write.exr.autocrop", "true")
    node = make_graph(fake_nuke, sequences)
    baked, trimap, failed = _bake(fake_nuke, node, tmp_path)
    assert not failed
    import OpenImageIO as oiio

    for path, source in ((baked, sequences["plate"]), (trimap, sequences["trimap"])):
        spec = oiio.ImageInput.open(path.replace("####", "1001")).spec()
        original = oiio.ImageInput.open(source.replace("####", "1001")).spec()
        assert (spec.x, spec.y, spec.width, spec.height) == (original.x, original.y, original.width, original.height)
    pixels, _ = read_exr(baked.replace("####", "1001"))
    np.testing.assert_array_equal(pixels, plate)


@pytest.mark.parametrize("hook", ["beforeRender", "beforeFrameRender", "afterFrameRender", "afterRender"])
def test_a_studio_default_of_a_writes_own_render_callback_is_not_run_on_the_bake(fake_nuke, lbs_env, sequences,
                                                                                 tmp_path, monkeypatch, hook):
    # knobDefault("Write.afterRender", "studio.publish()") (or a beforeRender that makes folders,
    # checks names, saves the script: studios' menu.py files do) ran on LBSMatte's temporary bake
    # Writes: a publish of a temporary file, the artist's script saved by a Compute.
    calls = []
    monkeypatch.setattr(fake_nuke, "published", calls, raising=False)  # what the studio's hook records
    fake_nuke.knobDefault(f"Write.{hook}", "nuke.published.append(nuke.thisNode()['file'].evaluate())")
    node = make_graph(fake_nuke, sequences)
    _, _, failed = _bake(fake_nuke, node, tmp_path)
    assert not failed and calls == []


def _retarget(fake_nuke, tmp_path):
    """A naming-convention enforcer: every Write renders into the show's render folder."""
    def hook():
        write = fake_nuke.thisNode()
        write["file"].setValue(str(tmp_path / "renders" / os.path.basename(write["file"].evaluate())))
        write["create_directories"].setValue(True)
    return hook


def test_a_studio_callback_that_moves_the_bake_elsewhere_is_named(fake_nuke, lbs_env, sequences, tmp_path):
    # nuke.addBeforeRender(enforce_naming, nodeClass="Write") rewrote the bake Write's file: the
    # plate went to the show's render folder and the core got none (or an earlier bake's).
    fake_nuke.addBeforeRender(_retarget(fake_nuke, tmp_path), nodeClass="Write")
    node = make_graph(fake_nuke, sequences)
    with pytest.raises(NodeError, match="(?s)LBSMatte1: .*the file knob .* changed .* addBeforeRender.* lbsmatte_file"):
        _bake(fake_nuke, node, tmp_path)


def test_a_studio_callback_that_moves_the_baked_file_away_is_named(fake_nuke, lbs_env, sequences, tmp_path):
    # nuke.addAfterFrameRender(publish) moving each frame into the publish area.
    def publish():
        path = fake_nuke.thisNode()["file"].evaluate()
        os.makedirs(str(tmp_path / "published"), exist_ok=True)
        os.rename(path, str(tmp_path / "published" / os.path.basename(path)))

    fake_nuke.addAfterFrameRender(publish, nodeClass="Write")
    node = make_graph(fake_nuke, sequences)
    with pytest.raises(NodeError, match="(?s)LBSMatte1: .*plate.1001.exr.* not there after .*render"):
        _bake(fake_nuke, node, tmp_path)


def test_an_accepted_render_at_a_frame_whose_result_file_is_missing_names_the_node(fake_nuke, lbs_env, sequences,
                                                                                   tmp_path, capsys):
    # accept stale result warned "rendering black there" and the render then failed on the internal
    # Read's error naming only a cache file: its missing frames are an error (whatever the studio's
    # Read.on_error), so the check says so, naming the node and the frame.
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    os.remove(cache.frame_path(node["result_file"].value(), 1002))
    node["accept_stale"].setValue(True)
    write = fake_nuke.nodes.Write()
    write.setInput(0, node)
    write["file"].setValue(str(tmp_path / "comp.####.exr"))
    write["file_type"].setValue("exr")
    write["channels"].setValue("rgba")
    fake_nuke.execute(write, 1001, 1001)
    capsys.readouterr()
    with pytest.raises(RuntimeError, match="LBSMatte: stale or missing result: LBSMatte1: frame 1002 has no result"):
        fake_nuke.execute(write, 1002, 1002)
    out = capsys.readouterr().out
    assert "ERROR: LBSMatte1: frame 1002 has no result" in out and "rendering black" not in out
