"""Pedestal jumps and trap columns: a row's baseline stepping to a new level part-way along it
and holding it to the row's end (the simulator's `baseline` jumps; SENSEI, PRL 125, 171802
(2020) and DAMIC-M, PRL 130, 171003 (2023) remove rows with baseline shifts). Found in each
frame, undone before the network, and the pixels a step raised labelled artefact where it
outweighs their charge.

A step at column c: the median of the `window_px` pixels after c minus that of those before it,
`min_sigma` of its noise (each median's is sqrt(pi/2) sigma / sqrt(n)) from zero, at the column of
the row's largest such difference; it must hold (the medians of everything after and before c
differ by it, within a quarter of it or 3 errors) and both sides must be flat (each half of a
side within the same bound: glow falls off smoothly and is not a step); and the rows beside it
must not step there by half as much (a baseline jumps while one row is read; a deposit at the
frame's edge, glow or a bleed spans rows). Up to `max_per_row` steps a row, the largest first.
Near a row's ends a side shorter than the window is taken whole, down to `MIN_SIDE_PX`. A bad
column starting at a trap (bright from the trap's row to the column's far end, away from the
readout) is the same step along a column, bright only, scattering no more than its shot noise
allows (a steep cosmic ray reaching the frame's edge does): `trap_columns`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.calibration.hot_pixels import MAD_TO_SIGMA, MEDIAN_SPREAD
from pipeline.config.readout import JumpsConfig

MIN_SIDE_PX = 8  # the shortest side of a step near a row's end that is looked at


@dataclass(frozen=True)
class Jump:
    row: int
    column: int
    size_e: float  # the level after the column minus the level before it


def _median_error(noise_e: float, n: int) -> float:
    return MEDIAN_SPREAD * noise_e / np.sqrt(max(n, 1))


def _agrees(a: float, b: float, step: float, noise_e: float, n: int) -> bool:
    return abs(a - b) <= max(0.25 * abs(step), 3 * np.sqrt(2) * _median_error(noise_e, n))


def _flat(side: np.ndarray, step: float, noise_e: float) -> bool:
    half = len(side) // 2
    if half < 4:
        return True
    return _agrees(np.median(side[:half]), np.median(side[half:]), step, noise_e, half)


def _filled(rows: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """`rows` with each masked pixel given its nearest unmasked neighbour's value before it, and
    a masked run at either end of a row the median of the `MIN_SIDE_PX` unmasked pixels nearest
    that end (an edge the calibration masked holds no step of its own)."""
    columns = np.arange(rows.shape[1])
    last = np.maximum.accumulate(np.where(masked, 0, columns), axis=1)
    out = np.take_along_axis(rows, last, axis=1)
    _fill_start(rows, masked, out)
    _fill_start(rows[:, ::-1], masked[:, ::-1], out[:, ::-1])  # a view: the rows' ends
    return out


def _fill_start(rows: np.ndarray, masked: np.ndarray, out: np.ndarray) -> None:
    """In `out`: each row's leading masked run, the median of its first unmasked pixels."""
    order = np.argsort(masked, axis=1, kind="stable")[:, :MIN_SIDE_PX]  # unmasked first
    level = np.median(np.take_along_axis(rows, order, axis=1), axis=1)
    leading = np.cumsum(~masked, axis=1) == 0
    out[leading] = np.repeat(level, leading.sum(axis=1))


def _scores(rows: np.ndarray, noise_e: float, cfg: JumpsConfig) -> np.ndarray:
    """(n, W) the step at columns of each row over its error: at every boundary of blocks of
    half a window, the mean median of the two blocks after minus that of the two before (a
    window's median has the same noise, at a tenth of a rolling median's cost; `_refined` finds
    the column); near a row's ends, where a side is shorter than the window, the whole short side
    (down to `MIN_SIDE_PX`) at every column; 0 where no step is measured."""
    n, width = rows.shape
    w, b = cfg.window_px, cfg.window_px // 2
    scores = np.zeros((n, width))
    count = width // b
    blocks = np.median(rows[:, : count * b].reshape(n, count, b), axis=2)
    k = np.arange(2, count - 1)
    step = (blocks[:, k] + blocks[:, k + 1] - blocks[:, k - 2] - blocks[:, k - 1]) / 2
    scores[:, k * b] = step / _median_error(noise_e, b)
    for c in range(MIN_SIDE_PX, min(w, width - w)):  # a short side before the step ...
        short = np.hypot(_median_error(noise_e, c), _median_error(noise_e, w))
        scores[:, c] = (np.median(rows[:, c : c + w], 1) - np.median(rows[:, :c], 1)) / short
        end = width - c  # ... or after it
        if end > w:
            after = np.median(rows[:, end:], 1) - np.median(rows[:, end - w : end], 1)
            scores[:, end] = after / short
    return scores


def _refined(row: np.ndarray, column: int, size: float, reach: int) -> int:
    """The column within `reach` of `column` that best splits the row into the two levels: the
    fewest pixels before it nearer the level after, and after it nearer the level before."""
    lo, hi = max(column - reach, 1), min(column + reach, len(row) - 1)
    level = np.median(row[:column]) + size / 2
    upper = (row > level) if size > 0 else (row < level)
    below = np.concatenate([[0], np.cumsum(upper)])  # below[k]: raised-looking pixels < k
    splits = np.arange(lo, hi + 1)
    wrong = (below[splits] - below[lo]) + ((hi + 1 - splits) - (below[hi + 1] - below[splits]))
    return int(splits[int(np.argmin(wrong))])


