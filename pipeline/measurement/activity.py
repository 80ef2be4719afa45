"""Tritium decay counts and the sample's activity (the `activity` stage).

Owns turning a cluster catalogue into a number of tritium decays and an activity in becquerel:
per-frame cluster counts (pipeline/measurement/counting.py), the spectral fit
(pipeline/measurement/spectrum.py), the detection efficiency measured on simulated frames
(pipeline/measurement/efficiency.py), the activity with its interval and minimum detectable
activity (pipeline/measurement/estimate.py), and its systematics
(pipeline/measurement/systematics.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import ConfigError
from pipeline.config.stages import ActivitySettings
from pipeline.core import hashing
from pipeline.core.atomic import atomic_output
from pipeline.core.errors import CatalogueError
from pipeline.core.stage import INPUT, OUTPUT, Stage, file_flag, key_flag
from pipeline.io import open_frames
from pipeline.measurement import systematics
from pipeline.measurement.counting import counts_per_frame
from pipeline.measurement.efficiency import efficiency_for
from pipeline.measurement.estimate import (
    LEGEND,
    ActivityResult,
    activity_summary,
    estimate_activity,
    exposure_of,
    rounded,
    with_limits,
)
from pipeline.measurement.limits import limit_words
from pipeline.measurement.reference import reference_efficiency
from pipeline.measurement.sample import said as said_of_sample
from pipeline.measurement.sample import sample_scale, sample_summary
from pipeline.measurement.spectrum import ACTIVITY_COLUMNS
from pipeline.results.clusters import check_made_from, read_catalogue
from pipeline.tracking import runs


def run(
    settings: ActivitySettings,
    catalogue: str | Path,
    frames: str | Path,
    out: str | Path,
    efficiency_frames: str | Path | None = None,
    efficiency_catalogue: str | Path | None = None,
    variants: Sequence[str | Path] = (),
    variant_catalogues: Sequence[str | Path] = (),
    reference: str | Path | None = None,
) -> str:
    """The `activity` stage: counts per frame and the activity of `catalogue` (of `frames`) as
    JSON in `out`. Efficiency: `activity.efficiency`, else the efficiency frames and the model's
    catalogue of them (the workflow's), else measured here (`activity.model` or truth labels).
    The systematics: the `variants` the workflow made (`efficiency --variant`) with the
    `variant_catalogues` the same method made of them (same order); any not given is
    simulated here and labelled by `activity.model` (the truth without one). A `reference`
    measurement (`reference` stage) gives the efficiency in place of all of these: the real
    detector's, so the detector-model terms drop."""
    if (efficiency_frames is None) != (efficiency_catalogue is None):
        raise ConfigError("--efficiency-frames and --efficiency-catalogue go together")
    if len(variants) != len(variant_catalogues):
        raise ConfigError(
            f"--variants ({len(variants)} files) and --variant-catalogues "
            f"({len(variant_catalogues)}) go together, one catalogue per variant's frames"
        )
    table = read_catalogue(catalogue, ACTIVITY_COLUMNS)
    unscanned = settings.io.model_copy(update={"check_finite": False})
    with open_frames(frames, unscanned) as ff:
        n_frames, exposures, attrs = ff.n_frames, ff.n_exposures, ff.detector_attrs
        height, width = ff.shape[1:]
        check_made_from(catalogue, ff)  # the activity's one pass over the frames
    mapped = None
    if efficiency_frames is not None and efficiency_catalogue is not None:
        mapped = (efficiency_frames, efficiency_catalogue)
    pairs = list(zip(variants, variant_catalogues, strict=True))
    for made_of, made in [*([mapped] if mapped else []), *pairs]:
        with open_frames(made_of, unscanned) as ff:
            check_made_from(made, ff)
    exposure_s = attrs.get("exposure_s")
    exposure_of(exposure_s, settings, str(frames))  # refused before any simulation
    measured_route = None
    if reference is not None:
        efficiency_ref, error_ref, measured_route = reference_efficiency(
            settings, attrs, reference, catalogue
        )
        given = {"efficiency": efficiency_ref, "efficiency_error": error_ref}
        activity_config = settings.activity.model_copy(update=given)
        settings = settings.model_copy(update={"activity": activity_config})
    model = systematics.EfficiencyModel(settings, attrs, pairs, mapped)  # the rest simulated once
    efficiency, error, route = efficiency_for(settings, mapped, model.efficiency_with_error)
    route = measured_route or route
    try:
        counts = counts_per_frame(table, settings.classes, n_frames)
        counting = estimate_activity(table, exposures, settings, exposure_s, efficiency, error)
        terms, combined = systematics.terms_and_combination(settings, attrs, table, counting, model)
    except (CatalogueError, ConfigError) as exc:  # the catalogue does not fit its frame file
        raise ConfigError(f"{catalogue} with {frames}: {exc}") from None
    widened = systematics.with_systematics(counting, combined)
    result = with_limits(widened, settings, systematics.calibration_uncertainty(counting, combined))
    summary = activity_summary(result)
    summary["interval_counting_bq"] = list(counting.interval_bq)  # before the systematics
    summary["systematics"] = systematics.summary(settings, terms, counting, combined)
    from_file = f"{frames}: attr exposure_s" if exposure_s is not None else None
    summary["exposure_s_from"] = from_file or "config activity.exposure_s"
    summary["exposures"], summary["frames_per_exposure"] = exposures, n_frames // exposures
    summary["counts_per_frame"] = {c: counts[c].tolist() for c in counts.columns}
    summary["efficiency_route"] = route
    pixel_um = attrs.get("pixel_size_um", settings.detector.pixel_size_um)
    scale = sample_scale(settings.sources.tritium, height, width, pixel_um)
    summary["sample"] = sample_summary(summary, scale)
    summary["legend"] = LEGEND
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tags = {"catalogue": str(catalogue), "frames": str(frames), "out": str(out)}
    with runs.tracked_run(settings, "activity", tags) as tracker:
        with atomic_output(out) as tmp:
            tmp.write_text(json.dumps(rounded(summary), indent=2))
        if tracker.active:
            _log_result(tracker, frames, Path(out), result)
    confidence = settings.activity.confidence
    lines = [*said(result, confidence, route), *said_of_sample(summary["sample"], confidence)]
    return "\n".join([*lines, f"wrote {out}"])


def _log_result(
    tracker: runs.Tracker, frames: str | Path, out: Path, result: ActivityResult
) -> None:
    """The activity, its interval and limits as metrics; the JSON as an artefact, its SHA-256 as
    a tag (what `pipeline plot` finds the run by to attach the fit's plot); the frames as a
    dataset."""
    tracker.log_dataset(frames, hashing.file_sha256(frames), "measurement")
    tracker.set_tags({"output_sha256": hashing.file_sha256(out)})
    low, high = result.interval_bq
    metrics = {
        "activity_bq": result.activity_bq,
        "interval_low_bq": low,
        "interval_high_bq": high,
        "decision_threshold_bq": result.decision_threshold_bq,
        "mda_bq": result.mda_bq if result.mda_bq is not None else math.nan,
        "detected": float(result.detected),
        "tritium_counts": result.tritium_counts,
        "efficiency": result.efficiency,
        "live_time_s": result.live_time_s,
    }
    tracker.log_metrics(metrics, step=0)
    tracker.log_artifact(out, "activity")


def _limit(result: ActivityResult) -> str:
    words = limit_words(result.mda_bq, label="minimum detectable activity (MDA)")
    if result.mda_bq is None:
        hidden = f"{result.calibration_uncertainty:.0%}"
        return f"{words} (the calibration's uncertainty, {hidden}, hides any signal)"
    return words


def said(result: ActivityResult, confidence: float, route: str) -> list[str]:
    """The result in words: the activity with its interval, whether it is a detection, the
    decision threshold and the detection limit, and where the efficiency came from."""
    low, high = result.interval_bq
    verdict = (
        "detected (above the decision threshold)"
        if result.detected
        else "NOT DETECTED: below the decision threshold, consistent with zero"
    )
    return [
        f"tritium activity {result.activity_bq:.4g} Bq ({confidence:.0%} interval "
        f"{low:.4g}-{high:.4g} Bq): {verdict}",
        f"decision threshold {result.decision_threshold_bq:.4g} Bq, {_limit(result)} (ISO 11929, "
        f"from the fit); {result.tritium_counts:.1f} tritium clusters "
        f"fitted over {result.live_time_s:g} s",
        f"efficiency {result.efficiency:.4g} +- {result.efficiency_error:.2g}: {route}",
    ]


STAGE = Stage(
    "activity",
    "tritium decays per frame and the sample's activity from a cluster catalogue",
    "Reads: a cluster catalogue (.parquet), its frame file (frame count, exposure, noise), "
    "and the efficiency frames with their catalogue (else the checkpoint that labelled the "
    "data is run on frames simulated here). Writes: a JSON file with counts per frame, the "
    "spectral fit, the activity with its interval and the minimum detectable activity.",
    run,
    ActivitySettings,
    (
        file_flag("--catalogue", "cluster catalogue (.parquet)", INPUT),
        file_flag("--frames", "frame file the catalogue came from", INPUT),
        file_flag("--efficiency-frames", "efficiency frames (`efficiency`)", INPUT, required=False),
        file_flag("--efficiency-catalogue", "their catalogue, by the model", INPUT, required=False),
        key_flag(
            "--model",
            "activity.model",
            "checkpoint that labelled the catalogue",
            role=INPUT,
            unless="activity.efficiency",
        ),
        file_flag(
            "--variants",
            "efficiency frames of the systematics' variants (`efficiency --variant`)",
            INPUT,
            nargs="*",
            required=False,
        ),
        file_flag(
            "--variant-catalogues",
            "their catalogues, by the same method as the data's (same order)",
            INPUT,
            nargs="*",
            required=False,
        ),
        file_flag(
            "--reference",
            "a reference measurement's efficiency (`reference`)",
            INPUT,
            required=False,
        ),
        file_flag("--out", "JSON file to write", OUTPUT),
    ),
    tracks=True,
)
