"""The judges the app serves: the LMM judge is loaded and warmed up once, at start, when the app offers it."""

from __future__ import annotations

import pytest

from judge.lmm.judge import LMMJudge
from webapp.judges import Judges


@pytest.fixture
def warm_ups(monkeypatch) -> list[LMMJudge]:
    """The judge of each ``LMMJudge.warm_up`` call (the real one runs)."""
    calls, real = [], LMMJudge.warm_up

    def warm_up(judge):
        calls.append(judge)
        return real(judge)

    monkeypatch.setattr(LMMJudge, "warm_up", warm_up)
    return calls


def test_an_offered_lmm_judge_is_loaded_and_warmed_up_once_at_start(tiny_model, warm_ups, monkeypatch):
    monkeypatch.setenv("FACELAB_LMM_MODEL", tiny_model)
    judges = Judges("embedded")  # the Judge tab offers the LMM judge because a checkpoint is configured
    assert judges.load_offered() is None
    assert warm_ups == [judges.lmm] and judges.lmm._loaded is not None  # loaded and warm before any request
    assert judges.get("lmm") is judges.lmm and judges.get("lmm") is judges.lmm
    assert len(warm_ups) == 1  # requests find it warm


def test_nothing_is_loaded_when_no_lmm_judge_is_offered(warm_ups, monkeypatch):
    monkeypatch.delenv("FACELAB_LMM_MODEL", raising=False)
    judges = Judges("embedded")
    assert judges.load_offered() is None and judges.lmm is None and warm_ups == []


def test_an_lmm_judge_that_cannot_run_says_why_at_start(config_7b, warm_ups, monkeypatch):
    monkeypatch.setenv("FACELAB_LMM_MODEL", config_7b)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    problem = Judges("lmm").load_offered()
    assert "on the CPU" in problem and warm_ups == []
