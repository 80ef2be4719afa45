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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from pipeline.config import CalibrateConfig, Config, NormaliseConfig
from pipeline.config.sections import NORMALISE_CHANNELS
from pipeline.gain import cluster_sums_adu, gain_from_sums

if TYPE_CHECKING:
    from pipeline.io import FrameFile

MAD_TO_SIGMA = 1.4826  # Gaussian sigma = 1.4826 x median absolute deviation
# The median of N Gaussian values has std ~ sqrt(pi/2) sigma / sqrt(N).
MEDIAN_SPREAD = math.sqrt(math.pi / 2)
NOISE_ITERATIONS = 5  # clip-and-re-estimate rounds of the noise (converges in 2-3)
# With fewer frames the per-pixel median cannot tell a hot pixel from a track that crossed it.
MIN_FRAMES_FOR_PIXELS = 3
STACK_LIMIT = 6.0e4  # frames are kept as float16 (max 65504); clipping there leaves medians intact
BLOCK_BYTES = 64 * 2**20  # float32 working block of the median computations
HOT_STACK_BYTES = 4 * 2**30  # the float16 frames kept for the hot-pixel medians
# Values within 0.1 % of a step of the grid count as on it (float32 rounding of integer ADU).
GRID_TOLERANCE = 1e-3


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
    """Per-row median of the frame (signal covers < 1 % of pixels), or of the overscan columns;
    rounded to whole ADU where the values are whole."""
    source = np.asarray(frame_adu if overscan_adu is None else overscan_adu)
    if source.ndim != 2:
        raise ValueError(f"row_pedestal_adu: expected a 2-D (rows, cols) array, got {source.shape}")
    pedestal = np.median(source, axis=1).astype(np.float64)
    if is_integral(source):  # integer ADU (counted electrons): charges stay on the integer grid
        pedestal = np.floor(pedestal + 0.5)
    return pedestal


def is_integral(values: np.ndarray) -> bool:
    """Every value is a whole number (integer dtypes, or floats holding integer ADU)."""
    values = np.asarray(values)
    return values.dtype.kind in "iub" or bool(np.all(np.mod(values, 1.0) == 0))


def measure_noise_e(charge_e: np.ndarray, clip_sigma: float) -> float:
    """Robust noise: 1.4826 x MAD, re-estimated without pixels beyond `clip_sigma` (signal).
    Non-finite pixels are ignored. Works in any unit (ADU in, ADU out). Where more than half the
    pixels share one value the MAD is 0, a real outcome for electron-counting (skipper) frames:
    see `quantised_noise`. Always > 0, or a ValueError saying why no noise can be measured."""
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
    return sigma if sigma > 0 else quantised_noise(values, clip_sigma)


def quantised_noise(values: np.ndarray, clip_sigma: float) -> float:
    """Noise of pixels most of which share one value (the mode m).

    If the other values lie on a grid of step q around m (integer ADU, counted electrons), the
    noise is below the digitisation: for Gaussian noise of sigma s rounded to the grid, the
    share p of pixels at m among those within 1.5 q of it is P(|x| < q/2), so
    s = q / (2 Phi^-1((1 + p) / 2)). With no pixel one step away, p is taken as 1 - 1/(2n), the
    largest noise for which seeing none is likely. Off a grid, the mode is a constant region
    (masked, padded) and the noise is measured on the other pixels."""
    mode = float(np.median(values))
    deviation = np.abs(values - mode)
    off = deviation[deviation > 0]
    if off.size == 0:
        raise ValueError(
            f"every pixel has the value {mode:g}: no noise can be measured (dead or saturated "
            "readout?)"
        )
    step = float(off.min())
    steps = off / step
    if not np.allclose(steps, np.round(steps), rtol=0, atol=GRID_TOLERANCE):
        return measure_noise_e(values[deviation > 0], clip_sigma)
    at_mode = np.count_nonzero(deviation == 0)
    near = at_mode + np.count_nonzero(steps < 1.5)
    share = min(at_mode / near, 1 - 0.5 / near)
    return step / (2 * float(stats.norm.ppf((1 + share) / 2)))


def check_not_saturated(frame: np.ndarray) -> None:
    """ValueError if more than half the pixels sit at the frame's maximum: a saturated (or dead)
    readout, on which no pedestal, noise or charge can be measured."""
    values = np.asarray(frame)
    top = float(np.max(values))
    share = np.count_nonzero(values == top) / values.size
    if share > 0.5:
        raise ValueError(
            f"{share:.0%} of the pixels sit at the frame's maximum, {top:g} ADU: a saturated or "
            "dead readout, no pedestal or noise can be measured"
        )


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
    return gain_from_sums(np.concatenate(sums), float(np.median(noises)), fe55_kev, pair_energy_ev)


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
        if per_column:  # rows x frames of a column made contiguous: partitions 1.7x faster
            by_column = np.ascontiguousarray(block.transpose(2, 0, 1)).reshape(block.shape[2], -1)
            parts.append(np.median(by_column, axis=1))
        else:
            parts.append(_median_of_frames(block))
    return np.concatenate(parts, axis=0)


