"""The embedded judge on our own turntables, clean and degraded, and on clips it cannot judge."""

from __future__ import annotations

import json

import numpy as np
import pytest

from judge.analytic import BACKEND, EmbeddedJudge
from judge.ask import ask
from bench.degrade import clip_region_masks, degrade
from judge.frames import MAX_FRAMES, load_clip
from judge.heatmap import nss
from judge.result import VIEW_NAMES


@pytest.fixture(scope="module")
def judge():
    return EmbeddedJudge()


@pytest.fixture(scope="module")
def judged(example_run, judge):
    """(frames, clean result) for each example photo's 48-frame turntable."""
    frames = example_run[4].frames
    return frames, judge.judge(load_clip(frames))


def test_a_clean_turntable_is_judged_whole(judged):
    frames, result = judged
    t, h, w = frames.shape[:3]
    assert result.backend == BACKEND and result.face_found and result.consistency_available
    judged_frames = min(t, MAX_FRAMES)  # a 48-frame turntable is judged on 32 evenly spaced frames
    assert len(result.frame_indices) == judged_frames and result.frame_indices[-1] == t - 1
    assert result.frame_heatmaps.shape == (judged_frames, h, w) and result.frame_heatmaps.dtype == np.float32
    assert 0.0 <= result.frame_heatmaps.min() and result.frame_heatmaps.max() <= 1.0
    assert result.strip.shape == (h, 3 * w, 3) and result.strip_heatmap.shape == (h, 3 * w)
    assert [v.name for v in result.views] == list(VIEW_NAMES)
    assert result.quality.mos >= 60 and result.authenticity.mos >= 60
    assert result.top_category() == "No Distortion"
    assert json.loads(result.to_json())["quality"]["level"] == result.quality.level


def test_judging_in_one_thread_gives_the_same_verdict(judged):
    frames, result = judged
    serial = EmbeddedJudge(parallel=False).judge(load_clip(frames))  # as a batch worker holding one core
    assert (serial.quality.mos, serial.authenticity.mos) == (result.quality.mos, result.authenticity.mos)
    assert serial.probabilities == result.probabilities and serial.summary == result.summary
    assert np.array_equal(serial.frame_heatmaps, result.frame_heatmaps)


def test_global_noise_lowers_quality_more_than_authenticity(judged, judge):
    frames, clean = judged
    noisy = judge.judge(load_clip(degrade(frames, "noise", 4, seed=1)))
    assert clean.quality.mos - noisy.quality.mos >= 15
    assert clean.quality.mos - noisy.quality.mos > clean.authenticity.mos - noisy.authenticity.mos
    assert noisy.top_category() == "Blurring/Exposure/Grain"


def test_a_hole_in_the_mouth_lowers_authenticity_and_is_found_there(judged, judge):
    frames, clean = judged
    mask = clip_region_masks(frames)["mouth"]
    holed = judge.judge(load_clip(degrade(frames, "hole", 5, mask, seed=2)))
    assert holed.authenticity.mos < clean.authenticity.mos - 10
    assert {"Overlap/Blending", "Mouth"} & {d.category for d in holed.distortions}  # background in the mouth
    target = mask > 0.5
    with_mouth = [(k, i) for k, i in enumerate(holed.frame_indices) if target[i].sum() >= 20]  # analysed, source
    assert np.mean([nss(holed.frame_heatmaps[k], target[i]) for k, i in with_mouth]) > 1.5


def test_no_face_is_a_clear_result_not_a_crash(judge):
    result = judge.judge(load_clip(np.full((6, 96, 96, 3), 200, np.uint8)))
    assert not result.face_found and result.quality.mos == 0.0 and result.distortions == []
    assert "No face was found" in result.summary and result.frame_heatmaps.shape == (6, 96, 96)


def write_cut_face_mp4(folder, count: int = 48) -> tuple:
    """(cut path, whole path): a ``count``-frame mp4 of a face (the Grace Hopper example, 160 px, with grain
    so that frames take most of the bytes), index first, and a copy cut to half its bytes."""
    import imageio.v2 as iio
    from PIL import Image

    from tests.conftest import EXAMPLES

    face = np.asarray(Image.open(EXAMPLES["grace_hopper"]).convert("RGB").resize((160, 188)), np.int16)
    rng = np.random.default_rng(0)
    whole, cut = folder / "whole.mp4", folder / "cut.mp4"
    with iio.get_writer(whole, fps=24, codec="libx264", quality=9, macro_block_size=1,
                        output_params=["-movflags", "+faststart"]) as writer:
        for _ in range(count):
            writer.append_data(np.clip(face + rng.integers(-40, 41, face.shape), 0, 255).astype(np.uint8))
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return cut, whole


def test_a_cut_short_video_is_judged_with_a_warning_that_says_how_much_was_seen(judge, tmp_path):
    cut, _ = write_cut_face_mp4(tmp_path)
    clip = load_clip(cut)
    result = judge.judge(clip)
    assert result.face_found
    said = f"Only {clip.source_frames} of the 48 frames that 'cut.mp4' announces could be decoded"
    assert clip.source_frames < 40 and len(result.warnings) == 1 and result.warnings[0].startswith(said)
    assert said in result.summary and json.loads(result.to_json())["warnings"] == result.warnings


