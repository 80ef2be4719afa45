"""Full-frame inference (the `infer` stage).

Owns turning frames of any size and format into per-pixel class maps: calibration with the user's
calibration config, the network input defined by the model card, overlapping sliding windows
blended with Gaussian importance weights (as nnU-Net does), or only the crops around charge
(`infer.sparse`, planned by pipeline/inference/sparse.py) batched by shape, optional flip test-time
augmentation, autocast on GPU and native-bf16 CPUs, ONNX Runtime for fp32 on the CPU
(pipeline/inference/runtime.py), an optional component vote (one class per connected deposit), the
artefact rules of shape and sharpness (pipeline/inference/shapes.py, sharpness.py), and a map file
written frame by frame, atomically. Memory is bounded by one frame and its probabilities, whatever
the size of the file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from pipeline.calibration import calibrate, conditioning
from pipeline.config import ConfigError, InferConfig, NormaliseConfig
from pipeline.config.sections import MAX_BATCH_PIXELS
from pipeline.config.stages import InferSections, InferSettings
from pipeline.core import geometry, hashing
from pipeline.core.errors import CheckpointError, NonFiniteOutput
from pipeline.core.stage import INPUT, Stage, key_flag
from pipeline.inference import runtime, shapes, sharpness, sparse
from pipeline.inference.detector_context import detector_context
from pipeline.inference.label_shift import LabelShift
from pipeline.network.device import inference_dtype, pick_device
from pipeline.network.model import load_model, model_card_of
from pipeline.network.shipped import Checkpoint, resolve_checkpoint
from pipeline.results.maps import FRAMES_READ, MAPPING, MapResult, write_maps
from pipeline.tracking import registry, runs

FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


def gaussian_importance(size: int, sigma_scale: float, width: int | None = None) -> np.ndarray:
    """Weights of a size x width window (square by default): a Gaussian of sigma = edge *
    sigma_scale along each axis, 1 at the centre, never 0."""

    def axis(n: int) -> np.ndarray:
        return np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / (n * sigma_scale)) ** 2)

    weights = np.outer(axis(size), axis(width or size)).astype(np.float32)
    return np.maximum(weights, weights[weights > 0].min())


def window_starts(length: int, tile: int, overlap: float) -> list[int]:
    return geometry.tile_starts(length, tile, min(round(tile * overlap), tile - 1))


class Predictor:
    """Class probabilities of whole frames with a trained model."""

    def __init__(
        self,
        model: nn.Module,
        tile: int,
        normalise: NormaliseConfig,
        cfg: InferConfig,
        device: torch.device,
        amp: torch.dtype | None = None,
        multiple: int = geometry.NET_MULTIPLE,
        context: Mapping[str, float] | None = None,
        temperature: float = 1.0,
    ) -> None:
        self.context = context  # the detector's descriptors, for normalise.condition
        self.temperature = temperature  # divides the logits (the card's calibration)
        self.model = model.to(device).eval()
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.multiple = multiple  # the network's input sizes: 2^depth
        self.tile, self.normalise, self.cfg = geometry.padded(tile, multiple), normalise, cfg
        self.device, self.amp = device, amp
        self._classes: int | None = None
        self._weight_cache: dict[tuple[int, int], torch.Tensor] = {}

    def _weights(self, height: int, width: int) -> torch.Tensor:
        if (height, width) not in self._weight_cache:
            weights = gaussian_importance(height, self.cfg.gaussian_sigma_scale, width)
            self._weight_cache[height, width] = torch.from_numpy(weights).to(self.device)
        return self._weight_cache[height, width]

    @torch.inference_mode()
    def probabilities(self, charge_e: np.ndarray, noise_e: float) -> np.ndarray:
        """(C, H, W) float32 class probabilities of one calibrated frame."""
        height, width = charge_e.shape
        # windows of the tile, or smaller along an axis the frame is shorter than
        th = min(self.tile, geometry.padded(height, self.multiple))
        tw = min(self.tile, geometry.padded(width, self.multiple))
        ph, pw = max(height, th), max(width, tw)
        starts = [
            (y, xx)
            for y in window_starts(ph, th, self.cfg.overlap)
            for xx in window_starts(pw, tw, self.cfg.overlap)
        ]
        if len(starts) == 1:  # one window holds the frame: the blending weights cancel
            return self.crop_probabilities([charge_e], noise_e)[0]
        padded = np.zeros((ph, pw), dtype=np.float32)  # conditioning channels cover the padding
        padded[:height, :width] = charge_e
        x = calibrate.normalise(padded, noise_e, self.normalise, self.context)
        image = self._to_device(x)[None]
        weights = self._weights(th, tw)
        total, norm = None, torch.zeros(ph, pw, device=self.device)
        for first in range(0, len(starts), self.cfg.batch_size):
            batch = starts[first : first + self.cfg.batch_size]
            windows = torch.cat([image[..., y : y + th, xx : xx + tw] for y, xx in batch])
            probs = self._predict(windows) * weights
            if total is None:
                total = torch.zeros(probs.shape[1], ph, pw, device=self.device)
            for (y, xx), p in zip(batch, probs, strict=True):
                total[:, y : y + th, xx : xx + tw] += p
                norm[y : y + th, xx : xx + tw] += weights
        assert total is not None  # more than one window: the loop ran
        return (total / norm)[:, :height, :width].float().cpu().numpy()

    def frame_probabilities(self, charge_e: np.ndarray, noise_e: float) -> np.ndarray:
        """(C, H, W) probabilities: the network on the crops around charge (`infer.sparse`),
        background elsewhere; the whole frame where sparse is off or the frame is busy."""
        plan = self.cfg.sparse
        if plan.enabled:
            seeds = sparse.seed_mask(charge_e, noise_e, plan)
            crops = sparse.plan_crops(seeds, plan, self.multiple)
            if sparse.covered_fraction(crops, charge_e.shape) <= plan.max_fraction:
                return sparse.assemble(
                    lambda batch: self.crop_probabilities(batch, noise_e),
                    charge_e,
                    crops,
                    self.classes,
                    self.cfg.batch_size * self.tile**2,
                )
        return self.probabilities(charge_e, noise_e)

    @torch.inference_mode()
    def crop_probabilities(self, crops: list[np.ndarray], noise_e: float) -> np.ndarray:
        """(B, C, h, w) float32 probabilities of same-shape crops of one calibrated frame, each
        on its own (zero-padded to the network's multiple where a crop is shorter)."""
        height, width = crops[0].shape
        ph, pw = geometry.padded(height, self.multiple), geometry.padded(width, self.multiple)
        x = np.zeros((len(crops), self.normalise.channels, ph, pw), dtype=np.float32)
        padded = np.zeros((ph, pw), dtype=np.float32)  # as in training: constant conditioning
        for i, crop in enumerate(crops):
            padded[:height, :width] = crop
            x[i] = calibrate.normalise(padded, noise_e, self.normalise, self.context)
        probs = self._predict(self._to_device(x))
        return probs[:, :, :height, :width].float().cpu().numpy()

    @property
    def classes(self) -> int:
        """Classes the network outputs (asked of it once, on an empty window)."""
        if self._classes is None:
            empty = np.zeros((self.multiple, self.multiple), dtype=np.float32)
            self._classes = self.probabilities(empty, 1.0).shape[0]
        return self._classes

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        """The array on the device: through pinned memory, asynchronously, to a GPU."""
        tensor = torch.from_numpy(array)
        if self.device.type != "cuda":
            return tensor
        return tensor.pin_memory().to(self.device, non_blocking=True)

    def _predict(self, windows: torch.Tensor) -> torch.Tensor:
        flips = FLIPS if self.cfg.tta else FLIPS[:1]
        out: torch.Tensor | None = None
        if self.cfg.channels_last:
            windows = windows.contiguous(memory_format=torch.channels_last)
        for dims in flips:
            inputs = windows.flip(dims) if dims else windows
            with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
                logits = self.model(inputs).float()
            if not bool(torch.isfinite(logits).all()):
                raise NonFiniteOutput(
                    f"the network output is not finite ({self.amp or torch.float32} on "
                    f"{self.device.type}): the map would be meaningless"
                )
            probs = (logits / self.temperature).softmax(dim=1)
            flipped = probs.flip(dims) if dims else probs
            out = flipped if out is None else out + flipped
        assert out is not None  # flips holds the identity at least
        return out / len(flips)


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
    here) into the map file `output_path` (and the cluster catalogue `catalogue_path`)."""
    cfg = config.infer
    checkpoint = model or resolve_checkpoint(cfg.model, config.release.dir)
    config = _with_model_classes(config, model_card_of(checkpoint.path), checkpoint.reference)
    network, card = load_model(checkpoint.path, classes=config.classes)
    device = pick_device(cfg.device, "infer.device")
    amp = inference_dtype(cfg.amp, device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    window = cfg.window if cfg.window is not None else card["tile_size"]
    if cfg.batch_size * geometry.padded(window) ** 2 > MAX_BATCH_PIXELS:
        raise ConfigError(
            f"infer.batch_size {cfg.batch_size} windows of {window} px (the model card's tile) "
            f"exceed {MAX_BATCH_PIXELS:,} pixels per batch; lower infer.batch_size"
        )
    multiple = 2 ** card["architecture"]["depth"]
    normalise = NormaliseConfig(**card["normalise"])
    engine = runtime.choose_runtime(cfg.runtime, device, amp)
    cache = runtime.onnx_cache(cfg.onnx_cache)
    network = runtime.runtime_network(network, engine, checkpoint.sha256, normalise.channels, cache)
    if engine != "torch":  # ONNX Runtime picks its own layout
        cfg = cfg.model_copy(update={"channels_last": False})
    context, context_source = detector_context(config, normalise, input_path)
    temperature = float(card.get("calibration", {}).get("temperature", 1.0))
    predictor = Predictor(
        network, window, normalise, cfg, device, amp, multiple, context, temperature
    )

    shift = LabelShift(cfg.priors, card, config.classes)

    def label(charge: np.ndarray, noise_e: float) -> tuple[np.ndarray, np.ndarray]:
        try:
            probs = predictor.frame_probabilities(charge, noise_e)
        except NonFiniteOutput as exc:
            raise CheckpointError(f"{checkpoint.reference}: on {input_path}: {exc}") from None
        rules = config.artefact_shapes
        if cfg.component_vote:
            labels, probs = shift.label(probs)
            if cfg.shape_rules:
                own = probs.argmax(axis=0)
                labels = shapes.trails(labels, own, charge, noise_e, config.classes, rules)
        else:
            labels = probs.argmax(axis=0).astype(np.uint8)
        if cfg.shape_rules:
            pair = config.physics.pair_energy_ev
            labels = shapes.relabel(labels, charge, config.classes, rules, pair)
        if cfg.sharp_rescue:
            labels = sharpness.rescue(labels, probs, charge, noise_e, config.classes, rules)
        return labels, probs

    # ONNX Runtime owns the cores; torch's thread pool, left awake beside it, turns the small
    # element-wise steps (softmax, finiteness) into waits (0.8 s per 8 frames, bench_infer)
    with runtime.torch_threads(1) if engine == "onnxruntime" else contextlib.nullcontext():
        return write_maps(
            config,
            label,
            input_path,
            output_path,
            catalogue_path,
            probabilities=cfg.probabilities,
            progress=progress,
            desc="infer",
            provenance={
                "model": checkpoint.reference,
                "model_sha256": checkpoint.sha256,
                "temperature": f"{temperature:g}",
                **conditioning.provenance(context, context_source),
            },
            closing=shift.attrs,
            uncertainty=True,
        )


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
