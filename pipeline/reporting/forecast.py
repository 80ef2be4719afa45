"""How long to count (the `forecast` stage): the detection limit a measurement would reach after
a given counting time, for each method whose activity was measured.

Owns reading the spectral model and background of an activity JSON (what its fit saw per second
of live time) and scaling them to other counting times: the ISO 11929 detection limit after
`activity.forecast_times_s` (pipeline/measurement/limits.py), as a JSON table and a plot. It
falls as 1/t where the background is negligible and as 1/sqrt(t) where it dominates; the
calibration's relative uncertainty u does not shrink with time and scales it by up to
1 / (1 - k^2 u^2). The limit is in the activity JSON's unit (betas entering the CCD per second
for a surface source) and, for a layer sample (soil), also in Bq/g.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import ConfigError
from pipeline.config.stages import ForecastSettings
from pipeline.core.atomic import atomic_output
from pipeline.core.errors import one_line, printable
from pipeline.core.stage import INPUT, OUTPUT, Beside, Flag, Stage, file_flag
from pipeline.evaluation import tables
from pipeline.measurement.limits import detection_limit_after
from pipeline.results import plots
from pipeline.results.naming import unique_names

CURVE_POINTS = 40  # counting times drawn, log-spaced from 10 minutes to 4 weeks
CURVE_S = (600.0, 2.42e6)


@dataclass(frozen=True)
class SpectralModel:
    """What the fit of an activity saw: its components' shapes and the background without
    tritium in `live_time_s`, with the efficiency and the calibration's uncertainty."""

    shapes: np.ndarray
    background: np.ndarray
    live_time_s: float
    efficiency: float
    calibration_uncertainty: float
    per_gram: float | None  # activity -> Bq/g of a layer sample; None for a surface source


def spectral_model(path: str | Path) -> SpectralModel:
    """What a forecast needs of an activity JSON, checked."""
    try:
        result = json.loads(Path(path).read_text())
        spectrum = result["spectrum"]
        model = SpectralModel(
            np.array(list(spectrum["shapes"].values()), float),
            np.array(spectrum["background_only"], float),
            float(result["live_time_s"]),
            float(result["efficiency"]),
            float(result["calibration_uncertainty"]),
            (result.get("sample") or {}).get("per_gram"),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{path}: not an activity JSON with its spectral model ({one_line(exc)}); "
            "measure it again with this version"
        ) from None
    if model.shapes.ndim != 2 or model.shapes.shape[1:] != model.background.shape:
        raise ConfigError(f"{path}: spectrum shapes and background_only differ in bins")
    return model


def limits_after(
    model: SpectralModel,
    times_s: Sequence[float],
    settings: ForecastSettings,
    calibration_uncertainty: float | None = None,
) -> list[float | None]:
    """The detection limit (Bq, None where none exists) after each counting time, with the
    activity's calibration uncertainty or `calibration_uncertainty`."""
    act = settings.activity
    if calibration_uncertainty is None:
        calibration_uncertainty = model.calibration_uncertainty
    return [
        detection_limit_after(
            model.shapes,
            model.background,
            model.live_time_s,
            model.efficiency,
            calibration_uncertainty,
            t,
            act.false_positive_rate,
            act.false_negative_rate,
        ).detection_limit
        for t in times_s
    ]


def _label(name: str) -> str:
    stem, _, method = name.partition(".")
    return f"{stem} ({tables.METHOD_WORDS.get(method or 'unet', method)})"


