"""The stages of the command line, declared: for each, its help, what it reads and writes, the
function that runs it (`module:function`, called as `function(settings, **paths)`) and its
flags. A flag either fills one of the function's path arguments (`path`) or sets a config key
(`key`). Parsing lives in pipeline/cli.py; nothing here imports a stage.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Flag:
    name: str
    help: str
    key: str | None = None  # the dotted config key the flag sets, or
    arg: str | None = None  # the stage function's (path) argument it fills
    type: Callable[[str], Any] = str
    action: str | None = None
    nargs: str | None = None
    required: bool = False


@dataclass(frozen=True)
class Stage:
    help: str
    description: str  # what the stage reads and writes
    entry: str  # "module:function", called as function(settings, **path_arguments)
    flags: tuple[Flag, ...] = ()

    def function(self) -> Callable[..., Any]:
        module, name = self.entry.split(":")
        return getattr(importlib.import_module(module), name)


def path(name: str, help: str, nargs: str | None = None, required: bool = True) -> Flag:
    """A flag naming a file (or files) the stage reads or writes: a function argument."""
    return Flag(name, help, arg=name[2:].replace("-", "_"), nargs=nargs, required=required)


def key(name: str, key: str, help: str, **kw: Any) -> Flag:
    """A flag setting a config key."""
    return Flag(name, help, key=key, **kw)


FRAMES_READ = "a frame file (HDF5, ROOT or FITS), calibrated to electrons"
STAGES: dict[str, Stage] = {
    "simulate": Stage(
        "simulate CCD frames with per-pixel truth",
        "Reads: the config (detector, physics, sources). Writes: an HDF5 frame file with frames "
        "(ADU), labels, instances and the events table (docs/frame_format.md), and with --root "
        "its .root twin. Output is written atomically.",
        "pipeline.simulation.simulate:run",
        (
            path("--out", "output HDF5 path (.h5)"),
            key("--frames", "simulate.frames", "number of frames", type=int),
            key("--seed", "simulate.seed", "random seed (same seed, same file)", type=int),
            key("--height", "detector.height", "rows per frame", type=int),
            key("--width", "detector.width", "columns per frame", type=int),
            key("--root", "simulate.root", "also write a ROOT twin", action="store_true"),
        ),
    ),
    "inspect": Stage(
        "open a frame file (HDF5, ROOT or FITS), validate it and summarise it",
        "Reads: a frame file, checked against the format contract (shapes, dtypes, NaN/inf, "
        "labels and class names). Writes: a YAML summary on stdout; no files.",
        "pipeline.io.inspect:run",
        (path("--input", "frame file to open"),),
    ),
    "train": Stage(
        "train the U-Net on labelled frame files",
        "Reads: labelled frame files (HDF5, ROOT or FITS), calibrated to electrons. Writes: "
        "OUT/last.pt (every epoch, with the state to resume), OUT/best.pt (weights and model "
        "card), OUT/model_card.json, OUT/training_curves.png, and an MLflow run.",
        "pipeline.learning.train:run",
        (
            path("--frames", "training frame files", nargs="*", required=False),
            path("--val-frames", "validation frame files", nargs="*", required=False),
            path("--out", "output directory"),
            key("--resume", "train.resume", "continue from OUT/last.pt", action="store_true"),
            key("--init", "train.init", "checkpoint to start from (fine-tuning)"),
            key("--epochs", "train.epochs", "number of epochs", type=int),
            key("--seed", "train.seed", "random seed", type=int),
            key("--device", "train.device", "auto, cpu or cuda"),
            key("--tracking-uri", "tracking.uri", "MLflow tracking URI"),
        ),
    ),
    "infer": Stage(
        "per-pixel class maps of frames with a trained model",
        f"Reads: a checkpoint (weights and model card) and {FRAMES_READ}. Writes: a map file "
        "(docs/frame_format.md: labels, optional float16 probabilities, class_names, source), "
        "atomically, frame by frame, and with --catalogue the cluster catalogue as Parquet and "
        "CSV. With ONNX Runtime (fp32 on the CPU) the checkpoint's ONNX copy, once, into "
        "infer.onnx_cache (named by the checkpoint's SHA-256; nothing beside the checkpoint).",
        "pipeline.inference.infer:run",
        (
            key("--model", "infer.model", "checkpoint, or a shipped model's name"),
            path("--input", "frame file"),
            path("--output", "map file to write (.h5)"),
            path("--catalogue", "cluster catalogue to write (.parquet)", required=False),
            key(
                "--probabilities", "infer.probabilities", "write probabilities", action="store_true"
            ),
            key("--tta", "infer.tta", "average over flips", action="store_true"),
            key("--window", "infer.window", "window edge in pixels", type=int),
            key("--overlap", "infer.overlap", "fraction shared by neighbours", type=float),
            key("--device", "infer.device", "auto, cpu or cuda"),
            key("--runtime", "infer.runtime", "auto, torch or onnxruntime"),
            key("--dense", "infer.sparse.enabled", "network on every pixel", action="store_false"),
        ),
    ),
    "classical": Stage(
        "the classical reconstruction (seeded clustering and shape cuts), as a map",
        f"Reads: {FRAMES_READ}. Writes: a map file in the same format as `infer` and, with "
        "--catalogue, the cluster catalogue.",
        "pipeline.inference.classical:run",
        (
            path("--input", "frame file"),
            path("--output", "map file to write (.h5)"),
            path("--catalogue", "cluster catalogue to write (.parquet)", required=False),
        ),
    ),
    "evaluate": Stage(
        "score map files against truth, side by side",
        "Reads: a labelled frame file (truth) and one or more map files. Writes: OUT/"
        "summary.json, OUT/comparison.md, confusion, spectra and example-frame plots, and an "
        "MLflow run.",
        "pipeline.evaluation.evaluate:run",
        (
            path("--truth", "labelled frame file"),
            path("--pred", "map files", nargs="+"),
            Flag("--names", "a name per map file", arg="names", nargs="+"),
            path("--out", "output directory"),
        ),
    ),
    "suite": Stage(
        "the generalisation suite: each method on each detector, side by side",
        "Reads: the summary.json that `evaluate` wrote for each detector. Writes: a table with "
        "a row per detector and class (Markdown) and its HTML twin.",
        "pipeline.evaluation.suite:run",
        (
            path("--summaries", "summary.json per detector", nargs="+"),
            Flag("--names", "a detector name per summary", arg="names", nargs="+"),
            path("--out", "Markdown table to write (.md)"),
        ),
    ),
    "efficiency": Stage(
        "frames simulated for the detector of a frame file, to measure the efficiency on",
        "Reads: a frame file (its declared readout noise) and the config's detector and "
        "sources. Writes: an HDF5 frame file with truth (activity.efficiency_frames frames); "
        "map it with `infer` and give both to `activity`.",
        "pipeline.measurement.efficiency:run",
        (path("--frames", "the data's frame file"), path("--out", "output HDF5 path (.h5)")),
    ),
    "activity": Stage(
        "tritium decays per frame and the sample's activity from a cluster catalogue",
        "Reads: a cluster catalogue (.parquet), its frame file (frame count, exposure, noise), "
        "and the efficiency frames with their catalogue (else the checkpoint that labelled the "
        "data is run on frames simulated here). Writes: a JSON file with counts per frame, the "
        "spectral fit, the activity with its interval and the minimum detectable activity.",
        "pipeline.measurement.activity:run",
        (
            path("--catalogue", "cluster catalogue (.parquet)"),
            path("--frames", "frame file the catalogue came from"),
            path("--efficiency-frames", "efficiency frames (`efficiency`)", required=False),
            path("--efficiency-catalogue", "their catalogue, by the model", required=False),
            key("--model", "activity.model", "checkpoint that labelled the catalogue"),
            path("--out", "JSON file to write"),
        ),
    ),
    "models": Stage(
        "list the shipped models (use one by name: --model NAME, train.init: NAME)",
        "Reads: the checkpoints in release.dir (models/). Writes: a line per model.",
        "pipeline.network.shipped:run_models",
        (key("--dir", "release.dir", "directory of shipped models"),),
    ),
    "export": Stage(
        "make a shipped model of a training run (float16, unused weights dropped)",
        "Reads: RUN/best.pt and RUN/last.pt, the run's config and the suite's evaluations. "
        "Writes: DIR/NAME.pt and its model card DIR/NAME.json, atomically.",
        "pipeline.learning.export:run_export",
        (
            path("--run", "training output directory (best.pt, last.pt)"),
            path("--train-config", "the config the run trained with"),
            path("--suite", "directory of the suite's evaluations", required=False),
            key("--name", "release.name", "name of the shipped model"),
            key("--dir", "release.dir", "directory to write it to"),
        ),
    ),
}
