"""Shipped models: a training run exported to half precision without its unused weights gives the
same maps, its card says how it was made, names resolve, and the model shipped in models/ loads
and agrees with the default config."""

import json

import pytest
import torch
import yaml

from pipeline.cli import main
from pipeline.config import REPO_ROOT, config_to_dict, load_config
from pipeline.evaluation.evaluate import evaluate_files
from pipeline.inference.infer import infer_file
from pipeline.learning.export import export_model, unused_parameters
from pipeline.learning.train import train
from pipeline.network.model import CheckpointError, load_checkpoint, load_model
from pipeline.network.shipped import list_models, resolve_model
from tests.conftest import tiny_config, training_files

DEFAULT = load_config()
SHIPPED = REPO_ROOT / DEFAULT.release.dir / f"{DEFAULT.train.init}.pt"


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_files):
    """A tiny training run (once for the module): its config, result, config file and the
    suite's evaluation of its model."""
    tmp_path = tmp_path_factory.mktemp("run")
    tiny = tiny_config(tmp_path)
    result = train(tiny, **training_files(tiny_files, tmp_path / "model"), progress=False)
    config_file = tmp_path / "train.yaml"
    config_file.write_text(yaml.safe_dump(config_to_dict(tiny)))
    maps = tmp_path / "val.unet.h5"
    inferred = tiny.model_copy(
        update={
            "infer": tiny.infer.model_copy(
                update={"model": str(result.out / "best.pt"), "window": 64}
            )
        }
    )
    infer_file(inferred, tiny_files["val"], maps, progress=False)
    suite = tmp_path / "suite"
    evaluate_files(tiny, tiny_files["val"], {"unet": maps}, suite / "tiny_val", progress=False)
    return tiny, result, config_file, suite


def _export(run, folder, name="tiny-v1"):
    tiny, result, config_file, suite = run
    release = tiny.release.model_copy(update={"dir": str(folder), "name": name})
    exported = export_model(
        tiny.model_copy(update={"release": release}), result.out, config_file, suite
    )
    return exported, result


def test_an_exported_model_is_smaller_and_gives_the_same_output(run, tmp_path):
    shipped, result = _export(run, tmp_path / "models")
    original, _ = load_model(result.out / "best.pt")
    exported, card = load_model(shipped)
    assert shipped.stat().st_size < 0.5 * (result.out / "best.pt").stat().st_size
    stored = load_checkpoint(shipped)["state_dict"]
    params = dict(original.named_parameters())
    assert {t.dtype for k, t in stored.items() if k in params} == {torch.float16}
    # a depth-2 U-Net runs the stem and layer1 of its ResNet encoder, never layer2 to layer4
    never_run = ("encoder.layer2.", "encoder.layer3.", "encoder.layer4.")
    assert set(card["unused_weights"]) == {
        k for k in original.state_dict() if k.startswith(never_run)
    }
    assert not set(card["unused_weights"]) & set(stored)
    x = torch.randn(2, run[0].normalise.channels, 64, 64) * 2
    with torch.no_grad():
        a, b = original.eval()(x), exported.eval()(x)
    tolerance = 0.02 * float(a.abs().max())
    assert float((a - b).abs().max()) < tolerance
    # the same class wherever the top two logits differ by more than float16 can move them
    top2 = a.topk(2, dim=1).values
    decided = (top2[:, 0] - top2[:, 1]) > 2 * float((a - b).abs().max())
    assert float(decided.float().mean()) > 0.9
    assert bool((a.argmax(1) == b.argmax(1))[decided].all())


def test_the_card_says_how_the_model_was_made(run, tmp_path):
    tiny = run[0]
    shipped, result = _export(run, tmp_path / "models")
    card = json.loads(shipped.with_suffix(".json").read_text())
    assert card == load_checkpoint(shipped)["card"]
    release = card["release"]
    state = result.state
    assert release["steps"] == (state.best_epoch + 1) * tiny.train.steps_per_epoch
    assert release["mlflow_run_id"] == state.run_id and release["git_commit"]
    assert release["training_seed"] == tiny.train.seed
    assert release["config"]["model"] == config_to_dict(tiny)["model"]
    summary = json.loads((run[3] / "tiny_val" / "summary.json").read_text())
    assert release["suite"]["tiny_val"]["macro_cluster_f1"] == summary["unet"]["macro_cluster_f1"]
    # what label-shift correction starts from: each signal class's share of training deposits
    priors = card["training_priors"]
    assert set(priors) == set(tiny.classes[1:]) and sum(priors.values()) == pytest.approx(
        1, abs=1e-3
    )
    assert priors["tritium"] > 0 and priors["xray"] > 0
    tritium = summary["unet"]["per_class"]["tritium"]
    point = release["operating_points"]["tritium"]
    assert point["suite_true_events"] == tritium["true_events"]
    assert point["suite_efficiency"] == pytest.approx(tritium["cluster_efficiency"], abs=1e-4)
    covers = release["covers"]
    assert covers["readout_noise_e"] == list(tiny.stream.readout_noise_e)  # narrow 1: as given
    assert 0 < covers["back_sigma_px"][0] < 0.94 < covers["back_sigma_px"][1]
    assert release["limitations"] == list(tiny.release.limitations)


