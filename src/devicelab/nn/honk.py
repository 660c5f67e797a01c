"""res8 and res15 of Tang & Lin ("Deep Residual Learning for Small-Footprint Keyword Spotting", ICASSP 2018),
with an optional SubSpectralNorm switch as in the SSN paper's KWS experiments (arXiv 2103.13620).

Layer for layer as ``castorini/honk`` ``utils/model.py`` (``SpeechResModel``): conv0 3x3 (45 maps, no bias) ->
ReLU [-> AvgPool for res8]; then per layer 3x3 conv -> ReLU -> (residual add every second layer) ->
BatchNorm2d(affine=False); global mean; Linear(45 -> classes). Input (N, 1, T, F), frequency last, so SSN
runs with ``freq_dim=3``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from devicelab.nn.ssn import Affine, SubSpectralNorm

HonkNorm = Literal["bn", "ssn"]
UnevenBands = Literal["error", "split"]

HONK_CONFIGS = {
    "res8": {"n_layers": 6, "n_maps": 45, "pool": (4, 3), "dilation": False},
    "res15": {"n_layers": 13, "n_maps": 45, "pool": None, "dilation": True},
}


class SplitBandNorm(nn.Module):
    """BatchNorm over contiguous, possibly unequal frequency bands of (N, C, T, F) [reconstruction].

    For F not divisible by S (res8: F = 13, S = 4): bands of sizes ceil(F/S) for the first F mod S bands,
    then floor(F/S) (13 -> 4, 3, 3, 3); each band has its own statistics and affine pair per channel.
    """

    def __init__(self, num_features: int, spec_groups: int, num_freq_bins: int, affine: Affine = "sub"):
        super().__init__()
        if affine == "all":
            raise ValueError("uneven_bands='split' supports affine 'sub' or 'none'")
        base, extra = divmod(num_freq_bins, spec_groups)
        self.band_sizes = [base + 1] * extra + [base] * (spec_groups - extra)
        self.norms = nn.ModuleList(
            nn.BatchNorm2d(num_features, affine=affine == "sub") for _ in self.band_sizes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bands = torch.split(x, self.band_sizes, dim=3)
        return torch.cat([norm(band) for norm, band in zip(self.norms, bands)], dim=3)


class HonkResNet(nn.Module):
    """res8 / res15 keyword spotter on MFCC input (N, 1, T=101, F=40) -> logits (N, num_classes).

    norm="ssn" replaces every ``BatchNorm2d(affine=False)`` (``ssn_sites: all`` [reconstruction]) with
    ``SubSpectralNorm(45, ssn_groups, ssn_affine, freq_dim=3)``; the SSN paper uses S = 4, affine "sub".
    res8 pools F = 40 to 13, not divisible by 4: ``uneven_bands="error"`` (default) raises,
    ``"split"`` uses contiguous bands 4, 3, 3, 3 [reconstruction].
    """

    def __init__(
        self,
        variant: Literal["res8", "res15"] = "res15",
        num_classes: int = 12,
        norm: HonkNorm = "bn",
        ssn_groups: int = 4,
        ssn_affine: Affine = "sub",
        uneven_bands: UnevenBands = "error",
        num_freq_bins: int = 40,
    ):
        super().__init__()
        if variant not in HONK_CONFIGS:
            raise ValueError(f"variant={variant!r}: expected one of {', '.join(HONK_CONFIGS)}")
        if norm not in ("bn", "ssn"):
            raise ValueError(f"norm={norm!r}: expected 'bn' or 'ssn'")
        cfg = HONK_CONFIGS[variant]
        self.variant, self.n_layers = variant, cfg["n_layers"]
        n_maps = cfg["n_maps"]
        self.conv0 = nn.Conv2d(1, n_maps, 3, padding=1, bias=False)
        self.pool = nn.AvgPool2d(cfg["pool"]) if cfg["pool"] else nn.Identity()
        freq_after_pool = num_freq_bins // cfg["pool"][1] if cfg["pool"] else num_freq_bins
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(self.n_layers):
            d = 2 ** (i // 3) if cfg["dilation"] else 1
            self.convs.append(nn.Conv2d(n_maps, n_maps, 3, padding=d, dilation=d, bias=False))
            if norm == "bn":
                self.norms.append(nn.BatchNorm2d(n_maps, affine=False))
            elif freq_after_pool % ssn_groups == 0:
                self.norms.append(SubSpectralNorm(n_maps, ssn_groups, affine=ssn_affine, freq_dim=3))
            elif uneven_bands == "split":
                self.norms.append(SplitBandNorm(n_maps, ssn_groups, freq_after_pool, ssn_affine))
            else:
                raise ValueError(
                    f"{variant}: frequency size F={freq_after_pool} is not divisible by "
                    f"spec_groups S={ssn_groups}; set uneven_bands='split' to allow unequal bands"
                )
        self.output = nn.Linear(n_maps, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, T, F) -> pooled embedding (N, 45)."""
        x = self.pool(torch.relu(self.conv0(x)))  # (N, 45, T', F')
        residual = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms), start=1):
            y = torch.relu(conv(x))
            if i % 2 == 0:
                y = y + residual
                residual = y
            x = norm(y)
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.forward_features(x))
