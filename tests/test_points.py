"""Deposits no wider than a diffused point charge: the artefact groups pipeline/inference/points.py
gives back to the point classes (an X-ray from the back of a diffuse CCD), and those it leaves
(a star wider than diffusion, a streak, a bright blob beyond a point's energy)."""

import numpy as np
import pytest
from scipy import ndimage

from pipeline.config import load_config
from pipeline.core.components import EIGHT_CONNECTED, cluster_features
from pipeline.inference import points
from pipeline.inference.detector_context import diffusion_sigma
from pipeline.simulation import light

CFG = load_config()
RULES = CFG.artefact_shapes
CLASSES = CFG.classes
PAIR_EV = CFG.physics.pair_energy_ev
INDEX = {c: CLASSES.index(c) for c in CLASSES}
NOISE_E = 2.5
BACK_SIGMA_PX = 2.4  # the suite's diffusion-2.5x detector measured 2.43


def diffused_point(
    energy_kev: float, sigma_x: float, sigma_y: float, seed: int = 0, noise_e: float = NOISE_E
) -> np.ndarray:
    """(64, 64) charge: a point deposit's electrons spread by a Gaussian at (32, 32), and noise."""
    rng = np.random.default_rng(seed)
    electrons = int(energy_kev * 1000 / PAIR_EV)
    x = rng.normal(32.0, sigma_x, electrons)
    y = rng.normal(32.0, sigma_y, electrons)
    charge, _, _ = np.histogram2d(y, x, bins=64, range=[[-0.5, 63.5], [-0.5, 63.5]])
    return charge + rng.normal(0.0, noise_e, charge.shape)


def the_deposit(charge: np.ndarray) -> np.ndarray:
    """(H, W) bool: the largest 8-connected group of pixels above 3 x noise."""
    groups, _ = ndimage.label(charge > 3 * NOISE_E, structure=EIGHT_CONNECTED)
    return groups == 1 + int(np.argmax(np.bincount(groups.ravel())[1:]))


def labelled_artefact(charge: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels: artefact over the deposit and a wide rim (as a network reading light does);
    probabilities: artefact leads everywhere, electron leads the other particles in the deposit,
    background the rim."""
    deposit = the_deposit(charge)
    area = ndimage.binary_dilation(deposit, iterations=4)
    labels = np.where(area, INDEX["artefact"], 0).astype(np.uint8)
    probs = np.full((len(CLASSES), *charge.shape), 0.01, np.float32)
    probs[INDEX["artefact"]] = 0.5
    probs[INDEX["background"]] = np.where(deposit, 0.05, 0.4)
    probs[INDEX["electron"]] = np.where(deposit, 0.2, 0.02)
    probs[INDEX["xray"]] = np.where(deposit, 0.15, 0.02)
    probs[INDEX["tritium"]] = np.where(deposit, 0.1, 0.02)
    return labels, probs


def rescued(charge: np.ndarray, back_sigma_px: float = BACK_SIGMA_PX) -> np.ndarray:
    labels, probs = labelled_artefact(charge)
    return points.rescue(labels, probs, charge, NOISE_E, back_sigma_px, CLASSES, RULES, PAIR_EV)


def test_an_xray_from_the_back_surface_goes_to_the_leading_point_class():
    charge = diffused_point(5.9, BACK_SIGMA_PX, BACK_SIGMA_PX)
    out = rescued(charge)
    deposit = the_deposit(charge)
    assert (out[deposit] == INDEX["xray"]).mean() >= 0.95  # not electron: no point deposit's class
    assert not (out == INDEX["artefact"]).any()
    rim = ndimage.binary_dilation(deposit, iterations=4) & ~ndimage.binary_dilation(deposit)
    assert (out[rim] == 0).all()  # the rim the artefact reading spread over is background


def test_two_overlapping_xrays_go_to_the_point_classes_too():
    first = diffused_point(5.9, BACK_SIGMA_PX, BACK_SIGMA_PX, seed=3)
    second = np.roll(diffused_point(5.9, BACK_SIGMA_PX, BACK_SIGMA_PX, 4, noise_e=0.0), 6, axis=1)
    charge = first + second  # 6 px apart: one group, elongation 1.6 (one point: 1.0-1.1)
    out = rescued(charge)
    assert (out[the_deposit(charge)] == INDEX["xray"]).mean() >= 0.95


def test_a_star_wider_than_diffusion_stays_artefact():
    rng = np.random.default_rng(1)
    charge = light.moffat_star((64, 64), 32.0, 32.0, 6.0, 1600.0)  # FWHM 6 px on a 1-px CCD
    charge = rng.poisson(charge).astype(float) + rng.normal(0.0, NOISE_E, charge.shape)
    labels, _ = labelled_artefact(charge)
    out = rescued(charge, back_sigma_px=1.0)
    assert (out == labels).all()


@pytest.mark.parametrize(
    "energy_kev, sigma_x, sigma_y",
    [(40.0, BACK_SIGMA_PX, BACK_SIGMA_PX), (6.0, 3 * BACK_SIGMA_PX, 0.8)],
    ids=["brighter than a point deposit", "elongated"],
)
def test_what_no_point_deposit_makes_stays_artefact(energy_kev, sigma_x, sigma_y):
    charge = diffused_point(energy_kev, sigma_x, sigma_y)
    labels, _ = labelled_artefact(charge)
    assert (rescued(charge) == labels).all()


def test_without_an_artefact_class_the_labels_are_untouched():
    charge = diffused_point(5.9, BACK_SIGMA_PX, BACK_SIGMA_PX)
    classes = [c for c in CLASSES if c != "artefact"]
    labels = np.ones(charge.shape, np.uint8)
    probs = np.zeros((len(classes), *charge.shape))
    out = points.rescue(labels, probs, charge, NOISE_E, 2.4, classes, RULES, PAIR_EV)
    assert out is labels


@pytest.mark.parametrize("sigma", [0.8, 1.5, 2.4])
def test_the_diffusion_sigma_of_a_point_is_measured_within_six_percent(sigma):
    measured = []
    for seed in range(5):
        charge = diffused_point(5.9, sigma, sigma, seed)
        one = the_deposit(charge).astype(int)
        table = cluster_features(one, 1, charge, PAIR_EV)
        peak = np.array([charge[one > 0].max()])
        variance = (table["sigma_x"] ** 2 + table["sigma_y"] ** 2).to_numpy() / 2
        measured.append(diffusion_sigma(variance, peak, 3 * NOISE_E)[0])
    assert np.median(measured) == pytest.approx(sigma, rel=0.06)


def test_a_model_without_the_point_classes_keeps_its_artefacts():
    charge = diffused_point(5.9, BACK_SIGMA_PX, BACK_SIGMA_PX)
    classes = ["background", "neutron", "artefact"]
    labels = np.where(the_deposit(charge), 2, 0).astype(np.uint8)
    probs = np.full((3, *charge.shape), 1 / 3, np.float32)
    out = points.rescue(labels, probs, charge, NOISE_E, BACK_SIGMA_PX, classes, RULES, PAIR_EV)
    assert out is labels
