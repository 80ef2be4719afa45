"""Charge clusters as connected components: one home for seeded clustering and charge moments.

Owns the 8-connected seeded clustering of the CCD experiments (pixels above a neighbour threshold
joined 8-connected, a cluster kept when one pixel passes a seed threshold), used by the classical
reconstruction and the Fe-55 gain fit, and the per-component sums and charge-weighted moments
(centroid, covariance, extent along an axis) that the catalogue and the classical shape cuts
share, and the clusters' shape features (`cluster_features`) the classical cuts, the ceiling and
the artefact shape rules read. Sums run over the labelled pixels only (bincount), so the cost
after labelling is that of the deposits, not of the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def seeded_components(
    image: np.ndarray, neighbour_threshold: float, seed_threshold: float
) -> tuple[np.ndarray, int]:
    """8-connected components of pixels above `neighbour_threshold` that hold at least one pixel
    above `seed_threshold`, relabelled 1..n (0 elsewhere); returns (components, n)."""
    values = np.asarray(image, dtype=np.float64)
    components, n = ndimage.label(values > neighbour_threshold, EIGHT_CONNECTED)
    if n == 0:
        return components.astype(np.int32), 0
    peaks = ndimage.maximum(values, components, np.arange(1, n + 1))
    keep = np.asarray(peaks) > seed_threshold
    lut = np.zeros(n + 1, dtype=np.int32)
    lut[1:][keep] = np.arange(1, int(keep.sum()) + 1)
    return lut[components], int(keep.sum())


@dataclass(frozen=True)
class Moments:
    """Per component 1..n: pixel count, charge sum and the charge-weighted (positive charge)
    centroid x (column), y (row) and covariance xx, yy, xy, in pixels; pixel centres at
    integers. `rows`, `cols` and `ids` (0-based) are the labelled pixels, for further sums."""

    pixels: np.ndarray
    charge: np.ndarray
    x: np.ndarray
    y: np.ndarray
    xx: np.ndarray
    yy: np.ndarray
    xy: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    ids: np.ndarray

    def total(self, values: np.ndarray) -> np.ndarray:
        """Sum of per-pixel `values` (aligned with `rows`, `cols`) over each component."""
        return np.bincount(self.ids, weights=values, minlength=len(self.pixels))

    def extent(self, angle: np.ndarray) -> np.ndarray:
        """Extent of each component's pixel centres along its axis at `angle` (radians), + 1."""
        theta = angle[self.ids]
        projection = self.cols * np.cos(theta) + self.rows * np.sin(theta)
        high = np.full(len(self.pixels), -np.inf)
        low = np.full(len(self.pixels), np.inf)
        np.maximum.at(high, self.ids, projection)
        np.minimum.at(low, self.ids, projection)
        return high - low + 1


def moments(components: np.ndarray, n: int, charge_e: np.ndarray) -> Moments:
    """Sums and charge-weighted moments of components 1..n of a labelled frame."""
    rows, cols = np.nonzero(components)
    ids = components[rows, cols].astype(np.int64) - 1
    q = np.asarray(charge_e)[rows, cols].astype(np.float64)
    rr, cc = rows.astype(np.float64), cols.astype(np.float64)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(ids, weights=values, minlength=n)

    weight = np.clip(q, 0, None)
    w = np.maximum(total(weight), 1e-12)
    x, y = total(weight * cc) / w, total(weight * rr) / w
    return Moments(
        pixels=np.bincount(ids, minlength=n),
        charge=total(q),
        x=x,
        y=y,
        xx=total(weight * cc**2) / w - x**2,
        yy=total(weight * rr**2) / w - y**2,
        xy=total(weight * cc * rr) / w - x * y,
        rows=rows,
        cols=cols,
        ids=ids,
    )


PIXEL_VARIANCE = 1.0 / 12.0  # variance of a uniform charge spread across one pixel (px^2)
FEATURE_COLUMNS = (
    "pixels",
    "energy_kev",
    "sigma_x",
    "sigma_y",
    "elongation",
    "length_px",
    "sigma_minor",
    "rows_spanned",
    "cols_spanned",
)


def _eigen(xx: np.ndarray, yy: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, ...]:
    """Larger and smaller eigenvalue of [[xx, xy], [xy, yy]] and the major axis angle."""
    half_trace, half_diff = (xx + yy) / 2, (xx - yy) / 2
    root = np.hypot(half_diff, xy)
    major = np.maximum(half_trace + root, 0)
    minor = np.clip(half_trace - root, 0, major)
    return major, minor, 0.5 * np.arctan2(2 * xy, xx - yy)


def cluster_features(
    components: np.ndarray, n: int, charge_e: np.ndarray, pair_energy_ev: float
) -> pd.DataFrame:
    """One row per cluster 1..n: pixels, energy_kev, charge-weighted sigma_x and sigma_y
    (positive charge), elongation = sqrt(major / minor eigenvalue of the charge-weighted
    covariance, each plus the 1/12 px^2 variance of one pixel so a line or a single pixel stays
    finite; >= 1), length_px (extent of the pixel centres along the major axis, + 1),
    sigma_minor = sqrt(minor eigenvalue), and the rows and columns each spans."""
    if n == 0:
        return pd.DataFrame({name: pd.Series(dtype=float) for name in FEATURE_COLUMNS})
    m = moments(components, n, charge_e)
    xx, yy = np.maximum(m.xx, 0), np.maximum(m.yy, 0)
    major, minor, angle = _eigen(xx, yy, m.xy)
    return pd.DataFrame(
        {
            "pixels": m.pixels.astype(int),
            "energy_kev": m.charge * pair_energy_ev / 1000.0,
            "sigma_x": np.sqrt(xx),
            "sigma_y": np.sqrt(yy),
            "elongation": np.sqrt((major + PIXEL_VARIANCE) / (minor + PIXEL_VARIANCE)),
            "length_px": m.extent(angle),
            "sigma_minor": np.sqrt(minor),
            "rows_spanned": _span(m.rows, m.ids, n),
            "cols_spanned": _span(m.cols, m.ids, n),
        }
    )


def orientation(components: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per component 1..n, of its pixels' positions (each alike): the major axis' angle from the
    rows' direction (radians), and the rows and the columns it spans."""
    m = moments(components, n, np.ones(components.shape))
    angle = _eigen(m.xx, m.yy, m.xy)[2]
    return angle, _span(m.rows, m.ids, n), _span(m.cols, m.ids, n)


def _span(index: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """Rows (or columns) each component 0..n-1 spans: max - min + 1."""
    high = np.full(n, -1)
    low = np.full(n, np.iinfo(np.int64).max)
    np.maximum.at(high, ids, index)
    np.minimum.at(low, ids, index)
    return (high - low + 1).astype(int)
