"""How long to count: the detection limit a measurement would reach after other counting times,
from the spectral model its activity JSON records."""

import json

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.inference.classical import classical_file
from pipeline.simulation.simulate import simulate_file


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A measured activity (classical catalogue, a given efficiency with a 10 % error)."""
    folder = tmp_path_factory.mktemp("forecast")
    config = load_config(overrides={"detector.height": 96, "detector.width": 128})
    frames = simulate_file(config, folder / "f.h5", 3, seed=8, progress=False)[0]
    classical_file(config, frames, folder / "m.h5", folder / "c.parquet", progress=False)
    out = folder / "f.json"
    argv = ["activity", "--catalogue", str(folder / "c.parquet"), "--frames", str(frames)]
    given = ["--set", "activity.efficiency=0.3", "--set", "activity.efficiency_error=0.03"]
    assert main([*argv, "--out", str(out), *given, "--set", "tracking.enabled=false"]) == 0
    return out, json.loads(out.read_text())


def test_the_forecast_at_the_measured_time_is_the_measured_limit_and_falls_with_time(
    measured, tmp_path, capsys
):
    path, result = measured
    live = result["live_time_s"]
    times = [live, 10 * live, 100 * live]
    png = tmp_path / "limits.png"
    argv = ["forecast", "--activity", str(path), "--out", str(png), "--names", "f.classical"]
    assert main([*argv, "--set", f"activity.forecast_times_s={times}"]) == 0
    table = json.loads(png.with_suffix(".json").read_text())
    limits = table["detection_limit_bq"]["f.classical"]
    assert table["times_s"] == times and png.read_bytes()[:4] == b"\x89PNG"
    assert limits[0] == pytest.approx(result["mda_bq"], rel=2e-3)  # the same fit, the same time
    # between 1/t (no background) and 1/sqrt(t) (background-dominated), and never rising
    assert limits[0] > limits[1] > limits[2]
    assert 0.01 * 0.9 < limits[2] / limits[0] < 0.1 * 1.1
    said = capsys.readouterr().out
    assert said.startswith("f (classical): detection limit ") and f"after {live / 3600:g} h" in said
    # the activity's own calibration (10 %) is at the calibrated column's (10 %): the same limits
    assert table["detection_limit_calibrated_bq"]["f.classical"] == pytest.approx(limits)
    assert "f (classical), efficiency calibrated to 10%: detection limit" in said


def test_the_forecast_says_what_a_calibrated_efficiency_would_reach(measured, tmp_path):
    """An efficiency known only to 70 % leaves no detection limit (k u >= 1, ISO 11929); the
    calibrated column (a reference sample, 5 %) gives one, below the 10 %-calibrated limits."""
    path, result = measured
    unsure = json.loads(path.read_text()) | {"calibration_uncertainty": 0.7}
    (tmp_path / "u.json").write_text(json.dumps(unsure))
    png = tmp_path / "limits.png"
    argv = ["forecast", "--activity", str(tmp_path / "u.json"), "--out", str(png)]
    assert main([*argv, "--set", "activity.forecast_calibration_uncertainty=0.05"]) == 0
    table = json.loads(png.with_suffix(".json").read_text())
    assert table["detection_limit_bq"]["u"] == [None, None, None]
    calibrated = table["detection_limit_calibrated_bq"]["u"]
    assert all(v is not None for v in calibrated)
    assert calibrated[0] < result["mda_bq"] * 3600 / result["live_time_s"]  # 5 % < 10 %, 1 h > live


def test_what_is_not_an_activity_with_its_model_is_one_line(tmp_path, capsys):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"activity_bq": 0.1, "spectrum": {"counts": [1, 2]}}))
    png = tmp_path / "l.png"
    assert main(["forecast", "--activity", str(old), "--out", str(png)]) == 2
    err = capsys.readouterr().err
    assert "not an activity JSON with its spectral model" in err and err.count("\n") == 1
    assert not png.exists() and not png.with_suffix(".json").exists()


def test_an_uncertain_calibration_raises_the_limit_by_iso_11929s_factor():
    """The same background and time, u_rel 0 against 0.2: for alpha = beta the limit is
    (2 a* + k^2 w) / (1 - k^2 u^2), a* unchanged."""
    from scipy import stats

    from pipeline.measurement.limits import detection_limit_after

    shapes = np.array([[0.2, 0.5, 0.3], [1 / 3, 1 / 3, 1 / 3]])
    background = np.array([40.0, 40.0, 40.0])
    sure = detection_limit_after(shapes, background, 100.0, 0.3, 0.0, 400.0)
    unsure = detection_limit_after(shapes, background, 100.0, 0.3, 0.2, 400.0)
    k = stats.norm.ppf(0.95)
    assert unsure.decision_threshold == pytest.approx(sure.decision_threshold)
    assert unsure.detection_limit > sure.detection_limit
    assert unsure.detection_limit < sure.detection_limit / (1 - k**2 * 0.2**2) * 1.001
