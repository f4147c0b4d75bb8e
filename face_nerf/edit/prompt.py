"""Reading an edit prompt: a small grammar of clauses, each a change to a part of the face.

    prompt  := clause ((',' | ';' | 'and' | 'with' | 'plus') clause)*
    clause  := [intensity] [colour] target | target [colour] | look | expression | accessory
    colour  := name ('red', 'dark brown', 'blonde', ...) | '#rrggbb' | 'darker' | 'lighter'

Words outside the vocabulary are corrected to a vocabulary word when they are a near spelling
("lipstik"); a clause that still names nothing is handed to a meaning matcher (``semantic.py``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from face_nerf.errors import FaceLabError

MAX_PROMPT_CHARS = 300

COLOURS = {
    "red": "#c8102e", "crimson": "#a0102a", "scarlet": "#d01c1f", "burgundy": "#6d1a2a", "pink": "#f08aa8",
    "coral": "#f2706a", "orange": "#f07a1a", "yellow": "#f2d024", "green": "#2e9a3a", "emerald": "#1f8a5a",
    "teal": "#138a8a", "turquoise": "#2ac4c0", "blue": "#2a62d8", "navy": "#1f2f6f", "purple": "#7a2f9a",
    "violet": "#8a4fd0", "magenta": "#d02a9a", "plum": "#6f2f5a", "brown": "#6a4024", "chestnut": "#7a3a1f",
    "auburn": "#8a3a1a", "ginger": "#c0581f", "copper": "#b0602f", "blonde": "#e2c27a", "blond": "#e2c27a",
    "platinum": "#e8e2d2", "black": "#151515", "white": "#f2f2f2", "grey": "#8c8c8c", "gray": "#8c8c8c",
    "silver": "#b8b8bc", "hazel": "#8a6a2a", "amber": "#c8881a", "nude": "#c8907a", "golden": "#d4a437",
}
SHADES = {"dark": 0.55, "deep": 0.6, "light": 1.45, "pale": 1.5, "bright": 1.2}
INTENSITY = {"slightly": 0.5, "bit": 0.6, "little": 0.5, "somewhat": 0.7, "subtle": 0.5, "lightly": 0.5,
             "very": 1.5, "really": 1.4, "extremely": 1.8, "big": 1.5, "huge": 1.8, "strong": 1.4, "heavy": 1.5,
             "thick": 1.4, "full": 1.3, "wide": 1.4, "much": 1.4, "lot": 1.4, "intense": 1.5}
# Target words: what a clause changes.
TARGETS = {
    "lips": "lips", "lip": "lips", "eyes": "irises", "eye": "irises", "iris": "irises", "irises": "irises",
    "hair": "hair", "eyebrows": "eyebrows", "eyebrow": "eyebrows", "brows": "eyebrows", "brow": "eyebrows",
    "skin": "skin", "complexion": "skin",
    "lipstick": "lipstick", "blush": "blush", "rouge": "blush", "eyeshadow": "eyeshadow", "eyeliner": "eyeliner",
    "older": "older", "old": "older", "aged": "older", "elderly": "older", "aging": "older", "ageing": "older",
    "younger": "younger", "young": "younger", "youthful": "younger",
    "beard": "beard", "goatee": "beard", "moustache": "moustache", "mustache": "moustache", "stubble": "stubble",
    "smile": "smile", "smiling": "smile", "grin": "smile", "grinning": "smile", "frown": "frown",
    "frowning": "frown", "sad": "frown", "surprised": "raised eyebrows", "wink": "wink", "winking": "wink",
    "marble": "marble", "statue": "marble", "bronze": "bronze", "gold": "gold", "zombie": "zombie",
    "vampire": "vampire", "pale": "pale", "tanned": "tanned", "tan": "tanned", "sunburnt": "sunburnt",
    "sunburned": "sunburnt", "sunburn": "sunburnt", "clown": "clown",
    "glasses": "glasses", "spectacles": "glasses", "eyeglasses": "glasses", "sunglasses": "sunglasses",
    "shades": "sunglasses",
}
PHRASES = {  # several words that name one target (checked before single words)
    "eye shadow": "eyeshadow", "eye liner": "eyeliner", "open mouth": "open mouth", "mouth open": "open mouth",
    "opened mouth": "open mouth", "raised eyebrows": "raised eyebrows", "raise eyebrows": "raised eyebrows",
    "raised brows": "raised eyebrows", "eyebrows raised": "raised eyebrows", "clown paint": "clown",
    "clown makeup": "clown", "marble statue": "marble", "sun glasses": "sunglasses", "grey haired": "grey hair",
    "gray haired": "grey hair",
    "bigger nose": "bigger nose", "big nose": "bigger nose", "larger nose": "bigger nose", "large nose": "bigger nose",
    "pointed ears": "pointed ears", "pointy ears": "pointed ears", "elf ears": "pointed ears", "elven ears": "pointed ears",
    "strong chin": "strong chin", "bigger chin": "strong chin", "prominent chin": "strong chin", "big chin": "strong chin",
    "wider face": "wider face", "wide face": "wider face", "broader face": "wider face", "broad face": "wider face",
}
COLOURED = {"lips", "irises", "hair", "eyebrows", "skin", "lipstick", "blush", "eyeshadow", "eyeliner", "beard",
            "moustache", "stubble", "glasses", "sunglasses"}
FILLER = {"a", "an", "the", "make", "makes", "made", "give", "gives", "add", "adds", "him", "her", "them", "his",
          "it", "its", "their", "with", "wearing", "wear", "have", "has", "having", "is", "are", "be", "into", "as",
          "turn", "turned", "like", "of", "please", "face", "look", "looking", "looks", "person", "to", "more",
          "some", "and", "in", "on", "paint", "painted", "coloured", "colored", "color", "colour", "in", "pair",
          "man", "woman", "so", "that", "she", "he", "they", "head", "this", "too", "set"}
CHANGE_WORDS = {"darker": 0.55, "lighter": 1.6, "brighter": 1.4}
NEGATION = re.compile(r"\b(no|not|without|remov(?:e|ed|es|ing)|delete|don'?t|never|minus|less|fewer|take off|get rid)\b")


@dataclass(frozen=True)
class EditRequest:
    """One change read from a prompt.

    Attributes:
        target: what changes ("lips", "older", "smile", "glasses", ...: the values of ``TARGETS``).
        colour: sRGB hex colour, or None (the edit's own default).
        factor: for "darker" / "lighter": multiply the albedo by this; None otherwise.
        strength: 1 = normal; intensity words scale it (0.5 slight ... 1.8 extreme).
        phrase: the words it was read from.
        matched: how the clause was understood when not word for word ("meaning: ..." / "spelling: ...").
    """

    target: str
    colour: str | None
    factor: float | None
    strength: float
    phrase: str
    matched: str = ""


class PromptError(FaceLabError, ValueError):
    """The prompt cannot be read; the message says what was not understood and what is supported."""


def vocabulary() -> list[str]:
    """Every word the grammar knows."""
    return sorted(set(COLOURS) | set(SHADES) | set(INTENSITY) | set(TARGETS) | set(CHANGE_WORDS)
                  | {w for p in PHRASES for w in p.split()})


def split_clauses(prompt: str) -> list[str]:
    """The prompt's clauses, lower case, without surrounding punctuation."""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise PromptError(f"The prompt is {len(prompt)} characters long; keep it under {MAX_PROMPT_CHARS} "
                          "(a few edits such as 'older, grey beard, blue eyes').")
    parts = re.split(r"[,;.!?&+\n]|\band\b|\bwith\b|\bplus\b|\bbut\b", prompt.lower())
    clauses = (re.sub(r"^[\s'\"\-:]+|[\s'\"\-:]+$", "", p) for p in parts)  # any whitespace: tabs, no-break spaces
    return [c for c in clauses if c]


