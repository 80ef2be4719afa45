"""keV electrons in matter, against published numbers: CSDA ranges of silicon (ICRU Report 37 /
NIST ESTAR), backscatter coefficients of silicon at normal incidence (Hunger and Kuechler's fit
to the measurements, Phys. Stat. Sol. (a) 56 (1979) K45), and the tritium source's geometry:
a thin deposit sends half its betas into the CCD, a thick layer those of its first fraction of
a range, with a harder spectrum than emitted."""

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.simulation import electrons, physics

CONFIG = load_config()
SILICON = electrons.silicon(CONFIG.physics)
THICK = 50.0  # um of silicon: thicker than any keV electron's range


@pytest.mark.parametrize("energy_kev, published_um", [(10.0, 1.46), (18.6, 4.30), (20.0, 4.88)])
def test_silicon_csda_ranges_are_icru_37s(energy_kev, published_um):
    """ICRU 37 / ESTAR CSDA ranges of silicon (1.46 / 4.30 / 4.88 um), within 3 %."""
    assert electrons.csda_range_um(energy_kev, SILICON) == pytest.approx(published_um, rel=0.03)


def test_the_range_grows_as_a_power_of_the_energy_from_1_to_100_kev():
    """Between 1 and 100 keV the range grows as about E^1.7 (the Kanaya-Okayama exponent 5/3),
    never faster than E^2 nor slower than E^1.3."""
    energies = np.geomspace(1.0, 100.0, 12)
    exponents = np.diff(np.log(electrons.csda_range_um(energies, SILICON))) / np.diff(
        np.log(energies)
    )
    assert (exponents > 1.3).all() and (exponents < 2.0).all()


def _hunger_kuechler(z: float, energy_kev: float) -> float:
    log_z = np.log(z)
    m = 0.1382 - 0.9211 / np.sqrt(z)
    c = 0.1904 - 0.2236 * log_z + 0.1292 * log_z**2 - 0.01491 * log_z**3
    return float(energy_kev**m * c)


@pytest.mark.parametrize("energy_kev", [5.0, pytest.param(15.0, marks=pytest.mark.slow), 30.0])
def test_silicon_backscatters_as_measured_at_normal_incidence(energy_kev):
    """eta of silicon at normal incidence: 0.19 / 0.17 / 0.16 at 5 / 15 / 30 keV (Hunger and
    Kuechler's fit to the measurements), within 10 % (6000 electrons: +-3 %)."""
    n = 6000
    start = np.tile([[0.0, 0.0, THICK]], (n, 1))
    down = np.tile([[0.0, 0.0, -1.0]], (n, 1))
    slab = (electrons.Slab(0.0, THICK, SILICON, active=True),)
    paths = electrons.single_scattering(
        start, down, np.full(n, energy_kev), slab, np.random.default_rng(7)
    )
    expected = _hunger_kuechler(14.0, energy_kev)
    assert paths.escaped_up.mean() == pytest.approx(expected, rel=0.10)
    deposited = np.bincount(paths.electron, paths.energy_kev, minlength=n)
    assert deposited.sum() / n < energy_kev  # what backscatters carries energy away
    assert np.allclose(deposited[~paths.escaped_up], energy_kev)  # the rest stops inside


def _tritium(sample: dict, n: int = 12000) -> tuple[np.ndarray, object]:
    overrides = {f"sources.tritium.sample.{key}": value for key, value in sample.items()}
    config = load_config(overrides=overrides)
    seg = physics.tritium_segments(
        n, config.sources.tritium, config.detector, config.physics, np.random.default_rng(9)
    )
    return np.bincount(seg.event, seg.energy_kev, minlength=n) > 0, config.sources.tritium


def test_a_thin_deposit_sends_half_its_betas_into_the_ccd():
    """Isotropic emission from a 10 nm deposit: half the betas head for the CCD, less the
    slowest (below 0.5 keV, about 2 %, stopped where they are born) and the few that scattering
    in the layer turns back."""
    reached, _ = _tritium({"kind": "layer", "thickness_um": 0.01})
    assert 0.45 < reached.mean() < 0.50


def test_a_thick_layer_sends_the_betas_of_its_escape_depth_with_a_harder_spectrum():
    """1 mm of dry soil (1.5 g/cm3): the decays that reach the CCD are those of an escape
    thickness below the straight-line limit of a quarter of the mean range (scattering makes
    the way out longer), about 1.7e-4 of all; they enter with a mean energy near 7 keV against
    the 5.7 keV emitted."""
    reached, tritium = _tritium({"kind": "layer", "thickness_um": 1000.0})
    depth = physics.escape_depth_um(tritium)
    soil = electrons.soil(1.5, 0.0)
    energies = physics.sample_beta_energies(12000, tritium, np.random.default_rng(9))
    mean_range = electrons.csda_range_um(energies, soil).mean()
    escape_um = reached.mean() * depth
    assert 0.1 * mean_range < escape_um < 0.25 * mean_range
    assert 1.2e-4 < escape_um / 1000.0 < 2.2e-4
    n = 12000
    rng = np.random.default_rng(4)
    start = np.column_stack([np.zeros((n, 2)), THICK + depth * rng.random(n)])
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    slabs = (
        electrons.Slab(0.0, THICK, SILICON, active=True),
        electrons.Slab(THICK, THICK + depth, soil),
    )
    entered = electrons.single_scattering(start, direction, energies, slabs, rng).entry_kev
    assert 6.3 < np.nanmean(entered) < 7.7 and energies.mean() == pytest.approx(5.69, abs=0.05)
