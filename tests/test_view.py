"""Seeing a result: `pipeline plot` draws a map over its frame and an activity's spectral fit,
and refuses in one line what it cannot draw."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.simulation.simulate import simulate_file


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    """Two frames, their classical map and catalogue, and a frame file of another shape."""
    folder = tmp_path_factory.mktemp("view")
    config = load_config(overrides={"detector.height": 96, "detector.width": 128})
    frames = simulate_file(config, folder / "f.h5", 2, seed=4, progress=False)[0]
    argv = ["classical", "--input", str(frames), "--output", str(folder / "m.h5")]
    assert main([*argv, "--catalogue", str(folder / "c.parquet")]) == 0
    small = load_config(overrides={"detector.height": 64, "detector.width": 64})
    other = simulate_file(small, folder / "o.h5", 1, seed=5, progress=False)[0]
    return frames, folder / "m.h5", folder / "c.parquet", other


def test_a_map_is_drawn_over_its_frame_with_a_zoom_per_class_found(mapped, tmp_path, capsys):
    frames, map_path, _, _ = mapped
    capsys.readouterr()
    out = tmp_path / "map.png"
    argv = ["plot", "--frames", str(frames), "--map", str(map_path), "--out", str(out)]
    assert main([*argv, "--index", "1"]) == 0
    said = capsys.readouterr().out.splitlines()[0]
    assert said.startswith(f"wrote {out}: frame 1, clusters: muon ")
    found = [int(part.split()[-1]) for part in said.split("clusters: ")[1].split(", ")]
    with Image.open(out) as image:  # the whole frame, then a row of zooms per class found
        width, height = image.size
    assert width > 600 and height > 500 + 200 * sum(n > 0 for n in found)


def test_the_spectral_fit_of_an_activity_is_drawn_from_its_json(mapped, tmp_path, capsys):
    frames, _, catalogue, _ = mapped
    result = tmp_path / "a.json"
    argv = ["activity", "--catalogue", str(catalogue), "--frames", str(frames), "--out"]
    assert main([*argv, str(result), "--set", "activity.efficiency=0.3"]) == 0
    spectrum = json.loads(result.read_text())["spectrum"]
    total = np.sum(list(spectrum["components"].values()), axis=0)
    assert next(iter(spectrum["components"])) == "tritium"
    assert total.sum() == pytest.approx(sum(spectrum["counts"]), rel=0.05)  # the fit holds them
    capsys.readouterr()
    assert main(["plot", "--activity", str(result), "--out", str(tmp_path / "fit.png")]) == 0
    assert f"{int(sum(spectrum['counts']))} clusters" in capsys.readouterr().out
    assert (tmp_path / "fit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_activity_is_tracked_and_its_plot_lands_in_its_run(mapped, tmp_path, capsys):
    """The activity is an MLflow run (its numbers as metrics, the frames as a dataset); the plot
    of its fit is logged into that run, found by the JSON's SHA-256; a map drawn whose maker
    is not in the store is said so, and no store is created for it."""
    import mlflow

    frames, map_path, catalogue, _ = mapped
    store = tmp_path / "runs.db"
    tracking = ["--set", f"tracking.uri=sqlite:///{store}"]
    result = tmp_path / "a.json"
    argv = ["activity", "--catalogue", str(catalogue), "--frames", str(frames), "--out"]
    assert main([*argv, str(result), "--set", "activity.efficiency=0.3", *tracking]) == 0
    assert (
        main(["plot", "--activity", str(result), "--out", str(tmp_path / "f.png"), *tracking]) == 0
    )
    assert "logged into MLflow run 'activity f.h5'" in capsys.readouterr().out
    client = mlflow.MlflowClient(f"sqlite:///{store}")
    (run,) = client.search_runs(client.search_experiments()[0].experiment_id)
    summary = json.loads(result.read_text())
    assert run.data.metrics["activity_bq"] == pytest.approx(summary["activity_bq"], rel=1e-3)
    assert run.data.metrics["detected"] == float(summary["detected"])
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.name == "f.h5" and dataset.tags[0].value == "measurement"
    logged = {
        a.path
        for folder in ("activity", "plots")
        for a in client.list_artifacts(run.info.run_id, folder)
    }
    assert logged == {"activity/a.json", "plots/f.png"}
    other = ["--set", f"tracking.uri=sqlite:///{tmp_path / 'none.db'}"]
    argv = [
        "plot",
        "--frames",
        str(frames),
        "--map",
        str(map_path),
        "--out",
        str(tmp_path / "m.png"),
    ]
    assert main([*argv, *other]) == 0
    assert "no MLflow run in" in capsys.readouterr().out
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(
    "flags, pattern",
    [
        (["--activity", "{frames}"], "not an activity JSON with its spectrum"),
        (["--frames", "{frames}"], "give --frames and --map"),
        (["--frames", "{frames}", "--map", "{map}", "--index", "5"], "--index 5: the file has"),
        (["--frames", "{other}", "--map", "{map}"], "map shape"),
    ],
)
def test_what_cannot_be_drawn_is_one_line(mapped, tmp_path, capsys, flags, pattern):
    frames, map_path, _, other = mapped
    names = {"frames": frames, "map": map_path, "other": other}
    capsys.readouterr()
    out = tmp_path / "out.png"
    argv = ["plot", *(f.format(**names) for f in flags), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert pattern in err and err.count("\n") == 1, err
    assert not out.exists()
