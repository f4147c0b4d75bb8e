"""UV texels located on the mesh: a two-triangle square, the head's layout, errors."""

from __future__ import annotations

import numpy as np
import pytest

from face_nerf.head.texture import texel_map


def test_square_layout_covers_every_texel_and_interpolates_positions():
    uvs = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    vertices = np.array([[0, 0, 0], [2, 0, 0], [2, 2, 1], [0, 2, 1]], np.float64)  # uv * 2, z follows v
    mapping = texel_map(uvs, faces, 16)
    assert (mapping.face >= 0).all()
    texels, points = mapping.points(vertices, faces)
    u = (texels[:, 1] + 0.5) / 16
    v = 1 - (texels[:, 0] + 0.5) / 16
    assert np.allclose(points[:, 0], 2 * u, atol=1e-5) and np.allclose(points[:, 1], 2 * v, atol=1e-5)
    assert np.allclose(points[:, 2], v, atol=1e-5)
    assert np.allclose(mapping.barycentric.sum(-1), 1.0, atol=1e-5)


def test_large_triangles_are_rasterised_too():
    uvs = np.array([[0, 0], [1, 0], [0, 1]], np.float32)
    mapping = texel_map(uvs, np.array([[0, 1, 2]]), 100)  # 100 texels across: beyond the batched window
    covered = (mapping.face >= 0).mean()
    assert 0.45 < covered < 0.55


def test_head_layout_texels_land_on_their_triangles(head):
    mapping = texel_map(head.uvs, head.uv_faces, 256)
    assert 0.15 < (mapping.face >= 0).mean() < 0.5
    rows, cols = np.nonzero(mapping.face >= 0)
    uv = (head.uvs[head.uv_faces[mapping.face[rows, cols]]] * mapping.barycentric[rows, cols][..., None]).sum(1)
    assert np.allclose(uv[:, 0], (cols + 0.5) / 256, atol=1e-4) and np.allclose(uv[:, 1], 1 - (rows + 0.5) / 256, atol=1e-4)


def test_bad_layouts_are_refused():
    with pytest.raises(ValueError, match="uv_faces"):
        texel_map(np.zeros((3, 3)), np.array([[0, 1, 2]]), 16)
    with pytest.raises(ValueError, match="at least 8"):
        texel_map(np.zeros((3, 2)), np.array([[0, 1, 2]]), 4)
