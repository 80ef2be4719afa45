"""Physics of the simulator's sources and transport, checked by numbers."""

import numpy as np
import pytest
from scipy import special, stats

from pipeline.config import load_config
from pipeline.simulation import alphas, physics

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
    assert 4.0 < physics.electron_range_um(np.array([18.0]), PHYS)[0] < 4.2  # ICRU 37: 4.10 um
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
    from pipeline.simulation.electrons import csda_range_um, silicon

    assert depth_from_back.max() < csda_range_um(18.6, silicon(PHYS))  # 4.31 um: no further
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
    seg = alphas.alpha_segments(50, SRC.alpha, DET, np.random.default_rng(5))
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
        alphas.alpha_segments(n, SRC.alpha, DET, rng),
    ]
    for seg in parts:
        assert seg.start.shape == seg.end.shape == (len(seg.energy_kev), 3)
        assert set(np.unique(seg.event)) <= set(range(n))


# ---------------------------------------------------------------- electron tracks, by numbers

ELECTRON_MASS_KEV = 510.99895  # CODATA 2018
SLAB_UM = 1e6  # from its middle no electron below 2 MeV (CSDA range ~5 mm) reaches a surface


def _tracks(energy_kev, n, seed, direction=None):
    """n electrons of one energy from the middle of a thick slab: segments and steps (n, k, 3)."""
    rng = np.random.default_rng(seed)
    start = np.tile([[0.0, 0.0, SLAB_UM / 2]], (n, 1))
    if direction is None:
        direction = np.tile([[1.0, 0.0, 0.0]], (n, 1))
    energy = np.full(n, float(energy_kev))
    seg = physics.transport_electrons(start, direction, energy, PHYS, SLAB_UM, rng)
    k = PHYS.electron_steps
    assert np.array_equal(seg.event, np.repeat(np.arange(n), k))  # contained: every step kept
    return seg, (seg.end - seg.start).reshape(n, k, 3)


def _csda_range(energy_kev, z_over_a, i_ev):
    """CSDA range (g/cm2) and its inverse from the ICRU 37 collision stopping power of electrons,
    the formula ESTAR evaluates (Berger & Seltzer); from 1 keV, without radiative loss and density
    effect (each < 1% of the range below 1 MeV in Si)."""
    grid = np.geomspace(1.0, 3000.0, 4001)  # keV
    tau = grid / ELECTRON_MASS_KEV
    beta2 = 1 - 1 / (tau + 1) ** 2
    f_minus = 1 - beta2 + (tau**2 / 8 - (2 * tau + 1) * np.log(2)) / (tau + 1) ** 2
    log_term = np.log(tau**2 * (tau + 2) / (2 * (i_ev / 1000 / ELECTRON_MASS_KEV) ** 2))
    stopping = 153.537 * z_over_a / beta2 * (log_term + f_minus)  # keV cm2/g; 2 pi re^2 mc^2 NA
    inverse = 1 / stopping
    ranges = np.concatenate([[0.0], np.cumsum(np.diff(grid) * (inverse[1:] + inverse[:-1]) / 2)])
    return np.interp(energy_kev, grid, ranges), lambda r: np.interp(r, ranges, grid)


SI_Z_OVER_A, SI_I_EV, SI_G_CM3 = 14 / 28.0855, 173.0, 2.33  # ESTAR's silicon


def _highland_theta0(kinetic_kev, x_um):
    """PDG, Passage of particles through matter, eq. 34.16 (RPP 2020-2024), z = 1:
    theta0 = 13.6 MeV / (beta c p) sqrt(x/X0) [1 + 0.038 ln(x / (X0 beta^2))]."""
    total = kinetic_kev + ELECTRON_MASS_KEV
    pc_mev = np.sqrt(total**2 - ELECTRON_MASS_KEV**2) / 1000
    beta = 1000 * pc_mev / total
    t = x_um / PHYS.radiation_length_um
    return 13.6 / (beta * pc_mev) * np.sqrt(t) * (1 + 0.038 * np.log(t / beta**2))


