"""Head geometry: the fitted head model (``face_nerf.head``) with its hair layer, as a signed distance grid.

World frame: origin at the skull centre, +x to the viewer's right, +y up, +z towards the photo's camera;
one unit is the face's height (landmark 10 to 152). The solid is the fitted template (skin, ears, eyes,
neck down to a clean cut, see ``head/solid.py``) grown outwards by the hair layer's thickness:
    sdf(p) = sdf_skin(p) - thickness(p)
where thickness(p) is the hair thickness interpolated at p's nearest skin point (zero off the scalp).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from face_nerf.render import Camera

CAMERA_DISTANCE = 9.0  # input camera to head centre, in face heights (~1.5 m: a long, portrait lens)
OUTER_REGIONS = ("scalp", "face", "ears", "lips", "eyes", "neck")  # what the surface distance is measured to


@dataclass(frozen=True)
class GeometryConfig:
    """How the head is shaped.

    Attributes:
        voxels_per_unit: SDF grid resolution per face height.
        margin: empty space around the head in the grid (face heights).
        neck_cut: the neck ends in a flat cut this far (face heights) above the lowest point of its rim.
    """

    voxels_per_unit: float = 64.0
    margin: float = 0.06
    neck_cut: float = 0.06


@dataclass
class HeadPlacement:
    """The face placed in the world and the camera that took the photo.

    Attributes:
        landmarks: [478, 3] world coordinates.
        camera: the input camera (world frame), at the photo's resolution.
        symmetry_normal: [3] unit normal of the face's symmetry plane (through the origin's x).
        symmetry_offset: plane offset: points p with p . n = offset lie on it.
    """

    landmarks: np.ndarray
    camera: Camera
    symmetry_normal: np.ndarray
    symmetry_offset: float

    def mirror(self, points: np.ndarray) -> np.ndarray:
        """Reflect [..., 3] points across the face's symmetry plane."""
        n = self.symmetry_normal
        return points - 2.0 * ((points @ n) - self.symmetry_offset)[..., None] * n


@dataclass
class HeadGeometry:
    """The head as a signed distance grid.

    Attributes:
        sdf: [D, H, W] float32 signed distance (face heights), indexed [z, y, x].
        bounds: [2, 3] world box the grid spans (voxel centres at its corners).
    """

    sdf: np.ndarray
    bounds: np.ndarray


def build_head(head, hair, config: GeometryConfig = GeometryConfig()) -> HeadGeometry:
    """The closed head SDF of a fitted head and its hair layer.

    Args:
        head: ``face_nerf.head.place.PlacedHead``.
        hair: ``face_nerf.appearance.hair.HairLayer`` (thickness per template vertex).
        config: grid options.
    """
    from face_nerf.head.solid import BAND_VOXELS, grid_axes, mesh_sdf

    template = head.fit.template
    step = 1.0 / config.voxels_per_unit
    grown = head.vertices + head.normals * hair.thickness[:, None]
    lo = np.minimum(head.vertices.min(0), grown.min(0)) - config.margin
    hi = np.maximum(head.vertices.max(0), grown.max(0)) + config.margin
    counts, hi = grid_axes(np.stack([lo, hi]), step)
    shell = template.faces[head.region_mask(*OUTER_REGIONS)[template.faces].all(1)]
    band = max(BAND_VOXELS, float(hair.thickness.max()) / step + 3)  # smooth distances out to the hair's surface
    sdf = mesh_sdf(head.vertices, template.faces, head.normals, shell, lo, counts, step, band, hair.thickness)
    sdf = np.maximum(sdf, neck_cut(head, lo, counts, step, config.neck_cut))
    return HeadGeometry(sdf.astype(np.float32), np.stack([lo, hi]).astype(np.float32))


def neck_cut(head, lower: np.ndarray, counts: np.ndarray, step: float, above: float) -> np.ndarray:
    """[D, H, W] signed distance to the half-space above a plane across the neck, square to the head's up
    axis, ``above`` face heights over the lowest point of the mesh's open rim: the neck ends cleanly."""
    faces = head.fit.template.faces
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, uses = np.unique(edges, axis=0, return_counts=True)
    rim = np.unique(unique[uses == 1])
    rim = rim[head.region_mask("neck")[rim]]
    up = head.fit.rotation[:, 1]
    level = float((head.vertices[rim] @ up).min()) + above if len(rim) else float((head.vertices @ up).min())
    axes = [lower[i] + np.arange(counts[i]) * step for i in range(3)]
    return (level - (axes[0][None, None, :] * up[0] + axes[1][None, :, None] * up[1] + axes[2][:, None, None] * up[2])).astype(np.float32)
