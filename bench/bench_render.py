"""Rendering against what the machine allows (issue 21): a reconstructed head's turntable at 256 and 512 px,
its rates beside the machine's memory bandwidth and torch's grid_sample rate, and how far it is from the
slow reference renderer.

Rates: rays per second, band samples per second (each ray that reaches the surface is sampled
``band_samples`` times, every sample a trilinear lookup of the distance grid) and lookups per second
(the distance grid's, sphere tracing's and the band's, and the colour lookups: one a ray that reaches
the surface, or one a kept sample; counted on the torch twin of the march, which takes the same steps,
for every sixth distinct view); all per core-second (seconds x threads), so they compare with the
machine's own. On a GPU: frames per second.

Two modes: "transfer" keeps the views' albedo and normals for relighting (the app), "lit" keeps nothing
once the frames are shaded (the command line). Peak RSS is the process's, taken once the renders are
done and again at the end (the lookup counting runs torch's path, whose arrays are larger): run one size
and mode for a clean figure (``--sizes 1024 --modes lit``).

``--check N`` renders N random pixels of each of 8 turntable views with ``render_rays_reference`` too
(4096 samples a ray, no skipping, the same colour rule: ``--colour-at``) and prints the mean absolute
difference in levels of 255.
``--device cuda`` renders on a GPU; ``--field`` loads a head field saved with ``--save-field`` instead of
reconstructing one (for a machine without the face analysis's packages).

Usage: python bench/bench_render.py [--sizes 256 512] [--modes transfer lit] [--frames 48] [--threads 2]
       [--photo PATH | --field PATH] [--save-field PATH] [--device cpu|cuda] [--check N]
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


class _CountingField:
    """A field whose distance lookups are counted (points asked for), for the torch twin of the march."""

    def __init__(self, field):
        self.field, self.bounds, self.beta, self.lookups = field, field.bounds, field.beta, 0

    def sdf(self, points):
        self.lookups += points.shape[0]
        return self.field.sdf(points)


def lookups_per_ray(field, poses, size: int, settings) -> tuple[float, float]:
    """(distance lookups, colour lookups) per ray over the distinct views of ``poses``, counted on the
    torch path, which takes the compiled kernel's steps (the tests hold them equal)."""
    from dataclasses import replace

    from face_nerf.export import view_camera
    from face_nerf.render import surface_band

    counting, rays, colour = _CountingField(field), 0, 0
    for pose in poses:
        origins, dirs = view_camera(field, pose.yaw, pose.pitch, size).rays()
        band = surface_band(counting, origins.to(field.bounds.device), dirs.to(field.bounds.device),
                            replace(settings, kernel=False))
        rays, colour = rays + origins.shape[0], colour + band.points.shape[0]
    return counting.lookups / rays, colour / rays


