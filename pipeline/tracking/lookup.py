"""Which run wrote a file: a stage that writes a result tags its run with the file's SHA-256
(`output_sha256`), so a map leads back to its inference run, an activity JSON to its activity
run, and a plot of either is attached to the run that made what it draws.

A lookup never creates a store: where the embedded database does not exist, nothing wrote
anything there and the answer is None.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config.runs import TrackingConfig
from pipeline.core.hashing import file_sha256
from pipeline.tracking.runs import store_lock

SQLITE = "sqlite:///"


def run_that_wrote(tracking: TrackingConfig, path: str | Path) -> Any | None:
    """The newest MLflow run of `tracking.experiment` whose `output_sha256` is `path`'s SHA-256
    (an `mlflow.entities.Run`), or None."""
    uri = tracking.uri
    if not Path(path).is_file():
        return None
    if uri.startswith(SQLITE) and not Path(uri.removeprefix(SQLITE)).is_file():
        return None
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    with store_lock(uri):  # the first job to open a new store creates its tables
        experiment = client.get_experiment_by_name(tracking.experiment)
    if experiment is None:
        return None
    found = client.search_runs(
        [experiment.experiment_id],
        f"tags.output_sha256 = '{file_sha256(path)}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0] if found else None


def attach(tracking: TrackingConfig, made_from: str | Path, artefact: Path, folder: str) -> str:
    """Log `artefact` into the run that wrote `made_from`, under `folder`; what was done, in
    words."""
    run = run_that_wrote(tracking, made_from)
    if run is None:
        return f"no MLflow run in {tracking.uri} wrote {Path(made_from).name}: not logged there"
    import mlflow

    mlflow.MlflowClient(tracking_uri=tracking.uri).log_artifact(
        run.info.run_id, str(artefact), folder
    )
    return f"logged into MLflow run '{run.info.run_name}' ({run.info.run_id}) under {folder}/"
