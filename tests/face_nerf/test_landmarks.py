"""Face analysis on the example photos and on photos without or with several faces."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from face_nerf.errors import NoFaceError
from face_nerf.landmarks import MIN_FACE_PIXELS, NUM_LANDMARKS, analyse_face, face_size, nose_yaw_proxy
from face_nerf.photo import load_photo
from tests.conftest import EXAMPLES


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_give_478_landmarks_and_a_person_mask(name):
    photo = load_photo(EXAMPLES[name])
    analysis = analyse_face(photo.rgb)
    w, h = photo.size
    assert analysis.landmarks.shape == (NUM_LANDMARKS, 3)
    assert analysis.person_mask.shape == (h, w)
    assert 0.0 <= analysis.person_mask.min() and analysis.person_mask.max() <= 1.0
    hull = analysis.hull_mask()
    # The face is inside the person, and takes a plausible share of the photo.
    assert analysis.person_mask[hull].mean() > 0.9
    assert 0.02 < hull.mean() < 0.5
    assert abs(nose_yaw_proxy(analysis.landmarks)) < 0.1  # both examples look at the camera
    assert not any("pixels across" in note for note in analysis.warnings)  # large enough faces


def test_no_face_is_a_clear_error():
    sky = np.zeros((256, 256, 3), np.uint8)
    sky[..., 2] = np.linspace(80, 220, 256, dtype=np.uint8)[:, None]
    with pytest.raises(NoFaceError, match="No face found"):
        analyse_face(sky)


def test_several_faces_keep_the_largest_with_a_warning():
    photo = load_photo(EXAMPLES["grace_hopper"]).rgb
    small = np.asarray(Image.fromarray(photo).resize((256, 300)))
    canvas = np.full((600, 800, 3), 235, np.uint8)
    canvas[:, :512] = photo
    canvas[150:450, 530:786] = small
    with pytest.warns(UserWarning, match="2 faces found"):
        analysis = analyse_face(canvas)
    assert analysis.num_faces == 2
    assert analysis.landmarks[:, 0].max() < 512  # the big one, on the left


def test_a_small_face_is_kept_with_a_warning_that_says_how_small():
    photo = load_photo(EXAMPLES["grace_hopper"]).rgb
    canvas = np.full((375, 500, 3), 205, np.uint8)  # a family group: four faces about 35 pixels tall
    for i in range(4):
        canvas[5:110, 10 + 100 * i:100 + 100 * i] = np.asarray(Image.fromarray(photo).resize((90, 105)))
    with pytest.warns(UserWarning, match=r"The face is only \d+ pixels across, so the 3D face will be blurry"):
        analysis = analyse_face(canvas)
    assert face_size(analysis.landmarks) < MIN_FACE_PIXELS
    assert any("at least 80 pixels across (crop a group photo around one face)" in n for n in analysis.warnings)


def test_landmarker_rejects_bad_arrays():
    from face_nerf.landmarks import detect_landmarks

    with pytest.raises(ValueError, match=r"shape of \(H, W, 3\)"):
        detect_landmarks(np.zeros((64, 64), np.uint8))
