"""Output folders: a command never deletes what it did not write, and a bad --out fails before any work.

The command-line tests are refused before the reconstruction starts, so they take no time (and the
reconstruction is replaced by a trap that fails the test if it ever runs).
"""

from __future__ import annotations

import json
import shutil

import pytest

from face_nerf.__main__ import main as cli_main
from face_nerf.output_folder import (MARKER, OutputError, check_output_file, check_output_folder, output_tool,
                                     staged_file, staged_folder)
from tests.conftest import EXAMPLES

TOOL = "face_nerf reconstruct"
FAST = ["--frames", "4", "--size", "64", "--quiet"]


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the reconstruction starts: a refused --out must be refused before it."""
    import face_nerf.pipeline as pipeline

    def trap(*args, **kwargs):
        raise AssertionError("the reconstruction started although --out was refusable at once")

    monkeypatch.setattr(pipeline, "reconstruct", trap)


def _victim(tmp_path):
    folder = tmp_path / "victim"
    folder.mkdir()
    photo = folder / "me.jpg"
    shutil.copy(EXAMPLES["grace_hopper"], photo)
    (folder / "notes.txt").write_text("mine")
    return folder, photo


# --- the command line ---------------------------------------------------------------------------------

def test_reconstruct_into_the_photos_own_folder_is_refused_and_deletes_nothing(tmp_path, capsys):
    folder, photo = _victim(tmp_path)
    assert cli_main(["reconstruct", str(photo), "--out", str(folder), *FAST]) == 2
    err = capsys.readouterr().err
    assert str(folder) in err and "contains the input" in err and "--out" in err
    assert sorted(p.name for p in folder.iterdir()) == ["me.jpg", "notes.txt"]
    assert photo.read_bytes() == EXAMPLES["grace_hopper"].read_bytes()


def test_reconstruct_refuses_a_folder_of_other_files(tmp_path, capsys, no_work):
    out = tmp_path / "documents"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    assert cli_main(["reconstruct", str(EXAMPLES["astronaut"]), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "thesis.tex" in err and "choose an empty or new folder" in err.lower()
    assert (out / "thesis.tex").read_text() == "years of work"


def test_reconstruct_refuses_another_tools_output_and_a_previous_output_holding_the_photo(tmp_path, capsys, no_work):
    judged = tmp_path / "judged"
    judged.mkdir()
    (judged / MARKER).write_text(json.dumps({"tool": "judge"}))
    (judged / "judge.json").write_text("{}")
    assert cli_main(["reconstruct", str(EXAMPLES["astronaut"]), "--out", str(judged), *FAST]) == 2
    assert "an output of judge" in capsys.readouterr().err
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / MARKER).write_text(json.dumps({"tool": TOOL}))
    shutil.copy(EXAMPLES["astronaut"], earlier / "me.png")
    assert cli_main(["reconstruct", str(earlier / "me.png"), "--out", str(earlier), *FAST]) == 2
    assert "contains the input" in capsys.readouterr().err
    assert (earlier / "me.png").exists() and (judged / "judge.json").exists()


@pytest.mark.parametrize("where", ["parent is a file", "is a file", "under /proc"])
def test_reconstruct_checks_an_unwritable_out_before_any_work(tmp_path, capsys, no_work, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = {"parent is a file": blocker / "out", "is a file": blocker, "under /proc": "/proc/facelab-out"}[where]
    assert cli_main(["reconstruct", str(EXAMPLES["astronaut"]), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "choose" in err.lower()
    assert blocker.read_text() == "x"


# --- the folder guard ---------------------------------------------------------------------------------

def test_staged_folder_marks_its_output_and_replaces_only_its_own(tmp_path):
    out = tmp_path / "run"
    with staged_folder(out, TOOL) as staging:
        (staging / "a.txt").write_text("first")
    assert output_tool(out) == TOOL and sorted(p.name for p in out.iterdir()) == [MARKER, "a.txt"]
    with staged_folder(out, TOOL) as staging:
        (staging / "b.txt").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging or old folder left behind
    with pytest.raises(OutputError, match="an output of face_nerf reconstruct, not of judge"):
        check_output_folder(out, "judge")


def test_staged_folder_leaves_the_target_as_it_was_on_failure(tmp_path):
    out = tmp_path / "run"
    with staged_folder(out, TOOL) as staging:
        (staging / "a.txt").write_text("first")
    with pytest.raises(RuntimeError, match="half way"), staged_folder(out, TOOL) as staging:
        (staging / "b.txt").write_text("second")
        raise RuntimeError("half way")
    assert (out / "a.txt").read_text() == "first" and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_files_put_into_the_target_during_the_run_are_not_deleted(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with pytest.raises(OutputError, match="late.txt"), staged_folder(out, TOOL) as staging:
        (staging / "a.txt").write_text("ours")
        (out / "late.txt").write_text("someone else's")  # the folder was empty when the run started
    assert [p.name for p in out.iterdir()] == ["late.txt"] and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_an_empty_folder_and_a_new_nested_one_are_accepted(tmp_path):
    (tmp_path / "empty").mkdir()
    assert check_output_folder(tmp_path / "empty", TOOL) == tmp_path / "empty"
    with staged_folder(tmp_path / "new" / "deeper", TOOL, [EXAMPLES["astronaut"]]) as staging:
        (staging / "a.txt").write_text("x")
    assert output_tool(tmp_path / "new" / "deeper") == TOOL


def test_a_linked_out_is_replaced_without_touching_what_it_points_to(tmp_path):
    real = tmp_path / "real"
    with staged_folder(real, TOOL) as staging:
        (staging / "a.txt").write_text("first")
    (tmp_path / "link").symlink_to(real)
    with staged_folder(tmp_path / "link", TOOL) as staging:
        (staging / "b.txt").write_text("second")
    assert (real / "a.txt").read_text() == "first"
    assert not (tmp_path / "link").is_symlink() and (tmp_path / "link" / "b.txt").exists()


def test_output_file_guard(tmp_path):
    database = tmp_path / "ratings.sqlite"
    database.write_bytes(b"SQLite format 3\x00")
    (tmp_path / "other.csv").write_text("precious")
    (tmp_path / "empty.csv").touch()
    with pytest.raises(OutputError, match="which this command reads"):
        check_output_file(database, "export", [database])
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path, "export")
    with pytest.raises(OutputError, match="already exists and was not written by export"):
        check_output_file(tmp_path / "other.csv", "export")
    assert check_output_file(tmp_path / "other.csv", "export", may_replace=lambda p: True).name == "other.csv"
    assert check_output_file(tmp_path / "empty.csv", "export").name == "empty.csv"
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_file(database / "x.csv", "export")


def test_staged_file_replaces_in_one_step_or_not_at_all(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), staged_file(target) as staging:
        staging.write_text("half")
        raise RuntimeError("stop")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with staged_file(target) as staging:
        staging.write_text("new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]
