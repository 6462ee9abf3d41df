"""The three networks: shapes, ranges, configs, and contextual attention's behaviour."""

from __future__ import annotations

import json
import math
import re
from typing import Any

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
    # A bundle stores the config as JSON and rebuilds the network from it before loading the
    # weights: the rebuilt network must be the same one, parameter for parameter, not merely
    # one with the same shapes. Same seed, same config -> the same initial weights and outputs.
    config = network_config("foreground", "small", width=4)
    again = json.loads(json.dumps(config))
    assert again == config
    torch.manual_seed(5)
    a = build_network(config).eval()
    torch.manual_seed(5)
    b = build_network(again).eval()
    assert a.config == config and b.config == config
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    x = torch.rand(1, 7, 32, 48, generator=torch.Generator().manual_seed(1))
    x[:, 3] = (x[:, 3] > 0.5).float()
    with torch.inference_mode():
        assert torch.equal(a(x), b(x))


def test_bad_configs_raise_weights_error() -> None:
    with pytest.raises(WeightsError, match="unknown network role"):
        network_config("matte")
    with pytest.raises(WeightsError, match="unknown config keys"):
        network_config("alpha", "small", width=3)
    with pytest.raises(WeightsError, match="unknown network architecture"):
        build_network({"architecture": "unet"})
    with pytest.raises(WeightsError, match="invalid sampling network config"):
        build_network({"architecture": "sampling", "in_channels": 4})


