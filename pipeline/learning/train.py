"""Training of the U-Net (the `train` stage).

Owns the training loop: smp Dice plus cross-entropy (or focal) loss for very sparse classes,
AdamW with a one-cycle schedule, early stopping on the validation macro IoU of the signal classes,
automatic device choice with bf16/fp16 autocast and channels_last on GPU, a checkpoint every
epoch holding everything needed to resume exactly (`--resume`), DDP under `torchrun` (gloo on CPU,
NCCL on GPU; only rank 0 validates, logs and writes), and the MLflow record of the run.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import segmentation_models_pytorch as smp
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from pipeline.config import Config, TrainConfig
from pipeline.config.stages import TrainSettings
from pipeline.core import hashing
from pipeline.core.errors import TrainingDiverged
from pipeline.core.geometry import IGNORE
from pipeline.core.lock import exclusive
from pipeline.core.stage import INPUT, OUTPUT, Stage, file_flag, files_in, key_flag
from pipeline.io import atomic_output
from pipeline.learning import temperature
from pipeline.learning.data import Data, TrainFiles, build_data, training_priors
from pipeline.learning.resume import TrainState, initial_weights, one_cycle, resume, rng_states
from pipeline.network.device import Distributed, autocast_dtype, init_distributed, pick_device
from pipeline.network.model import (
    build_model,
    load_checkpoint,
    load_model,
    model_card,
    save_checkpoint,
    unwrap,
)
from pipeline.results.metrics import class_metrics, confusion_matrix
from pipeline.tracking import runs

LOCK = "train.lock"  # held in OUT while a run writes it (pipeline/core/lock.py)

# ---------------------------------------------------------------- set-up


def seed_everything(seed: int) -> None:
    random.seed(seed)  # numpy draws all use explicit, seeded Generators
    torch.manual_seed(seed)


class SegmentationLoss(nn.Module):
    """smp Dice (multiclass, from logits) plus weighted cross-entropy or focal loss."""

    def __init__(self, cfg: TrainConfig, classes: Sequence[str]) -> None:
        super().__init__()
        self.dice = smp.losses.DiceLoss(mode="multiclass", ignore_index=IGNORE)
        if cfg.loss == "dice_ce":  # the weights by name, in the network's class order
            weights = [cfg.class_weights[name] for name in classes]
            weight = torch.tensor(weights, dtype=torch.float32)
            self.pixel = nn.CrossEntropyLoss(weight=weight, ignore_index=IGNORE)
        else:
            self.pixel = smp.losses.FocalLoss(mode="multiclass", ignore_index=IGNORE)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice(logits, target) + self.pixel(logits, target)


# ---------------------------------------------------------------- loop


class Trainer:
    def __init__(
        self, config: TrainSettings | Config, world: Distributed, device: torch.device
    ) -> None:
        cfg = config.train
        self.config, self.world, self.device = config, world, device
        self.amp = autocast_dtype(cfg.amp, device)
        model = build_model(config.model, len(config.classes)).to(device)
        if device.type == "cuda" and cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if world.world > 1:
            ids = [device.index] if device.type == "cuda" else None
            if device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            # smp builds the whole encoder; stages deeper than `depth` get no gradient
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=ids, find_unused_parameters=config.model.depth < 5
            )
        self.model = model
        self.loss = SegmentationLoss(cfg, config.classes).to(device)
        self.optimizer: torch.optim.Optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.scheduler = one_cycle(self.optimizer, cfg)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp == torch.float16)

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.device.type == "cuda" and self.config.train.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None)

    def train_epoch(self, loader: DataLoader, epoch: int, progress: bool) -> dict[str, float]:
        self.model.train()
        total, steps, n_tiles, start = 0.0, 0, 0, time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch}", disable=not (progress and self.world.main))
        for x, y in bar:
            x, y = self._inputs(x), y.to(self.device, non_blocking=True)
            with self._autocast():
                loss = self.loss(self.model(x), y)
            if not self.scaler.is_enabled() and not bool(torch.isfinite(loss.detach())):
                raise TrainingDiverged(
                    f"the training loss is {float(loss.detach())} at epoch {epoch}, step "
                    f"{steps + 1}: the run diverged (train.lr {self.config.train.lr:g}); lower "
                    "train.lr, or --resume from the last epoch's OUT/last.pt"
                )
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            total, steps, n_tiles = total + float(loss.detach()), steps + 1, n_tiles + len(x)
            rate = n_tiles * self.world.world / (time.perf_counter() - start)
            bar.set_postfix(loss=f"{total / steps:.4f}", tiles_s=f"{rate:.1f}")
        elapsed = time.perf_counter() - start
        return {
            "train_loss": total / max(steps, 1),
            "tiles_per_s": n_tiles * self.world.world / elapsed,
        }

    @torch.inference_mode()
    def validate(self, loader: DataLoader) -> dict[str, float]:
        model = unwrap(self.model)
        model.eval()
        n_classes = len(self.config.classes)
        confusion, total, batches = np.zeros((n_classes, n_classes), np.int64), 0.0, 0
        for x, y in loader:
            x, y = self._inputs(x), y.to(self.device)
            with self._autocast():
                logits = model(x)
            total, batches = total + float(self.loss(logits.float(), y)), batches + 1
            pred = logits.argmax(dim=1).cpu().numpy()
            confusion += confusion_matrix(y.cpu().numpy(), pred, n_classes)
        loss = total / batches if batches else float("nan")  # an empty set has no loss
        return {"val_loss": loss, **class_metrics(confusion, self.config.classes)}

    def state_dicts(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dicts(self, training: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(training["optimizer"])
        self.scheduler.load_state_dict(training["scheduler"])
        self.scaler.load_state_dict(training["scaler"])


def _sync_buffers(model: nn.Module, world: Distributed) -> None:
    """BatchNorm statistics as rank 0 has them: DDP syncs buffers only before each forward."""
    if world.world > 1:
        for buffer in unwrap(model).buffers():
            dist.broadcast(buffer, src=0)


def _stop_everywhere(stop: bool, world: Distributed) -> bool:
    """Rank 0 decides (early stopping, time budget); every rank follows."""
    if world.world == 1:
        return stop
    flag = torch.tensor([int(stop)])
    dist.broadcast(flag, src=0)
    return bool(flag.item())


@dataclass
class TrainResult:
    out: Path
    state: TrainState
    model: nn.Module


def train(
    config: TrainSettings | Config,
    frames: Sequence[str | Path],
    val_frames: Sequence[str | Path],
    out: str | Path,
    progress: bool = True,
) -> TrainResult:
    """Train on the labelled `frames` (and the simulation stream, `stream.weight`), validate on
    `val_frames` (none: a split of `frames` by frame), write checkpoints into `out`; resumable
    (`train.resume`); returns the final model and state."""
    cfg = config.train
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    world = init_distributed(cfg.device != "cpu" and torch.cuda.is_available())
    device = pick_device(cfg.device, "train.device", world.local_rank)
    out = Path(out)
    held = exclusive(out, LOCK, "this training run's folder") if world.main else nullcontext()
    with held:  # one run writes a folder at a time
        return _train(config, world, device, frames, val_frames, out, progress)


def _train(config, world, device, frames, val_frames, out: Path, progress: bool) -> TrainResult:
    cfg = config.train
    last = out / "last.pt"
    resuming = cfg.resume and last.is_file()
    initial = initial_weights(config) if cfg.init and not resuming else None
    seed_everything(cfg.seed)
    data = build_data(config, TrainFiles(list(frames), list(val_frames)), world)
    priors = training_priors(data, cfg.prior_tiles, config.classes) if world.main else {}
    trainer = Trainer(config, world, device)
    if initial is not None:  # the optimiser and schedule start afresh
        unwrap(trainer.model).load_state_dict(initial)
    state = resume(trainer, last, config) if resuming else TrainState()
    tags = {
        "data_hash": data.data_hash,
        "seed": str(cfg.seed),
        "device": str(device),
        "world_size": str(world.world),
        **({"init": cfg.init} if cfg.init else {}),
        "frames": ",".join(map(str, frames)),
        "val_frames": ",".join(map(str, val_frames)),
        "out": str(out),
    }
    with runs.tracked_run(config, "train", tags, run_id=state.run_id, active=world.main) as tracker:
        if state.run_id is None:  # a resumed run has its datasets
            _log_datasets(tracker, frames, val_frames)
        state.run_id = tracker.run_id
        try:
            state = _loop(config, out, trainer, data, state, tracker, progress, priors)
            if world.main and (out / "best.pt").is_file():  # probabilities as often right as sure
                held_out = ",".join(Path(p).name for p in val_frames)
                found = temperature.calibrate_checkpoint(
                    out / "best.pt", out / "best.pt", data.val, device, held_out
                )
                tracker.log_metrics({f"calibration_{k}": v for k, v in found.items()
                                     if isinstance(v, float)}, step=state.epoch)  # fmt: skip
        finally:  # what a stopped run made is logged too
            if world.main:
                _finish(config, out, state, tracker)
    return TrainResult(out, state, unwrap(trainer.model))


def _loop(
    config, out: Path, trainer: Trainer, data: Data, state: TrainState, tracker, progress, priors
) -> TrainState:
    cfg, world = config.train, trainer.world
    for epoch in range(state.epoch, cfg.epochs):
        started = time.monotonic()
        data.sampler.set_epoch(epoch)
        metrics = trainer.train_epoch(data.train, epoch, progress)
        _sync_buffers(trainer.model, world)
        stop = False
        if world.main:
            metrics.update(trainer.validate(data.val))
            state.history.append({"epoch": epoch, **metrics})
            score = metrics["macro_iou"]
            # no validation score (an empty set): the latest epoch is the best one known
            improved = score > state.best_metric if math.isfinite(score) else True
            state.bad_epochs = 0 if improved else state.bad_epochs + 1
            state.epoch, state.elapsed_s = epoch + 1, state.elapsed_s + time.monotonic() - started
            card = model_card(config, data.data_hash, _card_metrics(metrics), priors)
            if improved:
                state.best_metric, state.best_epoch = score, epoch
                save_checkpoint(out / "best.pt", trainer.model, card)
            training = {
                **trainer.state_dicts(),
                "rng": rng_states(),
                "state": json.dumps(asdict(state)),
            }
            save_checkpoint(out / "last.pt", trainer.model, card, training)
            tracker.log_metrics(metrics, step=epoch)
            if progress:
                tqdm.write(_summary(epoch, metrics, config.classes))
            over_time = cfg.max_minutes is not None and state.elapsed_s > 60 * cfg.max_minutes
            stop = state.bad_epochs >= cfg.patience or over_time
        if _stop_everywhere(stop, world):
            break
    return state


def _summary(epoch: int, metrics: dict[str, float], classes: list[str]) -> str:
    ious = " ".join(f"{c} {metrics[f'iou_{c}']:.3f}" for c in classes[1:])
    return (
        f"epoch {epoch}: train loss {metrics['train_loss']:.4f}, val loss "
        f"{metrics['val_loss']:.4f}, macro IoU {metrics['macro_iou']:.3f} ({ious}), "
        f"{metrics['tiles_per_s']:.1f} tiles/s"
    )


def _card_metrics(metrics: dict[str, float]) -> dict[str, float | None]:
    keep = ("macro_iou", "val_loss")
    return {
        k: round(v, 5) if math.isfinite(v) else None
        for k, v in metrics.items()
        if k in keep or k.startswith("iou_")
    }


def _log_datasets(
    tracker: runs.Tracker, frames: Sequence[str | Path], val_frames: Sequence[str | Path]
) -> None:
    """Each training and validation file as an MLflow dataset, with its SHA-256."""
    for context, paths in (("training", frames), ("validation", val_frames)):
        for path in paths:
            tracker.log_dataset(path, hashing.file_sha256(path), context)


def _finish(
    config: TrainSettings | Config, out: Path, state: TrainState, tracker: runs.Tracker
) -> None:
    """Model card, curves and the best checkpoint, next to the weights and in MLflow."""
    from pipeline.results.plots import training_curves

    if not (out / "best.pt").is_file():
        return
    card = load_checkpoint(out / "best.pt")["card"]
    with atomic_output(out / "model_card.json") as tmp:
        tmp.write_text(json.dumps(card, indent=2))
    if state.history:
        training_curves(state.history, config.classes, out / "training_curves.png")
        tracker.log_artifact(out / "training_curves.png", "plots")
    tracker.log_dict(card, "model_card.json")
    tracker.log_artifact(out / "best.pt", "checkpoint")
    if tracker.active and config.tracking.log_models:
        _register(config, out / "best.pt", tracker)


def _register(config: TrainSettings | Config, best: Path, tracker: runs.Tracker) -> None:
    """The best checkpoint as an MLflow model, registered (pipeline/tracking/registry.py)."""
    from pipeline.tracking import registry

    model, card = load_model(best)
    with runs.store_lock(config.tracking.uri):
        version = registry.log_model(config.tracking, model, card, hashing.file_sha256(best))
    tracker.set_tags({"model_version": version})


def run(
    settings: TrainSettings,
    out: str | Path,
    frames: Sequence[str | Path] = (),
    val_frames: Sequence[str | Path] = (),
) -> str:
    """The `train` stage: `train`, then what it made, in words."""
    result = train(settings, frames, val_frames, out)
    state, best = result.state, result.out / "best.pt"
    lines = [
        f"best macro IoU {state.best_metric:.4f} at epoch {state.best_epoch}; model: {best}"
        if not math.isnan(state.best_metric)
        else f"no validation score (empty validation set); model: {best}"
    ]
    unused = [name for name in settings.train.class_weights if name not in settings.classes]
    if unused:
        lines.append(f"train.class_weights: not used for {unused} (not classes of this config)")
    if settings.tracking.enabled and state.run_id:
        uri = settings.tracking.uri
        lines.append(f"MLflow run {state.run_id} in {uri} (mlflow ui --backend-store-uri {uri})")
    return "\n".join(lines)


STAGE = Stage(
    "train",
    "train the U-Net on labelled frame files",
    "Reads: labelled frame files (HDF5, ROOT or FITS), calibrated to electrons. Writes: "
    "OUT/last.pt (every epoch, with the state to resume), OUT/best.pt (weights and model "
    "card), OUT/model_card.json, OUT/training_curves.png, and an MLflow run.",
    run,
    TrainSettings,
    (
        file_flag("--frames", "training frame files", INPUT, nargs="*", required=False),
        file_flag("--val-frames", "validation frame files", INPUT, nargs="*", required=False),
        file_flag(
            "--out",
            "output directory",
            OUTPUT,
            beside=files_in(
                "best.pt", "last.pt", "model_card.json", "training_curves.png", "train.lock"
            ),
        ),
        key_flag("--resume", "train.resume", "continue from OUT/last.pt", action="store_true"),
        key_flag("--init", "train.init", "checkpoint to start from (fine-tuning)", role=INPUT),
        key_flag("--epochs", "train.epochs", "number of epochs", type=int),
        key_flag("--seed", "train.seed", "random seed", type=int),
        key_flag("--device", "train.device", "auto, cpu or cuda"),
        key_flag("--tracking-uri", "tracking.uri", "MLflow tracking URI"),
    ),
    tracks=True,
)
