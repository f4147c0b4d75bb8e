"""The judgement's schema: level words by the equal-bin rule, categories, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from judge.result import CATEGORIES, LEVELS, Distortion, JudgeResult, RegionReport, Score, ViewReport, level_word


def test_there_are_exactly_the_nine_published_categories():
    assert CATEGORIES == ("Eye", "Mouth", "Hair", "Facial Feature", "Head Structure", "Overlap/Blending",
                          "Blurring/Exposure/Grain", "Accessories/Cloth", "No Distortion")


@pytest.mark.parametrize("score, level", [(0.0, "bad"), (20.0, "bad"), (20.001, "poor"), (40.0, "poor"), (40.5, "fair"),
                                          (60.0, "fair"), (60.01, "good"), (80.0, "good"), (80.2, "excellent"),
                                          (100.0, "excellent")])
def test_level_words_follow_equal_width_bins_closed_on_the_right(score, level):
    assert level_word(score) == level


def test_level_rule_on_another_range():
    assert [level_word(s, 1.0, 5.0) for s in (1.0, 1.9, 2.7, 3.5, 4.3, 5.0)] == ["bad", "poor", "fair", "good",
                                                                               "excellent", "excellent"]
    assert len(LEVELS) == 5


@pytest.mark.parametrize("score", [-0.1, 100.5, float("nan")])
def test_level_of_a_score_outside_the_range_is_an_error(score):
    with pytest.raises(ValueError, match=r"score must lie in \[0.0, 100.0\]"):
        level_word(score)


def test_score_from_mos_clips_and_names_the_level():
    assert Score.from_mos(123.0) == Score(100.0, "excellent")
    assert Score.from_mos(-5.0) == Score(0.0, "bad")
    assert Score.from_mos(55.555) == Score(55.55, "fair") or Score.from_mos(55.555) == Score(55.56, "fair")


def test_distortion_rejects_unknown_categories():
    with pytest.raises(ValueError, match="category must be one of"):
        Distortion("Teeth", 0.9, 0.5, ["mouth"], [1], "x")


def _result():
    return JudgeResult(
        "embedded-judge", Score.from_mos(72.0), Score.from_mos(41.0),
        [Distortion("Mouth", 0.91, 0.6, ["mouth"], [3, 4], "Mouth: grain, mostly in the mouth.")],
        {c: 0.1 for c in CATEGORIES}, "summary", True, [0, 2, 4], True,
        {"mouth": RegionReport("mouth", 0.7, {"noise": 0.8})},
        [ViewReport("frontal", [1], Score.from_mos(70.0), Score.from_mos(40.0))], {"noise": 0.5},
        np.zeros((3, 4, 4), np.float32), np.zeros((4, 12), np.float32), np.zeros((4, 12, 3), np.uint8))


def test_json_round_trip_keeps_everything_but_the_arrays():
    result = _result()
    data = json.loads(result.to_json())
    assert data["quality"] == {"mos": 72.0, "level": "good"} and data["authenticity"]["level"] == "fair"
    assert "frame_heatmaps" not in data and "strip" not in data
    back = JudgeResult.from_dict(data)
    assert back.distortions == result.distortions and back.views == result.views and back.regions == result.regions
    assert back.top_category() == "Mouth"


def test_warnings_go_into_the_summary_once_and_survive_json():
    result = _result()
    assert result.warnings == []
    result.add_warnings(("Only 22 of the 48 frames could be decoded.", ""))
    result.add_warnings(["Only 22 of the 48 frames could be decoded."])
    assert result.warnings == ["Only 22 of the 48 frames could be decoded."]
    assert result.summary == "summary Only 22 of the 48 frames could be decoded."
    assert JudgeResult.from_dict(json.loads(result.to_json())).warnings == result.warnings


def test_results_saved_before_warnings_existed_read_back_with_none():
    data = json.loads(_result().to_json())
    del data["warnings"]
    assert JudgeResult.from_dict(data).warnings == []
