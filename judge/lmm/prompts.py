"""What the LMM judge is asked, and how its free-text answers are read back into the taxonomy.

The prompts follow Qwen's chat layout. The score prompts end in "... is", so the next token is a level
word (the one-token rule); the distortion question lists the nine category names to answer with.
"""

from __future__ import annotations

import re

from judge.result import CATEGORIES, LEVELS, NO_DISTORTION

PROMPTS_VERSION = 1  # stored in adapters: an adapter is trained on these exact prompts
SYSTEM = "You are an expert judge of generated 3D faces."
VIDEO = "<|vision_start|><|video_pad|><|vision_end|>"  # the processor-free layout: the pad is expanded per video
DIMENSIONS = ("quality", "authenticity")
SCORE_QUESTIONS = {
    "quality": "Rate the technical quality of this 3D face turntable: resolution, clarity, smoothness and "
               "overall visual quality.",
    "authenticity": "Rate the authenticity of this 3D face turntable: natural facial structure and motion, "
                    "consistency across views, realistic texture and no signs of artificial generation.",
}
SCORE_ANSWERS = {"quality": "The quality of the face is", "authenticity": "The authenticity of the face is"}
DISTORTION_QUESTION = ("Which distortions does this 3D face show? Answer with one or more of: "
                       + ", ".join(CATEGORIES) + ".")
END = "<|im_end|>"

# Words that name a category in free text, beyond its own name. Checked after the names themselves.
CATEGORY_WORDS = {
    "Eye": r"eyes?|eyelids?|eyeballs?|eyebrows?|brows?|iris(es)?|pupils?|gaze",
    "Mouth": r"mouth|lips?|teeth|tooth|smile",
    "Hair": r"hair(line)?|fringe|bangs|beard|moustache|mustache",
    "Facial Feature": r"facial features?|nose|nostrils?|ears?|cheeks?|chin|forehead|jaw(line)?",
    "Head Structure": r"head structure|head shape|skull|shape of the head|proportions?|geometry|deformed head",
    "Overlap/Blending": r"overlap(ping)?|blend(ing|ed)?|seams?|ghost(ing|ed)?|duplicat\w*|double \w+|holes?",
    "Blurring/Exposure/Grain": r"blur(ry|red|ring)?|out of focus|expos(ure|ed)|over-?exposed|under-?exposed|grain(y)?|"
                               r"nois(e|y)|washed out|too (dark|bright)",
    "Accessories/Cloth": r"accessor(y|ies)|cloth(es|ing)?|glasses|spectacles|hats?|earrings?|collar|shirt|jewel\w*",
}
NONE_WORDS = r"no distortions?|none|no (visible|obvious|noticeable|apparent) (distortions?|artifacts?|problems?|issues?)"
NEGATION = re.compile(r"\b(no|not|without|free of|never)\b|n't\b")
# A clause that says something is fine names no distortion ("the eyes look natural", "the mouth has no issues").
FINE = re.compile(r"\b(look|looks|looking|are|is|seem|seems|appear|appears)\s+(fine|ok|okay|natural|normal|good|"
                  r"intact|correct|clean|undistorted|consistent|sharp|realistic)\b|"
                  r"\b(has|have|with|shows?)\s+no\s+(\w+\s+)?(issues?|problems?|artifacts?|distortions?|defects?)\b")
CLAUSE = re.compile(r"[.;:!?,\n]|\b(but|while|whereas|and)\b")


def chat(question: str, answer_prefix: str = "") -> str:
    """One user turn with the video and ``question``; the assistant's turn starts with ``answer_prefix``."""
    return (f"<|im_start|>system\n{SYSTEM}{END}\n<|im_start|>user\n{VIDEO}{question}{END}\n"
            f"<|im_start|>assistant\n{answer_prefix}")


def score_prompt(dimension: str) -> str:
    """The prompt whose next token is the level word for ``dimension`` ("quality" or "authenticity")."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension must be one of {DIMENSIONS}. Got {dimension!r}.")
    return chat(SCORE_QUESTIONS[dimension], SCORE_ANSWERS[dimension])


def level_answer(level: str) -> str:
    """The level word as it follows the score prompt (with its leading space)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}. Got {level!r}.")
    return f" {level}"


def distortion_answer(categories: list[str]) -> str:
    """The answer a trained judge should give for ``categories`` (the taxonomy's order)."""
    named = [c for c in CATEGORIES if c in categories and c != NO_DISTORTION]
    return (", ".join(named) if named else NO_DISTORTION) + "." + END


def parse_distortions(text: str) -> list[str]:
    """The categories a free-text answer names, in the order it names them.

    A category counts when its name or one of its words ("the lips are smeared", "blurry") appears in a
    clause that does not negate it ("no blur", "the eyes look fine", "the hair has no issues"). A real
    category overrides "No Distortion". ``[]`` when the answer names nothing.

    Example:
        >>> parse_distortions("The eyes look fine, but the mouth is blurry.")
        ['Mouth', 'Blurring/Exposure/Grain']
    """
    found: dict[str, int] = {}
    lowered = text.lower()
    for clause_start, clause in _clauses(lowered):
        if FINE.search(clause):
            continue
        for category, words in CATEGORY_WORDS.items():
            for match in re.finditer(rf"\b({re.escape(category.lower())}|{words})\b", clause):
                if not NEGATION.search(clause[:match.start()]):
                    found.setdefault(category, clause_start + match.start())
    if not found and (NO_DISTORTION.lower() in lowered or re.search(rf"\b({NONE_WORDS})\b", lowered)):
        return [NO_DISTORTION]
    return sorted(found, key=found.get)


def _clauses(text: str) -> list[tuple[int, str]]:
    out, start = [], 0
    for match in CLAUSE.finditer(text):
        out.append((start, text[start:match.start()]))
        start = match.end()
    out.append((start, text[start:]))
    return out
