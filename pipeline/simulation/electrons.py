"""Electrons of keV energies in matter: stopping power, CSDA range and a single-scattering Monte
Carlo, for tritium betas (endpoint 18.6 keV) in silicon and in the sample above it.

Owns the physics where the multiple-scattering random walk of pipeline/simulation/physics.py
is outside its validity (Highland's formula needs x/X0 above about 1e-3; a keV electron's whole
range is 1e-5 X0):
- the collision stopping power of ICRU Report 37 (1984) for electrons (Rohrlich-Carlson),
  with the low-energy modification of Joy and Luo (Scanning 11 (1989) 176), T + k I in place of
  T in the logarithm, k = 0.85, which keeps it finite below a few keV and moves it by under
  0.5 % at 10 keV and above; radiative losses (below 0.3 % in silicon under 100 keV) and the
  density effect (none below 1 MeV in silicon) are left out;
- the CSDA range, its integral;
- elastic scattering on screened nuclei: the screened Rutherford cross section with Moliere's
  screening parameter as used in low-energy electron Monte Carlo (D. C. Joy, Monte Carlo
  Modeling for Electron Microscopy and Microanalysis, Oxford 1995, ch. 3), each elastic event
  sampled exactly (free path, then angle), the energy lost continuously along each free path.
A material is (Z, A, density, mean excitation energy I); a layered target (the sample on the
back surface) changes material where an electron crosses the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pipeline.config import PhysicsConfig

ELECTRON_MASS_KEV = 510.99895  # CODATA 2018
STOPPING_CONSTANT = 0.153537  # 2 pi r_e^2 m c^2 N_A, MeV cm^2 / mol (ICRU 37)
AVOGADRO = 6.02214076e23  # 1/mol
JOY_LUO_K = 0.85  # Joy & Luo (1989): T + k I in the stopping power's logarithm
RUTHERFORD_CM2 = 5.21e-21  # screened Rutherford prefactor (Joy 1995), cm^2 keV^2
SCREENING = 3.4e-3  # Moliere screening parameter alpha = 3.4e-3 Z^0.67 / E(keV) (Joy 1995)
CUTOFF_KEV = 0.1  # below this an electron deposits what it has left where it is
RANGE_GRID_KEV = np.geomspace(0.01, 2000.0, 600)  # where the range integral is tabulated


@dataclass(frozen=True)
class Material:
    """A homogeneous target: mean atomic number and weight (per atom of the mixture's
    electron-weighted mean), density and mean excitation energy."""

    name: str
    z: float
    a: float  # g/mol
    density_g_cm3: float
    excitation_ev: float  # I
    stopping_scale: float = 1.0  # factors on the stopping power and the elastic cross-section:
    elastic_scale: float = 1.0  # the transport's systematic terms (physics.*_scale)


SILICON_Z, SILICON_A = 14.0, 28.0855  # g/mol (IUPAC standard atomic weight)


def silicon(physics: PhysicsConfig) -> Material:
    """The CCD's silicon, with the density and mean excitation energy of the config."""
    return Material(
        "silicon",
        SILICON_Z,
        SILICON_A,
        physics.silicon_density_g_cm3,
        physics.silicon_excitation_ev,
        physics.stopping_power_scale,
        physics.elastic_scale,
    )


@dataclass(frozen=True)
class Compound:
    """Atoms (Z, A in g/mol) of one formula unit, and the compound's I (eV)."""

    atoms: tuple[tuple[int, float], ...]
    excitation_ev: float


# the compounds of a soil layer, I from ICRU 37 (table 5.5)
QUARTZ = Compound(((14, 28.0855), (8, 15.999), (8, 15.999)), 139.2)
WATER = Compound(((1, 1.008), (1, 1.008), (8, 15.999)), 75.0)


