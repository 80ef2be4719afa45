"""CTI measured on a file's own deposits (pipeline/calibration/cti.py): the share a simulated
detector was given is found within its error and undone, its trails are called artefact, and a
clean detector's frames are left exactly as they are."""

import h5py
import numpy as np
import pytest

from pipeline.calibration import cti
from pipeline.config import load_config
from pipeline.evaluation.artefact_families import PARTICLES
from pipeline.inference.infer import infer_file
from pipeline.simulation.simulate import simulate_file

SIZE = 256
CTI_SET = {"artefacts.readout.cti.serial": 0.03, "artefacts.readout.cti.parallel": 0.02}


def simulated(tmp_path, overrides: dict, name: str, seed: int = 3):
    config = load_config(
        overrides={
            "detector.height": SIZE,
            "detector.width": SIZE,
            **PARTICLES,
            **overrides,
            "tracking.enabled": False,
        }
    )
    path = tmp_path / f"{name}.h5"
    simulate_file(config, path, 2, seed, progress=False)
    return config, path


@pytest.fixture(scope="module")
def with_cti(tmp_path_factory):
    return simulated(tmp_path_factory.mktemp("cti"), CTI_SET, "cti", seed=4)


def test_the_share_a_detector_was_given_is_measured_and_undone(with_cti):
    config, path = with_cti
    found = cti.measure_file(path, config, config.calibrate.cti)
    # within 0.005 (the estimator's scatter over seeds is larger than its stated error)
    assert found.serial.share == pytest.approx(0.03, abs=0.005)
    assert found.parallel.share == pytest.approx(0.02, abs=0.005)
    assert found.counts(found.serial) and found.counts(found.parallel)
    assert found.serial.runs >= config.calibrate.cti.min_runs
    assert "serial 0.0" in found.describe() and "undone" in found.attrs()["cti_serial"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_clean_detector_is_left_as_it_is(tmp_path, seed):
    config, path = simulated(tmp_path, {}, "clean", seed)
    found = cti.measure_file(path, config, config.calibrate.cti)
    assert abs(found.serial.share) < 3 * found.serial.error
    assert abs(found.parallel.share) < 3 * found.parallel.error
    assert not found.corrects
    charge = np.random.default_rng(0).exponential(10.0, (8, 8))
    assert cti.correct(charge, found) is charge


def test_the_trail_a_point_leaves_is_what_transfer_moved_into_it():
    charge = np.zeros((1, 12))
    charge[0, 3] = 2000.0
    read = charge.copy()
    read[0, 3], read[0, 4:7] = 1900.0, [60.0, 25.0, 10.0]
    before = np.zeros_like(read)
    before[0, 3] = 1995.0
    moved = cti.trails(read, before, threshold_e=4.0)
    assert moved[0].tolist() == [False] * 4 + [True] * 3 + [False] * 5


def test_infer_calls_the_trails_artefact_and_keeps_the_particles(with_cti, tmp_path):
    config, path = with_cti
    result = infer_file(config, path, tmp_path / "map.h5", progress=False)
    assert "CTI measured: serial 0.0" in str(result)
    with h5py.File(path) as truth, h5py.File(result.output) as mapped:
        labels, predicted = truth["labels"][()], mapped["labels"][()]
        assert "undone" in mapped.attrs["cti_serial"]
    artefact = config.classes.index("artefact")
    true_trail, called = labels == artefact, predicted == artefact
    assert (true_trail & called).sum() / true_trail.sum() > 0.7  # recall (0.88 when measured)
    assert (true_trail & called).sum() / called.sum() > 0.9  # precision (0.99)
    particles = (labels > 0) & (labels != artefact)
    assert ((predicted > 0) & (predicted != artefact))[particles].mean() > 0.9
