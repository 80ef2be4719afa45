"""The frame plausibility check: occupancy, the warning and the refusal."""

import numpy as np
import pytest

from pipeline.calibration import plausibility
from pipeline.config import load_config

CFG = load_config().calibrate


def frame(share: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    charge = rng.normal(0, 1.0, (100, 100))
    charge.ravel()[: int(share * charge.size)] = 50.0
    return charge


def test_occupancy_counts_pixels_above_threshold():
    assert plausibility.occupancy(frame(0.1), 1.0, 4.0) == pytest.approx(0.1, abs=0.001)


def test_a_particle_frame_passes_silently():
    assert plausibility.check(frame(0.01), 1.0, CFG, "a.fits", 0) is None


def test_a_busy_frame_warns_with_its_share():
    said = plausibility.check(frame(0.2), 1.0, CFG, "a.fits", 3)
    assert said == "frame 3: 20.0%"
    (line,) = plausibility.summary([said])
    assert "1 frame(s)" in line and "frame 3: 20.0%" in line


def test_a_light_filled_frame_is_refused_in_one_line():
    with pytest.raises(plausibility.ImplausibleFrame) as caught:
        plausibility.check(frame(0.8), 1.0, CFG, "sky.fits", 2)
    message = str(caught.value)
    assert message.startswith("sky.fits: frame 2 has 80.0%") and "\n" not in message
    assert "refuse_occupancy" in message
