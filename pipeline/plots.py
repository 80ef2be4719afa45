"""Plots for people: training curves (and, as stages land, maps and spectra). matplotlib, Agg."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

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
    _save(fig, path)


def confusion_matrices(matrices: dict[str, np.ndarray], classes: Sequence[str], path: Path) -> None:
    """Row-normalised pixel confusion matrix of each method, side by side."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(5.2 * len(matrices), 4.6), squeeze=False)
    for ax, (name, matrix) in zip(axes[0], matrices.items(), strict=True):
        rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(rows, cmap="viridis", vmin=0, vmax=1)
        for (i, j), value in np.ndenumerate(rows):
            ax.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value < 0.6 else "black",
            )
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set(xlabel="predicted", ylabel="true", title=f"{name}: pixels, row-normalised")
    _save(fig, path)


def energy_spectra(
    predicted: dict[str, dict[int, list[float]]],
    true: dict[int, list[float]],
    classes: Sequence[str],
    path: Path,
    shown: Sequence[str] = ("tritium", "xray"),
) -> None:
    """Energy of predicted clusters of each shown class, per method, against the true events."""
    fig, axes = plt.subplots(1, len(shown), figsize=(6 * len(shown), 4), squeeze=False)
    bins = np.linspace(0, 20, 81)
    for ax, name in zip(axes[0], shown, strict=True):
        cls = classes.index(name)
        ax.hist(
            true.get(cls, []),
            bins=bins,
            histtype="stepfilled",
            alpha=0.3,
            color="k",
            label="truth (deposited)",
        )
        for method, energies in predicted.items():
            ax.hist(energies.get(cls, []), bins=bins, histtype="step", lw=1.5, label=method)
        ax.set(xlabel="energy (keV)", ylabel="clusters / 0.25 keV", title=name)
        ax.legend(fontsize=8)
    _save(fig, path)


def example_frame(
    charge_e: np.ndarray,
    truth: np.ndarray,
    predictions: dict[str, np.ndarray],
    classes: Sequence[str],
    path: Path,
) -> None:
    """Calibrated charge, truth and each method's labels of one frame, side by side."""
    panels = 2 + len(predictions)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 4.4))
    axes[0].imshow(np.arcsinh(np.clip(charge_e, 0, None) / 10), cmap="magma")
    axes[0].set_title("charge (asinh)")
    cmap = matplotlib.colormaps["tab10"].resampled(len(classes))
    for ax, (title, labels) in zip(axes[1:], {"truth": truth, **predictions}.items(), strict=True):
        ax.imshow(labels, cmap=cmap, vmin=-0.5, vmax=len(classes) - 0.5, interpolation="nearest")
        ax.set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(len(classes))]
    fig.legend(handles, classes, loc="lower center", ncol=len(classes), fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
