"""Weights bundles as the Nuke side sees them: manifests read with the standard library.

Nuke's own Python (3.7 in Nuke 13) must never import ``core`` or ``torch``, so this module
repeats the search rules of ``core.weights.find_bundles`` over plain files:

1. the packaged ``default`` bundle, ``<core package>/bundles/default`` (only if it exists);
2. each entry of ``LBSMATTE_WEIGHTS_PATH`` (``os.pathsep``-separated, like ``NUKE_PATH``), in
   order: an entry is either a bundle folder (it holds ``manifest.json``) or a folder of bundle
   folders (taken in name order).

A bundle is selected by its manifest's ``name`` (the folder name when it has none; always
``default`` for the packaged one). The first bundle found with a name wins. Hidden sub-folders
(``.name``: a killed save's ``.<name>.tmp-*``) are never bundles. Manifests that are not JSON,
of another format, of a newer ``format_version`` or without a ``networks`` table are skipped, as
``core`` skips them, and so is a bundle whose name could not be selected back (:func:`name_problem`); :func:`find_bundles` can also report what it skipped and why
(``problems=``), so that the panel and *Troubleshoot* show broken bundles instead of hiding
them. Checksums are *not* verified here: the subprocess does that
(``core.weights.load_bundle``) before any network runs.
"""

import hashlib
import json
import os

FORMAT = "lbsmatte-bundle"
#: The newest manifest ``format_version`` this code reads (``core.weights.FORMAT_VERSION``).
FORMAT_VERSION = 1
ROLES = ("background", "foreground", "alpha")
MANIFEST = "manifest.json"
DEFAULT_NAME = "default"
WEIGHTS_PATH_ENV = "LBSMATTE_WEIGHTS_PATH"
#: Characters a bundle name may not hold besides control characters (``core.weights._NAME_FORBIDDEN``).
NAME_FORBIDDEN = '/\\:*?"<>|'


def name_problem(name):
    """What makes ``name`` unusable as a bundle name, in words; empty when it can be selected back
    (``core.weights.name_problem``'s rule: the knob strips the value, a separator makes it a folder,
    ``none`` is the diagnostic without networks)."""
    if not isinstance(name, str) or not name:
        return "is empty"
    if name != name.strip():
        return "begins or ends with white space"
    if name.startswith("."):
        return "begins with '.' (a hidden folder, or one outside its own)"
    bad = sorted(set(c for c in name if c in NAME_FORBIDDEN or ord(c) < 32 or ord(c) == 127))
    if bad:
        return "holds %s (a path separator or a character a folder name cannot hold)" % ", ".join(repr(c) for c in bad)
    if name.lower() == "none":
        return "is 'none', which --weights reads as the diagnostic without networks"
    return ""


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

    def problems(self):
        """What is visibly wrong without hashing: network entries or files missing (stat only)."""
        networks = self.manifest.get("networks")
        networks = networks if isinstance(networks, dict) else {}
        found = []
        for role in ROLES:
            entry = networks.get(role)
            if not isinstance(entry, dict):
                found.append("%s has no entry for the %s network" % (MANIFEST, role))
                continue
            name = entry.get("file")
            if not isinstance(name, str) or not name or os.path.basename(name) != name or name in (".", ".."):
                found.append("%s: the %s network's file %r is not a file name" % (MANIFEST, role, name))
            elif not os.path.isfile(os.path.join(self.path, name)):
                found.append("%s is missing" % name)
        return found

    def manifest_sha256(self):
        """SHA-256 of ``manifest.json`` as stored: identifies the weights (it holds their hashes)."""
        return file_sha256(os.path.join(self.path, MANIFEST))

    def summary_lines(self):
        """Human-readable lines: description, version, parent, colour, training data terms, training summary."""
        m = self.manifest
        lines = [
            "%s: %s" % (self.name, m.get("description") or "(no description)"),
            "path: %s" % self.path,
            "version: %s   created: %s   colour: %s"
            % (m.get("version", "?"), m.get("created", "?"), m.get("colour", "?")),
        ]
        lines.append("parent: %s" % _parent_summary(m))
        # As core.weights.data_terms_summary: a legal restriction on the training data is shown whole.
        terms = m.get("training_data_terms")
        summary = terms.get("summary") if isinstance(terms, dict) else None
        if isinstance(summary, str) and summary.strip():
            lines.append("training data terms: %s" % summary.strip())
        else:
            lines.append("training data terms: not recorded: ask whoever trained this bundle on which data, "
                         "and under which terms")
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


