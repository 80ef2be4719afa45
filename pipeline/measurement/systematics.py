"""Systematic errors of the activity: what the detector model the efficiency rests on may be.

Owns varying each parameter of the detector model within its stated range
(`activity.systematics`: the back-surface partial-charge layer, the diffusion, the gain and the
energy threshold), the activity each end of a range gives, and the interval those shifts widen.
Each range is read as +-1 standard deviation of its parameter.

How one end is measured: the efficiency frames are simulated again with the parameter changed
(the same seeds, so the same decays: the change is not drowned in sampling noise) and labelled
by the truth; the ratio of that efficiency to the nominal one, both through the same spectral
fit, scales the efficiency the activity used (the model's, or the truth's), and the data's
spectrum is refitted (with its energies scaled, for the gain; with the new low edge, for the
threshold). An efficiency given with `activity.efficiency` is the real detector's (a
calibration source): then the model terms drop.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats

from pipeline.config import Config, ConfigError
from pipeline.config.stages import EfficiencySettings
from pipeline.core.atomic import atomic_output
from pipeline.core.errors import CatalogueError
from pipeline.core.stage import INPUT, OUTPUT, Flag, Stage, file_flag
from pipeline.measurement.efficiency import detector_of, file_attrs, ratio, simulated_catalogue
from pipeline.measurement.estimate import ActivityResult
from pipeline.measurement.spectrum import fit_energies, fit_spectrum
from pipeline.simulation.physics import escape_depth_um

# terms that change the simulated frames
RESIMULATED = ("back_layer_um", "diffusion_scale", "sample_density_g_cm3", "sample_water_fraction")
SAMPLE_TERMS = {"sample_density_g_cm3": "density_g_cm3", "sample_water_fraction": "water_fraction"}


def configured_spans(config: EfficiencySettings | Config) -> dict[str, tuple[float, float]]:
    """The terms of `activity.systematics` that apply: every range given, the sample's only for
    a layer sample (a surface source has no material)."""
    layer = config.sources.tritium.sample.kind == "layer"
    return {
        name: span
        for name, span in config.activity.systematics
        if span is not None and (layer or name not in SAMPLE_TERMS)
    }


@dataclass(frozen=True)
class Term:
    """One parameter varied to both ends of its range, and what the activity did."""

    name: str
    span: tuple[float, float]
    efficiency: tuple[float, float]  # at the low and high end
    activity_bq: tuple[float, float]
    error_bq: tuple[float, float]  # (down, up) shifts from the nominal activity

    def summary(self) -> dict[str, Any]:
        return {
            "range": list(self.span),
            "efficiency": list(self.efficiency),
            "activity_bq": list(self.activity_bq),
            "error_bq": list(self.error_bq),
        }


def varied(
    config: EfficiencySettings | Config, name: str, value: float
) -> EfficiencySettings | Config:
    """`config` with parameter `name` at `value` (the gain, and 'nominal', leave it as it is)."""
    if name == "back_layer_um":
        return config.model_copy(
            update={"detector": config.detector.model_copy(update={"backside_pcc_um": value})}
        )
    if name == "diffusion_scale":
        diffusion = config.physics.diffusion_a_um2 * value
        physics = config.physics.model_copy(update={"diffusion_a_um2": diffusion})
        return config.model_copy(update={"physics": physics})
    if name == "threshold_kev":
        span = (value, config.activity.energy_range_kev[1])
        activity = config.activity.model_copy(update={"energy_range_kev": span})
        return config.model_copy(update={"activity": activity})
    if name in SAMPLE_TERMS:
        tritium = config.sources.tritium
        sample = tritium.sample.model_copy(update={SAMPLE_TERMS[name]: value})
        sources = config.sources.model_copy(
            update={"tritium": tritium.model_copy(update={"sample": sample})}
        )
        return config.model_copy(update={"sources": sources})
    if name in ("gain_scale", "nominal"):
        return config
    raise ValueError(f"activity.systematics: unknown parameter {name!r}")


class EfficiencyModel:
    """The truth efficiency of the data's detector and of its variations, each simulated once:
    here, or before, by the workflow (`variants`: catalogues `run_variant` wrote)."""

    def __init__(
        self,
        config: EfficiencySettings | Config,
        data_attrs: dict[str, Any],
        variants: Sequence[str | Path] = (),
    ) -> None:
        self.config, self.attrs = config, data_attrs
        self._catalogues: dict[tuple[str, float], tuple[pd.DataFrame, int]] = {}
        for path in variants:
            key, table, decays = read_variant(path)
            self._catalogues[key] = (table, decays)

    def _detector(self, name: str, value: float) -> EfficiencySettings | Config:
        """The data's detector with `name` at `value`: simulated, and fitted, as such."""
        return detector_of(varied(self.config, name, value), self.attrs)

    def _catalogue(self, name: str, value: float) -> tuple[pd.DataFrame, int]:
        key = variant_key(name, value)
        if key not in self._catalogues:
            frames = self.config.activity.efficiency_frames
            self._catalogues[key] = simulated_catalogue(self._detector(*key), frames)
        return self._catalogues[key]

    def efficiency_with_error(
        self, name: str = "nominal", value: float = 0.0
    ) -> tuple[float, float]:
        """The truth efficiency and its error, nominal or with `name` at `value`."""
        return ratio(self._detector(name, value), *self._catalogue(name, value))

    def efficiency(self, name: str = "nominal", value: float = 0.0) -> float:
        return self.efficiency_with_error(name, value)[0]


