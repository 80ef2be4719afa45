"""The charge-transfer operator of a CCD readout along one axis, and its exact inverse.

Model (Janesick, Scientific Charge-Coupled Devices, SPIE 2001, ch. 5): along the readout a pixel
loses a share `share` of its charge to traps, released into the pixels read after it (higher
index) with an exponential profile of mean length `trail_px`; what leaves the frame is lost.
The simulator makes CTI trails with `transferred` (pipeline/simulation/artefacts.py); the
calibration undoes them with `restored` (pipeline/calibration/cti.py). Both are linear IIR
filters: y = (1 - s) x + s R x, with R the release filter (1 - a) z^-1 / (1 - a z^-1), a =
exp(-1 / trail_px), so x = y (1 - a z^-1) / ((1 - s) + (s - a) z^-1), stable for s < 1/2.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def _decay(trail_px: float) -> float:
    return float(np.exp(-1.0 / trail_px))


def transferred(charge: np.ndarray, share: float, trail_px: float, axis: int) -> np.ndarray:
    """`charge` as read after transfer along `axis` with inefficiency `share` (0 <= share < 1/2)."""
    a = _decay(trail_px)
    return np.asarray(lfilter([1.0 - share, share - a], [1.0, -a], charge, axis=axis))


def restored(read: np.ndarray, share: float, trail_px: float, axis: int) -> np.ndarray:
    """The charge before transfer: the exact inverse of `transferred`. A negative `share` undoes
    trails toward lower indices (a readout from the other end)."""
    if share < 0:
        flipped = np.flip(read, axis=axis)
        return np.flip(restored(flipped, -share, trail_px, axis), axis=axis)
    a = _decay(trail_px)
    return np.asarray(lfilter([1.0, -a], [1.0 - share, share - a], read, axis=axis))
