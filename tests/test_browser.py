"""The page in a real browser (Playwright driving Debian's Chromium), journey by journey: create with a
prompt and a preset, relight and compare; judge three clips ranked; spot-check ten items with the
keyboard alone; four kinds of bad input. Screenshots at 1600x1000, 1280x720 (a projector) and 390x844
(a phone) go to $FACELAB_SCREENSHOTS (``.ci/run`` keeps them as CI artefacts; default: a temporary
folder).

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import EXAMPLES
from webapp.page import build_demo, launch
from webapp.services import Services

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SIZES = {"desktop": (1600, 1000), "projector": (1280, 720), "phone": (390, 844)}
pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _chromium():
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("FACELAB_REQUIRE_BROWSER"):  # .ci/run sets it: there the test must run
        pytest.fail(f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`.")
    pytest.skip("needs Debian's chromium (`apt-get install -y chromium`; .ci/run installs it)")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Twelve small turntables of the astronaut, clean and degraded, as mp4 files."""
    from bench.degrade import degrade
    from face_nerf.export import render_views, turntable_poses, write_video
    from face_nerf.pipeline import reconstruct

    folder = tmp_path_factory.mktemp("clips")
    frames, _ = render_views(reconstruct(EXAMPLES["astronaut"]).field, turntable_poses(12, 45.0), 128)
    paths = []
    for i in range(12):
        clip = frames if i == 0 else degrade(frames, ["noise", "blur", "jpeg", "exposure", "flicker"][i % 5],
                                             1 + 2 * (i // 6), seed=i)
        paths.append(folder / f"item{i}.mp4")
        write_video(clip, paths[-1])
    return paths


@pytest.fixture(scope="module")
def app(tmp_path_factory, clips):
    """The running app (examples prepared, as at start), its services and ten items to rate."""
    from judge.analytic import EmbeddedJudge
    from judge.frames import load_clip
    from webapp.create_tab import EXAMPLES as EXAMPLE_PHOTOS
    from webapp.spotcheck import SpotCheck

    root = tmp_path_factory.mktemp("app")
    spot = SpotCheck(root / "ratings.sqlite", key=None, public=False)
    judge = EmbeddedJudge()
    for path in clips[:10]:
        spot.add(str(path), judge.judge(load_clip(path)), "import")
    services = Services(root / "outputs", spot=spot)
    services.prepare_examples(EXAMPLE_PHOTOS)
    demo = build_demo(services)
    launch(demo, prevent_thread_lock=True, quiet=True)
    yield demo, services
    demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update",
            "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
        yield chromium
        chromium.close()


def screenshot(page, name: str) -> Path:
    folder = Path(os.environ.get("FACELAB_SCREENSHOTS", "") or page.context.tmp_folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def open_page(browser, app, size: str, tmp_path, query: str = ""):
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    context.tmp_folder = tmp_path
    page = context.new_page()
    page.goto(app[0].local_url + query)
    return page


def in_view(page, selector: str) -> bool:
    """Whether the element lies wholly inside the viewport, as the page is scrolled now."""
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] and box["x"] >= 0 \
        and box["x"] + box["width"] <= size["width"]


def mesh_link(page) -> str:
    """The address of the mesh the 3D viewer shows (its download link)."""
    return page.locator("#mesh a[download]").first.get_attribute("href")


def no_error_badges(page) -> None:
    """Failed actions leave no "Error" badge on any panel: problems are said in the message lines."""
    badges = page.locator(".wrap.error, .error-badge, span.error")
    assert badges.count() == 0 or not any(badges.nth(i).is_visible() for i in range(badges.count()))


def test_create_with_a_prompt_and_a_preset_then_relight_and_compare(browser, app, tmp_path):
    page = open_page(browser, app, "projector", tmp_path)
    page.locator("#turntable video").wait_for(timeout=60_000)  # the first example's result, before any click
    assert "Example result for astronaut.png" in page.locator("#status").inner_text()
    for selector in ("#photo", "#prompt", "#lighting", "#generate"):  # everything needed, without scrolling
        assert in_view(page, selector), selector
    screenshot(page, "create-1280x720-start")
    example_video = page.locator("#turntable video").get_attribute("src")
    page.locator("#mesh canvas").wait_for(timeout=30_000)  # the example's mesh
    example_mesh = mesh_link(page)
    page.evaluate("document.querySelector('#mesh canvas').dataset.kept = 'yes'")
    page.locator("#prompt textarea").type("red lipstick, blue eyes")
    page.locator("#prompt-count").get_by_text("23 / 300").wait_for(timeout=10_000)
    page.locator("#lighting input").fill("studio")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="3 · Generate").click()
    page.get_by_role("button", name="Generating…").wait_for(timeout=10_000)  # the button says it is busy
    page.wait_for_function("(old) => { const v = document.querySelector('#turntable video'); "
                           "return v && v.getAttribute('src') !== old; }", arg=example_video, timeout=60_000)
    assert in_view(page, "#turntable video")  # the result is in sight
    page.locator("#status").get_by_text("Made from your photo").wait_for(timeout=60_000)
    status = page.locator("#status").inner_text()
    assert "red lipstick" in status and "studio light" in status and "offline judge" in status
    assert "embedded-editor" not in status  # raw backend names only in the details line
    page.locator("#status summary").click()
    assert "embedded-editor" in page.locator("#status").inner_text()
    page.get_by_role("button", name="3 · Generate").wait_for(timeout=30_000)  # not busy any more
    page.locator("#create-strip-heat img").wait_for(state="attached", timeout=30_000)
    page.locator("#mesh canvas").wait_for(timeout=30_000)
    assert page.locator("#mesh").bounding_box()["height"] >= 450  # a large 3D viewer
    # The new mesh went into the viewer that was there (a new viewer starts its WebGL from nothing).
    assert mesh_link(page) != example_mesh and "examples" not in mesh_link(page)
    assert page.evaluate("document.querySelector('#mesh canvas').dataset.kept") == "yes"
    screenshot(page, "create-1280x720-result")

    page.locator("#create-question textarea").fill("Which region is worst?")
    page.locator("#create-ask").click()
    page.locator("#create-answer").get_by_text("badness").wait_for(timeout=30_000)

    before = page.locator("#turntable video").get_attribute("src")
    page.locator("#lighting input").fill("warm")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Relight").click()
    page.wait_for_function("(old) => document.querySelector('#turntable video')?.getAttribute('src') !== old",
                           arg=before, timeout=60_000)
    page.locator("#status").get_by_text("warm light").wait_for(timeout=60_000)
    assert page.locator("#create-answer").inner_text().strip() == ""  # old answers go with the old judgement

    page.get_by_text("Compare", exact=True).first.click()
    page.locator("#compare").click()
    page.locator("#compare-image img").wait_for(timeout=60_000)
    image = page.locator("#compare-image img").bounding_box()
    assert image["width"] > 1.5 * image["height"]  # side by side, not stacked
    page.locator("#compare-slider img").first.wait_for(timeout=30_000)
    no_error_badges(page)
    screenshot(page, "create-1280x720-compare")


def test_an_example_shows_at_once_and_the_page_reads_at_three_sizes(browser, app, tmp_path):
    for size in SIZES:
        page = open_page(browser, app, size, tmp_path)
        page.locator("#turntable video").wait_for(timeout=60_000)
        if size == "phone":
            page.locator("#create-scores .js-plotly-plot").first.scroll_into_view_if_needed()
            inside = page.locator("#create-scores").evaluate("""(plot) => {
                const box = plot.getBoundingClientRect();
                const tick = [...plot.querySelectorAll('.ytick text')].find(t => t.textContent === 'Authenticity');
                const r = tick && tick.getBoundingClientRect();
                return !!r && r.left >= box.left && r.right <= box.right; }""")
            assert inside  # the label is whole, not clipped to "uthenticity"
            assert page.locator("#create-question").bounding_box()["width"] >= 300  # the ask box is usable
        screenshot(page, f"create-{SIZES[size][0]}x{SIZES[size][1]}")
        page.close()
    page = open_page(browser, app, "desktop", tmp_path)
    page.locator("#turntable video").wait_for(timeout=60_000)
    shown = page.locator("#turntable video").get_attribute("src")
    page.locator("#example-photos").get_by_role("button").nth(1).click()  # grace_hopper's prepared result
    page.locator("#status").get_by_text("Example result for grace_hopper.jpg").wait_for(timeout=10_000)
    page.wait_for_function("(old) => document.querySelector('#turntable video')?.getAttribute('src') !== old", arg=shown)
    page.wait_for_function("() => document.querySelector('#photo img')?.src.includes('grace_hopper')")  # and the photo
    page.close()


def test_judge_three_clips_ranked(browser, app, clips, tmp_path):
    page = open_page(browser, app, "desktop", tmp_path)
    page.get_by_role("tab", name="Judge").click()
    page.locator("#judge-upload input[type=file]").set_input_files([str(p) for p in (clips[0], clips[7], clips[8])])
    page.locator("#judge-upload", has_text="item8").wait_for(timeout=30_000)
    page.locator("#judge-button").click()
    page.locator("#judge-ranking").get_by_text("item7.mp4").wait_for(timeout=120_000)
    rows = re.findall(r"(\d+)\s+(item\d+\.mp4)\s+(\d+) \(\w+\)\s+(\d+) \(\w+\)",
                      page.locator("#judge-ranking").inner_text())
    assert [int(r[0]) for r in rows] == [1, 2, 3] and {r[1] for r in rows} == {"item0.mp4", "item7.mp4", "item8.mp4"}
    assert page.locator("#judge-ranking").inner_text().count("none found") == 3  # rendered here, but not marked
    means = [(int(q) + int(a)) / 2 for _, _, q, a in rows]
    assert means == sorted(means, reverse=True)  # best first, by the mean of both scores
    assert page.locator("#judge-gallery img").count() >= 3  # strip heatmaps side by side
    page.locator("#judge-video video").wait_for(timeout=30_000)  # the first-ranked clip plays
    page.locator("#judge-summary").get_by_text("Quality").wait_for(timeout=30_000)
    no_error_badges(page)
    screenshot(page, "judge-1600x1000-ranked")


def test_an_annotator_rates_ten_items_with_the_keyboard_alone(browser, app, tmp_path):
    from judge.annotations.report import agreement_stats, export_json, import_file
    from judge.annotations.store import AnnotationStore

    page = open_page(browser, app, "projector", tmp_path, "?tab=spot")
    page.locator("#annotator input, #annotator textarea").first.wait_for(timeout=30_000)
    page.wait_for_function("document.activeElement && document.activeElement.closest('#annotator')", timeout=10_000)
    page.keyboard.type("ana")
    page.keyboard.press("Enter")
    for i in range(10):
        page.locator("#spot-progress").get_by_text(f"item {i + 1} of 10").wait_for(timeout=30_000)
        if i == 0:
            for selector in ("#spot-quality", "#spot-authenticity", "#spot-categories", "#spot-submit"):
                assert in_view(page, selector), selector  # the whole form on one 1280x720 screen
            screenshot(page, "spot-check-1280x720")
        page.keyboard.press(str(1 + i % 5))  # quality band
        page.keyboard.press(f"Shift+Digit{5 - i % 5}")  # authenticity band
        page.keyboard.press("b")  # Blurring/Exposure/Grain
        page.keyboard.press("Enter")
        page.locator("#spot-verdict").get_by_text(f"Saved item{i}.mp4").wait_for(timeout=30_000)  # names its item
    page.locator("#spot-progress").get_by_text("nothing left to rate (10 rated").wait_for(timeout=30_000)
    assert "items/hour" in page.locator("#spot-progress").inner_text()
    store = app[1].spot.store
    ratings = sorted(store.ratings(), key=lambda r: r.created)
    assert len(ratings) == 10 and {r.annotator for r in ratings} == {"ana"}
    assert [r.quality for r in ratings] == [float(10 + 20 * (i % 5)) for i in range(10)]
    assert [r.authenticity for r in ratings] == [float(10 + 20 * (4 - i % 5)) for i in range(10)]
    assert all(r.categories == ["Blurring/Exposure/Grain"] for r in ratings)
    before = agreement_stats(store, resamples=200)
    export_json(store, tmp_path / "export.json")
    with AnnotationStore(tmp_path / "fresh.sqlite") as fresh:  # an export re-imports to the same statistics
        assert import_file(fresh, tmp_path / "export.json") == 10
        after = agreement_stats(fresh, resamples=200)
    for dim in ("quality", "authenticity"):
        assert np.isfinite(before[dim]["srcc"])
        assert [after[dim][k] for k in ("srcc", "plcc", "krcc")] == [before[dim][k] for k in ("srcc", "plcc", "krcc")]


def test_four_kinds_of_bad_input_get_a_message_and_leave_the_panels_clean(browser, app, tmp_path):
    from PIL import Image

    text = tmp_path / "notes.jpg"
    text.write_text("not really a jpeg")
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((240, 240, 3), 180, np.uint8)).save(blank)
    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))

    page = open_page(browser, app, "projector", tmp_path)
    page.locator("#turntable video").wait_for(timeout=60_000)
    # 1. a text file renamed .jpg: said on upload, and taken out of the input
    page.locator("#photo input[type=file]").set_input_files(str(text))
    page.locator("#message").get_by_text("notes.jpg is not an image that can be read").wait_for(timeout=30_000)
    # 2. a prompt over the limit: the counter says so as it is typed, Generate says it again, nothing is cut
    page.locator("#photo input[type=file]").set_input_files(str(EXAMPLES["astronaut"]))
    page.locator("#message").get_by_text("not an image").wait_for(state="detached", timeout=30_000)
    prompt = "older " * 67  # 402 characters
    page.locator("#prompt textarea").fill(prompt)
    page.locator("#prompt textarea").press("End")
    page.keyboard.type(" ")
    page.locator("#prompt-count").get_by_text("shorten it by").wait_for(timeout=10_000)
    assert page.locator("#prompt textarea").input_value() == prompt + " "  # not silently cut
    page.get_by_role("button", name="3 · Generate").click()
    page.locator("#message").get_by_text("keep it under 300").wait_for(timeout=60_000)
    assert prompt not in page.locator("#message").inner_text()  # the message does not repeat the prompt
    # 3. a photo of the visitor's own without the consent box ticked, then with it: a photo with no face
    page.locator("#prompt textarea").fill("")
    page.locator("#photo input[type=file]").set_input_files(str(blank))
    page.get_by_role("button", name="3 · Generate").wait_for(timeout=30_000)
    page.get_by_role("button", name="3 · Generate").click()
    page.locator("#message").get_by_text("Tick the box that you have the right").wait_for(timeout=60_000)
    no_error_badges(page)
    page.locator("#consent input[type=checkbox]").check()
    page.get_by_role("button", name="3 · Generate").click()
    page.locator("#message").get_by_text("No face found").wait_for(timeout=60_000)
    no_error_badges(page)
    screenshot(page, "bad-input-1280x720")
    # 4. a corrupt video in the Judge tab
    page.get_by_role("tab", name="Judge").click()
    page.locator("#judge-upload input[type=file]").set_input_files(str(corrupt))
    page.locator("#judge-upload", has_text="broken").wait_for(timeout=30_000)
    page.locator("#judge-button").click()
    page.locator("#judge-message").get_by_text("broken.mp4").wait_for(timeout=60_000)
    no_error_badges(page)
