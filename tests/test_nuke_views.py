"""An LBSMatte node in a script of several views (stereo: ``left`` and ``right``).

One Compute mattes one view, and its result, a file of one view, is what Nuke's Read shows in
every view: inputs that differ between the views are refused, naming them and what to do (a
node per view, OneView above it, JoinViews below); inputs the same in every view are matted once.
"""

import os

import numpy as np
import pytest
from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import FRAMES, cli_calls, make_graph, read_exr, write_exr, write_shot

from nuke_plugin import batch, cache, compute
from nuke_plugin import node as lbs_node
from nuke_plugin.errors import NodeError

#: The Root's views knob as Nuke's "Set up views for stereo" writes it in a .nk file.
STEREO = "{{left #ff0000} {right #00ff00}}"


def _stereo_plates(sequences):
    """``plate.left.####.exr`` (the plate) and ``plate.right.####.exr`` (it moved 3 pixels):
    the pattern with ``%V``."""
    folder = sequences["folder"]
    for frame in range(FRAMES[0], FRAMES[1] + 1):
        pixels, names = read_exr(cache.frame_path(sequences["plate"], frame))
        write_exr(str(folder / f"plate.left.{frame:04d}.exr"), pixels, names)
        write_exr(str(folder / f"plate.right.{frame:04d}.exr"), np.roll(pixels, 3, axis=1), names)
    return str(folder / "plate.%V.####.exr")


def test_the_fake_has_nukes_views(fake_nuke, sequences, tmp_path):
    assert fake_nuke.views() == ["main"]  # a new script
    fake_nuke.root()["views"].fromScript(STEREO)
    assert fake_nuke.views() == ["left", "right"]
    read = fake_nuke.nodes.Read(file=_stereo_plates(sequences), first=1001, last=1001)
    write = fake_nuke.nodes.Write(file=str(tmp_path / "out.%v.####.exr"), file_type="exr", channels="rgb")
    write.setInput(0, read)
    fake_nuke.execute(write, 1001, 1001, 1, ["right"])
    assert "out.r.1001.exr" in os.listdir(str(tmp_path))  # %v: the view's first letter
    right = read_exr(str(sequences["folder"] / "plate.right.1001.exr"))[0]
    np.testing.assert_allclose(read_exr(str(tmp_path / "out.r.1001.exr"))[0], right, atol=1e-3)
    write["file"].setValue(str(tmp_path / "both.####.exr"))
    with pytest.raises(NotImplementedError, match="multi-view"):  # Nuke writes one multi-view EXR: not faked
        fake_nuke.execute(write, 1001, 1001)


def test_inputs_that_differ_between_views_are_refused_naming_the_views(fake_nuke, lbs_env, sequences):
    fake_nuke.root()["views"].fromScript(STEREO)
    node = make_graph(fake_nuke, dict(sequences, plate=_stereo_plates(sequences)))
    with pytest.raises(NodeError) as caught:
        compute.compute(node)
    message = str(caught.value)
    for words in ("LBSMatte1", "plate", "left and right", "frame 1001", "left's matte in every view",
                  "OneView", "JoinViews"):
        assert words in message, message
    assert cli_calls(lbs_env) == [], "nothing is matted"
    assert not node["result_ready"].value()
    assert not os.listdir(os.path.join(lbs_env["cache"], cache.BAKE_FOLDER))  # baked inputs removed


def test_inputs_the_same_in_every_view_are_matted_once_for_all(fake_nuke, lbs_env, sequences):
    fake_nuke.root()["views"].fromScript(STEREO)
    node = make_graph(fake_nuke, sequences)  # a mono plate and trimap in a stereo script
    result = compute.compute(node)
    assert result.ok and sorted(result.computed) == [1001, 1002, 1003]
    assert len(cli_calls(lbs_env)) == 1
    baked = [path for _, _, path in fake_nuke._executions]
    assert any("plate_view_right." in path for path in baked) and any("trimap_view_right." in path for path in baked)
    again = compute.compute(node)  # the same key: the right view's bake is no input of the core
    assert again.ok and again.job.key == result.job.key and again.computed == []


def test_the_farm_refuses_a_stereo_shot_whose_views_differ(fake_nuke, lbs_env, sequences, tmp_path, capsys):
    shot = write_shot(str(tmp_path / "shot.nk"), dict(sequences, plate=_stereo_plates(sequences)))
    with open(shot) as handle:
        text = handle.read()
    with open(shot, "w") as handle:
        handle.write(text.replace(" first_frame", " views " + STEREO + "\n first_frame", 1))
    assert batch.main([shot, "--node", "LBSMatte1"]) == batch.EXIT_FAILED
    errors = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ERROR")]
    assert errors and "left and right" in errors[0] and "OneView" in errors[0], errors
    assert cli_calls(lbs_env) == []


