"""Run LBSMatte (shipped bundle, its recorded refinement) on bench/motionblur.py's blurred cases and
keep what :func:`core.compositing.refine` was given (plate crop in the solve space, trimap, the
networks' alpha, F and B, the KNN term) with the truth, so that ramps.py can re-run the refinement
stage by stage without the networks.

    python tools/experiments/stop49_ramps/capture.py --out /tmp/ramps_cases
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.motionblur import BLURS, background, blur_composite, cut_out, kernel, widen_trimap  # noqa: E402
from bench.photos import DEFAULT_DATA, photo  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--names", default="GT04,GT16,GT25")
    parser.add_argument("--blurs", default="motion40_diag,defocus8,sharp")
    parser.add_argument("--trimap", default="Trimap1")
    args = parser.parse_args(argv)
    import core.pipeline as pipeline
    from core.pipeline import Matter

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = DEFAULT_DATA / "alphamatting"
    matter = Matter("default", device="cpu", precision="fp32")
    print("refinement:", matter.refinement, flush=True)
    seen: dict = {}
    real = pipeline.refine

    def spy(image, trimap, alpha, fg, bg, settings=None, fg_weight=0.1, clip=None, exact=False, laplacian=None,
            knn=None):
        seen.update(image=image.clone(), trimap=trimap.clone(), alpha=alpha.clone(), fg=fg.clone(), bg=bg.clone(),
                    fg_weight=fg_weight, clip=clip, exact=exact, knn=knn)
        return real(image, trimap, alpha, fg, bg, settings, fg_weight, clip, exact, laplacian, knn)

    pipeline.refine = spy
    for i, name in enumerate(args.names.split(",")):
        plate, tri, gt = photo(data, name, args.trimap, True, linear=True)
        fgc = cut_out(plate, gt)
        bgc = background(data.parent / "backgrounds", i, gt.shape)
        for blur in args.blurs.split(","):
            kind, size, angle = BLURS[blur]
            k = kernel(kind, size * 0.5, angle)
            comp, alpha_t, fg_t = blur_composite(gt, fgc, bgc, k)
            wide = widen_trimap(tri, k)
            seen.clear()
            result = matter.matte(comp, wide, colour="linear")
            # where the refinement's crop sits in the frame: find it by matching the trimap crop
            crop_tri = seen["trimap"][0, 0].numpy()
            h, w = crop_tri.shape
            from core.trimap import split_trimap

            unk = split_trimap(wide)[2]
            ys, xs = np.nonzero(unk)
            y0, x0 = max(0, ys.min() - 2), max(0, xs.min() - 2)
            assert np.array_equal(crop_tri, wide[y0:y0 + h, x0:x0 + w]), "crop not found"
            sl = (slice(y0, y0 + h), slice(x0, x0 + w))
            torch.save({"image": seen["image"], "trimap": seen["trimap"], "alpha": seen["alpha"], "fg": seen["fg"],
                        "bg": seen["bg"], "fg_weight": seen["fg_weight"], "knn": seen["knn"],
                        "alpha_true": torch.from_numpy(alpha_t[sl].copy()),
                        "fg_true": torch.from_numpy(fg_t[sl].copy()), "bg_true": torch.from_numpy(bgc[sl].copy()),
                        "fg_sharp": torch.from_numpy(fgc[sl].copy()),
                        "result_alpha": torch.from_numpy(result.alpha[sl].copy()),
                        "settings": matter.refinement}, out / f"{name}_{blur}.pt")
            print(name, blur, "saved", h, w, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
