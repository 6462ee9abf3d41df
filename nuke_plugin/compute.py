"""*Compute* and *Clear cache*: bake, key, run ``core`` in its own process, read back.

A job has three steps so that the GUI can keep the slow one off Nuke's main thread:

:func:`prepare` (main thread)
    read the knobs, bake plate and trimap with temporary ``Write`` nodes, hash the baked files
    into the cache key (:mod:`nuke_plugin.cache`), find which frames the keyed folder lacks;
:func:`run` (any thread; no Nuke calls)
    run ``<python> -m core.cli matte ...`` once for the missing frames (``--frames`` listing their
    runs), forwarding progress and honouring cancel;
:func:`finish` (main thread)
    point the internal ``Read`` at the keyed folder once frames exist, set the status line,
    remove the baked inputs.

:func:`compute` does the three in a row (the farm, tests); :func:`compute_in_background` is
what the *Compute* button uses in the GUI.
"""

import errno
import os
import re
import shutil
import threading
import time

import nuke

from nuke_plugin import NODE_CLASS, cache, exr, interpreter, runner
from nuke_plugin import node as lbs_node
from nuke_plugin.errors import NodeError
from nuke_plugin.progress import Reporter, TaskReporter

#: The nodes computing in the background, as the Node objects Compute was pressed on: found by
#: ``==`` (Node.__eq__ follows the node), not by name, since the artist may rename a node while it
#: computes and another node may take the old name. Guarded by ``_running_lock``.
_running = []
#: ``[(node, job)]``: the jobs of those nodes whose core processes run, each writing into its key
#: folder (*Clear cache* on another node showing that folder must leave it). Guarded by ``_running_lock``.
_running_jobs = []
_running_lock = threading.Lock()


def _computing(node):
    """Whether ``node`` computes in the background (``_running_lock`` held)."""
    for other in _running:
        try:
            if other == node:
                return True
        except ValueError:  # the Python object of a node deleted since
            continue
    return False


def _forget_running(node):
    """``node`` (the very object :func:`compute_in_background` added) no longer computes."""
    with _running_lock:
        _running[:] = [other for other in _running if other is not node]
        _running_jobs[:] = [(other, job) for other, job in _running_jobs if other is not node]


#: How the status line of a node that computes begins (:func:`prepare`, :func:`interrupted`).
COMPUTING = "computing "


def interrupted(node):
    """A node whose status line says it is computing while no Compute of this session runs on it
    (the script was saved, or the node copied, while it computed, and is opened or pasted now):
    say that the Compute did not finish here, not 'computing' for good. Returns whether it did."""
    status = node["status"].value()
    if not status.startswith(COMPUTING):
        return False
    with _running_lock:
        if _computing(node):
            return False
    lbs_node.set_status(node, "not finished here: saved or copied while %s; press Compute (the frames it made "
                              "are cached)" % status.rstrip("."))
    return True


class Job(object):
    """One Compute: where things are and what is left to do (built by :func:`prepare`)."""

    def __init__(self):
        self.node_name = ""
        self.first = self.last = 0
        self.frames = []
        self.settings = None
        self.bundle = None
        self.cache_dir = ""
        self.bake_dir = ""
        self.plate = self.trimap = ""
        self.key = ""
        self.folder = ""
        self.cached = []
        self.reused = []
        self.redo = []  # frames in the folder that the core computed otherwise than asked
        self.missing = []
        self.copies = {}  # {frame: frame computed for it}: frames with the same key, computed once
        self.commands = []
        self.env = None
        self.input_hashes = {}
        self.proxy_hashes = None  # (proxy settings, {frame: hash}) in proxy mode (node.proxy_input_hashes)
        self.unbaked = {}  # {frame: why} for frames whose inputs Nuke could not render
        self.warnings = []  # what the artist should know of frames made anyway (outside the plate's or trimap's range)
        self.settings_hash = ""
        self.views = []  # the script's views (nuke.views()) when Compute started
        self.core = {}

    @property
    def out_pattern(self):
        return cache.result_pattern(self.folder)


