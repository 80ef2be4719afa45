"""Running the Snakemake workflow in a scratch copy of the repository (shared by the workflow,
report and notebook tests)."""

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# what the workflow needs: never the whole checkout (it may hold a virtual environment)
WORKFLOW = (
    "Snakefile",
    "rules",
    "configs",
    "report",
    "profiles",
    "pipeline",
    "models",
    "environment.yml",
    "envs",
)
SMALL = (
    "detector: {height: 64, width: 64}\n"
    "simulate: {datasets: {train: {frames: 2, seed: 1}, heldout: {frames: 1, seed: 2},"
    " suite_noisy: {frames: 2, seed: 102, overrides: {detector.readout_noise_e: 4.0}}}}\n"
    "ceiling: {frames: 4}\n"
    "tiles: {size: 64}\n"
    "model: {depth: 2, decoder_channels: [16, 8]}\n"
    "train: {epochs: 1, steps_per_epoch: 2, batch_size: 2, val_tiles: 2, threads: 1, init: null,"
    " prior_tiles: 8}\n"
    # a model trained for 2 steps finds no tritium to measure an efficiency with; the user's
    # ROOT file states no exposure (the ROOT frame format has no attrs), so the config gives it
    "activity: {efficiency: 0.3, exposure_s: 600.0}\n"
)


def copy_repo(work: Path) -> Path:
    if not work.exists():
        work.mkdir(parents=True)
        for name in WORKFLOW:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, work / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, work / name)
    return work


def snakemake(work: Path, *args: str, cores: str | None = "2") -> subprocess.CompletedProcess:
    """Run snakemake in a scratch copy; `cores=None` leaves the core count to the profile."""
    return subprocess.run(
        ["snakemake", *(["--cores", cores] if cores else []), *args],
        cwd=copy_repo(work),
        capture_output=True,
        text=True,
        check=False,
    )
