"""Batch judging: ``python -m judge batch`` and the runner under it (``face_nerf.batch``)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from face_nerf.batch import BatchError, Job, find_inputs, run_batch
from judge.batch import JudgeTask, main
from judge.frames import VIDEO_SUFFIXES
from tests.conftest import EXAMPLES, ROOT, shared_realworld


@pytest.fixture(scope="module")
def face_frames():
    """[8, 96, 96, 3] a small turntable of the astronaut example."""
    from face_nerf.pipeline import ReconstructionConfig, reconstruct, render_turntable

    config = ReconstructionConfig(frames=8, size=96)
    return render_turntable(reconstruct(EXAMPLES["astronaut"], config), config).frames


def write_clips(folder: Path, frames: np.ndarray, count: int, start: int = 0) -> list[Path]:
    """``count`` distinct mp4 clips: ``frames`` with a little noise of a different seed each."""
    from face_nerf.export import write_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + count):
        noise = np.random.default_rng(i).integers(-3, 4, frames.shape)
        path = folder / f"clip{i:03d}.mp4"
        write_video(np.clip(frames.astype(np.int16) + noise, 0, 255).astype(np.uint8), path, 24)
        paths.append(path)
    return paths


def write_corrupt(folder: Path, good: Path) -> list[Path]:
    """Five broken clips: text, a cut-short mp4, an empty file, random bytes as .webm, a header-only gif."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"notes.mp4": b"this is a text file, not a video", "cut.mp4": good.read_bytes()[:1500], "empty.mp4": b"",
             "noise.webm": np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes(),
             "header.gif": b"GIF89a\x10\x00\x10\x00"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in files]


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "judgements.jsonl").read_text().splitlines()]


