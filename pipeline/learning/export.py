"""Making a shipped model of a training run (the `export` stage).

Owns `export_model`: weights in half precision, without the parameters a shallower U-Net never
runs (smp's ResNet encoders build all four stages whatever the depth), and a model card that says
how the model was made: config, commit, seed, steps, training data, the MLflow run, and its
scores on the generalisation suite; then an MLflow run of the shipped model, registered with the
`shipped` alias. Finding and listing shipped models is pipeline/network/shipped.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.calibration import conditioning
from pipeline.config import Config, ConfigError, load_config
from pipeline.config.stages import ExportSettings
from pipeline.config.yamlfile import load_yaml
from pipeline.core.atomic import atomic_output
from pipeline.core.errors import CheckpointError
from pipeline.core.hashing import file_sha256
from pipeline.core.stage import INPUT, Stage, file_flag, key_flag
from pipeline.learning.data import stream_priors
from pipeline.learning.stream import narrowed_stream
from pipeline.network.model import load_checkpoint, load_model, model_config_from_card
from pipeline.network.shipped import SUFFIX
from pipeline.tracking import registry
from pipeline.tracking.runs import store_lock, tracked_run


def unused_parameters(model: nn.Module, in_channels: int, size: int = 64) -> list[str]:
    """Names of the state-dict entries a forward pass never touches: the parameters that get no
    gradient, and the buffers of the modules they belong to. (Evaluation mode: the pass must not
    move BatchNorm statistics.)"""
    model = model.eval()
    model.zero_grad(set_to_none=True)
    model(torch.zeros(2, in_channels, size, size)).sum().backward()
    idle = {name for name, p in model.named_parameters() if p.grad is None}
    modules = {name.rpartition(".")[0] for name in idle}
    model.zero_grad(set_to_none=True)
    return sorted(
        key for key in model.state_dict() if key in idle or key.rpartition(".")[0] in modules
    )


def half_state_dict(model: nn.Module, drop: list[str]) -> dict[str, torch.Tensor]:
    """Parameters in float16; buffers (BatchNorm statistics: small, and their variances can
    fall below float16's range) kept as they are; `drop` left out."""
    params = {name for name, _ in model.named_parameters()}
    out = {}
    for key, tensor in model.state_dict().items():
        if key in drop:
            continue
        out[key] = tensor.half() if key in params and tensor.is_floating_point() else tensor
    return out


def _training_state(run_dir: Path) -> dict[str, Any]:
    """What last.pt says of the run: epochs run, best epoch, wall time, MLflow run id."""
    last = run_dir / "last.pt"
    if not last.is_file():
        raise CheckpointError(f"{last}: no such file (export needs the run's last.pt)")
    training = load_checkpoint(last).get("training") or {}
    if "state" not in training:
        raise CheckpointError(f"{last}: no training state (not a last.pt of `pipeline train`)")
    return json.loads(training["state"])


def _mlflow_tags(uri: str, run_id: str | None) -> dict[str, str]:
    if not run_id:
        return {}
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return dict(mlflow.MlflowClient(tracking_uri=uri).get_run(run_id).data.tags)
    except (MlflowException, OSError):  # the run's store is not here: the card lacks the tags
        return {}


OPERATING_KEYS = ("cluster_efficiency", "cluster_purity", "true_events", "predicted_clusters")


def suite_scores(suite_dir: Path, method: str) -> dict[str, dict[str, Any]]:
    """detector -> macro and per-class cluster F1 of `method`, from the suite's summary.json."""
    scores = {}
    for path in sorted(suite_dir.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        if method not in summary:
            raise ConfigError(f"{path}: no scores of method {method!r} (it has {sorted(summary)})")
        result = summary[method]
        scores[path.parent.name] = {
            "macro_cluster_f1": result["macro_cluster_f1"],
            "cluster_f1": {c: v["cluster_f1"] for c, v in result["per_class"].items()},
            "per_class": {
                c: {k: v.get(k) for k in OPERATING_KEYS} for c, v in result["per_class"].items()
            },
        }
    if not scores:
        raise ConfigError(f"{suite_dir}: no */summary.json of the suite")
    return scores


def release_card(
    config: ExportSettings | Config, card: dict[str, Any], run_dir: Path, train_config: Path
) -> dict[str, Any]:
    """The training card of run_dir/best.pt, with how the model was made."""
    state = _training_state(run_dir)
    trained = load_yaml(train_config.read_text())
    tags = _mlflow_tags(config.tracking.uri, state.get("run_id"))
    steps = trained["train"]["steps_per_epoch"]
    card["release"] = {
        "name": config.release.name,
        "description": config.release.description,
        "git_commit": tags.get("git_commit"),
        "mlflow_run_id": state.get("run_id"),
        "training_seed": trained["train"]["seed"],
        "steps": (state["best_epoch"] + 1) * steps,
        "steps_run": state["epoch"] * steps,
        "batch_size": trained["train"]["batch_size"],
        "tile_size": trained["tiles"]["size"],
        "training_minutes": round(state["elapsed_s"] / 60, 1),
        "config": {k: trained[k] for k in ("train", "stream", "tiles", "augment", "model")},
        "history": state.get("history", []),
        "limitations": list(config.release.limitations),
    }
    settings = load_config(train_config)
    if "training_priors" not in card and settings.stream.weight == 1:  # trained before the key
        card["training_priors"] = stream_priors(settings, settings.train.prior_tiles)
    card["release"]["covers"] = detector_ranges(settings)
    return card


def detector_ranges(settings: Config) -> dict[str, Any]:
    """The detectors the training stream drew from (its full ranges where `stream.narrow` is 1),
    and the back-surface diffusion sigma (pixels) they span."""
    cfg = narrowed_stream(settings)
    det, physics = settings.detector, settings.physics
    sigmas = []
    thinnest = min(cfg.thickness_um[0], cfg.thin_thickness_um[0]) if cfg.thin_share else None
    thicknesses = [*cfg.thickness_um, *([thinnest] if thinnest is not None else [])]
    for thickness in thicknesses:
        for scale in cfg.diffusion_scale:
            a = physics.diffusion_a_um2 * scale**2
            shifted = physics.model_copy(update={"diffusion_a_um2": a})
            moved = det.model_copy(update={"thickness_um": thickness})
            sigmas.append(conditioning.back_sigma_px(moved, shifted))
    names = ("readout_noise_e", "diffusion_scale", "thickness_um", "backside_pcc_um")
    covers: dict[str, Any] = {name: list(getattr(cfg, name)) for name in names}
    covers["backside_pcc_shape"] = list(cfg.backside_pcc_shape)
    covers["back_beta_fraction"] = list(cfg.back_beta_fraction)
    covers["xray_entry"] = dict(cfg.xray_entry)
    covers["back_sigma_px"] = [round(min(sigmas), 3), round(max(sigmas), 3)]
    if thinnest is not None:  # thin CCDs: a share of the tiles, in a range of their own
        covers["thickness_um"] = [thinnest, cfg.thickness_um[1]]
        covers["thin_share"] = cfg.thin_share
    if cfg.artefacts is not None:
        covers["artefacts"] = cfg.artefacts.model_dump()
    covers["alpha_thick_share"] = cfg.alpha_thick_share
    return covers


def operating_points(suite: dict[str, dict[str, Any]], classes: list[str]) -> dict[str, Any]:
    """Per class, the decision the shipped model makes (each deposit takes its largest posterior
    under the file's priors) and what it gives on the suite: efficiency and purity pooled over
    its detectors, with the events they rest on."""
    points = {}
    for cls in classes[1:]:
        found = events = pure = clusters = 0.0
        for scores in suite.values():
            own = scores.get("per_class", {}).get(cls, {})
            n, k = own.get("true_events") or 0, own.get("predicted_clusters") or 0
            events += n
            clusters += k
            found += (own.get("cluster_efficiency") or 0.0) * n
            pure += (own.get("cluster_purity") or 0.0) * k
        points[cls] = {
            "rule": "component vote: the largest posterior under infer.priors",
            "suite_efficiency": round(found / events, 4) if events else None,
            "suite_purity": round(pure / clusters, 4) if clusters else None,
            "suite_true_events": int(events),
        }
    return points


def export_model(
    config: ExportSettings | Config,
    run_dir: str | Path,
    train_config: str | Path,
    suite: str | Path | None = None,
) -> Path:
    """Write the shipped model `release.dir/release.name.pt` of the training run in `run_dir`
    (trained with the config file `train_config`; its suite evaluations in `suite`)."""
    cfg = config.release
    run_dir, name = Path(run_dir), cfg.name
    if not name:
        raise ConfigError("config key 'release.name' is not set (give --name)")
    model, card = load_model(run_dir / "best.pt")
    card = release_card(config, card, run_dir, Path(train_config))
    if suite:
        card["release"]["suite"] = suite_scores(Path(suite), cfg.suite_method)
        card["release"]["operating_points"] = operating_points(
            card["release"]["suite"], list(card["classes"])
        )
    drop = unused_parameters(model, model_config_from_card(card).in_channels)
    card["weights_dtype"] = "float16"
    card["unused_weights"] = drop
    out = Path(cfg.dir) / f"{name}{SUFFIX}"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"state_dict": half_state_dict(model, drop), "card": json.dumps(card)}
    with atomic_output(out) as tmp:
        torch.save(payload, tmp)
    with atomic_output(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(card, indent=2))
    _log_export(config, out, card, model)
    return out


def _log_export(
    config: ExportSettings | Config, out: Path, card: dict[str, Any], model: nn.Module
) -> None:
    """An MLflow run of the shipped model: its card, file, hash and suite scores, and the model,
    registered with the `shipped` alias."""
    release = card["release"]
    sha256 = file_sha256(out)
    tags = {
        "shipped_model": str(release["name"]),
        "trained_in_run": str(release["mlflow_run_id"]),
        "sha256": sha256,
    }
    with tracked_run(config, "export", tags) as tracker:
        suite = release.get("suite", {})
        tracker.log_metrics(
            {
                f"suite_{d}_macro_cluster_f1": s["macro_cluster_f1"] or float("nan")
                for d, s in suite.items()
            },
            step=0,
        )
        tracker.log_dict(card, "model_card.json")
        tracker.log_artifact(out, "shipped")
        if tracker.active and config.tracking.log_models:
            with store_lock(config.tracking.uri):
                version = registry.log_model(config.tracking, model, card, sha256)
                registry.set_alias(config.tracking, registry.SHIPPED, version)


def run_export(
    settings: ExportSettings,
    run: str | Path,
    train_config: str | Path,
    suite: str | Path | None = None,
) -> str:
    """The `export` stage: `export_model`, and what it wrote."""
    out = export_model(settings, run, train_config, suite)
    size = out.stat().st_size / 1e6
    return f"wrote {out} ({size:.1f} MB) and its card {out.with_suffix('.json')}"


def _shipped(settings: ExportSettings) -> list[tuple[str, Path]]:
    """The export's outputs, named by its settings (without a name the stage stops at once)."""
    folder, name = Path(settings.release.dir), settings.release.name or "NAME"
    what = "the shipped model in 'release.dir'"
    return [(what, folder / f"{name}.pt"), (f"the card of {what}", folder / f"{name}.json")]


STAGE = Stage(
    "export",
    "make a shipped model of a training run (float16, unused weights dropped)",
    "Reads: RUN/best.pt and RUN/last.pt, the run's config and the suite's evaluations. "
    "Writes: DIR/NAME.pt and its model card DIR/NAME.json, atomically.",
    run_export,
    ExportSettings,
    (
        file_flag("--run", "training output directory (best.pt, last.pt)", INPUT),
        file_flag("--train-config", "the config the run trained with", INPUT),
        file_flag("--suite", "directory of the suite's evaluations", INPUT, required=False),
        key_flag("--name", "release.name", "name of the shipped model"),
        key_flag("--dir", "release.dir", "directory to write it to"),
    ),
    writes=_shipped,
    tracks=True,
)
