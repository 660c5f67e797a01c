"""GlyphNet: a ~35k-parameter CNN for 32×32 RGB glyph images, 4 × (conv3×3–BN–ReLU–max-pool), GAP, FC.

The normalisation layer is a constructor argument, so a method can swap in its own BatchNorm variant
(fed-dg's ``FedFDBatchNorm2d``) and keep ``nn.BatchNorm2d``'s state-dict keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class GlyphNetConfig:
    """Widths of the four conv blocks, input channels and number of classes."""

    in_channels: int = 3
    num_classes: int = 10
    widths: tuple[int, ...] = (16, 32, 32, 64)


class ConvBlock(nn.Module):
    """conv3×3 (no bias) → norm → ReLU → 2×2 max-pool."""

    def __init__(self, c_in: int, c_out: int, norm_layer: Callable[[int], nn.Module]):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = norm_layer(c_out)
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H/2, W/2)
        return self.pool(self.act(self.bn(self.conv(x))))


class GlyphNet(nn.Module):
    """The glyph classifier: ``forward_features`` gives the pooled (B, widths[-1]) features,
    ``forward_head`` the logits."""

    def __init__(
        self,
        config: GlyphNetConfig = GlyphNetConfig(),
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
    ):
        super().__init__()
        self.config = config
        widths = (config.in_channels, *config.widths)
        self.features = nn.Sequential(*(ConvBlock(a, b, norm_layer) for a, b in zip(widths[:-1], widths[1:])))
        self.num_features = config.widths[-1]
        self.head = nn.Linear(self.num_features, config.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, F)
        return self.features(x).mean(dim=(2, 3))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:  # (B, F) -> (B, classes)
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
