"""Calibration: pedestal, gain, noise, hot pixels, normalisation: recovered numbers, not runs."""

import math

import dask.array as da
import numpy as np
import pytest

from pipeline.calibration import calibrate, hot_pixels
from pipeline.config import load_config
from pipeline.core.errors import CalibrationError
from pipeline.simulation.simulate import make_detector, simulate_frame

GAIN, NOISE_E, PEDESTAL = 7.3, 2.5, 1234.0
SIGNAL_SOURCES = ("tritium", "xray", "muon", "electron", "alpha")
QUIET = {f"sources.{s}.rate_per_frame": 0.0 for s in SIGNAL_SOURCES}
SPARSE = {**QUIET, "sources.tritium.rate_per_frame": 3.0, "sources.xray.rate_per_frame": 3.0}
FE55_ONLY = {
    **QUIET,
    "sources.xray.rate_per_frame": 100.0,
    "sources.xray.lines": [
        {"energy_kev": 5.899, "weight": 0.55, "attenuation_um": 29.0},  # Mn K-alpha
        {"energy_kev": 6.490, "weight": 0.08, "attenuation_um": 38.0},  # Mn K-beta
    ],
    "sources.xray.continuum_weight": 0.0,
}


def sim_config(**overrides):
    base = {
        "detector.height": 256,
        "detector.width": 256,
        "detector.gain_adu_per_e": GAIN,
        "detector.readout_noise_e": NOISE_E,
        "detector.pedestal_adu": PEDESTAL,
    }
    return load_config(overrides={**base, **overrides})


def sim_frames(config, n, seed=0):
    detector = make_detector(config.detector)
    rngs = [np.random.default_rng([seed, i]) for i in range(n)]
    return [simulate_frame(config, detector, rng) for rng in rngs]


def calib_config(**overrides):
    return load_config(overrides=overrides).calibrate


# ------------------------------------------------------------------ pedestal, gain, noise


def test_known_row_pedestal_is_recovered():
    config = sim_config(**SPARSE)
    frame = sim_frames(config, 1)[0]
    rng = np.random.default_rng(5)
    h, w = frame.signal_e.shape
    pedestal = PEDESTAL + np.cumsum(rng.normal(0.0, 3.0, h))  # drifting, known row pedestal
    adu = GAIN * (frame.signal_e + rng.normal(0.0, NOISE_E, (h, w))) + pedestal[:, None]
    _, cal = calibrate.calibrate_frame(adu, GAIN, calib_config())
    error = (cal.pedestal_adu - pedestal) / (GAIN * NOISE_E)  # in units of the noise
    expected = hot_pixels.MEDIAN_SPREAD / math.sqrt(w)  # std of a row median of w pixels: 0.078
    assert abs(error.mean()) < 0.02  # no bias from the sparse signal
    assert np.sqrt(np.mean(error**2)) < 1.2 * expected
    assert np.abs(error).max() < 5 * expected


def test_noise_and_charge_of_simulated_frames():
    config = sim_config(**SPARSE)
    frame = sim_frames(config, 1)[0]
    charge, cal = calibrate.calibrate_frame(frame.adu, GAIN, calib_config())
    assert charge.dtype == np.float32
    assert cal.noise_e == pytest.approx(NOISE_E, rel=0.03)
    # charge of clear signal pixels comes back in electrons (100 X-rays: ~200 such pixels)
    frame = sim_frames(sim_config(**FE55_ONLY), 1)[0]
    charge, _ = calibrate.calibrate_frame(frame.adu, GAIN, calib_config())
    hit = frame.signal_e > 200
    assert hit.sum() > 100
    assert np.median(charge[hit] / frame.signal_e[hit]) == pytest.approx(1.0, abs=0.005)