def measure_terms(
    config: EfficiencySettings | Config,
    data_attrs: dict[str, Any],
    catalogue: pd.DataFrame,
    result: ActivityResult,
    model: EfficiencyModel | None = None,
) -> list[Term]:
    """Every configured term of `activity.systematics` for the data's `catalogue` and its
    nominal `result` (`model`: the data's detector, with what it simulated already); none where
    the config gives the efficiency."""
    spans = configured_spans(config)
    if config.activity.efficiency is not None or not spans:
        return []
    model = model or EfficiencyModel(config, data_attrs)
    energies = fit_energies(catalogue)
    nominal = model.efficiency()
    terms = []
    for name, span in spans.items():
        efficiencies, activities = [], []
        for value in span:
            relative = model.efficiency(name, value) / nominal * _mass_ratio(config, name, value)
            efficiencies.append(result.efficiency * relative)
            scale = value if name == "gain_scale" else 1.0
            fit = fit_spectrum(energies * scale, varied(config, name, value))
            activities.append(fit.tritium / (efficiencies[-1] * result.live_time_s))
        low, high = min(activities), max(activities)
        down, up = max(result.activity_bq - low, 0.0), max(high - result.activity_bq, 0.0)
        terms.append(
            Term(
                name,
                (span[0], span[1]),
                (efficiencies[0], efficiencies[1]),  # the low and the high end of the span
                (activities[0], activities[1]),
                (down, up),
            )
        )
    return terms


def _mass_ratio(config: EfficiencySettings | Config, name: str, value: float) -> float:
    """The escape layer's mass with `name` at `value` over the nominal one: an efficiency per
    decay of the escape layer compares across sample variants only per gram (their escape
    depths differ). 1 for every other term, and for a surface source."""
    if name not in SAMPLE_TERMS or config.sources.tritium.sample.kind != "layer":
        return 1.0

    def mass(settings: EfficiencySettings | Config) -> float:
        tritium = settings.sources.tritium
        return tritium.sample.density_g_cm3 * escape_depth_um(tritium)

    return mass(varied(config, name, value)) / mass(config)


def with_systematics(result: ActivityResult, terms: list[Term]) -> ActivityResult:
    """`result` with its interval widened by the terms, in quadrature per side; each term's
    shift is one standard deviation, scaled to the interval's confidence."""
    if not terms:
        return result
    z = float(stats.norm.ppf(0.5 + result.fit.confidence / 2))
    down = z * float(np.hypot.reduce([t.error_bq[0] for t in terms]))
    up = z * float(np.hypot.reduce([t.error_bq[1] for t in terms]))
    low, high = result.interval_bq
    value = result.activity_bq
    interval = (max(value - np.hypot(value - low, down), 0.0), value + np.hypot(high - value, up))
    return dataclasses.replace(result, interval_bq=(float(interval[0]), float(interval[1])))


