"""Calibration of raw CCD frames: ADU -> electrons, and the network's input normalisation.

This module owns every step between a raw frame in ADU and the normalised charge image the U-Net
sees: the per-row pedestal (frame or overscan median), the gain (file attribute, config, or measured
on the Mn K-alpha line of an Fe-55 run), the readout noise of each frame, the hot-pixel and
hot-column mask of a run, and `normalise`/`denormalise`. Physics numbers come from the config;
the only constants here are statistical conventions, named below.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage, optimize, signal

from pipeline.config import CalibrateConfig, Config, NormaliseConfig

if TYPE_CHECKING:
    from pipeline.io import FrameFile

MAD_TO_SIGMA = 1.4826  # Gaussian sigma = 1.4826 x median absolute deviation
# The median of N Gaussian values has std ~ sqrt(pi/2) sigma / sqrt(N).
MEDIAN_SPREAD = math.sqrt(math.pi / 2)
NOISE_ITERATIONS = 5  # clip-and-re-estimate rounds of the noise (converges in 2-3)
# Cluster finding as in DAMIC/SENSEI analyses: pixels above ~3 sigma joined 8-connected, a cluster
# kept when one of its pixels (the seed) is above ~4 sigma.
PIXEL_SIGMA = 3.0
SEED_SIGMA = 4.0
DILATE_PIXELS = 2  # grow clusters by 2 pixels to catch the diffusion tails below 3 sigma
EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity
# Mn K-alpha (1573 e-) sits hundreds of noise sigmas above zero in any usable CCD; noise clusters
# sum to a few sigma. Cluster sums below 20 sigma cannot be the line and are left out.
MIN_LINE_SNR = 20.0
MIN_LINE_CLUSTERS = 10  # fewer clusters in the line region than this: no peak to fit
# Measured Fe-55 lines in CCDs are 1-3 % wide (sigma/E; Fano width 0.9 % at 1573 e-, plus the
# noise summed over a cluster). A "peak" wider than 10 % is a continuum bump, not the line.
MAX_LINE_REL_WIDTH = 0.10
LOCATE_BIN_LN = MAX_LINE_REL_WIDTH / 4  # bin width of ln(cluster sum) when locating the line
FWHM_TO_SIGMA = 1 / (2 * math.sqrt(2 * math.log(2)))
# With fewer frames the per-pixel median cannot tell a hot pixel from a track that crossed it.
MIN_FRAMES_FOR_PIXELS = 3
STACK_LIMIT = 6.0e4  # frames are kept as float16 (max 65504); clipping there leaves medians intact
BLOCK_BYTES = 64 * 2**20  # float32 working block of the median computations


@dataclass(frozen=True)
class FrameCalibration:
    gain_adu_per_e: float
    pedestal_adu: np.ndarray  # (H,) per-row pedestal in ADU
    noise_e: float  # measured readout noise of the frame, electrons


@dataclass
class RunCalibration:
    gain_adu_per_e: float
    frames: list[FrameCalibration]
    hot_mask: np.ndarray  # (H, W) bool

    @property
    def noise_e(self) -> float:
        """Median of the frames' measured noise, electrons."""
        return float(np.median([f.noise_e for f in self.frames]))


def row_pedestal_adu(frame_adu: np.ndarray, overscan_adu: np.ndarray | None = None) -> np.ndarray:
    """Per-row median of the frame (signal covers < 1 % of pixels), or of the overscan columns."""
    source = np.asarray(frame_adu if overscan_adu is None else overscan_adu)
    if source.ndim != 2:
        raise ValueError(f"row_pedestal_adu: expected a 2-D (rows, cols) array, got {source.shape}")
    return np.median(source, axis=1).astype(np.float64)


