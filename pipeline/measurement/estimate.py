"""The activity of a fitted spectrum: decays over efficiency and live time, its interval, the
decision threshold and the detection limit (the minimum detectable activity, MDA) after
ISO 11929 from the fit itself (pipeline/measurement/limits.py), and the JSON summary of the
result with a legend of its fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.config import Config, ConfigError
from pipeline.config.stages import EfficiencySettings
from pipeline.measurement.limits import detection_limit_after
from pipeline.measurement.spectrum import SpectrumFit, fit_energies, fit_spectrum

NO_EXPOSURE = (
    "no exposure time (no attr exposure_s, no FITS EXPTIME/EXPOSURE keyword; ROOT files "
    "carry none); set activity.exposure_s (for FITS also io.fits.attrs.exposure_s)"
)


def exposure_of(stated_s: float | None, config: EfficiencySettings | Config, where: str) -> float:
    """The exposure of one frame: what the file states, else `activity.exposure_s`; a
    ConfigError naming `where` (the frame file) if neither gives one."""
    exposure_s = stated_s if stated_s is not None else config.activity.exposure_s
    if exposure_s is None:
        raise ConfigError(f"{where}: {NO_EXPOSURE}")
    if exposure_s == 0:
        raise ConfigError(
            f"{where}: an exposure of 0 s (a bias frame): no decay rate can be made of it"
        )
    return exposure_s


@dataclass
class ActivityResult:
    activity_bq: float
    interval_bq: tuple[float, float]
    mda_bq: float | None  # ISO 11929 detection limit; None where none exists
    tritium_counts: float  # fitted yield N_t (clusters in the energy range)
    decision_threshold_counts: float  # ISO 11929 y*: a fitted yield above it is a detection
    efficiency: float
    live_time_s: float
    fit: SpectrumFit
    efficiency_error: float = 0.0  # 0 when the efficiency was given without one
    calibration_uncertainty: float = 0.0  # u_rel(w) of 1 / (efficiency x live time) in the MDA

    @property
    def decision_threshold_bq(self) -> float:
        return self.decision_threshold_counts / (self.efficiency * self.live_time_s)

    @property
    def detected(self) -> bool:
        """The fitted yield is above the decision threshold."""
        return bool(self.tritium_counts > self.decision_threshold_counts)


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
    live = n_exposures * exposure_of(exposure_s, config, "the frames")
    fit = fit_spectrum(fit_energies(catalogue), config)
    scale = efficiency * live
    activity = fit.tritium / scale
    edges = (fit.interval[0] / scale, fit.interval[1] / scale)
    result = ActivityResult(
        activity_bq=activity,
        interval_bq=_interval_with_efficiency(
            activity, edges, efficiency_error / efficiency, fit.confidence
        ),
        mda_bq=None,
        tritium_counts=fit.tritium,
        decision_threshold_counts=0.0,
        efficiency=efficiency,
        live_time_s=live,
        fit=fit,
        efficiency_error=efficiency_error,
    )
    return with_limits(result, config, efficiency_error / efficiency)


def with_limits(
    result: ActivityResult, config: EfficiencySettings | Config, calibration_uncertainty: float
) -> ActivityResult:
    """`result` with its ISO 11929 decision threshold and detection limit: the fit's own
    uncertainty of the tritium yield, and `calibration_uncertainty`, the relative standard
    uncertainty of 1 / (efficiency x live time)."""
    live = result.live_time_s
    limits = detection_limit_after(
        result.fit.shapes,
        result.fit.background_only,
        live,
        result.efficiency,
        calibration_uncertainty,
        live,  # at the measured time, the measured limits
        config.activity.false_positive_rate,
        config.activity.false_negative_rate,
    )
    return dataclasses.replace(
        result,
        decision_threshold_counts=limits.decision_threshold * result.efficiency * live,
        mda_bq=limits.detection_limit,
        calibration_uncertainty=calibration_uncertainty,
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
        "calibration_uncertainty": result.calibration_uncertainty,
        "limits": "ISO 11929-1:2019 from the spectral fit",
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
        "shapes": {n: row.tolist() for n, row in zip(names, fit.shapes, strict=True)},
        "background_only": fit.background_only.tolist(),
    }


LEGEND = {
    "activity_bq": "tritium betas entering the CCD per second: the fitted yield over efficiency x "
    "live time (not the sample's activity: its self-absorption and geometry are not modelled)",
    "interval_bq": "interval at `confidence`: profile likelihood of the fit, widened by the "
    "efficiency's error and by the systematics",
    "detected": "whether the fitted yield exceeds the decision threshold (false: not detected)",
    "decision_threshold_bq": "ISO 11929 decision threshold a* = k_(1-alpha) u(0): the fit's "
    "uncertainty of the tritium yield were there none (Asimov data of the fit without tritium), "
    "in Bq; alpha = activity.false_positive_rate",
    "mda_bq": "ISO 11929 detection limit (minimum detectable activity): the true activity "
    "detected with probability 1 - activity.false_negative_rate, the fit's uncertainty and "
    "`calibration_uncertainty` included, in Bq; null where none exists",
    "calibration_uncertainty": "relative standard uncertainty of 1 / (efficiency x live time) "
    "in the detection limit: the efficiency's error and each systematic term's efficiency shift",
    "tritium_counts": "fitted tritium clusters in `fit.energy_range_kev`",
    "efficiency": "fitted tritium clusters per decay, from the route `efficiency_route` names",
    "live_time_s": "exposures x exposure of one (s)",
    "systematics": "every term of activity.systematics: its range and nominal value, the "
    "efficiency (with its statistical error) and the activity at both ends, its own standard "
    "uncertainty (the range read as uniform), or why it was not varied; `combined`: the Monte "
    "Carlo combination with the counting interval",
    "sample": "what the activity is the activity of (sources.tritium.sample); for a layer, the "
    "concentration in Bq/g with its interval, decision threshold and MDA, and the activity of "
    "the whole layer under the CCD",
    "spectrum": "the fitted cluster spectrum: bin edges, clusters per bin, each component; each "
    "component's shape (normalised) and the fit without tritium (what `pipeline forecast` "
    "scales to other counting times)",
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