def _windowed(row: np.ndarray, column: int, width: int) -> float:
    """The median of up to `width` pixels from `column` on minus that of those before it."""
    return float(
        np.median(row[column : column + width]) - np.median(row[max(column - width, 0) : column])
    )


def _alone(charge: np.ndarray, row: int, column: int, size: float, width: int) -> bool:
    """Whether the rows beside `row` step by under half as much at `column`: a baseline jump
    happens while one row is read; a deposit at a frame's edge, glow or a bleed spans rows."""
    beside = [r for r in (row - 1, row + 1) if 0 <= r < charge.shape[0]]
    return all(abs(_windowed(charge[r], column, width)) < 0.5 * abs(size) for r in beside)


def _uniform(side: np.ndarray, level: float, noise_e: float) -> bool:
    """Whether `side` scatters no more than shot and read noise about `level` allow (robust
    sigma within 3 times): a trap's column is; a steep track reaching the frame's edge is not."""
    spread = MAD_TO_SIGMA * float(np.median(np.abs(side - np.median(side))))
    return spread <= 3 * np.sqrt(noise_e**2 + max(level, 0.0))


def _holds(row: np.ndarray, column: int, local: float, noise_e: float) -> float | None:
    """The step's size where it holds to the row's ends and both sides are flat, else None."""
    before, after = row[:column], row[column:]
    size = float(np.median(after) - np.median(before))
    if not _agrees(size, local, local, noise_e, min(len(before), len(after))):
        return None
    if not (_flat(before, size, noise_e) and _flat(after, size, noise_e)):
        return None
    return size


def find(charge: np.ndarray, noise_e: float, cfg: JumpsConfig) -> tuple[list[Jump], np.ndarray]:
    """The frame's jumps, and its charge with them undone: each row whose baseline stepped set
    to its level before the step (the calibration's row median counted the step), the masked
    pixels left at 0."""
    return _steps(charge, noise_e, cfg, baseline=True)


def trap_columns(
    charge: np.ndarray, noise_e: float, cfg: JumpsConfig
) -> tuple[list[Jump], np.ndarray]:
    """Bad columns starting at a trap: the same steps along the columns (`Jump.row` is the
    column, `Jump.column` the trap's row), bright ones only, their charge taken out."""
    found, restored = _steps(charge.T, noise_e, cfg, baseline=False)
    return found, restored.T


def _steps(
    charge: np.ndarray, noise_e: float, cfg: JumpsConfig, baseline: bool
) -> tuple[list[Jump], np.ndarray]:
    """Steps along the rows of `charge` (see the module docstring): of the baseline (either
    sign; the row re-levelled) or of charge (bright only)."""
    restored = np.array(charge, dtype=np.float64, copy=True)
    masked = charge == 0  # what the calibration masked reads 0 and carries no baseline
    jumps: list[Jump] = []
    if charge.shape[1] < 3 * cfg.window_px:
        return jumps, restored
    candidates = np.arange(charge.shape[0])
    for _ in range(cfg.max_per_row):
        whole = _filled(restored, masked)
        filled = whole[candidates]
        scores = _scores(filled, noise_e, cfg)
        if not baseline:
            scores = np.clip(scores, 0, None)
        best = np.argmax(np.abs(scores), axis=1)
        strong = np.abs(scores[np.arange(len(candidates)), best]) >= cfg.min_sigma
        found = []
        for i in np.nonzero(strong)[0]:
            r, row = candidates[i], filled[i]
            coarse = _windowed(row, int(best[i]), cfg.window_px)
            column = _refined(row, int(best[i]), coarse, cfg.window_px)
            local = _windowed(row, column, cfg.window_px)
            shortest = min(column, len(row) - column, cfg.window_px)
            if abs(local) < cfg.min_sigma * np.sqrt(2) * _median_error(noise_e, shortest):
                continue
            size = _holds(row, column, local, noise_e)
            if size is None or not _alone(whole, r, column, size, cfg.window_px):
                continue
            if not baseline and not _uniform(row[column:], size, noise_e):
                continue
            if baseline:
                restored[r] -= np.median(row[:column])  # the level before: the row's baseline
            restored[r, column:] -= size
            restored[r, masked[r]] = 0.0
            jumps.append(Jump(int(r), column, size))
            found.append(r)
        if not found:
            break
        candidates = np.array(found)
    return jumps, restored


def raised(
    jumps: list[Jump], restored: np.ndarray, threshold_e: float, along_columns: bool = False
) -> np.ndarray:
    """(H, W) bool: the pixels a step raised by at least `threshold_e` and by more than their own
    charge (the simulator's truth convention for artefacts); `along_columns` for
    `trap_columns`' steps."""
    lift = np.zeros_like(restored.T if along_columns else restored)
    for jump in jumps:
        lift[jump.row, jump.column :] += jump.size_e
    lift = lift.T if along_columns else lift
    return (lift >= threshold_e) & (lift > restored)
