"""The ceiling: the best per-cluster classification one can expect of a detector (the `ceiling`
stage).

Owns a reference classifier that knows what no method on real data can: the simulator's truth.
For a simulated file it reads the configuration the file was simulated with (attr
`simulator_config`: the detector, its diffusion, its sources and their rates, so the class priors
too), simulates `ceiling.frames` more frames of it with other seeds, finds their clusters as the
classical reconstruction does (seeded clustering), describes each by its charge, size, shape,
peak and its spread against the back surface's (depth from spread), labels it by the truth class
holding most of its charge, and fits gradient-boosted trees (scikit-learn's
HistGradientBoostingClassifier) to them. The file's clusters are then classified by the trees
and written as a map and catalogue like any method's. A file that was not simulated has no
ceiling: the stage refuses it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from pipeline.calibration import calibrate, conditioning
from pipeline.config import Config, ConfigError, config_to_dict, load_config
from pipeline.config.stages import CeilingSettings
from pipeline.core.components import FEATURE_COLUMNS, cluster_features
from pipeline.core.stage import Stage
from pipeline.inference.classical import seeded_clusters
from pipeline.io import open_frames
from pipeline.results.maps import FRAMES_READ, MAPPING, MapResult, write_maps
from pipeline.simulation.simulate import make_detector, simulate_frame

SEED_TAG = 0xCE11  # keeps the ceiling's training frames apart from the file's own seeds
SIMULATED = ("classes", "detector", "physics", "sources")  # what the file's simulation fixed
FEATURES = (*FEATURE_COLUMNS, "peak_e", "peak_share", "sigma", "depth_spread", "noise_e")


def describe(
    charge_e: np.ndarray, noise_e: float, config: Config
) -> tuple[np.ndarray, int, pd.DataFrame]:
    """(clusters (H, W) labelled 1..n, n, one row of FEATURES per cluster) of a calibrated frame;
    depth_spread: the cluster's sigma over the back surface's (1: as diffused as charge from the
    back, toward 0: made near the collection side)."""
    components, n = seeded_clusters(charge_e, noise_e, config.classical)
    table = cluster_features(components, n, charge_e, config.physics.pair_energy_ev)
    if n == 0:
        return components, 0, pd.DataFrame({name: pd.Series(dtype=float) for name in FEATURES})
    index = np.arange(1, n + 1)
    peak = np.asarray(ndimage.maximum(charge_e, components, index), dtype=float)
    total = np.maximum(table["energy_kev"].to_numpy() * 1000 / config.physics.pair_energy_ev, 1e-9)
    sigma = np.sqrt((table["sigma_x"] ** 2 + table["sigma_y"] ** 2) / 2)
    back = conditioning.back_sigma_px(config.detector, config.physics)
    table["peak_e"] = peak
    table["peak_share"] = peak / total
    table["sigma"] = sigma
    table["depth_spread"] = sigma / max(back, 1e-6)
    table["noise_e"] = noise_e
    return components, n, table[list(FEATURES)]


def truth_of(
    components: np.ndarray, n: int, labels: np.ndarray, charge_e: np.ndarray, classes: int
) -> np.ndarray:
    """(n,) the truth class holding most of each cluster's positive charge (0: noise, a hot
    pixel: charge no source made)."""
    mask = components > 0
    ids = components[mask].astype(np.int64) - 1
    weight = np.clip(charge_e[mask], 0, None) + 1e-6
    votes = np.bincount(
        ids * classes + labels[mask].astype(np.int64), weights=weight, minlength=n * classes
    )
    return votes.reshape(n, classes).argmax(axis=1)


def training_clusters(config: Config, frames: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Features and truth classes of the clusters of `frames` frames simulated with `config`."""
    detector = make_detector(config.detector)
    tables, truths = [], []
    for index in range(frames):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SEED_TAG, index)))
        frame = simulate_frame(config, detector, rng)
        charge, cal = calibrate.calibrate_frame(
            frame.adu, config.detector.gain_adu_per_e, config.calibrate
        )
        components, n, table = describe(charge, cal.noise_e, config)
        if n:
            tables.append(table)
            truths.append(truth_of(components, n, frame.labels, charge, len(config.classes)))
    if not tables:
        raise ConfigError(f"ceiling: {frames} simulated frames hold no cluster to learn from")
    return pd.concat(tables, ignore_index=True), np.concatenate(truths)


