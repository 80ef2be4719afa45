"""Deposits no wider than a diffused point charge, given back to the particles (infer.point_rescue).

Charge freed at one point drifts to the pixels and spreads by diffusion on the way: most from the
back surface, whose sigma the network is told or the file measures (detector_context.py). A round
deposit no wider than that (its threshold-corrected sigma at most `point_max_sigma_ratio` times
the back surface's) is what an X-ray or a short beta track makes, whatever its depth; light
from a star reaches the silicon through optics and, absorbed near the back, diffuses as far as
well: it is wider by the point-spread function. A network can still call such a deposit artefact
where the detector diffuses as much as a star is wide (the suite's diffusion-2.5x detector: 40 of
its 300 X-rays and tritium betas, all from near the back surface).

Owns `rescue`: each 8-connected group a network labels artefact, with `point_min_pixels` pixels
or more above the noise threshold, round (`point_max_elongation`), of `point_min_energy_kev` to
`point_max_energy_kev` (a point deposit: X-ray lines and betas short enough to stay within a pixel
or two), and no wider than diffusion, goes to the class of largest summed probability among
`point_classes` (those that make such deposits: a muon, an electron track or an alpha does not);
each of its pixels is that class's or background's, whichever the network finds likelier.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from pipeline.config.reconstruction import ArtefactShapesConfig
from pipeline.core.components import EIGHT_CONNECTED, cluster_features
from pipeline.inference.detector_context import diffusion_sigma
from pipeline.inference.shapes import ARTEFACT, leading_particle

THRESHOLD_SIGMA = 3.0  # pixels measured: above 3 x noise (the classical neighbour threshold)


def point_like(
    groups: np.ndarray,
    n: int,
    charge_e: np.ndarray,
    noise_e: float,
    back_sigma_px: float,
    cfg: ArtefactShapesConfig,
    pair_energy_ev: float,
) -> np.ndarray:
    """(n,) bool: groups 1..n of `groups` round, of a point deposit's energy and no wider than
    diffusion from the back surface (`back_sigma_px`) spreads a point charge."""
    threshold = THRESHOLD_SIGMA * max(noise_e, 1e-3)
    measured = np.where(charge_e > threshold, groups, 0)
    table = cluster_features(measured, n, charge_e, pair_energy_ev)
    index = np.arange(1, n + 1)
    peak = np.asarray(ndimage.maximum(charge_e, groups, index), dtype=float)
    # across its axis: one point, or two that overlap, is as wide as diffusion makes a point
    sigma = diffusion_sigma(table["sigma_minor"].to_numpy() ** 2, peak, threshold)
    energy = ndimage.sum(charge_e, groups, index) * pair_energy_ev / 1000.0
    return (
        (table["pixels"].to_numpy() >= cfg.point_min_pixels)
        & (table["rows_spanned"].to_numpy() > 1)
        & (table["cols_spanned"].to_numpy() > 1)
        & (table["elongation"].to_numpy() <= cfg.point_max_elongation)
        & (sigma <= cfg.point_max_sigma_ratio * back_sigma_px)
        & (energy >= cfg.point_min_energy_kev)
        & (energy <= cfg.point_max_energy_kev)
    )


def rescue(
    labels: np.ndarray,
    probabilities: np.ndarray,
    charge_e: np.ndarray,
    noise_e: float,
    back_sigma_px: float,
    classes: Sequence[str],
    cfg: ArtefactShapesConfig,
    pair_energy_ev: float,
    artefact: str = ARTEFACT,
) -> np.ndarray:
    """`labels` with each artefact group shaped like a diffused point deposit given to a particle
    class (unchanged where the classes have no artefact or none of `point_classes`, or nothing
    is labelled artefact)."""
    if artefact not in classes or not set(cfg.point_classes) & set(classes):
        return labels
    target = list(classes).index(artefact)
    groups, n = ndimage.label(labels == target, structure=EIGHT_CONNECTED)
    if n == 0:
        return labels
    points = point_like(groups, n, charge_e, noise_e, back_sigma_px, cfg, pair_energy_ev)
    if not points.any():
        return labels
    chosen = leading_particle(probabilities, groups, n, classes, artefact, cfg.point_classes)
    new_class = np.concatenate([[target], np.where(points, chosen, target)])
    out = labels.copy()
    taken = np.isin(groups, np.flatnonzero(points) + 1)
    given = new_class[groups[taken]]
    # without the artefact reading, each pixel is the particle's or background, as the network
    # weighs the two (a star-like reading spreads wider than the deposit)
    wins = probabilities[given, taken] > probabilities[0, taken]
    out[taken] = np.where(wins, given, 0).astype(labels.dtype)
    return out
