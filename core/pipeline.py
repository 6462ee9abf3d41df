"""The BG -> FG -> alpha inference pipeline (patent para. 0057-0060, SPEC §4).

One call, plate and trimap in, :class:`Matte` out::

    from core.pipeline import matte
    result = matte(plate, trimap, colour="linear")   # plate H×W×3 float32, trimap H×W
    rgba = result.rgba()                              # premultiplied, Nuke's convention

For many frames, load the networks once with :class:`Matter` and call :meth:`Matter.matte`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import numbers
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.compositing import (
    FG_SOLVE_WEIGHT,
    Settings,
    agree_with_plate,
    paste_known,
    refine,
)
from core.errors import InputError, ResourceError, WeightsError
from core.trimap import split_trimap

log = logging.getLogger(__name__)

#: A frame's peak memory above what the process holds before it (bytes; :func:`memory_needed`).
#: Measured with the shipped bundle on the CPU, one thread, in-process peak RSS: 800×563 with 40 %
#: unknown (0.34 GiB), 1920×1080 with 54 % (1.71 GiB), 3840×2160 with 5.5 % and 9.7 % (1.75 and
#: 2.35 GiB; lbsmatte matte's whole-process peaks, 0.55-0.65 GiB higher, count its files' reading
#: too), 4608×2592 with 1.3 % (2.49 GiB). Measured again with the bundle's 2 rounds (``lbsmatte
#: matte``, fp32, two threads; README): 1920×1080, 3840×2160 and 6144×3240 frames with narrow and
#: 30 % bands needed 0.79-8.5 GiB, and the estimate is 0.99 to 1.19 times each (1.0 to 1.25 times
#: the first five). Whatever the frame's size (the intercept of those frames' needs; with only
#: the constants below, a 1080p frame with a narrow band needed up to 1.19 times its estimate):
FRAME_BYTES = 128 * 2**20
#: per pixel of the networks' crop, the layers kept from the networks to the results:
FRAME_BYTES_PER_PIXEL = 120
#: per pixel of the networks' largest tile (the crop, when it fits one), their activations, freed
#: before the refinement:
NETWORK_BYTES_PER_PIXEL = 350
#: per unknown pixel, the refinement: the Laplacian's assembly and matrix, the KNN term's
#: neighbours, the conjugate gradients' vectors (1550 until stop 51: a 6144×3240 frame with a 30 %
#: band was estimated at 11.7 GiB, 1.37 times the 8.5 GiB it needed; 3300 until
#: 2026-12-07, which counted the networks' and the layers' memory of an 800×563 frame in it):
REFINE_BYTES_PER_UNKNOWN = 1250
#: and per pixel of the crop, the refinement's copies of the layers and the KNN term's features.
REFINE_BYTES_PER_PIXEL = 85
#: Share of the free memory a frame may plan to use.
MEMORY_HEADROOM = 0.8

#: Largest magnitude of the plate's values in the refinement's solve space. The refinement works
#: in float32, where window covariances and |F − B|² of values past about 1e18 overflow to inf and
#: the whole matte comes out NaN; beyond this (1e16, a hundred times below that, far beyond any
#: light a plate records) values are clamped for the refinement and reported. The known regions
#: still pass the plate's own values through.
SOLVE_LIMIT = 1e16

#: Exposure matching of dark plates (:func:`exposure_scale`, ``Matter(match_exposure=True)``, the
#: default). The networks were trained on 8-bit sRGB photographs: the 99th percentile of the
#: linear luminance of the darkest of them, over the 279 background photographs and the 26
#: alphamatting.com photos in the shared data, is 0.24 (a median of 0.89); the training's brightness
#: jitter (for the foreground network) changes a foreground's colours, never a whole photo's. A plate whose brightest 1 %
#: around the unknown region lies below :data:`EXPOSURE_LEVEL` (0.2, below every one of those
#: photos) is darker than anything the networks saw; it is matted scaled up in linear light to
#: that level, at most :data:`EXPOSURE_CAP` times (4 stops), and its FG and BG scaled back. In
#: linear light the compositing equation holds at any one scale, ``s·I = α·(s·F) + (1 − α)·(s·B)``:
#: alpha needs no scaling back. Continuous in the plate (no jump at the level), so the frames of a
#: sequence whose brightness drifts across it do not flicker.
EXPOSURE_PERCENTILE = 99.0
EXPOSURE_LEVEL = 0.2
EXPOSURE_CAP = 16.0
#: Rec. 709 luminance of linear RGB (sRGB primaries, what :func:`core.colour.to_linear` gives).
LUMINANCE_WEIGHTS = (0.2126, 0.7152, 0.0722)

#: Set to 1 to let the pipeline run bundles whose manifest says ``"trained": false`` (tests only).
ALLOW_UNTRAINED_ENV = "LBSMATTE_ALLOW_UNTRAINED"


@dataclass
class Matte:
    """Result of matting one frame.

    Attributes
    ----------
    alpha:
        ``H×W`` float32 in [0, 1]; exactly 1 where the trimap is FG and 0 where it is BG.
    fg:
        ``H×W×3`` float32, foreground colour, unpremultiplied, in the plate's colour encoding;
        equal to the plate where the trimap is FG.
    bg:
        ``H×W×3`` float32, background colour in the plate's colour encoding; equal to the plate
        where the trimap is BG.
    messages:
        Warnings a user should see (sanitised pixels, no known FG, ...).
    """

    alpha: np.ndarray
    fg: np.ndarray
    bg: np.ndarray
    messages: list[str] = field(default_factory=list)

    def rgba(self, premultiply: bool = True) -> np.ndarray:
        """``H×W×4``: FG·alpha with alpha (premultiplied, Nuke's convention) or FG with alpha."""
        from core import colour

        rgb = colour.premultiply(self.fg, self.alpha) if premultiply else self.fg
        return np.concatenate([rgb, self.alpha[..., None]], axis=2).astype(np.float32)


@dataclass
class RunStats:
    """What the last :meth:`Matter.matte` call computed and, with ``profile=True``, how long each step took.

    Attributes
    ----------
    frame:
        ``(H, W)`` of the plate.
    box:
        ``(y0, y1, x0, x1)`` of the region sent to the networks (the unknown region's bounding
        box plus context, clipped to the frame); ``None`` when no network ran.
    padded:
        ``(H, W)`` of that region after padding to the networks' stride.
    tiles:
        Most pieces any network ran on (1 when the region fits in one tile).
    computed:
        Pixels each network computed, on average over the three (tile overlaps included); the
        matting network works on a smaller window than the sampling networks (``alpha_context``).
    computed_by:
        Pixels computed by each network, by role.
    iterations:
        Conjugate-gradient iterations of each refinement round.
    exposure:
        The scale the plate was matted at (:func:`exposure_scale`): 1.0 unless the region around
        its unknown pixels was darker than the networks were trained on (and ``match_exposure``).
    degraded:
        How this frame was computed otherwise than asked, after running out of GPU memory (the
        networks in smaller tiles than :attr:`Matter.tile_asked`, which changes their output where
        it cuts the region differently; the refinement on the CPU); empty when as asked.
    seconds:
        Wall-clock seconds of ``prepare`` (checks, sanitising, colour encoding, crop),
        ``background``, ``foreground``, ``alpha`` (each network with its tiling and the
        known-region pass-through), ``refine`` (the rounds of :func:`core.compositing.refine`, on
        the device, and the one read-back) and ``finish`` (colour decoding, pasting), and
        ``total``. Filled only when the :class:`Matter` was made with ``profile=True``; on CUDA the
        device is then synchronised after each step, which costs a little.
    """

    frame: tuple[int, int] = (0, 0)
    box: tuple[int, int, int, int] | None = None
    padded: tuple[int, int] = (0, 0)
    tiles: int = 0
    computed: int = 0
    computed_by: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    iterations: list[int] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)
    exposure: float = 1.0

    @property
    def box_fraction(self) -> float:
        """Share of the frame's pixels inside :attr:`box` (0 when no network ran)."""
        if self.box is None or not self.frame[0] or not self.frame[1]:
            return 0.0
        y0, y1, x0, x1 = self.box
        return (y1 - y0) * (x1 - x0) / (self.frame[0] * self.frame[1])

    @property
    def computed_fraction(self) -> float:
        """Pixels computed by each network (stride padding and tile overlaps included) over the frame's pixels."""
        return self.computed / (self.frame[0] * self.frame[1]) if self.frame[0] and self.frame[1] else 0.0


def resolve_device(device: str = "auto", *, fallback: bool = True) -> torch.device:
    """``auto`` -> CUDA when available, else CPU. ``cuda`` without CUDA falls back to the CPU
    with a message, or raises :class:`InputError` when ``fallback`` is false."""
    if not isinstance(device, str):
        raise InputError(f"unknown device {device!r}: expected auto, cpu or cuda")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        head, _, index = device.partition(":")
        if head != "cuda" or (_ and not index.isdigit()):
            raise InputError(f"unknown device {device!r}: expected auto, cpu, cuda or cuda:N")
        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            if index and int(index) >= count:
                # Refused here, by name: torch would accept the name and fail at the first tensor
                # moved there ("invalid device ordinal"), in the middle of a frame.
                raise InputError(f"--device {device}: this machine has {count} CUDA GPU"
                                 f"{'' if count == 1 else 's'} (cuda:0{'' if count == 1 else f' to cuda:{count - 1}'})")
            return torch.device(device)
        if not fallback:
            raise InputError(f"--device cuda was requested but CUDA is not available ({_cuda_absence()})")
        log.warning("CUDA was requested but is not available (%s): running on the CPU instead", _cuda_absence())
        return torch.device("cpu")
    if device == "cpu":
        return torch.device("cpu")
    raise InputError(f"unknown device {device!r}: expected auto, cpu or cuda")


def _cuda_absence() -> str:
    """Why ``torch.cuda.is_available()`` is false, as the fix differs: a CPU-only PyTorch wheel
    (install the CUDA build) or a CUDA build that finds no usable GPU (driver, visibility)."""
    if not torch.version.cuda and not getattr(torch.version, "hip", None):
        return "this PyTorch is a CPU-only build"
    return (f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA GPU: none installed, no driver, "
            "or CUDA_VISIBLE_DEVICES hides it")


_PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def precision_name(dtype: torch.dtype | None) -> str:
    """The ``--precision`` name of an autocast dtype as a :class:`Matter` resolved it
    (:attr:`Matter.dtype`): ``fp32`` for None (plain float32), ``fp16``, ``bf16``. What the
    fingerprint and a result's ``lbsmatte/settings`` header call the precision.

    Raises
    ------
    ValueError
        A dtype no precision resolves to.
    """
    for name, value in _PRECISIONS.items():
        if value == dtype:
            return name
    raise ValueError(f"no precision runs the networks in {dtype}: expected None, torch.float16 or torch.bfloat16")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where oneDNN's bfloat16
    convolutions are about twice as fast as float32 ones; elsewhere they are emulated and slower."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
    except RuntimeError:  # an unusual build that cannot tell: stay in float32
        return False


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None: plain float32).

    ``auto``: float16 on CUDA; on the CPU bfloat16 where the CPU computes it natively
    (:func:`cpu_has_bf16`), else float32. Only the networks run in it: the refinement is float32.
    What :class:`Matter` runs in, and what :func:`core.fingerprint.fingerprint` records.
    Raises :class:`~core.errors.InputError` for a precision other than auto, fp32, fp16 or bf16.
    """
    key = str(precision).strip().lower()
    if key == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if cpu_has_bf16() else None
    if key not in _PRECISIONS:
        raise InputError(f"unknown precision {precision!r}: expected auto, fp32, fp16 or bf16")
    return _PRECISIONS[key]


def prepare_for_inference(net: nn.Module, channels_last: bool, compile: bool = False) -> nn.Module:
    """Make a loaded network cheaper to run, without changing what it computes.

    - Batch norms in eval mode are affine maps: folded into the convolution before them
      (the matting network: one pass over each activation less, ~15 % of its CPU time).
    - ``channels_last``: weights in channels-last order (what oneDNN's CPU convolutions want).
    - ``compile``: :func:`torch.compile` (fuses the element-wise work between convolutions).

    The module is changed in place and only ever used for inference afterwards.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    from core.nets.matting import ResidualBlock

    net.eval()
    for module in list(net.modules()):
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:], strict=False):
                conv, bn = module._modules[a], module._modules[b]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module._modules[a] = fuse_conv_bn_eval(conv, bn)
                    module._modules[b] = nn.Identity()
        elif isinstance(module, ResidualBlock):  # forward: bn1(conv1(x)), bn2(conv2(.))
            for conv_name, bn_name in (("conv1", "bn1"), ("conv2", "bn2")):
                conv, bn = getattr(module, conv_name), getattr(module, bn_name)
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                    setattr(module, bn_name, nn.Identity())
    if channels_last:
        net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if compile:
        return torch.compile(net)  # type: ignore[return-value]
    return net


def refinement_settings(bundle: Any, rounds: int | None = None, **given: Any) -> Settings:
    """The refinement's settings: those given (any field of :class:`core.compositing.Settings` but
    ``max_iterations``; ``None``: not given), else those the bundle's manifest records under
    ``"refinement"`` (chosen for its networks by cross-validation, ``tools/cross_validate.py``),
    else the module defaults."""
    names = [f.name for f in dataclasses.fields(Settings) if f.name != "max_iterations"]
    given = {"rounds": rounds, **given}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise InputError(f"not refinement settings: {', '.join(unknown)}")
    chosen = getattr(bundle, "manifest", {}).get("refinement") or {}
    label = f"weights bundle {getattr(bundle, 'name', '?')!r}: bad refinement settings {chosen!r}"
    if not isinstance(chosen, dict):  # a hand-edited manifest's 3 or [...]: dict() of it was a TypeError
        raise WeightsError(f"{label}: the manifest's refinement must be a table of settings (a JSON object)")
    defaults = Settings()
    try:
        # Text through each field's type ("3" rounds is 3); other values as they are, for Settings to
        # check: int() of 1.7 rounds was 1 without a word, of -Infinity an OverflowError.
        recorded = {name: type(getattr(defaults, name))(chosen[name]) if isinstance(chosen[name], str) else chosen[name]
                    for name in names if name in chosen}
        recorded = dataclasses.asdict(Settings(**recorded))
    except (TypeError, ValueError, OverflowError, InputError) as exc:
        raise WeightsError(f"{label}: {exc}") from exc
    return Settings(**(recorded | {name: value for name, value in given.items() if value is not None}))


def resolve_bundle(weights: Any) -> Any:
    """What ``weights`` names, as :class:`Matter` loads it: the one reading of a ``--weights`` value.

    Parameters
    ----------
    weights:
        A bundle name (``"default"``, ``"show_x"``) or folder, loaded and verified with
        :func:`core.weights.load_bundle`; ``"none"`` (any case): the parameter-free priors
        (:class:`core.nets.priors.PriorBundle`) with the installed default bundle's refinement
        settings; a :class:`~core.weights.Bundle` or ``PriorBundle``: returned as it is.

    Raises
    ------
    InputError
        ``weights`` is of another type (``None`` is not ``"none"``).
    WeightsError
        The bundle cannot be found or used (for ``"default"``: saying that none is installed).
    """
    from core.nets.priors import PriorBundle
    from core.weights import Bundle, installed_default, load_bundle

    if isinstance(weights, (Bundle, PriorBundle)):  # resolved already
        return weights
    if not isinstance(weights, (str, os.PathLike)):  # None is not "none", the priors without networks
        raise InputError(
            f"weights must be a bundle name, a bundle folder or a Bundle, not {weights!r} "
            "(\"default\": the installed default bundle; \"none\": the parameter-free priors, no networks)")
    if str(weights).strip().lower() == "none":  # the diagnostic without networks
        # The same pipeline as the default bundle's: its refinement settings, the priors in place
        # of its networks (the module defaults only where no default bundle is installed). Only
        # its manifest is read: its networks are not run, so their files are not hashed.
        default = installed_default()
        if default is None:
            return PriorBundle()
        return PriorBundle(default.manifest.get("refinement"), settings_of=default.name)
    try:
        return load_bundle(str(weights))
    except WeightsError as exc:
        if str(weights) == "default":
            raise WeightsError(
                "no trained 'default' weights bundle is installed, so LBSMatte cannot produce a matte "
                f"(it will not run untrained networks). {exc}"
            ) from exc
        raise


def _stride(nets: dict[str, nn.Module]) -> int:
    # getattr(_orig_mod): a torch.compile'd network keeps the module it wraps there.
    return math.lcm(*(int(getattr(getattr(n, "_orig_mod", n), "stride", 1)) for n in nets.values()))


def available_memory(device: torch.device) -> int | None:
    """Bytes free for a new allocation on ``device`` (None when it cannot be told): on CUDA the
    driver's free memory plus what torch holds cached; on the CPU the kernel's ``MemAvailable``,
    or less where this process is held to less: the memory left under its cgroup's limit (a farm
    job's or a container's, :func:`_cgroup_memory_left`) and the address space left under its
    ``ulimit -v`` (:func:`_address_space_left`). A node's ``MemAvailable`` says nothing of either,
    and a job over its cgroup's limit is killed by the kernel without a word."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if sys.platform == "win32":
        return _windows_available_memory()
    found = [_meminfo_available(), _cgroup_memory_left(), _address_space_left()]
    known = [value for value in found if value is not None]
    if not known:
        return None  # macOS and other systems without /proc: no check, the frame is tried
    # What this process freed and keeps for its next allocations (the command line keeps it:
    # core.cli.keep_freed_memory) is free to it, though the kernel counts it as used.
    return min(known) + _freed_but_kept()


def _freed_but_kept() -> int:
    """Bytes free in this process's C allocator, kept for its next allocations (glibc's
    ``mallinfo2().fordblks``, over all its arenas; 0 elsewhere): a render's first frame frees
    hundreds of MB that its next frame reuses, and that the kernel's figures count as used."""
    import ctypes

    class _MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError, TypeError):  # not glibc, or glibc before 2.33
        return 0
    mallinfo2.restype = _MallInfo2
    mallinfo2.argtypes = []
    return int(mallinfo2().fordblks)


