"""Training the LMM judge: LoRA on the level words and answers, then the score and saliency heads.

Stage 1 ("levels"): LoRA (rank 8, alpha 32, all linear layers, lr 1e-4, 1 epoch, as published) with the
language-model loss on the level word of each score prompt and on the distortion answer.
Stage 2 ("heads"): the model (with its LoRA) is frozen; its features are computed once per video and
the heads train on them: the score heads with L1 against MOS / 100, the saliency head with the
published map loss against the blurred clicks. Then the held-out split is judged and scored.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from judge.annotations.agreement import CLICK_SIGMA_PX, click_map, correlations, heatmap_agreement
from judge.frames import load_clip
from judge.lmm.adapter import build_heads
from judge.lmm.checkpoint import LMMConfig, LoadedLMM
from judge.lmm.data import Sample, app_strip_size
from judge.lmm.heads import saliency_loss
from judge.lmm.inputs import VideoInput
from judge.heatmap import resize_heatmaps
from judge.lmm.judge import JUDGEMENT_PROMPTS, SCORE_ROWS, LMMJudge, strip, strip_frames
from judge.lmm.prompts import DIMENSIONS, distortion_answer, level_answer
from judge.lmm.saliency import head_inputs
from judge.result import CATEGORIES, level_word


@dataclass
class TrainConfig:
    """Training settings (defaults: the published recipe where it gives one)."""

    rank: int = 8  # LoRA rank
    alpha: int = 32  # LoRA alpha
    dropout: float = 0.05  # LoRA dropout
    lr: float = 1e-4  # stage-1 learning rate
    epochs: int = 1  # stage-1 passes over the training split
    head_lr: float = 1e-3  # stage-2 learning rate
    head_epochs: int = 30  # stage-2 passes (cheap: features are computed once)
    saliency: bool = True  # train the saliency head (on items with clicks)
    saliency_width: int = 64  # decoder channels
    saliency_size: int = 216  # output side (published: 216)
    saliency_depths: int = 3  # language-model layers fused
    checkpointing: bool = True  # recompute activations in the backward pass (7B on 3 x 1,400 tokens: 105 -> ~30 GiB)
    holdout: float = 0.2  # fraction of items held out for evaluation
    seed: int = 0
    frames: int = 8  # frames sampled per video
    side: int = 504  # frame size the model sees


@dataclass
class TrainReport:
    """Losses per step of each stage and the held-out metrics."""

    stage1_losses: list[float] = field(default_factory=list)
    stage2_losses: list[float] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    train_items: int = 0
    test_items: int = 0


def split(samples: list[Sample], holdout: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """A seeded train / held-out split; at least one item on each side when there are two or more."""
    if not 0 <= holdout < 1:
        raise ValueError(f"holdout must lie in [0, 1). Got {holdout}.")
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    count = min(max(round(len(samples) * holdout), 1 if holdout > 0 else 0), len(samples) - 1)
    return [samples[i] for i in order[count:]], [samples[i] for i in order[:count]]


def load_videos(lm: LoadedLMM, samples: list[Sample], config: TrainConfig) -> list[VideoInput]:
    return [lm.video(load_clip(s.video), config.frames, config.side) for s in samples]


def level_batch(lm: LoadedLMM, video: VideoInput, sample: Sample) -> dict[str, torch.Tensor]:
    """Three rows: each score prompt followed by its level word, the question followed by its answer."""
    answers = [level_answer(level_word(sample.quality)), level_answer(level_word(sample.authenticity)),
               distortion_answer(sample.categories)]
    return lm.batch(list(JUDGEMENT_PROMPTS), video, answers)


def train_levels(lm: LoadedLMM, samples: list[Sample], videos: list[VideoInput], config: TrainConfig) -> list[float]:
    """Stage 1: wrap the model with LoRA and train it on the level words and answers."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                      target_modules="all-linear")
    if config.checkpointing:
        lm.model.activation_checkpointing_enable({"use_reentrant": False})
    lm.model = get_peft_model(lm.model, lora)
    optimiser = torch.optim.AdamW([p for p in lm.model.parameters() if p.requires_grad], lr=config.lr)
    order, losses = list(range(len(samples))), []
    rng = random.Random(config.seed)
    lm.model.train()
    for _ in range(config.epochs):
        rng.shuffle(order)
        for i in order:
            loss = lm.model(**level_batch(lm, videos[i], samples[i]), use_cache=False).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
    if config.checkpointing:
        lm.model.activation_checkpointing_disable()
    lm.model.eval().requires_grad_(False)
    return losses


