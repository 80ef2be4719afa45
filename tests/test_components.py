"""Seeded clustering and charge moments, the one implementation the catalogue, the classical
reconstruction and the gain fit share: checked against hand-computed cases."""

import numpy as np
import pytest
from scipy import ndimage

from pipeline.core.components import EIGHT_CONNECTED, moments, seeded_components


def test_seeded_components_keep_clusters_with_a_seed_and_join_diagonals():
    image = np.zeros((6, 6))
    image[1, 1], image[2, 2] = 5.0, 2.0  # diagonal neighbours: one cluster, seeded
    image[4, 4] = 2.0  # above the neighbour threshold, no seed: dropped
    components, n = seeded_components(image, 1.0, 4.0)
    assert n == 1 and components[1, 1] == components[2, 2] == 1
    assert components[4, 4] == 0 and components.sum() == 2
    assert seeded_components(np.zeros((3, 3)), 1.0, 4.0)[1] == 0


def test_moments_match_the_definitions():
    charge = np.zeros((5, 7))
    charge[1, 2], charge[1, 3], charge[3, 5] = 1.0, 3.0, -2.0  # negative charge weighs nothing
    charge[3, 6] = 2.0
    components, n = ndimage.label(charge != 0, EIGHT_CONNECTED)
    m = moments(components, n, charge)
    assert m.pixels.tolist() == [2, 2] and m.charge.tolist() == [4.0, 0.0]
    assert m.x[0] == pytest.approx(2.75) and m.y[0] == pytest.approx(1.0)
    assert m.xx[0] == pytest.approx(1 * 3 / 16) and m.yy[0] == pytest.approx(0.0)
    assert m.x[1] == pytest.approx(6.0) and m.xx[1] == pytest.approx(0.0)
    np.testing.assert_allclose(m.extent(np.array([0.0, np.pi / 2])), [2.0, 1.0])
    np.testing.assert_allclose(m.total(np.ones(4)), [2.0, 2.0])