@pytest.mark.parametrize(
    "role,changes,expected",
    [
        ("background", {"width": 10**9}, "'width' is 1000000000, outside 1..512"),
        ("background", {"width": "16"}, "'width' must be a whole number"),
        ("background", {"attention_max_positions": 10**12}, "'attention_max_positions'"),
        ("background", {"attention_scale": float("inf")}, "'attention_scale' must be a number"),
        ("alpha", {"widths": [16, 32, 64, 10**9]}, "'widths' is 1000000000"),
        ("alpha", {"blocks": [1, 1, 10**9, 1]}, "'blocks' is 1000000000"),
        ("alpha", {"widths": [16] * 10**4}, "'widths' must be a list of 3 to 8"),
        ("alpha", {"aspp_rates": [2] * 10**5}, "'aspp_rates' must be a list"),
        ("alpha", {"in_channels": 10**9}, "'in_channels'"),
        # each within its bound, together 6.6 G parameters
        ("alpha", {"widths": [2048] * 8, "blocks": [16] * 8}, "parameters, more than the 200,000,000 allowed"),
    ],
)
def test_absurd_configs_are_refused_before_any_memory_is_allocated(
    role: str, changes: dict[str, Any], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest is whoever made the bundle's: a config of 1e9 channels (or blocks, or list items)
    is refused by its bounds, never built (that would allocate terabytes before failing)."""
    import torch

    real_empty = torch.empty
    allocated: list[int] = []

    def watched_empty(*args: Any, **kwargs: Any) -> torch.Tensor:
        shape = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)) else args
        device = torch.device(kwargs.get("device") or torch.get_default_device())
        if device.type != "meta":
            allocated.append(math.prod(int(n) for n in shape))
            assert sum(allocated) < 10**7, "a network this config describes is being allocated"
        return real_empty(*args, **kwargs)

    monkeypatch.setattr(torch, "empty", watched_empty)
    with pytest.raises(WeightsError, match=r"invalid \w+ network config: .*" + re.escape(expected)):
        build_network(network_config(role, "small", **changes) | changes)
    assert sum(allocated) < 10**6


def test_sampling_network_rejects_wrong_input_width() -> None:
    net = build_network(network_config("background", "small", width=4, scale=1.0))
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


def test_fill_from_known_keeps_known_pixels_and_fills_holes_from_their_surroundings() -> None:
    from core.nets.blocks import fill_from_known

    image = torch.zeros(1, 3, 40, 60)
    image[:, 0, :, :30] = 1.0  # red on the left
    image[:, 2, :, 30:] = 1.0  # blue on the right
    known = torch.ones(1, 1, 40, 60)
    known[:, :, 10:30, 20:40] = 0  # a hole straddling the border
    hidden = image.clone()
    image[:, :, 10:30, 20:40] = 0.5  # what is under the hole must not matter
    filled = fill_from_known(image, known)
    k = known.bool().expand_as(image)
    assert torch.allclose(filled[k], image[k], atol=1e-6)
    hole = filled[0, :, 10:30, 20:40]
    # Colours come from the surroundings: near the left edge of the hole mostly red, near the
    # right edge mostly blue, and each pixel a blend of red and blue only (no green).
    assert float(hole[0, :, 0].mean()) > 0.8 and float(hole[2, :, -1].mean()) > 0.8
    assert float(hole[1].abs().max()) < 1e-4
    assert torch.allclose(hole[0] + hole[2], torch.ones(20, 20), atol=2e-3)
    assert float((hole - hidden[0, :, 10:30, 20:40]).abs().mean()) < 0.3


def test_fill_from_known_constant_and_degenerate_masks() -> None:
    from core.nets.blocks import fill_from_known

    colour = torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1)
    image = colour.expand(2, 3, 33, 17).clone()
    known = (torch.rand(2, 1, 33, 17) > 0.9).float()
    image[~known.bool().expand_as(image)] = 0.0
    assert torch.allclose(fill_from_known(image, known), colour.expand_as(image), atol=1e-4)
    # Nothing known (a trimap with no BG at all still runs): one flat colour near the image's
    # mean (a mean of the pyramid's partial edge windows), finite.
    noise = torch.rand(1, 3, 16, 24)
    flat = fill_from_known(noise, torch.zeros(1, 1, 16, 24))
    assert float(flat.std((2, 3)).max()) < 1e-5
    assert torch.allclose(flat[..., 0, 0], noise.mean((2, 3)), atol=0.02)


def test_prior_fill_network_starts_from_the_fill() -> None:
    from core.nets.blocks import fill_from_known

    torch.manual_seed(0)
    net = build_network(network_config("background", "small", width=4, scale=1.0)).eval()
    assert net.config["prior_fill"] is True
    image = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[:, :, 16:48, 16:48] = 1
    with torch.inference_mode():
        coarse, fine = net.forward_stages(torch.cat([image, mask], 1))
    prior = fill_from_known(image * 2 - 1, 1 - mask).clamp(-1, 1) / 2 + 0.5
    # An untrained network's corrections are small: both stages stay near the fill.
    assert float((coarse - prior).abs().mean()) < 0.05 and float((fine - prior).abs().mean()) < 0.1
    # A config from before prior_fill existed (no key) builds the plain network.
    old = {k: v for k, v in network_config("background", "small", width=4).items() if k != "prior_fill"}
    assert build_network(old).prior_fill is False


def test_sampling_network_at_half_scale_runs_the_same_weights_on_a_quarter_of_the_pixels() -> None:
    import torch.nn.functional as F

    torch.manual_seed(0)
    full = build_network(network_config("background", "small", width=4, scale=1.0)).eval()
    half = build_network(network_config("background", "small", width=4, scale=0.5)).eval()
    half.load_state_dict(full.state_dict())  # the weights do not depend on the scale
    assert (full.stride, half.stride) == (8, 16)
    image = torch.rand(1, 3, 64, 96)
    mask = torch.zeros(1, 1, 64, 96)
    mask[:, :, 20:41, 30:61] = 1  # odd edges: a low-res pixel with any masked pixel is masked
    with torch.inference_mode():
        out = half(torch.cat([image, mask], 1))
        small_mask = (F.avg_pool2d(mask, 2) > 0).float()
        expected = F.interpolate(full(torch.cat([F.avg_pool2d(image, 2), small_mask], 1)), size=(64, 96),
                                 mode="bilinear", align_corners=False)
    assert out.shape == (1, 3, 64, 96)
    assert torch.allclose(out, expected, atol=1e-6)
    assert bool(small_mask[0, 0, 10, 15]) and bool(small_mask[0, 0, 20, 30])  # rows 20 and 40 are masked
    for bad in (0.3, 0.0, 2.0):
        with pytest.raises(WeightsError, match="scale must be 1/k"):
            build_network(network_config("background", "small", width=4, scale=bad))


@pytest.mark.parametrize("refine", [False, True])
def test_matting_network_where_gives_the_same_alpha_at_those_pixels(refine: bool) -> None:
    torch.manual_seed(0)
    net = build_network(network_config("alpha", "small", widths=[4, 4, 4, 4], aspp_width=8, decoder_width=8,
                                       refine=refine, refine_width=4)).eval()
    x = torch.rand(2, 10, 160, 224)
    where = torch.zeros(2, 1, 160, 224, dtype=torch.bool)
    where[0, :, 40:90, 60:70] = True  # inside, across piece borders
    where[0, :, 150:, 200:] = True  # the frame's corner
    where[1, :, 0:3, 100:101] = True  # the top edge, other image
    with torch.inference_mode():
        full, part = net(x), net(x, where)
    assert part.shape == full.shape
    assert float((full - part)[where].abs().max()) < 1e-5
    # Pieces without any wanted pixel are not computed.
    assert float(part[1, :, 64:, :].max()) < 1e-12 and float(part[0, :, :, 128:192][:, :64].max()) < 1e-12


def test_fill_from_known_trusts_a_level_whose_cell_is_a_quarter_known() -> None:
    from core.nets.blocks import fill_from_known

    # 4x4: one known pixel (1.0) in the top-left 2x2 cell, one (0.0) in the bottom-right one. At
    # the 2x2 level each of those cells is a quarter known, so it keeps its own average exactly
    # (trust = 4 x weight, capped at 1); the two empty cells take the 1x1 level's 0.5. An unknown
    # pixel beside the known 1.0 is then 0.75 x 1 + 0.25 x 0.5 (bilinear, half-pixel centres).
    image = torch.zeros(1, 1, 4, 4)
    image[0, 0, 0, 0] = 1.0
    known = torch.zeros(1, 1, 4, 4)
    known[0, 0, 0, 0] = known[0, 0, 3, 3] = 1
    filled = fill_from_known(image, known)
    assert abs(float(filled[0, 0, 0, 1]) - 0.875) < 1e-4
    assert abs(float(filled[0, 0, 3, 2]) - 0.125) < 1e-4


def test_contextual_attention_fills_from_the_most_similar_patches() -> None:
    # Left half (1, 0), right half (1, 3); a hole in the left half whose features resemble the
    # left side. The softmax's scale (10) makes the most similar patches win: the hole is rebuilt
    # from left-side patches. Unscaled cosine similarities in [-1, 1] would blend in the right.
    feats = torch.zeros(1, 2, 32, 32)
    feats[:, 0] = 1.0
    feats[:, 1, :, 16:] = 3.0
    feats[:, 1, 8:16, 2:10] = 0.3
    mask = torch.zeros(1, 1, 32, 32)
    mask[:, :, 8:16, 2:10] = 1
    out = ContextualAttention(rate=2, scale=10.0)(feats, mask)
    assert float(out[0, 1, 8:16, 2:10].max()) < 0.3  # unscaled: above 1


def test_contextual_attention_chunks_give_the_same_result() -> None:
    # Queries in chunks bound memory; the chunks must cover every query once, whatever the size.
    torch.manual_seed(0)
    feats = torch.rand(2, 3, 24, 20)
    mask = torch.zeros(2, 1, 24, 20)
    mask[0, :, 5:17, 3:11] = 1
    mask[1, :, 0:9, 9:20] = 1
    whole = ContextualAttention(rate=2, query_chunk=4096)(feats, mask)
    for chunk in (1, 3, 7):
        assert torch.allclose(ContextualAttention(rate=2, query_chunk=chunk)(feats, mask), whole, atol=1e-6)


def test_contextual_attention_a_partly_masked_cell_is_not_a_key() -> None:
    # A cell is known only if every pixel under it is: the left half fully masked, the right half
    # one masked pixel in every 2x2 cell, so no cell is known and nothing is changed.
    feats = torch.rand(1, 3, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[:, :, :, :8] = 1
    mask[:, :, ::2, 8::2] = 1
    assert torch.equal(ContextualAttention(rate=2)(feats, mask), feats)


def test_sampling_network_stages_are_clipped_not_squashed() -> None:
    # With the fine decoder's last layer zeroed the fine stage is the coarse one, exactly: the
    # stages are clipped to [-1, 1], not squashed (a tanh would move every value).
    torch.manual_seed(0)
    net = build_network(network_config("background", "small", width=4, scale=1.0)).eval()
    with torch.no_grad():
        net.fine_decoder[-1].conv.weight.zero_()
        net.fine_decoder[-1].conv.bias.zero_()
    image = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 1
    with torch.inference_mode():
        coarse, fine = net.forward_stages(torch.cat([image, mask], 1))
    assert torch.equal(coarse, fine)


@pytest.mark.parametrize("role", ["background", "alpha"])
def test_a_torch_without_device_contexts_builds_the_networks(role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/nuke.md exports for Nuke 14 and 15.0 with torch 1.12.1, whose ``torch.device`` is no
    context manager (torch 2.0 made it one): ``with torch.device("meta")`` ended that export in
    ``AttributeError: __enter__`` before the networks were built."""
    import types

    import core.nets

    def device_without_context(*args: Any, **kwargs: Any) -> None:
        pytest.fail("torch.device used as a context manager, which torch 1.12 has not")

    old = types.SimpleNamespace(**{name: getattr(torch, name) for name in dir(torch) if not name.startswith("__")})
    old.device = device_without_context
    monkeypatch.setattr(core.nets, "torch", old)
    config = network_config(role, "small")
    net = build_network(config)
    monkeypatch.undo()
    want = build_network(config)
    assert [(n, p.shape) for n, p in net.named_parameters()] == [(n, p.shape) for n, p in want.named_parameters()]
    assert all(p.device.type == "cpu" for p in net.parameters())


@pytest.mark.parametrize(
    "changes,expected",
    [
        ({"width": True}, "'width' must be a whole number, not True"),
        ({"widths": [16, 32]}, "'widths' must be a list of 3 to 8 whole numbers"),
        ({"blocks": (1, 1, 1, 1)}, "'blocks' must be a list of 3 to 8"),
        ({"aspp_rates": "1248"}, "'aspp_rates' must be a list of 1 to 8"),
        ({"attention_scale": 0}, "'attention_scale' must be a number in \\(0, 1000\\], not 0"),
        ({"attention_scale": True}, "'attention_scale' must be a number"),
    ],
)
def test_config_bounds_refuse_what_json_can_hold_but_no_network_is(changes: dict[str, Any], expected: str) -> None:
    from core.nets.config import check_bounds

    with pytest.raises(WeightsError, match=expected):
        check_bounds(changes)
    check_bounds({"width": 1, "widths": [1, 1, 1], "blocks": [16] * 8, "aspp_rates": [64], "attention_scale": 1000})


def test_medium_sampling_networks_are_small_ones_and_the_size_label_is_no_difference() -> None:
    from core.nets.config import config_differences

    for role in ("background", "foreground"):
        medium, small = network_config(role, "medium"), network_config(role, "small")
        assert medium["size"] == "medium" and config_differences(small, medium) == []
        assert config_differences(network_config(role, "paper"), medium) != []
    assert config_differences(network_config("alpha", "small"), network_config("alpha", "medium")) != []
