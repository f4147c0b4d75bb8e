"""judge.plausibility: the head model fits a real face's landmarks closely, and cartoon proportions badly."""

from __future__ import annotations

import numpy as np
import pytest

from judge.evidence import _yaw
from judge.plausibility import PLAUSIBILITY_FRAMES, HeadModel, shape_evidence
from judge.track import track_faces


@pytest.fixture(scope="module")
def track():
    from face_nerf.export import render_views, turntable_poses
    from face_nerf.pipeline import reconstruct
    from tests.conftest import EXAMPLES

    frames, _ = render_views(reconstruct(EXAMPLES["astronaut"]).field, turntable_poses(8, 45.0), 256)
    return track_faces(frames)


@pytest.fixture(scope="module")
def model():
    return HeadModel.load()


def cartoon(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks [T, 478, 3] with anime proportions: eyes twice as large about their centres, the jaw
    pulled up towards the nose."""
    from face_nerf.regions import LEFT_EYE, RIGHT_EYE

    out = landmarks.copy()
    for eye in (list(RIGHT_EYE) + list(range(468, 473)), list(LEFT_EYE) + list(range(473, 478))):
        centre = out[:, eye].mean(1, keepdims=True)
        out[:, eye] = centre + 2.0 * (out[:, eye] - centre)
    nose = out[:, 1:2]
    below = out[:, :, 1] > nose[:, :, 1]
    out[..., 1] = np.where(below, nose[..., 1] + 0.6 * (out[..., 1] - nose[..., 1]), out[..., 1])
    return out


def test_a_real_face_fits_closely_on_its_most_frontal_frames(track, model):
    yaw = _yaw(track)
    evidence = shape_evidence(track.landmarks, yaw, model)
    assert len(evidence.frames) == PLAUSIBILITY_FRAMES
    assert set(evidence.frames) == set(np.argsort(np.abs(yaw))[:PLAUSIBILITY_FRAMES])
    error, extremity = evidence.values()
    assert 0.0 < error < 4.0 and 0.0 <= extremity < 0.15


def test_cartoon_proportions_fit_worse_or_need_extreme_shapes(track, model):
    yaw = _yaw(track)
    real = shape_evidence(track.landmarks, yaw, model).values()
    drawn = shape_evidence(cartoon(track.landmarks), yaw, model).values()
    assert drawn[0] > 1.4 * real[0] and drawn[1] > real[1]


def test_no_face_means_nothing_fitted(model):
    evidence = shape_evidence(np.full((3, 478, 3), np.nan, np.float32), np.full(3, np.nan), model)
    assert len(evidence.frames) == 0 and evidence.values() == (0.0, 0.0)
