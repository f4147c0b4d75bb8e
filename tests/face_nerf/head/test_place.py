"""The fitted head placed in the world: its camera sees it where the fit put it."""

from __future__ import annotations

import numpy as np
import torch


def test_placed_mesh_projects_where_the_fit_put_it(example_run):
    _, _, _, recon, _ = example_run
    head = recon.head
    perspective = head.placement.camera.project(torch.from_numpy(head.vertices))[0].numpy()
    weak = head.fit.project(head.fit.vertices())
    face_px = np.linalg.norm(recon.analysis.landmarks[10, :2] - recon.analysis.landmarks[152, :2])
    # The pinhole camera 9 face heights away differs from the weak-perspective fit only by depth.
    assert np.linalg.norm(perspective - weak, axis=1).mean() < 0.02 * face_px


def test_world_landmarks_project_onto_the_detected_ones(example_run):
    _, _, _, recon, _ = example_run
    placement = recon.head.placement
    pixels = placement.camera.project(torch.from_numpy(placement.landmarks))[0].numpy()
    assert np.abs(pixels - recon.analysis.landmarks[:, :2]).max() < 0.05


def test_world_unit_is_the_face_height(example_run):
    _, _, _, recon, _ = example_run
    head = recon.head
    assert 0.12 < head.metres_per_unit < 0.25  # an adult face, forehead to chin, in metres
    assert np.allclose(np.linalg.norm(head.normals, axis=1), 1.0, atol=1e-4)


def test_mirror_swaps_the_eyes(example_run):
    _, _, _, recon, _ = example_run
    lm = recon.head.placement.landmarks.astype(np.float64)
    iod = np.linalg.norm(lm[33] - lm[263])
    assert np.linalg.norm(recon.head.placement.mirror(lm[33]) - lm[263]) < 0.15 * iod
