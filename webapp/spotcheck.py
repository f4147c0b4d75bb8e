"""The spot-check tab's handlers: a queue of items per annotator, ratings stored one transaction each,
and the judge's verdict shown only after the annotator has submitted (no anchoring)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np

from judge.annotations.store import DEFAULT_PATH, AnnotationError, AnnotationStore, Rating
from judge.result import LEVELS, level_word

SLIDER_INFO = " · ".join(f"{20 * i}-{20 * (i + 1)} {w}" for i, w in enumerate(LEVELS))


@dataclass
class SpotCheck:
    """Holds the ratings database (path from $FACELAB_ANNOTATIONS, default data/annotations.sqlite)."""

    path: Path = field(default_factory=lambda: Path(os.environ.get("FACELAB_ANNOTATIONS", DEFAULT_PATH)))
    _store: AnnotationStore | None = None

    @property
    def store(self) -> AnnotationStore:
        if self._store is None:
            self._store = AnnotationStore(self.path)
        return self._store

    def add(self, video: str, judgement, source: str) -> str:
        """Queue a video (made in the app or uploaded) with the judge's verdict."""
        return self.store.add_item(video, source, judgement.to_json(), strip_heatmap=judgement.strip_heatmap,
                                   strip=judgement.strip)

    def next_item(self, annotator: str) -> tuple[str | None, str | None, np.ndarray | None, list, str]:
        """(item id, video, strip, no clicks, a progress line) of the annotator's next item."""
        annotator = (annotator or "").strip()
        if not annotator:
            raise gr.Error("Enter your name first, so your ratings can be told apart from others'.")
        queue = self.store.queue(annotator)
        done = len({r.item_id for r in self.store.ratings() if r.annotator == annotator})
        if not queue:
            return None, None, None, [], f"**{annotator}**: nothing left to rate ({done} rated). Thank you!"
        item = queue[0]
        return (item.item_id, item.path if Path(item.path).exists() else None, self._strip(item.item_id, []), [],
                f"**{annotator}**: item {done + 1} of {done + len(queue)} · `{item.name}`")

    def click(self, item_id: str | None, clicks: list, event: gr.SelectData) -> tuple[np.ndarray | None, list]:
        """Add a click on the strip (a distorted spot) and redraw the marks."""
        if not item_id:
            raise gr.Error("Load an item first.")
        clicks = [*clicks, [float(event.index[0]), float(event.index[1])]]
        return self._strip(item_id, clicks), clicks

    def undo(self, item_id: str | None, clicks: list) -> tuple[np.ndarray | None, list]:
        clicks = clicks[:-1]
        return (self._strip(item_id, clicks) if item_id else None), clicks

    def submit(self, annotator: str, item_id: str | None, quality: float, authenticity: float, categories: list[str],
               clicks: list, comment: str, rating_id: str) -> str:
        """Store the rating (a retried submit with the same ``rating_id`` is stored once) and reveal the
        judge's verdict next to the annotator's."""
        if not item_id:
            raise gr.Error("Load an item first.")
        try:
            rating = Rating(item_id, annotator or "", float(quality), float(authenticity), list(categories or []),
                            clicks or [], comment or "", rating_id)
            self.store.add_rating(rating)
        except AnnotationError as err:
            raise gr.Error(str(err)) from err
        item = self.store.item(item_id)
        judge = json.loads(item.judge_json) if item.judge_json else None
        yours = f"yours: quality {quality:.0f} ({level_word(quality)}), authenticity {authenticity:.0f} ({level_word(authenticity)}), " \
                f"{', '.join(categories or []) or 'no category'}"
        if judge is None:
            return f"Saved. {yours}. (No judge verdict for this item.)"
        found = ", ".join(d["category"] for d in judge["distortions"]) or "nothing"
        return (f"Saved. {yours}.  \n**Judge ({judge['backend']})**: quality {judge['quality']['mos']:.0f} "
                f"({judge['quality']['level']}), authenticity {judge['authenticity']['mos']:.0f} "
                f"({judge['authenticity']['level']}), found {found}.")

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