class JobResult(object):
    """How a job ended.

    Attributes
    ----------
    ok:
        Every frame of the range exists in the keyed folder and nothing failed.
    cancelled:
        The user cancelled.
    errors:
        One message per problem (``ERROR:`` lines of the tool, or a failed start).
    warnings:
        The tool's ``WARNING:`` lines: the frames were made, but the artist should know.
    missing:
        Frames still without a result.
    computed:
        Frames computed by this job (not cached or reused).
    """

    def __init__(self, job):
        self.job = job
        self.cancelled = False
        # A frame whose inputs Nuke could not render has failed before anything ran; the others go on.
        self.errors = ["frame %d: %s" % (f, job.unbaked[f]) for f in sorted(job.unbaked)]
        self.warnings = list(job.warnings)
        self.missing = sorted(set(job.missing) | set(job.unbaked))
        self.computed = []

    @property
    def ok(self):
        return not self.cancelled and not self.errors and not self.missing


def check_python(python):
    """:class:`NodeError` unless ``python`` names an existing executable."""
    if os.path.dirname(python):
        if interpreter.executable_file(python) is None:
            why = interpreter.why_missing(python)
            raise NodeError("the LBSMatte Python %s %s (set LBSMATTE_PYTHON, or run Troubleshoot)"
                            % (python, "cannot run: " + why if why else "does not exist"))
    elif shutil.which(python) is None:
        raise NodeError("the LBSMatte Python %r is not on PATH (set LBSMATTE_PYTHON, or run Troubleshoot)" % python)


def _check_full_resolution(node):
    """:class:`NodeError` in proxy mode: Nuke renders the bake's Writes at the proxy scale, so the
    matte would be computed from a scaled-down plate, cached under that key and read back as the
    result at full resolution too (and on the farm)."""
    if nuke.root()["proxy"].value():
        raise NodeError("%s: proxy mode is on, and Nuke would bake plate and trimap at the proxy scale: "
                        "turn proxy mode off (Ctrl/Cmd+P) and press Compute; the result then shows in proxy "
                        "mode too" % node.name())


def _writable_dir(folder):
    try:
        # exist_ok: another artist's session (or a farm task) sharing the cache may make it first
        os.makedirs(folder, exist_ok=True)
        cache.probe_writable(folder)
    except (OSError, IOError) as exc:
        raise NodeError("the cache folder %s is not writable: %s" % (folder, exc)) from exc


def _cache_write_error(node, path, exc):
    """A :class:`NodeError` for a cache write that failed (a full disk, a quota, a folder made
    read-only or removed while Compute ran), naming the path and the cause: something the artist
    fixes on the disk, not a fault of the installation with a traceback."""
    if getattr(exc, "errno", None) in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        way = "make room there (or set the cache folder knob, or LBSMATTE_CACHE, to a folder with space)"
    else:
        way = "make the folder writable (or set the cache folder knob, or LBSMATTE_CACHE, to another folder)"
    return NodeError("%s: cannot write %s: %s; %s and press Compute again"
                     % (node.name(), path, getattr(exc, "strerror", None) or exc, way))


