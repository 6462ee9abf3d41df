"""Resumable training checkpoints without pickle.

A checkpoint is two files written atomically side by side: ``<stem>.safetensors`` holds the
network's state dict (``model.*``) and the Adam moments (``optim.<i>.exp_avg`` /
``optim.<i>.exp_avg_sq``), ``<stem>.json`` holds everything else (step, optimizer settings, loss
history, config). Like weights bundles, nothing here can execute code when loaded.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from core.errors import OutputError, TrainingError

#: The metadata key of ``<stem>.safetensors`` holding the checkpoint's state (the .json's content).
STATE_KEY = "lbsmatte_state"


#: The private folder a checkpoint file is written in before it is renamed into place:
#: ``.<name>.tmp-XXXXXXXX`` beside it (``.background.safetensors.tmp-k3j9x2ab``).
_TEMP_FOLDER = re.compile(r"^\..+\.tmp-[a-z0-9_]{8}$")


def _atomic_write_bytes(path: Path, write: Any) -> None:
    """``write(tmp)`` then rename ``tmp`` over ``path``. A full disk (an :class:`OSError`, or
    safetensors' error saying so) is an :class:`OutputError` naming ``path``; ``path`` stays.

    ``tmp`` lies in a private folder beside ``path`` (see :data:`_TEMP_FOLDER`), with whatever the
    writer makes beside it (safetensors 0.5 and later write through a ``.tmpXXXXXX`` file of their
    own): a run killed meanwhile (SIGKILL, after a farm's grace period) leaves that one folder, and
    the next run on the run folder removes it (:func:`remove_stale_temps`)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write the checkpoint {path}: {exc.strerror or exc}") from exc
    tmp = os.path.join(folder, f".{path.name}")
    try:
        write(tmp)
        # safetensors makes it 0600: a run folder one user started must stay readable
        # by another continuing it (a TD after the farm's user), as the bundle's files are.
        from core.io import replace_file, set_default_mode

        set_default_mode(tmp)
        replace_file(tmp, path)
    except (OSError, SafetensorError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OutputError(f"cannot write the checkpoint {path}: {cause}") from exc
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)


def remove_stale_temps(stems: Iterable[Path]) -> list[Path]:
    """Remove the private folders of writes of the checkpoints ``stems`` (:func:`_atomic_write_bytes`)
    that a run killed with SIGKILL left; returns them. A run folder is one run's: called as a run
    starts on it, before it writes anything, when no write of its own can be under way."""
    removed = []
    for stem in stems:
        for path in (stem.with_suffix(".safetensors"), stem.with_suffix(".json")):
            try:
                entries = list(path.parent.glob(f".{glob.escape(path.name)}.tmp-*"))
            except OSError:
                continue
            for entry in entries:
                if _TEMP_FOLDER.match(entry.name) and entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                    if not entry.exists():
                        removed.append(entry)
    return removed


def save_checkpoint(
    stem: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any], *, compact: bool = False,
    ema: nn.Module | None = None,
) -> None:
    """Write ``stem.safetensors`` and ``stem.json`` (the JSON last).

    ``compact`` leaves the Adam moments out (a finished stage: a third of the size; training it
    further restarts the moments, which Adam recovers from within a few dozen steps).
    ``ema``: the running average of the weights (``ema.*``), kept so that a resumed run goes on
    averaging where it stopped.
    """
    tensors: dict[str, torch.Tensor] = {
        f"model.{k}": v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()
    }
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().to("cpu").contiguous() for k, v in ema.state_dict().items()})
    params = [p for g in optimizer.param_groups for p in g["params"]]
    steps = []
    for i, p in enumerate(params):
        st = optimizer.state.get(p, {})
        if "exp_avg" in st and not compact:
            tensors[f"optim.{i}.exp_avg"] = st["exp_avg"].detach().to("cpu").contiguous()
            tensors[f"optim.{i}.exp_avg_sq"] = st["exp_avg_sq"].detach().to("cpu").contiguous()
            steps.append(float(st["step"]))
        else:
            steps.append(0.0)
    meta = dict(state)
    meta["optimizer"] = {
        "param_groups": [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups],
        "steps": steps,
    }
    tensors_path = stem.with_suffix(".safetensors")
    # The state travels inside the tensors' file too (its metadata), written in the same rename:
    # a .json write cut short after the tensors were replaced cannot pair new weights with an
    # old step. The .json beside it is for people and tools reading a run folder.
    record = {STATE_KEY: json.dumps(meta, default=float)}
    _atomic_write_bytes(tensors_path, lambda tmp: save_file(tensors, tmp, metadata=record))
    _atomic_write_bytes(
        stem.with_suffix(".json"),
        lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=1, default=float), encoding="utf-8"),
    )


