"""Light that is not a particle, as an astronomical CCD frame holds it (`artefacts.light`).

Owns the mean charge per pixel of stars (Moffat profiles, beta 3: the seeing-limited stellar
profile of Moffat, A&A 3, 455 (1969), with beta 2.5-4.5 measured by Trujillo et al., MNRAS 328,
977 (2001)), of a long-slit spectrum's trace (a Gaussian cross-section along the dispersion
axis, across the whole frame, slowly tilted, its brightness varying along it) and of sky lines
(bands across the whole frame perpendicular to the trace, as the slit's image at one
wavelength). Shot noise is the caller's (Poisson on the sum).
"""

from __future__ import annotations

import numpy as np

from pipeline.config.artefacts import LightConfig

MOFFAT_BETA = 3.0
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def drawn(cfg: LightConfig) -> bool:
    return cfg.stars_per_frame > 0 or cfg.traces_per_frame > 0 or cfg.sky_lines_per_frame > 0


def log_uniform(rng: np.random.Generator, span: tuple[float, float]) -> float:
    """A value log-uniform in [low, high] (uniform where low is 0)."""
    low, high = span
    if low <= 0:
        return float(rng.uniform(low, high))
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def moffat_star(shape: tuple[int, int], x: float, y: float, fwhm: float, total_e: float):
    """A star's mean charge per pixel: a Moffat profile of `fwhm` holding `total_e` in a box of
    +-4 FWHM (its wings beyond hold ~1 % and are dropped)."""
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / MOFFAT_BETA) - 1.0))
    half = int(np.ceil(4 * fwhm))
    r0, r1 = max(int(y) - half, 0), min(int(y) + half + 1, shape[0])
    c0, c1 = max(int(x) - half, 0), min(int(x) + half + 1, shape[1])
    out = np.zeros(shape)
    if r0 >= r1 or c0 >= c1:
        return out
    rows, cols = np.mgrid[r0:r1, c0:c1]
    profile = (1 + ((cols - x) ** 2 + (rows - y) ** 2) / alpha**2) ** -MOFFAT_BETA
    full = np.pi * alpha**2 / (MOFFAT_BETA - 1)  # the profile's integral over the plane
    out[r0:r1, c0:c1] = total_e * profile / full
    return out


def _band(
    shape: tuple[int, int], along_rows: bool, centre: float, slope: float, fwhm: float
) -> np.ndarray:
    """A unit-height Gaussian band across the whole frame (along rows: a function of the row)."""
    n_along, n_across = (shape[1], shape[0]) if along_rows else shape
    t = np.arange(n_along, dtype=float)
    mid = centre + slope * (t - n_along / 2)
    across = np.arange(n_across, dtype=float)
    sigma = fwhm / FWHM_PER_SIGMA
    band = np.exp(-0.5 * ((across[:, None] - mid[None, :]) / sigma) ** 2)  # (across, along)
    return band if along_rows else band.T


def render(shape: tuple[int, int], cfg: LightConfig, rng: np.random.Generator) -> np.ndarray:
    """Mean charge per pixel of the frame's stars, traces and sky lines (Poisson means)."""
    out = np.zeros(shape)
    if not drawn(cfg):
        return out
    for _ in range(int(rng.poisson(cfg.stars_per_frame))):
        y, x = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        fwhm = rng.uniform(*cfg.star_fwhm_px)
        out += moffat_star(shape, x, y, fwhm, log_uniform(rng, cfg.star_e))
    along_rows = bool(rng.random() < 0.5)  # the dispersion axis
    n_across = shape[0] if along_rows else shape[1]
    n_along = shape[1] if along_rows else shape[0]
    for _ in range(int(rng.poisson(cfg.traces_per_frame))):
        band = _band(shape, along_rows, rng.uniform(0, n_across), rng.normal(0, 0.01),
                     rng.uniform(*cfg.trace_fwhm_px))  # fmt: skip
        t = np.arange(n_along) / max(n_along, 1)  # the spectrum's slow variation along the trace
        shape_along = 1 + 0.5 * np.sin(2 * np.pi * (rng.uniform(0.2, 2) * t + rng.uniform()))
        peak = log_uniform(rng, cfg.trace_e_per_px)
        out += peak * band * (shape_along[None, :] if along_rows else shape_along[:, None])
    for _ in range(int(rng.poisson(cfg.sky_lines_per_frame))):
        band = _band(shape, not along_rows, rng.uniform(0, n_along), rng.normal(0, 0.005),
                     rng.uniform(*cfg.sky_line_fwhm_px))  # fmt: skip
        out += log_uniform(rng, cfg.sky_line_e_per_px) * band
    return out
