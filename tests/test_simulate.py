"""The frame simulator: charge, diffusion, truth convention, detector effects, determinism."""

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.io import open_frames
from pipeline.simulation import charge as charge_transport
from pipeline.simulation import physics, simulate

CFG = load_config()
PHYS = CFG.physics


def small_config(**overrides):
    base = {"detector.height": 128, "detector.width": 160}
    return load_config(overrides={**base, **overrides})


def point_segments(xy_um: np.ndarray, depth_um: float, energy_kev: float) -> physics.Segments:
    n = len(xy_um)
    points = np.column_stack([xy_um, np.full(n, depth_um)])
    return physics.Segments(
        points, points.copy(), np.full(n, energy_kev), np.arange(n), np.zeros(n)
    )


def test_fe55_line_at_1573_electrons_with_fano_width():
    pairs = charge_transport.pair_counts(np.full(50_000, 5.899), PHYS, np.random.default_rng(0))
    assert pairs.mean() == pytest.approx(5899 / 3.75, abs=0.3)  # 1573.1 e-
    assert pairs.std() == pytest.approx(np.sqrt(0.128 * 5899 / 3.75), rel=0.03)  # 14.2 e-


@pytest.mark.parametrize("depth_um", [300.0, 670.0])
def test_measured_spread_of_point_charges_matches_diffusion_formula(depth_um):
    det = small_config(**{"detector.height": 400, "detector.width": 400}).detector
    rng = np.random.default_rng(1)
    n = 1500
    xy = rng.uniform(40 * det.pixel_size_um, 360 * det.pixel_size_um, (n, 2))
    seg = point_segments(xy, depth_um, 5.899)
    event, pixel, charge = charge_transport.collect(seg, det, PHYS, rng)
    col = (pixel % det.width).astype(float)
    total = np.bincount(event, charge, minlength=n)
    mean = np.bincount(event, charge * col, minlength=n) / total
    var = np.bincount(event, charge * (col - mean[event]) ** 2, minlength=n) / total
    # binning a point at a uniform random offset in its pixel adds pitch^2/12 (Sheppard)
    measured = np.sqrt(var.mean() - 1 / 12) * det.pixel_size_um
    expected = physics.diffusion_sigma_um(np.array([depth_um]), PHYS)[0]
    assert measured == pytest.approx(expected, rel=0.03)


