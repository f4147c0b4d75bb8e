"""Face regions from the 478 landmarks: index groups of mediapipe's face-mesh topology and image masks."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def landmark_groups() -> dict[str, tuple[int, ...]]:
    """Landmark indices of the face's features, from mediapipe's own face-mesh connection sets.

    "right" and "left" are the subject's (mediapipe's naming): the subject's right eye is on the
    viewer's left in a frontal photo.
    """
    from mediapipe.python.solutions import face_mesh_connections as mesh

    def points(edges) -> tuple[int, ...]:
        return tuple(sorted({i for edge in edges for i in edge}))

    return {
        "face_oval": points(mesh.FACEMESH_FACE_OVAL),
        "lips": points(mesh.FACEMESH_LIPS),
        "right_eye": points(mesh.FACEMESH_RIGHT_EYE),
        "left_eye": points(mesh.FACEMESH_LEFT_EYE),
        "right_eyebrow": points(mesh.FACEMESH_RIGHT_EYEBROW),
        "left_eyebrow": points(mesh.FACEMESH_LEFT_EYEBROW),
        "right_iris": points(mesh.FACEMESH_RIGHT_IRIS),
        "left_iris": points(mesh.FACEMESH_LEFT_IRIS),
        "nose": points(mesh.FACEMESH_NOSE),
    }


def dilation_radius(pixels: float) -> int:
    """Whole pixels a mask is grown by for a growth of ``pixels`` (0 for a growth under half a pixel,
    including negative, NaN or infinite growths of degenerate faces).

    Example:
        >>> dilation_radius(2.4), dilation_radius(0.3), dilation_radius(float("nan"))
        (2, 0, 0)
    """
    if not np.isfinite(pixels) or pixels < 0.5:
        return 0
    return int(round(pixels))


def dilate(mask: Image.Image, pixels: float) -> Image.Image:
    """An "L" mask grown by ``pixels`` (a square max filter); unchanged when that rounds to 0 pixels.

    scipy's maximum filter is separable (rows, then columns), so its cost does not grow with the square's
    area: Pillow's MaxFilter took 39 s of a 1200-pixel photo's reconstruction, and its rank filters end
    the process with SIGFPE at size 1.
    """
    from scipy.ndimage import maximum_filter

    radius = dilation_radius(pixels)
    if radius == 0:
        return mask
    return Image.fromarray(maximum_filter(np.asarray(mask), size=2 * radius + 1, mode="constant", cval=0))


def hull_mask(points: np.ndarray, size: tuple[int, int], grow: float = 0.0) -> np.ndarray:
    """[H, W] bool: inside the convex hull of 2D ``points`` [N, 2] (pixels), grown by ``grow`` pixels.

    Points that span no area (fewer than 3, all on one line, or a face so small that they coincide)
    give the pixels along them instead of failing.
    """
    canvas = Image.new("L", size, 0)
    outline = [tuple(map(float, p)) for p in _hull(np.asarray(points, dtype=np.float64).reshape(-1, 2))]
    if len(outline) >= 3:
        ImageDraw.Draw(canvas).polygon(outline, fill=255)
    elif outline:
        ImageDraw.Draw(canvas).line(outline, fill=255)
    return np.asarray(dilate(canvas, grow)) > 127


def _hull(points: np.ndarray) -> np.ndarray:
    """[K, 2] the convex hull's corners in order; the finite points themselves when they span no area."""
    from scipy.spatial import ConvexHull, QhullError

    points = points[np.isfinite(points).all(1)]
    if len(np.unique(points.round(6), axis=0)) < 3:
        return points
    try:
        return points[ConvexHull(points).vertices]
    except QhullError:  # collinear points
        return points


