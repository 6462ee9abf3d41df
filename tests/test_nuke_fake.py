"""The fake ``nuke`` is strict and true to the ``types-nuke`` stubs, and its images are real."""

import ast
import glob
import os
import types

import numpy as np
import pytest
from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import read_exr, write_exr


def _stub_dir():
    import site

    for base in site.getsitepackages() + [site.getusersitepackages()]:
        path = os.path.join(base, "nuke-stubs")
        if os.path.isdir(path):
            return path
    pytest.skip("types-nuke is not installed")


def _stub_namespace():
    """Module-level names and class attributes (with bases) of the stubs' ``nuke`` package."""
    folder = _stub_dir()
    names = set()
    classes = {}
    bases = {}
    for path in glob.glob(os.path.join(folder, "*.pyi")):
        tree = ast.parse(open(path).read())
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                attrs = classes.setdefault(node.name, set())
                bases.setdefault(node.name, [b.id for b in node.bases if isinstance(b, ast.Name)])
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        attrs.add(item.name)
                    elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        attrs.add(item.target.id)
                names.add(node.name)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))

    def all_attrs(name, seen=()):
        attrs = set(classes.get(name, ()))
        for base in bases.get(name, ()):
            if base not in seen:
                attrs |= all_attrs(base, seen + (name,))
        return attrs

    return names, dict((name, all_attrs(name)) for name in classes)


def test_every_public_name_of_the_fake_exists_in_the_stubs(fake_nuke):
    names, classes = _stub_namespace()
    offered = [n for n, v in vars(fake_nuke).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)]
    assert offered, "the fake offers nothing"
    missing = sorted(set(offered) - names)
    assert not missing, f"the fake nuke offers names Nuke does not have: {missing}"
    for name in offered:
        value = getattr(fake_nuke, name)
        if not isinstance(value, type):
            continue
        public = set(a for c in value.__mro__ if c is not object for a in vars(c) if not a.startswith("_"))
        extra = sorted(public - classes[name])
        assert not extra, f"fake nuke.{name} has {extra}, which the stubs' {name} lacks"


def test_unknown_names_raise(fake_nuke):
    with pytest.raises(AttributeError, match="createNodes"):
        fake_nuke.createNodes  # noqa: B018 - a typo must fail
    read = fake_nuke.createNode("Read", inpanel=False)
    with pytest.raises(NameError, match="knob fille does not exist"):
        read["fille"]
    assert read.knob("fille") is None
    with pytest.raises(AttributeError, match="nodes"):
        read.nodes  # noqa: B018 - a Read is not a group
    with pytest.raises(RuntimeError, match="Unknown command"):
        fake_nuke.createNode("NoSuchNode", inpanel=False)


def test_nodes_constructor(fake_nuke):
    read = fake_nuke.nodes.Read(file="/x/a.####.exr", first=1001, name="Plate")
    assert read.name() == "Plate" and read["first"].value() == 1001 and read.parent() is fake_nuke.root()
    with pytest.raises(NameError, match="knob fille does not exist"):
        fake_nuke.nodes.Read(fille="x")
    with pytest.raises(RuntimeError, match="Unknown command"):
        fake_nuke.nodes.Writ()


def test_knobs_are_typed(fake_nuke):
    write = fake_nuke.createNode("Write", inpanel=False)
    with pytest.raises(ValueError, match="datatype: '8 bit' is not one of"):
        write["datatype"].setValue("8 bit")
    with pytest.raises(TypeError, match="file: string expected, got 3"):
        write["file"].setValue(3)
    with pytest.raises(TypeError, match="first: int expected, got '1'"):
        write["first"].setValue("1")
    write["datatype"].setValue("32 bit float")
    assert write["datatype"].value() == "32 bit float"


def test_groups_give_context_and_names(fake_nuke):
    node = fake_nuke.createNode("LBSMatte", inpanel=False)
    assert node.Class() == "LBSMatte" and node.name() == "LBSMatte1"
    assert [n.name() for n in node.nodes()] == ["plate", "trimap", "Trimap", "Result", "ShowTrimap", "Output1"]
    with node:
        inner = fake_nuke.createNode("Dot", inpanel=False)
        assert fake_nuke.toNode("Result") == node.node("Result")
    assert inner.parent() == node and inner.fullName() == "LBSMatte1.Dot1"
    assert fake_nuke.toNode("LBSMatte1.Result") == node.node("Result")
    assert fake_nuke.toNode("Result") is None
    node.begin()
    node.end()
    with pytest.raises(RuntimeError, match=r"LBSMatte1\.end\(\) without begin\(\)"):
        node.end()
    fake_nuke.delete(inner)
    assert node.node("Dot1") is None


