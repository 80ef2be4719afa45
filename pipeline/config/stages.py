"""Each stage's settings: the typed slice of the configuration it reads, and nothing else.

A stage function takes its slice (`InferSettings`, ...) and the paths of the files it reads and
writes as arguments; paths are never settings. Each stage's declaration (`STAGE`, beside its
function) names its class here; the command line and the workflow hand a stage exactly its slice
(`pipeline.commands.settings_of`), and the workflow writes exactly these sections into each
stage's config file (`stage_sections`), so a stage cannot read a section it does not declare.
The whole `Config` has every section and serves any stage.

A function shared by several stages takes the sections it reads as a protocol (`FrameSections`,
...): the whole `Config` and every slice that holds those sections satisfy it.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import Field

from pipeline.config.base import Section, Settings
from pipeline.config.sections import (
    ActivityConfig,
    ArtefactsConfig,
    ArtefactShapesConfig,
    AugmentConfig,
    CalibrateConfig,
    CeilingConfig,
    ClassicalConfig,
    DetectorConfig,
    InferConfig,
    IOConfig,
    ModelConfig,
    NormaliseConfig,
    PhysicsConfig,
    ReleaseConfig,
    SimulateConfig,
    SourcesConfig,
    StreamConfig,
    TilesConfig,
    TrackingConfig,
    TrainConfig,
)


class ClassesSections(Settings, Protocol):
    """The class names (every slice has them)."""

    @property
    def classes(self) -> list[str]: ...


class FrameSections(ClassesSections, Protocol):
    """What reading calibrated frames reads (pipeline/calibration/frames.py)."""

    @property
    def io(self) -> IOConfig: ...
    @property
    def calibrate(self) -> CalibrateConfig: ...
    @property
    def physics(self) -> PhysicsConfig: ...


class InferSections(FrameSections, Protocol):
    """What mapping frames with a model reads (pipeline/inference/infer.py); `release.dir` is
    where a shipped model's name is looked up."""

    @property
    def infer(self) -> InferConfig: ...
    @property
    def release(self) -> ReleaseConfig: ...
    @property
    def detector(self) -> DetectorConfig: ...
    @property
    def classical(self) -> ClassicalConfig: ...
    @property
    def artefact_shapes(self) -> ArtefactShapesConfig: ...


class SimulationSections(ClassesSections, Protocol):
    """What simulating frames reads (pipeline/simulation/simulate.py)."""

    @property
    def detector(self) -> DetectorConfig: ...
    @property
    def physics(self) -> PhysicsConfig: ...
    @property
    def sources(self) -> SourcesConfig: ...
    @property
    def artefacts(self) -> ArtefactsConfig: ...


class SimulationFileSections(SimulationSections, Protocol):
    """What writing simulated frames to a file reads."""

    @property
    def io(self) -> IOConfig: ...


class TrackedSections(Settings, Protocol):
    """What an MLflow run of a stage reads (pipeline/tracking/runs.py)."""

    @property
    def tracking(self) -> TrackingConfig: ...


class ClassesSettings(Section):
    classes: list[str] = Field(min_length=2)


class FrameSettings(ClassesSettings):
    """What reading calibrated frames needs (pipeline/calibration/frames.py)."""

    io: IOConfig
    calibrate: CalibrateConfig
    physics: PhysicsConfig


class SimulateSettings(ClassesSettings):
    detector: DetectorConfig
    physics: PhysicsConfig
    sources: SourcesConfig
    artefacts: ArtefactsConfig
    simulate: SimulateConfig
    io: IOConfig


class InspectSettings(ClassesSettings):
    io: IOConfig


class TrainSettings(FrameSettings):
    normalise: NormaliseConfig
    tiles: TilesConfig
    augment: AugmentConfig
    stream: StreamConfig
    model: ModelConfig
    train: TrainConfig
    tracking: TrackingConfig
    detector: DetectorConfig
    sources: SourcesConfig
    artefacts: ArtefactsConfig
    release: ReleaseConfig  # where train.init's shipped name is looked up


class InferSettings(FrameSettings):
    infer: InferConfig
    detector: DetectorConfig  # what a detector-aware network is told (normalise.condition)
    classical: ClassicalConfig  # the clustering that measures it (infer.back_sigma_from)
    artefact_shapes: ArtefactShapesConfig  # infer.shape_rules
    tracking: TrackingConfig
    release: ReleaseConfig  # where infer.model's shipped name is looked up


class PlotSettings(FrameSettings):
    """What drawing a map over its frame reads (pipeline/reporting/view.py)."""

    tracking: TrackingConfig  # where the run that made what is drawn is looked up


class ClassicalSettings(FrameSettings):
    classical: ClassicalConfig
    artefact_shapes: ArtefactShapesConfig


class CeilingSettings(FrameSettings):
    classical: ClassicalConfig  # its clustering
    ceiling: CeilingConfig


class EvaluateSettings(FrameSettings):
    tracking: TrackingConfig


class EfficiencySettings(FrameSettings):
    """The efficiency frames of a detector: simulated like the data, mapped like the data."""

    detector: DetectorConfig
    sources: SourcesConfig
    artefacts: ArtefactsConfig
    simulate: SimulateConfig
    activity: ActivityConfig
    infer: InferConfig
    classical: ClassicalConfig  # activity.model: classical
    artefact_shapes: ArtefactShapesConfig  # the artefact rules of both reconstructions
    release: ReleaseConfig  # where a shipped model's name is looked up


class ActivitySettings(EfficiencySettings):
    tracking: TrackingConfig


class ExportSettings(ClassesSettings):
    release: ReleaseConfig
    tracking: TrackingConfig


class SuiteSettings(ClassesSettings):
    tracking: TrackingConfig


class ForecastSettings(ClassesSettings):
    """What the detection limit against counting time reads (pipeline/reporting/forecast.py)."""

    activity: ActivityConfig


class ModelsSettings(Section):
    release: ReleaseConfig
