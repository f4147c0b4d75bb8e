"""The tiny judge (over ``tiny_model`` of tests/conftest.py), small clips and a small labelled dataset."""

import json

import numpy as np
import pytest

from judge.frames import load_clip


@pytest.fixture(scope="session")
def tiny_judge(tiny_model):
    from judge.lmm.checkpoint import LMMConfig
    from judge.lmm.judge import LMMJudge

    return LMMJudge(LMMConfig(model=tiny_model, side=56, max_new_tokens=8, device="cpu"))


def random_frames(count: int = 16, side: int = 64, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((count, side, side, 3)) * 255).astype(np.uint8)


@pytest.fixture
def clip():
    return load_clip(random_frames())


def write_dataset(root, count: int = 6, clicks: bool = True) -> list[dict]:
    """``count`` frame-folder videos whose brightness falls as quality falls, with labels.json."""
    from PIL import Image

    items = []
    for i in range(count):
        folder = root / f"video{i}"
        folder.mkdir(parents=True)
        frames = random_frames(4, 56, seed=i) * 0 + np.uint8(40 + 30 * i)
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(folder / f"{t:03d}.png")
        items.append({"video": f"video{i}", "quality": 15.0 + 14 * i, "authenticity": 85.0 - 12 * i,
                      "distortions": ["Eye"] if i % 2 else [], "clicks": [[20.0, 20.0], [100.0, 30.0]] if clicks else []})
    (root / "labels.json").write_text(json.dumps({"items": items}))
    return items
