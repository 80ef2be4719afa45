"""Evaluation: metric functions on hand-computed cases, and whole files scored side by side."""

import json

import numpy as np

from pipeline.commands import folder_files
from pipeline.evaluation.evaluate import evaluate_files
from pipeline.evaluation.tables import comparison_table
from pipeline.io import open_frames, write_map

EVALUATE_FILES = folder_files("evaluate")


def test_perfect_and_empty_maps_score_one_and_zero(tiny, tiny_files, tmp_path):
    with open_frames(tiny_files["val"], tiny.io, tiny.classes) as ff:
        truth = ff.labels.compute()
        true_tritium = int((ff.events["class"] == 3).sum())
    write_map(tmp_path / "perfect.h5", truth, tiny.classes, "val.h5")
    write_map(tmp_path / "empty.h5", np.zeros_like(truth), tiny.classes, "val.h5")
    maps = {"perfect": tmp_path / "perfect.h5", "empty": tmp_path / "empty.h5"}
    summary = evaluate_files(tiny, tiny_files["val"], maps, tmp_path / "eval", progress=False)
    perfect, empty = summary["perfect"], summary["empty"]
    present = [c for c, s in perfect["per_class"].items() if s["true_events"] > 0]
    assert "tritium" in present
    for cls in present:
        assert perfect["per_class"][cls]["cluster_f1"] == 1.0
        low, high = perfect["per_class"][cls]["cluster_f1_interval"]
        assert high == 1.0 and low < 1.0  # a perfect score on few events: its interval is wide
        assert perfect["per_class"][cls]["pixel_iou"] == 1.0
        assert empty["per_class"][cls]["cluster_efficiency"] == 0.0
        assert empty["per_class"][cls]["cluster_f1"] == 0.0
    assert perfect["tritium_count_bias_per_frame"] <= 0  # touching clusters merge, never split
    assert empty["tritium_count_bias_per_frame"] == -perfect["tritium_true_per_frame"]
    assert 0 < perfect["tritium_true_per_frame"] <= true_tritium
    written = {p.name for p in (tmp_path / "eval").iterdir()}
    assert written == set(EVALUATE_FILES)  # what pipeline.paths guards
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["perfect"]
    table = comparison_table(summary, tiny.classes, "val.h5 (2 frames)")
    assert table.startswith("perfect, empty on val.h5 (2 frames), scored against its truth.")
    events = perfect["per_class"]["tritium"]["true_events"]
    assert "perfect cluster F1 (95% interval)" in table and f"| tritium | {events} |" in table
    # each with its interval apart: perfect better than empty, and said so
    assert "macro cluster F1: perfect better than empty (intervals apart" in table
    lines = table.splitlines()[2:]
    assert len({line.count("|") for line in lines}) == 1  # every row has every column
    html = (tmp_path / "eval" / "comparison.html").read_text()
    assert html.count("<tr") == len(lines) - 1 and "perfect cluster F1" in html
    assert "val.h5 (2 frames)" in html


def test_a_map_of_other_frames_of_the_same_shape_is_refused(tiny, tmp_path):
    """The map records a digest of the frames it labelled: scored against another file of the
    same shape it is refused in one line (the same frames in another format agree: tests of
    infer score a FITS map against its HDF5 twin)."""
    import pytest

    from pipeline.core.errors import FrameFileError
    from pipeline.inference.classical import classical_file
    from pipeline.simulation.simulate import simulate_file

    one = simulate_file(tiny, tmp_path / "one.h5", 2, seed=1, progress=False)[0]
    other = simulate_file(tiny, tmp_path / "other.h5", 2, seed=2, progress=False)[0]
    classical_file(tiny, one, tmp_path / "map.h5")
    maps = {"classical": tmp_path / "map.h5"}
    evaluate_files(tiny, one, maps, tmp_path / "same", progress=False)
    with pytest.raises(FrameFileError, match=r"made from other frames \(one.h5\)") as info:
        evaluate_files(tiny, other, maps, tmp_path / "other", progress=False)
    assert "\n" not in str(info.value) and not (tmp_path / "other").exists()
