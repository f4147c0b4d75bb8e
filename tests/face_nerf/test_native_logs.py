"""mediapipe's native log lines are kept off standard error, and nothing else is."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import os, sys
from face_nerf.native_logs import quiet_native_logs
with quiet_native_logs():
    os.write(2, b"native-noise\\n")
    with quiet_native_logs():  # nested, as graphs of two threads may overlap
        os.write(2, b"more-noise\\n")
    os.write(2, b"still-quiet\\n")
os.write(2, b"after\\n")
sys.stderr.write("python-after\\n")
"""


def test_native_writes_inside_are_dropped_and_standard_error_comes_back():
    run = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0
    assert "noise" not in run.stderr and "still-quiet" not in run.stderr
    assert "after" in run.stderr and "python-after" in run.stderr


def test_the_lines_show_when_asked_for():
    run = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60,
                         env={**__import__("os").environ, "FACELAB_NATIVE_LOGS": "1"})
    assert "native-noise" in run.stderr and "more-noise" in run.stderr


def test_analysing_a_photo_prints_no_native_lines():
    code = ("from face_nerf.landmarks import analyse_face\nfrom face_nerf.photo import load_photo\n"
            "analyse_face(load_photo('assets/examples/astronaut.png').rgb)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "XNNPACK" not in run.stderr and "W0000" not in run.stderr and "absl" not in run.stderr
