"""Sequential training of the three networks (patent para. 0053-0056, SPEC §7).

Order: the background network; then the foreground network on the *trained* background
network's predictions; then the matting network on both (claims 16-19). Adam with
β1 = 0.9, β2 = 0.999 and a constant learning rate (para. 0053).

Each stage is resumable: a checkpoint (weights + Adam moments, no pickle) is written every
``checkpoint_every`` steps, at the end of the time budget and on SIGTERM/SIGINT, and training
continues from it when run again with the same run folder. Losses go to ``log.jsonl`` and a
loss-curve PNG (``losses.png``) that a person can look at.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from core.compositing import paste_known
from core.errors import OutputError, ResourceError, TrainingError
from core.nets import ROLES, build_network, network_config
from core.training.checkpoint import checkpoint_exists, load_checkpoint, remove_stale_temps, save_checkpoint
from core.trimap import split_trimap

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]
BatchSource = Callable[[str], Batch]
"""Called with the role being trained; returns a batch dict: image, trimap, alpha, fg, bg, unknown."""


@dataclass
class TrainSettings:
    """What one training run does; stored in the run folder and in the bundle's manifest."""

    #: One size for the three networks, or three (BG,FG,alpha), e.g. ``small,small,paper``.
    size: str = "small"
    steps: dict[str, int] = field(default_factory=lambda: {"background": 3000, "foreground": 3000, "alpha": 4000})
    lr: float = 2e-4
    #: The learning rate falls linearly to 0 over each stage's last ``decay_steps`` steps: a stage
    #: trains at ``lr``, then anneals (warmup-stable-decay without the warm-up). 0: constant rate.
    decay_steps: int = 0
    batch_size: int = 8
    n_backgrounds: int = 4
    crop: int = 192
    lambda_comp: float = 1.0
    #: Weight of :func:`core.training.losses.result_loss` (the refined alpha, F and B) added to the
    #: networks' own losses (the background network's only when the run starts from a bundle, whose
    #: foreground network carries its B to the result); 0 trains each network for its own output only.
    result_weight: float = 0.0
    #: The refinement the result loss runs (:class:`core.compositing.Settings` fields, e.g. a
    #: bundle's ``"refinement"`` with the matting network's weight μ); ``None``: its defaults.
    result_refinement: dict[str, Any] | None = None
    checkpoint_every: int = 100
    validate_every: int = 100
    max_minutes: float | None = None
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    ema: float | None = 0.999
    #: The networks' forward passes in ``fp32`` or ``bf16`` (autocast; the losses, the optimiser
    #: and the weights stay float32). bf16 pays on CPUs that compute it natively and on CUDA.
    precision: str = "fp32"

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def learning_rate(settings: TrainSettings, step: int, target: int) -> float:
    """Rate of the step taken from ``step`` (0-based) in a stage of ``target`` steps."""
    left = target - step
    if settings.decay_steps <= 0 or left > settings.decay_steps:
        return settings.lr
    return settings.lr * max(left, 0) / settings.decay_steps


def sampling_input(role: str, batch: Batch, bg: torch.Tensor | None = None) -> torch.Tensor:
    """Input of a sampling network (SPEC §3).

    background: RGB + mask, 1 where the trimap is unknown or FG (4 channels);
    foreground: RGB + mask, 1 where unknown or BG, + predicted BG (7 channels).
    """
    trimap = batch["trimap"]
    fg_known, bg_known, _ = split_trimap(trimap)
    if role == "background":
        return torch.cat([batch["image"], (~bg_known).to(trimap.dtype)], 1)
    assert bg is not None
    return torch.cat([batch["image"], (~fg_known).to(trimap.dtype), bg], 1)


def matting_input(batch: Batch, bg: torch.Tensor, fg: torch.Tensor) -> torch.Tensor:
    """Input of the matting network: RGB + trimap + BG + FG (10 channels)."""
    return torch.cat([batch["image"], batch["trimap"], bg, fg], 1)


