"""A soil sample, end to end: betas from a layer pressed on the CCD, measured as a user would,
give the activity concentration (Bq/g) whose interval covers the truth; the conversion from the
escape layer to grams is the layer's mass-thickness, so a thick layer's concentration does not
depend on its assumed density."""

import json

import h5py
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.inference.classical import classical_file
from pipeline.measurement.sample import sample_scale, sample_summary
from pipeline.simulation.simulate import DRAWN_ATTR, simulate_file
from tests.overrides import NO_SYSTEMATICS

LAYER = {
    "detector.height": 256,
    "detector.width": 256,
    "sources.tritium.sample.kind": "layer",
    "sources.tritium.sample.thickness_um": 2.0,
    "sources.tritium.rate_per_frame": 200.0,  # decays in the layer per frame: ~40 reach the CCD
}
QUICK = {  # the efficiency on 6 frames, without the model terms: the counting alone
    "activity.efficiency_frames": 6,
    **NO_SYSTEMATICS,
    "tracking.enabled": False,
}


def test_a_layers_concentration_interval_covers_its_truth(tmp_path, capsys):
    config = load_config(overrides=LAYER)
    frames = simulate_file(config, tmp_path / "soil.h5", 6, seed=31, progress=False)[0]
    classical_file(config, frames, tmp_path / "m.h5", tmp_path / "c.parquet", progress=False)
    with h5py.File(frames) as f:
        decays = json.loads(f.attrs[DRAWN_ATTR])["tritium"]
        live = 6 * float(f.attrs["exposure_s"])
    scale = sample_scale(config.sources.tritium, 256, 256, config.detector.pixel_size_um)
    truth = decays / live / scale.escape_mass_g
    sets = [f"--set={k}={'null' if v is None else v}" for k, v in {**LAYER, **QUICK}.items()]
    out = tmp_path / "soil.json"
    argv = ["activity", "--catalogue", str(tmp_path / "c.parquet"), "--frames", str(frames)]
    assert main([*argv, "--out", str(out), *sets]) == 0
    assert "Bq/g" in capsys.readouterr().out
    sample = json.loads(out.read_text())["sample"]
    low, high = sample["concentration_interval_bq_per_g"]
    assert low <= truth <= high, (low, truth, high)
    assert sample["decision_threshold_bq_per_g"] < sample["mda_bq_per_g"] < high
    assert sample["escape_depth_um"] == 2.0  # a thin layer: all of it
    assert sample["sample_activity_bq"] == pytest.approx(
        sample["concentration_bq_per_g"] * sample["sample_mass_g"], rel=1e-3
    )


def test_a_thick_layers_concentration_does_not_depend_on_its_density():
    """The escape depth scales as 1 / density, the escape mass not at all: the same measured
    rate gives the same Bq/g for 1.2 and 1.6 g/cm3."""
    results = []
    for density in (1.2, 1.6):
        config = load_config(
            overrides={**LAYER, "sources.tritium.sample.thickness_um": 1000.0,
                       "sources.tritium.sample.density_g_cm3": density}
        )  # fmt: skip
        scale = sample_scale(config.sources.tritium, 1024, 1024, 15.0)
        summary = {"activity_bq": 1.0, "interval_bq": [0.5, 1.5], "decision_threshold_bq": 0.2,
                   "mda_bq": 0.4}  # fmt: skip
        results.append(sample_summary(summary, scale))
        assert scale.escape_depth_um * density == pytest.approx(
            results[0]["escape_depth_um"] * 1.2, rel=1e-6
        )
    assert results[0]["concentration_bq_per_g"] == pytest.approx(
        results[1]["concentration_bq_per_g"], rel=1e-6
    )
    assert np.isclose(results[0]["area_cm2"], (1024 * 15e-4) ** 2)


def test_a_surface_source_has_no_mass():
    config = load_config()
    assert sample_scale(config.sources.tritium, 64, 64, 15.0) is None
    assert sample_summary({"activity_bq": 1.0}, None)["kind"] == "surface"


def test_the_samples_density_and_moisture_are_terms_of_a_layer_only():
    """A layer sample adds its density and moisture to the re-simulated terms (and its
    thickness, for a layer thinner than the escape depth); a surface source has none of them,
    and says why."""
    from pipeline.measurement import variants

    surface = load_config()
    assert not any(n.startswith("sample_") for n in variants.variant_names(surface))
    assert variants.not_applied(surface)["sample_density_g_cm3"].startswith("a surface source")
    layer = load_config(overrides=LAYER)  # 2 um: thinner than the escape depth
    names = variants.variant_names(layer)
    assert {"sample_density_g_cm3-low", "sample_water_fraction-high"} <= set(names)
    thin = load_config(overrides=LAYER)
    assert {"sample_thickness_scale-low", "sample_thickness_scale-high"} <= set(
        variants.variant_names(thin)
    )
    # a factor on the thickness: a thin layer's mass follows it, whatever its thickness
    for thickness in (0.05, 2.0):
        layer = load_config(overrides={**LAYER, "sources.tritium.sample.thickness_um": thickness})
        assert variants.mass_ratio(layer, "sample_thickness_scale", 1.2) == pytest.approx(1.2)
    thick = load_config(overrides={**LAYER, "sources.tritium.sample.thickness_um": 1000.0})
    assert not any(n.startswith("sample_thickness") for n in variants.variant_names(thick))


@pytest.mark.slow
def test_a_thick_layers_efficiency_per_gram_hardly_moves_with_density_or_moisture():
    """A thick layer's efficiency per gram of its escape layer hardly moves with the density
    assumed (the escape depth scales with it) or with its moisture."""
    from pipeline.measurement import systematics
    from pipeline.measurement.variants import mass_ratio

    soil = load_config(
        overrides={**LAYER, "sources.tritium.sample.thickness_um": 1000.0,
                   "sources.tritium.rate_per_frame": 1500.0, "activity.efficiency_frames": 3}
    )  # fmt: skip
    model = systematics.EfficiencyModel(soil, {})
    nominal = model.efficiency()
    for name, value in (("sample_density_g_cm3", 1.1), ("sample_water_fraction", 0.3)):
        per_gram = model.efficiency(name, value) * mass_ratio(soil, name, value)
        assert per_gram == pytest.approx(nominal, rel=0.15), (name, value)
