"""The Nuke layer inside a real Nuke (``nuke -t``).

Skipped unless ``LBSMATTE_NUKE_EXE`` names a Nuke executable (marker ``nuke``); it has NOT run
in CI, where Nuke cannot be installed. Run it on a workstation with a Nuke licence::

    LBSMATTE_NUKE_EXE=/usr/local/Nuke15.1v1/Nuke15.1 python -m pytest tests/nuke_real -m nuke -v

What it settles that the fake cannot: that Nuke parses the gizmo as written (knob types, the
expressions and TCL driving the internal Read), that an EXR's ``fg.R`` reads as ``fg.red``, that
baking the same inputs twice hashes the same (no time stamp slips into the key), and the farm
path: ``batch.py`` end to end with the real core, exit status through ``sys.exit``, a comp
render (``nuke -X``) reading the cache from the ``--save-as`` copy, and the same render failing
with an ``ERROR:`` line once an input changed after Compute (op hashes per ``nuke.frame()``), and
the knob semantics the fake assumes (getValue's numbers, a TimeOffset keyed under a FrameHold).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from fake_nuke.fixtures import REPO, read_exr, write_exr, write_shot  # noqa: E402

NUKE = os.environ.get("LBSMATTE_NUKE_EXE", "")
pytestmark = [pytest.mark.nuke, pytest.mark.skipif(not NUKE, reason="set LBSMATTE_NUKE_EXE to a Nuke executable")]


@pytest.fixture(autouse=True)
def _nuke_is_an_executable():
    """Asked for (the variable set) but not there: a failure that says so, not a skip that hides it."""
    if not (os.path.isfile(NUKE) and os.access(NUKE, os.X_OK)):
        pytest.fail(f"LBSMATTE_NUKE_EXE={NUKE!r} is not an executable file: point it at Nuke (e.g. /usr/local/Nuke15.1v1/Nuke15.1)")


def run_nuke(args, tmp_path, env=None, timeout=600):
    environment = dict(os.environ, NUKE_PATH=REPO)
    environment.update(env or {})
    return subprocess.run([NUKE, "-t"] + list(args), env=environment, capture_output=True, text=True,
                          timeout=timeout, cwd=str(tmp_path))


def run_python_in_nuke(code, tmp_path, env=None, args=()):
    """Run ``code`` in ``nuke -t``; returns the JSON it printed after ``RESULT ``."""
    script = tmp_path / "check.py"
    script.write_text(textwrap.dedent(code))
    done = run_nuke([str(script)] + list(args), tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout + done.stderr
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture
def shot(tmp_path):
    folder = tmp_path / "shot"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for frame in (1001, 1002):
        write_exr(str(folder / f"plate.{frame}.exr"), rng.uniform(0, 1.5, (48, 64, 3)), ["R", "G", "B"])
        trimap = np.zeros((48, 64), np.float32)
        trimap[:, 20:] = 0.5
        trimap[:, 44:] = 1.0
        write_exr(str(folder / f"trimap.{frame}.exr"), np.stack([trimap] * 4, axis=2), ["R", "G", "B", "A"])
    return {"plate": str(folder / "plate.####.exr"), "trimap": str(folder / "trimap.####.exr")}


def test_the_gizmo_as_nuke_parses_it(tmp_path):
    result = run_python_in_nuke("""
        import json, nuke
        n = nuke.createNode("LBSMatte", inpanel=False)
        read = n.node("Result")
        print("RESULT " + json.dumps({
            "class": n.Class(), "inputs": n.maxInputs(),
            "knobs": dict((k, n[k].Class()) for k in n.knobs()),
            "weights_list": n["weights_list"].values(),
            "read_disabled": read["disable"].value(), "read_before": read["before"].value(),
            "callbacks": "LBSMatte" in str(nuke.callbacks.onCreates),
            "layers": nuke.layers(),
        }))
    """, tmp_path)
    assert result["class"] == "LBSMatte" and result["inputs"] == 2
    knobs = result["knobs"]
    from nuke_plugin import node as lbs_node

    for name in lbs_node.KNOBS:
        assert name in knobs, name
    assert knobs["weights"] == "String_Knob" and knobs["weights_list"] == "Enumeration_Knob"
    assert knobs["status"] == "Text_Knob" and knobs["compute"] == "PyScript_Knob"
    assert knobs["cache_dir"] == "File_Knob" and knobs["premultiply"] == "Boolean_Knob"
    assert result["weights_list"][0] == "default"
    assert result["read_disabled"] is True and result["read_before"] == "black"
    assert result["callbacks"] and "fg" in result["layers"] and "bg" in result["layers"]


def test_trimap_from_and_the_bake_copy_as_the_fake_has_them(tmp_path, shot):
    # What the fake assumes of Nuke: addUserKnob type 11 is a Channel_Knob whose value is "none"
    # until a channel is picked and "layer.channel" after, and a Copy (from0 -> to0, A into B)
    # gives the trimap's mask channel as its alpha; a multi-layer trimap's mask.A reads as mask.alpha.
    rng = np.random.default_rng(2)
    matte = rng.uniform(0, 1, (48, 64)).astype(np.float32)
    path = str(tmp_path / "layered.exr")
    write_exr(path, np.stack([matte * 0, matte * 0, matte * 0, matte], axis=2), ["R", "G", "B", "mask.A"])
    result = run_python_in_nuke("""
        import json, sys, nuke
        n = nuke.createNode("LBSMatte", inpanel=False)
        default = n["trimap_from"].value()
        read = nuke.nodes.Read(file=sys.argv[1])
        copy = nuke.nodes.Copy()
        copy.setInput(0, read)
        copy.setInput(1, read)
        copy["from0"].setValue("mask.alpha")
        copy["to0"].setValue("rgba.alpha")
        n["trimap_from"].setValue("mask.alpha")
        print("RESULT " + json.dumps({
            "class": n["trimap_from"].Class(), "default": default, "picked": n["trimap_from"].value(),
            "script": n["trimap_from"].toScript(), "channels": read.channels(),
            "alpha": copy.sample("rgba.alpha", 10.5, 20.5), "mask": read.sample("mask.alpha", 10.5, 20.5),
        }))
    """, tmp_path, args=[path])
    assert result["class"] == "Channel_Knob" and result["default"] == "none"
    assert result["picked"] == result["script"] == "mask.alpha"
    assert "mask.alpha" in result["channels"]
    assert result["alpha"] == pytest.approx(result["mask"]) == pytest.approx(float(matte[20, 10]), abs=1e-3)


def test_the_read_follows_the_hidden_knobs_and_names_layers_as_expected(tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    for frame in (1001, 1002):
        pixels = np.zeros((8, 8, 10), np.float32)
        pixels[..., 4] = 0.25 * (frame - 1000)  # fg.R
        write_exr(str(out / f"lbsmatte.{frame}.exr"), pixels,
                  ["R", "G", "B", "A", "fg.R", "fg.G", "fg.B", "bg.R", "bg.G", "bg.B"])
    result = run_python_in_nuke("""
        import json, sys, nuke
        n = nuke.createNode("LBSMatte", inpanel=False)
        n["result_file"].setValue(sys.argv[1])
        n["result_shown"].setValue(sys.argv[1])
        n["result_first"].setValue(1001)
        n["result_last"].setValue(1002)
        n["result_ready"].setValue(True)
        n.node("Result")["reload"].execute()
        nuke.frame(1002)  # File_Knob.evaluate() gives the file of the current frame
        print("RESULT " + json.dumps({
            "file": n.node("Result")["file"].evaluate(), "channels": n.channels(),
            "first": n.node("Result")["first"].value(), "fg_red": n.sample("fg.red", 4.5, 4.5, frame=1002),
        }))
    """, tmp_path, args=[str(out / "lbsmatte.####.exr")])
    assert result["file"] == str(out / "lbsmatte.1002.exr") and result["first"] == 1001
    assert {"fg.red", "fg.green", "fg.blue", "bg.red", "bg.green", "bg.blue", "rgba.alpha"} <= set(result["channels"])
    assert result["fg_red"] == pytest.approx(0.5)


def test_baking_the_same_inputs_twice_gives_the_same_key(tmp_path, shot):
    result = run_python_in_nuke("""
        import json, sys, nuke
        from nuke_plugin import cache, node as lbs_node
        plate = nuke.nodes.Read(file=sys.argv[1], first=1001, last=1002)
        trimap = nuke.nodes.Read(file=sys.argv[2], first=1001, last=1002)
        n = nuke.createNode("LBSMatte", inpanel=False)
        n.setInput(0, plate)
        n.setInput(1, trimap)
        keys = []
        for name in ("a", "b"):
            folder = sys.argv[3] + "/" + name
            p, t, _ = lbs_node.bake(n, folder, 1001, 1002)
            keys.append(cache.hash_inputs(p, t, [1001, 1002]))
        print("RESULT " + json.dumps({"same": keys[0] == keys[1], "nodes": [x.Class() for x in nuke.allNodes()]}))
    """, tmp_path, args=[shot["plate"], shot["trimap"], str(tmp_path / "bake")])
    assert result["same"], "a time stamp or other volatile header slipped into the baked EXR hash"
    assert "Write" not in result["nodes"], "temporary Write nodes left behind"
    baked, names = read_exr(str(tmp_path / "bake" / "a" / "trimap.1001.exr"))
    assert names == ["R", "G", "B", "A"]
    plate, _ = read_exr(shot["plate"].replace("####", "1001"))
    np.testing.assert_allclose(read_exr(str(tmp_path / "bake" / "a" / "plate.1001.exr"))[0], plate, atol=1e-3)


def test_folders_tcl_would_mangle_are_baked_read_and_typed_as_the_fake_assumes(tmp_path, shot):
    # Nuke evaluates file knobs as TCL: the bake Writes read their pattern with [value], the Result
    # Read reads result_shown the same way (a command's result is not substituted again), and a
    # cache folder knob holding \[ \] \$ evaluates to the folder's name (tests/test_nuke_tclpaths.py).
    folder = tmp_path / "Shot [v2] $1 {b}"
    (folder / "bake").mkdir(parents=True)
    result = run_python_in_nuke("""
        import json, sys, nuke
        from nuke_plugin import node as lbs_node
        plate = nuke.nodes.Read(file=sys.argv[1], first=1001, last=1002)
        trimap = nuke.nodes.Read(file=sys.argv[2], first=1001, last=1002)
        n = nuke.createNode("LBSMatte", inpanel=False)
        n.setInput(0, plate)
        n.setInput(1, trimap)
        p, t, failed = lbs_node.bake(n, sys.argv[3] + "/bake", 1001, 1002)
        lbs_node.show_result(n, sys.argv[3] + "/bake", 1001, 1002, "k")
        nuke.frame(1002)
        shown = n.node("Result")["file"].evaluate()
        n["cache_dir"].setValue(sys.argv[3].replace("[", "\\\\[").replace("]", "\\\\]").replace("$", "\\\\$")
                                .replace("{", "\\\\{").replace("}", "\\\\}"))
        print("RESULT " + json.dumps({"plate": p, "failed": failed, "shown": shown, "cache": lbs_node.cache_dir(n)}))
    """, tmp_path, args=[shot["plate"], shot["trimap"], str(folder)])
    assert result["failed"] == {} and result["plate"] == str(folder / "bake" / "plate.####.exr")
    assert os.path.isfile(str(folder / "bake" / "plate.1002.exr"))
    assert result["shown"] == str(folder / "bake" / "lbsmatte.1002.exr")
    assert result["cache"] == str(folder)


def test_batch_end_to_end_then_a_comp_render_reads_the_cache(tmp_path, shot, small_bundle):
    script = write_shot(str(tmp_path / "shot.nk"), shot, weights=str(small_bundle.path), first=1001, last=1002)
    env = {"LBSMATTE_PYTHON": sys.executable, "LBSMATTE_ALLOW_UNTRAINED": "1",
           "LBSMATTE_CACHE": str(tmp_path / "cache")}
    copy = str(tmp_path / "shot.lbsmatte.nk")
    artist = open(script).read()
    done = run_nuke([os.path.join(REPO, "nuke_plugin", "batch.py"), script, "--node", "LBSMatte1",
                     "--frames", "1001-1002", "--save-as", copy], tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LBSMATTE PROGRESS 1002 2/2" in done.stdout and "LBSMATTE SAVED " + copy in done.stdout
    assert open(script).read() == artist  # the artist's script is never saved
    missing = run_nuke([os.path.join(REPO, "nuke_plugin", "batch.py"), script, "--node", "Nope"], tmp_path, env)
    assert missing.returncode == 2 and "ERROR: " in missing.stdout  # sys.exit reaches the shell

    run_python_in_nuke("""
        import json, sys, nuke
        nuke.scriptOpen(sys.argv[1])
        w = nuke.nodes.Write(file=sys.argv[2], file_type="exr", channels="all", name="WriteComp")
        w.setInput(0, nuke.toNode("LBSMatte1"))
        nuke.scriptSaveAs(sys.argv[3])
        print("RESULT " + json.dumps({}))
    """, tmp_path, args=[copy, str(tmp_path / "comp.####.exr"), str(tmp_path / "comp.nk")])
    render = subprocess.run([NUKE, "-X", "WriteComp", "-F", "1001-1002", str(tmp_path / "comp.nk")],
                            env=dict(os.environ, NUKE_PATH=REPO), capture_output=True, text=True, timeout=600,
                            cwd=str(tmp_path))
    assert render.returncode == 0, render.stdout + render.stderr
    pixels, names = read_exr(str(tmp_path / "comp.1002.exr"))
    assert {"R", "G", "B", "A"} <= set(names) and any(n.startswith("fg.") for n in names)

    # Someone points the trimap Read at the plate after Compute: the farm render must fail.
    stale = tmp_path / "stale.nk"
    stale.write_text(open(str(tmp_path / "comp.nk")).read().replace(shot["trimap"], shot["plate"]))
    render = subprocess.run([NUKE, "-X", "WriteComp", "-F", "1001-1002", str(stale)],
                            env=dict(os.environ, NUKE_PATH=REPO), capture_output=True, text=True, timeout=600,
                            cwd=str(tmp_path))
    assert render.returncode != 0, render.stdout + render.stderr
    assert "ERROR: LBSMatte1: plate or trimap changed since Compute at frame(s) 1001-1002" in render.stdout


def test_op_hashes_follow_the_current_frame(tmp_path, shot):
    """What the stale check relies on: ``opHashes()`` of a Read sequence differs between frames
    after ``nuke.frame(f)``, and is the same in another session."""
    code = """
        import json, sys, nuke
        plate = nuke.nodes.Read(file=sys.argv[1], first=1001, last=1002)
        hashes = []
        for f in (1001, 1002, 1001):
            nuke.frame(f)
            hashes.append(plate.opHashes())
        print("RESULT " + json.dumps(hashes))
    """
    first = run_python_in_nuke(code, tmp_path, args=[shot["plate"]])
    assert first[0] == first[2] and first[0] != first[1]
    assert run_python_in_nuke(code, tmp_path, args=[shot["plate"]]) == first


def test_a_broken_install_does_not_stop_nuke(tmp_path):
    lonely = tmp_path / "plugin"
    lonely.mkdir()
    (lonely / "init.py").write_text(open(os.path.join(REPO, "init.py")).read())  # nuke_plugin not beside it
    (tmp_path / "hello.py").write_text("print('STARTED')\n")
    done = subprocess.run([NUKE, "-t", str(tmp_path / "hello.py")],
                          env=dict(os.environ, NUKE_PATH=str(lonely), PYTHONPATH=""),
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert done.returncode == 0 and "STARTED" in done.stdout
    assert "LBSMatte: not loaded" in done.stderr + done.stdout


def test_knob_numbers_and_time_offsets_as_the_fake_has_them(tmp_path, shot):
    """What ``tests/fake_nuke`` assumes of Nuke's knobs and TimeOffset: getValue/getValueAt give
    a menu's index and a checkbox's 0/1 as floats, an expression reads a menu as its index, and a
    TimeOffset under a FrameHold takes its (keyed) offset at the held frame, not the current one;
    a group's op hashes follow a knob inside it (the stale check hashes a gizmo plate that way)."""
    code = """
        import json, sys, nuke
        write = nuke.nodes.Write(file_type="exr")
        write["datatype"].setValue("32 bit float")
        write["create_directories"].setValue(True)
        switch = nuke.nodes.Switch()
        switch["which"].setExpression(write.name() + ".datatype")
        plate = nuke.nodes.Read(file=sys.argv[1], first=1001, last=1002)
        shift = nuke.nodes.TimeOffset()
        shift.setInput(0, plate)
        shift["time_offset"].setAnimated()
        shift["time_offset"].setValueAt(0, 1002)
        shift["time_offset"].setValueAt(1, 1005)
        hold = nuke.nodes.FrameHold(first_frame=1002)
        hold.setInput(0, shift)
        hashes = []
        for f in (1002, 1005):
            nuke.frame(f)
            hashes.append(hold.opHashes())
        # A plate fed through a group (a studio gizmo): its op hashes must see a change inside it.
        group = nuke.nodes.Group()
        with group:
            grade = nuke.nodes.Grade()
            grade.setInput(0, nuke.nodes.Input())
            nuke.nodes.Output().setInput(0, grade)
        group.setInput(0, plate)
        wrapped = [group.opHashes()]
        grade["white"].setValue(2.0)
        wrapped.append(group.opHashes())
        print("RESULT " + json.dumps({
            "menu": [write["datatype"].value(), write["datatype"].getValue(), write["datatype"].getValueAt(3)],
            "check": [write["create_directories"].value(), write["create_directories"].getValueAt(3)],
            "linked": switch["which"].value(), "held": hashes, "group": wrapped}))
    """
    got = run_python_in_nuke(code, tmp_path, args=[shot["plate"]])
    assert got["menu"] == ["32 bit float", 1.0, 1.0] and isinstance(got["menu"][1], float)
    assert got["check"] == [True, 1.0] and isinstance(got["check"][1], float)
    assert got["linked"] == 1
    assert got["held"][0] == got["held"][1]
    assert got["group"][0] and got["group"][0] != got["group"][1]


