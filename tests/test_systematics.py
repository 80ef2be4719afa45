"""Systematics of the activity: the detector, transport and sample models varied within their
ranges, measured by the data's own method, and the ranges combined as ranges.

The data are simulated with a back-surface layer at the edge of its stated range, three times
thicker than the model's; the activity, measured with the model's efficiency, must still be
covered by its interval once the systematics widen it. The combination is checked against the
closed forms of a uniform distribution."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.measurement import activity, efficiency, estimate, systematics, variants
from tests.overrides import NO_SYSTEMATICS

FRAMES, EXPOSURE_S = 8, 600.0
SMALL = {
    "detector.height": 256,
    "detector.width": 256,
    "activity.efficiency_frames": 4,
    "sources.tritium.rate_per_frame": 150.0,  # 2 % of the pixels: still sparse
    "activity.template_events": 8000,  # a template per variant: ~100 betas per bin, 2.5x faster
}
BACK_LAYER_ONLY = {
    **SMALL,
    **NO_SYSTEMATICS,
    "activity.systematics.back_layer_um": [0.3, 3.0],
    "activity.systematics.gain_scale": [0.98, 1.02],
    "activity.systematics.threshold_kev": [0.4, 0.8],
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
    terms, combined = systematics.terms_and_combination(config, {}, catalogue, result)
    return result, terms, systematics.with_systematics(result, combined)


@pytest.mark.parametrize(
    "seeds",
    [(11,), pytest.param((11, 12, 13), marks=pytest.mark.slow, id="three seeds")],
)
def test_a_back_layer_at_the_edge_of_its_range_is_covered(seeds):
    """Data from a detector with the back layer at the edge of its range: the interval widened
    by the systematics covers the truth, the counting interval alone misses it (one seed in the
    default suite, three with -m slow, where at least two must miss)."""
    config = load_config(overrides=BACK_LAYER_ONLY)
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
    """A thicker back layer, a steeper profile, a dead sub-layer, more diffusion and a higher
    threshold all recover fewer betas; the gain moves only the fit. (The transport's terms are
    left out here for time; tests/test_physics.py checks what they scale.)"""
    transport = ("stopping_power_scale", "elastic_scale")
    off = {f"activity.systematics.{name}": None for name in transport}
    config = load_config(overrides={**SMALL, **off})
    catalogue, _ = _data(21, 1.0)
    result, terms, widened = _measured(config, catalogue)
    by_name = {t.name: t for t in terms}
    assert set(by_name) == set(variants.TERMS) - set(variants.SAMPLE_TERMS) - set(transport)
    gain = by_name["gain_scale"]
    assert gain.efficiency == pytest.approx((result.efficiency, result.efficiency))
    assert gain.activity_bq[0] != gain.activity_bq[1]  # the spectrum refitted, scaled
    for name in ("back_layer_um", "back_layer_shape", "diffusion_scale", "threshold_kev"):
        low_end, high_end = by_name[name].efficiency
        assert low_end > result.efficiency > high_end, name
    dead = by_name["dead_layer_um"]  # from none (the nominal) to 0.1 um
    assert dead.efficiency[0] == result.efficiency > dead.efficiency[1]
    assert widened.interval_bq[0] < result.interval_bq[0]
    assert widened.interval_bq[1] > result.interval_bq[1]
    assert widened.activity_bq == result.activity_bq


def _result(activity_bq=1.0, interval=(1.0, 1.0), efficiency_error=0.0):
    """An ActivityResult of a counting with the given interval, efficiency 0.5, 100 s."""
    fit = SimpleNamespace(confidence=0.95)
    return estimate.ActivityResult(
        activity_bq, interval, None, activity_bq * 50.0, 0.0, 0.5, 100.0, fit, efficiency_error
    )


def _term(span, nominal, efficiency):
    """A term with the efficiency at the two ends and the fit unchanged (yield 50)."""
    result = _result()
    activities = tuple(50.0 / (e * 100.0) for e in efficiency)
    term = systematics.Term("t", span, nominal, efficiency, (0, 0), (50.0, 50.0), activities)
    return term, result


def test_a_range_is_a_uniform_distribution_not_a_standard_deviation():
    """An efficiency linear in the term, 0.4 to 0.6 over the range, 0.5 at the nominal in its
    middle, no counting error: the activity is A x 0.5 / eff with eff uniform on [0.4, 0.6]; its
    95 % interval is A x 0.5 / (0.4 + 0.2 x [0.975, 0.025]), and u_rel(w) the standard deviation
    of 0.5 / eff: sqrt(ab) ... in closed form (eff ~ U(a, b): E[1/e] = ln(b/a) / (b - a),
    E[1/e^2] = 1 / (ab))."""
    term, result = _term((0.0, 1.0), 0.5, (0.4, 0.6))
    combined = systematics.combine(result, [term], seed=1)
    expected = (0.5 / (0.4 + 0.2 * 0.975), 0.5 / (0.4 + 0.2 * 0.025))
    assert combined.interval_bq == pytest.approx(expected, rel=2e-3)
    a, b = 0.8, 1.2  # efficiency ratios at the ends
    mean, second = np.log(b / a) / (b - a), 1 / (a * b)
    assert combined.calibration_uncertainty == pytest.approx(np.sqrt(second - mean**2), rel=0.01)
    # read as +-1 sigma instead, the interval would reach 0.5 / (0.5 - 1.96 x 0.1) = 1.64
    assert combined.interval_bq[1] < 1.3


def test_a_response_far_from_linear_keeps_its_shape():
    """The nominal at the low end of a range whose efficiency falls fast then flattens (a
    layer: 0.5 at the nominal, 0.3 halfway up the range, 0.25 at the end): measured at three
    points, followed piecewise; the interval reaches the far end and holds the nominal."""
    term, result = _term((1.0, 3.0), 1.0, (0.5, 0.25))
    combined = systematics.combine(result, [term], seed=2)
    low, high = combined.interval_bq
    assert low == 1.0  # the nominal: no value of the term recovers more
    assert high == pytest.approx(0.5 / (0.5 - 0.25 * 0.975), rel=2e-3)
    assert combined.median_bq == pytest.approx(0.5 / 0.375, rel=5e-3)  # halfway: eff 0.375


def test_the_counting_interval_and_the_terms_combine():
    """No terms: the combined interval is the counting one; with a term, wider on both sides."""
    result = _result(1.0, (0.6, 1.5))
    alone = systematics.combine(result, [], seed=3)
    assert alone.interval_bq == pytest.approx((0.6, 1.5), rel=0.01)
    term, _ = _term((0.0, 1.0), 0.5, (0.45, 0.55))
    both = systematics.combine(result, [term], seed=3)
    assert both.interval_bq[0] < 0.6 and both.interval_bq[1] > 1.5
    assert both.spread_bq["t"] > 0


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
    assert load_config().activity.systematics.dead_layer_um[0] == 0.0  # none: allowed
    refused = {
        "activity.systematics.threshold_kev": [0.4, 25.0],  # above the fit's high edge
        "activity.systematics.diffusion_scale": [1.2, 2.0],  # the nominal, 1, outside
        "activity.systematics.elastic_scale": [0.9, 0.95],
        "activity.systematics.back_layer_shape": [0.0, 2.0],  # a profile needs an exponent
    }
    for key, span in refused.items():
        with pytest.raises(Exception, match=key.rsplit(".", 1)[1]):
            load_config(overrides={key: span})


def test_the_diffusion_range_reaches_the_real_damic_m_images():
    """sigma x 2.45 measured on the project's real DAMIC-M image: the range reaches sigma x 2.5
    (A x 6.25)."""
    assert load_config().activity.systematics.diffusion_scale[1] >= 2.5**2


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


def _oracle_catalogue(config, frames, out):
    """The catalogue a method that returns the truth labels makes of `frames` (the map writer,
    the measured charge), as the workflow's infer rule would with a model."""
    from pipeline.io import open_frames
    from pipeline.results.maps import write_maps

    with open_frames(frames, config.io, config.classes) as ff:
        truth = iter([ff.labels[i].compute() for i in range(ff.n_frames)])
    write_maps(config, lambda c, n: (next(truth), None), frames, out.with_suffix(".map.h5"), out)
    return out