def prepare(node, frames=None, reporter=None):
    """Bake the inputs and work out the key and what is left to compute (main thread).

    Parameters
    ----------
    node:
        An LBSMatte node.
    frames:
        ``(first, last)``; default from the node's *frame range* knobs.
    reporter:
        A :class:`nuke_plugin.progress.Reporter`.

    Returns
    -------
    Job

    Raises
    ------
    NodeError
        For anything the user can fix; nothing has been written to the cache then except the
        (removed) baked inputs.
    """
    reporter = reporter or Reporter()
    job = Job()
    job.node_name = node.fullName()
    lbs_node.check_not_in_gizmo(node)
    _check_full_resolution(node)
    job.first, job.last = frames if frames is not None else lbs_node.frame_range(node)
    if job.last < job.first:
        raise NodeError("frame range %d-%d is empty" % (job.first, job.last))
    if job.last - job.first + 1 > cache.MAX_FRAMES:
        # a script's frame range knobs (another facility's) or batch.py --frames 1-100000000:
        # every frame is hashed, baked and planned before any renders (the core refuses them too)
        raise NodeError("%s: frame range %d-%d holds %d frames, more than the %d one Compute renders; compute "
                        "it in chunks (a custom frame range)" % (node.name(), job.first, job.last,
                                                                 job.last - job.first + 1, cache.MAX_FRAMES))
    # The knobs as they stand at the range's first frame, not wherever the timeline is, and the
    # same at every frame of it (an animated setting would be applied from one frame only).
    with lbs_node.at_frame(job.first):
        job.settings, job.bundle = lbs_node.read_settings(node)
    lbs_node.check_constant_settings(node, job.first, job.last)
    job.frames = list(range(job.first, job.last + 1))
    # What the result is made from, as Nuke sees it now (the stale check compares with it).
    job.input_hashes = lbs_node.input_hashes(node, job.frames)
    job.proxy_hashes = lbs_node.proxy_input_hashes(node, job.frames)  # for the check in proxy mode
    job.settings_hash = lbs_node.settings_hash(node, frame=job.first)
    job.views = list(nuke.views())
    python = interpreter.core_python()[0]
    check_python(python)
    job.cache_dir = lbs_node.cache_dir(node)
    lbs_node.check_no_frame_token(node, job.cache_dir)
    _writable_dir(job.cache_dir)
    weights = job.bundle.path if job.bundle is not None else job.settings.weights
    job.env = interpreter.child_environment()  # without Nuke's Python and libraries
    reporter.stage("asking the core for its fingerprint")
    try:
        job.core = runner.fingerprint(
            runner.fingerprint_command(python, weights, job.settings.device, job.settings.colour), env=job.env)
    except RuntimeError as exc:
        base = interpreter.missing_base(python)  # a shared venv made from a Python this machine lacks
        raise NodeError("%s: the LBSMatte core cannot run: %s%s" % (
            node.name(), exc, "; the virtual environment of %s was made from the Python in %s, which this machine "
            "lacks (run Troubleshoot)" % (python, base) if base else "")) from exc
    job.settings.fingerprint = job.core["fingerprint"]
    try:
        job.bake_dir = cache.new_bake_folder(job.cache_dir, node.name())
    except (OSError, IOError) as exc:
        raise _cache_write_error(node, os.path.join(job.cache_dir, cache.BAKE_FOLDER), exc) from exc
    try:
        reporter.stage("baking plate and trimap %d-%d" % (job.first, job.last))
        job.plate, job.trimap, job.unbaked = lbs_node.bake(
            node, job.bake_dir, job.first, job.last, job.settings.trimap_channel, job.settings.trimap_from)
        _check_formats(node, job)
        job.warnings.extend(lbs_node.outside_input_ranges(node, job.first, job.last))
        baked = [f for f in job.frames if f not in job.unbaked]
        settings_key = job.settings.key()
        hashes = cache.hash_inputs(job.plate, job.trimap, baked)
        frame_keys = dict((f, cache.frame_key(settings_key, hashes[f][0], hashes[f][1])) for f in baked)
        job.key = cache.folder_key(settings_key, frame_keys)
        job.folder = os.path.join(job.cache_dir, job.key)
        try:
            # Held until the bake folder goes: 'lbsmatte cache prune' leaves the key's folder alone.
            cache.claim_key(job.cache_dir, job.key, job.bake_dir)
            os.makedirs(job.folder, exist_ok=True)  # another session computing this key may make it first
            cache.write_record(job.folder, job.key, job.settings, frame_keys, extra={
                "core": job.core,
                "bundle_path": job.bundle.path if job.bundle is not None else None,
                "script": nuke.root()["name"].value(),
                "node": job.node_name,
            })
        except (OSError, IOError) as exc:  # the cache's disk full, over quota, made read-only meanwhile
            raise _cache_write_error(node, os.path.join(job.folder, cache.RECORD_NAME), exc) from exc
        # Sets, made once: a list looked up (or made into a set) for each frame was quadratic in the
        # range, seconds of a frozen Nuke for a long shot (26 s at 10 000 frames).
        absent = set(cache.missing_frames(job.folder, baked))
        # Computed otherwise than asked (out of GPU memory): shown until now, computed again now.
        job.redo = sorted(cache.degraded_frames(job.folder, [f for f in baked if f not in absent]))
        redo = set(job.redo)
        job.cached = [f for f in baked if f not in absent and f not in redo]
        # From the other keys of this cache folder, and from the folder the node shows: the cache
        # folder knob (or $LBSMATTE_CACHE) moved since is no change of the result, nor of its key.
        job.reused = cache.reuse_frames(job.cache_dir, job.folder, frame_keys, absent,
                                        elsewhere=[lbs_node.shown_folder(node)])
        job.missing = sorted(set(cache.missing_frames(job.folder, baked)) | set(job.redo))
        # Frames with one key (a still plate and trimap held over the range) are computed once:
        # the first of them; run() links the others to it.
        first_with = {}
        for frame in job.missing:
            first_with.setdefault(frame_keys[frame], frame)
        job.copies = dict((f, first_with[frame_keys[f]]) for f in job.missing if first_with[frame_keys[f]] != f)
    except BaseException:
        cache.remove_folder(job.bake_dir)
        raise
    if lbs_node.shown_key(node) != job.key:
        # What the Read shows belongs to other inputs or settings: never show it again.
        lbs_node.hide_result(node)
    if job.missing:
        lbs_node.set_status(node, COMPUTING + "%d frame(s) of %d-%d..." % (len(job.missing), job.first, job.last))
    # One core process for every missing frame (a list of runs), not one a run: each pays its start.
    runs = cache.contiguous_runs(f for f in job.missing if f not in job.copies)
    for frames in runner.frame_lists(runs):
        job.commands.append(runner.matte_command(
            python, job.plate, job.trimap, job.out_pattern, None, None, weights,
            device=job.settings.device, colour=job.settings.colour,
            trimap_channel=job.settings.core_trimap_channel, premultiply=job.settings.premultiply,
            rounds=job.settings.rounds, edge=job.settings.edge_px,
            write_trimap=cache.trimap_pattern(job.folder), frames=frames,
        ))
    return job


