"""Face analysis with mediapipe's offline models: 478 landmarks (with iris) and a person mask.

mediapipe 0.10.21 ships the face detector, the attention face-mesh model and the selfie segmenter inside
its wheel; the legacy ``mediapipe.solutions`` API runs them on CPU without any download.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from face_nerf.errors import NoFaceError
from face_nerf.native_logs import quiet_native_logs

NUM_LANDMARKS = 478  # 468 face-mesh points + 2 x 5 iris points
MIN_FACE_PIXELS = 80  # a face smaller than this across is reconstructed, with a warning that it will be blurry
# Landmark indices used across the package (mediapipe face-mesh topology).
FOREHEAD_TOP, CHIN, NOSE_TIP = 10, 152, 1
FACE_RIGHT_SIDE, FACE_LEFT_SIDE = 234, 454  # subject's right / left side of the face oval
MOUTH_CENTRE = 13  # middle of the upper inner lip
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263
# Points on the face's symmetry plane, forehead to chin.
MIDLINE = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 164, 0, 11, 12, 13, 14, 15, 16, 17, 18, 200, 199, 175, 152)


@dataclass(frozen=True)
class FaceAnalysis:
    """What the photo tells us about the face.

    Attributes:
        landmarks: [478, 3] float32 in pixels: x right, y down, z depth (toward the camera negative,
            same scale as x), as mediapipe reports them scaled by the image width.
        person_mask: [H, W] float32 in [0, 1], the person's silhouette.
        image_size: (width, height) of the analysed photo.
        num_faces: how many faces the landmarker found (the largest is kept).
        warnings: messages for the user (several faces, face near the border, ...).
    """

    landmarks: np.ndarray
    person_mask: np.ndarray
    image_size: tuple[int, int]
    num_faces: int
    warnings: list[str] = field(default_factory=list)

    def hull_mask(self) -> np.ndarray:
        """[H, W] bool: inside the convex hull of the 2D landmarks (the face region)."""
        return landmark_hull_mask(self.landmarks, self.image_size)


def detect_landmarks(rgb: np.ndarray, max_faces: int = 5) -> list[np.ndarray]:
    """Run the face landmarker.

    Args:
        rgb: [H, W, 3] uint8 photo.
        max_faces: the most faces to look for.

    Returns:
        One [478, 3] float32 array per face found (pixels, see ``FaceAnalysis.landmarks``),
        largest face first; empty when there is no face.
    """
    import mediapipe as mp

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"Input must be uint8 with a shape of (H, W, 3). Got {rgb.dtype} {rgb.shape}.")
    h, w = rgb.shape[:2]
    with quiet_native_logs(), mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=max_faces, refine_landmarks=True, min_detection_confidence=0.5
    ) as mesh:
        found = mesh.process(np.ascontiguousarray(rgb)).multi_face_landmarks or []
    faces = [_to_pixels(face, w, h) for face in found]
    if not faces:
        faces = _detect_small_faces(rgb, max_faces)
    return sorted(faces, key=_face_area, reverse=True)


def segment_person(rgb: np.ndarray) -> np.ndarray:
    """Person silhouette from mediapipe's selfie segmenter.

    Args:
        rgb: [H, W, 3] uint8 photo.

    Returns:
        [H, W] float32 in [0, 1].
    """
    import mediapipe as mp

    with quiet_native_logs(), mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as segmenter:
        mask = segmenter.process(np.ascontiguousarray(rgb)).segmentation_mask
    return np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)


def analyse_face(rgb: np.ndarray) -> FaceAnalysis:
    """Landmarks of the largest face and the person mask.

    Args:
        rgb: [H, W, 3] uint8 photo.

    Returns:
        The analysis of the largest face.

    Raises:
        NoFaceError: when no face is found.
    """
    faces = detect_landmarks(rgb)
    if not faces:
        raise NoFaceError(
            "No face found in the photo. Use a photo with one clearly visible face (frontal or turned "
            "less than about 45 degrees, at least 80 pixels across, not covered)."
        )
    notes = []
    if len(faces) > 1:
        notes.append(f"{len(faces)} faces found; using the largest one. Crop the photo to choose another.")
    landmarks = faces[0]
    h, w = rgb.shape[:2]
    x, y = landmarks[:, 0], landmarks[:, 1]
    if x.min() < 0 or y.min() < 0 or x.max() > w or y.max() > h:
        notes.append("The face touches the photo's border; parts outside the photo are guessed.")
    across = face_size(landmarks)
    if across < MIN_FACE_PIXELS:
        notes.append(f"The face is only {across:.0f} pixels across, so the 3D face will be blurry. For a "
                     f"sharp result use a photo in which the face is at least {MIN_FACE_PIXELS} pixels across "
                     "(crop a group photo around one face).")
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return FaceAnalysis(landmarks, segment_person(rgb), (w, h), len(faces), notes)


def face_size(landmarks: np.ndarray) -> float:
    """How large the face is in the photo: the longer side of its landmarks' box, in pixels."""
    return float(np.ptp(landmarks[:, :2], axis=0).max())


