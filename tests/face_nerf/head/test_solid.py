"""The mesh-to-SDF conversion: an icosphere's signed distance against the exact one, an open tube, errors."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from face_nerf.head.raster import vertex_normals
from face_nerf.head.solid import grid_axes, mesh_sdf, surface_samples


def _sphere(radius: float = 0.5):
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    return v, f, vertex_normals(v, f)


def _lattice(step: float, half: float = 0.8):
    bounds = np.array([[-half] * 3, [half] * 3])
    counts, _ = grid_axes(bounds, step)
    zz, yy, xx = np.meshgrid(*(bounds[0, i] + np.arange(counts[i]) * step for i in (2, 1, 0)), indexing="ij")
    return bounds[0], counts, np.stack([xx, yy, zz], -1)


def test_sphere_sdf_matches_the_exact_distance_near_the_surface():
    v, f, n = _sphere()
    step = 0.04
    lower, counts, points = _lattice(step)
    sdf = mesh_sdf(v, f, n, f, lower, counts, step)
    exact = np.linalg.norm(points, axis=-1) - 0.5
    assert sdf.shape == tuple(counts[::-1])
    near = np.abs(exact) < 2 * step
    assert np.abs(sdf[near] - exact[near]).max() < 0.15 * step  # sub-voxel near the surface
    assert (np.sign(sdf) == np.sign(exact))[np.abs(exact) > step].all()  # inside is inside everywhere


def test_offset_grows_the_surface_by_the_offset():
    v, f, n = _sphere()
    step = 0.04
    lower, counts, points = _lattice(step)
    sdf = mesh_sdf(v, f, n, f, lower, counts, step, band=8, offset=np.full(len(v), 0.1))
    exact = np.linalg.norm(points, axis=-1) - 0.6
    near = np.abs(exact) < step
    assert np.abs(sdf[near] - exact[near]).mean() < 0.25 * step


def test_open_tube_is_solid_slice_by_slice():
    """A cylinder without caps (like the neck's cut) still has an inside."""
    mesh = trimesh.creation.cylinder(radius=0.3, height=1.0, sections=48)
    keep = np.abs(mesh.face_normals[:, 1]) < 0.5  # its caps point along z: drop them after turning y up
    v = np.asarray(mesh.vertices)[:, [0, 2, 1]]
    f = np.asarray(mesh.faces)[np.abs(mesh.face_normals[:, 2]) < 0.5][:, ::-1]
    assert keep.any()
    step = 0.05
    lower, counts, points = _lattice(step)
    sdf = mesh_sdf(v, f, vertex_normals(v, f), f, lower, counts, step)
    radial = np.hypot(points[..., 0], points[..., 2])
    middle = np.abs(points[..., 1]) < 0.3
    assert (sdf[middle & (radial < 0.2)] < 0).all() and (sdf[middle & (radial > 0.4)] > 0).all()


def test_samples_are_dense_and_carry_attributes():
    v, f, n = _sphere()
    points, values = surface_samples(v, f, np.concatenate([n, v[:, :1]], 1), 0.01)
    assert points.shape[1] == 3 and values.shape == (len(points), 4)
    assert np.allclose(values[:, 3], points[:, 0])  # a linear attribute interpolates exactly
    gaps = np.linalg.norm(np.diff(points[len(v):len(v) + 5], axis=0), axis=1)
    assert gaps.max() < 0.02


def test_mesh_outside_the_lattice_is_refused():
    v, f, n = _sphere()
    with pytest.raises(ValueError, match="outside the voxel lattice"):
        mesh_sdf(v, f, n, f, np.zeros(3), np.array([8, 8, 8]), 0.01)
    with pytest.raises(ValueError, match="shape of"):
        mesh_sdf(v[:, :2], f, n, f, np.zeros(3), np.array([8, 8, 8]), 0.01)
