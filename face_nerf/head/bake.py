"""Baking a photo into the head template's UV texture: each texel looks up its surface point on the fitted
head, projects it into the photo and takes the colour there, weighted by how squarely and how surely the
camera saw it.

Pure functions over numpy arrays. The weak-perspective camera of a ``HeadFit`` is an orthographic camera
with a scale and a y flip, so both the UV layout and the photo view are drawn with face_nerf.head.raster.
Texel ``(row, col)`` covers ``u in [col, col + 1] / size`` and ``v in [size - row - 1, size - row] / size``
(v up, as in the template's OBJ convention). Filling unseen texels (skin completion) is not done here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt

from face_nerf.head.fit import HeadFit
from face_nerf.head.raster import OrthographicCamera, Rasterization, rasterize, vertex_normals
from face_nerf.head.template import HeadTemplate


@dataclass(frozen=True)
class BakeConfig:
    """How the photo is baked into UV space."""

    size: int = 512  # texture width and height in texels (overridden by bake_photo's ``size`` argument)
    exponent: float = 0.5  # p in max(0, n.v)^p: how strongly squarely-seen texels are preferred (0.5: n.v 0.25 -> 0.5)
    depth_tolerance: float = 0.004  # metres a texel may lie behind the front-most surface and still be seen
    grazing_low: float = 0.1  # n.v at and below which the weight is 0 (silhouette colours mix with background)
    grazing_high: float = 0.4  # n.v at and above which the grazing feather no longer lowers the weight
    feather_texels: float = 6.0  # UV distance (texels at size 512) over which the weight rises from an occluded texel

    def __post_init__(self):
        if self.size < 8:
            raise ValueError(f"size must be at least 8 texels. Got {self.size}.")
        if self.exponent < 0:
            raise ValueError(f"exponent must be non-negative. Got {self.exponent}.")
        if not 0 <= self.grazing_low < self.grazing_high <= 1:
            raise ValueError(f"Need 0 <= grazing_low < grazing_high <= 1. Got {self.grazing_low}, {self.grazing_high}.")
        if self.depth_tolerance < 0 or self.feather_texels < 0:
            raise ValueError("depth_tolerance and feather_texels must be non-negative.")


@dataclass(frozen=True)
class UVBake:
    """The photo laid out on the template's UVs."""

    texture: np.ndarray  # [S, S, 3] float32 photo colour in [0, 1]; 0 where the weight is 0
    weight: np.ndarray  # [S, S] float32 confidence in [0, 1]: visibility x facing x feathering
    coverage: np.ndarray  # [S, S] bool the texel lies on the UV layout
    points: np.ndarray  # [S, S, 3] float32 surface point of each texel, template frame (metres); 0 off the layout
    pixels: np.ndarray  # [S, S, 2] float32 where each texel lands in the photo (x right, y down); 0 off the layout
    seen_fraction: float  # fraction of covered texels with weight > 0.5


def bake_photo(photo: np.ndarray, template: HeadTemplate, fit: HeadFit, size: int | None = None,
               config: BakeConfig = BakeConfig()) -> UVBake:
    """Bake a photo into the template's UV texture through a fitted camera.

    Args:
        photo: [H, W, 3] uint8 RGB photo the fit was made on.
        template: the head template (its UVs and faces).
        fit: the head fitted to the photo (pose, scale, shape).
        size: texture size in texels; ``config.size`` when None.
        config: the bake settings.

    Returns:
        The UVBake.

    Raises:
        ValueError: the photo is not [H, W, 3] uint8, or the size is too small.

    Example:
        >>> bake = bake_photo(photo.rgb, head, fit, size=256)  # doctest: +SKIP
        >>> bake.texture.shape, bake.weight.shape  # doctest: +SKIP
        ((256, 256, 3), (256, 256))
    """
    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8 or min(photo.shape[:2]) < 2:
        raise ValueError(f"Photo must have a shape of (H, W, 3) and dtype uint8. Got {photo.shape} {photo.dtype}.")
    size = config.size if size is None else int(size)
    if size < 8:
        raise ValueError(f"size must be at least 8 texels. Got {size}.")

    vertices = np.asarray(fit.vertices(), np.float64)
    layout = rasterize_uv_layout(template, size)
    coverage = layout.triangle >= 0
    corners = template.faces[layout.triangle[coverage]]  # [N, 3]
    bary = layout.barycentric[coverage].astype(np.float64)[..., None]
    points = (vertices[corners] * bary).sum(1)
    normals = (vertex_normals(vertices, template.faces)[corners] * bary).sum(1)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)

    pixels = fit.project(points)
    visible = _visible(points, pixels, vertices, template.faces, fit, photo.shape[:2], config.depth_tolerance)
    facing = normals @ fit.rotation[2]  # n.v with v = R^T [0, 0, 1], towards the camera
    weight = np.maximum(facing, 0.0) ** config.exponent
    weight *= _smoothstep(config.grazing_low, config.grazing_high, facing) * visible

    weight_map = np.zeros((size, size))
    weight_map[coverage] = weight
    weight_map *= _occlusion_feather(coverage, _scatter(coverage, visible), config, size)
    texture = np.zeros((size, size, 3))
    texture[coverage] = _sample_bilinear(photo, pixels)
    texture[weight_map <= 0] = 0.0

    seen = float((weight_map[coverage] > 0.5).mean()) if coverage.any() else 0.0
    return UVBake(texture.astype(np.float32), np.clip(weight_map, 0, 1).astype(np.float32), coverage,
                  _scatter(coverage, points, 3).astype(np.float32), _scatter(coverage, pixels, 2).astype(np.float32),
                  seen)


