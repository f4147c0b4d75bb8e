"""Heads an adapter may carry on top of the language model.

ScoreHead: the published regression head, an MLP hidden -> 1024 -> 256 -> 64 -> 16 -> 1 on the hidden
state at the level word (the last prompt position), trained with L1 against MOS / 100.

SaliencyHead: a map of distorted regions from the model's own features: the merged vision-encoder
features of the video tokens and the language model's hidden states over the same tokens at several
depths, modulated (FiLM) by the hidden state at the level word, decoded by convolutions and two
upsamplings to ``out_size``, one map per frame (a channel per frame of a temporal patch).
Loss (published): L1 + 0.4 (1 - CC + 0.5 KL) + BCE.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SCORE_WIDTHS = (1024, 256, 64, 16)


class ScoreHead(nn.Module):
    """[..., hidden] -> [...] score in [0, 1] (MOS / 100)."""

    def __init__(self, hidden: int, widths: tuple[int, ...] = SCORE_WIDTHS):
        super().__init__()
        layers, width = [], hidden
        for out in widths:
            layers += [nn.Linear(width, out), nn.GELU()]
            width = out
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(hidden.float())).squeeze(-1)


class SaliencyHead(nn.Module):
    """Distortion saliency per frame of the video.

    Args:
        hidden: the language model's hidden size (the merged vision features have the same size).
        depths: how many language-model layers' states are fused.
        width: channels of the decoder.
        out_size: side of the output maps (216 as published).
        temporal_patch: frames per temporal patch (Qwen2-VL: 2), one output channel each.
    """

    def __init__(self, hidden: int, depths: int = 3, width: int = 64, out_size: int = 216, temporal_patch: int = 2):
        super().__init__()
        self.depths, self.out_size, self.temporal_patch = depths, out_size, temporal_patch
        self.vision = nn.Linear(hidden, width)
        self.language = nn.ModuleList(nn.Linear(hidden, width) for _ in range(depths))
        self.film = nn.Linear(hidden, 2 * width)
        self.decode = nn.ModuleList([
            nn.Conv2d(width, width, 3, padding=1),
            nn.Conv2d(width, width // 2, 3, padding=1),
            nn.Conv2d(width // 2, width // 4, 3, padding=1),
        ])
        self.out = nn.Conv2d(width // 4, temporal_patch, 1)

    def forward(self, vision: torch.Tensor, language: list[torch.Tensor], query: torch.Tensor,
                grid: tuple[int, int, int]) -> torch.Tensor:
        """Logits of the saliency maps.

        Args:
            vision: [N, hidden] merged vision features of the N = t*h*w video tokens.
            language: ``depths`` tensors [N, hidden], the language model's states at those tokens.
            query: [hidden] the state at the level word (what the judge was asked).
            grid: (t, h, w) of the video tokens, row-major.
        Returns:
            [t * temporal_patch, out_size, out_size] logits, in frame order.
        """
        if len(language) != self.depths:
            raise ValueError(f"Expected {self.depths} language-model states. Got {len(language)}.")
        t, h, w = grid
        x = self.vision(vision.float()) + sum(proj(s.float()) for proj, s in zip(self.language, language))
        scale, shift = self.film(query.float()).chunk(2, dim=-1)
        x = F.gelu(x * (1 + scale) + shift)
        x = x.reshape(t, h, w, -1).permute(0, 3, 1, 2)
        for i, conv in enumerate(self.decode):
            x = F.gelu(conv(x))
            if i < 2:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = F.interpolate(self.out(x), size=(self.out_size, self.out_size), mode="bilinear", align_corners=False)
        return x.flatten(0, 1)


def saliency_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Published saliency loss: L1 + 0.4 (1 - CC + 0.5 KL) + BCE, over [B, H, W] maps.

    ``target`` is in [0, 1] (blurred clicks, peak 1). L1 and BCE compare the sigmoid map with the target;
    CC and KL compare both as distributions.
    """
    pred = torch.sigmoid(logits)
    l1 = (pred - target).abs().mean()
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = pred.flatten(1) / (pred.flatten(1).sum(1, keepdim=True) + eps)
    q = target.flatten(1) / (target.flatten(1).sum(1, keepdim=True) + eps)
    kl = (q * torch.log(eps + q / (p + eps))).sum(1).mean()
    return l1 + 0.4 * (1 - correlation(pred, target).mean() + 0.5 * kl) + bce


def correlation(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation (CC) of [B, ...] maps, per item."""
    a = a.flatten(1) - a.flatten(1).mean(1, keepdim=True)
    b = b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)
