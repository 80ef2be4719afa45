"""Pedestal jumps (pipeline/calibration/jumps.py): a row's baseline stepping part-way along it is
found where it steps, by how much, undone, and the pixels it raised called artefact; deposits at a
frame's edge, glow and masked pixels are not jumps."""

import h5py
import numpy as np
import pytest

from pipeline.calibration import jumps
from pipeline.config import load_config
from pipeline.evaluation.artefact_families import family_config
from pipeline.inference.classical import classical_file
from pipeline.inference.infer import infer_file
from pipeline.simulation.simulate import simulate_file

CFG = load_config().calibrate.jumps
NOISE_E = 2.0


def noise(shape=(64, 256), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, NOISE_E, shape)


def as_calibrated(charge: np.ndarray) -> np.ndarray:
    """Each row less its median, as the calibration's row pedestal takes it."""
    return charge - np.median(charge, axis=1, keepdims=True)


@pytest.mark.parametrize(("column", "size"), [(150, 20.0), (40, 6.0), (12, 30.0), (244, 40.0)])
def test_a_jump_is_found_where_and_by_how_much_it_steps_and_undone(column, size):
    charge = noise()
    charge[30, column:] += size
    found, restored = jumps.find(as_calibrated(charge), NOISE_E, CFG)
    assert len(found) == 1 and found[0].row == 30
    assert abs(found[0].column - column) <= 1
    assert found[0].size_e == pytest.approx(size, abs=1.5)
    assert abs(np.median(restored[30, column + 1 :])) < 1.0
    raised = jumps.raised(found, restored, 2 * NOISE_E)
    assert raised.sum(axis=1)[30] >= 256 - column - 1 and raised.sum() == raised[30].sum()


def test_a_clean_frame_a_glow_and_a_deposit_at_the_edge_are_not_jumps():
    charge = noise()
    rows, cols = np.indices(charge.shape)
    glow = 50.0 * np.exp(-np.hypot(rows, cols) / 60.0)  # the amplifier's, at the corner
    edge = np.zeros_like(charge)
    edge[20:28, 248:] = 3000.0  # a deposit cut by the frame's right edge, over 8 rows
    for extra in (0.0, glow, edge):
        found, restored = jumps.find(as_calibrated(charge + extra), NOISE_E, CFG)
        assert found == []
        np.testing.assert_array_equal(restored, as_calibrated(charge + extra))


def test_masked_pixels_read_zero_and_make_no_second_jump():
    charge = noise()
    charge[30, 150:] += 40.0
    calibrated = as_calibrated(charge)
    calibrated[:, :10] = 0.0  # masked by the calibration (an edge): 0, not the rows' level ...
    calibrated[:, 11] = 0.0
    calibrated[:, 10] = 9.0  # ... but for one bright pixel among them, in every row
    found, restored = jumps.find(calibrated, NOISE_E, CFG)
    assert [(j.row, abs(j.column - 150) <= 1) for j in found] == [(30, True)]
    assert (restored[:, :10] == 0).all()
    assert jumps.raised(found, restored, 2 * NOISE_E)[30, 151:].all()


@pytest.mark.parametrize("method", ["infer", "classical"])
def test_both_reconstructions_call_the_raised_pixels_artefact(tmp_path, method):
    config = family_config("pedestal_jumps", 256)
    path = simulate_file(config, tmp_path / "jumps.h5", 1, 7, progress=False)[0]
    mapped_by = infer_file if method == "infer" else classical_file
    result = mapped_by(config, path, tmp_path / "map.h5", progress=False)
    with h5py.File(path) as truth, h5py.File(result.output) as mapped:
        labels, predicted = truth["labels"][()], mapped["labels"][()]
    artefact = config.classes.index("artefact")
    true, called = labels == artefact, predicted == artefact
    assert (true & called).sum() / true.sum() > 0.9  # 0.996 with 2 frames (bench_artefacts)
    assert (true & called).sum() / called.sum() > 0.9


def test_a_bad_column_from_a_trap_is_found_bright_only_and_its_charge_taken_out():
    charge = noise((256, 64))
    charge[100:, 20] += 8.0  # bright from the trap's row to the far end
    charge[:, 40] += 3.0  # a hot column: bright all along, no step
    found, restored = jumps.trap_columns(charge, NOISE_E, CFG)
    assert [(j.row, abs(j.column - 100) <= 1) for j in found] == [(20, True)]
    assert found[0].size_e == pytest.approx(8.0, abs=1.0)
    assert abs(np.median(restored[101:, 20])) < 1.0
    made = jumps.raised(found, restored, 2 * NOISE_E, along_columns=True)
    assert made[101:, 20].all() and made.sum() == made[:, 20].sum()
    dark = noise((256, 64))
    dark[100:, 20] -= 8.0  # a column darker from a row on is no trap's charge
    assert jumps.trap_columns(dark, NOISE_E, CFG)[0] == []


def test_a_steep_track_reaching_the_frames_edge_is_no_trap_column():
    charge = noise((256, 64))
    charge[200:, 20] += np.random.default_rng(4).lognormal(np.log(300.0), 0.5, 56)
    assert jumps.trap_columns(charge, NOISE_E, CFG)[0] == []
