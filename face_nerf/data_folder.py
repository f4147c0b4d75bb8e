"""Where FaceLab 3D keeps what must outlive one run: the audit log, the generated signing key and the
annotators' ratings."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "FACELAB_DATA"
PERSISTENT = Path("/data")  # a Hugging Face Space's persistent storage, when the Space has it


def data_folder(persistent: Path = PERSISTENT) -> Path:
    """$FACELAB_DATA; else a Space's persistent storage (/data/facelab, kept across restarts) when it is
    there and writable; else ./data (lost when a Space restarts)."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    if persistent.is_dir() and os.access(persistent, os.W_OK):
        return persistent / "facelab"
    return Path("data")
