"""Verification metrics: equal error rate, minimum detection cost, TPR at a fixed FPR, DET points.

Scores are "higher means same identity"; labels are 1 for target (genuine) trials and 0 for non-target
(impostor) trials. The ROC comes from scikit-learn's ``roc_curve`` (every distinct threshold), so the
numbers match any tool built on it. Rates are fractions in [0, 1]; multiply by 100 for percent.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve


def _roc(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(int)
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in length")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    if labels.min(initial=1) == labels.max(initial=0) or not set(np.unique(labels)) <= {0, 1}:
        raise ValueError("labels need both target (1) and non-target (0) trials")
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    return fpr, tpr, thresholds


def eer(scores, labels) -> float:
    """Equal error rate: where the false-acceptance and false-rejection rates cross.

    Interpolated linearly between the two ROC points that bracket the crossing, so a perfectly separable
    set gives 0 and a coin gives about 0.5.
    """
    fpr, tpr, _ = _roc(scores, labels)
    fnr = 1.0 - tpr
    diff = fnr - fpr  # decreasing from 1 (at fpr 0, tpr 0) to -1
    i = int(np.argmax(diff <= 0))
    if i == 0:
        return float(fpr[0])
    d0, d1 = diff[i - 1], diff[i]
    w = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))


def min_dcf(scores, labels, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Normalised minimum detection cost (NIST SRE): the minimum over thresholds of
    ``c_miss * P_miss * p_target + c_fa * P_fa * (1 - p_target)``,
    divided by ``min(c_miss * p_target, c_fa * (1 - p_target))``.
    """
    fpr, tpr, _ = _roc(scores, labels)
    cost = c_miss * (1.0 - tpr) * p_target + c_fa * fpr * (1.0 - p_target)
    return float(cost.min() / min(c_miss * p_target, c_fa * (1.0 - p_target)))


def tpr_at_fpr(scores, labels, fpr_target: float) -> float:
    """The highest TPR among thresholds whose FPR does not exceed ``fpr_target``."""
    fpr, tpr, _ = _roc(scores, labels)
    ok = fpr <= fpr_target
    return float(tpr[ok].max()) if ok.any() else 0.0


def det_points(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """(false-acceptance rate, miss rate) pairs of every threshold, for a DET plot."""
    fpr, tpr, _ = _roc(scores, labels)
    return fpr, 1.0 - tpr
