"""Readout artefacts and light in the simulator: each family's charge, where it lands, and its
truth label (artefact where it dominates a pixel, particles kept beside it)."""

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.config.artefacts import ArtefactsConfig
from pipeline.simulation import artefacts, light, simulate

CFG = load_config()
ART = CFG.artefacts.model_dump()
THRESHOLD = 4.0  # max(2 x 2 e- noise, 1 e-): the default detector's truth threshold


def config(readout: dict | None = None, light_cfg: dict | None = None) -> ArtefactsConfig:
    """The default (no artefacts) with some readout families or light switched on."""
    data = {**ART, "readout": {**ART["readout"]}, "light": {**ART["light"], **(light_cfg or {})}}
    for key, value in (readout or {}).items():
        base = data["readout"][key]
        data["readout"][key] = {**base, **value} if isinstance(value, dict) else value
    return ArtefactsConfig.model_validate(data)


def labelled(particles: np.ndarray, cfg: ArtefactsConfig, seed: int = 0):
    """(read charge, artefact charge, labels) of a frame holding `particles` (class 1 where > 0)."""
    read = artefacts.readout(particles, cfg, 12345, np.random.default_rng(seed))
    labels = np.where(particles > 0, 1, 0).astype(np.uint8)
    instances = labels.astype(np.int32)
    artefacts.relabel(labels, instances, read, particles, THRESHOLD, 6)
    return read, labels


def test_nothing_configured_reads_the_particles_as_they_are():
    particles = np.zeros((32, 32))
    particles[10, 10] = 500.0
    read = artefacts.readout(particles, CFG.artefacts, 1, np.random.default_rng(0))
    assert read.charge_e is particles and not read.artefact_e.any()


def test_cti_trails_follow_the_charge_along_the_readout_and_keep_it():
    particles = np.zeros((40, 40))
    particles[20, 5:8] = 20_000.0  # a bright track segment along a row
    cfg = config({"cti": {"serial": 0.02, "parallel": 0.0, "trail_px": 2.0}})
    read, labels = labelled(particles, cfg)
    assert read.charge_e.sum() == pytest.approx(
        particles.sum(), rel=1e-6
    )  # all but the tail past the edge
    trail = read.charge_e[20, 8:14]
    assert (np.diff(trail) < 0).all() and trail[0] > 100  # decaying behind the charge
    assert (labels[20, 8:11] == 6).all()  # the trail is artefact ...
    assert (labels[20, 5:8] == 1).all()  # ... the track stays a particle
    assert (labels[20, :5] == 0).all()  # nothing is deferred ahead of the charge


def test_serial_hits_are_one_row_streaks():
    cfg = config({"serial_hits": {"rate_per_frame": 5.0, "length_px": [20, 20]}})
    read, labels = labelled(np.zeros((64, 128)), cfg, seed=3)
    rows = np.unique(np.nonzero(labels == 6)[0])
    assert len(rows) >= 3
    for row in rows:
        assert 0 < (labels[row] == 6).sum() <= 20 * (read.artefact_e[row] > 0).sum()
    per_row = [(labels[r] == 6).sum() for r in rows]
    assert max(per_row) <= 40  # at most two streaks share a row here


def test_crosstalk_ghost_mirrors_the_other_amplifier():
    particles = np.zeros((16, 64))
    particles[5, 3] = 30_000.0  # amplifier 0 reads column 3 when amplifier 1 reads 63 - 3
    cfg = config({"crosstalk": {"amplifiers": 2, "coefficient": 1e-3}})
    read, labels = labelled(particles, cfg)
    assert read.charge_e[5, 60] == pytest.approx(30.0)
    assert labels[5, 60] == 6 and labels[5, 3] == 1
    assert np.count_nonzero(read.artefact_e) == 1


def test_amplifier_glow_is_labelled_near_the_corner_only():
    cfg = config({"glow": {"amplifier_e": 200.0, "amplifier_scale_px": 5.0}})
    _, labels = labelled(np.zeros((64, 64)), cfg)
    assert (labels[:3, :3] == 6).all()
    assert not (labels[30:, 30:] == 6).any()


