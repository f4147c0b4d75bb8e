"""Time to judge a turntable video with the embedded judge (decode, face tracking, evidence, scoring).

Usage: python bench/bench_judge.py [--size 256] [--frames 48] [--threads 2] [--photo PATH] [--repeat 3]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, turntable_arguments

sys.path.insert(0, str(ROOT))


def main() -> None:
    args = turntable_arguments(__doc__)

    import torch

    from face_nerf.export import render_views, turntable_poses, write_video
    from face_nerf.pipeline import reconstruct
    from judge.analytic import EmbeddedJudge
    from judge.evidence import FaceModels, gather_evidence
    from judge.frames import load_clip
    from judge.track import track_faces

    torch.set_num_threads(args.threads)
    frames, _ = render_views(reconstruct(args.photo).field, turntable_poses(args.frames, 45.0), args.size)
    video = Path(tempfile.mkdtemp()) / "turntable.mp4"
    write_video(frames, video)
    judge = EmbeddedJudge()
    judge.judge(load_clip(frames[:2]))  # loads mediapipe's graphs once
    print(f"photo: {Path(args.photo).name}, {args.frames} frames at {args.size} px, {args.threads} torch threads")
    print(f"{'decode':>7} {'track':>6} {'evidence':>8} | {'judge (all)':>11}")
    for _ in range(3):
        t0 = time.perf_counter()
        clip = load_clip(video)
        t1 = time.perf_counter()
        track = track_faces(clip.frames)
        t2 = time.perf_counter()
        gather_evidence(clip.frames, track, judge.models)
        t3 = time.perf_counter()
        result = judge.judge(load_clip(video))
        t4 = time.perf_counter()
        print(f"{t1 - t0:7.2f} {t2 - t1:6.2f} {t3 - t2:8.2f} | {t4 - t3:11.2f}")
    print(f"result: {result.summary}")


if __name__ == "__main__":
    main()
