"""Fit the head template to a photo's 478 mediapipe landmarks.

The camera is weak-perspective (scaled orthographic): a landmark's template point ``X`` lands at
``scale * P @ rotation @ X + translation`` pixels, with ``P = [[1, 0, 0], [0, -1, 0]]`` (the template's +y is
up, the photo's y is down). The shape is the template plus signed local shape targets (one coefficient per
pair of opposite MakeHuman targets, e.g. ``nose-scale-horiz-decr`` / ``-incr``) plus a few facial actions.
Given the pose the model is linear in the coefficients, so the Jacobian is analytic; Levenberg-Marquardt
minimises the landmark reprojection error (in units of the inter-ocular distance, so the regularisation
does not depend on the photo's size) plus a Tikhonov term that keeps the shape near the generic head.

    >>> from face_nerf.head import fit_head, load_head_template, load_landmark_correspondence  # doctest: +SKIP
    >>> fit = fit_head(landmarks, load_head_template(), load_landmark_correspondence())  # doctest: +SKIP
    >>> fit.mean_error_percent_iod  # doctest: +SKIP
    1.9
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from face_nerf.head.correspondence import LandmarkCorrespondence
from face_nerf.head.template import HeadTemplate, SparseOffsets
from face_nerf.landmarks import NUM_LANDMARKS

# mediapipe's face-oval ring: on the silhouette, where the template point's depth is uncertain.
FACE_OUTLINE = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
                176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
IRIS_CENTRES = (468, 473)  # subject's right, left iris centre: their distance is the inter-ocular distance
# Suffixes of opposite targets: (negative side, positive side) of one signed coefficient.
OPPOSITE_SUFFIXES = (("decr", "incr"), ("down", "up"), ("in", "out"), ("backward", "forward"),
                     ("concave", "convex"), ("compress", "uncompress"))
_FLIP_Y = np.array([1.0, -1.0])  # template +y up -> photo y down


@dataclass(frozen=True)
class FitConfig:
    """How the template is fitted to the landmarks."""

    # Target categories (HeadTemplate.target_groups keys) whose opposite pairs get a signed coefficient.
    target_categories: tuple[str, ...] = ("head", "chin", "nose", "mouth", "eyes", "eyebrows", "cheek", "forehead")
    # Pairs whose name starts with one of these are left out (moves of the whole head duplicate the camera).
    excluded_target_prefixes: tuple[str, ...] = ("head-trans-", "head-age-")
    # Facial actions fitted, each with a weight in [0, 1].
    actions: tuple[str, ...] = ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
                                "mouthPucker", "eyeBlinkLeft", "eyeBlinkRight", "eyeWideLeft", "eyeWideRight",
                                "browInnerUp", "browDownLeft", "browDownRight")
    # Tikhonov weight on the target coefficients; the data term is the squared error in inter-ocular units.
    target_regularisation: float = 3e-3
    # Tikhonov weight on the facial-action weights.
    action_regularisation: float = 3e-3
    # Weight of the face-outline landmarks' residuals (1: as the others) - their template depth is uncertain.
    outline_weight: float = 0.3
    # Most Levenberg-Marquardt iterations (accepted or rejected steps).
    iterations: int = 60
    # Stop when an accepted step lowers the cost by less than this fraction.
    tolerance: float = 1e-7

    def __post_init__(self):
        if self.target_regularisation < 0 or self.action_regularisation < 0:
            raise ValueError("Regularisation weights must be >= 0. Got "
                             f"{self.target_regularisation}, {self.action_regularisation}.")
        if not 0 <= self.outline_weight <= 1:
            raise ValueError(f"outline_weight must be in [0, 1]. Got {self.outline_weight}.")
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1. Got {self.iterations}.")


@dataclass(frozen=True)
class HeadFit:
    """The fitted camera and shape.

    Attributes:
        rotation: [3, 3] template frame -> camera frame (camera: x right, y up, z towards the viewer).
        scale: pixels per metre.
        translation: [2] pixels, where the template origin (between the eyeballs) lands.
        target_weights: shape target name -> weight in [0, 1] (for ``HeadTemplate.deformed``).
        action_weights: facial action name -> weight in [0, 1].
        residuals: [478] pixels, distance of each projected template point from its landmark.
        mean_error: mean of ``residuals``, pixels.
        mean_error_percent_iod: ``mean_error`` as a percentage of the inter-ocular (iris-centre) distance.
        iterations: Levenberg-Marquardt iterations run.
        template: the template that was fitted.
    """

    rotation: np.ndarray
    scale: float
    translation: np.ndarray
    target_weights: dict[str, float]
    action_weights: dict[str, float]
    residuals: np.ndarray
    mean_error: float
    mean_error_percent_iod: float
    iterations: int
    template: HeadTemplate = field(repr=False)

    def vertices(self) -> np.ndarray:
        """[V, 3] float32 the deformed template, in the template frame (metres)."""
        return self.template.deformed(self.target_weights, self.action_weights)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixels of template-frame points.

        Args:
            points: [N, 3] points in the template frame (e.g. ``self.vertices()``).

        Returns:
            [N, 2] float64 pixel coordinates (x right, y down).

        Example:
            >>> fit.project(fit.vertices()).shape  # doctest: +SKIP
            (4790, 2)
        """
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"Points must have a shape of (N, 3). Got {points.shape}.")
        return self.scale * (points @ self.rotation.T)[:, :2] * _FLIP_Y + self.translation


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """[3, 3] rotation from angles in degrees: yaw about +y, then pitch about +x, then roll about +z.

    Example:
        >>> np.allclose(rotation_from_euler(0, 0, 0), np.eye(3))
        True
    """
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def opposite_target_pairs(template: HeadTemplate, config: FitConfig = FitConfig()) -> list[tuple[str, str]]:
    """The (negative, positive) target pairs that get one signed coefficient each, in a stable order."""
    pairs = []
    for category in config.target_categories:
        if category not in template.target_groups:
            raise ValueError(f"Unknown target category {category!r}; use some of {sorted(template.target_groups)}.")
        names = set(template.target_groups[category])
        for name in template.target_groups[category]:
            for negative, positive in OPPOSITE_SUFFIXES:
                twin = name[: -len(negative)] + positive
                if name.endswith("-" + negative) and twin in names \
                        and not name.startswith(config.excluded_target_prefixes):
                    pairs.append((name, twin))
    return pairs


