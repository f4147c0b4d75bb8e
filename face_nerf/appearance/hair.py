"""The hair layer: how thick the hair stands off the scalp, and its colour, read from the photo.

Around the projected head centre, rays in the photo plane measure, per angle, how far the person mask
reaches beyond the fitted head's silhouette: that is the hair (or hat) seen edge-on. A scalp vertex takes
the thickness measured at its own angle about the head's centre in the camera's x-y plane, so hair seen
at the sides and top wraps round the back. The colour is the photo's on the scalp the camera sees (or,
when that is skin, outside the silhouette, leaving out background colours); a scalp that looks like the
face's skin under other shading, with nothing but skin or background outside it, is bald.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from face_nerf.geometry import CAMERA_DISTANCE
from face_nerf.head.place import PlacedHead
from face_nerf.lighting import srgb_to_linear

RAY_SAMPLES = 192


@dataclass(frozen=True)
class HairConfig:
    """How the hair layer is read from the photo."""

    angle_bins: int = 90  # rays around the head centre in the photo
    max_thickness: float = 0.3  # thickest hair (face heights): beyond it the mask is shoulders or a hat's brim
    short_hair: float = 0.02  # thickness (face heights) given to hair the silhouette does not show (cropped hair)
    lowest_angle: float = -30.0  # degrees below the horizontal where hair measured at the sides stops
    smoothing_rounds: int = 6  # neighbour-averaging rounds that taper the thickness at the hairline
    min_hair_share: float = 0.02  # hair pixels outside the silhouette, as a share of the face's, to count as hair
    skin_distance: float = 0.08  # linear-RGB distance of hair pixels from a background colour to be left out
    skin_chroma: float = 0.04  # chromaticity distance (r, g, b over their sum) within which a colour is the skin's...
    skin_brightness: tuple[float, float] = (0.45, 2.2)  # ... at a brightness ratio in this range (shading, not hair)
    max_side: int = 384  # the photo and mask are measured at most this large


@dataclass
class HairLayer:
    """The hair read from the photo.

    Attributes:
        thickness: [V] face heights the hair stands off each template vertex (0 off the scalp, or bald).
        colour: [3] linear RGB of the hair in the photo (the skin's, when bald).
        present: whether the head has hair (or a hat) at all.
        profile: [angle_bins] thickness measured at each angle (0 = viewer's right, counter-clockwise).
    """

    thickness: np.ndarray
    colour: np.ndarray
    present: bool
    profile: np.ndarray


def estimate_hair(photo_rgb: np.ndarray, person_mask: np.ndarray, head: PlacedHead,
                  config: HairConfig = HairConfig()) -> HairLayer:
    """Measure the hair around the fitted head.

    Args:
        photo_rgb: [H, W, 3] uint8 photo.
        person_mask: [H, W] float person silhouette in [0, 1].
        head: the fitted head placed in the world (its camera is the photo's).
        config: measuring options.

    Returns:
        The hair layer (thickness per template vertex, colour).

    Raises:
        ValueError: the photo and mask sizes differ.
    """
    if photo_rgb.shape[:2] != person_mask.shape:
        raise ValueError(f"Photo and mask must have the same size. Got {photo_rgb.shape[:2]} and {person_mask.shape}.")
    camera = head.placement.camera
    factor = min(1.0, config.max_side / max(camera.width, camera.height))
    small = camera.scaled(factor)
    rgb = np.asarray(Image.fromarray(photo_rgb).resize((small.width, small.height), Image.BILINEAR))
    mask = np.asarray(Image.fromarray((person_mask * 255).astype(np.uint8)).resize((small.width, small.height))) > 127
    pixels = small.project(torch.from_numpy(head.vertices))[0].numpy()
    skin = head.region_mask("scalp", "face", "ears", "neck", "lips")
    silhouette = _silhouette(pixels, head.fit.template.faces, skin, (small.height, small.width))
    centre = small.project(torch.zeros(3))[0].numpy()
    units = small.fx / CAMERA_DISTANCE  # pixels per face height at the head centre
    profile, hair_pixels = _measure(mask, silhouette, centre, units, config)
    face_pixels = max(1, int(silhouette.sum()))
    linear = srgb_to_linear(torch.from_numpy(rgb.copy()).float() / 255.0).numpy()

    seen_scalp = _seen_colours(head, pixels, linear, "scalp")
    skin_colour = np.median(_seen_colours(head, pixels, linear, "face"), axis=0)
    outside = _not_background(linear[hair_pixels], linear[~mask], config.skin_distance / 2)
    scalp_is_skin = len(seen_scalp) == 0 or _looks_like(np.median(seen_scalp, 0), skin_colour, config)
    # A bald head larger than the template also runs on past its silhouette: that run is skin, not hair.
    outside_is_skin = len(outside) == 0 or _looks_like(np.median(outside, 0), skin_colour, config)
    present = (len(outside) >= config.min_hair_share * face_pixels and not outside_is_skin) or not scalp_is_skin
    # The scalp the camera sees is the surest hair colour (it is on the head); the run past the
    # silhouette is the fallback (it may hold a collar, a hand or the background the mask let in).
    samples = seen_scalp if not scalp_is_skin else outside
    colour = np.median(samples, axis=0) if present and len(samples) else skin_colour
    thickness = np.zeros(len(head.vertices))
    if present:
        rel = head.vertices.astype(np.float64)
        angle = np.degrees(np.arctan2(rel[:, 1], rel[:, 0])) % 360.0
        bins = len(profile)
        at = np.interp(angle, (np.arange(bins + 1) + 0.5) * 360.0 / bins - 360.0 / bins / 2,
                       np.append(profile, profile[0]), period=360.0)
        thickness = np.where(head.region_mask("scalp"), np.maximum(at, config.short_hair), 0.0)
        thickness = taper(thickness, head.fit.template.faces, head.region_mask("scalp"), config.smoothing_rounds)
    return HairLayer(thickness.astype(np.float32), colour.astype(np.float32), bool(present), profile)


def _silhouette(pixels: np.ndarray, faces: np.ndarray, keep: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[H, W] bool: the projected triangles whose corners are all ``keep`` vertices."""
    canvas = Image.new("L", (shape[1], shape[0]), 0)
    draw = ImageDraw.Draw(canvas)
    for tri in pixels[faces[keep[faces].all(1)]]:
        draw.polygon([tuple(p) for p in tri], fill=255)
    return np.asarray(canvas) > 0


def _measure(mask: np.ndarray, silhouette: np.ndarray, centre: np.ndarray, units: float,
             config: HairConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per angle, how far (face heights) the person mask runs on past the head's silhouette; and the
    [H, W] bool pixels of that run (the hair seen edge-on)."""
    h, w = mask.shape
    angles = np.radians((np.arange(config.angle_bins) + 0.5) * 360.0 / config.angle_bins)
    reach = 1.5 * units
    radii = np.linspace(0.0, reach, RAY_SAMPLES)
    xs = centre[0] + np.cos(angles)[:, None] * radii
    ys = centre[1] - np.sin(angles)[:, None] * radii
    inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    col, row = np.clip(xs.astype(int), 0, w - 1), np.clip(ys.astype(int), 0, h - 1)
    head = silhouette[row, col] & inside
    person = mask[row, col] & inside
    last_head = np.where(head.any(1), RAY_SAMPLES - 1 - np.argmax(head[:, ::-1], axis=1), 0)
    after = np.arange(RAY_SAMPLES)[None] > last_head[:, None]
    gap = after & ~person
    end = np.where(gap.any(1), np.argmax(gap, axis=1), RAY_SAMPLES - 1)
    run = np.where(head.any(1), radii[np.maximum(end - 1, 0)] - radii[last_head], 0.0) / units
    low = np.sin(angles) < np.sin(np.radians(config.lowest_angle))
    profile = np.where(low | (run >= config.max_thickness), 0.0, run)
    hair = np.zeros((h, w), bool)
    on_run = after & (np.arange(RAY_SAMPLES)[None] < end[:, None]) & (profile[:, None] > 0) & inside
    hair[row[on_run], col[on_run]] = True
    return profile, hair


def _seen_colours(head: PlacedHead, pixels: np.ndarray, linear: np.ndarray, region: str) -> np.ndarray:
    """[N, 3] photo colours under the region's vertices that face the camera squarely."""
    chosen = head.fit.template.regions[region]
    facing = head.normals[chosen, 2] > 0.5
    px = pixels[chosen[facing]]
    h, w = linear.shape[:2]
    ok = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
    return linear[px[ok, 1].astype(int), px[ok, 0].astype(int)]


def taper(values: np.ndarray, faces: np.ndarray, free: np.ndarray, rounds: int) -> np.ndarray:
    """Average each free vertex with its neighbours ``rounds`` times (others keep their value): the
    thickness falls off smoothly towards the hairline."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    degree = np.bincount(edges[:, 0], minlength=len(values)).astype(np.float64)
    out = values.astype(np.float64)
    for _ in range(rounds):
        total = np.bincount(edges[:, 0], weights=out[edges[:, 1]], minlength=len(values))
        out = np.where(free, 0.5 * out + 0.5 * total / np.maximum(degree, 1), out)
    return out


def _not_background(colours: np.ndarray, background: np.ndarray, distance: float, samples: int = 4000) -> np.ndarray:
    """The colours [N, 3] farther than ``distance`` from every background colour (a subsample of
    ``background`` [M, 3]): where the person mask strays over the background, its colour is not the hair's."""
    from scipy.spatial import cKDTree

    if len(colours) == 0 or len(background) == 0:
        return colours
    step = max(1, len(background) // samples)
    near, _ = cKDTree(background[::step]).query(colours, workers=-1)
    return colours[near > distance]


def _looks_like(colour: np.ndarray, skin: np.ndarray, config: HairConfig) -> bool:
    """Whether a linear RGB colour is the skin's under other shading: the same chromaticity, a
    brightness within ``config.skin_brightness`` of it."""
    chroma = colour / max(float(colour.sum()), 1e-6) - skin / max(float(skin.sum()), 1e-6)
    ratio = float(colour.sum()) / max(float(skin.sum()), 1e-6)
    low, high = config.skin_brightness
    return float(np.linalg.norm(chroma)) < config.skin_chroma and low <= ratio <= high
