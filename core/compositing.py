"""The compositing maths after the networks: one home, in PyTorch, on the networks' device.

Everything here works on ``N×C×H×W`` tensors (``N = 1`` for the pipeline) and is differentiable,
so training can put its loss on what the user gets. Data flows one way: the pipeline runs the
networks and calls :func:`refine`; nothing here imports the pipeline or the networks.

- :func:`solve_foreground`: F (and B) that agree with ``I = αF + (1 − α)B`` near the networks'
  colours (a 2×2 least-squares system per pixel and channel, solved in closed form).
- :func:`alpha_from_composite`: alpha read off the compositing equation for given F and B,
  ``â = <I − B, F − B> / |F − B|²``, and the distance ``|F − B|``.
- :func:`matting_laplacian`: the matting Laplacian of Levin, Lischinski and Weiss (2008) over
  the unknown pixels, as a sparse matrix on the device, built with box filters and vectorised
  gathers (no just-in-time compilation: the first frame costs what the second does).
- :func:`refine`: the rounds after the networks. Each round solves F for the current alpha,
  reads alpha off the compositing equation for that F and the background network's B, trusted by
  ``c = 1 − exp(−|F − B|² / σ²)``, and smooths it with the matting Laplacian,
  ``alpha = argmin aᵀLa + λ Σ_U c (a − â)²`` with alpha fixed where the trimap is known, by
  Jacobi-preconditioned conjugate gradients warm-started from the previous round's alpha
  (:func:`conjugate_gradients`). Two more terms, each off at weight 0: ``κ E_knn(a)``, KNN
  matting's non-local smoothness (:mod:`core.knn`, pixels of like colour anywhere in the crop),
  and ``μ Σ_U (a − a_net)²``, the matting network's alpha as a data term.
  The last round's alpha is then put through levels, ``clip((a − black) / (white − black), 0, 1)``
  (:func:`alpha_levels`; identity at 0 and 1), as a compositor's Grade on the matte would: the
  smoothness terms leave a faint haze where the truth is 0 or 1, which levels take out.

This is the smoothing step of classical sampling-based matting (Robust Matting, Global Sampling
Matting), fed by the patent's three networks: F starts from the matting network's alpha and the
foreground network's colours, B is the background network's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import torch
import torch.nn.functional as F

from core.colour import decode_srgb, encode_srgb
from core.errors import InputError
from core.trimap import split_trimap_tensor

#: Weights of the networks' colours in :func:`solve_foreground`: the foreground network's, and
#: the background network's relative to it. Chosen on the validation composites of held-out
#: objects (``tools/make_validation_composites.py``): with the first bundle the alpha-weighted FG
#: SAD went from 13.45 (network colours as they are) to 6.5 (Trimap1).
FG_SOLVE_WEIGHT = 0.1
FG_SOLVE_BG_RATIO = 3.0

#: Defaults of :func:`refine` (chosen in stop 9 on the held-out photographs; see the README).
ROUNDS = 3
SMOOTHING = 0.003  # λ: weight of the compositing equation's alpha against the Laplacian
CONFIDENCE_SCALE = 0.1  # σ²: |F − B|² at which that alpha is trusted to 1 − 1/e
#: Regularisation of the windows' colour covariances (Levin et al.'s ε; pymatting's default).
EPSILON = 1e-7
#: Conjugate gradients stop at ``|r| <= TOLERANCE · |b|`` or after ``MAX_ITERATIONS`` per round.
#: This is the default of a bundle that records none; the shipped bundle records 1e-4, chosen on
#: held-out objects (tools/cross_validate.py). The figures below were measured on the networks'
#: own training objects, which favours stopping early.
#: Chosen on the 14 training objects, both trimaps (mean SAD / gradient error / iterations per
#: frame over the three rounds): 1e-4 4.74 / 6.28 / 396, 3e-4 4.65 / 5.85 / 244, 1e-3
#: 4.54 / 5.47 / 108, 3e-3 4.60 / 5.60 / 43, 1e-2 4.72 / 6.21 / 14. Stopping early keeps more of the
#: networks' alpha (the warm start) than the fully converged smoothing does, and it pays.
TOLERANCE = 1e-3
MAX_ITERATIONS = 400
#: The whole-number settings of :class:`Settings`: ``(lowest, highest)`` (``None``: no highest).
#: The highest are past anything a run needs, so that a typo (``--rounds 100000``) is an error
#: naming the range rather than a render that runs for weeks without a word: each round is a
#: sparse solve (about 20 s on the 600×400 demo on two busy cores, the solve's iterations
#: bounded by ``max_iterations``), cross-validation chose 1 to 3 rounds, and 100 is over 30
#: times that; 10,000 iterations is 25 times the default bound, where the tolerances chosen stop
#: within a few hundred; a search's memory and time grow with its neighbours, and 200 is 10 times
#: pymatting's 20, which every fold kept. ``knn_band`` and ``knn_stride`` have no highest: a wider
#: band or a longer stride costs no more (a band wider than the crop is all of it, 0's term).
WHOLE_NUMBER_RANGES = {"rounds": (0, 100), "max_iterations": (1, 10_000), "knn_neighbours": (2, 200),
                       "knn_band": (0, None), "knn_stride": (1, None)}
#: The ways :func:`refine` makes the final layers (:class:`Settings` ``layers``).
LAYER_METHODS = ("solve", "multilevel")
#: Where :class:`Settings` ``multilevel`` layers are smoothed (``layer_space``).
LAYER_SPACES = ("solve", "display")
#: τ of the matting network's data term (:class:`Settings` ``network_weight``): a pixel's term
#: fades as ``exp(−(a_net − â)² / τ)`` with the distance between the network's alpha and the alpha
#: â the sampling networks' F and B give, so two networks that disagree cancel out instead of one
#: overruling the other. 0.01 (a tenth of alpha apart: a third of the weight) was the one value
#: tried (stop 32), not tuned. Without it, μ 3e-4 took GT16 (a translucent flag over a koala, where
#: the matting network is confidently wrong) from 12.3 / 16.2 SAD to 17.6 / 20.2; with it μ 3e-3
#: took GT16 to 10.9 / 13.4, though GT04's loose trimap went from 9.05 to 10.46.
NETWORK_AGREEMENT = 0.01
#: The alphas :class:`Settings` ``sample_alpha`` names.
SAMPLE_ALPHAS = ("network", "half", "unsolved")
#: A ridge on the diagonal keeps the system positive definite where no pixel is known and the
#: compositing equation is not trusted (the Laplacian alone is singular there).
RIDGE = 1e-9
#: Windows assembled at a time by :func:`laplacian_rows` (its temporaries: about 1.2 kB per window).
WINDOW_CHUNK = 32768
#: A window whose colour covariance's trace exceeds this many times ε/9 (its regularised
#: covariance that ill-conditioned) gets its Laplacian block from the covariance's eigenvectors,
#: not from the adjugate inverse: with linear-light highlights of a few hundred next to a dark
#: background the adjugate's cancellations in float64 made blocks indefinite, and the conjugate
#: gradients diverged to a NaN matte. 1e8 (a colour variance above about 1.1 at the default ε)
#: is never reached by colours in [0, 1], whose windows keep the adjugate's exact numbers.
CONDITION_LIMIT = 1e8


@dataclass
class Settings:
    """What :func:`refine` does; validated on construction.

    Attributes:
        rounds: rounds after the networks (0: the matting network's alpha as it is).
        smoothing: λ, the compositing equation's weight against the Laplacian (> 0).
        confidence_scale: σ² (> 0).
        tolerance: relative residual at which each round's conjugate gradients stop (> 0).
        max_iterations: bound on each round's iterations (>= 1).
        layers: how the final F and B are made for the refined alpha: ``solve``, per pixel, the
            compositing equation against the networks' colours (:func:`solve_layers`);
            ``multilevel``, smooth where alpha is, with the networks' colours as a prior of weight
            ``layer_prior`` (:func:`estimate_layers`).
        layer_prior: ``w_p`` of ``multilevel`` (>= 0; 0 is the classical method).
        layer_space: where ``multilevel`` smooths the layers: ``solve``, the space the compositing
            equation is solved in; ``display``, the sRGB encoding (:func:`core.colour.encode_srgb`)
            even when that space is linear light. A colour step there is one the eye (and the
            scores, which compare sRGB-encoded layers) sees as such; in linear light the bright
            side of an edge dominates the smoothness term. The same for a plate solved in display.
        agree_ratio: ``w_B / w_F`` of :func:`agree_with_plate` in linear light (> 0): how much
            less the background moves than the foreground to make ``αF + (1 − α)B`` the plate.
        knn: κ, the weight of the non-local KNN term (:mod:`core.knn`) added to the matting
            Laplacian (>= 0; 0: the Laplacian alone).
        knn_band: the KNN term's searches find known pixels only within this many px of the
            unknown region (:func:`core.knn.band`; 0: anywhere in the crop). Faster, with about the
            same held-out quality (stop 36 in docs/cross_validation/HISTORY.md).
        knn_stride: only the unknown pixels on every ``knn_stride``-th row and column search for
            neighbours (:func:`core.knn.knn_term`'s ``stride``; 1: every unknown pixel), each of
            their pairs counting ``knn_stride²`` times: about ``knn_stride²`` times fewer
            searches and a sparser system, an approximation (stop 39 in
            docs/cross_validation/HISTORY.md).
        knn_neighbours, knn_position: the KNN term's searches (:func:`core.knn.searches`):
            ``knn_neighbours`` near neighbours with the position weighted ``knn_position``, then
            half as many by colour (default: pymatting's 20 and 2.0).
        black_point, white_point: the levels of the last round's alpha (:func:`alpha_levels`;
            ``0 <= black_point < white_point <= 1``; 0 and 1: none). Layers are made for the
            levelled alpha.
        network_weight: μ, the weight of the matting network's own alpha as a data term,
            ``μ Σ_U c·g (a − a_net)²``, trusted as the compositing term is (``c``, the confidence of
            ``|F − B|``) and where the matting network agrees with the alpha F and B give
            (``g``, :data:`NETWORK_AGREEMENT`) (>= 0; 0: the network's alpha is only where the
            conjugate gradients start).
        sample_alpha: the alpha for which the networks' F and B are first solved against the plate,
            before the first round reads alpha off them: ``network``, the matting network's;
            ``half``, 0.5 for every unknown pixel (F and B then move alike toward explaining the
            plate, and an error of the matting network does not pass into the data term; the
            conjugate gradients still start from the network's alpha); ``unsolved``, not solved at
            all: the first round reads alpha off the foreground and background networks' colours
            as they are (solving F for 0.5 moves it by about ``1.15 (α − 0.5)(F − B)``, which
            pulls the prior of alphas above 0.5 down: stop 49's ramps).
    """

    rounds: int = ROUNDS
    smoothing: float = SMOOTHING
    confidence_scale: float = CONFIDENCE_SCALE
    tolerance: float = TOLERANCE
    max_iterations: int = MAX_ITERATIONS
    layers: str = "solve"
    layer_prior: float = 0.1
    layer_space: str = "solve"
    agree_ratio: float = FG_SOLVE_BG_RATIO
    knn: float = 0.0
    knn_neighbours: int = 20
    knn_position: float = 2.0
    knn_band: int = 0
    knn_stride: int = 1
    network_weight: float = 0.0
    black_point: float = 0.0
    white_point: float = 1.0
    sample_alpha: str = "network"

    def __post_init__(self) -> None:
        for name, (low, high) in WHOLE_NUMBER_RANGES.items():
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or (isinstance(value, float) and not math.isfinite(value))
                    or int(value) != value or value < low  # int() of inf or NaN raised OverflowError, ValueError
                    or (high is not None and value > high)):
                span = f">= {low}" if high is None else f"from {low} to {high}"
                raise InputError(f"{name} must be a whole number {span}, not {value!r}")
            setattr(self, name, int(value))
        for name, zero_ok in (("smoothing", False), ("confidence_scale", False), ("tolerance", False),
                              ("layer_prior", True), ("agree_ratio", False), ("knn", True),
                              ("knn_position", False), ("network_weight", True)):
            raw = getattr(self, name)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                value = float("nan")
            if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
                raise InputError(f"{name} must be a number {'>= 0' if zero_ok else '> 0'}, not {raw!r}")
            setattr(self, name, value)
        try:
            black, white = float(self.black_point), float(self.white_point)
        except (TypeError, ValueError):
            black = white = float("nan")
        if not 0.0 <= black < white <= 1.0:
            raise InputError("black_point and white_point must satisfy 0 <= black_point < white_point <= 1, "
                             f"not {self.black_point!r} and {self.white_point!r}")
        self.black_point, self.white_point = black, white
        if self.layers not in LAYER_METHODS:
            raise InputError(f"layers must be one of {', '.join(LAYER_METHODS)}, not {self.layers!r}")
        if self.layer_space not in LAYER_SPACES:
            raise InputError(f"layer_space must be one of {', '.join(LAYER_SPACES)}, not {self.layer_space!r}")
        if self.sample_alpha not in SAMPLE_ALPHAS:
            raise InputError(f"sample_alpha must be one of {', '.join(SAMPLE_ALPHAS)}, not {self.sample_alpha!r}")

    def applied(self, layers: bool = True) -> dict[str, Any]:
        """The settings a run with these acts on, as a JSON-ready table (a result's
        ``lbsmatte/settings``, an evaluation's record): ``rounds`` always; the rounds' own settings
        (:data:`ROUND_SETTINGS`: λ, σ², the solve's bounds, the KNN term, μ, the levels,
        ``sample_alpha``) only with rounds; the KNN term's searches (:data:`KNN_SEARCH_SETTINGS`)
        only with ``knn > 0``; the layers' (:data:`LAYER_SETTINGS`) only where they are solved
        (``layers``: False for ``fg_solve`` 0, the networks' colours as they are). With 0 rounds the
        bundle's levels and KNN term were listed though nothing applied them."""
        table = dataclasses.asdict(self)
        dropped = set() if layers else set(LAYER_SETTINGS)
        if not self.rounds:
            dropped |= set(ROUND_SETTINGS)
        elif not self.knn:
            dropped |= set(KNN_SEARCH_SETTINGS)
        return {name: value for name, value in table.items() if name not in dropped}


#: :class:`Settings` fields only the rounds read: with ``rounds`` 0 they change nothing.
ROUND_SETTINGS = ("smoothing", "confidence_scale", "tolerance", "max_iterations", "knn", "knn_neighbours",
                  "knn_position", "knn_band", "knn_stride", "network_weight", "black_point", "white_point",
                  "sample_alpha")
#: :class:`Settings` fields only the KNN term's searches read: with ``knn`` 0 they change nothing.
KNN_SEARCH_SETTINGS = ("knn_neighbours", "knn_position", "knn_band", "knn_stride")
#: :class:`Settings` fields only the layers' solve reads (none with ``fg_solve`` 0).
LAYER_SETTINGS = ("layers", "layer_prior", "layer_space", "agree_ratio")


def solve_foreground(
    image: torch.Tensor, alpha: torch.Tensor, bg: torch.Tensor, fg: torch.Tensor, weight: float,
    bg_weight: Optional[float] = None, clip: Optional[Tuple[float, float]] = (0.0, 1.0),
) -> torch.Tensor:
    """Foreground colours that agree with the compositing equation, near the networks' own.

    Per pixel and channel, F (and B) minimising
    ``(αF + (1 − α)B − I)² + w_F·(F − F_net)² + w_B·(B − B_net)²``, a 2×2 linear system with the
    closed-form solution used here; F is returned (:func:`solve_layers` returns both). Where alpha
    is high the plate decides F (fine detail the sampling networks cannot carry: strands,
    texture); where it is low the foreground network's estimate does, because there the plate
    says little about F. B may move too, by what ``w_B`` allows, so an error in the background
    estimate is not all pushed into F.

    Args:
        image, bg, fg: ``N×3×H×W``; alpha: ``N×1×H×W`` in [0, 1]; any colour encoding, the same
            for all three.
        weight: ``w_F`` > 0.
        bg_weight: ``w_B`` > 0 (default ``FG_SOLVE_BG_RATIO · weight``; ``inf`` keeps B fixed).
        clip: range F is clamped to (default [0, 1], the networks' encoding); ``None`` for
            scene-linear values, which may exceed 1 or be negative.
    """
    return solve_layers(image, alpha, bg, fg, weight, bg_weight, clip)[0]


def solve_layers(
    image: torch.Tensor, alpha: torch.Tensor, bg: torch.Tensor, fg: torch.Tensor, weight: float,
    bg_weight: Optional[float] = None, clip: Optional[Tuple[float, float]] = (0.0, 1.0),
    bg_ratio: float = FG_SOLVE_BG_RATIO,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """F and B of :func:`solve_foreground` (same arguments); B is clamped like F. ``bg_ratio`` is
    :data:`FG_SOLVE_BG_RATIO` (an argument only because TorchScript reads module constants as
    defaults, not as globals)."""
    a = alpha.to(image.dtype)
    wf = float(weight)
    wb = bg_ratio * wf if bg_weight is None else float(bg_weight)
    b = 1 - a
    if wb == float("inf"):  # (not math.isinf: torch 1.12's TorchScript miscompiles it) B fixed: F = (α(I − (1 − α)B) + w_F F_net) / (α² + w_F)
        f_out, b_out = (a * (image - b * bg) + wf * fg) / (a * a + wf), bg
    else:
        det = a * a * wb + wf * b * b + wf * wb
        rhs_f = a * image + wf * fg
        rhs_b = b * image + wb * bg
        f_out = (rhs_f * (b * b + wb) - a * b * rhs_b) / det
        b_out = (rhs_b * (a * a + wf) - a * b * rhs_f) / det
    if clip is not None:
        f_out, b_out = f_out.clamp(clip[0], clip[1]), b_out.clamp(clip[0], clip[1])
    return f_out, b_out


def agree_with_plate(
    image: torch.Tensor, alpha: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor, weight: float = FG_SOLVE_WEIGHT,
    bg_ratio: float = FG_SOLVE_BG_RATIO,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """F and B moved, as little as their weights allow, so that ``αF + (1 − α)B = I`` exactly,
    neither going below ``min(I, 0)``.

    The smallest change ``w_F|ΔF|² + w_B|ΔB|²`` (``w_B = bg_ratio · w_F``) that closes the
    residual ``r = I − αF − (1 − α)B``: ``ΔF = r·α/(w_F s)``, ``ΔB = r·(1 − α)/(w_B s)`` with
    ``s = α²/w_F + (1 − α)²/w_B``. Where alpha is 1 only F moves, where it is 0 only B, so a
    known pixel gets the plate back exactly. Along the line of exact agreements the change is a
    convex function of one variable, so where that answer puts a channel below the floor, the
    answer is the line's point at the floor: that channel on it and the other one solving the
    equation. Light is not negative; with a floor of ``min(I, 0)`` the plate itself (F = B = I)
    always qualifies, so the agreement stays exact. Nothing is clipped above: in linear light
    F and B may exceed 1.
    """
    a = alpha.to(image.dtype)
    wf = float(weight)
    wb = bg_ratio * wf
    residual = image - a * fg - (1 - a) * bg
    s = a * a / wf + (1 - a) * (1 - a) / wb
    f = fg + residual * (a / (wf * s))
    b = bg + residual * ((1 - a) / (wb * s))
    floor = image.clamp(max=0.0)
    # B below the floor only where alpha > 0 (at alpha 0, B is the plate), F only where alpha < 1;
    # both at once would need a plate below the floor. The clamps only keep the unused branch finite.
    low_b = b < floor
    low_f = (f < floor) & ~low_b
    f_on_line = (image - (1 - a) * floor) / a.clamp(min=1e-12)
    b_on_line = (image - a * floor) / (1 - a).clamp(min=1e-12)
    return (torch.where(low_b, f_on_line, torch.where(low_f, floor, f)),
            torch.where(low_f, b_on_line, torch.where(low_b, floor, b)))


#: Defaults of :func:`estimate_layers`: pymatting's ``estimate_foreground_ml`` (Germer et al. 2020).
LAYER_REGULARIZATION = 1e-5
LAYER_GRADIENT_WEIGHT = 1.0
LAYER_SMALL_SIZE = 32
LAYER_SMALL_ITERATIONS = 10
LAYER_BIG_ITERATIONS = 2


def _sweep_indices(h: int, w: int, active: torch.Tensor) -> Tuple[List[torch.Tensor], List[List[torch.Tensor]]]:
    """For the red and the black pixels of ``active`` (``h×w`` bool) in an ``h×w`` level: their
    flat indices, and those of their 4-neighbours (the pixel itself past the border)."""
    flat = torch.nonzero(active.reshape(-1)).reshape(-1)
    ys, xs = flat // w, flat % w
    red = (ys + xs) % 2 == 0
    indices: List[torch.Tensor] = []
    neighbours: List[List[torch.Tensor]] = []
    for colour in (red, ~red):
        i, y, x = flat[colour], ys[colour], xs[colour]
        indices.append(i)
        neighbours.append([i - (y > 0).to(i.dtype) * w, i + (y < h - 1).to(i.dtype) * w,
                           i - (x > 0).to(i.dtype), i + (x < w - 1).to(i.dtype)])
    return indices, neighbours


def estimate_layers(
    image: torch.Tensor, alpha: torch.Tensor, fg_prior: torch.Tensor, bg_prior: torch.Tensor, prior_weight: float,
    clip: Optional[Tuple[float, float]] = (0.0, 1.0), where: Optional[torch.Tensor] = None,
    regularization: float = LAYER_REGULARIZATION, gradient_weight: float = LAYER_GRADIENT_WEIGHT,
    small_size: int = LAYER_SMALL_SIZE, small_iterations: int = LAYER_SMALL_ITERATIONS,
    big_iterations: int = LAYER_BIG_ITERATIONS,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Foreground and background colours for a given alpha, smooth where alpha is: multi-level
    foreground estimation (Germer, Uelwer, Conrad and Harmeling 2020), with the networks' layers
    as a prior.

    Minimises, per channel, ``Σ_i (α_i F_i + (1 − α_i) B_i − I_i)² + w_p (|F_i − F'_i|² + |B_i − B'_i|²)
    + Σ_{i~j} (r + g |α_i − α_j|)(|F_i − F_j|² + |B_i − B_j|²)`` over 4-neighbours, coarse to fine
    on a pyramid of nearest-neighbour resizes whose sides grow geometrically (pymatting's
    ``estimate_foreground_ml`` and its defaults), each level started from the one below and
    relaxed by red-black Gauss-Seidel sweeps: every pixel's 2×2 system for (F, B) solved with its
    neighbours held. ``w_p = 0`` is the classical method; the priors ``F'``, ``B'`` are the
    foreground and background networks' layers. Written here, in torch, rather than called from
    pymatting, whose implementation is compiled just in time on a user's first frame.

    With ``where`` (``1×1×H×W`` bool: the pixels whose colours are wanted), the levels larger
    than ``small_size`` update only the pixels within one more than their half-sweeps of a wanted
    one: a half-sweep carries a change one pixel further, so the wanted pixels get nearly what
    updating every pixel gives them (3e-4 apart at most on a 1488×1088 test, 2e-3 on GT04 halved
    with its Trimap1, 0 with twice the margin), for a fraction of the work (a 1080p frame's unknown
    band is a tenth of it).

    Args:
        image, fg_prior, bg_prior: ``1×3×H×W``; alpha: ``1×1×H×W`` in [0, 1].
        prior_weight: ``w_p`` >= 0.
        clip: range of F and B after every update (``None`` in linear light).
        where: the pixels that matter (default: all).
    Returns:
        F and B, ``1×3×H×W``.
    """
    h0, w0 = image.shape[2], image.shape[3]
    device = image.device
    levels = 1  # ceil(log2(longer side)), in integers (TorchScript has no math.log2)
    while (1 << levels) < max(h0, w0):
        levels += 1
    layers = torch.cat([image, image], 1).mean(dim=(2, 3), keepdim=True)  # F and B, as 6 channels
    # Resized together, level by level: alpha, the plate and the priors (and the wanted pixels).
    planes = [alpha.to(image.dtype), image, fg_prior.to(image.dtype), bg_prior.to(image.dtype)]
    if where is not None:
        planes.append(where.to(image.dtype))
    stack = torch.cat(planes, 1)
    # Resized from a channels-last copy: torch's nearest resize of a channels-first tensor to a
    # small size copies the whole input first (64 ms for 11 channels of 1080x1160 to 44x47,
    # against 0.2 ms from channels-last).
    resizable = stack.contiguous(memory_format=torch.channels_last)
    for level in range(levels + 1):
        h = max(1, int(round(h0 ** (level / levels))))
        w = max(1, int(round(w0 ** (level / levels))))
        size = [h, w]
        if h == h0 and w == w0:
            level_stack = stack
        else:
            level_stack = F.interpolate(resizable, size=size, mode="nearest").contiguous()
        a, img, fp, bp = level_stack[:, 0:1], level_stack[:, 1:4], level_stack[:, 4:7], level_stack[:, 7:10]
        layers = F.interpolate(layers, size=size, mode="nearest").reshape(6, h * w)
        iterations = small_iterations if min(h, w) <= small_size else big_iterations
        if where is None or min(h, w) <= small_size:
            active = torch.ones(h, w, dtype=torch.bool, device=device)
        else:
            near = 2 * iterations + 1  # one more than the half-sweeps: a sweep moves a change by a pixel
            wanted = level_stack[:, 10:11]
            # The dilation by `near` px as two 1-D passes (a square window costs its area).
            wanted = F.max_pool2d(wanted, (1, 2 * near + 1), stride=1, padding=(0, near))
            active = F.max_pool2d(wanted, (2 * near + 1, 1), stride=1, padding=(near, 0))[0, 0] > 0
        indices, neighbours = _sweep_indices(h, w, active)
        # What does not change within a level, per swept pixel: the neighbours' weights and the
        # 2×2 matrices' inverses; F and B are updated together, as 6 channels.
        a_flat = a.reshape(-1)
        colours, fg_flat, bg_flat = img.reshape(3, h * w), fp.reshape(3, h * w), bp.reshape(3, h * w)
        plans: List[List[torch.Tensor]] = []
        for half in range(2):
            index, around = indices[half], neighbours[half]
            ai = a_flat[index]
            bi = 1.0 - ai
            ci = colours[:, index]
            weights = [regularization + gradient_weight * (ai - a_flat[n]).abs() for n in around]
            total = weights[0] + weights[1] + weights[2] + weights[3]
            a00 = ai * ai + total + prior_weight
            a11 = bi * bi + total + prior_weight
            a01 = ai * bi
            det = a00 * a11 - a01 * a01
            rhs_known = torch.cat([ai * ci + prior_weight * fg_flat[:, index], bi * ci + prior_weight * bg_flat[:, index]], 0)
            plans.append([a11 / det, -a01 / det, a00 / det, rhs_known] + weights)
        for _ in range(iterations):
            for half in range(2):
                index, around, plan = indices[half], neighbours[half], plans[half]
                if index.numel() == 0:
                    continue
                rhs = plan[3] + plan[4] * layers[:, around[0]] + plan[5] * layers[:, around[1]] \
                    + plan[6] * layers[:, around[2]] + plan[7] * layers[:, around[3]]
                rf, rb = rhs[0:3], rhs[3:6]
                new = torch.cat([plan[0] * rf + plan[1] * rb, plan[1] * rf + plan[2] * rb], 0)
                if clip is not None:
                    new = new.clamp(clip[0], clip[1])
                layers[:, index] = new
        layers = layers.reshape(1, 6, h, w)
    return layers[:, 0:3], layers[:, 3:6]


def paste_known(layer: torch.Tensor, plate: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """A network's layer with the plate pasted where the trimap says the layer is the plate
    (known BG for the background, known FG for the foreground). The one definition, used
    between the networks at inference (:mod:`core.pipeline`, :mod:`core.export`) and in
    training (:mod:`core.training.train`), so the next network sees the same input in both."""
    return torch.where(known, plate, layer.to(plate.dtype))


def alpha_from_composite(image: torch.Tensor, bg: torch.Tensor, fg: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Alpha from the compositing equation for given F and B, and the distance ``|F − B|``.

    ``alpha = <I − B, F − B> / (|F − B|² + 1e-4)`` clipped to [0, 1]; inputs ``N×3×H×W``, outputs
    ``N×1×H×W``. The 1e-4 keeps it finite where F and B coincide (there the plate says nothing
    about alpha, which :func:`refine`'s confidence accounts for).
    """
    d = fg - bg
    dist2 = (d * d).sum(1, keepdim=True)
    alpha = ((image - bg) * d).sum(1, keepdim=True) / (dist2 + 1e-4)
    return alpha.clamp(0, 1), dist2.sqrt()


# -- the matting Laplacian -------------------------------------------------------------------

def _inverse3(c: torch.Tensor) -> torch.Tensor:
    """Inverses of symmetric 3×3 matrices ``c`` (``3×3×…``, one matrix per trailing index) by the
    adjugate: closed form, no batched LAPACK (and no ``torch.linalg``, which the torch of older
    Nuke versions lacks)."""
    a00 = c[1, 1] * c[2, 2] - c[1, 2] * c[1, 2]
    a01 = c[0, 2] * c[1, 2] - c[0, 1] * c[2, 2]
    a02 = c[0, 1] * c[1, 2] - c[0, 2] * c[1, 1]
    a11 = c[0, 0] * c[2, 2] - c[0, 2] * c[0, 2]
    a12 = c[0, 1] * c[0, 2] - c[0, 0] * c[1, 2]
    a22 = c[0, 0] * c[1, 1] - c[0, 1] * c[0, 1]
    det = c[0, 0] * a00 + c[0, 1] * a01 + c[0, 2] * a02
    return torch.stack([torch.stack([a00, a01, a02]), torch.stack([a01, a11, a12]),
                        torch.stack([a02, a12, a22])]) / det


def _steep_blocks(colours: torch.Tensor, epsilon: float, base: torch.Tensor) -> torch.Tensor:
    """The Laplacian's 9×9 blocks of windows with ill-conditioned covariances (``colours``
    ``k×9×3``; :data:`CONDITION_LIMIT`), float32: ``base − C (CᵀC + ε I)⁻¹ Cᵀ`` for the centred
    colours ``C``, written with the singular value decomposition ``C = U S Vᵀ`` as
    ``base − U diag(s² / (s² + ε)) Uᵀ``: each weight is below 1 and ``U``'s columns are
    orthonormal to the last bit, so the block stays positive semi-definite (the adjugate's does
    not). The decomposition is of ``C`` itself, not an eigendecomposition of ``CᵀC``: that squares
    the condition number, and beside one outlier (a firefly of 1e7 in a window of colours in
    [0, 1]) its small eigenvectors came out at random within their plane, their images ``C v``
    no longer orthogonal, and the blocks indefinite (smallest eigenvalue down to −0.9): the
    conjugate gradients then diverged to a NaN matte."""
    wide = colours.to(torch.float64)
    wide = wide - wide.mean(1, keepdim=True)  # centred in float64: a highlight's float32 mean is off by its ulp
    axes, values, _ = torch.linalg.svd(wide, full_matrices=False)  # k×9×3, k×3
    # The columns of C sum to 0 only up to the centring's rounding (1e-3 beside a value of 1e12),
    # and base is the projector on the vectors summing to 0: U is put back in that plane and made
    # orthonormal again (Q of its QR: the same columns up to sign and rounding), so that
    # U W Uᵀ <= base holds to the last bit whatever the outlier.
    axes = torch.linalg.qr(axes - axes.mean(1, keepdim=True))[0]
    squared = values * values
    quadratic = (axes * (squared / (squared + epsilon))[:, None, :]) @ axes.transpose(1, 2)
    return (base.to(torch.float64) - 0.5 * (quadratic + quadratic.transpose(1, 2))).to(torch.float32)


def _window_statistics(image: torch.Tensor, epsilon: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean ``μ`` (``3×h×w``) and inverse regularised covariance ``(Σ + ε/9·I)⁻¹`` (``3×3×h×w``)
    of every 3×3 window lying wholly inside ``image`` (``3×H×W`` float64; ``h, w = H−2, W−2``,
    window centre ``(y+1, x+1)``). Box filters (average pooling) over the frame, in float64 so
    that ε survives next to the colours' second moments."""
    x = image[None]
    mean = F.avg_pool2d(x, 3, stride=1)[0]
    products = torch.stack([image[i] * image[j] for i in range(3) for j in range(3)])[None]
    second = F.avg_pool2d(products, 3, stride=1)[0].reshape(3, 3, *mean.shape[1:])
    cov = second - mean[:, None] * mean[None, :]
    eye = torch.eye(3, dtype=image.dtype, device=image.device)[:, :, None, None]
    return mean, _inverse3(cov + (epsilon / 9.0) * eye)


@dataclass
class Laplacian:
    """The matting Laplacian between the unknown pixels of a region, and the known pixels' pull.

    Attributes:
        matrix: ``L_UU``, ``n×n`` sparse CSR float32 on the region's device, rows and columns in
            the row-major order of the unknown pixels.
        pull: ``r = −L_UK · alpha_K`` (``n`` float32): alpha 1 on known FG, 0 on known BG, so that
            the smoothest alpha solves ``L_UU · alpha_U = r``.
        diagonal: the diagonal of ``L_UU`` (``n`` float32), for the Jacobi preconditioner.
        index: flat (row-major) positions of the unknown pixels in the region (``n`` int64).
        rows, columns: the same ``L_UU`` as a 25-point stencil (:func:`laplacian_rows`): ``n×25``
            float32 entries and the unknown pixel each one multiplies (``-1``: a known pixel or
            outside the region, which the stencil product reads as 0).
    """

    matrix: torch.Tensor
    pull: torch.Tensor
    diagonal: torch.Tensor
    index: torch.Tensor
    rows: torch.Tensor
    columns: torch.Tensor


def laplacian_rows(image: torch.Tensor, unknown: torch.Tensor, fg_known: torch.Tensor, epsilon: float = EPSILON,
                   chunk: int = WINDOW_CHUNK, condition_limit: float = CONDITION_LIMIT
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rows of :func:`matting_laplacian` as a 25-point stencil (scriptable: the exported
    module builds them with it, and applies them with :func:`stencil_product`).

    Returns ``(rows, columns, pull, index)``: ``rows`` ``n×25`` float32, row ``i``'s entries at
    the offsets ``(dy, dx)`` in -2..2 in row-major order; ``columns`` ``n×25`` int64, the rank
    among the unknown pixels of the pixel each entry multiplies, ``-1`` where that pixel is known
    or outside the region; ``pull`` ``n`` float32; ``index`` ``n`` int64 (see :class:`Laplacian`).
    The windows are assembled ``chunk`` at a time (the same entries whatever it is).
    ``condition_limit`` is :data:`CONDITION_LIMIT` (an argument so that TorchScript sees a constant).
    """
    device = image.device
    height, width = unknown.shape[0], unknown.shape[1]
    flat_unknown = unknown.reshape(-1)
    index = torch.nonzero(flat_unknown).reshape(-1)
    n = int(index.numel())
    rank = torch.full((height * width,), -1, dtype=torch.int64, device=device)
    rank[index] = torch.arange(n, device=device)
    # Row-major n×25 (row i, offset slot), and one more row that collects what known pixels' rows would get.
    entries = torch.zeros((n + 1) * 25, dtype=torch.float32, device=device)
    if n > 0 and height >= 3 and width >= 3:
        # The windows that hold an unknown pixel: centres within one pixel of one, inside the region.
        near = F.max_pool2d(unknown[None, None].to(torch.float32), 3, stride=1, padding=1)[0, 0] > 0
        near[0, :] = False
        near[-1, :] = False
        near[:, 0] = False
        near[:, -1] = False
        centres = torch.nonzero(near.reshape(-1)).reshape(-1)
        nine = torch.arange(9, device=device)
        shifts = (nine // 3 - 1) * width + (nine % 3 - 1)  # the 3×3 window in row-major order
        # Centred colours in float32 (centring removes the large common part); the covariance, its
        # inverse and (Σ_k + ε/9)⁻¹ (I_a − μ_k) in float64: along a window's colour line the inverse's
        # eigenvalue is 1/σ², across it 9/ε (1e8 against 1e2), and float32 would lose the former
        # next to the latter. The O(1) products of the 9×9 blocks are float32 again.
        # In chunks of windows: the temporaries (the k×9×9 blocks and their products, about 1.2 kB
        # a window) stay tens of MB, reused from one chunk to the next, instead of several hundred
        # MB fetched fresh from the system on every frame (0.19 against 0.27 s for a 1080p frame's
        # 207 000 unknown pixels, medians of 5).
        flat_colours = image.to(torch.float32).reshape(3, -1).t()
        eye = (epsilon / 9.0) * torch.eye(3, dtype=torch.float64, device=device)
        base = torch.eye(9, device=device) - 1.0 / 9.0
        # slot[a, b]: where, in pixel a's row, the entry of the window's pixel b goes.
        slot = (nine[None, :] // 3 - nine[:, None] // 3 + 2) * 5 + (nine[None, :] % 3 - nine[:, None] % 3 + 2)
        for start in range(0, int(centres.numel()), chunk):
            pixels = centres[start:start + chunk, None] + shifts[None, :]  # k×9, row-major
            colours = flat_colours[pixels]  # k×9×3
            centred = colours - colours.mean(1, keepdim=True)
            wide = centred.to(torch.float64)
            cov = wide.transpose(1, 2) @ wide / 9.0 + eye
            inverse = _inverse3(cov.permute(1, 2, 0)).permute(2, 0, 1)
            weighted = (wide @ inverse).to(torch.float32)  # k×9×3
            # The window's block of L: δ_ab − (1 + (I_a − μ_k)ᵀ (Σ_k + ε/9)⁻¹ (I_b − μ_k)) / 9, 9×9,
            # made symmetric to the bit (float32 rounds the two halves apart), in one fused pass.
            quadratic = weighted @ centred.transpose(1, 2)
            block = torch.add(base, quadratic + quadratic.transpose(1, 2), alpha=-1.0 / 18.0)
            spread = cov[:, 0, 0] + cov[:, 1, 1] + cov[:, 2, 2]
            steep = torch.nonzero(spread > condition_limit * epsilon / 9.0).reshape(-1)
            if int(steep.numel()) > 0:
                block[steep] = _steep_blocks(colours[steep], epsilon, base)
            ranks = rank[pixels]
            ranks = torch.where(ranks >= 0, ranks, torch.full_like(ranks, n))
            for a in range(9):  # the windows' pixel a, where it is unknown, gets its row's 9 entries
                target = ranks[:, a, None] * 25 + slot[a][None, :]
                entries.index_add_(0, target.reshape(-1), block[:, a, :].reshape(-1))
    entries = entries.reshape(n + 1, 25)[:n]
    # Neighbours: unknown ones become matrix columns, known FG ones pull alpha towards 1. Read in
    # one gather from the rank and FG images padded by 2 (outside the region: -1 and not FG), at
    # the offsets (dy, dx) in -2..2, row-major (the columns of a row come out sorted).
    padded_width = width + 4
    rank_padded = F.pad(rank.reshape(1, height, width), (2, 2, 2, 2), value=-1.0).reshape(-1)
    fg_padded = F.pad(fg_known.reshape(1, height, width).to(torch.float32), (2, 2, 2, 2)).reshape(-1)
    offsets = torch.arange(25, device=device)
    shifts25 = (offsets // 5 - 2) * padded_width + (offsets % 5 - 2)
    centre = (index // width + 2) * padded_width + index % width + 2
    neighbours = centre[:, None] + shifts25[None, :]  # n×25
    columns = rank_padded[neighbours]
    pull = -(entries * fg_padded[neighbours]).sum(1)
    return entries, columns, pull, index


#: Held while torch's sparse-tensor warnings are silenced. ``warnings.catch_warnings`` saves the
#: process's whole filter list and puts it back on leaving: two such blocks overlapping in two
#: threads (two Matters at once) put back each other's list, and "ignore UserWarning" stayed in
#: the caller's process for good.
_WARNING_FILTERS_HELD = threading.Lock()


@contextlib.contextmanager
def _sparse_warnings_silenced() -> Iterator[None]:
    """torch's "sparse CSR support is in beta" and "sparse invariant checks are implicitly
    disabled" warnings silenced (CSR is what runs on every device; the matrices are built valid),
    one thread at a time, and only those: another thread's warnings still show."""
    with _WARNING_FILTERS_HELD, warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"Sparse (CSR tensor support is in beta|invariant checks are implicitly)",
                                UserWarning)
        yield


def matting_laplacian(image: torch.Tensor, unknown: torch.Tensor, fg_known: torch.Tensor,
                      epsilon: float = EPSILON) -> Laplacian:
    """The rows of the matting Laplacian (Levin et al. 2008, eq. 12) at the unknown pixels.

    ``L_ij = Σ_{k: i,j ∈ w_k} (δ_ij − (1 + (I_i − μ_k)ᵀ (Σ_k + ε/9·I)⁻¹ (I_j − μ_k)) / 9)`` over the
    3×3 windows ``w_k`` lying wholly inside the region (Levin's valid windows; the sum over the
    windows holding both pixels keeps the matrix symmetric).

    Built here rather than taken from :func:`pymatting.cf_laplacian`, which is compiled just in
    time on a user's first frame (tens of seconds on a fresh install) and builds every pixel's
    rows where only the unknown ones are needed. The window statistics come from box filters in
    float64; the 25 entries of each unknown row from vectorised gathers (one pass per pair of
    positions in a window), on whatever device ``image`` is on (:func:`laplacian_rows`); here
    they are also packed into a sparse CSR matrix.

    Args:
        image: ``3×H×W`` (any float dtype; the statistics are computed in float64).
        unknown, fg_known: ``H×W`` bool.
        epsilon: ε.
    """
    if image.dim() != 3 or image.shape[0] != 3 or unknown.shape != image.shape[1:]:
        raise InputError(f"matting_laplacian needs a 3×H×W image and H×W masks, got {tuple(image.shape)} and {tuple(unknown.shape)}")
    entries, columns, pull, index = laplacian_rows(image, unknown, fg_known, epsilon)
    n = int(index.numel())
    keep = columns >= 0
    # 32-bit indices while they fit: the product reads a third less memory (5.2 against 3.3 ms
    # for a 1080p frame's 207 000 unknown pixels on one CPU thread).
    index_type = torch.int32 if int(keep.sum()) < 2**31 else torch.int64
    crow = torch.zeros(n + 1, dtype=index_type, device=image.device)
    crow[1:] = torch.cumsum(keep.sum(1), 0)
    rows = entries.to(torch.float32)
    with _sparse_warnings_silenced():
        kept = keep.reshape(-1).nonzero().reshape(-1)  # one pass over the mask for both gathers
        matrix = torch.sparse_csr_tensor(crow, columns.reshape(-1).index_select(0, kept).to(index_type),
                                         rows.reshape(-1).index_select(0, kept), (n, n))
    return Laplacian(matrix, pull.to(torch.float32), rows[:, 12].contiguous(), index, rows, columns)


def add_knn(laplacian: Laplacian, term: Any, weight: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Laplacian's system with ``weight`` times the KNN term (:func:`core.knn.knn_term`) added:
    the sparse CSR ``matrix``, ``pull`` and ``diagonal`` for :func:`refine_with`, on the
    Laplacian's device, float32.

    The sum is taken with scipy on the CPU, not with torch's sparse CSR addition, which in torch
    2.13 keeps about 20 MB of every call (a render's memory would grow frame by frame).
    """
    import numpy as np
    import scipy.sparse

    n = int(laplacian.pull.numel())
    if term.pull.shape != (n,):
        raise InputError(f"the KNN term is over {term.pull.shape[0]} unknown pixels, the Laplacian over {n}: "
                         "they must be built on the same trimap")
    m = laplacian.matrix
    own = scipy.sparse.csr_matrix((m.values().cpu().numpy().astype(np.float64), m.col_indices().cpu().numpy(),
                                   m.crow_indices().cpu().numpy()), shape=(n, n))
    total = (own + weight * term.matrix).tocsr()
    # The float64 copy of the Laplacian goes before the float32 copies are made, and indices already
    # of the wanted type are not copied: this sum is a frame's peak (with refine dropping the
    # Laplacian before the rounds, 0.38 against 0.45 GiB above the process, 960×540 with 40 % unknown).
    del own
    total.sort_indices()
    index_type = np.int32 if total.nnz < 2**31 else np.int64
    device = laplacian.pull.device
    with _sparse_warnings_silenced():
        matrix = torch.sparse_csr_tensor(torch.from_numpy(total.indptr.astype(index_type, copy=False)),
                                         torch.from_numpy(total.indices.astype(index_type, copy=False)),
                                         torch.from_numpy(total.data.astype(np.float32)), (n, n)).to(device)
    del total
    pull = laplacian.pull + torch.from_numpy((weight * term.pull).astype(np.float32)).to(device)
    diagonal = laplacian.diagonal + torch.from_numpy((weight * term.diagonal).astype(np.float32)).to(device)
    return matrix, pull, diagonal


def stencil_index(columns: torch.Tensor) -> torch.Tensor:
    """The ``n·25`` positions :func:`stencil_product` reads for :func:`laplacian_rows`' ``columns``
    (``n×25``): the column itself, or ``n`` (a 0 appended to ``x``) where it is ``-1``."""
    n = columns.shape[0]
    return torch.where(columns >= 0, columns, torch.full_like(columns, n)).reshape(-1)


def stencil_product(rows: torch.Tensor, gather: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``L·x`` for ``L`` given as :func:`laplacian_rows`' stencil: ``rows`` ``n×25``, ``gather``
    from :func:`stencil_index`, ``x`` ``n``. One gather (``index_select``) and a sum: the same
    products as the sparse matrix's, with plain tensor operations every torch version has (no
    sparse tensors), about as fast on the CPU."""
    padded = torch.cat([x, torch.zeros(1, dtype=x.dtype, device=x.device)])
    return (rows.to(x.dtype) * padded.index_select(0, gather).reshape(rows.shape)).sum(1)


def laplacian_product(image: torch.Tensor, p: torch.Tensor, epsilon: float = EPSILON) -> torch.Tensor:
    """``L·p`` for the whole region, matrix-free (He, Sun and Tang, CVPR 2010), float64.

    ``(L p)_i = Σ_{k ∋ i} (p_i − a_kᵀ I_i − b_k)`` with ``a_k = (Σ_k + ε/9)⁻¹ cov_k(I, p)`` and
    ``b_k = mean_k(p) − a_kᵀ μ_k``: box filters over the valid windows and their transposed sums.
    The reference that :func:`matting_laplacian` is tested against (an independent derivation of
    the same operator); ``image`` ``3×H×W``, ``p`` ``H×W``.
    """
    img, q = image.to(torch.float64), p.to(torch.float64)
    mean, inverse = _window_statistics(img, epsilon)
    mean_p = F.avg_pool2d(q[None, None], 3, stride=1)[0, 0]
    mean_ip = F.avg_pool2d((img * q)[None], 3, stride=1)[0]
    a = torch.einsum("abhw,bhw->ahw", inverse, mean_ip - mean * mean_p)
    b = mean_p - (a * mean).sum(0)
    count = F.avg_pool2d(F.pad(torch.ones_like(mean_p)[None, None], (2, 2, 2, 2)), 3, stride=1, divisor_override=1)[0, 0]
    sum_a = F.avg_pool2d(F.pad(a[None], (2, 2, 2, 2)), 3, stride=1, divisor_override=1)[0]
    sum_b = F.avg_pool2d(F.pad(b[None, None], (2, 2, 2, 2)), 3, stride=1, divisor_override=1)[0, 0]
    return count * q - (sum_a * img).sum(0) - sum_b


# -- the solve ---------------------------------------------------------------------------------

def conjugate_gradients(
    matrix: Optional[torch.Tensor], rows: torch.Tensor, gather: torch.Tensor, shift: torch.Tensor,
    b: torch.Tensor, x0: torch.Tensor, diagonal: torch.Tensor,
    tolerance: float = TOLERANCE, max_iterations: int = MAX_ITERATIONS,
) -> Tuple[torch.Tensor, int]:
    """Solve ``(L + diag(shift)) x = b`` by Jacobi-preconditioned conjugate gradients from ``x0``.

    ``L`` is the sparse ``matrix`` when given, else the stencil ``rows``/``gather``
    (:func:`stencil_product`; the exported module's form); symmetric positive semi-definite,
    ``shift > 0`` makes the system definite. ``diagonal`` is that of ``L + diag(shift)``.

    Stops when ``|b − A x| <= tolerance · |b|`` or after ``max_iterations``; returns ``x`` and the
    iterations made. Written with plain tensor operations, so it runs on any device, compiles
    with :func:`torch.jit.script`, and autograd follows every iteration (the result is
    differentiable in ``b``, ``x0``, ``shift`` and the entries). The convergence test reads one
    number back to the host: every iteration on the CPU, every 16th on a GPU, where a read-back
    stalls the device (the iterations past convergence change next to nothing, and are guarded
    against dividing by a zero residual).
    """
    x = x0
    if matrix is not None:
        r = b - torch.addcmul(torch.mv(matrix, x), shift, x)
    else:
        r = b - torch.addcmul(stencil_product(rows, gather, x), shift, x)
    scale = float(b.detach().norm())
    if scale == 0.0:
        # b = 0: the system's one solution is 0 (a relative residual could never be reached; from a
        # warm start in the Laplacian's near-null space the iterations only amplified rounding).
        return torch.zeros_like(x0), 0
    limit = tolerance * scale
    inv_diag = 1.0 / diagonal
    z = r * inv_diag
    p = z
    rz = torch.dot(r, z)
    every = 16 if x.device.type == "cuda" else 1
    tiny = 1e-30
    iterations = 0
    # False from the first breakdown on: a direction of zero or negative curvature (in exact
    # arithmetic none, but where the shift is below float32's rounding of L, as when no pixel is
    # known and F = B, rounding makes some) or a non-finite step. The clamp made that a step of
    # 1e29 and the matte NaN; x and r now stay as they were. Without a read-back (see above).
    alive = torch.ones((), dtype=torch.bool, device=x.device)
    # Fused forms (addcmul, dot): each iteration is the product, seven passes over the vectors and the norm.
    while iterations < max_iterations:
        if iterations % every == 0 and (float(r.detach().norm()) <= limit or not bool(alive)):
            break
        if matrix is not None:
            ap = torch.addcmul(torch.mv(matrix, p), shift, p)
        else:
            ap = torch.addcmul(stencil_product(rows, gather, p), shift, p)
        curvature = torch.dot(p, ap)
        step = rz / curvature.clamp_min(tiny)
        alive = alive & (curvature > 0) & torch.isfinite(step)
        step = torch.where(alive, step, torch.zeros_like(step))
        x = torch.addcmul(x, step, p)
        r = torch.addcmul(r, step, ap, value=-1.0)
        z = r * inv_diag
        rz_next = torch.dot(r, z)
        p = torch.addcmul(z, rz_next / rz.clamp_min(tiny), p)
        rz = rz_next
        iterations += 1
    return x, iterations


class _ImplicitSolve(torch.autograd.Function):
    """:func:`conjugate_gradients` with the gradient of the solution, not of the iterations.

    ``x`` solves ``(L + diag(shift)) x = b``; for a loss gradient ``g`` on ``x`` the adjoint
    ``μ = (L + diag(shift))⁻¹ g`` (one more solve: the matrix is symmetric) gives
    ``∂/∂b = μ`` and ``∂/∂shift = −μ ⊙ x``. Unrolling the iterations instead kept every one of
    them in the autograd graph: a training step of 8 crops of 192 px went from 4.6 s to 120 s.
    The solution does not depend on the starting point, so ``x0`` gets no gradient.
    """

    @staticmethod
    def forward(ctx: Any, shift: torch.Tensor, b: torch.Tensor, x0: torch.Tensor, matrix: Optional[torch.Tensor],
                rows: torch.Tensor, gather: torch.Tensor, diagonal: torch.Tensor, tolerance: float,
                max_iterations: int, made: List[int]) -> torch.Tensor:
        x, iterations = conjugate_gradients(matrix, rows, gather, shift, b, x0, diagonal + shift, tolerance, max_iterations)
        made.append(iterations)
        ctx.save_for_backward(shift, x, diagonal)
        ctx.solver = (matrix, rows, gather, tolerance, max_iterations)
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:
        shift, x, diagonal = ctx.saved_tensors
        matrix, rows, gather, tolerance, max_iterations = ctx.solver
        with torch.no_grad():
            mu, _ = conjugate_gradients(matrix, rows, gather, shift, grad, torch.zeros_like(grad), diagonal + shift,
                                        tolerance, max_iterations)
        return -mu * x, mu, None, None, None, None, None, None, None, None


@torch.jit.unused
def _solve_implicit(matrix: Optional[torch.Tensor], rows: torch.Tensor, gather: torch.Tensor, shift: torch.Tensor,
                    b: torch.Tensor, x0: torch.Tensor, diagonal: torch.Tensor, tolerance: float,
                    max_iterations: int) -> Tuple[torch.Tensor, int]:
    """The solve of :func:`conjugate_gradients` (``diagonal``: that of ``L`` alone) for autograd:
    :class:`_ImplicitSolve`. Not part of the TorchScript export (no gradients there)."""
    made: List[int] = []
    x = _ImplicitSolve.apply(shift, b, x0.detach(), matrix, rows, gather, diagonal, tolerance, max_iterations, made)
    return x, made[0]


@dataclass
class Refined:
    """What :func:`refine` returns: ``alpha`` ``N×1×H×W``, ``fg`` and ``bg`` ``N×3×H×W``, and the
    conjugate-gradient iterations of each round (``iterations``)."""

    alpha: torch.Tensor
    fg: torch.Tensor
    bg: torch.Tensor
    iterations: List[int]


def refine(
    image: torch.Tensor, trimap: torch.Tensor, alpha: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor,
    settings: Optional[Settings] = None, fg_weight: float = FG_SOLVE_WEIGHT,
    clip: Optional[Tuple[float, float]] = (0.0, 1.0), exact: bool = False, laplacian: Optional[Laplacian] = None,
    knn: Optional[Any] = None,
) -> Refined:
    """The rounds after the networks (module docstring), on the inputs' device.

    Args:
        image: the plate, ``1×3×H×W``, in the space the compositing equation is solved in.
        trimap: ``1×1×H×W``: 0 BG, 1 FG, between unknown (:func:`core.trimap.split_trimap`).
        alpha: the matting network's alpha, ``1×1×H×W``.
        fg, bg: the foreground and background networks' colours, ``1×3×H×W``.
        settings: rounds, λ, σ², tolerance and iteration bound (default :class:`Settings`); with
            0 rounds the network's alpha is kept and only the layers are solved for it.
        fg_weight: weight of the networks' colours in each F step (> 0).
        clip: range of F and B (:func:`solve_layers`); ``None`` in linear light, where
            ``settings.layer_space == "display"`` smooths the final layers in the sRGB encoding.
        exact: finish with :func:`agree_with_plate` (``w_B / w_F`` = ``settings.agree_ratio``), so
            that ``αF + (1 − α)B`` is the plate.
        laplacian: the region's :func:`matting_laplacian`, when the caller has it already.
        knn: the region's :func:`core.knn.knn_term` when ``settings.knn > 0`` and the caller has it
            (the pipeline builds it on the networks' larger crop, with positions in the frame);
            else it is built here from the plate (its sRGB encoding in linear light).

    Returns:
        :class:`Refined`: alpha in [0, 1], exactly 0/1 where the trimap is known; F equal to the
        plate on known FG, B equal to the plate on known BG. Computed in float32 (float64 if the
        inputs are), whatever precision the networks ran in. Differentiable in ``alpha``, ``fg``,
        ``bg`` and ``image``'s use in the compositing equation (the Laplacian is the plate's, a
        constant).
    """
    settings = settings or Settings()
    if not fg_weight > 0:
        raise InputError(f"fg_weight must be > 0, not {fg_weight!r}")
    if image.dim() != 4 or image.shape[0] != 1:
        raise InputError(f"refine works on one frame at a time (1×3×H×W), got {tuple(image.shape)}")
    lap = laplacian
    fg_known, _, unknown = split_trimap_tensor(trimap[0, 0])
    if lap is None and settings.rounds and bool(unknown.any()):
        lap = matting_laplacian(image[0].detach(), unknown, fg_known)
    matrix, pull, diagonal = (None, None, None) if lap is None else (lap.matrix, lap.pull, lap.diagonal)
    index = None if lap is None else lap.index
    if lap is not None and settings.knn > 0:
        if knn is None:
            from core.knn import term_for

            colour = image[0].detach() if clip is not None else encode_srgb(image[0].detach())
            knn = term_for(settings, colour.clamp(0, 1).permute(1, 2, 0).cpu().numpy(), unknown.cpu().numpy(),
                           fg_known.cpu().numpy())
        matrix, pull, diagonal = add_knn(lap, knn, settings.knn)
    # Only the system and the unknown pixels' places are used from here: with the KNN term, the
    # Laplacian's own matrix and stencil (about 500 bytes an unknown pixel) go before the rounds.
    lap = laplacian = None
    out_alpha, out_fg, out_bg, iterations = refine_with(
        image, trimap, alpha, fg, bg, settings.rounds, settings.smoothing, settings.confidence_scale,
        settings.tolerance, settings.max_iterations, float(fg_weight), clip, exact,
        matrix, pull, diagonal, index,
        multilevel=settings.layers == "multilevel", layer_prior=settings.layer_prior,
        layers_encoded=settings.layer_space == "display" and clip is None, agree_ratio=settings.agree_ratio,
        network_weight=settings.network_weight, black_point=settings.black_point, white_point=settings.white_point,
        half_samples=settings.sample_alpha == "half", unsolved_samples=settings.sample_alpha == "unsolved")
    return Refined(out_alpha, out_fg, out_bg, iterations)


def alpha_levels(alpha: torch.Tensor, black: float, white: float) -> torch.Tensor:
    """``clip((alpha − black) / (white − black), 0, 1)``: a Grade's black and white points on the
    matte (``alpha`` itself at 0 and 1). Differentiable; scriptable."""
    if black == 0.0 and white == 1.0:
        return alpha
    return ((alpha - black) / (white - black)).clamp(0, 1)


def refine_with(
    image: torch.Tensor, trimap: torch.Tensor, alpha: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor,
    rounds: int, smoothing: float, confidence_scale: float, tolerance: float, max_iterations: int,
    fg_weight: float, clip: Optional[Tuple[float, float]], exact: bool,
    matrix: Optional[torch.Tensor] = None, pull: Optional[torch.Tensor] = None, diagonal: Optional[torch.Tensor] = None,
    index: Optional[torch.Tensor] = None, bg_ratio: float = FG_SOLVE_BG_RATIO, ridge: float = RIDGE,
    multilevel: bool = False, layer_prior: float = 0.1, layers_encoded: bool = False,
    agree_ratio: float = FG_SOLVE_BG_RATIO, network_weight: float = 0.0,
    black_point: float = 0.0, white_point: float = 1.0, half_samples: bool = False,
    network_agreement: float = NETWORK_AGREEMENT, unsolved_samples: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, List[int]]:
    """The body of :func:`refine` (same arguments, the settings spelled out, nothing validated),
    scriptable by :func:`torch.jit.script`: the exported module calls it directly.

    The Laplacian's sparse ``matrix`` with its ``pull``, ``diagonal`` and ``index`` (:class:`Laplacian`) is
    used when given (the pipeline's form); without it, and with ``rounds``, the Laplacian is built
    here as :func:`laplacian_rows`' stencil and applied by :func:`stencil_product` (the exported
    module's form: no sparse tensors in the torch of older Nuke versions). ``network_agreement``
    is :data:`NETWORK_AGREEMENT` (an argument so that TorchScript sees a constant). Returns alpha,
    F, B and the iterations of each round.
    """
    dtype = torch.float64 if image.dtype == torch.float64 else torch.float32
    image, alpha, fg, bg = image.to(dtype), alpha.to(dtype), fg.to(dtype), bg.to(dtype)
    fg_known, bg_known, unknown = split_trimap_tensor(trimap[0, 0])
    height, width = image.shape[2], image.shape[3]
    known_alpha = fg_known.to(dtype)[None, None]
    out_fg = paste_known(fg, image, fg_known)
    out_bg = paste_known(bg, image, bg_known)
    iterations: List[int] = []
    if not bool(unknown.any()):
        return known_alpha, out_fg, out_bg, iterations
    rows = torch.zeros(0, 25, dtype=torch.float32, device=image.device)
    gather = torch.zeros(0, dtype=torch.int64, device=image.device)
    if matrix is None and rounds > 0:
        entries, columns, pull64, index = laplacian_rows(image[0].detach(), unknown, fg_known)
        gather = stencil_index(columns)
        # float32 like the sparse matrix's entries, pull and diagonal (matting_laplacian)
        rows, pull = entries.to(torch.float32), pull64.to(torch.float32)
        diagonal = rows[:, 12]
    if index is None:
        index = torch.nonzero(unknown.reshape(-1)).reshape(-1)
    where = index
    # The unknown pixels as 1×C×n×1 columns.
    img_u = image.reshape(3, -1)[:, where][None, :, :, None]
    bg_u = bg.reshape(3, -1)[:, where][None, :, :, None]
    fnet_u = fg.reshape(3, -1)[:, where][None, :, :, None]
    a_u = alpha.reshape(-1)[where].clamp(0, 1)
    a_net = a_u
    # The networks' F and B solved against the plate for their own alpha, or for 0.5, or not at all
    # before the rounds (Settings.sample_alpha; without rounds the layers are those of the network's alpha).
    if unsolved_samples and rounds > 0:
        f_u, b_u = (fnet_u, bg_u) if clip is None else (fnet_u.clamp(clip[0], clip[1]), bg_u.clamp(clip[0], clip[1]))
    else:
        a_first = torch.full_like(a_u, 0.5) if half_samples and rounds > 0 else a_u
        f_u, b_u = solve_layers(img_u, a_first[None, None, :, None], bg_u, fnet_u, fg_weight, None, clip, bg_ratio)
    if rounds > 0 and pull is not None and diagonal is not None:
        pull_d, diagonal_d = pull.to(dtype), diagonal.to(dtype)
        if matrix is not None:
            matrix = matrix.to(dtype)
        for done in range(rounds):
            prior, distance = alpha_from_composite(img_u, bg_u, f_u)
            confidence = 1.0 - torch.exp(-(distance * distance) / confidence_scale)
            d = smoothing * confidence.reshape(-1) + ridge
            b = pull_d + d * prior.reshape(-1)
            if network_weight > 0:  # the matting network's alpha as a data term of its own
                trust = confidence.reshape(-1) * torch.exp(
                    -((a_net - prior.reshape(-1)) ** 2) / network_agreement)
                d = d + network_weight * trust
                b = b + network_weight * trust * a_net
            if not torch.jit.is_scripting() and torch.is_grad_enabled() and (
                    d.requires_grad or b.requires_grad or a_u.requires_grad):
                # training through the refinement: the solution's gradient, not the iterations'
                # (the solution does not depend on where the iterations start, so nothing learns
                # from the starting alpha)
                solved, made = _solve_implicit(matrix, rows, gather, d, b, a_u, diagonal_d, tolerance, max_iterations)
            else:
                solved, made = conjugate_gradients(matrix, rows, gather, d, b, a_u, diagonal_d + d, tolerance, max_iterations)
            iterations.append(made)
            a_u = solved.clamp(0, 1)
            if done == rounds - 1:
                a_u = alpha_levels(a_u, black_point, white_point)
            if done < rounds - 1 or not multilevel:  # after the last round multilevel makes the layers
                f_u, b_u = solve_layers(img_u, a_u[None, None, :, None], bg_u, fnet_u, fg_weight, None, clip, bg_ratio)
    out_alpha = known_alpha.reshape(-1).index_put((where,), a_u).reshape(1, 1, height, width)
    if multilevel:
        # The layers for the final alpha over the whole region (known pixels carry the plate's
        # colours into the band), read back at the unknown pixels.
        if layers_encoded:  # smoothed in the sRGB encoding (Settings.layer_space), then back to linear light
            f_all, b_all = estimate_layers(encode_srgb(image), out_alpha, encode_srgb(out_fg), encode_srgb(out_bg),
                                           layer_prior, clip, unknown[None, None])
            f_all, b_all = decode_srgb(f_all), decode_srgb(b_all)
        else:
            f_all, b_all = estimate_layers(image, out_alpha, out_fg, out_bg, layer_prior, clip, unknown[None, None])
        f_u = f_all.reshape(3, -1)[:, where][None, :, :, None]
        b_u = b_all.reshape(3, -1)[:, where][None, :, :, None]
    if exact:
        f_u, b_u = agree_with_plate(img_u, a_u[None, None, :, None], f_u, b_u, fg_weight, agree_ratio)
    channels = torch.arange(3, device=image.device)[:, None]
    out_fg = out_fg.reshape(3, -1).index_put((channels, where[None, :]), f_u[0, :, :, 0]).reshape(1, 3, height, width)
    out_bg = out_bg.reshape(3, -1).index_put((channels, where[None, :]), b_u[0, :, :, 0]).reshape(1, 3, height, width)
    return out_alpha, out_fg, out_bg, iterations
