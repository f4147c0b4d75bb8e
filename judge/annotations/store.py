"""Annotators' ratings in SQLite: WAL mode, a versioned schema with migrations, one transaction per
rating, items identified by the hash of their content.

Each rating carries a client-made id (``rating_id``), so a retried submit is stored once.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from judge.result import CATEGORIES

DEFAULT_PATH = Path("data") / "annotations.sqlite"
SCHEMA_VERSION = 2
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
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a rating whose call returned survives a crash
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def close(self) -> None:
        self._db.close()

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
            self._db.execute("ROLLBACK")
            raise

    # --- items --------------------------------------------------------------------------------------

    @property
    def heatmap_dir(self) -> Path:
        return self.path.parent / f"{self.path.stem}-heatmaps"

    def add_item(self, path: str | Path, source: str, judge_json: str | None = None, name: str | None = None,
                 strip_heatmap=None, strip=None) -> str:
        """Add a video (no-op when its content is already an item); returns its id. The judge's 3-view
        strip and its heatmap, when given, are kept beside the database (the strip is what annotators
        click on; the heatmap is compared with their clicks)."""
        import numpy as np
        from PIL import Image

        path = Path(path)
        item_id = content_id(path)
        self.heatmap_dir.mkdir(parents=True, exist_ok=True)
        if strip_heatmap is not None:
            np.save(self.heatmap_dir / f"{item_id}.npy", np.asarray(strip_heatmap, np.float32))
        if strip is not None:
            Image.fromarray(np.asarray(strip, np.uint8)).save(self.heatmap_dir / f"{item_id}.png")
        self._db.execute("INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?, ?, ?)",
                         (item_id, name or path.name, str(path), source, judge_json, time.time()))
        if judge_json is not None:
            self._db.execute("UPDATE items SET judge_json = ? WHERE item_id = ? AND judge_json IS NULL",
                             (judge_json, item_id))
        return item_id

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

    def items(self) -> list[Item]:
        return [Item(*row) for row in self._db.execute("SELECT * FROM items ORDER BY added, item_id")]

    def item(self, item_id: str) -> Item:
        row = self._db.execute("SELECT * FROM items WHERE item_id = ?", (item_id,)).fetchone()
        if row is None:
            raise AnnotationError(f"No item {item_id[:12]}… in {self.path}.")
        return Item(*row)

    def queue(self, annotator: str) -> list[Item]:
        """Items this annotator has not rated yet, least-rated first."""
        rows = self._db.execute(
            """SELECT i.* FROM items i LEFT JOIN ratings r ON r.item_id = i.item_id
               WHERE i.item_id NOT IN (SELECT item_id FROM ratings WHERE annotator = ?)
               GROUP BY i.item_id ORDER BY COUNT(r.rating_id), i.added""", (annotator,))
        return [Item(*row) for row in rows]

    # --- ratings ------------------------------------------------------------------------------------

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
            self._db.execute("ROLLBACK")
            raise AnnotationError(f"The rating could not be stored ({err}); is item {rating.item_id[:12]}… "
                                  "in the database?") from err
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return rating.rating_id

    def ratings(self, item_id: str | None = None) -> list[Rating]:
        query = "SELECT rating_id, item_id, annotator, quality, authenticity, categories, created, clicks, comment FROM ratings"
        rows = self._db.execute(query + (" WHERE item_id = ?" if item_id else "") + " ORDER BY created, rating_id",
                                (item_id,) if item_id else ())
        return [Rating(item, who, q, a, json.loads(cats), json.loads(clicks), comment, rid, created)
                for rid, item, who, q, a, cats, created, clicks, comment in rows]

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]

    def integrity(self) -> str:
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]

