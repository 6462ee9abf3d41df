"""Render training foregrounds with exact alpha and colour in Blender (Cycles on the CPU).

Photographed objects come with a measured alpha and only an estimate of their colour; procedural
foregrounds have exact layers but do not look like fur. These renders have both: furry bodies,
wisps, curls, long strands and veils (``tools/blender_foreground.py`` draws each scene from its
seed), written as scene-linear EXRs whose alpha is what Cycles integrates and whose colour is
premultiplied by it. ``lbsmatte train --rendered DIR`` composites them over the background photos
(:class:`core.training.data.CompositeSampler`).

Blender is a Debian package (``apt install blender``; 3.4 renders these on 2 cores in 1-11 s each at
320 px and 16 samples). The renders are data, not code: they go to an ignored folder::

    python tools/render_foregrounds.py --out devdata/rendered --count 400

Run again to add more or to finish an interrupted run: seeds already rendered are skipped, and
each file is written under a temporary name and renamed when whole. Stopped by SIGTERM (exit 143)
or Ctrl-C (exit 130), it stops the Blender render in progress too and removes its partial file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENE = ROOT / "tools" / "blender_foreground.py"
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports it (and as lbsmatte exits)
EXIT_INTERRUPTED = 130  # 128 + SIGINT


class _Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so that the Blender child is stopped, not orphaned."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated


def find_blender(given: str | None) -> str:
    """The Blender executable: ``given``, else ``$BLENDER``, else ``blender`` on the PATH."""
    name = given or os.environ.get("BLENDER") or "blender"
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"Blender not found ({name!r}): install it (apt install blender) or pass --blender PATH")
    return found


def render_one(blender: str, seed: int, dest: Path, size: int, samples: int, threads: int) -> None:
    """Render seed ``seed`` to ``dest`` (an EXR), whole or not at all."""
    partial = dest.with_name(f".{dest.stem}.partial.exr")
    command = [blender, "-b", "-noaudio", "--factory-startup", "--python", str(SCENE), "-t", str(threads),
               "--", str(seed), str(partial), str(size), str(samples)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate()
    except BaseException:  # SIGTERM or Ctrl-C: Blender would otherwise go on rendering, orphaned
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        partial.unlink(missing_ok=True)
        raise
    if process.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        tail = "\n".join((stdout + stderr).strip().splitlines()[-8:])
        raise SystemExit(f"Blender failed on seed {seed} (exit {process.returncode}):\n{tail}")
    partial.replace(dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the renders (created; existing seeds kept)")
    parser.add_argument("--count", type=int, default=400, help="how many foregrounds (default 400)")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first render (default 0)")
    parser.add_argument("--size", type=int, default=320, help="square size in pixels (default 320)")
    parser.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel (default 16)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="Blender's render threads")
    parser.add_argument("--blender", help="the Blender executable (default: $BLENDER or blender on the PATH)")
    args = parser.parse_args(argv)
    for flag, value, low in (("--count", args.count, 1), ("--size", args.size, 32), ("--samples", args.samples, 1),
                             ("--threads", args.threads, 1)):
        if value < low:
            parser.error(f"{flag} must be at least {low}, not {value}")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file, not a folder")
    blender = find_blender(args.blender)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = args.out / "manifest.json"
    recipe = {"scene": "tools/blender_foreground.py", "size": args.size, "samples": args.samples,
              "encoding": "scene-linear RGBA, colour premultiplied by alpha (Cycles, transparent film)"}
    if manifest.exists():
        try:
            previous = json.loads(manifest.read_text())
        except ValueError:  # cut short while written (an empty file): the renders' recipe is unknown
            raise SystemExit(f"{manifest} is not readable JSON: the recipe of the renders in {args.out} is unknown; "
                             "use another --out") from None
        if any(previous.get(k) != v for k, v in recipe.items()):
            raise SystemExit(f"{args.out} holds renders of another recipe ({manifest}); use another --out")
    version = subprocess.run([blender, "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    partial = manifest.with_name(".manifest.partial.json")
    partial.write_text(json.dumps(recipe | {"blender": version[0] if version else "?"}, indent=2) + "\n")
    partial.replace(manifest)

    from tqdm import tqdm

    seeds = range(args.first_seed, args.first_seed + args.count)
    todo = [s for s in seeds if not (args.out / f"{s:06d}.exr").exists()]
    start = time.monotonic()
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (tests): SIGTERM keeps its handler
        previous = None
    try:
        for seed in tqdm(todo, desc="rendering", unit="foreground", file=sys.stderr):
            render_one(blender, seed, args.out / f"{seed:06d}.exr", args.size, args.samples, args.threads)
    except (_Terminated, KeyboardInterrupt) as stop:
        how = "SIGTERM" if isinstance(stop, _Terminated) else "Ctrl-C"
        print(f"stopped by {how}: the renders written are whole; run the same command again to continue", flush=True)
        return EXIT_TERMINATED if isinstance(stop, _Terminated) else EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"{len(todo)} rendered in {time.monotonic() - start:.0f} s; {len(seeds) - len(todo)} were there: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
