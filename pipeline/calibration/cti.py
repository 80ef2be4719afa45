"""Charge-transfer inefficiency measured on a file's own deposits, undone, and the charge it moved
(the trails the truth calls artefact).

Diffusion spreads a deposit's charge alike on both sides; CTI defers part of it into the pixels
read after it (pipeline/core/transfer.py). Along an axis, a run of pixels above `seed_sigma` x
noise has the same charge, on average, in the `lags` pixels past its end as in those before its
start; CTI puts more past the end (the idea of the extended-pixel-edge test, Janesick, Scientific
Charge-Coupled Devices, SPIE 2001, ch. 5, on the file's particles instead of a flat field). The
share measured on an axis is the one whose `restored` charge makes the median, over every run
of the file's sampled frames, of that excess over the run's charge zero. A median: a charge-
weighted mean was ruled by the brightest deposits, whose blooming and bleed are not symmetric,
and measured -0.14 for the artefact-rich suite detector's parallel 0.005 (the median: 0.0043 +-
0.0011). The runs are found again on the charge restored with the last estimate (`ITERATIONS`
times): on the charge as read, trails lengthen a run's trailing end and bias the share low. Its
error is the median's (sqrt(pi/2) x the runs' robust spread / sqrt(runs)), through the slope. A
share is undone (`CTI.counts`) where it is `significance` errors from zero and at least
`min_share`: a clean detector's frames are left exactly as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

from pipeline.calibration.frames import calibrated
from pipeline.calibration.hot_pixels import MAD_TO_SIGMA, MEDIAN_SPREAD
from pipeline.config.readout import CtiCorrectionConfig
from pipeline.config.stages import FrameSections
from pipeline.core.transfer import restored

AXES = {"parallel": 0, "serial": 1}  # along columns (toward row 0), along rows (toward column 0)
SEARCH = 0.45  # |share| searched: the inverse is stable below 1/2
ITERATIONS = 3  # runs found again on the restored charge (the estimate settles by the third)
MAX_PIXELS = 2**24  # charge kept for the measurement: ~16 frames of 1024^2, 64 MiB as float32


@dataclass(frozen=True)
class Transfer:
    """The inefficiency measured along one axis: signed share (negative: trails toward lower
    indices, a readout from the other end), its standard error, and the runs it rests on."""

    share: float = 0.0
    error: float = float("inf")
    runs: int = 0


def _counts(transfer: Transfer, cfg: CtiCorrectionConfig) -> bool:
    """Whether a measured share is undone: enough runs, large enough, significant."""
    return (
        cfg.enabled
        and transfer.runs >= cfg.min_runs
        and abs(transfer.share) >= cfg.min_share
        and abs(transfer.share) >= cfg.significance * transfer.error
    )


@dataclass(frozen=True)
class CTI:
    """The file's CTI along both axes and the settings that judge it."""

    parallel: Transfer
    serial: Transfer
    cfg: CtiCorrectionConfig

    def counts(self, transfer: Transfer) -> bool:
        return _counts(transfer, self.cfg)

    @property
    def corrects(self) -> bool:
        return self.counts(self.parallel) or self.counts(self.serial)

    def describe(self) -> str:
        def one(name: str, t: Transfer) -> str:
            verdict = "undone" if self.counts(t) else "left"
            return f"{name} {t.share:.4f} +- {t.error:.4f} ({t.runs} runs, {verdict})"

        return "CTI measured: " + ", ".join(
            [one("serial", self.serial), one("parallel", self.parallel)]
        )

    def attrs(self) -> dict[str, str]:
        """The map file's record of it."""
        return {
            f"cti_{name}": f"{t.share:.5f} +- {t.error:.5f} ({t.runs} runs)"
            + (" undone" if self.counts(t) else "")
            for name, t in (("serial", self.serial), ("parallel", self.parallel))
        }


def _runs(lines: np.ndarray, floor_e: float, lags: int) -> tuple[np.ndarray, ...]:
    """(line, start, end) of each run of pixels >= `floor_e` along the rows of `lines` with
    `lags` pixels on both sides inside the line and below the floor (an edge, not a gap between
    two deposits or a masked pixel inside one)."""
    above = np.pad(lines >= floor_e, ((0, 0), (1, 1))).astype(np.int8)
    step = np.diff(above, axis=1)
    line, start = np.nonzero(step == 1)
    _, end = np.nonzero(step == -1)  # same order: row-major, one end per start
    inside = (start >= lags) & (end + lags <= lines.shape[1])
    line, start, end = line[inside], start[inside], end[inside]
    count = np.cumsum(above[:, 1:-1], axis=1, dtype=np.int64)
    count = np.pad(count, ((0, 0), (1, 0)))  # count[i, j]: pixels above before column j
    before = count[line, start] - count[line, start - lags]
    after = count[line, end + lags] - count[line, end]
    alone = (before == 0) & (after == 0)
    return line[alone], start[alone], end[alone]


def _ratios(line: np.ndarray, starts: np.ndarray, ends: np.ndarray, lags: int) -> np.ndarray:
    """Each run's (after - before) over its charge, for the runs [start, end) of `line`."""
    total = np.concatenate([[0.0], np.cumsum(line)])
    charge = total[ends] - total[starts]
    excess = (total[ends + lags] - total[ends]) - (total[starts] - total[starts - lags])
    return excess / np.maximum(charge, 1e-9)


