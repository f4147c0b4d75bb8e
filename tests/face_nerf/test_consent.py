"""Consent: required for any photo but the shipped examples, with a message that says what to do."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from face_nerf.consent import ConsentError, check_consent, is_example_photo
from tests.conftest import EXAMPLES, ROOT


@pytest.fixture
def own_photo(tmp_path):
    """A photo that is not one of the examples (the same face, other bytes)."""
    path = tmp_path / "me.jpg"
    Image.open(EXAMPLES["astronaut"]).convert("RGB").save(path, quality=90)
    return path


def test_example_photos_need_no_confirmation(tmp_path):
    for photo in EXAMPLES.values():
        assert is_example_photo(photo) and check_consent(photo, False, "ui") == "example"
    copy = tmp_path / "renamed.png"
    copy.write_bytes(EXAMPLES["astronaut"].read_bytes())  # an upload is a copy: its bytes decide
    assert check_consent(copy, False, "api") == "example"


@pytest.mark.parametrize("how, fix", [("ui", "Tick the box"), ("api", "consent=True"), ("cli", "--i-have-consent")])
def test_other_photos_are_refused_without_consent(own_photo, how, fix):
    assert not is_example_photo(own_photo)
    with pytest.raises(ConsentError, match="impersonate") as refused:
        check_consent(own_photo, False, how)
    assert fix in str(refused.value)
    assert check_consent(own_photo, True, how) == how
    assert not is_example_photo(own_photo.parent / "missing.jpg")


def test_command_line_refuses_before_any_work(own_photo, tmp_path):
    run = subprocess.run([sys.executable, "-m", "face_nerf", "reconstruct", str(own_photo), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert run.returncode == 2 and "--i-have-consent" in run.stderr
    assert not (tmp_path / "o").exists()
