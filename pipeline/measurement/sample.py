"""The sample's activity and activity concentration (Bq, Bq/g) from the activity the fit measures.

Owns the step from what the CCD sees to what is in the sample (`sources.tritium.sample`):
- `surface`: the efficiency is per beta entering the silicon, so the activity is that rate
  (the surface emission rate); there is no mass, so no value per gram.
- `layer` (soil, a smear, a filter): the efficiency is per decay in the layer's escape depth
  under the CCD, the depth the simulation draws decays from (all of a thin layer; 1.2 CSDA
  ranges of the endpoint in a thick one, pipeline/simulation/physics.py `escape_depth_um`), so
  the measured activity is that of the escape layer's mass m = density x CCD area x depth.
  Its concentration is activity / m (Bq/g), and the sample's activity under the CCD is that
  concentration times the whole layer's mass. In a thick layer the concentration does not
  depend on the density assumed: the escape depth scales as 1 / density, its mass not at all.
Every activity-like number (value, interval, decision threshold, detection limit) scales by
the same factor, so the ISO 11929 limits carry over unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.config import TritiumConfig
from pipeline.measurement.limits import limit_words
from pipeline.simulation.physics import escape_depth_um

UM2_PER_CM2 = 1e8


@dataclass(frozen=True)
class SampleScale:
    """What the measured activity is the activity of, and the masses that convert it."""

    escape_depth_um: float
    area_cm2: float
    escape_mass_g: float  # the mass the measured activity is that of
    sample_mass_g: float  # the whole layer under the CCD


def sample_scale(
    tritium: TritiumConfig, height: int, width: int, pixel_um: float
) -> SampleScale | None:
    """The layer's masses under a CCD of `height` x `width` pixels of `pixel_um`; None for a
    surface source (no mass)."""
    sample = tritium.sample
    if sample.kind == "surface":
        return None
    area_cm2 = height * width * pixel_um**2 / UM2_PER_CM2
    depth = escape_depth_um(tritium)
    grams_per_um = sample.density_g_cm3 * area_cm2 / 1e4
    return SampleScale(depth, area_cm2, grams_per_um * depth, grams_per_um * sample.thickness_um)


def sample_summary(summary: dict[str, Any], scale: SampleScale | None) -> dict[str, Any]:
    """The sample's numbers from the activity JSON's (`activity_bq` and the like): per gram,
    and for the whole layer under the CCD; for a surface source, what the activity is."""
    if scale is None:
        return {
            "kind": "surface",
            "activity_is": "betas entering the CCD per second (surface emission rate); no mass",
        }
    per_gram = 1.0 / scale.escape_mass_g
    whole = scale.sample_mass_g / scale.escape_mass_g
    mda = summary.get("mda_bq")
    return {
        "kind": "layer",
        "activity_is": "decays per second in the layer's escape depth under the CCD",
        "escape_depth_um": scale.escape_depth_um,
        "area_cm2": scale.area_cm2,
        "escape_mass_g": scale.escape_mass_g,
        "sample_mass_g": scale.sample_mass_g,
        "concentration_bq_per_g": summary["activity_bq"] * per_gram,
        "concentration_interval_bq_per_g": [v * per_gram for v in summary["interval_bq"]],
        "decision_threshold_bq_per_g": summary["decision_threshold_bq"] * per_gram,
        "mda_bq_per_g": None if mda is None else mda * per_gram,
        "sample_activity_bq": summary["activity_bq"] * whole,
        "sample_interval_bq": [v * whole for v in summary["interval_bq"]],
        "per_gram": per_gram,
    }


def said(sample: dict[str, Any], confidence: float) -> list[str]:
    """The sample's numbers in words (none for a surface source)."""
    if sample["kind"] != "layer":
        return []
    low, high = sample["concentration_interval_bq_per_g"]
    limit = limit_words(sample["mda_bq_per_g"], "Bq/g")
    return [
        f"sample: {sample['concentration_bq_per_g']:.4g} Bq/g ({confidence:.0%} interval "
        f"{low:.4g}-{high:.4g} Bq/g), decision threshold "
        f"{sample['decision_threshold_bq_per_g']:.4g} Bq/g, {limit}; "
        f"{sample['sample_activity_bq']:.4g} Bq in the {sample['sample_mass_g']:.4g} g under "
        f"the CCD (escape depth {sample['escape_depth_um']:.3g} um)"
    ]
