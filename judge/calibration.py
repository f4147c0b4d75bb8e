"""From evidence to judgements: the embedded judge's calibration, its features, and how it is fitted.

Written down (the fitted numbers live in ``calibration.json``; ``bench/judge_dataset.py --fit``
refits them on the fitting split of the judge's data set):

1. **Clean baselines.** For every face region and measure, the median and a robust spread over the
   frames of clean turntables: 1.4826 x the median absolute deviation, but at least ``RELATIVE_SPREAD``
   of the median and ``SPREAD_FLOOR`` (faces differ more than the frames of one turntable do). A
   measure then reads as z = (value - median) / spread; for ``blur`` the sign is flipped (less detail
   is worse).
2. **Features** of a clip (or of some of its frames), all "how much worse than clean", so >= 0: per
   measure, the median z over the face's regions (a global change moves them all) and, per region,
   how far that region's z stands above the global one (a local change); the whole person's z; flicker
   of the face's mean brightness, the background's colour cast, face detection misses, landmark jitter
   and the clip-level measures of the trained face models (``CLIP_MEASURES``); and how much a stretch
   of frames is worse than the rest (``temporal_z``).
3. **Categories**: a multinomial logistic regression (softmax over the nine, L2), each category's
   logit reading a few standardised features that mean the same for every category: the face-wide z of each measure,
   the largest local standout of each measure in the category's own regions and elsewhere, and the
   extra measures (so a category learns "what kind of evidence, and where", not one region's
   quirks), fitted on the data set: clean clips are ``No Distortion``, a degraded clip is its family's
   expected category (``bench/judge_dataset.py``). Which categories are *named* also needs their own
   evidence (``judge/categories.py``).
4. **Scores**: ``TARGETS["clean"]`` minus a non-negative combination of the features (non-negative
   least squares with a ridge penalty: evidence of a distortion can only lower a score), fitted to
   targets written down in ``TARGETS``: clean clips score ``clean``; each severity step s (1-5) of a
   distortion takes ``primary`` x s from the score that distortion hurts (quality for technical
   distortions, authenticity for ones that break 3D structure) and ``secondary`` x s from the other; a
   clean image of a face that is not real (a cartoon look) takes ``primary`` x s from authenticity only.
   These targets are a design choice, not human opinion, so clips a person rated (``rated``: the
   turntables of other generators in ``../shared/realworld``) are fitted too, each counting as
   ``RATED_WEIGHT`` benchmark clips, with their ratings as targets; annotators' ratings (the spot-check
   loop) can refit the scores further.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from judge.evidence import MAP_MEASURES, Evidence, region_colours
from judge.result import CATEGORIES, CATEGORY_REGIONS, JUDGE_REGIONS
from judge.track import FaceTrack

CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
TARGETS = {"clean": 80.0, "primary": 11.0, "secondary": 8.0}
# Clip-level measures from trained face models and the silhouette (``RawEvidence.clip_values``), each
# larger when worse: dlib's identity spread across views and its detector's misses, the head model's fit
# error and shape extremity, how little head there is beyond the face, how small the face is, and how
# unevenly the background moves.
CLIP_MEASURES = ("identity_spread", "identity_missed", "shape_error", "shape_extremity", "head_missing", "small_face",
                 "background_motion")
EXTRA_FEATURES = ("flicker_series", "colour_cast", "missed_frames", "landmark_jitter") + CLIP_MEASURES
# Smallest spread of each extra (``EXTRA_FEATURES`` order): clean turntables of one kind agree more
# closely than clean clips in general do.
EXTRA_SPREAD_FLOOR = (1e-4, 1e-4, 1e-4, 1e-4, 0.05, 0.1, 0.5, 0.02, 0.1, 0.25, 0.02)
# Smallest spread per measure (``MAP_MEASURES`` order), in each measure's unit: a difference below it
# is not a distortion even where clean turntables happen to agree exactly (e.g. no clipped pixels).
SPREAD_FLOOR = (0.05, 0.002, 0.003, 0.01, 0.02, 0.01, 0.02, 0.05, 0.05, 0.004)
RELATIVE_SPREAD = 0.2
RATED_WEIGHT = 20.0  # a clip a person rated counts as this many benchmark clips when the scores are fitted


@dataclass(frozen=True)
class RawEvidence:
    """The small part of ``Evidence`` the calibration needs (what the benchmark caches per clip).

    Attributes:
        region_values: [T, R, M] per frame, region and measure (NaN where absent).
        region_colours: [T, R, 2] opponent colour per frame and region.
        person_values: [T, M] per frame and measure over the whole person.
        flicker_series: [T]; colour_cast: [2]; found: [T] bool; landmark_jitter: float.
        clip_values: [len(CLIP_MEASURES)] clip-level measures (``judge.evidence.clip_measures``).
    """

    region_values: np.ndarray
    region_colours: np.ndarray
    person_values: np.ndarray
    flicker_series: np.ndarray
    colour_cast: np.ndarray
    found: np.ndarray
    landmark_jitter: float
    clip_values: np.ndarray

    @classmethod
    def of(cls, evidence: "Evidence", track: "FaceTrack") -> "RawEvidence":
        """The part of a clip's evidence (``gather_evidence``) the calibration reads."""
        return cls(evidence.region_values, region_colours(evidence.maps, track), evidence.person_values,
                   evidence.flicker_series, evidence.colour_cast, track.found, evidence.landmark_jitter,
                   evidence.clip_values)

    def subset(self, frames: np.ndarray) -> "RawEvidence":
        """The evidence of some frames only (indices [K])."""
        return RawEvidence(self.region_values[frames], self.region_colours[frames], self.person_values[frames],
                           self.flicker_series[frames],
                           self.colour_cast, self.found[frames], self.landmark_jitter, self.clip_values)


