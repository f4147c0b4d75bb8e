"""Questions about a judgement, answered from its evidence ("Is the mouth distorted?", "Which region is
worst?", "How realistic is the left profile?"), or a plain "cannot answer" that says what can be asked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from judge.result import MEASURES, NO_DISTORTION, PLURAL_REGIONS, JudgeResult, frame_runs

REGION_WORDS = {"eye": "eyes", "eyes": "eyes", "iris": "eyes", "irises": "eyes", "eyelid": "eyes", "eyelids": "eyes",
                "brow": "eyebrows", "brows": "eyebrows", "eyebrow": "eyebrows", "eyebrows": "eyebrows",
                "nose": "nose", "mouth": "mouth", "lip": "mouth", "lips": "mouth", "teeth": "mouth",
                "cheek": "cheeks", "cheeks": "cheeks", "forehead": "forehead", "chin": "chin", "jaw": "chin",
                "hair": "hair", "neck": "neck", "clothes": "neck", "cloth": "neck", "shirt": "neck", "collar": "neck"}
MEASURE_WORDS = {"blur": "blur", "blurry": "blur", "blurred": "blur", "sharp": "blur", "sharpness": "blur",
                 "noise": "noise", "noisy": "noise", "grain": "noise", "grainy": "noise",
                 "block": "blockiness", "blocky": "blockiness", "blocks": "blockiness", "jpeg": "blockiness",
                 "compression": "blockiness", "exposure": "exposure", "overexposed": "exposure",
                 "underexposed": "exposure", "clipped": "exposure", "colour": "colour", "color": "colour",
                 "colours": "colour", "colors": "colour", "flicker": "flicker", "flickering": "flicker",
                 "consistent": "nonrigid", "consistency": "nonrigid", "rigid": "nonrigid", "warp": "nonrigid",
                 "warped": "nonrigid", "wobble": "nonrigid", "3d": "nonrigid", "hole": "holes", "holes": "holes",
                 "missing": "holes", "smear": "smear", "smeared": "smear", "streaks": "smear",
                 "symmetric": "asymmetry", "asymmetric": "asymmetry", "asymmetry": "asymmetry",
                 "tracking": "tracking", "landmarks": "tracking", "identity": "identity", "person": "identity",
                 "cartoon": "shape", "cartoonish": "shape", "stylised": "shape", "stylized": "shape",
                 "proportions": "shape", "resolution": "resolution", "pixelated": "resolution",
                 "background": "background", "backdrop": "background"}
VIEW_PATTERNS = {"left profile": r"\bleft\b", "right profile": r"\bright\b", "frontal": r"\bfront(al)?\b"}
HELP = ("I can answer about a face region ('Is the mouth distorted?'), the worst region ('Which region is "
        "worst?'), a view ('How realistic is the left profile?'), a kind of distortion ('Is it blurry?'), the "
        "scores ('What is the quality?'), the frames ('Which frames are worst?') or the reasons ('Why?').")
NOTICEABLE = 0.15  # region badness / measure from which something counts as visible


@dataclass(frozen=True)
class Answer:
    """``text`` for people; ``answered`` False when the judgement cannot answer; ``evidence``: the
    numbers the answer rests on."""

    text: str
    answered: bool
    evidence: dict[str, float] = field(default_factory=dict)


def ask(result: JudgeResult, question: str) -> Answer:
    """Answer ``question`` from ``result`` (see ``HELP`` for what can be asked)."""
    words = re.findall(r"[a-z0-9]+", (question or "").lower())
    if not words:
        return Answer("The question is empty. " + HELP, False)
    if not result.face_found:
        return Answer("No face was found, so the judgement has nothing to say about it. " + result.summary, False)
    text = " ".join(words)
    region = next((REGION_WORDS[w] for w in words if w in REGION_WORDS), None)
    measure = next((MEASURE_WORDS[w] for w in words if w in MEASURE_WORDS), None)
    view = next((v for v, pattern in VIEW_PATTERNS.items() if re.search(pattern, text)), None)
    if view and ("profile" in words or "side" in words or "view" in words or view == "frontal"):
        return _view(result, view, words)
    if region:
        return _region(result, region)
    if measure:
        return _measure(result, measure)
    if "frame" in words or "frames" in words or "when" in words:
        return _frames(result)
    if "worst" in words or "where" in words:
        return _worst(result)
    if "why" in words or "distortion" in words or "distortions" in words or "wrong" in words:
        return Answer(result.summary, True, {d.category: d.probability for d in result.distortions})
    if {"quality", "authenticity", "score", "scores", "realistic", "authentic", "good", "real"} & set(words):
        return _scores(result)
    return Answer(f"I cannot answer {question.strip()!r} from this judgement. " + HELP, False)


def _region(result: JudgeResult, region: str) -> Answer:
    report = result.regions.get(region)
    if report is None:
        were = "were" if region in PLURAL_REGIONS else "was"
        return Answer(f"The {region} {were} not seen in any analysed frame, so I cannot say.", False)
    named = [d for d in result.distortions if region in d.regions and d.category != NO_DISTORTION]
    top = sorted(((v, m) for m, v in report.measures.items() if v >= NOTICEABLE), reverse=True)[:2]
    evidence = {"badness": report.badness, **report.measures}
    if named:
        d = named[0]
        return Answer(f"Yes: {d.explanation} (category {d.category}, probability {d.probability:.2f}, severity "
                      f"{d.severity:.2f}; {region} badness {report.badness:.2f}).", True, evidence)
    if report.badness >= NOTICEABLE:
        seen = " and ".join(MEASURES[m] for _, m in top) or "small differences from clean turntables"
        return Answer(f"Somewhat: the {region} {_verb(region, 'show')} {seen} (badness {report.badness:.2f} of 1), but "
                      "not enough to call a distortion.", True, evidence)
    like = "those" if region in PLURAL_REGIONS else "that"
    return Answer(f"No: the {region} {_verb(region, 'look')} like {like} of clean turntables (badness "
                  f"{report.badness:.2f} of 1).", True, evidence)


def _verb(region: str, verb: str) -> str:
    """``verb`` agreeing with the region's name: "the eyes look", "the mouth looks"."""
    return verb if region in PLURAL_REGIONS else verb + "s"