def _check_formats(node, job):
    """A frame whose trimap has another format than its plate fails here, naming the inputs (the
    core would fail it too, naming only the baked files); when no frame fits, the Compute fails."""
    baked = [f for f in job.frames if f not in job.unbaked]
    for frame in baked:
        plate = exr.display_window(cache.frame_path(job.plate, frame))
        trimap = exr.display_window(cache.frame_path(job.trimap, frame))
        if plate is None or trimap is None or plate == trimap:
            continue
        job.unbaked[frame] = (
            "the trimap (%s) is %s but the plate (%s) is %s: reformat the trimap to the plate's format"
            % (lbs_node.input_node(node, lbs_node.TRIMAP_INPUT).name(), _describe_window(trimap),
               lbs_node.input_node(node, lbs_node.PLATE_INPUT).name(), _describe_window(plate)))
    if baked and all(f in job.unbaked for f in baked):
        raise NodeError("%s: %s" % (node.name(), job.unbaked[baked[0]]))


def _describe_window(window):
    xmin, ymin, xmax, ymax = window
    size = "%dx%d" % (xmax - xmin + 1, ymax - ymin + 1)
    return size if (xmin, ymin) == (0, 0) else "%s at %d,%d" % (size, xmin, ymin)


def run(job, reporter=None):
    """Compute the missing frames of ``job`` in subprocesses (no Nuke calls: any thread).

    Progress is reported over the whole range, cached and reused frames first.
    """
    reporter = reporter or Reporter()
    result = JobResult(job)
    for message in result.errors:  # the frames Nuke could not render the inputs of
        reporter.error(message)
    for message in result.warnings:
        reporter.warning(message)
    total = len(job.frames)
    done = [0]
    missing = set(job.missing)
    for frame in job.frames:
        if frame not in missing:
            done[0] += 1
            reporter.frame_done(frame, done[0], total)
    if job.cached or job.reused:  # not the frames Nuke could not bake: failed, never computed
        reporter.info("CACHE %d of %d frame(s) already computed (key %s)"
                      % (len(job.cached) + len(job.reused), total, job.key))
    if job.commands:
        reporter.stage("computing %d frame(s)" % len(job.missing))

    busy = {}  # {frame: the tool's ERROR}: frames another run was writing; failed only if still missing at the end
    summaries = []  # the tool's "N of M frame(s) failed: ..." lines, said at the end (they may name only those)

    def on_line(parsed):
        if parsed[0] == "progress":  # after each frame, written or failed
            done[0] += 1
            reporter.frame_done(parsed[1], min(done[0], total), total)
        elif parsed[0] == "error" and _busy_frame(parsed[1]) is not None:
            busy[_busy_frame(parsed[1])] = parsed[1]
        elif parsed[0] == "error" and _FAILED_SUMMARY.match(parsed[1]):
            summaries.append(parsed[1])
        elif parsed[0] == "error":
            reporter.error(parsed[1])
        elif parsed[0] == "warning":  # the farm's log, as lbsmatte matte prints it (the GUI: the status line)
            reporter.warning(parsed[1])

    for command in job.commands:
        outcome = runner.run(command, env=job.env, on_line=on_line, is_cancelled=reporter.cancelled)
        if outcome.cancelled:
            result.cancelled = True
            break
        if not outcome.ok and not outcome.errors:
            # Died without an ERROR: line (crash, missing module): say what it printed.
            message = outcome.describe()
            reporter.error(message)
            result.errors.append(message)
        result.errors.extend(e for e in outcome.errors if _busy_frame(e) is None and not _FAILED_SUMMARY.match(e))
        result.warnings.extend(outcome.warnings)
    not_copied = {}
    for frame in cache.copy_frames(job.folder, job.copies, not_copied):
        done[0] += 1
        reporter.frame_done(frame, min(done[0], total), total)
    for frame in sorted(not_copied):  # a full disk: said with its file and cause, not "frames missing"
        message = "frame %d: %s (the result of frame %d, whose inputs it holds)" % (
            frame, not_copied[frame], job.copies[frame])
        reporter.error(message)
        result.errors.append(message)
    result.missing = cache.missing_frames(job.folder, job.frames)
    still_missing = set(result.missing)
    result.computed = [f for f in job.missing if f not in still_missing]
    # Another run writing a frame of this key's folder is another session computing the same key
    # (an artist's Compute, the farm's batch.py): its frame is this key's result. Two such runs
    # overtake each other frame by frame, each failing the frame the other holds; a frame that is
    # there now is no failure of this job's.
    made = sorted(f for f in busy if f not in still_missing)
    if made:
        reporter.info("%d frame(s) computed by another session at the same time: %s"
                      % (len(made), ", ".join("%d" % f for f in made)))
    failed_busy = [busy[f] for f in sorted(busy) if f in still_missing]
    for message in failed_busy:
        reporter.error(message)
    result.errors.extend(failed_busy)
    for line in summaries:
        listed = set(_FAILED_SUMMARY.match(line).group(1).split(", "))
        if listed - set("%d" % f for f in made):
            reporter.error(line)
            result.errors.append(line)
    return result


