"""Measurable evidence of distortions in a face turntable, per pixel, per face region and per frame.

Every measure is a map [T, H, W] in its own unit (the calibration turns them into "how unusual
compared with clean turntables"):

- ``blur``: local detail, the local mean |Laplacian| over the local mean gradient (a second
  derivative over a first: it falls about as 1 / sigma under a Gaussian blur of sigma pixels, whatever
  the contrast; lower is blurrier).
- ``noise``: local noise level (Immerkaer's Laplacian-difference estimator, in luma units).
- ``blockiness``: luma steps at 8-pixel block borders beyond the steps beside them (JPEG blocks).
- ``exposure``: clipped pixels (luma within 1.5% of black or white).
- ``colour``: opponent colour (red-green, yellow-blue) offsets; the calibration compares each
  region's colour with clean ones.
- ``flicker``: change of a pixel from the mean of its two temporal neighbours, beyond what the
  head's motion explains (divided by the local gradient).
- ``holes``: likeness to a plain background's colour in flat areas (background showing through).
- ``smear``: coherence of the local gradient orientation (streaks point one way).
- ``fringe``: colour edges where the brightness has none (colours bled or shifted past edges), as
  the local chroma gradient over the local luma gradient.
- ``nonrigid``: landmark displacement left after the best rigid (similarity) motion of the whole
  face, splatted around the landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from concurrent.futures import Future, ThreadPoolExecutor

import cv2

from judge.identity import DlibFaces, IdentityEvidence, identity_evidence
from judge.plausibility import HeadModel, ShapeEvidence, shape_evidence
from judge.result import JUDGE_REGIONS
from judge.track import PLAIN_BACKGROUND_SPREAD, FaceTrack, background_colour, background_distance

MAP_MEASURES = ("blur", "noise", "blockiness", "exposure", "colour", "flicker", "holes", "smear", "fringe", "nonrigid")
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
SMALL_FACE_IOD = 64.0  # source pixels between the irises from which a face counts as small (``small_face``)
REFLECT = cv2.BORDER_REFLECT  # edges mirrored, as scipy.ndimage's default


@dataclass(frozen=True)
class Evidence:
    """Raw evidence of one clip.

    Attributes:
        maps: measure name -> [T, H, W] float32 map.
        region_values: [T, R, M] mean of each measure's map over each region in each frame (NaN where
            the region is absent), measures in ``MAP_MEASURES`` order.
        person_values: [T, M] mean of each measure over the whole person (face, hair, neck; the whole
            frame where no person is found), so global evidence survives frames without landmarks.
        flicker_series: [T] frame-to-frame luma change of the face not explained by a smooth turn.
        colour_cast: [2] opponent colour of a plain background (0 when the background is not plain).
        detection_rate: fraction of frames with a face.
        landmark_jitter: frame-to-frame landmark jitter after rigid motion, in face heights.
        yaw: [T] head turn proxy per frame (NaN without a face), positive = subject's right side seen.
        identity: dlib's descriptors of a few frames (``judge.identity``).
        shape: the head model's fit to the most frontal frames (``judge.plausibility``).
        clip_values: [len(CLIP_MEASURES)] clip-level measures (``clip_measures``).
    """

    maps: dict[str, np.ndarray]
    region_values: np.ndarray
    person_values: np.ndarray
    flicker_series: np.ndarray
    colour_cast: np.ndarray
    detection_rate: float
    landmark_jitter: float
    yaw: np.ndarray
    identity: IdentityEvidence
    shape: ShapeEvidence
    clip_values: np.ndarray


@dataclass(frozen=True)
class FaceModels:
    """The trained face models the evidence uses beyond mediapipe's: dlib's and the head model."""

    dlib: DlibFaces
    head: HeadModel

    @classmethod
    def load(cls) -> "FaceModels":
        return cls(DlibFaces.load(), HeadModel.load())


def gather_evidence(frames: np.ndarray, track: FaceTrack, models: FaceModels, source_scale: float = 1.0,
                    maps: dict[str, np.ndarray] | None = None, parallel: bool = True) -> Evidence:
    """All measures of a clip [T, H, W, 3] uint8 with its face track.

    Args:
        frames: [T, H, W, 3] uint8 as analysed.
        track: ``track_faces(frames)``.
        models: ``FaceModels.load()`` (load once, use for many clips).
        source_scale: source pixels per analysed pixel (the judge analyses downscaled frames; a face's
            size is judged in the source's pixels).
        maps: ``frame_maps(frames)`` when already at hand (``track_and_gather`` computes them while the
            face is tracked).
        parallel: run dlib and the head-model fit in threads beside the rest (False: one after the
            other, for a worker that holds one core).
    """
    maps = dict(frame_maps(frames) if maps is None else maps)
    with _executor(2 if parallel else 0) as pool:  # dlib and the head-model fit run beside the rest
        yaw = _yaw(track)
        described = pool.submit(identity_evidence, frames, track.landmarks, track.found, models.dlib)
        fitted = pool.submit(shape_evidence, track.landmarks, yaw, models.head)
        residual = rigid_residuals(track.landmarks, track.found)
        maps["nonrigid"] = _nonrigid_map(track, residual, frames.shape[:3])
        maps = {name: maps[name] for name in MAP_MEASURES}
        luma = (frames.astype(np.float32) / 255.0) @ LUMA
        region_values, person_values = _region_means(maps, track), _person_means(maps, track)
        flicker_series, jitter = _flicker_series(luma, track), _landmark_jitter(residual)
        identity, shape = described.result(), fitted.result()
    return Evidence(maps, region_values, person_values, flicker_series, background_cast(frames),
                    float(track.found.mean()), jitter, yaw, identity, shape,
                    clip_measures(track, identity, shape, source_scale, maps["flicker"]))


def track_and_gather(frames: np.ndarray, models: FaceModels, source_scale: float = 1.0,
                     parallel: bool = True) -> tuple[FaceTrack, Evidence]:
    """``track_faces`` and ``gather_evidence`` of a clip, with the maps that need no face computed while
    the face is tracked (mediapipe runs in its own threads). ``parallel`` False: nothing runs beside
    anything else."""
    from judge.track import track_faces

    with _executor(1 if parallel else 0) as pool:
        tracking = pool.submit(track_faces, frames)
        maps = frame_maps(frames)
        track = tracking.result()
    return track, gather_evidence(frames, track, models, source_scale, maps, parallel)


class _InPlace:
    """An executor that runs each call at once, in the caller's thread (``_executor(0)``)."""

    def submit(self, fn, *args) -> Future:
        future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as err:  # handed to whoever asks for the result, as a thread pool would
            future.set_exception(err)
        return future

    def __enter__(self) -> "_InPlace":
        return self

    def __exit__(self, *exc) -> None:
        return None


def _executor(threads: int):
    """A thread pool of ``threads``, or ``_InPlace`` for 0."""
    return ThreadPoolExecutor(max_workers=threads) if threads else _InPlace()


def frame_maps(frames: np.ndarray) -> dict[str, np.ndarray]:
    """The per-pixel maps of ``MAP_MEASURES`` that need no face (all but ``nonrigid``)."""
    rgb = frames.astype(np.float32) / 255.0
    luma = rgb @ LUMA
    background, spread = background_colour(frames)
    plain = spread <= PLAIN_BACKGROUND_SPREAD
    gradient = np.hypot(_sobel(luma, 1, 0), _sobel(luma, 0, 1))
    fine = _local(gradient, 3.0)
    coarse = _local(np.hypot(*(_sobel(_local(luma, 1.5), *d) for d in ((1, 0), (0, 1)))), 3.0)
    return {
        "blur": _local(np.abs(_per_frame(luma, lambda f: cv2.Laplacian(f, cv2.CV_32F, borderType=REFLECT))), 3.0)
        / (fine + 0.01),
        "noise": _local(np.abs(_per_frame(luma, lambda f: cv2.filter2D(f, -1, IMMERKAER, borderType=REFLECT))), 2.0)
        * np.sqrt(np.pi / 2) / 6,
        "blockiness": _blockiness(luma),
        "exposure": _local(((luma < 0.015) | (luma > 0.985)).astype(np.float32), 2.0),
        "colour": np.stack([rgb[..., 0] - rgb[..., 1], 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]], -1),
        "flicker": _temporal_residual(luma, fine),
        "holes": _background_likeness(frames, coarse, background) if plain else np.zeros(frames.shape[:3], np.float32),
        "smear": _coherence(luma),
        "fringe": _fringe(rgb, fine),
    }


