"""judge.categories: a category is named only on its own evidence; distortions are placed in time."""

from __future__ import annotations

import numpy as np
import pytest

from judge.calibration import feature_names
from judge.categories import (EVIDENT, EVIDENT_Z, EVIDENCE, category_evidence, clip_measures, distortion_frames, frame_strength,
                              named_categories, squash, top_category)
from judge.evidence import MAP_MEASURES
from judge.result import CATEGORIES, JUDGE_REGIONS, MEASURES, NO_DISTORTION


def features(**z: float) -> np.ndarray:
    """A feature vector of zeros but the named features (``feature_names`` with ':' as '__')."""
    names = feature_names()
    out = np.zeros(len(names))
    for name, value in z.items():
        out[names.index(name.replace("__", ":"))] = value
    return out


def probabilities(first: str, second: str = NO_DISTORTION) -> np.ndarray:
    p = np.full(len(CATEGORIES), 0.01)
    p[CATEGORIES.index(first)], p[CATEGORIES.index(second)] = 0.6, 0.3
    return p / p.sum()


def test_squash_is_zero_up_to_the_evidence_threshold_and_rises_towards_one():
    assert squash(0.0) == 0.0 and squash(EVIDENT_Z) == 0.0 and squash(np.nan) == 0.0
    assert 0.0 < squash(EVIDENT_Z + 1) < squash(EVIDENT_Z + 6) < squash(100.0) <= 1.0


def test_clip_measures_name_every_measure_and_a_single_image_has_no_motion():
    measures = clip_measures(features(global__blur=10.0, identity_spread=8.0))
    assert set(measures) <= set(MEASURES) and measures["blur"] > 0.5 and measures["identity"] > 0.4
    assert measures["noise"] == 0.0
    single = clip_measures(features(), single=True)
    assert not {"flicker", "nonrigid", "temporal", "background"} & set(single)


def test_a_category_is_named_only_on_its_own_evidence():
    blurred = features(global__blur=10.0)
    evidence = category_evidence(blurred)
    assert evidence["Blurring/Exposure/Grain"][0] > EVIDENT and evidence["Blurring/Exposure/Grain"][1][0] == "blur"
    assert evidence["Mouth"][0] == 0.0  # a blur of the whole frame is not the mouth's distortion
    # The classifier's top pick without evidence is passed over.
    assert top_category(probabilities("Head Structure", "Blurring/Exposure/Grain"), blurred) == "Blurring/Exposure/Grain"
    assert top_category(probabilities("Head Structure"), blurred) == NO_DISTORTION
    assert named_categories(probabilities("Head Structure"), category_evidence(features())) == []
    local = features(**{"local__mouth__noise": 9.0})
    assert top_category(probabilities("Mouth"), local) == "Mouth"
    assert top_category(probabilities("Eye"), local) == NO_DISTORTION


def test_a_second_category_needs_probability_and_evidence():
    both = features(global__noise=10.0, head_missing=10.0)
    p = np.full(len(CATEGORIES), 0.01)
    p[CATEGORIES.index("Blurring/Exposure/Grain")] = 0.6
    for second, named in ((0.2, ["Blurring/Exposure/Grain"]), (0.3, ["Blurring/Exposure/Grain", "Head Structure"])):
        p[CATEGORIES.index("Head Structure")] = second
        assert [c for c, _ in named_categories(p, category_evidence(both))] == named
    p[CATEGORIES.index("Mouth")] = 0.3  # probable, but no evidence in the mouth
    assert "Mouth" not in [c for c, _ in named_categories(p, category_evidence(both))]


def test_every_category_but_no_distortion_has_evidence_listed():
    assert set(EVIDENCE) == set(CATEGORIES) - {NO_DISTORTION}
    for local, whole in EVIDENCE.values():
        assert set(local) <= set(MAP_MEASURES) and set(whole) <= set(MEASURES)


def test_frame_strength_reads_the_categorys_regions_and_measures():
    t, r, m = 6, len(JUDGE_REGIONS), len(MAP_MEASURES)
    region_z, person_z = np.zeros((t, r, m)), np.zeros((t, m))
    region_z[2, JUDGE_REGIONS.index("mouth"), MAP_MEASURES.index("noise")] = 7.0
    person_z[4, MAP_MEASURES.index("blur")] = 5.0
    distance = np.full(t, np.nan)
    assert np.argmax(frame_strength("Mouth", region_z, person_z, distance)) == 2
    assert frame_strength("Eye", region_z, person_z, distance).max() == 0.0
    assert np.argmax(frame_strength("Blurring/Exposure/Grain", region_z, person_z, distance)) == 4


def test_a_stretch_of_frames_is_named_and_a_steady_distortion_is_everywhere():
    found = np.ones(12, bool)
    strength = np.zeros(12)
    strength[4:8] = 6.0
    assert distortion_frames(strength, found) == [4, 5, 6, 7]
    assert distortion_frames(np.full(12, 6.0), found) == list(range(12))
    found[0] = False
    assert distortion_frames(np.full(12, 6.0), found) == list(range(1, 12))
    assert distortion_frames(strength, np.zeros(12, bool)) == []
