import json
import subprocess
import sys

import numpy as np
import pytest

from judge.lmm.checkpoint import LMMConfig, LMMError, load_lmm
from judge.lmm.data import Sample, read_dataset
from judge.lmm.judge import LMMJudge
from judge.lmm.train import TrainConfig, category_f1, click_targets, split, train
from tests.judge.lmm.conftest import write_dataset

SMALL = dict(side=56, frames=4)


def test_training_lowers_both_losses_and_evaluates(tiny_model, tmp_path):
    write_dataset(tmp_path)
    lm = load_lmm(LMMConfig(model=tiny_model, device="cpu", **SMALL))
    report = train(lm, read_dataset(tmp_path), TrainConfig(epochs=4, lr=1e-3, head_epochs=15, holdout=0.5,
                                                          saliency_width=16, saliency_size=24, **SMALL))
    assert report.train_items == 3 and report.test_items == 3
    first, last = np.mean(report.stage1_losses[:3]), np.mean(report.stage1_losses[-3:])
    assert last < first
    assert np.mean(report.stage2_losses[-3:]) < np.mean(report.stage2_losses[:3])
    metrics = report.metrics
    assert {"quality_srcc", "quality_plcc", "quality_krcc", "authenticity_srcc", "category_f1_micro",
            "category_f1_macro", "saliency_nss", "saliency_cc"} <= set(metrics)
    assert -1 <= metrics["quality_srcc"] <= 1 and 0 <= metrics["category_f1_micro"] <= 1


