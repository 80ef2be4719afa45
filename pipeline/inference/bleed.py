"""Horizontal bleed: charge past the serial register's full well spilled along the row
(`artefact_shapes.bleed_*`, part of the shape rules).

A deposit whose rows hold more than the serial register's well reads as a flat plateau at that
well, wider along the row than the deposit was (Janesick, Scientific Charge-Coupled Devices, SPIE
2001, ch. 7; DAMIC-M and SENSEI mask it). The truth calls a plateau pixel artefact where the
spilled charge outweighs the particle's (pipeline/simulation/artefacts.py). Found here:
- a plateau: 4-connected pixels above `bleed_min_e` whose row neighbour holds the same charge
  within `bleed_flat_sigma` x its shot and read noise, in row runs of at least `bleed_min_px`;
  wider than tall with every pixel at its level around it (blooming past a pixel's own well runs
  along the column, and is the particle's charge) and not all one value (an ADC's saturation
  reads as exactly one number);
- in each of its rows, the particle's own charge estimated as a Gaussian across the row holding
  the row's charge (spilling keeps it in the row), centred on the run, as wide as the deposit is
  tall (a diffused charge cloud is round; the row profile is what the bleed hid). A plateau pixel
  is artefact where that estimate is under half the well, as the truth decides. Where the cloud
  is taller than wide (an alpha's charge bloomed along its column past a pixel's well, a steep
  track) the estimate is too wide and part of the spill is left to the particle: the rule keeps
  particles first (the bleed family: spill recall 0.56, precision 0.995; the width of the rows
  the bleed left alone gave 0.88 / 0.91 but lost a quarter of the alphas' own pixels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from pipeline.config.reconstruction import ArtefactShapesConfig
from pipeline.inference.shapes import ARTEFACT


def _flat(charge: np.ndarray, noise_e: float, cfg: ArtefactShapesConfig) -> np.ndarray:
    """(H, W) bool: pixels in row runs (>= bleed_min_px) of equal charge within the noise."""
    bright = charge >= cfg.bleed_min_e
    tolerance = cfg.bleed_flat_sigma * np.sqrt(2 * (noise_e**2 + np.clip(charge, 0, None)))
    same = np.zeros_like(bright)
    same[:, :-1] = (
        bright[:, :-1] & bright[:, 1:] & (np.abs(np.diff(charge, axis=1)) <= tolerance[:, :-1])
    )
    pairs = same.copy()
    same[:, 1:] |= pairs[:, :-1]  # both pixels of a flat pair
    runs, _ = ndimage.label(same, structure=[[0, 0, 0], [1, 1, 1], [0, 0, 0]])
    lengths = np.bincount(runs.ravel())
    long = lengths >= cfg.bleed_min_px
    long[0] = False
    return long[runs]


def _tall(charge: np.ndarray, deposit: np.ndarray) -> float:
    """The deposit's sigma across its rows (px; one pixel's own variance removed): serial bleed
    moves no charge between rows."""
    per_row = np.where(deposit, np.clip(charge, 0, None), 0.0).sum(axis=1)
    rows = np.arange(charge.shape[0])
    mean = (per_row * rows).sum() / max(per_row.sum(), 1e-9)
    variance = (per_row * (rows - mean) ** 2).sum() / max(per_row.sum(), 1e-9)
    return float(np.sqrt(max(variance - 1 / 12, 0.25)))


def _spilled(
    charge: np.ndarray, plateau: np.ndarray, spread: np.ndarray, deposit: np.ndarray
) -> np.ndarray:
    """(H, W) bool: the pixels of `spread` (the plateau and the spill's last pixels of its rows)
    where the particle's own charge, estimated row by row, is under half the well (the
    plateau's median)."""
    well = float(np.median(charge[plateau]))
    row_charge = np.where(deposit, charge, 0.0).sum(axis=1)
    sigma = _tall(charge, deposit)
    x = np.arange(charge.shape[1])
    out = np.zeros_like(plateau)
    for row in np.nonzero(plateau.any(axis=1))[0]:
        centre = np.nonzero(plateau[row])[0].mean()
        own = row_charge[row] * np.exp(-0.5 * ((x - centre) / sigma) ** 2)
        out[row] = spread[row] & (own / (np.sqrt(2 * np.pi) * sigma) < well / 2)
    return out


def _bloomed(
    charge: np.ndarray, plateau: np.ndarray, noise_e: float, cfg: ArtefactShapesConfig
) -> bool:
    """Whether every pixel at the plateau's level around it (short runs too) spans at least as
    many rows as columns: a pixel's well spilling along its column."""
    level = float(np.median(charge[plateau]))
    tolerance = cfg.bleed_flat_sigma * np.sqrt(2 * (noise_e**2 + max(level, 0.0)))
    at_level, _ = ndimage.label(np.abs(charge - level) <= tolerance, structure=np.ones((3, 3)))
    rows, columns = np.nonzero(np.isin(at_level, np.unique(at_level[plateau])))
    return bool(np.ptp(rows) >= np.ptp(columns))


def relabel(
    labels: np.ndarray,
    charge: np.ndarray,
    noise_e: float,
    classes: Sequence[str],
    cfg: ArtefactShapesConfig,
) -> np.ndarray:
    """`labels` with each bleed plateau's spilled pixels artefact (unchanged without the class)."""
    if ARTEFACT not in classes or cfg.bleed_min_px == 0:
        return labels
    flat = _flat(charge, noise_e, cfg)
    if not flat.any():
        return labels
    out = labels.copy()
    plateaus, _ = ndimage.label(flat)
    deposits, _ = ndimage.label(charge > 3 * noise_e, structure=np.ones((3, 3)))
    for index in range(1, int(plateaus.max()) + 1):
        plateau = plateaus == index
        values = charge[plateau]
        if np.ptp(values) == 0 or _bloomed(charge, plateau, noise_e, cfg):  # the ADC, a pixel
            continue
        deposit = np.isin(deposits, np.unique(deposits[plateau]))
        row = [[0, 0, 0], [1, 1, 1], [0, 0, 0]]  # the spill's last, partly filled pixels
        frontier = ndimage.binary_dilation(plateau, structure=row) & deposit
        out[_spilled(charge, plateau, frontier, deposit)] = classes.index(ARTEFACT)
    return out
