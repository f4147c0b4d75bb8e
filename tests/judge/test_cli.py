"""python -m judge: files written, questions, and bad inputs that leave nothing behind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from judge.__main__ import main
from judge.frames import MAX_FRAMES


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
    printed = capsys.readouterr().out  # our own turntable: the judge names it, then scores it
    assert printed.startswith("[embedded-judge] Made with FaceLab 3D (creation ") and "). Quality " in printed
    assert data["provenance"].startswith("made with FaceLab 3D")


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


@pytest.mark.parametrize("value", ["0", "-3"])
def test_max_frames_below_one_is_an_argument_error(value, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["x.mp4", "--out", "j", "--max-frames", value])
    assert stop.value.code == 2
    assert f"argument --max-frames: must be 1 or more (default {MAX_FRAMES}). Got {value}." in capsys.readouterr().err


def test_judge_refuses_an_out_folder_it_did_not_write_before_judging(turntable_mp4, tmp_path, capsys, monkeypatch):
    import judge.analytic

    def trap(*args, **kwargs):
        raise AssertionError("judged although --out was refusable at once")

    monkeypatch.setattr(judge.analytic.EmbeddedJudge, "judge", trap)
    clips = tmp_path / "clips"
    clips.mkdir()
    video = clips / "turntable.mp4"
    video.write_bytes(turntable_mp4.read_bytes())
    (clips / "notes.txt").write_text("mine")
    assert main([str(video), "--out", str(clips), "--max-frames", "4"]) == 2  # the video's own folder
    assert "contains the input" in capsys.readouterr().err
    assert main([str(turntable_mp4), "--out", str(clips), "--max-frames", "4"]) == 2  # someone's files
    err = capsys.readouterr().err
    assert str(clips) in err and "choose an empty or new folder" in err.lower()
    assert main([str(turntable_mp4), "--out", str(clips / "notes.txt" / "j"), "--max-frames", "4"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert sorted(p.name for p in clips.iterdir()) == ["notes.txt", "turntable.mp4"]
    assert video.read_bytes() == turntable_mp4.read_bytes() and (clips / "notes.txt").read_text() == "mine"


def test_judge_replaces_its_own_earlier_output(turntable_mp4, tmp_path):
    out = tmp_path / "j"
    assert main([str(turntable_mp4), "--out", str(out), "--max-frames", "4"]) == 0
    first = json.loads((out / ".facelab-output").read_text())
    assert main([str(turntable_mp4), "--out", str(out), "--max-frames", "6"]) == 0
    assert first["tool"] == "judge" and len(json.loads((out / "judge.json").read_text())["frame_indices"]) == 6
    assert [p.name for p in tmp_path.iterdir()] == ["j"]
