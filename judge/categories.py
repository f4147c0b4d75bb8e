"""Which distortions the embedded judge names, on what evidence, and in which frames.

A category is named only when its own evidence is there: the classifier's probabilities rank the
categories, and a category is named when its measures (``EVIDENCE``) stand out from clean turntables.
Everything here reads the feature vector alone (``judge.calibration.feature_names``), so the benchmark
names categories from cached features exactly as the judge does.
"""

from __future__ import annotations

import numpy as np

from judge.calibration import EXTRA_FEATURES, _split
from judge.evidence import MAP_MEASURES
from judge.heatmap import Z_SCALE
from judge.result import CATEGORIES, CATEGORY_REGIONS, JUDGE_REGIONS, NO_DISTORTION

DETECTED = 0.25  # a category other than the top one is named from this probability on (with its evidence)
# z above clean from which a measure counts: as evidence for a category, and above 0 in the measures people
# read ("noise 0.40 of 1"), so a measure reads 0 exactly when it backs nothing.
EVIDENT_Z = 2.0
EVIDENT = 1e-6  # the same threshold on the [0, 1] scale
STRUCTURE = ("holes", "smear", "fringe", "nonrigid")
# Category -> (measures looked at in its own regions, clip-level measures): its own evidence.
EVIDENCE = {
    "Eye": (MAP_MEASURES, ()),
    "Mouth": (MAP_MEASURES, ()),
    "Hair": (MAP_MEASURES, ()),
    "Accessories/Cloth": (MAP_MEASURES, ()),
    "Facial Feature": (MAP_MEASURES, ("identity", "shape")),
    "Head Structure": (STRUCTURE, ("nonrigid", "head", "shape", "identity", "tracking")),
    "Overlap/Blending": (("holes", "fringe", "smear", "colour"), ("holes", "fringe", "background")),
    "Blurring/Exposure/Grain": ((), ("blur", "noise", "blockiness", "exposure", "flicker", "colour", "resolution",
                                     "temporal")),
}
# Clip measures that come from the extra features, and how (the largest z of the names listed).
CLIP_EXTRAS = {"flicker": ("flicker_series",), "colour": ("colour_cast",), "tracking": ("missed_frames", "landmark_jitter"),
               "identity": ("identity_spread", "identity_missed"), "shape": ("shape_error", "shape_extremity"),
               "head": ("head_missing",), "resolution": ("small_face",), "background": ("background_motion",)}


def squash(z: np.ndarray | float) -> np.ndarray:
    """z-scores -> [0, 1]: 0 up to what clean turntables show, rising to 1 for far-off values."""
    return 1.0 - np.exp(-np.clip(np.nan_to_num(np.asarray(z, np.float64), nan=0.0) - EVIDENT_Z, 0.0, None) / Z_SCALE)


def region_measures(features: np.ndarray) -> np.ndarray:
    """[R, M] each region's measures in [0, 1] (how far above clean), from the features."""
    global_z, local, _, _ = _split(features)
    return squash(local + global_z)


def clip_measures(features: np.ndarray, single: bool = False) -> dict[str, float]:
    """Clip-level measures in [0, 1] by name (``judge.result.MEASURES``): each map measure at its worst
    region or over the whole person, and the clip-level ones (identity, shape, head, ...). A single image
    has no motion, so no flicker, non-rigidity or temporal measure."""
    global_z, local, person, extra = _split(features)
    worst = np.maximum((local + global_z).max(0), person)
    measures = {m: float(squash(worst[j])) for j, m in enumerate(MAP_MEASURES)}
    z = dict(zip(EXTRA_FEATURES + ("temporal",), extra))
    for name, sources in CLIP_EXTRAS.items():
        measures[name] = max(measures.get(name, 0.0), float(squash(max(z[s] for s in sources))))
    measures["temporal"] = float(squash(z["temporal"]))
    if single:
        for m in ("flicker", "nonrigid", "temporal", "background"):
            measures.pop(m)
    return {m: round(v, 3) for m, v in measures.items()}


