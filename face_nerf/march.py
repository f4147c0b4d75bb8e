"""Marching a signed distance grid as compiled kernels (NVIDIA Warp), on the CPU and on CUDA alike.

``render.surface_band`` marches rays through any field with torch operations: up to 48 sphere-tracing
steps of some 25 array operations each, with the rays compacted as they finish, then a band of samples
round the surface, then the field's colour lookups. For a field whose distance is a trilinear grid
(``SdfVolume``) this module does the same per ray in one fused loop: no step count paid for the slowest
ray, no arrays between steps. Here: the grid's distance, the sphere tracing (``_Tracer``, a step at a
time), the band and its samples, and ``march_band``, which gives the band's samples and weights (colour
looked up by torch afterwards). ``march_colour`` builds the whole-ray kernels on these (colour lookups,
whole views, shading).

``test_march`` and ``test_relight`` hold them to the torch path (and through it to
``render_rays_reference``).

Warp compiles the kernels on first use (seconds) into its kernel cache, which lives beside the head
model's cache (``$FACELAB_CACHE/warp``); later processes load them in milliseconds. A CPU launch runs on
one thread, so rays are split into blocks that a kept pool of torch-thread-count workers takes in turn
(the image's busy middle rows are shared out, not left to one thread); a GPU takes them in one launch.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import TYPE_CHECKING

import torch
import warp as wp
from torch import Tensor

from face_nerf.head.cache import default_cache_dir
from face_nerf.native_logs import quiet_native_logs
from face_nerf.render import BOX_TOLERANCE, SECANT_REACH, SECANT_SLOPE

if TYPE_CHECKING:
    from face_nerf.render import MarchSettings, SdfVolume

# Render only: no adjoint code. -O3 (the CPU default is -O2) made the CPU kernels 10-15% faster.
wp.set_module_options({"enable_backward": False, "optimization_level": 3})

secant_reach = wp.constant(SECANT_REACH)
secant_slope = wp.constant(SECANT_SLOPE)
_READY = threading.Lock()  # guards Warp's one-time initialisation, not state of ours
MAX_BAND_SAMPLES = 32  # the whole-ray kernels keep a ray's band weights in registers
_Weights = wp.types.vector(length=MAX_BAND_SAMPLES, dtype=wp.float32)
BLOCK = 32768  # rays per CPU launch: blocks go to threads as they free up


def supports(device: torch.device) -> bool:
    """Whether the kernels run on ``device`` (False, for instance, for a GPU Warp has no driver for):
    ``render.surface_band`` then marches with torch operations."""
    try:
        _warp_ready(device)
    except (RuntimeError, ValueError):
        return False
    return True


def _warp_ready(device: torch.device, module: ModuleType | None = None) -> None:
    """Initialise Warp and load a module's kernels (this one's by default) for ``device`` once (compiled
    into the kernel cache beside the head model's, unless $WARP_CACHE_PATH says otherwise), before
    launches run in threads."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # "cuda": torch's current GPU
        device = torch.device("cuda", torch.cuda.current_device())
    with _READY:
        if wp.config.kernel_cache_dir is None and not os.environ.get("WARP_CACHE_PATH"):
            wp.config.kernel_cache_dir = str(default_cache_dir() / "warp")
            wp.config.log_level = wp.LOG_ERROR  # no start-up banner or compile timings in the app's log
        with quiet_native_logs():  # "Warp CUDA warning: Could not find ... the NVIDIA CUDA driver" on a CPU host
            wp.init()
        wp.load_module(module or sys.modules[__name__], device=wp.device_from_torch(device))


# --- the distance and the march ------------------------------------------------------------------

@wp.struct
class _Volume:
    sdf: wp.array(dtype=wp.float32)  # [D * H * W], x fastest
    width: int  # W
    plane: int  # H * W
    lo: wp.vec3  # the box's lower corner
    hi: wp.vec3  # and upper one
    scale: wp.vec3  # lattice steps per world unit along x, y, z
    top: wp.vec3  # W - 1, H - 1, D - 1
    slack: wp.vec3  # render.BOX_TOLERANCE of the half box, in lattice steps
    margin: float


@wp.func
def _cell(top: wp.vec3, f: wp.vec3):
    # grid_sample(align_corners=True, padding_mode="border"): lattice coordinates f -> the cell's corner
    # indices (x, y, z) and the fractions within it.
    x = wp.clamp(f[0], 0.0, top[0])
    y = wp.clamp(f[1], 0.0, top[1])
    z = wp.clamp(f[2], 0.0, top[2])
    x0 = wp.min(int(x), int(top[0]) - 1)  # x >= 0: truncation is its floor; top >= 1 (_volume checks)
    y0 = wp.min(int(y), int(top[1]) - 1)
    z0 = wp.min(int(z), int(top[2]) - 1)
    return x0, y0, z0, wp.vec3(x - float(x0), y - float(y0), z - float(z0))


@wp.func
def _inside_sdf(v: _Volume, f: wp.vec3) -> float:
    # The grid trilinear at lattice coordinates f (clamped to the grid: grid_sample's border padding).
    x0, y0, z0, t = _cell(v.top, f)
    g = v.sdf
    b = z0 * v.plane + y0 * v.width + x0
    c00 = wp.lerp(g[b], g[b + 1], t[0])
    c01 = wp.lerp(g[b + v.width], g[b + v.width + 1], t[0])
    c10 = wp.lerp(g[b + v.plane], g[b + v.plane + 1], t[0])
    c11 = wp.lerp(g[b + v.plane + v.width], g[b + v.plane + v.width + 1], t[0])
    return wp.lerp(wp.lerp(c00, c01, t[1]), wp.lerp(c10, c11, t[1]), t[2])


@wp.func
def _sdf(v: _Volume, p: wp.vec3) -> float:
    # HeadField.sdf: trilinear inside the box, |value| + margin beyond its tolerance.
    f = wp.cw_mul(p - v.lo, v.scale)
    value = _inside_sdf(v, f)
    if (f[0] < -v.slack[0] or f[0] > v.top[0] + v.slack[0] or f[1] < -v.slack[1] or f[1] > v.top[1] + v.slack[1]
            or f[2] < -v.slack[2] or f[2] > v.top[2] + v.slack[2]):
        value = wp.abs(value) + v.margin
    return value


@wp.struct
class _March:
    beta: float
    inv_beta: float
    enter_sdf: float
    step_scale: float
    exit_depth: float
    max_steps: int
    samples: int
    every_sample: int  # colour at every kept sample (MarchSettings.colour_at="samples"), else at their centroid


@wp.func
def _box(v: _Volume, o: wp.vec3, d: wp.vec3):
    # render.ray_aabb: (t_near, t_far) of the ray in the box; t_far <= t_near when it misses.
    t_near = float(0.0)
    t_far = float(1.0e30)
    for k in range(3):
        dk = d[k]
        if wp.abs(dk) < 1.0e-9:
            dk = 1.0e-9
        inv = 1.0 / dk
        t0 = (v.lo[k] - o[k]) * inv
        t1 = (v.hi[k] - o[k]) * inv
        t_near = wp.max(t_near, wp.min(t0, t1))
        t_far = wp.min(t_far, wp.max(t0, t1))
    return t_near, t_far


@wp.struct
class _Tracer:
    # One ray's sphere tracing, step by step (``_step``), so that a thread can trace two rays in turn and
    # the CPU works on one while the other waits for its lookup.
    o: wp.vec3
    d: wp.vec3
    t_start: float
    t_end: float
    t: float
    t_prev: float
    d_prev: float
    has_prev: int
    enter: float
    has_enter: int
    closest: float
    t_closest: float
    t_surface: float
    crossed: int
    finished: int


@wp.func
def _tracer(o: wp.vec3, d: wp.vec3, t_start: float, t_end: float) -> _Tracer:
    r = _Tracer()
    r.o = o
    r.d = d
    r.t_start = t_start
    r.t_end = t_end
    r.t = t_start
    r.t_prev = t_start
    r.d_prev = 0.0
    r.has_prev = 0
    r.enter = 0.0
    r.has_enter = 0
    r.closest = 1.0e30
    r.t_closest = t_end
    r.t_surface = t_end
    r.crossed = 0
    r.finished = int(not (t_start < t_end))
    return r


@wp.func
def _step(v: _Volume, m: _March, r: _Tracer) -> _Tracer:
    # One step of render.sphere_trace.
    t = r.t
    enter_level = m.enter_sdf * m.beta
    dist = _inside_sdf(v, wp.cw_mul(r.o + t * r.d - v.lo, v.scale))  # t_start <= t < t_end: in the box
    if dist < enter_level and r.has_enter == 0:  # the band starts where the distance crosses enter_level
        r.has_enter = 1
        r.enter = t
        if r.has_prev != 0:
            r.enter = r.t_prev + (t - r.t_prev) * (r.d_prev - enter_level) / wp.max(r.d_prev - dist, 1.0e-9)
    if dist < r.closest:
        r.closest = dist
        r.t_closest = t
    crossed = dist < 0.05 * m.beta
    step = m.step_scale * wp.max(dist, 0.25 * m.beta)
    if dist < enter_level and r.has_prev != 0:  # render.sphere_trace's secant step
        slope = (r.d_prev - dist) / wp.max(t - r.t_prev, 1.0e-9)
        if slope > secant_slope:
            step = wp.min(wp.max(dist / slope, step), dist + secant_reach * m.beta)
    t_next = t + step
    if crossed or t_next >= r.t_end:
        r.finished = 1
        r.crossed = int(crossed)
        r.t_surface = r.t_closest
        if crossed:
            r.t_surface = t
            if dist < 0.0 and r.has_prev != 0:  # overshot: the crossing between the last two steps
                r.t_surface = r.t_prev + (t - r.t_prev) * r.d_prev / wp.max(r.d_prev - dist, 1.0e-9)
        return r
    r.t_prev = t
    r.d_prev = dist
    r.has_prev = 1
    r.t = t_next
    return r


@wp.func
def _band(m: _March, r: _Tracer):
    # The band's limits as render.surface_band sets them, once tracing has stopped: (found, crossed, band
    # start, band stop); found is False for rays that never come within the band, crossed for those that
    # reach the surface (not only graze it).
    t_surface = r.t_surface
    crossed = r.crossed != 0
    if r.finished == 0:  # out of steps: what it found so far
        t_surface = r.t_closest
        crossed = False
    start = wp.min(r.enter, t_surface)
    half = 2.0 * (t_surface - start)
    stop = t_surface + m.exit_depth * m.beta
    if not crossed:  # a grazing ray: a bell round its closest approach
        start = wp.max(t_surface - half, 0.0)
        stop = t_surface + half
    stop = wp.min(stop, r.t_end)
    stop = wp.max(stop, start + 1.0e-4)
    return r.has_enter != 0 and r.t_start < r.t_end, crossed, start, stop


@wp.func
def _traced(v: _Volume, m: _March, o: wp.vec3, d: wp.vec3, t_start: float, t_end: float) -> _Tracer:
    # render.sphere_trace of one ray over [t_start, t_end), up to max_steps.
    r = _tracer(o, d, t_start, t_end)
    for _ in range(m.max_steps):
        if r.finished != 0:
            break
        r = _step(v, m, r)
    return r


@wp.func
def _sample(v: _Volume, m: _March, o: wp.vec3, d: wp.vec3, e0: float, length: float, in_box: bool):
    # The band's sample over [e0, e0 + length]: (where the segment's weight lies on average, its
    # transmittance). The density is looked up at the segment's midpoint and held over the segment; with
    # it the weight falls off exponentially along the segment, so its centroid lies short of the midpoint.
    # ``in_box``: the whole band lies in the box (all but grazing rays' bands), so no sample needs the check.
    tm = e0 + 0.5 * length
    s = float(0.0)
    if in_box:
        s = _inside_sdf(v, wp.cw_mul(o + tm * d - v.lo, v.scale))
    else:
        s = _sdf(v, o + tm * d)
    tail = 0.5 * wp.exp(-wp.abs(s) * m.inv_beta)
    density = tail  # sigma * beta
    if s < 0.0:
        density = 1.0 - tail
    optical = density * m.inv_beta * length
    through = wp.exp(-optical)
    return e0 + length * _centroid(optical, through), through


@wp.func
def _centroid(optical: float, through: float) -> float:
    # render.segment_centroid: where in a segment of optical depth tau its weight lies, as a fraction of
    # its length: 1 / tau - exp(-tau) / (1 - exp(-tau)) (one division), its series below 0.2.
    if optical < 0.2:
        t2 = optical * optical
        return 0.5 - optical * (1.0 / 12.0 - t2 * (1.0 / 720.0 - t2 / 30240.0))
    lit = 1.0 - through
    return (lit - optical * through) / (optical * lit)


@wp.func
def _band_samples(v: _Volume, m: _March, r: _Tracer, crossed: bool, start: float, stop: float):
    # The band [start, stop) of a traced ray: its samples' compositing weights and where they stand (at
    # most MAX_BAND_SAMPLES, kept in registers).
    in_box = start >= r.t_start  # the band ends by t_end
    weights = _Weights()
    t_at = _Weights()
    length = (stop - start) / float(m.samples)
    transmittance = float(1.0)
    for j in range(m.samples):
        tm, through = _sample(v, m, r.o, r.d, start + float(j) * length, length, in_box)
        weights[j] = transmittance * (1.0 - through)
        t_at[j] = tm
        transmittance *= through
    if crossed:  # inside a closed head at the band's end: the light left is absorbed there
        weights[m.samples - 1] += transmittance
    return weights, t_at


@wp.kernel
def _march(v: _Volume, m: _March, offset: int, origins: wp.array(dtype=wp.vec3), dirs: wp.array(dtype=wp.vec3),
           found: wp.array(dtype=wp.int32), t_at: wp.array2d(dtype=wp.float32), weights: wp.array2d(dtype=wp.float32)):
    i = offset + wp.tid()
    found[i] = 0
    o = origins[i]
    d = dirs[i]
    t_near, t_far = _box(v, o, d)
    if not (t_near < t_far):
        return
    hit, crossed, start, stop = _band(m, _traced(v, m, o, d, t_near, t_far))
    if not hit:
        return
    in_box = start >= t_near  # the band ends by t_far
    length = (stop - start) / float(m.samples)
    transmittance = float(1.0)
    for j in range(m.samples):  # as _band_samples, into the arrays: no limit on the sample count
        tm, through = _sample(v, m, o, d, start + float(j) * length, length, in_box)
        weights[i, j] = transmittance * (1.0 - through)
        t_at[i, j] = tm
        transmittance *= through
    if crossed:  # inside a closed head at the band's end: the light left is absorbed there
        weights[i, m.samples - 1] += transmittance
    found[i] = 1


# --- from torch ----------------------------------------------------------------------------------

def volume_constants(volume: SdfVolume) -> dict:
    """What a kernel needs of a distance grid besides its values, as plain numbers: the box (lo, hi), lattice
    steps per world unit along x, y, z (scale), W - 1, H - 1, D - 1 (top), render.BOX_TOLERANCE of the half box
    in lattice steps (slack), the margin, and the grid's row and plane strides (width, plane)."""
    if min(volume.grid.shape) < 2:
        raise ValueError(f"An SDF grid needs at least 2 points along each axis. Got {tuple(volume.grid.shape)}.")
    lo, hi = volume.bounds[0].float().cpu(), volume.bounds[1].float().cpu()
    top = torch.tensor(volume.grid.shape[::-1], dtype=torch.float32) - 1.0  # (W, H, D) - 1
    return {"lo": lo.tolist(), "hi": hi.tolist(), "scale": (top / (hi - lo)).tolist(), "top": top.tolist(),
            "slack": (BOX_TOLERANCE * 0.5 * top).tolist(), "margin": float(volume.margin),
            "width": volume.grid.shape[2], "plane": volume.grid.shape[1] * volume.grid.shape[2]}


def _volume(volume: SdfVolume) -> _Volume:
    c = volume_constants(volume)
    v = _Volume()
    v.sdf = wp.from_torch(volume.grid.detach().float().contiguous().reshape(-1))
    v.width, v.plane = c["width"], c["plane"]
    v.lo, v.hi, v.scale, v.top, v.slack = (wp.vec3(*c[k]) for k in ("lo", "hi", "scale", "top", "slack"))
    v.margin = c["margin"]
    return v


def march_constants(beta: float, settings: MarchSettings) -> dict:
    """What a kernel needs of the march settings, as plain numbers (``_March``'s fields)."""
    return {"beta": float(beta), "inv_beta": 1.0 / float(beta), "enter_sdf": float(settings.enter_sdf),
            "step_scale": float(settings.step_scale), "exit_depth": float(settings.exit_depth),
            "max_steps": int(settings.max_steps), "samples": int(settings.band_samples),
            "every_sample": int(settings.colour_at == "samples")}


def _march_settings(beta: float, settings: MarchSettings) -> _March:
    m = _March()
    for name, value in march_constants(beta, settings).items():
        setattr(m, name, value)
    return m


_POOL: ThreadPoolExecutor | None = None  # CPU launches' threads, kept between renders


def _pool(threads: int) -> ThreadPoolExecutor:
    global _POOL
    with _READY:
        if _POOL is None or _POOL._max_workers != threads:
            _POOL = ThreadPoolExecutor(threads, thread_name_prefix="warp-cpu")
        return _POOL


def _launch(kernel, n: int, device: torch.device, inputs: list, outputs: list, progress=None, block: int = BLOCK) -> None:
    """Launch ``kernel`` over n items: in one go on a GPU; on the CPU in blocks of ``block`` that the
    torch threads take in turn. The kernel's ``offset`` input (after ``inputs``) says where a block starts.
    ``progress(done)`` is called with the items done so far as blocks finish (on the CPU)."""
    warp_device = wp.device_from_torch(device)
    if n == 0:
        return
    if device.type == "cuda":  # on the stream torch is using, so it follows the writes that made the inputs
        with wp.ScopedStream(wp.stream_from_torch(torch.cuda.current_stream(device))):
            wp.launch(kernel, dim=n, device=warp_device, inputs=[*inputs, 0, *outputs])
        return

    def run(start: int, count: int) -> None:
        wp.launch(kernel, dim=count, device=warp_device, inputs=[*inputs, start, *outputs])

    _blocks(run, n, progress, block)


def _blocks(work, n: int, progress=None, block: int = BLOCK) -> None:
    """``work(start, count)`` over n items on the CPU, in blocks of ``block`` that the torch threads take in
    turn (a kept pool); ``progress(done)`` is called with the items done so far as blocks finish."""
    def run(start: int) -> int:
        count = min(block, n - start)
        work(start, count)
        return count

    starts = range(0, n, block)
    threads = max(1, min(torch.get_num_threads(), len(starts)))
    done = 0
    for count in (map(run, starts) if threads == 1 else _pool(threads).map(run, starts)):
        done += count
        if progress is not None:
            progress(done)


def _rays(origins: Tensor, dirs: Tensor) -> tuple[wp.array, wp.array]:
    return (wp.from_torch(origins.detach().float().contiguous(), dtype=wp.vec3),
            wp.from_torch(dirs.detach().float().contiguous(), dtype=wp.vec3))


def march_band(volume: SdfVolume, origins: Tensor, dirs: Tensor, beta: float,
               settings: MarchSettings) -> tuple[Tensor, Tensor, Tensor]:
    """Sphere-trace rays [R, 3] through the grid's box and sample their density band.

    Returns (rays [K] indices of the rays that come within the band, t_at [K, B] where their samples stand,
    weights [K, B] compositing weights), B = ``settings.band_samples``: what ``render.surface_band``'s
    torch path computes.
    """
    _warp_ready(origins.device)
    v = _volume(volume)
    n, samples, device = origins.shape[0], settings.band_samples, origins.device
    found = torch.zeros(n, dtype=torch.int32, device=device)
    t_at = torch.zeros(n, samples, device=device)
    weights = torch.zeros(n, samples, device=device)
    keep = _rays(origins, dirs)
    _launch(_march, n, device, [v, _march_settings(beta, settings)],
            [*keep, wp.from_torch(found), wp.from_torch(t_at), wp.from_torch(weights)])
    wp.synchronize_device(wp.device_from_torch(device))
    rays = torch.nonzero(found).squeeze(-1)
    return rays, t_at[rays], weights[rays]
