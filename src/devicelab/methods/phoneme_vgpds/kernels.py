"""Kernels of the VGPDS: the time kernel over token frames, the RBF-ARD emission kernel, its Psi statistics.

Spec §2.2 (time kernel rbf + white + bias, block diagonal over tokens) and §2.3 (ψ0, Ψ1, Ψ2 of the RBF-ARD
kernel under q(X) = Π_n N(μ_n, diag S_n); Titsias & Lawrence 2010). Every function broadcasts over leading
batch axes (classes, tokens) and works in the dtype it is given (the models use float64).
"""

from __future__ import annotations

import torch
from torch import Tensor


def time_kernel(
    times: Tensor,
    frame_mask: Tensor,
    rbf_variance: Tensor | float,
    inverse_lengthscale_sq: Tensor,
    white_variance: Tensor,
    bias_variance: Tensor,
) -> Tensor:
    """The prior covariance K_t of one token's latent column, padded frames replaced by identity rows/columns.

    Spec §2.2: ``k_t(t,t') = σ_r² exp(−(t−t')²/(2ℓ_t²)) + σ_w² δ(t,t') + σ_b²``; §2.3 "Batching": padded
    rows and columns of K_t are identity, so a padded frame is an independent N(0, 1) that the bound ignores.

    times: (..., T) seconds; frame_mask: (..., T) bool; each kernel parameter is a float or a tensor whose
    shape is a prefix of the batch axes (one value per class: shape (C,) for times (C, J, T)).
    Returns (..., T, T).
    """
    diff_sq = (times.unsqueeze(-1) - times.unsqueeze(-2)) ** 2  # (..., T, T)
    inv_l2 = _as_batch(inverse_lengthscale_sq, times)
    eye = torch.eye(times.shape[-1], dtype=times.dtype, device=times.device)
    k = (
        _as_batch(rbf_variance, times) * torch.exp(-0.5 * inv_l2 * diff_sq)
        + _as_batch(white_variance, times) * eye
        + _as_batch(bias_variance, times)
    )
    pair_mask = frame_mask.unsqueeze(-1) & frame_mask.unsqueeze(-2)  # (..., T, T)
    return torch.where(pair_mask, k, eye.expand_as(k))


def rbf_ard(x1: Tensor, x2: Tensor, variance: Tensor | float, inverse_widths: Tensor) -> Tensor:
    """The emission kernel ``k_f(x,x') = σ_f² exp(−½ Σ_q w_q (x_q − x'_q)²)`` (spec §2.2).

    x1: (..., A, Q); x2: (..., B, Q); variance: (...) or float; inverse_widths w: (..., Q).
    Returns (..., A, B).
    """
    w = inverse_widths.unsqueeze(-2)  # (..., 1, Q)
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)  # (..., A, B, Q)
    sq = (diff**2 * w.unsqueeze(-2)).sum(-1)  # (..., A, B)
    variance = torch.as_tensor(variance, dtype=sq.dtype, device=sq.device)
    return variance[..., None, None] * torch.exp(-0.5 * sq)


def psi0(frame_mask: Tensor, variance: Tensor) -> Tensor:
    """ψ0 = N σ_f², N the number of real frames (spec §2.3). frame_mask: (..., N); variance: (...)."""
    return frame_mask.to(variance.dtype).sum(-1) * variance


def psi1(
    mean: Tensor, var: Tensor, frame_mask: Tensor, inducing: Tensor, variance: Tensor, w: Tensor
) -> Tensor:
    """Ψ1[n,m] = E_q[k_f(x_n, z_m)]; padded frames give zero rows (spec §2.3).

    ``σ_f² Π_q (w_q S_nq + 1)^{-½} exp(−½ w_q (μ_nq − z_mq)² / (w_q S_nq + 1))``.
    mean, var: (..., N, Q); frame_mask: (..., N); inducing Z: (..., M, Q); variance: (...); w: (..., Q).
    Returns (..., N, M).
    """
    w = w.unsqueeze(-2)  # (..., 1, Q)
    denom = w * var + 1.0  # (..., N, Q)
    diff = mean.unsqueeze(-2) - inducing.unsqueeze(-3)  # (..., N, M, Q)
    exponent = -0.5 * (w.unsqueeze(-2) * diff**2 / denom.unsqueeze(-2)).sum(-1)  # (..., N, M)
    log_norm = -0.5 * torch.log(denom).sum(-1, keepdim=True)  # (..., N, 1)
    out = variance[..., None, None] * torch.exp(exponent + log_norm)
    return out * frame_mask.unsqueeze(-1).to(out.dtype)


def psi2(
    mean: Tensor, var: Tensor, frame_mask: Tensor, inducing: Tensor, variance: Tensor, w: Tensor
) -> Tensor:
    """Ψ2[m,m'] = Σ_n E_q[k_f(z_m, x_n) k_f(x_n, z_m')] over real frames (spec §2.3).

    ``σ_f⁴ Σ_n Π_q (2w_q S_nq + 1)^{-½} exp(−¼ w_q (z_mq − z_m'q)² − w_q (μ_nq − z̄_q)² / (2w_q S_nq + 1))``,
    z̄ = (z_m + z_m')/2. With a_nq = w_q / (2w_q S_nq + 1) the exponent is expanded in z̄,
    ``c_n + Σ_q 2 a_nq μ_nq z̄_q − Σ_q a_nq z̄_q²``, one (N, 1 + 2Q) × (1 + 2Q, M²) product; the frame sum is a
    masked reduction of its exponential. Time O(N·M²·Q), memory O(N·M²).

    mean, var: (..., N, Q); frame_mask: (..., N); inducing Z: (..., M, Q); variance: (...); w: (..., Q).
    Returns (..., M, M).
    """
    m = inducing.shape[-2]
    w_ = w.unsqueeze(-2)  # (..., 1, Q)
    denom = 2.0 * w_ * var + 1.0  # (..., N, Q)
    a = w_ / denom
    offset = -0.5 * torch.log(denom).sum(-1, keepdim=True) - (a * mean**2).sum(
        -1, keepdim=True
    )  # (..., N, 1)
    frame_terms = torch.cat([offset, 2.0 * a * mean, -a], dim=-1)  # (..., N, 1 + 2Q)
    z_bar = 0.5 * (inducing.unsqueeze(-2) + inducing.unsqueeze(-3))  # (..., M, M, Q)
    z_bar = z_bar.reshape(*z_bar.shape[:-3], m * m, -1)  # (..., M², Q)
    pair_terms = torch.cat([torch.ones_like(z_bar[..., :1]), z_bar, z_bar**2], dim=-1)  # (..., M², 1 + 2Q)
    exponent = frame_terms @ pair_terms.transpose(-1, -2)  # (..., N, M²)
    mask = frame_mask.to(mean.dtype).unsqueeze(-2)  # (..., 1, N)
    summed = (mask @ torch.exp(exponent)).reshape(*exponent.shape[:-2], m, m)  # (..., M, M)
    z_dist = ((inducing.unsqueeze(-2) - inducing.unsqueeze(-3)) ** 2 * w_.unsqueeze(-2)).sum(
        -1
    )  # (..., M, M)
    return (variance**2)[..., None, None] * torch.exp(-0.25 * z_dist) * summed


def _as_batch(value: Tensor | float, like: Tensor) -> Tensor | float:
    """A kernel parameter whose shape is a prefix of ``like``'s batch axes, viewed against (..., T, T)."""
    if not isinstance(value, Tensor) or value.dim() == 0:
        return value
    return value.reshape(*value.shape, *([1] * (like.dim() + 1 - value.dim())))
