"""Rendering against what this machine allows (issue 21): a reconstructed head's turntable at 256 and 512 px,
its stages, and its rates beside the machine's memory bandwidth and torch's grid_sample rate.

Rates: rays marched per second; band samples per second (each ray that reaches the surface is sampled
``band_samples`` times, every sample a trilinear lookup of the distance grid); all per core-second
(seconds x threads), so they compare with the machine's own.

Two modes: "transfer" keeps the 27-channel light transfer for relighting (the app), "lit" shades as it
renders (``relightable=False``: the command line). Peak RSS is the process's: run one size and mode for a
clean figure (``--sizes 1024 --modes lit``).

Usage: python bench/bench_render.py [--sizes 256 512] [--modes transfer lit] [--frames 48] [--threads 2] [--photo PATH]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

from common import ROOT

sys.path.insert(0, str(ROOT))


def memory_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """GB/s of one core copying a large array (read + write counted)."""
    import numpy as np

    source = np.ones(megabytes * 2**20 // 8)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * source.nbytes / best / 1e9


def grid_sample_rate(points: int = 1 << 20, side: int = 128, repeats: int = 3) -> float:
    """Trilinear lookups per second of torch's 3D grid_sample (one channel, a side^3 grid)."""
    import torch
    import torch.nn.functional as F

    grid = torch.rand(1, 1, side, side, side)
    coords = torch.rand(1, 1, 1, points, 3) * 2 - 1
    F.grid_sample(grid, coords, align_corners=True)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        F.grid_sample(grid, coords, align_corners=True)
        best = min(best, time.perf_counter() - start)
    return points / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", nargs="+", choices=("transfer", "lit"), default=["transfer", "lit"])
    parser.add_argument("--photo", default=str(ROOT / "assets" / "examples" / "astronaut.png"))
    args = parser.parse_args()

    import torch

    import face_nerf.march as march
    from face_nerf.export import render_views, turntable_poses
    from face_nerf.pipeline import reconstruct
    from face_nerf.render import MarchSettings

    torch.set_num_threads(args.threads)
    bandwidth, lookups = memory_bandwidth(), grid_sample_rate()
    print(f"machine: {bandwidth:.1f} GB/s memory copy (one core); torch grid_sample 3D {lookups / 1e6:.1f} M lookups/s "
          f"({torch.get_num_threads()} threads)")
    field = reconstruct(args.photo).field
    poses = turntable_poses(args.frames, 45.0)
    counted = {"rays": 0, "hits": 0, "seconds": 0.0}
    kernels = {"march_band": march.march_band, "march_surface": march.march_surface}

    def counting(name):
        def run(*a, **k):
            start = time.perf_counter()
            result = kernels[name](*a, **k)
            counted["rays"] += a[-4].shape[0]  # origins, dirs, beta, settings come last
            counted["hits"] += (result[0] if isinstance(result, tuple) else result.rays).numel()
            counted["seconds"] += time.perf_counter() - start
            return result
        return run

    march.march_band, march.march_surface = counting("march_band"), counting("march_surface")
    samples_per_hit = MarchSettings().band_samples
    for size in args.sizes:
        for mode in args.modes:
            relightable = mode == "transfer"
            render_views(field, poses[:2], size, relightable=relightable)  # first call: the kernel loaded
            times = []
            for _ in range(args.repeats):
                counted.update(rays=0, hits=0, seconds=0.0)
                start = time.perf_counter()
                render_views(field, poses, size, relightable=relightable)
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            core_seconds = seconds * args.threads
            samples = counted["hits"] * samples_per_hit
            print(f"{size} px, {args.frames} frames, {mode}: **{seconds:.2f} s** (median of {args.repeats}; "
                  f"{', '.join(f'{t:.2f}' for t in times)}), marching {counted['seconds']:.2f} s of it; "
                  f"{counted['rays'] / 1e6:.2f} M rays, {counted['hits'] / 1e6:.2f} M reach the surface; "
                  f"{samples / core_seconds / 1e6:.1f} M band samples and {counted['rays'] / core_seconds / 1e6:.2f} M "
                  f"rays per core-second over the whole render")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"peak RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
