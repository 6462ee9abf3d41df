"""``lbsmatte evaluate``: score LBSMatte and classical baselines on a data set (SPEC §9).

A data set is a folder::

    <set>/image/NAME.png          the composite or photo
    <set>/trimap/NAME.png         or trimap/<variant>/NAME.png for several trimaps per image
    <set>/alpha/NAME.png          ground-truth alpha
    <set>/fg/NAME.png             ground-truth foreground colour, when known (optional)
    <set>/bg/NAME.png             ground-truth background colour, when known (optional)

(``.png``, ``.exr``, ``.tif``, ``.jpg``, ``.dpx`` or ``.bmp``: :data:`EXTENSIONS`, not every file
:func:`core.io.read_image` reads; the same stem links the files). For every image and trimap variant,
LBSMatte (one :class:`core.pipeline.Matter`, loaded once) and each baseline of
:data:`core.baselines.BASELINES` matte the same plate and trimap; :func:`core.metrics.alpha_errors`
scores the alphas over the trimap's unknown region, and where ``fg/`` exists the foreground colour
is scored too (:func:`core.metrics.foreground_error`; baselines get their foreground from
:func:`core.baselines.estimate_foreground`). Without ``fg/`` (the alphamatting.com set) there are
no FG columns.

Integer files (PNG …) are sRGB-encoded and float files (EXR …) scene-linear, as Nuke's Read
assumes; baselines and the FG comparison work on the display (sRGB) encoding. A float ground truth
or trimap holding 0..255 is divided by 255 (with a warning); an image whose trimap has no unknown
pixel is a failure of that image, not a perfect score.

A data set of ground-truth mattes without trimaps (a show's CG renders or finished roto) is scored
with trimaps made from each alpha as the matting benchmarks make them (``trimaps_from_alpha``,
``--trimaps-from-alpha``: :class:`MadeTrimaps`, :func:`core.trimap.trimap_from_alpha`): unknown
where the alpha is soft, dilated by a number of pixels, or by one drawn per image from a seed.

Example
-------
>>> results = evaluate_dataset("../shared/data/alphamatting", names=["GT04"],
...                            trimaps=["Trimap1"], baselines=["closed_form"])  # doctest: +SKIP
>>> results["variants"]["Trimap1"]["mean"]["closed_form"]["sad"]                 # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import re
import sys
import time
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from core.errors import InputError, LBSMatteError, OutputError, WeightsError
from core.trimap import unit_scale  # a float matte or trimap on the 8-bit scale 0..255: divided by 255

#: The data set's own folders (:func:`find_samples`): the evaluation's inputs.
DATA_FOLDERS = ("image", "alpha", "trimap", "fg", "bg")

log = logging.getLogger(__name__)

#: Name of LBSMatte's own row in tables and JSON.
LBSMATTE = "lbsmatte"
#: The ablations (``ablations=True``): the bundle's networks with no refinement after them, and
#: the same pipeline with the parameter-free priors in place of the networks.
NETWORKS_ALONE = "networks_alone"
NO_NETWORKS = "no_networks"
#: The plate itself taken as the foreground and as the background layer (no alpha).
PLATE = "plate"
#: The ``method`` of a failure to write an image's contact sheet.
SHEET = "contact sheet"

#: Extensions looked for when matching files by name.
EXTENSIONS = (".png", ".exr", ".tif", ".tiff", ".jpg", ".jpeg", ".dpx", ".bmp")

#: The trimap "variant" name of a flat ``trimap/NAME.png`` layout.
FLAT_VARIANT = "trimap"

#: What each number in the JSON means.
UNITS = {
    "sad": "sum over the unknown region of |alpha - gt|, divided by 1000",
    "mse": "mean over the unknown region of (alpha - gt)^2",
    "grad": "sum over the unknown region of (|grad alpha| - |grad gt|)^2, Gaussian derivatives sigma=1.4, / 1000",
    "conn": "connectivity error, threshold step 0.1, p=1, summed over the unknown region, / 1000",
    "fg_sad": "sum over the unknown region and RGB of gt_alpha * |F - F_gt| (sRGB), / 1000",
    "fg_mse": "mean over the unknown region and RGB of gt_alpha * (F - F_gt)^2 (sRGB)",
    "bg_sad": "sum over the unknown region and RGB of (1 - gt_alpha) * |B - B_gt| (sRGB), / 1000",
    "bg_mse": "mean over the unknown region and RGB of (1 - gt_alpha) * (B - B_gt)^2 (sRGB)",
    "seconds": "wall-clock seconds to compute the alpha (LBSMatte: BG, FG and alpha), after an untimed first call",
}


@dataclass
class Sample:
    """The files of one image of a data set."""

    name: str
    image: Path
    alpha: Path
    #: The file each trimap variant is read from (made from: the alpha, for :class:`MadeTrimaps`).
    trimaps: dict[str, Path]
    fg: Path | None = None
    bg: Path | None = None


@dataclass(frozen=True)
class MadeTrimaps:
    """Trimaps made from each image's ground-truth alpha (:func:`core.trimap.trimap_from_alpha`).

    ``low == high``: every image's soft alpha dilated by ``low`` px. Otherwise each image gets its
    own dilation drawn uniformly from ``low..high`` by ``seed`` and its name (the same image gets the
    same trimap whatever else is scored with it, on any machine)."""

    low: int
    high: int
    seed: int = 0

    @property
    def name(self) -> str:
        """The trimap variant's name in tables, JSON and ``out/<variant>/``."""
        if self.low == self.high:
            return f"from_alpha_{self.low}px"
        return f"from_alpha_{self.low}-{self.high}px_seed{self.seed}"

    def dilation(self, image: str) -> int:
        """The dilation (px) of ``image``'s trimap."""
        if self.low == self.high:
            return self.low
        # The name's bytes on disk, whatever the locale decoded them as (a farm's LANG=C or Latin-1
        # one): its text's UTF-8 raised UnicodeEncodeError, or drew another dilation, there.
        rng = np.random.default_rng([self.seed, zlib.crc32(os.fsencode(image))])
        return int(rng.integers(self.low, self.high + 1))

    def record(self) -> dict[str, Any]:
        """How the trimaps were made, for the JSON."""
        from core.trimap import ALPHA_NOISE

        return {"made_from": "alpha", "dilate_px": self.low if self.low == self.high else [self.low, self.high],
                "seed": None if self.low == self.high else self.seed, "alpha_tolerance": ALPHA_NOISE,
                "rule": "unknown within dilate_px (Euclidean) of a pixel whose alpha is at least alpha_tolerance "
                        "from 0 and 1, or of either side of a hard 0/1 edge; the rest 1 where alpha is within "
                        "alpha_tolerance of 1, else 0"}


