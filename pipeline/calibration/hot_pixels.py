"""Hot pixels and hot columns of a run: the fixed-pattern defects of each amplifier's pixel grid.

Owns the rule that finds them (per-pixel and per-column medians over the exposures, outliers
against the expected spread of a median of noise) and the bounded float16 stack of frames it
works on. Amplifiers of one exposure read different pixels through different electronics, so
each amplifier gets its own mask, found across exposures only: four amplifiers of one exposure
are not four looks at one pixel grid, and a single exposure yields hot columns alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from pipeline.config import CalibrateConfig, ConfigError

MAD_TO_SIGMA = 1.4826  # Gaussian sigma = 1.4826 x median absolute deviation
# The median of N Gaussian values has std ~ sqrt(pi/2) sigma / sqrt(N).
MEDIAN_SPREAD = math.sqrt(math.pi / 2)
# With fewer frames the per-pixel median cannot tell a hot pixel from a track that crossed it.
MIN_FRAMES_FOR_PIXELS = 3
STACK_LIMIT = 6.0e4  # frames are kept as float16 (max 65504); clipping there leaves medians intact
BLOCK_BYTES = 64 * 2**20  # float32 working block of the median computations
HOT_STACK_BYTES = 4 * 2**30  # the float16 frames kept for the hot-pixel medians


class HotStack:
    """The frames kept for the hot-pixel medians, per amplifier: those of at most `limit`
    exposures, evenly spread over the run (the first `limit` if its length is unknown), so
    memory does not grow with the run. Frame i is amplifier i % amplifiers of exposure
    i // amplifiers."""

    def __init__(self, n_frames: int | None, amplifiers: int, limit: int) -> None:
        self.amplifiers = amplifiers
        self.kept = exposure_sample(None if n_frames is None else n_frames // amplifiers, limit)
        self.stacks: list[list[np.ndarray]] = [[] for _ in range(amplifiers)]

    def add(self, index: int, residual: np.ndarray) -> None:
        exposure, amplifier = divmod(index, self.amplifiers)
        if exposure not in self.kept:
            return
        if not any(self.stacks):
            _check_stack_memory(len(self.kept) * self.amplifiers, residual.shape)
        self.stacks[amplifier].append(_to_stack(residual))

    def masks(self, noise: list[float], cfg: CalibrateConfig) -> list[np.ndarray]:
        """One (H, W) mask per amplifier, with that amplifier's noise (the frames' unit)."""
        return [_hot_mask(s, n, cfg) for s, n in zip(self.stacks, noise, strict=True)]


def exposure_sample(n_exposures: int | None, limit: int) -> set[int]:
    """Indices of at most `limit` exposures evenly spread over `n_exposures` (None: unknown)."""
    if n_exposures is None:
        return set(range(limit))
    n = n_exposures
    return {int(i) for i in np.linspace(0, n - 1, min(limit, n)).round()} if n else set()


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


def _check_stack_memory(n_frames: int, shape: tuple[int, ...]) -> None:
    need = n_frames * math.prod(shape) * 2  # float16
    if need > HOT_STACK_BYTES:
        raise ConfigError(
            f"calibrate.hot_mask_frames: {n_frames} frames of {shape[0]}x{shape[1]} need "
            f"{need / 2**30:.1f} GiB for the hot-pixel medians (limit {HOT_STACK_BYTES / 2**30:g} "
            "GiB); lower calibrate.hot_mask_frames"
        )
