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

    def attributes(self, points):
        normal = points / points.norm(dim=-1, keepdim=True).clamp(min=1e-9)
        if self.albedo is not None:
            return self.albedo.expand(*points.shape[:-1], 3), normal
        return (points * 0.5 + 0.5).clamp(0, 1), normal
