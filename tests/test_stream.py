"""Streamed training tiles: determinism (worker count, resume), every randomised range used and
applied to the simulator, and the new source options (X-ray entry, Compton electrons, muon
angles) checked by numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from torch.utils.data import DataLoader

from pipeline.config import config_to_dict, load_config
from pipeline.learning.stream import (
    LOG_RANGES,
    STREAM_TAG,
    MixedDataset,
    StreamDataset,
    StreamSampler,
    detector_values,
    draw_config,
    draw_parameters,
    narrowed_stream,
)
from pipeline.learning.train import train
from pipeline.network.model import load_checkpoint
from pipeline.simulation import physics
from tests.conftest import TINY

CONFIG = load_config(overrides=TINY)


def batches(dataset, workers: int, draws: int = 8) -> list[torch.Tensor]:
    loader = DataLoader(dataset, batch_size=4, sampler=StreamSampler(draws), num_workers=workers)
    return [torch.cat([x.flatten(), y.flatten().float()]) for x, y in loader]


def test_a_draw_is_the_same_whatever_the_number_of_workers():
    dataset = StreamDataset(CONFIG, seed=3)
    alone, two = batches(dataset, 0), batches(dataset, 2)
    assert all(torch.equal(a, b) for a, b in zip(alone, two, strict=True))
    x5, y5 = dataset[5]
    assert torch.equal(dataset[5][0], x5) and torch.equal(dataset[(0, 5)][1], y5)
    assert not torch.equal(dataset[6][0], x5)  # another draw, another detector
    assert not torch.equal(StreamDataset(CONFIG, seed=4)[5][0], x5)  # another seed


def test_draws_of_an_epoch_are_split_across_ranks_without_overlap():
    ranks = [list(StreamSampler(10, rank=r, world_size=3)) for r in range(3)]
    draws = sorted(d for rank in ranks for _, d in rank)
    assert draws == list(range(10))
    sampler = StreamSampler(10)
    sampler.set_epoch(2)
    assert [d for _, d in sampler] == list(range(20, 30))  # no tile is seen twice


def test_every_randomised_range_is_used_and_stays_inside():
    cfg = CONFIG.stream
    rng = np.random.default_rng(0)
    drawn = [draw_parameters(cfg, rng) for _ in range(400)]
    thin = np.array([d["thin"] for d in drawn])
    assert abs(thin.mean() - cfg.thin_share) < 0.05
    if thin.any():  # the release recipe draws thin CCDs; the default fine-tuning does not
        thin_thickness = np.array([d["thickness_um"] for d in drawn])[thin]
        low, high = cfg.thin_thickness_um
        assert thin_thickness.min() >= low and thin_thickness.max() <= high
    for name, bounds in cfg:
        if not isinstance(bounds, tuple) or bounds[0] == bounds[1] or name == "thin_thickness_um":
            continue
        values = np.array([d[name] for d, t in zip(drawn, thin, strict=True) if not t])
        low, high = bounds
        assert values.min() >= low and values.max() <= high, name
        if name in LOG_RANGES:
            values, low, high = np.log(values), math.log(low), math.log(high)
        assert (values.max() - values.min()) > 0.9 * (high - low), name  # the whole range
        assert abs(np.median(values) - (low + high) / 2) < 0.1 * (high - low), name  # uniform
    entries = [d["xray_entry"] for d in drawn]
    total = sum(cfg.xray_entry.values())
    for side, weight in cfg.xray_entry.items():
        assert entries.count(side) / len(entries) == pytest.approx(weight / total, abs=0.07)


def test_a_drawn_detector_reaches_the_simulator():
    rng = np.random.default_rng(1)
    for _ in range(20):
        state = rng.bit_generator.state
        drawn = draw_parameters(CONFIG.stream, rng)
        rng.bit_generator.state = state
        config = draw_config(CONFIG, 64, rng)
        det, phys, src = config.detector, config.physics, config.sources
        assert (det.height, det.width) == (64, 64)
        assert det.readout_noise_e == drawn["readout_noise_e"]
        assert det.thickness_um == drawn["thickness_um"]
        assert det.backside_pcc_um == drawn["backside_pcc_um"]
        assert phys.diffusion_a_um2 == pytest.approx(
            CONFIG.physics.diffusion_a_um2 * drawn["diffusion_scale"] ** 2
        )
        area = 64 * 64 / (CONFIG.detector.height * CONFIG.detector.width)
        scale = area * drawn["occupancy"] * CONFIG.stream.rate_scale.get("alpha", 1.0)
        assert src.alpha.rate_per_frame == pytest.approx(
            CONFIG.sources.alpha.rate_per_frame * scale
        )
        assert src.xray.entry == drawn["xray_entry"]
        assert src.muon.cos_power == drawn["muon_cos_power"]
        assert src.electron.compton_fraction == CONFIG.stream.compton_fraction


def test_streamed_tiles_carry_the_drawn_noise_and_truth():
    """Calibration measures the drawn readout noise, widened by the Poisson dark counts."""
    dataset = StreamDataset(CONFIG, seed=5)
    ratios = []
    for draw in range(16):
        charge, labels, noise, _ = dataset.tile(draw)
        drawn = draw_parameters(CONFIG.stream, np.random.default_rng([5, STREAM_TAG, draw]))
        ratios.append(noise / math.hypot(drawn["readout_noise_e"], drawn["dark_current_e"] ** 0.5))
        assert charge.shape == labels.shape == (64, 64)
    assert np.median(ratios) == pytest.approx(1.0, abs=0.2)


def test_a_mix_takes_the_streamed_share_by_draw():
    files = [(torch.zeros(1), torch.zeros(1))] * 3
    mixed = MixedDataset(files, StreamDataset(CONFIG, seed=1), weight=0.3, seed=1)
    share = np.mean([mixed.from_stream(d) for d in range(2000)])
    assert share == pytest.approx(0.3, abs=0.03)
    assert [mixed.from_stream(d) for d in range(50)] == [mixed.from_stream(d) for d in range(50)]


def test_streamed_training_resumes_to_the_same_weights(tiny, tiny_train, tmp_path):
    stream = tiny.stream.model_copy(update={"weight": 1.0})
    base = {"stream": stream, "tracking": tiny.tracking.model_copy(update={"enabled": False})}

    def run(out, **update):
        update = {"epochs": 2, "steps_per_epoch": 2, **update}
        config = tiny.model_copy(update={**base, "train": tiny.train.model_copy(update=update)})
        return train(config, **{**tiny_train, "out": out}, progress=False)

    run(tmp_path / "whole")
    run(tmp_path / "split", max_minutes=1e-9)  # stops after its first epoch, as if killed
    run(tmp_path / "split", resume=True)
    whole = load_checkpoint(tmp_path / "whole" / "last.pt")["state_dict"]
    split = load_checkpoint(tmp_path / "split" / "last.pt")["state_dict"]
    assert all(torch.equal(whole[k], split[k]) for k in whole)


# ------------------------------------------------------------------ source options


def test_xrays_convert_near_the_side_they_enter_or_anywhere():
    det = CONFIG.detector
    rng = np.random.default_rng(2)
    depth = {}
    for entry in ("back", "front", "uniform"):
        xray = CONFIG.sources.xray.model_copy(update={"entry": entry})
        depth[entry] = physics.xray_segments(20_000, xray, det, rng).start[:, 2]
    thick = det.thickness_um
    assert np.median(thick - depth["back"]) < 40  # attenuation lengths 12-68 um
    assert np.median(depth["front"]) < 40
    assert np.median(depth["uniform"]) == pytest.approx(thick / 2, rel=0.05)


def klein_nishina_mean_kev(gamma_kev: float) -> float:
    """Mean recoil energy of Compton scattering from dsigma/dOmega (Klein-Nishina)."""
    k = gamma_kev / physics.ELECTRON_MASS_KEV

    def weight(cos, moment):
        ratio = 1 / (1 + k * (1 - cos))
        return ratio**2 * (ratio + 1 / ratio - (1 - cos**2)) * (gamma_kev * (1 - ratio)) ** moment

    return integrate.quad(weight, -1, 1, args=1)[0] / integrate.quad(weight, -1, 1, args=0)[0]


@pytest.mark.parametrize("gamma_kev", [351.9, 1460.8, 2614.5])
def test_compton_electrons_follow_klein_nishina_up_to_the_edge(gamma_kev):
    energies = physics.compton_electron_kev(np.full(40_000, gamma_kev), np.random.default_rng(3))
    edge = 2 * gamma_kev**2 / (physics.ELECTRON_MASS_KEV + 2 * gamma_kev)  # Compton edge
    assert energies.min() >= 0 and energies.max() <= edge + 1e-9
    assert energies.max() > 0.99 * edge
    assert energies.mean() == pytest.approx(klein_nishina_mean_kev(gamma_kev), rel=0.02)


@pytest.mark.parametrize("power", [1.5, 3.0, 4.0])
def test_muon_zenith_angles_follow_the_configured_power(power):
    det = CONFIG.detector.model_copy(update={"height": 2000, "width": 2000})  # cap near 90 deg
    muon = CONFIG.sources.muon.model_copy(update={"cos_power": power})
    seg = physics.muon_segments(3000, muon, det, CONFIG.physics, np.random.default_rng(4))
    first = np.unique(seg.event, return_index=True)[1]
    direction = seg.end[first] - seg.start[first]
    cos = np.abs(direction[:, 2]) / np.linalg.norm(direction, axis=1)
    assert cos.mean() == pytest.approx((power + 1) / (power + 2), abs=0.02)  # pdf ~ cos^p


def test_a_training_on_the_stream_alone_needs_fixed_validation_files(tiny, tiny_files):
    from pipeline.config import ConfigError
    from pipeline.learning.data import TrainFiles, build_data
    from pipeline.network.device import Distributed

    alone = tiny.model_copy(update={"stream": tiny.stream.model_copy(update={"weight": 1.0})})
    files = TrainFiles([str(tiny_files["train"])], [])
    with pytest.raises(ConfigError, match=r"no validation frame files \(--val-frames\): .*alone"):
        build_data(alone, files, Distributed())
    # a mix may hold validation frames out of its training files instead
    mixed = alone.model_copy(update={"stream": tiny.stream.model_copy(update={"weight": 0.5})})
    data = build_data(mixed, files, Distributed())
    assert len(data.val.dataset) > 0


def _width(bounds, log):
    return math.log(bounds[1] / bounds[0]) if log and bounds[0] > 0 else bounds[1] - bounds[0]


@pytest.mark.parametrize("noise", [0.2, 2.0])
def test_fine_tuning_narrows_every_range_toward_the_configured_detector(noise):
    config = load_config(
        overrides={
            **TINY,
            "stream.narrow": 0.5,
            "sources.xray.entry": "front",
            "detector.readout_noise_e": noise,
        }
    )
    full, narrow = config.stream, narrowed_stream(config)
    for name, centre in detector_values(config).items():
        log = name in LOG_RANGES
        before, after = getattr(full, name), getattr(narrow, name)
        assert after[0] <= centre <= after[1], name  # never collapsed away from the detector
        held = (min(before[0], centre), max(before[1], centre))
        assert math.isclose(_width(after, log), 0.5 * _width(held, log), rel_tol=1e-9), name
    lo, hi = narrow.readout_noise_e  # log scale: a factor sqrt(range) either side of the noise
    assert math.isclose(lo * hi, noise**2 * (0.15 * 4.0 / noise**2) ** 0.5, rel_tol=1e-9)
    assert math.isclose(sum(narrow.xray_entry.values()), 1.0)
    assert narrow.xray_entry["front"] == pytest.approx(0.5 * 0.25 + 0.5)
    assert narrow.compton_fraction == pytest.approx(0.5 * full.compton_fraction)
    assert StreamDataset(config, seed=1).config.stream == narrow


def test_narrow_one_keeps_the_ranges_and_the_tiles():
    config = load_config(overrides={**TINY, "stream.narrow": 1.0})
    assert narrowed_stream(config) == config.stream
    assert config_to_dict(StreamDataset(config, 1).config) == config_to_dict(config)