def fit_head(landmarks: np.ndarray, template: HeadTemplate, correspondence: LandmarkCorrespondence,
             config: FitConfig = FitConfig()) -> HeadFit:
    """Fit the template's pose, shape targets and facial actions to a photo's landmarks.

    Args:
        landmarks: [478, 2] or [478, 3] mediapipe landmarks in pixels (x right, y down; z is ignored).
        template: the head template (``load_head_template()``).
        correspondence: its landmark points (``load_landmark_correspondence()``).
        config: which coefficients, their regularisation, the outline weight, the iterations.

    Returns:
        The fit; ``fit.vertices()`` is the deformed template, ``fit.project`` the camera.

    Raises:
        ValueError: the landmarks are not a finite [478, 2|3] array, or an action / category is unknown.

    Example:
        >>> fit = fit_head(detect_landmarks(rgb)[0], load_head_template(), load_landmark_correspondence())  # doctest: +SKIP
        >>> fit.rotation.shape, fit.residuals.shape  # doctest: +SKIP
        ((3, 3), (478,))
    """
    target = _checked_landmarks(landmarks)
    for name in config.actions:
        if name not in template.facial_actions:
            raise ValueError(f"Unknown facial action {name!r} in FitConfig.actions; use names of "
                             f"HeadTemplate.facial_actions, e.g. {sorted(template.facial_actions)[:6]}.")
    pairs = opposite_target_pairs(template, config)
    at = _landmark_offsets(correspondence, len(template.vertices))
    negative = np.stack([-at(template.targets[n]) for n, _ in pairs] + [at(template.facial_actions[a]) * 0
                                                                       for a in config.actions], -1)
    positive = np.stack([at(template.targets[p]) for _, p in pairs] + [at(template.facial_actions[a])
                                                                      for a in config.actions], -1)
    model = _Model(correspondence.points(template.vertices).astype(np.float64), negative, positive,
                   len(pairs), target, config)
    rotation, scale, translation = _similarity_init(model.rest, target, model.weights)
    coefficients = np.zeros(negative.shape[-1])
    coefficients, rotation, scale, translation, iterations = model.solve(coefficients, rotation, scale, translation)

    projected = scale * (model.points(coefficients) @ rotation.T)[:, :2] * _FLIP_Y + translation
    residuals = np.linalg.norm(projected - target, axis=1)
    targets = {}
    for (neg, pos), c in zip(pairs, coefficients[: len(pairs)]):
        targets[neg], targets[pos] = float(max(-c, 0.0)), float(max(c, 0.0))
    actions = {a: float(c) for a, c in zip(config.actions, coefficients[len(pairs):])}
    return HeadFit(rotation, float(scale), translation, targets, actions, residuals, float(residuals.mean()),
                   float(100 * residuals.mean() / model.iod), iterations, template)


