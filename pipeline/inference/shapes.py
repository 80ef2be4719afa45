"""Clusters whose shape no particle makes (`artefact_shapes`): the artefact rules shared by the
classical cuts and by the network's maps (`infer.shape_rules`).

Owns three rules on a cluster's shape features (pipeline/core/components.py):
- a streak: one row tall and at least `streak_min_px` long: charge laid along the serial register
  with no diffusion (a serial-register hit, a pedestal jump). A particle's charge drifts through
  the depleted bulk and spreads over more than one row along any track that long;
- extended light: long, straight and wider across its axis than diffusion can spread charge
  (`light_min_sigma_px`: above the widest back-surface diffusion of any CCD trained on): a
  spectral trace, a sky line, a diffraction spike;
- faint and large: many pixels holding less charge each than a minimum-ionising track leaves in
  one (~80 e-/um x 15 um; `faint_max_e_per_px`): glow or scattered light.
And `trails`, after the network's component vote: in a deposit voted a particle, the pixels the
network itself calls artefact (and that stand out of the noise) stay artefact where together they
hold under `trail_max_share` of the deposit's charge: charge deferred by the readout (CTI trails)
or spilled along the serial register is a small part of the deposit it trails, and the vote would
give it the particle's class.
And `leading_particle`: the particle class of largest summed probability over each group of
pixels, the class the rescues (sharpness.py, points.py) give the artefact pixels they take back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from pipeline.config.reconstruction import ArtefactShapesConfig
from pipeline.core.components import EIGHT_CONNECTED, cluster_features

ARTEFACT = "artefact"  # the class the rules label (the simulator's artefacts.label), by name


def no_particle(features: pd.DataFrame, cfg: ArtefactShapesConfig, pair_energy_ev: float):
    """(n,) bool: the clusters of `features` no particle can make."""
    rows = features["rows_spanned"].to_numpy()
    cols = features["cols_spanned"].to_numpy()
    streak = (rows == 1) & (cols >= cfg.streak_min_px)
    light = (
        (features["length_px"].to_numpy() >= cfg.light_min_length_px)
        & (features["elongation"].to_numpy() >= cfg.light_min_elongation)
        & (features["sigma_minor"].to_numpy() >= cfg.light_min_sigma_px)
    )
    pixels = features["pixels"].to_numpy()
    charge_e = features["energy_kev"].to_numpy() * 1000.0 / pair_energy_ev
    faint = (pixels >= cfg.faint_min_pixels) & (
        charge_e / np.maximum(pixels, 1) < cfg.faint_max_e_per_px
    )
    return streak | light | faint


def relabel(
    labels: np.ndarray,
    charge_e: np.ndarray,
    classes: Sequence[str],
    cfg: ArtefactShapesConfig,
    pair_energy_ev: float,
    artefact: str = ARTEFACT,
) -> np.ndarray:
    """`labels` with each 8-connected cluster of a particle class whose shape no particle makes
    labelled `artefact` (unchanged where the classes have none)."""
    if artefact not in classes:
        return labels
    target = list(classes).index(artefact)
    out = labels.copy()
    for cls in range(1, len(classes)):
        if cls == target:
            continue
        components, n = ndimage.label(labels == cls, structure=EIGHT_CONNECTED)
        if n == 0:
            continue
        features = cluster_features(components, n, charge_e, pair_energy_ev)
        bad = np.flatnonzero(no_particle(features, cfg, pair_energy_ev)) + 1
        if len(bad):
            out[np.isin(components, bad)] = target
    return out


def trails(
    voted: np.ndarray,
    pixel_classes: np.ndarray,
    charge_e: np.ndarray,
    noise_e: float,
    classes: Sequence[str],
    cfg: ArtefactShapesConfig,
    artefact: str = ARTEFACT,
) -> np.ndarray:
    """`voted` (one class per deposit) with the pixels `pixel_classes` (the network's own,
    before the vote) calls artefact and whose charge is `cfg.trail_min_sigma` x `noise_e` or more
    labelled artefact again, in each particle deposit where they hold under
    `cfg.trail_max_share` of its positive charge and leave the rest in one piece (a trail hangs
    off the end of what it trails; artefact pixels across a track are the network's doubt)."""
    if artefact not in classes or cfg.trail_max_share <= 0:
        return voted
    target = list(classes).index(artefact)
    components, n = ndimage.label(voted > 0, structure=EIGHT_CONNECTED)
    if n == 0:
        return voted
    index = np.arange(1, n + 1)
    positive = np.maximum(charge_e, 0.0)
    visible = charge_e >= cfg.trail_min_sigma * noise_e  # a deposit's faint rim is background
    tail = (pixel_classes == target) & (components > 0) & visible
    share = ndimage.sum(positive * tail, components, index) / np.maximum(
        ndimage.sum(positive, components, index), 1e-12
    )
    keep = np.concatenate(
        [[False], (share < cfg.trail_max_share) & (share > 0) & ~_split(components, n, tail)]
    )
    out = voted.copy()
    out[tail & keep[components] & (voted != target)] = target
    return out


def _split(components: np.ndarray, n: int, removed: np.ndarray) -> np.ndarray:
    """(n,) bool: deposits 1..n that `removed` pixels would cut into more than one piece."""
    pieces, _ = ndimage.label((components > 0) & ~removed, structure=EIGHT_CONNECTED)
    inside = pieces > 0
    pairs = np.unique(np.stack([components[inside], pieces[inside]]), axis=1)
    return np.bincount(pairs[0], minlength=n + 1)[1:] > 1


def leading_particle(
    probabilities: np.ndarray,
    groups: np.ndarray,
    n: int,
    classes: Sequence[str],
    artefact: str,
    among: Sequence[str] | None = None,
) -> np.ndarray:
    """(n,) class index: for groups 1..n of `groups`, the class other than background and
    `artefact` (and of `among` where given) of largest summed probability over its pixels."""
    names = list(classes)
    allowed = [c for c in names[1:] if c != artefact and (among is None or c in among)]
    particle = [names.index(c) for c in allowed]
    index = np.arange(1, n + 1)
    sums = np.stack([ndimage.sum(probabilities[c], groups, index) for c in particle], axis=1)
    return np.asarray(particle)[sums.argmax(axis=1)]
