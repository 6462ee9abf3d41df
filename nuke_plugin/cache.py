"""Cache keys and folders for computed mattes (pure functions over paths; no Nuke).

Layout under the cache folder::

    <cache>/<key>/lbsmatte.####.exr     results: R G B A, fg.R fg.G fg.B, bg.R bg.G bg.B
    <cache>/<key>/lbsmatte_trimap.####.exr  the trimap the tool used (0 / 0.5 / 1 in R G B)
    <cache>/<key>/lbsmatte.json         what the key was made of (settings, per-frame keys)
    <cache>/.bake/<job>/plate.####.exr  baked inputs while a job runs (removed afterwards; a
                                        killed job's, by the next job: remove_stale_bakes)
    <cache>/.bake/<job>/trimap.####.exr

The *key* of a folder is a hash of
- the settings that change pixels (:class:`Settings`: the bundle's manifest SHA-256 — which holds
  the SHA-256 of every weights file — input colour, trimap channel, premultiply, rounds) and the
  core's *fingerprint* (``lbsmatte fingerprint``, :mod:`core.fingerprint`: the core's
  version and a hash of its source files, the bundle's manifest hash, the device and precision
  as resolved — CUDA half precision and CPU float never share a key — and the OCIO config's
  identity when the input colour is an OCIO colourspace), and
- for every frame of the range, a hash of the baked plate and trimap EXR files (their pixels and
  metadata, not the time stamp EXR writers put in the header: :mod:`nuke_plugin.exr`).

So a folder's frames are correct for its key by construction: any change upstream, to the
weights or to a setting gives another folder, and the ``Read`` is pointed at a folder only once
its frames exist. Within a folder, a frame already written is never computed again; a frame
with the same per-frame key in a sibling folder (e.g. after the range grew), in the folder the
node shows when that is in another cache folder (the cache folder moved), or as another frame
of the same range (a still held over it), is copied, not recomputed. The exception: a frame the
core computed otherwise than asked after running out of GPU memory (smaller tiles for the
networks, which changes their output, or the refinement on the CPU; the core says so in the
frame's header, :data:`DEGRADED_ATTRIBUTE`) is shown, but it is not the key's result: the next
Compute computes it again and it is never copied to another folder.
"""

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
import uuid

from nuke_plugin.bundles import json_loads
from nuke_plugin.exr import content_sha256, string_attribute

try:
    import fcntl
except ImportError:  # Windows: byte-range locks (msvcrt) instead of flock
    fcntl = None
try:
    import msvcrt
except ImportError:  # POSIX
    msvcrt = None

#: Bumped when the pipeline's pixels or the key's make-up change (2: alternating rounds after the
#: networks; 3: overscan matted, the trimap used written next to the result; 4: the core's
#: fingerprint in the key; 5: the device knob left to the fingerprint, which holds it as resolved).
#: Changes to the core itself change the fingerprint, not this number.
KEY_VERSION = 5
RESULT_PATTERN = "lbsmatte.####.exr"
TRIMAP_PATTERN = "lbsmatte_trimap.####.exr"
RECORD_NAME = "lbsmatte.json"
#: The most frames one Compute or farm job takes (``core.io.MAX_FRAMES``, the core's own bound;
#: ``tests/test_contracts.py`` holds them equal).
MAX_FRAMES = 100000
#: The largest record read: one far bigger is not one LBSMatte wrote (a frame's entry is ~90 bytes).
MAX_RECORD = 64000000
BAKE_FOLDER = ".bake"
#: The EXR header attribute of a result frame computed otherwise than asked (``core.cli``'s
#: ``DEGRADED_ATTRIBUTE``; this module cannot import core, tests/test_contracts.py holds them equal).
DEGRADED_ATTRIBUTE = "lbsmatte/degraded"
CACHE_ENV = "LBSMATTE_CACHE"
#: Length of the hex key used as folder name (64 bits of SHA-256: collisions are not a concern).
KEY_LENGTH = 16


