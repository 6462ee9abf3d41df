"""Temporal stability: how much a matte flickers from frame to frame where the plate changes only by
grain, on a static shot and on a slow push, for ``lbsmatte matte`` and for closed-form matting.

From one alphamatting.com photo with its measured alpha and trimap (``<data>/image/NAME.png``,
``alpha/``, ``trimap/<variant>/``, read from the shared data, never copied; ``--half`` halves them
first) it builds short PNG sequences of ``--frames`` frames, each with its own grain (Gaussian,
``--grain`` in sRGB code values over 1, independent per pixel and channel, then 8-bit as a PNG):

``static``
    the same picture every frame: the true temporal change is 0;
``drift``
    a window moving ``--drift DY,DX`` whole pixels a frame (a slow push), trimap and truth cropped
    with it, so that after aligning two frames by the drift the true change is 0 again.

``--grain 0`` gives the same sequences without grain (on ``drift``: the networks' shift variance
alone). Each sequence is matted by ``lbsmatte matte`` in one process (EXR out; ``--args`` adds
flags, e.g. ``"--rounds 0"``, and can be given several times for several rows) and, frame by frame,
by pymatting's closed-form (``estimate_alpha_cf`` on the same 8-bit values, clipped, the trimap's
known regions kept). Columns:

``temporal``
    mean over ``t`` of the mean of ``|alpha_t - alpha_{t-1}|`` (aligned by the drift) over the pixels
    unknown in both frames; the truth's is printed beside it (0 with whole-pixel drift);
``>0.02``
    the share of those pixels whose alpha moved by more than 0.02 (about 5 code values of 8 bits:
    what shows as boiling on hair when played back);
``+ FrameBlend N``
    (static shot, ``--blend N``) the same alphas averaged over N frames centred on each (fewer at the
    ends), as Nuke's FrameBlend node on the matte of a locked-off shot;
``SAD``
    the mean, minimum and maximum over the frames of SAD (/1000) against the truth over the unknown
    region (:func:`core.metrics.sad`); ``--per-frame`` prints every frame's.

    python bench/flicker.py --names GT04 --half
    python bench/flicker.py --names GT04 --half --args "" --args "--rounds 0" --args "--levels 0,1"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.photos import DEFAULT_DATA, photo, pymatting_alpha  # noqa: E402

VISIBLE = 0.02


def load(data: Path, name: str, trimap: str, half: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photo ``H×W×3`` sRGB in [0, 1], its trimap ``H×W`` (0 / 0.5 / 1) and alpha ``H×W``."""
    plate, tri, gt = photo(data, name, trimap, half)
    tri = np.where(tri <= 0.02, 0.0, np.where(tri >= 0.98, 1.0, 0.5)).astype(np.float32)
    return plate.astype(np.float32), tri, gt.astype(np.float32)


