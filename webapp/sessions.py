"""Each browser session's files: its own folder of outputs, and the uploads its events received.

Everything goes when the session ends (the browser tab closes), and whatever is older than the
maximum age goes on a timer (``retention``), whether or not its session ended. A session that ends
while one of its requests is still running is remembered, so the request's late outputs are removed
as soon as they are written instead of staying behind.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from pathlib import Path

from webapp.retention import remove_older_than, remove_tree

LOCAL = "local"  # the session of calls made without a browser session (tests, scripts)


def session_name(request) -> str:
    """A folder-safe name for the request's browser session (``LOCAL`` without one)."""
    session = getattr(request, "session_hash", None) if request is not None else None
    if not session:
        return LOCAL
    return "".join(c for c in str(session) if c.isalnum() or c in "-_")[:64] or LOCAL


class SessionFiles:
    """Session folders under ``output_root``; uploads are removed only when they lie under
    ``uploads_root`` (Gradio's upload cache), never a file a caller passed from elsewhere.

    Args:
        output_root: where session folders are made.
        uploads_root: Gradio's upload cache (``gradio.utils.get_upload_folder()``).
        max_age_s: files older than this are removed by ``sweep``.
    """

    def __init__(self, output_root: Path, uploads_root: Path, max_age_s: float):
        self.output_root, self.uploads_root = Path(output_root), Path(uploads_root)
        self.max_age_s = max_age_s
        self.keep: frozenset[str] = frozenset()  # files Gradio keeps for every visitor (the examples): never removed
        self._sources: dict[str, str] = {}  # a file Gradio made from an upload (a decoded photo) -> the upload
        self.output_root.mkdir(parents=True, exist_ok=True)
        self._uploads: dict[str, set[Path]] = {}
        self._ended: dict[str, float] = {}  # session -> when it ended
        self._lock = threading.Lock()

    def folder(self, session: str) -> Path:
        """The session's folder."""
        return self.output_root / session

    def new_folder(self, session: str) -> Path:
        """A fresh folder inside the session's folder, for one result."""
        root = self.folder(session)
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=root))

    def derived(self, made: str | Path, upload: str | Path) -> None:
        """Note that Gradio made ``made`` from the visitor's ``upload`` (a photo decoded and saved again),
        so that both go with the session that receives ``made``."""
        with self._lock:
            self._sources[str(Path(made).resolve())] = str(Path(upload).resolve())

    def received(self, session: str, path: str | Path | None) -> None:
        """Note a file an event of ``session`` received, to remove it (and the upload it was made from)
        when the session ends; only files in Gradio's upload cache, and never those it keeps for everyone."""
        if not path:
            return
        path = Path(path).resolve()
        with self._lock:
            source = self._sources.pop(str(path), None)
            for item in (path, Path(source) if source else None):
                if item is not None and item.is_relative_to(self.uploads_root.resolve()) and str(item) not in self.keep:
                    self._uploads.setdefault(session, set()).add(item)

    def image(self, session: str, array) -> str | None:
        """Write an image the page shows (a heatmap over a visitor's face) into the session's folder, so
        it goes with the session; its path, or None for no image."""
        from PIL import Image

        if array is None:
            return None
        folder = self.folder(session) / "shown"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid4().hex}.png"
        Image.fromarray(array).save(path)
        return str(path)

    def end(self, session: str) -> None:
        """Remove the session's folder and the uploads its events received."""
        with self._lock:
            uploads = self._uploads.pop(session, set())
            if session != LOCAL:
                self._ended[session] = time.time()
        remove_tree(self.folder(session))
        for path in uploads:
            path.unlink(missing_ok=True)
            if path.parent != self.uploads_root.resolve():
                try:
                    path.parent.rmdir()  # Gradio's per-upload folder, when nothing else is in it
                except OSError:
                    pass

    def ended(self, session: str) -> bool:
        """Whether the session has ended (its late outputs must be removed)."""
        with self._lock:
            return session in self._ended

    def sweep(self) -> int:
        """Remove every file older than the maximum age (outputs and uploads) and forget sessions that
        ended that long ago. Returns how many files were removed."""
        inside = self.output_root.resolve().is_relative_to(self.uploads_root.resolve())  # as the app lays them out
        roots = [self.uploads_root] if inside else [self.output_root, self.uploads_root]
        removed = remove_older_than(roots, self.max_age_s, keep=self.keep)
        cutoff = time.time() - self.max_age_s
        with self._lock:
            for session in [s for s, when in self._ended.items() if when < cutoff]:
                del self._ended[session]
            for made in [m for m in self._sources if not Path(m).exists()]:
                del self._sources[made]
            for session, paths in list(self._uploads.items()):
                paths -= {p for p in paths if not p.exists()}
                if not paths:
                    del self._uploads[session]
        return removed
