"""Faces are personal data: the running app, probed by two visitors (two gradio_client sessions) and by
someone posting to its routes. Nothing one visitor uploads or makes reaches another; everything goes
when the session ends or after the maximum age; bad requests get messages and leave nothing behind."""

from __future__ import annotations

import errno
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from webapp.page import build_demo, launch
from webapp.services import Services
from webapp.words import status_line
from tests.conftest import EXAMPLES
from webapp.spotcheck import SpotCheck

PHOTO = str(EXAMPLES["astronaut"])
FAST = dict(size=128, frames=8)  # the smallest creation the app makes: these tests are about where files go


@contextmanager
def serving(root: Path, max_age_s: float = 3600, spot: SpotCheck | None = None):
    """The app as ``main`` serves it (Gradio's upload cache inside the outputs, session folders inside
    that, the retention timer on), on a free port. Yields (services, demo)."""
    saved = {k: os.environ.get(k) for k in ("GRADIO_TEMP_DIR", "GRADIO_HEARTBEAT_INTERVAL")}
    uploads = root / "uploads"
    os.environ.update(GRADIO_TEMP_DIR=str(uploads), GRADIO_HEARTBEAT_INTERVAL="0.5")
    services = Services(uploads / "sessions", uploads_root=uploads, max_age_s=max_age_s,
                            spot=spot or SpotCheck(root / "ratings" / "annotations.sqlite", key=None, public=False))
    demo = build_demo(services)
    services.start_retention()
    launch(demo, prevent_thread_lock=True, quiet=True)
    try:
        yield services, demo
    finally:
        services.stop_retention()
        demo.close()
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.update({key: value})


def files_under(folder: Path, keep=frozenset()) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and str(p.resolve()) not in keep)


def wait_for(condition, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.25)
    return condition()


def as_dict(judgement) -> dict:
    return judgement if isinstance(judgement, dict) else json.loads(judgement)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("served")) as (services, demo):
        yield services, demo


def test_two_visitors_share_nothing(server):
    services, demo = server
    alice, bob = Client(demo.local_url, verbose=False), Client(demo.local_url, verbose=False)
    video, *_ = alice.predict(handle_file(PHOTO), "\t", "original", api_name="/generate")  # a tab is no prompt
    judgement = as_dict(alice.predict(handle_file(video), api_name="/judge"))
    assert judgement["face_found"]

    # Spot-check: nothing joined the queue by itself; whoever asks is served nothing of Alice's.
    assert services.spot.store.items() == []
    item, served_video, strip, _, line = services.spot.next_item("eve")
    assert item is None and served_video is None and strip is None and "nothing left to rate" in line

    # Kept results: Bob's session has none, and Alice's tokens are refused to it.
    with pytest.raises(AppError, match="Nothing to relight yet"):
        bob.predict("studio", "", "world", api_name="/relight")
    tokens = list(services.kept._sessions[alice.session_hash].items)
    assert len(tokens) == 2  # her creation and her judged upload
    as_bob = SimpleNamespace(session_hash=bob.session_hash)
    for token in tokens:
        with pytest.raises(gr.Error, match="kept only for the browser session that made them"):
            services.judged(token, as_bob)
    assert services.result(tokens[0], SimpleNamespace(session_hash=alice.session_hash)) is not None

    # File routes: the ratings store and the outputs' folders are not served by path.
    base = demo.local_url.rstrip("/")
    for path in (services.spot.path, services.files.output_root, services.files.folder(alice.session_hash)):
        assert httpx.get(f"{base}/gradio_api/file={path}").status_code in (403, 404)
    alice.close(), bob.close()


def test_a_sessions_files_and_results_go_when_it_ends(server):
    services, demo = server
    visitor = Client(demo.local_url, verbose=False)
    video, mesh, *_ = visitor.predict(handle_file(PHOTO), "", "original", api_name="/generate")
    visitor.predict(handle_file(video), api_name="/judge")
    folder = services.files.folder(visitor.session_hash)
    made = files_under(folder)
    uploads = [p for p in files_under(services.files.uploads_root, services.files.keep)
               if not p.is_relative_to(services.files.output_root)]
    assert made and uploads
    urls = [f"{demo.local_url.rstrip('/')}/gradio_api/file={p}" for p in made if p.suffix in (".mp4", ".glb")]
    assert all(httpx.get(url).status_code == 200 for url in urls)  # served while the session lasts
    visitor.close()  # the browser tab closes: the heartbeat stops, Gradio calls the unload event
    assert wait_for(lambda: not folder.exists(), 30), "the session folder outlived the session"
    assert wait_for(lambda: not any(p.exists() for p in uploads), 10), [p for p in uploads if p.exists()]
    assert visitor.session_hash not in services.kept._sessions
    assert all(httpx.get(url).status_code in (403, 404) for url in urls)  # gone


