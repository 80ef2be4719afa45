"""Priors that follow the data: the EM label-shift estimate of Saerens et al. (2002) recovers
known priors, and the component vote under them turns an ambiguous deposit toward the file's
majority; the map says what it used."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from pipeline.config import ConfigError, PriorsConfig
from pipeline.inference.label_shift import LabelShift
from pipeline.results import priors

CLASSES = ["background", "muon", "electron", "tritium", "xray", "alpha"]


def _gaussian_posteriors(n: int, share: float, training: float, rng) -> np.ndarray:
    """Posteriors of two unit Gaussians 1.5 apart made under a training prior `training` for the
    first, of a sample with `share` of the first."""
    first = rng.random(n) < share
    x = np.where(first, rng.normal(0, 1, n), rng.normal(1.5, 1, n))
    a, b = training * stats.norm.pdf(x, 0, 1), (1 - training) * stats.norm.pdf(x, 1.5, 1)
    return np.column_stack([a, b]) / (a + b)[:, None]


@pytest.mark.parametrize("share", [0.2, 0.5, 0.85])
def test_em_recovers_the_priors_of_the_data(share):
    rng = np.random.default_rng(3)
    posteriors = _gaussian_posteriors(20000, share, 0.5, rng)
    naive = posteriors.mean(axis=0)[0]  # the classify-and-count estimate is pulled toward 0.5
    adapted = priors.adapted_priors(posteriors, np.array([0.5, 0.5]))
    assert adapted[0] == pytest.approx(share, abs=0.015)
    assert abs(adapted[0] - share) < abs(naive - share) or share == 0.5


def test_few_clusters_stay_near_the_training_mix():
    training = np.array([0.5, 0.5])
    confident = np.array([[0.99, 0.01]] * 4)
    free = priors.adapted_priors(confident, training)
    held = priors.adapted_priors(confident, training, pseudo_count=20)
    assert free[0] > 0.95
    assert 0.5 < held[0] < 0.65  # (4 x ~1 + 20 x 0.5) / 24 = 0.58
    np.testing.assert_allclose(priors.adapted_priors(np.zeros((0, 2)), training), training)


def test_reweighting_moves_signal_classes_and_keeps_the_background_share():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(6), size=(8, 8)).transpose(2, 0, 1).astype(np.float32)
    training = np.full(5, 0.2)
    target = np.array([0.1, 0.1, 0.6, 0.1, 0.1])
    moved = priors.reweighted_probabilities(probs, training, target)
    np.testing.assert_allclose(moved[0], probs[0], rtol=1e-6)
    np.testing.assert_allclose(moved.sum(axis=0), 1, rtol=1e-5)
    assert (moved[3] / moved[1:].sum(0)).mean() > (probs[3] / probs[1:].sum(0)).mean()


def _frame(deposits: list[tuple[float, float]]) -> np.ndarray:
    """A probability map with one 2x2 deposit per (tritium, xray) posterior pair, 4 px apart."""
    probs = np.zeros((6, 8, 4 * len(deposits)), np.float32)
    probs[0] = 1.0
    for i, (tritium, xray) in enumerate(deposits):
        block = (slice(2, 4), slice(4 * i, 4 * i + 2))
        probs[(0, *block)] = 0.0
        probs[(3, *block)], probs[(4, *block)] = tritium, xray
    return probs


def test_an_ambiguous_deposit_follows_the_files_majority():
    card = {"training_priors": {c: 0.2 for c in CLASSES[1:]}}
    ambiguous = (0.45, 0.55)
    frame = _frame([(0.95, 0.05)] * 30 + [ambiguous])
    as_trained = LabelShift(PriorsConfig(mode="training", pseudo_count=20), card, CLASSES)
    adapted = LabelShift(PriorsConfig(mode="adapt", pseudo_count=20), card, CLASSES)
    assert as_trained.label(frame)[0][2, -4] == CLASSES.index("xray")
    labels, _ = adapted.label(frame)
    assert labels[2, -4] == CLASSES.index("tritium")
    attrs = adapted.attrs()
    assert json.loads(attrs["priors"])["tritium"] > 0.5
    assert attrs["priors_source"].startswith("adapted")


def test_stated_priors_need_every_signal_class_and_v1_cards_vote_as_trained():
    card = {"training_priors": {c: 0.2 for c in CLASSES[1:]}}
    with pytest.raises(ConfigError, match="alpha"):
        LabelShift(
            PriorsConfig(mode="stated", stated={"tritium": 1.0}, pseudo_count=0), card, CLASSES
        )
    old = LabelShift(PriorsConfig(mode="adapt", pseudo_count=20), {}, CLASSES)
    assert not old.active
    assert old.attrs() == {"priors_source": "training (the model card states none)"}
