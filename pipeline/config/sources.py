"""The sources section of the configuration: what the simulator draws in each frame.

The five physical sources (tritium betas, X-rays, muons, electrons, alphas) are typed fields,
each labelled with the class of its own name. Another source (a nuclear recoil, a detector
artefact) is a section of its own under `sources:` (`AddedSource`: the class it labels, its rate,
its own parameters), drawn by the function registered under its name
(pipeline/simulation/sources.py), which checks those parameters with its own model.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from pipeline.config.base import Section

# events of one kind per frame: 1e5 clusters fill a 4k x 4k frame; more is a typo, not a source
MAX_RATE = 1e5
MAX_PARTICLE_KEV = 1e5  # 100 MeV: beyond any alpha, beta or Compton electron from a sample


def _rising(span: tuple[float, float]) -> tuple[float, float]:
    low, high = span
    if not 0 < low <= high <= MAX_PARTICLE_KEV:
        raise ValueError(
            f"an energy range must rise from above 0 to at most {MAX_PARTICLE_KEV:g} keV, got "
            f"{list(span)}"
        )
    return span


EnergyRange = Annotated[tuple[float, float], AfterValidator(_rising)]  # (low, high) keV


class SampleConfig(Section):
    """Where the tritium decays: on the back surface (`surface`: betas enter the silicon, the
    activity is the rate of betas entering the CCD), or through a layer pressed on it (`layer`:
    soil, a smear or a filter; the activity is the layer's, per gram too)."""

    kind: Literal["surface", "layer"]
    thickness_um: float = Field(gt=0, le=1e6)
    density_g_cm3: float = Field(gt=0, le=25)
    water_fraction: float = Field(ge=0, le=1)
    gap_um: float = Field(ge=0, le=1e4)


class TritiumConfig(Section):
    rate_per_frame: float = Field(ge=0, le=MAX_RATE)
    endpoint_kev: float = Field(gt=0, le=MAX_PARTICLE_KEV)
    daughter_z: int = Field(ge=1)
    sample: SampleConfig


class XrayLine(Section):
    """An X-ray line: its energy, its share of the X-rays, its attenuation length in Si."""

    energy_kev: float = Field(gt=0, le=1000, description="line energy (keV)")
    weight: float = Field(ge=0, description="relative weight among the lines and the continuum")
    attenuation_um: float = Field(
        gt=0, le=1e7, description="attenuation length in Si (um), NIST XCOM"
    )


class XrayConfig(Section):
    rate_per_frame: float = Field(ge=0, le=MAX_RATE)
    lines: list[XrayLine] = Field(min_length=1)
    continuum_weight: float = Field(ge=0, le=1e6)
    continuum_kev: EnergyRange
    continuum_ref_kev: float = Field(ge=0.1, le=1000)  # a reference energy of X-rays
    continuum_ref_attenuation_um: float = Field(gt=0, le=1e7)
    entry: Literal["back", "front", "uniform"] = "back"

    @model_validator(mode="after")
    def _some_weight(self) -> XrayConfig:
        if self.continuum_weight + sum(line.weight for line in self.lines) <= 0:
            raise ValueError("the lines' weights and continuum_weight are all 0: no X-ray to draw")
        return self


class MuonConfig(Section):
    rate_per_frame: float = Field(ge=0, le=MAX_RATE)
    # silicon: ~80 pairs/um most probable; 1e4 bounds any minimum-ionising track
    mpv_e_per_um: float = Field(gt=0, le=1e4)
    landau_width_e_per_um: float = Field(gt=0, le=1e4)
    step_um: float = Field(ge=0.01, le=1e4)
    cos_power: float = Field(default=3.0, ge=0, le=20)
    delta_ray_min_kev: float | None = Field(default=None, gt=0, le=1e5)


class BetaBranch(Section):
    """One beta branch of a natural radionuclide of the sample (allowed shape)."""

    nuclide: str = Field(description="the emitter (for the reader; not used)")
    endpoint_kev: float = Field(
        gt=0, le=MAX_PARTICLE_KEV, description="the branch's endpoint energy (keV)"
    )
    daughter_z: int = Field(ge=1, le=120, description="the daughter's Z, for the Fermi function")
    weight: float = Field(ge=0, description="relative weight: activity x branch intensity")


class ElectronConfig(Section):
    rate_per_frame: float = Field(ge=0, le=MAX_RATE)
    energy_kev: EnergyRange
    compton_fraction: float = Field(default=0.0, ge=0, le=1)
    gamma_lines_kev: list[Annotated[float, Field(gt=0, le=MAX_PARTICLE_KEV)]] = Field(
        default_factory=lambda: [1460.8], min_length=1
    )
    back_fraction: float = Field(default=0.0, ge=0, le=1)
    back_betas: list[BetaBranch] = Field(default_factory=list)

    @model_validator(mode="after")
    def _betas(self) -> ElectronConfig:
        if self.back_fraction > 0 and not any(b.weight > 0 for b in self.back_betas):
            raise ValueError("back_fraction > 0 needs back_betas with a positive weight")
        return self


class AlphaConfig(Section):
    rate_per_frame: float = Field(ge=0, le=MAX_RATE)
    energy_kev: EnergyRange
    range_ref_kev: float = Field(ge=1, le=1e6)  # ASTAR's alphas: keV to GeV
    range_ref_um: float = Field(gt=0, le=1e6)
    range_exponent: float = Field(gt=0, le=5)  # ~1.5-1.8 for alphas (Geiger's rule 1.5)
    plasma_sigma_um: float = Field(ge=0, le=1000)
    steps: int = Field(ge=1, le=10_000)
    source: Literal["thin", "thick"] = "thin"


class AddedSource(Section):
    """A source added by name (pipeline/simulation/sources.py registers its function): the class
    its deposits are labelled with, its rate, and its own parameters."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    label: str = Field(description="the class its deposits are labelled with (one of classes)")
    rate_per_frame: float = Field(ge=0, le=MAX_RATE, description="mean events per frame (Poisson)")


class SourcesConfig(Section):
    tritium: TritiumConfig
    xray: XrayConfig
    muon: MuonConfig
    electron: ElectronConfig
    alpha: AlphaConfig

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    __pydantic_extra__: dict[str, AddedSource] = Field(init=False)  # sources added by name

    def sections(self) -> dict[str, TritiumConfig | XrayConfig | MuonConfig | ElectronConfig
                                  | AlphaConfig | AddedSource]:  # fmt: skip
        """Every source's section by name: the five physical ones, then those added."""
        built_in = {name: getattr(self, name) for name in type(self).model_fields}
        return built_in | dict(self.model_extra or {})

    def labels(self) -> dict[str, str]:
        """source -> the class its deposits are labelled with."""
        added = {name: s.label for name, s in (self.model_extra or {}).items()}
        return {name: name for name in type(self).model_fields} | added
