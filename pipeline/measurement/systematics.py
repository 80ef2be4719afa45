"""Systematic errors of the activity: what the detector, transport and sample models the
efficiency rests on may be, measured by the data's own method.

Owns varying each term of `activity.systematics` (pipeline/measurement/variants.py: the back
layer's thickness and profile, a dead sub-layer, the diffusion, the transport's stopping power
and elastic cross-section, the gain, the threshold, a layer sample's density, moisture and
thickness) to both ends of its range, what the activity does there, and the interval the
ranges give.

How one end is measured: the efficiency frames are simulated again with the term changed (the
same seeds, so the same decays: the change is not drowned in sampling noise) and labelled by
the same method as the data (the model that labelled it, run on them as on the data, or the
classical reconstruction, by the workflow; the truth where there is no model); that efficiency
over the nominal one scales the activity's, and the data's spectrum is refitted with the
varied model's template (its energies scaled, for the gain; the new low edge, for the
threshold).

How the ranges propagate: a range is a range, not a standard deviation. Each term's value is
uniform over its range (GUM, JCGM 100:2008 4.3.7), the activity follows it through the three
measured points (low end, nominal, high end; piecewise linear, so a response far from linear
is kept), and the terms and the counting interval combine by Monte Carlo (JCGM 101:2008): the
interval is the central one of the draws, widened to hold the nominal result. An efficiency
given with `activity.efficiency` (a calibration, or `pipeline reference`) is the real
detector's: then the model terms drop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.config import Config
from pipeline.config.stages import EfficiencySettings
from pipeline.measurement.efficiency import (
    detector_of,
    files_catalogue,
    model_catalogue,
    ratio,
    simulated_catalogue,
    variant_of,
)
from pipeline.measurement.estimate import ActivityResult
from pipeline.measurement.spectrum import fit_energies, fit_spectrum
from pipeline.measurement.variants import (
    configured_spans,
    mass_ratio,
    nominal_value,
    not_applied,
    variant_key,
    varied,
)

Settings = EfficiencySettings | Config
DRAWS = 100_000  # Monte Carlo draws of the combination (the interval's edges to ~0.3 %)


@dataclass(frozen=True)
class Term:
    """One term at the ends of its range: the efficiency, the fitted tritium yield and the
    activity there (the nominal model's are the result's)."""

    name: str
    span: tuple[float, float]
    nominal: float  # the term's value in the nominal model
    efficiency: tuple[float, float]  # at the low and the high end
    efficiency_error: tuple[float, float]  # their statistical errors (finite efficiency frames)
    tritium: tuple[float, float]  # fitted yield at each end (the refit with that model)
    activity_bq: tuple[float, float]

    def points(self, result: ActivityResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values, efficiency ratios, yield shifts) at low, nominal, high, sorted by value."""
        values = np.array([self.span[0], self.nominal, self.span[1]])
        ratios = np.array([self.efficiency[0], result.efficiency, self.efficiency[1]])
        shifts = np.array([self.tritium[0], result.tritium_counts, self.tritium[1]])
        order = np.argsort(values, kind="stable")
        ratios, shifts = ratios / result.efficiency, shifts - result.tritium_counts
        return values[order], ratios[order], shifts[order]

    def summary(self, result: ActivityResult, spread_bq: float) -> dict[str, Any]:
        low, high = min(self.activity_bq), max(self.activity_bq)
        return {
            "range": list(self.span),
            "nominal": self.nominal,
            "efficiency": list(self.efficiency),
            "efficiency_error": list(self.efficiency_error),
            "activity_bq": list(self.activity_bq),
            "shift_bq": [max(result.activity_bq - low, 0.0), max(high - result.activity_bq, 0.0)],
            "standard_uncertainty_bq": spread_bq,
        }


