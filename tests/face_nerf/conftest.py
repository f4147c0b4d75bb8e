"""The head template and its landmark correspondence, built once per test module into its own cache
(for the head model's tests and the appearance tests)."""

from __future__ import annotations

import pytest

from face_nerf.head import load_head_template, load_landmark_correspondence


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("facelab-cache")


@pytest.fixture(scope="module")
def head(cache_dir):
    return load_head_template(cache_dir)


@pytest.fixture(scope="module")
def corr(cache_dir, head):
    return load_landmark_correspondence(cache_dir)
