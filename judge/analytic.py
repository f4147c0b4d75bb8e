"""The embedded judge: measured evidence -> calibrated scores, distortions, heatmaps. Offline, CPU, no
weights beyond mediapipe's landmarker and segmenter."""

from __future__ import annotations

import numpy as np

from judge.calibration import EXTRA_FEATURES, TARGETS, Calibration, RawEvidence
from judge.evidence import MAP_MEASURES, gather_evidence
from judge.frames import Clip
from judge.heatmap import Z_FLOOR, Z_SCALE, distortion_heatmaps
from judge.result import (CATEGORIES, CATEGORY_REGIONS, JUDGE_REGIONS, MEASURES, NO_DISTORTION, VIEW_NAMES, Distortion, JudgeResult,
                          RegionReport, Score, ViewReport)
from judge.track import track_faces

BACKEND = "embedded-judge"
ANALYSIS_SIDE = 256  # frames are analysed at most this large
DETECTED = 0.5  # a category counts as found from this probability on
STRUCTURE_CATEGORIES = ("Head Structure", "Overlap/Blending")
STRUCTURE_MEASURES = ("holes", "smear", "fringe", "nonrigid")  # what broken structure shows in a region
VIEW_YAW = 0.12  # |nose yaw proxy| above this is a profile view


def squash(z: np.ndarray | float) -> np.ndarray:
    """z-scores -> [0, 1]: 0 up to what clean turntables show, rising to 1 for far-off values."""
    return 1.0 - np.exp(-np.clip(np.nan_to_num(np.asarray(z, np.float64), nan=0.0) - Z_FLOOR, 0.0, None) / Z_SCALE)


class EmbeddedJudge:
    """Judges a clip with the embedded evidence and ``calibration.json``.

    Example:
        >>> from judge.frames import load_clip
        >>> result = EmbeddedJudge().judge(load_clip("turntable.mp4"))  # doctest: +SKIP
        >>> result.quality.level, result.top_category()  # doctest: +SKIP
        ('good', 'No Distortion')
    """

    def __init__(self, calibration: Calibration | None = None, score_map: str | None = None):
        """``score_map``: a refit to annotators' ratings (``python -m judge.annotations calibrate``)
        applied on top of the calibration; the backend name then says which."""
        from pathlib import Path

        from judge.annotations.recalibrate import load_score_map

        self.calibration = calibration or Calibration.load()
        self.score_map = load_score_map(score_map) if score_map else None
        self.name = BACKEND if score_map is None else f"{BACKEND}+{Path(score_map).stem}"

    def _predict(self, features: np.ndarray) -> tuple[float, float, np.ndarray]:
        quality, authenticity, probabilities = self.calibration.predict(features)
        if self.score_map is not None:
            quality, authenticity = (float(self.score_map[d](quality, authenticity)) for d in ("quality", "authenticity"))
        return quality, authenticity, probabilities

    def judge(self, clip: Clip) -> JudgeResult:
        frames = analysis_frames(clip.frames)
        track = track_faces(frames)
        single = len(frames) == 1
        if not track.found.any():
            return _no_face(clip, frames, single, self.name)
        evidence = gather_evidence(frames, track)
        raw = RawEvidence.of(evidence, track)
        cal = self.calibration
        raw_z = cal.region_z(raw)
        features = cal.features(raw, raw_z)
        quality, authenticity, probabilities = self._predict(features)
        region_z = np.nan_to_num(raw_z, nan=0.0)
        seen = np.isfinite(raw.region_values).any(0).any(-1)
        badness = squash(region_z.max(1)) * seen
        global_z = np.median(region_z[seen], axis=0)
        person = (track.person > 0.5) | track.face
        heatmaps = distortion_heatmaps(cal.pixel_z(evidence.maps, track.regions), global_z, person,
                                       region_weights(probabilities, region_z, seen), track.regions)
        regions = {r: RegionReport(r, round(float(badness[i]), 3),
                                   {m: round(float(squash(region_z[i, j])), 3) for j, m in enumerate(MAP_MEASURES)})
                   for i, r in enumerate(JUDGE_REGIONS)}
        distortions = _distortions(probabilities, quality, authenticity, regions, heatmaps, track.regions)
        views = [] if single else _views(lambda r: self._predict(cal.features(r)), raw, evidence.yaw)
        measures = _clip_measures(features, region_z, seen, single)
        strip_frames = _strip_frames(evidence.yaw)
        result = JudgeResult(
            self.name, Score.from_mos(quality), Score.from_mos(authenticity), distortions,
            {c: round(float(p), 4) for c, p in zip(CATEGORIES, probabilities)}, "", True, list(clip.indices),
            not single, regions, views, measures, heatmaps,
            np.concatenate([heatmaps[i] for i in strip_frames], axis=1), np.concatenate([frames[i] for i in strip_frames], 1))
        result.summary = summarise(result)
        result.add_warnings(clip.warnings)
        return result