#: The core's words for a frame that another run holds the lock of (``core.io.lock_output``;
#: ``tests/test_nuke_compute.py`` holds them to its message) and its last line when frames failed.
_BUSY_RE = re.compile(r"^frame (-?\d+): .* is being written by another lbsmatte run ")
_FAILED_SUMMARY = re.compile(r"^\d+ of \d+ frame\(s\) failed: (.*)$")


def _busy_frame(message):
    """The frame of the tool's ERROR message that another run was writing it, else None."""
    match = _BUSY_RE.match(message)
    return int(match.group(1)) if match else None


def finish(node, job, result):
    """Point the Read at the keyed folder if it holds frames, set the status (main thread).

    Returns the status text.
    """
    cache.remove_folder(job.bake_dir)
    present = len(job.frames) - len(result.missing)
    if present:
        lbs_node.show_result(node, job.folder, job.first, job.last, job.key)
        bundle = (job.bundle.path, job.settings.bundle_sha256) if job.bundle is not None else None
        lbs_node.record_inputs(node, job.input_hashes, job.settings_hash, job.views, bundle, job.proxy_hashes)
    else:
        lbs_node.hide_result(node)
    when = time.strftime("%H:%M")
    if result.ok:
        reused = len(job.cached) + len(job.reused)
        text = "%d-%d ready at %s: %d computed, %d cached (key %s, %s on disk)" % (
            job.first, job.last, when, len(result.computed), reused, job.key,
            cache.size_text(cache.folder_usage(job.folder)[0]))
    elif result.cancelled:
        text = "cancelled at %s: %d of %d frames ready (key %s)" % (when, present, len(job.frames), job.key)
    else:
        first_error = result.errors[0].splitlines()[0] if result.errors else "frames missing"
        text = "FAILED at %s: %d of %d frames ready; %s" % (when, present, len(job.frames), first_error)
    if result.warnings:
        # On the node, where the artist looks (and in the GUI's message of a failed Compute): the
        # first, and how many more. A frame that failed must not hide another's warning (a Roto
        # missing on some frames, their matte all background) the artist would otherwise never see.
        more = len(result.warnings) - 1
        text += "; WARNING: %s%s" % (result.warnings[0], " (and %d more)" % more if more else "")
    lbs_node.set_status(node, text)
    return text


