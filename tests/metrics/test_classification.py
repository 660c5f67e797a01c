"""Classification metrics in percent: top-1, per class (NaN for an absent class), balanced; predictions."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from devicelab.metrics import accuracy, balanced_accuracy, per_class_accuracy, predict


def test_accuracies():
    labels = torch.tensor([0, 0, 0, 1])
    preds = torch.tensor([0, 0, 1, 1])
    assert accuracy(preds, labels) == 75.0
    per_class = per_class_accuracy(preds, labels, num_classes=3)
    assert per_class[:2] == pytest.approx([100.0 * 2 / 3, 100.0]) and math.isnan(per_class[2])
    assert balanced_accuracy(labels.numpy(), preds.numpy()) == pytest.approx((100.0 * 2 / 3 + 100.0) / 2)
    assert math.isnan(accuracy(torch.zeros(0), torch.zeros(0)))


def test_predict_in_batches_in_eval_mode():
    model = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.9))
    x = torch.randn(7, 3)
    expected = model.eval()(x).argmax(1)
    model.train()
    assert torch.equal(predict(model, x, batch_size=3), expected)
    assert predict(model, torch.zeros(0, 3)).numel() == 0
    assert np.array_equal(predict(model, x).numpy(), expected.numpy())
