"""What a watermark must survive (issue 20): an H.264 re-encode, a JPEG save, a downscale, a crop. Used by
bench_watermark.py and the watermark's tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def h264(frames: np.ndarray, folder: Path, crf: int = 28) -> np.ndarray:
    """[N, H, W, 3] uint8 frames through an H.264 encode at ``crf`` (an mp4 in ``folder``) and back."""
    import imageio.v2 as imageio

    path = Path(folder) / f"crf{crf}.mp4"
    with imageio.get_writer(str(path), format="FFMPEG", fps=24, codec="libx264", pixelformat="yuv420p",
                            macro_block_size=1, ffmpeg_log_level="error", output_params=["-crf", str(crf)]) as writer:
        for frame in frames:
            writer.append_data(frame)
    with imageio.get_reader(str(path), format="FFMPEG") as reader:
        return np.stack(list(reader.iter_data()))


def jpeg(frame: np.ndarray, quality: int = 70) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def half(frame: np.ndarray) -> np.ndarray:
    """A downscale to 50% (bilinear)."""
    return np.asarray(Image.fromarray(frame).resize((frame.shape[1] // 2, frame.shape[0] // 2), Image.BILINEAR))


def crop_corner(frame: np.ndarray) -> np.ndarray:
    """10% of the side cut from the top and the left."""
    cut = frame.shape[0] // 10
    return frame[cut:, cut:]


def crop_sides(frame: np.ndarray) -> np.ndarray:
    """10% of the side cut, half from each side."""
    cut = frame.shape[0] // 20
    return frame[cut:-cut, cut:-cut]
