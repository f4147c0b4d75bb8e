"""The page in a real browser (Playwright driving Debian's Chromium): upload an example photo, Generate,
wait for the video, mesh, strip and judge panel, ask the judge, and save a screenshot.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``; ``.ci/run`` installs it). The screenshot
goes to $FACELAB_SCREENSHOT (default: the test's temporary folder).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from webapp.page import build_demo, launch
from webapp.services import Services
from tests.conftest import EXAMPLES

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _chromium():
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("FACELAB_REQUIRE_BROWSER"):  # .ci/run sets it: there the test must run
        pytest.fail(f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`.")
    pytest.skip("needs Debian's chromium (`apt-get install -y chromium`; .ci/run installs it)")


def test_create_judge_and_ask_in_the_browser(tmp_path):
    from playwright.sync_api import sync_playwright

    from webapp.spotcheck import SpotCheck

    spot = SpotCheck(tmp_path / "ratings.sqlite", key=None, public=False)
    demo = build_demo(Services(tmp_path / "outputs", spot=spot))
    launch(demo, prevent_thread_lock=True, quiet=True)
    screenshot = Path(os.environ.get("FACELAB_SCREENSHOT", tmp_path / "browser.png"))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-background-networking", "--disable-component-update",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
            page = browser.new_page(viewport={"width": 1600, "height": 2400})
            page.goto(demo.local_url)
            page.locator("#photo input[type=file]").set_input_files(str(EXAMPLES["astronaut"]))
            page.locator("#prompt textarea").fill("red lipstick, blue eyes")
            page.get_by_role("button", name="Generate").click()
            page.locator("#turntable video").wait_for(timeout=120_000)
            page.locator("#create-summary").get_by_text("embedded-judge").wait_for(timeout=60_000)
            page.locator("#create-strip-heat img").wait_for(timeout=30_000)
            page.locator("#create-frame-heat img").wait_for(timeout=30_000)
            page.locator("#create-scores .js-plotly-plot, #create-scores .plot-container").first.wait_for(timeout=30_000)
            page.locator("#strip img").wait_for(timeout=30_000)
            assert "embedded-editor" in page.locator("#status").inner_text()
            page.locator("#create-question textarea").fill("Which region is worst?")
            page.locator("#create-ask").click()
            page.locator("#create-answer").get_by_text("badness").wait_for(timeout=30_000)
            assert spot.store.items() == []  # nothing is queued for annotators unless its maker asks
            page.locator("#create-queue").click()
            page.locator("#create-queued").get_by_text("Added to the spot-check queue").wait_for(timeout=30_000)
            assert len(spot.store.items()) == 1
            page.wait_for_timeout(1500)  # let the mesh viewer draw
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            browser.close()
        assert screenshot.stat().st_size > 50_000
    finally:
        demo.close()


def test_an_annotator_rates_ten_items_and_the_export_reimports_to_the_same_statistics(tmp_path):
    from playwright.sync_api import sync_playwright

    from face_nerf.export import write_video
    from judge.analytic import EmbeddedJudge
    from judge.annotations.report import agreement_stats, export_json, import_file
    from judge.annotations.store import AnnotationStore
    from bench.degrade import degrade
    from judge.frames import load_clip
    from webapp.spotcheck import SpotCheck

    from face_nerf.export import render_views, turntable_poses
    from face_nerf.pipeline import reconstruct

    frames, _ = render_views(reconstruct(EXAMPLES["astronaut"]).field, turntable_poses(12, 45.0), 128)
    judge, spot = EmbeddedJudge(), SpotCheck(tmp_path / "ratings.sqlite")
    for i in range(10):
        clip = frames if i == 0 else degrade(frames, ["noise", "blur", "jpeg", "exposure", "flicker"][i % 5], 1 + 2 * (i // 5), seed=i)
        video = tmp_path / f"item{i}.mp4"
        write_video(clip, video)
        spot.add(str(video), judge.judge(load_clip(video)), "import")
    assert len(spot.store.items()) == 10  # ten different videos, ten items
    demo = build_demo(Services(tmp_path / "outputs", spot=spot))
    (tmp_path / "outputs").mkdir(exist_ok=True)
    demo.queue().launch(prevent_thread_lock=True, allowed_paths=[str(tmp_path)], quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-background-networking", "--disable-component-update"])
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(demo.local_url)
            page.get_by_role("tab", name="Spot-check").click()
            page.locator("#annotator input, #annotator textarea").first.fill("ana")
            page.locator("#spot-start").click()
            for i in range(10):
                page.locator("#spot-progress").get_by_text(f"item {i + 1} of 10").wait_for(timeout=30_000)
                page.locator("#spot-strip img").click(position={"x": 40 + 10 * i, "y": 60})
                page.locator("#spot-quality input[type=number]").fill(str(90 - 7 * i))
                page.locator("#spot-authenticity input[type=number]").fill(str(80 - 5 * i))
                page.locator("#spot-categories").get_by_label("Blurring/Exposure/Grain").check()
                page.locator("#spot-comment textarea, #spot-comment input").first.fill(f"item {i}")
                page.locator("#spot-comment textarea, #spot-comment input").first.press("Enter")
                page.locator("#spot-verdict").get_by_text("Saved.").wait_for(timeout=30_000)
            page.locator("#spot-progress").get_by_text("nothing left to rate (10 rated)").wait_for(timeout=30_000)
            browser.close()
    finally:
        demo.close()
    store = spot.store
    ratings = store.ratings()
    assert len(ratings) == 10 and {r.annotator for r in ratings} == {"ana"}
    assert all(r.clicks and r.categories == ["Blurring/Exposure/Grain"] for r in ratings)
    assert sorted(r.quality for r in ratings) == sorted(float(90 - 7 * i) for i in range(10))
    before = agreement_stats(store, resamples=200)
    export_json(store, tmp_path / "export.json")
    with AnnotationStore(tmp_path / "fresh.sqlite") as fresh:
        assert import_file(fresh, tmp_path / "export.json") == 10
        after = agreement_stats(fresh, resamples=200)
    for dim in ("quality", "authenticity"):
        assert after[dim]["srcc"] == before[dim]["srcc"] and after[dim]["plcc"] == before[dim]["plcc"]
        assert after[dim]["krcc"] == before[dim]["krcc"]
