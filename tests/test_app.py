"""The app: its handlers called directly, and the running app through gradio_client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from judge.frames import load_clip
from webapp.create_tab import light_spec
from webapp.inputs import photo_input
from webapp.page import build_demo
from webapp.panel import frame_overlay, panel
from webapp.services import Services
from webapp.words import status_line
from webapp.text import markdown_text
from tests.conftest import EXAMPLES


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    return Services(tmp_path_factory.mktemp("outputs"))


@pytest.fixture(scope="module")
def created(services):
    """(video, mesh, strip, judgement, result) of one Generate with a prompt and a preset."""
    return services.generate(str(EXAMPLES["grace_hopper"]), "blue eyes", "studio", progress=_quiet)


def _quiet(*args, **kwargs):
    return None


def test_generate_makes_every_artefact_and_a_judgement(services, created):
    video, mesh, strip, judgement, token = created
    result = services.result(token)
    assert video.endswith("turntable.mp4") and mesh.endswith("mesh.glb") and strip.endswith("views.png")
    report = result.outputs.report
    assert report["backend"] == "embedded-head-model" and report["lighting"]["name"] == "studio"
    assert report["edit"]["summary"] == "applied: irises -> #2a62d8 (normal)"
    assert judgement["backend"] == "embedded-judge" and judgement["face_found"]
    assert 0 <= judgement["quality"]["mos"] <= 100 and judgement["quality"]["level"] in ("bad", "poor", "fair", "good", "excellent")
    line = status_line(report, result.judged)
    assert "embedded-editor" in line and "irises" in line and "embedded-judge" in line
    assert [f.rsplit("/", 1)[-1] for f in result.files] == ["turntable.mp4", "mesh.glb", "views.png", "report.json",
                                                            "judge.json"]


def test_judge_panel_contents(services, created):
    result = services.result(created[4])
    scores, categories, summary, strip_heat, frame_heat, slider = panel(result.judged)
    assert scores.data[0].x[0] == result.judged.result.quality.mos
    assert len(categories.data[0].y) == 9 and "embedded-judge" in summary
    assert strip_heat.shape == result.judged.result.strip.shape and frame_heat.ndim == 3
    assert frame_overlay(result.judged, 99).shape == frame_heat.shape  # clamped to the last frame
    assert panel(None)[0] is None


def test_relight_and_compare(services, created):
    video, *_, token = created
    result = services.result(token)
    spec = light_spec(-60, 10, "rgba(255, 216, 168, 1)", 1.5, 0.2)
    assert spec == "azimuth=-60,elevation=10,color=#ffd8a8,intensity=1.5,ambient=0.2"
    video2, _, _, judgement2, token2 = services.relight(token, "custom", spec, "camera", progress=_quiet)
    result2 = services.result(token2)
    assert video2 != video and result2.outputs.report["lighting"]["fixed_to"] == "camera"
    assert result2.recon is result.recon and judgement2["backend"] == "embedded-judge"
    side_by_side, (before, after) = services.compare(token, "original vs edited")
    strip_h, strip_w = result.outputs.strip.shape[:2]
    assert side_by_side.shape[1] > 2 * strip_w and strip_h < side_by_side.shape[0] < 2 * strip_h  # next to each other
    assert before.shape == after.shape == result.outputs.strip.shape
    assert np.array_equal(after, result.outputs.strip) and not np.array_equal(before, after)  # the edit shows
    assert np.array_equal(side_by_side[-strip_h:, -strip_w:], after)  # the edited strip on the right, under its caption
    lit, (current, warm) = services.compare(token, "two lighting presets", "warm")
    assert lit.shape == side_by_side.shape and not np.array_equal(current, warm)
    with pytest.raises(gr.Error, match="Choose one of"):
        services.relight(token, "candle", "", "world", progress=_quiet)
    with pytest.raises(gr.Error, match="Nothing to relight"):
        services.relight(None, progress=_quiet)
    with pytest.raises(gr.Error, match="Nothing to compare"):
        services.compare(None)


def test_generate_handler_errors_are_readable(services, tmp_path):
    with pytest.raises(gr.Error, match="No photo yet"):
        services.generate(None, progress=_quiet)
    text = tmp_path / "notes.jpg"
    text.write_text("not really a jpeg")
    with pytest.raises(gr.Error, match="not an image"):
        services.generate(str(text), consent=True, progress=_quiet)
    with pytest.raises(gr.Error, match="keep it under 300"):
        services.generate(str(EXAMPLES["astronaut"]), "older " * 400, progress=_quiet)
    with pytest.raises(gr.Error, match="Could not understand 'qzx blorp'"):
        services.generate(str(EXAMPLES["astronaut"]), "qzx blorp", progress=_quiet)
    with pytest.raises(gr.Error, match="Output size must be one of"):
        services.generate(str(EXAMPLES["astronaut"]), size=1000, progress=_quiet)


def test_generate_asks_for_consent_and_the_audit_log_records_it(services, created, tmp_path):
    own = tmp_path / "me.jpg"
    Image.open(EXAMPLES["astronaut"]).convert("RGB").save(own, quality=90)
    with pytest.raises(gr.Error, match="Tick the box"):
        services.generate(str(own), how="ui", progress=_quiet)
    with pytest.raises(gr.Error, match="consent=True"):
        services.generate(str(own), progress=_quiet)
    recon = services.result(created[4]).recon
    (row,) = [r for r in services.audit.entries(recon.creation_id) if r.event == "create"]
    assert row.consent == "example" and row.event == "create" and row.prompt == "blue eyes"
    assert row.backends["lighting"] == "studio" and len(row.photo_sha256) == 64


def test_judge_and_ask_handlers(services, created, tmp_path):
    judgement, token = services.judge_video(created[0], progress=_quiet)
    judged = services.judged(token)
    assert judgement["face_found"] and judged.frames.shape[0] == len(judgement["frame_indices"])
    assert "badness" in services.ask(judgement, "Which region is worst?")
    assert "cannot answer" in services.ask(json.dumps(judgement), "What is the capital of France?")
    with pytest.raises(gr.Error, match="not a judgement"):
        services.ask({"quality": 3}, "Why?")
    with pytest.raises(gr.Error, match="No video yet"):
        services.judge_video(None, progress=_quiet)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 2000)
    with pytest.raises(gr.Error, match="could not be read"):
        services.judge_video(str(bad), progress=_quiet)


def test_lmm_backend_is_refused_with_the_reason(services, created, config_7b, monkeypatch):
    monkeypatch.delenv("FACELAB_LMM_MODEL", raising=False)
    with pytest.raises(gr.Error, match="No LMM checkpoint configured"):
        services.judge_video(created[0], "lmm", progress=_quiet)
    if not torch.cuda.is_available():
        monkeypatch.setenv("FACELAB_LMM_MODEL", config_7b)
        with pytest.raises(gr.Error, match=r"B parameters on the CPU.*embedded judge"):
            services.judge_video(created[0], "lmm", progress=_quiet)
    with pytest.raises(gr.Error, match="Unknown judge backend"):
        services.judge_video(created[0], "oracle", progress=_quiet)


def test_lmm_backend_judges_and_answers_by_generation(tiny_model, tmp_path, monkeypatch):
    import imageio.v2 as imageio

    monkeypatch.setenv("FACELAB_LMM_MODEL", tiny_model)
    video = tmp_path / "long.mp4"  # 70 frames: the clip samples 64 of them, the LMM judge 8 of those
    frames = (np.random.default_rng(0).random((70, 64, 64, 3)) * 255).astype(np.uint8)
    imageio.mimwrite(video, frames, fps=24, macro_block_size=1)
    lmm_services = Services(tmp_path / "out")
    judgement, token = lmm_services.judge_video(str(video), "lmm", progress=_quiet)
    assert judgement["backend"] == f"lmm-judge:{tiny_model.rstrip('/').split('/')[-1]}"
    assert max(judgement["frame_indices"]) == 69
    judged = lmm_services.judged(token)
    assert judged.frames.shape[0] == 8 and judged.result.frame_heatmaps.shape[:3] == judged.frames.shape[:3]
    scores, categories, summary, strip, frame, slider = panel(judged)  # the panel draws LMM judgements
    assert strip.shape[2] == 3 and frame.shape == judged.frames.shape[1:] and "lmm-judge" in summary
    question = "Which region is worst?"
    generated = lmm_services.ask_kept(token, judgement, question)
    expected = lmm_services.judges.lmm.ask(load_clip(str(video)), question).text  # the same 8 frames as judged
    assert generated == markdown_text(expected)
    assert lmm_services.ask_kept(None, judgement, question) == markdown_text(lmm_services.ask(judgement, question))


def test_photo_input_names_an_unreadable_file(tmp_path):
    from gradio.data_classes import FileData

    fake = tmp_path / "notes.jpg"
    fake.write_text("not a photo")
    with pytest.raises(gr.Error, match="notes.jpg is not an image that can be read"):
        photo_input(type="filepath", image_mode=None).preprocess(FileData(path=str(fake), orig_name="notes.jpg"))


def test_running_app_serves_generate_judge_and_ask(tmp_path):
    from gradio_client import Client, handle_file

    demo = build_demo(Services(tmp_path))
    demo.queue().launch(prevent_thread_lock=True, allowed_paths=[str(tmp_path)], quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        assert {"/generate", "/judge", "/ask", "/relight"} <= set(endpoints)
        assert "consent" in [p["parameter_name"] for p in endpoints["/generate"]["parameters"]]
        own = tmp_path / "me.jpg"  # not an example photo: refused without consent=True
        Image.open(EXAMPLES["astronaut"]).convert("RGB").save(own, quality=90)
        with pytest.raises(Exception, match="consent=True"):
            client.predict(handle_file(str(own)), "", "original", api_name="/generate")
        job = client.submit(handle_file(str(EXAMPLES["astronaut"])), "red lips", "left", api_name="/generate")
        video, mesh, strip, judgement = job.result(timeout=300)
        steps = [[part is not None for part in step] for step in job.outputs()]
        assert steps == [[True, False, False, False], [True, True, True, False], [True, True, True, True]]  # streamed
        assert endpoints["/generate"]["returns"][0]["component"] == "Video" and len(endpoints["/generate"]["returns"]) == 4
        assert str(video).endswith(".mp4") and str(mesh).endswith(".glb") and str(strip).endswith(".png")
        judgement = judgement if isinstance(judgement, dict) else json.loads(judgement)
        assert judgement["backend"] == "embedded-judge"
        again = client.predict(handle_file(str(video)), api_name="/judge")
        again = again if isinstance(again, dict) else json.loads(again)
        assert again["face_found"] and again["quality"]["level"]
        assert again["provenance"].startswith("made with FaceLab 3D")  # its watermark, found in the served video
        answer = client.predict(again, "Which region is worst?", api_name="/ask")
        assert "badness" in answer
    finally:
        demo.close()


def test_spot_check_queues_only_what_its_maker_adds(services, created, tmp_path):
    from webapp.spotcheck import SpotCheck

    spot = SpotCheck(tmp_path / "ratings.sqlite", key=None, public=False)
    services_spot, services.spot = services.spot, spot
    try:
        assert spot.next_item("ana")[0] is None  # Generate queued nothing by itself
        message = services.queue_for_spotcheck(created[4])
        assert message.startswith("Added to the spot-check queue") and "annotators of this app will see" in message
    finally:
        services.spot = services_spot
    item, video, strip, clicks, progress = spot.next_item("ana")
    assert item and strip.ndim == 3 and clicks == [] and "item 1 of 1" in progress
    assert video.startswith(str(tmp_path)) and Path(video).is_file()  # a copy in the store's own folder
    assert [i.source for i in spot.store.items()] == ["app"]  # a creation, not an upload
    assert spot.next_item("  ")[4] == "⚠️ Enter your name first, so your ratings can be told apart from others'."
    event = gr.SelectData(None, {"index": [30, 40], "value": None})
    marked, clicks = spot.click(item, [], "", event)
    assert clicks == [[30.0, 40.0]] and not np.array_equal(marked, strip)
    verdict, saved = spot.submit("ana", item, 72, 64, ["Eye"], clicks, "ok", "rating-1")
    assert saved and verdict.startswith("Saved **turntable.mp4**.") and "Judge (embedded-judge)" in verdict
    spot.submit("ana", item, 72, 64, ["Eye"], clicks, "ok", "rating-1")  # a retried submit
    assert spot.store.count() == 1 and spot.store.ratings()[0].clicks == [[30.0, 40.0]]
    verdict, saved = spot.submit("ana", item, 140, 64, [], [], "", "rating-2")
    assert not saved and "quality must lie in 0-100" in verdict
    verdict, saved = spot.submit("ana", None, 50, 50, [], [], "", "rating-3")
    assert not saved and "Load an item first" in verdict


def test_judges_refuse_an_unknown_backend_from_the_environment(monkeypatch):
    from webapp.judges import Judges

    monkeypatch.setenv("FACELAB_JUDGE_BACKEND", "oracle")
    with pytest.raises(ValueError, match=r"must be one of \('embedded', 'lmm'\)"):
        Judges()
    run = subprocess.run([sys.executable, "app.py"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "FACELAB_JUDGE_BACKEND": "oracle"})
    assert run.returncode == 2 and "FACELAB_JUDGE_BACKEND must be one of" in run.stderr
