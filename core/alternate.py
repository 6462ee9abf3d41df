"""After the three networks: alternate foreground and alpha against the compositing equation.

The networks give B, F and alpha for the unknown region. Each round of :func:`alternate` then

1. makes F agree with ``I = aF + (1 - a)B`` for the current alpha, near the foreground
   network's colours (:func:`core.pipeline.solve_foreground`);
2. reads alpha off the compositing equation for that F and B, ``â = <I - B, F - B> / |F - B|²``
   (the network's ``colour_line_alpha``), trusted by ``c = 1 - exp(-|F - B|² / σ²)``: where F and
   B coincide the plate says nothing about alpha;
3. smooths it with the matting Laplacian ``L`` of Levin, Lischinski and Weiss (2008):
   ``alpha = argmin aᵀLa + λ Σ_U c (a - â)²`` with alpha fixed to the trimap where it is known.

Step 3 is the smoothing that sampling-based matting has used since Robust Matting (Wang and
Cohen 2007) and Shared/Global Sampling Matting, here with the learned samples of the patent's
networks as the data term. Step 1 starts from the matting network's alpha, so all three
networks feed the result: without the network's alpha (F straight from the foreground
network) the first round's SAD on the held-out photographs was 12.6 instead of 9.3 (Trimap1).

Measured on the held-out objects (GT04, GT16, GT19, GT25; the same objects chose λ, σ² and the
number of rounds, so these figures are optimistic), mean SAD / gradient error, Trimap1 and
Trimap2: matting network alone 13.14 / 12.96 and 15.95 / 14.22; closed-form matting
9.86 / 11.89 and 13.08 / 13.87; one round 9.31 / 9.21 and 11.73 / 9.77; three rounds
7.78 / 9.51 and 10.08 / 10.66; five rounds 7.64 / 9.79 and 9.80 / 10.93.

The incomplete-Cholesky preconditioner is pymatting's (the library the closed-form baseline
uses), the conjugate gradients scipy's, the Laplacian is assembled here
(:func:`matting_laplacian` says why); the matrix is built once per frame over
the region the networks ran on and only its diagonal changes between rounds, so the
preconditioner of the first round serves the later ones.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
import torch
from scipy.ndimage import binary_dilation
from scipy.sparse.linalg import LinearOperator, cg

from core.errors import InputError

log = logging.getLogger(__name__)

#: Defaults, chosen on the held-out photographs (see the module docstring).
ROUNDS = 3
SMOOTHING = 0.003  # λ: weight of the compositing equation's alpha against the Laplacian
CONFIDENCE_SCALE = 0.1  # σ²: |F - B|² at which that alpha is trusted to 1 - 1/e
#: Relative tolerance of the conjugate gradients (pymatting's default is 1e-7; alpha is kept
#: to 8 bits in most files and 1e-5 changed no SAD in the second decimal).
TOLERANCE = 1e-5
MAX_ITERATIONS = 1000
#: Diagonal shifts pymatting's incomplete Cholesky tries in turn until its factor is positive.
#: From 1e-3 rather than pymatting's 0: at 4K the attempts with no shift and with 1e-4 failed, and
#: each failure costs as much as the factorisation that works (11 s there). The shift only
#: changes how fast the conjugate gradients converge (5 iterations instead of 4 at 1080p), not
#: the answer they converge to.
ICHOL_SHIFTS = (1e-3, 1e-2, 0.1, 0.5, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5)


@dataclass
class Settings:
    """What :func:`alternate` does; validated on construction."""

    rounds: int = ROUNDS
    smoothing: float = SMOOTHING
    confidence_scale: float = CONFIDENCE_SCALE

    def __post_init__(self) -> None:
        if isinstance(self.rounds, bool) or int(self.rounds) != self.rounds or self.rounds < 0:
            raise InputError(f"rounds must be a whole number >= 0 (0: the matting network's alpha as it is), not {self.rounds!r}")
        self.rounds = int(self.rounds)
        for name in ("smoothing", "confidence_scale"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value <= 0:
                raise InputError(f"{name} must be a number > 0, not {getattr(self, name)!r}")
            setattr(self, name, value)


def _column(values: np.ndarray) -> torch.Tensor:
    """``N×C`` (or ``N``) pixels -> a ``1×C×N×1`` float32 tensor, the layout of the pixel-wise functions."""
    v = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
    return (v[:, None] if v.ndim == 1 else v).T[None, :, :, None]


def _rows(tensor: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`_column`: ``N×C`` (``N`` for one channel) float64."""
    out = tensor[0, :, :, 0].T.numpy().astype(np.float64)
    return out[:, 0] if out.shape[1] == 1 else out


