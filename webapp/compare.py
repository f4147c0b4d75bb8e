"""The Compare view: two 3-view strips one above the other, each under a label."""

from __future__ import annotations

import numpy as np


def stack_labelled(strips: list[np.ndarray], labels: tuple[str, str]) -> np.ndarray:
    """Strips one above the other, each under a label bar."""
    from PIL import Image, ImageDraw, ImageFont

    width = max(s.shape[1] for s in strips)
    rows = []
    for strip, label in zip(strips, labels):
        bar = Image.new("RGB", (width, 36), (30, 30, 30))
        try:
            font = ImageFont.load_default(size=22)
        except TypeError:
            font = ImageFont.load_default()
        ImageDraw.Draw(bar).text((10, 5), label[:120], fill=(255, 255, 255), font=font)
        rows += [np.asarray(bar), np.pad(strip, ((0, 0), (0, width - strip.shape[1]), (0, 0)), constant_values=255)]
    return np.concatenate(rows, 0)