class Settings(object):
    """The knob values that change the result's pixels.

    Attributes
    ----------
    weights:
        The ``weights`` knob: a bundle name or a bundle folder.
    bundle_sha256:
        SHA-256 of the bundle's ``manifest.json`` (``None`` when the bundle was not found here;
        the name is hashed instead and the subprocess reports the missing bundle).
    device:
        ``auto``, ``cpu`` or ``cuda``. In the key through the fingerprint, as resolved (``auto`` and
        ``cuda`` on a GPU machine are one result: CUDA in half precision); by its text only while
        there is no fingerprint.
    colour:
        How to read the baked plate: ``linear``, ``srgb`` or an OCIO colourspace name.
    trimap_channel:
        ``auto``, ``alpha``, ``red`` or ``luminance``: how the trimap input's ``rgba`` is read.
    trimap_from:
        A channel of the trimap input in any layer (``mask.a``, ``trimap.red``) that the bake copies
        into the trimap's alpha, which the core reads then (*trimap channel* takes no part); ``""``:
        none picked. In the key only when picked, so that the keys of results made without it stay.
    premultiply:
        ``True``: RGBA is FG·alpha (Nuke's convention); ``False``: FG with alpha.
    rounds:
        Refinement rounds after the networks (``--rounds``; 0: the networks alone; -1: the number
        the bundle records, chosen with its networks, which the bundle's hash in the key covers).
    trimap_input:
        ``trimap`` (the trimap input as it is) or ``rough matte`` (made into a trimap, ``--edge``).
    edge:
        With a rough matte: the unknown band, pixels each side of its 0.5 edge (``--edge``).
    fingerprint:
        The ``fingerprint`` of ``lbsmatte fingerprint`` for these weights, device and colour
        (filled at Compute; ``""`` until then).
    """

    FIELDS = ("weights", "bundle_sha256", "device", "colour", "trimap_channel", "premultiply", "rounds",
              "trimap_input", "edge", "fingerprint", "trimap_from")

    def __init__(self, weights="default", bundle_sha256=None, device="auto", colour="linear",
                 trimap_channel="auto", premultiply=True, rounds=-1, trimap_input="trimap", edge=8, fingerprint="",
                 trimap_from=""):
        self.weights = weights
        self.bundle_sha256 = bundle_sha256
        self.device = device
        self.colour = colour
        self.trimap_channel = trimap_channel
        self.premultiply = bool(premultiply)
        self.rounds = int(rounds)
        self.trimap_input = trimap_input
        self.edge = int(edge)
        self.fingerprint = fingerprint
        self.trimap_from = trimap_from or ""

    @property
    def core_trimap_channel(self):
        """``--trimap-channel`` for the tool: ``alpha`` when *trimap from* picked a channel (the bake
        copied it there), else *trimap channel*."""
        return "alpha" if self.trimap_from else self.trimap_channel

    @property
    def edge_px(self):
        """``--edge`` for the tool: the edge width with a rough matte, None with a trimap."""
        return self.edge if self.trimap_input == "rough matte" else None

    def as_dict(self):
        return dict((name, getattr(self, name)) for name in self.FIELDS)

    def __eq__(self, other):
        return isinstance(other, Settings) and self.as_dict() == other.as_dict()

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return "Settings(%s)" % ", ".join("%s=%r" % item for item in sorted(self.as_dict().items()))

    def key(self):
        """Hex SHA-256 of what changes pixels (the bundle by content when known, else by name)."""
        identity = {
            "version": KEY_VERSION,
            "weights": ("sha256:" + self.bundle_sha256) if self.bundle_sha256 else ("name:" + str(self.weights)),
            # The fingerprint holds the device and precision as resolved: ``auto`` on a GPU machine
            # and ``cuda`` are one result, as are ``auto`` and ``cpu`` on a CPU machine (and
            # ``cuda`` there, which falls back to the CPU); the knob's text would split them.
            "device": None if self.fingerprint else self.device,
            "colour": self.colour,
            "trimap_channel": self.core_trimap_channel,
            "premultiply": self.premultiply,
            "rounds": self.rounds,
            "edge": self.edge_px,  # the width of an edge that is not used changes nothing
            "fingerprint": self.fingerprint,
        }
        if self.trimap_from:
            identity["trimap_from"] = self.trimap_from
        return _sha256_text(json.dumps(identity, sort_keys=True))


