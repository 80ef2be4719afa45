"""Physics of the simulator's sources and transport, checked by numbers."""

import numpy as np
import pytest
from scipy import stats

from pipeline import physics
from pipeline.config import load_config

CFG = load_config()
DET, PHYS, SRC = CFG.detector, CFG.physics, CFG.sources


def test_tritium_spectrum_mean_and_endpoint():
    energies = physics.sample_beta_energies(400_000, SRC.tritium, np.random.default_rng(0))
    # mean kinetic energy of the 3H beta spectrum: 5.69 keV (e.g. Katrin/PDG reviews)
    assert energies.mean() == pytest.approx(5.69, abs=0.03)
    assert energies.max() <= SRC.tritium.endpoint_kev
    assert energies.max() > 17.5  # the tail reaches the endpoint
    assert physics.beta_spectrum(np.array([SRC.tritium.endpoint_kev]), 18.591, 2)[0] == 0.0


def test_beta_spectrum_peaks_between_2_and_3_kev():
    grid = np.linspace(0.01, 18.5, 2000)
    peak = grid[np.argmax(physics.beta_spectrum(grid, 18.591, 2))]
    assert 2.3 < peak < 3.3  # the Fermi function pulls the maximum below 3 keV


def test_electron_range_matches_estar_at_tritium_endpoint():
    assert 3.0 < physics.electron_range_um(np.array([18.0]), PHYS)[0] < 4.0
    energies = np.array([2.0, 15.0, 300.0, 1500.0])
    back = physics.electron_energy_kev(physics.electron_range_um(energies, PHYS), PHYS)
    np.testing.assert_allclose(back, energies, rtol=1e-9)


def test_diffusion_formula_values():
    sigma = physics.diffusion_sigma_um(np.array([0.0, 300.0, 675.0]), PHYS)
    expected = np.sqrt(-216.2 * np.log(np.abs(1 - 8.86e-4 * np.array([0.0, 300.0, 675.0]))))
    np.testing.assert_allclose(sigma, expected)
    assert sigma[2] == pytest.approx(14.04, abs=0.01)  # ~0.94 pixel at the back surface


def test_tritium_betas_stay_within_their_range_of_the_back_surface():
    seg = physics.tritium_segments(5000, SRC.tritium, DET, PHYS, np.random.default_rng(1))
    depth_from_back = DET.thickness_um - np.concatenate([seg.start[:, 2], seg.end[:, 2]])
    assert depth_from_back.min() >= 0
    assert depth_from_back.max() < physics.electron_range_um(np.array([18.6]), PHYS)[0]
    deposited = np.bincount(seg.event, seg.energy_kev, minlength=5000)
    # some betas backscatter out of the back surface and deposit only part of their energy
    assert 0.6 < deposited.sum() / 5000 / 5.69 < 0.95


def test_electron_track_deposits_its_energy_when_contained():
    rng = np.random.default_rng(2)
    start = np.tile([[500.0, 500.0, DET.thickness_um / 2]], (200, 1))
    direction = np.tile([[1.0, 0.0, 0.0]], (200, 1))
    energy = np.full(200, 50.0)  # 21 um range: contained in the bulk
    seg = physics.transport_electrons(start, direction, energy, PHYS, DET.thickness_um, rng)
    np.testing.assert_allclose(np.bincount(seg.event, seg.energy_kev), 50.0)
    path = np.bincount(seg.event, np.linalg.norm(seg.end - seg.start, axis=1))
    np.testing.assert_allclose(path, physics.electron_range_um(np.array([50.0]), PHYS)[0])


def test_muon_most_probable_charge_per_um_and_zenith():
    rng = np.random.default_rng(3)
    seg = physics.muon_segments(5000, SRC.muon, DET, PHYS, rng)
    path = np.bincount(seg.event, np.linalg.norm(seg.end - seg.start, axis=1))
    pairs_per_um = np.bincount(seg.event, seg.energy_kev) * 1000 / PHYS.pair_energy_ev / path
    mpv, width = stats.moyal.fit(pairs_per_um)
    assert mpv == pytest.approx(80.0, rel=0.01)
    assert width == pytest.approx(4.75, rel=0.05)
    cos_zenith = DET.thickness_um / path  # every track crosses the full thickness
    assert cos_zenith.mean() == pytest.approx(0.80, abs=0.01)  # pdf(cos) ~ cos^3


def test_xray_lines_and_depths():
    energy, depth = physics.xray_energies_and_depths(
        100_000, SRC.xray, DET.thickness_um, np.random.default_rng(4)
    )
    fe55 = np.isclose(energy, 5.899)
    weights = np.array([line.weight for line in SRC.xray.lines] + [SRC.xray.continuum_weight])
    assert fe55.mean() == pytest.approx(weights[0] / weights.sum(), abs=0.01)
    # exponential conversion depth with the 5.9 keV attenuation length (29 um)
    assert depth[fe55].mean() == pytest.approx(29.0, rel=0.03)
    assert depth.max() <= DET.thickness_um


def test_alpha_ranges_and_bragg_peak():
    seg = physics.alpha_segments(50, SRC.alpha, DET, np.random.default_rng(5))
    length = np.bincount(seg.event, np.linalg.norm(seg.end - seg.start, axis=1))
    assert length.min() > 15.0 and length.max() < 50.0  # ~17 um at 4 MeV, ~48 um at 8 MeV
    per_step = seg.energy_kev.reshape(50, SRC.alpha.steps)
    assert (per_step[:, -1] > per_step[:, 0]).all()  # most energy at the end of the track
    total = per_step.sum(axis=1)
    assert total.min() >= 4000 and total.max() <= 8000


@pytest.mark.parametrize("n", [0, 1, 2])
def test_sources_handle_zero_one_and_few_events(n):
    rng = np.random.default_rng(6)
    parts = [
        physics.muon_segments(n, SRC.muon, DET, PHYS, rng),
        physics.electron_segments(n, SRC.electron, DET, PHYS, rng),
        physics.tritium_segments(n, SRC.tritium, DET, PHYS, rng),
        physics.xray_segments(n, SRC.xray, DET, rng),
        physics.alpha_segments(n, SRC.alpha, DET, rng),
    ]
    for seg in parts:
        assert seg.start.shape == seg.end.shape == (len(seg.energy_kev), 3)
        assert set(np.unique(seg.event)) <= set(range(n))