def test_gain_from_file_attrs_is_exact_and_defaults_to_one():
    frames = np.stack([f.adu for f in sim_frames(sim_config(**SPARSE), 2)])
    run = calibrate.calibrate_run(frames, {"gain_adu_per_e": GAIN}, calib_config(), 3.75)
    assert run.gain_adu_per_e == GAIN
    assert all(f.gain_adu_per_e == GAIN for f in run.frames)
    assert run.noise_e == pytest.approx(NOISE_E, rel=0.03)
    assert calibrate.resolve_gain({}, calib_config()) == 1.0
    config_gain = calib_config(**{"calibrate.gain": "config", "calibrate.gain_adu_per_e": 4.2})
    assert calibrate.resolve_gain({"gain_adu_per_e": GAIN}, config_gain) == 4.2


def test_fe55_gain_within_two_percent():
    config = sim_config(**FE55_ONLY)
    frames = np.stack([f.adu for f in sim_frames(config, 4, seed=3)])
    cfg = calib_config(**{"calibrate.gain": "fe55"})
    gain = calibrate.resolve_gain({}, cfg, frames, config.physics.pair_energy_ev)
    assert gain == pytest.approx(GAIN, rel=0.02)
    run = calibrate.calibrate_run(da.from_array(frames, chunks=(1, 256, 256)), {}, cfg, 3.75)
    assert run.gain_adu_per_e == pytest.approx(gain, rel=1e-9)  # streaming gives the same
    assert run.noise_e == pytest.approx(NOISE_E, rel=0.03)


def test_noise_is_robust_to_signal():
    rng = np.random.default_rng(11)
    noise = rng.normal(0.0, NOISE_E, (256, 256))
    clean = calibrate.measure_noise_e(noise, 4.0)
    hit = rng.random(noise.shape) < 0.01
    noisy = noise + np.where(hit, 1e4, 0.0)
    noisy[0, :3] = [np.nan, np.inf, -np.inf]  # ignored
    assert clean == pytest.approx(NOISE_E, rel=0.02)
    assert calibrate.measure_noise_e(noisy, 4.0) == pytest.approx(clean, rel=0.02)


def test_overscan_pedestal_ignores_dense_signal():
    rng = np.random.default_rng(4)
    h, w, n_over = 256, 256, 64
    pedestal = PEDESTAL + np.cumsum(rng.normal(0.0, 3.0, h))
    signal = np.zeros((h, w))
    signal[:128, :160] = rng.exponential(50.0, (128, 160))  # dense region: most of those rows
    adu = GAIN * (signal + rng.normal(0.0, NOISE_E, (h, w))) + pedestal[:, None]
    overscan = GAIN * rng.normal(0.0, NOISE_E, (h, n_over)) + pedestal[:, None]
    noise_adu = GAIN * NOISE_E
    cfg = calib_config(**{"calibrate.pedestal": "overscan"})
    charge, cal = calibrate.calibrate_frame(adu, GAIN, cfg, overscan)
    error = (cal.pedestal_adu - pedestal) / noise_adu
    assert np.abs(error).max() < 5 * hot_pixels.MEDIAN_SPREAD / math.sqrt(n_over)
    quiet = charge[128:]  # rows without signal: zero-centred noise
    assert calibrate.measure_noise_e(quiet, 4.0) == pytest.approx(NOISE_E, rel=0.03)
    assert abs(np.median(quiet)) < 0.02 * NOISE_E
    rows = calibrate.row_pedestal_adu(adu)  # a plain row median is pulled up by the signal
    assert np.median((rows[:128] - pedestal[:128]) / noise_adu) > 3
    run = calibrate.calibrate_run(
        da.from_array(adu[None]), {"gain_adu_per_e": GAIN}, cfg, 3.75, overscan[None]
    )
    np.testing.assert_allclose(run.frames[0].pedestal_adu, cal.pedestal_adu)


# ------------------------------------------------------------------ hot pixels and columns