def background_cast(frames: np.ndarray) -> np.ndarray:
    """[2] opponent colour of a plain background (0 when the background is not plain)."""
    background, spread = background_colour(frames)
    if spread > PLAIN_BACKGROUND_SPREAD:
        return np.zeros(2, np.float32)
    bg = background / 255.0
    return np.array([bg[0] - bg[1], 0.5 * (bg[0] + bg[1]) - bg[2]], np.float32)


def clip_measures(track: FaceTrack, identity: IdentityEvidence, shape: ShapeEvidence, source_scale: float,
                  flicker: np.ndarray) -> np.ndarray:
    """[len(CLIP_MEASURES)] clip-level measures, each larger when worse (``calibration.CLIP_MEASURES``).
    ``flicker``: the flicker map [T, H, W]; over the background it says how unevenly the backdrop moves
    (a plain or rigidly moving one barely changes beyond its motion; a warping one pulses)."""
    found = np.nonzero(track.found)[0]
    face = track.face[found].sum((1, 2)).astype(np.float64)
    beyond = ((track.person[found] > 0.5) & ~track.face[found]).sum((1, 2))
    head_missing = float(np.median(1.0 / (1.0 + beyond / np.maximum(face, 1.0)))) if len(found) else 1.0
    iod = np.linalg.norm(track.landmarks[found, 468, :2] - track.landmarks[found, 473, :2], axis=-1) * source_scale
    small_face = float(max(0.0, np.log2(SMALL_FACE_IOD / max(float(np.median(iod)), 1.0)))) if len(found) else 0.0
    error, extremity = shape.values()
    backdrop = (track.person < 0.2) & ~track.face
    per_frame = (flicker * backdrop).sum((1, 2)) / np.maximum(backdrop.sum((1, 2)), 1)
    background_motion = float(np.median(per_frame)) if backdrop.any() else 0.0
    return np.array([identity.spread, 1.0 - identity.detection_rate, error, extremity, head_missing, small_face,
                     background_motion], np.float32)