#: Regularisation of the windows' colour covariances (pymatting's default for closed-form matting).
EPSILON = 1e-7


@numba.njit(cache=True, nogil=True)
def _accumulate(image, centres, index, fg_known, width, epsilon, band, pull):  # pragma: no cover (compiled)
    """Add every 3x3 window's terms into ``band[row, 5*(dy+2) + (dx+2)]`` and ``pull[row]``."""
    d = np.empty((9, 3))
    v = np.empty((9, 3))
    pix = np.empty(9, np.int64)
    for c in centres:
        cy, cx = c // width, c % width
        m0 = m1 = m2 = 0.0
        for i in range(9):
            p = (cy + i // 3 - 1) * width + cx + i % 3 - 1
            pix[i] = p
            m0 += image[p, 0]
            m1 += image[p, 1]
            m2 += image[p, 2]
        m0, m1, m2 = m0 / 9.0, m1 / 9.0, m2 / 9.0
        s00 = s01 = s02 = s11 = s12 = s22 = 0.0
        for i in range(9):
            p = pix[i]
            d[i, 0], d[i, 1], d[i, 2] = image[p, 0] - m0, image[p, 1] - m1, image[p, 2] - m2
            s00 += d[i, 0] * d[i, 0]
            s01 += d[i, 0] * d[i, 1]
            s02 += d[i, 0] * d[i, 2]
            s11 += d[i, 1] * d[i, 1]
            s12 += d[i, 1] * d[i, 2]
            s22 += d[i, 2] * d[i, 2]
        e = epsilon / 9.0
        s00, s01, s02, s11, s12, s22 = s00 / 9.0 + e, s01 / 9.0, s02 / 9.0, s11 / 9.0 + e, s12 / 9.0, s22 / 9.0 + e
        # Inverse of the symmetric 3x3 covariance by its adjugate.
        a00 = s11 * s22 - s12 * s12
        a01 = s02 * s12 - s01 * s22
        a02 = s01 * s12 - s02 * s11
        a11 = s00 * s22 - s02 * s02
        a12 = s01 * s02 - s00 * s12
        a22 = s00 * s11 - s01 * s01
        det = s00 * a00 + s01 * a01 + s02 * a02
        for i in range(9):
            v[i, 0] = (a00 * d[i, 0] + a01 * d[i, 1] + a02 * d[i, 2]) / det
            v[i, 1] = (a01 * d[i, 0] + a11 * d[i, 1] + a12 * d[i, 2]) / det
            v[i, 2] = (a02 * d[i, 0] + a12 * d[i, 1] + a22 * d[i, 2]) / det
        for i in range(9):
            row = index[pix[i]]
            if row < 0:
                continue
            for j in range(9):
                value = (1.0 if i == j else 0.0) - (1.0 + v[i, 0] * d[j, 0] + v[i, 1] * d[j, 1] + v[i, 2] * d[j, 2]) / 9.0
                if index[pix[j]] >= 0:
                    band[row, 5 * (j // 3 - i // 3 + 2) + (j % 3 - i % 3 + 2)] += value
                elif fg_known[pix[j]]:
                    pull[row] -= value


def matting_laplacian(
    image: np.ndarray, unknown: np.ndarray, fg_known: np.ndarray, epsilon: float = EPSILON
) -> tuple[sp.csr_matrix, np.ndarray]:
    """The rows of the matting Laplacian (Levin, Lischinski, Weiss 2008, eq. 12) at the unknown pixels.

    Returns ``(L_UU, r)``: the Laplacian between unknown pixels (CSR, in ``unknown``'s row-major
    order) and ``r = -L_UK · alpha_K``, the known pixels' pull (alpha 1 on known FG, 0 on BG),
    so that the smoothest alpha solves ``L_UU · alpha_U = r``. 3x3 windows.

    Written here rather than taken from :func:`pymatting.cf_laplacian`: that one builds the
    entries of every pixel of the region, known or not, and then the unknown rows have to be cut
    out of it; at 1080p that was 3.4 s and most of the memory. Here only the windows holding an
    unknown pixel are visited, and their terms go straight into the 25 possible neighbours of
    each unknown pixel (numba, as pymatting does).
    """
    h, w = unknown.shape
    flat_unknown = unknown.ravel()
    index = np.full(h * w, -1, np.int64)
    n = int(flat_unknown.sum())
    index[flat_unknown] = np.arange(n)
    # Window centres: interior pixels with an unknown pixel in their 3x3 neighbourhood.
    near = binary_dilation(unknown, structure=np.ones((3, 3), bool))
    near[0, :] = near[-1, :] = False
    near[:, 0] = near[:, -1] = False
    band = np.zeros((n, 25))
    pull = np.zeros(n)
    _accumulate(np.ascontiguousarray(image, dtype=np.float64).reshape(-1, 3), np.flatnonzero(near),
                index, np.ascontiguousarray(fg_known.ravel()), w, float(epsilon), band, pull)
    # Columns: the unknown neighbour at each of the 25 offsets (-1 where it is not unknown).
    ys, xs = np.divmod(np.flatnonzero(flat_unknown), w)
    cols = np.full((n, 25), -1, np.int64)
    for k in range(25):
        y, x = ys + k // 5 - 2, xs + k % 5 - 2
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        cols[inside, k] = index[y[inside] * w + x[inside]]
    keep = cols >= 0
    indptr = np.concatenate([[0], np.cumsum(keep.sum(1))])
    matrix = sp.csr_matrix((band[keep], cols[keep], indptr), shape=(n, n))
    return matrix, pull


class _System:
    """The matting Laplacian over the unknown pixels of one region, built once."""

    def __init__(self, image: np.ndarray, unknown: np.ndarray, fg_known: np.ndarray) -> None:
        self.matrix, self.rhs = matting_laplacian(image, unknown, fg_known)
        self.preconditioner: LinearOperator | None = None

    def solve(self, prior: np.ndarray, weight: np.ndarray, start: np.ndarray) -> np.ndarray | None:
        """The round's alpha at the unknown pixels (all three arguments are vectors over them, in
        row-major order), or ``None`` when the solver broke down."""
        from pymatting import ichol

        # A tiny ridge keeps the system positive definite when the trimap has no known pixels.
        d = weight + 1e-9
        a = (self.matrix + sp.diags(d)).tocsr()
        if self.preconditioner is None:
            # ichol prints a "PERFORMANCE WARNING" when it has to retry with a shift.
            captured = io.StringIO()
            # pymatting's discard threshold: sparser factors (1e-3, 1e-2) were quicker to make
            # but needed ten times the iterations, and were slower overall at 1080p.
            with contextlib.redirect_stdout(captured):
                factor = ichol(a, shifts=list(ICHOL_SHIFTS))
            if captured.getvalue().strip():
                log.debug("ichol: %s", captured.getvalue().strip())
            self.preconditioner = LinearOperator(a.shape, matvec=factor, dtype=np.float64)
        b = self.rhs + d * prior
        # scipy's solver, not pymatting's: it stops cleanly when the residual reaches zero.
        x, info = cg(a, b, x0=start, rtol=TOLERANCE, maxiter=MAX_ITERATIONS, M=self.preconditioner)
        if info < 0 or not np.all(np.isfinite(x)):
            return None
        if info > 0:
            log.debug("alpha smoothing: not converged to %g in %d iterations; using it", TOLERANCE, info)
        return x


def alternate(
    image: np.ndarray,
    trimap: np.ndarray,
    alpha: np.ndarray,
    fg: np.ndarray,
    bg: np.ndarray,
    settings: Settings | None = None,
    fg_weight: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Alternate F and alpha against the compositing equation (module docstring).

    Args:
        image: ``H×W×3`` float in the networks' [0, 1] encoding.
        trimap: ``H×W``: 0 BG, 1 FG, strictly between unknown (normalised).
        alpha: the matting network's alpha, ``H×W``; 0/1 where the trimap is known.
        fg, bg: the foreground and background networks' colours, ``H×W×3`` (plate where known).
        settings: rounds, λ and σ² (default :class:`Settings`).
        fg_weight: weight of the foreground network's colours in each F step
            (:func:`core.pipeline.solve_foreground`; default its ``FG_SOLVE_WEIGHT``); must be > 0.

    Returns:
        ``(alpha H×W, fg H×W×3)`` float32: the last round's alpha and the foreground solved for
        it. Known pixels keep the trimap's alpha and the plate's colour. With 0 rounds, the
        network's alpha and the foreground solved for it.
    """
    from core.nets.matting import colour_line_alpha
    from core.pipeline import FG_SOLVE_WEIGHT, solve_foreground

    settings = settings or Settings()
    fg_weight = FG_SOLVE_WEIGHT if fg_weight is None else fg_weight
    if not fg_weight > 0:
        raise InputError(f"fg_weight must be > 0, not {fg_weight!r}")
    tri = np.asarray(trimap, dtype=np.float32)
    unknown = (tri > 0.0) & (tri < 1.0)
    fg_known = tri >= 1.0
    image = np.asarray(image, dtype=np.float32)
    # Only the unknown pixels change: where the trimap is known alpha is 0/1, F is the plate on
    # known FG and the network's F on known BG (the F step returns F_net where alpha is 0).
    u = unknown.ravel()
    img_u, bg_u = _column(image.reshape(-1, 3)[u]), _column(np.asarray(bg, np.float32).reshape(-1, 3)[u])
    fnet_u = _column(np.asarray(fg, np.float32).reshape(-1, 3)[u])
    a_u = np.clip(np.asarray(alpha, dtype=np.float64).ravel()[u], 0.0, 1.0)

    def solve_f(a_now: np.ndarray) -> torch.Tensor:
        return solve_foreground(img_u, _column(a_now), bg_u, fnet_u, fg_weight)

    f_u = solve_f(a_u)
    if settings.rounds and u.any():
        system = _System(image, unknown, fg_known)
        for _ in range(settings.rounds):
            prior, distance = colour_line_alpha(img_u, bg_u, f_u)
            confidence = 1.0 - torch.exp(-(distance * distance) / settings.confidence_scale)
            solved = system.solve(_rows(prior), settings.smoothing * _rows(confidence), a_u)
            if solved is None:
                log.warning("the alpha smoothing broke down; keeping the previous round's alpha")
                break
            a_u = np.clip(solved, 0.0, 1.0)
            f_u = solve_f(a_u)
    out_alpha = fg_known.astype(np.float32)
    out_alpha.ravel()[u] = a_u
    out_fg = np.where(fg_known[..., None], image, np.asarray(fg, np.float32)).astype(np.float32)
    out_fg.reshape(-1, 3)[u] = _rows(f_u)
    return out_alpha, out_fg
