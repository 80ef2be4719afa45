"""Systematics of the activity: the detector model's parameters varied within their ranges.

The data are simulated with a back-surface layer at the edge of its stated range, three times
thicker than the model's; the activity, measured with the model's efficiency, must still be
covered by its interval once the systematics widen it."""

import json

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.measurement import activity, efficiency, estimate, systematics

FRAMES, EXPOSURE_S = 8, 600.0
SMALL = {
    "detector.height": 256,
    "detector.width": 256,
    "activity.efficiency_frames": 4,
    "sources.tritium.rate_per_frame": 150.0,  # 2 % of the pixels: still sparse
    "activity.template_events": 8000,  # a template per variant: ~100 betas per bin, 2.5x faster
}


def _data(seed: int, back_layer_um: float):
    """A truth-labelled catalogue of frames with this back layer, and the true activity."""
    data = load_config(
        overrides={**SMALL, "detector.backside_pcc_um": back_layer_um, "activity.seed": seed}
    )
    catalogue, decays = efficiency.simulated_catalogue(data, FRAMES)
    return catalogue, decays / (FRAMES * EXPOSURE_S)


def _measured(config, catalogue):
    eff, error = efficiency.efficiency_with_error(config, config.activity.efficiency_frames)
    result = estimate.estimate_activity(catalogue, FRAMES, config, EXPOSURE_S, eff, error)
    terms = systematics.measure_terms(config, {}, catalogue, result)
    return result, terms, systematics.with_systematics(result, terms)


@pytest.mark.parametrize(
    "seeds",
    [(11,), pytest.param((11, 12, 13), marks=pytest.mark.slow, id="three seeds")],
)
def test_a_back_layer_at_the_edge_of_its_range_is_covered(seeds):
    """Data from a detector with the back layer at the edge of its range: the interval widened
    by the systematics covers the truth, the counting interval alone misses it (one seed in the
    default suite, three with -m slow, where at least two must miss)."""
    config = load_config(overrides=SMALL)
    assert config.activity.systematics.back_layer_um[1] == 3.0
    edge = config.activity.systematics.back_layer_um[1]
    missed = 0
    for seed in seeds:
        catalogue, truth = _data(seed, edge)
        nominal, terms, widened = _measured(config, catalogue)
        assert widened.interval_bq[0] <= truth <= widened.interval_bq[1], (seed, truth, widened)
        missed += not nominal.interval_bq[0] <= truth <= nominal.interval_bq[1]
        back = next(t for t in terms if t.name == "back_layer_um")
        # at the edge the model is these data's detector: the activity comes nearer the truth
        assert abs(back.activity_bq[1] - truth) < abs(nominal.activity_bq - truth)
        assert back.efficiency[1] < nominal.efficiency < back.efficiency[0]
    # without the systematics, the model's efficiency is wrong for these data
    assert missed >= min(2, len(seeds))


def test_each_term_moves_the_activity_the_way_its_physics_does():
    config = load_config(overrides=SMALL)
    catalogue, _ = _data(21, 1.0)
    result, terms, widened = _measured(config, catalogue)
    by_name = {t.name: t for t in terms}
    assert set(by_name) == {"back_layer_um", "diffusion_scale", "gain_scale", "threshold_kev"}
    gain = by_name["gain_scale"]
    assert gain.efficiency == pytest.approx((result.efficiency, result.efficiency))
    assert gain.activity_bq[0] != gain.activity_bq[1]  # the spectrum refitted, scaled
    for term in terms:
        assert min(term.error_bq) >= 0
    # a thicker dead layer, more diffusion, a higher threshold: fewer betas are recovered
    for name in ("back_layer_um", "diffusion_scale", "threshold_kev"):
        low_end, high_end = by_name[name].efficiency
        assert low_end > result.efficiency > high_end, name
    assert widened.interval_bq[0] < result.interval_bq[0]
    assert widened.interval_bq[1] > result.interval_bq[1]
    assert widened.activity_bq == result.activity_bq


