"""Distortion families of the judge's benchmark: degrade a clean turntable clip at five severities
(1 = just visible, 5 = strong), over the whole frame or inside one face region, and the soft region
masks they use. Every family draws its random numbers the same way at every severity and only scales
them, so one seed gives a ladder whose rungs differ in strength alone.

Example:
    >>> masks = clip_region_masks(frames)
    >>> blurred_eyes = degrade(frames, "blur", 3, mask=masks["eyes"], seed=0)
    >>> expected_category("blur", "eyes")
    'Eye'
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Callable

import numpy as np
from scipy import ndimage

from judge.track import background_colour as _border_median

SEVERITIES = (1, 2, 3, 4, 5)
GLOBAL = "global"
STRETCH = "frames"  # a stretch of frames: the middle third of the clip, whole frames (a temporal distortion)
# Scopes by the head's silhouette (``head_masks``), used by the structural families.
BEYOND_FACE, HEAD = "beyond-face", "head"
LADDER_REGIONS = ("eyes", "mouth", "hair", "cheek", "neck")
REGION_CATEGORY = {"eyes": "Eye", "mouth": "Mouth", "hair": "Hair", "cheek": "Facial Feature",
                   "neck": "Accessories/Cloth"}
# Label names of face_nerf.regions that make up each ladder region.
REGION_LABELS = {"eyes": ("irises", "sclera", "eyelids"), "mouth": ("lips", "mouth"), "hair": ("hair",),
                 "cheek": ("cheeks",), "neck": ("neck",)}
REFERENCE_SIZE = 256  # pixel amounts below are for 256-pixel frames and scale with the frame size

# Severity 1..5 -> each family's strength.
BLUR_SIGMA = (0.6, 1.2, 1.9, 2.7, 3.5)  # px
NOISE_SIGMA = (4.0, 8.0, 13.0, 20.0, 30.0)  # grey levels
JPEG_QUALITY = (40, 25, 15, 9, 5)
EXPOSURE_GAIN = (1.1, 1.3, 1.6, 2.0, 2.6)
EXPOSURE_GAMMA = (1.0, 0.9, 0.8, 0.7, 0.6)  # < 1 lifts the mid-tones into the clipped highlights
CAST_STRENGTH = (0.06, 0.12, 0.2, 0.32, 0.5)  # log channel gain along the cast's direction
TINT_AMOUNT = (0.12, 0.25, 0.4, 0.6, 0.85)  # how far a region moves toward its odd hue
FLICKER_AMPLITUDE = (0.04, 0.08, 0.13, 0.2, 0.3)  # relative gain and contrast swing per frame
WARP_AMPLITUDE = (1.0, 2.0, 3.5, 5.5, 8.0)  # px, the largest displacement
SMEAR_LENGTH = (3.0, 6.0, 10.0, 15.0, 22.0)  # px, length of the streak
SMEAR_BLEED = (1.0, 1.5, 2.5, 3.5, 5.0)  # px, red and blue pulled apart along the streak
HOLE_FRACTION = (0.3, 0.45, 0.6, 0.8, 1.0)  # hole size relative to each part of the region
FACE_ONLY_FADE = (0.35, 0.55, 0.75, 0.9, 1.0)  # how much of the head beyond the face turns to background
BLEED_WIDTH = (3.0, 5.0, 8.0, 12.0, 18.0)  # px, how far in from the silhouette the outside colour bleeds
STYLISE_LEVELS = (24, 12, 8, 6, 4)  # colour levels per channel left by the posterisation
LOWRES_FACTOR = (1.5, 2.0, 3.0, 4.0, 6.0)  # downscale factor before upscaling back

CASTS = {"green": (-0.5, 1.0, -0.5), "magenta": (0.5, -1.0, 0.5), "blue": (-0.5, -0.5, 1.0)}  # log gains
TINTS = {"green": (0.25, 1.0, 0.3), "magenta": (1.0, 0.25, 0.9), "blue": (0.3, 0.45, 1.0)}  # odd hues
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
WARP_WAVELENGTH = 128.0  # px: about a face, so a feature slides as a whole while the head bends
WARP_CYCLES = 3  # pulses per clip; the turntable sweeps once, so the wobble does not follow the head


@dataclass(frozen=True)
class Family:
    """One kind of distortion. ``degrade`` checks the input, then clips and mask-blends what ``apply`` returns."""

    name: str  # the key in FAMILIES
    # (frames [T, H, W, 3] float32 in [0, 255], mask [T, H, W] in [0, 1] or None for the whole frame,
    #  severity 1..5, rng, background [3] uint8) -> [T, H, W, 3] float32, neither clipped nor blended.
    apply: Callable[..., np.ndarray]
    scopes: tuple[str, ...]  # "global" and/or the LADDER_REGIONS the ladders use it with
    # "technical": image quality should fall more; "structure": 3D consistency / authenticity; "style":
    # a clean image that is not a real face (authenticity only).
    breaks: str
    description: str  # what it does, in a sentence


def _pixels(frames: np.ndarray, amount: float) -> float:
    """``amount`` pixels at 256 px, in pixels of these frames."""
    return amount * min(frames.shape[1:3]) / REFERENCE_SIZE


# --- the families ------------------------------------------------------------------------------------

def _blur(frames, mask, severity, rng, background):
    """Gaussian blur of every frame."""
    sigma = _pixels(frames, BLUR_SIGMA[severity - 1])
    return ndimage.gaussian_filter(frames, sigma=(0, sigma, sigma, 0), mode="nearest")


def _noise(frames, mask, severity, rng, background):
    """Gaussian pixel noise, fresh in every frame and channel."""
    return frames + NOISE_SIGMA[severity - 1] * rng.standard_normal(frames.shape, dtype=np.float32)


def _jpeg(frames, mask, severity, rng, background):
    """JPEG re-compression of every frame (pillow, 4:2:0 chroma)."""
    from PIL import Image

    out = np.empty_like(frames)
    for i, frame in enumerate(np.clip(np.rint(frames), 0, 255).astype(np.uint8)):
        buffer = BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=JPEG_QUALITY[severity - 1])
        out[i] = np.asarray(Image.open(buffer).convert("RGB"), np.float32)
    return out


def _exposure(frames, mask, severity, rng, background):
    """Over-exposure: 255 * gain * (x / 255) ** gamma, so highlights clip (most of the face at 5)."""
    lifted = (frames / 255.0) ** EXPOSURE_GAMMA[severity - 1]
    return 255.0 * EXPOSURE_GAIN[severity - 1] * lifted


def _colour(frames, mask, severity, rng, background):
    """Whole frame: a colour cast (channel gains exp(strength * direction), direction drawn from
    ``CASTS``). In a region: its colours move toward an odd hue (``TINTS``) of the same luminance."""
    name = sorted(CASTS)[rng.integers(len(CASTS))]
    if mask is None:
        gains = np.exp(CAST_STRENGTH[severity - 1] * np.array(CASTS[name], np.float32))
        return frames * gains
    tint = np.array(TINTS[name], np.float32)
    tinted = (frames @ LUMA)[..., None] * tint / float(tint @ LUMA)
    return frames + TINT_AMOUNT[severity - 1] * (tinted - frames)


def _flicker(frames, mask, severity, rng, background):
    """Brightness (gain) and contrast that jump from frame to frame, drawn uniformly per frame."""
    swing = FLICKER_AMPLITUDE[severity - 1] * rng.uniform(-1.0, 1.0, size=(2, len(frames), 1, 1, 1))
    mean = frames.mean(axis=(1, 2, 3), keepdims=True)
    return ((mean + (1.0 + swing[1]) * (frames - mean)) * (1.0 + swing[0])).astype(np.float32)


def warp_field(shape: tuple[int, ...], severity: int, rng: np.random.Generator) -> np.ndarray:
    """The warp family's displacement: [T, 2, H, W] float32 pixels (dy, dx), smooth in space and a
    sinusoid in frame index, ``WARP_AMPLITUDE[severity - 1]`` pixels (at 256 px) at its largest."""
    t, h, w = shape[:3]
    scale = min(h, w) / REFERENCE_SIZE
    amplitude, wavelength = WARP_AMPLITUDE[severity - 1] * scale, WARP_WAVELENGTH * scale
    angles, phases = rng.uniform(0, 2 * np.pi, size=(2, 2))
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    time = 2 * np.pi * WARP_CYCLES * np.arange(t, dtype=np.float32) / t
    field = np.empty((t, 2, h, w), np.float32)
    for axis in range(2):
        space = 2 * np.pi * (x * np.cos(angles[axis]) + y * np.sin(angles[axis])) / wavelength + phases[axis]
        field[:, axis] = amplitude * np.sin(time[:, None, None] + space[None])
    return field


def _warp(frames, mask, severity, rng, background):
    """Content slides and bends over time, unlike the rigid head: ``warp_field`` (weighted by the
    mask in a region), resampled bilinearly. Globally it bends the whole frame, which on the plain
    backdrop shows only on the head."""
    field = warp_field(frames.shape, severity, rng)
    if mask is not None:
        field = field * mask[:, None]
    y, x = np.mgrid[0:frames.shape[1], 0:frames.shape[2]].astype(np.float32)
    out = np.empty_like(frames)
    for i in range(len(frames)):
        coords = np.stack([y + field[i, 0], x + field[i, 1]])
        for c in range(3):
            out[i, ..., c] = ndimage.map_coordinates(frames[i, ..., c], coords, order=1, mode="nearest")
    return out


def _smear(frames, mask, severity, rng, background):
    """Streaked texture: a motion-like blur along one direction (drawn once per clip) and colour
    bleeding (red and blue offset along it), like a generator's smeared detail."""
    from scipy.signal import fftconvolve

    angle = rng.uniform(0, np.pi)
    length, bleed = _pixels(frames, SMEAR_LENGTH[severity - 1]), _pixels(frames, SMEAR_BLEED[severity - 1])
    out = np.empty_like(frames)
    for c, offset in enumerate((bleed, 0.0, -bleed)):
        kernel = _line_kernel(length, offset, angle)
        r = kernel.shape[0] // 2
        padded = np.pad(frames[..., c], ((0, 0), (r, r), (r, r)), mode="edge")
        out[..., c] = fftconvolve(padded, kernel[None], mode="valid", axes=(1, 2))
    return out


