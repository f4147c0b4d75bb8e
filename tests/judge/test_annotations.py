"""Ratings storage (concurrent writers, a writer killed mid-stream, migrations), export/import, the
agreement statistics against scipy, and recalibration."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau, pearsonr, spearmanr

from judge.annotations.agreement import click_map, correlate, heatmap_agreement, inter_annotator
from judge.annotations.recalibrate import cross_validate, fit_monotone, isotonic, load_score_map, recalibrate
from judge.annotations.report import agreement_stats, export_csv, export_json, import_file, item_summaries
from judge.annotations.store import SCHEMA_VERSION, AnnotationError, AnnotationStore, Rating

ROOT = Path(__file__).resolve().parents[2]


def _video(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _judge_json(quality: float, authenticity: float, categories=("Mouth",)) -> str:
    return json.dumps({"quality": {"mos": quality, "level": "fair"}, "authenticity": {"mos": authenticity, "level": "fair"},
                       "distortions": [{"category": c} for c in categories]})


def test_same_content_is_the_same_item(tmp_path):
    with AnnotationStore(tmp_path / "a.sqlite") as store:
        a = store.add_item(_video(tmp_path, "a.mp4", b"same bytes"), "upload")
        b = store.add_item(_video(tmp_path, "b.mp4", b"same bytes"), "app")
        c = store.add_item(_video(tmp_path, "c.mp4", b"other bytes"), "app")
        assert a == b != c and len(store.items()) == 2 and store.version == SCHEMA_VERSION


def test_bad_ratings_are_refused_with_a_reason(tmp_path):
    with pytest.raises(AnnotationError, match="Enter your name"):
        Rating("x", " ", 50, 50)
    with pytest.raises(AnnotationError, match="quality must lie in 0-100"):
        Rating("x", "ana", 120, 50)
    with pytest.raises(AnnotationError, match="Unknown categories"):
        Rating("x", "ana", 50, 50, ["Teeth"])
    with AnnotationStore(tmp_path / "a.sqlite") as store, pytest.raises(AnnotationError, match="in the database"):
        store.add_rating(Rating("no-such-item", "ana", 50, 50))


def test_a_retried_rating_is_stored_once(tmp_path):
    with AnnotationStore(tmp_path / "a.sqlite") as store:
        item = store.add_item(_video(tmp_path, "a.mp4", b"x"), "upload")
        rating = Rating(item, "ana", 60, 40, ["Eye"], [[10.0, 20.0]], "left eye smeared")
        store.add_rating(rating)
        store.add_rating(rating)
        assert store.count() == 1 and store.ratings()[0] == rating


WRITER = textwrap.dedent("""
    import sys
    from judge.annotations.store import AnnotationStore, Rating
    db, item, who, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with AnnotationStore(db) as store:
        for i in range(n):
            rid = store.add_rating(Rating(item, who, i % 101, (3 * i) % 101, ["Mouth"], comment=str(i)))
            print(rid, flush=True)