def _meminfo_available() -> int | None:
    """The kernel's ``MemAvailable`` (bytes), None without ``/proc/meminfo``."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


#: Where the cgroup file systems are mounted (v2's unified tree, v1's ``memory`` controller under
#: it), and the file naming this process's cgroups.
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_MEMBERSHIP = "/proc/self/cgroup"


def _read_bytes(path: str) -> int | None:
    """The whole number in file ``path`` (None: no such file, ``max`` or not a number)."""
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _reclaimable(path: str, key: str) -> int:
    """The page cache the kernel drops before it kills (``key`` of the cgroup's ``memory.stat``)."""
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _cgroup_folders(controller: str) -> list[tuple[bool, str]]:
    """The folders of this process's cgroups that hold ``controller``'s files: for each hierarchy,
    its own cgroup first, then each one above it (a limit set on a farm job's slice holds its
    children too), each with whether it is cgroup v2's unified hierarchy (else v1's ``controller``
    mount). [] where no cgroup can be read."""
    try:
        with open(CGROUP_MEMBERSHIP, encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    found: list[tuple[bool, str]] = []
    for line in lines:
        number, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if number == "0" and controllers == "":  # v2's unified hierarchy
            unified, folder = True, CGROUP_ROOT
        elif controller in controllers.split(","):
            unified, folder = False, os.path.join(CGROUP_ROOT, controller)
        else:
            continue
        parts = [p for p in path.split("/") if p]
        found += [(unified, os.path.join(folder, *parts[:depth])) for depth in range(len(parts), -1, -1)]
    return found


def _cgroup_memory_left() -> int | None:
    """Bytes this process's cgroups let it allocate before the kernel kills it: the least, over
    its cgroup and those above it (:func:`_cgroup_folders`), of the limit less the usage (less
    the inactive page cache, which is dropped first). cgroup v2 (``memory.max``, ``memory.current``)
    and v1 (``memory.limit_in_bytes``, ``memory.usage_in_bytes``); None where no limit is set or no
    cgroup can be read."""
    left: list[int] = []
    for unified, here in _cgroup_folders("memory"):
        files = (("memory.max", "memory.current", "inactive_file") if unified else
                 ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"))
        limit = _read_bytes(os.path.join(here, files[0]))
        usage = _read_bytes(os.path.join(here, files[1]))
        if limit is None or usage is None or limit >= 2**62:  # no limit here (v1 says so with ~2^63)
            continue
        left.append(max(0, limit - usage + _reclaimable(os.path.join(here, "memory.stat"), files[2])))
    return min(left) if left else None


def cgroup_cpus() -> float | None:
    """CPUs' worth of time a second that this process's cgroups allow it (a CPU quota: Docker's
    ``--cpus``, Kubernetes' ``limits.cpu``, a farm manager's cgroup): the least, over its cgroup and
    those above it (:func:`_cgroup_folders`), of the quota over its period, cgroup v2 ``cpu.max``
    (``"400000 100000"``: 4 CPUs; ``"max 100000"``: none) and v1 ``cpu.cfs_quota_us`` over
    ``cpu.cfs_period_us`` (-1: none). None where no quota is set or no cgroup can be read.

    A quota leaves every core of the node usable (unlike a CPU affinity mask), so torch and
    OpenMP, which count cores, start a thread per core of the node; the kernel then lets them run
    only quota/period of each period, and throttles the job the rest of it."""
    found: list[float] = []
    for unified, here in _cgroup_folders("cpu"):
        try:
            if unified:
                with open(os.path.join(here, "cpu.max"), encoding="ascii") as f:
                    quota_text, period_text = (f.read().split() + ["100000"])[:2]
            else:
                with open(os.path.join(here, "cpu.cfs_quota_us"), encoding="ascii") as f:
                    quota_text = f.read().strip()
                with open(os.path.join(here, "cpu.cfs_period_us"), encoding="ascii") as f:
                    period_text = f.read().strip()
            quota, period = int(quota_text), int(period_text)
        except (OSError, ValueError):  # no such file here, or "max": no quota
            continue
        if quota > 0 and period > 0:
            found.append(quota / period)
    return min(found) if found else None


#: The environment variables that set torch's CPU threads at its start (its OpenMP pool's and MKL's
#: count; torch takes the less of the two); where either is set, the job has said its count.
THREAD_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def job_threads() -> int | None:
    """The CPU threads for torch in a job held to a cgroup CPU quota (:func:`cgroup_cpus`): the
    quota rounded down, at least 1, where that is fewer than torch's own count (one per core of the
    process's CPU affinity, which ``taskset``, a cpuset or Slurm's binding already narrow). None
    where there is no such quota, or where ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` holds a count
    (:data:`THREAD_ENVS`): what the job says always wins.

    torch and OpenMP ignore a quota: a job given 4 CPUs on a 64-core node (``docker run
    --cpus=4``) ran 64 threads in turns of 4, throttled, each waiting on the others at every
    parallel region."""
    if env_threads() is not None:
        return None
    cpus = cgroup_cpus()
    if cpus is None:
        return None
    threads = max(1, int(cpus))
    return threads if threads < torch.get_num_threads() else None


def available_cpus() -> int:
    """The CPUs this process may use: those of its CPU affinity (``taskset``, a cpuset, Slurm's
    binding), fewer under a cgroup CPU quota (:func:`cgroup_cpus`, rounded down; at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = cgroup_cpus()
    return max(1, min(cores, int(quota))) if quota is not None else max(1, cores)


def job_cpus() -> int:
    """The CPUs this job may use, for the threads that are not torch's (OpenImageIO's,
    :func:`core.io.fit_threads`): the count :data:`THREAD_ENVS` holds where the job names one, else
    :func:`available_cpus`."""
    named = env_threads()
    return named if named is not None else available_cpus()


def env_threads() -> int | None:
    """The CPU thread count the environment gives torch (:data:`THREAD_ENVS`, the first that holds
    one), or None."""
    for name in THREAD_ENVS:
        count = _thread_count(os.environ.get(name))
        if count is not None:
            return count
    return None


def _thread_count(text: str | None) -> int | None:
    """The count an ``OMP_NUM_THREADS``-like value holds, as OpenMP reads it (its first, outermost
    level: ``"4"`` or ``"4,2"``), or None: unset, empty, or not a whole number >= 1 (``0``, ``abc``;
    OpenMP and torch ignore such a value, after a line of their own on stderr)."""
    first = (text or "").split(",")[0].strip()
    return int(first) if re.fullmatch(r"[0-9]+", first) and int(first) >= 1 else None


def _address_space_left() -> int | None:
    """Bytes of address space left under this process's ``RLIMIT_AS`` (``ulimit -v``, as some
    farm managers set it): the limit less ``/proc/self/status``'s ``VmSize``. None without a limit."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return max(0, soft - int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_needed(pixels: int, unknown: int, tile_pixels: int | None = None) -> int:
    """Bytes a frame needs above what the process holds before it: :data:`FRAME_BYTES`, the layers
    of its crop of ``pixels`` kept throughout, and the larger of the networks' activations over their largest
    tile of ``tile_pixels`` (None: the networks run elsewhere, on the GPU, or have run) and the
    refinement of its ``unknown`` pixels (the constants above)."""
    networks = 0 if tile_pixels is None else NETWORK_BYTES_PER_PIXEL * min(pixels, tile_pixels)
    refinement = REFINE_BYTES_PER_UNKNOWN * unknown + REFINE_BYTES_PER_PIXEL * pixels
    return FRAME_BYTES + FRAME_BYTES_PER_PIXEL * pixels + max(networks, refinement)


def _cpu_allocation_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is torch's CPU allocator out of memory (a RuntimeError of its own words)."""
    return isinstance(exc, RuntimeError) and "DefaultCPUAllocator: can't allocate memory" in str(exc)


def _windows_available_memory() -> int | None:
    """Windows' available physical memory (``GlobalMemoryStatusEx``), the ``MemAvailable`` of
    Linux's ``/proc/meminfo``; None if it cannot be asked."""
    import ctypes

    class _MemoryStatus(ctypes.Structure):
        _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                    ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                    ("ullTotalPageFile", ctypes.c_ulonglong), ("ullAvailPageFile", ctypes.c_ulonglong),
                    ("ullTotalVirtual", ctypes.c_ulonglong), ("ullAvailVirtual", ctypes.c_ulonglong),
                    ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]

    status = _MemoryStatus()
    status.dwLength = ctypes.sizeof(_MemoryStatus)
    try:
        ok = ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None
    return int(status.ullAvailPhys) if ok else None


def context_margin(height: int, width: int) -> int:
    """Pixels of known region kept around an unknown region's bounding box of ``height`` ×
    ``width`` for the sampling networks (:class:`Matter`'s default ``context``): the larger of 96
    and 15 % of the box's longer side. Scriptable: the exported module (:mod:`core.export`) crops
    the same way."""
    return max(96, int(round(0.15 * max(height, width))))


def _bounded(solve: np.ndarray) -> tuple[np.ndarray, int]:
    """``solve`` with values beyond ±:data:`SOLVE_LIMIT` (and any NaN or infinity a colour
    conversion made) clamped to it, and the number of pixels that were."""
    extreme = ~(np.abs(solve) <= SOLVE_LIMIT)
    if not extreme.any():
        return solve, 0
    count = int(extreme.any(axis=2).sum()) if extreme.ndim == 3 else int(extreme.sum())
    clamped = np.nan_to_num(solve, nan=0.0, posinf=SOLVE_LIMIT, neginf=-SOLVE_LIMIT)
    return np.clip(clamped, -SOLVE_LIMIT, SOLVE_LIMIT).astype(np.float32), count


def plate_alpha_note(alpha: np.ndarray) -> str:
    """The warning for a plate whose alpha channel is below 1 somewhere, or ``""``.

    The one rule for a plate's alpha: LBSMatte ignores it. The matte comes from the trimap and
    the networks, and the plate's colour is matted as given — a file's as it stores it, as Nuke's
    Read gives it (:func:`core.io.read_image`): premultiplied in an EXR, darker and black where
    alpha is 0; straight in a PNG (TGA, unassociated TIFF), never multiplied by its alpha on
    reading. Where the plate is (semi-)transparent the FG, BG and alpha found there say nothing
    about what lies behind. A keyer in Nuke ignores its input's alpha
    the same way; the warning says so because a plate with holes in its alpha is usually a
    mistake (a premultiplied element, a CG render instead of the plate).

    Parameters
    ----------
    alpha:
        ``H×W`` float alpha of the plate (1 = opaque).

    Example
    -------
    >>> plate_alpha_note(np.ones((2, 2), np.float32))
    ''
    >>> plate_alpha_note(np.array([[1.0, 0.5], [0.0, 1.0]], np.float32))[:58]
    'plate: its alpha channel is below 1 at 2 of 4 pixel(s) (0 '
    """
    a = np.asarray(alpha, dtype=np.float32)
    below = int(np.count_nonzero(a < 1.0))
    if not below:
        return ""
    return (f"plate: its alpha channel is below 1 at {below} of {a.size} pixel(s) (0 at {int(np.count_nonzero(a <= 0))}); "
            "LBSMatte ignores the plate's alpha and mattes its colour as given (a file's as stored, as Nuke's "
            "Read gives it: an EXR's premultiplied colour is darker where alpha is below 1, a PNG's straight "
            "colour is not): the matte comes from the trimap")


def exposure_scale(linear: np.ndarray) -> tuple[float, float]:
    """The scale a plate is matted at (:data:`EXPOSURE_LEVEL`), and the level it was read from.

    Parameters
    ----------
    linear:
        ``H×W×3`` float32, scene-linear (sRGB primaries): the pixels the networks see (the
        unknown region's bounding box plus context), known and unknown alike.

    Returns
    -------
    tuple of float
        ``(s, level)``: ``level`` is the :data:`EXPOSURE_PERCENTILE`-th percentile of the pixels'
        luminance (every pixel's up to 2**19 pixels, else a regular grid's of that many); ``s``
        is ``EXPOSURE_LEVEL / level`` capped at :data:`EXPOSURE_CAP` where ``level`` is below
        :data:`EXPOSURE_LEVEL`, else exactly 1.0. A region with no light at all
        (``level`` <= 0) has nothing to scale: 1.0.
    """
    pixels = np.asarray(linear, dtype=np.float32)
    # Every k-th row and column of a large region, a regular grid of at most 2**19 pixels: a
    # percentile of a 4K frame's every pixel took a second.
    step = max(1, math.ceil(math.sqrt(pixels.shape[0] * pixels.shape[1] / 2**19)))
    luminance = pixels[::step, ::step].reshape(-1, 3) @ np.asarray(LUMINANCE_WEIGHTS, dtype=np.float32)
    level = float(np.percentile(luminance, EXPOSURE_PERCENTILE)) if luminance.size else 0.0
    if not level < EXPOSURE_LEVEL or level <= 0.0:
        return 1.0, level
    return min(EXPOSURE_CAP, EXPOSURE_LEVEL / level), level


