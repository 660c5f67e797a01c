"""The toy task: a seeded two-class problem (the sign of the sum of two of eight features)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ToyTask:
    """Training and test points: x (N, 8), y (N,) in {0, 1}."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def make_task(seed: int, train: int = 256, test: int = 256) -> ToyTask:
    g = torch.Generator().manual_seed(1234 + seed)
    x = torch.randn(train + test, 8, generator=g)
    y = (x[:, :2].sum(1) > 0).long()
    return ToyTask(x[:train], y[:train], x[train:], y[train:])
