"""Farm entry: precompute an LBSMatte node of a shot before the comp renders.

::

    nuke -t nuke_plugin/batch.py shot.nk --node LBSMatte1 [--node LBSMatte2 ...] [--frames 1001-1100]
                                 [--save-as comp.nk]

Opens the script (``nuke.scriptOpen``), finds the node, bakes, computes and reads back through
the same code path as the *Compute* button, without UI. ``--node`` named more than once (a stereo
shot's node per view) computes each node in turn, in the order named: a node that cannot compute
is an ``ERROR:`` line and the next still computes. **The artist's script is never
saved** (a farm machine may lack plugins of other nodes in it, and saving there would damage
them). With ``--save-as comp.nk`` a copy is written in which the nodes point at their results and
record what they were made from, for the comp render (``nuke -X Write1 comp.nk``); it is written
only when every node named has a result (jobs of one node each would each write a copy in which
only their own node shows one, the last job's copy replacing the others'); the copy is
not written if someone saved ``shot.nk`` while the job ran (its changes would be missing from
the copy: exit status 3 then). ``--save-as`` naming the script itself is refused. Without
``--save-as`` the results are in the cache, and the artist's next Compute finds them there.
``--no-save`` is accepted for old submissions (not saving is the default). A script saved in
proxy mode is computed at full resolution, as *Compute* computes (proxy mode is turned off for it
and back on before the copy is written).

Output for farm managers, flushed line by line::

    LBSMATTE PROGRESS <frame> <i>/<n>
    LBSMATTE RESULT <folder>/lbsmatte.####.exr
    ERROR: <message>

Exit status: 0 every frame written; 1 some frames failed or the copy could not be written; 2 bad
arguments, script or node, or a ``--save-as`` folder that is missing or not writable (checked
before any work); 3 computed but the script changed meanwhile and the copy was not written; 143
stopped by SIGTERM (a farm stopping the task) and 130 interrupted (Ctrl-C), as ``lbsmatte``: the
core process is stopped too, the frames written so far stay in the cache.
"""

import argparse
import os
import re
import signal
import sys
import traceback

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_SAVED = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, SIGTERM: lbsmatte's codes


