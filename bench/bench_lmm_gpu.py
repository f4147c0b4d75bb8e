"""GPU cost of the LMM judge with the full-size Qwen2.5-VL-7B architecture, built from its config with
random weights in bf16 (timing needs no download; the tokenizer is trained on the judge's prompts and
the vocabulary padded to Qwen's 152,064 rows):

- the warm-up at start (``LMMJudge.warm_up``: on a GPU it compiles the decoding step of the static
  cache, the default there), then the first judgements after it: from a fresh thread (as the app's
  requests come) and of other clip shapes (4:3, one image), with the count of graphs compiled after it;
- one whole judgement of a turntable: 8 frames at 504 px (1,296 video tokens), both scores and the
  distortion answer (32 generated tokens), batched as the judge runs it, with the default decoding
  (compiled on a GPU) and eagerly for comparison; with the score-gradient heatmaps, and with a
  saliency head;
- training: stage-1 LoRA steps (rank 8, alpha 32, all linear layers; three rows per video) and
  stage-2 head steps on cached features; peak memory of each.

Usage: python bench/bench_lmm_gpu.py [--runs 5] [--train-steps 10] [--only-judgement] [--out bench/results/lmm_gpu.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QWEN_VOCAB = 152064


def build_judge(heatmaps: bool, size: str = "7b", device: str = "cuda", static_cache: bool | None = None):
    from transformers import Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from judge.lmm.checkpoint import LMMConfig, LoadedLMM
    from judge.lmm.judge import LMMJudge
    from judge.lmm.random_model import random_config, train_tokenizer

    tokenizer = train_tokenizer()
    config = random_config(tokenizer, size, vocab_size=QWEN_VOCAB if size == "7b" else None)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16 if device == "cuda" else torch.float32)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration(config)
    torch.set_default_dtype(torch.float32)
    model.eval().requires_grad_(False)
    loaded = LoadedLMM(model, tokenizer, Qwen2VLImageProcessorPil(), "qwen2_5_vl", name=f"lmm-judge:qwen2.5-vl-{size}-random")
    return LMMJudge(LMMConfig(model="random", device=device, heatmaps=heatmaps, static_cache=static_cache), loaded=loaded)


def turntable(frames: int = 48, side: int = 512, width: int | None = None):
    from judge.frames import load_clip

    rng = np.random.default_rng(0)
    return load_clip((rng.random((frames, side, width or side, 3)) * 255).astype(np.uint8))


def once(fn) -> float:
    """Seconds of one call."""
    start = time.perf_counter()
    fn()
    sync()
    return round(time.perf_counter() - start, 3)


def compiled_graphs() -> int:
    """Graphs torch.compile has made in this process (a recompilation adds some)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def cudagraph_counters() -> dict[str, int]:
    from torch._dynamo.utils import counters

    return {k: int(v) for k, v in counters["inductor"].items() if "cudagraph" in k}


