"""The terms of the activity's systematics: which number of the detector, transport or sample
model each varies, the config with that number at a value, and the variants (TERM-low,
TERM-high) whose efficiency frames are simulated again.

Owns the names of `activity.systematics` and what they move; nothing here measures anything
(pipeline/measurement/systematics.py does).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import Config, ConfigError
from pipeline.config.stages import EfficiencySettings
from pipeline.simulation.physics import escape_depth_um

Settings = EfficiencySettings | Config


@dataclass(frozen=True)
class TermSpec:
    """What one term moves: `section.key` of the config (the data's energies for the gain), as
    a value or as a factor on the nominal (`factor`), and whether it changes the frames."""

    section: str
    key: str
    resimulated: bool
    factor: bool = False
    layer_only: bool = False


TERMS: dict[str, TermSpec] = {
    "back_layer_um": TermSpec("detector", "backside_pcc_um", True),
    "back_layer_shape": TermSpec("detector", "backside_pcc_shape", True),
    "dead_layer_um": TermSpec("detector", "backside_dead_um", True),
    "diffusion_scale": TermSpec("physics", "diffusion_a_um2", True, factor=True),
    "stopping_power_scale": TermSpec("physics", "stopping_power_scale", True, factor=True),
    "elastic_scale": TermSpec("physics", "elastic_scale", True, factor=True),
    "gain_scale": TermSpec("data", "energy scale", False, factor=True),
    "threshold_kev": TermSpec("activity", "energy_range_kev", False),
    "sample_density_g_cm3": TermSpec("sample", "density_g_cm3", True, layer_only=True),
    "sample_water_fraction": TermSpec("sample", "water_fraction", True, layer_only=True),
    "sample_thickness_scale": TermSpec(
        "sample", "thickness_um", True, factor=True, layer_only=True
    ),
}
SAMPLE_TERMS = tuple(name for name, spec in TERMS.items() if spec.layer_only)


def is_layer(config: Settings) -> bool:
    return config.sources.tritium.sample.kind == "layer"


def configured_spans(config: Settings) -> dict[str, tuple[float, float]]:
    """The terms of `activity.systematics` that apply: every range given, the sample's only for
    a layer sample (a surface source has no material)."""
    return {
        name: (float(span[0]), float(span[1]))
        for name, span in config.activity.systematics
        if span is not None and (is_layer(config) or not TERMS[name].layer_only)
    }


def not_applied(config: Settings) -> dict[str, str]:
    """Every term of `activity.systematics` that is not varied, and why (the JSON lists them)."""
    why: dict[str, str] = {}
    for name, span in config.activity.systematics:
        if span is None:
            why[name] = "no range given (activity.systematics: null)"
        elif TERMS[name].layer_only and not is_layer(config):
            why[name] = "a surface source has no sample material"
    return why


def nominal_value(config: Settings, name: str) -> float:
    """The value the nominal model takes for term `name` (1 for a factor)."""
    spec = TERMS[name]
    if spec.factor:
        return 1.0
    if spec.section == "activity":
        return float(config.activity.energy_range_kev[0])
    if spec.section == "sample":
        return float(getattr(config.sources.tritium.sample, spec.key))
    return float(getattr(getattr(config, spec.section), spec.key))


def varied(config: Settings, name: str, value: float) -> Settings:
    """`config` with term `name` at `value` ('nominal' and the gain leave it as it is: the gain
    scales the data's energies, not the model)."""
    if name == "nominal" or name == "gain_scale":
        return config
    if name not in TERMS:
        raise ValueError(f"activity.systematics: unknown term {name!r}; known: {', '.join(TERMS)}")
    spec = TERMS[name]
    if spec.section == "activity":
        span = (value, config.activity.energy_range_kev[1])
        return _with(config, "activity", config.activity.model_copy(update={spec.key: span}))
    if spec.section == "sample":
        tritium = config.sources.tritium
        new = value * getattr(tritium.sample, spec.key) if spec.factor else value
        sample = tritium.sample.model_copy(update={spec.key: new})
        sources = config.sources.model_copy(
            update={"tritium": tritium.model_copy(update={"sample": sample})}
        )
        return _with(config, "sources", sources)
    section = getattr(config, spec.section)
    new = value * getattr(section, spec.key) if spec.factor else value
    return _with(config, spec.section, section.model_copy(update={spec.key: new}))


def _with(config: Settings, section: str, value: object) -> Settings:
    return config.model_copy(update={section: value})


def variant_key(config: Settings, name: str, value: float) -> tuple[str, float]:
    """What a term's efficiency at `value` rests on: its own simulation, or the nominal one
    (the gain and the threshold, the nominal value itself, and a layer thicker than the escape
    depth at both: the same frames)."""
    spec = TERMS.get(name)
    if spec is None or not spec.resimulated or value == nominal_value(config, name):
        return ("nominal", 0.0)
    if name == "sample_thickness_scale":
        tritium = config.sources.tritium
        if escape_depth_um(varied(config, name, value).sources.tritium) == escape_depth_um(tritium):
            return ("nominal", 0.0)
    return (name, float(value))


def variant_names(config: Settings) -> list[str]:
    """The variants whose efficiency frames are simulated again: TERM-low / TERM-high of every
    configured term that changes the frames (an end at the nominal model is the nominal
    frames); none where the efficiency is given."""
    if config.activity.efficiency is not None:
        return []
    names = []
    for name, span in configured_spans(config).items():
        for end, value in zip(("low", "high"), span, strict=True):
            if variant_key(config, name, value)[0] != "nominal":
                names.append(f"{name}-{end}")
    return names


def parse_variant(config: Settings, variant: str) -> tuple[str, float]:
    """(term, value) of a variant name TERM-low / TERM-high; a ConfigError naming the ones
    there are if it is not one."""
    name, _, end = variant.rpartition("-")
    span = configured_spans(config).get(name)
    if variant not in variant_names(config) or span is None:
        raise ConfigError(
            f"--variant {variant!r}: not one of {variant_names(config) or 'none'} (TERM-low / "
            "TERM-high of a configured activity.systematics term that changes the simulated "
            f"frames: {', '.join(n for n, s in TERMS.items() if s.resimulated)})"
        )
    return name, span[0] if end == "low" else span[1]


def mass_ratio(config: Settings, name: str, value: float) -> float:
    """The escape layer's mass with `name` at `value` over the nominal one: an efficiency per
    decay of the escape layer compares across sample variants only per gram (their escape
    depths differ). 1 for every other term, and for a surface source."""
    if name not in SAMPLE_TERMS or not is_layer(config):
        return 1.0

    def mass(settings: Settings) -> float:
        tritium = settings.sources.tritium
        return tritium.sample.density_g_cm3 * escape_depth_um(tritium)

    return mass(varied(config, name, value)) / mass(config)
