"""The detector as network input: the back-surface diffusion sigma by numbers, the constant
channels, a conditioned network widened from an unconditioned one computing what it did, and
the map recording the value and where it came from."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.calibration import calibrate, conditioning
from pipeline.config import NormaliseConfig, load_config
from pipeline.learning.resume import widened, with_classes
from pipeline.network.model import build_model


def test_back_sigma_follows_the_damic_model_by_numbers():
    config = load_config()
    # sigma^2 = -A ln(1 - b z) at z = 675 um: 216.2 x 0.9114 = 197.0 um^2, 14.04 um, / 15 um
    expected = math.sqrt(-216.2 * math.log(1 - 8.86e-4 * 675.0)) / 15.0
    assert conditioning.back_sigma_px(config.detector, config.physics) == pytest.approx(expected)
    assert expected == pytest.approx(0.936, abs=0.001)
    thin = config.detector.model_copy(update={"thickness_um": 250.0})
    diffuse = config.physics.model_copy(update={"diffusion_a_um2": 216.2 * 6.25})
    assert conditioning.back_sigma_px(thin, config.physics) < 0.6 * expected
    assert conditioning.back_sigma_px(config.detector, diffuse) == pytest.approx(2.5 * expected)


def test_condition_channels_are_constant_and_required():
    cfg = NormaliseConfig(
        kind="charge_significance", noise_multiple=1, divisor=4, condition=["back_sigma_px"]
    )
    assert cfg.channels == 3
    charge = np.random.default_rng(0).normal(0, 2, (32, 48))
    x = calibrate.normalise(charge, 2.0, cfg, {"back_sigma_px": 1.5})
    assert x.shape == (3, 32, 48)
    assert np.all(x[2] == pytest.approx(0.75))  # 1.5 px / its 2 px unit
    plain = calibrate.normalise(charge, 2.0, cfg.model_copy(update={"condition": []}))
    np.testing.assert_array_equal(x[:2], plain)
    with pytest.raises(ValueError, match="back_sigma_px"):
        calibrate.normalise(charge, 2.0, cfg, {})


def test_jitter_is_log_normal_around_the_value():
    rng = np.random.default_rng(1)
    values = [
        conditioning.jittered({"back_sigma_px": 1.0}, 0.1, rng)["back_sigma_px"]
        for _ in range(4000)
    ]
    logs = np.log(values)
    assert abs(logs.mean()) < 0.01
    assert logs.std() == pytest.approx(0.1, rel=0.05)


def test_a_widened_network_computes_what_its_start_did():
    config = load_config(overrides={"model.depth": 2, "model.decoder_channels": [16, 8]})
    torch.manual_seed(0)
    start = build_model(config.model.model_copy(update={"in_channels": 2}), 6).eval()
    wide_cfg = config.model.model_copy(update={"in_channels": 3})
    wide = build_model(wide_cfg, 6).eval()
    wide.load_state_dict(widened(start.state_dict(), 3))
    x = torch.randn(2, 2, 64, 64)
    with_condition = torch.cat([x, torch.full((2, 1, 64, 64), 0.7)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(wide(with_condition), start(x))


def test_a_network_grown_by_a_class_labels_every_pixel_as_before():
    config = load_config(overrides={"model.depth": 2, "model.decoder_channels": [16, 8]})
    torch.manual_seed(0)
    model_cfg = config.model.model_copy(update={"in_channels": 2})
    start, grown = build_model(model_cfg, 6).eval(), build_model(model_cfg, 7).eval()
    grown.load_state_dict(with_classes(start.state_dict(), 7))
    x = torch.randn(2, 2, 64, 64)
    with torch.no_grad():
        before, after = start(x), grown(x)
    torch.testing.assert_close(after[:, :6], before)
    torch.testing.assert_close(after[:, 6], before[:, 0] - 3.0)  # background's, less 3
    assert torch.equal(after.argmax(dim=1), before.argmax(dim=1))


@pytest.mark.parametrize(
    "overrides",
    [{}, {"physics.diffusion_a_um2": 1351.25, "sources.xray.entry": "uniform"}],
    ids=["damic", "diffusion x2.5, x-rays in depth"],
)
def test_the_back_surface_spread_is_measured_from_the_file(tmp_path, overrides):
    from pipeline.inference.detector_context import detector_context, measured_back_sigma
    from pipeline.simulation.simulate import simulate_file

    size = {"detector.height": 512, "detector.width": 512, "tracking.enabled": False}
    config = load_config(overrides={**size, **overrides})
    path = simulate_file(config, tmp_path / "sim.h5", 8, seed=8, progress=False)[0]
    truth = conditioning.back_sigma_px(config.detector, config.physics)
    value, clusters = measured_back_sigma(path, config)
    assert clusters >= 100
    assert value == pytest.approx(truth, rel=0.06)  # the training jitters it by 10 %
    told = NormaliseConfig(kind="charge_significance", noise_multiple=1, divisor=4)
    told = told.model_copy(update={"condition": ["back_sigma_px"]})
    context, source = detector_context(config, told, path)
    assert context["back_sigma_px"] == value and source.startswith("measured")
    stated = config.model_copy(
        update={"infer": config.infer.model_copy(update={"back_sigma_px": 1.7})}
    )
    assert detector_context(stated, told, path) == (
        {"back_sigma_px": 1.7},
        "config infer.back_sigma_px",
    )