def _make_importable():
    """Run as a script, Python puts ``nuke_plugin/`` first on ``sys.path``; we want its parent."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    root = os.path.dirname(here)
    if root not in sys.path:
        sys.path.insert(0, root)


#: One chunk of a frame range in fileseq's syntax: ``A``, ``A-B``, ``A-BxN`` (every Nth), ``A-ByN``
#: (all but every Nth), ``A-B:N`` (every Nth, then N-1th, ..., the frames not yet named).
_CHUNK = re.compile(r"^(-?\d+(?:\.\d+)?)(?:-(-?\d+(?:\.\d+)?)(?:([:xy])(-?\d+(?:\.\d+)?))?)?$")


def _chunk_frames(start, end, step):
    """Frames ``start`` to ``end`` (either way round) every ``step`` (> 0), as Decimals."""
    step = step if end >= start else -step
    count = int((end - start) / step) + 1
    return [start + i * step for i in range(count)]


def parse_frames(text):
    """Frames of a ``--frames`` string in the order given, as ``core.io.parse_frames`` reads them
    (fileseq's syntax, written here with the standard library: ``nuke -t`` runs without core):
    ``1001-1100``, ``5-1`` (5, 4, 3, 2, 1), ``1-10x2``, ``1,3,5``, ``1-3,7``; a frame named twice is
    listed once. ``tests/test_contracts.py`` holds the two equal on a list of cases.

    Raises ``ValueError`` with the core's message for a string it cannot read, one holding
    subframes (``1.5``, ``1-3x0.5``), no frames, or more than ``cache.MAX_FRAMES``.
    """
    from decimal import Decimal

    from nuke_plugin.cache import MAX_FRAMES

    cannot = ("cannot understand the frame range %r: expected e.g. 1001-1100, 1-10x2 or 1,3,5" % (text,))
    compact = re.sub(r"\s+", "", str(text))  # fileseq drops whitespace
    chunks = []
    for part in compact.split(","):
        if not part:
            continue
        match = _CHUNK.match(part)
        if not match:
            raise ValueError(cannot)
        start = Decimal(match.group(1))
        end = Decimal(match.group(2)) if match.group(2) is not None else start
        kind, step = match.group(3), Decimal(match.group(4) or 1)
        if step == 0 or (step < 0 and end > start) or (kind in ("y", ":") and step != int(step)):
            raise ValueError(cannot)
        chunks.append((start, end, kind, abs(step)))
    if sum(abs(end - start) / step + 1 for start, end, _, step in chunks) > 10 ** 7:  # fileseq's own bound
        raise ValueError(_too_many_frames(text, None))
    frames, seen = [], set()
    for start, end, kind, step in chunks:
        if kind == "y":
            skipped = set(_chunk_frames(start, end, step))
            named = [f for f in _chunk_frames(start, end, Decimal(1)) if f not in skipped]
        elif kind == ":":
            named = []
            for stagger in range(int(step), 0, -1):
                named.extend(_chunk_frames(start, end, Decimal(stagger)))
        else:
            named = _chunk_frames(start, end, step)
        for frame in named:
            if frame not in seen:
                seen.add(frame)
                frames.append(frame)
    if len(frames) > MAX_FRAMES:
        raise ValueError(_too_many_frames(text, len(frames)))
    subframes = [f for f in frames if f != int(f)]
    if subframes:
        shown = ", ".join(format(f.normalize(), "f") for f in subframes[:3]) + (", ..." if len(subframes) > 3 else "")
        raise ValueError("the frame range %r holds subframes (%s): LBSMatte renders whole frames "
                         "(e.g. 1001-1100, 1-10x2 or 1,3,5)" % (text, shown))
    if not frames:
        raise ValueError("the frame range %r holds no frames" % (text,))
    return [int(f) for f in frames]


def _too_many_frames(text, count):
    from nuke_plugin.cache import MAX_FRAMES

    holds = "holds {:,} frames".format(count) if count is not None else "holds over 10 million frames"
    return ("the frame range %r %s, more than the {:,} one run renders; render it in chunks "
            "(--frames 1001-2000, then 2001-3000, ...)".format(MAX_FRAMES) % (text, holds))


def frame_range(frames, text):
    """``(first, last)`` of the frames of ``--frames`` (:func:`parse_frames`), which must hold
    every frame between them: an LBSMatte node's result is one range (computed first to last,
    whatever order they were given in). ``ValueError`` naming the gaps otherwise."""
    first, last = min(frames), max(frames)
    gaps = sorted(set(range(first, last + 1)) - set(frames))
    if gaps:
        shown = ", ".join(str(f) for f in gaps[:3]) + (", ..." if len(gaps) > 3 else "")
        raise ValueError("--frames %s leaves out frames %s of %d-%d: an LBSMatte node computes one range of "
                         "frames without gaps; give that (--frames %d-%d), or give each part its own node"
                         % (text, shown, first, last, first, last))
    return first, last


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise ValueError(message)


def parse_args(argv):
    parser = _ArgumentParser(
        prog="nuke -t nuke_plugin/batch.py",
        description="Precompute an LBSMatte node of a Nuke script (bake, compute, read back).",
    )
    parser.add_argument("script", help="the .nk script")
    parser.add_argument("--node", required=True, action="append",
                        help="name of the LBSMatte node (Group1.LBSMatte1 inside a group); named again, each "
                             "node in turn, one --save-as copy for all (a stereo shot's node per view)")
    parser.add_argument("--frames", help="A-B (or B-A, or e.g. 1-3,4-9: every frame between the first and the "
                                         "last); default: the node's frame range")
    parser.add_argument("--save-as", metavar="COPY.nk",
                        help="write a copy of the script whose node shows the result, for the comp render "
                             "(never the script itself, which is never saved)")
    parser.add_argument("--no-save", action="store_true", help="the default; kept for old submissions")
    return parser.parse_args(_join_frames(argv))


def _join_frames(argv):
    """``--frames -5--1`` -> ``--frames=-5--1``: argparse takes a value starting with "-" for an
    option, and a farm template fills in ``--frames <START>-<END>`` for shots at negative frames too.
    (``core.cli`` does the same for ``lbsmatte matte``; this runs under ``nuke -t``, without core.)"""
    argv = list(argv)
    for i, arg in enumerate(argv[:-1]):
        if arg == "--frames" and re.match(r"-\d", argv[i + 1]):
            argv[i:i + 2] = ["--frames=" + argv[i + 1]]
            break
    return argv


class _Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwinds as Ctrl-C does (the core process is stopped, the bake removed), and
    ends the job with :data:`EXIT_TERMINATED`, not the code of a failed frame."""


