"""What training reads (part of the `train` stage): the training and validation data loaders.

Owns choosing the training tiles (from labelled frame files, from the simulation stream of
`pipeline.learning.stream`, or a mix by `stream.weight`), their sampler (seeded per epoch and
shared out across DDP ranks), the validation tiles (always fixed files), and the hash of what was
read. `world` is the DDP layout (rank, world size) of `pipeline.network.device.Distributed`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
from torch.utils.data import DataLoader, Dataset

from pipeline.config import Config, ConfigError
from pipeline.config.stages import TrainSettings
from pipeline.core import hashing
from pipeline.core.components import EIGHT_CONNECTED
from pipeline.learning import stream, tiles


@dataclass
class Data:
    train: DataLoader
    val: DataLoader
    sampler: Any  # tiles.TileSampler or stream.StreamSampler: set_epoch, then draws
    data_hash: str


@dataclass(frozen=True)
class TrainFiles:
    """The labelled frame files a training reads."""

    frames: list[str | Path]
    val_frames: list[str | Path]


def build_data(config: TrainSettings | Config, files: TrainFiles, world: Any) -> Data:
    """Training tiles from files, from the simulation stream, or both (`stream.weight`);
    validation tiles always from fixed files."""
    cfg, weight = config.train, config.stream.weight
    if weight < 1 and not files.frames:
        raise ConfigError(
            "no training frame files (--frames): give frame files or stream.weight: 1"
        )
    if weight == 1 and not files.val_frames:
        raise ConfigError(
            "no validation frame files (--val-frames): a training on the stream alone "
            "(stream.weight: 1) validates on fixed files"
        )
    draws = cfg.steps_per_epoch * cfg.batch_size * world.world
    if weight == 1:
        val_source = tiles.FrameSource(files.val_frames, config)
        val_frames = [(f, i) for f, shape in enumerate(val_source.shapes) for i in range(shape[0])]
        train_set: Dataset = stream.StreamDataset(config, cfg.seed)
        sampler: Any = stream.StreamSampler(draws, world.rank, world.world)
    else:
        train_set, sampler, val_source, val_frames = _file_tiles(config, files, world, draws)
        if weight > 0:
            streamed = stream.StreamDataset(config, cfg.seed)
            train_set = stream.MixedDataset(train_set, streamed, weight, cfg.seed)
    loader: dict[str, Any] = dict(num_workers=cfg.workers, persistent_workers=cfg.workers > 0)
    train = DataLoader(
        train_set, batch_size=cfg.batch_size, sampler=sampler, drop_last=True, **loader
    )
    val = validation_loader(config, val_source, val_frames)
    hashed = [*files.frames, *files.val_frames] if weight < 1 else list(files.val_frames)
    extra = stream.stream_hash_text(config) if weight > 0 else ""
    return Data(train, val, sampler, hashing.data_hash(hashed, extra))


def validation_loader(
    config: TrainSettings | Config,
    source: tiles.FrameSource,
    frames: Sequence[tuple[int, int]] | None = None,
) -> DataLoader:
    """The fixed validation tiles (`train.val_tiles` of the grid over `frames`, all of the
    source's by default, chosen by `train.seed`), unaugmented, in order."""
    cfg = config.train
    if frames is None:
        frames = [(f, i) for f, shape in enumerate(source.shapes) for i in range(shape[0])]
    grid = source.grid(frames)
    keep = np.random.default_rng(cfg.seed).permutation(len(grid))[: cfg.val_tiles]
    chosen = [grid[i] for i in sorted(keep)]
    return DataLoader(
        tiles.TileDataset(source, chosen, config, train=False, seed=cfg.seed),
        batch_size=cfg.batch_size,
        shuffle=False,
        num_workers=cfg.workers,
        persistent_workers=cfg.workers > 0,
    )


def _file_tiles(config: TrainSettings | Config, files: TrainFiles, world: Any, draws: int):
    """Training tiles of the files, their sampler, and the validation source and frames."""
    cfg = config.train
    train_source = tiles.FrameSource(files.frames, config)
    all_frames = [(f, i) for f, shape in enumerate(train_source.shapes) for i in range(shape[0])]
    if files.val_frames:
        val_source = tiles.FrameSource(files.val_frames, config)
        train_frames = all_frames
        val_frames = [(f, i) for f, shape in enumerate(val_source.shapes) for i in range(shape[0])]
    else:
        train_idx, val_idx = tiles.split_frames(
            len(all_frames), config.tiles.val_fraction, cfg.seed
        )
        val_source, train_frames = train_source, [all_frames[i] for i in train_idx]
        val_frames = [all_frames[i] for i in val_idx]
    train_tiles = train_source.grid(train_frames)
    weights = train_source.rare_weights(train_tiles)
    sampler = tiles.TileSampler(weights, draws, cfg.seed, world.rank, world.world)
    dataset = tiles.TileDataset(train_source, train_tiles, config, train=True, seed=cfg.seed)
    return dataset, sampler, val_source, val_frames


def cluster_priors(
    dataset: Dataset, items: Iterable[Any], classes: Sequence[str]
) -> dict[str, float]:
    """Each signal class's share of the deposits (8-connected regions of one class in the
    labels) of the training tiles `items` of `dataset`: the priors the network learns, which
    label-shift correction at inference starts from (pipeline/results/priors.py)."""
    counts = np.zeros(len(classes))
    for item in items:
        labels = np.asarray(dataset[item][1])
        for c in range(1, len(classes)):
            counts[c] += ndimage.label(labels == c, structure=EIGHT_CONNECTED)[1]
    total = max(counts[1:].sum(), 1.0)
    return {name: round(float(counts[c] / total), 5) for c, name in enumerate(classes) if c}


def training_priors(data: Data, tiles: int, classes: Sequence[str]) -> dict[str, float]:
    """`cluster_priors` of the first `tiles` training tiles of epoch 0, drawn as the training
    draws them (augmented; seeded by the draw, so the training's own draws are untouched)."""
    data.sampler.set_epoch(0)
    items = list(itertools.islice(iter(data.sampler), tiles))
    return cluster_priors(data.train.dataset, items, classes)


def stream_priors(config: TrainSettings | Config, tiles: int) -> dict[str, float]:
    """`cluster_priors` of the first `tiles` draws of the simulation stream of `config`."""
    dataset = stream.StreamDataset(config, config.train.seed)
    return cluster_priors(dataset, range(tiles), config.classes)
