"""The U-Net and its checkpoint format (written by `train`; read by `infer`, `export`, registry).

Owns building the segmentation-models-pytorch `Unet` from the config (never downloading weights)
and the checkpoint file: weights plus a JSON model card (architecture, classes, normalisation,
calibration, tile size, training data hash, metrics) so that inference needs nothing else, and
optionally the full training state for resuming. Checkpoints are written atomically and read with
`torch.load(weights_only=True)`: nothing in them is unpickled as code.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import segmentation_models_pytorch as smp
import torch
from pydantic import ValidationError
from torch import nn

from pipeline import __version__
from pipeline.config import Config, ModelConfig, NormaliseConfig, config_to_dict
from pipeline.config.stages import TrainSettings
from pipeline.core.atomic import atomic_output
from pipeline.core.errors import CheckpointError, one_line

CARD_FORMAT = 1
MAX_TILE = 8192  # largest training tile a card may name (pixels)


class FullResolutionHead(nn.Module):
    """smp's Unet with a segmentation head that also sees the input at full resolution.

    smp's encoders start with a stride-2 stem and its decoder drops the full-resolution skip, so
    the last decoder stage only has upsampled features; tritium clusters are a few pixels wide.
    The head convolves the decoder output concatenated with the input image."""

    def __init__(self, unet: smp.Unet, cfg: ModelConfig, n_classes: int) -> None:
        super().__init__()
        unet.segmentation_head = nn.Identity()
        self.unet = unet
        width = cfg.head_channels
        self.head = nn.Sequential(
            nn.Conv2d(cfg.decoder_channels[-1] + cfg.in_channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, n_classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.unet(x), x], dim=1))


# what torch.load raises for a truncated, corrupt or foreign file (weights_only refuses pickled
# objects with UnpicklingError; a damaged archive is a RuntimeError of its zip reader)
TORCH_LOAD_ERRORS = (
    pickle.UnpicklingError,
    RuntimeError,
    EOFError,
    OSError,
    ValueError,
    zipfile.BadZipFile,
)


def build_model(cfg: ModelConfig, n_classes: int) -> nn.Module:
    unet = smp.Unet(
        encoder_name=cfg.encoder,
        encoder_depth=cfg.depth,
        encoder_weights=None,
        decoder_channels=list(cfg.decoder_channels),
        in_channels=cfg.in_channels,
        classes=n_classes,
    )
    return FullResolutionHead(unet, cfg, n_classes) if cfg.head == "full_resolution" else unet


def model_card(
    config: TrainSettings | Config,
    data_hash: str,
    metrics: dict[str, float | None],
    training_priors: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Everything inference needs to use the weights, and where they came from; with the
    training's cluster priors per class (what label-shift correction starts from)."""
    full = config_to_dict(config)
    return {
        "format": CARD_FORMAT,
        "pipeline_version": __version__,
        "architecture": {"name": "segmentation_models_pytorch.Unet", **full["model"]},
        "classes": list(config.classes),
        "normalise": full["normalise"],
        "calibrate": full["calibrate"],
        "tile_size": config.tiles.size,
        "training_data_hash": data_hash,
        "training_seed": config.train.seed,
        "initialised_from": config.train.init,
        "metrics": metrics,
        **({"training_priors": training_priors} if training_priors else {}),
    }


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model under a DistributedDataParallel (or compiled) wrapper."""
    return getattr(model, "module", model)


def save_checkpoint(
    path: str | Path, model: nn.Module, card: dict[str, Any], training: dict[str, Any] | None = None
) -> None:
    """Write weights, card and (optionally) training state atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"state_dict": unwrap(model).state_dict(), "card": json.dumps(card)}
    if training is not None:
        payload["training"] = training
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint file safely (weights_only); one-line CheckpointError on any problem.
    A shipped model's name is resolved to its file first (pipeline/network/shipped.py)."""
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except TORCH_LOAD_ERRORS as exc:
        message = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"{path}: not a readable checkpoint ({message})") from None
    if not isinstance(payload, dict) or not {"state_dict", "card"} <= payload.keys():
        raise CheckpointError(f"{path}: not a pipeline checkpoint (no state_dict and card)")
    try:
        payload["card"] = json.loads(payload["card"])
    except (TypeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: model card is not valid JSON") from None
    return payload


CARD_KEYS = ("format", "architecture", "classes", "normalise", "tile_size")


def check_card(path: str | Path, card: Any) -> dict[str, Any]:
    """The card of a checkpoint, checked: format version, required keys, classes, tile size,
    normalisation; a CheckpointError names the file and the first problem."""
    if not isinstance(card, dict):
        raise CheckpointError(f"{path}: model card is {type(card).__name__}, not a mapping")
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise CheckpointError(
            f"{path}: model card lacks {missing} (it has {sorted(card)}); not a card of "
            f"format {CARD_FORMAT}"
        )
    if card["format"] != CARD_FORMAT:
        raise CheckpointError(
            f"{path}: model card format {card['format']!r}, this pipeline reads format "
            f"{CARD_FORMAT} (pipeline {__version__})"
        )
    classes = card["classes"]
    if not (
        isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes)
    ):
        raise CheckpointError(f"{path}: model card classes {classes!r} are not a list of names")
    tile = card["tile_size"]
    if not (isinstance(tile, int) and 0 < tile <= MAX_TILE):
        raise CheckpointError(f"{path}: model card tile_size {tile!r} is not in 1..{MAX_TILE}")
    try:
        NormaliseConfig(**card["normalise"])
    except (ValidationError, TypeError) as exc:  # not a mapping, or not a normalisation
        raise CheckpointError(
            f"{path}: model card normalise is invalid ({one_line(exc)})"
        ) from None
    return card


