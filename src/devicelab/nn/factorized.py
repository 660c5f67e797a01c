"""Factorised 2D convolution: a (k_f x k_t) kernel as a frequency (k_f x 1) and a time (1 x k_t) kernel.

Cho et al., "Acoustic Scene Classification Based on a Large-margin Factorized CNN", DCASE 2019 Workshop
(arXiv 1910.06784), abstract: "factorizing the 2D kernel into two separate 1D kernels". Only the abstract is
public, so the exact form is a [reconstruction] with three readings (``mode``):

- ``rank1`` (default): every (out, in) kernel is an outer product ``W[o, i] = u[o, i] ⊗ v[o, i]`` of a
  frequency profile u (k_f) and a time profile v (k_t); ``C_in·C_out·(k_f + k_t) + C_out`` parameters.
- ``sequential``: Conv(k_f x 1, C_in -> C_mid, no bias) [-> BN -> ReLU] -> Conv(1 x k_t, C_mid -> C_out).
- ``parallel``: Conv(k_f x 1) + Conv(1 x k_t), both C_in -> C_out, summed, one bias.

Inputs are (N, C, F, T); padding ``(k_f // 2, k_t // 2)`` keeps F x T for odd kernels.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

FactorizationMode = Literal["rank1", "sequential", "parallel"]
MidChannels = Literal["in", "out"]
FactorInit = Literal["product", "kernel"]
FACTORIZATION_MODES = ("rank1", "sequential", "parallel")


def glorot_uniform_(weight: torch.Tensor) -> torch.Tensor:
    """Keras' ``glorot_uniform`` on a conv or linear weight: U(±sqrt(6 / (fan_in + fan_out)))."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


