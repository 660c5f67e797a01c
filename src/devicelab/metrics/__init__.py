"""Metrics shared by the methods: classification accuracies; verification (EER, minDCF, TPR@FPR); sound
event detection (event/segment F1 via sed_eval, PSDS and intersection F1 via sed_scores_eval)."""

from devicelab.metrics.classification import accuracy, balanced_accuracy, per_class_accuracy, predict
from devicelab.metrics.sed import event_based_f1, psds, segment_based_f1
from devicelab.metrics.verification import det_points, eer, min_dcf, tpr_at_fpr

__all__ = [
    "accuracy",
    "balanced_accuracy",
    "det_points",
    "eer",
    "event_based_f1",
    "min_dcf",
    "per_class_accuracy",
    "predict",
    "psds",
    "segment_based_f1",
    "tpr_at_fpr",
]
