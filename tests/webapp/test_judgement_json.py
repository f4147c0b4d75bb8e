"""A judgement's JSON from a visitor: parsed when it is one, refused with a reason when it cannot be."""

from __future__ import annotations

import json

import pytest

from webapp.judgement_json import MAX_JSON_DEPTH, max_depth_of_brackets, nesting, parse_judgement


def test_a_judgement_parses_from_text_or_a_dict():
    judgement = {"quality": {"mos": 60, "level": "fair"}, "distortions": [{"regions": ["eyes"]}]}
    assert parse_judgement(json.dumps(judgement)) == judgement
    assert parse_judgement(judgement) is judgement


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000])
def test_deep_nesting_is_refused_before_it_reaches_the_stack(depth):
    text = "[" * depth + "]" * depth
    with pytest.raises(ValueError, match=f"nests {depth} levels deep"):
        parse_judgement(text)
    value: object = {}
    for _ in range(depth):
        value = {"a": [value]} if depth < 900 else [value]
    with pytest.raises(ValueError, match="nests more than"):
        parse_judgement(value)


def test_other_json_is_refused_with_what_it_is():
    with pytest.raises(ValueError, match="a JSON list, not an object"):
        parse_judgement("[1, 2]")
    with pytest.raises(ValueError, match="characters; a judgement is a few thousand"):
        parse_judgement(" " * 2_000_001)


def test_depth_counts():
    assert max_depth_of_brackets('{"a": [1, {"b": 2}]}') == 3
    assert nesting({"a": [1, {"b": 2}]}) == 3 and nesting(7) == 0 and nesting([[[[]]]], limit=2) == 2
