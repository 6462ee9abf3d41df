"""The three networks: shapes, ranges, configs, and contextual attention's behaviour."""

from __future__ import annotations

import json

import pytest
import torch

from core.errors import WeightsError
from core.nets import ContextualAttention, build_network, network_config


@pytest.mark.parametrize("role,channels", [("background", 4), ("foreground", 7), ("alpha", 10)])
def test_network_shapes_and_ranges(role: str, channels: int) -> None:
    torch.manual_seed(0)
    config = network_config(role, "small", **({"width": 4} if role != "alpha" else {"widths": [8, 8, 8, 8]}))
    net = build_network(config).eval()
    assert net.in_channels == channels
    x = torch.rand(2, channels, 48, 64)
    x[:, 3] = (x[:, 3] > 0.5).float()
    with torch.inference_mode():
        y = net(x)
    assert y.shape == (2, 1 if role == "alpha" else 3, 48, 64)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert torch.isfinite(y).all()


def test_config_is_json_and_rebuilds_the_same_network() -> None:
    config = network_config("foreground", "small", width=4)
    again = json.loads(json.dumps(config))
    a, b = build_network(config), build_network(again)
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    assert a.config == config


def test_bad_configs_raise_weights_error() -> None:
    with pytest.raises(WeightsError, match="unknown network role"):
        network_config("matte")
    with pytest.raises(WeightsError, match="unknown config keys"):
        network_config("alpha", "small", width=3)
    with pytest.raises(WeightsError, match="unknown network architecture"):
        build_network({"architecture": "unet"})
    with pytest.raises(WeightsError, match="invalid sampling network config"):
        build_network({"architecture": "sampling", "in_channels": 4})


def test_sampling_network_rejects_wrong_input_width() -> None:
    net = build_network(network_config("background", "small", width=4))
    with pytest.raises(ValueError, match="expected 4 input channels, got 7"):
        net(torch.rand(1, 7, 16, 16))


def test_contextual_attention_copies_known_patch_into_hole() -> None:
    # Left half: a feature vector a; right half: b. Hole in the left half, where only 'a'
    # patches resemble the hole's surroundings... use identical features: a hole inside a
    # constant region must be filled with that constant.
    feats = torch.zeros(1, 2, 32, 32)
    feats[:, 0] = 1.0
    feats[:, 1, :, 16:] = 3.0
    feats[:, :, 8:12, 4:8] = 7.0  # garbage inside the hole
    mask = torch.zeros(1, 1, 32, 32)
    mask[:, :, 8:12, 4:8] = 1
    out = ContextualAttention(rate=2, scale=10.0)(feats, mask)
    assert torch.equal(out[:, :, mask[0, 0] == 0], feats[:, :, mask[0, 0] == 0])  # known untouched
    hole = out[0, :, 8:12, 4:8]
    assert torch.isfinite(hole).all()
    assert float((hole - 7.0).abs().min()) > 1.0  # garbage replaced by known features


def test_contextual_attention_caps_matching_resolution() -> None:
    att = ContextualAttention(rate=2, max_positions=4096)
    assert att.matching_rate(64, 64) == 2  # 32x32 = 1024 cells
    assert att.matching_rate(576, 1024) == 16  # a 4K plate at 1/4 resolution: 36x64 = 2304 cells
    with pytest.raises(ValueError, match="power of two"):
        ContextualAttention(rate=3)


def test_contextual_attention_without_known_positions_is_identity() -> None:
    feats = torch.rand(1, 3, 16, 16)
    out = ContextualAttention()(feats, torch.ones(1, 1, 16, 16))
    assert torch.equal(out, feats)
