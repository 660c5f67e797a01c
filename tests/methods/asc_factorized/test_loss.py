"""The environment-aware triplet loss: the hand example of spec §8, masks, the margin and the mining modes."""

import pytest
import torch

from devicelab.methods.asc_factorized.loss import environment_triplet_loss, pair_masks, triplet_terms

M = 0.5
# a = (1, 0) scene 0 env A; p = (0, 1) scene 0 env B; n = (1, 0) scene 1 env A
EMB = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
SCENES = torch.tensor([0, 0, 1])
ENVS = torch.tensor([0, 1, 0])


def test_hand_example_gives_two_plus_margin():
    terms, valid = triplet_terms(EMB, SCENES, ENVS, M)
    assert float(terms[0, 1, 2]) == pytest.approx(2.0 + M)
    assert valid.nonzero().tolist() == [[0, 1, 2], [1, 0, 2]]  # n has no positive: never an anchor
    # batch_all: mean of the two active triplets, (2 + m) for anchor a and m for anchor p
    loss, active = environment_triplet_loss(EMB, SCENES, ENVS, M)
    assert float(loss) == pytest.approx((2.0 + M + M) / 2) and active == 1.0


def test_same_environment_same_scene_is_never_a_positive():
    scenes, envs = torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 1, 0])
    positive, negative = pair_masks(scenes, envs)
    assert not positive[0, 1] and not positive[1, 0] and not positive.diagonal().any()
    assert positive[0, 2] and positive[2, 1]
    assert negative[0, 3] and not negative[0, 2]
    # two clips of one scene in one environment, however far apart, give no loss: no valid triplet
    emb = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    loss, active = environment_triplet_loss(emb, torch.tensor([0, 0, 1]), torch.tensor([0, 0, 0]), M)
    assert float(loss) == 0.0 and active == 0.0


def test_loss_is_zero_once_the_margin_holds():
    # scene 0 at (1, 0) in both environments, scene 1 at (-1, 0): d(a, p) = 0, d(a, n) = 4 > m
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]], requires_grad=True)
    scenes, envs = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    for mining in ("batch_all", "batch_hard", "semi_hard"):
        loss, active = environment_triplet_loss(emb, scenes, envs, M, mining)
        assert loss.item() == 0.0 and active == 0.0, mining
    loss, _ = environment_triplet_loss(emb, scenes, envs, margin=4.5)  # a margin beyond 4 is violated
    assert loss.item() == pytest.approx(0.5)


def test_negative_env_same_masks_other_environment_negatives():
    scenes, envs = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    _, any_env = pair_masks(scenes, envs, "any")
    _, same_env = pair_masks(scenes, envs, "same")
    assert any_env[0, 2] and any_env[0, 3]
    assert same_env[0, 2] and not same_env[0, 3]
    _, valid = triplet_terms(torch.randn(4, 3), scenes, envs, M, negative_env="same")
    assert valid[0, 1, 2] and not valid[0, 1, 3]


def test_mining_modes_differ_and_give_gradients():
    torch.manual_seed(0)
    emb = torch.randn(24, 16, requires_grad=True)
    scenes, envs = torch.arange(24) // 6, torch.arange(24) % 3
    values = {}
    for mining in ("batch_all", "batch_hard", "semi_hard"):
        loss, _ = environment_triplet_loss(emb, scenes, envs, M, mining)
        (grad,) = torch.autograd.grad(loss, emb)
        assert loss.item() > 0 and grad.abs().sum() > 0
        values[mining] = loss.item()
    assert values["batch_hard"] >= values["batch_all"]  # the hardest triplet of an anchor is its largest
    with pytest.raises(ValueError, match="mining='random'"):
        environment_triplet_loss(emb, scenes, envs, M, "random")  # type: ignore[arg-type]
