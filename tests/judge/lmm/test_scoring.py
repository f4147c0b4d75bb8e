import math

import pytest
import torch

from judge.lmm.scoring import level_probabilities, level_token_ids, one_token_mos

IDS = [3, 7, 1, 9, 4]  # bad, poor, fair, good, excellent


def test_one_token_mos_equals_the_hand_computed_rule():
    logits = torch.tensor([0.3, 1.0, -0.5, 2.0, 0.1, 0.7, -1.0, 0.2, 5.0, -0.3])
    level_logits = [logits[i].item() for i in IDS]
    exp = [math.exp(v) for v in level_logits]
    p = [e / sum(exp) for e in exp]
    s = sum((i + 1) * pi for i, pi in enumerate(p))
    assert one_token_mos(logits, IDS).item() == pytest.approx((s - 1) * 25, abs=1e-4)
    assert level_probabilities(logits, IDS).sum().item() == pytest.approx(1.0, abs=1e-6)


def test_all_mass_on_one_level_gives_its_end_of_the_scale():
    logits = torch.full((2, 10), -1e4)
    logits[0, IDS[-1]] = 0.0  # excellent
    logits[1, IDS[0]] = 0.0  # bad
    assert one_token_mos(logits, IDS).tolist() == pytest.approx([100.0, 0.0], abs=1e-3)


def test_mos_stays_in_range_and_ignores_other_tokens():
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(0)) * 10
    mos = one_token_mos(logits, IDS)
    assert ((mos >= 0) & (mos <= 100)).all()
    other = logits.clone()
    other[:, [0, 2, 5, 6, 8]] += 100.0  # tokens that are not level words
    assert torch.allclose(one_token_mos(other, IDS), mos)


def test_level_words_sharing_a_first_token_are_refused():
    class OneToken:
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [5]}

    with pytest.raises(ValueError, match="must differ"):
        level_token_ids(OneToken())
