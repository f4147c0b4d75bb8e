"""The fitted head placed in the reconstruction's world, with the camera that took the photo.

The fit (``fit.py``) is weak-perspective in the template frame (metres). The reconstruction's world is the
photo camera's frame centred on the head (``geometry.py``): +x to the viewer's right, +y up, +z towards the
camera, one unit is the face's height (mediapipe landmark 10 to 152). A template point ``X`` goes to

    world = R @ X / m - c

with ``R`` the fitted rotation, ``m`` the face height in metres and ``c`` the skull centre (rotated and
scaled). The input camera is a pinhole ``CAMERA_DISTANCE`` face heights in front of the head centre, whose
magnification there equals the fit's scale, so the mesh lands where the fit put it on the photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from face_nerf.geometry import CAMERA_DISTANCE, HeadPlacement
from face_nerf.head.correspondence import LandmarkCorrespondence
from face_nerf.head.fit import HeadFit
from face_nerf.landmarks import CHIN, FOREHEAD_TOP
from face_nerf.render import Camera

SKULL_REGIONS = ("scalp", "face", "ears")  # the vertices whose box centre is the skull centre


@dataclass
class PlacedHead:
    """The fitted template in world units.

    Attributes:
        placement: world landmarks (the template's landmark points), input camera, symmetry plane.
        vertices: [V, 3] float32 fitted template vertices in the world.
        normals: [V, 3] float32 unit vertex normals in the world.
        metres_per_unit: the face height in metres (world unit).
        fit: the fit it came from (its template has the faces, UVs and regions).
    """

    placement: HeadPlacement
    vertices: np.ndarray
    normals: np.ndarray
    metres_per_unit: float
    fit: HeadFit

    def region_mask(self, *names: str) -> np.ndarray:
        """[V] bool: the vertices in any of the template regions ``names``."""
        mask = np.zeros(len(self.vertices), bool)
        for name in names:
            mask[self.fit.template.regions[name]] = True
        return mask


def place_fitted_head(fit: HeadFit, correspondence: LandmarkCorrespondence, image_size: tuple[int, int],
                      landmarks_px: np.ndarray | None = None) -> PlacedHead:
    """Put the fitted template into the reconstruction's world and build the input camera.

    Args:
        fit: the template fitted to the photo's landmarks.
        correspondence: the template's landmark points (as used by the fit).
        image_size: (width, height) of the photo in pixels.
        landmarks_px: [478, 2+] the detected landmarks (pixels): the world landmarks are moved along the
            camera rays onto them, at the fitted points' depth, so that they project exactly where the
            photo has them (the fit is within ~2% of the eye distance, not exact). None: the fitted points.

    Returns:
        The placed head; ``placement.camera.project(world points)`` lands on the fit's pixels.

    Example:
        >>> placed = place_fitted_head(fit, load_landmark_correspondence(), (640, 480))  # doctest: +SKIP
        >>> placed.placement.landmarks.shape  # doctest: +SKIP
        (478, 3)
    """
    from face_nerf.head.raster import vertex_normals

    template = fit.template
    local = fit.vertices().astype(np.float64)
    landmarks_t = correspondence.points(local)
    metres = float(np.linalg.norm(landmarks_t[FOREHEAD_TOP] - landmarks_t[CHIN]))
    skull = local[np.concatenate([template.regions[r] for r in SKULL_REGIONS])]
    ears = local[template.regions["ears"]]
    centre_t = np.array([0.0, ears[:, 1].mean(), 0.5 * (skull[:, 2].min() + skull[:, 2].max())])
    rotation = fit.rotation
    centre = rotation @ centre_t / metres

    def to_world(points: np.ndarray) -> np.ndarray:
        return points @ rotation.T / metres - centre

    width, height = image_size
    magnification = fit.scale * metres  # pixels per world unit at the head centre
    c2w = torch.eye(4)
    c2w[2, 3] = CAMERA_DISTANCE
    focal = magnification * CAMERA_DISTANCE
    # The camera looks straight at the head centre (its principal point is where the fit puts the
    # centre), so perspective departs from the weak-perspective fit only by the head's own depth.
    cx = float(magnification * centre[0] + fit.translation[0])
    cy = float(-magnification * centre[1] + fit.translation[1])
    camera = Camera(c2w, focal, focal, cx, cy, width, height)
    normal = rotation[:, 0]  # the template's x axis: across the face, to the subject's left (viewer's right)
    offset = float(normal @ to_world(np.zeros(3)))
    fitted = to_world(landmarks_t)
    vertices = to_world(local)
    landmarks = fitted
    if landmarks_px is not None:
        landmarks = _onto_pixels(fitted, np.asarray(landmarks_px, np.float64)[:, :2], camera)
    placement = HeadPlacement(landmarks.astype(np.float32), camera, normal, offset)
    vertices = vertices.astype(np.float32)
    normals = (vertex_normals(local, template.faces) @ rotation.T).astype(np.float32)
    return PlacedHead(placement, vertices, normals, metres, fit)


def _onto_pixels(points: np.ndarray, pixels: np.ndarray, camera: Camera) -> np.ndarray:
    """[N, 3] world points moved, each at its own depth from the camera, to project onto ``pixels`` [N, 2]."""
    eye = camera.c2w[:3, 3].double().numpy()
    depth = eye[2] - points[:, 2]  # the camera looks down -z without rotation
    x = (pixels[:, 0] - camera.cx) / camera.fx * depth + eye[0]
    y = -(pixels[:, 1] - camera.cy) / camera.fy * depth + eye[1]
    return np.stack([x, y, points[:, 2]], -1)

