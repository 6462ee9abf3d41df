"""What a result was made with, as one hash: the ``fingerprint`` in every cache key (SPEC §10).

Two results may share a cache entry only when they were made by the same core, with the same
weights, on the same kind of device and precision, reading colour through the same OCIO config.
:func:`fingerprint` hashes exactly that:

- the core: its version and a hash of the core package's own source files (``core/**/*.py``),
  so any change to a setting, a constant or a step of the pipeline — wherever it lives — is a
  new fingerprint without anyone having to remember to bump a number;
- the weights bundle: the SHA-256 of its ``manifest.json`` (which holds each network file's
  SHA-256);
- the device and the precision as resolved (``auto`` -> ``cuda``/``fp16``, or ``cpu`` with ``bf16``
  where the CPU has it natively and ``fp32`` elsewhere):
  half-precision CUDA frames and float CPU frames never share a key;
- the OpenColorIO conversions when the plate's colour is an OCIO colourspace: the cache IDs of
  the processors between it and the networks' sRGB space (:func:`core.colour.conversion_id`:
  they follow the transforms and the LUT files' contents, not where the config lies),
  ``$LBSMATTE_OCIO_DISPLAY`` and OpenColorIO's version;
- the versions of the libraries that compute the pixels (:func:`library_versions`): torch (its
  kernels, and on CUDA the CUDA and cuDNN it runs, decide the networks' last bits), NumPy, SciPy
  (the refinement's sparse solve, the rough matte's distance transform) and OpenImageIO (reading
  and writing the frames): a venv upgraded between two Computes of a shot gives another key, not a
  shot whose frames mix the two.

``lbsmatte fingerprint`` prints :func:`fingerprint`'s record as one JSON line; the Nuke node runs
it at Compute (never at script load) and puts the ``fingerprint`` field in its cache key.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from core import __version__

#: Colours that need no OCIO config (anything else is an OCIO colourspace name).
_BUILTIN_COLOURS = ("auto", "linear", "srgb")


def source_sha256(root: Path | None = None) -> str:
    """SHA-256 over a package's ``.py`` files (default: ``core``'s own): their paths relative to
    it and their bytes, CRLF line endings read as LF.

    Bytecode caches, the bundled weights and examples are not included (the bundle has its own
    hash in :func:`fingerprint`).
    """
    if root is None:
        return _own_source_sha256()
    return _tree_sha256(Path(root))


@lru_cache(maxsize=1)
def _own_source_sha256() -> str:
    return _tree_sha256(Path(__file__).resolve().parent)  # once per process: the files do not change under it


def _tree_sha256(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        # Line endings as LF: a checkout converted to CRLF (Windows, core.autocrlf, where no
        # .gitattributes says otherwise) is the same source, and must give the cache key the
        # same fingerprint as the Linux farm's.
        digest.update(path.read_bytes().replace(b"\r\n", b"\n"))
        digest.update(b"\0")
    return digest.hexdigest()


def ocio_identity(colour: str) -> dict[str, str] | None:
    """What reading ``colour`` through ``$OCIO``'s config is, when ``colour`` is an OCIO colourspace:
    the conversions' identity (:func:`core.colour.conversion_id`), ``$LBSMATTE_OCIO_DISPLAY`` and
    OpenColorIO's version; ``None`` for ``auto``/``linear``/``srgb`` in any case and spacing, as
    :func:`core.colour.check_colour` reads them (no config is read then).

    Neither ``$OCIO``'s path nor the config's own cache ID is recorded: the cache ID holds the
    context's (the config's folder, its search paths as this machine resolves them), so a farm
    machine mounting the studio's config at another root than the artist's got another key for
    the same pixels. The processors' cache IDs follow what the conversions do, LUT contents
    included, and nothing else."""
    if str(colour).strip().lower() in _BUILTIN_COLOURS:
        return None
    from core.colour import DISPLAY_ENV, conversion_id

    return {
        "conversions": conversion_id(colour) or "",
        DISPLAY_ENV: os.environ.get(DISPLAY_ENV, ""),
        "version": _version("opencolorio"),
    }


#: The distributions whose code computes a result's pixels, by their installed names.
LIBRARIES = ("torch", "numpy", "scipy", "OpenImageIO")


def _version(distribution: str) -> str:
    """The installed version of ``distribution`` (``""`` when it is not installed as one)."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def library_versions(device: Any) -> dict[str, str]:
    """``{name: version}`` of :data:`LIBRARIES`, and on a CUDA ``device`` the CUDA torch was built
    for and the cuDNN it loads: torch's kernels (oneDNN's, cuDNN's) differ between releases in
    their last bits, the refinement's solver between SciPy releases."""
    versions = dict((name, _version(name)) for name in LIBRARIES)
    if getattr(device, "type", device) == "cuda":
        import torch

        versions["cuda"] = str(torch.version.cuda)
        versions["cudnn"] = str(torch.backends.cudnn.version())
    return versions


def fingerprint(bundle: Any, device: str = "auto", precision: str = "auto", colour: str = "linear") -> dict[str, Any]:
    """The record of what a result is made with, and its hash.

    Parameters
    ----------
    bundle:
        A :class:`core.weights.Bundle` (its manifest's SHA-256 is used).
    device:
        ``auto``, ``cpu`` or ``cuda``; resolved as the pipeline resolves it.
    precision:
        ``auto``, ``fp32``, ``fp16`` or ``bf16``; resolved for the device.
    colour:
        The plate's colour (``linear``, ``srgb``, ``auto`` or an OCIO colourspace name).

    Returns
    -------
    dict
        ``core_version``, ``core_sha256``, ``bundle_sha256``, ``device``, ``precision``,
        ``ocio``, ``libraries`` (:func:`library_versions`) and ``fingerprint`` (hex SHA-256 of all
        the others).

    Raises
    ------
    core.errors.InputError
        An unknown device or precision, or an OCIO config that cannot be loaded.
    """
    from core.pipeline import autocast_dtype, precision_name, resolve_device

    resolved = resolve_device(device)
    dtype = autocast_dtype(precision, resolved)
    record: dict[str, Any] = {
        "core_version": __version__,
        "core_sha256": source_sha256(),
        "bundle_sha256": bundle.manifest_sha256(),
        "device": resolved.type,
        "precision": precision_name(dtype),
        "ocio": ocio_identity(colour),
        "libraries": library_versions(resolved),
    }
    record["fingerprint"] = hashlib.sha256(json.dumps(record, sort_keys=True).encode("utf-8")).hexdigest()
    return record
