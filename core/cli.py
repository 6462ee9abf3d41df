"""The ``lbsmatte`` command line (SPEC §11).

::

    lbsmatte matte --plate PLATE --trimap TRIMAP --out OUT [--frames 1001-1100] [--trimap-hold] [--weights NAME]
                   [--device auto|cpu|cuda] [--colour auto|linear|srgb|<OCIO name>]
                   [--trimap-channel auto|alpha|red|luminance|NAME] [--plate-layer LAYER]
                   [--float] [--unpremultiply] [--no-progress]
                   [--edge PX] [--write-trimap PATH] [--skip-existing]
    lbsmatte weights list [--json] | show NAME [--json]
    lbsmatte demo | evaluate | train | finetune | export | cache ...

Streams, the same for ``matte``, ``weights`` and every usage error (the
modules of ``demo``, ``evaluate``, ``train`` and ``finetune`` still log on their own, to stderr, warnings as ``WARNING:`` lines too):
**every line goes to stdout**, flushed line by line — ``ERROR:`` and ``WARNING:`` lines, ``LBSMATTE PROGRESS`` lines, the closing ``wrote ...``
line and what ``weights``/``fingerprint`` print. **stderr carries only the progress bar** (for
people at a terminal: none where stderr is a file or a pipe; ``--no-progress`` turns it off) and a Python traceback if the tool itself
crashes. So a farm adaptor reads one stream and misses nothing; ``2>/dev/null`` hides only the bar.
A command printing JSON (``fingerprint``, ``weights list --json``, ``weights show --json``:
:func:`prints_json`) is the exception: stdout holds the JSON document alone, for a script's
``json.loads``, and its ``WARNING:`` and ``ERROR:`` lines go to stderr.

``matte`` output, for farm tools::

    LBSMATTE WROTE <frame> <path>            each file the frame wrote, complete and in place (the
                                             matte, --write-trimap's trimap), before its PROGRESS
                                             line; <path> (the rest of the line) as OUT names it
    LBSMATTE PROGRESS <frame> <i>/<n>        after each frame, written or failed
                                             (<frame> is "-" for a single file)
    ERROR: frame <frame>: <message>          a frame that failed (or came out not finite: NaN
                                             or infinity; never written); the others still render
    ERROR: <message>                         a failure before any frame was started
    WARNING: [frame <frame>: ]<message>      something worth knowing (device fallback, ...)
    frame <frame>: trimap frame <g> held (<path>)
                                             --trimap-hold: the trimap frame this frame reads
                                             (it has none of its own), before its PROGRESS line
    LBSMATTE SKIPPED <frame> <path>          --skip-existing: each file of a frame not rendered
                                             again (there, complete, this run's result), in
                                             place of its WROTE lines
    frame <frame>: rendering again: <why>    --skip-existing: a frame whose files were there but
                                             are not this run's result, before it renders
    skipped <m> frame(s) already there (--skip-existing)
                                             before the closing line, where frames were skipped
    wrote <n> frame(s) to <OUT>              the last line of a run where every frame was written
                                             (or skipped); <n> the frames written

A frame computed otherwise than asked after running out of GPU memory (the networks in smaller
tiles, the refinement on the CPU: ``Matter.stats.degraded``) says so in its EXR header, in the
string attribute :data:`DEGRADED_ATTRIBUTE`, so that a cache (the Nuke node's) does not keep it
as the result of the settings asked for; a frame computed as asked has none.

Every argument is checked before any work starts (before the networks load), and the messages
use the flags' own spelling (``--fg-solve``, ``--rounds``, ``--out``). ``matte`` holds a lock
on each output file while it writes it (the frame of OUT, and of ``--write-trimap``'s PATH;
``.NAME.lock`` beside it, e.g. ``.out.1001.exr.lock``): runs writing different frames of one OUT
(a farm's chunks) go on side by side, and a frame that another run is writing at that moment
fails (``ERROR: frame <frame>: ...``, naming that run) while the others render. Once it holds a
frame's lock it removes that frame's leftover temporary files (from a run killed with SIGKILL),
and on SIGTERM it stops, removes the frame it was writing, and exits 143.

Exit codes, the same for every subcommand (the table in README.md, "Exit codes"; :func:`exit_code`
decides 1 or 2): 0 every frame written; 1 some frame failed (one that another run was writing
included), or nothing could start (no trained weights, output folder not writable), or stdout cannot be written (a
log on a full disk: one ``ERROR:`` line on stderr); 141 stdout closed by its reader; 2 usage error (bad arguments,
a frame range or colour that cannot be understood, an input named that is not there, OUT that is a folder,
would overwrite an input or lies in the packaged bundles, two output frames that are one file);
143 stopped by SIGTERM (``demo``, ``export``, ``evaluate`` and ``weights`` too: the file being
written is removed, never left half-written; ``train`` stops with 3 while it trains); 130
interrupted (Ctrl-C; ``train`` checkpoints and stops with 3 while it trains, as for SIGTERM); 70 LBSMatte itself
failed (an exception nothing planned for, a bug: its traceback on stderr; in ``matte`` a frame's is that frame's
``ERROR:`` line, and the others still render).

``demo``, ``evaluate``, ``train``, ``finetune`` and ``export`` come from ``core.demo``, ``core.evaluate``,
``core.training.cli`` and ``core.export`` (``add_arguments(parser, command)``, ``run(args) -> int``), imported only
when that command runs; one that cannot be imported says so instead of breaking the others.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import gc
import importlib
import io
import json
import logging
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core import __version__
from core.errors import InputError, LBSMatteError, OutputError

if TYPE_CHECKING:
    from core.io import InputFiles

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT (Ctrl-C); train and finetune checkpoint and stop with 3 instead while they train
EXIT_STDOUT_CLOSED = 141  # 128 + SIGPIPE: stdout closed by its reader (lbsmatte weights list | head)
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports it
EXIT_INTERNAL = 70  # sysexits.h's EX_SOFTWARE: LBSMatte itself failed (a bug), with a traceback on stderr


def exit_code(exc: BaseException) -> int:
    """The exit code of a command that ``exc`` ended, for every subcommand alike:
    :data:`EXIT_USAGE` for an :class:`InputError` (the command line cannot be carried out as given:
    a bad value, an input it names that is missing or unusable, an output that is a folder or would
    replace an input), :data:`EXIT_FAILED` for any other error (the work, or what it needs, failed)."""
    return EXIT_USAGE if isinstance(exc, InputError) else EXIT_FAILED

#: Subcommands living in other modules: name -> (module, one-line help).
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("core.demo", "matte the bundled example and write the result (a quick check of an install)"),
    "evaluate": ("core.evaluate", "metrics (SAD, MSE, gradient, connectivity) on a data set, with baselines"),
    "train": ("core.training.cli", "train the three networks (BG, then FG, then alpha) into a weights bundle"),
    "finetune": ("core.training.cli", "fine-tune a weights bundle on a show's plates and mattes"),
    "cache": ("nuke_plugin.cachetool", "what the Nuke node's cache folder holds (list) and removing results no "
                                       "script uses or not used for days (prune)"),
    "export": ("core.export", "write the whole pipeline as one TorchScript module for Nuke's Inference node (.cat)"),
}

log = logging.getLogger("core")


# -- argument parsing ------------------------------------------------------------------------------
def whole_number_at_least(low: int, flag: str, what: str) -> Any:
    """An argparse type for ``flag``: a whole number >= ``low``, its error saying ``what`` it takes."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = low - 1
        if number < low:
            raise argparse.ArgumentTypeError(f"{flag} takes {what}, not {value!r}")
        return number

    return parse


def device_argument(value: str) -> str:
    """An argparse type for ``--device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (one GPU of several)."""
    head, _, index = value.partition(":")
    if value in ("auto", "cpu", "cuda") or (head == "cuda" and index.isdigit()):
        return value
    raise argparse.ArgumentTypeError(f"--device takes auto, cpu, cuda or cuda:N, not {value!r}")


def setting_argument(name: str, flag: str, note: str) -> Any:
    """An argparse type for ``flag``, the refinement's whole-number setting ``name``: a whole number
    in its range (:data:`core.compositing.WHOLE_NUMBER_RANGES`), its error naming ``flag``, the
    range and ``note``."""

    def parse(value: str) -> int:
        from core.compositing import WHOLE_NUMBER_RANGES

        low, high = WHOLE_NUMBER_RANGES[name]
        span = f">= {low}" if high is None else f"from {low} to {high}"
        number = whole_number_at_least(low, flag, f"a whole number {span} ({note})")(value)
        if high is not None and number > high:
            raise argparse.ArgumentTypeError(f"{flag} takes a whole number {span} ({note}), not {value!r}")
        return number

    return parse


#: ``--rounds``: a whole number from 0 to 100.
rounds_argument = setting_argument("rounds", "--rounds", "0: the networks alone")
#: ``--knn-band``: a whole number of pixels >= 0.
knn_band_argument = whole_number_at_least(0, "--knn-band", "a whole number of pixels >= 0 (0: anywhere in the crop)")
#: ``--knn-stride``: a whole number >= 1.
knn_stride_argument = whole_number_at_least(1, "--knn-stride", "a whole number >= 1 (1: every unknown pixel searches)")


def edge_argument(value: str) -> int:
    """``--edge``: a whole number of pixels > 0 (argparse type; :func:`core.trimap.check_edge`)."""
    from core.trimap import check_edge

    try:
        return check_edge(value)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def weight_argument(flag: str, zero: str) -> Callable[[str], float]:
    """An argparse type for ``flag``: a finite weight >= 0 (``zero`` says what 0 means)."""

    def parse(value: str) -> float:
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not np.isfinite(weight) or weight < 0:
            raise argparse.ArgumentTypeError(f"{flag} takes a weight >= 0 (0: {zero}), not {value!r}")
        return weight

    return parse


fg_solve_argument = weight_argument("--fg-solve", "the network's colours as they are")
knn_argument = weight_argument("--knn", "no KNN term")


def levels_argument(value: str) -> tuple[float, float]:
    """``--levels BLACK,WHITE``: ``0 <= BLACK < WHITE <= 1`` (argparse type)."""
    parts = value.split(",")
    try:
        black, white = (float(p) for p in parts) if len(parts) == 2 else (float("nan"),) * 2
    except ValueError:
        black = white = float("nan")
    if not 0.0 <= black < white <= 1.0:
        raise argparse.ArgumentTypeError(f"--levels takes BLACK,WHITE with 0 <= BLACK < WHITE <= 1 (0,1: none), "
                                         f"not {value!r}")
    return black, white


def trimap_channel_argument(value: str) -> str:
    """``--trimap-channel``: ``auto``, ``alpha``, ``red``, ``luminance`` (any case), or the name of a
    channel of the trimap file, such as ``matte.A`` of a layered EXR (argparse type)."""
    from core.trimap import CHANNELS

    name = value.strip()
    if not name:
        raise argparse.ArgumentTypeError(f"--trimap-channel takes {', '.join(CHANNELS)} or the name of a channel "
                                         f"of the trimap file (e.g. matte.A), not {value!r}")
    return name.lower() if name.lower() in CHANNELS else name


def plate_layer_argument(value: str) -> str:
    """``--plate-layer``: a layer name, such as ``beauty`` of ``beauty.R`` (argparse type)."""
    if not value.strip():
        raise argparse.ArgumentTypeError(f"--plate-layer takes the name of the plate's colour layer (e.g. beauty of "
                                         f"beauty.R, or rgba), not {value!r}")
    return value.strip()