def test_the_workflows_variants_give_the_activity_the_method_measures_alone(tmp_path, monkeypatch):
    """The variants' frames made beforehand (`efficiency --variant`, the workflow's rule) and
    mapped by the method give exactly the activity that simulating and mapping them inside the
    activity job gives (the method: an oracle returning the truth, through the map writer)."""
    from pipeline.commands import settings_of
    from pipeline.inference import infer
    from pipeline.network import shipped
    from pipeline.results.clusters import write_catalogue
    from pipeline.simulation.simulate import simulate_file

    config = load_config(overrides={**BACK_LAYER_ONLY, "activity.model": "oracle.pt"})
    settings = settings_of(config, "activity")
    oracle = shipped.Checkpoint("oracle.pt", tmp_path / "oracle.pt", "0" * 64)
    monkeypatch.setattr(shipped, "resolve_checkpoint", lambda reference, directory: oracle)

    def oracle_infer(cfg, input_path, output_path, catalogue_path=None, **_):
        _oracle_catalogue(cfg, input_path, catalogue_path)

    monkeypatch.setattr(infer, "infer_file", oracle_infer)
    frames = simulate_file(config, tmp_path / "f.h5", 2, seed=3, progress=False)[0]
    catalogue = write_catalogue(_data(3, 1.0)[0].assign(frame=0), tmp_path / "c.parquet")[0]
    names = variants.variant_names(settings)
    assert names == ["back_layer_um-low", "back_layer_um-high"]
    made, mapped = [], []
    nominal = tmp_path / "nominal.h5"
    efficiency.run(settings_of(config, "efficiency"), frames, nominal)
    nominal_catalogue = _oracle_catalogue(config, nominal, tmp_path / "nominal.parquet")
    for name in names:
        made.append(tmp_path / f"{name}.h5")
        said = efficiency.run(settings_of(config, "efficiency"), frames, made[-1], name)
        assert "backside_pcc" not in said and "back_layer_um = " in said
        mapped.append(_oracle_catalogue(config, made[-1], tmp_path / f"{name}.parquet"))
    alone, beforehand = tmp_path / "alone.json", tmp_path / "beforehand.json"
    activity.run(settings, catalogue, frames, alone)

    def simulating(*args, **kwargs):
        raise AssertionError("the activity simulated a variant it was given")

    monkeypatch.setattr(systematics, "model_catalogue", simulating)
    args = (nominal, nominal_catalogue, made, mapped)
    activity.run(settings, catalogue, frames, beforehand, *args)
    routes = {}
    for name, path in (("alone", alone), ("beforehand", beforehand)):
        routes[name] = json.loads(path.read_text())
        routes[name].pop("efficiency_route")  # says where the efficiency came from
    assert routes["beforehand"] == routes["alone"]
    summary = json.loads(alone.read_text())["systematics"]
    assert summary["back_layer_um"]["efficiency"][1] < summary["back_layer_um"]["efficiency"][0]
    assert summary["diffusion_scale"] == {
        "not_varied": "no range given (activity.systematics: null)"
    }
    assert "uniform" in summary["combined"]["method"]
    with pytest.raises(Exception, match="--variant 'gain_scale-low'"):
        efficiency.run(
            settings_of(config, "efficiency"), frames, tmp_path / "g.h5", "gain_scale-low"
        )


def test_the_classical_reconstruction_measures_its_own_efficiency_in_process(tmp_path):
    """`activity.model: classical`: the efficiency frames simulated in place are labelled by
    the classical reconstruction, exactly as the workflow's classical rule labels the
    efficiency stage's frames."""
    from pipeline.commands import settings_of
    from pipeline.inference.classical import classical_file
    from pipeline.simulation.simulate import simulate_file

    config = load_config(overrides={**SMALL, "activity.model": "classical"})
    data = simulate_file(config, tmp_path / "d.h5", 1, seed=3, progress=False)[0]
    attrs = efficiency.file_attrs(config, data)
    in_process = efficiency.model_efficiency_with_error(config, "classical", attrs)
    frames = tmp_path / "e.h5"
    efficiency.run(settings_of(config, "efficiency"), data, frames)
    catalogue = tmp_path / "e.parquet"
    classical_file(config, frames, tmp_path / "e.map.h5", catalogue, progress=False)
    assert in_process == efficiency.efficiency_from_files(config, frames, catalogue)
    truth = efficiency.efficiency_with_error(config, config.activity.efficiency_frames)
    assert in_process[0] != truth[0]  # the method's own losses, not the truth's
