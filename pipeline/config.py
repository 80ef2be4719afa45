"""The one configuration system: typed models, YAML loading, overrides and the JSON Schema.

`configs/default.yaml` is the single source of every value; a user's YAML file and command-line
overrides are merged on top of it and the result is validated into the pydantic models below.
`configs/schema.yaml` is generated from these models (``python -m pipeline.config``) and is what
the Snakefile validates against, so both paths enforce the same rules.
"""

from __future__ import annotations

import copy
import itertools
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
SCHEMA_PATH = REPO_ROOT / "configs" / "schema.yaml"


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the file and the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorConfig(Section):
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    pixel_size_um: float = Field(gt=0)
    thickness_um: float = Field(gt=0)
    gain_adu_per_e: float = Field(gt=0)
    readout_noise_e: float = Field(ge=0)
    dark_current_e: float = Field(ge=0)
    pedestal_adu: float
    pedestal_row_drift_adu: float = Field(ge=0)
    full_well_e: float = Field(gt=0)
    backside_pcc_um: float = Field(ge=0)
    hot_pixel_fraction: float = Field(ge=0, le=1)
    hot_pixel_charge_e: float = Field(ge=0)
    hot_columns: int = Field(ge=0)
    hot_column_charge_e: float = Field(ge=0)
    defect_seed: int = Field(ge=0)
    frame_dtype: Literal["float32", "float64", "int32", "uint16"]


class PhysicsConfig(Section):
    pair_energy_ev: float = Field(gt=0)
    fano_factor: float = Field(ge=0)
    diffusion_a_um2: float = Field(ge=0)
    diffusion_b_per_um: float = Field(ge=0)
    electron_range_kev: list[float] = Field(min_length=2)
    electron_range_um: list[float] = Field(min_length=2)
    radiation_length_um: float = Field(gt=0)
    electron_steps: int = Field(ge=2)
    label_noise_multiple: float = Field(ge=0)
    label_min_charge_e: float = Field(ge=0)

    @model_validator(mode="after")
    def _range_table(self) -> PhysicsConfig:
        energies, ranges = self.electron_range_kev, self.electron_range_um
        if len(energies) != len(ranges):
            raise ValueError("electron_range_kev and electron_range_um must have the same length")
        for name, values in (("electron_range_kev", energies), ("electron_range_um", ranges)):
            if any(b <= a for a, b in itertools.pairwise(values)) or values[0] <= 0:
                raise ValueError(f"{name} must be positive and strictly increasing")
        return self


class TritiumConfig(Section):
    rate_per_frame: float = Field(ge=0)
    endpoint_kev: float = Field(gt=0)
    daughter_z: int = Field(ge=1)


class XrayLine(Section):
    energy_kev: float = Field(gt=0)
    weight: float = Field(ge=0)
    attenuation_um: float = Field(gt=0)


class XrayConfig(Section):
    rate_per_frame: float = Field(ge=0)
    lines: list[XrayLine] = Field(min_length=1)
    continuum_weight: float = Field(ge=0)
    continuum_kev: tuple[float, float]
    continuum_ref_kev: float = Field(gt=0)
    continuum_ref_attenuation_um: float = Field(gt=0)


class MuonConfig(Section):
    rate_per_frame: float = Field(ge=0)
    mpv_e_per_um: float = Field(gt=0)
    landau_width_e_per_um: float = Field(gt=0)
    step_um: float = Field(gt=0)


class ElectronConfig(Section):
    rate_per_frame: float = Field(ge=0)
    energy_kev: tuple[float, float]


class AlphaConfig(Section):
    rate_per_frame: float = Field(ge=0)
    energy_kev: tuple[float, float]
    range_ref_kev: float = Field(gt=0)
    range_ref_um: float = Field(gt=0)
    range_exponent: float = Field(gt=0)
    plasma_sigma_um: float = Field(ge=0)
    steps: int = Field(ge=1)


class SourcesConfig(Section):
    tritium: TritiumConfig
    xray: XrayConfig
    muon: MuonConfig
    electron: ElectronConfig
    alpha: AlphaConfig


class SimDataset(Section):
    frames: int = Field(gt=0)
    seed: int = Field(ge=0)
    overrides: dict[str, Any] = Field(default_factory=dict)


