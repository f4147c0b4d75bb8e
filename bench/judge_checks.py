"""Full judgements of issue 17's named cases, on each example photo's 48-frame, 256 px turntable:
heavy noise on frames 16-31, a 3-pixel blur, a face-only mask, the previous reconstruction (from git
history, as ``judge_dataset.py`` makes it), a cartoon look and an identity drift; with what ``ask`` answers.

Usage: python bench/judge_checks.py [--data /tmp/facelab-judge-data] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from common import ROOT

sys.path.insert(0, str(ROOT))

QUESTIONS = ("Is it blurry?", "Is it noisy?", "Is the mouth distorted?", "Which frames?")


def cases(frames: np.ndarray, other: np.ndarray, old: np.ndarray | None):
    """Yield (name, frames) of the checked cases of one clean turntable."""
    from scipy import ndimage

    from bench.degrade import BEYOND_FACE, clip_region_masks, degrade, head_masks
    from judge_dataset import drift

    yield "clean", frames
    noisy = frames.copy()
    rng = np.random.default_rng(0)
    noisy[16:32] = np.clip(frames[16:32] + rng.normal(0, 28.0, frames[16:32].shape), 0, 255)
    yield "noise on frames 16-31", noisy
    yield "blur sigma 3", np.clip(ndimage.gaussian_filter(frames.astype(np.float32), (0, 3, 3, 0)), 0, 255).astype(np.uint8)
    masks = clip_region_masks(frames)
    yield "face-only mask", degrade(frames, "face_only", 5, head_masks(frames, masks["face"])[BEYOND_FACE])
    yield "cartoon look", degrade(frames, "stylise", 4)
    yield "identity drift", drift(frames, other, 5)
    if old is not None:
        yield "previous reconstruction", old


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/facelab-judge-data"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from face_nerf.export import render_views, turntable_poses
    from face_nerf.pipeline import reconstruct
    from judge.analytic import EmbeddedJudge
    from judge.ask import ask
    from judge.frames import load_clip
    from judge_dataset import old_reconstructions

    torch.set_num_threads(args.threads)
    photos = sorted((ROOT / "assets" / "examples").glob("*.*"))
    clean = {p.stem: render_views(reconstruct(p).field, turntable_poses(48, 45.0), 256)[0] for p in photos}
    old_reconstructions(photos, args.data, 48, 256, folder="old48")
    judge = EmbeddedJudge()
    for name, frames in clean.items():
        other = next(f for n, f in clean.items() if n != name)
        old_path = args.data / "old48" / f"{name}.npz"
        old = np.load(old_path)["frames"] if old_path.exists() else None
        base = None
        print(f"\n== {name} ==")
        for case, clip in cases(frames, other, old):
            start = time.perf_counter()
            result = judge.judge(load_clip(clip))
            seconds = time.perf_counter() - start
            base = base or result
            named = ", ".join(f"{d.category} ({d.probability:.2f})" for d in result.distortions)
            frames_named = result.distortions[0].frames
            inside = sum(16 <= f <= 31 for f in frames_named)
            print(f"{case:<24} Q {result.quality.mos:3.0f} ({result.quality.mos - base.quality.mos:+4.0f})  A "
                  f"{result.authenticity.mos:3.0f} ({result.authenticity.mos - base.authenticity.mos:+4.0f})  {seconds:4.1f} s  "
                  f"{named}; frames {len(frames_named)}, {inside} in 16-31")
            for question in QUESTIONS:
                print(f"    {question:<26} {ask(result, question).text[:150]}")


if __name__ == "__main__":
    main()
