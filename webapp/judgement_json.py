"""A judgement's JSON as it arrives from a visitor (the /ask API, the panel): checked for size and depth
before it is parsed, so that no text can exhaust the parser or the stack."""

from __future__ import annotations

import json

MAX_JSON_CHARS = 2_000_000  # a judgement is a few kB; larger text is refused before parsing
MAX_JSON_DEPTH = 32  # a judgement nests 5 levels deep


def parse_judgement(judgement: dict | str) -> dict:
    """A judgement's JSON as a dict, refused when too large or too deeply nested to be one."""
    if isinstance(judgement, str):
        if len(judgement) > MAX_JSON_CHARS:
            raise ValueError(f"the text is {len(judgement):,} characters; a judgement is a few thousand")
        depth = max_depth_of_brackets(judgement)
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"it nests {depth} levels deep; a judgement nests at most {MAX_JSON_DEPTH}")
        judgement = json.loads(judgement)
    elif nesting(judgement) > MAX_JSON_DEPTH:
        raise ValueError(f"it nests more than {MAX_JSON_DEPTH} levels deep; a judgement nests fewer")
    if not isinstance(judgement, dict):
        raise ValueError(f"it is a JSON {type(judgement).__name__}, not an object")
    return judgement


def max_depth_of_brackets(text: str) -> int:
    """The deepest nesting of [ and { in JSON text (brackets inside strings count too: an upper bound)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def nesting(value, limit: int = MAX_JSON_DEPTH + 1) -> int:
    """How deep dicts and lists nest in ``value`` (1 for a flat dict), counted without recursion and
    at most to ``limit``."""
    level, frontier = 0, [value]
    while level < limit:
        containers = [item for item in frontier if isinstance(item, (dict, list))]
        if not containers:
            break
        level += 1
        frontier = [child for c in containers for child in (c.values() if isinstance(c, dict) else c)]
    return level