def test_a_clip_warning_reaches_a_no_face_result(judge):
    clip = load_clip(np.full((6, 96, 96, 3), 200, np.uint8))
    clip = type(clip)(clip.frames, clip.indices, 12, None, "video", "x.mp4", 12, ("Only 6 of 12 frames.",))
    result = judge.judge(clip)
    assert not result.face_found and result.warnings == ["Only 6 of 12 frames."]
    assert result.summary.endswith("Only 6 of 12 frames.")


def test_a_single_image_has_no_3d_consistency_evidence(judged, judge):
    frames, _ = judged
    result = judge.judge(load_clip(frames[len(frames) // 2]))
    assert result.face_found and not result.consistency_available and result.views == []
    assert "nonrigid" not in result.measures and "flicker" not in result.measures
    assert "3D consistency" in result.summary


def noisy_stretch(frames: np.ndarray, first: int, last: int, sigma: float = 28.0) -> np.ndarray:
    """``frames`` with Gaussian noise of ``sigma`` grey levels on frames first..last (inclusive)."""
    out = frames.copy()
    rng = np.random.default_rng(5)
    out[first:last + 1] = np.clip(frames[first:last + 1] + rng.normal(0, sigma, frames[first:last + 1].shape), 0, 255)
    return out


def test_noise_on_a_stretch_of_frames_lowers_quality_and_is_placed_there(judged, judge):
    frames, clean = judged
    assert len(frames) == 48
    result = judge.judge(load_clip(noisy_stretch(frames, 16, 31)))
    assert clean.quality.mos - result.quality.mos >= 10
    main = result.distortions[0]
    assert main.category == "Blurring/Exposure/Grain" and "noise" in main.evidence
    source = np.array(result.frame_indices)  # main.frames are analysed frames (32 of the 48)
    inside = [f for f in main.frames if 16 <= source[f] <= 31]
    assert len(main.frames) >= 5 and len(inside) >= 0.8 * len(main.frames)
    heat, stretch = result.frame_heatmaps.mean((1, 2)), (source >= 16) & (source <= 31)
    assert heat[stretch].mean() > 1.5 * heat[~stretch].mean()
    answer = ask(result, "Which frames are worst?").text
    assert "source frames" in answer and any(str(source[f]) in answer for f in inside)


def test_a_blur_of_3_pixels_is_named_and_called_blurry(judged, judge):
    from scipy import ndimage

    frames, clean = judged
    blurred = np.clip(ndimage.gaussian_filter(frames.astype(np.float32), (0, 3, 3, 0)), 0, 255).astype(np.uint8)
    result = judge.judge(load_clip(blurred))
    assert result.top_category() == "Blurring/Exposure/Grain" and result.quality.mos < clean.quality.mos - 10
    assert ask(result, "Is it blurry?").text.startswith("Yes")
    assert ask(clean, "Is it blurry?").text.startswith("No")


def test_a_face_mask_without_a_head_is_not_authentic(judged, judge):
    from bench.degrade import BEYOND_FACE, head_masks

    frames, clean = judged
    masks = clip_region_masks(frames)
    beyond = head_masks(frames, masks["face"])[BEYOND_FACE]
    result = judge.judge(load_clip(degrade(frames, "face_only", 5, beyond, seed=0)))
    assert result.authenticity.mos <= 40 < clean.authenticity.mos
    assert {"Head Structure", "Overlap/Blending"} & {d.category for d in result.distortions}
    assert result.measures["head"] > clean.measures["head"]


@pytest.mark.parametrize("family,scope", [("noise", "global"), ("blur", "global"), ("hole", "mouth"),
                                          ("warp", "mouth"), ("clean", "global")])
def test_answers_never_contradict_the_categories(judged, judge, family, scope):
    frames, clean = judged
    if family == "clean":
        result = clean
    else:
        mask = None if scope == "global" else clip_region_masks(frames)[scope]
        result = judge.judge(load_clip(degrade(frames, family, 4, mask, seed=3)))
    named = {d.category for d in result.distortions} - {"No Distortion"}
    for question, measure in (("Is it blurry?", "blur"), ("Is it noisy?", "noise")):
        yes = ask(result, question).text.startswith("Yes")
        assert yes == any(measure in d.evidence for d in result.distortions if d.category in named)
    mouth = ask(result, "Is the mouth distorted?").text
    assert mouth.startswith("Yes") == any("mouth" in d.regions for d in result.distortions if d.category in named)
    assert ("Mouth" not in named) or mouth.startswith("Yes")


def test_an_explanation_agrees_in_number_with_its_regions():
    from judge.analytic import _explain

    assert _explain("Hair", ["forehead"], []).endswith("the forehead looks slightly unlike clean turntables.")
    assert "the eyes look slightly" in _explain("Eye", ["eyes"], [])
    assert "the nose and mouth look slightly" in _explain("Mouth", ["nose", "mouth"], [])
