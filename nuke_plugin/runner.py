"""Run ``core.cli matte`` in its own Python process and follow its progress.

The command (``core/cli.py`` keeps these spellings)::

    <python> -m core.cli matte --plate P --trimap T --out <folder>/lbsmatte.####.exr
        --frames A-B[,C-D,...] --weights NAME --device D --colour C --trimap-channel CH [--rounds N] [--unpremultiply]
        [--edge PX] [--write-trimap TRIMAP_OUT]

On stdout the tool prints ``LBSMATTE PROGRESS <frame> <i>/<n>`` after each frame and
``ERROR: ...`` for each failure; it exits 0 only when every frame was written. Cancelling
terminates the process; frames already written stay, and since results are written atomically
none is ever half-written.
"""

import collections
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time

from nuke_plugin import interpreter

#: Core processes running now (so that closing the script or quitting Nuke can stop them).
_live = set()  # type: set
_live_lock = threading.Lock()

PROGRESS_RE = re.compile(r"^LBSMATTE PROGRESS (-?\d+) (\d+)/(\d+)\s*$")
#: The tool's line per file a frame wrote (``LBSMATTE WROTE <frame> <path>``): for a publish step,
#: not for a failed run's last words (:meth:`RunResult.describe`).
WROTE_PREFIX = "LBSMATTE WROTE "
ERROR_PREFIX = "ERROR:"
WARNING_PREFIX = "WARNING:"


class RunResult(object):
    """What a run of the subprocess came to.

    Attributes
    ----------
    returncode:
        The exit status (``None`` if the process could not be started).
    cancelled:
        The user cancelled; the process was terminated.
    errors:
        The ``ERROR:`` lines, prefix removed.
    warnings:
        The ``WARNING:`` lines, prefix removed (a result was made, but something is worth knowing:
        a trimap that looks like a soft matte, no known foreground, a device fallback).
    frames_done:
        Frames reported by ``LBSMATTE PROGRESS`` lines.
    tail:
        The last lines of output (for a message when the process died without an ``ERROR:``).
    """

    def __init__(self):
        self.returncode = None
        self.cancelled = False
        self.errors = []
        self.warnings = []
        self.frames_done = []
        self.tail = collections.deque(maxlen=30)

    @property
    def ok(self):
        return self.returncode == 0 and not self.cancelled and not self.errors

    def describe(self):
        """One paragraph for a message box or a log."""
        if self.cancelled:
            return "cancelled"
        if self.errors:
            return "\n".join(self.errors)
        if self.returncode is None:
            return "the LBSMatte process could not be started"
        if self.returncode != 0:
            # Its last words, less the progress and WROTE lines, which were reported as they came (batch.py
            # printed them again as 'ERROR: LBSMATTE PROGRESS ...' lines).
            said = [line for line in self.tail
                    if parse_line(line)[0] != "progress" and not line.strip().startswith(WROTE_PREFIX)]
            tail = "\n".join(said[-10:])
            return "the LBSMatte process %s%s" % (ended(self.returncode), (":\n" + tail) if tail else " (no output)")
        return "ok"


def ended(returncode):
    """How a process that returned ``returncode`` ended, in words: its exit status, or the signal
    that killed it (a negative ``returncode``, POSIX). A core process killed with SIGKILL was said
    to have 'exited with status -9', where the likeliest cause on a render node is memory: the
    kernel's out-of-memory killer, or the job's memory limit (a cgroup), sends SIGKILL."""
    if returncode is None or returncode >= 0:
        return "exited with status %s" % returncode
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "a signal"
    words = "was killed by %s (signal %d)" % (name, -returncode)
    if -returncode == getattr(signal, "SIGKILL", None):
        words += (", which is what the system's out-of-memory killer and a job's memory limit send: where no one "
                  "stopped it, the job needs more memory (the README's 'Threads and memory on a render node')")
    return words


