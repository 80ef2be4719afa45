"""Charge from track segments to pixels, for the simulator and the efficiency templates.

Owns what happens to the energy a segment deposits: Fano-distributed e-h pairs, partial charge
collection near the back surface, depth-dependent lateral diffusion (plus any plasma spread) and
binning into pixels, per event. Carriers are followed one by one; dense segments (alpha Bragg
peaks, Fe-55 points), where that costs more than the pixels they can reach, are followed in short
pieces whose carriers are shared over the pixels by multinomial draws from the diffusion Gaussian
integrated over each pixel: the same distribution, 1.7x faster streamed tiles. And what a
pixel cannot hold: `bloom`, the spill of charge past a full well to its neighbours.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from pipeline.config import DetectorConfig, PhysicsConfig
from pipeline.simulation import physics

PIECE_UM = 1.0  # dense segments are followed in pieces this long (far below the 15 um pixel)
DENSE_PAIRS_PER_PIECE = 1000  # ... when they hold this many pairs per piece (alpha tracks)
TRUNCATE_SIGMA = 5.0  # their diffusion Gaussian is cut at +-5 sigma (6e-7 of the charge)
CELLS_PER_CHUNK = 1 << 22  # pixel cells of pieces spread at once (32 MB of counts)


def pair_counts(
    energy_kev: np.ndarray, phys: PhysicsConfig, rng: np.random.Generator
) -> np.ndarray:
    """Electron-hole pairs per deposit: mean E/eps, variance F E/eps (Fano)."""
    mean = np.asarray(energy_kev) * 1000.0 / phys.pair_energy_ev
    pairs = rng.normal(mean, np.sqrt(phys.fano_factor * mean))
    return np.maximum(np.rint(pairs), 0).astype(np.int64)


def collection_efficiency(depth_um: np.ndarray, det: DetectorConfig) -> np.ndarray:
    """Charge collected from depth z: nothing from the dead sub-layer at the back surface
    (`backside_dead_um`), then rising across the partial-collection layer as u^p, u the
    fraction of the layer crossed (p = `backside_pcc_shape`; 1: a linear ramp), then all."""
    fraction = _layer_fraction(np.asarray(depth_um, float), det)
    return np.clip(fraction, 0.0, 1.0) ** det.backside_pcc_shape


def _layer_fraction(depth_um: np.ndarray, det: DetectorConfig) -> np.ndarray:
    """u: how far into the partial-collection layer depth z is, from the dead sub-layer's edge
    (0) to the layer's front edge (1); a step at the dead sub-layer where there is no layer."""
    from_back = det.thickness_um - det.backside_dead_um - depth_um
    if det.backside_pcc_um == 0:
        return np.where(from_back >= 0, np.inf, -np.inf)
    return from_back / det.backside_pcc_um