def _sha256_text(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def frame_key(settings_key, plate_sha256, trimap_sha256):
    """Key of one result frame: the settings and the content of its two baked inputs."""
    return _sha256_text("%s|%s|%s" % (settings_key, plate_sha256, trimap_sha256))


def folder_key(settings_key, frame_keys):
    """Key of a result folder: the settings and every frame's key (``{frame: key}``)."""
    parts = [settings_key] + ["%d:%s" % (frame, frame_keys[frame]) for frame in sorted(frame_keys)]
    return _sha256_text("\n".join(parts))[:KEY_LENGTH]


def hash_inputs(plate_pattern, trimap_pattern, frames):
    """``{frame: (plate hash, trimap hash)}`` of baked EXR files (``####`` patterns).

    The hash covers pixels and lasting metadata, not the date the file was written
    (:func:`nuke_plugin.exr.content_sha256`): baking the same inputs again gives the same key.
    """
    return dict(
        (frame, (content_sha256(frame_path(plate_pattern, frame)), content_sha256(frame_path(trimap_pattern, frame))))
        for frame in frames
    )


def frame_path(pattern, frame):
    """``pattern`` with its ``####`` (or ``%04d``) replaced by ``frame``, as Nuke pads it."""
    if "%04d" in pattern:
        return pattern.replace("%04d", "%04d" % frame)
    hashes = pattern.count("#")
    if hashes:
        start = pattern.index("#")
        return pattern[:start] + ("%0*d" % (hashes, frame)) + pattern[start + hashes:]
    return pattern


def result_pattern(folder):
    """The sequence the ``Read`` shows: ``<folder>/lbsmatte.####.exr`` (forward slashes)."""
    return (folder.rstrip("/\\") + "/" + RESULT_PATTERN).replace("\\", "/")


def trimap_pattern(folder):
    """The trimap sequence the tool writes next to the result: ``<folder>/lbsmatte_trimap.####.exr``."""
    return (folder.rstrip("/\\") + "/" + TRIMAP_PATTERN).replace("\\", "/")


def default_cache_dir(script_path="", environ=None):
    """Where results go when the *cache folder* knob is empty.

    ``$LBSMATTE_CACHE`` if set (a relative one read as :func:`absolute_cache_dir` reads it); else
    ``lbsmatte_cache`` next to the saved script (on the farm, shared storage next to the shot);
    else ``<tmp>/lbsmatte_cache`` for an unsaved script.
    """
    env = os.environ if environ is None else environ
    if env.get(CACHE_ENV, "").strip():
        return absolute_cache_dir(env[CACHE_ENV].strip(), script_path)
    if script_path:
        return os.path.join(os.path.dirname(os.path.abspath(script_path)), "lbsmatte_cache")
    return os.path.join(tempfile.gettempdir(), "lbsmatte_cache")


def absolute_cache_dir(folder, script_path=""):
    """``folder`` (the *cache folder* knob, or ``$LBSMATTE_CACHE``) as an absolute path, ``~``
    expanded: a relative one is read from the saved script's folder, as the default
    ``lbsmatte_cache`` is, so that every machine that opens the script (the artist's Nuke, the
    farm's ``batch.py`` and comp render, each started in a folder of its own) finds the same
    cache; the current folder only for an unsaved script. The ``Read`` is pointed at the result
    by this absolute path."""
    folder = os.path.expanduser(folder)
    if script_path and not os.path.isabs(folder):
        folder = os.path.join(os.path.dirname(os.path.abspath(script_path)), folder)
    return os.path.abspath(folder)


def missing_frames(folder, frames):
    """Frames of ``frames`` with no result file in ``folder`` (in order)."""
    pattern = result_pattern(folder)
    return [f for f in frames if not os.path.isfile(frame_path(pattern, f))]


def degraded_frames(folder, frames):
    """``{frame: how}`` for the result files of ``frames`` in ``folder`` that the core computed
    otherwise than asked (:data:`DEGRADED_ATTRIBUTE`); frames without a file are left out."""
    pattern = result_pattern(folder)
    found = {}
    for frame in frames:
        how = degraded(frame_path(pattern, frame))
        if how is not None:
            found[frame] = how
    return found


def degraded(path):
    """How the result file ``path`` was computed otherwise than asked, or ``None`` (as asked, or
    no such file)."""
    return string_attribute(path, DEGRADED_ATTRIBUTE)


def contiguous_runs(frames):
    """``[1, 2, 3, 7, 8]`` -> ``[(1, 3), (7, 8)]`` (each run is one ``--frames A-B``)."""
    runs = []
    for frame in sorted(set(frames)):
        if runs and frame == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], frame)
        else:
            runs.append((frame, frame))
    return runs


