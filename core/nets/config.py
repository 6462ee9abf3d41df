"""Architecture configurations of the three networks.

A configuration is a plain JSON-serialisable dict. It is stored in every weights bundle's
manifest next to the weights it describes (SPEC §6), so the sizes of a trained network are never
taken from constants in the code: `build_network(bundle.config(role))` rebuilds exactly the
network that was trained.

Three named sizes exist:

``small``
    Trains on a 2-core CPU in hours: sampling networks with 16 base channels, a matting
    network with a four-stage residual encoder of 16-96 channels.
``medium``
    The ``small`` sampling networks with a matting network of 4.5 M parameters (a two-blocks-a-stage
    residual encoder of 32-256 channels and the full-resolution refinement head): on fold 0 a
    ``paper`` matting network, not its sampling networks, scored better held out (README,
    Evaluation); this size trains on 2 CPU cores at about 1.1 s a step, and 900 such steps did
    not beat ``small`` over the three folds.
``paper``
    Close to the published sizes for a GPU: the 32-channel (x4 at the bottleneck) two-stage
    network of Yu et al. 2018 for background and foreground, and a ResNet-34-sized encoder
    with an atrous pyramid for alpha (AlphaGAN).
"""

from __future__ import annotations

import copy
from typing import Any

from core.errors import WeightsError

ROLES = ("background", "foreground", "alpha")
SIZES = ("small", "medium", "paper")

# Input widths fixed by the method (SPEC §3, patent para. 0041-0049).
IN_CHANNELS = {"background": 4, "foreground": 7, "alpha": 10}

_SAMPLING = {
    "small": {
        "width": 16,
        "attention_patch": 3,
        "attention_rate": 2,
        "attention_max_positions": 4096,
        "attention_scale": 10.0,
        "prior_fill": True,
        # The shipped networks run at half resolution (fast, and the sampling needs no finer
        # grid); new ones are trained at the scale they run.
        "scale": 0.5,
    },
    "paper": {
        "width": 32,
        "attention_patch": 3,
        "attention_rate": 2,
        "attention_max_positions": 16384,
        "attention_scale": 10.0,
        "prior_fill": True,
        "scale": 1.0,
    },
}

_MATTING = {
    "small": {
        "widths": [16, 32, 64, 96],
        "blocks": [1, 1, 2, 1],
        "aspp_width": 64,
        "aspp_rates": [2, 4, 6],
        "decoder_width": 32,
        "colour_line_feature": True,
        "refine": False,
        "refine_width": 32,
    },
    "medium": {
        "widths": [32, 64, 128, 256],
        "blocks": [2, 2, 2, 2],
        "aspp_width": 128,
        "aspp_rates": [2, 4, 6],
        "decoder_width": 48,
        "colour_line_feature": True,
        "refine": True,
        "refine_width": 32,
    },
    "paper": {
        "widths": [64, 128, 256, 512],
        "blocks": [3, 4, 6, 3],
        "aspp_width": 256,
        "aspp_rates": [6, 12, 18],
        "decoder_width": 64,
        "colour_line_feature": True,
        "refine": True,
        "refine_width": 64,
    },
}


def network_config(role: str, size: str = "small", **overrides: Any) -> dict[str, Any]:
    """Return the architecture config of one network.

    Parameters
    ----------
    role:
        ``"background"``, ``"foreground"`` or ``"alpha"``.
    size:
        ``"small"`` (CPU-trainable), ``"medium"`` (small sampling networks, a larger matting
        network) or ``"paper"`` (published sizes, for a GPU).
    **overrides:
        Keys of the config to replace, e.g. ``width=4`` for a tiny test network.

    Returns
    -------
    dict
        JSON-serialisable; ``config["architecture"]`` is ``"sampling"`` or ``"matting"``.

    Example
    -------
    >>> network_config("foreground", "small", width=4)["in_channels"]
    7
    """
    if role not in ROLES:
        raise WeightsError(f"unknown network role {role!r}; expected one of {', '.join(ROLES)}")
    if size not in SIZES:
        raise WeightsError(f"unknown network size {size!r}; expected one of {', '.join(SIZES)}")
    if role == "alpha":
        config: dict[str, Any] = {"architecture": "matting", **copy.deepcopy(_MATTING[size])}
    else:
        config = {"architecture": "sampling", **copy.deepcopy(_SAMPLING["small" if size == "medium" else size])}
    config["role"] = role
    config["in_channels"] = IN_CHANNELS[role]
    config["size"] = size
    unknown = set(overrides) - set(config)
    if unknown:
        raise WeightsError(f"unknown config keys for the {role} network: {', '.join(sorted(unknown))}")
    config.update(overrides)
    return config