class SimulateConfig(Section):
    out: str
    frames: int = Field(gt=0)
    seed: int = Field(ge=0)
    root: bool
    datasets: dict[str, SimDataset]


class FitsConfig(Section):
    hdus: list[int | str] | None
    data_rows: tuple[int, int] | None
    data_cols: tuple[int, int] | None
    overscan_cols: tuple[int, int] | None
    pedestal_from_overscan: bool


class IOConfig(Section):
    frames_dataset: str
    labels_dataset: str
    instances_dataset: str
    events_group: str
    root_tree: str
    check_finite: bool
    fits: FitsConfig


class InspectConfig(Section):
    input: str | None


class CalibrateConfig(Section):
    pedestal: Literal["rows", "overscan"]
    gain: Literal["file", "config", "fe55"]
    gain_adu_per_e: float = Field(gt=0)
    fe55_kev: float = Field(gt=0)
    noise_clip_sigma: float = Field(gt=0)
    hot_pixel_sigma: float = Field(gt=0)
    hot_column_sigma: float = Field(gt=0)
    hot_mask_frames: int = Field(ge=3)


class NormaliseConfig(Section):
    kind: Literal["asinh_noise"]
    noise_multiple: float = Field(gt=0)
    divisor: float = Field(gt=0)


class TilesConfig(Section):
    size: int = Field(gt=0)
    overlap: int = Field(ge=0)
    val_fraction: float = Field(ge=0, lt=1)
    rare_classes: list[str]
    rare_oversample: float = Field(ge=1)
    position_jitter: bool
    cache_frames: int = Field(ge=1)

    @model_validator(mode="after")
    def _overlap(self) -> TilesConfig:
        if self.overlap >= self.size:
            raise ValueError(f"overlap {self.overlap} must be smaller than size {self.size}")
        return self


class AugmentConfig(Section):
    enabled: bool
    dihedral: bool
    gain_jitter: float = Field(ge=0)
    extra_noise_e: tuple[float, float]
    pedestal_offset_e: float = Field(ge=0)
    hot_pixels_per_tile: float = Field(ge=0)
    hot_pixel_charge_e: tuple[float, float]


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
    frames: list[str]
    val_frames: list[str]
    out: str
    resume: bool
    seed: int = Field(ge=0)
    epochs: int = Field(gt=0)
    steps_per_epoch: int = Field(gt=0)
    val_tiles: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    warmup_fraction: float = Field(ge=0, lt=1)
    loss: Literal["dice_ce", "dice_focal"]
    class_weights: list[float]
    patience: int = Field(ge=1)
    max_minutes: float | None = Field(default=None, gt=0)
    workers: int = Field(ge=0)
    device: Literal["auto", "cpu", "cuda"]
    amp: Literal["auto", "bf16", "fp16", "off"]
    channels_last: bool
    threads: int = Field(ge=0)


class InferConfig(Section):
    model: str
    input: str | None
    output: str | None
    catalogue: str | None
    overlap: float = Field(ge=0, lt=1)
    window: int | None = Field(default=None, gt=0)
    batch_size: int = Field(gt=0)
    threads: int | None = Field(default=None, gt=0)
    channels_last: bool
    tta: bool
    component_vote: bool
    probabilities: bool
    gaussian_sigma_scale: float = Field(gt=0)
    device: Literal["auto", "cpu", "cuda"]
    amp: Literal["auto", "bf16", "fp16", "off"]


class ClassicalConfig(Section):
    neighbour_sigma: float = Field(gt=0)
    seed_sigma: float = Field(gt=0)
    alpha_min_kev: float = Field(gt=0)
    muon_min_length_px: float = Field(gt=0)
    muon_min_elongation: float = Field(gt=1)
    electron_min_kev: float = Field(gt=0)
    point_max_pixels: int = Field(gt=0)
    tritium_max_kev: float = Field(gt=0)
    tritium_min_sigma_px: float = Field(ge=0)
    xray_windows_kev: list[tuple[float, float]]


