"""Alphas from the sample (`sources.alpha`): straight tracks with a Bragg-curve energy profile,
from a thin sample (their full energy) or a thick one (a continuum from 0).

Ranges follow R = R_ref (E / E_ref)^p, fitted to NIST ASTAR in silicon (the config's numbers).
"""

from __future__ import annotations

import numpy as np

from pipeline.config import AlphaConfig, DetectorConfig
from pipeline.simulation.physics import Segments, isotropic_into_bulk, uniform_xy


def alpha_range_um(energy_kev: np.ndarray, cfg: AlphaConfig) -> np.ndarray:
    return cfg.range_ref_um * (np.asarray(energy_kev) / cfg.range_ref_kev) ** cfg.range_exponent


def alpha_segments(
    n: int, cfg: AlphaConfig, det: DetectorConfig, rng: np.random.Generator
) -> Segments:
    """Alphas from the back surface: straight tracks with a Bragg-curve energy profile.

    With R = R_ref (E/E_ref)^p the energy left after path s is E0 (1 - s/R)^(1/p), so each of the
    equal-length segments deposits the drop of that curve across it (most at the end). From a
    thick sample (`source: thick`) an alpha emitted at depth d along cos theta keeps the range
    R - d / cos theta: uniform in [0, R], with directions of escape ~ cos theta (Lambert).
    """
    if n == 0:
        return Segments.empty()
    energy = rng.uniform(*cfg.energy_kev, n)
    total_range = alpha_range_um(energy, cfg)
    direction = isotropic_into_bulk(n, rng)
    if cfg.source == "thick":
        total_range = total_range * rng.random(n)
        energy = cfg.range_ref_kev * (total_range / cfg.range_ref_um) ** (1 / cfg.range_exponent)
        direction[:, 2] = -np.sqrt(rng.random(n))  # Lambert: cos theta = sqrt(u)
        direction[:, :2] *= (np.sqrt(1 - direction[:, 2] ** 2) / np.maximum(
            np.hypot(direction[:, 0], direction[:, 1]), 1e-12))[:, None]  # fmt: skip
    start = np.column_stack([uniform_xy(n, det, rng), np.full(n, det.thickness_um)])
    fractions = np.arange(cfg.steps + 1) / cfg.steps
    node_energy = energy[:, None] * (1 - fractions[None, :]) ** (1 / cfg.range_exponent)
    nodes = (
        start[:, None, :] + direction[:, None, :] * (total_range[:, None] * fractions)[..., None]
    )
    event = np.repeat(np.arange(n), cfg.steps)
    deposit = (node_energy[:, :-1] - node_energy[:, 1:]).ravel()
    return Segments(
        nodes[:, :-1].reshape(-1, 3),
        nodes[:, 1:].reshape(-1, 3),
        deposit,
        event,
        np.full(len(event), cfg.plasma_sigma_um),
    )
