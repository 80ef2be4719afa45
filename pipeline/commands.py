"""The stages, declared: one `Stage` each, the only table that names them.

A stage's declaration holds its help, what it reads and writes, the function that runs it
(`module:function`, called as `function(settings, **paths)`), its settings (the typed slice of
the config it reads, a class of pipeline/config/stages.py) and its flags. A flag either fills one
of the function's path arguments (`path`) or sets a config key (`key`); a flag that names a file
is tagged an input or an output, and an output says which files the stage writes beside it (a
catalogue's CSV twin, the files of an output folder). The command line (pipeline/cli.py), the
path checks (pipeline/paths.py) and the workflow's per-stage config (rules/common.smk) all read
these declarations. Nothing here imports a stage.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INPUT, OUTPUT = "input", "output"


@dataclass(frozen=True)
class Beside:
    """A file a stage writes beside an output: `suffix` swapped in (a twin), or `name` inside
    the output folder; only where the config key `when` is true."""

    what: str
    suffix: str | None = None
    name: str | None = None
    when: str | None = None

    def path(self, output: Path) -> Path:
        return output.with_suffix(self.suffix) if self.suffix else output / str(self.name)


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
    role: str | None = None  # INPUT or OUTPUT: the flag names a file the stage reads or writes
    beside: tuple[Beside, ...] = ()  # what the stage writes beside this output
    suffixes: tuple[str, ...] = ()  # the suffixes this output may have (none: any)
    suffix_hint: str = ""  # said after a refused suffix
    unless: str | None = None  # an input not read when this config key is set


@dataclass(frozen=True)
class Stage:
    help: str
    description: str  # what the stage reads and writes
    entry: str  # "module:function", called as function(settings, **path_arguments)
    settings: str  # its settings: a class of pipeline/config/stages.py
    flags: tuple[Flag, ...] = ()
    tracks: bool = False  # writes to the MLflow store of tracking.uri (an output when a file)
    writes: Callable[[Any], list[tuple[str, Path]]] | None = None  # outputs its settings name

    def function(self) -> Callable[..., Any]:
        module, name = self.entry.split(":")
        return getattr(importlib.import_module(module), name)

    def settings_class(self) -> Any:
        from pipeline.config import stages

        return getattr(stages, self.settings)


def path(
    name: str,
    help: str,
    role: str,
    nargs: str | None = None,
    required: bool = True,
    beside: tuple[Beside, ...] = (),
    suffixes: tuple[str, ...] = (),
    suffix_hint: str = "",
) -> Flag:
    """A flag naming a file (or files) the stage reads or writes: a function argument."""
    arg = name[2:].replace("-", "_")
    return Flag(
        name,
        help,
        arg=arg,
        nargs=nargs,
        required=required,
        role=role,
        beside=beside,
        suffixes=suffixes,
        suffix_hint=suffix_hint,
    )


def key(name: str, key: str, help: str, **kw: Any) -> Flag:
    """A flag setting a config key."""
    return Flag(name, help, key=key, **kw)


def files_in(*names: str) -> tuple[Beside, ...]:
    """The files a stage writes into an output folder."""
    return tuple(Beside("a file of the folder", name=name) for name in names)


def _shipped(settings: Any) -> list[tuple[str, Path]]:
    """The export's outputs, named by its settings (without a name the stage stops at once)."""
    folder, name = Path(settings.release.dir), settings.release.name or "NAME"
    what = "the shipped model in 'release.dir'"
    return [(what, folder / f"{name}.pt"), (f"the card of {what}", folder / f"{name}.json")]


