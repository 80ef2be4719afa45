"""SIGKILL in the middle of simulation, inference and evaluation leaves no output that a rerun (of
the command, or of the workflow) would take for complete: outputs appear only by an atomic rename
once everything succeeded. The rerun then completes normally. (Training: tests/test_train.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
import torch

from pipeline.network.model import build_model, model_card, save_checkpoint
from pipeline.simulation.simulate import simulate_file

FRAMES = 12


def run_until(command: list[str], ready, timeout: float = 120, signum=signal.SIGKILL) -> int:
    """Start `command`, send it `signum` as soon as `ready()` holds (it must not have finished);
    its exit status."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "finished before it could be killed: give it more work"
    os.kill(proc.pid, signum)
    return proc.wait(timeout=timeout)


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".") and ".tmp-" in p.name]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from pipeline.config import load_config
    from tests.conftest import TINY

    folder = tmp_path_factory.mktemp("kill")
    config = load_config(overrides=TINY)
    frames = simulate_file(config, folder / "frames.h5", FRAMES, seed=4, progress=False)[0]
    torch.manual_seed(0)
    model = folder / "model.pt"
    save_checkpoint(
        model, build_model(config.model, len(config.classes)), model_card(config, "h", {})
    )
    return frames, model


def started_writing(folder: Path):
    return lambda: bool(temporaries(folder))


def writer_command(stage: str, inputs, out: Path) -> list[str]:
    frames, model = inputs
    target = out / "result.h5"
    command = {
        "simulate": [
            "simulate",
            "--out",
            str(target),
            "--frames",
            str(FRAMES),
            "--height",
            "96",
            "--width",
            "80",
        ],
        "infer": [
            "infer",
            "--model",
            str(model),
            "--input",
            str(frames),
            "--output",
            str(target),
            "--catalogue",
            str(out / "c.parquet"),
        ],
        "classical": ["classical", "--input", str(frames), "--output", str(target)],
    }[stage]
    return [sys.executable, "-m", "pipeline", *command]


@pytest.mark.parametrize(
    "stage",
    # infer's writer is the classical one's (results/maps.py); its kill costs two torch starts
    ["simulate", pytest.param("infer", marks=pytest.mark.slow), "classical"],
)
def test_killed_writer_leaves_no_output_and_reruns(tmp_path, inputs, stage):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "result.h5"
    command = writer_command(stage, inputs, out)
    run_until(command, started_writing(out))
    assert not target.exists() and not (out / "c.parquet").exists()
    leftovers = temporaries(out)  # a killed process cannot clean up: its temporary stays
    assert leftovers and all(p.name.startswith(".result.h5.tmp-") for p in leftovers)
    subprocess.run(command, check=True, capture_output=True)
    with h5py.File(target) as f:
        name = "frames" if stage == "simulate" else "labels"
        assert f[name].shape[0] == FRAMES
    assert temporaries(out) == []  # the rerun removed the dead process's temporary


@pytest.mark.parametrize("stage", ["simulate", "infer"])
def test_sigterm_leaves_no_output_and_no_temporary(tmp_path, inputs, stage):
    """What SLURM (scancel, time limit) and Snakemake send: the process cleans up and exits
    128 + 15. (SIGINT, the same handler: tests/test_atomic.py.)"""
    signum = signal.SIGTERM
    out = tmp_path / "out"
    out.mkdir()
    status = run_until(writer_command(stage, inputs, out), started_writing(out), signum=signum)
    assert status == 128 + signum
    assert list(out.iterdir()) == []


def test_killed_evaluation_leaves_no_summary(tmp_path, inputs):
    frames, _ = inputs
    maps = tmp_path / "map.h5"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "classical",
            "--input",
            str(frames),
            "--output",
            str(maps),
        ],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "eval"
    command = [
        sys.executable,
        "-m",
        "pipeline",
        "evaluate",
        "--truth",
        str(frames),
        "--pred",
        str(maps),
        "--out",
        str(out),
        "--set",
        "tracking.enabled=false",
    ]
    run_until(command, lambda: any(p.name.startswith(".eval.tmp-") for p in tmp_path.iterdir()))
    assert not (out / "summary.json").exists()  # killed while writing its plots
    subprocess.run(command, check=True, capture_output=True)
    assert (out / "summary.json").is_file()
