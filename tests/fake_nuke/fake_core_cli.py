"""A stand-in for ``python -m core.cli matte`` written to its contract (SPEC §10-11), so the Nuke
layer's subprocess, progress, cancel, cache and read-back paths are tested without torch.

Run as ``<this file> -m core.cli matte --plate ... --trimap ... --out ... --frames A-B[,C-D,...]
--weights W --device D --colour C --trimap-channel T [--unpremultiply] [--edge PX]
[--write-trimap PATTERN]`` (tests install a ``python`` wrapper that runs this file with the
arguments it was given). ``--edge`` makes the trimap with the real ``core.trimap.trimap_from_matte``
(numpy and scipy only), so the trimap the node shows is the core's band by construction.

It writes what the real tool writes — EXR with ``R G B A fg.R fg.G fg.B bg.R bg.G bg.B``,
atomically — with a trivial "matte": alpha from the trimap (unknown -> 0.5), FG = plate,
BG = plate / 2. It prints ``LBSMATTE PROGRESS <frame> <i>/<n>`` after each frame (failed ones too) and ``ERROR: ...``
per failure, and exits 0 only when every frame was written.

Test knobs (environment): ``FAKE_CLI_LOG`` (append each call's arguments as a JSON line),
``FAKE_CLI_FAIL_FRAMES`` (comma-separated frames that fail), ``FAKE_CLI_WARN_FRAMES`` (frames
whose trimap the tool warns about, as the real one does for a soft matte given as the trimap:
``WARNING: frame N: trimap ...``, the frame still written), ``FAKE_CLI_SLEEP`` (seconds per
frame), ``FAKE_CLI_CRASH`` (exit 3 at once with a traceback-like message, no ERROR: line),
``FAKE_CLI_DEGRADED_FRAMES`` (frames
"computed" after running out of GPU memory: their header has ``lbsmatte/degraded``, as the real
tool's then has, and a ``WARNING:`` line), ``FAKE_CLI_TOUCH`` (append a line to that file, as if someone saved the script meanwhile),
``FAKE_CLI_PIDFILE`` (write the process id there), ``FAKE_CLI_BUSY_FRAMES`` /
``FAKE_CLI_BUSY_UNFINISHED`` (frames another run is writing: written by it meanwhile / not yet); for ``fingerprint``: ``FAKE_CLI_CORE`` (the
core's source hash), ``FAKE_CLI_DEVICE`` (what ``auto`` resolves to), ``FAKE_CLI_FINGERPRINT_FAIL``.
"""

import argparse
import hashlib
import json
import os
import re
import sys
import time

import numpy as np
import OpenImageIO as oiio

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def frame_file(pattern, frame):
    count = pattern.count("#")
    start = pattern.index("#")
    return pattern[:start] + f"{frame:0{count}d}" + pattern[start + count:]


def read(path):
    image = oiio.ImageInput.open(path)
    if image is None:
        raise OSError(f"cannot read {path}: {oiio.geterror()}")
    spec = image.spec()
    pixels = np.asarray(image.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT), np.float32)
    image.close()
    return pixels.reshape(spec.height, spec.width, spec.nchannels), list(spec.channelnames)


def write_exr(path, pixels, channels, degraded=None):
    """Half-float EXR, atomically (a temporary name, then a rename)."""
    tmp = path + ".tmp.exr"
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], len(channels), oiio.HALF)
    spec.channelnames = tuple(channels)
    if degraded:
        spec.attribute("lbsmatte/degraded", degraded)
    writer = oiio.ImageOutput.create(tmp)
    writer.open(tmp, spec)
    writer.write_image(np.ascontiguousarray(pixels, dtype=np.float32))
    writer.close()
    os.replace(tmp, path)
def print_fingerprint(args):
    """``fingerprint``: one JSON line as core.cli prints it; ``FAKE_CLI_CORE`` stands for the core's
    source hash (a test changes it to play a new core), ``FAKE_CLI_DEVICE`` for what auto resolves to
    (``cpu``, the default: a machine without CUDA, where cuda falls back to the CPU)."""
    if os.environ.get("FAKE_CLI_FINGERPRINT_FAIL"):
        print("ERROR: weights bundle 'x': alpha.safetensors: tensor stem.0.weight not finite")
        return 1
    machine = os.environ.get("FAKE_CLI_DEVICE", "cpu")
    # auto resolves to the machine's device, and cuda on a machine without CUDA falls back to the CPU
    device = machine if args.device == "auto" or (args.device == "cuda" and machine == "cpu") else args.device
    record = {"core_version": "0.1.0", "core_sha256": os.environ.get("FAKE_CLI_CORE", "core-1"),
              "bundle_sha256": args.weights, "device": device, "precision": "fp16" if device == "cuda" else "fp32",
              "ocio": None}
    record["fingerprint"] = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    print(json.dumps(record, sort_keys=True), flush=True)
    return 0


