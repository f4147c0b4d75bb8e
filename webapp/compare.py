"""The Compare view: two 3-view strips side by side, each under a caption that wraps rather than being
cut off (an edit summary can be long)."""

from __future__ import annotations

import textwrap

import numpy as np

CAPTION_FONT = 22


def side_by_side(strips: list[np.ndarray], captions: tuple[str, str], gap: int = 12) -> np.ndarray:
    """Strips [H, W, 3] uint8 next to each other (white gap), each under its caption, wrapped to the strip's
    width; [H', W', 3] uint8."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=CAPTION_FONT)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    chars = max(12, int(max(s.shape[1] for s in strips) / (0.55 * CAPTION_FONT)))
    wrapped = [textwrap.wrap(c, chars)[:4] or [""] for c in captions]
    bar_height = 10 + max(len(w) for w in wrapped) * (CAPTION_FONT + 6)
    height = max(s.shape[0] for s in strips) + bar_height
    columns = []
    for strip, lines in zip(strips, wrapped):
        bar = Image.new("RGB", (strip.shape[1], bar_height), (30, 30, 30))
        draw = ImageDraw.Draw(bar)
        for i, line in enumerate(lines):
            draw.text((8, 5 + i * (CAPTION_FONT + 6)), line, fill=(255, 255, 255), font=font)
        column = np.concatenate([np.asarray(bar), strip], 0)
        columns.append(np.pad(column, ((0, height - column.shape[0]), (0, 0), (0, 0)), constant_values=255))
        columns.append(np.full((height, gap, 3), 255, np.uint8))
    return np.concatenate(columns[:-1], 1)
