"""``lbsmatte train`` and ``lbsmatte finetune``.

train
    Trains the three networks from scratch, in order, on composites made on the fly from the
    alphamatting objects, procedural foregrounds and background photographs (SPEC §7), and
    writes a weights bundle when every stage has reached its step count. Stops cleanly at
    ``--max-minutes`` (or SIGTERM); running the same command again continues from the checkpoints
    in ``--run-dir``.
finetune
    Continues training a bundle's networks on a show's own plates and mattes (patent para. 0056)
    and writes a new bundle whose manifest names its parent.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from core.errors import InputError, LBSMatteError, OutputError, WeightsError

ROLE_ORDER = ("background", "foreground", "alpha")


def default_data_root() -> Path:
    """``$LBSMATTE_DATA``, else the ``shared/data`` folder beside the repository."""
    import os

    env = os.environ.get("LBSMATTE_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _steps(text: str) -> dict[str, int]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--steps must be integers like 3000,3000,4000, got {text!r}") from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3 or min(values) < 0:
        raise argparse.ArgumentTypeError(f"--steps takes one or three non-negative integers (BG,FG,alpha), got {text!r}")
    return dict(zip(ROLE_ORDER, values, strict=True))


def _positive_number(flag: str) -> Any:
    """An argparse type for ``flag``: a finite number > 0."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{flag} takes a number > 0, not {text!r}")
        return value

    return parse