def hot_config():
    return sim_config(
        **{
            **SPARSE,
            "detector.hot_pixel_fraction": 0.002,
            "detector.hot_pixel_charge_e": 15.0,
            "detector.hot_columns": 2,
            "detector.hot_column_charge_e": 3.0,
            "sources.tritium.rate_per_frame": 10.0,
            "sources.muon.rate_per_frame": 1.0,
        },
    )


def test_hot_pixels_and_columns_found_across_frames():
    config = hot_config()
    detector = make_detector(config.detector)
    frames = sim_frames(config, 6, seed=7)
    cfg = calib_config()
    charges = [calibrate.calibrate_frame(f.adu, GAIN, cfg)[0] for f in frames]
    mask = hot_pixels.find_hot_pixels(charges, NOISE_E, cfg)
    threshold = cfg.hot_pixel_sigma * hot_pixels.MEDIAN_SPREAD * NOISE_E / math.sqrt(6)  # 6.4 e-
    findable = detector.hot_pixels & (detector.dark_map_e > threshold)
    assert findable.sum() > 100
    assert mask[findable].mean() >= 0.9
    assert mask[:, detector.hot_columns].all()
    true_columns = np.zeros_like(mask)
    true_columns[:, detector.hot_columns] = True
    assert (mask & ~detector.hot_pixels & ~true_columns).sum() <= 5
    run = calibrate.calibrate_run((f.adu for f in frames), {"gain_adu_per_e": GAIN}, cfg, 3.75)
    np.testing.assert_array_equal(run.hot_mask, mask)  # ADU stream, same rule


def test_single_frame_finds_columns_and_keeps_tracks():
    config = hot_config()
    detector = make_detector(config.detector)
    frame = sim_frames(config, 1, seed=8)[0]
    charge, cal = calibrate.calibrate_frame(frame.adu, GAIN, calib_config())
    mask = hot_pixels.find_hot_pixels([charge], cal.noise_e, calib_config())
    assert mask.shape == charge.shape
    assert mask[:, detector.hot_columns].all()
    assert mask.sum() == 256 * len(detector.hot_columns)  # no track is masked as a hot pixel
    masked = calibrate.apply_mask(charge, mask)
    assert (masked[mask] == 0).all() and (masked[~mask] == charge[~mask]).all()
    assert masked is not charge and (charge[mask] != 0).any()


# ------------------------------------------------------------------ normalisation


def test_normalise_round_trip_and_invariance():
    cfg = load_config().normalise.model_copy(update={"kind": "asinh_noise", "condition": []})
    q = np.array([-20.0, -1.0, 0.0, 0.5, 3.0, 100.0, 4e4, 1e6])
    x = calibrate.normalise(q, NOISE_E, cfg)
    assert x.dtype == np.float32 and x.shape == (1, len(q))
    np.testing.assert_allclose(calibrate.denormalise(x, NOISE_E, cfg), q, rtol=1e-5, atol=1e-5)
    # the same charge in noise units gives the same input, whatever the gain and noise
    for scale in (0.3, 1.7):
        np.testing.assert_allclose(calibrate.normalise(q * scale, NOISE_E * scale, cfg), x)
    assert x[0, -1] == pytest.approx(math.asinh(1e6 / NOISE_E) / cfg.divisor, rel=1e-6)