class EfficiencyModel:
    """The efficiency, by the data's method, of the data's detector, nominal or with a term
    varied: the catalogue of efficiency frames the method made (the workflow's: `mapped`, the
    nominal frames, and `variants`, pairs of paths), else frames simulated here and labelled by
    `activity.model` (the truth without one), each simulated once; every efficiency through the
    data's spectral fit with the term varied (a threshold moves the nominal frames' fit)."""

    def __init__(
        self,
        config: Settings,
        data_attrs: dict[str, Any],
        variants: Sequence[tuple[str | Path, str | Path]] = (),
        mapped: tuple[str | Path, str | Path] | None = None,
    ) -> None:
        self.config, self.attrs = config, data_attrs
        self._catalogues: dict[tuple[str, float], tuple[pd.DataFrame, int]] = {}
        self._efficiencies: dict[tuple[str, float], tuple[float, float]] = {}
        if mapped is not None:
            self._catalogues[("nominal", 0.0)] = files_catalogue(*mapped)
        for frames, catalogue in variants:
            self._catalogues[variant_of(frames)] = files_catalogue(frames, catalogue)

    def efficiency_with_error(
        self, name: str = "nominal", value: float = 0.0
    ) -> tuple[float, float]:
        """The efficiency and its error, nominal or with `name` at `value` (each fitted once)."""
        if (name, value) not in self._efficiencies:
            key = variant_key(self.config, name, value)
            if key not in self._catalogues:
                self._catalogues[key] = self._simulated(*key)
            fitted = ratio(varied(self.config, name, value), *self._catalogues[key])
            self._efficiencies[(name, value)] = fitted
        return self._efficiencies[(name, value)]

    def efficiency(self, name: str = "nominal", value: float = 0.0) -> float:
        return self.efficiency_with_error(name, value)[0]

    def _simulated(self, name: str, value: float) -> tuple[pd.DataFrame, int]:
        config, model = varied(self.config, name, value), self.config.activity.model
        if model is not None:
            return model_catalogue(config, model, self.attrs)
        detector = detector_of(config, self.attrs)  # simulated for the data's detector
        return simulated_catalogue(detector, config.activity.efficiency_frames)


def measure_terms(
    config: Settings,
    data_attrs: dict[str, Any],
    catalogue: pd.DataFrame,
    result: ActivityResult,
    model: EfficiencyModel | None = None,
) -> list[Term]:
    """Every configured term of `activity.systematics` for the data's `catalogue` and its
    nominal `result`, whose efficiency is the method's nominal one (`model`: the data's
    detector, with what was measured already); none where the config gives the efficiency."""
    spans = configured_spans(config)
    if config.activity.efficiency is not None or not spans:
        return []
    model = model or EfficiencyModel(config, data_attrs)
    energies = fit_energies(catalogue)
    terms = []
    for name, span in spans.items():
        efficiencies, errors, yields, activities = [], [], [], []
        for value in span:
            efficiency, error = _efficiency_at(model, result, name, value)
            efficiencies.append(efficiency)
            errors.append(error)
            scale = value if name == "gain_scale" else 1.0
            fit = fit_spectrum(energies * scale, varied(config, name, value))
            yields.append(fit.tritium)
            activities.append(fit.tritium / (efficiencies[-1] * result.live_time_s))
        terms.append(
            Term(
                name,
                span,
                nominal_value(config, name),
                (efficiencies[0], efficiencies[1]),
                (errors[0], errors[1]),
                (yields[0], yields[1]),
                (activities[0], activities[1]),
            )
        )
    return terms


def _efficiency_at(
    model: EfficiencyModel, result: ActivityResult, name: str, value: float
) -> tuple[float, float]:
    """The method's efficiency with `name` at `value` and its statistical error, per gram of
    the escape layer as the nominal one is, on the scale of the result's (the same where the
    term leaves the frames and the fit as they are)."""
    efficiency, error = model.efficiency_with_error(name, value)
    scale = result.efficiency / model.efficiency() * mass_ratio(model.config, name, value)
    return efficiency * scale, error * scale


@dataclass(frozen=True)
class Combination:
    """The Monte Carlo combination: the interval, the relative standard uncertainty of
    1 / (efficiency x live time) for the ISO 11929 limits, and each term's own spread."""

    interval_bq: tuple[float, float]
    median_bq: float
    calibration_uncertainty: float
    spread_bq: dict[str, float]


