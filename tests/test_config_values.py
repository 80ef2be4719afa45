"""Property test, by rule: any numeric config value (at its bounds, 0, negative, NaN, infinite,
huge) makes a stage either refuse in one line (exit 2, no output) or write finite outputs."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.config import DEFAULT_CONFIG
from tests.test_io import h5_file


def _numeric_keys(node, prefix=""):
    for name, value in node.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and ".overrides" not in key and key != "simulate.datasets":
            yield from _numeric_keys(value, key + ".")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield key, value
        elif isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
            yield key, value  # a range or a table: its first item is drawn


# the keys the two stages read: the reader, calibration, the classical rules, the simulator
READ_BY = ("io.", "calibrate.", "classical.", "detector.", "physics.", "sources.", "simulate.")
DEFAULTS = dict(_numeric_keys(yaml.safe_load(DEFAULT_CONFIG.read_text())))
KEYS = sorted(k for k in DEFAULTS if k.startswith(READ_BY))
VALUES = [0, -1, 1e-300, 0.5, 2, 1e6, 1e300, float("nan"), float("inf"), -float("inf")]


def _yaml(value: float, default) -> str:
    """`value` as YAML, in place of the default's first item where the default is a list."""
    text = "nan" if isinstance(value, float) and math.isnan(value) else repr(value)
    text = {"inf": ".inf", "-inf": "-.inf", "nan": ".nan"}.get(text, text)
    if isinstance(default, list):
        return "[" + ", ".join([text, *map(repr, default[1:])]) + "]"
    return text


def _finite_outputs(folder: Path) -> bool:
    for path in folder.rglob("*.h5"):
        with h5py.File(path) as f:
            for name in ("frames", "labels"):
                if name in f and not np.isfinite(f[name][()].astype(float)).all():
                    return False
    return True


def _run(capsys, key: str, value: float, stage: str, folder: Path) -> None:
    """One stage with `key` set to `value`: a one-line refusal and no output, or exit 0 with
    finite outputs."""
    out = folder / "out"
    out.mkdir()
    flags = ["--set", f"{key}={_yaml(value, DEFAULTS[key])}"]
    if stage == "classical":
        frames = h5_file(folder / "f.h5", np.random.default_rng(0).normal(100, 2, (3, 32, 40)))
        argv = ["classical", "--input", str(frames), "--output", str(out / "m.h5")]
    else:
        argv = ["simulate", "--out", str(out / "s.h5"), "--frames", "1"]
        argv += ["--height", "48", "--width", "48"]
    code = main([*argv, *flags])
    err = capsys.readouterr().err.splitlines()
    assert code in (0, 2), (key, value, code)
    if code == 2:
        assert len([line for line in err if "error:" in line]) == 1, (key, value, err)
        assert list(out.iterdir()) == [], (key, value)
    else:
        assert _finite_outputs(out), (key, value)


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    key=st.sampled_from(KEYS),
    value=st.sampled_from(VALUES),
    stage=st.sampled_from(["classical", "simulate"]),
)
def test_any_numeric_value_is_refused_in_one_line_or_gives_finite_outputs(
    capsys, key, value, stage
):
    assert len(KEYS) > 40
    with tempfile.TemporaryDirectory() as tmp:
        _run(capsys, key, value, stage, Path(tmp))


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["classical", "simulate"])
def test_every_numeric_key_at_every_value(capsys, stage):
    """The search for the family's members, whole: every key the stage reads at every value
    (about 1,000 runs, a few minutes: `pytest -m slow`)."""
    for key in KEYS:
        for value in VALUES:
            with tempfile.TemporaryDirectory() as tmp:
                _run(capsys, key, value, stage, Path(tmp))


@pytest.mark.slow
def test_every_activity_key_at_every_value(capsys, tmp_path):
    """The same for the activity's keys, on a catalogue of simulated frames (the efficiency
    given, so each run is the fit alone): a refusal, or a JSON of finite numbers."""
    from pipeline.config import load_config
    from pipeline.simulation.simulate import simulate_file

    small = load_config(overrides={"detector.height": 128, "detector.width": 128})
    frames = simulate_file(small, tmp_path / "f.h5", 2, seed=1, progress=False)[0]
    catalogue = tmp_path / "c.parquet"
    argv = ["classical", "--input", str(frames), "--output", str(tmp_path / "m.h5")]
    assert main([*argv, "--catalogue", str(catalogue)]) == 0
    for key in (k for k in DEFAULTS if k.startswith("activity.")):
        for value in VALUES:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "out"
                out.mkdir()
                flags = ["--set", f"{key}={_yaml(value, DEFAULTS[key])}"]
                flags += (
                    ["--set", "activity.efficiency=0.3"] if key != "activity.efficiency" else []
                )
                argv = ["activity", "--catalogue", str(catalogue), "--frames", str(frames)]
                code = main([*argv, "--out", str(out / "a.json"), *flags])
                err = capsys.readouterr().err.splitlines()
                assert code in (0, 2), (key, value, code)
                if code == 2:
                    assert len([line for line in err if "error:" in line]) == 1, (key, value)
                    assert list(out.iterdir()) == [], (key, value)
                else:
                    text = (out / "a.json").read_text()
                    assert "NaN" not in text and "Infinity" not in text, (key, value)