def _crop(text: str) -> int:
    """``--crop``: a whole number of pixels, a multiple of 32 (the networks halve a crop up to five
    times; the sampling networks at half resolution need multiples of 16, the matting network of 16)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 32 or value % 32:
        raise argparse.ArgumentTypeError(f"--crop takes a whole number of pixels, a multiple of 32 (32, 64, ... 192), "
                                         f"not {text!r}")
    return value


def _alpha_tolerance(text: str) -> float:
    """``--alpha-tolerance``: a number from 1/1024 (mattes are read to within that) up to below 0.5
    (beyond it nothing would be unknown; :class:`core.training.data.ShowDataset`'s range)."""
    from core.training.data import ALPHA_DUST

    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not ALPHA_DUST <= value < 0.5:  # NaN and inf too
        raise argparse.ArgumentTypeError(
            f"--alpha-tolerance takes a number from {ALPHA_DUST} (1/1024, the least: mattes are read to within it) "
            f"up to below 0.5, not {text!r}")
    return value


def _objects(text: str) -> tuple[str, ...]:
    return tuple(o.strip() for o in text.split(",") if o.strip())


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    from core.cli import device_argument, whole_number_at_least

    if command == "finetune":
        parser.add_argument("--from", dest="parent", required=True, metavar="BUNDLE", help="bundle name or folder to start from")
        parser.add_argument("--data", required=True, type=Path, help="show data: image/, alpha/ [trimap/ fg/ bg/] (SPEC §9 layout)")
        parser.add_argument("--steps", type=_steps, default=_steps("300,300,500"), help="steps per stage: BG,FG,alpha (default 300,300,500)")
        parser.add_argument("--lr", type=_positive_number("--lr"), default=2e-5, help="Adam learning rate (default 2e-5)")
        parser.add_argument("--colour", default="auto",
                            help="encoding of the show's files: auto (default: float files such as EXR scene-linear, "
                                 "8/16-bit files sRGB, as matte reads them), srgb, linear or an OCIO name")
        parser.add_argument("--alpha-tolerance", type=_alpha_tolerance, default=None, metavar="T",
                            help="where trimaps are drawn from the mattes, alpha within T of 0 or 1 counts as known "
                                 "background or foreground (default 0.0216, 5.5/255: a key's haze is known); "
                                 "0.001 keeps a faint veil (smoke, glass at alpha 0.01) unknown, to be learnt. "
                                 "A continued run keeps the rule its folder records")
    else:
        parser.add_argument("--data", type=Path, default=None, help="data root with alphamatting/ and backgrounds/ (default: $LBSMATTE_DATA or ../shared/data)")
        parser.add_argument("--size", default=None, metavar="SIZE",
                            help="network sizes: small (default), medium or paper, or one per network BG,FG,alpha "
                                 "(e.g. small,small,paper); with --from, a network whose size differs from the "
                                 "bundle's starts anew at that size and the others continue")
        parser.add_argument("--steps", type=_steps, default=_steps("3000,3000,4000"), help="steps per stage: BG,FG,alpha")
        parser.add_argument("--lr", type=_positive_number("--lr"), default=2e-4, help="Adam learning rate (default 2e-4)")
        parser.add_argument("--procedural", type=float, default=0.5, help="fraction of procedural foregrounds (default 0.5)")
        parser.add_argument("--from", dest="parent", default=None, metavar="BUNDLE",
                            help="continue training this bundle's networks on the same composites (their configs, "
                                 "except where --size asks for another size)")
        parser.add_argument("--real-photos", type=float, default=0.0, metavar="FRACTION",
                            help="fraction of batches cut from the training objects' own photographs, with their real "
                                 "backgrounds, instead of composites (default 0)")
        parser.add_argument("--validation", choices=["composites", "photos"], default="composites",
                            help="validation batch: composites of the held-out objects over held-out photos (default), "
                                 "or crops of the held-out objects' own photographs with their own trimaps")
        parser.add_argument("--hold-out", type=_objects, default=None, metavar="OBJECTS",
                            help="alphamatting objects kept out of training, comma-separated (default: the validation "
                                 "objects, core.training.data.VALIDATION_OBJECTS; '' trains on all 18; 'all' keeps every one out, "
                                 "for networks trained on procedural foregrounds alone, honest for any fold)")
        parser.add_argument("--wide-trimaps", type=float, default=0.0, metavar="FRACTION",
                            help="fraction of composites whose trimap is a wide, uneven band like a hand-drawn one "
                                 "(up to 48 px deep) instead of a 1-19 px dilation (default 0)")
        parser.add_argument("--rendered", type=Path, default=None, metavar="DIR",
                            help="foregrounds rendered in Blender with exact alpha (tools/render_foregrounds.py), "
                                 "drawn for --rendered-fraction of the training composites (not for validation)")
        parser.add_argument("--rendered-fraction", type=float, default=0.3, metavar="FRACTION",
                            help="with --rendered: fraction of training foregrounds taken from the renders (default 0.3)")
        parser.add_argument("--sampling-scale", type=float, default=None, metavar="SCALE",
                            help="run the background and foreground networks at this fraction of the resolution "
                                 "(1/k: 1, 0.5, 0.25); stored in the bundle and used at inference too")
    parser.add_argument("--out", required=True, type=Path, help="bundle folder to write when training is complete")
    parser.add_argument("--name", default=None, help="bundle name (default: the --out folder's name)")
    parser.add_argument("--description", default=None)
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="checkpoints, log.jsonl and losses.png (default runs/<name>, or runs/<name>-checkpoints "
                             "when --out is runs/<name> itself)")
    parser.add_argument("--result-weight", type=float, default=0.0, metavar="W",
                        help="also train the networks for the refined alpha, F and B (through the differentiable "
                             "refinement), with this weight (default 0: off); the background network only with "
                             "--from or finetune, through the bundle's foreground network")
    parser.add_argument("--result-refinement", default=None, metavar="BUNDLE",
                        help="the refinement the result loss runs: that bundle's (its KNN term, rounds, levels...; "
                             "default: the refinement's defaults)")
    parser.add_argument("--result-network-weight", type=float, default=None, metavar="MU",
                        help="the matting network's alpha as a data term of that refinement, with weight MU "
                             "(its network_weight): what lets the result loss reach the matting network when the "
                             "refinement solves the layers for alpha 0.5")
    parser.add_argument("--decay-steps", type=int, default=0, metavar="K",
                        help="lower the learning rate linearly to 0 over each stage's last K steps (default 0: "
                             "constant rate)")
    parser.add_argument("--batch", type=int, default=8, help="crops per batch (default 8)")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="processes drawing batches ahead of the step (for a GPU, which outruns one CPU "
                             "core drawing composites); default 0: drawn in the training process")
    parser.add_argument("--backgrounds", type=int, default=4, help="backgrounds per foreground in a batch (default 4)")
    parser.add_argument("--crop", type=_crop, default=192, help="crop size in pixels, a multiple of 32 (default 192)")
    parser.add_argument("--max-minutes", type=_positive_number("--max-minutes"), default=None,
                        help="stop cleanly (checkpointed) after this long")
    parser.add_argument("--device", default="auto", type=device_argument, help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=whole_number_at_least(1, "--threads", "a whole number >= 1"), default=None,
                        help="CPU threads for torch")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="the networks' forward passes (bf16: autocast, about 1.5-3x faster on CPUs with "
                             "AVX512-BF16 or AMX; losses and weights stay float32; default fp32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ema", type=float, default=0.999, metavar="DECAY",
                        help="each stage keeps an exponential moving average of its weights with this decay "
                             "(ramped up over the first steps) and ships it; 0 ships the last step's weights")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    parser.add_argument("--storage", choices=["float32", "float16"], default="float32",
                        help="dtype of the weights on disk (float16 halves the bundle; they load as float32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _overlap(a: Path, b: Path) -> bool:
    """Whether two folders are one, or one lies inside the other."""
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents


def run_folder(args: argparse.Namespace) -> Path:
    """Where a training run keeps its checkpoints, ``log.jsonl`` and ``losses.png``: ``--run-dir``,
    else ``runs/<name>`` (``--name``, else the name of ``--out``) — or ``runs/<name>-checkpoints``
    where that would be ``--out`` itself (``--out runs/my-bundle``): the bundle is written to
    ``--out`` only when every stage has finished, and a folder already there (the checkpoints) would
    be refused after hours of training. Folders that still overlap are refused by name now."""
    out = Path(args.out)
    run = args.run_dir
    if run is None:
        run = Path("runs") / (args.name or out.name)
        if _overlap(run, out):
            run = run.with_name(run.name + "-checkpoints")
    if _overlap(run, out):
        raise InputError(f"the checkpoints' folder {run} and the bundle's --out {out} overlap: give each a folder "
                         "of its own (--run-dir)")
    return Path(run)


#: The files a training run writes in its folder (:func:`run_folder`), replacing any there.
RUN_FILES = ("settings.json", "source.json", "log.jsonl", "losses.png",
             *(f"{role}.{ext}" for role in ROLE_ORDER for ext in ("safetensors", "json")))


def _not_a_runs(run_dir: Path) -> list[str]:
    """The names of :data:`RUN_FILES` in ``run_dir`` when no training run wrote them: a
    ``--run-dir`` naming a folder of the user's (``--run-dir .`` in a project holding its own
    ``settings.json``) had them replaced, and a ``background.json`` there that is not JSON
    stopped the run with a traceback. A run's folder holds its ``settings.json`` (written as the
    run starts, just after ``source.json``) or a checkpoint's ``<role>.json``. Empty when nothing
    would be replaced."""
    there = [name for name in RUN_FILES if (run_dir / name).exists() or (run_dir / name).is_symlink()]

    def record(name: str) -> dict[str, Any]:
        try:
            with open(run_dir / name, "rb") as handle:
                value = json.loads(handle.read(16_000_000).decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    if not there or {"steps", "lr", "batch_size"} <= record("settings.json").keys():
        return []
    if record("source.json").get("command") in ("train", "finetune"):  # written just before settings.json
        return []
    if any({"step", "optimizer"} <= record(f"{role}.json").keys() for role in ROLE_ORDER):
        return []
    return there


#: Settings a resumed run may change: how long it goes on, where and on how many threads it runs.
RESUMABLE = ("steps", "max_minutes", "threads", "device", "checkpoint_every", "validate_every")
#: A stopped run (``--max-minutes``, SIGTERM): its checkpoints are kept, the same command continues it.
EXIT_STOPPED = 3


def run(args: argparse.Namespace) -> int:
    """``lbsmatte train`` / ``finetune``: 0 the bundle written; 1 a failure (a loss that stopped
    being finite, unreadable weights); 2 a usage error (a bad value, data that cannot be used),
    found before training starts; 3 stopped early (``--max-minutes``, SIGTERM), checkpointed: the
    same command continues."""
    from core.cli import exit_code

    try:
        return _run(args)
    except InputError as exc:
        print(f"ERROR: {exc}", flush=True)
        return exit_code(exc)


#: What a run's batches are drawn from, beside --data and --from: recorded in ``source.json`` and
#: refused when a continuation asks for another (a fold continued with another --hold-out would
#: train on the objects it holds out, and its bundle would record only the last).
RECIPE = ("hold_out", "procedural", "real_photos", "wide_trimaps", "rendered", "rendered_fraction",
          "sampling_scale", "colour", "files", "alpha_tolerance")


def _recipe(args: argparse.Namespace, init: dict[str, Any] | None, settings: Any) -> dict[str, Any]:
    """The :data:`RECIPE` values of this command (the effective ones: the held-out objects, the
    scale the sampling networks run at)."""
    if args.command == "finetune":
        from core.training.data import show_files_sha256

        return {"colour": args.colour, "files": show_files_sha256(args.data),
                "alpha_tolerance": _show_alpha_tolerance(run_folder(args), getattr(args, "alpha_tolerance", None))}
    from core.nets import network_config
    from core.nets.config import role_sizes
    from core.training.data import VALIDATION_OBJECTS

    held_out = VALIDATION_OBJECTS if getattr(args, "hold_out", None) is None else args.hold_out
    rendered = getattr(args, "rendered", None)
    # A bad value is named as such, before a continuation is compared with the recorded one.
    for flag, value in (("--real-photos", getattr(args, "real_photos", 0.0)), ("--wide-trimaps", getattr(args, "wide_trimaps", 0.0))):
        if not 0.0 <= float(value or 0.0) <= 1.0:
            raise InputError(f"{flag} must be between 0 and 1, not {float(value)}")
    configs = ({role: init[role].config for role in ("background", "foreground")} if init is not None else
               {role: network_config(role, size) for role, size in role_sizes(settings.size).items()})
    scale = {role: float(configs[role].get("scale", 1.0)) for role in ("background", "foreground")}
    return {"hold_out": list(held_out), "procedural": float(args.procedural),
            "real_photos": float(getattr(args, "real_photos", 0.0) or 0.0),
            "wide_trimaps": float(getattr(args, "wide_trimaps", 0.0) or 0.0),
            "rendered": str(Path(rendered).resolve()) if rendered is not None else None,
            "rendered_fraction": float(args.rendered_fraction) if rendered is not None else None,
            "sampling_scale": scale}


def _show_alpha_tolerance(run_dir: Path, asked: float | None) -> float:
    """How close to 0 or 1 a fine-tune reads its mattes' alpha as known where it draws trimaps
    (:class:`core.training.data.ShowDataset`'s ``alpha_tolerance``): ``asked``
    (``--alpha-tolerance``), else :data:`core.trimap.ALPHA_NOISE` for a new run, so that a keyed
    matte's haze of 1-5/255 is background. A run continued goes on with the rule its folder's
    ``source.json`` records, and a folder begun before the rule was recorded with the one it was
    begun with, :data:`core.training.data.ALPHA_DUST`, saying so: its checkpoints go on learning
    from the trimaps they began with, and its bundle says so. ``asked`` otherwise than that rule is
    refused, naming both; so is a folder of checkpoints without a ``source.json`` (from before
    LBSMatte recorded it, or copied without it), where no rule can be known, unless ``asked``
    names one."""
    from core.training.data import ALPHA_DUST
    from core.training.train import stage_progress
    from core.trimap import ALPHA_NOISE

    new = ALPHA_NOISE if asked is None else asked  # a new run's rule
    if not any((p.get("step") or 0) > 0 for p in stage_progress(run_dir).values()):
        return new
    record = run_dir / "source.json"
    if not record.exists() and not record.is_symlink():
        if asked is None:
            raise InputError(
                f"the checkpoints in {run_dir} have no source.json beside them, which records how close to 0 or 1 "
                "their mattes' alpha counted as known where trimaps were drawn: fine-tunes begun before it was "
                f"recorded read within 1/1024, later ones within 5.5/255 unless told otherwise, and going on with "
                "another rule would train the later steps on another idea of what is known; to continue them name "
                f"the one they began with, --alpha-tolerance {ALPHA_DUST} (1/1024) for a run begun before the "
                f"rule was recorded or --alpha-tolerance {ALPHA_NOISE} (5.5/255) for a later one, or give this run "
                f"a folder of its own (--run-dir), or remove {run_dir} to start it again")
        logging.getLogger(__name__).info(
            "continuing the checkpoints in %s, which have no source.json, with --alpha-tolerance %s as asked",
            run_dir, asked)
        return asked
    try:
        before = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        before = None  # _check_resume says what is wrong with a record that cannot be read
    if not isinstance(before, dict) or before.get("command") != "finetune":
        return new  # another run's folder: _check_resume refuses it
    value = before.get("alpha_tolerance", ALPHA_DUST)
    if not (isinstance(value, float) and ALPHA_DUST <= value < 0.5):
        return new  # _check_resume names the recorded value as differing
    if asked is not None and asked != value:
        raise InputError(
            f"--alpha-tolerance {asked}: the checkpoints in {run_dir} drew their trimaps with alpha within {value} "
            f"of 0 or 1 counting as known ({record}"
            f"{'' if 'alpha_tolerance' in before else ', begun before the rule was recorded'}); continue them with "
            f"--alpha-tolerance {value} (or without the flag), or give this run a folder of its own (--run-dir), "
            f"or remove {run_dir} to start it again")
    if "alpha_tolerance" not in before:
        logging.getLogger(__name__).info(
            "continuing %s with alpha within 1/1024 of 0 or 1 counting as known where trimaps are drawn, as it "
            "began before the rule was recorded (a new run reads within 5.5/255)", run_dir)
    return value


def trained_objects(manifest: dict[str, Any]) -> set[str]:
    """The names of the objects a bundle's networks have been trained on, as its manifest records
    them: its training composites' objects (``training.data.objects``), the photographs of its
    real-photo crops (``real_photos.plates``) and a fine-tune's plates (``plates``), and those of
    every bundle it was trained on from (``training.continued_from``). Empty where nothing is recorded."""
    # ``training`` is free-form (another vendor's bundle may say ``"data": "show plates v3"``):
    # what is not in the shape LBSMatte writes records no objects.
    def table(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    def names(value: Any) -> set[str]:
        if isinstance(value, str):  # one name, not its letters
            return {value}
        return {str(n) for n in value} if isinstance(value, list) else set()

    seen: set[str] = set()
    training = table(manifest.get("training"))
    while training:
        data = table(training.get("data"))
        seen |= names(data.get("objects")) | names(data.get("plates"))
        seen |= names(table(data.get("real_photos")).get("plates"))
        training = table(table(training.get("continued_from")).get("training"))
    return seen


def _check_from_held_out(args: argparse.Namespace, parent: Any, kept: list[str]) -> None:
    """Refuse ``--hold-out`` objects that the ``--from`` bundle's ``kept`` networks were trained on:
    a network continued from it has seen them, and the new bundle's manifest would name them as
    held out (a cross-validation fold started from ``default``, which saw all 18, scores its
    held-out objects with networks that learnt them)."""
    held_out = getattr(args, "hold_out", None)
    if args.command == "finetune" or held_out is None or not kept:
        return  # the default validation objects are a validation loss's, not a claim about the bundle
    if tuple(held_out) == ("all",):
        from core.training.data import object_names

        held_out = object_names((args.data or default_data_root()) / "alphamatting")
    seen = sorted(set(held_out) & trained_objects(parent.manifest))
    if seen:
        raise InputError(f"--hold-out {','.join(held_out)}: the --from bundle {parent.path} was trained on "
                         f"{', '.join(seen)} (its manifest's training data), and its {', '.join(kept)} "
                         f"network{'s' if len(kept) > 1 else ''} would carry {'them' if len(seen) > 1 else 'it'} into "
                         "this one: train from scratch, or from a bundle trained without them")


def _check_resume(run_dir: Path, settings: Any, source: dict[str, Any]) -> None:
    """Refuse to continue checkpoints in ``run_dir`` that another run made: other data, another
    starting bundle, other settings (but :data:`RESUMABLE`). Each checkpoint folder records both
    (``settings.json``, ``source.json``), so a later run with the same ``--out`` name cannot
    silently ship an earlier run's networks."""
    from core.training.train import stage_progress

    if not any((p.get("step") or 0) > 0 for p in stage_progress(run_dir).values()):
        return
    def recorded_json(path: Path) -> dict[str, Any]:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            record = exc
        if not isinstance(record, dict):
            raise InputError(f"{path} cannot be read ({record}): it records what run made the checkpoints in "
                             f"{run_dir}; give this run a folder of its own (--run-dir), or remove {run_dir} to "
                             "start it again")
        return record

    differences = []
    recorded_source = run_dir / "source.json"
    if recorded_source.is_file():
        before = recorded_json(recorded_source)
        now_source = json.loads(json.dumps(source))
        # The data recipe (RECIPE) is compared where the folder records it (folders written before
        # it was recorded continue as they did).
        # A fine-tune's data set moved (copied to a farm node's local disk, the share mounted at
        # another path there) is the same data set when every file is: it was refused as "another
        # run" by its folder's name alone, though its checkpoints had learnt from those very bytes.
        moved = (now_source.get("command") == "finetune" and before.get("data") != now_source.get("data")
                 and isinstance(before.get("files"), dict) and before.get("files") == now_source.get("files"))
        differences += [_difference(k, before.get(k), v) for k, v in now_source.items()
                        if (k in before or k not in RECIPE) and before.get(k) != v and not (moved and k == "data")]
        if moved and not differences:
            logging.getLogger(__name__).info(
                "continuing %s on the data set the checkpoints were made from, now in %s (was %s): the same files",
                run_dir, now_source["data"], before.get("data"))
    recorded = run_dir / "settings.json"
    if recorded.is_file():
        before = recorded_json(recorded)
        now = json.loads(json.dumps(settings.to_json()))
        differences += [f"{k} {before.get(k)!r}, now {now[k]!r}" for k in now
                        if k not in RESUMABLE and k in before and before[k] != now[k]]
    if differences:
        raise InputError(f"{run_dir} holds the checkpoints of another run ({'; '.join(differences)}): give this run "
                         f"a folder of its own (--run-dir), or remove {run_dir} to start it again")


def _difference(key: str, before: Any, now: Any) -> str:
    """A recorded setting and this command's, in words; for the data set's files (a table of
    hashes) the files added, removed and changed, a few of each."""
    if key != "files" or not (isinstance(before, dict) and isinstance(now, dict)):
        return f"{key} {before!r}, now {now!r}"
    changes = (("added", sorted(now.keys() - before.keys())), ("removed", sorted(before.keys() - now.keys())),
               ("changed", sorted(k for k in now.keys() & before.keys() if now[k] != before[k])))
    return f"{key} of the data set since the checkpoints were made: " + "; ".join(
        f"{how} {', '.join(names[:4] if len(names) > 5 else names)}{f' and {len(names) - 4} more' if len(names) > 5 else ''}"
        for how, names in changes if names)


def _check_name_free(name: str, out: Path) -> None:
    """Refuse a bundle name that a bundle elsewhere already has (the packaged ``default``, one on
    ``LBSMATTE_WEIGHTS_PATH``): bundles are picked by name, and the first found wins, so the new
    one would either never be picked or silently take the place of the user's own under
    ``--weights NAME`` and the Nuke node's knob. The bundle at ``--out`` itself (replaced with
    ``--overwrite``) is no clash."""
    from core.weights import find_bundles

    for bundle in find_bundles():
        if bundle.name == name and not _overlap(bundle.path, out):
            raise InputError(f"a weights bundle named {name!r} already exists ({bundle.path}): bundles are picked by "
                             f"name, so --weights {name} would take one of the two; give this one another --name "
                             "(or another --out folder name)")


def _run(args: argparse.Namespace) -> int:
    from core.cli import log_to_stderr
    from core.pipeline import cpu_has_bf16, resolve_device
    from core.training.train import TrainSettings, stage_progress, train, write_json
    from core.weights import check_destination, check_name, check_not_packaged

    log_to_stderr(logging.INFO)
    name = args.name or args.out.name
    try:  # before the name makes a folder (runs/<name>): one like '../x' would lie outside runs/
        check_name(name)
    except LBSMatteError as exc:
        raise InputError(f"{'--name' if args.name else f'the --out folder name of {args.out}'}: {exc}") from None
    if args.out.name.startswith("."):  # the search skips hidden folders (a killed save's leftovers)
        raise InputError(f"--out {args.out}: a folder whose name begins with '.' is hidden, never found in a folder "
                         "of bundles on LBSMATTE_WEIGHTS_PATH; give it a name without the leading '.'")
    run_dir = run_folder(args)
    try:  # the shipped bundles are read-only, --overwrite or not
        check_not_packaged(args.out)
        check_not_packaged(run_dir)
    except LBSMatteError as exc:
        raise InputError(str(exc)) from None
    try:  # a file or a folder that is not a bundle is refused now, not after the training, and
        # named as such before --overwrite is suggested (which would only be refused then)
        check_destination(args.out, True)
    except LBSMatteError as exc:
        raise InputError(str(exc)) from None
    if args.out.exists() and not args.overwrite:
        raise InputError(f"bundle folder {args.out} already exists; pass --overwrite to replace it")
    if (run_dir / "manifest.json").is_file():
        # A bundle's folder (the --from bundle's, say: 'train --out runs/base' then 'finetune --from
        # runs/base --out .../base' checkpointed in runs/base): the checkpoints, <role>.safetensors,
        # replaced its network files and the bundle no longer loaded.
        raise InputError(f"the checkpoints' folder {run_dir} holds a manifest.json, a weights bundle's folder: the "
                         "checkpoints (background.safetensors, ...) would replace its network files; give the run a "
                         "folder of its own (--run-dir)")
    theirs = _not_a_runs(run_dir)
    if theirs:
        raise InputError(f"the checkpoints' folder {run_dir} holds {', '.join(theirs)}, which no LBSMatte training "
                         "wrote there and the run would replace; give the run a folder of its own (--run-dir)")
    _check_name_free(name, args.out)
    data = getattr(args, "data", None)
    if data is not None and _overlap(args.out, Path(data)):
        raise InputError(f"--out {args.out} and --data {data} overlap: the bundle would be written into the data set "
                         "(or the data set replaced); give it a folder of its own")
    if data is not None and _overlap(run_dir, Path(data)):
        raise InputError(f"the checkpoints' folder {run_dir} and --data {data} overlap: the run's checkpoints, "
                         "log.jsonl and losses.png would be written into the data set; give it a folder of its "
                         "own (--run-dir)")
    from core.io import check_creatable_dir

    try:  # both written only after the training: a folder that cannot be written is refused now
        check_creatable_dir(run_dir)
        check_creatable_dir(args.out.parent)
    except OutputError as exc:
        raise InputError(str(exc)) from None
    device = resolve_device(args.device)
    if args.precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        logging.getLogger(__name__).warning(
            "--precision bf16: this CPU has no native bfloat16 (AVX512-BF16 or AMX), so torch emulates it; "
            "on such a CPU (2-core AMD EPYC, AVX2 only) a training step took about 9x as long as with fp32: "
            "pass --precision fp32 here")
    settings = TrainSettings(
        size=getattr(args, "size", None) or "small", steps=args.steps, lr=args.lr, batch_size=args.batch,
        n_backgrounds=args.backgrounds, crop=args.crop, max_minutes=args.max_minutes, seed=args.seed,
        device=str(device), threads=args.threads, ema=args.ema or None, result_weight=args.result_weight,
        precision=args.precision, decay_steps=args.decay_steps,
        result_refinement=_result_refinement(args),
    )
    if args.batch < 2:  # a batch of one leaves BatchNorm one value a channel at the coarsest level
        raise InputError(f"--batch must be 2 or more (the networks' batch normalisation needs two crops a step), "
                         f"not {args.batch}")
    if getattr(args, "workers", 0) < 0:
        raise InputError(f"--workers must be 0 or more, not {args.workers}")
    if getattr(args, "workers", 0):
        warn_oversubscribed_workers(int(args.workers))
        # numba's default threading layer here is GNU OpenMP, and a process that has used it kills
        # every child it forks ("fork() called from a process already using GNU OpenMP"): the
        # worker processes. pymatting's kernels (the objects' colours) then use numba's own pool.
        os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    if getattr(args, "size", None):
        from core.nets.config import role_sizes

        try:
            role_sizes(args.size)
        except WeightsError as exc:
            raise InputError(f"--size: {exc}") from None
    if settings.decay_steps < 0:
        raise InputError(f"--decay-steps must be 0 or more, not {args.decay_steps}")
    if not (math.isfinite(settings.result_weight) and settings.result_weight >= 0):
        raise InputError(f"--result-weight must be a number >= 0, not {args.result_weight}")
    if settings.ema is not None and not 0.0 < settings.ema < 1.0:
        raise InputError(f"--ema must be a decay between 0 and 1 (0 turns averaging off), not {args.ema}")
    init = None
    parent = None
    if args.parent is not None:
        from core.weights import load_bundle

        parent = load_bundle(args.parent)
        if _overlap(args.out, parent.path):
            raise InputError(f"--out {args.out} is the --from bundle {parent.path} (or overlaps it): the bundle a "
                             "run starts from is never replaced; give --out a folder of its own")
        init = parent.load_networks("cpu")
        for net in init.values():
            net.train()
        sizes = [str(parent.config(role).get("size", "custom")) for role in ROLE_ORDER]
        kept = list(ROLE_ORDER)  # the networks that continue from the bundle's
        asked = getattr(args, "size", None)
        if asked:
            import torch

            from core.nets import build_network, network_config
            from core.nets.config import role_sizes

            for index, (role, size) in enumerate(role_sizes(asked).items()):
                if size != sizes[index]:
                    # A network of another size cannot continue from the bundle's: it starts anew.
                    torch.manual_seed(settings.seed + index)
                    init[role] = build_network(network_config(role, size)).train()
                    sizes[index] = size
                    kept.remove(role)
        _check_from_held_out(args, parent, kept)
        settings.size = sizes[0] if len(set(sizes)) == 1 else ",".join(sizes)
    if getattr(args, "sampling_scale", None) is not None:
        init = _rescaled(init, settings, args.sampling_scale)
    source = {"command": args.command, "data": str(Path(data).resolve()) if data is not None else None,
              "from": parent.manifest_sha256() if parent is not None else None, **_recipe(args, init, settings)}
    _check_resume(run_dir, settings, source)
    if args.command == "finetune":
        batches, validation, data_summary = _show_data(args, settings, source["alpha_tolerance"])
    else:
        batches, validation, data_summary = _composite_data(args, settings)

    started = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "source.json", source)
    nets = train(run_dir, batches, settings, init=init, validation=validation, progress=not args.no_progress)
    progress = stage_progress(run_dir)
    unfinished = [r for r in ROLE_ORDER if (progress.get(r) or {}).get("step", 0) < settings.steps[r]]
    if unfinished:
        print(f"training stopped before the end ({', '.join(unfinished)} unfinished); "
              f"run the same command again to continue from {run_dir}")
        return EXIT_STOPPED
    from core.weights import inherited_refinement, installed_default, save_bundle

    training = _training_summary(run_dir, settings, data_summary, progress, time.time() - started)
    if parent is not None:
        # What the starting networks had already been through, so the history is not lost.
        training["continued_from"] = {"name": parent.name, "training": parent.manifest.get("training", {})}
    if args.description:
        description = args.description
    elif args.command == "finetune" and parent is not None:
        description = f"fine-tuned from {parent.name} on {Path(args.data).resolve()}"
    elif parent is not None:
        description = f"{settings.size} networks of {parent.name}, trained further on composites of real and procedural foregrounds"
    else:
        description = f"{settings.size} networks trained on composites of real and procedural foregrounds"
    # The refinement the new networks run with until a cross-validation of their own chooses it:
    # that of the bundle they were trained on from, else the installed default's (both chosen by
    # cross-validation for networks of this recipe). Without one the bundle would run the module's
    # older defaults (3 rounds, no KNN term, no levels): on the demo, the shipped networks score
    # SAD 9.11 with those against 4.14 with the settings their bundle records.
    source = parent if parent is not None else installed_default()
    try:
        bundle = save_bundle(
            args.out, nets, name=name, description=description, parent=parent, training=training,
            trained=True, overwrite=args.overwrite, storage=args.storage,
            refinement=inherited_refinement(source) if source is not None else None,
            data_terms=_data_terms(args, data_summary, parent),
        )
    except (OutputError, WeightsError) as exc:  # a full disk, or --out taken or given files of the user's
        # meanwhile: the training is not lost, its checkpoints are there
        print(f"ERROR: {exc}; the trained networks are kept in {run_dir}: run the same command again "
              "to write the bundle", flush=True)
        return 1
    print(f"wrote bundle {bundle.name!r} to {bundle.path}")
    return 0


def _data_terms(args: argparse.Namespace, data: dict[str, Any], parent: Any) -> dict[str, Any] | None:
    """The new bundle's ``"training_data_terms"``: for ``train`` on the shared data set its terms
    (with those of a ``--from`` bundle it went on from); otherwise ``None``, for ``save_bundle`` to
    carry a parent's on (a show's own data's terms LBSMatte cannot know)."""
    from core.training.terms import is_shared_data, shared_data_terms
    from core.weights import inherited_data_terms

    objects = list(data.get("objects") or [])
    if args.command != "train" or not is_shared_data(Path(data.get("root", "")), objects):
        return None
    terms = shared_data_terms(objects)
    carried = inherited_data_terms(parent) if parent is not None else None
    if carried is not None:
        terms["summary"] += " Started from " + carried["summary"].replace(
            " The terms of the data it was trained further on apply too (not recorded by LBSMatte).", "")
        terms["parent"] = carried["parent"]
    return terms


def _result_refinement(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--result-refinement`` and ``--result-network-weight`` as the fields of a
    :class:`core.compositing.Settings`, or ``None``."""
    from dataclasses import asdict, replace

    from core.compositing import Settings

    chosen = getattr(args, "result_refinement", None)
    mu = getattr(args, "result_network_weight", None)
    if chosen is None and mu is None:
        return None
    if chosen is not None:
        from core.pipeline import refinement_settings
        from core.weights import load_bundle

        settings = refinement_settings(load_bundle(chosen))
    else:
        settings = Settings()
    if mu is not None:
        if not (math.isfinite(mu) and mu >= 0):
            raise InputError(f"--result-network-weight must be a number >= 0, not {mu}")
        settings = replace(settings, network_weight=float(mu))
    return asdict(settings)


def _rescaled(init: dict[str, Any] | None, settings: Any, scale: float) -> dict[str, Any]:
    """The networks to start from, with the sampling networks set to run at ``scale``.

    The weights do not depend on the scale, so a bundle's sampling networks are rebuilt with the
    new config and keep their weights; without ``--from``, new networks are built at that scale.
    """
    from core.nets import build_network
    from core.training.train import initial_networks

    init = initial_networks(init, settings)
    out = dict(init)
    for role in ("background", "foreground"):
        config = dict(init[role].config, scale=float(scale))
        try:
            net = build_network(config)
        except Exception as exc:
            raise InputError(f"--sampling-scale {scale}: {exc}") from exc
        net.load_state_dict(init[role].state_dict())
        out[role] = net.train()
    return out


def _training_summary(
    run_dir: Path, settings: Any, data: dict[str, Any], progress: dict[str, Any], seconds: float
) -> dict[str, Any]:
    from core.training.train import read_log

    final: dict[str, Any] = {}
    train_losses: dict[str, list[float]] = {}
    for record in read_log(run_dir):
        if record["kind"] == "val":
            final[record["role"]] = {"step": record["step"], "validation_loss": record["loss"]}
        elif record["kind"] == "train":
            train_losses.setdefault(record["role"], []).append(float(record["loss"]))
    last = 20
    return {
        "settings": settings.to_json(),
        "data": data,
        "stages": progress,
        "final_validation": final,
        # What a person inspecting the bundle needs where there is no validation (finetune): how the
        # training loss ended, and where its whole log and plot are.
        "final_train_loss": {role: {"steps": min(last, len(v)), "mean": round(sum(v[-last:]) / len(v[-last:]), 6)}
                             for role, v in train_losses.items() if v},
        "log": {"folder": str(Path(run_dir).resolve()), "losses": "log.jsonl", "plot": "losses.png"},
        "wall_seconds_this_invocation": round(seconds, 1),
        "optimizer": "Adam(beta1=0.9, beta2=0.999), "
                     + (f"learning rate {settings.lr:g}, lowered linearly to 0 over each stage's last "
                        f"{settings.decay_steps} steps" if settings.decay_steps else f"constant learning rate {settings.lr:g}"),
        "weights": (f"exponential moving average of each stage's weights, decay {settings.ema} (ramped up as (1+n)/(10+n))"
                    if settings.ema else "the last step's weights"),
        "losses": {"background": "eq. 2 on both stages", "foreground": "eq. 4 + lambda * eq. 7 (eq. 8) on both stages",
                   "alpha": "eq. 10: 0.5 L_alpha + 0.5 L_comp + L_grad (eq. 9)"},
    }


#: What the manifest's ``training.data.jitter`` says about the colour jitter of the composites.
JITTER_NOTE = "the foreground network's composites only (colour jitter, patent para. 0052)"


def warn_oversubscribed_workers(workers: int) -> None:
    """A ``WARNING:`` line where ``--workers`` takes every CPU the job may use (or more): each worker
    keeps a core busy drawing batches, and the training's own threads then wait for them in turns,
    every step slower than with fewer workers. It was said nowhere."""
    from core.pipeline import available_cpus

    cpus = available_cpus()
    if workers >= cpus:
        logging.getLogger(__name__).warning(
            "--workers %d: this job may use %d CPU(s) (its CPU affinity or cgroup quota), and %d batch process(es) "
            "beside the training's own threads oversubscribe them, which slows every step: use at most %d",
            workers, cpus, workers, cpus - 1)


def _composite_batches(seed: int, *, root: Path, kwargs: dict[str, Any], rendered: dict[str, Any], fraction: float,
                       crop: int, batch_size: int, n_backgrounds: int) -> Any:
    """The batch source of ``lbsmatte train`` drawing with ``seed`` (in this process, or in each
    ``--workers`` process). A module-level function, given to the workers with its arguments
    (``functools.partial``): where they start with ``spawn`` (Windows, macOS) the factory is
    pickled, and a function defined inside another cannot be.
    """
    import numpy as np

    from core.training.data import ALPHA_DUST, CompositeSampler

    train_sampler = CompositeSampler(root, split="train", seed=seed, **kwargs, **rendered)
    jitter_sampler = CompositeSampler(root, split="train", seed=seed + 1, jitter=True, **kwargs, **rendered)
    photos = None
    if fraction > 0:
        from core.training.data import ShowDataset

        # The training objects' own photographs: real backgrounds, real lighting, the domain the
        # networks meet in production. The held-out objects stay out, as in the composites. Their
        # mattes are read within ALPHA_DUST of 0 and 1, not a show's ALPHA_NOISE: the rule the shipped
        # networks and the cross-validation folds were trained with (ALPHA_NOISE moves the unknown
        # seed of 0.3-2.6 % of each object's pixels, 24 % of GT27's, whose measured matte is hazy).
        photos = ShowDataset(root / "alphamatting", crop=crop, seed=seed + 2,
                             names=[o.name for o in train_sampler.objects], given_trimaps=0.5, min_scale=0.5,
                             alpha_tolerance=ALPHA_DUST)
    pick = np.random.default_rng(seed + 3)

    def batches(role: str) -> Any:
        if photos is not None and pick.random() < fraction:
            return photos.sample(batch_size)
        # Colour jitter only for the foreground network (patent para. 0052).
        sampler = jitter_sampler if role == "foreground" else train_sampler
        return sampler.sample(batch_size, n_backgrounds=n_backgrounds)

    def state_dict() -> dict[str, Any]:
        """Every random generator the batches are drawn with, for the checkpoints."""
        state = {"composites": train_sampler.state_dict(), "jittered": jitter_sampler.state_dict(),
                 "pick": pick.bit_generator.state}
        if photos is not None:
            state["photos"] = photos.state_dict()
        return state

    def load_state_dict(state: dict[str, Any]) -> None:
        train_sampler.load_state_dict(state["composites"])
        jitter_sampler.load_state_dict(state["jittered"])
        pick.bit_generator.state = state["pick"]
        if photos is not None and "photos" in state:
            photos.load_state_dict(state["photos"])

    batches.train_sampler = train_sampler  # type: ignore[attr-defined]
    batches.photos = photos  # type: ignore[attr-defined]
    # A run continued from a checkpoint draws on where the stopped one was, not anew (train()).
    batches.state_dict = state_dict  # type: ignore[attr-defined]
    batches.load_state_dict = load_state_dict  # type: ignore[attr-defined]
    return batches


def _composite_data(args: argparse.Namespace, settings: Any) -> tuple[Any, Any, dict[str, Any]]:
    from core.training.data import VALIDATION_OBJECTS, CompositeSampler, object_names

    root = args.data or default_data_root()
    if not (root / "alphamatting").is_dir() or not (root / "backgrounds").is_dir():
        raise InputError(f"training data not found in {root}: expected alphamatting/ and backgrounds/ (set --data or LBSMATTE_DATA)")
    held_out = VALIDATION_OBJECTS if getattr(args, "hold_out", None) is None else args.hold_out
    if tuple(held_out) == ("all",):
        # Every object out: no real foreground, and none of their colours as procedural textures.
        held_out = tuple(object_names(root / "alphamatting"))
        if args.procedural < 1.0:
            raise InputError(f"--hold-out all leaves no real foreground to draw: use --procedural 1 (not {args.procedural})")
    wide = float(getattr(args, "wide_trimaps", 0.0) or 0.0)
    if not 0.0 <= wide <= 1.0:
        raise InputError(f"--wide-trimaps must be between 0 and 1, not {wide}")
    kwargs = dict(crop=settings.crop, procedural_fraction=args.procedural, held_out=held_out, wide_trimaps=wide)
    rendered: dict[str, Any] = {}  # training composites only: validation stays on the objects
    if getattr(args, "rendered", None) is not None:
        from core.training.data import rendered_foregrounds

        share = float(args.rendered_fraction)
        if not 0.0 < share <= 1.0:
            raise InputError(f"--rendered-fraction must be above 0 and at most 1, not {share}")
        rendered = {"rendered": rendered_foregrounds(args.rendered), "rendered_fraction": share}
    # A resumed run draws new batches, not the ones it has already trained on: drawn here, its
    # samplers continue from the random state saved in the checkpoint (train() restores it), the
    # batches an uninterrupted run would have drawn; drawn by --workers processes (which draw
    # ahead, so no checkpoint can say where they were), or from a checkpoint that holds no such
    # state, they start from a seed of their own.
    seed = settings.seed + 7919 * _steps_done(args)
    fraction = float(getattr(args, "real_photos", 0.0) or 0.0)
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"--real-photos must be between 0 and 1, not {fraction}")
    if fraction > 0 and not [n for n in object_names(root / "alphamatting") if n not in held_out]:
        # The crops are cut from the training objects' photographs: with every object held out
        # there is none, and the first such batch would end the run with a traceback.
        raise InputError(f"--real-photos {fraction:g} cuts crops from the training objects' own photographs, and "
                         "--hold-out keeps every object out: use --real-photos 0")
    # With nothing held out, validation is on procedural foregrounds over held-out photos.
    val_sampler = CompositeSampler(root, split="val", seed=1234, **(kwargs | ({"procedural_fraction": 1.0} if not held_out else {})))

    make = functools.partial(_composite_batches, root=root, kwargs=kwargs, rendered=rendered, fraction=fraction,
                             crop=settings.crop, batch_size=settings.batch_size, n_backgrounds=settings.n_backgrounds)
    first = make(seed)
    train_sampler, photos = first.train_sampler, first.photos
    if getattr(args, "workers", 0):
        # The objects' colours estimated (or read from the cache) here, once, before the workers
        # fork: they then only read the cache, and never run numba in a forked process.
        for obj in train_sampler.objects:
            obj.load(train_sampler.cache_dir)
        for name in photos.names if photos is not None else []:
            photos._item(name)
    batches = _in_workers(make, first, seed, args, settings)

    val_cache: dict[str, Any] = {}

    def validation(role: str) -> Any:
        if "batch" not in val_cache:
            if getattr(args, "validation", "composites") == "photos" and held_out:
                from core.training.data import ALPHA_DUST, ShowDataset

                # The held-out objects' own photographs with their own trimaps, at their own
                # scale: what the evaluation measures, rather than new composites of them.
                their_photos = ShowDataset(root / "alphamatting", crop=settings.crop, seed=1234,
                                           names=list(held_out), given_trimaps=1.0, min_scale=1.0,
                                           alpha_tolerance=ALPHA_DUST)
                val_cache["batch"] = their_photos.sample(2 * settings.batch_size)
            else:
                val_cache["batch"] = val_sampler.sample(settings.batch_size, n_backgrounds=settings.n_backgrounds)
        return val_cache["batch"]

    summary = {"root": str(Path(root).resolve()), **train_sampler.describe(),  # '--data data' names no folder elsewhere
               "validation": getattr(args, "validation", "composites")}
    # train_sampler draws without jitter; the foreground network's composites come from its jittered twin
    summary["jitter"] = JITTER_NOTE
    if photos is not None:
        summary["real_photos"] = {"fraction": fraction, "plates": list(photos.names),
                                  "note": "crops of the objects' own photographs; FG and BG estimated from the measured alpha",
                                  "own_trimaps": photos.given_trimaps, "min_scale": photos.min_scale,
                                  "alpha_tolerance": photos.alpha_tolerance}
    if getattr(args, "workers", 0):
        summary["workers"] = {"processes": int(args.workers),
                              "note": "batches drawn ahead by worker processes, each with a seed of its own"}
    return batches, validation, summary


def _steps_done(args: argparse.Namespace) -> int:
    from core.training.train import stage_progress

    run_dir = run_folder(args)
    return sum(int(p.get("step") or 0) for p in stage_progress(run_dir).values())


def _show_batches(seed: int, *, data: Path, crop: int, colour: str, names: list[str] | None, batch_size: int,
                  n_backgrounds: int, alpha_tolerance: float) -> Any:
    """The batch source of ``lbsmatte finetune`` drawing with ``seed`` (module-level and given
    its arguments, so that ``--workers`` processes started with ``spawn`` can unpickle it)."""
    from core.training.data import ShowDataset

    dataset = ShowDataset(data, crop=crop, seed=seed, colour=colour, names=names, alpha_tolerance=alpha_tolerance)

    def batches(role: str) -> Any:
        return dataset.sample(batch_size, n_backgrounds=n_backgrounds)

    batches.dataset = dataset  # type: ignore[attr-defined]
    batches.state_dict = dataset.state_dict  # type: ignore[attr-defined]
    batches.load_state_dict = dataset.load_state_dict  # type: ignore[attr-defined]
    return batches


def _show_data(args: argparse.Namespace, settings: Any, alpha_tolerance: float) -> tuple[Any, Any, dict[str, Any]]:
    if not args.data.is_dir():
        raise InputError(f"fine-tuning data folder {args.data} "
                         f"{'is a file, not a folder' if args.data.exists() else 'does not exist'}")
    from core.colour import check_colour

    try:
        check_colour(args.colour)
    except InputError as exc:
        raise InputError(f"--colour {args.colour}: {exc}") from None
    seed = settings.seed + 7919 * _steps_done(args)
    options = dict(data=args.data, crop=settings.crop, colour=args.colour, batch_size=settings.batch_size,
                   n_backgrounds=settings.n_backgrounds, alpha_tolerance=alpha_tolerance)
    first = _show_batches(seed, names=None, **options)
    if first.dataset.unmatched:
        logging.getLogger(__name__).warning(
            "%d plate(s) in %s have no matte of the same name in %s and are not trained on: %s",
            len(first.dataset.unmatched), args.data / "image", args.data / "alpha", ", ".join(first.dataset.unmatched))
    if first.dataset.skipped_folders:
        logging.getLogger(__name__).warning(
            "%d folder(s) inside image/ or alpha/ are not read, their files not trained on (the plates and mattes "
            "are files directly in image/ and alpha/, a frame a file): %s", len(first.dataset.skipped_folders),
            ", ".join(first.dataset.skipped_folders))
    if first.dataset.orphan_mattes:
        logging.getLogger(__name__).warning(
            "%d matte(s) in %s have no plate of the same name in %s and are not trained on: %s",
            len(first.dataset.orphan_mattes), args.data / "alpha", args.data / "image",
            ", ".join(first.dataset.orphan_mattes))
    first.dataset.check()  # every plate read now: a bad file stops the run before it starts
    if first.dataset.constant:
        logging.getLogger(__name__).warning(
            "%d matte(s) in %s are all 0 or all 1, with no edge to learn from, and are not trained on: %s%s",
            len(first.dataset.constant), args.data / "alpha",
            ", ".join(f"{n} (all {v:g})" for n, v in first.dataset.constant.items()), first.dataset.tolerance_note())
    # The workers draw from the plates the first data set's check() kept.
    make = functools.partial(_show_batches, names=list(first.dataset.names), **options)
    # The folder the bundle records, absolute: '--data show' named no folder once the bundle was
    # used from another one (the run folder it records is absolute too).
    folder = str(Path(args.data).resolve())
    summary = {"show_data": folder, **first.dataset.describe(), "folder": folder}
    if not getattr(args, "workers", 0):
        # Drawn here, a continued run's batches go on from the random state in the checkpoint:
        # they all descend from --seed (this process's own seed, which a continuation sets, drew
        # nothing; the manifest of a run stopped and continued named it while an uninterrupted
        # run's, of the same weights, said 0).
        summary["seed"] = settings.seed
    return _in_workers(make, first, seed, args, settings), None, summary


def _in_workers(make: Any, first: Any, seed: int, args: argparse.Namespace, settings: Any) -> Any:
    """``first`` (drawn in this process), or batches drawn ahead by ``--workers`` processes."""
    workers = int(getattr(args, "workers", 0) or 0)  # run() has refused a negative count
    if workers == 0:
        return first
    from core.training.data import ParallelBatches

    return ParallelBatches(make, workers, seed, pin_memory=str(settings.device).startswith("cuda"))
