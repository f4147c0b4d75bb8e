"""Edits through the fitted head model: facial actions (smile, frown, open mouth, raised eyebrows, wink),
MakeHuman's shape targets (a bigger nose, pointed ears, a strong chin, a wider face), its age
targets, and facial hair as a layer grown over the jaw.

The model's vertices move by ``weight x offset`` of each target or action; the rest of space follows
smoothly (a Gaussian blend of the nearest vertices' offsets, fading off the surface), and the field is
warped by it (``canvas.deform``), so the photo texture moves with the skin it shows. Fields made
without the head model (``HeadField.head_vertices`` is None) return None and the caller falls back to
its landmark handles.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from face_nerf.appearance.hair import taper
from face_nerf.field import HeadField

# edit target -> (shape target weights, facial action weights) at strength 1
ANATOMY = {
    "smile": ({}, {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "mouthStretchLeft": 0.3, "mouthStretchRight": 0.3,
                   "cheekSquintLeft": 0.3, "cheekSquintRight": 0.3}),
    "frown": ({}, {"mouthFrownLeft": 0.9, "mouthFrownRight": 0.9, "browDownLeft": 0.6, "browDownRight": 0.6}),
    "open mouth": ({}, {"jawOpen": 0.6}),
    "raised eyebrows": ({}, {"browInnerUp": 0.9, "browOuterUpLeft": 0.9, "browOuterUpRight": 0.9}),
    "wink": ({}, {"eyeBlinkLeft": 1.0, "cheekSquintLeft": 0.4, "mouthSmileLeft": 0.2}),
    "bigger nose": ({"nose-scale-horiz-incr": 0.8, "nose-scale-vert-incr": 0.6, "nose-scale-depth-incr": 0.7,
                     "nose-volume-incr": 0.6}, {}),
    "pointed ears": ({"l-ear-shape-pointed": 1.0, "r-ear-shape-pointed": 1.0, "l-ear-scale-vert-incr": 0.4,
                      "r-ear-scale-vert-incr": 0.4}, {}),
    "strong chin": ({"chin-prominent-incr": 1.0, "chin-width-incr": 0.6, "chin-bones-incr": 0.6}, {}),
    "wider face": ({"head-scale-horiz-incr": 0.7, "l-cheek-bones-incr": 0.6, "r-cheek-bones-incr": 0.6,
                    "chin-width-incr": 0.4}, {}),
}
AGE_TARGETS = {  # older: from the young to the old phenotype, averaged over both sexes (universal body)
    "universal-female-old-averagemuscle-averageweight": 0.5, "universal-male-old-averagemuscle-averageweight": 0.5,
    "universal-female-young-averagemuscle-averageweight": -0.5, "universal-male-young-averagemuscle-averageweight": -0.5,
}
AGE_REGIONS = ("face", "lips")  # the age targets reshape the whole head; the edit keeps the face's share
BLEND_RADIUS = 0.03  # face heights: how far apart vertices' offsets are blended
REACH = 0.06  # face heights off the surface over which the displacement fades out


def model_offsets(field: HeadField, targets: dict[str, float], actions: dict[str, float], strength: float = 1.0,
                  regions: tuple[str, ...] | None = None) -> np.ndarray | None:
    """[V, 3] world offsets of the head model's vertices for weighted targets and actions (times
    ``strength``), only of the vertices in ``regions`` when given; None when the field has no head model
    (or one from another template version)."""
    from face_nerf.head import load_head_template

    if field.head_vertices is None or field.head_axes is None:
        return None
    template = load_head_template()
    if len(template.vertices) != len(field.head_vertices):
        return None
    offsets = np.zeros_like(template.vertices, dtype=np.float64)
    for table, weights in ((template.targets, targets), (template.facial_actions, actions)):
        for name, weight in weights.items():
            indices, delta = table[name]
            offsets[indices] += strength * weight * delta
    if regions is not None:
        keep = np.isin(np.arange(len(offsets)), np.concatenate([template.regions[r] for r in regions]))
        offsets[~keep] = 0.0
    return offsets @ field.head_axes.double().numpy().T


def model_displacement(field: HeadField, offsets: np.ndarray):
    """A displacement [..., 3] -> [..., 3] that moves the model's vertices by ``offsets`` [V, 3] and the space
    around them smoothly (zero farther than ``REACH`` from the surface or where no vertex moves)."""
    vertices = field.head_vertices.double().numpy()
    tree = cKDTree(vertices)
    moving = np.abs(offsets).max(1) > 1e-7
    if not moving.any():
        return lambda points: torch.zeros_like(points)
    lo = vertices[moving].min(0) - 2 * REACH
    hi = vertices[moving].max(0) + 2 * REACH

    def displacement(points: Tensor) -> Tensor:
        flat = points.reshape(-1, 3).double().numpy()
        out = np.zeros_like(flat)
        near = np.nonzero(((flat >= lo) & (flat <= hi)).all(1))[0]
        if len(near):
            distance, nearest = tree.query(flat[near], k=8, workers=-1)
            weights = np.exp(-0.5 * (distance / BLEND_RADIUS) ** 2) + 1e-12
            blended = (weights[..., None] * offsets[nearest]).sum(1) / weights.sum(1, keepdims=True)
            out[near] = blended * np.exp(-0.5 * (distance[:, :1] / REACH) ** 2)
        return torch.from_numpy(out).to(points.dtype).reshape(points.shape)

    return displacement


def facial_hair_thickness(field: HeadField, kind: str, strength: float = 1.0) -> np.ndarray | None:
    """[V] thickness (face heights) of a beard, moustache or stubble over the head model's vertices,
    tapering to zero at its edge, or None without a head model."""
    from face_nerf.head import load_head_template

    if field.head_vertices is None:
        return None
    template = load_head_template()
    if len(template.vertices) != len(field.head_vertices):
        return None
    rest = template.vertices.astype(np.float64)
    lips = np.zeros(len(rest), bool)
    lips[template.regions["lips"]] = True
    skin = np.zeros(len(rest), bool)
    for region in ("face", "neck"):
        skin[template.regions[region]] = True
    nose_base = rest[template.vertex_groups["nose"], 1].min()
    mouth = rest[lips]
    chin_y = rest[template.vertex_groups["chin"], 1].min()
    front = rest[:, 2] > rest[template.regions["ears"], 2].mean()
    x, y = np.abs(rest[:, 0]), rest[:, 1]
    if kind == "moustache":
        area = skin & ~lips & (y < nose_base) & (y > mouth[:, 1].max() - 0.004) & (x < 0.75 * np.abs(mouth[:, 0]).max())
        thickness = 0.03
    else:
        jaw = skin & ~lips & front & (y < nose_base - 0.01)
        neck = np.isin(np.arange(len(rest)), template.regions["neck"])
        under_chin = neck & (y > chin_y - 0.05) & front
        area = (jaw | under_chin) & ~np.isin(np.arange(len(rest)), template.vertex_groups["nose"])
        thickness = 0.06 if kind == "beard" else 0.008
    return taper(np.where(area, thickness * strength, 0.0), template.faces, area, 4)


def thickness_at(field: HeadField, thickness: np.ndarray, points: Tensor) -> Tensor:
    """[N] the vertices' ``thickness`` [V] blended at world points [N, 3] (Gaussian over the nearest 8)."""
    distance, nearest = cKDTree(field.head_vertices.double().numpy()).query(points.double().numpy(), k=8, workers=-1)
    weights = np.exp(-0.5 * (distance / BLEND_RADIUS) ** 2) + 1e-12
    return torch.from_numpy((weights * thickness[nearest]).sum(1) / weights.sum(1)).float()
