"""Sparse inference: where in a frame the network has to run (used by the `infer` stage).

CCD frames are more than 99 % empty: readout noise, dark counts and a few deposits. This module
owns the plan that restricts the network to the parts with charge and the assembly of its
answers into a whole-frame probability map:

- seeds: pixels, or 3 x 3 sums, above `seed_sigma` x their noise and above `seed_min_charge_e`
  (the floor keeps the single-electron dark counts of a skipper CCD from seeding everywhere);
- owned region: the `block_px` blocks holding a seed, grown by one block, so every pixel within
  `block_px` of a seed (the diffused edge of a deposit, below the seed threshold) is labelled by
  the network;
- crops: the owned blocks grouped where their context windows would overlap, each group's
  bounding box split (k-d, along its longer side) while that lowers the pixels the network
  sees; the network sees each box grown by `margin_px` of real frame on every side (the
  context of the deposits at its edge), `track_margin_px` for groups longer than four blocks
  (a muon is told from an electron by its straightness over tens of pixels), rounded up to the
  network's multiple;
- everything else is background with probability 1, without the network.

The plan is a pure function of the frame; the labels it gives equal dense inference on the
interior of every deposit when the margin covers the network's effective receptive field
(tests/test_sparse.py measures it on the shipped and on pointwise models). Where the crops
would cover more than `max_fraction` of the frame (a busy frame), the caller runs dense.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pipeline.config.reconstruction import SparseConfig
from pipeline.core.components import EIGHT_CONNECTED

TRACK_BLOCKS = 4  # a group of owned blocks longer than this is a track: it gets the track margin
Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (half-open), pixels


@dataclass(frozen=True)
class Crop:
    """`owned`: the pixels this crop labels; `context`: the pixels the network sees."""

    owned: Box
    context: Box

    @property
    def context_pixels(self) -> int:
        y0, y1, x0, x1 = self.context
        return (y1 - y0) * (x1 - x0)


def seed_mask(charge_e: np.ndarray, noise_e: float, cfg: SparseConfig) -> np.ndarray:
    """Pixels bright enough to start a deposit: the pixel, or the 3 x 3 sum around it (noise
    3 x the pixel's), above `seed_sigma` standard deviations and above the charge floor. The
    sum finds faint deposits spread by diffusion, none of whose pixels stands out alone."""
    charge = np.asarray(charge_e, dtype=np.float32)
    window_sum = box_sum3(charge)
    pixel = charge > max(cfg.seed_sigma * noise_e, cfg.seed_min_charge_e)
    return pixel | (window_sum > max(cfg.seed_sigma * 3 * noise_e, cfg.seed_min_charge_e))


def box_sum3(image: np.ndarray) -> np.ndarray:
    """The sum over each pixel's 3 x 3 neighbourhood (zeros beyond the edges); 8x faster than
    ndimage.uniform_filter for this one size."""
    padded = np.pad(image, 1)
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    return rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]


def owned_blocks(seeds: np.ndarray, block: int) -> np.ndarray:
    """(rows, cols) of `block`-pixel blocks: those holding a seed, grown by one block."""
    h, w = seeds.shape
    bh, bw = math.ceil(h / block), math.ceil(w / block)
    padded = np.zeros((bh * block, bw * block), dtype=bool)
    padded[:h, :w] = seeds
    occupied = np.asarray(padded.reshape(bh, block, bw, block).any(axis=(1, 3)))
    return ndimage.binary_dilation(occupied, EIGHT_CONNECTED) if occupied.any() else occupied


def _context_cost(rows: np.ndarray, cols: np.ndarray, block: int, margin: int) -> int:
    """Pixels the network sees for the bounding box of these blocks."""
    height = (rows.max() - rows.min() + 1) * block + 2 * margin
    width = (cols.max() - cols.min() + 1) * block + 2 * margin
    return int(height * width)


def _split(rows: np.ndarray, cols: np.ndarray, block: int, margin: int) -> list[np.ndarray]:
    """Index sets of the blocks, split in two along the bounding box's longer side (recursively)
    wherever the two halves' context windows hold fewer pixels than the whole one's."""
    span_r, span_c = rows.max() - rows.min(), cols.max() - cols.min()
    if span_r == 0 and span_c == 0:
        return [np.arange(rows.size)]
    axis = rows if span_r >= span_c else cols
    middle = (int(axis.min()) + int(axis.max()) + 1) // 2
    low, high = np.flatnonzero(axis < middle), np.flatnonzero(axis >= middle)
    whole = _context_cost(rows, cols, block, margin)
    halves = sum(_context_cost(rows[i], cols[i], block, margin) for i in (low, high))
    if halves >= whole:
        return [np.arange(rows.size)]
    return [
        part[sub] for part in (low, high) for sub in _split(rows[part], cols[part], block, margin)
    ]


def _grow(start: int, stop: int, margin: int, length: int, multiple: int) -> tuple[int, int]:
    """[start, stop) grown by `margin` each side, then (centred) to a multiple of `multiple`,
    within [0, length)."""
    start, stop = max(0, start - margin), min(length, stop + margin)
    size = min(length, math.ceil((stop - start) / multiple) * multiple)
    start = max(0, min(start - (size - (stop - start)) // 2, length - size))
    return start, start + size


def plan_crops(seeds: np.ndarray, cfg: SparseConfig, multiple: int = 32) -> list[Crop]:
    """The crops that label every owned pixel of a frame with these seeds; context edges are
    multiples of `multiple` (the network's input sizes, 2^depth) where the frame allows."""
    block = cfg.block_px
    owned = owned_blocks(seeds, block)
    if not owned.any():
        return []
    reach = math.ceil(2 * cfg.margin_px / block)  # blocks whose contexts would overlap share a crop
    grouping = ndimage.binary_dilation(owned, EIGHT_CONNECTED, iterations=reach) if reach else owned
    groups, _ = ndimage.label(grouping, EIGHT_CONNECTED)
    rows, cols = np.nonzero(owned)
    group_of = groups[rows, cols]
    order = np.argsort(group_of, kind="stable")
    bounds = np.flatnonzero(np.diff(group_of[order])) + 1
    h, w = seeds.shape
    crops = []
    for members in np.split(order, bounds):
        r, c = rows[members], cols[members]
        extended = max(np.ptp(r), np.ptp(c)) + 1 > TRACK_BLOCKS
        margin = cfg.track_margin_px if extended else cfg.margin_px
        for part in _split(r, c, block, margin):
            y0, y1 = int(r[part].min()) * block, min(h, (int(r[part].max()) + 1) * block)
            x0, x1 = int(c[part].min()) * block, min(w, (int(c[part].max()) + 1) * block)
            context = (*_grow(y0, y1, margin, h, multiple), *_grow(x0, x1, margin, w, multiple))
            crops.append(Crop((y0, y1, x0, x1), context))
    return crops


def covered_fraction(crops: list[Crop], shape: tuple[int, int]) -> float:
    """Pixels the network would see, as a fraction of the frame (overlaps count twice)."""
    return sum(crop.context_pixels for crop in crops) / (shape[0] * shape[1])


def assemble(
    predict: Callable[[list[np.ndarray]], np.ndarray],
    charge_e: np.ndarray,
    crops: list[Crop],
    n_classes: int,
    batch_pixels: int,
) -> np.ndarray:
    """(C, H, W) float32 probabilities: `predict` (same-shape charge crops -> (B, C, h, w)) on
    the crops' contexts, batched by shape up to `batch_pixels` per call, kept on each crop's
    owned pixels; background with probability 1 elsewhere."""
    probs = np.zeros((n_classes, *charge_e.shape), dtype=np.float32)
    probs[0] = 1.0
    by_shape: dict[tuple[int, int], list[Crop]] = {}
    for crop in crops:
        cy0, cy1, cx0, cx1 = crop.context
        by_shape.setdefault((cy1 - cy0, cx1 - cx0), []).append(crop)
    for (height, width), group in by_shape.items():
        step = max(1, batch_pixels // (height * width))
        for first in range(0, len(group), step):
            batch = group[first : first + step]
            answers = predict([charge_e[_slices(crop.context)] for crop in batch])
            for crop, answer in zip(batch, answers, strict=True):
                y0, y1, x0, x1 = crop.owned
                cy0, _, cx0, _ = crop.context
                probs[:, y0:y1, x0:x1] = answer[:, y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0]
    return probs


def _slices(box: Box) -> tuple[slice, slice]:
    return slice(box[0], box[1]), slice(box[2], box[3])
