"""The colour half of the compiled march (NVIDIA Warp, CPU and CUDA): a field that describes its colour as
grids and images (``GridAppearance``, the head field's) rendered whole, one kernel a ray, on ``march``'s
tracing and band.

- ``march_surface``: rays given: band, colour lookups at the kept samples (or once, at the ray's
  expected depth), each ray's opacity, depth, composited albedo and normal, nothing kept between them;
- ``march_views``: the same for whole images, each ray made in the kernel from its camera, written
  straight into a G-buffer (opacity, albedo, normal per pixel); a thread traces two neighbouring
  pixels' rays a step each in turn (5% faster on the CPU than one after the other);
- ``shade_views``: the G-buffer shaded under an SH light, over the background, as display bytes.

``test_march`` and ``test_relight`` hold them to the torch path (``render.surface_band``, the field's
``attributes``, ``relight``'s shading). On the CPU, ``march_views`` and ``shade_views`` hand over to
``march_packets`` (eight rays at once, AVX2) wherever it can run: the same pixels, three times as fast.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import warp as wp
from torch import Tensor

# march's building blocks (Warp structs and functions, and its launching), shared by the kernels here
from face_nerf.march import (BLOCK, MAX_BAND_SAMPLES, _band, _band_samples, _box, _cell, _launch, _March,
                             _march_settings, _rays, _step, _traced, _Tracer, _tracer, _Volume, _volume, _warp_ready)

if TYPE_CHECKING:
    from face_nerf.render import Camera, GridAppearance, MarchSettings, SdfVolume


def _ready(device: torch.device) -> None:
    _warp_ready(device)  # march's kernels, which these build on
    _warp_ready(device, sys.modules[__name__])


# --- the colour: HeadField.attributes ------------------------------------------------------------

@wp.struct
class _Look:
    surface: wp.array3d(dtype=wp.vec4)  # [D, H, W] normal (3) and visibility, on the volume's lattice
    photo: wp.array2d(dtype=wp.vec3)  # [h, w] linear RGB
    to_photo: wp.vec2  # photo pixels per pixel of the input camera's frame (what its projections are in)
    w2c: wp.mat33
    w2c_t: wp.vec3
    eye: wp.vec3
    focal: wp.vec2
    centre: wp.vec2
    light: wp.array2d(dtype=wp.vec3)  # [1, 9] the photo's SH light (``_lights``)
    floor: float
    stretch: wp.vec2  # field.PHOTO_STRETCH
    fill: wp.array2d(dtype=wp.vec3)  # [fh, fw]
    fill_centre: wp.vec3
    overlay: wp.array3d(dtype=wp.vec4)  # [d, h, w] albedo and coverage of added objects
    overlay_lo: wp.vec3
    overlay_hi: wp.vec3
    has_overlay: int


@wp.func
def _irradiance(lights: wp.array2d(dtype=wp.vec3), row: int, n: wp.vec3) -> wp.vec3:
    # lighting.irradiance under the SH light lights[row]: sum_k A_l Y_k(n) L_k (the band factors A_l
    # folded into the light, see ``_lights``).
    x = n[0]
    y = n[1]
    z = n[2]
    e = 0.28209479 * lights[row, 0]
    e += 0.48860251 * y * lights[row, 1] + 0.48860251 * z * lights[row, 2] + 0.48860251 * x * lights[row, 3]
    e += 1.09254843 * x * y * lights[row, 4] + 1.09254843 * y * z * lights[row, 5]
    e += 0.31539157 * (3.0 * z * z - 1.0) * lights[row, 6] + 1.09254843 * x * z * lights[row, 7]
    e += 0.54627422 * (x * x - y * y) * lights[row, 8]
    return e


@wp.func
def _bilinear(image: wp.array2d(dtype=wp.vec3), x: float, y: float, wrap: bool) -> wp.vec3:
    # grid_sample(align_corners=False, padding_mode="border") at image pixel coordinates (x, y), pixel
    # centres at integers; ``wrap`` makes x periodic (sampling.sample_image's spherical textures).
    h = image.shape[0]
    w = image.shape[1]
    yc = wp.clamp(y, 0.0, float(h - 1))
    y0 = int(wp.floor(yc))
    y1 = wp.min(y0 + 1, h - 1)
    ty = yc - float(y0)
    xc = x
    if not wrap:
        xc = wp.clamp(x, 0.0, float(w - 1))
    xf = wp.floor(xc)
    tx = xc - xf
    x0 = int(xf)
    x1 = x0 + 1
    if wrap:  # x in [-0.5, w - 0.5): x0 in [-1, w - 1]
        if x0 < 0:
            x0 += w
        if x1 >= w:
            x1 -= w
    else:
        x1 = wp.min(x1, w - 1)
    return wp.lerp(wp.lerp(image[y0, x0], image[y0, x1], tx), wp.lerp(image[y1, x0], image[y1, x1], tx), ty)


@wp.func
def _trilinear4(grid: wp.array3d(dtype=wp.vec4), top: wp.vec3, f: wp.vec3) -> wp.vec4:
    # grid_sample(align_corners=True, padding_mode="border") of a 4-channel grid at lattice coordinates f.
    x0, y0, z0, t = _cell(top, f)
    x1 = wp.min(x0 + 1, grid.shape[2] - 1)
    y1 = wp.min(y0 + 1, grid.shape[1] - 1)
    z1 = wp.min(z0 + 1, grid.shape[0] - 1)
    c00 = wp.lerp(grid[z0, y0, x0], grid[z0, y0, x1], t[0])
    c01 = wp.lerp(grid[z0, y1, x0], grid[z0, y1, x1], t[0])
    c10 = wp.lerp(grid[z1, y0, x0], grid[z1, y0, x1], t[0])
    c11 = wp.lerp(grid[z1, y1, x0], grid[z1, y1, x1], t[0])
    return wp.lerp(wp.lerp(c00, c01, t[1]), wp.lerp(c10, c11, t[1]), t[2])


@wp.func
def _atan2(y: float, x: float) -> float:
    # atan2 within 1e-5 radians (a minimax polynomial on [0, 1], then the octant): a third of libm's cost,
    # and a thousandth of a fill texel.
    ax = wp.abs(x)
    ay = wp.abs(y)
    r = wp.min(ax, ay) / wp.max(wp.max(ax, ay), 1.0e-30)
    r2 = r * r
    angle = r * (0.99986600 + r2 * (-0.33029950 + r2 * (0.18014100 + r2 * (-0.08513300 + r2 * 0.02083510))))
    if ay > ax:
        angle = 0.5 * wp.pi - angle
    if x < 0.0:
        angle = wp.pi - angle
    if y < 0.0:
        angle = -angle
    return angle


@wp.func
def _attributes(v: _Volume, a: _Look, p: wp.vec3, view: wp.vec3):
    # HeadField.attributes(p, view): (albedo, unit normal).
    s = _trilinear4(a.surface, v.top, wp.cw_mul(p - v.lo, v.scale))
    normal = wp.vec3(s[0], s[1], s[2]) / wp.sqrt(wp.max(s[0] * s[0] + s[1] * s[1] + s[2] * s[2], 1.0e-12))
    visible = wp.clamp(s[3], 0.0, 1.0)
    # photo_trust: how far the photo stretches here, seen along ``view``
    to_camera = a.eye - p
    seen_in_photo = wp.dot(normal, to_camera) / wp.sqrt(wp.max(wp.dot(to_camera, to_camera), 1.0e-12))
    stretch = -wp.dot(normal, view) / wp.max(seen_in_photo, 1.0e-3)
    visible = visible * wp.clamp((a.stretch[1] - stretch) / (a.stretch[1] - a.stretch[0]), 0.0, 1.0)
    albedo = wp.vec3(0.0)
    if visible > 0.0:  # photo_albedo: the photo where the input camera sees p, over the photo's own shading
        cam = a.w2c * p + a.w2c_t
        depth = wp.max(-cam[2], 1.0e-6)
        u = a.centre[0] + a.focal[0] * cam[0] / depth
        w = a.centre[1] - a.focal[1] * cam[1] / depth
        colour = _bilinear(a.photo, u * a.to_photo[0] - 0.5, w * a.to_photo[1] - 0.5, False)
        shading = _irradiance(a.light, 0, normal)
        albedo = visible * wp.vec3(colour[0] / wp.max(shading[0], a.floor), colour[1] / wp.max(shading[1], a.floor),
                                   colour[2] / wp.max(shading[2], a.floor))
    if visible < 1.0:  # the fill: spherical_uv round fill_centre, the texture periodic across its width
        rel = p - a.fill_centre
        azimuth = _atan2(rel[0], rel[2])
        elevation = _atan2(rel[1], wp.sqrt(rel[0] * rel[0] + rel[2] * rel[2]))
        fill_w = float(a.fill.shape[1])
        fill_h = float(a.fill.shape[0])
        fu = (azimuth / (2.0 * wp.pi) + 0.5) * fill_w
        fv = (0.5 - elevation / wp.pi) * fill_h
        albedo += (1.0 - visible) * _bilinear(a.fill, fu - fill_w * wp.floor(fu / fill_w) - 0.5, fv - 0.5, True)
    if a.has_overlay != 0:  # HeadField._overlay
        if (p[0] >= a.overlay_lo[0] and p[1] >= a.overlay_lo[1] and p[2] >= a.overlay_lo[2]
                and p[0] <= a.overlay_hi[0] and p[1] <= a.overlay_hi[1] and p[2] <= a.overlay_hi[2]):
            top = wp.vec3(float(a.overlay.shape[2] - 1), float(a.overlay.shape[1] - 1), float(a.overlay.shape[0] - 1))
            span = a.overlay_hi - a.overlay_lo
            f = wp.vec3((p[0] - a.overlay_lo[0]) / wp.max(span[0], 1.0e-9) * top[0],
                        (p[1] - a.overlay_lo[1]) / wp.max(span[1], 1.0e-9) * top[1],
                        (p[2] - a.overlay_lo[2]) / wp.max(span[2], 1.0e-9) * top[2])
            over = _trilinear4(a.overlay, top, f)
            albedo = albedo + wp.clamp(over[3], 0.0, 1.0) * (wp.vec3(over[0], over[1], over[2]) - albedo)
    return albedo, normal


@wp.func
def _lambert(light: wp.array2d(dtype=wp.vec3), albedo: wp.vec3, n: wp.vec3) -> wp.vec3:
    # relight.lambert_shader: albedo * max(E(n), 0) under the SH light light[0]
    e = _irradiance(light, 0, n)
    return wp.vec3(albedo[0] * wp.max(e[0], 0.0), albedo[1] * wp.max(e[1], 0.0), albedo[2] * wp.max(e[2], 0.0))


@wp.func
def _whole_ray(v: _Volume, m: _March, a: _Look, floor_fraction: float, shading: wp.array2d(dtype=wp.vec3), lit: int,
               o: wp.vec3, d: wp.vec3):
    # One ray, whole: render.surface_band, render._keep_samples, the colour lookups, compositing.
    # Returns (reaches the band, opacity, expected depth, albedo, unit normal), the albedo and normal
    # composited per unit opacity; with ``lit``, each sample's albedo is shaded first (Lambert under the
    # SH light shading[0]): the colour returned is then the ray's radiance per unit opacity.
    t_near, t_far = _box(v, o, d)
    return _traced_ray(v, m, a, floor_fraction, shading, lit, _traced(v, m, o, d, t_near, t_far))


@wp.func
def _traced_ray(v: _Volume, m: _March, a: _Look, floor_fraction: float, shading: wp.array2d(dtype=wp.vec3), lit: int,
                r: _Tracer):
    # ``_whole_ray`` once its tracing has stopped: the band, the colour lookups, compositing.
    hit, crossed, start, stop = _band(m, r)
    o = r.o
    d = r.d
    if not hit:
        return False, 0.0, 0.0, wp.vec3(0.0), wp.vec3(0.0)
    weights, t_at = _band_samples(v, m, r, crossed, start, stop)
    total = float(0.0)
    expected = float(0.0)
    for j in range(m.samples):
        total += weights[j]
        expected += weights[j] * t_at[j]
    if m.every_sample == 0:  # one lookup, where the ray's opacity is on average: its expected depth
        colour, n = _attributes(v, a, o + (expected / wp.max(total, 1.0e-12)) * d, d)
        if lit != 0:
            colour = _lambert(shading, colour, n)
        return True, total, expected, colour, n
    # Colour only where the weight is: the samples holding weight_floor of the ray's.
    kept = float(0.0)
    for j in range(m.samples):
        if weights[j] >= floor_fraction * total:
            kept += weights[j]
    colours = wp.vec3(0.0)  # a lookup at each, composited (the ray's albedo and normal per unit opacity)
    normals = wp.vec3(0.0)
    for j in range(m.samples):
        if weights[j] >= floor_fraction * total:
            c, n = _attributes(v, a, o + t_at[j] * d, d)
            if lit != 0:
                c = _lambert(shading, c, n)
            colours += weights[j] * c
            normals += weights[j] * n
    return True, total, expected, colours / wp.max(kept, 1.0e-12), wp.normalize(normals)


@wp.kernel
def _surface(v: _Volume, m: _March, a: _Look, floor_fraction: float, shading: wp.array2d(dtype=wp.vec3), lit: int,
             offset: int,
             origins: wp.array(dtype=wp.vec3), dirs: wp.array(dtype=wp.vec3), found: wp.array(dtype=wp.int32),
             alpha: wp.array(dtype=wp.float32), depth: wp.array(dtype=wp.float32),
             albedo: wp.array(dtype=wp.vec3), normal: wp.array(dtype=wp.vec3)):
    # Given rays: each one's outputs, and whether it reached the band.
    i = offset + wp.tid()
    hit, total, expected, colour, n = _whole_ray(v, m, a, floor_fraction, shading, lit, origins[i], dirs[i])
    found[i] = int(hit)
    alpha[i] = total
    depth[i] = expected
    albedo[i] = colour
    normal[i] = n


@wp.func
def _pixel_ray(rotations: wp.array(dtype=wp.mat33), intrinsics: wp.array(dtype=wp.vec4), width: int, height: int,
               i: int):
    # Pixel i of view i // (width * height): (its view, its ray's direction) as render.Camera.rays makes it.
    view = i // (width * height)
    pixel = i - view * width * height
    row = pixel // width
    k = intrinsics[view]  # fx, fy, cx, cy
    toward = wp.vec3((float(pixel - row * width) + 0.5 - k[2]) / k[0], -(float(row) + 0.5 - k[3]) / k[1], -1.0)
    return view, wp.normalize(rotations[view] * toward)


@wp.kernel
def _views(v: _Volume, m: _March, a: _Look, floor_fraction: float, rotations: wp.array(dtype=wp.mat33),
           eyes: wp.array(dtype=wp.vec3), intrinsics: wp.array(dtype=wp.vec4), width: int, height: int, offset: int,
           alpha: wp.array(dtype=wp.float32), albedo: wp.array(dtype=wp.vec3h), normal: wp.array(dtype=wp.vec3h)):
    # Whole images, two neighbouring pixels a thread (2i and 2i + 1, the last alone when the count is odd),
    # traced step by step in turn: each waits on its distance lookups while the other's step runs.
    i = 2 * (offset + wp.tid())
    pixels = alpha.shape[0]
    view_a, d_a = _pixel_ray(rotations, intrinsics, width, height, i)
    near_a, far_a = _box(v, eyes[view_a], d_a)
    ra = _tracer(eyes[view_a], d_a, near_a, far_a)
    rb = _tracer(ra.o, ra.d, 0.0, 0.0)  # finished at once: no second pixel
    if i + 1 < pixels:
        view_b, d_b = _pixel_ray(rotations, intrinsics, width, height, i + 1)
        near_b, far_b = _box(v, eyes[view_b], d_b)
        rb = _tracer(eyes[view_b], d_b, near_b, far_b)
    for _ in range(m.max_steps):
        if ra.finished != 0 and rb.finished != 0:
            break
        if ra.finished == 0:
            ra = _step(v, m, ra)
        if rb.finished == 0:
            rb = _step(v, m, rb)
    hit, total, expected, colour, n = _traced_ray(v, m, a, floor_fraction, a.light, 0, ra)
    alpha[i] = total
    albedo[i] = wp.vec3h(colour)
    normal[i] = wp.vec3h(n)
    if i + 1 < pixels:
        hit, total, expected, colour, n = _traced_ray(v, m, a, floor_fraction, a.light, 0, rb)
        alpha[i + 1] = total
        albedo[i + 1] = wp.vec3h(colour)
        normal[i + 1] = wp.vec3h(n)


# --- shading what the views hold: relight.LightTransfer.shade ------------------------------------

@wp.func
def _srgb(c: float) -> float:
    # lighting.linear_to_srgb of one channel
    c = wp.clamp(c, 0.0, 1.0)
    if c <= 0.0031308:
        return c * 12.92
    return 1.055 * wp.pow(c, 1.0 / 2.4) - 0.055


@wp.func
def _display(linear: wp.vec3) -> wp.vec3:
    # lighting.to_display: brighter than white rolls off towards white, then sRGB.
    peak = wp.max(wp.max(linear[0], linear[1]), linear[2])
    c = linear
    if peak > 1.0:
        scaled = linear / peak
        towards_white = wp.clamp((peak - 1.0) / wp.max(peak, 1.0e-6), 0.0, 1.0)
        c = scaled + towards_white * (wp.vec3(1.0) - scaled)
    return wp.vec3(_srgb(c[0]), _srgb(c[1]), _srgb(c[2]))


@wp.func
def _byte(value: float) -> wp.uint8:
    # relight.to_uint8 of one value
    return wp.uint8(int(wp.clamp(value, 0.0, 1.0) * 255.0 + 0.5))


@wp.kernel
def _shade(alpha: wp.array(dtype=wp.float32), albedo: wp.array(dtype=wp.vec3h), normal: wp.array(dtype=wp.vec3h),
           lights: wp.array2d(dtype=wp.vec3), pixels: int, background: wp.vec3, offset: int,
           out: wp.array2d(dtype=wp.uint8)):
    # Pixel i of view i // pixels: albedo * max(E(normal), 0) at the pixel's opacity, over the background,
    # for display.
    i = offset + wp.tid()
    a = alpha[i]
    linear = (1.0 - a) * background
    if a > 0.0:
        e = _irradiance(lights, i // pixels, wp.vec3(normal[i]))
        c = wp.vec3(albedo[i])
        linear += wp.vec3(wp.max(a * c[0] * e[0], 0.0), wp.max(a * c[1] * e[1], 0.0), wp.max(a * c[2] * e[2], 0.0))
    shown = _display(linear)
    out[i, 0] = _byte(shown[0])
    out[i, 1] = _byte(shown[1])
    out[i, 2] = _byte(shown[2])



def lights_with_band_factors(lights: Tensor) -> Tensor:
    """SH lights [N, 9, 3] as the kernels take them: each coefficient times its Lambert band factor."""
    from face_nerf.lighting import BAND_FACTORS

    return (lights.float() * BAND_FACTORS.to(lights)[:, None]).contiguous()


def _lights(lights: Tensor) -> wp.array:
    return wp.from_torch(lights_with_band_factors(lights), dtype=wp.vec3)


def look_constants(appearance: GridAppearance) -> dict:
    """What a kernel needs of a field's colour besides its grids and images, as plain numbers: the input
    camera (w2c [3, 3] row by row, w2c_t, eye, focal, centre), photo pixels per pixel of its frame (to_photo),
    the irradiance floor, the stretch limits and the fill's centre."""
    camera = appearance.camera
    w2c = torch.linalg.inv(camera.c2w.float().cpu())
    return {"to_photo": [appearance.photo.shape[1] / camera.width, appearance.photo.shape[0] / camera.height],
            "w2c": w2c[:3, :3].flatten().tolist(), "w2c_t": w2c[:3, 3].tolist(),
            "eye": camera.c2w[:3, 3].float().tolist(), "focal": [float(camera.fx), float(camera.fy)],
            "centre": [float(camera.cx), float(camera.cy)], "floor": float(appearance.floor),
            "stretch": [float(x) for x in appearance.stretch], "fill_centre": appearance.fill_centre.float().tolist()}


