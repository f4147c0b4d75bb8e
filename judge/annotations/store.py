"""Annotators' ratings in SQLite: WAL mode, a versioned schema with migrations, one transaction per
rating, items identified by the hash of their content.

Each rating carries a client-made id (``rating_id``), so a retried submit is stored once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from judge.result import CATEGORIES

DEFAULT_PATH = Path("data") / "annotations.sqlite"
SCHEMA_VERSION = 2
MIN_FREE_BYTES = 1 << 20  # AnnotationStore.check refuses a disk with less free space than this
# Each migration takes the database from version i to i + 1.
MIGRATIONS = (
    """
    CREATE TABLE items (
        item_id TEXT PRIMARY KEY,          -- sha256 of the video's bytes
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        source TEXT NOT NULL,              -- 'app', 'upload' or 'import'
        judge_json TEXT,                   -- the judge's verdict when the item was added
        added REAL NOT NULL
    );
    CREATE TABLE ratings (
        rating_id TEXT PRIMARY KEY,        -- made by the client: a retried submit is stored once
        item_id TEXT NOT NULL REFERENCES items(item_id),
        annotator TEXT NOT NULL,
        quality REAL NOT NULL CHECK (quality BETWEEN 0 AND 100),
        authenticity REAL NOT NULL CHECK (authenticity BETWEEN 0 AND 100),
        categories TEXT NOT NULL,          -- JSON list of category names
        created REAL NOT NULL
    );
    CREATE INDEX ratings_item ON ratings(item_id);
    """,
    """
    ALTER TABLE ratings ADD COLUMN clicks TEXT NOT NULL DEFAULT '[]';   -- JSON [[x, y], ...] on the 3-view strip
    ALTER TABLE ratings ADD COLUMN comment TEXT NOT NULL DEFAULT '';
    """,
)


class AnnotationError(ValueError):
    """A rating or an import that cannot be stored; the message says what to fix."""


def database_error(path: str | Path, err: sqlite3.Error) -> AnnotationError:
    """An ``AnnotationError`` that says what went wrong with the database at ``path`` and what to do.

    Args:
        path: the database file.
        err: what sqlite3 raised (``DatabaseError`` for a damaged file, ``OperationalError`` for one
            that cannot be opened or written).

    Example:
        >>> str(database_error("a.sqlite", sqlite3.OperationalError("database or disk is full")))[:37]
        'a.sqlite: the disk is full or failing'
    """
    text = str(err)
    if "readonly" in text or "read-only" in text:
        return AnnotationError(f"{path} cannot be written ({text}): the file or its folder is read-only. Make both "
                               "writable for this user (SQLite also writes -wal and -shm files beside it), or use "
                               "another --db / $FACELAB_ANNOTATIONS.")
    if "unable to open" in text:
        return AnnotationError(f"{path} cannot be opened ({text}): check that it is a file (not a folder) in a "
                               "folder you may write to, or use another --db / $FACELAB_ANNOTATIONS.")
    if "disk is full" in text or "disk I/O error" in text:
        return AnnotationError(f"{path}: the disk is full or failing ({text}); nothing was stored. Free some "
                               "space (or move the database to another disk) and try again.")
    if "locked" in text or "busy" in text:
        return AnnotationError(f"{path} is busy ({text}): another program held it too long. Try again, or close "
                               "the other program using it.")
    if not isinstance(err, sqlite3.OperationalError):  # "file is not a database", "malformed", ...
        return AnnotationError(f"{path} is not a usable ratings database ({text}): the file is damaged or is not "
                               "a database. Restore it from a backup, or move it aside and start a new one with "
                               "another --db / $FACELAB_ANNOTATIONS.")
    return AnnotationError(f"{path}: the ratings database failed ({text}). Check the file and its folder, or "
                           "use another --db / $FACELAB_ANNOTATIONS.")


def _sqlite_errors(method):
    """Re-raise a store method's sqlite3 errors as ``database_error`` (rolling back an open transaction)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as err:
            self._rollback()
            raise database_error(self.path, err) from err
    return wrapper