def compute(node, frames=None, reporter=None):
    """Bake, compute and read back in the calling thread (``nuke -t``, tests).

    Returns
    -------
    JobResult
    """
    reporter = reporter or Reporter()
    job = prepare(node, frames, reporter)
    result = None
    try:
        result = run(job, reporter)
    finally:
        if result is None:  # interrupted: still clean up and never show a stale frame
            result = JobResult(job)
            result.cancelled = True
            result.missing = cache.missing_frames(job.folder, job.frames)
        finish(node, job, result)
        reporter.close()
    return result


#: How many scripts have closed in this session: a background Compute started before a close
#: must not finish onto a node of the next script that happens to have the same name.
_scripts_closed = [0]


def script_closed():
    """Called when the script closes (:func:`nuke_plugin.callbacks.on_script_close`)."""
    _scripts_closed[0] += 1


def compute_in_background(node):
    """The GUI's *Compute*: bake now, compute in a thread with a ProgressTask, read back after.

    Returns the worker thread, or ``None`` when nothing had to be computed (all cached) or this
    node is already computing.
    """
    name = node.fullName()
    with _running_lock:
        if _computing(node):
            nuke.message("%s is already computing." % node.name())
            return None
        _running.append(node)
    try:
        job = prepare(node)
    except BaseException:
        _forget_running(node)
        raise
    if not job.commands:
        _forget_running(node)
        finish(node, job, JobResult(job))
        return None

    with _running_lock:
        _running_jobs.append((node, job))
    title = "LBSMatte %s" % node.name()  # no Nuke calls in the worker thread but ProgressTask's
    script = _scripts_closed[0]

    def work():
        result = None
        reporter = None
        try:
            reporter = TaskReporter(nuke, title)
            result = run(job, reporter)
        except Exception as exc:  # keep the thread from dying silently
            result = JobResult(job)
            result.errors.append("%s: %s" % (type(exc).__name__, exc))
        finally:
            if reporter is not None:
                reporter.close()
            nuke.executeInMainThread(_finish_in_main, args=(name, job, result, script, node))

    thread = threading.Thread(target=work, name="LBSMatte %s" % name)
    thread.daemon = True
    thread.start()
    return thread


def _finish_in_main(name, job, result, script=None, started=None):
    try:
        if script is not None and script != _scripts_closed[0]:  # its script has closed since
            cache.remove_folder(job.bake_dir)
            return
        # The node Compute was pressed on, found as itself (Node.__eq__), not by its name: the
        # artist may rename it while it computes, and another node may take the old name.
        node = _still_there(started) if started is not None else None
        if node is None and started is None:
            with nuke.root():
                node = nuke.toNode(name)
        if node is None:  # deleted while computing
            cache.remove_folder(job.bake_dir)
            return
        text = finish(node, job, result)
        if not result.ok and not result.cancelled:
            nuke.message("LBSMatte %s:\n%s\n\n%s" % (node.name(), text, "\n".join(result.errors[:10])))
    finally:
        _forget_running(started)


