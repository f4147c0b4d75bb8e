"""The CPU's views and their shading eight rays at once: ``march_packets.cpp`` (AVX2, FMA, F16C) does what
``march_colour.march_views`` and ``march_colour.shade_views`` do with Warp.

Warp's CPU backend compiles a kernel to run one ray a thread, so every trilinear lookup, exponential and
sum of the band is scalar code. ``march_packets.cpp`` puts eight neighbouring pixels' rays (a row of an
8 x 8 tile) in the lanes of a 256-bit register: the sphere tracing (``march._step``), the band and its
compositing (``march._band``, ``march._band_samples``), the colour lookup at each ray's expected depth
(``march_colour._attributes``, in ``march_packets_colour.h``), straight into the G-buffer; and the
shading (``march_colour._shade``, in ``march_packets_shade.h``).

The C++ is compiled on first use with the system's C++ compiler (``$CXX``, else g++ or c++) into the
cache (``$FACELAB_CACHE/packets``, named by a hash of the sources, the compiler and the flags), about 3 s,
once per machine; the app does it at start (``describe``). Where it cannot run (no x86-64 CPU with AVX2,
FMA and F16C, no compiler, a failed build, colour at every sample, a GPU) the Warp kernels draw the views,
which give the same pixels; ``FACELAB_CPU_MARCH=warp`` asks for them. ``test_march_packets`` holds the two
equal.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from face_nerf.head.cache import default_cache_dir
from face_nerf.march import _blocks, march_constants, volume_constants
from face_nerf.march_colour import lights_with_band_factors, look_constants, overlay_or_blank, view_arrays
from face_nerf.render import SECANT_REACH, SECANT_SLOPE

if TYPE_CHECKING:
    from face_nerf.render import Camera, GridAppearance, MarchSettings, SdfVolume

log = logging.getLogger(__name__)
SOURCE = Path(__file__).with_name("march_packets.cpp")
SOURCES = (SOURCE, *(SOURCE.with_name(f"march_packets_{part}.h") for part in ("colour", "shade")))  # the build's key
FLAGS = ("-O3", "-mavx2", "-mfma", "-mf16c", "-std=c++17", "-shared", "-fPIC", "-fno-math-errno")
BLOCK = 32768  # slots a block (a multiple of the tile's pixels, facelab_tile)
ABI = 4  # facelab_packets_abi() of a library built from SOURCE: the structures below match it
_LOCK = threading.Lock()
_LIBRARY: list = []  # [the loaded library, or None where it cannot be had], once a process


class _CGrid(ctypes.Structure):
    _fields_ = [("pairs", ctypes.c_void_p), ("width", ctypes.c_int32), ("plane", ctypes.c_int32),
                ("lo", ctypes.c_float * 3), ("hi", ctypes.c_float * 3), ("scale", ctypes.c_float * 3),
                ("top", ctypes.c_float * 3), ("slack", ctypes.c_float * 3), ("margin", ctypes.c_float)]


class _CMarch(ctypes.Structure):
    _fields_ = [(name, ctypes.c_float) for name in
                ("beta", "inv_beta", "enter_sdf", "step_scale", "exit_depth", "secant_reach", "secant_slope")]
    _fields_ += [("max_steps", ctypes.c_int32), ("samples", ctypes.c_int32)]


class _CLook(ctypes.Structure):
    _fields_ = [(name, ctypes.c_void_p) for name in ("surface", "photo", "fill", "overlay")]
    _fields_ += [("photo_size", ctypes.c_int32 * 2), ("fill_size", ctypes.c_int32 * 2), ("overlay_size", ctypes.c_int32 * 3),
                 ("has_overlay", ctypes.c_int32), ("overlay_lo", ctypes.c_float * 3), ("overlay_hi", ctypes.c_float * 3),
                 ("to_photo", ctypes.c_float * 2), ("w2c", ctypes.c_float * 9), ("w2c_t", ctypes.c_float * 3),
                 ("eye", ctypes.c_float * 3), ("focal", ctypes.c_float * 2), ("centre", ctypes.c_float * 2),
                 ("light", ctypes.c_float * 27), ("floor", ctypes.c_float), ("stretch", ctypes.c_float * 2),
                 ("fill_centre", ctypes.c_float * 3)]


class _CViews(ctypes.Structure):
    _fields_ = [("rotations", ctypes.c_void_p), ("eyes", ctypes.c_void_p), ("intrinsics", ctypes.c_void_p),
                ("width", ctypes.c_int32), ("height", ctypes.c_int32)]


def _make(structure: type[ctypes.Structure], *values) -> ctypes.Structure:
    """``structure`` with its fields, in order, set to ``values`` (sequences for its array fields)."""
    made = structure()
    for (name, kind), value in zip(structure._fields_, values, strict=True):
        setattr(made, name, kind(*value) if issubclass(kind, ctypes.Array) else value)
    return made


def _cpu_can() -> bool:
    """An x86-64 CPU with AVX2, FMA and F16C (read from /proc/cpuinfo: Linux, where the app runs)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    return {"avx2", "fma", "f16c"} <= set(flags.split())