def test_execute_writes_real_exr_frames_from_the_upstream_image(fake_nuke, sequences, tmp_path):
    read = fake_nuke.createNode("Read", inpanel=False)
    read["file"].setValue(sequences["plate"])
    read["first"].setValue(1001)
    read["last"].setValue(1003)
    write = fake_nuke.createNode("Write", inpanel=False)
    write.setInput(0, read)
    write["file"].setValue(str(tmp_path / "out" / "copy.####.exr"))
    write["file_type"].setValue("exr")
    write["channels"].setValue("rgba")
    write["datatype"].setValue("32 bit float")
    with pytest.raises(RuntimeError, match="No such file"):
        fake_nuke.execute(write, 1001, 1001)
    (tmp_path / "out").mkdir()
    fake_nuke.execute(write, 1001, 1002)
    source, _ = read_exr(sequences["plate"].replace("####", "1002"))
    copy, names = read_exr(str(tmp_path / "out" / "copy.1002.exr"))
    assert names == ["R", "G", "B", "A"]
    np.testing.assert_array_equal(copy[:, :, :3], source)
    assert np.all(copy[:, :, 3] == 0)  # Nuke writes a channel the input lacks as black
    assert not (tmp_path / "out" / "copy.1003.exr").exists()


def test_read_follows_expressions_of_its_group(fake_nuke, sequences):
    node = fake_nuke.createNode("LBSMatte", inpanel=False)
    read = node.node("Result")
    assert read["disable"].value() is True and read["disable"].hasExpression()
    assert node.channels() == ["rgba.red", "rgba.green", "rgba.blue", "rgba.alpha"]
    node["result_shown"].setValue(sequences["trimap"])
    node["result_first"].setValue(1001)
    node["result_last"].setValue(1003)
    node["result_ready"].setValue(True)
    fake_nuke.frame(1002)
    assert read["file"].evaluate() == sequences["trimap"].replace("####", "1002")
    assert (read.firstFrame(), read.lastFrame()) == (1001, 1003)
    assert node.channels() == ["rgba.red", "rgba.green", "rgba.blue", "rgba.alpha"]
    assert node.firstFrame() == 1001


def test_knob_changed_fires_with_the_panel_open_and_not_recursively(fake_nuke):
    seen = []

    def changed():
        knob = fake_nuke.thisKnob()
        seen.append(knob.name())
        if knob.name() == "device":
            fake_nuke.thisNode()["colour"].setValue("srgb")  # no nested callback for this

    fake_nuke.addKnobChanged(changed, nodeClass="LBSMatte")
    node = fake_nuke.createNode("LBSMatte", inpanel=False)
    node["device"].setValue("cpu")
    assert seen == []
    node.showControlPanel()
    node["device"].setValue("cuda")
    read = fake_nuke.createNode("Read", inpanel=False)
    node.setInput(0, read)
    assert seen == ["showPanel", "device", "inputChange"]
    assert node["colour"].value() == "srgb"


def test_script_round_trip(fake_nuke, sequences, tmp_path):
    read = fake_nuke.createNode("Read", inpanel=False)
    read["file"].setValue(sequences["plate"])
    node = fake_nuke.createNode("LBSMatte", inpanel=False)
    node.setInput(0, read)
    node["weights"].setValue("show [x] $HOME {a}")
    node["device"].setValue("cpu")
    path = str(tmp_path / "shot.nk")
    fake_nuke.scriptSave(path)
    text = open(path).read()
    assert "weights_list" not in text  # DO_NOT_WRITE
    assert "device cpu" in text
    fake_nuke._reset()
    fake_nuke._startup()
    fake_nuke.scriptOpen(path)
    again = fake_nuke.toNode("LBSMatte1")
    assert again["weights"].value() == "show [x] $HOME {a}"
    assert again["device"].value() == "cpu"
    assert again.input(0) == fake_nuke.toNode("Read1") and again.input(1) is None
    assert fake_nuke.root()["name"].value() == path


def test_layers_progress_and_main_thread_queue(fake_nuke):
    layer = fake_nuke.Layer("fg", ["fg.red", "fg.green", "fg.blue"])
    assert layer.channels() == ["fg.red", "fg.green", "fg.blue"]
    with pytest.raises(ValueError, match="layer fg exists with channels"):
        fake_nuke.Layer("fg", ["fg.red"])
    task = fake_nuke.ProgressTask("x")
    with pytest.raises(ValueError, match="progress must be an int in 0..100, got 101"):
        task.setProgress(101)
    assert not task.isCancelled()
    fake_nuke._cancel_hook = lambda t: True
    assert task.isCancelled()
    calls = []
    fake_nuke.executeInMainThread(calls.append, args=(1,))
    assert calls == []
    fake_nuke._run_main_queue()
    assert calls == [1]


