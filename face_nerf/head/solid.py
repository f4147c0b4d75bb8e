"""A triangle mesh as a signed distance grid.

The head mesh is open at the neck cut and has pockets (eye sockets, mouth), so a 3D inside test would
leak. Every horizontal slice of a head, though, is a closed curve: the surface is sampled densely, marked
in the voxels it passes through, and each y-slice's enclosed voxels are filled in 2D. The signed distance
comes from Euclidean distance transforms of that solid, then, in a band around the surface, from the
nearest surface sample's tangent plane (sub-voxel accurate, so VolSDF's thin shell is smooth).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BAND_VOXELS = 2.5  # voxels nearer the surface than this take the tangent-plane distance
POCKET_CLOSING_VOXELS = 2  # openings up to about twice this many voxels wide are closed
OFFSET_SMOOTH_VOXELS = 2.0  # Gaussian smoothing of an offset (hair) surface, voxels
OFFSET_SMOOTH_FROM = 4.0  # offsets thicker than this many voxels are fully smoothed
SLICE_STRUCTURE = np.zeros((3, 3, 3), bool)
SLICE_STRUCTURE[:, 1, :] = ndimage.generate_binary_structure(2, 1)  # 4-connected within a y-slice only


def surface_samples(vertices: np.ndarray, faces: np.ndarray, attributes: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points on every triangle at most ``spacing`` apart, with per-vertex attributes interpolated.

    Args:
        vertices: [V, 3] positions.
        faces: [F, 3] vertex indices.
        attributes: [V, K] values per vertex (e.g. unit normals, hair thickness).
        spacing: largest gap between neighbouring samples along an edge.

    Returns:
        points [N, 3] and attributes [N, K] (float64), the vertices themselves first.
    """
    corners = vertices[faces]  # [F, 3, 3]
    longest = np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=-1).max(1)
    steps = np.maximum(np.ceil(longest / spacing).astype(int), 1)
    points, values = [vertices.astype(np.float64)], [attributes.astype(np.float64)]
    for k in np.unique(steps):
        i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
        keep = i + j <= k
        bary = np.stack([i[keep], j[keep], k - i[keep] - j[keep]], -1) / k  # [S, 3]
        chosen = faces[steps == k]
        points.append((bary @ vertices[chosen]).reshape(-1, 3))
        values.append((bary @ attributes[chosen]).reshape(-1, attributes.shape[1]))
    return np.concatenate(points), np.concatenate(values)


def grid_axes(bounds: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Voxel counts (x, y, z) and the upper corner of a lattice with spacing ``step`` from ``bounds[0]``."""
    counts = np.maximum(np.round((bounds[1] - bounds[0]) / step).astype(int) + 1, 8)
    return counts, bounds[0] + (counts - 1) * step


def mesh_sdf(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray, shell_faces: np.ndarray,
             lower: np.ndarray, counts: np.ndarray, step: float, band: float = BAND_VOXELS,
             offset: np.ndarray | None = None) -> np.ndarray:
    """Signed distance (negative inside) of a head mesh on a voxel lattice.

    Args:
        vertices: [V, 3] world positions.
        faces: [F, 3] all triangles (they close the slices: mouth and socket linings included).
        normals: [V, 3] unit outward vertex normals.
        shell_faces: [G, 3] the outer skin only (what the distance near the surface is measured to).
        lower: [3] world position of voxel (0, 0, 0).
        counts: (nx, ny, nz) voxels.
        step: voxel size.
        band: voxels within this distance of the skin take the tangent-plane distance where it agrees
            with the solid about the side (widen it to offset the surface smoothly, as the hair does).
        offset: [V] optional outward offset per vertex (hair thickness): the result is the distance
            minus the offset interpolated at each voxel's nearest skin point.

    Returns:
        [nz, ny, nx] float32 signed distance in world units.

    Raises:
        ValueError: shapes are wrong or the mesh lies outside the lattice.

    Example:
        >>> sdf = mesh_sdf(v, f, vertex_normals(v, f), f, v.min(0) - 0.1, np.array([64, 64, 64]), 0.01)  # doctest: +SKIP
    """
    if vertices.ndim != 2 or vertices.shape[1] != 3 or normals.shape != vertices.shape:
        raise ValueError(f"Vertices and normals must have a shape of (V, 3). Got {vertices.shape}, {normals.shape}.")
    counts = np.asarray(counts, int)
    points, _ = surface_samples(vertices, faces, normals, 0.5 * step)
    shell = _mark(points, lower, counts, step)
    offset = np.zeros(len(vertices)) if offset is None else np.asarray(offset, np.float64)
    solid = ndimage.binary_fill_holes(shell, structure=SLICE_STRUCTURE)
    # Close narrow openings into pockets (between the eyelids and the eyeballs, between the lips): seen
    # through, they leave see-through slits in the face.
    closed = ndimage.binary_closing(solid, iterations=POCKET_CLOSING_VOXELS) & ~solid
    solid |= closed

    # Distances to the outer skin: each voxel's nearest skin voxel holds one skin sample and its normal.
    skin_points, values = surface_samples(vertices, shell_faces, np.concatenate([normals, offset[:, None]], 1), 0.5 * step)
    skin_normals = values[:, :3] / np.maximum(np.linalg.norm(values[:, :3], axis=1, keepdims=True), 1e-12)
    skin = _mark(skin_points, lower, counts, step)
    owner = np.full(skin.shape, -1, np.int64)
    index = np.round((skin_points - lower) / step).astype(int)
    owner[index[:, 2], index[:, 1], index[:, 0]] = np.arange(len(skin_points))
    distance, nearest = ndimage.distance_transform_edt(~skin, return_indices=True)
    sample = owner[nearest[0], nearest[1], nearest[2]]
    grid = np.stack(np.meshgrid(*(np.arange(n) for n in counts[::-1]), indexing="ij")[::-1], -1)
    plane = np.einsum("dhwc,dhwc->dhw", lower + grid * step - skin_points[sample], skin_normals[sample])
    sign = np.where(solid, -1.0, 1.0)
    # Near the skin the tangent plane gives a sub-voxel distance (the skin's own voxels and their
    # neighbours lie on either side of it, whatever the voxelised solid says); elsewhere, or where the
    # plane disagrees with the solid about the side (a pocket's far wall), the voxel distance does.
    near = ((distance <= 1.5) & ~closed) | ((distance < band) & (np.sign(plane) == sign))
    sdf = np.where(near, plane, sign * np.maximum(distance - 0.5, 0.0) * step)
    thickness = values[sample, 3]
    if thickness.max() > 0:
        # Far from the skin the nearest sample's plane jumps from voxel to voxel: smooth the offset
        # surface (the hair), not the skin's own detail.
        outward = sdf - thickness
        hair = np.clip(thickness / (OFFSET_SMOOTH_FROM * step), 0.0, 1.0)
        return (hair * ndimage.gaussian_filter(outward, OFFSET_SMOOTH_VOXELS) + (1 - hair) * outward).astype(np.float32)
    return sdf.astype(np.float32)


def _mark(points: np.ndarray, lower: np.ndarray, counts: np.ndarray, step: float) -> np.ndarray:
    """[nz, ny, nx] bool: the voxels that hold a point."""
    index = np.round((points - lower) / step).astype(int)
    if (index < 0).any() or (index >= counts).any():
        raise ValueError("The mesh reaches outside the voxel lattice; widen the bounds.")
    marked = np.zeros(counts[::-1], bool)
    marked[index[:, 2], index[:, 1], index[:, 0]] = True
    return marked