def test_a_stereo_script_bakes_one_view_and_refuses_inputs_that_differ_between_views(tmp_path, shot):
    """What the fake assumes of views: ``nuke.views()`` after ``addView``/``deleteView``, a Read's
    ``%V``, ``nuke.execute(..., views)`` writing a file of one view whose header (``view``,
    ``multiView`` left out) hashes as the other view's when the picture is the same."""
    folder = os.path.dirname(shot["plate"])
    for frame in (1001, 1002):
        pixels, names = read_exr(shot["plate"].replace("####", str(frame)))
        write_exr(os.path.join(folder, f"plate.left.{frame}.exr"), pixels, names)
        write_exr(os.path.join(folder, f"plate.right.{frame}.exr"), np.roll(pixels, 3, axis=1), names)
    result = run_python_in_nuke("""
        import json, sys, nuke
        from nuke_plugin import node as lbs_node
        from nuke_plugin.errors import NodeError
        nuke.addView("left")
        nuke.addView("right")
        nuke.deleteView("main")
        trimap = nuke.nodes.Read(file=sys.argv[2], first=1001, last=1002)
        got = {"views": nuke.views()}
        for name, plate_file in (("same", sys.argv[1]), ("stereo", sys.argv[1].replace("plate.", "plate.%V."))):
            n = nuke.createNode("LBSMatte", inpanel=False)
            n.setInput(0, nuke.nodes.Read(file=plate_file, first=1001, last=1002))
            n.setInput(1, trimap)
            try:
                lbs_node.bake(n, sys.argv[3] + "/" + name, 1001, 1002)
                got[name] = "baked"
            except NodeError as exc:
                got[name] = str(exc)
        print("RESULT " + json.dumps(got))
    """, tmp_path, args=[shot["plate"], shot["trimap"], str(tmp_path / "bake")])
    assert result["views"] == ["left", "right"]
    assert result["same"] == "baked", result["same"]
    assert "differs between the script's views left and right (frame 1001)" in result["stereo"], result["stereo"]
    baked, names = read_exr(str(tmp_path / "bake" / "same" / "plate.1001.exr"))
    assert names == ["R", "G", "B"], "a file of one view, no right.R"


