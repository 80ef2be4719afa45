"""Shapes no particle makes: the streak, extended light and faint-glow rules, in the classical
cuts and after the network."""

import numpy as np
from scipy import ndimage

from pipeline.config import load_config
from pipeline.core.components import EIGHT_CONNECTED, cluster_features
from pipeline.inference import classical, shapes
from pipeline.simulation import light

CFG = load_config()
RULES = CFG.artefact_shapes
ARTEFACT = CFG.classes.index("artefact")
TRAILS = RULES.model_copy(update={"trail_max_share": 0.1})  # the trails rule on (off by default)


def features_of(image: np.ndarray):
    components, n = ndimage.label(image > 5, EIGHT_CONNECTED)
    return cluster_features(components, n, image, 3.75)


def test_a_one_row_streak_is_no_particle_and_a_short_one_may_be():
    image = np.zeros((20, 60))
    image[5, 10:30] = 300.0  # 20 px in one row
    image[12, 10:15] = 300.0  # 5 px: too short to tell
    assert list(shapes.no_particle(features_of(image), RULES, 3.75)) == [True, False]


def test_a_wide_band_across_the_frame_is_light_a_muon_is_not():
    trace = 2000.0 * np.exp(-0.5 * ((np.arange(40)[:, None] - 20) / 3.0) ** 2) * np.ones((1, 200))
    assert shapes.no_particle(features_of(trace), RULES, 3.75).all()
    muon = np.zeros((40, 200))
    for x in range(20, 180):  # a straight track, ~0.7 px across
        y = 10 + 0.1 * x
        muon[int(y), x], muon[int(y) + 1, x] = 1200.0 * (1 - y % 1), 1200.0 * (y % 1)
    assert not shapes.no_particle(features_of(muon), RULES, 3.75).any()


def test_faint_glow_is_no_particle():
    glow = np.zeros((40, 40))
    glow[:20, :20] = 12.0  # 400 pixels at 12 e- each
    assert shapes.no_particle(features_of(glow), RULES, 3.75).all()


def test_the_classical_cuts_call_a_streak_artefact_and_a_star_is_left_to_them():
    image = np.zeros((64, 64))
    image[10, 5:40] = 500.0
    image += light.moffat_star((64, 64), 40.0, 40.0, 2.5, 5e3)
    labels = classical.classical_labels(image, 1.0, CFG)
    assert (labels[10, 5:40] == ARTEFACT).all()
    assert labels[40, 40] not in (
        0,
        ARTEFACT,
    )  # a compact blob: no rule can tell it from a particle


def test_relabel_turns_only_impossible_particle_clusters_into_artefact():
    labels = np.zeros((30, 60), np.uint8)
    charge = np.zeros((30, 60))
    labels[5, 10:40], charge[5, 10:40] = 1, 500.0  # a "muon" one row tall
    labels[20:23, 20:23], charge[20:23, 20:23] = 3, 400.0  # a tritium blob
    out = shapes.relabel(labels, charge, CFG.classes, RULES, 3.75)
    assert (out[5, 10:40] == ARTEFACT).all() and (out[20:23, 20:23] == 3).all()
    six = CFG.classes[:6]  # a model without the artefact class: labels as they were
    assert (shapes.relabel(labels, charge, six, RULES, 3.75) == labels).all()


def test_a_faint_trail_the_network_calls_artefact_stays_artefact_after_the_vote():
    voted = np.zeros((10, 40), np.uint8)
    charge = np.zeros((10, 40))
    voted[4, 5:30] = 1  # one deposit, voted muon: a track and its CTI trail
    charge[4, 5:20], charge[4, 20:30] = 1000.0, 30.0  # the trail: 300 of 15,300 e- (2 %)
    own = voted.copy()
    own[4, 20:30] = ARTEFACT  # the network's own pixel classes, before the vote
    out = shapes.trails(voted, own, charge, 5.0, CFG.classes, TRAILS)
    assert (out[4, 20:30] == ARTEFACT).all() and (out[4, 5:20] == 1).all()


def test_a_large_share_called_artefact_is_left_to_the_vote():
    voted = np.zeros((10, 40), np.uint8)
    charge = np.zeros((10, 40))
    voted[4, 5:30], charge[4, 5:30] = 1, 1000.0
    own = voted.copy()
    own[4, 20:30] = ARTEFACT  # 40 % of the track's charge: a muon half-called artefact
    out = shapes.trails(voted, own, charge, 5.0, CFG.classes, TRAILS)
    assert (out == voted).all()


def test_artefact_pixels_across_a_track_do_not_cut_it():
    voted = np.zeros((10, 40), np.uint8)
    charge = np.zeros((10, 40))
    voted[4, 5:30], charge[4, 5:30] = 1, 1000.0
    own = voted.copy()
    own[4, 15:17] = ARTEFACT  # 8 % of the charge, in the middle: the network's doubt, not a trail
    assert (shapes.trails(voted, own, charge, 5.0, CFG.classes, TRAILS) == voted).all()


def test_trails_are_off_by_default():
    voted = np.zeros((10, 40), np.uint8)
    charge = np.zeros((10, 40))
    voted[4, 5:30], charge[4, 5:20], charge[4, 20:30] = 1, 1000.0, 30.0
    own = voted.copy()
    own[4, 20:30] = ARTEFACT
    assert RULES.trail_max_share == 0
    assert shapes.trails(voted, own, charge, 5.0, CFG.classes, RULES) is voted
