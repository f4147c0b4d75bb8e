"""The fitted head as a textured mesh: UV texels located on the surface, so any albedo (the field's)
can be baked into a texture image.

The template's UV layout is MakeHuman's head layout: its islands (head, ears, eyes, teeth, tongue) cover
about a fifth of the square, the face about a tenth of its width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WINDOW = 24  # texels: triangles up to this size in the texture are rasterised together, larger ones alone


@dataclass(frozen=True)
class TexelMap:
    """Where each texel of a ``size`` x ``size`` texture lies on the mesh.

    Attributes:
        face: [S, S] int32 triangle index per texel (-1: off the layout).
        barycentric: [S, S, 3] float32 weights of the triangle's corners.
    """

    face: np.ndarray
    barycentric: np.ndarray

    def points(self, vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the covered texels' [N, 2] rows and columns, their [N, 3] surface points)."""
        rows, cols = np.nonzero(self.face >= 0)
        corners = vertices[faces[self.face[rows, cols]]]  # [N, 3, 3]
        return np.stack([rows, cols], -1), np.einsum("nc,ncd->nd", self.barycentric[rows, cols], corners)


def texel_map(uvs: np.ndarray, uv_faces: np.ndarray, size: int) -> TexelMap:
    """Rasterise the UV layout: for each texel centre, the triangle holding it and its barycentrics.

    Texel (row, col) is centred at u = (col + 0.5) / size, v = 1 - (row + 0.5) / size (v up, as glTF
    flips it back). Islands do not overlap, so there is no depth test.

    Args:
        uvs: [T, 2] texture coordinates in [0, 1].
        uv_faces: [F, 3] indices into ``uvs`` per triangle corner.
        size: texture side in texels.

    Raises:
        ValueError: shapes are wrong or size < 8.
    """
    if uvs.ndim != 2 or uvs.shape[1] != 2 or uv_faces.ndim != 2 or uv_faces.shape[1] != 3:
        raise ValueError(f"uvs must be (T, 2) and uv_faces (F, 3). Got {uvs.shape}, {uv_faces.shape}.")
    if size < 8:
        raise ValueError(f"size must be at least 8 texels. Got {size}.")
    screen = np.stack([uvs[:, 0] * size, (1 - uvs[:, 1]) * size], -1)[uv_faces]  # [F, 3, 2] (x, y) texels
    face = np.full((size, size), -1, np.int32)
    bary = np.zeros((size, size, 3), np.float32)
    lo = np.floor(screen.min(1) - 0.5).astype(int)
    extent = np.ceil(screen.max(1) + 0.5).astype(int) - lo
    small = np.nonzero(extent.max(1) <= WINDOW)[0]
    offsets = np.stack(np.meshgrid(np.arange(WINDOW), np.arange(WINDOW), indexing="xy"), -1).reshape(-1, 2)
    for chunk in np.array_split(small, max(1, len(small) // 2048)):
        _fill(face, bary, screen, chunk, lo[chunk][:, None, :] + offsets[None], size)
    for f in np.nonzero(extent.max(1) > WINDOW)[0]:
        xs, ys = np.meshgrid(np.arange(lo[f, 0], lo[f, 0] + extent[f, 0]), np.arange(lo[f, 1], lo[f, 1] + extent[f, 1]))
        _fill(face, bary, screen, np.array([f]), np.stack([xs.ravel(), ys.ravel()], -1)[None], size)
    return TexelMap(face, bary)


def _fill(face: np.ndarray, bary: np.ndarray, screen: np.ndarray, chosen: np.ndarray, texels: np.ndarray, size: int) -> None:
    """Write the triangles ``chosen`` into the texels [n, k, 2] (x, y) that their insides cover."""
    a, b, c = (screen[chosen, i][:, None, :] for i in range(3))
    p = texels + 0.5
    area = (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])
    area = np.where(np.abs(area) < 1e-12, np.nan, area)
    wa = ((b[..., 0] - p[..., 0]) * (c[..., 1] - p[..., 1]) - (b[..., 1] - p[..., 1]) * (c[..., 0] - p[..., 0])) / area
    wb = ((c[..., 0] - p[..., 0]) * (a[..., 1] - p[..., 1]) - (c[..., 1] - p[..., 1]) * (a[..., 0] - p[..., 0])) / area
    wc = 1.0 - wa - wb
    inside = (wa >= 0) & (wb >= 0) & (wc >= 0) & (texels[..., 0] < size) & (texels[..., 1] < size) \
        & (texels[..., 0] >= 0) & (texels[..., 1] >= 0)
    tri, slot = np.nonzero(inside)
    x, y = texels[tri, slot, 0], texels[tri, slot, 1]
    face[y, x] = chosen[tri]
    bary[y, x] = np.stack([wa[tri, slot], wb[tri, slot], wc[tri, slot]], -1)
