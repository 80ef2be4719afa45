"""Counting statistics: Garwood intervals, Currie limits, per-frame counts."""

import pandas as pd
import pytest

from pipeline.core.errors import CatalogueError
from pipeline.measurement import counting
from pipeline.results.metrics import poisson_interval


@pytest.mark.parametrize(
    ("n", "confidence", "expected"),
    [(0, 0.95, (0.0, 3.689)), (10, 0.95, (4.795, 18.39)), (5, 0.90, (1.970, 10.51))],
)
def test_garwood_interval(n, confidence, expected):
    interval = tuple(float(v) for v in poisson_interval(n, confidence))
    assert interval == pytest.approx(expected, rel=1e-3, abs=1e-9)


def test_currie_detection_limit():
    assert counting.currie_detection_limit(0) == pytest.approx(2.71)
    assert counting.currie_detection_limit(100) == pytest.approx(2.71 + 46.5)


def test_counts_per_frame_includes_empty_frames():
    catalogue = pd.DataFrame(
        {
            "frame": [0, 0, 0, 2, 2, 3],
            "class_name": ["tritium", "xray", "tritium", "muon", "xray", "alpha"],
            "energy_kev": [1.0, 5.9, 2.0, 500.0, 8.0, 5000.0],
        }
    )
    table = counting.counts_per_frame(catalogue, ["muon", "tritium", "xray", "electron"], 5)
    assert list(table.index) == [0, 1, 2, 3, 4] and table.index.name == "frame"
    assert table["tritium"].tolist() == [2, 0, 0, 0, 0]
    assert table["xray"].tolist() == [1, 0, 1, 0, 0]
    assert table["muon"].tolist() == [0, 0, 1, 0, 0]
    assert table["electron"].tolist() == [0] * 5
    with pytest.raises(CatalogueError, match="exceed"):
        counting.counts_per_frame(catalogue, ["tritium"], 3)