def main(argv):
    if argv[:2] != ["-m", "core.cli"]:
        print(f"ERROR: expected '-m core.cli', got {argv[:2]!r}")
        return 2
    parser = argparse.ArgumentParser(prog="lbsmatte")
    sub = parser.add_subparsers(dest="command", required=True)
    matte = sub.add_parser("matte")
    matte.add_argument("--plate", required=True)
    matte.add_argument("--trimap", required=True)
    matte.add_argument("--out", required=True)
    matte.add_argument("--frames", required=True)
    matte.add_argument("--weights", required=True)
    matte.add_argument("--device", choices=["auto", "cpu", "cuda"], required=True)
    matte.add_argument("--colour", required=True)
    matte.add_argument("--trimap-channel", choices=["auto", "alpha", "red", "luminance"], required=True)
    matte.add_argument("--unpremultiply", action="store_true")
    matte.add_argument("--rounds", type=int, default=None)  # absent: the number the bundle records
    matte.add_argument("--edge", type=int, default=None)
    matte.add_argument("--write-trimap", default=None)
    fingerprint = sub.add_parser("fingerprint")
    fingerprint.add_argument("--weights", required=True)
    fingerprint.add_argument("--device", choices=["auto", "cpu", "cuda"], required=True)
    fingerprint.add_argument("--colour", required=True)
    args = parser.parse_args(argv[2:])
    if args.command == "fingerprint":
        return print_fingerprint(args)
    if os.environ.get("FAKE_CLI_LOG"):
        with open(os.environ["FAKE_CLI_LOG"], "a") as handle:
            handle.write(json.dumps(argv) + "\n")
    if os.environ.get("FAKE_CLI_PIDFILE"):
        with open(os.environ["FAKE_CLI_PIDFILE"], "w") as handle:
            handle.write(str(os.getpid()))
    if os.environ.get("FAKE_CLI_TOUCH"):  # someone saves the script while the job runs
        with open(os.environ["FAKE_CLI_TOUCH"], "a") as handle:
            handle.write("# saved by someone else\n")
    if os.environ.get("FAKE_CLI_CRASH"):
        sys.stderr.write("Traceback (most recent call last):\nImportError: no module named torch\n")
        return 3
    if os.sep in args.weights and not os.path.isfile(os.path.join(args.weights, "manifest.json")):
        print(f"ERROR: weights bundle folder {args.weights} has no manifest.json")
        return 1
    frames = []
    for part in args.frames.split(","):  # "1001-1100", "-5--1", "7", "1001-1003,1007"
        first, last = re.match(r"^(-?\d+)(?:-(-?\d+))?$", part).groups()
        frames.extend(range(int(first), int(last or first) + 1))
    failing = set(int(f) for f in os.environ.get("FAKE_CLI_FAIL_FRAMES", "").split(",") if f)
    warned = set(int(f) for f in os.environ.get("FAKE_CLI_WARN_FRAMES", "").split(",") if f)
    degraded = set(int(f) for f in os.environ.get("FAKE_CLI_DEGRADED_FRAMES", "").split(",") if f)
    delay = float(os.environ.get("FAKE_CLI_SLEEP", "0") or 0)
    # Frames another run (another session computing the same key) is writing: this run's ERROR as the
    # core's lock words it; that run writes the frame meanwhile, or, for the unfinished ones, not yet.
    busy = set(int(f) for f in os.environ.get("FAKE_CLI_BUSY_FRAMES", "").split(",") if f)
    unfinished = set(int(f) for f in os.environ.get("FAKE_CLI_BUSY_UNFINISHED", "").split(",") if f)
    failed = []
    for i, frame in enumerate(frames, 1):
        try:
            if frame in busy | unfinished:
                out = frame_file(args.out, frame)
                if frame in busy:
                    write_exr(out, np.zeros((4, 4, 10), np.float32),
                              ("R", "G", "B", "A", "fg.R", "fg.G", "fg.B", "bg.R", "bg.G", "bg.B"))
                raise OSError(f"frame {frame}: {out} is being written by another lbsmatte run (pid 4242 on farm07 "
                              f"since 2026-01-01 00:00:00; lock {out}.lock); wait for it to finish or stop it")
            if frame in failing:
                raise OSError(f"frame {frame}: the plate {frame_file(args.plate, frame)} is truncated")
            plate, _ = read(frame_file(args.plate, frame))
            if frame in warned:
                print(f"WARNING: frame {frame}: trimap {frame_file(args.trimap, frame)}: 40% of its pixels are grey "
                      "levels a trimap does not use", flush=True)
            trimap, names = read(frame_file(args.trimap, frame))
            if args.trimap_channel == "alpha" or (args.trimap_channel == "auto" and "A" in names):
                t = trimap[:, :, names.index("A")]
            elif args.trimap_channel == "red":
                t = trimap[:, :, 0]
            else:
                t = trimap[:, :, :3].mean(axis=2)
            if args.edge is not None:
                sys.path.insert(0, REPO)
                from core.trimap import trimap_from_matte

                t = trimap_from_matte(t, args.edge)
            alpha = np.where(t >= 0.99, 1.0, np.where(t <= 0.01, 0.0, 0.5)).astype(np.float32)
            if args.write_trimap:
                write_exr(frame_file(args.write_trimap, frame), np.repeat(alpha[..., None], 3, axis=2), ("R", "G", "B"))
            fg = plate[:, :, :3]
            bg = plate[:, :, :3] * 0.5
            rgb = fg if args.unpremultiply else fg * alpha[..., None]
            out = np.concatenate([rgb, alpha[..., None], fg, bg], axis=2).astype(np.float32)
            how = "networks in tiles of 2048 px, not 4096 (out of GPU memory)" if frame in degraded else None
            if how:
                print(f"WARNING: frame {frame}: the networks ran in tiles of 2048 px, not 4096 (out of GPU memory)",
                      flush=True)
            write_exr(frame_file(args.out, frame), out,
                      ("R", "G", "B", "A", "fg.R", "fg.G", "fg.B", "bg.R", "bg.G", "bg.B"), how)
            if delay:
                time.sleep(delay)
        except OSError as exc:
            failed.append(str(frame))
            print(f"ERROR: {exc}", flush=True)
        print(f"LBSMATTE PROGRESS {frame} {i}/{len(frames)}", flush=True)  # after each frame, written or failed
    if failed:
        print(f"ERROR: {len(failed)} of {len(frames)} frame(s) failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
