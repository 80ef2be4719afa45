"""Particle sources and charge transport in silicon, for the simulator.

Owns the Monte Carlo of what each source deposits in a fully depleted CCD: tritium betas from a
sample on the back surface, X-ray conversions, cosmic muons and Compton electrons (alphas:
`pipeline.simulation.alphas`; the muons' delta rays: `pipeline.simulation.delta_rays`). Every
source returns `Segments`: straight pieces of track, each with the energy it deposits in silicon.
`simulate` turns segments into electrons, diffuses them and bins them into pixels.

Coordinates are in micrometres: x along columns, y along rows, z the depth from the collection
(front) side, so the back surface, where the sample sits, is at z = thickness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from pipeline.config import (
    BetaBranch,
    DetectorConfig,
    ElectronConfig,
    MuonConfig,
    PhysicsConfig,
    TritiumConfig,
    XrayConfig,
)
from pipeline.simulation import electrons

ELECTRON_MASS_KEV = 510.99895  # CODATA 2018
FINE_STRUCTURE = 7.2973525693e-3  # CODATA 2018
HIGHLAND_MEV = (
    13.6  # Highland multiple-scattering constant (PDG, Passage of particles through matter)
)
HIGHLAND_LOG = 0.038


@dataclass
class Segments:
    """Straight track pieces from (x0, y0, z0) to (x1, y1, z1), um, depositing `energy_kev`."""

    start: np.ndarray  # (n, 3)
    end: np.ndarray  # (n, 3)
    energy_kev: np.ndarray  # (n,)
    event: np.ndarray  # (n,) index of the event within the frame
    extra_sigma_um: np.ndarray  # (n,) lateral spread added to diffusion (plasma)

    @classmethod
    def empty(cls) -> Segments:
        return cls(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0, int), np.zeros(0))

    @classmethod
    def concat(cls, parts: list[Segments]) -> Segments:
        if not parts:
            return cls.empty()
        return cls(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__)
        )

    def shifted(self, event_offset: int) -> Segments:
        return Segments(
            self.start, self.end, self.energy_kev, self.event + event_offset, self.extra_sigma_um
        )


# ---------------------------------------------------------------- spectra and ranges


def beta_spectrum(kinetic_kev: np.ndarray, endpoint_kev: float, daughter_z: int) -> np.ndarray:
    """Allowed beta spectrum dN/dT with the non-relativistic Fermi function (unnormalised)."""
    t = np.clip(kinetic_kev, 1e-9, endpoint_kev)
    total = t + ELECTRON_MASS_KEV
    momentum = np.sqrt(total**2 - ELECTRON_MASS_KEV**2)
    eta = daughter_z * FINE_STRUCTURE * total / momentum
    fermi = 2 * np.pi * eta / (1 - np.exp(-2 * np.pi * eta))
    return fermi * momentum * total * (endpoint_kev - t) ** 2


def sample_beta_energies(n: int, cfg: TritiumConfig, rng: np.random.Generator) -> np.ndarray:
    return draw_beta_energies(n, cfg.endpoint_kev, cfg.daughter_z, rng)


def draw_beta_energies(
    n: int, endpoint_kev: float, daughter_z: int, rng: np.random.Generator
) -> np.ndarray:
    """`n` kinetic energies from the allowed beta spectrum (inverse CDF on a grid)."""
    grid = np.linspace(0.0, endpoint_kev, 4097)
    density = beta_spectrum(grid, endpoint_kev, daughter_z)
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2)])
    return np.interp(rng.random(n) * cdf[-1], cdf, grid)


def branch_beta_energies(
    n: int, branches: list[BetaBranch], rng: np.random.Generator
) -> np.ndarray:
    """`n` kinetic energies from a mixture of beta branches, each drawn with its weight."""
    weights = np.array([b.weight for b in branches], dtype=float)
    which = rng.choice(len(branches), size=n, p=weights / weights.sum())
    energy = np.empty(n)
    for i, branch in enumerate(branches):
        chosen = which == i
        energy[chosen] = draw_beta_energies(
            int(chosen.sum()), branch.endpoint_kev, branch.daughter_z, rng
        )
    return energy


def electron_range_um(energy_kev: np.ndarray, physics: PhysicsConfig) -> np.ndarray:
    """CSDA range in silicon: the integral of ICRU 37's stopping power
    (pipeline/simulation/electrons.py)."""
    return np.asarray(electrons.csda_range_um(energy_kev, electrons.silicon(physics)))


def electron_energy_kev(range_um: np.ndarray, physics: PhysicsConfig) -> np.ndarray:
    """Inverse of `electron_range_um`: the kinetic energy whose residual range is `range_um`."""
    grid = electrons.RANGE_GRID_KEV
    table = electrons.csda_range_um(grid, electrons.silicon(physics))
    return np.interp(np.asarray(range_um, float), table, grid, left=0.0)


def diffusion_sigma_um(depth_um: np.ndarray, physics: PhysicsConfig) -> np.ndarray:
    """Lateral diffusion of charge created at depth z (DAMIC model, sigma^2 = -A ln|1 - b z|)."""
    return np.asarray(physics.lateral_sigma_um(depth_um), dtype=float)


# ---------------------------------------------------------------- directions


def isotropic_into_bulk(n: int, rng: np.random.Generator) -> np.ndarray:
    """Directions of particles emitted isotropically from the back surface into the bulk."""
    cos = rng.random(n)
    phi = rng.uniform(0, 2 * np.pi, n)
    sin = np.sqrt(1 - cos**2)
    return np.stack([sin * np.cos(phi), sin * np.sin(phi), -cos], axis=1)


def _isotropic(n: int, rng: np.random.Generator) -> np.ndarray:
    d = rng.normal(size=(n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (n, 3) arrays (np.cross's axis handling costs more than it)."""
    ax, ay, az = a.T
    bx, by, bz = b.T
    return np.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], axis=1)