@dataclass(frozen=True)
class Rating:
    """One annotator's rating of one item.

    Attributes:
        item_id: the item (``content_id`` of its video).
        annotator: who rated.
        quality, authenticity: 0-100.
        categories: distortion categories seen (names from ``CATEGORIES``).
        clicks: [[x, y], ...] pixel positions of distorted spots on the item's 3-view strip.
        comment: free text.
        rating_id: unique id (made here when not given).
        created: unix time.
    """

    item_id: str
    annotator: str
    quality: float
    authenticity: float
    categories: list[str] = field(default_factory=list)
    clicks: list[list[float]] = field(default_factory=list)
    comment: str = ""
    rating_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: float = field(default_factory=time.time)

    def __post_init__(self):
        if not self.annotator.strip():
            raise AnnotationError("Enter your name before rating, so ratings can be told apart.")
        for name in ("quality", "authenticity"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise AnnotationError(f"{name} must lie in 0-100. Got {value}.")
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown:
            raise AnnotationError(f"Unknown categories {unknown}; use the nine of the taxonomy: {', '.join(CATEGORIES)}.")


@dataclass(frozen=True)
class Item:
    item_id: str
    name: str
    path: str
    source: str
    judge_json: str | None
    added: float


def content_id(path: str | Path) -> str:
    """sha256 of a file's bytes: the same video is the same item wherever it comes from."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class AnnotationStore:
    """The ratings database. Open one per process (or thread); SQLite serialises the writers.

    Example:
        >>> store = AnnotationStore("data/annotations.sqlite")  # doctest: +SKIP
        >>> store.add_rating(Rating(item_id, "ana", 70, 55, ["Mouth"]))  # doctest: +SKIP
    """

    def __init__(self, path: str | Path = DEFAULT_PATH, timeout_s: float = 30.0):
        """Open (or create) the database and bring its schema up to date.

        Raises:
            AnnotationError: the file is damaged or not a database, cannot be opened or created, or
                has a newer schema; the message names the file and the fix.
        """
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise AnnotationError(f"{self.path} cannot be created: its folder {self.path.parent} cannot be made "
                                  f"({err.strerror}; is part of that path a file, or read-only?). Use another "
                                  "--db / $FACELAB_ANNOTATIONS.") from err
        try:
            self._db = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None,
                                       check_same_thread=False)
        except sqlite3.Error as err:
            raise database_error(self.path, err) from err
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a rating whose call returned survives a crash
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise database_error(self.path, err) from err
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def check(self) -> None:
        """Make sure ratings can be read and stored, cheaply: SQLite's quick integrity check, then a
        write that is rolled back. The web app calls it at start, to tell annotators at once (and not
        at their first submit) that ratings cannot be kept.

        Raises:
            AnnotationError: the database is damaged, read-only, on a full disk, or locked; the message
                names the file and the fix.

        Example:
            >>> AnnotationStore("data/annotations.sqlite").check()  # doctest: +SKIP
        """
        try:
            result = self._db.execute("PRAGMA quick_check").fetchone()[0]
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR IGNORE INTO items VALUES ('.check', '', '', 'check', NULL, 0)")
            self._db.execute("ROLLBACK")
        except sqlite3.DatabaseError as err:
            self._rollback()
            raise database_error(self.path, err) from err
        if result != "ok":
            raise AnnotationError(f"{self.path} is damaged ({result}). Restore it from a backup, or move it aside "
                                  "and start a new one with another --db / $FACELAB_ANNOTATIONS.")
        free = shutil.disk_usage(self.path.parent).free
        if free < MIN_FREE_BYTES:  # a rolled-back write never reaches the disk, so ask the disk itself
            raise AnnotationError(f"{self.path}: the disk holding it has only {free // 1024} KB free, too little to "
                                  "store ratings safely. Free some space (or move the database to another disk).")

    def _rollback(self) -> None:
        """Roll back an open transaction, if any (a failed rollback leaves the original error to report)."""
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            current = self.version
            if current > SCHEMA_VERSION:
                raise AnnotationError(f"{self.path} has schema version {current}, newer than this code's "
                                      f"{SCHEMA_VERSION}; update FaceLab 3D.")
            for version in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {version + 1}")
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    # --- items --------------------------------------------------------------------------------------

    @property
    def heatmap_dir(self) -> Path:
        return self.path.parent / f"{self.path.stem}-heatmaps"

    @property
    def media_dir(self) -> Path:
        """The items' videos, copied here when added (named by content id)."""
        return self.path.parent / f"{self.path.stem}-media"

    @_sqlite_errors
    def add_item(self, path: str | Path, source: str, judge_json: str | None = None, name: str | None = None,
                 strip_heatmap=None, strip=None) -> str:
        """Add a video (no-op when its content is already an item); returns its id. The video is copied
        into the store's own folder (``media_dir``), so the item keeps it whatever happens to ``path``;
        the judge's 3-view strip and its heatmap, when given, are kept beside the database (the strip is
        what annotators click on; the heatmap is compared with their clicks)."""
        import numpy as np
        from PIL import Image

        path = Path(path)
        item_id = content_id(path)
        kept = self.media_dir / f"{item_id}{path.suffix.lower()}"
        try:
            self.media_dir.mkdir(parents=True, exist_ok=True)
            if not kept.exists():
                staging = kept.with_name(f".{kept.name}.part")
                shutil.copyfile(path, staging)
                os.replace(staging, kept)
            self.heatmap_dir.mkdir(parents=True, exist_ok=True)
            if strip_heatmap is not None:
                np.save(self.heatmap_dir / f"{item_id}.npy", np.asarray(strip_heatmap, np.float32))
            if strip is not None:
                Image.fromarray(np.asarray(strip, np.uint8)).save(self.heatmap_dir / f"{item_id}.png")
        except OSError as err:
            raise AnnotationError(f"The item's video or strip could not be kept beside {self.path.name} "
                                  f"({err.strerror or err}). Free some disk space or make that folder writable, "
                                  "then add the item again.") from err
        self._db.execute("INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?, ?, ?)",
                         (item_id, name or path.name, str(kept), source, judge_json, time.time()))
        if judge_json is not None:
            self._db.execute("UPDATE items SET judge_json = ? WHERE item_id = ? AND judge_json IS NULL",
                             (judge_json, item_id))
        return item_id

    @_sqlite_errors
    def add_item_record(self, item: Item) -> None:
        """Add an item as exported elsewhere (by id; no file needed)."""
        self._db.execute("INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?, ?, ?)",
                         (item.item_id, item.name, item.path, item.source, item.judge_json, item.added))

    def strip_heatmap(self, item_id: str):
        """The judge's strip heatmap of an item, or None."""
        import numpy as np

        path = self.heatmap_dir / f"{item_id}.npy"
        return np.load(path) if path.exists() else None

    def strip_path(self, item_id: str) -> Path | None:
        """The item's 3-view strip image, or None."""
        path = self.heatmap_dir / f"{item_id}.png"
        return path if path.exists() else None

    @_sqlite_errors
    def items(self) -> list[Item]:
        return [Item(*row) for row in self._db.execute("SELECT * FROM items ORDER BY added, item_id")]

    @_sqlite_errors
    def item(self, item_id: str) -> Item:
        row = self._db.execute("SELECT * FROM items WHERE item_id = ?", (item_id,)).fetchone()
        if row is None:
            raise AnnotationError(f"No item {item_id[:12]}… in {self.path}.")
        return Item(*row)

    @_sqlite_errors
    def queue(self, annotator: str) -> list[Item]:
        """Items this annotator has not rated yet, least-rated first."""
        rows = self._db.execute(
            """SELECT i.* FROM items i LEFT JOIN ratings r ON r.item_id = i.item_id
               WHERE i.item_id NOT IN (SELECT item_id FROM ratings WHERE annotator = ?)
               GROUP BY i.item_id ORDER BY COUNT(r.rating_id), i.added""", (annotator,))
        return [Item(*row) for row in rows]

    # --- ratings ------------------------------------------------------------------------------------

    @_sqlite_errors
    def add_rating(self, rating: Rating) -> str:
        """Store a rating in its own transaction; returns its id. A rating id already stored is kept
        as it was (retries do not duplicate)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR IGNORE INTO ratings (rating_id, item_id, annotator, quality, authenticity, categories, "
                "created, clicks, comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rating.rating_id, rating.item_id, rating.annotator.strip(), float(rating.quality),
                 float(rating.authenticity), json.dumps(list(rating.categories)), rating.created,
                 json.dumps([list(map(float, c)) for c in rating.clicks]), rating.comment))
            self._db.execute("COMMIT")
        except sqlite3.IntegrityError as err:
            self._rollback()
            raise AnnotationError(f"The rating could not be stored ({err}); is item {rating.item_id[:12]}… "
                                  "in the database?") from err
        except BaseException:
            self._rollback()
            raise
        return rating.rating_id

    @_sqlite_errors
    def ratings(self, item_id: str | None = None) -> list[Rating]:
        query = "SELECT rating_id, item_id, annotator, quality, authenticity, categories, created, clicks, comment FROM ratings"
        rows = self._db.execute(query + (" WHERE item_id = ?" if item_id else "") + " ORDER BY created, rating_id",
                                (item_id,) if item_id else ())
        return [Rating(item, who, q, a, json.loads(cats), json.loads(clicks), comment, rid, created)
                for rid, item, who, q, a, cats, created, clicks, comment in rows]

    @_sqlite_errors
    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]

    @_sqlite_errors
    def integrity(self) -> str:
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]