def test_everything_goes_after_the_maximum_age_whatever_the_route(tmp_path):
    max_age = 10.0
    with serving(tmp_path, max_age_s=max_age) as (services, demo):
        visitor = Client(demo.local_url, verbose=False)
        video, *_ = visitor.predict(handle_file(PHOTO), "red lips", "studio", api_name="/generate")
        judgement = visitor.predict(handle_file(video), api_name="/judge")
        visitor.predict(as_dict(judgement), "Why?", api_name="/ask")
        junk = tmp_path / "junk.bin"
        junk.write_bytes(os.urandom(2_000_000))
        with junk.open("rb") as handle:  # posted to the upload route and never used by any event
            assert httpx.post(f"{demo.local_url.rstrip('/')}/gradio_api/upload",
                              files={"files": handle}).status_code == 200
        keep = services.files.keep
        assert files_under(services.files.uploads_root, keep)
        finished = time.monotonic()
        # The session never ends (the visitor keeps the tab open): the timer alone must clear it all.
        assert wait_for(lambda: not files_under(services.files.uploads_root, keep), max_age + 60)
        print(f"everything gone {time.monotonic() - finished:.1f} s after the last request (max age {max_age} s)")
        assert wait_for(lambda: len(services.kept) == 0, 5)
        assert keep and all(Path(p).exists() for p in keep)  # the example photos stay for everyone
        visitor.close()


def test_upload_routes_are_bounded(server):
    services, demo = server
    before = files_under(services.files.uploads_root, services.files.keep)
    junk = services.files.uploads_root.parent / "junk-50mb.bin"
    junk.write_bytes(b"\0" * 50_000_000)
    try:
        with junk.open("rb") as handle:
            response = httpx.post(f"{demo.local_url.rstrip('/')}/gradio_api/upload", files={"files": handle},
                                  timeout=60)
    finally:
        junk.unlink()
    assert response.status_code == 413 and "32" in response.text
    assert files_under(services.files.uploads_root, services.files.keep) == before


def test_judge_and_ask_errors_are_messages_that_name_no_server_path(server, tmp_path):
    services, demo = server
    visitor = Client(demo.local_url, verbose=False)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 2000)
    with pytest.raises(AppError) as caught:
        visitor.predict(handle_file(str(broken)), api_name="/judge")
    message = str(caught.value)
    assert "broken.mp4" in message and "could not be read" in message
    assert str(services.files.uploads_root) not in message and "/tmp" not in message
    nested: object = {"quality": 1}
    for _ in range(200):
        nested = {"a": [nested]}
    with pytest.raises(AppError, match="not a judgement from this app .*nests"):
        visitor.predict(nested, "Why?", api_name="/ask")
    assert "levels deep" in str(services_ask_error(json.dumps(nested)))
    visitor.close()


