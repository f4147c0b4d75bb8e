"""Cost of relighting a finished field: re-shading the kept light transfer of a 48-frame turntable, the
3-view strip and the input view, for every preset, without reconstructing or ray-marching the turntable.

Usage: python bench/bench_relight.py [--size 256] [--frames 48] [--threads 2] [--photo PATH]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, turntable_arguments

sys.path.insert(0, str(ROOT))


def main() -> None:
    args = turntable_arguments(__doc__)

    import torch

    from face_nerf.export import write_video
    from face_nerf.lighting import PRESETS, Lighting
    from face_nerf.pipeline import ReconstructionConfig, reconstruct, relight_outputs, render_outputs

    torch.set_num_threads(args.threads)
    config = ReconstructionConfig(frames=args.frames, size=args.size)
    recon = reconstruct(args.photo, config)
    outputs = render_outputs(recon, config)
    transfer = outputs.turntable_transfer
    megabytes = sum(t.numel() * t.element_size() for t in (transfer.alpha, transfer.albedo, transfer.normal)) / 2**20
    print(f"photo: {Path(args.photo).name}, {args.frames} frames at {args.size} px, {args.threads} torch threads")
    print(f"first render of the turntable (ray marching, G-buffer kept): {outputs.report['timings_s']['turntable']:.2f} s; "
          f"G-buffer of {transfer.alpha.shape[0]} views kept, {megabytes:.0f} MB")
    print(f"{'lighting':<10} {'fixed to':<8} {'turntable':>9} {'strip':>6} {'input':>6} {'video':>6} | {'relit total':>11}")
    totals = []
    for name in PRESETS:
        for fixed_to in ("world", "camera"):
            start = time.perf_counter()
            relit = relight_outputs(recon, outputs, Lighting(name, fixed_to=fixed_to))
            with tempfile.TemporaryDirectory() as tmp:
                video_start = time.perf_counter()
                write_video(relit.frames, Path(tmp) / "turntable.mp4", config.fps)
                video = time.perf_counter() - video_start
            total = time.perf_counter() - start
            totals.append(total)
            t = relit.report["timings_s"]
            print(f"{name:<10} {fixed_to:<8} {t['relight_turntable']:>9.3f} {t['relight_strip']:>6.3f} "
                  f"{t['relight_input_view']:>6.3f} {video:>6.3f} | {total:>11.3f}")
    print(f"median relight incl. the mp4: {statistics.median(totals):.3f} s, slowest {max(totals):.3f} s")


if __name__ == "__main__":
    main()
