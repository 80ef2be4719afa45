"""The pipeline's error classes and their one-line messages (no heavy imports, for every stage).

Every error a user can cause (a bad file, config key, checkpoint or catalogue) is a
`PipelineError`: its message is one line that names the file or the config key, says what is
wrong and, where it helps, what exists instead; the fields `path`, `key` and `instead` hold the
same for code. It is not a `ValueError`, so no net for library errors catches it by accident,
and a programming error is never taken for bad input: the command line prints a PipelineError
(or an error of the operating system about a file) on one line and exits with status 2; any
other exception is a traceback and status 1.
"""

from __future__ import annotations

from pathlib import Path


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (its type name if it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def printable(text: str) -> str:
    """`text` as valid UTF-8: a file name's undecodable bytes (Python keeps them as surrogates)
    written as \\xNN, so it can be stored in HDF5 attrs, MLflow tags and printed."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class PipelineError(Exception):
    """Input a user can mend; str(e) is one line naming the file or key and what is wrong."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        key: str | None = None,
        instead: str | None = None,
    ) -> None:
        super().__init__(" ".join(str(message).split()))
        self.path = None if path is None else str(path)
        self.key = key
        self.instead = instead


class ConfigError(PipelineError):
    """A config file or override is wrong; the message names the file and the key."""


class FrameFileError(PipelineError):
    """Bad input file. str(e) is ONE line that starts with the file path, says what is wrong and,
    where relevant, what exists instead."""

    def __init__(
        self, path: str | Path, message: str, *, key: str | None = None, instead: str | None = None
    ) -> None:
        super().__init__(f"{path}: {message}", path=path, key=key, instead=instead)


class CalibrationError(PipelineError):
    """Frames the calibration cannot use (saturated, no noise, no Fe-55 peak, no overscan)."""


class CheckpointError(PipelineError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


class CatalogueError(PipelineError):
    """A catalogue that cannot be used; the message names the file and the problem."""


class TrainingDiverged(PipelineError):
    """The training loss is not finite: the settings (a learning rate too high) made the run
    diverge; the checkpoints of the last finished epoch are kept."""


class EfficiencyError(PipelineError):
    """The efficiency is not measurable: its simulated frames gave no fitted tritium decays, or
    the data's detector would need frames too busy to simulate."""


class NonFiniteOutput(PipelineError):
    """The network produced NaN or inf: no meaningful map exists."""


# what the command line reports as bad input (one line, exit status 2): the pipeline's own
# refusals, and the operating system's about a file (missing, unreadable, not writable)
BAD_INPUT = (PipelineError, OSError)
