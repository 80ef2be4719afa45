"""What the network is told about the detector: the conditioning descriptors.

The classical reconstruction knows the detector's diffusion: a compact cluster spread as far as
the back surface allows comes from the back (a tritium beta, a soft X-ray), a sharper one converted
deeper. A network that sees one tile cannot know that; it is given it as constant input channels
(`normalise.condition`). This module owns the descriptors: their value for a configured detector
(`from_config`), the log-normal jitter training adds so the network tolerates an imperfect value
(`jittered`), and the channels themselves (`channels`). The one descriptor now:

- `back_sigma_px`: the lateral diffusion sigma of charge made at the back surface, in pixels
  (DAMIC model sigma^2 = -A ln|1 - b z| at z = thickness; 0.94 px for the default 675 um CCD).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from pipeline.config import DetectorConfig, NormaliseConfig, PhysicsConfig
from pipeline.config.sections import CONDITION_UNITS

Context = dict[str, float]


def back_sigma_px(detector: DetectorConfig, physics: PhysicsConfig) -> float:
    """Diffusion sigma (pixels) of charge made at the back surface of `detector`."""
    sigma_um = float(physics.lateral_sigma_um(detector.thickness_um))
    return sigma_um / detector.pixel_size_um


def from_config(detector: DetectorConfig, physics: PhysicsConfig) -> Context:
    """Every descriptor's value for a configured (or simulated) detector."""
    return {"back_sigma_px": back_sigma_px(detector, physics)}


def jittered(context: Mapping[str, float], sigma: float, rng: np.random.Generator) -> Context:
    """Each value times exp(N(0, sigma)): a measured or stated value is never exact."""
    return {k: float(v * math.exp(sigma * rng.standard_normal())) for k, v in context.items()}


def channels(
    cfg: NormaliseConfig, context: Mapping[str, float] | None, shape: tuple[int, ...]
) -> np.ndarray:
    """(len(cfg.condition), *shape) float32 constant channels, value / unit; ValueError naming
    the missing descriptor where `context` lacks one the network takes."""
    given = context or {}
    missing = [name for name in cfg.condition if name not in given]
    if missing:
        raise ValueError(
            f"normalise.condition: the network takes {missing[0]!r} and it was not given "
            f"(given: {sorted(given)})"
        )
    out = np.empty((len(cfg.condition), *shape), dtype=np.float32)
    for i, name in enumerate(cfg.condition):
        out[i] = given[name] / CONDITION_UNITS[name]
    return out


def provenance(context: Mapping[str, float], source: str) -> dict[str, str]:
    """Map-file attributes: each descriptor's value (`condition_<name>`) and where it came from."""
    if not context:
        return {}
    values = {f"condition_{name}": f"{value:.4g}" for name, value in context.items()}
    return {**values, "condition_source": source}
