"""Initialisation, training and classification of the per-class (C)VGPDS models (spec §2.5–§2.6).

- :func:`initialise_models`: PCA init of μ with μ̄ = K_t⁻¹ μ_pca per token by Cholesky, a common λ bisected so
  that median(diag S) = 0.18, Z from rows of μ, w_q, σ_f², the time kernel and β from the SNR [ref: vargplvm
  ``vargplvmInitDynamics.m``, ``vargplvmOptionsDyn.m``].
- :func:`train_models`: Adam (or L-BFGS) on all classes at once, β held fixed for ``fixed_beta_iters``, the
  V1 dual multiplier updated every ``dual_every`` iterations.
- :func:`score_tokens`: ``score_c(Y*) = max F_c(Y_c ∪ Y*) − F_c(Y_c)`` through additive statistics, batched
  over (class, token) [reconstruction; same job as vargplvm ``vargplvmSeqDynLogLikelihood.m``].
- :class:`VgpdsClassifier`: the three above behind ``fit`` / ``score`` / ``predict``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from devicelab.core.checkpoint import TrainingCheckpoint
from devicelab.core.seeding import child_rng
from devicelab.core.training import fit
from devicelab.methods.phoneme_vgpds.bound import (
    CollapsedBound,
    EmissionStatistics,
    LatentMarginals,
    collapsed_bound,
    emission_statistics,
    isotropic_latent_marginals,
    time_prior_marginals,
)
from devicelab.methods.phoneme_vgpds.config import VgpdsConfig
from devicelab.methods.phoneme_vgpds.constraints import (
    constraint_penalty,
    dual_ascent,
    inverse_latent_scale,
    latent_scale,
    signal_share_logit_for_snr,
)
from devicelab.methods.phoneme_vgpds.model import ModelTerms, VgpdsModels
from devicelab.methods.phoneme_vgpds.tokens import PaddedTokens, class_log_prior, pad_tokens

log = logging.getLogger(__name__)

LOG_LAMBDA_BRACKET = (-15.0, 15.0)  # bisection bracket of log λ
BISECTION_STEPS = 40


# ------------------------------------------------------------------------------------------- initialisation
def class_pca(tokens: PaddedTokens, latent_dim: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class PCA of the real frames: (mean (C, D), whitening projection (C, D, Q), v̂ (C,)).

    Scores ``(y − mean) @ projection`` have unit variance per latent dimension [ref: GPy ``initialize_latent``
    standardises the PCA scores]; v̂ is the mean per-dimension variance of the class's frames (spec §2.4,
    §2.5). Eigenvector signs are fixed so that each column's largest entry is positive (deterministic init).
    """
    c, j, t, d = tokens.frames.shape
    if latent_dim > d:
        raise ValueError(f"latent_dim={latent_dim} exceeds the feature size D={d}")
    y = tokens.frames.reshape(c, j * t, d)
    mask = tokens.frame_mask.reshape(c, j * t, 1).to(y.dtype)
    counts = mask.sum(1).clamp_min(1.0)  # (C, 1)
    mean = (y * mask).sum(1) / counts  # (C, D)
    centred = (y - mean.unsqueeze(1)) * mask
    cov = centred.mT @ centred / counts.unsqueeze(-1)  # (C, D, D)
    evals, evecs = torch.linalg.eigh(cov)  # ascending
    evals, evecs = evals.flip(-1)[:, :latent_dim], evecs.flip(-1)[:, :, :latent_dim]
    pivot = evecs.abs().argmax(1, keepdim=True)  # (C, 1, Q)
    evecs = evecs * torch.sign(torch.gather(evecs, 1, pivot))
    projection = evecs / evals.clamp_min(1e-12).sqrt().unsqueeze(1)
    data_variance = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1)
    return mean, projection, data_variance


def median_time_span(frame_mask: Tensor, frame_period_s: float) -> Tensor:
    """Median over each class's tokens of the time span (n − 1)·period, at least one period: t_range (C,)."""
    lengths = frame_mask.sum(-1).to(torch.float64)  # (C, J)
    spans = ((lengths - 1.0) * frame_period_s).clamp_min(frame_period_s)
    spans = torch.where(lengths > 0, spans, torch.nan)
    return torch.nanmedian(spans, dim=1).values