def collected_electrons(
    seg: physics.Segments,
    n_events: int,
    det: DetectorConfig,
    phys: PhysicsConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Electrons collected per event, anywhere on the frame: each segment's Fano pairs, kept
    binomially with the collection efficiency averaged along it (exact for the back layer's
    profile, whatever its shape). For spectra, where `collect`'s
    diffusion and pixels would only cost time; charge leaving the frame is not lost here."""
    pairs = pair_counts(seg.energy_kev, phys, rng)
    kept = rng.binomial(pairs, _mean_collection(seg.start[:, 2], seg.end[:, 2], det))
    return np.bincount(seg.event, kept, minlength=n_events).astype(np.float64)


def _mean_collection(z0: np.ndarray, z1: np.ndarray, det: DetectorConfig) -> np.ndarray:
    """`collection_efficiency` averaged over each straight piece from depth z0 to z1: the
    integral of clip(u, 0, 1)^p over u, divided by the span (exact for any p)."""
    if det.backside_pcc_um == 0 and det.backside_dead_um == 0:
        return np.ones_like(z0)
    p = det.backside_pcc_shape
    if det.backside_pcc_um == 0:  # a step: the share of the piece in front of the dead layer
        edge = det.thickness_um - det.backside_dead_um
        low, high = np.minimum(z0, z1), np.maximum(z0, z1)
        span = np.maximum(high - low, 1e-12)
        inside = np.clip((edge - low) / span, 0.0, 1.0)
        return np.where(high - low < 1e-12, (low <= edge).astype(float), inside)
    u0, u1 = _layer_fraction(z0, det), _layer_fraction(z1, det)

    def integral(u: np.ndarray) -> np.ndarray:  # of clip(u, 0, 1)^p
        inside = np.clip(u, 0.0, 1.0) ** (p + 1) / (p + 1)
        return np.where(u <= 1, inside, u - p / (p + 1))

    span = u1 - u0
    flat = np.abs(span) < 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (integral(u1) - integral(u0)) / span
    return np.clip(np.where(flat, np.clip(u0, 0.0, 1.0) ** p, mean), 0.0, 1.0)


def collect(
    seg: physics.Segments, det: DetectorConfig, phys: PhysicsConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Follow every carrier: uniform along its segment, kept with the collection efficiency,
    diffused laterally for its depth, binned. Returns (event, pixel, electrons) per event-pixel.
    Dense segments (alpha Bragg peaks) are followed by pieces, in distribution the same."""
    pairs = pair_counts(seg.energy_kev, phys, rng)
    pieces = np.maximum(np.ceil(_length(seg) / PIECE_UM), 1).astype(np.int64)
    dense = pairs >= DENSE_PAIRS_PER_PIECE * pieces
    sparse_keys = _collect_carriers(seg, np.where(dense, 0, pairs), det, phys, rng)
    dense_keys, dense_counts = _collect_pieces(
        seg, np.where(dense, pairs, 0), pieces, det, phys, rng
    )
    npix = det.height * det.width
    n_keys = (int(seg.event.max()) + 1 if len(seg.event) else 0) * npix
    keys, counts = _count_keys(
        np.concatenate([sparse_keys, dense_keys]),
        np.concatenate([np.ones(len(sparse_keys), np.int64), dense_counts]),
        n_keys,
    )
    return keys // npix, keys % npix, counts.astype(np.float64)


def _length(seg: physics.Segments) -> np.ndarray:
    return np.linalg.norm(seg.end - seg.start, axis=1)


def _pixel_key(
    seg: physics.Segments, owner: np.ndarray, col: np.ndarray, row: np.ndarray, det: DetectorConfig
) -> tuple[np.ndarray, np.ndarray]:
    """event x npix + pixel of the carriers (or cells) inside the frame, and which those are."""
    inside = (col >= 0) & (col < det.width) & (row >= 0) & (row < det.height)
    pixel = (row[inside] * det.width + col[inside]).astype(np.int64)
    return seg.event[owner[inside]] * (det.height * det.width) + pixel, inside


def _collect_carriers(
    seg: physics.Segments,
    pairs: np.ndarray,
    det: DetectorConfig,
    phys: PhysicsConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """The event-pixel key of every collected carrier, followed one by one."""
    owner = np.repeat(np.arange(len(pairs)), pairs)
    t = rng.random(len(owner))
    z = _along(seg.start[:, 2], seg.end[:, 2], owner, t)
    kept = rng.random(len(owner)) < collection_efficiency(z, det)
    owner, t, z = owner[kept], t[kept], z[kept]
    x, y = (_along(seg.start[:, i], seg.end[:, i], owner, t) for i in range(2))
    sigma = np.hypot(physics.diffusion_sigma_um(z, phys), seg.extra_sigma_um[owner])
    col = np.floor((x + sigma * rng.normal(size=len(owner))) / det.pixel_size_um)
    row = np.floor((y + sigma * rng.normal(size=len(owner))) / det.pixel_size_um)
    return _pixel_key(seg, owner, col, row, det)[0]


def _collect_pieces(
    seg: physics.Segments,
    pairs: np.ndarray,
    pieces: np.ndarray,
    det: DetectorConfig,
    phys: PhysicsConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(event-pixel key, electrons) of dense segments: each cut into pieces of <= PIECE_UM whose
    carriers (multinomial) sit at the piece's centre, kept binomially with the collection
    efficiency there, and spread over the pixels by a multinomial draw from the diffusion
    Gaussian integrated over each pixel (columns, then rows within each column)."""
    chosen = np.flatnonzero(pairs > 0)
    if len(chosen) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    m = pieces[chosen]
    shares = (np.arange(m.max())[None, :] < m[:, None]) / m[:, None]
    counts = rng.multinomial(pairs[chosen], shares)
    owner_of, piece = np.nonzero(counts)
    owner = chosen[owner_of]
    t = (piece + 0.5) / m[owner_of]
    centre = [_along(seg.start[:, i], seg.end[:, i], owner, t) for i in range(3)]
    kept = rng.binomial(counts[owner_of, piece], collection_efficiency(centre[2], det))
    sigma = np.hypot(physics.diffusion_sigma_um(centre[2], phys), seg.extra_sigma_um[owner])
    sigma = np.maximum(sigma, 1e-3 * det.pixel_size_um)
    width = int(np.ceil(2 * TRUNCATE_SIGMA * sigma.max() / det.pixel_size_um)) + 2
    first_col, p_col = _pixel_probabilities(centre[0], sigma, width, det.pixel_size_um)
    first_row, p_row = _pixel_probabilities(centre[1], sigma, width, det.pixel_size_um)
    keys: list[np.ndarray] = []
    electrons: list[np.ndarray] = []
    step = max(1, CELLS_PER_CHUNK // width**2)  # bounds the (pieces, K, K) array in memory
    for lo in range(0, len(kept), step):
        part = slice(lo, lo + step)
        per_col = rng.multinomial(kept[part], p_col[part])  # (P, K)
        cells = rng.multinomial(per_col, p_row[part, None, :])  # (P, K columns, K rows)
        p, c, r = np.nonzero(cells)
        p_all = p + lo
        key, inside = _pixel_key(seg, owner[p_all], first_col[p_all] + c, first_row[p_all] + r, det)
        keys.append(key)
        electrons.append(cells[p, c, r][inside])
    return np.concatenate(keys), np.concatenate(electrons)


def _pixel_probabilities(
    centre_um: np.ndarray, sigma_um: np.ndarray, width: int, pixel_um: float
) -> tuple[np.ndarray, np.ndarray]:
    """First pixel index and (P, width) probabilities of a Gaussian over `width` pixels around
    its centre, renormalised over the window (it spans +-TRUNCATE_SIGMA)."""
    first = np.floor(centre_um / pixel_um).astype(np.int64) - width // 2
    edges = (first[:, None] + np.arange(width + 1)[None, :]) * pixel_um
    cdf = special.ndtr((edges - centre_um[:, None]) / sigma_um[:, None])
    prob = np.diff(cdf, axis=1)
    return first, prob / prob.sum(axis=1, keepdims=True)


def _count_keys(key: np.ndarray, weight: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys in [0, n_keys) and their summed weights: a histogram when the key
    space is small against the number of keys (streamed tiles), else a sort (full frames)."""
    if n_keys <= max(4 * len(key), 1 << 16):
        counts = np.bincount(key, weight, minlength=n_keys)
        keys = np.flatnonzero(counts)
        return keys, counts[keys].astype(np.int64)
    keys, inverse = np.unique(key, return_inverse=True)
    return keys, np.bincount(inverse, weight, minlength=len(keys)).astype(np.int64)


def _along(start: np.ndarray, end: np.ndarray, owner: np.ndarray, t: np.ndarray) -> np.ndarray:
    """One coordinate of carriers placed at fraction t along their segment."""
    return start[owner] + t * (end - start)[owner]


def bloom(signal: np.ndarray, full_well: float) -> np.ndarray:
    """Charge above full well spills to the neighbours along the column (the vertical clock
    direction) until every pixel holds at most a full well; what leaves the frame is lost."""
    columns = np.nonzero((signal > full_well).any(axis=0))[0]
    out = signal.copy()
    if len(columns) == 0:
        return out
    sub = out[:, columns]
    for _ in range(4 * signal.shape[0]):
        excess = np.clip(sub - full_well, 0, None)
        if excess.max() <= 1e-6 * full_well:
            break
        sub -= excess
        sub[:-1] += excess[1:] / 2
        sub[1:] += excess[:-1] / 2
    out[:, columns] = np.minimum(sub, full_well)
    return out
