"""Each readout-artefact family and light, one at a time, through a reconstruction: is the
artefact called artefact, and are the particles beside it kept?

Owns the families (`FAMILIES`: the default detector with one family switched on, particles at a
busy 256^2 tile's rate), simulating their frames, mapping them with a model or the classical
cuts, and the scores: artefact pixel recall and precision, and the share of the particles'
pixels within `NEAR_PX` of an artefact that keep a particle class (any of them). Used by
bench/bench_artefacts.py (the README's figures) and tests/test_artefact_model.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
from scipy import ndimage

from pipeline.config import load_config
from pipeline.inference.classical import classical_file
from pipeline.inference.infer import infer_file
from pipeline.simulation.simulate import simulate_file

PARTICLES = {
    "sources.tritium.rate_per_frame": 10.0,
    "sources.xray.rate_per_frame": 8.0,
    "sources.muon.rate_per_frame": 2.0,
    "sources.electron.rate_per_frame": 2.0,
    "sources.alpha.rate_per_frame": 0.5,
}
R = "artefacts.readout."
FAMILIES: dict[str, dict[str, Any]] = {
    "cti": {R + "cti.serial": 0.03, R + "cti.parallel": 0.03},
    "serial_hits": {R + "serial_hits.rate_per_frame": 8.0},
    "crosstalk": {  # ghosts of alphas' saturated pixels (and muons')
        R + "crosstalk.amplifiers": 2,
        R + "crosstalk.coefficient": 0.003,
        "sources.alpha.rate_per_frame": 3.0,
    },
    "glow": {R + "glow.amplifier_e": 50.0, R + "glow.edge_e": 20.0},
    "pedestal_jumps": {R + "baseline.jumps_per_frame": 8.0},
    "trap_columns": {R + "trap_columns.number": 3},
    "bleed": {R + "serial_full_well_e": 8000.0, "sources.alpha.rate_per_frame": 3.0},
    "stars": {"artefacts.light.stars_per_frame": 5.0},
    "spectrum": {
        "artefacts.light.traces_per_frame": 1.0,
        "artefacts.light.sky_lines_per_frame": 3.0,
    },
}
NEAR_PX = 5


def family_config(family: str, size: int):
    return load_config(
        overrides={
            "detector.height": size,
            "detector.width": size,
            **PARTICLES,
            **FAMILIES[family],
            "tracking.enabled": False,
        }
    )


def scores(truth: np.ndarray, pred: np.ndarray, artefact: int) -> dict[str, float]:
    """Artefact pixel recall and precision; particle pixels near an artefact kept a particle."""
    true_art, pred_art = truth == artefact, pred == artefact
    near = ndimage.binary_dilation(true_art, iterations=NEAR_PX)
    particles = (truth > 0) & (truth != artefact) & near
    hit = int((true_art & pred_art).sum())
    return {
        "artefact_pixels": int(true_art.sum()),
        "recall": round(hit / max(int(true_art.sum()), 1), 3),
        "precision": round(hit / max(int(pred_art.sum()), 1), 3),
        "particle_pixels_near": int(particles.sum()),
        "particles_kept": round(float(((pred > 0) & (pred != artefact))[particles].mean()), 3)
        if particles.any()
        else float("nan"),
    }


def measure(family: str, method: str, frames: int, size: int, seed: int, out: Path) -> dict:
    """Simulate the family's frames, map them with `method`, score every frame together."""
    config = family_config(family, size)
    truth_path = out / f"{family}.h5"
    simulate_file(config, truth_path, frames, seed, progress=False)
    map_path = out / f"{family}.{method}.map.h5"
    if method == "classical":
        classical_file(config, truth_path, map_path, progress=False)
    else:
        infer = config.infer.model_copy(update={"model": method})
        mapped = config.model_copy(update={"infer": infer})
        infer_file(mapped, truth_path, map_path, progress=False)
    with h5py.File(truth_path) as t, h5py.File(map_path) as m:
        names = [str(n) for n in m.attrs["class_names"]]
        truth, pred = t["labels"][()], m["labels"][()]
    artefact = config.classes.index("artefact")
    if "artefact" not in names:  # a model without the class never says it
        pred = np.array([config.classes.index(n) for n in names], np.uint8)[pred]
    return scores(truth, pred, artefact)