def test_charge_significance_keeps_electrons_whatever_the_noise():
    cfg = load_config().normalise.model_copy(update={"condition": []})  # the charge channels
    assert cfg.kind == "charge_significance" and cfg.channels == 2
    q = np.array([[-3.0, 0.0, 1.0, 5.0, 1573.0, 1e5]])
    quiet, loud = calibrate.normalise(q, 0.15, cfg), calibrate.normalise(q, 4.0, cfg)
    assert quiet.shape == (2, 1, 6) and quiet.dtype == np.float32
    np.testing.assert_array_equal(quiet[0], loud[0])  # energy: the same on every detector
    np.testing.assert_allclose(quiet[0, 0, 4], math.asinh(1573.0) / cfg.divisor, rtol=1e-6)
    # significance: one electron is 6.7 sigma at skipper noise, a quarter sigma at 4 e-
    np.testing.assert_allclose(quiet[1, 0, 2], math.asinh(1 / 0.15) / cfg.divisor, rtol=1e-6)
    np.testing.assert_allclose(loud[1, 0, 2], math.asinh(1 / 4.0) / cfg.divisor, rtol=1e-6)
    np.testing.assert_allclose(calibrate.denormalise(quiet, 0.15, cfg), q, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ bad inputs


def test_bad_inputs_raise_calibration_errors():
    frame = sim_frames(sim_config(**QUIET), 1)[0].adu
    with pytest.raises(CalibrationError, match="overscan"):
        calibrate.calibrate_frame(frame, GAIN, calib_config(**{"calibrate.pedestal": "overscan"}))
    fe55 = calib_config(**{"calibrate.gain": "fe55"})
    with pytest.raises(CalibrationError, match="no Fe-55 frames"):
        calibrate.resolve_gain({}, fe55)
    noise_frames = np.stack([f.adu for f in sim_frames(sim_config(**QUIET), 3)])
    with pytest.raises(CalibrationError, match="no Fe-55 peak"):
        calibrate.resolve_gain({}, fe55, noise_frames)
    with pytest.raises(CalibrationError, match="no Fe-55 peak"):
        calibrate.calibrate_run(noise_frames, {}, fe55, 3.75)
    with pytest.raises(CalibrationError, match="positive"):
        calibrate.resolve_gain({"gain_adu_per_e": 0.0}, calib_config())
    with pytest.raises(ValueError, match="kind"):
        calibrate.normalise(
            np.zeros(3), NOISE_E, load_config().normalise.model_copy(update={"kind": "log"})
        )


def test_hot_mask_uses_a_bounded_evenly_spread_sample_of_frames():
    assert hot_pixels.exposure_sample(10, 4) == {0, 3, 6, 9}
    assert hot_pixels.exposure_sample(2, 4) == {0, 1}
    assert hot_pixels.exposure_sample(1, 4) == {0}
    assert hot_pixels.exposure_sample(None, 4) == {0, 1, 2, 3}  # length unknown: the first 4
    rng = np.random.default_rng(3)
    frames = rng.normal(100.0, 2.0, (12, 32, 32))
    frames[:, 5, 7] += 40.0  # a hot pixel in every frame
    for limit in (3, 12):
        cfg = calib_config(**{"calibrate.hot_mask_frames": limit})
        run = calibrate.calibrate_run(frames, {}, cfg, 3.75)
        assert run.hot_mask[5, 7] and run.hot_mask.sum() == 1
        assert len(run.frames) == 12


# ------------------------------------------------- noise where the MAD is 0 (counted electrons)


@pytest.mark.parametrize("sigma", [0.12, 0.16, 0.25, 0.35])
@pytest.mark.parametrize("offset", [0.0, 1000.0])
def test_noise_of_electron_counted_pixels_is_recovered(sigma, offset):
    """Skipper frames counted in electrons: Gaussian noise far below one electron, rounded to
    whole electrons, so more than half the pixels read exactly the pedestal and the MAD is 0."""
    rng = np.random.default_rng(3)
    counted = np.rint(rng.normal(offset, sigma, 400_000))
    assert np.median(np.abs(counted - np.median(counted))) == 0
    assert calibrate.measure_noise_e(counted, 4.0) == pytest.approx(sigma, rel=0.08)


def test_counted_noise_with_no_pixel_off_the_pedestal_is_a_bound_not_zero():
    quiet = np.zeros(10_000)
    quiet[:3] = 40.0  # three pixels of signal, far off the grid step of 1
    quiet[3] = 1.0  # one pixel one electron up
    noise = calibrate.measure_noise_e(quiet, 4.0)
    assert 0.1 < noise < 0.3  # one pixel in 10^4 off the pedestal: sigma ~ 1 / (2 * 3.9)


def test_a_constant_region_does_not_hide_the_noise_of_the_rest():
    """Off a grid, a mode holding most pixels is a masked or padded region: the noise comes from
    the other pixels."""
    rng = np.random.default_rng(4)
    values = np.concatenate([np.zeros(60_000), rng.normal(5.0, 2.0, 40_000)])
    assert calibrate.measure_noise_e(values, 4.0) == pytest.approx(2.0, rel=0.05)


def test_a_frame_of_one_value_has_no_noise_to_measure():
    with pytest.raises(CalibrationError, match="every pixel has the value 1000: no noise can be"):
        calibrate.measure_noise_e(np.full((20, 20), 1000.0), 4.0)


def test_saturated_frames_are_refused_and_real_saturated_tracks_are_not():
    frame = np.full((20, 20), 65535, np.uint16)
    frame[:6] = 1000
    saturated = "70% of the pixels sit at the frame's maximum, 65535"
    with pytest.raises(CalibrationError, match=saturated):
        calibrate.check_not_saturated(frame)
    track = np.random.default_rng(0).normal(1000, 5, (20, 20))
    track[10, 2:18] = 65535  # a muon core at the ADC's limit: a real frame
    calibrate.check_not_saturated(track)


def test_integer_frames_keep_whole_electron_charges():
    frame = np.array([[3, 3, 4, 3], [7, 8, 8, 7]], np.int32)  # row medians 3 and 7.5
    pedestal = calibrate.row_pedestal_adu(frame)
    assert pedestal.tolist() == [3.0, 8.0]  # 7.5 rounds: residuals stay on the integer grid
    assert calibrate.row_pedestal_adu(frame.astype(np.float32) + 0.25).tolist() == [3.25, 7.75]


def test_counted_frames_calibrate_like_float_frames():
    """A skipper frame (0.16 e-, gain 1) as floats and rounded to int32: the same noise within
    the rounding, and the same signal pixels above threshold."""
    skipper = {"readout_noise_e": 0.16, "gain_adu_per_e": 1.0, "pedestal_row_drift_adu": 0.0}
    config = sim_config(**SPARSE, **{f"detector.{k}": v for k, v in skipper.items()})
    frames = sim_frames(config, 3)
    floats = np.stack([f.adu for f in frames]).astype(np.float32)
    counted = np.rint(floats).astype(np.int32)
    cfg = calib_config()
    run_f = calibrate.calibrate_run(floats, {"gain_adu_per_e": 1.0}, cfg, 3.75)
    run_i = calibrate.calibrate_run(counted, {"gain_adu_per_e": 1.0}, cfg, 3.75)
    for f, i in zip(run_f.frames, run_i.frames, strict=True):
        assert f.noise_e == pytest.approx(0.16, rel=0.05)
        assert 0.1 < i.noise_e < 0.3
    masked = run_f.hot_mask | run_i.hot_mask
    assert (run_f.hot_mask != run_i.hot_mask).mean() < 1e-3
    hit = (np.stack([f.signal_e for f in frames]) > 5) & ~masked
    for run, data in ((run_f, floats), (run_i, counted)):
        charges = np.stack([calibrate.frame_charge(d, run, k) for k, d in enumerate(data)])
        found = charges > 3 * np.array([c.noise_e for c in run.frames])[:, None, None]
        assert found[hit].mean() > 0.99


@pytest.mark.parametrize("n_frames", [3, 8, 9, 32])
def test_the_per_pixel_median_of_a_stack_is_numpys_exactly(n_frames):
    from pipeline.calibration.hot_pixels import _median_of_frames

    stack = np.random.default_rng(n_frames).normal(size=(n_frames, 40, 30)).astype(np.float32)
    stack[:, 3, 4] = np.nan if n_frames == 3 else stack[:, 3, 4]
    np.testing.assert_array_equal(_median_of_frames(stack), np.median(stack, axis=0))
