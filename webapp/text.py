"""User text shown in the page's Markdown: escaped, so that what a visitor typed (a question, a name, a
file name, a prompt) reads as text and never as markup: no HTML, no images fetched from elsewhere, no
links."""

from __future__ import annotations

import html

_MARKDOWN_SPECIALS = "\\`*_[]#!|~"  # emphasis, code, links and images, headings, tables; "<" and "&" become entities


def markdown_text(text: str) -> str:
    """``text`` escaped for Markdown: HTML characters as entities, Markdown's own with backslashes.

    Example:
        >>> print(markdown_text("![x](http://a.b/c.png) <img src=x>"))
        \\!\\[x\\](http://a.b/c.png) &lt;img src=x&gt;
    """
    escaped = html.escape(str(text), quote=False)
    return "".join("\\" + c if c in _MARKDOWN_SPECIALS else c for c in escaped)
