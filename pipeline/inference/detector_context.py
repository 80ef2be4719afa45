"""What a detector-aware network is told about the file's detector (`normalise.condition`).

Owns resolving the descriptors of pipeline/calibration/conditioning.py for one file: stated
(`infer.back_sigma_px`), measured from the file itself (`infer.back_sigma_from: measured`: the
spread of its compact clusters, as the classical reconstruction sees them), or from the
configured detector and diffusion model; and saying which. The measurement: round clusters of
3-20 keV (X-rays and betas) give sigma^2 = (sigma_x^2 + sigma_y^2)/2 - 1/12 px^2 (one pixel's
own variance); charge from the back surface diffuses the most, so the upper decile of their
sigma is the back surface's (within 5 % on simulated detectors of 0.5-0.95 px; it reads low,
about 20 %, where thresholds cut the tails of clusters spread 2.3 px). Fewer than
`MIN_CLUSTERS` such clusters: the config's value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.calibration import conditioning
from pipeline.calibration.frames import calibrated
from pipeline.config import NormaliseConfig
from pipeline.config.stages import InferSections
from pipeline.inference.classical import PIXEL_VARIANCE, cluster_features, seeded_clusters

MIN_CLUSTERS = 30  # below this the upper decile rests on three clusters: the config's value
MEASURE_FRAMES = 8  # frames read for it (evenly spread over the file)
ENERGY_KEV = (3.0, 20.0)  # X-ray lines and betas bright enough that thresholds keep their tails
QUANTILE = 0.9


def compact_sigmas(charge_e: np.ndarray, noise_e: float, config: InferSections) -> np.ndarray:
    """The sigma (pixels, pixelisation removed) of each round 3-20 keV cluster of a frame."""
    components, n = seeded_clusters(charge_e, noise_e, config.classical)
    table = cluster_features(components, n, charge_e, config.physics.pair_energy_ev)
    energy = table["energy_kev"].to_numpy()
    keep = (energy > ENERGY_KEV[0]) & (energy < ENERGY_KEV[1]) & (table["elongation"] < 1.6)
    keep &= table["pixels"].to_numpy() <= 150
    variance = (table["sigma_x"] ** 2 + table["sigma_y"] ** 2) / 2 - PIXEL_VARIANCE
    return np.sqrt(np.clip(variance.to_numpy()[keep], 0, None))


def measured_back_sigma(path: str | Path, config: InferSections) -> tuple[float | None, int]:
    """(the upper decile of the compact clusters' sigma, how many clusters) of up to
    `MEASURE_FRAMES` frames of `path`; None where fewer than `MIN_CLUSTERS`."""
    with calibrated(path, config) as frames:
        frames.calibrate()
        total = frames.file.shape[0]
        wanted = set(np.linspace(0, total - 1, min(total, MEASURE_FRAMES)).round().astype(int))
        sigmas = [
            compact_sigmas(charge, frames.noise_e(i), config)
            for i, charge in enumerate(frames.charges())
            if i in wanted
        ]
    found = np.concatenate(sigmas) if sigmas else np.zeros(0)
    if len(found) < MIN_CLUSTERS:
        return None, len(found)
    return float(np.quantile(found, QUANTILE)), len(found)


def detector_context(
    config: InferSections, normalise: NormaliseConfig, path: str | Path
) -> tuple[dict[str, float], str]:
    """The descriptors a detector-aware network is given for the file `path`, and where they
    came from. A network without conditioning is given none."""
    if not normalise.condition:
        return {}, "none"
    cfg = config.infer
    if cfg.back_sigma_px is not None:
        return {"back_sigma_px": cfg.back_sigma_px}, "config infer.back_sigma_px"
    configured = conditioning.from_config(config.detector, config.physics)
    where = "config detector.thickness_um, pixel_size_um and physics.diffusion_*"
    if cfg.back_sigma_from == "measured":
        value, clusters = measured_back_sigma(path, config)
        if value is not None:
            return {
                "back_sigma_px": value
            }, f"measured: upper decile of {clusters} compact clusters"
        where += f" (measured: only {clusters} compact clusters, fewer than {MIN_CLUSTERS})"
    return configured, where
