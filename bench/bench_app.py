"""The running app under load: one Generate's latency, twenty requests at once, the server's memory
before and after, and bad inputs followed by a good request. Starts `python app.py` itself.

Usage: python bench/bench_app.py [--requests 20] [--port 7871]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from common import ROOT

EXAMPLE = ROOT / "assets" / "examples" / "astronaut.png"


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(port: int, outputs: Path, env: dict | None = None, wait_s: float = 120.0) -> subprocess.Popen:
    """`python app.py` on ``port`` with its outputs under ``outputs`` (``env``: more environment), once it
    serves (it makes the example results at start)."""
    import urllib.request

    env = dict(os.environ, PORT=str(port), FACELAB_OUTPUTS=str(outputs), GRADIO_ANALYTICS_ENABLED="False", **(env or {}))
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.perf_counter() + wait_s
    while time.perf_counter() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"the app did not come up within {wait_s:.0f} s")


def bad_inputs(tmp: Path) -> dict[str, Path | str]:
    from PIL import Image

    text = tmp / "notes.jpg"
    text.write_text("this is a text file, not a photo")
    blank = tmp / "no_face.png"
    Image.new("RGB", (640, 480), (120, 160, 200)).save(blank)
    huge = tmp / "huge.jpg"
    Image.new("RGB", (9000, 6700), (128, 128, 128)).save(huge, quality=30)  # 60 megapixels
    return {"text file renamed .jpg": text, "photo with no face": blank, "60-megapixel photo": huge,
            "30000x30000 PNG bomb": png_bomb(tmp / "bomb.png"), "2,000-character prompt": "older " * 333 + "xx",
            "whitespace-only prompt (is no prompt)": "\t "}


def png_bomb(path: Path, side: int = 30000) -> Path:
    """A PNG whose header says side x side pixels (a few hundred bytes on disk)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\0" * (1 + side // 8) * 64)  # the first rows of a 1-bit image; the rest is missing
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--port", type=int, default=7871)
    args = parser.parse_args()

    from gradio_client import Client, handle_file

    tmp = Path(tempfile.mkdtemp())
    server = start_server(args.port, tmp / "outputs")
    url = f"http://127.0.0.1:{args.port}/"
    try:
        started = rss_mb(server.pid)
        print(f"server up (models loaded at start); RSS {started:.0f} MB before any request")
        client = Client(url, verbose=False)
        start = time.perf_counter()
        client.predict(handle_file(str(EXAMPLE)), "red lipstick", "studio", api_name="/generate")
        print(f"first Generate (example photo, prompt, preset; loads models): {time.perf_counter() - start:.1f} s")
        first = rss_mb(server.pid)
        print(f"RSS after the first request: {first:.0f} MB")
        start = time.perf_counter()
        client.predict(handle_file(str(EXAMPLE)), "older, with a grey beard and blue eyes", "warm", api_name="/generate")
        print(f"second Generate: {time.perf_counter() - start:.1f} s")
        base = rss_mb(server.pid)
        print(f"RSS after warm-up: {base:.0f} MB")

        def one(i: int):
            c = Client(url, verbose=False)
            t = time.perf_counter()
            video, glb, strip, judgement = c.predict(handle_file(str(EXAMPLE)), ["blue eyes", "", "smile"][i % 3],
                                                     ["original", "left", "cool"][i % 3], api_name="/generate")
            ok = str(video).endswith(".mp4") and str(glb).endswith(".glb") and judgement["face_found"]
            return ok, time.perf_counter() - t

        start = time.perf_counter()
        with ThreadPoolExecutor(args.requests) as pool:
            outcomes = list(pool.map(one, range(args.requests)))
        waits = np.array([t for _, t in outcomes])
        print(f"{args.requests} requests at once: {sum(ok for ok, _ in outcomes)}/{args.requests} correct in "
              f"{time.perf_counter() - start:.0f} s (each {waits.min():.0f}-{waits.max():.0f} s incl. queueing); "
              f"server alive: {server.poll() is None}; RSS peak-ish now {rss_mb(server.pid):.0f} MB")
        time.sleep(5)
        after = rss_mb(server.pid)
        print(f"RSS 5 s later: {after:.0f} MB ({after - first:+.0f} MB from after the first request, "
              f"{after - base:+.0f} MB from after warm-up, {after - started:+.0f} MB from start; each session's "
              f"result is kept, at most 256 MB of them in memory and the rest in the sessions' folders)")

        for name, value in bad_inputs(tmp).items():
            photo, prompt = (EXAMPLE, value) if isinstance(value, str) else (value, "")
            try:
                client.predict(handle_file(str(photo)), prompt, "original", api_name="/generate")
                print(f"{name}: made a result" + ("" if "whitespace" in name else " (unexpected)"))
            except Exception as err:  # gradio_client raises AppError with the page's message
                print(f"{name}: {str(err).splitlines()[0][:160]}")
        video, *_ = client.predict(handle_file(str(EXAMPLE)), "", "original", api_name="/generate")
        print(f"next request after the bad ones: {'ok' if str(video).endswith('.mp4') else 'FAILED'}; "
              f"server alive: {server.poll() is None}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
