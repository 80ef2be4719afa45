"""The gain from an Fe-55 exposure: the Mn K-alpha line in the charge of seeded clusters.

Owns cluster finding for the line (3/4-sigma seeded clusters grown by the diffusion tails, as in
DAMIC/SENSEI analyses), locating the line in a histogram of ln(cluster sum) and fitting it. The
pedestal and noise it works on come from `pipeline.calibration.calibrate`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import ndimage, optimize, signal

from pipeline.core.components import EIGHT_CONNECTED, seeded_components
from pipeline.core.errors import CalibrationError

# Cluster finding as in DAMIC/SENSEI analyses: pixels above ~3 sigma joined 8-connected, a cluster
# kept when one of its pixels (the seed) is above ~4 sigma.
PIXEL_SIGMA = 3.0
SEED_SIGMA = 4.0
DILATE_PIXELS = 2  # grow clusters by 2 pixels to catch the diffusion tails below 3 sigma
# Mn K-alpha (1573 e-) sits hundreds of noise sigmas above zero in any usable CCD; noise clusters
# sum to a few sigma. Cluster sums below 20 sigma cannot be the line and are left out.
MIN_LINE_SNR = 20.0
MIN_LINE_CLUSTERS = 10  # fewer clusters in the line region than this: no peak to fit
# Measured Fe-55 lines in CCDs are 1-3 % wide (sigma/E; Fano width 0.9 % at 1573 e-, plus the
# noise summed over a cluster). A "peak" wider than 10 % is a continuum bump, not the line.
MAX_LINE_REL_WIDTH = 0.10
LOCATE_BIN_LN = MAX_LINE_REL_WIDTH / 4  # bin width of ln(cluster sum) when locating the line
FWHM_TO_SIGMA = 1 / (2 * math.sqrt(2 * math.log(2)))


def cluster_sums_adu(residual_adu: np.ndarray, noise_adu: float) -> np.ndarray:
    """Charge of each seeded cluster, summed over the cluster grown by DILATE_PIXELS; clusters
    whose grown box touches the frame edge (charge lost off the edge) are left out."""
    components, n = seeded_components(residual_adu, PIXEL_SIGMA * noise_adu, SEED_SIGMA * noise_adu)
    if n == 0:
        return np.empty(0)
    seeded = components > 0
    grown = ndimage.binary_dilation(seeded, structure=EIGHT_CONNECTED, iterations=DILATE_PIXELS)
    # dense sources lift the row median; re-take it without the clusters
    offset = np.ma.median(np.ma.masked_array(residual_adu, grown), axis=1).filled(0.0)
    residual_adu = residual_adu - offset[:, None]
    grown_labels, m = ndimage.label(grown, structure=EIGHT_CONNECTED)
    if m == 0:
        return np.empty(0)
    shape = residual_adu.shape
    inside = [
        all(s.start > 0 and s.stop < size for s, size in zip(box, shape, strict=True))
        for box in ndimage.find_objects(grown_labels)
    ]
    sums = ndimage.sum_labels(residual_adu, grown_labels, np.arange(1, m + 1))
    return np.asarray(sums)[np.asarray(inside, dtype=bool)]


def gain_from_sums(sums: np.ndarray, noise_adu: float, fe55_kev: float, pair_ev: float) -> float:
    line = sums[sums > MIN_LINE_SNR * noise_adu]
    if line.size < MIN_LINE_CLUSTERS:
        raise CalibrationError(
            f"no Fe-55 peak: {line.size} clusters above {MIN_LINE_SNR:g} noise sigma "
            f"(need {MIN_LINE_CLUSTERS}); are these Fe-55 frames?"
        )
    centre, width = _locate_peak(line)
    mean, sigma = _fit_gaussian(line, centre, width)
    if not 0 < sigma / mean <= MAX_LINE_REL_WIDTH:
        raise CalibrationError(
            f"no Fe-55 peak: the most prominent peak ({mean:.1f} ADU) is {sigma / mean:.0%} wide, "
            f"a line is narrower than {MAX_LINE_REL_WIDTH:.0%}"
        )
    return mean / (fe55_kev * 1000.0 / pair_ev)


def _locate_peak(values: np.ndarray) -> tuple[float, float]:
    """Centre and sigma (from the FWHM) of the most prominent peak of a histogram in ln(sum):
    bins of constant relative width, so a line is a few bins wide wherever it lies."""
    logs = np.log(values)
    n_bins = int(np.clip(math.ceil(np.ptp(logs) / LOCATE_BIN_LN), 1, 10_000))
    hist, edges = np.histogram(logs, bins=n_bins)
    padded = np.concatenate([[0], hist, [0]])  # so that an edge bin can be a peak
    peaks, props = signal.find_peaks(padded, prominence=1)
    if peaks.size == 0:
        raise CalibrationError("no Fe-55 peak found in the histogram of cluster sums")
    best = int(peaks[np.argmax(props["prominences"])])
    bin_ln = float(edges[1] - edges[0])
    fwhm_ln = signal.peak_widths(padded, [best], rel_height=0.5)[0][0] * bin_ln
    centre = math.exp(edges[best - 1] + bin_ln / 2)
    return centre, centre * max(fwhm_ln * FWHM_TO_SIGMA, bin_ln)


def _fit_gaussian(values: np.ndarray, centre: float, width: float) -> tuple[float, float]:
    """Gaussian fit to the histogram of `values` within 2 sigma of the located peak."""
    window = values[np.abs(values - centre) < 2 * width]
    if window.size < MIN_LINE_CLUSTERS:
        raise CalibrationError(
            f"no Fe-55 peak: only {window.size} clusters around {centre:.1f} ADU"
        )
    n_bins = int(np.clip(len(np.histogram_bin_edges(window, "fd")) - 1, 7, 100))
    hist, edges = np.histogram(window, bins=n_bins)
    mids = (edges[:-1] + edges[1:]) / 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            (_, mean, sigma), _ = optimize.curve_fit(
                lambda x, a, m, s: a * np.exp(-0.5 * ((x - m) / s) ** 2),
                mids,
                hist,
                p0=(hist.max(), centre, width),
                maxfev=2000,
            )
    except RuntimeError as exc:
        raise CalibrationError(f"no Fe-55 peak: Gaussian fit near {centre:.1f} ADU failed") from exc
    if not abs(mean - centre) < 2 * width:
        raise CalibrationError(
            f"no Fe-55 peak: Gaussian fit near {centre:.1f} ADU ran off to {mean:.1f}"
        )
    return float(mean), abs(float(sigma))
