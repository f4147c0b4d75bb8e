"""python -m judge with the LMM backend."""

import json
import subprocess
import sys

from PIL import Image

from tests.judge.lmm.conftest import random_frames


def _run(*args):
    return subprocess.run([sys.executable, "-m", "judge", *args], capture_output=True, text=True, timeout=300)


def test_lmm_backend_judges_writes_and_answers(tiny_model, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(random_frames(8, 64)):
        Image.fromarray(frame).save(folder / f"{i:03d}.png")
    run = _run(str(folder), "--backend", "lmm", "--lmm-model", tiny_model, "--out", str(tmp_path / "out"),
               "--ask", "Is the mouth distorted?")
    assert run.returncode in (0, 1), run.stderr  # 1: the random model's answer may be empty
    judgement = json.loads((tmp_path / "out" / "judge.json").read_text())
    assert judgement["backend"].startswith("lmm-judge:") and len(judgement["frame_indices"]) == 8
    assert f"[{judgement['backend']}]" in run.stdout


def test_lmm_backend_without_a_model_or_too_slow_is_refused(config_7b, tmp_path, monkeypatch):
    monkeypatch.delenv("FACELAB_LMM_MODEL", raising=False)
    image = tmp_path / "face.png"
    Image.fromarray(random_frames(1, 64)[0]).save(image)
    run = _run(str(image), "--backend", "lmm", "--out", str(tmp_path / "out"))
    assert run.returncode == 2 and "No LMM checkpoint configured" in run.stderr
    run = _run(str(image), "--backend", "lmm", "--lmm-model", config_7b, "--device", "cpu", "--out", str(tmp_path / "out"))
    assert run.returncode == 2 and "on the CPU" in run.stderr and not (tmp_path / "out").exists()