def read_record(folder):
    """The ``lbsmatte.json`` of a result folder (empty dict if missing or unreadable)."""
    try:
        with open(os.path.join(folder, RECORD_NAME), "rb") as handle:
            record = json_loads(handle.read(MAX_RECORD + 1).decode("utf-8"))
    except (OSError, IOError, ValueError, UnicodeDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def write_record(folder, key, settings, frame_keys, extra=None):
    """Write ``lbsmatte.json`` atomically: the key, the settings and every frame's key."""
    record = {
        "key": key,
        "key_version": KEY_VERSION,
        "settings": settings.as_dict(),
        "settings_key": settings.key(),
        "frames": dict((str(frame), frame_keys[frame]) for frame in sorted(frame_keys)),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if extra:
        record.update(extra)
    _write_atomic(os.path.join(folder, RECORD_NAME), json.dumps(record, indent=2, sort_keys=True) + "\n")


#: Seconds a replace that Windows refuses (PermissionError) is retried for (:func:`_replace`).
REPLACE_RETRY_S = 3.0


def _write_atomic(path, text):
    tmp = "%s.%s.tmp" % (path, uuid.uuid4().hex[:8])
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        _replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


def probe_writable(folder):
    """Raise the :class:`OSError` of writing a file in ``folder``, if any: a new file of a random
    name is made (``O_EXCL``) and removed. Never a predictable name: a shared cache folder may hold
    a link another user planted at one, which ``open(name, "w")`` would follow and truncate. The
    one probe of Compute, Troubleshoot and the farm script's ``--save-as``."""
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".lbsmatte-write-test-")
    os.close(fd)
    os.remove(probe)


def _replace(tmp, path, keep_mode=True):
    """``os.replace``, on Windows retried for a moment while refused with PermissionError: there
    a file another process has open cannot be replaced (a job on another machine reading this
    folder's ``lbsmatte.json`` to reuse its frames, a virus scanner), where POSIX replaces it.
    A ``path`` with the read-only attribute, which Windows refuses the same way, is not waited
    for: no retry outlasts it.
    A ``path`` that exists keeps its permissions and, where this user may set it, its group
    (:func:`_keep_mode`): a rerun does not lock the rest of a show's team out of a shared cache.
    ``keep_mode=False`` for a ``tmp`` hard-linked to another file, which shares its mode with it.
    (The twin of ``core.io.replace_file``: this module runs under Nuke's Python, which cannot
    import core; tests/test_contracts.py holds them to the same behaviour.)"""
    if keep_mode:
        _keep_mode(tmp, path)
    deadline = None
    while True:
        try:
            os.replace(tmp, path)
            return
        except PermissionError:
            if os.name != "nt" or _read_only(path):  # no retry outlasts a read-only attribute
                raise
            now = time.monotonic()
            deadline = now + REPLACE_RETRY_S if deadline is None else deadline
            if now >= deadline:
                raise
            time.sleep(0.1)


def _read_only(path):
    """Whether existing file ``path`` has Windows' read-only attribute (``os.access`` reads it
    there), which makes Windows refuse to replace it with the PermissionError a file held open
    gives (the twin of ``core.io._read_only``)."""
    return os.path.isfile(path) and not os.access(path, os.W_OK)


def _keep_mode(tmp, path):
    """Give ``tmp`` the permission bits (``rwx`` only) and, where the system lets this user give it,
    the group of an existing file ``path``, as writing over it in place would (the twin of
    ``core.io.keep_mode``; tests/test_contracts.py holds them to the same behaviour)."""
    try:
        old, new = os.stat(path), os.stat(tmp)
    except OSError:  # nothing there yet: the new file's mode (the umask's) stands
        return
    if not (stat.S_ISREG(old.st_mode) and stat.S_ISREG(new.st_mode)):
        return
    if hasattr(os, "chown") and new.st_gid != old.st_gid:
        try:
            os.chown(tmp, -1, old.st_gid)  # before chmod: a change of group may clear mode bits
        except OSError:
            pass
    os.chmod(tmp, stat.S_IMODE(old.st_mode) & 0o777)


def reuse_frames(cache_dir, folder, frame_keys, frames, elsewhere=()):
    """Copy into ``folder`` results of ``frames`` that a sibling folder holds with the same key.

    ``elsewhere``: result folders outside ``cache_dir`` to take frames from too (the one the node
    shows, computed before its cache folder was moved: the key does not hold the cache folder, so
    its frames are this key's), each only when it holds the record LBSMatte wrote for its key.
    Returns the frames copied. A hard link is used where the file system allows it; copies go
    through a temporary name so a half-copied frame is never visible.
    """
    wanted = dict((f, frame_keys[f]) for f in frames if f in frame_keys)
    if not wanted:
        return []
    own = os.path.basename(os.path.normpath(folder))
    sources = []
    if os.path.isdir(cache_dir):
        for name in sorted(os.listdir(cache_dir)):
            sibling = os.path.join(cache_dir, name)
            if name != own and not name.startswith(".") and os.path.isdir(sibling):
                sources.append(sibling)
    for other in elsewhere:
        if not other or not os.path.isdir(other) or _same_path(other, folder) or \
                any(_same_path(other, known) for known in sources):
            continue
        if read_record(other).get("key") == os.path.basename(os.path.normpath(other)):
            sources.append(other)
    by_key = {}
    for sibling in sources:
        frames = read_record(sibling).get("frames")
        if not isinstance(frames, dict):  # not a record LBSMatte wrote: nothing to reuse from it
            continue
        for text, key in frames.items():
            if not isinstance(key, str):
                continue
            try:
                by_key.setdefault(key, []).append((sibling, int(text)))
            except ValueError:
                continue
    reused = []
    for frame in sorted(wanted):
        # The first sibling holding the key's result: one computed otherwise than asked is not it,
        # but another sibling may hold the frame as asked.
        for source in by_key.get(wanted[frame], ()):
            if degraded(frame_path(result_pattern(source[0]), source[1])) is None and _link_frame(
                    source[0], source[1], folder, frame):
                reused.append(frame)
                break
    return reused


def _same_path(a, b):
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def copy_frames(folder, copies, failures=None):
    """Link (else copy) within ``folder`` the result of frame ``copies[f]`` as frame ``f``, for
    frames with the same key (a still plate and trimap held over the range): computed once.

    Returns the frames made; a frame whose source was not made (failed, cancelled) is left out.
    ``failures``: a dict given gets ``{frame: why}`` for each frame whose source was made but
    could not be linked or copied (a full disk, a quota, the folder removed meanwhile)."""
    made = []
    for frame in sorted(copies):
        why = []
        if _link_frame(folder, copies[frame], folder, frame, why):
            made.append(frame)
        elif why and failures is not None:
            failures[frame] = why[0]
    return made


def _link_frame(source_folder, source_frame, folder, frame, why=None):
    """Give ``folder`` the result of ``source_frame`` in ``source_folder`` (and the trimap beside
    it) as ``frame``; False when that result is missing or cannot be linked or copied (then the
    reason is appended to the list ``why``, if given)."""
    source = frame_path(result_pattern(source_folder), source_frame)
    if not os.path.isfile(source):
        return False
    # the trimap first, so a frame never shows without it
    trimap = frame_path(trimap_pattern(source_folder), source_frame)
    if os.path.isfile(trimap) and not _link_or_copy(trimap, frame_path(trimap_pattern(folder), frame), why):
        return False
    return _link_or_copy(source, frame_path(result_pattern(folder), frame), why)


def _link_or_copy(source, target, why=None):
    """Hard-link (else copy) ``source`` to ``target`` through a temporary name; False on failure,
    with ``cannot write TARGET: CAUSE`` appended to the list ``why``, if given."""
    tmp = "%s.%s.tmp" % (target, uuid.uuid4().hex[:8])
    try:
        try:
            os.link(source, tmp)
            linked = True
        except (OSError, AttributeError, NotImplementedError):
            shutil.copyfile(source, tmp)
            linked = False
        _replace(tmp, target, keep_mode=not linked)  # a link's mode is its source's: left alone
    except (OSError, IOError) as exc:
        _remove_quietly(tmp)
        if why is not None:
            why.append("cannot write %s: %s" % (target, getattr(exc, "strerror", None) or exc))
        return False
    return True


#: In a bake folder: a file its job holds locked (``flock``; on Windows a byte-range lock) while it
#: runs, so that a later job can tell the folder of a job killed with SIGKILL (lock free) from one
#: still running. Either lock is the system's: it goes with the process that held it.
OWNER_NAME = ".owner"
#: Windows: an owner file younger than this is never swept (see :func:`_own`).
OWNER_GRACE_S = 120.0
#: The owner files this process holds, by bake folder: {realpath: fd}.
_owned = {}


def _try_lock(fd):
    """Lock open file ``fd`` exclusively without waiting; True when this process now holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        elif msvcrt is not None:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            return False
    except (OSError, IOError):
        return False
    return True


def new_bake_folder(cache_dir, label="job"):
    """A fresh folder for one job's baked inputs: ``<cache>/.bake/<label>-<random>``.

    The folder is owned by this process (:data:`OWNER_NAME`, locked until :func:`remove_folder`
    removes it); first the bake folders of jobs that are no longer running are removed
    (:func:`remove_stale_bakes`).
    """
    remove_stale_bakes(cache_dir)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label) or "job"
    folder = os.path.join(cache_dir, BAKE_FOLDER, "%s-%s" % (safe, uuid.uuid4().hex[:10]))
    os.makedirs(folder)
    _own(folder)
    return folder


def _own(folder):
    """Lock the owner file of ``folder`` for this process.

    POSIX: it gets its name only once locked, so a job sweeping the bake folders never finds it
    unlocked while this job runs. Windows cannot rename a file that is open: there it is made
    under its name and locked at once, and a sweep leaves owner files younger than
    :data:`OWNER_GRACE_S` alone. Where the file system refuses locks, the folder has no owner
    file and is never swept."""
    if fcntl is None and msvcrt is None:
        return
    owner = os.path.join(folder, OWNER_NAME)
    tmp = owner + ".tmp" if fcntl is not None else owner
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    except (OSError, IOError):
        return
    try:
        if not _try_lock(fd):
            raise OSError("cannot lock %s" % tmp)
        if tmp != owner:
            os.rename(tmp, owner)
    except (OSError, IOError):
        os.close(fd)
        _remove_quietly(tmp)
        return
    _owned[os.path.realpath(folder)] = fd


#: The names :func:`new_bake_folder` gives (``<label>-<10 hex digits>``): the only folders under
#: ``.bake`` that :func:`remove_stale_bakes` may delete.
_BAKE_NAME = re.compile(r"^[\w-]+-[0-9a-f]{10}$")


def remove_stale_bakes(cache_dir):
    """Remove the bake folders under ``cache_dir`` whose job is no longer running: a job killed
    with SIGKILL (a farm's timeout, a pre-empted node, Nuke ended from the Task Manager) cannot
    remove its own, and each holds a whole range of baked plates and trimaps. A folder whose owner
    file is locked (its job runs, on this machine or another sharing the cache) or that has none
    is kept. Returns the folders removed."""
    removed = []
    base = os.path.join(cache_dir, BAKE_FOLDER)
    if (fcntl is None and msvcrt is None) or not os.path.isdir(base):
        return removed
    for name in sorted(os.listdir(base)):
        folder = os.path.join(base, name)
        if not _BAKE_NAME.match(name) or os.path.islink(folder):
            continue  # not a name new_bake_folder gives: the cache folder knob may name any folder
        owner = os.path.join(folder, OWNER_NAME)
        if fcntl is None:
            try:
                if time.time() - os.path.getmtime(owner) < OWNER_GRACE_S:
                    continue  # a job that may be between making its owner file and locking it
            except OSError:
                continue
        try:
            fd = os.open(owner, os.O_RDWR)
        except (OSError, IOError):
            continue  # no owner file: made by an older version, or not a bake folder
        if not _try_lock(fd):
            os.close(fd)
            continue  # its job is running
        if fcntl is None:
            os.close(fd)  # Windows deletes no file that is open: let go of it first
            shutil.rmtree(folder, ignore_errors=True)
        else:
            try:
                shutil.rmtree(folder, ignore_errors=True)
            finally:
                os.close(fd)
        removed.append(folder)
    return removed


def is_result_folder(cache_dir, folder):
    """Whether ``folder`` is a key folder directly inside ``cache_dir`` (safe to delete)."""
    parent = os.path.normcase(os.path.realpath(cache_dir))
    here = os.path.normcase(os.path.realpath(folder))
    name = os.path.basename(here)
    return (
        os.path.dirname(here) == parent
        and len(name) == KEY_LENGTH
        and all(c in "0123456789abcdef" for c in name)
        and os.path.isdir(here)
    )


def remove_folder(folder):
    """Delete a folder and everything in it; missing is fine. A bake folder's owner lock is let go
    first: Windows deletes no file that is open; so is the claim its job holds on its key
    (:func:`claim_key`)."""
    fd = _owned.pop(os.path.realpath(folder), None) if folder else None
    if fd is not None:
        os.close(fd)
    claim = _claims.pop(os.path.realpath(folder), None) if folder else None
    if claim is not None:
        os.close(claim)
    shutil.rmtree(folder, ignore_errors=True)


# -- the cache over a show's life: what it holds, what uses it, removing what nothing uses -----------
#: ``<cache>/.locks/<key>``: a job holds a shared ``flock`` on its key's file from before it looks
#: into the key folder until it ends (:func:`claim_key`); :func:`remove_result` removes a key folder
#: only while it holds the file exclusively, so never one a Compute or farm job is using, on any
#: machine whose file system passes ``flock`` locks (as for the bake folders).
LOCKS_FOLDER = ".locks"
#: A key folder in which anything was written more recently than this is never removed by
#: :func:`remove_result` (a Compute on a system without ``flock``, Windows, claims no key).
RECENT_S = 24 * 3600.0
#: How long :func:`claim_key` waits for a removal holding the key (a rename: milliseconds).
CLAIM_WAIT_S = 30.0
#: The claims this process holds, by the bake folder of their job: {realpath: fd}.
_claims = {}
#: A key folder being removed is first renamed to ``.removing-<key>-<10 hex>`` (then deleted; one a
#: removal killed meanwhile left is deleted by the next).
_REMOVING_NAME = re.compile(r"^\.removing-[0-9a-f]{%d}-[0-9a-f]{10}$" % KEY_LENGTH)


def _lock_path(cache_dir, key):
    return os.path.join(cache_dir, LOCKS_FOLDER, key)


def _open_held(path, exclusive, create=True):
    """Open ``path`` (made if missing, unless not ``create``) and lock it, shared or exclusive,
    without waiting: the fd, or ``None`` when another process holds a lock that excludes it. The
    file locked is the one at ``path`` (a removal may have unlinked the one opened). Raises OSError
    when it cannot be made (or, not ``create``, is missing: FileNotFoundError)."""
    fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o666)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except (OSError, IOError):
        os.close(fd)
        return None
    try:
        same = os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        same = False
    if not same:
        os.close(fd)
        return None
    return fd


def claim_key(cache_dir, key, bake_dir):
    """Hold a shared lock on ``key`` of ``cache_dir`` for the job whose bake folder is ``bake_dir``
    (let go when :func:`remove_folder` removes that folder): :func:`remove_result` leaves the key's
    folder alone meanwhile. Waits while a removal holds the key (:data:`CLAIM_WAIT_S`). Nothing is
    held where the system or the file system has no ``flock`` (Windows): there only
    :data:`RECENT_S` protects the folder. Raises OSError when the lock file cannot be made."""
    if fcntl is None:
        return
    os.makedirs(os.path.join(cache_dir, LOCKS_FOLDER), exist_ok=True)
    path = _lock_path(cache_dir, key)
    deadline = time.time() + CLAIM_WAIT_S
    while True:
        fd = _open_held(path, exclusive=False)
        if fd is not None:
            _claims[os.path.realpath(bake_dir)] = fd
            return
        if time.time() >= deadline:
            raise OSError("%s is held by another process (lbsmatte cache prune removing key %s?)" % (path, key))
        time.sleep(0.05)


class Entry(object):
    """One key folder of a cache folder, as :func:`scan` finds it.

    Attributes
    ----------
    key, folder:
        The folder's name and path.
    ours:
        It holds the record LBSMatte wrote for its key (else it is not removed).
    size:
        Bytes of its files; ``own``: of those not hard-linked from another folder (what removing it frees).
    frames:
        How many result frames it holds.
    written:
        When anything in it was last written (seconds since the epoch): its last Compute, which
        rewrites the record even when every frame is cached, or its last frame.
    script, node:
        The script and node of the record (the last Compute of this key).
    """

    def __init__(self, key, folder):
        self.key = key
        self.folder = folder
        self.ours = False
        self.size = self.own = self.frames = 0
        self.written = 0.0
        self.script = self.node = ""


def folder_usage(folder):
    """``(bytes, bytes not hard-linked elsewhere, result frames, newest mtime)`` of the files in
    ``folder`` (not below it; missing: zeros)."""
    size = own = frames = 0
    newest = 0.0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0, 0, 0, 0.0
    for name in names:
        try:
            info = os.lstat(os.path.join(folder, name))
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        size += info.st_size
        own += info.st_size if info.st_nlink == 1 else 0
        frames += 1 if name.startswith("lbsmatte.") and name.endswith(".exr") else 0
        newest = max(newest, info.st_mtime)
    return size, own, frames, newest


def size_text(size):
    """``size`` bytes for people: ``812 KB``, ``1.4 GB`` (powers of 1000, as file browsers say)."""
    for unit in ("bytes", "KB", "MB", "GB"):
        # rounded before the form is chosen: 99.97 MB is "100 MB", not "100.0 MB" or "99 MB"
        if unit in ("bytes", "KB") and round(size) < 1000:
            return "%d %s" % (round(size), unit)
        if unit in ("MB", "GB") and round(size, 1) < 100:
            return "%.1f %s" % (size, unit)
        if unit == "GB" or (unit == "MB" and round(size) < 1000):
            return "%d %s" % (round(size), unit)
        size /= 1000.0
    raise AssertionError("unreachable")


def scan(cache_dir):
    """The key folders of ``cache_dir`` (:class:`Entry` each, by key), not the bake folders."""
    entries = []
    for name in sorted(os.listdir(cache_dir)):
        folder = os.path.join(cache_dir, name)
        if not is_result_folder(cache_dir, folder) or os.path.islink(folder):
            continue
        entry = Entry(name, folder)
        entry.size, entry.own, entry.frames, entry.written = folder_usage(folder)
        record = read_record(folder)
        entry.ours = record.get("key") == name
        for field in ("script", "node"):
            if isinstance(record.get(field), str):
                setattr(entry, field, record[field])
        entries.append(entry)
    return entries


def in_use(cache_dir, key):
    """Whether a job holds ``key`` of ``cache_dir`` (:func:`claim_key`) now."""
    if fcntl is None:
        return False
    path = _lock_path(cache_dir, key)
    try:
        # Not made when missing: a job makes the file before it holds it (and a look writes nothing).
        fd = _open_held(path, exclusive=True, create=False)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    if fd is None:
        return True
    os.close(fd)
    return False


def remove_result(cache_dir, key, older_than=None, dry_run=False, recent_s=RECENT_S):
    """Remove the key folder ``key`` of ``cache_dir`` unless something may still use it.

    Kept (and the reason returned) when: it is not a key folder LBSMatte made there (no record of
    its key, a link), a job holds it (:func:`claim_key`: a Compute or farm job using it, on any
    machine sharing the cache where ``flock`` passes), anything in it was written in the last
    ``recent_s`` seconds (:data:`RECENT_S`; 0 for a user's own Clear cache), or after
    ``older_than`` (seconds since the epoch). The folder is
    renamed out of the key's name while the key is held exclusively, then deleted: a job claiming
    the key afterwards finds no folder and makes a new one. Returns ``""`` when removed (with
    ``dry_run``: when it would be; nothing is removed, and no lock file or folder is made).
    """
    folder = os.path.join(cache_dir, key)
    if not is_result_folder(cache_dir, folder) or os.path.islink(folder) or read_record(folder).get("key") != key:
        return "not a result folder LBSMatte made"
    if fcntl is None:
        return "this system has no flock, which removing safely needs (remove it from Linux or macOS)"
    lock = _lock_path(cache_dir, key)
    if dry_run and not os.path.exists(lock):
        # No lock file, so no job holds the key (a job makes the file before it holds it); a dry
        # run makes none (it writes nothing).
        return _kept_because(folder, older_than, recent_s)
    try:
        if not dry_run:
            os.makedirs(os.path.dirname(lock), exist_ok=True)
        fd = _open_held(lock, exclusive=True, create=not dry_run)
    except OSError as exc:
        return "cannot lock %s: %s" % (lock, getattr(exc, "strerror", None) or exc)
    if fd is None:
        return "in use by a Compute or farm job"
    try:
        # Looked at again under the lock: a Compute that ended since the caller looked wrote into it.
        why = _kept_because(folder, older_than, recent_s)
        if why or dry_run:
            return why
        doomed = os.path.join(cache_dir, ".removing-%s-%s" % (key, uuid.uuid4().hex[:10]))
        try:
            os.rename(folder, doomed)
        except OSError as exc:
            return "cannot rename %s: %s" % (folder, getattr(exc, "strerror", None) or exc)
        _remove_quietly(lock)  # while held: a job waiting for it opens a new one
    finally:
        os.close(fd)
    shutil.rmtree(doomed, ignore_errors=True)
    return ""


def _kept_because(folder, older_than, recent_s):
    """Why :func:`remove_result` keeps ``folder`` for its age (``""``: it does not)."""
    written = folder_usage(folder)[3]
    if recent_s and written > time.time() - recent_s:
        return "written less than %d hours ago" % (recent_s // 3600)
    if older_than is not None and written > older_than:
        return "used since"
    return ""


def remove_leftovers(cache_dir):
    """Delete what an interrupted :func:`remove_result` left (``.removing-*`` folders) and the lock
    files of keys with no folder that no job holds. Returns the paths removed."""
    removed = []
    for name in sorted(os.listdir(cache_dir)):
        path = os.path.join(cache_dir, name)
        if _REMOVING_NAME.match(name) and os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    locks = os.path.join(cache_dir, LOCKS_FOLDER)
    if fcntl is None or not os.path.isdir(locks):
        return removed
    for key in sorted(os.listdir(locks)):
        path = os.path.join(locks, key)
        if len(key) != KEY_LENGTH or os.path.exists(os.path.join(cache_dir, key)) or not os.path.isfile(path):
            continue
        try:
            fd = _open_held(path, exclusive=True)
        except OSError:
            continue
        if fd is not None:
            _remove_quietly(path)
            os.close(fd)
            removed.append(path)
    return removed


#: A result folder a saved script names: its ``result_key`` knob, or the key folder in its
#: ``result_file`` / ``trimap_file`` knobs (``.../<key>/lbsmatte.####.exr``).
_SCRIPT_KEY = re.compile(r"(?:\bresult_key\s+\"?|[/\\](?=[0-9a-f]{%d}[/\\]lbsmatte))([0-9a-f]{%d})\b"
                         % (KEY_LENGTH, KEY_LENGTH))
#: The largest script read (a comp's .nk is rarely over a few MB).
MAX_SCRIPT = 256 * 1024 * 1024


def script_keys(path):
    """The result keys the Nuke script ``path`` names (a set; empty when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_SCRIPT).decode("utf-8", "replace")
    except (OSError, IOError):
        return set()
    return set(_SCRIPT_KEY.findall(text))


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass
