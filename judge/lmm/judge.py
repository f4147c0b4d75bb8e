"""LMMJudge: a vision-language model judges a turntable behind the same ``JudgeResult`` as the embedded
judge.

One batched generation per judgement: three prompts share the 8-frame video (quality, authenticity,
the distortion question). The first generated step's logits give both scores by the one-token rule;
the third row's answer gives the distortions. With an adapter that carries heads, the scores come from
the regression heads on the level-word state and the heatmaps from the saliency head (read from the
same pass); otherwise the heatmaps come from the scores' gradient (one backward pass).

On a GPU the answer is decoded with a static KV cache, whose decoding step transformers compiles
(``LMMConfig.static_cache``). The cache has one length for every clip (``cache_length``), so the step
compiles once, and ``warm_up`` compiles it where the judge is loaded for serving, before any request.
The model runs on one thread of the judge's own, whichever thread asks: the compiled step's CUDA graphs
are recorded per thread, and the model keeps per-call state (Qwen's rope deltas) that concurrent
requests must not share.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import torch

from judge.ask import Answer
from judge.frames import Clip, load_clip
from judge.lmm.checkpoint import LMMConfig, LMMError, LoadedLMM, default_static_cache, load_lmm
from judge.lmm.inputs import VideoInput
from judge.lmm.prompts import DIMENSIONS, DISTORTION_QUESTION, END, chat, parse_distortions, score_prompt
from judge.lmm.saliency import gradient_maps, head_inputs, head_maps
from judge.lmm.scoring import level_probabilities, one_token_mos
from judge.provenance import find_watermark, note_watermark
from judge.result import CATEGORIES, CATEGORY_REGIONS, NO_DISTORTION, Distortion, JudgeResult, Score

STRIP_POSITIONS = (0.25, 0.5, 0.75)  # of a 180-degree turn: -45, 0, +45 degrees
MAX_QUESTION = 300  # characters
JUDGEMENT_PROMPTS = (*(score_prompt(d) for d in DIMENSIONS), chat(DISTORTION_QUESTION))
SCORE_ROWS = (0, 1)  # rows of JUDGEMENT_PROMPTS whose next token is a level word (DIMENSIONS' order)
ANSWER_ROW = 2  # the distortion question


@dataclass
class LMMOutput:
    """What one judgement pass gives, before it becomes a JudgeResult.

    Attributes:
        mos: {"quality", "authenticity"} -> MOS in [0, 100] (the heads' when the adapter has them).
        one_token_mos: the same by the one-token rule (always computed).
        level_probabilities: [2, 5] probabilities of bad .. excellent per dimension.
        answer: the model's answer to the distortion question.
        categories: the categories parsed from the answer.
        category_probabilities: the model's probability of starting its answer with each category.
        heatmaps: [T, H, W] in [0, 1] over the sampled frames (None when not asked for).
        heatmap_source: "saliency head", "score gradient" or "".
    """

    mos: dict[str, float]
    one_token_mos: dict[str, float]
    level_probabilities: np.ndarray
    answer: str
    categories: list[str]
    category_probabilities: dict[str, float]
    heatmaps: np.ndarray | None
    heatmap_source: str


class LMMJudge:
    """Judges clips with a Qwen2.5-VL / Qwen2-VL checkpoint (loaded on first use).

    Example:
        >>> judge = LMMJudge(LMMConfig(model="Qwen/Qwen2.5-VL-7B-Instruct", adapter="adapters/facelab"))  # doctest: +SKIP
        >>> judge.judge(load_clip("turntable.mp4")).quality  # doctest: +SKIP
        Score(mos=71.3, level='good')
    """

    def __init__(self, config: LMMConfig | None = None, loaded: LoadedLMM | None = None):
        """``loaded``: an already loaded model (training, benchmarks); else ``config`` says what to load
        (and must name a model, or the environment must)."""
        self.config = config or LMMConfig()
        if loaded is None:
            self.config = self.config.resolved()
        elif self.config.static_cache is None:
            self.config = replace(self.config, static_cache=default_static_cache(loaded.device.type))
        self._loaded = loaded
        self._cache_length: int | None = None
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="lmm-judge")  # see the module's docstring

    @property
    def loaded(self) -> LoadedLMM:
        if self._loaded is None:
            self._loaded = load_lmm(self.config)
        return self._loaded

    @property
    def name(self) -> str:
        """Backend name: "lmm-judge:<model>" plus "+<adapter>" when one is loaded."""
        return self.loaded.name

    def video(self, clip: Clip) -> VideoInput:
        """The clip's frames sampled and patched for the model."""
        return self.loaded.video(clip, self.config.frames, self.config.side)

    @property
    def cache_length(self) -> int:
        """Length of the static KV cache: the judgement's prompts over the largest video a clip can give
        (``frames`` square frames of ``side`` px) plus the answer. Every judgement decodes at this one
        length, so the compiled decoding step is never compiled again for another clip's shape."""
        if self._cache_length is None:
            batch = self.loaded.batch(list(JUDGEMENT_PROMPTS), self.video(full_size_clip(self.config)))
            self._cache_length = batch["input_ids"].shape[1] + self.config.max_new_tokens
        return self._cache_length

    def warm_up(self) -> float:
        """Pay the first judgement's one-off costs now, where the judge is loaded for serving, rather
        than in a user's first request: one judgement of a blank full-size turntable. With the static
        cache on a GPU that compiles the decoding step (tens of seconds; said on stderr); on a GPU
        without it, CUDA's libraries start. On a CPU without the static cache nothing is paid once, so
        nothing is run. Returns the seconds it took (0.0 when nothing was run)."""
        on_gpu = self.loaded.device.type == "cuda"
        if not (on_gpu or self.config.static_cache):
            return 0.0
        compiles = on_gpu and self.config.static_cache
        if compiles:
            print("compiling the LMM judge's decoding step…", end="", file=sys.stderr, flush=True)
        start = time.perf_counter()
        self.judge(full_size_clip(self.config))
        if on_gpu:
            torch.cuda.synchronize(self.loaded.device)
        seconds = time.perf_counter() - start
        if compiles:
            print(f" {seconds:.0f} s", file=sys.stderr, flush=True)
        return seconds

    def evaluate(self, video: VideoInput, heatmaps: bool | None = None) -> LMMOutput:
        """One judgement pass over a sampled video (on the model's thread)."""
        return self._model_thread.submit(self._evaluate, video, heatmaps).result()

    def _evaluate(self, video: VideoInput, heatmaps: bool | None) -> LMMOutput:
        lm = self.loaded
        heatmaps = self.config.heatmaps if heatmaps is None else heatmaps
        saliency = lm.heads.get("saliency") if heatmaps else None
        need_states = saliency is not None or "score.quality" in lm.heads
        batch = lm.encoded_batch(list(JUDGEMENT_PROMPTS), video)
        with torch.no_grad():
            out = lm.model.generate(**batch, max_new_tokens=self.config.max_new_tokens, do_sample=False,
                                    return_dict_in_generate=True, output_logits=True,
                                    output_hidden_states=need_states, **self._generation_options(self.config.static_cache))
        level_ids = lm.level_ids
        first = out.logits[0].float()
        rows = list(SCORE_ROWS)
        by_rule = one_token_mos(first[rows], level_ids).cpu().numpy()
        one_token = {d: float(m) for d, m in zip(DIMENSIONS, by_rule)}
        mos = dict(one_token)
        if "score.quality" in lm.heads:
            last = out.hidden_states[0][-1][:, -1]
            with torch.no_grad():
                mos = {d: float(lm.heads[f"score.{d}"](last[r]) * 100.0) for r, d in zip(rows, DIMENSIONS)}
        answer = lm.tokenizer.decode(out.sequences[ANSWER_ROW, batch["input_ids"].shape[1]:], skip_special_tokens=True)
        maps, source = None, ""
        if saliency is not None:
            vision, language, query = head_inputs(out.hidden_states[0], batch["mm_encoder_outputs"]["video"].pooler_output[0],
                                                  batch["input_ids"], lm.video_token_id, rows, saliency.depths)
            with torch.no_grad():
                maps, source = head_maps(saliency(vision, language, query, video.token_grid), video), "saliency head"
        elif heatmaps:
            score_prompts = [JUDGEMENT_PROMPTS[r] for r in rows]
            maps, source = gradient_maps(lm.model, lm.batch(score_prompts, video), level_ids, video), "score gradient"
        return LMMOutput(mos, one_token, level_probabilities(first[rows], level_ids).cpu().numpy(),
                         answer.strip(), parse_distortions(answer), self._category_probabilities(first[ANSWER_ROW]),
                         maps, source)

    def judge(self, clip: Clip) -> JudgeResult:
        """Scores, distortions and heatmaps of a turntable (or a single image)."""
        video = self.video(clip)
        pending = self._model_thread.submit(self._evaluate, video, None)
        found = find_watermark(clip.frames)  # on the CPU, while the model judges
        result = to_result(pending.result(), video, self.name, single=len(clip.frames) == 1)
        result.add_warnings(clip.warnings)
        return note_watermark(result, found)

    def ask(self, clip: Clip, question: str) -> Answer:
        """Answer a free question about the clip by generation."""
        question = (question or "").strip()
        if not question:
            return Answer("Ask a question about the face, e.g. 'Is the mouth distorted?'.", False)
        if len(question) > MAX_QUESTION:
            raise LMMError(f"The question is {len(question)} characters long; keep it under {MAX_QUESTION}.")
        batch = self.loaded.batch([chat(question)], self.video(clip))
        text = self._model_thread.submit(self._answer, batch).result()
        return Answer(text or "(the model gave an empty answer)", bool(text))

    def _answer(self, batch: dict) -> str:
        lm = self.loaded
        with torch.no_grad():  # eagerly: one row of a question's own length would compile another step
            out = lm.model.generate(**batch, max_new_tokens=self.config.max_new_tokens, do_sample=False,
                                    **self._generation_options(static=False))
        return lm.tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True).strip()

    def _generation_options(self, static: bool) -> dict:
        """generate()'s end and padding tokens, and with ``static`` the static cache at ``cache_length``."""
        tokenizer = self.loaded.tokenizer
        end = tokenizer.convert_tokens_to_ids(END)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end
        cache = {"cache_implementation": "static", "max_cache_len": self.cache_length} if static else {}
        return {"eos_token_id": end, "pad_token_id": pad, **cache}

    def _category_probabilities(self, logits: torch.Tensor) -> dict[str, float]:
        """Probability of the answer starting with each category's first token, among the nine; a first
        token that several categories share is split evenly between them."""
        tokenizer = self.loaded.tokenizer
        first = [tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in CATEGORIES]
        unique = sorted(set(first))
        p = torch.softmax(logits[unique].float(), dim=-1).cpu().numpy()
        share = {t: float(p[i]) / first.count(t) for i, t in enumerate(unique)}
        return {c: round(share[t], 4) for c, t in zip(CATEGORIES, first)}


