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
import numpy as np
from scipy import ndimage

from pipeline.calibration.frames import calibrated
from pipeline.config import load_config
from pipeline.core.components import EIGHT_CONNECTED
from pipeline.inference.classical import classical_file
from pipeline.inference.infer import infer_file

GMOS = "astroscrappy_gmos_S20190808S0048_cutout.fits"
SAAO = "ccdproc_a8280271_SAAO1m_STE3_raw.fits"
BIAS = "pypeit_lick_kast_blue_b21_bias.fits.gz"
GMOS_RAYS = ((slice(41, 72), slice(142, 161)), (slice(117, 147), slice(35, 43)))  # SOURCES.md
SIGMA = 5.0


def charge_of(path: Path, config) -> tuple[np.ndarray, float]:
    with calibrated(path, config) as frames:
        frames.calibrate()
        charge = next(iter(frames.charges(0)))
        return charge, frames.noise_e(0)


def gmos_scores(labels: np.ndarray, charge: np.ndarray, noise: float, path: Path, classes):
    """Particle shares of the cosmic rays' bright pixels, the sky lines' and the rest's."""
    from astropy.io import fits

    with fits.open(path) as hdus:
        sky = hdus["SKYFIT"].data.astype(float)
        sigma = float(np.sqrt(np.median(hdus["VAR"].data)))
    particle = (labels > 0) & (labels != classes.index("artefact"))
    rays = np.zeros(labels.shape, bool)
    out: dict = {}
    for i, box in enumerate(GMOS_RAYS):
        mask = np.zeros_like(rays)
        mask[box] = True
        rays |= mask
        hit = (charge > SIGMA * noise) & mask
        out[f"ray{i + 1}_particle_share"] = round(float(particle[hit].mean()), 3)
        out[f"ray{i + 1}_pixels"] = int(hit.sum())
    outside = ~ndimage.binary_dilation(rays, iterations=3)
    lines = outside & (sky > SIGMA * sigma)  # the reduction's own sky fit
    out["sky_line_pixels"] = int(lines.sum())
    out["sky_line_particle_share"] = round(float(particle[lines].mean()), 4)
    out["trace_and_sky_pixels"] = int(outside.sum())  # the star's trace spans the cutout
    out["trace_and_sky_particle_share"] = round(float(particle[outside].mean()), 4)
    out["trace_and_sky_particle_pixels"] = int(particle[outside].sum())
    return out


def brightest(labels: np.ndarray, charge: np.ndarray, noise: float, classes, n: int = 10):
    components, count = ndimage.label(charge > SIGMA * noise, EIGHT_CONNECTED)
    if count == 0:
        return []
    sums = ndimage.sum(charge, components, np.arange(1, count + 1))
    rows = []
    for index in np.argsort(sums)[::-1][:n]:
        pixels = components == index + 1
        got = np.bincount(labels[pixels], minlength=len(classes))
        rows.append(
            {
                "pixels": int(pixels.sum()),
                "charge_e": round(float(sums[index])),
                "classes": {classes[c]: int(k) for c, k in enumerate(got) if k},
            }
        )
    return rows


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
