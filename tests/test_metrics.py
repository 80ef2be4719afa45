"""Pixel metrics: IoU, precision, recall per class and the macro IoU over signal classes."""

import math

import pytest
import torch

from pipeline.metrics import class_metrics, pixel_stats


def test_metrics_from_pixel_stats():
    target = torch.tensor([[[0, 1, 1, 2]]])
    pred = torch.tensor([[[0, 1, 2, 2]]])
    metrics = class_metrics(pixel_stats(pred, target, 3), ["background", "a", "b"])
    assert metrics["iou_a"] == pytest.approx(0.5) and metrics["iou_b"] == pytest.approx(0.5)
    assert metrics["precision_a"] == 1.0 and metrics["recall_b"] == 1.0
    assert metrics["macro_iou"] == pytest.approx(0.5)
    ignored = torch.tensor([[[0, 255, 255, 2]]])
    assert class_metrics(pixel_stats(pred, ignored, 3), ["background", "a", "b"])["iou_b"] == 1.0


def test_nothing_to_score_is_nan_never_perfect():
    classes = ["background", "a", "b"]
    target = torch.tensor([[[0, 1, 1, 0]]])
    pred = torch.tensor([[[0, 1, 0, 0]]])
    metrics = class_metrics(pixel_stats(pred, target, 3), classes)
    assert math.isnan(metrics["iou_b"]) and math.isnan(metrics["precision_b"])  # no b anywhere
    assert metrics["macro_iou"] == pytest.approx(0.5)  # the mean of the defined scores
    empty = class_metrics(torch.zeros(4, 3, dtype=torch.long), classes)  # an empty set
    assert all(math.isnan(v) for v in empty.values())
