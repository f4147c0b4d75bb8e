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


def test_generate_handler_returns_video_mesh_strip_and_report(services):
    video, mesh, strip, report = services.generate(str(EXAMPLES["grace_hopper"]), progress=lambda *a, **k: None)
    assert video.endswith("turntable.mp4") and mesh.endswith("mesh.glb") and strip.endswith("views.png")
    assert report["backend"] == "embedded-sdf-field"


def test_generate_handler_errors_are_readable(services, tmp_path):
    with pytest.raises(gr.Error, match="No photo yet"):
        services.generate(None, progress=lambda *a, **k: None)
    text = tmp_path / "notes.png"
    text.write_text("not really a png")
    with pytest.raises(gr.Error, match="not an image"):
        services.generate(str(text), progress=lambda *a, **k: None)
    assert not list(tmp_path.glob("*/result"))  # nothing half-written


def test_running_app_serves_generate(tmp_path):
    from gradio_client import Client, handle_file

    demo = app.build_demo(app.Services(tmp_path))
    demo.queue().launch(prevent_thread_lock=True, allowed_paths=[str(tmp_path)], quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        assert "/generate" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        video, mesh, strip, report = client.predict(handle_file(str(EXAMPLES["astronaut"])), api_name="/generate")
        assert str(video).endswith(".mp4") and str(mesh).endswith(".glb") and str(strip).endswith(".png")
        report = report if isinstance(report, dict) else json.loads(report)
        assert report["landmark_count"] == 478
    finally:
        demo.close()