def feature_names() -> list[str]:
    names = [f"global:{m}" for m in MAP_MEASURES]
    names += [f"local:{r}:{m}" for r in JUDGE_REGIONS for m in MAP_MEASURES]
    names += [f"person:{m}" for m in MAP_MEASURES]
    return names + list(EXTRA_FEATURES) + ["temporal"]


@dataclass(frozen=True)
class Calibration:
    """Fitted numbers (see the module docstring). Arrays are plain lists so the file is JSON.

    Attributes:
        median, spread: [R][M] clean baselines per region and measure (colour: distance units).
        colour_median, colour_spread: [R][2] clean opponent colour per region.
        person_median, person_spread: [M] clean baselines over the whole person.
        extra_median, extra_spread: clean baselines of ``EXTRA_FEATURES``.
        feature_mean, feature_std: [C][K] standardisation of each category's features.
        category_weights: [C][K + 1] logistic weights on each category's features (last = bias).
        quality_weights, authenticity_weights: [S + 1] non-negative points lost per unit of each score
            feature, then a constant.
        fitted_on: what the numbers were fitted on (for people).
    """

    median: list
    spread: list
    colour_median: list
    colour_spread: list
    person_median: list
    person_spread: list
    extra_median: list
    extra_spread: list
    feature_mean: list
    feature_std: list
    category_weights: list
    quality_weights: list
    authenticity_weights: list
    fitted_on: str = ""

    def save(self, path: str | Path = CALIBRATION_PATH) -> None:
        Path(path).write_text(json.dumps(asdict(self)) + "\n")

    @classmethod
    def load(cls, path: str | Path = CALIBRATION_PATH) -> "Calibration":
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as error:
            raise RuntimeError(f"The judge's calibration {path} is missing or unreadable ({error}); "
                               "run `python bench/judge_dataset.py --make --fit` to write it.") from error

    # --- reading evidence ---------------------------------------------------------------------------

    def region_z(self, raw: RawEvidence) -> np.ndarray:
        """[R, M] z-scores of each region and measure over the frames given (NaN where never seen)."""
        with np.errstate(all="ignore"):
            return self._z(_nanmean(raw.region_values, 0), _nanmean(raw.region_colours, 0))

    def _z(self, values: np.ndarray, colours: np.ndarray) -> np.ndarray:
        """[..., R, M] z-scores of region values [..., R, M] and opponent colours [..., R, 2] (blur flipped:
        less detail is worse; colour: the length of the standardised offset)."""
        with np.errstate(all="ignore"):
            z = (values - np.asarray(self.median)) / np.asarray(self.spread)
            z[..., MAP_MEASURES.index("blur")] *= -1.0
            z[..., MAP_MEASURES.index("colour")] = np.linalg.norm(
                (colours - np.asarray(self.colour_median)) / np.asarray(self.colour_spread), axis=-1)
        return z

    def pixel_standout(self, maps: dict[str, np.ndarray], label: np.ndarray, global_z: np.ndarray) -> np.ndarray:
        """[T, H, W] float32: per pixel, how far its most unusual measure stands above the face as a whole:
        max over measures of (z against its region's clean baseline - that measure's face-wide z
        ``global_z`` [M]); -inf outside every region. ``label``: [T, H, W] region index, -1 outside every
        region (``FaceTrack.labels``)."""
        inside = np.flatnonzero(label >= 0)  # only these pixels are computed
        region = label.ravel()[inside]
        median, spread = np.asarray(self.median, np.float32), np.asarray(self.spread, np.float32)
        colour_median, colour_spread = np.asarray(self.colour_median, np.float32), np.asarray(self.colour_spread, np.float32)
        best = np.full(len(inside), -np.inf, np.float32)
        for m, name in enumerate(MAP_MEASURES):
            if name == "colour":
                values = maps[name].reshape(-1, 2)[inside]
                z = np.linalg.norm((values - colour_median[region]) / colour_spread[region], axis=-1)
            else:
                z = (maps[name].ravel()[inside] - median[region, m]) / spread[region, m]
                if name == "blur":
                    z = -z
            np.maximum(best, z - np.float32(global_z[m]), out=best)
        out = np.full(label.size, -np.inf, np.float32)
        out[inside] = best
        return out.reshape(label.shape)

    def features(self, raw: RawEvidence, region_z: np.ndarray | None = None) -> np.ndarray:
        """[F] feature vector (``feature_names`` order); ``region_z``: ``region_z(raw)`` when already at hand."""
        frame_z = self.frame_z(raw)
        person = _nanmean(frame_z, 0)
        region_z = self.region_z(raw) if region_z is None else region_z
        return clip_features(region_z, person, raw, self.extra_median, self.extra_spread, temporal_z(frame_z))

    def frame_region_z(self, raw: RawEvidence) -> np.ndarray:
        """[T, R, M] z-scores of each frame's regions and measures (NaN where a region is absent)."""
        return self._z(raw.region_values, raw.region_colours)

    def frame_z(self, raw: RawEvidence) -> np.ndarray:
        """[T, M] z-scores of each frame's whole-person measures (worse = larger, as for the regions)."""
        with np.errstate(all="ignore"):
            z = (raw.person_values - np.asarray(self.person_median)) / np.asarray(self.person_spread)
        z[:, MAP_MEASURES.index("blur")] *= -1.0
        return z

    def predict(self, features: np.ndarray) -> tuple[float, float, np.ndarray]:
        """(quality MOS, authenticity MOS, category probabilities [C]) of a feature vector."""
        scores = np.append(score_design(features), 1.0)
        quality = float(np.clip(TARGETS["clean"] - scores @ np.asarray(self.quality_weights), 0.0, 100.0))
        authenticity = float(np.clip(TARGETS["clean"] - scores @ np.asarray(self.authenticity_weights), 0.0, 100.0))
        x = (category_design(features) - np.asarray(self.feature_mean)) / np.asarray(self.feature_std)
        logits = np.einsum("ck,ck->c", np.asarray(self.category_weights)[:, :-1], x) + np.asarray(self.category_weights)[:, -1]
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        return quality, authenticity, probabilities


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    count = np.isfinite(x).sum(axis)
    return np.where(count > 0, np.nansum(x, axis) / np.maximum(count, 1), np.nan)


