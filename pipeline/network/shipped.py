"""Shipped models: the trained U-Nets that come with the pipeline, in `models/` (`release.dir`).

Owns finding a model by name (`resolve_model`: a shipped name, else a checkpoint path; with its
content hash, once, `resolve_checkpoint`) and listing what is shipped (`list_models`, the
`models` stage). Making a shipped model of a training run is pipeline/learning/export.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import REPO_ROOT
from pipeline.config.stages import ModelsSettings
from pipeline.core.errors import CheckpointError
from pipeline.core.hashing import file_sha256
from pipeline.core.stage import INPUT, Stage, key_flag

SUFFIX = ".pt"


@dataclass(frozen=True)
class ShippedModel:
    name: str
    path: Path
    size_bytes: int
    card: dict[str, Any]


def models_dir(directory: str | Path) -> Path:
    """`release.dir` as given (relative to the working directory) if it exists, else relative to
    the repository, so a shipped name works from any working directory."""
    given = Path(directory)
    if given.is_dir() or given.is_absolute():
        return given
    return REPO_ROOT / given


def list_models(directory: str | Path) -> list[ShippedModel]:
    """Every shipped model of `directory`, by name; a file that is not a checkpoint is an error."""
    from pipeline.network.model import load_checkpoint

    folder = models_dir(directory)
    found = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        card = load_checkpoint(path)["card"]
        found.append(ShippedModel(path.stem, path, path.stat().st_size, card))
    return found


def resolve_model(reference: str | Path, directory: str | Path = "models") -> Path:
    """The checkpoint file `reference` names: an existing path, else a shipped model's name."""
    path = Path(reference)
    if path.is_file():
        return path
    shipped = models_dir(directory) / f"{reference}{SUFFIX}"
    if path.name == str(reference) and path.suffix != SUFFIX and shipped.is_file():
        return shipped  # a bare name, not a path
    names = sorted(p.stem for p in models_dir(directory).glob(f"*{SUFFIX}"))
    raise CheckpointError(
        f"{reference}: no such checkpoint file, and not a shipped model (shipped in "
        f"{models_dir(directory)}: {', '.join(names) or 'none'})"
    )


@dataclass(frozen=True)
class Checkpoint:
    """A model a stage reads, resolved once: the file and its SHA-256 (what names its ONNX copy,
    its registered version and the maps it made)."""

    reference: str  # as the user gave it: a path or a shipped name
    path: Path
    sha256: str


def resolve_checkpoint(reference: str | Path, directory: str | Path = "models") -> Checkpoint:
    """`resolve_model`, and the file's SHA-256: the one time a stage finds and hashes its model."""
    path = resolve_model(reference, directory)
    return Checkpoint(str(reference), path, file_sha256(path))


def describe(model: ShippedModel) -> str:
    """One line per shipped model: name, size, training, held-out and suite scores."""
    release = model.card.get("release", {})
    suite = release.get("suite", {})
    mean = sum(s["macro_cluster_f1"] or 0 for s in suite.values()) / max(len(suite), 1)
    parts = [
        f"{model.name}: {model.size_bytes / 1e6:.1f} MB",
        f"{len(model.card['classes'])} classes",
        f"{release.get('steps', '?')} steps of {release.get('batch_size', '?')} tiles of "
        f"{release.get('tile_size', '?')}^2",
        f"val macro IoU {model.card.get('metrics', {}).get('macro_iou')}",
    ]
    if suite:
        parts.append(f"suite mean macro cluster F1 {mean:.3f} on {len(suite)} detectors")
    return ", ".join(parts)


def run_models(settings: ModelsSettings) -> str:
    """The `models` stage: a line per shipped model in `release.dir`."""
    listing = "\n".join(describe(m) for m in list_models(settings.release.dir))
    return listing or f"no models in {models_dir(settings.release.dir)}"


STAGE = Stage(
    "models",
    "list the shipped models (use one by name: --model NAME, train.init: NAME)",
    "Reads: the checkpoints in release.dir (models/). Writes: a line per model.",
    run_models,
    ModelsSettings,
    (key_flag("--dir", "release.dir", "directory of shipped models", role=INPUT),),
)
