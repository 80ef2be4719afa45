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


class TrackingConfig(Section):
    enabled: bool
    uri: str
    experiment: str
    registered_model: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    log_models: bool
    timeout_s: float = Field(gt=0, le=600)
