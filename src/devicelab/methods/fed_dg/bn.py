"""The mixing BatchNorm layer of FedFD and the instance feature adapter (IFA) of FedFD-A.

``FedFDBatchNorm2d`` is an ``nn.BatchNorm2d`` with extra forward modes, chosen by the :func:`bn_mode`
context manager (spec ``fed-dg.md`` §2.3, §2.4):

- ``plain``: ordinary BatchNorm (batch statistics and buffer updates in training, buffers in eval).
- ``mix``: FedFD diversification. Local statistics are mixed per channel with the frozen global ones,
  ``mu_mix = u·mu_k + (1−u)·mu_G``, ``sigma_mix = u·sigma_k + (1−u)·sigma_G``, u ~ U(0,1)^C drawn anew per
  layer and call [summary]; buffers are never updated.
- ``ifa``: the adapter predicts alpha per sample and channel from the gap between instance and global
  statistics and normalises with their alpha-mix [reconstruction].
- ``instance``: alpha ≡ 1 (test-time BN with instance statistics, "TTBN").
- ``testbatch``: statistics of the test batch, buffers untouched (transductive "TTBN-batch").

State-dict keys are ``nn.BatchNorm2d``'s plus ``ifa.*``; a plain-BN checkpoint loads unchanged (the adapter
keeps its initial values), and :func:`strip_adapter` gives a state dict that loads into ``nn.BatchNorm2d``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MODES = ("plain", "mix", "ifa", "instance", "testbatch")


def parse_u_dist(spec: str) -> tuple[str, float]:
    """``"uniform"`` | ``"beta:<a>"`` | ``"fixed:<u>"`` -> (kind, parameter); raises on anything else."""
    kind, _, value = spec.partition(":")
    if kind == "uniform" and not value:
        return kind, 0.0
    if kind in ("beta", "fixed") and value:
        try:
            return kind, float(value)
        except ValueError:
            pass
    raise ValueError(f"u_dist={spec!r}: expected 'uniform', 'beta:<a>' or 'fixed:<u>'")


def draw_u(num_channels: int, u_dist: str, rng: np.random.Generator | None) -> torch.Tensor:
    """The per-channel mixing weights u (C,) of one layer and one forward pass."""
    kind, value = parse_u_dist(u_dist)
    if kind == "fixed":
        return torch.full((num_channels,), value)
    if rng is None:
        raise ValueError("mix mode needs a random generator (bn_mode(..., rng=...))")
    u = rng.random(num_channels) if kind == "uniform" else rng.beta(value, value, num_channels)
    return torch.from_numpy(u.astype(np.float32))


class InstanceFeatureAdapter(nn.Module):
    """alpha = sigmoid(MLP(z)) with z = [(mu_I − mu_G)/sigma_G, log sigma_I − log sigma_G]  [reconstruction].

    ``kind="mlp"``: 2C → max(C/4, 8) → C with ReLU, last layer weight 0 and bias −4 (alpha ≈ 0.018 at
    initialisation). ``kind="affine"``: alpha = sigmoid(a ⊙ |mu_I − mu_G| / sigma_G + b), a = 0, b = −4.
    """

    def __init__(self, num_channels: int, kind: str = "mlp"):
        super().__init__()
        if kind not in ("mlp", "affine"):
            raise ValueError(f"ifa={kind!r}: expected 'mlp' or 'affine'")
        self.kind = kind
        if kind == "mlp":
            hidden = max(num_channels // 4, 8)
            self.fc1 = nn.Linear(2 * num_channels, hidden)
            self.fc2 = nn.Linear(hidden, num_channels)
            nn.init.zeros_(self.fc2.weight)
            nn.init.constant_(self.fc2.bias, -4.0)
        else:
            self.a = nn.Parameter(torch.zeros(num_channels))
            self.b = nn.Parameter(torch.full((num_channels,), -4.0))

    def forward(
        self, mu_i: torch.Tensor, sigma_i: torch.Tensor, mu_g: torch.Tensor, sigma_g: torch.Tensor
    ) -> torch.Tensor:  # (B, C) x2, (C,) x2 -> alpha (B, C)
        if self.kind == "affine":
            return torch.sigmoid(self.a * (mu_i - mu_g).abs() / sigma_g + self.b)
        z = torch.cat([(mu_i - mu_g) / sigma_g, torch.log(sigma_i) - torch.log(sigma_g)], dim=1)
        return torch.sigmoid(self.fc2(F.relu(self.fc1(z))))


class FedFDBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d with FedFD's mixing pass and FedFD-A's adapter (modes in the module docstring).

    ``local_stats``: ``"batch"`` (mu_k, sigma_k over (B, H, W)) or ``"instance"`` (per sample over (H, W));
    ``u_dist``: ``"uniform"``, ``"beta:a"`` or ``"fixed:u"``; ``diversify=False`` makes ``mix`` behave like
    batch statistics without buffer updates (``div_layers="first:k"``).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        *,
        ifa: str = "mlp",
        local_stats: str = "batch",
        u_dist: str = "uniform",
        diversify: bool = True,
    ):
        super().__init__(num_features, eps=eps, momentum=momentum)
        if local_stats not in ("batch", "instance"):
            raise ValueError(f"local_stats={local_stats!r}: expected 'batch' or 'instance'")
        parse_u_dist(u_dist)
        self.ifa = InstanceFeatureAdapter(num_features, ifa)
        self.local_stats = local_stats
        self.u_dist = u_dist
        self.diversify = diversify
        self.mode = "plain"
        self.global_stats: tuple[torch.Tensor, torch.Tensor] | None = None  # frozen (mu_G, sigma_G)
        self.rng: np.random.Generator | None = None
        self.alpha_override: float | None = None
        self.last_u: torch.Tensor | None = None
        self.last_alpha: torch.Tensor | None = None  # (B, C) of the last ifa / instance pass (reporting)
        self._register_load_state_dict_pre_hook(_keep_adapter_if_absent, with_module=True)

    # -- statistics ---------------------------------------------------------------------------------------
    def global_mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu_G, sigma_G) from the running buffers: sigma_G = sqrt(running_var + eps)."""
        return self.running_mean, torch.sqrt(self.running_var + self.eps)

    def _affine(self, x_hat: torch.Tensor) -> torch.Tensor:
        return x_hat * self.weight[None, :, None, None] + self.bias[None, :, None, None]

    # -- forward ------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H, W)
        if self.mode == "plain":
            return super().forward(x)
        if self.mode == "testbatch" or (self.mode == "mix" and not self.diversify):
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        if self.mode == "mix":
            return self._forward_mix(x)
        if self.mode in ("ifa", "instance"):
            return self._forward_adapted(x)
        raise ValueError(f"FedFDBatchNorm2d: unknown mode {self.mode!r}; valid modes: {', '.join(MODES)}")

    def _forward_mix(self, x: torch.Tensor) -> torch.Tensor:
        """FedFD: normalise with a random per-channel mix of local and global statistics (spec §2.3)."""
        if self.global_stats is None:
            raise RuntimeError("mix mode needs the frozen global statistics (bn_mode(..., global_stats=...))")
        if self.local_stats == "batch":
            var_k, mu_k = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)  # (C,) each
            var_k, mu_k = var_k[None, :, None], mu_k[None, :, None]  # (1, C, 1)
        else:
            var_k, mu_k = torch.var_mean(x, dim=(2, 3), unbiased=False)  # (B, C) each
            var_k, mu_k = var_k[:, :, None], mu_k[:, :, None]  # (B, C, 1)
        sigma_k = torch.sqrt(var_k + self.eps)
        mu_g, sigma_g = (t[None, :, None] for t in self.global_stats)
        u = draw_u(self.num_features, self.u_dist, self.rng).to(x)[None, :, None]
        self.last_u = u.flatten()
        mu_mix = u * mu_k + (1 - u) * mu_g
        sigma_mix = u * sigma_k + (1 - u) * sigma_g
        # gamma ⊙ (x − mu_mix) / sigma_mix + beta as one scale and shift per (sample,) channel
        scale = self.weight[None, :, None] / sigma_mix
        shift = self.bias[None, :, None] - mu_mix * scale
        b, c = x.shape[:2]
        return torch.addcmul(shift, x.reshape(b, c, -1), scale).reshape(x.shape)

    def _forward_adapted(self, x: torch.Tensor) -> torch.Tensor:
        """FedFD-A: alpha-mix of instance and global statistics, alpha from the adapter (spec §2.4)."""
        mu_i = x.mean(dim=(2, 3))  # (B, C)
        sigma_i = torch.sqrt(x.var(dim=(2, 3), unbiased=False) + self.eps)
        mu_g, sigma_g = self.global_mean_std()
        if self.mode == "instance":
            alpha = torch.ones_like(mu_i)
        elif self.alpha_override is not None:
            alpha = torch.full_like(mu_i, float(self.alpha_override))
        elif x.shape[2] * x.shape[3] < 4:
            alpha = torch.zeros_like(mu_i)  # too few positions for instance statistics
        else:
            alpha = self.ifa(mu_i, sigma_i, mu_g, sigma_g)
        self.last_alpha = alpha.detach()
        mu_a = alpha * mu_i + (1 - alpha) * mu_g
        sigma_a = alpha * sigma_i + (1 - alpha) * sigma_g
        return self._affine((x - mu_a[:, :, None, None]) / sigma_a[:, :, None, None])


