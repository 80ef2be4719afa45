"""The typed sections of the configuration: one pydantic model per config section, each field
with its bounds. `Config` is the whole; `configs/schema.yaml` is generated from it."""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from pipeline.config.activity import ActivityConfig, SystematicsConfig
from pipeline.config.artefacts import ArtefactRanges, ArtefactsConfig
from pipeline.config.base import Section
from pipeline.config.files import FitsConfig, FitsKeywords, IOConfig
from pipeline.config.limits import (
    MAX_BATCH_PIXELS,
    MAX_FRAME_EDGE,
    MAX_PIXEL_CHARGE_E,
    MAX_WINDOW,
)
from pipeline.config.readout import CtiCorrectionConfig, JumpsConfig
from pipeline.config.reconstruction import (
    ArtefactShapesConfig,
    CeilingConfig,
    ClassicalConfig,
    InferConfig,
    PriorsConfig,
    SparseConfig,
)
from pipeline.config.runs import ReleaseConfig, TrackingConfig
from pipeline.config.sources import (
    SourcesConfig,
)
from pipeline.config.workflow import JobResources, WorkflowConfig, WorkflowResources

__all__ = [  # re-exported
    "ActivityConfig",
    "ArtefactShapesConfig",
    "ArtefactsConfig",
    "CeilingConfig",
    "ClassicalConfig",
    "FitsConfig",
    "FitsKeywords",
    "IOConfig",
    "InferConfig",
    "JobResources",
    "PriorsConfig",
    "ReleaseConfig",
    "Section",
    "SparseConfig",
    "SystematicsConfig",
    "TrackingConfig",
    "WorkflowConfig",
    "WorkflowResources",
]


class DetectorConfig(Section):
    # the largest CCDs are ~6k x 6k pixels; 16k bounds one float32 frame at 1 GiB
    height: int = Field(gt=0, le=MAX_FRAME_EDGE)
    width: int = Field(gt=0, le=MAX_FRAME_EDGE)
    # physical bounds, generous: a pixel is at most a millimetre, a CCD at most a centimetre thick
    pixel_size_um: float = Field(ge=0.1, le=1000)
    thickness_um: float = Field(gt=0, le=10_000)
    gain_adu_per_e: float = Field(gt=0, le=1e6)
    readout_noise_e: float = Field(ge=0, le=MAX_PIXEL_CHARGE_E)
    dark_current_e: float = Field(ge=0, le=MAX_PIXEL_CHARGE_E)
    pedestal_adu: float = Field(ge=-1e12, le=1e12)
    pedestal_row_drift_adu: float = Field(ge=0, le=1e6)
    full_well_e: float = Field(gt=0, le=MAX_PIXEL_CHARGE_E)
    backside_pcc_um: float = Field(ge=0, le=10_000)
    backside_pcc_shape: float = Field(default=1.0, ge=0.05, le=20)
    backside_dead_um: float = Field(default=0.0, ge=0, le=10_000)
    hot_pixel_fraction: float = Field(ge=0, le=1)
    hot_pixel_charge_e: float = Field(ge=0, le=MAX_PIXEL_CHARGE_E)
    hot_columns: int = Field(ge=0, le=MAX_FRAME_EDGE)
    hot_column_charge_e: float = Field(ge=0, le=MAX_PIXEL_CHARGE_E)
    defect_seed: int = Field(ge=0)
    frame_dtype: Literal["float32", "float64", "int32", "uint16"]
    exposure_s: float = Field(gt=0, le=1e8)  # three years


