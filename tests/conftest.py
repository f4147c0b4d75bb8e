"""Shared fixtures: the example photos and one reconstruction per photo, reused across tests; the shared
real-world material, when it is there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {p.stem: p for p in sorted((ROOT / "assets" / "examples").glob("*.*"))}
SHARED = ROOT / ".." / "shared" / "realworld"


def shared_realworld() -> Path:
    """The shared real-world photos and clips (a sibling of the repository; never copied into it). A test
    that reads them is skipped when they are absent, and fails instead when FACELAB_REQUIRE_SHARED=1
    (.ci/run sets it)."""
    if not SHARED.is_dir():
        reason = f"the shared real-world material is not at {SHARED.resolve()}"
        if os.environ.get("FACELAB_REQUIRE_SHARED") == "1":
            pytest.fail(f"{reason}, and FACELAB_REQUIRE_SHARED=1 requires it")
        pytest.skip(reason)
    return SHARED


@pytest.fixture(autouse=True, scope="session")
def _cpu_threads():
    torch.set_num_threads(2)


@pytest.fixture(autouse=True, scope="session")
def _data_folder(tmp_path_factory):
    """The data folder (the generated signing key, audit logs) of the test session's own, never ./data."""
    os.environ["FACELAB_DATA"] = str(tmp_path_factory.mktemp("facelab-data"))
    yield
    os.environ.pop("FACELAB_DATA", None)


@pytest.fixture(scope="session", params=sorted(EXAMPLES))
def example_run(request, tmp_path_factory):
    """(name, photo path, output folder, Reconstruction, Outputs) for each example photo, default settings."""
    from face_nerf.pipeline import ReconstructionConfig, reconstruct, render_outputs, write_outputs

    config = ReconstructionConfig()
    recon = reconstruct(EXAMPLES[request.param], config)
    outputs = render_outputs(recon, config)
    out = write_outputs(recon, outputs, tmp_path_factory.mktemp(request.param) / "run", config.fps)
    return request.param, EXAMPLES[request.param], out, recon, outputs


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny random Qwen2.5-VL checkpoint (2 layers, hidden size 64, a 2-block vision tower, a tokenizer
    trained here, the real Qwen2-VL image processor), saved once per session with save_pretrained."""
    from judge.lmm.random_model import build_checkpoint

    return str(build_checkpoint(tmp_path_factory.mktemp("tiny-qwen2.5-vl"), "tiny", seed=0))


@pytest.fixture(scope="session")
def config_7b(tmp_path_factory):
    """A folder with only the config.json of Qwen2.5-VL-7B's architecture (no weights)."""
    from judge.lmm.random_model import random_config, train_tokenizer

    folder = tmp_path_factory.mktemp("qwen2.5-vl-7b-config")
    random_config(train_tokenizer(), "7b", vocab_size=152064).save_pretrained(folder)
    return str(folder)
