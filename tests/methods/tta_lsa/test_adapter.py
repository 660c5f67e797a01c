"""The label shift adapter, its descriptor, the heads and the prior estimate (spec §3.2–3.5, §9)."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from devicelab.methods.tta_lsa.adapter import (
    AdapterConfig,
    LabelShiftAdapter,
    logit_prior_correction,
    scalar_family,
    scalar_from_prior,
    source_ranks,
)
from devicelab.methods.tta_lsa.estimator import PriorEstimator
from devicelab.methods.tta_lsa.heads import make_head
from devicelab.methods.tta_lsa.streams import lt_prior
from devicelab.methods.tta_lsa.training import AdapterTraining, train_adapter

PI_S = torch.as_tensor(lt_prior(10, 10, "forward"), dtype=torch.float32)


@pytest.mark.parametrize("descriptor", ["scalar", "vector"])
@pytest.mark.parametrize("delta_w", ["full", "lowrank", "none"])
def test_zero_init_adapter_reproduces_the_source_head_bit_for_bit(descriptor, delta_w):
    torch.manual_seed(0)
    linear = nn.Linear(16, 10)
    adapter = LabelShiftAdapter(10, 16, PI_S, AdapterConfig(descriptor=descriptor, delta_w=delta_w, rank=4))
    h = torch.randn(32, 16)
    for prior in (
        PI_S,
        torch.full((10,), 0.1),
        PI_S.flip(0),
        torch.distributions.Dirichlet(torch.ones(10)).sample(),
    ):
        assert torch.equal(adapter.adapted_logits(h, linear, prior), linear(h))


@pytest.mark.parametrize("descriptor", ["scalar", "vector"])
def test_anchored_adapter_is_the_source_head_at_the_source_prior_whatever_it_learned(descriptor):
    torch.manual_seed(0)
    linear = nn.Linear(16, 10)
    h = torch.randn(32, 16)
    anchored = LabelShiftAdapter(10, 16, PI_S, AdapterConfig(descriptor=descriptor, anchor="source"))
    free = LabelShiftAdapter(10, 16, PI_S, AdapterConfig(descriptor=descriptor, anchor="none"))
    free.load_state_dict(anchored.state_dict())
    with torch.no_grad():  # stands for a trained adapter: every output moves
        for adapter in (anchored, free):
            adapter.mlp[-1].weight.normal_(0, 0.1)
            adapter.mlp[-1].bias.normal_(0, 0.1)
    free.load_state_dict(anchored.state_dict())
    with torch.no_grad():
        assert torch.equal(anchored.adapted_logits(h, linear, PI_S), linear(h))
        assert not torch.allclose(free.adapted_logits(h, linear, PI_S), linear(h), atol=1e-3)
        # away from π_s the anchored adapter changes the head by the difference of its two outputs
        assert not torch.allclose(anchored.adapted_logits(h, linear, PI_S.flip(0)), linear(h), atol=1e-3)


def test_parameter_count_follows_the_spec():
    adapter = LabelShiftAdapter(10, 64, PI_S)
    assert adapter.output_size == 2 * 64 + 10 * 64 + 10
    lowrank = LabelShiftAdapter(10, 64, PI_S, AdapterConfig(delta_w="lowrank", rank=16))
    assert lowrank.output_size == 2 * 64 + 16 * (10 + 64) + 10
    with pytest.raises(ValueError, match="lowrank"):
        LabelShiftAdapter(1000, 2048, torch.ones(1000))


def test_logit_head_at_the_source_prior_is_the_identity():
    torch.manual_seed(0)
    linear, h = nn.Linear(16, 10), torch.randn(8, 16)
    head = make_head("logit", PI_S, estimator=PriorEstimator(PI_S))
    assert torch.equal(head(h, linear), linear(h))
    assert torch.equal(logit_prior_correction(linear(h), PI_S, PI_S), linear(h))


def test_scalar_descriptor_recovers_s():
    ranks = source_ranks(PI_S)
    for s in (-math.log(50), -1.0, 0.0, 0.7, math.log(10), math.log(100)):
        assert float(scalar_from_prior(scalar_family(s, ranks), ranks)) == pytest.approx(s, abs=1e-4)
    # π_s itself is forward-LT with ρ = 10
    assert float(scalar_from_prior(PI_S, ranks)) == pytest.approx(math.log(10), abs=1e-4)


def test_trained_adapter_matches_the_bayes_posterior_on_two_gaussians():
    """Two classes, h | y ~ N(±μ, I) in 2-d, source prior (0.8, 0.2): the source head is the exact source
    posterior; a trained adapter's softmax at π must match the analytic posterior for π."""
    torch.manual_seed(0)
    mu = torch.tensor([1.0, 0.5])
    pi_s = torch.tensor([0.8, 0.2])
    linear = nn.Linear(2, 2)
    with torch.no_grad():  # log p(h|y) + log π_s up to a constant: z_y = ±μ·h + ln π_s,y
        linear.weight.copy_(torch.stack([mu, -mu]))
        linear.bias.copy_(pi_s.log())
    n = 20000
    y = (torch.rand(n) < pi_s[1]).long()
    h = torch.randn(n, 2) + torch.where(y[:, None] == 0, mu, -mu)

    class Frozen(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = linear

    adapter = LabelShiftAdapter(2, 2, pi_s, AdapterConfig(hidden=32, rho_max=20.0))
    train_adapter(adapter, Frozen(), h, y, AdapterTraining(steps=1500, batch_size=512, lr=1e-3), seed=0)
    grid = torch.randn(400, 2) + torch.where(torch.rand(400, 1) < 0.5, mu, -mu)  # points of the mixture
    for pi0 in (0.1, 0.3, 0.5, 0.7, 0.9):
        prior = torch.tensor([pi0, 1 - pi0])
        # the scalar family of two classes spans every prior, so the descriptor loses nothing here
        with torch.no_grad():
            got = adapter.adapted_logits(grid, linear, prior).softmax(1)
        log_lik = torch.stack([grid @ mu, -(grid @ mu)], dim=1)
        exact = (log_lik + prior.log()).softmax(1)
        assert float((got - exact).abs().max()) < 0.05, pi0


def test_estimator_ema_formula_clipping_and_reset():
    est = PriorEstimator(PI_S, "ema", momentum=0.9, eps=1e-3)
    logits = torch.tensor([[10.0] + [-10.0] * 9, [10.0] + [-10.0] * 9])
    q = logits.softmax(1).mean(0)
    expected = (0.9 * PI_S + 0.1 * q).clamp_min(1e-3)
    expected = expected / expected.sum()
    torch.testing.assert_close(est.update(logits), expected)
    for _ in range(200):
        est.update(logits)
    assert float(est.prior.min()) >= 1e-3 / (1 + 10 * 1e-3) - 1e-7
    assert float(est.prior.sum()) == pytest.approx(1.0)
    est.reset()
    assert torch.equal(est.prior, PI_S / PI_S.sum())


def test_ema_em_estimator_uses_source_logits():
    est = PriorEstimator(PI_S, "ema_em")
    with pytest.raises(ValueError, match="source logits"):
        est.update(torch.zeros(4, 10))
    z = torch.randn(64, 10)
    est.update(z, source_logits=z)
    assert float(est.prior.sum()) == pytest.approx(1.0)
    batch = PriorEstimator(PI_S, "batch")
    torch.testing.assert_close(
        batch.update(z), z.softmax(1).mean(0).clamp_min(1e-3) / z.softmax(1).mean(0).clamp_min(1e-3).sum()
    )


def test_head_factory_names_what_is_missing():
    with pytest.raises(ValueError, match="unknown head"):
        make_head("magic", PI_S)
    with pytest.raises(ValueError, match="LabelShiftAdapter"):
        make_head("lsa", PI_S, estimator=PriorEstimator(PI_S))
    with pytest.raises(ValueError, match="true target prior"):
        make_head("logit-oracle", PI_S)
    with pytest.raises(ValueError, match="positive"):
        PriorEstimator(torch.zeros(10))
    with pytest.raises(ValueError, match="descriptor"):
        LabelShiftAdapter(10, 4, PI_S, AdapterConfig(descriptor="histogram"))
    assert np.isfinite(make_head("logit-oracle", PI_S, true_prior=PI_S.flip(0)).prior.numpy()).all()


def test_test_like_adapter_training_runs_through_batch_statistics(tiny_model):
    torch.manual_seed(0)
    images = torch.randn(200, 3, 32, 32)
    labels = torch.multinomial(PI_S, 200, replacement=True)
    labels[:10] = torch.arange(10)  # every class present
    adapter = LabelShiftAdapter(10, tiny_model.feature_dim, PI_S)
    before = copy.deepcopy(tiny_model.state_dict())
    history = train_adapter(
        adapter,
        tiny_model,
        None,
        labels,
        AdapterTraining(steps=3, batch_size=32, mode="test_like"),
        seed=0,
        images=images,
    )
    assert len(history) == 2 and all(np.isfinite(history))
    assert any(p.abs().sum() > 0 for p in adapter.mlp[-1].parameters())
    assert all(torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())  # source BN untouched
    with pytest.raises(ValueError, match="needs the source images"):
        train_adapter(adapter, tiny_model, None, labels, AdapterTraining(steps=1, mode="test_like"), seed=0)


def test_ema_em_head_feeds_the_estimator_the_unadapted_logits(tiny_model):
    head = make_head(
        "lsa", PI_S, LabelShiftAdapter(10, tiny_model.feature_dim, PI_S), PriorEstimator(PI_S, "ema_em")
    )
    h = torch.randn(16, tiny_model.feature_dim)
    head.observe(torch.zeros(16, 10), h, tiny_model.head)  # returned logits are ignored by ema_em
    expected = PriorEstimator(PI_S, "ema_em")
    expected.update(torch.zeros(16, 10), source_logits=tiny_model.head(h).detach())
    torch.testing.assert_close(head.prior, expected.prior)
