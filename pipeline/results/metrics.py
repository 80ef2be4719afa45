"""Segmentation and cluster metrics as pure numpy functions on label arrays, one implementation
each, used alike by validation (training) and by evaluation.

Owns the pixel confusion matrix and, from it, per-class IoU, precision and recall and the macro
IoU over the signal classes (every class but index 0, background); the per-class cluster
efficiency, purity and F1; truth events of files without instances. Padded pixels (`IGNORE`)
count nowhere. A score with nothing to score (no pixel of the class in truth or prediction; an
empty set) is NaN, never perfect; macro scores average the defined ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage, stats

from pipeline.core.components import EIGHT_CONNECTED
from pipeline.core.geometry import IGNORE


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) pixel counts, rows = truth, columns = prediction; `IGNORE` pixels count nowhere."""
    truth, pred = np.asarray(truth).ravel(), np.asarray(pred).ravel()
    keep = truth != IGNORE
    index = truth[keep].astype(np.int64) * n_classes + pred[keep].astype(np.int64)
    return np.bincount(index, minlength=n_classes**2).reshape(n_classes, n_classes)


def pixel_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class IoU, precision and recall from a confusion matrix (NaN where undefined)."""
    tp = np.diag(confusion).astype(float)
    fp, fn = confusion.sum(axis=0) - tp, confusion.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"iou": tp / (tp + fp + fn), "precision": tp / (tp + fp), "recall": tp / (tp + fn)}


def class_metrics(confusion: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Per-class IoU, precision and recall, and the macro IoU over the signal classes (the
    mean of the defined ones; NaN if none is): what validation logs."""
    scores = pixel_scores(confusion)
    out = {f"{k}_{c}": float(v[i]) for k, v in scores.items() for i, c in enumerate(classes)}
    signal = scores["iou"][1:]
    defined = signal[~np.isnan(signal)]
    out["macro_iou"] = float(defined.mean()) if defined.size else float("nan")
    return out


