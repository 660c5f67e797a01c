"""Triplet loss with its mining rules, GE2E, gradient reversal and the lambda schedule (spec §8)."""

import math

import pytest
import torch
import torch.nn.functional as F

from devicelab.methods.sv_kan.losses import (
    GE2ELoss,
    ge2e_similarity,
    positive_mask,
    squared_distances,
    triplet_loss,
    triplet_mask,
)
from devicelab.methods.sv_kan.model import KeywordAdversary, ResNetSE
from devicelab.nn.gradient_reversal import GradientReversal, dann_lambda

# speaker 0: a, b; speaker 1: c, d (unit vectors). d = 2 - 2 cos: ab 0.4, ac 2, ad 3.2, bc 0.8, bd 2, cd 0.4
BATCH = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
SPEAKERS = torch.tensor([0, 0, 1, 1])


def test_squared_distances_are_two_minus_two_cosine():
    expected = torch.tensor(
        [[0.0, 0.4, 2.0, 3.2], [0.4, 0.0, 0.8, 2.0], [2.0, 0.8, 0.0, 0.4], [3.2, 2.0, 0.4, 0.0]]
    )
    torch.testing.assert_close(squared_distances(BATCH), expected, atol=1e-6, rtol=0)


def test_triplet_masks_on_a_hand_made_batch():
    mask = triplet_mask(SPEAKERS)
    assert mask.sum() == 8  # 4 anchors x 1 positive x 2 negatives
    assert mask[0, 1, 2] and mask[0, 1, 3] and not mask[0, 0, 2] and not mask[0, 2, 3]
    # text-aware positives: an utterance of the same keyword is no positive
    keywords = torch.tensor([5, 5, 6, 7])
    assert positive_mask(SPEAKERS, keywords, text_aware=True).tolist() == [
        [False, False, False, False],
        [False, False, False, False],
        [False, False, False, True],
        [False, False, True, False],
    ]


def test_known_loss_values():
    # margin 0.5: violating triplets (b, a, c) and (c, d, b), each 0.4 - 0.8 + 0.5 = 0.1
    assert float(triplet_loss(BATCH, SPEAKERS, 0.5, "batch_all")) == pytest.approx(0.1, abs=1e-6)
    # batch hard: anchors b and c give 0.1, a and d give 0 -> mean 0.05
    assert float(triplet_loss(BATCH, SPEAKERS, 0.5, "batch_hard")) == pytest.approx(0.05, abs=1e-6)
    # semi-hard: for (a, b) the closest negative beyond 0.4 is c (2.0) -> 0; (b, a): bc 0.8 -> 0.1;
    # (c, d): cb 0.8 -> 0.1; (d, c): db 2.0 -> 0 -> mean 0.05
    assert float(triplet_loss(BATCH, SPEAKERS, 0.5, "semi_hard")) == pytest.approx(0.05, abs=1e-6)


@pytest.mark.parametrize("mining", ["batch_all", "batch_hard", "semi_hard"])
def test_loss_is_zero_once_margins_hold_and_has_gradient_otherwise(mining):
    assert float(triplet_loss(BATCH, SPEAKERS, 0.3, mining)) == 0.0
    e = F.normalize(torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), dim=1).requires_grad_()
    loss = triplet_loss(e, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), 1.0, mining)
    loss.backward()
    assert float(loss.detach()) > 0 and e.grad.abs().sum() > 0


def test_unknown_mining_is_named():
    with pytest.raises(ValueError, match="mining='hardest'"):
        triplet_loss(BATCH, SPEAKERS, 0.3, "hardest")


def test_ge2e_against_a_hand_computation():
    g = torch.Generator().manual_seed(3)
    e = F.normalize(torch.randn(2, 2, 3, generator=g), dim=-1)  # 2 speakers x 2 utterances
    cos = lambda u, v: float(F.cosine_similarity(u, v, dim=0))  # noqa: E731
    w, b = 10.0, -5.0
    total = 0.0
    for j in range(2):
        for i in range(2):
            # own centroid without the utterance itself: with M = 2 it is the other utterance
            s = [
                w * cos(e[j, i], e[k].mean(0)) + b if k != j else w * cos(e[j, i], e[j, 1 - i]) + b
                for k in range(2)
            ]
            total += -s[j] + math.log(sum(math.exp(x) for x in s))
    assert float(GE2ELoss(w, b)(e).detach()) == pytest.approx(total, rel=1e-5)
    sim = ge2e_similarity(e)
    assert float(sim[0, 0, 0]) == pytest.approx(cos(e[0, 0], e[0, 1]), abs=1e-6)
    assert float(sim[0, 0, 1]) == pytest.approx(cos(e[0, 0], e[1].mean(0)), abs=1e-6)


def test_ge2e_needs_two_utterances_and_keeps_w_positive():
    with pytest.raises(ValueError, match="at least 2 utterances"):
        ge2e_similarity(torch.randn(3, 1, 4))
    loss = GE2ELoss(init_w=-1.0)
    assert torch.isfinite(loss(F.normalize(torch.randn(2, 3, 4), dim=-1)))


def test_gradient_reversal_is_identity_forward_and_minus_lambda_backward():
    x = torch.randn(5, 3, requires_grad=True)
    upstream = torch.randn(5, 3)
    y = GradientReversal(0.37)(x)
    assert torch.equal(y, x)
    y.backward(upstream)
    assert torch.equal(x.grad, -0.37 * upstream)


def test_lambda_schedule_values():
    assert dann_lambda(0.0, 10.0, 0.5) == 0.0
    assert dann_lambda(0.5, 10.0, 0.5) == pytest.approx(0.98661 * 0.5, abs=1e-5)
    assert dann_lambda(1.0, 10.0, 0.5) == pytest.approx(0.99991 * 0.5, abs=1e-5)


def test_adversary_gradient_reaches_the_embedding_reversed():
    adversary = KeywordAdversary(4, 3, hidden=8)
    e = torch.randn(6, 4, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    adversary.scale = 0.0
    F.cross_entropy(adversary(e), labels).backward()
    assert e.grad.abs().sum() == 0  # lambda 0: the branch trains, nothing flows back
    plain = F.cross_entropy(adversary.classifier(e), labels)
    (grad_plain,) = torch.autograd.grad(plain, e)
    e.grad = None
    adversary.scale = 0.5
    F.cross_entropy(adversary(e), labels).backward()
    torch.testing.assert_close(e.grad, -0.5 * grad_plain)


def test_resnet_tiny_shape_and_size():
    model = ResNetSE()
    assert 0.39e6 < sum(p.numel() for p in model.parameters()) < 0.43e6  # spec: about 0.41 M
    out = model.embed(torch.randn(3, 1, 40, 151))
    assert out.normalized.shape == (3, 128) and out.frames.shape[:2] == (3, 128 * 3)
    torch.testing.assert_close(out.normalized.norm(dim=1), torch.ones(3))
    with pytest.raises(ValueError, match="one entry per stage"):
        ResNetSE(channels=[8, 16], blocks=[1])
