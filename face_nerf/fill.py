"""Filling holes in images and maps from their surroundings (pyramid push-pull)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def push_pull_fill(image: Tensor, weight: Tensor) -> Tensor:
    """Fill pixels of low weight with a smooth blend of their surroundings.

    Push: average the weighted image down a pyramid; pull: back up, keeping each level's own values
    where its weight is high. Known pixels (weight 1) are returned unchanged.

    Args:
        image: [B, C, H, W] values (ignored where weight is 0).
        weight: [B, 1, H, W] confidence in [0, 1].

    Returns:
        [B, C, H, W] filled image.

    Example:
        >>> img = torch.zeros(1, 1, 4, 4); img[..., 0, 0] = 1.0
        >>> w = torch.zeros(1, 1, 4, 4); w[..., 0, 0] = 1.0
        >>> bool((push_pull_fill(img, w) == 1.0).all())
        True
    """
    if image.ndim != 4 or weight.shape != (image.shape[0], 1, *image.shape[2:]):
        raise ValueError(f"Expected image (B, C, H, W) and weight (B, 1, H, W). Got {tuple(image.shape)} and {tuple(weight.shape)}.")
    if float(weight.sum()) == 0.0:
        raise ValueError("Nothing to fill from: every weight is zero.")
    levels = [(image * weight, weight)]
    while min(levels[-1][1].shape[-2:]) > 1:
        num, den = levels[-1]
        levels.append((F.avg_pool2d(num, 2, ceil_mode=True), F.avg_pool2d(den, 2, ceil_mode=True)))
    num, den = levels[-1]
    filled = num / den.clamp(min=1e-12)
    for num, den in reversed(levels[:-1]):
        up = F.interpolate(filled, size=num.shape[-2:], mode="bilinear", align_corners=False)
        trust = den.clamp(0.0, 1.0)
        filled = trust * (num / den.clamp(min=1e-12)) + (1.0 - trust) * up
    return filled