CSV_TWIN = (Beside("the CSV twin of --catalogue", suffix=".csv"),)
FRAME_SUFFIXES = (".h5", ".hdf5")
# what infer and classical read and write: a frame file in, a map file and its catalogue out
MAPPING = (
    path("--input", "frame file", INPUT),
    path("--output", "map file to write (.h5)", OUTPUT),
    path(
        "--catalogue",
        "cluster catalogue to write (.parquet)",
        OUTPUT,
        required=False,
        beside=CSV_TWIN,
    ),
)
FRAMES_READ = "a frame file (HDF5, ROOT or FITS), calibrated to electrons"
STAGES: dict[str, Stage] = {
    "simulate": Stage(
        "simulate CCD frames with per-pixel truth",
        "Reads: the config (detector, physics, sources). Writes: an HDF5 frame file with frames "
        "(ADU), labels, instances and the events table (docs/frame_format.md), and with --root "
        "its .root twin. Output is written atomically.",
        "pipeline.simulation.simulate:run",
        "SimulateSettings",
        (
            path(
                "--out",
                "output HDF5 path (.h5)",
                OUTPUT,
                suffixes=FRAME_SUFFIXES,
                suffix_hint=" (add simulate.root: true for a ROOT twin)",
                beside=(Beside("the ROOT twin of --out", suffix=".root", when="simulate.root"),),
            ),
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
        "InspectSettings",
        (path("--input", "frame file to open", INPUT),),
    ),
    "train": Stage(
        "train the U-Net on labelled frame files",
        "Reads: labelled frame files (HDF5, ROOT or FITS), calibrated to electrons. Writes: "
        "OUT/last.pt (every epoch, with the state to resume), OUT/best.pt (weights and model "
        "card), OUT/model_card.json, OUT/training_curves.png, and an MLflow run.",
        "pipeline.learning.train:run",
        "TrainSettings",
        (
            path("--frames", "training frame files", INPUT, nargs="*", required=False),
            path("--val-frames", "validation frame files", INPUT, nargs="*", required=False),
            path(
                "--out",
                "output directory",
                OUTPUT,
                beside=files_in(
                    "best.pt", "last.pt", "model_card.json", "training_curves.png", "train.lock"
                ),
            ),
            key("--resume", "train.resume", "continue from OUT/last.pt", action="store_true"),
            key("--init", "train.init", "checkpoint to start from (fine-tuning)", role=INPUT),
            key("--epochs", "train.epochs", "number of epochs", type=int),
            key("--seed", "train.seed", "random seed", type=int),
            key("--device", "train.device", "auto, cpu or cuda"),
            key("--tracking-uri", "tracking.uri", "MLflow tracking URI"),
        ),
        tracks=True,
    ),
    "infer": Stage(
        "per-pixel class maps of frames with a trained model",
        f"Reads: a checkpoint (weights and model card) and {FRAMES_READ}. Writes: a map file "
        "(docs/frame_format.md: labels, optional float16 probabilities, class_names, source), "
        "atomically, frame by frame, and with --catalogue the cluster catalogue as Parquet and "
        "CSV. With ONNX Runtime (fp32 on the CPU) the checkpoint's ONNX copy, once, into "
        "infer.onnx_cache (named by the checkpoint's SHA-256; nothing beside the checkpoint).",
        "pipeline.inference.infer:run",
        "InferSettings",
        (
            key("--model", "infer.model", "checkpoint, or a shipped model's name", role=INPUT),
            *MAPPING,
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
        tracks=True,
    ),
    "classical": Stage(
        "the classical reconstruction (seeded clustering and shape cuts), as a map",
        f"Reads: {FRAMES_READ}. Writes: a map file in the same format as `infer` and, with "
        "--catalogue, the cluster catalogue.",
        "pipeline.inference.classical:run",
        "ClassicalSettings",
        (*MAPPING,),
    ),
    "evaluate": Stage(
        "score map files against truth, side by side",
        "Reads: a labelled frame file (truth) and one or more map files. Writes: OUT/"
        "summary.json, OUT/comparison.md, confusion, spectra and example-frame plots, and an "
        "MLflow run.",
        "pipeline.evaluation.evaluate:run",
        "EvaluateSettings",
        (
            path("--truth", "labelled frame file", INPUT),
            path("--pred", "map files", INPUT, nargs="+"),
            Flag("--names", "a name per map file", arg="names", nargs="+"),
            path(
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
    ),
    "suite": Stage(
        "the generalisation suite: each method on each detector, side by side",
        "Reads: the summary.json that `evaluate` wrote for each detector. Writes: a table with "
        "a row per detector and class (Markdown) and its HTML twin.",
        "pipeline.evaluation.suite:run",
        "SuiteSettings",
        (
            path("--summaries", "summary.json per detector", INPUT, nargs="+"),
            Flag("--names", "a detector name per summary", arg="names", nargs="+"),
            path(
                "--out",
                "Markdown table to write (.md)",
                OUTPUT,
                suffixes=(".md",),
                beside=(Beside("the HTML twin of --out", suffix=".html"),),
            ),
        ),
        tracks=True,
    ),
    "efficiency": Stage(
        "frames simulated for the detector of a frame file, to measure the efficiency on",
        "Reads: a frame file (its declared readout noise) and the config's detector and "
        "sources. Writes: an HDF5 frame file with truth (activity.efficiency_frames frames); "
        "map it with `infer` and give both to `activity`.",
        "pipeline.measurement.efficiency:run",
        "EfficiencySettings",
        (
            path("--frames", "the data's frame file", INPUT),
            path("--out", "output HDF5 path (.h5)", OUTPUT, suffixes=FRAME_SUFFIXES),
        ),
    ),
    "activity": Stage(
        "tritium decays per frame and the sample's activity from a cluster catalogue",
        "Reads: a cluster catalogue (.parquet), its frame file (frame count, exposure, noise), "
        "and the efficiency frames with their catalogue (else the checkpoint that labelled the "
        "data is run on frames simulated here). Writes: a JSON file with counts per frame, the "
        "spectral fit, the activity with its interval and the minimum detectable activity.",
        "pipeline.measurement.activity:run",
        "ActivitySettings",
        (
            path("--catalogue", "cluster catalogue (.parquet)", INPUT),
            path("--frames", "frame file the catalogue came from", INPUT),
            path("--efficiency-frames", "efficiency frames (`efficiency`)", INPUT, required=False),
            path("--efficiency-catalogue", "their catalogue, by the model", INPUT, required=False),
            key(
                "--model",
                "activity.model",
                "checkpoint that labelled the catalogue",
                role=INPUT,
                unless="activity.efficiency",
            ),
            path(
                "--variants",
                "truth catalogues of the efficiency's variants (`variant`)",
                INPUT,
                nargs="*",
                required=False,
            ),
            path("--out", "JSON file to write", OUTPUT),
        ),
    ),
    "variant": Stage(
        "the truth efficiency of one variant of the detector model, for the activity's systematics",
        "Reads: a frame file (the detector it states) and the config's detector, sources and "
        "activity.systematics. Writes: a Parquet catalogue of the truth clusters of "
        "activity.efficiency_frames frames simulated for that detector with one term at one end "
        "of its range (or nominal), and the decays in them; give it to `activity --variants`.",
        "pipeline.measurement.systematics:run_variant",
        "EfficiencySettings",
        (
            path("--frames", "the data's frame file", INPUT),
            path("--out", "catalogue to write (.parquet)", OUTPUT),
            Flag(
                "--variant",
                "nominal, or TERM-low / TERM-high of activity.systematics",
                arg="variant",
            ),
        ),
    ),
    "models": Stage(
        "list the shipped models (use one by name: --model NAME, train.init: NAME)",
        "Reads: the checkpoints in release.dir (models/). Writes: a line per model.",
        "pipeline.network.shipped:run_models",
        "ModelsSettings",
        (key("--dir", "release.dir", "directory of shipped models", role=INPUT),),
    ),
    "export": Stage(
        "make a shipped model of a training run (float16, unused weights dropped)",
        "Reads: RUN/best.pt and RUN/last.pt, the run's config and the suite's evaluations. "
        "Writes: DIR/NAME.pt and its model card DIR/NAME.json, atomically.",
        "pipeline.learning.export:run_export",
        "ExportSettings",
        (
            path("--run", "training output directory (best.pt, last.pt)", INPUT),
            path("--train-config", "the config the run trained with", INPUT),
            path("--suite", "directory of the suite's evaluations", INPUT, required=False),
            key("--name", "release.name", "name of the shipped model"),
            key("--dir", "release.dir", "directory to write it to"),
        ),
        writes=_shipped,
        tracks=True,
    ),
}


def settings_of(config: Any, stage: str) -> Any:
    """`stage`'s slice of a validated config: an instance of its declared settings class."""
    cls = STAGES[stage].settings_class()
    return cls.model_validate({name: getattr(config, name) for name in cls.model_fields})


def stage_sections(stage: str) -> list[str]:
    """The config sections `stage` reads, in the order of `Config` (what the workflow writes
    into results/config/<stage>.yaml)."""
    from pipeline.config import Config

    fields = STAGES[stage].settings_class().model_fields
    return [name for name in Config.model_fields if name in fields]


def folder_files(stage: str) -> tuple[str, ...]:
    """The files `stage` writes into its output folder (what the path checks guard)."""
    return tuple(b.name for f in STAGES[stage].flags for b in f.beside if b.name)
