"""The MLflow model registry: the models, for analysts, and what links runs to them.

Owns logging a model as an MLflow model: the PyTorch flavour, saved as a traced graph (batch and
frame size stay free, and loading runs no pickle), a tensor signature, and the model card as its
metadata (classes, input normalisation, calibration). Each model is registered under
`tracking.registered_model` with its checkpoint file's SHA-256 as a version tag, so any run that
uses a checkpoint finds its version. Aliases: `shipped`, the newest shipped model (set by
`export`; a run that uses a shipped model no run here registered registers it, and sets the
alias only where there is none); `best`, the version with the highest mean macro
cluster F1 on the generalisation suite. A map file leads back to the inference run that wrote it
(its SHA-256 is that run's `output_sha256` tag), and so to the model version.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config.runs import TrackingConfig
from pipeline.tracking.lookup import run_that_wrote
from pipeline.tracking.runs import store_lock

SHIPPED, BEST = "shipped", "best"
# the traced graph's example input; batch and edges above 1 stay dynamic (1 would be fixed)
EXAMPLE_SHAPE = (2, 64, 64)


def signature(in_channels: int, n_classes: int) -> Any:
    """Normalised input (batch, channels, H, W) -> per-class logits (batch, classes, H, W),
    float32; H and W multiples of 2**depth."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types import Schema, TensorSpec

    def spec(channels: int, name: str) -> TensorSpec:
        return TensorSpec(np.dtype(np.float32), (-1, channels, -1, -1), name)

    return ModelSignature(
        inputs=Schema([spec(in_channels, "normalised_charge")]),
        outputs=Schema([spec(n_classes, "logits")]),
    )


def log_model(tracking: TrackingConfig, model: Any, card: Mapping[str, Any], sha256: str) -> str:
    """Log `model` in the active run as an MLflow model, register it; its version number."""
    import importlib.metadata

    import mlflow
    import mlflow.pytorch

    from pipeline.network.model import model_config_from_card

    channels = model_config_from_card(dict(card)).in_channels
    batch, height, width = EXAMPLE_SHAPE
    with _quiet("mlflow.models.model"):
        info = mlflow.pytorch.log_model(
            copy.deepcopy(model).float().eval(),
            name="model",
            signature=signature(channels, len(card["classes"])),
            input_example=np.zeros((batch, channels, height, width), np.float32),
            pip_requirements=[f"torch=={importlib.metadata.version('torch')}"],
            metadata={"card": dict(card)},
            registered_model_name=tracking.registered_model,
            serialization_format="pt2",
        )
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient(tracking_uri=tracking.uri)
    tags = {"sha256": sha256}
    if card.get("metrics", {}).get("macro_iou") is not None:
        tags["val_macro_iou"] = str(card["metrics"]["macro_iou"])
    if "release" in card:
        tags["shipped_model"] = str(card["release"]["name"])
    for key, value in tags.items():
        client.set_model_version_tag(tracking.registered_model, version, key, value)
    client.update_model_version(tracking.registered_model, version, description=_described(card))
    if not client.get_registered_model(tracking.registered_model).description:
        client.update_registered_model(tracking.registered_model, description=MODEL_DESCRIPTION)
    return version


MODEL_DESCRIPTION = (
    "U-Net (segmentation-models-pytorch) giving each pixel of a CCD frame its class: what made "
    "the charge there. Input: the calibrated charge, normalised as the card's `normalise` says; "
    "output: per-class logits. Aliases: `shipped` (the newest shipped model), `best` (the highest "
    "mean macro cluster F1 on the generalisation suite)."
)


