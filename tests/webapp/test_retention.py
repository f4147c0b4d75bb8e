"""Retention: files older than the maximum age go, on a timer, fresh ones and kept ones stay."""

from __future__ import annotations

import os
import threading
import time

import pytest

from webapp.retention import Sweeper, remove_older_than, sweep_interval


def _file(path, age_s: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_old_files_and_their_folders_go_fresh_and_kept_ones_stay(tmp_path):
    old = _file(tmp_path / "session" / "run" / "turntable.mp4", 120)
    fresh = _file(tmp_path / "other" / "photo.jpg", 1)
    example = _file(tmp_path / "examples" / "astronaut.png", 120)
    empty_new = tmp_path / "about-to-be-written"
    empty_new.mkdir()
    assert remove_older_than([tmp_path], 60, keep={str(example.resolve())}) == 1
    assert not old.exists() and not (tmp_path / "session").exists()
    assert fresh.exists() and example.exists() and empty_new.is_dir() and tmp_path.is_dir()


def test_the_sweep_interval_keeps_files_within_a_minute_of_the_maximum_age():
    assert sweep_interval(3600) == 60.0 and sweep_interval(3) == 1.0 and sweep_interval(120) == 20.0
    with pytest.raises(ValueError, match="must be positive"):
        sweep_interval(0)


def test_the_sweeper_runs_on_its_own_timer():
    calls = threading.Semaphore(0)
    sweeper = Sweeper(calls.release, 0.05).start()
    try:
        assert calls.acquire(timeout=5) and calls.acquire(timeout=5)  # twice, with no request at all
    finally:
        sweeper.stop()


def test_a_failing_sweep_does_not_stop_the_timer():
    calls = []

    def sweep():
        calls.append(1)
        raise OSError("disk gone")

    sweeper = Sweeper(sweep, 0.02).start()
    time.sleep(0.3)
    sweeper.stop()
    assert len(calls) >= 2
