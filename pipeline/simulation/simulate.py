"""CCD frame simulator with per-pixel truth (the `simulate` stage).

Owns turning the sources of `pipeline.simulation.physics` into detector frames: their charge in
pixels (by `pipeline.simulation.charge`: pairs, partial collection, diffusion), full-well
saturation with blooming along columns, dark current, hot pixels and columns fixed per detector,
readout artefacts and light (`pipeline.simulation.artefacts`), readout noise, a drifting
pedestal, the gain and the ADC's saturation; and the truth of the frame format contract
(`labels`, `instances`, `events`). The same seed gives bit-identical files.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.config import ConfigError, DetectorConfig, PhysicsConfig, config_to_dict
from pipeline.config.stages import (
    SimulateSettings,
    SimulationFileSections,
    SimulationSections,
)
from pipeline.core.errors import printable
from pipeline.core.stage import FRAME_SUFFIXES, OUTPUT, Beside, Stage, file_flag, key_flag
from pipeline.io import FrameWriter
from pipeline.simulation import artefacts, physics, sources
from pipeline.simulation.charge import bloom, collect


@dataclass(frozen=True)
class Detector:
    """What stays fixed for a detector across the frames of a run."""

    dark_map_e: (
        np.ndarray
    )  # (H, W) mean dark charge per pixel per frame, hot pixels/columns included
    hot_pixels: np.ndarray  # (H, W) bool
    hot_columns: np.ndarray  # column indices


DRAWN_ATTR = "drawn_events"  # attr: events drawn per class name, a deposit or not (JSON)


@dataclass
class SimulatedFrame:
    adu: np.ndarray  # (H, W) raw frame in ADU
    signal_e: np.ndarray  # (H, W) collected signal charge (after blooming), electrons
    labels: np.ndarray  # (H, W) uint8
    instances: np.ndarray  # (H, W) int32
    events: dict[str, np.ndarray]
    n_ids: int  # instance ids this frame used (events without deposit too), to keep ids unique
    drawn: np.ndarray  # events drawn per class index, with a deposit or not (tritium: decays)


def make_detector(det: DetectorConfig) -> Detector:
    rng = np.random.default_rng(det.defect_seed)
    hot = rng.random((det.height, det.width)) < det.hot_pixel_fraction
    columns = rng.choice(det.width, size=min(det.hot_columns, det.width), replace=False)
    dark = np.full((det.height, det.width), det.dark_current_e)
    dark[hot] += det.hot_pixel_charge_e
    dark[:, columns] += det.hot_column_charge_e
    return Detector(dark, hot, np.sort(columns))


# ---------------------------------------------------------------- saturation


def _winners(event: np.ndarray, pixel: np.ndarray, charge: np.ndarray):
    """Per pixel with charge: the event that put the most charge there."""
    order = np.lexsort((-charge, pixel))
    first = np.ones(len(order), bool)
    first[1:] = pixel[order][1:] != pixel[order][:-1]
    return pixel[order][first], event[order][first]


def apply_blooming(event, pixel, charge, det: DetectorConfig):
    """Bloom the frame's signal; charge removed from saturated pixels goes to the event that
    dominated the nearest saturated pixel of the same column."""
    npix = det.height * det.width
    before = np.bincount(pixel, charge, minlength=npix).reshape(det.height, det.width)
    if before.max() <= det.full_well_e:
        return event, pixel, charge
    after = bloom(before, det.full_well_e)
    scale = np.divide(after, before, out=np.ones_like(after), where=before > after)
    charge = charge * scale.ravel()[pixel]
    gained_rows, gained_cols = np.nonzero(after > before + 1e-9)
    win_pixel, win_event = _winners(event, pixel, charge)
    owner_of = dict(zip(win_pixel.tolist(), win_event.tolist(), strict=True))
    new_event = np.empty(len(gained_rows), np.int64)
    for i, (r, c) in enumerate(zip(gained_rows, gained_cols, strict=True)):
        sources = np.nonzero(before[:, c] > det.full_well_e)[0]
        src = sources[np.argmin(np.abs(sources - r))]
        new_event[i] = owner_of[src * det.width + c]
    gained = (after - before)[gained_rows, gained_cols]
    gained_pixel = gained_rows.astype(np.int64) * det.width + gained_cols
    return (
        np.concatenate([event, new_event]),
        np.concatenate([pixel, gained_pixel]),
        np.concatenate([charge, gained]),
    )


def truth_maps(
    event, pixel, charge, event_class, event_id, det: DetectorConfig, phys: PhysicsConfig
):
    """Labels and instances by the contract's convention: the class of the event with the most
    charge in the pixel, if that class's charge there is >= max(2 x noise, 1 e-)."""
    labels = np.zeros(det.height * det.width, np.uint8)
    instances = np.zeros(det.height * det.width, np.int32)
    if len(pixel):
        win_pixel, win_event = _winners(event, pixel, charge)
        n_classes = int(event_class.max()) + 1
        class_key = pixel * n_classes + event_class[event]
        keys, inverse = np.unique(class_key, return_inverse=True)
        class_charge = np.bincount(inverse, charge)
        win_class = event_class[win_event]
        win_charge = class_charge[np.searchsorted(keys, win_pixel * n_classes + win_class)]
        threshold = max(phys.label_noise_multiple * det.readout_noise_e, phys.label_min_charge_e)
        ok = win_charge >= threshold
        labels[win_pixel[ok]] = win_class[ok]
        instances[win_pixel[ok]] = event_id[win_event[ok]]
    shape = (det.height, det.width)
    return labels.reshape(shape), instances.reshape(shape)


