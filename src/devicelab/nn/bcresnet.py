"""BC-ResNet: broadcasted residual learning for keyword spotting, with SubSpectralNorm or BatchNorm.

Kim, Chang, Lee, Sung, "Broadcasted Residual Learning for Efficient Keyword Spotting", Interspeech 2021
(arXiv 2106.04140), Table 1 and Eq. (2); layer for layer as the official ``Qualcomm-AI-research/bcresnet``
``bcresnet.py``. Input: log-mel (N, 1, 40, T); output: logits (N, num_classes).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from devicelab.nn.ssn import Affine, Stats, SubSpectralNorm

Norm = Literal["ssn", "bn"]

STAGE_BLOCKS = (2, 2, 4, 4)  # blocks per stage
STRIDED_STAGES = (1, 2)  # stages whose first block halves the frequency axis


def bcresnet_channels(base_width: int) -> list[int]:
    """Channels [head, stage 1..4, classifier] for width b: [2b, b, 1.5b, 2b, 2.5b, 4b] (Table 1)."""
    b = base_width
    return [2 * b, b, int(1.5 * b), 2 * b, int(2.5 * b), 4 * b]


class BCResBlock(nn.Module):
    """One BC-ResBlock, Eq. (2): ``y = ReLU(x + f2(x) + BC(f1(avgpool_F(f2(x)))))``.

    f2: [transition only: 1x1 conv-BN-ReLU] -> depthwise 3x1 conv (frequency stride) -> SSN (or BN).
    f1: depthwise 1x3 conv with temporal dilation -> BN -> SiLU -> 1x1 conv -> Dropout2d, on the
    frequency-averaged map (N, C, 1, T), broadcast back over frequency. A transition block (in != out
    channels) has no identity shortcut.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        freq_stride: int,
        dilation: int,
        norm_site: nn.Module,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.transition = in_channels != out_channels
        layers: list[nn.Module] = []
        if self.transition:
            layers += [
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
        layers += [
            nn.Conv2d(
                out_channels,
                out_channels,
                (3, 1),
                stride=(freq_stride, 1),
                padding=(1, 0),
                groups=out_channels,
                bias=False,
            ),
            norm_site,  # the SubSpectralNorm site; no activation follows
        ]
        self.f2 = nn.Sequential(*layers)
        self.f1 = nn.Sequential(
            nn.Conv2d(
                out_channels,
                out_channels,
                (1, 3),
                padding=(0, dilation),
                dilation=(1, dilation),
                groups=out_channels,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            nn.SiLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 1, bias=False),
            nn.Dropout2d(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frequency_features = self.f2(x)  # (N, C, F', T)
        temporal = self.f1(frequency_features.mean(dim=2, keepdim=True))  # (N, C, 1, T)
        y = temporal + frequency_features  # broadcast over F'
        if not self.transition:
            y = y + x
        return F.relu(y)


class BCResNet(nn.Module):
    """BC-ResNet-tau (arXiv 2106.04140, Table 1): width b = int(8 tau), 12 SSN sites (one per block).

    norm: "ssn" (SubSpectralNorm with ``ssn_groups`` bands) or "bn" (BatchNorm2d at the same sites).
    base_width overrides b (9 with norm="bn" gives the parameter-matched baseline of Table 2).
    Shapes: (N, 1, 40, T) -> head (N, 2b, 20, T) -> stages F = 20, 10, 5, 5 -> (N, num_classes).
    """

    def __init__(
        self,
        tau: float = 1.0,
        num_classes: int = 12,
        norm: Norm = "ssn",
        base_width: int | None = None,
        ssn_groups: int = 5,
        ssn_affine: Affine = "sub",
        ssn_stats: Stats = "batch",
        dropout: float = 0.1,
    ):
        super().__init__()
        if norm not in ("ssn", "bn"):
            raise ValueError(f"norm={norm!r}: expected 'ssn' or 'bn'")
        self.tau, self.norm, self.num_classes = tau, norm, num_classes
        self.base_width = int(tau * 8) if base_width is None else int(base_width)
        c = bcresnet_channels(self.base_width)
        self.channels = c

        def norm_site(channels: int) -> nn.Module:
            if norm == "ssn":
                return SubSpectralNorm(channels, ssn_groups, affine=ssn_affine, stats=ssn_stats)
            return nn.BatchNorm2d(channels)

        self.head = nn.Sequential(
            nn.Conv2d(1, c[0], 5, stride=(2, 1), padding=2, bias=False),
            nn.BatchNorm2d(c[0]),
            nn.ReLU(inplace=True),
        )
        self.stages = nn.ModuleList()
        for k, n_blocks in enumerate(STAGE_BLOCKS):
            blocks = nn.ModuleList()
            for j in range(n_blocks):
                in_ch = c[k] if j == 0 else c[k + 1]
                stride = 2 if (j == 0 and k in STRIDED_STAGES) else 1
                blocks.append(BCResBlock(in_ch, c[k + 1], stride, 2**k, norm_site(c[k + 1]), dropout))
            self.stages.append(blocks)
        self.classifier = nn.Sequential(
            nn.Conv2d(c[4], c[4], 5, padding=(0, 2), groups=c[4], bias=False),
            nn.Conv2d(c[4], c[5], 1, bias=False),
            nn.BatchNorm2d(c[5]),
            nn.ReLU(inplace=True),
        )
        self.output = nn.Conv2d(c[5], num_classes, 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 40, T) -> (N, 4b, 1, T) before pooling."""
        x = self.head(x)  # (N, 2b, 20, T)
        for blocks in self.stages:
            for block in blocks:
                x = block(x)
        return self.classifier(x)  # (N, 4b, 1, T): the 5x5 depthwise conv consumes F = 5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x).mean(dim=(2, 3), keepdim=True)  # (N, 4b, 1, 1)
        return self.output(x).flatten(1)  # (N, num_classes)
