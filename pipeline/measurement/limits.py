"""Characteristic limits of the activity after ISO 11929 (decision threshold and detection
limit), from the spectral fit itself rather than from a count of background clusters.

ISO 11929-1:2019 defines both through the standard uncertainty u~(a) that the estimate of the
activity would have if its true value were a: the decision threshold a* = k_(1-alpha) u~(0)
(a result above it is a detection, false with probability alpha) and the detection limit a#,
the smallest true value detected with probability 1 - beta, the solution of
a# = a* + k_(1-beta) u~(a#). Here the activity is a = w N, N the fitted tritium yield and
w = 1 / (efficiency x live time), with relative uncertainty u_rel(w), so
u~^2(a) = w^2 u~_N^2(a / w) + a^2 u_rel^2(w). The yield's uncertainty u~_N(N) is that of the
binned Poisson fit at expectation mu = background + N x tritium template (the Asimov data
set): the tritium element of the inverse Fisher information, sum_bins shapes shapes^T / mu,
over every free yield of the fit. The background is the fit with the tritium yield held at 0,
so the X-ray lines, told apart from the beta shape by the fit, enter only where they overlap
it. For a single counting channel with a paired blank (u~_N^2 = 2B + N) these are Currie's
L_C = 2.33 sqrt(B) and L_D = 2.71 + 4.65 sqrt(B) (Currie, Anal. Chem. 40 (1968) 586), and
with u_rel(w) > 0 the detection limit is ISO 11929's closed form
a# = (2 a* + k^2 w) / (1 - k^2 u_rel^2(w)) (alpha = beta); tests/test_limits.py checks both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

ALPHA = BETA = 0.05  # ISO 11929's customary error probabilities (the config's choice)


@dataclass(frozen=True)
class Limits:
    """Decision threshold and detection limit, in the measurand's unit (None: no limit
    exists, k_(1-beta) u_rel(w) >= 1: the calibration's uncertainty alone hides any signal)."""

    decision_threshold: float
    detection_limit: float | None


def limit_words(limit: float | None, unit: str = "Bq", label: str = "MDA") -> str:
    """A detection limit in words: '<label> 0.0337 Bq', or 'no detection limit' where none
    exists."""
    return "no detection limit" if limit is None else f"{label} {limit:.4g} {unit}"


def characteristic_limits(
    yield_variance: Callable[[float], float],
    w: float,
    w_relative_uncertainty: float,
    alpha: float = ALPHA,
    beta: float = BETA,
) -> Limits:
    """ISO 11929 limits of a = w N, where `yield_variance(N)` is the variance of the estimated
    yield N when its true value is N."""
    k_alpha, k_beta = stats.norm.ppf(1 - alpha), stats.norm.ppf(1 - beta)

    def u(a: float) -> float:
        return float(np.sqrt(w**2 * yield_variance(a / w) + (a * w_relative_uncertainty) ** 2))

    threshold = float(k_alpha * u(0.0))
    if k_beta * w_relative_uncertainty >= 1:
        return Limits(threshold, None)

    def excess(a: float) -> float:
        return a - threshold - k_beta * u(a)

    high = max(2 * threshold, w)
    while excess(high) < 0:
        high *= 2
    low = threshold + 1e-12 * high  # above a* = 0 too, where a = 0 solves the equation trivially
    return Limits(threshold, float(optimize.brentq(excess, low, high, xtol=1e-12 * high)))


def fit_yield_variance(
    shapes: np.ndarray, background: np.ndarray, free: np.ndarray | None = None
) -> Callable[[float], float]:
    """var(N^) of the tritium yield (row 0 of `shapes`) as a function of its true value N: the
    inverse Fisher information of the binned Poisson fit at the Asimov expectation
    `background` + N x shapes[0], over the rows `free` (default: every row with counts in the
    range). `background` is the expectation per bin with no tritium."""
    rows = shapes[free] if free is not None else shapes[shapes.sum(axis=1) > 0]
    floor = 1e-9 * max(float(np.max(background)), 1.0)  # an empty bin carries no information

    def variance(n: float) -> float:
        mu = np.maximum(background + n * shapes[0], floor)
        fisher = (rows / mu) @ rows.T
        return float(np.linalg.pinv(fisher, hermitian=True)[0, 0])

    return variance


def detection_limit_after(
    shapes: np.ndarray,
    background_only: np.ndarray,
    live_time_s: float,
    efficiency: float,
    calibration_uncertainty: float,
    time_s: float,
    alpha: float = ALPHA,
    beta: float = BETA,
) -> Limits:
    """The limits (in Bq) a measurement of `time_s` would have: the background seen in
    `live_time_s` scaled to `time_s`, the same spectral model, efficiency and calibration
    uncertainty (which does not shrink with time, so it bounds the detection limit)."""
    background = np.asarray(background_only, float) * (time_s / live_time_s)
    return characteristic_limits(
        fit_yield_variance(np.asarray(shapes, float), background),
        1.0 / (efficiency * time_s),
        calibration_uncertainty,
        alpha,
        beta,
    )
