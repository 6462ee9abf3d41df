"""Progress for people and for machines.

A job reports through a *reporter*: :class:`TaskReporter` drives a ``nuke.ProgressTask`` (a
progress bar with a Cancel button in the GUI); :class:`PrintReporter` prints the lines farm
managers parse (``print(..., flush=True)``, as deadline-cloud-for-nuke's adaptor expects)::

    LBSMATTE PROGRESS <frame> <i>/<n>     one per frame of the job, cached frames included
    LBSMATTE <word> ...                    information (CACHE, RESULT, BAKE)
    WARNING: <message>                     the tool's warnings: the frame was made, but a TD should know
    ERROR: <message>                       one per failure; the process then exits non-zero
"""

import sys


def print_line(text, stream=None):
    """Print ``text`` and a newline to ``stream`` (default ``sys.stdout``) and flush it; what the
    stream's encoding cannot hold is written as ``\\uXXXX``. On Windows, ``nuke -t``'s stdout
    into a pipe or a file (a farm's log) is written in the ANSI code page (cp1252) with errors
    raised: a line naming ``D:/projekty/Złoty/sh010`` ended the job in a UnicodeEncodeError, the
    running core process terminated with it (as ``lbsmatte`` itself escapes its own lines)."""
    stream = stream if stream is not None else sys.stdout
    try:
        print(text, file=stream)
    except UnicodeEncodeError:  # nothing was written: the line is encoded whole before it is
        encoding = getattr(stream, "encoding", None) or "ascii"
        print(str(text).encode(encoding, "backslashreplace").decode(encoding), file=stream)
    stream.flush()


class Reporter(object):
    """Interface of a progress reporter; the base class reports nothing and never cancels."""

    def stage(self, text):
        """A new step started (baking, computing...)."""

    def info(self, text):
        """Something worth a line in a log."""

    def frame_done(self, frame, done, total):
        """``frame`` is available; ``done`` of ``total`` frames of the job are."""

    def warning(self, text):
        """The tool's warning: a frame was made, but not quite as asked (a soft matte wired in as
        the trimap, the CPU for lack of CUDA, smaller tiles for lack of GPU memory)."""

    def error(self, text):
        """A failure, one line per problem."""

    def cancelled(self):
        """Whether the user asked to stop."""
        return False

    def close(self):
        """The job ended (the progress bar goes away)."""


class PrintReporter(Reporter):
    """Parseable lines on stdout for farm managers (Deadline, OpenCue, ...)."""

    def __init__(self, stream=None):
        self._stream = stream

    def _print(self, text):
        print_line(text, self._stream)

    def stage(self, text):
        self._print("LBSMATTE STAGE %s" % text)

    def info(self, text):
        self._print("LBSMATTE %s" % text)

    def frame_done(self, frame, done, total):
        self._print("LBSMATTE PROGRESS %d %d/%d" % (frame, done, total))

    def warning(self, text):
        for line in str(text).splitlines() or [""]:
            self._print("WARNING: %s" % line)

    def error(self, text):
        for line in str(text).splitlines() or [""]:
            self._print("ERROR: %s" % line)


class TaskReporter(Reporter):
    """A ``nuke.ProgressTask``: progress bar, message, Cancel button.

    Create it in the thread that does the work (Nuke's documented use of ProgressTask).
    """

    def __init__(self, nuke_module, title="LBSMatte"):
        self._task = nuke_module.ProgressTask(title)
        self._stage = ""

    def stage(self, text):
        self._stage = text
        self._task.setMessage(text)

    def info(self, text):
        self._task.setMessage(text)

    def frame_done(self, frame, done, total):
        percent = int(round(100.0 * done / total)) if total else 100
        self._task.setProgress(percent)
        self._task.setMessage("%s: frame %d (%d/%d)" % (self._stage or "LBSMatte", frame, done, total))

    def error(self, text):
        self._task.setMessage("ERROR: %s" % str(text).splitlines()[0] if str(text) else "ERROR")

    def cancelled(self):
        return bool(self._task.isCancelled())

    def close(self):
        # Nuke closes the bar when the task object goes away.
        self._task = None
