"""The networks of sed-tritrain (spec §2.2): the DCASE 2019 task 4 CRNN split into a shared CNN ``F`` and a
recurrent head, the two labelling heads ``F1``/``F2`` and the final head ``Ft`` of tri-training, and the
domain classifier ``D`` behind a gradient-reversal layer.

F + one head is the DCASE 2019 baseline CRNN (``turpaultn/DCASE2019_task4`` ``baseline/models/CRNN.py``):
3 × [conv 3×3 → BatchNorm → GLU → dropout → average pool], a BiGRU, frame posteriors ``strong`` and an
attention over the *class* axis that pools them into clip posteriors ``weak``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from devicelab.nn.gradient_reversal import GradientReversal


class GLU(nn.Module):
    """Gated linear unit of the baseline: ``Linear_over_channels(z) ⊙ sigmoid(z)`` on (B, C, T, F)."""

    def __init__(self, channels: int):
        super().__init__()
        self.linear = nn.Linear(channels, channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lin = self.linear(z.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return lin * torch.sigmoid(z)


class CNNFeatures(nn.Module):
    """``F``: (B, 1, T, n_mels) log-mels -> frame features h (B, T / P, C · F') (spec §2.2)."""

    def __init__(
        self,
        channels: list[int],
        pools: list[list[int]],
        n_mels: int = 64,
        dropout: float = 0.5,
        bn_momentum: float = 0.99,
    ):
        super().__init__()
        if len(channels) != len(pools):
            raise ValueError(f"cnn_channels ({len(channels)}) and cnn_pools ({len(pools)}) differ in length")
        layers: list[nn.Module] = []
        c_in, freq = 1, n_mels
        for c_out, (pool_t, pool_f) in zip(channels, pools, strict=True):
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=1, padding=1),
                nn.BatchNorm2d(c_out, eps=1e-3, momentum=bn_momentum),
                GLU(c_out),
                nn.Dropout(dropout),
                nn.AvgPool2d((pool_t, pool_f)),
            ]
            c_in, freq = c_out, freq // pool_f
        if freq < 1:
            raise ValueError(f"cnn_pools reduce {n_mels} mel bands below one")
        self.cnn = nn.Sequential(*layers)
        self.time_pooling = 1
        for pool_t, _ in pools:
            self.time_pooling *= pool_t
        self.out_dim = c_in * freq

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.cnn(x)  # (B, C, T', F')
        return z.permute(0, 2, 1, 3).flatten(2)  # (B, T', C · F')


def attention_pooling(strong: torch.Tensor, attention_logits: torch.Tensor) -> torch.Tensor:
    """Clip posteriors of the baseline: ``Σ_t strong·att / Σ_t att`` with ``att`` a softmax over *classes*
    clamped to [1e-7, 1]; (B, T, K) -> (B, K)."""
    att = torch.clamp(torch.softmax(attention_logits, dim=-1), 1e-7, 1.0)
    return (strong * att).sum(1) / att.sum(1)


def linear_softmax_pooling(strong: torch.Tensor) -> torch.Tensor:
    """Linear-softmax pooling ``Σ_t p² / Σ_t p`` (Wang et al. 2019); (B, T, K) -> (B, K)."""
    return (strong**2).sum(1) / strong.sum(1).clamp_min(1e-7)


class RecurrentHead(nn.Module):
    """BiGRU head: h (B, T', D) -> strong (B, T', K), weak (B, K); ``pooling`` "attention" (the baseline) or
    "linear_softmax" (the ``labeler_diversity="pooling"`` labeller)."""

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        layers: int,
        num_classes: int,
        dropout: float = 0.5,
        pooling: str = "attention",
    ):
        super().__init__()
        self.gru = nn.GRU(in_dim, hidden, num_layers=layers, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.strong = nn.Linear(2 * hidden, num_classes)
        self.attention = nn.Linear(2 * hidden, num_classes) if pooling == "attention" else None
        self.pooling = pooling

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, _ = self.gru(h)
        z = self.dropout(z)  # (B, T', 2H)
        strong = torch.sigmoid(self.strong(z))  # (B, T', K)
        if self.attention is not None:
            return strong, attention_pooling(strong, self.attention(z))
        return strong, linear_softmax_pooling(strong)

    def input_weights(self) -> torch.Tensor:
        """(2 · 3H, D): the first GRU layer's input weights of both directions, PyTorch's (out, in) layout."""
        return torch.cat([self.gru.weight_ih_l0, self.gru.weight_ih_l0_reverse], dim=0)


class ConvHead(nn.Module):
    """The ``labeler_diversity="arch"`` labeller: 2 × [Conv1d k=5 → ReLU] → Linear → sigmoid, linear-softmax
    pooling [reconstruction]."""

    def __init__(self, in_dim: int, num_classes: int, channels: int = 64):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(in_dim, channels, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 5, padding=2),
            nn.ReLU(),
        )
        self.strong = nn.Linear(channels, num_classes)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.convs(h.transpose(1, 2)).transpose(1, 2)  # (B, T', C)
        strong = torch.sigmoid(self.strong(z))
        return strong, linear_softmax_pooling(strong)


