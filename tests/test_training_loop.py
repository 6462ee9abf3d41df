"""The sequential training loop: order, checkpoints, resume, logs and the loss plot."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import pytest
import torch

from core.nets import build_network, network_config
from core.training.checkpoint import load_checkpoint, save_checkpoint
from core.training.train import TrainSettings, WeightAverage, read_log, train


def _batch(role: str, n: int = 2, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    alpha = torch.zeros(n, 1, size, size)
    alpha[:, :, 8:24, 8:24] = 1.0
    alpha[:, :, 6:26, 6:8] = 0.5
    trimap = torch.where((alpha > 0) & (alpha < 1), 0.5, alpha)
    trimap[:, :, 6:26, 5:10] = 0.5
    fg = torch.rand(n, 3, size, size, generator=g)
    bg = torch.rand(n, 3, size, size, generator=g)
    image = alpha * fg + (1 - alpha) * bg
    return {"image": image, "trimap": trimap, "alpha": alpha, "fg": fg, "bg": bg,
            "unknown": (trimap == 0.5).float()}


def _tiny() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "background": build_network(network_config("background", "small", width=4)),
        "foreground": build_network(network_config("foreground", "small", width=4)),
        "alpha": build_network(network_config("alpha", "small", widths=[4, 4, 4, 4], aspp_width=8, decoder_width=8)),
    }


def test_the_loss_plot_is_drawn_at_checkpoints_at_most_so_often_and_when_training_returns(tmp_path, monkeypatch) -> None:
    # Drawn at every checkpoint, it cost 0.6 s of CPU each: a run checkpointing every step spent
    # more time drawing than training. Now at most every PLOT_EVERY_SECONDS, and always at the end.
    import core.training.train as training

    drawn: list[int] = []
    real = training.plot_losses
    monkeypatch.setattr(training, "plot_losses", lambda run_dir: drawn.append(len(read_log(run_dir))) or real(run_dir))
    settings = TrainSettings(steps={"background": 2, "foreground": 1, "alpha": 1}, checkpoint_every=1, validate_every=100)
    train(tmp_path / "quick", lambda role: _batch(role), settings, init=_tiny(), progress=False)
    assert drawn == [4]  # once, with every step's loss
    assert (tmp_path / "quick" / "losses.png").stat().st_size > 1000
    drawn.clear()
    monkeypatch.setattr(training, "PLOT_EVERY_SECONDS", 0.0)
    train(tmp_path / "every", lambda role: _batch(role), settings, init=_tiny(), progress=False)
    assert drawn == [1, 2, 3, 4, 4]  # every checkpoint, then the end


def test_stages_train_in_order_and_resume(tmp_path) -> None:
    run = tmp_path / "run"
    seen: list[str] = []

    def batches(role: str) -> dict[str, torch.Tensor]:
        seen.append(role)
        return _batch(role)

    settings = TrainSettings(steps={"background": 3, "foreground": 2, "alpha": 2}, checkpoint_every=1, validate_every=1)
    nets = train(run, batches, settings, init=_tiny(), validation=_batch, progress=False)
    assert seen == ["background"] * 3 + ["foreground"] * 2 + ["alpha"] * 2
    for role in ("background", "foreground", "alpha"):
        assert (run / f"{role}.safetensors").is_file()
        assert json.loads((run / f"{role}.json").read_text())["step"] == settings.steps[role]
    records = read_log(run)
    assert [r["role"] for r in records if r["kind"] == "train"] == seen
    assert all(r["loss"] > 0 for r in records)
    assert (run / "losses.png").stat().st_size > 1000

    # Asking for more background steps continues from the checkpoint, not from scratch.
    seen.clear()
    settings.steps["background"] = 5
    again = train(run, batches, settings, init=_tiny(), progress=False)
    assert seen[:2] == ["background", "background"]
    assert json.loads((run / "background.json").read_text())["step"] == 5
    # Stages already complete are loaded, not retrained: the alpha net equals the first run's.
    for a, b in zip(nets["alpha"].state_dict().values(), again["alpha"].state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_few_steps_on_one_batch_lower_every_stages_loss(tmp_path) -> None:
    # The loop really optimises each network for its own loss: 30 steps on one fixed batch must
    # cut each stage's training loss well below where it started, not merely log numbers. The
    # layers are smooth here: _batch's per-pixel noise behind the unknown band cannot be
    # inferred from anything, so the background and foreground losses would sit at their floor.
    batch = _batch("alpha")
    n, _, size, _ = batch["image"].shape
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    bg = torch.stack([0.2 + 0.3 * xx, 0.6 - 0.2 * yy, torch.full_like(xx, 0.3)]).expand(n, 3, size, size).clone()
    fg = torch.tensor([0.9, 0.7, 0.2]).view(1, 3, 1, 1).expand(n, 3, size, size).clone()
    alpha = batch["alpha"]
    batch |= {"fg": fg, "bg": bg, "image": alpha * fg + (1 - alpha) * bg}
    settings = TrainSettings(steps={"background": 30, "foreground": 30, "alpha": 30}, lr=1e-3, ema=None,
                             checkpoint_every=1000, validate_every=1000)
    train(tmp_path, lambda role: batch, settings, init=_tiny(), progress=False)
    records = [r for r in read_log(tmp_path) if r["kind"] == "train"]
    for role in ("background", "foreground", "alpha"):
        losses = [r["loss"] for r in records if r["role"] == role]
        assert len(losses) == 30 and all(torch.isfinite(torch.tensor(losses)))
        # Measured: the last five steps at 0.29-0.39 of the first step's loss.
        assert max(losses[-5:]) < 0.6 * losses[0], (role, losses[0], losses[-5:])


def test_time_budget_stops_with_a_checkpoint(tmp_path) -> None:
    settings = TrainSettings(steps={"background": 1000, "foreground": 1, "alpha": 1}, max_minutes=0.0, checkpoint_every=1000)
    train(tmp_path, _batch, settings, init=_tiny(), progress=False)
    state = json.loads((tmp_path / "background.json").read_text())
    assert state["step"] == 1  # stopped after the first step, checkpointed
    assert not (tmp_path / "foreground.json").exists()


def test_checkpoint_round_trip_restores_adam_moments(tmp_path) -> None:
    net = _tiny()["background"]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(2):
        loss = net(_batch("background")["image"].new_ones(1, 4, 16, 16)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_checkpoint(tmp_path / "ck", net, opt, {"step": 2})
    net2 = _tiny()["background"]
    opt2 = torch.optim.Adam(net2.parameters(), lr=1e-3)
    assert load_checkpoint(tmp_path / "ck", net2, opt2)["step"] == 2
    for a, b in zip(net.parameters(), net2.parameters(), strict=True):
        assert torch.equal(a, b)
        assert torch.equal(opt.state[a]["exp_avg_sq"], opt2.state[b]["exp_avg_sq"])
    assert not list(tmp_path.glob("*.tmp"))


def test_weight_average_known_answer() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.BatchNorm1d(1))
    with torch.no_grad():
        net[0].weight.fill_(0.0)
    average = WeightAverage(net, decay=0.999)
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[1].running_mean.fill_(5.0)
    average.update(net)  # decay ramps up: min(0.999, 1/10) = 0.1 -> 0.1*0 + 0.9*1
    assert torch.allclose(average.module[0].weight, torch.tensor([[0.9]]))
    assert float(average.module[1].running_mean) == 5.0  # statistics copied, not averaged
    with torch.no_grad():
        net[0].weight.fill_(2.0)
    average.update(net)  # min(0.999, 2/11)
    assert torch.allclose(average.module[0].weight, torch.tensor([[2 / 11 * 0.9 + 9 / 11 * 2.0]]))
    assert average.updates == 2 and not average.module[0].weight.requires_grad
    import pytest

    with pytest.raises(ValueError, match="decay"):
        WeightAverage(net, decay=1.0)


def test_a_finished_stage_keeps_its_average_and_a_resumed_one_goes_on_averaging(tmp_path) -> None:
    from safetensors.torch import load_file

    settings = TrainSettings(steps={"background": 2, "foreground": 0, "alpha": 0}, checkpoint_every=1, ema=0.9)
    train(tmp_path, _batch, settings, init=_tiny(), progress=False)
    state = json.loads((tmp_path / "background.json").read_text())
    assert state["ema_updates"] == 2 and "moving average" in state["weights"]
    tensors = load_file(str(tmp_path / "background.safetensors"))
    model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    ema = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
    assert model.keys() == ema.keys() and all(torch.equal(model[k], ema[k]) for k in model)  # it ships the average
    settings.steps["background"] = 3
    nets = train(tmp_path, _batch, settings, init=_tiny(), progress=False)
    assert json.loads((tmp_path / "background.json").read_text())["ema_updates"] == 3
    last = load_file(str(tmp_path / "background.safetensors"))
    assert all(torch.equal(v, last[f"ema.{k}"]) for k, v in nets["background"].state_dict().items())
    # Averaging off: the last step's weights, no average stored.
    off = TrainSettings(steps={"background": 1, "foreground": 0, "alpha": 0}, ema=None)
    train(tmp_path / "off", _batch, off, init=_tiny(), progress=False)
    assert not any(k.startswith("ema.") for k in load_file(str(tmp_path / "off" / "background.safetensors")))


def test_a_stage_stopped_early_and_asked_for_no_more_steps_ships_its_average(tmp_path) -> None:
    from safetensors.torch import load_file

    settings = TrainSettings(steps={"background": 1000, "foreground": 0, "alpha": 0}, max_minutes=0.0,
                             checkpoint_every=1000, ema=0.9)
    stopped = train(tmp_path, _batch, settings, init=_tiny(), progress=False)
    saved = load_file(str(tmp_path / "background.safetensors"))
    ema = {k[4:]: v for k, v in saved.items() if k.startswith("ema.")}
    assert all(torch.equal(v, saved[f"model.{k}"]) for k, v in stopped["background"].state_dict().items())
    settings.steps["background"] = json.loads((tmp_path / "background.json").read_text())["step"]
    settings.max_minutes = None
    nets = train(tmp_path, _batch, settings, init=_tiny(), progress=False)
    assert all(torch.equal(v, ema[k]) for k, v in nets["background"].state_dict().items())


def test_training_pastes_the_plate_over_known_pixels_as_inference_does() -> None:
    # Between the networks, training now does what the pipeline does: the next network sees the
    # plate where the trimap is known, the previous network's colours only where it is not.
    from core.training.train import stage_loss

    batch = _batch("alpha")

    class Constant(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full_like(x[:, :3], 0.123)

    class Recorder(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.seen = x
            return x[:, 3:4] * 0 + 0.5 + x.sum() * 0

    recorder = Recorder()
    stage_loss("alpha", recorder, batch, {"background": Constant(), "foreground": Constant()}, 0.5)
    image, trimap = batch["image"], batch["trimap"]
    bg, fg = recorder.seen[:, 4:7], recorder.seen[:, 7:10]
    fg_known, bg_known = (trimap >= 1).expand_as(image), (trimap <= 0).expand_as(image)
    assert torch.equal(bg[bg_known], image[bg_known]) and torch.equal(fg[fg_known], image[fg_known])
    assert torch.all(bg[~bg_known] == 0.123) and torch.all(fg[~fg_known] == 0.123)


def test_the_result_loss_is_zero_for_the_true_layers_and_scores_alpha_like_the_evaluation() -> None:
    from core.compositing import Settings
    from core.training.losses import result_loss

    b = _batch("alpha", size=24)
    keep = Settings(rounds=0)  # the layers solved for the given alpha, no smoothing
    exact = result_loss(b["image"], b["trimap"], b["alpha"], b["fg"], b["bg"], b["alpha"], b["fg"], b["bg"], b["unknown"], keep)
    assert float(exact["total"]) < 1e-6
    off = (b["alpha"] + 0.1 * b["unknown"]).clamp(0, 1)
    shifted = result_loss(b["image"], b["trimap"], off, b["fg"], b["bg"], b["alpha"], b["fg"], b["bg"], b["unknown"], keep)
    u = b["unknown"].bool()
    assert float(shifted["alpha"]) == pytest.approx(float((off - b["alpha"])[u].abs().mean()), rel=1e-5)
    assert float(shifted["fg"]) > 0 and float(shifted["bg"]) > 0


def test_training_for_the_result_reaches_the_networks_through_the_refinement() -> None:
    from core.training.train import stage_loss

    nets = _tiny()
    batch = _batch("alpha", size=32)
    helpers = {"background": nets["background"].eval(), "foreground": nets["foreground"].eval()}
    for role in ("foreground", "alpha"):
        net = nets[role].train()
        plain, _ = stage_loss(role, net, batch, helpers, 0.5)
        loss, terms = stage_loss(role, net, batch, helpers, 0.5, result_weight=1.0)
        assert {"result_alpha", "result_fg", "result_bg", "result_total"} <= set(terms)
        assert loss.item() == pytest.approx(plain.item() + terms["result_total"], rel=1e-4)
        # The refined result's own gradient reaches the network's weights (unrolled solver):
        # loss − plain is the result term (the two networks' own terms cancel).
        net.zero_grad()
        (loss - plain).backward()
        grads = [p.grad.abs().sum() for p in net.parameters() if p.grad is not None]
        assert grads and float(sum(grads)) > 0


def test_the_background_network_trains_for_the_result_through_a_frozen_foreground_network() -> None:
    # The pipeline's F is the foreground network's answer to this B: the refined result's
    # gradient reaches the background network's weights, not the foreground network's.
    from core.training.train import stage_loss

    nets = _tiny()
    batch = _batch("background", size=32)
    net = nets["background"].train()
    plain, plain_terms = stage_loss("background", net, batch, {}, 0.5)
    alone, alone_terms = stage_loss("background", net, batch, {}, 0.5, result_weight=1.0)
    assert alone.item() == pytest.approx(plain.item()) and alone_terms == plain_terms  # no foreground: no result
    foreground = nets["foreground"].eval().requires_grad_(False)
    loss, terms = stage_loss("background", net, batch, {"foreground": foreground}, 0.5, result_weight=2.0)
    assert {"coarse", "fine", "result_alpha", "result_fg", "result_bg", "result_total"} == set(terms)
    assert terms["fine"] == pytest.approx(plain_terms["fine"])
    assert loss.item() == pytest.approx(plain.item() + 2.0 * terms["result_total"], rel=1e-4)
    net.zero_grad()
    (loss - plain).backward()
    assert float(sum(p.grad.abs().sum() for p in net.parameters() if p.grad is not None)) > 0
    assert all(p.grad is None for p in foreground.parameters())


def test_a_run_from_a_bundle_trains_the_background_network_for_the_result_and_leaves_every_network_trainable(
        tmp_path) -> None:
    settings = TrainSettings(steps={"background": 1, "foreground": 1, "alpha": 0}, checkpoint_every=1,
                             validate_every=100, result_weight=1.0)
    nets = train(tmp_path / "from", _batch, settings, init=_tiny(), progress=False)
    logged = {entry["role"]: set(entry) for entry in read_log(tmp_path / "from") if entry["kind"] == "train"}
    assert "result_total" in logged["background"] and "result_total" in logged["foreground"]
    assert all(p.requires_grad for net in nets.values() for p in net.parameters())
    scratch = train(tmp_path / "scratch", _batch, settings, progress=False)  # no trained foreground network yet
    logged = {entry["role"]: set(entry) for entry in read_log(tmp_path / "scratch") if entry["kind"] == "train"}
    assert "result_total" not in logged["background"] and "result_total" in logged["foreground"]
    assert all(p.requires_grad for net in scratch.values() for p in net.parameters())


def test_training_for_a_given_refinement_reaches_the_matting_network_only_through_its_data_term() -> None:
    # The shipped refinement solves the layers for alpha 0.5 and starts the solve from the
    # network's alpha, which gets no gradient: only the network's alpha as a data term (μ > 0)
    # lets the result loss teach the matting network. The KNN term is built per crop.
    from core.training.train import refinement_for_result, stage_loss

    nets = _tiny()
    batch = _batch("alpha", size=32)
    helpers = {"background": nets["background"].eval(), "foreground": nets["foreground"].eval()}
    net = nets["alpha"].train()
    shipped = {"rounds": 1, "knn": 0.01, "knn_position": 0.02, "sample_alpha": "half", "black_point": 0.03,
               "white_point": 0.96, "chosen_on": {"objects": ["GT01"]}}
    grads = {}
    for mu in (0.0, 1e-3):
        plain, _ = stage_loss("alpha", net, batch, helpers, 0.5)
        settings = refinement_for_result(shipped | {"network_weight": mu})
        assert settings.knn == 0.01 and settings.network_weight == mu  # the bookkeeping key left out
        loss, terms = stage_loss("alpha", net, batch, helpers, 0.5, result_weight=1.0, result_settings=settings)
        assert terms["result_alpha"] > 0
        net.zero_grad()
        (loss - plain).backward()
        grads[mu] = float(sum(p.grad.abs().sum() for p in net.parameters() if p.grad is not None))
    assert grads[0.0] == 0.0 and grads[1e-3] > 0
    assert refinement_for_result(None) is None


def test_bf16_training_runs_the_networks_in_bfloat16_and_the_losses_in_float32() -> None:
    from core.training.train import stage_loss

    nets = _tiny()
    batch = _batch("alpha", size=32)
    seen: list[torch.dtype] = []
    hook = nets["alpha"].register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    helpers = {"background": nets["background"].eval(), "foreground": nets["foreground"].eval()}
    for role in ("background", "foreground", "alpha"):
        net = nets[role].train()
        exact, _ = stage_loss(role, net, batch, helpers, 0.5)
        half, _ = stage_loss(role, net, batch, helpers, 0.5, precision="bf16")
        assert half.dtype == torch.float32 and half.item() == pytest.approx(exact.item(), rel=0.05)
        net.zero_grad()
        half.backward()
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        assert grads and all(g.dtype == torch.float32 and bool(torch.isfinite(g).all()) for g in grads)
        assert float(sum(g.abs().sum() for g in grads)) > 0
    hook.remove()
    assert seen == [torch.float32, torch.bfloat16]  # the matting network's own output, fp32 then bf16
    with pytest.raises(ValueError, match="fp32 or bf16"):
        stage_loss("alpha", nets["alpha"], batch, helpers, 0.5, precision="fp16")


def test_decay_steps_anneal_each_stage_to_zero(tmp_path) -> None:
    from core.training.train import learning_rate

    settings = TrainSettings(lr=1e-3, decay_steps=4)
    rates = [learning_rate(settings, s, 10) for s in range(10)]
    assert rates[:6] == [1e-3] * 6
    assert rates[6:] == pytest.approx([1e-3, 0.75e-3, 0.5e-3, 0.25e-3])
    assert learning_rate(TrainSettings(lr=1e-3), 9, 10) == 1e-3  # no decay: constant

    # The loop uses it: one decayed step moves the weights less than a full-rate step would.
    def moved(decay: int) -> float:
        nets = _tiny()
        before = [p.detach().clone() for p in nets["background"].parameters()]
        run = tmp_path / f"decay{decay}"
        train(run, _batch, TrainSettings(steps={"background": 1, "foreground": 0, "alpha": 0}, ema=None,
                                         lr=1e-2, decay_steps=decay), init=nets, progress=False)
        after = list(nets["background"].parameters())
        assert json.loads((run / "settings.json").read_text())["decay_steps"] == decay
        return max(float((a - b).abs().max()) for a, b in zip(after, before, strict=True))

    assert moved(0) > 1e-3  # Adam's first step moves each weight by about lr
    assert moved(4) == pytest.approx(moved(0) / 4, rel=0.05)


def test_a_negative_decay_is_refused_by_name(tmp_path, capsys) -> None:
    from core.cli import main

    assert main(["train", "--decay-steps", "-1", "--out", str(tmp_path / "b"), "--steps", "0,0,1"]) == 2
    captured = capsys.readouterr()
    assert "--decay-steps must be 0 or more, not -1" in captured.out + captured.err
    assert not (tmp_path / "b").exists()


def test_the_result_refinement_is_a_bundles_with_mu_and_a_bad_one_is_refused_by_name(tmp_path, capsys) -> None:
    import argparse

    from core.cli import main
    from core.pipeline import refinement_settings
    from core.training.cli import _result_refinement
    from core.weights import load_bundle

    fields = _result_refinement(argparse.Namespace(result_refinement="default", result_network_weight=0.001))
    shipped = dataclasses.asdict(refinement_settings(load_bundle("default")))
    assert fields == shipped | {"network_weight": 0.001}
    assert _result_refinement(argparse.Namespace(result_refinement=None, result_network_weight=None)) is None
    # A bad value is a usage error (2); a bundle that cannot be loaded a failure (1), as for matte's --weights.
    for bad, said, code in ((["--result-network-weight", "-1"], "--result-network-weight must be a number >= 0, not -1.0", 2),
                            (["--result-refinement", str(tmp_path / "nowhere")], "nowhere", 1)):
        assert main(["train", *bad, "--out", str(tmp_path / "b"), "--steps", "0,0,1"]) == code
        captured = capsys.readouterr()
        assert said in captured.out + captured.err
        assert not (tmp_path / "b").exists()


def test_hold_out_all_needs_procedural_foregrounds_only(tmp_path, capsys) -> None:
    from core.cli import main

    assert main(["train", "--hold-out", "all", "--procedural", "0.5", "--out", str(tmp_path / "b"),
                 "--steps", "0,0,1", "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert "--hold-out all leaves no real foreground to draw: use --procedural 1 (not 0.5)" in captured.out + captured.err
    assert not (tmp_path / "b").exists()


def test_hold_out_all_with_real_photos_is_refused_by_name_before_training(tmp_path, capsys) -> None:
    """The real-photo crops come from the training objects' photographs: with every object held
    out there are none, and the run ended at its first such batch with numpy's 'high <= 0'."""
    from core.cli import main
    from core.training.data import default_data_root

    data = default_data_root()
    if not (data / "alphamatting").is_dir() or not (data / "backgrounds").is_dir():
        pytest.skip(f"training data not found in {data}")
    assert main(["train", "--data", str(data), "--hold-out", "all", "--procedural", "1", "--real-photos", "0.5",
                 "--out", str(tmp_path / "b"), "--steps", "1,0,0", "--crop", "32", "--batch", "2",
                 "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 2
    said = capsys.readouterr()
    assert "--real-photos 0.5 cuts crops from the training objects' own photographs, and --hold-out keeps every " \
           "object out: use --real-photos 0" in said.out + said.err
    assert not (tmp_path / "b").exists() and not (tmp_path / "run" / "background.json").exists()


def test_out_under_runs_keeps_its_checkpoints_beside_it_and_the_bundle_is_written(tmp_path, monkeypatch) -> None:
    """``lbsmatte train --out runs/NAME`` (the README's own example): the default checkpoint folder
    runs/NAME would be the bundle's folder, and the bundle write at the end would be refused."""
    import pytest

    from core.cli import main
    from core.training.data import default_data_root
    from core.weights import load_bundle

    data = default_data_root()
    if not (data / "alphamatting").is_dir() or not (data / "backgrounds").is_dir():
        pytest.skip(f"training data not found in {data}")
    monkeypatch.chdir(tmp_path)
    args = ["train", "--out", "runs/b", "--data", str(data), "--steps", "1,1,1", "--crop", "32", "--batch", "2",
            "--backgrounds", "1", "--procedural", "1.0", "--no-progress", "--device", "cpu"]
    assert main(args) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["b", "b-checkpoints"]
    assert load_bundle(tmp_path / "runs" / "b").manifest["training"]["settings"]["steps"] == {
        "background": 1, "foreground": 1, "alpha": 1}
    assert (tmp_path / "runs" / "b-checkpoints" / "log.jsonl").is_file()
    # the foreground stage drew jittered composites: the manifest says so, not "jitter": false
    from core.training.cli import JITTER_NOTE

    assert load_bundle(tmp_path / "runs" / "b").manifest["training"]["data"]["jitter"] == JITTER_NOTE
    # Trained from scratch, it runs the installed default's refinement until one is chosen for it.
    from core.pipeline import refinement_settings

    default = load_bundle("default")
    made = load_bundle(tmp_path / "runs" / "b")
    assert made.manifest["refinement"]["inherited_from"] == {"bundle": "default", "sha256": default.manifest_sha256()}
    assert refinement_settings(made) == refinement_settings(default)
    # Trained on the shared data set: bound by its terms, which the manifest says (weights show prints them).
    assert made.manifest["training_data_terms"]["summary"].startswith("NOT CLEARED FOR COMMERCIAL USE")


def test_only_the_shared_data_sets_terms_are_written_for_it(tmp_path) -> None:
    """``train`` knows the shared data set's terms (its SOURCES.md, or alphamatting.com's object
    names); a studio's own data's it cannot, and a bundle trained further carries its parent's on."""
    import argparse

    from core.training.cli import _data_terms
    from core.training.terms import is_shared_data

    train = argparse.Namespace(command="train")
    assert is_shared_data(tmp_path, ["GT01", "GT27"]) and not is_shared_data(tmp_path, ["hair01", "GT02"])
    assert not is_shared_data(tmp_path, [])
    (tmp_path / "SOURCES.md").write_text("where each came from")
    assert is_shared_data(tmp_path, [])
    assert _data_terms(train, {"root": str(tmp_path / "elsewhere"), "objects": ["hair01"]}, None) is None
    assert _data_terms(argparse.Namespace(command="finetune"), {"root": str(tmp_path), "objects": []}, None) is None
    terms = _data_terms(train, {"root": str(tmp_path / "x"), "objects": ["GT01", "GT02"]}, None)
    assert "2 objects" in terms["summary"] and "GT01, GT02" in terms["sources"][0]["data"]

    class Parent:
        name = "vendor"
        manifest = {"training_data_terms": {"summary": "the vendor's own terms."}}

        def manifest_sha256(self):
            return "ab" * 32

    went_on = _data_terms(train, {"root": str(tmp_path), "objects": ["GT01"]}, Parent())
    assert went_on["summary"].startswith("NOT CLEARED") and "the vendor's own terms." in went_on["summary"]
    assert went_on["parent"]["bundle"] == "vendor"


def test_a_run_dir_overlapping_out_is_refused_before_training(tmp_path, capsys) -> None:
    from core.cli import main

    for run in (tmp_path / "b", tmp_path / "b" / "ckpt", tmp_path):
        assert main(["train", "--out", str(tmp_path / "b"), "--steps", "0,0,1", "--run-dir", str(run),
                     "--no-progress"]) == 2
        said = capsys.readouterr()
        assert f"the checkpoints' folder {run} and the bundle's --out {tmp_path / 'b'} overlap" in said.out + said.err
    assert not (tmp_path / "b").exists()


def test_a_batch_of_one_is_refused_by_name_before_any_training(tmp_path, capsys) -> None:
    from core.cli import main

    for command in ("train", "finetune"):
        extra = ["--from", "default", "--data", str(tmp_path / "show")] if command == "finetune" else []
        assert main([command, *extra, "--batch", "1", "--out", str(tmp_path / "b"), "--steps", "1,1,1",
                     "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 2
        said = capsys.readouterr()
        assert "--batch must be 2 or more (the networks' batch normalisation needs two crops a step), not 1" in said.out + said.err
    assert not (tmp_path / "b").exists() and not (tmp_path / "run").exists()


def test_a_loss_that_stops_being_finite_stops_the_run_and_keeps_the_good_checkpoint(tmp_path) -> None:
    from core.errors import TrainingError

    calls = {"n": 0}

    def batches(role):
        calls["n"] += 1
        batch = _batch(role)
        if calls["n"] == 3:  # the third batch holds a NaN plate
            batch["image"][0, 0, 0, 0] = float("nan")
        return batch

    settings = TrainSettings(steps={"background": 5, "foreground": 0, "alpha": 0}, checkpoint_every=1, ema=None)
    with pytest.raises(TrainingError, match=r"the background network's loss is not finite .* at step 3"):
        train(tmp_path, batches, settings, init=_tiny(), progress=False)
    meta = json.loads((tmp_path / "background.json").read_text())
    assert meta["step"] == 2  # the last finite step's checkpoint, not a broken one
    from safetensors.torch import load_file

    assert all(torch.isfinite(t).all() for t in load_file(str(tmp_path / "background.safetensors")).values())


def test_a_log_line_cut_short_by_a_full_disk_does_not_stop_the_run_from_continuing(tmp_path, caplog) -> None:
    run = tmp_path / "run"
    settings = TrainSettings(steps={"background": 1, "foreground": 1, "alpha": 1}, checkpoint_every=1)
    train(run, _batch, settings, init=_tiny(), progress=False)
    with (run / "log.jsonl").open("a") as log:
        log.write('{"role": "alpha", "kind": "tr')  # the disk filled up mid-line; the user frees space, runs again
    settings.steps["alpha"] = 2
    train(run, _batch, settings, init=_tiny(), progress=False)  # the next record is appended onto that line
    records = read_log(run)
    assert [(r["role"], r["step"]) for r in records if r["kind"] == "train"] == [
        ("background", 1), ("foreground", 1), ("alpha", 1)]  # alpha's step 2 went down with the broken line
    assert caplog.text.count("left out 1 line(s) that were cut short") == 1  # not again at each reading
    assert json.loads((run / "alpha.json").read_text())["step"] == 2


def test_a_full_disk_at_a_checkpoint_names_it_and_keeps_the_previous_one(tmp_path, monkeypatch) -> None:
    from safetensors import SafetensorError

    import core.training.checkpoint as checkpoint
    from core.errors import OutputError

    run = tmp_path / "run"
    settings = TrainSettings(steps={"background": 1, "foreground": 1, "alpha": 1}, checkpoint_every=1)
    train(run, _batch, settings, init=_tiny(), progress=False)
    before = (run / "alpha.safetensors").read_bytes()

    def full_disk(tensors, path, *args, **kwargs) -> None:
        with open(path, "wb") as f:
            f.write(b"half a checkpoint")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    settings.steps["alpha"] = 2
    with pytest.raises(OutputError, match=r"cannot write the checkpoint .*alpha\.safetensors: .*No space left on device"
                                          r".*; the checkpoints already in .* are whole and kept"):
        train(run, _batch, settings, init=_tiny(), progress=False)
    assert (run / "alpha.safetensors").read_bytes() == before
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_checkpoint_whose_json_write_was_cut_short_resumes_with_its_own_step(tmp_path, monkeypatch) -> None:
    # The .safetensors written, then the disk full for the .json: the weights of step 3 must not
    # be resumed as step 2's (the state travels inside the tensors' file).
    import errno

    from core.errors import OutputError

    net = _tiny()["background"]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    save_checkpoint(tmp_path / "ck", net, opt, {"step": 2, "losses": [0.5, 0.4]})
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    real = Path.write_text

    def full_disk(self, *args, **kwargs):
        if self.name.startswith(".ck.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OutputError, match=r"ck\.json: No space left on device"):
        save_checkpoint(tmp_path / "ck", net, opt, {"step": 3, "losses": [0.5, 0.4, 0.3]})
    monkeypatch.undo()
    assert json.loads((tmp_path / "ck.json").read_text())["step"] == 2  # the old .json stayed
    net2 = _tiny()["background"]
    state = load_checkpoint(tmp_path / "ck", net2, torch.optim.Adam(net2.parameters(), lr=1e-3))
    assert state["step"] == 3 and state["losses"] == [0.5, 0.4, 0.3]
    assert torch.equal(next(net2.parameters()), next(net.parameters()))


class _DrawnBatches:
    """A batch source drawing random crops from a generator of its own, with its random state."""

    def __init__(self, seed: int) -> None:
        import numpy as np

        self.rng = np.random.default_rng(seed)

    def __call__(self, role: str) -> dict[str, torch.Tensor]:
        batch = _batch(role)
        noise = torch.from_numpy(self.rng.random(batch["bg"].shape, dtype="float32"))
        batch["bg"] = noise
        batch["image"] = batch["alpha"] * batch["fg"] + (1 - batch["alpha"]) * noise
        return batch

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


def test_a_run_stopped_after_every_step_and_continued_ends_with_the_uninterrupted_runs_weights(tmp_path) -> None:
    """Each continuation is a new process: a new batch source from the same seed. The checkpoint
    carries the source's random state, so the continued run trains on the batches the
    uninterrupted one drew (not on the first ones again) and ends with the same weights."""
    steps = {"background": 3, "foreground": 2, "alpha": 1}
    whole = train(tmp_path / "whole", _DrawnBatches(7), TrainSettings(steps=dict(steps), ema=0.9), init=_tiny(),
                  progress=False)
    settings = TrainSettings(steps=dict(steps), ema=0.9, max_minutes=1e-9)  # stops after every step
    for _ in range(sum(steps.values())):
        pieces = train(tmp_path / "pieces", _DrawnBatches(7), settings, init=_tiny(), progress=False)
    assert json.loads((tmp_path / "pieces" / "alpha.json").read_text())["step"] == 1
    for role in steps:
        for (name, a), b in zip(whole[role].state_dict().items(), pieces[role].state_dict().values(), strict=True):
            assert torch.equal(a, b), f"{role} {name}"


def test_lbsmatte_train_continued_after_every_step_draws_the_batches_of_an_uninterrupted_run(tmp_path) -> None:
    """The command line's batch source (composites drawn in the training process) saves and
    restores its random generators through the checkpoints."""
    from safetensors.torch import load_file

    from core.cli import main
    from core.training.data import default_data_root

    data = default_data_root()
    if not (data / "alphamatting").is_dir() or not (data / "backgrounds").is_dir():
        pytest.skip(f"training data not found in {data}")
    common = ["train", "--data", str(data), "--steps", "3,0,0", "--crop", "32", "--batch", "2", "--backgrounds", "1",
              "--hold-out", "all", "--procedural", "1", "--threads", "1", "--no-progress", "--device", "cpu"]
    assert main([*common, "--out", str(tmp_path / "whole"), "--run-dir", str(tmp_path / "whole_run")]) == 0
    codes = [main([*common, "--out", str(tmp_path / "pieces"), "--run-dir", str(tmp_path / "pieces_run"),
                   "--max-minutes", "1e-9"]) for _ in range(3)]
    assert codes == [3, 3, 0]
    whole = load_file(tmp_path / "whole_run" / "background.safetensors")
    pieces = load_file(tmp_path / "pieces_run" / "background.safetensors")
    losses = [[r["loss"] for r in read_log(tmp_path / run) if r["kind"] == "train"] for run in ("whole_run", "pieces_run")]
    assert losses[0] == losses[1]
    assert all(torch.equal(whole[k], pieces[k]) for k in whole if k.startswith("model."))


def test_the_bundle_records_the_training_data_folder_whole_when_given_relative(tmp_path, monkeypatch) -> None:
    from core.cli import main
    from core.training.data import default_data_root

    data = default_data_root()
    if not (data / "alphamatting").is_dir() or not (data / "backgrounds").is_dir():
        pytest.skip(f"training data not found in {data}")
    monkeypatch.chdir(data.parent)
    assert main(["train", "--data", data.name, "--steps", "1,0,0", "--crop", "32", "--batch", "2", "--backgrounds", "1",
                 "--hold-out", "all", "--procedural", "1", "--threads", "1", "--no-progress", "--device", "cpu",
                 "--out", str(tmp_path / "b"), "--run-dir", str(tmp_path / "run")]) == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["training"]["data"]["root"] == str(data.resolve())


def test_a_run_continued_with_another_data_recipe_is_refused_by_name(tmp_path, capsys) -> None:
    """--hold-out, --procedural, --real-photos, --wide-trimaps, --rendered and the sampling scale say
    what a run's batches are: a fold continued with another --hold-out trained on the objects it
    holds out (and its bundle recorded only the last), so a continuation asking for another is
    refused like one with another --data or --lr."""
    from core.cli import main
    from core.training.data import default_data_root

    data = default_data_root()
    if not (data / "alphamatting").is_dir() or not (data / "backgrounds").is_dir():
        pytest.skip(f"training data not found in {data}")
    common = ["train", "--data", str(data), "--steps", "2,0,0", "--crop", "32", "--batch", "2", "--backgrounds", "1",
              "--threads", "1", "--no-progress", "--device", "cpu", "--out", str(tmp_path / "b"),
              "--run-dir", str(tmp_path / "run")]
    first = ["--hold-out", "all", "--procedural", "1"]
    assert main([*common, *first, "--max-minutes", "1e-9"]) == 3
    capsys.readouterr()
    for other, said in ((["--hold-out", "", "--procedural", "1"], "hold_out ['all'], now []"),
                        ([*first, "--wide-trimaps", "0.5"], "wide_trimaps 0.0, now 0.5"),
                        ([*first, "--sampling-scale", "1"], "sampling_scale {'background': 0.5, 'foreground': 0.5}, "
                                                            "now {'background': 1.0, 'foreground': 1.0}")):
        assert main([*common, *other]) == 2
        out = capsys.readouterr()
        assert "holds the checkpoints of another run" in out.out and said in out.out, out.out
    # The same recipe (and the default sampling scale, given or not) continues it.
    assert main([*common, *first, "--sampling-scale", "0.5"]) == 0


def test_checkpoints_are_written_every_checkpoint_every_steps_and_at_the_end(tmp_path, monkeypatch) -> None:
    import core.training.train as train_module

    saved = []
    real = train_module.save_checkpoint

    def record(stem, net, optimizer, state, **kwargs):
        saved.append(state["step"])
        return real(stem, net, optimizer, state, **kwargs)

    monkeypatch.setattr(train_module, "save_checkpoint", record)
    settings = TrainSettings(steps={"background": 5, "foreground": 0, "alpha": 0}, checkpoint_every=2, ema=None,
                             validate_every=1000)
    train(tmp_path, _batch, settings, init=_tiny(), progress=False)
    assert saved == [2, 4, 5]


def test_a_checkpoint_of_an_earlier_lbsmattes_network_is_refused_naming_what_changed(tmp_path) -> None:
    # A run folder from before the sampling networks corrected a pull-push fill (678e7aa) and ran
    # at half resolution (32db408): the same weights' shapes, so torch would load them, and the
    # network would go on training as another function than the one it learnt as.
    from safetensors.torch import load_file, save_file

    from core.errors import TrainingError

    settings = TrainSettings(steps={"background": 1, "foreground": 0, "alpha": 0}, checkpoint_every=1, ema=None)
    train(tmp_path, _batch, settings, init=_tiny(), progress=False)
    stem = tmp_path / "background"
    state = json.loads(stem.with_suffix(".json").read_text())
    before = {k: v for k, v in state["config"].items() if k not in ("prior_fill", "scale")}
    # As LBSMatte wrote it then: the state in the .json only, the tensors' file without it.
    tensors = load_file(str(stem.with_suffix(".safetensors")))
    save_file(tensors, str(stem.with_suffix(".safetensors")))
    stem.with_suffix(".json").write_text(json.dumps(dict(state, config=before)))
    settings.steps["background"] = 2
    with pytest.raises(TrainingError) as caught:
        train(tmp_path, _batch, settings, init=_tiny(), progress=False)
    assert str(caught.value) == (
        f"the checkpoint {stem}.json holds a background network of another configuration than this run's "
        "(prior_fill False, now True; scale 1.0, now 0.5): an earlier LBSMatte's, or another run's. Continue it "
        f"with the LBSMatte that made it, or give this run a folder of its own (--run-dir), or remove {tmp_path} "
        "to start it again")
    assert json.loads(stem.with_suffix(".json").read_text())["step"] == 1  # nothing trained or written over
    # A key naming the config only (an older config without its size), or one the networks take the
    # same value for where it is absent, continues.
    same = dict(state["config"])
    del same["size"]
    stem.with_suffix(".json").write_text(json.dumps(dict(state, config=same)))
    train(tmp_path, _batch, settings, init=_tiny(), progress=False)
    assert json.loads(stem.with_suffix(".json").read_text())["step"] == 2


@pytest.mark.parametrize(
    "state,expected",
    [
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
        ('"__import__(os).system(touch x)"', "not a JSON object"),
        ('{"step": "1; rm -rf /"}', "step '1; rm -rf /'"),
        ('{"step": 1, "optimizer": {"param_groups": [{"params": [1, 2]}], "steps": []}}', "not plain numbers"),
        ('{"step": 1, "optimizer": {"param_groups": [{"lr": {"x": 1}}], "steps": []}}', "not plain numbers"),
        ('{"step": 1, "optimizer": {"param_groups": [{"lr": 0.001}], "steps": [1]}}', "one number per parameter"),
    ],
)
def test_a_checkpoint_state_lbsmatte_did_not_write_is_refused(tmp_path, state: str, expected: str) -> None:
    """The ``lbsmatte_state`` metadata is JSON, parsed with bounds and checked, never evaluated:
    a hostile one is a TrainingError naming the file, not a RecursionError or an optimizer whose
    parameters were replaced by numbers."""
    from safetensors.torch import save_file

    from core.errors import TrainingError
    from core.training.checkpoint import STATE_KEY

    net = _tiny()["background"]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    save_checkpoint(tmp_path / "ck", net, opt, {"step": 2})
    tensors = {f"model.{k}": v.contiguous() for k, v in net.state_dict().items()}
    save_file(tensors, str(tmp_path / "ck.safetensors"), metadata={STATE_KEY: state})
    with pytest.raises(TrainingError, match=r"ck\.safetensors is not one LBSMatte wrote: .*" + re.escape(expected)):
        load_checkpoint(tmp_path / "ck", _tiny()["background"], torch.optim.Adam(net.parameters(), lr=1e-3))
    assert not (tmp_path / "x").exists()


def test_running_out_of_gpu_memory_names_the_step_and_sizes_and_the_same_run_continues(tmp_path) -> None:
    # A CUDA out-of-memory (simulated on the CPU) in the third background step: an error of
    # LBSMatte's own (the command line prints it without a traceback) naming the stage, the step,
    # --batch and --crop, the checkpoint kept and how to go on; that checkpoint continues the run.
    from core.errors import ResourceError

    calls = {"n": 0}

    def batches(role):
        calls["n"] += 1
        if calls["n"] == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return _batch(role)

    settings = TrainSettings(steps={"background": 4, "foreground": 1, "alpha": 1}, checkpoint_every=1, batch_size=2,
                             crop=32)
    with pytest.raises(ResourceError) as caught:
        train(tmp_path, batches, settings, init=_tiny(), progress=False)
    message = str(caught.value)
    assert message.startswith("out of memory on cpu training the background network at step 3, with batches of 2 "
                              "crops of 32 px (--batch 2 --crop 32; small networks, fp32); the checkpoints in ")
    assert "are kept (background step 2): run the same command again to continue" in message
    assert "new --run-dir with a smaller --batch or --crop" in message
    assert isinstance(caught.value.__cause__, torch.OutOfMemoryError)
    assert json.loads((tmp_path / "background.json").read_text())["step"] == 2
    train(tmp_path, batches, settings, init=_tiny(), progress=False)  # the same command, the memory free
    assert json.loads((tmp_path / "alpha.json").read_text())["step"] == 1
    assert [r["step"] for r in read_log(tmp_path) if r["role"] == "background"] == [1, 2, 3, 4]


def test_running_out_of_gpu_memory_before_any_checkpoint_says_a_smaller_batch_may_use_the_same_folder(
        tmp_path) -> None:
    from core.errors import ResourceError

    def batches(role):
        raise torch.OutOfMemoryError("CUDA out of memory")

    settings = TrainSettings(steps={"background": 2, "foreground": 1, "alpha": 1}, batch_size=8, crop=192)
    with pytest.raises(ResourceError, match=r"training the background network at step 1, with batches of 8 crops of "
                                            r"192 px .*; no checkpoint was written yet: run again with a smaller "
                                            r"--batch or --crop$"):
        train(tmp_path, batches, settings, init=_tiny(), progress=False)


def test_running_out_of_gpu_memory_while_validating_says_so(tmp_path, monkeypatch) -> None:
    from core.errors import ResourceError
    from core.training import train as train_module

    real = train_module.stage_loss

    def stage_loss(*args, **kwargs):
        if not torch.is_grad_enabled():  # the validation pass
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "stage_loss", stage_loss)
    settings = TrainSettings(steps={"background": 2, "foreground": 1, "alpha": 1}, batch_size=2, crop=32,
                             validate_every=1)
    with pytest.raises(ResourceError, match=r"^out of memory on cpu training the background network validating "
                                            r"after step 1, with batches of 2 crops of 32 px "):
        train(tmp_path, _batch, settings, init=_tiny(), validation=_batch, progress=False)


def test_a_full_disk_when_a_run_folders_record_is_written_keeps_the_old_one_whole(tmp_path, monkeypatch) -> None:
    # settings.json was rewritten in place: a disk full at a continuation left it cut short, and
    # every later continuation of the folder stopped with a JSON traceback. Now it is replaced
    # whole or not at all, and a record that cannot be read is named.
    import errno

    from core.errors import InputError, OutputError
    from core.training.cli import _check_resume

    run = tmp_path / "run"
    settings = TrainSettings(steps={"background": 1, "foreground": 0, "alpha": 0}, checkpoint_every=1)
    train(run, _batch, settings, init=_tiny(), progress=False)
    before = (run / "settings.json").read_text()
    real = Path.write_text

    def full_disk(self, text, *args, **kwargs):
        if "settings.json" in self.name:
            real(self, text[:10], *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    settings.steps["background"] = 2
    with pytest.raises(OutputError, match=r"cannot write .*settings\.json: No space left on device"):
        train(run, _batch, settings, init=_tiny(), progress=False)
    monkeypatch.undo()
    assert (run / "settings.json").read_text() == before
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
    _check_resume(run, settings, {})  # more steps: the same run
    (run / "settings.json").write_text(before[:10])  # one cut short before this was fixed
    with pytest.raises(InputError, match=r"settings\.json cannot be read \(.*\): it records what run made the "
                                         r"checkpoints in .*run; give this run a folder of its own"):
        _check_resume(run, settings, {})


def test_ctrl_c_and_sigterm_stop_at_a_checkpoint_said_at_once_and_the_run_continues_identically(
        tmp_path, monkeypatch, caplog) -> None:
    # Ctrl-C while a batch is drawn (twice: the second adds nothing), SIGTERM while a checkpoint is
    # being written: each stops the run after that step with a whole checkpoint, and the continued
    # run ends with the uninterrupted run's weights.
    import signal

    import core.training.checkpoint as checkpoint

    steps = {"background": 3, "foreground": 2, "alpha": 2}
    whole = train(tmp_path / "whole", _DrawnBatches(7), TrainSettings(steps=dict(steps), ema=0.9), init=_tiny(),
                  progress=False)
    drawn = {"n": 0}

    class Interrupted(_DrawnBatches):
        def __call__(self, role):
            drawn["n"] += 1
            if drawn["n"] == 2:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
            return super().__call__(role)

    real, written = checkpoint.save_file, {"n": 0}

    def terminated_while_writing(*args, **kwargs):
        written["n"] += 1
        if written["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_file", terminated_while_writing)
    before = signal.getsignal(signal.SIGINT)
    settings = TrainSettings(steps=dict(steps), ema=0.9)
    reached = []
    with caplog.at_level("WARNING", logger="core.training.train"):
        for _ in range(3):
            pieces = train(tmp_path / "pieces", Interrupted(7), settings, init=_tiny(), progress=False)
            reached.append({r: json.loads((tmp_path / "pieces" / f"{r}.json").read_text())["step"]
                            for r in steps if (tmp_path / "pieces" / f"{r}.json").is_file()})
    # (The third write is the foreground stage's last: it stops with that stage whole.)
    assert reached == [{"background": 2}, {"background": 3, "foreground": 2},
                       {"background": 3, "foreground": 2, "alpha": 2}]
    said = [r.getMessage() for r in caplog.records if "stopping after this step" in r.getMessage()]
    assert said == ["SIGINT: stopping after this step, with a checkpoint; the same command continues",
                    "SIGTERM: stopping after this step, with a checkpoint; the same command continues"]
    assert signal.getsignal(signal.SIGINT) is before
    for role in steps:
        for (name, a), b in zip(whole[role].state_dict().items(), pieces[role].state_dict().values(), strict=True):
            assert torch.equal(a, b), f"{role} {name}"


#: A training run that stops, killed, in the middle of a write: ``argv`` the run folder, the file it
#: writes once the write has begun, and what it is writing (``checkpoint`` or ``plot``).
_KILLED_WHILE_WRITING = """
import sys, time
from pathlib import Path

import matplotlib.figure
import core.training.checkpoint as checkpoint
from core.training.train import TrainSettings, train
from test_training_loop import _batch, _tiny

run, started, what = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]


def begun():
    started.write_text("writing")
    time.sleep(600)


def save_and_hang(tensors, path, metadata=None):
    # as safetensors 0.5 and later do: through a temporary file of their own beside the one named
    Path(path).with_name(".tmpk3J9xq").write_bytes(b"half a checkpoint")
    begun()


def draw_and_hang(figure, path, **kwargs):
    Path(path).write_bytes(b"\\x89PNG half a plot")
    begun()


if what == "checkpoint":
    checkpoint.save_file = save_and_hang
else:
    matplotlib.figure.Figure.savefig = draw_and_hang
train(run, _batch, TrainSettings(steps={"background": 1, "foreground": 0, "alpha": 0}), init=_tiny(), progress=False)
"""


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL")
@pytest.mark.parametrize("what", ["checkpoint", "plot"])
def test_a_run_killed_while_writing_leaves_no_half_file_and_the_next_removes_its_temporaries(tmp_path, what,
                                                                                            killed_once_started) -> None:
    # A farm's SIGKILL after its grace period can land while a checkpoint is written (a second or
    # more for the paper networks' hundreds of MB) or losses.png is drawn: the checkpoint's
    # temporary files stayed hidden in the run folder for good, run after run, and losses.png was
    # left cut short under its own name.

    from PIL import Image

    run, started = tmp_path / "run", tmp_path / "started"
    script = tmp_path / "killed_while_writing.py"
    script.write_text(_KILLED_WHILE_WRITING, encoding="utf-8")
    tests = os.path.dirname(os.path.abspath(__file__))
    killed_once_started(script, started, str(run), str(started), what,
                        env={"PYTHONPATH": os.pathsep.join([os.path.dirname(tests), tests])}, what=f"run's {what}")
    assert not (run / "losses.png").exists()  # never a plot cut short under its own name
    if what == "checkpoint":
        assert not (run / "background.safetensors").exists()
    assert [p.name for p in run.iterdir() if p.name.startswith(".")]  # what the kill left

    train(run, _batch, TrainSettings(steps={"background": 1, "foreground": 0, "alpha": 0}), init=_tiny(), progress=False)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
    assert json.loads((run / "background.json").read_text())["step"] == 1
    with Image.open(run / "losses.png") as plot:
        plot.verify()


def test_steps_taken_again_after_a_crash_past_the_last_checkpoint_are_logged_once(tmp_path) -> None:
    # Killed (or out of memory) at step 4 with the last checkpoint at step 2: the continuation takes
    # step 3 again. The log keeps one record a step, the continuation's, so losses.png and the
    # bundle's final training loss do not count step 3 twice.
    calls = {"n": 0}

    def batches(role):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("killed")
        return _DrawnBatches(calls["n"])(role)

    settings = TrainSettings(steps={"background": 4, "foreground": 0, "alpha": 0}, checkpoint_every=2, ema=None)
    with pytest.raises(RuntimeError, match="killed"):
        train(tmp_path, batches, settings, init=_tiny(), progress=False)
    first_try = [r["loss"] for r in read_log(tmp_path)]
    train(tmp_path, batches, settings, init=_tiny(), progress=False)
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 3, 4]
    records = read_log(tmp_path)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert [r["loss"] for r in records] == first_try[:2] + [lines[3]["loss"], lines[4]["loss"]]
    assert lines[3]["loss"] != first_try[2]  # step 3 taken again, on another batch


def test_a_step_logged_again_keeps_the_place_of_its_first_record(tmp_path) -> None:
    # Killed after step 3's validation record, the checkpoint at step 2: the continuation logs a
    # training record for step 3 again but was stopped before validating it.
    records = [{"role": "alpha", "kind": "train", "step": 1, "loss": 1.0},
               {"role": "alpha", "kind": "train", "step": 3, "loss": 3.0},
               {"role": "alpha", "kind": "val", "step": 3, "loss": 5.0},
               {"role": "alpha", "kind": "train", "step": 3, "loss": 4.0}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert [(r["kind"], r["step"], r["loss"]) for r in read_log(tmp_path)] == [
        ("train", 1, 1.0), ("train", 3, 4.0), ("val", 3, 5.0)]


def test_a_full_disk_when_the_losses_are_drawn_says_the_checkpoints_are_kept(tmp_path, monkeypatch) -> None:
    # losses.png, drawn as each run ends, on a disk that filled: the run stopped with "cannot write
    # .../losses.png: No space left on device" alone, where the log's and a checkpoint's say what
    # is kept and how to go on.
    import core.io
    from core.errors import OutputError

    settings = TrainSettings(steps={"background": 2, "foreground": 0, "alpha": 0}, checkpoint_every=2, ema=None)
    real = core.io.atomic_output

    def full(path, *args, **kwargs):
        if Path(path).name == "losses.png":
            raise OutputError(f"cannot write {path}: No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(core.io, "atomic_output", full)
    with pytest.raises(OutputError) as caught:
        train(tmp_path, _batch, settings, init=_tiny(), progress=False)
    assert str(caught.value) == (f"cannot write {tmp_path / 'losses.png'}: No space left on device; the checkpoints "
                                 f"already in {tmp_path} are whole and kept: make room (or make the folder writable) "
                                 "and run the same command again to continue from them")
    assert json.loads((tmp_path / "background.json").read_text())["step"] == 2


def test_a_full_disk_when_the_log_is_appended_names_it_and_says_the_checkpoints_are_kept(tmp_path,
                                                                                      monkeypatch) -> None:
    # log.jsonl is written every step, so on a filling disk it is what fails first: that ended the
    # run with a bare "No space left on device", naming no file. (So does a checkpoint, below.)
    import errno

    from core.errors import OutputError

    settings = TrainSettings(steps={"background": 3, "foreground": 0, "alpha": 0}, checkpoint_every=2, ema=None)
    real = Path.open

    def full_disk(self, mode="r", *args, **kwargs):
        handle = real(self, mode, *args, **kwargs)
        if self.name == "log.jsonl" and "a" in mode and (tmp_path / "background.json").is_file():
            handle.close()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return handle

    monkeypatch.setattr(Path, "open", full_disk)
    with pytest.raises(OutputError, match=r"^cannot write .*log\.jsonl: No space left on device; the checkpoints "
                                          r"already in .* are whole and kept: make room .* and run the same command "
                                          r"again to continue from them$"):
        train(tmp_path, _batch, settings, init=_tiny(), progress=False)
    monkeypatch.undo()
    assert json.loads((tmp_path / "background.json").read_text())["step"] == 2
    train(tmp_path, _batch, settings, init=_tiny(), progress=False)
    assert [r["step"] for r in read_log(tmp_path)] == [1, 2, 3]


def test_the_progress_bar_is_drawn_on_a_terminal_only(tmp_path, monkeypatch, capsys) -> None:
    # A training on a farm (stderr a log file) wrote a carriage-return line per step into the log,
    # for hours; the bar is for people at a terminal (log.jsonl has every step for machines).
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    settings = TrainSettings(steps={"background": 2, "foreground": 0, "alpha": 0}, checkpoint_every=100,
                             validate_every=100)
    train(tmp_path / "log", _batch, settings, init=_tiny())
    assert "\r" not in capsys.readouterr().err  # stderr not a terminal (captured, as a log file)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    train(tmp_path / "terminal", _batch, settings, init=_tiny())
    assert "\rbackground: 100%" in terminal.getvalue()


def test_training_gives_back_the_callers_thread_count(tmp_path: Path) -> None:
    # torch's thread count is the whole process's: training on --threads 3 left a pipeline that then
    # matted in the same process (or the next test) on 3 threads, whose convolutions' last bits differ.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        settings = TrainSettings(steps={"background": 1, "foreground": 1, "alpha": 1}, threads=3, validate_every=100)
        train(tmp_path / "run", lambda role: _batch(role), settings, init=_tiny(), progress=False)
        assert torch.get_num_threads() == 1
        # and when training fails part-way
        with pytest.raises(RuntimeError, match="no batch"):
            train(tmp_path / "failed", lambda role: (_ for _ in ()).throw(RuntimeError("no batch")), settings,
                  init=_tiny(), progress=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)