def timed(fn, runs: int) -> tuple[list[float], float]:
    """Seconds per run (after 2 warm-up runs) and peak GiB over the runs (0 on a CPU)."""
    for _ in range(2):
        fn()
    sync()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        sync()
        seconds.append(time.perf_counter() - start)
    return seconds, peak_gib()


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--only-judgement", action="store_true", help="time the judgement only (no heatmaps, training)")
    parser.add_argument("--size", default="7b", help="7b (the benchmark) or tiny (a smoke run on the CPU)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "lmm_gpu.json"))
    args = parser.parse_args()
    import transformers

    from judge.lmm.heads import SaliencyHead
    from judge.lmm.judge import JUDGEMENT_PROMPTS
    from judge.lmm.train import TrainConfig, head_features, train_heads, train_levels
    from judge.lmm.data import Sample
    from judge.provenance import find_watermark

    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
               "transformers": transformers.__version__, "size": args.size}
    start = time.perf_counter()
    judge = build_judge(False, args.size, device)
    results["build_s"] = round(time.perf_counter() - start, 1)
    results["parameters_b"] = round(sum(p.numel() for p in judge.loaded.model.parameters()) / 1e9, 2)
    clip = turntable()
    video = judge.video(clip)
    results["video_tokens"] = video.tokens
    results["static_cache"], results["cache_length"] = judge.config.static_cache, judge.cache_length
    result_box = {}

    def whole(on=clip):
        result_box["r"] = judge.judge(on)

    results["warm_up_s"] = round(judge.warm_up(), 1)  # at start: compiles the decoding step (static cache)
    print(f"warm-up at start (static cache {judge.config.static_cache}): {results['warm_up_s']} s")
    graphs = compiled_graphs()
    with ThreadPoolExecutor(1) as request_thread:  # a fresh thread, as the app's requests come
        results["first_call_new_thread_s"] = request_thread.submit(once, whole).result()
        results["second_call_same_thread_s"] = request_thread.submit(once, whole).result()
    wide, image = turntable(48, 384, 512), turntable(1)
    results["first_call_4x3_s"] = once(lambda: whole(wide))
    results["first_call_one_image_s"] = once(lambda: whole(image))
    print(f"after it: first judgement from a new thread {results['first_call_new_thread_s']} s (then "
          f"{results['second_call_same_thread_s']} s); first of a 4:3 clip {results['first_call_4x3_s']} s, "
          f"of one image {results['first_call_one_image_s']} s")
    seconds, peak = timed(whole, args.runs)
    results["judgement_s"], results["judgement_peak_gib"] = seconds, round(peak, 2)
    results["graphs_compiled_after_warm_up"] = compiled_graphs() - graphs
    results["cudagraph_counters"] = cudagraph_counters()
    print(f"whole judgement (scores + distortion answer): {np.median(seconds):.3f} s median "
          f"({min(seconds):.3f}-{max(seconds):.3f}), peak {peak:.2f} GiB; graphs compiled after the warm-up: "
          f"{results['graphs_compiled_after_warm_up']}")
    print(f"  answer tokens: up to {judge.config.max_new_tokens}; backend {result_box['r'].backend}")

    static = judge.config.static_cache
    judge.config.static_cache = False
    seconds, peak = timed(whole, args.runs)
    results["judgement_eager_s"], results["judgement_eager_peak_gib"] = seconds, round(peak, 2)
    print(f"whole judgement, eager decoding: {np.median(seconds):.3f} s median "
          f"({min(seconds):.3f}-{max(seconds):.3f}), peak {peak:.2f} GiB")
    judge.config.static_cache = static
    prompts = list(JUDGEMENT_PROMPTS)

    def prefill_only():  # the judgement's prefill alone: the vision tower once, 3 x ~1,400 tokens
        batch = judge.loaded.encoded_batch(prompts, video)
        with torch.no_grad():
            judge.loaded.model(**batch, use_cache=False, logits_to_keep=1)

    seconds, peak = timed(prefill_only, args.runs)
    results["prefill_s"], results["prefill_peak_gib"] = seconds, round(peak, 2)
    results["sample_video_s"] = timed(lambda: judge.video(clip), args.runs)[0]
    results["watermark_s"] = timed(lambda: find_watermark(clip.frames), args.runs)[0]
    print(f"  of which the batched prefill: {np.median(seconds):.3f} s, peak {peak:.2f} GiB; on the CPU: sampling "
          f"the video {np.median(results['sample_video_s']):.3f} s, then the watermark check "
          f"{np.median(results['watermark_s']):.3f} s (while the model judges)")
    if args.only_judgement:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.out}")
        return 0

    judge.config.heatmaps = True
    seconds, peak = timed(whole, args.runs)
    results["judgement_gradient_heatmaps_s"], results["judgement_gradient_heatmaps_peak_gib"] = seconds, round(peak, 2)
    print(f"with score-gradient heatmaps: {np.median(seconds):.3f} s, peak {peak:.2f} GiB")

    judge.loaded.heads = {"saliency": SaliencyHead(judge.loaded.hidden_size).to(device).eval()}
    seconds, peak = timed(whole, args.runs)
    results["judgement_saliency_head_s"], results["judgement_saliency_head_peak_gib"] = seconds, round(peak, 2)
    print(f"with a saliency head: {np.median(seconds):.3f} s, peak {peak:.2f} GiB")
    judge.loaded.heads = {}

    lm = judge.loaded
    sample = Sample("bench", Path("none"), 62.0, 45.0, ["Eye", "Mouth"], [[100.0, 120.0], [400.0, 200.0]], (512, 1536))
    config = TrainConfig(epochs=1)
    steps = args.train_steps + 2
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    losses = train_levels(lm, [sample] * steps, [video] * steps, config)
    sync()
    total = time.perf_counter() - start
    results["stage1_steps"], results["stage1_s"] = steps, round(total, 2)
    results["stage1_steps_per_s"] = round(steps / total, 3)
    results["stage1_peak_gib"] = round(peak_gib(), 2)
    results["stage1_loss_first_last"] = [losses[0], losses[-1]]
    print(f"stage 1 (LoRA): {steps} steps in {total:.1f} s = {steps / total:.2f} steps/s (3 rows of ~1,400 tokens "
          f"each), peak {results['stage1_peak_gib']:.2f} GiB; loss {losses[0]:.3f} -> {losses[-1]:.3f}")

    start = time.perf_counter()
    head_features(lm, video, config.saliency_depths)
    sync()
    results["stage2_features_s"] = round(time.perf_counter() - start, 3)
    config = TrainConfig(head_epochs=args.train_steps)
    start = time.perf_counter()
    losses = train_heads(lm, [sample], [video], config)
    total = time.perf_counter() - start
    results["stage2_s_with_features"], results["stage2_steps"] = round(total, 2), len(losses)
    print(f"stage 2 (heads): features {results['stage2_features_s']:.2f} s per video; {len(losses)} head steps "
          f"(score + saliency, on the CPU) in {total:.1f} s including one video's features")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
