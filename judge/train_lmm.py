"""Command line: python -m judge.train_lmm DATA --lmm-model MODEL --out ADAPTER

DATA: a benchmark-style folder (labels.json / labels.csv beside the videos) or a spot-check export
(python -m judge.annotations export ratings.json). Writes a LoRA adapter with score and saliency heads
that the LMM judge loads (--lmm-adapter / $FACELAB_LMM_ADAPTER), and prints the held-out metrics."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from face_nerf.errors import FaceLabError
from judge.lmm.train import TrainConfig

TOOL = "judge.train_lmm"  # the writer named in the adapter folder's marker


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m judge.train_lmm", description="Train the LMM judge's LoRA "
                                     "adapter and heads on rated turntables.")
    parser.add_argument("data", help="benchmark-style folder (labels.json/csv) or a spot-check export (.json)")
    parser.add_argument("--lmm-model", help="Qwen2.5-VL / Qwen2-VL hub id or local folder (default $FACELAB_LMM_MODEL)")
    parser.add_argument("--out", required=True, help="adapter folder to write: new, empty, or an earlier adapter "
                        "of this command (replaced atomically); a folder holding other files is refused")
    parser.add_argument("--stages", default="levels,heads", help="levels, heads or both (default: levels,heads)")
    parser.add_argument("--rank", type=int, default=d.rank, help=f"LoRA rank (default {d.rank})")
    parser.add_argument("--alpha", type=int, default=d.alpha, help=f"LoRA alpha (default {d.alpha})")
    parser.add_argument("--lr", type=float, default=d.lr, help=f"stage-1 learning rate (default {d.lr})")
    parser.add_argument("--epochs", type=int, default=d.epochs, help=f"stage-1 epochs (default {d.epochs})")
    parser.add_argument("--head-lr", type=float, default=d.head_lr, help=f"stage-2 learning rate (default {d.head_lr})")
    parser.add_argument("--head-epochs", type=int, default=d.head_epochs, help=f"stage-2 epochs (default {d.head_epochs})")
    parser.add_argument("--no-saliency", action="store_true", help="do not train the saliency head")
    parser.add_argument("--holdout", type=float, default=d.holdout, help=f"held-out fraction (default {d.holdout})")
    parser.add_argument("--frames", type=int, default=d.frames, help=f"frames per video (default {d.frames})")
    parser.add_argument("--side", type=int, default=d.side, help=f"frame size the model sees (default {d.side})")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--device", help="cuda, cpu, ... (default: CUDA when available)")
    parser.add_argument("--lmm-allow-cpu", action="store_true", help="train on the CPU even when that would be slow")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, low in (("rank", 1), ("alpha", 1), ("epochs", 1), ("head_epochs", 0), ("frames", 1), ("side", 28)):
        if getattr(args, name) < low:
            parser.error(f"--{name.replace('_', '-')} must be at least {low}. Got {getattr(args, name)}.")
    if not 0 <= args.holdout < 1:
        parser.error(f"--holdout must lie in [0, 1). Got {args.holdout}.")
    if args.lr <= 0 or args.head_lr <= 0:
        parser.error("--lr and --head-lr must be positive.")
    from face_nerf.output_folder import check_output_folder, staged_folder
    from judge.lmm.adapter import save_adapter
    from judge.lmm.checkpoint import LMMConfig, load_lmm
    from judge.lmm.data import read_dataset
    from judge.lmm.train import train, training_meta

    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    if not stages or set(stages) - {"levels", "heads"}:
        print(f"error: --stages takes levels, heads or both. Got {args.stages!r}.", file=sys.stderr)
        return 2
    config = TrainConfig(rank=args.rank, alpha=args.alpha, lr=args.lr, epochs=args.epochs, head_lr=args.head_lr,
                         head_epochs=args.head_epochs, saliency=not args.no_saliency, holdout=args.holdout,
                         seed=args.seed, frames=args.frames, side=args.side)
    inputs = tuple(p for p in (args.data, args.lmm_model) if p and Path(p).exists())
    try:
        check_output_folder(args.out, TOOL, inputs)  # a bad --out fails now, not after the training
        samples = read_dataset(args.data)
        lm_config = LMMConfig(model=args.lmm_model, frames=args.frames, side=args.side, device=args.device,
                              allow_cpu=args.lmm_allow_cpu).resolved()
        lm = load_lmm(lm_config)
        report = train(lm, samples, config, stages)
        with staged_folder(args.out, TOOL, inputs) as staging:
            save_adapter(lm.model, lm.heads, {**training_meta(config, report, lm_config.model), **lm.adapter_meta},
                         staging)
    except FaceLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"trained on {report.train_items} items, evaluated on {report.test_items}")
    if report.stage1_losses:
        print(f"stage 1 loss: {report.stage1_losses[0]:.4f} -> {report.stage1_losses[-1]:.4f}")
    if report.stage2_losses:
        print(f"stage 2 loss: {report.stage2_losses[0]:.4f} -> {report.stage2_losses[-1]:.4f}")
    print(json.dumps(report.metrics, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