def _walk_moments(energy_kev):
    """Mean depth <z>/R and rms end distance sqrt<r^2>/R of the Highland walk, from Highland alone.

    Each node deflects by a Rayleigh space angle of width theta0 (the node's energy, one step), so
    <cos> = 1 - sqrt(2) theta0 D(theta0 / sqrt 2) (D: Dawson) and <d_i . d_j> is the product of
    the <cos> in between (Lewis, Phys. Rev. 78, 526 (1950), for a discrete walk).
    """
    k = PHYS.electron_steps
    csda = physics.electron_range_um(np.array([energy_kev]), PHYS)[0]
    node_energy = physics.electron_energy_kev(csda * (1 - np.arange(1, k) / k), PHYS)
    theta0 = _highland_theta0(node_energy, csda / k)
    cos = 1 - np.sqrt(2) * theta0 * special.dawsn(theta0 / np.sqrt(2))
    memory = np.array([[np.prod(cos[min(i, j) : max(i, j)]) for j in range(k)] for i in range(k)])
    return memory[0].mean(), np.sqrt(memory.mean())


def test_electron_path_length_is_the_csda_range():
    for energy in (20.0, 100.0, 500.0, 2000.0):
        seg, steps = _tracks(energy, 200, 10)
        path = np.linalg.norm(steps, axis=2).sum(axis=1)
        # continuous slowing down: every electron travels its CSDA range and deposits all it has
        csda = physics.electron_range_um(np.array([energy]), PHYS)[0]
        np.testing.assert_allclose(path, csda, rtol=0.01)
        np.testing.assert_allclose(np.bincount(seg.event, seg.energy_kev), energy)


def test_csda_reference_reproduces_estar_for_water():
    # ESTAR, liquid water (I = 75 eV): CSDA range 1.431e-2 g/cm2 at 100 keV, 0.4367 g/cm2 at 1 MeV
    ranges, _ = _csda_range(np.array([100.0, 1000.0]), 10 / 18.0153, 75.0)
    np.testing.assert_allclose(ranges, [1.431e-2, 0.4367], rtol=0.01)


def test_electron_range_table_matches_estar_for_silicon():
    energies = np.array([100.0, 1000.0])
    estar_um, _ = _csda_range(energies, SI_Z_OVER_A, SI_I_EV)
    estar_um *= 1e4 / SI_G_CM3  # 78 um at 100 keV, 2.31 mm at 1 MeV
    # the Tabata-Andreo-Shinoda fit to ESTAR (NIM B 119 (1996) 463, within 1.5%): 78 um, 2.32 mm
    np.testing.assert_allclose(physics.electron_range_um(energies, PHYS), estar_um, rtol=0.03)


def test_electron_scattering_angle_per_step_is_highland():
    k = PHYS.electron_steps
    for energy in (100.0, 1000.0):
        _, steps = _tracks(energy, 20_000, 11)
        second = steps[:, 1] / np.linalg.norm(steps[:, 1], axis=1, keepdims=True)
        # angles between the first two segments (the first along x), projected on xy and xz
        projected = np.concatenate(
            [np.arctan2(second[:, 1], second[:, 0]), np.arctan2(second[:, 2], second[:, 0])]
        )
        space = np.arccos(np.clip(second[:, 0], -1, 1))
        csda = physics.electron_range_um(np.array([energy]), PHYS)[0]
        node_energy = physics.electron_energy_kev(np.array([csda * (k - 1) / k]), PHYS)[0]
        theta0 = _highland_theta0(node_energy, csda / k)  # 0.28 rad at 100 keV, 0.24 at 1 MeV
        # theta0 is the rms of the projected angle, theta_space_rms / sqrt(2) (PDG, same section);
        # the projection of a 0.25 rad cone is a few % wider than theta0 (tan > angle)
        assert np.sqrt(np.mean(projected**2)) == pytest.approx(theta0, rel=0.05)
        assert np.sqrt(np.mean(space**2) / 2) == pytest.approx(theta0, rel=0.02)


def test_electron_deposit_per_um_rises_toward_the_track_end():
    k, quarter = PHYS.electron_steps, PHYS.electron_steps // 4
    for energy, bragg in ((100.0, 2.83), (1000.0, 1.70)):
        seg, steps = _tracks(energy, 100, 12)
        per_um = (seg.energy_kev.reshape(-1, k) / np.linalg.norm(steps, axis=2)).mean(axis=0)
        quarters = per_um.reshape(4, quarter).mean(axis=1)
        assert (np.diff(quarters) > 0).all()  # below ~1 MeV dE/dx grows as the electron slows
        measured = quarters[-1] / quarters[0]
        # CSDA: the last quarter of the range deposits E(R/4), the first E0 - E(3R/4)
        csda = physics.electron_range_um(np.array([energy]), PHYS)[0]
        e_last, e_first = physics.electron_energy_kev(np.array([csda / 4, 3 * csda / 4]), PHYS)
        assert measured == pytest.approx(e_last / (energy - e_first), rel=0.01)
        # the same ratio from ESTAR's formula (ICRU 37 stopping power): 2.83 and 1.70
        estar_range, energy_at = _csda_range(energy, SI_Z_OVER_A, SI_I_EV)
        estar = energy_at(estar_range / 4) / (energy - energy_at(3 * estar_range / 4))
        assert estar == pytest.approx(bragg, abs=0.01)
        assert measured == pytest.approx(estar, rel=0.1)  # 3% and 7% above, from the table


