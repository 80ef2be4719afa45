"""Seeing a result (the `plot` stage): a map drawn over its frame, and the spectral fit of an
activity, as PNG files; each also logged into the MLflow run that wrote the map or the activity
(found by the file's SHA-256, pipeline/tracking/lookup.py), where there is one.

A map view shows the whole frame (calibrated charge) with the classes the map gives each pixel,
then a zoom on the largest cluster of each class it found; the colours are the classes' in every
plot of the pipeline. An activity's plot shows the clusters' energy spectrum with each fitted
component (tritium, the X-ray lines, the continuum, the flat background) and their sum.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.calibration.frames import calibrated
from pipeline.config import ConfigError
from pipeline.config.stages import PlotSettings
from pipeline.core.errors import printable
from pipeline.core.stage import INPUT, OUTPUT, Flag, Stage, file_flag
from pipeline.io import FrameFileError, open_map
from pipeline.measurement.limits import limit_words
from pipeline.results import plots
from pipeline.results.metrics import count_clusters
from pipeline.tracking import lookup


def draw_map(
    settings: PlotSettings, frames: str | Path, map_path: str | Path, out: str | Path, index: int
) -> str:
    """Frame `index` of `frames` with the classes of `map_path` over it, into `out` (PNG)."""
    with calibrated(frames, settings) as opened, open_map(map_path, settings.io) as labelled:
        if labelled.shape != opened.file.shape:
            raise FrameFileError(
                map_path, f"map shape {labelled.shape} != frames {opened.file.shape}"
            )
        if not 0 <= index < labelled.n_frames:
            raise ConfigError(f"--index {index}: the file has frames 0..{labelled.n_frames - 1}")
        charge, labels = opened.charge(index), labelled.read(index)
        names = labelled.class_names
    found = ", ".join(f"{name} {count_clusters(labels, c)}" for c, name in enumerate(names) if c)
    title = f"{printable(Path(frames).name)}, frame {index}: {printable(Path(map_path).name)}"
    plots.map_view(charge, labels, names, title, Path(out))
    return f"wrote {out}: frame {index}, clusters: {found}"


def draw_fit(activity: str | Path, out: str | Path) -> str:
    """The spectral fit that the activity JSON `activity` holds, into `out` (PNG)."""
    try:
        summary = json.loads(Path(activity).read_text())
        spectrum = summary["spectrum"]
        edges, counts = np.array(spectrum["edges_kev"]), np.array(spectrum["counts"])
        components = {k: np.array(v) for k, v in spectrum["components"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{activity}: not an activity JSON with its spectrum ({exc!r})") from None
    low, high = summary["interval_bq"]
    verdict = "detected" if summary.get("detected") else "not detected"
    title = (
        f"{printable(Path(activity).name)}: {summary['activity_bq']:.4g} Bq "
        f"({low:.4g}-{high:.4g}), {verdict}; {limit_words(summary.get('mda_bq'))}"
    )
    plots.spectral_fit(edges, counts, components, title, Path(out))
    return f"wrote {out}: {int(counts.sum())} clusters, {len(components)} fitted components"


def run(
    settings: PlotSettings,
    out: str | Path,
    frames: str | Path | None = None,
    map: str | Path | None = None,
    activity: str | Path | None = None,
    index: int = 0,
) -> str:
    """The `plot` stage: a map over its frame (`frames` and `map`), or an activity's spectral
    fit (`activity`), into the PNG `out`."""
    if Path(out).suffix.lower() != ".png":
        raise ConfigError(f"{out}: --out is written as .png; name it so")
    if activity is not None and frames is None and map is None:
        said, drawn = draw_fit(activity, out), activity
    elif frames is not None and map is not None and activity is None:
        said, drawn = draw_map(settings, frames, map, out, index), map
    else:
        raise ConfigError("give --frames and --map (a map over its frame), or --activity (its fit)")
    if settings.tracking.enabled:
        said += "\n" + lookup.attach(settings.tracking, drawn, Path(out), "plots")
    return said


STAGE = Stage(
    "plot",
    "draw a map over its frame, or the spectral fit of an activity (PNG)",
    "Reads: a frame file and its map file (--frames, --map), or an activity JSON (--activity). "
    "Writes: a PNG: the frame with each pixel's class and zooms on the largest cluster of each "
    "class; or the cluster spectrum with each fitted component.",
    run,
    PlotSettings,
    (
        file_flag("--out", "PNG file to write", OUTPUT, suffixes=(".png",)),
        file_flag("--frames", "frame file", INPUT, required=False),
        file_flag("--map", "its map file (`infer` or `classical`)", INPUT, required=False),
        file_flag("--activity", "an activity JSON (`activity`)", INPUT, required=False),
        Flag("--index", "which frame of the file (0: the first)", arg="index", type=int),
    ),
    tracks=True,
)
