"""Plots people can read: the example frame zooms on a deposit of each class present."""

import numpy as np

from pipeline.results.plots import ZOOM_PX, example_frame, zoom_windows

CLASSES = ["background", "muon", "electron", "tritium", "xray", "alpha"]


def test_each_class_present_gets_a_zoom_on_its_largest_deposit():
    truth = np.zeros((1024, 1024), np.uint8)
    truth[500:503, 700:702] = 3  # a small tritium cluster
    truth[10, 10] = 3  # a smaller one: not the one shown
    truth[100:101, 0:300] = 1  # a long muon along row 100
    windows = dict(zoom_windows(truth, CLASSES))
    assert list(windows) == ["muon", "tritium"]
    rows, cols = windows["tritium"]
    assert rows.stop - rows.start == ZOOM_PX and cols.stop - cols.start == ZOOM_PX
    assert rows.start <= 500 and rows.stop >= 503 and cols.start <= 700 and cols.stop >= 702
    rows, cols = windows["muon"]
    assert (cols.start, cols.stop) == (0, 316) and rows.start <= 100 < rows.stop  # margin, clipped


def test_the_example_figure_is_written_for_a_frame_with_and_without_signal(tmp_path):
    truth = np.zeros((64, 64), np.uint8)
    truth[30:32, 30:32] = 4
    charge = np.random.default_rng(0).normal(0, 1, truth.shape) + 50 * (truth > 0)
    example_frame(
        charge, truth, {"unet": truth, "classical": truth * 0}, CLASSES, tmp_path / "a.png"
    )
    empty = np.zeros_like(truth)
    example_frame(charge, empty, {"unet": empty}, CLASSES, tmp_path / "b.png")
    assert (tmp_path / "a.png").stat().st_size > 1000 and (tmp_path / "b.png").stat().st_size > 1000