def model_config_from_card(card: dict[str, Any]) -> ModelConfig:
    arch = {k: v for k, v in card["architecture"].items() if k != "name"}
    return ModelConfig(**arch)


def _build_from_card(path: str | Path, card: dict[str, Any]) -> nn.Module:
    try:
        arch = model_config_from_card(card)
    except (ValidationError, TypeError, AttributeError) as exc:  # not a mapping of the keys
        raise CheckpointError(
            f"{path}: model card architecture is invalid ({one_line(exc)})"
        ) from None
    try:
        return build_model(arch, len(card["classes"]))
    except (KeyError, ValueError, RuntimeError) as exc:  # smp: unknown encoder, bad depth
        raise CheckpointError(
            f"{path}: cannot build the card's architecture (encoder {arch.encoder!r}): "
            f"{type(exc).__name__}: {one_line(exc)}"
        ) from None


def _check_finite_weights(path: str | Path, state_dict: dict[str, Any]) -> None:
    for name, tensor in state_dict.items():
        floating = torch.is_tensor(tensor) and tensor.is_floating_point()
        if floating and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(
                f"{path}: weights are not finite ({bad} NaN/inf values in {name!r}); a "
                "diverged training? use an earlier checkpoint"
            )


def model_card_of(path: str | Path) -> dict[str, Any]:
    """The checked card of a checkpoint, without building its network."""
    return check_card(path, load_checkpoint(path)["card"])


def load_model(
    path: str | Path, classes: list[str] | None = None, in_channels: int | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Build the model a checkpoint describes, load its weights, check card, classes, inputs and
    that every weight is finite."""
    payload = load_checkpoint(path)
    card = check_card(path, payload["card"])
    if classes is not None and list(card["classes"]) != list(classes):
        raise CheckpointError(
            f"{path}: model classes {card['classes']} do not match expected {list(classes)}"
        )
    model = _build_from_card(path, card)
    arch = model_config_from_card(card)
    channels = NormaliseConfig(**card["normalise"]).channels
    for what, wanted in (("its normalise.kind makes", channels), ("data has", in_channels)):
        if wanted is not None and arch.in_channels != wanted:
            raise CheckpointError(
                f"{path}: model takes {arch.in_channels} input channels, {what} {wanted}"
            )
    state_dict = payload["state_dict"]
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path}: state_dict is {type(state_dict).__name__}, not a mapping")
    _check_finite_weights(path, state_dict)
    try:  # float16 weights of a shipped model are cast to the model's float32 on loading
        result = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as exc:
        message = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"{path}: weights do not fit the architecture ({message})") from None
    _check_missing(path, result.missing_keys, result.unexpected_keys, card)
    return model, card


def _check_missing(path: str | Path, missing: list[str], unexpected: list[str], card: dict) -> None:
    """Every weight present, but those the card lists as never used (a shipped model drops the
    encoder stages a shallower U-Net does not run)."""
    unused = set(card.get("unused_weights", []))
    lacking = [key for key in missing if key not in unused]
    if lacking or unexpected:
        raise CheckpointError(
            f"{path}: weights do not fit the architecture (missing {lacking[:3]}"
            f"{'...' if len(lacking) > 3 else ''}, unexpected {unexpected[:3]})"
        )