def _checked_landmarks(landmarks) -> np.ndarray:
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 2 or landmarks.shape[0] != NUM_LANDMARKS or landmarks.shape[1] not in (2, 3):
        raise ValueError(f"Landmarks must have a shape of ({NUM_LANDMARKS}, 2) or ({NUM_LANDMARKS}, 3) in pixels, "
                         f"as detect_landmarks returns them. Got {landmarks.shape}.")
    if not np.isfinite(landmarks).all():
        raise ValueError(f"Landmarks must be finite; got NaN or inf in the ({NUM_LANDMARKS}, 2|3) array.")
    landmarks = landmarks[:, :2]
    if np.linalg.norm(landmarks[IRIS_CENTRES[0]] - landmarks[IRIS_CENTRES[1]]) < 1e-6:
        raise ValueError("The two iris centres (landmarks 468, 473) coincide; pass a real face's landmarks.")
    return landmarks


def _landmark_offsets(correspondence: LandmarkCorrespondence, count: int):
    def at(sparse: SparseOffsets) -> np.ndarray:
        dense = np.zeros((count, 3))
        dense[sparse.indices] = sparse.offsets
        return np.einsum("lk,lkd->ld", correspondence.barycentric, dense[correspondence.corners])
    return at


def _similarity_init(points: np.ndarray, target: np.ndarray, weights: np.ndarray):
    """Closed-form pose: an affine orthographic camera by least squares, made a scaled rotation."""
    w = weights[:, None]
    design = np.hstack([points, np.ones((len(points), 1))])
    affine = np.linalg.lstsq(design * w, target * w, rcond=None)[0].T  # [2, 4]
    rows = affine[:, :3] * _FLIP_Y[:, None]  # scale * rotation[:2]
    u, s, vt = np.linalg.svd(rows, full_matrices=False)
    top = u @ vt
    rotation = np.vstack([top, np.cross(top[0], top[1])])
    return rotation, float(s.mean()), affine[:, 3].copy()


def _rodrigues(w: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(w)
    k = np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])
    if angle < 1e-12:
        return np.eye(3) + k
    k /= angle
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


