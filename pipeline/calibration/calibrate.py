"""Calibration of raw CCD frames: ADU -> electrons, and the network's input normalisation.

This module owns every step between a raw frame in ADU and the normalised charge image the U-Net
sees: the per-row pedestal (frame or overscan median), the gain (file attribute, config, or measured
on the Mn K-alpha line of an Fe-55 run, per amplifier), the readout noise of each frame, the
hot-pixel and hot-column masks of a run (found by pipeline/calibration/hot_pixels.py, per
amplifier), and `normalise`/`denormalise`. Physics numbers come from the config; the only constants
here are statistical conventions, named below.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from pipeline.calibration import conditioning
from pipeline.calibration.gain import cluster_sums_adu, gain_from_sums
from pipeline.calibration.hot_pixels import MAD_TO_SIGMA, HotStack
from pipeline.config import CalibrateConfig, NormaliseConfig
from pipeline.config.sections import NORMALISE_CHANNELS
from pipeline.config.stages import FrameSections
from pipeline.core.errors import CalibrationError, FrameFileError, one_line

if TYPE_CHECKING:
    from pipeline.io import FrameFile

NOISE_ITERATIONS = 5  # clip-and-re-estimate rounds of the noise (converges in 2-3)
# Values within 0.1 % of a step of the grid count as on it (float32 rounding of integer ADU).
GRID_TOLERANCE = 1e-3


@dataclass(frozen=True)
class FrameCalibration:
    gain_adu_per_e: float
    pedestal_adu: np.ndarray  # (H,) per-row pedestal in ADU
    noise_e: float  # measured readout noise of the frame, electrons


@dataclass
class RunCalibration:
    """A run's calibration: each frame's, and per amplifier its gain and hot mask (frame i is
    amplifier i % amplifiers of exposure i // amplifiers)."""

    gains: list[float]  # ADU per electron, per amplifier
    frames: list[FrameCalibration]
    hot_masks: list[np.ndarray]  # (H, W) bool, per amplifier

    @property
    def amplifiers(self) -> int:
        return len(self.hot_masks)

    @property
    def gain_adu_per_e(self) -> float:
        """The gain of a one-amplifier run (the median of the amplifiers' otherwise)."""
        return float(np.median(self.gains))

    @property
    def hot_mask(self) -> np.ndarray:
        """The hot mask of a one-amplifier run."""
        if self.amplifiers != 1:
            raise ValueError(f"a run of {self.amplifiers} amplifiers has one mask each: mask_of")
        return self.hot_masks[0]

    def mask_of(self, index: int) -> np.ndarray:
        """The hot mask of frame `index` (its amplifier's)."""
        return self.hot_masks[index % self.amplifiers]

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
        raise CalibrationError("measure_noise_e: no finite pixels")
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
        raise CalibrationError(
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
    """CalibrationError if more than half the pixels sit at the frame's maximum: a saturated (or
    dead) readout, on which no pedestal, noise or charge can be measured."""
    values = np.asarray(frame)
    top = float(np.max(values))
    share = np.count_nonzero(values == top) / values.size
    if share > 0.5:
        raise CalibrationError(
            f"{share:.0%} of the pixels sit at the frame's maximum, {top:g} ADU: a saturated or "
            "dead readout, no pedestal or noise can be measured"
        )


def _pedestal(frame: np.ndarray, cfg: CalibrateConfig, overscan: np.ndarray | None) -> np.ndarray:
    if cfg.pedestal == "rows":
        return row_pedestal_adu(frame)
    if overscan is None:
        raise CalibrationError(
            "calibrate.pedestal is 'overscan' but no overscan columns were given "
            "(set io.fits.overscan_cols, or calibrate.pedestal: rows)"
        )
    overscan = np.asarray(overscan)
    if overscan.ndim != 2 or overscan.shape[0] != frame.shape[0]:
        raise CalibrationError(
            f"overscan shape {overscan.shape} does not match frame rows {frame.shape}"
        )
    return row_pedestal_adu(frame, overscan)


def _check_gain(gain: float) -> float:
    gain = float(gain)
    if not (math.isfinite(gain) and gain > 0):
        raise CalibrationError(f"gain_adu_per_e must be a positive number, got {gain}")
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
        raise CalibrationError(
            "calibrate.gain is 'fe55' but no Fe-55 frames were given to measure it on"
        )
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
        raise CalibrationError("measure_gain_fe55: no frames")
    return gain_from_sums(np.concatenate(sums), float(np.median(noises)), fe55_kev, pair_energy_ev)


def apply_mask(charge_e: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of the charge with the masked pixels set to 0 electrons."""
    if mask.shape != charge_e.shape[-2:]:
        raise ValueError(f"mask shape {mask.shape} does not match frame shape {charge_e.shape}")
    return np.where(mask, 0, charge_e).astype(charge_e.dtype, copy=False)


def normalise(
    charge_e: np.ndarray,
    noise_e: float,
    cfg: NormaliseConfig,
    context: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Network input, float32, channels first (C, ...) for `cfg.kind`:

    - asinh_noise (1 channel): asinh(q / (noise_multiple x noise)) / divisor;
    - charge_significance (2 channels): the charge itself, asinh(q / charge_scale_e) / divisor,
      the same for every detector (energy is charge in electrons), and the significance
      asinh(q / (noise_multiple x noise)) / divisor, which alone depends on the noise;

    then one constant channel per descriptor of `cfg.condition`, from `context`
    (pipeline/calibration/conditioning.py).
    """
    if cfg.kind not in NORMALISE_CHANNELS:
        raise ValueError(
            f"normalise.kind {cfg.kind!r} is not known (known: {sorted(NORMALISE_CHANNELS)})"
        )
    if not (math.isfinite(noise_e) and noise_e > 0):
        raise ValueError(f"normalise: the noise must be a positive number, got {noise_e}")
    charge = np.asarray(charge_e, dtype=np.float64)
    significance = np.arcsinh(charge / (cfg.noise_multiple * noise_e)) / cfg.divisor
    condition = conditioning.channels(cfg, context, charge.shape)
    if cfg.kind == "asinh_noise":
        base = significance[None].astype(np.float32)
    else:
        physical = np.arcsinh(charge / cfg.charge_scale_e) / cfg.divisor
        base = np.stack([physical, significance]).astype(np.float32)
    return np.concatenate([base, condition]) if len(condition) else base


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
    amplifier_attrs: Sequence[Mapping[str, Any]] | None = None,
) -> RunCalibration:
    """Calibrate a run in one streaming pass: per-frame pedestal and noise, and per amplifier
    the gain (for 'fe55' measured on its frames) and the hot mask. `amplifier_attrs` (one
    mapping per amplifier, e.g. the HDUs of a multi-amplifier FITS file) makes frame i
    amplifier i % len(amplifier_attrs) of exposure i // len(amplifier_attrs); without it every
    frame is an exposure of one amplifier with the file's `attrs`. The hot rule is scale-free,
    so the masks are found on the pedestal-subtracted ADU frames before the gain is known."""
    per_amplifier = list(amplifier_attrs) if amplifier_attrs else [attrs]
    n_amp = len(per_amplifier)
    n_frames = 1 if getattr(frames_adu, "ndim", None) == 2 else _length(frames_adu)
    if n_frames is not None and n_frames % n_amp:
        raise CalibrationError(f"{n_frames} frames are not whole exposures of {n_amp} amplifiers")
    hot = HotStack(n_frames, n_amp, cfg.hot_mask_frames)
    pedestals, noises = [], []
    sums: list[list[np.ndarray]] = [[] for _ in range(n_amp)]
    for index, (frame, over) in enumerate(_with_overscan(frames_adu, overscan)):
        try:
            check_not_saturated(frame)
        except CalibrationError as exc:
            raise CalibrationError(f"frame {index}: {exc}") from None
        pedestals.append(_pedestal(frame, cfg, over))
        residual = frame - pedestals[-1][:, None]
        noises.append(measure_noise_e(residual, cfg.noise_clip_sigma))
        if cfg.gain == "fe55":
            sums[index % n_amp].append(cluster_sums_adu(residual, noises[-1]))
        hot.add(index, residual)
    if not noises:
        raise CalibrationError("calibrate_run: no frames")
    noise_adu = [float(np.median(noises[a::n_amp])) for a in range(n_amp)]
    if cfg.gain == "fe55":
        gains = [
            gain_from_sums(np.concatenate(s), n, cfg.fe55_kev, pair_energy_ev)
            for s, n in zip(sums, noise_adu, strict=True)
        ]
    else:
        gains = [resolve_gain(a, cfg) for a in per_amplifier]
    frames = [
        FrameCalibration(gains[i % n_amp], p, n / gains[i % n_amp])
        for i, (p, n) in enumerate(zip(pedestals, noises, strict=True))
    ]
    return RunCalibration(gains, frames, hot.masks(noise_adu, cfg))


def _length(frames: Any) -> int | None:
    return len(frames) if hasattr(frames, "__len__") else None


def _with_overscan(frames_adu: Any, overscan: Any) -> Iterator[tuple[np.ndarray, Any]]:
    frames_in = _iter_frames(frames_adu)
    if overscan is None:
        return ((f, None) for f in frames_in)
    return zip(frames_in, _iter_frames(overscan), strict=True)


def frame_charge(frame_adu: np.ndarray, run: RunCalibration, index: int) -> np.ndarray:
    """Calibrated charge (electrons, float32) of frame `index` of a run, hot pixels masked."""
    cal = run.frames[index]
    charge = (np.asarray(frame_adu, np.float32) - cal.pedestal_adu[:, None]) / cal.gain_adu_per_e
    return apply_mask(charge.astype(np.float32), run.mask_of(index))


def calibrate_file(ff: FrameFile, config: FrameSections) -> RunCalibration:
    """`calibrate_run` over an opened frame file, with the config's calibration and physics.
    This is the first full pass over the data: a corrupt chunk, or frames the calibration cannot
    use (no Fe-55 peak, no finite pixel), is a FrameFileError naming the file."""
    from pipeline.io.base import read_errors

    try:
        return calibrate_run(
            ff.frames,
            ff.attrs,
            config.calibrate,
            config.physics.pair_energy_ev,
            ff.overscan,
            ff.amplifier_attrs,
        )
    except Exception as exc:  # a chunk of the file is read here the first time
        if not isinstance(exc, (CalibrationError, *read_errors())):
            raise  # a bug: a traceback, not "cannot calibrate"
        raise FrameFileError(
            ff.path, f"cannot calibrate: {type(exc).__name__}: {one_line(exc)}"
        ) from None
