"""The activity of a fitted spectrum: decays over efficiency and live time, its interval, the
decision threshold and the minimum detectable activity (MDA; Currie 1968), and the JSON summary
of the result with a legend of its fields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.config import Config, ConfigError
from pipeline.config.stages import EfficiencySettings
from pipeline.measurement.counting import currie_decision_threshold, currie_detection_limit
from pipeline.measurement.spectrum import SpectrumFit, fit_energies, fit_spectrum

NO_EXPOSURE = (
    "no exposure time (no attr exposure_s, no FITS EXPTIME/EXPOSURE keyword; ROOT files "
    "carry none); set activity.exposure_s (for FITS also io.fits.attrs.exposure_s)"
)


@dataclass
class ActivityResult:
    activity_bq: float
    interval_bq: tuple[float, float]
    mda_bq: float
    tritium_counts: float  # fitted yield N_t (clusters in the energy range)
    decision_threshold_counts: float  # Currie L_C: a fitted yield above it is a detection
    efficiency: float
    live_time_s: float
    fit: SpectrumFit
    efficiency_error: float = 0.0  # 0 when the efficiency was given without one

    @property
    def decision_threshold_bq(self) -> float:
        return self.decision_threshold_counts / (self.efficiency * self.live_time_s)

    @property
    def detected(self) -> bool:
        """The fitted yield is above the decision threshold."""
        return self.tritium_counts > self.decision_threshold_counts


def _interval_with_efficiency(
    value: float, edges: tuple[float, float], rel_eff: float, confidence: float
) -> tuple[float, float]:
    """Widen the fit interval by the efficiency's relative error, in quadrature per side."""
    extra = value * rel_eff * stats.norm.ppf(0.5 + confidence / 2)
    low = value - np.hypot(value - edges[0], extra)
    high = value + np.hypot(edges[1] - value, extra)
    return float(max(low, 0.0)), float(high)


def estimate_activity(
    catalogue: pd.DataFrame,
    n_exposures: int,
    config: EfficiencySettings | Config,
    exposure_s: float | None = None,
    efficiency: float | None = None,
    efficiency_error: float = 0.0,
) -> ActivityResult:
    """Activity = N_t / (efficiency x n_exposures x exposure), N_t from the spectral fit of the
    tritium- and xray-labelled clusters. The efficiency comes from the argument (with its error,
    folded into the interval; see pipeline.measurement.efficiency) or the config. MDA: Currie
    with B = fitted non-tritium counts under the tritium template, over efficiency x live time."""
    if efficiency is None:
        efficiency = config.activity.efficiency
    if efficiency is None:
        raise ConfigError("no efficiency: give one, or measure it (the efficiency stage)")
    exposure_s = exposure_s if exposure_s is not None else config.activity.exposure_s
    if exposure_s is None:
        raise ConfigError(NO_EXPOSURE)
    live = n_exposures * exposure_s
    fit = fit_spectrum(fit_energies(catalogue), config)
    scale = efficiency * live
    activity = fit.tritium / scale
    edges = (fit.interval[0] / scale, fit.interval[1] / scale)
    return ActivityResult(
        activity_bq=activity,
        interval_bq=_interval_with_efficiency(
            activity, edges, efficiency_error / efficiency, fit.confidence
        ),
        mda_bq=currie_detection_limit(fit.region_background) / scale,
        tritium_counts=fit.tritium,
        decision_threshold_counts=currie_decision_threshold(fit.region_background),
        efficiency=efficiency,
        live_time_s=live,
        fit=fit,
        efficiency_error=efficiency_error,
    )


def activity_summary(result: ActivityResult) -> dict:
    """JSON-ready summary of an activity result."""
    fit = result.fit
    return {
        "activity_bq": result.activity_bq,
        "interval_bq": list(result.interval_bq),
        "confidence": fit.confidence,
        "detected": result.detected,
        "decision_threshold_bq": result.decision_threshold_bq,
        "decision_threshold_counts": result.decision_threshold_counts,
        "mda_bq": result.mda_bq,
        "tritium_counts": result.tritium_counts,
        "tritium_counts_error": fit.tritium_error,
        "tritium_counts_interval": list(fit.interval),
        "efficiency": result.efficiency,
        "efficiency_error": result.efficiency_error,
        "live_time_s": result.live_time_s,
        "fit": {
            "clusters_in_range": int(fit.counts.sum()),
            "energy_range_kev": [float(fit.edges_kev[0]), float(fit.edges_kev[-1])],
            "line_counts": {
                f"{e:g} keV": float(v)
                for e, v in zip(fit.line_energies_kev, fit.lines[:-1], strict=True)
            },
            "continuum_counts": float(fit.lines[-1]),
            "background_counts": fit.background,
            "region_background_counts": fit.region_background,
            "line_energy_scale": fit.line_scale,
            "nll": fit.nll,
        },
        "spectrum": spectrum_summary(fit),
    }


def spectrum_summary(fit: SpectrumFit) -> dict:
    """The binned data and each fitted component per bin (what `pipeline plot` draws)."""
    names = [
        "tritium",
        *(f"{e:g} keV line" for e in fit.line_energies_kev),
        "X-ray continuum",
        "flat background",
    ]
    return {
        "edges_kev": fit.edges_kev.tolist(),
        "counts": fit.counts.tolist(),
        "components": {n: row.tolist() for n, row in zip(names, fit.components, strict=True)},
    }


LEGEND = {
    "activity_bq": "tritium betas entering the CCD per second: the fitted yield over efficiency x "
    "live time (not yet the sample's activity: issue of the sample model)",
    "interval_bq": "interval at `confidence`: profile likelihood of the fit, widened by the "
    "efficiency's error and by the systematics",
    "detected": "whether the fitted yield exceeds the decision threshold (false: not detected)",
    "decision_threshold_bq": "Currie's critical level L_C = 2.33 sqrt(B) (5 % false "
    "positives), B the fitted non-tritium counts under the tritium template, in Bq",
    "mda_bq": "minimum detectable activity, Currie L_D = 2.71 + 4.65 sqrt(B) (5 % false "
    "positives and negatives), in Bq",
    "tritium_counts": "fitted tritium clusters in `fit.energy_range_kev`",
    "efficiency": "fitted tritium clusters per decay, from the route `efficiency_route` names",
    "live_time_s": "exposures x exposure of one (s)",
    "systematics": "each detector-model term: the activity at both ends of its range",
    "spectrum": "the fitted cluster spectrum: bin edges, clusters per bin, each component",
}


def rounded(value: object, digits: int = 4) -> object:
    """`value` with every float to `digits` significant digits (the JSON a reader reads)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value