def _compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def build(cache_dir: Path | None = None) -> Path:
    """The compiled library, built into ``cache_dir`` (default ``$FACELAB_CACHE/packets``) unless a build of
    this source with these flags is there. Raises RuntimeError naming what failed."""
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("No C++ compiler (set $CXX, or install g++).")
    text = b"".join(path.read_bytes() for path in SOURCES)
    key = hashlib.sha256(text + " ".join((compiler, *FLAGS)).encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "packets"
    target = folder / f"march_packets-{key}.so"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{target.name}.{os.getpid()}.{threading.get_ident()}"  # renamed whole: no half a library
    try:
        done = subprocess.run([compiler, *FLAGS, "-o", str(partial), str(SOURCE)], capture_output=True, text=True,
                              timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} failed to build {SOURCE.name}: {done.stderr.strip()[-2000:]}")
        os.replace(partial, target)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuntimeError(f"{compiler} could not build {SOURCE.name}: {error}") from error
    finally:
        partial.unlink(missing_ok=True)
    return target


def library() -> ctypes.CDLL | None:
    """The packet tracer, built and loaded once a process; None where it cannot run here (``describe`` says
    why, and the log once) or ``FACELAB_CPU_MARCH=warp`` asks for Warp's kernel."""
    if _asked() == "warp":
        return None
    with _LOCK:
        if not _LIBRARY:
            _LIBRARY.append(_load())
        return _LIBRARY[0][0]


def describe() -> str:
    """Which CPU renderer draws the views here, in a line (building the packet tracer if need be)."""
    if library() is not None:
        return "packets of eight rays (AVX2), built from face_nerf/march_packets.cpp"
    return f"Warp's kernel, one ray a thread ({'FACELAB_CPU_MARCH=warp' if _asked() == 'warp' else _LIBRARY[0][1]})"


def _asked() -> str:
    """$FACELAB_CPU_MARCH: "packets" (the default) or "warp"."""
    asked = os.environ.get("FACELAB_CPU_MARCH") or "packets"
    if asked not in ("packets", "warp"):
        raise ValueError(f"FACELAB_CPU_MARCH must be 'packets' or 'warp'. Got {asked!r}.")
    return asked


_ENTRY_POINTS = {  # the library's functions: (argument types), all returning nothing
    "facelab_render_views": (ctypes.POINTER(_CGrid), ctypes.POINTER(_CMarch), ctypes.POINTER(_CLook),
                             ctypes.POINTER(_CViews), ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_void_p),
    "facelab_shade_views": (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                            ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p),
    "facelab_srgb_bytes": (ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p),
    "facelab_pairs": (ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p),
    "facelab_tile": (ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_int32)),
}


def _load() -> tuple[ctypes.CDLL | None, str]:
    """(the library, or None and why not)."""
    if not _cpu_can():
        why = "this CPU has no AVX2, FMA and F16C"
        log.info("CPU rendering: Warp's kernel, one ray a thread (%s)", why)
        return None, why
    try:
        lib = ctypes.CDLL(str(build()))
    except (RuntimeError, OSError) as error:
        log.warning("CPU rendering: Warp's kernel, one ray a thread; the packet tracer is not to be had: %s", error)
        return None, f"the packet tracer could not be built: {str(error)[:200]}"
    if lib.facelab_packets_abi() != ABI:
        log.warning("CPU rendering: Warp's kernel; the packet tracer's library is of another version")
        return None, "the packet tracer's library is of another version"
    for name, arguments in _ENTRY_POINTS.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = list(arguments), None
    log.info("CPU rendering: packets of eight rays (AVX2), %s", lib._name)
    return lib, ""


def usable(device: torch.device, settings: MarchSettings | None = None) -> bool:
    """Whether ``march_views`` (given its ``settings``) or ``shade_views`` takes the packet tracer: on the
    CPU, colour once a ray, the library here."""
    centroid = settings is None or settings.colour_at == "centroid"
    return torch.device(device).type == "cpu" and centroid and library() is not None