def reference_check(field, poses, size: int, pixels: int, settings) -> tuple[float, float]:
    """Mean absolute difference (levels of 255) between the turntable's frames and render_rays_reference at
    ``pixels`` random pixels of each pose, over the background, and its spread between poses."""
    import numpy as np
    import torch

    from face_nerf.export import BACKGROUND, render_views, view_camera
    from face_nerf.lighting import srgb_to_linear, to_display
    from face_nerf.relight import lambert_shader, to_uint8
    from face_nerf.render import render_rays_reference

    frames, _ = render_views(field, poses, size, settings=settings, relightable=False)
    background = srgb_to_linear(torch.tensor(BACKGROUND, device=field.bounds.device))
    generator = torch.Generator().manual_seed(0)
    differences = []
    for frame, pose in zip(frames, poses):
        origins, dirs = (r.to(field.bounds.device) for r in view_camera(field, pose.yaw, pose.pitch, size).rays())
        pick = torch.randperm(origins.shape[0], generator=generator)[:pixels].to(origins.device)
        parts = [render_rays_reference(field, o, d, 4096, lambert_shader(field.photo_light), settings.colour_at)
                 for o, d in zip(origins[pick].split(256), dirs[pick].split(256))]
        rgb, alpha = torch.cat([p.rgb for p in parts]), torch.cat([p.alpha for p in parts])
        reference = to_uint8(to_display(rgb + (1.0 - alpha) * background)).astype(int)
        differences.append(np.abs(frame.reshape(-1, 3)[pick.cpu().numpy()].astype(int) - reference).mean())
    return float(np.mean(differences)), float(np.std(differences))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", nargs="+", choices=("transfer", "lit"), default=["transfer", "lit"])
    parser.add_argument("--photo", default=str(ROOT / "assets" / "examples" / "astronaut.png"))
    parser.add_argument("--field", help="a head field saved with --save-field, instead of reconstructing --photo")
    parser.add_argument("--save-field", help="save the reconstructed head field here")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--check", type=int, default=0, metavar="N", help="compare N pixels a view with the reference")
    parser.add_argument("--colour-at", choices=("centroid", "samples"), default="centroid",
                        help="one colour lookup a ray (default) or one at each kept sample")
    args = parser.parse_args()

    import torch

    from face_nerf.export import pose_key, render_views, turntable_poses
    from face_nerf.field import HeadField
    from face_nerf.render import MarchSettings, kernel_runs_on

    torch.set_num_threads(args.threads)
    bandwidth, lookups = memory_bandwidth(), grid_sample_rate()
    print(f"machine: {bandwidth:.1f} GB/s memory copy (one core); torch grid_sample 3D {lookups / 1e6:.1f} M lookups/s "
          f"({torch.get_num_threads()} threads)")
    if args.field:
        field = HeadField.load(args.field)
    else:
        from face_nerf.pipeline import reconstruct

        field = reconstruct(args.photo).field
        if args.save_field:
            field.save(args.save_field)
    field = field.to(args.device)
    device = torch.device(args.device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    settings = MarchSettings(colour_at=args.colour_at)
    renderer = "torch operations"
    if kernel_runs_on(device):
        from face_nerf import march_packets

        renderer = march_packets.describe() if march_packets.usable(device, settings) else "the compiled Warp kernels"
    print(f"rendering on {gpu or 'the CPU'} by {renderer}")
    poses = turntable_poses(args.frames, 45.0)
    counted = {"rays": 0, "hits": 0, "seconds": 0.0}
    kernel = None

    def counting(volume, appearance, cameras, beta, settings, alpha, albedo, normal, progress=None):
        start = time.perf_counter()
        kernel(volume, appearance, cameras, beta, settings, alpha, albedo, normal, progress)
        counted["rays"] += alpha.numel()
        counted["hits"] += int((alpha > 0).sum())
        counted["seconds"] += time.perf_counter() - start

    if kernel_runs_on(device):
        import face_nerf.march_colour as march

        kernel = march.march_views
        march.march_views = counting
    samples_per_hit = settings.band_samples
    counted_poses = list({pose_key(p): p for p in poses}.values())[::6]  # a few of the distinct views
    print(f"colour looked up {'once a ray' if args.colour_at == 'centroid' else 'at every kept sample'}")
    rendered_peak = 0.0
    for size in args.sizes:
        lines = []
        for mode in args.modes:
            relightable = mode == "transfer"
            render_views(field, poses[:2], size, settings=settings, relightable=relightable)  # the kernels loaded
            times = []
            for _ in range(args.repeats):
                counted.update(rays=0, hits=0, seconds=0.0)
                start = time.perf_counter()
                render_views(field, poses, size, settings=settings, relightable=relightable)
                times.append(time.perf_counter() - start)
            lines.append((mode, times, dict(counted)))
        rendered_peak = max(rendered_peak, peak_rss_mb())
        distance, colour = lookups_per_ray(field, counted_poses, size, settings)  # the torch twin: after the renders
        for mode, times, done in lines:
            seconds = statistics.median(times)
            core_seconds = seconds * args.threads
            samples = done["hits"] * samples_per_hit
            lookups = done["rays"] * (distance + colour)
            rates = (f"{samples / core_seconds / 1e6:.1f} M band samples, {lookups / core_seconds / 1e6:.1f} M lookups "
                     f"({distance:.1f} of the distance and {colour:.2f} of colour a ray) and "
                     f"{done['rays'] / core_seconds / 1e6:.2f} M rays per core-second over the whole render"
                     if gpu is None else f"{args.frames / seconds:.0f} frames/s")
            print(f"{size} px, {args.frames} frames, {mode}: **{seconds:.3f} s** (median of {args.repeats}; "
                  f"{', '.join(f'{t:.3f}' for t in times)}), {done['seconds']:.3f} s of it in the renderer's kernel; "
                  f"{done['rays'] / 1e6:.2f} M rays, {done['hits'] / 1e6:.2f} M reach the surface; {rates}")
        if args.check:
            mean, spread = reference_check(field, turntable_poses(8, 45.0), size, args.check, settings)
            print(f"{size} px against render_rays_reference ({args.check} pixels of each of 8 views): "
                  f"**{mean:.2f} levels** mean absolute difference (views {spread:.2f} apart)")
    print(f"peak RSS of this process: {rendered_peak:.0f} MB by the end of the renders, {peak_rss_mb():.0f} MB with the "
          f"lookup counting (the torch twin) and the reference check")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


if __name__ == "__main__":
    main()