def calibration_uncertainty(result: ActivityResult, terms: list[Term]) -> float:
    """Relative standard uncertainty of 1 / (efficiency x live time): the efficiency's own error
    and, per term, the larger relative shift of the efficiency at the ends of its range (read,
    as the interval reads it, as one standard deviation), in quadrature. The detection limit
    needs it where the activity itself may be zero, so shifts of the efficiency, not of the
    activity, are what counts."""
    relative = [result.efficiency_error / result.efficiency]
    for term in terms:
        relative.append(max(abs(e / result.efficiency - 1.0) for e in term.efficiency))
    return float(np.hypot.reduce(relative))


def summary(config: EfficiencySettings | Config, terms: list[Term]) -> dict[str, Any]:
    """The JSON of the terms, or why there are none."""
    if config.activity.efficiency is not None:
        return {"dropped": "activity.efficiency is the real detector's: no detector-model terms"}
    return {t.name: t.summary() for t in terms}


# ---------------------------------------------------------------- variants as workflow datasets

VARIANT_META = b"ccd_decay_unet.efficiency_variant"  # Parquet metadata: the variant and decays


def variant_key(name: str, value: float) -> tuple[str, float]:
    """What a term's efficiency rests on: its own simulation, or the nominal one."""
    return (name, float(value)) if name in RESIMULATED else ("nominal", 0.0)


def variant_names(config: EfficiencySettings | Config) -> list[str]:
    """The variants the activity's systematics simulate: nominal, and TERM-low / TERM-high of
    every configured term that changes the simulated frames; none where the efficiency is
    given."""
    if config.activity.efficiency is not None:
        return []
    spans = configured_spans(config)
    ends = [f"{name}-{end}" for name in RESIMULATED if name in spans for end in ("low", "high")]
    return ["nominal", *ends]


def _variant(config: EfficiencySettings | Config, variant: str) -> tuple[str, float]:
    if variant == "nominal":
        return "nominal", 0.0
    name, _, end = variant.rpartition("-")
    span = configured_spans(config).get(name)
    if name not in RESIMULATED or end not in ("low", "high") or span is None:
        raise ConfigError(
            f"--variant {variant!r}: not one of {variant_names(config) or ['nominal']} "
            "(nominal, or TERM-low / TERM-high of a configured activity.systematics term that "
            f"is simulated: {', '.join(RESIMULATED)})"
        )
    return name, float(span[0] if end == "low" else span[1])


def read_variant(path: str | Path) -> tuple[tuple[str, float], pd.DataFrame, int]:
    """((term, value), truth catalogue, decays) of a variant `run_variant` wrote."""
    with Path(path).open("rb") as handle:
        table = pq.read_table(handle)
    meta = json.loads((table.schema.metadata or {}).get(VARIANT_META, b"null"))
    if not meta:
        raise CatalogueError(f"{path}: not an efficiency variant (no {VARIANT_META.decode()})")
    return (meta["term"], float(meta["value"])), table.to_pandas(), int(meta["decays"])


def run_variant(
    settings: EfficiencySettings, frames: str | Path, out: str | Path, variant: str = "nominal"
) -> str:
    """The `variant` stage: the truth catalogue of the efficiency frames of the detector of
    `frames`, with one term of `activity.systematics` at one end of its range (or nominal),
    and the decays in them, into `out` (what `activity --variants` reads)."""
    key = _variant(settings, variant)
    model = EfficiencyModel(settings, file_attrs(settings, frames))
    table, decays = model._catalogue(*key)
    meta = {"term": key[0], "value": key[1], "decays": decays, "variant": variant}
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata(
        {**(arrow.schema.metadata or {}), VARIANT_META: json.dumps(meta).encode()}
    )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp, tmp.open("wb") as handle:  # any bytes in its name
        pq.write_table(arrow, handle)
    return f"wrote {out}: {len(table)} truth clusters, {decays} decays ({variant})"


STAGE = Stage(
    "variant",
    "the truth efficiency of one variant of the detector model, for the activity's systematics",
    "Reads: a frame file (the detector it states) and the config's detector, sources and "
    "activity.systematics. Writes: a Parquet catalogue of the truth clusters of "
    "activity.efficiency_frames frames simulated for that detector with one term at one end "
    "of its range (or nominal), and the decays in them; give it to `activity --variants`.",
    run_variant,
    EfficiencySettings,
    (
        file_flag("--frames", "the data's frame file", INPUT),
        file_flag("--out", "catalogue to write (.parquet)", OUTPUT),
        Flag(
            "--variant",
            "nominal, or TERM-low / TERM-high of activity.systematics",
            arg="variant",
        ),
    ),
)