def _line_kernel(length: float, offset: float, angle: float) -> np.ndarray:
    """[k, k] float32 kernel summing to 1: bilinear taps one pixel apart along a segment of ``length``
    pixels at ``angle``, centred ``offset`` pixels along it from the kernel's centre."""
    r = int(np.ceil(length / 2 + abs(offset))) + 1
    kernel = np.zeros((2 * r + 1, 2 * r + 1), np.float32)
    for step in np.linspace(-length / 2, length / 2, int(np.ceil(length)) + 1) + offset:
        y, x = r + step * np.sin(angle), r + step * np.cos(angle)
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        fy, fx = y - y0, x - x0
        kernel[y0:y0 + 2, x0:x0 + 2] += np.outer([1 - fy, fy], [1 - fx, fx])
    return kernel / kernel.sum()


def _face_only(frames, mask, severity, rng, background):
    """A face mask with no head (used beyond the face): the head around the face fades into the
    background, and the cut edge darkens, as in textured face-mesh renders."""
    fade = FACE_ONLY_FADE[severity - 1]
    edge = np.clip(mask * (1.0 - mask) * 4.0, 0.0, 1.0)[..., None] if mask is not None else 0.0
    return (frames + fade * (np.asarray(background, np.float32) - frames)) * (1.0 - 0.6 * fade * edge)


