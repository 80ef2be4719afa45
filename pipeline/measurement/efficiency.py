"""Tritium detection efficiency (used by the `activity` stage).

Owns measuring the fraction of tritium decays the whole chain recovers: frames simulated for the
data's detector (denser in tritium, still sparse), labelled by the labeller that made the data's
catalogue, catalogued, and put through the same spectral fit as the data. The labeller is either
the simulator's truth (an upper bound, and the check of the fit itself) or the trained model run
through calibration, sliding-window inference and the component vote exactly as `infer` runs it,
so the efficiency absorbs what the model loses: missed betas, betas labelled as other classes,
charge lost below threshold, merged clusters.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from pipeline.config import Config
from pipeline.config.stages import EfficiencySettings
from pipeline.core.errors import EfficiencyError
from pipeline.core.stage import FRAME_SUFFIXES, INPUT, OUTPUT, Flag, Stage, file_flag
from pipeline.io import open_frames
from pipeline.measurement.spectrum import ACTIVITY_COLUMNS, fit_energies, fit_spectrum
from pipeline.measurement.variants import parse_variant, varied
from pipeline.results.clusters import frame_clusters
from pipeline.simulation import simulate

FRAME_PX = 512  # edge of the (small) simulated frames of the efficiency measurement
MAX_EVENTS_PER_FRAME = 2000  # ~13x the default efficiency frame; busier frames would not fit memory
TRITIUM_PER_PIXEL = 4e-4  # betas entering per pixel in efficiency frames (~0.6 % occupancy)
REACH_DECAYS = 4000  # decays transported to estimate a layer's share that reaches the CCD
CLASSICAL = "classical"  # the method of a catalogue no network made (also activity.model)


def efficiency_config(config: EfficiencySettings | Config) -> EfficiencySettings | Config:
    """The config of the efficiency frames: at most FRAME_PX square, muons, electrons and alphas
    at the configured density per pixel, tritium raised to at least TRITIUM_PER_PIXEL betas
    entering the CCD (still sparse; a layer's decays raised by the share that reaches it, so its
    frames hold as many betas as a surface source's) and X-rays kept in their ratio to
    tritium."""
    det = config.detector
    height, width = min(det.height, FRAME_PX), min(det.width, FRAME_PX)
    area = height * width / (det.height * det.width)
    sections = config.sources.sections()
    scaled = {name: section.rate_per_frame * area for name, section in sections.items()}
    entering = TRITIUM_PER_PIXEL * height * width
    tritium = max(scaled["tritium"], entering / reaching_share(config))
    boost = tritium / scaled["tritium"] if scaled["tritium"] > 0 else 1.0
    scaled["tritium"], scaled["xray"] = tritium, scaled["xray"] * boost
    sources = {
        name: sections[name].model_copy(update={"rate_per_frame": rate})
        for name, rate in scaled.items()
    }
    detector = det.model_copy(update={"height": height, "width": width})
    return config.model_copy(
        update={"detector": detector, "sources": config.sources.model_copy(update=sources)}
    )


_SHARES: dict[tuple[str, ...], float] = {}


def reaching_share(config: EfficiencySettings | Config) -> float:
    """The share of the sample's simulated decays whose beta deposits in the CCD: 1 for a
    surface source; for a layer, from REACH_DECAYS decays transported (fixed seed), once per
    (source, detector, physics)."""
    tritium = config.sources.tritium
    if tritium.sample.kind == "surface":
        return 1.0
    key = tuple(m.model_dump_json() for m in (tritium, config.detector, config.physics))
    if key not in _SHARES:
        from pipeline.simulation.physics import tritium_segments

        rng = np.random.default_rng(0)
        seg = tritium_segments(REACH_DECAYS, tritium, config.detector, config.physics, rng)
        _SHARES[key] = max(len(np.unique(seg.event)) / REACH_DECAYS, 1.0 / REACH_DECAYS)
    return _SHARES[key]


def ratio(
    config: EfficiencySettings | Config, catalogue: pd.DataFrame, decays: int
) -> tuple[float, float]:
    """(efficiency, its error): the fitted tritium yield of `catalogue` over the `decays`."""
    fit = fit_spectrum(fit_energies(catalogue), config)
    if decays == 0 or fit.tritium <= 0:
        raise EfficiencyError(
            f"efficiency: {decays} simulated tritium decays, {fit.tritium:.3g} fitted; set "
            "activity.efficiency or use a model that finds tritium"
        )
    return fit.tritium / decays, fit.tritium_error / decays


def efficiency_with_error(
    config: EfficiencySettings | Config, n_frames: int = 4, label_fn: Callable | None = None
) -> tuple[float, float]:
    """Efficiency with truth labels (or `label_fn(SimulatedFrame) -> labels`) and its error (the
    fit's tritium error over the number of decays)."""
    return ratio(config, *simulated_catalogue(config, n_frames, label_fn))


def simulated_catalogue(
    config: EfficiencySettings | Config, n_frames: int, label_fn: Callable | None = None
) -> tuple[pd.DataFrame, int]:
    """(catalogue, tritium decays) of `n_frames` efficiency frames of `config`'s detector,
    labelled by the truth (or `label_fn(SimulatedFrame) -> labels`); seeds `activity.seed`
    and the frame index, so two detectors see the same decays. The decays are the tritium
    events drawn, whether or not their beta reached the silicon (from a layer most do not).
    Clusters take the truth charge (`signal_e`)."""
    sim = efficiency_config(config)
    detector = simulate.make_detector(sim.detector)
    tritium_class = sim.classes.index("tritium")
    tables, decays = [], 0
    for index in range(n_frames):
        rng = np.random.default_rng(np.random.SeedSequence(sim.activity.seed, spawn_key=(index,)))
        frame = simulate.simulate_frame(sim, detector, rng)
        labels = frame.labels if label_fn is None else label_fn(frame)
        tables.append(
            frame_clusters(labels, frame.signal_e, sim.classes, sim.physics.pair_energy_ev, index)
        )
        decays += int(frame.drawn[tritium_class])
    return pd.concat(tables, ignore_index=True), decays


def file_attrs(config: EfficiencySettings | Config, path: str | Path) -> dict[str, Any]:
    """The attributes a frame file states (its readout noise, gain, pixel size, exposure...;
    the amplifiers' medians), without the readers' defaults and without reading frames."""
    with open_frames(path, config.io.model_copy(update={"check_finite": False})) as ff:
        return ff.detector_attrs


def simulate_efficiency_frames(
    config: EfficiencySettings | Config,
    data_attrs: dict[str, Any],
    out: str | Path,
    variant: tuple[str, float] | None = None,
) -> list[Path]:
    """The efficiency frames of the detector of the data (the readout noise its file declares,
    `data_attrs`; the config's detector otherwise): `activity.efficiency_frames` frames, seed
    `activity.seed`, written to `out` with their truth and event tables; a `variant` (term,
    value) of the systematics is recorded in attr `efficiency_variant`."""
    sim = efficiency_config(detector_of(config, data_attrs))
    rates = {name: section.rate_per_frame for name, section in sim.sources.sections().items()}
    rates["tritium"] *= reaching_share(sim)  # a layer's decays that never reach deposit nothing
    events = sum(rates.values())
    if events > MAX_EVENTS_PER_FRAME:
        exposure = data_attrs.get("exposure_s", config.detector.exposure_s)
        raise EfficiencyError(
            f"an exposure of {exposure:g} s per frame (the data's exposure_s; the config's rates "
            f"are per {config.detector.exposure_s:g} s) makes {events:,.0f} events (a layer's "
            f"betas that enter) per {FRAME_PX}^2 efficiency frame, over {MAX_EVENTS_PER_FRAME}: "
            "frames that busy cannot be simulated here; give activity.efficiency"
        )
    cfg = config.activity
    extra = {VARIANT_ATTR: json.dumps(list(variant))} if variant is not None else None
    return simulate.simulate_file(
        sim, Path(out), cfg.efficiency_frames, cfg.seed, progress=False, extra_attrs=extra
    )


VARIANT_ATTR = "efficiency_variant"  # attr of a variant's efficiency frames: [term, value]


def variant_of(frames: str | Path) -> tuple[str, float]:
    """(term, value) of the variant efficiency frames `frames` (attr `efficiency_variant`)."""
    try:
        with h5py.File(frames, "r") as f:
            name, value = json.loads(f.attrs[VARIANT_ATTR])
        return str(name), float(value)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise EfficiencyError(
            f"{frames}: not the efficiency frames of a variant of the systematics (no attr "
            f"{VARIANT_ATTR} [term, value]: {exc!r}); make them with `efficiency --variant`"
        ) from None


def efficiency_from_files(
    config: EfficiencySettings | Config, frames: str | Path, catalogue: str | Path
) -> tuple[float, float]:
    """(efficiency, its error) of the efficiency frames `frames` (the decays they drew, attr
    `drawn_events`) from the catalogue the model made of them (`catalogue`), through the same
    spectral fit as the data."""
    return ratio(config, *files_catalogue(frames, catalogue))


def files_catalogue(frames: str | Path, catalogue: str | Path) -> tuple[pd.DataFrame, int]:
    """(catalogue, tritium decays) of efficiency frames and the catalogue a method made."""
    from pipeline.results.clusters import read_catalogue

    return read_catalogue(catalogue, ACTIVITY_COLUMNS), drawn_decays(frames)


def drawn_decays(frames: str | Path) -> int:
    """The tritium decays a simulated file drew (its attr `drawn_events`), betas that never
    reached the silicon included."""
    try:
        with h5py.File(frames, "r") as f:
            drawn = json.loads(f.attrs[simulate.DRAWN_ATTR])
        return int(drawn["tritium"])
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise EfficiencyError(
            f"{frames}: not efficiency frames of this version (no attr "
            f"{simulate.DRAWN_ATTR} with the tritium decays drawn: {exc!r}); make them again"
        ) from None


def model_efficiency_with_error(
    config: EfficiencySettings | Config,
    model: str | Path,
    data_attrs: dict[str, Any],
    progress: bool = False,
) -> tuple[float, float]:
    """Efficiency of the trained `model` and its error (`model_catalogue`, through the data's
    spectral fit)."""
    return ratio(config, *model_catalogue(config, model, data_attrs, progress))


def model_catalogue(
    config: EfficiencySettings | Config,
    model: str | Path,
    data_attrs: dict[str, Any],
    progress: bool = False,
) -> tuple[pd.DataFrame, int]:
    """(catalogue, tritium decays) of the trained `model` (or, for `classical`, the classical
    reconstruction), all in a temporary folder: the efficiency frames of the data's detector,
    calibrated, mapped (with `config.infer`'s or `config.classical`'s settings) and
    catalogued with the measured charge, exactly like the data."""
    with tempfile.TemporaryDirectory(prefix="efficiency-") as tmp:
        frames, catalogue = Path(tmp) / "frames.h5", Path(tmp) / "catalogue.parquet"
        simulate_efficiency_frames(config, data_attrs, frames)
        map_path = Path(tmp) / "map.h5"
        if str(model) == CLASSICAL:
            from pipeline.config.stages import ClassicalSettings
            from pipeline.inference.classical import classical_file

            fields = {name: getattr(config, name) for name in ClassicalSettings.model_fields}
            classical_file(
                ClassicalSettings(**fields), frames, map_path, catalogue, progress=progress
            )
            return files_catalogue(frames, catalogue)
        from pipeline.inference.infer import infer_file  # torch only when a model is used
        from pipeline.network.shipped import resolve_checkpoint

        checkpoint = resolve_checkpoint(model, config.release.dir)
        inferred = config.model_copy(
            update={"infer": config.infer.model_copy(update={"probabilities": False})}
        )
        infer_file(inferred, frames, map_path, catalogue, progress=progress, model=checkpoint)
        return files_catalogue(frames, catalogue)


DETECTOR_ATTRS = ("readout_noise_e", "gain_adu_per_e", "pixel_size_um", "thickness_um")


def detector_of(
    config: EfficiencySettings | Config, attrs: dict[str, Any]
) -> EfficiencySettings | Config:
    """The config's detector with what the data's file states of its own (`attrs`: readout
    noise, gain, pixel pitch, thickness, exposure; `file_attrs`): the efficiency frames are
    simulated for the detector of the data. A readout noise of 0 (a writer's placeholder) is
    not taken. The sources' rates and the dark charge are per frame of `detector.exposure_s`:
    a longer exposure scales them, so the efficiency frames are as busy as the data's."""
    known = {k: float(attrs[k]) for k in (*DETECTOR_ATTRS, "exposure_s") if attrs.get(k)}
    if not known:
        return config
    scale = known.get("exposure_s", config.detector.exposure_s) / config.detector.exposure_s
    known["dark_current_e"] = config.detector.dark_current_e * scale
    src = config.sources
    sources = {
        name: section.model_copy(update={"rate_per_frame": section.rate_per_frame * scale})
        for name, section in src.sections().items()
    }
    return config.model_copy(
        update={
            "detector": config.detector.model_copy(update=known),
            "sources": src.model_copy(update=sources),
        }
    )


def efficiency_for(
    config: EfficiencySettings | Config,
    mapped: tuple[str | Path, str | Path] | None,
    measured: Callable[[], tuple[float, float]],
) -> tuple[float, float, str]:
    """The one entry point of the activity's efficiency: (efficiency, its error, where it came
    from in words), by the first route that applies: the config's (`activity.efficiency`, a
    calibration source); else `measured()` (pipeline/measurement/systematics.py
    `EfficiencyModel`), from the efficiency frames and the method's catalogue of them
    (`mapped`: the workflow's), or frames simulated here for the data's detector and mapped by
    `activity.model`, or, without a model, their truth labels."""
    cfg = config.activity
    if cfg.efficiency is not None:
        route = "given (activity.efficiency; e.g. a calibration with a source of known activity)"
        return cfg.efficiency, cfg.efficiency_error, route
    if mapped is not None:
        route = f"the method's catalogue {mapped[1]} of the efficiency frames {mapped[0]}"
    elif cfg.model is not None:
        route = f"frames simulated here for the data's detector, mapped by {cfg.model}"
    else:
        route = (
            "the truth labels of frames simulated for the data's detector (activity.model is "
            "null: the method's own losses are not in it)"
        )
    return (*measured(), route)


def run(
    settings: EfficiencySettings, frames: str | Path, out: str | Path, variant: str | None = None
) -> str:
    """The `efficiency` stage: the efficiency frames of the detector of `frames`, into `out`
    (the workflow maps them with the model, and `activity` reads both); with `variant`
    (TERM-low / TERM-high of `activity.systematics`), that term at that end of its range."""
    key = parse_variant(settings, variant) if variant is not None else None
    config = varied(settings, *key) if key is not None else settings
    paths = simulate_efficiency_frames(config, file_attrs(settings, frames), out, key)
    said = f" ({key[0]} = {key[1]:g})" if key is not None else ""
    return "\n".join(f"wrote {path}{said}" for path in paths)


STAGE = Stage(
    "efficiency",
    "frames simulated for the detector of a frame file, to measure the efficiency on",
    "Reads: a frame file (its declared readout noise) and the config's detector and "
    "sources. Writes: an HDF5 frame file with truth (activity.efficiency_frames frames); "
    "map it with `infer` (or `classical`) and give both to `activity`. With --variant, one "
    "term of activity.systematics at one end of its range: give those frames and their "
    "catalogue to `activity --variants/--variant-catalogues`.",
    run,
    EfficiencySettings,
    (
        file_flag("--frames", "the data's frame file", INPUT),
        file_flag("--out", "output HDF5 path (.h5)", OUTPUT, suffixes=FRAME_SUFFIXES),
        Flag(
            "--variant",
            "TERM-low / TERM-high of activity.systematics: that term at that end of its range",
            arg="variant",
        ),
    ),
)
