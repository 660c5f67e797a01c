"""Metrics shared by the methods: classification accuracies; verification (EER, minDCF, TPR@FPR)."""

from devicelab.metrics.classification import accuracy, balanced_accuracy, per_class_accuracy, predict
from devicelab.metrics.verification import det_points, eer, min_dcf, tpr_at_fpr

__all__ = [
    "accuracy",
    "balanced_accuracy",
    "det_points",
    "eer",
    "min_dcf",
    "per_class_accuracy",
    "predict",
    "tpr_at_fpr",
]
