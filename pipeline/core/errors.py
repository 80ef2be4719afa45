"""The pipeline's error classes and their one-line messages (no heavy imports, for every stage).

Every error a user can cause is one of `BAD_INPUT`: the command line prints its message on one
line, naming the file or the config key, and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (its type name if it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the file and the key."""


class FrameFileError(Exception):
    """Bad input file. str(e) is ONE line that starts with the file path, says what is wrong and,
    where relevant, what exists instead."""

    def __init__(self, path: str | Path, message: str) -> None:
        super().__init__(f"{path}: {' '.join(str(message).split())}")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


class CatalogueError(ValueError):
    """A catalogue that cannot be used; the message names the file and the problem."""


class EfficiencyError(ValueError):
    """The simulated frames gave no fitted tritium decays: the efficiency is not measurable."""


class NonFiniteOutput(ValueError):
    """The network produced NaN or inf: no meaningful map exists."""


BAD_INPUT = (ConfigError, FrameFileError, CheckpointError, CatalogueError, EfficiencyError, OSError)
