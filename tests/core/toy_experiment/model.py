"""The toy model: Linear -> activation -> dropout -> Linear."""

from __future__ import annotations

from torch import nn


def build_model(width: int, activation: str = "relu") -> nn.Sequential:
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    return nn.Sequential(nn.Linear(8, width), act(), nn.Dropout(0.2), nn.Linear(width, 2))
