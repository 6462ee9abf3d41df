"""A studio's knob defaults (``nuke.knobDefault`` in its menu.py or init.py) and render callbacks
reach every node LBSMatte makes or drives: the bake Writes, the gizmo's Reads. None may change
what the node bakes or shows, and a callback that interferes where it cannot be kept out is named."""

import os

import numpy as np
import pytest
from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import make_graph, read_exr

from nuke_plugin import cache, compute


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

