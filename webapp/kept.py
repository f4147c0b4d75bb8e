"""Results kept for each browser session, so a visitor can relight, compare and question what they made.

An item belongs to the session that made it: another session asking for it (with a stolen token, or
through the API) is told it is not kept. Memory is bounded by a byte budget: when a new item would
exceed it, the items of the session idle longest are moved out of memory first, into that session's
own folder on disk, and read back when used. A session's items go when it ends, or when it has been
idle longer than the retention period (``Sessions.sweep``).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KEEP_MB = 256.0  # results held in memory, all sessions together (about two creations; the rest wait on disk)
PER_SESSION = 4  # items a session keeps (its newest); older ones are dropped


class NotKept(LookupError):
    """The item asked for is not (or no longer) kept for this session; the message says what to do."""


def footprint(item, seen: set[int] | None = None) -> int:
    """Bytes held by the arrays and tensors reachable from ``item`` (each counted once).

    Example:
        >>> footprint({"a": np.zeros(10, np.float32), "b": [np.zeros(2, np.uint8)]})
        42
    """
    import torch

    seen = set() if seen is None else seen
    if id(item) in seen or item is None or isinstance(item, (str, bytes, int, float, bool)):
        return 0
    seen.add(id(item))
    if isinstance(item, np.ndarray):
        return int(item.nbytes)
    if isinstance(item, torch.Tensor):
        return int(item.untyped_storage().nbytes())
    if isinstance(item, dict):
        return sum(footprint(v, seen) for v in item.values())
    if isinstance(item, (list, tuple, set, frozenset)):
        return sum(footprint(v, seen) for v in item)
    children = vars(item).values() if hasattr(item, "__dict__") else \
        [getattr(item, s, None) for s in getattr(type(item), "__slots__", ())]
    return sum(footprint(v, seen) for v in children)


@dataclass
class _Entry:
    item: object | None  # None while spilled to disk
    size: int
    spill: Path | None = None  # where it lies on disk when not in memory


@dataclass
class _Session:
    items: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)  # token -> entry, oldest first
    folder: Path | None = None  # the session's own folder (spilled items go there)
    last_used: float = field(default_factory=time.monotonic)


class KeptResults:
    """Items (results, judgements) by session and token, within ``budget_mb`` of memory.

    Args:
        budget_mb: memory for items of all sessions together; beyond it the idlest session's items
            are written to its folder (or dropped when it has none).
        per_session: items one session keeps (its newest).
    """

    def __init__(self, budget_mb: float = KEEP_MB, per_session: int = PER_SESSION):
        if budget_mb <= 0 or per_session < 1:
            raise ValueError(f"Need budget_mb > 0 and per_session >= 1. Got {budget_mb}, {per_session}.")
        self.budget = int(budget_mb * 2**20)
        self.per_session = per_session
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.RLock()

    def put(self, session: str, item, folder: Path | None = None, fit: bool = True) -> str:
        """Keep ``item`` for ``session``; returns its token. ``folder``: the session's folder on disk,
        where its items may be moved when memory runs short. ``fit=False`` leaves moving older items
        out of memory to a later ``fit`` (a caller that shows the item first)."""
        token = uuid.uuid4().hex
        with self._lock:
            kept = self._sessions.setdefault(session, _Session())
            kept.folder = folder or kept.folder
            kept.items[token] = _Entry(item, footprint(item))
            kept.last_used = time.monotonic()
            while len(kept.items) > self.per_session:
                _, old = kept.items.popitem(last=False)
                _forget(old)
            if fit:
                self._fit(keep=session)
        return token

    def fit(self, session: str) -> None:
        """Bring memory back within the budget (what ``put(..., fit=False)`` left), ``session``'s newest
        item staying in memory."""
        with self._lock:
            self._fit(keep=session)

    def get(self, session: str, token: str | None, what: str = "result"):
        """The item for ``token`` if ``session`` made it; None for no token.

        Raises:
            NotKept: the token is not this session's, or its item was dropped (session ended, idle
                past the retention period, or pushed out by newer items).
        """
        if not token:
            return None
        with self._lock:
            kept = self._sessions.get(session)
            entry = kept.items.get(token) if kept else None
            if entry is None:
                raise NotKept(f"This {what} is not kept any more: results are kept only for the browser session "
                              "that made them, while it is active. Generate or judge again (your photo and "
                              "settings are still in the page).")
            kept.items.move_to_end(token)
            kept.last_used = time.monotonic()
            if entry.item is None:
                entry.item = _load(entry.spill)
                self._fit(keep=session)
            return entry.item

    def end(self, session: str) -> None:
        """Forget everything of ``session`` (its spilled files go too)."""
        with self._lock:
            kept = self._sessions.pop(session, None)
        for entry in (kept.items.values() if kept else ()):
            _forget(entry)

    def drop_idle(self, idle_s: float) -> list[str]:
        """End every session unused for more than ``idle_s`` seconds; returns their names."""
        cutoff = time.monotonic() - idle_s
        with self._lock:
            idle = [name for name, kept in self._sessions.items() if kept.last_used < cutoff]
        for name in idle:
            self.end(name)
        return idle

    def in_memory(self) -> int:
        """Bytes of items held in memory now."""
        with self._lock:
            return sum(e.size for k in self._sessions.values() for e in k.items.values() if e.item is not None)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(k.items) for k in self._sessions.values())

    def _fit(self, keep: str) -> None:
        """Move items out of memory, idlest session first (``keep``'s newest item last), until the
        budget holds."""
        order = sorted(self._sessions.items(), key=lambda kv: (kv[0] == keep, kv[1].last_used))
        for name, kept in order:
            for token, entry in list(kept.items.items()):
                if self.in_memory() <= self.budget:
                    return
                if entry.item is None or (name == keep and token == next(reversed(kept.items))):
                    continue
                if kept.folder is not None and kept.folder.is_dir():
                    entry.spill = _save(entry.item, kept.folder, token)
                    entry.item = None
                else:
                    del kept.items[token]


def _save(item, folder: Path, token: str) -> Path:
    import torch

    path = folder / f".kept-{token}.pt"
    staging = path.with_suffix(".part")
    torch.save(item, staging)
    os.replace(staging, path)
    return path


def _load(path: Path | None):
    import torch

    if path is None or not path.is_file():
        raise NotKept("This result was removed from the server (it is kept for a limited time only). "
                      "Generate or judge again.")
    return torch.load(path, weights_only=False)  # written by _save in the session's private folder


def _forget(entry: _Entry) -> None:
    entry.item = None
    if entry.spill is not None:
        entry.spill.unlink(missing_ok=True)