def extra_values(raw: RawEvidence) -> np.ndarray:
    """Raw values of ``EXTRA_FEATURES``."""
    flicker = float(np.median(raw.flicker_series)) if raw.flicker_series.size else 0.0
    return np.concatenate([[flicker, float(np.linalg.norm(raw.colour_cast)), 1.0 - float(raw.found.mean()),
                            raw.landmark_jitter], np.asarray(raw.clip_values, np.float64)])


def temporal_z(frame_z: np.ndarray) -> float:
    """How much a stretch of frames is worse than the rest: over measures, the largest gap between the
    upper quartile and the lowest decile of the per-frame z-scores [T, M] (0 for fewer than 4 frames). A
    distortion of the whole clip moves both and leaves it near 0."""
    z = frame_z[np.isfinite(frame_z).all(1)]
    if len(z) < 4:
        return 0.0
    return float(np.clip((np.quantile(z, 0.75, axis=0) - np.quantile(z, 0.1, axis=0)).max(), 0.0, 30.0))


def clip_features(z: np.ndarray, person_z: np.ndarray, raw: RawEvidence, extra_median, extra_spread,
                  temporal: float = 0.0) -> np.ndarray:
    """[F] features from region z-scores [R, M], whole-person z-scores [M], the extra measures and the
    temporal gap (see the module docstring)."""
    z = np.clip(np.nan_to_num(z, nan=0.0), -10.0, 30.0)
    seen = np.isfinite(raw.region_values).any(0).any(-1)  # [R] regions seen at all
    global_z = np.median(z[seen], axis=0) if seen.any() else np.zeros(z.shape[1])
    local = np.clip(z - np.clip(global_z, 0.0, None), 0.0, None) * seen[:, None]
    extra = (extra_values(raw) - np.asarray(extra_median)) / np.asarray(extra_spread)
    person = np.clip(np.nan_to_num(person_z, nan=0.0), 0.0, 30.0)
    return np.concatenate([np.clip(global_z, 0.0, None), local.reshape(-1), person, np.clip(extra, 0.0, 30.0),
                           [temporal]])