def _segments(lines: np.ndarray, runs: tuple[np.ndarray, ...], lags: int, history: int):
    """The runs of `lines` cut out with `history` pixels before them (what a trail there can
    come from: the release falls to exp(-10) within it) and `lags` after, one after another in
    one line, `history` zeros apart (no trail crosses from one to the next); and where each run
    starts and ends in it. Restoring this line is restoring the runs' neighbourhoods, at a
    fraction of the frames' size."""
    line, start, end = runs
    first = np.maximum(start - lags - history, 0)
    lengths = end + lags - first
    offsets = history + np.concatenate([[0], np.cumsum(lengths + history)[:-1]])
    which = np.repeat(np.arange(len(line)), lengths)
    within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out = np.zeros(int(offsets[-1] + lengths[-1] + history) if len(line) else history)
    out[offsets[which] + within] = lines[line[which], first[which] + within]
    return out, offsets + (start - first), offsets + (end - first)


class _Axis:
    """The sampled frames' lines along one axis (rows of each array), and their noise floors."""

    def __init__(self, lines: list[np.ndarray], floors: list[float], cfg: CtiCorrectionConfig):
        self.lines, self.floors, self.cfg = lines, floors, cfg
        self.history = int(np.ceil(10 * cfg.trail_px))

    def segments(self, share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The runs of every frame, found on the charge restored with `share`, as one line."""
        trail, lags, h = self.cfg.trail_px, self.cfg.lags, self.history
        parts = [
            _segments(x, _runs(restored(x, share, trail, 1) if share else x, floor, lags), lags, h)
            for x, floor in zip(self.lines, self.floors, strict=True)
        ]
        shift = np.concatenate([[0], np.cumsum([len(p[0]) for p in parts])[:-1]])
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] + o for p, o in zip(parts, shift, strict=True)]),
            np.concatenate([p[2] + o for p, o in zip(parts, shift, strict=True)]),
        )

    def measure(self) -> Transfer:
        share, trail, lags = 0.0, self.cfg.trail_px, self.cfg.lags
        for _ in range(ITERATIONS):
            line, starts, ends = self.segments(share)
            if len(starts) < self.cfg.min_runs:
                return Transfer(runs=len(starts))

            def ratios(s: float, cut: tuple[np.ndarray, ...] = (line, starts, ends)) -> np.ndarray:
                return _ratios(restored(cut[0], s, trail, 0), cut[1], cut[2], lags)

            def asymmetry(s: float, ratios: Callable[[float], np.ndarray] = ratios) -> float:
                return float(np.median(ratios(s)))

            if not asymmetry(-SEARCH) > 0 > asymmetry(SEARCH):
                return Transfer(runs=len(starts))  # no share makes the runs symmetric
            share = float(brentq(asymmetry, -SEARCH, SEARCH, xtol=1e-6))
        each = ratios(share)
        spread = MEDIAN_SPREAD * MAD_TO_SIGMA * float(np.median(np.abs(each - np.median(each))))
        step = -1e-3 if share > 0 else 1e-3
        slope = (asymmetry(share + step) - asymmetry(share)) / step
        error = spread / np.sqrt(len(each)) / abs(slope) if slope else float("inf")
        return Transfer(share, float(error), len(starts))


def measure(charges: Iterable[tuple[np.ndarray, float]], cfg: CtiCorrectionConfig) -> CTI:
    """The CTI of frames given as (charge in e-, noise in e-), pooled, up to `MAX_PIXELS`: serial
    first, then parallel on the charge with the serial trails undone (the readout's reverse)."""
    kept: list[np.ndarray] = []
    floors: list[float] = []
    for charge, noise_e in charges:
        if kept and sum(k.size for k in kept) + charge.size > MAX_PIXELS:
            break
        kept.append(np.asarray(charge, dtype=np.float64))
        floors.append(cfg.seed_sigma * max(noise_e, 1e-6))
    serial = _Axis(kept, floors, cfg).measure()
    if _counts(serial, cfg):  # the parallel trails as they were before the serial transfer
        kept = [restored(k, serial.share, cfg.trail_px, axis=1) for k in kept]
    parallel = _Axis([k.T for k in kept], floors, cfg).measure()
    return CTI(parallel, serial, cfg)


def measure_file(path: str | Path, config: FrameSections, cfg: CtiCorrectionConfig) -> CTI:
    """The CTI of the file `path`, on its frames evenly spread, calibrated with `config`."""
    with calibrated(path, config) as frames:
        frames.calibrate()
        total, height, width = frames.file.shape
        wanted = max(1, min(total, MAX_PIXELS // max(height * width, 1)))
        chosen = set(np.linspace(0, total - 1, wanted).round().astype(int))
        return measure(
            (
                (charge, frames.noise_e(i))
                for i, charge in enumerate(frames.charges())
                if i in chosen
            ),
            cfg,
        )


def correct(charge: np.ndarray, cti: CTI) -> np.ndarray:
    """The charge before transfer: serial trails undone, then parallel (the reverse of the
    readout's order), each where its share counts."""
    out = charge
    if cti.counts(cti.serial):
        out = restored(out, cti.serial.share, cti.cfg.trail_px, axis=1)
    if cti.counts(cti.parallel):
        out = restored(out, cti.parallel.share, cti.cfg.trail_px, axis=0)
    return out


def trails(charge: np.ndarray, before: np.ndarray, threshold_e: float) -> np.ndarray:
    """(H, W) bool: pixels whose charge is mostly what transfer moved into them, at least
    `threshold_e` of it: the simulator's truth convention for artefacts (pipeline/simulation/
    artefacts.py `relabel`) applied to the charge as read and as `restored`."""
    moved = np.clip(charge - before, 0.0, None)
    return (moved >= threshold_e) & (moved > before)