def test_electron_deposit_per_um_rises_at_every_step():
    k = PHYS.electron_steps
    seg, steps = _tracks(1000.0, 10, 12)
    per_um = (seg.energy_kev.reshape(-1, k) / np.linalg.norm(steps, axis=2)).mean(axis=0)
    # the ICRU 37 stopping power of Si rises steadily as the energy falls from 1 MeV (to ~0.1 keV)
    assert (np.diff(per_um) > 0).all()


def test_electron_straightness_falls_with_decreasing_energy():
    straightness = []
    for energy in (100.0, 500.0, 1000.0, 2000.0):
        _, steps = _tracks(energy, 4000, 13)
        csda = physics.electron_range_um(np.array([energy]), PHYS)[0]
        end = steps.sum(axis=1)  # from the start point, um; the first step is along x
        depth, rms = _walk_moments(energy)
        assert end[:, 0].mean() / csda == pytest.approx(depth, rel=0.03)
        assert np.sqrt((end**2).sum(axis=1).mean()) / csda == pytest.approx(rms, rel=0.03)
        # |end - start| / path: between <z>/R (|r| >= z) and sqrt<r^2>/R (Jensen)
        straightness.append(np.linalg.norm(end, axis=1).mean() / csda)
        assert depth < straightness[-1] < rms
    # scattering per unit range grows as the energy falls: r_ex/r0 in Si is 0.64, 0.66, 0.68, 0.71
    # at 0.1, 0.5, 1, 2 MeV (Tabata, Andreo, Shinoda, NIM B 119 (1996) 463; their 2002 refit is
    # flat, 0.68, below 0.5 MeV), <z>/R from Lewis theory 0.33, 0.34, 0.37, 0.41 (test below);
    # the walk: 0.56, 0.58, 0.60, 0.63
    assert np.all(np.diff(straightness) > 0)


def test_electron_mean_penetration_matches_lewis_theory():
    # Lewis (1950): the mean depth along the initial direction after path s is the integral of
    # exp(-int ds / lambda_1), lambda_1 the transport mean free path, here from the screened
    # Rutherford cross section (Wentzel, Moliere's screening, Z(Z+1) for atomic electrons):
    # 1 / lambda_1 = n 2 pi Z(Z+1) re^2 (mc^2 / (beta pc))^2 [ln(1 + 1/A) - 1/(1 + A)],
    # A = (hbar c / (2 pc a))^2 (1.13 + 3.76 (alpha Z / beta)^2), a = 0.8853 a0 Z^(-1/3).
    z, atoms_per_um3 = 14, SI_G_CM3 * 6.02214e23 / 28.0855 * 1e-12
    re_um, a0_um, hbar_c_kev_um = 2.8179403e-9, 5.29177e-5, 1.97327e-4
    for energy in (100.0, 500.0, 1000.0, 2000.0):
        csda = physics.electron_range_um(np.array([energy]), PHYS)[0]
        path = np.linspace(0, csda, 4001)[:-1]
        kinetic = physics.electron_energy_kev(csda - path, PHYS)
        total = kinetic + ELECTRON_MASS_KEV
        pc = np.sqrt(total**2 - ELECTRON_MASS_KEV**2)
        beta = pc / total
        screening = (hbar_c_kev_um / (2 * pc * 0.8853 * a0_um * z ** (-1 / 3))) ** 2
        screening *= 1.13 + 3.76 * (z / 137.036 / beta) ** 2
        rutherford = 2 * np.pi * z * (z + 1) * re_um**2 * (ELECTRON_MASS_KEV / (beta * pc)) ** 2
        inverse_lambda = (
            atoms_per_um3 * rutherford * (np.log(1 + 1 / screening) - 1 / (1 + screening))
        )
        lewis = np.exp(-np.cumsum(inverse_lambda) * csda / 4000).mean()  # 0.33, 0.34, 0.37, 0.41
        _, steps = _tracks(energy, 4000, 14)
        measured = steps.sum(axis=1)[:, 0].mean() / csda  # 0.36, 0.39, 0.42, 0.47
        # the Gaussian Highland walk has no single-scattering tail, so it goes 10-14% deeper (the
        # Mott factor of McKinley-Feshbach would move Lewis by only 1-4%); 20% is the bound
        assert lewis < measured < 1.2 * lewis


