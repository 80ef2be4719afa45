"""Physics-preserving augmentation of training tiles, in electrons, before normalisation.

Owns the albumentations pipeline built from `AugmentConfig` and the four custom transforms that
model detector effects: a gain mis-calibration (`GainJitter`), a residual pedestal offset
(`PedestalOffset`), extra Gaussian readout noise added in quadrature (`ExtraNoise`) and extra hot
pixels labelled background (`HotPixels`). The only geometric transform is the dihedral group of
the square (`albumentations.D4`), which permutes pixels without resampling them, so charge and
track shapes stay exactly true. Nothing here resizes, rotates by arbitrary angles, distorts,
blurs or changes brightness/contrast.

Inputs are a tile's charge image in electrons (float32, (H, W), may be negative) and its class
labels (uint8, (H, W), 0 = background). `augment` is deterministic for a given seed.
"""

from __future__ import annotations

import random
from typing import Annotated, Any

import albumentations as A
import numpy as np
from albumentations.core.pydantic import check_range_bounds, nondecreasing
from albumentations.core.transforms_interface import BaseTransformInitSchema
from pydantic import AfterValidator, Field

from pipeline.config import AugmentConfig

MIN_GAIN = 1e-3  # floor of the jittered gain factor, keeps it > 0

NonNegativeRange = Annotated[
    tuple[float, float],
    AfterValidator(check_range_bounds(0, None)),
    AfterValidator(nondecreasing),
]


def _float32(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img, dtype=np.float32)


