"""SubSpectral Normalization: per-(channel, frequency band) normalisation, a drop-in for ``nn.BatchNorm2d``.

Chang et al., "SubSpectral Normalization for Neural Audio Data Processing", ICASSP 2021 (arXiv 2103.13620);
the module follows the official one in ``Qualcomm-AI-research/bcresnet`` (``subspectralnorm.py``).
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import nn

Affine = Literal["sub", "all", "none"]
Stats = Literal["batch", "instance"]


class SubSpectralNorm(nn.Module):
    """Normalise each (channel, sub-band) slice of (N, C, F, T) with its own statistics and affine pair.

    SSN paper abstract and official code: the frequency axis is split into ``spec_groups`` = S contiguous
    bands B_i = rows [i F/S, (i+1) F/S); for channel c and band i
    ``y = gamma_ci (x - mu_ci) / sqrt(var_ci + eps) + beta_ci`` with batch (or instance) statistics.
    Implemented as a reshape to C*S pseudo-channels (pseudo-channel c*S+i = channel c on band i) and one
    ``BatchNorm2d(C*S)``, so running statistics behave exactly like ``nn.BatchNorm2d``.

    affine: "sub" (2CS parameters, gamma/beta per band), "all" (2C, one pair per channel), "none" (0).
    stats: "batch" (BatchNorm2d) or "instance" (InstanceNorm2d, per-sample statistics).
    freq_dim: 2 for (N, C, F, T) input, 3 for (N, C, T, F).
    S = 1 is BatchNorm2d; S = F normalises every frequency bin separately.
    """

    def __init__(
        self,
        num_features: int,
        spec_groups: int = 5,
        affine: Affine = "sub",
        stats: Stats = "batch",
        freq_dim: int = 2,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ):
        super().__init__()
        if affine not in ("sub", "all", "none"):
            raise ValueError(f"affine={affine!r}: expected 'sub', 'all' or 'none'")
        if stats not in ("batch", "instance"):
            raise ValueError(f"stats={stats!r}: expected 'batch' or 'instance'")
        if freq_dim not in (2, 3, -1, -2):
            raise ValueError(f"freq_dim={freq_dim}: expected 2 (N, C, F, T) or 3 (N, C, T, F)")
        if spec_groups < 1:
            raise ValueError(f"spec_groups={spec_groups}: must be >= 1")
        self.num_features, self.spec_groups = num_features, spec_groups
        self.affine, self.stats = affine, stats
        self.freq_dim = 3 if freq_dim in (3, -1) else 2
        pseudo = num_features * spec_groups
        if stats == "batch":
            self.norm = nn.BatchNorm2d(pseudo, eps=eps, momentum=momentum, affine=affine == "sub")
        else:
            self.norm = nn.InstanceNorm2d(pseudo, eps=eps, momentum=momentum, affine=affine == "sub")
        if affine == "all":
            self.weight = nn.Parameter(torch.ones(1, num_features, 1, 1))
            self.bias = nn.Parameter(torch.zeros(1, num_features, 1, 1))

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, spec_groups={self.spec_groups}, affine={self.affine!r}, "
            f"stats={self.stats!r}, freq_dim={self.freq_dim}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"SubSpectralNorm expects (N, C, F, T) input, got shape {tuple(x.shape)}")
        if self.freq_dim == 3:
            x = x.transpose(2, 3)  # (N, C, T, F) -> (N, C, F, T)
        n, c, f, t = x.shape
        if f % self.spec_groups != 0:
            raise ValueError(f"frequency size F={f} is not divisible by spec_groups S={self.spec_groups}")
        z = x.reshape(n, c * self.spec_groups, f // self.spec_groups, t)  # contiguous bands per channel
        y = self.norm(z).reshape(n, c, f, t)
        if self.affine == "all":
            y = y * self.weight + self.bias
        if self.freq_dim == 3:
            y = y.transpose(2, 3)
        return y

    @torch.no_grad()
    def fold(self, num_freq_bins: int) -> FoldedSubSpectralNorm:
        """The eval-mode map as ``x * A + B``, A and B of shape (1, C, F, 1) (or (1, C, 1, F) for freq_dim 3).

        Exact in eval mode with batch statistics [reconstruction, exact]: each band's C*S running
        mean/variance and affine pair expand to the F/S rows of that band. Instance statistics depend on the
        input and cannot be folded.
        """
        if self.stats != "batch":
            raise ValueError("SubSpectralNorm with stats='instance' has no eval-mode constant form to fold")
        if num_freq_bins % self.spec_groups != 0:
            raise ValueError(
                f"frequency size F={num_freq_bins} is not divisible by spec_groups S={self.spec_groups}"
            )
        c, s = self.num_features, self.spec_groups
        inv_std = torch.rsqrt(self.norm.running_var + self.norm.eps)  # (C*S,)
        scale = inv_std.clone()
        shift = -self.norm.running_mean * inv_std
        if self.affine == "sub":
            scale, shift = scale * self.norm.weight, shift * self.norm.weight + self.norm.bias
        scale, shift = scale.reshape(c, s), shift.reshape(c, s)
        if self.affine == "all":
            w, b = self.weight.reshape(c, 1), self.bias.reshape(c, 1)
            scale, shift = scale * w, shift * w + b
        rows = num_freq_bins // s
        scale = scale.repeat_interleave(rows, dim=1).reshape(1, c, num_freq_bins, 1)
        shift = shift.repeat_interleave(rows, dim=1).reshape(1, c, num_freq_bins, 1)
        if self.freq_dim == 3:
            scale, shift = scale.transpose(2, 3), shift.transpose(2, 3)
        return FoldedSubSpectralNorm(scale.contiguous(), shift.contiguous()).eval()


class FoldedSubSpectralNorm(nn.Module):
    """Eval-mode SubSpectralNorm as one multiply-add, ``x * scale + shift`` (no reshape at run time)."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def fold_subspectral_norms(model: nn.Module, example_input: torch.Tensor) -> nn.Module:
    """A deep copy of ``model`` in eval mode with every :class:`SubSpectralNorm` replaced by its folded form.

    One forward pass on ``example_input`` records the frequency size each SSN sees; the folded model computes
    the same function in eval mode and exports without the band reshape.
    """
    folded = copy.deepcopy(model).eval()
    freq_sizes: dict[str, int] = {}
    hooks = []
    for name, module in folded.named_modules():
        if isinstance(module, SubSpectralNorm):

            def record(mod, args, _name=name):
                freq_sizes[_name] = args[0].shape[mod.freq_dim]

            hooks.append(module.register_forward_pre_hook(record))
    with torch.no_grad():
        folded(example_input)
    for h in hooks:
        h.remove()
    if "" in freq_sizes:  # the model is itself one SubSpectralNorm
        return folded.fold(freq_sizes[""])
    for name, size in freq_sizes.items():
        parent_name, _, child = name.rpartition(".")
        parent = folded.get_submodule(parent_name) if parent_name else folded
        setattr(parent, child, folded.get_submodule(name).fold(size))
    return folded
