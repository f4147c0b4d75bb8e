"""The audit log: rows, retention, export, the command, and what write_outputs records."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import time

import pytest

from face_nerf.audit import AuditEntry, AuditError, AuditLog, retention_days

PHOTO_HASH = "ab" * 32


def entry(at: float, creation: str = "3fa9c01b22de", event: str = "create") -> AuditEntry:
    return AuditEntry(at, event, creation, PHOTO_HASH, "blue eyes", {"editor": "embedded-editor"}, "ui",
                      {"views.png": "cd" * 32})


def test_rows_come_back_newest_first_and_by_creation(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite", retention=30)
    now = time.time()
    log.record(entry(now - 20, "aaaaaaaaaaaa"))
    log.record(entry(now - 10, "bbbbbbbbbbbb"))
    log.record(entry(now, "aaaaaaaaaaaa", "relight"))
    rows = log.entries()
    assert [r.creation_id for r in rows] == ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "aaaaaaaaaaaa"]
    assert [r.event for r in log.entries("aaaaaaaaaaaa")] == ["relight", "create"]
    assert rows[0].backends == {"editor": "embedded-editor"} and rows[0].outputs == {"views.png": "cd" * 32}
    assert len(log.entries(limit=2)) == 2


def test_rows_past_the_retention_are_deleted(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite", retention=7)
    now = time.time()
    log.record(entry(now - 8 * 86400, "oldoldoldold"))  # recorded late: purged as it is written
    log.record(entry(now - 6 * 86400, "keptkeptkept"))
    assert [r.creation_id for r in log.entries()] == ["keptkeptkept"]
    assert log.purge(now + 2 * 86400) == 1 and log.entries() == []
    assert AuditLog(tmp_path / "audit.sqlite", retention=7).entries() == []  # and opening purges too


def test_retention_setting_is_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("FACELAB_AUDIT_RETENTION_DAYS", "14")
    assert retention_days() == 14.0
    for bad in ("0", "-3", "forever"):
        monkeypatch.setenv("FACELAB_AUDIT_RETENTION_DAYS", bad)
        with pytest.raises(AuditError, match="positive number of days"):
            retention_days()
    with pytest.raises(AuditError, match="positive number of days"):
        AuditLog(tmp_path / "a.sqlite", retention=0)


def test_an_unwritable_log_says_how_to_fix_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AuditError, match="FACELAB_AUDIT_DB"):
        AuditLog(blocker / "audit.sqlite", retention=1)


def test_export_csv_and_jsonl(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite", retention=30)
    log.record(entry(time.time()))
    assert log.export(tmp_path / "out.jsonl") == 1
    row = json.loads((tmp_path / "out.jsonl").read_text())
    assert row["photo_sha256"] == PHOTO_HASH and row["when"].endswith("+00:00")
    assert log.export(tmp_path / "out.csv") == 1
    with (tmp_path / "out.csv").open() as f:
        (line,) = list(csv.DictReader(f))
    assert json.loads(line["outputs"]) == {"views.png": "cd" * 32} and line["consent"] == "ui"
    with pytest.raises(AuditError, match=".csv or .jsonl"):
        log.export(tmp_path / "out.xlsx")


def test_write_outputs_records_hashes_not_the_photo(example_run, tmp_path):
    from face_nerf.pipeline import write_outputs
    from face_nerf.provenance import Provenance

    _, photo, _, recon, outputs = example_run
    log = AuditLog(tmp_path / "audit.sqlite", retention=30)
    out = write_outputs(recon, outputs, tmp_path / "run", provenance=Provenance(audit=log, consent="example"))
    (row,) = log.entries()
    assert row.creation_id == recon.creation_id and row.consent == "example" and row.event == "create"
    assert row.photo_sha256 == hashlib.sha256(photo.read_bytes()).hexdigest()
    for name, digest in row.outputs.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert set(row.outputs) >= {"turntable.mp4", "views.png", "mesh.glb", "input_view.png"}
    with sqlite3.connect(log.path) as db:  # nothing but text and hashes: no image bytes
        types = {t for (t,) in db.execute("SELECT DISTINCT typeof(photo_sha256) FROM creations")}
        largest = db.execute("SELECT max(length(outputs) + length(backends) + length(prompt)) FROM creations").fetchone()[0]
    assert types == {"text"} and largest < 2000


def test_audit_command_lists_and_exports(tmp_path, capsys):
    from face_nerf.__main__ import main

    db = tmp_path / "audit.sqlite"
    AuditLog(db, retention=30).record(entry(time.time()))
    assert main(["audit", "--db", str(db)]) == 0
    printed = capsys.readouterr().out
    assert "3fa9c01b22de" in printed and 'prompt "blue eyes"' in printed and "1 row(s)" in printed
    assert main(["audit", "--db", str(db), "--export", str(tmp_path / "all.jsonl")]) == 0
    assert json.loads((tmp_path / "all.jsonl").read_text())["creation_id"] == "3fa9c01b22de"
    assert main(["audit", "--db", str(db), "--export", str(tmp_path / "all.txt")]) == 2
