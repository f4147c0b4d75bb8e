"""Judge many clips: ``python -m judge batch INPUT... --out DIR`` (``face_nerf.batch`` runs it).

Writes ``judgements.jsonl`` and ``judgements.parquet`` (one row per clip: scores, levels, categories and
their probabilities, frames analysed, backend, timings, error), ``strips/<sha256>.jpg`` (each clip's strip
with its distortion map, small, for the report) and, with ``--heatmaps``, ``heatmaps/<sha256>.npz``. With
``--labels FILE`` it also writes ``report.html`` and prints how far the judge agrees with the labels.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from judge.frames import MAX_FRAMES, VIDEO_SUFFIXES
from judge.result import CATEGORIES

TABLE = "judgements"
STRIP_HEIGHT = 128  # px of the strips kept for the report


@dataclass
class JudgeTask:
    """Judge one clip (``face_nerf.batch.Task``). ``lmm``: a ``judge.lmm.checkpoint.LMMConfig`` for the LMM
    judge; None for the embedded judge."""

    max_frames: int = MAX_FRAMES
    heatmaps: bool = False
    lmm: object | None = None
    _judge: object = field(default=None, init=False, repr=False, compare=False)  # set by ``load``, in the worker

    table = TABLE
    fields = (("quality_mos", "float"), ("quality_level", "string"), ("authenticity_mos", "float"),
              ("authenticity_level", "string"), ("top_category", "string"), ("categories", "list<string>"),
              ("probabilities", "map<string,float>"), ("face_found", "bool"), ("frames_analysed", "int"),
              ("source_frames", "int"), ("backend", "string"), ("summary", "string"), ("warnings", "list<string>"),
              ("seconds_decode", "float"), ("seconds_judge", "float"), ("strip", "string"), ("heatmaps", "string"))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_judge": None}  # a task travels to its workers unloaded

    def load(self, threads: int = 1) -> None:
        if self.lmm is not None:
            from judge.lmm.judge import LMMJudge

            self._judge = LMMJudge(self.lmm)
            self._judge.warm_up()  # the compilation once per worker, before its first clip
        else:
            from judge.analytic import EmbeddedJudge

            self._judge = EmbeddedJudge(parallel=threads > 1)

    def run(self, path: str, key: str) -> tuple[dict, dict[str, bytes]]:
        from judge.frames import load_clip

        start = time.perf_counter()
        clip = load_clip(path, max_frames=self.max_frames)
        decoded = time.perf_counter()
        result = self._judge.judge(clip)
        judged = time.perf_counter()
        files = {f"strips/{key}.jpg": strip_thumbnail(result)} if result.strip is not None else {}
        if self.heatmaps and result.frame_heatmaps is not None:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, frames=result.frame_heatmaps.astype(np.float16),
                                views=result.strip_heatmap.astype(np.float16),
                                frame_indices=np.asarray(result.frame_indices, np.int32))
            files[f"heatmaps/{key}.npz"] = buffer.getvalue()
        fields = {
            "quality_mos": round(result.quality.mos, 2), "quality_level": result.quality.level,
            "authenticity_mos": round(result.authenticity.mos, 2), "authenticity_level": result.authenticity.level,
            "top_category": result.top_category(), "categories": [d.category for d in result.distortions],
            "probabilities": {c: float(result.probabilities.get(c, 0.0)) for c in CATEGORIES},
            "face_found": result.face_found, "frames_analysed": len(result.frame_indices),
            "source_frames": clip.source_frames, "backend": result.backend, "summary": result.summary,
            "warnings": list(result.warnings), "seconds_decode": round(decoded - start, 3),
            "seconds_judge": round(judged - decoded, 3), "strip": next((n for n in files if n.startswith("strips/")), None),
            "heatmaps": next((n for n in files if n.startswith("heatmaps/")), None),
        }
        return fields, files


def strip_thumbnail(result) -> bytes:
    """The strip with its distortion map laid over it, ``STRIP_HEIGHT`` px tall, as JPEG bytes."""
    from PIL import Image

    from judge.heatmap import overlay

    image = Image.fromarray(overlay(result.strip, result.strip_heatmap))
    image = image.resize((max(1, round(image.width * STRIP_HEIGHT / image.height)), STRIP_HEIGHT), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def build_parser() -> argparse.ArgumentParser:
    from face_nerf.batch import RAY_HELP, add_runner_arguments, at_least

    parser = argparse.ArgumentParser(
        prog="python -m judge batch", description="Judge many turntables: one row per clip in judgements.parquet and "
        "judgements.jsonl; a clip that fails is a row with its error.", epilog=RAY_HELP)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="a folder (searched recursively for videos), a glob "
                        "('clips/**/*.mp4'), a manifest (.csv, .tsv or .jsonl with a 'video' column; other columns are "
                        "kept) or a clip")
    add_runner_arguments(parser, "clip")
    parser.add_argument("--heatmaps", action="store_true", help="also write heatmaps/<sha256>.npz per clip")
    parser.add_argument("--labels", metavar="FILE", help="people's scores (.csv/.tsv/.jsonl: video, quality, "
                        "authenticity[, categories]): writes report.html and prints the agreement")
    parser.add_argument("--max-frames", type=at_least(1), default=MAX_FRAMES,
                        help=f"frames analysed per clip at most (default {MAX_FRAMES})")
    lmm = parser.add_argument_group("LMM judge (--backend lmm)")
    parser.add_argument("--backend", choices=["embedded", "lmm"], default="embedded")
    lmm.add_argument("--lmm-model", help="hub id or local folder (default $FACELAB_LMM_MODEL)")
    lmm.add_argument("--lmm-adapter", help="adapter folder from python -m judge.train_lmm")
    lmm.add_argument("--lmm-allow-cpu", action="store_true", help="run a large model on the CPU anyway")
    lmm.add_argument("--device", help="cuda, cpu, ... (default: CUDA when available)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.backend != "lmm" and (args.lmm_model or args.lmm_adapter or args.lmm_allow_cpu or args.device):
        parser.error("--lmm-model, --lmm-adapter, --lmm-allow-cpu and --device only apply to --backend lmm.")
    from face_nerf.batch import print_summary, run_from_arguments
    from face_nerf.errors import FaceLabError

    try:
        lmm = None
        if args.backend == "lmm":
            from judge.lmm.checkpoint import LMMConfig

            lmm = LMMConfig(model=args.lmm_model, adapter=args.lmm_adapter, device=args.device,
                            allow_cpu=args.lmm_allow_cpu).resolved()
        labels = None
        if args.labels:
            from judge.batch_report import read_labels

            labels = read_labels(args.labels)  # a bad labels file fails now, not after the judging
        # One LMM per process: a model per worker would hold its weights once per worker.
        summary = run_from_arguments(JudgeTask(args.max_frames, args.heatmaps, lmm), args, VIDEO_SUFFIXES, "judging",
                                     1 if lmm is not None and not args.ray else None)
        print_summary(summary, "clip")
        if labels is not None:
            from judge.batch_report import agreement_report

            report = agreement_report(summary.table.with_suffix(".jsonl"), labels, Path(args.out))
            print(report.text)
            print(f"wrote {report.path}")
    except FaceLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1 if args.fail_on_error and summary.failed else 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.exit(main())
