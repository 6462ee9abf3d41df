"""Weights bundles: the three trained networks with the manifest that describes them (SPEC §6).

A bundle is a folder::

    <bundle>/manifest.json              what the networks are and where they came from
    <bundle>/background.safetensors     background sampling network
    <bundle>/foreground.safetensors     foreground sampling network
    <bundle>/alpha.safetensors          matting network

``manifest.json``::

    {
      "format": "lbsmatte-bundle", "format_version": 1,
      "name": "show_x", "description": "...", "version": "1",
      "parent": {"name": "default", "sha256": "<sha256 of the parent's manifest.json>"} | null,
      "created": "2024-05-01T12:00:00+00:00",
      "networks": {"background": {"file": "background.safetensors", "sha256": "...",
                                  "config": {...}, "parameters": 123456}, ...},
      "colour": "srgb",          # the encoding the networks expect
      "training": {...},         # free: data, iterations, time, machine, losses...
      "trained": true,           # false for test bundles made of untrained networks
      "storage": "float32",      # or "float16": the dtype of the tensors on disk (loaded as float32)
      "refinement": {...},       # optional: the core.compositing.Settings the bundle runs with
      "training_data_terms": {   # optional: under which terms the training data may be used
        "summary": "...", ...    # (a fine-tune carries its parent's on, under "parent")
      }
    }

Weights are only ever read with ``safetensors`` (never ``torch.load``/pickle): a weights file
can hold numbers, not code. Before a bundle is used its manifest is checked, each file's
safetensors header is parsed by hand (a pickle or zip renamed ``.safetensors`` is refused without
being opened by anything that could execute it) and its SHA-256 is compared with the manifest.

Bundles are found by name (:func:`find_bundles`): the packaged ``default`` first, then each entry
of ``LBSMATTE_WEIGHTS_PATH`` (``os.pathsep``-separated, like ``NUKE_PATH``) in order; an entry is
either a bundle folder or a folder of bundle folders. The first bundle found with a name wins;
later ones with the same name are shadowed (with a warning).

``torch`` and ``safetensors`` are imported only by the functions that load or save networks, so
listing bundles (``lbsmatte weights list``) stays fast.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import logging
import math
import os
import platform
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import OutputError, WeightsError

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)

FORMAT = "lbsmatte-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Network roles in the order they run; same as ``core.nets.ROLES`` (kept here so that listing
#: bundles does not import torch).
ROLES = ("background", "foreground", "alpha")
#: Environment variable holding extra bundle folders, ``os.pathsep``-separated.
WEIGHTS_PATH_ENV = "LBSMATTE_WEIGHTS_PATH"
DEFAULT_NAME = "default"

#: The manifest key that says on which data the networks were trained and under which terms that
#: data may be used (``{"summary": str, ...}``). Weights trained on data under research-only terms
#: carry those terms on: a legal review reads them in the manifest, and ``lbsmatte weights show``
#: prints the summary.
DATA_TERMS = "training_data_terms"

# safetensors' own parser refuses headers above 100 MB; so do we.
_MAX_HEADER = 100_000_000
#: The largest ``manifest.json`` read (the packaged default's is about 100 kB): a bigger one, a
#: hostile or damaged file, is refused before it is read into memory.
_MAX_MANIFEST = 16_000_000
#: Bytes per element of the safetensors dtypes torch loads; a header naming another, or whose
#: offsets do not hold its shape at that size, is refused here (safetensors itself would raise
#: only when the networks load, past every check).
_DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
                "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
#: The dtypes a network's floating-point tensors may be stored in (they load as float32).
_FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
_HASH_CHUNK = 1 << 20
#: Characters a bundle name may not hold besides control characters: path separators (the name
#: would be read as a folder, or its default folder ``runs/<name>`` would lie elsewhere) and those
#: Windows refuses in a folder name (``:`` also makes ``runs/C:x`` a drive-relative path there).
_NAME_FORBIDDEN = '/\\:*?"<>|'
#: A ``save_bundle`` temporary folder (``.<name>.tmp-<hex>``) or an old bundle put aside while
#: the new one is renamed into place (``.<name>.old-<hex>``); group 1 is the bundle folder's name.
_LEFTOVER = re.compile(r"^\.(.+)\.(tmp|old)-[0-9a-f]{8}$")
#: Seconds since its last change after which such a folder is a crash's leftover, not a write in
#: progress (writing a bundle takes seconds; another process may be writing one beside it).
_LEFTOVER_AGE = 3600.0


@dataclass
class Bundle:
    """A weights bundle on disk.

    Attributes
    ----------
    name:
        The name users select it by (``--weights NAME``, the Nuke ``weights`` knob). The packaged
        bundle is always ``"default"``; others take the manifest's ``name``.
    path:
        The bundle folder.
    manifest:
        The parsed ``manifest.json``.
    """

    name: str
    path: Path
    manifest: dict[str, Any]
    # Files whose SHA-256 was checked, with the (size, mtime_ns) they had then, so that loading
    # the networks of a bundle just verified by load_bundle does not hash them a second time.
    _verified: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False, compare=False)

    # -- manifest ---------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """``'name' (path)`` — how errors name the bundle."""
        return f"weights bundle {self.name!r} ({self.path})"

    @property
    def trained(self) -> bool:
        """Whether the manifest says the networks were trained (``False`` for test bundles)."""
        return self.manifest.get("trained") is True

    def manifest_sha256(self) -> str:
        """SHA-256 of ``manifest.json`` as stored; identifies the bundle (files included, via their hashes)."""
        return file_sha256(self.path / MANIFEST)

    def _entry(self, role: str) -> dict[str, Any]:
        networks = self.manifest.get("networks")
        if role not in ROLES:
            raise WeightsError(f"unknown network role {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(networks, dict) or not isinstance(networks.get(role), dict):
            raise WeightsError(f"{self.label}: the manifest has no {role} network")
        return networks[role]

    def config(self, role: str) -> dict[str, Any]:
        """Architecture config of one network (a copy), as given to ``core.nets.build_network``."""
        config = self._entry(role).get("config")
        if not isinstance(config, dict):
            raise WeightsError(f"{self.label}: the manifest has no architecture config for the {role} network")
        return copy.deepcopy(config)

    # -- networks ---------------------------------------------------------------------------
    def load_network(self, role: str, device: str | torch.device = "cpu") -> nn.Module:
        """Build the ``role`` network from its config and load its weights.

        Parameters
        ----------
        role:
            ``"background"``, ``"foreground"`` or ``"alpha"``.
        device:
            Where the returned module lives.

        Returns
        -------
        torch.nn.Module
            In eval mode, on ``device``, float32.

        Raises
        ------
        WeightsError
            If the file is missing, not a safetensors file, fails its checksum, holds tensors
            that do not match the architecture in the config ("wrong architecture"), or holds a
            tensor with NaN or infinite values (a diverged training run), naming file and tensor.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from core.nets import build_network

        entry = self._entry(role)
        config = self.config(role)
        file = _bundle_file(self.path, entry.get("file"))
        if file is None:
            raise WeightsError(f"{self.label}: the manifest names no valid file for the {role} network")
        problems = _check_file(file, entry.get("sha256"), self._verified)
        if problems:
            raise WeightsError(f"{self.label}: {'; '.join(problems)}")
        try:
            net = build_network(config)
        except WeightsError as exc:
            raise WeightsError(f"{self.label}: cannot build the {role} network from its config: {exc}") from exc
        header = _read_header(file)  # checked above
        mismatch = _compare_tensors(net, header)
        if mismatch:
            raise WeightsError(
                f"{self.label}: {file.name} does not fit the {role} network described by the manifest "
                f"(wrong architecture): {mismatch}"
            )
        try:
            state = load_file(str(file), device="cpu")
        except SafetensorError as exc:  # what _read_header does not check, or the file changed since
            raise WeightsError(f"{self.label}: {file.name}: damaged safetensors file ({exc})") from exc
        broken = _nonfinite(state)
        if broken:
            raise WeightsError(f"{self.label}: {file.name}: {_describe_nonfinite(broken)}")
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:  # dtype/shape trouble the header comparison did not catch
            raise WeightsError(f"{self.label}: {file.name}: wrong architecture: {exc}") from exc
        return net.to(device).eval()

    def load_networks(self, device: str | torch.device = "cpu") -> dict[str, nn.Module]:
        """All three networks, ``{role: module}`` in the order they run (eval mode, on ``device``)."""
        return {role: self.load_network(role, device) for role in ROLES}

    # -- people -----------------------------------------------------------------------------
    def summary(self) -> str:
        """A few human-readable lines about the bundle (``lbsmatte weights show``, the Nuke panel)."""
        m = self.manifest
        lines = [f"{self.name}: {m.get('description') or '(no description)'}"]
        lines.append(f"  path: {self.path}")
        manifest_name = m.get("name")
        if manifest_name and manifest_name != self.name:
            lines.append(f"  manifest name: {manifest_name}")
        lines.append(
            f"  version: {m.get('version', '?')}   created: {m.get('created', '?')}   colour: {m.get('colour', '?')}"
        )
        lines.append(f"  parent: {parent_summary(m)}")
        lines.append(f"  training data terms: {data_terms_summary(m)}")
        if self.trained:
            lines.append("  trained: yes")
        else:
            lines.append("  trained: NO - untrained networks, for tests only; the pipeline refuses them")
        training = m.get("training")
        if isinstance(training, dict) and training:
            lines.append("  training:")
            for key, value in training.items():
                lines.append(f"    {key}: {_short(value)}")
        lines += _refinement_lines(m.get("refinement"))
        networks = m.get("networks")
        if not isinstance(networks, dict):
            networks = {}
        lines.append("  networks:")
        for role in ROLES:
            entry = networks.get(role)
            if not isinstance(entry, dict):
                lines.append(f"    {role}: MISSING")
                continue
            config = entry.get("config")
            if not isinstance(config, dict):
                config = {}
            params = entry.get("parameters")
            count = f"{params:,} parameters" if isinstance(params, int) else "? parameters"
            arch = config.get("architecture", "?")
            size = config.get("size")
            lines.append(f"    {role}: {arch}{f' ({size})' if size else ''}, {count}, {entry.get('file', '?')}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Finding and loading
# --------------------------------------------------------------------------------------------
def default_bundle_path() -> Path:
    """Folder of the packaged ``default`` bundle (``core/bundles/default``); it may not exist."""
    return Path(__file__).resolve().parent / "bundles" / DEFAULT_NAME


def has_trained_default() -> bool:
    """Whether the packaged ``default`` bundle exists and its manifest says it is trained.

    Cheap (reads the manifest only, no hashing); :func:`load_bundle` does the full check.
    """
    manifest = _read_manifest_quietly(default_bundle_path())
    return manifest is not None and manifest.get("trained") is True


def search_path() -> list[Path]:
    """Entries of ``LBSMATTE_WEIGHTS_PATH`` in order (empty entries dropped, ``~`` expanded)."""
    raw = os.environ.get(WEIGHTS_PATH_ENV, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def installed_default() -> Bundle | None:
    """The installed ``default`` bundle as :func:`find_bundles` finds it (its manifest read, its
    networks not), or None where there is none."""
    return next((b for b in find_bundles() if b.name == DEFAULT_NAME), None)


def find_bundles() -> list[Bundle]:
    """Every bundle that can be selected by name, ``default`` first.

    Precedence: the packaged ``default`` (only if it exists), then each entry of
    ``LBSMATTE_WEIGHTS_PATH`` in order; inside a folder of bundles, sub-folders in name order.
    A name seen a second time is shadowed by the first (logged as a warning). A bundle whose
    manifest is missing, unreadable or of another format is skipped with a warning (a folder
    without a manifest only when it holds ``.safetensors`` files), and so are a bundle whose name
    could not be selected back (:func:`name_problem`) and an entry that cannot be listed. Hidden
    sub-folders (``.name``) are never bundles: :func:`save_bundle` writes into ``.<name>.tmp-*``
    and puts an old bundle aside as ``.<name>.old-*``, and a crash may leave either behind.

    Only manifests are read; checksums are verified by :func:`load_bundle`.
    """
    found: dict[str, Bundle] = {}

    def add(bundle: Bundle) -> None:
        first = found.get(bundle.name)
        if first is None:
            found[bundle.name] = bundle
        elif first.path.resolve() != bundle.path.resolve():
            _warn_once(f"weights bundle {bundle.name!r} in {bundle.path} is shadowed by the one in {first.path}")

    default = default_bundle_path()
    if (default / MANIFEST).is_file():
        manifest = _read_manifest_quietly(default, warn=True)
        if manifest is not None:
            add(Bundle(DEFAULT_NAME, default, manifest))
    for entry in search_path():
        try:  # pathlib raises, not False, for a path inside a folder the user may not enter
            if not entry.is_dir():
                _warn_once(f"{WEIGHTS_PATH_ENV} entry {entry} is not a folder; ignored")
                continue
            single = (entry / MANIFEST).is_file()
        except OSError as exc:
            _warn_once(f"{WEIGHTS_PATH_ENV} entry {entry} cannot be read ({exc}); ignored")
            continue
        if single:
            folders = [entry]
        else:
            try:  # one unreadable folder on a studio's path must not stop every job
                children = sorted(p for p in entry.iterdir() if p.is_dir())
            except OSError as exc:
                _warn_once(f"{WEIGHTS_PATH_ENV} entry {entry} cannot be listed ({exc}); ignored")
                continue
            folders = []
            for child in children:
                if child.name.startswith("."):  # hidden: a save's temporary folder left by a crash, never a bundle
                    continue
                try:
                    has_manifest = (child / MANIFEST).is_file()
                except OSError as exc:  # another department's folder the user may not enter
                    _warn_once(f"skipping weights bundle {child}: it cannot be read ({exc})")
                    continue
                if has_manifest:
                    folders.append(child)
                elif _holds_weights(child):  # a copy half done: the weights without their manifest
                    _warn_once(f"skipping weights bundle {child}: {MANIFEST} is missing")
        for folder in folders:
            manifest = _read_manifest_quietly(folder, warn=True)
            if manifest is None:
                continue
            name = _name_for(folder, manifest)
            problem = name_problem(name)
            if problem:  # listed, it could not be selected back
                _warn_once(f"skipping weights bundle {folder}: its name {name!r} {problem}")
                continue
            add(Bundle(name, folder, manifest))
    return list(found.values())


def _holds_weights(folder: Path) -> bool:
    try:
        return any(p.suffix == ".safetensors" for p in folder.iterdir())
    except OSError:
        return False


def name_problem(name: Any) -> str:
    """What makes ``name`` unusable as a bundle name, in words; empty when users can select it.

    A name is what ``--weights NAME`` and the Nuke ``weights`` knob take back, and the default
    folder a training run writes (``runs/<name>``): it may not be empty, begin with ``.`` (``..``,
    a hidden folder the search skips), begin or end with white space (the knob strips it), hold a
    path separator or another character a folder name cannot hold, or be ``none`` (``--weights
    none`` is the diagnostic without networks). ``nuke_plugin.bundles.name_problem`` repeats it.
    """
    if not isinstance(name, str) or not name:
        return "is empty"
    if name != name.strip():
        return "begins or ends with white space"
    if name.startswith("."):
        return "begins with '.' (a hidden folder, or one outside its own)"
    bad = sorted({c for c in name if c in _NAME_FORBIDDEN or ord(c) < 32 or ord(c) == 127})
    if bad:
        return f"holds {', '.join(repr(c) for c in bad)} (a path separator or a character a folder name cannot hold)"
    if name.lower() == "none":
        return "is 'none', which --weights reads as the diagnostic without networks"
    return ""


def check_name(name: Any) -> None:
    """:class:`WeightsError` naming ``name`` when :func:`name_problem` finds it unusable."""
    problem = name_problem(name)
    if problem:
        raise WeightsError(f"{name!r} cannot be a weights bundle name: it {problem}")


def packaged_bundles_dir() -> Path:
    """The package's own bundles folder (``core/bundles``), read-only to every command."""
    return default_bundle_path().parent


def check_not_packaged(*paths: str | os.PathLike[str]) -> None:
    """:class:`WeightsError` when a path of ``paths`` is or lies inside :func:`packaged_bundles_dir`
    (followed through symbolic links): the bundles shipped with LBSMatte are never written by a
    command (fine-tune, train, export; matte, evaluate and demo outputs), even with ``--overwrite``;
    only the release step (``tools/cross_validate.py --ship``) replaces one. Several paths (the
    frames of a sequence) cost one resolution of each folder, and of each path that is a link."""
    try:
        root = packaged_bundles_dir().resolve()
    except OSError:
        return
    folders: dict[Path, Path] = {}
    for path in paths:
        given = Path(path).expanduser()
        try:
            if given.is_symlink() or given.name in ("", ".", ".."):
                target = given.resolve()
            else:  # a plain name in a folder: the folder, resolved once for all its files
                if given.parent not in folders:
                    folders[given.parent] = given.parent.resolve()
                target = folders[given.parent] / given.name
        except OSError:
            continue
        if target == root or root in target.parents:
            raise WeightsError(f"refusing to write {path}: it is inside LBSMatte's packaged bundles ({root}), which "
                               "no command changes; write to a folder of your own")


def load_bundle(name_or_path: str | os.PathLike[str]) -> Bundle:
    """Find a bundle by name or folder and verify it completely.

    Parameters
    ----------
    name_or_path:
        A name from :func:`find_bundles` (``"default"``, ``"show_x"``) or a bundle folder. A
        :class:`~pathlib.Path`, or a string containing a path separator, is always a folder; a
        plain string is looked up as a name first, then tried as a folder.

    Raises
    ------
    WeightsError
        Naming the bundle and what is wrong: folder or manifest missing, manifest not JSON or
        of another format, a network file missing, not a safetensors file or with a bad
        checksum, a config missing. An unknown name lists the bundles found and where they were
        searched.
    """
    text = os.fspath(name_or_path)
    is_path = isinstance(name_or_path, os.PathLike) or any(s and s in text for s in (os.sep, os.altsep))
    if not is_path:
        for bundle in find_bundles():
            if bundle.name == text:
                return _verified_bundle(bundle.path, bundle.name)
        if not Path(text).is_dir():
            raise WeightsError(_unknown_name_message(text))
    folder = Path(text).expanduser()
    if folder.exists() and not folder.is_dir():
        hint = f"; pass its folder, {folder.parent}" if folder.name == MANIFEST else ""
        raise WeightsError(f"weights bundle {folder} is a file, not a bundle folder (a folder holding {MANIFEST} "
                           f"and the networks' files){hint}")
    if not folder.is_dir():
        raise WeightsError(f"weights bundle folder {folder} does not exist")
    name = DEFAULT_NAME if _same_path(folder, default_bundle_path()) else None
    return _verified_bundle(folder, name)


def verify_bundle(bundle: Bundle | str | os.PathLike[str], *, require_trained: bool = False) -> list[str]:
    """Check a bundle thoroughly and return its problems (empty when it is sound).

    Beyond :func:`load_bundle`'s checks, every network is built from its config and the tensor
    names and shapes in its file are compared with it (without loading the weights). For the
    Nuke panel's *Troubleshoot* button and ``lbsmatte weights show``; never raises for a damaged
    bundle.

    Parameters
    ----------
    bundle:
        A :class:`Bundle`, a name or a folder.
    require_trained:
        Also report a manifest that says the networks are untrained.
    """
    if isinstance(bundle, Bundle):
        folder = bundle.path
    else:
        text = os.fspath(bundle)
        match = next((b for b in find_bundles() if b.name == text), None)
        if match is not None:
            folder = match.path
        elif Path(text).is_dir():
            folder = Path(text)
        else:
            return [_unknown_name_message(text)]
    manifest, problems = _check_manifest(folder)
    if manifest is None:
        return problems
    if require_trained and manifest.get("trained") is not True:
        problems.append("the manifest says the networks are untrained (trained: false)")
    files_ok = set()
    for role in ROLES:
        entry = manifest["networks"].get(role)
        file = _bundle_file(folder, entry.get("file")) if isinstance(entry, dict) else None
        if file is None:
            continue  # reported by _check_manifest
        file_problems = _check_file(file, entry.get("sha256"), {})
        problems += file_problems
        if not file_problems and isinstance(entry.get("config"), dict):
            files_ok.add(role)
    try:
        from core.nets import build_network
    except ImportError as exc:  # torch missing: still report what could be checked
        problems.append(f"cannot import the networks to check architectures: {exc}")
        return problems
    for role in ROLES:
        if role not in files_ok:
            continue
        entry = manifest["networks"][role]
        try:
            net = build_network(copy.deepcopy(entry["config"]))
        except WeightsError as exc:
            problems.append(f"{role} network: invalid config: {exc}")
            continue
        file = _bundle_file(folder, entry["file"])
        assert file is not None
        header = _read_header(file)
        mismatch = _compare_tensors(net, header)
        if mismatch:
            problems.append(f"{file.name}: wrong architecture for the {role} config: {mismatch}")
        params = entry.get("parameters")
        actual = sum(p.numel() for p in net.parameters())
        if isinstance(params, int) and params != actual:
            problems.append(f"{role} network: manifest says {params} parameters, the config builds {actual}")
        if not mismatch:  # only the tensors of a network's size are loaded: another file's may be of any size
            problems += _nonfinite_file(folder, entry)
    return problems


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------
def save_bundle(
    path: str | os.PathLike[str],
    networks: dict[str, nn.Module],
    *,
    name: str,
    description: str,
    version: str = "1",
    parent: Bundle | dict[str, Any] | None = None,
    colour: str = "srgb",
    training: dict[str, Any] | None = None,
    trained: bool = True,
    overwrite: bool = False,
    storage: str = "float32",
    refinement: dict[str, Any] | None = None,
    replace_packaged: bool = False,
    data_terms: dict[str, Any] | None = None,
) -> Bundle:
    """Write a bundle folder atomically and return it.

    Parameters
    ----------
    path:
        The bundle folder to create.
    networks:
        ``{"background": net, "foreground": net, "alpha": net}``, each built by
        ``core.nets.build_network`` (its architecture config is taken from ``net.config``).
        Floating-point tensors are stored as contiguous float32 on the CPU.
    name, description, version:
        Recorded in the manifest; ``name`` is what users select the bundle by.
    parent:
        The bundle a fine-tune started from (its name and manifest SHA-256 are recorded), or a
        ``{"name": ..., "sha256": ...}`` dict, or ``None``.
    colour:
        The colour encoding the networks expect (``"srgb"``).
    training:
        Free JSON-serialisable summary: data, iterations, time, machine, losses...
    trained:
        ``False`` for bundles of untrained networks (tests); the pipeline refuses those.
    overwrite:
        Replace an existing bundle at ``path``; the old one is removed only once the new one is
        complete. Without it an existing ``path`` is an error.
    storage:
        ``"float32"`` (default) or ``"float16"``: the dtype of the floating-point tensors on
        disk. Half storage halves a bundle (the packaged ``default`` uses it); networks are
        always loaded as float32, and half rounding (relative 2^-11) is far below what changes
        a matte. Recorded in the manifest.
    refinement:
        The refinement settings the pipeline runs these networks with (the manifest's
        ``"refinement"``, :func:`core.pipeline.refinement_settings`); ``None``: none recorded.
    replace_packaged:
        Only for the release step (``tools/cross_validate.py --ship``): ``path`` may lie inside
        the package's own bundles folder (:func:`check_not_packaged`), refused otherwise.
    data_terms:
        The training data's terms (the manifest's ``"training_data_terms"``, ``{"summary": ...}``).
        Without it, a bundle whose ``parent`` is a :class:`Bundle` recording terms gets them
        carried on (networks fine-tuned from weights trained on research-only data are no freer
        than those weights); otherwise none is recorded.

    Stale leftovers of an earlier save of the same folder killed midway (``.<name>.tmp-*`` and
    ``.<name>.old-*`` beside it, unchanged for an hour) are removed first.

    Raises
    ------
    WeightsError
        If ``name`` cannot be selected back (:func:`check_name`), ``path`` is inside the packaged
        bundles, ``path`` exists (and ``overwrite`` is false, or it holds something other than a
        bundle), a role is missing, or a network carries no JSON-serialisable ``.config``.
    OutputError
        If the files cannot be written (a full disk: ``No space left on device``); nothing is
        left behind and a bundle already at ``path`` stays as it was.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    from core.io import set_default_mode

    folder = Path(path).expanduser()
    dtypes = {"float32": torch.float32, "float16": torch.float16}
    if storage not in dtypes:
        raise WeightsError(f"cannot save weights bundle {name!r}: storage must be float32 or float16, got {storage!r}")
    check_name(name)
    check_destination(folder, overwrite, packaged=replace_packaged)
    missing = [r for r in ROLES if r not in networks]
    extra = sorted(set(networks) - set(ROLES))
    if missing or extra:
        raise WeightsError(
            f"cannot save weights bundle {name!r}: expected networks {', '.join(ROLES)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(extra)}" if extra else "")
        )
    configs = {}
    for role in ROLES:
        config = getattr(networks[role], "config", None)
        if not isinstance(config, dict):
            raise WeightsError(f"cannot save weights bundle {name!r}: the {role} network has no .config dict")
        if config.get("role", role) != role:
            raise WeightsError(
                f"cannot save weights bundle {name!r}: the network given as {role} was configured "
                f"as {config.get('role')!r}"
            )
        try:
            configs[role] = json.loads(json.dumps(config))
        except (TypeError, ValueError) as exc:
            raise WeightsError(f"cannot save weights bundle {name!r}: the {role} config is not JSON: {exc}") from exc

    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder)
    tmp = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        entries: dict[str, Any] = {}
        for role in ROLES:
            net = networks[role]
            state = {}
            for key, value in net.state_dict().items():
                t = value.detach().to("cpu")
                if t.is_floating_point():
                    if storage == "float16" and t.numel() and float(t.abs().max()) > torch.finfo(torch.float16).max:
                        raise WeightsError(
                            f"cannot save weights bundle {name!r} in float16: {role} tensor {key} holds "
                            f"{float(t.abs().max()):.4g}, beyond half precision's range; use float32"
                        )
                    t = t.to(dtypes[storage])
                state[key] = t.contiguous().clone()  # clone: no shared storage (safetensors refuses it)
            file = tmp / f"{role}.safetensors"
            save_file(state, str(file), metadata={"format": "pt", "bundle": name, "role": role})
            # safetensors writes its files 0600 (through a private temporary file): a bundle made by
            # one user must be readable by the farm's, as any other file they write.
            set_default_mode(file)
            entries[role] = {
                "file": file.name,
                "sha256": file_sha256(file),
                "config": configs[role],
                "parameters": int(sum(p.numel() for p in net.parameters())),
            }
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": name,
            "description": description,
            "version": str(version),
            "parent": _parent_record(parent),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "networks": entries,
            "colour": colour,
            "training": _jsonable(training or {}),
            "trained": bool(trained),
            "storage": storage,
        }
        manifest["training"].setdefault("machine", f"{platform.node()} ({platform.platform()})")
        if refinement is not None:
            manifest["refinement"] = _jsonable(refinement)
        if data_terms is None and isinstance(parent, Bundle):
            data_terms = inherited_data_terms(parent)
        if data_terms is not None:
            manifest[DATA_TERMS] = _jsonable(data_terms)
        _write_text(tmp / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        _fsync_dir(tmp)
        _replace_folder(tmp, folder, overwrite, replace_packaged)
    except (OSError, SafetensorError) as exc:  # a full disk (safetensors: "... No space left on device")
        shutil.rmtree(tmp, ignore_errors=True)
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OutputError(f"cannot write the weights bundle {folder}: {cause}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    bundle = Bundle(DEFAULT_NAME if _same_path(folder, default_bundle_path()) else name, folder, manifest)
    for role in ROLES:
        file = folder / entries[role]["file"]
        st = file.stat()
        bundle._verified[str(file)] = (st.st_size, st.st_mtime_ns)
    return bundle


# --------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------
def nonfinite_tensors(bundle: Bundle, role: str) -> list[str]:
    """Problems of the ``role`` network's file: tensors holding NaN or infinity, named.

    A diverged fine-tune writes such weights with valid checksums; they would turn every unknown
    pixel into NaN. Empty when the file is sound, missing or unreadable (other checks say so).
    """
    return _nonfinite_file(bundle.path, bundle.manifest.get("networks", {}).get(role))


def _nonfinite_file(folder: Path, entry: Any) -> list[str]:
    from safetensors.torch import load_file

    file = _bundle_file(folder, entry.get("file")) if isinstance(entry, dict) else None
    if file is None or not file.is_file():
        return []
    try:
        state = load_file(str(file), device="cpu")
    except Exception:  # not safetensors: reported by the checksum and header checks
        return []
    broken = _nonfinite(state)
    return [f"{file.name}: {_describe_nonfinite(broken)}"] if broken else []


def _nonfinite(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """``{tensor name: count of NaN/inf values}`` of floating-point tensors that hold any."""
    import torch

    broken = {}
    for name in sorted(state):
        tensor = state[name]
        # In float32: torch's isfinite on float16 CPU tensors is ~15x slower, and this runs at
        # every process start; counting only when something is wrong.
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor.float()).all()):
            broken[name] = int((~torch.isfinite(tensor.float())).sum())
    return broken


def _describe_nonfinite(broken: dict[str, int], show: int = 3) -> str:
    names = list(broken)
    listed = ", ".join(f"{name} ({broken[name]} of its values)" for name in names[:show])
    more = f" and {len(names) - show} more" if len(names) > show else ""
    return f"tensor {listed}{more} not finite (NaN or infinity); the weights are broken (a diverged training run?)"


def file_sha256(path: Path | str) -> str:
    """The hex SHA-256 of the file at ``path``'s bytes (read in 1 MiB pieces): a bundle's manifest
    and networks, a result's plate and trimap (``lbsmatte/inputs``), a show's training files."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _name_for(folder: Path, manifest: dict[str, Any]) -> str:
    if _same_path(folder, default_bundle_path()):
        return DEFAULT_NAME
    name = manifest.get("name")
    return name if isinstance(name, str) and name else folder.name


#: The key under a manifest's ``"refinement"`` that says it was taken from the parent bundle.
INHERITED = "inherited_from"


def inherited_refinement(parent: Bundle) -> dict[str, Any] | None:
    """The ``"refinement"`` a bundle trained on from ``parent`` records: the parent's settings (its
    cross-validation chose them for networks these started from, the best known for them until a
    cross-validation of their own), marked as inherited; ``None`` where the parent records none.

    The mark names the bundle whose settings were chosen for its networks: the parent, or where
    the parent had inherited them itself (a fine-tune of a fine-tune), the bundle it took them
    from, with the bundles they passed through (``"through"``, oldest first)."""
    recorded = parent.manifest.get("refinement")
    if not isinstance(recorded, dict) or not recorded:
        return None
    settings = {k: v for k, v in recorded.items() if k not in ("chosen_on", INHERITED)}
    earlier = recorded.get(INHERITED)
    if isinstance(earlier, dict) and isinstance(earlier.get("bundle"), str):
        through = earlier.get("through")
        through = [str(b) for b in through] if isinstance(through, list) else []
        return settings | {INHERITED: {"bundle": earlier["bundle"], "sha256": str(earlier.get("sha256") or ""),
                                       "through": [*through, parent.name]}}
    return settings | {INHERITED: {"bundle": parent.name, "sha256": parent.manifest_sha256()}}


def data_terms_summary(manifest: dict[str, Any]) -> str:
    """The one-line summary of a manifest's ``"training_data_terms"``, or what to do without one."""
    terms = manifest.get(DATA_TERMS)
    summary = terms.get("summary") if isinstance(terms, dict) else None
    if isinstance(summary, str) and summary.strip():
        return summary.strip()
    return "not recorded: ask whoever trained this bundle on which data, and under which terms"


def parent_summary(manifest: dict[str, Any]) -> str:
    """The bundle a manifest's ``"parent"`` names, for people: ``name (manifest sha256 <12 hex>)``,
    or ``none``. :func:`save_bundle` writes a ``{"name", "sha256"}`` dict or null; a hand-edited or
    older manifest may name the parent by a bare string, shown as a parent without a hash."""
    parent = manifest.get("parent")
    if isinstance(parent, str) and parent.strip():
        parent = {"name": parent.strip()}
    if not isinstance(parent, dict):
        return "none"
    name, sha = parent.get("name"), parent.get("sha256")
    name = name.strip() if isinstance(name, str) and name.strip() else "?"
    sha = sha.strip()[:12] if isinstance(sha, str) and sha.strip() else "not recorded"
    return f"{name} (manifest sha256 {sha})"


def inherited_data_terms(parent: Bundle) -> dict[str, Any] | None:
    """The ``"training_data_terms"`` of a bundle fine-tuned from ``parent``: the parent's, carried
    on, with the fine-tuning data's own terms to add (LBSMatte cannot know them); ``None`` when
    the parent records none."""
    terms = parent.manifest.get(DATA_TERMS)
    if not isinstance(terms, dict):
        return None
    return {
        "summary": f"trained further from {parent.name!r}, whose terms apply: {data_terms_summary(parent.manifest)} "
                   "The terms of the data it was trained further on apply too (not recorded by LBSMatte).",
        "parent": {"bundle": parent.name, "sha256": parent.manifest_sha256()} | copy.deepcopy(terms),
    }


def _refinement_lines(refinement: Any) -> list[str]:
    """``summary``'s lines for a manifest's ``"refinement"``: the settings the pipeline runs with
    this bundle, and what chose them."""
    if not isinstance(refinement, dict) or not refinement:
        return ["  refinement: none recorded (the pipeline's own defaults)"]
    settings = {k: v for k, v in refinement.items() if k not in ("chosen_on", INHERITED)}
    lines = ["  refinement:", f"    settings: {_short(settings, limit=400)}"]
    inherited = refinement.get(INHERITED)
    if isinstance(inherited, dict):
        through = inherited.get("through")
        via = f", through {', '.join(map(str, through))}" if isinstance(through, list) and through else ""
        lines.append(f"    inherited from: {inherited.get('bundle', '?')}{via} (chosen for its networks, not re-chosen for these)")
    chosen = refinement.get("chosen_on")
    if isinstance(chosen, dict):
        # Lists in what LBSMatte writes; a hand-edited manifest's 5 or "GT01" must not end weights show.
        objects, trimaps = (v if isinstance(v, list) else [v] if v else [] for v in (chosen.get("objects"),
                                                                                  chosen.get("trimaps")))
        scores = ", ".join(f"{name} {chosen[k]:.3f}" for k, name in (("sad", "SAD"), ("grad", "Grad"))
                           if isinstance(chosen.get(k), (int, float)))
        lines.append(f"    chosen on: {len(objects)} objects, {'/'.join(map(str, trimaps)) or '?'}, "
                     f"{chosen.get('criterion', '?')}" + (f" (in-sample {scores})" if scores else ""))
    return lines


def _short(value: Any, limit: int = 100) -> str:
    if isinstance(value, dict):
        text = ", ".join(f"{k}={_short(v, limit)}" for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = ", ".join(_short(v, limit) for v in value)
    elif isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"the training summary cannot be written as JSON: {exc}") from exc


def _parent_record(parent: Bundle | dict[str, Any] | None) -> dict[str, str] | None:
    if parent is None:
        return None
    if isinstance(parent, Bundle):
        return {"name": parent.manifest.get("name") or parent.name, "sha256": parent.manifest_sha256()}
    if isinstance(parent, dict) and isinstance(parent.get("name"), str):
        return {"name": parent["name"], "sha256": str(parent.get("sha256") or "")}
    raise WeightsError(f"parent must be a Bundle, a {{'name', 'sha256'}} dict or None, got {parent!r}")


def _bundle_file(folder: Path, file: Any) -> Path | None:
    """The file a manifest entry names, if it is a plain file name inside the bundle folder."""
    if not isinstance(file, str) or not file or Path(file).name != file or file in (".", ".."):
        return None
    return folder / file


def _unknown_name_message(name: str) -> str:
    # A folder of that name that the search skipped is the likelier mistake: say what is wrong with it.
    entries = [default_bundle_path()] if name == DEFAULT_NAME else []
    for entry in search_path():
        entries.append(entry if entry.name == name else entry / name)
    for folder in entries:
        try:
            is_dir = folder.is_dir()
        except OSError:  # inside a folder the user may not enter: the search warned about it
            continue
        if is_dir:  # its manifest.json missing too (a copy half done, only the weights copied)
            manifest, problems = _parse_manifest(folder)
            if manifest is None:
                return f"weights bundle {name!r} ({folder}) cannot be used: {'; '.join(problems)}"
            named = _name_for(folder, manifest)
            if named != name:  # a folder renamed (abc_v1 to abc_v1_approved): its manifest keeps the name
                problem = name_problem(named)
                if problem:
                    return f"weights bundle {name!r} ({folder}) cannot be used: its name {named!r} {problem}"
                return (f"no weights bundle named {name!r}: the folder {folder} holds the bundle {named!r} (a bundle "
                        f"is picked by the name its {MANIFEST} gives, not by its folder's): select it as {named!r}, "
                        "or by its folder")
    bundles = find_bundles()
    listed = ", ".join(b.name for b in bundles) or "none"
    path = os.environ.get(WEIGHTS_PATH_ENV)
    where = f"{WEIGHTS_PATH_ENV}={path}" if path else f"{WEIGHTS_PATH_ENV} is not set"
    return (
        f"no weights bundle named {name!r} (and no folder of that name); bundles found: {listed}. "
        f"Searched: the packaged default ({default_bundle_path()}), then {where}"
    )


def _read_manifest_quietly(folder: Path, warn: bool = False) -> dict[str, Any] | None:
    """Manifest of ``folder`` if it is readable JSON of our format, else ``None`` (logged if ``warn``)."""
    manifest, problems = _parse_manifest(folder)
    if manifest is None and warn:
        _warn_once(f"skipping weights bundle {folder}: {'; '.join(problems)}")
    return manifest


#: The search's warnings already given in this process: one command searches more than once
#: (the installed default, then the bundle asked for), and a farm log should say each thing once.
_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning("%s", message)


def _parse_manifest(folder: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """Read and check the top level of ``manifest.json`` (no network entries)."""
    file = folder / MANIFEST
    try:
        if not folder.is_dir():
            return None, [f"folder {folder} does not exist"]
        if not file.is_file():
            return None, [f"{MANIFEST} is missing in {folder}"]
    except OSError as exc:  # a folder the user may not enter
        return None, [f"{folder} cannot be read: {exc}"]
    try:
        size = file.stat().st_size
        if size > _MAX_MANIFEST:
            return None, [f"{MANIFEST} is {size} bytes, more than the {_MAX_MANIFEST} a bundle manifest may be"]
        with open(file, "rb") as f:
            manifest = json_loads(f.read(_MAX_MANIFEST + 1).decode("utf-8"))
    except OSError as exc:
        return None, [f"{MANIFEST} cannot be read: {exc}"]
    except (UnicodeDecodeError, ValueError) as exc:
        return None, [f"{MANIFEST} is not valid JSON: {exc}"]
    if not isinstance(manifest, dict):
        return None, [f"{MANIFEST} is not a JSON object"]
    if manifest.get("format") != FORMAT:
        return None, [f"{MANIFEST} is not an LBSMatte bundle manifest (format {manifest.get('format')!r}, "
                      f"expected {FORMAT!r})"]
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        return None, [f"{MANIFEST} has an invalid format_version {version!r}"]
    if version > FORMAT_VERSION:
        return None, [f"{MANIFEST} has format_version {version}, newer than this LBSMatte reads "
                      f"({FORMAT_VERSION}); update LBSMatte"]
    if not isinstance(manifest.get("networks"), dict):
        return None, [f"{MANIFEST} has no 'networks' table"]
    return manifest, []


def _check_manifest(folder: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """Top level plus the network entries; the manifest is returned if the top level is sound."""
    manifest, problems = _parse_manifest(folder)
    if manifest is None:
        return None, problems
    for key in ("name", "colour"):
        if not isinstance(manifest.get(key), str) or not manifest.get(key):
            problems.append(f"{MANIFEST} has no {key!r}")
    for role in ROLES:
        entry = manifest["networks"].get(role)
        if not isinstance(entry, dict):
            problems.append(f"{MANIFEST} has no entry for the {role} network")
            continue
        if _bundle_file(folder, entry.get("file")) is None:
            problems.append(f"{MANIFEST}: the {role} network's file {entry.get('file')!r} is not a file name")
        if not isinstance(entry.get("sha256"), str):
            problems.append(f"{MANIFEST}: the {role} network has no sha256")
        config = entry.get("config")
        if not isinstance(config, dict) or "architecture" not in config:
            problems.append(f"{MANIFEST}: the {role} network has no architecture config")
    return manifest, problems


#: How deeply a manifest's or safetensors header's JSON may nest (a sound one: under 10).
_MAX_JSON_DEPTH = 64


def json_loads(text: str) -> Any:
    """``json.loads`` that refuses JSON nested more than :data:`_MAX_JSON_DEPTH` deep with a
    ``ValueError``, like any other malformed JSON: a hostile ``[[[[...`` would otherwise raise
    ``RecursionError`` in the parser, or in whatever walks the value afterwards (``deepcopy``).
    For JSON read from files another hand may have written: manifests, safetensors headers,
    training checkpoints' state (``nuke_plugin.bundles.json_loads`` is the Nuke layer's twin)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"nested more than {_MAX_JSON_DEPTH} deep") from None
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > _MAX_JSON_DEPTH:
            raise ValueError(f"nested more than {_MAX_JSON_DEPTH} deep")
        level = [c for v in level if isinstance(v, (dict, list)) for c in (v.values() if isinstance(v, dict) else v)
                 if isinstance(c, (dict, list))]
    return value


def _read_header(file: Path) -> dict[str, Any]:
    """Parse a safetensors header by hand: 8 bytes little-endian length, then that much JSON.

    Returns ``{tensor name: {"dtype", "shape", "data_offsets"}}``. Raises ``ValueError`` with the
    reason if the file is not a well-formed safetensors file. Nothing else of the file is read.
    """
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("not a safetensors file (shorter than its 8-byte header length)")
        n = int.from_bytes(head, "little")
        if n < 2 or n > _MAX_HEADER or n > size - 8:
            raise ValueError(f"not a safetensors file (header length {n} impossible for a {size}-byte file)")
        raw = f.read(n)
    try:
        header = json_loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file (its header is not a JSON object)")
    header.pop("__metadata__", None)
    data_len = size - 8 - n
    for key, info in header.items():
        ok = (
            isinstance(info, dict)
            and isinstance(info.get("dtype"), str)
            and isinstance(info.get("shape"), list)
            and all(isinstance(d, int) and d >= 0 for d in info["shape"])
            and isinstance(info.get("data_offsets"), list)
            and len(info["data_offsets"]) == 2
            and all(isinstance(o, int) for o in info["data_offsets"])
            and 0 <= info["data_offsets"][0] <= info["data_offsets"][1]
        )
        if not ok:
            raise ValueError(f"not a safetensors file (malformed header entry {key!r})")
        if info["dtype"] not in _DTYPE_SIZES:
            raise ValueError(f"damaged safetensors file (tensor {key!r} has unknown dtype {info['dtype']!r})")
        begin, stop = info["data_offsets"]
        count = math.prod(info["shape"])
        if stop - begin != count * _DTYPE_SIZES[info["dtype"]]:
            raise ValueError(f"damaged safetensors file (tensor {key!r}: {stop - begin} bytes for "
                             f"{count} values of {info['dtype']})")
    # The tensors' bytes follow one another from the start of the data, no overlap and no gap, as
    # safetensors itself requires when it loads (a header that passed here raised there, untrapped).
    end = 0
    for key, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"]):
        begin, stop = info["data_offsets"]
        if begin != end:
            raise ValueError(f"damaged safetensors file (tensor {key!r} starts at byte {begin} of the data, "
                             f"{'inside an earlier tensor' if begin < end else 'after a gap'} ending at {end})")
        end = stop
    if end != data_len:
        raise ValueError(f"damaged safetensors file (header describes {end} bytes of data, file holds {data_len})")
    return header


def _check_file(file: Path, expected_sha: Any, verified: dict[str, tuple[int, int]]) -> list[str]:
    """Problems of one network file: missing, not safetensors, bad checksum. Hashes only if needed."""
    if not file.is_file():
        return [f"{file.name} is missing"]
    try:
        _read_header(file)
    except ValueError as exc:
        return [f"{file.name}: {exc}"]
    except OSError as exc:
        return [f"{file.name} cannot be read: {exc}"]
    st = file.stat()
    stamp = (st.st_size, st.st_mtime_ns)
    if verified.get(str(file)) == stamp:
        return []
    actual = file_sha256(file)
    if actual != expected_sha:
        return [f"{file.name}: bad checksum (sha256 {actual[:16]}..., manifest says {str(expected_sha)[:16]}...)"]
    verified[str(file)] = stamp
    return []


def _verified_bundle(folder: Path, name: str | None) -> Bundle:
    manifest, problems = _check_manifest(folder)
    label = f"weights bundle {name or folder.name!r} ({folder})"
    if manifest is None:
        raise WeightsError(f"{label}: {'; '.join(problems)}")
    bundle = Bundle(name or _name_for(folder, manifest), folder, manifest)
    if not problems:
        for role in ROLES:
            entry = manifest["networks"][role]
            file = _bundle_file(folder, entry["file"])
            assert file is not None
            problems += _check_file(file, entry["sha256"], bundle._verified)
    if problems:
        raise WeightsError(f"{bundle.label}: {'; '.join(problems)}")
    return bundle


def _state_shapes(net: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in net.state_dict().items()}


def _compare_tensors(net: nn.Module, header: dict[str, Any]) -> str:
    """Empty if ``header`` (:func:`_read_header`) holds ``net``'s tensors: the same names and shapes,
    floating-point values where the network's are (integers would load truncated); else, in words,
    what differs."""
    state = net.state_dict()
    mismatch = _compare_shapes(_state_shapes(net), {k: v["shape"] for k, v in header.items()})
    kinds = [k for k, v in state.items() if k in header
             and v.is_floating_point() != (header[k]["dtype"] in _FLOAT_DTYPES)]
    if kinds:
        shown = ", ".join(f"{k} {header[k]['dtype']} vs network {str(state[k].dtype).removeprefix('torch.')}"
                          for k in kinds[:3])
        more = f" and {len(kinds) - 3} more" if len(kinds) > 3 else ""
        mismatch = "; ".join(filter(None, [mismatch, f"dtype mismatch {shown}{more}"]))
    return mismatch


def _compare_shapes(expected: dict[str, list[int]], found: dict[str, list[int]], show: int = 3) -> str:
    """Empty if the same names with the same shapes; else the first few differences, in words."""
    parts = []
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [k for k in expected if k in found and list(found[k]) != expected[k]]

    def few(keys: list[str]) -> str:
        return ", ".join(keys[:show]) + (f" and {len(keys) - show} more" if len(keys) > show else "")

    if missing:
        parts.append(f"missing tensors {few(missing)}")
    if unexpected:
        parts.append(f"unexpected tensors {few(unexpected)}")
    if shapes:
        parts.append("shape mismatch " + ", ".join(
            f"{k} file {found[k]} vs network {expected[k]}" for k in shapes[:show]
        ) + (f" and {len(shapes) - show} more" if len(shapes) > show else ""))
    return "; ".join(parts)


def check_destination(folder: Path, overwrite: bool, *, packaged: bool = False) -> None:
    """:class:`WeightsError` unless a bundle may be written to ``folder``: it is not inside the
    packaged bundles (unless ``packaged``, the release step) and it is not there, or ``overwrite``
    is given and it is a bundle folder (or empty). Training checks it before it starts."""
    if not packaged:
        check_not_packaged(folder)
    if not folder.exists() and not folder.is_symlink():
        return
    if not overwrite:
        raise WeightsError(f"weights bundle folder {folder} already exists; pass --overwrite (overwrite=True from Python) to replace it")
    if not folder.is_dir():
        raise WeightsError(f"cannot write a weights bundle to {folder}: it exists and is not a folder")
    if not (folder / MANIFEST).is_file():
        if any(folder.iterdir()):
            raise WeightsError(
                f"refusing to replace {folder}: it is not a weights bundle (no {MANIFEST}) and is not empty"
            )
        return
    # manifest.json is a common name (web apps, extensions, other tools): only an LBSMatte
    # bundle's makes the folder one that may be replaced, with everything in it.
    try:
        with open(folder / MANIFEST, "rb") as f:
            manifest = json_loads(f.read(_MAX_MANIFEST + 1).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise WeightsError(
            f"refusing to replace {folder}: it is not a weights bundle (its {MANIFEST} is not an LBSMatte bundle "
            "manifest)"
        )
    # The folder is replaced whole: anything else in it (an evaluation's --json or sheets, an
    # export's .pt, notes put beside the weights) would be deleted with the old bundle.
    others = _not_bundle_files(folder, manifest)
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise WeightsError(
            f"refusing to replace {folder}: besides the weights bundle it holds {shown}, which --overwrite "
            "would delete with the old bundle; move them out of the folder, or write the bundle elsewhere"
        )


#: Files an operating system's file browser leaves in any folder it shows: no one's work, replaced
#: with the bundle as they were.
_OS_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".directory"})


def _not_bundle_files(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Names in bundle folder ``folder`` (sorted) that are not the bundle's own: its manifest, the
    files its ``manifest`` names, the network files a bundle is written with, the files macOS,
    Windows and KDE leave in folders they show (``.DS_Store``, ``._NAME``, ``Thumbs.db``, ...)."""
    networks = manifest.get("networks")
    own = {MANIFEST, *(f"{role}.safetensors" for role in ROLES)}
    if isinstance(networks, dict):
        own.update(e["file"] for e in networks.values() if isinstance(e, dict) and isinstance(e.get("file"), str))
    try:
        names = sorted(entry.name for entry in folder.iterdir())
    except OSError:
        return []
    return [name + ("/" if (folder / name).is_dir() and not (folder / name).is_symlink() else "") for name in names
            if name not in own and name not in _OS_FILES and not name.startswith("._")]


def _write_text(path: Path, text: str) -> None:
    # newline="\n": the same bytes on every platform (Windows' text mode would write CRLF), since
    # the manifest's SHA-256 is the bundle's identity (the Nuke cache key, a fine-tune's parent).
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    # Windows flushes a file only through a handle open for writing (os.fsync of a read-only one
    # fails with EBADF); POSIX takes any descriptor, and a read-only one needs no write permission.
    mode = "r+b" if os.name == "nt" else "rb"
    for file in folder.iterdir():
        with open(file, mode) as f:
            os.fsync(f.fileno())
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _replace_folder(new: Path, folder: Path, overwrite: bool, packaged: bool = False) -> None:
    """Move the complete ``new`` folder to ``folder``; an old bundle there goes only afterwards."""
    if not folder.exists():
        os.rename(new, folder)  # fails if someone created it meanwhile: nothing is lost
        return
    check_destination(folder, overwrite, packaged=packaged)
    from core.io import keep_mode

    # The bundle replaced keeps its permissions and group (a show's group-writable bundle stays so).
    for file in [new, *new.iterdir()]:
        old_file = folder if file == new else folder / file.name
        if not old_file.is_symlink():
            keep_mode(file, old_file)
    old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(folder, old)
    try:
        os.rename(new, folder)
    except BaseException:
        os.rename(old, folder)  # put the old bundle back
        raise
    shutil.rmtree(old, ignore_errors=True)



def _remove_leftovers(folder: Path) -> None:
    """Remove what an earlier :func:`save_bundle` of ``folder`` killed midway left beside it: its
    temporary folders (``.<name>.tmp-*``), and old bundles put aside (``.<name>.old-*``) once
    ``folder`` holds the new one (without it the old one is the only copy: kept). Only folders
    named so for this ``folder``, holding plain files only, none changed for
    :data:`_LEFTOVER_AGE` seconds (a save in progress elsewhere changes its folder every few
    seconds) are removed; anything else is left as it is."""
    try:
        siblings = list(folder.parent.iterdir())
    except OSError:
        return
    now = time.time()
    for leftover in siblings:
        match = _LEFTOVER.match(leftover.name)
        if match is None or match.group(1) != folder.name or leftover.is_symlink() or not leftover.is_dir():
            continue
        if match.group(2) == "old" and not (folder / MANIFEST).is_file():
            continue
        try:
            entries = list(leftover.iterdir())
            if any(e.is_symlink() or not e.is_file() for e in entries):
                continue
            if max(p.stat().st_mtime for p in [leftover, *entries]) > now - _LEFTOVER_AGE:
                continue
            for entry in entries:
                entry.unlink()
            leftover.rmdir()
        except OSError as exc:  # not ours to remove after all (permissions): the save goes on
            log.debug("leaving %s: %s", leftover, exc)
            continue
        log.info("removed %s, left by an interrupted save of %s", leftover, folder)