def sequence(plate: np.ndarray, tri: np.ndarray, gt: np.ndarray, frames: int, drift: tuple[int, int],
             grain: float, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``frames`` (plate as 8-bit-rounded floats, trimap, truth): frame ``t`` is the window at
    ``t * drift`` of size (H, W) less the whole drift, with its own grain."""
    rng = np.random.default_rng(seed)
    dy, dx = drift
    h, w = plate.shape[0] - abs(dy) * (frames - 1), plate.shape[1] - abs(dx) * (frames - 1)
    if h < 64 or w < 64:
        raise SystemExit(f"a drift of {drift} over {frames} frames leaves {h}x{w} of a {plate.shape[:2]} photo")
    out = []
    for t in range(frames):
        y = t * dy if dy >= 0 else (frames - 1 - t) * -dy
        x = t * dx if dx >= 0 else (frames - 1 - t) * -dx
        crop = plate[y : y + h, x : x + w]
        noisy = crop + rng.normal(0.0, grain, crop.shape).astype(np.float32) if grain else crop
        out.append((np.round(np.clip(noisy, 0, 1) * 255) / 255, tri[y : y + h, x : x + w], gt[y : y + h, x : x + w]))
    return out


def temporal(alphas: list[np.ndarray], trimaps: list[np.ndarray], drift: tuple[int, int]) -> tuple[float, float]:
    """Mean |alpha_t - alpha_{t-1}| over the pixels unknown in both (aligned by ``drift``), averaged
    over t, and the share of those pixels that moved by more than :data:`VISIBLE`."""
    dy, dx = drift
    diffs, visible = [], []
    for a0, a1, t0, t1 in zip(alphas, alphas[1:], trimaps, trimaps[1:], strict=False):
        # content at (y, x) of frame t is at (y + dy, x + dx) of frame t-1
        h, w = a1.shape
        p = a0[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)]
        q = a1[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
        pt = t0[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)]
        qt = t1[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
        unknown = (pt == 0.5) & (qt == 0.5)
        d = np.abs(p - q)[unknown]
        diffs.append(float(d.mean()))
        visible.append(float((d > VISIBLE).mean()))
    return float(np.mean(diffs)), float(np.mean(visible))


def frame_blend(alphas: list[np.ndarray], n: int) -> list[np.ndarray]:
    """Each alpha averaged with its neighbours, ``n`` frames centred on it (fewer at the ends)."""
    lo, hi = (n - 1) // 2, n // 2
    return [np.mean(alphas[max(t - lo, 0) : t + hi + 1], axis=0) for t in range(len(alphas))]


def _write_png(path: Path, x: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(np.asarray(np.round(np.clip(x, 0, 1) * 255), np.uint8)).save(path)


def run_lbsmatte(seq: list, work: Path, args: str, weights: str) -> list[np.ndarray]:
    """``lbsmatte matte`` on the sequence written as PNG frames 1001..., EXR out; the alphas."""
    from core.io import read_image

    for sub in ("plate", "trimap", "out"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    for t, (plate, tri, _) in enumerate(seq):
        _write_png(work / "plate" / f"p.{1001 + t:04d}.png", plate)
        _write_png(work / "trimap" / f"t.{1001 + t:04d}.png", tri)
    command = [sys.executable, "-m", "core.cli", "matte", "--plate", str(work / "plate" / "p.####.png"),
               "--trimap", str(work / "trimap" / "t.####.png"), "--out", str(work / "out" / "m.####.exr"),
               "--weights", weights, "--device", "cpu", "--no-progress", *shlex.split(args)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    alphas = []
    for t in range(len(seq)):
        image = read_image(str(work / "out" / f"m.{1001 + t:04d}.exr"))
        alphas.append(image.pixels[..., image.channels.index("A")].astype(np.float32))
    return alphas


def run_closed_form(seq: list) -> list[np.ndarray]:
    return [pymatting_alpha(plate, tri).astype(np.float32) for plate, tri, _ in seq]


def measure(data: Path, names: list[str], trimap: str, frames: int, drift: tuple[int, int], grain: float,
            args: list[str], weights: str = "default", half: bool = False, closed_form: bool = True,
            shots: tuple[str, ...] = ("static", "drift"), blend: int = 0) -> list[dict[str, object]]:
    """One row per photo, shot and method: ``temporal``, ``visible``, ``truth``, ``sad`` (per frame)."""
    from core.metrics import sad

    rows: list[dict[str, object]] = []
    for name in names:
        plate, tri, gt = load(data, name, trimap, half)
        for shot in shots:
            step = (0, 0) if shot == "static" else drift
            seq = sequence(plate, tri, gt, frames, step, grain)
            trimaps, truths = [s[1] for s in seq], [s[2] for s in seq]
            truth, _ = temporal(truths, trimaps, step)
            methods = [(f"lbsmatte {a}".strip(), a) for a in args] + ([("closed-form", None)] if closed_form else [])
            for method, extra in methods:
                if extra is None:
                    alphas = run_closed_form(seq)
                else:
                    with tempfile.TemporaryDirectory(prefix="lbsmatte-flicker-") as tmp:
                        alphas = run_lbsmatte(seq, Path(tmp), extra, weights)
                results = [(method, alphas)]
                if blend > 1 and shot == "static":
                    results.append((f"{method} + FrameBlend {blend}", frame_blend(alphas, blend)))
                for label, result in results:
                    change, visible = temporal(result, trimaps, step)
                    sads = [sad(a, g, t) for a, g, t in zip(result, truths, trimaps, strict=True)]
                    row: dict[str, object] = {"name": name, "shot": shot, "method": label, "temporal": change,
                                              "visible": visible, "truth": truth, "sad": sads}
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    rows.append(row)
    return rows


def table(rows: list[dict[str, object]], per_frame: bool = False) -> str:
    lines = [f"{'photo':6} {'shot':6} {'method':28} {'temporal':>9} {'truth':>6} {'>0.02':>7} "
             f"{'SAD mean':>9} {'min':>7} {'max':>7}"]
    for r in rows:
        s = np.asarray(r["sad"])
        lines.append(f"{r['name']:6} {r['shot']:6} {r['method']:28} {r['temporal']:9.5f} {r['truth']:6.3f} "
                     f"{100 * r['visible']:6.2f}% {s.mean():9.3f} {s.min():7.3f} {s.max():7.3f}")
        if per_frame:
            lines.append("    SAD per frame: " + " ".join(f"{v:.3f}" for v in s))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA / "alphamatting"), help="an alphamatting-style set")
    parser.add_argument("--names", default="GT04")
    parser.add_argument("--trimap", default="Trimap1")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--drift", default="1,2", help="DY,DX whole pixels a frame of the push")
    parser.add_argument("--grain", type=float, default=0.01, help="grain's σ in sRGB over 1 (0: none)")
    parser.add_argument("--shots", default="static,drift")
    parser.add_argument("--args", action="append", help="flags for lbsmatte matte (a row each; default none)")
    parser.add_argument("--blend", type=int, default=0, help="also each static matte over N frames (FrameBlend)")
    parser.add_argument("--weights", default="default")
    parser.add_argument("--half", action="store_true", help="halve the photos first (area average)")
    parser.add_argument("--no-closed-form", action="store_true")
    parser.add_argument("--per-frame", action="store_true", help="print each frame's SAD")
    parser.add_argument("--json", help="write the rows here too")
    a = parser.parse_args(argv)
    dy, dx = (int(v) for v in a.drift.split(","))
    rows = measure(Path(a.data), a.names.split(","), a.trimap, a.frames, (dy, dx), a.grain, a.args or [""],
                   a.weights, a.half, not a.no_closed_form, tuple(a.shots.split(",")), a.blend)
    print(f"{a.frames} frames, grain σ {a.grain}, drift {dy},{dx} px/frame, trimap {a.trimap}"
          f"{', halved' if a.half else ''}")
    print(table(rows, a.per_frame))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
