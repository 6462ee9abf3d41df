"""A content hash of an OpenEXR file that ignores when it was written.

EXR writers stamp files with the time (OpenImageIO's ``capDate``, for one), so two bakes of the
same pixels differ byte for byte and a hash of the bytes would never give a cache hit. This
reads the header with the standard library and hashes every attribute except the volatile ones
(dates, ``input/*`` file facts, Nuke's node-tree hash and version), then the pixel data as stored — without the chunk offset table,
whose values move with the header's length. Files it does not understand (tiled, multi-part,
deep, not EXR) are hashed whole: then a cache hit needs identical bytes, but a changed input is
still never mistaken for an unchanged one.
"""

import hashlib
import struct

MAGIC = 20000630
#: Attributes that change from one write of the same image to the next.
#: ``nuke/node_hash`` (Nuke's hash of the node tree above its Write) is not the image: a new plate
#: version with the same pixels, or a Dot added upstream, changes it; the pixels decide. Nor is
#: ``nuke/version``, the Nuke that wrote the file: the farm's Nuke a point release from the
#: artist's bakes the same pixels under another version (where it bakes other pixels, they decide).
VOLATILE = frozenset(("capDate", "utcOffset", "DateTime", "dateTime", "nuke/timecode_ctime", "nuke/node_hash",
                      "nuke/version"))
VOLATILE_PREFIXES = ("input/",)
#: Scanlines per chunk for each compression (OpenEXR's table).
LINES_PER_CHUNK = {0: 1, 1: 1, 2: 1, 3: 16, 4: 32, 5: 16, 6: 32, 7: 32, 8: 32, 9: 256}
_TILED, _LONG_NAMES, _DEEP, _MULTIPART = 0x200, 0x400, 0x800, 0x1000
_BLOCK = 1 << 20


def _read_string(handle):
    out = bytearray()
    while True:
        c = handle.read(1)
        if not c:
            raise ValueError("truncated header")
        if c == b"\0":
            return bytes(out)
        out += c
        if len(out) > 1024:
            raise ValueError("attribute name too long")


def read_header(handle):
    """Attributes of a single-part scanline EXR: ``[(name, type, value bytes)]``; the handle is
    left at the start of the offset table. ``ValueError`` for anything else."""
    magic, version = struct.unpack("<ii", handle.read(8))
    if magic != MAGIC:
        raise ValueError("not an OpenEXR file")
    if version & (_TILED | _DEEP | _MULTIPART):
        raise ValueError("tiled, deep or multi-part EXR")
    attributes = []
    while True:
        name = _read_string(handle)
        if not name:
            return attributes
        kind = _read_string(handle)
        (size,) = struct.unpack("<i", handle.read(4))
        if size < 0 or size > 1 << 26:
            raise ValueError("bad attribute size")
        value = handle.read(size)
        if len(value) != size:
            raise ValueError("truncated header")
        attributes.append((name.decode("latin-1"), kind.decode("latin-1"), value))


def display_window(path):
    """``(xmin, ymin, xmax, ymax)`` of an EXR's display window (its format), or ``None`` when the
    file is not a single-part scanline EXR this module reads."""
    try:
        with open(path, "rb") as handle:
            values = dict((name, value) for name, _, value in read_header(handle))
        return struct.unpack("<iiii", values["displayWindow"])
    except (OSError, IOError, ValueError, KeyError, struct.error):
        return None


def string_attribute(path, name):
    """The value of string attribute ``name`` of an EXR's header, or ``None`` when it has none (or
    the file is not a single-part scanline EXR this module reads)."""
    try:
        with open(path, "rb") as handle:
            for attribute, kind, value in read_header(handle):
                if attribute == name and kind == "string":
                    return value.decode("utf-8", "replace")
    except (OSError, IOError, ValueError, struct.error):
        return None
    return None


def content_sha256(path, ignore=()):
    """Hex SHA-256 of an EXR's pixels and lasting attributes (the whole file if not understood);
    attributes named in ``ignore`` are left out too."""
    with open(path, "rb") as handle:
        try:
            attributes = read_header(handle)
            values = dict((name, value) for name, _, value in attributes)
            compression = struct.unpack("<B", values["compression"])[0]
            ymin, ymax = struct.unpack("<iiii", values["dataWindow"])[1::2]
            chunks = -(-(ymax - ymin + 1) // LINES_PER_CHUNK[compression])
        except (ValueError, KeyError, struct.error):
            return _whole_file(handle)
        digest = hashlib.sha256(b"lbsmatte-exr-content-1")
        for name, kind, value in sorted(attributes):
            if name in VOLATILE or name in ignore or name.startswith(VOLATILE_PREFIXES):
                continue
            digest.update(struct.pack("<iii", len(name), len(kind), len(value)))
            digest.update(name.encode("latin-1") + kind.encode("latin-1") + value)
        handle.seek(8 * chunks, 1)  # the offset table: positions, not content
        block = handle.read(_BLOCK)
        while block:
            digest.update(block)
            block = handle.read(_BLOCK)
        return digest.hexdigest()


def _whole_file(handle):
    handle.seek(0)
    digest = hashlib.sha256()
    block = handle.read(_BLOCK)
    while block:
        digest.update(block)
        block = handle.read(_BLOCK)
    return digest.hexdigest()
