"""From evidence to judgements: the embedded judge's calibration, its features, and how it is fitted.

Written down (the fitted numbers live in ``calibration.json``; ``bench/judge_ladders.py --fit``
refits them):

1. **Clean baselines.** For every face region and measure, the median and a robust spread over the
   frames of clean turntables: 1.4826 x the median absolute deviation, but at least ``RELATIVE_SPREAD``
   of the median and ``SPREAD_FLOOR`` (faces differ more than the frames of one turntable do). A
   measure then reads as z = (value - median) / spread; for ``blur`` the sign is flipped (less detail
   is worse).
2. **Features** of a clip (or of some of its frames), all "how much worse than clean", so >= 0: per
   measure, the median z over the face's regions (a global change moves them all) and, per region,
   how far that region's z stands above the global one (a local change); plus flicker of the face's
   mean brightness, the background's colour cast, face detection misses and landmark jitter.
3. **Categories**: a multinomial logistic regression (softmax over the nine, L2), each category's
   logit reading a few standardised features that mean the same for every category: the face-wide z of each measure,
   the largest local standout of each measure in the category's own regions and elsewhere, and the
   extra measures (so a category learns "what kind of evidence, and where", not one region's
   quirks), fitted on the benchmark ladders: clean clips are ``No Distortion``, a degraded clip is its
   family's expected category (``bench/degrade.py``'s ``expected_category``).
4. **Scores**: ``TARGETS["clean"]`` minus a non-negative combination of the features (non-negative
   least squares with a ridge penalty: evidence of a distortion can only lower a score), fitted to
   targets written down in ``TARGETS``: clean clips score ``clean``; each severity step s (1-5) of a
   distortion takes ``primary`` x s from the score that distortion hurts (quality for technical
   distortions, authenticity for ones that break 3D structure) and ``secondary`` x s from the other.
   These targets are a design choice, not human opinion; annotators' ratings (the spot-check loop) can
   replace them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from judge.evidence import MAP_MEASURES, Evidence, region_colours
from judge.result import CATEGORIES, CATEGORY_REGIONS, JUDGE_REGIONS
from judge.track import FaceTrack

CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
TARGETS = {"clean": 80.0, "primary": 11.0, "secondary": 8.0}
EXTRA_FEATURES = ("flicker_series", "colour_cast", "missed_frames", "landmark_jitter")
# Smallest spread per measure (``MAP_MEASURES`` order), in each measure's unit: a difference below it
# is not a distortion even where clean turntables happen to agree exactly (e.g. no clipped pixels).
SPREAD_FLOOR = (0.05, 0.002, 0.003, 0.01, 0.02, 0.01, 0.02, 0.05, 0.05, 0.004)
RELATIVE_SPREAD = 0.2


@dataclass(frozen=True)
class RawEvidence:
    """The small part of ``Evidence`` the calibration needs (what the benchmark caches per clip).

    Attributes:
        region_values: [T, R, M] per frame, region and measure (NaN where absent).
        region_colours: [T, R, 2] opponent colour per frame and region.
        person_values: [T, M] per frame and measure over the whole person.
        flicker_series: [T]; colour_cast: [2]; found: [T] bool; landmark_jitter: float.
    """

    region_values: np.ndarray
    region_colours: np.ndarray
    person_values: np.ndarray
    flicker_series: np.ndarray
    colour_cast: np.ndarray
    found: np.ndarray
    landmark_jitter: float

    @classmethod
    def of(cls, evidence: "Evidence", track: "FaceTrack") -> "RawEvidence":
        """The part of a clip's evidence (``gather_evidence``) the calibration reads."""
        return cls(evidence.region_values, region_colours(evidence.maps, track), evidence.person_values,
                   evidence.flicker_series, evidence.colour_cast, track.found, evidence.landmark_jitter)

    def subset(self, frames: np.ndarray) -> "RawEvidence":
        """The evidence of some frames only (indices [K])."""
        return RawEvidence(self.region_values[frames], self.region_colours[frames], self.person_values[frames],
                           self.flicker_series[frames],
                           self.colour_cast, self.found[frames], self.landmark_jitter)


