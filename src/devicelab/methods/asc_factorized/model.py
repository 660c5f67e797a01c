"""The DCASE2019 task 1A baseline CNN and the LMF-CNN (its 7x7 convs factorised), with an embedding output.

Baseline: ``toni-heittola/dcase2019_task1_baseline`` (``task1a.yaml``), spec §2.2::

    x (N, 1, 40, T)
    Conv2d(1, 32, 7, pad 3)  - BN(32) - ReLU - MaxPool(5, 5)          - Dropout(0.3)   -> (N, 32, 8, T/5)
    Conv2d(32, 64, 7, pad 3) - BN(64) - ReLU - MaxPool(4, all frames) - Dropout(0.3)   -> (N, 64, 2, 1)
    Flatten (128) - Linear(128, 100) - ReLU - Dropout(0.3) - Linear(100, classes)

116,118 trainable parameters with 10 classes at any T. Each ReLU runs after its max-pool rather than
before: max and ReLU commute, so the function is the same, and the ReLU touches 25 times fewer values.
LMF-CNN (Cho et al., arXiv 1910.06784, abstract): both convs become
:class:`~devicelab.nn.factorized.FactorizedConv2d` [reconstruction]. The embedding of the triplet loss is
the output of Linear(128, 100) before its ReLU (``embed_point``) [reconstruction].
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from devicelab.nn.factorized import FactorizedConv2d, glorot_uniform_
from devicelab.nn.ssn import SubSpectralNorm

ConvKind = Literal["full", "rank1", "sequential", "parallel"]
NormKind = Literal["bn", "ssn"]


def _conv(c_in: int, c_out: int, kind: ConvKind, k_f: int, k_t: int, **factor_options) -> nn.Module:
    if kind == "full":
        conv = nn.Conv2d(c_in, c_out, (k_f, k_t), padding=(k_f // 2, k_t // 2))
        glorot_uniform_(conv.weight)
        nn.init.zeros_(conv.bias)
        return conv
    return FactorizedConv2d(c_in, c_out, k_f, k_t, mode=kind, **factor_options)


def _norm(channels: int, kind: NormKind, ssn_groups: int) -> nn.Module:
    if kind == "ssn":
        return SubSpectralNorm(channels, spec_groups=ssn_groups)
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"norm={kind!r}: expected 'bn' or 'ssn'")


class SceneCNN(nn.Module):
    """DCASE2019 task 1A baseline CNN (``conv="full"``) or the LMF-CNN (``conv="rank1"`` or another reading).

    ``forward(features)`` gives logits; ``forward_features`` the embedding e (N, 100) and ``forward_head`` the
    logits from it, so ``forward_with_embedding`` serves the triplet loss. ``norm="ssn"`` swaps both
    BatchNorms for SubSpectralNorm (``ssn_groups`` bands; an ablation, spec §4).
    """

    def __init__(
        self,
        num_classes: int = 10,
        conv: ConvKind = "full",
        n_mels: int = 40,
        k_f: int = 7,
        k_t: int = 7,
        dropout: float = 0.3,
        norm: NormKind = "bn",
        ssn_groups: int = 2,
        embed_point: Literal["pre_relu", "post_relu"] = "pre_relu",
        embedding_dim: int = 100,
        mid_channels: Literal["in", "out"] = "in",
        inner_act: bool = False,
        factor_init: Literal["product", "kernel"] = "kernel",
    ):
        super().__init__()
        if conv not in ("full", "rank1", "sequential", "parallel"):
            raise ValueError(f"conv={conv!r}: expected full, rank1, sequential or parallel")
        if embed_point not in ("pre_relu", "post_relu"):
            raise ValueError(f"embed_point={embed_point!r}: expected pre_relu or post_relu")
        if n_mels % 20:
            raise ValueError(f"n_mels={n_mels}: the two frequency pools (5, then 4) need a multiple of 20")
        options: dict = {"factor_init": factor_init} if conv != "full" else {}
        if conv == "sequential":
            options |= {"mid_channels": mid_channels, "inner_act": inner_act}
        self.conv, self.norm, self.embed_point = conv, norm, embed_point
        self.block1 = nn.Sequential(
            _conv(1, 32, conv, k_f, k_t, **options),
            _norm(32, norm, ssn_groups),
            nn.MaxPool2d(5),
            nn.ReLU(),  # = ReLU then MaxPool(5), on the pooled map
            nn.Dropout(dropout),
        )
        self.conv2 = _conv(32, 64, conv, k_f, k_t, **options)
        self.norm2 = _norm(64, norm, ssn_groups)
        self.pool2 = nn.MaxPool2d((4, 1))  # then the max over all remaining frames
        self.drop2 = nn.Dropout(dropout)
        flat = 64 * (n_mels // 20)
        self.embed = nn.Linear(flat, embedding_dim)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(embedding_dim, num_classes))
        for linear in (self.embed, self.head[2]):
            glorot_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding e (N, 100) of features (N, 1, F, T): Linear(128, 100), before or after its ReLU."""
        x = self.block1(x)  # (N, 32, F/5, T/5)
        x = self.pool2(self.norm2(self.conv2(x))).amax(dim=3)  # MaxPool(4, T/5) at any T: (N, 64, F/20)
        x = self.drop2(torch.relu(x))  # ReLU after the pool, as in block1
        e = self.embed(x.flatten(1))  # (N, 100)
        return torch.relu(e) if self.embed_point == "post_relu" else e

    def forward_head(self, e: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes) from the embedding: ReLU - Dropout - Linear (the ReLU is a no-op post-ReLU)."""
        return self.head(e)

    def forward_with_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.forward_features(x)
        return self.forward_head(e), e

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class Standardize(nn.Module):
    """Per-band standardisation ``(x - mean[f]) / std[f]`` of (N, 1, F, T) with training-set statistics
    (spec §2.1, as the baseline's normaliser); stored as buffers, so saved and exported with the model."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.reshape(1, 1, -1, 1).clone().float())
        self.register_buffer("std", std.reshape(1, 1, -1, 1).clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class SceneClassifier(nn.Module):
    """Raw log-mel (N, 1, F, T) -> logits: :class:`Standardize` then a :class:`SceneCNN`."""

    def __init__(self, cnn: SceneCNN, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.standardize = Standardize(mean, std)
        self.cnn = cnn

    def forward_with_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cnn.forward_with_embedding(self.standardize(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn.forward_features(self.standardize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn(self.standardize(x))
