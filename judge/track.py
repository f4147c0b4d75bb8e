"""Faces through a clip: landmarks per frame, the person's silhouette, and the judge's face regions."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from face_nerf.native_logs import quiet_native_logs
from judge.result import JUDGE_REGIONS

PLAIN_BACKGROUND_SPREAD = 6.0  # grey levels: borders more uniform than this are a plain backdrop


@dataclass(frozen=True)
class FaceTrack:
    """The face in every analysed frame.

    Attributes:
        landmarks: [T, 478, 3] float32 pixels (x right, y down, z depth scaled like x); NaN where no face.
        found: [T] bool, a face was found.
        person: [T, H, W] float32 in [0, 1], the person's silhouette.
        labels: [T, H, W] int8, each pixel's region index in ``JUDGE_REGIONS`` (regions do not overlap), -1
            outside every region (everywhere where no face).
        face: [T, H, W] bool, inside the face oval.
    """

    landmarks: np.ndarray
    found: np.ndarray
    person: np.ndarray
    labels: np.ndarray
    face: np.ndarray

    @cached_property
    def regions(self) -> np.ndarray:
        """[T, R, H, W] bool masks of ``JUDGE_REGIONS``."""
        return self.labels[:, None] == np.arange(len(JUDGE_REGIONS), dtype=np.int8)[None, :, None, None]

    def region(self, name: str) -> np.ndarray:
        """[T, H, W] bool mask of one region."""
        return self.labels == JUDGE_REGIONS.index(name)

    @cached_property
    def _bins(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(flat indices of the pixels inside a region, frame-and-region bin of each, area [T, R])."""
        t, r = len(self.labels), len(JUDGE_REGIONS)
        inside = np.flatnonzero(self.labels >= 0)
        bins = (np.arange(t, dtype=np.int64)[:, None, None] * r + self.labels).ravel()[inside]
        return inside, bins, np.bincount(bins, minlength=t * r).reshape(t, r).astype(np.float32)

    def region_means(self, values: np.ndarray, min_area: int = 12) -> np.ndarray:
        """Mean of ``values`` [T, H, W] (or [T, H, W, C]) over each region in each frame: [T, R] (or
        [T, R, C]), NaN where the region covers fewer than ``min_area`` pixels."""
        inside, bins, area = self._bins
        t, r = area.shape
        flat = values.reshape(t * values.shape[1] * values.shape[2], -1)
        picked = flat[inside] if values.ndim == 4 else flat[inside, 0]
        columns = [picked] if picked.ndim == 1 else list(picked.T)
        sums = np.stack([np.bincount(bins, c, t * r).reshape(t, r) for c in columns], -1)
        means = np.where((area >= min_area)[..., None], sums / np.maximum(area, 1.0)[..., None], np.nan)
        return means[..., 0] if picked.ndim == 1 else means


def track_faces(frames: np.ndarray) -> FaceTrack:
    """Landmarks (each frame on its own, so their jitter is evidence), silhouettes and regions.

    Args:
        frames: [T, H, W, 3] uint8.
    """
    import mediapipe as mp

    t, h, w = frames.shape[:3]
    landmarks = np.full((t, 478, 3), np.nan, np.float32)
    person = np.zeros((t, h, w), np.float32)
    with quiet_native_logs(), \
            mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                            min_detection_confidence=0.5) as mesh, \
            mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as segmenter:
        for i, frame in enumerate(frames):
            frame = np.ascontiguousarray(frame)
            found = mesh.process(frame).multi_face_landmarks
            if found:
                landmarks[i] = [[p.x * w, p.y * h, p.z * w] for p in found[0].landmark]
            person[i] = np.clip(np.asarray(segmenter.process(frame).segmentation_mask, np.float32), 0, 1)
    person = np.minimum(person, _unlike_background(frames))
    found = ~np.isnan(landmarks[:, 0, 0])
    labels = np.full((t, h, w), -1, np.int8)
    face = np.zeros((t, h, w), bool)
    loops = RegionLoops.from_mediapipe()
    for i in np.nonzero(found)[0]:
        labels[i], face[i] = frame_regions(landmarks[i], person[i] > 0.5, loops)
    return FaceTrack(landmarks, found, person, labels, face)


