"""python -m judge: files written, questions, and bad inputs that leave nothing behind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from judge.__main__ import main


@pytest.fixture(scope="module")
def turntable_mp4(example_run, tmp_path_factory):
    return example_run[2] / "turntable.mp4"


def test_judge_writes_json_heatmaps_and_overlay(turntable_mp4, tmp_path, capsys):
    assert main([str(turntable_mp4), "--out", str(tmp_path / "j"), "--max-frames", "16"]) == 0
    data = json.loads((tmp_path / "j" / "judge.json").read_text())
    assert data["backend"] == "embedded-judge" and len(data["frame_indices"]) == 16
    with np.load(tmp_path / "j" / "heatmaps.npz") as maps:
        assert maps["frames"].shape[0] == 16 and maps["frames"].dtype == np.float32
        assert maps["views"].shape[1] == 3 * maps["frames"].shape[2]
    assert (tmp_path / "j" / "overlay.png").stat().st_size > 1000
    assert "[embedded-judge] Quality" in capsys.readouterr().out


def test_judge_answers_a_question(turntable_mp4, capsys):
    assert main([str(turntable_mp4), "--ask", "Which region is worst?", "--max-frames", "12"]) == 0
    assert "badness" in capsys.readouterr().out


def test_a_corrupt_video_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    assert main([str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "could not be read" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == [bad]


def test_nothing_to_do_is_an_error(capsys):
    assert main(["x.mp4"]) == 2
    assert "--out" in capsys.readouterr().err
