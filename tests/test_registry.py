"""The MLflow model registry: a trained model is an MLflow model an analyst can load, registered
by its checkpoint's hash; inference and evaluation runs lead back to it; the suite moves the
`best` alias; a shipped model is registered once with the `shipped` alias."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.commands import settings_of
from pipeline.core.hashing import file_sha256
from pipeline.evaluation import evaluate, suite
from pipeline.inference import infer
from pipeline.io import open_frames
from pipeline.io.digest import frames_sha256
from pipeline.learning.export import export_model
from pipeline.learning.train import train
from pipeline.network.model import load_model
from pipeline.tracking import registry
from pipeline.tracking.runs import store_lock
from tests.conftest import tiny_config, training_files

pytestmark = pytest.mark.xdist_group("registry")  # one worker trains the module's model once


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_files):
    """A tiny training run with tracking (its config, result and MLflow client)."""
    tmp_path = tmp_path_factory.mktemp("registry")
    overrides = {"infer.window": 64, "tracking.log_models": True}
    tiny = tiny_config(tmp_path, **overrides, **{"tracking.register_shipped": True})
    result = train(tiny, **training_files(tiny_files, tmp_path / "model"), progress=False)
    tiny = tiny.model_copy(
        update={"infer": tiny.infer.model_copy(update={"model": str(result.out / "best.pt")})}
    )
    return tiny, result, mlflow.MlflowClient(tracking_uri=tiny.tracking.uri)


def _infer(config, frames, out):
    settings = settings_of(config, "infer")
    infer.run(settings, frames, out / "map.h5", out / "clusters.parquet")
    return out / "map.h5"


def test_the_trained_model_is_registered_and_loads_as_an_mlflow_model(trained):
    tiny, result, client = trained
    name = tiny.tracking.registered_model
    (version,) = client.search_model_versions(f"name='{name}'")
    assert version.tags["sha256"] == file_sha256(result.out / "best.pt")
    assert version.run_id == result.state.run_id
    assert client.get_run(result.state.run_id).data.tags["model_version"] == str(version.version)
    logged = mlflow.pytorch.load_model(f"models:/{name}/{version.version}")
    original, card = load_model(result.out / "best.pt")
    x = torch.randn(3, 2, 64, 96)  # batch and frame size other than the traced example's
    with torch.no_grad():
        np.testing.assert_allclose(logged(x).numpy(), original.eval()(x).numpy(), atol=1e-5)
    info = mlflow.models.get_model_info(f"models:/{name}/{version.version}")
    assert info.metadata["card"]["classes"] == card["classes"]
    assert info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 2, -1, -1)
    assert info.signature.outputs.to_dict()[0]["tensor-spec"]["shape"] == (
        -1,
        len(tiny.classes),
        -1,
        -1,
    )


def test_inference_and_evaluation_runs_lead_back_to_the_model(trained, tiny_files, tmp_path):
    tiny, result, client = trained
    version = registry.version_of(tiny.tracking, file_sha256(result.out / "best.pt"))
    map_path = _infer(tiny, tiny_files["val"], tmp_path)
    links = registry.map_links(tiny.tracking, map_path)
    run = client.get_run(links["infer_run_id"])
    assert run.data.tags["stage"] == "infer" and run.data.tags["input"] == str(tiny_files["val"])
    assert links["model_version"] == str(version.version)
    assert links["model_run_id"] == result.state.run_id
    assert run.data.metrics["frames"] == 2 and "tritium_per_frame" in run.data.metrics
    (dataset,) = run.inputs.dataset_inputs  # the frames mapped, as an MLflow dataset
    assert dataset.dataset.name == tiny_files["val"].name
    assert dataset.dataset.digest == run.data.tags["data_hash"][:16]
    written = pd.read_parquet(tmp_path / "clusters.parquet")["class_name"]  # not read back
    expected = (written == "tritium").sum() / 2
    assert run.data.metrics["tritium_per_frame"] == pytest.approx(expected)
    out = tmp_path / "evaluation"
    evaluate.run(settings_of(tiny, "evaluate"), tiny_files["val"], [map_path], out, ["unet"])
    summary = json.loads((out / "summary.json").read_text())
    made_from = summary["unet"]["made_from"]  # from the map itself, not the MLflow store
    assert made_from["model_sha256"] == file_sha256(result.out / "best.pt")
    with open_frames(tiny_files["val"], tiny.io) as ff:
        assert made_from["frames_sha256"] == frames_sha256(ff)
    (evaluation,) = client.search_runs(
        [run.info.experiment_id], "tags.stage = 'evaluate'", max_results=5
    )
    assert evaluation.data.tags["unet.model_version"] == str(version.version)
    assert evaluation.data.tags["unet.infer_run_id"] == links["infer_run_id"]
    (truth,) = evaluation.inputs.dataset_inputs
    assert truth.dataset.name == tiny_files["val"].name and truth.tags[0].value == "evaluation"


def test_the_suite_points_best_at_the_highest_scoring_version(trained, tmp_path):
    tiny = trained[0]
    name = tiny.tracking.registered_model

    def summary(detector: str, f1: dict[str, float]) -> str:
        path = tmp_path / detector / "summary.json"
        path.parent.mkdir()
        path.write_text(
            json.dumps(
                {
                    method: {
                        "macro_cluster_f1": score,
                        "macro_pixel_iou": score,
                        "per_class": {},
                        "made_from": {"model_sha256": method},
                    }
                    for method, score in f1.items()
                }
            )
        )
        return str(path)

    scores = {"a": {"1": 0.5, "2": 0.7}, "b": {"1": 0.8, "2": 0.7}}  # means 0.65 and 0.70
    summaries = suite.read_summaries([summary(d, s) for d, s in scores.items()], list(scores))
    assert suite.model_scores(summaries) == pytest.approx({"1": 0.65, "2": 0.70})
    version_two = _second_version(tiny)
    assert registry.mark_best(tiny.tracking, {"1": 0.65, version_two: 0.70}, "a,b") == "2"
    client = mlflow.MlflowClient(tracking_uri=tiny.tracking.uri)
    assert str(client.get_model_version_by_alias(name, registry.BEST).version) == "2"
    registry.mark_best(tiny.tracking, {"1": 0.9}, "a,b")
    assert str(client.get_model_version_by_alias(name, registry.BEST).version) == "1"


def _second_version(config) -> str:
    """Another registered version of the tiny model (as a second training run would add)."""
    model, card = load_model(config.infer.model)
    mlflow.set_tracking_uri(config.tracking.uri)
    mlflow.set_experiment(config.tracking.experiment)
    with mlflow.start_run():
        return registry.log_model(config.tracking, model, card, "another-checkpoint")


def test_a_shipped_model_is_registered_once_with_the_shipped_alias(trained, tiny_files, tmp_path):
    tiny, result, client = trained
    release = tiny.release.model_copy(update={"dir": str(tmp_path / "models"), "name": "tiny-v1"})
    shipped = export_model(
        tiny.model_copy(update={"release": release}), result.out, _train_config(tiny, tmp_path)
    )
    name = tiny.tracking.registered_model
    alias = client.get_model_version_by_alias(name, registry.SHIPPED)
    assert alias.tags["sha256"] == file_sha256(shipped)
    assert alias.tags["shipped_model"] == "tiny-v1"
    before = len(client.search_model_versions(f"name='{name}'"))
    used = tiny.model_copy(update={"infer": tiny.infer.model_copy(update={"model": str(shipped)})})
    for attempt in ("first", "second"):
        links = registry.map_links(
            tiny.tracking, _infer(used, tiny_files["val"], _fresh(tmp_path / attempt))
        )
        assert links["model_version"] == str(alias.version)
    assert len(client.search_model_versions(f"name='{name}'")) == before


def _train_config(config, tmp_path):
    import yaml

    from pipeline.config import config_to_dict

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(config)))
    return path


def _fresh(folder):
    folder.mkdir()
    return folder


def test_without_tracking_inference_writes_no_store(tiny_files, tmp_path, trained):
    config = trained[0]
    off = config.model_copy(
        update={
            "tracking": config.tracking.model_copy(
                update={"enabled": False, "uri": f"sqlite:///{tmp_path / 'off.db'}"}
            )
        }
    )
    _infer(off, tiny_files["val"], tmp_path)
    assert (tmp_path / "map.h5").is_file() and not (tmp_path / "off.db").exists()


def test_the_store_lock_is_reentrant(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    with store_lock(uri), store_lock(uri):  # a second take in the same process must not block
        assert (tmp_path / "m.db.lock").exists()


def test_the_store_lock_makes_another_process_wait(tmp_path):
    import subprocess
    import sys
    import time

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    waiter = (
        "import time; from pipeline.tracking.runs import store_lock\n"
        "print('ready', flush=True)\n"
        f"with store_lock({uri!r}): print(time.time())"
    )
    with store_lock(uri):
        child = subprocess.Popen([sys.executable, "-c", waiter], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"  # imported, about to take the lock
        time.sleep(0.5)
        released = time.time()
    acquired = float(child.communicate(timeout=60)[0])
    assert acquired >= released


def test_a_command_on_ones_own_file_registers_nothing_unless_asked(trained, tiny_files, tmp_path):
    """`tracking.register_shipped: false` (the default): a run records the shipped model's file
    and SHA-256, and the store gets no model version and no copy of its weights."""
    tiny, result, _ = trained
    off = tiny.tracking.model_copy(update={"enabled": False})
    release = tiny.release.model_copy(update={"dir": str(tmp_path / "models"), "name": "tiny-v9"})
    quiet_export = tiny.model_copy(update={"release": release, "tracking": off})
    shipped = export_model(quiet_export, result.out, _train_config(tiny, tmp_path))
    folder = _fresh(tmp_path / "own")
    store = tiny.tracking.model_copy(
        update={"uri": f"sqlite:///{folder / 'mlruns.db'}", "register_shipped": False}
    )
    used = tiny.model_copy(
        update={"tracking": store, "infer": tiny.infer.model_copy(update={"model": str(shipped)})}
    )
    map_path = _infer(used, tiny_files["val"], folder)
    client = mlflow.MlflowClient(tracking_uri=store.uri)
    assert client.search_model_versions(f"name='{store.registered_model}'") == []
    assert not (folder / "mlartifacts").exists() or not any((folder / "mlartifacts").rglob("*.pt"))
    run = client.get_run(registry.map_links(store, map_path)["infer_run_id"])
    assert run.data.tags["model_sha256"] == file_sha256(shipped)


def test_runs_read_as_what_they_did_and_models_say_what_they_are(trained, tiny_files, tmp_path):
    """Runs are named by stage and file; the experiment opens as model development (not the
    GenAI view); the registered model and each version carry descriptions."""
    tiny, result, client = trained
    map_path = _infer(tiny, tiny_files["val"], _fresh(tmp_path / "named"))
    run = client.get_run(registry.map_links(tiny.tracking, map_path)["infer_run_id"])
    assert run.info.run_name == f"infer {tiny_files['val'].name}"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    name = tiny.tracking.registered_model
    assert "each pixel of a CCD frame its class" in client.get_registered_model(name).description
    version = registry.version_of(tiny.tracking, file_sha256(result.out / "best.pt"))
    assert "classes background, muon" in client.get_model_version(name, version.version).description
