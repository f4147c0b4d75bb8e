"""Heatmaps of distorted regions from the LMM: a trained saliency head when the adapter has one,
otherwise the gradient of the scores with respect to the video's patches.

Both give one map per sampled frame: a temporal patch covers two frames, and the head has an output
channel per frame of a patch, while the gradient is split into each frame's part of the patch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from judge.lmm.inputs import VideoInput, token_map
from judge.lmm.scoring import one_token_mos


def head_inputs(hidden_states: tuple[torch.Tensor, ...], vision: torch.Tensor, input_ids: torch.Tensor,
                video_token_id: int, score_rows: list[int], depths: int
                ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """What the saliency head reads, from one forward pass over a batch whose rows share the video.

    Args:
        hidden_states: per layer (embeddings first) [B, S, hidden] states of the prompt.
        vision: [B * N, hidden] merged vision features of the rows' videos (row 0's come first).
        input_ids: [B, S].
        video_token_id: id of the video placeholder token.
        score_rows: rows whose last position is a level word (their mean state is the query).
        depths: language-model layers fused, spread evenly over the depth (the last included).
    Returns:
        (vision [N, hidden], language ``depths`` x [N, hidden], query [hidden]) of row 0's video.
    """
    positions = input_ids[0] == video_token_id
    count = int(positions.sum())
    layers = len(hidden_states) - 1
    picked = [round(layers * (k + 1) / depths) for k in range(depths)]
    language = [hidden_states[i][0, positions] for i in picked]
    query = torch.stack([hidden_states[-1][r, -1] for r in score_rows]).mean(0)
    return vision[:count], language, query


def head_maps(logits: torch.Tensor, video: VideoInput) -> np.ndarray:
    """[t * temporal_patch, s, s] head logits -> [T, H, W] float32 maps in [0, 1] over the sampled frames."""
    return _per_frame(torch.sigmoid(logits.float()), video)


def score_gradient(model, batch: dict[str, torch.Tensor], level_ids: list[int]) -> torch.Tensor:
    """d(sum of the rows' one-token MOS) / d(pixel_values_videos): [rows * patches, patch values]."""
    pixels = batch["pixel_values_videos"].detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = model(**{**batch, "pixel_values_videos": pixels}, use_cache=False, logits_to_keep=1)
        one_token_mos(out.logits[:, -1], level_ids).sum().backward()
    return pixels.grad


def gradient_maps(model, batch: dict[str, torch.Tensor], level_ids: list[int], video: VideoInput) -> np.ndarray:
    """[T, H, W] float32 maps in [0, 1] from a batch of score prompts: the norm of the scores' gradient
    (``score_gradient``) over each frame's part of each patch, smoothed over neighbouring patches and
    scaled so that the clip's strongest patch is 1."""
    rows, patches = batch["input_ids"].shape[0], video.pixel_values.shape[0]
    grad = score_gradient(model, batch, level_ids).float()
    grad = grad.reshape(rows, patches, 3, video.temporal_patch, -1)  # values per patch: channel, frame, pixel
    strength = grad.pow(2).sum((0, 2, 4)).sqrt()  # [patches, temporal_patch]
    maps = torch.stack([token_map(strength[:, k], video.grid_thw, video.merge) for k in range(video.temporal_patch)], 1)
    maps = maps.flatten(0, 1)[:, None]  # [t * temporal_patch, 1, h, w], frame order
    maps = F.avg_pool2d(maps, 3, stride=1, padding=1, count_include_pad=False)[:, 0]
    return _per_frame(maps / maps.max().clamp_min(1e-12), video)


def _per_frame(maps: torch.Tensor, video: VideoInput) -> np.ndarray:
    """[t * temporal_patch, h, w] maps in frame order (a repeated last frame at the end is dropped) ->
    [T, H, W] over the sampled frames (bilinear)."""
    height, width = video.frames.shape[1:3]
    sized = F.interpolate(maps[:len(video.frames), None].float().cpu(), size=(height, width), mode="bilinear",
                          align_corners=False)[:, 0]
    return sized.clamp(0, 1).numpy().astype(np.float32)
