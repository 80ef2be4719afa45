"""The analysts' notebooks run top to bottom on the outputs of the workflow (tiny settings), with
their paths set in the one parameter cell, as papermill would."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
pytestmark = pytest.mark.xdist_group("workflow")  # one run of the tiny workflow serves them all


def execute(name: str, parameters: dict) -> list[str]:
    """Run a notebook with `parameters` appended to its parameter cell; the text it printed."""
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: one cell tagged 'parameters'"
    tagged[0].source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    nbclient.NotebookClient(book, timeout=300, kernel_name="python3").execute()
    return [
        str(out.get("text") or out.get("data", {}).get("text/plain", ""))
        for cell in book.cells
        for out in cell.get("outputs", [])
    ]


def test_frames_notebook(workflow_run):
    work, small = workflow_run
    for dataset in ("heldout", "train"):  # by name, in the folder the workflow ran in
        text = "\n".join(
            execute(
                "01_frames.ipynb",
                {"workdir": str(work), "dataset": dataset, "config_path": str(small)},
            )
        )
        assert f"showing {work / 'data' / 'sim' / dataset}.h5, frame 0" in text
        assert "gain" in text and "noise" in text and "background" in text


def test_maps_notebook(workflow_run):
    work, small = workflow_run
    text = "\n".join(
        execute(
            "02_maps.ipynb",
            {"workdir": str(work), "dataset": "heldout", "config_path": str(small)},
        )
    )
    assert f"fine-tuned U-Net map {work / 'results' / 'maps' / 'heldout.unet.h5'}" in text
    assert "1 frames of 64 x 64" in text


def test_compare_runs_notebook(workflow_run):
    work, _ = workflow_run
    text = "\n".join(
        execute(
            "03_compare_runs.ipynb",
            {
                "tracking_uri": f"sqlite:///{work / 'mlruns.db'}",
                "experiment": "ccd-decay-unet",
                "evaluation_of": "heldout",
            },
        )
    )
    # the training run, the held-out and the one suite detector's evaluations, the
    # inference on the held-out, the suite detector's and the user's file, and the activity
    # of the held-out (from the U-Net's and the classical catalogue) and of the user's file
    assert "9 runs in experiment" in text
    assert "runs by stage: activity 3, evaluate 2, infer 3, train 1" in text
    # the suite scored the trained model's only version: it is the best one
    assert "ccd-decay-unet version 1: aliases: best; suite macro cluster F1 0." in text
    assert "evaluation of data/sim/heldout.h5 (run " in text, text[-3000:]  # what it shows
