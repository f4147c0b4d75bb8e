"""Shared fixtures: the example photos and one reconstruction per photo, reused across tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {p.stem: p for p in sorted((ROOT / "assets" / "examples").glob("*.*"))}


@pytest.fixture(autouse=True, scope="session")
def _cpu_threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session", params=sorted(EXAMPLES))
def example_run(request, tmp_path_factory):
    """(name, photo path, output folder, Reconstruction, Outputs) for each example photo, default settings."""
    from face_nerf.pipeline import ReconstructionConfig, reconstruct, render_outputs, write_outputs

    config = ReconstructionConfig()
    recon = reconstruct(EXAMPLES[request.param], config)
    outputs = render_outputs(recon, config)
    out = write_outputs(recon, outputs, tmp_path_factory.mktemp(request.param) / "run", config.fps)
    return request.param, EXAMPLES[request.param], out, recon, outputs
