"""Cache keys and folders (``nuke_plugin.cache``): pure functions over paths."""

import json
import os

import pytest

from nuke_plugin import cache


def test_every_setting_changes_the_key():
    base = cache.Settings(weights="default", bundle_sha256="a" * 64)
    keys = {base.key()}
    for change in ({"bundle_sha256": "b" * 64}, {"device": "cuda"}, {"colour": "srgb"},
                   {"trimap_channel": "alpha"}, {"premultiply": False}, {"rounds": 0},
                   {"trimap_input": "rough matte"}, {"trimap_input": "rough matte", "edge": 3},
                   {"fingerprint": "core-2"}):
        settings = cache.Settings(**dict(base.as_dict(), **change))
        assert settings.key() not in keys, change
        keys.add(settings.key())
    # the bundle counts by content: its name does not matter once its manifest is known
    assert cache.Settings(weights="/elsewhere/default", bundle_sha256="a" * 64).key() == base.key()
    assert cache.Settings(weights="show").key() != cache.Settings(weights="show2").key()
    assert cache.Settings() == cache.Settings() and cache.Settings() != cache.Settings(device="cpu")


def test_the_device_knob_counts_through_the_fingerprint_once_there_is_one():
    # The fingerprint holds the device as resolved (auto on a GPU machine is cuda): the knob's text
    # would split one result into two keys.
    resolved = dict(bundle_sha256="a" * 64, fingerprint="cuda-fp16")
    assert cache.Settings(device="auto", **resolved).key() == cache.Settings(device="cuda", **resolved).key()
    assert cache.Settings(device="auto", **resolved).key() != cache.Settings(
        device="cpu", **dict(resolved, fingerprint="cpu-fp32")).key()


def test_edge_width_counts_only_for_a_rough_matte():
    assert cache.Settings(edge=3).key() == cache.Settings(edge=20).key()  # a trimap: --edge is not used
    assert cache.Settings(edge=3).edge_px is None
    rough = cache.Settings(trimap_input="rough matte", edge=3)
    assert rough.edge_px == 3 and rough.key() != cache.Settings(trimap_input="rough matte", edge=4).key()
    assert rough.as_dict()["trimap_input"] == "rough matte" and rough.as_dict()["edge"] == 3


def test_folder_key_covers_every_frame():
    keys = {1001: "x", 1002: "y"}
    key = cache.folder_key("s", keys)
    assert len(key) == cache.KEY_LENGTH and key == cache.folder_key("s", dict(keys))
    assert cache.folder_key("s", {1001: "x", 1002: "z"}) != key
    assert cache.folder_key("t", keys) != key
    assert cache.folder_key("s", {1001: "x"}) != key
    # the frame numbers count too: the same frames renumbered are another folder's
    assert cache.folder_key("s", {1002: "x", 1003: "y"}) != key
    assert cache.frame_key("s", "p", "t") != cache.frame_key("s", "t", "p")
    # every part counts: a new trimap alone (the same plate) is a new frame key
    assert cache.frame_key("s", "p", "t") != cache.frame_key("s", "p", "u")
    assert cache.frame_key("s", "p", "t") != cache.frame_key("s", "q", "t") != cache.frame_key("r", "p", "t")


@pytest.mark.parametrize("pattern, frame, expected", [
    ("/a/x.####.exr", 1001, "/a/x.1001.exr"),
    ("/a/x.####.exr", 7, "/a/x.0007.exr"),
    ("/a/x.####.exr", 12345, "/a/x.12345.exr"),
    ("/a/x.%04d.exr", 7, "/a/x.0007.exr"),
    ("/a/x.##.exr", 7, "/a/x.07.exr"),
    ("/a/x.exr", 7, "/a/x.exr"),
])
def test_frame_path(pattern, frame, expected):
    assert cache.frame_path(pattern, frame) == expected


def test_runs_and_missing(tmp_path):
    assert cache.contiguous_runs([5, 1, 2, 3, 7, 8, 8]) == [(1, 3), (5, 5), (7, 8)]
    assert cache.contiguous_runs([]) == []
    folder = str(tmp_path / "k")
    os.makedirs(folder)
    open(cache.frame_path(cache.result_pattern(folder), 2), "w").close()
    assert cache.missing_frames(folder, [1, 2, 3]) == [1, 3]
    assert cache.result_pattern(folder + os.sep).endswith("/k/lbsmatte.####.exr")


def test_hash_inputs_reads_content(tmp_path):
    for name, data in (("p.0001.exr", b"plate"), ("t.0001.exr", b"trimap")):
        (tmp_path / name).write_bytes(data)
    hashes = cache.hash_inputs(str(tmp_path / "p.####.exr"), str(tmp_path / "t.####.exr"), [1])
    import hashlib

    assert hashes == {1: (hashlib.sha256(b"plate").hexdigest(), hashlib.sha256(b"trimap").hexdigest())}


