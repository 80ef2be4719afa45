"""The workflow's sections of the configuration: the user's inputs, the generalisation suite, and
the resources each job asks a scheduler for."""

from __future__ import annotations

from pydantic import Field

from pipeline.config.base import Section


class JobResources(Section):
    cpus: int = Field(gt=0)
    gpus: int = Field(ge=0)
    mem_mb: int = Field(gt=0)
    runtime_min: int = Field(gt=0)


class WorkflowResources(Section):
    simulate: JobResources
    train: JobResources
    infer: JobResources
    classical: JobResources
    evaluate: JobResources
    activity: JobResources


class WorkflowConfig(Section):
    inputs: list[str]
    train_frames: list[str]
    val_frames: list[str]
    suite: list[str]
    resources: WorkflowResources
