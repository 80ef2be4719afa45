"""Class priors that follow the data: the EM label-shift correction of Saerens et al. (2002).

A network's posteriors carry the class frequencies of its training (the stream's rates); where a
cluster is ambiguous (a bright, diffuse compact cluster: a tritium beta or an X-ray), its call
follows that mix rather than the file's. Given cluster posteriors p(c|x) made under training
priors q(c), the priors pi(c) of the data are the fixed point of

    w_i(c) = p(c|x_i) pi(c)/q(c) / sum_k p(k|x_i) pi(k)/q(k),    pi(c) = mean_i w_i(c)

(M. Saerens, P. Latinne, C. Decaestecker, Neural Computation 14, 21-41 (2002)). With few
clusters the estimate is held toward q by `pseudo_count` clusters of the training mix (a
Dirichlet prior: a MAP estimate). Pure functions on arrays; the signal classes only (background
is not a cluster).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pipeline.core.components import EIGHT_CONNECTED


def component_posteriors(probabilities: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """(components (H, W) int32 labelled 1..n, n, posteriors (n, C-1)): the 8-connected
    deposits of pixels whose most probable class is not background (as the component vote
    forms them), each with its mean probability of each signal class, renormalised."""
    labels = probabilities.argmax(axis=0)
    components, n = ndimage.label(labels > 0, structure=EIGHT_CONNECTED)
    if n == 0:
        return components, 0, np.zeros((0, probabilities.shape[0] - 1))
    rr, cc = np.nonzero(components)
    ids = components[rr, cc] - 1
    sums = np.stack([np.bincount(ids, weights=p[rr, cc], minlength=n) for p in probabilities[1:]])
    posteriors = sums.T / np.maximum(sums.sum(axis=0), 1e-12)[:, None]
    return components, n, posteriors


def adapted_priors(
    posteriors: np.ndarray,
    training: np.ndarray,
    pseudo_count: float = 0.0,
    iterations: int = 200,
    tolerance: float = 1e-7,
) -> np.ndarray:
    """The data's priors (C-1,) by EM from cluster posteriors (n, C-1) made under `training`
    priors; `pseudo_count` clusters of the training mix added to every M-step."""
    training = np.asarray(training, dtype=float) / np.sum(training)
    priors = training.copy()
    if len(posteriors) == 0:
        return priors
    for _ in range(iterations):
        weighted = reweighted(posteriors, training, priors)
        updated = (weighted.sum(axis=0) + pseudo_count * training) / (
            len(posteriors) + pseudo_count
        )
        done = np.max(np.abs(updated - priors)) < tolerance
        priors = updated
        if done:
            break
    return priors


def reweighted(posteriors: np.ndarray, training: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Posteriors (n, C-1) moved from the training priors to `priors` (Bayes' rule)."""
    ratio = np.asarray(priors, dtype=float) / np.maximum(np.asarray(training, dtype=float), 1e-12)
    weighted = posteriors * ratio[None, :]
    return weighted / np.maximum(weighted.sum(axis=1, keepdims=True), 1e-300)


def reweighted_probabilities(
    probabilities: np.ndarray, training: np.ndarray, priors: np.ndarray
) -> np.ndarray:
    """Per-pixel probabilities (C, H, W) with the signal classes moved to `priors` (the
    background's share of each pixel kept), for the component vote."""
    ratio = np.asarray(priors, dtype=float) / np.maximum(np.asarray(training, dtype=float), 1e-12)
    out = probabilities.astype(np.float32, copy=True)
    signal = out[1:] * ratio[:, None, None].astype(np.float32)
    total = out[1:].sum(axis=0)
    scale = total / np.maximum(signal.sum(axis=0), 1e-30)
    out[1:] = signal * scale[None]
    return out
