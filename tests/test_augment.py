"""Physics-preserving augmentation: geometry, gain, pedestal, noise, hot pixels, determinism."""

import albumentations as A
import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.learning.augment import (
    ALLOWED_TRANSFORMS,
    ExtraNoise,
    GainJitter,
    HotPixels,
    PedestalOffset,
    augment,
    build_augmentation,
)

ALL_OFF = {
    "augment.enabled": True,
    "augment.dihedral": False,
    "augment.gain_jitter": 0.0,
    "augment.extra_noise_e": [0.0, 0.0],
    "augment.pedestal_offset_e": 0.0,
    "augment.hot_pixels_per_tile": 0.0,
}
RESAMPLING = (
    A.Resize, A.Rotate, A.SafeRotate, A.Affine, A.ShiftScaleRotate, A.ElasticTransform,
    A.GridDistortion, A.OpticalDistortion, A.Perspective, A.PiecewiseAffine, A.ThinPlateSpline,
    A.RandomResizedCrop, A.RandomScale, A.LongestMaxSize, A.SmallestMaxSize, A.Downscale,
    A.GaussianBlur, A.RandomBrightnessContrast,
)  # fmt: skip


def pipeline_with(**overrides):
    keyed = {f"augment.{key}": value for key, value in overrides.items()}
    return build_augmentation(load_config(overrides={**ALL_OFF, **keyed}).augment)


def labelled_tile(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Charge = 100 * label + a unique pattern in [-25, 25): the label is round(charge / 100)."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 6, (size // 4, size // 4)).repeat(4, 0).repeat(4, 1).astype(np.uint8)
    pattern = rng.permutation(size * size).reshape(size, size) * (50.0 / size**2) - 25.0
    return (100.0 * labels + pattern).astype(np.float32), labels


def dihedral_images(img: np.ndarray) -> list[np.ndarray]:
    rotations = [np.rot90(img, k) for k in range(4)]
    return rotations + [np.fliplr(r) for r in rotations]


def test_geometric_only_permutes_pixels_and_keeps_labels_aligned():
    transform = pipeline_with(dihedral=True)
    assert [type(t) for t in transform.transforms] == [A.D4]
    charge, labels = labelled_tile()
    seen = set()
    for seed in range(64):
        out, mask = augment(transform, charge, labels, seed)
        np.testing.assert_array_equal(np.sort(out, axis=None), np.sort(charge, axis=None))
        assert np.sort(out, axis=None).sum(dtype=np.float64) == charge.sum(dtype=np.float64)
        np.testing.assert_array_equal(np.rint(out / 100.0).astype(np.uint8), mask)
        matches = [i for i, d in enumerate(dihedral_images(charge)) if np.array_equal(out, d)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == set(range(8))


def test_gain_jitter_scales_total_charge_with_configured_spread():
    transform = pipeline_with(gain_jitter=0.05)
    assert [type(t) for t in transform.transforms] == [GainJitter]
    charge = np.full((16, 16), 10.0, np.float32)
    factors = np.array([augment(transform, charge, charge.astype(np.uint8) * 0, s)[0].sum()
                        for s in range(400)]) / charge.sum()  # fmt: skip
    assert factors.std() == pytest.approx(0.05, rel=0.15)
    assert abs(factors.mean() - 1.0) < 3 * 0.05 / np.sqrt(400)


def test_extra_noise_adds_in_quadrature():
    s0, s = 2.0, 1.5
    transform = pipeline_with(extra_noise_e=[s, s])
    assert [type(t) for t in transform.transforms] == [ExtraNoise]
    charge = np.random.default_rng(3).normal(0.0, s0, (256, 256)).astype(np.float32)
    for seed in range(3):
        out, _ = augment(transform, charge, np.zeros(charge.shape, np.uint8), seed)
        robust = 1.4826 * np.median(np.abs(out - np.median(out)))
        assert robust == pytest.approx(np.hypot(s0, s), rel=0.05)


def test_pedestal_offset_shifts_mean_with_configured_sigma():
    transform = pipeline_with(pedestal_offset_e=0.5)
    assert [type(t) for t in transform.transforms] == [PedestalOffset]
    charge = np.random.default_rng(4).normal(0.0, 2.0, (16, 16)).astype(np.float32)
    labels = np.zeros(charge.shape, np.uint8)
    offsets = np.array([(augment(transform, charge, labels, s)[0] - charge).mean()
                        for s in range(400)])  # fmt: skip
    assert offsets.std() == pytest.approx(0.5, rel=0.15)
    assert abs(offsets.mean()) < 3 * 0.5 / np.sqrt(400)


def test_hot_pixels_count_charge_and_background_label():
    transform = pipeline_with(hot_pixels_per_tile=3.0, hot_pixel_charge_e=[50.0, 200.0])
    assert [type(t) for t in transform.transforms] == [HotPixels]
    charge = np.zeros((32, 32), np.float32)
    labels = np.full(charge.shape, 2, np.uint8)
    counts = []
    for seed in range(1000):
        out, mask = augment(transform, charge, labels, seed)
        hot = out != 0
        counts.append(hot.sum())
        assert np.all((out[hot] >= 50.0) & (out[hot] <= 200.0))
        np.testing.assert_array_equal(mask, np.where(hot, 0, 2))
    assert np.mean(counts) == pytest.approx(3.0, abs=4 * np.sqrt(3.0 / 1000))
    assert np.var(counts) == pytest.approx(3.0, rel=0.2)  # Poisson


def test_same_seed_same_output_different_seed_different():
    transform = build_augmentation(load_config().augment)
    charge, labels = labelled_tile()
    first = augment(transform, charge, labels, 11)
    augment(transform, charge, labels, 12)  # state left by another call must not matter
    again = augment(transform, charge, labels, 11)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], augment(transform, charge, labels, 12)[0])


