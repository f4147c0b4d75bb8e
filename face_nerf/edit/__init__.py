"""Text edits of a head field: ``Editor`` implementations take a field and a prompt and return the
edited field with the list of edits applied."""

from face_nerf.edit.base import AppliedEdit, EditResult, Editor
from face_nerf.edit.embedded import EmbeddedEditor
from face_nerf.edit.prompt import PromptError

__all__ = ["AppliedEdit", "EditResult", "Editor", "EmbeddedEditor", "PromptError"]
