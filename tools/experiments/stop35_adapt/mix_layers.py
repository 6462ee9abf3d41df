"""The networks' layers mixed with pull-push's: python tools/experiments/stop35_adapt/mix_layers.py

The networks' F is 15-20 % nearer the truth than pull-push's and their B no nearer (stop 30), and
the two priors agree on most pixels (stop 34). Here the data term's prior is read off F and B each
taken from the networks, from pull-push, or the mean of the two (an ensemble of a learned and a
parameter-free estimate), at λ 3e-4 and 1e-3; the 36 held-out photo frames dumped by stop 34's
dump.py (photo and photo_none: the same frames), each fold's choice made on the other two."""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "stop34_confidence"))
from common import FRAMES, LAM, at_unknown, batch, prior_from_layers, read_photo, solve  # noqa: E402
from depth_trust import report, scores  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
SOURCES = ("networks", "pull-push", "mean")
VARIANTS = [("networks", "networks", LAM)] + [
    (f, b, lam) for f, b in itertools.product(SOURCES, SOURCES) for lam in (LAM, 1e-3) if (f, b, lam) != ("networks", "networks", LAM)]


def layers(s: dict) -> dict:
    if "layers" not in s:
        _, name, variant = s["path"].stem.rsplit("_", 2)
        plate, _, _ = read_photo(name, variant)
        where = torch.from_numpy(s["where"])
        other = torch.load(FRAMES / f"photo_none_{name}_{variant}.pt", weights_only=False)["features"].float()

        net = s["features"].float()
        fg = {"networks": at_unknown(net[3:6], where), "pull-push": at_unknown(other[3:6], where)}
        bg = {"networks": at_unknown(net[6:9], where), "pull-push": at_unknown(other[6:9], where)}
        fg["mean"], bg["mean"] = (fg["networks"] + fg["pull-push"]) / 2, (bg["networks"] + bg["pull-push"]) / 2
        s["layers"] = at_unknown(batch(plate), where), fg, bg
    return s["layers"]


def mixed(s: dict, depth: torch.Tensor, variant: tuple[str, str, float]) -> torch.Tensor:
    f_from, b_from, lam = variant
    if variant == VARIANTS[0]:
        return s["a1"]
    img, fg, bg = layers(s)
    prior, conf, _ = prior_from_layers(img, fg[f_from], bg[b_from])
    return solve(s | {"prior": prior}, lam * conf)


def main() -> None:
    report("F and B from the networks, pull-push or their mean", scores("photo", VARIANTS, mixed),
           lambda v: f"F {v[0]}, B {v[1]}, λ {v[2]:g}")


if __name__ == "__main__":
    main()