def masked_median(values: Tensor, frame_mask: Tensor) -> Tensor:
    """Median per class of values (C, J, T, Q) over real frames: (C,)."""
    masked = torch.where(frame_mask.unsqueeze(-1), values, torch.nan)
    return torch.nanmedian(masked.reshape(values.shape[0], -1), dim=1).values


def bisect_common_lambda(models: VgpdsModels, target_variance: float) -> Tensor:
    """λ^½ of a common λ per class such that median(diag S) over real frames is ``target_variance``: (C,).

    Bisection on log λ [ref: vargplvm ``initCovarMedian``]; diag S falls monotonically as λ grows.
    """
    mask = models.frame_mask
    c = mask.shape[0]
    lo = torch.full((c,), LOG_LAMBDA_BRACKET[0], dtype=models.frames.dtype)
    hi = torch.full((c,), LOG_LAMBDA_BRACKET[1], dtype=models.frames.dtype)
    zeros = torch.zeros_like(models.free_mean())
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        lambda_sqrt = torch.exp(0.5 * mid).reshape(c, 1, 1, 1) * mask.unsqueeze(-1).to(mid.dtype)
        variance = models.latent_marginals(free_mean=zeros, lambda_sqrt=lambda_sqrt.expand_as(zeros)).variance
        too_broad = masked_median(variance, mask) > target_variance
        lo, hi = torch.where(too_broad, mid, lo), torch.where(too_broad, hi, mid)
    return torch.exp(0.25 * (lo + hi))  # λ^½ at the midpoint of the final log λ bracket


def choose_inducing(latent_mean: Tensor, frame_mask: Tensor, num_inducing: int, seed: int) -> Tensor:
    """Z: M rows of μ per class drawn without replacement, seeded per class (spec §2.5). Returns (C, M, Q)."""
    c = latent_mean.shape[0]
    flat_mean = latent_mean.reshape(c, -1, latent_mean.shape[-1])
    flat_mask = frame_mask.reshape(c, -1)
    rows = []
    for k in range(c):
        real = torch.nonzero(flat_mask[k]).squeeze(-1).numpy()
        if len(real) < num_inducing:
            raise ValueError(
                f"class {k}: {len(real)} training frames, fewer than num_inducing={num_inducing}"
            )
        pick = child_rng(seed, "inducing", k).choice(real, size=num_inducing, replace=False)
        rows.append(flat_mean[k, torch.as_tensor(np.sort(pick))])
    return torch.stack(rows)


@torch.no_grad()
def initialise_models(tokens: PaddedTokens, config: VgpdsConfig) -> VgpdsModels:
    """Build :class:`VgpdsModels` for the padded training tokens and set every parameter as spec §2.5 says."""
    models = VgpdsModels(tokens, config)
    mask = models.frame_mask
    real = mask.unsqueeze(-1).to(models.frames.dtype)
    pca_mean, projection, data_variance = class_pca(tokens, config.latent_dim)
    models.pca_mean.copy_(pca_mean)
    models.pca_projection.copy_(projection)
    models.data_variance.copy_(data_variance)
    mu_pca = models.project(models.frames) * real  # (C, J, T, Q)

    # emission: w_q = mult / range(μ_q)², σ_f² = v̂, β = SNR / v̂
    upper = torch.where(mask.unsqueeze(-1), mu_pca, -torch.inf).amax((1, 2))  # (C, Q)
    lower = torch.where(mask.unsqueeze(-1), mu_pca, torch.inf).amin((1, 2))
    models.log_inverse_widths.copy_(
        torch.log(config.inverse_width_mult / (upper - lower).clamp_min(1e-6) ** 2)
    )
    if config.constraint.name == "snr":
        models.signal_share_logit.fill_(signal_share_logit_for_snr(config.init_snr, config.constraint))
    else:
        models.log_signal_variance.copy_(torch.log(data_variance))
        models.log_noise_precision.copy_(torch.log(config.init_snr / data_variance))

    # time kernel, and μ̄ = K_t⁻¹ μ_pca per token (or μ = μ_pca under mean_parametrisation="mean")
    free_mean = mu_pca
    if config.latent_prior == "gp_time":
        t_range = median_time_span(mask, config.frame_period_s)
        models.log_time_inverse_lengthscale_sq.copy_(torch.log(config.time_inverse_width / t_range**2))
        models.log_time_white_variance.fill_(float(np.log(config.time_white_variance)))
        models.log_time_bias_variance.fill_(float(np.log(config.time_bias_variance)))
        if config.mean_parametrisation == "mean_bar":
            chol = torch.linalg.cholesky(models.time_covariance(mask))  # (C, J, T, T)
            free_mean = torch.cholesky_solve(mu_pca, chol) * real
    models.free_mean().copy_(free_mean)

    lambda_sqrt = bisect_common_lambda(models, config.init_median_variance)  # (C,)
    models.lambda_raw.copy_(inverse_latent_scale(lambda_sqrt, config.constraint).reshape(-1, 1, 1, 1) * real)
    models.inducing.copy_(choose_inducing(mu_pca, mask, config.num_inducing, config.seed))
    return models


