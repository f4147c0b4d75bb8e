import itertools

import pytest

from judge.lmm.prompts import (VIDEO, chat, distortion_answer, level_answer, parse_distortions, score_prompt)
from judge.result import CATEGORIES, LEVELS, NO_DISTORTION


@pytest.mark.parametrize("text, expected", [
    ("Eye, Mouth.", ["Eye", "Mouth"]),
    ("No Distortion.", [NO_DISTORTION]),
    ("None.", [NO_DISTORTION]),
    ("There are no visible artifacts.", [NO_DISTORTION]),
    ("The eyes look fine, but the mouth is blurry.", ["Mouth", "Blurring/Exposure/Grain"]),
    ("The hair has no issues and the head shape is deformed", ["Head Structure"]),
    ("no blur, but the glasses are melted", ["Accessories/Cloth"]),
    ("Overlap/Blending, Blurring/Exposure/Grain", ["Overlap/Blending", "Blurring/Exposure/Grain"]),
    ("The lips are smeared and there is a seam along the jaw.", ["Mouth", "Overlap/Blending", "Facial Feature"]),
    ("HAIR and EYE problems", ["Hair", "Eye"]),
    ("qwerty zzz", []),
    ("", []),
])
def test_parse_distortions_reads_free_text(text, expected):
    assert parse_distortions(text) == expected


def test_a_real_category_overrides_no_distortion():
    assert parse_distortions("No Distortion, except the mouth is distorted") == ["Mouth"]


@pytest.mark.parametrize("named", [c for k in (1, 2) for c in itertools.combinations(CATEGORIES[:-1], k)])
def test_distortion_answers_parse_back(named):
    assert parse_distortions(distortion_answer(list(named))) == list(named)


def test_no_distortion_answer_parses_back():
    assert parse_distortions(distortion_answer([])) == [NO_DISTORTION]


def test_score_prompts_end_where_the_level_word_goes():
    for dim in ("quality", "authenticity"):
        prompt = score_prompt(dim)
        assert prompt.endswith(f"The {dim} of the face is") and prompt.count(VIDEO) == 1
    assert [level_answer(w) for w in LEVELS] == [" bad", " poor", " fair", " good", " excellent"]
    assert chat("Why?").endswith("<|im_start|>assistant\n")


def test_bad_dimension_and_level_raise():
    with pytest.raises(ValueError, match="dimension must be one of"):
        score_prompt("beauty")
    with pytest.raises(ValueError, match="level must be one of"):
        level_answer("great")
