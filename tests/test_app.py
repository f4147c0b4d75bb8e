"""The app: the handler called directly, and the running app through gradio_client's /generate."""

from __future__ import annotations

import json

import gradio as gr
import pytest

import app
from tests.conftest import EXAMPLES


@pytest.fixture()
def services(tmp_path):
    return app.Services(tmp_path)


def _quiet(*args, **kwargs):
    return None


def test_generate_and_relight_handlers(services):
    video, mesh, strip, report, result = services.generate(str(EXAMPLES["grace_hopper"]), "blue eyes", "studio",
                                                           progress=_quiet)
    assert video.endswith("turntable.mp4") and mesh.endswith("mesh.glb") and strip.endswith("views.png")
    assert report["backend"] == "embedded-sdf-field" and report["lighting"]["name"] == "studio"
    assert report["edit"]["summary"] == "applied: irises -> #2a62d8 (normal)"
    assert "embedded-editor" in app.status_line(report) and "irises" in app.status_line(report)
    spec = app.light_spec(-60, 10, "rgba(255, 216, 168, 1)", 1.5, 0.2)
    assert spec == "azimuth=-60,elevation=10,color=#ffd8a8,intensity=1.5,ambient=0.2"
    video2, _, strip2, report2, result2 = services.relight(result, "custom", spec, "camera", progress=_quiet)
    assert video2 != video and report2["lighting"]["name"] == "custom" and report2["lighting"]["fixed_to"] == "camera"
    assert "relight_turntable" in report2["timings_s"] and result2.recon is result.recon
    with pytest.raises(gr.Error, match="Choose one of"):
        services.relight(result, "candle", "", "world", progress=_quiet)
    with pytest.raises(gr.Error, match="Nothing to relight"):
        services.relight(None, progress=_quiet)
    with pytest.raises(gr.Error, match="Could not understand 'qzx blorp'"):
        services.generate(str(EXAMPLES["grace_hopper"]), "qzx blorp", progress=_quiet)


def test_generate_handler_errors_are_readable(services, tmp_path):
    with pytest.raises(gr.Error, match="No photo yet"):
        services.generate(None, progress=_quiet)
    text = tmp_path / "notes.png"
    text.write_text("not really a png")
    with pytest.raises(gr.Error, match="not an image"):
        services.generate(str(text), progress=_quiet)
    assert not list(tmp_path.glob("*/result"))  # nothing half-written


def test_running_app_serves_generate(tmp_path):
    from gradio_client import Client, handle_file

    demo = app.build_demo(app.Services(tmp_path))
    demo.queue().launch(prevent_thread_lock=True, allowed_paths=[str(tmp_path)], quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        assert "/generate" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        video, mesh, strip, report = client.predict(handle_file(str(EXAMPLES["astronaut"])), "red lips", "left", "", "world",
                                                    api_name="/generate")
        assert str(video).endswith(".mp4") and str(mesh).endswith(".glb") and str(strip).endswith(".png")
        report = report if isinstance(report, dict) else json.loads(report)
        assert report["landmark_count"] == 478 and report["lighting"]["name"] == "left"
        assert report["edit"]["applied"][0]["target"] == "lips"
    finally:
        demo.close()
