"""Plots for people: training curves, confusion matrices, energy spectra, zooms of an example
frame around a deposit of each class, a map over its frame, and the spectral fit of an activity.
matplotlib, Agg; one colour per class everywhere (`class_colours`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pipeline.io import atomic_output
from pipeline.results.metrics import poisson_interval


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


def confusion_matrices(
    matrices: dict[str, np.ndarray], classes: Sequence[str], path: Path, title: str = ""
) -> None:
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
    _save(fig, path, title)


def energy_spectra(
    predicted: dict[str, dict[int, list[float]]],
    true: dict[int, list[float]],
    classes: Sequence[str],
    path: Path,
    shown: Sequence[str] = ("tritium", "xray"),
    title: str = "",
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
    _save(fig, path, title)


ZOOM_PX = 48  # smallest edge of a zoomed region: a tritium cluster (a few pixels) stays visible


def zoom_windows(
    truth: np.ndarray, classes: Sequence[str], margin_px: int = 8
) -> list[tuple[str, tuple[slice, slice]]]:
    """(class name, region) for each signal class present in `truth`: its largest 8-connected
    deposit, with a margin, at least ZOOM_PX on a side (less where the frame is smaller)."""
    from scipy import ndimage

    from pipeline.core.components import EIGHT_CONNECTED

    windows = []
    for cls, name in enumerate(classes):
        if cls == 0 or not (truth == cls).any():
            continue
        components, _ = ndimage.label(truth == cls, EIGHT_CONNECTED)
        largest = np.bincount(components.ravel())[1:].argmax() + 1
        box = ndimage.find_objects((components == largest).astype(np.int32))[0]
        rows, cols = (_grown(s, margin_px, n) for s, n in zip(box, truth.shape, strict=True))
        windows.append((name, (rows, cols)))
    return windows


def _grown(span: slice, margin: int, size: int) -> slice:
    """`span` grown by `margin` each side and to at least ZOOM_PX, kept inside [0, size)."""
    edge = min(size, max(ZOOM_PX, span.stop - span.start + 2 * margin))
    start = max(0, min((span.start + span.stop - edge) // 2, size - edge))
    return slice(start, start + edge)


def example_frame(
    charge_e: np.ndarray,
    truth: np.ndarray,
    predictions: dict[str, np.ndarray],
    classes: Sequence[str],
    path: Path,
    title: str = "",
) -> None:
    """One row per signal class in the frame: a zoom on its largest true deposit, showing the
    calibrated charge, the truth and each method's labels (a whole CCD frame makes a tritium
    cluster smaller than a screen pixel)."""
    windows = zoom_windows(truth, classes) or [("frame", (slice(None), slice(None)))]
    columns = {"truth": truth, **predictions}
    fig, axes = plt.subplots(
        len(windows),
        1 + len(columns),
        figsize=(2.6 * (1 + len(columns)), 2.6 * len(windows)),
        squeeze=False,
    )
    cmap = class_colours(classes)
    for row, (name, region) in zip(axes, windows, strict=True):
        row[0].imshow(np.arcsinh(np.clip(charge_e[region], 0, None) / 10), cmap="magma")
        rows, cols = region
        row[0].set_ylabel(f"{name}\nrows {rows.start}-{rows.stop}, cols {cols.start}-{cols.stop}")
        for ax, labels in zip(row[1:], columns.values(), strict=True):
            ax.imshow(
                labels[region],
                cmap=cmap,
                vmin=-0.5,
                vmax=len(classes) - 0.5,
                interpolation="nearest",
            )
    for ax, title in zip(axes[0], ["charge (asinh)", *columns], strict=True):
        ax.set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(len(classes))]
    axes[0, -1].legend(handles, classes, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    _save(fig, path, title)


def class_colours(classes: Sequence[str]) -> matplotlib.colors.Colormap:
    """The colour of each class index, the same in every plot (background first)."""
    return matplotlib.colormaps["tab10"].resampled(len(classes))


def map_view(
    charge_e: np.ndarray, labels: np.ndarray, classes: Sequence[str], title: str, path: Path
) -> None:
    """The whole frame (charge, asinh) with the map's classes over it, then a zoom on the
    largest cluster of each class the map found: charge | classes."""
    cmap = class_colours(classes)
    windows = zoom_windows(labels, classes)
    fig = plt.figure(figsize=(9, 4.5 + 2.4 * len(windows)))
    grid = fig.add_gridspec(1 + len(windows), 2, height_ratios=[4.5] + [2.4] * len(windows))
    whole = fig.add_subplot(grid[0, :])
    whole.imshow(np.arcsinh(np.clip(charge_e, 0, None) / 10), cmap="gray", origin="lower")
    shown = np.ma.masked_equal(labels, 0)
    whole.imshow(
        shown, cmap=cmap, vmin=-0.5, vmax=len(classes) - 0.5, alpha=0.8, origin="lower",
        interpolation="nearest",
    )  # fmt: skip
    whole.set_title(title, fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(1, len(classes))]
    whole.legend(handles, classes[1:], loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    for row, (name, (rows, cols)) in enumerate(windows, start=1):
        left, right = fig.add_subplot(grid[row, 0]), fig.add_subplot(grid[row, 1])
        left.imshow(np.arcsinh(np.clip(charge_e[rows, cols], 0, None) / 10), cmap="magma")
        right.imshow(
            labels[rows, cols], cmap=cmap, vmin=-0.5, vmax=len(classes) - 0.5,
            interpolation="nearest",
        )  # fmt: skip
        left.set_ylabel(
            f"largest {name}\nrows {rows.start}-{rows.stop}\ncols {cols.start}-{cols.stop}"
        )
        for ax in (left, right):
            ax.set_xticks([])
            ax.set_yticks([])
    _save(fig, path)


def spectral_fit(
    edges_kev: np.ndarray,
    counts: np.ndarray,
    components: dict[str, np.ndarray],
    title: str,
    path: Path,
) -> None:
    """The fitted cluster spectrum: the data (counts per bin with Poisson errors), each fitted
    component and their sum."""
    centres = (edges_kev[1:] + edges_kev[:-1]) / 2
    fig, ax = plt.subplots(figsize=(8, 4.5))
    low, high = poisson_interval(counts, 0.6827)  # Garwood: no bar below zero
    seen = counts > 0
    ax.errorbar(
        centres[seen], counts[seen], yerr=[(counts - low)[seen], (high - counts)[seen]],
        fmt="o", ms=3, color="black",
        label=f"data ({int(counts.sum())} clusters; 68 % Poisson intervals)",
    )  # fmt: skip
    if (~seen).any():  # an empty bin is an upper limit, drawn light so the data stand out
        ax.errorbar(
            centres[~seen], counts[~seen], yerr=[0 * high[~seen], high[~seen]], fmt="none",
            color="grey", alpha=0.35, lw=0.8, label="empty bins (68 % upper limit)",
        )  # fmt: skip
    for name, values in components.items():
        ax.step(edges_kev, np.append(values, values[-1]), where="post", label=name, lw=1.2)
    total = np.sum(list(components.values()), axis=0)
    ax.step(edges_kev, np.append(total, total[-1]), where="post", color="grey", lw=2,
            label="fit: sum")  # fmt: skip
    ax.set_xlabel("cluster energy (keV)")
    ax.set_ylabel("clusters per bin")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, path)


def _save(fig, path: Path, title: str = "") -> None:
    if title:  # what the figure shows, above its panels
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def detection_limits(
    times_s: np.ndarray, limits_bq: dict[str, np.ndarray], marks_s: Sequence[float], path: Path
) -> None:
    """Detection limit (Bq) against counting time, a line per method, the tabulated times
    marked."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, values in limits_bq.items():
        ax.loglog(times_s / 3600.0, values, label=name, lw=1.5)
    for mark in marks_s:
        ax.axvline(mark / 3600.0, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("counting time (hours)")
    ax.set_ylabel("detection limit (Bq, betas into the CCD)")
    ax.set_title("ISO 11929 detection limit against counting time", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.2)
    _save(fig, path)