def tokenize(clause: str) -> tuple[list[str], list[str]]:
    """(known tokens, unknown words) of a clause: phrases merged, spellings corrected, filler dropped."""
    words = re.findall(r"#[0-9a-f]{6}\b|[a-z]+", clause.replace("->", " ").replace("-", " "))
    vocab = vocabulary()
    corrected, fixes = [], []
    for word in words:
        if word.startswith("#") or word in vocab or word in FILLER or len(word) < 4:
            corrected.append(word)
            continue
        close = difflib.get_close_matches(word, vocab, n=1, cutoff=0.8)
        if close:
            corrected.append(close[0])
            fixes.append(f"{word}->{close[0]}")
        else:
            corrected.append(word)
    tokens, unknown, i = [], [], 0
    while i < len(corrected):
        pair = " ".join(corrected[i:i + 2])
        if pair in PHRASES:
            tokens.append(PHRASES[pair])
            i += 2
            continue
        word = corrected[i]
        if word.startswith("#") or word in vocab:
            tokens.append(word)
        elif word not in FILLER:
            unknown.append(word)
        i += 1
    if fixes:
        tokens.append("~" + ",".join(fixes))
    return tokens, unknown


def read_clause(clause: str) -> tuple[list[EditRequest], list[str]]:
    """Edit requests of one clause and its unknown words.

    Raises:
        PromptError: the clause asks to remove or avoid something (read word for word, "no beard" would
            add one).
    """
    negated = sorted(set(NEGATION.findall(clause)))
    if negated:
        raise PromptError(f"{clause!r} asks to remove or avoid something ({', '.join(negated)}); edits can only add "
                          "or change things. Leave it out (the photo's own look stays), or ask for the change itself, "
                          "e.g. 'younger' for fewer wrinkles, 'frown' instead of 'not smiling'.")
    tokens, unknown = tokenize(clause)
    fixes = next((t[1:] for t in tokens if t.startswith("~")), "")
    tokens = [t for t in tokens if not t.startswith("~")]
    strength, colour, factor, shade = 1.0, None, None, 1.0
    targets: list[str] = []
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok in INTENSITY:
            strength *= INTENSITY[tok]
        elif tok in SHADES and (nxt in COLOURS or nxt.startswith("#")):
            shade = SHADES[tok]
        elif tok.startswith("#"):
            colour = tok
        elif tok in CHANGE_WORDS:
            factor = CHANGE_WORDS[tok]
        elif tok == "grey hair":
            colour, targets = COLOURS["grey"], targets + ["hair"]
        elif tok in PHRASES.values() and tok not in TARGETS:  # a merged phrase ("open mouth")
            targets.append(tok)
        elif tok in COLOURS:
            colour = COLOURS[tok]
        elif tok == "gold" and any(TARGETS.get(t, t) in COLOURED for t in tokens):  # "gold glasses"
            colour = COLOURS["golden"]
        elif tok in TARGETS:
            targets.append(TARGETS[tok])
        elif tok in SHADES:  # "dark hair" means darker hair
            factor = SHADES[tok]
    if colour is not None and shade != 1.0:
        colour = _shade(colour, shade)
    if not targets and colour == COLOURS["golden"]:  # "golden" alone is the material
        targets, colour = ["gold"], None
    if "skin" in targets and {"pale", "tanned", "sunburnt"} & set(targets):  # "pale skin" is the look
        targets.remove("skin")
    requests = [EditRequest(t, colour if t in COLOURED else None, factor if t in COLOURED else None, strength,
                            clause, f"spelling: {fixes}" if fixes else "") for t in dict.fromkeys(targets)]
    return requests, unknown


def _shade(hex_colour: str, factor: float) -> str:
    rgb = [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]
    if factor > 1:  # lighter: toward white
        rgb = [round(c + (255 - c) * (factor - 1) / factor) for c in rgb]
    else:
        rgb = [round(c * factor) for c in rgb]
    return "#" + "".join(f"{max(0, min(255, c)):02x}" for c in rgb)
