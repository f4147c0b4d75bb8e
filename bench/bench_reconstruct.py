"""Per-stage times and peak memory of a reconstruction with a 48-frame turntable, at 256 and 512 px.

Each size runs in its own process so peak memory (max RSS) belongs to that run alone.
Usage: python bench/bench_reconstruct.py [--sizes 256 512] [--photo PATH] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_one(photo: str, size: int, frames: int, threads: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch

    from face_nerf.pipeline import ReconstructionConfig, reconstruct, render_outputs, write_outputs

    torch.set_num_threads(threads)
    config = ReconstructionConfig(frames=frames, size=size)
    start = time.perf_counter()
    recon = reconstruct(photo, config)
    outputs = render_outputs(recon, config)
    with tempfile.TemporaryDirectory() as tmp:
        write_outputs(recon, outputs, Path(tmp) / "run", config.fps)
    total = time.perf_counter() - start
    t = outputs.report["timings_s"]
    core = sum(t[k] for k in ("load", "landmarks", "geometry", "field", "turntable"))
    return {"size": size, "frames": frames, "threads": threads, "stages_s": t,
            "reconstruction_plus_turntable_s": round(core, 3), "everything_s": round(total, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--photo", default=str(ROOT / "assets" / "examples" / "astronaut.png"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.photo, args.sizes[0], args.frames, args.threads)))
        return
    print(f"photo: {Path(args.photo).name}, {args.frames} frames, {args.threads} torch threads")
    print(f"{'size':>5} {'landmarks':>9} {'geometry':>8} {'field':>6} {'turntable':>9} {'strip':>6} {'input':>6} "
          f"{'mesh':>6} {'write':>6} | {'recon+tt':>8} {'all':>6} {'peak MB':>8}")
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--child", "--sizes", str(size), "--frames", str(args.frames),
               "--threads", str(args.threads), "--photo", args.photo]
        line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        r = json.loads(line)
        s = r["stages_s"]
        print(f"{size:>5} {s['landmarks']:>9.2f} {s['geometry']:>8.2f} {s['field']:>6.2f} {s['turntable']:>9.2f} "
              f"{s['strip']:>6.2f} {s['input_view']:>6.2f} {s['mesh']:>6.2f} {s['write']:>6.2f} | "
              f"{r['reconstruction_plus_turntable_s']:>8.2f} {r['everything_s']:>6.2f} {r['peak_rss_mb']:>8.0f}")


if __name__ == "__main__":
    main()