def _bleed(frames, mask, severity, rng, background):
    """Background colour bleeding onto the head (used on the head): a band inside the silhouette,
    ``BLEED_WIDTH`` wide, takes the colour of what lies just outside it."""
    width = _pixels(frames, BLEED_WIDTH[severity - 1])
    inside = ndimage.gaussian_filter(mask, sigma=(0, width, width)) if mask is not None else np.ones(frames.shape[:3])
    band = np.clip(1.0 - inside, 0.0, 1.0)[..., None] * 2.0
    outside = ndimage.gaussian_filter(frames * (1.0 - mask[..., None]), sigma=(0, width, width, 0)) / \
        np.maximum(ndimage.gaussian_filter(1.0 - mask, sigma=(0, width, width)), 1e-3)[..., None]
    return frames + np.clip(band, 0.0, 1.0) * (outside - frames)


def _stylise(frames, mask, severity, rng, background):
    """A cartoon look: edge-preserving smoothing, colours posterised to ``STYLISE_LEVELS`` levels and
    dark outlines; clean as an image, but not a real face."""
    import cv2

    levels = STYLISE_LEVELS[severity - 1]
    out = np.empty_like(frames)
    for i, frame in enumerate(np.clip(frames, 0, 255).astype(np.uint8)):
        smooth = cv2.bilateralFilter(frame, 7, 20.0 + 8.0 * severity, 5.0)
        step = 256.0 / levels
        poster = (np.floor(smooth / step) + 0.5) * step
        edges = cv2.Canny(cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY), 60, 140) > 0
        out[i] = np.where(edges[..., None] & (severity >= 2), 0.35 * poster, poster)
    return out


