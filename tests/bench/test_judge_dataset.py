"""bench/judge_dataset.py's pieces: the split, rung names, and the distortions that need two clips."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

from judge_dataset import DRIFT_AMOUNT, _parse, backdrop, base_of, bases, combos, drift, held_out, janus  # noqa: E402


def test_the_split_is_by_base_photo_and_fixed():
    names = [p.stem for p in bases()]
    assert [held_out(n) for n in names] == [held_out(n) for n in names]
    assert base_of("p01_young_east_asian_man_glasses-07") == "p01_young_east_asian_man_glasses"
    assert base_of("astronaut-old") == "astronaut"
    assert held_out(base_of("astronaut-03")) == held_out("astronaut")


def test_rung_keys_read_back_with_dashes_in_names_and_scopes():
    assert _parse("p06_old_bald_man_profile-04-face_only-beyond-face-3") == (
        "p06_old_bald_man_profile-04", "face_only", "beyond-face", "3")
    assert _parse("astronaut-00-clean-global-0") == ("astronaut-00", "clean", "global", "0")
    assert _parse("grace_hopper-old-old_recon-global-4") == ("grace_hopper-old", "old_recon", "global", "4")
    with pytest.raises(ValueError, match="Cannot parse"):
        _parse("nonsense-1")


def test_every_family_and_scope_is_dealt():
    dealt = combos()
    assert len(dealt) == len(set(dealt)) and {f for f, _ in dealt} >= {"blur", "face_only", "drift", "janus", "bg_warp"}


def test_drift_starts_as_one_face_and_ends_as_the_other():
    a = np.zeros((5, 8, 8, 3), np.uint8)
    b = np.full((5, 8, 8, 3), 200, np.uint8)
    out = drift(a, b, 5)
    assert (out[0] == 0).all() and (out[-1] == round(200 * DRIFT_AMOUNT[4])).all()
    assert np.all(np.diff(out[:, 0, 0, 0].astype(int)) > 0)


def test_janus_and_backdrop_change_only_what_they_should():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (2, 32, 32, 3)).astype(np.uint8)
    face = np.zeros((2, 32, 32), np.float32)
    face[:, 8:20, 4:14] = 1.0
    beyond = np.zeros_like(face)
    beyond[:, 4:28, 18:30] = 1.0
    out = janus(frames, face, beyond, 5)
    changed = np.abs(out.astype(int) - frames).max(-1) > 0
    assert changed.any() and not changed[beyond == 0].any()
    head = np.zeros((3, 32, 32), np.float32)
    head[:, 8:24, 8:24] = 1.0
    plate = rng.uniform(0, 255, (40, 48, 3)).astype(np.float32)
    still = backdrop(np.repeat(frames[:1], 3, 0), plate, np.zeros(3), head)
    np.testing.assert_array_equal(still[0], still[2])  # no turn, no motion
    np.testing.assert_array_equal(still[:, 10:22, 10:22], np.repeat(frames[:1], 3, 0)[:, 10:22, 10:22])
    turned = backdrop(np.repeat(frames[:1], 3, 0), plate, np.array([0.0, 30.0, -30.0]), head)
    assert not np.array_equal(turned[1, :4], turned[2, :4])  # the backdrop slides with the turn