def fit(
    features: pd.DataFrame, truth: np.ndarray, config: Config
) -> HistGradientBoostingClassifier:
    """Gradient-boosted trees on the clusters, with the simulator's class frequencies (no
    reweighting: the truth priors are what the ceiling knows)."""
    cfg = config.ceiling
    if len(np.unique(truth)) < 2:
        raise ConfigError(
            f"ceiling: the {cfg.frames} simulated frames hold clusters of one class only "
            f"({config.classes[int(truth[0])]}); raise ceiling.frames"
        )
    trees = HistGradientBoostingClassifier(
        max_iter=cfg.max_iter, learning_rate=cfg.learning_rate, random_state=cfg.seed
    )
    with threadpool_limits(1):  # OpenMP threads only wait on each other for ~1000 clusters
        return trees.fit(features.to_numpy(dtype=float), truth)


def simulated_config(path: str | Path, config: CeilingSettings) -> tuple[Config, int]:
    """The configuration `path` was simulated with (its detector, physics and sources; this
    run's calibration, clustering and ceiling settings), and its seed; ConfigError for a file
    that was not simulated (it states no `simulator_config`)."""
    with open_frames(path, config.io) as opened:
        attrs = opened.attrs
    text = attrs.get("simulator_config")
    if text is None:
        raise ConfigError(
            f"{path}: no attr 'simulator_config': the ceiling needs the simulator's truth, and "
            f"this file was not simulated (attrs: {sorted(attrs)})"
        )
    simulated = json.loads(text)
    merged = config_to_dict(load_config())
    merged.update({k: simulated[k] for k in SIMULATED if k in simulated})
    for section in ("io", "calibrate", "classical", "ceiling"):
        merged[section] = getattr(config, section).model_dump()
    return Config.model_validate(merged), int(attrs.get("simulator_seed", 0))


def ceiling_file(
    config: CeilingSettings,
    input_path: str | Path,
    output_path: str | Path,
    catalogue_path: str | Path | None = None,
    progress: bool = True,
) -> MapResult:
    """Train the trees on frames simulated like `input_path`, then map it with them."""
    simulated, seed = simulated_config(input_path, config)
    features, truth = training_clusters(simulated, config.ceiling.frames, seed)
    trees = fit(features, truth, simulated)

    def label(charge: np.ndarray, noise_e: float) -> tuple[np.ndarray, None]:
        components, n, table = describe(charge, noise_e, simulated)
        lut = np.zeros(n + 1, dtype=np.uint8)
        if n:
            with threadpool_limits(1):
                lut[1:] = trees.predict(table.to_numpy(dtype=float))
        return lut[components], None

    return write_maps(
        config, label, input_path, output_path, catalogue_path, progress=progress, desc="ceiling"
    )


def run(
    settings: CeilingSettings,
    input: str | Path,
    output: str | Path,
    catalogue: str | Path | None = None,
) -> str:
    """The `ceiling` stage: `ceiling_file`, and what it wrote."""
    return str(ceiling_file(settings, input, output, catalogue))


STAGE = Stage(
    "ceiling",
    "the ceiling: gradient-boosted trees that know the simulator's truth, on a simulated file",
    f"Reads: {FRAMES_READ}, simulated (attr simulator_config). Writes: a map file in the same "
    "format as `infer` and, with --catalogue, the cluster catalogue.",
    run,
    CeilingSettings,
    (*MAPPING,),
)