def test_write_refuses_what_the_fake_cannot_do(fake_nuke, tmp_path):
    constant = tmp_path / "c.exr"
    write_exr(str(constant), np.ones((2, 2, 3), np.float32), ["R", "G", "B"])
    read = fake_nuke.createNode("Read", inpanel=False)
    read["file"].setValue(str(constant))
    write = fake_nuke.createNode("Write", inpanel=False)
    write.setInput(0, read)
    write["file"].setValue(str(tmp_path / "x.png"))
    write["file_type"].setValue("png")
    with pytest.raises(NotImplementedError, match="Write writes exr only, not 'png'"):
        fake_nuke.execute(write, 1, 1)
    with pytest.raises(RuntimeError, match="cannot be executed"):
        fake_nuke.execute(read, 1, 1)


def test_op_hashes_follow_knobs_inputs_and_frame_not_name_or_position(fake_nuke, sequences):
    read = fake_nuke.nodes.Read()
    read["file"].setValue(sequences["plate"])
    read["first"].setValue(1001)
    read["last"].setValue(1003)
    grade = fake_nuke.nodes.Grade()
    grade.setInput(0, read)
    fake_nuke.frame(1001)
    first = grade.opHashes()
    assert isinstance(first, list) and len(first) == 1 and isinstance(first[0], int)
    grade.setName("Renamed")
    grade["xpos"].setValue(500)
    assert grade.opHashes() == first
    fake_nuke.frame(1002)
    assert grade.opHashes() != first  # another frame reads another file
    fake_nuke.frame(1001)
    grade["white"].setValue(1.5)
    assert grade.opHashes() != first
    grade["white"].setValue(1.0)
    assert grade.opHashes() == first
    other = fake_nuke.nodes.Read()
    other["file"].setValue(sequences["trimap"])
    grade.setInput(0, other)
    assert grade.opHashes() != first
    with pytest.raises(AttributeError, match="opHash"):
        fake_nuke.opHash  # noqa: B018 (strict: no such function in Nuke)


def test_write_metadata_follows_its_knob_like_nuke(fake_nuke, sequences, tmp_path):
    import OpenImageIO as oiio

    read = fake_nuke.nodes.Read()
    read["file"].setValue(sequences["plate"])
    read["first"].setValue(1001)
    read["last"].setValue(1001)
    found = {}
    for choice in ("no metadata", "default metadata", "all metadata except input/*", "all metadata"):
        write = fake_nuke.nodes.Write()
        write.setInput(0, read)
        write["file"].setValue(str(tmp_path / (choice.replace(" ", "_").replace("/*", "") + ".####.exr")))
        write["file_type"].setValue("exr")
        write["channels"].setValue("rgb")
        write["metadata"].setValue(choice)
        fake_nuke.execute(write, 1001, 1001)
        image = oiio.ImageInput.open(write["file"].value().replace("####", "1001"))
        found[choice] = set(a.name for a in image.spec().extra_attribs)
        image.close()
    assert "nuke/node_hash" not in found["no metadata"]
    assert {"nuke/node_hash", "nuke/version", "DateTime"} <= found["default metadata"]
    assert not [n for n in found["all metadata except input/*"] if n.startswith("input/")]
    assert {"input/filename", "input/mtime", "input/filesize"} <= found["all metadata"]


def test_each_call_hands_out_a_new_python_object_equal_to_the_others(fake_nuke):
    # As Nuke does: node.input(), toNode, allNodes, Group.node, thisNode make a new Python object for
    # the node each time; == and hash() follow the node, `is` and id() do not.
    read = fake_nuke.createNode("Read", inpanel=False)
    grade = fake_nuke.createNode("Grade", inpanel=False)
    grade.setInput(0, read)
    one, two = grade.input(0), fake_nuke.toNode("Read1")
    assert one == two == read and one is not two and len(set([one, two, read])) == 1
    assert fake_nuke.allNodes("Grade")[0] == grade and fake_nuke.allNodes("Grade")[0] is not grade
    one["first"].setValue(7)
    assert read["first"].value() == 7  # the same node behind both
    assert grade.input(0) != grade


