"""Per-item summaries in the published benchmark's layout, export and import (CSV and JSON), and the
agreement statistics of a store.

Exports are written atomically and replace only an earlier export; CSV text cells that a spreadsheet
would run as a formula (starting with = + - @, a tab or a CR) are written with a leading ``'``, which
``import_file`` takes off again.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np

from face_nerf.output_folder import check_output_file, staged_file
from judge.annotations.agreement import (DIMENSIONS, category_precision_recall, correlate, heatmap_agreement,
                                         inter_annotator)
from judge.annotations.store import AnnotationError, AnnotationStore, Item, Rating
from judge.result import level_word

CSV_FIELDS = ("item_id", "name", "rating_id", "annotator", "quality", "authenticity", "categories", "clicks",
              "comment", "created")
CSV_TEXT_FIELDS = ("item_id", "name", "rating_id", "annotator", "categories", "clicks", "comment")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs such a cell as a formula
EXPORT_TOOL = "python -m judge.annotations export"
_JSON_EXPORT_START = re.compile(r'\{\s*"format"\s*:\s*"facelab-annotations/1"')


def item_summaries(store: AnnotationStore) -> list[dict]:
    """Per rated item: MOS and level per dimension, how many annotators marked each category, all click
    points, the judge's verdict, and the ratings themselves."""
    out = []
    for item in store.items():
        ratings = store.ratings(item.item_id)
        if not ratings:
            continue
        summary = {"item_id": item.item_id, "name": item.name, "path": item.path, "source": item.source,
                   "annotators": len({r.annotator for r in ratings})}
        for dim in DIMENSIONS:
            mos = float(np.mean([getattr(r, dim) for r in ratings]))
            summary[f"mos_{dim}"], summary[f"level_{dim}"] = mos, level_word(mos)
        counts: dict[str, int] = {}
        for r in ratings:
            for c in r.categories:
                counts[c] = counts.get(c, 0) + 1
        summary["categories"] = counts
        summary["clicks"] = [c for r in ratings for c in r.clicks]
        summary["judge"] = json.loads(item.judge_json) if item.judge_json else None
        summary["ratings"] = [_rating_row(r) for r in ratings]
        out.append(summary)
    return out


def check_export_target(path: str | Path, database: str | Path) -> Path:
    """Refuse an export target that would destroy something: a folder, the ratings database itself
    (or its -wal / -shm files), an existing file that is not an earlier export, or a path where
    nothing can be written. Returns ``path`` as a Path.

    Raises:
        OutputError: the message names the target and the fix.
    """
    database = Path(database)
    protected = [database] + [database.with_name(database.name + s) for s in ("-wal", "-shm", "-journal")]
    return check_output_file(path, EXPORT_TOOL, protected, may_replace=is_export)


