"""Metrics shared by the methods: classification accuracies; EER, minDCF, TPR@FPR, event F1 go beside them."""

from devicelab.metrics.classification import accuracy, balanced_accuracy, per_class_accuracy, predict

__all__ = ["accuracy", "balanced_accuracy", "per_class_accuracy", "predict"]
