"""How long the app keeps what visitors upload and make: a sweep on its own timer (not driven by
traffic) removes every file older than the maximum age under the folders it is given, and empty
folders after them.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Container, Iterable
from pathlib import Path

from webapp.settings import MAX_AGE_ENV, MAX_AGE_S  # noqa: F401  (the retention period is a setting)
log = logging.getLogger(__name__)


def sweep_interval(max_age_s: float) -> float:
    """How often to sweep: a sixth of the maximum age, between 1 s and 60 s, so nothing outlives the
    maximum age by more than a minute.

    Example:
        >>> sweep_interval(3600), sweep_interval(3)
        (60.0, 1.0)
    """
    if max_age_s <= 0:
        raise ValueError(f"The maximum age must be positive (seconds). Got {max_age_s}.")
    return float(min(60.0, max(1.0, max_age_s / 6)))


def remove_older_than(roots: Iterable[Path], max_age_s: float, now: float | None = None,
                      keep: Container[str] = frozenset()) -> int:
    """Remove the files under ``roots`` last modified more than ``max_age_s`` seconds ago, except those
    in ``keep`` (absolute paths), then the folders left empty (the roots themselves stay). Returns how
    many files were removed."""
    cutoff = (time.time() if now is None else now) - max_age_s
    removed = 0
    for root in roots:
        root = Path(root).resolve()  # ``keep`` holds resolved paths
        if not root.is_dir():
            continue
        emptied: set[str] = set()  # folders something old was removed from (their mtime is now fresh)
        for folder, _, files in os.walk(root, topdown=False):
            for name in files:
                path = Path(folder) / name
                if str(path) in keep:
                    continue
                try:
                    if path.lstat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
                        emptied.add(folder)
                except FileNotFoundError:  # removed meanwhile (a session ended)
                    continue
            if Path(folder) == root:
                continue
            try:  # a fresh empty folder may be about to be written into: only old or emptied ones go
                if folder in emptied or os.stat(folder).st_mtime < cutoff:
                    os.rmdir(folder)  # only when empty
                    emptied.add(os.path.dirname(folder))
            except OSError:
                pass
    return removed


def remove_tree(path: Path) -> None:
    """Remove a file or folder if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class Sweeper:
    """Calls ``sweep()`` every ``interval_s`` seconds on a daemon thread until ``stop()``.

    Example:
        >>> sweeper = Sweeper(lambda: None, 60.0).start()  # doctest: +SKIP
    """

    def __init__(self, sweep: Callable[[], object], interval_s: float):
        self._sweep, self.interval_s = sweep, interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="facelab-retention", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval_s):
            try:
                self._sweep()
            except Exception:  # a failed sweep is logged and tried again next time; the timer keeps going
                log.exception("retention sweep failed")
