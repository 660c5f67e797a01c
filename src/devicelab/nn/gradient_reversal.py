"""Gradient reversal (Ganin & Lempitsky, ICML 2015): identity forward, ``-lambda * grad`` backward.

Shared by the adversarial branches of sv-kan (keyword network against the speaker embedding) and
sed-tritrain (domain classifier between synthetic and real clips).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``x`` unchanged in the forward pass; its gradient multiplied by ``-scale`` in the backward pass."""
    return _ReverseGradient.apply(x, float(scale))


class GradientReversal(nn.Module):
    """The gradient reversal layer as a module; ``scale`` (lambda) may be changed between steps.

    With ``scale = 0`` the branch behind it trains but sends nothing back to the features before it.
    """

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reverse_gradient(x, self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"


def dann_lambda(progress: float, gamma: float = 10.0, final: float = 1.0) -> float:
    """Ganin et al.'s schedule ``final * (2 / (1 + exp(-gamma * p)) - 1)`` for progress p in [0, 1]."""
    p = min(max(float(progress), 0.0), 1.0)
    return final * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)
