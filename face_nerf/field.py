"""The face radiance field: density from a signed distance grid, albedo from the photo, normals from the
density gradient; how it is built from a photo, saved and loaded.

Albedo (linear RGB) at a point p is the photo divided by the photo's own shading where the input camera
sees p, and a spherical fill texture elsewhere:
    albedo(p) = v(p) * photo(project(p)) / E_photo(n(p)) + (1 - v(p)) * fill(direction of p from the head centre)
where v in [0, 1] is the input camera's visibility of p (depth test, facing, inside the person mask) and
E_photo the irradiance of the SH light estimated from the photo (``delight.py``), so that shading the
albedo with that light gives the photo back.
The fill texture holds the mirror image of what the camera saw across the face's symmetry plane
(cheek sides, ear regions) and, where neither side was seen (the back of the head, behind the ears,
under the chin), the person's own skin and hair completed on the fitted head model
(``appearance/completion.py``): never colours pulled in from the photo's background.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from face_nerf.delight import DelightConfig, Delighting, delight_photo
from face_nerf.appearance.completion import CompletionConfig
from face_nerf.appearance.hair import HairLayer
from face_nerf.geometry import HeadGeometry, HeadPlacement
from face_nerf.head.place import PlacedHead
from face_nerf.lighting import ambient_light, irradiance, srgb_to_linear
from face_nerf.regions import head_region_grid, photo_region_labels
from face_nerf.render import (BOX_TOLERANCE, Camera, GridAppearance, MarchSettings, RenderOutput, SdfVolume,
                              render_image)
from face_nerf.sampling import lookup, sample_image, spherical_uv

FIELD_FORMAT = "facelab-head-field/2"
PHOTO_STRETCH = (2.0, 4.0)  # the photo is used fully up to this stretch, not at all beyond (``photo_trust``)
OPTIONAL_TENSORS = ("landmarks", "photo_labels", "region_grid", "overlay_grid", "overlay_bounds", "head_vertices",
                    "head_axes")  # saved when present


@dataclass(frozen=True)
class AppearanceConfig:
    """How the photo becomes albedo.

    Attributes:
        fill_width, fill_height: spherical fill texture size (azimuth x elevation texels).
        depth_tolerance: a point is fully visible up to this far (in voxels) behind the first surface the
            camera sees (whose depth comes from a low-resolution render), and not at all from twice as far.
        facing_from, facing_to: visibility ramps from 0 to 1 as cos(normal, view) goes between these.
        max_texture_side: the photo is kept at most this large as the albedo texture.
        beta_voxels: density length scale in voxels (sharpness of the surface).
        delight: how the photo's light is estimated and taken out of the albedo.
        completion: how unseen skin and hair are made.
        seen_from, seen_to: the fill holds the (mirrored) photo fully above the second visibility, the
            completed albedo below the first, and blends them in between (a soft seam).
    """

    fill_width: int = 384
    fill_height: int = 192
    depth_tolerance: float = 3.0
    facing_from: float = 0.0
    facing_to: float = 0.2
    max_texture_side: int = 2048
    beta_voxels: float = 0.5
    delight: DelightConfig = DelightConfig()
    completion: CompletionConfig = CompletionConfig()
    seen_from: float = 0.35
    seen_to: float = 0.8


@dataclass
class HeadField:
    """A head radiance field (implements ``render.RadianceField``).

    Attributes:
        sdf_grid: [1, 1, D, H, W] signed distance, world box ``bounds`` (align_corners convention).
        surface_grid: [1, 4, D, H, W] unit normal (3) and input-camera visibility (1).
        bounds: [2, 3] world box.
        beta: density length scale (world units).
        photo: [1, 3, h, w] the photo in linear RGB, its highlights and cast shadows corrected.
        camera: the input camera at the photo's resolution.
        fill: [1, 3, fill_height, fill_width] spherical fill texture of albedo (linear RGB).
        fill_centre: [3] centre of the spherical parametrisation.
        photo_light: [9, 3] the SH light estimated from the photo (world frame).
        irradiance_floor: the photo is divided by max(E_photo, floor).
        landmarks: [478, 3] world landmarks (for edits).
        photo_labels: [h, w] uint8 semantic region of each photo texel (``regions.REGIONS``).
        region_grid: [D, H, W] uint8 semantic region of each voxel near the surface (0 elsewhere).
        overlay_grid: [1, 4, d, h, w] albedo (3) and its coverage (1) of added objects (glasses), or None;
            it covers only the sub-box ``overlay_bounds`` of the grid's lattice, so lookups skip the rest.
        overlay_bounds: [2, 3] world box of ``overlay_grid`` (voxel centres of the main grid).
        head_vertices: [V, 3] the fitted head model's vertices in the world (for anatomical edits), or None.
        head_axes: [3, 3] maps the head model's offsets (template frame, metres) to world offsets, or None.
    """

    sdf_grid: Tensor
    surface_grid: Tensor
    bounds: Tensor
    beta: float
    photo: Tensor
    camera: Camera
    fill: Tensor
    fill_centre: Tensor
    photo_light: Tensor
    irradiance_floor: float = 0.2
    landmarks: Tensor | None = None
    photo_labels: Tensor | None = None
    region_grid: Tensor | None = None
    overlay_grid: Tensor | None = None
    overlay_bounds: Tensor | None = None
    head_vertices: Tensor | None = None
    head_axes: Tensor | None = None

    @property
    def voxel_size(self) -> float:
        """Edge length of one grid cell (world units)."""
        return float((self.bounds[1, 0] - self.bounds[0, 0]) / (self.sdf_grid.shape[-1] - 1))

    def voxel_points(self) -> Tensor:
        """[D, H, W, 3] world position of every grid voxel."""
        d, h, w = self.sdf_grid.shape[-3:]
        lo, hi = self.bounds
        axes = [torch.linspace(float(lo[i]), float(hi[i]), n) for i, n in ((2, d), (1, h), (0, w))]
        zz, yy, xx = torch.meshgrid(*axes, indexing="ij")
        return torch.stack([xx, yy, zz], -1)

    def set_sdf(self, sdf: Tensor, visibility: Tensor) -> None:
        """Replace the signed distance grid [D, H, W]; normals follow from its gradient."""
        self.sdf_grid = sdf[None, None]
        self.surface_grid = surface_grid(sdf, visibility, self.voxel_size)

    def to(self, device: str | torch.device) -> "HeadField":
        """A copy with every tensor (and the camera) on ``device``."""
        from dataclasses import fields, replace

        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self) if isinstance(getattr(self, f.name), Tensor)}
        camera = replace(self.camera, c2w=self.camera.c2w.to(device))
        return replace(self, **moved, camera=camera)

    def _grid_coords(self, points: Tensor) -> Tensor:
        """World points [..., 3] -> grid_sample coordinates [1, 1, 1, M, 3] in [-1, 1] inside the box."""
        scale = 2.0 / (self.bounds[1] - self.bounds[0])
        return torch.addcmul(-1.0 - self.bounds[0] * scale, points, scale).reshape(1, 1, 1, -1, 3)

    def sdf_volume(self) -> SdfVolume:
        """The distance as a grid, for the compiled marcher: what ``sdf`` looks up."""
        return SdfVolume(self.sdf_grid[0, 0], self.bounds, self.voxel_size)

    def grid_appearance(self) -> GridAppearance:
        """What ``attributes`` looks up, for the compiled renderer (``march_colour.march_surface``)."""
        def last(grid: Tensor) -> Tensor:  # [1, C, ...] -> [..., C]
            return grid[0].movedim(0, -1).contiguous()

        overlay = None if self.overlay_grid is None else last(self.overlay_grid)
        return GridAppearance(last(self.surface_grid), last(self.photo), self.camera, self.photo_light,
                              self.irradiance_floor, PHOTO_STRETCH, last(self.fill), self.fill_centre, overlay,
                              self.overlay_bounds)

    def sdf(self, points: Tensor) -> Tensor:
        """[..., 3] -> [...] signed distance (positive outside the box)."""
        coords = self._grid_coords(points).reshape(-1, 3)
        values = lookup(self.sdf_grid, coords, align_corners=True, padding_mode="border").reshape(points.shape[:-1])
        outside = (coords.abs().amax(-1) > 1.0 + BOX_TOLERANCE).reshape(points.shape[:-1])
        return torch.where(outside, values.abs() + self.voxel_size, values)

    def surface(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """[..., 3] -> (unit normal [..., 3] from the SDF gradient, visibility [...])."""
        values = lookup(self.surface_grid, self._grid_coords(points).reshape(-1, 3), align_corners=True,
                        padding_mode="border")
        normal = values[:3] * torch.rsqrt((values[:3] ** 2).sum(0).clamp(min=1e-12))
        shape = points.shape[:-1]
        return normal.T.reshape(*shape, 3), values[3].clamp(0.0, 1.0).reshape(shape)

    def photo_trust(self, points: Tensor, normal: Tensor, view_dirs: Tensor) -> Tensor:
        """[...] in [0, 1]: how far the photo can be trusted at surface points seen along unit ``view_dirs``
        [..., 3] (from the eye to the point; ``normal`` [..., 3] unit too).

        A surface the photo sees at a slant holds few photo pixels; seen squarely from another side, those
        pixels would be stretched into streaks. The stretch is the ratio of the surface's foreshortening
        in the view to that in the photo (1 in the photo's own view, so the input view is the photo);
        trust falls from 1 to 0 as it goes from ``PHOTO_STRETCH[0]`` to ``PHOTO_STRETCH[1]``, and the
        fill (mirrored photo or completed skin) takes over: view-dependent texture blending.
        """
        to_camera = self.camera.c2w[:3, 3] - points
        seen_in_photo = (normal * to_camera).sum(-1) * torch.rsqrt((to_camera * to_camera).sum(-1).clamp(min=1e-12))
        seen_here = -(normal * view_dirs).sum(-1)
        stretch = seen_here / seen_in_photo.clamp(min=1e-3)
        low, high = PHOTO_STRETCH
        return ((high - stretch) / (high - low)).clamp(0.0, 1.0)

    def photo_colour(self, points: Tensor) -> Tensor:
        """[..., 3] -> [..., 3]: the photo's colour where the input camera projects each point."""
        return sample_image(self.photo, self.camera.project(points)[0], self.camera.width, self.camera.height)

    def photo_albedo(self, points: Tensor, normal: Tensor) -> Tensor:
        """[..., 3] -> [..., 3]: the photo's colour at each point divided by the photo's shading there."""
        shading = irradiance(normal, self.photo_light).clamp(min=self.irradiance_floor)
        return self.photo_colour(points) / shading

    def attributes(self, points: Tensor, view_dirs: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """[..., 3] -> (albedo [..., 3] in linear RGB, unit normal [..., 3]). Seen along ``view_dirs``
        [..., 3], the photo gives way to the fill where it would be stretched (``photo_trust``)."""
        normal, visible = self.surface(points)
        if view_dirs is not None:
            visible = visible * self.photo_trust(points, normal, view_dirs)
        seen = self.photo_albedo(points, normal)
        unseen = sample_image(self.fill, spherical_uv(points, self.fill_centre, self.fill.shape[-1], self.fill.shape[-2]),
                              self.fill.shape[-1], self.fill.shape[-2], wrap=True)
        albedo = visible[..., None] * seen + (1.0 - visible[..., None]) * unseen
        if self.overlay_grid is not None:
            albedo = self._overlay(points, albedo)
        return albedo, normal

    def _overlay(self, points: Tensor, albedo: Tensor) -> Tensor:
        """Blend the added objects' albedo over ``albedo`` [..., 3] at ``points`` [..., 3]."""
        lo, hi = self.overlay_bounds
        flat, out = points.reshape(-1, 3), albedo.reshape(-1, 3).clone()
        inside = torch.nonzero(((flat >= lo) & (flat <= hi)).all(-1)).squeeze(-1)
        scale = 2.0 / (hi - lo).clamp(min=1e-9)
        coords = torch.addcmul(-1.0 - lo * scale, flat[inside], scale)
        over = lookup(self.overlay_grid, coords, align_corners=True).T
        base = out[inside]
        out[inside] = base + over[:, 3:].clamp(0.0, 1.0) * (over[:, :3] - base)
        return out.reshape(albedo.shape)

    def full_overlay(self) -> Tensor | None:
        """The overlay on the whole grid [1, 4, D, H, W] (zero coverage outside its box), or None."""
        if self.overlay_grid is None:
            return None
        start = self._lattice_index(self.overlay_bounds[0])
        full = torch.zeros(1, 4, *self.sdf_grid.shape[-3:])
        d, h, w = self.overlay_grid.shape[-3:]
        full[..., start[2]:start[2] + d, start[1]:start[1] + h, start[0]:start[0] + w] = self.overlay_grid
        return full

    def set_overlay(self, layer: Tensor | None) -> None:
        """Keep the overlay [1, 4, D, H, W] cropped to its covered voxels and one voxel around them."""
        covered = torch.nonzero(layer[0, 3] > 0) if layer is not None else torch.empty(0, 3)
        if covered.shape[0] == 0:
            self.overlay_grid = self.overlay_bounds = None
            return
        dims = torch.tensor(self.sdf_grid.shape[-3:])
        first = (covered.amin(0) - 1).clamp(min=0)
        last = torch.minimum(covered.amax(0) + 1, dims - 1)
        (z0, y0, x0), (z1, y1, x1) = first.tolist(), last.tolist()
        self.overlay_grid = layer[..., z0:z1 + 1, y0:y1 + 1, x0:x1 + 1].contiguous()
        lo, step = self.bounds[0], self._lattice_step()
        self.overlay_bounds = torch.stack([lo + first.flip(0) * step, lo + last.flip(0) * step])

    def _lattice_step(self) -> Tensor:
        """[3] voxel spacing along x, y, z."""
        d, h, w = self.sdf_grid.shape[-3:]
        return (self.bounds[1] - self.bounds[0]) / torch.tensor([w - 1, h - 1, d - 1])

    def _lattice_index(self, point: Tensor) -> list[int]:
        """Integer (x, y, z) voxel index of a lattice point [3]."""
        return torch.round((point - self.bounds[0]) / self._lattice_step()).long().tolist()

    def save(self, path: str | Path) -> None:
        """Write the field to a safetensors file."""
        from safetensors.torch import save_file

        cam = self.camera
        tensors = {
            "sdf_grid": self.sdf_grid, "surface_grid": self.surface_grid, "bounds": self.bounds,
            "photo": self.photo, "fill": self.fill, "fill_centre": self.fill_centre, "camera_c2w": cam.c2w,
            "photo_light": self.photo_light,
        }
        for name in OPTIONAL_TENSORS:
            if getattr(self, name) is not None:
                tensors[name] = getattr(self, name)
        meta = {"format": FIELD_FORMAT, "beta": self.beta, "irradiance_floor": self.irradiance_floor,
                "camera": [cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height]}
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"facelab": json.dumps(meta)})

    @classmethod
    def load(cls, path: str | Path) -> "HeadField":
        """Read a field written by ``save``."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {}).get("facelab", "{}"))
            if meta.get("format") != FIELD_FORMAT:
                raise ValueError(f"{path} is not a FaceLab head field (format {meta.get('format')!r}, expected {FIELD_FORMAT!r}).")
            t = {k: handle.get_tensor(k) for k in handle.keys()}
        fx, fy, cx, cy, w, h = meta["camera"]
        camera = Camera(t["camera_c2w"], fx, fy, cx, cy, int(w), int(h))
        return cls(t["sdf_grid"], t["surface_grid"], t["bounds"], float(meta["beta"]), t["photo"], camera, t["fill"],
                   t["fill_centre"], t["photo_light"], float(meta["irradiance_floor"]),
                   **{name: t.get(name) for name in OPTIONAL_TENSORS})


def build_field(photo_rgb: np.ndarray, person_mask: np.ndarray, head: PlacedHead, hair: HairLayer,
                geometry: HeadGeometry, config: AppearanceConfig = AppearanceConfig()) -> tuple[HeadField, Delighting | None]:
    """Assemble the radiance field from the photo, its person mask, the fitted head, its hair and geometry.

    Returns the field and how its light was taken out (None when ``config.delight`` is disabled).
    """
    from face_nerf.appearance.unseen import fill_texture

    placement = head.placement
    sdf_grid = torch.from_numpy(geometry.sdf)[None, None]
    bounds = torch.from_numpy(geometry.bounds)
    step = float((bounds[1, 0] - bounds[0, 0]) / (sdf_grid.shape[-1] - 1))
    photo = srgb_to_linear(_photo_texture(photo_rgb, config.max_texture_side))
    camera = placement.camera
    blank = torch.zeros(1, 3, config.fill_height, config.fill_width)
    centre = torch.tensor([0.0, float(placement.landmarks[168, 1]), 0.0])
    unit_light = ambient_light(torch.ones(3), 1.0)  # E = 1 everywhere until the photo's light is known
    field = HeadField(sdf_grid, surface_grid(sdf_grid[0, 0], torch.zeros_like(sdf_grid[0, 0]), step), bounds,
                      config.beta_voxels * step, photo, camera, blank, centre, unit_light,
                      config.delight.irradiance_floor)
    mask = torch.from_numpy(np.ascontiguousarray(person_mask, dtype=np.float32))[None, None]
    view, low = input_view_low(field)
    field.surface_grid[0, 3] = _visibility_grid(field, mask, view, low, config)
    delighting = None
    landmarks_px = camera.project(torch.from_numpy(placement.landmarks.astype(np.float32)))[0].numpy()
    if config.delight.enabled:
        delighting = delight_photo(photo, view, low, person_mask, landmarks_px, config.delight)
        field.photo = photo * delighting.correction
        field.photo_light = delighting.estimate.light
    field.fill = fill_texture(field, head, hair, config)
    field.head_vertices = torch.from_numpy(head.vertices.copy())
    field.head_axes = torch.from_numpy((head.fit.rotation / head.metres_per_unit).astype(np.float32))
    _add_regions(field, photo_rgb, person_mask, head, hair, landmarks_px)
    return field, delighting


def _add_regions(field: HeadField, photo_rgb: np.ndarray, person_mask: np.ndarray, head: PlacedHead, hair: HairLayer,
                 landmarks_px: np.ndarray) -> None:
    """Semantic regions: per photo texel and per voxel near the surface (see ``regions.py``); where
    neither the photo nor its mirror image shows a voxel, the head model's region of its nearest vertex."""
    from face_nerf.appearance.unseen import model_regions

    placement = head.placement
    labels = photo_region_labels(landmarks_px, person_mask, photo_rgb)
    field.landmarks = torch.from_numpy(placement.landmarks.astype(np.float32))
    field.region_grid = head_region_grid(labels, field.sdf_grid[0, 0], field.surface_grid[0], field.bounds,
                                         field.camera, placement.mirror, placement.landmarks,
                                         unseen=lambda points: model_regions(head, hair, points))
    h, w = field.photo.shape[-2:]
    labels_t = torch.from_numpy(labels)[None, None].float()
    field.photo_labels = F.interpolate(labels_t, size=(h, w), mode="nearest")[0, 0].to(torch.uint8)