# ---------------------------------------------------------------- frames


def sample_events(
    config: SimulationSections, rng: np.random.Generator
) -> tuple[physics.Segments, np.ndarray]:
    """Poisson numbers of each source's events; their segments and class indices. Each source
    draws from its own stream spawned from `rng` (which it does not advance), so a change to
    one source's physics (a systematic variant) leaves every other source's events, and its
    own event counts and starting points, as they were."""
    parts: list[physics.Segments] = []
    classes: list[int] = []
    configured = sources.configured(config)
    for (source, section, class_name), stream in zip(
        configured, rng.spawn(len(configured)), strict=True
    ):
        n = int(stream.poisson(section.rate_per_frame))
        parts.append(source.draw(n, section, config, stream).shifted(len(classes)))
        classes += [config.classes.index(class_name)] * n
    return physics.Segments.concat(parts), np.array(classes, dtype=np.int64)


def event_table(
    seg: physics.Segments, event_class, event_id, pixel_size_um
) -> dict[str, np.ndarray]:
    """One row per event that deposited energy: energy-weighted mean position and depth."""
    n = len(event_class)
    energy = np.bincount(seg.event, seg.energy_kev, minlength=n)
    mid = (seg.start + seg.end) / 2
    weighted = [np.bincount(seg.event, seg.energy_kev * mid[:, i], minlength=n) for i in range(3)]
    hit = energy > 0
    mean = [w[hit] / energy[hit] for w in weighted]
    return {
        "frame": np.zeros(int(hit.sum()), np.int32),
        "instance": event_id[hit].astype(np.int32),
        "class": event_class[hit].astype(np.uint8),
        "energy_kev": energy[hit],
        "x": mean[0] / pixel_size_um - 0.5,  # pixel units, pixel centres at integers
        "y": mean[1] / pixel_size_um - 0.5,
        "depth_um": mean[2],
    }


MAX_CLIPPED_FRACTION = 0.5  # more pixels beyond the ADC: a saturated frame, not a detector image


