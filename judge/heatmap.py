"""Distortion heatmaps: from per-pixel evidence to maps in [0, 1], overlays, and how well a map finds a
region (NSS, AUC)."""

from __future__ import annotations

import cv2
import numpy as np

Z_FLOOR = 3.0  # pixel z-scores below this are what clean turntables show anyway
Z_SCALE = 6.0  # z above the floor that gives a map value of 1 - 1/e


def distortion_heatmaps(standout: np.ndarray, person: np.ndarray, region_weights: np.ndarray, labels: np.ndarray,
                        frame_focus: np.ndarray | None = None) -> np.ndarray:
    """[T, H, W] float32 maps in [0, 1]: mostly how much each face region is to blame, refined by the
    pixels whose evidence stands out from the face as a whole.

    Args:
        standout: [T, H, W] how far each pixel's evidence stands above the face as a whole, in z
            (``Calibration.pixel_standout``; a change of the whole face is not a hot spot).
        person: [T, H, W] bool, the person (face, hair, neck): maps are 0 elsewhere.
        region_weights: [R] in [0, 1], each region's share of the blame.
        labels: [T, H, W] region index of each pixel, -1 outside every region (``FaceTrack.labels``).
        frame_focus: [T] in [0, 1], how much of the regions' blame each frame takes (a distortion in a
            stretch of frames); None: every frame alike.
    """
    pixel = 1.0 - np.exp(-np.clip(standout - Z_FLOOR, 0.0, None) / Z_SCALE)
    pixel = (pixel * person).astype(np.float32)
    for frame in pixel:
        cv2.GaussianBlur(frame, (0, 0), 2.0, dst=frame, borderType=cv2.BORDER_REFLECT)
    by_region = np.append(region_weights.astype(np.float32), np.float32(0.0))[labels]  # -1 reads the 0 appended
    if frame_focus is not None:
        by_region *= (0.3 + 0.7 * np.asarray(frame_focus, np.float32))[:, None, None]
    return np.clip(0.75 * by_region + 0.25 * pixel, 0.0, 1.0).astype(np.float32)


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """[H, W, 3] uint8: ``image`` with ``heatmap`` [H, W] in [0, 1] laid over it in a dark-red-to-yellow
    colour map (transparent where the map is 0)."""
    if image.shape[:2] != heatmap.shape:
        raise ValueError(f"Heatmap must have the image's size {image.shape[:2]}. Got {heatmap.shape}.")
    h = np.clip(heatmap, 0.0, 1.0)[..., None]
    colour = np.concatenate([np.clip(2.0 * h, 0, 1), np.clip(2.0 * h - 0.7, 0, 1), np.clip(3.0 * h - 2.4, 0, 1)], -1)
    weight = alpha * np.clip(2.5 * h, 0, 1)
    return (image.astype(np.float32) * (1 - weight) + 255.0 * colour * weight).round().astype(np.uint8)


def resize_heatmaps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[T, H, W] maps -> [T, *size] float32 (bilinear), e.g. to lay one judge's maps over other frames."""
    import torch
    import torch.nn.functional as F

    if maps.ndim != 3:
        raise ValueError(f"maps must have a shape of (T, H, W). Got {maps.shape}.")
    sized = F.interpolate(torch.from_numpy(np.ascontiguousarray(maps, np.float32))[:, None], size=tuple(size),
                          mode="bilinear", align_corners=False)
    return sized[:, 0].clamp(0, 1).numpy()


def nss(heatmap: np.ndarray, target: np.ndarray) -> float:
    """Normalised scanpath saliency: mean of the z-scored map over the target pixels (bool [H, W])."""
    std = heatmap.std()
    if std < 1e-9 or not target.any():
        return 0.0
    return float(((heatmap - heatmap.mean()) / std)[target].mean())


def auc(heatmap: np.ndarray, target: np.ndarray) -> float:
    """Area under the ROC curve of the map as a detector of the target pixels (ties count half)."""
    positives, negatives = heatmap[target], heatmap[~target]
    if positives.size == 0 or negatives.size == 0:
        return 0.5
    ranks = _ranks(np.concatenate([positives, negatives]))
    return float((ranks[:positives.size].sum() - positives.size * (positives.size + 1) / 2)
                 / (positives.size * negatives.size))


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties averaged."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    unique, start, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    for s, c in zip(start[counts > 1], counts[counts > 1]):
        ranks[order[s:s + c]] = s + (c + 1) / 2
    return ranks
