"""Readout artefacts and light: the charge a frame holds that no particle made (the simulator's
`artefacts` section, labelled `artefacts.label`).

Owns, in the order a CCD makes them: light on the detector (stars, a spectrum's trace, sky lines:
`pipeline.simulation.light`), amplifier and edge glow, bad columns starting at a trap, serial-
register hits, spurious (clock-induced) charge, then the readout: charge-transfer inefficiency
trails, horizontal bleed past the serial register's full well, crosstalk ghosts between
amplifiers, and the baseline's correlated noise and pedestal jumps. ADC saturation is applied to
the frame in ADU by the simulator. Physical sources: SENSEI, PRL 125, 171802 (2020) and DAMIC-M,
PRL 130, 171003 (2023) (the masks of serial-register events, bleeding, crosstalk, hot columns,
edge glow; spurious charge 1.6e-4 e-/pix); Janesick, Scientific Charge-Coupled Devices (SPIE,
2001), ch. 5 and 7 (CTI trails, amplifier glow, full-well bleed).

`readout` returns the frame's charge as read and, of it, the artefacts' share: the truth labels a
pixel artefact where that share passes the truth threshold and outweighs the particles' charge.
Spurious charge is labelled background, like the dark current it cannot be told from pixel by
pixel (the frame format's convention). Every amplitude 0 draws nothing and uses no random number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config.artefacts import ArtefactsConfig, ReadoutArtefacts
from pipeline.core.transfer import transferred
from pipeline.simulation import light
from pipeline.simulation.charge import bloom

TRAP_TAG = 0x7EA9  # keeps the trap columns' seed apart from the hot-pixel map's


@dataclass
class ReadOut:
    charge_e: np.ndarray  # (H, W) every charge as read, particles included, before readout noise
    artefact_e: np.ndarray  # (H, W) of it, what the artefacts made (signed: the baseline)


def glow(shape: tuple[int, int], cfg: ReadoutArtefacts) -> np.ndarray:
    """Mean glow per pixel: the amplifier's at corner (0, 0), the edges' along all four edges."""
    g = cfg.glow
    rows, cols = np.indices(shape, dtype=float)
    out = np.zeros(shape)
    if g.amplifier_e > 0:
        out += g.amplifier_e * np.exp(-np.hypot(rows, cols) / g.amplifier_scale_px)
    if g.edge_e > 0:
        edge = np.minimum.reduce([rows, cols, shape[0] - 1 - rows, shape[1] - 1 - cols])
        out += g.edge_e * np.exp(-edge / g.edge_scale_px)
    return out


def trap_columns(shape: tuple[int, int], cfg: ReadoutArtefacts, defect_seed: int) -> np.ndarray:
    """Mean charge of the detector's trap columns (fixed by `defect_seed`): from the trap's row to
    the top row, the readout being at row 0."""
    traps = cfg.trap_columns
    out = np.zeros(shape)
    if traps.number == 0:
        return out
    rng = np.random.default_rng([defect_seed, TRAP_TAG])
    columns = rng.choice(shape[1], size=min(traps.number, shape[1]), replace=False)
    for column in columns:
        out[int(rng.integers(shape[0])) :, column] = rng.uniform(*traps.e_per_px)
    return out


def serial_hits(shape: tuple[int, int], cfg: ReadoutArtefacts, rng: np.random.Generator):
    """Streaks in one row each, log-uniform in length and charge per pixel, with 30 % pixel-to-
    pixel (Landau-like) fluctuation."""
    hits = cfg.serial_hits
    out = np.zeros(shape)
    for _ in range(int(rng.poisson(hits.rate_per_frame))):
        length = round(light.log_uniform(rng, hits.length_px))
        row, start = int(rng.integers(shape[0])), int(rng.integers(shape[1]))
        stop = min(start + max(length, 1), shape[1])
        level = light.log_uniform(rng, hits.e_per_px)
        out[row, start:stop] += level * rng.lognormal(0.0, 0.3, stop - start)
    return out


def cti(charge: np.ndarray, cfg: ReadoutArtefacts) -> np.ndarray:
    """Charge after parallel (along columns, toward row 0) and serial (along rows, toward column
    0) transfer with the configured inefficiencies (pipeline/core/transfer.py)."""
    out = charge
    if cfg.cti.parallel > 0:
        out = transferred(out, cfg.cti.parallel, cfg.cti.trail_px, axis=0)
    if cfg.cti.serial > 0:
        out = transferred(out, cfg.cti.serial, cfg.cti.trail_px, axis=1)
    return out


def spill_along_rows(charge: np.ndarray, full_well: float) -> np.ndarray:
    """Charge above the serial register's full well spills to both neighbours along the row until
    every pixel holds at most a full well (the same relaxation as blooming, across)."""
    return bloom(charge.T, full_well).T


def crosstalk(charge: np.ndarray, cfg: ReadoutArtefacts) -> np.ndarray:
    """Ghosts: the frame's columns are `amplifiers` segments, even ones read from their left
    edge, odd ones from their right; each pixel gets `coefficient` x the charge the other
    amplifiers read at the same moment."""
    k, coefficient = cfg.crosstalk.amplifiers, cfg.crosstalk.coefficient
    ghost = np.zeros_like(charge)
    width = charge.shape[1] // k
    if k < 2 or coefficient == 0 or width == 0:
        return ghost
    order = np.arange(width)
    columns = np.stack([s * width + (order if s % 2 == 0 else order[::-1]) for s in range(k)])
    read = charge[:, columns]  # (H, k, width): what each amplifier reads at each moment
    others = read.sum(axis=1, keepdims=True) - read
    ghost[:, columns] = coefficient * others
    return ghost


def baseline(shape: tuple[int, int], cfg: ReadoutArtefacts, rng: np.random.Generator):
    """Sinusoidal pickup along the readout sequence and pedestal jumps to the end of a row (e-)."""
    b = cfg.baseline
    out = np.zeros(shape)
    if b.pickup_e > 0:
        t = np.arange(shape[0] * shape[1], dtype=float).reshape(shape)
        phase = rng.uniform(0, 2 * np.pi)
        out += b.pickup_e * np.sin(2 * np.pi * t / b.pickup_period_px + phase)
    for _ in range(int(rng.poisson(b.jumps_per_frame))):
        row, column = int(rng.integers(shape[0])), int(rng.integers(shape[1]))
        out[row, column:] += rng.uniform(*b.jump_e)
    return out


def drawn(cfg: ArtefactsConfig) -> bool:
    r = cfg.readout
    amplitudes = (
        r.cti.serial, r.cti.parallel, r.serial_hits.rate_per_frame, r.crosstalk.coefficient,
        r.glow.amplifier_e, r.glow.edge_e, r.spurious_charge_e, r.baseline.pickup_e,
        r.baseline.jumps_per_frame, r.trap_columns.number, r.serial_full_well_e or 0.0,
    )  # fmt: skip
    return any(a != 0 for a in amplitudes) or light.drawn(cfg.light)


def readout(
    particle_e: np.ndarray, cfg: ArtefactsConfig, defect_seed: int, rng: np.random.Generator
) -> ReadOut:
    """The frame's charge as read, and the artefacts' part of it (see the module docstring)."""
    if not drawn(cfg):
        return ReadOut(particle_e, np.zeros_like(particle_e))
    r, shape = cfg.readout, particle_e.shape
    mean = (
        light.render(shape, cfg.light, rng) + glow(shape, r) + trap_columns(shape, r, defect_seed)
    )
    made = rng.poisson(mean).astype(float) + serial_hits(shape, r, rng)
    spurious = rng.poisson(r.spurious_charge_e, shape) if r.spurious_charge_e > 0 else 0.0
    total = particle_e + made + spurious
    moved = cti(total, r) - total
    total = total + moved
    made = made + np.clip(moved, 0, None)
    if r.serial_full_well_e is not None:
        bled = spill_along_rows(total, r.serial_full_well_e)
        made = made + np.clip(bled - total, 0, None)
        total = bled
    extra = crosstalk(total, r) + baseline(shape, r, rng)
    return ReadOut(total + extra, made + extra)


def relabel(
    labels: np.ndarray,
    instances: np.ndarray,
    read: ReadOut,
    particle_e: np.ndarray,
    threshold_e: float,
    artefact_class: int,
) -> None:
    """In place: artefact where the artefacts' charge passes the truth threshold and outweighs the
    particles' charge in the pixel (no event: instance 0)."""
    artefact = (read.artefact_e >= threshold_e) & (read.artefact_e > particle_e)
    labels[artefact] = artefact_class
    instances[artefact] = 0