def test_a_frame_missing_in_one_view_fails_that_frame_naming_the_view(fake_nuke, lbs_env, sequences):
    fake_nuke.root()["views"].fromScript(STEREO)
    pattern = _stereo_plates(sequences)
    for frame in range(FRAMES[0], FRAMES[1] + 1):  # the right eye the same as the left
        os.replace(pattern.replace("%V", "left").replace("####", f"{frame:04d}"),
                   pattern.replace("%V", "right").replace("####", f"{frame:04d}"))
        write_exr(pattern.replace("%V", "left").replace("####", f"{frame:04d}"),
                  *read_exr(pattern.replace("%V", "right").replace("####", f"{frame:04d}")))
    os.remove(pattern.replace("%V", "right").replace("####", "1002"))
    node = make_graph(fake_nuke, dict(sequences, plate=pattern))
    result = compute.compute(node)
    assert not result.ok and result.missing == [1002] and sorted(result.computed) == [1001, 1003]
    assert "frame 1002: could not bake the plate, view right" in result.errors[0], result.errors
    for frame in (1001, 1003):
        os.remove(pattern.replace("%V", "right").replace("####", f"{frame:04d}"))
    with pytest.raises(NodeError, match="no frame of 1001-1003 could be baked; frame 1001: could not bake the "
                                        "plate, view right"):
        compute.compute(node)


def test_views_set_up_after_compute_make_the_result_stale_until_compute_checks_them(fake_nuke, lbs_env, sequences):
    # Computed in a mono script, the result was never compared with a right eye: a Read of a stereo
    # EXR shows each eye once the script has views, its own knobs (and op hashes) unchanged.
    node = make_graph(fake_nuke, sequences)
    assert compute.compute(node).ok
    fake_nuke.root()["views"].fromScript(STEREO)
    reason, frames = lbs_node.find_stale(node)
    assert reason == "the script's views changed since Compute (main, now left, right)" and frames == [1001, 1002, 1003]
    lbs_node.check_current_frame(node)
    assert node["status"].value().startswith("STALE: LBSMatte1: the script's views changed since Compute")
    again = compute.compute(node)  # both views baked and compared: the same inputs, the same key
    assert again.ok and again.computed == [] and lbs_node.find_stale(node) == ("", [])


def _node_per_view(nuke, sequences, plate):
    """The set-up the refusal asks for: per view an LBSMatte node under a OneView of that view
    (plate and trimap), the two results joined by a JoinViews. Returns the two nodes and the join."""
    plate_read = nuke.nodes.Read(file=plate, first=FRAMES[0], last=FRAMES[1])
    trimap_read = nuke.nodes.Read(file=sequences["trimap"], first=FRAMES[0], last=FRAMES[1])
    mattes = []
    for view in ("left", "right"):
        ones = [nuke.nodes.OneView(view=view) for _ in range(2)]  # made before the node: saved before it
        node = nuke.createNode("LBSMatte", inpanel=False)
        node.setName("LBSMatte_" + view)
        node["weights"].setValue("testbundle")
        for number, (one, source) in enumerate(zip(ones, (plate_read, trimap_read), strict=True)):
            one.setInput(0, source)
            node.setInput(number, one)
        mattes.append(node)
    join = nuke.nodes.JoinViews()
    for index, node in enumerate(mattes):
        join.setInput(index, node)
    return mattes, join


def test_a_node_per_view_under_oneview_mattes_each_view_from_its_own_plate(fake_nuke, lbs_env, sequences, tmp_path):
    fake_nuke.root()["views"].fromScript(STEREO)
    plate = _stereo_plates(sequences)
    mattes, join = _node_per_view(fake_nuke, sequences, plate)
    for node in mattes:
        assert compute.compute(node).ok
    assert len(cli_calls(lbs_env)) == 2
    write = fake_nuke.nodes.Write(file=str(tmp_path / "out.%V.####.exr"), file_type="exr", channels="all")
    write.setInput(0, join)
    fake_nuke.execute(write, 1001, 1001, 1, ["left", "right"])
    for view in ("left", "right"):  # the stand-in core's fg is the plate it was given
        pixels, names = read_exr(str(tmp_path / f"out.{view}.1001.exr"))
        fg = pixels[:, :, [names.index(c) for c in ("fg.red", "fg.green", "fg.blue")]]
        plate_pixels = read_exr(plate.replace("%V", view).replace("####", "1001"))[0][:, :, :3]
        np.testing.assert_allclose(fg, plate_pixels, atol=1e-3, err_msg=view)
    assert [lbs_node.find_stale(node) for node in mattes] == [("", []), ("", [])]


