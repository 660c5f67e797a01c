"""The label shift adapter: a small network that maps a label distribution to new head parameters.

Park et al., ICCV 2023, §3 [summary: the adapter outputs an affine transform (γ, β) of the feature and
weight/bias differences (ΔW, Δb) of the classifier, from a scalar imbalance degree]. The composition is a
[reconstruction] (spec ``tta-lsa.md`` §3.2–3.3):

    (Δγ, β, ΔW, Δb) = g_φ(u(π));   γ = 1 + Δγ
    z(x; π) = (W + ΔW)(γ ⊙ h + β) + (b + Δb)

g_φ is an MLP whose last layer starts at zero, so an untrained adapter reproduces the source head bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from devicelab.core.config import ranged

Descriptor = Literal["scalar", "vector"]
DeltaW = Literal["full", "lowrank", "none"]

FULL_DELTA_W_LIMIT = 65_536  # K·D above which delta_w="full" is refused in favour of "lowrank"


@dataclass(frozen=True)
class AdapterConfig:
    """Shape of g_φ and of the prior descriptor (spec §3.2–3.3, all [reconstruction])."""

    hidden: int = ranged(128, low=1)
    descriptor: Descriptor = "scalar"
    delta_w: DeltaW = "full"
    rank: int = ranged(16, low=1)
    rho_max: float = 100.0  # scalar descriptor: u = s / ln ρ_max
    eps: float = 1e-3  # vector descriptor: u = max(ln π − ln π_s, ln ε)
    # "source": the adapter outputs g_φ(u(π)) − g_φ(u(π_s)), so at the source prior the head is the source
    # head whatever φ learned, and every change it makes is a function of the label shift; "none": g_φ(u(π))
    anchor: Literal["source", "none"] = "source"


def source_ranks(source_prior: torch.Tensor) -> torch.Tensor:
    """r_k = rank_k / (K − 1), ranking classes by source frequency (most frequent = 0); spec §3.3."""
    k = source_prior.numel()
    order = torch.as_tensor(np.argsort(-source_prior.detach().cpu().numpy(), kind="stable"))
    ranks = torch.empty(k, dtype=torch.float32)
    ranks[order] = torch.arange(k, dtype=torch.float32)
    return ranks / (k - 1)


def scalar_family(s: torch.Tensor | float, ranks: torch.Tensor) -> torch.Tensor:
    """π(s)_k ∝ exp(−s·r_k): s = ln ρ is forward-LT with ratio ρ, 0 uniform, s < 0 backward-LT."""
    s = torch.as_tensor(s, dtype=torch.float32).reshape(-1, 1)  # (B, 1)
    return torch.softmax(-s * ranks.reshape(1, -1), dim=1).squeeze(0)  # (K,) or (B, K)


def scalar_from_prior(prior: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    """ŝ = −cov(r, ln π) / var(r): the least-squares slope of ln π on r, negated; spec §3.3."""
    log_prior = prior.float().log()
    r = ranks - ranks.mean()
    centred = log_prior - log_prior.mean(dim=-1, keepdim=True)
    return -(centred * r).sum(dim=-1) / (r * r).sum()


class LabelShiftAdapter(nn.Module):
    """g_φ: prior π → (Δγ, β, ΔW, Δb) for a frozen linear head of ``num_classes`` × ``feature_dim``.

    ``adapted_logits(h, linear, prior)`` computes the adapted head with ``F.linear``, the kernel of
    ``nn.Linear``, so a zero output reproduces ``linear(h)`` exactly.
    """

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        source_prior: torch.Tensor,
        config: AdapterConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = config or AdapterConfig()
        cfg = self.config
        if cfg.descriptor not in ("scalar", "vector"):
            raise ValueError(f"adapter descriptor must be scalar or vector, got {cfg.descriptor!r}")
        if cfg.delta_w not in ("full", "lowrank", "none"):
            raise ValueError(f"adapter delta_w must be full, lowrank or none, got {cfg.delta_w!r}")
        if cfg.delta_w == "full" and num_classes * feature_dim > FULL_DELTA_W_LIMIT:
            raise ValueError(
                f"delta_w='full' needs K·D <= {FULL_DELTA_W_LIMIT} (got {num_classes * feature_dim}); "
                "use delta_w='lowrank'"
            )
        if cfg.rho_max <= 1:
            raise ValueError(f"adapter rho_max must be > 1, got {cfg.rho_max}")
        if cfg.anchor not in ("source", "none"):
            raise ValueError(f"adapter anchor must be source or none, got {cfg.anchor!r}")
        source_prior = torch.as_tensor(source_prior, dtype=torch.float32)
        if source_prior.shape != (num_classes,) or torch.any(source_prior <= 0):
            raise ValueError(f"source_prior must be {num_classes} positive class frequencies")
        self.num_classes, self.feature_dim = num_classes, feature_dim
        self.register_buffer("source_prior", source_prior / source_prior.sum())
        self.register_buffer("ranks", source_ranks(source_prior))
        k, d = num_classes, feature_dim
        self.delta_w_size = {"full": k * d, "lowrank": cfg.rank * (k + d), "none": 0}[cfg.delta_w]
        self.output_size = 2 * d + self.delta_w_size + k
        in_size = 1 if cfg.descriptor == "scalar" else k
        self.mlp = nn.Sequential(
            nn.Linear(in_size, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, self.output_size),
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def describe(self, prior: torch.Tensor) -> torch.Tensor:
        """u(π): (K,) or (B, K) priors -> (d_u,) or (B, d_u) descriptors; spec §3.3."""
        prior = prior.to(self.source_prior)
        if self.config.descriptor == "scalar":
            s = scalar_from_prior(prior, self.ranks)
            return (s / math.log(self.config.rho_max)).clamp(-1.0, 1.0).unsqueeze(-1)
        log_ratio = prior.clamp_min(1e-12).log() - self.source_prior.log()
        return log_ratio.clamp_min(math.log(self.config.eps))

    def head_params(
        self, prior: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(γ, β, ΔW, Δb) for one prior (K,): shapes (D,), (D,), (K, D), (K,)."""
        k, d = self.num_classes, self.feature_dim
        out = self.mlp(self.describe(prior))  # (P,)
        if self.config.anchor == "source":  # zero change at π_s: the source head there, whatever φ is
            out = out - self.mlp(self.describe(self.source_prior))
        delta_gamma, beta = out[:d], out[d : 2 * d]
        w_part, delta_b = out[2 * d : 2 * d + self.delta_w_size], out[2 * d + self.delta_w_size :]
        if self.config.delta_w == "full":
            delta_w = w_part.reshape(k, d)
        elif self.config.delta_w == "lowrank":
            a, b = w_part[: k * self.config.rank], w_part[k * self.config.rank :]
            delta_w = a.reshape(k, self.config.rank) @ b.reshape(d, self.config.rank).T  # A Bᵀ
        else:
            delta_w = torch.zeros(k, d, dtype=out.dtype, device=out.device)
        return 1.0 + delta_gamma, beta, delta_w, delta_b

    def adapted_logits(
        self,
        features: torch.Tensor,
        linear: nn.Linear,
        prior: torch.Tensor,
        params: tuple[torch.Tensor, ...] | None = None,
    ) -> torch.Tensor:
        """z(x; π) = (W + ΔW)(γ ⊙ h + β) + (b + Δb); features (N, D) -> logits (N, K)."""
        gamma, beta, delta_w, delta_b = params if params is not None else self.head_params(prior)
        bias = linear.bias + delta_b if linear.bias is not None else delta_b
        return F.linear(gamma * features + beta, linear.weight + delta_w, bias)


def logit_prior_correction(
    logits: torch.Tensor, prior: torch.Tensor, source_prior: torch.Tensor
) -> torch.Tensor:
    """z + (ln π − ln π_s): the closed-form prior correction the adapter must beat (spec §3.8)."""
    return logits + (prior.clamp_min(1e-12).log() - source_prior.log()).to(logits)