def _median_of_frames(block: np.ndarray) -> np.ndarray:
    """np.median(block, axis=0), exactly, for the few frames of a stack: a sort along the short
    axis is ~3x faster than numpy's partition across it."""
    ordered, n = np.sort(block, axis=0), block.shape[0]
    if n % 2:
        return ordered[n // 2]
    return np.mean(ordered[n // 2 - 1 : n // 2 + 1], axis=0)


def apply_mask(charge_e: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of the charge with the masked pixels set to 0 electrons."""
    if mask.shape != charge_e.shape[-2:]:
        raise ValueError(f"mask shape {mask.shape} does not match frame shape {charge_e.shape}")
    return np.where(mask, 0, charge_e).astype(charge_e.dtype, copy=False)


def normalise(charge_e: np.ndarray, noise_e: float, cfg: NormaliseConfig) -> np.ndarray:
    """Network input, float32, channels first (C, ...) for `cfg.kind`:

    - asinh_noise (1 channel): asinh(q / (noise_multiple x noise)) / divisor;
    - charge_significance (2 channels): the charge itself, asinh(q / charge_scale_e) / divisor,
      the same for every detector (energy is charge in electrons), and the significance
      asinh(q / (noise_multiple x noise)) / divisor, which alone depends on the noise.
    """
    if cfg.kind not in NORMALISE_CHANNELS:
        raise ValueError(
            f"normalise.kind {cfg.kind!r} is not known (known: {sorted(NORMALISE_CHANNELS)})"
        )
    if not (math.isfinite(noise_e) and noise_e > 0):
        raise ValueError(f"normalise: the noise must be a positive number, got {noise_e}")
    charge = np.asarray(charge_e, dtype=np.float64)
    significance = np.arcsinh(charge / (cfg.noise_multiple * noise_e)) / cfg.divisor
    if cfg.kind == "asinh_noise":
        return significance[None].astype(np.float32)
    physical = np.arcsinh(charge / cfg.charge_scale_e) / cfg.divisor
    return np.stack([physical, significance]).astype(np.float32)


def denormalise(x: np.ndarray, noise_e: float, cfg: NormaliseConfig) -> np.ndarray:
    """Inverse of `normalise` (its first channel): charge in electrons (float64)."""
    scale = cfg.noise_multiple * noise_e if cfg.kind == "asinh_noise" else cfg.charge_scale_e
    return np.sinh(np.asarray(x[0], dtype=np.float64) * cfg.divisor) * scale


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
        try:
            check_not_saturated(frame)
        except ValueError as exc:
            raise ValueError(f"frame {index}: {exc}") from None
        pedestals.append(_pedestal(frame, cfg, over))
        residual = frame - pedestals[-1][:, None]
        noises.append(measure_noise_e(residual, cfg.noise_clip_sigma))
        if cfg.gain == "fe55":
            sums.append(cluster_sums_adu(residual, noises[-1]))
        if index in kept:
            if not stack:
                _check_stack_memory(len(kept), frame.shape)
            stack.append(_to_stack(residual))
    if not stack:
        raise ValueError("calibrate_run: no frames")
    noise_adu = float(np.median(noises))
    if cfg.gain == "fe55":
        gain = gain_from_sums(np.concatenate(sums), noise_adu, cfg.fe55_kev, pair_energy_ev)
    else:
        gain = resolve_gain(attrs, cfg)
    frames = [FrameCalibration(gain, p, n / gain) for p, n in zip(pedestals, noises, strict=True)]
    return RunCalibration(gain, frames, _hot_mask(stack, noise_adu, cfg))


def _check_stack_memory(n_frames: int, shape: tuple[int, ...]) -> None:
    need = n_frames * math.prod(shape) * 2  # float16
    if need > HOT_STACK_BYTES:
        raise ValueError(
            f"calibrate.hot_mask_frames: {n_frames} frames of {shape[0]}x{shape[1]} need "
            f"{need / 2**30:.1f} GiB for the hot-pixel medians (limit {HOT_STACK_BYTES / 2**30:g} "
            "GiB); lower calibrate.hot_mask_frames"
        )


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