#: The longest ``--frames`` value of one command (:func:`frame_lists`): Windows takes a command line of
#: 32767 characters at most, Linux an argument of 128 kB; the rest of the command is a few paths.
MAX_FRAMES_ARGUMENT = 8000


def frame_lists(runs, limit=None):
    """``--frames`` values for runs of frames ``[(first, last), ...]``: as few as fit ``limit``
    characters each (``1001-1003,1007,1010-1012``), in order.

    Each value is one core process, which pays its start (Python, torch, the networks' load: about
    as long as several small frames, longer on a GPU) once: frames scattered over a long shot (those
    a paint fix changed, those a failed or busy run left) are one process, not one each."""
    limit = MAX_FRAMES_ARGUMENT if limit is None else limit
    lists, current = [], ""
    for first, last in runs:
        part = ("%d" % first) if first == last else ("%d-%d" % (first, last))
        if current and len(current) + 1 + len(part) > limit:
            lists.append(current)
            current = ""
        current = part if not current else current + "," + part
    if current:
        lists.append(current)
    return lists


def matte_command(python, plate, trimap, out, first, last, weights, device="auto", colour="linear",
                  trimap_channel="auto", premultiply=True, rounds=-1, edge=None, write_trimap=None, frames=None):
    """The ``core.cli matte`` command line as a list (no shell involved). ``rounds`` < 0: no
    ``--rounds``, so the tool uses the number the bundle records. ``frames``: the ``--frames``
    value (one of :func:`frame_lists`) in place of ``first``-``last``."""
    command = [
        python, "-m", "core.cli", "matte",
        "--plate", plate,
        "--trimap", trimap,
        "--out", out,
        # One argument with "=": argparse reads a value starting with "-" ("-5--1") as an option.
        "--frames=%s" % (frames if frames is not None else "%d-%d" % (first, last)),
        "--weights", weights,
        "--device", device,
        "--colour", colour,
        "--trimap-channel", trimap_channel,
    ]
    if int(rounds) >= 0:
        command += ["--rounds", str(int(rounds))]
    if not premultiply:
        command.append("--unpremultiply")
    if edge is not None:
        command += ["--edge", str(int(edge))]
    if write_trimap:
        command += ["--write-trimap", write_trimap]
    return command


def fingerprint_command(python, weights, device="auto", colour="linear"):
    """The ``core.cli fingerprint`` command line (see :func:`fingerprint`)."""
    return [python, "-m", "core.cli", "fingerprint", "--weights", weights, "--device", device, "--colour", colour]


def fingerprint(command, env=None, timeout=120):
    """Run ``core.cli fingerprint`` and return its record (a dict with ``fingerprint``).

    Raises
    ------
    RuntimeError
        With the tool's ``ERROR:`` line (or its output) when it fails or prints no record.
    """
    kwargs = interpreter.no_window()
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env=env, timeout=timeout, **kwargs)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError("cannot run %s: %s" % (" ".join(command[:4]), exc)) from exc
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    errors = [parsed[1] for parsed in map(parse_line, lines) if parsed[0] == "error"]
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                break
            if done.returncode == 0 and isinstance(record, dict) and record.get("fingerprint"):
                return record
            break
    raise RuntimeError("; ".join(errors) or "the core's fingerprint failed (exit status %s): %s"
                       % (done.returncode, " ".join(lines[-5:]) or "no output"))


def parse_line(line):
    """Classify one line of the tool's output.

    Returns
    -------
    tuple
        ``("progress", frame, i, n)``, ``("error", message)``, ``("warning", message)`` or ``("text", line)``.
    """
    text = line.rstrip("\r\n")
    match = PROGRESS_RE.match(text.strip())
    if match:
        return ("progress", int(match.group(1)), int(match.group(2)), int(match.group(3)))
    stripped = text.strip()
    if stripped.startswith(ERROR_PREFIX):
        return ("error", stripped[len(ERROR_PREFIX):].strip())
    if stripped.startswith(WARNING_PREFIX):
        return ("warning", stripped[len(WARNING_PREFIX):].strip())
    return ("text", text)


