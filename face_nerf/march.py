"""The geometry half of rendering a signed distance grid, as one compiled kernel (NVIDIA Warp).

``render.surface_band`` marches rays through any field with torch operations: 48 sphere-tracing steps
of some 25 array operations each, with the rays compacted as they finish, then a band of samples round
the surface. For a field whose distance is a trilinear grid (``SdfVolume``) this module does the same
per ray in one fused loop: no step count paid for the slowest ray, no arrays between steps. It gives
the same band (``test_march`` holds it to the torch path) several times faster, and runs on the CPU and
on CUDA alike.

Warp compiles the kernel on first use (a few seconds) into its kernel cache, which lives beside the
head model's cache (``$FACELAB_CACHE/warp``); later processes load it in milliseconds. A CPU launch
runs on one thread, so the rays are split into one launch per torch thread, run side by side.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import torch
import warp as wp
from torch import Tensor

from face_nerf.head.cache import default_cache_dir
from face_nerf.native_logs import quiet_native_logs
from face_nerf.render import BOX_TOLERANCE

if TYPE_CHECKING:
    from face_nerf.render import MarchSettings, SdfVolume

wp.set_module_options({"enable_backward": False})  # this module's kernels render only: no adjoint code

_READY = threading.Lock()  # guards Warp's one-time initialisation, not state of ours


def supports(device: torch.device) -> bool:
    """Whether the kernel runs on ``device`` (False, for instance, for a GPU Warp has no driver for):
    ``render.surface_band`` then marches with torch operations."""
    try:
        _warp_ready(device)
    except (RuntimeError, ValueError):
        return False
    return True


def _warp_ready(device: torch.device) -> None:
    """Initialise Warp and load this module's kernel for ``device`` once (compiled into the kernel cache
    beside the head model's, unless $WARP_CACHE_PATH says otherwise), before launches run in threads."""
    with _READY:
        if wp.config.kernel_cache_dir is None and not os.environ.get("WARP_CACHE_PATH"):
            wp.config.kernel_cache_dir = str(default_cache_dir() / "warp")
            wp.config.log_level = wp.LOG_ERROR  # no start-up banner or compile timings in the app's log
        with quiet_native_logs():  # "Warp CUDA warning: Could not find ... the NVIDIA CUDA driver" on a CPU host
            wp.init()
        wp.load_module(sys.modules[__name__], device=wp.device_from_torch(device))


@wp.func
def _grid_sdf(grid: wp.array3d(dtype=wp.float32), lo: wp.vec3, scale: wp.vec3, margin: float, tolerance: float,
              p: wp.vec3) -> float:
    # grid_sample(align_corners=True, padding_mode="border") of the grid at p, |v| + margin outside.
    w1 = float(grid.shape[2] - 1)
    h1 = float(grid.shape[1] - 1)
    d1 = float(grid.shape[0] - 1)
    fx = (p[0] - lo[0]) * scale[0]
    fy = (p[1] - lo[1]) * scale[1]
    fz = (p[2] - lo[2]) * scale[2]
    # render.BOX_TOLERANCE of the half box, in lattice steps
    ex = tolerance * 0.5 * w1
    ey = tolerance * 0.5 * h1
    ez = tolerance * 0.5 * d1
    outside = fx < -ex or fx > w1 + ex or fy < -ey or fy > h1 + ey or fz < -ez or fz > d1 + ez
    x = wp.clamp(fx, 0.0, w1)
    y = wp.clamp(fy, 0.0, h1)
    z = wp.clamp(fz, 0.0, d1)
    x0 = wp.min(int(wp.floor(x)), grid.shape[2] - 2)
    y0 = wp.min(int(wp.floor(y)), grid.shape[1] - 2)
    z0 = wp.min(int(wp.floor(z)), grid.shape[0] - 2)
    tx = x - float(x0)
    ty = y - float(y0)
    tz = z - float(z0)
    c00 = wp.lerp(grid[z0, y0, x0], grid[z0, y0, x0 + 1], tx)
    c01 = wp.lerp(grid[z0, y0 + 1, x0], grid[z0, y0 + 1, x0 + 1], tx)
    c10 = wp.lerp(grid[z0 + 1, y0, x0], grid[z0 + 1, y0, x0 + 1], tx)
    c11 = wp.lerp(grid[z0 + 1, y0 + 1, x0], grid[z0 + 1, y0 + 1, x0 + 1], tx)
    v = wp.lerp(wp.lerp(c00, c01, ty), wp.lerp(c10, c11, ty), tz)
    if outside:
        v = wp.abs(v) + margin
    return v

