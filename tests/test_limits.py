"""ISO 11929 characteristic limits: Currie's formulas for a counting channel with a paired blank,
ISO 11929's closed form with a calibration uncertainty, and, for a spectral fit, the false
positive and negative rates they promise, checked on Poisson toys fitted like the data."""

import numpy as np
import pytest
from scipy import stats

from pipeline.measurement.limits import characteristic_limits, fit_yield_variance
from pipeline.measurement.spectrum import _fit_yields


@pytest.mark.parametrize("background", [0.0, 4.0, 100.0, 2500.0])
def test_a_counting_channel_with_a_paired_blank_gives_curries_limits(background):
    """u~^2(N) = 2B + N (gross and blank counted equally long): L_C = 2.33 sqrt(B),
    L_D = 2.71 + 4.65 sqrt(B) (Currie, Anal. Chem. 40 (1968) 586, table II)."""
    limits = characteristic_limits(lambda n: 2 * background + n, w=1.0, w_relative_uncertainty=0)
    k = stats.norm.ppf(0.95)
    assert limits.decision_threshold == pytest.approx(k * np.sqrt(2 * background), abs=1e-9)
    assert limits.decision_threshold == pytest.approx(2.326 * np.sqrt(background), rel=1e-4)
    assert limits.detection_limit == pytest.approx(k**2 + 2 * k * np.sqrt(2 * background))
    assert limits.detection_limit == pytest.approx(2.71 + 4.65 * np.sqrt(background), rel=2e-3)


def test_a_calibration_uncertainty_gives_iso_11929s_closed_form_and_can_forbid_a_limit():
    """a# = (2 a* + k^2 w) / (1 - k^2 u_rel^2) for alpha = beta (ISO 11929-1:2019, the counting
    measurement of its annex); with k u_rel >= 1 no true value is detected 95 % of the time."""
    k, w, u_rel, background = stats.norm.ppf(0.95), 0.02, 0.15, 40.0
    limits = characteristic_limits(lambda n: 2 * background + n, w, u_rel)
    threshold = k * w * np.sqrt(2 * background)
    assert limits.decision_threshold == pytest.approx(threshold)
    closed = (2 * threshold + k**2 * w) / (1 - k**2 * u_rel**2)
    assert limits.detection_limit == pytest.approx(closed, rel=1e-9)
    assert characteristic_limits(lambda n: 2 * background + n, w, 1 / k).detection_limit is None


def _shapes(n_bins: int = 39) -> np.ndarray:
    """A beta-like shape, a Gaussian line inside it and a flat background (rows sum to 1)."""
    centres = np.linspace(0.75, 19.75, n_bins)
    beta = centres * (19.0 - np.clip(centres, 0, 19.0)) ** 2
    line = stats.norm.pdf(centres, 5.9, 0.4)
    flat = np.ones(n_bins)
    rows = np.array([beta, line, flat])
    return rows / rows.sum(axis=1, keepdims=True)


def test_iso_11929s_worked_example_of_an_alpha_activity_concentration():
    """ISO 11929:2010 annex D.1, example 1(a): alpha activity in a liquid on a planchet, gross
    2591 counts in 360 s, background 41782 in 7200 s, c = R_n / (V eps f) with V = 0.5 +- 0.005
    L, eps = 0.3 +- 0.015, f = 0.6 rectangular +- 0.2; k = 1.645. The standard's (and
    UncertRadio's reference list, BatListRef_v06.txt, of the German BfS) results: c = 15.49
    Bq/L, decision threshold 2.37791 Bq/L, detection limit 5.42076 Bq/L."""
    r0, t_gross, t_background = 41782 / 7200, 360.0, 7200.0
    w = 1 / (0.5 * 0.3 * 0.6)
    u_rel = np.sqrt((0.005 / 0.5) ** 2 + (0.015 / 0.3) ** 2 + (0.2 / np.sqrt(3) / 0.6) ** 2)
    k_error = stats.norm.sf(1.645)
    limits = characteristic_limits(
        lambda net: (net + r0) / t_gross + r0 / t_background, w, u_rel, k_error, k_error
    )
    assert w * (2591 / t_gross - r0) == pytest.approx(15.4907, rel=1e-5)
    assert limits.decision_threshold == pytest.approx(2.37791, rel=1e-5)
    assert limits.detection_limit == pytest.approx(5.42076, rel=1e-5)


def test_the_fits_limits_keep_their_false_positive_and_negative_rates():
    """Poisson toys with no tritium exceed the decision threshold about 5 % of the time; toys
    at the detection limit exceed it about 95 % of the time (400 toys each: +- 2.5 sigma)."""
    shapes = _shapes()
    background = 150.0 * shapes[1] + 60.0 * shapes[2]  # an X-ray line and a flat background
    limits = characteristic_limits(fit_yield_variance(shapes, background), 1.0, 0.0)
    rng = np.random.default_rng(7)

    def detected(true_yield: float) -> float:
        mu = background + true_yield * shapes[0]
        fitted = [_fit_yields(shapes, rng.poisson(mu).astype(float))[0][0] for _ in range(400)]
        return float(np.mean(np.array(fitted) > limits.decision_threshold))

    assert 0.05 - 0.028 < detected(0.0) < 0.05 + 0.028
    assert limits.detection_limit is not None
    assert 0.95 - 0.028 < detected(limits.detection_limit) < 0.95 + 0.028


def test_lines_the_fit_tells_apart_do_not_raise_the_threshold_as_counted_background_would():
    """Currie with every non-tritium count under the beta shape as background (the old limit)
    counts a narrow X-ray line in full; the fit's threshold barely moves when the line grows."""
    shapes = _shapes()
    flat = 60.0 * shapes[2]
    quiet = characteristic_limits(fit_yield_variance(shapes, flat), 1.0, 0.0)
    lined = characteristic_limits(fit_yield_variance(shapes, flat + 2000.0 * shapes[1]), 1.0, 0.0)
    assert lined.decision_threshold < 1.25 * quiet.decision_threshold
    currie_lined = 2.326 * np.sqrt(2060.0)
    assert lined.decision_threshold < 0.5 * currie_lined