#: The largest ``manifest.json`` read (``core.weights._MAX_MANIFEST``).
MAX_MANIFEST = 16000000
#: How deeply JSON read from a file may nest (``core.weights._MAX_JSON_DEPTH``).
MAX_JSON_DEPTH = 64


def json_loads(text):
    """``json.loads`` that refuses JSON nested more than :data:`MAX_JSON_DEPTH` deep with a
    ``ValueError``, as any other malformed JSON: a hostile ``[[[[...`` in a manifest or a cache
    record would otherwise raise ``RecursionError`` (in the parser or in what walks the value)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError("nested more than %d deep" % MAX_JSON_DEPTH) from None
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise ValueError("nested more than %d deep" % MAX_JSON_DEPTH)
        children = []
        for item in level:
            for child in (item.values() if isinstance(item, dict) else item):
                if isinstance(child, (dict, list)):
                    children.append(child)
        level = children
    return value


def read_manifest(folder):
    """The manifest of ``folder`` if it is an LBSMatte bundle manifest this code reads, else ``None``."""
    return parse_manifest(folder)[0]


def parse_manifest(folder):
    """``(manifest, None)``, or ``(None, reason)`` saying in words why ``folder`` is not usable.

    The same top-level checks as ``core.weights`` (format, ``format_version``, ``networks``), so
    that Nuke lists exactly the bundles the subprocess accepts.
    """
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        return None, "%s is missing in %s" % (MANIFEST, folder)
    try:
        size = os.path.getsize(path)
        if size > MAX_MANIFEST:
            return None, "%s is %d bytes, more than the %d a bundle manifest may be" % (MANIFEST, size, MAX_MANIFEST)
        with open(path, "rb") as handle:
            manifest = json_loads(handle.read(MAX_MANIFEST + 1).decode("utf-8"))
    except (OSError, IOError) as exc:
        return None, "%s cannot be read: %s" % (MANIFEST, exc)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, "%s is not valid JSON: %s" % (MANIFEST, exc)
    if not isinstance(manifest, dict):
        return None, "%s is not a JSON object" % MANIFEST
    if manifest.get("format") != FORMAT:
        return None, "%s is not an LBSMatte bundle manifest (format %r, expected %r)" % (
            MANIFEST, manifest.get("format"), FORMAT)
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        return None, "%s has an invalid format_version %r" % (MANIFEST, version)
    if version > FORMAT_VERSION:
        return None, "%s has format_version %d, newer than this LBSMatte reads (%d); update LBSMatte" % (
            MANIFEST, version, FORMAT_VERSION)
    if not isinstance(manifest.get("networks"), dict):
        return None, "%s has no 'networks' table" % MANIFEST
    return manifest, None


def search_path(environ=None):
    """Entries of ``LBSMATTE_WEIGHTS_PATH`` in order (empty entries dropped, ``~`` expanded)."""
    raw = (os.environ if environ is None else environ).get(WEIGHTS_PATH_ENV, "")
    return [os.path.expanduser(p) for p in raw.split(os.pathsep) if p.strip()]


def default_bundle_dir(core_dir):
    """``<core>/bundles/default`` for a ``core`` package folder (``None`` gives ``None``)."""
    if not core_dir:
        return None
    return os.path.join(core_dir, "bundles", DEFAULT_NAME)


def find_bundles(core_dir=None, environ=None, problems=None):
    """Every bundle that can be selected by name, ``default`` first (same rules as ``core``).

    Parameters
    ----------
    core_dir:
        Folder of the installed ``core`` package (where the default bundle lives); ``None`` asks
        :func:`nuke_plugin.interpreter.core_dir`.
    environ:
        Environment to read ``LBSMATTE_WEIGHTS_PATH`` from (default ``os.environ``).
    problems:
        A list to append ``(folder, reason)`` to for everything skipped: an entry of the search
        path that is not a folder or cannot be listed, a bundle whose manifest is missing (a
        folder holding ``.safetensors`` files only), unreadable, not JSON or of another format,
        and a bundle shadowed by an earlier one of the same name.

    Returns
    -------
    list of BundleInfo
    """
    if core_dir is None:
        from nuke_plugin import interpreter

        core_dir = interpreter.core_dir()
    found = []
    first = {}
    report = problems.append if problems is not None else (lambda item: None)

    def add(name, folder, manifest):
        folder = os.path.abspath(folder)
        if name not in first:
            first[name] = folder
            found.append(BundleInfo(name, folder, manifest))
        elif not _same_path(first[name], folder):
            report((folder, "bundle %r is shadowed by the one in %s (the first found with a name wins)"
                    % (name, first[name])))

    def consider(folder, name=None):
        manifest, reason = parse_manifest(folder)
        if manifest is None:
            report((os.path.abspath(folder), reason))
            return
        name = name or _name_for(folder, manifest)
        problem = name_problem(name)
        if problem:  # listed, the knob could not select it back
            report((os.path.abspath(folder), "its name %r %s" % (name, problem)))
            return
        add(name, folder, manifest)

    default = default_bundle_dir(core_dir)
    if default and os.path.isfile(os.path.join(default, MANIFEST)):
        consider(default, DEFAULT_NAME)
    for entry in search_path(environ):
        if not os.path.isdir(entry):
            report((entry, "%s entry %s is not a folder" % (WEIGHTS_PATH_ENV, entry)))
            continue
        if os.path.isfile(os.path.join(entry, MANIFEST)):
            consider(entry, DEFAULT_NAME if default and _same_path(entry, default) else None)
            continue
        try:
            children = sorted(os.listdir(entry))
        except (OSError, IOError) as exc:
            report((entry, "%s entry %s cannot be listed: %s" % (WEIGHTS_PATH_ENV, entry, exc)))
            continue
        for child in children:
            if child.startswith("."):  # hidden: a save's temporary folder left by a crash, never a bundle
                continue
            folder = os.path.join(entry, child)
            if os.path.isfile(os.path.join(folder, MANIFEST)):
                consider(folder, DEFAULT_NAME if default and _same_path(folder, default) else None)
            elif _holds_weights(folder):  # a copy half done: the weights without their manifest
                report((os.path.abspath(folder), "%s is missing in %s" % (MANIFEST, folder)))
    return found


def why_not_found(name, core_dir=None, environ=None, base=None):
    """Why a ``weights`` knob value that :func:`resolve_bundle` does not find is none, in words,
    where a folder it names says: the search skipped it (its manifest missing, damaged or of a
    newer LBSMatte), or it holds a bundle of another name (a folder renamed: its manifest keeps
    the name); ``None`` when there is no such folder. ``core.weights``' message for an unknown
    name checks the same folders: the packaged one for ``default``, ``<entry>/<name>`` (or the
    entry itself so named) on the search path, and the value read as a folder
    (:func:`knob_folder`; for a plain name, only one holding a manifest: any folder of the
    script's may share a bundle's name)."""
    text = str(name or "").strip()
    if not text:
        return None
    folders = []
    if not names_folder(text):
        if text == DEFAULT_NAME and default_bundle_dir(core_dir):
            folders.append(default_bundle_dir(core_dir))
        for entry in search_path(environ):
            folders.append(entry if os.path.basename(os.path.normpath(entry)) == text else os.path.join(entry, text))
    folder = knob_folder(text, base)
    if names_folder(text) or os.path.isfile(os.path.join(folder, MANIFEST)):  # a plain name: a bundle's folder only
        folders.append(folder)
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        folder = os.path.abspath(folder)
        manifest, reason = parse_manifest(folder)
        if manifest is None:
            return "weights bundle %r (%s) cannot be used: %s" % (text, folder, reason)
        default = default_bundle_dir(core_dir)
        named = DEFAULT_NAME if default and _same_path(folder, default) else _name_for(folder, manifest)
        if named != text and not names_folder(text):
            problem = name_problem(named)
            if problem:
                return "weights bundle %r (%s) cannot be used: its name %r %s" % (text, folder, named, problem)
            return ("weights bundle %r not found: the folder %s holds the bundle %r (a bundle is picked by the name "
                    "its %s gives, not by its folder's): pick %r, or give the folder's path" % (text, folder, named, MANIFEST, named))
    return None


def _holds_weights(folder):
    try:
        return os.path.isdir(folder) and any(n.endswith(".safetensors") for n in os.listdir(folder))
    except (OSError, IOError):
        return False


def _name_for(folder, manifest):
    name = manifest.get("name")
    return name if isinstance(name, str) and name else os.path.basename(os.path.normpath(folder))


def knob_folder(text, base=None):
    """The folder a ``weights`` knob value names, read as a folder: ``~`` expanded, a relative one
    read from ``base`` (the saved script's folder, as the *cache folder* knob is read:
    ``nuke_plugin.cache.absolute_cache_dir``), from the current folder when ``base`` is None.
    A backslash separates folders on every system: the knob is text, which Nuke keeps as typed,
    and ``weights\\sh010_v1`` typed on Windows is the folder a Linux or macOS farm must find."""
    folder = os.path.expanduser(str(text).strip())
    if os.sep != "\\":
        folder = folder.replace("\\", "/")
    if base and not os.path.isabs(folder):
        folder = os.path.join(base, folder)
    return folder


def names_folder(text):
    """Whether a ``weights`` knob value names a folder: it holds a path separator, ``/`` or ``\\``
    on every system (:func:`knob_folder`; a plain value is a bundle's name first,
    :func:`resolve_bundle`)."""
    return any(sep in text for sep in ("/", "\\"))


def resolve_bundle(name_or_path, core_dir=None, environ=None, base=None):
    """The bundle a ``weights`` knob value names, or ``None`` when none is found.

    A value containing a path separator is a folder; a plain value is a name first, then a
    folder (``core.weights.load_bundle``'s rule). A relative folder is read from ``base`` (the
    saved script's folder: the artist's Nuke, the farm's ``batch.py`` and the comp render each
    start in a folder of their own), from the current folder when ``base`` is None
    (:func:`knob_folder`).
    """
    text = str(name_or_path or "").strip()
    if not text:
        return None
    if not names_folder(text):
        for bundle in find_bundles(core_dir, environ):
            if bundle.name == text:
                return bundle
    folder = knob_folder(text, base)
    if os.path.isdir(folder):
        manifest = read_manifest(folder)
        if manifest is not None:
            return BundleInfo(_name_for(folder, manifest), os.path.abspath(folder), manifest)
    return None


def _same_path(a, b):
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def _parent_summary(manifest):
    """The bundle a manifest's ``"parent"`` names, in ``core.weights.parent_summary``'s words (a
    bare string, from a hand-edited or older manifest, is a parent without a hash;
    tests/test_contracts.py holds them equal)."""
    parent = manifest.get("parent")
    if isinstance(parent, str) and parent.strip():
        parent = {"name": parent.strip()}
    if not isinstance(parent, dict):
        return "none"
    name, sha = parent.get("name"), parent.get("sha256")
    name = name.strip() if isinstance(name, str) and name.strip() else "?"
    sha = sha.strip()[:12] if isinstance(sha, str) and sha.strip() else "not recorded"
    return "%s (manifest sha256 %s)" % (name, sha)


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