def _c_grid(volume: SdfVolume) -> tuple[_CGrid, torch.Tensor]:
    """The grid's structure, and the grid of (x, x + 1) pairs it points at (keep it while the structure is in use)."""
    sdf = volume.grid.detach().float().contiguous()
    pairs = torch.empty(*sdf.shape, 2)
    library().facelab_pairs(sdf.data_ptr(), sdf.numel(), pairs.data_ptr())  # 3x faster than torch's stack and roll
    c = volume_constants(volume)
    return _make(_CGrid, pairs.data_ptr(), c["width"], c["plane"], *(c[k] for k in ("lo", "hi", "scale", "top", "slack")),
                 c["margin"]), pairs


def _c_look(appearance: GridAppearance) -> tuple[_CLook, list[torch.Tensor]]:
    """The colour's structure, and the tensors it points at (keep them while it is in use)."""
    c = look_constants(appearance)
    surface, photo, fill = (t.detach().float().contiguous() for t in (appearance.surface, appearance.photo, appearance.fill))
    overlay, lo, hi = overlay_or_blank(appearance)
    light = lights_with_band_factors(appearance.light[None])[0]
    look = _make(_CLook, surface.data_ptr(), photo.data_ptr(), fill.data_ptr(), overlay.data_ptr(), photo.shape[:2],
                 fill.shape[:2], overlay.shape[:3], int(appearance.overlay is not None), lo, hi, c["to_photo"],
                 c["w2c"], c["w2c_t"], c["eye"], c["focal"], c["centre"], light.flatten().tolist(), c["floor"],
                 c["stretch"], c["fill_centre"])
    return look, [surface, photo, fill, overlay, light]


def march_views(volume: SdfVolume, appearance: GridAppearance, cameras: list[Camera], beta: float,
                settings: MarchSettings, alpha: torch.Tensor, albedo: torch.Tensor, normal: torch.Tensor,
                progress=None) -> None:
    """``march_colour.march_views`` on the CPU by the packet tracer (``usable`` says when; its checks
    done there): the same G-buffer, the same progress reports."""
    lib = library()
    grid, pairs = _c_grid(volume)
    look, kept = _c_look(appearance)
    h, w = cameras[0].height, cameras[0].width
    rotations, eyes, intrinsics = view_arrays(cameras, torch.device("cpu"))
    c = march_constants(beta, settings)
    march = _make(_CMarch, *(c[k] for k in ("beta", "inv_beta", "enter_sdf", "step_scale", "exit_depth")), SECANT_REACH,
                  SECANT_SLOPE, c["max_steps"], c["samples"])
    views = _make(_CViews, rotations.data_ptr(), eyes.data_ptr(), intrinsics.data_ptr(), w, h)

    def block(start: int, count: int) -> None:
        lib.facelab_render_views(grid, march, look, views, start, count, alpha.data_ptr(), albedo.data_ptr(),
                                 normal.data_ptr())

    tile_w, tile_h = ctypes.c_int32(), ctypes.c_int32()
    lib.facelab_tile(ctypes.byref(tile_w), ctypes.byref(tile_h))  # a view's pixels go in tiles of this size
    per_view = -(-h // tile_h.value) * -(-w // tile_w.value) * tile_w.value * tile_h.value  # slots: whole tiles
    _blocks(block, len(cameras) * per_view, None if progress is None else (lambda done: progress(done / per_view)),
            BLOCK)
    del pairs, kept  # what the structures pointed at: kept until the last block is done


def shade_views(alpha: torch.Tensor, albedo: torch.Tensor, normal: torch.Tensor, lights: torch.Tensor,
                background: torch.Tensor) -> torch.Tensor:
    """``march_colour.shade_views`` on the CPU eight pixels at once (``usable`` says when): the same bytes,
    but for a level here and there where the value lies within float rounding of a byte's edge."""
    lib = library()
    n, h, w, _ = alpha.shape
    alpha, albedo, normal = alpha.float().contiguous(), albedo.half().contiguous(), normal.half().contiguous()
    folded = lights_with_band_factors(lights)
    bg = background.float().contiguous()
    views = torch.empty(n, h, w, 3, dtype=torch.uint8)

    def block(start: int, count: int) -> None:
        lib.facelab_shade_views(alpha.data_ptr(), albedo.data_ptr(), normal.data_ptr(), folded.data_ptr(), h * w,
                                bg.data_ptr(), start, count, views.data_ptr())

    _blocks(block, n * h * w, None, BLOCK)
    return views


def srgb_bytes(values: torch.Tensor) -> torch.Tensor:
    """The display bytes of linear values (float32, clamped to [0, 1]) as the shading's thresholds give them."""
    values = values.float().contiguous()
    out = torch.empty(values.shape, dtype=torch.uint8)
    library().facelab_srgb_bytes(values.data_ptr(), values.numel(), out.data_ptr())
    return out
