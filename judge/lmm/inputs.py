"""Turntable frames and prompts -> the tensors a Qwen2-VL / Qwen2.5-VL model reads.

The frames go in as one video: resized to a multiple of patch x merge (28 px), normalised with the
checkpoint's image processor settings, and cut into temporal x spatial patches in the layout of
transformers' Qwen2-VL video processor (which itself needs torchvision; this needs only numpy and PIL).
8 frames at 504 px give 4 x 36 x 36 patches, merged 2 x 2 into 1,296 video tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from judge.frames import sample_indices
from judge.lmm.prompts import VIDEO

DEFAULT_FPS = 2.0  # the published judge's sampling rate, assumed when a clip does not say its own


@dataclass
class VideoInput:
    """One clip as the model sees it.

    Attributes:
        pixel_values: [grid_t * grid_h * grid_w, 3 * temporal_patch * patch * patch] float32 patches.
        grid_thw: (grid_t, grid_h, grid_w) in patches.
        frames: [T, H, W, 3] uint8, the sampled frames after resizing (what the heatmaps cover).
        indices: which of the clip's frames were sampled.
        seconds_per_grid: seconds between temporal patches (Qwen2.5-VL's time-aligned positions).
        source_size: (height, width) of the clip's own frames.
        merge: spatial merge size (2: 2 x 2 patches make one token).
        temporal_patch: frames per temporal patch (2).
    """

    pixel_values: torch.Tensor
    grid_thw: tuple[int, int, int]
    frames: np.ndarray
    indices: list[int]
    seconds_per_grid: float
    source_size: tuple[int, int]
    merge: int = 2
    temporal_patch: int = 2

    @property
    def tokens(self) -> int:
        """Video tokens in the prompt."""
        t, h, w = self.grid_thw
        return t * h * w // self.merge ** 2

    @property
    def token_grid(self) -> tuple[int, int, int]:
        """(t, h, w) of the video tokens, the layout of per-token features."""
        t, h, w = self.grid_thw
        return t, h // self.merge, w // self.merge


def sample_video(frames: np.ndarray, image_processor, count: int = 8, side: int = 504,
                 fps: float | None = None, source_frames: int | None = None,
                 indices: list[int] | None = None) -> VideoInput:
    """Sample ``count`` frames evenly and patch them as one video.

    Args:
        frames: [N, H, W, 3] uint8 (N >= 1; a single image is repeated to fill a temporal patch).
        image_processor: the checkpoint's Qwen2-VL image processor (its mean, std, patch, merge and
            temporal patch sizes are used).
        count: frames to sample.
        side: frames are resized so that H x W is at most side^2, each a multiple of patch x merge.
        fps, source_frames: the clip's frame rate and length, for the time between sampled frames.
        indices: the clip's own indices of ``frames`` (default 0..N-1).
    Returns:
        VideoInput.
    """
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must have a shape of (N, H, W, 3) with N >= 1. Got {frames.shape}.")
    if count < 1:
        raise ValueError(f"count must be at least 1. Got {count}.")
    picked = sample_indices(len(frames), count) if len(frames) > count else np.arange(len(frames))
    patch, merge = int(image_processor.patch_size), int(image_processor.merge_size)
    temporal = int(image_processor.temporal_patch_size)
    height, width = smart_resize(frames.shape[1], frames.shape[2], factor=patch * merge,
                                 min_pixels=(patch * merge) ** 2, max_pixels=side * side)
    resized = np.stack([np.asarray(Image.fromarray(frames[i]).resize((width, height), Image.BICUBIC)) for i in picked])
    mean = np.asarray(image_processor.image_mean, np.float32)
    std = np.asarray(image_processor.image_std, np.float32)
    video = (resized.astype(np.float32) / 255.0 - mean) / std  # [T, H, W, 3]
    if pad := -len(video) % temporal:
        video = np.concatenate([video, np.repeat(video[-1:], pad, 0)])
    pixel_values = patchify(torch.from_numpy(video).permute(0, 3, 1, 2), patch, merge, temporal)
    source = list(indices) if indices is not None else list(range(len(frames)))
    span = (source_frames or len(frames)) / (fps or DEFAULT_FPS)  # seconds the clip lasts
    sampled_fps = len(picked) / span if fps else DEFAULT_FPS
    grid = (len(video) // temporal, height // patch, width // patch)
    return VideoInput(pixel_values, grid, resized, [source[i] for i in picked], temporal / sampled_fps,
                      tuple(frames.shape[1:3]), merge, temporal)


def patchify(video: torch.Tensor, patch: int, merge: int, temporal: int) -> torch.Tensor:
    """[T, C, H, W] -> [T/tp * H/p * W/p, C * tp * p * p] in Qwen2-VL's order: time, then 2 x 2 merge
    blocks row by row, then the patches inside a block (so merged tokens are contiguous)."""
    frames, channels, height, width = video.shape
    gt, gh, gw = frames // temporal, height // patch, width // patch
    patches = video.reshape(gt, temporal, channels, gh // merge, merge, patch, gw // merge, merge, patch)
    patches = patches.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return patches.reshape(gt * gh * gw, channels * temporal * patch * patch).contiguous()


def token_map(values: torch.Tensor, grid_thw: tuple[int, int, int], merge: int) -> torch.Tensor:
    """Per-patch values in ``patchify``'s order [t*h*w] -> [t, h, w] maps."""
    t, h, w = grid_thw
    blocks = values.reshape(t, h // merge, w // merge, merge, merge)
    return blocks.permute(0, 1, 3, 2, 4).reshape(t, h, w)


def encode_prompts(tokenizer, prompts: list[str], video: VideoInput, answers: list[str] | None = None,
                   with_seconds: bool = True, video_token: str = "<|video_pad|>") -> dict[str, torch.Tensor]:
    """Tokenise prompts that each carry the video once, left-padded into one batch.

    Args:
        answers: for training, the text each prompt should be followed by; it is appended and
            ``labels`` mark its tokens (-100 elsewhere).
    Returns:
        The model's keyword arguments: input_ids, attention_mask, mm_token_type_ids (2 at video
        tokens), pixel_values_videos and video_grid_thw (the video once per row), second_per_grid_ts
        when ``with_seconds`` (Qwen2.5-VL only), and labels when ``answers`` are given.
    """
    if answers is not None and len(answers) != len(prompts):
        raise ValueError(f"Need one answer per prompt. Got {len(answers)} answers for {len(prompts)} prompts.")
    video_id = tokenizer.convert_tokens_to_ids(video_token)
    rows, targets = [], []
    for i, prompt in enumerate(prompts):
        if prompt.count(VIDEO) != 1:
            raise ValueError(f"Each prompt must carry the video exactly once ({VIDEO!r}). Got {prompt[:80]!r}...")
        ids = tokenizer(prompt.replace(video_token, video_token * video.tokens), add_special_tokens=False)["input_ids"]
        answer = tokenizer(answers[i], add_special_tokens=False)["input_ids"] if answers is not None else []
        rows.append(ids + answer)
        targets.append(len(answer))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    length = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), length), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), length), dtype=torch.long)
    for i, ids in enumerate(rows):
        input_ids[i, length - len(ids):] = torch.tensor(ids)
        attention[i, length - len(ids):] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention,
             "mm_token_type_ids": (input_ids == video_id).int() * 2,
             "pixel_values_videos": video.pixel_values.repeat(len(rows), 1),
             "video_grid_thw": torch.tensor([video.grid_thw] * len(rows))}
    if with_seconds:
        batch["second_per_grid_ts"] = torch.tensor([video.seconds_per_grid] * len(rows))
    if answers is not None:
        labels = torch.full_like(input_ids, -100)
        for i, count in enumerate(targets):
            if count:
                labels[i, length - count:] = input_ids[i, length - count:]
        batch["labels"] = labels
    return batch