def _interrupt(signum, frame):
    raise _Terminated("signal %d" % signum)


def _stop_on_sigterm():
    """A farm manager stopping the task sends SIGTERM: stop the subprocess too (it would run on).

    Returns the previous handler (``None`` if it could not be set).
    """
    try:
        return signal.signal(signal.SIGTERM, _interrupt)
    except (ValueError, OSError, AttributeError):  # not the main thread, or no such signal here
        return None


def _stamp(path):
    try:
        info = os.stat(path)
        return (info.st_mtime, info.st_size)
    except OSError:
        return None


def main(argv=None):
    """Run the precompute; returns the exit status."""
    from nuke_plugin.progress import PrintReporter

    reporter = PrintReporter()
    try:
        args = parse_args(sys.argv[1:] if argv is None else list(argv))
        frames = frame_range(parse_frames(args.frames), args.frames) if args.frames else None
    except ValueError as exc:
        reporter.error(str(exc))
        return EXIT_USAGE

    import nuke

    from nuke_plugin import NODE_CLASS
    from nuke_plugin import node as lbs_node

    script = os.path.abspath(args.script)
    if not os.path.isfile(script):
        reporter.error("script %s does not exist" % script)
        return EXIT_USAGE
    copy = os.path.abspath(args.save_as) if args.save_as else None
    if copy is not None and _same_file(copy, script):
        reporter.error("--save-as %s is the script itself: the artist's script is never saved; name a copy"
                       % args.save_as)
        return EXIT_USAGE
    unwritable = _unwritable_copy(copy) if copy is not None else None
    if unwritable:  # before any work: the copy is written only after the whole shot is computed
        reporter.error("--save-as %s cannot be written: %s" % (args.save_as, unwritable))
        return EXIT_USAGE
    if not any(os.path.isfile(os.path.join(p, NODE_CLASS + ".gizmo")) for p in nuke.pluginPath()):
        # Without it the script does not open ("LBSMatte: Unknown command"), and without its
        # init.py no render would check the result: say what this machine's Nuke lacks.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        reporter.error("LBSMatte is not on this Nuke's plugin path (NUKE_PATH=%s): add the LBSMatte folder (%s) to "
                       "NUKE_PATH on this machine, as on the artists'; its init.py adds gizmos/%s.gizmo"
                       % (os.environ.get("NUKE_PATH", ""), root, NODE_CLASS))
        return EXIT_USAGE
    before = _stamp(script)
    try:
        nuke.scriptOpen(script)
    except RuntimeError as exc:
        reporter.error("cannot open %s: %s" % (script, exc))
        return EXIT_USAGE
    nodes = []
    for name in args.node:
        with nuke.root():
            node = nuke.toNode(name)
        if node is None or not lbs_node.is_lbsmatte(node):
            found = [n.fullName() for n in nuke.allNodes(NODE_CLASS, nuke.root(), recurseGroups=True)]
            reporter.error("%s has no %s node named %r (found: %s)"
                           % (script, NODE_CLASS, name, ", ".join(found) or "none"))
            return EXIT_USAGE
        if node not in nodes:  # a name given twice is computed once
            nodes.append(node)
    # A script saved in proxy mode opens in it (nuke -t): Compute bakes at full resolution only, and
    # refuses proxy mode. The artist's script is never saved; the copy keeps proxy mode as saved.
    proxy = nuke.root()["proxy"]
    in_proxy = bool(proxy.value())
    if in_proxy:
        reporter.info("proxy mode is on in %s: computing %s at full resolution"
                      % (script, ", ".join(n.fullName() for n in nodes)))
        proxy.setValue(False)
    previous = _stop_on_sigterm()
    status = EXIT_OK
    folders = []
    try:
        for node in nodes:
            code, folder = _compute_node(node, frames, reporter)
            status = max(status, code)
            if folder:
                folders.append(folder)
    except _Terminated:  # a farm's render manager stopping the task: told apart from a failed frame
        reporter.error("stopped by SIGTERM; the frames written so far are in the cache")
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        reporter.error("interrupted; the frames written so far are in the cache")
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if in_proxy:
            proxy.setValue(True)
    shown = [node for node in nodes if lbs_node.shown_key(node)]
    if copy is not None and shown:
        results = ", ".join(folders)
        if len(shown) < len(nodes):
            reporter.error("%s not written: %s computed no result, and the copy would show none there. The "
                           "results of the others are in %s"
                           % (copy, ", ".join(n.fullName() for n in nodes if n not in shown), results))
            return status
        if _stamp(script) != before:
            reporter.error("%s was saved by someone else while this job ran: %s not written (it would lack "
                           "those changes). The results are in %s" % (script, copy, results))
            return status if status != EXIT_OK else EXIT_NOT_SAVED
        try:
            nuke.scriptSave(copy)
        except (RuntimeError, OSError) as exc:  # the folder went away or was locked meanwhile
            reporter.error("%s not written: %s. The results are in %s" % (copy, exc, results))
            return EXIT_FAILED
        reporter.info("SAVED %s" % copy)
    return status


