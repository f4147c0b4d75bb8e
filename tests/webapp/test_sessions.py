"""Session files: a session's folder and uploads go when it ends; other files are never touched."""

from __future__ import annotations

from types import SimpleNamespace

from webapp.sessions import LOCAL, SessionFiles, session_name


def test_session_names_are_folder_safe():
    assert session_name(SimpleNamespace(session_hash="ab/../c d")) == "abcd"
    assert session_name(None) == LOCAL and session_name(SimpleNamespace(session_hash=None)) == LOCAL


def test_ending_a_session_removes_its_outputs_and_uploads_only(tmp_path):
    """Also the upload a decoded photo was made from (Gradio's gr.Image saves a new file)."""
    uploads = tmp_path / "uploads"
    files = SessionFiles(uploads / "sessions", uploads, max_age_s=3600)
    photo = uploads / "hash1" / "me.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"jpeg")
    mine = tmp_path / "elsewhere" / "mine.jpg"  # a caller's own file, outside the upload cache
    mine.parent.mkdir()
    mine.write_bytes(b"jpeg")
    other = files.new_folder("bob") / "turntable.mp4"
    other.write_bytes(b"mp4")
    out = files.new_folder("alice") / "turntable.mp4"
    out.write_bytes(b"mp4")
    decoded = uploads / "hash3" / "image.png"
    decoded.parent.mkdir()
    decoded.write_bytes(b"png")
    files.derived(decoded, photo)
    files.received("alice", decoded)
    files.received("alice", mine)
    files.end("alice")
    assert not out.exists() and not files.folder("alice").exists()
    assert not photo.exists() and not photo.parent.exists() and not decoded.exists()
    assert mine.exists() and other.exists() and files.ended("alice") and not files.ended("bob")


def test_files_gradio_keeps_for_everyone_are_not_removed_at_a_sessions_end(tmp_path):
    files = SessionFiles(tmp_path / "sessions", tmp_path, max_age_s=3600)
    example = tmp_path / "hash2" / "astronaut.png"
    example.parent.mkdir()
    example.write_bytes(b"png")
    files.keep = frozenset({str(example.resolve())})  # an example photo, cached by Gradio for every visitor
    files.received("alice", example)
    files.end("alice")
    assert example.exists()
