"""Classification metrics and predictions: top-1, per-class and balanced accuracy, all in percent."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int = 200) -> torch.Tensor:
    """Eval-mode class predictions (N,) of ``model`` on ``inputs`` (N, ...), in batches."""
    model.eval()
    out = [model(inputs[i : i + batch_size]).argmax(1) for i in range(0, inputs.shape[0], batch_size)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in percent (NaN without examples)."""
    return 100.0 * float((predictions == labels).float().mean()) if labels.numel() else float("nan")


def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float]:
    """Accuracy per true class in percent (NaN for a class without examples)."""
    out = []
    for c in range(num_classes):
        mask = labels == c
        out.append(100.0 * float((predictions[mask] == c).float().mean()) if mask.any() else float("nan"))
    return out


def balanced_accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Mean per-class recall (%) over the classes present in ``labels``."""
    recalls = [float(np.mean(predictions[labels == k] == k)) for k in np.unique(labels)]
    return 100.0 * float(np.mean(recalls))
