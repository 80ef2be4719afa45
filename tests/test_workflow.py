"""The Snakemake workflow: it lints clean, the default config and both profiles dry-run, the
schema and the input check stop a bad config before any job, it runs end to end on tiny settings
(simulated frames and a user's own file), reruns nothing when nothing changed and exactly the
stages a changed key feeds, and builds its HTML report."""

import shutil

import numpy as np
import pytest
from astropy.io import fits

from pipeline.config import load_config
from pipeline.network.shipped import resolve_model
from tests.workflow_helpers import REPO, snakemake

pytestmark = pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path / "wf", "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_default_config_dry_run_plans_everything(tmp_path):
    result = snakemake(tmp_path / "wf", "-n")
    assert result.returncode == 0, result.stderr
    for planned in (
        "data/sim/train.h5",
        "data/sim/heldout.h5",
        "rule train",
        "rule evaluate",
        "results/activity/heldout.json",
        # the efficiency frames: a dataset of their own, mapped by the trained model
        "data/efficiency/heldout.h5",
        "results/catalogues/heldout.efficiency.unet.parquet",
        # the systematics' variants: frames each, mapped by the same method as the data
        "rule efficiency_variant",
        "data/efficiency/heldout.back_layer_um-high.h5",
        "results/catalogues/heldout.efficiency-back_layer_um-high.unet.parquet",
        "results/catalogues/heldout.efficiency-dead_layer_um-high.classical.parquet",
    ):
        assert planned in result.stdout
    # an end at the nominal model (no dead layer) is the nominal frames: not simulated again
    assert "heldout.dead_layer_um-low" not in result.stdout


@pytest.mark.parametrize(
    "extra",
    [
        ["--profile", "profiles/local"],
        ["--profile", "profiles/slurm", "--configfile", "configs/gpu.yaml"],
    ],
)
def test_profiles_dry_run(tmp_path, extra):
    if "profiles/slurm" in extra:
        pytest.importorskip("snakemake_executor_plugin_slurm")
    # a cluster run gives no --cores: the profile and the rules must not need it
    result = snakemake(tmp_path / "wf", "-n", *extra, cores=None)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rule train" in result.stdout
    if "profiles/slurm" in extra:  # resources from workflow.resources reach the scheduler
        assert "gpu=1" in result.stdout and "runtime=720" in result.stdout


def test_several_gpus_train_through_torchrun(tmp_path):
    many = tmp_path / "many.yaml"
    many.write_text(
        "workflow: {resources: {train: {cpus: 8, gpus: 4, mem_mb: 1000, runtime_min: 10}}}\n"
    )
    result = snakemake(tmp_path / "wf", "-n", "-p", "--configfile", str(many))
    assert result.returncode == 0, result.stderr
    assert "OMP_NUM_THREADS=2 torchrun --standalone --nproc_per_node 4 -m pipeline train" in (
        result.stdout
    )


