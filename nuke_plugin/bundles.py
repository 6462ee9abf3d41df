"""Weights bundles as the Nuke side sees them: manifests read with the standard library.

Nuke's own Python (3.7 in Nuke 13) must never import ``core`` or ``torch``, so this module
repeats the search rules of ``core.weights.find_bundles`` over plain files:

1. the packaged ``default`` bundle, ``<core package>/bundles/default`` (only if it exists);
2. each entry of ``LBSMATTE_WEIGHTS_PATH`` (``os.pathsep``-separated, like ``NUKE_PATH``), in
   order: an entry is either a bundle folder (it holds ``manifest.json``) or a folder of bundle
   folders (taken in name order).

A bundle is selected by its manifest's ``name`` (the folder name when it has none; always
``default`` for the packaged one). The first bundle found with a name wins. Manifests that are
missing, not JSON or of another format are skipped. Checksums are *not* verified here: the
subprocess does that (``core.weights.load_bundle``) before any network runs.
"""

import hashlib
import json
import os

FORMAT = "lbsmatte-bundle"
MANIFEST = "manifest.json"
DEFAULT_NAME = "default"
WEIGHTS_PATH_ENV = "LBSMATTE_WEIGHTS_PATH"


class BundleInfo(object):
    """A bundle found on disk.

    Attributes
    ----------
    name:
        What the ``weights`` knob and ``--weights`` take.
    path:
        The bundle folder (absolute).
    manifest:
        The parsed ``manifest.json`` (a dict).
    """

    def __init__(self, name, path, manifest):
        self.name = name
        self.path = path
        self.manifest = manifest

    def __repr__(self):
        return "BundleInfo(%r, %r)" % (self.name, self.path)

    @property
    def trained(self):
        """``False`` for test bundles of untrained networks (``"trained": false``)."""
        return self.manifest.get("trained") is True

    def manifest_sha256(self):
        """SHA-256 of ``manifest.json`` as stored: identifies the weights (it holds their hashes)."""
        return file_sha256(os.path.join(self.path, MANIFEST))

    def summary_lines(self):
        """Human-readable lines: description, version, parent, colour, training summary."""
        m = self.manifest
        lines = [
            "%s: %s" % (self.name, m.get("description") or "(no description)"),
            "path: %s" % self.path,
            "version: %s   created: %s   colour: %s"
            % (m.get("version", "?"), m.get("created", "?"), m.get("colour", "?")),
        ]
        parent = m.get("parent")
        if isinstance(parent, dict):
            lines.append("parent: %s (manifest sha256 %s)" % (parent.get("name", "?"), str(parent.get("sha256") or "")[:12]))
        elif isinstance(parent, str) and parent:
            lines.append("parent: %s" % parent)
        else:
            lines.append("parent: none")
        if self.trained:
            lines.append("trained: yes")
        else:
            lines.append("trained: NO - untrained networks, for tests only")
        training = m.get("training")
        if isinstance(training, dict) and training:
            lines.append("training:")
            for key in sorted(training):
                lines.append("    %s: %s" % (key, _short(training[key])))
        elif training:
            lines.append("training: %s" % _short(training))
        networks = m.get("networks")
        if isinstance(networks, dict):
            lines.append("networks:")
            for role in ("background", "foreground", "alpha"):
                entry = networks.get(role)
                if not isinstance(entry, dict):
                    lines.append("    %s: MISSING" % role)
                    continue
                config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
                params = entry.get("parameters")
                lines.append(
                    "    %s: %s, %s parameters, %s"
                    % (role, config.get("architecture", "?"), params if isinstance(params, int) else "?", entry.get("file", "?"))
                )
        return lines


def file_sha256(path, chunk=1 << 20):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        block = handle.read(chunk)
        while block:
            digest.update(block)
            block = handle.read(chunk)
    return digest.hexdigest()


def read_manifest(folder):
    """The manifest of ``folder`` if it is an LBSMatte bundle manifest, else ``None``."""
    try:
        with open(os.path.join(folder, MANIFEST), "rb") as handle:
            manifest = json.loads(handle.read().decode("utf-8"))
    except (OSError, IOError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None
    return manifest


def search_path(environ=None):
    """Entries of ``LBSMATTE_WEIGHTS_PATH`` in order (empty entries dropped, ``~`` expanded)."""
    raw = (os.environ if environ is None else environ).get(WEIGHTS_PATH_ENV, "")
    return [os.path.expanduser(p) for p in raw.split(os.pathsep) if p.strip()]


def default_bundle_dir(core_dir):
    """``<core>/bundles/default`` for a ``core`` package folder (``None`` gives ``None``)."""
    if not core_dir:
        return None
    return os.path.join(core_dir, "bundles", DEFAULT_NAME)


def find_bundles(core_dir=None, environ=None):
    """Every bundle that can be selected by name, ``default`` first (same rules as ``core``).

    Parameters
    ----------
    core_dir:
        Folder of the installed ``core`` package (where the default bundle lives); ``None`` asks
        :func:`nuke_plugin.interpreter.core_dir`.
    environ:
        Environment to read ``LBSMATTE_WEIGHTS_PATH`` from (default ``os.environ``).

    Returns
    -------
    list of BundleInfo
    """
    if core_dir is None:
        from nuke_plugin import interpreter

        core_dir = interpreter.core_dir()
    found = []
    names = set()

    def add(name, folder, manifest):
        if name not in names:
            names.add(name)
            found.append(BundleInfo(name, os.path.abspath(folder), manifest))

    default = default_bundle_dir(core_dir)
    if default and os.path.isfile(os.path.join(default, MANIFEST)):
        manifest = read_manifest(default)
        if manifest is not None:
            add(DEFAULT_NAME, default, manifest)
    for entry in search_path(environ):
        if not os.path.isdir(entry):
            continue
        if os.path.isfile(os.path.join(entry, MANIFEST)):
            folders = [entry]
        else:
            folders = [
                os.path.join(entry, child)
                for child in sorted(os.listdir(entry))
                if os.path.isfile(os.path.join(entry, child, MANIFEST))
            ]
        for folder in folders:
            manifest = read_manifest(folder)
            if manifest is None:
                continue
            if default and _same_path(folder, default):
                name = DEFAULT_NAME
            else:
                name = manifest.get("name") if isinstance(manifest.get("name"), str) and manifest.get("name") else os.path.basename(os.path.normpath(folder))
            add(name, folder, manifest)
    return found


def resolve_bundle(name_or_path, core_dir=None, environ=None):
    """The bundle a ``weights`` knob value names, or ``None`` when none is found.

    A value containing a path separator is a folder; a plain value is a name first, then a
    folder (``core.weights.load_bundle``'s rule).
    """
    text = str(name_or_path or "").strip()
    if not text:
        return None
    is_path = any(sep and sep in text for sep in (os.sep, os.altsep, "/"))
    if not is_path:
        for bundle in find_bundles(core_dir, environ):
            if bundle.name == text:
                return bundle
    folder = os.path.expanduser(text)
    if os.path.isdir(folder):
        manifest = read_manifest(folder)
        if manifest is not None:
            name = manifest.get("name") if isinstance(manifest.get("name"), str) and manifest.get("name") else os.path.basename(os.path.normpath(folder))
            return BundleInfo(name, os.path.abspath(folder), manifest)
    return None


def _same_path(a, b):
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def _short(value, limit=100):
    if isinstance(value, dict):
        text = ", ".join("%s=%s" % (k, _short(v, limit)) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = ", ".join(_short(v, limit) for v in value)
    elif isinstance(value, float):
        text = "%.4g" % value
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
