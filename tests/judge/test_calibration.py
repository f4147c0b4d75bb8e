"""Fitting the judge's calibration: the regressions, the targets, and reading the stored file."""

from __future__ import annotations

import numpy as np
import pytest

from judge.calibration import (CALIBRATION_PATH, CLIP_MEASURES, TARGETS, Calibration, RawEvidence, _nonnegative_ridge, _softmax_regression,
                               category_design, feature_names, fit_calibration, score_targets)
from judge.evidence import MAP_MEASURES
from judge.result import CATEGORIES, JUDGE_REGIONS


def test_nonnegative_ridge_recovers_nonnegative_weights_and_never_goes_below_zero():
    rng = np.random.default_rng(0)
    x = rng.random((60, 4))
    w = np.array([1.0, 0.0, 0.5, 3.0])
    assert np.allclose(_nonnegative_ridge(x, x @ w - 5.0, 1e-9), np.append(w, -5.0), atol=1e-6)  # free constant
    fitted = _nonnegative_ridge(x, x @ np.array([1.0, -2.0, 0.5, 3.0]), 1e-9)
    assert (fitted[:4] >= 0).all() and fitted[1] == 0.0


def test_softmax_regression_learns_which_class_each_point_belongs_to():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 40)
    centres = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    points = centres[labels] + rng.normal(size=(120, 2))
    x = np.repeat(points[:, None, :], 3, axis=1)  # every class reads the same two features here
    w = _softmax_regression(x, labels, 0.1)
    logits = np.einsum("nck,ck->nc", x, w[:, :-1]) + w[:, -1]
    assert (logits.argmax(1) == labels).mean() > 0.9


def test_score_targets_follow_the_written_rule():
    q, a = score_targets([("none", 0), ("technical", 2), ("structure", 5)])
    clean, primary, secondary = TARGETS["clean"], TARGETS["primary"], TARGETS["secondary"]
    assert np.allclose(q, [clean, clean - 2 * primary, clean - 5 * secondary])
    assert np.allclose(a, [clean, clean - 2 * secondary, clean - 5 * primary])


def _raw(rng, noisy_region: str | None = None, amount: float = 0.0) -> RawEvidence:
    t, r, m = 6, len(JUDGE_REGIONS), len(MAP_MEASURES)
    values = 1.0 + 0.05 * rng.normal(size=(t, r, m))
    if noisy_region:
        values[:, JUDGE_REGIONS.index(noisy_region), MAP_MEASURES.index("noise")] += amount
    return RawEvidence(values.astype(np.float32), 0.01 * rng.normal(size=(t, r, 2)).astype(np.float32),
                       values.mean(1).astype(np.float32), np.zeros(t, np.float32), np.zeros(2, np.float32), np.ones(t, bool), 0.0,
                       np.zeros(len(CLIP_MEASURES), np.float32))


def test_a_fitted_calibration_finds_a_local_distortion_and_scores_it_lower(tmp_path):
    rng = np.random.default_rng(2)
    samples = [(_raw(rng), "No Distortion", "none", 0) for _ in range(60)]
    for region, category in (("mouth", "Mouth"), ("hair", "Hair")):
        samples += [(_raw(rng, region, 0.3 * s), category, "technical", s) for s in (1, 2, 3, 4, 5) for _ in range(12)]
    cal = fit_calibration(samples, fitted_on="test")
    assert len(cal.category_weights) == len(CATEGORIES) and len(cal.feature_mean) == len(CATEGORIES)
    assert len(cal.features(_raw(rng))) == len(feature_names())
    real = [CATEGORIES.index(c) for c in CATEGORIES if c != "No Distortion"]
    clean = [cal.predict(cal.features(_raw(rng))) for _ in range(20)]
    q_mouth, a_mouth, p_mouth = cal.predict(cal.features(_raw(rng, "mouth", 1.2)))
    assert sum(p[real].max() >= 0.5 for _, _, p in clean) <= 2  # nothing found on (nearly) all clean clips
    assert CATEGORIES[int(np.argmax(p_mouth))] == "Mouth" and p_mouth.max() > 0.5
    q_clean = np.mean([q for q, _, _ in clean])
    assert q_mouth < q_clean - 20 and a_mouth > q_mouth
    cal.save(tmp_path / "c.json")
    assert Calibration.load(tmp_path / "c.json") == cal


