"""``nuke_plugin.exr.content_sha256``: same pixels and metadata -> same hash, whenever written."""

import hashlib

import numpy as np
import OpenImageIO as oiio
import pytest

from nuke_plugin.exr import content_sha256, read_header


def _write(path, pixels, compression="zip", **attributes):
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2], oiio.HALF)
    spec.channelnames = ("R", "G", "B")[: pixels.shape[2]]
    spec.attribute("compression", compression)
    for name, value in attributes.items():
        spec.attribute(name.replace("__", "/"), value)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    out.write_image(np.ascontiguousarray(pixels, np.float32))
    out.close()
    return str(path)


@pytest.mark.parametrize("compression", ["none", "zip", "zips", "piz", "rle"])
def test_write_time_does_not_change_the_hash(tmp_path, compression):
    pixels = np.random.default_rng(3).uniform(0, 2, (37, 20, 3))
    a = _write(tmp_path / "a.exr", pixels, compression, DateTime="2024:01:01 10:00:00", input__mtime="x",
               nuke__version="15.1v1")
    b = _write(tmp_path / "b.exr", pixels, compression, DateTime="2025:12:31 23:59:59", input__mtime="y",
               nuke__version="15.1v3")  # the farm's Nuke, a point release from the artist's
    assert open(a, "rb").read() != open(b, "rb").read()
    assert content_sha256(a) == content_sha256(b)
    names = [name for name, _, _ in read_header(open(a, "rb"))]
    assert "capDate" in names and "dataWindow" in names


def test_pixels_and_lasting_metadata_change_the_hash(tmp_path):
    pixels = np.random.default_rng(4).uniform(0, 2, (16, 16, 3))
    base = content_sha256(_write(tmp_path / "a.exr", pixels))
    changed = pixels.copy()
    changed[5, 5, 1] += 0.25
    assert content_sha256(_write(tmp_path / "b.exr", changed)) != base
    assert content_sha256(_write(tmp_path / "c.exr", pixels, camera="A")) != base
    assert content_sha256(_write(tmp_path / "d.exr", pixels, "piz")) != base


def test_other_files_are_hashed_whole(tmp_path):
    path = tmp_path / "x.exr"
    path.write_bytes(b"not an exr at all")
    assert content_sha256(str(path)) == hashlib.sha256(b"not an exr at all").hexdigest()
    truncated = tmp_path / "t.exr"
    data = open(_write(tmp_path / "full.exr", np.zeros((4, 4, 3))), "rb").read()
    truncated.write_bytes(data[:30])
    assert content_sha256(str(truncated)) == hashlib.sha256(data[:30]).hexdigest()
