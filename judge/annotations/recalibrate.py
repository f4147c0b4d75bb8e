"""Refit the judge's scores to annotators' ratings: a monotone map, checked by cross-validation, saved
as a new versioned file (the shipped calibration is never overwritten).

Each dimension's score becomes f(judge's score of that dimension) + g(judge's score of the other):
f non-decreasing, g monotone in whichever direction fits (isotonic regressions, fitted by backfitting).
A monotone map of one score cannot change its ranking; the second term lets a judge whose dimensions
bleed into each other be corrected.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from judge.annotations.agreement import DIMENSIONS, correlations

SCORE_MAP_DIR = Path("data") / "calibrations"


def isotonic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-decreasing least-squares fit of y on x (pool adjacent violators); returns (knots, values)
    to interpolate, sorted by x, ties merged."""
    order = np.argsort(x, kind="mergesort")
    xs, ys = np.asarray(x, np.float64)[order], np.asarray(y, np.float64)[order]
    knots, inverse = np.unique(xs, return_inverse=True)
    sums, counts = np.bincount(inverse, ys), np.bincount(inverse).astype(np.float64)
    blocks = [[s, c, 1] for s, c in zip(sums, counts)]  # [sum, weight, knots in block]
    merged: list[list[float]] = []
    for block in blocks:
        merged.append(block)
        while len(merged) > 1 and merged[-2][0] / merged[-2][1] > merged[-1][0] / merged[-1][1]:
            s, c, k = merged.pop()
            merged[-1] = [merged[-1][0] + s, merged[-1][1] + c, merged[-1][2] + k]
    values = np.concatenate([np.full(int(k), s / c) for s, c, k in merged])
    return knots, values


@dataclass(frozen=True)
class MonotoneMap:
    """score = f(quality) + g(authenticity), f and g given by their knots and values."""

    quality_knots: list
    quality_values: list
    authenticity_knots: list
    authenticity_values: list

    def __call__(self, quality: np.ndarray, authenticity: np.ndarray) -> np.ndarray:
        f = np.interp(quality, self.quality_knots, self.quality_values)
        g = np.interp(authenticity, self.authenticity_knots, self.authenticity_values)
        return np.clip(f + g, 0.0, 100.0)


def monotone(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The better (least squares) of a non-decreasing and a non-increasing fit of y on x."""
    up = isotonic(x, y)
    knots, down = isotonic(x, -y)
    fits = [up, (knots, -down)]
    errors = [np.sum((np.interp(x, k, v) - y) ** 2) for k, v in fits]
    return fits[int(np.argmin(errors))]


def fit_monotone(quality: np.ndarray, authenticity: np.ndarray, target: np.ndarray, main: str = "quality",
                 rounds: int = 20) -> MonotoneMap:
    """Additive monotone regression of ``target`` on the judge's two scores by backfitting: the
    ``main`` score's term non-decreasing, the other's monotone either way."""
    quality, authenticity, target = (np.asarray(v, np.float64) for v in (quality, authenticity, target))
    first, second = (quality, authenticity) if main == "quality" else (authenticity, quality)
    g = np.zeros_like(target)
    for _ in range(rounds):
        fk, fv = isotonic(first, target - g)
        f = np.interp(first, fk, fv)
        gk, gv = monotone(second, target - f)
        gv = gv - gv.mean()  # keep the constant in f
        g = np.interp(second, gk, gv)
    if main == "quality":
        return MonotoneMap(fk.tolist(), fv.tolist(), gk.tolist(), gv.tolist())
    return MonotoneMap(gk.tolist(), gv.tolist(), fk.tolist(), fv.tolist())


@dataclass(frozen=True)
class CrossValidation:
    """Held-out (SRCC, PLCC) of the judge as it is and after the refit, k-fold over items."""

    folds: int
    before: tuple[float, float]
    after: tuple[float, float]


def cross_validate(quality: np.ndarray, authenticity: np.ndarray, target: np.ndarray, judge_score: np.ndarray,
                   folds: int = 5, seed: int = 0, main: str = "quality") -> CrossValidation:
    """Fit on k-1 folds, predict the held-out fold; correlations over all held-out predictions."""
    n = len(target)
    if n < 2 * folds:
        raise ValueError(f"Cross-validation with {folds} folds needs at least {2 * folds} rated items. Got {n}.")
    order = np.random.default_rng(seed).permutation(n)
    predicted = np.empty(n)
    for k in range(folds):
        held = order[k::folds]
        train = np.setdiff1d(order, held)
        mapping = fit_monotone(quality[train], authenticity[train], target[train], main)
        predicted[held] = mapping(quality[held], authenticity[held])
    before, after = correlations(judge_score, target), correlations(predicted, target)
    return CrossValidation(folds, (before[0], before[1]), (after[0], after[1]))


def recalibrate(judge_scores: dict[str, np.ndarray], people: dict[str, np.ndarray], folds: int = 5,
                out_dir: str | Path = SCORE_MAP_DIR) -> tuple[Path, dict[str, CrossValidation]]:
    """Fit both dimensions, cross-validate, and save ``score-map-v{N}.json`` (N one above the newest
    there). ``judge_scores`` and ``people``: dimension -> [n] scores of the same items."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    maps, checks = {}, {}
    for dim in DIMENSIONS:
        checks[dim] = cross_validate(judge_scores["quality"], judge_scores["authenticity"], people[dim],
                                     judge_scores[dim], folds, main=dim)
        maps[dim] = asdict(fit_monotone(judge_scores["quality"], judge_scores["authenticity"], people[dim], dim))
    versions = [int(p.stem.rsplit("-v", 1)[1]) for p in out_dir.glob("score-map-v*.json") if p.stem.rsplit("-v", 1)[1].isdigit()]
    path = out_dir / f"score-map-v{max(versions, default=0) + 1}.json"
    path.write_text(json.dumps({"version": max(versions, default=0) + 1, "created": time.time(),
                                "items": len(people["quality"]), "maps": maps,
                                "cross_validation": {d: asdict(c) for d, c in checks.items()}}, indent=1))
    return path, checks


def load_score_map(path: str | Path) -> dict[str, MonotoneMap]:
    """A saved refit: dimension -> map of the judge's (quality, authenticity)."""
    data = json.loads(Path(path).read_text())
    return {dim: MonotoneMap(**data["maps"][dim]) for dim in DIMENSIONS}
