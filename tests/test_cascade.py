"""Two networks in cascade: the first's background and artefact probabilities kept, its
particle probability shared among the particle classes as the second shares its own; and which
model `infer.particles_from` pairs with which."""

import h5py
import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.inference import cascade
from pipeline.inference.infer import infer_file, particles_from
from pipeline.network.shipped import resolve_checkpoint

FIRST = ["background", "muon", "electron", "tritium", "xray", "alpha", "artefact"]
SECOND = ["background", "muon", "electron", "tritium", "xray", "alpha"]


def normalised(values: np.ndarray) -> np.ndarray:
    return (values / values.sum(axis=0, keepdims=True)).astype(np.float32)


def test_the_particle_probability_is_shared_as_the_second_network_shares_it():
    rng = np.random.default_rng(0)
    first = normalised(rng.random((7, 8, 8)))
    second = normalised(rng.random((6, 8, 8)))
    out = cascade.share_particles(first, FIRST, second, SECOND)
    np.testing.assert_array_equal(out[[0, 6]], first[[0, 6]])  # background, artefact: the first's
    np.testing.assert_allclose(out.sum(axis=0), 1.0, rtol=1e-5)
    particle_mass = first[1:6].sum(axis=0)
    np.testing.assert_allclose(
        out[1:6], particle_mass * second[1:6] / second[1:6].sum(axis=0), rtol=1e-5
    )


def test_a_muon_the_first_calls_electron_is_a_muon_where_the_second_says_so():
    first = np.zeros((7, 1, 1), np.float32)
    first[[0, 1, 2, 6], 0, 0] = [0.1, 0.3, 0.5, 0.1]  # particle 0.8, electron leads
    second = np.zeros((6, 1, 1), np.float32)
    second[[0, 1, 2], 0, 0] = [0.5, 0.4, 0.1]  # the second: muon four to one
    out = cascade.share_particles(first, FIRST, second, SECOND)
    assert out[:, 0, 0].argmax() == FIRST.index("muon")
    assert out[1, 0, 0] == pytest.approx(0.8 * 0.8)


def test_where_the_second_sees_no_particle_the_first_shares_stay():
    first = normalised(np.random.default_rng(1).random((7, 4, 4)))
    second = np.zeros((6, 4, 4), np.float32)
    second[0] = 1.0
    out = cascade.share_particles(first, FIRST, second, SECOND)
    np.testing.assert_allclose(out, first, rtol=1e-5)


def test_particles_from_pairs_v3_with_v2_by_name_or_file_and_nothing_else():
    config = load_config()
    assert config.infer.particles_from == {"ccd-unet-v3": "ccd-unet-v2"}
    v2, v3 = resolve_checkpoint("ccd-unet-v2"), resolve_checkpoint("ccd-unet-v3")
    for reference in ("ccd-unet-v3", v3.path):
        found = particles_from(config, resolve_checkpoint(reference))
        assert found is not None and found.sha256 == v2.sha256
    assert particles_from(config, v2) is None
    for table in ({}, {"ccd-unet-v3": None}):
        unpaired = load_config(overrides={"infer.particles_from": table})
        assert particles_from(unpaired, v3) is None


def test_a_deposit_the_first_votes_artefact_stays_artefact_though_the_shares_would_flip_it():
    first = np.zeros((7, 4, 4), np.float32)
    first[0] = 1.0
    first[:, 1:3, 1:3] = np.array([0.04, 0.18, 0.18, 0.1, 0.1, 0.0, 0.4])[:, None, None]
    second = np.zeros((6, 4, 4), np.float32)
    second[1] = 1.0  # the second: a muon, sure
    artefact = FIRST.index("artefact")
    kept = cascade.first_artefacts(first, FIRST, "artefact")
    assert kept is not None and kept[1:3, 1:3].all() and kept.sum() == 4
    shared = cascade.share_particles(first, FIRST, second, SECOND)
    assert (shared[:, 1:3, 1:3].argmax(axis=0) != artefact).all()  # why the first's vote is kept
    assert cascade.first_artefacts(first, SECOND, "artefact") is None


def test_infer_maps_with_v3_and_its_partner_and_says_so(tiny_files, tmp_path):
    config = load_config(overrides={"tracking.enabled": False})
    paired = infer_file(config, tiny_files["val"], tmp_path / "paired.h5", progress=False)
    assert "shared as ccd-unet-v2 shares them (infer.particles_from)" in str(paired)
    alone_config = load_config(overrides={"infer.particles_from.ccd-unet-v3": None})
    alone = infer_file(alone_config, tiny_files["val"], tmp_path / "alone.h5", progress=False)
    assert "particles_from" not in str(alone)
    with h5py.File(paired.output) as both, h5py.File(alone.output) as one:
        assert both.attrs["particles_from"] == "ccd-unet-v2"
        assert both.attrs["particles_from_sha256"] == resolve_checkpoint("ccd-unet-v2").sha256
        assert "particles_from" not in one.attrs
        assert both.attrs["condition_back_sigma_px"] == one.attrs["condition_back_sigma_px"]
        artefact = FIRST.index("artefact")
        # what v3 alone calls artefact (votes, rescues aside) stays artefact with its partner
        assert ((one["labels"][:] == artefact) <= (both["labels"][:] == artefact)).mean() > 0.999
