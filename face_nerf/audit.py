"""The audit log: one row per creation in SQLite, so an operator can answer "did this come from us, when,
and from what?" without keeping anyone's photo.

A row holds the time (UTC), the event (create or relight), the creation's id (the watermark's payload),
the SHA-256 of the input photo (never the photo), the prompt, the backends, how consent was given, and
the SHA-256 of each output. Rows older than the retention ($FACELAB_AUDIT_RETENTION_DAYS, default 90)
are deleted whenever the log is opened or written.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from face_nerf.data_folder import data_folder
from face_nerf.errors import FaceLabError

PATH_ENV = "FACELAB_AUDIT_DB"
RETENTION_ENV = "FACELAB_AUDIT_RETENTION_DAYS"
RETENTION_DAYS = 90.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS creations (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,            -- seconds since the epoch (UTC)
    event TEXT NOT NULL,           -- create | relight
    creation_id TEXT NOT NULL,     -- the watermark's payload
    photo_sha256 TEXT NOT NULL,    -- of the input photo's bytes; the photo itself is never kept
    prompt TEXT NOT NULL,
    backends TEXT NOT NULL,        -- JSON {stage: backend}
    consent TEXT NOT NULL,         -- how the right to use the photo was confirmed (ui, api, cli, example)
    outputs TEXT NOT NULL          -- JSON {file name: SHA-256}
);
CREATE INDEX IF NOT EXISTS creations_time ON creations (time);
CREATE INDEX IF NOT EXISTS creations_id ON creations (creation_id);
"""


class AuditError(FaceLabError):
    """The audit log or its settings cannot be used."""


@dataclass(frozen=True)
class AuditEntry:
    """One row of the log."""

    time: float
    event: str
    creation_id: str
    photo_sha256: str
    prompt: str
    backends: dict[str, str | None]
    consent: str
    outputs: dict[str, str]

    @property
    def when(self) -> str:
        return datetime.fromtimestamp(self.time, timezone.utc).isoformat(timespec="seconds")


def audit_path() -> Path:
    """$FACELAB_AUDIT_DB, else ``audit.sqlite`` in the data folder."""
    return Path(os.environ.get(PATH_ENV) or data_folder() / "audit.sqlite")


def retention_days() -> float:
    """$FACELAB_AUDIT_RETENTION_DAYS (default 90).

    Raises:
        AuditError: not a positive number.
    """
    text = os.environ.get(RETENTION_ENV, str(RETENTION_DAYS))
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not days > 0:
        raise AuditError(f"${RETENTION_ENV} must be a positive number of days. Got {text!r}.")
    return days


class AuditLog:
    """The SQLite audit log at ``path``, keeping rows for ``retention_days`` (one connection per call, so
    it is safe from the app's worker threads and from several processes)."""

    def __init__(self, path: str | Path | None = None, retention: float | None = None):
        self.path = Path(path) if path is not None else audit_path()
        self.retention = retention if retention is not None else retention_days()
        if not self.retention > 0:
            raise AuditError(f"The audit log's retention must be a positive number of days. Got {self.retention}.")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise AuditError(f"Cannot open the audit log {self.path} ({err}); set ${PATH_ENV} to a writable file.") from err
        self.purge()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def record(self, entry: AuditEntry) -> None:
        """Add one row (and drop the rows past the retention)."""
        with self._connect() as db:
            db.execute("INSERT INTO creations (time, event, creation_id, photo_sha256, prompt, backends, consent, "
                       "outputs) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (entry.time, entry.event, entry.creation_id, entry.photo_sha256, entry.prompt,
                        json.dumps(entry.backends, sort_keys=True), entry.consent,
                        json.dumps(entry.outputs, sort_keys=True)))
        self.purge()

    def purge(self, now: float | None = None) -> int:
        """Delete the rows older than the retention; returns how many went."""
        cutoff = (now if now is not None else time.time()) - self.retention * 86400
        with self._connect() as db:
            return db.execute("DELETE FROM creations WHERE time < ?", (cutoff,)).rowcount

    def entries(self, creation_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """Rows, newest first (of one creation when ``creation_id`` is given)."""
        query, args = "SELECT time, event, creation_id, photo_sha256, prompt, backends, consent, outputs FROM creations", []
        if creation_id:
            query, args = query + " WHERE creation_id = ?", [creation_id]
        query += " ORDER BY time DESC, id DESC"
        if limit:
            query, args = query + " LIMIT ?", args + [int(limit)]
        with self._connect() as db:
            rows = db.execute(query, args).fetchall()
        return [AuditEntry(t, e, c, p, pr, json.loads(b), co, json.loads(o)) for t, e, c, p, pr, b, co, o in rows]

    def export(self, path: str | Path) -> int:
        """Write every row to ``path`` as CSV (.csv) or JSON lines (.jsonl); returns the row count.

        Raises:
            AuditError: another suffix.
        """
        path = Path(path)
        entries = self.entries()
        rows = [{"when": e.when, **asdict(e)} for e in reversed(entries)]
        if path.suffix == ".jsonl":
            path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        elif path.suffix == ".csv":
            with path.open("w", newline="") as f:
                writer = csv.DictWriter(f, ["when", *AuditEntry.__dataclass_fields__])
                writer.writeheader()
                writer.writerows({**row, "backends": json.dumps(row["backends"]), "outputs": json.dumps(row["outputs"])}
                                 for row in rows)
        else:
            raise AuditError(f"Export to a .csv or .jsonl file. Got {path.name!r}.")
        return len(rows)
