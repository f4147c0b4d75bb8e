"""The judges the app serves: the embedded judge, and the LMM judge when a checkpoint is configured.
Each loads on first use; the LMM judge is refused with its own reason (no model, too slow here)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import gradio as gr
import numpy as np

from face_nerf.errors import FaceLabError
from webapp.settings import BACKEND_ENV, BACKENDS

STATIC_CACHE_ENV = "FACELAB_LMM_STATIC_CACHE"  # "1": the LMM judge decodes with a compiled static cache


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
    """The LMM judge, loaded. With ${STATIC_CACHE_ENV}=1 on a GPU it decodes with a static KV cache
    (transformers compiles the decoding step: ~0.66 s instead of ~1 s per judgement on an H200), and
    one judgement of a blank 512 px turntable pays the compilation (~30 s) here rather than in the
    first request (another frame size compiles again)."""
    import torch

    from judge.frames import load_clip
    from judge.lmm.checkpoint import LMMConfig
    from judge.lmm.judge import LMMJudge

    static = os.environ.get(STATIC_CACHE_ENV) == "1" and torch.cuda.is_available()
    try:
        judge = LMMJudge(LMMConfig(static_cache=static))
        _ = judge.loaded
        if judge.config.static_cache:
            judge.judge(load_clip(np.full((16, 512, 512, 3), 128, np.uint8)))
    except FaceLabError as err:
        raise gr.Error(str(err)) from err
    return judge
