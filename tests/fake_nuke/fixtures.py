"""pytest fixtures for the Nuke layer's tests (import them into a test module by name).

Importing it puts this folder first on ``sys.path``: ``import nuke`` is the fake from then on.

``fake_nuke``  the strict fake ``nuke`` (``tests/fake_nuke/nuke.py``) as the top-level module
               ``nuke``, reset and started up with ``NUKE_PATH`` = the repository (so the
               real ``init.py`` registers the callbacks and finds ``gizmos/``).
``lbs_env``    a sandbox: cache folder, a manifest-only test bundle ``testbundle`` on
               ``LBSMATTE_WEIGHTS_PATH`` and ``LBSMATTE_PYTHON`` = a wrapper running
               ``fake_core_cli.py`` (the ``core.cli`` contract without torch).
``sequences``  small plate and trimap EXR sequences, frames 1001-1003, on disk.
"""

import json
import os
import stat
import sys

import numpy as np
import OpenImageIO as oiio
import pytest

__all__ = ["fake_nuke", "lbs_env", "sequences"]  # the fixtures, for `from fake_nuke.fixtures import *`

FAKE_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(FAKE_DIR))
# Importing this module makes ``import nuke`` find the fake, so test modules can import the
# nuke_plugin modules at their top (there is no real Nuke to shadow).
if FAKE_DIR not in sys.path:
    sys.path.insert(0, FAKE_DIR)
FRAMES = (1001, 1003)
SIZE = (24, 32)  # H, W


def import_fake_nuke():
    import nuke

    assert os.path.dirname(os.path.abspath(nuke.__file__)) == FAKE_DIR, nuke.__file__
    return nuke


@pytest.fixture
def fake_nuke(monkeypatch):
    nuke = import_fake_nuke()
    monkeypatch.setenv("NUKE_PATH", REPO)
    nuke._reset()
    monkeypatch.setattr(nuke, "GUI", False)
    from nuke_plugin import callbacks

    callbacks._viewer_walk.clear()  # a new Nuke session: nothing kept from another test's script
    nuke._startup()
    yield nuke
    nuke._reset()


def write_exr(path, pixels, channels, half=True):
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2], oiio.HALF if half else oiio.FLOAT)
    spec.channelnames = tuple(channels)
    out = oiio.ImageOutput.create(path)
    assert out.open(path, spec), oiio.geterror()
    assert out.write_image(pixels)
    out.close()


def read_exr(path):
    image = oiio.ImageInput.open(path)
    assert image is not None, oiio.geterror()
    spec = image.spec()
    pixels = np.asarray(image.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT), np.float32)
    image.close()
    return pixels.reshape(spec.height, spec.width, spec.nchannels), list(spec.channelnames)


