"""The VGPDS bound against independent formulas: GPy's Bayesian GP-LVM, the direct KL, the explicit-inverse F̂,
Monte Carlo Psi statistics, finite differences, padding and additive scoring (spec §8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from devicelab.methods.phoneme_vgpds.bound import (
    collapsed_bound,
    dynamic_latent_marginals,
    emission_statistics,
    inducing_cholesky,
    isotropic_latent_marginals,
)
from devicelab.methods.phoneme_vgpds.config import ConstraintConfig, VgpdsConfig
from devicelab.methods.phoneme_vgpds.constraints import inverse_latent_scale, latent_scale
from devicelab.methods.phoneme_vgpds.kernels import psi1, psi2, rbf_ard, time_kernel
from devicelab.methods.phoneme_vgpds.model import VgpdsModels
from devicelab.methods.phoneme_vgpds.tokens import pad_tokens
from devicelab.methods.phoneme_vgpds.training import ClassSnapshot, extended_bound, initialise_models

DTYPE = torch.float64


def random_tokens(rng: np.random.Generator, lengths, dim: int = 3) -> list[np.ndarray]:
    """Smooth-ish random tokens (a random walk plus noise), one per length."""
    return [np.cumsum(rng.normal(size=(n, dim)), 0) * 0.3 + rng.normal(size=(n, dim)) * 0.1 for n in lengths]


def perturbed_models(tokens_per_class, config: VgpdsConfig, seed: int = 0) -> VgpdsModels:
    """Initialised models with every free parameter moved off its initial value (masked where padded)."""
    models = initialise_models(pad_tokens(tokens_per_class), config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in models.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return models


# ---------------------------------------------------------------------------------------------- GPy parity
def test_bound_matches_gpy_bayesian_gplvm():
    gpy = pytest.importorskip("GPy")
    rng = np.random.default_rng(0)
    n, d, q, m = 30, 4, 2, 6
    y = rng.normal(size=(n, d))
    mu = rng.normal(size=(n, q))
    s = rng.uniform(0.05, 0.6, size=(n, q))
    z = rng.normal(size=(m, q))
    signal_variance, w, beta = 1.3, np.array([0.7, 1.6]), 5.0

    kern = gpy.kern.RBF(q, variance=signal_variance, lengthscale=w**-0.5, ARD=True)
    reference = gpy.models.BayesianGPLVM(
        y, q, X=mu.copy(), X_variance=s.copy(), Z=z.copy(), kernel=kern, num_inducing=m
    )
    reference.likelihood.variance = 1.0 / beta
    expected = reference.log_likelihood().item()

    config = VgpdsConfig(
        latent_dim=q,
        num_inducing=m,
        latent_prior="isotropic",
        constraint=ConstraintConfig(name="none"),
        jitter_scale=1e-8 / signal_variance,
    )
    models = VgpdsModels(pad_tokens([[y]]), config)
    with torch.no_grad():
        models.mean_bar.copy_(torch.as_tensor(mu)[None, None])
        lambda_sqrt = torch.as_tensor(np.sqrt(1.0 / s - 1.0))[None, None]  # X.variance = 1 / (1 + λ)
        models.lambda_raw.copy_(inverse_latent_scale(lambda_sqrt, config.constraint, floor=0.0))
        models.inducing.copy_(torch.as_tensor(z)[None])
        models.log_inverse_widths.copy_(torch.log(torch.as_tensor(w))[None])
        models.log_signal_variance.fill_(math.log(signal_variance))
        models.log_noise_precision.fill_(math.log(beta))
        bound = models().bound.item()
    assert bound == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------------------------------------ the KL
def direct_kl(
    k: torch.Tensor, mean_bar: torch.Tensor, lam: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """½[tr(K⁻¹S) + μᵀK⁻¹μ − N + log|K| − log|S|] per column, with explicit inverses; and diag S (T, Q)."""
    k_inv = torch.linalg.inv(k)
    kl, variances = torch.zeros((), dtype=DTYPE), []
    for col in range(mean_bar.shape[-1]):
        s = torch.linalg.inv(k_inv + torch.diag(lam[:, col]))
        mu = k @ mean_bar[:, col]
        kl = kl + 0.5 * (
            torch.trace(k_inv @ s) + mu @ k_inv @ mu - len(k) + torch.logdet(k) - torch.logdet(s)
        )
        variances.append(torch.diagonal(s))
    return kl, torch.stack(variances, -1)


def test_stable_kl_and_variances_equal_the_direct_formula():
    g = torch.Generator().manual_seed(1)
    t = 9
    times = 0.01 * torch.arange(t, dtype=DTYPE)
    k = time_kernel(
        times,
        torch.ones(t, dtype=torch.bool),
        1.0,
        torch.tensor(1 / 0.04**2, dtype=DTYPE),
        torch.tensor(1e-2, dtype=DTYPE),
        torch.tensor(0.1, dtype=DTYPE),
    )
    mean_bar = torch.randn(t, 3, generator=g, dtype=DTYPE)
    lambda_sqrt = torch.rand(t, 3, generator=g, dtype=DTYPE) * 2.0
    stable = dynamic_latent_marginals(k, mean_bar, lambda_sqrt)
    kl, variance = direct_kl(k, mean_bar, lambda_sqrt**2)
    assert abs(stable.kl.item() - kl.item()) <= 1e-9 * abs(kl.item())
    torch.testing.assert_close(stable.variance, variance, rtol=0, atol=1e-10)
    torch.testing.assert_close(stable.mean, k @ mean_bar, rtol=1e-12, atol=1e-12)


def test_stable_kl_with_identity_prior_is_the_gplvm_kl():
    g = torch.Generator().manual_seed(2)
    t = 7
    mean_bar = torch.randn(t, 2, generator=g, dtype=DTYPE)
    lambda_sqrt = torch.rand(t, 2, generator=g, dtype=DTYPE) * 3.0
    stable = dynamic_latent_marginals(torch.eye(t, dtype=DTYPE), mean_bar, lambda_sqrt)
    s = 1.0 / (1.0 + lambda_sqrt**2)
    closed = 0.5 * (mean_bar**2 + s - torch.log(s) - 1.0).sum()
    assert stable.kl.item() == pytest.approx(closed.item(), rel=1e-9)
    assert isotropic_latent_marginals(mean_bar, lambda_sqrt).kl.item() == pytest.approx(
        closed.item(), rel=1e-9
    )
    torch.testing.assert_close(stable.variance, s, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------------- F̂
def explicit_inverse_bound(y, mean, var, z, signal_variance, w, beta, jitter):
    """The textbook F̂ with A = βΨ2 + K_MM and explicit inverses and determinants (spec §2.3)."""
    n, d = y.shape
    mask = torch.ones(n, dtype=torch.bool)
    p1 = psi1(mean, var, mask, z, signal_variance, w)
    p2 = psi2(mean, var, mask, z, signal_variance, w)
    kmm = rbf_ard(z, z, signal_variance, w) + jitter * torch.eye(len(z), dtype=DTYPE)
    a = beta * p2 + kmm
    fit = torch.trace(y.T @ p1 @ torch.linalg.inv(a) @ p1.T @ y)
    return (
        0.5 * n * d * math.log(beta)
        - 0.5 * n * d * math.log(2 * math.pi)
        + 0.5 * d * (torch.logdet(kmm) - torch.logdet(a))
        - 0.5 * beta * (y**2).sum()
        + 0.5 * beta**2 * fit
        - 0.5 * beta * d * n * signal_variance
        + 0.5 * beta * d * torch.trace(torch.linalg.inv(kmm) @ p2)
    )


def test_stable_collapsed_bound_equals_explicit_inverse_form():
    g = torch.Generator().manual_seed(3)
    n, d, q, m = 25, 3, 2, 5
    y = torch.randn(n, d, generator=g, dtype=DTYPE)
    mean = torch.randn(n, q, generator=g, dtype=DTYPE)
    var = 0.05 + 0.5 * torch.rand(n, q, generator=g, dtype=DTYPE)
    z = torch.randn(m, q, generator=g, dtype=DTYPE)
    signal_variance, w, beta, jitter = (
        torch.tensor(1.7, dtype=DTYPE),
        torch.tensor([0.8, 1.9], dtype=DTYPE),
        4.0,
        1e-6,
    )
    stats = emission_statistics(y, torch.ones(n, dtype=torch.bool), mean, var, z, signal_variance, w)
    stable = collapsed_bound(
        stats, torch.tensor(beta, dtype=DTYPE), d, inducing_cholesky(z, signal_variance, w, jitter)
    )
    reference = explicit_inverse_bound(y, mean, var, z, signal_variance, w, beta, jitter)
    assert abs(stable.value.item() - reference.item()) <= 1e-9 * abs(reference.item())


# -------------------------------------------------------------------------------------------- Psi statistics
def test_psi_statistics_match_monte_carlo():
    g = torch.Generator().manual_seed(4)
    n, q, m, samples = 3, 2, 4, 200_000
    mean = torch.randn(n, q, generator=g, dtype=DTYPE)
    var = 0.1 + 0.4 * torch.rand(n, q, generator=g, dtype=DTYPE)
    z = torch.randn(m, q, generator=g, dtype=DTYPE)
    signal_variance, w = torch.tensor(1.0, dtype=DTYPE), torch.tensor([0.9, 1.5], dtype=DTYPE)
    x = mean + var.sqrt() * torch.randn(samples, n, q, generator=g, dtype=DTYPE)  # (S, N, Q)
    k_xz = rbf_ard(x, z.expand(samples, m, q), signal_variance, w)  # (S, N, M)
    mc_psi1 = k_xz.mean(0)
    mc_psi2 = torch.einsum("snm,snk->mk", k_xz, k_xz) / samples
    mask = torch.ones(n, dtype=torch.bool)
    assert (psi1(mean, var, mask, z, signal_variance, w) - mc_psi1).abs().max() <= 5e-3
    assert (psi2(mean, var, mask, z, signal_variance, w) - mc_psi2).abs().max() <= 5e-3


def test_psi_statistics_tend_to_kernel_products_as_variance_vanishes():
    g = torch.Generator().manual_seed(5)
    n, q, m = 6, 3, 4
    mean = torch.randn(n, q, generator=g, dtype=DTYPE)
    z = torch.randn(m, q, generator=g, dtype=DTYPE)
    signal_variance, w = torch.tensor(1.4, dtype=DTYPE), torch.tensor([0.5, 1.0, 2.0], dtype=DTYPE)
    var = torch.full((n, q), 1e-12, dtype=DTYPE)
    mask = torch.ones(n, dtype=torch.bool)
    k_nz = rbf_ard(mean, z, signal_variance, w)
    torch.testing.assert_close(psi1(mean, var, mask, z, signal_variance, w), k_nz, rtol=0, atol=1e-8)
    torch.testing.assert_close(psi2(mean, var, mask, z, signal_variance, w), k_nz.T @ k_nz, rtol=0, atol=1e-8)


# -------------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("constraint", ["nystrom", "snr"])
def test_gradcheck_full_bound(constraint):
    rng = np.random.default_rng(6)
    tokens = random_tokens(rng, (5, 4), dim=2)  # two tokens, 5 frames (one padded)
    config = VgpdsConfig(
        latent_dim=2, num_inducing=3, constraint=ConstraintConfig(name=constraint, epsilon=0.0)
    )
    models = perturbed_models([tokens], config)
    names, params = zip(*[(k, v.detach().clone().requires_grad_(True)) for k, v in models.named_parameters()])

    def objective(*values):
        terms = torch.func.functional_call(models, dict(zip(names, values)), ())
        return terms.bound - models.penalty(terms)

    assert torch.autograd.gradcheck(objective, params, eps=1e-6, atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------------------------- padding
def unpadded_bound(models: VgpdsModels, tokens: list[np.ndarray], class_index: int = 0) -> torch.Tensor:
    """F of one class recomputed token by token at its exact length (no padding anywhere)."""
    c = class_index
    constraint = models.config.constraint
    means, variances, kl = [], [], 0.0
    for j, tok in enumerate(tokens):
        n = len(tok)
        mask = torch.ones(n, dtype=torch.bool)
        k = time_kernel(
            models.token_times(n),
            mask,
            models.config.time_rbf_variance,
            torch.exp(models.log_time_inverse_lengthscale_sq[c]),
            torch.exp(models.log_time_white_variance[c]),
            torch.exp(models.log_time_bias_variance[c]),
        )
        lambda_sqrt = latent_scale(models.lambda_raw[c, j, :n], mask, constraint)
        marginals = dynamic_latent_marginals(k, models.mean_bar[c, j, :n], lambda_sqrt)
        means.append(marginals.mean)
        variances.append(marginals.variance)
        kl = kl + marginals.kl
    y = torch.as_tensor(np.concatenate(tokens))
    signal_variance, beta = (v[c] for v in models.emission_variances())
    w = torch.exp(models.log_inverse_widths[c])
    stats = emission_statistics(
        y,
        torch.ones(len(y), dtype=torch.bool),
        torch.cat(means),
        torch.cat(variances),
        models.inducing[c],
        signal_variance,
        w,
    )
    chol = inducing_cholesky(models.inducing[c], signal_variance, w, models.jitter(signal_variance))
    return collapsed_bound(stats, beta, y.shape[1], chol).value - kl


def test_padded_batched_bound_equals_unpadded_per_token_bounds():
    rng = np.random.default_rng(7)
    tokens = random_tokens(rng, (6, 3, 5))
    config = VgpdsConfig(latent_dim=2, num_inducing=3)
    # one token per class: the batched, padded bound of every class equals the bound of its token alone
    per_class = perturbed_models([[tok] for tok in tokens], config)
    batched = per_class().bound
    for c, tok in enumerate(tokens):
        assert abs(batched[c].item() - unpadded_bound(per_class, [tok], c).item()) <= 1e-10 * abs(
            batched[c].item()
        )
    # three tokens in one class, padded to 6 frames, against the same class computed without padding
    one_class = perturbed_models([tokens], config, seed=1)
    value = one_class().bound[0]
    assert abs(value.item() - unpadded_bound(one_class, tokens).item()) <= 1e-10 * abs(value.item())


@pytest.mark.parametrize("latent_prior", ["gp_time", "isotropic"])
def test_no_nan_gradients_with_padded_frames(latent_prior):
    rng = np.random.default_rng(8)
    config = VgpdsConfig(latent_dim=2, num_inducing=3, latent_prior=latent_prior)
    models = initialise_models(pad_tokens([random_tokens(rng, (6, 2, 4)), random_tokens(rng, (3,))]), config)
    terms = models()
    (-(terms.bound - models.penalty(terms)).sum()).backward()
    for name, p in models.named_parameters():
        assert torch.isfinite(p.grad).all(), name
    padded = ~models.frame_mask
    assert (models.lambda_raw.grad[padded] == 0).all() and (models.mean_bar.grad[padded] == 0).all()


# --------------------------------------------------------------------------------------- additive scoring
def test_additive_statistics_give_the_bound_on_concatenated_data():
    rng = np.random.default_rng(9)
    train = [random_tokens(rng, (5, 4)), random_tokens(rng, (6, 3, 4))]
    new = random_tokens(rng, (4, 6))
    t_max = 6
    config = VgpdsConfig(latent_dim=2, num_inducing=4)
    models = perturbed_models(train, config)
    snapshot = ClassSnapshot.of(models)

    padded_new = pad_tokens([new], max_frames=t_max)
    c, k = len(train), len(new)
    frames = padded_new.frames.expand(c, k, t_max, 3)
    mask = padded_new.frame_mask.expand(c, k, t_max)
    g = torch.Generator().manual_seed(0)
    mean_bar = torch.randn(c, k, t_max, 2, generator=g, dtype=DTYPE)
    raw = torch.randn(c, k, t_max, 2, generator=g, dtype=DTYPE)
    lambda_sqrt = latent_scale(raw, mask, config.constraint)
    with torch.no_grad():
        ext = extended_bound(snapshot, frames, mask, mean_bar, lambda_sqrt, models.time_covariance(mask))
        additive = ext.collapsed.value - snapshot.kl.unsqueeze(1) - ext.latent.kl  # (C, K)

    for ci in range(c):
        for ki in range(k):
            joined = VgpdsModels(pad_tokens([train[ci] + [new[ki]]], max_frames=t_max), config)
            j = len(train[ci])
            with torch.no_grad():
                for name, p in joined.named_parameters():
                    source = getattr(models, name)[ci : ci + 1]
                    if name in ("mean_bar", "lambda_raw"):
                        p[:, :j] = source[:, :j]
                        p[0, j] = (mean_bar if name == "mean_bar" else raw)[ci, ki]
                    else:
                        p.copy_(source)
                recomputed = joined().bound[0]
            assert abs(additive[ci, ki].item() - recomputed.item()) <= 1e-9 * abs(recomputed.item())