# --------------------------------------------------------------------------------------------------- training
def make_optimizer(models: VgpdsModels, config: VgpdsConfig) -> torch.optim.Optimizer:
    """Adam at ``lr`` (spec §2.5), or L-BFGS with a strong-Wolfe line search (one iteration per step)."""
    if config.optimizer == "lbfgs":
        return torch.optim.LBFGS(
            models.parameters(), lr=config.lr, max_iter=1, history_size=20, line_search_fn="strong_wolfe"
        )
    return torch.optim.Adam(models.parameters(), lr=config.lr)


def training_step(
    models: VgpdsModels, optimizer: torch.optim.Optimizer, iteration: int, config: VgpdsConfig
) -> dict[str, float]:
    """One optimiser step on Σ_c (F_c − penalty_c); returns the per-iteration record (before the step).

    β (or V3's signal share) gets no gradient while ``iteration < fixed_beta_iters``; under the V1 dual solver
    the multipliers ρ_c take one ascent step after every ``dual_every``-th iteration.
    """
    evaluated: list[tuple[ModelTerms, torch.Tensor]] = []
    hold_noise = iteration < config.fixed_beta_iters

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        terms = models()
        penalty = models.penalty(terms)
        loss = -(terms.bound - penalty).sum()
        loss.backward()
        if hold_noise:
            for p in models.noise_parameters():
                p.grad = None
        evaluated.append((terms, penalty))
        return loss

    optimizer.step(closure)
    terms, penalty = evaluated[0]
    constraint = config.constraint
    if (
        constraint.name == "nystrom"
        and constraint.solver == "dual"
        and (iteration + 1) % constraint.dual_every == 0
    ):
        with torch.no_grad():
            models.penalty_weight.copy_(dual_ascent(models.penalty_weight, terms.nystrom_ratio, constraint))
    frames = terms.stats.frames.sum()
    return {
        "bound_per_frame": float(terms.bound.detach().sum() / frames),
        "penalty_per_frame": float(penalty.detach().sum() / frames),
        "nystrom_ratio": float(terms.nystrom_ratio.detach().mean()),
        "snr": float((terms.noise_precision * models.data_variance).detach().mean()),
    }


def train_models(
    models: VgpdsModels,
    config: VgpdsConfig,
    *,
    checkpoint: TrainingCheckpoint | None = None,
    log_fn: Callable[..., None] | None = None,
    desc: str = "vgpds",
) -> list[dict[str, float]]:
    """Train all classes for ``train_iters`` iterations with :func:`devicelab.core.training.fit`.

    One fit "epoch" is a block of ``checkpoint_every`` iterations: the checkpoint (resumable) and the
    returned history (the record of each block's last iteration) are written once per block. Warns when a
    class ends with β·v̂ below ``min_snr_warning`` [ref ``vargplvmShowSNR.m``].
    """
    optimizer = make_optimizer(models, config)
    block = config.checkpoint_every

    def train_block(index: int) -> dict[str, float]:
        record: dict[str, float] = {}
        last = min((index + 1) * block, config.train_iters)
        for iteration in range(index * block, last):
            record = training_step(models, optimizer, iteration, config)
        return {"iteration": float(last), **record}

    history = fit(
        models,
        optimizer,
        train_block,
        math.ceil(config.train_iters / block),
        checkpoint=checkpoint,
        log=log_fn,
        desc=desc,
    )
    with torch.no_grad():
        snr = models.emission_variances()[1] * models.data_variance
    for c in torch.nonzero(snr < config.min_snr_warning).flatten().tolist():
        log.warning(
            "class %d: final SNR beta*v = %.3g < %g; the model may explain the data as noise",
            c,
            float(snr[c]),
            config.min_snr_warning,
        )
    return history


