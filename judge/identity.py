"""Who is in the clip, view by view: dlib's face detector, 5-point aligner and ResNet face descriptor.

The models come from installed packages and run offline: the detector (HOG) is inside ``dlib-bin``;
the 5-point shape predictor and the descriptor are files of ``face-recognition-models``, read by path
(that package's ``__init__`` imports ``pkg_resources``, so it is never imported). Its 68-point model is
never used: its training data forbids commercial use.

A descriptor is 128 numbers; two photos of one person lie closer than about 0.6 (dlib's threshold).
Across the views of a turntable the same head moves its descriptor by 0.1-0.3 with the turn; a face that
becomes someone else moves it by more.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from judge.frames import sample_indices

MODEL_PACKAGE = "face_recognition_models"
SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
IDENTITY_FRAMES = 6  # frames described per clip (a descriptor costs ~0.1 s on one core)
SAME_PERSON = 0.6  # dlib's distance below which two faces are the same person


def model_path(name: str) -> Path:
    """Path of one of ``face-recognition-models``' files, found without importing the package.

    Raises:
        RuntimeError: the package or the file is not installed (names the pip command that fixes it).
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    path = Path(spec.origin).parent / "models" / name if spec and spec.origin else None
    if path is None or not path.is_file():
        raise RuntimeError(f"dlib's face model {name} is not installed; run `pip install face-recognition-models "
                           "dlib-bin` (both are in requirements.txt).")
    return path


@dataclass(frozen=True)
class DlibFaces:
    """dlib's detector, 5-point shape predictor and descriptor (``load`` reads them; ~0.2 s)."""

    detector: object
    shape: object
    descriptor: object

    @classmethod
    def load(cls) -> "DlibFaces":
        import dlib

        return cls(dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model_path(SHAPE_MODEL))),
                   dlib.face_recognition_model_v1(str(model_path(DESCRIPTOR_MODEL))))


@dataclass(frozen=True)
class IdentityEvidence:
    """Identity through a clip.

    Attributes:
        frames: [K] analysed-frame indices that were described.
        detected: [K] bool, dlib's own detector found the face there (else the box came from the landmarks).
        descriptors: [K, 128] float32.
        distance: [T] each described frame's distance from the clip's identity (the median descriptor);
            NaN for frames not described.
    """

    frames: np.ndarray
    detected: np.ndarray
    descriptors: np.ndarray
    distance: np.ndarray

    @property
    def spread(self) -> float:
        """The largest distance between two described views (0 with fewer than two)."""
        if len(self.descriptors) < 2:
            return 0.0
        d = self.descriptors
        return float(np.linalg.norm(d[:, None] - d[None], axis=-1).max())

    @property
    def detection_rate(self) -> float:
        """Fraction of described frames in which dlib's detector found a face (1 when none described)."""
        return float(self.detected.mean()) if len(self.detected) else 1.0


def identity_evidence(frames: np.ndarray, landmarks: np.ndarray, found: np.ndarray, models: DlibFaces,
                      count: int = IDENTITY_FRAMES) -> IdentityEvidence:
    """Describe up to ``count`` evenly spaced frames with a face.

    Args:
        frames: [T, H, W, 3] uint8.
        landmarks: [T, 478, 3] mediapipe landmarks in pixels (NaN where none): their box is the face box
            where dlib's detector misses (turned or stylised faces).
        found: [T] bool.
        models: dlib's models (``DlibFaces.load()``).
    """
    candidates = np.nonzero(found)[0]
    chosen = candidates[sample_indices(len(candidates), count)]
    detected, descriptors = [], []
    for i in chosen:
        image = np.ascontiguousarray(frames[i])
        boxes = models.detector(image, 0)
        box = max(boxes, key=lambda b: b.area()) if len(boxes) else _landmark_box(landmarks[i], image.shape)
        shape = models.shape(image, box)
        detected.append(len(boxes) > 0)
        descriptors.append(np.asarray(models.descriptor.compute_face_descriptor(image, shape), np.float32))
    descriptors = np.stack(descriptors) if descriptors else np.zeros((0, 128), np.float32)
    distance = np.full(len(frames), np.nan, np.float32)
    if len(descriptors):
        distance[chosen] = np.linalg.norm(descriptors - np.median(descriptors, 0), axis=-1)
    return IdentityEvidence(chosen, np.array(detected, bool), descriptors, distance)


def _landmark_box(landmarks: np.ndarray, shape: tuple[int, ...]):
    """dlib rectangle around the landmarks, square like the detector's boxes."""
    import dlib

    (x0, y0), (x1, y1) = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * 0.9
    return dlib.rectangle(int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2))
