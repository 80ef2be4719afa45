"""Running the Snakemake workflow in a scratch copy of the repository (shared by the workflow,
report and notebook tests)."""

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRATCH = (
    ".git",
    ".snakemake",
    "data",
    "results",
    "logs",
    "benchmarks",
    "__pycache__",
    "mlruns.db",
    "mlartifacts",
    "report.html",
    "*.egg-info",
)
SMALL = (
    "detector: {height: 64, width: 64}\n"
    "simulate: {datasets: {train: {frames: 2, seed: 1}, heldout: {frames: 1, seed: 2}}}\n"
    "tiles: {size: 64}\n"
    "model: {depth: 2, decoder_channels: [16, 8]}\n"
    "train: {epochs: 1, steps_per_epoch: 2, batch_size: 2, val_tiles: 2, threads: 1}\n"
    # a model trained for 2 steps finds no tritium to measure an efficiency with
    "activity: {efficiency: 0.3}\n"
)


def copy_repo(work: Path) -> Path:
    if not work.exists():
        shutil.copytree(REPO, work, ignore=shutil.ignore_patterns(*SCRATCH))
    return work


def snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["snakemake", "--cores", "2", *args],
        cwd=copy_repo(work),
        capture_output=True,
        text=True,
        check=False,
    )