class PhysicsConfig(Section):
    pair_energy_ev: float = Field(ge=1, le=100)  # semiconductors: ~3 eV (Ge 2.96, Si 3.6-3.75)
    fano_factor: float = Field(ge=0, le=1)
    diffusion_a_um2: float = Field(ge=0, le=1e6)
    diffusion_b_per_um: float = Field(ge=0, le=1)
    silicon_density_g_cm3: float = Field(gt=0, le=25)
    silicon_excitation_ev: float = Field(gt=0, le=1000)
    stopping_power_scale: float = Field(default=1.0, gt=0.1, le=10)
    elastic_scale: float = Field(default=1.0, gt=0.1, le=10)
    radiation_length_um: float = Field(gt=0, le=1e9)
    electron_steps: int = Field(ge=2, le=10_000)
    label_noise_multiple: float = Field(ge=0, le=1000)
    label_min_charge_e: float = Field(ge=0, le=MAX_PIXEL_CHARGE_E)

    def lateral_sigma_um(self, depth_um: Any) -> Any:
        """Lateral diffusion of charge created at depth z from the collection side (the DAMIC
        model, sigma^2 = -A ln|1 - b z|), elementwise."""
        arg = np.abs(1.0 - self.diffusion_b_per_um * np.asarray(depth_um, dtype=float))
        return np.sqrt(np.maximum(-self.diffusion_a_um2 * np.log(np.maximum(arg, 1e-12)), 0.0))


SAFE_NAME = re.compile(r"[A-Za-z0-9_-]+")  # a name that becomes a file name and a wildcard


class SimDataset(Section):
    """A dataset the workflow simulates: data/sim/<name>.h5."""

    frames: int = Field(gt=0, description="frames in the file")
    seed: int = Field(ge=0, description="its random seed (same seed, same file)")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="dotted config keys set for this dataset only (its detector, its sources)",
    )


class SimulateConfig(Section):
    frames: int = Field(gt=0)
    seed: int = Field(ge=0)
    root: bool
    datasets: dict[str, SimDataset]
    unsourced_classes: list[str] = Field(
        default_factory=list,
        description="classes no source of the simulator makes, said explicitly (a class only "
        "your labelled data holds); every other class but the first needs a source",
    )

    @model_validator(mode="after")
    def _dataset_names(self) -> SimulateConfig:
        for name in self.datasets:
            if not SAFE_NAME.fullmatch(name):
                raise ValueError(
                    f"dataset name {name!r} becomes file names (data/sim/{name}.h5) and "
                    "wildcards: use letters, digits, '_' and '-' only"
                )
        return self


class PlausibilityConfig(Section):
    """Whether a frame looks like a particle detector's: the share of its pixels above
    `sigma` x noise (its occupancy)."""

    sigma: float = Field(default=4.0, gt=0)
    warn_occupancy: float = Field(default=0.05, gt=0, le=1)
    refuse_occupancy: float = Field(default=0.5, gt=0, le=1)


class CalibrateConfig(Section):
    pedestal: Literal["rows", "overscan"]
    gain: Literal["file", "config", "fe55"]
    gain_adu_per_e: float = Field(gt=0)
    fe55_kev: float = Field(gt=0)
    noise_clip_sigma: float = Field(gt=0)
    hot_pixel_sigma: float = Field(gt=0)
    hot_column_sigma: float = Field(gt=0)
    hot_mask_frames: int = Field(ge=3, le=1024)
    plausibility: PlausibilityConfig = Field(default_factory=lambda: PlausibilityConfig())
    cti: CtiCorrectionConfig
    jumps: JumpsConfig


NORMALISE_CHANNELS = {"asinh_noise": 1, "charge_significance": 2}
# what the detector is, given to the network as constant channels: each descriptor's unit, so the
# channel (value / unit) stays within a few units (pipeline/calibration/conditioning.py)
CONDITION_UNITS = {"back_sigma_px": 2.0}


class NormaliseConfig(Section):
    kind: Literal["asinh_noise", "charge_significance"]
    noise_multiple: float = Field(gt=0)
    divisor: float = Field(gt=0)
    charge_scale_e: float = Field(default=1.0, gt=0)  # default: cards written before the key
    condition: list[Literal["back_sigma_px"]] = Field(default_factory=list)  # cards before it: none

    @property
    def channels(self) -> int:
        return NORMALISE_CHANNELS[self.kind] + len(self.condition)


