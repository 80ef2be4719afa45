"""Class probabilities of whole frames from one network (the `Predictor` infer runs).

Owns overlapping sliding windows blended with Gaussian importance weights (as nnU-Net does), or
only the crops around charge (`infer.sparse`, planned by pipeline/inference/sparse.py) batched
by shape, optional flip test-time augmentation, autocast on GPU and native-bf16 CPUs, the
network input the model card defines, and the card's temperature on the logits.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from pipeline.calibration import calibrate
from pipeline.config import InferConfig, NormaliseConfig
from pipeline.core import geometry
from pipeline.core.errors import NonFiniteOutput
from pipeline.inference import sparse

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
