"""Full-frame inference (the `infer` stage).

Owns turning frames of any size and format into per-pixel class maps: calibration with the user's
calibration config, the network input defined by the model card, the network's probabilities
(pipeline/inference/predictor.py: sliding windows or the crops around charge, ONNX Runtime for
fp32 on the CPU through pipeline/inference/runtime.py), a second network's shares of the
particle classes where `infer.particles_from` names one (cascade.py), an optional component vote
(one class per connected deposit), the artefact rules of shape, sharpness and diffused points
(shapes.py, sharpness.py, points.py), and a map file written frame by frame, atomically. Memory
is bounded by one frame and its probabilities, whatever the size of the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import h5py
import numpy as np
import torch

from pipeline.calibration import conditioning
from pipeline.calibration.restore import Restorer
from pipeline.config import ConfigError, InferConfig, NormaliseConfig
from pipeline.config.limits import MAX_BATCH_PIXELS
from pipeline.config.stages import InferSections, InferSettings
from pipeline.core import geometry, hashing
from pipeline.core.errors import CheckpointError, NonFiniteOutput
from pipeline.core.stage import INPUT, Stage, key_flag
from pipeline.inference import bleed, cascade, points, runtime, shapes, sharpness
from pipeline.inference.detector_context import detector_context
from pipeline.inference.label_shift import LabelShift
from pipeline.inference.predictor import Predictor
from pipeline.network.device import inference_dtype, pick_device
from pipeline.network.model import load_model, model_card_of
from pipeline.network.shipped import Checkpoint, resolve_checkpoint
from pipeline.results.maps import FRAMES_READ, MAPPING, MapResult, write_maps
from pipeline.tracking import registry, runs


def _with_model_classes(config: InferSections, card: dict, reference: str) -> InferSections:
    """The config with the model's classes (a map holds the classes its network gives: an
    earlier model lacks the newer ones); CheckpointError for a class the config does not
    know."""
    found = list(card["classes"])
    unknown = [c for c in found if c not in config.classes]
    if unknown:
        raise CheckpointError(
            f"{reference}: model classes {unknown} are not in the config's classes "
            f"{list(config.classes)}"
        )
    if found == list(config.classes):
        return config
    narrowed: InferSections = config.model_copy(update={"classes": found})
    return narrowed


def infer_file(
    config: InferSections,
    input_path: str | Path,
    output_path: str | Path,
    catalogue_path: str | Path | None = None,
    progress: bool = True,
    model: Checkpoint | None = None,
) -> MapResult:
    """Map the frames of `input_path` with `model` (else the one `infer.model` names, resolved
    here) into the map file `output_path` (and the cluster catalogue `catalogue_path`). Where
    `infer.particles_from` names a partner for the model, the particle classes' shares of what
    the model calls a particle are the partner's (pipeline/inference/cascade.py)."""
    cfg = config.infer
    checkpoint = model or resolve_checkpoint(cfg.model, config.release.dir)
    partner = particles_from(config, checkpoint)
    config = _with_model_classes(config, model_card_of(checkpoint.path), checkpoint.reference)
    device = pick_device(cfg.device, "infer.device")
    amp = inference_dtype(cfg.amp, device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    engine = runtime.choose_runtime(cfg.runtime, device, amp)
    if engine != "torch":  # ONNX Runtime picks its own layout
        cfg = cfg.model_copy(update={"channels_last": False})
    build = _Builder(config, cfg, input_path, device, amp, engine)
    first, card, context_source = build(checkpoint, config.classes)
    context = first.predictor.context or {}
    second = None
    if partner is not None:
        second = build(partner, list(model_card_of(partner.path)["classes"]))[0]
    # the diffusion a point charge can show (points.py): the network's own, else the config's
    back_sigma = context.get("back_sigma_px") or conditioning.back_sigma_px(
        config.detector, config.physics
    )
    pair = config.physics.pair_energy_ev
    temperature = first.predictor.temperature

    shift = LabelShift(cfg.priors, card, config.classes)
    restorer = Restorer.for_file(input_path, config)  # the readout's artefacts undone

    def label(charge: np.ndarray, noise_e: float) -> tuple[np.ndarray, np.ndarray | None]:
        probs = first.probabilities(charge, noise_e, input_path)
        artefacts = None
        if second is not None:
            theirs = second.probabilities(charge, noise_e, input_path)
            artefacts = cascade.first_artefacts(probs, config.classes, shapes.ARTEFACT)
            probs = cascade.share_particles(probs, config.classes, theirs, second.classes)
        rules = config.artefact_shapes
        if cfg.component_vote:
            labels, probs = shift.label(probs)
            if artefacts is not None:
                labels[artefacts] = config.classes.index(shapes.ARTEFACT)
            if cfg.shape_rules:
                own = probs.argmax(axis=0)
                labels = shapes.trails(labels, own, charge, noise_e, config.classes, rules)
        else:
            labels = probs.argmax(axis=0).astype(np.uint8)
        if cfg.shape_rules:
            labels = shapes.relabel(labels, charge, config.classes, rules, pair)
        if cfg.sharp_rescue:
            labels = sharpness.rescue(labels, probs, charge, noise_e, config.classes, rules)
        if cfg.point_rescue:
            labels = points.rescue(
                labels, probs, charge, noise_e, back_sigma, config.classes, rules, pair
            )
        if cfg.shape_rules:  # last: a plateau's edge is as sharp as a track's
            labels = bleed.relabel(labels, charge, noise_e, config.classes, rules)
        return labels, probs

    # ONNX Runtime owns the cores; torch's thread pool, left awake beside it, turns the small
    # element-wise steps (softmax, finiteness) into waits (0.8 s per 8 frames, bench_infer)
    with runtime.torch_threads(1) if engine == "onnxruntime" else contextlib.nullcontext():
        result = write_maps(
            config,
            restorer.labeller(label, config.classes, shapes.ARTEFACT),
            input_path,
            output_path,
            catalogue_path,
            probabilities=cfg.probabilities,
            progress=progress,
            desc="infer",
            provenance={
                "model": checkpoint.reference,
                "model_sha256": checkpoint.sha256,
                **(
                    {"particles_from": partner.reference, "particles_from_sha256": partner.sha256}
                    if partner is not None
                    else {}
                ),
                "temperature": f"{temperature:g}",
                **conditioning.provenance(context, context_source),
            },
            closing=lambda: {**shift.attrs(), **restorer.attrs()},
            uncertainty=True,
            summed=restorer.summed,
        )
    notes = restorer.notes()
    if partner is not None:
        notes.append(
            f"mapped with {checkpoint.reference}, its particle classes shared as "
            f"{partner.reference} shares them (infer.particles_from)"
        )
    return dataclasses.replace(result, made_with="\n".join(notes)) if notes else result


def particles_from(config: InferSections, checkpoint: Checkpoint) -> Checkpoint | None:
    """The model `infer.particles_from` names for `checkpoint` (by its reference or its file's
    stem), resolved; None where it names none."""
    table = config.infer.particles_from
    for key in (checkpoint.reference, Path(checkpoint.reference).stem, Path(checkpoint.path).stem):
        if key in table:
            partner = table[key]
            return None if partner is None else resolve_checkpoint(partner, config.release.dir)
    return None


@dataclasses.dataclass(frozen=True)
class _Network:
    """One network of a map: its checkpoint, its `Predictor` on this file and its classes."""

    checkpoint: Checkpoint
    predictor: Predictor
    classes: list[str]

    def probabilities(
        self, charge: np.ndarray, noise_e: float, input_path: str | Path
    ) -> np.ndarray:
        try:
            return self.predictor.frame_probabilities(charge, noise_e)
        except NonFiniteOutput as exc:
            reference = self.checkpoint.reference
            raise CheckpointError(f"{reference}: on {input_path}: {exc}") from None


class _Builder:
    """A checkpoint's `_Network`, with what its card asks for on this file: its window, input
    channels, detector context (measured once for every network told the same) and temperature;
    and its card and where the context came from."""

    def __init__(
        self,
        config: InferSections,
        cfg: InferConfig,
        input_path: str | Path,
        device: torch.device,
        amp: torch.dtype | None,
        engine: str,
    ) -> None:
        self.config, self.cfg, self.input_path = config, cfg, input_path
        self.device, self.amp, self.engine = device, amp, engine
        self.cache = runtime.onnx_cache(cfg.onnx_cache)
        self.contexts: dict[tuple[str, ...], tuple[dict[str, float], str]] = {}  # measured once

    def __call__(self, checkpoint: Checkpoint, classes: list[str]) -> tuple[_Network, dict, str]:
        cfg = self.cfg
        network, card = load_model(checkpoint.path, classes=classes)
        window = cfg.window if cfg.window is not None else card["tile_size"]
        if cfg.batch_size * geometry.padded(window) ** 2 > MAX_BATCH_PIXELS:
            raise ConfigError(
                f"infer.batch_size {cfg.batch_size} windows of {window} px (the model card's "
                f"tile) exceed {MAX_BATCH_PIXELS:,} pixels per batch; lower infer.batch_size"
            )
        normalise = NormaliseConfig(**card["normalise"])
        network = runtime.runtime_network(
            network, self.engine, checkpoint.sha256, normalise.channels, self.cache
        )
        told = tuple(normalise.condition)
        if told not in self.contexts:
            self.contexts[told] = detector_context(self.config, normalise, self.input_path)
        context, source = self.contexts[told]
        temperature = float(card.get("calibration", {}).get("temperature", 1.0))
        multiple = 2 ** card["architecture"]["depth"]
        predictor = Predictor(
            network, window, normalise, cfg, self.device, self.amp, multiple, context, temperature
        )
        return _Network(checkpoint, predictor, classes), card, source


def run(
    settings: InferSettings,
    input: str | Path,
    output: str | Path,
    catalogue: str | Path | None = None,
) -> str:
    """The `infer` stage: `infer_file` with the model `infer.model` (resolved and hashed once),
    tracked as an MLflow run tied to the model's registered version (`tracking.enabled`), and what
    it wrote."""
    checkpoint = resolve_checkpoint(settings.infer.model, settings.release.dir)
    links = {}
    if settings.tracking.enabled:  # a first use of a shipped model registers it
        version = registry.register_shipped(settings, checkpoint.path, checkpoint.sha256)
        links = registry.model_links(checkpoint.path, checkpoint.sha256, version)
    tags = {"input": str(input), "output": str(output), **links}
    with runs.tracked_run(settings, "infer", tags) as tracker:
        result = infer_file(settings, input, output, catalogue, model=checkpoint)
        if tracker.active:
            tracker.log_dataset(input, result.frames_sha256, "inference")
            _log_result(tracker, settings, result)
    return str(result)


TOLD = ("condition_back_sigma_px", "condition_source", "priors", "priors_source")


def _log_result(
    tracker: runs.Tracker,
    settings: InferSettings,
    result: MapResult,
) -> None:
    """The digest of the input's frames (taken as they were mapped), the map's SHA-256 (what
    evaluations find the run by), the speed and the clusters per frame of each class."""
    with h5py.File(result.output, "r") as written:  # what the network was told, and the priors
        told = {k: str(written.attrs[k]) for k in TOLD if k in written.attrs}
    tracker.set_tags(
        {
            "data_hash": result.frames_sha256,
            "output_sha256": hashing.file_sha256(result.output),
            **told,
        }
    )
    metrics = {"frames": result.frames, "megapixels_per_s": result.megapixels_per_s}
    for name, count in (result.clusters or {}).items():  # the catalogue's, as it was written
        if name != settings.classes[0]:
            metrics[f"{name}_per_frame"] = count / max(result.frames, 1)
    tracker.log_metrics(metrics, step=0)


STAGE = Stage(
    "infer",
    "per-pixel class maps of frames with a trained model",
    f"Reads: a checkpoint (weights and model card) and {FRAMES_READ}. Writes: a map file "
    "(docs/frame_format.md: labels, optional float16 probabilities, class_names, source), "
    "atomically, frame by frame, and with --catalogue the cluster catalogue as Parquet and "
    "CSV. With ONNX Runtime (fp32 on the CPU) the checkpoint's ONNX copy, once, into "
    "infer.onnx_cache (named by the checkpoint's SHA-256; nothing beside the checkpoint).",
    run,
    InferSettings,
    (
        key_flag("--model", "infer.model", "checkpoint, or a shipped model's name", role=INPUT),
        *MAPPING,
        key_flag(
            "--probabilities", "infer.probabilities", "write probabilities", action="store_true"
        ),
        key_flag("--tta", "infer.tta", "average over flips", action="store_true"),
        key_flag("--window", "infer.window", "window edge in pixels", type=int),
        key_flag("--overlap", "infer.overlap", "fraction shared by neighbours", type=float),
        key_flag("--device", "infer.device", "auto, cpu or cuda"),
        key_flag("--runtime", "infer.runtime", "auto, torch or onnxruntime"),
        key_flag("--dense", "infer.sparse.enabled", "network on every pixel", action="store_false"),
    ),
    tracks=True,
)