class _Model:
    """Residuals and their Jacobian; coefficients are signed target pairs, then actions in [0, 1]."""

    def __init__(self, rest, negative, positive, num_pairs, target, config: FitConfig):
        self.rest, self.negative, self.positive, self.target = rest, negative, positive, target
        self.num_pairs = num_pairs
        self.iod = float(np.linalg.norm(target[IRIS_CENTRES[0]] - target[IRIS_CENTRES[1]]))
        self.weights = np.ones(NUM_LANDMARKS)
        self.weights[list(FACE_OUTLINE)] = config.outline_weight
        count = negative.shape[-1]
        self.lower = np.where(np.arange(count) < num_pairs, -1.0, 0.0)
        self.regularisation = np.sqrt(np.where(np.arange(count) < num_pairs, config.target_regularisation,
                                               config.action_regularisation))
        self.config = config

    def basis(self, c: np.ndarray) -> np.ndarray:
        """[478, 3, K] derivative of the points by each coefficient (one-sided mean at 0)."""
        side = np.where(c > 0, 1.0, np.where(c < 0, 0.0, 0.5))
        return self.positive * side + self.negative * (1 - side)

    def points(self, c: np.ndarray) -> np.ndarray:
        return self.rest + self.basis(c) @ c

    def residuals(self, c, rotation, scale, translation) -> np.ndarray:
        projected = scale * (self.points(c) @ rotation.T)[:, :2] * _FLIP_Y + translation
        data = (self.weights[:, None] * (projected - self.target) / self.iod).ravel()
        return np.concatenate([data, self.regularisation * c])

    def jacobian(self, c, rotation, scale) -> np.ndarray:
        """[956 + K, 6 + K]: columns rotation increment (3, left-multiplied), scale, translation (2), coefficients."""
        y = self.points(c) @ rotation.T
        zero = np.zeros(len(y))
        # d(exp([w]) y)/dw_k at w = 0 is e_k x y.
        turns = np.stack([np.stack([zero, -y[:, 2], y[:, 1]], 1), np.stack([y[:, 2], zero, -y[:, 0]], 1),
                          np.stack([-y[:, 1], y[:, 0], zero], 1)], -1)  # [478, 3, 3]
        shape = np.einsum("ij,njk->nik", rotation, self.basis(c))  # [478, 3, K]
        columns = np.concatenate([scale * turns, y[:, :, None], shape * scale], -1)[:, :2] * _FLIP_Y[None, :, None]
        shift = np.broadcast_to(np.eye(2), (len(y), 2, 2))
        columns = np.concatenate([columns[..., :4], shift, columns[..., 4:]], -1)
        data = (self.weights[:, None, None] * columns / self.iod).reshape(-1, columns.shape[-1])
        count = len(c)
        prior = np.hstack([np.zeros((count, 6)), np.diag(self.regularisation)])
        return np.vstack([data, prior])

    def step(self, c, rotation, scale, translation, delta):
        rotation = _rodrigues(delta[:3]) @ rotation
        c = np.clip(c + delta[6:], self.lower, 1.0)
        return c, rotation, scale + delta[3], translation + delta[4:6]

    def solve(self, c, rotation, scale, translation):
        r = self.residuals(c, rotation, scale, translation)
        cost, damping, iterations = r @ r, 1e-3, 0
        for iterations in range(1, self.config.iterations + 1):
            j = self.jacobian(c, rotation, scale)
            normal, gradient = j.T @ j, j.T @ r
            diagonal = np.diag(normal) + 1e-12
            while True:
                delta = np.linalg.solve(normal + damping * np.diag(diagonal), -gradient)
                trial = self.step(c, rotation, scale, translation, delta)
                r_new = self.residuals(*trial)
                new_cost = r_new @ r_new
                if new_cost < cost or damping > 1e8:
                    break
                damping *= 4
            if new_cost >= cost:
                break
            decrease = (cost - new_cost) / max(cost, 1e-30)
            (c, rotation, scale, translation), r, cost = trial, r_new, new_cost
            damping = max(damping / 3, 1e-9)
            if decrease < self.config.tolerance:
                break
        return c, rotation, scale, translation, iterations