def load_checkpoint(
    stem: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, ema: nn.Module | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Restore ``model`` (and ``optimizer``, and ``ema`` when the checkpoint has one) from ``stem``;
    return the saved state dict. ``meta["has_ema"]`` says whether an average was restored.

    ``config``: the network configuration ``model`` was built from; a checkpoint recording another
    (an earlier LBSMatte's networks, of other sizes or computing otherwise with the same weights)
    is a :class:`TrainingError` naming the differences, before any weight is loaded: continued,
    it would be trained on as another network than the one it learnt as."""
    tensors_path = str(stem.with_suffix(".safetensors"))
    try:
        with safe_open(tensors_path, framework="pt") as handle:
            record = (handle.metadata() or {}).get(STATE_KEY)
        # Checkpoints written before the state went into the tensors' file have it in the .json only.
        where = tensors_path if record is not None else str(stem.with_suffix(".json"))
        meta = _parse_state(record if record is not None else Path(where).read_text(encoding="utf-8"),
                            where, len([p for g in optimizer.param_groups for p in g["params"]]) if optimizer else None,
                            config)
        tensors = load_file(tensors_path)
    except (SafetensorError, OSError, UnicodeDecodeError) as exc:
        raise TrainingError(f"cannot read the checkpoint {tensors_path}: {exc}") from exc
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(model_state, strict=True)
    ema_state = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
    meta["has_ema"] = bool(ema_state) and ema is not None
    if ema is not None and ema_state:
        ema.load_state_dict(ema_state, strict=True)
    if optimizer is not None and "optimizer" in meta:
        saved = meta["optimizer"]
        for group, saved_group in zip(optimizer.param_groups, saved["param_groups"], strict=True):
            group.update(saved_group)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        for i, p in enumerate(params):
            if f"optim.{i}.exp_avg" in tensors:
                optimizer.state[p] = {
                    "step": torch.tensor(saved["steps"][i]),
                    "exp_avg": tensors[f"optim.{i}.exp_avg"].to(p.device),
                    "exp_avg_sq": tensors[f"optim.{i}.exp_avg_sq"].to(p.device),
                }
    return meta


def _parse_state(text: str, where: str, n_params: int | None, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint's state from its JSON (never evaluated), checked for what
    :func:`load_checkpoint` takes from it: a step, the network's configuration (``config`` when
    given: before the optimizer's, whose parameters another network has other numbers of), and
    optimizer settings that are numbers (no ``params``, which would replace the optimizer's
    tensors) with one step per parameter."""
    from core.weights import json_loads

    def bad(why: str) -> TrainingError:
        return TrainingError(f"the checkpoint state in {where} is not one LBSMatte wrote: {why}")

    try:
        meta = json_loads(text)
    except ValueError as exc:
        raise bad(f"not JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise bad("not a JSON object")
    step = meta.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise bad(f"step {step!r}")
    recorded = meta.get("config")
    if config is not None and isinstance(recorded, dict):
        from core.nets.config import config_differences

        differences = config_differences(recorded, config)
        if differences:
            raise TrainingError(
                f"the checkpoint {where} holds a {recorded.get('role', 'network')} network of another configuration "
                f"than this run's ({'; '.join(differences)}): an earlier LBSMatte's, or another run's. Continue it "
                f"with the LBSMatte that made it, or give this run a folder of its own (--run-dir), or remove "
                f"{Path(where).parent} to start it again")
    if "optimizer" in meta:
        saved = meta["optimizer"]
        groups = saved.get("param_groups") if isinstance(saved, dict) else None
        steps = saved.get("steps") if isinstance(saved, dict) else None
        plain = (int, float, bool, str, type(None))
        if not isinstance(groups, list) or not all(
            isinstance(g, dict) and "params" not in g
            and all(isinstance(v, plain) or (isinstance(v, list) and all(isinstance(x, (int, float)) for x in v))
                    for v in g.values())
            for g in groups
        ):
            raise bad("its optimizer settings are not plain numbers")
        if not isinstance(steps, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                  for x in steps) or (n_params is not None and len(steps) != n_params):
            raise bad("its optimizer steps are not one number per parameter")
    return meta


def checkpoint_exists(stem: Path) -> bool:
    return stem.with_suffix(".json").is_file() and stem.with_suffix(".safetensors").is_file()
