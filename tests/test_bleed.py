"""Horizontal bleed (pipeline/inference/bleed.py): the charge a deposit spilled along its row past
the serial register's well is called artefact, its own core kept; a plateau along a column
(blooming past a pixel's well) and an ADC's saturation are left to the particle."""

import numpy as np

from pipeline.config import load_config
from pipeline.inference import bleed
from pipeline.simulation.artefacts import spill_along_rows

CFG = load_config()
CLASSES = CFG.classes
ARTEFACT, ALPHA = CLASSES.index("artefact"), CLASSES.index("alpha")
NOISE_E = 2.0
WELL_E = 8000.0


def blob(sigma: float = 2.0, total_e: float = 1.5e6) -> np.ndarray:
    """(64, 96) charge of a round diffused deposit at (32, 48)."""
    rows, cols = np.indices((64, 96))
    r2 = (rows - 32) ** 2 + (cols - 48) ** 2
    return total_e * np.exp(-0.5 * r2 / sigma**2) / (2 * np.pi * sigma**2)


def read(particle: np.ndarray, seed: int = 0) -> np.ndarray:
    return particle + np.random.default_rng(seed).normal(0.0, NOISE_E, particle.shape)


def test_a_spilled_deposit_is_artefact_where_the_spill_outweighs_it_and_its_core_kept():
    particle = blob()
    bled = spill_along_rows(particle, WELL_E)
    charge = read(bled)
    spilled = bled - particle
    truth = (spilled >= 2 * NOISE_E) & (spilled > particle)  # the simulator's convention
    labels = np.where(charge > 3 * NOISE_E, ALPHA, 0).astype(np.uint8)
    out = bleed.relabel(labels, charge, NOISE_E, CLASSES, CFG.artefact_shapes)
    called = out == ARTEFACT
    assert (called & truth).sum() / truth.sum() > 0.8
    assert (called & truth).sum() / called.sum() > 0.9
    assert (out == ALPHA)[particle > WELL_E].mean() > 0.9  # the core keeps its class


def test_blooming_along_a_column_and_adc_saturation_are_left_to_the_particle():
    particle = blob()
    bloomed = spill_along_rows(particle.T, WELL_E).T  # the same plateau, along the column
    saturated = np.minimum(particle, WELL_E)  # one value: the ADC's limit
    for charge in (read(bloomed), saturated):
        labels = np.where(charge > 3 * NOISE_E, ALPHA, 0).astype(np.uint8)
        out = bleed.relabel(labels, charge, NOISE_E, CLASSES, CFG.artefact_shapes)
        assert (out == labels).all()


def test_a_muon_along_a_row_is_not_a_plateau():
    charge = np.zeros((16, 96))
    landau = np.random.default_rng(3).lognormal(np.log(1200.0), 0.35, 80)
    charge[8, 8:88] = landau
    charge[7, 8:88] = charge[9, 8:88] = 0.2 * landau
    charge = read(charge)
    labels = np.where(charge > 3 * NOISE_E, CLASSES.index("muon"), 0).astype(np.uint8)
    assert (bleed.relabel(labels, charge, NOISE_E, CLASSES, CFG.artefact_shapes) == labels).all()
