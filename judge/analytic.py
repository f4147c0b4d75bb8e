"""The embedded judge: measured evidence -> calibrated scores, distortions, heatmaps. Offline, CPU, no
weights beyond mediapipe's landmarker and segmenter."""

from __future__ import annotations

import numpy as np

from judge.calibration import TARGETS, Calibration, RawEvidence
from judge.categories import (STRUCTURE, category_evidence, clip_measures, distortion_frames, frame_focus, frame_strength,
                              named_categories, squash)
from judge.evidence import MAP_MEASURES, FaceModels, track_and_gather
from judge.frames import Clip
from judge.heatmap import distortion_heatmaps
from judge.provenance import note_provenance
from judge.result import (CATEGORIES, CATEGORY_REGIONS, JUDGE_REGIONS, MEASURES, NO_DISTORTION, PLURAL_REGIONS,
                          VIEW_NAMES, Distortion, JudgeResult, RegionReport, Score, ViewReport, frame_runs)

BACKEND = "embedded-judge"
ANALYSIS_SIDE = 256  # frames are analysed at most this large
STRUCTURE_CATEGORIES = ("Head Structure", "Overlap/Blending")
VIEW_YAW = 0.12  # |nose yaw proxy| above this is a profile view


class EmbeddedJudge:
    """Judges a clip with the embedded evidence and ``calibration.json``.

    Example:
        >>> from judge.frames import load_clip
        >>> result = EmbeddedJudge().judge(load_clip("turntable.mp4"))  # doctest: +SKIP
        >>> result.quality.level, result.top_category()  # doctest: +SKIP
        ('good', 'No Distortion')
    """

    def __init__(self, calibration: Calibration | None = None, score_map: str | None = None, parallel: bool = True):
        """``score_map``: a refit to annotators' ratings (``python -m judge.annotations calibrate``)
        applied on top of the calibration; the backend name then says which. ``parallel`` False: one
        thread of work (a batch worker that holds one core)."""
        from pathlib import Path

        from judge.annotations.recalibrate import load_score_map

        self.calibration = calibration or Calibration.load()
        self.models = FaceModels.load()
        self.score_map = load_score_map(score_map) if score_map else None
        self.name = BACKEND if score_map is None else f"{BACKEND}+{Path(score_map).stem}"
        self.parallel = parallel

    def _predict(self, features: np.ndarray) -> tuple[float, float, np.ndarray]:
        quality, authenticity, probabilities = self.calibration.predict(features)
        if self.score_map is not None:
            quality, authenticity = (float(self.score_map[d](quality, authenticity)) for d in ("quality", "authenticity"))
        return quality, authenticity, probabilities

    def judge(self, clip: Clip) -> JudgeResult:
        frames = analysis_frames(clip.frames)
        single = len(frames) == 1
        track, evidence = track_and_gather(frames, self.models, clip.frames.shape[2] / frames.shape[2], self.parallel)
        if not track.found.any():
            return note_provenance(_no_face(clip, frames, single, self.name), clip.frames)
        raw = RawEvidence.of(evidence, track)
        result = self.verdict(raw, list(clip.indices), evidence.yaw, evidence.identity.distance)
        cal = self.calibration
        region_z = np.nan_to_num(cal.region_z(raw), nan=0.0)
        seen = np.isfinite(raw.region_values).any(0).any(-1)
        main = next((d for d in result.distortions if d.category != NO_DISTORTION), None)
        focus = np.ones(len(frames)) if main is None else frame_focus(
            frame_strength(main.category, cal.frame_region_z(raw), cal.frame_z(raw), evidence.identity.distance), track.found)
        probabilities = np.array([result.probabilities[c] for c in CATEGORIES])
        person = (track.person > 0.5) | track.face
        standout = cal.pixel_standout(evidence.maps, track.labels, np.median(region_z[seen], axis=0))
        result.frame_heatmaps = distortion_heatmaps(standout, person, region_weights(probabilities, region_z, seen),
                                                    track.labels, focus)
        strip_frames = _strip_frames(evidence.yaw)
        result.strip_heatmap = np.concatenate([result.frame_heatmaps[i] for i in strip_frames], axis=1)
        result.strip = np.concatenate([frames[i] for i in strip_frames], 1)
        result.add_warnings(clip.warnings)
        return note_provenance(result, clip.frames)

    def verdict(self, raw: RawEvidence, frame_indices: list[int], yaw: np.ndarray | None = None,
                identity_distance: np.ndarray | None = None) -> JudgeResult:
        """The judgement of a clip's evidence, without heatmaps (what ``judge`` adds them to; the benchmark
        calls it on cached evidence).

        Args:
            raw: the clip's evidence (``RawEvidence.of``).
            frame_indices: the source frames analysed.
            yaw: [T] head turn per frame (``Evidence.yaw``); None: no per-view scores.
            identity_distance: [T] dlib distance per frame (``IdentityEvidence.distance``), for placing an
                identity drift in time; None: not placed by it.
        """
        cal = self.calibration
        single = len(raw.found) == 1
        raw_z = cal.region_z(raw)
        features = cal.features(raw, raw_z)
        quality, authenticity, probabilities = self._predict(features)
        region_z = np.nan_to_num(raw_z, nan=0.0)
        seen = np.isfinite(raw.region_values).any(0).any(-1)
        badness = squash(region_z.max(1)) * seen
        regions = {r: RegionReport(r, round(float(badness[i]), 3),
                                   {m: round(float(squash(region_z[i, j])), 3) for j, m in enumerate(MAP_MEASURES)})
                   for i, r in enumerate(JUDGE_REGIONS)}
        support = category_evidence(features, single)
        named = named_categories(probabilities, support)
        frame_region_z, frame_person_z = cal.frame_region_z(raw), cal.frame_z(raw)
        distance = np.full(len(raw.found), np.nan) if identity_distance is None else identity_distance
        frames = {c: distortion_frames(frame_strength(c, frame_region_z, frame_person_z, distance), raw.found)
                  for c, _ in named}
        distortions = _distortions(named, support, probabilities, quality, authenticity, regions, frames)
        views = [] if single or yaw is None else _views(lambda r: self._predict(cal.features(r)), raw, yaw)
        result = JudgeResult(
            self.name, Score.from_mos(quality), Score.from_mos(authenticity), distortions,
            {c: round(float(p), 4) for c, p in zip(CATEGORIES, probabilities)}, "", True, frame_indices,
            not single, regions, views, clip_measures(features, single))
        result.summary = summarise(result)
        return result


