"""Evaluation against truth (the `evaluate` stage).

Owns the numbers a physicist trusts, computed frame by frame against the truth of a labelled
frame file, for one or several map files side by side (the U-Net, the classical baseline): the
pixel confusion matrix with per-class IoU, precision and recall; per-class cluster efficiency
(true events whose pixels are mostly predicted as their class), purity (predicted 8-connected
clusters whose pixels are mostly truly of that class) and F1; the tritium count bias per frame;
reconstructed versus true energy spectra. Metric functions are pure functions on arrays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.calibration.frames import calibrated
from pipeline.config.stages import EvaluateSettings, FrameSections, TrackedSections
from pipeline.core import hashing
from pipeline.core.atomic import atomic_directory
from pipeline.core.errors import printable
from pipeline.core.stage import INPUT, OUTPUT, Flag, Stage, file_flag, files_in
from pipeline.evaluation import tables
from pipeline.io import FrameFile, FrameFileError, MapFile, open_map
from pipeline.results import clusters
from pipeline.results.metrics import (
    cluster_f1_intervals,
    cluster_purity_counts,
    confusion_matrix,
    count_clusters,
    event_efficiency_counts,
    f1,
    instances_from_labels,
    pixel_scores,
)
from pipeline.results.naming import unique_names
from pipeline.tracking import registry, runs

# ---------------------------------------------------------------- accumulation


@dataclass
class Scores:
    """Running totals for one method over the frames of a file."""

    n_classes: int
    confusion: np.ndarray = field(init=False)
    events: np.ndarray = field(init=False)
    found: np.ndarray = field(init=False)
    clusters: np.ndarray = field(init=False)
    pure: np.ndarray = field(init=False)
    count_pairs: list[tuple[int, int]] = field(default_factory=list)  # tritium (true, predicted)
    energies: dict[int, list[float]] = field(default_factory=dict)  # predicted cluster energies

    def __post_init__(self) -> None:
        c = self.n_classes
        self.confusion = np.zeros((c, c), np.int64)
        self.events, self.found = np.zeros(c, int), np.zeros(c, int)
        self.clusters, self.pure = np.zeros(c, int), np.zeros(c, int)

    def add(self, truth: np.ndarray, instances: np.ndarray, pred: np.ndarray, tritium: int) -> None:
        c = self.n_classes
        self.confusion += confusion_matrix(truth, pred, c)
        events, found = event_efficiency_counts(instances, truth, pred, c)
        clusters, pure = cluster_purity_counts(truth, pred, c)
        self.events += events
        self.found += found
        self.clusters += clusters
        self.pure += pure
        self.count_pairs.append((int(events[tritium]), count_clusters(pred, tritium)))

    def summary(self, classes: Sequence[str]) -> dict:
        pixel = pixel_scores(self.confusion)
        with np.errstate(invalid="ignore", divide="ignore"):
            efficiency = self.found / self.events
            purity = self.pure / self.clusters
        cluster_f1 = f1(efficiency, purity)
        low, high, macro = cluster_f1_intervals(
            self.found, self.events, self.pure, self.clusters, tables.F1_CONFIDENCE
        )
        true, predicted = np.array(self.count_pairs).T if self.count_pairs else ([0], [0])
        per_class = {
            name: {
                "pixel_iou": _num(pixel["iou"][i]),
                "pixel_precision": _num(pixel["precision"][i]),
                "pixel_recall": _num(pixel["recall"][i]),
                "cluster_efficiency": _num(efficiency[i]),
                "cluster_purity": _num(purity[i]),
                "cluster_f1": _num(cluster_f1[i]),
                "cluster_f1_interval": [_num(low[i]), _num(high[i])],
                "true_events": int(self.events[i]),
                "predicted_clusters": int(self.clusters[i]),
            }
            for i, name in enumerate(classes)
            if i > 0
        }
        tritium_bias = float(np.mean(np.asarray(predicted) - np.asarray(true)))
        return {
            "per_class": per_class,
            "macro_pixel_iou": _num(np.nanmean(pixel["iou"][1:])),
            "macro_cluster_f1": _num(np.nanmean(cluster_f1[1:])),
            "macro_cluster_f1_interval": [_num(macro[0]), _num(macro[1])],
            "tritium_count_bias_per_frame": tritium_bias,
            "tritium_true_per_frame": float(np.mean(true)),
            "confusion": self.confusion.tolist(),
        }


def _num(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 5)


# ---------------------------------------------------------------- files


def evaluate_files(
    config: FrameSections,
    truth_path: str | Path,
    maps: dict[str, str | Path],
    out_dir: str | Path,
    progress: bool = True,
) -> dict:
    """Score each map file against the truth file; write summary.json, comparison.md, plots.
    Each method's entry records what its map says it was made from (`made_from`: the input's
    and the model's SHA-256); a map of other frames than the truth's is refused. The outputs
    depend on these files only."""
    out, classes = Path(out_dir), config.classes
    tritium = classes.index("tritium")
    with ExitStack() as stack:
        calibrated_truth = stack.enter_context(calibrated(truth_path, config, classes))
        truth = calibrated_truth.file
        if truth.labels is None:
            raise FrameFileError(truth_path, "evaluation needs truth labels; the file has none")
        opened = {
            name: stack.enter_context(open_map(path, config.io, config.classes))
            for name, path in maps.items()
        }
        for name, ff in opened.items():
            if ff.shape != truth.shape:
                raise FrameFileError(maps[name], f"map shape {ff.shape} != frames {truth.shape}")
        calibrated_truth.calibrate()
        scores = {name: Scores(len(classes)) for name in maps}
        example = None
        for i in tqdm(range(truth.n_frames), desc="evaluate", disable=not progress):
            labels = truth.read("labels", i)
            instances = (
                truth.read("instances", i)
                if truth.instances is not None
                else instances_from_labels(labels)
            )
            charge = calibrated_truth.charge(i)
            preds = {name: ff.read(i) for name, ff in opened.items()}
            for name, pred in preds.items():
                scores[name].add(labels, instances, pred, tritium)
                table = clusters.frame_clusters(
                    pred, charge, classes, config.physics.pair_energy_ev, i
                )
                for cls, group in table.groupby("class"):
                    scores[name].energies.setdefault(int(cls), []).extend(group["energy_kev"])
            if example is None:
                example = (charge, labels, preds)
        _check_made_from(opened, truth_path, calibrated_truth.frames_sha256)
        true_energy = _true_energies(truth, classes)
    summary = {name: s.summary(classes) for name, s in scores.items()}
    for name, ff in opened.items():
        summary[name]["made_from"] = dict(ff.provenance)
        summary[name]["scored_on"] = {
            "truth": printable(Path(truth_path).name),
            "frames": truth.n_frames,
        }
    _write_outputs(out, summary, scores, true_energy, example, classes)
    return summary


def _check_made_from(opened: Mapping[str, MapFile], truth: str | Path, digest: str | None) -> None:
    """FrameFileError if a map records the digest of the frames it was made from and it is not
    the truth's (a map of other frames of the same shape would be scored in silence); the same
    frames in another format agree."""
    for ff in opened.values():
        recorded = ff.provenance.get("frames_sha256")
        if recorded and digest and recorded != digest:
            raise FrameFileError(
                ff.path,
                f"this map was made from other frames ({ff.source}) than those of the truth "
                f"file {truth}; map the truth file's frames",
            )


def _true_energies(truth: FrameFile, classes: Sequence[str]) -> dict[int, list[float]]:
    events = truth.events or {}
    if "class" not in events:
        return {}
    return {
        int(c): events["energy_kev"][events["class"] == c].tolist() for c in range(1, len(classes))
    }


def _write_outputs(
    out: Path,
    summary,
    scores,
    true_energy,
    example: tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]] | None,
    classes,
) -> None:
    """Everything is written to a staging directory beside `out`, then moved in, summary.json
    last: a killed evaluation leaves no summary, so no rerun takes it for complete."""
    from pipeline.results import plots

    with atomic_directory(out, last="summary.json") as staging:
        dataset = tables.summary_dataset(summary)
        (staging / "comparison.md").write_text(tables.comparison_table(summary, classes, dataset))
        (staging / "comparison.html").write_text(tables.comparison_html(summary, classes, dataset))
        words = {n: tables.method_label(n, s) for n, s in summary.items()}
        matrices = {words[n]: np.array(s["confusion"]) for n, s in summary.items()}
        plots.confusion_matrices(matrices, classes, staging / "confusion.png", title=dataset)
        energies = {words[n]: s.energies for n, s in scores.items()}
        plots.energy_spectra(energies, true_energy, classes, staging / "spectra.png", title=dataset)
        if example is not None:
            charge, truth, preds = example
            named = {words[n]: labels for n, labels in preds.items()}
            frame = f"{dataset}, frame 0"
            plots.example_frame(
                charge, truth, named, classes, staging / "example_frame.png", title=frame
            )
        (staging / "summary.json").write_text(json.dumps(summary, indent=2))


def log_evaluation(
    config: TrackedSections,
    summary: dict,
    out: Path,
    truth: str | Path,
    maps: Mapping[str, str | Path],
) -> None:
    """One MLflow run per evaluation: metrics prefixed by method, the summary and plots, tagged
    with the inference run and model version that made each map (found in the store by the
    map's SHA-256; pipeline/tracking/registry.py)."""
    if not config.tracking.enabled:
        return
    links = {
        f"{name}.{key}": value
        for name, path in maps.items()
        for key, value in registry.map_links(config.tracking, path).items()
    }
    truth_hash = hashing.data_hash([truth])
    tags = {"truth": str(truth), "data_hash": truth_hash, **links}
    with runs.tracked_run(config, "evaluate", tags) as tracker:
        tracker.log_dataset(truth, truth_hash, "evaluation")
        for name, result in summary.items():
            metrics = {
                f"{name}.macro_cluster_f1": result["macro_cluster_f1"],
                f"{name}.macro_pixel_iou": result["macro_pixel_iou"],
                f"{name}.tritium_count_bias": result["tritium_count_bias_per_frame"],
            }
            for cls, scores in result["per_class"].items():
                metrics[f"{name}.{cls}.cluster_f1"] = scores["cluster_f1"]
                metrics[f"{name}.{cls}.pixel_iou"] = scores["pixel_iou"]
            tracker.log_metrics({k: v for k, v in metrics.items() if v is not None}, step=0)
        for artefact in sorted(out.glob("*")):
            if artefact.suffix in (".json", ".md", ".html", ".png"):
                tracker.log_artifact(artefact, "evaluation")


def run(
    settings: EvaluateSettings,
    truth: str | Path,
    pred: Sequence[str | Path],
    out: str | Path,
    names: Sequence[str] = (),
) -> str:
    """The `evaluate` stage: score each map file of `pred` (named by `names`, else by its file
    name) against `truth`, write the outputs into `out`, log the run; the comparison table."""
    named = dict(
        zip(unique_names(names, pred, "--names", lambda p: Path(p).stem), pred, strict=True)
    )
    summary = evaluate_files(settings, truth, named, out)
    log_evaluation(settings, summary, Path(out), truth, named)
    table = tables.comparison_table(summary, settings.classes, tables.summary_dataset(summary))
    return f"{table}wrote {out}/summary.json, comparison.md and plots"


STAGE = Stage(
    "evaluate",
    "score map files against truth, side by side",
    "Reads: a labelled frame file (truth) and one or more map files. Writes: OUT/"
    "summary.json, OUT/comparison.md, confusion, spectra and example-frame plots, and an "
    "MLflow run.",
    run,
    EvaluateSettings,
    (
        file_flag("--truth", "labelled frame file", INPUT),
        file_flag("--pred", "map files", INPUT, nargs="+"),
        Flag("--names", "a name per map file", arg="names", nargs="+"),
        file_flag(
            "--out",
            "output directory",
            OUTPUT,
            beside=files_in(
                "summary.json",
                "comparison.md",
                "comparison.html",
                "confusion.png",
                "spectra.png",
                "example_frame.png",
            ),
        ),
    ),
    tracks=True,
)