def test_gain_and_pedestal_draws_are_independent():
    transform = pipeline_with(gain_jitter=0.05, pedestal_offset_e=0.5)
    charge = np.array([[0.0, 100.0]], np.float32)
    outs = np.array([augment(transform, charge, np.zeros((1, 2), np.uint8), s)[0][0]
                     for s in range(300)])  # fmt: skip
    offset, factor = outs[:, 0], (outs[:, 1] - outs[:, 0]) / 100.0
    assert abs(np.corrcoef(offset, factor)[0, 1]) < 0.2


@pytest.mark.parametrize("overrides", [{}, {"augment.hot_pixels_per_tile": 5.0}])
def test_pipeline_uses_only_allowed_non_resampling_transforms(overrides):
    transform = build_augmentation(load_config(overrides=overrides).augment)
    types = [type(t) for t in transform.transforms]
    assert types == [A.D4, GainJitter, PedestalOffset, ExtraNoise, HotPixels]
    assert set(types) <= ALLOWED_TRANSFORMS
    assert not any(issubclass(t, RESAMPLING) for t in ALLOWED_TRANSFORMS)


def test_disabled_is_none_and_identity():
    assert build_augmentation(load_config(overrides={"augment.enabled": False}).augment) is None
    charge, labels = labelled_tile()
    charge -= 1000.0
    out, mask = augment(None, charge, labels, 0)
    assert out.dtype == np.float32 and mask.dtype == np.uint8
    np.testing.assert_array_equal(out, charge)
    np.testing.assert_array_equal(mask, labels)
    assert not np.shares_memory(out, charge)


def test_full_pipeline_keeps_dtypes_and_unclipped_values():
    transform = build_augmentation(load_config().augment)
    charge = np.zeros((32, 32), np.float32)
    charge[:16] = -500.0
    charge[16:] = 5.0e4
    out, mask = augment(transform, charge, np.ones(charge.shape, np.uint8), 5)
    assert out.dtype == np.float32 and mask.dtype == np.uint8
    assert out.flags.c_contiguous and mask.flags.c_contiguous
    hot = (mask == 0).sum()  # a hot pixel (<= 200 e-) may land on the negative half
    assert (out < -400.0).sum() >= 16 * 32 - hot and out.max() > 4.0e4


def test_invalid_parameters_are_rejected():
    with pytest.raises(ValueError):
        ExtraNoise(extra_noise_e=(2.0, 1.0))
    with pytest.raises(ValueError):
        GainJitter(gain_jitter=-0.1)
    with pytest.raises(ValueError):
        HotPixels(hot_pixels_per_tile=1.0, hot_pixel_charge_e=(-5.0, 10.0))