def region_weights(probabilities: np.ndarray, region_z: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """[R] each region's share of the blame in [0, 1]: a region-bound category's probability goes to
    its regions (most to the one that stands out most from the face); whole-head categories spread
    theirs by how much each region's evidence of broken structure (``categories.STRUCTURE``) stands out;
    technical ones over the whole head."""
    excess = np.clip((region_z - np.median(region_z[seen], axis=0)) / 6.0, 0.0, 1.0) * seen[:, None]  # [R, M]
    standout = excess.max(1)
    structural = excess[:, [MAP_MEASURES.index(m) for m in STRUCTURE]].max(1)
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


def _distortions(named, support, probabilities, quality, authenticity, regions, frames) -> list[Distortion]:
    """Distortion reports of the named categories (``[No Distortion]`` when none is named)."""
    if not named:
        p = float(probabilities[CATEGORIES.index(NO_DISTORTION)])
        likely = CATEGORIES[int(np.argmax(probabilities))]
        why = "" if likely == NO_DISTORTION else (
            f" The most probable category, {likely} ({float(probabilities.max()):.2f}), has no evidence of its own above "
            "what clean turntables show, so it is not named.")
        return [Distortion(NO_DISTORTION, round(p, 4), 0.0, [], [], "No distortion stands out from what clean "
                           "turntables show." + why)]
    out = []
    for category, p in named:
        candidates = CATEGORY_REGIONS.get(category, JUDGE_REGIONS)
        ranked = sorted(candidates, key=lambda r: -regions[r].badness)
        where = [r for r in ranked if regions[r].badness > 0.05][:3] or ranked[:1]
        score = authenticity if category in STRUCTURE_CATEGORIES else quality
        if category not in CATEGORY_REGIONS and category not in STRUCTURE_CATEGORIES:
            score = min(quality, authenticity)
        severity = float(np.clip((TARGETS["clean"] - score) / (TARGETS["clean"] - 20.0), 0.0, 1.0))
        measures = support[category][1]
        out.append(Distortion(category, round(p, 4), round(severity, 3), where, frames[category],
                              _explain(category, where, measures), measures))
    return out


def _explain(category: str, where: list[str], measures: list[str]) -> str:
    places = where[0] if len(where) == 1 else ", ".join(where[:-1]) + " and " + where[-1]
    if not measures:
        verb = "look" if len(where) > 1 or where[0] in PLURAL_REGIONS else "looks"  # the forehead looks, the eyes look
        return f"{category}: the evidence is spread thinly; the {places} {verb} slightly unlike clean turntables."
    return f"{category}: {' and '.join(MEASURES[m] for m in measures[:2])}, mostly in the {places}."


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
        when = f" It is in analysed frames {frame_runs(main.frames)}." if 0 < len(main.frames) < len(result.frame_indices) else ""
        text.append(f"Main distortion: {main.explanation} (probability {main.probability:.2f}, severity "
                    f"{main.severity:.2f}).{when}")
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