def role_sizes(text: str) -> dict[str, str]:
    """The size of each network from ``"small"`` (all three) or ``"small,small,paper"`` (BG,FG,alpha).

    >>> role_sizes("small,small,paper")["alpha"]
    'paper'
    """
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) == 1:
        parts *= 3
    if len(parts) != 3 or any(p not in SIZES for p in parts):
        raise WeightsError(f"network size must be one of {', '.join(SIZES)}, or three of them for BG,FG,alpha "
                           f"(e.g. small,small,paper), not {text!r}")
    return dict(zip(ROLES, parts, strict=True))


#: Keys the configs of an earlier LBSMatte lack (``prior_fill`` since 678e7aa, ``scale`` since
#: 132ab1e), with the value the networks take where a config has none: what those networks were.
IMPLICIT = {"prior_fill": False, "scale": 1.0, "colour_line_feature": False, "refine": False}
#: Keys that name a config without changing the network built from it.
LABELS = ("size",)


def config_differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The keys in which the network built from config ``before`` (an earlier run's, an earlier
    LBSMatte's) differs from that built from ``now``, in words (``"scale 1.0, now 0.5"``); empty
    when they build the same network. A key either lacks counts with its :data:`IMPLICIT` value.

    >>> config_differences({"width": 16}, {"width": 16, "prior_fill": True})
    ['prior_fill False, now True']
    """
    differences = []
    for key in sorted((set(before) | set(now)) - set(LABELS)):
        old, new = before.get(key, IMPLICIT.get(key)), now.get(key, IMPLICIT.get(key))
        if old != new:
            differences.append(f"{key} {old!r}, now {new!r}")
    return differences


#: Bounds on a config's numbers, checked before a network is built from it (:func:`check_bounds`):
#: a manifest comes from whoever made the bundle, and ``"width": 1000000000`` would otherwise
#: allocate terabytes (or ``"blocks": [1e9, ...]`` build a billion modules) before any check on
#: the weights could fail. Each is far above the ``paper`` size's (32 / 64-512 / 3-6 / 16384).
INT_BOUNDS = {
    "in_channels": (1, 64),
    # sampling
    "width": (1, 512),
    "attention_patch": (1, 15),
    "attention_rate": (1, 16),
    "attention_max_positions": (1, 1 << 16),
    # matting
    "aspp_width": (1, 2048),
    "decoder_width": (1, 1024),
    "refine_width": (1, 1024),
}
#: Bounds on the matting network's lists: ``(shortest, longest)``, ``(smallest, largest)`` item.
LIST_BOUNDS = {"widths": ((3, 8), (1, 2048)), "blocks": ((3, 8), (1, 16)), "aspp_rates": ((1, 8), (1, 64))}
#: The most parameters a network may have (``paper``'s matting network: 27 M).
MAX_PARAMETERS = 200_000_000


def check_bounds(config: dict[str, Any]) -> None:
    """:class:`WeightsError` naming the key unless every size in ``config`` is a whole number within
    :data:`INT_BOUNDS` / :data:`LIST_BOUNDS` (keys absent are left to the network to report)."""
    def whole(key: str, value: Any, low: int, high: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise WeightsError(f"config key {key!r} must be a whole number, not {value!r}")
        if not low <= value <= high:
            raise WeightsError(f"config key {key!r} is {value}, outside {low}..{high}")

    for key, (low, high) in INT_BOUNDS.items():
        if key in config:
            whole(key, config[key], low, high)
    for key, ((shortest, longest), (low, high)) in LIST_BOUNDS.items():
        if key not in config:
            continue
        values = config[key]
        if not isinstance(values, list) or not shortest <= len(values) <= longest:
            raise WeightsError(f"config key {key!r} must be a list of {shortest} to {longest} whole numbers, "
                               f"not {_shown(values)}")
        for value in values:
            whole(key, value, low, high)
    value = config.get("attention_scale")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1000):
        raise WeightsError(f"config key 'attention_scale' must be a number in (0, 1000], not {_shown(value)}")


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
