"""Activity stage: the spectral templates and
fit (on energies drawn from the model itself), the efficiency and the activity."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import ConfigError, load_config
from pipeline.measurement import activity, counting, efficiency, estimate, spectrum
from pipeline.results.clusters import empty_catalogue
from pipeline.simulation.physics import sample_beta_energies

N_TRITIUM, N_BACKGROUND = 600, 40
LINE_YIELDS = np.array([300.0, 45.0, 70.0, 55.0, 80.0])  # the 4 default lines, then continuum


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def draw_spectrum(cfg, rng, n_tritium: int, line_yields: np.ndarray, n_flat: int) -> dict:
    """Energies by origin, in the fitted range: simulated betas (another seed than the
    template's), Gaussian lines with the fit's widths, the uniform continuum and a flat
    background. Yields are Poisson-fluctuated around the given means."""
    low, high = cfg.activity.energy_range_kev
    betas = spectrum.collected_beta_energies(cfg, 4 * n_tritium, int(rng.integers(1000, 10**6)))
    betas = betas[(betas >= low) & (betas < high)]
    tritium = rng.choice(betas, rng.poisson(n_tritium), replace=False)
    xray, phys = cfg.sources.xray, cfg.physics
    lines = []
    for line, mean in zip(xray.lines, line_yields[:-1], strict=True):
        sigma = np.hypot(
            spectrum.resolution_kev(cfg),
            np.sqrt(phys.fano_factor * line.energy_kev * phys.pair_energy_ev / 1000),
        )
        lines.append(rng.normal(line.energy_kev, sigma, rng.poisson(mean)))
    lines.append(rng.uniform(*xray.continuum_kev, rng.poisson(line_yields[-1])))
    flat = rng.uniform(low, high, rng.poisson(n_flat))
    return {"tritium": tritium, "xray": np.concatenate(lines), "flat": flat}


# ---------------------------------------------------------------- templates


def test_template_is_degraded_beta_spectrum(cfg):
    edges = spectrum.fit_edges(cfg)
    template = spectrum.tritium_template(cfg, edges)
    assert template.sum() == pytest.approx(1.0) and (template >= 0).all()
    centres = (edges[1:] + edges[:-1]) / 2
    emitted = sample_beta_energies(100_000, cfg.sources.tritium, np.random.default_rng(0))
    assert emitted.mean() == pytest.approx(5.69, abs=0.05)
    # backscatter and the partially collecting back layer lower the collected energy
    assert (template * centres).sum() < emitted.mean() - 1.0
    collected = spectrum.collected_beta_energies(cfg, 4000, 3)
    assert collected.mean() < 0.5 * emitted.mean()
    assert template[centres > cfg.sources.tritium.endpoint_kev].sum() == 0


def test_line_shapes_are_normalised_and_centred(cfg):
    edges = spectrum.fit_edges(cfg)
    shapes = spectrum.line_shapes(cfg, edges, resolution_kev=0.05)
    assert shapes.shape == (len(cfg.sources.xray.lines) + 1, len(edges) - 1)
    assert shapes.sum(axis=1) == pytest.approx(1.0)
    k_alpha = np.argmax(shapes[0])
    assert edges[k_alpha] <= 5.899 < edges[k_alpha + 1]
    continuum = shapes[-1][shapes[-1] > 0]
    assert continuum.max() == pytest.approx(continuum.min())


# ---------------------------------------------------------------- spectral fit


def test_fit_recovers_tritium_with_lines_and_background(cfg):
    """The fitted yield estimates the Poisson mean of the in-range tritium clusters."""
    pulls, covered = [], 0
    for seed in range(5):
        parts = draw_spectrum(cfg, np.random.default_rng(seed), N_TRITIUM, LINE_YIELDS, 40)
        fit = spectrum.fit_spectrum(np.concatenate(list(parts.values())), cfg)
        covered += fit.interval[0] <= N_TRITIUM <= fit.interval[1]
        assert fit.interval[0] < fit.tritium < fit.interval[1]
        assert fit.tritium_error == pytest.approx(np.sqrt(N_TRITIUM), rel=0.5)
        assert fit.lines[0] == pytest.approx(LINE_YIELDS[0], rel=0.2)
        pulls.append((fit.tritium - N_TRITIUM) / fit.tritium_error)
    assert np.abs(pulls).max() < 3
    assert abs(np.mean(pulls)) < 3 / np.sqrt(len(pulls))  # unbiased
    # a 95% interval: two or more misses in five would happen 2% of the time
    assert covered >= 4


def test_fit_without_tritium_is_compatible_with_zero(cfg):
    for seed in range(3):
        parts = draw_spectrum(cfg, np.random.default_rng(100 + seed), 0, LINE_YIELDS, 20)
        fit = spectrum.fit_spectrum(np.concatenate([parts["xray"], parts["flat"]]), cfg)
        assert fit.tritium < 2 * fit.tritium_error
        assert fit.interval[0] == pytest.approx(0.0, abs=1e-6)
        assert fit.lines[0] == pytest.approx(LINE_YIELDS[0], rel=0.2)


def test_fit_of_empty_input(cfg):
    fit = spectrum.fit_spectrum(np.array([]), cfg)
    assert fit.tritium == 0.0 and fit.interval[0] == 0.0
    assert fit.interval[1] == pytest.approx(1.92, abs=0.01)  # chi2_1(0.95) / 2 counts
    assert fit.counts.sum() == 0


def test_confidence_widens_the_interval(cfg):
    energies = np.concatenate(
        list(draw_spectrum(cfg, np.random.default_rng(7), 300, LINE_YIELDS, 20).values())
    )
    narrow = spectrum.fit_spectrum(energies, load_config(overrides={"activity.confidence": 0.68}))
    wide = spectrum.fit_spectrum(energies, cfg)
    assert wide.interval[0] < narrow.interval[0] and narrow.interval[1] < wide.interval[1]


# ---------------------------------------------------------------- efficiency and activity


def synthetic_catalogue(cfg, rng, n_tritium: int, line_yields: np.ndarray, n_frames: int):
    parts = draw_spectrum(cfg, rng, n_tritium, line_yields, N_BACKGROUND)
    names = ["tritium"] * len(parts["tritium"]) + ["xray"] * len(parts["xray"])
    names += ["electron"] * len(parts["flat"])  # not tritium-like: left out of the fit
    energies = np.concatenate([parts["tritium"], parts["xray"], parts["flat"]])
    # labels leak: 10 % of each population carries the other label
    swap = rng.random(len(names)) < 0.1
    names = [
        {"tritium": "xray", "xray": "tritium"}.get(n, n) if s else n
        for n, s in zip(names, swap, strict=True)
    ]
    catalogue = pd.DataFrame(
        {
            "frame": rng.integers(0, n_frames, len(names)),
            "class_name": names,
            "energy_kev": energies,
        }
    )
    return catalogue


def test_activity_from_synthetic_catalogue(cfg):
    n_frames, exposure, efficiency = 10, 300.0, 0.35
    catalogue = synthetic_catalogue(
        cfg, np.random.default_rng(11), N_TRITIUM, LINE_YIELDS, n_frames
    )
    result = estimate.estimate_activity(catalogue, n_frames, cfg, exposure, efficiency)
    expected = N_TRITIUM / (efficiency * n_frames * exposure)
    assert result.live_time_s == n_frames * exposure
    assert result.interval_bq[0] <= expected <= result.interval_bq[1]
    assert result.activity_bq == pytest.approx(result.tritium_counts / (efficiency * 3000.0))
    assert 0 < result.mda_bq < result.activity_bq
    summary = estimate.activity_summary(result)
    assert json.loads(json.dumps(summary))["activity_bq"] == pytest.approx(result.activity_bq)
    # an uncertain efficiency widens the interval
    shaky = estimate.estimate_activity(catalogue, n_frames, cfg, exposure, efficiency, 0.05)
    assert shaky.interval_bq[0] < result.interval_bq[0]
    assert shaky.interval_bq[1] > result.interval_bq[1]


def test_mda_grows_with_background(cfg):
    mdas = []
    for scale in (1.0, 6.0):
        catalogue = synthetic_catalogue(
            cfg, np.random.default_rng(5), 50, LINE_YIELDS * scale, n_frames=4
        )
        result = estimate.estimate_activity(catalogue, 4, cfg, 600.0, efficiency=0.35)
        assert result.live_time_s == 4 * 600.0
        mdas.append(result.mda_bq)
    assert 0 < mdas[0] < mdas[1]


def test_measured_efficiency_matches_collected_fraction(cfg):
    eff, error = efficiency.efficiency_with_error(cfg, n_frames=4)
    low, high = cfg.activity.energy_range_kev
    collected = spectrum.collected_beta_energies(cfg, 20000, 99)
    accepted = np.mean((collected >= low) & (collected < high))
    assert 0 < error < 0.2 * eff
    assert abs(eff - accepted) < 3 * error + 0.02

    def xray_as_tritium(frame):  # label leak between the two fitted classes changes nothing
        labels = frame.labels.copy()
        labels[labels == cfg.classes.index("xray")] = cfg.classes.index("tritium")
        return labels

    # (clusters of the two classes that touch now merge: a shift well inside the error)
    assert abs(efficiency.efficiency_with_error(cfg, 4, xray_as_tritium)[0] - eff) < 0.5 * error


def test_model_efficiency_runs_the_data_chain_and_agrees_with_truth(cfg, monkeypatch, tmp_path):
    """With an oracle in place of the network (it returns the truth labels), the chain through a
    frame file, calibration, the map writer and the catalogue's measured charge reproduces the
    truth-label efficiency of the same frames."""
    from pipeline.inference import infer
    from pipeline.io import open_frames
    from pipeline.network import shipped
    from pipeline.results.maps import write_maps
    from pipeline.simulation.simulate import simulate_file

    def oracle_infer(
        config, input_path, output_path, catalogue_path=None, progress=False, model=None
    ):
        assert model is not None and model.reference == "oracle.pt"  # resolved once, given
        with open_frames(input_path, config.io, config.classes) as ff:
            truth = iter([ff.labels[i].compute() for i in range(ff.n_frames)])
        return write_maps(
            config,
            lambda charge, noise: (next(truth), None),
            input_path,
            output_path,
            catalogue_path,
            progress=False,
        )

    monkeypatch.setattr(infer, "infer_file", oracle_infer)
    oracle = shipped.Checkpoint("oracle.pt", Path("oracle.pt"), "0" * 64)
    monkeypatch.setattr(shipped, "resolve_checkpoint", lambda reference, directory: oracle)
    four = cfg.model_copy(
        update={"activity": cfg.activity.model_copy(update={"efficiency_frames": 4})}
    )
    small = cfg.model_copy(update={"detector": cfg.detector.model_copy(update={"height": 64})})
    data = simulate_file(small, tmp_path / "data.h5", 1, seed=3, progress=False)[0]
    eff, error = efficiency.efficiency_with_error(cfg, n_frames=4)
    attrs = efficiency.file_attrs(four, data)
    chain, chain_error = efficiency.model_efficiency_with_error(four, "oracle.pt", attrs)
    assert chain_error == pytest.approx(error, rel=0.2)
    # same frames and labels; only the cluster charge differs (measured, with readout noise):
    # half the tritium clusters lie below 0.5 keV (backscattered betas), where noise moves
    # them across the fit's threshold, so the two agree within two standard errors, not one
    assert abs(chain - eff) < 2 * error


def test_activity_without_any_efficiency_is_refused(cfg):
    with pytest.raises(ConfigError, match="no efficiency"):
        estimate.estimate_activity(empty_catalogue(), 3, cfg, 100.0)


def test_empty_catalogue_gives_zero_activity_and_an_upper_edge(cfg):
    table = counting.counts_per_frame(empty_catalogue(), ["tritium"], 3)
    assert table["tritium"].tolist() == [0, 0, 0]
    result = estimate.estimate_activity(empty_catalogue(), 3, cfg, 100.0, 0.5)
    assert result.activity_bq == 0.0 and result.interval_bq[0] == 0.0
    assert result.interval_bq[1] == pytest.approx(1.92 / 150.0, rel=0.01)
    # ISO 11929 from the fit: no background seen, so no threshold; the detection limit is at
    # least Currie's for a background known to be zero (k^2 = 2.71 counts), more because the
    # fit leaves the X-ray and flat components free, and it solves a# = a* + k u(a#)
    assert result.decision_threshold_bq * 150.0 < 0.01  # counts: nothing to fluctuate
    assert result.mda_bq > 2.70 / 150.0
    from pipeline.measurement.limits import fit_yield_variance

    variance = fit_yield_variance(result.fit.shapes, result.fit.background_only)
    k = 1.6449
    rise = k * np.sqrt(variance(result.mda_bq * 150.0)) / 150.0
    assert result.mda_bq == pytest.approx(result.decision_threshold_bq + rise, rel=1e-4)


def test_activity_command_writes_json_and_refuses_bad_input(tiny, tiny_files, tmp_path, capsys):
    import json

    from pipeline.cli import main
    from pipeline.io import open_frames
    from pipeline.results.clusters import frame_clusters, write_catalogue

    with open_frames(tiny_files["train"], tiny.io, tiny.classes) as ff:
        tables = [
            frame_clusters(
                ff.labels[i].compute(), ff.frames[i].compute() / 5.0, tiny.classes, 3.75, i
            )
            for i in range(ff.n_frames)
        ]
    catalogue = tmp_path / "cat.parquet"
    write_catalogue(pd.concat(tables, ignore_index=True), catalogue)
    out = tmp_path / "activity.json"
    args = [
        "activity",
        "--catalogue",
        str(catalogue),
        "--frames",
        str(tiny_files["train"]),
        "--out",
        str(out),
        "--set",
        "activity.efficiency=0.3",
    ]
    assert main(args) == 0
    summary = json.loads(out.read_text())
    assert summary["activity_bq"] >= 0 and len(summary["counts_per_frame"]["tritium"]) == 3
    no_model = [*args[:-2], "--model", str(tmp_path / "absent.pt")]
    assert main(no_model) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "absent.pt" in err
    missing = tmp_path / "absent.parquet"
    assert main([*args[:1], "--catalogue", str(missing), *args[3:]]) == 2
    assert "absent.parquet" in capsys.readouterr().err


def test_the_activity_reads_its_efficiency_from_the_efficiency_frames_and_their_map(cfg, tmp_path):
    """The workflow's route: `efficiency` writes frames for the data's detector, the model maps
    them (here an oracle: the truth labels), and `activity` takes the efficiency from both. It
    is the efficiency of those frames through the data chain, close to the truth-label one."""
    import json

    from pipeline.commands import settings_of
    from pipeline.io import open_frames
    from pipeline.measurement.efficiency import efficiency_from_files
    from pipeline.results.maps import write_maps
    from pipeline.simulation.simulate import simulate_file
    from tests.overrides import NO_SYSTEMATICS

    four = load_config(overrides={"activity.efficiency_frames": 4, **NO_SYSTEMATICS})
    small = cfg.model_copy(update={"detector": cfg.detector.model_copy(update={"height": 64})})
    data = simulate_file(small, tmp_path / "data.h5", 2, seed=3, progress=False)[0]
    frames = tmp_path / "efficiency.h5"
    efficiency.run(settings_of(four, "efficiency"), data, frames)
    with open_frames(frames, cfg.io, cfg.classes) as ff:
        truth = iter([ff.labels[i].compute() for i in range(ff.n_frames)])
        assert ff.n_frames == 4 and ff.frames.shape[1:] == (512, 512)
    catalogue = tmp_path / "efficiency.parquet"
    labeller = lambda charge, noise: (next(truth), None)  # noqa: E731
    write_maps(four, labeller, frames, tmp_path / "m.h5", catalogue, progress=False)
    # the data's catalogue: its truth clusters too
    with open_frames(data, cfg.io, cfg.classes) as ff:
        data_truth = iter([ff.labels[i].compute() for i in range(ff.n_frames)])
    data_catalogue = tmp_path / "data.parquet"
    label_data = lambda charge, noise: (next(data_truth), None)  # noqa: E731
    write_maps(small, label_data, data, tmp_path / "d.h5", data_catalogue, progress=False)
    out = tmp_path / "activity.json"
    activity.run(settings_of(four, "activity"), data_catalogue, data, out, frames, catalogue)
    summary = json.loads(out.read_text())
    expected = efficiency_from_files(four, frames, catalogue)
    assert summary["efficiency"] == pytest.approx(expected[0], rel=5e-4)  # JSON: 4 digits
    assert summary["efficiency_error"] == pytest.approx(expected[1], rel=5e-4)
    truth_label, error = efficiency.efficiency_with_error(cfg, n_frames=4)
    assert abs(summary["efficiency"] - truth_label) < 2 * error


def test_efficiency_frames_without_their_catalogue_are_refused(cfg, tmp_path):
    from pipeline.commands import settings_of
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="go together"):
        activity.run(settings_of(cfg, "activity"), "c.parquet", "f.h5", tmp_path / "a.json", "e.h5")
    assert not (tmp_path / "a.json").exists()