def _moments(event, pixel, charge, width, n):
    """Per event: total charge, and the charge-weighted column and row variance (pixels^2)."""
    total = np.bincount(event, charge, minlength=n)
    out = [total]
    for coord in (pixel % width, pixel // width):
        mean = np.bincount(event, charge * coord, minlength=n) / total
        out.append(np.bincount(event, charge * (coord - mean[event]) ** 2, minlength=n) / total)
    return out


def test_dense_segments_followed_in_pieces_match_carrier_by_carrier(monkeypatch):
    """Alpha-like tracks (15 um long, 60k pairs, 10 um plasma, ending in the back layer) give the
    same collected charge and charge spread whether carriers are followed one by one or by
    1-um pieces shared multinomially over pixels."""
    det = small_config(**{"detector.backside_pcc_um": 3.0}).detector
    rng = np.random.default_rng(4)
    n = 200
    start = np.column_stack(
        [rng.uniform(40, 120, (n, 2)) * det.pixel_size_um, np.full(n, det.thickness_um)]
    )
    end = start + np.array([9.0, -6.0, -12.0]) * (15 / np.sqrt(261))
    seg = physics.Segments(start, end, np.full(n, 225.0), np.arange(n), np.full(n, 10.0))
    results = {}
    for name, threshold in (("carriers", 10**12), ("pieces", 1)):
        monkeypatch.setattr(charge_transport, "DENSE_PAIRS_PER_PIECE", threshold)
        results[name] = _moments(*charge_transport.collect(seg, det, PHYS, rng), det.width, n)
    (tot_c, col_c, row_c), (tot_p, col_p, row_p) = results["carriers"], results["pieces"]
    assert tot_p.mean() == pytest.approx(tot_c.mean(), rel=2e-3)  # ~0.9 of 60k pairs kept
    assert tot_p.std() == pytest.approx(tot_c.std(), rel=0.2)
    assert col_p.mean() == pytest.approx(col_c.mean(), rel=0.02)
    assert row_p.mean() == pytest.approx(row_c.mean(), rel=0.02)


def test_pieces_spread_in_chunks_keep_every_electron(monkeypatch):
    """Spreading one piece at a time (bounded memory) loses and duplicates nothing."""
    det = small_config(**{"detector.backside_pcc_um": 0.0}).detector
    rng = np.random.default_rng(5)
    xy = rng.uniform(30 * det.pixel_size_um, 90 * det.pixel_size_um, (50, 2))
    seg = point_segments(xy, 600.0, 20.0)  # 5333 pairs each: dense
    expected = charge_transport.pair_counts(seg.energy_kev, PHYS, np.random.default_rng(8))
    monkeypatch.setattr(charge_transport, "CELLS_PER_CHUNK", 1)
    event, pixel, charge = charge_transport.collect(seg, det, PHYS, np.random.default_rng(8))
    np.testing.assert_array_equal(np.bincount(event, charge, minlength=50), expected)
    assert len(np.unique(event * det.height * det.width + pixel)) == len(pixel)


def test_charge_is_conserved_from_pairs_to_pixels():
    det = small_config(**{"detector.backside_pcc_um": 0.0}).detector
    rng = np.random.default_rng(2)
    xy = rng.uniform(30 * det.pixel_size_um, 90 * det.pixel_size_um, (300, 2))
    seg = point_segments(xy, 600.0, 6.49)
    expected = charge_transport.pair_counts(seg.energy_kev, PHYS, np.random.default_rng(7)).sum()
    _, _, charge = charge_transport.collect(seg, det, PHYS, np.random.default_rng(7))
    assert charge.sum() == expected


def test_back_layer_collects_only_part_of_the_charge():
    det = small_config().detector
    xy = np.full((2000, 2), 60 * det.pixel_size_um)
    seg = point_segments(xy, det.thickness_um - det.backside_pcc_um / 4, 5.899)
    _, _, charge = charge_transport.collect(seg, det, PHYS, np.random.default_rng(3))
    assert charge.sum() / 2000 == pytest.approx(0.25 * 5899 / 3.75, rel=0.03)


def test_blooming_conserves_charge_and_spills_along_the_column():
    image = np.zeros((40, 20))
    image[20, 10] = 10.5e4
    bloomed = simulate.bloom(image, 2e4)
    assert bloomed.sum() == pytest.approx(image.sum(), rel=1e-6)
    assert bloomed.max() <= 2e4 + 1e-6
    assert (bloomed[:, :10] == 0).all() and (bloomed[:, 11:] == 0).all()
    np.testing.assert_allclose(bloomed[19:22, 10], 2e4, rtol=1e-5)  # a saturated streak


def test_truth_labelling_convention_on_hand_made_deposits():
    cfg = small_config(
        **{"detector.height": 1, "detector.width": 6, "detector.readout_noise_e": 2.0}
    )
    muon, xray, tritium = (CFG.classes.index(c) for c in ("muon", "xray", "tritium"))
    #              pixel: 0 muon>xray, 1 xray 3e<4e, 2 xray 4e beats two tritium 3e+2e, 3 tritium 3e
    event = np.array([0, 1, 1, 1, 2, 3, 2])
    pixel = np.array([0, 0, 1, 2, 2, 2, 3])
    charge = np.array([10.0, 5.0, 3.0, 4.0, 3.0, 2.0, 3.0])
    event_class = np.array([muon, xray, tritium, tritium])
    event_id = np.array([11, 12, 13, 14])
    labels, instances = simulate.truth_maps(
        event, pixel, charge, event_class, event_id, cfg.detector, cfg.physics
    )
    assert labels.ravel().tolist() == [muon, 0, xray, 0, 0, 0]
    assert instances.ravel().tolist() == [11, 0, 12, 0, 0, 0]
    quiet = small_config(
        **{"detector.height": 1, "detector.width": 6, "detector.readout_noise_e": 0.2}
    )
    labels, _ = simulate.truth_maps(
        np.array([0]),
        np.array([5]),
        np.array([1.0]),
        event_class,
        event_id,
        quiet.detector,
        quiet.physics,
    )
    assert labels[0, 5] == muon  # threshold is max(2 x 0.2 e-, 1 e-) = 1 e-


def test_frame_truth_is_consistent_with_signal_and_events():
    cfg = small_config()
    frame = simulate.simulate_frame(
        cfg, simulate.make_detector(cfg.detector), np.random.default_rng(4)
    )
    labelled = frame.labels > 0
    assert (frame.signal_e[labelled] >= 4.0).all()  # 2 x 2 e- noise
    assert ((frame.instances > 0) == labelled).all()
    events = frame.events
    for instance in np.unique(frame.instances[labelled]):
        row = np.nonzero(events["instance"] == instance)[0]
        assert len(row) == 1
        assert (frame.labels[frame.instances == instance] == events["class"][row[0]]).all()
    assert frame.signal_e.max() <= cfg.detector.full_well_e + 1e-6


def test_raw_frame_has_gain_pedestal_and_noise():
    cfg = small_config(
        **{
            "sources.muon.rate_per_frame": 0,
            "sources.electron.rate_per_frame": 0,
            "sources.tritium.rate_per_frame": 0,
            "sources.xray.rate_per_frame": 0,
            "sources.alpha.rate_per_frame": 0,
            "detector.hot_pixel_fraction": 0,
            "detector.hot_columns": 0,
            "detector.pedestal_row_drift_adu": 0.0,
        }
    )
    det = cfg.detector
    frame = simulate.simulate_frame(cfg, simulate.make_detector(det), np.random.default_rng(5))
    electrons = (frame.adu - det.pedestal_adu) / det.gain_adu_per_e
    assert electrons.mean() == pytest.approx(det.dark_current_e, abs=0.03)
    assert electrons.std() == pytest.approx(
        np.sqrt(det.readout_noise_e**2 + det.dark_current_e), rel=0.03
    )
    assert (frame.labels == 0).all()


def test_hot_pixels_and_columns_are_fixed_for_the_detector():
    cfg = small_config(**{"detector.hot_pixel_fraction": 0.01, "detector.hot_columns": 2})
    a, b = simulate.make_detector(cfg.detector), simulate.make_detector(cfg.detector)
    np.testing.assert_array_equal(a.hot_pixels, b.hot_pixels)
    np.testing.assert_array_equal(a.hot_columns, b.hot_columns)
    frames = [simulate.simulate_frame(cfg, a, np.random.default_rng(s)) for s in range(3)]
    mean_adu = np.mean([f.adu for f in frames], axis=0)
    column_mean = np.median(mean_adu, axis=0)
    assert set(np.argsort(column_mean)[-2:]) == set(a.hot_columns.tolist())
    # a hot column's charge is never signal: its pixels are labelled only where a track crosses
    assert np.mean([(f.labels[:, a.hot_columns] == 0).mean() for f in frames]) > 0.9


def test_simulated_file_holds_all_classes_and_is_bit_identical(tmp_path):
    cfg = small_config(**{"sources.alpha.rate_per_frame": 3.0})
    first = simulate.simulate_file(cfg, tmp_path / "a.h5", 2, seed=3, root=True, progress=False)
    second = simulate.simulate_file(cfg, tmp_path / "b.h5", 2, seed=3, progress=False)
    other = simulate.simulate_file(cfg, tmp_path / "c.h5", 2, seed=4, progress=False)
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[0].read_bytes() != other[0].read_bytes()
    with (
        open_frames(first[0], cfg.io, cfg.classes) as h5,
        open_frames(first[1], cfg.io, cfg.classes) as root,
    ):
        assert set(np.unique(h5.labels.compute())) == set(range(6))
        np.testing.assert_array_equal(h5.frames.compute(), root.frames.compute())
        np.testing.assert_array_equal(h5.labels.compute(), root.labels.compute())
        ids = h5.events["instance"]
        assert len(np.unique(ids)) == len(ids)  # unique within the file, across frames
        assert set(np.unique(h5.instances.compute())) - {0} <= set(ids.tolist())
        assert h5.attrs["gain_adu_per_e"] == cfg.detector.gain_adu_per_e


def test_failed_simulation_leaves_no_file(tmp_path, monkeypatch):
    cfg = small_config()

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(simulate, "raw_frame", boom)
    with pytest.raises(RuntimeError):
        simulate.simulate_file(cfg, tmp_path / "x.h5", 2, seed=1, root=True, progress=False)
    assert list(tmp_path.iterdir()) == []
