"""Training: the loss falls, a killed run resumes to the same weights, DDP ranks agree, and the
MLflow run holds what a colleague needs to compare and reproduce it."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import yaml

from pipeline.commands import folder_files
from pipeline.config import config_to_dict
from pipeline.learning.train import train
from pipeline.network.model import load_checkpoint

TRAIN_FILES = folder_files("train")


def test_loss_falls_and_mlflow_run_holds_the_record(tiny, tiny_train, tmp_path):
    config = tiny.model_copy(
        update={
            "train": tiny.train.model_copy(
                update={"epochs": 4, "steps_per_epoch": 8, "patience": 10}
            )
        }
    )
    result = train(config, **tiny_train, progress=False)
    losses = [h["train_loss"] for h in result.state.history]
    assert len(losses) == 4 and losses[-1] < 0.8 * losses[0]
    out = result.out
    assert set(TRAIN_FILES) <= {p.name for p in out.iterdir()}  # what pipeline.paths guards
    mlflow.set_tracking_uri(config.tracking.uri)
    run = mlflow.get_run(result.state.run_id)
    assert run.data.params["train.seed"] == str(config.train.seed)
    assert run.data.params["model.encoder"] == "resnet18"
    assert {"macro_iou", "iou_tritium", "train_loss", "tiles_per_s"} <= set(run.data.metrics)
    assert len(run.data.tags["git_commit"].removesuffix("-dirty")) == 40
    assert len(run.data.tags["data_hash"]) == 64 and run.data.tags["seed"] == "1"
    artifacts = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=tmp_path / "a")
    names = {
        p.relative_to(artifacts).as_posix()
        for p in __import__("pathlib").Path(artifacts).rglob("*")
        if p.is_file()
    }
    assert {"model_card.json", "checkpoint/best.pt", "plots/training_curves.png"} <= names
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in history] == [0, 1, 2, 3]
    datasets = {(d.dataset.name, d.tags[0].value) for d in run.inputs.dataset_inputs}
    named = {
        (p.name, use)
        for use, paths in (
            ("training", tiny_train["frames"]),
            ("validation", tiny_train["val_frames"]),
        )
        for p in map(Path, paths)
    }
    assert datasets == named  # each file as an MLflow dataset, with its use


def _weights(path):
    return load_checkpoint(path)["state_dict"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _checkpoints_written(last, proc, count: int) -> None:
    """Wait until `last` has been written `count` times. Each write is an atomic rename, so
    each one is a new inode."""
    seen, inode, deadline = 0, None, time.monotonic() + 120
    while seen < count and time.monotonic() < deadline and proc.poll() is None:
        current = last.stat().st_ino if last.exists() else None
        if current is not None and current != inode:
            inode, seen = current, seen + 1
        else:
            time.sleep(0.005)


# kill points: right after the n-th checkpoint, or a seeded random delay after a seeded random
# checkpoint (mid-epoch); the last case is killed twice
_rng = np.random.default_rng(7)
KILLS = {
    "first checkpoint": [(1, 0.0)],
    "third checkpoint": [(3, 0.0)],
    "random points, twice": [
        (int(_rng.integers(1, 3)), float(_rng.uniform(0.05, 0.5))) for _ in range(2)
    ],
}


KILLED = {"train.epochs": 4, "train.steps_per_epoch": 4, "tracking.enabled": False}


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, tiny_files):
    """The weights of the training the killed ones must reproduce, run once without a kill."""
    from tests.conftest import tiny_config, training_files

    folder = tmp_path_factory.mktemp("straight")
    config = tiny_config(folder, **KILLED)
    train(config, **training_files(tiny_files, folder / "model"), progress=False)
    return _weights(folder / "model" / "last.pt")


# kills the default suite skips (`-m slow` runs them): it stays under 5 minutes
SLOW_KILLS = {"first checkpoint", "third checkpoint", "random points, twice"}


@pytest.mark.parametrize(
    "kills",
    [
        pytest.param(kills, id=name, marks=[pytest.mark.slow] if name in SLOW_KILLS else [])
        for name, kills in KILLS.items()
    ],
)
def test_killed_training_resumes_to_the_same_weights(
    tiny, tiny_train, tmp_path, kills, straight_run
):
    overrides = KILLED
    killed_cfg = config_to_dict(tiny)
    for key, value in overrides.items():
        section, name = key.split(".")
        killed_cfg[section][name] = value
    cfg_path = tmp_path / "killed.yaml"
    cfg_path.write_text(yaml.safe_dump(killed_cfg))
    command = [sys.executable, "-m", "pipeline", "train", "--config", str(cfg_path)]
    command += ["--frames", *tiny_train["frames"], "--val-frames", *tiny_train["val_frames"]]
    command += ["--out", str(tmp_path / "killed")]
    last = tmp_path / "killed" / "last.pt"
    for attempt, (checkpoints, delay_s) in enumerate(kills):
        resume = ["--resume"] if attempt else []
        proc = subprocess.Popen(
            [*command, *resume], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _checkpoints_written(last, proc, checkpoints)  # a resumed run counts its start file
        time.sleep(delay_s)
        if attempt == 0:  # a fresh run of 4 epochs is alive after its 1st or 3rd checkpoint
            assert proc.poll() is None, "the training ended before its kill point"
        if proc.poll() is None:  # a resumed one may have reached the end
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    done = subprocess.run([*command, "--resume"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    a, b = straight_run, _weights(last)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _ddp_worker(rank: int, world: int, port: int, config, paths: dict, out_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    result = train(config, **paths, progress=False)
    torch.save(result.model.state_dict(), f"{out_dir}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_process_gloo_ddp_ends_with_identical_weights(tiny, tiny_train, tmp_path):
    config = tiny.model_copy(
        update={
            "train": tiny.train.model_copy(
                update={"epochs": 2, "steps_per_epoch": 2, "device": "cpu"}
            ),
            "tracking": tiny.tracking.model_copy(update={"enabled": False}),
        }
    )
    args = (2, _free_port(), config, tiny_train, str(tmp_path))
    mp.spawn(_ddp_worker, args=args, nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    assert (tmp_path / "model" / "best.pt").is_file()  # only rank 0 writes


def test_an_empty_validation_set_scores_none_never_perfect(tiny, tiny_train, tmp_path):
    """No validation frames and no share held out: no score exists, so the card says null (not
    the macro IoU 1.0 and loss 0.0 of an empty sum), MLflow gets no score, and the model kept is
    the last epoch's."""
    config = tiny.model_copy(
        update={
            "train": tiny.train.model_copy(update={"epochs": 2, "steps_per_epoch": 2}),
            "tiles": tiny.tiles.model_copy(update={"val_fraction": 0.0}),
        }
    )
    result = train(config, **{**tiny_train, "val_frames": []}, progress=False)
    card = json.loads((result.out / "model_card.json").read_text())
    assert card["metrics"]["macro_iou"] is None and card["metrics"]["val_loss"] is None
    assert all(v is None for k, v in card["metrics"].items() if k.startswith("iou_"))
    assert result.state.best_epoch == 1
    torch.testing.assert_close(_weights(result.out / "best.pt"), _weights(result.out / "last.pt"))
    mlflow.set_tracking_uri(config.tracking.uri)
    metrics = mlflow.get_run(result.state.run_id).data.metrics
    assert "train_loss" in metrics and "macro_iou" not in metrics and "val_loss" not in metrics


