"""The example photos' prepared results: made once, shown at once, relit and compared like a creation,
never swept, and made again cleanly at the next start."""

from __future__ import annotations

import os
import time

import gradio as gr
import numpy as np
import pytest

from tests.conftest import EXAMPLES
from webapp.examples import ExampleRef
from webapp.services import Services


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    services = Services(tmp_path_factory.mktemp("out") / "sessions", max_age_s=60)
    services.prepare_examples([str(EXAMPLES["astronaut"])])
    return services


def _quiet(*args, **kwargs):
    return None


def test_an_example_is_shown_from_its_prepared_files(services):
    shown = services.show_example("/any/cache/folder/astronaut.png")
    video, mesh, strip, judgement, token = shown
    example = services.examples.get("astronaut.png")
    assert (video, mesh, strip) == (example.video, example.mesh, example.strip)
    assert judgement["backend"] == "embedded-judge" and judgement == example.judgement
    assert all(os.path.isfile(p) for p in (video, mesh, strip, *example.files, *example.overlays))
    assert services.show_example("/uploads/someone.png") is None and services.examples.get(None) is None
    assert isinstance(services.kept.get("local", token), ExampleRef)  # the session keeps a reference, not a copy
    assert services.judged(token) is example.judged


def test_an_example_relights_and_compares_like_a_creation(services):
    *_, token = services.show_example("astronaut.png")
    video, _, _, judgement, relit = services.relight(token, "warm", progress=_quiet)
    assert services.result(relit).outputs.lighting.name == "warm" and judgement["face_found"]
    assert services.examples.result("astronaut.png").outputs.lighting.name == "original"  # the shared one is unchanged
    image, (before, after) = services.compare(token, "two lighting presets", "cool")
    assert image.shape[1] > 2 * before.shape[1] and not np.array_equal(before, after)


def test_the_sweep_keeps_the_examples(services):
    example = services.examples.get("astronaut.png")
    old = time.time() - 3600
    for path in services.examples.folder.rglob("*"):
        os.utime(path, (old, old))
    services.sweep()
    assert os.path.isfile(example.video) and os.path.isfile(example.overlays[0])


def test_preparing_again_replaces_the_last_starts_files(services):
    first = services.examples.get("astronaut.png")
    services.prepare_examples([str(EXAMPLES["astronaut"])])  # a restart over the same folder
    again = services.examples.get("astronaut.png")
    assert again.video == first.video and os.path.isfile(again.video)


def test_an_unknown_example_token_is_refused_for_another_session(services):
    *_, token = services.show_example("astronaut.png")
    with pytest.raises(gr.Error, match="not kept any more"):
        services.result(token, type("R", (), {"session_hash": "someone-else"})())