def test_a_shipped_model_missing_a_used_weight_is_refused(run, tmp_path):
    shipped, _ = _export(run, tmp_path / "models")
    payload = torch.load(shipped, weights_only=True)
    del payload["state_dict"]["decoder.blocks.0.conv1.0.weight"]
    broken = tmp_path / "broken.pt"
    torch.save(payload, broken)
    with pytest.raises(CheckpointError, match=r"broken\.pt: weights do not fit .*missing"):
        load_model(broken)


def test_names_resolve_to_shipped_models_and_unknown_ones_are_listed(run, tmp_path):
    folder = tmp_path / "models"
    shipped, _ = _export(run, folder)
    assert resolve_model("tiny-v1", folder) == shipped
    assert resolve_model(str(shipped), folder) == shipped
    with pytest.raises(
        CheckpointError,
        match=r"tiny-v2: no such checkpoint file, and not a shipped model \(shipped in .*: tiny-v1",
    ):
        resolve_model("tiny-v2", folder)
    assert [m.name for m in list_models(folder)] == ["tiny-v1"]


def test_a_model_listed_in_another_release_dir_is_found_by_name(run, tmp_path, tiny_files):
    """`--model NAME` looks where `pipeline models` lists: release.dir, not only models/."""
    from pipeline.cli import main

    folder = tmp_path / "elsewhere"
    _export(run, folder)
    out = tmp_path / "m.h5"
    argv = ["infer", "--model", "tiny-v1", "--input", str(tiny_files["val"]), "--output", str(out)]
    argv += ["--set", f"release.dir={folder}", "--set", "tracking.enabled=false"]
    argv += ["--window", "64"]
    assert main(argv) == 0 and out.is_file()


def test_models_command_lists_what_is_shipped(run, tmp_path, capsys):
    folder = tmp_path / "models"
    _export(run, folder)
    assert main(["models", "--dir", str(folder)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("tiny-v1: ") and "on 1 detectors" in line


def test_unused_parameters_are_found_without_moving_batchnorm_statistics(tiny):
    from pipeline.network.model import build_model

    model = build_model(tiny.model, len(tiny.classes))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    unused = unused_parameters(model, tiny.normalise.channels)
    assert "encoder.layer4.0.conv1.weight" in unused
    assert "encoder.layer4.0.bn1.running_var" in unused
    assert "encoder.layer1.0.conv1.weight" not in unused
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])


# the model shipped in models/ (made with configs/release.yaml, README "The shipped model")


def test_the_shipped_model_loads_and_agrees_with_the_default_config():
    model, card = load_model(resolve_model(DEFAULT.train.init))
    assert card == json.loads(SHIPPED.with_suffix(".json").read_text())
    classes = list(card["classes"])  # fine-tuning may grow them (the artefact class after v2)
    assert DEFAULT.classes[: len(classes)] == classes
    arch = {k: v for k, v in card["architecture"].items() if k != "name"}
    assert arch == DEFAULT.model.model_dump()
    assert card["normalise"] == DEFAULT.normalise.model_dump()
    assert card["weights_dtype"] == "float16"
    assert SHIPPED.stat().st_size < 16e6
    release = card["release"]
    assert set(release["suite"]) >= set(DEFAULT.workflow.suite) - {"suite_artefacts"}  # after v2
    assert release["steps"] > 0 and release["git_commit"] and release["mlflow_run_id"]
    x = torch.zeros(1, DEFAULT.normalise.channels, 128, 128)
    x[0, :2, 60:63, 60:63] = 1.5  # a small bright cluster
    x[0, 2:] = 0.94 / 2  # told the default detector's back-surface diffusion (0.94 px, unit 2 px)
    with torch.no_grad():
        out = model.eval()(x)
    assert out.shape == (1, len(classes), 128, 128) and bool(torch.isfinite(out).all())
    assert int(out[0].argmax(0)[5, 5]) == 0  # empty sky is background
    assert int(out[0].argmax(0)[61, 61]) != 0  # and the cluster is not


def test_the_artefact_model_has_every_class_its_suite_and_its_calibration():
    card = json.loads(resolve_model("ccd-unet-v3").with_suffix(".json").read_text())
    assert card["classes"] == DEFAULT.classes
    assert set(card["release"]["suite"]) >= set(DEFAULT.workflow.suite)
    calibration = card["calibration"]
    assert calibration["temperature"] > 1 and calibration["pixels"] > 10_000
    assert calibration["ece_after"] < calibration["ece_before"]