def parse_trimaps_from_alpha(value: str | Sequence[int | str] | None, seed: int = 0) -> list[MadeTrimaps]:
    """``--trimaps-from-alpha``: ``"10"``, ``"5,10,20"`` (a variant each) or ``"1-19"`` (a dilation
    per image drawn from 1..19 with ``seed``, a whole number >= 0), mixed as wanted; :class:`InputError`
    naming the value."""
    from core.trimap import check_dilation

    try:
        number = float(seed)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(seed, bool) or not (math.isfinite(number) and number == int(number) and number >= 0):
        # numpy's generators take no negative seed: -1 ended the evaluation in a traceback
        raise InputError(f"--trimap-seed takes a whole number >= 0, not {seed!r}")
    seed = int(seed) if isinstance(seed, (int, np.integer)) else int(number)
    if value is None:
        return []
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    items = [v for v in items if v]
    made = []
    for item in items:
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", item)
        if match:
            low, high = (check_dilation(v) for v in match.groups())
            if low > high:
                raise InputError(f"--trimaps-from-alpha {item}: the range runs from the smaller dilation to the larger")
        else:
            low = high = check_dilation(item)
        made.append(MadeTrimaps(low, high, int(seed)))
    if not made:
        raise InputError("--trimaps-from-alpha names no dilation (give pixels, e.g. 10, 5,10,20 or 1-19)")
    return list(dict.fromkeys(made))


# -- finding the files ----------------------------------------------------------------------------
def _by_stem(folder: Path) -> dict[str, Path]:
    """``{stem: path}`` of the image files (:data:`EXTENSIONS`) directly in ``folder``.

    Two of one stem (``sh010.exr`` and a ``sh010.png`` proxy, an EXR matte and its 8-bit preview)
    are an :class:`InputError` naming them, as for ``lbsmatte finetune``: which one is the data
    set's cannot be told (the first extension of :data:`EXTENSIONS` was taken without a word).
    A link whose target cannot be reached (a data set of links onto a show's share not mounted
    here) is an :class:`InputError` naming it, as for ``lbsmatte finetune``: passed over, its frame
    was said to have no image or no ground truth, or left out of the scores."""
    from core.io import check_link_reachable

    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in EXTENSIONS and not path.name.startswith("."):
            check_link_reachable(path)  # passed over as "not a file": "no image/NAME.*" or a frame left out
        if path.is_file() and path.suffix.lower() in EXTENSIONS and not path.name.startswith("."):
            old = found.get(path.stem)
            if old is not None:
                raise InputError(f"{folder} holds two files named {path.stem}: {old.name} and {path.name}; "
                                 "keep only the one to evaluate there")
            found[path.stem] = path
    return found