@pytest.mark.parametrize(
    "text, named",
    [
        ("detector:\n  hieght: 5\n", "hieght"),
        ("train:\n  epochs: many\n", "epochs"),
        ("tiles:\n  size: -64\n", "size"),
        ("workflow:\n  inputs: [/nowhere/run1.fits]\n", "/nowhere/run1.fits"),
        ("workflow:\n  inputs: ['/nowhere/*.root']\n", "/nowhere/*.root"),
        ("workflow:\n  suite: [suite_nowhere]\n", "suite_nowhere"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, text, named):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = snakemake(tmp_path / "wf", "--configfile", str(bad))
    assert result.returncode != 0
    assert named in result.stdout + result.stderr
    assert not (tmp_path / "wf" / "results").exists()


@pytest.mark.xdist_group("workflow")
def test_workflow_runs_and_reruns_only_on_relevant_change(workflow_run):
    work, small = workflow_run
    for made in (
        "data/sim/train.h5",
        "logs/simulate/train.log",
        "results/model/best.pt",
        "results/model/model_card.json",
        "mlruns.db",
        "benchmarks/train.tsv",
        "results/maps/heldout.unet.h5",
        "results/maps/heldout.classical.h5",
        "results/maps/heldout.ceiling.h5",
        "results/catalogues/heldout.unet.parquet",
        "results/evaluation/summary.json",
        "results/activity/heldout.json",
        # the generalisation suite (one detector at this size): its scores and the table
        "results/suite/suite_noisy/summary.json",
        "results/evaluation/suite.md",
        "results/evaluation/suite.html",
        # the user's own file: its map, catalogue and activity
        "results/maps/run7.unet.h5",
        "results/catalogues/run7.unet.csv",
        "results/activity/run7.json",
        # what to look at: each map over its frame, each activity's spectral fit
        "results/plots/heldout.unet.map.png",
        "results/plots/run7.unet.map.png",
        "results/plots/heldout.fit.png",
        "results/plots/run7.fit.png",
    ):
        assert (work / made).is_file(), made
    text = small.read_text()
    try:
        _reruns(work, small, text)
    finally:
        small.write_text(text)  # the config is shared with the report and notebook tests


def _reruns(work, small, text):
    again = snakemake(work, "-n", "--configfile", str(small))
    assert "Nothing to be done" in again.stdout + again.stderr
    small.write_text(text + "physics: {fano_factor: 0.12}\n")
    changed = snakemake(work, "-n", "--configfile", str(small))
    assert "rule simulate" in changed.stdout and "Nothing to be done" not in changed.stdout
    small.write_text(text + "train: {epochs: 2, steps_per_epoch: 2, batch_size: 2, val_tiles: 2}\n")
    retrain = snakemake(work, "-n", "--configfile", str(small))
    assert "rule train" in retrain.stdout and "rule simulate" not in retrain.stdout
    assert "rule infer" in retrain.stdout and "rule evaluate" in retrain.stdout


@pytest.mark.xdist_group("workflow")
def test_fine_tuning_scores_the_starting_model_beside_the_tuned_one(workflow_run, tmp_path):
    work, small = workflow_run
    start = tmp_path / "start.pt"
    shutil.copy2(work / "results" / "model" / "best.pt", start)
    tuned = tmp_path / "tuned.yaml"
    compared = "workflow: {suite: [suite_noisy], compare_models: [ccd-unet-v1]}\n"
    tuned.write_text(small.read_text() + f"train: {{init: {start}}}\n" + compared)
    plan = snakemake(work, "-n", "-p", "--configfile", str(tuned))
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert f"--init {start}" in plan.stdout  # the training starts from it
    assert "rule infer_init" in plan.stdout and "results/maps/heldout.init.h5" in plan.stdout
    # the suite and held-out score all: the tuned and starting U-Nets, the previous shipped
    # model (workflow.compare_models), the ceiling and the classical reconstruction
    assert "--names unet init ccd-unet-v1 ceiling classical" in plan.stdout
    assert "rule infer_ccd_unet_v1" in plan.stdout


def test_a_missing_starting_model_stops_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {init: no-such-model}\n")
    result = snakemake(tmp_path / "wf", "-n", "--configfile", str(bad))
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "train.init: no-such-model: no such checkpoint file, and not a shipped model" in text
    assert not (tmp_path / "wf" / "results").exists()


@pytest.mark.xdist_group("workflow")  # another worker would run the whole workflow again
def test_report_builds_with_the_evaluation_plots(workflow_run):
    work, small = workflow_run
    result = snakemake(work, "--configfile", str(small), "--report", "report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    html = (work / "report.html").read_text(errors="replace")
    for name in (
        "confusion.png",
        "spectra.png",
        "example_frame.png",
        "comparison.html",
        "suite.html",
        "training_curves.png",
        "heldout.unet.map.png",
        "heldout.fit.png",
    ):
        assert name in html, name
    assert "harmonic mean" in html  # the rst caption of the comparison table
    # the landing page: the headline numbers, read from the results
    assert "Headline numbers" in html and "Tritium activity of" in html


def test_the_release_recipe_plans_training_suite_and_export(tmp_path):
    """The README's release command, as written there (the target before --configfile, which
    takes every word after it as a config file)."""
    readme = (REPO / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "# CPU: train, suite, export" in line)
    args = command.split("#")[0].split()[1:]  # without `snakemake`
    args = [a for i, a in enumerate(args) if a != "--cores" and args[i - 1] != "--cores"]
    result = snakemake(tmp_path / "wf", "-n", "-p", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rule train" in result.stdout and "pipeline export" in result.stdout
    assert "--name ccd-unet-v3" in result.stdout


def test_mine_maps_the_users_files_as_pipeline_infer_does(tmp_path):
    frame = np.random.default_rng(0).normal(1000.0, 5.0, (64, 64)).astype(np.float32)
    fits.PrimaryHDU(frame).writeto(tmp_path / "run7.fits")
    inputs = f"workflow={{inputs: [{tmp_path / 'run7.fits'}]}}"
    plan = snakemake(tmp_path / "wf", "-n", "-p", "mine", "--config", inputs)
    assert plan.returncode == 0, plan.stderr[-3000:]
    shipped = resolve_model(load_config().infer.model)
    assert "rule infer_shipped" in plan.stdout
    assert f"--model {shipped.relative_to(REPO)}" in plan.stdout  # models/ccd-unet-v3.pt
    for wanted in ("results/maps/run7.shipped.h5", "results/activity/run7.shipped.json"):
        assert wanted in plan.stdout
    assert "rule train" not in plan.stdout and "rule infer_init" not in plan.stdout
