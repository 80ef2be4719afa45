"""Streamed training data: tiles simulated on the fly, each from a detector drawn at random.

Owns domain randomisation (`draw_config`: the detector, its defects, diffusion, thickness, the
back-surface layer (thickness and collection profile), the sample's K-40/U/Th betas entering
from the back, X-ray entry, Compton electrons, muon angles and occupancy, thin CCDs, thick alpha
sources, readout artefacts and light (`pipeline.learning.stream_artefacts`), each drawn from
the ranges of the config's `stream` section around its `detector` and `sources`, narrowed toward
them for fine-tuning by `narrowed_stream`) and the
`StreamDataset` that turns a draw number into a network input and its labels: simulate a frame of
one tile, calibrate it as real data are (row pedestal, gain, measured noise), augment, normalise.
A draw is seeded by (seed, draw number) alone, so a run is the same with any number of data-loader
workers, and a resumed run sees exactly the tiles it would have seen.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from pipeline.calibration import calibrate, conditioning
from pipeline.config import Config, StreamConfig, config_to_dict
from pipeline.config.stages import TrainSettings
from pipeline.learning import augment, stream_artefacts
from pipeline.learning.tiles import network_pair
from pipeline.simulation.simulate import make_detector, simulate_frame

STREAM_TAG = 0x5EED  # keeps stream seeds apart from the file tiles' seeds of the same draw
LOG_RANGES = (
    "readout_noise_e",
    "gain_adu_per_e",
    "occupancy",
    "backside_pcc_shape",
)  # spans of orders of magnitude


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], log: bool = False) -> float:
    low, high = bounds
    if log and low > 0:
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return float(rng.uniform(low, high))


def detector_values(config: TrainSettings | Config) -> dict[str, float]:
    """The configured detector's value of each randomised quantity: where `stream.narrow` < 1
    shrinks the ranges to."""
    det, src = config.detector, config.sources
    return {
        "readout_noise_e": det.readout_noise_e,
        "gain_adu_per_e": det.gain_adu_per_e,
        "pedestal_row_drift_adu": det.pedestal_row_drift_adu,
        "dark_current_e": det.dark_current_e,
        "diffusion_scale": 1.0,
        "thickness_um": det.thickness_um,
        "backside_pcc_um": det.backside_pcc_um,
        "backside_pcc_shape": det.backside_pcc_shape,
        "back_beta_fraction": src.electron.back_fraction,
        "hot_pixel_fraction": det.hot_pixel_fraction,
        "hot_columns_per_1k": det.hot_columns * 1024 / det.width,
        "occupancy": 1.0,
        "muon_cos_power": src.muon.cos_power,
    }


def _shrink(bounds: tuple[float, float], centre: float, s: float, log: bool) -> tuple[float, float]:
    """[low, high], widened to hold `centre`, then each end moved toward it: x -> c + s (x - c)
    (in log x when the range is drawn log-uniform)."""
    low, high = min(bounds[0], centre), max(bounds[1], centre)
    if log and low > 0:
        c = math.log(centre)
        return (math.exp(c + s * (math.log(low) - c)), math.exp(c + s * (math.log(high) - c)))
    return (centre + s * (low - centre), centre + s * (high - centre))


def narrowed_stream(config: TrainSettings | Config) -> StreamConfig:
    """`config.stream` with its ranges, X-ray entry weights and Compton share shrunk toward the
    configured detector and sources by `stream.narrow` (1: unchanged; toward 0: that detector)."""
    cfg, s = config.stream, config.stream.narrow
    if s == 1:
        return cfg
    update: dict[str, Any] = {
        name: _shrink(getattr(cfg, name), centre, s, name in LOG_RANGES)
        for name, centre in detector_values(config).items()
    }
    total = sum(cfg.xray_entry.values())
    entry = config.sources.xray.entry
    update["xray_entry"] = {
        side: s * w / total + (1 - s) * (side == entry)
        for side, w in {**cfg.xray_entry, entry: cfg.xray_entry.get(entry, 0.0)}.items()
    }
    update["compton_fraction"] = (
        s * cfg.compton_fraction + (1 - s) * config.sources.electron.compton_fraction
    )
    return cfg.model_copy(update=update)


def draw_parameters(cfg: StreamConfig, rng: np.random.Generator) -> dict[str, Any]:
    """One detector and source set: a value from each range, an X-ray entry side."""
    values: dict[str, Any] = {}
    for name, bounds in cfg:
        if isinstance(bounds, tuple):
            values[name] = _uniform(rng, bounds, log=name in LOG_RANGES)
    sides = sorted(cfg.xray_entry)
    weights = np.array([cfg.xray_entry[s] for s in sides], dtype=float)
    values["xray_entry"] = sides[int(rng.choice(len(sides), p=weights / weights.sum()))]
    values["defect_seed"] = int(rng.integers(2**31))
    values["thin"] = bool(rng.random() < cfg.thin_share)
    if values["thin"]:  # a thin CCD: thickness log-uniform in its own range
        values["thickness_um"] = _uniform(rng, cfg.thin_thickness_um, log=True)
    return values


def draw_config(
    config: TrainSettings | Config, size: int, rng: np.random.Generator
) -> TrainSettings | Config:
    """The config of one streamed tile: a size x size detector drawn from `config.stream`, with
    source rates scaled from the configured frame area to the tile and by the occupancy."""
    cfg = config.stream
    drawn = draw_parameters(cfg, rng)
    det = config.detector
    area = size * size / (det.height * det.width)
    alpha_source = "thick" if rng.random() < cfg.alpha_thick_share else config.sources.alpha.source
    artefacts = stream_artefacts.draw_artefacts(config, size, drawn["gain_adu_per_e"], rng)
    detector = det.model_copy(
        update={
            "height": size,
            "width": size,
            "readout_noise_e": drawn["readout_noise_e"],
            "gain_adu_per_e": drawn["gain_adu_per_e"],
            "pedestal_row_drift_adu": drawn["pedestal_row_drift_adu"],
            "dark_current_e": drawn["dark_current_e"],
            "thickness_um": drawn["thickness_um"],
            "backside_pcc_um": drawn["backside_pcc_um"],
            "backside_pcc_shape": drawn["backside_pcc_shape"],
            "hot_pixel_fraction": drawn["hot_pixel_fraction"],
            "hot_columns": int(rng.poisson(drawn["hot_columns_per_1k"] * size / 1024)),
            "defect_seed": drawn["defect_seed"],
            "frame_dtype": "float32",
        }
    )
    physics = config.physics.model_copy(  # sigma^2 = -A ln|1 - b z|: sigma x s is A x s^2
        update={"diffusion_a_um2": config.physics.diffusion_a_um2 * drawn["diffusion_scale"] ** 2}
    )
    randomised = {  # the physical sources' parameters the stream draws too
        "xray": {"entry": drawn["xray_entry"]},
        "muon": {"cos_power": drawn["muon_cos_power"]},
        "alpha": {"source": alpha_source},
        "electron": {
            "compton_fraction": cfg.compton_fraction,
            "back_fraction": drawn["back_beta_fraction"]
            if config.sources.electron.back_betas
            else 0.0,
        },
    }
    sources = {}
    for name, source in config.sources.sections().items():  # added sources too
        scale = area * drawn["occupancy"] * cfg.rate_scale.get(name, 1.0)
        update: dict[str, Any] = {"rate_per_frame": source.rate_per_frame * scale}
        sources[name] = source.model_copy(update=update | randomised.get(name, {}))
    return config.model_copy(
        update={
            "detector": detector,
            "physics": physics,
            "sources": config.sources.model_copy(update=sources),
            "artefacts": artefacts,
        }
    )


def stream_hash_text(config: TrainSettings | Config) -> str:
    """What the stream's tiles depend on, as text for the training data hash."""
    sections = config_to_dict(config)
    keys = (
        "stream",
        "detector",
        "physics",
        "sources",
        "artefacts",
        "tiles",
        "calibrate",
        "classes",
    )
    return json.dumps({k: sections[k] for k in keys}, sort_keys=True)


