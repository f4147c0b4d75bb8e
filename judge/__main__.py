"""Command line: python -m judge VIDEO --out DIR  (judge.json, heatmaps.npz, overlay.png)
             python -m judge VIDEO --ask "Is the mouth distorted?"
             python -m judge VIDEO --backend lmm --lmm-model MODEL [--lmm-adapter ADAPTER] --out DIR

VIDEO: an mp4/webm/gif turntable, a folder of frames, or one image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from face_nerf.errors import FaceLabError
from judge.frames import MAX_FRAMES
from judge.result import JudgeResult


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m judge", description="Judge a 3D face turntable: quality and "
                                     "authenticity scores, distortions, heatmaps.")
    parser.add_argument("video", help="mp4/webm/gif turntable, a folder of frames, or one image")
    parser.add_argument("--out", help="output folder for judge.json, heatmaps.npz, overlay.png (replaced atomically)")
    parser.add_argument("--ask", metavar="QUESTION", help='a question about the result, e.g. "Which region is worst?"')
    parser.add_argument("--max-frames", type=int, default=MAX_FRAMES, help=f"frames analysed at most (default {MAX_FRAMES})")
    lmm = parser.add_argument_group("LMM judge (--backend lmm)")
    parser.add_argument("--backend", choices=["embedded", "lmm"], default="embedded",
                        help="embedded (offline, default) or lmm (a Qwen2.5-VL / Qwen2-VL checkpoint)")
    lmm.add_argument("--lmm-model", help="hub id or local folder (default $FACELAB_LMM_MODEL)")
    lmm.add_argument("--lmm-adapter", help="adapter folder from python -m judge.train_lmm (default $FACELAB_LMM_ADAPTER)")
    lmm.add_argument("--lmm-allow-cpu", action="store_true", help="run a large model on the CPU anyway (minutes)")
    lmm.add_argument("--device", help="cuda, cpu, ... (default: CUDA when available)")
    lmm.add_argument("--lmm-no-heatmaps", action="store_true", help="skip the heatmaps (saves the score-gradient "
                     "backward pass when the adapter has no saliency head)")
    return parser


def write_judgement(result: JudgeResult, out_dir: str | Path) -> Path:
    """Write judge.json, heatmaps.npz (``frames`` T x H x W, ``views`` the strip map) and overlay.png
    into ``out_dir``, replacing it atomically."""
    from PIL import Image

    from face_nerf.pipeline import staged_folder
    from judge.heatmap import overlay

    with staged_folder(out_dir) as staging:
        (staging / "judge.json").write_text(result.to_json())
        np.savez_compressed(staging / "heatmaps.npz", frames=result.frame_heatmaps.astype(np.float32),
                            views=result.strip_heatmap.astype(np.float32))
        Image.fromarray(overlay(result.strip, result.strip_heatmap)).save(staging / "overlay.png")
    return Path(out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    lmm_options = [f"--{n.replace('_', '-')}" for n in ("lmm_model", "lmm_adapter", "lmm_allow_cpu", "device",
                                                         "lmm_no_heatmaps") if getattr(args, n)]
    if args.backend != "lmm" and lmm_options:
        parser.error(f"{', '.join(lmm_options)} only apply to the LMM judge: add --backend lmm.")
    if not args.out and not args.ask:
        print("error: give --out DIR to write the judgement, --ask QUESTION, or both.", file=sys.stderr)
        return 2
    from face_nerf.pipeline import set_cpu_threads
    from judge.analytic import EmbeddedJudge
    from judge.ask import ask
    from judge.frames import load_clip

    set_cpu_threads()
    try:
        if args.backend == "lmm":
            from judge.lmm.checkpoint import LMMConfig
            from judge.lmm.judge import LMMJudge

            judge = LMMJudge(LMMConfig(model=args.lmm_model, adapter=args.lmm_adapter, device=args.device,
                                       allow_cpu=args.lmm_allow_cpu, heatmaps=not args.lmm_no_heatmaps))
        else:
            judge = EmbeddedJudge()
        clip = load_clip(args.video, max_frames=args.max_frames)
        result = judge.judge(clip)
        if args.out:
            write_judgement(result, args.out)
        print(f"[{result.backend}] {result.summary}")
        if args.out:
            print(f"wrote {args.out}")
        if args.ask:
            answer = judge.ask(clip, args.ask) if args.backend == "lmm" else ask(result, args.ask)
            print(answer.text)
            return 0 if answer.answered else 1
    except FaceLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