class GainJitter(A.ImageOnlyTransform):
    """Multiply the charge by f ~ Normal(1, gain_jitter), f clipped to >= MIN_GAIN."""

    class InitSchema(BaseTransformInitSchema):
        gain_jitter: float = Field(ge=0)

    def __init__(self, gain_jitter: float = 0.05, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.gain_jitter = gain_jitter

    def get_params(self) -> dict[str, Any]:
        factor = self.random_generator.normal(1.0, self.gain_jitter)
        return {"factor": max(float(factor), MIN_GAIN)}

    def apply(self, img: np.ndarray, factor: float = 1.0, **params: Any) -> np.ndarray:
        return _float32(img * np.float32(factor))


class PedestalOffset(A.ImageOnlyTransform):
    """Add a constant c ~ Normal(0, pedestal_offset_e) electrons to the whole tile."""

    class InitSchema(BaseTransformInitSchema):
        pedestal_offset_e: float = Field(ge=0)

    def __init__(self, pedestal_offset_e: float = 0.5, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.pedestal_offset_e = pedestal_offset_e

    def get_params(self) -> dict[str, Any]:
        return {"offset": float(self.random_generator.normal(0.0, self.pedestal_offset_e))}

    def apply(self, img: np.ndarray, offset: float = 0.0, **params: Any) -> np.ndarray:
        return _float32(img + np.float32(offset))


class ExtraNoise(A.ImageOnlyTransform):
    """Add per-pixel Normal(0, s) electrons, s ~ Uniform(extra_noise_e), once per tile."""

    class InitSchema(BaseTransformInitSchema):
        extra_noise_e: NonNegativeRange

    def __init__(self, extra_noise_e: tuple[float, float] = (0.0, 1.5), p: float = 1.0) -> None:
        super().__init__(p=p)
        self.extra_noise_e = extra_noise_e

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        sigma = self.random_generator.uniform(*self.extra_noise_e)
        noise = self.random_generator.normal(0.0, sigma, size=params["shape"])
        return {"noise": noise.astype(np.float32)}

    def apply(self, img: np.ndarray, noise: np.ndarray | None = None, **params: Any) -> np.ndarray:
        return _float32(img if noise is None else img + noise)


class HotPixels(A.DualTransform):
    """Add Uniform(hot_pixel_charge_e) electrons to k ~ Poisson(hot_pixels_per_tile) distinct
    random pixels and label them background (0), the truth convention for hot pixels."""

    class InitSchema(BaseTransformInitSchema):
        hot_pixels_per_tile: float = Field(ge=0)
        hot_pixel_charge_e: NonNegativeRange

    def __init__(
        self,
        hot_pixels_per_tile: float = 1.0,
        hot_pixel_charge_e: tuple[float, float] = (5.0, 200.0),
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.hot_pixels_per_tile = hot_pixels_per_tile
        self.hot_pixel_charge_e = hot_pixel_charge_e

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        rng = self.random_generator
        height, width = params["shape"][:2]
        count = min(int(rng.poisson(self.hot_pixels_per_tile)), height * width)
        flat = rng.choice(height * width, size=count, replace=False)
        rows, cols = np.unravel_index(flat, (height, width))
        charges = rng.uniform(*self.hot_pixel_charge_e, size=count).astype(np.float32)
        return {"rows": rows, "cols": cols, "charges": charges}

    def apply(
        self,
        img: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        charges: np.ndarray,
        **params: Any,
    ) -> np.ndarray:
        out = np.array(img, dtype=np.float32, order="C")
        out[rows, cols] += charges.reshape((-1,) + (1,) * (img.ndim - 2))
        return out

    def apply_to_mask(
        self, mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, **params: Any
    ) -> np.ndarray:
        out = np.array(mask, order="C")
        out[rows, cols] = 0
        return out


ALLOWED_TRANSFORMS: frozenset[type] = frozenset(
    {A.D4, GainJitter, PedestalOffset, ExtraNoise, HotPixels}
)


def _physical_transforms(cfg: AugmentConfig) -> list[A.BasicTransform]:
    steps: list[A.BasicTransform] = []
    if cfg.gain_jitter > 0:
        steps.append(GainJitter(gain_jitter=cfg.gain_jitter, p=1.0))
    if cfg.pedestal_offset_e > 0:
        steps.append(PedestalOffset(pedestal_offset_e=cfg.pedestal_offset_e, p=1.0))
    if max(cfg.extra_noise_e) > 0:
        steps.append(ExtraNoise(extra_noise_e=cfg.extra_noise_e, p=1.0))
    if cfg.hot_pixels_per_tile > 0:
        steps.append(
            HotPixels(
                hot_pixels_per_tile=cfg.hot_pixels_per_tile,
                hot_pixel_charge_e=cfg.hot_pixel_charge_e,
                p=1.0,
            )
        )
    return steps


def build_augmentation(cfg: AugmentConfig) -> A.Compose | None:
    """The augmentation pipeline for `cfg`, or None when augmentation is disabled.

    Order: D4 (when `cfg.dihedral`), then GainJitter, PedestalOffset, ExtraNoise, HotPixels, each
    only when its parameter is non-zero. Parameters are validated by the transforms' InitSchema
    (ValueError on a negative sigma or a decreasing range).
    """
    if not cfg.enabled:
        return None
    steps: list[A.BasicTransform] = [A.D4(p=1.0)] if cfg.dihedral else []
    steps.extend(_physical_transforms(cfg))
    return A.Compose(steps, p=1.0)


def augment(
    transform: A.Compose | None, charge_e: np.ndarray, labels: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Apply `transform` to one tile, deterministically for `seed` (a non-negative int).

    Before the call the Compose and all its transforms are given ONE shared numpy Generator and
    one shared `random.Random`, both seeded with `seed`, so the transforms draw successive numbers
    from one stream. (`Compose.set_random_seed` would instead give every transform its own
    identically seeded generator, which correlates e.g. the gain and pedestal draws.)
    Returns new C-contiguous float32 charge and uint8 labels; a copy of the inputs when
    `transform` is None.
    """
    if charge_e.shape[:2] != labels.shape[:2]:
        raise ValueError(f"charge {charge_e.shape} and labels {labels.shape} differ in shape")
    image = np.asarray(charge_e, dtype=np.float32)
    mask = np.asarray(labels, dtype=np.uint8)
    if transform is not None:
        transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
        out = transform(image=image, mask=mask)
        image, mask = out["image"], out["mask"]
    return np.array(image, dtype=np.float32, order="C"), np.array(mask, dtype=np.uint8, order="C")