def full_size_clip(config: LMMConfig) -> Clip:
    """A blank turntable of ``config.frames`` square frames of ``config.side`` px: the most video tokens
    a clip can give the judge (a smaller or non-square clip gives fewer)."""
    return load_clip(np.full((config.frames, config.side, config.side, 3), 128, np.uint8), max_side=None)


def strip_frames(count: int) -> list[int]:
    """Sampled frames nearest -45, 0 and +45 degrees of a 180-degree turn."""
    return [int(round(p * (count - 1))) for p in STRIP_POSITIONS]


def strip(images: np.ndarray) -> np.ndarray:
    """[T, H, W, ...] frames or maps -> [H, 3W, ...]: the ``strip_frames`` side by side."""
    return np.concatenate([images[i] for i in strip_frames(len(images))], axis=1)


def to_result(output: LMMOutput, video: VideoInput, backend: str, single: bool = False) -> JudgeResult:
    """An LMMOutput as a JudgeResult. The LMM gives no per-region or per-view reports; its answer is
    quoted in the summary."""
    quality, authenticity = (Score.from_mos(output.mos[d]) for d in DIMENSIONS)
    frames = video.frames
    maps = output.heatmaps if output.heatmaps is not None else np.zeros(frames.shape[:3], np.float32)
    severity = round(float(np.clip(1.0 - min(quality.mos, authenticity.mos) / 100.0, 0.0, 1.0)), 3)
    strength = maps.mean((1, 2))
    worst = sorted(int(i) for i in np.argsort(-strength)[:3] if strength[i] > 0)
    named = [c for c in output.categories if c != NO_DISTORTION]
    quote = f'The model answered: "{output.answer}"'
    if named:
        distortions = [Distortion(c, output.category_probabilities[c], severity, list(CATEGORY_REGIONS.get(c, ())),
                                  worst, f"{c}. {quote}") for c in named]
        found = ", ".join(named)
    else:
        distortions = [Distortion(NO_DISTORTION, output.category_probabilities[NO_DISTORTION], 0.0, [], [],
                                  f"{NO_DISTORTION}. {quote}" if output.categories else
                                  f"The answer names no category of the taxonomy. {quote}")]
        found = "no distortion" if output.categories else "nothing it could name"
    summary = (f"Quality {quality.mos:.0f}/100 ({quality.level}), authenticity {authenticity.mos:.0f}/100 "
               f"({authenticity.level}). Found: {found}. {quote}"
               + (f" Heatmaps from the {output.heatmap_source}." if output.heatmap_source else
                  " Heatmaps were not computed.")
               + (" A single image: 3D consistency across views could not be judged." if single else ""))
    return JudgeResult(backend, quality, authenticity, distortions, output.category_probabilities, summary, True,
                       list(video.indices), not single, frame_heatmaps=maps,
                       strip_heatmap=strip(maps), strip=strip(frames))
