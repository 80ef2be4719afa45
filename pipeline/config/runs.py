"""The sections of the configuration that record and ship models: MLflow tracking and its model
registry (pipeline/tracking/runs.py, pipeline/tracking/registry.py), the shipped models
(pipeline/network/shipped.py)."""

from __future__ import annotations

from pydantic import Field

from pipeline.config.base import Section


class ReleaseConfig(Section):
    """Shipped models (`pipeline models`) and the making of one (`pipeline export`)."""

    dir: str
    suite_method: str
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str
    limitations: list[str] = Field(default_factory=list)


class TrackingConfig(Section):
    enabled: bool
    uri: str
    experiment: str
    registered_model: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    log_models: bool
    register_shipped: bool = Field(
        description="register a shipped model (its weights copied into the store as an MLflow "
        "model, ~45 MB, ~10 s) the first time a run uses it; false: a run records the model's "
        "file and SHA-256 only. The workflow sets it true (its registry's `shipped` and `best` "
        "aliases); a command on one's own file leaves it false"
    )
    timeout_s: float = Field(gt=0, le=600)
