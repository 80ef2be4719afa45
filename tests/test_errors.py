"""The error classes (pipeline/core/errors.py) and where the command line draws the line between
bad input (one line, exit 2) and a bug (a traceback, exit 1)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.core.errors import (
    BAD_INPUT,
    CalibrationError,
    CatalogueError,
    CheckpointError,
    ConfigError,
    EfficiencyError,
    FrameFileError,
    PipelineError,
)


def test_every_refusal_is_a_pipeline_error_and_none_is_a_value_error():
    for error in (ConfigError, FrameFileError, CheckpointError, CatalogueError, EfficiencyError,
                  CalibrationError):  # fmt: skip
        assert issubclass(error, PipelineError) and not issubclass(error, ValueError)
    assert (PipelineError, OSError) == BAD_INPUT


def test_a_refusal_carries_the_file_the_key_and_what_exists_instead():
    error = FrameFileError("run.h5", "no dataset 'frames'", key="frames", instead="adu, truth")
    assert str(error) == "run.h5: no dataset 'frames'"
    assert (error.path, error.key, error.instead) == ("run.h5", "frames", "adu, truth")
    assert str(ConfigError("config key 'a.b':\n  not a number")) == "config key 'a.b': not a number"


def _stage_raising(monkeypatch, error: BaseException) -> None:
    from pipeline import commands

    def stage(settings, out):
        raise error

    monkeypatch.setattr(commands.Stage, "function", lambda self: stage)


def test_bad_input_is_one_line_and_exit_status_2(monkeypatch, capsys, tmp_path):
    _stage_raising(monkeypatch, CalibrationError("f.h5: every pixel has the value 7"))
    assert main(["simulate", "--out", str(tmp_path / "s.h5")]) == 2
    err = capsys.readouterr().err
    assert err == "pipeline simulate: error: f.h5: every pixel has the value 7\n"


@pytest.mark.parametrize("bug", [ValueError("bad index"), KeyError("x"), TypeError("None")])
def test_a_programming_error_is_a_traceback_not_bad_input(monkeypatch, tmp_path, bug):
    """A ValueError (or any other exception that is not a refusal) propagates: Python prints its
    traceback and exits with status 1; it is never reported as "bad input"."""
    _stage_raising(monkeypatch, bug)
    with pytest.raises(type(bug)):
        main(["simulate", "--out", str(tmp_path / "s.h5")])


def test_frames_the_calibration_cannot_use_are_calibration_errors():
    from pipeline.calibration import calibrate

    with pytest.raises(CalibrationError, match="no noise can be measured"):
        calibrate.measure_noise_e(np.full((8, 8), 3.0), 4.0)