# ---------------------------------------------------------------------------------------------------- scoring
@dataclass
class ClassSnapshot:
    """Frozen per-class quantities of trained models, detached, for scoring new tokens (spec §2.6)."""

    stats: EmissionStatistics  # (C, ...)
    collapsed: Tensor  # (C,)  F̂ on the training tokens
    kl: Tensor  # (C,)
    nystrom_ratio: Tensor  # (C,)
    penalty: Tensor  # (C,)  training penalty at the frozen state
    inducing: Tensor  # (C, M, Q)
    signal_variance: Tensor  # (C,)
    noise_precision: Tensor  # (C,)
    inverse_widths: Tensor  # (C, Q)
    kmm_cholesky: Tensor  # (C, M, M)
    median_lambda: Tensor  # (C,)  median λ over the training frames

    @classmethod
    @torch.no_grad()
    def of(cls, models: VgpdsModels) -> ClassSnapshot:
        terms = models()
        return cls(
            stats=terms.stats.map(torch.Tensor.detach),
            collapsed=terms.collapsed.detach(),
            kl=terms.kl.detach(),
            nystrom_ratio=terms.nystrom_ratio.detach(),
            penalty=models.penalty(terms).detach(),
            inducing=models.inducing.detach().clone(),
            signal_variance=terms.signal_variance.detach(),
            noise_precision=terms.noise_precision.detach(),
            inverse_widths=terms.inverse_widths.detach(),
            kmm_cholesky=terms.kmm_cholesky.detach(),
            median_lambda=masked_median(models.lambda_sqrt().detach() ** 2, models.frame_mask),
        )


@dataclass
class ExtendedBound:
    """F̂ of each class's training tokens plus each new token, and the new tokens' q(X*) (spec §2.6)."""

    collapsed: CollapsedBound  # values (C, K)
    stats: EmissionStatistics  # (C, K, ...)  combined statistics
    latent: LatentMarginals  # of the new tokens; kl (C, K)


def extended_bound(
    snapshot: ClassSnapshot,
    frames: Tensor,
    frame_mask: Tensor,
    free_mean: Tensor,
    lambda_sqrt: Tensor,
    time_cov: Tensor | None,
    mean_parametrisation: str = "mean_bar",
) -> ExtendedBound:
    """F̂_c(Y_c ∪ Y*_k) for every (class c, new token k) from the additive statistics of spec §2.6.

    frames (C, K, T, D); frame_mask (C, K, T); free_mean (μ̄, or μ under ``mean_parametrisation="mean"``) and
    lambda_sqrt (C, K, T, Q); time_cov (C, K, T, T) under the class's time kernel, or None for the isotropic
    prior. The new token is independent of the training
    tokens in the prior, so F_c(Y_c ∪ Y*) = F̂(stats_c + stats*) − KL_c − KL*.
    """
    free_mean = free_mean * frame_mask.unsqueeze(-1).to(free_mean.dtype)
    if time_cov is None:
        latent = isotropic_latent_marginals(free_mean, lambda_sqrt)
    else:
        latent = time_prior_marginals(time_cov, free_mean, lambda_sqrt, mean_parametrisation)
    new = emission_statistics(
        frames,
        frame_mask,
        latent.mean,
        latent.variance,
        snapshot.inducing.unsqueeze(1),
        snapshot.signal_variance.unsqueeze(1),
        snapshot.inverse_widths.unsqueeze(1),
    )
    combined = snapshot.stats.map(lambda s: s.unsqueeze(1)) + new
    bound = collapsed_bound(
        combined, snapshot.noise_precision.unsqueeze(1), frames.shape[-1], snapshot.kmm_cholesky.unsqueeze(1)
    )
    return ExtendedBound(collapsed=bound, stats=combined, latent=latent)