def soil(
    density_g_cm3: float,
    water_fraction: float,
    stopping_scale: float = 1.0,
    elastic_scale: float = 1.0,
) -> Material:
    """Quartz (SiO2, the commonest soil mineral) with `water_fraction` of the mass water, as one
    effective material: its electrons per gram (Z/A) exact for the stopping power, its Z^2 per
    gram exact for screened Rutherford scattering (Z_eff = sum w Z^2/A / sum w Z/A), I by
    Bragg's additivity rule (ln I weighted by each part's electrons; ICRU 37)."""
    parts = [(1.0 - water_fraction, QUARTZ), (water_fraction, WATER)]
    z_per_a = z2_per_a = log_i = 0.0
    for weight, compound in parts:
        mass = sum(a for _, a in compound.atoms)
        electrons = sum(z for z, _ in compound.atoms) / mass
        z_per_a += weight * electrons
        z2_per_a += weight * sum(z * z for z, _ in compound.atoms) / mass
        log_i += weight * electrons * float(np.log(compound.excitation_ev))
    z_eff = z2_per_a / z_per_a
    excitation = float(np.exp(log_i / z_per_a))
    return Material(
        "soil", z_eff, z_eff / z_per_a, density_g_cm3, excitation, stopping_scale, elastic_scale
    )


def stopping_power_kev_per_um(energy_kev: ArrayLike, material: Material) -> np.ndarray:
    """Collision stopping power -dE/ds (keV/um) of electrons of kinetic energy `energy_kev`."""
    t = np.maximum(np.asarray(energy_kev, float), 1e-6)
    tau = t / ELECTRON_MASS_KEV
    gamma = tau + 1
    beta2 = 1 - 1 / gamma**2
    i_rel = material.excitation_ev / 1000.0 / ELECTRON_MASS_KEV
    shifted = (t + JOY_LUO_K * material.excitation_ev / 1000.0) / ELECTRON_MASS_KEV
    f_minus = 1 - beta2 + (tau**2 / 8 - (2 * tau + 1) * np.log(2)) / gamma**2
    log_term = np.log(shifted**2 * (shifted + 2) / (2 * i_rel**2)) + f_minus
    mev_cm2_g = STOPPING_CONSTANT * material.z / material.a / beta2 * np.maximum(log_term, 1e-3)
    mev_cm2_g *= material.stopping_scale
    return mev_cm2_g * material.density_g_cm3 * 1000.0 / 1e4  # keV/um


def csda_range_um(energy_kev: ArrayLike, material: Material) -> np.ndarray:
    """CSDA range (um): the integral of 1 / stopping power from 0 to the energy."""
    grid = RANGE_GRID_KEV
    inverse = 1.0 / stopping_power_kev_per_um(grid, material)
    table = np.concatenate([[0.0], np.cumsum((inverse[1:] + inverse[:-1]) / 2 * np.diff(grid))])
    table += grid[0] * inverse[0] / 2  # below the grid: a straight line to zero
    return np.interp(np.asarray(energy_kev, float), grid, table, left=0.0)


def screening_parameter(energy_kev: ArrayLike, material: Material) -> np.ndarray:
    return SCREENING * material.z**0.67 / np.maximum(energy_kev, 1e-3)


def elastic_mean_free_path_um(energy_kev: ArrayLike, material: Material) -> np.ndarray:
    """Mean free path between elastic scatterings (um): screened Rutherford, relativistically
    corrected (Joy 1995, eq. 3.2)."""
    e = np.maximum(np.asarray(energy_kev, float), 1e-3)
    alpha = screening_parameter(e, material)
    relativistic = ((e + ELECTRON_MASS_KEV) / (e + 2 * ELECTRON_MASS_KEV)) ** 2
    sigma = RUTHERFORD_CM2 * material.z**2 / e**2 * 4 * np.pi / (alpha * (1 + alpha)) * relativistic
    atoms_per_cm3 = AVOGADRO * material.density_g_cm3 / material.a
    return 1e4 / (atoms_per_cm3 * sigma * material.elastic_scale)


def scattering_cosine(
    energy_kev: ArrayLike, material: Material, rng: np.random.Generator
) -> np.ndarray:
    """cos(theta) of one elastic scattering, sampled from the screened Rutherford distribution."""
    alpha = screening_parameter(energy_kev, material)
    r = rng.random(np.shape(energy_kev))
    return 1 - 2 * alpha * r / (1 + alpha - r)


# ---------------------------------------------------------------- transport

STEPS_PER_SEGMENT = 8  # elastic free paths merged into one straight segment of deposited charge
CUTOFF_RANGE_KEV = 0.5  # below: the rest (a range of ~15 nm in silicon) is deposited in place
BOUNDARY_NUDGE_UM = 1e-6  # what carries an electron at a slab boundary into the next slab


