"""Segmentation metrics as pure functions on label arrays (smp's metric functions underneath).

Owns per-class pixel statistics (tp, fp, fn, tn), IoU, precision and recall, and the macro IoU
over the signal classes (every class but index 0, background). Padded pixels (`IGNORE`) count
nowhere. A score with nothing to score (no pixel of the class in truth or prediction; an empty
set) is NaN, never perfect; the macro IoU averages the defined ones (NaN if none is).
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch

from pipeline.tiles import IGNORE


def pixel_stats(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Summed (tp, fp, fn, tn) per class, shape (4, C), skipping IGNORE pixels."""
    stats = smp.metrics.get_stats(
        pred.long(),
        target.long(),
        mode="multiclass",
        num_classes=n_classes,
        ignore_index=IGNORE,
    )
    return torch.stack([s.sum(dim=0) for s in stats])


def class_metrics(stats: torch.Tensor, classes: list[str]) -> dict[str, float]:
    """Per-class IoU, precision and recall, and the macro IoU over the signal classes."""
    tp, fp, fn, tn = (s[None] for s in stats)
    nan = float("nan")
    scores = {
        "iou": smp.metrics.iou_score(tp, fp, fn, tn, reduction="none", zero_division=nan)[0],
        "precision": smp.metrics.precision(tp, fp, fn, tn, reduction="none", zero_division=nan)[0],
        "recall": smp.metrics.recall(tp, fp, fn, tn, reduction="none", zero_division=nan)[0],
    }
    out = {f"{k}_{c}": float(v[i]) for k, v in scores.items() for i, c in enumerate(classes)}
    signal = scores["iou"][1:]
    defined = signal[~torch.isnan(signal)]
    out["macro_iou"] = float(defined.mean()) if defined.numel() else nan
    return out