def test_inputs_come_from_folders_globs_and_manifests_with_their_columns(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("a/one.mp4", "a/deep/two.webm", "a/deep/notes.txt", "a/three.gif"):
        (tmp_path / name).write_bytes(b"x")
    found = find_inputs([str(tmp_path / "a")], VIDEO_SUFFIXES)
    assert sorted(Path(j.path).name for j in found) == ["one.mp4", "three.gif", "two.webm"]  # recursive, videos only
    assert [Path(j.path).name for j in find_inputs([str(tmp_path / "a" / "**" / "*.webm")], VIDEO_SUFFIXES)] == ["two.webm"]
    (tmp_path / "list.csv").write_text("video,generator,quality\na/one.mp4,gghead,70\na/deep/two.webm,e3dge,55\n")
    jobs = find_inputs([str(tmp_path / "list.csv"), str(tmp_path / "a" / "one.mp4")], VIDEO_SUFFIXES)
    assert [(Path(j.path).name, j.extra) for j in jobs] == [("one.mp4", {"generator": "gghead", "quality": "70"}),
                                                             ("two.webm", {"generator": "e3dge", "quality": "55"})]
    (tmp_path / "list.jsonl").write_text('{"video": "a/three.gif", "tags": ["x", 1]}\n\n')
    assert find_inputs([str(tmp_path / "list.jsonl")], VIDEO_SUFFIXES)[0].extra == {"tags": ["x", 1]}
    (tmp_path / "bad.csv").write_text("file,quality\na/one.mp4,70\n")
    with pytest.raises(BatchError, match="'video'"):
        find_inputs([str(tmp_path / "bad.csv")], VIDEO_SUFFIXES)
    with pytest.raises(BatchError, match="no input found"):
        find_inputs([str(tmp_path / "nothing-*.mp4")], VIDEO_SUFFIXES)


def test_fifty_clips_with_five_corrupt_give_45_judgements_5_error_rows_and_exit_0(face_frames, tmp_path, capsys):
    good = write_clips(tmp_path / "clips", face_frames, 45)
    broken = write_corrupt(tmp_path / "clips" / "broken", good[0])
    out = tmp_path / "out"
    assert main([str(tmp_path / "clips"), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "50 inputs: 50 processed now (5 failed)" in printed and printed.count("failed: ") == 5
    rows = rows_of(out)
    assert len(rows) == 50 and len({r["path"] for r in rows}) == 50
    failed = {Path(r["path"]).name: r["error"] for r in rows if r["error"]}
    assert sorted(failed) == sorted(p.name for p in broken)
    assert all(name in message for name, message in failed.items())  # each error names its file
    judged = [r for r in rows if not r["error"]]
    assert len(judged) == 45 and all(0 <= r["quality_mos"] <= 100 and r["frames_analysed"] == 8 for r in judged)
    assert all(r["face_found"] and r["backend"] == "embedded-judge" and r["strip"] for r in judged)
    assert all((out / r["strip"]).is_file() for r in judged)
    assert len({r["worker"] for r in judged}) == 2  # both workers took clips

    import pyarrow.parquet as pq

    table = pq.read_table(out / "judgements.parquet").to_pylist()
    assert [r["path"] for r in table] == [r["path"] for r in rows]
    assert [r["quality_mos"] for r in table] == [r["quality_mos"] for r in rows]
    assert dict(table[-1]["probabilities"] or []) == (rows[-1]["probabilities"] or {})

    # Resumed, retrying the failures, with errors fatal: nothing judged is judged again; exit 1.
    assert main([str(tmp_path / "clips"), "--out", str(out), "--workers", "2", "--quiet", "--resume",
                 "--retry-errors", "--fail-on-error"]) == 1
    assert "50 inputs: 5 processed now (5 failed), 45 already done" in capsys.readouterr().out
    assert [r for r in rows_of(out) if not r["error"]] == judged


def test_a_batch_killed_half_way_resumes_without_judging_anything_twice(face_frames, tmp_path):
    write_clips(tmp_path / "clips", face_frames, 12)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "judge", "batch", str(tmp_path / "clips"), "--out", str(out), "--workers", "1",
               "--quiet"]
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    log = out / "judgements.jsonl"
    deadline = time.time() + 300
    while (not log.is_file() or len(log.read_text().splitlines()) < 4) and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)  # the runner and its worker
    process.wait()
    before = rows_of(out)
    assert 4 <= len(before) < 12
    with log.open("a") as f:
        f.write('{"path": "/half/written')  # a line the kill cut short
    result = subprocess.run(command + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"{12 - len(before)} processed now (0 failed), {len(before)} already done" in result.stdout
    after = rows_of(out)
    assert sorted(r["path"] for r in after) == sorted(str(p.resolve()) for p in (tmp_path / "clips").glob("*.mp4"))
    assert [r for r in after if r["path"] in {b["path"] for b in before}] == before  # kept as they were


def test_identical_content_is_judged_once_and_heatmaps_are_written_on_request(face_frames, tmp_path):
    clip = write_clips(tmp_path / "clips", face_frames, 1)[0]
    copy = tmp_path / "clips" / "copy.mp4"
    copy.write_bytes(clip.read_bytes())
    summary = run_batch(JudgeTask(heatmaps=True), find_inputs([str(tmp_path / "clips")], VIDEO_SUFFIXES),
                        tmp_path / "out", workers=0, progress=False)
    assert (summary.done, summary.copied) == (1, 1)
    first, second = rows_of(tmp_path / "out")
    assert first["sha256"] == second["sha256"] and first["quality_mos"] == second["quality_mos"]
    maps = np.load(tmp_path / "out" / first["heatmaps"])
    assert maps["frames"].shape == (8, 96, 96) and list(maps["frame_indices"]) == list(range(8))
    assert maps["views"].shape == (96, 3 * 96)


def test_an_output_folder_of_something_else_or_an_earlier_run_is_refused(face_frames, tmp_path, capsys):
    write_clips(tmp_path / "clips", face_frames, 1)
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "thesis.pdf").write_bytes(b"%PDF")
    assert main([str(tmp_path / "clips"), "--out", str(tmp_path / "theirs"), "--workers", "0", "--quiet"]) == 2
    assert "holds files this command did not write" in capsys.readouterr().err
    assert (tmp_path / "theirs" / "thesis.pdf").read_bytes() == b"%PDF"
    assert main([str(tmp_path / "clips"), "--out", str(tmp_path / "out"), "--workers", "0", "--quiet"]) == 0
    assert main([str(tmp_path / "clips"), "--out", str(tmp_path / "out"), "--workers", "0", "--quiet"]) == 2
    assert "add --resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path / "clips"), "--out", str(tmp_path / "out"), "--lmm-model", "x"])
    assert "only apply to --backend lmm" in capsys.readouterr().err


def test_the_labels_report_agrees_with_scipy_on_the_rated_clips(tmp_path, capsys):
    from scipy.stats import spearmanr

    from judge.batch_report import agreement_report, read_labels

    shared = shared_realworld()
    ratings = list(csv.DictReader((shared / "ratings.tsv").open(), delimiter="\t"))
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "quality", "authenticity", "categories"])
        for r in ratings:
            writer.writerow([str((shared / r["file"]).resolve()), r["quality"], r["authenticity"], r["categories"]])
    manifest = tmp_path / "clips.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "generator"])
        for r in ratings:
            writer.writerow([str((shared / r["file"]).resolve()), r["file"].split("_")[1]])
    out = tmp_path / "out"
    assert main([str(manifest), "--out", str(out), "--workers", "2", "--quiet", "--labels", str(labels)]) == 0
    printed = capsys.readouterr().out
    assert "Agreement with the labels over 11 clips" in printed and "By generator:" in printed
    rows = {r["path"]: r for r in rows_of(out)}
    report = agreement_report(out / "judgements.jsonl", read_labels(labels), out)
    for dimension in ("quality", "authenticity"):
        judge = [rows[str((shared / r["file"]).resolve())][f"{dimension}_mos"] for r in ratings]
        people = [float(r[dimension]) for r in ratings]
        assert report.correlations[dimension].srcc == pytest.approx(spearmanr(judge, people).statistic, abs=1e-12)
        assert f"SRCC {report.correlations[dimension].srcc:.3f}" in printed
    page = report.path.read_text()
    assert "Worst disagreements" in page and page.count("data:image/jpeg;base64,") == 8 and "plotly" in page


