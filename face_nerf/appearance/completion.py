"""Albedo where the photo does not see the head: the person's own skin and hair, never the background.

Each point takes the region of its nearest template vertex. Skin (face, ears, neck, a bald scalp) gets the
skin albedo estimated from the photo with its light taken out, modulated by a tile of the person's own
skin detail (the cheek's albedo over its blurred self, so it carries texture but no tone or shading). Hair
(the scalp, and the hair layer's volume) gets the hair's albedo modulated by strands: noise stretched
along the elevation of the head's spherical texture, fixed to the head so it stays put as the head turns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree
from torch import Tensor

from face_nerf.appearance.hair import HairLayer
from face_nerf.head.place import PlacedHead

INTERIOR_ALBEDO = (0.12, 0.05, 0.05)  # mouth cavity and eye socket linings


@dataclass(frozen=True)
class CompletionConfig:
    """How unseen albedo is made."""

    strand_contrast: float = 0.22  # relative spread of the hair strands' brightness
    strand_length: float = 6.0  # strand noise correlation along the elevation (texels) ...
    strand_width: float = 0.6  # ... and across it (texels)
    skin_detail_texels: int = 12  # side of the skin-detail tile taken from the cheek (texels)
    skin_detail_limit: float = 0.06  # the detail changes the skin albedo by at most this fraction
    seed: int = 0  # strands and tile offsets


def complete_fill(points: Tensor, shape: tuple[int, int], head: PlacedHead, hair: HairLayer, skin_albedo: Tensor,
                  hair_albedo: Tensor, skin_detail: Tensor | None = None,
                  config: CompletionConfig = CompletionConfig()) -> Tensor:
    """Albedo for every texel of the head's spherical fill texture.

    Args:
        points: [h * w, 3] where each texel lands on the head (row-major, ``field.fill_surface_points``).
        shape: (h, w) of the fill texture.
        head: the fitted head (its vertices carry the regions).
        hair: the hair layer (thickness per vertex; whether there is hair).
        skin_albedo, hair_albedo: [3] linear RGB.
        skin_detail: [t, t] relative skin detail around 1 (``skin_detail_tile``), or None.
        config: strands and detail.

    Returns:
        [1, 3, h, w] linear albedo.
    """
    h, w = shape
    if points.shape != (h * w, 3):
        raise ValueError(f"points must have a shape of ({h * w}, 3). Got {tuple(points.shape)}.")
    rng = np.random.default_rng(config.seed)
    distance, nearest = cKDTree(head.vertices).query(points.numpy().astype(np.float64), k=4, workers=-1)
    weights = 1.0 / np.maximum(distance, 1e-4) ** 2
    thickness = (weights * hair.thickness[nearest]).sum(1) / weights.sum(1)
    closest = nearest[:, 0]
    scalp = head.region_mask("scalp")[closest]
    interior = head.region_mask("mouth_interior", "eye_sockets")[closest]
    is_hair = np.clip(thickness / 0.01, 0.0, 1.0) if hair.present else np.zeros(len(closest))
    if hair.present:
        is_hair = np.maximum(is_hair, scalp.astype(float))

    skin = skin_albedo.reshape(3, 1, 1) * _tiled(skin_detail, (h, w), rng, config.skin_detail_limit)
    strands = 1.0 + config.strand_contrast * _strand_noise((h, w), rng, config)
    hair_map = hair_albedo.reshape(3, 1, 1) * torch.from_numpy(strands).float()[None]
    blend = torch.from_numpy(is_hair.reshape(h, w)).float()[None]
    albedo = blend * hair_map + (1 - blend) * skin
    dark = torch.from_numpy(interior.reshape(h, w))[None].expand(3, h, w)
    albedo = torch.where(dark, torch.tensor(INTERIOR_ALBEDO).reshape(3, 1, 1), albedo)
    return albedo[None].clamp(0.0, 1.0)


def skin_detail_tile(albedo: Tensor, centre: tuple[float, float], seen: Tensor, size: int) -> Tensor | None:
    """The skin's own fine detail: a square of a texture around ``centre`` divided by its blurred self.

    Args:
        albedo: [1, 3, h, w] texture (the fill texture with the seen photo in it).
        centre: (column, row) of a skin texel (e.g. the cheek).
        seen: [h, w] bool texels that hold the photo.
        size: tile side in texels.

    Returns:
        [size, size] luminance ratio around 1, or None where the square is not all seen skin.
    """
    h, w = albedo.shape[-2:]
    col, row = int(round(centre[0])), int(round(centre[1]))
    top, left = row - size // 2, col - size // 2
    if top < 0 or left < 0 or top + size > h or left + size > w or not bool(seen[top:top + size, left:left + size].all()):
        return None
    luma = albedo[0, :, top:top + size, left:left + size].mean(0).numpy().astype(np.float64)
    blurred = ndimage.gaussian_filter(luma, size / 4.0, mode="reflect")
    return torch.from_numpy(luma / np.maximum(blurred, 1e-4)).float()


def _tiled(tile: Tensor | None, shape: tuple[int, int], rng: np.random.Generator, limit: float) -> Tensor:
    """[1, h, w] the tile repeated (mirrored, so no seams) from a random offset, clamped to 1 +- limit."""
    h, w = shape
    if tile is None:
        return torch.ones(1, h, w)
    mirrored = torch.cat([tile, tile.flip(0)], 0)
    mirrored = torch.cat([mirrored, mirrored.flip(1)], 1)
    reps = (h // mirrored.shape[0] + 2, w // mirrored.shape[1] + 2)
    big = mirrored.repeat(*reps)
    dy, dx = (int(v) for v in rng.integers(0, mirrored.shape[0], size=2))
    return big[dy:dy + h, dx:dx + w].clamp(1 - limit, 1 + limit)[None]


def _strand_noise(shape: tuple[int, int], rng: np.random.Generator, config: CompletionConfig) -> np.ndarray:
    """[h, w] unit-spread noise, long along the rows' direction of travel (elevation), thin across."""
    noise = rng.standard_normal(shape)
    noise = ndimage.gaussian_filter(noise, (config.strand_length, config.strand_width), mode=("nearest", "wrap"))
    return noise / max(float(noise.std()), 1e-9)