""")


def _writer(db: Path, item: str, who: str, n: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(db), item, who, str(n)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_eight_processes_writing_at_once_store_every_rating_once(tmp_path):
    db = tmp_path / "a.sqlite"
    with AnnotationStore(db) as store:
        item = store.add_item(_video(tmp_path, "a.mp4", b"x"), "upload")
    writers = [_writer(db, item, f"annotator{k}", 200) for k in range(8)]
    returned = [w.communicate(timeout=300)[0].split() for w in writers]
    assert all(w.returncode == 0 for w in writers)
    with AnnotationStore(db) as store:
        ids = [r.rating_id for r in store.ratings()]
        assert store.count() == 1600 and len(set(ids)) == 1600
        assert set(ids) == {rid for out in returned for rid in out}
        assert store.integrity() == "ok"


def test_a_writer_killed_mid_stream_loses_nothing_it_returned(tmp_path):
    db = tmp_path / "a.sqlite"
    with AnnotationStore(db) as store:
        item = store.add_item(_video(tmp_path, "a.mp4", b"x"), "upload")
    writer = _writer(db, item, "ana", 100_000)
    returned = []
    for line in writer.stdout:
        returned.append(line.strip())
        if len(returned) == 150:
            writer.send_signal(signal.SIGKILL)
            break
    writer.wait(timeout=30)
    with AnnotationStore(db) as store:
        stored = {r.rating_id for r in store.ratings()}
        assert store.integrity() == "ok"
        assert set(returned) <= stored and len(stored) >= 150


def test_an_old_database_is_migrated(tmp_path):
    db = tmp_path / "old.sqlite"
    from judge.annotations.store import MIGRATIONS

    raw = sqlite3.connect(db)
    raw.executescript(MIGRATIONS[0])
    raw.execute("PRAGMA user_version = 1")
    raw.execute("INSERT INTO items VALUES ('i', 'v.mp4', '/v.mp4', 'app', NULL, 0)")
    raw.execute("INSERT INTO ratings VALUES ('r', 'i', 'ana', 50, 60, '[]', 1)")
    raw.commit()
    raw.close()
    with AnnotationStore(db) as store:
        assert store.version == SCHEMA_VERSION
        (rating,) = store.ratings()
        assert rating.clicks == [] and rating.comment == "" and rating.quality == 50
    newer = sqlite3.connect(db)
    newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.commit()
    newer.close()
    with pytest.raises(AnnotationError, match="newer than this code"):
        AnnotationStore(db)


def _filled_store(tmp_path: Path, n_items: int = 12, seed: int = 0) -> AnnotationStore:
    rng = np.random.default_rng(seed)
    store = AnnotationStore(tmp_path / "a.sqlite")
    for i in range(n_items):
        truth_q, truth_a = rng.uniform(10, 90, 2)
        item = store.add_item(_video(tmp_path, f"v{i}.mp4", f"video {i}".encode()), "upload",
                              _judge_json(truth_q + rng.normal(0, 8), truth_a + rng.normal(0, 8),
                                          ["Mouth"] if i % 2 else ["Eye"]),
                              strip_heatmap=np.pad(np.ones((4, 4)), ((0, 12), (0, 44))))
        for who in ("ana", "ben", "cy"):
            store.add_rating(Rating(item, who, float(np.clip(truth_q + rng.normal(0, 5), 0, 100)),
                                    float(np.clip(truth_a + rng.normal(0, 5), 0, 100)),
                                    ["Mouth"] if i % 3 else ["Eye"], [[1.0, 1.0], [2.0, 2.0]]))
    return store


def test_agreement_equals_scipy(tmp_path):
    with _filled_store(tmp_path) as store:
        stats = agreement_stats(store, resamples=200)
        items = item_summaries(store)
    for dim in ("quality", "authenticity"):
        judge = [s["judge"][dim]["mos"] for s in items]
        people = [np.mean([r[dim] for r in s["ratings"]]) for s in items]
        assert abs(stats[dim]["srcc"] - spearmanr(judge, people).statistic) < 1e-9
        assert abs(stats[dim]["plcc"] - pearsonr(judge, people).statistic) < 1e-9
        assert abs(stats[dim]["krcc"] - kendalltau(judge, people).statistic) < 1e-9
        low, high = stats[dim]["srcc_ci"]
        assert low <= stats[dim]["srcc"] <= high
    assert stats["inter_annotator_quality"] > 0.6
    precision, recall, marked = stats["categories"]["Mouth"]
    assert marked == 8 and 0 < precision <= 1 and 0 < recall <= 1
    assert stats["heatmap"]["items"] == 12 and stats["heatmap"]["nss"] > 1


def test_bootstrap_interval_narrows_with_more_items():
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    y = x + rng.normal(scale=0.5, size=400)
    small, large = correlate(x[:20], y[:20], 300), correlate(x, y, 300)
    assert (large.srcc_ci[1] - large.srcc_ci[0]) < (small.srcc_ci[1] - small.srcc_ci[0])


def test_inter_annotator_and_heatmap_agreement_by_hand():
    scores = {"a": {"1": 1, "2": 2, "3": 3}, "b": {"1": 10, "2": 20, "3": 30}, "c": {"1": 3, "2": 2, "3": 1}}
    assert inter_annotator(scores) == pytest.approx((1 - 1 - 1) / 3)
    blob = click_map([[20.0, 20.0]], (41, 41))
    assert blob.argmax() == 20 * 41 + 20 and blob.sum() == pytest.approx(1.0, abs=0.01)
    nss, cc = heatmap_agreement(blob, [[20.0, 20.0]])
    assert nss > 3 and cc == pytest.approx(1.0)


def test_export_reimports_to_the_same_statistics(tmp_path):
    with _filled_store(tmp_path) as store:
        before = agreement_stats(store, resamples=100)
        export_json(store, tmp_path / "out.json")
        export_csv(store, tmp_path / "out.csv")
    for name in ("out.json", "out.csv"):
        (tmp_path / "fresh").mkdir(exist_ok=True)
        with AnnotationStore(tmp_path / "fresh" / f"{name}.sqlite") as fresh:
            assert import_file(fresh, tmp_path / name) == 36
            if name == "out.json":  # the CSV carries ratings only, not the judge's verdicts
                after = agreement_stats(fresh, resamples=100)
                for dim in ("quality", "authenticity"):
                    assert after[dim]["srcc"] == before[dim]["srcc"] and after[dim]["plcc"] == before[dim]["plcc"]
            assert fresh.count() == 36
            import_file(fresh, tmp_path / name)  # again: nothing duplicated
            assert fresh.count() == 36


def test_isotonic_is_the_pool_adjacent_violators_fit():
    knots, values = isotonic(np.array([1, 2, 3, 4]), np.array([1.0, 3.0, 2.0, 4.0]))
    assert knots.tolist() == [1, 2, 3, 4] and values.tolist() == [1.0, 2.5, 2.5, 4.0]


def test_recalibration_fixes_a_judge_that_mixes_up_the_dimensions(tmp_path):
    rng = np.random.default_rng(2)
    q_true, a_true = rng.uniform(0, 100, 200), rng.uniform(0, 100, 200)
    judge_q = 0.5 * q_true + 0.5 * a_true + rng.normal(0, 2, 200)  # quality contaminated by authenticity
    judge_a = a_true + rng.normal(0, 2, 200)
    check = cross_validate(judge_q, judge_a, q_true, judge_q)
    assert check.after[0] > check.before[0] + 0.1 and check.after[1] > check.before[1]
    mapping = fit_monotone(judge_q, judge_a, q_true)
    assert np.all(np.diff(mapping.quality_values) >= 0)  # the main term never inverts the judge's ranking
    assert np.all(np.diff(mapping.authenticity_values) <= 0)  # the bleed of authenticity is taken back out
    path, _ = recalibrate({"quality": judge_q, "authenticity": judge_a}, {"quality": q_true, "authenticity": a_true},
                          out_dir=tmp_path)
    path2, _ = recalibrate({"quality": judge_q, "authenticity": judge_a}, {"quality": q_true, "authenticity": a_true},
                           out_dir=tmp_path)
    assert (path.name, path2.name) == ("score-map-v1.json", "score-map-v2.json") and path.exists()  # never overwritten
    assert set(load_score_map(path2)) == {"quality", "authenticity"}


def test_cli_imports_a_folder_exports_and_reimports(example_run, tmp_path, capsys):
    import shutil

    from judge.annotations.__main__ import main

    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(example_run[2] / "turntable.mp4", folder / "ours.mp4")
    (folder / "notes.txt").write_text("ignored")
    db = tmp_path / "a.sqlite"
    assert main(["--db", str(db), "import", str(folder)]) == 0
    assert "added 1 videos" in capsys.readouterr().out
    with AnnotationStore(db) as store:
        (item,) = store.items()
        assert json.loads(item.judge_json)["backend"] == "embedded-judge" and store.strip_path(item.item_id)
        store.add_rating(Rating(item.item_id, "ana", 70, 60, ["Eye"], [[10.0, 10.0]]))
    assert main(["--db", str(db), "export", str(tmp_path / "out.json")]) == 0
    assert main(["--db", str(tmp_path / "b.sqlite"), "import", str(tmp_path / "out.json")]) == 0
    assert "imported 1 ratings" in capsys.readouterr().out
    assert main(["--db", str(db), "stats"]) == 0 and '"ratings": 1' in capsys.readouterr().out
    assert main(["--db", str(db), "calibrate"]) == 2 and "needs at least 10" in capsys.readouterr().err


# --- a database that cannot be used, and exports that destroy nothing -----------------------------------

def _cli(*args: str) -> int:
    from judge.annotations.__main__ import main

    return main([str(a) for a in args])


def test_cli_names_a_corrupt_database_and_the_fix(tmp_path, capsys):
    db = tmp_path / "annotations.sqlite"
    db.write_bytes(np.random.default_rng(0).bytes(4096))
    assert _cli("--db", db, "stats") == 2
    err = capsys.readouterr().err
    assert str(db) in err and "file is not a database" in err and "Restore it from a backup" in err


def test_cli_names_an_unopenable_database_and_the_fix(tmp_path, capsys):
    (tmp_path / "folder.sqlite").mkdir()
    assert _cli("--db", tmp_path / "folder.sqlite", "stats") == 2
    assert "cannot be opened" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("x")
    assert _cli("--db", tmp_path / "a-file" / "a.sqlite", "stats") == 2
    assert f"{tmp_path / 'a-file' / 'a.sqlite'} cannot be created" in capsys.readouterr().err


def test_cli_names_a_read_only_database_and_the_fix(tmp_path, capsys, monkeypatch):
    with _filled_store(tmp_path, n_items=1) as store:
        export_json(store, tmp_path / "out.json")
    fresh = tmp_path / "fresh.sqlite"
    AnnotationStore(fresh).close()
    connect = sqlite3.connect  # as root, file modes do not stop writes: open the file read-only instead
    monkeypatch.setattr(sqlite3, "connect", lambda path, **kw: connect(f"file:{path}?mode=ro", uri=True, **kw))
    assert _cli("--db", fresh, "import", tmp_path / "out.json") == 2
    err = capsys.readouterr().err
    assert f"{fresh} cannot be written" in err and "read-only" in err and "another --db" in err
    with AnnotationStore(fresh) as store, pytest.raises(AnnotationError, match="read-only"):
        store.check()


class _FailingWrites:
    """A connection whose writes fail the way a full disk makes them fail."""

    def __init__(self, db: sqlite3.Connection, message: str):
        self._db, self._message = db, message

    def execute(self, sql: str, *args):
        if sql.lstrip().upper().startswith(("INSERT", "BEGIN")):
            raise sqlite3.OperationalError(self._message)
        return self._db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._db, name)


def test_a_full_disk_or_damaged_database_is_an_annotation_error(tmp_path):
    with AnnotationStore(tmp_path / "a.sqlite") as store:
        store.check()  # a healthy database passes
        item = store.add_item(_video(tmp_path, "a.mp4", b"x"), "upload")
        store._db = _FailingWrites(store._db, "database or disk is full")
        with pytest.raises(AnnotationError, match="the disk is full .*Free some space"):
            store.add_rating(Rating(item, "ana", 50, 50))
        with pytest.raises(AnnotationError, match="the disk is full"):
            store.add_item(_video(tmp_path, "b.mp4", b"y"), "upload")
        with pytest.raises(AnnotationError, match="the disk is full"):
            store.check()
        store._db = store._db._db
        assert store.count() == 0 and len(store.items()) == 1
    (tmp_path / "a.sqlite").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    with pytest.raises(AnnotationError, match="Restore it from a backup"):
        AnnotationStore(tmp_path / "a.sqlite").check()


def test_cli_export_never_overwrites_the_database_or_unrelated_files(tmp_path, capsys):
    db = tmp_path / "a.sqlite"
    _filled_store(tmp_path, n_items=2).close()
    (tmp_path / "notes.csv").write_text("my notes")
    assert _cli("--db", db, "export", db) == 2  # a .sqlite target is written as CSV: over the database itself
    assert "which this command reads" in capsys.readouterr().err
    assert _cli("--db", db, "export", tmp_path / "notes.csv") == 2
    assert "already exists and was not written by" in capsys.readouterr().err
    assert _cli("--db", db, "export", tmp_path) == 2
    assert "is a folder" in capsys.readouterr().err
    assert _cli("--db", db, "export", tmp_path / "notes.csv" / "out.csv") == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "notes.csv").read_text() == "my notes"
    with AnnotationStore(db) as store:
        assert store.integrity() == "ok" and store.count() == 6
    for name in ("out.csv", "out.json"):
        assert _cli("--db", db, "export", tmp_path / name) == 0
        assert _cli("--db", db, "export", tmp_path / name) == 0  # an earlier export is replaced
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


FORMULAS = {"annotator": '=HYPERLINK("http://x")', "comment": "+cmd"}


def test_cli_csv_export_escapes_formulas_and_round_trips(tmp_path, capsys):
    import csv

    db = tmp_path / "a.sqlite"
    with AnnotationStore(db) as store:
        item = store.add_item(_video(tmp_path, "a.mp4", b"x"), "upload", name="-1+1.mp4")
        ratings = [Rating(item, FORMULAS["annotator"], 0, 100, ["Mouth"], comment=FORMULAS["comment"]),
                   Rating(item, "@ana", 12.5, 7, comment="\t-tabbed"),
                   Rating(item, "'quoted", 50, 50, comment="'=already quoted")]
        for rating in ratings:
            store.add_rating(rating)
    assert _cli("--db", db, "export", tmp_path / "out.csv") == 0
    with open(tmp_path / "out.csv", newline="") as handle:
        rows = {row["rating_id"]: row for row in csv.DictReader(handle)}
    first = rows[ratings[0].rating_id]
    assert first["annotator"] == "'" + FORMULAS["annotator"] and first["comment"] == "'+cmd"
    assert first["name"] == "'-1+1.mp4" and first["quality"] == "0.0" and first["authenticity"] == "100.0"
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows.values() for cell in row.values())
    assert _cli("--db", tmp_path / "b.sqlite", "import", tmp_path / "out.csv") == 0
    with AnnotationStore(tmp_path / "b.sqlite") as fresh:
        assert sorted(fresh.ratings(), key=lambda r: r.rating_id) == sorted(ratings, key=lambda r: r.rating_id)
        assert fresh.item(item).name == "-1+1.mp4"
