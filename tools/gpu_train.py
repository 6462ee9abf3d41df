"""Train on a GPU machine for a fixed time: several runs at once, each stage time-boxed.

A lent GPU machine is typically short-lived and cut off from the network: the training data has
to travel with the checkout, and a run has minutes, not hours. This tool does both halves.

``prepare`` (on the development machine) copies what training reads into an ignored folder of
the project (default ``gpu_payload/``): the alphamatting objects that have an alpha (photo,
alpha, trimaps) byte for byte, and the background photographs re-encoded with their long side
at most ``--max-side`` pixels (the training crops are 192 px; the copy has to fit the few tens
of MB that travel). ``gpu_payload/PAYLOAD.json`` says what was copied and how.

``run`` (on the GPU machine) first estimates the objects' foreground colours once, in parallel
(``estimate_layers``, cached in ``.cache/fg`` or ``$LBSMATTE_COLOUR_CACHE``, so the runs do not each do it), then trains every
``--job`` at the same time, each with ``lbsmatte train`` stage after stage: a stage trains until
its step count or its time box (``--stage-seconds``), whichever comes first, and then counts as
done at the step it reached (its weight average is what the next stage and the bundle get).
Each job writes its bundle to ``OUT/<name>/bundle`` and its checkpoints, log and losses to
``OUT/<name>/run``; ``OUT/summary.json`` lists the steps and seconds of every stage. ``--budget``
bounds the whole run on the wall clock (each stage's box cut to what is left; the bundles are still
written). ``--return-to`` packs each bundle (zipped, in parts of 15 MiB) and the summary
into the folder that comes back from the machine (its ``$OUT``); ``unpack`` (here) joins the parts
into a bundle folder.

A job is ``NAME=ARGS``: the arguments of ``lbsmatte train`` for that job, e.g.

    python tools/gpu_train.py run --data gpu_payload/data --out runs/gpu --budget 450 \\
        --stage-seconds 80,80,200 \\
        --job "paper0=--size paper --hold-out GT01,GT06,GT10,GT15,GT19,GT24 --batch 16 --workers 6" \\
        --job "small0=--hold-out GT01,GT06,GT10,GT15,GT19,GT24 --steps 1000,1000,900 --workers 3"

``--steps`` in a job caps each stage (default: no cap but the time box).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ROLES = ("background", "foreground", "alpha")
NO_CAP = 1_000_000
#: What a lent GPU machine takes with the checkout (its ``carry``: 64 MiB in all).
CARRY_LIMIT = 64 * 2**20
#: What comes back from a lent GPU machine's ``$OUT``: at most 8 files of at most 16 MiB, 64 MiB in all.
RETURN_FILES, RETURN_FILE_LIMIT, RETURN_LIMIT = 8, 16 * 2**20, 64 * 2**20
#: The parts a bundle is cut in for ``$OUT``: a margin under the 16 MiB a file may have.
PART_SIZE = 15 * 2**20
#: An empty file in the payload's data folder (and its ``data.partial``): prepare replaces only
#: folders holding it (or a payload's beside ``PAYLOAD.json``, made before it was written).
PAYLOAD_MARK = ".gpu_payload"
#: Arguments of ``lbsmatte train`` that this tool sets for every job (where a job's data, bundle
#: and run folder are): a job that gave them would train on other data or write elsewhere.
RESERVED = ("--data", "--out", "--run-dir", "--name", "--overwrite", "--max-minutes")


def prepare(args: argparse.Namespace) -> int:
    from PIL import Image

    source, final = args.data, args.out / "data"
    am = source / "alphamatting"
    if not (am / "alpha").is_dir() or not (source / "backgrounds").is_dir():
        raise SystemExit(f"no training data in {source}: expected alphamatting/ and backgrounds/")
    # The payload's data folder is replaced whole: the payload must not hold or lie in the source.
    src, dst = source.resolve(), args.out.resolve()
    if src.is_relative_to(dst) or dst.is_relative_to(src):
        raise SystemExit(f"--out {args.out} overlaps the data it copies ({source}): choose a folder outside it")
    objects = sorted(p.stem for p in (am / "alpha").glob("*.png"))
    missing = [str(am / "image" / f"{name}.png") for name in objects if not (am / "image" / f"{name}.png").is_file()]
    if not (am / "trimap").is_dir():
        missing.append(str(am / "trimap") + "/")
    if not objects:
        missing.append(str(am / "alpha" / "*.png"))
    if missing:
        raise SystemExit(f"incomplete training data in {source}: missing {', '.join(missing)}")
    # Built beside the old payload and swapped in when whole: a prepare cut short leaves the old
    # payload as it was (or none), never a part of one that a run would train on.
    out = args.out / "data.partial"
    # Both folders are deleted whole: only when prepare made them (a folder of the user's named
    # data, in an --out that was not made for the payload, was deleted with everything in it).
    theirs = [str(folder) for folder, made in ((final, args.out / "PAYLOAD.json"), (out, None))
              if (folder.exists() or folder.is_symlink()) and not (folder / PAYLOAD_MARK).is_file()
              and not (made is not None and made.is_file() and folder.is_dir() and not folder.is_symlink())]
    if theirs:
        raise SystemExit(f"--out {args.out} holds {' and '.join(theirs)}, which prepare did not make and would replace "
                         "with the payload: choose another --out (the default is gpu_payload/)")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / PAYLOAD_MARK).write_bytes(b"")
    for sub in ("image", "alpha"):
        (out / "alphamatting" / sub).mkdir(parents=True)
        for name in objects:
            shutil.copy2(am / sub / f"{name}.png", out / "alphamatting" / sub / f"{name}.png")
    for trimap_dir in sorted(p for p in (am / "trimap").iterdir() if p.is_dir()):
        (out / "alphamatting" / "trimap" / trimap_dir.name).mkdir(parents=True)
        for name in objects:
            if (trimap_dir / f"{name}.png").exists():
                shutil.copy2(trimap_dir / f"{name}.png", out / "alphamatting" / "trimap" / trimap_dir.name / f"{name}.png")
    (out / "backgrounds").mkdir(parents=True)
    from core.training.data import background_photos

    photos = background_photos(source / "backgrounds")
    for photo in photos:
        with Image.open(source / "backgrounds" / photo) as im:
            im = im.convert("RGB")
            scale = args.max_side / max(im.size)
            if scale < 1:
                im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
            # Under its own name (a .png stays PNG): the training/validation split is made by the
            # names, and a photo renamed there would move it, so that a fold trained on the GPU
            # draws photos the composites made here hold out (and a.png beside a.jpg, one file).
            im.save(out / "backgrounds" / photo, quality=args.quality)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    # The rest of the payload folder (the wheels) and the checkout travel in the same 64 MiB.
    beside = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file() and not p.is_relative_to(out)
                 and not p.is_relative_to(final) and p != args.out / "PAYLOAD.json")
    checkout, largest = _checkout_bytes(args.out)
    if size + beside + checkout > CARRY_LIMIT:
        shutil.rmtree(out)
        raise SystemExit(f"the payload would be {size / 2**20:.1f} MiB, with {beside / 2**20:.1f} MiB beside it in "
                         f"{args.out} and {checkout / 2**20:.1f} MiB of checkout ({largest}): "
                         f"{(size + beside + checkout) / 2**20:.1f} MiB in all, over the {CARRY_LIMIT / 2**20:.0f} MiB "
                         f"that travel with the checkout: use a smaller --max-side (now {args.max_side}) or --quality "
                         f"(now {args.quality}), or make the checkout smaller")
    (args.out / "PAYLOAD.json").unlink(missing_ok=True)
    if final.exists():
        shutil.rmtree(final)
    out.rename(final)
    out = final
    (args.out / "PAYLOAD.json").write_text(json.dumps({
        "source": str(source.resolve()), "objects": objects, "backgrounds": len(photos),
        "backgrounds_note": f"re-encoded under their own names (JPEG quality {args.quality}; PNG stays PNG), "
                            f"long side at most {args.max_side} px",
        "bytes": size, "checkout_bytes": checkout,
    }, indent=1), encoding="utf-8")
    print(f"copied {len(objects)} objects and {len(photos)} background photos into {out} ({size / 1e6:.1f} MB)")
    wheels = {w.name.split("-")[0].lower() for w in (args.out / "wheels").glob("*.whl")}
    lacking = [name for name in NEEDED if name.lower() not in wheels]
    if lacking:  # the lent GPU machine's Python has neither, and no package index to get them from
        print(f"WARNING: no wheel of {', '.join(lacking)} in {args.out / 'wheels'}: the GPU machine's Python lacks "
              "them and cannot download them (README, GPU: python -m pip download ... -d gpu_payload/wheels)", flush=True)
    return 0


def _checkout_bytes(payload: Path) -> tuple[int, str]:
    """The bytes of the git checkout holding ``payload`` that travel to a GPU machine whatever is
    carried (tracked files and untracked ones git does not ignore; ``payload`` itself left out), and
    its largest folders in words. Nothing where ``payload`` lies in no checkout."""
    payload = payload.resolve()
    folder = next((p for p in (payload, *payload.parents) if p.exists()), payload)
    found = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if found.returncode != 0:
        return 0, "none: not in a git checkout"
    root = Path(found.stdout.strip())
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    folders: dict[str, int] = {}
    for name in filter(None, listed):
        path = root / name
        if path.is_file() and not path.is_symlink() and not path.resolve().is_relative_to(payload):
            top = "/".join(Path(name).parent.parts[:3]) or "."
            folders[top] = folders.get(top, 0) + path.stat().st_size
    largest = sorted(folders.items(), key=lambda item: -item[1])[:2]
    return sum(folders.values()), "largest: " + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in largest)


def _estimate(paths: tuple[str, str]) -> str:
    """Cache an object's colours as the composites (cleaned alpha) and its own photo's crops use them."""
    from core.training.data import CACHE_DIR, ShowDataset, _RealObject

    image = Path(paths[0])
    obj = _RealObject(image.stem, image, Path(paths[1]))
    obj.load(CACHE_DIR)  # where the trainings read them: .cache/fg, or $LBSMATTE_COLOUR_CACHE
    ShowDataset(image.parent.parent, crop=64, seed=0, names=[image.stem])._item(image.stem)
    return obj.name


class _Stopped(BaseException):
    """SIGTERM or SIGINT while the objects' colours are estimated, before any training has started."""


