"""How far the judge agrees with people: rank and linear correlations with bootstrap intervals, agreement
between annotators, per-category precision and recall, and heatmap agreement with annotators' clicks."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.stats import kendalltau, pearsonr, spearmanr

from judge.result import CATEGORIES, NO_DISTORTION

CLICK_SIGMA_PX = 5.0  # annotators' clicks are blurred like the published benchmark's ground truth
DIMENSIONS = ("quality", "authenticity")


@dataclass(frozen=True)
class Correlation:
    """Judge MOS against mean annotator MOS over ``n`` items, with bootstrap 95% intervals."""

    n: int
    srcc: float
    plcc: float
    krcc: float
    srcc_ci: tuple[float, float]
    plcc_ci: tuple[float, float]
    krcc_ci: tuple[float, float]


def correlations(judge: np.ndarray, people: np.ndarray) -> tuple[float, float, float]:
    """(SRCC, PLCC, KRCC) of two score lists (scipy's definitions)."""
    return (float(spearmanr(judge, people).statistic), float(pearsonr(judge, people).statistic),
            float(kendalltau(judge, people).statistic))


def correlate(judge: np.ndarray, people: np.ndarray, resamples: int = 1000, seed: int = 0) -> Correlation:
    """Correlations and percentile bootstrap 95% intervals (items resampled with replacement)."""
    judge, people = np.asarray(judge, np.float64), np.asarray(people, np.float64)
    if len(judge) != len(people) or len(judge) < 3:
        raise ValueError(f"Need at least 3 items rated by both the judge and people. Got {len(judge)} and {len(people)}.")
    point = correlations(judge, people)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(resamples):
        pick = rng.integers(0, len(judge), len(judge))
        if np.ptp(judge[pick]) == 0 or np.ptp(people[pick]) == 0:
            continue
        samples.append(correlations(judge[pick], people[pick]))
    samples = np.array(samples)
    interval = lambda k: tuple(float(v) for v in np.percentile(samples[:, k], [2.5, 97.5])) if len(samples) else (np.nan, np.nan)
    return Correlation(len(judge), *point, interval(0), interval(1), interval(2))


def inter_annotator(scores: dict[str, dict[str, float]]) -> float:
    """Mean Spearman correlation over pairs of annotators on the items both rated (pairs sharing at
    least 3 items); NaN when no pair does. ``scores``: annotator -> item -> score."""
    values = []
    for a, b in combinations(sorted(scores), 2):
        shared = sorted(set(scores[a]) & set(scores[b]))
        if len(shared) >= 3:
            x, y = [scores[a][i] for i in shared], [scores[b][i] for i in shared]
            if np.ptp(x) > 0 and np.ptp(y) > 0:
                values.append(spearmanr(x, y).statistic)
    return float(np.mean(values)) if values else float("nan")


def category_precision_recall(judge_found: dict[str, set[str]], people_found: dict[str, set[str]]
                              ) -> dict[str, tuple[float, float, int]]:
    """Per category (precision, recall, items people marked it on) of the judge's categories against the
    annotators' majority per item. Both dicts: item -> categories."""
    out = {}
    for category in CATEGORIES:
        if category == NO_DISTORTION:
            continue
        true_positive = sum(category in judge_found[i] and category in people_found[i] for i in people_found)
        predicted = sum(category in judge_found[i] for i in people_found)
        actual = sum(category in people_found[i] for i in people_found)
        out[category] = (true_positive / predicted if predicted else float("nan"),
                         true_positive / actual if actual else float("nan"), actual)
    return out


def click_map(clicks: list[list[float]], shape: tuple[int, int], sigma: float = CLICK_SIGMA_PX) -> np.ndarray:
    """[H, W] annotators' clicks as a map: an impulse per click, blurred by a Gaussian of ``sigma`` px."""
    out = np.zeros(shape, np.float64)
    for x, y in clicks:
        col, row = int(round(x)), int(round(y))
        if 0 <= row < shape[0] and 0 <= col < shape[1]:
            out[row, col] += 1.0
    return gaussian_filter(out, sigma)


def heatmap_agreement(judge_map: np.ndarray, clicks: list[list[float]]) -> tuple[float, float]:
    """(NSS, CC) of the judge's map against clicks: NSS = mean of the z-scored judge map at the clicked
    pixels; CC = Pearson correlation with the blurred click map. NaN without clicks."""
    points = [(int(round(y)), int(round(x))) for x, y in clicks
              if 0 <= round(y) < judge_map.shape[0] and 0 <= round(x) < judge_map.shape[1]]
    if not points or judge_map.std() == 0:
        return float("nan"), float("nan")
    z = (judge_map - judge_map.mean()) / judge_map.std()
    nss = float(np.mean([z[r, c] for r, c in points]))
    target = click_map(clicks, judge_map.shape)
    cc = float(pearsonr(judge_map.ravel(), target.ravel()).statistic) if target.std() > 0 else float("nan")
    return nss, cc
