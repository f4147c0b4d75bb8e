import pytest
import torch

from judge.lmm.heads import SaliencyHead, ScoreHead, correlation, saliency_loss


def test_score_head_maps_states_to_unit_scores():
    head = ScoreHead(32)
    out = head(torch.randn(5, 32))
    assert out.shape == (5,) and ((out > 0) & (out < 1)).all()
    assert [m.out_features for m in head.mlp if isinstance(m, torch.nn.Linear)] == [1024, 256, 64, 16, 1]


def test_saliency_head_gives_one_map_per_frame():
    torch.manual_seed(0)
    head = SaliencyHead(32, depths=2, width=16, out_size=40)
    n = 3 * 4 * 5
    logits = head(torch.randn(n, 32), [torch.randn(n, 32), torch.randn(n, 32)], torch.randn(32), (3, 4, 5))
    assert logits.shape == (3 * 2, 40, 40) and torch.isfinite(logits).all()  # 3 temporal patches of 2 frames
    with pytest.raises(ValueError, match="Expected 2 language-model states"):
        head(torch.randn(n, 32), [torch.randn(n, 32)], torch.randn(32), (3, 4, 5))


def test_saliency_loss_prefers_the_target_and_has_gradients():
    target = torch.zeros(2, 16, 16)
    target[:, 4:8, 4:8] = 1.0
    good = (target * 16 - 8).requires_grad_(True)  # sigmoid ~ target
    bad = (-good.detach()).requires_grad_(True)
    loss_good, loss_bad = saliency_loss(good, target), saliency_loss(bad, target)
    assert loss_good < loss_bad
    loss_bad.backward()
    assert torch.isfinite(bad.grad).all() and bad.grad.abs().sum() > 0


def test_correlation_is_pearson():
    a = torch.randn(3, 8, 8)
    assert torch.allclose(correlation(a, a), torch.ones(3), atol=1e-5)
    assert torch.allclose(correlation(a, -2 * a + 1), -torch.ones(3), atol=1e-5)


def test_score_head_gradient_check():
    head = ScoreHead(4, widths=(3,)).double()
    x = torch.randn(2, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: head.mlp(v), (x,))
