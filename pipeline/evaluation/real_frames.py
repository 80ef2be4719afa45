"""The real CCD files of `../shared/real/` (SOURCES.md) and what their known content lets one
score: the Gemini GMOS cutout's two cosmic rays against its star trace and sky lines, the SAAO
raw frame's brightest deposits (stars, then cosmic rays), the Lick bias frame (nothing).

Owns the files' names, the rays' boxes (astroscrappy's test_gmos.py), the pixel selections and
the scores; used by bench/bench_real_frames.py (the README's table) and tests/test_real_frames.py.
The selections: a ray's bright pixels are those inside its box with calibrated charge above
`SIGMA` x the measured noise; the sky lines' are outside the two boxes grown by 3 px where the
reduction's own sky fit (HDU SKYFIT) passes `SIGMA` x the VAR HDU's median noise; the star's
trace (SCI - SKYFIT) lies 37-59 ADU above zero in every row, so every pixel outside the grown
boxes counts as trace or sky.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy import ndimage

from pipeline.calibration.frames import calibrated
from pipeline.config.stages import FrameSections
from pipeline.core.components import EIGHT_CONNECTED

GMOS = "astroscrappy_gmos_S20190808S0048_cutout.fits"
SAAO = "ccdproc_a8280271_SAAO1m_STE3_raw.fits"
BIAS = "pypeit_lick_kast_blue_b21_bias.fits.gz"
GMOS_RAYS = ((slice(41, 72), slice(142, 161)), (slice(117, 147), slice(35, 43)))  # SOURCES.md
SIGMA = 5.0


def charge_of(path: Path, config: FrameSections) -> tuple[np.ndarray, float]:
    """The first frame's calibrated charge (e-) and its measured noise (e-)."""
    with calibrated(path, config) as frames:
        frames.calibrate()
        charge = next(iter(frames.charges(0)))
        return charge, frames.noise_e(0)


def gmos_scores(
    labels: np.ndarray, charge: np.ndarray, noise: float, path: Path, classes: Sequence[str]
) -> dict:
    """Particle shares of the cosmic rays' bright pixels, the sky lines' and the rest's."""
    with fits.open(path) as hdus:
        sky = hdus["SKYFIT"].data.astype(float)
        sigma = float(np.sqrt(np.median(hdus["VAR"].data)))
    particle = (labels > 0) & (labels != list(classes).index("artefact"))
    rays = np.zeros(labels.shape, bool)
    out: dict = {}
    for i, box in enumerate(GMOS_RAYS):
        mask = np.zeros_like(rays)
        mask[box] = True
        rays |= mask
        hit = (charge > SIGMA * noise) & mask
        out[f"ray{i + 1}_particle_share"] = round(float(particle[hit].mean()), 3)
        out[f"ray{i + 1}_pixels"] = int(hit.sum())
    outside = ~ndimage.binary_dilation(rays, iterations=3)
    lines = outside & (sky > SIGMA * sigma)  # the reduction's own sky fit
    out["sky_line_pixels"] = int(lines.sum())
    out["sky_line_particle_share"] = round(float(particle[lines].mean()), 4)
    out["trace_and_sky_pixels"] = int(outside.sum())  # the star's trace spans the cutout
    out["trace_and_sky_particle_share"] = round(float(particle[outside].mean()), 4)
    out["trace_and_sky_particle_pixels"] = int(particle[outside].sum())
    return out


def brightest(
    labels: np.ndarray, charge: np.ndarray, noise: float, classes: Sequence[str], n: int = 10
) -> list[dict]:
    """The `n` deposits of most charge above `SIGMA` x noise: pixels, charge, classes given."""
    components, count = ndimage.label(charge > SIGMA * noise, EIGHT_CONNECTED)
    if count == 0:
        return []
    sums = ndimage.sum(charge, components, np.arange(1, count + 1))
    rows = []
    for index in np.argsort(sums)[::-1][:n]:
        pixels = components == index + 1
        got = np.bincount(labels[pixels], minlength=len(classes))
        rows.append(
            {
                "pixels": int(pixels.sum()),
                "charge_e": round(float(sums[index])),
                "classes": {classes[c]: int(k) for c, k in enumerate(got) if k},
            }
        )
    return rows