class TilesConfig(Section):
    size: int = Field(gt=0, le=MAX_WINDOW)
    overlap: int = Field(ge=0)
    val_fraction: float = Field(ge=0, lt=1)
    rare_classes: list[str]
    rare_oversample: float = Field(ge=1)
    position_jitter: bool
    cache_frames: int = Field(ge=1, le=1024)

    @model_validator(mode="after")
    def _overlap(self) -> TilesConfig:
        if self.overlap >= self.size:
            raise ValueError(f"overlap {self.overlap} must be smaller than size {self.size}")
        return self


Range = tuple[float, float]


class StreamConfig(Section):
    """Training tiles simulated on the fly, each from a detector drawn from these ranges."""

    weight: float = Field(ge=0, le=1)
    narrow: float = Field(gt=0, le=1)
    readout_noise_e: Range
    gain_adu_per_e: Range
    pedestal_row_drift_adu: Range
    dark_current_e: Range
    diffusion_scale: Range
    thickness_um: Range
    backside_pcc_um: Range
    backside_pcc_shape: Range = (1.0, 1.0)
    back_beta_fraction: Range = (0.0, 0.0)
    hot_pixel_fraction: Range
    hot_columns_per_1k: Range
    occupancy: Range
    muon_cos_power: Range
    xray_entry: dict[Literal["back", "front", "uniform"], float]
    compton_fraction: float = Field(ge=0, le=1)
    rate_scale: dict[str, float]
    thin_share: float = Field(default=0.0, ge=0, le=1)
    thin_thickness_um: Range = (250.0, 250.0)
    alpha_thick_share: float = Field(default=0.0, ge=0, le=1)
    artefacts: ArtefactRanges | None = None

    @model_validator(mode="after")
    def _ranges(self) -> StreamConfig:
        for name, value in self:
            if isinstance(value, tuple) and not 0 <= value[0] <= value[1]:
                raise ValueError(f"stream.{name}: a range [low, high] with 0 <= low <= high")
        if not self.xray_entry or min(self.xray_entry.values()) < 0:
            raise ValueError("stream.xray_entry: non-negative weights of back, front, uniform")
        return self


class AugmentConfig(Section):
    enabled: bool
    dihedral: bool
    gain_jitter: float = Field(ge=0, le=1)  # a fraction of the gain
    extra_noise_e: tuple[float, float]
    pedestal_offset_e: float = Field(ge=0, le=MAX_PIXEL_CHARGE_E)
    hot_pixels_per_tile: float = Field(ge=0, le=1e6)
    hot_pixel_charge_e: tuple[float, float]
    condition_jitter: float = Field(default=0.0, ge=0, le=1)  # relative sigma (log-normal)


class ModelConfig(Section):
    encoder: str
    depth: int = Field(ge=1, le=5)
    decoder_channels: list[int] = Field(min_length=1)
    in_channels: int = Field(ge=1)
    head: Literal["plain", "full_resolution"]
    head_channels: int = Field(ge=1)

    @model_validator(mode="after")
    def _depth(self) -> ModelConfig:
        if len(self.decoder_channels) != self.depth:
            raise ValueError(
                f"decoder_channels has {len(self.decoder_channels)} entries, depth is {self.depth}"
            )
        return self


class TrainConfig(Section):
    resume: bool
    init: str | None
    seed: int = Field(ge=0)
    epochs: int = Field(gt=0)
    steps_per_epoch: int = Field(gt=0)
    val_tiles: int = Field(gt=0, le=1_000_000)
    batch_size: int = Field(gt=0, le=4096)
    lr: float = Field(gt=0, le=10)  # AdamW: ~1e-4-1e-2; beyond 10 nothing trains
    weight_decay: float = Field(ge=0, le=10)
    warmup_fraction: float = Field(ge=0, lt=1)
    loss: Literal["dice_ce", "dice_focal"]
    class_weights: dict[str, float] = Field(
        description="cross-entropy weight of each class, by name: every class needs one; "
        "weights of names that are not classes (a class the config dropped) are not used"
    )
    patience: int = Field(ge=1)
    max_minutes: float | None = Field(default=None, gt=0)
    prior_tiles: int = Field(default=256, ge=1, le=100_000)
    workers: int = Field(ge=0)
    device: Literal["auto", "cpu", "cuda"]
    amp: Literal["auto", "bf16", "fp16", "off"]
    channels_last: bool
    threads: int = Field(ge=0)


