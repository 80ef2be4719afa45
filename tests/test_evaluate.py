"""Evaluation: metric functions on hand-computed cases, and whole files scored side by side."""

import json

import numpy as np
import pytest

from pipeline.evaluate import (
    cluster_purity_counts,
    comparison_table,
    confusion_matrix,
    evaluate_files,
    event_efficiency_counts,
    f1,
    instances_from_labels,
    pixel_scores,
)
from pipeline.io import open_frames, write_map
from pipeline.paths import EVALUATE_FILES


def test_confusion_and_pixel_scores_by_hand():
    truth = np.array([[0, 1, 1, 2]])
    pred = np.array([[0, 1, 2, 2]])
    matrix = confusion_matrix(truth, pred, 4)
    assert matrix.tolist() == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    scores = pixel_scores(matrix)
    np.testing.assert_allclose(scores["iou"][:3], [1.0, 0.5, 0.5])
    np.testing.assert_allclose(scores["precision"][:3], [1.0, 1.0, 0.5])
    np.testing.assert_allclose(scores["recall"][:3], [1.0, 0.5, 1.0])
    assert np.isnan(scores["iou"][3])  # a class seen nowhere has no IoU


def test_event_efficiency_needs_most_pixels_right():
    instances = np.array([[7, 7, 7, 9, 9, 0]])
    truth = np.array([[3, 3, 3, 4, 4, 0]])
    pred = np.array([[3, 3, 0, 4, 0, 4]])
    events, found = event_efficiency_counts(instances, truth, pred, 6)
    assert events.tolist() == [0, 0, 0, 1, 1, 0]
    assert found.tolist() == [0, 0, 0, 1, 0, 0]  # 2 of 3 right: found; 1 of 2: not


def test_cluster_purity_counts_connected_predictions():
    truth = np.array([[3, 3, 0, 0, 4], [0, 0, 0, 0, 4]])
    pred = np.array([[3, 3, 0, 3, 3], [0, 0, 0, 0, 3]])
    clusters, pure = cluster_purity_counts(truth, pred, 6)
    assert clusters[3] == 2 and pure[3] == 1  # the second cluster is mostly X-ray pixels
    assert f1(np.array([1.0]), np.array([0.5]))[0] == pytest.approx(2 / 3)
    np.testing.assert_array_equal(
        f1(np.array([0.0, np.nan, np.nan]), np.array([np.nan, 0.0, np.nan])), [0.0, 0.0, np.nan]
    )


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
        assert perfect["per_class"][cls]["pixel_iou"] == 1.0
        assert empty["per_class"][cls]["cluster_efficiency"] == 0.0
        assert empty["per_class"][cls]["cluster_f1"] == 0.0
    assert perfect["tritium_count_bias_per_frame"] <= 0  # touching clusters merge, never split
    assert empty["tritium_count_bias_per_frame"] == -perfect["tritium_true_per_frame"]
    assert 0 < perfect["tritium_true_per_frame"] <= true_tritium
    written = {p.name for p in (tmp_path / "eval").iterdir()}
    assert written == set(EVALUATE_FILES)  # what pipeline.paths guards
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["perfect"]
    table = comparison_table(summary, tiny.classes)
    assert "perfect cluster F1" in table and "| tritium |" in table
    lines = table.splitlines()
    assert len({line.count("|") for line in lines}) == 1  # every row has every column
    html = (tmp_path / "eval" / "comparison.html").read_text()
    assert html.count("<tr") == len(lines) - 1 and "perfect cluster F1" in html


def test_instances_from_labels_number_each_connected_cluster_of_a_class():
    labels = np.zeros((5, 6), np.uint8)
    labels[0, 0:2] = 3
    labels[1, 2] = 3  # diagonal neighbour: the same tritium event
    labels[1, 3] = 4  # touches it, but another class: its own event
    labels[4, 5] = 3
    inst = instances_from_labels(labels)
    assert inst[0, 0] == inst[0, 1] == inst[1, 2] != inst[1, 3]
    assert inst[4, 5] not in (0, inst[0, 0], inst[1, 3])
    assert len(np.unique(inst)) == 4 and (inst[labels == 0] == 0).all()
