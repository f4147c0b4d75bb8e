"""Randomly initialised Qwen2.5-VL checkpoints written in the transformers layout, for tests and
benchmarks on machines that cannot download weights.

The tokenizer is a byte-level BPE trained here on the judge's own prompts (so level words and category
names are whole tokens), with Qwen's special tokens; the image processor is transformers' real
Qwen2-VL image processor with its default settings. ``build_checkpoint`` saves all three with
``save_pretrained``, so the judge loads them through the same ``from_pretrained`` code as a real model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from judge.lmm.prompts import DISTORTION_QUESTION, SCORE_ANSWERS, SCORE_QUESTIONS, SYSTEM, distortion_answer
from judge.result import CATEGORIES, LEVELS

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>")
# Qwen2.5-VL-7B-Instruct's architecture (its config.json): 3584 hidden, 28 layers, a 32-block vision tower.
SIZES = {
    "tiny": {"text": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, mrope_section=[2, 3, 3]),
             "vision": dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, fullatt_block_indexes=[1])},
    "7b": {"text": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                        num_key_value_heads=4, mrope_section=[16, 24, 24]),
           "vision": dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16,
                          fullatt_block_indexes=[7, 15, 23, 31])},
}


def train_tokenizer(vocab_size: int = 600, extra_text: list[str] = ()):
    """A byte-level BPE tokenizer (transformers' fast tokenizer) trained on the judge's prompts and answers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [SYSTEM, DISTORTION_QUESTION, *SCORE_QUESTIONS.values(), *extra_text]
    corpus += [f"{answer} {level}." for answer in SCORE_ANSWERS.values() for level in LEVELS] * 8
    corpus += [distortion_answer([c]) for c in CATEGORIES] * 8
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def random_config(tokenizer, size: str = "tiny", vocab_size: int | None = None):
    """A Qwen2_5_VLConfig of ``SIZES[size]`` whose special token ids are the tokenizer's.

    ``vocab_size`` (default: the tokenizer's) may be larger, e.g. Qwen's 152,064 for benchmarks.
    """
    from transformers import Qwen2_5_VLConfig

    if size not in SIZES:
        raise ValueError(f"size must be one of {tuple(SIZES)}. Got {size!r}.")
    text, vision = dict(SIZES[size]["text"]), dict(SIZES[size]["vision"])
    ids = tokenizer.convert_tokens_to_ids
    mrope = text.pop("mrope_section")
    return Qwen2_5_VLConfig(
        text_config=dict(**text, vocab_size=vocab_size or len(tokenizer), max_position_embeddings=32768,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": mrope},
                         bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
                         pad_token_id=ids("<|endoftext|>"), tie_word_embeddings=False),
        vision_config=dict(**vision, out_hidden_size=text["hidden_size"], patch_size=14, spatial_merge_size=2,
                           temporal_patch_size=2, window_size=112, tokens_per_second=2),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False)


def tiny_qwen2_vl_config(tokenizer):
    """A tiny Qwen2VLConfig (the older family: no window attention, no time-aligned positions)."""
    from transformers import Qwen2VLConfig

    ids = tokenizer.convert_tokens_to_ids
    text = dict(SIZES["tiny"]["text"])
    mrope = text.pop("mrope_section")
    return Qwen2VLConfig(
        text_config=dict(**text, vocab_size=len(tokenizer), rope_parameters={"rope_type": "default", "rope_theta": 1e6,
                                                                             "mrope_section": mrope},
                         bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>")),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=text["hidden_size"], num_heads=2, mlp_ratio=2,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"))


def build_checkpoint(folder: str | Path, size: str = "tiny", seed: int = 0, dtype: torch.dtype = torch.float32,
                     vocab_size: int | None = None, family: str = "qwen2.5-vl") -> Path:
    """Write a random checkpoint (weights, tokenizer, image processor) to ``folder``: Qwen2.5-VL of
    ``SIZES[size]``, or with ``family="qwen2-vl"`` a tiny Qwen2-VL."""
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    if family not in ("qwen2.5-vl", "qwen2-vl"):
        raise ValueError(f"family must be qwen2.5-vl or qwen2-vl. Got {family!r}.")
    folder = Path(folder)
    tokenizer = train_tokenizer()
    torch.manual_seed(seed)
    if family == "qwen2-vl":
        model = Qwen2VLForConditionalGeneration(tiny_qwen2_vl_config(tokenizer)).to(dtype)
    else:
        model = Qwen2_5_VLForConditionalGeneration(random_config(tokenizer, size, vocab_size)).to(dtype)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessorPil().save_pretrained(folder)
    return folder