def test_fitting_needs_clean_clips():
    with pytest.raises(ValueError, match="clean clips"):
        fit_calibration([(_raw(np.random.default_rng(3), "mouth", 1.0), "Mouth", "technical", 3)])


def test_a_missing_calibration_says_how_to_make_one(tmp_path):
    with pytest.raises(RuntimeError, match=r"judge_dataset.py --make --fit"):
        Calibration.load(tmp_path / "missing.json")


def test_the_shipped_calibration_matches_the_features():
    cal = Calibration.load(CALIBRATION_PATH)
    assert np.asarray(cal.category_weights).shape[0] == len(CATEGORIES)
    assert np.asarray(cal.median).shape == (len(JUDGE_REGIONS), len(MAP_MEASURES))
    assert "judge_dataset" in cal.fitted_on
    assert len(cal.quality_weights) == len(cal.authenticity_weights) == len(feature_names()) + 1
    assert np.asarray(cal.feature_mean).shape == category_design(np.zeros(len(feature_names()))).shape


def test_pixel_standout_reads_each_pixel_against_its_regions_baseline():
    rng = np.random.default_rng(4)
    cal = fit_calibration([(_raw(rng), "No Distortion", "none", 0) for _ in range(4)] +
                          [(_raw(rng, "mouth", 1.0), "Mouth", "technical", 3) for _ in range(4)], fitted_on="test")
    t, h, w = 2, 5, 6
    label = rng.integers(-1, len(JUDGE_REGIONS), (t, h, w)).astype(np.int8)
    maps = {m: rng.normal(1.0, 0.2, (t, h, w)).astype(np.float32) for m in MAP_MEASURES}
    maps["colour"] = rng.normal(0.0, 0.1, (t, h, w, 2)).astype(np.float32)
    global_z = rng.normal(0.0, 1.0, len(MAP_MEASURES))
    standout = cal.pixel_standout(maps, label, global_z)
    assert standout.shape == (t, h, w) and standout.dtype == np.float32 and np.isneginf(standout[label < 0]).all()
    median, spread = np.asarray(cal.median), np.asarray(cal.spread)
    colour_median, colour_spread = np.asarray(cal.colour_median), np.asarray(cal.colour_spread)
    for i in map(tuple, np.argwhere(label >= 0)[:5]):
        r = label[i]
        z = [(-1 if name == "blur" else 1) * (maps[name][i] - median[r, m]) / spread[r, m] for m, name in enumerate(MAP_MEASURES)]
        z[MAP_MEASURES.index("colour")] = np.linalg.norm((maps["colour"][i] - colour_median[r]) / colour_spread[r])
        assert standout[i] == pytest.approx(max(np.array(z) - global_z), rel=1e-4)


def test_rated_clips_pull_the_scores_towards_their_ratings():
    rng = np.random.default_rng(6)
    samples = [(_raw(rng), "No Distortion", "none", 0) for _ in range(30)]
    samples += [(_raw(rng, "mouth", 0.3 * s), "Mouth", "technical", s) for s in (1, 2, 3, 4, 5) for _ in range(6)]
    odd = _raw(rng, "hair", 0.6)  # evidence the benchmark clips never show
    without = fit_calibration(samples, fitted_on="test")
    rated = fit_calibration(samples, fitted_on="test", rated=[(_raw(rng, "hair", 0.6), 35.0, 60.0) for _ in range(3)])
    q0, a0, _ = without.predict(without.features(odd))
    q1, a1, _ = rated.predict(rated.features(odd))
    assert q1 < q0 - 10 and abs(q1 - 35.0) < abs(q0 - 35.0) and abs(a1 - 60.0) <= abs(a0 - 60.0) + 1.0
    assert rated.category_weights == without.category_weights  # ratings fit the scores, not the categories
