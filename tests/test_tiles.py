"""Tiles: grid and padding, split by frame, rare-class oversampling, deterministic items."""

import numpy as np
import pytest
import torch

from pipeline.core import geometry
from pipeline.io import FrameWriter
from pipeline.learning import tiles


def test_grid_covers_frames_and_pads_to_multiples_of_32():
    assert geometry.tile_starts(80, 64, 0) == [0, 16]
    assert geometry.tile_starts(200, 64, 16) == [0, 48, 96, 136]
    assert geometry.tile_starts(40, 64, 0) == [0]
    assert geometry.padded(100) == 128 and geometry.padded(64) == 64
    image = np.arange(40 * 50, dtype=np.float32).reshape(40, 50)
    tile = tiles.cut_tile(image, 0, 0, 45, fill=geometry.IGNORE)
    assert tile.shape == (64, 64)
    np.testing.assert_array_equal(tile[:40, :45], image[:, :45])
    assert (tile[40:] == geometry.IGNORE).all() and (tile[:, 45:] == geometry.IGNORE).all()


def test_split_is_by_frame_and_seeded():
    train, val = tiles.split_frames(10, 0.3, seed=4)
    assert sorted(train + val) == list(range(10)) and len(val) == 3
    assert (train, val) == tiles.split_frames(10, 0.3, seed=4)
    assert tiles.split_frames(2, 0.01, seed=1)[1] != []  # at least one validation frame


def test_sampler_oversamples_rare_tiles_and_shards_ranks():
    weights = torch.tensor([1.0, 1.0, 4.0, 1.0])
    sampler = tiles.TileSampler(weights, 20_000, seed=3)
    picks = np.array([i for i, _ in sampler])
    freq = np.bincount(picks, minlength=4) / len(picks)
    assert freq[2] / freq[0] == pytest.approx(4.0, rel=0.05)
    assert [d for _, d in sampler] == list(range(20_000))  # draw numbers are unique
    sampler.set_epoch(1)
    assert [i for i, _ in sampler][:50] != picks[:50].tolist()
    ranks = [tiles.TileSampler(weights, 10, seed=3, rank=r, world_size=2) for r in (0, 1)]
    draws = sorted(d for r in ranks for _, d in r)
    assert draws == list(range(10)) and all(len(r) == 5 for r in ranks)


def test_dataset_items_are_normalised_padded_and_deterministic(tiny, tiny_files):
    source = tiles.FrameSource([tiny_files["train"]], tiny)
    grid = source.grid([(0, 0)])
    assert len(grid) == 4  # 96 x 80 frame, 64-pixel tiles: 2 x 2 (flush with the edges)
    data = tiles.TileDataset(source, grid, tiny, train=True, seed=5)
    x, y = data[(1, 7)]
    assert (
        x.shape == (tiny.model.in_channels, 64, 64)
        and x.dtype == torch.float32
        and y.dtype == torch.int64
    )
    again_x, again_y = data[(1, 7)]
    assert torch.equal(x, again_x) and torch.equal(y, again_y)
    assert not torch.equal(x, data[(1, 8)][0])
    val = tiles.TileDataset(source, grid, tiny, train=False, seed=5)
    x_val, y_val = val[0]
    charge, labels, noise = source.frame(0, 0)
    expected = np.arcsinh(charge[:64, :64] / noise) / tiny.normalise.divisor
    np.testing.assert_allclose(x_val[-1].numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(y_val.numpy(), labels[:64, :64])


def test_rare_tiles_get_the_oversampling_weight(tiny, tiny_files):
    source = tiles.FrameSource([tiny_files["train"]], tiny)
    grid = source.grid([(f, i) for f, s in enumerate(source.shapes) for i in range(s[0])])
    weights = source.rare_weights(grid).numpy()
    rare = [tiny.classes.index(c) for c in tiny.tiles.rare_classes]
    for tile, weight in zip(grid, weights, strict=True):
        labels = source.frame(tile.file, tile.frame)[1][tile.y : tile.y + 64, tile.x : tile.x + 64]
        assert weight == (tiny.tiles.rare_oversample if np.isin(labels, rare).any() else 1.0)


def test_training_source_refuses_files_without_labels(tiny, tmp_path):
    from pipeline.io import FrameFileError

    path = tmp_path / "raw.h5"
    with FrameWriter(path, io=tiny.io, height=32, width=32) as writer:
        writer.append(np.zeros((32, 32), np.float32))
    with pytest.raises(FrameFileError, match="training needs labels"):
        tiles.FrameSource([path], tiny)


def test_data_loader_workers_read_frames_without_deadlock(tiny, tiny_files):
    """A worker forked after the parent computed dask arrays (calibration) must not wait on the
    parent's dask thread pool, which does not exist in the child: it hung before."""
    from torch.utils.data import DataLoader

    source = tiles.FrameSource([tiny_files["train"]], tiny)
    dataset = tiles.TileDataset(source, source.grid([(0, 0), (0, 1)]), tiny, False, 0)
    loader = DataLoader(dataset, batch_size=2, num_workers=1, timeout=60)
    first = [x for x, _ in loader]
    assert torch.equal(torch.cat(first), torch.stack([dataset[i][0] for i in range(len(dataset))]))
