"""The readout's charge-transfer operator (pipeline/core/transfer.py): trails behind the charge
along the readout, charge kept but for what leaves the frame, and an exact inverse."""

import numpy as np
import pytest

from pipeline.core.transfer import restored, transferred


def test_a_point_trails_behind_itself_along_the_readout_only():
    charge = np.zeros((5, 20))
    charge[2, 5] = 1000.0
    read = transferred(charge, 0.1, 2.0, axis=1)
    assert read[2, 5] == pytest.approx(900.0)  # a tenth deferred
    assert read[2, :5].sum() == 0 and read[[0, 1, 3, 4]].sum() == 0  # nothing ahead or across
    trail = read[2, 6:]
    assert (np.diff(trail) < 0).all()  # exponential release ...
    assert trail[1] / trail[0] == pytest.approx(np.exp(-1 / 2.0))  # ... of mean length 2 px
    assert read.sum() == pytest.approx(1000.0, rel=1e-3)  # kept, but for the tail past the edge


@pytest.mark.parametrize("share", [0.003, 0.03, -0.05, 0.3])
@pytest.mark.parametrize("axis", [0, 1])
def test_restored_undoes_transferred_exactly(share, axis):
    charge = np.random.default_rng(1).exponential(100.0, (40, 50))
    if share < 0:  # a readout from the other end: trails toward lower indices
        read = np.flip(transferred(np.flip(charge, axis), -share, 3.0, axis), axis)
    else:
        read = transferred(charge, share, 3.0, axis)
    assert np.abs(read - charge).max() > 0.1
    np.testing.assert_allclose(restored(read, share, 3.0, axis), charge, atol=1e-9)