def region_weights(probabilities: np.ndarray, region_z: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """[R] each region's share of the blame in [0, 1]: a region-bound category's probability goes to
    its regions (most to the one that stands out most from the face); whole-head categories spread
    theirs by how much each region's evidence of broken structure (``STRUCTURE_MEASURES``) stands out;
    technical ones over the whole head."""
    excess = np.clip((region_z - np.median(region_z[seen], axis=0)) / 6.0, 0.0, 1.0) * seen[:, None]  # [R, M]
    standout = excess.max(1)
    structural = excess[:, [MAP_MEASURES.index(m) for m in STRUCTURE_MEASURES]].max(1)
    relative = lambda s: s / max(float(s.max()), 1e-6)
    weights = np.zeros(len(JUDGE_REGIONS))
    for category, p in zip(CATEGORIES, probabilities):
        if category == NO_DISTORTION:
            continue
        if category in CATEGORY_REGIONS:
            index = [JUDGE_REGIONS.index(r) for r in CATEGORY_REGIONS[category]]
            weights[index] = np.maximum(weights[index], p * (0.4 + 0.6 * relative(standout[index])))
        elif category in STRUCTURE_CATEGORIES:  # by the evidence of broken structure, not of blur or colour
            weights = np.maximum(weights, p * relative(structural))
        else:
            weights = np.maximum(weights, 0.5 * p * seen)
    return weights


def analysis_size(height: int, width: int) -> tuple[int, int]:
    """(height, width) of frames of this size as the judge analyses them: at most ``ANALYSIS_SIDE`` on
    the long side, never enlarged."""
    scale = ANALYSIS_SIDE / max(height, width)
    if scale >= 1.0:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def analysis_frames(frames: np.ndarray) -> np.ndarray:
    """The frames [T, H, W, 3] as the judge analyses them (``analysis_size``)."""
    from PIL import Image

    h, w = analysis_size(*frames.shape[1:3])
    if (h, w) == frames.shape[1:3]:
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.BOX)) for f in frames])


def _no_face(clip: Clip, frames: np.ndarray, single: bool, backend: str) -> JudgeResult:
    t, h, w = frames.shape[:3]
    zero = Score.from_mos(0.0)
    what = "the image" if single else f"any of the {t} analysed frames"
    summary = (f"No face was found in {what}, so nothing was judged. Use a turntable or image in which one face "
               "is clearly visible (at least about 80 pixels across).")
    strip = np.concatenate([frames[i] for i in _strip_frames(np.full(t, np.nan))], 1)
    result = JudgeResult(backend, zero, zero, [], {c: 0.0 for c in CATEGORIES}, summary, False, list(clip.indices),
                         not single, frame_heatmaps=np.zeros((t, h, w), np.float32),
                         strip_heatmap=np.zeros(strip.shape[:2], np.float32), strip=strip)
    result.add_warnings(clip.warnings)
    return result


def top_category(probabilities: np.ndarray) -> str:
    """The category the judge names first: the most probable of the nine (the categories compete in
    one softmax, so the most probable is the judge's answer even below 0.5)."""
    return CATEGORIES[int(np.argmax(probabilities))]


def found_categories(probabilities: np.ndarray) -> list[tuple[str, float]]:
    """The distortions reported: the most probable category when it is not ``No Distortion``, and any
    other with probability >= ``DETECTED``; most probable first."""
    top = top_category(probabilities)
    found = {c: float(p) for c, p in zip(CATEGORIES, probabilities)
             if c != NO_DISTORTION and (p >= DETECTED or c == top)}
    return sorted(found.items(), key=lambda cp: -cp[1])


