"""What the network and the classical cuts make of real CCD files (../shared/real/), as they come.

    python bench/bench_real_frames.py [--models ccd-unet-v3 ccd-unet-v2] [--real ../shared/real]

For each real file, each model and the classical reconstruction: clusters per class. And:
- the Gemini GMOS cutout (two known cosmic rays, SOURCES.md): the share of each cosmic ray's
  bright pixels (inside its box, calibrated charge above 5 sigma of the measured noise) given a
  particle class; the share of the sky lines' pixels (outside the two boxes grown by 3 px, where
  the reduction's own sky fit, HDU SKYFIT, exceeds 5 sigma of the VAR HDU's median noise) given
  one; and that of every pixel outside the grown boxes (the star's trace, SCI - SKYFIT, spans the
  whole cutout: 37-59 ADU above zero in every row);
- the SAAO raw frame (stars and cosmic rays): the ten brightest classical clusters (stars, by
  their size and charge) and the classes the network gave their pixels;
- the Lick bias frame (zero seconds, nothing but noise): every cluster, and the tritium ones.
Prints one JSON line per file and method.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import h5py

from pipeline.config import load_config
from pipeline.evaluation.real_frames import BIAS, GMOS, SAAO, brightest, charge_of, gmos_scores
from pipeline.inference.classical import classical_file
from pipeline.inference.infer import infer_file


def run(method: str, path: Path, config, out: Path) -> dict:
    map_path, table = out / f"{method}.h5", out / f"{method}.parquet"
    if method == "classical":
        result = classical_file(config, path, map_path, table, progress=False)
    else:
        mapped = load_config(overrides={"infer.model": method, "tracking.enabled": False})
        result = infer_file(mapped, path, map_path, table, progress=False)
    with h5py.File(map_path) as f:
        labels = f["labels"][0]
    return {"clusters": result.clusters, "labels": labels, "warnings": list(result.warnings)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ccd-unet-v3", "ccd-unet-v2"])
    parser.add_argument("--real", type=Path, default=Path("../shared/real"))
    args = parser.parse_args()
    config = load_config(overrides={"tracking.enabled": False})
    classes = config.classes
    for name in (GMOS, SAAO, BIAS):
        path = args.real / name
        charge, noise = charge_of(path, config)
        for method in [*args.models, "classical"]:
            with tempfile.TemporaryDirectory() as tmp:
                found = run(method, path, config, Path(tmp))
            line = {"file": name, "method": method, "clusters": found["clusters"]}
            labels = found["labels"]
            if name == GMOS:
                line |= gmos_scores(labels, charge, noise, path, classes)
            if name == SAAO:
                line["brightest"] = brightest(labels, charge, noise, classes)
            line["warnings"] = found["warnings"]
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