def test_electron_extrapolated_range_matches_tabata():
    # Tabata, Moskvin, Andreo, Lazurik, Rogov, Rad. Phys. Chem. 64 (2002) 161, eqs. 8-14 and
    # table 2: r_ex / r0 for Z = 14, the tangent at the steepest point of the transmission curve
    b = [0.2946, 0.2740, 18.4, 3.457, 1.377, 6.59, 2.414, 1.094, 0.05242, 0.3709, 0.958, 2.02]
    b += [1.099, 0.2808, 0.2042]
    z, lz = 14.0, np.log(14.0)
    a1, a2 = b[0] * z ** b[1], b[2] * z ** (-b[3] + b[4] * lz)
    a3, a4 = b[5] * z ** (-b[6] + b[7] * lz), b[8] * z ** b[9]
    a5, a6 = b[10] * z ** (-b[11] + b[12] * lz), b[13] * z ** b[14]
    depth = np.linspace(0, 1, 401)  # slab thickness / CSDA range
    for energy in (100.0, 500.0, 1000.0, 2000.0):
        t0 = energy / ELECTRON_MASS_KEV
        tabata = 1 / (a1 + a2 / (1 + a3 / t0**a4 + a5 * t0**a6))
        # normal incidence on a slab from z = 0: transmitted if it gets to z = t before leaving
        n, rng = 4000, np.random.default_rng(15)
        start, direction = np.zeros((n, 3)), np.tile([[0.0, 0.0, 1.0]], (n, 1))
        seg = physics.transport_electrons(start, direction, np.full(n, energy), PHYS, SLAB_UM, rng)
        deepest = np.zeros(n)
        np.maximum.at(deepest, seg.event, seg.end[:, 2])
        deepest /= physics.electron_range_um(np.array([energy]), PHYS)[0]
        transmitted = (deepest[None, :] >= depth[:, None]).mean(axis=1)
        slope = (transmitted[20:] - transmitted[:-20]) / (depth[20:] - depth[:-20])
        steepest = np.argmin(slope) + 10
        extrapolated = depth[steepest] - transmitted[steepest] / slope[steepest - 10]
        # the fit is within 2% of its Monte Carlo; 8% leaves room for that Monte Carlo and the
        # tangent drawn on 4000 electrons (measured 0.67, 0.69, 0.71, 0.74; Tabata 0.68-0.73)
        assert extrapolated == pytest.approx(tabata, rel=0.08)


def test_one_mev_electron_size_on_the_pixel_plane():
    n, rng = 2000, np.random.default_rng(16)
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    _, steps = _tracks(1000.0, n, 17, direction)
    csda_px = physics.electron_range_um(np.array([1000.0]), PHYS)[0] / DET.pixel_size_um
    # isotropic: every step is isotropic, and the mean |projection on a plane| is pi/4 of a length
    path_xy = np.linalg.norm(steps[..., :2], axis=2).sum(axis=1).mean() / DET.pixel_size_um
    assert path_xy == pytest.approx(np.pi / 4 * csda_px, rel=0.02)  # 111 px (121 with ESTAR)
    extent_xy = np.linalg.norm(steps.sum(axis=1)[:, :2], axis=1).mean() / DET.pixel_size_um
    depth, rms = _walk_moments(1000.0)
    assert np.pi / 4 * depth * csda_px < extent_xy < np.pi / 4 * rms * csda_px  # 47-68 px
    assert 50 < extent_xy < 100  # a "worm" of some 65 px end to end


