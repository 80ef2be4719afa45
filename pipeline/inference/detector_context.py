"""What a detector-aware network is told about the file's detector (`normalise.condition`).

Owns resolving the descriptors of pipeline/calibration/conditioning.py for one file: stated
(`infer.back_sigma_px`), measured from the file itself (`infer.back_sigma_from: measured`: the
spread of its compact clusters, as the classical reconstruction sees them), or from the
configured detector and diffusion model; and saying which. The measurement: round clusters of
3-20 keV (X-rays and betas) give sigma^2 = (sigma_x^2 + sigma_y^2)/2 - 1/12 px^2 (one pixel's own
variance), corrected for the tails the neighbour threshold t cut: a 2-D Gaussian kept out to
where it falls to t keeps the share 1 - u e^-u / (1 - e^-u) of its variance, u = ln(peak / t).
Charge from the back surface diffuses the most, so the upper decile of the clusters' sigma is
the back surface's: within 5 % on simulated detectors of 0.5-2.3 px (thin, diffuse, skipper,
noisy; X-rays from the back, the front or in depth). Fewer than `MIN_CLUSTERS` such clusters:
the config's value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from pipeline.calibration import conditioning
from pipeline.calibration.frames import calibrated
from pipeline.config import NormaliseConfig
from pipeline.config.stages import InferSections
from pipeline.core.components import PIXEL_VARIANCE, cluster_features
from pipeline.inference.classical import seeded_clusters

MIN_CLUSTERS = 30  # below this the upper decile rests on three clusters: the config's value
MEASURE_FRAMES = 16  # frames read for it (evenly spread over the file)
ENERGY_KEV = (3.0, 20.0)  # X-ray lines and betas bright enough that thresholds keep their tails
QUANTILE = 0.9


def kept_variance_share(peak_e: np.ndarray, threshold_e: float) -> np.ndarray:
    """The share of a 2-D Gaussian's variance its pixels above `threshold_e` hold, for a peak
    of `peak_e`: the disc out to where it falls to the threshold, radius^2 = 2 sigma^2 u."""
    u = np.log(np.maximum(np.asarray(peak_e, dtype=float) / threshold_e, 1.0001))
    return 1 - u * np.exp(-u) / (1 - np.exp(-u))


def compact_sigmas(charge_e: np.ndarray, noise_e: float, config: InferSections) -> np.ndarray:
    """The sigma (pixels; pixelisation and threshold removed) of each round 3-20 keV cluster."""
    components, n = seeded_clusters(charge_e, noise_e, config.classical)
    if n == 0:
        return np.zeros(0)
    table = cluster_features(components, n, charge_e, config.physics.pair_energy_ev)
    energy = table["energy_kev"].to_numpy()
    keep = (energy > ENERGY_KEV[0]) & (energy < ENERGY_KEV[1]) & (table["elongation"] < 1.6)
    keep &= table["pixels"].to_numpy() <= 150
    peak = np.asarray(ndimage.maximum(charge_e, components, np.arange(1, n + 1)), dtype=float)
    measured = ((table["sigma_x"] ** 2 + table["sigma_y"] ** 2) / 2).to_numpy()
    sigma = diffusion_sigma(measured, peak, config.classical.neighbour_sigma * noise_e)
    return sigma[keep]


def diffusion_sigma(variance: np.ndarray, peak_e: np.ndarray, threshold_e: float) -> np.ndarray:
    """Each cluster's sigma (pixels) as a diffused point charge's, from the charge-weighted
    `variance` (px^2) of its pixels above `threshold_e` and its brightest pixel `peak_e`: one
    pixel's own variance removed and the tails the threshold cut restored."""
    share = kept_variance_share(peak_e, threshold_e)
    return np.sqrt(np.clip(variance / np.maximum(share, 0.3) - PIXEL_VARIANCE, 0, None))


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