def _forward_stages(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from core.nets import SamplingNetwork

    assert isinstance(net, SamplingNetwork), f"expected a sampling network, got {type(net).__name__}"
    return net.forward_stages(x)


def _autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Autocast for the networks' forward passes: ``bf16`` or none (``fp32``)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision != "fp32":
        raise ValueError(f"training precision must be fp32 or bf16, not {precision!r}")
    return contextlib.nullcontext()


def refinement_for_result(fields: dict[str, Any] | None) -> Any:
    """The :class:`core.compositing.Settings` of a run's ``result_refinement`` (``None``: none
    given, the refinement's defaults); a bundle manifest's bookkeeping keys are left out."""
    if fields is None:
        return None
    from dataclasses import fields as dataclass_fields

    from core.compositing import Settings

    known = {f.name for f in dataclass_fields(Settings)}
    return Settings(**{k: v for k, v in fields.items() if k in known})


def stage_loss(
    role: str, net: nn.Module, batch: Batch, helpers: dict[str, nn.Module], lambda_comp: float,
    result_weight: float = 0.0, precision: str = "fp32", result_settings: Any = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Forward one batch through the network being trained and return (loss, terms for the log).

    With ``result_weight`` > 0 the networks also learn from what the refinement makes of their
    output (:func:`core.training.losses.result_loss`): the background network when ``helpers``
    holds a foreground network (a trained one, frozen: :func:`train` gives it one when it starts
    from a bundle), through that network's F computed from its B, with the refinement started
    from alpha 0.5, as the foreground network's is (no matting network yet); the matting network
    with the trained background and foreground networks' layers;
    both through the refinement ``result_settings`` (:class:`core.compositing.Settings`; default:
    its defaults). ``precision``: the
    networks run under :func:`_autocast`; their outputs are float32 again before any loss."""
    from core.training import losses

    unknown = batch["unknown"]
    amp = _autocast(precision, batch["image"].device)

    def run(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
        with amp:
            return network(x).float()

    def stages(network: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with amp:
            coarse, fine = _forward_stages(network, x)
        return coarse.float(), fine.float()

    fg_known, bg_known, _ = split_trimap(batch["trimap"])
    # Alpha 0.5 over the unknown region: where the refinement starts when no matting network has
    # run yet (with ``sample_alpha`` half it solves the layers for 0.5 whatever the start).
    half = torch.where(unknown.bool(), torch.full_like(batch["alpha"], 0.5), fg_known.to(batch["alpha"].dtype))
    if role == "background":
        coarse, fine = stages(net, sampling_input(role, batch))
        # eq. 2 on both stages, as Yu et al. train both stages of the inpainting network.
        l_coarse = losses.background_loss(coarse, batch["bg"], unknown)
        l_fine = losses.background_loss(fine, batch["bg"], unknown)
        total = l_coarse + l_fine
        logged = {"coarse": l_coarse.item(), "fine": l_fine.item()}
        if result_weight > 0 and "foreground" in helpers:
            # Through the foreground network the run started from (frozen): the pipeline's F is
            # computed from this B, so the refined result's gradient reaches B both directly and
            # through F.
            bg = paste_known(fine, batch["image"], bg_known)
            fg = paste_known(run(helpers["foreground"], sampling_input("foreground", batch, bg)), batch["image"], fg_known)
            result = losses.result_loss(batch["image"], batch["trimap"], half, fg, bg, batch["alpha"], batch["fg"],
                                        batch["bg"], unknown, result_settings)
            total = total + result_weight * result["total"]
            logged |= {f"result_{k}": v.item() for k, v in result.items()}
        return total, logged
    # The plate pasted over the known pixels, as the pipeline does between the networks.
    with torch.no_grad():
        bg = paste_known(run(helpers["background"], sampling_input("background", batch)), batch["image"], bg_known)
    if role == "foreground":
        coarse, fine = stages(net, sampling_input(role, batch, bg))
        # eq. 8 (eq. 4 + λ eq. 7) on both stages.
        t_coarse = losses.foreground_loss(coarse, batch["fg"], bg, batch["alpha"], batch["image"], unknown, lambda_comp)
        t_fine = losses.foreground_loss(fine, batch["fg"], bg, batch["alpha"], batch["image"], unknown, lambda_comp)
        total = t_coarse["total"] + t_fine["total"]
        logged = {f"fine_{k}": v.item() for k, v in t_fine.items()} | {"coarse": t_coarse["total"].item()}
        if result_weight > 0:
            fg = paste_known(fine, batch["image"], fg_known)
            result = losses.result_loss(batch["image"], batch["trimap"], half, fg, bg, batch["alpha"], batch["fg"],
                                        batch["bg"], unknown, result_settings)
            total = total + result_weight * result["total"]
            logged |= {f"result_{k}": v.item() for k, v in result.items()}
        return total, logged
    with torch.no_grad():
        fg = paste_known(run(helpers["foreground"], sampling_input("foreground", batch, bg)), batch["image"], fg_known)
    pred = run(net, matting_input(batch, bg, fg))
    # eq. 10: Deep Image Matting's alpha-prediction + compositional losses + eq. 9 gradient loss.
    terms = losses.matting_loss(pred, batch["alpha"], batch["image"], batch["fg"], batch["bg"], unknown)
    total = terms["total"]
    logged = {k: v.item() for k, v in terms.items()}
    if result_weight > 0:
        result = losses.result_loss(batch["image"], batch["trimap"], pred, fg, bg, batch["alpha"], batch["fg"],
                                    batch["bg"], unknown, result_settings)
        total = total + result_weight * result["total"]
        logged |= {f"result_{k}": v.item() for k, v in result.items()}
    return total, logged


@contextlib.contextmanager
def _naming_out_of_memory(at: dict[str, Any], run_dir: Path, settings: TrainSettings, device: torch.device) -> Any:
    """Turn running out of (GPU) memory into a :class:`ResourceError` naming the stage, the step, the
    batch and crop sizes, the checkpoint kept and how to go on. ``at``: ``role``, ``step`` and
    ``doing`` (``training`` that step, ``validating`` after it), kept up to date by :func:`train`.
    Nothing is written here: the weights after a failed step may be half updated, and the
    checkpoints already on disk are whole (each written before the next step starts)."""
    try:
        yield
    except torch.OutOfMemoryError as exc:
        role, step = at["role"], at["step"]
        where = {"training": f"at step {step}", "validating": f"validating after step {step}"}.get(
            at["doing"], "before its first step")
        done = {r: int(p.get("step") or 0) for r, p in stage_progress(run_dir).items()}
        if any(done.values()):
            kept = ", ".join(f"{r} step {s}" for r, s in done.items() if s)
            how = (f"the checkpoints in {run_dir} are kept ({kept}): run the same command again to continue "
                   "from them once the memory is free (another process may hold it), or start again in a new "
                   "--run-dir with a smaller --batch or --crop (a run continues with the batch and crop it began with)")
        else:
            how = "no checkpoint was written yet: run again with a smaller --batch or --crop"
        raise ResourceError(
            f"out of memory on {device} training the {role} network {where}, with batches of {settings.batch_size} "
            f"crops of {settings.crop} px (--batch {settings.batch_size} --crop {settings.crop}; {settings.size} "
            f"networks, {settings.precision}); {how}") from exc


class _StopFlag:
    """Set by SIGTERM/SIGINT so the loop checkpoints and exits cleanly (farm pre-emption)."""

    #: The signals that stop a training with a checkpoint (exit 3, README "Exit codes"), not 143/130.
    SIGNALS = ("SIGTERM", "SIGINT")

    def __init__(self) -> None:
        self.stop = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (getattr(signal, name) for name in self.SIGNALS):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not in the main thread
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.stop:  # said at once: a step (or the first batch of a stage) can take many seconds
            log.warning("%s: stopping after this step, with a checkpoint; the same command continues",
                        signal.Signals(signum).name)
        self.stop = True

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class WeightAverage:
    """Exponential moving average of a network's weights (Polyak averaging).

    With a batch of 8 crops, one Adam step moves the weights by more than the difference between
    two checkpoints a hundred steps apart is worth: on held-out photographs the SAD of successive
    alpha checkpoints jumped by 20 %. The average of the last ~1/(1 − decay) steps is what a
    stage keeps, validates and ships. The decay ramps up as ``(1 + n) / (10 + n)`` over the
    first updates so that the average is not anchored to the starting weights. Batch-norm
    statistics are copied, not averaged.
    """

    def __init__(self, net: nn.Module, decay: float) -> None:
        import copy

        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight-average decay must be in (0, 1), not {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.module = copy.deepcopy(net).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def rate(self) -> float:
        """The decay of the next update."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        d = self.rate()
        for avg, p in zip(self.module.parameters(), net.parameters(), strict=True):
            avg.mul_(d).add_(p.detach(), alpha=1 - d)
        for kept, b in zip(self.module.buffers(), net.buffers(), strict=True):
            kept.copy_(b)
        self.updates += 1


def _kept(run_dir: Path) -> str:
    """What a run stopped by a full disk (or a folder it can no longer write) still has, and how
    to go on."""
    return (f"the checkpoints already in {run_dir} are whole and kept: make room (or make the folder writable) "
            "and run the same command again to continue from them")


def _append_log(path: Path, record: dict[str, Any]) -> None:
    """Append one record to ``log.jsonl``; a full disk is an :class:`OutputError` naming it (a line
    cut short is left out by :func:`read_log`)."""
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; {_kept(path.parent)}") from exc


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """The records of ``log.jsonl``. A line that does not parse — cut short by a full disk or a
    killed process, the next record appended onto it — is left out with a warning: it must not
    stop the same command from continuing the run. A step logged twice (a run killed, or out of
    memory, after its last checkpoint: the continuation takes those steps again) is the later
    record, where the earlier one stood."""
    path = Path(run_dir) / "log.jsonl"
    if not path.is_file():
        return []
    records, broken = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError:
                broken += 1
    if broken and str(path) not in _WARNED_LOGS:  # once: the log is read at every checkpoint
        _WARNED_LOGS.add(str(path))
        log.warning("%s: left out %d line(s) that were cut short (a full disk or a killed run)", path, broken)
    latest = {(r.get("role"), r.get("kind"), r.get("step")): i for i, r in enumerate(records)}
    first = {}
    for i, r in enumerate(records):
        first.setdefault((r.get("role"), r.get("kind"), r.get("step")), i)
    return [records[latest[key]] for key in sorted(first, key=first.__getitem__)]


_WARNED_LOGS: set[str] = set()


#: ``losses.png`` is drawn again at a checkpoint at most this often (seconds), and always when
#: :func:`train` returns: drawing it costs about 0.6 s of CPU, as much as a few training steps of a
#: small network, and a run checkpointing every few steps spent more on its plot than on training.
PLOT_EVERY_SECONDS = 30.0


def plot_losses(run_dir: Path) -> Path | None:
    """Draw ``losses.png``: training (smoothed) and validation loss per stage against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(run_dir)
    if not records:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, role in zip(axes, ROLES, strict=True):
        train = [(r["step"], r["loss"]) for r in records if r["role"] == role and r["kind"] == "train"]
        val = [(r["step"], r["loss"]) for r in records if r["role"] == role and r["kind"] == "val"]
        if train:
            steps, values = zip(*train, strict=True)
            ax.plot(steps, values, alpha=0.3, label="train")
            k = max(1, len(values) // 50)
            smooth = [sum(values[max(0, i - k) : i + 1]) / len(values[max(0, i - k) : i + 1]) for i in range(len(values))]
            ax.plot(steps, smooth, label="train (smoothed)")
        if val:
            steps, values = zip(*val, strict=True)
            ax.plot(steps, values, "o-", label="validation")
        ax.set_title(f"{role} network")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        if train or val:
            ax.legend()
    fig.tight_layout()
    out = Path(run_dir) / "losses.png"
    from core.io import atomic_output

    try:  # whole or not at all: a run killed while drawing it left a truncated losses.png
        with atomic_output(out) as tmp:
            fig.savefig(tmp, dpi=80, format="png")
    finally:
        plt.close(fig)
    return out


def _remove_killed_writes(run_dir: Path) -> None:
    """Remove what a run on ``run_dir`` killed with SIGKILL while writing left there: a
    checkpoint's temporary folder (up to the checkpoint's size, hundreds of MB for the paper
    networks), and the temporary files of ``settings.json``, ``source.json`` and ``losses.png``.
    Called as a run starts on the folder, before any write of its own."""
    from core.io import remove_stale_temps as remove_stale_files

    removed = remove_stale_temps(run_dir / role for role in ROLES) + remove_stale_files(
        run_dir / name for name in ("settings.json", "source.json", "losses.png"))
    for path in removed:
        log.info("removed %s, left by an earlier run that was killed", path)


def initial_networks(init: dict[str, nn.Module] | None, settings: TrainSettings) -> dict[str, nn.Module]:
    """The three networks a run starts from, by role: ``init``'s (a bundle's, for a fine-tune or
    ``--from``) where given, else new ones of ``settings.size`` initialised from ``settings.seed``
    (:func:`torch.manual_seed`: the same seed gives the same networks). What :func:`train` starts
    from, and what ``--sampling-scale`` rebuilds at another scale before it."""
    if init is not None:
        return {role: init[role] for role in ROLES}
    from core.nets.config import role_sizes

    torch.manual_seed(settings.seed)
    sizes = role_sizes(settings.size)
    return {role: build_network(network_config(role, sizes[role])) for role in ROLES}


def train(
    run_dir: Path,
    batches: BatchSource,
    settings: TrainSettings,
    *,
    init: dict[str, nn.Module] | None = None,
    validation: BatchSource | None = None,
    progress: bool = True,
) -> dict[str, nn.Module]:
    """Train (or continue training) the three networks in order; return them.

    Parameters
    ----------
    run_dir:
        Folder of this run: ``settings.json``, ``log.jsonl``, ``losses.png`` (drawn at checkpoints
        at most every :data:`PLOT_EVERY_SECONDS`, and when training returns), one checkpoint per
        stage (``<role>.safetensors`` + ``<role>.json``). Running again continues where it stopped.
    batches:
        Training batches (called with the role being trained).
    settings:
        Steps per stage, learning rate, ... ; stored in ``settings.json``.
    init:
        Networks to start from (fine-tuning, para. 0056); default: new networks of ``settings.size``.
    validation:
        Fixed validation batches (same dict), evaluated every ``validate_every`` steps.

    A batch source with ``state_dict()`` / ``load_state_dict(state)`` (the random state of what it
    draws, JSON-serialisable) has that state saved in every checkpoint and restored on resuming,
    so that a run stopped and continued draws the batches an uninterrupted run would have drawn
    and ends with the same weights.
    """
    # The thread count is torch's, for the whole process: a caller's own (a pipeline that trains,
    # then mattes in the same process) is given back when training ends, however it ends.
    previous = torch.get_num_threads()
    try:
        return _train(run_dir, batches, settings, init=init, validation=validation, progress=progress)
    finally:
        torch.set_num_threads(previous)


def _train(
    run_dir: Path,
    batches: BatchSource,
    settings: TrainSettings,
    *,
    init: dict[str, nn.Module] | None,
    validation: BatchSource | None,
    progress: bool,
) -> dict[str, nn.Module]:
    """:func:`train`'s body, on ``settings.threads`` threads."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _remove_killed_writes(run_dir)
    write_json(run_dir / "settings.json", settings.to_json())
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = torch.device(settings.device)
    nets = initial_networks(init, settings)
    started = time.monotonic()
    plotted = started  # when losses.png was last drawn (PLOT_EVERY_SECONDS)
    deadline = started + 60 * settings.max_minutes if settings.max_minutes is not None else None
    val_batches = [validation(role) for role in ROLES] if validation else None
    result_settings = refinement_for_result(settings.result_refinement)

    # The batch source's random state of the latest checkpoint read: the next batch drawn must be
    # the one an uninterrupted run would draw after that checkpoint's step.
    batch_state: Any = None
    # Where the run is, for the error that names what ran out of memory (_naming_out_of_memory).
    at: dict[str, Any] = {"role": ROLES[0], "step": 0, "doing": "setting up"}
    with _StopFlag() as flag, _naming_out_of_memory(at, run_dir, settings, device):
        for index, role in enumerate(ROLES):
            at.update(role=role, doing="setting up")
            net = nets[role].to(device)
            optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr, betas=(0.9, 0.999))
            stem = run_dir / role
            state: dict[str, Any] = {"role": role, "step": 0, "seconds": 0.0, "config": net.config}
            average = WeightAverage(net, settings.ema) if settings.ema else None
            if checkpoint_exists(stem):
                state = load_checkpoint(stem, net, optimizer, ema=average.module if average else None,
                                        config=net.config)
                restored = state.pop("has_ema")
                if average is not None:
                    if restored:
                        average.updates = int(state.get("ema_updates", 0))
                    else:  # a checkpoint from before averaging: start the average from its weights
                        average = WeightAverage(net, average.decay)
                if state.get("batches") is not None:
                    batch_state = state["batches"]
                log.info("resumed %s network at step %d", role, state["step"])
            helpers = {r: nets[r].to(device).eval() for r in ROLES[:index]}
            if role == "background" and settings.result_weight > 0 and init is not None:
                # The background network learns from the result through the foreground network
                # the run started from (a bundle's); one trained from scratch is not trained yet.
                helpers["foreground"] = nets["foreground"].to(device).eval()
            # The stage's own network learns; the helpers only pass gradients on to it.
            for helper in helpers.values():
                helper.requires_grad_(False)
            net.requires_grad_(True)
            target = settings.steps.get(role, 0)
            if state["step"] >= target:
                if average is not None and state["step"] > 0:
                    # Stopped early and asked for no more steps (or finished): the stage is its average.
                    net.load_state_dict(average.module.state_dict())
                net.eval()
                continue
            net.train()
            # disable=None: a bar on a terminal only; a farm's log file got a carriage-return line
            # per step, hours of them (log.jsonl records every step for machines).
            bar = tqdm(total=target, initial=state["step"], desc=f"{role:>10}", disable=None if progress else True,
                       unit="step", file=sys.stderr)
            stage_start = time.monotonic()
            seconds_before = float(state.get("seconds", 0.0))
            stopped = False
            if batch_state is not None and hasattr(batches, "load_state_dict"):
                batches.load_state_dict(batch_state)
            batch_state = None
            while state["step"] < target:
                at.update(role=role, step=state["step"] + 1, doing="training")
                batch = {k: v.to(device) for k, v in batches(role).items()}
                loss, terms = stage_loss(role, net, batch, helpers, settings.lambda_comp, settings.result_weight,
                                         settings.precision, result_settings)
                if not bool(torch.isfinite(loss)):
                    # Before the step: the weights and the last checkpoint are still finite.
                    raise TrainingError(
                        f"the {role} network's loss is not finite (NaN or infinity) at step {state['step'] + 1}: "
                        f"the learning rate may be too high (--lr {settings.lr:g}), or a batch held a bad value; "
                        f"nothing was written but the checkpoints in {run_dir} (step {state['step']} and before)")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(settings, state["step"], target)
                optimizer.step()
                if average is not None:
                    average.update(net)
                    state["ema_updates"] = average.updates
                state["step"] += 1
                state["seconds"] = seconds_before + time.monotonic() - stage_start
                _append_log(run_dir / "log.jsonl", {"role": role, "kind": "train", "step": state["step"], "loss": loss.item(), **terms})
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}")
                if val_batches and state["step"] % settings.validate_every == 0:
                    at["doing"] = "validating"
                    net.eval()
                    judged = average.module if average is not None else net  # what the stage keeps
                    with torch.no_grad():
                        vb = {k: v.to(device) for k, v in val_batches[index].items()}
                        vloss, vterms = stage_loss(role, judged, vb, helpers, settings.lambda_comp, settings.result_weight,
                                                   settings.precision, result_settings)
                    net.train()
                    _append_log(run_dir / "log.jsonl", {"role": role, "kind": "val", "step": state["step"], "loss": float(vloss), **vterms})
                out_of_time = deadline is not None and time.monotonic() > deadline
                if state["step"] % settings.checkpoint_every == 0 or state["step"] == target or out_of_time or flag.stop:
                    state["machine"] = describe_machine(device)
                    if hasattr(batches, "state_dict"):
                        state["batches"] = batches.state_dict()
                    done = state["step"] >= target
                    if done and average is not None:
                        # The finished stage is its average: the next stages train on it, the bundle ships it.
                        net.load_state_dict(average.module.state_dict())
                        state["weights"] = f"exponential moving average, decay {average.decay}"
                    try:
                        save_checkpoint(stem, net, optimizer, state, compact=done,
                                        ema=average.module if average is not None else None)
                    except OutputError as exc:
                        raise OutputError(f"{exc}; {_kept(run_dir)}") from exc
                    if time.monotonic() - plotted >= PLOT_EVERY_SECONDS:
                        _plot_losses_or_stop(run_dir)
                        plotted = time.monotonic()
                if out_of_time or flag.stop:
                    stopped = True
                    break
            bar.close()
            net.eval()
            if stopped:
                log.warning("stopped %s network at step %d/%d; run again to continue", role, state["step"], target)
                break
    for network in nets.values():  # as they came: the stages froze their helpers
        network.requires_grad_(True)
    _plot_losses_or_stop(run_dir)  # the whole run's losses, however recently a checkpoint drew them
    return nets


def _plot_losses_or_stop(run_dir: Path) -> None:
    """:func:`plot_losses`; a full disk stops the run as a checkpoint's or the log's does, saying
    that the checkpoints are kept and how to go on (it said only 'cannot write .../losses.png')."""
    try:
        plot_losses(run_dir)
    except OutputError as exc:
        raise OutputError(f"{exc}; {_kept(run_dir)}") from exc


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write a run folder's record (``settings.json``, ``source.json``) whole or not at all: one cut
    short by a full disk stopped every later run continuing the folder with a JSON traceback."""
    from core.io import atomic_output

    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1), encoding="utf-8")


def stage_progress(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Step, seconds and machine of each stage's checkpoint in ``run_dir``."""
    out: dict[str, dict[str, Any]] = {}
    for role in ROLES:
        path = Path(run_dir) / f"{role}.json"
        if path.is_file():
            meta = json.loads(path.read_text(encoding="utf-8"))
            out[role] = {k: meta.get(k) for k in ("step", "seconds", "machine")}
    return out


def describe_machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA), torch {torch.__version__}"
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}"