def test_get_value_is_a_number_at_the_current_frame_as_in_nuke(fake_nuke):
    # Nuke: getValue/getValueAt give the number (a menu's index, 0/1 for a checkbox); value() the
    # entry's name, the bool, the int.
    write = fake_nuke.nodes.Write()
    write["datatype"].setValue("32 bit float")
    write["create_directories"].setValue(True)
    write["first"].setValue(7)
    assert write["datatype"].value() == "32 bit float"
    assert write["datatype"].getValue() == 1.0 and isinstance(write["datatype"].getValue(), float)
    assert write["datatype"].getValueAt(5) == 1.0 and isinstance(write["datatype"].getValueAt(5), float)
    assert write["create_directories"].value() is True
    assert write["create_directories"].getValue() == 1.0 and isinstance(write["create_directories"].getValue(), float)
    assert isinstance(write["create_directories"].getValueAt(5), float)
    assert write["first"].value() == 7 and isinstance(write["first"].getValue(), float)


def test_a_menu_keyed_outside_its_entries_is_refused(fake_nuke):
    write = fake_nuke.nodes.Write()
    write["datatype"].setExpression("frame")
    fake_nuke.frame(1)
    assert write["datatype"].value() == "32 bit float"
    fake_nuke.frame(5)
    with pytest.raises(NotImplementedError, match="datatype is 5, outside its menu"):
        write["datatype"].value()


def _held_offset(fake_nuke, sequences):
    """Read 1001-1003 -> TimeOffset keyed 1 at 1003, 2 at 1005 -> FrameHold of 1003."""
    read = fake_nuke.nodes.Read(file=sequences["plate"], first=1001, last=1003)
    shift = fake_nuke.nodes.TimeOffset()
    shift.setInput(0, read)
    shift["time_offset"].setAnimated()
    shift["time_offset"].setValueAt(1, 1003)
    shift["time_offset"].setValueAt(2, 1005)
    hold = fake_nuke.nodes.FrameHold(first_frame=1003)
    hold.setInput(0, shift)
    return shift, hold


def test_a_time_offset_reads_its_offset_at_the_frame_pulled_not_the_current_one(fake_nuke, sequences, tmp_path):
    # The hold pulls the TimeOffset at 1003 whatever the current frame: Nuke evaluates its offset
    # there (1), so every frame shows the plate's 1002, not 1005 - 2 = 1003's neighbour 1001.
    shift, hold = _held_offset(fake_nuke, sequences)
    fake_nuke.frame(1003)
    held = hold.opHashes()
    fake_nuke.frame(1005)
    assert hold.opHashes() == held
    write = fake_nuke.nodes.Write(file=str(tmp_path / "held.####.exr"), file_type="exr")
    write.setInput(0, hold)
    fake_nuke.execute(write, 1005, 1005)
    copy, _ = read_exr(str(tmp_path / "held.1005.exr"))
    source, _ = read_exr(sequences["plate"].replace("####", "1002"))
    np.testing.assert_array_equal(copy, source)


def test_a_time_offset_refuses_what_nuke_does_not_document(fake_nuke, sequences):
    shift, _ = _held_offset(fake_nuke, sequences)
    with pytest.raises(NotImplementedError, match="frame range of a TimeOffset with an animated time_offset"):
        shift.firstFrame()
    shift["time_offset"].clearAnimated()
    shift["time_offset"].setValue(1.5)
    with pytest.raises(NotImplementedError, match="1.5 is not a whole number of frames"):
        shift.opHashes()
    shift["time_offset"].setValue(2)
    assert (shift.firstFrame(), shift.lastFrame()) == (1003, 1005)


def test_frame_hold_and_frame_range_refuse_what_nuke_does_not_document(fake_nuke, sequences):
    read = fake_nuke.nodes.Read(file=sequences["plate"], first=1001, last=1003)
    hold = fake_nuke.nodes.FrameHold(first_frame=1002, increment=-1)
    hold.setInput(0, read)
    with pytest.raises(NotImplementedError, match="increment -1 \\(negative\\)"):
        hold.opHashes()
    hold["increment"].setValue(0)
    fake_nuke.frame(1)
    hold["first_frame"].setAnimated()
    hold["first_frame"].setValueAt(1001, 1)
    hold["first_frame"].setValueAt(1002, 3)
    fake_nuke.frame(2)  # between the keys: a fraction of a frame
    with pytest.raises(NotImplementedError, match="first_frame 1001.5"):
        hold.opHashes()
    span = fake_nuke.nodes.FrameRange(first_frame=1001, last_frame=1002)
    span.setInput(0, read)
    fake_nuke.frame(1002)
    inside = span.opHashes()
    assert inside != read.opHashes() and (span.firstFrame(), span.lastFrame()) == (1001, 1002)
    fake_nuke.frame(1003)
    with pytest.raises(NotImplementedError, match="FrameRange1 at frame 1003, outside its range 1001-1002"):
        span.opHashes()
    span["last_frame"].setAnimated()
    with pytest.raises(NotImplementedError, match="animated last_frame"):
        span.lastFrame()