def _keep_adapter_if_absent(module: FedFDBatchNorm2d, state_dict, prefix, *args) -> None:
    """A plain-BN checkpoint has no ``ifa.*`` keys: keep the adapter's current (initial) values."""
    if not any(k.startswith(prefix + "ifa.") for k in state_dict):
        for k, v in module.ifa.state_dict().items():
            state_dict[prefix + "ifa." + k] = v


def fedfd_layers(model: nn.Module) -> dict[str, FedFDBatchNorm2d]:
    """The model's ``FedFDBatchNorm2d`` layers by module name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, FedFDBatchNorm2d)}


@torch.no_grad()
def global_statistics(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """A frozen copy of (mu_G, sigma_G) of every FedFD layer, taken at the start of a round (spec §2.2)."""
    return {
        name: tuple(t.detach().clone() for t in m.global_mean_std())
        for name, m in fedfd_layers(model).items()
    }


@contextlib.contextmanager
def bn_mode(
    model: nn.Module,
    mode: str,
    *,
    global_stats: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    rng: np.random.Generator | None = None,
    alpha: float | None = None,
) -> Iterator[nn.Module]:
    """Set every ``FedFDBatchNorm2d`` of ``model`` to ``mode`` inside the block, restoring ``plain`` after.

    ``global_stats`` (from :func:`global_statistics`) and ``rng`` serve ``mix``; ``alpha`` forces the IFA's
    alpha (tests).
    """
    if mode not in MODES:
        raise ValueError(f"unknown BN mode {mode!r}; valid modes: {', '.join(MODES)}")
    layers = fedfd_layers(model)
    if mode == "mix" and global_stats is not None:
        missing = sorted(set(layers) - set(global_stats))
        if missing:
            raise KeyError(f"global statistics missing for layers {missing[:3]}")
    for name, m in layers.items():
        m.mode = mode
        m.rng = rng
        m.alpha_override = alpha
        m.global_stats = global_stats[name] if global_stats is not None else None
    try:
        yield model
    finally:
        for m in layers.values():
            m.mode, m.rng, m.alpha_override, m.global_stats = "plain", None, None, None


def set_default_mode(model: nn.Module, mode: str) -> None:
    """Set a lasting mode (for export: ``ifa`` inference without a context manager)."""
    if mode not in MODES:
        raise ValueError(f"unknown BN mode {mode!r}; valid modes: {', '.join(MODES)}")
    for m in fedfd_layers(model).values():
        m.mode = mode


def is_adapter_key(key: str) -> bool:
    """True for the IFA parameters (``*.ifa.*``)."""
    return ".ifa." in f".{key}"


def strip_adapter(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict without ``*.ifa.*`` keys: loads into the same model built with ``nn.BatchNorm2d``."""
    return {k: v for k, v in state_dict.items() if not is_adapter_key(k)}
