"""Plots for people: training curves (and, as stages land, maps and spectra). matplotlib, Agg."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pipeline.io import atomic_output


def training_curves(
    history: Sequence[dict[str, float]], classes: Sequence[str], path: Path
) -> None:
    """Loss per epoch (train and validation) and validation IoU per class, one PNG."""
    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, iou_ax) = plt.subplots(1, 2, figsize=(11, 4))
    loss_ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    loss_ax.plot(epochs, [h["val_loss"] for h in history], "s-", label="validation")
    loss_ax.set(xlabel="epoch", ylabel="loss (Dice + pixel)", title="Loss")
    loss_ax.legend()
    for name in classes[1:]:
        iou_ax.plot(epochs, [h[f"iou_{name}"] for h in history], "o-", label=name)
    iou_ax.plot(epochs, [h["macro_iou"] for h in history], "k--", label="macro (signal)")
    iou_ax.set(xlabel="epoch", ylabel="pixel IoU", ylim=(0, 1), title="Validation IoU")
    iou_ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
