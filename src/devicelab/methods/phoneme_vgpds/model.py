"""One (C)VGPDS per class, all classes in one batched module (spec §2.2–§2.4).

:class:`VgpdsModels` holds the free parameters of C independent models (a leading class axis) and the padded
training tokens; ``forward()`` evaluates every class's bound F = F̂ − KL at once. Because the classes share no
parameter and Adam is elementwise, training the batch is the same as training each class alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from devicelab.methods.phoneme_vgpds.bound import (
    EmissionStatistics,
    LatentMarginals,
    collapsed_bound,
    emission_statistics,
    inducing_cholesky,
    isotropic_latent_marginals,
    time_prior_marginals,
)
from devicelab.methods.phoneme_vgpds.config import VgpdsConfig
from devicelab.methods.phoneme_vgpds.constraints import constraint_penalty, emission_variances, latent_scale
from devicelab.methods.phoneme_vgpds.kernels import time_kernel
from devicelab.methods.phoneme_vgpds.tokens import PaddedTokens


@dataclass
class ModelTerms:
    """Per-class quantities of one bound evaluation (all (C,) unless noted)."""

    bound: Tensor  # F = F̂ − KL
    collapsed: Tensor  # F̂
    kl: Tensor  # KL(q(X) ‖ p(X))
    nystrom_ratio: Tensor  # r
    signal_variance: Tensor  # σ_f²
    noise_precision: Tensor  # β
    inverse_widths: Tensor  # (C, Q)  w
    stats: EmissionStatistics
    kmm_cholesky: Tensor  # (C, M, M)  L_K


class VgpdsModels(nn.Module):
    """C independent VGPDS (``latent_prior="gp_time"``) or Bayesian GP-LVM (``"isotropic"``) models.

    Parameters (spec §2.2): the free mean (μ̄, or μ under ``mean_parametrisation="mean"``) and the λ^½
    parameter per frame and latent dimension, inducing inputs Z, log w_q, and log σ_f², log β (or the V3
    signal share), plus log 1/ℓ_t², log σ_w², log σ_b² of the time kernel (σ_r² is fixed).
    The values are placeholders until :func:`training.initialise_models` sets them.
    """

    def __init__(self, tokens: PaddedTokens, config: VgpdsConfig):
        super().__init__()
        self.config = config
        c, j, t, d = tokens.frames.shape
        q, m = config.latent_dim, config.num_inducing
        dtype = tokens.frames.dtype
        self.register_buffer("frames", tokens.frames)  # (C, J, T, D)
        self.register_buffer("frame_mask", tokens.frame_mask)  # (C, J, T)
        self.register_buffer("data_variance", torch.ones(c, dtype=dtype))  # v̂ per class
        self.register_buffer("penalty_weight", torch.full((c,), config.constraint.weight, dtype=dtype))  # ρ
        self.register_buffer("pca_mean", torch.zeros(c, d, dtype=dtype))  # class PCA for μ init (spec §2.5)
        self.register_buffer("pca_projection", torch.zeros(c, d, q, dtype=dtype))
        free_mean = nn.Parameter(torch.zeros(c, j, t, q, dtype=dtype))
        setattr(self, config.mean_parametrisation, free_mean)  # ``mean_bar`` (μ̄) or ``mean`` (μ)
        self.lambda_raw = nn.Parameter(torch.zeros(c, j, t, q, dtype=dtype))
        self.inducing = nn.Parameter(torch.zeros(c, m, q, dtype=dtype))
        self.log_inverse_widths = nn.Parameter(torch.zeros(c, q, dtype=dtype))
        if config.constraint.name == "snr":
            self.signal_share_logit = nn.Parameter(torch.zeros(c, dtype=dtype))
        else:
            self.log_signal_variance = nn.Parameter(torch.zeros(c, dtype=dtype))
            self.log_noise_precision = nn.Parameter(torch.zeros(c, dtype=dtype))
        if config.latent_prior == "gp_time":
            self.log_time_inverse_lengthscale_sq = nn.Parameter(torch.zeros(c, dtype=dtype))
            self.log_time_white_variance = nn.Parameter(torch.zeros(c, dtype=dtype))
            self.log_time_bias_variance = nn.Parameter(torch.zeros(c, dtype=dtype))

    @property
    def output_dim(self) -> int:
        return self.frames.shape[-1]

    def project(self, frames: Tensor) -> Tensor:
        """Whitened class PCA scores (C, ..., T, Q) of frames (C, ..., T, D) (spec §2.5, §2.6 init)."""
        c, d, q = self.pca_projection.shape
        centred = frames - self.pca_mean.reshape(c, *([1] * (frames.dim() - 2)), d)
        return centred @ self.pca_projection.reshape(c, *([1] * (frames.dim() - 3)), d, q)

    def free_mean(self) -> nn.Parameter:
        """The free variational mean (C, J, T, Q): μ̄, or μ under ``mean_parametrisation="mean"``."""
        return getattr(self, self.config.mean_parametrisation)

    def noise_parameters(self) -> list[nn.Parameter]:
        """The parameters held fixed during the first ``fixed_beta_iters`` iterations (spec §2.5)."""
        if self.config.constraint.name == "snr":
            return [self.signal_share_logit]
        return [self.log_noise_precision]

    def lambda_sqrt(self, raw: Tensor | None = None, frame_mask: Tensor | None = None) -> Tensor:
        """λ^½ (C, J, T, Q) of the training tokens, or of ``raw`` with its ``frame_mask``."""
        raw = self.lambda_raw if raw is None else raw
        mask = self.frame_mask if frame_mask is None else frame_mask
        return latent_scale(raw, mask, self.config.constraint)

    def emission_variances(self) -> tuple[Tensor, Tensor]:
        """(σ_f², β), each (C,)."""
        if self.config.constraint.name == "snr":
            share = self.signal_share_logit
            return emission_variances(share, share, share, self.data_variance, self.config.constraint)
        return emission_variances(
            self.log_signal_variance,
            self.log_noise_precision,
            self.log_signal_variance,
            self.data_variance,
            self.config.constraint,
        )

    def token_times(self, frames: int) -> Tensor:
        """t = frame_period_s · (0 … frames − 1) seconds: (frames,)."""
        return self.config.frame_period_s * torch.arange(
            frames, dtype=self.frames.dtype, device=self.frames.device
        )

    def time_covariance(self, frame_mask: Tensor) -> Tensor:
        """K_t per token (C, ..., T, T) for a frame mask (C, ..., T); token times 0, period, … (spec §2.1)."""
        times = self.token_times(frame_mask.shape[-1]).expand(frame_mask.shape)
        return time_kernel(
            times,
            frame_mask,
            self.config.time_rbf_variance,
            torch.exp(self.log_time_inverse_lengthscale_sq),
            torch.exp(self.log_time_white_variance),
            torch.exp(self.log_time_bias_variance),
        )

    def latent_marginals(
        self,
        free_mean: Tensor | None = None,
        lambda_sqrt: Tensor | None = None,
        frame_mask: Tensor | None = None,
    ) -> LatentMarginals:
        """q(X) marginals and the KL per token (kl: (C, J)), of the training tokens unless given others."""
        free_mean = self.free_mean() if free_mean is None else free_mean
        mask = self.frame_mask if frame_mask is None else frame_mask
        lambda_sqrt = self.lambda_sqrt() if lambda_sqrt is None else lambda_sqrt
        free_mean = free_mean * mask.unsqueeze(-1).to(free_mean.dtype)  # padded μ̄ = 0
        if self.config.latent_prior == "isotropic":
            return isotropic_latent_marginals(free_mean, lambda_sqrt)
        return time_prior_marginals(
            self.time_covariance(mask), free_mean, lambda_sqrt, self.config.mean_parametrisation
        )

    def forward(self) -> ModelTerms:
        """Evaluate every class's bound on its training tokens."""
        c, j, t, d = self.frames.shape
        marginals = self.latent_marginals()
        signal_variance, noise_precision = self.emission_variances()
        inverse_widths = torch.exp(self.log_inverse_widths)
        stats = emission_statistics(
            self.frames.reshape(c, j * t, d),
            self.frame_mask.reshape(c, j * t),
            marginals.mean.reshape(c, j * t, -1),
            marginals.variance.reshape(c, j * t, -1),
            self.inducing,
            signal_variance,
            inverse_widths,
        )
        chol = inducing_cholesky(self.inducing, signal_variance, inverse_widths, self.jitter(signal_variance))
        collapsed = collapsed_bound(stats, noise_precision, d, chol)
        kl = marginals.kl.sum(-1)
        return ModelTerms(
            bound=collapsed.value - kl,
            collapsed=collapsed.value,
            kl=kl,
            nystrom_ratio=collapsed.nystrom_ratio,
            signal_variance=signal_variance,
            noise_precision=noise_precision,
            inverse_widths=inverse_widths,
            stats=stats,
            kmm_cholesky=chol,
        )

    def jitter(self, signal_variance: Tensor) -> Tensor:
        """Absolute K_MM jitter, ``jitter_scale · σ_f²`` (spec §2.3)."""
        return self.config.jitter_scale * signal_variance

    def penalty(self, terms: ModelTerms) -> Tensor:
        """The constraint's training penalty per class (spec §2.4)."""
        return constraint_penalty(
            terms.nystrom_ratio,
            terms.stats.frames,
            self.output_dim,
            self.penalty_weight,
            self.config.constraint,
        )