def raw_frame(
    signal_e: np.ndarray,
    detector: Detector,
    det: DetectorConfig,
    rng,
    adc_max_adu: float | None = None,
) -> np.ndarray:
    """Signal plus dark current, readout noise, drifting pedestal and gain, in ADU; values past
    `adc_max_adu` read as it (the ADC's saturation)."""
    dark = rng.poisson(detector.dark_map_e)
    noise = rng.normal(0.0, det.readout_noise_e, signal_e.shape)
    pedestal = det.pedestal_adu + np.cumsum(rng.normal(0.0, det.pedestal_row_drift_adu, det.height))
    adu = det.gain_adu_per_e * (signal_e + dark + noise) + pedestal[:, None]
    if adc_max_adu is not None:
        adu = np.minimum(adu, adc_max_adu)
    dtype = np.dtype(det.frame_dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        clipped = float(np.mean((adu < info.min) | (adu > info.max)))
        if clipped > MAX_CLIPPED_FRACTION:
            raise ConfigError(
                f"{clipped:.0%} of a simulated frame's pixels fall outside the {dtype} ADC range "
                f"[{info.min}, {info.max}] (detector.pedestal_adu {det.pedestal_adu:g}, "
                f"detector.gain_adu_per_e {det.gain_adu_per_e:g}); the frames would be saturated"
            )
        adu = np.clip(np.rint(adu), info.min, info.max)
    return adu.astype(dtype)


def simulate_frame(
    config: SimulationSections,
    detector: Detector,
    rng: np.random.Generator,
    first_instance: int = 1,
) -> SimulatedFrame:
    det, phys = config.detector, config.physics
    seg, event_class = sample_events(config, rng)
    event_id = first_instance + np.arange(len(event_class))
    event, pixel, charge = collect(seg, det, phys, rng)
    event, pixel, charge = apply_blooming(event, pixel, charge, det)
    particles = np.bincount(pixel, charge, minlength=det.height * det.width)
    particles = particles.reshape(det.height, det.width)
    labels, instances = truth_maps(event, pixel, charge, event_class, event_id, det, phys)
    art = config.artefacts
    read = artefacts.readout(particles, art, det.defect_seed, rng.spawn(1)[0])
    threshold = max(phys.label_noise_multiple * det.readout_noise_e, phys.label_min_charge_e)
    if art.label in config.classes:
        index = config.classes.index(art.label)
        artefacts.relabel(labels, instances, read, particles, threshold, index)
    return SimulatedFrame(
        adu=raw_frame(read.charge_e, detector, det, rng, art.readout.adc_max_adu),
        signal_e=read.charge_e,
        labels=labels,
        instances=instances,
        events=event_table(seg, event_class, event_id, det.pixel_size_um),
        n_ids=len(event_class),
        drawn=np.bincount(event_class, minlength=len(config.classes)),
    )


def check_adc(det: DetectorConfig) -> None:
    """Before any frame: an empty pixel (the pedestal) must lie in an integer ADC's range, or
    every pixel would be saturated. (A float frame holds any pixel the config's bounds allow:
    pedestal + gain x full well stays below 1.1e13 ADU.)"""
    dtype = np.dtype(det.frame_dtype)
    empty = det.pedestal_adu
    if dtype.kind == "f":
        return
    info = np.iinfo(dtype)
    if not info.min <= empty <= info.max:
        raise ConfigError(
            f"detector.pedestal_adu {empty:g} is outside the {dtype} ADC range "
            f"[{info.min}, {info.max}]: every pixel would be saturated"
        )


def check_classes(config: SimulationSections) -> None:
    labelled = [*config.sources.labels().values()]
    if artefacts.drawn(config.artefacts):
        labelled.append(config.artefacts.label)
    missing = [c for c in labelled if c not in config.classes]
    if missing:
        raise ConfigError(
            f"config key 'classes' lacks {missing}, which the simulator labels "
            f"(classes are {config.classes})"
        )


def simulate_file(
    config: SimulationFileSections,
    out: Path,
    n_frames: int,
    seed: int,
    root: bool = False,
    progress: bool = True,
    extra_attrs: dict[str, str] | None = None,
) -> list[Path]:
    """Simulate `n_frames` frames into `out` (HDF5) and, with `root`, its `.root` twin, with
    `extra_attrs` beside the simulator's. Frames are seeded one by one from (seed, frame
    index); written atomically."""
    check_classes(config)
    det = config.detector
    check_adc(det)
    detector = make_detector(det)
    paths = [Path(out)] + ([Path(out).with_suffix(".root")] if root else [])
    attrs = {
        "gain_adu_per_e": det.gain_adu_per_e,
        "pixel_size_um": det.pixel_size_um,
        "readout_noise_e": det.readout_noise_e,
        "exposure_s": det.exposure_s,
        "units": "ADU",
        "simulator_seed": seed,
        "simulator_config": json.dumps(config_to_dict(config), sort_keys=True),
        **(extra_attrs or {}),
    }
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        writers = [
            stack.enter_context(
                FrameWriter(
                    path,
                    io=config.io,
                    height=det.height,
                    width=det.width,
                    frame_dtype=det.frame_dtype,
                    class_names=config.classes,
                    attrs=attrs,
                    with_truth=True,
                )
            )
            for path in paths
        ]
        next_id, drawn = 1, np.zeros(len(config.classes), np.int64)
        for index in tqdm(
            range(n_frames), desc=f"simulate {printable(paths[0].name)}", disable=not progress
        ):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
            frame = simulate_frame(config, detector, rng, first_instance=next_id)
            frame.events["frame"][:] = index
            next_id += frame.n_ids
            drawn += frame.drawn
            for writer in writers:
                writer.append(frame.adu, frame.labels, frame.instances, frame.events)
        counts = dict(zip(config.classes, drawn.tolist(), strict=True))
        for writer in writers:  # a decay whose beta never reached the silicon is no event
            writer.annotate({DRAWN_ATTR: json.dumps(counts)})
    return paths


def run(settings: SimulateSettings, out: str | Path) -> str:
    """The `simulate` stage: `simulate.frames` frames of seed `simulate.seed` into `out`."""
    cfg = settings.simulate
    paths = simulate_file(settings, Path(out), cfg.frames, cfg.seed, root=cfg.root)
    return "\n".join(f"wrote {path}" for path in paths)


STAGE = Stage(
    "simulate",
    "simulate CCD frames with per-pixel truth",
    "Reads: the config (detector, physics, sources). Writes: an HDF5 frame file with frames "
    "(ADU), labels, instances and the events table (docs/frame_format.md), and with --root "
    "its .root twin. Output is written atomically.",
    run,
    SimulateSettings,
    (
        file_flag(
            "--out",
            "output HDF5 path (.h5)",
            OUTPUT,
            suffixes=FRAME_SUFFIXES,
            suffix_hint=" (add simulate.root: true for a ROOT twin)",
            beside=(Beside("the ROOT twin of --out", suffix=".root", when="simulate.root"),),
        ),
        key_flag("--frames", "simulate.frames", "number of frames", type=int),
        key_flag("--seed", "simulate.seed", "random seed (same seed, same file)", type=int),
        key_flag("--height", "detector.height", "rows per frame", type=int),
        key_flag("--width", "detector.width", "columns per frame", type=int),
        key_flag("--root", "simulate.root", "also write a ROOT twin", action="store_true"),
    ),
)
