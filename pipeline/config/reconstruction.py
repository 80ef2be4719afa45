"""The typed sections of reconstruction: where and how the network maps frames (`infer` and its
`sparse` crops and `priors`), the ceiling's trees, the artefact rules after the network and in the
classical cuts (`artefact_shapes`), and the classical reconstruction (`classical`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.config.base import Section
from pipeline.config.limits import MAX_WINDOW


class SparseConfig(Section):
    """Where the network runs: pipeline/inference/sparse.py."""

    enabled: bool
    seed_sigma: float = Field(gt=0)
    seed_min_charge_e: float = Field(ge=0)
    block_px: int = Field(gt=0, le=256)
    margin_px: int = Field(ge=0, le=1024)
    track_margin_px: int = Field(ge=0, le=1024)
    max_fraction: float = Field(ge=0, le=1)


class PriorsConfig(Section):
    mode: Literal["adapt", "training", "stated"]
    stated: dict[str, float] = Field(default_factory=dict)
    pseudo_count: float = Field(ge=0, le=1e6)


class InferConfig(Section):
    model: str
    particles_from: dict[str, str | None] = Field(default_factory=dict)
    # windows cover each pixel ~1/(1-overlap)^2 times: 16x at 0.75 (nnU-Net uses 0.5)
    overlap: float = Field(ge=0, le=0.75)
    window: int | None = Field(default=None, gt=0, le=MAX_WINDOW)
    batch_size: int = Field(gt=0, le=1024)
    threads: int | None = Field(default=None, gt=0)
    channels_last: bool
    tta: bool
    component_vote: bool
    shape_rules: bool = True
    sharp_rescue: bool = True
    point_rescue: bool = True
    probabilities: bool
    gaussian_sigma_scale: float = Field(gt=0)
    device: Literal["auto", "cpu", "cuda"]
    amp: Literal["auto", "bf16", "fp16", "off"]
    runtime: Literal["auto", "torch", "onnxruntime"]
    onnx_cache: str | None = None
    back_sigma_px: float | None = Field(default=None, gt=0, le=100)
    back_sigma_from: Literal["config", "measured"] = "measured"
    priors: PriorsConfig
    sparse: SparseConfig


class CeilingConfig(Section):
    frames: int = Field(ge=1, le=10_000)
    max_iter: int = Field(ge=1, le=10_000)
    learning_rate: float = Field(gt=0, le=1)
    seed: int = Field(ge=0)


class ArtefactShapesConfig(Section):
    """Clusters whose shape no particle makes (pipeline/inference/shapes.py)."""

    streak_min_px: int = Field(ge=2)
    light_min_length_px: float = Field(gt=0)
    light_min_elongation: float = Field(ge=1)
    light_min_sigma_px: float = Field(gt=0)
    faint_min_pixels: int = Field(ge=1)
    faint_max_e_per_px: float = Field(gt=0)
    bleed_min_px: int = Field(ge=0)
    bleed_min_e: float = Field(gt=0)
    bleed_flat_sigma: float = Field(gt=0)
    trail_max_share: float = Field(ge=0, le=1)
    trail_min_sigma: float = Field(ge=0)
    sharp_sigclip: float = Field(gt=0)
    sharp_sigfrac: float = Field(gt=0, le=1)
    sharp_objlim: float = Field(gt=0)
    sharp_iterations: int = Field(ge=1, le=10)
    sharp_axis_max_deg: float = Field(ge=0, le=45)
    sharp_line_min_px: int = Field(ge=2)
    sharp_min_peak_e: float = Field(ge=0)
    point_max_sigma_ratio: float = Field(gt=0)
    point_max_elongation: float = Field(ge=1)
    point_min_pixels: int = Field(ge=1)
    point_min_energy_kev: float = Field(ge=0)
    point_max_energy_kev: float = Field(gt=0)
    point_classes: list[str] = Field(min_length=1)


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