def _split(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(global [..., M], local [..., R, M], person [..., M], extra and temporal [..., E + 1]) parts of
    features [..., F]."""
    m, r = len(MAP_MEASURES), len(JUDGE_REGIONS)
    local_end = m + r * m
    return (features[..., :m], features[..., m:local_end].reshape(*features.shape[:-1], r, m),
            features[..., local_end:local_end + m], features[..., local_end + m:])


def score_design(features: np.ndarray) -> np.ndarray:
    """[..., S] what the scores read: every feature (all >= 0, so non-negative weights can only lower
    a score)."""
    return features


def category_design(features: np.ndarray) -> np.ndarray:
    """[..., C, K] what each category reads: face-wide z, the largest standout per measure in its own
    regions and outside them, extras."""
    global_z, local, person, extra = _split(features)
    rows = []
    for category in CATEGORIES:
        own = [JUDGE_REGIONS.index(r) for r in CATEGORY_REGIONS.get(category, JUDGE_REGIONS)]
        other = [i for i in range(len(JUDGE_REGIONS)) if i not in own] or own
        rows.append(np.concatenate([global_z, local[..., own, :].max(-2), local[..., other, :].max(-2), person, extra],
                                   -1))
    return np.stack(rows, -2)


# --- fitting ----------------------------------------------------------------------------------------

def fit_baselines(clean: list[RawEvidence]) -> dict:
    """Clean medians and robust spreads per region and measure, from clean clips' frames."""
    values = np.concatenate([r.region_values for r in clean])  # [sum T, R, M]
    median = np.nanmedian(values, 0)
    spread = _robust_spread(values, median, np.asarray(SPREAD_FLOOR))
    colours = np.concatenate([r.region_colours for r in clean])
    colour_median = np.nanmedian(colours, 0)
    colour_spread = _robust_spread(colours, colour_median, SPREAD_FLOOR[MAP_MEASURES.index("colour")])
    person = np.concatenate([r.person_values for r in clean])
    person_median = np.nanmedian(person, 0)
    person_spread = _robust_spread(person, person_median, np.asarray(SPREAD_FLOOR))
    extras = np.stack([extra_values(r) for r in clean])
    extra_median = np.median(extras, 0)
    extra_spread = np.maximum(np.maximum(1.4826 * np.median(np.abs(extras - extra_median), 0),
                                         RELATIVE_SPREAD * np.abs(extra_median)), EXTRA_SPREAD_FLOOR)
    fill = lambda a, v: np.where(np.isfinite(a), a, v)  # regions no clean clip showed
    return {"median": fill(median, 0.0), "spread": fill(spread, 1.0), "colour_median": fill(colour_median, 0.0),
            "colour_spread": fill(colour_spread, 1.0), "person_median": person_median, "person_spread": person_spread,
            "extra_median": extra_median, "extra_spread": extra_spread}


def _robust_spread(values: np.ndarray, median: np.ndarray, floor) -> np.ndarray:
    mad = 1.4826 * np.nanmedian(np.abs(values - median), 0)
    return np.maximum(np.maximum(mad, RELATIVE_SPREAD * np.abs(median)), floor)


def fit_calibration(samples: list[tuple[RawEvidence, str, str, int]], fitted_on: str = "", l2: float = 1.0,
                    rated: list[tuple[RawEvidence, float, float]] = (), rated_weight: float = RATED_WEIGHT) -> Calibration:
    """Fit everything from benchmark clips, and the scores also to people's ratings.

    Args:
        samples: (evidence, expected category, what it breaks: "none"/"technical"/"structure"/"style",
            severity 0-5) per clip; severity 0 and "none" for clean clips.
        fitted_on: a description kept in the file.
        l2: ridge / logistic penalty on standardised features.
        rated: (evidence, quality MOS, authenticity MOS) of clips a person rated: the scores are fitted to
            their ratings as well as to the written-down targets of ``samples``.
        rated_weight: how many benchmark clips one rated clip counts as.
    """
    clean = [raw for raw, _, breaks, _ in samples if breaks == "none"]
    if not clean:
        raise ValueError("Fitting needs clean clips (breaks='none') for the baselines.")
    base = fit_baselines(clean)
    partial = Calibration(**{k: np.asarray(v).tolist() for k, v in base.items()}, feature_mean=[], feature_std=[],
                          category_weights=[], quality_weights=[], authenticity_weights=[])
    x = np.stack([partial.features(raw) for raw, *_ in samples])
    per_category = category_design(x)  # [N, C, K]
    # Features are z-scores; a floor on their spread keeps one that never moved in the ladders from
    # turning tiny differences into huge standardised values.
    mean, std = per_category.mean(0), np.maximum(per_category.std(0), 0.25)
    labels = np.array([CATEGORIES.index(c) for _, c, _, _ in samples])
    weights = _softmax_regression((per_category - mean) / std, labels, l2)
    quality, authenticity = score_targets([(b, s) for _, _, b, s in samples])
    categories = dataclasses.replace(partial, feature_mean=mean.tolist(), feature_std=std.tolist(),
                                     category_weights=weights.tolist(), fitted_on=fitted_on)
    if rated:
        x = np.concatenate([x, np.stack([partial.features(raw) for raw, _, _ in rated])])
        quality = np.concatenate([quality, [q for _, q, _ in rated]])
        authenticity = np.concatenate([authenticity, [a for _, _, a in rated]])
    weight = np.concatenate([np.ones(len(samples)), np.full(len(rated), float(rated_weight))])
    return fit_scores(categories, x, quality, authenticity, weight, l2)


def fit_scores(calibration: Calibration, x: np.ndarray, quality: np.ndarray, authenticity: np.ndarray,
               weight: np.ndarray, l2: float) -> Calibration:
    """``calibration`` with its score weights fitted to the targets [N] of features ``x`` [N, F] (each row
    weighing ``weight`` [N]): non-negative ridge least squares, so evidence can only lower a score."""
    root = np.sqrt(np.asarray(weight, np.float64))[:, None]
    design = score_design(x) * root
    fit = lambda target: _nonnegative_ridge(design, (TARGETS["clean"] - target) * root[:, 0], l2, root[:, 0])
    return dataclasses.replace(calibration, quality_weights=fit(quality).tolist(),
                               authenticity_weights=fit(authenticity).tolist())


def score_targets(breaks_and_severity: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Quality and authenticity targets [N] per ``TARGETS``."""
    quality, authenticity = [], []
    for breaks, severity in breaks_and_severity:
        hurt = {"none": (0.0, 0.0), "technical": (TARGETS["primary"], TARGETS["secondary"]),
                "structure": (TARGETS["secondary"], TARGETS["primary"]), "style": (0.0, TARGETS["primary"])}[breaks]
        quality.append(TARGETS["clean"] - hurt[0] * severity)
        authenticity.append(TARGETS["clean"] - hurt[1] * severity)
    return np.array(quality), np.array(authenticity)


def _nonnegative_ridge(x: np.ndarray, y: np.ndarray, l2: float, ones: np.ndarray | None = None) -> np.ndarray:
    """argmin ||x w + b ones - y||^2 + l2 ||w||^2 subject to w >= 0, b free (NNLS on the ridge-augmented
    system, b as the difference of two non-negative columns; ``ones`` [N], default all 1, carries the
    rows' weights when x and y were scaled by them). Returns [F + 1]: w, then b."""
    from scipy.optimize import nnls

    n, f = x.shape
    ones = np.ones(n) if ones is None else np.asarray(ones, np.float64)
    design = np.hstack([x, ones[:, None], -ones[:, None]])
    penalty = np.hstack([np.sqrt(l2) * np.eye(f), np.zeros((f, 2))])
    solution = nnls(np.vstack([design, penalty]), np.concatenate([y, np.zeros(f)]), maxiter=50 * (f + 2))[0]
    return np.append(solution[:f], solution[f] - solution[f + 1])


def _softmax_regression(x: np.ndarray, labels: np.ndarray, l2: float) -> np.ndarray:
    """Multinomial logistic regression where class c's logit is w_c . x[:, c] + b_c, classes balanced.

    Args:
        x: [N, C, K] per-class features; labels: [N] class indices; l2: penalty on w (not b).

    Returns:
        [C, K + 1] weights, bias last.
    """
    from scipy.optimize import minimize

    n, c, k = x.shape
    onehot = np.eye(c)[labels]
    counts = np.maximum(onehot.sum(0), 1.0)
    balance = (n / (c * counts))[labels]  # each class weighs as much in total (few clean clips, many degraded)

    def loss(flat):
        w = flat.reshape(c, k + 1)
        logits = np.einsum("nck,ck->nc", x, w[:, :-1]) + w[:, -1]
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        value = -(balance * np.log(np.clip((p * onehot).sum(1), 1e-12, None))).sum() + 0.5 * l2 * (w[:, :-1] ** 2).sum()
        residual = (p - onehot) * balance[:, None]  # [N, C]
        grad = np.concatenate([np.einsum("nc,nck->ck", residual, x) + l2 * w[:, :-1], residual.sum(0)[:, None]], 1)
        return value, grad.reshape(-1)

    return minimize(loss, np.zeros(c * (k + 1)), jac=True, method="L-BFGS-B", options={"maxiter": 500}).x.reshape(c, k + 1)
