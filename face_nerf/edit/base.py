"""The interface every editor implements (the embedded one, and the diffusion-guided one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from face_nerf.field import HeadField


@dataclass(frozen=True)
class AppliedEdit:
    """One change made to the field, for the user: "lips -> red (strong)".

    Attributes:
        target: what changed ("lips", "hair", "smile", ...).
        change: to what ("#c8102e", "darker", "mouth corners up and out", ...).
        strength: 1 = normal.
        phrase: the prompt words it came from.
        matched: how the words were understood when not literally ("meaning: ...", "spelling: ...").
    """

    target: str
    change: str
    strength: float
    phrase: str
    matched: str = ""

    @property
    def level(self) -> str:
        return "slight" if self.strength < 0.75 else "strong" if self.strength > 1.25 else "normal"

    def describe(self) -> str:
        note = f" [{self.matched}]" if self.matched else ""
        return f"{self.target} -> {self.change} ({self.level}){note}"


@dataclass
class EditResult:
    """An edited field and what was done to it."""

    field: HeadField
    applied: list[AppliedEdit]
    backend: str
    timings: dict[str, float] = field(default_factory=dict)
    prompt: str = ""  # as typed (for the provenance manifest and the audit log)

    def summary(self) -> str:
        """"applied: lips -> red (strong), hair -> grey (normal)" or "no edit"."""
        return "applied: " + ", ".join(a.describe() for a in self.applied) if self.applied else "no edit"


class Editor(Protocol):
    """Takes a field and a prompt, returns the edited field and the edits applied."""

    name: str

    def edit(self, field: HeadField, prompt: str, seed: int = 0) -> EditResult:
        """Raises ``PromptError`` (a ``FaceLabError``) when the prompt cannot be read."""
