"""Accuracy of each U-Net inference path on the generalisation suite: the same model, mapped
dense and sparse, by torch and by ONNX Runtime, scored against the truth as the workflow's
`evaluate` does, and the agreement of each path's labels with the first path's.

    python bench/bench_suite_paths.py [--model ccd-unet-v1] [--data data/sim]
        [--datasets heldout suite_skipper ...] [--paths dense-torch-fp32 sparse-onnxruntime-fp32]

Frames are the workflow's simulated datasets (`snakemake --cores 2 data/sim/heldout.h5 ...`
makes them). Prints one JSON line per dataset and path: macro cluster F1, macro pixel IoU,
per-class cluster F1, tritium efficiency and purity, and the share of truth-deposit interior
pixels (the truth eroded by one pixel) labelled as the first path labels them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from paths import PATHS, infer_config  # bench/paths.py
from scipy import ndimage

from pipeline.config import load_config
from pipeline.evaluation.evaluate import evaluate_files
from pipeline.inference.infer import infer_file
from pipeline.io import open_frames, open_map

SUITE = ["heldout", "suite_skipper", "suite_noisy", "suite_thin", "suite_front_xrays"]
SUITE += ["suite_busy", "suite_diffuse"]


def interior_agreement(config, truth_path: Path, map_a: Path, map_b: Path) -> float:
    agree = total = 0
    with (
        open_frames(truth_path, config.io, config.classes) as truth,
        open_map(map_a, config.io, config.classes) as a,
        open_map(map_b, config.io, config.classes) as b,
    ):
        for i in range(truth.n_frames):
            inside = ndimage.binary_erosion(truth.read("labels", i) > 0, np.ones((3, 3), bool))
            agree += int((a.read(i)[inside] == b.read(i)[inside]).sum())
            total += int(inside.sum())
    return agree / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None)
    parser.add_argument("--model", default="ccd-unet-v1")
    parser.add_argument("--data", default="data/sim")
    parser.add_argument("--datasets", nargs="+", default=SUITE)
    parser.add_argument(
        "--paths",
        nargs="+",
        default=["dense-torch-fp32", "sparse-onnxruntime-fp32"],
        choices=list(PATHS),
    )
    args = parser.parse_args()
    config = load_config(args.config)
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        for dataset in args.datasets:
            frames = Path(args.data) / f"{dataset}.h5"
            maps = {}
            for path in args.paths:
                maps[path] = Path(tmp) / f"{dataset}-{path}.h5"
                settings = infer_config(config, path, {"model": args.model})
                infer_file(settings, frames, maps[path], progress=False)
            summary = evaluate_files(config, frames, maps, Path(tmp) / dataset, progress=False)
            for path in args.paths:
                scores = summary[path]
                line = {"dataset": dataset, "path": path}
                line["macro_cluster_f1"] = round(scores["macro_cluster_f1"], 4)
                line["macro_pixel_iou"] = round(scores["macro_pixel_iou"], 4)
                line["cluster_f1"] = {k: v["cluster_f1"] for k, v in scores["per_class"].items()}
                tritium = scores["per_class"]["tritium"]
                line["tritium_efficiency_purity"] = [
                    tritium["cluster_efficiency"],
                    tritium["cluster_purity"],
                ]
                first = maps[args.paths[0]]
                line["interior_agreement"] = round(
                    interior_agreement(config, frames, first, maps[path]), 5
                )
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