def _photo_texture(rgb: np.ndarray, max_side: int) -> Tensor:
    photo = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    h, w = photo.shape[-2:]
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        photo = F.interpolate(photo, size=(round(h * scale), round(w * scale)), mode="area")
    return photo


def surface_grid(sdf: Tensor, visibility: Tensor, step: float) -> Tensor:
    """[1, 4, D, H, W]: unit normals from the gradient of the SDF grid [D, H, W], and visibility."""
    gz, gy, gx = torch.gradient(sdf, spacing=step)
    grad = torch.stack([gx, gy, gz])
    # rsqrt of the summed squares, not F.normalize: a norm over the leading dim is ~40x slower on CPU.
    normal = grad * torch.rsqrt((grad * grad).sum(0).clamp(min=1e-24))
    return torch.cat([normal, visibility[None]])[None]


def input_view_low(field: HeadField, max_side: int = 384) -> tuple[RenderOutput, Camera]:
    """The input view at a low resolution (for depth, normals and coverage) and its camera."""
    camera = field.camera
    low = camera.scaled(min(1.0, max_side / max(camera.width, camera.height)))
    return render_image(field, low, MarchSettings(band_samples=8)), low


def _distance_map(view: RenderOutput) -> Tensor:
    """Distance from the camera to the first surface per pixel (far away where nothing is hit)."""
    alpha = view.alpha[..., 0]
    return torch.where(alpha > 0.5, view.depth[..., 0] / alpha.clamp(min=1e-6), torch.full_like(alpha, 1e9))