def _distortions(probabilities, quality, authenticity, regions, heatmaps, region_masks) -> list[Distortion]:
    found = found_categories(probabilities)
    if not found:
        p = float(probabilities[CATEGORIES.index(NO_DISTORTION)])
        return [Distortion(NO_DISTORTION, round(p, 4), 0.0, [], [], "No distortion stands out from what clean "
                           "turntables show.")]
    out = []
    for category, p in found:
        candidates = CATEGORY_REGIONS.get(category, JUDGE_REGIONS)
        named = sorted(candidates, key=lambda r: -regions[r].badness)
        named = [r for r in named if regions[r].badness > 0.05][:3] or named[:1]
        score = authenticity if category in STRUCTURE_CATEGORIES else quality
        if category not in CATEGORY_REGIONS and category not in STRUCTURE_CATEGORIES:
            score = min(quality, authenticity)
        severity = float(np.clip((TARGETS["clean"] - score) / (TARGETS["clean"] - 20.0), 0.0, 1.0))
        mask = region_masks[:, [JUDGE_REGIONS.index(r) for r in named]].any(1)
        strength = (heatmaps * mask).sum((1, 2)) / np.maximum(mask.sum((1, 2)), 1)
        frames = sorted(int(i) for i in np.argsort(-strength)[:3] if strength[i] > 0)
        out.append(Distortion(category, round(p, 4), round(severity, 3), named, frames,
                              _explain(category, named, regions)))
    return out


def _explain(category: str, named: list[str], regions: dict[str, RegionReport]) -> str:
    measures = {}
    for r in named:
        for m, v in regions[r].measures.items():
            measures[m] = max(measures.get(m, 0.0), v)
    top = [m for m, v in sorted(measures.items(), key=lambda mv: -mv[1]) if v > 0.05][:2]
    where = ", ".join(named)
    if not top:
        return f"{category}: the evidence is spread thinly; the {where} differ slightly from clean turntables."
    return f"{category}: {' and '.join(MEASURES[m] for m in top)}, mostly in the {where}."


def _views(predict, raw: RawEvidence, yaw: np.ndarray) -> list[ViewReport]:
    groups = {VIEW_NAMES[0]: np.nonzero(yaw < -VIEW_YAW)[0], VIEW_NAMES[1]: np.nonzero(np.abs(yaw) <= VIEW_YAW)[0],
              VIEW_NAMES[2]: np.nonzero(yaw > VIEW_YAW)[0]}
    views = []
    for name, frames in groups.items():
        if len(frames) == 0:
            continue
        quality, authenticity, _ = predict(raw.subset(frames))
        views.append(ViewReport(name, frames.tolist(), Score.from_mos(quality), Score.from_mos(authenticity)))
    return views


def _clip_measures(features: np.ndarray, region_z: np.ndarray, seen: np.ndarray, single: bool) -> dict[str, float]:
    worst = region_z[seen].max(0) if seen.any() else np.zeros(len(MAP_MEASURES))
    measures = {m: round(float(squash(worst[j])), 3) for j, m in enumerate(MAP_MEASURES)}
    extra = features[-len(EXTRA_FEATURES):]
    measures["flicker"] = round(float(max(measures["flicker"], squash(extra[0]))), 3)
    measures["colour"] = round(float(max(measures["colour"], squash(extra[1]))), 3)
    measures["tracking"] = round(float(squash(max(extra[2], extra[3]))), 3)
    if single:  # one image: nothing to say about motion
        for m in ("flicker", "nonrigid"):
            measures.pop(m)
    return measures


def _strip_frames(yaw: np.ndarray) -> list[int]:
    """Analysed frames nearest the three views: most turned one way, frontal, most turned the other way."""
    n = len(yaw)
    if not np.isfinite(yaw).any():
        return [0, n // 2, n - 1]
    filled = np.where(np.isfinite(yaw), yaw, 0.0)
    return [int(np.argmin(filled)), int(np.argmin(np.abs(np.where(np.isfinite(yaw), yaw, 9.0)))), int(np.argmax(filled))]


def summarise(result: JudgeResult) -> str:
    """A short paragraph: scores, what was found, the weakest view."""
    q, a = result.quality, result.authenticity
    text = [f"Quality {q.mos:.0f}/100 ({q.level}), authenticity {a.mos:.0f}/100 ({a.level})."]
    real = [d for d in result.distortions if d.category != NO_DISTORTION]
    if real:
        main = real[0]
        text.append(f"Main distortion: {main.explanation} (probability {main.probability:.2f}, severity "
                    f"{main.severity:.2f}).")
        if len(real) > 1:
            text.append("Also: " + ", ".join(f"{d.category} ({d.probability:.2f})" for d in real[1:]) + ".")
    else:
        text.append("No distortion stands out.")
    if len(result.views) > 1:
        worst = min(result.views, key=lambda v: v.authenticity.mos + v.quality.mos)
        text.append(f"The weakest part of the turn is the {worst.name}.")
    if not result.consistency_available:
        text.append("A single image: 3D consistency across views could not be judged.")
    return " ".join(text)