def test_reuse_copies_frames_with_the_same_frame_key(tmp_path):
    root = str(tmp_path)
    settings = cache.Settings()
    old = os.path.join(root, "a" * cache.KEY_LENGTH)
    os.makedirs(old)
    for frame in (1, 2):
        with open(cache.frame_path(cache.result_pattern(old), frame), "w") as handle:
            handle.write(f"frame {frame}")
        with open(cache.frame_path(cache.trimap_pattern(old), frame), "w") as handle:
            handle.write(f"trimap {frame}")
    cache.write_record(old, "a" * cache.KEY_LENGTH, settings, {1: "k1", 2: "k2"})
    new = os.path.join(root, "b" * cache.KEY_LENGTH)
    os.makedirs(new)
    reused = cache.reuse_frames(root, new, {1: "k1", 2: "other", 3: "k3"}, [1, 2, 3])
    assert reused == [1]
    with open(cache.frame_path(cache.result_pattern(new), 1)) as handle:
        assert handle.read() == "frame 1"
    with open(cache.frame_path(cache.trimap_pattern(new), 1)) as handle:  # the trimap it used comes along
        assert handle.read() == "trimap 1"
    assert not os.path.exists(cache.frame_path(cache.trimap_pattern(new), 2))
    assert cache.missing_frames(new, [1, 2, 3]) == [2, 3]
    assert not [n for n in os.listdir(new) if n.endswith(".tmp")]
    assert cache.read_record(old)["frames"] == {"1": "k1", "2": "k2"}
    # A recorded frame whose result is gone (its trimap left): nothing is reused, not even the trimap.
    os.remove(cache.frame_path(cache.result_pattern(old), 2))
    assert cache.reuse_frames(root, new, {2: "k2"}, [2]) == []
    assert not os.path.exists(cache.frame_path(cache.trimap_pattern(new), 2))


def test_only_key_folders_are_deleted(tmp_path):
    root = str(tmp_path)
    key = os.path.join(root, "0123456789abcdef")
    os.makedirs(key)
    assert cache.is_result_folder(root, key)
    assert not cache.is_result_folder(root, root)
    assert not cache.is_result_folder(root, os.path.join(root, "not-a-key"))
    assert not cache.is_result_folder(str(tmp_path / "elsewhere"), key)
    bake = cache.new_bake_folder(root, "LBSMatte 1/x")
    assert os.path.isdir(bake) and os.path.basename(os.path.dirname(bake)) == cache.BAKE_FOLDER
    assert "/" not in os.path.basename(bake) and " " not in os.path.basename(bake)


def test_default_cache_dir(tmp_path):
    assert cache.default_cache_dir("", {"LBSMATTE_CACHE": str(tmp_path)}) == str(tmp_path)
    script = str(tmp_path / "shots" / "a.nk")
    assert cache.default_cache_dir(script, {}) == str(tmp_path / "shots" / "lbsmatte_cache")
    assert cache.default_cache_dir("", {}).endswith("lbsmatte_cache")
    # relative: from the script's folder, whatever folder Nuke started in; else from the current one
    assert cache.default_cache_dir(script, {"LBSMATTE_CACHE": "../cache"}) == str(tmp_path / "cache")
    assert cache.default_cache_dir("", {"LBSMATTE_CACHE": "cache"}) == os.path.join(os.getcwd(), "cache")
    assert cache.absolute_cache_dir("sh010/cache", script) == str(tmp_path / "shots" / "sh010" / "cache")
    assert cache.absolute_cache_dir(str(tmp_path / "abs"), script) == str(tmp_path / "abs")
    assert cache.absolute_cache_dir("~/c", script) == os.path.join(os.path.expanduser("~"), "c")


