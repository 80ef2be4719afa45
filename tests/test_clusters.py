"""Cluster catalogue on hand-made maps: connectivity, charge, energy, centroid, spreads."""

import numpy as np
import pandas as pd
import pytest

from pipeline.results.clusters import COLUMNS, component_vote, frame_clusters, write_catalogue

CLASSES = ["background", "muon", "electron", "tritium", "xray", "alpha"]


def test_eight_connected_clusters_with_hand_computed_moments():
    labels = np.zeros((8, 10), np.uint8)
    charge = np.zeros((8, 10), np.float32)
    labels[1, 1], labels[2, 2] = 3, 3  # diagonal neighbours: one 8-connected tritium cluster
    charge[1, 1], charge[2, 2] = 300.0, 100.0
    labels[5, 6:9] = 4  # an X-ray cluster in a row
    charge[5, 6:9] = [100.0, 200.0, 100.0]
    probs = np.zeros((6, 8, 10), np.float32)
    probs[3, 1, 1], probs[3, 2, 2] = 0.9, 0.7
    probs[4, 5, 6:9] = 0.6
    table = frame_clusters(labels, charge, CLASSES, 3.75, frame=7, probabilities=probs, first_id=11)
    assert list(table.columns) == list(COLUMNS)
    assert table["cluster"].tolist() == [11, 12]
    tritium, xray = table.iloc[0], table.iloc[1]
    assert tritium["class_name"] == "tritium" and tritium["pixels"] == 2
    assert tritium["charge_e"] == pytest.approx(400.0)
    assert tritium["energy_kev"] == pytest.approx(1.5)  # 400 e- x 3.75 eV
    assert tritium["x"] == pytest.approx(1.25) and tritium["y"] == pytest.approx(1.25)
    assert tritium["sigma_x"] == pytest.approx(np.sqrt(0.75 * 0.25**2 + 0.25 * 0.75**2))
    assert tritium["probability"] == pytest.approx(0.8)
    assert xray["x"] == pytest.approx(7.0) and xray["y"] == pytest.approx(5.0)
    assert xray["sigma_x"] == pytest.approx(np.sqrt(0.5)) and xray["sigma_y"] == 0.0
    assert (table["frame"] == 7).all()


def test_negative_noise_pixels_do_not_pull_the_centroid():
    labels = np.zeros((5, 5), np.uint8)
    labels[2, 1:4] = 3
    charge = np.zeros((5, 5), np.float32)
    charge[2, 1:4] = [-5.0, 100.0, 100.0]
    row = frame_clusters(labels, charge, CLASSES, 3.75).iloc[0]
    assert row["x"] == pytest.approx(2.5) and row["charge_e"] == pytest.approx(195.0)


def test_empty_map_and_catalogue_files(tmp_path):
    table = frame_clusters(np.zeros((4, 4), np.uint8), np.zeros((4, 4)), CLASSES, 3.75)
    assert len(table) == 0 and list(table.columns) == list(COLUMNS)
    labels = np.zeros((4, 4), np.uint8)
    labels[1, 1] = 5
    full = frame_clusters(labels, np.ones((4, 4)), CLASSES, 3.75)
    parquet, csv = write_catalogue(full, tmp_path / "cat.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), full)
    assert pd.read_csv(csv)["class_name"].tolist() == ["alpha"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.csv", "cat.parquet"]


def test_fe55_catalogue_energy_peaks_at_5_9_kev():
    from pipeline.calibration import calibrate
    from pipeline.config import load_config
    from pipeline.simulation.simulate import make_detector, simulate_frame

    off = {f"sources.{s}.rate_per_frame": 0.0 for s in ("muon", "electron", "tritium", "alpha")}
    cfg = load_config(
        overrides={
            **off,
            "detector.height": 256,
            "detector.width": 256,
            "sources.xray.rate_per_frame": 60.0,
            "sources.xray.continuum_weight": 0.0,
            "sources.xray.lines": [{"energy_kev": 5.899, "weight": 1.0, "attenuation_um": 29.0}],
        }
    )
    detector = make_detector(cfg.detector)
    frames = [simulate_frame(cfg, detector, np.random.default_rng(s)) for s in range(4)]
    run = calibrate.calibrate_run(
        np.stack([f.adu for f in frames]), {"gain_adu_per_e": 5.0}, cfg.calibrate, 3.75
    )
    energies = np.concatenate(
        [
            frame_clusters(f.labels, calibrate.frame_charge(f.adu, run, i), CLASSES, 3.75, i)[
                "energy_kev"
            ].to_numpy()
            for i, f in enumerate(frames)
        ]
    )
    counts, edges = np.histogram(energies, bins=np.arange(4.0, 8.0, 0.05))
    peak = edges[np.argmax(counts)] + 0.025
    assert abs(peak - 5.899) < 0.2


def test_component_vote_gives_each_deposit_the_class_of_largest_summed_probability():
    probs = np.zeros((6, 8, 12), np.float32)
    probs[0] = 1.0
    # a track along row 2, columns 0-7: 5 pixels lean muon (0.6), 3 lean electron (0.9)
    probs[:, 2, :8] = 0
    probs[1, 2, :5], probs[2, 2, :5] = 0.6, 0.4
    probs[1, 2, 5:8], probs[2, 2, 5:8] = 0.1, 0.9
    # a separate, diagonal-touching pair of tritium pixels, far from the track
    for r, c in [(5, 10), (6, 11)]:
        probs[:, r, c] = 0
        probs[3, r, c] = 0.8
        probs[4, r, c] = 0.2
    labels = component_vote(probs)
    assert labels.dtype == np.uint8
    # most pixels lean muon, but the summed probability decides: electron 4.7 > muon 3.3
    assert (labels[2, :8] == 2).all()
    assert labels[5, 10] == labels[6, 11] == 3
    assert (labels == 0).sum() == 8 * 12 - 10
    # argmax alone would have split the track into a muon and an electron cluster
    assert set(np.unique(probs.argmax(axis=0)[2, :8])) == {1, 2}


def test_component_vote_of_an_empty_frame_is_background():
    probs = np.zeros((6, 4, 4), np.float32)
    probs[0] = 1
    assert (component_vote(probs) == 0).all()
