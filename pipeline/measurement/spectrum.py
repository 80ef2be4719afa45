"""The spectral model of the activity: one home for the fit that both the measurement and the
efficiency go through.

Owns the spectral templates (the collected-energy spectrum of simulated tritium betas, the X-ray
lines and continuum) and a binned Poisson-likelihood fit of the tritium-like cluster spectrum.
Why a spectral fit: an X-ray converting near the back surface is diffused like a tritium beta, so
per-cluster labels confuse the two. The fit takes the clusters labelled tritium AND xray (the two
populations leak into each other; their union loses neither) and separates them by energy: the
beta shape, Gaussian X-ray lines at known energies, the flat X-ray continuum and a flat background.
The efficiency is measured through the same selection and fit (pipeline/measurement/efficiency.py),
so it absorbs what the template misses (threshold losses, clusters labelled as other classes,
merged clusters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from pipeline.config import Config, ConfigError
from pipeline.config.stages import EfficiencySettings
from pipeline.simulation import charge, physics

FIT_CLASSES = ("tritium", "xray")  # tritium-like clusters entering the spectral fit
POINT_CLUSTER_PIXELS = 9  # readout noise of a compact cluster adds over ~3 x 3 pixels
TEMPLATE_CHUNK = 2000  # betas per collect() call (bounds the memory of the carrier arrays)
LINE_SCALE_RANGE = (0.95, 1.02)  # fitted energy scale of the X-ray lines
TNC = {"ftol": 1e-12, "gtol": 1e-9, "maxfun": 20000}  # tight: profile rises of ~1 are solved
_TEMPLATES: dict[tuple, np.ndarray] = {}
_ENERGIES: dict[tuple, np.ndarray] = {}
ACTIVITY_COLUMNS = ("frame", "class_name", "energy_kev")  # what the activity reads


def fit_edges(config: EfficiencySettings | Config) -> np.ndarray:
    """Bin edges of the fitted spectrum: `energy_range_kev` in steps of `bin_kev`."""
    low, high = config.activity.energy_range_kev
    n_bins = max(int(np.ceil((high - low) / config.activity.bin_kev - 1e-9)), 1)
    return low + config.activity.bin_kev * np.arange(n_bins + 1)


def collected_beta_energies(config: EfficiencySettings | Config, n: int, seed: int) -> np.ndarray:
    """Collected energy (keV) of `n` simulated decays: backscatter, the sample and the back
    layer included (0 where the beta never reached the silicon). Cached per (source, detector,
    physics, n, seed): the spectra of other binnings reuse it."""
    sections = (config.sources.tritium, config.detector, config.physics)
    key = (*(m.model_dump_json() for m in sections), n, seed)
    if key not in _ENERGIES:
        rng = np.random.default_rng(seed)
        parts: list[np.ndarray] = [np.zeros(0)]
        for start in range(0, n, TEMPLATE_CHUNK):
            size = min(TEMPLATE_CHUNK, n - start)
            seg = physics.tritium_segments(
                size, config.sources.tritium, config.detector, config.physics, rng
            )
            parts.append(
                charge.collected_electrons(seg, size, config.detector, config.physics, rng)
            )
        _ENERGIES[key] = np.concatenate(parts) * config.physics.pair_energy_ev / 1000.0
    return _ENERGIES[key]


def tritium_template(config: EfficiencySettings | Config, edges_kev: np.ndarray) -> np.ndarray:
    """Normalised histogram (sums to 1 over the bins) of the collected energy of simulated betas.
    Cached per (source, detector, physics, template settings, edges)."""
    act = config.activity
    sections = (config.sources.tritium, config.detector, config.physics)
    key = (*(m.model_dump_json() for m in sections), act.template_events, act.seed)
    key += tuple(np.asarray(edges_kev, float))
    if key not in _TEMPLATES:
        energies = collected_beta_energies(config, act.template_events, act.seed)
        counts = np.histogram(energies, bins=edges_kev)[0].astype(float)
        _TEMPLATES[key] = counts / max(counts.sum(), 1.0)
    return _TEMPLATES[key].copy()


def line_shapes(
    config: EfficiencySettings | Config, edges_kev: np.ndarray, resolution_kev: float
) -> np.ndarray:
    """(n_lines + 1, n_bins): each X-ray line as a Gaussian of width sqrt(resolution^2 + F E w)
    (Fano term, w the pair energy), then the flat continuum; each row normalised over the bins
    (a row stays zero when its line or continuum lies outside the binned range)."""
    xray, phys = config.sources.xray, config.physics
    rows = []
    for line in xray.lines:
        fano_var = phys.fano_factor * line.energy_kev * phys.pair_energy_ev / 1000.0
        sigma = np.sqrt(resolution_kev**2 + fano_var)
        rows.append(np.diff(stats.norm.cdf(edges_kev, line.energy_kev, sigma)))
    low, high = xray.continuum_kev
    rows.append(np.clip(np.minimum(edges_kev[1:], high) - np.maximum(edges_kev[:-1], low), 0, None))
    shapes = np.array(rows)
    sums = shapes.sum(axis=1, keepdims=True)
    return np.divide(shapes, sums, out=np.zeros_like(shapes), where=sums > 0)


def resolution_kev(config: EfficiencySettings | Config) -> float:
    """Electronic noise of a compact cluster, in keV."""
    noise_e = config.detector.readout_noise_e * np.sqrt(POINT_CLUSTER_PIXELS)
    return float(noise_e * config.physics.pair_energy_ev / 1000.0)


# ---------------------------------------------------------------- spectral fit


@dataclass
class SpectrumFit:
    """Yields (counts in the fitted range) of the binned Poisson-likelihood fit."""

    tritium: float
    tritium_error: float  # half width of the 68.3 % profile-likelihood interval
    lines: np.ndarray  # X-ray lines, then the continuum
    line_energies_kev: np.ndarray  # energies of the lines (not the continuum)
    background: float  # flat background
    line_scale: float  # fitted energy scale of the X-ray lines
    interval: tuple[float, float]  # tritium yield at `confidence`
    nll: float
    confidence: float
    edges_kev: np.ndarray
    counts: np.ndarray
    components: np.ndarray  # (n_components, n_bins) fitted expectation per component
    region_background: float  # fitted non-tritium counts where the tritium template is non-zero
    shapes: np.ndarray  # (n_components, n_bins) the fitted model's rows, tritium first
    background_only: np.ndarray  # expected counts per bin of the fit with no tritium


def _nll(
    yields: np.ndarray, shapes: np.ndarray, counts: np.ndarray, offset: np.ndarray
) -> tuple[float, np.ndarray]:
    """Poisson negative log-likelihood (up to a constant) of mu = offset + yields @ shapes, and
    its gradient in the yields."""
    mu = offset + yields @ shapes + 1e-12
    return float(np.sum(mu - counts * np.log(mu))), shapes @ (1.0 - counts / mu)


def _minimise(
    shapes: np.ndarray, counts: np.ndarray, start: np.ndarray, offset: np.ndarray
) -> tuple[np.ndarray, float]:
    """Minimise the NLL over non-negative yields. The NLL is convex in the yields, so the local
    minimum is the global one. TNC rather than L-BFGS-B: same answer, and L-BFGS-B's tiny BLAS
    calls ran ~70x slower under a busy multi-threaded OpenBLAS here."""
    bounds = [(0.0, None)] * len(start)
    args = (shapes, counts, offset)
    res = optimize.minimize(_nll, start, args, "TNC", jac=True, bounds=bounds, options=TNC)
    return res.x, float(res.fun)


def _profile_interval(
    shapes: np.ndarray, yields: np.ndarray, counts: np.ndarray, nll_min: float, level: float
) -> tuple[float, float]:
    """Tritium yields where the profile NLL (the other yields re-fitted, non-negative) rises
    `level` above its minimum; the lower edge is 0 when the profile at 0 stays below that."""
    keep = shapes[1:].sum(axis=1) > 0
    others, start, t_hat = shapes[1:][keep], yields[1:][keep], yields[0]

    def rise(t: float) -> float:
        return _minimise(others, counts, start, t * shapes[0])[1] - nll_min - level

    low = 0.0 if rise(0.0) <= 0 else optimize.brentq(rise, 0.0, t_hat, xtol=1e-6)
    step = max(np.sqrt(max(t_hat, 1.0)), 1.0)
    high = t_hat + step
    while rise(high) <= 0:
        high, step = high + step, 2 * step
    return float(low), float(optimize.brentq(rise, t_hat, high, xtol=1e-6))


def _model_shapes(
    config: EfficiencySettings | Config, edges: np.ndarray, line_scale: float
) -> np.ndarray:
    """Rows: tritium template, X-ray lines at `line_scale` x their energy, continuum, flat."""
    lines = line_shapes(config, edges / line_scale, resolution_kev(config) / line_scale)
    flat = np.full(len(edges) - 1, 1.0 / (len(edges) - 1))
    return np.vstack([tritium_template(config, edges), lines, flat])


def _fit_yields(shapes: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, float]:
    """Best non-negative yields (0 for rows empty over the range) and the NLL minimum."""
    used = shapes.sum(axis=1) > 0
    start = np.full(int(used.sum()), max(counts.sum(), 1.0) / used.sum())
    best, nll = _minimise(shapes[used], counts, start, np.zeros(len(counts)))
    yields = np.zeros(len(shapes))
    yields[used] = best
    return yields, nll


def _fit_line_scale(
    config: EfficiencySettings | Config, edges: np.ndarray, counts: np.ndarray
) -> float:
    """Energy scale of the X-ray lines: compact clusters lose the charge of their pixels below
    the labelling threshold (~1 % at 5.9 keV), enough to move a narrow line across a bin edge.
    The NLL is not convex in the scale (lines are narrower than bins): grid, then refine."""
    grid = np.linspace(*LINE_SCALE_RANGE, 25)
    nll = [_fit_yields(_model_shapes(config, edges, s), counts)[1] for s in grid]
    i = int(np.argmin(np.asarray(nll) + 1e-9 * np.abs(grid - 1.0)))
    low, high = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(
        lambda s: _fit_yields(_model_shapes(config, edges, s), counts)[1],
        bounds=(low, high),
        method="bounded",
    )
    return float(res.x) if res.fun < nll[i] else float(grid[i])


def fit_spectrum(energies_kev: np.ndarray, config: EfficiencySettings | Config) -> SpectrumFit:
    """Fit N_t * tritium + sum_k N_k * line_k + N_c * continuum + N_b * flat to the binned
    energies (and a common energy scale of the lines); the tritium interval from the profile
    likelihood (Wilks, Delta(2 NLL) = chi2_1 quantile, the line scale held at its best value),
    its lower edge 0 when the profile at 0 stays below that rise."""
    edges = fit_edges(config)
    counts = np.histogram(np.asarray(energies_kev, float), bins=edges)[0].astype(float)
    line_scale = _fit_line_scale(config, edges, counts) if counts.sum() > 0 else 1.0
    shapes = _model_shapes(config, edges, line_scale)
    if shapes[0].sum() == 0:
        raise ConfigError(f"activity.energy_range_kev {edges[[0, -1]]} holds no tritium betas")
    yields, nll_min = _fit_yields(shapes, counts)
    confidence = config.activity.confidence
    interval = _profile_interval(shapes, yields, counts, nll_min, stats.chi2.ppf(confidence, 1) / 2)
    one = _profile_interval(shapes, yields, counts, nll_min, 0.5)
    components = yields[:, None] * shapes
    region = shapes[0] > 0
    others = _fit_yields(shapes[1:], counts)[0] if counts.sum() > 0 else np.zeros(len(shapes) - 1)
    return SpectrumFit(
        tritium=float(yields[0]),
        tritium_error=float((one[1] - one[0]) / 2),
        lines=yields[1:-1],
        line_energies_kev=np.array([line.energy_kev for line in config.sources.xray.lines]),
        background=float(yields[-1]),
        line_scale=line_scale,
        interval=interval,
        nll=nll_min,
        confidence=confidence,
        edges_kev=edges,
        counts=counts,
        components=components,
        region_background=float(components[1:, region].sum()),
        shapes=shapes,
        background_only=others @ shapes[1:],
    )


def fit_energies(catalogue: pd.DataFrame) -> np.ndarray:
    selected = catalogue["class_name"].isin(FIT_CLASSES).to_numpy()
    return catalogue["energy_kev"].to_numpy(dtype=float)[selected]
