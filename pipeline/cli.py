"""Command line: `python -m pipeline <stage>` (also the `pipeline` console script).

Owns argument parsing only. Every stage flag is declared with the config key it sets; the flags
given become dotted-key overrides on top of `--config` (merged over configs/default.yaml), and the
validated config goes to the stage's typed function. Bad input ends with one line on stderr that
names the file or key, and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.atomic import install_signal_cleanup
from pipeline.clusters import CatalogueError
from pipeline.config import Config, ConfigError, load_config
from pipeline.efficiency import EfficiencyError
from pipeline.io import FrameFileError
from pipeline.model import CheckpointError
from pipeline.paths import check_stage_paths

EXIT_BAD_INPUT = 2
BAD_INPUT = (ConfigError, FrameFileError, CheckpointError, CatalogueError, EfficiencyError, OSError)


@dataclass(frozen=True)
class Flag:
    name: str
    key: str  # dotted config key the flag sets
    help: str
    type: Callable[[str], Any] = str
    action: str | None = None
    nargs: str | None = None


@dataclass(frozen=True)
class Stage:
    help: str
    description: str  # what the stage reads and writes
    run: Callable[[Config], None]
    flags: tuple[Flag, ...] = field(default_factory=tuple)


def _require(config: Config, *keys: str) -> None:
    """Keys a stage cannot run without; the error names the key and the flag that sets it."""
    for key in keys:
        section, name = key.split(".")
        if not getattr(getattr(config, section), name):
            flag = next(
                (f.name for stage in STAGES.values() for f in stage.flags if f.key == key),
                "--set " + key + "=...",
            )
            raise ConfigError(f"config key '{key}' is not set (give {flag})")


def _run_simulate(config: Config) -> None:
    from pipeline.simulate import simulate_file

    cfg = config.simulate
    paths = simulate_file(config, Path(cfg.out), cfg.frames, cfg.seed, root=cfg.root)
    for path in paths:
        print(f"wrote {path}")


def _run_inspect(config: Config) -> None:
    from pipeline.inspect import describe
    from pipeline.io import open_frames

    _require(config, "inspect.input")
    with open_frames(config.inspect.input, config.io, config.classes) as frames:
        print(yaml.safe_dump(describe(frames), sort_keys=False), end="")


def _run_train(config: Config) -> None:
    from pipeline.train import train

    result = train(config)
    state = result.state
    if not math.isnan(state.best_metric):
        print(
            f"best macro IoU {state.best_metric:.4f} at epoch {state.best_epoch}; "
            f"model: {result.out / 'best.pt'}"
        )
    else:
        print(f"no validation score (empty validation set); model: {result.out / 'best.pt'}")
    if config.tracking.enabled and state.run_id:
        print(
            f"MLflow run {state.run_id} in {config.tracking.uri} "
            f"(mlflow ui --backend-store-uri {config.tracking.uri})"
        )


def _run_infer(config: Config) -> None:
    from pipeline.infer import infer_file

    _require(config, "infer.input", "infer.output")
    print(infer_file(config))


def _run_classical(config: Config) -> None:
    from pipeline.classical import classical_file

    cfg = config.infer
    _require(config, "infer.input", "infer.output")
    print(classical_file(config, cfg.input, cfg.output, cfg.catalogue))


def _run_evaluate(config: Config) -> None:
    from pipeline.evaluate import comparison_table, evaluate_files, log_evaluation

    cfg = config.evaluate
    _require(config, "evaluate.truth", "evaluate.pred")
    if cfg.names and len(cfg.names) != len(cfg.pred):
        raise ConfigError(
            f"config key 'evaluate.names' has {len(cfg.names)} names for {len(cfg.pred)} map files"
        )
    names = cfg.names or [Path(p).stem for p in cfg.pred]
    summary = evaluate_files(config, cfg.truth, dict(zip(names, cfg.pred, strict=True)), cfg.out)
    log_evaluation(config, summary, Path(cfg.out))
    print(comparison_table(summary, config.classes), end="")
    print(f"wrote {cfg.out}/summary.json, comparison.md and plots")


def _run_suite(config: Config) -> None:
    from pipeline.suite import write_suite

    cfg = config.evaluate
    _require(config, "evaluate.suite")
    names = cfg.suite_names or [Path(p).parent.name for p in cfg.suite]
    out = write_suite(cfg.suite, names, cfg.suite_out, config.classes)
    print(out.read_text(), end="")
    print(f"wrote {out} and {out.with_suffix('.html')}")


def _run_activity(config: Config) -> None:
    import json

    from pipeline.activity import (
        ACTIVITY_COLUMNS,
        activity_summary,
        counts_per_frame,
        estimate_activity,
    )
    from pipeline.clusters import read_catalogue
    from pipeline.efficiency import detector_of, efficiency_for
    from pipeline.io import atomic_output, open_frames

    cfg = config.activity
    _require(config, "activity.catalogue", "activity.frames")
    catalogue = read_catalogue(cfg.catalogue, ACTIVITY_COLUMNS)
    io = config.io.model_copy(update={"check_finite": False})
    with open_frames(cfg.frames, io) as ff:
        n_frames, attrs = ff.n_frames, ff.attrs
    config = detector_of(config, attrs)
    efficiency, error = efficiency_for(config)
    try:
        counts = counts_per_frame(catalogue, config.classes, n_frames)
        result = estimate_activity(
            catalogue, n_frames, config, attrs.get("exposure_s"), efficiency, error
        )
    except ValueError as exc:
        raise ConfigError(f"{cfg.catalogue} with {cfg.frames}: {exc}") from None
    summary = activity_summary(result)
    summary["counts_per_frame"] = {c: counts[c].tolist() for c in counts.columns}
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(cfg.out) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    low, high = result.interval_bq
    print(
        f"tritium activity {result.activity_bq:.4g} Bq ({config.activity.confidence:.0%} "
        f"interval {low:.4g}-{high:.4g} Bq), MDA {result.mda_bq:.4g} Bq; wrote {cfg.out}"
    )


def _run_models(config: Config) -> None:
    from pipeline.shipped import describe, list_models, models_dir

    models = list_models(config.release.dir)
    listing = "\n".join(describe(m) for m in models)
    print(listing or f"no models in {models_dir(config.release.dir)}")


def _run_export(config: Config) -> None:
    from pipeline.shipped import export_model

    _require(config, "release.run", "release.train_config", "release.name")
    out = export_model(config)
    size = out.stat().st_size / 1e6
    print(f"wrote {out} ({size:.1f} MB) and its card {out.with_suffix('.json')}")


STAGES: dict[str, Stage] = {
    "simulate": Stage(
        help="simulate CCD frames with per-pixel truth",
        description=(
            "Reads: the config (detector, physics, sources). Writes: an HDF5 frame file with "
            "frames (ADU), labels, instances and the events table (docs/frame_format.md), and "
            "with --root its .root twin. Output is written atomically."
        ),
        run=_run_simulate,
        flags=(
            Flag("--out", "simulate.out", "output HDF5 path (.h5)"),
            Flag("--frames", "simulate.frames", "number of frames", int),
            Flag("--seed", "simulate.seed", "random seed (same seed, same file)", int),
            Flag("--height", "detector.height", "rows per frame", int),
            Flag("--width", "detector.width", "columns per frame", int),
            Flag("--root", "simulate.root", "also write a ROOT twin", action="store_true"),
        ),
    ),
    "inspect": Stage(
        help="open a frame file (HDF5, ROOT or FITS), validate it and summarise it",
        description=(
            "Reads: a frame file, checked against the format contract (shapes, dtypes, NaN/inf, "
            "labels and class names). Writes: a YAML summary on stdout; no files."
        ),
        run=_run_inspect,
        flags=(Flag("--input", "inspect.input", "frame file to open"),),
    ),
    "train": Stage(
        help="train the U-Net on labelled frame files",
        description=(
            "Reads: labelled frame files (HDF5, ROOT or FITS), calibrated to electrons. Writes: "
            "OUT/last.pt (every epoch, with the state to resume), OUT/best.pt (weights and model "
            "card), OUT/model_card.json, OUT/training_curves.png, and an MLflow run."
        ),
        run=_run_train,
        flags=(
            Flag("--frames", "train.frames", "training frame files", nargs="+"),
            Flag("--val-frames", "train.val_frames", "validation frame files", nargs="*"),
            Flag("--out", "train.out", "output directory"),
            Flag("--resume", "train.resume", "continue from OUT/last.pt", action="store_true"),
            Flag("--init", "train.init", "checkpoint to start from (fine-tuning)"),
            Flag("--epochs", "train.epochs", "number of epochs", int),
            Flag("--seed", "train.seed", "random seed", int),
            Flag("--device", "train.device", "auto, cpu or cuda"),
            Flag("--tracking-uri", "tracking.uri", "MLflow tracking URI"),
        ),
    ),
    "infer": Stage(
        help="per-pixel class maps of frames with a trained model",
        description=(
            "Reads: a checkpoint (weights and model card) and a frame file (HDF5, ROOT or FITS), "
            "calibrated to electrons. Writes: a map file (docs/frame_format.md: labels, optional "
            "float16 probabilities, class_names, source), atomically, frame by frame, and with "
            "--catalogue the cluster catalogue as Parquet and CSV. With ONNX Runtime (fp32 on "
            "the CPU) the checkpoint's ONNX copy, once, beside it (pipeline/runtime.py)."
        ),
        run=_run_infer,
        flags=(
            Flag("--model", "infer.model", "checkpoint, or a shipped model's name"),
            Flag("--input", "infer.input", "frame file"),
            Flag("--output", "infer.output", "map file to write (.h5)"),
            Flag("--catalogue", "infer.catalogue", "cluster catalogue to write (.parquet)"),
            Flag(
                "--probabilities",
                "infer.probabilities",
                "also write class probabilities",
                action="store_true",
            ),
            Flag("--tta", "infer.tta", "average over flips", action="store_true"),
            Flag("--window", "infer.window", "window edge in pixels", type=int),
            Flag("--overlap", "infer.overlap", "fraction shared by neighbours", type=float),
            Flag("--device", "infer.device", "auto, cpu or cuda"),
            Flag("--runtime", "infer.runtime", "auto, torch or onnxruntime"),
            Flag(
                "--dense",
                "infer.sparse.enabled",
                "the network on every pixel",
                action="store_false",
            ),
        ),
    ),
    "classical": Stage(
        help="the classical reconstruction (seeded clustering and shape cuts), as a map",
        description=(
            "Reads: a frame file (HDF5, ROOT or FITS), calibrated to electrons. Writes: a map "
            "file in the same format as `infer` and, with --catalogue, the cluster catalogue."
        ),
        run=_run_classical,
        flags=(
            Flag("--input", "infer.input", "frame file"),
            Flag("--output", "infer.output", "map file to write (.h5)"),
            Flag("--catalogue", "infer.catalogue", "cluster catalogue to write (.parquet)"),
        ),
    ),
    "evaluate": Stage(
        help="score map files against truth, side by side",
        description=(
            "Reads: a labelled frame file (truth) and one or more map files. Writes: OUT/"
            "summary.json, OUT/comparison.md, confusion, spectra and example-frame plots, and "
            "an MLflow run."
        ),
        run=_run_evaluate,
        flags=(
            Flag("--truth", "evaluate.truth", "labelled frame file"),
            Flag("--pred", "evaluate.pred", "map files", nargs="+"),
            Flag("--names", "evaluate.names", "a name per map file", nargs="+"),
            Flag("--out", "evaluate.out", "output directory"),
        ),
    ),
    "suite": Stage(
        help="the generalisation suite: each method on each detector, side by side",
        description=(
            "Reads: the summary.json that `evaluate` wrote for each detector. Writes: a table "
            "with a row per detector and class (Markdown) and its HTML twin."
        ),
        run=_run_suite,
        flags=(
            Flag("--summaries", "evaluate.suite", "summary.json per detector", nargs="+"),
            Flag("--names", "evaluate.suite_names", "a detector name per summary", nargs="+"),
            Flag("--out", "evaluate.suite_out", "Markdown table to write (.md)"),
        ),
    ),
    "activity": Stage(
        help="tritium decays per frame and the sample's activity from a cluster catalogue",
        description=(
            "Reads: a cluster catalogue (.parquet), its frame file (frame count, exposure, noise) "
            "and the checkpoint that labelled it (its efficiency is measured on simulated frames). "
            "Writes: a JSON file with counts per frame, the spectral fit, the activity with its "
            "interval and the minimum detectable activity (Currie)."
        ),
        run=_run_activity,
        flags=(
            Flag("--catalogue", "activity.catalogue", "cluster catalogue (.parquet)"),
            Flag("--frames", "activity.frames", "frame file the catalogue came from"),
            Flag("--model", "activity.model", "checkpoint that labelled the catalogue"),
            Flag("--out", "activity.out", "JSON file to write"),
        ),
    ),
    "models": Stage(
        help="list the shipped models (use one by name: --model NAME, train.init: NAME)",
        description="Reads: the checkpoints in release.dir (models/). Writes: a line per model.",
        run=_run_models,
        flags=(Flag("--dir", "release.dir", "directory of shipped models"),),
    ),
    "export": Stage(
        help="make a shipped model of a training run (float16, unused weights dropped)",
        description=(
            "Reads: RUN/best.pt and RUN/last.pt, the run's config and the suite's evaluations. "
            "Writes: DIR/NAME.pt and its model card DIR/NAME.json, atomically."
        ),
        run=_run_export,
        flags=(
            Flag("--run", "release.run", "training output directory (best.pt, last.pt)"),
            Flag("--train-config", "release.train_config", "the config the run trained with"),
            Flag("--suite", "release.suite", "directory of the suite's evaluations"),
            Flag("--name", "release.name", "name of the shipped model"),
            Flag("--dir", "release.dir", "directory to write it to"),
        ),
    ),
}


def _parse_set(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE, got {text!r}")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError:
        raise ConfigError(f"--set {key}: {value!r} is not valid YAML") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipeline", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, stage in STAGES.items():
        p = sub.add_parser(name, help=stage.help, description=f"{stage.help}. {stage.description}")
        p.add_argument("--config", type=Path, help="YAML merged over configs/default.yaml")
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="set any config key (dotted), e.g. --set detector.readout_noise_e=2.5",
        )
        for flag in stage.flags:
            kwargs: dict[str, Any] = {"help": f"{flag.help} [config: {flag.key}]", "default": None}
            if flag.action:
                kwargs["action"] = flag.action
            else:
                kwargs["type"] = flag.type
            if flag.nargs:
                kwargs["nargs"] = flag.nargs
            p.add_argument(flag.name, dest=flag.key, **kwargs)
    return parser


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    overrides = dict(_parse_set(text) for text in args.set)
    for flag in STAGES[args.stage].flags:
        value = getattr(args, flag.key)
        if value is not None and not (flag.action == "store_true" and value is False):
            overrides[flag.key] = value
    return overrides


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    install_signal_cleanup()
    try:
        config = load_config(args.config, overrides_from(args))
        check_stage_paths(args.stage, config)
        STAGES[args.stage].run(config)
    except BAD_INPUT as exc:
        message = " ".join(str(exc).split())
        print(f"pipeline {args.stage}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