def test_keys_on_a_string_knob_and_unknown_curve_letters_are_refused(fake_nuke):
    # nuke.Knob offers keys on every knob; what a keyed string gives is not documented.
    write = fake_nuke.nodes.Write()
    assert write["file"].isAnimated(0) is False and write["file"].hasExpression(0) is False
    with pytest.raises(NotImplementedError, match="animating File_Knob knob file"):
        write["file"].setAnimated()
    with pytest.raises(NotImplementedError, match="a key on File_Knob knob file"):
        write["file"].setValueAt("/x.exr", 3)
    with pytest.raises(NotImplementedError, match="getValueAt of File_Knob knob file"):
        write["file"].getValueAt(3)
    with pytest.raises(NotImplementedError, match="setValueAt on first, which is not animated"):
        write["first"].setValueAt(4, 1)
    assert write["first"].value() == 1 and not write["first"].isAnimated()
    write["first"].fromScript("{{curve x1 4 x10 20}}")
    assert (write["first"].getValueAt(1), write["first"].getValueAt(10)) == (4.0, 20.0)
    with pytest.raises(NotImplementedError, match="'K' in"):
        write["first"].fromScript("{{curve K x1 4 x10 20}}")


def test_retime_has_nukes_switches_and_refuses_them_when_on(fake_nuke, sequences):
    read = fake_nuke.nodes.Read(file=sequences["plate"], first=1001, last=1003)
    retime = fake_nuke.nodes.Retime(speed=2.0)
    retime.setInput(0, read)
    fake_nuke.frame(1002)
    assert retime["reverse"].value() is False and retime["output.first_lock"].value() is False
    retime.opHashes()
    retime["reverse"].setValue(True)
    with pytest.raises(NotImplementedError, match="Retime reverse"):
        retime.opHashes()


def test_an_expression_reads_a_menu_as_its_index(fake_nuke):
    # LBSMatteLive's Switch: which {{parent.trimap_input}} (trimap 0, rough matte 1), as in Nuke.
    group = fake_nuke.nodes.Group()
    group.addKnob(fake_nuke.Enumeration_Knob("trimap_input", "trimap input", ["trimap", "rough matte"]))
    group.addKnob(fake_nuke.String_Knob("note"))
    with group:
        switch = fake_nuke.nodes.Switch()
    switch["which"].setExpression("parent.trimap_input")
    assert switch["which"].value() == 0
    group["trimap_input"].setValue("rough matte")
    assert switch["which"].value() == 1 and switch["which"].getValueAt(7) == 1.0
    switch["which"].setExpression("parent.note")
    with pytest.raises(NotImplementedError, match="reads String_Knob knob note"):
        switch["which"].value()


def test_a_file_knob_evaluates_to_the_file_of_the_current_frame(fake_nuke, tmp_path):
    """As Nuke's File_Knob.evaluate(): TCL evaluated, each '#' run and %d / %0Nd replaced by the current
    frame wherever it is in the path (a folder's name too); value() keeps the pattern."""
    read = fake_nuke.createNode("Read", inpanel=False)
    read["file"].setValue("/shows/sh#01/plate.####.exr")
    fake_nuke.frame(1002)
    assert read["file"].evaluate() == "/shows/sh100201/plate.1002.exr"
    assert read["file"].value() == "/shows/sh#01/plate.####.exr"
    read["file"].setValue("/jobs/%02d/plate.%04d.exr")
    fake_nuke.frame(7)
    assert read["file"].evaluate() == "/jobs/07/plate.0007.exr"


def test_all_nodes_recursing_groups_goes_into_gizmos_too(fake_nuke):
    """nuke.allNodes(recurseGroups=True) returns "all child nodes within any group nodes", and a
    gizmo is a Group (nuke.Gizmo's base): the LBSMatte gizmo's own Reads are among them."""
    node = fake_nuke.createNode("LBSMatte", inpanel=False)
    assert [n.fullName() for n in fake_nuke.allNodes("Read")] == []
    found = sorted(n.fullName() for n in fake_nuke.allNodes("Read", recurseGroups=True))
    assert found == [f"{node.name()}.Result", f"{node.name()}.Trimap"]
