"""Measurements of a reconstruction against its photo (used by the tests and bench/measure_quality.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from face_nerf.landmarks import detect_landmarks, nose_yaw_proxy


def face_psnr(input_view_rgba: np.ndarray, photo_rgb: np.ndarray, face_mask: np.ndarray) -> float:
    """PSNR (dB) of the rendered input view (composited on black) against the photo, inside face_mask.

    Args:
        input_view_rgba: [H, W, 4] uint8 straight-alpha render from the photo's camera.
        photo_rgb: [H, W, 3] uint8 photo.
        face_mask: [H, W] bool region to compare (e.g. the landmark hull).
    """
    if input_view_rgba.shape[:2] != photo_rgb.shape[:2] or face_mask.shape != photo_rgb.shape[:2]:
        raise ValueError(f"Sizes differ: render {input_view_rgba.shape}, photo {photo_rgb.shape}, mask {face_mask.shape}.")
    view = input_view_rgba.astype(np.float64) / 255.0
    rendered = view[..., :3] * view[..., 3:]
    mse = np.mean((rendered[face_mask] - photo_rgb[face_mask].astype(np.float64) / 255.0) ** 2)
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


@dataclass(frozen=True)
class TurnTracking:
    """How the face landmarker sees a turntable.

    Attributes:
        detection_rate: share of frames with a face found.
        yaw_correlation: Pearson correlation of the nose-offset yaw proxy with the camera yaw
            (over frames with a face).
    """

    detection_rate: float
    yaw_correlation: float


def track_turntable(frames: np.ndarray, yaws: list[float]) -> TurnTracking:
    """Run the face landmarker on every frame [N, H, W, 3] and compare its head turn with ``yaws``."""
    proxies, seen = [], []
    for frame, yaw in zip(frames, yaws):
        faces = detect_landmarks(frame, max_faces=1)
        if faces:
            proxies.append(nose_yaw_proxy(faces[0]))
            seen.append(yaw)
    correlation = float(np.corrcoef(proxies, seen)[0, 1]) if len(proxies) > 2 else float("nan")
    return TurnTracking(len(proxies) / len(frames), correlation)


@dataclass(frozen=True)
class FaceLightMeasure:
    """How a rendered face is lit, measured on the face the landmarker finds.

    Attributes:
        left_right_ratio: mean luminance of the face's left image half (viewer's left) over its right
            half, split at the nose tip.
        red_blue_ratio: mean red over mean blue on the face.
        landmarks: [478, 3] landmarks found (pixels).
    """

    left_right_ratio: float
    red_blue_ratio: float
    landmarks: np.ndarray


def measure_face_light(frame: np.ndarray) -> FaceLightMeasure | None:
    """Measure the lighting of the face in an [H, W, 3] uint8 render; None when no face is found."""
    from face_nerf.landmarks import NOSE_TIP, landmark_hull_mask
    from face_nerf.lighting import LUMA

    faces = detect_landmarks(frame, max_faces=1)
    if not faces:
        return None
    landmarks = faces[0]
    face = landmark_hull_mask(landmarks, (frame.shape[1], frame.shape[0]))
    rgb = frame.astype(np.float64) / 255.0
    luminance = rgb @ LUMA.double().numpy()
    left = face & (np.arange(frame.shape[1])[None, :] < landmarks[NOSE_TIP, 0])
    right = face & ~left
    ratio = float(luminance[left].mean() / max(luminance[right].mean(), 1e-6))
    red_blue = float(rgb[face][:, 0].mean() / max(rgb[face][:, 2].mean(), 1e-6))
    return FaceLightMeasure(ratio, red_blue, landmarks)


def region_masks(frame: np.ndarray) -> dict[str, np.ndarray] | None:
    """Semantic region masks of a rendered face ([H, W, 3] uint8) found by the landmarker and the
    person segmenter, as ``regions.REGIONS`` name -> [H, W] bool; None when no face is found."""
    from face_nerf.landmarks import segment_person
    from face_nerf.regions import REGION_ID, photo_region_labels

    faces = detect_landmarks(frame, max_faces=1)
    if not faces:
        return None
    labels = photo_region_labels(faces[0], segment_person(frame), frame)
    return {name: labels == i for name, i in REGION_ID.items()}


def mean_lab(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[3] mean CIELAB (L*, a*, b*) of an sRGB uint8 frame over a mask."""
    from skimage.color import rgb2lab

    return rgb2lab(frame.astype(np.float64) / 255.0)[mask].mean(0)


def mean_delta_e(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> float:
    """Mean CIE76 colour difference between two sRGB uint8 frames over a mask."""
    from skimage.color import rgb2lab

    diff = rgb2lab(before.astype(np.float64) / 255.0) - rgb2lab(after.astype(np.float64) / 255.0)
    return float(np.linalg.norm(diff[mask], axis=-1).mean())


def mouth_width_ratio(frame: np.ndarray) -> float | None:
    """Mouth width (corner to corner) over the distance between the iris centres, on a rendered face."""
    from face_nerf.regions import IRIS_CENTRES, MOUTH_CORNERS

    faces = detect_landmarks(frame, max_faces=1)
    if not faces:
        return None
    lm = faces[0][:, :2]
    eyes = np.linalg.norm(lm[IRIS_CENTRES["right"][0]] - lm[IRIS_CENTRES["left"][0]])
    return float(np.linalg.norm(lm[MOUTH_CORNERS[0]] - lm[MOUTH_CORNERS[1]]) / eyes)
