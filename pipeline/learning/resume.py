"""Where a training run starts: afresh, from a run's own last epoch (`train.resume`), or from
another model's weights (`train.init`, fine-tuning).

Owns the state a checkpoint carries beyond its weights (`TrainState`, the optimiser, schedule and
random states) and the checks that a checkpoint fits this config before any data is read: the
same network (architecture, classes, input normalisation) for both routes. A resumed run takes
the settings it is given where that is well defined: more (or fewer) epochs or steps stretch the
one-cycle schedule from the step reached; another network is refused in one line.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from pipeline.config import Config, ConfigError, TrainConfig
from pipeline.config.stages import TrainSettings
from pipeline.network.model import CheckpointError, load_checkpoint, load_model, unwrap
from pipeline.network.model import model_config_from_card as card_model
from pipeline.network.shipped import resolve_model


@dataclass
class TrainState:
    """What a checkpoint must carry, beyond weights and optimiser, to resume exactly."""

    epoch: int = 0  # next epoch to run
    best_metric: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0
    elapsed_s: float = 0.0
    run_id: str | None = None
    history: list[dict[str, float]] = field(default_factory=list)


class Resumable(Protocol):
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler

    def load_state_dicts(self, training: dict[str, Any]) -> None: ...


def rng_states() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "python": json.dumps(random.getstate())}


def _restore_rng(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    version, internal, gauss = json.loads(states["python"])
    random.setstate((version, tuple(internal), gauss))


WIDENED = ("in_channels", "condition")  # what a conditioned network may add to its starting one


def check_same_network(
    path: Path, card: dict[str, Any], config: TrainSettings | Config, widen: bool = False
) -> None:
    """CheckpointError (one line) unless the checkpoint's card has this config's architecture
    and input normalisation (its classes are checked where the weights load); with `widen`,
    the config's conditioning channels may extend the checkpoint's (`widened`)."""
    pairs = (
        ("model", card_model(card).model_dump(), config.model.model_dump()),
        ("normalise", card["normalise"], config.normalise.model_dump()),
    )
    found_condition = list(card["normalise"].get("condition", []))
    wanted_condition = list(config.normalise.condition)
    if widen and wanted_condition[: len(found_condition)] != found_condition:
        raise CheckpointError(
            f"{path}: normalise.condition is {found_condition} in the checkpoint and "
            f"{wanted_condition} in the config; a network can only gain channels after its own"
        )
    for section, found, wanted in pairs:
        for key, value in wanted.items():
            if widen and key in WIDENED:
                continue
            if found.get(key, [] if key == "condition" else None) != value:
                raise CheckpointError(
                    f"{path}: {section}.{key} is {found.get(key)!r} in the checkpoint and "
                    f"{value!r} in the config; it can only continue the same network"
                )


def initial_weights(config: TrainSettings | Config) -> dict[str, torch.Tensor]:
    """The weights of `train.init` (fine-tuning), checked before any data is read."""
    assert config.train.init is not None  # called only to fine-tune
    path = resolve_model(config.train.init, config.release.dir)
    model, card = load_model(path)
    found, wanted = list(card["classes"]), list(config.classes)
    if wanted[: len(found)] != found:
        raise CheckpointError(
            f"{path}: model classes {found}, config classes {wanted}; fine-tuning keeps a "
            "network's classes in their order and may only add new ones after them"
        )
    check_same_network(path, card, config, widen=True)
    return with_classes(widened(model.state_dict(), config.model.in_channels), len(wanted))


NEW_CLASS_BIAS = -3.0  # a class a network gains starts as background x e^-3 (never chosen)


def with_classes(state: dict[str, torch.Tensor], n_classes: int) -> dict[str, torch.Tensor]:
    """`state` with its segmentation head giving `n_classes` logits: each added class starts as
    a copy of the background's (class 0) less `NEW_CLASS_BIAS`, so the grown network labels
    every pixel as before until training teaches it the new class."""
    out = dict(state)
    last = [k for k, v in state.items() if k.endswith(".weight") and v.ndim == 4][-1]
    weight, bias = state[last], state[last.removesuffix("weight") + "bias"]
    extra = n_classes - weight.shape[0]
    if extra > 0:
        out[last] = torch.cat([weight, weight[:1].repeat(extra, 1, 1, 1)])
        out[last.removesuffix("weight") + "bias"] = torch.cat(
            [bias, bias[:1].repeat(extra) + NEW_CLASS_BIAS]
        )
    return out


def widened(state: dict[str, torch.Tensor], in_channels: int) -> dict[str, torch.Tensor]:
    """`state` with its first convolution taking `in_channels`: the added input channels (a
    conditioned network's descriptors) start with zero weights, so the widened network computes
    what the checkpoint did until training teaches it to use them."""
    out = dict(state)
    for name, weight in state.items():
        if name.endswith("encoder.conv1.weight") and weight.ndim == 4:
            extra = in_channels - weight.shape[1]
            if extra > 0:
                zeros = weight.new_zeros(weight.shape[0], extra, *weight.shape[2:])
                out[name] = torch.cat([weight, zeros], dim=1)
            break
    return out


def resume(trainer: Resumable, path: Path, config: TrainSettings | Config) -> TrainState:
    """The run of `path` (OUT/last.pt) continued: weights, optimiser, schedule and random
    states restored; a changed number of epochs or steps stretches the schedule from the step
    reached."""
    payload = load_checkpoint(path)
    training = payload.get("training")
    if training is None:
        raise ConfigError(f"{path}: checkpoint has no training state to resume from")
    check_same_network(path, payload["card"], config)
    if list(payload["card"]["classes"]) != list(config.classes):
        raise CheckpointError(
            f"{path}: classes {payload['card']['classes']} in the checkpoint and "
            f"{list(config.classes)} in the config; --resume continues the same network"
        )
    unwrap(trainer.model).load_state_dict(payload["state_dict"])
    trainer.load_state_dicts(training)
    _restore_rng(training["rng"])
    _stretch_schedule(trainer, config)
    return TrainState(**json.loads(training["state"]))


def one_cycle(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, done: int = 0
) -> torch.optim.lr_scheduler.LRScheduler:
    """The one-cycle schedule over `train.epochs` x `train.steps_per_epoch`, at step `done`."""
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=cfg.lr,
        total_steps=cfg.epochs * cfg.steps_per_epoch,
        pct_start=max(cfg.warmup_fraction, 1e-3),
        last_epoch=done - 1,  # the constructor takes one step: to `done`
    )


def _stretch_schedule(trainer: Resumable, config: TrainSettings | Config) -> None:
    """A one-cycle schedule over this config's epochs x steps, at the step the run reached
    (the saved schedule keeps the first run's total, and would stop a longer run)."""
    cfg, saved = config.train, trainer.scheduler
    total = cfg.epochs * cfg.steps_per_epoch
    done = int(saved.last_epoch)
    if getattr(saved, "total_steps", total) == total or done >= total:
        return  # the same schedule, or nothing left to run
    trainer.scheduler = one_cycle(trainer.optimizer, cfg, done)
