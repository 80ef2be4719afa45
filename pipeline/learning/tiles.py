"""Tiles of frame files for training (read by `train` through pipeline/learning/data.py).

Owns turning frame files into network inputs: a `FrameSource` that reads frames lazily (dask, one
frame at a time), calibrates them to electrons and masks hot pixels, with a small per-process
cache; the tile grid (sizes that are not a multiple of 32 are padded, never rejected; padding is
labelled `IGNORE` so losses and metrics skip it); the train/validation split by frame, never by
tile; the `TileDataset`; and a seeded sampler that oversamples tiles holding rare classes and
shards the draw across DDP ranks.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from pipeline.calibration import calibrate, conditioning
from pipeline.calibration.frames import CalibratedFile, calibrated
from pipeline.config import Config
from pipeline.config.stages import TrainSettings
from pipeline.core.geometry import IGNORE, padded, tile_starts
from pipeline.io import FrameFileError, open_frames
from pipeline.learning import augment


@dataclass(frozen=True)
class TileRef:
    file: int
    frame: int
    y: int
    x: int


def cut_tile(image: np.ndarray, y: int, x: int, size: int, fill: float) -> np.ndarray:
    """The (size, size) window at (y, x), padded with `fill` up to a multiple of 32."""
    out = np.full((padded(size), padded(size)), fill, dtype=image.dtype)
    piece = image[y : y + size, x : x + size]
    out[: piece.shape[0], : piece.shape[1]] = piece
    return out


def split_frames(n_frames: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of training and validation frames: the split is by frame, never by tile."""
    order = np.random.default_rng(seed).permutation(n_frames)
    n_val = round(n_frames * val_fraction)
    if val_fraction > 0 and n_frames > 1:
        n_val = min(max(n_val, 1), n_frames - 1)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


class FrameSource:
    """Calibrated (electrons, hot pixels masked) frames and labels of a list of frame files."""

    def __init__(self, paths: Sequence[str | Path], config: TrainSettings | Config) -> None:
        self.paths = [Path(p) for p in paths]
        self.config = config
        self.calibrations: list[calibrate.RunCalibration] = []
        self.shapes: list[tuple[int, int, int]] = []
        for path in self.paths:
            with calibrated(path, config, config.classes) as frames:
                if frames.file.labels is None:
                    raise FrameFileError(path, "training needs labels, and this file has none")
                self.shapes.append(frames.file.shape)
                self.calibrations.append(frames.run)
        self._files: dict[int, CalibratedFile] = {}
        self._pid = os.getpid()
        self._cache: OrderedDict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_files"], state["_cache"] = {}, OrderedDict()  # handles stay in their process
        return state

    def _file(self, index: int) -> CalibratedFile:
        if self._pid != os.getpid():  # forked into a data-loader worker: reopen
            self._files, self._cache, self._pid = {}, OrderedDict(), os.getpid()
        if index not in self._files:
            ff = open_frames(
                self.paths[index],
                self.config.io.model_copy(update={"check_finite": False}),
                self.config.classes,
            )
            self._files[index] = CalibratedFile(ff, self.config, self.calibrations[index])
        return self._files[index]

    def frame(self, file: int, frame: int) -> tuple[np.ndarray, np.ndarray, float]:
        """(charge in electrons, labels, measured noise) of one frame."""
        key = (file, frame)
        if key not in self._cache:
            frames = self._file(file)
            charge = frames.charge(frame)
            labels = frames.file.read("labels", frame).astype(np.uint8)
            self._cache[key] = (charge, labels)
            while len(self._cache) > self.config.tiles.cache_frames:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        charge, labels = self._cache[key]
        return charge, labels, self.calibrations[file].frames[frame].noise_e

    def grid(self, frames: Sequence[tuple[int, int]]) -> list[TileRef]:
        """Tiles covering each (file, frame) with the configured size and overlap."""
        size, overlap = self.config.tiles.size, self.config.tiles.overlap
        tiles = []
        for file, frame in frames:
            _, height, width = self.shapes[file]
            for y in tile_starts(height, size, overlap):
                tiles += [TileRef(file, frame, y, x) for x in tile_starts(width, size, overlap)]
        return tiles

    def rare_weights(self, tiles: Sequence[TileRef]) -> torch.Tensor:
        """Sampling weight per tile: `rare_oversample` where a rare class is present, else 1."""
        rare = [self.config.classes.index(c) for c in self.config.tiles.rare_classes]
        size = self.config.tiles.size
        weights = torch.ones(len(tiles), dtype=torch.float64)
        for i, t in enumerate(tiles):
            labels = self.frame(t.file, t.frame)[1][t.y : t.y + size, t.x : t.x + size]
            if np.isin(labels, rare).any():
                weights[i] = self.config.tiles.rare_oversample
        return weights


