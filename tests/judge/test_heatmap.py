"""Heatmap metrics and overlays on maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from judge.heatmap import auc, nss, overlay


def test_nss_of_a_map_that_is_one_on_the_target_and_zero_elsewhere():
    target = np.zeros((10, 10), bool)
    target[:2] = True  # 20% of the pixels
    assert nss(target.astype(float), target) == pytest.approx(np.sqrt(0.8 / 0.2))
    assert nss(np.ones((10, 10)), target) == 0.0  # a flat map says nothing


def test_auc_perfect_chance_and_inverted():
    target = np.zeros((8, 8), bool)
    target[:, :3] = True
    ramp = np.tile(np.arange(8.0)[::-1], (8, 1))  # higher on the target's side
    assert auc(ramp, target) == pytest.approx(1.0)
    assert auc(-ramp, target) == pytest.approx(0.0)
    assert auc(np.zeros((8, 8)), target) == pytest.approx(0.5)  # ties count half


def test_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    heat, target = rng.random((6, 7)), rng.random((6, 7)) > 0.6
    pos, neg = heat[target], heat[~target]
    expected = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auc(heat, target) == pytest.approx(expected)


def test_overlay_leaves_cold_pixels_and_colours_hot_ones():
    image = np.full((4, 4, 3), 100, np.uint8)
    heat = np.zeros((4, 4))
    heat[0, 0] = 1.0
    out = overlay(image, heat)
    assert (out[1:, :] == 100).all() and out[0, 0, 0] > 150 > out[0, 0, 2] and out.dtype == np.uint8
    with pytest.raises(ValueError, match="image's size"):
        overlay(image, np.zeros((3, 4)))