def _still_there(node):
    """``node`` if it is still in the script (not deleted), else ``None``."""
    for other in nuke.allNodes(NODE_CLASS, nuke.root(), recurseGroups=True):
        try:
            if other == node:
                return other
        except ValueError:  # a Python object of a deleted node
            return None
    return None


def clear_cache(node):
    """Delete the result folder this node points at and switch its Read off.

    Returns the folder removed, or ``""``.
    """
    with _running_lock:
        computing = _computing(node)
    if computing:
        # Its folder may be the one the running Compute writes into (a retry of failed frames).
        raise NodeError("%s is computing: cancel it (its progress bar) before clearing its cache" % node.name())
    folder = lbs_node.shown_folder(node)
    lbs_node.forget_result(node)
    removed = ""
    # Two nodes with the same inputs and settings (or a copy pasted from this one) show the same
    # folder: it is theirs too, and deleting it would leave them pointing at nothing.
    sharing = _nodes_showing(folder, besides=node) if folder else []
    if sharing:
        lbs_node.set_status(node, "result switched off; its cache is kept: %s shows it too" % ", ".join(sharing))
        return ""
    # Another node with the same inputs and settings computing now writes into this very folder
    # (the frames this node's Compute failed): deleting it would fail that Compute under its core.
    writing = _nodes_computing_into(folder) if folder else []
    if writing:
        lbs_node.set_status(node, "result switched off; its cache is kept: %s %s computing into it"
                            % (", ".join(writing), "is" if len(writing) == 1 else "are"))
        return ""
    # Only a folder LBSMatte made (a key name and the record of that key), never another folder
    # an edited script's hidden knob might name.
    if folder and cache.is_result_folder(os.path.dirname(folder), folder) \
            and cache.read_record(folder).get("key") == os.path.basename(os.path.normpath(folder)):
        # A folder of another cache folder than this node's is another script's (a node pasted from
        # a script elsewhere, or from another show's, shows that script's result): its nodes need it.
        try:
            own = lbs_node.cache_dir(node)
        except NodeError:
            own = ""
        if not own or not _same_folder(os.path.dirname(os.path.normpath(folder)), own):
            lbs_node.set_status(node, "result switched off; its cache is kept: it is in the cache folder %s, not "
                                      "this node's (%s)" % (os.path.dirname(os.path.normpath(folder)), own or "?"))
            return ""
        key = os.path.basename(os.path.normpath(folder))
        if cache.fcntl is None:  # Windows: no key locks to ask (nor taken by a Compute there)
            cache.remove_folder(folder)
        else:
            # A farm job or another artist's Nuke sharing this cache folder may be using it now (it
            # holds the key: cache.claim_key); this session's own Computes were asked above.
            why = cache.remove_result(own, key, recent_s=0)
            if why:
                lbs_node.set_status(node, "result switched off; its cache is kept: %s" % why)
                return ""
        removed = folder
    lbs_node.set_status(node, "cache cleared" if removed else "nothing cached")
    return removed


def _same_folder(a, b):
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _nodes_computing_into(folder):
    """Names of the nodes whose background Compute writes into ``folder`` (the name it had when
    Compute was pressed, for a node deleted since: its core process still runs)."""
    with _running_lock:
        jobs = list(_running_jobs)
    names = []
    for started, job in jobs:
        if job.folder and _same_folder(job.folder, folder):
            try:
                names.append(started.fullName())
            except ValueError:  # deleted while computing
                names.append(job.node_name)
    return names


def _nodes_showing(folder, besides):
    """Full names of the other LBSMatte nodes of the script whose result is in ``folder``."""
    names = []
    for other in nuke.allNodes(NODE_CLASS, nuke.root(), recurseGroups=True):
        if other is besides or other.fullName() == besides.fullName():
            continue
        theirs = lbs_node.shown_folder(other)
        if theirs and _same_folder(theirs, folder):
            names.append(other.fullName())
    return names
