"""What a streamed tile's detector has beside particles: readout artefacts and light drawn from
`stream.artefacts`, and a thin CCD or a thick alpha source drawn by their shares.

Each family of readout artefacts is on in half of the tiles that have artefacts (a real CCD shows
some, not all); a tile with light holds stars, a spectrum's trace and sky lines in the counts of
the ranges. Nothing is drawn where the config's classes lack the artefact class (a model without
it could not learn the label).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.config import deep_merge
from pipeline.config.artefacts import ArtefactRanges, ArtefactsConfig
from pipeline.simulation.light import log_uniform


def _readout(r: ArtefactRanges, size: int, det: Any, gain: float, rng: np.random.Generator):
    on = rng.random(9) < 0.5
    full_well = det.full_well_e
    saturates = rng.random() < r.bleed
    adc_max = det.pedestal_adu + gain * full_well * float(rng.uniform(0.3, 1.0))
    area = size * size / 1024**2
    sign = 1.0 if rng.random() < 0.5 else -1.0
    return {
        "cti": {
            "serial": log_uniform(rng, r.cti) * on[0],
            "parallel": log_uniform(rng, r.cti) * on[1],
            "trail_px": float(rng.uniform(1.0, 4.0)),
        },
        "serial_hits": {"rate_per_frame": float(rng.uniform(*r.serial_hits)) * area * on[2]},
        "crosstalk": {
            "amplifiers": 2,
            "coefficient": sign * log_uniform(rng, r.crosstalk) * on[3],
        },
        "glow": {
            "amplifier_e": log_uniform(rng, r.glow_e) * on[4],
            "amplifier_scale_px": float(rng.uniform(10, 60)),
            "edge_e": log_uniform(rng, r.glow_e) * on[5],
            "edge_scale_px": float(rng.uniform(1, 3)),
        },
        "spurious_charge_e": log_uniform(rng, r.spurious_charge_e) * on[6],
        "baseline": {
            "pickup_e": float(rng.uniform(*r.pickup_e)) * on[7],
            "pickup_period_px": log_uniform(rng, (10.0, 1000.0)),
            "jumps_per_frame": float(rng.uniform(*r.jumps)) * area * on[8],
        },
        "trap_columns": {"number": int(rng.poisson(rng.uniform(*r.trap_columns) * size / 1024))},
        "serial_full_well_e": full_well * float(rng.uniform(0.05, 0.5)) if saturates else None,
        "adc_max_adu": adc_max if saturates else None,
    }


def _light(r: ArtefactRanges, rng: np.random.Generator) -> dict[str, float]:
    return {
        "stars_per_frame": float(rng.uniform(*r.stars)),
        "traces_per_frame": float(rng.uniform(*r.traces)),
        "sky_lines_per_frame": float(rng.uniform(*r.sky_lines)),
    }


def draw_artefacts(
    config: Any, size: int, gain: float, rng: np.random.Generator
) -> ArtefactsConfig:
    """The artefacts of one streamed tile (size x size) of `config`, read at `gain` ADU/e-."""
    art: ArtefactsConfig = config.artefacts
    ranges = config.stream.artefacts
    if ranges is None or art.label not in config.classes:
        return art
    readout: dict[str, Any] = {}
    if rng.random() < ranges.share:
        readout = _readout(ranges, size, config.detector, gain, rng)
    light = _light(ranges, rng) if rng.random() < ranges.light_share else {}
    return ArtefactsConfig.model_validate(
        {
            "label": art.label,
            "readout": deep_merge(art.readout.model_dump(), readout),
            "light": art.light.model_dump() | light,
        }
    )
