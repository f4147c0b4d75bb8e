"""The judges the app serves: the embedded judge, and the LMM judge when a checkpoint is configured.
The app loads the LMM judge at start when it offers it (``Judges.load_offered``: loading and compiling
are no request's wait); otherwise each judge loads on first use. The LMM judge is refused with its own
reason (no model, too slow here)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import gradio as gr

from face_nerf.errors import FaceLabError
from webapp.settings import BACKEND_ENV, BACKENDS


@dataclass
class Judges:
    """``backend``: the judge of creations and the default of the Judge tab ("embedded" or "lmm")."""

    backend: str = field(default_factory=lambda: os.environ.get(BACKEND_ENV, "embedded"))
    _embedded: object = None
    _lmm: object = None

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"The judge backend must be one of {BACKENDS}. Got {self.backend!r} (${BACKEND_ENV}?).")

    @property
    def embedded(self):
        from judge.analytic import EmbeddedJudge

        if self._embedded is None:
            self._embedded = EmbeddedJudge()
        return self._embedded

    @property
    def lmm(self):
        """The LMM judge once loaded (None before)."""
        return self._lmm

    @property
    def lmm_model(self) -> str | None:
        """The vision-language checkpoint configured for the LMM judge ($FACELAB_LMM_MODEL), if any."""
        from judge.lmm.checkpoint import MODEL_ENV

        return os.environ.get(MODEL_ENV) or None

    def load_offered(self) -> str | None:
        """Load the LMM judge now, at start, when the app offers it (the backend, or the Judge tab's choice
        when a checkpoint is configured), so that no request waits for its loading or compilation.
        Returns why it cannot run (no model, too slow here), or None."""
        if self.backend != "lmm" and self.lmm_model is None:
            return None
        try:
            self.get("lmm")
        except gr.Error as err:
            return err.message
        return None

    def get(self, backend: str | None = None):
        """The judge for ``backend`` (default: ``self.backend``); gr.Error with the reason when the LMM
        judge cannot run."""
        backend = backend or self.backend
        if backend not in BACKENDS:
            raise gr.Error(f"Unknown judge backend {backend!r}; choose embedded or lmm.")
        if backend == "embedded":
            return self.embedded
        if self._lmm is None:
            self._lmm = load_lmm_judge()
        return self._lmm


def load_lmm_judge():
    """The LMM judge, loaded and warmed up (``LMMJudge.warm_up``): on a GPU it decodes with a compiled
    static cache by default (``$FACELAB_LMM_STATIC_CACHE=0`` turns that off), and the compilation is
    paid here, at load, rather than in the first request."""
    from judge.lmm.judge import LMMJudge

    try:
        judge = LMMJudge()
        _ = judge.loaded
        judge.warm_up()
    except FaceLabError as err:
        raise gr.Error(str(err)) from err
    return judge
