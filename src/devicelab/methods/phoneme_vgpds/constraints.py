"""The variance constraint of the CVGPDS, one config switch with four readings (spec §2.4).

[reconstruction] The paper says only that "a variance constraint" is added to mitigate the sparse
approximation error of the kernel matrix; each option below is one consistent reading, selected by
``ConstraintConfig.name``:

- ``nystrom`` (V1, default): bound the Nyström error ratio r = (ψ0 − tr C)/ψ0 by ε, through the
  quadratic penalty ``ρ·N·D·max(0, r − ε)²`` or, with ``solver="dual"``, the Lagrangian term
  ``ρ·N·D·(r − ε)`` with dual ascent on ρ.
- ``latent_var`` (V2): ``λ^½ = s_max^{-½} + softplus(ρ)``, so diag S_q ≤ 1/λ ≤ s_max exactly (S_q ⪯ Λ_q⁻¹).
- ``snr`` (V3): ``σ_f² = v̂·s``, ``β⁻¹ = v̂·(1 − s)``, ``s = v_min + (1 − v_min)·sigmoid(a)``.
- ``none``: the unconstrained VGPDS.

The constraint acts in training; scores use F without the penalty unless ``score_with_penalty`` is set.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from devicelab.methods.phoneme_vgpds.config import ConstraintConfig


def latent_scale(raw: Tensor, frame_mask: Tensor, config: ConstraintConfig) -> Tensor:
    """λ^½ from its free parameter, exactly zero on padded frames (spec §2.2; §2.4 V2 [reconstruction]).

    ``λ^½ = softplus(ρ)``, or ``s_max^{-½} + softplus(ρ)`` under ``latent_var``. Parametrising λ^½ rather
    than λ keeps gradients finite on padded frames. raw: (..., T, Q); frame_mask: (..., T).
    """
    scale = F.softplus(raw)
    if config.name == "latent_var":
        scale = scale + config.s_max**-0.5
    return scale * frame_mask.unsqueeze(-1).to(raw.dtype)


def inverse_latent_scale(lambda_sqrt: Tensor, config: ConstraintConfig, floor: float = 1e-3) -> Tensor:
    """The free parameter that gives ``lambda_sqrt`` (clamped to the feasible set plus ``floor``; for
    init)."""
    target = lambda_sqrt
    if config.name == "latent_var":
        target = lambda_sqrt - config.s_max**-0.5
    target = target.clamp_min(floor)
    return target + torch.log(-torch.expm1(-target))  # softplus⁻¹


def emission_variances(
    log_signal_variance: Tensor,
    log_noise_precision: Tensor,
    signal_share_logit: Tensor,
    data_variance: Tensor,
    config: ConstraintConfig,
) -> tuple[Tensor, Tensor]:
    """(σ_f², β) per class: free (log-parametrised), or tied to the data variance v̂ under ``snr`` (V3)
    [reconstruction]. All arguments have shape (C,); the unused ones are ignored.
    """
    if config.name == "snr":
        share = config.v_min + (1.0 - config.v_min) * torch.sigmoid(signal_share_logit)
        return data_variance * share, 1.0 / (data_variance * (1.0 - share))
    return torch.exp(log_signal_variance), torch.exp(log_noise_precision)


def signal_share_logit_for_snr(snr: float, config: ConstraintConfig) -> float:
    """The V3 parameter a with ``β·v̂ = snr`` (the SNR initialisation of spec §2.5 under ``snr``).

    s = 1 − 1/snr; clamped into (v_min, 1) so that the logit is finite.
    """
    share = min(max(1.0 - 1.0 / snr, config.v_min + 1e-6), 1.0 - 1e-9)
    p = (share - config.v_min) / (1.0 - config.v_min)
    return math.log(p) - math.log1p(-p)


def constraint_penalty(
    nystrom_ratio: Tensor, frames: Tensor, output_dim: int, weight: Tensor, config: ConstraintConfig
) -> Tensor:
    """The term subtracted from F in training, per class (spec §2.4 V1); zero for the other options.

    penalty solver: ``ρ·N·D·max(0, r − ε)²``; dual solver: ``ρ·N·D·(r − ε)``. nystrom_ratio r, frames N,
    weight ρ: (...).
    """
    if config.name != "nystrom":
        return torch.zeros_like(nystrom_ratio)
    excess = nystrom_ratio - config.epsilon
    if config.solver == "penalty":
        excess = excess.clamp_min(0.0) ** 2
    return weight * frames * output_dim * excess


def dual_ascent(weight: Tensor, nystrom_ratio: Tensor, config: ConstraintConfig) -> Tensor:
    """One dual step ``ρ ← max(0, ρ + η(r − ε))`` per class (spec §2.4 V1, ``solver="dual"``)."""
    return (weight + config.dual_step * (nystrom_ratio.detach() - config.epsilon)).clamp_min(0.0)