def overlay_or_blank(appearance: GridAppearance) -> tuple[Tensor, list, list]:
    """The overlay [d, h, w, 4] float32 and its box's corners, or, with none, a blank 2 x 2 x 2 one in an empty box."""
    if appearance.overlay is None:
        return appearance.surface.new_zeros(2, 2, 2, 4, dtype=torch.float32), [0.0] * 3, [0.0] * 3
    bounds = appearance.overlay_bounds.float()
    return appearance.overlay.detach().float().contiguous(), bounds[0].tolist(), bounds[1].tolist()


def _look(appearance: GridAppearance) -> _Look:
    c = look_constants(appearance)
    a = _Look()
    a.surface = wp.from_torch(appearance.surface.detach().float().contiguous(), dtype=wp.vec4)
    a.photo = wp.from_torch(appearance.photo.detach().float().contiguous(), dtype=wp.vec3)
    a.fill = wp.from_torch(appearance.fill.detach().float().contiguous(), dtype=wp.vec3)
    a.to_photo, a.focal, a.centre, a.stretch = (wp.vec2(*c[k]) for k in ("to_photo", "focal", "centre", "stretch"))
    a.w2c = wp.mat33(*c["w2c"])
    a.w2c_t, a.eye, a.fill_centre = (wp.vec3(*c[k]) for k in ("w2c_t", "eye", "fill_centre"))
    a.light = _lights(appearance.light[None])
    a.floor = c["floor"]
    overlay, lo, hi = overlay_or_blank(appearance)
    a.has_overlay = int(appearance.overlay is not None)
    a.overlay_lo, a.overlay_hi = wp.vec3(*lo), wp.vec3(*hi)
    a.overlay = wp.from_torch(overlay, dtype=wp.vec4)
    return a