class DomainClassifier(nn.Module):
    """``D``: GRL_λ(h) -> Linear -> ReLU -> Linear -> one logit per frame (B, T') or per clip (B, 1) when
    ``attach="cnn_pooled"`` (time mean of h) [reconstruction]. D minimises L_dom; through the GRL, F
    maximises it (Ganin & Lempitsky 2015, §3)."""

    def __init__(self, in_dim: int, hidden: int = 64, attach: str = "cnn_frames"):
        super().__init__()
        self.grl = GradientReversal(0.0)
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.attach = attach

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.grl(h)
        if self.attach == "cnn_pooled":
            h = h.mean(1, keepdim=True)  # (B, 1, D)
        return self.net(h).squeeze(-1)  # (B, T') or (B, 1)


class CRNN(nn.Module):
    """F + one head: log-mels (B, 1, T, n_mels) -> (strong (B, T', K), weak (B, K)); the deployed model."""

    def __init__(self, features: CNNFeatures, head: nn.Module):
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.features(x))


class TriTrainingCRNN(nn.Module):
    """Asymmetric tri-training (Saito et al. 2017, §3) on the shared CNN: labellers F1, F2, final head Ft and
    the domain classifier D (spec §2.2). Only ``final_crnn()`` (F + Ft) is deployed."""

    def __init__(self, features: CNNFeatures, labelers: list[nn.Module], final: nn.Module, domain: nn.Module):
        super().__init__()
        self.features = features
        self.labelers = nn.ModuleList(labelers)
        self.final = final
        self.domain = domain

    def final_crnn(self) -> CRNN:
        """F + Ft sharing this model's modules (no copy)."""
        return CRNN(self.features, self.final)


def orthogonality_penalty(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """``Σ |W1 W2ᵀ|`` (Saito et al. 2017, Eq. 1): zero when the labellers read disjoint inputs."""
    return (w1 @ w2.t()).abs().sum()


def init_weights(module: nn.Module, linear: str = "baseline") -> None:
    """The baseline's initialisation [ref]: xavier-uniform convolutions, BN weight N(1, 0.02), orthogonal GRU
    weights, Linear weights N(0, 0.01); biases zero. ``linear="torch"`` keeps PyTorch's default (Kaiming-
    uniform) Linear layers instead: N(0, 0.01) scales every GLU output down ~100× until Adam has grown the
    gates, which a short schedule cannot afford (FIDELITY.md, quick profile)."""
    if linear not in ("baseline", "torch"):
        raise ValueError(f"linear init must be 'baseline' or 'torch', not {linear!r}")
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Conv1d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.GRU):
            for name, p in m.named_parameters():
                if name.startswith("weight"):
                    nn.init.orthogonal_(p)
                else:
                    nn.init.zeros_(p)
        elif isinstance(m, nn.Linear) and linear == "baseline":
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


class MeanTeacher(nn.Module):
    """An EMA copy of a student (Tarvainen & Valpola 2017), updated every step with
    ``α = min(1 − 1/(step + 1), ema_max)``: at step 0 the teacher equals the student [ref: baseline]."""

    def __init__(self, student: nn.Module, ema_max: float = 0.999):
        super().__init__()
        self.teacher = copy.deepcopy(student)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.ema_max = ema_max

    def alpha(self, step: int) -> float:
        return min(1.0 - 1.0 / (step + 1), self.ema_max)

    @torch.no_grad()
    def update(self, student: nn.Module, step: int) -> float:
        """``θ_t ← α θ_t + (1 − α) θ_s`` over the parameters (buffers follow the teacher's own passes)."""
        alpha = self.alpha(step)
        for t, s in zip(self.teacher.parameters(), student.parameters(), strict=True):
            t.mul_(alpha).add_(s, alpha=1.0 - alpha)
        return alpha

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return self.teacher(x)


def consistency_weight(step: int, ramp_steps: int, maximum: float = 2.0) -> float:
    """The baseline's ramp ``w(t) = max · exp(−5 (1 − min(t, T_r)/T_r)²)`` [ref]."""
    if ramp_steps <= 0:
        return maximum
    phase = 1.0 - min(step, ramp_steps) / ramp_steps
    return maximum * float(torch.exp(torch.tensor(-5.0 * phase * phase)))