def _parameters(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _with_train(config, **update):
    return config.model_copy(update={"train": config.train.model_copy(update=update)})


def test_training_starts_from_the_init_checkpoint(tiny, tiny_train, tmp_path):
    """train.init loads the checkpoint's weights before the first step: with a vanishing
    learning rate the fine-tuned parameters are the checkpoint's, far from a fresh start."""
    first = train(_with_train(tiny, epochs=1, steps_per_epoch=2), **tiny_train, progress=False)
    start = tmp_path / "start.pt"
    os.replace(first.out / "best.pt", start)
    still = {"epochs": 1, "steps_per_epoch": 1, "lr": 1e-12, "seed": 2}
    tuned_config = _with_train(tiny, init=str(start), **still)
    tuned = train(tuned_config, **{**tiny_train, "out": tmp_path / "tuned"}, progress=False)
    fresh = train(
        _with_train(tiny, **still), **{**tiny_train, "out": tmp_path / "fresh"}, progress=False
    )
    loaded = _weights(start)
    for name, value in _parameters(tuned.model).items():
        torch.testing.assert_close(value, loaded[name], atol=1e-8, rtol=0)
    moved = max(float((v - loaded[n]).abs().max()) for n, v in _parameters(fresh.model).items())
    assert moved > 0.01
    card = json.loads((tuned.out / "model_card.json").read_text())
    assert card["initialised_from"] == str(start)


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"model.decoder_channels": [8, 8]}, r"model\.decoder_channels is \[16, 8\] in the checkp"),
        ({"normalise.divisor": 3.0}, r"normalise\.divisor is 4\.0 in the checkpoint and 3\.0"),
        (
            {
                "classes": ["background", "tritium"],
                "train.class_weights": {"background": 1, "tritium": 1},
                "tiles.rare_classes": [],
            },
            "may only add new ones after them",
        ),
    ],
)
def test_an_init_checkpoint_of_another_network_is_refused(
    tiny, tiny_train, tmp_path, change, pattern
):
    from pipeline.config import load_config
    from pipeline.network.model import CheckpointError, build_model, model_card, save_checkpoint
    from tests.conftest import TINY

    start = tmp_path / "start.pt"
    save_checkpoint(start, build_model(tiny.model, len(tiny.classes)), model_card(tiny, "h", {}))
    other = load_config(overrides={**TINY, **change, "train.init": str(start)})
    other = other.model_copy(
        update={"train": other.train.model_copy(update={"epochs": 1, "steps_per_epoch": 1})}
    )
    other = other.model_copy(update={"tracking": tiny.tracking})
    with pytest.raises(CheckpointError, match=pattern) as info:
        train(other, **{**tiny_train, "out": tmp_path / "out"}, progress=False)
    assert str(info.value).startswith(str(start)) and "\n" not in str(info.value)
    assert not (tmp_path / "out" / "best.pt").exists()