def _worst(result: JudgeResult) -> Answer:
    ranked = sorted(result.regions.values(), key=lambda r: -r.badness)
    if not ranked:
        return Answer("No face region was seen, so I cannot rank them.", False)
    worst = ranked[0]
    if worst.badness < NOTICEABLE:
        return Answer(f"No region stands out; the highest badness is the {worst.name}'s at {worst.badness:.2f} of 1.",
                      True, {r.name: r.badness for r in ranked})
    measure = max(worst.measures, key=worst.measures.get)
    others = ", ".join(f"{r.name} {r.badness:.2f}" for r in ranked[1:3])
    return Answer(f"The {worst.name} (badness {worst.badness:.2f} of 1: {MEASURES[measure]}); next: {others}.",
                  True, {r.name: r.badness for r in ranked})


def _view(result: JudgeResult, view: str, words: list[str]) -> Answer:
    if not result.views:
        return Answer("This judgement has a single image, so there are no views of a turn to compare.", False)
    report = next((v for v in result.views if v.name == view), None)
    if report is None:
        seen = ", ".join(v.name for v in result.views)
        return Answer(f"The clip never shows the {view} clearly (views seen: {seen}).", False)
    evidence = {"quality": report.quality.mos, "authenticity": report.authenticity.mos}
    if {"quality", "sharp", "clear", "technical"} & set(words):
        return Answer(f"The {view} (frames {_span(report.frames)}) has quality {report.quality.mos:.0f}/100 "
                      f"({report.quality.level}).", True, evidence)
    return Answer(f"The {view} (frames {_span(report.frames)}) has authenticity {report.authenticity.mos:.0f}/100 "
                  f"({report.authenticity.level}) and quality {report.quality.mos:.0f}/100 ({report.quality.level}).",
                  True, evidence)


def _measure(result: JudgeResult, measure: str) -> Answer:
    """Yes exactly when a named distortion rests on this measure (``Distortion.evidence``), so the answer
    never contradicts the categories named."""
    if measure not in result.measures:
        why = "from a single image" if not result.consistency_available and measure in ("flicker", "nonrigid") \
            else "with the evidence this judge measures"
        return Answer(f"I cannot judge {MEASURES.get(measure, measure)} {why}.", False)
    value = result.measures[measure]
    backing = [d for d in result.distortions if measure in d.evidence]
    if backing:
        d = backing[0]
        return Answer(f"Yes: {MEASURES[measure]} ({value:.2f} of 1, 0 = as in clean turntables), part of the "
                      f"{d.category} distortion found (probability {d.probability:.2f}), mostly in the "
                      f"{', '.join(d.regions)}{_when(result, d.frames)}.", True, {measure: value})
    if value >= NOTICEABLE:
        return Answer(f"No: a little more {MEASURES[measure]} than clean turntables show ({value:.2f} of 1), but not "
                      "enough to name a distortion.", True, {measure: value})
    return Answer(f"No: {MEASURES[measure]} measures {value:.2f} of 1 (0 = as in clean turntables).", True, {measure: value})


def _when(result: JudgeResult, frames: list[int]) -> str:
    """", in analysed frames 16-31" for a stretch of frames; "" when it is in every frame."""
    return f", in analysed frames {frame_runs(frames)}" if frames and len(frames) < len(result.frame_indices) else ""


def _frames(result: JudgeResult) -> Answer:
    real = [d for d in result.distortions if d.category != NO_DISTORTION and d.frames]
    if not real:
        return Answer("No distortion was found, so no frames stand out.", True)
    d = real[0]
    if len(d.frames) >= len(result.frame_indices):
        return Answer(f"The {d.category} distortion is there throughout: in every analysed frame.", True)
    return Answer(f"The {d.category} distortion is in analysed frames {frame_runs(d.frames)} (source frames "
                  f"{', '.join(str(result.frame_indices[i]) for i in d.frames)}).", True)


def _scores(result: JudgeResult) -> Answer:
    q, a = result.quality, result.authenticity
    return Answer(f"Quality {q.mos:.0f}/100 ({q.level}); authenticity {a.mos:.0f}/100 ({a.level}).", True,
                  {"quality": q.mos, "authenticity": a.mos})


def _span(frames: list[int]) -> str:
    return f"{frames[0]}-{frames[-1]}" if len(frames) > 1 else str(frames[0])
