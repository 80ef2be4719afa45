"""Classical reconstruction (the reference the U-Net must beat).

Owns the cut-based track finding of the CCD dark-matter experiments (DAMIC, DAMIC-M, SENSEI):
seeded clustering of the calibrated charge (8-connected pixels above a neighbour threshold,
kept when one pixel passes a seed threshold), per-cluster charge-weighted shape features
(pipeline/core/components.py, shared with the catalogue), classification by published-style cuts,
and streaming a frame file into the same map file and cluster catalogue as
`pipeline.inference.infer`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.calibration.restore import Restorer
from pipeline.config import ArtefactShapesConfig, ClassicalConfig, Config
from pipeline.config.stages import ClassicalSettings
from pipeline.core.components import cluster_features, seeded_components
from pipeline.core.stage import Stage
from pipeline.inference import bleed, shapes
from pipeline.results.maps import FRAMES_READ, MAPPING, MapResult, write_maps


def seeded_clusters(
    charge_e: np.ndarray, noise_e: float, cfg: ClassicalConfig
) -> tuple[np.ndarray, int]:
    """8-connected components of pixels above `neighbour_sigma` x noise that hold at least one
    pixel above `seed_sigma` x noise, relabelled 1..n (0 elsewhere); returns (components, n)."""
    return seeded_components(charge_e, cfg.neighbour_sigma * noise_e, cfg.seed_sigma * noise_e)


def _compact_class(
    energy: np.ndarray, sigma: np.ndarray, cfg: ClassicalConfig, xray: int, tritium: int
) -> np.ndarray:
    """X-ray if the energy sits in an X-ray line window, above the tritium endpoint, or the
    cluster is sharper than charge from the back surface; tritium otherwise."""
    in_window = np.zeros(energy.shape, dtype=bool)
    for low, high in cfg.xray_windows_kev:
        in_window |= (energy >= low) & (energy <= high)
    is_xray = in_window | (energy > cfg.tritium_max_kev) | (sigma < cfg.tritium_min_sigma_px)
    return np.where(is_xray, xray, tritium)


def classify(
    features: pd.DataFrame,
    classes: Sequence[str],
    cfg: ClassicalConfig,
    shapes_cfg: ArtefactShapesConfig | None = None,
    pair_energy_ev: float = 3.75,
) -> np.ndarray:
    """Class index (into `classes`, matched by name) of each cluster, by the cuts the CCD
    dark-matter experiments publish, first match wins:

    1. alpha: above `alpha_min_kev` (MeV alphas make saturated, plasma-broadened blobs), unless
       it is a long straight track;
    2. muon: a straight minimum-ionising track, `length_px` >= `muon_min_length_px` and
       `elongation` >= `muon_min_elongation`;
    3. compact (`pixels` <= `point_max_pixels`): X-ray if its energy falls in an X-ray line
       window (Fe-55 Mn K-alpha/K-beta, Cu and Si K-alpha fluorescence), lies above the tritium
       endpoint, or the cluster is sharper (sigma = sqrt((sigma_x^2 + sigma_y^2) / 2) below
       `tritium_min_sigma_px`) than the diffusion-vs-depth relation allows for charge from the
       back surface, which diffuses the most; tritium (betas from the back surface) otherwise;
    4. electron: other extended clusters of at least `electron_min_kev`;
    5. anything left (extended but faint): the compact rule.

    Before them all, with `shapes_cfg` and an artefact class (`artefact` in `classes`): a shape
    no particle makes (pipeline/inference/shapes.py) is an artefact.
    """
    names = list(classes)
    ids = {name: names.index(name) for name in ("muon", "electron", "tritium", "xray", "alpha")}
    energy = features["energy_kev"].to_numpy(dtype=float)
    sigma = np.sqrt((features["sigma_x"].to_numpy() ** 2 + features["sigma_y"].to_numpy() ** 2) / 2)
    straight = (features["length_px"].to_numpy() >= cfg.muon_min_length_px) & (
        features["elongation"].to_numpy() >= cfg.muon_min_elongation
    )
    compact = features["pixels"].to_numpy() <= cfg.point_max_pixels
    point = _compact_class(energy, sigma, cfg, ids["xray"], ids["tritium"])
    conditions = [
        (energy > cfg.alpha_min_kev) & ~straight,
        straight,
        compact,
        energy >= cfg.electron_min_kev,
    ]
    choices: list[int | np.ndarray] = [ids["alpha"], ids["muon"], point, ids["electron"]]
    if shapes_cfg is not None and shapes.ARTEFACT in names:
        conditions.insert(0, shapes.no_particle(features, shapes_cfg, pair_energy_ev))
        choices.insert(0, names.index(shapes.ARTEFACT))
    return np.select(conditions, choices, default=point).astype(np.uint8)


def classical_labels(
    charge_e: np.ndarray, noise_e: float, config: ClassicalSettings | Config
) -> np.ndarray:
    """(H, W) uint8 class map of one calibrated frame: each kept cluster's pixels carry its
    class, all other pixels are background (0); a bleed plateau's spill artefact (bleed.py)."""
    components, n = seeded_clusters(charge_e, noise_e, config.classical)
    lut = np.zeros(n + 1, dtype=np.uint8)
    if n:
        features = cluster_features(components, n, charge_e, config.physics.pair_energy_ev)
        pair = config.physics.pair_energy_ev
        lut[1:] = classify(features, config.classes, config.classical, config.artefact_shapes, pair)
    labels = lut[components]
    return bleed.relabel(labels, charge_e, noise_e, config.classes, config.artefact_shapes)


def classical_file(
    config: ClassicalSettings | Config,
    input_path: str | Path,
    output_path: str | Path,
    catalogue_path: str | Path | None = None,
    progress: bool = True,
) -> MapResult:
    """Stream a frame file (any readable format) through calibration (the readout's artefacts
    undone: pipeline/calibration/restore.py) and `classical_labels` into a map file (labels
    only) and, with `catalogue_path`, the cluster catalogue (probability NaN). Both appear only
    if every frame succeeds."""

    def label(charge: np.ndarray, noise_e: float) -> tuple[np.ndarray, np.ndarray | None]:
        return classical_labels(charge, noise_e, config), None

    restorer = Restorer.for_file(input_path, config)
    result = write_maps(
        config,
        restorer.labeller(label, config.classes, shapes.ARTEFACT),
        input_path,
        output_path,
        catalogue_path,
        progress=progress,
        desc="classical",
        closing=restorer.attrs,
        summed=restorer.summed,
    )
    notes = "\n".join(restorer.notes())
    return dataclasses.replace(result, made_with=notes) if notes else result


def run(
    settings: ClassicalSettings,
    input: str | Path,
    output: str | Path,
    catalogue: str | Path | None = None,
) -> str:
    """The `classical` stage: `classical_file`, and what it wrote."""
    return str(classical_file(settings, input, output, catalogue))


STAGE = Stage(
    "classical",
    "the classical reconstruction (seeded clustering and shape cuts), as a map",
    f"Reads: {FRAMES_READ}. Writes: a map file in the same format as `infer` and, with "
    "--catalogue, the cluster catalogue.",
    run,
    ClassicalSettings,
    (*MAPPING,),
)
