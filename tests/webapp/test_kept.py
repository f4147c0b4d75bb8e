"""Kept results: per session, bounded memory, spilled to the session's folder, gone when it ends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from webapp.kept import KeptResults, NotKept, footprint

MB = 2**20


def _item(mb: float, seed: int = 0) -> dict:
    return {"pixels": np.full(int(mb * MB), seed % 251, np.uint8), "label": f"item {seed}"}


def test_footprint_counts_arrays_and_tensors_once():
    shared = np.zeros(100, np.float32)
    assert footprint({"a": shared, "b": [shared, torch.zeros(10, dtype=torch.float64)], "c": "text"}) == 400 + 80
    assert footprint(None) == 0


def test_another_session_never_gets_an_item():
    kept = KeptResults(budget_mb=10)
    token = kept.put("alice", _item(0.1))
    assert kept.get("alice", token)["label"] == "item 0"
    with pytest.raises(NotKept, match="kept only for the browser session that made them"):
        kept.get("bob", token)
    assert kept.get("bob", None) is None


def test_busy_sessions_do_not_push_out_an_idle_visitors_result(tmp_path):
    kept = KeptResults(budget_mb=2.5)
    (tmp_path / "alice").mkdir()
    first = kept.put("alice", _item(1, 1), tmp_path / "alice")
    for i, name in enumerate(("bob", "carol", "dave")):  # three others create after her
        (tmp_path / name).mkdir()
        kept.put(name, _item(1, 10 + i), tmp_path / name)
    assert kept.in_memory() <= 2.5 * MB
    assert list((tmp_path / "alice").glob(".kept-*.pt"))  # hers went to her own folder, not away
    again = kept.get("alice", first)
    assert again["label"] == "item 1" and again["pixels"][0] == 1 and kept.in_memory() <= 2.5 * MB


def test_without_a_folder_the_idlest_item_is_dropped_with_a_message():
    kept = KeptResults(budget_mb=1.5)
    first = kept.put("alice", _item(1, 1))
    kept.put("bob", _item(1, 2))
    with pytest.raises(NotKept, match="Generate or judge again"):
        kept.get("alice", first)


def test_a_session_keeps_its_newest_items_and_loses_everything_when_it_ends(tmp_path):
    kept = KeptResults(budget_mb=1, per_session=2)
    (tmp_path / "alice").mkdir()
    tokens = [kept.put("alice", _item(0.4, i), tmp_path / "alice") for i in range(3)]
    with pytest.raises(NotKept):
        kept.get("alice", tokens[0])
    assert kept.get("alice", tokens[2])["label"] == "item 2" and len(kept) == 2
    kept.end("alice")
    assert len(kept) == 0 and not list((tmp_path / "alice").glob(".kept-*"))
    with pytest.raises(NotKept):
        kept.get("alice", tokens[2])


def test_idle_sessions_are_dropped(monkeypatch):
    kept = KeptResults(budget_mb=5)
    token = kept.put("alice", _item(0.1))
    assert kept.drop_idle(3600) == []
    assert kept.drop_idle(-1) == ["alice"]
    with pytest.raises(NotKept):
        kept.get("alice", token)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="budget_mb > 0"):
        KeptResults(budget_mb=0)
