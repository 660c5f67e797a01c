"""A tiny CNN for 32×32 images, split into a feature extractor and a linear head.

Three conv3×3 stride-2 + BatchNorm + ReLU blocks (widths 16/32/64 by default), global average pooling and a
linear classifier. The ``features`` / ``head`` split is what test-time adaptation wrappers and head adapters
need (``features(x) -> h`` of shape (N, D), ``head`` an ``nn.Linear``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TinyCNNConfig:
    """Constructor arguments of :class:`TinyCNN` (stored as JSON beside the weights)."""

    num_classes: int = 10
    in_channels: int = 3
    widths: tuple[int, ...] = (16, 32, 64)

    def to_dict(self) -> dict:
        return {**asdict(self), "widths": list(self.widths)}


class TinyCNN(nn.Module):
    """Conv3×3/2-BN-ReLU blocks, global average pooling and a linear head."""

    def __init__(self, config: TinyCNNConfig | None = None) -> None:
        super().__init__()
        self.config = config or TinyCNNConfig()
        layers: list[nn.Module] = []
        in_ch = self.config.in_channels
        for width in self.config.widths:
            layers += [
                nn.Conv2d(in_ch, width, kernel_size=3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            in_ch = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(in_ch, self.config.num_classes)
        # names of the last stage's modules, which SAR leaves unadapted (as its reference skips a ResNet's)
        last = 3 * (len(self.config.widths) - 1)
        self.last_stage_names = tuple(f"features.{last + j}" for j in range(3))

    @property
    def feature_dim(self) -> int:
        return self.head.in_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (N, 3, H, W) -> (N, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (N, K)
