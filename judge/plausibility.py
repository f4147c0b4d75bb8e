"""Is the face shaped like a human face? The head model (MakeHuman's head, ``face_nerf.head``) fitted to
a few frames' landmarks: a real face fits with small errors and moderate shape weights; a cartoon's
large eyes and small jaw, or a structurally broken face, need extreme weights or do not fit at all."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLAUSIBILITY_FRAMES = 2  # the most frontal frames fitted (a fit costs ~0.1 s)
FIT_ITERATIONS = 20


@dataclass(frozen=True)
class ShapeEvidence:
    """How the head model fits the clip's most frontal frames.

    Attributes:
        frames: [K] analysed-frame indices fitted.
        error: [K] mean landmark error of each fit, in percent of the inter-ocular distance.
        extremity: [K] mean |shape weight| of each fit (0 = the template's average face, 1 = every shape
            target at its limit).
    """

    frames: np.ndarray
    error: np.ndarray
    extremity: np.ndarray

    def values(self) -> tuple[float, float]:
        """(error, extremity) of the clip: the medians over the fitted frames (0 when none was fitted)."""
        if not len(self.frames):
            return 0.0, 0.0
        return float(np.median(self.error)), float(np.median(self.extremity))


@dataclass(frozen=True)
class HeadModel:
    """The head model's template and its landmark correspondence (``load`` reads them from their cache)."""

    template: object
    correspondence: object

    @classmethod
    def load(cls) -> "HeadModel":
        from face_nerf.head import load_head_template, load_landmark_correspondence

        return cls(load_head_template(), load_landmark_correspondence())


def shape_evidence(landmarks: np.ndarray, yaw: np.ndarray, model: HeadModel, count: int = PLAUSIBILITY_FRAMES) -> ShapeEvidence:
    """Fit the head ``model`` to the landmarks [T, 478, 3] of the ``count`` frames with the smallest |yaw|
    [T] (NaN where no face)."""
    from face_nerf.head import FitConfig, fit_head

    order = [int(i) for i in np.argsort(np.where(np.isfinite(yaw), np.abs(yaw), np.inf)) if np.isfinite(yaw[i])][:count]
    template, correspondence = model.template, model.correspondence
    config = FitConfig(iterations=FIT_ITERATIONS)
    errors, extremity = [], []
    for i in order:
        fit = fit_head(landmarks[i], template, correspondence, config)
        errors.append(fit.mean_error_percent_iod)
        extremity.append(float(np.mean(np.abs(list(fit.target_weights.values())))))
    return ShapeEvidence(np.array(order, int), np.array(errors, np.float32), np.array(extremity, np.float32))
