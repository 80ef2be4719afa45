"""Pixels sharper than any point-spread function, given back to the particles (infer.sharp_rescue).

Light (a star, a spectral trace, a sky line, glow) reaches the silicon through optics and spreads
over at least the point-spread function; a charged particle deposits its charge in the silicon
itself, so its track can be sharper than any focused light. L.A.Cosmic finds such pixels by the
Laplacian of the frame against its noise, and rejects the cores of resolved objects by the contrast
between that Laplacian and the frame's fine structure (P. G. van Dokkum, PASP 113, 1420 (2001));
astroscrappy is its maintained implementation (astropy-affiliated, C, BSD).

Owns `rescue`: of the pixels a network labels artefact, the sharp ones (astroscrappy's mask on the
calibrated charge, in electrons, with the frame's measured noise) are given to the particle class of
largest summed probability over each 8-connected group of them. Groups in one row or one column
(`sharp_line_min_px` long or more), and groups `artefact_shapes.streak_min_px` long within
`sharp_axis_max_deg` of a row or a column stay artefact: a serial-register hit, a pedestal jump, a
trap column and the core of a narrow trace or sky line can be as sharp as a track, and few particle
tracks follow a row or a column that closely. So do groups whose brightest pixel holds under
`sharp_min_peak_e`: a particle that matters leaves more (1 keV is 270 e-), while spurious charge, a
pedestal jump's edge or a crosstalk ghost are sharp and faint.
"""

from __future__ import annotations

from collections.abc import Sequence

import astroscrappy
import numpy as np
from scipy import ndimage

from pipeline.config.reconstruction import ArtefactShapesConfig
from pipeline.core.components import EIGHT_CONNECTED, orientation
from pipeline.inference.shapes import ARTEFACT, leading_particle

NO_SATURATION_E = 1e30  # the charge is calibrated; ADC saturation is the calibration's to handle


def sharp_pixels(charge_e: np.ndarray, noise_e: float, cfg: ArtefactShapesConfig) -> np.ndarray:
    """(H, W) bool: the pixels L.A.Cosmic finds sharper than the point-spread function."""
    mask, _ = astroscrappy.detect_cosmics(
        np.ascontiguousarray(charge_e, dtype=np.float32),
        gain=1.0,  # the charge is in electrons
        readnoise=float(max(noise_e, 1e-3)),
        sigclip=cfg.sharp_sigclip,
        sigfrac=cfg.sharp_sigfrac,
        objlim=cfg.sharp_objlim,
        niter=cfg.sharp_iterations,
        satlevel=NO_SATURATION_E,
    )
    return np.asarray(mask, dtype=bool)


def rescue(
    labels: np.ndarray,
    probabilities: np.ndarray,
    charge_e: np.ndarray,
    noise_e: float,
    classes: Sequence[str],
    cfg: ArtefactShapesConfig,
    artefact: str = ARTEFACT,
) -> np.ndarray:
    """`labels` with the sharp artefact pixels given to a particle class (unchanged where the
    classes have no artefact, or nothing is labelled artefact)."""
    if artefact not in classes:
        return labels
    target = list(classes).index(artefact)
    labelled = labels == target
    if not labelled.any():
        return labels
    candidates = labelled & sharp_pixels(charge_e, noise_e, cfg)
    groups, n = ndimage.label(candidates, structure=EIGHT_CONNECTED)
    if n == 0:
        return labels
    along_axis = _along_an_axis(groups, n, cfg)
    chosen = leading_particle(probabilities, groups, n, classes, artefact)
    faint = ndimage.maximum(charge_e, groups, np.arange(1, n + 1)) < cfg.sharp_min_peak_e
    chosen = np.where(along_axis | faint, target, chosen)
    out = labels.copy()
    out[candidates] = chosen[groups[candidates] - 1].astype(labels.dtype)
    return out


def _along_an_axis(groups: np.ndarray, n: int, cfg: ArtefactShapesConfig) -> np.ndarray:
    """(n,) bool: groups 1..n in one row or one column and `sharp_line_min_px` long or more,
    or at least `streak_min_px` long with their principal axis (of their pixels' positions)
    within `sharp_axis_max_deg` of a row or a column."""
    angle, rows_spanned, cols_spanned = orientation(groups, n)
    off_axis = np.degrees(np.arcsin(np.minimum(np.abs(np.sin(angle)), np.abs(np.cos(angle)))))
    extent = np.maximum(rows_spanned, cols_spanned)
    one_line = (np.minimum(rows_spanned, cols_spanned) == 1) & (extent >= cfg.sharp_line_min_px)
    return one_line | ((extent >= cfg.streak_min_px) & (off_axis <= cfg.sharp_axis_max_deg))
