"""Command line: python -m judge VIDEO --out DIR  (judge.json, heatmaps.npz, overlay.png)
             python -m judge batch INPUT... --out DIR [--workers N | --ray [ADDRESS]] [--resume] [--labels FILE]
             python -m judge VIDEO --ask "Is the mouth distorted?"
             python -m judge VIDEO --backend lmm --lmm-model MODEL [--lmm-adapter ADAPTER] --out DIR

VIDEO: an mp4/webm/gif turntable, a folder of frames, or one image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable

import numpy as np

from face_nerf.errors import FaceLabError
from judge.frames import MAX_FRAMES
from judge.result import JudgeResult

TOOL = "judge"  # the writer named in the output folder's marker


def frame_count(text: str) -> int:
    """``--max-frames``: a whole number of at least 1 (argparse reports the error and exits with 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, 1 or more (default {MAX_FRAMES}). "
                                         f"Got {text!r}.") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (default {MAX_FRAMES}). Got {value}.")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m judge", description="Judge a 3D face turntable: quality and "
                                     "authenticity scores, distortions, heatmaps. For many clips: python -m judge batch --help.")
    parser.add_argument("video", help="mp4/webm/gif turntable, a folder of frames, or one image")
    parser.add_argument("--out", help="output folder for judge.json, heatmaps.npz, overlay.png: new, empty, or an "
                        "earlier output of this command (replaced atomically); a folder holding other files is refused")
    parser.add_argument("--ask", metavar="QUESTION", help='a question about the result, e.g. "Which region is worst?"')
    parser.add_argument("--max-frames", type=frame_count, default=MAX_FRAMES,
                        help=f"frames analysed at most, 1 or more (default {MAX_FRAMES})")
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


def write_judgement(result: JudgeResult, out_dir: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """Write judge.json, heatmaps.npz (``frames`` T x H x W, ``views`` the strip map) and overlay.png
    into ``out_dir``, replacing it atomically.

    Args:
        inputs: paths the run read (the video); ``out_dir`` may not be or contain them.

    Raises:
        OutputError: ``out_dir`` holds files this command did not write, contains an input, or cannot
            be written; nothing is written then.
    """
    from PIL import Image

    from face_nerf.output_folder import staged_folder
    from judge.heatmap import overlay

    with staged_folder(out_dir, TOOL, inputs) as staging:
        (staging / "judge.json").write_text(result.to_json())
        np.savez_compressed(staging / "heatmaps.npz", frames=result.frame_heatmaps.astype(np.float32),
                            views=result.strip_heatmap.astype(np.float32))
        Image.fromarray(overlay(result.strip, result.strip_heatmap)).save(staging / "overlay.png")
    return Path(out_dir)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["batch"]:  # python -m judge batch INPUT... --out DIR
        from judge.batch import main as batch

        return batch(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    lmm_options = [f"--{n.replace('_', '-')}" for n in ("lmm_model", "lmm_adapter", "lmm_allow_cpu", "device",
                                                         "lmm_no_heatmaps") if getattr(args, n)]
    if args.backend != "lmm" and lmm_options:
        parser.error(f"{', '.join(lmm_options)} only apply to the LMM judge: add --backend lmm.")
    if not args.out and not args.ask:
        print("error: give --out DIR to write the judgement, --ask QUESTION, or both.", file=sys.stderr)
        return 2
    from face_nerf.output_folder import check_output_folder
    from face_nerf.pipeline import set_cpu_threads
    from judge.analytic import EmbeddedJudge
    from judge.ask import ask
    from judge.frames import load_clip

    set_cpu_threads()
    inputs = tuple(p for p in (args.video, args.lmm_model, args.lmm_adapter) if p and Path(p).exists())
    try:
        if args.out:
            check_output_folder(args.out, TOOL, inputs)  # a bad --out fails now, not after the judging
        if args.backend == "lmm":
            from judge.lmm.checkpoint import LMMConfig
            from judge.lmm.judge import LMMJudge

            # One judgement: eager decoding, as compiling it (tens of seconds on a GPU) would cost more than
            # it saves (`python -m judge batch` compiles once for many clips).
            judge = LMMJudge(LMMConfig(model=args.lmm_model, adapter=args.lmm_adapter, device=args.device,
                                       allow_cpu=args.lmm_allow_cpu, heatmaps=not args.lmm_no_heatmaps,
                                       static_cache=False))
        else:
            judge = EmbeddedJudge()
        clip = load_clip(args.video, max_frames=args.max_frames)
        result = judge.judge(clip)
        if args.out:
            write_judgement(result, args.out, inputs)
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