@dataclass(frozen=True)
class Slab:
    """A layer between depths z_low and z_high (um; z from the CCD's front): a material, or
    None for a vacuum gap an electron crosses in a straight line. `active`: charge deposited
    there is collected (the CCD's silicon)."""

    z_low: float
    z_high: float
    material: Material | None
    active: bool = False


@dataclass
class Paths:
    """Transported electrons: straight pieces in the active slab with the energy each deposits
    there, and how each electron ended."""

    start: np.ndarray  # (m, 3)
    end: np.ndarray  # (m, 3)
    energy_kev: np.ndarray  # (m,)
    electron: np.ndarray  # (m,) index of the electron
    escaped_up: np.ndarray  # (n,) left the stack above its top (back into the sample side)
    escaped_down: np.ndarray  # (n,) left the stack below z = 0
    entry_kev: np.ndarray  # (n,) energy on first reaching the active slab (NaN: never did)


def single_scattering(
    start: np.ndarray,
    direction: np.ndarray,
    energy_kev: np.ndarray,
    slabs: tuple[Slab, ...],
    rng: np.random.Generator,
) -> Paths:
    """Follow each electron through the slabs, elastic event by elastic event: an exponential
    free path (cut at a slab boundary, where the next path starts afresh in the new medium:
    free paths are memoryless), the CSDA energy loss along it, a screened Rutherford deflection.
    An electron stops below `CUTOFF_RANGE_KEV` (its rest deposited in place) or when it leaves
    the stack. What it deposits in the active slab is merged into straight segments of up to
    `STEPS_PER_SEGMENT` free paths, never across a stretch outside it."""
    n = len(energy_kev)
    stack = _Stack(slabs)
    pos, d = np.array(start, float), np.array(direction, float)
    energy = np.array(energy_kev, float)
    up, down = np.zeros(n, bool), np.zeros(n, bool)
    entry = np.full(n, np.nan)
    segments = _Segmenter(n)
    alive = np.arange(n)
    while alive.size:
        where = stack.slab_of(pos[alive, 2])
        outside = where < 0
        up[alive[outside & (pos[alive, 2] > 0)]] = True
        down[alive[outside & (pos[alive, 2] <= 0)]] = True
        alive, where = alive[~outside], where[~outside]
        active = stack.active[where]
        segments.close_all_but(alive[active])
        if not alive.size:
            break
        arriving = alive[active & np.isnan(entry[alive])]
        entry[arriving] = energy[arriving]
        before = pos[alive[active]].copy()
        deposit, scatter = stack.advance(pos, d, energy, alive, where, rng)
        stopped = energy[alive] <= CUTOFF_RANGE_KEV
        lost = deposit + np.where(stopped, energy[alive], 0.0)  # the rest, deposited in place
        segments.add(alive[active], before, pos[alive[active]], lost[active])
        crossing = ~scatter  # at a boundary: nudged across it, into the next slab
        pos[alive[crossing]] += BOUNDARY_NUDGE_UM * d[alive[crossing]]
        energy[alive[stopped]] = 0.0
        turn = scatter & ~stopped
        if turn.any():
            cos = stack.scattering_cosine(energy[alive[turn]], where[turn], rng)
            _deflect(d, alive[turn], cos, rng)
        alive = alive[~stopped]
    segments.close_all_but(np.zeros(0, int))
    return Paths(*segments.finished(), up, down, entry)