class FactorizedConv2d(nn.Module):
    """A (k_f x k_t) convolution built from 1D kernels along frequency and time (module docstring).

    ``rank1`` builds the effective kernel (:meth:`kernel`) and runs one ``conv2d``; :meth:`forward_two_step`
    computes the same output as a grouped (k_f x 1) conv, a depthwise (1 x k_t) conv and a sum over input
    channels.

    ``factor_init`` [reconstruction]: ``"product"`` starts the ``rank1`` factors so that u v has the variance
    of a Glorot-uniform (k_f x k_t) kernel (the other modes: Glorot with each 1D conv's own fans);
    ``"kernel"`` draws every 1D factor as a Glorot-uniform kernel with the fans of the (k_f x k_t) kernel it
    replaces. Followed by BatchNorm the output does not depend on the kernel's scale, but Adam's relative
    step does: ``"kernel"`` gives the factors the baseline's magnitude and so its relative learning rate.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        k_f: int = 7,
        k_t: int = 7,
        mode: FactorizationMode = "rank1",
        bias: bool = True,
        mid_channels: MidChannels = "in",
        inner_act: bool = False,
        factor_init: FactorInit = "product",
    ):
        super().__init__()
        if factor_init not in ("product", "kernel"):
            raise ValueError(f"factor_init={factor_init!r}: expected 'product' or 'kernel'")
        if mode not in FACTORIZATION_MODES:
            raise ValueError(f"mode={mode!r}: expected one of {', '.join(FACTORIZATION_MODES)}")
        if mid_channels not in ("in", "out"):
            raise ValueError(f"mid_channels={mid_channels!r}: expected 'in' or 'out'")
        if k_f < 1 or k_t < 1:
            raise ValueError(f"kernel sizes must be >= 1, got k_f={k_f}, k_t={k_t}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.k_f, self.k_t, self.mode = k_f, k_t, mode
        self.padding = (k_f // 2, k_t // 2)
        if mode == "rank1":
            self.weight_freq = nn.Parameter(torch.empty(out_channels, in_channels, k_f))  # u
            self.weight_time = nn.Parameter(torch.empty(out_channels, in_channels, k_t))  # v
            self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
            glorot_var = 2.0 / ((in_channels + out_channels) * k_f * k_t)  # of the (k_f x k_t) kernel
            # "product": Var(u v) = Var(u) Var(v) = glorot_var; "kernel": Var(u) = Var(v) = glorot_var
            bound = math.sqrt(3.0 * (math.sqrt(glorot_var) if factor_init == "product" else glorot_var))
            nn.init.uniform_(self.weight_freq, -bound, bound)
            nn.init.uniform_(self.weight_time, -bound, bound)
        elif mode == "sequential":
            mid = in_channels if mid_channels == "in" else out_channels
            self.conv_freq = nn.Conv2d(in_channels, mid, (k_f, 1), padding=(k_f // 2, 0), bias=False)
            self.inner = nn.Sequential(nn.BatchNorm2d(mid), nn.ReLU()) if inner_act else nn.Identity()
            self.conv_time = nn.Conv2d(mid, out_channels, (1, k_t), padding=(0, k_t // 2), bias=bias)
        else:
            self.conv_freq = nn.Conv2d(in_channels, out_channels, (k_f, 1), padding=(k_f // 2, 0), bias=bias)
            self.conv_time = nn.Conv2d(in_channels, out_channels, (1, k_t), padding=(0, k_t // 2), bias=False)
        if mode != "rank1":
            kernel_bound = math.sqrt(6.0 / ((in_channels + out_channels) * k_f * k_t))
            for conv in (self.conv_freq, self.conv_time):
                if factor_init == "kernel":
                    nn.init.uniform_(conv.weight, -kernel_bound, kernel_bound)
                else:
                    glorot_uniform_(conv.weight)
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, k_f={self.k_f}, k_t={self.k_t}, mode={self.mode!r}"

    def kernel(self) -> torch.Tensor:
        """The effective ``rank1`` kernel (C_out, C_in, k_f, k_t), each (o, i) slice u[o, i] ⊗ v[o, i]."""
        if self.mode != "rank1":
            raise ValueError(f"kernel() is defined for mode 'rank1', not {self.mode!r}")
        return self.weight_freq.unsqueeze(-1) * self.weight_time.unsqueeze(-2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C_in, F, T) -> (N, C_out, F, T)
        if self.mode == "rank1":
            return F.conv2d(x, self.kernel(), self.bias, padding=self.padding)
        if self.mode == "sequential":
            return self.conv_time(self.inner(self.conv_freq(x)))
        return self.conv_freq(x) + self.conv_time(x)

    def forward_two_step(self, x: torch.Tensor) -> torch.Tensor:
        """``rank1`` as 1D convolutions: grouped (k_f x 1) C_in -> C_in·C_out, depthwise (1 x k_t), then a sum
        over the C_in groups. Same output as :meth:`forward` (spec §2.3's equivalent form)."""
        if self.mode != "rank1":
            raise ValueError(f"forward_two_step() is defined for mode 'rank1', not {self.mode!r}")
        c_in, c_out = self.in_channels, self.out_channels
        # channel g = i * C_out + o holds input i filtered by u[o, i]
        u = self.weight_freq.transpose(0, 1).reshape(c_in * c_out, 1, self.k_f, 1)
        v = self.weight_time.transpose(0, 1).reshape(c_in * c_out, 1, 1, self.k_t)
        y = F.conv2d(x, u, padding=(self.padding[0], 0), groups=c_in)  # (N, C_in·C_out, F, T)
        y = F.conv2d(y, v, padding=(0, self.padding[1]), groups=c_in * c_out)
        n, _, f, t = y.shape
        y = y.reshape(n, c_in, c_out, f, t).sum(dim=1)  # (N, C_out, F, T)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


def factorized_parameter_count(
    in_channels: int,
    out_channels: int,
    k_f: int = 7,
    k_t: int = 7,
    mode: FactorizationMode = "rank1",
    bias: bool = True,
    mid_channels: MidChannels = "in",
) -> int:
    """Parameters of a :class:`FactorizedConv2d` (``inner_act`` off), from the formulas of spec §2.3."""
    b = out_channels if bias else 0
    if mode == "rank1":
        return in_channels * out_channels * (k_f + k_t) + b
    if mode == "parallel":
        return in_channels * out_channels * (k_f + k_t) + b
    mid = in_channels if mid_channels == "in" else out_channels
    return in_channels * mid * k_f + mid * out_channels * k_t + b


__all__ = [
    "FACTORIZATION_MODES",
    "FactorInit",
    "FactorizationMode",
    "FactorizedConv2d",
    "factorized_parameter_count",
    "glorot_uniform_",
]