def test_a_labels_file_with_a_bad_row_fails_before_any_judging(tmp_path, capsys):
    (tmp_path / "labels.csv").write_text("video,quality,authenticity,categories\nx.mp4,70,sixty,\n")
    assert main([str(tmp_path), "--out", str(tmp_path / "out"), "--labels", str(tmp_path / "labels.csv")]) == 2
    assert "row 2 has a score that is not a number" in capsys.readouterr().err and not (tmp_path / "out").exists()
    (tmp_path / "labels.csv").write_text("video,quality,authenticity,categories\nx.mp4,70,60,Nose\n")
    assert main([str(tmp_path), "--out", str(tmp_path / "out"), "--labels", str(tmp_path / "labels.csv")]) == 2
    assert "unknown categories ['Nose']" in capsys.readouterr().err


def test_ray_runs_the_same_judgements_on_a_local_instance(face_frames, tmp_path):
    ray = pytest.importorskip("ray")
    clips = write_clips(tmp_path / "clips", face_frames, 4)
    broken = write_corrupt(tmp_path / "broken", clips[0])[:1]
    jobs = [Job(str(p.resolve())) for p in clips + broken]
    local = run_batch(JudgeTask(), jobs, tmp_path / "local", workers=0, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})  # the workers import the project from here
    try:
        on_ray = run_batch(JudgeTask(), jobs, tmp_path / "ray", workers=2, use_ray=True, progress=False)
        as_bytes = run_batch(JudgeTask(), jobs[:2], tmp_path / "bytes", workers=2, use_ray=True, send_bytes=True,
                             progress=False)
    finally:
        ray.shutdown()
    assert (local.failed, on_ray.failed, as_bytes.failed) == (1, 1, 0)
    scores = lambda out: {r["path"]: (r["quality_mos"], r["authenticity_mos"], r["error"] is None) for r in rows_of(out)}
    assert scores(tmp_path / "ray") == scores(tmp_path / "local")
    assert scores(tmp_path / "bytes") == {p: s for p, s in scores(tmp_path / "local").items() if p in {j.path for j in jobs[:2]}}
    assert len({r["worker"] for r in rows_of(tmp_path / "ray")}) == 2


def test_the_lmm_backend_judges_a_batch_too(tiny_model, face_frames, tmp_path):
    from judge.lmm.checkpoint import LMMConfig

    clips = write_clips(tmp_path / "clips", face_frames, 2)
    write_corrupt(tmp_path / "clips" / "broken", clips[0])
    task = JudgeTask(lmm=LMMConfig(model=tiny_model, side=56, max_new_tokens=8, device="cpu"))
    summary = run_batch(task, find_inputs([str(tmp_path / "clips")], VIDEO_SUFFIXES), tmp_path / "out", workers=1,
                        progress=False)
    assert (summary.done, summary.failed) == (7, 5)
    judged = [r for r in rows_of(tmp_path / "out") if not r["error"]]
    assert len(judged) == 2 and all(r["backend"].startswith("lmm-judge") for r in judged)
    assert all(0 <= r["quality_mos"] <= 100 and r["frames_analysed"] == 8 for r in judged)


def test_an_lmm_worker_warms_its_judge_up_once_before_its_first_clip(tiny_model, monkeypatch):
    from judge.lmm.checkpoint import LMMConfig
    from judge.lmm.judge import LMMJudge

    calls, real = [], LMMJudge.warm_up

    def warm_up(judge):
        calls.append(judge)
        return real(judge)

    monkeypatch.setattr(LMMJudge, "warm_up", warm_up)
    task = JudgeTask(lmm=LMMConfig(model=tiny_model, side=56, max_new_tokens=8, device="cpu", static_cache=True))
    task.load()
    assert calls == [task._judge] and task._judge._loaded is not None  # loaded and warm before any clip
