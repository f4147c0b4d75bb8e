"""The embedded editor's edits: each turns one ``EditRequest`` into changes of the field's albedo
textures and geometry (see ``canvas.py``). Colours are sRGB hex in requests and linear RGB here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from face_nerf.edit import anatomy
from face_nerf.edit.canvas import EditCanvas, Handle, add_object, deform, handle_displacement, luminance, recolour, value_noise
from face_nerf.edit.prompt import COLOURS, EditRequest
from face_nerf.errors import FaceLabError
from face_nerf.lighting import srgb_to_linear
from face_nerf.regions import BEARD_AREA, FACE_REGIONS, LEFT_EYE, MOUTH_CORNERS, REGIONS, RIGHT_EYE, SKIN_REGIONS

COLOUR_TARGETS = {"lips": ("lips",), "irises": ("irises",), "hair": ("hair",), "eyebrows": ("eyebrows",),
                  "skin": SKIN_REGIONS + ("ears", "neck")}
WHOLE_HEAD = tuple(REGIONS)


def linear(hex_colour: str) -> Tensor:
    """'#rrggbb' -> [3] linear RGB."""
    return srgb_to_linear(torch.tensor([int(hex_colour[i:i + 2], 16) / 255.0 for i in (1, 3, 5)]))


def _amount(base: float, request: EditRequest) -> float:
    return min(1.0, base * request.strength)


def colour_region(canvas: EditCanvas, request: EditRequest) -> str:
    """Lips, irises, hair, eyebrows or skin to a colour, or darker / lighter."""
    regions = COLOUR_TARGETS[request.target]
    if request.factor is not None:
        factor = request.factor ** min(request.strength, 1.5)
        canvas.paint(regions, lambda a, p: a * factor, 1.0)
        return "darker" if request.factor < 1 else "lighter"
    if request.colour is None:
        raise ValueError(f"No colour given for {request.target}.")
    reference = float(luminance(canvas.mean_albedo(regions)[:, None])[0, 0])
    detail = 0.5 if request.target == "irises" else 1.0
    canvas.paint(regions, recolour(linear(request.colour), reference, detail), _amount(0.85, request),
                 blur=0.6 if request.target == "irises" else 1.0)
    return request.colour


def makeup(canvas: EditCanvas, request: EditRequest) -> str:
    """Lipstick, blush, eyeshadow and eyeliner."""
    kind = request.target
    defaults = {"lipstick": COLOURS["red"], "blush": "#e8788a", "eyeshadow": "#6a4a7a", "eyeliner": "#141414"}
    colour = request.colour or defaults[kind]
    target = linear(colour)
    if kind == "lipstick":
        reference = float(luminance(canvas.mean_albedo(("lips",))[:, None])[0, 0])
        canvas.paint(("lips",), recolour(target, reference, 0.7), _amount(0.85, request), blur=0.8)
    elif kind == "blush":
        canvas.paint(("cheeks",), lambda a, p: a * (target / target.max()).view(3, *[1] * (a.dim() - 1)) * 1.1,
                     _amount(0.45, request), blur=8.0)
    else:
        eye_y = float(canvas.field.landmarks[list(RIGHT_EYE + LEFT_EYE), 1].mean())
        above = (lambda p: ((p[..., 1] - eye_y) / 0.02).clamp(0.0, 1.0)) if kind == "eyeshadow" else \
            (lambda p: ((p[..., 1] - eye_y) / 0.01).clamp(0.0, 1.0) * ((eye_y + 0.05 - p[..., 1]) / 0.02).clamp(0.0, 1.0))

        def shade(a: Tensor, p: Tensor) -> Tensor:
            w = above(p)[None]
            painted = target.view(3, *[1] * (a.dim() - 1)) * (0.6 + 0.4 * luminance(a) / luminance(a).mean().clamp(min=1e-4))
            return a + w * (painted - a)

        canvas.paint(("eyelids",), shade, _amount(0.7 if kind == "eyeshadow" else 0.9, request), blur=1.5)
    return colour


def facial_hair(canvas: EditCanvas, request: EditRequest) -> str:
    """Beard, moustache or stubble, in a colour (default: the hair's): a hair layer grown over the head
    model's jaw (or painted on the beard area of a field made without the head model)."""
    hair = canvas.mean_albedo(("hair",))
    target = linear(request.colour) if request.colour else hair
    seed = {"beard": 11, "moustache": 12, "stubble": 13}[request.target]
    thickness = anatomy.facial_hair_thickness(canvas.field, request.target, min(request.strength, 1.6))
    if thickness is not None and thickness.max() > 0:
        _grow_layer(canvas.field, thickness, target, seed, request.target == "stubble")
    else:
        _paint_facial_hair(canvas, request, target, seed)
    return "#%02x%02x%02x" % tuple(int(v) for v in (torch.clamp(target, 0, 1) ** (1 / 2.2) * 255).tolist())


def _grow_layer(field, thickness, target: Tensor, seed: int, stubble: bool) -> None:
    """Join a layer ``thickness`` [V] thick over the head model to the field, with strand-textured albedo."""
    vertices = field.head_vertices
    grown = thickness > 1e-4
    margin = float(thickness.max()) + 3 * field.voxel_size
    box = torch.stack([vertices[grown].amin(0) - margin, vertices[grown].amax(0) + margin])

    def layer(points: Tensor) -> tuple[Tensor, Tensor]:
        t = anatomy.thickness_at(field, thickness, points)
        sdf = torch.where(t > 1e-3, field.sdf(points) - t, torch.ones_like(t))
        strands = value_noise(points * torch.tensor([1.0, 0.3, 1.0]), 160.0 if stubble else 90.0, seed)
        colour = target[None] * (0.55 + 0.9 * strands[:, None])
        return sdf, colour

    add_object(field, layer, box)


def _paint_facial_hair(canvas: EditCanvas, request: EditRequest, target: Tensor, seed: int) -> None:
    regions = {"beard": BEARD_AREA, "moustache": ("moustache",), "stubble": BEARD_AREA}[request.target]
    density = 0.35 if request.target == "stubble" else 0.92

    def grow(a: Tensor, p: Tensor) -> Tensor:
        strands = value_noise(p, 180.0 if request.target == "stubble" else 90.0, seed)[None]
        texture = target.view(3, *[1] * (a.dim() - 1)) * (0.55 + 0.9 * strands)
        if request.target == "stubble":
            dots = (strands > 0.5).float()
            return a * (1 - 0.6 * dots) + dots * 0.6 * texture
        return texture

    canvas.paint(regions, grow, _amount(density, request), blur=2.5)


def age(canvas: EditCanvas, request: EditRequest) -> str:
    """Older (wrinkles, greying, sagging) or younger (smoother skin, fuller colour)."""
    s = request.strength
    if request.target == "older":
        offsets = anatomy.model_offsets(canvas.field, anatomy.AGE_TARGETS, {}, 0.6 * s, anatomy.AGE_REGIONS)
        if offsets is not None:  # the head model's own ageing: sagging cheeks and jaw, a longer nose
            deform(canvas, anatomy.model_displacement(canvas.field, offsets))
        else:
            lm = canvas.field.landmarks
            jowls = [Handle(tuple(lm[i].tolist()), (0.0, -0.018 * s, -0.004 * s), 0.07) for i in (172, 397, 136, 365)]
            deform(canvas, handle_displacement(jowls))

        def wrinkle(a: Tensor, p: Tensor) -> Tensor:
            lines = value_noise(p * torch.tensor([0.25, 4.0, 0.25]), 14.0, 21, octaves=2)  # mostly horizontal
            creases = (1.0 - ((lines - 0.5).abs() / 0.06).clamp(0.0, 1.0))[None]
            grey = luminance(a).expand_as(a) * torch.tensor([1.02, 1.0, 0.95]).view(3, *[1] * (a.dim() - 1))
            return (a + 0.35 * (grey - a)) * (1.0 - 0.35 * creases)

        canvas.paint(SKIN_REGIONS + ("eyelids",), wrinkle, min(1.0, 0.9 * s), blur=2.0)
        grey = linear(COLOURS["grey"]) * 1.6
        for regions in (("hair",), ("eyebrows",)):
            reference = float(luminance(canvas.mean_albedo(regions)[:, None])[0, 0])
            canvas.paint(regions, recolour(grey, reference, 0.8), min(1.0, 0.75 * s))
        return "wrinkles, greying, sagging"
    offsets = anatomy.model_offsets(canvas.field, anatomy.AGE_TARGETS, {}, -0.15 * s, anatomy.AGE_REGIONS)
    if offsets is not None:
        deform(canvas, anatomy.model_displacement(canvas.field, offsets))
    blurred = _blur(canvas.photo_albedo, 2.5)
    smooth = lambda a, p: blurred if a.shape == blurred.shape else a
    canvas.paint(SKIN_REGIONS, smooth, min(1.0, 0.8 * s), blur=2.0)
    canvas.paint(SKIN_REGIONS + ("lips",), lambda a, p: _saturate(a, 1.25) * 1.05, min(1.0, 0.7 * s), blur=2.0)
    return "smoother skin, fuller colour"


def expression(canvas: EditCanvas, request: EditRequest) -> str:
    """Smile, frown, open mouth or raised eyebrows: the head model's facial actions, or (a field made
    without it) moving the surface around the landmarks."""
    lm = canvas.field.landmarks
    s = request.strength
    offsets = anatomy.model_offsets(canvas.field, *anatomy.ANATOMY[request.target], s)
    if offsets is not None:
        deform(canvas, anatomy.model_displacement(canvas.field, offsets))
        if request.target == "open mouth":
            _dark_mouth(canvas, lm, s)
        return DESCRIPTIONS[request.target]
    at = lambda i: tuple(lm[i].tolist())
    kind = request.target
    if kind == "smile":
        right, left = MOUTH_CORNERS
        handles = [Handle(at(right), (-0.035 * s, 0.022 * s, -0.008 * s), 0.06),
                   Handle(at(left), (0.035 * s, 0.022 * s, -0.008 * s), 0.06),
                   Handle(at(205), (-0.006 * s, 0.012 * s, 0.006 * s), 0.06),
                   Handle(at(425), (0.006 * s, 0.012 * s, 0.006 * s), 0.06)]
    elif kind == "frown":
        right, left = MOUTH_CORNERS
        handles = [Handle(at(right), (0.006 * s, -0.025 * s, 0.0), 0.05), Handle(at(left), (-0.006 * s, -0.025 * s, 0.0), 0.05),
                   Handle(at(55), (0.008 * s, -0.015 * s, 0.0), 0.04), Handle(at(285), (-0.008 * s, -0.015 * s, 0.0), 0.04)]
    elif kind == "open mouth":
        handles = [Handle(at(i), (0.0, -0.05 * s, -0.01 * s), 0.09) for i in (17, 152)]
        deform(canvas, handle_displacement(handles))
        _dark_mouth(canvas, lm, s)
        return DESCRIPTIONS["open mouth"]
    else:  # raised eyebrows
        handles = [Handle(at(i), (0.0, 0.035 * s, 0.0), 0.05) for i in (105, 66, 334, 296, 70, 300)]
    deform(canvas, handle_displacement(handles))
    return DESCRIPTIONS[kind]


def _dark_mouth(canvas: EditCanvas, lm: Tensor, s: float) -> None:
    """Paint the gap between the lips of an opened mouth dark (the inside of the mouth)."""
    gap_top, gap_bottom = float(lm[13, 1]), float(lm[14, 1]) - 0.05 * s
    mouth_x = float(lm[13, 0])
    half = 0.45 * float(lm[291, 0] - lm[61, 0])

    def interior(a: Tensor, p: Tensor) -> Tensor:
        inside = (((gap_top - p[..., 1]) * (p[..., 1] - gap_bottom)) > 0) & ((p[..., 0] - mouth_x).abs() < half)
        return torch.where(inside[None], torch.full_like(a, 0.02), a)

    canvas.paint(("mouth", "lips", "chin", "beard"), interior, 1.0, blur=0.5)


def anatomy_edit(canvas: EditCanvas, request: EditRequest) -> str:
    """A wink, a bigger nose, pointed ears, a strong chin or a wider face: the head model's facial
    actions and shape targets.

    Raises:
        FaceLabError: the field was made without the head model (an old field file).
    """
    offsets = anatomy.model_offsets(canvas.field, *anatomy.ANATOMY[request.target], request.strength)
    if offsets is None:
        raise FaceLabError(f"'{request.target}' needs the head model, which this field was made without; "
                           "reconstruct the photo again to use it.")
    deform(canvas, anatomy.model_displacement(canvas.field, offsets))
    return DESCRIPTIONS[request.target]


DESCRIPTIONS = {"smile": "mouth corners up and out", "frown": "mouth corners down", "raised eyebrows": "brows up",
                "open mouth": "jaw dropped", "wink": "left eye closed", "bigger nose": "nose larger",
                "pointed ears": "ears pointed", "strong chin": "chin forward and wider",
                "wider face": "head and cheekbones wider"}


def material(canvas: EditCanvas, request: EditRequest) -> str:
    """Looks of the whole head or its skin: marble, bronze, gold, zombie, vampire, pale, tanned,
    sunburnt, clown paint."""
    kind, s = request.target, request.strength
    amount = min(1.0, 0.95 * s)
    expand = lambda t, a: t.view(3, *[1] * (a.dim() - 1))
    if kind == "marble":
        def marble(a: Tensor, p: Tensor) -> Tensor:
            veins = torch.exp(-((value_noise(p, 5.0, 31) - 0.5).abs() / 0.03))[None]
            base = 0.72 + 0.25 * (luminance(a) / luminance(a).mean().clamp(min=1e-4)).clamp(0, 1.5) ** 0.5 * 0.4
            return expand(torch.tensor([0.93, 0.92, 0.9]), a) * base * (1.0 - 0.45 * veins)
        canvas.paint(WHOLE_HEAD, marble, amount)
    elif kind in ("bronze", "gold"):
        tint = torch.tensor([0.45, 0.25, 0.09]) if kind == "bronze" else torch.tensor([0.85, 0.58, 0.18])
        canvas.paint(WHOLE_HEAD, lambda a, p: expand(tint, a) * (0.4 + 1.2 * (luminance(a) / luminance(a).mean().clamp(min=1e-4)).clamp(0, 2) ** 0.7), amount)
    elif kind == "zombie":
        canvas.paint(SKIN_REGIONS + ("ears", "neck", "lips"), lambda a, p: expand(torch.tensor([0.22, 0.28, 0.17]), a)
                     * (luminance(a) / luminance(a).mean().clamp(min=1e-4)).clamp(0, 2), amount)
        canvas.paint(("eyelids",), lambda a, p: a * 0.35, amount, blur=2.0)
        canvas.paint(("irises",), lambda a, p: expand(torch.tensor([0.7, 0.7, 0.6]), a), amount)
    elif kind == "vampire":
        canvas.paint(SKIN_REGIONS + ("ears", "neck"), lambda a, p: _saturate(a, 0.3) * 1.5 + 0.05, amount)
        canvas.paint(("lips",), recolour(linear("#5a0010"), 0.15, 0.6), amount)
        canvas.paint(("irises",), recolour(linear("#b00018"), 0.1, 0.5), amount)
        canvas.paint(("eyelids",), lambda a, p: a * 0.5, 0.6 * amount, blur=2.0)
    elif kind == "pale":
        canvas.paint(SKIN_REGIONS + ("ears", "neck"), lambda a, p: _saturate(a, 0.45) * 1.4 + 0.04, min(1.0, 0.8 * s))
    elif kind == "tanned":
        canvas.paint(SKIN_REGIONS + ("ears", "neck"), lambda a, p: _saturate(a, 1.2) * expand(torch.tensor([0.62, 0.47, 0.33]), a),
                     min(1.0, 0.8 * s))
    elif kind == "sunburnt":
        canvas.paint(("nose", "cheeks", "forehead"), lambda a, p: a * expand(torch.tensor([1.35, 0.7, 0.65]), a),
                     min(1.0, 0.8 * s), blur=6.0)
    elif kind == "clown":
        nose = canvas.field.landmarks[1]
        canvas.paint(SKIN_REGIONS + ("ears", "neck"), lambda a, p: torch.full_like(a, 0.85), amount)
        canvas.paint(FACE_REGIONS, lambda a, p: torch.where(((p - nose).norm(dim=-1) < 0.055)[None],
                                                            expand(torch.tensor([0.75, 0.01, 0.01]), a), a), 1.0, blur=0.5)
        canvas.paint(("lips",), lambda a, p: expand(torch.tensor([0.8, 0.01, 0.02]), a), amount)
        canvas.paint(("eyelids",), lambda a, p: expand(torch.tensor([0.05, 0.2, 0.8]), a), amount, blur=1.0)
    return kind


def glasses(canvas: EditCanvas, request: EditRequest) -> str:
    """Glasses or sunglasses: rims, bridge and temples joined to the head's surface, lenses dark for
    sunglasses; coloured frames when a colour is given."""
    lm = canvas.field.landmarks
    right_eye, left_eye = lm[468], lm[473]
    front = float(torch.maximum(lm[168, 2], torch.maximum(right_eye[2], left_eye[2]))) + 0.07
    half = torch.tensor([0.13, 0.085])
    rim, depth, round_ = 0.014, 0.02, 0.04
    sun = request.target == "sunglasses"
    frame_colour = linear(request.colour) if request.colour else torch.tensor([0.02, 0.02, 0.02])
    ear_r, ear_l = lm[234].clone(), lm[454].clone()

    def rect(p: Tensor, centre: Tensor) -> Tensor:
        q = (p[:, :2] - centre[:2]).abs() - (half - round_)
        return q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0) - round_

    def capsule(p: Tensor, a: Tensor, b: Tensor, r: float) -> Tensor:
        ab = b - a
        t = (((p - a) @ ab) / (ab @ ab)).clamp(0, 1)
        return (p - (a + t[:, None] * ab)).norm(dim=-1) - r

    y = float(right_eye[1] + left_eye[1]) / 2 + 0.02
    bridge = [torch.tensor([float(right_eye[0]) + 0.13, y, front]), torch.tensor([float(left_eye[0]) - 0.13, y, front])]
    temples = [(torch.tensor([float(eye[0]) + sign * 0.13, float(eye[1]), front]),
                torch.tensor([float(ear[0]) + sign * 0.01, float(ear[1]) + 0.03, float(ear[2]) - 0.05]))
               for eye, ear, sign in ((right_eye, ear_r, -1.0), (left_eye, ear_l, 1.0))]

    def parts(p: Tensor) -> tuple[Tensor, Tensor]:
        slab = (p[:, 2] - front).abs() - depth / 2
        rims = torch.minimum(rect(p, right_eye), rect(p, left_eye))
        frames = torch.maximum(rims.abs() - rim / 2, slab)
        frames = torch.minimum(frames, capsule(p, *bridge, rim / 2))
        for hinge, back in temples:
            frames = torch.minimum(frames, capsule(p, hinge, back, rim / 2))
        lenses = torch.maximum(rims, (p[:, 2] - front).abs() - 0.004) if sun else torch.full_like(frames, 1e3)
        return frames, lenses

    def glasses_object(p: Tensor) -> tuple[Tensor, Tensor]:
        frames, lenses = parts(p)
        lens = torch.tensor([0.008, 0.008, 0.012])
        return torch.minimum(frames, lenses), torch.where((lenses < frames)[:, None], lens, frame_colour)

    extent = torch.tensor([half[0], half[1], depth / 2])
    corners = [torch.tensor([float(eye[0]), float(eye[1]), front]) + sign * extent
               for eye in (right_eye, left_eye) for sign in (-1.0, 1.0)]
    ends = torch.stack(corners + bridge + [end for temple in temples for end in temple])
    add_object(canvas.field, glasses_object, torch.stack([ends.amin(0) - rim, ends.amax(0) + rim]))
    return "dark lenses" if sun else "clear lenses"


def _saturate(albedo: Tensor, factor: float) -> Tensor:
    grey = luminance(albedo)
    return grey + factor * (albedo - grey)


def _blur(image: Tensor, sigma: float) -> Tensor:
    from scipy.ndimage import gaussian_filter

    return torch.from_numpy(gaussian_filter(image.numpy(), (0, sigma, sigma)))


EDIT_FAMILIES = {
    **{t: colour_region for t in COLOUR_TARGETS},
    **{t: makeup for t in ("lipstick", "blush", "eyeshadow", "eyeliner")},
    **{t: facial_hair for t in ("beard", "moustache", "stubble")},
    "older": age, "younger": age,
    **{t: expression for t in ("smile", "frown", "open mouth", "raised eyebrows")},
    **{t: anatomy_edit for t in ("wink", "bigger nose", "pointed ears", "strong chin", "wider face")},
    **{t: material for t in ("marble", "bronze", "gold", "zombie", "vampire", "pale", "tanned", "sunburnt", "clown")},
    "glasses": glasses, "sunglasses": glasses,
}
GEOMETRY_FIRST = ("smile", "frown", "open mouth", "raised eyebrows", "older", "younger", "wink", "bigger nose",
                  "pointed ears", "strong chin", "wider face")  # move before painting