def network_pair(
    config: TrainSettings | Config,
    transform: Any,
    charge: np.ndarray,
    labels: np.ndarray,
    noise_e: float,
    seed: int,
    context: Mapping[str, float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, S, S) float32 network input and (S, S) int64 target of a calibrated tile: augmented by
    `transform` (if any, seeded; the noise is then measured again, and the detector's
    descriptors jittered by `augment.condition_jitter`), then normalised. `context`: the
    descriptors of the detector the tile comes from (default: the configured detector's)."""
    if context is None:
        context = conditioning.from_config(config.detector, config.physics)
    if transform is not None:
        charge, labels = augment.augment(transform, charge, labels, seed)
        noise_e = calibrate.measure_noise_e(charge, config.calibrate.noise_clip_sigma)
        rng = np.random.default_rng([seed, 0xC0DE])
        context = conditioning.jittered(context, config.augment.condition_jitter, rng)
    x_in = calibrate.normalise(charge, noise_e, config.normalise, context)
    return torch.from_numpy(np.ascontiguousarray(x_in)), torch.from_numpy(labels.astype(np.int64))


class TileDataset(Dataset):
    """Network inputs (C, S, S) float32 and targets (S, S) int64 for a list of tiles.

    Items are addressed as (tile index, draw number): the draw number seeds the augmentation and
    the position jitter, so an epoch's batches are the same whatever the number of workers."""

    def __init__(
        self,
        source: FrameSource,
        tiles: Sequence[TileRef],
        config: TrainSettings | Config,
        train: bool,
        seed: int,
    ) -> None:
        self.source, self.tiles, self.config = source, list(tiles), config
        self.train, self.seed = train, seed
        self.transform = augment.build_augmentation(config.augment) if train else None

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, draw = item if isinstance(item, tuple) else (item, item)
        tile = self.tiles[index]
        charge, labels, noise = self.source.frame(tile.file, tile.frame)
        y, x = tile.y, tile.x
        rng = np.random.default_rng([self.seed, draw])
        if self.train and self.config.tiles.position_jitter:
            y, x = self._jitter(y, x, charge.shape, rng)
        size = self.config.tiles.size
        charge_tile = cut_tile(charge, y, x, size, 0.0)
        label_tile = cut_tile(labels, y, x, size, IGNORE)
        seed = int(rng.integers(2**31)) if self.transform is not None else 0
        return network_pair(self.config, self.transform, charge_tile, label_tile, noise, seed)

    def _jitter(self, y: int, x: int, shape: tuple[int, ...], rng) -> tuple[int, int]:
        size = self.config.tiles.size
        dy, dx = rng.integers(-(size // 2), size // 2 + 1, 2)
        y = int(np.clip(y + dy, 0, max(shape[0] - size, 0)))
        x = int(np.clip(x + dx, 0, max(shape[1] - size, 0)))
        return y, x


class TileSampler(Sampler):
    """Weighted draws with replacement, seeded by (seed, epoch), split across DDP ranks.

    Yields (tile index, draw number) pairs; rank r takes draws r, r + world, ..."""

    def __init__(
        self,
        weights: torch.Tensor,
        draws_per_epoch: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.weights, self.draws = weights, draws_per_epoch
        self.seed, self.rank, self.world = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        picks = torch.multinomial(self.weights, self.draws, replacement=True, generator=generator)
        first = self.epoch * self.draws
        for k in range(self.rank, self.draws, self.world):
            yield int(picks[k]), first + k

    def __len__(self) -> int:
        return len(range(self.rank, self.draws, self.world))