def _described(card: Mapping[str, Any]) -> str:
    """A model version's description: its classes, training and validation score, from its card."""
    release = card.get("release") or {}
    made = f"shipped as {release['name']}; " if release.get("name") else ""
    score = card.get("metrics", {}).get("macro_iou")
    return (
        f"{made}classes {', '.join(card['classes'])}; tiles of {card.get('tile_size')} px; "
        f"training seed {card.get('training_seed')}, started from {card.get('initialised_from')};"
        f" validation macro IoU {score if score is None else round(score, 4)}"
    )


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """`logger` at ERROR for the block. MLflow re-sends the input example as a JSON serving
    request, which the PyTorch flavour cannot take for tensors; its warning would print the
    whole example into the job's log."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def set_alias(tracking: TrackingConfig, alias: str, version: str) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking.uri)
    client.set_registered_model_alias(tracking.registered_model, alias, version)


def _alias(tracking: TrackingConfig, alias: str) -> Any | None:
    """The version `alias` points at, or None."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri=tracking.uri)
    try:
        return client.get_model_version_by_alias(tracking.registered_model, alias)
    except MlflowException:
        return None


def version_of(tracking: TrackingConfig, sha256: str) -> Any | None:
    """The registered version of the checkpoint whose file has this SHA-256, or None."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking.uri)
    if not _registered(client, tracking.registered_model):
        return None
    found = client.search_model_versions(
        f"name='{tracking.registered_model}' and tags.sha256='{sha256}'"
    )
    return max(found, key=lambda v: int(v.version)) if found else None


def _registered(client: Any, name: str) -> bool:
    return bool(client.search_registered_models(f"name='{name}'"))


def register_shipped(config: Any, checkpoint: Path, sha256: str) -> Any | None:
    """The registered version of the checkpoint; a shipped model (its card has a release) is
    registered with the `shipped` alias, in a run of its own, the first time a run uses it where
    `tracking.register_shipped` asks for it. None for another model that no run here
    registered."""
    from pipeline.network.model import check_card, load_checkpoint, load_model
    from pipeline.tracking.runs import tracked_run

    tracking = config.tracking
    with store_lock(tracking.uri):
        found = version_of(tracking, sha256)
        if found is not None:
            return found
        release = "release" in check_card(checkpoint, load_checkpoint(checkpoint)["card"])
        if not (release and tracking.log_models and tracking.register_shipped):
            return None
        model, card = load_model(checkpoint)  # its own classes (an earlier model has fewer)
        tags = {"shipped_model": str(card["release"]["name"]), "sha256": sha256}
        with tracked_run(config, "register", tags):
            version = log_model(tracking, model, card, sha256)
            if _alias(tracking, SHIPPED) is None:  # `export` moves it to each new release
                set_alias(tracking, SHIPPED, version)
    return version_of(tracking, sha256)


def model_links(checkpoint: str | Path, sha256: str, version: Any | None) -> dict[str, str]:
    """Tags that tie a run to the checkpoint it used: file, SHA-256 and, where it is registered
    (`version`, from `version_of` or `register_shipped`), its version and the run that trained
    (or registered) it."""
    links = {"model": str(checkpoint), "model_sha256": sha256}
    if version is not None:
        links |= {"model_version": str(version.version), "model_run_id": str(version.run_id)}
    return links


def map_links(tracking: TrackingConfig, map_path: str | Path) -> dict[str, str]:
    """The inference run that wrote `map_path`, and its model's links; {} if none did here."""
    run = run_that_wrote(tracking, map_path)
    if run is None:
        return {}
    tags = run.data.tags
    keep = ("model_version", "model_run_id", "model_sha256")
    return {"infer_run_id": run.info.run_id, **{k: tags[k] for k in keep if k in tags}}


def mark_best(tracking: TrackingConfig, scores: Mapping[str, float], suite: str) -> str | None:
    """Tag each version in `scores` (version -> mean macro cluster F1 on the suite named
    `suite`) with its score, and point `best` at the highest version scored on that suite."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking.uri)
    name = tracking.registered_model
    for version, score in scores.items():
        client.set_model_version_tag(name, version, "suite", suite)
        client.set_model_version_tag(name, version, "suite_macro_cluster_f1", f"{score:.6f}")
    scored = client.search_model_versions(f"name='{name}' and tags.suite='{suite}'")
    if not scored:
        return None
    best = max(scored, key=lambda v: float(v.tags["suite_macro_cluster_f1"]))
    client.set_registered_model_alias(name, BEST, best.version)
    return str(best.version)
