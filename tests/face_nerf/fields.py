"""Analytic radiance fields for tests."""

from __future__ import annotations

import torch


class SphereField:
    """A sphere with exact normals; its albedo encodes position, or is one colour when ``albedo`` is given."""

    def __init__(self, radius: float = 0.5, beta: float = 0.01, albedo: tuple[float, float, float] | None = None):
        self.radius, self.beta = radius, beta
        self.albedo = None if albedo is None else torch.tensor(albedo)
        self.bounds = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])

    def sdf(self, points):
        return points.norm(dim=-1) - self.radius

    def attributes(self, points, view_dirs=None):
        normal = points / points.norm(dim=-1, keepdim=True).clamp(min=1e-9)
        if self.albedo is not None:
            return self.albedo.expand(*points.shape[:-1], 3), normal
        return (points * 0.5 + 0.5).clamp(0, 1), normal


def sphere_head_field(radius: float = 0.5, cells: int = 40):
    """A ``HeadField`` whose SDF grid holds a sphere at the origin in the box [-1, 1]^3 (a grey photo, no
    regions): for tests of grid operations that need no face."""
    from face_nerf.field import HeadField, surface_grid
    from face_nerf.lighting import ambient_light
    from face_nerf.render import Camera, look_at

    axis = torch.linspace(-1.0, 1.0, cells + 1)
    zz, yy, xx = torch.meshgrid(axis, axis, axis, indexing="ij")
    sdf = torch.stack([xx, yy, zz], -1).norm(dim=-1) - radius
    step = 2.0 / cells
    camera = Camera(look_at(torch.tensor([0.0, 0.0, 3.0]), torch.zeros(3)), 64.0, 64.0, 32.0, 32.0, 64, 64)
    return HeadField(sdf[None, None], surface_grid(sdf, torch.ones_like(sdf), step),
                     torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]), step, torch.full((1, 3, 64, 64), 0.5),
                     camera, torch.full((1, 3, 16, 32), 0.5), torch.zeros(3), ambient_light(torch.ones(3), 1.0))
