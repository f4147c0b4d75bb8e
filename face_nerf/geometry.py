"""Head geometry: the face surface from the 3D landmarks, completed into a closed head from the
person silhouette, as a signed distance grid.

World frame: origin at the head centre, +x to the viewer's right, +y up, +z towards the photo's camera;
one unit is the face's height (landmark 10 to 152). The solid head is the smooth union of
  - the face: the slab between the landmark height field z = f(x, y) and the head's centre plane,
    the height field extended past the face outline with a quadratic fall-off so it blends backwards;
  - the cranium with its hair: an ellipsoid from the nape (mouth level) to the silhouette's top, as wide
    as the silhouette above the eyes but never narrower than the face (so a bald head or a bad mask
    still gives a head), kept behind the face surface;
  - a neck: an elliptic cylinder under the jaw, as wide as the silhouette allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from scipy.interpolate import LinearNDInterpolator

from face_nerf.landmarks import CHIN, FACE_LEFT_SIDE, FACE_RIGHT_SIDE, FOREHEAD_TOP, MIDLINE, MOUTH_CENTRE, FaceAnalysis
from face_nerf.render import Camera

CAMERA_DISTANCE = 9.0  # input camera to head centre, in face heights (~1.5 m: a long, portrait lens)
HEAD_HALF_DEPTH = 0.58  # glabella (landmark 168) to head centre, in face heights (anthropometric mean)


@dataclass(frozen=True)
class GeometryConfig:
    """How the head is shaped.

    Attributes:
        voxels_per_unit: SDF grid resolution per face height.
        blend: smooth-union radius between head parts (face heights).
        falloff: how fast the face height field bends backwards past the face outline (1 / face height).
        skull_top: lowest top of the skull above landmark 10 (face heights).
        hair_depth_ratio: hair thickness at the back over hair thickness at the sides.
        max_hair_half_width: widest the hair may be (face heights), for big hair or a bad mask.
        neck_length: how far below the chin the neck reaches (face heights).
        smooth_voxels: Gaussian smoothing of the final SDF (voxels).
    """

    voxels_per_unit: float = 64.0
    blend: float = 0.06
    falloff: float = 6.0
    skull_top: float = 0.42
    hair_depth_ratio: float = 0.8
    max_hair_half_width: float = 0.8
    neck_length: float = 0.55
    smooth_voxels: float = 1.0


@dataclass
class HeadPlacement:
    """The face placed in the world and the camera that took the photo.

    Attributes:
        landmarks: [478, 3] world coordinates.
        camera: the input camera (world frame), at the photo's resolution.
        symmetry_normal: [3] unit normal of the face's symmetry plane (through the origin's x).
        symmetry_offset: plane offset: points p with p . n = offset lie on it.
    """

    landmarks: np.ndarray
    camera: Camera
    symmetry_normal: np.ndarray
    symmetry_offset: float

    def mirror(self, points: np.ndarray) -> np.ndarray:
        """Reflect [..., 3] points across the face's symmetry plane."""
        n = self.symmetry_normal
        return points - 2.0 * ((points @ n) - self.symmetry_offset)[..., None] * n


def place_head(analysis: FaceAnalysis) -> HeadPlacement:
    """Back-project the landmarks through a long-lens pinhole camera and centre the head.

    Landmarks are back-projected through the same camera that later renders the input view, so the
    rendered face lands exactly on the photo's face.
    """
    px = analysis.landmarks.astype(np.float64)
    w, h = analysis.image_size
    units = float(np.linalg.norm(px[FOREHEAD_TOP] - px[CHIN]))  # pixels per face height
    focal = units * CAMERA_DISTANCE
    depth = CAMERA_DISTANCE + px[:, 2] / units
    cam = np.stack([(px[:, 0] - w / 2) / focal * depth, -(px[:, 1] - h / 2) / focal * depth, -depth], -1)
    normal, offset = _symmetry_plane(cam)
    up = cam[FOREHEAD_TOP] - cam[CHIN]
    up -= (up @ normal) * normal
    forward = np.cross(normal, up / np.linalg.norm(up))
    if forward[2] < 0:
        forward = -forward
    sides = 0.5 * (cam[FACE_RIGHT_SIDE] + cam[FACE_LEFT_SIDE])
    centre = cam[168] - HEAD_HALF_DEPTH * forward
    centre[1] = sides[1]
    c2w = torch.eye(4)
    c2w[:3, 3] = torch.tensor(-centre, dtype=torch.float32)
    camera = Camera(c2w, focal, focal, w / 2, h / 2, w, h)
    world = cam - centre
    return HeadPlacement(world.astype(np.float32), camera, normal, float(normal @ (-centre)) + offset)