def _lowres(frames, mask, severity, rng, background):
    """Low resolution: each frame downscaled by ``LOWRES_FACTOR`` (area) and scaled back up (bilinear)."""
    from PIL import Image

    h, w = frames.shape[1:3]
    small = (max(8, round(w / LOWRES_FACTOR[severity - 1])), max(8, round(h / LOWRES_FACTOR[severity - 1])))
    return np.stack([np.asarray(Image.fromarray(np.clip(f, 0, 255).astype(np.uint8)).resize(small, Image.BOX)
                                .resize((w, h), Image.BILINEAR), np.float32) for f in frames])


def _hole(frames, mask, severity, rng, background):
    """Background showing through the face: in each part of the region (e.g. each eye), an ellipse of
    the part's own shape, ``HOLE_FRACTION`` of its size, soft-edged, filled with the background."""
    blob = np.zeros(frames.shape[:3], np.float32)
    y, x = np.mgrid[0:frames.shape[1], 0:frames.shape[2]].astype(np.float32)
    for i, m in enumerate(mask):
        parts, count = ndimage.label(m > 0.5)
        for part in range(1, count + 1):
            py, px = np.nonzero(parts == part)
            if len(py) < 4:
                continue
            offsets = np.stack([py, px], 1) - np.array([py.mean(), px.mean()])
            inverse = np.linalg.inv(np.cov(offsets.T) + 0.25 * np.eye(2))
            d = np.stack([y - py.mean(), x - px.mean()], -1)
            # A uniform ellipse ends at Mahalanobis distance 2.
            inside = np.einsum("hwi,ij,hwj->hw", d, inverse, d) <= (2.0 * HOLE_FRACTION[severity - 1]) ** 2
            blob[i] = np.maximum(blob[i], inside)
    soft = _pixels(frames, 1.0)
    blob = ndimage.gaussian_filter(blob, sigma=(0, soft, soft))
    return frames + blob[..., None] * (np.asarray(background, np.float32) - frames)


_FACE = (GLOBAL, STRETCH) + LADDER_REGIONS
FAMILIES = {family.name: family for family in (
    Family("blur", _blur, _FACE, "technical", "Gaussian blur, sigma 0.6..3.5 px at 256 px."),
    Family("noise", _noise, _FACE, "technical", "Gaussian pixel noise, sigma 4..30 levels, fresh per frame."),
    Family("jpeg", _jpeg, (GLOBAL, STRETCH), "technical", "JPEG re-compression per frame, quality 40..5."),
    Family("exposure", _exposure, (GLOBAL, STRETCH), "technical", "Over-exposure by gain and gamma; highlights clip."),
    Family("lowres", _lowres, (GLOBAL,), "technical", "Low resolution: downscaled 1.5..6 times and scaled back up."),
    Family("colour", _colour, (GLOBAL, "eyes", "mouth", "hair"), "technical",
           "A colour cast over the frame, or a region turned an odd hue."),
    Family("flicker", _flicker, (GLOBAL,), "technical", "Brightness and contrast jumping from frame to frame."),
    Family("warp", _warp, (GLOBAL, "eyes", "mouth", "cheek"), "structure",
           "A smooth displacement pulsing over time, so the shape is not rigid across views."),
    # Technical: the streaks stay put on the rigid head, so texture quality suffers, not 3D consistency.
    Family("smear", _smear, LADDER_REGIONS, "technical", "Directional streaks and colour bleeding."),
    Family("hole", _hole, ("eyes", "mouth", "cheek"), "structure", "Background showing through the region."),
    Family("face_only", _face_only, (BEYOND_FACE,), "structure",
           "A face mask with no head: hair, ears and neck fade into the background, the cut edge darkens."),
    Family("bleed", _bleed, (HEAD,), "structure", "Background colour bleeding onto the head from its silhouette."),
    Family("stylise", _stylise, (GLOBAL,), "style", "A cartoon look: smoothed, posterised, outlined."),
)}


# --- entry points ------------------------------------------------------------------------------------

def degrade(frames: np.ndarray, family: str, severity: int, mask: np.ndarray | None = None,
            seed: int | np.random.Generator = 0, background: np.ndarray | None = None) -> np.ndarray:
    """One rung of a ladder: ``frames`` degraded by ``family`` at ``severity``, everywhere (mask None)
    or inside the soft ``mask``, blended by it so nothing changes where it is 0.

    Args:
        frames: [T, H, W, 3] uint8 RGB turntable; not modified.
        family: a key of ``FAMILIES``.
        severity: 1 (just visible) .. 5 (strong).
        mask: [T, H, W] in [0, 1] (e.g. from ``clip_region_masks``), or None for the whole frame.
        seed: an int or a numpy Generator; the same seed gives the same output.
        background: [3] uint8 colour for holes; default ``background_colour(frames)``.

    Returns:
        A new [T, H, W, 3] uint8 array.
    """
    _check_frames(frames)
    spec = _family(family)
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer in {SEVERITIES}. Got {severity!r}.")
    mask = _check_mask(mask, frames, spec)
    background = background_colour(frames) if background is None else np.asarray(background)
    if background.shape != (3,):
        raise ValueError(f"background must be one RGB colour with a shape of (3,). Got {background.shape}.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    clean = frames.astype(np.float32)
    out = spec.apply(clean, mask, int(severity), rng, background)
    if mask is not None:
        out = clean + mask[..., None] * (out - clean)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def expected_category(family: str, scope: str) -> str:
    """The category (``judge.result.CATEGORIES``) a good judge should name first for a rung of
    ``family`` applied in ``scope`` ("global" or a ladder region)."""
    spec = _family(family)
    if scope not in spec.scopes:
        raise ValueError(f"{family!r} is used with scopes {spec.scopes}. Got {scope!r}.")
    if family in ("hole", "bleed"):
        return "Overlap/Blending"
    if family == "face_only":
        return "Head Structure"
    if family == "stylise":
        return "No Distortion"
    if scope in (GLOBAL, STRETCH):
        return "Head Structure" if family == "warp" else "Blurring/Exposure/Grain"
    return REGION_CATEGORY[scope]


def _family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"Unknown distortion family {name!r}. Known: {', '.join(FAMILIES)}.")
    return FAMILIES[name]


def _check_mask(mask: np.ndarray | None, frames: np.ndarray, spec: Family) -> np.ndarray | None:
    """The mask as float32, after checking it suits the frames and the family's scopes."""
    regions = [scope for scope in spec.scopes if scope != GLOBAL]
    if mask is None:
        if GLOBAL not in spec.scopes:
            raise ValueError(f"{spec.name!r} works inside a region only ({', '.join(regions)}); pass "
                             f"mask=clip_region_masks(frames)[region].")
        return None
    if not regions:
        raise ValueError(f"{spec.name!r} works on the whole frame only; pass mask=None.")
    mask = np.asarray(mask, np.float32)
    if mask.shape != frames.shape[:3]:
        raise ValueError(f"mask must have a shape of (T, H, W) = {frames.shape[:3]}. Got {mask.shape}.")
    if not np.all(np.isfinite(mask)) or mask.min() < 0 or mask.max() > 1:
        raise ValueError("mask values must lie in [0, 1]; clip or rescale it.")
    return mask


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        got = f"{frames.dtype} {frames.shape}" if isinstance(frames, np.ndarray) else type(frames).__name__
        raise ValueError(f"frames must be uint8 with a shape of (T, H, W, 3). Got {got}.")


# --- region masks -------------------------------------------------------------------------------------

