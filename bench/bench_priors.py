"""What the detector-aware network gains from what it is told and from the file's priors, on the
generalisation suite: one model, mapped with its priors as trained or adapted to each file
(`infer.priors.mode`), and told the back-surface diffusion measured from the file or the
dataset's true one (its config overrides), scored against the truth as `evaluate` does.

    python bench/bench_priors.py [--model ccd-unet-v2] [--data data/sim] [--datasets ...]

Frames are the workflow's simulated datasets (the default job makes them). Prints one JSON line
per dataset and setting: macro cluster F1, tritium cluster F1, efficiency and purity, the value
the network was told, and the priors it voted under.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import h5py

from pipeline.config import load_config
from pipeline.evaluation.evaluate import evaluate_files
from pipeline.inference.infer import infer_file

SETTINGS = {
    "trained-measured": {"priors.mode": "training", "back_sigma_from": "measured"},
    "adapted-measured": {"priors.mode": "adapt", "back_sigma_from": "measured"},
    "adapted-true": {"priors.mode": "adapt", "back_sigma_from": "config"},
    "trained-true": {"priors.mode": "training", "back_sigma_from": "config"},
}


def dataset_config(base, dataset: str, model: str, setting: dict):
    """The config with the dataset's own overrides (its true detector) and `setting`."""
    overrides = (
        base.simulate.datasets[dataset].overrides if dataset in base.simulate.datasets else {}
    )
    infer = {"infer.model": model, **{f"infer.{k}": v for k, v in setting.items()}}
    config = load_config(overrides={**overrides, **infer, "tracking.enabled": False})
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ccd-unet-v2")
    parser.add_argument("--data", default="data/sim")
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args()
    base = load_config()
    datasets = args.datasets or [base.workflow.heldout, *base.workflow.suite]
    with tempfile.TemporaryDirectory(prefix="bench-priors-") as tmp:
        for dataset in datasets:
            frames = Path(args.data) / f"{dataset}.h5"
            maps, told = {}, {}
            for name in args.settings:
                config = dataset_config(base, dataset, args.model, SETTINGS[name])
                maps[name] = Path(tmp) / f"{dataset}-{name}.h5"
                infer_file(config, frames, maps[name], progress=False)
                with h5py.File(maps[name], "r") as f:
                    told[name] = {
                        k: str(f.attrs[k])
                        for k in ("condition_back_sigma_px", "priors")
                        if k in f.attrs
                    }
            summary = evaluate_files(base, frames, maps, Path(tmp) / dataset, progress=False)
            for name in args.settings:
                scores = summary[name]
                tritium = scores["per_class"]["tritium"]
                line = {
                    "dataset": dataset,
                    "setting": name,
                    "macro_cluster_f1": scores["macro_cluster_f1"],
                    "tritium_f1": tritium["cluster_f1"],
                    "tritium_efficiency": tritium["cluster_efficiency"],
                    "tritium_purity": tritium["cluster_purity"],
                    "true_tritium": tritium["true_events"],
                    **told[name],
                }
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