def _raise_stopped(signum: int, frame: Any) -> None:
    raise _Stopped


def _estimate_worker_init() -> None:
    """A worker leaves SIGTERM to its default and Ctrl-C (sent to the whole group) to the parent, which
    stops the workers itself."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _estimate_all(pairs: list[tuple[str, str]], workers: int) -> list[str]:
    """:func:`_estimate` for every object in ``workers`` processes. A SIGTERM or SIGINT meanwhile (the
    device's time limit can fall here: this took 72 s on one run) stops the workers, leaving none
    orphaned, and raises :class:`_Stopped`."""
    pool = multiprocessing.Pool(workers, initializer=_estimate_worker_init)
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        names = pool.map(_estimate, pairs)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        pool.join()
    return names


def _job(text: str) -> tuple[str, list[str]]:
    name, sep, rest = text.partition("=")
    plain = name.strip().replace("_", "").replace("-", "")
    if not sep or not plain.isascii() or not plain.isalnum():  # it names files that come back from $OUT
        raise argparse.ArgumentTypeError(f"--job must be NAME=ARGS with a plain NAME, got {text!r}")
    try:
        argv = shlex.split(rest)
    except ValueError as exc:  # an unclosed quote
        raise argparse.ArgumentTypeError(f"--job {name.strip()}: cannot split its arguments ({exc}): {rest!r}") from None
    reserved = [a for a in argv if a.split("=")[0] in RESERVED]
    if reserved:
        raise argparse.ArgumentTypeError(f"--job {name.strip()}: {', '.join(reserved)} is set by this tool for every job "
                                         "(--data, OUT/NAME/bundle, OUT/NAME/run, the time boxes): leave it out")
    _caps(argv, name.strip())
    return name.strip(), argv


def _caps(argv: list[str], name: str = "") -> tuple[list[str], list[int]]:
    """The job's arguments without ``--steps``, and its per-stage caps."""
    if "--steps" not in argv:
        return argv, [NO_CAP] * 3
    i = argv.index("--steps")
    text = argv[i + 1] if i + 1 < len(argv) else ""
    try:
        caps = [int(v) for v in text.split(",")]
    except ValueError:
        caps = []
    caps = caps * 3 if len(caps) == 1 else caps
    if len(caps) != 3 or min(caps) < 0:
        raise argparse.ArgumentTypeError(f"--job {name}: --steps takes one or three counts (BG,FG,alpha), got {text!r}")
    return argv[:i] + argv[i + 2:], caps


def _progress(run_dir: Path) -> list[int]:
    from core.training.train import stage_progress

    done = stage_progress(run_dir)
    return [int((done.get(role) or {}).get("step") or 0) for role in ROLES]


#: Set by SIGTERM/SIGINT: the running trainings are told to stop (they checkpoint, exit 3), and no
#: job starts another stage or writes its bundle. Rerunning the same command continues them.
_STOPPING = threading.Event()
_CHILDREN: list[subprocess.Popen[bytes]] = []
_CHILDREN_LOCK = threading.Lock()


def _call(command: list[str], stream: Any) -> int:
    """``subprocess.call`` that :func:`_stop` can reach; 3 (stopped) without starting once stopping."""
    with _CHILDREN_LOCK:
        if _STOPPING.is_set():
            return 3
        child = subprocess.Popen(command, cwd=REPO, stdout=stream, stderr=subprocess.STDOUT)
        _CHILDREN.append(child)
    try:
        return child.wait()
    finally:
        with _CHILDREN_LOCK:
            _CHILDREN.remove(child)


def _stop(signum: int, frame: Any) -> None:
    """Pass a SIGTERM or SIGINT sent to this process (the device's time limit, a kill) to every
    training it runs: each checkpoints and stops instead of training on orphaned."""
    with _CHILDREN_LOCK:
        _STOPPING.set()
        for child in _CHILDREN:
            if child.poll() is None:
                child.send_signal(signum)


#: What the training imports beyond PyTorch's image on a lent GPU machine: it reads the images with
#: OpenImageIO and estimates the objects' colours with pymatting.
NEEDED = ("OpenImageIO", "pymatting")


#: Run by :func:`_probe` in a process of its own: importing pymatting here would take GNU OpenMP's
#: pool into this process, and the colour estimation's forked workers would then be killed at
#: their first numba kernel ("fork() called from a process already using GNU OpenMP"), respawned
#: and killed again, the run hanging until the device's limit.
_PROBE = """
import importlib, json, sys
missing = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        missing[name] = str(exc)
import torch
print(json.dumps({"missing": missing, "cuda": torch.cuda.is_available(), "build": torch.version.cuda,
                  "torch": torch.__version__}))
"""


def _probe() -> dict[str, Any]:
    """What this machine's Python can import of :data:`NEEDED`, and whether PyTorch sees CUDA."""
    done = subprocess.run([sys.executable, "-c", _PROBE, *NEEDED], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{sys.executable} cannot import PyTorch: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(done.stdout.splitlines()[-1])


def _check_machine(jobs: list[tuple[str, list[str]]]) -> None:
    """Refuse, before any work, a machine that lacks a package the training imports or the CUDA a job
    asks for: without CUDA ``lbsmatte train --device cuda`` falls back to the CPU, and the run would
    spend its minutes training there."""
    found = _probe()
    if found["missing"]:
        missing = ", ".join(f"{name} ({why})" for name, why in found["missing"].items())
        raise SystemExit(f"{sys.executable} cannot import {missing}: carry the wheels in gpu_payload/wheels "
                         "and install them first (README, GPU: python3 -m pip install --no-index --no-deps --target "
                         "/tmp/site gpu_payload/wheels/*.whl && export PYTHONPATH=/tmp/site)")
    asked = [name for name, argv in jobs for i, a in enumerate(argv)
             if (a == "--device" and i + 1 < len(argv) and argv[i + 1].startswith("cuda")) or a.startswith("--device=cuda")]
    if asked and not found["cuda"]:
        why = "a CPU-only PyTorch build" if found["build"] is None else f"PyTorch {found['torch']} sees no GPU"
        raise SystemExit(f"--job {', '.join(asked)} asks for --device cuda, but {sys.executable} has no CUDA ({why}): "
                         "the trainings would run on the CPU")


def _train(name: str, argv: list[str], data: Path, out: Path, budgets: list[float], log: dict,
           deadline: float | None = None, reached: Any = None) -> None:
    """Train one job stage after stage, each until its cap or its time box, the box cut to what is left
    before ``deadline`` (``time.monotonic()``; a stage with less than a second left is not started),
    then write its bundle at the steps reached. ``reached()`` is called after every stage (and the
    bundle): :func:`run` writes the summary there, so a run killed outright has said how far it got."""
    reached = reached or (lambda: None)
    argv, caps = _caps(argv)
    run_dir, bundle = out / name / "run", out / name / "bundle"
    run_dir.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "core.cli", "train", "--data", str(data), "--out", str(bundle), "--run-dir",
            str(run_dir), "--overwrite", "--no-progress", "--name", name, *argv]
    with open(out / name / "train.log", "a", encoding="utf-8") as stream:
        for index, role in enumerate(ROLES):
            done = _progress(run_dir)
            steps = done[:index] + [caps[index]] + [0] * (2 - index)
            started = time.monotonic()
            box = budgets[index] if deadline is None else min(budgets[index], deadline - started)
            if box < 1:
                log.setdefault(name, {})[role] = {"exit": None, "step": done[index], "seconds": 0, "skipped": "--budget spent"}
                print(f"{name}: {role} not trained further: the --budget is spent (step {done[index]})", flush=True)
                continue
            code = _call(base + ["--steps", ",".join(map(str, steps)), "--max-minutes", f"{box / 60:.4f}"], stream)
            step, seconds = _progress(run_dir)[index], time.monotonic() - started
            log.setdefault(name, {})[role] = {"exit": code, "step": step, "seconds": round(seconds, 1)}
            print(f"{name}: {role} at step {step} ({seconds:.0f} s, exit {code})", flush=True)
            reached()
            if code not in (0, 3):
                _say_why(name, out / name / "train.log")
            if code not in (0, 3) or _STOPPING.is_set():
                return
        # Every stage is done at the step it reached: write the bundle.
        done = _progress(run_dir)
        code = _call(base + ["--steps", ",".join(map(str, done))], stream)
        log[name]["bundle"] = {"exit": code, "path": str(bundle), "steps": done}
        print(f"{name}: bundle {'written' if code == 0 else f'failed (exit {code})'} with steps {done}", flush=True)
        reached()
        if code != 0:
            _say_why(name, out / name / "train.log")


def _say_why(name: str, log_path: Path) -> None:
    """Print the last ``ERROR:`` line of a job's train.log (out of GPU memory, a bad argument): the
    console is what a device call shows; the log stays on the machine."""
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines() if log_path.exists() else []
    errors = [line for line in lines if line.startswith("ERROR:")] or lines[-1:]
    if errors:
        print(f"{name}: {errors[-1]}", flush=True)


def run(args: argparse.Namespace) -> int:
    try:
        budgets = [float(v) for v in args.stage_seconds.split(",")]
    except ValueError:
        budgets = []
    if len(budgets) != 3 or min(budgets) <= 0:
        raise SystemExit(f"--stage-seconds takes three positive numbers (BG,FG,alpha), got {args.stage_seconds!r}")
    names = [name for name, _ in args.job]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:  # two jobs in one run folder would train over each other's checkpoints
        raise SystemExit(f"--job names must differ: {', '.join(twice)} given more than once")
    if args.budget is not None and not args.budget > 0:
        raise SystemExit(f"--budget must be a positive number of seconds, not {args.budget}")
    if args.estimate_workers < 1:
        raise SystemExit(f"--estimate-workers must be at least 1, not {args.estimate_workers}")
    started = time.monotonic()  # --budget counts from here: the check below imports torch (seconds)
    _check_machine(args.job)
    am = args.data / "alphamatting"
    pairs = [(str(p), str(am / "alpha" / p.name)) for p in sorted((am / "image").glob("*.png")) if (am / "alpha" / p.name).exists()]
    if not pairs or not (args.data / "backgrounds").is_dir():
        raise SystemExit(f"no training data in {args.data}: expected alphamatting/image, alphamatting/alpha and "
                         "backgrounds/ (python tools/gpu_train.py prepare makes them in gpu_payload/data)")
    estimating = time.monotonic()
    try:
        names = _estimate_all(pairs, args.estimate_workers)
    except _Stopped:
        from core.training.data import CACHE_DIR

        print(f"stopped while estimating the objects' colours (those done are cached in {CACHE_DIR}); run the same "
              "command again to continue", flush=True)
        return 3
    print(f"estimated the colours of {len(names)} objects in {time.monotonic() - estimating:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    log: dict = {}
    deadline = None if args.budget is None else started + args.budget
    lock = threading.Lock()

    def reached() -> None:  # after every stage of every job: what a run killed outright still returns
        with lock:
            _write_summary(args, budgets, log)

    threads = [threading.Thread(target=_train, args=(name, argv, args.data.resolve(), args.out.resolve(), budgets, log,
                                                     deadline, reached)) for name, argv in args.job]
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _write_summary(args, budgets, log)
    if args.return_to is not None:
        _return(args, log)
    failed = [name for name, _ in args.job if (log.get(name, {}).get("bundle") or {}).get("exit") != 0]
    if _STOPPING.is_set():
        print(f"stopped after {time.monotonic() - started:.0f} s: every training checkpointed; run the same command "
              "again to continue", flush=True)
        return 3
    print(f"done in {time.monotonic() - started:.0f} s; " + (f"no bundle for {', '.join(failed)}" if failed else "every bundle written"))
    return 1 if failed else 0


def _write_summary(args: argparse.Namespace, budgets: list[float], log: dict) -> None:
    """``OUT/summary.json`` and, with ``--return-to``, a copy of it and each job's ``train.log`` there
    (the device's ``$OUT``): written after every stage, so that a run the device's time limit kills
    outright, with no time to end itself, still brings back where every stage got to and why."""
    text = json.dumps({"stage_seconds": budgets, "jobs": dict(args.job), "stages": log}, indent=1)
    (args.out / "summary.json").write_text(text, encoding="utf-8")
    if args.return_to is None:
        return
    args.return_to.mkdir(parents=True, exist_ok=True)
    (args.return_to / "summary.json").write_text(text, encoding="utf-8")
    for name, _ in args.job:
        if (args.out / name / "train.log").exists():
            shutil.copyfile(args.out / name / "train.log", args.return_to / f"{name}.train.log")


def _pack(bundle: Path, folder: Path, name: str) -> list[Path]:
    """The bundle folder zipped (deflated) and cut in parts that come back from ``$OUT``:
    ``folder/NAME.zip.001``, ``.002``, ... of at most :data:`PART_SIZE` bytes each (a
    ``paper`` bundle in float16 is 67 MiB, its matting network alone 51 MiB)."""
    whole = folder / f"{name}.zip.partial"
    with zipfile.ZipFile(whole, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(bundle.iterdir()):
            if path.is_file():
                archive.write(path, path.name)
    for old in folder.glob(f"{name}.zip.[0-9][0-9][0-9]"):
        old.unlink()
    parts = []
    with open(whole, "rb") as stream:
        while chunk := stream.read(PART_SIZE):
            parts.append(folder / f"{name}.zip.{len(parts) + 1:03d}")
            parts[-1].write_bytes(chunk)
    whole.unlink()
    return parts


def _return(args: argparse.Namespace, log: dict) -> None:
    """Pack every bundle written, and ``summary.json``, into ``--return-to`` (the device's ``$OUT``);
    the train.log of a job that wrote none. Says what will not come back."""
    folder = args.return_to
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(args.out / "summary.json", folder / "summary.json")
    for name, _ in args.job:
        if (log.get(name, {}).get("bundle") or {}).get("exit") == 0:
            parts = _pack(args.out / name / "bundle", folder, name)
            (folder / f"{name}.train.log").unlink(missing_ok=True)  # copied while it trained: the bundle says it all
            print(f"{name}: bundle packed into {', '.join(p.name for p in parts)} in {folder} (unpack it with "
                  f"python tools/gpu_train.py unpack {name}.zip.* --out DIR)", flush=True)
        elif (args.out / name / "train.log").exists():
            shutil.copy2(args.out / name / "train.log", folder / f"{name}.train.log")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    if len(files) > RETURN_FILES or total > RETURN_LIMIT or max(p.stat().st_size for p in files) > RETURN_FILE_LIMIT:
        print(f"WARNING: {folder} holds {len(files)} files, {total / 2**20:.1f} MiB: more than the "
              f"{RETURN_FILES} files and {RETURN_LIMIT / 2**20:.0f} MiB that come back from a lent GPU machine; "
              "run fewer jobs (or --storage float16)", flush=True)


def unpack(args: argparse.Namespace) -> int:
    """Join the parts that ``run --return-to`` wrote and unzip the bundle into ``--out``."""
    from core.weights import load_bundle

    parts = sorted(args.parts, key=lambda p: p.name)
    stems = {p.name.rsplit(".", 1)[0] for p in parts}
    numbers = [p.name.rsplit(".", 1)[-1] for p in parts]
    if len(stems) != 1 or not all(n.isdigit() for n in numbers):
        raise SystemExit(f"unpack takes the parts of one bundle (NAME.zip.001, NAME.zip.002, ...), got "
                         f"{', '.join(str(p) for p in args.parts)}")
    expected = [f"{i:03d}" for i in range(1, len(parts) + 1)]
    if numbers != expected:
        missing = sorted(set(expected) - set(numbers)) or [f"{len(parts) + 1:03d}"]
        raise SystemExit(f"parts of {stems.pop()} missing: {', '.join(missing)} (given {', '.join(numbers)})")
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"--out {args.out} is not empty: choose a new folder")
    joined = io.BytesIO(b"".join(p.read_bytes() for p in parts))
    try:
        with zipfile.ZipFile(joined) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"{bad} is damaged")
            args.out.mkdir(parents=True, exist_ok=True)
            for member in archive.namelist():  # flat: a bundle's files, never a path
                (args.out / Path(member).name).write_bytes(archive.read(member))
    except zipfile.BadZipFile as exc:
        raise SystemExit(f"{parts[0].parent / stems.pop()}.*: not a whole bundle ({exc}): was the last part "
                         "cut short?") from None
    bundle = load_bundle(args.out)
    steps = {role: stage.get("step") for role, stage in bundle.manifest.get("training", {}).get("stages", {}).items()}
    print(f"unpacked bundle {bundle.manifest.get('name')!r} (steps {steps}) into {args.out}: score it with "
          f"lbsmatte evaluate DATASET --weights {args.out} --device cpu")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="copy the training data into an ignored folder that travels with the checkout")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--out", type=Path, default=REPO / "gpu_payload")
    p.add_argument("--max-side", type=int, default=640, help="long side of the copied background photos (default 640)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality of the copied background photos (default 90)")
    r = sub.add_parser("run", help="train the jobs at once, each stage time-boxed")
    r.add_argument("--data", type=Path, required=True, help="the prepared data (gpu_payload/data)")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--job", type=_job, action="append", required=True, metavar="NAME=ARGS")
    r.add_argument("--stage-seconds", default="80,80,200", help="time box of each stage, BG,FG,alpha (default 80,80,200)")
    r.add_argument("--budget", type=float, metavar="SECONDS",
                   help="wall-clock seconds for the colours and every stage, from the start: each stage's box is cut "
                        "to what is left (the bundles are written after it; leave them a minute before the device's "
                        "time limit, which stops the run without one)")
    r.add_argument("--estimate-workers", type=int, default=8, help="processes estimating the objects' colours")
    r.add_argument("--return-to", type=Path, metavar="DIR",
                   help="pack each bundle (zipped, in parts of 15 MiB) and summary.json into DIR, the "
                        "device's $OUT: the run folder's checkpoints are far more than comes back")
    u = sub.add_parser("unpack", help="join the parts run --return-to wrote into a bundle folder")
    u.add_argument("parts", type=Path, nargs="+", help="NAME.zip.001 NAME.zip.002 ... (NAME.zip.* in a shell)")
    u.add_argument("--out", type=Path, required=True, help="the bundle folder to write (new or empty)")
    args = parser.parse_args(argv)
    if args.command == "prepare" and args.max_side < 1:
        p.error(f"--max-side must be at least 1, not {args.max_side}")
    if args.command == "prepare" and not 1 <= args.quality <= 100:
        p.error(f"--quality must be between 1 and 100, not {args.quality}")
    return {"prepare": prepare, "run": run, "unpack": unpack}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
