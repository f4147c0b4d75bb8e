"""Whether a judged clip was made with FaceLab 3D: the invisible watermark every render carries
(``face_nerf.watermark``), looked for at a few likely scales in a few frames (~0.1 s)."""

from __future__ import annotations

import numpy as np

from face_nerf.provenance import MADE_WITH
from face_nerf.watermark import Detection, detect
from judge.result import JudgeResult

FRAMES = 4  # frames read for the watermark (each one alone recovers it from our renders)
SCALES = (1.0, 0.5, 2.0, 0.75)  # as rendered, halved (a 512 px render at 256, a thumbnail), doubled


def find_watermark(frames: np.ndarray) -> Detection:
    """FaceLab 3D's watermark looked for in the frames [T, H, W, 3] (``FRAMES`` of them, at ``SCALES``)."""
    return detect(frames, max_frames=FRAMES, scales=SCALES)


def note_provenance(result: JudgeResult, frames: np.ndarray) -> JudgeResult:
    """Say in ``result`` (its ``provenance`` and the start of its summary) that the frames [T, H, W, 3]
    carry FaceLab 3D's watermark, when they do; returns ``result``."""
    return note_watermark(result, find_watermark(frames))


def note_watermark(result: JudgeResult, found: Detection) -> JudgeResult:
    """``note_provenance`` with the watermark already looked for (``find_watermark``)."""
    if found.found:
        result.provenance = f"{MADE_WITH} (creation {found.creation_id})"
        result.summary = f"{MADE_WITH[0].upper()}{MADE_WITH[1:]} (creation {found.creation_id}). {result.summary}"
    return result
