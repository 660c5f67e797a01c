"""The variance-constraint options of spec §2.4 and the Nyström error ratio r."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from devicelab.methods.phoneme_vgpds.bound import dynamic_latent_marginals, isotropic_latent_marginals
from devicelab.methods.phoneme_vgpds.config import ConstraintConfig, VgpdsConfig
from devicelab.methods.phoneme_vgpds.constraints import (
    constraint_penalty,
    dual_ascent,
    emission_variances,
    latent_scale,
)
from devicelab.methods.phoneme_vgpds.kernels import time_kernel
from devicelab.methods.phoneme_vgpds.model import VgpdsModels
from devicelab.methods.phoneme_vgpds.tokens import pad_tokens
from devicelab.methods.phoneme_vgpds.training import initialise_models, train_models

DTYPE = torch.float64


@pytest.mark.parametrize("seed", range(4))
def test_nystrom_ratio_lies_in_the_unit_interval(seed):
    rng = np.random.default_rng(seed)
    tokens = [[rng.normal(size=(int(n), 3)) for n in rng.integers(3, 8, size=4)] for _ in range(2)]
    models = initialise_models(pad_tokens(tokens), VgpdsConfig(latent_dim=2, num_inducing=5))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in models.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype))
        r = models().nystrom_ratio
    assert ((r >= 0) & (r <= 1)).all(), r


def test_nystrom_ratio_vanishes_with_inducing_inputs_at_exact_latents():
    """M = N, Z = μ and S → 0: the sparse approximation is exact, r → 0."""
    rng = np.random.default_rng(5)
    y = rng.normal(size=(6, 3))
    config = VgpdsConfig(
        latent_dim=2, num_inducing=6, latent_prior="isotropic", constraint=ConstraintConfig("none")
    )
    models = VgpdsModels(pad_tokens([[y]]), config)
    mu = torch.as_tensor(rng.normal(size=(6, 2)) * 2.0)
    with torch.no_grad():
        models.mean_bar.copy_(mu[None, None])
        models.lambda_raw.fill_(1e6)  # λ^½ = softplus(1e6) = 1e6: S = 1/(1 + λ) ≈ 1e-12
        models.inducing.copy_(mu[None])
        r = models().nystrom_ratio.item()
    assert 0.0 <= r < 1e-5


@pytest.mark.parametrize("prior", ["gp_time", "isotropic"])
def test_latent_var_caps_every_variational_variance(prior):
    config = ConstraintConfig(name="latent_var", s_max=0.1)
    g = torch.Generator().manual_seed(6)
    t = 8
    mask = torch.ones(5, t, dtype=torch.bool)
    raw = 3.0 * torch.randn(5, t, 2, generator=g, dtype=DTYPE)
    lambda_sqrt = latent_scale(raw, mask, config)
    mean_bar = torch.randn(5, t, 2, generator=g, dtype=DTYPE)
    if prior == "gp_time":
        times = 0.01 * torch.arange(t, dtype=DTYPE).expand(5, t)
        k = time_kernel(
            times,
            mask,
            1.0,
            torch.full((5,), 400.0, dtype=DTYPE),
            torch.full((5,), 1e-3, dtype=DTYPE),
            torch.full((5,), 0.1, dtype=DTYPE),
        )
        variance = dynamic_latent_marginals(k, mean_bar, lambda_sqrt).variance
    else:
        variance = isotropic_latent_marginals(mean_bar, lambda_sqrt).variance
    assert (variance <= config.s_max).all() and (variance > 0).all()


def test_snr_option_keeps_the_total_variance_at_the_data_variance():
    config = ConstraintConfig(name="snr", v_min=0.5)
    g = torch.Generator().manual_seed(7)
    logit = 4.0 * torch.randn(50, generator=g, dtype=DTYPE)
    data_variance = torch.rand(50, generator=g, dtype=DTYPE) + 0.1
    signal, precision = emission_variances(logit, logit, logit, data_variance, config)
    torch.testing.assert_close(signal + 1.0 / precision, data_variance, rtol=1e-12, atol=0)
    assert (signal >= config.v_min * data_variance).all()


def test_nystrom_penalty_and_dual_ascent():
    config = ConstraintConfig(name="nystrom", epsilon=0.05, weight=10.0)
    r = torch.tensor([0.01, 0.05, 0.25], dtype=DTYPE)
    frames, weight = torch.tensor([10.0, 10.0, 10.0], dtype=DTYPE), torch.full((3,), 10.0, dtype=DTYPE)
    penalty = constraint_penalty(r, frames, 4, weight, config)
    torch.testing.assert_close(penalty, torch.tensor([0.0, 0.0, 10 * 10 * 4 * 0.2**2], dtype=DTYPE))
    dual = ConstraintConfig(name="nystrom", solver="dual", dual_step=1.0)
    torch.testing.assert_close(dual_ascent(weight, r, dual), torch.tensor([9.96, 10.0, 10.2], dtype=DTYPE))
    torch.testing.assert_close(
        dual_ascent(torch.zeros(3, dtype=DTYPE), r, dual)[0], torch.tensor(0.0, dtype=DTYPE)
    )
    for other in ("latent_var", "snr", "none"):
        assert (constraint_penalty(r, frames, 4, weight, ConstraintConfig(name=other)) == 0).all()


@pytest.mark.parametrize("name", ["nystrom", "latent_var", "snr", "none"])
def test_every_option_trains_to_a_finite_bound(name):
    rng = np.random.default_rng(8)
    tokens = [
        [np.cumsum(rng.normal(size=(int(n), 3)), 0) for n in rng.integers(4, 8, size=3)] for _ in range(2)
    ]
    solver = "dual" if name == "nystrom" else "penalty"
    config = VgpdsConfig(
        latent_dim=2,
        num_inducing=4,
        train_iters=12,
        fixed_beta_iters=4,
        checkpoint_every=1,
        constraint=ConstraintConfig(name=name, solver=solver, dual_every=5),
    )
    models = initialise_models(pad_tokens(tokens), config)
    before = models.noise_parameters()[0].detach().clone()
    history = train_models(models, config, desc=f"test-{name}")
    assert len(history) == 12 and all(np.isfinite(h["bound_per_frame"]) for h in history)
    assert history[-1]["bound_per_frame"] > history[0]["bound_per_frame"]
    assert not torch.equal(models.noise_parameters()[0].detach(), before)  # released after fixed_beta_iters
    if name == "latent_var":
        variance = models.latent_marginals().variance[models.frame_mask]
        assert (variance <= config.constraint.s_max).all()


@pytest.mark.parametrize("name", ["nystrom", "snr"])
def test_noise_precision_is_held_for_fixed_beta_iters(name):
    rng = np.random.default_rng(9)
    tokens = [[np.cumsum(rng.normal(size=(6, 3)), 0) for _ in range(3)]]
    config = VgpdsConfig(
        latent_dim=2,
        num_inducing=4,
        train_iters=5,
        fixed_beta_iters=5,
        constraint=ConstraintConfig(name=name),
    )
    models = initialise_models(pad_tokens(tokens), config)
    before = models.noise_parameters()[0].detach().clone()
    inducing = models.inducing.detach().clone()
    train_models(models, config, desc="test-fixed-beta")
    assert torch.equal(models.noise_parameters()[0].detach(), before)
    assert not torch.equal(models.inducing.detach(), inducing)
    snr = (models.emission_variances()[1] * models.data_variance).item()
    assert snr == pytest.approx(config.init_snr, rel=1e-9)
