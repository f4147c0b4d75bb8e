"""The judge says "made with FaceLab 3D" when a clip carries our watermark, and only then."""

from __future__ import annotations

import numpy as np

from judge.frames import load_clip
from judge.provenance import note_provenance
from judge.result import JudgeResult
from tests.conftest import shared_realworld


def test_our_turntable_is_named_and_the_result_keeps_it(example_run):
    from judge.analytic import EmbeddedJudge

    _, _, out, recon, _ = example_run
    result = EmbeddedJudge().judge(load_clip(out / "turntable.mp4"))
    assert result.provenance == f"made with FaceLab 3D (creation {recon.creation_id})"
    assert result.summary.startswith(f"Made with FaceLab 3D (creation {recon.creation_id}).")
    again = JudgeResult.from_dict(result.to_dict())
    assert again.provenance == result.provenance


def test_other_generators_clips_are_not_named():
    from judge.analytic import EmbeddedJudge

    clip = load_clip(sorted((shared_realworld() / "turntables").glob("*.mp4"))[0])
    result = EmbeddedJudge().judge(clip)
    assert result.provenance is None and "FaceLab" not in result.summary


def test_note_provenance_leaves_an_unmarked_result_alone(example_run):
    _, _, _, _, outputs = example_run
    result = JudgeResult.from_dict({"backend": "embedded-judge", "quality": {"mos": 50.0, "level": "fair"},
                                    "authenticity": {"mos": 50.0, "level": "fair"}, "distortions": [],
                                    "probabilities": {}, "summary": "Fine.", "face_found": True,
                                    "frame_indices": [0], "consistency_available": False})
    plain = np.full((3, 128, 128, 3), 200, np.uint8)
    assert note_provenance(result, plain).provenance is None and result.summary == "Fine."
    assert note_provenance(result, outputs.frames[:3]).provenance.startswith("made with FaceLab 3D")