def make_trimap(h, w, shift=0):
    trimap = np.zeros((h, w), np.float32)
    trimap[:, w // 3 + shift:] = 0.5
    trimap[:, 2 * w // 3 + shift:] = 1.0
    return trimap


@pytest.fixture
def sequences(tmp_path):
    """``{"plate": pattern, "trimap": pattern}``: RGB plate (scene-linear, values above 1 too)
    and a trimap with 0 / 0.5 / 1 in R, G, B and A."""
    folder = tmp_path / "shot"
    folder.mkdir()
    rng = np.random.default_rng(7)
    h, w = SIZE
    for frame in range(FRAMES[0], FRAMES[1] + 1):
        plate = rng.uniform(0.0, 1.5, size=(h, w, 3)).astype(np.float32)
        write_exr(str(folder / f"plate.{frame:04d}.exr"), plate, ["R", "G", "B"])
        t = make_trimap(h, w, frame - FRAMES[0])
        write_exr(str(folder / f"trimap.{frame:04d}.exr"), np.stack([t, t, t, t], axis=2), ["R", "G", "B", "A"])
    return {"plate": str(folder / "plate.####.exr"), "trimap": str(folder / "trimap.####.exr"), "folder": folder}


def write_test_bundle(folder, name="testbundle", description="manifest-only bundle for the Nuke tests",
                      parent=None, trained=False, training=None):
    """A bundle folder holding only a manifest (enough for the Nuke side; not loadable by core)."""
    os.makedirs(str(folder), exist_ok=True)
    manifest = {
        "format": "lbsmatte-bundle", "format_version": 1, "name": name, "description": description,
        "version": "1", "parent": parent, "created": "2024-05-01T12:00:00+00:00", "colour": "srgb",
        "training": training if training is not None else {"iterations": 10, "data": "none"},
        "trained": trained,
        "networks": {role: {"file": role + ".safetensors", "sha256": "0" * 64,
                            "config": {"architecture": "matting" if role == "alpha" else "sampling"},
                            "parameters": 1234} for role in ("background", "foreground", "alpha")},
    }
    with open(os.path.join(str(folder), "manifest.json"), "w") as handle:
        json.dump(manifest, handle, indent=1)
    return str(folder)


def write_python_wrapper(path, script):
    """An executable that behaves like ``python`` for ``-m core.cli ...`` by running ``script``."""
    with open(path, "w") as handle:
        handle.write(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def lbs_env(tmp_path, monkeypatch):
    """Sandbox for the plugin; returns a dict of the paths it set up."""
    if os.name == "nt":
        pytest.skip("the python wrapper is a POSIX shell script")
    bundles = tmp_path / "bundles"
    write_test_bundle(bundles / "testbundle")
    python = write_python_wrapper(str(tmp_path / "python"), os.path.join(FAKE_DIR, "fake_core_cli.py"))
    log = tmp_path / "cli_calls.jsonl"
    cache = tmp_path / "cache"
    monkeypatch.setenv("LBSMATTE_PYTHON", python)
    monkeypatch.setenv("LBSMATTE_WEIGHTS_PATH", str(bundles))
    # The checkout's own core ships a trained default bundle; the sandbox sees only its own bundles.
    sandbox_core = tmp_path / "core"
    sandbox_core.mkdir()
    from nuke_plugin import interpreter

    monkeypatch.setattr(interpreter, "core_dir", lambda *args, **kwargs: str(sandbox_core))
    monkeypatch.setenv("LBSMATTE_CACHE", str(cache))
    monkeypatch.setenv("FAKE_CLI_LOG", str(log))
    for name in ("FAKE_CLI_FAIL_FRAMES", "FAKE_CLI_WARN_FRAMES", "FAKE_CLI_SLEEP", "FAKE_CLI_CRASH", "FAKE_CLI_TOUCH", "FAKE_CLI_PIDFILE",
                 "FAKE_CLI_CORE", "FAKE_CLI_DEVICE", "FAKE_CLI_FINGERPRINT_FAIL"):
        monkeypatch.delenv(name, raising=False)
    return {"python": python, "bundles": str(bundles), "cache": str(cache), "log": str(log), "tmp": tmp_path}


def cli_calls(env):
    """The argument lists the stand-in CLI was called with."""
    if not os.path.exists(env["log"]):
        return []
    with open(env["log"]) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_shot(path, seq, node_name="LBSMatte1", weights="testbundle", first=FRAMES[0], last=FRAMES[1]):
    """A .nk script as Nuke writes one: plate and trimap Reads into an LBSMatte node."""
    text = """#! /usr/local/Nuke15.1v1/Nuke15.1 -nx
version 15.1 v1
Root {
 inputs 0
 name "%(path)s"
 first_frame %(first)d
 last_frame %(last)d
}
Read {
 inputs 0
 file "%(plate)s"
 first %(first)d
 last %(last)d
 name Plate
}
set N1 [stack 0]
Read {
 inputs 0
 file "%(trimap)s"
 first %(first)d
 last %(last)d
 name Trimap
}
push $N1
LBSMatte {
 inputs 2
 weights "%(weights)s"
 name %(node)s
}
""" % {"path": path, "first": first, "last": last, "plate": seq["plate"], "trimap": seq["trimap"],  # noqa: UP031
       "weights": weights, "node": node_name}
    with open(path, "w") as handle:
        handle.write(text)
    return str(path)


def make_graph(nuke, seq, first=FRAMES[0], last=FRAMES[1], weights="testbundle"):
    """Read nodes for plate and trimap wired into a new LBSMatte node; returns the node."""
    plate = nuke.createNode("Read", inpanel=False)
    plate["file"].setValue(seq["plate"])
    trimap = nuke.createNode("Read", inpanel=False)
    trimap["file"].setValue(seq["trimap"])
    for read in (plate, trimap):
        read["first"].setValue(first)
        read["last"].setValue(last)
    node = nuke.createNode("LBSMatte", inpanel=False)
    node.setInput(0, plate)
    node.setInput(1, trimap)
    node["weights"].setValue(weights)
    return node


def fill_cache_disk(monkeypatch, cache_dir, errno_=28, text="No space left on device"):
    """Files ``nuke_plugin.cache`` writes under ``cache_dir`` are made but their writes fail as on a
    full disk (or over quota: an empty file still fits); reads and other folders are untouched."""
    real_open = open
    root = os.path.realpath(cache_dir)

    class Full:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno_, text)

    def full_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if any(m in mode for m in "wax") and os.path.realpath(os.fspath(path)).startswith(root + os.sep):
            return Full(handle)
        return handle

    from nuke_plugin import cache

    monkeypatch.setattr(cache, "open", full_open, raising=False)
