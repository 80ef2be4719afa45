"""The efficiency from a reference measurement (the `reference` stage): frames of a sample of
known activity, taken like the data and labelled by the same method, give the efficiency in
place of the simulated one.

Owns: the fitted tritium yield of the reference's catalogue (the same spectral fit as the
data's, pipeline/measurement/spectrum.py) over its certified activity and live time,
efficiency = N_ref / (A_ref x T_ref), with the fit's uncertainty and the certificate's in
quadrature; and the JSON that `activity --reference` reads. The efficiency is the method's own
(the U-Net's or the classical reconstruction's), so the JSON records which made the catalogue
and the activity refuses a reference of another. This is the way for real data: the reference
calibrates the real detector's back surface, diffusion and threshold, which the simulation can
only bracket. The simulated efficiency then serves only to carry over what differs between the
reference and the sample: the JSON records the reference's sample (`sources.tritium.sample`:
a thin deposit, a layer), and where the data's differs, its efficiency is the reference's
times the ratio of the two samples' simulated efficiencies (for the data's detector, labelled
by `activity.model`, the truth without one), so only the geometry and matrix rest on the
simulation, not the detector.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import ConfigError
from pipeline.config.stages import ActivitySettings
from pipeline.core.atomic import atomic_output
from pipeline.core.errors import one_line, printable
from pipeline.core.stage import INPUT, OUTPUT, Stage, file_flag, key_flag
from pipeline.io import open_frames
from pipeline.measurement.efficiency import CLASSICAL
from pipeline.measurement.estimate import exposure_of
from pipeline.measurement.spectrum import ACTIVITY_COLUMNS, fit_energies, fit_spectrum
from pipeline.results.clusters import catalogue_made_from, check_made_from, read_catalogue
from pipeline.simulation.physics import escape_depth_um


@dataclass(frozen=True)
class ReferenceEfficiency:
    efficiency: float
    efficiency_error: float
    reference_bq: float
    reference_error_bq: float
    tritium_counts: float
    tritium_counts_error: float
    live_time_s: float
    method: str  # the model's SHA-256, or "classical"
    catalogue: str
    sample: dict[str, Any] | None = None  # the reference's sources.tritium.sample (None: older)


def method_of(catalogue: str | Path) -> str | None:
    """What labelled a catalogue: its model's SHA-256, "classical", or None (not recorded)."""
    made_from = catalogue_made_from(catalogue)
    if not made_from:
        return None
    return made_from.get("model_sha256", CLASSICAL)


def measure_reference(
    settings: ActivitySettings, catalogue: str | Path, frames: str | Path
) -> ReferenceEfficiency:
    """The efficiency that the reference's catalogue (of `frames`) gives with the certified
    activity `activity.reference_bq` +- `activity.reference_error_bq`."""
    act = settings.activity
    if act.reference_bq is None:
        raise ConfigError("no reference activity: set activity.reference_bq (--reference-bq)")
    table = read_catalogue(catalogue, ACTIVITY_COLUMNS)
    with open_frames(frames, settings.io.model_copy(update={"check_finite": False})) as ff:
        check_made_from(catalogue, ff)
        exposures, exposure_s = ff.n_exposures, ff.detector_attrs.get("exposure_s")
    live = exposures * exposure_of(exposure_s, settings, str(frames))
    fit = fit_spectrum(fit_energies(table), settings)
    if fit.tritium <= 0:
        raise ConfigError(f"{catalogue}: the fit finds no tritium in the reference's clusters")
    expected = act.reference_bq * live
    relative = np.hypot(fit.tritium_error / fit.tritium, act.reference_error_bq / act.reference_bq)
    efficiency = fit.tritium / expected
    return ReferenceEfficiency(
        float(efficiency),
        float(efficiency * relative),
        act.reference_bq,
        act.reference_error_bq,
        fit.tritium,
        fit.tritium_error,
        live,
        method_of(catalogue) or "not recorded",
        printable(Path(catalogue).name),
        settings.sources.tritium.sample.model_dump(),
    )


