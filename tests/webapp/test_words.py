"""What the page says: plain words first, backends in the details line, user text escaped."""

from __future__ import annotations

from webapp.words import backend_words, status_line

REPORT = {"backend": "embedded-head-model", "timings_s": {"load": 0.5, "turntable": 1.25},
          "edit": {"backend": "embedded-editor", "summary": "applied: lipstick -> #c8102e (normal)",
                   "applied": [{"phrase": "red lipstick", "target": "lipstick"}]},
          "lighting": {"name": "studio", "fixed_to": "world"}, "mesh": {"vertices": 10, "faces": 12, "kind": "k"}}


def test_the_status_line_says_what_was_made_in_words_and_keeps_backends_in_details():
    line = status_line(REPORT)
    words, details = line.split("<details>")
    assert words.startswith("Made from your photo in 1.8 s: edited with red lipstick, lit by studio light, fixed in place.")
    assert "embedded" not in words and "embedded-editor" in details and "embedded-head-model" in details
    assert "#c8102e" in details and "10 vertices" in details
    assert "the photo's own light" in status_line({**REPORT, "lighting": {"name": "original"}})
    assert status_line({**REPORT, "edit": {}}).split("<details>")[0].count("no edit") == 1
    assert status_line(REPORT, example="astronaut.png").startswith("Example result for astronaut.png: edited")
    assert status_line(None) == ""


def test_backend_names_read_as_words():
    assert backend_words("embedded-judge") == "the offline judge"
    assert backend_words("lmm-judge (Qwen2.5-VL-7B, LoRA)") == "the vision-language judge"
    assert backend_words("something-new") == "something-new" and backend_words(None) == "none"


def test_the_details_line_is_plain_text_safely_escaped():
    line = status_line({**REPORT, "edit": {"backend": "e", "summary": "<img src=y> #c8102e *x*"}})
    details = line.split("<details>")[1]
    assert "&lt;img src=y&gt; #c8102e *x*" in details and "\\#" not in details and "<img" not in details
