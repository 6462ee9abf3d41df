"""A script saved on a Windows workstation, computed and rendered on a Linux farm.

Studios remap paths with Nuke's filename filters (``nuke.addFilenameFilter`` in their
``init.py``): Nuke's own Read and Write open ``Z:/cache/...`` as ``/mnt/z/cache/...``, and so
must LBSMatte wherever it opens a path from a knob (the *cache folder*, a *weights* folder, the
result the internal Read shows).
"""

import os

from fake_nuke.fixtures import *  # noqa: F403 (pytest fixtures: fake_nuke, lbs_env, sequences)
from fake_nuke.fixtures import make_graph, write_shot, write_test_bundle

from nuke_plugin import batch, compute
from nuke_plugin import node as lbs_node


def _remap_windows_drive(fake_nuke, drive_root):
    """A studio's filter: ``Z:/x`` (or ``Z:\\x``) is ``<drive_root>/x`` on this machine."""
    def remap(filename):
        text = filename.replace("\\", "/")
        if text[:3].upper() == "Z:/":
            return os.path.join(str(drive_root), text[3:])
        return None  # others as they are

    fake_nuke.addFilenameFilter(remap)


def test_the_fake_opens_files_through_the_filename_filters(fake_nuke, sequences, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    read = fake_nuke.nodes.Read()
    read["file"].setValue("Z:/plate.####.exr")
    read["first"].setValue(1001)
    read["last"].setValue(1001)
    assert fake_nuke.filenameFilter("Z:/a") == "Z:/a"  # no filter: unchanged
    _remap_windows_drive(fake_nuke, os.path.dirname(sequences["plate"]))
    assert fake_nuke.filenameFilter("Z:/a") == os.path.join(os.path.dirname(sequences["plate"]), "a")
    assert fake_nuke.filenameFilter("/b") == "/b"  # a filter's None leaves it as it is
    read["file"].setValue("Z:/" + os.path.basename(sequences["plate"]))
    write = fake_nuke.nodes.Write()  # writes where the filters say, too
    write.setInput(0, read)
    write["file"].setValue("Z:/copy.####.exr")
    write["file_type"].setValue("exr")
    fake_nuke.execute(write, 1001, 1001, 1)
    assert os.path.isfile(os.path.join(os.path.dirname(sequences["plate"]), "copy.1001.exr"))


def test_batch_on_linux_finds_the_windows_cache_and_weights_folders_of_the_script(fake_nuke, lbs_env, sequences,
                                                                                tmp_path, monkeypatch, capsys):
    drive = tmp_path / "mnt_z"
    write_test_bundle(drive / "weights" / "showbundle", name="showbundle")
    shot_dir = tmp_path / "shots"
    shot_dir.mkdir()
    shot = write_shot(str(shot_dir / "shot.nk"), sequences, weights="Z:/weights/showbundle")
    with open(shot) as handle:  # the artist's cache folder knob, on the Windows drive
        text = handle.read().replace(' name LBSMatte1', ' cache_dir "Z:/cache"\n name LBSMatte1', 1)
    with open(shot, "w") as handle:
        handle.write(text)
    monkeypatch.chdir(tmp_path)
    _remap_windows_drive(fake_nuke, drive)

    comp = str(shot_dir / "shot.lbsmatte.nk")
    assert batch.main([shot, "--node", "LBSMatte1", "--save-as", comp]) == batch.EXIT_OK
    out = capsys.readouterr().out
    assert "ERROR" not in out
    assert f"LBSMATTE RESULT {drive / 'cache'}{os.sep}" in out  # on the farm's mount of Z:
    # nothing written into a relative folder named after the drive, where Nuke started or the script is
    assert not (tmp_path / "Z:").exists() and not (shot_dir / "Z:").exists()
    results = [f for _, _, files in os.walk(drive / "cache") for f in files if f.startswith("lbsmatte.") and f.endswith(".exr")]
    assert len(results) == 3


def test_a_script_saved_on_windows_renders_its_result_on_linux(fake_nuke, lbs_env, sequences, tmp_path,
                                                               monkeypatch):
    drive = tmp_path / "mnt_z"
    monkeypatch.setenv("LBSMATTE_CACHE", str(drive / "cache"))
    node = make_graph(fake_nuke, sequences)
    compute.compute(node)
    assert node["result_ready"].value()
    saved = str(tmp_path / "shot.nk")
    fake_nuke.scriptSave(saved)
    with open(saved) as handle:  # as the artist's Windows Nuke saved it: the cache on Z:
        text = handle.read().replace(str(drive) + os.sep, "Z:/")
    assert "Z:/cache/" in text
    with open(saved, "w") as handle:
        handle.write(text)

    fake_nuke._reset()
    fake_nuke._startup()
    _remap_windows_drive(fake_nuke, drive)  # the studio's init.py on the farm
    fake_nuke.scriptOpen(saved)
    node = fake_nuke.toNode("LBSMatte1")
    assert node["result_file"].value().startswith("Z:/cache/")
    assert lbs_node.missing_result(node, 1002) == ""
    assert lbs_node.shown_folder(node).startswith(str(drive / "cache"))
    write = fake_nuke.nodes.Write()
    write.setInput(0, node)
    write["file"].setValue(str(tmp_path / "comp.####.exr"))
    write["file_type"].setValue("exr")
    fake_nuke.execute(write, 1001, 1003, 1)
    assert os.path.isfile(str(tmp_path / "comp.1003.exr"))
