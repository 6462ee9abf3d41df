"""``lbsmatte demo``: matte the bundled example with the trained default weights (SPEC §11).

A quick check that an install works and a first look at what LBSMatte does. The example
(``core/examples/demo/``, made by ``tools/make_demo_example.py``, CC0) is a fur ball over a
photograph with exact ground truth, so the demo also prints LBSMatte's errors next to
closed-form matting's on the same plate and trimap (pymatting's result, stored with the example
so that a fresh install's first demo compiles nothing; ``--live-baseline`` computes it now).

Writes into ``--out`` (default ``./lbsmatte_demo``):

``demo.exr``            the matte as Nuke reads it (SPEC §5): premultiplied ``RGBA`` plus the ``fg``
                        and ``bg`` layers, scene-linear half float, as ``lbsmatte matte`` writes it:
                        ``A·fg + (1 − A)·bg`` gives the linearised plate back
``alpha.png``           alpha
``fg.png``, ``bg.png``  foreground and background colours (sRGB)
``composite.png``       the foreground over a new (checkerboard) background
``contact_sheet.png``   plate, trimap, ground truth, closed-form alpha, BG, FG, alpha, composite
``errors.json``         the numbers printed

A rerun into the same folder replaces them; a folder that holds files of those names an earlier
demo did not write (no demo ``errors.json`` or ``demo.exr`` beside them) is refused, naming them.

Without a trained default bundle the demo says so and exits non-zero: it never shows a matte
made by untrained networks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from core.errors import InputError, LBSMatteError, OutputError, WeightsError

#: The bundled example.
EXAMPLE = Path(__file__).resolve().parent / "examples" / "demo"
#: Files of the example.
EXAMPLE_FILES = ("image.png", "trimap.png", "alpha.png", "fg.png", "bg.png", "source.json",
                 "closed_form_alpha.png", "closed_form_fg.png", "closed_form.json")

NO_WEIGHTS = (
    "LBSMatte has no trained default weights bundle installed ({where}), so the demo cannot make a "
    "matte; it will not show the output of untrained networks. Install a trained bundle as "
    "core/bundles/default, or train one ('lbsmatte train --out DIR') and run "
    "'lbsmatte demo --weights DIR'."
)


def load_example(folder: Path = EXAMPLE) -> dict[str, np.ndarray]:
    """The example's arrays: ``image``, ``fg``, ``bg`` ``H×W×3`` and ``alpha``, ``trimap`` ``H×W``,
    float32 in [0, 1] as stored (sRGB-encoded); the trimap normalised to {0, 0.5, 1}."""
    from core.io import read_image
    from core.trimap import normalise_trimap

    arrays: dict[str, np.ndarray] = {}
    for name in ("image", "fg", "bg"):
        arrays[name] = read_image(folder / f"{name}.png").rgb()
    arrays["alpha"] = read_image(folder / "alpha.png").pixels[..., 0].copy()
    tri = read_image(folder / "trimap.png")
    arrays["trimap"] = normalise_trimap(tri.pixels, "auto", tri.channels)
    return arrays


def load_closed_form(folder: Path = EXAMPLE) -> tuple[np.ndarray, np.ndarray, float]:
    """The stored classical reference: closed-form alpha ``H×W``, multilevel foreground ``H×W×3``
    (sRGB-encoded, as the example) and the seconds pymatting took for them when they were made."""
    from core.io import read_image

    record = json.loads((folder / "closed_form.json").read_text(encoding="utf-8"))
    alpha = read_image(folder / "closed_form_alpha.png").pixels[..., 0].copy()
    return alpha, read_image(folder / "closed_form_fg.png").rgb(), float(record["seconds"])


def _load_matter(weights: Any, device: str) -> Any:
    """The trained networks, or :class:`WeightsError` with a plain message."""
    if str(weights) == "default":
        from core.weights import default_bundle_path, has_trained_default

        if not has_trained_default():
            raise WeightsError(NO_WEIGHTS.format(where=f"{default_bundle_path()} is missing or untrained"))
    from core.pipeline import Matter

    # allow_untrained=False even when LBSMATTE_ALLOW_UNTRAINED is set: the demo shows real mattes only.
    return Matter(weights, device=device, allow_untrained=False)


def run_demo(
    out: str | Path = "lbsmatte_demo",
    *,
    weights: Any = "default",
    device: str = "auto",
    matter: Any = None,
    stream: TextIO | None = None,
    live_baseline: bool = False,
) -> dict[str, Any]:
    """Matte the example, write the files listed in the module docstring, print and return the errors.

    Parameters
    ----------
    out:
        Output folder (created; checked writable before any work).
    weights, device:
        Bundle and device for :class:`core.pipeline.Matter`; the bundle must be trained.
    matter:
        An already loaded :class:`core.pipeline.Matter` to use instead (tests pass one of small
        networks, loaded with ``allow_untrained=True`` on purpose).
    live_baseline:
        Compute closed-form + multilevel foreground with pymatting now, instead of reading the
        reference stored with the example (``tools/make_demo_example.py --closed-form`` made it
        with the same calls). pymatting compiles its kernels just in time on first use: minutes
        on a fresh install, which is why the stored reference is the default.
    stream:
        Where the report goes (default stdout).

    Returns
    -------
    dict
        ``{"lbsmatte": {...}, "closed_form": {...}}``, each with ``sad mse grad conn fg_sad fg_mse
        seconds`` (see :mod:`core.metrics`), plus ``"files"``: the paths written.
    """
    from core.baselines import estimate_alpha_closed_form, estimate_foreground
    from core.cli import check_not_packaged_output
    from core.colour import LINEARISED_TAG, to_linear
    from core.contact_sheet import composite, write_contact_sheet, write_png
    from core.io import (
        atomic_output,
        check_not_input,
        check_writable_dir,
        locked_outputs,
        write_matte_exr,
    )
    from core.metrics import alpha_errors, foreground_error

    stream = sys.stdout if stream is None else stream
    out = Path(out)
    files = {
        "exr": out / "demo.exr",
        "alpha": out / "alpha.png",
        "fg": out / "fg.png",
        "bg": out / "bg.png",
        "composite": out / "composite.png",
        "contact_sheet": out / "contact_sheet.png",
        "errors": out / "errors.json",
    }
    for path in files.values():  # --out the example's own folder: its ground truth would become the result
        check_not_packaged_output("--out", path)
        try:
            check_not_input(path, [EXAMPLE / name for name in EXAMPLE_FILES])
        except OutputError as exc:  # a usage error, as 'matte --out' an input
            raise InputError(str(exc)) from exc
    theirs = _not_a_demos(out, files)
    if theirs:
        raise InputError(f"refusing to write the demo into --out {out}: it holds {', '.join(theirs)}, which the demo "
                         "would replace and an earlier demo did not write (its errors.json is not there); give the "
                         "demo a new or empty folder")
    check_writable_dir(out)
    if matter is None:
        matter = _load_matter(weights, device)
    ex = load_example()
    image, trimap, alpha_gt, fg_gt = ex["image"], ex["trimap"], ex["alpha"], ex["fg"]

    start = time.perf_counter()
    result = matter.matte(image, trimap, colour="srgb")
    seconds = time.perf_counter() - start
    errors: dict[str, Any] = {
        "lbsmatte": {**alpha_errors(result.alpha, alpha_gt, trimap),
                     **foreground_error(result.fg, fg_gt, alpha_gt, trimap), "seconds": seconds},
    }
    if live_baseline:
        start = time.perf_counter()
        cf_alpha = estimate_alpha_closed_form(image, trimap)
        cf_fg, _ = estimate_foreground(image, cf_alpha)
        cf_seconds = time.perf_counter() - start
    else:
        cf_alpha, cf_fg, cf_seconds = load_closed_form()
    errors["closed_form"] = {**alpha_errors(cf_alpha, alpha_gt, trimap),
                             **foreground_error(cf_fg, fg_gt, alpha_gt, trimap), "seconds": cf_seconds}

    # Locked as matte locks a frame: a demo killed outright (SIGKILL) while writing left its
    # temporary file in --out for good; once the locks are held, no other demo is writing these
    # files, and what an earlier one left is removed.
    with locked_outputs(files.values()):
        # As lbsmatte matte writes an sRGB plate's EXR: F and B of the sRGB solve moved so that
        # A·fg + (1 − A)·bg of the linearised layers, Nuke's Merge of them, gives the linearised plate.
        fg, bg = matter.agree_as_stored(image, trimap, result, linear=True)
        linear = argparse.Namespace(alpha=result.alpha, fg=to_linear(fg, "srgb"), bg=to_linear(bg, "srgb"))
        write_matte_exr(files["exr"], linear, premultiply=True, colourspace=LINEARISED_TAG)  # tagged as matte tags it
        comp = composite(result.fg, result.alpha)
        write_png(files["alpha"], result.alpha)
        write_png(files["fg"], result.fg)
        write_png(files["bg"], result.bg)
        write_png(files["composite"], comp)
        lbs, cf = errors["lbsmatte"], errors["closed_form"]
        write_contact_sheet(
            files["contact_sheet"],
            [
                ("plate", image),
                ("trimap", trimap),
                ("ground-truth alpha", alpha_gt),
                (f"closed-form alpha, SAD {cf['sad']:.2f}", cf_alpha),
                ("LBSMatte background", result.bg),
                ("LBSMatte foreground", result.fg),
                (f"LBSMatte alpha, SAD {lbs['sad']:.2f}", result.alpha),
                ("LBSMatte over a new background", comp),
            ],
            columns=4,
        )
        record = {"example": str(EXAMPLE), "weights": str(getattr(matter.bundle, "name", weights)), **errors}
        with atomic_output(files["errors"]) as tmp:  # a full disk must not leave an empty errors.json
            Path(tmp).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(format_report(errors, getattr(matter.bundle, "name", str(weights)), files, live_baseline), file=stream, flush=True)
    return {**errors, "files": {k: str(v) for k, v in files.items()}}


def _not_a_demos(out: Path, files: dict[str, Path]) -> list[str]:
    """The names of ``files`` already in ``out`` when an earlier demo did not write them: the
    demo's names are common ones (``alpha.png``, ``composite.png``), and ``--out .`` in a shot's
    folder replaced the artist's files of those names. A folder an earlier demo wrote into holds
    its ``errors.json`` (written last), or ``demo.exr`` (written first) when it was stopped
    between them: its files are the demo's to replace. Empty when nothing would be replaced."""
    there = [path.name for path in files.values() if path.exists() or path.is_symlink()]
    if not there or (out / "demo.exr").is_file():
        return []
    try:
        with open(out / "errors.json", "rb") as handle:
            record = json.loads(handle.read(1_000_000).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return there
    demo = isinstance(record, dict) and "example" in record and isinstance(record.get("lbsmatte"), dict)
    return [] if demo else there


def format_report(errors: dict[str, dict[str, float]], bundle: str, files: dict[str, Path], live: bool = True) -> str:
    """The demo's printed report: an aligned table of both methods' errors and the files written."""
    from core.evaluate import format_number, format_table

    keys = ["sad", "mse", "grad", "conn", "fg_sad", "fg_mse", "seconds"]
    header = ["method", "SAD", "MSE", "Grad", "Conn", "FG SAD", "FG MSE", "seconds"]
    own = "no networks, a diagnostic" if bundle == "none" else bundle
    names = {"lbsmatte": f"LBSMatte ({own})", "closed_form": "closed-form (pymatting)" if live else "closed-form (pymatting, stored)"}
    rows = [[names.get(m, m)] + [format_number(errors[m].get(k), k) for k in keys] for m in errors]
    lines = [
        f"LBSMatte demo: {EXAMPLE / 'image.png'} (600x400 fur ball; errors over the trimap's unknown region)",
        format_table(header, rows),
        *([] if live else ["closed-form: pymatting's result stored with the example (tools/make_demo_example.py); "
                           "--live-baseline computes it now"]),
        "",
        "wrote:",
        *(f"  {path}" for path in files.values()),
    ]
    return "\n".join(lines)


# -- command line ---------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser, command: str = "demo") -> None:
    """Arguments of ``lbsmatte demo [--out DIR]`` (SPEC §11)."""
    from core.cli import device_argument

    parser.add_argument("--out", type=Path, default=Path("lbsmatte_demo"),
                        help="output folder (default ./lbsmatte_demo)")
    parser.add_argument("--weights", default="default",
                        help="trained weights bundle, name or folder (default: default); 'none': the default bundle's "
                             "pipeline with parameter-free priors in place of the networks (a diagnostic)")
    parser.add_argument("--device", default="auto", type=device_argument, help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--live-baseline", action="store_true",
                        help="compute closed-form + multilevel foreground with pymatting now rather than read the "
                             "result stored with the example (pymatting's first use compiles for minutes)")


def run(args: argparse.Namespace) -> int:
    """Run ``lbsmatte demo``: 0 when the files were written, else the code of :func:`core.cli.exit_code`
    (with an ``ERROR:`` line)."""
    from core.cli import exit_code, log_to_stderr

    log_to_stderr()

    try:
        run_demo(args.out, weights=args.weights, device=args.device, live_baseline=getattr(args, "live_baseline", False))
    except LBSMatteError as exc:
        print(f"ERROR: {exc}", flush=True)
        return exit_code(exc)
    return 0