def measure_noise_e(charge_e: np.ndarray, clip_sigma: float) -> float:
    """Robust noise: 1.4826 x MAD, re-estimated without pixels beyond `clip_sigma` (signal).
    Non-finite pixels are ignored. Works in any unit (ADU in, ADU out)."""
    values = np.asarray(charge_e, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("measure_noise_e: no finite pixels")
    kept, sigma = values, 0.0
    for _ in range(NOISE_ITERATIONS):
        centre = np.median(kept)
        sigma = MAD_TO_SIGMA * float(np.median(np.abs(kept - centre)))
        if sigma == 0.0:
            break
        inside = np.abs(values - centre) <= clip_sigma * sigma
        if np.count_nonzero(inside) == kept.size:
            break
        kept = values[inside]
    return sigma


def _pedestal(frame: np.ndarray, cfg: CalibrateConfig, overscan: np.ndarray | None) -> np.ndarray:
    if cfg.pedestal == "rows":
        return row_pedestal_adu(frame)
    if overscan is None:
        raise ValueError(
            "calibrate.pedestal is 'overscan' but no overscan columns were given "
            "(set io.fits.overscan_cols, or calibrate.pedestal: rows)"
        )
    overscan = np.asarray(overscan)
    if overscan.ndim != 2 or overscan.shape[0] != frame.shape[0]:
        raise ValueError(f"overscan shape {overscan.shape} does not match frame rows {frame.shape}")
    return row_pedestal_adu(frame, overscan)


def _check_gain(gain: float) -> float:
    gain = float(gain)
    if not (math.isfinite(gain) and gain > 0):
        raise ValueError(f"gain_adu_per_e must be a positive number, got {gain}")
    return gain


def calibrate_frame(
    frame_adu: np.ndarray,
    gain_adu_per_e: float,
    cfg: CalibrateConfig,
    overscan_adu: np.ndarray | None = None,
) -> tuple[np.ndarray, FrameCalibration]:
    """Charge in electrons (float32) = (frame - row pedestal) / gain, and its calibration."""
    gain = _check_gain(gain_adu_per_e)
    frame = np.asarray(frame_adu, dtype=np.float64)
    pedestal = _pedestal(frame, cfg, overscan_adu)
    charge = ((frame - pedestal[:, None]) / gain).astype(np.float32)
    return charge, FrameCalibration(gain, pedestal, measure_noise_e(charge, cfg.noise_clip_sigma))


def resolve_gain(
    attrs: Mapping[str, Any],
    cfg: CalibrateConfig,
    fe55_frames_adu: np.ndarray | None = None,
    pair_energy_ev: float = 3.75,
) -> float:
    """The gain by `calibrate.gain`: file attribute (1.0 if absent), config value, or Fe-55 line."""
    if cfg.gain == "file":
        return _check_gain(attrs.get("gain_adu_per_e", 1.0))
    if cfg.gain == "config":
        return _check_gain(cfg.gain_adu_per_e)
    if fe55_frames_adu is None:
        raise ValueError("calibrate.gain is 'fe55' but no Fe-55 frames were given to measure it on")
    return measure_gain_fe55(fe55_frames_adu, cfg.fe55_kev, pair_energy_ev, cfg.noise_clip_sigma)


def measure_gain_fe55(
    frames_adu: np.ndarray | Iterable[np.ndarray],
    fe55_kev: float,
    pair_energy_ev: float,
    clip_sigma: float,
) -> float:
    """Gain from the Mn K-alpha peak of cluster sums in Fe-55 frames (one frame, a stack, or an
    iterable of frames): row pedestal, noise in ADU, 3/4-sigma clusters grown by 2 pixels."""
    sums, noises = [], []
    for frame in _iter_frames(frames_adu):
        residual = frame - row_pedestal_adu(frame)[:, None]
        noises.append(measure_noise_e(residual, clip_sigma))
        sums.append(cluster_sums_adu(residual, noises[-1]))
    if not sums:
        raise ValueError("measure_gain_fe55: no frames")
    return _gain_from_sums(np.concatenate(sums), float(np.median(noises)), fe55_kev, pair_energy_ev)


def cluster_sums_adu(residual_adu: np.ndarray, noise_adu: float) -> np.ndarray:
    """Charge of each seeded cluster, summed over the cluster grown by DILATE_PIXELS; clusters
    whose grown box touches the frame edge (charge lost off the edge) are left out."""
    labels, n = ndimage.label(residual_adu > PIXEL_SIGMA * noise_adu, structure=EIGHT)
    if n == 0:
        return np.empty(0)
    peaks = ndimage.maximum(residual_adu, labels, np.arange(1, n + 1))
    seeded = np.isin(labels, np.flatnonzero(peaks > SEED_SIGMA * noise_adu) + 1)
    grown = ndimage.binary_dilation(seeded, structure=EIGHT, iterations=DILATE_PIXELS)
    # dense sources lift the row median; re-take it without the clusters
    offset = np.ma.median(np.ma.masked_array(residual_adu, grown), axis=1).filled(0.0)
    residual_adu = residual_adu - offset[:, None]
    grown_labels, m = ndimage.label(grown, structure=EIGHT)
    if m == 0:
        return np.empty(0)
    shape = residual_adu.shape
    inside = [
        all(s.start > 0 and s.stop < size for s, size in zip(box, shape, strict=True))
        for box in ndimage.find_objects(grown_labels)
    ]
    sums = ndimage.sum_labels(residual_adu, grown_labels, np.arange(1, m + 1))
    return np.asarray(sums)[np.asarray(inside, dtype=bool)]


def _gain_from_sums(sums: np.ndarray, noise_adu: float, fe55_kev: float, pair_ev: float) -> float:
    line = sums[sums > MIN_LINE_SNR * noise_adu]
    if line.size < MIN_LINE_CLUSTERS:
        raise ValueError(
            f"no Fe-55 peak: {line.size} clusters above {MIN_LINE_SNR:g} noise sigma "
            f"(need {MIN_LINE_CLUSTERS}); are these Fe-55 frames?"
        )
    centre, width = _locate_peak(line)
    mean, sigma = _fit_gaussian(line, centre, width)
    if not 0 < sigma / mean <= MAX_LINE_REL_WIDTH:
        raise ValueError(
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
        raise ValueError("no Fe-55 peak found in the histogram of cluster sums")
    best = int(peaks[np.argmax(props["prominences"])])
    bin_ln = float(edges[1] - edges[0])
    fwhm_ln = signal.peak_widths(padded, [best], rel_height=0.5)[0][0] * bin_ln
    centre = math.exp(edges[best - 1] + bin_ln / 2)
    return centre, centre * max(fwhm_ln * FWHM_TO_SIGMA, bin_ln)


def _fit_gaussian(values: np.ndarray, centre: float, width: float) -> tuple[float, float]:
    """Gaussian fit to the histogram of `values` within 2 sigma of the located peak."""
    window = values[np.abs(values - centre) < 2 * width]
    if window.size < MIN_LINE_CLUSTERS:
        raise ValueError(f"no Fe-55 peak: only {window.size} clusters around {centre:.1f} ADU")
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
        raise ValueError(f"no Fe-55 peak: Gaussian fit near {centre:.1f} ADU failed") from exc
    if not abs(mean - centre) < 2 * width:
        raise ValueError(f"no Fe-55 peak: Gaussian fit near {centre:.1f} ADU ran off to {mean:.1f}")
    return float(mean), abs(float(sigma))


def find_hot_pixels(
    charge_frames: Iterable[np.ndarray], noise_e: float, cfg: CalibrateConfig
) -> np.ndarray:
    """(H, W) mask of hot pixels and hot columns across the frames of a run.

    Rule (same for pixels and columns): the per-pixel median over the N frames (per column: over
    rows x frames) is an outlier when it exceeds the median of all of them by `n_sigma` x spread,
    spread = max(expected, measured): expected is the std of a median of M pure-noise values,
    sqrt(pi/2) noise / sqrt(M) (M = N, resp. H x N), measured is 1.4826 x MAD of the medians.
    Pixels need N >= 3 frames: with fewer, a median cannot tell a hot pixel from a track, and
    only columns are looked for. Memory: the frames are kept as float16, 2 x N x H x W bytes
    (300 frames of 1024 x 1024: 600 MiB), plus 64 MiB float32 working blocks.
    """
    return _hot_mask([_to_stack(np.asarray(f)) for f in charge_frames], noise_e, cfg)


def _to_stack(frame: np.ndarray) -> np.ndarray:
    return np.clip(frame, -STACK_LIMIT, STACK_LIMIT).astype(np.float16)


def _hot_mask(frames: list[np.ndarray], noise: float, cfg: CalibrateConfig) -> np.ndarray:
    if not frames:
        raise ValueError("find_hot_pixels: no frames")
    n, (h, w) = len(frames), frames[0].shape
    mask = np.zeros((h, w), dtype=bool)
    column_spread = MEDIAN_SPREAD * noise / math.sqrt(h * n)
    mask[:, _outliers(_medians(frames, True), cfg.hot_column_sigma, column_spread)] = True
    if n >= MIN_FRAMES_FOR_PIXELS:
        pixel_spread = MEDIAN_SPREAD * noise / math.sqrt(n)
        mask |= _outliers(_medians(frames, False), cfg.hot_pixel_sigma, pixel_spread)
    return mask


def _outliers(medians: np.ndarray, n_sigma: float, expected_spread: float) -> np.ndarray:
    centre = float(np.median(medians))
    measured = MAD_TO_SIGMA * float(np.median(np.abs(medians - centre)))
    return medians > centre + n_sigma * max(expected_spread, measured)


def _medians(frames: list[np.ndarray], per_column: bool) -> np.ndarray:
    """Per-pixel medians over frames, or per-column medians over rows x frames, in blocks."""
    n, (h, w) = len(frames), frames[0].shape
    step = max(1, BLOCK_BYTES // (4 * n * (h if per_column else w)))
    parts = []
    for i in range(0, w if per_column else h, step):
        cut = np.s_[:, i : i + step] if per_column else np.s_[i : i + step]
        block = np.stack([f[cut] for f in frames]).astype(np.float32)
        parts.append(np.median(block, axis=(0, 1) if per_column else 0))
    return np.concatenate(parts, axis=0)


def apply_mask(charge_e: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of the charge with the masked pixels set to 0 electrons."""
    if mask.shape != charge_e.shape[-2:]:
        raise ValueError(f"mask shape {mask.shape} does not match frame shape {charge_e.shape}")
    return np.where(mask, 0, charge_e).astype(charge_e.dtype, copy=False)


def _check_kind(cfg: NormaliseConfig) -> None:
    if cfg.kind != "asinh_noise":
        raise ValueError(f"normalise.kind {cfg.kind!r} is not known (known: 'asinh_noise')")


def normalise(charge_e: np.ndarray, noise_e: float, cfg: NormaliseConfig) -> np.ndarray:
    """Network input, float32: asinh(q / (noise_multiple x noise)) / divisor."""
    _check_kind(cfg)
    scaled = np.asarray(charge_e, dtype=np.float64) / (cfg.noise_multiple * noise_e)
    return (np.arcsinh(scaled) / cfg.divisor).astype(np.float32)


def denormalise(x: np.ndarray, noise_e: float, cfg: NormaliseConfig) -> np.ndarray:
    """Inverse of `normalise`: charge in electrons (float64)."""
    _check_kind(cfg)
    return np.sinh(np.asarray(x, dtype=np.float64) * cfg.divisor) * cfg.noise_multiple * noise_e


def _iter_frames(frames: Any) -> Iterator[np.ndarray]:
    """2-D frames as float64 from one frame, an (N, H, W) numpy/dask stack (one frame computed
    at a time), or an iterable of frames."""
    ndim = getattr(frames, "ndim", None)
    source = [frames] if ndim == 2 else (frames[i] for i in range(len(frames))) if ndim else frames
    for frame in source:
        yield np.asarray(frame, dtype=np.float64)


def calibrate_run(
    frames_adu: Any,
    attrs: Mapping[str, Any],
    cfg: CalibrateConfig,
    pair_energy_ev: float,
    overscan: Any = None,
) -> RunCalibration:
    """Calibrate a run in one streaming pass: per-frame pedestal and noise, the gain (for 'fe55'
    measured on these frames), and the hot mask. The hot rule is scale-free, so the mask is found
    on the pedestal-subtracted ADU frames before the gain is known."""
    frames_in = _iter_frames(frames_adu)
    kept = _hot_sample(frames_adu, cfg.hot_mask_frames)
    if overscan is None:
        pairs = zip(frames_in, itertools.repeat(None))
    else:
        pairs = zip(frames_in, _iter_frames(overscan), strict=True)
    pedestals, noises, sums, stack = [], [], [], []
    for index, (frame, over) in enumerate(pairs):
        pedestals.append(_pedestal(frame, cfg, over))
        residual = frame - pedestals[-1][:, None]
        noises.append(measure_noise_e(residual, cfg.noise_clip_sigma))
        if cfg.gain == "fe55":
            sums.append(cluster_sums_adu(residual, noises[-1]))
        if index in kept:
            stack.append(_to_stack(residual))
    if not stack:
        raise ValueError("calibrate_run: no frames")
    noise_adu = float(np.median(noises))
    if cfg.gain == "fe55":
        gain = _gain_from_sums(np.concatenate(sums), noise_adu, cfg.fe55_kev, pair_energy_ev)
    else:
        gain = resolve_gain(attrs, cfg)
    frames = [FrameCalibration(gain, p, n / gain) for p, n in zip(pedestals, noises, strict=True)]
    return RunCalibration(gain, frames, _hot_mask(stack, noise_adu, cfg))


def _hot_sample(frames: Any, limit: int) -> set[int]:
    """Indices of the frames kept for the hot-pixel medians: at most `limit`, evenly spread over
    the run, so memory does not grow with the run (the first `limit` if the length is unknown)."""
    if getattr(frames, "ndim", None) == 2:
        return {0}
    if not hasattr(frames, "__len__"):
        return set(range(limit))
    n = len(frames)
    return {int(i) for i in np.linspace(0, n - 1, min(limit, n)).round()} if n else set()


def frame_charge(frame_adu: np.ndarray, run: RunCalibration, index: int) -> np.ndarray:
    """Calibrated charge (electrons, float32) of frame `index` of a run, hot pixels masked."""
    cal = run.frames[index]
    charge = (np.asarray(frame_adu, np.float32) - cal.pedestal_adu[:, None]) / cal.gain_adu_per_e
    return apply_mask(charge.astype(np.float32), run.hot_mask)


def calibrate_file(ff: FrameFile, config: Config) -> RunCalibration:
    """`calibrate_run` over an opened frame file, with the config's calibration and physics.
    This is the first full pass over the data: a corrupt chunk, or frames the calibration cannot
    use (no Fe-55 peak, no finite pixel), is a FrameFileError naming the file."""
    from pipeline.io.base import FrameFileError, one_line

    try:
        return calibrate_run(
            ff.frames, ff.attrs, config.calibrate, config.physics.pair_energy_ev, ff.overscan
        )
    except Exception as exc:
        raise FrameFileError(
            ff.path, f"cannot calibrate: {type(exc).__name__}: {one_line(exc)}"
        ) from None