def test_two_lbsmatte_folders_on_nuke_path_and_a_filename_filter_as_the_fake_has_them(tmp_path, shot):
    """The fake runs the last NUKE_PATH folder's init.py first and opens Read files through the
    filename filters: so must Nuke, for init.py's first-folder rule and the farm's path remapping."""
    import shutil

    folders = []
    for name in ("show LBSMatte", "site LBSMatte"):
        folder = tmp_path / name
        folder.mkdir()
        for item in ("init.py", "menu.py"):
            shutil.copy(os.path.join(REPO, item), str(folder))
        for item in ("nuke_plugin", "gizmos"):
            shutil.copytree(os.path.join(REPO, item), str(folder / item), ignore=shutil.ignore_patterns("__pycache__"))
        folders.append(str(folder))
    code = """
        import json, os, nuke, nuke_plugin
        nuke.addFilenameFilter(lambda f: f.replace("Z:/", %r))
        read = nuke.nodes.Read(file="Z:/plate.####.exr", first=1001, last=1001)
        print("RESULT " + json.dumps({
            "nuke_plugin": os.path.dirname(os.path.dirname(os.path.abspath(nuke_plugin.__file__))),
            "filtered": nuke.filenameFilter("Z:/plate.####.exr"),
            "width": read.width(),
        }))
    """ % (os.path.dirname(shot["plate"]) + "/")
    result = run_python_in_nuke(code, tmp_path, env={"NUKE_PATH": os.pathsep.join(folders)})
    assert result["nuke_plugin"] == folders[0]
    assert result["filtered"] == shot["plate"]
    assert result["width"] == 64  # the Read opened the remapped file


