import numpy as np
import pytest
import torch
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from judge.frames import load_clip
from judge.lmm.inputs import encode_prompts, patchify, sample_video, token_map
from judge.lmm.prompts import VIDEO, chat, score_prompt
from tests.judge.lmm.conftest import random_frames


@pytest.fixture(scope="module")
def processor():
    return Qwen2VLImageProcessorPil()


def test_a_still_patches_exactly_as_the_real_image_processor(processor):
    image = random_frames(1, 56)[0][:, :, :].repeat(2, axis=1)[:, :84]  # 56 x 84: multiples of 28, no resize
    ours = sample_video(np.stack([image, image]), processor, count=2, side=1000)
    theirs = processor(images=image, return_tensors="pt")
    assert ours.grid_thw == tuple(theirs["image_grid_thw"][0].tolist()) == (1, 4, 6)
    assert torch.allclose(ours.pixel_values, theirs["pixel_values"], atol=1e-5)


def test_eight_frames_at_504_make_1296_video_tokens(processor):
    video = sample_video(random_frames(48, 512), processor, count=8, side=504, fps=12.0, source_frames=48)
    assert video.grid_thw == (4, 36, 36) and video.tokens == 1296 and video.token_grid == (4, 18, 18)
    assert video.pixel_values.shape == (4 * 36 * 36, 3 * 2 * 14 * 14)
    assert video.frames.shape == (8, 504, 504, 3) and video.indices == [0, 7, 13, 20, 27, 34, 40, 47]
    assert video.seconds_per_grid == pytest.approx(2 / (8 / 4.0))  # 8 frames over 4 s: 2 fps


def test_odd_frame_counts_repeat_the_last_frame(processor):
    video = sample_video(random_frames(3, 56), processor, count=8, side=56)
    assert video.grid_thw == (2, 4, 4) and len(video.frames) == 3


def test_bad_frames_raise(processor):
    with pytest.raises(ValueError, match=r"shape of \(N, H, W, 3\)"):
        sample_video(np.zeros((4, 8, 8), np.uint8), processor)
    with pytest.raises(ValueError, match="count must be at least 1"):
        sample_video(random_frames(2, 28), processor, count=0)


def test_token_map_undoes_the_patch_order():
    video = torch.arange(4 * 6, dtype=torch.float32).reshape(1, 1, 4, 6).repeat(2, 1, 1, 1)  # one value per pixel
    patches = patchify(video, patch=1, merge=2, temporal=2)  # a "patch" is one pixel here
    assert torch.equal(token_map(patches[:, 0], (1, 4, 6), 2)[0], video[0, 0])


def test_prompts_are_left_padded_with_the_video_expanded(tiny_judge):
    lm = tiny_judge.loaded
    video = tiny_judge.video(load_clip(random_frames(8, 56)))
    prompts = [score_prompt("quality"), chat("Why?")]
    batch = encode_prompts(lm.tokenizer, prompts, video, answers=[" good", "Because."])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    video_id = lm.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert ((ids == video_id).sum(1) == video.tokens).all()
    assert torch.equal(batch["mm_token_type_ids"], (ids == video_id).int() * 2)
    assert (mask[:, -1] == 1).all() and mask.sum(1).tolist() != [ids.shape[1]] * 2  # one row is padded on the left
    assert batch["pixel_values_videos"].shape[0] == 2 * video.pixel_values.shape[0]
    labelled = [lm.tokenizer.decode(row[row != -100]) for row in batch["labels"]]
    assert labelled == [" good", "Because."]
    with pytest.raises(ValueError, match="carry the video exactly once"):
        encode_prompts(lm.tokenizer, ["no video here"], video)
    with pytest.raises(ValueError, match="one answer per prompt"):
        encode_prompts(lm.tokenizer, prompts, video, answers=[" good"])
    assert VIDEO in prompts[0]