@pytest.mark.skipif(os.name == "nt", reason="the sweep needs flock (POSIX)")
def test_bake_folders_of_killed_jobs_are_removed_by_the_next_job_and_live_ones_kept(tmp_path):
    # A farm task killed with SIGKILL (a timeout, a pre-empted node) cannot remove its baked
    # inputs: a whole shot's plates and trimaps, left in the shared cache by every such kill.
    import signal
    import subprocess
    import sys

    root = str(tmp_path / "cache")
    killed = subprocess.run(
        [sys.executable, "-c", "import os, signal, sys; from nuke_plugin import cache; "
         "folder = cache.new_bake_folder(sys.argv[1], 'LBSMatte1'); "
         "open(os.path.join(folder, 'plate.1001.exr'), 'wb').write(b'baked'); print(folder, flush=True); "
         "os.kill(os.getpid(), signal.SIGKILL)", root],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    left = killed.stdout.strip()
    assert os.path.isfile(os.path.join(left, "plate.1001.exr"))
    older = os.path.join(root, cache.BAKE_FOLDER, "made-by-an-older-version")  # no owner: not ours to judge
    os.makedirs(older)

    live = cache.new_bake_folder(root, "LBSMatte1")  # this job's: it sweeps the killed job's folder
    assert not os.path.exists(left)
    assert os.path.isdir(live) and os.path.isdir(older)
    other = cache.new_bake_folder(root, "LBSMatte2")  # a second job while the first still runs
    assert os.path.isdir(live) and os.path.isdir(other)
    cache.remove_folder(live)
    cache.remove_folder(other)
    assert sorted(os.listdir(os.path.join(root, cache.BAKE_FOLDER))) == ["made-by-an-older-version"]


def test_only_bake_folders_lbsmatte_made_are_swept(tmp_path):
    """The cache folder knob may name any folder (``~``, a show's root): under its ``.bake`` only
    folders named as new_bake_folder names them are swept, never another tool's with an ``.owner``
    file of its own, nor a link."""
    root = str(tmp_path / "home")
    theirs = os.path.join(root, cache.BAKE_FOLDER, "photos")
    os.makedirs(theirs)
    open(os.path.join(theirs, cache.OWNER_NAME), "w").close()
    open(os.path.join(theirs, "holiday.jpg"), "w").close()
    elsewhere = tmp_path / "elsewhere-0123456789"
    elsewhere.mkdir()
    (elsewhere / cache.OWNER_NAME).write_text("")
    os.symlink(str(elsewhere), os.path.join(root, cache.BAKE_FOLDER, "link-0123456789"))
    stale = os.path.join(root, cache.BAKE_FOLDER, "LBSMatte1-0123456789")
    os.makedirs(stale)
    open(os.path.join(stale, cache.OWNER_NAME), "w").close()
    assert cache.remove_stale_bakes(root) == [stale]
    assert os.path.isfile(os.path.join(theirs, "holiday.jpg")) and (elsewhere / cache.OWNER_NAME).is_file()


@pytest.mark.parametrize("record", ['{"frames": ["k1"]}', '{"frames": {"1": ["k1"]}}', "[" * 100000 + "]" * 100000])
def test_reuse_skips_a_sibling_record_lbsmatte_did_not_write(tmp_path, record):
    """A shared cache may hold anything: a sibling's damaged or hostile record is no reuse source,
    never an exception that stops Compute."""
    root = str(tmp_path)
    odd = os.path.join(root, "c" * cache.KEY_LENGTH)
    os.makedirs(odd)
    with open(os.path.join(odd, cache.RECORD_NAME), "w") as handle:
        handle.write(record)
    new = os.path.join(root, "b" * cache.KEY_LENGTH)
    os.makedirs(new)
    assert cache.read_record(odd) in ({}, json.loads(record) if len(record) < 100 else {})
    assert cache.reuse_frames(root, new, {1: "k1"}, [1]) == []


def test_reuse_takes_a_siblings_frame_computed_as_asked_past_one_that_was_not(tmp_path):
    """Two siblings hold a frame with the key: the first (by name) computed after running out of
    GPU memory (its header says so), the second as asked. The second is reused; before, the first
    sibling alone was looked at, and the frame was computed again."""
    import numpy as np
    import OpenImageIO as oiio

    root = str(tmp_path)
    for name, how in (("a", "refinement on the CPU (out of GPU memory)"), ("b", None)):
        folder = os.path.join(root, name * cache.KEY_LENGTH)
        os.makedirs(folder)
        path = cache.frame_path(cache.result_pattern(folder), 7)
        spec = oiio.ImageSpec(2, 2, 1, oiio.HALF)
        spec.channelnames = ("A",)
        if how:
            spec.attribute(cache.DEGRADED_ATTRIBUTE, how)
        out = oiio.ImageOutput.create(path)
        assert out.open(path, spec) and out.write_image(np.full((2, 2, 1), 0.5, np.float32))
        out.close()
        cache.write_record(folder, name * cache.KEY_LENGTH, cache.Settings(), {7: "k7"})
    assert cache.degraded(cache.frame_path(cache.result_pattern(os.path.join(root, "a" * cache.KEY_LENGTH)), 7))
    new = os.path.join(root, "c" * cache.KEY_LENGTH)
    os.makedirs(new)
    assert cache.reuse_frames(root, new, {7: "k7"}, [7]) == [7]
    assert cache.degraded(cache.frame_path(cache.result_pattern(new), 7)) is None


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_frame_linked_over_a_shared_one_leaves_the_mode_of_its_source_alone(tmp_path):
    # A hard link is the source file under a second name: giving it the replaced file's mode
    # would change the mode of the frame it was linked from, in another result folder.
    source, target = str(tmp_path / "source.exr"), str(tmp_path / "target.exr")
    for path, mode in ((source, 0o640), (target, 0o664)):
        with open(path, "w") as handle:
            handle.write(path)
        os.chmod(path, mode)
    assert cache._link_or_copy(source, target)
    assert os.path.samefile(source, target) and os.stat(source).st_mode & 0o7777 == 0o640


def test_probe_writable_leaves_nothing_and_follows_no_planted_link(tmp_path):
    # Compute, Troubleshoot and the farm script's --save-as try a folder with this one probe.
    folder = tmp_path / "cache"
    folder.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's own file")
    os.symlink(str(victim), str(folder / f".lbsmatte-write-test-{os.getpid()}"))
    cache.probe_writable(str(folder))
    assert victim.read_text() == "the user's own file"
    assert sorted(os.listdir(str(folder))) == [f".lbsmatte-write-test-{os.getpid()}"]
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError):
        cache.probe_writable(str(blocker))
