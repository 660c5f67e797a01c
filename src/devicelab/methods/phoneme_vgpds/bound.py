"""The collapsed variational bound of the VGPDS and its parts, in the stable forms of spec §2.2–§2.3.

- :func:`dynamic_latent_marginals`: q(X) under the GP prior over time, through B_q = I + Λ^½ K_t Λ^½ (K_t is
  never inverted) [ref: vargplvm ``vargpTimeDynamicsUpdateStats.m``, ``vargpTimeDynamicsVarPriorBound.m``].
- :func:`isotropic_latent_marginals`: q(x_n) of the Bayesian GP-LVM without dynamics (K_t = I).
- :func:`emission_statistics`: the additive statistics ψ0, Ψ1ᵀY, Ψ2, tr(YᵀY), N of spec §2.6.
- :func:`collapsed_bound`: F̂ through L_K and L_A [ref: GPy ``var_dtc.py``] and the Nyström error ratio r.

Shapes: ``...`` are batch axes (classes; classes × tokens when scoring); T frames per token, N frames per
class, Q latent dimensions, M inducing inputs, D output dimensions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from devicelab.methods.phoneme_vgpds.kernels import psi0, psi1, psi2, rbf_ard


@dataclass
class LatentMarginals:
    """Marginals of q(X) and its KL to the prior, per batch item (token or sequence)."""

    mean: Tensor  # (..., T, Q)  μ
    variance: Tensor  # (..., T, Q)  diag S_q
    kl: Tensor  # (...)  Σ_q KL_q, padded frames contribute exactly 0


def dynamic_latent_marginals(time_cov: Tensor, mean_bar: Tensor, lambda_sqrt: Tensor) -> LatentMarginals:
    """q(X) = Π_q N(K_t μ̄_q, (K_t⁻¹ + Λ_q)⁻¹) and KL(q ‖ p) in the stable form of spec §2.2–§2.3.

    ``B_q = I + Λ_q^½ K_t Λ_q^½``, ``L = chol(B_q)``, ``G = L⁻¹ Λ_q^½ K_t``:
    ``diag S_q = diag K_t − colsum(G∘G)``, ``μ_q = K_t μ̄_q``;
    ``KL_q = ½[‖L⁻¹‖²_F + μ̄_qᵀ K_t μ̄_q + 2 Σ log diag L − T]``.

    time_cov: (..., T, T) with identity rows/columns on padded frames; mean_bar μ̄, lambda_sqrt λ^½:
    (..., T, Q), zero on padded frames. Returns marginals with mean, variance (..., T, Q) and kl (...).
    """
    t = time_cov.shape[-1]
    eye = torch.eye(t, dtype=time_cov.dtype, device=time_cov.device)
    scale = lambda_sqrt.transpose(-1, -2).unsqueeze(-1)  # (..., Q, T, 1)
    k = time_cov.unsqueeze(-3)  # (..., 1, T, T)
    b = eye + scale * k * scale.transpose(-1, -2)  # (..., Q, T, T)
    chol = torch.linalg.cholesky(b)
    g = torch.linalg.solve_triangular(chol, scale * k, upper=False)  # (..., Q, T, T)
    variance = torch.diagonal(time_cov, dim1=-2, dim2=-1).unsqueeze(-2) - (g**2).sum(-2)  # (..., Q, T)
    mean = time_cov @ mean_bar  # (..., T, Q)
    chol_inv = torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False)
    trace_b_inv = (chol_inv**2).sum((-1, -2))  # (..., Q)
    log_det_b = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # (..., Q)
    mahalanobis = (mean_bar * mean).sum(-2)  # (..., Q)  μ̄ᵀ K_t μ̄
    kl = 0.5 * (trace_b_inv + mahalanobis + log_det_b - t).sum(-1)
    return LatentMarginals(mean=mean, variance=variance.transpose(-1, -2), kl=kl)


def time_prior_marginals(
    time_cov: Tensor, free_mean: Tensor, lambda_sqrt: Tensor, parametrisation: str = "mean_bar"
) -> LatentMarginals:
    """:func:`dynamic_latent_marginals` from the free mean of either parametrisation.

    ``"mean_bar"`` (spec §2.2): the free mean is μ̄. ``"mean"`` [reconstruction]: the free mean is μ and
    μ̄ = K_t⁻¹ μ through the Cholesky factor of K_t (σ_w² > 0 keeps K_t positive definite); the model and the
    bound are the same, only the coordinates the optimiser moves in differ.
    """
    if parametrisation == "mean":
        free_mean = torch.cholesky_solve(free_mean, torch.linalg.cholesky(time_cov))
    return dynamic_latent_marginals(time_cov, free_mean, lambda_sqrt)


def isotropic_latent_marginals(mean_bar: Tensor, lambda_sqrt: Tensor) -> LatentMarginals:
    """Bayesian GP-LVM without dynamics: prior N(0, I), q(x_n) = N(μ_n, diag s_n) (spec §4).

    Same parametrisation as the VGPDS with K_t = I: μ = μ̄, s = 1/(1 + λ); ``KL = ½ Σ (μ² + s − log s − 1)``.
    mean_bar, lambda_sqrt: (..., T, Q), zero on padded frames (s = 1, μ = 0: KL contribution 0).
    """
    lam = lambda_sqrt**2
    variance = 1.0 / (1.0 + lam)
    kl = 0.5 * (mean_bar**2 + variance + torch.log1p(lam) - 1.0).sum((-1, -2))
    return LatentMarginals(mean=mean_bar, variance=variance, kl=kl)


@dataclass
class EmissionStatistics:
    """What the bound needs from a set of frames; two sets' statistics add (spec §2.6)."""

    psi0: Tensor  # (...)  ψ0
    psi1_y: Tensor  # (..., M, D)  Ψ1ᵀ Y
    psi2: Tensor  # (..., M, M)  Ψ2
    trace_yy: Tensor  # (...)  tr(YᵀY)
    frames: Tensor  # (...)  N, real frames

    def __add__(self, other: EmissionStatistics) -> EmissionStatistics:
        return EmissionStatistics(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def map(self, fn) -> EmissionStatistics:
        """Apply ``fn`` to every tensor (``lambda t: t.unsqueeze(1)``, ``Tensor.detach``)."""
        return EmissionStatistics(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})


