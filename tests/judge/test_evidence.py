"""Each evidence measure on synthetic clips with a known answer."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from judge.evidence import FaceModels, gather_evidence, rigid_residuals
from judge.track import FaceTrack


def _no_face_track(frames: np.ndarray) -> FaceTrack:
    t, h, w = frames.shape[:3]
    return FaceTrack(np.full((t, 478, 3), np.nan, np.float32), np.zeros(t, bool), np.ones((t, h, w), np.float32),
                     np.full((t, h, w), -1, np.int8), np.zeros((t, h, w), bool))


def _texture(t=4, size=64, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = gaussian_filter(rng.random((size, size, 3)), (1.0, 1.0, 0)) * 255
    return np.repeat(base[None], t, 0).clip(0, 255).astype(np.uint8)


@lru_cache(maxsize=1)
def _models() -> FaceModels:
    return FaceModels.load()


def _maps(frames):
    return gather_evidence(frames, _no_face_track(frames), _models()).maps


def test_blur_lowers_the_detail_measure():
    sharp = _texture()
    blurred = gaussian_filter(sharp.astype(float), (0, 2.0, 2.0, 0)).round().astype(np.uint8)
    assert _maps(blurred)["blur"][:, 8:-8, 8:-8].mean() < 0.8 * _maps(sharp)["blur"][:, 8:-8, 8:-8].mean()


def test_noise_measure_estimates_the_noise_level_of_a_flat_clip():
    rng = np.random.default_rng(1)
    frames = (128 + rng.normal(0, 8.0, (3, 64, 64, 1))).repeat(3, -1).clip(0, 255).astype(np.uint8)
    estimate = np.median(_maps(frames)["noise"][:, 8:-8, 8:-8]) * 255
    assert estimate == pytest.approx(8.0, rel=0.2)
    flat = np.full((3, 64, 64, 3), 128, np.uint8)
    assert _maps(flat)["noise"].max() < 1e-6


def test_blockiness_finds_8_pixel_blocks():
    rng = np.random.default_rng(2)
    blocks = np.kron(rng.integers(60, 200, (1, 8, 8)), np.ones((1, 8, 8)))[..., None].repeat(3, -1).astype(np.uint8)
    smooth = np.tile(np.linspace(60, 200, 64)[None, None, :, None], (1, 64, 1, 3)).astype(np.uint8)
    assert _maps(blocks)["blockiness"].mean() > 10 * (_maps(smooth)["blockiness"].mean() + 1e-4)


def test_exposure_counts_clipped_pixels():
    frames = np.full((2, 32, 32, 3), 128, np.uint8)
    frames[:, :, :16] = 255
    exposure = _maps(frames)["exposure"]
    assert exposure[:, :, :12].mean() > 0.95 and exposure[:, :, 20:].mean() < 0.05


def test_flicker_is_zero_for_a_still_clip_and_grows_with_brightness_jumps():
    still = _texture(t=6)
    jumpy = still.astype(float) * np.array([1.0, 1.2, 1.0, 1.2, 1.0, 1.2])[:, None, None, None]
    jumpy = jumpy.clip(0, 255).astype(np.uint8)
    assert _maps(still)["flicker"].max() < 1e-6
    assert _maps(jumpy)["flicker"].mean() > 0.05


def test_holes_measure_finds_the_plain_background_inside_the_frame():
    frames = _texture(t=2)
    frames[:, :6], frames[:, -6:], frames[:, :, :6], frames[:, :, -6:] = 237, 237, 237, 237  # plain border
    frames[:, 16:48, 16:48] = 237
    holes = _maps(frames)["holes"]
    assert holes[:, 28:36, 28:36].mean() > 0.8 and holes[:, 8:14, 50:56].mean() < 0.2


def test_smear_measure_is_high_for_streaks_and_low_for_isotropic_texture():
    stripes = np.tile((np.sin(np.arange(64) / 1.5)[None, :] * 80 + 128)[None, :, :, None], (2, 64, 1, 3)).astype(np.uint8)
    assert _maps(stripes)["smear"][:, 8:-8, 8:-8].mean() > 0.8
    assert _maps(_texture(t=2))["smear"][:, 8:-8, 8:-8].mean() < 0.5


def _rotation(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def test_rigid_motion_leaves_no_residual_and_a_sliding_part_does():
    rng = np.random.default_rng(3)
    shape = rng.normal(size=(478, 3)) * 50
    frames = np.stack([1.3 * shape @ _rotation(y).T + [100, 80, 0] for y in np.linspace(-0.6, 0.6, 9)])
    found = np.ones(9, bool)
    assert np.nanmax(rigid_residuals(frames.astype(np.float32), found)) < 1e-4
    moved = frames.copy()
    moved[::2, :20] += [6.0, 0.0, 0.0]  # 20 points slide back and forth
    residual = rigid_residuals(moved.astype(np.float32), found)
    assert residual[:, :20].mean() > 5 * residual[:, 20:].mean()


def test_rigid_residuals_skip_frames_without_a_face():
    landmarks = np.random.default_rng(4).normal(size=(3, 478, 3)).astype(np.float32)
    landmarks[1] = np.nan
    residual = rigid_residuals(landmarks, np.array([True, False, True]))
    assert np.isnan(residual[1]).all() and np.isfinite(residual[[0, 2]]).all()


def test_aligning_all_frames_at_once_equals_aligning_each():
    from judge.evidence import _align, align_all

    rng = np.random.default_rng(0)
    reference = rng.normal(size=(478, 3))
    reference -= reference.mean(0)
    shapes = []
    for k in range(6):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        if k % 2:
            q[:, 0] *= -1  # an improper one: the reflection fix must apply
        shape = (0.5 + k) * reference @ q + rng.normal(scale=0.01, size=reference.shape)
        shapes.append(shape - shape.mean(0))
    shapes = np.stack(shapes)
    expected = np.stack([_align(s, reference) for s in shapes])
    np.testing.assert_allclose(align_all(shapes, reference), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("colour", [(0.0, 0.0, 0.0), (255.0, 255.0, 255.0), (236.5, 17.4, 128.0), (300.0, -4.0, 99.5)])
def test_background_distance_is_the_largest_channel_difference(colour):
    from judge.track import background_distance

    frames = np.random.default_rng(4).integers(0, 256, (3, 17, 23, 3), dtype=np.uint8)
    frames[0, 0, 0], frames[0, 0, 1] = 0, 255
    target = np.clip(np.round(colour), 0, 255)
    expected = np.abs(frames.astype(np.float64) - target).max(-1)
    got = background_distance(frames, np.array(colour, np.float32))
    assert got.dtype == np.float32 and got.shape == (3, 17, 23)
    np.testing.assert_array_equal(got, expected)
