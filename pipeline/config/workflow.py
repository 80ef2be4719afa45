"""The workflow's sections of the configuration: the user's inputs, the generalisation suite, and
the resources each job asks a scheduler for."""

from __future__ import annotations

from pydantic import Field

from pipeline.config.base import Section


class JobResources(Section):
    """What one job of a stage asks for (threads = min(cpus, --cores) on one machine)."""

    cpus: int = Field(gt=0, description="CPU threads (a scheduler's cpus_per_task)")
    gpus: int = Field(ge=0, description="GPUs; train with more than one runs DDP through torchrun")
    mem_mb: int = Field(gt=0, description="memory (MB) a scheduler reserves")
    runtime_min: int = Field(gt=0, description="wall-time limit (minutes) a scheduler sets")


class WorkflowResources(Section):
    simulate: JobResources
    train: JobResources
    infer: JobResources
    classical: JobResources
    ceiling: JobResources
    evaluate: JobResources
    activity: JobResources
    plot: JobResources


class WorkflowConfig(Section):
    inputs: list[str]
    train_frames: list[str]
    val_frames: list[str]
    heldout: str = Field(
        description="the simulated dataset (of simulate.datasets) the trained model is "
        "evaluated on and whose activity is measured: results/evaluation/, "
        "results/activity/<heldout>.json"
    )
    suite: list[str]
    compare_models: list[str] = Field(
        default_factory=list,
        description="shipped models (or checkpoints) scored beside the fine-tuned one and its "
        "starting point on the held-out frames and the suite: method named by the model",
    )
    ceiling: bool = Field(
        default=True,
        description="score the ceiling (pipeline ceiling: trees that know the simulator's "
        "truth) beside the methods on the held-out frames and the suite",
    )
    resources: WorkflowResources
