"""Temperature scaling: the fitted temperature, the calibration error before and after, and the
entropy the maps carry as their uncertainty."""

import numpy as np
import pytest

from pipeline.learning import temperature
from pipeline.results.metrics import expected_calibration_error, normalised_entropy


def overconfident(n: int, true_t: float, seed: int = 0):
    """Logits whose labels are drawn from softmax(logits / true_t): a network sure by true_t."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 4, (n, 5)).astype(np.float32)
    p = np.exp(logits / true_t)
    p /= p.sum(axis=1, keepdims=True)
    labels = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return logits, labels


def test_the_fitted_temperature_recovers_the_true_one():
    logits, labels = overconfident(40_000, 2.5)
    assert temperature.fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.05)


def test_scaling_lowers_the_calibration_error_and_the_nll():
    logits, labels = overconfident(40_000, 3.0, seed=1)
    found = temperature.calibration(logits, labels)
    assert found["ece_before"] > 0.1 and found["ece_after"] < 0.02
    assert found["nll_after"] < found["nll_before"]
    assert found["pixels"] == 40_000


def test_a_calibrated_network_keeps_temperature_one():
    logits, labels = overconfident(40_000, 1.0, seed=2)
    found = temperature.calibration(logits, labels)
    assert found["temperature"] == pytest.approx(1.0, abs=0.05)
    assert found["ece_before"] < 0.02


def test_no_pixel_gives_temperature_one():
    assert temperature.fit_temperature(np.zeros((0, 3), np.float32), np.zeros(0, int)) == 1.0


def test_ece_by_hand():
    confidence = np.array([0.95, 0.95, 0.55, 0.55])
    correct = np.array([1, 1, 1, 0])  # bin 0.9-1: |1 - 0.95|, bin 0.5-0.6: |0.5 - 0.55|
    assert expected_calibration_error(confidence, correct, bins=10) == pytest.approx(0.05)
    assert np.isnan(expected_calibration_error(np.array([]), np.array([])))


def test_entropy_is_zero_when_certain_and_one_when_uniform():
    p = np.zeros((4, 2, 2))
    p[0] = 1.0
    p[:, 1, 1] = 0.25
    u = normalised_entropy(p)
    assert u[0, 0] == pytest.approx(0.0, abs=1e-6) and u[1, 1] == pytest.approx(1.0)