def _symmetry_plane(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Plane through the midline landmarks, normal pointing to the viewer's right (+x)."""
    mid = points[list(MIDLINE)]
    centre = mid.mean(0)
    # The midline spans the up direction (first principal axis) and, through the nose, some depth; the
    # plane's normal is whichever of the two minor principal axes points across the face (larger |x|).
    _, _, vt = np.linalg.svd(mid - centre)
    normal = max(vt[1:], key=lambda axis: abs(axis[0]))
    if abs(normal[0]) < 0.5:  # degenerate midline fit: fall back to the camera's x axis
        normal = np.array([1.0, 0.0, 0.0])
    if normal[0] < 0:
        normal = -normal
    return normal, float(normal @ centre)


@dataclass
class HeadGeometry:
    """The head as a signed distance grid.

    Attributes:
        sdf: [D, H, W] float32 signed distance (face heights), indexed [z, y, x].
        bounds: [2, 3] world box the grid spans (voxel centres at its corners).
    """

    sdf: np.ndarray
    bounds: np.ndarray


@dataclass(frozen=True)
class Silhouette:
    """The person's outline on the head-centre plane, in world units.

    Attributes:
        half_width: half-width of the head with its hair above the eyes (robust maximum).
        centre_x: x of the middle of that run.
        top_y: highest point of the head's outline.
        neck_half_width: half-width under the chin (median).
    """

    half_width: float
    centre_x: float
    top_y: float
    neck_half_width: float


def build_head(placement: HeadPlacement, person_mask: np.ndarray, config: GeometryConfig = GeometryConfig()) -> HeadGeometry:
    """Build the closed head SDF from placed landmarks and the person silhouette."""
    lm = placement.landmarks.astype(np.float64)
    face = lm[:468]
    chin_y, top_face_y, mouth_y = lm[CHIN, 1], lm[FOREHEAD_TOP, 1], lm[MOUTH_CENTRE, 1]
    half_face = 0.5 * abs(lm[FACE_LEFT_SIDE, 0] - lm[FACE_RIGHT_SIDE, 0])
    outline = measure_silhouette(placement, person_mask, config)

    top = float(np.clip(outline.top_y, top_face_y + config.skull_top, top_face_y + config.skull_top + 0.45))
    half_width = float(np.clip(outline.half_width, half_face * 1.02, config.max_hair_half_width))
    hair = half_width - half_face * 1.02
    cranium_centre = np.array([np.clip(outline.centre_x, -0.1, 0.1), 0.5 * (top + mouth_y), -0.02])
    cranium_radii = (half_width, 0.5 * (top - mouth_y), HEAD_HALF_DEPTH + config.hair_depth_ratio * hair)
    neck_half = float(np.clip(outline.neck_half_width, 0.28, 0.4))

    x_half = half_width + 0.1
    lo = np.array([cranium_centre[0] - x_half, chin_y - config.neck_length, -cranium_radii[2] - 0.1])
    hi = np.array([cranium_centre[0] + x_half, top + 0.08, face[:, 2].max() + 0.08])
    step = 1.0 / config.voxels_per_unit
    counts = np.maximum(np.round((hi - lo) / step).astype(int) + 1, 8)
    hi = lo + (counts - 1) * step
    xs, ys, zs = (np.linspace(lo[i], hi[i], counts[i]) for i in range(3))

    height, slope = _face_height_field(face, xs, ys, config.falloff)
    Y, X = np.meshgrid(ys, xs, indexing="ij")  # [H, W]
    Z = zs[:, None, None]  # [D, 1, 1]
    behind_face = Z - (height - 0.03)
    face_sdf = np.maximum((Z - height) / slope, -Z)  # slab between height field and centre plane
    cranium = _ellipsoid_sdf((X - cranium_centre[0], Y - cranium_centre[1], Z - cranium_centre[2]), cranium_radii)
    neck = np.maximum(_ellipsoid_sdf((X - 0.5 * lm[CHIN, 0], Z + 0.05), (neck_half, 0.3)), Y - (chin_y + 0.3))

    sdf = _smooth_min(face_sdf, np.maximum(cranium, behind_face), config.blend)
    sdf = _smooth_min(sdf, np.broadcast_to(neck, sdf.shape), 2 * config.blend)
    sdf = ndimage.gaussian_filter(sdf.astype(np.float32), config.smooth_voxels)
    sdf = _renormalise(sdf, step)
    return HeadGeometry(sdf.astype(np.float32), np.stack([lo, hi]).astype(np.float32))


def measure_silhouette(placement: HeadPlacement, mask: np.ndarray, config: GeometryConfig) -> Silhouette:
    """Project the head-centre plane onto the person mask and measure, row by row, the run of person
    pixels that contains the head's vertical axis."""
    lm = placement.landmarks
    step = 1.0 / config.voxels_per_unit
    ys = np.arange(lm[CHIN, 1] - config.neck_length, lm[FOREHEAD_TOP, 1] + 1.2, step)
    xs = np.arange(-1.2, 1.2 + step, step)
    Y, X = np.meshgrid(ys, xs, indexing="ij")
    pts = torch.tensor(np.stack([X, Y, np.zeros_like(X)], -1), dtype=torch.float32)
    uv = placement.camera.project(pts)[0].numpy()
    h, w = mask.shape
    inside = (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
    ui = np.clip(uv[..., 0].astype(int), 0, w - 1)
    vi = np.clip(uv[..., 1].astype(int), 0, h - 1)
    person = (mask[vi, ui] > 0.5) & inside
    axis = int(np.argmin(np.abs(xs)))
    columns = np.arange(len(xs))
    left = np.where(~person[:, : axis + 1], columns[: axis + 1], -1).max(1) + 1
    right_bg = ~person[:, axis:]
    right = np.where(right_bg.any(1), right_bg.argmax(1) + axis, len(xs)) - 1
    x_left, x_right = xs[np.clip(left, 0, len(xs) - 1)], xs[np.clip(right, 0, len(xs) - 1)]
    present = person[:, axis]
    half = np.where(present, 0.5 * (x_right - x_left), 0.0)
    centre = np.where(present, 0.5 * (x_right + x_left), 0.0)
    eye_row = int(np.argmin(np.abs(ys - lm[168, 1])))
    gone = np.nonzero(~present[eye_row:])[0]
    top_row = eye_row + (int(gone[0]) if gone.size else len(ys) - eye_row)
    neck_rows = (ys < lm[CHIN, 1] - 0.15) & present
    neck_half = float(np.median(half[neck_rows])) if neck_rows.any() else 0.35
    if top_row <= eye_row:  # no person at the eyes: the mask failed, fall back to the landmarks alone
        return Silhouette(0.0, 0.0, float(lm[FOREHEAD_TOP, 1]), neck_half)
    above_eyes = slice(eye_row, top_row)
    return Silhouette(
        half_width=float(np.percentile(half[above_eyes], 90)),
        centre_x=float(np.median(centre[above_eyes])),
        top_y=float(ys[top_row - 1]),
        neck_half_width=neck_half,
    )


def _face_height_field(face: np.ndarray, xs: np.ndarray, ys: np.ndarray, falloff: float) -> tuple[np.ndarray, np.ndarray]:
    """z of the face surface over the (y, x) grid, extended past the outline, and sqrt(1 + |grad z|^2)."""
    Y, X = np.meshgrid(ys, xs, indexing="ij")
    z = LinearNDInterpolator(face[:, :2], face[:, 2])(X, Y)
    known = ~np.isnan(z)
    step = xs[1] - xs[0]
    # Continue past the outline with the outline's own depth, blurred along it (no streaks), bending
    # backwards with the distance from it.
    dist, (iy, ix) = ndimage.distance_transform_edt(~known, return_indices=True)
    outline = ndimage.gaussian_filter(z[iy, ix], 6.0)
    dist = dist * step
    z = np.where(known, z, outline - falloff * dist**2 - 0.5 * dist)
    z = ndimage.gaussian_filter(z, 1.5)
    gy, gx = np.gradient(z, step)
    return z, np.sqrt(1.0 + gx**2 + gy**2)


def _ellipsoid_sdf(offsets, radii):
    """Approximate signed distance to an axis-aligned ellipse or ellipsoid (exact on the axes).

    Args:
        offsets: per axis, the coordinate minus the centre (arrays that broadcast together).
        radii: per axis, the semi-axis length.
    """
    k0 = np.sqrt(sum((o / r) ** 2 for o, r in zip(offsets, radii)))
    k1 = np.sqrt(sum((o / r**2) ** 2 for o, r in zip(offsets, radii)))
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def _smooth_min(a, b, k):
    """Polynomial smooth minimum (smooth union of two SDFs with blend radius k)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _renormalise(sdf: np.ndarray, step: float) -> np.ndarray:
    """Divide by the gradient norm so the field reads as a distance near the surface."""
    gz, gy, gx = np.gradient(sdf, step)
    norm = np.sqrt(gx**2 + gy**2 + gz**2)
    return sdf / np.clip(norm, 0.5, 4.0)