def background_colour(frames: np.ndarray) -> np.ndarray:
    """[3] uint8: the per-channel median of the frames' 2-pixel borders (the plain backdrop)."""
    _check_frames(frames)
    return _border_median(frames, border_px=2)[0].astype(np.uint8)


def clip_region_masks(frames: np.ndarray, grow: float = 3.0, soften: float = 1.5) -> dict[str, np.ndarray]:
    """Soft masks of the ladder regions (and "face", every face region) in every frame, from the face
    landmarker in tracking mode and ``face_nerf.regions.photo_region_labels``.

    Args:
        frames: [T, H, W, 3] uint8 RGB.
        grow: pixels (at 256 px) each region is dilated by.
        soften: Gaussian sigma (pixels at 256 px) of the masks' edges.

    Returns:
        name -> [T, H, W] float32 in [0, 1]; a frame with no face found takes the nearest found frame's.

    Raises:
        NoFaceError: when no frame has a face.
    """
    import mediapipe as mp

    from face_nerf.errors import NoFaceError
    from face_nerf.regions import FACE_REGIONS, REGION_ID, photo_region_labels

    _check_frames(frames)
    t, h, w = frames.shape[:3]
    labels = np.zeros((t, h, w), np.uint8)
    found = np.zeros(t, bool)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True) as mesh, \
            mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as segmenter:
        for i, frame in enumerate(frames):
            frame = np.ascontiguousarray(frame)
            faces = mesh.process(frame).multi_face_landmarks
            if not faces:
                continue
            # Pixels, x right, y down, z scaled by the width (as face_nerf.landmarks reports them).
            landmarks = np.array([[p.x * w, p.y * h, p.z * w] for p in faces[0].landmark], np.float32)
            person = np.clip(np.asarray(segmenter.process(frame).segmentation_mask, np.float32), 0, 1)
            labels[i], found[i] = photo_region_labels(landmarks, person, frame), True
    if not found.any():
        raise NoFaceError("No face found in any frame of the clip. Use a turntable with a clearly visible face.")
    kept = np.nonzero(found)[0]
    labels = labels[kept[np.abs(np.arange(t)[:, None] - kept[None]).argmin(1)]]  # nearest frame with a face
    groups = dict(REGION_LABELS, face=FACE_REGIONS)
    size = min(h, w) / REFERENCE_SIZE
    return {name: _soft_mask(np.isin(labels, [REGION_ID[n] for n in names]), grow * size, soften * size)
            for name, names in groups.items()}


def stretch_mask(frames: np.ndarray) -> np.ndarray:
    """[T, H, W] float32: 1 on the middle third of the frames, 0 elsewhere (the ``STRETCH`` scope)."""
    t = len(frames)
    mask = np.zeros(frames.shape[:3], np.float32)
    mask[t // 3:max(t // 3 + 1, (2 * t) // 3)] = 1.0
    return mask


def head_masks(frames: np.ndarray, face: np.ndarray, background: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Soft masks of the ``HEAD`` (everything that differs from the plain backdrop) and of the head
    ``BEYOND_FACE`` (the head less ``face``, a soft [T, H, W] face mask from ``clip_region_masks``)."""
    background = background_colour(frames) if background is None else np.asarray(background)
    distance = np.abs(frames.astype(np.int16) - background.astype(np.int16)).max(-1).astype(np.float32)
    head = ndimage.gaussian_filter(np.clip((distance - 4.0) / 8.0, 0.0, 1.0), sigma=(0, 0.7, 0.7))
    return {HEAD: head.astype(np.float32), BEYOND_FACE: np.clip(head - face, 0.0, 1.0).astype(np.float32)}


def _soft_mask(region: np.ndarray, grow: float, soften: float) -> np.ndarray:
    """[T, H, W] bool -> float32 in [0, 1]: dilated by ``grow`` pixels, edge blurred by ``soften``."""
    radius = max(int(round(grow)), 0)
    grown = ndimage.maximum_filter(region, size=(1, 2 * radius + 1, 2 * radius + 1)) if radius else region
    return np.clip(ndimage.gaussian_filter(grown.astype(np.float32), sigma=(0, soften, soften)), 0.0, 1.0)