def test_a_png_bomb_sent_to_generate_gets_a_message_and_the_server_keeps_serving(server, tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from bench_app import png_bomb

    services, demo = server
    visitor = Client(demo.local_url, verbose=False)
    with pytest.raises(AppError, match=r"bomb.png has 900 megapixels; the limit is 40 megapixels. Downscale"):
        visitor.predict(handle_file(str(png_bomb(tmp_path / "bomb.png"))), "", "original", api_name="/generate")
    assert as_dict(visitor.predict(handle_file(PHOTO), api_name="/judge"))["backend"] == "embedded-judge"
    visitor.close()


def services_ask_error(text: str) -> gr.Error:
    with pytest.raises(gr.Error) as caught:
        Services.ask(text, "Why?")
    return caught.value


def test_judging_leaves_no_temporary_file_behind(server):
    services, demo = server
    visitor = Client(demo.local_url, verbose=False)
    video, *_ = visitor.predict(handle_file(PHOTO), "", "original", api_name="/generate")

    def loose_files():  # Gradio keeps uploads in folders of their own; a loose file is a leftover
        return sorted(p.name for p in services.files.uploads_root.iterdir() if p.is_file())

    before = loose_files()
    for _ in range(3):
        visitor.predict(handle_file(video), api_name="/judge")
    assert loose_files() == before
    visitor.close()


def test_spot_check_needs_a_key_and_is_off_on_a_public_space_without_one(tmp_path):
    open_space = SpotCheck(tmp_path / "a.sqlite", key=None, public=True)
    assert not open_space.enabled
    assert "switched off on this public Space" in open_space.next_item("eve", "")[4]
    assert "FACELAB\\_ANNOTATOR\\_KEY secret" in open_space.next_item("eve", "")[4]  # escaped for Markdown
    assert not open_space.submit("eve", "x" * 64, 50, 50, [], [], "", "r1")[1]
    demo = build_demo(Services(tmp_path / "out", spot=open_space))
    tabs = [b for b in demo.blocks.values() if isinstance(b, gr.Tab) and b.id == "spot"]
    assert tabs and not tabs[0].visible
    queue_rows = [b for b in demo.blocks.values() if isinstance(b, gr.Button) and b.elem_id == "create-queue"]
    assert queue_rows and not queue_rows[0].parent.visible

    keyed = SpotCheck(tmp_path / "b.sqlite", key="s3cret", public=True)
    assert keyed.enabled
    assert "annotator key" in keyed.next_item("ana", "wrong")[4]
    assert "nothing left to rate" in keyed.next_item("ana", "s3cret")[4]


def test_a_broken_ratings_store_leaves_creating_and_judging_working(tmp_path):
    corrupt = tmp_path / "annotations.sqlite"
    corrupt.write_bytes(os.urandom(4096))
    spot = SpotCheck(corrupt, key=None, public=False)
    services = Services(tmp_path / "out", spot=spot)
    demo = build_demo(services)  # checks the store at start, and starts anyway
    notices = [b for b in demo.blocks.values() if isinstance(b, gr.Markdown) and b.elem_id == "spot-problem"]
    assert notices and "Ratings are unavailable" in notices[0].value
    assert "Ratings are unavailable" in spot.next_item("ana", "")[4]
    video, *_, token = services.generate(PHOTO, progress=_quiet, **FAST)
    assert Path(video).is_file()
    assert services.queue_for_spotcheck(token).startswith("Not added: Ratings are unavailable")


def test_a_result_finished_after_the_browser_left_is_not_kept(tmp_path, monkeypatch):
    services = Services(tmp_path / "out")
    visitor = SimpleNamespace(session_hash="leaving")
    judge = services.judges.get()
    real_judge = judge.judge

    def judge_then_leave(clip):  # the tab closes while the turntable is being judged
        services.end_session(visitor)
        return real_judge(clip)

    monkeypatch.setattr(judge, "judge", judge_then_leave)
    with pytest.raises(gr.Error, match="session ended before the result was ready"):
        services.generate(PHOTO, request=visitor, progress=_quiet, **FAST)
    assert not services.files.folder("leaving").exists() and len(services.kept) == 0


def test_other_visitors_creating_never_take_away_a_visitors_result(tmp_path):
    from webapp.kept import KeptResults

    services = Services(tmp_path / "out", kept=KeptResults(budget_mb=150))  # about one creation in memory
    alice, bob, carol = (SimpleNamespace(session_hash=name) for name in ("alice", "bob", "carol"))
    *_, token = services.generate(PHOTO, "blue eyes", request=alice, progress=_quiet, **FAST)
    for other in (bob, carol):
        services.generate(PHOTO, "", request=other, progress=_quiet, **FAST)
    assert services.kept.in_memory() <= 150 * 2**20
    video, *_ = services.relight(token, "warm", request=alice, progress=_quiet)  # read back from her folder
    assert Path(video).is_file() and Path(video).is_relative_to(services.files.folder("alice"))
    with pytest.raises(gr.Error, match="not kept any more"):
        services.relight(token, "warm", request=bob, progress=_quiet)


def test_a_full_disk_is_a_message(tmp_path, monkeypatch):
    import face_nerf.pipeline

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "secret" / "path"))

    monkeypatch.setattr(face_nerf.pipeline, "write_outputs", full)
    services = Services(tmp_path / "out")
    with pytest.raises(gr.Error, match="disk is full") as caught:
        services.generate(PHOTO, progress=_quiet, **FAST)
    assert "secret" not in caught.value.message


def test_user_text_in_the_page_is_not_markup(tmp_path):
    services = Services(tmp_path / "out")
    video, *_, token = services.generate(PHOTO, progress=_quiet, **FAST)
    judgement, judged_token = services.judge_video(video, progress=_quiet)
    answer = services.ask_kept(judged_token, judgement, '<img src=x onerror=alert(1)> ![t](http://example.org/t.png)')
    assert "<img" not in answer and "![" not in answer and "cannot answer" in answer
    line = status_line({"backend": "<b>x</b>", "edit": {"summary": "<img src=y>"}})
    assert "<b>" not in line and "<img" not in line and "&lt;img src=y&gt;" in line


def _quiet(*args, **kwargs):
    return None