class Config(Section):
    classes: list[str] = Field(min_length=2)
    detector: DetectorConfig
    physics: PhysicsConfig
    sources: SourcesConfig
    artefacts: ArtefactsConfig
    simulate: SimulateConfig
    io: IOConfig
    calibrate: CalibrateConfig
    normalise: NormaliseConfig
    tiles: TilesConfig
    augment: AugmentConfig
    stream: StreamConfig
    model: ModelConfig
    train: TrainConfig
    infer: InferConfig
    classical: ClassicalConfig
    artefact_shapes: ArtefactShapesConfig
    ceiling: CeilingConfig
    activity: ActivityConfig
    release: ReleaseConfig
    tracking: TrackingConfig
    workflow: WorkflowConfig

    @model_validator(mode="after")
    def _classes(self) -> Config:
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("class names must be unique")
        unsafe = [c for c in self.classes if not SAFE_NAME.fullmatch(c)]
        if unsafe:
            raise ValueError(
                f"class names {unsafe} become metric names and table columns: use letters, "
                "digits, '_' and '-' only"
            )
        negative = {c: w for c, w in self.train.class_weights.items() if w < 0}
        if negative:
            raise ValueError(f"train.class_weights must not be negative: {negative}")
        missing = [c for c in self.classes if c not in self.train.class_weights]
        if missing:
            raise ValueError(
                f"train.class_weights: every class needs a weight, by name; none for {missing} "
                f"(the classes are {self.classes})"
            )
        if self.io.fits.pedestal_from_overscan and self.calibrate.pedestal == "overscan":
            raise ValueError(
                "io.fits.pedestal_from_overscan and calibrate.pedestal: overscan both subtract "
                "the overscan pedestal; choose one"
            )
        for what, batch, edge in (
            ("train.batch_size x tiles.size^2", self.train.batch_size, self.tiles.size),
            ("infer.batch_size x infer.window^2", self.infer.batch_size, self.infer.window or 0),
        ):
            if batch * edge**2 > MAX_BATCH_PIXELS:
                raise ValueError(
                    f"{what} = {batch * edge**2:,} pixels per batch, more than "
                    f"{MAX_BATCH_PIXELS:,} (memory); lower the batch size"
                )
        if self.workflow.heldout not in self.simulate.datasets:
            raise ValueError(
                f"workflow.heldout {self.workflow.heldout!r} is not a dataset of "
                f"simulate.datasets ({', '.join(self.simulate.datasets)})"
            )
        missing = [d for d in self.workflow.suite if d not in self.simulate.datasets]
        if missing:
            raise ValueError(f"workflow.suite names {missing}, not datasets of simulate.datasets")
        labels = self.sources.labels()
        sources = set(labels)
        unsourced = [
            c
            for c in self.classes[1:]
            if c not in labels.values()
            and c not in self.simulate.unsourced_classes
            and c != self.artefacts.label
        ]
        if unsourced:
            raise ValueError(
                f"classes {unsourced}: no source labels them; add one (sources.<name>: {{label: "
                "..., rate_per_frame: ...}, and its registered function) or list them in "
                "simulate.unsourced_classes"
            )
        if set(self.stream.rate_scale) - sources:
            raise ValueError(
                f"stream.rate_scale names {sorted(set(self.stream.rate_scale) - sources)}; "
                f"the sources are {sorted(sources)}"
            )
        if self.model.in_channels != self.normalise.channels:
            raise ValueError(
                f"model.in_channels is {self.model.in_channels}, but normalise.kind "
                f"{self.normalise.kind!r} with condition {self.normalise.condition} makes "
                f"{self.normalise.channels} input channels"
            )
        unknown = [c for c in self.tiles.rare_classes if c not in self.classes]
        if unknown:
            raise ValueError(f"tiles.rare_classes {unknown} are not in classes {self.classes}")
        return self
