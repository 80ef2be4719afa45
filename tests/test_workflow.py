"""The Snakemake workflow: the default config dry-runs, the schema guards it, it runs end to
end on tiny settings, and editing a key reruns exactly the stages that read it."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")


def snakemake(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    work = tmp_path / "wf"
    if not work.exists():
        shutil.copytree(
            REPO,
            work,
            ignore=shutil.ignore_patterns(
                ".git", ".snakemake", "data", "results", "logs", "benchmarks", "__pycache__"
            ),
        )
    return subprocess.run(
        ["snakemake", "--cores", "2", *args],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )


def test_default_config_dry_run_plans_the_simulations(tmp_path):
    result = snakemake(tmp_path, "-n")
    assert result.returncode == 0, result.stderr
    assert "data/sim/train.h5" in result.stdout and "data/sim/heldout.h5" in result.stdout


def test_unknown_config_key_is_refused_before_anything_runs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("detector:\n  hieght: 5\n")
    result = snakemake(tmp_path, "-n", "--configfile", str(bad))
    assert result.returncode != 0
    assert "hieght" in result.stdout + result.stderr


def test_workflow_runs_and_reruns_only_on_relevant_change(tmp_path):
    small = tmp_path / "small.yaml"
    small.write_text(
        "detector: {height: 64, width: 64}\n"
        "simulate: {datasets: {train: {frames: 2, seed: 1}, heldout: {frames: 1, seed: 2}}}\n"
        "tiles: {size: 64}\n"
        "model: {depth: 2, decoder_channels: [16, 8]}\n"
        "train: {epochs: 1, steps_per_epoch: 2, batch_size: 2, val_tiles: 2, threads: 1}\n"
        # a model trained for 2 steps finds no tritium to measure an efficiency with
        "activity: {efficiency: 0.3}\n"
    )
    first = snakemake(tmp_path, "--configfile", str(small))
    assert first.returncode == 0, first.stderr
    work = tmp_path / "wf"
    assert (work / "data/sim/train.h5").is_file() and (work / "logs/simulate/train.log").is_file()
    assert (work / "results/model/best.pt").is_file() and (work / "mlruns.db").is_file()
    assert (work / "benchmarks/train.tsv").is_file()
    again = snakemake(tmp_path, "-n", "--configfile", str(small))
    assert "Nothing to be done" in again.stdout + again.stderr
    small.write_text(small.read_text() + "physics: {fano_factor: 0.12}\n")
    changed = snakemake(tmp_path, "-n", "--configfile", str(small))
    assert "simulate" in changed.stdout and "Nothing to be done" not in changed.stdout
    small.write_text(
        small.read_text().replace("physics: {fano_factor: 0.12}\n", "")
        + "train: {epochs: 2, steps_per_epoch: 2, batch_size: 2, val_tiles: 2}\n"
    )
    retrain = snakemake(tmp_path, "-n", "--configfile", str(small))
    assert "rule train" in retrain.stdout and "rule simulate" not in retrain.stdout
