"""The calibration route: a reference sample of known activity, measured like the data and
labelled by the same method, gives the efficiency; the data's activity through it covers the
truth, and a reference of another method is refused."""

import json

import h5py
import pytest

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.inference.classical import classical_file
from pipeline.simulation.simulate import simulate_file

TRITIUM = 3  # class index of tritium in the default classes
SETS = ["--set", "tracking.enabled=false"]


def _measured(folder, name: str, seed: int):
    """Frames with betas at a known rate, their classical catalogue, and the true activity."""
    config = load_config(
        overrides={
            "detector.height": 256,
            "detector.width": 256,
            "sources.tritium.rate_per_frame": 60.0,
        }
    )
    frames = simulate_file(config, folder / f"{name}.h5", 6, seed=seed, progress=False)[0]
    catalogue = folder / f"{name}.parquet"
    classical_file(config, frames, folder / f"{name}.map.h5", catalogue, progress=False)
    with h5py.File(frames) as f:
        decays = int((f["events/class"][:] == TRITIUM).sum())
        live = f["frames"].shape[0] * float(f.attrs["exposure_s"])
    return frames, catalogue, decays / live


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    ref_frames, ref_catalogue, ref_bq = _measured(folder, "ref", seed=21)
    out = folder / "ref.json"
    argv = ["reference", "--catalogue", str(ref_catalogue), "--frames", str(ref_frames)]
    argv += ["--reference-bq", str(ref_bq), "--reference-error-bq", str(0.02 * ref_bq)]
    assert main([*argv, "--out", str(out), *SETS]) == 0
    return folder, out, ref_bq


def test_a_reference_gives_the_efficiency_and_the_datas_activity_covers_its_truth(
    calibrated, capsys
):
    folder, reference, ref_bq = calibrated
    measured = json.loads(reference.read_text())
    assert measured["method"] == "classical" and measured["reference_bq"] == pytest.approx(ref_bq)
    # the fitted yield over the certified decays; its error holds the fit's and the certificate's
    assert measured["efficiency"] == pytest.approx(
        measured["tritium_counts"] / (ref_bq * measured["live_time_s"])
    )
    assert measured["efficiency_error"] > 0.02 * measured["efficiency"]
    frames, catalogue, true_bq = _measured(folder, "data", seed=22)
    out = folder / "data.json"
    argv = ["activity", "--catalogue", str(catalogue), "--frames", str(frames)]
    assert main([*argv, "--reference", str(reference), "--out", str(out), *SETS]) == 0
    said = capsys.readouterr().out
    assert "the reference measurement ref.json: a sample of" in said
    result = json.loads(out.read_text())
    assert result["efficiency"] == pytest.approx(measured["efficiency"], rel=1e-3)
    assert result["systematics"] == {
        "dropped": "activity.efficiency is the real detector's: no detector-model terms"
    }
    low, high = result["interval_bq"]
    assert low <= true_bq <= high, (low, true_bq, high)


def test_a_reference_of_another_method_is_refused_in_one_line(calibrated, tmp_path, capsys):
    folder, reference, _ = calibrated
    other = json.loads(reference.read_text())
    other["method"] = "0" * 64  # a network's checkpoint digest
    (tmp_path / "other.json").write_text(json.dumps(other))
    argv = [
        "activity",
        "--catalogue",
        str(folder / "ref.parquet"),
        "--frames",
        str(folder / "ref.h5"),
    ]
    out = tmp_path / "a.json"
    assert main([*argv, "--reference", str(tmp_path / "other.json"), "--out", str(out), *SETS]) == 2
    err = capsys.readouterr().err
    assert "measured with another method" in err and err.count("\n") == 1
    assert not out.exists()


def _layer(folder, name: str, thickness_um: float, rate: float, seed: int):
    """Frames of a layer sample, their classical catalogue, and the true activity of the decays
    (those of the whole layer, and those of its escape layer)."""
    given = {
        "detector.height": 256,
        "detector.width": 256,
        "sources.tritium.sample.kind": "layer",
        "sources.tritium.sample.thickness_um": thickness_um,
        "sources.tritium.rate_per_frame": rate,
    }
    config = load_config(overrides=given)
    frames = simulate_file(config, folder / f"{name}.h5", 6, seed=seed, progress=False)[0]
    catalogue = folder / f"{name}.parquet"
    classical_file(config, frames, folder / f"{name}.map.h5", catalogue, progress=False)
    with h5py.File(frames) as f:
        decays = json.loads(f.attrs["drawn_events"])["tritium"]
        live = f["frames"].shape[0] * float(f.attrs["exposure_s"])
    sets = [f"--set={key}={value}" for key, value in given.items()]
    return frames, catalogue, decays / live, sets


def test_a_reference_of_another_geometry_is_carried_over_by_the_simulation(tmp_path, capsys):
    """A thin deposit of known activity calibrates the detector; the data are a 2 um layer.
    The data's efficiency is the reference's times the ratio of the two samples' simulated
    efficiencies, and its interval covers the true activity of the data's escape layer."""
    ref_frames, ref_catalogue, ref_bq, ref_sets = _layer(tmp_path, "ref", 0.05, 120.0, 41)
    reference = tmp_path / "ref.json"
    argv = ["reference", "--catalogue", str(ref_catalogue), "--frames", str(ref_frames)]
    argv += ["--reference-bq", str(ref_bq), "--reference-error-bq", str(0.02 * ref_bq)]
    assert main([*argv, "--out", str(reference), *ref_sets, *SETS]) == 0
    assert json.loads(reference.read_text())["sample"]["thickness_um"] == 0.05
    frames, catalogue, true_bq, sets = _layer(tmp_path, "data", 2.0, 400.0, 42)
    out = tmp_path / "data.json"
    argv = ["activity", "--catalogue", str(catalogue), "--frames", str(frames)]
    argv += ["--reference", str(reference), "--out", str(out), *sets, *SETS]
    assert main([*argv, "--set=activity.efficiency_frames=4"]) == 0
    assert "carried to this sample (layer, 2 um) from the reference's (layer, 0.05 um)" in (
        capsys.readouterr().out
    )
    result = json.loads(out.read_text())
    reference_efficiency = json.loads(reference.read_text())["efficiency"]
    assert result["efficiency"] < reference_efficiency  # a thicker layer absorbs its betas
    low, high = result["interval_bq"]
    assert low <= true_bq <= high, (low, true_bq, high)
