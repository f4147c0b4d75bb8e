"""Lookups into grids and textures: the field's trilinear volume lookups and bilinear image lookups.

``torch.nn.functional.grid_sample`` parallelises over the batch dimension only, so one image or volume
looked up at a million points runs on one core however many threads torch has. ``lookup`` splits the
points into one batch per thread over the same (expanded, not copied) grid: the same values, with every
core busy.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

MIN_POINTS_PER_THREAD = 8192  # below this a split costs more than it saves


def lookup(grid: Tensor, coords: Tensor, **options) -> Tensor:
    """``grid_sample`` of a grid [1, C, (D,) H, W] at coords [M, 2 or 3] in [-1, 1]; returns [C, M].

    ``options`` are grid_sample's (mode, padding_mode, align_corners)."""
    if grid.shape[0] != 1:
        raise ValueError(f"lookup takes one grid (a batch of 1). Got a batch of {grid.shape[0]}.")
    channels, m, dims = grid.shape[1], coords.shape[0], coords.shape[-1]
    parts = max(1, min(torch.get_num_threads(), m // MIN_POINTS_PER_THREAD))
    per = -(-m // parts)
    padded = F.pad(coords, (0, 0, 0, per * parts - m)) if per * parts != m else coords
    shape = (parts, 1, per, dims) if dims == 2 else (parts, 1, 1, per, dims)
    out = F.grid_sample(grid.expand(parts, *grid.shape[1:]), padded.reshape(shape), **options)
    return out.reshape(parts, channels, per).transpose(0, 1).reshape(channels, parts * per)[:, :m]


def sample_image(image: Tensor, uv: Tensor, width: int, height: int, wrap: bool = False) -> Tensor:
    """Bilinear lookup of image [1, C, h, w] at pixel coordinates uv [..., 2] in a width x height frame.

    Returns [..., C]. With ``wrap`` the horizontal axis is periodic (spherical textures).
    """
    flat = uv.reshape(-1, 2)
    u, v = flat[:, 0], flat[:, 1]
    if wrap:
        image = torch.cat([image[..., -1:], image, image[..., :1]], dim=-1)  # periodic seam columns
        u = torch.remainder(u, float(width)) + 1.0
        width = width + 2
    grid = torch.stack([u / width, v / height], -1) * 2.0 - 1.0
    values = lookup(image, grid, align_corners=False, padding_mode="border")
    return values.T.reshape(*uv.shape[:-1], image.shape[1])


def spherical_uv(points: Tensor, centre: Tensor, width: int, height: int) -> Tensor:
    """Pixel coordinates in a width x height equirectangular texture around ``centre``:
    azimuth 0 (facing the camera, +z) in the middle column, elevation +90 degrees at the top row."""
    rel = points - centre
    azimuth = torch.atan2(rel[..., 0], rel[..., 2])
    elevation = torch.atan2(rel[..., 1], torch.sqrt(rel[..., 0] ** 2 + rel[..., 2] ** 2))
    u = (azimuth / (2 * math.pi) + 0.5) * width
    v = (0.5 - elevation / math.pi) * height
    return torch.stack([u, v], -1)
