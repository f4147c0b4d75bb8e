"""Cost of a text edit plus the re-render of a 48-frame turntable, on a finished reconstruction.

Usage: python bench/bench_edit.py [--size 256] [--frames 48] [--threads 2] [--photo PATH]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from common import ROOT, turntable_arguments

sys.path.insert(0, str(ROOT))

PROMPTS = ("red lipstick", "blue eyes", "grey hair", "big smile", "older, with a grey beard and blue eyes",
           "sunglasses", "marble statue", "clown paint", "undead")


def main() -> None:
    args = turntable_arguments(__doc__)

    import torch

    from face_nerf.edit import EmbeddedEditor
    from face_nerf.export import render_views, turntable_poses
    from face_nerf.pipeline import reconstruct

    torch.set_num_threads(args.threads)
    recon = reconstruct(args.photo)
    editor = EmbeddedEditor()
    start = time.perf_counter()
    editor.parse("undead")  # loads the sentence-embedding model once
    print(f"photo: {Path(args.photo).name}, {args.frames} frames at {args.size} px, {args.threads} torch threads; "
          f"embedding model load {time.perf_counter() - start:.2f} s (once per process)")
    poses = turntable_poses(args.frames, 45.0)
    print(f"{'prompt':<42} {'edit':>6} {'turntable':>9} | {'total':>6}")
    for prompt in PROMPTS:
        t0 = time.perf_counter()
        result = editor.edit(recon.field, prompt)
        t1 = time.perf_counter()
        render_views(result.field, poses, args.size)
        t2 = time.perf_counter()
        print(f"{prompt:<42} {t1 - t0:>6.2f} {t2 - t1:>9.2f} | {t2 - t0:>6.2f}")


if __name__ == "__main__":
    main()
