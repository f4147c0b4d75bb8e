"""Where edits land: the field's albedo textures with their semantic regions, and its geometry.

Albedo edits change the two textures the field's albedo comes from, the photo texture (stored as
albedo x the photo's shading) and the spherical fill texture, so every view of the field agrees.
Geometry edits move the signed distance grid, and the photo texture and its labels with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from torch import Tensor

from face_nerf.field import HeadField, fill_surface_points, input_view_low
from face_nerf.lighting import LUMA, irradiance
from face_nerf.regions import REGION_ID


@dataclass
class EditCanvas:
    """A field being edited.

    Attributes:
        field: the field (a copy; its tensors are replaced as edits land).
        photo_albedo: [3, h, w] albedo of the photo texels (linear RGB).
        photo_shading: [3, h, w] the photo's shading there (photo = albedo x shading).
        fill_albedo: [3, fh, fw] the fill texture.
        fill_labels: [fh, fw] uint8 region of each fill texel.
        photo_points: [h, w, 3] surface point seen at each photo texel (for 3D patterns).
        fill_points: [fh, fw, 3] surface point of each fill texel.
    """

    field: HeadField
    photo_albedo: Tensor
    photo_shading: Tensor
    fill_albedo: Tensor
    fill_labels: Tensor
    photo_points: Tensor
    fill_points: Tensor

    @classmethod
    def open(cls, field: HeadField) -> "EditCanvas":
        """Prepare a copy of ``field`` for editing."""
        if field.photo_labels is None or field.region_grid is None or field.landmarks is None:
            raise ValueError("This field has no semantic regions (made before edits existed); reconstruct it again.")
        field = _copy(field)
        shading, points = _photo_shading_and_points(field)
        fh, fw = field.fill.shape[-2:]
        fill_points, _ = fill_surface_points(field)
        fill_labels = _region_at(field, fill_points).reshape(fh, fw)
        return cls(field, field.photo[0] / shading, shading, field.fill[0].clone(), fill_labels, points,
                   fill_points.reshape(fh, fw, 3))

    def weights(self, regions: tuple[str, ...], blur: float = 1.0) -> tuple[Tensor, Tensor]:
        """Soft masks [h, w] and [fh, fw] of the union of ``regions`` (``blur`` in photo pixels at 512 px)."""
        ids = [REGION_ID[r] for r in regions]
        scale = self.photo_albedo.shape[-1] / 512.0
        masks = []
        for labels, sigma in ((self.field.photo_labels, blur * scale), (self.fill_labels, blur * 0.5)):
            hard = np.isin(labels.numpy(), ids).astype(np.float32)
            masks.append(torch.from_numpy(gaussian_filter(hard, sigma) if sigma > 0.3 else hard))
        return masks[0], masks[1]

    def paint(self, regions: tuple[str, ...], change, strength: float = 1.0, blur: float = 1.0) -> None:
        """albedo <- lerp(albedo, change(albedo, points), strength x region weight), on both textures.

        ``change`` maps albedo [3, ...] and surface points [..., 3] to new albedo [3, ...].
        """
        w_photo, w_fill = self.weights(regions, blur)
        for name, weight, points in (("photo_albedo", w_photo, self.photo_points), ("fill_albedo", w_fill, self.fill_points)):
            albedo = getattr(self, name)
            amount = (weight * strength).clamp(0.0, 1.0)[None]
            if amount.max() <= 0:
                continue
            setattr(self, name, albedo + amount * (change(albedo, points).clamp(0.0, 1.0) - albedo))

    def mean_albedo(self, regions: tuple[str, ...]) -> Tensor:
        """[3] mean albedo of the photo texels of ``regions`` (or of the fill when the photo has none)."""
        w_photo, w_fill = self.weights(regions, blur=0.0)
        for albedo, w in ((self.photo_albedo, w_photo), (self.fill_albedo, w_fill)):
            if w.sum() > 0:
                return (albedo * w).sum((1, 2)) / w.sum()
        return torch.full((3,), 0.5)

    def close(self) -> HeadField:
        """The edited field."""
        self.field.photo = (self.photo_albedo * self.photo_shading)[None]
        self.field.fill = self.fill_albedo[None]
        return self.field


def luminance(albedo: Tensor) -> Tensor:
    """[3, ...] -> [1, ...] linear luminance."""
    return torch.einsum("c...,c->...", albedo, LUMA)[None]


def recolour(target: Tensor, reference_luminance: float, detail: float = 1.0):
    """A change that gives the albedo the colour ``target`` [3] (linear), keeping its light/dark detail
    relative to ``reference_luminance`` (the region's mean) to the power ``detail``."""
    def change(albedo: Tensor, points: Tensor) -> Tensor:
        relative = (luminance(albedo) / max(reference_luminance, 1e-4)).clamp(0.0, 3.0) ** detail
        return target.view(3, *[1] * (albedo.dim() - 1)) * relative
    return change


def value_noise(points: Tensor, scale: float, seed: int, octaves: int = 3) -> Tensor:
    """Smooth 3D noise in [0, 1] at points [..., 3] (``scale`` = features per world unit): the same
    texture on every view because it lives on the surface, not on the images."""
    gen = torch.Generator().manual_seed(seed)
    total, norm = torch.zeros(points.shape[:-1]), 0.0
    for octave in range(octaves):
        freq, amp = scale * 2 ** octave, 0.5 ** octave
        lattice = torch.rand(1, 1, 24, 24, 24, generator=gen)
        coords = torch.remainder(points * freq / 24.0, 1.0) * 2 - 1
        total = total + amp * F.grid_sample(lattice, coords.reshape(1, 1, 1, -1, 3), align_corners=False,
                                            padding_mode="reflection").reshape(points.shape[:-1])
        norm += amp
    return total / norm


# --- geometry -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Handle:
    """A smooth local move of the head: points near ``centre`` shift by ``offset`` (Gaussian falloff)."""

    centre: tuple[float, float, float]
    offset: tuple[float, float, float]
    radius: float


def handle_displacement(handles: list[Handle]):
    """A displacement [..., 3] -> [..., 3]: the sum of the handles' Gaussian-weighted offsets."""
    def displacement(points: Tensor) -> Tensor:
        total = torch.zeros_like(points)
        for h in handles:
            d2 = ((points - torch.tensor(h.centre)) ** 2).sum(-1, keepdim=True)
            total = total + torch.exp(-0.5 * d2 / h.radius ** 2) * torch.tensor(h.offset)
        return total
    return displacement


def deform(canvas: EditCanvas, displacement) -> None:
    """Move the head's surface by ``displacement`` (world points [..., 3] -> offsets [..., 3], e.g.
    ``handle_displacement(handles)`` or ``anatomy.model_displacement``): the SDF, normals, visibility and
    region grids are resampled at x - d(x), and the photo texture and labels at the matching image
    positions."""
    field = canvas.field
    d, h, w = field.sdf_grid.shape[-3:]
    points = field.voxel_points()
    source = points - displacement(points)
    coords = field._grid_coords(source.reshape(-1, 3))
    new_sdf = F.grid_sample(field.sdf_grid, coords, align_corners=True, padding_mode="border").reshape(d, h, w)
    visibility = F.grid_sample(field.surface_grid[:, 3:], coords, align_corners=True, padding_mode="border").reshape(d, h, w)
    regions = F.grid_sample(field.region_grid[None, None].float(), coords, mode="nearest", align_corners=True,
                            padding_mode="border").reshape(d, h, w).to(torch.uint8)
    field.set_sdf(new_sdf, visibility)
    field.region_grid = regions
    if field.head_vertices is not None:  # the head model moves with its surface (for later edits)
        field.head_vertices = field.head_vertices + displacement(field.head_vertices)
    if field.overlay_grid is not None:
        overlay = F.grid_sample(field.full_overlay(), coords, align_corners=True, padding_mode="border")
        field.set_overlay(overlay.reshape(1, 4, d, h, w))
    # The photo texture moves with the surface it shows: sample it where each texel's point came from.
    seen = canvas.photo_points
    shift = displacement(seen)
    moved_from = seen - shift
    still = (shift.abs().amax(-1) == 0)[None]  # texels the move does not reach keep their values exactly
    uv = field.camera.project(moved_from.reshape(-1, 3))[0]
    tex_h, tex_w = canvas.photo_albedo.shape[-2:]
    scale = torch.tensor([tex_w / field.camera.width, tex_h / field.camera.height])
    grid = (uv * scale / torch.tensor([tex_w, tex_h]) * 2 - 1).reshape(1, tex_h, tex_w, 2)
    moved = F.grid_sample(canvas.photo_albedo[None], grid, align_corners=False, padding_mode="border")[0]
    canvas.photo_albedo = torch.where(still, canvas.photo_albedo, moved)
    labels = F.grid_sample(field.photo_labels[None, None].float(), grid, mode="nearest", align_corners=False,
                           padding_mode="border")[0, 0]
    field.photo_labels = torch.where(still[0], field.photo_labels, labels.to(torch.uint8))


def add_object(field: HeadField, object_fn, box: Tensor) -> None:
    """Union an object with the head field (in place): ``object_fn(points [N, 3])`` gives its signed distance [N] and
    albedo [N, 3] (linear), which the field's overlay grid keeps.

    The object must lie inside the world box ``box`` [2, 3], so the distance to the box is a lower
    bound of the distance to the object, like ``object_fn`` itself (a union or intersection of exact
    distances is only a bound); the larger of the two is used. Where the box is farther than both the
    head and the overlay's reach, that is the box distance and the head's surface wins, so only the
    other voxels are evaluated.
    """
    sdf = field.sdf_grid[0, 0]
    step = field.voxel_size
    points = field.voxel_points()
    to_box = _box_distance(points, box)
    reach = 6 * step  # coverage reaches 4 voxels, and trilinear lookups one more
    todo = to_box < torch.maximum(sdf, torch.full_like(sdf, reach))
    obj = to_box.clone()
    colour = torch.zeros(*sdf.shape, 3)
    inner, colour[todo] = object_fn(points[todo])
    obj[todo] = torch.where(to_box[todo] > 0, torch.maximum(inner, to_box[todo]), inner)  # inside: signed
    field.set_sdf(torch.minimum(sdf, obj), torch.where(obj < sdf, torch.zeros_like(sdf), field.surface_grid[0, 3]))
    coverage = torch.sigmoid((sdf - obj) / step * 2.0) * (obj < 4 * step)
    layer = torch.cat([colour.permute(3, 0, 1, 2), coverage[None]])[None]
    keep = field.full_overlay()
    field.set_overlay(layer if keep is None else torch.where(layer[:, 3:] > keep[:, 3:], layer, keep))


def _box_distance(points: Tensor, box: Tensor) -> Tensor:
    """[..., 3] -> [...] Euclidean distance to the box [2, 3] (0 inside)."""
    outside = torch.maximum(box[0] - points, points - box[1]).clamp(min=0)
    return outside.norm(dim=-1)


def _copy(field: HeadField) -> HeadField:
    from dataclasses import fields as dataclass_fields

    values = {}
    for f in dataclass_fields(field):
        v = getattr(field, f.name)
        values[f.name] = v.clone() if isinstance(v, Tensor) else v
    return HeadField(**values)


def _photo_shading_and_points(field: HeadField, max_side: int = 384) -> tuple[Tensor, Tensor]:
    """The photo's shading [3, h, w] at each photo texel and the surface point it shows [h, w, 3]."""
    out, low = input_view_low(field, max_side)
    alpha = out.alpha.clamp(min=1e-6)
    origins, dirs = low.rays()
    depth = torch.where(out.alpha > 0.5, out.depth / alpha, torch.full_like(out.depth, 1e3))
    points = origins.reshape(low.height, low.width, 3) + dirs.reshape(low.height, low.width, 3) * depth
    normal = F.normalize(out.normal, dim=-1)
    shading = irradiance(normal, field.photo_light).clamp(min=field.irradiance_floor)
    shading = torch.where(out.alpha > 0.5, shading, torch.ones_like(shading))
    h, w = field.photo.shape[-2:]
    up = lambda t: F.interpolate(t.permute(2, 0, 1)[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return up(shading), up(points).permute(1, 2, 0)


def _region_at(field: HeadField, points: Tensor) -> Tensor:
    """uint8 region label [N] of the nearest voxel to each point."""
    grid = field.region_grid[None, None].float()
    return F.grid_sample(grid, field._grid_coords(points), mode="nearest", align_corners=True,
                         padding_mode="border").reshape(-1).to(torch.uint8)