class ActivityConfig(Section):
    catalogue: str | None
    frames: str | None
    out: str
    exposure_s: float = Field(gt=0)
    confidence: float = Field(gt=0, lt=1)
    energy_range_kev: tuple[float, float]
    bin_kev: float = Field(gt=0)
    efficiency: float | None = Field(default=None, gt=0, le=1)
    model: str | None = None
    efficiency_frames: int = Field(gt=0)
    template_events: int = Field(gt=0)
    seed: int = Field(ge=0)


class EvaluateConfig(Section):
    truth: str | None
    pred: list[str]
    names: list[str]
    out: str


class TrackingConfig(Section):
    enabled: bool
    uri: str
    experiment: str


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
    resources: WorkflowResources


class Config(Section):
    classes: list[str] = Field(min_length=2)
    detector: DetectorConfig
    physics: PhysicsConfig
    sources: SourcesConfig
    simulate: SimulateConfig
    io: IOConfig
    inspect: InspectConfig
    calibrate: CalibrateConfig
    normalise: NormaliseConfig
    tiles: TilesConfig
    augment: AugmentConfig
    model: ModelConfig
    train: TrainConfig
    infer: InferConfig
    classical: ClassicalConfig
    evaluate: EvaluateConfig
    activity: ActivityConfig
    tracking: TrackingConfig
    workflow: WorkflowConfig

    @model_validator(mode="after")
    def _classes(self) -> Config:
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("class names must be unique")
        if len(self.train.class_weights) != len(self.classes):
            raise ValueError(
                f"train.class_weights has {len(self.train.class_weights)} entries for "
                f"{len(self.classes)} classes"
            )
        if self.io.fits.pedestal_from_overscan and self.calibrate.pedestal == "overscan":
            raise ValueError(
                "io.fits.pedestal_from_overscan and calibrate.pedestal: overscan both subtract "
                "the overscan pedestal; choose one"
            )
        unknown = [c for c in self.tiles.rare_classes if c not in self.classes]
        if unknown:
            raise ValueError(f"tiles.rare_classes {unknown} are not in classes {self.classes}")
        return self


# --------------------------------------------------------------------------------------------
# Loading, merging, overrides


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of config keys")
    return data


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return `base` with `update` merged in; nested mappings merge, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def set_key(data: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Set `a.b.c` in a nested dict, creating mappings on the way."""
    *parents, leaf = dotted_key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"config key '{dotted_key}': '{part}' is not a section")
    node[leaf] = value


def _valid_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the section at `loc` (the parent of a rejected key)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return []
    return sorted(model.model_fields)


def _format_error(error: dict[str, Any], source: str) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(part) for part in loc) or "<top level>"
    if error["type"] == "extra_forbidden":
        valid = _valid_keys(Config, loc)
        hint = f" (valid keys here: {', '.join(valid)})" if valid else ""
        return f"{source}: unknown config key '{key}'{hint}"
    if error["type"] == "missing":
        return f"{source}: config key '{key}' is missing"
    message = error["msg"].removeprefix("Value error, ")
    return f"{source}: config key '{key}': {message} (got {error.get('input')!r})"


def validate_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a merged config mapping; the first problem becomes a one-line ConfigError."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc.errors()[0], source)) from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load `configs/default.yaml`, merge the user's file and dotted-key overrides, validate."""
    data = _read_yaml(DEFAULT_CONFIG)
    source = str(DEFAULT_CONFIG)
    if path is not None and Path(path).resolve() != DEFAULT_CONFIG:
        data = deep_merge(data, _read_yaml(Path(path)))
        source = str(path)
    for key, value in (overrides or {}).items():
        set_key(data, key, value)
    if overrides:
        source = f"{source} (with command-line overrides)"
    return validate_config(data, source)


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict of a config, as it would be written to YAML."""
    return config.model_dump(mode="json")


def write_config_sections(sections: dict[str, Any], path: str | Path) -> None:
    """Write config sections as YAML (a stage's slice of the workflow config), atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(sections, sort_keys=False))
    tmp.replace(path)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that `configs/schema.yaml` holds."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = (
        "Generated from pipeline/config.py by `python -m pipeline.config`; do not edit by hand."
    )
    return schema


def write_schema(path: Path = SCHEMA_PATH) -> None:
    path.write_text(yaml.safe_dump(json_schema(), sort_keys=False))


if __name__ == "__main__":
    write_schema(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_PATH)