def emission_statistics(
    frames: Tensor,
    frame_mask: Tensor,
    latent_mean: Tensor,
    latent_variance: Tensor,
    inducing: Tensor,
    signal_variance: Tensor,
    inverse_widths: Tensor,
) -> EmissionStatistics:
    """ψ0, Ψ1ᵀY, Ψ2, tr(YᵀY) and N over the real frames (spec §2.3).

    frames Y: (..., N, D); frame_mask: (..., N); latent_mean, latent_variance: (..., N, Q); inducing Z:
    (..., M, Q); signal_variance σ_f²: (...); inverse_widths w: (..., Q).
    """
    mask = frame_mask.to(frames.dtype)
    y = frames * mask.unsqueeze(-1)  # padded frames count as zeros
    p1 = psi1(
        latent_mean, latent_variance, frame_mask, inducing, signal_variance, inverse_widths
    )  # (..., N, M)
    return EmissionStatistics(
        psi0=psi0(frame_mask, signal_variance),
        psi1_y=p1.transpose(-1, -2) @ y,
        psi2=psi2(latent_mean, latent_variance, frame_mask, inducing, signal_variance, inverse_widths),
        trace_yy=(y**2).sum((-1, -2)),
        frames=mask.sum(-1),
    )


@dataclass
class CollapsedBound:
    """F̂ and the quantities derived beside it (spec §2.3)."""

    value: Tensor  # (...)  F̂
    trace_c: Tensor  # (...)  tr(C) = tr(K_MM⁻¹ Ψ2)
    nystrom_ratio: Tensor  # (...)  r = (ψ0 − tr C) / ψ0


def inducing_cholesky(inducing: Tensor, signal_variance: Tensor, inverse_widths: Tensor, jitter) -> Tensor:
    """L_K = chol(k_f(Z, Z) + jitter·I); jitter is absolute (a float or a tensor of the batch shape)."""
    kmm = rbf_ard(inducing, inducing, signal_variance, inverse_widths)  # (..., M, M)
    eye = torch.eye(kmm.shape[-1], dtype=kmm.dtype, device=kmm.device)
    jitter = torch.as_tensor(jitter, dtype=kmm.dtype, device=kmm.device)
    return torch.linalg.cholesky(kmm + jitter[..., None, None] * eye)


def collapsed_bound(
    stats: EmissionStatistics,
    noise_precision: Tensor,
    output_dim: int,
    kmm_cholesky: Tensor,
) -> CollapsedBound:
    """The collapsed bound F̂ with q(U) integrated out, in the stable form of spec §2.3.

    ``C = L_K⁻¹ Ψ2 L_K⁻ᵀ``, ``L_A = chol(I + βC)``, ``c = L_A⁻¹ L_K⁻¹ Ψ1ᵀY``;
    ``F̂ = (ND/2) log β − (ND/2) log 2π − D Σ log diag L_A − (β/2) tr(YᵀY) + (β²/2)‖c‖²_F − (βD/2) ψ0
    + (βD/2) tr C``. noise_precision β: (...); kmm_cholesky L_K: (..., M, M) from :func:`inducing_cholesky`.
    """
    beta = noise_precision
    lk_inv_psi2 = torch.linalg.solve_triangular(kmm_cholesky, stats.psi2, upper=False)  # (..., M, M)
    c_mat = torch.linalg.solve_triangular(kmm_cholesky, lk_inv_psi2.mT, upper=False)  # L_K⁻¹ Ψ2 L_K⁻ᵀ
    c_mat = 0.5 * (c_mat + c_mat.mT)
    eye = torch.eye(c_mat.shape[-1], dtype=c_mat.dtype, device=c_mat.device)
    chol_a = torch.linalg.cholesky(eye + beta[..., None, None] * c_mat)
    proj = torch.linalg.solve_triangular(kmm_cholesky, stats.psi1_y, upper=False)  # (..., M, D)
    proj = torch.linalg.solve_triangular(chol_a, proj, upper=False)  # c
    trace_c = torch.diagonal(c_mat, dim1=-2, dim2=-1).sum(-1)
    nd = stats.frames * output_dim
    value = (
        0.5 * nd * (torch.log(beta) - math.log(2.0 * math.pi))
        - output_dim * torch.log(torch.diagonal(chol_a, dim1=-2, dim2=-1)).sum(-1)
        - 0.5 * beta * stats.trace_yy
        + 0.5 * beta**2 * (proj**2).sum((-1, -2))
        - 0.5 * beta * output_dim * (stats.psi0 - trace_c)
    )
    return CollapsedBound(value=value, trace_c=trace_c, nystrom_ratio=(stats.psi0 - trace_c) / stats.psi0)