class _ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors as one ``ERROR:`` line on stdout (the stream convention above)."""

    def error(self, message: str) -> Any:  # argparse's signature returns NoReturn
        print(f"ERROR: {message} (see '{self.prog} --help')", file=sys.stdout, flush=True)
        raise SystemExit(EXIT_USAGE)


def _add_matte(sub: Any) -> None:
    p = sub.add_parser(
        "matte",
        help="matte a plate (single file or frame sequence) with a trimap",
        description="Estimate background, foreground and alpha for each frame of PLATE with TRIMAP and "
        "write them to OUT. OUT ending in .exr gets R G B A fg.R fg.G fg.B bg.R bg.G bg.B, half float (--float: 32-bit), "
        "in what Nuke's Read makes of the plate: an sRGB integer file (PNG, JPEG, 8/16-bit TIFF, DPX) is linearised "
        "to scene-linear; a float file (EXR, float TIFF) keeps its own encoding (scene-linear under --colour auto "
        "or linear; with --colour srgb it stays sRGB-encoded), and so does an OCIO plate; "
        ".png/.tif/.dpx get RGBA, sRGB-encoded, 8/16/10-bit (an integer plate of more bits: as many).",
    )
    p.add_argument("--plate", required=True, metavar="PLATE",
                   help="plate file or sequence (plate.####.exr, plate.%%04d.exr, plate.@.exr)")
    p.add_argument("--trimap", required=True, metavar="TRIMAP",
                   help="trimap file or sequence: 0 = background, 1 = foreground, between = unknown")
    p.add_argument("--out", required=True, metavar="OUT", help="output file or sequence (never an input)")
    p.add_argument("--frames", metavar="RANGE",
                   help="frames to render, in the order given, e.g. 1001-1100, 1-10x2, 1,3,5, 1100-1001 (whole "
                        "frames; default: the plate's frames on disk)")
    p.add_argument("--trimap-hold", action="store_true",
                   help="a frame whose TRIMAP sequence has no file for it (roto on twos, a trimap held from one "
                        "frame) reads the nearest earlier trimap frame on disk, said in a line 'frame F: trimap "
                        "frame G held (PATH)' (default: such a frame fails, naming the trimap frames on disk)")
    p.add_argument("--weights", default="default", metavar="NAME",
                   help="weights bundle name (see 'lbsmatte weights list') or folder (default: default); 'none': "
                        "the default bundle's pipeline with parameter-free priors in place of the networks (a diagnostic)")
    p.add_argument("--device", default="auto", type=device_argument,
                   help="where the networks run: auto, cpu, cuda or cuda:N (auto: CUDA when available; cuda "
                        "without CUDA falls back to the CPU)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"),
                   help="the networks' arithmetic (auto: fp16 on CUDA; on the CPU bf16 where it is native, "
                        "AVX512-BF16 or AMX, else fp32); the refinement is always fp32")
    p.add_argument("--colour", "--color", dest="colour", default="auto", metavar="COLOUR",
                   help="plate encoding: auto (float files linear, integer files sRGB, as Nuke's Read), "
                   "linear, srgb (an EXR OUT of a float file then holds sRGB-encoded layers, as the plate is), "
                   "or an OpenColorIO colourspace when $OCIO is set")
    p.add_argument("--trimap-channel", default="auto", type=trimap_channel_argument, metavar="CHANNEL",
                   help="which channel of the trimap file holds the trimap: auto (default: the alpha where it "
                        "varies, else a grey file's red or one channel, else the luminance), alpha, red, luminance, "
                        "or a channel's name, such as matte.A of a layered EXR")
    p.add_argument("--plate-layer", default=None, type=plate_layer_argument, metavar="LAYER",
                   help="the plate's layer holding its colour, such as beauty of a layered or multi-part EXR's "
                        "beauty.R, or rgba (default: R, G, B, else the file's one colour layer)")
    p.add_argument("--float", dest="float_exr", action="store_true",
                   help="an EXR OUT in 32-bit float (default: 16-bit half float, which holds values up to ±65504: "
                        "one beyond it, a linear highlight, is written as ±65504 with a WARNING, never as inf)")
    p.add_argument("--unpremultiply", action="store_true",
                   help="write unpremultiplied FG in RGB (default: FG·alpha, premultiplied, Nuke's convention; a PNG "
                        "OUT holds FG, straight, either way: the format stores no premultiplied colour, and Nuke's "
                        "Read gives it straight)")
    p.add_argument("--fg-solve", type=fg_solve_argument, default=None, metavar="WEIGHT",
                   help="weight of the foreground network's colours when the foreground is made to agree with "
                        "plate, background and alpha (default 0.1; 0: the network's colours as they are, needs --rounds 0)")
    p.add_argument("--rounds", type=rounds_argument, default=None, metavar="N",
                   help="rounds after the networks that alternate the foreground solve with alpha read off the "
                        "compositing equation and smoothed by the matting Laplacian (default: the number the "
                        "bundle's manifest records, chosen with its networks by cross-validation, else 3; 0: the "
                        "matting network's alpha as it is, about twice as fast)")
    p.add_argument("--knn", type=knn_argument, default=None, metavar="WEIGHT",
                   help="weight of the refinement's KNN term, which ties each unknown pixel to the pixels of most "
                        "like colour in the crop (default: the bundle's recorded weight, chosen by cross-validation; "
                        "0: the matting Laplacian alone, faster, and what 'lbsmatte export' computes)")
    p.add_argument("--knn-band", type=knn_band_argument, default=None, metavar="PX",
                   help="the KNN term looks for known pixels only within PX pixels of the unknown region "
                        "(default: the bundle's recorded width, chosen by cross-validation: 32 px for the shipped "
                        "bundle; 0: anywhere in the crop, slower on large frames; refused with --knn 0)")
    p.add_argument("--knn-stride", type=knn_stride_argument, default=None, metavar="N",
                   help="only the unknown pixels on every N-th row and column search for the KNN term's neighbours, "
                        "each pair counting N*N times (default: the bundle's recorded stride, 3 for the shipped "
                        "bundle; 1: every unknown pixel, about 1.6 times a 1080p frame's time; refused with --knn 0)")
    p.add_argument("--levels", type=levels_argument, default=None, metavar="BLACK,WHITE",
                   help="black and white points of the refined alpha, as a Grade on the matte: "
                        "(alpha - BLACK) / (WHITE - BLACK), clipped to 0..1 (default: the bundle's recorded points, "
                        "chosen by cross-validation; 0,1: the refinement's alpha as it is; refused with --rounds 0, which runs no "
                        "refinement, as --knn, --knn-band and --knn-stride are)")
    p.add_argument("--edge", type=edge_argument, default=None, metavar="PX",
                   help="TRIMAP is a rough matte (a roto or garbage matte, binary or soft; its channel chosen by "
                        "--trimap-channel): make the trimap from it, unknown PX pixels each side of its 0.5 edge")
    p.add_argument("--write-trimap", default=None, metavar="PATH",
                   help="also write the trimap the matting used (made by --edge, or the normalised TRIMAP) to PATH, "
                        "grey RGB, 0 / 0.5 / 1, with the plate's windows (a sequence needs a frame token)")
    p.add_argument("--no-match-exposure", dest="match_exposure", action="store_false",
                   help="matte a dark plate as it is (default: a plate solved in linear light whose brightest 1%% "
                        "around the unknown band is darker than the networks were trained on, a night plate, is "
                        "matted scaled up, at most 16 times, and its FG and BG scaled back; the scale is in the "
                        "result's header, lbsmatte/exposure)")
    p.add_argument("--skip-existing", action="store_true",
                   help="do not render a frame again whose files (OUT's, and --write-trimap's) are there, complete, "
                        "and made by this LBSMatte version with these settings and weights from these plate and "
                        "trimap files (a farm task retried); any other such frame is rendered again, saying why. "
                        "EXR and PNG outputs only: their headers record what made them")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(handler=run_matte)


def _add_weights(sub: Any) -> None:
    p = sub.add_parser("weights", help="list the weights bundles found, or show one",
                       description="Weights bundles: the packaged 'default' and those on LBSMATTE_WEIGHTS_PATH.")
    wsub = p.add_subparsers(dest="weights_command", metavar="list | show NAME")
    wsub.required = True
    listing = wsub.add_parser("list", help="every bundle found, default first: a line each, NAME, trained|UNTRAINED, "
                                           "folder and description, tab-separated")
    listing.add_argument("--json", action="store_true",
                         help="print a JSON array instead, an object per bundle: name, trained (true/false), path, "
                              "description (whole); warnings on stderr")
    show = wsub.add_parser("show", help="a bundle's manifest, checked (checksums, architectures, finite weights)")
    show.add_argument("name", metavar="NAME", help="bundle name or folder")
    show.add_argument("--json", action="store_true", help="print the manifest as JSON (warnings and errors on stderr)")
    p.set_defaults(handler=run_weights)


def _add_fingerprint(sub: Any) -> None:
    p = sub.add_parser(
        "fingerprint", help="what a result is made with, as one hash (the Nuke node's cache key uses it)",
        description="Print one JSON line: the core's version and source hash, the bundle's manifest hash, "
        "the device and precision as resolved, the OCIO config when COLOUR is an OCIO colourspace, and "
        "'fingerprint', a hash of them all (core/fingerprint.py).")
    p.add_argument("--weights", default="default", metavar="NAME", help="weights bundle name or folder")
    p.add_argument("--device", default="auto", type=device_argument, help="as for 'matte'")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"), help="as for 'matte'")
    p.add_argument("--colour", "--color", dest="colour", default="auto", metavar="COLOUR", help="as for 'matte'")
    p.set_defaults(handler=run_fingerprint)


def _unavailable(command: str, module: str, exc: BaseException) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        print(f"ERROR: 'lbsmatte {command}' is not available: {module} cannot be imported "
              f"({type(exc).__name__}: {exc})", flush=True)
        return EXIT_FAILED

    return handler


def _add_lazy(sub: Any, command: str, chosen: str | None) -> None:
    module_name, help_text = LAZY_COMMANDS[command]
    p = sub.add_parser(command, help=help_text, description=help_text)
    if command != chosen:
        return  # only the command being run pays for its import
    try:
        module = importlib.import_module(module_name)
        module.add_arguments(p, command)
    except Exception as exc:  # a broken optional command must not break the CLI
        p.set_defaults(handler=_unavailable(command, module_name, exc), accepts_any_arguments=True)
        return
    p.set_defaults(handler=module.run)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``lbsmatte`` parser; ``command`` is the subcommand about to run (its module is imported)."""
    parser = _ArgumentParser(
        prog="lbsmatte",
        description="LBSMatte: learning-based sampling matting (background -> foreground -> alpha).",
    )
    parser.add_argument("--version", action="version", version=f"lbsmatte {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_matte(sub)
    _add_weights(sub)
    _add_fingerprint(sub)
    for name in LAZY_COMMANDS:
        _add_lazy(sub, name, command)
    return parser


def _chosen_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log records as lines on stdout (or ``stream``: stderr for a command printing JSON). A stdout that fails — a reader that went away (``lbsmatte
    matte ... | head``), a log file on a full disk — ends the run as a ``print`` would
    (:func:`main`: exit 141, or 1 with one ``ERROR:`` line on stderr), instead of logging's
    ``--- Logging error ---`` traceback on stderr and a run that goes on."""

    def __init__(self, fmt: str, stream: Any = None) -> None:
        super().__init__(sys.stdout if stream is None else stream)
        self.setFormatter(logging.Formatter(fmt))

    def format(self, record: logging.LogRecord) -> str:
        return _one_line(super().format(record))  # one protocol line, whatever the message holds

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            raise  # handleError runs inside logging's except block: the OSError
        super().handleError(record)


class _LevelFormatter(logging.Formatter):
    """A log record as its message, a warning or worse with its level in front (``WARNING: ...``),
    as every command prints its warnings; information (``resumed background network at step
    40``) as it is."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return line if record.levelno < logging.WARNING else f"{record.levelname}: {line}"


def log_to_stderr(level: int = logging.WARNING) -> None:
    """Log records from ``level`` up as lines on stderr, for the commands that log on their own
    (``demo``, ``evaluate``, ``train``, ``finetune``): warnings as ``WARNING: ...`` lines, as
    ``matte`` prints them. Without it a warning reached stderr as its bare message (logging's
    last-resort handler, or the training's ``basicConfig(format="%(message)s")``), with nothing
    that a farm's log filter or a person could tell from a progress line. Nothing is done when
    the root logger has handlers already (an embedding program's, pytest's)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelFormatter("%(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def prints_json(args: argparse.Namespace) -> bool:
    """Whether the command ``args`` runs prints JSON (``fingerprint``, ``weights list --json``,
    ``weights show --json``, ``cache list|prune --json``): then its stdout holds that JSON document alone, for a script's
    ``json.loads``, and its ``WARNING:`` and ``ERROR:`` lines go to stderr (:func:`_notes_stream`)."""
    if getattr(args, "handler", None) is run_fingerprint:
        return True
    return getattr(args, "command", None) in ("weights", "cache") and getattr(args, "json", False) is True


def _notes_stream(args: argparse.Namespace | None) -> Any:
    """Where ``WARNING:`` and ``ERROR:`` lines go: stdout (the module docstring's one stream), but
    stderr for a command printing JSON (:func:`prints_json`)."""
    return sys.stderr if args is not None and prints_json(args) else sys.stdout


@contextlib.contextmanager
def _warnings_to_stdout(stream: Any = None) -> Any:
    """The core's log warnings (a skipped bundle, a device fallback) as ``WARNING:`` lines on
    stdout while a command runs, as ``matte`` prints them (the module docstring's streams), or on
    ``stream`` (stderr, for a command printing JSON)."""
    handler = _StdoutHandler("%(levelname)s: %(message)s", stream)
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)


# -- weights ---------------------------------------------------------------------------------------
#: ``weights list`` cuts descriptions to this many characters (``weights show`` has them whole).
_LIST_DESCRIPTION = 300


def run_weights(args: argparse.Namespace) -> int:
    """``lbsmatte weights list`` / ``show NAME`` (``--json``: :func:`bundle_listing`, the manifest)."""
    with _warnings_to_stdout(_notes_stream(args)):
        return _weights_command(args)


def bundle_listing(bundles: Sequence[Any]) -> list[dict[str, Any]]:
    """``weights list --json``: a JSON array, an object per bundle in the order names are picked,
    each with exactly ``name`` (str), ``trained`` (bool: the manifest says ``"trained": true``),
    ``path`` (str: the folder as the search path gives it) and ``description`` (str, whole; "" for
    none). More keys may come in a later version; these keep their meaning."""
    return [{"name": b.name, "trained": b.manifest.get("trained") is True, "path": str(b.path),
             "description": str(b.manifest.get("description") or "")} for b in bundles]


def _weights_command(args: argparse.Namespace) -> int:
    from core.weights import find_bundles, load_bundle, verify_bundle

    if args.weights_command == "list":
        bundles = find_bundles()
        if args.json:
            print(json.dumps(bundle_listing(bundles), indent=2), flush=True)
            return EXIT_OK
        if not bundles:
            print("no weights bundles found (no packaged 'default'; LBSMATTE_WEIGHTS_PATH="
                  f"{os.environ.get('LBSMATTE_WEIGHTS_PATH', '')!r})")
            return EXIT_OK
        for b in bundles:
            trained = "trained" if b.manifest.get("trained") is True else "UNTRAINED"
            # One line per bundle, whatever the manifest holds: whitespace folded, long text cut.
            description = " ".join(str(b.manifest.get("description") or "").split())
            if len(description) > _LIST_DESCRIPTION:
                description = description[: _LIST_DESCRIPTION - 3] + "..."
            print(f"{b.name}\t{trained}\t{b.path}\t{description}")
        return EXIT_OK
    bundle = load_bundle(args.name)
    # Beyond the checksums: each network built from its config against its file's tensors (a
    # wrong architecture, as matte would find it on loading), and no NaN or infinite weights.
    problems = verify_bundle(bundle)
    if problems:
        for problem in problems:
            print(f"ERROR: {bundle.label}: {problem}", file=_notes_stream(args), flush=True)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(bundle.manifest, indent=2, sort_keys=True))
    elif hasattr(bundle, "summary"):
        print(bundle.summary())
    else:
        print(f"{bundle.name}: {bundle.path}")
        print(json.dumps(bundle.manifest, indent=2, sort_keys=True))
    return EXIT_OK


def run_fingerprint(args: argparse.Namespace) -> int:
    """``lbsmatte fingerprint``: :func:`core.fingerprint.fingerprint` as one JSON line."""
    from core.colour import check_colour
    from core.fingerprint import fingerprint
    from core.weights import load_bundle

    notes = _notes_stream(args)  # stderr: stdout holds the JSON line alone
    try:
        check_colour(args.colour)
    except InputError as exc:
        print(f"ERROR: --colour: {exc}", file=notes, flush=True)
        return EXIT_USAGE
    if args.weights == "none":  # matte's and evaluate's diagnostic: nothing the Nuke node caches
        print("ERROR: --weights none has no bundle to fingerprint: it is the diagnostic of 'lbsmatte matte' "
              "and 'lbsmatte evaluate' without networks, never a cached result", file=notes, flush=True)
        return EXIT_USAGE
    with _warnings_to_stdout(notes):
        record = fingerprint(load_bundle(args.weights), device=args.device,
                             precision=getattr(args, "precision", "auto"), colour=args.colour)
    print(json.dumps(record, sort_keys=True), flush=True)
    return EXIT_OK


# -- matte -----------------------------------------------------------------------------------------
@dataclass
class FrameJob:
    """One frame to render: its number (None for single files) and the three paths.

    ``trimap_held`` is the trimap sequence's frame read for this frame when it is another one
    (``--trimap-hold``: the nearest earlier frame on disk); ``trimap_missing`` the error for a
    frame whose trimap file was not on disk when the run was planned ("" otherwise)."""

    frame: int | None
    plate: Path
    trimap: Path
    out: Path
    trimap_out: Path | None = None
    trimap_held: int | None = None
    trimap_missing: str = ""
    #: The files this frame has written, complete and in place (``LBSMATTE WROTE`` lines).
    written: list[Path] = field(default_factory=list)
    #: The files of a frame not rendered again, already this run's result (``--skip-existing``:
    #: ``LBSMATTE SKIPPED`` lines).
    skipped: list[Path] = field(default_factory=list)
    #: The header record of its plate and trimap files (:func:`_inputs_record`): hashed once a
    #: frame, by ``--skip-existing``'s check or else by the render, which uses the check's.
    inputs: tuple[str, str, Any] | None = None

    @property
    def label(self) -> str:
        return "-" if self.frame is None else str(self.frame)


@dataclass
class _Layers:
    """The matte as written: alpha, FG, BG in the output's encoding (duck-types core.pipeline.Matte)."""

    alpha: np.ndarray
    fg: np.ndarray
    bg: np.ndarray


#: Output extensions ``matte`` writes; JPEG is refused (it cannot hold the alpha).
MATTE_OUTPUTS = (".exr", ".png", ".tif", ".tiff", ".dpx")


def plan_frames(plate: str, trimap: str, out: str, frames: str | None = None,
                hold_trimap: bool = False) -> list[FrameJob]:
    """The frames to render and their paths.

    Frames come from ``frames`` (a range string), else from the plate sequence on disk, else
    from the trimap sequence on disk; a single file (no frame token) is used for every frame.
    Plate and trimap frames are matched by number; a frame whose trimap file is not on disk
    fails, unless ``hold_trimap``: then it reads the trimap sequence's nearest earlier frame on
    disk (:func:`_match_trimap_frames`).

    Raises :class:`InputError` (a usage error) for a range that cannot be parsed, no frames
    found, several frames going to one output file, an unsupported output format, or OUT being
    one of the inputs.
    """
    from core.io import (
        InputFiles,
        check_utf8_path,
        expand_sequence,
        frame_paths,
        has_frame_token,
        parse_frames,
    )
    from core.views import check_no_view_variable

    for flag, path in (("--plate", plate), ("--trimap", trimap), ("--out", out)):
        check_no_view_variable(flag, path)
        check_utf8_path(path, flag)
    ext = os.path.splitext(out)[1].lower()
    if ext in (".jpg", ".jpeg"):
        raise InputError(f"--out {out}: JPEG cannot hold the alpha channel; use .exr, .png, .tif or .dpx")
    if ext not in MATTE_OUTPUTS:
        raise InputError(f"--out {out}: unsupported extension {ext or '(none)'!r}; use .exr, .png, .tif or .dpx")
    numbers: list[int | None]
    if frames is not None:
        numbers = list(parse_frames(frames))
    elif has_frame_token(plate):
        numbers = [f for f, _ in expand_sequence(plate)]
    elif has_frame_token(trimap):
        numbers = [f for f, _ in expand_sequence(trimap)]
    else:
        numbers = [None]
    if numbers == [None] and has_frame_token(out):
        raise InputError(
            f"--out {out} is a frame sequence but --plate {plate} and --trimap {trimap} are single files "
            "(no frame token) and no --frames is given: name one output file (out.exr), or give --frames"
        )
    if len(numbers) > 1 and not has_frame_token(out):
        raise InputError(
            f"--out {out} names a single file but {len(numbers)} frames are to be written; "
            "give OUT a frame token (out.####.exr)"
        )
    # A single file (no frame token) serves every frame: one that is not there is a usage error,
    # found before the networks load; a sequence's missing frame is that frame's error.
    why = {flag: _not_a_file(path) for flag, path in (("--plate", plate), ("--trimap", trimap)) if not has_frame_token(path)}
    problems = [f"{flag} {path}: {why[flag]}" for flag, path in (("--plate", plate), ("--trimap", trimap)) if why.get(flag)]
    if problems:
        raise InputError("; ".join(problems))
    plates, trimaps, outs = (frame_paths(p, numbers) for p in (plate, trimap, out))
    jobs = [FrameJob(*paths) for paths in zip(numbers, plates, trimaps, outs, strict=True)]
    if has_frame_token(trimap):
        _match_trimap_frames(jobs, trimap, hold_trimap)
    inputs = InputFiles(p for job in jobs for p in (job.plate, job.trimap))
    claimed: dict[str, tuple[FrameJob, Path]] = {}
    for job in jobs:
        _check_output("--out", job.out, inputs, f" ({job.out / ('matte' + ext)})")
        _claim_output(claimed, "--out", job, job.out)
    check_not_packaged_output("--out", *(job.out for job in jobs))
    return jobs


def _match_trimap_frames(jobs: list[FrameJob], pattern: str, hold: bool) -> None:
    """Say what is on disk for each job whose frame of trimap sequence ``pattern`` is not there.

    Roto often comes on twos (every other frame), held from a single frame, or numbered from
    1001 where the plate starts at 1: a plate frame is never given another trimap frame unasked.
    Without ``hold`` such a job keeps its own path and gets ``trimap_missing``, a message naming
    that file and the frames the sequence has on disk (or why none are: other padding). With
    ``hold`` it reads the nearest earlier frame on disk (``trimap_held``; the run says so for
    each frame), and only a job with no earlier trimap frame gets ``trimap_missing``.
    """
    from bisect import bisect_right

    import fileseq

    from core.io import frame_paths, frames_on_disk

    try:
        on_disk = frames_on_disk(pattern)
    except InputError as exc:  # none at all, or only files of other padding (trimap.1.png for ####)
        on_disk, why = [], str(exc)
    else:
        why = (f"the trimap sequence {pattern} has frame(s) "
               f"{fileseq.FrameSet.framesToFrameRange(on_disk, sort=False, compress=True)} on disk")
    have = set(on_disk)
    missing = [job for job in jobs if job.frame is not None and job.frame not in have]
    held = {job.frame: on_disk[i - 1] for job in missing if hold and (i := bisect_right(on_disk, job.frame))}
    paths = dict(zip(held.values(), frame_paths(pattern, held.values()), strict=True))
    for job in missing:
        if job.frame in held:
            job.trimap_held = held[job.frame]
            job.trimap = paths[job.trimap_held]
        elif not on_disk:
            job.trimap_missing = f"file not found: {job.trimap} ({why})"
        elif hold:
            job.trimap_missing = (f"file not found: {job.trimap} ({why}; none at or before frame {job.frame} "
                                  "for --trimap-hold to hold)")
        else:
            job.trimap_missing = (f"file not found: {job.trimap} ({why}; --trimap-hold reads the nearest "
                                  "earlier one for a frame that has none)")


def _claim_output(claimed: dict[str, tuple[FrameJob, Path]], flag: str, job: FrameJob, path: Path,
                  key: str | None = None) -> None:
    """Record output ``path`` of ``job`` in ``claimed`` (``key``, default :func:`core.io.output_key` of
    ``path`` -> the frame and path that claimed it first); a usage error when another frame's output
    is that file already: the later frame would replace it (two links to one file, names that
    differ only in case)."""
    from core.io import output_key

    first, first_path = claimed.setdefault(output_key(path) if key is None else key, (job, path))
    if first is job and first_path == path:
        return
    same = os.path.realpath(first_path) == os.path.realpath(path)
    why = ("through symbolic links" if same else
           "on a file system that ignores case (macOS, Windows and their shares); their names differ only in case")
    raise InputError(f"{flag} {path} (frame {job.label}) and {first_path} (frame {first.label}) are one file, "
                     f"{os.path.realpath(path)}, {why}: each frame needs a file of its own, or one would replace "
                     "the other")


def check_not_packaged_output(flag: str, *paths: str | os.PathLike[str]) -> None:
    """A usage error (:class:`InputError`, exit 2) when an output of ``paths`` given with ``flag`` is or
    lies inside LBSMatte's packaged bundles, followed through symbolic links: the rule is
    :func:`core.weights.check_not_packaged`; every command writing files the user names asks it here."""
    from core.weights import check_not_packaged

    try:
        check_not_packaged(*paths)
    except LBSMatteError as exc:
        raise InputError(f"{flag}: {exc}") from None


def _check_output(flag: str, path: Path, inputs: InputFiles, example: str = "") -> None:
    """A usage error when output ``path`` is a folder or one of the ``inputs``."""
    from core.io import check_not_input

    if path.is_dir():
        raise InputError(f"{flag} {path} is a folder: name the file to write in it{example}")
    try:
        check_not_input(path, inputs)
    except OutputError as exc:
        raise InputError(f"{flag} would overwrite an input: {exc}") from exc


def _not_a_file(path: str) -> str:
    """Why ``path`` cannot be read as an image file ("" when it can be tried)."""
    if os.path.isdir(path):
        return "is a folder, not an image file"
    if not os.path.exists(path):
        return "no such file"
    return ""


def plan_trimap_outputs(jobs: list[FrameJob], pattern: str | None) -> None:
    """Set each job's ``trimap_out`` from ``--write-trimap PATTERN`` (nothing when None).

    Raises :class:`InputError` (a usage error) for an unsupported extension, several frames going
    to one file, or a path that is an input or the matte output.
    """
    from core.io import WRITE_FORMATS, InputFiles, check_utf8_path, frame_paths, has_frame_token, output_key
    from core.views import check_no_view_variable

    if pattern is None:
        return
    check_no_view_variable("--write-trimap", pattern)
    check_utf8_path(pattern, "--write-trimap")
    ext = os.path.splitext(pattern)[1].lower()
    if ext not in WRITE_FORMATS:
        raise InputError(f"--write-trimap {pattern}: unsupported extension {ext or '(none)'!r}; "
                         f"use one of {', '.join(WRITE_FORMATS)}")
    if len(jobs) > 1 and not has_frame_token(pattern):
        raise InputError(f"--write-trimap {pattern} names a single file but {len(jobs)} frames are to be written; "
                         "give it a frame token (trimap.####.exr)")
    if [job.frame for job in jobs] == [None] and has_frame_token(pattern):  # as --out (plan_frames): no frame to fill in
        raise InputError(f"--write-trimap {pattern} is a frame sequence but the plate and trimap are single files "
                         "(no frame token) and no --frames is given: name one file (trimap.exr), or give --frames")
    inputs = InputFiles(p for job in jobs for p in (job.plate, job.trimap))
    mattes = {output_key(job.out): job.out for job in jobs}
    claimed: dict[str, tuple[FrameJob, Path]] = {}
    for job, path in zip(jobs, frame_paths(pattern, [job.frame for job in jobs]), strict=True):
        job.trimap_out = path
        _check_output("--write-trimap", job.trimap_out, inputs)
        key = output_key(job.trimap_out)
        matte = mattes.get(key)
        if matte is not None:
            also = "" if matte == job.trimap_out else f": it is one file with {matte}"
            raise InputError(f"--write-trimap {job.trimap_out} is also where the matte goes (--out){also}; "
                             "give the trimap a file of its own")
        _claim_output(claimed, "--write-trimap", job, job.trimap_out, key)
    check_not_packaged_output("--write-trimap", *(job.trimap_out for job in jobs if job.trimap_out is not None))


class _FramePrefix(logging.Filter):
    """Prefix log messages with the frame being rendered."""

    def __init__(self) -> None:
        super().__init__()
        self.frame: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.frame is not None:
            record.frame_prefix = f"frame {self.frame}: "
        else:
            record.frame_prefix = ""
        return True


def _linearised(colour: str, float_plate: bool) -> bool:
    """Whether an EXR result is the plate linearised: what Nuke's Read makes of the plate. An sRGB
    integer file (PNG, JPEG, 8/16-bit TIFF, DPX) is linearised; a float file (``float_plate``: EXR,
    float TIFF), which the Read takes as it is, and a linear or OpenColorIO plate keep the plate's
    own encoding, so the known regions equal the plate and the result sits in the comp's space
    beside it (the Nuke node bakes its input to a float EXR: with input colour ``srgb`` the result
    stays sRGB-encoded, as its input is)."""
    return colour == "srgb" and not float_plate


def _to_output(values: np.ndarray, colour: str, exr: bool, float_plate: bool) -> np.ndarray:
    """FG/BG from the plate's encoding to the output's. EXR: linearised or as it is
    (:func:`_linearised`); other formats: sRGB-encoded, clipped to [0, 1]."""
    from core.colour import to_display, to_linear

    if exr:
        return to_linear(values, colour) if _linearised(colour, float_plate) else np.asarray(values, dtype=np.float32)
    return np.clip(to_display(values, colour), 0.0, 1.0)


#: EXR header attribute of a result frame computed otherwise than asked (the module docstring);
#: ``nuke_plugin/cache.py`` reads it (a twin, tests/test_contracts.py holds them equal).
DEGRADED_ATTRIBUTE = "lbsmatte/degraded"
#: Header attribute of a result matted scaled up in linear light (a night plate:
#: :func:`core.pipeline.exposure_scale`), the scale; none at 1.
EXPOSURE_ATTRIBUTE = "lbsmatte/exposure"
#: Header attributes LBSMatte writes about itself (:func:`_provenance`); a plate's own (an earlier
#: result matted again) are never carried over: they describe that run, not this one.
PROVENANCE_PREFIX = "lbsmatte/"


def _provenance(matter: Any, args: argparse.Namespace, colour: str, premultiplied: bool) -> list[tuple[str, str, Any]]:
    """What made a result, for its header: ``Software`` (``LBSMatte <version>``, in place of the
    plate's, which named the camera or the package that wrote the plate), and ``lbsmatte/version``,
    ``lbsmatte/weights`` (the bundle's name, never its folder: no user's path in a delivered file),
    ``lbsmatte/bundle_sha256`` (as ``lbsmatte fingerprint`` gives it; none for ``--weights none``)
    and ``lbsmatte/settings``, one JSON object of what decides the pixels: the device and precision
    as resolved, the plate's colour as read, the refinement's settings that applied (none of the levels
    or the KNN term with ``--rounds 0``: :meth:`core.compositing.Settings.applied`), the trimap's reading,
    and for an OpenColorIO colourspace its conversions under ``$OCIO``'s config
    (:func:`core.colour.conversion_id`)."""
    from core.colour import conversion_id

    bundle = matter.bundle
    settings = {
        "device": matter.device.type,
        "precision": matter.precision,
        "colour": colour,
        "premultiplied": premultiplied,
        "fg_solve": matter.fg_solve,
        "refinement": matter.refinement.applied(layers=matter.fg_solve > 0),  # what ran, not the bundle's record
        "trimap_channel": args.trimap_channel,
        "plate_layer": args.plate_layer,
        "edge": args.edge,
        "match_exposure": getattr(matter, "match_exposure", True),
    }
    ocio = conversion_id(colour)
    if ocio is not None:  # an OpenColorIO colourspace: what the config made of it, as its name alone does not say
        settings["ocio"] = ocio
    records = [("Software", "string", f"LBSMatte {__version__}"),
               (PROVENANCE_PREFIX + "version", "string", __version__),
               (PROVENANCE_PREFIX + "weights", "string", str(bundle.name))]
    if hasattr(bundle, "manifest_sha256"):
        records.append((PROVENANCE_PREFIX + "bundle_sha256", "string", bundle.manifest_sha256()))
    records.append((PROVENANCE_PREFIX + "settings", "string", json.dumps(settings, sort_keys=True)))
    return records


#: Header attribute of a result and of ``--write-trimap``'s trimap: the SHA-256 of the plate and
#: trimap files it was made from (JSON, ``{"plate": ..., "trimap": ...}``; the held frame's file
#: with ``--trimap-hold``), so that ``--skip-existing`` renders a frame again whose inputs changed.
INPUTS_ATTRIBUTE = PROVENANCE_PREFIX + "inputs"
#: The header attributes ``--skip-existing`` compares, in the order its reasons are said.
_RECORDED = ("version", "weights", "bundle_sha256", "settings", "inputs")
#: Output formats whose header keeps the ``lbsmatte/*`` record (TIFF and DPX keep none).
RECORDED_OUTPUTS = (".exr", ".png")


def _check_recorded_outputs(args: argparse.Namespace) -> None:
    """``--skip-existing`` only with outputs whose header can say what made them (a usage error):
    a TIFF or DPX frame on disk could not be told from another run's or another tool's."""
    for flag, path in (("--out", args.out), ("--write-trimap", args.write_trimap)):
        ext = os.path.splitext(path or "")[1].lower()
        if path is not None and ext not in RECORDED_OUTPUTS:
            raise InputError(f"--skip-existing: {flag} {path}: a {ext.lstrip('.').upper() or 'file'} of LBSMatte's "
                             "keeps no record of the settings, weights and inputs that made it, so a frame there "
                             "cannot be told from another run's or another tool's: write EXR or PNG, or leave "
                             "--skip-existing out")


def _inputs_record(job: FrameJob) -> tuple[str, str, Any]:
    """The header record of the files ``job`` is made from: the SHA-256 of its plate and trimap
    files (their bytes: a plate rendered again, delivered anew or repainted gives another; a
    copy, whatever its time stamp or folder, the same). Hashed once a frame (``job.inputs``): a
    frame ``--skip-existing`` renders again read its 4K plate's 100 MB a second time to hash it."""
    from core.weights import file_sha256

    if job.inputs is None:
        hashes = {"plate": file_sha256(job.plate), "trimap": file_sha256(job.trimap)}
        job.inputs = (INPUTS_ATTRIBUTE, "string", json.dumps(hashes, sort_keys=True))
    return job.inputs


def _trimap_provenance(args: argparse.Namespace, inputs: tuple[str, str, Any]) -> list[tuple[str, str, Any]]:
    """What made ``--write-trimap``'s trimap, for its header: ``Software``, ``lbsmatte/version``, the
    inputs (:func:`_inputs_record`) and ``lbsmatte/settings``, the trimap's reading alone (it does
    not depend on the weights, device or colour)."""
    reading = {"trimap_channel": args.trimap_channel, "plate_layer": args.plate_layer, "edge": args.edge}
    return [("Software", "string", f"LBSMatte {__version__}"),
            (PROVENANCE_PREFIX + "version", "string", __version__), inputs,
            (PROVENANCE_PREFIX + "settings", "string", json.dumps(reading, sort_keys=True))]


def _own_metadata(info: Any, records: list[tuple[str, str, Any]]) -> Any:
    """``info`` with its metadata's ``Software`` and ``lbsmatte/*`` (the plate's: an earlier result
    matted again) replaced by ``records``, this run's."""
    kept = [m for m in info.metadata if not m[0].startswith(PROVENANCE_PREFIX) and m[0] != "Software"]
    return replace(info, metadata=kept + records)


def _why_render(job: FrameJob, matter: Any, args: argparse.Namespace) -> str | None:
    """For ``--skip-existing``: None when every file ``job`` would write is there, complete (it
    reads whole, with the channels, windows and pixel type this run writes) and says in its header
    that it was made by this LBSMatte version with the weights, settings and input files this run
    uses (and, a matte, computed as asked: not :data:`DEGRADED_ATTRIBUTE`); "" when none of them is
    there; else why the frame is rendered again. A frame whose plate or trimap cannot be read gets
    "": rendering it says what is wrong.

    It reads the plate's header, not its pixels, hashes the plate and trimap once for the frame
    (:func:`_inputs_record`, which a render that follows uses too), and decodes an output's pixels
    only once its header says it is this run's: a 4K frame's check decoded the plate and each
    output in 32-bit float first, seconds a frame even when its header then said to render again."""
    from core.colour import resolve_colour
    from core.io import MATTE_CHANNELS, WRITE_FORMATS, check_whole, output_pixel_type, read_info

    outputs = [p for p in (job.out, job.trimap_out) if p is not None]
    there = [p for p in outputs if os.path.exists(p)]
    if not there:
        return ""
    if len(there) < len(outputs):
        return f"{next(p for p in outputs if p not in there)} is not there"
    try:
        plate = read_info(job.plate, layer=args.plate_layer)
        colour = resolve_colour(args.colour, plate.is_float, plate.log_encoding)
        inputs = _inputs_record(job)
    except (LBSMatteError, OSError):
        return ""
    exr = job.out.suffix.lower() == ".exr"
    expected = {job.out: (_provenance(matter, args, colour, not args.unpremultiply) + [inputs],
                          list(MATTE_CHANNELS) if exr else ["R", "G", "B", "A"],
                          ("float" if args.float_exr else "half") if exr else output_pixel_type(job.out, plate))}
    if job.trimap_out is not None:
        expected[job.trimap_out] = (_trimap_provenance(args, inputs), ["R", "G", "B"],
                                    WRITE_FORMATS[job.trimap_out.suffix.lower()])
    for path, (records, channels, pixel_type) in expected.items():
        try:
            info = read_info(path)
        except LBSMatteError as exc:
            return str(exc)
        windows = ((info.display_window, info.data_window) if path.suffix.lower() == ".exr" else info.size,
                   (plate.display_window, plate.data_window) if path.suffix.lower() == ".exr" else plate.size)
        if sorted(info.channels) != sorted(channels):
            return f"{path} holds channels {', '.join(info.channels)}, not {', '.join(channels)}"
        if windows[0] != windows[1]:
            return f"{path} is not the plate's size or windows ({windows[0]}, the plate's {windows[1]})"
        if info.pixel_type != pixel_type:
            return f"{path} holds {info.pixel_type} pixels, this run writes {pixel_type}"
        differs = _record_differs(path, info, records, job)
        if differs:
            return differs
        if info.attribute(DEGRADED_ATTRIBUTE):
            return f"{path} was computed otherwise than asked ({info.attribute(DEGRADED_ATTRIBUTE)})"
    for path in expected:  # last, its pixels: a file cut short on a share, or damaged, has a whole header
        try:
            check_whole(path)
        except LBSMatteError as exc:
            return str(exc)
    return None


def _record_differs(path: Path, info: Any, records: list[tuple[str, str, Any]], job: FrameJob) -> str:
    """How the ``lbsmatte/*`` record in ``info`` (the header of ``path``) differs from this run's
    ``records``; "" when it does not."""
    want = {name[len(PROVENANCE_PREFIX):]: value for name, _, value in records if name.startswith(PROVENANCE_PREFIX)}
    have = {name: info.attribute(PROVENANCE_PREFIX + name) for name in _RECORDED}
    if have["version"] is None or have["settings"] is None:
        return (f"{path} does not say that LBSMatte made it (no {PROVENANCE_PREFIX}version or settings in its "
                "header): another tool's file, or one written before LBSMatte recorded them")
    if have["version"] != want["version"]:
        return f"{path} was made by LBSMatte {have['version']}, this is {want['version']}"
    if (have["weights"], have["bundle_sha256"]) != (want.get("weights"), want.get("bundle_sha256")):
        return (f"{path} was made with the weights {have['weights']!r} (bundle_sha256 {have['bundle_sha256']}), "
                f"this run uses {want.get('weights')!r} ({want.get('bundle_sha256')})")
    if have["settings"] != want["settings"]:
        try:
            old = json.loads(have["settings"])
        except ValueError:
            old = {}
        new = json.loads(want["settings"])
        old = old if isinstance(old, dict) else {}
        changed = [f"{key} {json.dumps(old.get(key))} (this run {json.dumps(new.get(key))})"
                   for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
        return f"{path} was made with other settings: {', '.join(changed) or have['settings']}"
    if have["inputs"] != want["inputs"]:
        try:
            old = json.loads(have["inputs"] or "null")
        except ValueError:
            old = None
        new = json.loads(want["inputs"])
        if not isinstance(old, dict):
            return f"{path} does not record the plate and trimap it was made from ({INPUTS_ATTRIBUTE})"
        changed = [f"{what} {getattr(job, what)}" for what in ("plate", "trimap") if old.get(what) != new[what]]
        return f"{path} was made from other files than this run's: {' and '.join(changed)} changed since"
    return ""


def _render(job: FrameJob, matter: Any, args: argparse.Namespace, protect: InputFiles) -> None:
    from core.colour import LINEARISED_TAG, interop_id, premultiply, resolve_colour
    from core.io import check_not_input, output_pixel_type, read_image, write_image, write_matte_exr
    from core.trimap import (
        matte_in_alpha,
        mid_grey_share,
        normalise_trimap,
        stray_share,
        trimap_from_matte,
        unknown_in_colour,
    )
    from core.views import choose_views

    # Over the union of the plate's data and display windows: overscan (Nuke's bounding box
    # beyond the format) is matted and written back, not dropped; the trimap is read over the same
    # pixels (zero, i.e. background, where its own data window does not reach).
    plate = read_image(job.plate, window="union", layer=args.plate_layer)
    if args.plate_layer is None and all(c.rsplit(".", 1)[-1].lower() in ("a", "alpha") for c in plate.channels):
        # read_image's rule (one channel is grey, whatever its name) would matte the matte as a grey plate
        raise InputError(f"plate {job.plate} holds only an alpha channel ({', '.join(plate.channels)}): no colour to "
                         "matte. Is it a matte or the trimap (--plate and --trimap swapped)?")
    if job.trimap_missing and not job.trimap.exists():  # planned so: say what the sequence has on disk
        raise InputError(job.trimap_missing)
    trimap_layer = args.trimap_channel.rpartition(".")[0] or None  # matte of matte.A: its part of a multi-part file
    trimap_image = read_image(job.trimap, window=plate.window or plate.info.union_window, layer=trimap_layer)
    if plate.info.size != trimap_image.info.size:
        (pw, ph), (tw, th) = plate.info.size, trimap_image.info.size
        turned = [str(image.info.path) for image in (plate, trimap_image) if image.info.turned]
        hint = (f"; {' and '.join(turned)} carries an EXIF orientation that turns it a quarter turn in photo viewers "
                "and paint packages, but LBSMatte (like Nuke's Read) uses its pixels as stored: save it upright, "
                "without the orientation tag" if turned and (pw, ph) == (th, tw) else "")
        raise InputError(
            f"plate and trimap differ in size: plate {job.plate} is {pw}x{ph}, trimap {job.trimap} is {tw}x{th}{hint}"
        )
    if plate.info.display_window != trimap_image.info.display_window:  # read over the same pixels: they would not line up
        (px, py), (tx, ty) = plate.info.display_window[:2], trimap_image.info.display_window[:2]
        raise InputError(
            f"plate and trimap have their display windows at different places: plate {job.plate} starts at "
            f"({px}, {py}), trimap {job.trimap} at ({tx}, {ty}); the trimap would not line up with the plate"
        )
    plate_layer, trimap_channel, tri_pixels, tri_channels = choose_views(
        plate, trimap_image, args.plate_layer, args.trimap_channel, job.plate, job.trimap)
    try:
        if matte_in_alpha(tri_pixels, trimap_channel, tri_channels):
            log.warning("trimap %s: --trimap-channel %s reads a constant plane, but its alpha varies: a Roto's "
                        "matte (its colour black)? --trimap-channel alpha (or auto) reads it", job.trimap,
                        trimap_channel)
        if args.edge is not None:
            trimap = trimap_from_matte(tri_pixels, args.edge, trimap_channel, tri_channels)
            mid = mid_grey_share(tri_pixels, trimap_channel, tri_channels)
            if mid > STRAY_WARNING:
                log.warning("rough matte %s: %.0f%% of its pixels are mid grey, as a trimap's unknown band (a matte is "
                            "0.5 only along its edge): is it a trimap? With --edge its grey is cut into the inside and "
                            "the band is made around it; without --edge (the node's trimap input 'trimap') it is "
                            "matted as the trimap it is", job.trimap, 100 * mid)
        else:
            trimap = normalise_trimap(tri_pixels, trimap_channel, tri_channels)
            hidden = unknown_in_colour(tri_pixels, tri_channels) if trimap_channel == "auto" else 0
            if hidden:
                log.warning("trimap %s: --trimap-channel auto reads its alpha, which varies but has no unknown pixel; "
                            "its colour channels hold %d: a trimap painted over transparency? --trimap-channel red "
                            "(or luminance) reads them", job.trimap, hidden)
            stray = stray_share(tri_pixels, trimap_channel, tri_channels)
            if stray > STRAY_WARNING:
                log.warning("trimap %s: %.0f%% of its pixels are grey levels a trimap does not use (neither black, "
                            "white nor mid grey): all of them are matted as unknown. Is it a soft matte or an image? "
                            "For a roto or a soft matte, --edge PX makes the trimap from it", job.trimap, 100 * stray)
    except InputError as exc:
        raise type(exc)(f"trimap {job.trimap}: {exc}") from exc
    inputs = _inputs_record(job)
    if job.trimap_out is not None:  # before matting: there to look at even when the matting fails
        check_not_input(job.trimap_out, [job.out])  # nor the matte's file
        write_image(job.trimap_out, np.repeat(trimap[..., None], 3, axis=2), ["R", "G", "B"],
                    like=_own_metadata(plate.info, _trimap_provenance(args, inputs)), protect=protect,
                    window=plate.window)
        job.written.append(job.trimap_out)
    colour = resolve_colour(args.colour, plate.info.is_float, plate.info.log_encoding)
    declared = _declared_colourspace(plate.info, colour) if args.colour.strip().lower() == "auto" else None
    if declared:
        log.warning("plate %s: its header says %s, but --colour auto reads %s: name its colourspace with "
                    "--colour (%s)", job.plate, *declared)
    elif colour == "srgb" and args.colour.strip().lower() == "auto" and _untagged_dpx(plate.info):
        log.warning("plate %s: a DPX whose header names no encoding (dpx:Transfer %r), read as sRGB by --colour "
                    "auto; Nuke's Read reads a DPX as Cineon log by default (the project's 'log files' setting; "
                    "with an OCIO config, as its file rules say): if the plate is log, name its colourspace with "
                    "--colour (Cineon in Nuke's default OCIO config, $OCIO set)", job.plate,
                    plate.info.attribute("dpx:Transfer"))
    # The plate's alpha (its layer's: beauty.A with --plate-layer beauty) is not used; the pipeline
    # warns when it is not opaque (core.pipeline.plate_alpha_note).
    pixels, plate_alpha = plate.rgb(plate_layer), plate.alpha(plate_layer)
    if plate_alpha is not None:
        pixels = np.concatenate([pixels, plate_alpha[..., None]], axis=2)
    result = matter.matte(pixels, trimap, colour=colour)
    _check_finite(result, job)
    premultiplied = not args.unpremultiply
    exr = job.out.suffix.lower() == ".exr"
    alpha = np.asarray(result.alpha, dtype=np.float32)
    fg, bg = result.fg, result.bg
    if exr and colour == "srgb":  # solved in the sRGB encoding: made to recomposite the plate as the EXR holds it
        fg, bg = matter.agree_as_stored(pixels, trimap, result, _linearised(colour, plate.info.is_float))
    fg = _to_output(fg, colour, exr, plate.info.is_float)
    # Only this run's record: a plate that is an earlier result carries that run's.
    own = _provenance(matter, args, colour, premultiplied) + [inputs]
    exposure = getattr(getattr(matter, "stats", None), "exposure", 1.0)
    if exposure != 1.0:  # a night plate, matted scaled up (core.pipeline.exposure_scale)
        own.append((EXPOSURE_ATTRIBUTE, "float", float(exposure)))
    metadata = _own_metadata(plate.info, own).metadata
    if exr:
        layers = _Layers(alpha, fg, _to_output(bg, colour, exr, plate.info.is_float))
        degraded = getattr(getattr(matter, "stats", None), "degraded", None)
        if degraded:
            metadata.append((DEGRADED_ATTRIBUTE, "string", "; ".join(degraded)))
        # The header says what the layers hold: linear Rec.709 when linearised, an OCIO colourspace's
        # interop ID when the config gives one (the plate's own tag may be absent, or what --colour
        # overrode), else the plate's own tag.
        linearised = _linearised(colour, plate.info.is_float)
        space = LINEARISED_TAG if linearised else (interop_id(colour) or plate.info.attribute("colorInteropID"))
        write_matte_exr(job.out, layers, like=replace(plate.info, metadata=metadata), premultiply=premultiplied,
                        half=not args.float_exr,
                        protect=protect, window=plate.window, colourspace=space)
        job.written.append(job.out)
    else:
        rgb = premultiply(fg, alpha) if premultiplied else fg
        rgba = np.concatenate([rgb, alpha[..., None]], axis=2)
        write_image(job.out, rgba, ["R", "G", "B", "A"], like=replace(plate.info, metadata=metadata), protect=protect,
                    pixel_type=output_pixel_type(job.out, plate.info),
                    unassociated_alpha=not premultiplied, window=plate.window, colourspace="srgb_rec709_scene")
        job.written.append(job.out)


#: ``colorInteropID`` values (OpenImageIO's colour-space tag) of linear Rec.709, what ``--colour
#: auto`` reads a float file as, and the Rec.709 primaries and D65 white of EXR's ``chromaticities``.
LINEAR_REC709_TAGS = ("lin_rec709_scene", "lin_rec709", "linear")
REC709_CHROMATICITIES = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)


def _declared_colourspace(info: Any, colour: str) -> tuple[str, str, str] | None:
    """When a plate's header says its values are not what ``--colour auto`` read them as
    (``colour``): a float file (linear Rec.709) tagged otherwise (``colorInteropID``) or with other
    ``chromaticities``, an integer file (sRGB) whose DPX header or tag says linear. The warning's
    words (what the header says, what auto read, what to name), or None: said, not acted on
    (Nuke's Read ignores them)."""
    from core.colour import colourspace_for_tag

    tag = str(info.attribute("colorInteropID") or "")
    if colour == "srgb":
        transfer = info.attribute("dpx:Transfer")
        said = (f"its values are linear (dpx:Transfer {transfer!r})" if transfer == "Linear" else
                f"its values are linear (colorInteropID {tag!r})" if tag.lower().startswith("lin_") else None)
        return (said, "an integer file as sRGB", "linear, or an OCIO colourspace") if said else None
    words = ("a float file as linear Rec.709, as Nuke's Read does", "ACEScg for ACES AP1, with $OCIO set")
    if tag and tag.lower() not in LINEAR_REC709_TAGS:
        named = colourspace_for_tag(tag)  # a log or camera tag is no ACEScg: name the config's space
        return (f"its colours are not linear Rec.709 (colorInteropID {tag!r})", words[0],
                f"{named!r}, the colourspace of $OCIO's config it names" if named else words[1])
    chromaticities = info.attribute("chromaticities")
    if chromaticities is not None and not np.allclose(np.asarray(chromaticities, dtype=np.float64).ravel(),
                                                      REC709_CHROMATICITIES, atol=2e-3):
        values = ", ".join(f"{v:.4g}" for v in np.asarray(chromaticities).ravel())
        return (f"its colours are not linear Rec.709 (chromaticities {values})", *words)
    return None


#: ``dpx:Transfer`` values (OpenImageIO's names) that say nothing of a DPX's encoding.
UNSTATED_DPX_TRANSFERS = (None, "Undefined", "User defined", "Unspecified video")


def _untagged_dpx(info: Any) -> bool:
    """True for an integer DPX whose header names no encoding (no transfer, no colour-space tag):
    ``--colour auto`` reads it as sRGB, as any integer file, where Nuke's Read takes a DPX as
    Cineon log by default (nuke-default's ``logLut``), so the two may disagree without a word."""
    return (str(info.format_name).lower() == "dpx" and not info.is_float
            and info.attribute("dpx:Transfer") in UNSTATED_DPX_TRANSFERS
            and not info.attribute("colorInteropID") and not info.attribute("oiio:ColorSpace"))


#: The share of stray greys (:func:`core.trimap.stray_share`) above which a trimap is said to look
#: like something else: a trimap's anti-aliased or hand-painted edges stay far below it.
STRAY_WARNING = 0.05


def _check_finite(result: Any, job: FrameJob) -> None:
    """:class:`OutputError` when alpha, FG or BG holds NaN or infinity (broken weights, a solver
    that diverged): such a frame is an error, never written."""
    bad = []
    for name in ("alpha", "fg", "bg"):
        values = np.asarray(getattr(result, name))
        count = int(values.size - np.count_nonzero(np.isfinite(values)))
        if count:
            bad.append(f"{name} has {count} non-finite value(s)")
    if bad:
        raise OutputError(f"the result is not finite ({'; '.join(bad)}); {job.out} not written")


def _one_line(text: str) -> str:
    """``text`` as one line of the protocol: its lines joined with spaces. A farm adaptor reads
    stdout line by line; a message spanning lines (pybind11's list of overloads, a library's
    multi-line error) would leave lines with no ``ERROR:`` prefix and the message cut short."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _say(line: str, stream: Any = None) -> None:
    """A protocol line on stdout (or ``stream``), as one line, flushed."""
    print(_one_line(line), file=sys.stdout if stream is None else stream, flush=True)


def _emit(line: str, bar: Any) -> None:
    """A protocol line on stdout, flushed, without tearing the progress bar."""
    if bar is not None and not bar.disable:
        bar.clear()
    _say(line)
    if bar is not None and not bar.disable:
        bar.refresh()


def run_matte(args: argparse.Namespace) -> int:
    """``lbsmatte matte``: see the module docstring for the output protocol and exit codes."""
    from core.colour import check_colour
    from core.io import check_output_folder, check_writable_dir

    try:
        _check_fg_solve(args)
        _check_no_rounds(args)
        _check_no_knn(args)
        try:
            check_colour(args.colour)
        except InputError as exc:
            raise InputError(f"--colour {args.colour}: {exc}") from exc
        jobs = plan_frames(args.plate, args.trimap, args.out, args.frames, args.trimap_hold)
        plan_trimap_outputs(jobs, args.write_trimap)
        if args.float_exr and os.path.splitext(args.out)[1].lower() != ".exr":
            # A float TIFF would be read as scene-linear (by Nuke's Read, and by --colour auto), but
            # these results hold the sRGB encoding: integers are what they are written as.
            raise InputError(f"--float: only an EXR --out is written in float, not {args.out}: a PNG, TIFF "
                             "or DPX result holds sRGB-encoded integers (16-bit TIFF, 8- or 16-bit PNG, "
                             "10- to 16-bit DPX)")
        if getattr(args, "skip_existing", False):
            _check_recorded_outputs(args)
    except InputError as exc:
        _say(f"ERROR: {exc}")
        return EXIT_USAGE
    try:  # each folder once; an output that is a symbolic link: the folder of the file it points to
        plain = {p.parent for job in jobs for p in (job.out, job.trimap_out) if p is not None and not p.is_symlink()}
        for folder in sorted(plain):
            check_writable_dir(folder)
        for job in jobs:
            for link in (p for p in (job.out, job.trimap_out) if p is not None and p.is_symlink()):
                check_output_folder(link)
    except OutputError as exc:
        _say(f"ERROR: {exc}")
        return EXIT_FAILED
    getattr(args, "fit_threads", lambda: None)()  # torch's first import (main's): every argument is checked
    prefix = _FramePrefix()
    handler = _StdoutHandler("%(levelname)s: %(frame_prefix)s%(message)s")
    handler.addFilter(prefix)
    log.addHandler(handler)  # the pipeline's warnings (device fallback, sanitised pixels): stdout too
    previous = _stop_on_sigterm()
    try:
        return _render_all(jobs, args, prefix)
    except OutputError as exc:
        _say(f"ERROR: {exc}")
        return EXIT_FAILED
    except _Terminated:
        print("ERROR: stopped by SIGTERM; frames written so far are complete, none is half-written", flush=True)
        return EXIT_TERMINATED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        log.removeHandler(handler)


def _check_fg_solve(args: argparse.Namespace) -> None:
    """``--fg-solve 0`` only with ``--rounds 0`` (checked before the networks load)."""
    if args.fg_solve == 0 and args.rounds != 0:
        given = (f"the {args.rounds} alternating round(s) (--rounds {args.rounds})" if args.rounds is not None
                 else "the alternating rounds the bundle records (the default)")
        raise InputError(f"--fg-solve 0 needs --rounds 0: {given} solve the foreground with its weight, so it must be > 0")


def _check_no_rounds(args: argparse.Namespace, bundle: Any = None) -> None:
    """``--levels`` and the KNN flags only with rounds to act on (checked before the networks load):
    they shape the refinement's rounds, and ``--rounds 0`` runs none, so they would be dropped
    without a word (``--levels 0,1`` and ``--knn 0``, which ask for nothing, pass). Given the
    resolved ``bundle``, a ``--rounds`` left out is the one its manifest records."""
    rounds, why = _refinement_value(args, bundle, "rounds")
    if rounds != 0:
        return
    unused = []
    if args.levels is not None and tuple(args.levels) != (0.0, 1.0):
        unused.append(f"--levels {args.levels[0]:g},{args.levels[1]:g}")
    if args.knn:
        unused.append(f"--knn {args.knn:g}")
    unused += [f"{flag} {value}" for flag, value in (("--knn-band", args.knn_band), ("--knn-stride", args.knn_stride))
               if value is not None]
    if unused:
        raise InputError(f"{', '.join(unused)} shape{'s' if len(unused) == 1 else ''} the refinement's rounds, and "
                         f"{why} runs none (the matting network's alpha as it is): leave "
                         f"{'it' if len(unused) == 1 else 'them'} out, or give --rounds 1 or more")


def _check_no_knn(args: argparse.Namespace, bundle: Any = None) -> None:
    """``--knn-band`` and ``--knn-stride`` only with a KNN term to shape (checked before the networks
    load): ``--knn 0`` turns the term off, so they would be dropped without a word (with ``--rounds 0``
    :func:`_check_no_rounds` has said so already). Given the resolved ``bundle``, a ``--knn`` (or
    ``--rounds``) left out is the one its manifest records."""
    knn, why = _refinement_value(args, bundle, "knn")
    if knn != 0 or _refinement_value(args, bundle, "rounds")[0] == 0:
        return
    unused = [f"{flag} {value}" for flag, value in (("--knn-band", args.knn_band), ("--knn-stride", args.knn_stride))
              if value is not None]
    if unused:
        raise InputError(f"{', '.join(unused)} shape{'s' if len(unused) == 1 else ''} the KNN term's neighbour "
                         f"searches, and {why} turns the term off (the matting Laplacian alone): leave "
                         f"{'it' if len(unused) == 1 else 'them'} out, or give --knn a weight > 0")


def _refinement_value(args: argparse.Namespace, bundle: Any, name: str) -> tuple[Any, str]:
    """The refinement setting ``name`` (``rounds``, ``knn``) the run will use, and how to say where
    it comes from: its flag's value when given; else, with a ``bundle``, what the bundle records
    (``--knn-band 32`` with a bundle recording knn 0 was refused as 'knn_band=32: ... knn is 0', the
    Python API's spelling of neither the flag given nor where the 0 came from); else None (the
    check waits for the bundle)."""
    given = getattr(args, name)
    if given is not None or bundle is None:
        return given, f"--{name} {given:g}" if given is not None else ""
    from core.pipeline import refinement_settings

    value = getattr(refinement_settings(bundle), name)
    return value, f"{name} {value:g}, as the weights bundle {bundle.name!r} records it,"


class _Terminated(BaseException):
    """SIGTERM arrived (a farm stopping the task): unwinds like Ctrl-C, so that the frame being
    written removes its temporary file."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def _stop_on_sigterm() -> Any:
    """Turn SIGTERM into :class:`_Terminated`; returns the previous handler (None if not settable)."""
    try:
        return signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):  # not the main thread (tests), or no SIGTERM here
        return None


@contextlib.contextmanager
def _frame_locked(job: FrameJob, listed: dict[Path, list[str]] | None = None) -> Any:
    """Hold the locks of ``job``'s output files (the matte, and the trimap of ``--write-trimap``:
    outputs too) while it renders, and remove the leftover temporary files of those files (a run
    killed with SIGKILL) once they are held (their folders listed once a run: ``listed``,
    :func:`core.io.remove_stale_temps`).

    A lock per frame, not per sequence: a farm renders one OUT in chunks (``--frames 1001-1010``,
    ``1011-1020``, ... as tasks running at once), which must not refuse each other; only a frame
    that another run is writing at this moment fails (:class:`OutputError`, naming that run),
    and the others still render."""
    from core.io import locked_outputs

    outputs = [p for p in (job.out, job.trimap_out) if p is not None]
    _check_folders_still_there(outputs)
    with locked_outputs(outputs, listed):
        yield


def _check_folders_still_there(outputs: list[Path]) -> None:
    """:class:`OutputError` when the folder of an output, there (made or checked) before the first
    frame, is gone: removed while the run renders, or its share unmounted (the empty mount point
    left). Made again, it took the rest of the shot on to the machine's own disk, or into a folder
    a wrangler had just cleared, and the run said it wrote every frame."""
    from core.io import output_target

    for path in outputs:
        folder = os.path.dirname(os.path.abspath(output_target(path)))
        if not os.path.isdir(folder):
            raise OutputError(f"cannot write {path}: its folder {folder} was removed while this run was writing "
                              "(or the share holding it is no longer mounted); it is not made again: make it, or "
                              "mount the share, and render the missing frames again")


def _render_all(jobs: list[FrameJob], args: argparse.Namespace, prefix: _FramePrefix) -> int:
    try:
        from core.pipeline import Matter, resolve_bundle

        bundle = resolve_bundle(args.weights)
        _check_no_rounds(args, bundle)  # what the bundle records, said with the flags' names
        _check_no_knn(args, bundle)
        matter = Matter(bundle, device=args.device, precision=getattr(args, "precision", "auto"),
                        fg_solve=args.fg_solve, rounds=args.rounds, knn=args.knn, knn_band=args.knn_band,
                        knn_stride=args.knn_stride, match_exposure=getattr(args, "match_exposure", True),
                        **dict(zip(("black_point", "white_point"), args.levels or (None, None), strict=True)))
    except LBSMatteError as exc:  # a GPU the machine lacks is a usage error (2), as for every command
        _say(f"ERROR: {exc}")
        return exit_code(exc)

    from tqdm import tqdm

    from core.io import InputFiles

    # Resolved once: each write checked against a set of paths resolved them all again (a 2000-frame
    # run's every frame 0.7 s with --write-trimap).
    protect = InputFiles(p for job in jobs for p in (job.plate, job.trimap))
    failed: list[str] = []
    listed: dict[Path, list[str]] = {}  # the output folders' temporary files, each folder listed once
    n = len(jobs)
    bar = tqdm(total=n, file=sys.stderr, unit="frame", desc="lbsmatte", disable=args.no_progress or None)
    try:
        for i, job in enumerate(jobs, 1):
            prefix.frame = job.label
            if job.trimap_held is not None:
                _emit(f"frame {job.label}: trimap frame {job.trimap_held} held ({job.trimap})", bar)
            try:
                with _frame_locked(job, listed):  # looked at under the locks: not while another run replaces them
                    why = _why_render(job, matter, args) if getattr(args, "skip_existing", False) else ""
                    if why is None:
                        job.skipped = [p for p in (job.trimap_out, job.out) if p is not None]
                    else:
                        if why:
                            _emit(f"frame {job.label}: rendering again: {why}", bar)
                        _render(job, matter, args, protect)
            except LBSMatteError as exc:
                failed.append(job.label)
                _emit(f"ERROR: frame {job.label}: {exc}", bar)
            except Exception as exc:  # one bad frame must not stop the others
                failed.append(job.label)
                _emit(f"ERROR: frame {job.label}: {type(exc).__name__}: {exc} (plate {job.plate}, trimap "
                      f"{job.trimap}, out {job.out})", bar)
            finally:  # a publish step's list: a failed or stopped frame's trimap too, it is on disk
                prefix.frame = None
                for path in job.written:
                    _emit(f"LBSMATTE WROTE {job.label} {path}", bar)
                for path in job.skipped:
                    _emit(f"LBSMATTE SKIPPED {job.label} {path}", bar)
            bar.update(1)
            _emit(f"LBSMATTE PROGRESS {job.label} {i}/{n}", bar)
    finally:
        bar.close()
    skipped = sum(1 for job in jobs if job.skipped)
    if skipped:
        print(f"skipped {skipped} frame(s) already there (--skip-existing)", flush=True)
    if failed:
        print(f"ERROR: {len(failed)} of {n} frame(s) failed: {', '.join(failed)}", flush=True)
        return EXIT_FAILED
    print(f"wrote {n - skipped} frame(s) to {args.out}", file=sys.stdout, flush=True)
    return EXIT_OK


# -- entry point -----------------------------------------------------------------------------------
#: torch's switch for transparent huge pages on its large CPU buffers (read once, at its first
#: allocation of 2 MB or more). A 1080p frame allocates and frees hundreds of MB of short-lived
#: tensors; with 4 kB pages the kernel zero-fills them a page at a time: 1.2 million page faults
#: and 4-5 s of system time over 3 frames, against 0.17 million and 2.4 s with huge pages (whole
#: process 13.9 s against 10.6 s, medians of 3 runs; bench/bench_process.py). Set it to 0 to turn
#: it off; without transparent huge pages in the kernel it changes nothing.
HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"
#: Set to 0 to let the C allocator hand freed memory back to the system (see :func:`keep_freed_memory`).
KEEP_MEMORY_ENV = "LBSMATTE_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep what the process frees for its next allocations.

    By default glibc serves every block over 128 kB to 32 MB from a fresh ``mmap`` and unmaps it
    when freed, so each frame's tensors (hundreds of MB) come back from the kernel zero-filled,
    page by page, on every frame. With no ``mmap`` blocks and no trimming, the heap grows to the
    largest frame's need once and is reused: 3 frames of 1080p, whole process 14.0 s against
    15.5 s (medians of 5, bench/bench_process.py), system time about halved, the same peak memory
    (1.63 GiB). A render process is short-lived and sized for its largest frame, so keeping the
    memory costs nothing; the Nuke plug-in never calls this (it renders in a child ``lbsmatte``).
    Only where the C library is glibc (Linux); elsewhere, or with ``LBSMATTE_KEEP_FREED_MEMORY=0``,
    nothing changes. Returns whether it was applied.
    """
    if os.environ.get(KEEP_MEMORY_ENV, "1") == "0" or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        # The process's own symbols, the C library's among them (as core.pipeline reads mallinfo2):
        # ctypes.util.find_library imported subprocess and ran ldconfig at every command's start.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # musl and other C libraries have no mallopt
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def _join_frames(argv: list[str]) -> list[str]:
    """``--frames -5--1`` -> ``--frames=-5--1``: argparse takes a value starting with "-" (other
    than a plain negative number) for an option, and a farm template fills in ``--frames
    <START>-<END>`` for shots at negative frames too (as ``nuke_plugin/batch.py`` takes it)."""
    argv = list(argv)
    for i, arg in enumerate(argv[:-1]):
        if arg == "--frames" and re.match(r"-\d", argv[i + 1]):
            argv[i:i + 2] = ["--frames=" + argv[i + 1]]
            break
    return argv


def _escape_unencodable_output() -> None:
    """Write what stdout's and stderr's encoding cannot hold as ``\\uXXXX``, not as the end of the
    run: on Windows a stream that is a pipe or a file (a farm's log) is written in the ANSI code
    page (cp1252), so an ``ERROR:`` line naming ``C:\\shows\\日本\\plate.exr`` raised
    UnicodeEncodeError and the run ended in a traceback instead of its one protocol line (on
    Linux, a file name that is not valid UTF-8 did the same). The encoding itself is kept: the
    farm's log reader decodes with it. A stream given an error handler of its own
    (``PYTHONIOENCODING=cp1252:replace``) keeps it; one on surrogateescape, Python's own under
    ``LANG=C`` (ASCII where its UTF-8 mode is off), still writes a file name's bytes as they are,
    and escapes only the rest (a message's '±', a name's character the message decoded): such an
    ``ERROR:`` line ended in a traceback."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        errors = getattr(stream, "errors", None) or "strict"
        if reconfigure is None or errors not in ("strict", "surrogateescape"):
            continue
        try:
            reconfigure(errors="backslashreplace" if errors == "strict" else _BYTES_OR_ESCAPES)
        except (ValueError, OSError, io.UnsupportedOperation, LookupError):
            continue


def _bytes_or_escapes(exc: UnicodeError) -> tuple[str | bytes, int]:
    """Error handler :data:`_BYTES_OR_ESCAPES`: a lone surrogate U+DC80..U+DCFF (a byte Python could
    not decode, a file name's) as that byte, as surrogateescape writes it, anything else as
    backslashreplace writes it."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    char = exc.object[exc.start]
    if 0xDC80 <= ord(char) <= 0xDCFF:
        return bytes([ord(char) - 0xDC00]), exc.start + 1
    return codecs.backslashreplace_errors(UnicodeEncodeError(exc.encoding, exc.object, exc.start, exc.start + 1,
                                                             exc.reason))


#: The name :func:`_bytes_or_escapes` is registered under (:mod:`codecs`).
_BYTES_OR_ESCAPES = "lbsmatte-bytes-or-escapes"
codecs.register_error(_BYTES_OR_ESCAPES, _bytes_or_escapes)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lbsmatte`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    Without ``argv`` it is the process's own command (the console script, ``python -m core.cli``),
    which ends as it returns: it sets the process up for rendering (torch's huge pages,
    :data:`HUGE_PAGES_ENV`; glibc keeping freed memory, :func:`keep_freed_memory`), and ``weights``
    and ``fingerprint`` leave what the process made frozen for its exit (:func:`_uncollected`).
    Given ``argv`` (called in-process), the caller's process is left as it was: its environment,
    its allocator, Python's garbage collector, torch's thread count and the root logger's level and
    handlers (the frames' pixels are the same either way)."""
    exiting = argv is None
    # From the start: a farm stopping the task (SIGTERM) or Ctrl-C in the first seconds, while torch
    # imports, killed the process without a line (SIGTERM's default) or ended it in a traceback.
    # matte says which frames are complete itself; the others (demo, export, evaluate, a bundle being
    # written) unwind too, so that a file being written removes its temporary (SIGTERM's default
    # would kill the process in the middle and leave it). train's loop takes SIGTERM over while
    # it runs, to checkpoint and stop with exit 3.
    previous = _stop_on_sigterm()
    threads = None
    args: argparse.Namespace | None = None
    # demo, evaluate, train and finetune log to stderr through the root logger (log_to_stderr's
    # basicConfig): called in-process, that handler stayed, and the caller's own basicConfig did nothing.
    root = logging.getLogger()
    root_before = (root.level, list(root.handlers))
    try:
        argv = _join_frames(list(sys.argv[1:] if argv is None else argv))
        _escape_unencodable_output()
        if exiting:
            # Not in a caller's process: the variable would pass to every process it starts, and glibc
            # would keep the largest frame's memory, never trimmed, for as long as a pipeline tool runs.
            os.environ.setdefault(HUGE_PAGES_ENV, "1")  # before torch's first large allocation
            keep_freed_memory()
        parser = build_parser(_chosen_command(argv))
        try:
            args, unknown = parser.parse_known_args(argv)
            if unknown and not getattr(args, "accepts_any_arguments", False):
                parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        except SystemExit as exc:  # argparse: --help (0) or a usage error (2, its ERROR: line printed)
            return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
        quick = args.handler in (run_weights, run_fingerprint)  # they read no image and render nothing
        # torch (a second or more to import) only for a command about to run it: matte fits the
        # threads once its arguments are checked, before its networks load (run_matte), so that a
        # usage error says so at once; the lazy commands (demo, evaluate, train, finetune,
        # export) all run torch, and fit them here.
        threads = _ThreadFitting()
        args.fit_threads = threads.fit
        if not quick and args.handler is not run_matte:
            threads.fit()
        with _uncollected(exiting) if quick else contextlib.nullcontext():
            return int(args.handler(args))
    except _Terminated:
        print("ERROR: stopped by SIGTERM; no file was left half-written", file=_notes_stream(args), flush=True)
        return EXIT_TERMINATED
    except LBSMatteError as exc:
        _say(f"ERROR: {exc}", _notes_stream(args))  # a command printing JSON: on stderr
        return exit_code(exc)
    except KeyboardInterrupt:
        print("ERROR: interrupted", file=_notes_stream(args), flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (lbsmatte weights list | head): end as a Unix tool does
        _silence_stdout()
        return EXIT_STDOUT_CLOSED if hasattr(signal, "SIGPIPE") else EXIT_FAILED
    except OSError as exc:  # one nothing planned for: stdout itself (a farm log on a full disk), ...
        cause = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        try:
            _say(f"ERROR: {cause}")
        except OSError:  # it was stdout: say so where it can still be read
            _silence_stdout()
            print(f"ERROR: cannot write to stdout: {cause}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except Exception as exc:  # a bug: its own exit status, not 1 (the work failed), so a farm can tell them apart
        traceback.print_exc(file=sys.stderr)
        _say(f"ERROR: internal error in LBSMatte {__version__}: {type(exc).__name__}: {exc} (a bug, not the "
             "input: please report it with the traceback on stderr)", _notes_stream(args))
        return EXIT_INTERNAL
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if threads is not None:
            threads.restore()
        if not exiting:  # the caller's logging as it was
            root.setLevel(root_before[0])
            root.handlers[:] = root_before[1]


@contextlib.contextmanager
def _uncollected(exiting: bool) -> Iterator[None]:
    """Python's cyclic garbage collector off for a command that reads no image (``weights``,
    ``fingerprint``: the Nuke node runs fingerprint, a process of its own, at each Compute).

    The torch they import makes some 200,000 objects, which the collector walked again and again
    as they piled up, and the interpreter's exit walked and freed them one by one: the
    fingerprint process took 3.2 s, 2.4 s without both (whole process, medians of 7 pairs). On the
    way out what exists is frozen (:func:`gc.freeze`): ``exiting`` (the process ends next) leaves
    it so, for the exit; otherwise (``main`` called in-process, the tests) it goes back to the
    oldest generation (:func:`gc.unfreeze`; not walked all at once as young objects by the next
    collection) and the caller's collector is enabled or not as it was. Not for the commands that
    read images: left frozen, OpenImageIO's objects are never freed, and its bindings (nanobind)
    print a 'leaked instances' report on stderr as the process ends; nor did running ``matte``'s
    start-up without collections make it faster."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if not exiting:
            gc.unfreeze()
        if enabled:
            gc.enable()


class _ThreadFitting:
    """torch's CPU threads fitted to the job (:func:`_fit_threads`) at most once in a :func:`main`
    call, when its command is about to run torch, and put back as ``main`` returns."""

    def __init__(self) -> None:
        self._fitted = False
        self._restore: Callable[[], None] | None = None

    def fit(self) -> None:
        if not self._fitted:
            self._fitted = True
            self._restore = _fit_threads()

    def restore(self) -> None:
        if self._restore is not None:
            self._restore()
            self._restore = None


def _fit_threads() -> Callable[[], None] | None:
    """Fit torch's CPU threads to what the job was given, before a command that runs the networks,
    the refinement or a training: under a cgroup CPU quota (Docker ``--cpus``, a farm manager's
    cgroup) the quota's count (:func:`core.pipeline.job_threads`; torch counts the cores of the
    node, which a quota leaves visible), unless ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` holds a
    count, which wins (as ``train --threads`` does, set later). An ``OMP_NUM_THREADS`` that holds
    none (``0``, ``abc``, empty), which OpenMP and torch ignore, is said as a ``WARNING:`` line.
    OpenImageIO's threads (reading and writing the frames, OpenEXR's compression) are held to the
    job's CPUs too (:func:`core.io.fit_threads`, :func:`core.pipeline.job_cpus`). Returns what puts
    the caller's counts back (``main`` called in-process), or None where nothing changed."""
    try:
        import torch

        from core.io import fit_threads as fit_io_threads
        from core.pipeline import env_threads, job_cpus, job_threads
    except ImportError:  # no torch: the command says so itself
        return None
    previous = torch.get_num_threads()
    threads = job_threads()
    given = os.environ.get("OMP_NUM_THREADS")
    if given is not None and env_threads() is None:  # an empty one too: OMP_NUM_THREADS=$NSLOTS, NSLOTS unset
        _say(f"WARNING: OMP_NUM_THREADS={given!r} is not a whole number >= 1, and torch ignores it: running "
             f"{threads or previous} CPU thread(s) (one per CPU this job may use); set it to the job's cores")
    restore_io = fit_io_threads(job_cpus())  # OpenImageIO counts the node's cores, not the job's
    if threads is None:
        return restore_io
    torch.set_num_threads(threads)

    def restore() -> None:
        torch.set_num_threads(previous)
        if restore_io is not None:
            restore_io()
    return restore


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