def test_spurious_charge_is_background_like_dark_current():
    cfg = config({"spurious_charge_e": 0.5})
    read, labels = labelled(np.zeros((64, 64)), cfg)
    assert read.charge_e.sum() > 1000 and not (labels == 6).any()


def test_pedestal_jump_runs_to_the_end_of_its_row():
    cfg = config({"baseline": {"jumps_per_frame": 1.0, "jump_e": [20.0, 20.0]}})
    for seed in range(20):
        _, labels = labelled(np.zeros((32, 48)), cfg, seed)
        if (labels == 6).any():
            break
    rows, cols = np.nonzero(labels == 6)
    assert len(set(rows)) == 1 and cols.max() == 47 and np.all(np.diff(cols) == 1)


def test_trap_column_is_bright_from_the_trap_away_from_the_readout():
    cfg = config({"trap_columns": {"number": 1, "e_per_px": [50.0, 50.0]}})
    _, labels = labelled(np.zeros((64, 32)), cfg)
    column = np.nonzero((labels == 6).sum(axis=0))[0]
    assert len(column) == 1
    rows = np.nonzero(labels[:, column[0]] == 6)[0]
    assert rows.max() == 63 and len(rows) == 64 - rows.min()


def test_horizontal_bleed_spills_past_the_serial_well_along_the_row():
    particles = np.zeros((16, 32))
    particles[8, 16] = 50_000.0
    cfg = config({"serial_full_well_e": 10_000.0})
    read, labels = labelled(particles, cfg)
    assert read.charge_e.max() <= 10_000.0 + 1e-6
    assert read.charge_e[8].sum() == pytest.approx(50_000.0)  # along its row only
    assert (labels[8, 14:19] == 6).sum() == 4 and labels[8, 16] == 1


def test_adc_saturation_clips_the_raw_frame():
    det = CFG.detector.model_copy(update={"height": 8, "width": 8})
    detector = simulate.make_detector(det)
    signal = np.full((8, 8), 1e5)
    raw = simulate.raw_frame(signal, detector, det, np.random.default_rng(0), adc_max_adu=4000.0)
    assert raw.max() == 4000.0


def test_a_moffat_star_holds_its_charge_and_stars_are_artefact():
    star = light.moffat_star((64, 64), 30.0, 30.0, 3.0, 1e4)
    assert star.sum() == pytest.approx(1e4, rel=0.03)  # the wings beyond 4 FWHM: ~1 %
    cfg = config(light_cfg={"stars_per_frame": 3.0, "star_e": [1e4, 1e4]})
    _, labels = labelled(np.zeros((64, 64)), cfg, seed=1)
    assert (labels == 6).sum() > 20


def test_trace_and_sky_lines_cross_the_whole_frame():
    cfg = config(light_cfg={"traces_per_frame": 1.0, "sky_lines_per_frame": 1.0})
    for seed in range(10):
        mean = light.render((48, 64), cfg.light, np.random.default_rng(seed))
        if mean.max() > 0:
            break
    bright = mean > 0.5 * THRESHOLD
    assert bright.any(axis=0).all() or bright.any(axis=1).all()


def test_a_simulated_frame_labels_artefacts_and_keeps_its_particles():
    overrides = dict(CFG.simulate.datasets["suite_artefacts"].overrides)
    cfg = load_config(overrides={**overrides, "detector.height": 256, "detector.width": 256})
    plain = load_config(overrides={"detector.height": 256, "detector.width": 256})
    frame = simulate.simulate_frame(
        cfg, simulate.make_detector(cfg.detector), np.random.default_rng(5)
    )
    clean = simulate.simulate_frame(
        plain, simulate.make_detector(plain.detector), np.random.default_rng(5)
    )
    assert (frame.labels == 6).sum() > 100
    events = np.unique(
        clean.instances[(clean.labels > 0) & (clean.labels < 5)]
    )  # alphas' rate differs
    kept = np.array([(frame.instances[clean.instances == i] == i).mean() for i in events])
    assert len(events) > 30 and (kept > 0.5).mean() > 0.85  # under glow or a star a few are lost
