"""Paths as the C++ libraries (OpenImageIO, OpenColorIO) take them."""

from __future__ import annotations

import os


def library_path(path: str | os.PathLike[str]) -> str:
    """``path`` as OpenImageIO (and OpenColorIO) must be given it: its bytes on disk read as UTF-8.

    Python turns a path's bytes into text with the locale's file system encoding, the C++
    libraries turn the text back into bytes as UTF-8. Under a UTF-8 locale the two agree; under a
    Latin-1 one (a farm's ``LANG=de_DE`` or CentOS's ``LANG=en_US``) ``café.exr`` on the command
    line is ``cafÃ©.exr`` to Python, which OpenImageIO looked for under other bytes ("Could not open
    file" for a file that is there), and under ``LANG=C`` with Python's UTF-8 mode off it is lone
    surrogates. The text returned names the same bytes to both. Raises UnicodeDecodeError when the
    bytes are not UTF-8 (see :func:`core.io.check_utf8_path`)."""
    return os.fsencode(path).decode("utf-8")
