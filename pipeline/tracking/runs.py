"""Experiment tracking with MLflow: the runs of the stages that track (train, infer, evaluate,
export, and the registration of a shipped model).

Owns what every run records: the flattened config as params; seed, git commit and a hash of the
input frame files as tags; per-epoch metrics; the model card, the checkpoint and plots as
artefacts. The default store is the embedded sqlite database `sqlite:///mlruns.db`; a server URI
is the config key `tracking.uri`. Artefacts are written and read as plain files.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import subprocess
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline.config import REPO_ROOT, config_to_dict
from pipeline.config.stages import TrackedSections
from pipeline.core.errors import printable


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {"a.b.c": "value"} for MLflow params."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def git_commit(repo: Path = REPO_ROOT) -> str:
    """The checked-out commit, with '-dirty' when tracked files changed; 'unknown' outside git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def artifact_root(uri: str) -> str | None:
    """Artefacts of an embedded sqlite store live beside it, in `mlartifacts/`."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None  # a tracking server decides
    return (Path(uri[len(prefix) :]).resolve().parent / "mlartifacts").as_uri()


EXPERIMENT_KIND = "mlflow.experimentKind"  # the MLflow UI's view of an experiment
SUBJECT_TAGS = ("input", "truth", "frames", "out")  # what a run's name says it worked on


def run_name(stage: str, tags: Mapping[str, str]) -> str:
    """A run's readable name: the stage and the file it worked on ('infer heldout.h5')."""
    subject = next((tags[k] for k in SUBJECT_TAGS if tags.get(k)), "")
    return f"{stage} {Path(subject.split(',')[0]).name}".strip()


def file_dataset(path: str | Path, digest: str) -> Any:
    """An MLflow dataset that records a file (name, location, digest) without copying it."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():  # MLflow registers two equal local-file sources, and says so
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str(Path(path).resolve()))
    # MLflow declares `profile` abstract yet gives it a body: the class is instantiable
    return MetaDataset(source, name=printable(Path(path).name), digest=digest[:16])  # type: ignore[abstract]


_HELD_LOCKS: set[Path] = set()  # store locks this process holds: taking one again is a no-op


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock beside an embedded sqlite store (`<db>.lock`): parallel jobs that
    would create its tables, or register the same model, take turns. A server needs none."""
    prefix = "sqlite:///"
    lock = Path(uri[len(prefix) :] + ".lock").resolve() if uri.startswith(prefix) else None
    if lock is None or lock in _HELD_LOCKS:
        yield
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        _HELD_LOCKS.add(lock)
        try:
            yield
        finally:
            _HELD_LOCKS.discard(lock)
            fcntl.flock(fh, fcntl.LOCK_UN)


class Tracker:
    """One MLflow run; every method is a no-op when tracking is disabled (or not rank 0)."""

    def __init__(self, config: TrackedSections, active: bool = True) -> None:
        self.config = config
        self.active = active and config.tracking.enabled
        self.run_id: str | None = None

    def start(
        self, tags: Mapping[str, str], run_id: str | None = None, run_name: str | None = None
    ) -> str | None:
        """Start a new run (named `run_name`), or reopen `run_id` when resuming; returns the
        run id. A new experiment is marked as model development (the UI's runs, not traces)."""
        if not self.active:
            return None
        import mlflow

        uri, name = self.config.tracking.uri, self.config.tracking.experiment
        mlflow.set_tracking_uri(uri)
        with store_lock(uri):
            if mlflow.get_experiment_by_name(name) is None:
                kind = {EXPERIMENT_KIND: "custom_model_development"}
                mlflow.create_experiment(name, artifact_location=artifact_root(uri), tags=kind)
            mlflow.set_experiment(name)
            run = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name)
        self.run_id = run.info.run_id
        if run_id is None:
            mlflow.log_params(flatten(config_to_dict(self.config)))
        mlflow.set_tags(dict(tags))
        return self.run_id

    def set_tags(self, tags: Mapping[str, str]) -> None:
        if self.active:
            import mlflow

            mlflow.set_tags(dict(tags))

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        if self.active:
            import mlflow

            finite = {k: float(v) for k, v in metrics.items() if math.isfinite(v)}  # NaN: none
            mlflow.log_metrics(finite, step=step)

    def log_dict(self, data: Mapping[str, Any], name: str) -> None:
        if self.active:
            import mlflow

            mlflow.log_dict(dict(data), name)

    def log_dataset(self, path: str | Path, digest: str, context: str) -> None:
        """Name `path` as a dataset of the run (MLflow's Dataset column): its file name, where
        it is, and `digest` (the first 16 hex digits of its SHA-256); `context` says its use."""
        if self.active:
            import mlflow

            mlflow.log_input(file_dataset(path, digest), context=context)

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        if self.active:
            import mlflow

            mlflow.log_artifact(str(path), folder)

    def end(self, status: str = "FINISHED") -> None:
        if self.active and self.run_id is not None:
            import mlflow

            mlflow.end_run(status=status)


@contextlib.contextmanager
def tracked_run(
    config: Any,
    stage: str,
    tags: Mapping[str, str],
    *,
    run_id: str | None = None,
    active: bool = True,
) -> Iterator[Tracker]:
    """The one way a stage tracks: open (or, with `run_id`, reopen) an MLflow run tagged with the
    stage, the git commit and `tags`; end it FINISHED, FAILED when the block raises, KILLED when
    it is interrupted (Ctrl-C, a signal's exit). Without tracking (`tracking.enabled: false`, or
    not DDP rank 0, `active`) the tracker does nothing."""
    tracker = Tracker(config, active)
    if tracker.active:
        named = {k: printable(str(v)) for k, v in tags.items()}  # file names of any bytes
        tags = {"stage": stage, "git_commit": git_commit(), **named}
        tracker.start(tags, run_id=run_id, run_name=run_name(stage, named))
    try:
        yield tracker
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
        tracker.end("KILLED" if interrupted else "FAILED")
        raise
    tracker.end("FINISHED")