def test_the_cli_writes_an_adapter_the_judge_loads(tiny_model, tmp_path):
    write_dataset(tmp_path / "data")
    out = tmp_path / "adapter"
    run = subprocess.run([sys.executable, "-m", "judge.train_lmm", str(tmp_path / "data"), "--lmm-model", tiny_model,
                          "--out", str(out), "--side", "56", "--frames", "4", "--head-epochs", "3", "--device", "cpu"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "stage 1 loss" in run.stdout and "quality_srcc" in run.stdout
    meta = json.loads((out / "facelab_lmm.json").read_text())
    assert meta["heads"] == ["saliency", "score"] and meta["training"]["rank"] == 8 and meta["training"]["alpha"] == 32
    assert (out / "adapter_config.json").exists() and (out / "heads.safetensors").exists()
    judge = LMMJudge(LMMConfig(model=tiny_model, adapter=str(out), device="cpu", **SMALL))
    from judge.frames import load_clip

    result = judge.judge(load_clip(tmp_path / "data" / "video0"))
    assert result.backend.endswith("+adapter") and "saliency head" in result.summary


def test_the_cli_refuses_bad_data_and_writes_nothing(tiny_model, tmp_path):
    run = subprocess.run([sys.executable, "-m", "judge.train_lmm", str(tmp_path), "--lmm-model", tiny_model,
                          "--out", str(tmp_path / "adapter")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "no labels.json or labels.csv" in run.stderr
    assert not (tmp_path / "adapter").exists()


def test_datasets_read_from_json_csv_and_the_spot_check_export(tmp_path):
    items = write_dataset(tmp_path, count=3)
    from_json = read_dataset(tmp_path)
    assert [s.quality for s in from_json] == [i["quality"] for i in items]
    assert from_json[0].categories == ["No Distortion"] and from_json[1].categories == ["Eye"]
    (tmp_path / "labels.json").unlink()
    (tmp_path / "labels.csv").write_text("video,quality,authenticity,distortions,clicks,strip_height,strip_width\n"
                                         "video0,50,60,Eye;Mouth,\"[[1, 2]]\",512,1536\n")
    (row,) = read_dataset(tmp_path)
    assert row.categories == ["Eye", "Mouth"] and row.clicks == [[1.0, 2.0]] and row.strip_size == (512, 1536)
    export = {"format": "facelab-annotations/1", "items": [
        {"path": str(tmp_path / "video1"), "name": "v1", "mos_quality": 40.0, "mos_authenticity": 70.0,
         "annotators": 3, "categories": {"Eye": 2, "Hair": 1}, "clicks": [[5, 6]]}]}
    (tmp_path / "ratings.json").write_text(json.dumps(export))
    (sample,) = read_dataset(tmp_path / "ratings.json")
    assert sample.categories == ["Eye"] and sample.quality == 40.0 and sample.strip_size is None


@pytest.mark.parametrize("item, message", [
    ({"video": "nowhere", "quality": 1, "authenticity": 1}, "does not exist"),
    ({"video": "video0", "quality": 101, "authenticity": 1}, "quality must lie in 0-100"),
    ({"video": "video0", "quality": 1, "authenticity": 1, "distortions": ["Nose"]}, "unknown categories"),
    ({"video": "video0"}, "needs video, quality and authenticity"),
    ({"video": "video0", "quality": 1, "authenticity": 1, "clicks": "abc"}, "clicks must be"),
    ({"video": "video0", "quality": 1, "authenticity": 1, "clicks": [[1]]}, "clicks must be"),
    ({"video": "video0", "quality": 1, "authenticity": 1, "strip_size": 512}, "strip_size must be"),
    ({"video": "video0", "quality": 1, "authenticity": 1, "distortions": ["No Distortion", "Eye"]}, "either has"),
])
def test_bad_labels_name_the_item_and_the_problem(tmp_path, item, message):
    write_dataset(tmp_path, count=1)
    (tmp_path / "labels.json").write_text(json.dumps([item]))
    with pytest.raises(LMMError, match=message):
        read_dataset(tmp_path)


def test_bad_files_are_named(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps({"videos": []}))
    with pytest.raises(LMMError, match="must hold a list of items"):
        read_dataset(tmp_path)
    (tmp_path / "labels.json").write_text(json.dumps({"format": "facelab-annotations/1", "items": [{"path": "x"}]}))
    with pytest.raises(LMMError, match="not an item of a spot-check export"):
        read_dataset(tmp_path)


def test_the_cli_checks_its_numbers_before_loading_anything(tmp_path):
    for flag, value, message in (("--holdout", "1.0", "--holdout must lie in"), ("--rank", "0", "--rank must be at least 1"),
                                 ("--frames", "0", "--frames must be at least 1")):
        run = subprocess.run([sys.executable, "-m", "judge.train_lmm", str(tmp_path), "--out", str(tmp_path / "a"),
                              flag, value], capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and message in run.stderr


def test_split_is_seeded_and_keeps_both_sides():
    samples = [Sample(str(i), None, 0, 0, []) for i in range(10)]
    train_a, test_a = split(samples, 0.2, seed=1)
    train_b, test_b = split(samples, 0.2, seed=1)
    assert [s.name for s in test_a] == [s.name for s in test_b] and len(test_a) == 2 and len(train_a) == 8
    assert len(split(samples[:2], 0.2, 0)[1]) == 1
    with pytest.raises(ValueError, match="holdout"):
        split(samples, 1.0, 0)


def test_an_answer_naming_nothing_is_wrong_about_every_item():
    scores = category_f1([{"No Distortion"}, {"Eye"}], [set(), set()])
    assert scores["category_f1_micro"] == 0.0 and scores["category_f1_macro"] == 0.0


def test_category_f1_by_hand():
    truth = [{"Eye"}, {"Mouth"}, {"No Distortion"}]
    found = [{"Eye", "Hair"}, {"Eye"}, {"No Distortion"}]
    scores = category_f1(truth, found)
    assert scores["category_f1_micro"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))  # tp 2, fp 2, fn 1
    assert scores["category_f1_macro"] == pytest.approx(np.mean([2 / 3, 0.0, 0.0, 1.0]))  # Eye, Mouth, Hair, None


def test_click_targets_peak_where_the_clicks_are(tiny_judge, clip):
    video = tiny_judge.video(clip)
    sample = Sample("s", None, 50, 50, [], [[125.0, 30.0]], (100, 300))  # middle view: x 25/100, y 30/100
    maps = click_targets(sample, video, 20).numpy()
    assert maps.shape == (3, 20, 20) and maps[0].max() == 0 and maps[2].max() == 0
    assert np.unravel_index(maps[1].argmax(), (20, 20)) == (6, 5) and maps[1].max() == pytest.approx(1.0)
    assert click_targets(Sample("s", None, 50, 50, []), video, 20) is None


def test_the_cli_refuses_an_out_folder_it_did_not_write_before_loading_anything(tmp_path, capsys):
    from judge.train_lmm import main

    write_dataset(tmp_path / "data", count=2)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main([str(tmp_path / "data"), "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert str(mine) in err and "notes.txt" in err and "choose an empty or new folder" in err.lower()
    assert main([str(tmp_path / "data"), "--out", str(tmp_path / "data")]) == 2
    assert "is the input" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep" and (tmp_path / "data" / "labels.json").exists()
