"""What a judge says about a 3D face turntable: two opinion scores, the distortions found, and where.

The category names and the level rule are the published judge's (REFERENCE.md section 2).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

CATEGORIES = ("Eye", "Mouth", "Hair", "Facial Feature", "Head Structure", "Overlap/Blending",
              "Blurring/Exposure/Grain", "Accessories/Cloth", "No Distortion")
NO_DISTORTION = "No Distortion"
LEVELS = ("bad", "poor", "fair", "good", "excellent")
# Face regions the judge reports on (the names used in results, questions and heatmaps).
JUDGE_REGIONS = ("eyes", "eyebrows", "nose", "mouth", "cheeks", "forehead", "chin", "hair", "neck")
PLURAL_REGIONS = ("eyes", "eyebrows", "cheeks")  # "the eyes look", "the mouth looks"
# Where each region-bound category looks; the others are about the whole head.
CATEGORY_REGIONS = {"Eye": ("eyes", "eyebrows"), "Mouth": ("mouth",), "Hair": ("hair",),
                    "Facial Feature": ("nose", "cheeks", "forehead", "chin"), "Accessories/Cloth": ("neck",)}
VIEW_NAMES = ("right profile", "frontal", "left profile")  # the subject's right side faces the camera first
# The evidence the embedded judge measures, by name: what a high value means. Region and clip measures
# use these names, each in [0, 1] with 0 = as in clean turntables.
MEASURES = {
    "blur": "detail lost (less local contrast than a sharp render has)",
    "noise": "grain (pixel-to-pixel noise in smooth areas)",
    "blockiness": "compression blocks (steps at 8-pixel block borders)",
    "exposure": "over- or under-exposure (clipped highlights or crushed shadows)",
    "colour": "colours off (a cast, or skin, eye, lip or hair colour outside the usual range)",
    "flicker": "brightness or texture that changes from frame to frame beyond the head's motion",
    "nonrigid": "shape that does not stay rigid as the head turns (3D inconsistency)",
    "holes": "background showing through the face, or missing parts",
    "smear": "smeared, streaked texture",
    "fringe": "colour fringes (colours bleeding past edges)",
    "asymmetry": "left and right halves of the face that differ more than faces do",
    "tracking": "face landmarks hard to find or unstable from frame to frame",
    "identity": "a face that looks like a different person from view to view (dlib's face descriptor)",
    "shape": "face proportions the head model cannot fit (cartoon-like or broken)",
    "head": "too little head around the face (a face mask without hair, ears or neck)",
    "resolution": "a face rendered with too few pixels",
    "background": "a background that warps or pulses instead of moving rigidly",
    "temporal": "a stretch of frames worse than the rest",
}


def frame_runs(frames: Sequence[int]) -> str:
    """Increasing frame indices as runs, for people.

    Example:
        >>> frame_runs([3, 4, 5, 9])
        '3-5, 9'
    """
    runs, start = [], None
    for a, b in zip(frames, list(frames[1:]) + [None]):
        start = a if start is None else start
        if b != a + 1:
            runs.append(f"{start}-{a}" if a > start else str(a))
            start = None
    return ", ".join(runs)


def level_word(score: float, low: float = 0.0, high: float = 100.0) -> str:
    """The level of ``score`` on [low, high] by equal-width bins: level i (1..5) when
    low + (i-1)(high-low)/5 < score <= low + i(high-low)/5; the bottom value itself is 'bad'.

    Example:
        >>> level_word(60.0), level_word(60.01), level_word(0.0)
        ('fair', 'good', 'bad')
    """
    if not np.isfinite(score) or not low <= score <= high:
        raise ValueError(f"score must lie in [{low}, {high}]. Got {score}.")
    width = (high - low) / len(LEVELS)
    index = int(np.ceil((score - low) / width)) - 1
    return LEVELS[max(0, min(len(LEVELS) - 1, index))]


@dataclass(frozen=True)
class Score:
    """A mean-opinion-style score: ``mos`` in [0, 100] and its level word."""

    mos: float
    level: str

    @classmethod
    def from_mos(cls, mos: float) -> "Score":
        mos = float(np.clip(mos, 0.0, 100.0))
        return cls(round(mos, 2), level_word(mos))


@dataclass(frozen=True)
class Distortion:
    """One distortion found.

    Attributes:
        category: one of ``CATEGORIES``.
        probability: how sure the judge is that it is there, in [0, 1].
        severity: how strong it is, in [0, 1] (0 = barely, 1 = as bad as it gets).
        regions: face regions (``JUDGE_REGIONS``) where it is, worst first.
        frames: analysed-frame indices where it is: a stretch where it stands out, or every frame with a
            face when it is there throughout.
        explanation: one sentence saying what was seen.
        evidence: the measures (``MEASURES``) behind it, strongest first; a question about one of them
            ("Is it blurry?") is answered yes exactly when a named distortion lists it.
    """

    category: str
    probability: float
    severity: float
    regions: list[str]
    frames: list[int]
    explanation: str
    evidence: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.category not in CATEGORIES:
            raise ValueError(f"category must be one of {CATEGORIES}. Got {self.category!r}.")


@dataclass(frozen=True)
class RegionReport:
    """How one face region fares: ``badness`` in [0, 1] and the measures behind it (each in [0, 1],
    0 = as in clean turntables), e.g. {"blur": 0.1, "noise": 0.7}."""

    name: str
    badness: float
    measures: dict[str, float]


@dataclass(frozen=True)
class ViewReport:
    """Scores of the frames of one part of the turn (``VIEW_NAMES``)."""

    name: str
    frames: list[int]
    quality: Score
    authenticity: Score


@dataclass
class JudgeResult:
    """A judge's verdict on a turntable (or a single image).

    Attributes:
        backend: which judge produced it ("embedded-judge", "lmm-judge:<model>").
        quality: technical quality (clarity, noise, exposure, smoothness).
        authenticity: natural structure and motion, consistency across views, realistic texture.
        distortions: what was found, most probable first; ``[No Distortion]`` when nothing was.
        probabilities: every category's probability.
        summary: a short paragraph for people.
        face_found: False when no face was found in any frame (then the scores are 0 and say so).
        frame_indices: which source frames were analysed (the heatmaps follow this order).
        consistency_available: False for a single image: no 3D-consistency evidence.
        regions: per face region reports.
        views: per part of the turn reports (empty for a single image).
        measures: clip-level evidence by name (in [0, 1], 0 = clean), for questions and debugging.
        frame_heatmaps: [T, H, W] float32 in [0, 1], aligned with the analysed frames.
        strip_heatmap: [H, 3W] float32 in [0, 1] over the 3-view strip (``strip``).
        strip: [H, 3W, 3] uint8, the analysed frames nearest the three views side by side.
        provenance: "made with FaceLab 3D (creation <id>)" when the frames carry its watermark, else None.
        warnings: what the verdict could not take into account (e.g. a video cut short, of which only
            some frames could be decoded), each also at the end of ``summary``.
    """

    backend: str
    quality: Score
    authenticity: Score
    distortions: list[Distortion]
    probabilities: dict[str, float]
    summary: str
    face_found: bool
    frame_indices: list[int]
    consistency_available: bool
    regions: dict[str, RegionReport] = field(default_factory=dict)
    views: list[ViewReport] = field(default_factory=list)
    measures: dict[str, float] = field(default_factory=dict)
    frame_heatmaps: np.ndarray | None = field(default=None, repr=False)
    strip_heatmap: np.ndarray | None = field(default=None, repr=False)
    strip: np.ndarray | None = field(default=None, repr=False)
    warnings: list[str] = field(default_factory=list)
    provenance: str | None = None

    def add_warnings(self, notes: Sequence[str]) -> None:
        """Record ``notes`` (e.g. a clip's ``warnings``) in ``warnings`` and at the end of ``summary``."""
        new = [n for n in dict.fromkeys(notes) if n and n not in self.warnings]
        self.warnings.extend(new)
        self.summary = " ".join([self.summary, *new]).strip()

    def top_category(self) -> str:
        """The most probable distortion's category (``No Distortion`` when none was found)."""
        return self.distortions[0].category if self.distortions else NO_DISTORTION

    def to_dict(self) -> dict:
        """Everything but the arrays, as plain JSON types."""
        out = asdict(self)
        for name in ("frame_heatmaps", "strip_heatmap", "strip"):
            out.pop(name)
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> "JudgeResult":
        """Read ``to_dict``'s output back (without the arrays); results saved before ``warnings``
        existed read back with none."""
        data = dict(data)
        data["warnings"] = list(data.get("warnings", []))
        data["quality"], data["authenticity"] = Score(**data["quality"]), Score(**data["authenticity"])
        data["distortions"] = [Distortion(**d) for d in data["distortions"]]
        data["regions"] = {k: RegionReport(**v) for k, v in data.get("regions", {}).items()}
        data["views"] = [ViewReport(v["name"], v["frames"], Score(**v["quality"]), Score(**v["authenticity"]))
                         for v in data.get("views", [])]
        return cls(**data)
