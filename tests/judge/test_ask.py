"""Questions answered from a judgement's evidence, and the ones it cannot answer."""

from __future__ import annotations

import pytest

from judge.ask import ask
from judge.result import CATEGORIES, JUDGE_REGIONS, Distortion, JudgeResult, RegionReport, Score, ViewReport


def _result(face_found=True, views=True, single=False):
    regions = {r: RegionReport(r, 0.02, {"blur": 0.0, "noise": 0.01}) for r in JUDGE_REGIONS}
    regions["mouth"] = RegionReport("mouth", 0.8, {"blur": 0.1, "noise": 0.85})
    regions["hair"] = RegionReport("hair", 0.3, {"blur": 0.3, "noise": 0.0})
    view_reports = [ViewReport("right profile", [0, 1, 2], Score.from_mos(70), Score.from_mos(65)),
                    ViewReport("frontal", [3, 4], Score.from_mos(60), Score.from_mos(55)),
                    ViewReport("left profile", [5, 6, 7], Score.from_mos(40), Score.from_mos(22))] if views else []
    return JudgeResult("embedded-judge", Score.from_mos(58), Score.from_mos(47),
                       [Distortion("Mouth", 0.93, 0.6, ["mouth"], [4, 5], "Mouth: grain, mostly in the mouth.", ["noise"])],
                       {c: 0.1 for c in CATEGORIES}, "Quality 58/100 (fair) ...", face_found, list(range(0, 16, 2)),
                       not single, regions, view_reports,
                       {"blur": 0.05, "noise": 0.7} if single else {"blur": 0.05, "noise": 0.7, "nonrigid": 0.0})


def test_is_the_mouth_distorted():
    answer = ask(_result(), "Is the mouth distorted?")
    assert answer.answered and answer.text.startswith("Yes") and "Mouth" in answer.text
    assert answer.evidence["badness"] == 0.8


def test_a_clean_region_is_not_distorted_and_a_slightly_off_one_is_somewhat():
    assert ask(_result(), "are the eyes ok?").text.startswith("No")
    assert ask(_result(), "What about the hair?").text.startswith("Somewhat")


def test_which_region_is_worst():
    answer = ask(_result(), "Which region is worst?")
    assert answer.answered and answer.text.startswith("The mouth") and "grain" in answer.text


@pytest.mark.parametrize("question, expected", [("How realistic is the left profile?", "authenticity 22/100 (poor)"),
                                                ("what is the quality of the frontal view", "quality 60/100"),
                                                ("How real does the right side look?", "authenticity 65/100")])
def test_views(question, expected):
    answer = ask(_result(), question)
    assert answer.answered and expected in answer.text


def test_measures_scores_frames_and_why():
    assert ask(_result(), "Is it grainy?").text.startswith("Yes") and "mouth" in ask(_result(), "Is it grainy?").text
    assert ask(_result(), "Is it blurry?").text.startswith("No")
    assert "in analysed frames 4-5" in ask(_result(), "Is it grainy?").text  # a stretch of the frames
    assert "Quality 58/100 (fair)" in ask(_result(), "What are the scores?").text
    assert "source frames 8, 10" in ask(_result(), "Which frames are worst?").text
    assert ask(_result(), "Why?").text == "Quality 58/100 (fair) ..."


def test_cannot_answer_says_what_can_be_asked():
    answer = ask(_result(), "What is the capital of France?")
    assert not answer.answered and "cannot answer" in answer.text and "Is the mouth distorted?" in answer.text
    assert not ask(_result(), "   ").answered


def test_a_single_image_has_no_views_or_motion():
    single = _result(views=False, single=True)
    assert not ask(single, "How realistic is the left profile?").answered
    answer = ask(single, "Is it 3D consistent?")
    assert not answer.answered and "single image" in answer.text


def test_no_face_found():
    answer = ask(_result(face_found=False), "Is the mouth distorted?")
    assert not answer.answered and "No face" in answer.text
