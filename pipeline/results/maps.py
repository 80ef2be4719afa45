"""Map files and catalogues from any per-frame labeller (shared by `infer` and `classical`).

Owns the streaming loop both reconstructions run (and the flags of its files, `MAPPING`, that both
declare): open a frame file of any format, calibrate the
run, label each frame's charge, append the labels (and optionally the probabilities) to the map
file and its clusters to the catalogue. Outputs appear only when every frame succeeded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.calibration import plausibility
from pipeline.calibration.frames import calibrated
from pipeline.config.stages import FrameSections
from pipeline.core.atomic import output_group
from pipeline.core.errors import printable
from pipeline.core.stage import INPUT, OUTPUT, Beside, file_flag
from pipeline.io import FrameFile, MapWriter
from pipeline.results import clusters
from pipeline.results.metrics import count_clusters, normalised_entropy

CSV_TWIN = (Beside("the CSV twin of --catalogue", suffix=".csv"),)
# what infer and classical declare: a frame file in, a map file and its catalogue out
MAPPING = (
    file_flag("--input", "frame file", INPUT),
    file_flag("--output", "map file to write (.h5)", OUTPUT),
    file_flag(
        "--catalogue",
        "cluster catalogue to write (.parquet)",
        OUTPUT,
        required=False,
        beside=CSV_TWIN,
    ),
)
FRAMES_READ = "a frame file (HDF5, ROOT or FITS), calibrated to electrons"

# charge (electrons) and measured noise -> (labels (H, W) uint8, probabilities (C, H, W) or None)
Labeller = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray | None]]


@dataclass
class MapResult:
    output: Path
    frames: int
    pixels: int
    seconds: float
    frames_sha256: str = ""  # of the frames the map was made from (pipeline/io/digest.py)
    clusters: dict[str, int] | None = None  # 8-connected clusters of each class, all frames
    warnings: tuple[str, ...] = ()  # values taken from a default rather than from the file
    made_with: str = ""  # what labelled the frames, where more than the command names

    @property
    def megapixels_per_s(self) -> float:
        return self.pixels / 1e6 / self.seconds

    def __str__(self) -> str:
        lines = [*self.warnings, *([self.made_with] if self.made_with else [])]
        if self.clusters is not None:
            found = ", ".join(f"{c} {n}" for c, n in list(self.clusters.items())[1:])
            lines.append(f"clusters in {self.frames} frames: {found}")
        lines.append(
            f"wrote {self.output}: {self.frames} frames, "
            f"{self.megapixels_per_s:.2f} megapixels/s end to end"
        )
        return "\n".join(lines)


def unstated(frames: FrameFile, config: FrameSections) -> tuple[str, ...]:
    """A warning line for each value the run takes from a default, not from the file."""
    name, lines = printable(frames.path.name), []
    if "gain_adu_per_e" in frames.defaulted and config.calibrate.gain == "file":
        lines.append(
            f"warning: {name} states no gain: took {frames.attrs['gain_adu_per_e']:g} ADU/e- (the "
            "default; every charge and energy scales with it: set io.fits.attrs.gain_adu_per_e, "
            "or calibrate.gain: config or fe55)"
        )
    if "pixel_size_um" in frames.defaulted:
        lines.append(
            f"warning: {name} states no pixel size: took {frames.attrs['pixel_size_um']:g} um "
            "(the default)"
        )
    if "exposure_s" not in frames.attrs:
        lines.append(
            f"warning: {name} states no exposure: an activity of it needs activity.exposure_s"
        )
    return tuple(lines)


def write_maps(
    config: FrameSections,
    labeller: Labeller,
    input_path: str | Path,
    output_path: str | Path,
    catalogue_path: str | Path | None = None,
    probabilities: bool = False,
    progress: bool = True,
    desc: str = "label",
    provenance: Mapping[str, str] | None = None,
    closing: Callable[[], Mapping[str, str]] | None = None,
    uncertainty: bool = False,
    summed: Callable[[np.ndarray], np.ndarray] | None = None,
) -> MapResult:
    """Label every frame of `input_path` into the map file `output_path` (and the catalogue),
    recording in both what they were made from: the input's name and the digest of its frames
    (taken as they are labelled: one pass), and `provenance` (the model's, for a network);
    `closing` gives attributes known once every frame is labelled (the priors voted under);
    with `uncertainty`, the labeller's probabilities give the map's per-pixel uncertainty;
    `summed` gives the charge the catalogue sums from the charge as read (the readout's artefacts
    undone: pipeline/calibration/restore.py).
    Every frame passes the plausibility check first (`calibrate.plausibility`)."""
    start, name = time.perf_counter(), Path(input_path).name
    with calibrated(input_path, config) as frames:
        frames.calibrate()  # before any output is opened
        n, height, width = frames.file.shape
        tables: list[pd.DataFrame] = []
        found_per_class = dict.fromkeys(config.classes, 0)
        with (
            output_group(),
            MapWriter(
                output_path,
                height=height,
                width=width,
                class_names=config.classes,
                source=name,
                probabilities=probabilities,
                provenance=provenance,
                uncertainty=uncertainty,
            ) as writer,
        ):
            warnings: list[str] = []
            charges = frames.charges(config.io.prefetch_frames)
            for i, charge in tqdm(
                enumerate(charges), total=n, desc=f"{desc} {printable(name)}", disable=not progress
            ):
                warning = plausibility.check(charge, frames.noise_e(i), config.calibrate, name, i)
                warnings += [warning] if warning else []
                labels, probs = labeller(charge, frames.noise_e(i))
                entropy = normalised_entropy(probs) if uncertainty and probs is not None else None
                writer.append(labels, probs if probabilities else None, entropy)
                if catalogue_path is not None:
                    first = 1 + sum(len(t) for t in tables)
                    tables.append(
                        clusters.frame_clusters(
                            labels,
                            summed(charge) if summed else charge,
                            config.classes,
                            config.physics.pair_energy_ev,
                            i,
                            probs,
                            first,
                        )
                    )
                else:
                    for c, cls in enumerate(config.classes[1:], start=1):
                        found_per_class[cls] += count_clusters(labels, c)
            frames_sha256 = str(frames.frames_sha256)  # digested as they were labelled
            writer.annotate({"frames_sha256": frames_sha256, **(closing() if closing else {})})
            if catalogue_path is not None:
                found = [t for t in tables if len(t)]
                table = pd.concat(found, ignore_index=True) if found else clusters.empty_catalogue()
                made_from = {"source": name, "frames_sha256": frames_sha256, **(provenance or {})}
                clusters.write_catalogue(table, catalogue_path, made_from)
                counts = table["class_name"].value_counts()
                found_per_class = {c: int(counts.get(c, 0)) for c in config.classes}
    elapsed = time.perf_counter() - start
    pixels = n * height * width
    said = unstated(frames.file, config) + plausibility.summary(warnings)
    return MapResult(Path(output_path), n, pixels, elapsed, frames_sha256, found_per_class, said)