def test_knob_defaults_and_the_bake_writes_knobs_as_the_fake_has_them(tmp_path):
    """What ``tests/fake_nuke`` assumes of ``nuke.knobDefault``: a class-wide default reaches a knob
    that a script or gizmo leaves out (the gizmo's Reads state ``on_error`` and ``auto_alpha`` for
    that reason), a ``Write.exr.*`` default is applied when the file type is chosen, and the EXR Write
    has the ``autocrop`` knob and the Python tab's render callback knobs the bake clears."""
    code = """
        import json, nuke
        nuke.knobDefault("Read.on_error", "black")
        nuke.knobDefault("Read.auto_alpha", "true")
        nuke.knobDefault("Write.exr.autocrop", "true")
        nuke.knobDefault("Write.afterRender", "print('published')")
        group = nuke.nodes.Group()
        with group:
            nuke.scriptReadText("Read {\\n inputs 0\\n file /nonexistent.exr\\n name Left\\n}\\n"
                                "Read {\\n inputs 0\\n file /nonexistent.exr\\n on_error error\\n name Stated\\n}\\n")
        node = nuke.createNode("LBSMatte", inpanel=False)
        write = nuke.nodes.Write()
        write["file_type"].setValue("exr")
        print("RESULT " + json.dumps({
            "left": [group.node("Left")["on_error"].value(), group.node("Left")["auto_alpha"].value()],
            "stated": group.node("Stated")["on_error"].value(),
            "gizmo": [[node.node(n)[k].value() for k in ("on_error", "auto_alpha", "raw")] for n in ("Result", "Trimap")],
            "autocrop": write["autocrop"].value(),
            "callbacks": [write.knob(k) is not None for k in ("beforeRender", "beforeFrameRender", "afterFrameRender",
                                                                "afterRender")],
            "after": write["afterRender"].value()}))
    """
    got = run_python_in_nuke(code, tmp_path)
    assert got["left"] == ["black", True]
    assert got["stated"] == "error"
    assert got["gizmo"] == [["error", False, True], ["error", False, True]]
    assert got["autocrop"] is True and all(got["callbacks"]) and got["after"] == "print('published')"
