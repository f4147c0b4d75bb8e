"""Cameras, rays and volume rendering of an SDF-based radiance field, as pure functions over tensors.

The field comes in as an object with ``bounds``, ``sdf(x)``, ``density(sdf)`` and ``attributes(x)``
(see ``RadianceField``); this module knows nothing of photos, models or the UI.

Rendering is real volume rendering: density along each ray is alpha-composited with transmittance,
w_i = T_i (1 - exp(-sigma_i delta_i)), T_i = prod_{j<i} exp(-sigma_j delta_j). Empty space is skipped
the way nerfacc does it, with shortcuts:
  1. rays that miss the field's bounding box are never sampled;
  2. sphere tracing on the signed distance finds where density starts along each ray, so samples are
     only placed in a narrow band around the surface (density decays like exp(-sdf / beta) outside it):
     from where the distance crosses ``enter_sdf`` beta (interpolated between the two steps round it;
     a step itself lands anywhere below that level, at times beyond the surface) to ``exit_depth``
     beta past the surface. Each sample holds its density over its segment and stands where the
     segment's weight lies (``segment_centroid``), not at its midpoint;
  3. a ray that reaches the surface is inside the closed head at the band's end, with less than
     exp(-exit_depth) of its light left: the last sample takes it (the reference absorbs it a few beta
     further on);
  4. colour and normals are looked up once per ray, at its expected depth
     (``MarchSettings.colour_at="centroid"``, the default): the surface's colour where the ray meets
     it. ``colour_at="samples"`` looks them up at each sample holding at least ``weight_floor`` of the
     ray's weight instead, as the reference does by default: a band seen at a slant spans several photo
     pixels, so that blurs the texture along the ray, and the embedded judge scores its turntables 20
     points lower (47 against 70, "fair" against "good"): sharp is the default. Each rule has its twin
     in the reference (``colour_at``), and each comes within 1 level of 255 of it over a head's
     turntable (0.36-0.55 one lookup a ray, 0.69-0.78 at every sample).
Shading happens inside the compositing: an optional ``shader(albedo, normal) -> values`` turns attributes
into what is composited (radiance under a light, see ``relight.py``); without one the albedo itself is
composited.
A field whose distance is a grid and whose colour lookups are grids too (``sdf_volume()`` and
``grid_appearance()``, the head field) is rendered whole by one compiled kernel per ray
(``march_colour.py`` on ``march.py``; Warp, CPU or CUDA): a Lambert shader (``relight.lambert_shader``)
it applies to each sample itself; any other shader once per ray, to the composited albedo and normal
(deferred shading). Any other field goes through the torch operations here, which the kernel is tested
against.
``render_rays_reference`` is the slow, obviously correct twin: dense uniform samples over the whole box,
no skipping, every one shaded (or, for the one-lookup rule, the ray shaded once at its expected depth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal, Protocol

import torch
from torch import Tensor


BOX_TOLERANCE = 1e-4  # a grid field's point this far outside its box (in [-1, 1] units) still counts as in it:
# rays start on the box, and rounding must not put their first point outside
SECANT_REACH = 2.0  # a sphere-tracing step in the band goes at most this many beta past the distance,
SECANT_SLOPE = 0.25  # and only where the distance falls at least this fast along the ray (not grazing)
Shader = Callable[[Tensor, Tensor], Tensor]  # (albedo [M, 3], normal [M, 3]) -> [M, C] composited values


class RadianceField(Protocol):
    """What the renderer needs from a field."""

    bounds: Tensor  # [2, 3] axis-aligned box (min, max) outside which density is zero
    beta: float  # density length scale: sigma = Psi_beta(-sdf) / beta, see ``sdf_to_density``

    def sdf(self, points: Tensor) -> Tensor:
        """[..., 3] -> [...] signed distance (negative inside)."""

    def attributes(self, points: Tensor, view_dirs: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """[..., 3] -> (albedo [..., 3] in [0, 1], unit normal [..., 3]); ``view_dirs`` [..., 3] are the
        directions the points are seen along (a field may use them; None: seen from nowhere in particular)."""


@dataclass
class Camera:
    """A pinhole camera, OpenGL convention (looks down its -z, y up), pixel origin at the top left.

    Attributes:
        c2w: [4, 4] camera-to-world transform.
        fx, fy: focal lengths in pixels.
        cx, cy: principal point in pixels.
        width, height: image size in pixels.
    """

    c2w: Tensor
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def rays(self) -> tuple[Tensor, Tensor]:
        """Rays through pixel centres, row-major: origins [H*W, 3], unit directions [H*W, 3]."""
        device = self.c2w.device
        v, u = torch.meshgrid(
            torch.arange(self.height, dtype=torch.float32, device=device) + 0.5,
            torch.arange(self.width, dtype=torch.float32, device=device) + 0.5,
            indexing="ij",
        )
        dirs_cam = torch.stack([(u - self.cx) / self.fx, -(v - self.cy) / self.fy, -torch.ones_like(u)], -1)
        dirs = dirs_cam.reshape(-1, 3) @ self.c2w[:3, :3].T
        dirs = dirs / dirs.norm(dim=-1, keepdim=True)
        origins = self.c2w[:3, 3].expand_as(dirs)
        return origins, dirs

    def project(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """World points [..., 3] -> (pixel coordinates [..., 2] (u right, v down), depth [...] along -z)."""
        w2c = torch.linalg.inv(self.c2w)
        cam = points @ w2c[:3, :3].T + w2c[:3, 3]
        depth = -cam[..., 2]
        safe = depth.clamp(min=1e-6)
        u = self.cx + self.fx * cam[..., 0] / safe
        v = self.cy - self.fy * cam[..., 1] / safe
        return torch.stack([u, v], -1), depth

    def scaled(self, factor: float) -> "Camera":
        """The same view at ``factor`` times the resolution."""
        return Camera(
            self.c2w, self.fx * factor, self.fy * factor, self.cx * factor, self.cy * factor,
            max(1, round(self.width * factor)), max(1, round(self.height * factor)),
        )


def look_at(eye: Tensor, target: Tensor, up: Tensor | None = None) -> Tensor:
    """[4, 4] camera-to-world matrix of a camera at ``eye`` looking at ``target`` (OpenGL)."""
    up = torch.tensor([0.0, 1.0, 0.0]) if up is None else up
    back = eye - target
    back = back / back.norm()
    right = torch.linalg.cross(up, back)
    right = right / right.norm()
    true_up = torch.linalg.cross(back, right)
    c2w = torch.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, true_up, back, eye
    return c2w


def orbit_camera(
    yaw_deg: float, pitch_deg: float, radius: float, target: Tensor, focal: float, size: int, axis: Tensor | None = None
) -> Camera:
    """A square camera on a sphere around ``target``.

    Args:
        yaw_deg: rotation about ``axis``; positive moves the camera to the subject's left (the viewer
            sees more of the subject's left cheek).
        pitch_deg: elevation; positive looks down from above.
        radius: distance to ``target``.
        target: [3] point looked at.
        focal: focal length normalised by the image size (4.2647 is a ~13 degree field of view).
        size: image width and height in pixels.
        axis: [3] unit vector in the world's y-z plane the camera turns about, and the images' up
            direction (default: the world's y axis). Yaw 0, pitch 0 is the camera on +z whatever the
            axis, so a tilted axis keeps that camera's elevation over the plane normal to it.
    """
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    offset = torch.tensor([0.0, math.sin(pitch), math.cos(pitch)], dtype=torch.float32)  # raised about x
    up = torch.tensor([0.0, 1.0, 0.0]) if axis is None else torch.nn.functional.normalize(axis.float().cpu(), dim=0)
    # Rodrigues: the raised offset turned by yaw about the axis.
    offset = (offset * math.cos(yaw) + torch.linalg.cross(up, offset) * math.sin(yaw)
              + up * torch.dot(up, offset) * (1.0 - math.cos(yaw)))
    f = focal * size
    return Camera(look_at(target + radius * offset, target, up), f, f, size / 2, size / 2, size, size)


def ray_aabb(origins: Tensor, dirs: Tensor, bounds: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Slab test. origins, dirs: [R, 3]; bounds: [2, 3]. Returns t_near [R], t_far [R], hit [R] bool."""
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0 = (bounds[0] - origins) * inv
    t1 = (bounds[1] - origins) * inv
    t_near = torch.minimum(t0, t1).amax(-1).clamp(min=0.0)
    t_far = torch.maximum(t0, t1).amin(-1)
    return t_near, t_far, t_far > t_near


def sdf_to_density(sdf: Tensor, beta: float) -> Tensor:
    """VolSDF density: sigma = Psi_beta(-sdf) / beta, Psi the Laplace CDF with scale beta.

    Opaque (sigma = 1 / beta) deep inside, 1 / (2 beta) at the surface, exp(-sdf / beta) / (2 beta) outside.
    """
    half = 0.5 * torch.exp(-sdf.abs() / beta)
    return torch.where(sdf >= 0, half, 1.0 - half) / beta


def compositing_weights(sigmas: Tensor, deltas: Tensor) -> tuple[Tensor, Tensor]:
    """Volume-rendering weights of samples along rays.

    Args:
        sigmas: [..., N] densities, non-negative.
        deltas: [..., N] lengths of the ray segments the samples stand for.

    Returns:
        weights [..., N] = T_i * alpha_i with alpha_i = 1 - exp(-sigma_i delta_i), and
        transmittance [..., N] T_i = prod_{j<i} (1 - alpha_j) (light reaching sample i).
    """
    if sigmas.shape != deltas.shape:
        raise ValueError(f"sigmas and deltas must have the same shape. Got {tuple(sigmas.shape)} and {tuple(deltas.shape)}.")
    optical = sigmas * deltas
    alphas = 1.0 - torch.exp(-optical)
    accumulated = torch.cumsum(optical, dim=-1)
    transmittance = torch.exp(-torch.cat([torch.zeros_like(accumulated[..., :1]), accumulated[..., :-1]], -1))
    return transmittance * alphas, transmittance


@dataclass
class RenderOutput:
    """Per-ray (or per-pixel, once reshaped) rendering results.

    Attributes:
        rgb: [..., C] composited shader output, premultiplied by alpha (the albedo, C = 3, without a shader).
        alpha: [..., 1] accumulated opacity = sum of weights, in [0, 1].
        depth: [..., 1] expected ray distance of the surface (0 where alpha is 0).
        normal: [..., 3] composited world-space normal (not renormalised).
    """

    rgb: Tensor
    alpha: Tensor
    depth: Tensor
    normal: Tensor

    def reshape(self, *shape: int) -> "RenderOutput":
        """Each field reshaped to ``shape`` plus its channel count."""
        return RenderOutput(*(t.reshape(*shape, t.shape[-1]) for t in (self.rgb, self.alpha, self.depth, self.normal)))

    def over(self, background: Tensor) -> Tensor:
        """rgb composited over a background colour [3] or image [..., 3]."""
        return self.rgb + (1.0 - self.alpha) * background


@dataclass(frozen=True)
class SdfVolume:
    """A signed distance given by a grid: trilinear inside ``bounds``, |value| + ``margin`` outside (more
    than ``BOX_TOLERANCE`` of the half box outside).

    Attributes:
        grid: [D, H, W] float32 distances at the lattice points (z, y, x), corners on ``bounds``.
        bounds: [2, 3] the box's lower and upper (x, y, z) corners.
        margin: added to the border value outside the box (one voxel: outside is never the surface).
    """

    grid: Tensor
    bounds: Tensor
    margin: float


@dataclass(frozen=True)
class GridAppearance:
    """A field's colour as grids and images, what ``HeadField.attributes`` looks up, for the compiled
    renderer (``march_colour.march_surface``), which looks it up in the same way.

    Attributes (channels last, so that one lookup reads neighbouring memory):
        surface: [D, H, W, 4] normal (3, not yet normalised) and photo visibility, on the distance grid's lattice.
        photo: [h, w, 3] the photo's linear colour; camera: the input camera (its frame, not the photo's
            pixel size, is what projections are in).
        light: [9, 3] the photo's SH light; floor: the photo is divided by max(its irradiance, floor).
        stretch: the photo's stretch at which the fill starts to take over, and where it has fully.
        fill: [fh, fw, 3] the spherical fill texture round ``fill_centre`` [3].
        overlay: [d, h, w, 4] albedo and coverage of added objects over ``overlay_bounds`` [2, 3], or None.
    """

    surface: Tensor
    photo: Tensor
    camera: Camera
    light: Tensor
    floor: float
    stretch: tuple[float, float]
    fill: Tensor
    fill_centre: Tensor
    overlay: Tensor | None = None
    overlay_bounds: Tensor | None = None


@dataclass(frozen=True)
class MarchSettings:
    """How rays are marched.

    Attributes:
        band_samples: samples placed in the narrow band around the surface.
        max_steps: sphere-tracing iterations before a ray is given up.
        step_scale: sphere-tracing step as a fraction of the distance (< 1 because the SDF is approximate).
        enter_sdf: band starts where the distance first drops below this many beta.
        exit_depth: band ends this many beta past the surface (transmittance is ~exp(-exit_depth) there).
        weight_floor: samples with less than this fraction of their ray's opacity get no colour lookup
            (``colour_at="samples"``).
        colour_at: "centroid", one colour lookup per ray, at its expected depth; "samples", one per kept
            sample (shortcut 4).
        chunk: rays processed at once (bounds memory).
        kernel: march grid fields with the compiled kernel (``march.py``); off, with torch operations.
    """

    band_samples: int = 12
    max_steps: int = 48
    step_scale: float = 0.9
    enter_sdf: float = 6.0
    exit_depth: float = 6.0
    weight_floor: float = 0.02
    chunk: int = 1 << 18
    kernel: bool = True
    colour_at: Literal["centroid", "samples"] = "centroid"

    def __post_init__(self):
        check_colour_rule(self.colour_at)


def check_colour_rule(colour_at: str) -> None:
    """Raise ValueError unless ``colour_at`` is a colour rule: "centroid" or "samples"."""
    if colour_at not in ("centroid", "samples"):
        raise ValueError(f"colour_at must be 'centroid' or 'samples'. Got {colour_at!r}.")


def sphere_trace(
    sdf_fn, origins: Tensor, dirs: Tensor, t_near: Tensor, t_far: Tensor, beta: float, settings: MarchSettings
) -> tuple[Tensor, Tensor, Tensor]:
    """Find where each ray enters the density band and where it reaches the surface.

    Args:
        sdf_fn: [M, 3] -> [M] signed distance.
        origins, dirs: [R, 3].
        t_near, t_far: [R] segment to search.
        beta: density length scale.
        settings: march settings.

    Returns:
        t_enter [R]: where sdf first falls below enter_sdf * beta (band start),
        t_surface [R]: where sdf reached ~0, or the closest approach for rays that only graze,
        found [R] bool: the ray comes within ``enter_sdf * beta`` of the surface,
        hit [R] bool: the ray reaches the surface (a grazing ray passes it).
    """
    enter_level = settings.enter_sdf * beta
    t_enter = torch.full_like(t_near, float("inf"))
    t_surface = t_far.clone()
    hit = torch.zeros_like(t_near, dtype=torch.bool)
    # State of the rays still marching, compacted as rays finish (index = their global ray number).
    index = torch.nonzero(t_near < t_far).squeeze(-1)
    o, d, t, t_end = origins[index], dirs[index], t_near[index], t_far[index]
    t_prev, d_prev = t.clone(), torch.full_like(t, float("inf"))
    enter = torch.full_like(t, float("inf"))
    closest, t_closest = torch.full_like(t, float("inf")), t_end.clone()
    for _ in range(settings.max_steps):
        if index.numel() == 0:
            break
        dist = sdf_fn(o + t[:, None] * d)
        # Band start: where the distance crosses enter_level, on the line through the last two positions
        # (a step lands anywhere below the level, at times past the surface); at the first position when
        # the ray starts within it.
        level = t_prev + (t - t_prev) * (d_prev - enter_level) / (d_prev - dist).clamp(min=1e-9)
        enter = torch.where((dist < enter_level) & torch.isinf(enter), torch.where(torch.isfinite(d_prev), level, t), enter)
        nearer = dist < closest
        closest = torch.minimum(dist, closest)
        t_closest = torch.where(nearer, t, t_closest)
        crossed = dist < 0.05 * beta
        step = settings.step_scale * dist.clamp(min=0.25 * beta)
        # In the band, step to where the line through the last two distances reaches zero (a secant step:
        # a flat surface seen at a slant is reached at once, where distance steps crawl), but at most
        # SECANT_REACH beta further than the distance itself, so no thin part is stepped over; a ray that
        # only grazes the surface (the distance falls slowly) keeps distance steps, to find its closest approach.
        slope = (d_prev - dist) / (t - t_prev).clamp(min=1e-9)
        secant = (dist < enter_level) & torch.isfinite(d_prev) & (slope > SECANT_SLOPE)
        reach = torch.minimum((dist / slope.clamp(min=1e-9)).maximum(step), dist + SECANT_REACH * beta)
        t_next = t + torch.where(secant, reach, step)
        finished = crossed | (t_next >= t_end)
        if finished.any():
            done = index[finished]
            tf, tp, df, dp = t[finished], t_prev[finished], dist[finished], d_prev[finished]
            # Surface between the last two positions (secant) when the step overshot it.
            overshot = (df < 0) & torch.isfinite(dp)
            t_cross = torch.where(overshot, tp + (tf - tp) * dp / (dp - df).clamp(min=1e-9), tf)
            t_enter[done] = enter[finished]
            hit[done] = crossed[finished]
            t_surface[done] = torch.where(crossed[finished], t_cross, t_closest[finished])
            keep = ~finished
            index, o, d, t_end = index[keep], o[keep], d[keep], t_end[keep]
            t, dist, t_next = t[keep], dist[keep], t_next[keep]
            enter, closest, t_closest = enter[keep], closest[keep], t_closest[keep]
        t_prev, d_prev, t = t, dist, t_next
    # Rays still marching after max_steps: keep what they found so far.
    t_enter[index] = enter
    t_surface[index] = t_closest
    reached = torch.isfinite(t_enter)
    t_enter = torch.where(reached, torch.minimum(t_enter, t_surface), t_surface)
    return t_enter, t_surface, reached, hit


def render_rays(field: RadianceField, origins: Tensor, dirs: Tensor, settings: MarchSettings = MarchSettings(),
                shader: Shader | None = None) -> RenderOutput:
    """Volume-render rays through a field, skipping empty space (see module docstring).

    Args:
        field: the radiance field.
        origins, dirs: [R, 3] ray origins and unit directions.
        settings: march settings.
        shader: per-sample (albedo, normal) -> composited values; None composites the albedo.

    Returns:
        Per-ray outputs, [R, C] each.
    """
    if origins.shape != dirs.shape or origins.shape[-1] != 3:
        raise ValueError(f"origins and dirs must have a shape of (R, 3). Got {tuple(origins.shape)} and {tuple(dirs.shape)}.")
    appearance = field.grid_appearance() if renders_whole_rays(field, settings, origins.device) else None
    outputs = [_render_chunk(field, o, d, settings, shader, appearance)
               for o, d in zip(origins.split(settings.chunk), dirs.split(settings.chunk))]
    return RenderOutput(*(torch.cat(parts) for parts in zip(*((r.rgb, r.alpha, r.depth, r.normal) for r in outputs))))


def _shade(shader: Shader | None, albedo: Tensor, normals: Tensor) -> Tensor:
    return albedo if shader is None else shader(albedo, normals)


@dataclass
class Band:
    """Where a batch of rays meets the surface: the samples that carry colour and their weights.

    Attributes:
        n_rays: rays in the batch.
        rays: [K] indices of the rays that reach the surface band.
        ray_idx: [S] for each kept sample, its ray (index into ``rays``); None: one sample per ray.
        points: [S, 3] the kept samples' positions; dirs: [S, 3] their rays' directions (None where the
            compiled renderer has looked their colour up already).
        weights: [S, 1] their compositing weights (rescaled to the ray's opacity).
        alpha: [K, 1] opacity of each ray in ``rays``; depth: [K, 1] expected depth.
    """

    n_rays: int
    rays: Tensor
    ray_idx: Tensor | None
    points: Tensor | None
    dirs: Tensor | None
    weights: Tensor
    alpha: Tensor
    depth: Tensor


def surface_band(field: RadianceField, origins: Tensor, dirs: Tensor, settings: MarchSettings = MarchSettings()) -> Band:
    """The geometry half of rendering: sphere-trace to the surface, sample its density band, and keep
    the samples that matter. Shading them is ``composite``'s half; a fixed geometry can reuse a band.

    A field whose distance is a grid (``sdf_volume()``) is marched by the compiled kernel of ``march.py``
    unless ``settings.kernel`` is off; any other field by the torch operations below."""
    if settings.kernel and hasattr(field, "sdf_volume") and kernel_runs_on(origins.device):
        from face_nerf.march import march_band

        rays, t_at, weights = march_band(field.sdf_volume(), origins, dirs, field.beta, settings)
        return _keep_samples(origins, dirs, rays, t_at, weights, settings)
    t_near, t_far, in_box = ray_aabb(origins, dirs, field.bounds)
    rays = torch.nonzero(in_box).squeeze(-1)
    if rays.numel() == 0:
        empty = origins.new_zeros(0, settings.band_samples)
        return _keep_samples(origins, dirs, rays, empty, empty, settings)
    o, d = origins[rays], dirs[rays]
    t_enter, t_surface, found, hit = sphere_trace(field.sdf, o, d, t_near[rays], t_far[rays], field.beta, settings)
    rays, o, d = rays[found], o[found], d[found]
    start, surface, crosses = t_enter[found], t_surface[found], hit[found]
    # Past the surface a ray is spent within exit_depth * beta. A grazing ray's density is a bell
    # around its closest approach, wider than where sdf < enter level: take twice that, both sides.
    half = 2.0 * (surface - start)
    start = torch.where(crosses, start, (surface - half).clamp(min=0.0))
    stop = torch.where(crosses, surface + settings.exit_depth * field.beta, surface + half)
    stop = torch.minimum(stop, t_far[rays])
    stop = torch.maximum(stop, start + 1e-4)
    # The density looked up at segment midpoints and held over each segment; a sample stands where its
    # segment's weight lies (short of the midpoint, as the light fades along it).
    edges = torch.linspace(0.0, 1.0, settings.band_samples + 1, device=origins.device)
    t_edges = start[:, None] + (stop - start)[:, None] * edges
    t_mid = 0.5 * (t_edges[:, 1:] + t_edges[:, :-1])
    deltas = t_edges[:, 1:] - t_edges[:, :-1]
    points = o[:, None, :] + t_mid[..., None] * d[:, None, :]
    sigmas = sdf_to_density(field.sdf(points.reshape(-1, 3)).reshape(t_mid.shape), field.beta)
    weights, transmittance = compositing_weights(sigmas, deltas)
    optical = sigmas * deltas
    t_at = t_edges[:, :-1] + deltas * segment_centroid(optical)
    # A ray that reached the surface is inside a closed head at the band's end: the light left there is
    # absorbed within a few beta, so the last sample takes it.
    left = transmittance[:, -1] * torch.exp(-optical[:, -1])
    weights[:, -1] += torch.where(crosses, left, torch.zeros_like(left))
    return _keep_samples(origins, dirs, rays, t_at, weights, settings)


def segment_centroid(optical: Tensor) -> Tensor:
    """Where a ray segment's compositing weight lies on average, as a fraction of its length, for a
    density held constant over it with optical depth ``optical`` (tau): the light fades as exp(-tau x),
    so 1 / tau - exp(-tau) / (1 - exp(-tau)), from 1/2 (thin) towards 0 (opaque). Below tau = 0.2 its
    series (the closed form cancels there in float32: 1 - exp(-tau) loses its digits)."""
    safe = optical.clamp(min=0.2)
    through = torch.exp(-safe)
    t2 = optical * optical
    series = 0.5 - optical * (1.0 / 12.0 - t2 * (1.0 / 720.0 - t2 / 30240.0))
    return torch.where(optical < 0.2, series, 1.0 / safe - through / (1.0 - through))


def kernel_runs_on(device: torch.device) -> bool:
    """Whether ``march.py``'s kernels can run here: Warp installed (a requirement, but a GPU host may
    lack it) and able to use the device."""
    try:
        from face_nerf.march import supports
    except ImportError:
        return False
    return supports(device)


def _keep_samples(origins: Tensor, dirs: Tensor, rays: Tensor, t_at: Tensor, weights: Tensor,
                  settings: MarchSettings) -> Band:
    """The band of ``rays`` [K] from where their samples stand and their weights [K, B]."""
    total = weights.sum(-1, keepdim=True)
    depth = (weights * t_at).sum(-1, keepdim=True)
    if settings.colour_at == "centroid":
        # One lookup per ray, where its opacity is on average (its expected depth): its weighted colour to
        # first order.
        points = torch.addcmul(origins[rays], depth / total.clamp(min=1e-12), dirs[rays])
        return Band(origins.shape[0], rays, None, points, dirs[rays], total, total, depth)
    # Colour is looked up only where the weight matters; the kept weights are rescaled to the ray's
    # full opacity, so skipped samples count as the average of the kept ones.
    kept = torch.where(weights >= settings.weight_floor * total, weights, torch.zeros_like(weights))
    kept = kept * (total / kept.sum(-1, keepdim=True).clamp(min=1e-12))
    ray_idx, sample_idx = torch.nonzero(kept, as_tuple=True)
    ray = rays[ray_idx]
    points = torch.addcmul(origins[ray], t_at[ray_idx, sample_idx][:, None], dirs[ray])
    return Band(origins.shape[0], rays, ray_idx, points, dirs[ray], kept[ray_idx, sample_idx][:, None], total, depth)


def composite(field: RadianceField, band: Band, shader: Shader | None = None) -> RenderOutput:
    """The shading half of rendering: look up the band's samples and composite them per ray."""
    if band.rays.numel() == 0:
        return _composited(band, band.points.new_zeros(0, 3), band.points.new_zeros(0, 3), shader)
    return _composited(band, *field.attributes(band.points, band.dirs), shader)


def _composited(band: Band, albedo: Tensor, normals: Tensor, shader: Shader | None) -> RenderOutput:
    """Per-ray outputs [R, C] from the band's samples' albedo and normals [S, 3]."""
    like = normals
    channels = _shade(shader, like.new_zeros(1, 3), like.new_tensor([[0.0, 0.0, 1.0]])).shape[-1]
    rgb, normal = like.new_zeros(band.n_rays, channels), like.new_zeros(band.n_rays, 3)
    alpha, depth = like.new_zeros(band.n_rays, 1), like.new_zeros(band.n_rays, 1)
    if band.rays.numel() == 0:
        return RenderOutput(rgb, alpha, depth, normal)
    values, weighted_normals = band.weights * _shade(shader, albedo, normals), band.weights * normals
    if band.ray_idx is not None:  # several samples per ray: summed per ray
        k = band.rays.numel()
        values = like.new_zeros(k, channels).index_add(0, band.ray_idx, values)
        weighted_normals = like.new_zeros(k, 3).index_add(0, band.ray_idx, weighted_normals)
    rgb.index_copy_(0, band.rays, values)
    normal.index_copy_(0, band.rays, weighted_normals)
    alpha.index_copy_(0, band.rays, band.alpha)
    depth.index_copy_(0, band.rays, band.depth)
    return RenderOutput(rgb, alpha, depth, normal)


def renders_whole_rays(field: RadianceField, settings: MarchSettings, device: torch.device) -> bool:
    """Whether rays through ``field`` are rendered whole by one compiled kernel (``march_colour.march_surface``):
    a grid field that describes its colour as grids (``grid_appearance``), and Warp on the device."""
    return settings.kernel and hasattr(field, "grid_appearance") and hasattr(field, "sdf_volume") and kernel_runs_on(device)


def _render_chunk(field: RadianceField, origins: Tensor, dirs: Tensor, settings: MarchSettings,
                  shader: Shader | None, appearance: GridAppearance | None) -> RenderOutput:
    if appearance is not None:  # the field's rays rendered whole by the compiled kernel
        from face_nerf.march_colour import march_surface

        light = getattr(shader, "light", None)  # a Lambert shader: the kernel shades each sample itself
        hits = march_surface(field.sdf_volume(), appearance, origins, dirs, field.beta, settings, light)
        band = Band(origins.shape[0], hits.rays, None, None, None, hits.alpha, hits.alpha, hits.depth)
        return _composited(band, hits.albedo, hits.normal, None if light is not None else shader)
    return composite(field, surface_band(field, origins, dirs, settings), shader)


def render_rays_reference(field: RadianceField, origins: Tensor, dirs: Tensor, samples: int = 4096,
                          shader: Shader | None = None,
                          colour_at: Literal["samples", "centroid"] = "samples") -> RenderOutput:
    """Slow twin of ``render_rays``: ``samples`` uniform samples over each ray's whole box segment, no
    skipping. For tests.

    ``colour_at`` is the colour rule, as in ``MarchSettings``: "samples" shades every sample and
    composites them; "centroid" shades once per ray, where its opacity is on average (its expected
    depth), and gives that colour the ray's whole opacity: the fast path's one lookup a ray, without its
    shortcuts (the band, the weight floor, the sphere tracing).
    """
    check_colour_rule(colour_at)
    t_near, t_far, in_box = ray_aabb(origins, dirs, field.bounds)
    t_far = torch.where(in_box, t_far, t_near)
    edges = torch.linspace(0.0, 1.0, samples + 1, device=origins.device)
    t_edges = t_near[:, None] + (t_far - t_near)[:, None] * edges
    t_mid = 0.5 * (t_edges[:, 1:] + t_edges[:, :-1])
    deltas = t_edges[:, 1:] - t_edges[:, :-1]
    points = origins[:, None, :] + t_mid[..., None] * dirs[:, None, :]
    sigmas = sdf_to_density(field.sdf(points.reshape(-1, 3)).reshape(t_mid.shape), field.beta)
    weights, _ = compositing_weights(sigmas, deltas)
    alpha, depth = weights.sum(-1, keepdim=True), (weights * t_mid).sum(-1, keepdim=True)
    if colour_at == "centroid":
        centre = origins + depth / alpha.clamp(min=1e-12) * dirs
        albedo, normals = field.attributes(centre, dirs)
        return RenderOutput(alpha * _shade(shader, albedo, normals), alpha, depth, alpha * normals)
    albedo, normals = field.attributes(points.reshape(-1, 3), dirs[:, None, :].expand_as(points).reshape(-1, 3))
    values = _shade(shader, albedo, normals)
    w = weights[..., None]
    return RenderOutput((w * values.reshape(*t_mid.shape, values.shape[-1])).sum(1), alpha, depth,
                        (w * normals.reshape(*t_mid.shape, 3)).sum(1))


def render_image(field: RadianceField, camera: Camera, settings: MarchSettings = MarchSettings(),
                 shader: Shader | None = None) -> RenderOutput:
    """Render a whole camera image; outputs are [H, W, C]."""
    origins, dirs = camera.rays()
    return render_rays(field, origins, dirs, settings, shader).reshape(camera.height, camera.width)
