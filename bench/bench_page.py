"""The page as a visitor meets it, and the app on a busy host.

1. Start-up: `python app.py` until it serves (the example results are made at start).
2. Streaming through the API: /generate (example photo, 256 px, 48 frames) until its first step (the
   video), its mesh step and its last step (the judgement).
3. In Chromium (when installed): clicking an example until its result shows; pressing Generate until the
   new turntable is visible and until the judge panel is. Each click comes 2 s after the last result
   showed (the first 4 s after the page opened), as a visitor looks before clicking. Chromium renders the page (and the 3D viewer,
   in software) on the same 2 cores as the server, so these include its share.
4. Under load: with two CPU-bound processes beside it, Generate through the API and the command line
   (`python -m face_nerf reconstruct`), against idle, with the OpenMP threads sleeping while they wait
   (OMP_WAIT_POLICY=PASSIVE, as shipped) and spinning (ACTIVE, the default before).

Usage: python bench/bench_page.py [--port 7872] [--runs 3] [--no-browser] [--no-load]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import bench_app
from common import ROOT

EXAMPLE = ROOT / "assets" / "examples" / "astronaut.png"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SETTLE_S = 2.0  # seconds between a result showing and the next click


def start_server(port: int, outputs: Path, env: dict | None = None) -> tuple[subprocess.Popen, float]:
    """``bench_app.start_server``, and the seconds until it served."""
    start = time.perf_counter()
    server = bench_app.start_server(port, outputs, env)
    return server, time.perf_counter() - start


def streamed_generate(url: str, prompt: str = "red lipstick") -> list[float]:
    """Seconds from submitting /generate until each of its streamed steps."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    start = time.perf_counter()
    job = client.submit(handle_file(str(EXAMPLE)), prompt, "studio", api_name="/generate")
    times, seen = [], 0
    while not job.done() or len(job.outputs()) > seen:
        if len(job.outputs()) > seen:
            seen += 1
            times.append(time.perf_counter() - start)
        time.sleep(0.02)
    job.result()
    return times


def in_browser(url: str, runs: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        start = time.perf_counter()
        page.goto(url)
        page.locator("#turntable video").wait_for(timeout=60_000)
        print(f"page open until the first example's result shows: {time.perf_counter() - start:.2f} s")
        time.sleep(2 * SETTLE_S)  # the page draws the rest (mesh, charts); a visitor looks before clicking
        shown, playable = [], []
        for i in range(2 * runs):
            time.sleep(SETTLE_S)
            name = ("grace_hopper.jpg", "astronaut.png")[i % 2]
            start = time.perf_counter()
            page.locator("#example-photos").get_by_role("button").nth(1 - i % 2).click()
            page.locator("#status").get_by_text(f"Example result for {name}").wait_for(timeout=30_000)
            page.wait_for_function(f"() => document.querySelector('#turntable video')?.src.includes('examples/{Path(name).stem}/')",
                                   timeout=30_000)
            shown.append(time.perf_counter() - start)
            page.wait_for_function("() => document.querySelector('#turntable video')?.readyState >= 2", timeout=30_000)
            playable.append(time.perf_counter() - start)
        print(f"example click until its result shows (status and video in place): {fmt(shown)}; until the video "
              f"plays: {fmt(playable)}")
        videos, panels = [], []
        for i in range(runs):
            time.sleep(SETTLE_S)
            old_video = page.locator("#turntable video").get_attribute("src")
            old_panel = page.locator("#create-summary").inner_text()
            page.locator("#prompt textarea").fill(["blue eyes", "red lipstick", "smile"][i % 3])
            start = time.perf_counter()
            page.get_by_role("button", name="3 · Generate").click()
            page.wait_for_function("(old) => { const v = document.querySelector('#turntable video');"
                                   " return v && v.getAttribute('src') !== old && v.readyState >= 2; }",
                                   arg=old_video, timeout=120_000)
            videos.append(time.perf_counter() - start)
            page.wait_for_function("(old) => { const t = document.querySelector('#create-summary')?.innerText;"
                                   " return t && t.includes('Quality') && t !== old; }", arg=old_panel, timeout=120_000)
            panels.append(time.perf_counter() - start - videos[-1])
            page.get_by_role("button", name="3 · Generate").wait_for(timeout=60_000)
        print(f"Generate (256 px, 48 frames) until the turntable plays: {fmt(videos)}; then the judge panel: "
              f"{fmt(panels)} later")
        browser.close()


def busy(seconds: float) -> None:
    end = time.time() + seconds
    while time.time() < end:
        pass


def reconstruct_cli(out: Path, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "face_nerf", "reconstruct", str(EXAMPLE), "--out", str(out), "--quiet"],
                   cwd=ROOT, env=dict(os.environ, **env), check=True, capture_output=True)
    return time.perf_counter() - start


def under_load(port: int, tmp: Path, runs: int) -> None:
    for policy in ("PASSIVE", "ACTIVE"):
        env = {"OMP_WAIT_POLICY": policy, "FACELAB_EXAMPLES": "0"}
        server, _ = start_server(port, tmp / f"outputs-{policy}", env)
        url = f"http://127.0.0.1:{port}/"
        try:
            streamed_generate(url)  # warm
            idle = [streamed_generate(url)[-1] for _ in range(runs)]
            cli_idle = [reconstruct_cli(tmp / f"cli-{policy}-idle-{i}", env) for i in range(runs)]
            hogs = [multiprocessing.Process(target=busy, args=(3600,)) for _ in range(2)]
            for hog in hogs:
                hog.start()
            try:
                loaded = [streamed_generate(url)[-1] for _ in range(runs)]
                cli_loaded = [reconstruct_cli(tmp / f"cli-{policy}-load-{i}", env) for i in range(runs)]
            finally:
                for hog in hogs:
                    hog.terminate()
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"OMP_WAIT_POLICY={policy}: app Generate idle {fmt(idle)}, beside two CPU-bound processes "
              f"{fmt(loaded)} ({np.median(loaded) / np.median(idle):.1f}x); command line idle {fmt(cli_idle)}, "
              f"loaded {fmt(cli_loaded)} ({np.median(cli_loaded) / np.median(cli_idle):.1f}x)")


def fmt(values: list[float]) -> str:
    return f"median {np.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=7872)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--no-load", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    print(f"{os.cpu_count()} CPUs; torch threads as the app sets them")
    server, seconds = start_server(args.port, tmp / "outputs")
    url = f"http://127.0.0.1:{args.port}/"
    try:
        print(f"start-up until the page is served (example results made at start): {seconds:.1f} s")
        streamed_generate(url)  # the first request after start
        steps = np.array([streamed_generate(url, p) for p in ("blue eyes", "red lipstick", "smile")[:args.runs]])
        video, mesh, judged = np.median(steps, 0)
        print(f"/generate through the API (256 px, 48 frames): video after {video:.2f} s, mesh after {mesh:.2f} s, "
              f"judgement after {judged:.2f} s ({judged - video:.2f} s after the video); streamed steps: {steps.shape[1]}")
        if not args.no_browser and Path(CHROMIUM).exists():
            in_browser(url, args.runs)
    finally:
        server.terminate()
        server.wait(timeout=30)
    if not args.no_load:
        under_load(args.port, tmp, args.runs)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
