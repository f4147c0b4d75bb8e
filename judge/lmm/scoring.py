"""The one-token rule (Q-Align): a score from the next-token probabilities of the five level words.

p = softmax over the logits of the five level words (bad .. excellent) after "... is";
S = sum_i i * p_i in [1, 5]; MOS = (S - 1) * 25 in [0, 100].
"""

from __future__ import annotations

import torch

from judge.lmm.prompts import level_answer
from judge.result import LEVELS


def level_token_ids(tokenizer) -> list[int]:
    """Token ids of " bad", " poor", " fair", " good", " excellent" as they follow "... is".

    A word the tokenizer splits is represented by its first token (as Q-Align does); two level words
    that share a first token cannot be told apart, so that is an error.
    """
    ids = [tokenizer(level_answer(word), add_special_tokens=False)["input_ids"][0] for word in LEVELS]
    if len(set(ids)) != len(ids):
        raise ValueError(f"The tokenizer gives level words {LEVELS} the first tokens {ids}; they must differ.")
    return ids


def level_probabilities(logits: torch.Tensor, level_ids: list[int]) -> torch.Tensor:
    """[..., vocab] next-token logits -> [..., 5] probabilities of the level words (bad .. excellent)."""
    chosen = logits[..., level_ids]
    return torch.softmax(chosen.to(torch.promote_types(chosen.dtype, torch.float32)), dim=-1)  # bf16 -> fp32


def one_token_mos(logits: torch.Tensor, level_ids: list[int]) -> torch.Tensor:
    """[..., vocab] next-token logits -> [...] MOS in [0, 100] by the one-token rule."""
    p = level_probabilities(logits, level_ids)
    weights = torch.arange(1, len(level_ids) + 1, dtype=p.dtype, device=logits.device)
    return (p @ weights - 1.0) * 25.0