def category_evidence(features: np.ndarray, single: bool = False) -> dict[str, tuple[float, list[str]]]:
    """Category -> (strength in [0, 1], the measures behind it, strongest first) of its own evidence. A
    region's category reads how far its regions stand out from the face as a whole (a blur of the whole
    frame is not the mouth's distortion); the whole-head categories read the regions' full values."""
    regions, clip = region_measures(features), clip_measures(features, single)
    standout = squash(_split(features)[1])
    out = {}
    for category, (local, whole) in EVIDENCE.items():
        own = [JUDGE_REGIONS.index(r) for r in CATEGORY_REGIONS.get(category, JUDGE_REGIONS)]
        read = standout if category in CATEGORY_REGIONS else regions
        values = {m: float(read[own, MAP_MEASURES.index(m)].max()) for m in local}
        for m in whole:
            values[m] = max(values.get(m, 0.0), clip.get(m, 0.0))
        ranked = sorted(values.items(), key=lambda mv: -mv[1])
        out[category] = (ranked[0][1] if ranked else 0.0, [m for m, v in ranked if v >= EVIDENT])
    return out


def named_categories(probabilities: np.ndarray, evidence: dict[str, tuple[float, list[str]]]) -> list[tuple[str, float]]:
    """The distortions the judge names, most probable first: the first of the categories by probability
    that is ``No Distortion`` or has its own evidence, then any other with evidence and probability >=
    ``DETECTED``. Empty when ``No Distortion`` comes first."""
    order = [CATEGORIES[i] for i in np.argsort(-probabilities)]
    backed = lambda c: evidence.get(c, (0.0, []))[0] >= EVIDENT
    top = next((c for c in order if c == NO_DISTORTION or backed(c)), NO_DISTORTION)
    if top == NO_DISTORTION:
        return []
    found = [(top, float(probabilities[CATEGORIES.index(top)]))]
    found += [(c, float(p)) for c, p in zip(CATEGORIES, probabilities)
              if c not in (top, NO_DISTORTION) and p >= DETECTED and backed(c)]
    return sorted(found, key=lambda cp: -cp[1])


def top_category(probabilities: np.ndarray, features: np.ndarray, single: bool = False) -> str:
    """The category the judge names first (``No Distortion`` when it names none)."""
    found = named_categories(probabilities, category_evidence(features, single))
    return found[0][0] if found else NO_DISTORTION


def frame_strength(category: str, frame_region_z: np.ndarray, frame_person_z: np.ndarray,
                   identity_distance: np.ndarray) -> np.ndarray:
    """[T] how strongly each frame shows the category's own evidence, in z units.

    Args:
        frame_region_z: [T, R, M] per-frame z-scores of each region and measure (NaN where absent).
        frame_person_z: [T, M] per-frame z-scores over the whole person.
        identity_distance: [T] dlib distance from the clip's identity (NaN where not described).
    """
    local, whole = EVIDENCE.get(category, (MAP_MEASURES, ()))
    own = [JUDGE_REGIONS.index(r) for r in CATEGORY_REGIONS.get(category, JUDGE_REGIONS)]
    parts = []
    if local:
        parts.append(frame_region_z[:, own][:, :, [MAP_MEASURES.index(m) for m in local]].reshape(len(frame_region_z), -1))
    person = [MAP_MEASURES.index(m) for m in whole if m in MAP_MEASURES]
    if person:
        parts.append(frame_person_z[:, person])
    if "identity" in whole:
        parts.append((identity_distance / 0.05)[:, None])  # ~0.05 apart: one clean spread
    stacked = np.concatenate(parts, 1) if parts else np.zeros((len(frame_person_z), 1))
    with np.errstate(all="ignore"):
        return np.nan_to_num(np.nanmax(np.where(np.isfinite(stacked), stacked, -np.inf), 1), nan=0.0, neginf=0.0)


def frame_focus(strength: np.ndarray, found: np.ndarray) -> np.ndarray:
    """[T] in [0, 1]: how much each frame shows a distortion, from its per-frame ``strength`` [T]: when the
    peak stands 2 z or more above the clip's median (a stretch of frames), rising from the median to the
    peak (0 without a face); else 1 everywhere (it is there throughout)."""
    s = np.where(found, strength, np.nan)
    if not np.isfinite(s).any():
        return np.ones(len(strength))
    median, peak = float(np.nanmedian(s)), float(np.nanmax(s))
    if peak - median < 2.0:
        return np.ones(len(strength))
    return np.nan_to_num(np.clip((s - median) / (peak - median), 0.0, 1.0), nan=0.0)


def distortion_frames(strength: np.ndarray, found: np.ndarray) -> list[int]:
    """The frames with a face a distortion is named in: those at least half way from the clip's median to
    its peak (``frame_focus``), which is every frame when it is there throughout."""
    return [int(i) for i in np.nonzero(found & (frame_focus(strength, found) >= 0.5))[0]]
