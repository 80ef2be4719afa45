"""The shipped default model on the real files of ../shared/real/ (SOURCES.md), with the default
rules: the GMOS cutout's two cosmic rays are particles and its trace and sky lines are not, the
SAAO frame's two stars are artefact and its small bright deposits mostly particles, the Lick bias
frame holds nothing (pipeline/evaluation/real_frames.py selects the pixels)."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.evaluation import real_frames
from pipeline.inference.infer import infer_file

REAL = Path(__file__).resolve().parents[2] / "shared" / "real"
CONFIG = load_config(overrides={"tracking.enabled": False})
pytestmark = pytest.mark.skipif(
    not (REAL / real_frames.GMOS).is_file(), reason="the shared real files are not here"
)


def mapped(name: str, tmp_path: Path) -> tuple[np.ndarray, dict]:
    result = infer_file(CONFIG, REAL / name, tmp_path / "map.h5", progress=False)
    with h5py.File(tmp_path / "map.h5") as f:
        return f["labels"][0], result.clusters


def test_gmos_cosmic_rays_are_particles_and_the_trace_and_sky_lines_are_not(tmp_path):
    labels, _ = mapped(real_frames.GMOS, tmp_path)
    charge, noise = real_frames.charge_of(REAL / real_frames.GMOS, CONFIG)
    found = real_frames.gmos_scores(labels, charge, noise, REAL / real_frames.GMOS, CONFIG.classes)
    assert found["ray1_particle_share"] >= 0.9 and found["ray2_particle_share"] >= 0.9
    assert found["sky_line_particle_share"] <= 0.01
    assert found["trace_and_sky_particle_share"] <= 0.01


def test_saao_stars_are_artefact_and_its_small_sharp_deposits_particles(tmp_path):
    labels, _ = mapped(real_frames.SAAO, tmp_path)
    charge, noise = real_frames.charge_of(REAL / real_frames.SAAO, CONFIG)
    deposits = real_frames.brightest(labels, charge, noise, CONFIG.classes)
    stars, small = deposits[:2], deposits[2:]
    assert [d["pixels"] > 300 for d in stars] == [True, True]
    for star in stars:
        assert star["classes"].get("artefact", 0) >= 0.9 * star["pixels"]
    particles = [d for d in small if set(d["classes"]) - {"background", "artefact"}]
    assert len(particles) >= 6  # of 8 deposits of 1-12 px holding 1.6e3-8.2e3 e-


def test_the_bias_frame_holds_no_cluster(tmp_path):
    _, clusters = mapped(real_frames.BIAS, tmp_path)
    assert sum(clusters.values()) == 0
