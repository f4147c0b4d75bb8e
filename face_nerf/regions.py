"""Face regions from the 478 landmarks: index groups of mediapipe's face-mesh topology and image masks."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def landmark_groups() -> dict[str, tuple[int, ...]]:
    """Landmark indices of the face's features, from mediapipe's own face-mesh connection sets.

    "right" and "left" are the subject's (mediapipe's naming): the subject's right eye is on the
    viewer's left in a frontal photo.
    """
    from mediapipe.python.solutions import face_mesh_connections as mesh

    def points(edges) -> tuple[int, ...]:
        return tuple(sorted({i for edge in edges for i in edge}))

    return {
        "face_oval": points(mesh.FACEMESH_FACE_OVAL),
        "lips": points(mesh.FACEMESH_LIPS),
        "right_eye": points(mesh.FACEMESH_RIGHT_EYE),
        "left_eye": points(mesh.FACEMESH_LEFT_EYE),
        "right_eyebrow": points(mesh.FACEMESH_RIGHT_EYEBROW),
        "left_eyebrow": points(mesh.FACEMESH_LEFT_EYEBROW),
        "right_iris": points(mesh.FACEMESH_RIGHT_IRIS),
        "left_iris": points(mesh.FACEMESH_LEFT_IRIS),
        "nose": points(mesh.FACEMESH_NOSE),
    }


def hull_mask(points: np.ndarray, size: tuple[int, int], grow: float = 0.0) -> np.ndarray:
    """[H, W] bool: inside the convex hull of 2D ``points`` [N, 2] (pixels), grown by ``grow`` pixels."""
    from scipy.spatial import ConvexHull

    w, h = size
    hull = points[ConvexHull(points).vertices]
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).polygon([tuple(map(float, p)) for p in hull], fill=255)
    if grow > 0:
        canvas = canvas.filter(ImageFilter.MaxFilter(2 * int(round(grow)) + 1))
    return np.asarray(canvas) > 127


def skin_mask(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[H, W] bool: the face's skin, i.e. the landmark hull without the eyes and eyebrows, the lips and
    the nostrils, each removed with a margin proportional to the face size.

    Args:
        landmarks: [478, >=2] landmark pixels (x, y, ...).
        size: (width, height) of the mask.
    """
    if landmarks.ndim != 2 or landmarks.shape[0] != 478 or landmarks.shape[1] < 2:
        raise ValueError(f"Landmarks must have a shape of (478, 2 or 3). Got {landmarks.shape}.")
    xy = landmarks[:, :2].astype(np.float64)
    groups = landmark_groups()
    face_height = float(np.ptp(xy[:, 1])) or 1.0
    skin = hull_mask(xy, size)
    for side in ("right", "left"):
        eye_and_brow = groups[f"{side}_eye"] + groups[f"{side}_eyebrow"]
        skin &= ~hull_mask(xy[list(eye_and_brow)], size, grow=0.03 * face_height)
    skin &= ~hull_mask(xy[list(groups["lips"])], size, grow=0.03 * face_height)
    nostrils = xy[[64, 98, 97, 2, 326, 327, 294, 278, 48]]  # alae and columella, below the nose tip
    skin &= ~hull_mask(nostrils, size, grow=0.01 * face_height)
    return skin
