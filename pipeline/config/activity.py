"""The activity section of the configuration: the measurement of the sample's tritium activity
(pipeline/measurement/activity.py) and the model ranges of its systematics
(pipeline/measurement/systematics.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from pipeline.config.base import Section


class SystematicsConfig(Section):
    """Detector- and sample-model ranges of the efficiency (pipeline/measurement/systematics.py);
    null = not varied. The sample's terms apply to a layer sample only."""

    back_layer_um: tuple[float, float] | None = None
    back_layer_shape: tuple[float, float] | None = None
    dead_layer_um: tuple[float, float] | None = None
    diffusion_scale: tuple[float, float] | None = None
    stopping_power_scale: tuple[float, float] | None = None
    elastic_scale: tuple[float, float] | None = None
    gain_scale: tuple[float, float] | None = None
    threshold_kev: tuple[float, float] | None = None
    sample_density_g_cm3: tuple[float, float] | None = None
    sample_water_fraction: tuple[float, float] | None = None
    sample_thickness_scale: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _ranges(self) -> SystematicsConfig:
        for name, span in self:
            if span is None:
                continue
            zero_allowed = name in ZERO_ALLOWED
            if not (span[0] >= 0 if zero_allowed else span[0] > 0) or span[0] > span[1]:
                low = "0 <=" if zero_allowed else "0 <"
                raise ValueError(f"{name}: expected {low} low <= high, got {list(span)}")
        water = self.sample_water_fraction
        if water is not None and water[1] > 1:
            raise ValueError(f"sample_water_fraction: a share of the mass, got {list(water)}")
        for name in FACTORS:  # factors on the nominal model
            span = getattr(self, name)
            if span is not None and not span[0] <= 1.0 <= span[1]:
                raise ValueError(f"{name}: the range {list(span)} must hold 1 (the nominal)")
        return self


# terms whose range may start at 0 (no dead layer, no back layer, dry soil), and factors
ZERO_ALLOWED = ("back_layer_um", "dead_layer_um", "sample_water_fraction")
FACTORS = (
    "diffusion_scale",
    "stopping_power_scale",
    "elastic_scale",
    "gain_scale",
    "sample_thickness_scale",
)


MAX_FIT_KEV = 1000.0  # a fit range beyond 1 MeV holds no tritium (endpoint 18.59 keV, NNDC)
MIN_TEMPLATE_PER_BIN = 100  # simulated template betas per bin, on average


MAX_COUNTING_S = 3.2e8  # ten years: a counting time beyond is a typo
CountingTime = Annotated[float, Field(gt=0, le=MAX_COUNTING_S)]


class ActivityConfig(Section):
    exposure_s: float | None = Field(gt=0)
    confidence: float = Field(gt=0, lt=1)
    false_positive_rate: float = Field(gt=0, lt=0.5)
    false_negative_rate: float = Field(gt=0, lt=0.5)
    forecast_times_s: list[CountingTime] = Field(min_length=1, max_length=20)
    forecast_calibration_uncertainty: float = Field(default=0.1, ge=0, lt=0.6)
    energy_range_kev: tuple[float, float]
    bin_kev: float = Field(gt=0)
    efficiency: float | None = Field(default=None, gt=0, le=1)
    efficiency_error: float = Field(default=0.0, ge=0, le=1)
    reference_bq: float | None = Field(default=None, gt=0, le=1e12)
    reference_error_bq: float = Field(default=0.0, ge=0, le=1e12)
    systematics: SystematicsConfig
    model: str | None = None
    efficiency_frames: int = Field(gt=0, le=10_000)
    template_events: int = Field(gt=0, le=10_000_000)
    seed: int = Field(ge=0)

    @model_validator(mode="after")
    def _binning(self) -> ActivityConfig:
        low, high = self.energy_range_kev
        if not 0 <= low < high <= MAX_FIT_KEV:
            raise ValueError(
                f"energy_range_kev {[low, high]} must rise from 0 keV or more to at most "
                f"{MAX_FIT_KEV:g} keV (tritium's betas end at 18.6 keV)"
            )
        bins = (high - low) / self.bin_kev
        if bins > self.template_events / MIN_TEMPLATE_PER_BIN:
            raise ValueError(
                f"{bins:,.0f} bins of bin_kev {self.bin_kev:g} over energy_range_kev "
                f"{[low, high]} leave fewer than {MIN_TEMPLATE_PER_BIN} of the "
                f"{self.template_events} template betas per bin: empty template bins would "
                "read tritium as background; widen bin_kev or raise template_events"
            )
        return self

    @model_validator(mode="after")
    def _threshold(self) -> ActivityConfig:
        span, (low, high) = self.systematics.threshold_kev, self.energy_range_kev
        if span is not None and not (span[0] <= low <= span[1] and span[1] < high):
            raise ValueError(
                f"systematics.threshold_kev {list(span)} must hold the low edge of "
                f"energy_range_kev {[low, high]} and stay below its high edge"
            )
        return self