def head_features(lm: LoadedLMM, video: VideoInput, depths: int) -> dict[str, object]:
    """The frozen model's features for the heads: level-word states per dimension and the saliency
    head's inputs (on the CPU)."""
    batch = lm.encoded_batch([JUDGEMENT_PROMPTS[r] for r in SCORE_ROWS], video)
    with torch.no_grad():
        out = lm.model(**batch, output_hidden_states=True, use_cache=False, logits_to_keep=1)
    vision, language, query = head_inputs(out.hidden_states, batch["mm_encoder_outputs"]["video"].pooler_output[0],
                                          batch["input_ids"], lm.video_token_id, [0, 1], depths)
    return {"levels": out.hidden_states[-1][:, -1].float().cpu(), "vision": vision.float().cpu(),
            "language": [s.float().cpu() for s in language], "query": query.float().cpu()}


def click_targets(sample: Sample, video: VideoInput, size: int) -> torch.Tensor | None:
    """[3, size, size] blurred-click maps of the three views (peak 1), or None without clicks."""
    if not sample.clicks:
        return None
    height, width = _strip_size(sample, video)
    view_width = width / 3
    maps = []
    for k in range(3):
        points = [[(x - k * view_width) / view_width * size, y / height * size] for x, y in sample.clicks
                  if k * view_width <= x < (k + 1) * view_width]
        target = click_map(points, (size, size), CLICK_SIGMA_PX * size / height)
        maps.append(target / target.max() if target.max() > 0 else target)
    return torch.tensor(np.stack(maps), dtype=torch.float32)


def train_heads(lm: LoadedLMM, samples: list[Sample], videos: list[VideoInput], config: TrainConfig) -> list[float]:
    """Stage 2: build the heads and fit them on the frozen model's features."""
    kinds = ["score"] + (["saliency"] if config.saliency and any(s.clicks for s in samples) else [])
    meta = {"heads": kinds, "saliency": {"depths": config.saliency_depths, "width": config.saliency_width,
                                         "out_size": config.saliency_size}}
    lm.heads = build_heads(meta, lm.hidden_size)
    features = [head_features(lm, v, config.saliency_depths) for v in videos]
    targets = [click_targets(s, v, config.saliency_size) for s, v in zip(samples, videos)]
    mos = torch.tensor([[s.quality, s.authenticity] for s in samples], dtype=torch.float32) / 100.0
    params = [p for head in lm.heads.values() for p in head.parameters()]
    optimiser = torch.optim.AdamW(params, lr=config.head_lr)
    for head in lm.heads.values():
        head.train().requires_grad_(True)
    rng, order, losses = random.Random(config.seed), list(range(len(samples))), []
    for _ in range(config.head_epochs):
        rng.shuffle(order)
        for i in order:
            f = features[i]
            loss = sum((lm.heads[f"score.{d}"](f["levels"][r]) - mos[i, r]).abs() for r, d in enumerate(DIMENSIONS))
            if "saliency" in lm.heads and targets[i] is not None:
                head = lm.heads["saliency"]
                logits = head(f["vision"], f["language"], f["query"], videos[i].token_grid)
                loss = loss + saliency_loss(logits[strip_frames(len(videos[i].frames))], targets[i])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
    for head in lm.heads.values():
        head.eval().requires_grad_(False).to(lm.device)
    lm.adapter_meta = meta
    return losses


def evaluate(judge: LMMJudge, samples: list[Sample], videos: list[VideoInput]) -> dict[str, float]:
    """Held-out metrics: SRCC / PLCC / KRCC per dimension (NaN under 3 items), category F1 (micro and
    macro over the categories present) and CC / NSS of the strip heatmap against the clicks."""
    predicted, found, nss_cc = {d: [] for d in DIMENSIONS}, [], []
    for sample, video in zip(samples, videos):
        output = judge.evaluate(video, heatmaps=any(s.clicks for s in samples))
        for d in DIMENSIONS:
            predicted[d].append(output.mos[d])
        found.append(set(output.categories))  # an answer that names nothing is wrong about every item
        if sample.clicks and output.heatmaps is not None:
            judge_map = resize_heatmaps(strip(output.heatmaps)[None], _strip_size(sample, video))[0]
            nss_cc.append(heatmap_agreement(judge_map, sample.clicks))
    metrics: dict[str, float] = {}
    for d in DIMENSIONS:
        truth = [getattr(s, d) for s in samples]
        values = correlations(np.array(predicted[d]), np.array(truth)) if len(samples) >= 3 else (np.nan,) * 3
        metrics.update({f"{d}_{name}": float(v) for name, v in zip(("srcc", "plcc", "krcc"), values)})
    metrics.update(category_f1([set(s.categories) for s in samples], found))
    if nss_cc:
        metrics["saliency_nss"] = float(np.nanmean([n for n, _ in nss_cc]))
        metrics["saliency_cc"] = float(np.nanmean([c for _, c in nss_cc]))
    return metrics


def category_f1(truth: list[set[str]], found: list[set[str]]) -> dict[str, float]:
    """Micro F1 over all (item, category) decisions and macro F1 over the categories that occur."""
    tp = {c: sum(c in t and c in f for t, f in zip(truth, found)) for c in CATEGORIES}
    fp = {c: sum(c not in t and c in f for t, f in zip(truth, found)) for c in CATEGORIES}
    fn = {c: sum(c in t and c not in f for t, f in zip(truth, found)) for c in CATEGORIES}

    def f1(t: int, p: int, n: int) -> float:
        return 2 * t / (2 * t + p + n) if t + p + n else float("nan")

    present = [c for c in CATEGORIES if tp[c] + fp[c] + fn[c]]
    return {"category_f1_micro": f1(sum(tp.values()), sum(fp.values()), sum(fn.values())),
            "category_f1_macro": float(np.mean([f1(tp[c], fp[c], fn[c]) for c in present])) if present else float("nan")}


def _strip_size(sample: Sample, video: VideoInput) -> tuple[int, int]:
    """(height, width) of the strip the sample's clicks are on."""
    return sample.strip_size or app_strip_size(*video.source_size)


def train(lm: LoadedLMM, samples: list[Sample], config: TrainConfig, stages: tuple[str, ...] = ("levels", "heads")
          ) -> TrainReport:
    """Run the stages on a loaded model and evaluate on the held-out split. ``lm`` ends up carrying the
    LoRA and the heads (save it with ``judge.lmm.adapter.save_adapter``)."""
    train_set, test_set = split(samples, config.holdout, config.seed)
    report = TrainReport(train_items=len(train_set), test_items=len(test_set))
    videos = load_videos(lm, train_set, config)
    if "levels" in stages:
        report.stage1_losses = train_levels(lm, train_set, videos, config)
    if "heads" in stages:
        report.stage2_losses = train_heads(lm, train_set, videos, config)
    if test_set:
        # Eager decoding: compiling it would cost more than a held-out split's few judgements save.
        judge = LMMJudge(LMMConfig(frames=config.frames, side=config.side, static_cache=False), loaded=lm)
        report.metrics = evaluate(judge, test_set, load_videos(lm, test_set, config))
    return report


def training_meta(config: TrainConfig, report: TrainReport, base_model: str) -> dict:
    """What ``facelab_lmm.json`` records about the training (NaN metrics, e.g. SRCC of < 3 items, as null)."""
    metrics = {k: (None if np.isnan(v) else v) for k, v in report.metrics.items()}
    return {"base_model": base_model, "training": asdict(config), "train_items": report.train_items,
            "test_items": report.test_items, "metrics": metrics,
            "final_losses": {"stage1": report.stage1_losses[-1:], "stage2": report.stage2_losses[-1:]}}