def is_export(path: str | Path) -> bool:
    """Whether ``path`` starts like an export of this module (JSON or CSV): one that may be replaced."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024).decode("utf-8", "replace")
    except OSError:
        return False
    lines = head.splitlines()
    return bool(_JSON_EXPORT_START.match(head)) or (bool(lines) and lines[0] == ",".join(CSV_FIELDS))


def export_json(store: AnnotationStore, path: str | Path) -> int:
    """Write the per-item summaries to ``path`` (atomically); returns the number of items.

    Raises:
        OutputError: ``path`` is refused by ``check_export_target``.
    """
    target = check_export_target(path, store.path)
    items = item_summaries(store)
    with staged_file(target) as staging:
        staging.write_text(json.dumps({"format": "facelab-annotations/1", "items": items}, indent=1))
    return len(items)


def export_csv(store: AnnotationStore, path: str | Path) -> int:
    """Write one row per rating to ``path`` (atomically), formula-like text cells escaped; returns
    the number of ratings.

    Raises:
        OutputError: ``path`` is refused by ``check_export_target``.
    """
    target = check_export_target(path, store.path)
    rows = 0
    with staged_file(target) as staging, open(staging, "w", newline="") as handle:
        writer = csv.DictWriter(handle, CSV_FIELDS)
        writer.writeheader()
        for item in store.items():
            for r in store.ratings(item.item_id):
                row = {"name": item.name, **_rating_row(r)}
                writer.writerow({k: escape_cell(v) if k in CSV_TEXT_FIELDS else v for k, v in row.items()})
                rows += 1
    return rows


def escape_cell(text: str) -> str:
    """A CSV text cell a spreadsheet shows as text: a leading ``'`` before a formula-like start (and
    before a leading ``'``, so ``unescape_cell`` can always take exactly one off).

    Example:
        >>> escape_cell("=1+2"), escape_cell("ana")
        ("'=1+2", 'ana')
    """
    return "'" + text if text.startswith(FORMULA_STARTS + ("'",)) else text


def unescape_cell(text: str) -> str:
    """The text ``escape_cell`` was given."""
    return text[1:] if text.startswith("'") else text


def import_file(store: AnnotationStore, path: str | Path) -> int:
    """Import ratings from an export (JSON or CSV); items are created by id when missing. Ratings
    already present (same rating id) are skipped. Returns the number of ratings read."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text())
        if data.get("format") != "facelab-annotations/1":
            raise AnnotationError(f"{path.name} is not a FaceLab annotations export (format {data.get('format')!r}).")
        rows = [dict(r, name=item["name"], path=item.get("path", ""), judge=item.get("judge"))
                for item in data["items"] for r in item["ratings"]]
    elif path.suffix.lower() == ".csv":
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        missing = set(CSV_FIELDS) - set(rows[0] if rows else CSV_FIELDS)
        if missing:
            raise AnnotationError(f"{path.name} lacks the columns {sorted(missing)}; export with `python -m judge.annotations export`.")
        rows = [{k: unescape_cell(v) if k in CSV_TEXT_FIELDS and v else v for k, v in row.items()} for row in rows]
    else:
        raise AnnotationError(f"{path.name}: import a .json or .csv export.")
    for row in rows:
        judge = row.get("judge")
        store.add_item_record(Item(row["item_id"], row["name"], row.get("path", ""), "import",
                                   json.dumps(judge) if judge else None, float(row["created"])))
        store.add_rating(_rating_from_row(row))
    return len(rows)


def _rating_row(r: Rating) -> dict:
    return {"item_id": r.item_id, "rating_id": r.rating_id, "annotator": r.annotator, "quality": r.quality,
            "authenticity": r.authenticity, "categories": ";".join(r.categories), "clicks": json.dumps(r.clicks),
            "comment": r.comment, "created": r.created}


def _rating_from_row(row: dict) -> Rating:
    categories = row["categories"] if isinstance(row["categories"], list) else [c for c in row["categories"].split(";") if c]
    clicks = row["clicks"] if isinstance(row["clicks"], list) else json.loads(row["clicks"] or "[]")
    return Rating(row["item_id"], row["annotator"], float(row["quality"]), float(row["authenticity"]), categories,
                  clicks, row.get("comment", ""), row["rating_id"], float(row["created"]))


def agreement_stats(store: AnnotationStore, resamples: int = 1000) -> dict:
    """Judge vs people per dimension (SRCC/PLCC/KRCC with 95% bootstrap intervals), inter-annotator
    agreement, per-category precision/recall, heatmap agreement (NSS, CC) on items with clicks."""
    rated = item_summaries(store)
    items = [s for s in rated if s["judge"]]
    stats: dict = {"items_rated": len(rated), "items_with_judge": len(items),
                   "ratings": store.count()}
    for dim in DIMENSIONS:
        judge = np.array([s["judge"][dim]["mos"] for s in items])
        people = np.array([s[f"mos_{dim}"] for s in items])
        stats[dim] = correlate(judge, people, resamples).__dict__ if len(items) >= 3 else None
        per_annotator: dict[str, dict[str, float]] = {}
        for s in rated:
            for r in s["ratings"]:
                per_annotator.setdefault(r["annotator"], {})[s["item_id"]] = r[dim]
        stats[f"inter_annotator_{dim}"] = inter_annotator(per_annotator)
    judge_found = {s["item_id"]: {d["category"] for d in s["judge"]["distortions"]} for s in items}
    people_found = {s["item_id"]: {c for c, n in s["categories"].items() if n * 2 >= s["annotators"]} for s in items}
    stats["categories"] = category_precision_recall(judge_found, people_found)
    maps = [store.strip_heatmap(s["item_id"]) for s in items]
    pairs = [heatmap_agreement(m, s["clicks"]) for m, s in zip(maps, items) if m is not None and s["clicks"]]
    stats["heatmap"] = ({"items": len(pairs), "nss": float(np.nanmean([p[0] for p in pairs])),
                         "cc": float(np.nanmean([p[1] for p in pairs]))} if pairs else None)
    return stats
