"""The ceiling: trees trained on frames simulated like a file (its recorded simulator config)
classify its clusters as the truth does, far above chance; a file that was not simulated is
refused in one line; the truth of a cluster is the class holding most of its charge."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pipeline.commands import settings_of
from pipeline.config import ConfigError, load_config
from pipeline.inference import ceiling
from pipeline.io import open_frames
from pipeline.io.mapfile import open_map
from pipeline.simulation.simulate import simulate_file

SMALL = {
    "detector.height": 256,
    "detector.width": 256,
    "sources.tritium.rate_per_frame": 25.0,
    "sources.xray.rate_per_frame": 25.0,
    "sources.muon.rate_per_frame": 3.0,
    "sources.electron.rate_per_frame": 3.0,
    "sources.alpha.rate_per_frame": 1.0,
    "ceiling.frames": 6,
    "ceiling.max_iter": 60,
    "tracking.enabled": False,
}


def test_truth_of_a_cluster_is_the_class_with_most_of_its_charge():
    components = np.array([[1, 1, 0, 2]])
    labels = np.array([[3, 4, 0, 0]])
    charge = np.array([[10.0, 50.0, 0.0, 7.0]], dtype=np.float32)
    np.testing.assert_array_equal(ceiling.truth_of(components, 2, labels, charge, 6), [4, 0])


def test_the_ceiling_classifies_clusters_as_the_truth_does(tmp_path):
    config = load_config(overrides=SMALL)
    path = simulate_file(config, tmp_path / "sim.h5", 3, seed=41, progress=False)[0]
    out = tmp_path / "sim.ceiling.h5"
    ceiling.ceiling_file(settings_of(config, "ceiling"), path, out, progress=False)
    simulated, seed = ceiling.simulated_config(path, settings_of(config, "ceiling"))
    assert seed == 41 and simulated.detector.height == 256
    right = total = 0
    with (
        open_frames(path, config.io, config.classes) as truth,
        open_map(out, config.io, config.classes) as pred,
    ):
        for i in range(truth.shape[0]):
            labels, mapped = np.asarray(truth.labels[i]), np.asarray(pred.labels[i])
            called = (mapped > 0) & (
                labels > 0
            )  # edges of a cluster below the truth's threshold aside
            right += int((mapped[called] == labels[called]).sum())
            total += int(called.sum())
    assert total > 500
    # chance over five classes is 0.2; on this detector a back-surface X-ray and a tritium beta
    # differ only in energy, and six frames hold six alphas: the trees reach ~0.8
    assert right / total > 0.7


def test_a_file_that_was_not_simulated_has_no_ceiling(tmp_path):
    config = load_config(overrides=SMALL)
    path = simulate_file(config, tmp_path / "sim.h5", 1, seed=3, progress=False)[0]
    with h5py.File(path, "a") as f:
        del f.attrs["simulator_config"]
    with pytest.raises(ConfigError, match=r"simulator_config.*not simulated"):
        ceiling.ceiling_file(
            settings_of(config, "ceiling"), path, tmp_path / "m.h5", progress=False
        )
    assert not (tmp_path / "m.h5").exists()