def test_a_given_efficiency_drops_the_model_terms(tmp_path):
    from pipeline.commands import settings_of
    from pipeline.results.clusters import write_catalogue
    from pipeline.simulation.simulate import simulate_file

    config = load_config(overrides={**SMALL, "activity.efficiency": 0.3})
    frames = simulate_file(config, tmp_path / "f.h5", 2, seed=3, progress=False)[0]
    catalogue = write_catalogue(_data(3, 1.0)[0].assign(frame=0), tmp_path / "c.parquet")[0]
    out = tmp_path / "a.json"
    activity.run(settings_of(config, "activity"), catalogue, frames, out)
    summary = json.loads(out.read_text())
    assert list(summary["systematics"]) == ["dropped"]
    given = load_config(
        overrides={**SMALL, "activity.efficiency": 0.3, "activity.efficiency_error": 0.03}
    )
    activity.run(settings_of(given, "activity"), catalogue, frames, out)
    widened = json.loads(out.read_text())
    assert widened["efficiency_error"] == 0.03
    assert widened["interval_bq"][1] > summary["interval_bq"][1]
    assert widened["live_time_s"] == 2 * 600.0  # the simulator writes its exposure


def test_ranges_are_checked():
    with pytest.raises(Exception, match="back_layer_um"):
        load_config(overrides={"activity.systematics.back_layer_um": [3.0, 0.3]})
    assert np.isfinite(load_config().activity.systematics.gain_scale).all()
    refused = {
        "activity.systematics.threshold_kev": [0.4, 25.0],  # above the fit's high edge
        "activity.systematics.diffusion_scale": [1.2, 2.0],  # the nominal, 1, outside
    }
    for key, span in refused.items():
        with pytest.raises(Exception, match=key.rsplit(".", 1)[1]):
            load_config(overrides={key: span})


def test_the_efficiency_frames_take_the_datas_exposure_noise_and_occupancy():
    from pipeline.measurement.efficiency import detector_of

    config = load_config()
    assert detector_of(config, {}) is config
    long = detector_of(config, {"exposure_s": 1800.0, "readout_noise_e": 0.5})
    assert long.detector.exposure_s == 1800.0 and long.detector.readout_noise_e == 0.5
    for name in ("muon", "electron", "alpha", "xray", "tritium"):
        rate = getattr(config.sources, name).rate_per_frame
        assert getattr(long.sources, name).rate_per_frame == pytest.approx(3 * rate)
    assert long.detector.dark_current_e == pytest.approx(3 * config.detector.dark_current_e)


def test_the_workflows_variants_give_the_activity_it_measures_alone(tmp_path, monkeypatch):
    """The systematics' truth efficiencies made beforehand, one dataset per variant (the
    workflow's `variant` rule), give exactly the activity that simulating them inside the
    activity job gives."""
    from pipeline.commands import settings_of
    from pipeline.results.clusters import write_catalogue
    from pipeline.simulation.simulate import simulate_file

    config = load_config(overrides=SMALL)
    settings = settings_of(config, "activity")
    frames = simulate_file(config, tmp_path / "f.h5", 2, seed=3, progress=False)[0]
    catalogue = write_catalogue(_data(3, 1.0)[0].assign(frame=0), tmp_path / "c.parquet")[0]
    names = systematics.variant_names(settings)
    assert names == [
        "nominal",
        "back_layer_um-low",
        "back_layer_um-high",
        "diffusion_scale-low",
        "diffusion_scale-high",
    ]
    made = []
    for name in names:
        made.append(tmp_path / f"{name}.parquet")
        systematics.run_variant(settings_of(config, "variant"), frames, made[-1], name)
    alone, beforehand = tmp_path / "alone.json", tmp_path / "beforehand.json"
    activity.run(settings, catalogue, frames, alone)

    def simulating(*args):
        raise AssertionError("the activity simulated a variant it was given")

    monkeypatch.setattr(systematics, "simulated_catalogue", simulating)
    activity.run(settings, catalogue, frames, beforehand, variants=made)
    assert json.loads(beforehand.read_text()) == json.loads(alone.read_text())
    with pytest.raises(Exception, match="--variant 'gain_scale-low'"):
        systematics.run_variant(settings, frames, tmp_path / "g.parquet", "gain_scale-low")
