"""Face regions: masks from landmarks, and the guards that keep tiny faces (group photos) from crashing.

Pillow's rank filters (MaxFilter and kin) end the process with SIGFPE at size 1, which a growth
proportional to a small face's size gives; these tests call the guarded functions with such sizes, and
reconstruct photos of small faces in a subprocess so that a crash fails the test instead of pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from face_nerf.photo import load_photo
from face_nerf.regions import REGION_ID, dilate, dilation_radius, hull_mask, photo_region_labels, skin_mask
from tests.conftest import EXAMPLES, ROOT, shared_realworld

GROUP_PHOTOS = ("p17_group_of_four_lowres.jpg", "p18_two_men_side_by_side.jpg", "p06_old_bald_man_profile.jpg")


def test_missing_shared_photos_skip_unless_required(monkeypatch, tmp_path):
    import tests.conftest

    monkeypatch.setattr(tests.conftest, "SHARED", tmp_path / "absent")
    monkeypatch.delenv("FACELAB_REQUIRE_SHARED", raising=False)
    with pytest.raises(pytest.skip.Exception, match="shared real-world material is not at"):
        shared_realworld()
    monkeypatch.setenv("FACELAB_REQUIRE_SHARED", "1")
    with pytest.raises(pytest.fail.Exception, match="FACELAB_REQUIRE_SHARED=1 requires it"):
        shared_realworld()


@pytest.fixture(scope="module")
def hopper_landmarks() -> np.ndarray:
    """[478, 3] landmarks of the Grace Hopper example (about 200 pixels tall)."""
    from face_nerf.landmarks import detect_landmarks

    return detect_landmarks(load_photo(EXAMPLES["grace_hopper"]).rgb)[0]


def tiny_face(landmarks: np.ndarray, height: float, offset: float = 4.0) -> np.ndarray:
    """The landmarks shrunk to a face ``height`` pixels tall, near the top-left corner."""
    xy = landmarks.astype(np.float64).copy()
    xy -= xy.min(0)
    return (xy * height / np.ptp(xy[:, 1]) + offset).astype(np.float32)


def group_photo(face_width: int, copies: int, size: tuple[int, int]) -> Image.Image:
    """A plain canvas with ``copies`` small copies of the Grace Hopper photo in a row (a group photo)."""
    source = Image.open(EXAMPLES["grace_hopper"]).convert("RGB")
    small = source.resize((face_width, round(face_width * source.height / source.width)), Image.LANCZOS)
    canvas = Image.new("RGB", size, (200, 205, 210))
    for i in range(copies):
        canvas.paste(small, (10 + i * (face_width + 10), 5))
    return canvas


def reconstruct_in_subprocess(photo: Path, out: Path) -> subprocess.CompletedProcess:
    """``python -m face_nerf reconstruct`` on a small turntable, in a process of its own."""
    command = [sys.executable, "-m", "face_nerf", "reconstruct", str(photo), "--out", str(out), "--quiet",
               "--frames", "2", "--size", "64", "--i-have-consent"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)


def assert_reconstructed_or_refused(run: subprocess.CompletedProcess, out: Path) -> None:
    """The process ended by itself: either outputs were written, or a FaceLabError was printed."""
    assert run.returncode >= 0, f"killed by signal {-run.returncode}:\n{run.stderr[-2000:]}"
    if run.returncode == 0:
        assert (out / "turntable.mp4").is_file()
    else:
        assert "error: " in run.stderr and "Traceback" not in run.stderr, run.stderr[-2000:]


# dilation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pixels, radius", [(0.0, 0), (0.3, 0), (0.5, 0), (0.51, 1), (1.0, 1), (2.4, 2), (2.6, 3),
                                            (-1.0, 0), (float("nan"), 0), (float("inf"), 0)])
def test_dilation_radius(pixels, radius):
    assert dilation_radius(pixels) == radius


@pytest.mark.parametrize("pixels", [0.0, 0.2, 0.49, 0.5, -3.0, float("nan")])
def test_dilate_by_under_half_a_pixel_is_a_no_op(pixels):
    mask = Image.new("L", (9, 9), 0)
    mask.putpixel((4, 4), 255)
    assert np.array_equal(np.asarray(dilate(mask, pixels)), np.asarray(mask))


def test_dilate_grows_a_point_into_a_square():
    mask = Image.new("L", (9, 9), 0)
    mask.putpixel((4, 4), 255)
    grown = np.asarray(dilate(mask, 2.0)) > 127
    assert grown.sum() == 25 and grown[2:7, 2:7].all()


# hull_mask ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grow", [0.01, 0.3, 0.5])
def test_hull_mask_with_a_sub_pixel_growth_equals_no_growth(grow):
    points = np.array([[2.0, 2.0], [12.0, 3.0], [7.0, 11.0]])
    assert np.array_equal(hull_mask(points, (16, 16), grow=grow), hull_mask(points, (16, 16)))


def test_hull_mask_growth_contains_the_hull_and_reaches_r_pixels_further():
    points = np.array([[10.0, 10.0], [20.0, 10.0], [20.0, 20.0], [10.0, 20.0]])
    hull, grown = hull_mask(points, (32, 32)), hull_mask(points, (32, 32), grow=2.0)
    assert grown[hull].all()
    rows, cols = np.nonzero(grown)
    assert (rows.min(), cols.min()) == (8, 8) and (rows.max(), cols.max()) == (22, 22)


@pytest.mark.parametrize("points", [np.array([[3.0, 3.0]] * 5), np.array([[1.0, 1.0], [5.0, 5.0]]),
                                    np.array([[1.0, 1.0], [3.0, 3.0], [6.0, 6.0]]), np.zeros((0, 2))])
def test_hull_mask_of_points_without_area_marks_the_points(points):
    mask = hull_mask(points, (10, 10), grow=0.3)
    assert mask.shape == (10, 10)
    for x, y in points:
        assert mask[int(y), int(x)]


# tiny faces ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("height", [3.0, 12.0, 36.0])
def test_skin_mask_of_a_tiny_face(hopper_landmarks, height):
    landmarks = tiny_face(hopper_landmarks, height)
    skin = skin_mask(landmarks, (64, 64))
    assert skin.shape == (64, 64) and skin.sum() <= (height + 2) ** 2


@pytest.mark.parametrize("height", [3.0, 12.0, 36.0])
def test_region_labels_of_a_tiny_face(hopper_landmarks, height):
    landmarks = tiny_face(hopper_landmarks, height)
    rgb = np.full((64, 64, 3), 180, np.uint8)
    labels = photo_region_labels(landmarks, np.ones((64, 64), np.float32), rgb)
    assert labels.shape == (64, 64) and labels.max() <= max(REGION_ID.values())
    if height >= 12:
        assert (labels == REGION_ID["skin"]).any() or (labels == REGION_ID["cheeks"]).any()


def test_group_photo_of_small_faces_reconstructs_the_largest_with_warnings(tmp_path):
    """Four faces about 36 pixels tall (a family group at 500x375): SIGFPE before the guards."""
    photo = tmp_path / "family.png"
    group_photo(90, 4, (500, 375)).save(photo)
    run = reconstruct_in_subprocess(photo, tmp_path / "out")
    assert_reconstructed_or_refused(run, tmp_path / "out")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "4 faces found; using the largest one" in run.stderr
    assert "pixels across" in run.stderr


@pytest.mark.parametrize("name", GROUP_PHOTOS)
def test_shared_group_photos_never_kill_the_process(name, tmp_path):
    photo = shared_realworld() / "photos" / name
    run = reconstruct_in_subprocess(photo, tmp_path / "out")
    assert_reconstructed_or_refused(run, tmp_path / "out")


def test_too_little_skin_for_the_light_fit_is_a_clear_error_not_a_value_error():
    """A tiny face in a large photo leaves a few skin pixels at the input view's low resolution (the
    delighting's guard; it lives here with the other tiny-face guards)."""
    from face_nerf.delight import MIN_SKIN_SAMPLES, _check_skin_samples
    from face_nerf.errors import NoFaceError

    _check_skin_samples(MIN_SKIN_SAMPLES)
    with pytest.raises(NoFaceError, match=r"\(12 pixels, at least 50 are needed\). Use a photo in which the face"):
        _check_skin_samples(12)


def test_dilate_is_a_square_maximum_filter():
    rng = np.random.default_rng(0)
    values = (rng.random((20, 24)) > 0.93).astype(np.uint8) * rng.integers(1, 256, (20, 24)).astype(np.uint8)
    grown = np.asarray(dilate(Image.fromarray(values), 2.0))
    padded = np.pad(values, 2)
    expected = np.max([padded[dy:dy + 20, dx:dx + 24] for dy in range(5) for dx in range(5)], axis=0)
    assert np.array_equal(grown, expected)