def _per_frame(x: np.ndarray, op) -> np.ndarray:
    """``op`` (an OpenCV filter of one float32 image) applied to each frame of [T, H, W]."""
    x = np.ascontiguousarray(x, np.float32)
    out = np.empty_like(x)
    for i, frame in enumerate(x):
        out[i] = op(frame)
    return out


def _local(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian local mean over each frame (not across frames)."""
    return _per_frame(x, lambda f: cv2.GaussianBlur(f, (0, 0), sigma, borderType=REFLECT))


def _sobel(x: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Sobel derivative of each frame (3x3, unscaled) along x (dx=1) or y (dy=1)."""
    return _per_frame(x, lambda f: cv2.Sobel(f, cv2.CV_32F, dx, dy, ksize=3, borderType=REFLECT))


def _blockiness(luma: np.ndarray) -> np.ndarray:
    """Steps across 8-pixel block borders beyond the mean step beside them, spread over the block."""
    out = np.zeros_like(luma)
    for axis in (1, 2):
        border = np.arange(7, luma.shape[axis] - 2, 8)  # a step between pixels b and b + 1, with one on each side
        y = [np.take(luma, border + k, axis=axis) for k in (-1, 0, 1, 2)]
        at, before, after = np.abs(y[2] - y[1]), np.abs(y[1] - y[0]), np.abs(y[3] - y[2])
        index = [slice(None)] * 3
        index[axis] = border
        out[tuple(index)] += np.clip(at - 0.5 * (before + after), 0, None)
    return _local(out, 4.0) * 8.0


def _temporal_residual(luma: np.ndarray, detail: np.ndarray) -> np.ndarray:
    """|Y_t - (Y_{t-1} + Y_{t+1}) / 2| over the local gradient (a turn moves edges, not flat areas)."""
    if luma.shape[0] < 3:
        return np.zeros_like(luma)
    middle = np.abs(luma[1:-1] - 0.5 * (luma[:-2] + luma[2:]))
    residual = np.concatenate([middle[:1], middle, middle[-1:]])
    return _local(residual, 2.0) / (detail + 0.05)


def _background_likeness(frames: np.ndarray, texture: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """1 where a pixel has the plain background's ``colour`` [3] and no texture, 0 elsewhere."""
    distance = background_distance(frames, colour)
    flat = np.clip(1.0 - texture / 0.05, 0.0, 1.0)
    return _local(np.exp(-(distance / 10.0) ** 2) * flat, 1.5)


def _coherence(luma: np.ndarray) -> np.ndarray:
    """Structure-tensor coherence ((l1 - l2) / (l1 + l2))^2, weighted by how much structure there is."""
    gx, gy = _sobel(luma, 1, 0), _sobel(luma, 0, 1)
    jxx, jyy, jxy = _local(gx * gx, 3.0), _local(gy * gy, 3.0), _local(gx * gy, 3.0)
    trace = jxx + jyy
    diff = np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2)
    return (diff / (trace + 1e-3)) ** 2 * np.clip(trace / 0.01, 0.0, 1.0)


def _fringe(rgb: np.ndarray, luma_detail: np.ndarray) -> np.ndarray:
    """Local chroma gradient (red-green and blue-yellow) over the local luma gradient."""
    red_green = rgb[..., 0] - rgb[..., 1]
    blue_yellow = rgb[..., 2] - 0.5 * (rgb[..., 0] + rgb[..., 1])
    chroma = sum(np.hypot(_sobel(c, 1, 0), _sobel(c, 0, 1)) for c in (red_green, blue_yellow))
    return _local(chroma, 3.0) / (luma_detail + 0.05)


def rigid_residuals(landmarks: np.ndarray, found: np.ndarray) -> np.ndarray:
    """[T, 478] distance of each landmark from the clip's mean shape after the best similarity
    transform (3D Procrustes) of each frame, in face heights; NaN where no face.

    The mean shape is re-estimated twice from the aligned frames. A rigid turn leaves ~0; a region that
    slides or pulses independently of the head leaves its landmarks' residuals.
    """
    out = np.full(landmarks.shape[:2], np.nan, np.float32)
    shapes = landmarks[found].astype(np.float64)
    if len(shapes) < 2:
        return out
    shapes = shapes - shapes.mean(1, keepdims=True)
    shapes /= np.sqrt((shapes ** 2).sum((1, 2), keepdims=True) / shapes.shape[1])
    reference = shapes[0]
    for _ in range(3):
        aligned = align_all(shapes, reference)
        reference = aligned.mean(0)
    face_h = np.linalg.norm(reference[10] - reference[152])
    out[found] = np.linalg.norm(aligned - reference, axis=-1) / face_h
    return out


def align_all(shapes: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``_align`` of every shape [T, N, 3] at once (one batched SVD: 48 frames in ~10 ms, not ~0.15 s)."""
    u, s, vt = np.linalg.svd(shapes.transpose(0, 2, 1) @ reference)
    flip = np.ones((len(shapes), 3))
    flip[:, 2] = np.sign(np.linalg.det(u @ vt))
    rotation = (u * flip[:, None, :]) @ vt
    scale = (s * flip).sum(1) / (shapes ** 2).sum((1, 2))
    return scale[:, None, None] * shapes @ rotation


def _align(shape: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``shape`` [N, 3] rotated and scaled onto ``reference`` (both centred) by least squares (the slow,
    obviously correct twin of ``align_all``)."""
    u, s, vt = np.linalg.svd(shape.T @ reference)
    d = np.sign(np.linalg.det(u @ vt))
    rotation = u @ np.diag([1.0, 1.0, d]) @ vt
    scale = (s * np.array([1.0, 1.0, d])).sum() / (shape ** 2).sum()
    return scale * shape @ rotation


def _nonrigid_map(track: FaceTrack, residual: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Rigid-motion residuals [T, 478] splatted around each landmark (Gaussian, ~4% of the face height)."""
    out = np.zeros(shape, np.float32)
    weight = np.zeros(shape, np.float32)
    t, h, w = shape
    for i in np.nonzero(track.found)[0]:
        xy = np.round(track.landmarks[i, :, :2]).astype(int)
        keep = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
        pixel = xy[keep, 1] * w + xy[keep, 0]
        out[i] = np.bincount(pixel, residual[i, keep], h * w).reshape(h, w)
        weight[i] = np.bincount(pixel, minlength=h * w).reshape(h, w)
    face_h = np.nanmedian(np.linalg.norm(track.landmarks[:, 10, :2] - track.landmarks[:, 152, :2], axis=-1)) \
        if track.found.any() else h
    sigma = max(1.0, 0.04 * float(face_h))
    return _local(out, sigma) / (_local(weight, sigma) + 1e-3)


def _region_means(maps: dict[str, np.ndarray], track: FaceTrack) -> np.ndarray:
    """[T, R, M] mean of each measure over each region (colour: its red-green component; the calibration
    compares the full offset through ``region_colours``)."""
    return np.stack([track.region_means(maps[name][..., 0] if name == "colour" else maps[name])
                     for name in MAP_MEASURES], -1).astype(np.float32)


def _person_means(maps: dict[str, np.ndarray], track: FaceTrack) -> np.ndarray:
    """[T, M] mean of each measure over the person (the whole frame where the segmenter saw nobody)."""
    person = (track.person > 0.5) | track.face
    person[person.reshape(len(person), -1).sum(1) < 12] = True
    weight = person.reshape(len(person), -1).astype(np.float32)
    values = [(maps[n][..., 0] if n == "colour" else maps[n]).reshape(len(person), -1) for n in MAP_MEASURES]
    return np.stack([(v * weight).sum(1) / weight.sum(1) for v in values], -1).astype(np.float32)


def region_colours(maps: dict[str, np.ndarray], track: FaceTrack) -> np.ndarray:
    """[T, R, 2] mean opponent colour of each region in each frame (NaN where absent)."""
    return track.region_means(maps["colour"])


def _flicker_series(luma: np.ndarray, track: FaceTrack) -> np.ndarray:
    """[T] |m_t - (m_{t-1} + m_{t+1}) / 2| of the mean luma over the person (a smooth turn changes the
    mean smoothly; flicker jumps)."""
    weight = np.maximum(track.person, 1e-3)
    means = (luma * weight).sum((1, 2)) / weight.sum((1, 2))
    if len(means) < 3:
        return np.zeros_like(means)
    middle = np.abs(means[1:-1] - 0.5 * (means[:-2] + means[2:]))
    return np.concatenate([middle[:1], middle, middle[-1:]])


def _landmark_jitter(residual: np.ndarray) -> float:
    """Median frame-to-frame second difference of the rigid-motion residuals [T, 478], in face heights."""
    if np.isfinite(residual).sum() == 0 or residual.shape[0] < 3:
        return 0.0
    second = np.abs(residual[1:-1] - 0.5 * (residual[:-2] + residual[2:]))
    return float(np.nanmedian(second)) if np.isfinite(second).any() else 0.0


def _yaw(track: FaceTrack) -> np.ndarray:
    from face_nerf.landmarks import nose_yaw_proxy

    return np.array([nose_yaw_proxy(lm) if ok else np.nan for lm, ok in zip(track.landmarks, track.found)], np.float32)
