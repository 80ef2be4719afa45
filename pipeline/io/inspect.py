"""What a frame file holds (the `inspect` stage): a short, YAML-friendly summary of an opened
file: path, format, shape, dtype, attributes (per amplifier too, for a multi-amplifier file),
where a FITS header's values came from, labelled pixels and events per class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.config.stages import InspectSettings
from pipeline.core.stage import INPUT, Stage, file_flag

AMPLIFIER_KEYS = ("gain_adu_per_e", "readout_noise_e")  # what may differ between amplifiers


def describe(frames: Any) -> dict[str, Any]:
    """A short, YAML-friendly summary of an opened frame file."""
    summary: dict[str, Any] = {
        "file": str(frames.path),
        "format": frames.format,
        "frames": list(frames.frames.shape),
        "dtype": str(frames.frames.dtype),
        "attrs": {k: v for k, v in frames.attrs.items() if k != "simulator_config"},
    }
    if frames.amplifiers > 1:  # one exposure read out through several amplifiers
        summary["exposures"] = frames.n_exposures
        summary["amplifiers"] = [
            {k: v for k, v in a.items() if k in AMPLIFIER_KEYS} for a in frames.amplifier_attrs
        ]
    if frames.sources:  # what a FITS header (or the config over it) said, and where
        summary["read from"] = dict(frames.sources)
    if frames.defaulted:  # what the file does not state: the format's defaults stand in
        summary["not in the file (defaults)"] = sorted(frames.defaulted)
    if frames.labels is not None:
        counts = _pixel_counts(frames.labels, len(frames.class_names))
        summary["labelled pixels"] = dict(zip(frames.class_names, counts, strict=True))
    if frames.events is not None:
        classes = frames.events["class"]
        summary["events"] = {
            name: int((classes == i).sum()) for i, name in enumerate(frames.class_names)
        }
    return summary


def _pixel_counts(labels: Any, n_classes: int) -> list[int]:
    import dask.array as da

    counts = da.bincount(labels.ravel(), minlength=n_classes).compute()
    return [int(c) for c in counts]


def run(settings: InspectSettings, input: str | Path) -> str:
    """The `inspect` stage: open `input` (checked against the format contract) and summarise it
    as YAML."""
    from pipeline.io import open_frames

    with open_frames(input, settings.io, settings.classes) as frames:
        return yaml.safe_dump(describe(frames), sort_keys=False).rstrip("\n")


STAGE = Stage(
    "inspect",
    "open a frame file (HDF5, ROOT or FITS), validate it and summarise it",
    "Reads: a frame file, checked against the format contract (shapes, dtypes, NaN/inf, "
    "labels and class names). Writes: a YAML summary on stdout; no files.",
    run,
    InspectSettings,
    (file_flag("--input", "frame file to open", INPUT),),
)