def test_the_farm_computes_a_node_per_view_in_one_job_into_one_copy(fake_nuke, lbs_env, sequences, tmp_path, capsys):
    # One job per node would write two copies of the same name, each showing its own node's result
    # only: the comp render of the last one written found no result in the other view's node.
    fake_nuke.root()["views"].fromScript(STEREO)
    plate = _stereo_plates(sequences)
    _node_per_view(fake_nuke, sequences, plate)
    shot, comp = str(tmp_path / "shot.nk"), str(tmp_path / "shot.lbsmatte.nk")
    fake_nuke.scriptSave(shot)
    fake_nuke._reset()
    fake_nuke._startup()
    assert batch.main([shot, "--node", "LBSMatte_left", "--node", "LBSMatte_right", "--save-as", comp]) == batch.EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert len([line for line in out if line.startswith("LBSMATTE RESULT ")]) == 2, out
    assert f"LBSMATTE SAVED {comp}" in out and not [line for line in out if line.startswith("ERROR")]
    assert len(cli_calls(lbs_env)) == 2
    fake_nuke._reset()
    fake_nuke._startup()
    fake_nuke.scriptOpen(comp)  # what the comp render (nuke -X) loads
    for view in ("left", "right"):
        node = fake_nuke.toNode("LBSMatte_" + view)
        assert node["result_ready"].value() and lbs_node.find_stale(node) == ("", []), view
        fg = fake_nuke.toNode("JoinViews1")
        write = fake_nuke.nodes.Write(file=str(tmp_path / f"out_{view}.####.exr"), file_type="exr", channels="all")
        write.setInput(0, fg)
        fake_nuke.execute(write, 1002, 1002, 1, [view])
        pixels, names = read_exr(str(tmp_path / f"out_{view}.1002.exr"))
        matted = pixels[:, :, [names.index(c) for c in ("fg.red", "fg.green", "fg.blue")]]
        plate_pixels = read_exr(plate.replace("%V", view).replace("####", "1002"))[0][:, :, :3]
        np.testing.assert_allclose(matted, plate_pixels, atol=1e-3, err_msg=view)


def test_the_farm_writes_no_copy_when_a_node_it_was_given_computed_nothing(fake_nuke, lbs_env, sequences, tmp_path,
                                                                           capsys):
    fake_nuke.root()["views"].fromScript(STEREO)
    mattes, _ = _node_per_view(fake_nuke, sequences, _stereo_plates(sequences))
    mattes[1].setInput(1, None)  # the right view's node has no trimap
    shot, comp = str(tmp_path / "shot.nk"), str(tmp_path / "shot.lbsmatte.nk")
    fake_nuke.scriptSave(shot)
    fake_nuke._reset()
    fake_nuke._startup()
    assert batch.main([shot, "--node", "LBSMatte_right", "--node", "LBSMatte_left", "--save-as", comp]) == \
        batch.EXIT_FAILED
    errors = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 2 and "LBSMatte_right" in errors[0], errors
    assert errors[1].startswith(f"ERROR: {comp} not written: LBSMatte_right computed no result"), errors
    assert len(cli_calls(lbs_env)) == 1, "the left view's node still computed"
    assert not os.path.exists(comp)


@pytest.mark.parametrize("token", ["%V", "%v"])
def test_a_cache_folder_naming_the_view_is_refused_by_name(fake_nuke, lbs_env, sequences, tmp_path, token):
    # Nuke fills %V in anywhere in a Write's path: the bake went to cache_left/, where the node never
    # looked ("no frame ... could be baked: Can't write .../cache_left/...").
    fake_nuke.root()["views"].fromScript(STEREO)
    node = make_graph(fake_nuke, sequences)
    node["cache_dir"].setValue(str(tmp_path / f"cache_{token}"))
    with pytest.raises(NodeError, match=f"the cache folder .*cache_{token} has '{token}' in it, which Nuke reads as "
                                        "the view"):
        compute.compute(node)
    assert cli_calls(lbs_env) == []
    assert not [name for name in os.listdir(str(tmp_path)) if name.startswith("cache_")]  # nothing baked anywhere