def _visibility(field: HeadField, points: Tensor, normals: Tensor, mask: Tensor, distance: Tensor,
                low: Camera, config: AppearanceConfig) -> Tensor:
    """How well the input camera sees each point: depth test x facing x person mask x inside the photo."""
    cam_pos = field.camera.c2w[:3, 3]
    uv, _ = low.project(points)
    to_cam = cam_pos - points
    dist = to_cam.norm(dim=-1)
    first = sample_image(distance[None, None], uv, low.width, low.height)[..., 0]
    tol = config.depth_tolerance * field.voxel_size
    depth_ok = ((first + 2.0 * tol - dist) / tol).clamp(0.0, 1.0)  # the first surface itself fully, by a margin
    facing = ((normals * to_cam).sum(-1) / dist - config.facing_from) / (config.facing_to - config.facing_from)
    person = ((sample_image(mask, uv, low.width, low.height)[..., 0] - 0.3) / 0.4).clamp(0.0, 1.0)
    inside = ((uv[..., 0] >= 0) & (uv[..., 0] < low.width) & (uv[..., 1] >= 0) & (uv[..., 1] < low.height)).float()
    return depth_ok * facing.clamp(0.0, 1.0) * person * inside


def _visibility_grid(field: HeadField, mask: Tensor, view: RenderOutput, low: Camera, config: AppearanceConfig) -> Tensor:
    """[D, H, W] visibility on voxels near the surface (zero elsewhere: it is only read at the surface)."""
    distance = _distance_map(view)
    sdf = field.sdf_grid[0, 0]
    near = torch.nonzero(sdf.abs() < 4 * field.voxel_size)
    lo, hi = field.bounds
    counts = torch.tensor(sdf.shape[::-1], dtype=torch.float32)  # (W, H, D)
    points = lo + near.flip(-1).float() / (counts - 1) * (hi - lo)
    normals = field.surface_grid[0, :3][:, near[:, 0], near[:, 1], near[:, 2]].T
    # Test the surface point each voxel stands for, not the voxel centre (which may lie inside).
    on_surface = points - sdf[near[:, 0], near[:, 1], near[:, 2]][:, None] * normals
    grid = torch.zeros_like(sdf)
    grid[near[:, 0], near[:, 1], near[:, 2]] = _visibility(field, on_surface, normals, mask, distance, low, config)
    return grid