def landmark_hull_mask(landmarks: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """[H, W] bool mask of the convex hull of the landmarks' x, y."""
    from face_nerf.regions import hull_mask

    return hull_mask(landmarks[:, :2], image_size)


def _to_pixels(face, w: int, h: int) -> np.ndarray:
    return np.array([[p.x * w, p.y * h, p.z * w] for p in face.landmark], dtype=np.float32)


def _face_area(landmarks: np.ndarray) -> float:
    extent = landmarks[:, :2].max(axis=0) - landmarks[:, :2].min(axis=0)
    return float(extent[0] * extent[1])


def _detect_small_faces(rgb: np.ndarray, max_faces: int) -> list[np.ndarray]:
    """Second chance for faces too small for the mesh's own detector: find them with the full-range
    detector, then run the mesh on an enlarged crop around each."""
    import mediapipe as mp
    from PIL import Image

    h, w = rgb.shape[:2]
    with quiet_native_logs(), mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                        min_detection_confidence=0.5) as detector:
        detections = detector.process(np.ascontiguousarray(rgb)).detections or []
    faces = []
    for det in detections[:max_faces]:
        box = det.location_data.relative_bounding_box
        cx, cy = (box.xmin + box.width / 2) * w, (box.ymin + box.height / 2) * h
        half = 1.2 * max(box.width * w, box.height * h)
        x0, y0 = int(max(cx - half, 0)), int(max(cy - half, 0))
        x1, y1 = int(min(cx + half, w)), int(min(cy + half, h))
        if x1 - x0 < 8 or y1 - y0 < 8:
            continue
        scale = 512.0 / max(x1 - x0, y1 - y0)
        crop = Image.fromarray(rgb[y0:y1, x0:x1]).resize(
            (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))), Image.BICUBIC
        )
        with quiet_native_logs(), mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                                  refine_landmarks=True) as mesh:
            found = mesh.process(np.asarray(crop)).multi_face_landmarks or []
        for face in found:
            points = _to_pixels(face, crop.width, crop.height) / scale
            points[:, 0] += x0
            points[:, 1] += y0
            faces.append(points)
    return faces


def nose_yaw_proxy(landmarks: np.ndarray) -> float:
    """How far the head is turned, seen in 2D: the nose tip's offset from the middle of the face's two
    sides, over the face's width. Positive when the subject turns to their right (the camera sees more
    of their left cheek), about sin(yaw) times the nose's depth ratio."""
    middle = 0.5 * (landmarks[FACE_RIGHT_SIDE, 0] + landmarks[FACE_LEFT_SIDE, 0])
    width = abs(landmarks[FACE_LEFT_SIDE, 0] - landmarks[FACE_RIGHT_SIDE, 0])
    return float((middle - landmarks[NOSE_TIP, 0]) / max(width, 1e-6))
