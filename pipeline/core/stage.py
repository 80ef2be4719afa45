"""What a stage declares, beside the function that runs it (`STAGE = Stage(...)` in its module).

A declaration holds the stage's name, help, what it reads and writes, the function that runs it
(called as `run(settings, **paths)`), its settings (the typed slice of the config it reads, a
class of pipeline/config/stages.py) and its flags. A flag either fills one of the function's
path arguments (`arg`) or sets a config key (`key`); a flag that names a file is tagged an input
or an output, and an output says which files the stage writes beside it (a catalogue's CSV twin,
the files of an output folder). The command line (pipeline/cli.py), the path checks
(pipeline/paths.py) and the workflow's per-stage config (rules/common.smk) read these
declarations, found by name through pipeline/commands.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INPUT, OUTPUT = "input", "output"
FRAME_SUFFIXES = (".h5", ".hdf5")  # what a stage that writes frames may name its file


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
    name: str
    help: str
    description: str  # what the stage reads and writes
    run: Callable[..., Any]  # called as run(settings, **path_arguments)
    settings: type  # its settings: a class of pipeline/config/stages.py
    flags: tuple[Flag, ...] = ()
    tracks: bool = False  # writes to the MLflow store of tracking.uri (an output when a file)
    writes: Callable[[Any], list[tuple[str, Path]]] | None = None  # outputs its settings name

    def function(self) -> Callable[..., Any]:
        return self.run

    def settings_class(self) -> type:
        return self.settings


def file_flag(
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


def key_flag(name: str, key: str, help: str, **kw: Any) -> Flag:
    """A flag setting a config key."""
    return Flag(name, help, key=key, **kw)


def files_in(*names: str) -> tuple[Beside, ...]:
    """The files a stage writes into an output folder."""
    return tuple(Beside("a file of the folder", name=name) for name in names)