@wp.kernel
def _march(grid: wp.array3d(dtype=wp.float32), lo: wp.vec3, scale: wp.vec3, margin: float, tolerance: float,
          origins: wp.array(dtype=wp.vec3), dirs: wp.array(dtype=wp.vec3),
          t_near: wp.array(dtype=wp.float32), t_far: wp.array(dtype=wp.float32),
          beta: float, enter_sdf: float, step_scale: float, exit_depth: float, max_steps: int,
          found: wp.array(dtype=wp.int32), t_mid: wp.array2d(dtype=wp.float32),
          weights: wp.array2d(dtype=wp.float32)):
    # render.sphere_trace then render.surface_band's sampling, for one ray.
    i = wp.tid()
    found[i] = 0
    o = origins[i]
    d = dirs[i]
    t_end = t_far[i]
    t = t_near[i]
    if not (t < t_end):
        return
    enter_level = enter_sdf * beta
    t_prev = t
    d_prev = float(0.0)
    has_prev = bool(False)
    enter = float(0.0)
    has_enter = bool(False)
    closest = float(1.0e30)
    t_closest = t_end
    t_surface = t_end
    crossed = bool(False)
    finished = bool(False)
    for _ in range(max_steps):
        dist = _grid_sdf(grid, lo, scale, margin, tolerance, o + t * d)
        if dist < enter_level and not has_enter:
            has_enter = True
            enter = t
            if dist < 0.0:
                enter = t_prev
        if dist < closest:
            closest = dist
            t_closest = t
        crossed = dist < 0.05 * beta
        t_next = t + step_scale * wp.max(dist, 0.25 * beta)
        if crossed or t_next >= t_end:
            finished = True
            t_surface = t_closest
            if crossed:
                t_surface = t
                if dist < 0.0 and has_prev:  # overshot: the crossing between the last two steps
                    t_surface = t_prev + (t - t_prev) * d_prev / wp.max(d_prev - dist, 1.0e-9)
            break
        t_prev = t
        d_prev = dist
        has_prev = True
        t = t_next
    if not finished:  # out of steps: what it found so far
        t_surface = t_closest
        crossed = False
    if not has_enter:
        return
    start = wp.min(enter, t_surface)
    half = 2.0 * (t_surface - start)
    stop = t_surface + exit_depth * beta
    if not crossed:  # a grazing ray: a bell round its closest approach
        start = wp.max(t_surface - half, 0.0)
        stop = t_surface + half
    stop = wp.min(stop, t_end)
    stop = wp.max(stop, start + 1.0e-4)
    samples = t_mid.shape[1]
    span = stop - start
    accumulated = float(0.0)
    for j in range(samples):
        e0 = start + span * (float(j) / float(samples))
        e1 = start + span * (float(j + 1) / float(samples))
        tm = 0.5 * (e0 + e1)
        s = _grid_sdf(grid, lo, scale, margin, tolerance, o + tm * d)
        tail = 0.5 * wp.exp(-wp.abs(s) / beta)
        sigma = tail / beta
        if s < 0.0:
            sigma = (1.0 - tail) / beta
        optical = sigma * (e1 - e0)
        weights[i, j] = wp.exp(-accumulated) * (1.0 - wp.exp(-optical))
        t_mid[i, j] = tm
        accumulated += optical
    found[i] = 1


def march_band(volume: SdfVolume, origins: Tensor, dirs: Tensor, t_near: Tensor, t_far: Tensor, beta: float,
               settings: MarchSettings) -> tuple[Tensor, Tensor, Tensor]:
    """Sphere-trace rays [R, 3] over [t_near, t_far] [R] and sample their density band.

    Returns (rays [K] indices of the rays that come within the band, t_mid [K, B] sample distances,
    weights [K, B] compositing weights), B = ``settings.band_samples``: what ``render.surface_band``'s
    torch path computes.
    """
    if min(volume.grid.shape) < 2:
        raise ValueError(f"An SDF grid needs at least 2 points along each axis. Got {tuple(volume.grid.shape)}.")
    _warp_ready(origins.device)
    device = origins.device
    n, samples = origins.shape[0], settings.band_samples
    lo, hi = volume.bounds[0].float(), volume.bounds[1].float()
    dims = torch.tensor(volume.grid.shape[::-1], dtype=torch.float32, device=lo.device)  # (W, H, D)
    scale = (dims - 1.0) / (hi - lo)
    grid = wp.from_torch(volume.grid.detach().float().contiguous())
    found = torch.zeros(n, dtype=torch.int32, device=device)
    t_mid = torch.zeros(n, samples, device=device)
    weights = torch.zeros(n, samples, device=device)
    origins, dirs = origins.detach().float().contiguous(), dirs.detach().float().contiguous()
    t_near, t_far = t_near.detach().float().contiguous(), t_far.detach().float().contiguous()
    constants = (wp.vec3(*lo.tolist()), wp.vec3(*scale.tolist()), float(volume.margin), BOX_TOLERANCE)
    march_settings = (float(beta), float(settings.enter_sdf), float(settings.step_scale), float(settings.exit_depth),
                      int(settings.max_steps))

    def launch(part: slice) -> None:
        count = len(range(n)[part])
        if count == 0:
            return
        wp.launch(_march, dim=count, device=wp.device_from_torch(device), inputs=[
            grid, *constants,
            wp.from_torch(origins[part], dtype=wp.vec3), wp.from_torch(dirs[part], dtype=wp.vec3),
            wp.from_torch(t_near[part]), wp.from_torch(t_far[part]), *march_settings,
            wp.from_torch(found[part]), wp.from_torch(t_mid[part]), wp.from_torch(weights[part])])

    if device.type == "cuda":  # on the stream torch is using, so it follows the writes that made the inputs
        with wp.ScopedStream(wp.stream_from_torch(torch.cuda.current_stream(device))):
            launch(slice(0, n))
    else:  # a CPU launch runs on one thread: one launch per torch thread, side by side
        parts = max(1, min(torch.get_num_threads(), n // 4096))
        per = -(-n // parts)
        with ThreadPoolExecutor(parts) as pool:
            list(pool.map(launch, [slice(k * per, (k + 1) * per) for k in range(parts)]))
    wp.synchronize_device(wp.device_from_torch(device))
    rays = torch.nonzero(found).squeeze(-1)
    return rays, t_mid[rays], weights[rays]
