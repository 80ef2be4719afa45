"""Shared fixtures: tiny simulated frame files and a config that trains on them in seconds."""

import os
import tempfile
from pathlib import Path

import pytest

from pipeline.config import Config, load_config
from pipeline.simulation.simulate import simulate_file

# One thread per test process (and the processes tests start): the suite runs one xdist worker
# per core, and two-thread pools in each would only contend (torch reads this at import).
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

# The ONNX copies the tests export (infer.onnx_cache: null) go to a cache of the test run, never
# to the user's ~/.cache; the processes the tests start inherit it.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="ccd-decay-unet-test-cache-")

TINY = {
    "detector.height": 96,
    "detector.width": 80,  # not a multiple of 32: padded, never rejected
    "sources.tritium.rate_per_frame": 6.0,
    "sources.xray.rate_per_frame": 4.0,
    "sources.muon.rate_per_frame": 1.0,
    "sources.electron.rate_per_frame": 1.0,
    "sources.alpha.rate_per_frame": 0.5,
    "tiles.size": 64,
    "tiles.cache_frames": 8,
    "model.encoder": "resnet18",
    "model.depth": 2,
    "model.decoder_channels": [16, 8],
    "train.epochs": 3,
    "train.steps_per_epoch": 3,
    "train.batch_size": 4,
    "train.val_tiles": 8,
    "train.max_minutes": None,
    "train.threads": 1,
    "train.workers": 0,
    "train.prior_tiles": 8,
    "train.lr": 1.0e-2,
    "train.init": None,  # from scratch: the shipped model is another architecture
    "stream.narrow": 1.0,
    "normalise.condition": [],  # two input channels: the tiny networks are built for them
    "model.in_channels": 2,
    "tracking.log_models": False,  # tests/test_registry.py turns it on
    "stream.artefacts": None,  # particles only: a 12-step network learns little else
}


def tiny_config(tmp_path: Path, **overrides) -> Config:
    return load_config(
        overrides={
            **TINY,
            "tracking.uri": f"sqlite:///{tmp_path / 'mlruns.db'}",
            **overrides,
        }
    )


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory) -> dict[str, Path]:
    """Three training frames and two validation frames (another seed and detector)."""
    folder = tmp_path_factory.mktemp("tiny")
    config = load_config(overrides=TINY)
    train = simulate_file(config, folder / "train.h5", 3, seed=11, progress=False)[0]
    shifted = load_config(
        overrides={**TINY, "detector.gain_adu_per_e": 6.5, "detector.readout_noise_e": 2.5}
    )
    val = simulate_file(shifted, folder / "val.h5", 2, seed=12, progress=False)[0]
    return {"train": train, "val": val}


@pytest.fixture
def tiny(tmp_path, tiny_files) -> Config:
    return tiny_config(tmp_path)


def training_files(tiny_files: dict[str, Path], out: Path) -> dict[str, object]:
    """The path arguments of `train` on the tiny files: frames, validation frames, out."""
    return {
        "frames": [str(tiny_files["train"])],
        "val_frames": [str(tiny_files["val"])],
        "out": out,
    }


@pytest.fixture
def tiny_train(tmp_path, tiny_files) -> dict[str, object]:
    """`train(tiny, **tiny_train)`: the tiny files, checkpoints into tmp_path/model."""
    return training_files(tiny_files, tmp_path / "model")


@pytest.fixture(scope="session")
def workflow_run(tmp_path_factory):
    """The whole workflow, run once on tiny settings, with one of the user's own files (ROOT)
    as an extra input: (work directory, the small config file)."""
    import shutil

    from tests.workflow_helpers import SMALL, snakemake

    if shutil.which("snakemake") is None:
        pytest.skip("snakemake not installed")
    base = tmp_path_factory.mktemp("workflow")
    own = load_config(overrides={"detector.height": 64, "detector.width": 64})
    simulate_file(own, base / "own" / "run7.h5", 1, seed=3, root=True, progress=False)
    small = base / "small.yaml"
    # one detector of the generalisation suite, to run its rules at tiny size
    # (and no previous release scored beside it: tests/test_workflow.py plans that)
    own_files = f"inputs: ['{base}/own/*.root']"
    small.write_text(
        SMALL + f"workflow: {{{own_files}, suite: [suite_noisy], compare_models: []}}\n"
    )
    work = base / "wf"
    result = snakemake(work, "--configfile", str(small))
    assert result.returncode == 0, result.stderr[-3000:]
    return work, small


def pytest_collection_modifyitems(config, items):
    """The tests that share the tiny workflow run (the longest fixture, on one xdist worker)
    go first, so the other workers take the rest meanwhile instead of waiting for it at the
    end."""
    first = [item for item in items if item.get_closest_marker("xdist_group")]
    items[:] = first + [item for item in items if item not in first]


@pytest.fixture(autouse=True)
def _run_in_own_folder(tmp_path_factory, monkeypatch):
    """Each test runs in a folder of its own, apart from its tmp_path (whose files some tests
    list): what a command writes by default where it runs (the MLflow store
    `sqlite:///mlruns.db`) lands there, never in the checkout."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
