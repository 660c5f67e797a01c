"""Online evaluation: every sample is predicted once, before its own batch's update (spec §3.6, §7)."""

from __future__ import annotations

import numpy as np
import torch

from devicelab.methods.tta_lsa.streams import batches
from devicelab.methods.tta_lsa.tta import TTAMethod
from devicelab.metrics import balanced_accuracy


def run_stream(
    method: TTAMethod,
    images: torch.Tensor,
    labels: np.ndarray,
    batch_size: int,
    true_prior: np.ndarray | None = None,
    reset: bool = True,
) -> dict[str, float]:
    """Feed one domain's stream through ``method`` batch by batch; online accuracy, balanced accuracy and, for
    heads that estimate the prior, the end-of-domain ‖π̂ − π_t‖₁.

    images: (N, 3, H, W) in stream order; labels: (N,).
    """
    if reset:
        method.reset()
    predictions = []
    for idx in batches(np.arange(len(labels)), batch_size):
        logits = method(images[idx])  # pre-update predictions of this batch
        predictions.append(logits.argmax(dim=1).cpu().numpy())
    pred = np.concatenate(predictions)
    result = {"acc": 100.0 * float(np.mean(pred == labels)), "balanced_acc": balanced_accuracy(labels, pred)}
    estimator = getattr(method.head, "estimator", None)
    if estimator is not None and true_prior is not None:
        result["prior_l1"] = float(np.abs(estimator.prior.cpu().numpy() - true_prior).sum())
    return result
