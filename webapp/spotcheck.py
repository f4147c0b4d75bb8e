"""The spot-check tab's handlers: a queue of items per annotator, ratings stored one transaction each,
and the judge's verdict shown only after the annotator has submitted (no anchoring).

Who may use it: with ``$FACELAB_ANNOTATOR_KEY`` set, whoever gives the key; without one, anyone on a
local machine, and nobody on a public Space (``$SPACE_ID`` set), where the tab is hidden and its
handlers refuse. The queue holds only what was put there on purpose: an operator's import, or a
visitor's own result added with the "Add to the spot-check queue" button.

Problems an annotator can act on (no name, no item loaded, a wrong key) come back as a message line,
never as an error on the panels.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np

from judge.annotations.store import DEFAULT_PATH, AnnotationError, AnnotationStore, Rating
from judge.result import level_word
from webapp.text import markdown_text

KEY_ENV = "FACELAB_ANNOTATOR_KEY"
QUEUE_NOTICE = ("Adds this turntable and its 3-view strip to the spot-check queue: the annotators of this app "
                "will see them, and they are kept in the ratings store until an operator removes them.")
log = logging.getLogger(__name__)


def items_per_hour(times: list[float], now: float, window_s: float = 3600.0) -> float | None:
    """An annotator's pace over the last ``window_s``: ratings per hour between the first and the last
    of that window (None for fewer than two)."""
    recent = sorted(t for t in times if now - t <= window_s)
    if len(recent) < 2 or recent[-1] <= recent[0]:
        return None
    return (len(recent) - 1) / (recent[-1] - recent[0]) * 3600.0


class SpotCheckRefused(Exception):
    """The spot-check cannot be used now; the message says why and what to do."""


@dataclass
class SpotCheck:
    """Holds the ratings database (path from $FACELAB_ANNOTATIONS, default data/annotations.sqlite).

    Attributes:
        path: the SQLite file; media of queued items are copied beside it.
        key: the annotators' key ($FACELAB_ANNOTATOR_KEY); None: no key asked.
        public: a public deployment ($SPACE_ID set), where the tab needs a key to exist at all.
    """

    path: Path = field(default_factory=lambda: Path(os.environ.get("FACELAB_ANNOTATIONS", DEFAULT_PATH)))
    key: str | None = field(default_factory=lambda: os.environ.get(KEY_ENV) or None)
    public: bool = field(default_factory=lambda: bool(os.environ.get("SPACE_ID")))
    _store: AnnotationStore | None = None
    _problem: str | None = None

    @property
    def enabled(self) -> bool:
        """Whether the tab is offered: a key is set, or this is not a public deployment."""
        return self.key is not None or not self.public

    @property
    def disabled_reason(self) -> str:
        return (f"Spot-checks are switched off on this public Space. To enable them, set the {KEY_ENV} secret "
                "in the Space's settings and give the key to your annotators.")

    @property
    def store(self) -> AnnotationStore:
        if self._problem is not None:
            raise SpotCheckRefused(self._problem)
        if self._store is None:
            try:
                self._store = AnnotationStore(self.path)
            except (AnnotationError, OSError) as err:
                self._problem = f"Ratings are unavailable: {err}"
                raise SpotCheckRefused(self._problem) from err
        return self._store

    def check(self) -> str | None:
        """Open the ratings store now and try it; the reason it is unusable (also logged), or None when it
        works. The rest of the app works either way."""
        try:
            self.store.check()
        except SpotCheckRefused:  # ``store`` recorded why it could not open
            pass
        except AnnotationError as err:
            self._problem = f"Ratings are unavailable: {err}"
        if self._problem is not None:
            log.warning("%s", self._problem)
        return self._problem

    def add(self, video: str, judgement, source: str) -> str:
        """Queue a video with the judge's verdict (its media copied into the store); a line for the page."""
        try:
            item_id = self.store.add_item(video, source, judgement.to_json(), strip_heatmap=judgement.strip_heatmap,
                                          strip=judgement.strip)
        except (SpotCheckRefused, AnnotationError, OSError) as err:
            return f"Not added: {err}"
        return (f"Added to the spot-check queue as item {item_id[:12]}: the annotators of this app will see it; it "
                "stays in the ratings store until an operator removes it.")

    def authorise(self, key: str | None) -> None:
        """Refuse unless the spot-check is offered here and ``key`` is the annotators' key (when one is set)."""
        if not self.enabled:
            raise SpotCheckRefused(self.disabled_reason)
        if self.key is not None and not hmac.compare_digest((key or "").encode(), self.key.encode()):
            raise SpotCheckRefused("Enter the annotator key you were given (ask the operator of this app).")

    # --- the tab's events: each returns a message line instead of raising ------------------------

    def next_item(self, annotator: str, key: str = "") -> tuple[str | None, str | None, np.ndarray | None, list, str]:
        """(item id, video, strip, no clicks, a progress line) of the annotator's next item."""
        annotator = (annotator or "").strip()
        try:
            self.authorise(key)
            if not annotator:
                raise SpotCheckRefused("Enter your name first, so your ratings can be told apart from others'.")
            queue = self.store.queue(annotator)
            done = len({r.item_id for r in self.store.ratings() if r.annotator == annotator})
        except SpotCheckRefused as err:
            return None, None, None, [], f"⚠️ {markdown_text(err)}"
        who = markdown_text(annotator)
        pace = items_per_hour([r.created for r in self.store.ratings() if r.annotator == annotator], time.time())
        pace = f" · {pace:.0f} items/hour" if pace else ""
        if not queue:
            return None, None, None, [], f"**{who}**: nothing left to rate ({done} rated{pace}). Thank you!"
        item = queue[0]
        return (item.item_id, item.path if Path(item.path).exists() else None, self._strip(item.item_id, []), [],
                f"**{who}**: item {done + 1} of {done + len(queue)} · {markdown_text(item.name)}{pace}")

    def click(self, item_id: str | None, clicks: list, key: str, event: gr.SelectData) -> tuple[np.ndarray | None, list]:
        """Add a click on the strip (a distorted spot) and redraw the marks."""
        try:
            self.authorise(key)
        except SpotCheckRefused:
            return None, []
        if not item_id:
            return None, clicks
        clicks = [*clicks, [float(event.index[0]), float(event.index[1])]]
        return self._strip(item_id, clicks), clicks

    def undo(self, item_id: str | None, clicks: list, key: str = "") -> tuple[np.ndarray | None, list]:
        try:
            self.authorise(key)
        except SpotCheckRefused:
            return None, []
        clicks = clicks[:-1]
        return (self._strip(item_id, clicks) if item_id else None), clicks

    def submit(self, annotator: str, item_id: str | None, quality: float, authenticity: float, categories: list[str],
               clicks: list, comment: str, rating_id: str, key: str = "") -> tuple[str, bool]:
        """Store the rating (a retried submit with the same ``rating_id`` is stored once); returns (the
        judge's verdict next to the annotator's, or what to fix; whether it was saved)."""
        try:
            self.authorise(key)
            if not item_id:
                raise SpotCheckRefused("Load an item first: enter your name and press Start.")
            rating = Rating(item_id, annotator or "", float(quality), float(authenticity), list(categories or []),
                            clicks or [], comment or "", rating_id)
            self.store.add_rating(rating)
            item = self.store.item(item_id)
        except (SpotCheckRefused, AnnotationError) as err:
            return f"⚠️ Not saved: {markdown_text(err)}", False
        judge = json.loads(item.judge_json) if item.judge_json else None
        saved = f"Saved **{markdown_text(item.name)}**"
        yours = f"yours: quality {quality:.0f} ({level_word(quality)}), authenticity {authenticity:.0f} ({level_word(authenticity)}), " \
                f"{', '.join(categories or []) or 'no category'}"
        if judge is None:
            return f"{saved}. {yours}. (No judge verdict for this item.)", True
        found = ", ".join(d["category"] for d in judge["distortions"]) or "nothing"
        return (f"{saved}. {yours}.  \n**Judge ({markdown_text(judge['backend'])})**: quality {judge['quality']['mos']:.0f} "
                f"({judge['quality']['level']}), authenticity {judge['authenticity']['mos']:.0f} "
                f"({judge['authenticity']['level']}), found {found}."), True

    def _strip(self, item_id: str, clicks: list) -> np.ndarray | None:
        from PIL import Image, ImageDraw

        path = self.store.strip_path(item_id)
        if path is None:
            return None
        image = Image.open(path).convert("RGB")
        draw = ImageDraw.Draw(image)
        for x, y in clicks:
            draw.ellipse([x - 6, y - 6, x + 6, y + 6], outline=(255, 0, 0), width=3)
        return np.asarray(image)
