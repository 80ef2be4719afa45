"""Whether a calibrated frame looks like a particle detector's frame (`calibrate.plausibility`).

Owns the frame-level check every reconstruction runs before labelling a frame: its occupancy,
the share of pixels above `sigma` x the measured noise. A frame of particle deposits holds a few
per cent at most; far more is light (a flat field, a sky), a saturated or broken readout, or a
wrong gain or pedestal, where a per-pixel class would be a guess. Above `warn_occupancy` the
command warns and goes on; above `refuse_occupancy` it stops with a one-line error naming the
file and frame, and writes nothing.
"""

from __future__ import annotations

import numpy as np

from pipeline.config.sections import CalibrateConfig
from pipeline.core.errors import CalibrationError

MAX_LISTED = 3  # frames named in the summary; the rest counted


class ImplausibleFrame(CalibrationError):
    """A frame too full of charge for a particle detector's."""


def occupancy(charge_e: np.ndarray, noise_e: float, sigma: float) -> float:
    """Share of the frame's finite pixels above `sigma` x `noise_e`."""
    finite = np.isfinite(charge_e)
    if not finite.any():
        return 0.0
    return float(np.mean(charge_e[finite] > sigma * max(noise_e, 1e-12)))


def check(
    charge_e: np.ndarray, noise_e: float, cfg: CalibrateConfig, name: str, frame: int
) -> str | None:
    """A warning line (or None) for frame `frame` of file `name`; ImplausibleFrame past the
    refusal limit."""
    p = cfg.plausibility
    share = occupancy(charge_e, noise_e, p.sigma)
    if share > p.refuse_occupancy:
        raise ImplausibleFrame(
            f"{name}: frame {frame} has {share:.1%} of its pixels above {p.sigma:g} sigma "
            f"(calibrate.plausibility.refuse_occupancy {p.refuse_occupancy:g}): not a frame of "
            "particle deposits (light, saturation, or a wrong gain or pedestal); nothing written"
        )
    if share > p.warn_occupancy:
        return f"frame {frame}: {share:.1%}"
    return None


def summary(warnings: list[str]) -> tuple[str, ...]:
    """One warning line for the frames past `warn_occupancy`, or none."""
    if not warnings:
        return ()
    listed = "; ".join(warnings[:MAX_LISTED])
    more = f" and {len(warnings) - MAX_LISTED} more" if len(warnings) > MAX_LISTED else ""
    return (
        f"warning: {len(warnings)} frame(s) hold more pixels above threshold than a particle "
        f"frame (calibrate.plausibility.warn_occupancy): {listed}{more}; labels there are "
        "less trustworthy (light or readout trouble?)",
    )