def rasterize_uv_layout(template: HeadTemplate, size: int) -> Rasterization:
    """Draw the template's triangles at their UV corners: which triangle and barycentrics each texel has.

    Args:
        template: the head template.
        size: texture width and height in texels.

    Returns:
        The Rasterization of the UV layout (``triangle`` -1 off the layout; barycentrics weight the
        triangle's corners in the order of ``template.faces``).

    Example:
        >>> rasterize_uv_layout(head, 64).triangle.shape  # doctest: +SKIP
        (64, 64)
    """
    uv = np.asarray(template.uvs, np.float64)
    flat = np.concatenate([uv, np.zeros((len(uv), 1))], axis=1)  # z = 0: overlapping islands keep the first
    camera = OrthographicCamera((0.5, 0.5), float(size), (size, size))  # u -> column, v up -> row down
    return rasterize(flat, template.uv_faces, np.ones_like(flat), camera)


def photo_camera(fit: HeadFit, photo_size: tuple[int, int]) -> OrthographicCamera:
    """The orthographic camera that sees ``fit.rotation @ X`` as ``fit.project`` sees X.

    Args:
        fit: the fitted head.
        photo_size: (height, width) of the photo.

    Returns:
        The camera (use it on points rotated into the camera frame).
    """
    h, w = photo_size
    s, (tx, ty) = float(fit.scale), np.asarray(fit.translation, np.float64)
    return OrthographicCamera(((w / 2 - tx) / s, (ty - h / 2) / s), s, (int(w), int(h)))


def _visible(points, pixels, vertices, faces, fit: HeadFit, photo_size, tolerance) -> np.ndarray:
    """[N] bool: the texel's point is within ``tolerance`` of the front-most surface at its photo pixel."""
    h, w = photo_size
    rotated = vertices @ fit.rotation.T
    view = rasterize(rotated, faces, np.ones_like(rotated), photo_camera(fit, (h, w)))
    col, row = np.floor(pixels[:, 0]).astype(int), np.floor(pixels[:, 1]).astype(int)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    front = np.full(len(points), np.inf)
    front[inside] = view.depth[row[inside], col[inside]]
    depth = points @ fit.rotation[2]
    return inside & (depth >= front - tolerance)


def _occlusion_feather(coverage, visible_map, config: BakeConfig, size: int) -> np.ndarray:
    """[S, S] in [0, 1]: rises smoothly with UV distance from the nearest covered-but-occluded texel."""
    occluded = coverage & ~visible_map
    width = config.feather_texels * size / 512
    if not occluded.any() or width <= 0:
        return np.ones(coverage.shape)
    distance = distance_transform_edt(~occluded)
    return _smoothstep(0.0, width, distance)


def _scatter(coverage: np.ndarray, values: np.ndarray, channels: int | None = None) -> np.ndarray:
    """Put per-covered-texel values into an [S, S(, C)] map, 0 (False) elsewhere."""
    shape = coverage.shape if channels is None else (*coverage.shape, channels)
    out = np.zeros(shape, values.dtype)
    out[coverage] = values
    return out


def _smoothstep(low: float, high: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((np.asarray(x, np.float64) - low) / (high - low), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _sample_bilinear(photo: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """[N, 3] colours in [0, 1] at pixel positions (pixel (r, c) has its centre at (c + 0.5, r + 0.5))."""
    h, w = photo.shape[:2]
    x = np.clip(pixels[:, 0] - 0.5, 0, w - 1)
    y = np.clip(pixels[:, 1] - 0.5, 0, h - 1)
    x0, y0 = np.minimum(np.floor(x).astype(int), w - 2), np.minimum(np.floor(y).astype(int), h - 2)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    img = photo.astype(np.float64) / 255.0
    top = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    bottom = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy
