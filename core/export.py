"""``lbsmatte export``: the whole pipeline as one TorchScript module for Nuke's Inference node.

::

    lbsmatte export --out lbsmatte.pt [--weights NAME] [--rounds N] [--max-iterations N]

writes one :func:`torch.jit.script` module (:class:`LBSMatteModule`) holding a weights bundle's
three networks and the refinement, to be turned into a ``.cat`` file by Nuke's CatFileCreator
(``docs/nuke.md``). Its contract is Foundry's, one tensor in and one out:

- **input** ``1×4×H×W``: scene-linear R, G, B of the plate and the trimap (0 BG, 0.5 unknown,
  1 FG; :func:`core.trimap.split_trimap` decides) in the fourth channel; any H and W; float32,
  or float16 when Nuke's "Optimize for Speed and Memory" is on (the module and its input are then
  half precision: the networks run in their weights' dtype, the refinement in float32).
- **output** ``1×7×H×W`` in the input's dtype and on its device: alpha, fg.R, fg.G, fg.B, bg.R,
  bg.G, bg.B; scene-linear, FG unpremultiplied. Alpha is exactly 0 / 1 and FG / BG exactly the
  plate where the trimap says so (the plate's own values, HDR and negatives included); no NaN or
  infinity ever (NaN and infinite plate pixels are sanitised as :func:`core.colour.sanitise` does,
  values beyond ±:data:`core.pipeline.SOLVE_LIMIT` clamped to it for the refinement as the
  pipeline does; half-precision output is clamped to half's finite range).

It computes what :meth:`core.pipeline.Matter.matte` does for a ``linear`` plate (same crop to the
unknown region plus :func:`core.pipeline.context_margin`, same padding, networks, display
encoding, refinement in linear light with the exact agreement ``αF + (1 − α)B = I``), with the
code of :mod:`core.nets` and :mod:`core.compositing` compiled, not a copy of it. Differences: no
tiling (the whole region goes through each network at once), and the matting Laplacian is applied
as a 25-point stencil (:func:`core.compositing.stencil_product`) instead of a sparse matrix, since
the torch of Nuke 13 and 14 has no sparse CSR tensors (the same operator, the same numbers to
float rounding). The refinement's KNN term (:mod:`core.knn`, ``knn`` in the bundle's settings) is
left out: its neighbour search needs a k-d tree; the file's record says so (``knn_left_out``) and
``lbsmatte export`` warns (with ``--rounds 0`` too: the module then has no rounds to miss it in, but
its ``rounds`` knob raised in Nuke runs them without it).

The module's attributes ``rounds``, ``max_iterations`` and ``smoothing`` can be made knobs in
CatFileCreator; ``torch_version``, ``lbsmatte_version`` and ``weights`` say what it was made with
(also in the file's extra file ``lbsmatte.json``, readable without loading the module:
:func:`read_export_info`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any, List, Optional, Tuple

import torch
from torch import nn

from core import __version__
from core.colour import decode_srgb, encode_srgb
from core.compositing import (
    CONFIDENCE_SCALE,
    FG_SOLVE_BG_RATIO,
    FG_SOLVE_WEIGHT,
    MAX_ITERATIONS,
    ROUNDS,
    SMOOTHING,
    TOLERANCE,
    Settings,
    paste_known,
    refine_with,
)
from core.errors import InputError, LBSMatteError, WeightsError
from core.pipeline import (
    EXPOSURE_CAP,
    EXPOSURE_LEVEL,
    EXPOSURE_PERCENTILE,
    LUMINANCE_WEIGHTS,
    SOLVE_LIMIT,
    context_margin,
)
from core.trimap import split_trimap_tensor

#: Channels of the module's input and output tensors, in order.
INPUT_CHANNELS = ("R", "G", "B", "trimap")
OUTPUT_CHANNELS = ("alpha", "fg.R", "fg.G", "fg.B", "bg.R", "bg.G", "bg.B")
#: The Nuke channels CatFileCreator's "Channels In" / "Channels Out" take for them (Nuke accepts
#: only its own predefined channels there; the gizmo shuffles the seven back to alpha, fg, bg).
NUKE_CHANNELS_IN = ("rgba.red", "rgba.green", "rgba.blue", "rgba.alpha")
NUKE_CHANNELS_OUT = ("rgba.alpha", "rgba.red", "rgba.green", "rgba.blue", "forward.u", "forward.v", "backward.u")
#: The extra file in the saved module that records what it was made with.
INFO_FILE = "lbsmatte.json"
#: Largest finite float16 value: half-precision output is clamped to it (never inf).
HALF_MAX = 65504.0


class LBSMatteModule(nn.Module):
    """The BG -> FG -> alpha networks and the refinement, scriptable, for one tensor in and out.

    Parameters
    ----------
    background, foreground, matting:
        The bundle's three networks (:meth:`core.weights.Bundle.load_networks`), in eval mode.
    rounds, max_iterations, smoothing, tolerance, confidence_scale, fg_weight:
        The refinement's settings (:class:`core.compositing.Settings`, ``fg_solve``).
    weights:
        What the networks are, for the record (bundle name and manifest checksum).

    Attributes
    ----------
    rounds, max_iterations, smoothing:
        Plain ``int`` / ``float`` attributes: CatFileCreator turns them into knobs of the
        Inference node (an Int_Knob named ``rounds`` sets ``rounds``).
    match_exposure:
        ``bool`` (default True): a night plate is matted scaled up in linear light, FG and BG
        scaled back, as :class:`core.pipeline.Matter` does (:func:`core.pipeline.exposure_scale`).
    torch_version, lbsmatte_version, weights:
        Strings recording the torch and LBSMatte that made the module and its bundle.
    """

    def __init__(self, background: nn.Module, foreground: nn.Module, matting: nn.Module, *,
                 rounds: int = ROUNDS, max_iterations: int = MAX_ITERATIONS, smoothing: float = SMOOTHING,
                 tolerance: float = TOLERANCE, confidence_scale: float = CONFIDENCE_SCALE,
                 fg_weight: float = FG_SOLVE_WEIGHT, weights: str = "", layers: str = "solve",
                 layer_prior: float = 0.1, layer_space: str = "solve", agree_ratio: float = FG_SOLVE_BG_RATIO,
                 network_weight: float = 0.0, black_point: float = 0.0, white_point: float = 1.0,
                 sample_alpha: str = "network") -> None:
        super().__init__()
        settings = Settings(rounds, smoothing, confidence_scale, tolerance, max_iterations, layers, layer_prior,
                            layer_space, agree_ratio, network_weight=network_weight, black_point=black_point,
                            white_point=white_point, sample_alpha=sample_alpha)  # validates
        if not (math.isfinite(fg_weight) and fg_weight > 0):
            raise InputError(f"fg_weight must be > 0, not {fg_weight!r}")
        self.background = background
        self.foreground = foreground
        self.matting = matting
        self.rounds: int = settings.rounds
        self.max_iterations: int = settings.max_iterations
        self.smoothing: float = settings.smoothing
        self.tolerance: float = settings.tolerance
        self.confidence_scale: float = settings.confidence_scale
        self.fg_weight: float = float(fg_weight)
        self.multilevel: bool = settings.layers == "multilevel"
        self.layer_prior: float = settings.layer_prior
        self.layers_encoded: bool = settings.layer_space == "display"  # the module works in linear light
        self.agree_ratio: float = settings.agree_ratio
        self.network_weight: float = settings.network_weight
        self.black_point: float = settings.black_point
        self.white_point: float = settings.white_point
        self.half_samples: bool = settings.sample_alpha == "half"
        self.unsolved_samples: bool = settings.sample_alpha == "unsolved"
        self.solve_limit: float = SOLVE_LIMIT
        self.match_exposure: bool = True
        self.exposure_percentile: float = EXPOSURE_PERCENTILE
        self.exposure_level: float = EXPOSURE_LEVEL
        self.exposure_cap: float = EXPOSURE_CAP
        self.luminance_weights: List[float] = [float(c) for c in LUMINANCE_WEIGHTS]
        self.stride: int = math.lcm(*(int(getattr(n, "stride", 1)) for n in (background, foreground, matting)))
        self.torch_version: str = str(torch.__version__)
        self.lbsmatte_version: str = __version__
        self.weights: str = weights
        # Follows the networks through .to(device) and .half(): the dtype they run in.
        self.register_buffer("probe", torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N×4×H×W`` (R, G, B scene-linear; trimap) -> ``N×7×H×W`` (alpha, FG, BG), see the module notes."""
        if x.dim() != 4 or x.shape[1] < 4:
            raise ValueError("LBSMatte expects a 1x4xHxW tensor: scene-linear R, G, B and the trimap")
        frames: List[torch.Tensor] = []
        for n in range(x.shape[0]):
            frames.append(self.matte(x[n : n + 1, 0:3].float(), x[n : n + 1, 3:4].float()))
        out = torch.cat(frames, 0)
        out = torch.where(torch.isfinite(out), out, torch.zeros_like(out))
        if x.dtype == torch.float16:
            out = out.clamp(-65504.0, 65504.0)  # HALF_MAX (TorchScript reads no module floats)
        return out.to(x.dtype)

    def matte(self, plate: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
        """One frame, float32: plate ``1×3×H×W`` scene-linear, trimap ``1×1×H×W`` -> ``1×7×H×W``."""
        fg_known, bg_known, unknown = split_trimap_tensor(trimap)
        height, width = plate.shape[2], plate.shape[3]
        # What the networks see: NaN, -inf and negatives to 0, +inf to the largest finite value
        # (at least 1), as core.colour.sanitise; everywhere else the plate's own values.
        finite = torch.isfinite(plate)
        low = torch.full_like(plate, -1.0)
        top = max(1.0, float(torch.where(finite, plate, low).max()))
        clean = torch.where(finite, plate.clamp_min(0.0), torch.zeros_like(plate))
        clean = torch.where(plate == float("inf"), torch.full_like(plate, top), clean)
        own = torch.where(finite, plate, clean)
        zeros = torch.zeros_like(own)
        alpha = fg_known.to(own.dtype)
        fg = torch.where(fg_known, own, zeros)
        bg = torch.where(bg_known, own, zeros)
        if bool(unknown.any()):
            ys = torch.nonzero(unknown[0, 0].any(1)).reshape(-1)
            xs = torch.nonzero(unknown[0, 0].any(0)).reshape(-1)
            y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
            margin = context_margin(y1 - y0, x1 - x0)
            y0, y1 = max(0, y0 - margin), min(height, y1 + margin)
            x0, x1 = max(0, x0 - margin), min(width, x1 + margin)
            tri = fg_known.to(own.dtype) + 0.5 * unknown.to(own.dtype)  # normalised: 0, 0.5, 1
            # The refinement's plate clamped to ±SOLVE_LIMIT, as the pipeline's (core.pipeline._bounded):
            # float32 squares of larger values overflow, and one such pixel (an unpremultiplied
            # near-zero alpha) spread NaN through the unknown region's solve.
            solve = own[:, :, y0:y1, x0:x1]
            shown = clean[:, :, y0:y1, x0:x1]
            scale = self.exposure_scale(solve) if self.match_exposure else 1.0
            if scale != 1.0:  # a night plate, scaled up in linear light as the pipeline does
                solve = solve * scale
                shown = shown * scale
            solve = solve.clamp(-self.solve_limit, self.solve_limit)
            a_box, f_box, b_box = self.region(shown, solve, tri[:, :, y0:y1, x0:x1])
            if scale != 1.0:
                f_box = f_box / scale
                b_box = b_box / scale
            u = unknown[:, :, y0:y1, x0:x1]
            alpha[:, :, y0:y1, x0:x1] = torch.where(u, a_box, alpha[:, :, y0:y1, x0:x1])
            fg[:, :, y0:y1, x0:x1] = torch.where(fg_known[:, :, y0:y1, x0:x1], own[:, :, y0:y1, x0:x1], f_box)
            bg[:, :, y0:y1, x0:x1] = torch.where(bg_known[:, :, y0:y1, x0:x1], own[:, :, y0:y1, x0:x1], b_box)
        return torch.cat([alpha, fg, bg], 1)

    def exposure_scale(self, linear: torch.Tensor) -> float:
        """:func:`core.pipeline.exposure_scale` of a ``1×3×h×w`` region: the same grid of pixels,
        the same percentile (numpy's linear interpolation, by a sort: no ``torch.quantile`` in
        older torch, nor for more than 16M values)."""
        h, w = linear.shape[2], linear.shape[3]
        step = max(1, int(math.ceil(math.sqrt(h * w / 524288.0))))
        grid = linear[0, :, ::step, ::step]
        weights = self.luminance_weights
        luminance = (weights[0] * grid[0] + weights[1] * grid[1] + weights[2] * grid[2]).reshape(-1)
        n = luminance.numel()
        if n == 0:
            return 1.0
        ordered = torch.sort(luminance)[0]
        position = self.exposure_percentile / 100.0 * (n - 1)
        below = int(math.floor(position))
        above = min(below + 1, n - 1)
        low = float(ordered[below])
        level = low + (float(ordered[above]) - low) * (position - below)
        if not level < self.exposure_level or level <= 0.0:
            return 1.0
        return min(self.exposure_cap, self.exposure_level / level)

    def region(self, clean: torch.Tensor, own: torch.Tensor, trimap: torch.Tensor
               ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The networks and the refinement on one region (:meth:`core.pipeline.Matter._run_at`
        and ``_finish``): alpha, FG, BG in linear light, ``1×C×h×w``."""
        h, w = trimap.shape[2], trimap.shape[3]
        s = self.stride
        ph, pw = (s - h % s) % s, (s - w % s) % s
        # The networks see the display encoding clipped to [0, 1], as they were trained.
        img = encode_srgb(clean).clamp(0.0, 1.0)
        # Replicate padding to the networks' stride: edges look like more of the same content.
        img = nn.functional.pad(img, [0, pw, 0, ph], mode="replicate")
        tri = nn.functional.pad(trimap, [0, pw, 0, ph], mode="replicate")
        fg_known, bg_known, unknown = split_trimap_tensor(tri)
        probe = self.probe
        assert isinstance(probe, torch.Tensor)
        dtype = probe.dtype
        bg = self.background(torch.cat([img, (~bg_known).to(img.dtype)], 1).to(dtype)).float()
        bg = paste_known(bg, img, bg_known)
        fg = self.foreground(torch.cat([img, (~fg_known).to(img.dtype), bg], 1).to(dtype)).float()
        fg = paste_known(fg, img, fg_known)
        # On the CPU the matting network's full-resolution layers run only around the unknown
        # pixels (the same values there), as the pipeline does.
        where = unknown if img.device.type == "cpu" else None
        alpha = self.matting(torch.cat([img, tri, bg, fg], 1).to(dtype), where).float()
        alpha = torch.where(unknown, alpha, fg_known.to(alpha.dtype))
        alpha = alpha[:, :, :h, :w].clamp(0.0, 1.0)
        fg = decode_srgb(fg[:, :, :h, :w].clamp(0.0, 1.0))
        bg = decode_srgb(bg[:, :, :h, :w].clamp(0.0, 1.0))
        # The refinement over the unknown pixels' bounding box plus the 2 px their windows reach.
        u = unknown[0, 0, :h, :w]
        ys = torch.nonzero(u.any(1)).reshape(-1)
        xs = torch.nonzero(u.any(0)).reshape(-1)
        y0, y1 = max(0, int(ys[0]) - 2), min(h, int(ys[-1]) + 3)
        x0, x1 = max(0, int(xs[0]) - 2), min(w, int(xs[-1]) + 3)
        a_r, f_r, b_r, _ = refine_with(
            own[:, :, y0:y1, x0:x1], trimap[:, :, y0:y1, x0:x1], alpha[:, :, y0:y1, x0:x1],
            fg[:, :, y0:y1, x0:x1], bg[:, :, y0:y1, x0:x1], self.rounds, self.smoothing, self.confidence_scale,
            self.tolerance, self.max_iterations, self.fg_weight, None, True,
            multilevel=self.multilevel, layer_prior=self.layer_prior, layers_encoded=self.layers_encoded,
            agree_ratio=self.agree_ratio, network_weight=self.network_weight, black_point=self.black_point,
            white_point=self.white_point, half_samples=self.half_samples,
            unsolved_samples=self.unsolved_samples)
        alpha = alpha.clone()
        fg = fg.clone()
        bg = bg.clone()
        alpha[:, :, y0:y1, x0:x1] = a_r
        fg[:, :, y0:y1, x0:x1] = f_r
        bg[:, :, y0:y1, x0:x1] = b_r
        return alpha.clamp(0.0, 1.0), fg, bg


def build_module(weights: Any = "default", *, rounds: Optional[int] = None, max_iterations: Optional[int] = None,
                 allow_untrained: Optional[bool] = None) -> LBSMatteModule:
    """:class:`LBSMatteModule` for a weights bundle (name, folder or :class:`core.weights.Bundle`),
    its networks prepared as :class:`core.pipeline.Matter` prepares them (batch norms folded into
    the convolutions), on the CPU, in float32; not yet scripted. An untrained bundle is refused
    unless ``allow_untrained`` (or ``LBSMATTE_ALLOW_UNTRAINED=1``)."""
    from core.errors import WeightsError
    from core.nets.priors import PriorBundle
    from core.pipeline import ALLOW_UNTRAINED_ENV, prepare_for_inference, refinement_settings, resolve_bundle

    bundle = resolve_bundle(weights)
    if isinstance(bundle, PriorBundle):
        # The diagnostic without networks (lbsmatte matte/evaluate --weights none): nothing to export.
        raise InputError("--weights none is the parameter-free priors, a diagnostic of lbsmatte matte and evaluate "
                         "with no networks: there is nothing to export; give a weights bundle's name or folder")
    if allow_untrained is None:
        allow_untrained = os.environ.get(ALLOW_UNTRAINED_ENV, "") == "1"
    if bundle.manifest.get("trained") is not True and not allow_untrained:  # as Bundle.trained reads it
        raise WeightsError(f"weights bundle {bundle.name!r} ({bundle.path}) holds untrained networks; "
                           "LBSMatte will not export them as a matte")
    nets = {role: prepare_for_inference(net, channels_last=False) for role, net in bundle.load_networks("cpu").items()}
    chosen = refinement_settings(bundle, rounds)  # those the bundle records for its networks, else the defaults
    return LBSMatteModule(
        nets["background"], nets["foreground"], nets["alpha"],
        rounds=chosen.rounds, smoothing=chosen.smoothing, confidence_scale=chosen.confidence_scale,
        tolerance=chosen.tolerance,
        layers=chosen.layers, layer_prior=chosen.layer_prior, layer_space=chosen.layer_space,
        agree_ratio=chosen.agree_ratio, network_weight=chosen.network_weight,
        black_point=chosen.black_point, white_point=chosen.white_point, sample_alpha=chosen.sample_alpha,
        max_iterations=MAX_ITERATIONS if max_iterations is None else max_iterations,
        weights=f"{bundle.name or bundle.path.name} sha256:{bundle.manifest_sha256()}",
    )


def export(out: str | os.PathLike[str], weights: Any = "default", *, rounds: Optional[int] = None,
           max_iterations: Optional[int] = None, allow_untrained: Optional[bool] = None) -> dict[str, Any]:
    """Script :func:`build_module`'s module and save it to ``out`` (atomically), with
    :data:`INFO_FILE` recording the torch and LBSMatte versions, the bundle and the channels.
    Returns that record."""
    from core.io import atomic_output, check_output_folder, locked_outputs
    from core.pipeline import refinement_settings, resolve_bundle
    from core.weights import check_not_packaged

    # Checked before the minute of scripting: the name is what CatFileCreator reads, and it keeps
    # the export off anything else of the user's (a bundle's own .safetensors, an image).
    if Path(out).is_dir():
        raise InputError(f"--out {out} is a folder: give the path of the .pt file to write")
    if Path(out).suffix.lower() != ".pt":
        raise InputError(f"--out {out}: the TorchScript file's name must end in .pt (what CatFileCreator reads)")
    try:  # the shipped bundles' folders are read-only to every command
        check_not_packaged(out)
    except WeightsError as exc:
        raise InputError(f"--out: {exc}") from None
    bundle = resolve_bundle(weights)  # read once: the module's networks and the record of what it leaves out
    module = build_module(bundle, rounds=rounds, max_iterations=max_iterations, allow_untrained=allow_untrained)
    # Before the scripting, once the weights are known good: its folder made, or a link into a
    # missing one refused, as matte's --out.
    check_output_folder(out)
    scripted = torch.jit.script(module.eval())
    info = {
        "format": "lbsmatte-torchscript",
        "torch_version": module.torch_version,
        "lbsmatte_version": module.lbsmatte_version,
        "weights": module.weights,
        "input": list(INPUT_CHANNELS),
        "output": list(OUTPUT_CHANNELS),
        "nuke_channels_in": list(NUKE_CHANNELS_IN),
        "nuke_channels_out": list(NUKE_CHANNELS_OUT),
        "knobs": {"rounds": module.rounds, "max_iterations": module.max_iterations, "smoothing": module.smoothing},
        # The bundle's KNN term (core.knn) is not in the module: its neighbour search needs a k-d
        # tree (scipy), which TorchScript has not, and a brute-force search is quadratic in the crop.
        "knn_left_out": refinement_settings(bundle, rounds).knn,
    }
    # Locked as matte locks a frame: an export killed outright (SIGKILL, a farm's after its grace
    # period) left its temporary file beside OUT for good; once the lock is held, no other export
    # is writing OUT, and what an earlier one left is removed.
    with locked_outputs([out]), atomic_output(out) as tmp, open(tmp, "wb") as handle:
        # Saved through a handle: torch names the archive's folder after a path's file name (here the
        # temporary one), after a handle "archive".
        torch.jit.save(scripted, handle, _extra_files={INFO_FILE: json.dumps(info, indent=1)})
    return info


def read_export_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The :data:`INFO_FILE` record of a saved module, read from the file (a zip archive)
    without loading it, so any torch version, or none, can tell what made it."""
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith(f"/extra/{INFO_FILE}") or name == f"extra/{INFO_FILE}":
                return dict(json.loads(archive.read(name)))
    raise LBSMatteError(f"{path} is not an LBSMatte export (no {INFO_FILE} in it)")


# -- the ``lbsmatte export`` command (core.cli.LAZY_COMMANDS) -----------------------------------
def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    from core.cli import rounds_argument, setting_argument

    parser.add_argument("--out", required=True, help="the TorchScript file to write (e.g. lbsmatte.pt), for CatFileCreator")
    parser.add_argument("--weights", default="default", help="weights bundle name or folder (default: default)")
    parser.add_argument("--rounds", type=rounds_argument, default=None,
                        help="refinement rounds, the module's 'rounds' attribute (default: the bundle's recorded "
                             f"number, else {ROUNDS}; a knob in Nuke)")
    parser.add_argument("--max-iterations", type=setting_argument("max_iterations", "--max-iterations", "per round"),
                        default=None,
                        help=f"conjugate-gradient iterations per round at most, 'max_iterations' (default {MAX_ITERATIONS})")


def run(args: argparse.Namespace) -> int:
    """``lbsmatte export``: 0 the module written, else the code of :func:`core.cli.exit_code`."""
    from core.cli import exit_code

    try:
        info = export(args.out, args.weights, rounds=args.rounds, max_iterations=args.max_iterations)
    except LBSMatteError as exc:
        print(f"ERROR: {exc}", flush=True)
        return exit_code(exc)
    # Only the rounds use the KNN term: with none, the module is lbsmatte matte --rounds 0's matte,
    # until its 'rounds' knob is raised in Nuke; its rounds then run without the term too.
    where = "(docs/nuke.md, 'Export the module': the row 'KNN term')"
    if info["knn_left_out"] > 0 and info["knobs"]["rounds"] > 0:
        print(f"WARNING: the bundle's refinement adds the KNN term (knn={info['knn_left_out']:g}); the exported "
              f"module runs without it, so its matte is not lbsmatte matte's {where}", flush=True)
    elif info["knn_left_out"] > 0:
        print("WARNING: with --rounds 0 the module gives lbsmatte matte --rounds 0's matte; its 'rounds' knob, "
              "raised in Nuke, runs the refinement without the bundle's KNN term "
              f"(knn={info['knn_left_out']:g}), which the module cannot hold: lbsmatte matte --knn 0's matte, "
              f"not lbsmatte matte's {where}", flush=True)
    print(f"wrote {Path(args.out)} (torch {info['torch_version']}, weights {info['weights']}, "
          f"rounds {info['knobs']['rounds']}); make the .cat with CatFileCreator: "
          f"Channels In {','.join(NUKE_CHANNELS_IN)}, Channels Out {','.join(NUKE_CHANNELS_OUT)}", flush=True)
    return 0
