"""Calibrated probabilities: temperature scaling of a trained network (the `temperature` stage,
and the last step of `train`).

Owns fitting one temperature T (Guo et al., "On calibration of modern neural networks", ICML
2017) that divides the network's logits, by minimising the negative log-likelihood of held-out
labelled tiles, and measuring the expected calibration error (ECE, top-label, 15 bins) before and
after. Fitted and scored on deposit pixels (charge above 3 x the noise, the classical neighbour
threshold): background pixels far from any charge are certain and countless, and would make any
network look calibrated; truth the charge does not show (glow under the noise) cannot be. The
card records `calibration` {temperature, ece_before, ece_after, ...}; inference divides the
logits by the temperature (pipeline/inference/infer.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torch import nn
from torch.utils.data import DataLoader

from pipeline.config import Config, NormaliseConfig
from pipeline.config.stages import TrainSettings
from pipeline.core.geometry import IGNORE
from pipeline.core.stage import INPUT, OUTPUT, Stage, file_flag
from pipeline.learning import tiles
from pipeline.learning.data import validation_loader
from pipeline.network.model import load_checkpoint, load_model, save_checkpoint
from pipeline.results.metrics import expected_calibration_error

MAX_PIXELS = 2_000_000  # deposit pixels kept for the fit (a seeded subsample beyond)
LOG_T_BOUNDS = (-3.0, 3.0)  # T within e^-3 .. e^3
DEPOSIT_SIGMA = 3.0  # a deposit pixel's charge, in noise: the classical neighbour threshold


def significance(x: torch.Tensor, normalise: NormaliseConfig) -> np.ndarray:
    """Per pixel of network inputs (B, C, H, W): the charge in units of the noise multiple
    (the inverse of the significance channel, pipeline/calibration/calibrate.py)."""
    channel = 0 if normalise.kind == "asinh_noise" else 1
    return np.sinh(x[:, channel].double().numpy() * normalise.divisor).ravel()


@torch.inference_mode()
def deposit_logits(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    normalise: NormaliseConfig,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(P, C) float32 logits and (P,) labels of the deposit pixels of the loader's tiles: those
    whose charge passes `DEPOSIT_SIGMA` x noise (a truth label the charge does not show, such
    as faint glow under the noise, no network can be calibrated on)."""
    model = model.to(device).eval()
    kept_logits, kept_labels = [], []
    for x, y in loader:
        logits = model(x.to(device)).float().cpu()
        c = logits.shape[1]
        flat = logits.permute(0, 2, 3, 1).reshape(-1, c).numpy()
        labels = y.reshape(-1).numpy()
        visible = significance(x, normalise) >= DEPOSIT_SIGMA / normalise.noise_multiple
        deposit = (labels != IGNORE) & visible
        kept_logits.append(flat[deposit])
        kept_labels.append(labels[deposit])
    logits = np.concatenate(kept_logits) if kept_logits else np.zeros((0, 1), np.float32)
    labels = np.concatenate(kept_labels) if kept_labels else np.zeros(0, np.int64)
    if len(labels) > MAX_PIXELS:
        keep = np.random.default_rng(seed).choice(len(labels), MAX_PIXELS, replace=False)
        logits, labels = logits[keep], labels[keep]
    return logits, labels


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of `labels` under softmax(logits / T)."""
    log_p = _log_softmax(logits / temperature)
    return float(-log_p[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising the NLL (1.0 with no pixel to fit)."""
    if len(labels) == 0:
        return 1.0
    found = minimize_scalar(
        lambda log_t: nll(logits, labels, float(np.exp(log_t))),
        bounds=LOG_T_BOUNDS,
        method="bounded",
    )
    return float(np.exp(found.x))


def ece(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    p = np.exp(_log_softmax(logits / temperature))
    return expected_calibration_error(p.max(axis=1), p.argmax(axis=1) == labels)


def calibration(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The fitted temperature and the ECE and NLL before and after it, on deposit pixels."""
    t = fit_temperature(logits, labels)
    return {
        "temperature": round(t, 5),
        "ece_before": round(ece(logits, labels, 1.0), 5),
        "ece_after": round(ece(logits, labels, t), 5),
        "nll_before": round(nll(logits, labels, 1.0), 5) if len(labels) else float("nan"),
        "nll_after": round(nll(logits, labels, t), 5) if len(labels) else float("nan"),
        "pixels": len(labels),
    }


def calibrate_checkpoint(
    path: str | Path, out: str | Path, loader: DataLoader, device: torch.device, held_out: str
) -> dict[str, Any]:
    """Fit the temperature of checkpoint `path` on `loader`'s tiles; write the checkpoint, with
    `calibration` in its card (and `held_out`: what it was fitted on), to `out` (atomically:
    `out` may be `path`)."""
    model, card = load_model(path)
    normalise = NormaliseConfig(**card["normalise"])
    logits, labels = deposit_logits(model, loader, device, normalise)
    card["calibration"] = {**calibration(logits, labels), "held_out": held_out}
    save_checkpoint(out, model, card, load_checkpoint(path).get("training"))
    return dict(card["calibration"])


def run(settings: TrainSettings | Config, model: str | Path, frames: str | Path, out: str | Path):
    """The `temperature` stage: calibrate `model` on the labelled `frames`, into `out`."""
    loader = validation_loader(settings, tiles.FrameSource([frames], settings))
    found = calibrate_checkpoint(model, out, loader, torch.device("cpu"), Path(frames).name)
    return (
        f"temperature {found['temperature']:.3f} on {found['pixels']} deposit pixels of "
        f"{Path(frames).name}: ECE {found['ece_before']:.4f} -> {found['ece_after']:.4f}, "
        f"NLL {found['nll_before']:.4f} -> {found['nll_after']:.4f}\nwrote {out}"
    )


STAGE = Stage(
    "temperature",
    "calibrate a model's probabilities on held-out labelled frames (temperature scaling)",
    "Reads: a model checkpoint and a labelled frame file (simulated: held out from training). "
    "Writes: the checkpoint with `calibration` (temperature, ECE and NLL before and after, on "
    "deposit pixels) in its card, atomically.",
    run,
    TrainSettings,
    (
        file_flag("--model", "model checkpoint (.pt)", INPUT),
        file_flag("--frames", "labelled frame file held out from training", INPUT),
        file_flag("--out", "calibrated checkpoint to write (.pt)", OUTPUT),
    ),
)
