"""bench/judge_rated.py: reading a person's ratings, and the judge on two rated clips of other generators."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import ROOT, shared_realworld

sys.path.insert(0, str(ROOT / "bench"))

from judge_rated import read_ratings  # noqa: E402


def test_ratings_are_read_with_their_categories(tmp_path):
    (tmp_path / "ratings.tsv").write_text("file\tquality\tauthenticity\tcategories\tnote\n"
                                          "turntables/a.mp4\t80\t35\tNo Distortion\tclean cartoon\n"
                                          "turntables/b.gif\t50\t30\tHead Structure; Overlap/Blending\tmask\n")
    first, second = read_ratings(tmp_path)
    assert first.path == tmp_path / "turntables" / "a.mp4" and (first.quality, first.authenticity) == (80.0, 35.0)
    assert second.categories == ("Head Structure", "Overlap/Blending") and second.note == "mask"


@pytest.fixture(scope="module")
def judged():
    from judge.analytic import EmbeddedJudge
    from judge.frames import load_clip

    shared = shared_realworld()
    judge = EmbeddedJudge()
    return {name: judge.judge(load_clip(shared / "turntables" / name))
            for name in ("t13b_hrn_textured_mesh_crop.mp4", "t10_nerfies_bearded_man.mp4")}


def test_a_textured_face_mask_is_judged_a_broken_head_and_a_real_capture_is_not(judged):
    mask, capture = judged["t13b_hrn_textured_mesh_crop.mp4"], judged["t10_nerfies_bearded_man.mp4"]
    assert mask.authenticity.mos <= 40 < capture.authenticity.mos
    assert {"Head Structure", "Overlap/Blending"} & {d.category for d in mask.distortions}
    assert mask.measures["head"] > capture.measures["head"]
