"""Sparse inference: the plan covers every pixel near charge with context, and the labels equal
dense inference on the interior of every deposit (pointwise and shipped models, low and high
occupancy), with dense on busy frames."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from pipeline.calibration import calibrate
from pipeline.config import NormaliseConfig, load_config
from pipeline.inference import sparse
from pipeline.inference.predictor import Predictor
from pipeline.io import open_frames
from pipeline.network.model import load_model
from pipeline.network.shipped import resolve_model
from pipeline.results import clusters
from pipeline.simulation.simulate import simulate_file

CPU = torch.device("cpu")


def plan_config(**changes):
    return load_config().infer.sparse.model_copy(update=changes)


def within(distance: int, mask: np.ndarray) -> np.ndarray:
    """Pixels at most `distance` (Chebyshev) from a True pixel of `mask`."""
    return ndimage.binary_dilation(mask, np.ones((3, 3), bool), iterations=distance)


def owned_mask(crops, shape) -> np.ndarray:
    owned = np.zeros(shape, bool)
    for crop in crops:
        y0, y1, x0, x1 = crop.owned
        owned[y0:y1, x0:x1] = True
    return owned


def test_seeds_need_both_the_noise_multiple_and_the_charge_floor():
    cfg = plan_config(seed_sigma=4.0, seed_min_charge_e=4.0)
    charge = np.zeros((1, 9))
    charge[0, [1, 4, 7]] = [3.0, 5.0, 9.0]  # isolated: each 3 x 3 sum holds one of them
    assert np.flatnonzero(sparse.seed_mask(charge, 2.0, cfg)).tolist() == [7]  # 8 e- needed
    # skipper noise: the 4 e- floor decides, for pixels and sums (a sum's neighbours seed too)
    assert np.flatnonzero(sparse.seed_mask(charge, 0.15, cfg)).tolist() == [3, 4, 5, 6, 7, 8]


@pytest.mark.parametrize("shape", [(256, 256), (100, 75), (40, 1000)])
def test_every_pixel_near_a_seed_is_owned_and_has_its_context(shape):
    cfg = plan_config(block_px=8, margin_px=12)
    rng = np.random.default_rng(3)
    seeds = np.zeros(shape, bool)
    seeds[rng.integers(0, shape[0], 12), rng.integers(0, shape[1], 12)] = True
    seeds[5, : shape[1] // 2] = True  # a track along a row
    crops = sparse.plan_crops(seeds, cfg, multiple=16)
    owned = owned_mask(crops, shape)
    assert owned[within(cfg.block_px, seeds)].all()
    for crop in crops:
        (y0, y1, x0, x1), (cy0, cy1, cx0, cx1) = crop.owned, crop.context
        assert cy0 <= max(0, y0 - 12) and cy1 >= min(shape[0], y1 + 12)
        assert cx0 <= max(0, x0 - 12) and cx1 >= min(shape[1], x1 + 12)
        assert min(cy0, cx0) >= 0 and cy1 <= shape[0] and cx1 <= shape[1]
        for size, edge in ((cy1 - cy0, shape[0]), (cx1 - cx0, shape[1])):
            assert size % 16 == 0 or size == edge
    assert not sparse.plan_crops(np.zeros(shape, bool), cfg)


def test_a_diagonal_track_is_split_into_boxes_along_it():
    cfg = plan_config(block_px=8, margin_px=4, track_margin_px=12)
    seeds = np.zeros((512, 512), bool)
    diagonal = np.arange(40, 470)
    seeds[diagonal, diagonal] = True
    crops = sparse.plan_crops(seeds, cfg, multiple=16)
    assert len(crops) > 4
    assert sparse.covered_fraction(crops, seeds.shape) < 0.35  # one box: 0.79
    assert owned_mask(crops, seeds.shape)[within(8, seeds)].all()
    for crop in crops:  # a track: each piece sees the track margin around it
        (y0, y1, x0, x1), (cy0, cy1, cx0, cx1) = crop.owned, crop.context
        assert min(y0 - cy0, cy1 - y1, x0 - cx0, cx1 - x1) >= 12


def test_assemble_keeps_the_owned_answers_and_background_elsewhere():
    seeds = np.zeros((64, 64), bool)
    seeds[30, 30] = True
    crops = sparse.plan_crops(seeds, plan_config(block_px=8, margin_px=8), multiple=16)
    calls = []

    def predict(batch):
        calls.append(batch[0].shape)
        out = np.zeros((len(batch), 3, *batch[0].shape), np.float32)
        out[:, 2] = 1.0
        return out

    probs = sparse.assemble(predict, np.zeros((64, 64), np.float32), crops, 3, 64**2)
    owned = owned_mask(crops, (64, 64))
    assert calls and all(h % 16 == 0 and w % 16 == 0 for h, w in calls)
    assert (probs[2][owned] == 1).all() and (probs[0][~owned] == 1).all()
    assert probs[1].max() == 0 and 0 < owned.mean() < 1


class Pointwise(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 6, 1)

    def forward(self, x):
        return self.conv(x)


def test_a_pointwise_model_gives_the_dense_probabilities_on_every_owned_pixel():
    config = load_config()
    cfg = config.infer.model_copy(update={"sparse": plan_config(margin_px=8)})
    two_channels = config.normalise.model_copy(update={"condition": []})  # Pointwise takes two
    predictor = Predictor(Pointwise(), 256, two_channels, cfg, CPU, multiple=16)
    rng = np.random.default_rng(2)
    charge = rng.normal(0, 2.0, (300, 280)).astype(np.float32)
    charge[rng.integers(0, 300, 8), rng.integers(0, 280, 8)] += 400.0
    crops = sparse.plan_crops(sparse.seed_mask(charge, 2.0, cfg.sparse), cfg.sparse, 16)
    owned = owned_mask(crops, charge.shape)
    dense, sparse_probs = (
        predictor.probabilities(charge, 2.0),
        predictor.frame_probabilities(charge, 2.0),
    )
    np.testing.assert_allclose(sparse_probs[:, owned], dense[:, owned], atol=1e-6)
    assert (sparse_probs[0][~owned] == 1).all() and owned.mean() < 0.5


@pytest.fixture(scope="module")
def shipped():
    config = load_config()
    model, card = load_model(resolve_model("ccd-unet-v1"))  # six classes: the probabilities its own
    return config, model, NormaliseConfig(**card["normalise"]), 2 ** card["architecture"]["depth"]


def simulated(tmp_path, occupancy: float, seed: int):
    rates = {
        "sources.tritium.rate_per_frame": 2.0 * occupancy,
        "sources.xray.rate_per_frame": 1.5 * occupancy,
        "sources.muon.rate_per_frame": 0.25 * occupancy,
        "sources.electron.rate_per_frame": 0.25 * occupancy,
        "sources.alpha.rate_per_frame": 0.1 * occupancy,
    }
    config = load_config(overrides={"detector.height": 512, "detector.width": 512, **rates})
    path = simulate_file(config, tmp_path / f"occ{occupancy}.h5", 3, seed=seed, progress=False)[0]
    with open_frames(path, config.io, config.classes) as ff:
        run = calibrate.calibrate_file(ff, config)
        for i in range(3):
            charge = calibrate.frame_charge(ff.read("frames", i), run, i)
            yield charge, run.frames[i].noise_e, ff.read("labels", i)


# 1x, 4x and 40x the default sources per pixel; the last is busy enough to run dense
@pytest.mark.parametrize("occupancy,seed", [(1.0, 21), (4.0, 22), (40.0, 23)])
def test_the_shipped_model_labels_every_deposit_interior_as_dense_does(
    shipped, tmp_path, occupancy, seed
):
    config, model, normalise, multiple = shipped
    predictor = Predictor(model, 1024, normalise, config.infer, CPU, multiple=multiple)
    interior_pixels, covered = 0, []
    for charge, noise, truth in simulated(tmp_path, occupancy, seed):
        dense = clusters.component_vote(predictor.probabilities(charge, noise))
        labels = clusters.component_vote(predictor.frame_probabilities(charge, noise))
        interior = ndimage.binary_erosion(truth > 0, np.ones((3, 3), bool))
        np.testing.assert_array_equal(labels[interior], dense[interior])
        plan = config.infer.sparse
        crops = sparse.plan_crops(sparse.seed_mask(charge, noise, plan), plan, multiple)
        covered.append(sparse.covered_fraction(crops, charge.shape))
        if covered[-1] > config.infer.sparse.max_fraction:
            np.testing.assert_array_equal(labels, dense)
        interior_pixels += int(interior.sum())
    assert interior_pixels > 50
    ran_sparse = np.array(covered) <= config.infer.sparse.max_fraction
    assert {1.0: ran_sparse.all(), 4.0: ran_sparse.any(), 40.0: not ran_sparse.any()}[occupancy]


def test_box_sums_are_scipys_and_seed_faint_spread_deposits():
    rng = np.random.default_rng(5)
    image = rng.normal(0, 1, (37, 50)).astype(np.float32)
    expected = ndimage.uniform_filter(image.astype(np.float64), 3, mode="constant") * 9
    np.testing.assert_allclose(sparse.box_sum3(image), expected, atol=1e-4)
    yy, xx = np.mgrid[:40, :40]
    faint = 250.0 * np.exp(-((yy - 20) ** 2 + (xx - 20) ** 2) / (2 * 2.4**2)) / (2 * np.pi * 2.4**2)
    cfg = plan_config(seed_sigma=5.0, seed_min_charge_e=4.0)
    assert faint.max() < 5 * 2.5  # no pixel of this 0.9 keV, 2.4-px diffused deposit stands out
    assert sparse.seed_mask(faint, 2.5, cfg)[20, 20]
    assert not sparse.seed_mask(np.zeros((40, 40)), 2.5, cfg).any()