class _Segmenter:
    """Open segments per electron (start, end, energy, free paths so far), closed into the
    list of finished ones when full or when the electron leaves the active slab."""

    def __init__(self, n: int) -> None:
        self.start, self.end = np.zeros((n, 3)), np.zeros((n, 3))
        self.energy, self.steps = np.zeros(n), np.zeros(n, int)
        self.done: list[tuple[np.ndarray, ...]] = []

    def add(self, who: np.ndarray, before: np.ndarray, after: np.ndarray, lost: np.ndarray) -> None:
        fresh = self.steps[who] == 0
        self.start[who[fresh]] = before[fresh]
        self.end[who], self.energy[who] = after, self.energy[who] + lost
        self.steps[who] += 1
        self._close(who[self.steps[who] >= STEPS_PER_SEGMENT])

    def close_all_but(self, keep: np.ndarray) -> None:
        mask = self.steps > 0
        mask[keep] = False
        self._close(np.flatnonzero(mask))

    def _close(self, who: np.ndarray) -> None:
        kept = who[self.energy[who] > 0]
        if kept.size:
            self.done.append((self.start[kept], self.end[kept], self.energy[kept], kept))
        self.energy[who], self.steps[who] = 0.0, 0

    def finished(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if not self.done:
            return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0, int)
        start, end, energy, who = (np.concatenate(part) for part in zip(*self.done, strict=True))
        return start, end, energy, who


class _Stack:
    """The slabs as arrays (bounds, activity, material index), and each material's range table:
    what every step looks up for all electrons at once."""

    def __init__(self, slabs: tuple[Slab, ...]) -> None:
        self.low = np.array([s.z_low for s in slabs])
        self.high = np.array([s.z_high for s in slabs])
        self.active = np.array([s.active for s in slabs])
        self.materials = list({s.material.name: s.material for s in slabs if s.material}.values())
        names = [m.name for m in self.materials]
        self.material = np.array(
            [names.index(s.material.name) if s.material else -1 for s in slabs]
        )
        self.tables = [csda_range_um(RANGE_GRID_KEV, m) for m in self.materials]

    def slab_of(self, z: np.ndarray) -> np.ndarray:
        """Index of the slab holding each depth (the first, at a shared boundary); -1 outside."""
        inside = (z[:, None] >= self.low[None, :]) & (z[:, None] <= self.high[None, :])
        return np.where(inside.any(axis=1), inside.argmax(axis=1), -1)

    def advance(self, pos, d, energy, alive, where, rng) -> tuple[np.ndarray, np.ndarray]:
        """Move the electrons `alive` one free path (or to their slab's boundary); their energy
        loss, and which of them scatter at the end of it."""
        z, dz = pos[alive, 2], d[alive, 2]
        low, high = self.low[where], self.high[where]
        with np.errstate(divide="ignore", invalid="ignore"):
            to_boundary = np.where(
                dz > 0, (high - z) / dz, np.where(dz < 0, (low - z) / dz, np.inf)
            )
        path = np.full(len(alive), np.inf)  # a vacuum gap: straight to its boundary
        loss = np.zeros(len(alive))
        material = self.material[where]
        for index, (medium, ranges) in enumerate(zip(self.materials, self.tables, strict=True)):
            mine = material == index
            if not mine.any():
                continue
            e = energy[alive[mine]]
            free = -elastic_mean_free_path_um(e, medium) * np.log1p(-rng.random(int(mine.sum())))
            residual = np.interp(e, RANGE_GRID_KEV, ranges)
            path[mine] = np.minimum(free, residual)
            travelled = np.minimum(path[mine], to_boundary[mine])
            left = np.interp(residual - travelled, ranges, RANGE_GRID_KEV, left=0.0)
            loss[mine] = e - left
        scatter = path <= to_boundary
        pos[alive] += np.minimum(path, to_boundary)[:, None] * d[alive]
        energy[alive] -= loss
        return loss, scatter

    def scattering_cosine(self, energy: np.ndarray, where: np.ndarray, rng) -> np.ndarray:
        cos = np.ones(len(energy))
        material = self.material[where]
        for index, medium in enumerate(self.materials):
            mine = material == index
            if mine.any():
                cos[mine] = scattering_cosine(energy[mine], medium, rng)
        return cos


def _deflect(d: np.ndarray, which: np.ndarray, cos: np.ndarray, rng: np.random.Generator) -> None:
    """Rotate the directions `which` by polar angles of cosine `cos` about a uniform azimuth."""
    sin = np.sqrt(np.clip(1 - cos**2, 0, None))
    phi = rng.uniform(0, 2 * np.pi, len(which))
    old = d[which]
    helper = np.where(np.abs(old[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    u = np.cross(old, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(old, u)
    new = cos[:, None] * old + sin[:, None] * (np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * v)
    d[which] = new / np.linalg.norm(new, axis=1, keepdims=True)