def _holds(root: Path) -> str:
    """What the data set folder ``root`` holds, for a message saying what it lacks, and the folder
    above where ``root`` is one of a data set's own folders (``lbsmatte evaluate show/image``)."""
    held = [f"{p.name}/" for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    said = f"; {root} holds " + (f"the folders {', '.join(held)}" if held else "no folder")
    if root.name in DATA_FOLDERS and (root.parent / "image").is_dir():
        said += f": give {root.parent}, the folder holding image/"
    return said


def find_samples(
    folder: str | os.PathLike[str], names: Iterable[str] | None = None, trimaps: Iterable[str] | None = None,
    made: Sequence[MadeTrimaps] = (),
) -> tuple[list[Sample], list[str]]:
    """The images of a data set (SPEC §9 layout) and its trimap variants, in name order.

    ``names`` / ``trimaps`` restrict to those images / variants; a name or variant that is not
    there is an :class:`InputError` listing what is. Images without a ground-truth alpha or
    without any trimap cannot be scored and are left out with a warning. With ``made``, the
    variants are those trimaps, made from each alpha, and ``trimap/`` is not read (``trimaps``
    with it is an :class:`InputError`).
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"data set folder not found: {root}")
    images = _by_stem(root / "image")
    if not images:
        raise InputError(f"{root}: no images in {root / 'image'} (expected image/NAME.png, SPEC §9 layout)"
                         + _holds(root))
    alphas = _by_stem(root / "alpha")
    if not alphas:  # every image was warned of alone, then "no image has both a ground-truth alpha and a trimap"
        raise InputError(f"{root}: no ground-truth mattes in {root / 'alpha'} (expected alpha/NAME.png, each named "
                         "as its image; a matte in the plate's own alpha is read from alpha/ too: link or copy the "
                         "plate there)" + _holds(root))
    trimap_root = root / "trimap"
    variants: dict[str, dict[str, Path]] = {}
    if made:
        if trimaps is not None:
            raise InputError(f"--trimaps {','.join(trimaps)} chooses trimap files, and --trimaps-from-alpha makes the "
                             "trimaps from the mattes instead: give one or the other")
        if trimap_root.is_dir():
            log.info("%s: its trimap/ files are not used: the trimaps are made from the mattes", root)
        variants = {m.name: alphas for m in made}
        trimaps = None
    else:
        flat = _by_stem(trimap_root)
        if flat:
            variants[FLAT_VARIANT] = flat
        if trimap_root.is_dir():
            for sub in sorted(p for p in trimap_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
                files = _by_stem(sub)
                if files:
                    variants[sub.name] = files
    if not variants:  # a fine-tune's data set may have none: it draws them from the mattes
        raise InputError(f"{root}: no trimaps in {trimap_root} (expected trimap/NAME.png or trimap/<variant>/NAME.png): "
                         "the metrics are over a trimap's unknown region; give each image the trimap it is to be "
                         "matted with, or --trimaps-from-alpha PX to make them from the mattes as the matting "
                         "benchmarks do" + _holds(root))
    if trimaps is not None:
        wanted = [t for t in trimaps if t]
        if not wanted:  # '--trimaps ""' chose nothing: said so, not "no image has a trimap"
            raise InputError(f"{root}: --trimaps names no trimap variant (there is: {', '.join(variants)})")
        missing = [t for t in wanted if t not in variants]
        if missing:
            raise InputError(f"{root}: no trimap variant {', '.join(missing)} (there is: {', '.join(variants)})")
        variants = {v: variants[v] for v in wanted}
    chosen = sorted(images)
    if names is not None:
        wanted_names = [n for n in names if n]
        if not wanted_names:
            raise InputError(f"{root}: --names names no image (there is: {', '.join(sorted(images))})")
        missing = [n for n in wanted_names if n not in images]
        if missing:
            raise InputError(f"{root}: no image {', '.join(missing)} in {root / 'image'} (there is: {', '.join(sorted(images))})")
        chosen = list(dict.fromkeys(wanted_names))  # a name given twice is scored once
    else:  # ground truth or a trimap whose image is missing: said so, as an image without its alpha is
        for name in sorted({*alphas, *(n for files in variants.values() for n in files)} - set(images)):
            found = ([alphas[name]] if name in alphas else []) + [f[name] for f in variants.values() if name in f]
            log.warning("%s: no image/%s.* for %s, not scored", root, name,
                        ", ".join(str(p.relative_to(root)) for p in found))
    fgs, bgs = _by_stem(root / "fg"), _by_stem(root / "bg")
    samples = []
    for name in chosen:
        if name not in alphas:
            log.warning("%s: no ground-truth alpha/%s.*, not scored", root, name)
            continue
        tri = {v: files[name] for v, files in variants.items() if name in files}
        if not tri:
            log.warning("%s: no trimap for %s in %s, not scored", root, name, ", ".join(variants))
            continue
        for variant in (v for v in variants if v not in tri):  # that variant's means leave it out
            folder = trimap_root if variant == FLAT_VARIANT else trimap_root / variant
            log.warning("%s: no trimap %s/%s.*, %s not scored with %s", root, folder.relative_to(root), name, name,
                        variant)
        samples.append(Sample(name, images[name], alphas[name], tri, fgs.get(name), bgs.get(name)))
    if not samples:
        raise InputError(f"{root}: no image has both a ground-truth alpha and a trimap")
    return samples, list(variants)


# -- reading --------------------------------------------------------------------------------------
def _read_plate(path: Path) -> tuple[np.ndarray, str]:
    """``(pixels H×W×3 float32, colour)``: colour ``srgb`` for integer files, ``linear`` for float files."""
    from core.colour import resolve_colour
    from core.io import read_image

    image = read_image(path)
    return image.rgb(), resolve_colour("auto", image.info.is_float, image.info.log_encoding)


def _read_alpha(path: Path) -> np.ndarray:
    """Ground-truth alpha ``H×W`` float32 in [0, 1]: the A channel when the file has a varying one,
    else the first channel (mattes are usually stored grey); a float file holding 0..255 is
    divided by 255 (:func:`core.trimap.unit_scale`)."""
    from core.io import read_image

    image = read_image(path)
    a = unit_scale(image.matte().astype(np.float32), path, image.info.is_float, "ground-truth alpha")
    return np.clip(np.nan_to_num(a, nan=0.0), 0.0, 1.0)


def _read_trimap(path: Path) -> np.ndarray:
    """The trimap, normalised to 0 / 0.5 / 1 (a float file holding 0/128/255 divided by 255 first)."""
    from core.io import read_image
    from core.trimap import normalise_trimap

    image = read_image(path)
    try:
        trimap = normalise_trimap(unit_scale(image.pixels, path, image.info.is_float, "trimap"), "auto",
                                  image.channels)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    return trimap


def _display(pixels: np.ndarray, colour: str) -> np.ndarray:
    from core.colour import to_display

    return np.clip(to_display(pixels, colour), 0.0, 1.0).astype(np.float32)


def _same_size(what: str, path: Path, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if array.shape[:2] != shape[:2]:
        raise InputError(
            f"{path}: {what} is {array.shape[1]}x{array.shape[0]} but the image is {shape[1]}x{shape[0]}"
        )


# -- evaluation -----------------------------------------------------------------------------------
def _parse_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    items = [v.strip() for v in value if v and v.strip()]
    return items


def _baselines(names: str | Sequence[str] | None) -> dict[str, Any]:
    from core.baselines import BASELINES

    chosen = _parse_list(names) or []
    if len(chosen) > 1 and ("none" in chosen or "all" in chosen):
        raise InputError(f"--baselines {','.join(chosen)}: 'none' and 'all' stand alone (or list baselines: "
                         f"{', '.join(BASELINES)})")
    if chosen in (["none"], ["all"]):
        chosen = [] if chosen == ["none"] else list(BASELINES)
    unknown = [n for n in chosen if n not in BASELINES]
    if unknown:
        raise InputError(f"unknown baseline {', '.join(unknown)}: choose from {', '.join(BASELINES)} (or none)")
    return {n: BASELINES[n] for n in dict.fromkeys(chosen)}


def _load_matter(weights: Any, device: str, rounds: int | None = None, space: str = "auto",
                 precision: str = "auto", layers: str | None = None, layer_prior: float | None = None) -> Any:
    from core.pipeline import Matter, refinement_settings, resolve_bundle

    if layer_prior is not None and layers != "multilevel":
        # Said with the flags' names before the pipeline's own check says it with its arguments'.
        bundle = resolve_bundle(weights)
        recorded = refinement_settings(bundle).layers
        if (layers or recorded) != "multilevel":
            why = (f"--layers {layers}" if layers is not None else
                   f"layers {recorded}, as the weights bundle {bundle.name!r} records it,")
            raise InputError(f"--layer-prior {layer_prior:g} weights the networks' colours in the multilevel layers, "
                             f"and {why} makes the layers per pixel without it: leave it out, or give --layers "
                             "multilevel")
        weights = bundle
    return Matter(weights, device=device, rounds=rounds, space=space, precision=precision, layers=layers,
                  layer_prior=layer_prior)


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    # Every row's keys, in order of first appearance: images without fg/ (no FG errors) may come first.
    keys = list(dict.fromkeys(k for r in rows for k in r if isinstance(r[k], (int, float))))
    out: dict[str, float] = {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}
    out["images"] = len(rows)
    return out


def evaluate_dataset(
    folder: str | os.PathLike[str],
    *,
    weights: Any = "default",
    baselines: str | Sequence[str] | None = ("closed_form", "knn", "lbdm", "clustering"),
    device: str = "auto",
    out: str | os.PathLike[str] | None = None,
    json_path: str | os.PathLike[str] | None = None,
    names: str | Sequence[str] | None = None,
    trimaps: str | Sequence[str] | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
    rounds: int | None = None,
    space: str = "auto",
    ablations: bool = False,
    precision: str = "auto",
    layers: str | None = None,
    layer_prior: float | None = None,
    trimaps_from_alpha: str | Sequence[int | str] | None = None,
    trimap_seed: int | None = None,
) -> dict[str, Any]:
    """Score LBSMatte and the baselines on every image × trimap variant of a data set.

    Parameters
    ----------
    folder:
        The data set (SPEC §9 layout, module docstring).
    weights:
        LBSMatte bundle (name, folder or :class:`core.weights.Bundle`); ``"none"``: the pipeline
        with the parameter-free priors of :mod:`core.nets.priors` in place of the networks and the
        ``default`` bundle's refinement settings (a diagnostic); ``None`` scores the baselines only. An untrained or missing bundle is a
        :class:`WeightsError`.
    baselines:
        Names from :data:`core.baselines.BASELINES` (a sequence or ``"a,b"``); ``None``/``"none"``/``()``: none.
    device:
        ``auto``, ``cpu`` or ``cuda`` for LBSMatte.
    out:
        Folder for one contact sheet per image and variant, ``out/<variant>/<NAME>.png``.
    json_path:
        Where to write the results as JSON.
    names, trimaps:
        Restrict to these image names / trimap variants (sequences or ``"a,b"``).
    progress:
        Show a tqdm progress bar on stderr.
    stream:
        Where the tables are printed (default stdout).
    rounds:
        LBSMatte's alternating rounds after the networks (:func:`core.compositing.refine`; default:
        what the bundle records, ``0``: the networks' alpha as it is).
    space:
        Where LBSMatte solves the compositing equation (:class:`core.pipeline.Matter`'s ``space``).
    ablations:
        Also score, on the same inputs, :data:`NETWORKS_ALONE` (the bundle's networks, no
        refinement) and :data:`NO_NETWORKS` (the pipeline with its refinement settings and the
        parameter-free priors of :mod:`core.nets.priors` in place of the networks).
    precision:
        The networks' arithmetic (:class:`core.pipeline.Matter`'s ``precision``).
    layers, layer_prior:
        How LBSMatte makes the final F and B (:class:`core.compositing.Settings`; default: what
        the bundle records).
    trimaps_from_alpha, trimap_seed:
        Make the trimaps from each ground-truth alpha instead of reading ``trimap/``
        (:func:`parse_trimaps_from_alpha`: ``"10"``, ``"5,10,20"``, ``"1-19"``, drawn per image
        with ``trimap_seed``, default 0); refused with ``trimaps``. A ``trimap_seed`` with no
        range to draw from is an :class:`InputError` (it would change nothing, unsaid).

    Returns
    -------
    dict
        ``{"lbsmatte_version", "dataset", "weights", "device", "methods", "metrics", "units", "variants",
        "failures"}``; ``weights`` is None without LBSMatte, else the bundle's ``name``, ``path``,
        ``manifest_sha256`` (which networks, whatever their name; None for ``"none"``), ``parent``
        (a fine-tune's, as its manifest records it), ``trained`` and the settings the run used
        (``rounds``, ``space``, ``precision``, ``refinement``);
        ``variants[V]["images"][NAME][METHOD]`` and ``variants[V]["mean"][METHOD]`` map metric
        names (``sad mse grad conn``, ``fg_sad fg_mse`` where ``fg/`` exists, ``seconds``) to
        floats; ``mean`` also has ``images`` (how many were scored). ``failures`` lists
        ``{"variant", "image", "method", "error"}`` for any method that raised on an image, with
        ``method`` None where the image's own files could not be used (it is then not scored) and
        :data:`SHEET` where its contact sheet could not be written (its scores are kept).
        ``variants[V]["trimap"]`` says how that variant's trimaps were made
        (:meth:`MadeTrimaps.record`, with ``dilate_px_per_image``), or ``{"made_from": "files"}``.
    """
    from tqdm import tqdm

    from core import __version__
    from core.cli import check_not_packaged_output
    from core.metrics import ALPHA_METRICS, BG_METRICS, FG_METRICS

    stream = sys.stdout if stream is None else stream
    chosen = _baselines(baselines if baselines is not None else "none")
    use_lbsmatte = weights is not None
    if not use_lbsmatte and not chosen:
        raise InputError("nothing to evaluate: LBSMatte left out (--no-lbsmatte) and no baselines (--baselines none)")
    made = {m.name: m for m in parse_trimaps_from_alpha(trimaps_from_alpha, 0 if trimap_seed is None else trimap_seed)}
    if trimap_seed is not None and all(m.low == m.high for m in made.values()):
        raise InputError(f"--trimap-seed {trimap_seed}: only a --trimaps-from-alpha range (MIN-MAX, e.g. 1-19) draws "
                         "dilations; " + ("it gives none" if not made else "its fixed dilations take no seed"))
    samples, variants = find_samples(folder, _parse_list(names), _parse_list(trimaps), list(made.values()))
    out_dir = Path(out) if out is not None else None
    for given, what in ((out_dir, "--out"), (Path(json_path) if json_path is not None else None, "--json")):
        if given is not None:
            _check_outside_data(given, Path(folder), what)
            check_not_packaged_output(what, given)
    if out_dir is not None:
        # The sheets go to out/<variant>/: with --out the data set itself, the flat layout's variant
        # ("trimap") is the trimaps' own folder, and a sheet would replace each trimap.
        for variant in variants:
            _check_outside_data(out_dir, Path(folder), "--out", out_dir / variant)
        check_not_packaged_output("--out", *(out_dir / variant for variant in variants))  # a linked sub-folder
        _check_sheets(samples, out_dir, Path(json_path) if json_path is not None else None)
    if out_dir is not None:
        _check_writable(out_dir)
    if json_path is not None:
        if Path(json_path).is_dir():
            raise InputError(f"--json {json_path} is a folder: give the path of a .json file")
        _check_writable(Path(json_path).parent)

    matter = _load_matter(weights, device, rounds, space, precision, layers, layer_prior) if use_lbsmatte else None
    if ablations and matter is None:
        raise InputError("the ablations are of LBSMatte's pipeline: leave out --no-lbsmatte to score them")
    if ablations:
        from core.nets.priors import PriorBundle

        if isinstance(matter.bundle, PriorBundle):  # its "networks alone" would be alpha 0.5, named as the networks
            raise InputError("the ablations take a bundle's networks apart, and --weights none has no networks "
                             "(it is the no_networks ablation itself): give --weights a bundle to score them")
    matters = {LBSMATTE: matter} if matter is not None else {}
    if ablations:
        from core.pipeline import Matter

        settings = matter.refinement
        # The networks' own alpha and layers (only made to agree with the plate), whatever the
        # bundle records for the final layers.
        matters[NETWORKS_ALONE] = Matter(matter.bundle, device=device, rounds=0, space=space, precision=precision,
                                         layers="solve")
        if settings.rounds:
            same = {k: v for k, v in dataclasses.asdict(settings).items() if k != "max_iterations"}
            # The matting network's alpha as a data term (μ) is part of what the networks bring: the
            # priors' alpha is a constant 0.5, and a pull toward it would only handicap them.
            same["network_weight"] = 0.0
            if not same["knn"]:  # no KNN term: its searches' settings are refused (Matter), not dropped
                for key in ("knn_neighbours", "knn_position", "knn_band", "knn_stride"):
                    del same[key]
            if same["layers"] != "multilevel":  # the per-pixel layers use no prior: refused too
                del same["layer_prior"]
            matters[NO_NETWORKS] = Matter("none", device=device, space=space, **same)
        else:  # the row was missing without a word
            log.warning("no refinement rounds (--rounds 0, or as the bundle records): the pipeline is the networks alone, "
                        "and %s (the priors with no refinement, alpha 0.5) is no matte: not scored", NO_NETWORKS)
    has_fg = any(s.fg is not None for s in samples)
    has_bg = any(s.bg is not None for s in samples)
    # With true layers, the plate itself is scored as the foreground and as the background: the
    # answer a compositor gets by doing nothing, which estimated layers have to beat.
    methods = list(matters) + list(chosen) + ([PLATE] if has_fg or has_bg else [])
    metrics = list(ALPHA_METRICS) + (list(FG_METRICS) if has_fg else []) + (list(BG_METRICS) if has_bg else [])
    results: dict[str, Any] = {
        "lbsmatte_version": __version__,
        "dataset": str(Path(folder).resolve()),
        "weights": _weights_record(matter),
        "device": str(matter.device) if matter is not None else None,
        "methods": methods,
        "metrics": metrics,
        "units": {k: UNITS[k] for k in metrics + ["seconds"]},
        "variants": {v: {"images": {}, "mean": {}, "trimap": _trimap_record(made.get(v), samples)} for v in variants},
        "failures": [],
    }
    _warm_up(matters, chosen)
    jobs = [(s, v) for v in variants for s in samples if v in s.trimaps]
    # disable=None: tqdm draws the bar only on a terminal; into a farm's log file it wrote a
    # carriage-return line per update (as matte's bar, which --no-progress turns off at a terminal too).
    bar = tqdm(total=len(jobs), desc="evaluate", unit="image", disable=None if progress else True, file=sys.stderr)
    try:
        for sample, variant in jobs:
            bar.set_postfix_str(f"{variant}/{sample.name}")
            try:
                scores = _evaluate_one(sample, variant, matters, chosen, out_dir, results["failures"],
                                       made.get(variant))
            except InputError as exc:  # this image's files (damaged, sizes that differ): the others are still scored
                results["failures"].append({"variant": variant, "image": sample.name, "method": None, "error": str(exc)})
                print(f"ERROR: {variant}/{sample.name}: {exc}; not scored", flush=True)
            else:
                results["variants"][variant]["images"][sample.name] = scores
            bar.update(1)
    finally:
        bar.close()
    for block in results["variants"].values():
        for method in methods:
            rows = [img[method] for img in block["images"].values() if method in img]
            if rows:
                block["mean"][method] = _mean(rows)
    print(format_tables(results), file=stream, flush=True)
    if json_path is not None:
        _write_json(Path(json_path), results)
    return results


def _trimap_record(made: MadeTrimaps | None, samples: list[Sample]) -> dict[str, Any]:
    """How a variant's trimaps came to be: read from ``trimap/``, or made from the alphas (with
    each image's dilation, so that a table of drawn dilations can be made again)."""
    if made is None:
        return {"made_from": "files"}
    return {**made.record(), "dilate_px_per_image": {s.name: made.dilation(s.name) for s in samples}}


def _warm_up(matters: dict[str, Any], baselines: dict[str, Any]) -> None:
    """Run every method once, untimed, on a small plate of its own (a soft edge over a ramp), so that
    the first image's seconds are its own: they counted the methods' first-call costs — pymatting's
    numba kernels loaded from their cache (about 3 s here; compiled, a minute or more, where no cache
    holds them), scikit-learn's import, torch's first convolutions (about 1 s). A failure here is
    left to the images, where it is reported."""
    yy, xx = np.mgrid[0:96, 0:96].astype(np.float32) / 95.0
    alpha = np.clip((xx - 0.4) / 0.2, 0.0, 1.0)[..., None]
    plate = (alpha * np.array([0.8, 0.5, 0.3], np.float32) + (1.0 - alpha) * np.stack([yy, xx, 0.5 + 0 * xx], -1))
    plate = plate.astype(np.float32)
    trimap = np.where(xx < 0.3, 0.0, np.where(xx > 0.7, 1.0, 0.5)).astype(np.float32)
    for matter in matters.values():
        try:
            matter.matte(plate, trimap, colour="srgb")
        except Exception:  # scored and reported on the images
            pass
    for fn in baselines.values():
        try:
            fn(plate, trimap)
        except Exception:  # likewise
            pass


def _weights_record(matter: Any) -> dict[str, Any] | None:
    if matter is None:
        return None
    bundle = matter.bundle
    refinement = getattr(matter, "refinement", None)
    dtype = getattr(matter, "dtype", None)
    path = getattr(bundle, "path", None)
    manifest = getattr(bundle, "manifest", {})
    sha = getattr(bundle, "manifest_sha256", None)
    return {
        "name": getattr(bundle, "name", None),
        "path": str(path) if path is not None else None,  # --weights none has no folder ("None" was written)
        # Which networks these were, whatever the bundle is named: a show's abc_v1 fine-tuned again
        # under the same name (or another folder of that name on LBSMATTE_WEIGHTS_PATH) read the same
        # as the one scored last week, and two runs' files could not be told apart.
        "manifest_sha256": sha() if callable(sha) else None,
        "parent": manifest.get("parent"),
        "trained": manifest.get("trained") is True,
        "rounds": getattr(refinement, "rounds", None),
        "space": getattr(matter, "space", None),
        # What --precision, --layers, --layer-prior and --rounds made of the bundle's record: two
        # runs' files otherwise read the same whatever those flags were.
        "precision": str(dtype).removeprefix("torch.") if dtype is not None else "float32",
        # Those that applied (Settings.applied): with --rounds 0, not the bundle's levels and KNN term.
        "refinement": (refinement.applied(layers=getattr(matter, "fg_solve", 1) > 0)
                       if dataclasses.is_dataclass(refinement) else None),
    }


def _evaluate_one(
    sample: Sample,
    variant: str,
    matters: dict[str, Any],
    baselines: dict[str, Any],
    out_dir: Path | None,
    failures: list[dict[str, str]],
    made: MadeTrimaps | None = None,
) -> dict[str, dict[str, float]]:
    """Every method on one image and trimap: ``{method: {metric: value}}``; writes its contact sheet.
    ``made``: the trimap is made from the ground-truth alpha so."""
    from core.baselines import estimate_foreground
    from core.contact_sheet import composite
    from core.metrics import alpha_errors, background_error, foreground_error
    from core.trimap import ALPHA_NOISE, split_trimap, trimap_from_alpha

    plate, colour = _read_plate(sample.image)
    display = _display(plate, colour)
    alpha_gt = _read_alpha(sample.alpha)
    _same_size("the ground-truth alpha", sample.alpha, alpha_gt, plate.shape)
    if made is not None:
        trimap = trimap_from_alpha(alpha_gt, made.dilation(sample.name))
        if not split_trimap(trimap)[2].any():
            raise InputError(f"{sample.alpha}: the matte has no soft pixel and no edge (all within "
                             f"{ALPHA_NOISE * 255:g}/255 of 0, or of 1), so the trimap made from it has no unknown "
                             "pixel: nothing to score")
    else:
        trimap = _read_trimap(sample.trimaps[variant])
        _same_size("the trimap", sample.trimaps[variant], trimap, plate.shape)
    if not split_trimap(trimap)[2].any():  # every metric would be 0: a perfect score, silently
        raise InputError(f"{sample.trimaps[variant]}: the trimap has no unknown pixel (0.5, or 128 of 255): "
                         "nothing to score")
    fg_gt = None
    if sample.fg is not None:
        fg_pixels, fg_colour = _read_plate(sample.fg)
        fg_gt = _display(fg_pixels, fg_colour)
        _same_size("the ground-truth foreground", sample.fg, fg_gt, plate.shape)
    bg_gt = None
    if sample.bg is not None:
        bg_pixels, bg_colour = _read_plate(sample.bg)
        bg_gt = _display(bg_pixels, bg_colour)
        _same_size("the ground-truth background", sample.bg, bg_gt, plate.shape)

    def layer_errors(fg: np.ndarray, bg: np.ndarray) -> dict[str, float]:
        out = foreground_error(fg, fg_gt, alpha_gt, trimap) if fg_gt is not None else {}
        return {**out, **(background_error(bg, bg_gt, alpha_gt, trimap) if bg_gt is not None else {})}

    scores: dict[str, dict[str, float]] = {}
    outputs: dict[str, dict[str, np.ndarray]] = {}

    def fail(method: str, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, LBSMatteError) else str(exc)
        failures.append({"variant": variant, "image": sample.name, "method": method, "error": message})
        print(f"ERROR: {variant}/{sample.name} {method}: {message}", flush=True)

    for method, matter in matters.items():
        try:
            start = time.perf_counter()
            result = matter.matte(plate, trimap, colour=colour)
            seconds = time.perf_counter() - start
            fg = _display(result.fg, colour)
            bg = _display(result.bg, colour)
            scores[method] = {**alpha_errors(result.alpha, alpha_gt, trimap), "seconds": seconds,
                              **layer_errors(fg, bg)}
            # Over a new background in the plate's encoding, where F and B recomposite it (linear
            # light for an EXR), as Nuke's Merge over composites the result; not of the sRGB tiles.
            outputs[method] = {"alpha": result.alpha, "fg": fg, "bg": bg,
                               "composite": composite(result.fg, result.alpha, colour=colour)}
        except Exception as exc:  # one failure must not stop a long evaluation
            fail(method, exc)
    for name, fn in baselines.items():
        try:
            start = time.perf_counter()
            alpha = fn(display, trimap)
            seconds = time.perf_counter() - start
            scores[name] = {**alpha_errors(alpha, alpha_gt, trimap), "seconds": seconds}
            outputs[name] = {"alpha": alpha}
            if fg_gt is not None or bg_gt is not None:
                fg, bg = estimate_foreground(display, alpha)
                outputs[name].update(fg=fg, bg=bg)
                scores[name].update(layer_errors(fg, bg))
        except Exception as exc:
            fail(name, exc)
    if fg_gt is not None or bg_gt is not None:
        scores[PLATE] = layer_errors(display, display)
    if out_dir is not None and outputs:
        try:
            _write_sheet(out_dir / variant / f"{sample.name}.png", display, trimap, alpha_gt, scores, outputs)
        except OutputError as exc:  # a full disk: the scores so far and the others' are kept
            fail(SHEET, exc)
    return scores


def _write_sheet(
    path: Path,
    display: np.ndarray,
    trimap: np.ndarray,
    alpha_gt: np.ndarray,
    scores: dict[str, dict[str, float]],
    outputs: dict[str, dict[str, np.ndarray]],
) -> None:
    """Contact sheet of one image: plate, trimap, ground truth, best baseline; BG, FG, alpha,
    composite of the main method (LBSMatte, or the best baseline when LBSMatte was not run)."""
    from core.baselines import estimate_foreground
    from core.contact_sheet import composite, write_contact_sheet
    from core.io import locked_outputs

    # The ablations are LBSMatte's own pipeline in parts, not baselines.
    baselines = sorted((m for m in outputs if m not in (LBSMATTE, NETWORKS_ALONE, NO_NETWORKS)),
                       key=lambda m: scores[m]["sad"])
    best = baselines[0] if baselines else None
    main = LBSMATTE if LBSMATTE in outputs else best
    assert main is not None
    out = outputs[main]
    if "fg" not in out:
        out["fg"], out["bg"] = estimate_foreground(display, out["alpha"])
    label = "LBSMatte" if main == LBSMATTE else main
    if best is not None and best != main:
        fourth = (f"best baseline: {best} alpha, SAD {scores[best]['sad']:.2f}", outputs[best]["alpha"])
    else:
        fourth = (f"{label} |alpha - GT|", np.abs(out["alpha"] - alpha_gt))
    tiles = [
        ("plate", display),
        ("trimap", trimap),
        ("ground-truth alpha", alpha_gt),
        fourth,
        (f"{label} background", out["bg"]),
        (f"{label} foreground", out["fg"]),
        (f"{label} alpha, SAD {scores[main]['sad']:.2f}", out["alpha"]),
        (f"{label} over a new background", out["composite"] if "composite" in out else composite(out["fg"], out["alpha"])),
    ]
    with locked_outputs([path]):  # what an evaluation killed while writing it (SIGKILL) left is removed
        write_contact_sheet(path, tiles, columns=4)


# -- reporting ------------------------------------------------------------------------------------
_HEADERS = {
    "sad": "SAD", "mse": "MSE", "grad": "Grad", "conn": "Conn", "fg_sad": "FG SAD", "fg_mse": "FG MSE",
    "bg_sad": "BG SAD", "bg_mse": "BG MSE",
    "seconds": "s/image", "images": "images",
}


def format_number(value: Any, key: str) -> str:
    """A metric value as a table shows it (``-`` for missing/NaN; MSE with 5 decimals)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key == "images":
        return str(int(value))
    if key in ("mse", "fg_mse", "bg_mse"):
        return f"{value:.5f}"
    if key == "seconds":
        return f"{value:.2f}"
    return f"{value:.3f}"


def text_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide and full-width characters (an image
    named ``日本_01``) two, combining marks none, the others one (``len`` misaligned the table)."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
               for c in text)


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned, a rule under the header."""
    widths = [max(text_width(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = []
    for r in [header] + rows:
        pads = [" " * (w - text_width(c)) for c, w in zip(r, widths, strict=True)]
        cells = [r[0] + pads[0]] + [pad + c for c, pad in zip(r[1:], pads[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_tables(results: dict[str, Any]) -> str:
    """Plain-text tables, one block per trimap variant: the means per method, then SAD per image."""
    methods = results["methods"]
    keys = results["metrics"] + ["seconds", "images"]
    blocks = []
    weights = results.get("weights") or {}
    if weights.get("name") == "none":
        blocks.append("lbsmatte: --weights none, NO NETWORKS (pull-push fill for B and F, alpha 0.5, then the "
                      "refinement with the default bundle's settings): a diagnostic of what the networks add")
    elif weights:  # a show's bundle's table and the default's read alike: every row was "lbsmatte"
        sha = weights.get("manifest_sha256")
        blocks.append(f"lbsmatte: weights bundle {weights.get('name')!r} ({weights.get('path')}"
                      + (f", manifest sha256 {sha[:12]}" if sha else "") + f"), {weights.get('rounds')} refinement "
                      f"round(s), {weights.get('precision')}")
    # What the numbers are: the columns carried no unit, and SAD read as a plain sum.
    layers = [k.split("_")[0].upper() for k in results["metrics"] if k.endswith("_sad")]
    blocks.append("SAD, Grad, Conn" + "".join(f", {k} SAD" for k in layers) + ": sums over the unknown region / "
                  "1000; MSE" + "".join(f", {k} MSE" for k in layers) + ": means there; alpha in 0..1 whatever "
                  "the plates' encoding" + (f", {'/'.join(layers)} colours in the sRGB encoding" if layers else "")
                  + "; s/image: seconds")
    for variant, block in results["variants"].items():
        n = len(block["images"])
        title = f"== {variant}: {n} image{'s' if n != 1 else ''} (metrics over the trimap's unknown region) =="
        how = _trimap_said(block.get("trimap") or {})
        if how:
            title += "\n" + how
        means = [[m] + [format_number(block["mean"].get(m, {}).get(k), k) for k in keys] for m in methods]
        per_image = [
            [name] + [format_number(block["images"][name].get(m, {}).get("sad"), "sad") for m in methods]
            for name in block["images"]
        ]
        per_image.append(["mean"] + [format_number(block["mean"].get(m, {}).get("sad"), "sad") for m in methods])
        blocks.append(
            "\n".join(
                [
                    title,
                    format_table(["mean over images"] + [_HEADERS[k] for k in keys], means),
                    "",
                    format_table(["SAD per image"] + methods, per_image),
                ]
            )
        )
    if results.get("failures"):
        blocks.append(f"{len(results['failures'])} failure(s): see the ERROR lines above")
    return "\n\n".join(blocks)


def _trimap_said(record: dict[str, Any]) -> str:
    """The line under a variant's title saying how its trimaps were made (:func:`_trimap_record`);
    "" for trimaps read from files."""
    if record.get("made_from") != "alpha":
        return ""
    k = record["dilate_px"]
    dilated = f"{k} px" if isinstance(k, int) else f"{k[0]}-{k[1]} px, drawn per image with seed {record['seed']}"
    return (f"trimaps made from the ground-truth alpha: unknown where it is soft (at least "
            f"{record['alpha_tolerance'] * 255:g}/255 from 0 and 1) or on a hard edge, dilated {dilated}")


def _check_writable(folder: Path) -> None:
    """Fail before any work when ``folder`` cannot be created or written (SPEC §8)."""
    from core.io import check_writable_dir

    check_writable_dir(folder)


def _check_outside_data(path: Path, folder: Path, what: str, written: Path | None = None) -> None:
    """Refuse, before any work, an output inside the data set's own folders (its images, mattes,
    trimaps and layers are the user's inputs: a results file must never replace one).
    ``written``: where ``what`` ``path`` puts its files, when that is below it."""
    target = (written or path).resolve()
    for sub in DATA_FOLDERS:
        inputs = (folder / sub).resolve()
        if target == inputs or inputs in target.parents:
            into = f" (its files would go to {written})" if written is not None else ""
            raise InputError(f"refusing to write {what} {path}{into}: it lies in the data set's {sub}/ folder "
                              f"({folder / sub}), the evaluation's input; write it outside those folders")


def _check_sheets(samples: list[Sample], out_dir: Path, json_path: Path | None) -> None:
    """Refuse, before any work, a contact sheet (``out/<variant>/NAME.png``) that is one of the data
    set's files through a symbolic or hard link (the folder checks see the folders, not a sheet
    linked back to its own ground truth), that is the ``--json`` file, or that is a folder."""
    from core.io import InputFiles, output_key

    inputs = InputFiles(p for s in samples for p in (s.image, s.alpha, s.fg, s.bg, *s.trimaps.values()) if p is not None)
    json_key = output_key(json_path) if json_path is not None else None
    for sample in samples:
        for variant in sample.trimaps:
            sheet = out_dir / variant / f"{sample.name}.png"
            if sheet.is_dir():  # found only when writing it, after the image's work, and the run stopped there
                raise InputError(f"refusing to write --out {out_dir}: its contact sheet {sheet} is a folder; "
                                 "write the sheets to a folder of their own")
            found = inputs.find(sheet)
            if found is not None:
                raise InputError(f"refusing to write --out {out_dir}: its contact sheet {sheet} is one of the data "
                                 f"set's files ({found}); write the sheets to a folder of their own")
            if json_key is not None and output_key(sheet) == json_key:
                raise InputError(f"--json {json_path} is also where the contact sheet of {sample.name} goes "
                                 f"(--out, {sheet}); give the results a file of their own")


def _write_json(path: Path, results: dict[str, Any]) -> None:
    from core.io import atomic_output, locked_outputs

    try:
        text = json.dumps(_finite(results), indent=2, allow_nan=False, default=_jsonable)
    except ValueError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from exc
    # A temporary file of its own (a fixed name was shared by two runs writing the same --json:
    # one could rename the other's half-written file into place).
    with locked_outputs([path]), atomic_output(path) as tmp:  # what an evaluation killed while writing it left is removed
        Path(tmp).write_text(text + "\n", encoding="utf-8")


def _finite(value: Any) -> Any:
    """``value`` with NaN/inf floats replaced by None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):  # numpy's float32 is no Python float
        return float(value) if math.isfinite(value) else None
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# -- command line ---------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser, command: str = "evaluate") -> None:
    """Arguments of ``lbsmatte evaluate DATASET [...]`` (SPEC §11)."""
    from core.cli import device_argument

    parser.add_argument("dataset", type=Path, help="data set folder: image/, trimap/[<variant>/], alpha/ [fg/ bg/]")
    parser.add_argument("--no-lbsmatte", action="store_true", help="score the baselines only")
    parser.add_argument("--weights", default="default",
                        help="LBSMatte weights bundle (name or folder; default: default); 'none': the same pipeline "
                             "with parameter-free priors in place of the networks and the default bundle's refinement "
                             "settings (a diagnostic)")
    parser.add_argument("--baselines", default="closed_form,knn,lbdm,clustering",
                        help="comma-separated baselines: closed_form, knn, lbdm, clustering; 'none' or 'all' "
                             "(default: all four)")
    parser.add_argument("--json", dest="json_path", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--out", type=Path, default=None, help="folder for a contact sheet per image (out/<variant>/NAME.png)")
    parser.add_argument("--names", default=None, help="only these images, comma-separated (e.g. GT04,GT13)")
    parser.add_argument("--trimaps", default=None, help="only these trimap variants, comma-separated (e.g. Trimap1)")
    parser.add_argument("--trimaps-from-alpha", default=None, metavar="PX[,PX|MIN-MAX...]",
                        help="make the trimaps from the ground-truth mattes instead of reading trimap/: unknown "
                             "where the alpha is soft, dilated PX pixels; a variant per value (5,10,20), or MIN-MAX "
                             "for a dilation drawn per image with --trimap-seed (refused with --trimaps)")
    parser.add_argument("--trimap-seed", type=int, default=None, metavar="N",
                        help="seed (a whole number >= 0) of the dilations --trimaps-from-alpha MIN-MAX draws (default 0)")
    parser.add_argument("--device", default="auto", type=device_argument, help="auto, cpu, cuda or cuda:N (for LBSMatte)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"),
                        help="the networks' arithmetic, as for 'matte' (default auto)")
    parser.add_argument("--layers", choices=("solve", "multilevel"), default=None,
                        help="how LBSMatte makes the final F and B (default: what the bundle records)")
    parser.add_argument("--layer-prior", type=float, default=None, metavar="W",
                        help="weight of the networks' colours in multilevel layers (default: what the bundle records; "
                             "refused with --layers solve, which uses none)")
    from core.cli import rounds_argument

    parser.add_argument("--rounds", type=rounds_argument, default=None, metavar="N",
                        help="LBSMatte's alternating rounds after the networks (default: what the bundle records; "
                             "0: the networks alone)")
    parser.add_argument("--space", choices=("auto", "linear", "display"), default="auto",
                        help="where LBSMatte solves the compositing equation (default auto: linear light for "
                             "linear and OCIO plates, the sRGB encoding for sRGB files)")
    parser.add_argument("--ablations", action="store_true",
                        help=f"also score {NETWORKS_ALONE} (the networks, no refinement) and {NO_NETWORKS} (the same "
                             "refinement on parameter-free priors instead of the networks: a diagnostic)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``lbsmatte evaluate``; 0 when every method scored every image, 1 otherwise, 2 for a usage
    error (a bad value, a data set folder that is not there, --json or --out among its inputs) as
    ``lbsmatte matte`` (:func:`core.cli.exit_code`; ``ERROR:`` lines say why)."""
    from core.cli import exit_code, log_to_stderr

    log_to_stderr()

    try:
        results = evaluate_dataset(
            args.dataset,
            weights=None if getattr(args, "no_lbsmatte", False) else args.weights,
            baselines=args.baselines,
            device=args.device,
            out=args.out,
            json_path=args.json_path,
            names=args.names,
            trimaps=args.trimaps,
            progress=not getattr(args, "no_progress", False),
            rounds=getattr(args, "rounds", None),
            space=getattr(args, "space", "auto"),
            ablations=getattr(args, "ablations", False),
            precision=getattr(args, "precision", "auto"),
            layers=getattr(args, "layers", None),
            layer_prior=getattr(args, "layer_prior", None),
            trimaps_from_alpha=getattr(args, "trimaps_from_alpha", None),
            trimap_seed=getattr(args, "trimap_seed", None),
        )
    except LBSMatteError as exc:
        hint = ""
        if isinstance(exc, WeightsError) and not getattr(args, "no_lbsmatte", False):  # not for any message that says "bundle"
            hint = " (use --no-lbsmatte to score the baselines only)"
        print(f"ERROR: {exc}{hint}", flush=True)
        return exit_code(exc)
    if args.json_path is not None:
        print(f"wrote {args.json_path}", flush=True)
    if args.out is not None:  # a full disk may have refused some (or all): not said as if all were there
        unwritten = sum(1 for failure in results["failures"] if failure["method"] == SHEET)
        print(f"contact sheets in {args.out}" + (f" ({unwritten} not written: see the ERROR lines above)"
                                                 if unwritten else ""), flush=True)
    return 1 if results["failures"] else 0