def test_the_back_layers_profile_and_dead_sub_layer():
    """Collection across the back layer rises as u^p from the dead sub-layer's edge; the mean
    over a piece is the integral of that profile (checked against a fine average)."""
    from pipeline.simulation import charge

    det = CFG.detector.model_copy(
        update={"backside_pcc_um": 1.0, "backside_pcc_shape": 2.0, "backside_dead_um": 0.1}
    )
    back = det.thickness_um
    depths = back - np.array([0.05, 0.1, 0.6, 1.1, 5.0])  # from the back surface
    assert charge.collection_efficiency(depths, det) == pytest.approx([0, 0, 0.25, 1, 1])
    z0, z1 = np.array([back - 0.05, back - 2.0]), np.array([back - 0.9, back - 0.3])
    fine = [
        charge.collection_efficiency(np.linspace(a, b, 200_001), det).mean()
        for a, b in zip(z0, z1, strict=True)
    ]
    assert charge._mean_collection(z0, z1, det) == pytest.approx(fine, rel=1e-4)
    step = det.model_copy(update={"backside_pcc_um": 0.0})  # a dead layer alone: a step
    assert charge._mean_collection(np.array([back]), np.array([back - 0.4]), step) == pytest.approx(
        [0.75]
    )


def test_compton_recoils_keep_their_energy_down_to_a_tenth_of_a_kev():
    """In silicon the recoil spectrum of environmental gammas is flat down to ~0.1 keV: the
    electron source keeps those recoils (once moved to the 30 keV low edge of the betas)."""
    cfg = CFG.sources.electron.model_copy(update={"compton_fraction": 1.0})
    det = CFG.detector.model_copy(update={"height": 256, "width": 256})
    seg = physics.electron_segments(4000, cfg, det, CFG.physics, np.random.default_rng(5))
    deposits = np.bincount(seg.event, seg.energy_kev, minlength=4000)
    contained = deposits[deposits > 0]
    assert (contained < 30.0).mean() > 0.02  # Klein-Nishina: ~3-5 % of recoils below 30 keV
    assert contained.min() < 5.0


def test_the_transport_scales_move_ranges_and_backscatter():
    """The systematics' transport terms: a stopping power x 1.05 shortens ranges by 1/1.05; an
    elastic cross-section x 1.15 shortens the elastic mean free path by the same factor."""
    from pipeline.simulation import electrons

    nominal = electrons.silicon(CFG.physics)
    scaled = electrons.silicon(
        CFG.physics.model_copy(update={"stopping_power_scale": 1.05, "elastic_scale": 1.15})
    )
    assert electrons.csda_range_um(10.0, scaled) == pytest.approx(
        electrons.csda_range_um(10.0, nominal) / 1.05, rel=1e-6
    )
    assert electrons.elastic_mean_free_path_um(10.0, scaled) == pytest.approx(
        electrons.elastic_mean_free_path_um(10.0, nominal) / 1.15
    )


def test_delta_rays_follow_the_pdg_rate_and_keep_each_muons_charge():
    from pipeline.simulation import delta_rays

    cfg = load_config()
    muon = cfg.sources.muon
    # (K/2)(Z/A) rho / T_min: 0.1784 MeV/cm / 0.02 MeV = 8.9 per cm above 20 keV
    assert delta_rays.rate_per_um(20.0, cfg.physics) * 1e4 == pytest.approx(8.9, rel=0.02)
    rng = np.random.default_rng(0)
    tracks = physics.muon_segments(400, muon, cfg.detector, cfg.physics, rng)
    with_deltas = delta_rays.add_delta_rays(tracks, muon, cfg.detector, cfg.physics, rng)
    before = np.bincount(tracks.event, tracks.energy_kev, minlength=400)
    after = np.bincount(with_deltas.event, with_deltas.energy_kev, minlength=400)
    assert len(with_deltas.event) > len(tracks.event)
    ratio = after / before  # carved out of the track, not added (some leave the silicon)
    assert ratio.max() < 1.5 and np.median(ratio) == pytest.approx(1.0, abs=1e-6)


def test_a_thick_alpha_source_gives_a_continuum_from_zero():
    cfg = load_config()
    thin = cfg.sources.alpha
    thick = thin.model_copy(update={"source": "thick"})
    rng = np.random.default_rng(0)
    e_thin = np.bincount(*_events(alphas.alpha_segments(2000, thin, cfg.detector, rng)))
    e_thick = np.bincount(*_events(alphas.alpha_segments(2000, thick, cfg.detector, rng)))
    assert e_thin.min() >= 4000 * 0.99
    assert (e_thick < 2000).mean() > 0.15 and e_thick.max() <= 8000


def _events(seg):
    return seg.event, seg.energy_kev