def score_tokens(
    models: VgpdsModels, tokens: Sequence[np.ndarray], config: VgpdsConfig, chunk_size: int = 256
) -> Tensor:
    """``score_c(Y*) = max_{μ̄*, λ*} F_c(Y_c ∪ Y*) − F_c(Y_c)`` for every token and class: (K, C) float64.

    θ_c and the training q(X_c) stay frozen; (μ̄*, λ*) start at the class-PCA projection of Y* (μ̄* = K_t⁻¹
    μ*) and the class median λ, and are optimised by Adam (``test_lr``, ``test_iters``) for all (class, token)
    pairs at once, ``chunk_size`` tokens at a time. Scores use F without the constraint's penalty unless
    ``score_with_penalty`` [reconstruction].
    """
    snapshot = ClassSnapshot.of(models)
    scores = [
        _score_chunk(models, snapshot, tokens[i : i + chunk_size], config)
        for i in range(0, len(tokens), chunk_size)
    ]
    return torch.cat(scores, dim=0) if scores else torch.zeros(0, models.frames.shape[0], dtype=torch.float64)


def _score_chunk(
    models: VgpdsModels, snapshot: ClassSnapshot, tokens: Sequence[np.ndarray], config: VgpdsConfig
) -> Tensor:
    c = models.frames.shape[0]
    padded = pad_tokens([tokens], dtype=models.frames.dtype)  # (1, K, T, D)
    frames = padded.frames.expand(c, *padded.frames.shape[1:])  # (C, K, T, D)
    mask = padded.frame_mask.expand(c, *padded.frame_mask.shape[1:])  # (C, K, T)
    real = mask.unsqueeze(-1).to(frames.dtype)
    with torch.no_grad():
        mu_init = models.project(frames) * real  # (C, K, T, Q)
        time_cov = models.time_covariance(mask) if config.latent_prior == "gp_time" else None
        free_mean_init = mu_init
        if time_cov is not None and config.mean_parametrisation == "mean_bar":
            free_mean_init = torch.cholesky_solve(mu_init, torch.linalg.cholesky(time_cov))
        raw_init = inverse_latent_scale(snapshot.median_lambda.sqrt(), config.constraint).reshape(c, 1, 1, 1)
    free_mean = free_mean_init.clone().requires_grad_(True)
    raw = raw_init.expand_as(free_mean).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([free_mean, raw], lr=config.test_lr)

    def scores() -> Tensor:
        ext = extended_bound(
            snapshot,
            frames,
            mask,
            free_mean,
            latent_scale(raw, mask, config.constraint),
            time_cov,
            config.mean_parametrisation,
        )
        value = ext.collapsed.value - snapshot.collapsed.unsqueeze(1) - ext.latent.kl  # (C, K)
        if config.score_with_penalty:
            penalty = constraint_penalty(
                ext.collapsed.nystrom_ratio,
                ext.stats.frames,
                frames.shape[-1],
                models.penalty_weight.unsqueeze(1),
                config.constraint,
            )
            value = value - (penalty - snapshot.penalty.unsqueeze(1))
        return value

    for _ in range(config.test_iters):
        optimizer.zero_grad(set_to_none=True)
        (-scores().sum()).backward()
        optimizer.step()
    with torch.no_grad():
        return scores().T.contiguous()  # (K, C)


class VgpdsClassifier:
    """One (C)VGPDS per class; a token goes to ``argmax_c score_c + log π_c`` (spec §2.6)."""

    def __init__(self, config: VgpdsConfig):
        self.config = config
        self.models: VgpdsModels | None = None
        self.log_prior: Tensor | None = None
        self.history: list[dict[str, float]] = []

    def fit(self, tokens_per_class: Sequence[Sequence[np.ndarray]], **train_kwargs) -> VgpdsClassifier:
        torch.manual_seed(self.config.seed)
        self.models = initialise_models(pad_tokens(tokens_per_class), self.config)
        self.history = train_models(self.models, self.config, **train_kwargs)
        self.log_prior = torch.as_tensor(class_log_prior([len(t) for t in tokens_per_class]))
        return self

    def score(self, tokens: Sequence[np.ndarray]) -> Tensor:
        """Bound-difference scores (K, C), without the class prior."""
        if self.models is None:
            raise RuntimeError("VgpdsClassifier.score: call fit() first")
        return score_tokens(self.models, tokens, self.config)

    def predict(self, tokens: Sequence[np.ndarray]) -> np.ndarray:
        scores = self.score(tokens)
        if self.config.use_class_prior:
            scores = scores + self.log_prior
        return scores.argmax(1).numpy()