def test_a_resumed_run_takes_more_epochs_and_refuses_another_network(tiny, tiny_train, tmp_path):
    """--resume continues with the settings given where that is well defined: a run of 1 epoch
    resumed with 2 runs its second epoch on a one-cycle schedule stretched over both (the saved
    schedule would stop at its old total); another architecture is refused in one line."""
    from pipeline.network.model import CheckpointError

    first = _with_train(tiny, epochs=1, steps_per_epoch=2, patience=10)
    train(first, **tiny_train, progress=False)
    longer = _with_train(tiny, epochs=2, steps_per_epoch=2, patience=10, resume=True)
    result = train(longer, **tiny_train, progress=False)
    assert [h["epoch"] for h in result.state.history] == [0, 1]
    scheduler = load_checkpoint(result.out / "last.pt")["training"]["scheduler"]
    assert scheduler["total_steps"] == 4 and scheduler["last_epoch"] == 4
    other = longer.model_copy(
        update={"model": longer.model.model_copy(update={"decoder_channels": [8, 8]})}
    )
    before = (result.out / "last.pt").read_bytes()
    with pytest.raises(CheckpointError, match=r"last\.pt: model\.decoder_channels is") as info:
        train(_with_train(other, epochs=3), **tiny_train, progress=False)
    assert "\n" not in str(info.value)
    assert (result.out / "last.pt").read_bytes() == before


def test_a_second_run_on_the_same_folder_is_refused_while_the_first_writes(
    tiny, tiny_train, tmp_path
):
    """Two runs on one --out would both report success over one folder's checkpoints."""
    from pipeline.config import ConfigError
    from pipeline.core.lock import exclusive
    from pipeline.learning.train import LOCK

    out = tiny_train["out"]
    with exclusive(out, LOCK, "a run"):  # the first run, in this process
        held = subprocess.run(
            [sys.executable, "-c", _SECOND_RUN.format(out=str(out), lock=LOCK)],
            capture_output=True,
            text=True,
            check=False,
        )
    assert held.returncode == 3, held.stderr
    assert f"process {os.getpid()}" in held.stdout and str(out) in held.stdout
    with exclusive(out, LOCK, "a run"):  # released when the holder's block ends
        pass
    with (  # another handle, in the same process
        pytest.raises(ConfigError, match="being written by"),
        exclusive(out, LOCK, "a run"),
        exclusive(out, LOCK, "a run"),
    ):
        pass


_SECOND_RUN = """
import sys
from pathlib import Path
from pipeline.config import ConfigError
from pipeline.core.lock import exclusive
try:
    with exclusive(Path({out!r}), {lock!r}, "this training run's folder"):
        sys.exit(0)
except ConfigError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_diverging_run_stops_in_one_line_and_keeps_the_last_epochs_checkpoint(
    tiny, tiny_train, monkeypatch
):
    """A loss that turns NaN (a learning rate too high) ends the run with one line, before the
    weights take the NaN; the previous epoch's last.pt stays loadable."""
    from pipeline.core.errors import TrainingDiverged
    from pipeline.learning import train as training

    first = _with_train(tiny, epochs=1, steps_per_epoch=2, patience=10)
    train(first, **tiny_train, progress=False)
    before = (tiny_train["out"] / "last.pt").read_bytes()
    real_forward = training.SegmentationLoss.forward
    monkeypatch.setattr(
        training.SegmentationLoss, "forward", lambda self, x, y: real_forward(self, x, y) * np.nan
    )
    more = _with_train(tiny, epochs=2, steps_per_epoch=2, patience=10, resume=True)
    with pytest.raises(TrainingDiverged, match=r"training loss is nan at epoch 1, step 1") as info:
        train(more, **tiny_train, progress=False)
    assert "\n" not in str(info.value) and "lower train.lr" in str(info.value)
    assert (tiny_train["out"] / "last.pt").read_bytes() == before