def combine(result: ActivityResult, terms: list[Term], seed: int) -> Combination:
    """Each term uniform over its range, the counting result as its interval says (a normal
    on each side), the efficiency's own error normal: the activity's draws
    (A + sum of yield shifts / (efficiency x live time)) / product of efficiency ratios."""
    rng = np.random.default_rng(seed)
    z = float(stats.norm.ppf(0.5 + result.fit.confidence / 2))
    value, (low, high) = result.activity_bq, result.interval_bq
    counting = _split_normal(rng, value, (value - low) / z, (high - value) / z)
    exposure = result.efficiency * result.live_time_s
    shifts, ratios, spread = np.zeros(DRAWS), np.ones(DRAWS), {}
    for term in terms:
        values, efficiency, shift = term.points(result)
        drawn = rng.uniform(term.span[0], term.span[1], DRAWS)
        term_shift = np.interp(drawn, values, shift)
        term_ratio = np.interp(drawn, values, efficiency)
        shifts, ratios = shifts + term_shift, ratios * term_ratio
        spread[term.name] = float(np.std((value + term_shift / exposure) / term_ratio))
    draws = (counting + shifts / exposure) / ratios
    edges = np.quantile(draws, [0.5 - result.fit.confidence / 2, 0.5 + result.fit.confidence / 2])
    interval = (max(min(float(edges[0]), value), 0.0), max(float(edges[1]), value))
    own = rng.normal(1.0, result.efficiency_error / result.efficiency, DRAWS)
    w = 1.0 / (ratios * np.maximum(own, 1e-3))
    return Combination(interval, float(np.median(draws)), float(np.std(w)), spread)


def _split_normal(rng: np.random.Generator, mode: float, down: float, up: float) -> np.ndarray:
    """Draws of half a normal of width `down` below `mode` and half of width `up` above, each
    half of the draws: the counting interval's edges are their central quantiles."""
    side = rng.random(DRAWS) < 0.5
    magnitude = np.abs(rng.standard_normal(DRAWS))
    return mode + np.where(side, up, -down) * magnitude


def with_systematics(result: ActivityResult, combination: Combination | None) -> ActivityResult:
    """`result` with the combined interval (as it is without terms)."""
    if combination is None:
        return result
    return dataclasses.replace(result, interval_bq=combination.interval_bq)


def calibration_uncertainty(result: ActivityResult, combination: Combination | None) -> float:
    """Relative standard uncertainty of 1 / (efficiency x live time): the efficiency's own
    error and every term's efficiency ratio, drawn as the combination draws them; the
    efficiency's own error alone without terms."""
    if combination is None:
        return result.efficiency_error / result.efficiency
    return combination.calibration_uncertainty


def summary(
    config: Settings,
    terms: list[Term],
    result: ActivityResult,
    combination: Combination | None,
) -> dict[str, Any]:
    """The JSON of the terms: every term of `activity.systematics`, measured or why not."""
    if config.activity.efficiency is not None:
        return {"dropped": "activity.efficiency is the real detector's: no detector-model terms"}
    listed: dict[str, Any] = {}
    for term in terms:
        spread = combination.spread_bq[term.name] if combination else 0.0
        listed[term.name] = term.summary(result, spread)
    for name, why in not_applied(config).items():
        listed[name] = {"not_varied": why}
    if combination is not None:
        listed["combined"] = {
            "method": (
                f"each range uniform (JCGM 100:2008 4.3.7), {DRAWS} Monte Carlo draws "
                "(JCGM 101:2008) with the counting interval; central interval, widened to "
                "hold the nominal result"
            ),
            "interval_bq": list(combination.interval_bq),
            "median_bq": combination.median_bq,
            "calibration_uncertainty": combination.calibration_uncertainty,
        }
    return listed


def terms_and_combination(
    config: Settings,
    data_attrs: dict[str, Any],
    catalogue: pd.DataFrame,
    result: ActivityResult,
    model: EfficiencyModel | None = None,
) -> tuple[list[Term], Combination | None]:
    """The terms, and their combination with the counting result (None without terms)."""
    terms = measure_terms(config, data_attrs, catalogue, result, model)
    return terms, (combine(result, terms, config.activity.seed) if terms else None)