def _pump(stream, lines):
    try:
        for raw in iter(stream.readline, b""):
            lines.put(raw.decode("utf-8", "replace"))
    finally:
        lines.put(None)
        stream.close()


def _terminate(process, grace=5.0):
    """Stop ``process``: SIGTERM (the core removes the frame it was writing), then SIGKILL after
    ``grace`` seconds.

    Windows has no SIGTERM, and ``terminate()`` there is TerminateProcess, which ends that one
    process only: where the interpreter is a launcher (a ``.bat``/``.cmd`` wrapper, a studio's
    or conda's launcher), the ``python.exe`` it started would go on computing and writing frames
    after Cancel, and keep the frames' locks. So on Windows the whole tree is ended
    (``taskkill /T /F``; ``terminate()`` where taskkill cannot run). Either way it is a hard
    stop: the temporary file of the frame being written stays, and the next run on that folder
    removes it.
    """
    if process.poll() is not None:
        return
    if not (os.name == "nt" and _kill_tree(process.pid)):
        try:
            process.terminate()
        except OSError:
            pass
    deadline = time.time() + grace
    while process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if process.poll() is None:
        try:
            process.kill()
        except OSError:
            pass
        process.wait()


def _kill_tree(pid):
    """Windows: end process ``pid`` and every process it started; False if taskkill failed."""
    try:
        done = subprocess.run(["taskkill", "/F", "/T", "/PID", str(int(pid))], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                              **interpreter.no_window())
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def run(command, env=None, on_line=None, is_cancelled=None, poll=0.1, cwd=None):
    """Run ``command``, calling ``on_line(parsed)`` for each output line, until it ends.

    Parameters
    ----------
    command:
        Argument list (see :func:`matte_command`).
    env:
        Environment (see :func:`nuke_plugin.interpreter.child_environment`).
    on_line:
        Called with each :func:`parse_line` result, in the calling thread.
    is_cancelled:
        Polled every ``poll`` seconds; when it returns true the process is terminated.

    Returns
    -------
    RunResult
    """
    result = RunResult()
    kwargs = interpreter.no_window()  # no console flashing up over Nuke on Windows
    # Same process group as Nuke on purpose: a farm manager that kills the job's group kills
    # the computation too.
    try:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, **kwargs
        )
    except OSError as exc:
        result.errors.append("cannot start %s: %s" % (command[0], exc))
        return result
    with _live_lock:
        _live.add(process)
    try:
        return _follow(process, result, on_line, is_cancelled, poll)
    finally:
        with _live_lock:
            _live.discard(process)


def terminate_all(grace=2.0):
    """Stop every core process still running (script closed, Nuke quitting); returns how many."""
    with _live_lock:
        processes = list(_live)
    for process in processes:
        _terminate(process, grace)
    return len([p for p in processes if p.returncode is not None])


def _follow(process, result, on_line, is_cancelled, poll):
    lines = queue.Queue()
    reader = threading.Thread(target=_pump, args=(process.stdout, lines))
    reader.daemon = True
    reader.start()
    finished = False
    try:
        while not finished:
            if is_cancelled is not None and is_cancelled():
                result.cancelled = True
                _terminate(process)
                break
            try:
                line = lines.get(timeout=poll)
            except queue.Empty:
                continue
            if line is None:
                finished = True
                continue
            parsed = parse_line(line)
            result.tail.append(line.rstrip("\r\n"))
            if parsed[0] == "progress":
                result.frames_done.append(parsed[1])
            elif parsed[0] == "error":
                result.errors.append(parsed[1])
            elif parsed[0] == "warning":
                result.warnings.append(parsed[1])
            if on_line is not None:
                on_line(parsed)
    except BaseException:
        _terminate(process)
        raise
    process.wait()
    reader.join(2.0)
    result.returncode = process.returncode
    return result
