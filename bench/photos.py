"""The alphamatting photos as the measurement scripts (``exposure.py``, ``grain.py``,
``flicker.py``, ``screens.py``, ``motionblur.py``, ``trimaperr.py``) read them: values in [0, 1] as
floats, optionally halved in size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def read(path: Path) -> np.ndarray:
    """``path``'s pixels as float32, integer files scaled to [0, 1]."""
    from core.colour import scale_integers
    from core.io import read_image

    return scale_integers(read_image(str(path)).pixels, str(path)).astype(np.float32)


def halve(x: np.ndarray) -> np.ndarray:
    """``x`` at half its height and width, each output pixel the mean of a 2×2 block."""
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    return x[:h, :w].reshape(h // 2, 2, w // 2, 2, *x.shape[2:]).mean(axis=(1, 3))


def photo(data: Path, name: str, trimap: str, half: bool,
          linear: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``name``'s photo ``H×W×3`` (sRGB-encoded, as stored; with ``linear`` linearised as
    ``lbsmatte matte`` linearises an sRGB file), its ``trimap`` ``H×W`` (as stored) and its alpha
    ``H×W``; with ``half`` the photo (in the encoding returned) and alpha averaged down, the
    trimap sampled."""
    plate = read(data / "image" / f"{name}.png")[..., :3]
    if linear:
        from core.colour import to_linear

        plate = to_linear(plate, "srgb")
    gt = read(data / "alpha" / f"{name}.png")
    tri = read(data / "trimap" / trimap / f"{name}.png")
    gt, tri = (x[..., 0] if x.ndim == 3 else x for x in (gt, tri))
    if half:
        plate, gt = halve(plate), halve(gt)
        tri = tri[: gt.shape[0] * 2 : 2, : gt.shape[1] * 2 : 2]
    return plate.astype(np.float32), tri.astype(np.float32), gt.astype(np.float32)


def pymatting_alpha(plate: np.ndarray, tri: np.ndarray, solver: str = "estimate_alpha_cf") -> np.ndarray:
    """pymatting's ``solver`` (``estimate_alpha_cf``, ``estimate_alpha_knn``) on ``plate`` ``H×W×3``
    as it is, the baseline the measurement scripts set beside LBSMatte: linear values above 1 or
    below 0 are not clipped (:mod:`core.baselines` clips the image to [0, 1]; these scripts measure
    the plate LBSMatte was given). The alpha is clipped to [0, 1] and the trimap's known regions
    (:func:`core.trimap.split_trimap`) keep ``tri``'s values. Returns ``H×W`` float64.

    pymatting's warning that the values leave [0, 1] is known here and silenced, and its
    preconditioner's "PERFORMANCE WARNING" lines are kept out of the rows and tables on stdout."""
    import contextlib
    import io
    import warnings

    import pymatting

    from core.trimap import split_trimap

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.filterwarnings("ignore", "Image values should be in", UserWarning)
        alpha = getattr(pymatting, solver)(plate.astype(np.float64), tri.astype(np.float64))
    return np.where(split_trimap(tri)[2], np.clip(alpha, 0, 1), tri)
