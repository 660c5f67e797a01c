"""The speaker-embedding network "DeepRes" and the keyword adversary of sv-kan (spec §2.2, §2.3).

Both are [reconstruction]s: the paper names a deep residual SE network trained with a triplet loss and an
ASR network attached through an adversarial gradient, and gives no architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from devicelab.nn.gradient_reversal import GradientReversal


class BasicBlock(nn.Module):
    """3x3-BN-ReLU-3x3-BN plus shortcut (1x1 conv + BN when the shape changes), then ReLU (He et al.)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class Embedding(NamedTuple):
    """What the SE network computes: the scored vector and the stages an adversary may read."""

    normalized: torch.Tensor  # (N, D), e = e_raw / ||e_raw||
    raw: torch.Tensor  # (N, D), e_raw
    frames: torch.Tensor  # (N, c4 * F', T'), the last stage's output


def _reduced(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # a 3x3 convolution with padding 1


class ResNetSE(nn.Module):
    """Log-mel (N, 1, n_mels, T) -> L2-normalised speaker embedding (N, D): stem, residual stages,
    statistics pooling [mean_t, std_t], linear projection (spec §2.2).

    Quick "ResNet-tiny": channels (16, 32, 64, 128), blocks (1, 1, 1, 1), D = 128 (about 0.41 M parameters);
    full "ThinResNet-34": (32, 64, 128, 256), (3, 4, 6, 3), D = 256.
    """

    def __init__(
        self,
        n_mels: int = 40,
        channels: Sequence[int] = (16, 32, 64, 128),
        blocks: Sequence[int] = (1, 1, 1, 1),
        embedding_dim: int = 128,
    ):
        super().__init__()
        if len(channels) != len(blocks) or not channels:
            raise ValueError(f"channels {list(channels)} and blocks {list(blocks)} need one entry per stage")
        self.n_mels, self.embedding_dim = n_mels, embedding_dim
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels[0], 3, 2, 1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU()
        )
        layers, in_channels, freq = [], channels[0], _reduced(n_mels, 2)
        for s, (c, n) in enumerate(zip(channels, blocks)):
            stride = 1 if s == 0 else 2
            layers += [BasicBlock(in_channels if i == 0 else c, c, stride if i == 0 else 1) for i in range(n)]
            in_channels, freq = c, _reduced(freq, stride)
        self.stages = nn.Sequential(*layers)
        self.frame_dim = in_channels * freq  # c4 * F'
        self.projection = nn.Linear(2 * self.frame_dim, embedding_dim)

    def embed(self, features: torch.Tensor) -> Embedding:
        """All outputs of one forward pass (the adversary reads ``raw`` or ``frames``)."""
        h = self.stages(self.stem(features))  # (N, c4, F', T')
        frames = h.flatten(1, 2)  # (N, c4 * F', T')
        mean = frames.mean(-1)
        std = (frames.var(-1, unbiased=False) + 1e-5).sqrt()
        raw = self.projection(torch.cat([mean, std], 1))  # (N, D)
        return Embedding(F.normalize(raw, dim=1), raw, frames)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.embed(features).normalized


class KeywordAdversary(nn.Module):
    """The "ASR network": ``Linear(D, 256) - ReLU - Linear(256, K)`` behind a gradient reversal layer.

    It descends on the keyword cross-entropy while the SE network receives ``-lambda`` times its gradient
    (spec §2.3; Ganin & Lempitsky, arXiv 1409.7495). ``scale`` (lambda) is set per step.
    """

    def __init__(self, input_dim: int, num_keywords: int, hidden: int = 256):
        super().__init__()
        self.reversal = GradientReversal(0.0)
        self.classifier = nn.Sequential(
            nn.Linear(input_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_keywords)
        )

    @property
    def scale(self) -> float:
        return self.reversal.scale

    @scale.setter
    def scale(self, value: float) -> None:
        self.reversal.scale = float(value)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.reversal(embedding))
