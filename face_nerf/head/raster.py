"""A small numpy z-buffer rasteriser with Lambert shading, for looking at the head template through an
orthographic camera (the landmark correspondence renders the template and runs the landmarker on it).

Pure functions: a mesh and a camera in, an image with its depth, triangle id and barycentric buffers out.
Pixel ``(row, col)`` covers ``[col, col + 1] x [row, row + 1]`` in pixel coordinates (x right, y down,
as face_nerf.landmarks reports landmarks) and is sampled at its centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OrthographicCamera:
    """Looks down -z of the mesh frame (from +z, in front of the face); +y is up in the image.

    An orthographic camera is a perspective one with an infinitely long lens: no foreshortening, so the
    surface point under a pixel does not depend on a camera distance.
    """

    centre: tuple[float, float]  # (x, y) in metres of the mesh point shown at the image centre
    pixels_per_metre: float  # image scale
    size: tuple[int, int]  # (width, height) in pixels

    def project(self, points: np.ndarray) -> np.ndarray:
        """[N, 3] mesh points -> [N, 3] (x, y in pixels, y down; depth = mesh z, larger is nearer).

        Example:
            >>> cam = OrthographicCamera((0.0, 0.0), 1000.0, (512, 512))
            >>> cam.project(np.array([[0.01, 0.02, 0.5]])).tolist()
            [[266.0, 236.0, 0.5]]
        """
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"Points must have a shape of (N, 3). Got {points.shape}.")
        w, h = self.size
        x = (points[:, 0] - self.centre[0]) * self.pixels_per_metre + w / 2
        y = h / 2 - (points[:, 1] - self.centre[1]) * self.pixels_per_metre
        return np.stack([x, y, points[:, 2]], axis=1)


@dataclass(frozen=True)
class Rasterization:
    """What each pixel sees."""

    image: np.ndarray  # [H, W, 3] float32 shaded colour in [0, 1], background where nothing is hit
    depth: np.ndarray  # [H, W] float32 mesh z of the visible surface; -inf on the background
    triangle: np.ndarray  # [H, W] int32 index of the visible face; -1 on the background
    barycentric: np.ndarray  # [H, W, 3] float32 weights of the visible face's corners; 0 on the background
    screen: np.ndarray  # [V, 3] float64 the vertices projected: x, y in pixels, depth


def rasterize(vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray, camera: OrthographicCamera,
              light: tuple[float, float, float] = (0.0, 0.3, 1.0), ambient: float = 0.3,
              background: float = 0.5) -> Rasterization:
    """Render a mesh with a z-buffer: Lambert shading of smooth vertex normals times vertex colours.

    Args:
        vertices: [V, 3] mesh points (frame of face_nerf.head.template).
        faces: [F, 3] int vertex indices, counter-clockwise seen from outside.
        colours: [V, 3] albedo in [0, 1].
        camera: the orthographic camera.
        light: direction towards the light (need not be unit length); its length scales the light.
        ambient: light reaching every surface.
        background: grey level of empty pixels.

    Returns:
        The Rasterization.

    Raises:
        ValueError: an array has the wrong shape or a face index is out of range.

    Example:
        >>> tri = np.array([[-1, -1, 0], [1, -1, 0], [0, 1, 0]], np.float32)
        >>> out = rasterize(tri, np.array([[0, 1, 2]]), np.ones((3, 3)), OrthographicCamera((0, 0), 4, (8, 8)))
        >>> int(out.triangle[4, 4]), round(float(out.barycentric[4, 4].sum()), 5)
        (0, 1.0)
    """
    vertices, faces, colours = np.asarray(vertices), np.asarray(faces), np.asarray(colours)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"Vertices must have a shape of (V, 3). Got {vertices.shape}.")
    if faces.ndim != 2 or faces.shape[1] != 3 or (faces.size and not 0 <= faces.min() <= faces.max() < len(vertices)):
        raise ValueError(f"Faces must have a shape of (F, 3) with indices in [0, {len(vertices)}). Got {faces.shape}.")
    if colours.shape != vertices.shape:
        raise ValueError(f"Colours must have a shape of {vertices.shape} (one RGB per vertex). Got {colours.shape}.")
    w, h = camera.size
    screen = camera.project(vertices)
    depth = np.full((h, w), -np.inf)
    triangle = np.full((h, w), -1, np.int32)
    barycentric = np.zeros((h, w, 3))
    for f, (a, b, c) in enumerate(screen[faces]):
        area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if abs(area) < 1e-12:
            continue
        col0, col1 = max(int(np.ceil(min(a[0], b[0], c[0]) - 0.5)), 0), min(int(max(a[0], b[0], c[0]) - 0.5), w - 1)
        row0, row1 = max(int(np.ceil(min(a[1], b[1], c[1]) - 0.5)), 0), min(int(max(a[1], b[1], c[1]) - 0.5), h - 1)
        if col0 > col1 or row0 > row1:
            continue
        px, py = np.meshgrid(np.arange(col0, col1 + 1) + 0.5, np.arange(row0, row1 + 1) + 0.5)
        wa = ((b[0] - px) * (c[1] - py) - (b[1] - py) * (c[0] - px)) / area
        wb = ((c[0] - px) * (a[1] - py) - (c[1] - py) * (a[0] - px)) / area
        wc = 1.0 - wa - wb
        z = wa * a[2] + wb * b[2] + wc * c[2]
        window = depth[row0:row1 + 1, col0:col1 + 1]
        hit = (wa >= 0) & (wb >= 0) & (wc >= 0) & (z > window)
        window[hit] = z[hit]
        triangle[row0:row1 + 1, col0:col1 + 1][hit] = f
        barycentric[row0:row1 + 1, col0:col1 + 1][hit] = np.stack([wa, wb, wc], -1)[hit]

    covered = triangle >= 0
    corners = faces[triangle[covered]]
    weights = barycentric[covered][..., None]
    normal = (vertex_normals(vertices, faces)[corners] * weights).sum(1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    shade = ambient + np.clip(normal @ np.asarray(light, np.float64), 0.0, None)
    image = np.full((h, w, 3), background, np.float64)
    image[covered] = (colours[corners] * weights).sum(1) * shade[:, None]
    return Rasterization(np.clip(image, 0, 1).astype(np.float32), depth.astype(np.float32), triangle,
                         barycentric.astype(np.float32), screen)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[V, 3] unit normals: the area-weighted mean of the adjacent faces' normals (0 for a lone vertex)."""
    v = np.asarray(vertices, np.float64)
    a, b, c = (v[faces[:, i]] for i in range(3))
    face_normal = np.cross(b - a, c - a)  # length: twice the area
    normals = np.zeros_like(v)
    for i in range(3):
        np.add.at(normals, faces[:, i], face_normal)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