def background_colour(frames: np.ndarray, border_px: int = 4) -> tuple[np.ndarray, float]:
    """Median colour [3] of the frames' ``border_px``-wide borders and how uniform they are (median abs
    deviation, grey levels)."""
    b = border_px
    border = np.concatenate([frames[:, :b].reshape(-1, 3), frames[:, -b:].reshape(-1, 3),
                             frames[:, :, :b].reshape(-1, 3), frames[:, :, -b:].reshape(-1, 3)]).astype(np.float32)
    median = np.median(border, axis=0)
    return median, float(np.median(np.abs(border - median).max(-1)))


def background_distance(frames: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """[T, H, W] float32 largest channel difference (grey levels) of each pixel from ``colour`` [3] (within
    0-255). OpenCV's absolute difference of bytes is exact, and 13x faster than numpy's in int16."""
    t, h, w, _ = frames.shape
    target = tuple(int(c) for c in np.clip(np.round(colour), 0, 255)) + (0,)
    diff = cv2.absdiff(np.ascontiguousarray(frames).reshape(t * h, w, 3), target)
    return np.maximum(np.maximum(diff[..., 0], diff[..., 1]), diff[..., 2]).reshape(t, h, w).astype(np.float32)


def _unlike_background(frames: np.ndarray) -> np.ndarray:
    """[T, H, W] 1 where a pixel differs from a plain background, 0 where it matches it; all 1 when the
    background is not plain (then the segmenter alone decides)."""
    colour, spread = background_colour(frames)
    if spread > PLAIN_BACKGROUND_SPREAD:
        return np.ones(frames.shape[:3], np.float32)
    return np.clip((background_distance(frames, colour) - 6.0) / 6.0, 0.0, 1.0)


@dataclass(frozen=True)
class RegionLoops:
    """Landmark index groups the regions are drawn from (read once from mediapipe's mesh topology)."""

    oval: tuple[int, ...]
    brows: tuple[tuple[int, ...], tuple[int, ...]]
    nose: tuple[int, ...]

    @classmethod
    def from_mediapipe(cls) -> "RegionLoops":
        from face_nerf.regions import face_oval_loop, landmark_groups

        groups = landmark_groups()
        return cls(face_oval_loop(), (groups["right_eyebrow"], groups["left_eyebrow"]), groups["nose"] + (98, 327))


def frame_regions(landmarks: np.ndarray, person: np.ndarray, loops: RegionLoops) -> tuple[np.ndarray, np.ndarray]:
    """The judge's regions in one frame from its landmarks [478, 3] and person mask [H, W] bool:
    ([H, W] int8 region index in ``JUDGE_REGIONS``, -1 outside every region; [H, W] bool face oval)."""
    from face_nerf.regions import LEFT_EYE, LIPS_OUTER, RIGHT_EYE, hull_mask, polygon_mask

    h, w = person.shape
    xy = landmarks[:, :2].astype(np.float64)
    ys = np.arange(h, dtype=np.float64)[:, None]

    def scaled(indices, factor) -> np.ndarray:  # a landmark polygon grown about its centre
        points = xy[list(indices)]
        centre = points.mean(0)
        return polygon_mask(centre + (points - centre) * np.asarray(factor), (w, h))

    oval = polygon_mask(xy[list(loops.oval)], (w, h))
    eyes = scaled(RIGHT_EYE, (1.3, 2.2)) | scaled(LEFT_EYE, (1.3, 2.2))
    brows = hull_mask(xy[list(loops.brows[0])], (w, h)) | hull_mask(xy[list(loops.brows[1])], (w, h))
    nose = hull_mask(xy[list(loops.nose)], (w, h))
    mouth = scaled(LIPS_OUTER, (1.1, 1.25))
    brow_top = xy[list(loops.brows[0] + loops.brows[1]), 1].min()
    eye_bottom, lip_bottom = xy[[145, 374], 1].max(), xy[17, 1]
    jaw = 0.5 * (xy[172, 1] + xy[397, 1])
    outside = person & ~scaled(loops.oval, 1.04)
    ordered = {"forehead": oval & (ys < eye_bottom), "cheeks": oval & (ys >= eye_bottom) & (ys <= lip_bottom),
               "chin": oval & (ys > lip_bottom), "hair": outside & (ys <= jaw), "neck": outside & (ys > jaw),
               "nose": nose, "eyebrows": brows & (ys < eye_bottom), "eyes": eyes, "mouth": mouth}
    label = np.full((h, w), -1, np.int8)
    for name, mask in ordered.items():  # later ones win where they overlap
        label[mask] = JUDGE_REGIONS.index(name)
    return label, oval
