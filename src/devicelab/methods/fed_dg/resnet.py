"""ResNet-18 with an injectable norm layer and torchvision's module names (for the full profile).

Names follow torchvision (``conv1``, ``bn1``, ``layer1.0.conv1``, ..., ``fc``), so an ImageNet checkpoint
converted to safetensors loads with :func:`load_pretrained` (the classifier is skipped when its shape
differs). No torchvision dependency.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3×3 convs with a residual connection (a 1×1 projection when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: Callable[[int], nn.Module]):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = norm(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), norm(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2016): ``forward_features`` gives the pooled (B, 512) features."""

    def __init__(
        self,
        num_classes: int = 1000,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        widths: tuple[int, ...] = (64, 128, 256, 512),
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = norm_layer(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = widths[0]
        for i, c in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(
                self,
                f"layer{i + 1}",
                nn.Sequential(BasicBlock(c_in, c, stride, norm_layer), BasicBlock(c, c, 1, norm_layer)),
            )
            c_in = c
        self.num_features = widths[-1]
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 512)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x.mean(dim=(2, 3))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def load_pretrained(model: nn.Module, path: str | Path) -> list[str]:
    """Load a user-supplied safetensors initialisation; returns the keys left at their initial values."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"initial weights not found: {path}")
    state = load_file(str(path))
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(
            f"{path}: no tensor matches the ResNet-18 names and shapes (torchvision naming expected)"
        )
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))