def _check_on_lattice(volume: SdfVolume, appearance: GridAppearance) -> None:
    """The colour's surface grid must lie on the distance grid's lattice (the kernels look both up at one
    lattice point)."""
    if tuple(appearance.surface.shape[:3]) != tuple(volume.grid.shape):
        raise ValueError(f"The surface grid {tuple(appearance.surface.shape)} must lie on the distance grid's lattice "
                         f"{tuple(volume.grid.shape)}.")


def _check_g_buffer(alpha: Tensor, albedo: Tensor, normal: Tensor) -> None:
    """``march_views`` writes into the buffers' own memory: contiguous float32 opacity, float16 albedo and normal."""
    for buffer, dtype in ((alpha, torch.float32), (albedo, torch.float16), (normal, torch.float16)):
        if buffer.dtype != dtype or not buffer.is_contiguous():
            raise ValueError(f"march_views writes into contiguous {dtype} buffers. Got {buffer.dtype}, "
                             f"contiguous {buffer.is_contiguous()}.")


def view_arrays(cameras: list[Camera], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """The cameras as the view kernels take them: rotations [N, 3, 3] (camera to world), eyes [N, 3] and
    intrinsics [N, 4] (fx, fy, cx, cy), float32 on ``device``."""
    rotations = torch.stack([c.c2w[:3, :3] for c in cameras]).float().to(device).contiguous()
    eyes = torch.stack([c.c2w[:3, 3] for c in cameras]).float().to(device).contiguous()
    intrinsics = torch.tensor([[c.fx, c.fy, c.cx, c.cy] for c in cameras], dtype=torch.float32, device=device)
    return rotations, eyes, intrinsics


def _check_band_in_registers(settings: MarchSettings, caller: str) -> None:
    """The whole-ray kernels keep a ray's band weights in registers: at most MAX_BAND_SAMPLES of them."""
    if settings.band_samples > MAX_BAND_SAMPLES:
        raise ValueError(f"{caller} takes at most {MAX_BAND_SAMPLES} band samples. Got {settings.band_samples}.")


@dataclass
class SurfaceHits:
    """Rays rendered whole by ``march_surface``: those that reach the surface band, with what a
    centroid colour lookup gives.

    Attributes:
        rays: [K] indices of the rays that come within the band.
        alpha: [K, 1] their opacity; depth: [K, 1] expected depth.
        albedo: [K, 3] linear albedo and normal: [K, 3] unit normal at the band's centroid.
    """

    rays: Tensor
    alpha: Tensor
    depth: Tensor
    albedo: Tensor
    normal: Tensor


def march_surface(volume: SdfVolume, appearance: GridAppearance, origins: Tensor, dirs: Tensor, beta: float,
                  settings: MarchSettings, light: Tensor | None = None) -> SurfaceHits:
    """Rays [R, 3] rendered whole through a grid field: band, colour lookups, compositing, what
    ``render.surface_band`` and the field's ``attributes`` give. With an SH ``light`` [9, 3] each sample is
    shaded (Lambert) before it is composited, and ``albedo`` holds the radiance per unit opacity."""
    _check_band_in_registers(settings, "march_surface")
    _check_on_lattice(volume, appearance)
    _ready(origins.device)
    v = _volume(volume)
    look = _look(appearance)
    n, device = origins.shape[0], origins.device
    found = torch.zeros(n, dtype=torch.int32, device=device)
    alpha, depth = torch.empty(n, device=device), torch.empty(n, device=device)
    albedo, normal = torch.empty(n, 3, device=device), torch.empty(n, 3, device=device)
    keep = _rays(origins, dirs)
    shading = look.light if light is None else _lights(light[None].to(device))
    _launch(_surface, n, device, [v, _march_settings(beta, settings), look, float(settings.weight_floor), shading,
                                  int(light is not None)],
            [*keep, wp.from_torch(found), wp.from_torch(alpha), wp.from_torch(depth),
             wp.from_torch(albedo, dtype=wp.vec3), wp.from_torch(normal, dtype=wp.vec3)])
    wp.synchronize_device(wp.device_from_torch(device))
    rays = torch.nonzero(found).squeeze(-1)
    return SurfaceHits(rays, alpha[rays, None], depth[rays, None], albedo[rays], normal[rays])


def march_views(volume: SdfVolume, appearance: GridAppearance, cameras: list[Camera], beta: float,
                settings: MarchSettings, alpha: Tensor, albedo: Tensor, normal: Tensor, progress=None) -> None:
    """Render whole views of one size through a grid field into what deferred shading needs: each
    pixel's opacity (alpha [N, H, W, 1] float32), albedo and unit normal ([N, H, W, 3] float16, zero
    where no ray reaches the surface), as ``march_surface`` gives them for the cameras' rays.
    ``progress(views)`` is called as blocks of pixels finish, with the views' worth done so far."""
    from face_nerf import march_packets

    _check_band_in_registers(settings, "march_views")
    _check_on_lattice(volume, appearance)
    _check_g_buffer(alpha, albedo, normal)
    device = alpha.device
    if march_packets.usable(device, settings):  # eight rays at once (AVX2): the same pixels, faster
        march_packets.march_views(volume, appearance, cameras, beta, settings, alpha, albedo, normal, progress)
        return
    _ready(device)
    v = _volume(volume)
    look = _look(appearance)
    h, w = cameras[0].height, cameras[0].width
    rotations, eyes, intrinsics = view_arrays(cameras, device)
    _launch(_views, (len(cameras) * h * w + 1) // 2, device,
            [v, _march_settings(beta, settings), look, float(settings.weight_floor), wp.from_torch(rotations, dtype=wp.mat33),
             wp.from_torch(eyes, dtype=wp.vec3), wp.from_torch(intrinsics, dtype=wp.vec4), w, h],
            [wp.from_torch(alpha.reshape(-1)), wp.from_torch(albedo.reshape(-1, 3), dtype=wp.vec3h),
             wp.from_torch(normal.reshape(-1, 3), dtype=wp.vec3h)],
            None if progress is None else (lambda done: progress(min(2 * done, len(cameras) * h * w) / (h * w))),
            BLOCK // 2)  # pairs of rays
    wp.synchronize_device(wp.device_from_torch(device))


def shade_views(alpha: Tensor, albedo: Tensor, normal: Tensor, lights: Tensor, background: Tensor) -> Tensor:
    """Views [N, H, W, 3] uint8 sRGB from their opacity [N, H, W, 1], albedo and normal [N, H, W, 3]
    (float16): view n lit by the SH light lights[n] ([N, 9, 3]), over the linear background colour [3]."""
    from face_nerf import march_packets

    device = alpha.device
    if march_packets.usable(device):  # eight pixels at once (AVX2)
        return march_packets.shade_views(alpha, albedo, normal, lights, background)
    _ready(device)
    n, h, w, _ = alpha.shape
    views = torch.empty(n, h, w, 3, dtype=torch.uint8, device=device)
    bg = wp.vec3(*background.float().tolist())
    _launch(_shade, n * h * w, device,
            [wp.from_torch(alpha.reshape(-1).contiguous()), wp.from_torch(albedo.reshape(-1, 3).contiguous(), dtype=wp.vec3h),
             wp.from_torch(normal.reshape(-1, 3).contiguous(), dtype=wp.vec3h), _lights(lights.to(device)), h * w, bg],
            [wp.from_torch(views.reshape(-1, 3))])
    wp.synchronize_device(wp.device_from_torch(device))
    return views