def deflect(direction: np.ndarray, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate unit vectors by polar angles `theta` about a uniform azimuth."""
    helper = np.where(np.abs(direction[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    u = _cross(direction, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = _cross(direction, u)
    phi = rng.uniform(0, 2 * np.pi, len(direction))[:, None]
    t = theta[:, None]
    new = np.cos(t) * direction + np.sin(t) * (np.cos(phi) * u + np.sin(phi) * v)
    return new / np.linalg.norm(new, axis=1, keepdims=True)


def _highland_theta0(energy_kev: np.ndarray, step_um: np.ndarray, x0_um: float) -> np.ndarray:
    """Highland width per projection: 13.6 MeV/(beta c p) sqrt(x/X0) [1 + 0.038 ln(x/(X0 beta^2))].

    PDG, Passage of particles through matter (eq. 34.16 in RPP 2020-2024; Lynch & Dahl, NIM B 58
    (1991) 6). The 1/beta^2 in the logarithm matters for slow electrons: without it theta0 is 7%
    too small at 100 keV and 20% at 20 keV.
    """
    total = energy_kev + ELECTRON_MASS_KEV
    pc = np.sqrt(np.maximum(total**2 - ELECTRON_MASS_KEV**2, 1e-12))
    beta = pc / total
    beta_pc_mev = pc * beta / 1000.0
    t = np.maximum(step_um / x0_um, 1e-12)
    log_term = 1 + HIGHLAND_LOG * np.log(t / beta**2)
    return HIGHLAND_MEV / beta_pc_mev * np.sqrt(t) * np.maximum(log_term, 0.1)


# ---------------------------------------------------------------- transport


def transport_electrons(
    start: np.ndarray,
    direction: np.ndarray,
    energy_kev: np.ndarray,
    physics: PhysicsConfig,
    thickness_um: float,
    rng: np.random.Generator,
) -> Segments:
    """Multiple-scattering random walk with continuous slowing down (CSDA), vectorised.

    Each electron takes `electron_steps` steps of equal path length; the energy left after a step
    is the one whose residual range matches. An electron that leaves the silicon deposits nothing
    more (backscatter out of the back surface, or through the front).
    """
    n, k = len(energy_kev), physics.electron_steps
    if n == 0:
        return Segments.empty()
    range0 = electron_range_um(energy_kev, physics)
    step = range0 / k
    residual = range0[:, None] * (1 - np.arange(k + 1) / k)[None, :]
    node_energy = electron_energy_kev(residual, physics)
    node_energy[:, 0], node_energy[:, -1] = energy_kev, 0.0
    positions = np.empty((n, k + 1, 3))
    positions[:, 0] = start
    d = direction.copy()
    for i in range(k):
        positions[:, i + 1] = positions[:, i] + step[:, None] * d
        theta = _highland_theta0(node_energy[:, i + 1], step, physics.radiation_length_um)
        # space angle of a 2-D Gaussian with rms theta0 per projection: Rayleigh
        d = deflect(d, theta * np.sqrt(-2 * np.log(1 - rng.random(n))), rng)
    inside = (positions[..., 2] >= 0) & (positions[..., 2] <= thickness_um)
    alive = np.cumprod(inside, axis=1).astype(bool)[:, 1:]
    deposit = (node_energy[:, :-1] - node_energy[:, 1:]) * alive
    keep = deposit > 0
    event = np.broadcast_to(np.arange(n)[:, None], (n, k))
    return Segments(
        positions[:, :-1][keep],
        positions[:, 1:][keep],
        deposit[keep],
        event[keep],
        np.zeros(int(keep.sum())),
    )


# ---------------------------------------------------------------- sources


def uniform_xy(n: int, det: DetectorConfig, rng: np.random.Generator) -> np.ndarray:
    return np.stack(
        [
            rng.uniform(0, det.width * det.pixel_size_um, n),
            rng.uniform(0, det.height * det.pixel_size_um, n),
        ],
        axis=1,
    )


def tritium_segments(
    n: int,
    cfg: TritiumConfig,
    det: DetectorConfig,
    physics: PhysicsConfig,
    rng: np.random.Generator,
) -> Segments:
    """`n` tritium decays of the sample (`cfg.sample`): on the back surface, each beta entering
    the bulk isotropically; or through a layer on it, each emitted isotropically from a uniform
    depth of the layer's part that a beta can escape from. Betas are transported event by event
    (pipeline/simulation/electrons.py: keV energies), through the layer, a gap and the silicon;
    only what they deposit in the silicon is returned (a decay whose beta never reaches it
    deposits nothing, but keeps its event index)."""
    energy = sample_beta_energies(n, cfg, rng)
    xy = uniform_xy(n, det, rng)
    silicon = electrons.Slab(0.0, det.thickness_um, electrons.silicon(physics), active=True)
    sample = cfg.sample
    if sample.kind == "surface":
        start = np.column_stack([xy, np.full(n, det.thickness_um)])
        paths = electrons.single_scattering(
            start, isotropic_into_bulk(n, rng), energy, (silicon,), rng
        )
    else:
        scales = (physics.stopping_power_scale, physics.elastic_scale)
        layer = electrons.soil(sample.density_g_cm3, sample.water_fraction, *scales)
        bottom = det.thickness_um + sample.gap_um
        depth = escape_depth_um(cfg)
        start = np.column_stack([xy, bottom + depth * rng.random(n)])
        slabs = (
            silicon,
            electrons.Slab(det.thickness_um, bottom, None),
            electrons.Slab(bottom, bottom + depth, layer),
        )
        paths = electrons.single_scattering(start, _isotropic(n, rng), energy, slabs, rng)
    return Segments(
        paths.start, paths.end, paths.energy_kev, paths.electron, np.zeros(len(paths.electron))
    )


def escape_depth_um(cfg: TritiumConfig) -> float:
    """The layer's depth simulated: all of it, or, if thicker, 1.2 CSDA ranges of the endpoint
    (no beta travels further, so none from deeper can reach the silicon)."""
    sample = cfg.sample
    layer = electrons.soil(sample.density_g_cm3, sample.water_fraction)
    reach = 1.2 * float(electrons.csda_range_um(cfg.endpoint_kev, layer))
    return min(sample.thickness_um, reach)


def electron_segments(
    n: int,
    cfg: ElectronConfig,
    det: DetectorConfig,
    physics: PhysicsConfig,
    rng: np.random.Generator,
) -> Segments:
    """Electron tracks: a share `back_fraction` are betas of the sample's natural radionuclides
    (`back_betas`: K-40, the U and Th chains) entering from the back surface, the tritium's side,
    where the first microns leave partial deposits; the rest start anywhere in the bulk
    (`bulk_electron_segments`). Events 0..n-1, the back-surface betas first."""
    back = int(rng.binomial(n, cfg.back_fraction)) if cfg.back_fraction > 0 else 0
    bulk = bulk_electron_segments(n - back, cfg, det, physics, rng)
    if back == 0:
        return bulk
    energy = branch_beta_energies(back, cfg.back_betas, rng)
    start = np.column_stack([uniform_xy(back, det, rng), np.full(back, det.thickness_um)])
    direction = isotropic_into_bulk(back, rng)
    entering = transport_electrons(start, direction, energy, physics, det.thickness_um, rng)
    return Segments.concat([entering, bulk.shifted(back)])


def bulk_electron_segments(
    n: int,
    cfg: ElectronConfig,
    det: DetectorConfig,
    physics: PhysicsConfig,
    rng: np.random.Generator,
) -> Segments:
    """Compton electrons and betas, anywhere in the bulk, isotropic: a share `compton_fraction`
    with the Klein-Nishina recoil energies of the gamma lines (in silicon the recoil spectrum is
    flat down to ~0.1 keV, where transport stops: lower recoils are deposited at 0.1 keV), the
    rest log-uniform in `energy_kev`."""
    low, high = np.log(cfg.energy_kev[0]), np.log(cfg.energy_kev[1])
    energy = np.exp(rng.uniform(low, high, n))
    if cfg.compton_fraction > 0:
        compton = rng.random(n) < cfg.compton_fraction
        gammas = rng.choice(np.asarray(cfg.gamma_lines_kev), size=int(compton.sum()))
        energy[compton] = np.maximum(compton_electron_kev(gammas, rng), electrons.CUTOFF_KEV)
    start = np.column_stack([uniform_xy(n, det, rng), rng.uniform(0, det.thickness_um, n)])
    return transport_electrons(start, _isotropic(n, rng), energy, physics, det.thickness_um, rng)


def compton_electron_kev(gamma_kev: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Recoil-electron kinetic energies of Compton scattering of photons of `gamma_kev`: the
    scattering angle drawn from the Klein-Nishina cross-section by rejection (its maximum over
    angles is 2, in the forward direction), T = E - E'."""
    gamma_kev = np.asarray(gamma_kev, dtype=float)
    cos = np.empty_like(gamma_kev)
    todo = np.arange(len(gamma_kev))
    while todo.size:
        trial = rng.uniform(-1, 1, todo.size)
        ratio = 1 / (1 + gamma_kev[todo] / ELECTRON_MASS_KEV * (1 - trial))  # E'/E
        density = ratio**2 * (ratio + 1 / ratio - (1 - trial**2))
        accept = rng.random(todo.size) * 2 < density
        cos[todo[accept]] = trial[accept]
        todo = todo[~accept]
    scattered = gamma_kev / (1 + gamma_kev / ELECTRON_MASS_KEV * (1 - cos))
    return gamma_kev - scattered


def xray_energies_and_depths(
    n: int, cfg: XrayConfig, thickness_um: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Photon energy and conversion depth (um from the back surface) for X-rays from the back."""
    weights = np.array([line.weight for line in cfg.lines] + [cfg.continuum_weight])
    choice = rng.choice(len(weights), size=n, p=weights / weights.sum())
    lines_kev = np.array([line.energy_kev for line in cfg.lines])
    lines_att = np.array([line.attenuation_um for line in cfg.lines])
    continuum = rng.uniform(*cfg.continuum_kev, n)
    is_line = choice < len(cfg.lines)
    line_index = np.minimum(choice, len(cfg.lines) - 1)
    energy = np.where(is_line, lines_kev[line_index], continuum)
    att_continuum = cfg.continuum_ref_attenuation_um * (continuum / cfg.continuum_ref_kev) ** 3
    attenuation = np.where(is_line, lines_att[line_index], att_continuum)
    # exponential conversion depth, truncated to the thickness (rate counts conversions in bulk)
    survive = 1 - np.exp(-thickness_um / attenuation)
    depth = -attenuation * np.log(1 - rng.random(n) * survive)
    return energy, depth


def xray_segments(
    n: int, cfg: XrayConfig, det: DetectorConfig, rng: np.random.Generator
) -> Segments:
    """Point-like conversions (the photoelectron range is far below a pixel), entering from the
    back (depth measured from the back surface), from the front, or uniform in depth."""
    energy, depth = xray_energies_and_depths(n, cfg, det.thickness_um, rng)
    if cfg.entry == "back":
        z = det.thickness_um - depth
    elif cfg.entry == "front":
        z = depth
    else:  # a penetrating gamma background converts anywhere; its energy set stays the lines'
        z = rng.uniform(0, det.thickness_um, n)
    point = np.column_stack([uniform_xy(n, det, rng), z])
    return Segments(point, point.copy(), energy, np.arange(n), np.zeros(n))


def muon_segments(
    n: int,
    cfg: MuonConfig,
    det: DetectorConfig,
    physics: PhysicsConfig,
    rng: np.random.Generator,
) -> Segments:
    """Straight minimum-ionising tracks through the whole thickness.

    Flux per solid angle ~ cos^2(zenith) through a horizontal sensor (one more cos for the
    projected area): pdf(cos) ~ cos^p, p = `cos_power` (3 at sea level). Tracks longer than the
    frame diagonal add no pixels, so the zenith angle is capped there. The total charge follows a
    Moyal (Landau-like) law with the configured most probable value per um; segments share it by
    their own Moyal fluctuations.
    """
    if n == 0:
        return Segments.empty()
    diag = np.hypot(det.width, det.height) * det.pixel_size_um
    cos_min = np.cos(np.arctan(diag / det.thickness_um))
    u = rng.random(n)
    power = cfg.cos_power + 1  # inverse CDF of pdf(cos) ~ cos^p on [cos_min, 1]
    cos = (cos_min**power + u * (1 - cos_min**power)) ** (1 / power)
    sin, phi = np.sqrt(1 - cos**2), rng.uniform(0, 2 * np.pi, n)
    direction = np.stack([sin * np.cos(phi), sin * np.sin(phi), -cos], axis=1)
    length = det.thickness_um / cos
    centre = uniform_xy(n, det, rng)
    start = (
        np.column_stack([centre, np.full(n, det.thickness_um / 2)])
        - direction * length[:, None] / 2
    )
    pairs = stats.moyal.rvs(
        loc=cfg.mpv_e_per_um * length,
        scale=cfg.landau_width_e_per_um * length,
        size=n,
        random_state=rng,
    )
    n_seg = np.maximum(np.ceil(length / cfg.step_um).astype(int), 1)
    event = np.repeat(np.arange(n), n_seg)
    index = np.arange(n_seg.sum()) - np.repeat(np.cumsum(n_seg) - n_seg, n_seg)
    seg_len = (length / n_seg)[event]
    share = stats.moyal.rvs(
        loc=cfg.mpv_e_per_um * seg_len,
        scale=cfg.landau_width_e_per_um * seg_len,
        size=len(event),
        random_state=rng,
    )
    share = np.maximum(share, 0)
    share /= np.bincount(event, share, minlength=n)[event]
    seg_start = start[event] + direction[event] * (index * seg_len)[:, None]
    seg_end = seg_start + direction[event] * seg_len[:, None]
    energy = np.maximum(pairs, 0)[event] * share * physics.pair_energy_ev / 1000.0
    return Segments(seg_start, seg_end, energy, event, np.zeros(len(event)))
