"""The app's settings: read before anything heavy, bad values refused, ratings kept where they last."""

from __future__ import annotations

import pytest

from webapp.settings import ratings_path, parse_settings


def test_ratings_live_in_a_spaces_persistent_storage_when_it_is_there(tmp_path, monkeypatch):
    monkeypatch.delenv("FACELAB_ANNOTATIONS", raising=False)
    monkeypatch.delenv("FACELAB_DATA", raising=False)
    assert ratings_path(tmp_path) == tmp_path / "facelab" / "annotations.sqlite"
    assert str(ratings_path(tmp_path / "missing")) == "data/annotations.sqlite"
    monkeypatch.setenv("FACELAB_ANNOTATIONS", str(tmp_path / "mine.sqlite"))
    assert ratings_path(tmp_path) == tmp_path / "mine.sqlite"


def test_settings_from_the_environment_and_the_command_line(monkeypatch, capsys):
    monkeypatch.setenv("GRADIO_SERVER_NAME", "127.0.0.1")
    monkeypatch.setenv("PORT", "7999")
    monkeypatch.setenv("FACELAB_EXAMPLES", "0")
    settings = parse_settings([])
    assert (settings.server_name, settings.port, settings.examples, settings.backend) == ("127.0.0.1", 7999, False, "embedded")
    assert parse_settings(["--port", "8001"]).port == 8001
    monkeypatch.setenv("FACELAB_MAX_AGE_S", "-5")
    with pytest.raises(SystemExit):
        parse_settings([])
    assert "FACELAB_MAX_AGE_S must be a positive number" in capsys.readouterr().err
