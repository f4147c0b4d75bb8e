"""Fitting the head template to 478 landmarks: synthetic recovery, real photos, bad input, the Jacobian.

The template and correspondence are built once per module into a temporary cache folder.
"""

from __future__ import annotations

import numpy as np
import pytest

from face_nerf.head import HeadFit, fit_head
from face_nerf.head.fit import FitConfig, _Model, _landmark_offsets, opposite_target_pairs, rotation_from_euler
from face_nerf.landmarks import detect_landmarks
from face_nerf.photo import load_photo

TRUE_TARGETS = {"nose-scale-horiz-incr": 0.5, "chin-width-decr": 0.4, "mouth-scale-horiz-incr": 0.3,
                "eyebrows-trans-up": 0.4}
TRUE_ACTIONS = {"jawOpen": 0.3, "mouthSmileLeft": 0.4}
SCALE, SHIFT = 1500.0, np.array([320.0, 260.0])  # pixels per metre; where the template origin lands


def _synthetic(head, corr, yaw, pitch, roll, noise=0.0, seed=0):
    rotation = rotation_from_euler(yaw, pitch, roll)
    vertices = head.deformed(TRUE_TARGETS, TRUE_ACTIONS)
    landmarks = SCALE * (corr.points(vertices) @ rotation.T)[:, :2] * [1, -1] + SHIFT
    landmarks += np.random.default_rng(seed).normal(0, noise, landmarks.shape)
    return landmarks, rotation, vertices


def _angle_degrees(a, b):
    return float(np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1))))


# --- shape and synthetic recovery --------------------------------------------------------------------


@pytest.mark.parametrize("yaw", [20.0, 35.0])
def test_recovers_pose_and_shape_without_noise(head, corr, yaw):
    landmarks, rotation, vertices = _synthetic(head, corr, yaw, -5, 3)
    fit = fit_head(landmarks, head, corr)
    face = head.regions["face"]
    gap = np.linalg.norm(fit.vertices()[face] - vertices[face], axis=1)
    print(f"yaw {yaw}: rotation error {_angle_degrees(fit.rotation, rotation):.3f} deg, landmark error "
          f"{fit.mean_error:.4f} px, face vertices {1000 * gap.mean():.2f} mm mean / {1000 * gap.max():.2f} max")
    assert isinstance(fit, HeadFit) and fit.rotation.shape == (3, 3) and fit.translation.shape == (2,)
    assert fit.residuals.shape == (478,) and fit.vertices().shape == head.vertices.shape
    assert _angle_degrees(fit.rotation, rotation) < 1.0
    assert abs(fit.scale / SCALE - 1) < 0.02 and np.abs(fit.translation - SHIFT).max() < 2.0
    assert fit.mean_error < 0.5
    assert gap.mean() < 0.002 and gap.max() < 0.005
    for name, weight in TRUE_TARGETS.items():
        assert fit.target_weights[name] == pytest.approx(weight, abs=0.15)
    assert fit.action_weights["jawOpen"] == pytest.approx(0.3, abs=0.15)
    np.testing.assert_allclose(fit.project(corr.points(fit.vertices())), landmarks, atol=2.0)


def test_recovers_pose_with_noise(head, corr):
    landmarks, rotation, _ = _synthetic(head, corr, 20, -5, 3, noise=0.3, seed=7)
    fit = fit_head(landmarks, head, corr)
    print(f"noise 0.3 px: rotation error {_angle_degrees(fit.rotation, rotation):.3f} deg, "
          f"landmark error {fit.mean_error:.3f} px")
    assert _angle_degrees(fit.rotation, rotation) < 2.0
    assert fit.mean_error < 0.6


def test_generic_frontal_head_fits_with_zero_weights(head, corr):
    rotation = np.eye(3)
    landmarks = SCALE * (corr.points(head.vertices) @ rotation.T)[:, :2] * [1, -1] + SHIFT
    fit = fit_head(landmarks, head, corr)
    assert _angle_degrees(fit.rotation, rotation) < 0.1
    assert max(fit.target_weights.values()) < 0.02 and max(fit.action_weights.values()) < 0.02


def test_target_pairs_are_opposite(head):
    pairs = opposite_target_pairs(head)
    assert 40 <= len(pairs) <= 120
    assert ("nose-scale-horiz-decr", "nose-scale-horiz-incr") in pairs
    assert not any(n.startswith("head-trans-") for pair in pairs for n in pair)


# --- real photos -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["grace_hopper.jpg", "astronaut.png"])
def test_real_photo_error_is_small(head, corr, name):
    landmarks = detect_landmarks(load_photo(f"assets/examples/{name}").rgb)[0]
    fit = fit_head(landmarks, head, corr)
    print(f"{name}: mean error {fit.mean_error:.2f} px = {fit.mean_error_percent_iod:.2f}% of the inter-ocular "
          f"distance, {fit.iterations} iterations")
    assert fit.mean_error_percent_iod < 2.5
    assert all(0 <= w <= 1 for w in (*fit.target_weights.values(), *fit.action_weights.values()))


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("landmarks", [np.zeros((468, 2)), np.zeros((478, 4)), np.zeros(478), np.zeros((2, 478))])
def test_bad_shape_raises(head, corr, landmarks):
    with pytest.raises(ValueError, match=r"\(478, 2\) or \(478, 3\)"):
        fit_head(landmarks, head, corr)


def test_non_finite_raises(head, corr):
    landmarks, _, _ = _synthetic(head, corr, 0, 0, 0)
    landmarks[5, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fit_head(landmarks, head, corr)


def test_bad_config_raises(head, corr):
    landmarks, _, _ = _synthetic(head, corr, 0, 0, 0)
    with pytest.raises(ValueError, match="Unknown facial action"):
        fit_head(landmarks, head, corr, FitConfig(actions=("jawOpn",)))
    with pytest.raises(ValueError, match="outline_weight"):
        FitConfig(outline_weight=2.0)


# --- the Jacobian ------------------------------------------------------------------------------------


def test_jacobian_matches_central_differences(head, corr):
    config = FitConfig()
    landmarks, _, _ = _synthetic(head, corr, 20, -5, 3)
    pairs = opposite_target_pairs(head, config)
    at = _landmark_offsets(corr, len(head.vertices))
    negative = np.stack([-at(head.targets[n]) for n, _ in pairs] + [0 * at(head.facial_actions[a])
                                                                     for a in config.actions], -1)
    positive = np.stack([at(head.targets[p]) for _, p in pairs] + [at(head.facial_actions[a])
                                                                    for a in config.actions], -1)
    model = _Model(corr.points(head.vertices).astype(np.float64), negative, positive, len(pairs), landmarks, config)
    rng = np.random.default_rng(3)
    # Away from 0 and the bounds, where the model is smooth.
    c = rng.uniform(0.2, 0.6, negative.shape[-1]) * np.where(np.arange(negative.shape[-1]) < len(pairs),
                                                              rng.choice([-1, 1], negative.shape[-1]), 1)
    rotation, scale, translation = rotation_from_euler(10, 5, -4), 1400.0, np.array([300.0, 250.0])
    analytic = model.jacobian(c, rotation, scale)
    numeric = np.empty_like(analytic)
    h = 1e-6
    for k in range(analytic.shape[1]):
        delta = np.zeros(analytic.shape[1])
        delta[k] = h
        plus = model.residuals(*model.step(c, rotation, scale, translation, delta))
        minus = model.residuals(*model.step(c, rotation, scale, translation, -delta))
        numeric[:, k] = (plus - minus) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, atol=1e-5 * np.abs(numeric).max())