class StreamDataset(Dataset):
    """Network input (C, S, S) float32 and labels (S, S) int64 of streamed tile `draw`.

    Items are draw numbers (or (index, draw) pairs from a tile sampler, the index unused)."""

    def __init__(self, config: TrainSettings | Config, seed: int) -> None:
        self.config = config.model_copy(update={"stream": narrowed_stream(config)})
        self.seed = seed
        self.size = config.tiles.size
        self.transform = augment.build_augmentation(config.augment)

    def __len__(self) -> int:
        return 2**62  # endless: the sampler decides how many draws an epoch takes

    def tile(self, draw: int) -> tuple[np.ndarray, np.ndarray, float, conditioning.Context]:
        """(charge in electrons, labels, measured noise, the drawn detector's descriptors) of
        draw `draw`, before augmentation."""
        rng = np.random.default_rng([self.seed, STREAM_TAG, draw])
        config = draw_config(self.config, self.size, rng)
        frame = simulate_frame(config, make_detector(config.detector), rng)
        gain = config.detector.gain_adu_per_e  # known, as from a file attribute or an Fe-55 run
        charge, cal = calibrate.calibrate_frame(frame.adu, gain, self.config.calibrate)
        context = conditioning.from_config(config.detector, config.physics)
        return charge, frame.labels.astype(np.uint8), cal.noise_e, context

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        draw = int(item[1] if isinstance(item, tuple) else item)
        charge, labels, noise, context = self.tile(draw)
        seed = int(np.random.default_rng([self.seed, STREAM_TAG, draw, 1]).integers(2**31))
        return network_pair(self.config, self.transform, charge, labels, noise, seed, context)


class MixedDataset(Dataset):
    """File tiles and streamed tiles: draw d comes from the stream with probability `weight`
    (decided by (seed, d) alone), else from the file tile the sampler picked."""

    def __init__(self, files: Dataset, stream: StreamDataset, weight: float, seed: int) -> None:
        self.files, self.stream, self.weight, self.seed = files, stream, weight, seed

    def __len__(self) -> int:
        return len(self.files)  # type: ignore[arg-type]

    def from_stream(self, draw: int) -> bool:
        return bool(np.random.default_rng([self.seed, STREAM_TAG, draw, 2]).random() < self.weight)

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.stream[item] if self.from_stream(item[1]) else self.files[item]


class StreamSampler(Sampler):
    """Draw numbers epoch x draws + k, split across DDP ranks (rank r takes k = r, r + world...)."""

    def __init__(self, draws_per_epoch: int, rank: int = 0, world_size: int = 1) -> None:
        self.draws, self.rank, self.world, self.epoch = draws_per_epoch, rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        first = self.epoch * self.draws
        for k in range(self.rank, self.draws, self.world):
            yield 0, first + k

    def __len__(self) -> int:
        return len(range(self.rank, self.draws, self.world))
