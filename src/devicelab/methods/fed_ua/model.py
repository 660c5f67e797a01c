"""The embedding network g_θ and the heads of FedUA and its baselines (spec §2.3, §3, §4).

g_θ is a small TDNN with LayerNorm, never BatchNorm: a local batch holds one user, so batch statistics would
be user-specific [reconstruction]. FedUA puts a fixed-width output layer W (c × d) on top: o(x) = W g(x)
(FedUA §3: the width does not depend on the number of users).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

OutputNorm = Literal["none", "tanh", "l2"]
Head = Literal["codeword", "softmax", "fedaws"]


@dataclass(frozen=True)
class ModelConfig:
    """What :func:`build_model` builds: the TDNN widths, the head and its width."""

    n_mels: int = 40
    channels: int = 64
    embed_dim: int = 64  # d
    head: Head = "codeword"
    out_dim: int = 64  # c for "codeword", the number of user rows for "softmax" and "fedaws"
    output_norm: OutputNorm = "none"


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of a (N, C, T) sequence."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class TDNN(nn.Module):
    """(N, F, T) log-mel -> (N, d): three dilated conv1d blocks (ReLU + LayerNorm), mean+std pooling, linear.

    Spec §3 quick row: conv1d F→64 k5, 64→64 k3 d2, 64→64 k3 d3, stats pooling, linear 128→64
    [reconstruction].
    """

    def __init__(self, n_mels: int = 40, channels: int = 64, embed_dim: int = 64):
        super().__init__()
        blocks = []
        for c_in, k, d in ((n_mels, 5, 1), (channels, 3, 2), (channels, 3, 3)):
            blocks += [nn.Conv1d(c_in, channels, k, dilation=d), nn.ReLU(), ChannelNorm(channels)]
        self.frames = nn.Sequential(*blocks)
        self.embed = nn.Linear(2 * channels, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.frames(x)  # (N, C, T')
        stats = torch.cat([h.mean(dim=2), h.std(dim=2, unbiased=False)], dim=1)  # (N, 2C)
        return self.embed(stats)  # (N, d)


class CodewordModel(nn.Module):
    """FedUA: o(x) = norm(W g(x)) ∈ R^c with a bias-free output layer W (c × d)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embedding = TDNN(cfg.n_mels, cfg.channels, cfg.embed_dim)
        self.output = nn.Linear(cfg.embed_dim, cfg.out_dim, bias=False)
        self.output_norm = cfg.output_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.output(self.embedding(x))  # (N, c)
        if self.output_norm == "tanh":
            return torch.tanh(o)
        if self.output_norm == "l2":
            return o.shape[1] ** 0.5 * F.normalize(o, dim=1)
        return o


class SoftmaxModel(nn.Module):
    """Centralised softmax and naive positive-only FedAvg: logits = A g(x) + b, one row per user."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embedding = TDNN(cfg.n_mels, cfg.channels, cfg.embed_dim)
        self.classifier = nn.Linear(cfg.embed_dim, cfg.out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embedding(x))


class FedAwSModel(nn.Module):
    """FedAwS (Yu et al. 2020): g(x) and a table of unit-norm class embeddings w_1..w_N (one row per user)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embedding = TDNN(cfg.n_mels, cfg.channels, cfg.embed_dim)
        self.class_embeddings = nn.Parameter(F.normalize(torch.randn(cfg.out_dim, cfg.embed_dim), dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x)


def build_model(cfg: ModelConfig) -> nn.Module:
    """The model of ``cfg.head``."""
    return {"codeword": CodewordModel, "softmax": SoftmaxModel, "fedaws": FedAwSModel}[cfg.head](cfg)
