"""Baking a photo into UV space: the bake samples the right place, hides what the camera cannot see,
keeps its weights in range, and bakes a real photo's face into the face's UV island.
"""

from __future__ import annotations

import numpy as np
import pytest

from face_nerf.head import HeadFit, fit_head
from face_nerf.head.bake import BakeConfig, UVBake, bake_photo, rasterize_uv_layout
from face_nerf.head.fit import rotation_from_euler
from face_nerf.landmarks import detect_landmarks
from face_nerf.photo import load_photo

SIZE = 256  # texels: small enough for a fast test, large enough for the face island
PHOTO = 512  # synthetic photo width and height, pixels


def _posed_fit(head, yaw: float) -> HeadFit:
    """A HeadFit with a known camera and the generic shape: the head fills the middle of a 512 px photo."""
    return HeadFit(rotation=rotation_from_euler(yaw, 0, 0), scale=1400.0, translation=np.array([256.0, 240.0]),
                   target_weights={}, action_weights={}, residuals=np.zeros(478), mean_error=0.0,
                   mean_error_percent_iod=0.0, iterations=0, template=head)


def _ramp_photo() -> np.ndarray:
    """[512, 512, 3] uint8: red grows with x, green with y, blue constant."""
    col, row = np.meshgrid(np.arange(PHOTO), np.arange(PHOTO))
    ramp = np.stack([col / (PHOTO - 1), row / (PHOTO - 1), np.full(col.shape, 0.5)], -1)
    return (ramp * 255).round().astype(np.uint8)


def _texel_region(head, size: int, region: str) -> np.ndarray:
    """[S, S] bool: covered texels whose nearest triangle corner belongs to the region."""
    layout = rasterize_uv_layout(head, size)
    covered = layout.triangle >= 0
    corners = head.faces[layout.triangle[covered]]
    nearest = corners[np.arange(len(corners)), layout.barycentric[covered].argmax(1)]
    member = np.zeros(len(head.vertices), bool)
    member[head.regions[region]] = True
    out = np.zeros(covered.shape, bool)
    out[covered] = member[nearest]
    return out


@pytest.fixture(scope="module")
def frontal(head) -> UVBake:
    return bake_photo(_ramp_photo(), head, _posed_fit(head, 0.0), size=SIZE)


@pytest.fixture(scope="module")
def turned(head) -> UVBake:
    return bake_photo(_ramp_photo(), head, _posed_fit(head, 60.0), size=SIZE)


def test_shapes_dtypes_and_ranges(frontal):
    assert frontal.texture.shape == (SIZE, SIZE, 3) and frontal.texture.dtype == np.float32
    assert frontal.weight.shape == (SIZE, SIZE) and frontal.weight.dtype == np.float32
    assert frontal.coverage.shape == (SIZE, SIZE) and frontal.coverage.dtype == bool
    assert frontal.weight.min() >= 0 and frontal.weight.max() <= 1
    assert frontal.texture.min() >= 0 and frontal.texture.max() <= 1
    assert np.all(frontal.texture[frontal.weight == 0] == 0)
    assert np.all(frontal.weight[~frontal.coverage] == 0)
    print(f"coverage {frontal.coverage.mean():.3f}, seen fraction {frontal.seen_fraction:.3f}")
    assert frontal.coverage.mean() > 0.2
    assert 0 < frontal.seen_fraction < 1


def test_bake_samples_the_projection_of_each_texel(frontal, turned):
    for bake in (frontal, turned):
        sure = bake.weight > 0.9
        assert sure.sum() > 100
        expected = np.stack([(bake.pixels[sure, 0] - 0.5) / (PHOTO - 1), (bake.pixels[sure, 1] - 0.5) / (PHOTO - 1),
                             np.full(sure.sum(), 128 / 255)], -1)
        error = np.abs(bake.texture[sure] - expected).max()
        print(f"max colour error over {sure.sum()} sure texels: {error * 255:.3f}/255")
        assert error < 2 / 255


def test_turned_head_hides_its_far_side(head, turned):
    x = turned.points[..., 0]
    ears, face = _texel_region(head, SIZE, "ears"), _texel_region(head, SIZE, "face")
    # yaw +60 deg turns +x away from the camera (z = -sin(yaw) x)
    far_ear, near_ear = ears & (x > 0.06), ears & (x < -0.06)
    far_cheek, near_cheek = face & (x > 0.05), face & (x < -0.03)
    print(f"far ear max {turned.weight[far_ear].max():.3f}, near ear mean {turned.weight[near_ear].mean():.3f}, "
          f"far cheek max {turned.weight[far_cheek].max():.3f}, near cheek mean {turned.weight[near_cheek].mean():.3f}")
    assert far_ear.sum() > 50 and far_cheek.sum() > 50
    assert turned.weight[far_ear].max() == 0 and turned.weight[far_cheek].max() == 0
    assert turned.weight[near_ear].mean() > 0.2 and turned.weight[near_cheek].mean() > 0.5


def test_frontal_view_hides_the_back_of_the_head(head, frontal):
    back = _texel_region(head, SIZE, "scalp") & (frontal.points[..., 2] < -0.1)  # behind the ears
    assert back.sum() > 200
    assert frontal.weight[back].max() == 0
    face = _texel_region(head, SIZE, "face")
    # the face region reaches round the jaw to the ears, so its sides are seen only at grazing angles
    print(f"frontal face texels: weight > 0 {(frontal.weight[face] > 0).mean():.3f}, "
          f"> 0.5 {(frontal.weight[face] > 0.5).mean():.3f}")
    assert (frontal.weight[face] > 0).mean() > 0.6 and (frontal.weight[face] > 0.5).mean() > 0.4


@pytest.mark.parametrize("photo", [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 4), np.uint8),
                                   np.zeros((64, 64, 3), np.float32), np.zeros((3, 64, 64), np.uint8)])
def test_bad_photo_raises(head, photo):
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        bake_photo(photo, head, _posed_fit(head, 0.0), size=32)


def test_bad_config_raises():
    with pytest.raises(ValueError):
        BakeConfig(grazing_low=0.5, grazing_high=0.4)
    with pytest.raises(ValueError):
        BakeConfig(size=4)


def test_real_photo_face_is_mostly_seen(head, corr):
    rgb = load_photo("assets/examples/grace_hopper.jpg").rgb
    fit = fit_head(detect_landmarks(rgb)[0], head, corr)
    bake = bake_photo(rgb, head, fit, size=SIZE)
    face = _texel_region(head, SIZE, "face")
    seen, sure = float((bake.weight[face] > 0).mean()), float((bake.weight[face] > 0.5).mean())
    print(f"grace_hopper: face texels weight > 0 {seen:.3f}, > 0.5 {sure:.3f}; all texels > 0.5 {bake.seen_fraction:.3f}")
    assert seen > 0.6 and sure > 0.3
    from PIL import Image  # noqa: PLC0415 - only this test writes an image
    Image.fromarray((bake.texture * bake.weight[..., None] * 255).round().astype(np.uint8)).save("/tmp/bake_uv.png")