def _compute_node(node, frames, reporter):
    """Compute ``node`` (``frames``: default its own range) as the *Compute* button does, saying
    what went wrong as ``ERROR:`` lines. Returns ``(exit status, the result's cache folder or "")``;
    a cancel (``KeyboardInterrupt``, SIGTERM) goes to the caller."""
    from nuke_plugin import compute
    from nuke_plugin import node as lbs_node
    from nuke_plugin.errors import NodeError

    try:
        result = compute.compute(node, frames, reporter)
    except NodeError as exc:
        reporter.error(str(exc))
        return EXIT_FAILED, ""
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # an ERROR: line and exit 1 for the farm manager, not a bare traceback
        traceback.print_exc()
        reporter.error("%s: %s" % (type(exc).__name__, exc))
        return EXIT_FAILED, ""
    job = result.job
    if lbs_node.shown_key(node):
        reporter.info("RESULT %s" % job.out_pattern)
    if result.missing:
        reporter.error("%d of %d frames not computed: %s"
                       % (len(result.missing), len(job.frames), _ranges(result.missing)))
    return (EXIT_OK if result.ok else EXIT_FAILED), job.folder


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file: the same path resolved (Windows' case-folded), or,
    for a file that exists, the same file by its device and file number, which is how ``Shot.nk``
    is found to be ``shot.nk`` on macOS's file systems (case-insensitive; ``normcase`` leaves the
    case there) and a hard link its file. A share whose files have no numbers (0) is not asked."""
    if os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b)):
        return True
    try:
        first, second = os.stat(a), os.stat(b)
    except OSError:  # the copy does not exist yet: another file
        return False
    return first.st_ino != 0 and os.path.samestat(first, second)


def _unwritable_copy(copy):
    """Why the ``--save-as`` copy could not be written, or ``""``: its folder is missing or not
    writable (tried with a new file of a random name), or the copy is a folder."""
    folder = os.path.dirname(copy)
    if not os.path.isdir(folder):
        return "its folder %s does not exist" % folder
    if os.path.isdir(copy):
        return "it is a folder"
    from nuke_plugin.cache import probe_writable

    try:
        probe_writable(folder)
    except OSError as exc:
        return "its folder %s is not writable (%s)" % (folder, exc)
    return ""


def _ranges(frames):
    from nuke_plugin.cache import contiguous_runs

    return ", ".join(("%d" % a) if a == b else ("%d-%d" % (a, b)) for a, b in contiguous_runs(frames))


if __name__ == "__main__":
    _make_importable()
    sys.exit(main())