def _pixels(value: Any, what: str, of_image: str) -> np.ndarray:
    """``value`` (an array, a list, a CPU tensor) as a numpy array, or :class:`InputError` naming
    ``what``: numpy's and torch's own errors (a ragged list, a tensor on the GPU or one that
    requires grad) and a lone object (a :class:`core.io.Image`, a path) do not say which argument
    is wrong nor what to pass (``of_image``: what to pass of an image from :func:`core.io.read_image`)."""
    try:
        x = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"{what} cannot be read as an array of pixels ({type(value).__name__}): {exc}") from exc
    if x.ndim == 0 and x.dtype.kind in "OUS":
        kind = type(value)
        raise InputError(f"{what} must be a numpy array of pixels, not a {kind.__module__}.{kind.__qualname__} "
                         f"(for an image from core.read_image, pass {of_image})")
    return x


def _layout_hint(x: np.ndarray, name: str, of_image: str) -> str:
    """What to pass instead of ``x``, an array of the wrong shape for ``name``: channels first
    (``C×H×W``, as torch and some readers hold images, where the pipeline wants channels last),
    a batch of one frame, else what to pass of an image from :func:`core.io.read_image`."""
    if x.ndim == 4 and x.shape[0] == 1:
        return f"a batch of one frame: pass {name}[0]"
    if x.ndim == 3 and x.shape[0] in (1, 3, 4) and x.shape[2] > 4:
        fix = f"{name}[0]" if x.shape[0] == 1 else f"{name}.transpose(1, 2, 0)"
        return f"channels first, {x.shape[0]}×H×W as torch holds images; channels come last: pass {fix}"
    return f"for an image from core.io.read_image, pass {of_image}"


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(1))
    cols = np.flatnonzero(mask.any(0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


class Matter:
    """The three networks of a weights bundle, loaded once, for many frames.

    Parameters
    ----------
    weights:
        Bundle name (found on ``LBSMATTE_WEIGHTS_PATH``), bundle folder, or :class:`core.weights.Bundle`;
        ``"none"``: no networks, the parameter-free priors of :mod:`core.nets.priors` in their place
        (a diagnostic: what the pipeline does without learning).
    device:
        ``auto``, ``cpu`` or ``cuda``; CUDA absent -> CPU with a message unless ``fallback=False``.
    fallback:
        On CUDA trouble carry on degraded, saying so: CUDA absent -> the CPU, out of GPU memory ->
        smaller tiles, then the refinement on the CPU (:attr:`RunStats.degraded`). False: raise
        :class:`core.errors.InputError` / :class:`core.errors.ResourceError` instead.
    tile:
        Largest side, in pixels, of the region sent through a network at once; bigger regions
        are cut into overlapping tiles; rounded down to a multiple of the networks' stride, and
        at least two strides (neighbouring tiles overlap by one). Default: 2048 on the CPU, 4096
        on CUDA.
    context:
        Pixels of known region kept around the unknown region's bounding box (default: the
        larger of 96 and 15 % of the box's longer side), so the sampling networks see known
        colours to sample from.
    alpha_context:
        Pixels kept around the unknown region's bounding box for the matting network (default
        ``None``: the whole region the sampling networks see). A small value (32) is about 15 %
        faster at 1080p and cost 0.3 SAD / 0.6 gradient error on the held-out photographs.
    allow_untrained:
        Run a bundle whose manifest says it is untrained (tests only; also ``LBSMATTE_ALLOW_UNTRAINED=1``).
    threads:
        CPU threads of torch's intra-op pool while :meth:`matte` runs; the caller's count is put
        back when it returns (default: the caller's, torch's own one per core unless it was set;
        under a cgroup CPU quota, which torch ignores, ``lbsmatte`` sets it to :func:`job_threads`).
    precision:
        ``auto`` (float16 autocast on CUDA; on the CPU bfloat16 where it is native, AVX512-BF16
        or AMX, else float32), ``fp32``, ``fp16`` or ``bf16``. Autocast of the networks only;
        the refinement always runs in float32.
    channels_last:
        Weights and activations in channels-last order (default: on the CPU only, where
        oneDNN's convolutions want it; worth trying on CUDA with half precision).
    compile:
        Wrap each network in :func:`torch.compile` (first frame of each size compiles, for
        minutes on a CPU; ~10 % faster on the CPU afterwards).
    profile:
        Time each step of every call into :attr:`stats` (:class:`RunStats`).
    fg_solve:
        Weight of the foreground network's colours in the last step, which makes the foreground
        agree with the plate, the background and the alpha (:func:`solve_foreground`); default
        :data:`FG_SOLVE_WEIGHT`. ``0``: the foreground network's colours as they are (needs
        ``rounds=0``).
    rounds:
        Rounds of :func:`core.compositing.refine` after the networks: F solved for alpha, alpha
        read off the compositing equation and smoothed with the matting Laplacian (default
        :data:`core.compositing.ROUNDS`; ``0``: the matting network's alpha as it is, the fast path, and
        then the settings only the rounds use — levels, the KNN term, ``smoothing``, ``tolerance`` ... —
        are refused rather than dropped when given).
    smoothing:
        λ of those rounds, the compositing equation's weight against the Laplacian (default
        :data:`core.compositing.SMOOTHING`).
    space:
        Where the compositing equation is solved (:meth:`solve_space`): ``auto`` (linear light,
        except for an ``srgb`` plate: its display encoding), ``linear`` or ``display``.
    confidence_scale:
        σ² of those rounds (:class:`core.compositing.Settings`; default: what the bundle records,
        else :data:`core.compositing.CONFIDENCE_SCALE`).
    layers, layer_prior, layer_space, agree_ratio:
        How the final F and B are made (:class:`core.compositing.Settings`; default: what the
        bundle records, else ``solve``, 0.1, ``solve``, 3). A ``layer_prior`` given with the
        layers ``solve`` (given or recorded), which use none, is refused.
    tolerance:
        Relative residual at which each round's conjugate gradients stop (default: what the bundle
        records, else :data:`core.compositing.TOLERANCE`).
    knn, network_weight:
        κ of the refinement's non-local KNN term (:mod:`core.knn`) and μ of the matting network's
        alpha as a data term (:class:`core.compositing.Settings`; default: what the bundle
        records, else 0, off).
    knn_neighbours, knn_position:
        The KNN term's searches (:func:`core.knn.searches`; default: what the bundle records,
        else 20 and 2.0). These two, ``knn_band`` and ``knn_stride`` are refused rather than
        dropped when given with no KNN term (``knn`` 0, given or as the bundle records).
    knn_band:
        The KNN term's searches find known pixels only within this many px of the unknown region
        (:class:`core.compositing.Settings`; default: what the bundle records, else 0: anywhere
        in the networks' crop).
    knn_stride:
        Only the unknown pixels on every ``knn_stride``-th row and column search for the KNN
        term's neighbours (:class:`core.compositing.Settings`; default: what the bundle records,
        else 1: every unknown pixel).
    black_point, white_point:
        Levels of the refined alpha (:func:`core.compositing.alpha_levels`; default: what the
        bundle records, else 0 and 1, none).
    sample_alpha:
        The alpha for which the networks' F and B are first solved against the plate, ``network``
        or ``half``, or ``unsolved`` (:class:`core.compositing.Settings`; default: what the bundle
        records, else ``network``).
    match_exposure:
        Matte a plate darker than the networks were trained on (:func:`exposure_scale`: its
        brightest 1 % around the unknown region below :data:`EXPOSURE_LEVEL` in linear light)
        scaled up in linear light, and scale its FG and BG back (default True; the scale is in
        :attr:`RunStats.exposure`). Only where the compositing equation is solved in linear light
        (:meth:`solve_space`), where one scale leaves alpha's equation as it is; a plate solved in
        its sRGB encoding is matted as it is. A plate at a normal exposure gets 1.0: nothing changes.

    Attributes
    ----------
    stats:
        :class:`RunStats` of the calling thread's last :meth:`matte` call: region computed, what
        was degraded, and with ``profile`` the seconds of each step. Each thread of a pool that
        shares one Matter reads its own frame's (a thread that has made no call, the last call
        begun in any thread).
    stage_context:
        Optional ``callable(stage) -> context manager`` entered around each network's run
        (``stage`` is ``"background"``, ``"foreground"`` or ``"alpha"``); the benchmark counts
        each network's multiply-accumulates with it.
    """

    def __init__(
        self,
        weights: Any = "default",
        device: str = "auto",
        *,
        tile: int | None = None,
        context: int | None = None,
        alpha_context: int | None = None,
        fallback: bool = True,
        allow_untrained: bool | None = None,
        threads: int | None = None,
        precision: str = "auto",
        channels_last: bool | None = None,
        compile: bool = False,
        profile: bool = False,
        fg_solve: float | None = None,
        rounds: int | None = None,
        smoothing: float | None = None,
        space: str = "auto",
        confidence_scale: float | None = None,
        layers: str | None = None,
        layer_prior: float | None = None,
        tolerance: float | None = None,
        layer_space: str | None = None,
        agree_ratio: float | None = None,
        knn: float | None = None,
        network_weight: float | None = None,
        knn_neighbours: int | None = None,
        knn_position: float | None = None,
        knn_band: int | None = None,
        knn_stride: int | None = None,
        black_point: float | None = None,
        white_point: float | None = None,
        sample_alpha: str | None = None,
        match_exposure: bool = True,
    ) -> None:
        for name, value, low in (("tile", tile, 1), ("context", context, 0), ("alpha_context", alpha_context, 0),
                                 ("threads", threads, 1)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                      or not math.isfinite(value) or value != int(value) or value < low):
                raise InputError(f"{name} must be a whole number >= {low} (or None: the default), not {value!r}")
        try:
            self.fg_solve = FG_SOLVE_WEIGHT if fg_solve is None else float(fg_solve)
        except (TypeError, ValueError):
            self.fg_solve = math.nan
        if isinstance(fg_solve, bool) or not math.isfinite(self.fg_solve) or self.fg_solve < 0:
            raise InputError(f"fg_solve must be a weight >= 0 (0 turns the step off), not {fg_solve!r}")
        if not isinstance(match_exposure, (bool, np.bool_)):
            raise InputError(f"match_exposure must be True or False, not {match_exposure!r}")
        self.match_exposure = bool(match_exposure)
        self.space = str(space).strip().lower()
        if self.space not in ("auto", "linear", "display"):
            raise InputError(f"space must be auto, linear or display, not {space!r}")
        self.bundle = resolve_bundle(weights)
        self.refinement = refinement_settings(
            self.bundle, rounds, smoothing=smoothing, confidence_scale=confidence_scale, layers=layers,
            layer_prior=layer_prior, tolerance=tolerance, layer_space=layer_space, agree_ratio=agree_ratio, knn=knn,
            network_weight=network_weight, knn_neighbours=knn_neighbours, knn_position=knn_position, knn_band=knn_band,
            knn_stride=knn_stride,
            black_point=black_point, white_point=white_point, sample_alpha=sample_alpha)
        if self.refinement.rounds and self.fg_solve == 0:
            raise InputError(
                f"rounds={self.refinement.rounds} alternate the foreground solve with alpha, so fg_solve "
                "must be > 0; pass rounds=0 to keep the foreground network's colours as they are"
            )
        if not self.refinement.rounds:
            # Settings only the rounds use: with none they would be dropped without a word. Those
            # that ask for nothing (no levels, no KNN term, no network data term) pass.
            off = {"black_point": 0.0, "white_point": 1.0, "knn": 0.0, "network_weight": 0.0, "sample_alpha": "network"}
            given = {"smoothing": smoothing, "confidence_scale": confidence_scale, "tolerance": tolerance,
                     "knn": knn, "knn_neighbours": knn_neighbours, "knn_position": knn_position, "knn_band": knn_band,
                     "knn_stride": knn_stride, "network_weight": network_weight, "black_point": black_point,
                     "white_point": white_point, "sample_alpha": sample_alpha}
            unused = [f"{name}={value!r}" for name, value in given.items()
                      if value is not None and (name not in off or value != off[name])]
            if unused:
                them = "it" if len(unused) == 1 else "them"
                raise InputError(f"{', '.join(unused)}: only the refinement's rounds use {them}, and rounds is 0 "
                                 f"(the matting network's alpha as it is); leave {them} out or pass rounds >= 1")
        elif not self.refinement.knn:
            # The KNN term's own settings with no term (knn 0, given or as the bundle records): they
            # would be dropped without a word too.
            given = {"knn_neighbours": knn_neighbours, "knn_position": knn_position, "knn_band": knn_band,
                     "knn_stride": knn_stride}
            unused = [f"{name}={value!r}" for name, value in given.items() if value is not None]
            if unused:
                them = "it" if len(unused) == 1 else "them"
                raise InputError(f"{', '.join(unused)}: only the refinement's KNN term uses {them}, and knn is 0 "
                                 f"(the matting Laplacian alone); leave {them} out or pass knn > 0")
        if layer_prior is not None and self.refinement.layers != "multilevel":
            # The networks' colours weigh in only on the multilevel layers: W would be dropped
            # without a word (lbsmatte evaluate --layers solve --layer-prior 0.3 scored as without it).
            raise InputError(f"layer_prior={layer_prior!r}: only layers='multilevel' uses it, and layers is "
                             f"{self.refinement.layers!r} (per pixel, against the networks' colours); leave it out "
                             "or pass layers='multilevel'")
        if allow_untrained is None:
            allow_untrained = os.environ.get(ALLOW_UNTRAINED_ENV, "") == "1"
        # Trained only where the manifest says true: "trained": "false" (a hand edit) is untrained,
        # as 'weights list' and 'show' read it (Bundle.trained).
        if self.bundle.manifest.get("trained") is not True and not allow_untrained:
            raise WeightsError(
                f"weights bundle {self.bundle.name!r} ({self.bundle.path}) holds untrained networks; "
                "LBSMatte will not present their output as a matte. Install a trained bundle "
                "(the packaged 'default', or one on LBSMATTE_WEIGHTS_PATH)."
            )
        self.threads = None if threads is None else int(threads)
        self.fallback = fallback
        self.device = resolve_device(device, fallback=fallback)
        #: The networks' autocast dtype (None: float32); :attr:`precision` names it.
        self.dtype = autocast_dtype(precision, self.device)
        self.channels_last = self.device.type == "cpu" if channels_last is None else bool(channels_last)
        self.nets = {
            role: prepare_for_inference(net, self.channels_last, compile)
            for role, net in self.bundle.load_networks(self.device).items()
        }
        self.stride = _stride(self.nets)
        tile = int(tile or (4096 if self.device.type == "cuda" else 2048))
        # Two strides at least: tiles overlap by a stride, and one a stride wide would never advance.
        self.tile = max(2 * self.stride, tile // self.stride * self.stride)
        #: The tile size asked for: :attr:`tile` is halved for good after the GPU runs out of memory.
        self.tile_asked = self.tile
        self.context = None if context is None else int(context)
        self.alpha_context = None if alpha_context is None else int(alpha_context)
        self.profile = profile
        # Each calling thread's own stats and profile clock: frames matted at once in a thread
        # pool wrote into one another's stats (one frame's size, box and degraded steps read
        # back as another's) and timed their steps against one another's clock.
        self._calls = threading.local()
        self._last_stats = RunStats()
        self.stats = RunStats()
        self._clock = 0.0
        self.stage_context: Callable[[str], contextlib.AbstractContextManager[Any]] | None = None

    @property
    def precision(self) -> str:
        """The networks' precision as resolved (``fp32``, ``fp16`` or ``bf16``; ``auto`` is never
        left): :func:`precision_name` of :attr:`dtype`."""
        return precision_name(self.dtype)

    @property
    def stats(self) -> RunStats:
        """:class:`RunStats` of this thread's last :meth:`matte` call (see the class's attributes)."""
        return getattr(self._calls, "stats", self._last_stats)

    @stats.setter
    def stats(self, value: RunStats) -> None:
        self._calls.stats = self._last_stats = value

    @property
    def _clock(self) -> float:
        return getattr(self._calls, "clock", 0.0)

    @_clock.setter
    def _clock(self, value: float) -> None:
        self._calls.clock = value

    # -- public -----------------------------------------------------------------------------
    def matte(self, plate: np.ndarray, trimap: np.ndarray, colour: str = "linear") -> Matte:
        """Matte one frame (the contract of :func:`matte`, with this object's networks and settings).

        Parameters
        ----------
        plate:
            ``H×W×3`` (or ``H×W×4``: alpha ignored, see :func:`plate_alpha_note`; or ``H×W``/``H×W×1`` grey) numpy array in the encoding
            named by ``colour``: float (any precision; scene-linear floats may exceed 1, NaN, ±inf
            and negatives are sanitised for the networks and reported in ``messages``), or
            ``uint8``/``uint16`` pixels, scaled by their maximum to [0, 1]. Any memory layout.
        trimap:
            ``H×W`` or ``H×W×1`` (or ``H×W×3``/``H×W×4``, read as :func:`core.trimap.normalise_trimap`'s
            ``auto`` channel): float in [0, 1], 0 = BG, 1 = FG, strictly between = unknown, with
            the tolerance of :data:`core.trimap.TOLERANCE`; or ``uint8``/``uint16`` (0/128/255),
            scaled by its maximum; or bool (True = FG). A float trimap on the 8-bit scale
            (values above :data:`core.trimap.EIGHT_BIT_SCALE_ABOVE`) is refused.
        colour:
            ``linear``, ``srgb`` or an OpenColorIO colourspace name (not ``auto``, which reads a
            file's type: :func:`core.colour.resolve_colour`).

        Returns
        -------
        Matte
            New C-contiguous float32 arrays (never views of ``plate`` or ``trimap``, which are
            not modified): alpha ``H×W`` in [0, 1], FG and BG ``H×W×3`` in the plate's encoding;
            known regions pass through untouched.

        Raises
        ------
        InputError
            Naming the argument: a plate or trimap that is not an array (a :class:`core.io.Image`:
            pass ``image.rgb()`` / ``image.pixels``) or of another shape or dtype, sizes that differ,
            an unknown ``colour`` (or ``auto``), checked on every frame. :class:`core.errors.TrimapError`
            (an InputError): NaN in the trimap.
        """
        # torch's thread count is the caller's state (per calling thread): set for this call only,
        # so that another Matter, or the caller's own torch work, keeps its own count.
        previous = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            return self._matte(plate, trimap, colour)
        except (MemoryError, RuntimeError) as exc:
            # Out of memory on the CPU past the check (an estimate is one): numpy's MemoryError or
            # torch's allocator's RuntimeError, said as what it is and what to do about it.
            if not isinstance(exc, MemoryError) and not _cpu_allocation_failed(exc):
                raise
            size = "x".join(str(n) for n in np.shape(plate)[1::-1])
            raise ResourceError(
                f"out of memory matting this {size} frame ({exc}): narrow the trimap's unknown band, render "
                "with --rounds 0 (the networks alone), or give the job more memory") from exc
        finally:
            if self.threads is not None:
                torch.set_num_threads(previous)

    def _matte(self, plate: np.ndarray, trimap: np.ndarray, colour: str) -> Matte:
        """The body of :meth:`matte`, with torch's threads set."""
        from core.colour import (
            check_colour,
            display_and_linear,
            from_display,
            from_linear,
            sanitise,
            scale_integers,
            to_display,
            to_linear,
        )
        from core.trimap import normalise_trimap

        self.stats = RunStats()
        self._clock = time.perf_counter()
        start = self._clock
        # Checked first, so that a frame with no unknown pixel (no colour conversion) does not
        # accept a misspelt colour that the next frame refuses.
        if check_colour(colour) == "auto":
            # The command line's auto reads the encoding off the file's type; an array does not say it.
            raise InputError(
                "colour='auto' is for files (linear for float files, srgb for 8/16-bit ones); an array does not "
                "say its encoding: pass colour='linear' (scene-linear) or 'srgb', or "
                "core.colour.resolve_colour('auto', image.info.is_float) for an image from core.read_image")
        plate = scale_integers(_pixels(plate, "the plate", "image.rgb()"), "the plate")  # 8/16-bit pixels, as normalise_trimap reads a trimap's
        if plate.dtype.kind not in "fb":
            raise InputError(f"the plate must hold numbers, got an array of dtype {plate.dtype}")
        plate = plate.astype(np.float32, copy=False)
        if plate.ndim == 2 or (plate.ndim == 3 and plate.shape[2] == 1):  # grey (a 1-channel file's pixels)
            plate = np.repeat(plate.reshape(plate.shape[:2] + (1,)), 3, axis=2)
        if plate.ndim != 3 or plate.shape[2] not in (3, 4) or plate.size == 0:
            raise InputError(f"the plate must be H×W×3 or H×W×4 (or H×W / H×W×1 grey), got an array of shape {plate.shape} "
                             f"({_layout_hint(plate, 'plate', 'image.rgb()')})")
        messages: list[str] = []
        if plate.shape[2] == 4:
            note = plate_alpha_note(plate[..., 3])
            if note:
                messages.append(note)
        plate = plate[..., :3]
        # Not cast to float here: normalise_trimap scales integer trimaps (0/128/255) to [0, 1]
        # and reads a bool mask as FG where True.
        trimap = _pixels(trimap, "the trimap", "image.pixels")
        if trimap.ndim not in (2, 3) or (trimap.ndim == 3 and trimap.shape[2] > 4):
            raise InputError(
                f"the trimap must be H×W, H×W×1 or H×W×C with C <= 4 (see core.trimap.normalise_trimap for "
                f"named channels), got an array of shape {trimap.shape} ({_layout_hint(trimap, 'trimap', 'image.pixels')})")
        if trimap.ndim == 3 and trimap.shape[2] == 1:
            trimap = trimap[..., 0]
        if trimap.shape[:2] != plate.shape[:2]:
            raise InputError(
                f"plate and trimap differ in size: plate is {plate.shape[1]}x{plate.shape[0]}, "
                f"trimap is {trimap.shape[1] if trimap.ndim > 1 else '?'}x{trimap.shape[0]}"
            )
        trimap = normalise_trimap(trimap)
        clean, report = sanitise(plate)
        if report:
            messages.append(f"plate: {report}; those pixels were sanitised for the networks")
        # The plate's own values wherever they are finite (above 1 and below 0 included): what
        # known regions pass through and what the compositing equation is solved against.
        own = clean if not report else np.where(np.isfinite(plate), plate, clean).astype(np.float32, copy=False)
        fg_known, bg_known, unknown = split_trimap(trimap)
        h, w = trimap.shape
        alpha = trimap.copy()
        # np.where, not a boolean-mask assignment into zeros: the mask's gather and scatter took a
        # sixth of a second on a 1080p frame.
        fg = np.where(fg_known[..., None], own, np.float32(0.0))
        bg = np.where(bg_known[..., None], own, np.float32(0.0))
        self.stats.frame = (h, w)
        if not unknown.any():
            messages.append("trimap has no unknown pixels: alpha is the trimap, no network was run")
            return self._done(Matte(alpha, fg, bg, messages), start)
        if not fg_known.any():
            messages.append("trimap has no known foreground pixels: the result may be poor")
        if not bg_known.any():
            messages.append("trimap has no known background pixels: the result may be poor")

        y0, y1, x0, x1 = self._region(unknown)
        self.stats.box = (y0, y1, x0, x1)
        # The networks see the display encoding clipped to [0, 1], as they were trained; the
        # layers and the refinement work on the plate's own values in the solve space.
        linear = self.solve_space(colour) == "linear"
        crop = own[y0:y1, x0:x1]
        with np.errstate(over="ignore", invalid="ignore"):  # what overflows is counted and clamped below
            if linear:  # an OpenColorIO plate's crop converted once for both
                shown, solve = display_and_linear(clean[y0:y1, x0:x1], crop, colour)
            else:
                shown, solve = None, to_display(crop, colour)
        scale = 1.0
        if linear and self.match_exposure:
            scale, level = exposure_scale(solve)  # the plate's own values in linear light
        if scale != 1.0:
            # A night plate, darker than any photograph the networks were trained on: matted
            # scaled up in linear light, where s·I = α·(s·F) + (1 − α)·(s·B) (FG, BG scaled back below).
            self.stats.exposure = scale
            log.info("plate: the brightest 1%% around the unknown region is at %.4g in linear light, below %g: "
                     "matted scaled by %.4g (FG and BG scaled back)", level, EXPOSURE_LEVEL, scale)
            with np.errstate(over="ignore", invalid="ignore"):
                solve = solve * np.float32(scale)
            shown = to_display(to_linear(clean[y0:y1, x0:x1], colour) * np.float32(scale), "linear")
        elif shown is None:
            shown = to_display(clean[y0:y1, x0:x1], colour)
        display = np.clip(shown, 0.0, 1.0).astype(np.float32, copy=False)
        solve, extreme = _bounded(solve)
        if extreme:
            messages.append(
                f"plate: {extreme} pixel(s) around the unknown region beyond ±{SOLVE_LIMIT:g} in the solve space "
                "(float32 squares of them overflow); clamped to it for the refinement, so where such a pixel "
                "is unknown its FG and BG do not composite back to the plate exactly")
        a_box, fg_box, bg_box = self._run(display, solve, trimap[y0:y1, x0:x1], linear, (h, w, y0, x0), shown)
        if scale != 1.0:
            fg_box, bg_box = fg_box / np.float32(scale), bg_box / np.float32(scale)
        back = from_linear if linear else from_display
        fg_box, bg_box = back(fg_box, colour), back(bg_box, colour)
        region = (slice(y0, y1), slice(x0, x1))
        alpha[region] = np.where(unknown[region], a_box, alpha[region])
        fg[region] = np.where(fg_known[region][..., None], own[region], fg_box)
        bg[region] = np.where(bg_known[region][..., None], own[region], bg_box)
        return self._done(Matte(alpha, fg, bg, messages), start)

    # -- internals ---------------------------------------------------------------------------
    def _done(self, result: Matte, start: float) -> Matte:
        for message in result.messages:
            log.warning(message)
        result.alpha = np.ascontiguousarray(result.alpha, dtype=np.float32)
        result.fg = np.ascontiguousarray(result.fg, dtype=np.float32)
        result.bg = np.ascontiguousarray(result.bg, dtype=np.float32)
        if self.profile:
            self._lap("finish")
            self.stats.seconds["total"] = time.perf_counter() - start
        return result

    def _lap(self, step: str) -> None:
        """With ``profile``: add the seconds since the last lap to ``stats.seconds[step]``."""
        if not self.profile:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.stats.seconds[step] = self.stats.seconds.get(step, 0.0) + now - self._clock
        self._clock = now

    @contextlib.contextmanager
    def _stage(self, role: str) -> Iterator[None]:
        """One network's run: timed with ``profile``, wrapped in :attr:`stage_context` when set."""
        self._lap("prepare" if role == "background" else role)  # the short gap before it counts as its own
        with self.stage_context(role) if self.stage_context is not None else contextlib.nullcontext():
            yield
        self._lap(role)

    def _region(self, unknown: np.ndarray) -> tuple[int, int, int, int]:
        """The unknown region's bounding box plus context, clipped to the frame."""
        y0, y1, x0, x1 = _bbox(unknown)
        margin = self.context if self.context is not None else context_margin(y1 - y0, x1 - x0)
        h, w = unknown.shape
        return max(0, y0 - margin), min(h, y1 + margin), max(0, x0 - margin), min(w, x1 + margin)

    def solve_space(self, colour: str) -> str:
        """Where the compositing equation is solved for a plate in ``colour``: ``linear`` (linear
        light: scene-linear and OpenColorIO plates, and any plate when ``space="linear"``) or
        ``display`` (the sRGB encoding the networks see)."""
        if self.space != "auto":
            return self.space
        return "display" if str(colour).strip().lower() == "srgb" else "linear"

    def agree_as_stored(self, plate: np.ndarray, trimap: np.ndarray, result: Matte, linear: bool
                        ) -> tuple[np.ndarray, np.ndarray]:
        """FG and BG of a result solved in the sRGB encoding, moved so that the compositing
        equation gives the plate back in the encoding a file stores them in.

        :meth:`matte` solves an sRGB plate's layers in its display encoding (:meth:`solve_space`),
        where ``αF + (1 − α)B`` equals the plate in the least-squares sense; Nuke composites an
        EXR's layers in the encoding the EXR holds them in. This is the last step a linear plate
        gets inside the pipeline (:func:`core.compositing.agree_with_plate`, with this object's
        ``fg_solve`` weight and ``agree_ratio``), done in that encoding: in linear light when the
        layers are stored linearised (``linear``: ``lbsmatte matte``'s EXR of an sRGB integer
        file, the demo's ``demo.exr``), else in the sRGB encoding itself (a float file read with
        ``--colour srgb``, the Nuke node's input colour ``srgb``).

        Parameters
        ----------
        plate:
            ``H×W×3`` (or ``H×W×4``, alpha ignored) sRGB-encoded values, as given to :meth:`matte`
            (a float file's values outside [0, 1] as they are; NaN and ±inf replaced as
            :meth:`matte` replaced them for the networks).
        trimap:
            ``H×W`` trimap as given to :meth:`matte` (:func:`core.trimap.split_trimap`'s encodings).
        result:
            What :meth:`matte` returned for them: alpha ``H×W``, FG and BG ``H×W×3``, sRGB-encoded.
        linear:
            Agree in linear light (the layers will be stored linearised), else in the sRGB encoding.

        Returns
        -------
        tuple of numpy.ndarray
            New ``H×W×3`` float32 FG and BG, still sRGB-encoded (the caller encodes them for its
            file). Only the trimap's unknown pixels differ from ``result``'s: they move as little as
            the agreement's weights allow so that ``αF + (1 − α)B`` of their ``linear`` (or sRGB)
            values is the plate's there; the known pixels are ``result``'s, which are the plate.
            With ``fg_solve=0`` (the networks' colours as they are), or no unknown pixel,
            ``result``'s own FG and BG.
        """
        from core.colour import from_linear, sanitise, to_linear

        band = split_trimap(np.asarray(trimap))[2]
        if self.fg_solve <= 0 or not band.any():
            return result.fg, result.bg
        # The unknown pixels alone (a tenth of a typical frame): the step is per pixel, and the
        # whole frame's encodings took seconds at 1080p. The plate as the pipeline solved against it:
        # its own values where finite (a float file's negatives included, which the solve keeps), NaN
        # and infinities replaced as for the networks.
        clean = np.asarray(plate)[band][:, :3]
        if not np.isfinite(clean).all():  # +inf is the whole plate's largest finite value
            clean = np.where(np.isfinite(clean), clean, sanitise(np.asarray(plate)[..., :3])[0][band])
        into = (lambda x: to_linear(x, "srgb")) if linear else (lambda x: x)
        alpha = torch.from_numpy(np.asarray(result.alpha, dtype=np.float32)[band][:, None])
        image, fg, bg = (torch.from_numpy(np.ascontiguousarray(into(x), dtype=np.float32))
                         for x in (clean, np.asarray(result.fg)[band], np.asarray(result.bg)[band]))
        fg, bg = agree_with_plate(image, alpha, fg, bg, self.fg_solve, self.refinement.agree_ratio)
        back = (lambda x: from_linear(x, "srgb")) if linear else (lambda x: x)
        out_fg, out_bg = (np.array(x, dtype=np.float32) for x in (result.fg, result.bg))
        out_fg[band] = back(fg.numpy())
        out_bg[band] = back(bg.numpy())
        return out_fg, out_bg

    def _run(self, image: np.ndarray, solve: np.ndarray, trimap: np.ndarray, linear: bool,
             placement: tuple[int, int, int, int], shown: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The networks on the display-encoded crop ``image``, then the layers and the refinement
        against ``solve`` (the crop in the solve space); alpha, FG, BG in the solve space.
        ``placement``: frame height, width and the crop's top-left corner (the KNN term's positions);
        ``shown``: the display encoding before ``image``'s clip to [0, 1] (the KNN term's colours,
        :func:`core.knn.features`; default ``image``)."""
        unknown = split_trimap(trimap)[2]
        if self.refinement.rounds and self.fg_solve > 0:
            # Before the networks: a frame whose refinement cannot fit (an 8K plate with a wide band)
            # stops at once, not after minutes of network work on the CPU.
            h, w = unknown.shape
            self._check_memory(int(unknown.sum()), h * w,
                               self._largest_tile(h + (-h) % self.stride, w + (-w) % self.stride))
        while True:
            try:
                layers = self._run_at(image, trimap, self.tile)
                break
            except torch.OutOfMemoryError as exc:
                if self.device.type != "cuda":
                    raise
                # An error of LBSMatte's own (the command line prints it without a traceback),
                # naming the tile size that did not fit.
                if not self.fallback:
                    raise ResourceError(
                        f"out of GPU memory with tiles of {self.tile} px (not retried with smaller tiles: "
                        f"no fallback was asked for): {exc}") from exc
                if self.tile <= 256:
                    raise ResourceError(
                        f"out of GPU memory even with tiles of {self.tile} px: free GPU memory (another "
                        "process may hold it) or render with --device cpu") from exc
            # Outside the except block: the failed attempt's tensors, which the traceback kept
            # alive, are freed by now, so the cache can hand their memory back.
            torch.cuda.empty_cache()
            # Halved, still a multiple of the stride and at least two strides (see __init__).
            self.tile = max(2 * self.stride, self.tile // 2 // self.stride * self.stride)
            log.warning("out of GPU memory: retrying with tiles of %d px", self.tile)
        if self.tile < self.tile_asked and self.stats.tiles > 1:
            # Cut into tiles that the asked size would not have cut it into: another result. Said
            # for every such frame (the tile size stays halved for the frames after the first).
            self.stats.degraded.append(f"networks in tiles of {self.tile} px, not {self.tile_asked} "
                                       "(out of GPU memory)")
            log.warning("the networks ran in tiles of %d px, not %d (out of GPU memory): this frame differs from "
                        "one computed in %d-px tiles", self.tile, self.tile_asked, self.tile_asked)
        tri, alpha, fg, bg = layers
        knn = None
        if self.refinement.rounds and self.refinement.knn > 0 and self.fg_solve > 0:
            # The non-local term over the networks' whole crop (neighbours from the context too),
            # positions in the frame; its unknown pixels are the refinement crop's, in the same order.
            from core.knn import features, term_for

            knn = term_for(self.refinement, features(image if shown is None else shown), unknown,
                           split_trimap(trimap)[0], placement, workers=torch.get_num_threads())
            self._lap("knn")
        try:
            alpha, fg, bg = self._finish(solve, tri, alpha, fg, bg, _bbox(unknown), linear, knn)
        except torch.OutOfMemoryError as exc:
            if self.device.type != "cuda":
                raise
            where = f"out of GPU memory in the refinement of {int(unknown.sum())} unknown pixels"
            if not self.fallback:
                raise ResourceError(f"{where} (not retried on the CPU: no fallback was asked for): {exc}") from exc
            failed = True
        else:
            failed = False
        if failed:
            # The same float32 refinement on the CPU (what a CPU render of the frame gives), with
            # the networks' layers brought back; the GPU's cache is emptied once the failed
            # attempt's tensors are gone (outside the except block, whose traceback held them).
            torch.cuda.empty_cache()
            log.warning("%s: refining this frame on the CPU", where)
            self.stats.degraded.append("refinement on the CPU (out of GPU memory)")
            self._check_memory(int(unknown.sum()), unknown.size, None, torch.device("cpu"))
            tri, alpha, fg, bg = (t.cpu() for t in (tri, alpha, fg, bg))
            alpha, fg, bg = self._finish(solve, tri, alpha, fg, bg, _bbox(unknown), linear, knn)
        # One read-back of the three results.
        out = torch.cat([alpha.clamp(0, 1), fg, bg], 1)[0].permute(1, 2, 0).cpu().numpy()
        return out[..., 0], out[..., 1:4], out[..., 4:7]

    def _largest_tile(self, h: int, w: int) -> int:
        """Pixels of the largest tile :meth:`_tiled` cuts an ``h`` × ``w`` input into (stride-padded)."""
        tile, s = self.tile, self.stride
        if h <= tile and w <= tile:
            return h * w
        overlap = max(s, (tile // 8) // s * s)
        return _tile_size(h, tile, overlap, s) * _tile_size(w, tile, overlap, s)

    def _check_memory(self, unknown: int, pixels: int, tile_pixels: int | None,
                      device: torch.device | None = None) -> None:
        """Stop, rather than be killed by the kernel, when a crop of ``pixels`` with ``unknown``
        pixels would need (:func:`memory_needed`; the networks' tiles of ``tile_pixels`` counted
        where they run on the CPU, still to come) more than :data:`MEMORY_HEADROOM` of the memory
        free on ``device`` (default: :attr:`device`)."""
        device = self.device if device is None else device
        need = memory_needed(pixels, unknown, tile_pixels if device.type == "cpu" else None)
        free = available_memory(device)
        if free is not None and need > MEMORY_HEADROOM * free:
            where = "on the GPU" if device.type == "cuda" else "for this process (the machine's, within the job's cgroup and ulimit -v)"
            if REFINE_BYTES_PER_UNKNOWN * unknown >= need / 2:  # the band's refinement needs most of it
                advice = "narrow the trimap's unknown band, render with --rounds 0 (the networks alone), or free memory"
            else:  # the frame's size: a narrower band or no rounds would hardly help
                advice = ("most of it is the frame's size, not its band: give the job more memory, or matte a "
                          "smaller crop of the frame (its band's bounding box with a margin)")
            raise ResourceError(
                f"this frame ({pixels} pixels matted, {unknown} of them unknown) needs about {need / 2**30:.1f} GiB "
                f"and {free / 2**30:.1f} GiB is free {where}: {advice}"
            )

    @torch.inference_mode()
    def _finish(self, solve: np.ndarray, tri: torch.Tensor, alpha: torch.Tensor, fg: torch.Tensor,
                bg: torch.Tensor, box: tuple[int, int, int, int], linear: bool, knn: Any = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The networks' display-encoded layers brought into the solve space, then
        :func:`core.compositing.refine` (the layers solved for alpha, the rounds, and in linear
        light the exact agreement with the plate) over the unknown pixels' bounding box plus the
        2 px their windows reach (the Laplacian's rows there are those of the whole region);
        ``box`` is the unknown pixels' bounding box in the crop."""
        from core.colour import decode_srgb

        if linear:
            fg, bg = decode_srgb(fg), decode_srgb(bg)
        if self.fg_solve == 0:  # the networks' colours as they are (rounds=0 only)
            self._lap("refine")
            return alpha, fg, bg
        # On the layers' device: the networks' (or the CPU, where the GPU ran out of memory here).
        img = torch.from_numpy(np.ascontiguousarray(solve.transpose(2, 0, 1)))[None].to(tri.device)
        y0, y1, x0, x1 = box
        h, w = tri.shape[2:]
        y0, y1, x0, x1 = max(0, y0 - 2), min(h, y1 + 2), max(0, x0 - 2), min(w, x1 + 2)
        crop = (slice(None), slice(None), slice(y0, y1), slice(x0, x1))
        # With torch's threads, as the networks (on a 1080p frame, quiet 2-core machine: the
        # conjugate gradients 0.21 s with two threads against 0.37 s with one, the layers 0.21 against
        # 0.33 s; with another process busy on the second core, 0.92 against 0.49 s: a farm job
        # sharing its cores says so with OMP_NUM_THREADS, as for any threaded renderer).
        refined = refine(img[crop], tri[crop], alpha[crop], fg[crop], bg[crop], self.refinement, self.fg_solve,
                         clip=None if linear else (0.0, 1.0), exact=linear, knn=knn)
        self.stats.iterations = refined.iterations
        alpha, fg, bg = alpha.clone(), fg.clone(), bg.clone()
        alpha[crop], fg[crop], bg[crop] = refined.alpha, refined.fg, refined.bg
        self._lap("refine")
        return alpha, fg, bg

    @torch.inference_mode()
    def _run_at(self, image: np.ndarray, trimap: np.ndarray, tile: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The three networks on the device; returns the crop's trimap, alpha, FG and BG,
        ``1×C×H×W`` float32 on the device (FG and BG display-encoded, in [0, 1])."""
        h, w = trimap.shape
        s = self.stride
        ph, pw = (-h) % s, (-w) % s
        dev = self.device
        # Everything stays on the device from here until the results are read back.
        img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].to(dev, non_blocking=True)
        tri = torch.from_numpy(np.ascontiguousarray(trimap))[None, None].to(dev, non_blocking=True)
        crop_tri = tri
        # Replicate padding to the networks' stride: edges look like more of the same content.
        img = F.pad(img, (0, pw, 0, ph), mode="replicate")
        tri = F.pad(tri, (0, pw, 0, ph), mode="replicate")
        self.stats.padded = (h + ph, w + pw)
        window = self._alpha_window(trimap, h + ph, w + pw)
        fg_known, bg_known, unknown = split_trimap(tri)
        ay0, ay1, ax0, ax1 = window
        with self._autocast(h + ph, w + pw):
            with self._stage("background"):
                bg = self._tiled(self.nets["background"], torch.cat([img, (~bg_known).to(img.dtype)], 1), tile, "background")
                bg = paste_known(bg.float(), img, bg_known)  # the plate where the trimap is BG
            with self._stage("foreground"):
                fg = self._tiled(self.nets["foreground"], torch.cat([img, (~fg_known).to(img.dtype), bg], 1), tile, "foreground")
                fg = paste_known(fg.float(), img, fg_known)  # the plate where the trimap is FG
        with self._autocast(ay1 - ay0, ax1 - ax0):
            with self._stage("alpha"):
                # Only the unknown pixels' alpha is kept: the matting network runs on their
                # bounding box plus alpha_context; elsewhere alpha is the trimap's 0 or 1.
                alpha = fg_known.to(torch.float32)
                # On the CPU its full-resolution layers run only around the unknown pixels (same
                # values there). Not on CUDA: finding the pieces reads the mask back to the host
                # and launches kernels per piece, which costs more there than the dense layers.
                alpha[:, :, ay0:ay1, ax0:ax1] = self._tiled(
                    self.nets["alpha"], torch.cat([img, tri, bg, fg], 1)[:, :, ay0:ay1, ax0:ax1], tile, "alpha",
                    where=unknown[:, :, ay0:ay1, ax0:ax1] if dev.type == "cpu" else None,
                ).float()
                alpha = torch.where(unknown, alpha, fg_known.to(alpha.dtype))  # 0 / 1 where known
        tri_out, alpha, fg, bg = (t[:, :, :h, :w].float() for t in (crop_tri, alpha.clamp(0, 1), fg.clamp(0, 1), bg.clamp(0, 1)))
        return tri_out, alpha, fg, bg

    def _autocast(self, height: int, width: int) -> contextlib.AbstractContextManager[Any]:
        """Autocast to :attr:`dtype` for a network's input of ``height`` × ``width`` px, or float32
        (no autocast) where a side is under two strides. On the CPU, oneDNN's bfloat16 stride-2
        3×3 convolution (torch 2.13) gives NaN or values that change from run to run for an
        input 1 or 2 px wide: the deepest stride-2 layer's, for a region 16 px wide. Such a
        region costs nothing in float32; wider ones keep the chosen precision."""
        if self.dtype is None or min(height, width) < 2 * self.stride:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _computed(self, role: str, pixels: int) -> None:
        self.stats.computed_by[role] = pixels
        self.stats.computed = round(sum(self.stats.computed_by.values()) / len(self.stats.computed_by))

    def _alpha_window(self, trimap: np.ndarray, ph: int, pw: int) -> tuple[int, int, int, int]:
        """``(y0, y1, x0, x1)`` in the padded region: the unknown pixels' bounding box plus
        :attr:`alpha_context`, grown to multiples of the matting network's stride (computed on
        the host, so no device round trip sits between the networks)."""
        if self.alpha_context is None:
            return 0, ph, 0, pw
        s = int(getattr(getattr(self.nets["alpha"], "_orig_mod", self.nets["alpha"]), "stride", 1))
        y0, y1, x0, x1 = _bbox(split_trimap(trimap)[2])
        m = self.alpha_context

        def span(a: int, b: int, size: int) -> tuple[int, int]:
            a, b = max(0, a - m), min(size, b + m)
            n = min(size, math.ceil((b - a) / s) * s)
            a = min(a, size - n)
            return a, a + n

        (y0, y1), (x0, x1) = span(y0, y1, ph), span(x0, x1, pw)
        return y0, y1, x0, x1

    def _tiled(self, net: nn.Module, x: torch.Tensor, tile: int, role: str = "",
               where: torch.Tensor | None = None) -> torch.Tensor:
        """Run ``net`` on ``x`` (1×C×H×W, H and W multiples of the stride), in overlapping tiles
        when larger than ``tile``; overlaps are blended with linear ramps.

        Tiles are as large as ``tile`` at most, but no larger than the fewest tiles covering the
        region need: a 2160-px side with 2048-px tiles runs as two 1216-px tiles, not two of 2048.
        """
        _, _, h, w = x.shape
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if h <= tile and w <= tile:
            self.stats.tiles = max(self.stats.tiles, 1)
            self._computed(role, h * w)
            return net(x) if where is None else net(x, where)
        s = self.stride
        overlap = max(s, (tile // 8) // s * s)
        tile_h, tile_w = _tile_size(h, tile, overlap, s), _tile_size(w, tile, overlap, s)
        out: torch.Tensor | None = None
        weight = torch.zeros(1, 1, h, w, device=x.device)
        ys = _starts(h, tile_h, max(s, tile_h - overlap))
        xs = _starts(w, tile_w, max(s, tile_w - overlap))
        self.stats.tiles = max(self.stats.tiles, len(ys) * len(xs))
        self._computed(role, len(ys) * len(xs) * tile_h * tile_w)
        for ty in ys:
            for tx in xs:
                th, tw = min(tile_h, h - ty), min(tile_w, w - tx)
                window = x[:, :, ty : ty + th, tx : tx + tw]
                piece = (net(window) if where is None else net(window, where[:, :, ty : ty + th, tx : tx + tw])).float()
                ramp = _ramp(th, tw, overlap, ty > 0, ty + th < h, tx > 0, tx + tw < w, x.device)
                if out is None:
                    out = torch.zeros(1, piece.shape[1], h, w, device=x.device)
                out[:, :, ty : ty + th, tx : tx + tw] += piece * ramp
                weight[:, :, ty : ty + th, tx : tx + tw] += ramp
        assert out is not None
        return out / weight.clamp_min(1e-6)


def _tile_size(size: int, tile: int, overlap: int, stride: int) -> int:
    """Side of the tiles along an axis of ``size`` px: the fewest tiles of at most ``tile`` px that
    overlap by ``overlap`` px cover it, and they are made as small as that allows (a multiple of
    ``stride``), so no more pixels are computed than the overlaps need."""
    if size <= tile:
        return size
    n = math.ceil((size - overlap) / (tile - overlap))
    side = math.ceil((size + (n - 1) * overlap) / n / stride) * stride
    return min(tile, max(side, overlap + stride))


def _starts(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def _ramp(h: int, w: int, overlap: int, top: bool, bottom: bool, left: bool, right: bool, device: Any) -> torch.Tensor:
    """Blend weights of one tile: 1 inside, linear ramps over ``overlap`` px on sides shared with a neighbour."""
    wy = torch.ones(h, device=device)
    wx = torch.ones(w, device=device)
    r = torch.linspace(1.0 / (overlap + 1), 1.0, overlap, device=device)
    if top:
        wy[:overlap] = r[: min(overlap, h)]
    if bottom:
        wy[-overlap:] = torch.minimum(wy[-overlap:], r.flip(0)[-min(overlap, h) :])
    if left:
        wx[:overlap] = r[: min(overlap, w)]
    if right:
        wx[-overlap:] = torch.minimum(wx[-overlap:], r.flip(0)[-min(overlap, w) :])
    return (wy[:, None] * wx[None, :])[None, None]


def matte(
    plate: np.ndarray,
    trimap: np.ndarray,
    *,
    weights: Any = "default",
    device: str = "auto",
    colour: str = "linear",
    **options: Any,
) -> Matte:
    """Matte one frame in one call: load ``weights`` on ``device`` and run BG -> FG -> alpha.

    The I/O contract of LBSMatte (SPEC §2, §4). For many frames, make one :class:`Matter` and
    call :meth:`Matter.matte` (same arguments and result) so the networks load once.

    Parameters
    ----------
    plate:
        ``H×W×3`` numpy array (``H×W×4``: alpha ignored, see :func:`plate_alpha_note`; ``H×W``/``H×W×1``: grey), channels last, in the
        encoding named by ``colour``. float32 (or any float; scene-linear values may exceed 1 and
        are kept in FG, BG and the known regions; NaN, ±inf and negatives are sanitised for the
        networks and reported in :attr:`Matte.messages`), or ``uint8``/``uint16`` scaled by
        their maximum to [0, 1]. Not modified.
    trimap:
        ``H×W`` (or ``H×W×1``) with the plate's ``H×W``: 0 = background, 1 = foreground,
        strictly between = unknown, as floats in [0, 1] (within :data:`core.trimap.TOLERANCE`
        of 0 or 1 counts as known) or ``uint8``/``uint16`` 0/128/255. ``H×W×3``/``H×W×4`` arrays
        are read as :func:`core.trimap.normalise_trimap` reads them. Not modified.
    weights:
        Weights bundle: name, folder or :class:`core.weights.Bundle` (default: the installed
        ``default``); ``"none"``: the parameter-free priors, no networks (a diagnostic).
    device:
        ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    colour:
        Encoding of ``plate``: ``linear`` (scene-linear, Nuke's working space), ``srgb``, or an
        OpenColorIO colourspace name when ``$OCIO`` names a config (not ``auto``, which reads a
        file's type: :func:`core.colour.resolve_colour`). The networks see it display-encoded; FG
        and BG come back in this encoding.
    **options:
        Keyword arguments of :class:`Matter` (``rounds``, ``tile``, ``precision`` ...); a
        misspelt one raises :class:`TypeError`, a bad value :class:`core.errors.InputError`
        naming it.

    Returns
    -------
    Matte
        ``alpha`` ``H×W`` float32 in [0, 1]: exactly 1 where the trimap is FG and 0 where it is
        BG. ``fg`` ``H×W×3`` float32, **unpremultiplied** foreground colour in ``colour``'s
        encoding, equal to the plate where the trimap is FG. ``bg`` ``H×W×3`` float32,
        background colour, equal to the plate where the trimap is BG. New, C-contiguous arrays
        that share no memory with the inputs. ``Matte.rgba()``: ``H×W×4``, FG·alpha and alpha
        (premultiplied, Nuke's convention; ``rgba(premultiply=False)`` for FG and alpha).
        ``messages``: warnings (sanitised pixels, no known FG or BG, no unknown pixel).

    Raises
    ------
    core.errors.InputError
        A plate or trimap of the wrong shape or dtype (naming which, and the shape it got),
        plate and trimap of different sizes (naming both), an unknown ``colour`` or device, a
        bad keyword value (naming it). :class:`core.errors.WeightsError`: a bundle that is
        missing, damaged or untrained.

    Example
    -------
    >>> import numpy as np
    >>> from core.pipeline import matte
    >>> plate = np.full((64, 64, 3), 0.18, np.float32)        # scene-linear, dark left ...
    >>> plate[:, 32:] = 2.5                                   # ... and bright (above 1) right
    >>> trimap = np.zeros((64, 64), np.float32)               # BG on the left,
    >>> trimap[:, 28:36] = 0.5                                # an unknown band,
    >>> trimap[:, 36:] = 1.0                                  # FG on the right
    >>> result = matte(plate, trimap, colour="linear", device="cpu")
    >>> result.alpha.shape, result.fg.shape, result.bg.shape, result.alpha.dtype
    ((64, 64), (64, 64, 3), (64, 64, 3), dtype('float32'))
    >>> float(result.alpha[0, 0]), float(result.alpha[0, 63]), float(result.fg[0, 63, 0])
    (0.0, 1.0, 2.5)
    >>> rgba = result.rgba()                                  # premultiplied: FG·alpha, alpha
    >>> rgba.shape, bool(np.array_equal(rgba[..., 3], result.alpha))
    ((64, 64, 4), True)
    """
    return Matter(weights, device, **options).matte(plate, trimap, colour=colour)

