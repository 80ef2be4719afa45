"""Metrics on hand-computed cases: the confusion matrix, IoU, precision, recall and the macro IoU
over signal classes (validation and evaluation share them), cluster efficiency and purity."""

import math

import numpy as np
import pytest

from pipeline.results.metrics import (
    class_metrics,
    cluster_purity_counts,
    confusion_matrix,
    event_efficiency_counts,
    f1,
    instances_from_labels,
    pixel_scores,
)


def test_metrics_from_pixel_stats():
    target = np.array([[[0, 1, 1, 2]]])
    pred = np.array([[[0, 1, 2, 2]]])
    metrics = class_metrics(confusion_matrix(target, pred, 3), ["background", "a", "b"])
    assert metrics["iou_a"] == pytest.approx(0.5) and metrics["iou_b"] == pytest.approx(0.5)
    assert metrics["precision_a"] == 1.0 and metrics["recall_b"] == 1.0
    assert metrics["macro_iou"] == pytest.approx(0.5)
    ignored = np.array([[[0, 255, 255, 2]]])
    classes = ["background", "a", "b"]
    assert class_metrics(confusion_matrix(ignored, pred, 3), classes)["iou_b"] == 1.0


def test_nothing_to_score_is_nan_never_perfect():
    classes = ["background", "a", "b"]
    target = np.array([[[0, 1, 1, 0]]])
    pred = np.array([[[0, 1, 0, 0]]])
    metrics = class_metrics(confusion_matrix(target, pred, 3), classes)
    assert math.isnan(metrics["iou_b"]) and math.isnan(metrics["precision_b"])  # no b anywhere
    assert metrics["macro_iou"] == pytest.approx(0.5)  # the mean of the defined scores
    empty = class_metrics(np.zeros((3, 3), dtype=np.int64), classes)  # an empty set
    assert all(math.isnan(v) for v in empty.values())


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
        f1(np.array([0.0, np.nan, np.nan]), np.array([np.nan, 0.0, np.nan])), [0.0, np.nan, np.nan]
    )


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


def test_cluster_f1_intervals_match_the_jeffreys_interval_and_narrow_with_events():
    """With every predicted cluster pure, F1 = 2e/(1+e) is monotone in the efficiency e, so its
    interval is the efficiency's Jeffreys interval mapped through it; with 100x the events the
    interval is about 10x narrower; a perfect score on one event reaches 1, one on none is
    its value."""
    from scipy import stats

    from pipeline.results.metrics import cluster_f1_intervals

    found, events = np.array([0, 30]), np.array([0, 40])
    pure, clusters = np.array([0, 10**6]), np.array([0, 10**6])  # purity pinned at 1
    low, high, macro = cluster_f1_intervals(found, events, pure, clusters, 0.95)
    e_low, e_high = stats.beta.ppf([0.025, 0.975], 30.5, 10.5)
    assert low[1] == pytest.approx(2 * e_low / (1 + e_low), abs=0.005)
    assert high[1] == pytest.approx(2 * e_high / (1 + e_high), abs=0.005)
    assert np.isnan(low[0]) and macro == pytest.approx((low[1], high[1]), abs=1e-9)
    wide = high[1] - low[1]
    low, high, _ = cluster_f1_intervals(found * 100, events * 100, pure, clusters, 0.95)
    assert (high[1] - low[1]) == pytest.approx(wide / 10, rel=0.15)
    low, high, _ = cluster_f1_intervals([0, 1], [0, 1], [0, 1], [0, 1], 0.95)
    assert high[1] == 1.0 and low[1] < 0.3  # one event found: not evidence of 1.0
    again = cluster_f1_intervals([0, 1], [0, 1], [0, 1], [0, 1], 0.95)
    assert again[0][1] == low[1]  # seeded: the same counts, the same interval