def skin_mask(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[H, W] bool: the face's skin, i.e. the landmark hull without the eyes and eyebrows, the lips and
    the nostrils, each removed with a margin proportional to the face size.

    Args:
        landmarks: [478, >=2] landmark pixels (x, y, ...).
        size: (width, height) of the mask.
    """
    if landmarks.ndim != 2 or landmarks.shape[0] != 478 or landmarks.shape[1] < 2:
        raise ValueError(f"Landmarks must have a shape of (478, 2 or 3). Got {landmarks.shape}.")
    xy = landmarks[:, :2].astype(np.float64)
    groups = landmark_groups()
    face_height = float(np.ptp(xy[:, 1])) or 1.0
    skin = hull_mask(xy, size)
    for side in ("right", "left"):
        eye_and_brow = groups[f"{side}_eye"] + groups[f"{side}_eyebrow"]
        skin &= ~hull_mask(xy[list(eye_and_brow)], size, grow=0.03 * face_height)
    skin &= ~hull_mask(xy[list(groups["lips"])], size, grow=0.03 * face_height)
    nostrils = xy[[64, 98, 97, 2, 326, 327, 294, 278, 48]]  # alae and columella, below the nose tip
    skin &= ~hull_mask(nostrils, size, grow=0.01 * face_height)
    return skin


# --- semantic regions ---------------------------------------------------------------------------

# Region labels (0 = no region). Skin regions first; later labels win where drawn regions overlap.
REGIONS = ("skin", "forehead", "cheeks", "nose", "chin", "beard", "moustache", "eyelids", "eyebrows", "sclera",
           "irises", "lips", "mouth", "hair", "ears", "neck")
REGION_ID = {name: i + 1 for i, name in enumerate(REGIONS)}
SKIN_REGIONS = ("skin", "forehead", "cheeks", "nose", "chin", "beard", "moustache")
BEARD_AREA = ("beard", "chin", "moustache")
FACE_REGIONS = SKIN_REGIONS + ("eyelids", "eyebrows", "sclera", "irises", "lips", "mouth")

# Loops of the mediapipe face mesh (subject's right = viewer's left).
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
IRIS_CENTRES = {"right": (468, (469, 470, 471, 472)), "left": (473, (474, 475, 476, 477))}
SUBNASALE, UPPER_LIP_TOP, LOWER_LIP_BOTTOM, MOUTH_CORNERS = 2, 0, 17, (61, 291)


def face_oval_loop() -> tuple[int, ...]:
    """The face-oval landmarks in order around the face (walked from mediapipe's edge set)."""
    from mediapipe.python.solutions import face_mesh_connections as mesh

    neighbours: dict[int, list[int]] = {}
    for a, b in mesh.FACEMESH_FACE_OVAL:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    loop, prev = [10], None
    while True:
        nxt = next(n for n in neighbours[loop[-1]] if n != prev)
        if nxt == loop[0]:
            return tuple(loop)
        prev = loop[-1]
        loop.append(nxt)


def polygon_mask(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[H, W] bool inside the polygon through ``points`` [N, 2] (in order)."""
    canvas = Image.new("L", size, 0)
    ImageDraw.Draw(canvas).polygon([tuple(map(float, p)) for p in points], fill=255)
    return np.asarray(canvas) > 127


def _grow(mask: np.ndarray, pixels: float) -> np.ndarray:
    """[H, W] bool ``mask`` grown by ``pixels`` (``dilate``)."""
    if dilation_radius(pixels) == 0:
        return mask
    return np.asarray(dilate(Image.fromarray(mask.astype(np.uint8) * 255), pixels)) > 127


def photo_region_labels(landmarks: np.ndarray, person_mask: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """[H, W] uint8 region labels (``REGION_ID``) of a photo, from its landmarks, person mask and colours.

    Face features come from landmark polygons; hair is the person outside the face above the jaw plus
    non-skin-coloured pixels above the brows (fringes); the neck is the person below the chin.
    """
    h, w = person_mask.shape
    xy = landmarks[:, :2].astype(np.float64)
    groups = landmark_groups()
    face_h = float(np.linalg.norm(xy[10] - xy[152]))
    labels = np.zeros((h, w), np.uint8)
    oval = polygon_mask(xy[list(face_oval_loop())], (w, h))
    ys = np.arange(h, dtype=np.float64)[:, None] * np.ones((1, w))
    xs = np.ones((h, 1)) * np.arange(w, dtype=np.float64)[None, :]

    def put(name: str, mask: np.ndarray) -> None:
        labels[mask] = REGION_ID[name]

    brows = xy[list(groups["right_eyebrow"] + groups["left_eyebrow"])]
    eyes = xy[list(RIGHT_EYE + LEFT_EYE)]
    nose_base, lip_top, lip_bottom = xy[SUBNASALE, 1], xy[UPPER_LIP_TOP, 1], xy[LOWER_LIP_BOTTOM, 1]
    corners = xy[list(MOUTH_CORNERS)]
    put("skin", oval)
    put("forehead", oval & (ys < brows[:, 1].min()))
    put("cheeks", oval & (ys > eyes[:, 1].max()) & (ys < nose_base))
    put("beard", oval & (ys >= nose_base))
    put("chin", oval & (ys > lip_bottom) & (np.abs(xs - xy[LOWER_LIP_BOTTOM, 0]) < 0.6 * np.ptp(corners[:, 0])))
    moustache = hull_mask(xy[[98, 327, SUBNASALE, 61, 291, UPPER_LIP_TOP, 37, 267, 40, 270]], (w, h), grow=0.02 * face_h)
    put("moustache", moustache & oval & (ys <= lip_top + 0.02 * face_h))
    put("nose", hull_mask(xy[list(groups["nose"]) + [98, 327]], (w, h), grow=0.01 * face_h) & (ys < nose_base + 0.01 * face_h))
    for loop in (RIGHT_EYE, LEFT_EYE):
        opening = polygon_mask(xy[list(loop)], (w, h))
        put("eyelids", _grow(opening, 0.045 * face_h) & oval)
    put("eyebrows", hull_mask(xy[list(groups["right_eyebrow"])], (w, h), grow=0.01 * face_h)
        | hull_mask(xy[list(groups["left_eyebrow"])], (w, h), grow=0.01 * face_h))
    for side, loop in (("right", RIGHT_EYE), ("left", LEFT_EYE)):
        opening = polygon_mask(xy[list(loop)], (w, h))
        centre, ring = IRIS_CENTRES[side]
        radius = float(np.linalg.norm(xy[list(ring)] - xy[centre], axis=1).mean())
        iris = (xs - xy[centre, 0]) ** 2 + (ys - xy[centre, 1]) ** 2 <= radius ** 2
        put("sclera", opening)
        put("irises", opening & iris)
    inner = polygon_mask(xy[list(LIPS_INNER)], (w, h))
    put("lips", polygon_mask(xy[list(LIPS_OUTER)], (w, h)) & ~inner)
    put("mouth", inner)
    person = person_mask > 0.5
    jaw_level = 0.5 * (xy[172, 1] + xy[397, 1])
    outside = person & ~_grow(oval, 0.015 * face_h)
    put("neck", outside & (ys > jaw_level) & (np.abs(xs - xy[152, 0]) < 0.45 * np.ptp(xy[:, 0])))
    put("hair", outside & (ys <= jaw_level))
    # Fringes: above the brows, inside the oval, pixels unlike the skin's colour.
    skin = skin_mask(landmarks, (w, h))
    if skin.sum() < 2:  # a face of a few pixels: no skin colour to compare with
        return labels
    lab = _lab(rgb)
    mean, std = lab[skin].mean(0), lab[skin].std(0) + 1e-3
    unlike = (((lab - mean) / std) ** 2).sum(-1) > 3.0 ** 2 * 3
    put("hair", oval & (ys < brows[:, 1].min()) & unlike & person)
    return labels


def _lab(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(rgb.astype(np.float64) / 255.0)


def head_region_grid(labels_2d: np.ndarray, sdf: "torch.Tensor", surface: "torch.Tensor", bounds: "torch.Tensor",
                     camera, mirror, landmarks: np.ndarray, unseen=None) -> "torch.Tensor":
    """[D, H, W] uint8 region label of each voxel near the head surface (0 elsewhere).

    A surface point the input camera sees takes the photo's label where it projects; an unseen point the
    label of its mirror image across the face's symmetry plane when that is seen; otherwise a rule on
    the head: below the chin is neck, at the sides at ear height is ears, the rest is hair.

    Args:
        labels_2d: [h, w] photo labels (``photo_region_labels``).
        sdf: [D, H, W] signed distance grid; surface: [4, D, H, W] normals and visibility.
        bounds: [2, 3] world box; camera: the input camera; mirror: [N, 3] -> [N, 3] reflection.
        landmarks: [478, 3] world landmarks.
        unseen: optional labeller of world points [N, 3] -> [N] uint8 region ids for points neither the
            camera nor its mirror image saw (e.g. the head model's own regions); default: the rule.
    """
    import torch
    import torch.nn.functional as F

    step = float((bounds[1, 0] - bounds[0, 0]) / (sdf.shape[-1] - 1))
    near = torch.nonzero(sdf.abs() < 3 * step)
    counts = torch.tensor(sdf.shape[::-1], dtype=torch.float32)
    points = bounds[0] + near.flip(-1).float() / (counts - 1) * (bounds[1] - bounds[0])
    normals = surface[:3, near[:, 0], near[:, 1], near[:, 2]].T
    points = points - sdf[near[:, 0], near[:, 1], near[:, 2]][:, None] * normals

    def lookup_visibility(p):
        coords = ((p - bounds[0]) / (bounds[1] - bounds[0]) * 2 - 1).reshape(1, 1, 1, -1, 3)
        return F.grid_sample(surface[None, 3:], coords, align_corners=True).reshape(-1)

    def photo_label(p):
        uv = camera.project(p)[0].round().long()
        u, v = uv[:, 0].clamp(0, labels_2d.shape[1] - 1), uv[:, 1].clamp(0, labels_2d.shape[0] - 1)
        return torch.from_numpy(labels_2d)[v, u]

    mirrored = torch.from_numpy(mirror(points.numpy().astype(np.float64)).astype(np.float32))
    seen, seen_mirror = lookup_visibility(points) > 0.3, lookup_visibility(mirrored) > 0.3
    lm = torch.from_numpy(landmarks.astype(np.float32))
    ear_x = 0.5 * (lm[454, 0] - lm[234, 0])
    ear_y, ear_z = 0.5 * (lm[454, 1] + lm[234, 1]), 0.5 * (lm[454, 2] + lm[234, 2])
    rule = torch.full((len(points),), REGION_ID["hair"], dtype=torch.uint8)
    ears = ((points[:, 0].abs() > 0.85 * ear_x) & ((points[:, 1] - ear_y).abs() < 0.15)
            & ((points[:, 2] - (ear_z - 0.12)).abs() < 0.15))
    rule[ears] = REGION_ID["ears"]
    rule[points[:, 1] < lm[152, 1] - 0.05] = REGION_ID["neck"]
    if unseen is not None:
        rule = unseen(points)
    label = torch.where(seen, photo_label(points), torch.where(seen_mirror, photo_label(mirrored), rule))
    label = torch.where(label == 0, rule, label)
    grid = torch.zeros(sdf.shape, dtype=torch.uint8)
    grid[near[:, 0], near[:, 1], near[:, 2]] = label
    return grid
