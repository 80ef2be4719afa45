"""The files each stage reads and writes, checked before the stage reads anything.

Owns the rule that no stage destroys an input: every output of a stage (with the files written
beside it: a catalogue's CSV twin, a simulation's ROOT twin, the files of an output directory)
must differ from every input (an input folder stands for every file in it) and from every other
output. Two paths are the same file when they
resolve to the same path (symlinks, `..`) or, where both exist, share device and inode (hard
links). Output names the stage cannot write (a simulation that is not .h5/.hdf5) are refused here
too, before any work.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.commands import INPUT, OUTPUT, STAGES, Flag
from pipeline.core.errors import ConfigError

SQLITE = "sqlite:///"

Named = list[tuple[str, Path]]  # (what the path is: a flag or config key and a note, the path)


def flag(arg: str) -> str:
    """The command-line flag of a stage function's path argument."""
    return "--" + arg.replace("_", "-")


def _values(args: Mapping[str, Any], name: str) -> list[Path]:
    value = args.get(name)
    values = value if isinstance(value, list | tuple) else [value]
    return [Path(v) for v in values if v]


def _get(settings: Any, dotted: str) -> Any:
    value = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _named(tagged: Flag, settings: Any, args: Mapping[str, Any]) -> Named:
    """The paths a tagged flag names: its argument's, or its config key's."""
    if tagged.arg:
        return [(flag(tagged.arg), p) for p in _values(args, tagged.arg)]
    if tagged.unless and _get(settings, tagged.unless):
        return []
    value = _get(settings, str(tagged.key))
    return [(f"config key '{tagged.key}'", Path(value))] if value else []


MAX_FOLDER_FILES = 10_000  # files of an input folder checked one by one; beyond, the folder only


def _files_in(what: str, path: Path) -> Named:
    """An input folder's files (recursively), each an input: an export's --run folder holds the
    best.pt that a --dir of the same folder would replace."""
    if not path.is_dir():
        return []
    found: Named = []
    for file in path.rglob("*"):
        if len(found) >= MAX_FOLDER_FILES:
            break
        if file.is_file():
            found.append((f"{what} (its file {file.relative_to(path)})", file))
    return found


def stage_inputs(stage: str, settings: Any, args: Mapping[str, Any]) -> Named:
    """Every file `stage` reads, by its declaration (its `STAGE`), and every file in
    an input folder."""
    named = [n for f in STAGES[stage].flags if f.role == INPUT for n in _named(f, settings, args)]
    return named + [n for what, path in named for n in _files_in(what, path)]


def stage_outputs(stage: str, settings: Any, args: Mapping[str, Any]) -> Named:
    """Every file `stage` writes, and those it writes beside them, by its declaration."""
    spec, named = STAGES[stage], []
    for output in (f for f in spec.flags if f.role == OUTPUT):
        paths = _named(output, settings, args)
        named += paths
        for beside in output.beside:
            if beside.when is None or _get(settings, beside.when):
                named += [
                    (f"{what} ({beside.name})" if beside.name else beside.what, beside.path(p))
                    for what, p in paths
                ]
    if spec.writes is not None:
        named += spec.writes(settings)
    return named + (_tracking_db(settings) if spec.tracks else [])


def _tracking_db(config: Any) -> Named:
    """The MLflow database a run writes to, when it is a local sqlite file."""
    uri = config.tracking.uri
    if not (config.tracking.enabled and uri.startswith(SQLITE)):
        return []
    return [("the MLflow database of 'tracking.uri'", Path(uri.removeprefix(SQLITE)))]


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
    for output in (f for f in STAGES[stage].flags if f.role == OUTPUT and f.suffixes):
        for what, path in _named(output, settings, args):
            if path.suffix.lower() not in output.suffixes:
                names = " or ".join(output.suffixes)
                raise ConfigError(
                    f"{path}: {what} is written as {names}; name it so{output.suffix_hint}"
                )
    check_distinct(stage_inputs(stage, settings, args), stage_outputs(stage, settings, args))
