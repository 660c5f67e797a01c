"""Source backbones of tta-lsa, each split into ``features`` (N, D) and a linear ``head`` (spec §4).

TTA wrappers adapt the backbone's BatchNorm layers; the label shift adapter rewrites the head.
"""

from __future__ import annotations

import torch
from torch import nn

from devicelab.core.config import ConfigError
from devicelab.nn.glyphnet import GlyphNet, GlyphNetConfig
from devicelab.nn.tiny_cnn import TinyCNN, TinyCNNConfig

BACKBONES = ("cnn-tiny", "glyphnet")


class PooledGlyphNet(nn.Module):
    """fed-dg's GlyphNet as a split model: ``features`` = its conv blocks + global average pooling."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        net = GlyphNet(GlyphNetConfig(num_classes=num_classes))
        self.config = net.config
        self.features = nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (N, D)
        self.head = net.head
        self.feature_dim = net.num_features
        self.last_stage_names = (f"features.0.{len(net.config.widths) - 1}.bn",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_backbone(name: str, num_classes: int) -> nn.Module:
    """``cnn-tiny`` (default) or ``glyphnet`` (shared with fed-dg), both with ``features`` / ``head``."""
    if name == "cnn-tiny":
        return TinyCNN(TinyCNNConfig(num_classes=num_classes))
    if name == "glyphnet":
        return PooledGlyphNet(num_classes)
    raise ConfigError(f"source.backbone: unknown backbone {name!r}; valid: {', '.join(BACKBONES)}")