def fill_surface_points(field: HeadField, samples: int = 48) -> tuple[Tensor, Tensor]:
    """Where each texel of the spherical fill texture lands on the head: points [h * w, 3] (row-major)
    and whether the texel's ray from the centre meets the head at all [h * w]."""
    h, w = field.fill.shape[-2:]
    v, u = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    azimuth = (u / w - 0.5) * 2 * math.pi
    elevation = (0.5 - v / h) * math.pi
    dirs = torch.stack([torch.sin(azimuth) * torch.cos(elevation), torch.sin(elevation),
                        torch.cos(azimuth) * torch.cos(elevation)], -1).reshape(-1, 3)
    reach = float((field.bounds - field.fill_centre).abs().max()) * math.sqrt(3)
    radii = torch.linspace(reach, 0.0, samples)
    points = field.fill_centre + dirs[:, None, :] * radii[None, :, None]
    inside = field.sdf(points) < 0
    first = torch.where(inside.any(1), inside.float().argmax(1), torch.full((dirs.shape[0],), samples - 1))
    # Refine between the last outside and first inside sample with one secant step.
    prev = (first - 1).clamp(min=0)
    p0 = points[torch.arange(len(first)), prev]
    p1 = points[torch.arange(len(first)), first]
    d0, d1 = field.sdf(p0), field.sdf(p1)
    frac = (d0 / (d0 - d1).clamp(min=1e-6)).clamp(0.0, 1.0)[:, None]
    return p0 + frac * (p1 - p0), inside.any(1)