def event_efficiency_counts(
    instances: np.ndarray, truth: np.ndarray, pred: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per class: (true events, events whose labelled pixels are mostly predicted as their class).

    An event's class is the truth label its pixels carry (the labelling convention gives all of
    an event's labelled pixels its class)."""
    mask = instances > 0
    ids, inverse = np.unique(instances[mask], return_inverse=True)
    if len(ids) == 0:
        return np.zeros(n_classes, int), np.zeros(n_classes, int)
    size = np.bincount(inverse, minlength=len(ids))
    event_class = np.zeros(len(ids), np.int64)
    event_class[inverse] = truth[mask]
    right = np.bincount(inverse, weights=pred[mask] == event_class[inverse], minlength=len(ids))
    found = right > size / 2
    total = np.bincount(event_class, minlength=n_classes)
    return total, np.bincount(event_class, weights=found, minlength=n_classes).astype(int)


def instances_from_labels(labels: np.ndarray) -> np.ndarray:
    """Truth events where a file has labels but no instances (ROOT): each 8-connected cluster
    of one class is one event. Touching events of one class merge; instances, when present,
    are always preferred."""
    instances, offset = np.zeros(labels.shape, np.int64), 0
    for cls in np.unique(labels[labels > 0]):
        components, n = ndimage.label(labels == cls, structure=EIGHT_CONNECTED)
        instances[components > 0] = components[components > 0] + offset
        offset += n
    return instances


def cluster_purity_counts(
    truth: np.ndarray, pred: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per class: (predicted clusters, those whose pixels are mostly truly of that class)."""
    total, pure = np.zeros(n_classes, int), np.zeros(n_classes, int)
    for cls in range(1, n_classes):
        components, n = ndimage.label(pred == cls, structure=EIGHT_CONNECTED)
        if n == 0:
            continue
        index = np.arange(1, n + 1)
        size = ndimage.sum_labels(np.ones_like(truth), components, index)
        right = ndimage.sum_labels(truth == cls, components, index)
        total[cls], pure[cls] = n, int((right > size / 2).sum())
    return total, pure


def f1(efficiency: np.ndarray, purity: np.ndarray) -> np.ndarray:
    """Harmonic mean; 0 when either is 0 (events missed, or only wrong clusters of a class that
    has events), NaN when the class has no true events (its wrong clusters show in its purity
    and in the events of the classes they took: the artefact class, whose pixels belong to no
    event, is scored by its pixels)."""
    efficiency, purity = np.asarray(efficiency, float), np.asarray(purity, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = 2 * efficiency * purity / (efficiency + purity)
    score = np.where((efficiency == 0) | (purity == 0), 0.0, score)
    return np.where(np.isnan(efficiency), np.nan, score)


def count_clusters(pred: np.ndarray, cls: int) -> int:
    return int(ndimage.label(pred == cls, structure=EIGHT_CONNECTED)[1])


def poisson_interval(n: np.ndarray | int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood 1936) central interval of a Poisson mean for each count `n`, from
    chi-square quantiles: the error bars of a histogram of few counts."""
    n = np.asarray(n, dtype=float)
    alpha = 1.0 - confidence
    lower = np.where(n > 0, stats.chi2.ppf(alpha / 2, 2 * np.maximum(n, 1)) / 2, 0.0)
    return lower, stats.chi2.ppf(1 - alpha / 2, 2 * n + 2) / 2


def jeffreys_interval(k: float, n: float, confidence: float) -> tuple[float, float]:
    """Central Jeffreys interval of a binomial proportion, k of n: the quantiles of
    Beta(k + 1/2, n - k + 1/2), widened to 0 at k = 0 and to 1 at k = n (Brown, Cai and
    DasGupta, Stat. Sci. 16 (2001) 101); (nan, nan) for n = 0."""
    if n <= 0:
        return (float("nan"), float("nan"))
    tail = (1 - confidence) / 2
    low = 0.0 if k <= 0 else float(stats.beta.ppf(tail, k + 0.5, n - k + 0.5))
    high = 1.0 if k >= n else float(stats.beta.ppf(1 - tail, k + 0.5, n - k + 0.5))
    return low, high


F1_DRAWS = 20000  # posterior draws behind each F1 interval: quantiles stable to about 0.002


def cluster_f1_intervals(
    found: np.ndarray,
    events: np.ndarray,
    pure: np.ndarray,
    clusters: np.ndarray,
    confidence: float,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Credible intervals of each class's cluster F1 and of their macro mean (classes 1..),
    from the counts behind them: per class `found` of `events` true events, `pure` of
    `clusters` predicted clusters.

    Efficiency and purity get independent Jeffreys posteriors, Beta(k + 1/2, n - k + 1/2) (the
    binomial interval of Brown, Cai and DasGupta, Stat. Sci. 16 (2001) 101); F1, their
    harmonic mean, and the macro mean are drawn from them (`F1_DRAWS`, seeded: the same counts
    give the same interval). A class with no true events or no predicted clusters has an F1
    with nothing to vary (0 or undefined): its interval is its value. Returns (low, high) per
    class (NaN where the F1 is undefined) and the macro (low, high)."""
    found, events, pure, clusters = (np.asarray(a, float) for a in (found, events, pure, clusters))
    with np.errstate(invalid="ignore", divide="ignore"):
        point = f1(found / events, pure / clusters)
    rng = np.random.default_rng(seed)
    shape = (F1_DRAWS, len(events))
    varies = (events > 0) & (clusters > 0)
    one = np.where(varies, 1.0, 0.0)  # a placeholder Beta(1/2, 1/2) where nothing varies
    efficiency = rng.beta(found * one + 0.5, (events - found) * one + 0.5, shape)
    purity = rng.beta(pure * one + 0.5, (clusters - pure) * one + 0.5, shape)
    draws = np.where(varies, f1(efficiency, purity), point)
    tail = (1 - confidence) / 2
    low, high = _holding(np.quantile(draws, [tail, 1 - tail], axis=0), point)
    defined = np.isfinite(point[1:])
    if not defined.any():
        return low, high, (np.nan, np.nan)
    macro = draws[:, 1:][:, defined].mean(axis=1)
    macro_low, macro_high = _holding(
        np.quantile(macro, [tail, 1 - tail]), point[1:][defined].mean()
    )
    return low, high, (float(macro_low), float(macro_high))


def _holding(bounds: np.ndarray, point: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """The interval widened to hold its point estimate: a perfect score (every event found,
    every cluster pure) has 1 as its upper end, none found 0 as its lower (the boundary rule of
    Brown, Cai and DasGupta for k = n and k = 0)."""
    return np.fmin(bounds[0], point), np.fmax(bounds[1], point)


def normalised_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Per pixel, the entropy of the class probabilities (C, ...) over its largest value log C:
    0 where one class is certain, 1 where every class is as likely (the map's `uncertainty`)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0)
    return (-(p * np.log(p)).sum(axis=0) / np.log(p.shape[0])).astype(np.float32)


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 15
) -> float:
    """ECE of top-label confidences (Guo et al., ICML 2017): the share-weighted mean over
    equal-width confidence bins of |accuracy - mean confidence|; NaN for no sample."""
    confidence, correct = np.ravel(confidence), np.ravel(correct).astype(float)
    if confidence.size == 0:
        return float("nan")
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.bincount(which, correct - confidence, minlength=bins)
    return float(np.abs(gap).sum() / count.sum())
