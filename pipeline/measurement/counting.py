"""Counting statistics of the activity: per-frame cluster counts and Currie's decision threshold
and detection limit (exact Poisson intervals: pipeline/results/metrics.py)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.core.errors import CatalogueError


def counts_per_frame(
    catalogue: pd.DataFrame, classes: Sequence[str], n_frames: int
) -> pd.DataFrame:
    """Cluster counts per frame (index 0..n_frames-1, empty frames included) and class name."""
    frames = catalogue["frame"].to_numpy(dtype=int)
    if len(frames) and (frames.min() < 0 or frames.max() >= n_frames):
        raise CatalogueError(f"catalogue frames {frames.min()}..{frames.max()} exceed {n_frames}")
    columns = {
        name: np.bincount(frames[(catalogue["class_name"] == name).to_numpy()], minlength=n_frames)
        for name in classes
    }
    return pd.DataFrame(columns, index=pd.RangeIndex(n_frames, name="frame"), dtype=int)


def currie_decision_threshold(background_counts: float) -> float:
    """Currie (1968) decision threshold in counts, 5 % false positives, paired blank: a net count
    above it is a detection (the critical level L_C = 2.33 sqrt(B) of the same convention as
    `currie_detection_limit`)."""
    return 2.326 * float(np.sqrt(max(background_counts, 0.0)))


def currie_detection_limit(background_counts: float) -> float:
    """Currie (1968) detection limit in counts, 5 % false positives and negatives, paired blank."""
    return 2.71 + 4.65 * float(np.sqrt(max(background_counts, 0.0)))
