"""The files each stage reads and writes, checked before the stage reads anything.

Owns the rule that no stage destroys an input: every output of a stage (with the files written
beside it: a catalogue's CSV twin, a simulation's ROOT twin, the files of an output directory)
must differ from every input and from every other output. Two paths are the same file when they
resolve to the same path (symlinks, `..`) or, where both exist, share device and inode (hard
links). Output names the stage cannot write (a simulation that is not .h5/.hdf5) are refused here
too, before any work.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline.core.errors import ConfigError

# files a training run writes into its --out folder, and an evaluation into its --out folder
TRAIN_FILES = ("best.pt", "last.pt", "model_card.json", "training_curves.png")
EVALUATE_FILES = (
    "summary.json",
    "comparison.md",
    "comparison.html",
    "confusion.png",
    "spectra.png",
    "example_frame.png",
)
FRAME_SUFFIXES = (".h5", ".hdf5")
SQLITE = "sqlite:///"

Named = list[tuple[str, Path]]  # (what the path is: a flag or config key and a note, the path)


def flag(arg: str) -> str:
    """The command-line flag of a stage function's path argument."""
    return "--" + arg.replace("_", "-")


def _args(args: Mapping[str, Any], *names: str) -> Named:
    """(flag, path) of each path the arguments `names` give (a list gives several)."""
    named = []
    for name in names:
        value = args.get(name)
        values = value if isinstance(value, list | tuple) else [value]
        named += [(flag(name), Path(v)) for v in values if v]
    return named


def _key(settings: Any, key: str) -> Named:
    section, name = key.split(".")
    value = getattr(getattr(settings, section), name)
    return [(f"config key '{key}'", Path(value))] if value else []


INPUT_ARGS = {
    "inspect": ["input"],
    "train": ["frames", "val_frames"],
    "infer": ["input"],
    "classical": ["input"],
    "evaluate": ["truth", "pred"],
    "suite": ["summaries"],
    "efficiency": ["frames"],
    "activity": ["catalogue", "frames", "efficiency_frames", "efficiency_catalogue"],
    "export": ["run", "train_config", "suite"],
}
MODEL_KEYS = {"train": "train.init", "infer": "infer.model", "activity": "activity.model"}


def stage_inputs(stage: str, settings: Any, args: Mapping[str, Any]) -> Named:
    inputs = _args(args, *INPUT_ARGS.get(stage, []))
    if stage in MODEL_KEYS and not (stage == "activity" and settings.activity.efficiency):
        inputs += _key(settings, MODEL_KEYS[stage])
    if stage == "models":
        inputs += _key(settings, "release.dir")
    return inputs


def stage_outputs(stage: str, settings: Any, args: Mapping[str, Any]) -> Named:
    if stage == "simulate":
        out = _args(args, "out")
        twin = [("the ROOT twin of --out", p.with_suffix(".root")) for _, p in out]
        return out + (twin if settings.simulate.root else [])
    if stage in ("infer", "classical"):
        from pipeline.results.clusters import catalogue_twin  # pandas only where it is needed

        catalogue = _args(args, "catalogue")
        twins = [("the CSV twin of --catalogue", catalogue_twin(p)) for _, p in catalogue]
        return _args(args, "output") + catalogue + twins
    if stage in ("train", "evaluate"):
        files = TRAIN_FILES if stage == "train" else EVALUATE_FILES
        return _directory(_args(args, "out"), files) + _tracking_db(settings)
    if stage in ("activity", "efficiency"):
        return _args(args, "out")
    if stage == "export":  # without a name the stage stops at once (release.name is required)
        folder, name = Path(settings.release.dir), settings.release.name or "NAME"
        what = "the shipped model in 'release.dir'"
        return [(what, folder / f"{name}.pt"), (f"the card of {what}", folder / f"{name}.json")]
    if stage == "suite":
        out = _args(args, "out")
        return out + [("the HTML twin of --out", p.with_suffix(".html")) for _, p in out]
    return []


def _tracking_db(config: Any) -> Named:
    """The MLflow database a run writes to, when it is a local sqlite file."""
    uri = config.tracking.uri
    if not (config.tracking.enabled and uri.startswith(SQLITE)):
        return []
    return [("the MLflow database of 'tracking.uri'", Path(uri.removeprefix(SQLITE)))]


def _directory(dirs: Named, files: Iterable[str]) -> Named:
    return dirs + [(f"{what} ({name})", path / name) for what, path in dirs for name in files]


def _identity(path: Path) -> tuple[Path, tuple[int, int] | None]:
    resolved = Path(os.path.abspath(path)).resolve()
    try:
        stat = os.stat(path)
    except OSError:
        return resolved, None
    return resolved, (stat.st_dev, stat.st_ino)


def same_file(a: Path, b: Path) -> bool:
    (path_a, inode_a), (path_b, inode_b) = _identity(a), _identity(b)
    return path_a == path_b or (inode_a is not None and inode_a == inode_b)


def check_distinct(inputs: Named, outputs: Named) -> None:
    """ConfigError (one line, naming the path and both keys) if an output is an input or
    another output."""
    for i, (what, path) in enumerate(outputs):
        for other_what, other in inputs:
            if same_file(path, other):
                raise ConfigError(
                    f"{path}: output ({what}) is the same file as input {other} "
                    f"({other_what}); refusing to overwrite an input"
                )
        for other_what, other in outputs[:i]:
            if same_file(path, other):
                raise ConfigError(
                    f"{path}: output ({what}) is the same file as output {other} ({other_what}); "
                    "give each output its own name"
                )


def check_stage_paths(stage: str, settings: Any, args: Mapping[str, Any]) -> None:
    """All path rules of `stage` (its settings and path arguments), before it reads anything."""
    outputs = stage_outputs(stage, settings, args)
    if stage in ("simulate", "efficiency"):
        for what, path in outputs[:1]:
            if path.suffix.lower() not in FRAME_SUFFIXES:
                raise ConfigError(
                    f"{path}: a simulation is written as HDF5 ({what}); name it .h5 or .hdf5 "
                    "(add simulate.root: true for a ROOT twin)"
                )
    check_distinct(stage_inputs(stage, settings, args), outputs)