def feature_names() -> list[str]:
    names = [f"global:{m}" for m in MAP_MEASURES]
    names += [f"local:{r}:{m}" for r in JUDGE_REGIONS for m in MAP_MEASURES]
    names += [f"person:{m}" for m in MAP_MEASURES]
    return names + list(EXTRA_FEATURES)


@dataclass(frozen=True)
class Calibration:
    """Fitted numbers (see the module docstring). Arrays are plain lists so the file is JSON.

    Attributes:
        median, spread: [R][M] clean baselines per region and measure (colour: distance units).
        colour_median, colour_spread: [R][2] clean opponent colour per region.
        person_median, person_spread: [M] clean baselines over the whole person.
        extra_median, extra_spread: [4] clean baselines of ``EXTRA_FEATURES``.
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
                               "run `python bench/judge_ladders.py --fit` to write it.") from error

    # --- reading evidence ---------------------------------------------------------------------------

    def region_z(self, raw: RawEvidence) -> np.ndarray:
        """[R, M] z-scores of each region and measure over the frames given (NaN where never seen)."""
        with np.errstate(all="ignore"):
            values = _nanmean(raw.region_values, 0)
            z = (values - np.asarray(self.median)) / np.asarray(self.spread)
            z[:, MAP_MEASURES.index("blur")] *= -1.0
            colour = _nanmean(raw.region_colours, 0)
            z[:, MAP_MEASURES.index("colour")] = np.linalg.norm(
                (colour - np.asarray(self.colour_median)) / np.asarray(self.colour_spread), axis=-1)
        return z

    def pixel_z(self, maps: dict[str, np.ndarray], regions: np.ndarray) -> dict[str, np.ndarray]:
        """Per-pixel z-scores [T, H, W] of each measure against its region's clean baseline (0 outside
        every region). ``regions``: [T, R, H, W] bool."""
        label = np.where(regions.any(1), regions.argmax(1), -1)
        inside = label >= 0
        median, spread = np.asarray(self.median), np.asarray(self.spread)
        out = {}
        for m, name in enumerate(MAP_MEASURES):
            if name == "colour":
                offset = (maps[name] - np.asarray(self.colour_median)[label]) / np.asarray(self.colour_spread)[label]
                z = np.linalg.norm(offset, axis=-1)
            else:
                z = (maps[name] - median[label, m]) / spread[label, m]
                if name == "blur":
                    z = -z
            out[name] = np.where(inside, z, 0.0).astype(np.float32)
        return out

    def features(self, raw: RawEvidence, region_z: np.ndarray | None = None) -> np.ndarray:
        """[F] feature vector (``feature_names`` order); ``region_z``: ``region_z(raw)`` when already at hand."""
        with np.errstate(all="ignore"):
            person = (_nanmean(raw.person_values, 0) - np.asarray(self.person_median)) / np.asarray(self.person_spread)
        person[MAP_MEASURES.index("blur")] *= -1.0
        region_z = self.region_z(raw) if region_z is None else region_z
        return clip_features(region_z, person, raw, self.extra_median, self.extra_spread)

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
    """[4] raw values of ``EXTRA_FEATURES``."""
    flicker = float(np.median(raw.flicker_series)) if raw.flicker_series.size else 0.0
    return np.array([flicker, float(np.linalg.norm(raw.colour_cast)), 1.0 - float(raw.found.mean()),
                     raw.landmark_jitter])


def clip_features(z: np.ndarray, person_z: np.ndarray, raw: RawEvidence, extra_median, extra_spread) -> np.ndarray:
    """[F] features from region z-scores [R, M], whole-person z-scores [M] and the extra measures (see
    the module docstring)."""
    z = np.clip(np.nan_to_num(z, nan=0.0), -10.0, 30.0)
    seen = np.isfinite(raw.region_values).any(0).any(-1)  # [R] regions seen at all
    global_z = np.median(z[seen], axis=0) if seen.any() else np.zeros(z.shape[1])
    local = np.clip(z - np.clip(global_z, 0.0, None), 0.0, None) * seen[:, None]
    extra = (extra_values(raw) - np.asarray(extra_median)) / np.asarray(extra_spread)
    person = np.clip(np.nan_to_num(person_z, nan=0.0), 0.0, 30.0)
    return np.concatenate([np.clip(global_z, 0.0, None), local.reshape(-1), person, np.clip(extra, 0.0, 30.0)])


def _split(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(global [..., M], local [..., R, M], person [..., M], extra [..., 4]) parts of features [..., F]."""
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
    extra_spread = np.maximum(1.4826 * np.median(np.abs(extras - extra_median), 0),
                              RELATIVE_SPREAD * np.abs(extra_median) + 1e-4)
    fill = lambda a, v: np.where(np.isfinite(a), a, v)  # regions no clean clip showed
    return {"median": fill(median, 0.0), "spread": fill(spread, 1.0), "colour_median": fill(colour_median, 0.0),
            "colour_spread": fill(colour_spread, 1.0), "person_median": person_median, "person_spread": person_spread,
            "extra_median": extra_median, "extra_spread": extra_spread}


