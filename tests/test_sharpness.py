"""Pixels sharper than light: L.A.Cosmic's mask, and the artefact pixels it gives back to the
particles (and those it leaves: light, streaks along a row or a column)."""

import numpy as np

from pipeline.config import load_config
from pipeline.inference import sharpness
from pipeline.simulation import light

CFG = load_config()
RULES = CFG.artefact_shapes
CLASSES = CFG.classes
ARTEFACT, MUON, ELECTRON = (CLASSES.index(c) for c in ("artefact", "muon", "electron"))
NOISE_E = 5.0


def sky_with_track() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(charge, the track's pixels, the light's bright pixels) of a noisy frame with a star, a
    sky line down the columns and a steep, sharp track beside the line (as in the GMOS cutout)."""
    rng = np.random.default_rng(3)
    charge = rng.normal(0.0, NOISE_E, (96, 96))
    charge += light.moffat_star((96, 96), 30.0, 30.0, 3.0, 4e4)
    columns = np.arange(96)
    charge += 300.0 * np.exp(-0.5 * ((columns - 70) / 1.5) ** 2)[None, :]  # a sky line
    track = np.zeros((96, 96), bool)
    for row in range(50, 80):  # 30 rows, drifting 4 columns: ray 2 of the cutout
        track[row, 60 + (row - 50) // 8] = True
    charge[track] += 2000.0
    light_pixels = (charge > 5 * NOISE_E) & ~track
    return charge, track, light_pixels


def all_artefact(shape: tuple[int, int], muon_share: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    labels = np.full(shape, ARTEFACT, np.uint8)
    probs = np.full((len(CLASSES), *shape), 0.01, np.float32)
    probs[ARTEFACT] = 0.9 - muon_share
    probs[MUON] = muon_share * 0.1  # artefact wins every pixel; muon leads the particles
    probs[ELECTRON] = muon_share * 0.05
    return labels, probs


def test_the_sharp_mask_holds_a_track_and_no_light():
    charge, track, light_pixels = sky_with_track()
    sharp = sharpness.sharp_pixels(charge, NOISE_E, RULES)
    assert sharp[track].mean() >= 0.9
    assert sharp[light_pixels].mean() <= 0.01


def test_rescue_gives_a_track_inside_light_to_the_leading_particle_class():
    charge, track, light_pixels = sky_with_track()
    labels, probs = all_artefact(charge.shape)
    out = sharpness.rescue(labels, probs, charge, NOISE_E, CLASSES, RULES)
    assert (out[track] == MUON).mean() >= 0.9
    assert (out[light_pixels] == ARTEFACT).mean() >= 0.99


def test_a_streak_along_a_row_or_a_column_stays_artefact():
    rng = np.random.default_rng(4)
    charge = rng.normal(0.0, NOISE_E, (64, 64))
    charge[10, 5:40] += 800.0  # a serial-register hit
    charge[20:60, 50] += 800.0  # a trap column
    labels, probs = all_artefact(charge.shape)
    out = sharpness.rescue(labels, probs, charge, NOISE_E, CLASSES, RULES)
    assert (out == ARTEFACT).all()


def test_without_an_artefact_class_the_labels_are_untouched():
    charge, _, _ = sky_with_track()
    classes = [c for c in CLASSES if c != "artefact"]
    labels = np.ones(charge.shape, np.uint8)
    probs = np.zeros((len(classes), *charge.shape))
    out = sharpness.rescue(labels, probs, charge, NOISE_E, classes, RULES)
    assert out is labels


def test_a_faint_sharp_group_stays_artefact():
    charge, track, _ = sky_with_track()
    charge[track] -= 1900.0  # 100 e- over the sky: sharp, but under sharp_min_peak_e
    labels, probs = all_artefact(charge.shape)
    out = sharpness.rescue(labels, probs, charge, NOISE_E, CLASSES, RULES)
    assert (out[track] == ARTEFACT).all()
