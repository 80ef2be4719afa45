"""Knock-on electrons (delta rays) of cosmic muons: what leaves a muon track as short side tracks.

For a muon (beta ~ 1, T_max of hundreds of MeV) the knock-ons with kinetic energy above T_min
number dN/dx = (K/2)(Z/A) rho / T_min per length (PDG, Passage of particles through matter,
eq. 34.6, with T_min << T_max), with spectrum ~ 1/T^2, emitted at cos theta = sqrt(T / (T + 2 m_e))
to the muon (the same section's kinematics with p_max/T_max ~ 1). They are carved out of the
muon's Moyal-distributed charge (whose tail they are) and transported as electrons
(`physics.transport_electrons`), labelled with their muon's event.
"""

from __future__ import annotations

import numpy as np

from pipeline.config import DetectorConfig, MuonConfig, PhysicsConfig
from pipeline.simulation import physics

K_MEV_CM2_PER_MOL = 0.307075  # 4 pi N_A r_e^2 m_e c^2 (PDG)
Z_OVER_A_SILICON = 14 / 28.0855
T_MAX_KEV = 1e4  # spectrum drawn up to 10 MeV: longer than any CCD is thick (ranges ~cm)


def rate_per_um(min_kev: float, physics_cfg: PhysicsConfig) -> float:
    """Knock-ons above `min_kev` per um of muon track in silicon."""
    per_cm = K_MEV_CM2_PER_MOL / 2 * Z_OVER_A_SILICON * physics_cfg.silicon_density_g_cm3
    return per_cm / (min_kev / 1000.0) * (1 - min_kev / T_MAX_KEV) / 1e4


def add_delta_rays(
    muons: physics.Segments,
    cfg: MuonConfig,
    det: DetectorConfig,
    physics_cfg: PhysicsConfig,
    rng: np.random.Generator,
) -> physics.Segments:
    """The muons' segments with their delta rays added (same event indices)."""
    if cfg.delta_ray_min_kev is None or len(muons.event) == 0:
        return muons
    t_min = cfg.delta_ray_min_kev
    length = np.linalg.norm(muons.end - muons.start, axis=1)
    count = rng.poisson(rate_per_um(t_min, physics_cfg) * length)
    parent = np.repeat(np.arange(len(length)), count)
    # a knock-on takes at most what its muon deposits (the Moyal draw it is the tail of)
    total = np.bincount(muons.event, muons.energy_kev)
    t_max = np.minimum(total[muons.event[parent]], T_MAX_KEV)
    parent = parent[t_max > t_min]
    t_max = t_max[t_max > t_min]
    if len(parent) == 0:
        return muons
    u = rng.random(len(parent))
    energy = 1.0 / (1.0 / t_min - u * (1.0 / t_min - 1.0 / t_max))
    along = muons.end[parent] - muons.start[parent]
    start = muons.start[parent] + along * rng.random(len(parent))[:, None]
    axis = along / np.maximum(np.linalg.norm(along, axis=1, keepdims=True), 1e-12)
    cos = np.sqrt(energy / (energy + 2 * physics.ELECTRON_MASS_KEV))
    direction = physics.deflect(axis, np.arccos(cos), rng)
    deltas = physics.transport_electrons(
        start, direction, energy, physics_cfg, det.thickness_um, rng
    )
    event = muons.event[parent][deltas.event]
    deltas = physics.Segments(
        deltas.start, deltas.end, deltas.energy_kev, event, deltas.extra_sigma_um
    )
    return _carved(muons, deltas)


def _carved(muons: physics.Segments, deltas: physics.Segments) -> physics.Segments:
    """Both, the muon segments scaled so that each event keeps its drawn total (down to 0)."""
    n = int(muons.event.max()) + 1
    total = np.bincount(muons.event, muons.energy_kev, minlength=n)
    taken = np.bincount(deltas.event, deltas.energy_kev, minlength=n)
    scale = np.clip(1 - taken / np.maximum(total, 1e-12), 0, 1)
    kept = physics.Segments(
        muons.start,
        muons.end,
        muons.energy_kev * scale[muons.event],
        muons.event,
        muons.extra_sigma_um,
    )
    return physics.Segments.concat([kept, deltas])