def _robust_spread(values: np.ndarray, median: np.ndarray, floor) -> np.ndarray:
    mad = 1.4826 * np.nanmedian(np.abs(values - median), 0)
    return np.maximum(np.maximum(mad, RELATIVE_SPREAD * np.abs(median)), floor)


def fit_calibration(samples: list[tuple[RawEvidence, str, str, int]], fitted_on: str = "",
                    l2: float = 1.0) -> Calibration:
    """Fit everything from benchmark clips.

    Args:
        samples: (evidence, expected category, what it breaks: "none"/"technical"/"structure", severity
            0-5) per clip; severity 0 and "none" for clean clips.
        fitted_on: a description kept in the file.
        l2: ridge / logistic penalty on standardised features.
    """
    clean = [raw for raw, _, breaks, _ in samples if breaks == "none"]
    if not clean:
        raise ValueError("Fitting needs clean clips (breaks='none') for the baselines.")
    base = fit_baselines(clean)
    extra_median, extra_spread = base["extra_median"], base["extra_spread"]
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
    scores = score_design(x)
    return Calibration(**{k: np.asarray(v).tolist() for k, v in base.items()}, feature_mean=mean.tolist(),
                       feature_std=std.tolist(), category_weights=weights.tolist(),
                       quality_weights=_nonnegative_ridge(scores, TARGETS["clean"] - quality, l2).tolist(),
                       authenticity_weights=_nonnegative_ridge(scores, TARGETS["clean"] - authenticity, l2).tolist(),
                       fitted_on=fitted_on)


def score_targets(breaks_and_severity: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Quality and authenticity targets [N] per ``TARGETS``."""
    quality, authenticity = [], []
    for breaks, severity in breaks_and_severity:
        hurt = {"none": (0.0, 0.0), "technical": (TARGETS["primary"], TARGETS["secondary"]),
                "structure": (TARGETS["secondary"], TARGETS["primary"])}[breaks]
        quality.append(TARGETS["clean"] - hurt[0] * severity)
        authenticity.append(TARGETS["clean"] - hurt[1] * severity)
    return np.array(quality), np.array(authenticity)


def _nonnegative_ridge(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """argmin ||x w + b - y||^2 + l2 ||w||^2 subject to w >= 0, b free (NNLS on the ridge-augmented
    system, b as the difference of two non-negative columns). Returns [F + 1]: w, then b."""
    from scipy.optimize import nnls

    n, f = x.shape
    design = np.hstack([x, np.ones((n, 1)), -np.ones((n, 1))])
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