def read_reference(path: str | Path, catalogue: str | Path) -> tuple[ReferenceEfficiency, str]:
    """A reference JSON and the route in words, checked to be of the method that labelled
    `catalogue`."""
    try:
        data = json.loads(Path(path).read_text())
        reference = ReferenceEfficiency(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not a reference JSON (`reference`) ({one_line(exc)})") from None
    method = method_of(catalogue)
    if method is not None and reference.method not in (method, "not recorded"):
        raise ConfigError(
            f"{path}: measured with another method ({reference.method[:12]}) than the one that "
            f"labelled {catalogue} ({method[:12]}); an efficiency is its method's own"
        )
    route = (
        f"the reference measurement {printable(Path(path).name)}: a sample of "
        f"{reference.reference_bq:.4g} +- {reference.reference_error_bq:.2g} Bq, "
        f"{reference.tritium_counts:.1f} tritium clusters fitted over {reference.live_time_s:g} s"
    )
    return reference, route


def reference_efficiency(
    settings: ActivitySettings, data_attrs: dict[str, Any], path: str | Path, catalogue: str | Path
) -> tuple[float, float, str]:
    """(efficiency, its error, the route in words) that the reference JSON `path` gives the
    data of `catalogue`: the reference's, carried over to the data's sample where it differs
    from the reference's (`geometry_transfer`)."""
    reference, route = read_reference(path, catalogue)
    transfer = geometry_transfer(settings, data_attrs, reference.sample)
    if transfer is None:
        return reference.efficiency, reference.efficiency_error, route
    factor, factor_error, words = transfer
    efficiency = reference.efficiency * factor
    relative = np.hypot(reference.efficiency_error / reference.efficiency, factor_error / factor)
    return float(efficiency), float(efficiency * relative), f"{route}; {words}"


def geometry_transfer(
    settings: ActivitySettings, data_attrs: dict[str, Any], sample: dict[str, Any] | None
) -> tuple[float, float, str] | None:
    """(factor, its error, in words) from the reference's sample to the data's: the data's
    simulated efficiency over the reference's per decay of the whole reference (its escape
    layer's share of the decays, for a layer); None where the samples are the same (or the
    reference's is not recorded)."""
    from pipeline.measurement.systematics import EfficiencyModel

    tritium = settings.sources.tritium
    if sample is None or tritium.sample.model_dump() == sample:
        return None
    ref_sample = type(tritium.sample).model_validate(sample)
    ref_sources = settings.sources.model_copy(
        update={"tritium": tritium.model_copy(update={"sample": ref_sample})}
    )
    ref_settings = settings.model_copy(update={"sources": ref_sources})
    data, data_error = EfficiencyModel(settings, data_attrs).efficiency_with_error()
    ref, ref_error = EfficiencyModel(ref_settings, data_attrs).efficiency_with_error()
    share = 1.0
    if ref_sample.kind == "layer":  # the reference's certificate counts every decay in it
        share = escape_depth_um(ref_settings.sources.tritium) / ref_sample.thickness_um
    factor = data / (ref * share)
    error = factor * float(np.hypot(data_error / data, ref_error / ref))
    labeller = settings.activity.model or "the truth labels"
    words = (
        f"carried to this sample ({tritium.sample.kind}, {tritium.sample.thickness_um:g} um) "
        f"from the reference's ({ref_sample.kind}, {ref_sample.thickness_um:g} um) by the ratio "
        f"of their simulated efficiencies, {factor:.4g} +- {error:.2g} ({labeller})"
    )
    return factor, error, words


def run(
    settings: ActivitySettings, catalogue: str | Path, frames: str | Path, out: str | Path
) -> str:
    """The `reference` stage: the efficiency that the reference's catalogue gives, as JSON in
    `out` (what `activity --reference` reads)."""
    result = measure_reference(settings, catalogue, frames)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(asdict(result), indent=2))
    return (
        f"efficiency {result.efficiency:.4g} +- {result.efficiency_error:.2g}: "
        f"{result.tritium_counts:.1f} +- {result.tritium_counts_error:.1f} tritium clusters "
        f"fitted over {result.live_time_s:g} s from a sample of {result.reference_bq:.4g} +- "
        f"{result.reference_error_bq:.2g} Bq\nwrote {out}"
    )


STAGE = Stage(
    "reference",
    "the efficiency from frames of a reference sample of known activity",
    "Reads: the reference's cluster catalogue (.parquet) and its frame file, with the "
    "certified activity (activity.reference_bq, activity.reference_error_bq). Writes: a JSON "
    "file with the efficiency and its error, for `activity --reference`.",
    run,
    ActivitySettings,
    (
        file_flag("--catalogue", "the reference's cluster catalogue (.parquet)", INPUT),
        file_flag("--frames", "the reference's frame file", INPUT),
        key_flag("--reference-bq", "activity.reference_bq", "certified activity (Bq)", type=float),
        key_flag(
            "--reference-error-bq",
            "activity.reference_error_bq",
            "its standard uncertainty (Bq)",
            type=float,
        ),
        file_flag("--out", "JSON file to write", OUTPUT, suffixes=(".json",)),
    ),
)
