"""What the photo does not show: the field's spherical fill texture (the mirrored photo where that side
was seen, the completed skin and hair elsewhere) and the regions of unseen voxels, from the head model."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from face_nerf.appearance.completion import complete_fill, skin_detail_tile
from face_nerf.appearance.hair import HairLayer
from face_nerf.field import AppearanceConfig, HeadField, fill_surface_points
from face_nerf.sampling import spherical_uv
from face_nerf.head.place import PlacedHead
from face_nerf.regions import REGION_ID

CHEEKS = (205, 425)  # mediapipe landmarks at the middle of the subject's right and left cheek


def fill_texture(field: HeadField, head: PlacedHead, hair: HairLayer, config: AppearanceConfig) -> Tensor:
    """Spherical texture of the (mirrored) photo where it was seen, the completed skin and hair elsewhere."""
    w, h = config.fill_width, config.fill_height
    field.fill = torch.zeros(1, 3, h, w)
    surface, hits = fill_surface_points(field)
    # The fill is seen from every side, squarely too: it takes the photo only where that would not
    # stretch it (``HeadField.photo_trust`` for a view along the normal).
    normal, visible = field.surface(surface)
    visible = visible * field.photo_trust(surface, normal, -normal)
    mirrored = torch.from_numpy(head.placement.mirror(surface.numpy().astype(np.float64)).astype(np.float32))
    normal_m, visible_m = field.surface(mirrored)
    visible_m = visible_m * field.photo_trust(mirrored, normal_m, -normal_m)
    photo_here, photo_mirror = field.photo_albedo(surface, normal), field.photo_albedo(mirrored, normal_m)
    weight = visible + (1 - visible) * visible_m
    colour = (visible[:, None] * photo_here + ((1 - visible) * visible_m)[:, None] * photo_mirror) / weight.clamp(min=1e-6)[:, None]
    seen = ((weight - config.seen_from) / (config.seen_to - config.seen_from)).clamp(0.0, 1.0) * hits.float()
    colour = colour.T.reshape(1, 3, h, w)
    seen = seen.reshape(1, 1, h, w)
    skin_albedo, hair_albedo = completion_albedos(field, head, hair)
    tile = None
    for cheek in CHEEKS:  # the first cheek seen squarely enough gives the skin's detail
        uv = spherical_uv(torch.from_numpy(head.placement.landmarks[cheek]), field.fill_centre, w, h)
        tile = tile if tile is not None else skin_detail_tile(colour, (float(uv[0]), float(uv[1])), seen[0, 0] > 0.99,
                                                              config.completion.skin_detail_texels)
    completed = complete_fill(surface, (h, w), head, hair, skin_albedo, hair_albedo, tile, config.completion)
    return seen * colour + (1 - seen) * completed


def completion_albedos(field: HeadField, head: PlacedHead, hair: HairLayer) -> tuple[Tensor, Tensor]:
    """[3] skin and [3] hair albedo (linear RGB): the median photo albedo of the face the camera sees
    squarely, and the hair's photo colour scaled by the same colour-wise albedo-to-photo ratio."""
    face = head.fit.template.regions["face"]
    points = torch.from_numpy(head.vertices[face])
    normal, visible = field.surface(points)
    squarely = (visible > 0.9) & (normal[:, 2] > 0.7)
    if int(squarely.sum()) < 10:  # hardly any face seen squarely: every face vertex the camera sees at all
        squarely = visible > 0.1
    if int(squarely.sum()) == 0:
        skin = torch.tensor([0.6, 0.42, 0.33])
        return skin, torch.from_numpy(hair.colour) if hair.present else skin
    skin_photo = field.photo_colour(points[squarely]).median(0).values
    skin = field.photo_albedo(points[squarely], normal[squarely]).median(0).values.clamp(0.02, 1.0)
    hair_albedo = torch.from_numpy(hair.colour).float() * skin / skin_photo.clamp(min=1e-3)
    return skin, hair_albedo.clamp(0.0, 1.0)


# The head model's regions as the edits' regions (``regions.REGIONS``) for what the photo does not show.
MODEL_REGIONS = {"scalp": "hair", "face": "cheeks", "ears": "ears", "lips": "lips", "eyes": "sclera", "neck": "neck",
                 "mouth_interior": "mouth", "eye_sockets": "sclera"}


def model_regions(head: PlacedHead, hair: HairLayer, points: Tensor) -> Tensor:
    """[N] uint8 region ids of world points [N, 3]: the head model region of the nearest vertex (a
    bald scalp is skin)."""
    _, nearest = cKDTree(head.vertices).query(points.numpy(), workers=-1)
    ids = np.zeros(len(head.vertices), np.uint8)
    for region, name in MODEL_REGIONS.items():
        if region == "scalp" and not hair.present:
            name = "skin"
        ids[head.fit.template.regions[region]] = REGION_ID[name]
    return torch.from_numpy(ids[nearest])