def run(
    settings: ForecastSettings,
    activity: Sequence[str | Path],
    out: str | Path,
    names: Sequence[str] = (),
) -> str:
    """The `forecast` stage: the detection limit against counting time of each activity JSON
    (named by `names`, else by its file), plotted into `out` (PNG) and tabulated at
    `activity.forecast_times_s` in its JSON twin; the table in words."""
    if Path(out).suffix.lower() != ".png":
        raise ConfigError(f"{out}: --out is written as .png; name it so")
    named = unique_names(names, activity, "--names", lambda p: Path(p).stem)
    models = {name: spectral_model(path) for name, path in zip(named, activity, strict=True)}
    times = list(settings.activity.forecast_times_s)
    calibrated_u = settings.activity.forecast_calibration_uncertainty
    table = {name: limits_after(m, times, settings) for name, m in models.items()}
    calibrated = {
        name: limits_after(m, times, settings, min(calibrated_u, m.calibration_uncertainty))
        for name, m in models.items()
    }
    per_gram, calibrated_per_gram = _per_gram(table, models), _per_gram(calibrated, models)
    curve = np.geomspace(*CURVE_S, CURVE_POINTS)
    drawn = {}
    for name, model in models.items():
        for words, u in (("", None), (f", calibrated to {calibrated_u:.0%}", calibrated_u)):
            limits = limits_after(model, curve.tolist(), settings, u)
            if all(v is None for v in limits):  # a legend entry with no line says why
                known = model.calibration_uncertainty if u is None else u
                words += f": none (efficiency uncertain by {known:.0%})"
            drawn[_label(name) + words] = np.array([np.nan if v is None else v for v in limits])
    plots.detection_limits(curve, drawn, times, Path(out))
    twin = Path(out).with_suffix(".json")
    summary = {
        "times_s": times,
        "detection_limit_bq": table,
        "detection_limit_bq_per_g": per_gram,
        "calibrated_uncertainty": calibrated_u,
        "detection_limit_calibrated_bq": calibrated,
        "detection_limit_calibrated_bq_per_g": calibrated_per_gram,
        "unit": "as the activity JSON's activity_bq (its sample.activity_is); per gram for a layer",
        "calibrated": "the same with the efficiency calibrated by a reference sample to "
        "activity.forecast_calibration_uncertainty (relative) in place of the activity's",
        "alpha": settings.activity.false_positive_rate,
        "beta": settings.activity.false_negative_rate,
    }
    with atomic_output(twin) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    lines = _said(table, times, "Bq") + _said(per_gram, times, "Bq/g")
    words = f", efficiency calibrated to {calibrated_u:.0%}"
    lines += _said(calibrated, times, "Bq", words)
    lines += _said(calibrated_per_gram, times, "Bq/g", words)
    return "\n".join([*lines, f"wrote {out} and {twin}"])


def _per_gram(
    table: dict[str, list[float | None]], models: dict[str, SpectralModel]
) -> dict[str, list[float | None]]:
    """The limits of the layer samples' activities in Bq/g."""
    return {
        name: [None if v is None else v * m.per_gram for v in table[name]]
        for name, m in models.items()
        if m.per_gram is not None
    }


def _said(table: dict[str, list], times: Sequence[float], unit: str, words: str = "") -> list[str]:
    """A line per method: its detection limit after each counting time, in `unit`."""
    return [
        f"{printable(_label(name))}{words}: detection limit "
        + ", ".join(
            f"{'none' if v is None else f'{v:.3g} {unit}'} after {t / 3600:g} h"
            for t, v in zip(times, values, strict=True)
        )
        for name, values in table.items()
    ]


STAGE = Stage(
    "forecast",
    "how long to count: the detection limit against counting time",
    "Reads: activity JSONs (`activity`). Writes: a PNG of the ISO 11929 detection limit "
    "against counting time, a line per JSON, and its JSON twin tabulating it at "
    "activity.forecast_times_s.",
    run,
    ForecastSettings,
    (
        file_flag("--activity", "activity JSONs", INPUT, nargs="+"),
        Flag("--names", "a name per activity JSON", arg="names", nargs="+"),
        file_flag(
            "--out",
            "PNG file to write",
            OUTPUT,
            suffixes=(".png",),
            beside=(Beside("the JSON twin of --out", suffix=".json"),),
        ),
    ),
)
