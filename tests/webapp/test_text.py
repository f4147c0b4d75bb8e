"""User text in Markdown reads as text."""

from __future__ import annotations

from webapp.text import markdown_text


def test_html_and_images_are_not_markup():
    text = markdown_text('<img src=x onerror=alert(1)> ![p](http://example.org/p.png) [link](http://e.org) **b**')
    assert "<img" not in text and "&lt;img" in text
    assert "\\!\\[p\\]" in text and "\\[link\\]" in text and "\\*\\*b\\*\\*" in text


def test_plain_text_keeps_its_words():
    assert markdown_text("applied: irises -> #2a62d8 (normal)") == "applied: irises -&gt; \\#2a62d8 (normal)"
    assert markdown_text(3) == "3"
