"""ONNX export and parity: atomic files, NaN is a mismatch, non-finite weights are refused."""

import math

import pytest
import torch
from torch import nn

from devicelab.core.onnx import ExportError, check_parity, export_onnx, onnx_parity

pytest.importorskip("onnxruntime")


class NaNAbove(nn.Module):
    """Identity-like model whose output is NaN where the input exceeds 10 (NaN reaches both runtimes)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 10, torch.full_like(x, float("nan")), 2 * x)


def test_export_then_parity_within_tolerance(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    path = export_onnx(model, tmp_path / "m.onnx", torch.randn(2, 4))
    assert path.exists() and not list(tmp_path.glob(".*tmp*"))
    assert onnx_parity(model, path, torch.randn(5, 4)) <= 1e-5  # dynamic batch: 5 rows from a 2-row example


def test_nan_output_is_a_mismatch_not_a_pass(tmp_path):
    path = export_onnx(NaNAbove(), tmp_path / "nan.onnx", torch.randn(2, 3))
    inputs = torch.tensor([[1.0, 20.0, 3.0]])
    assert math.isinf(onnx_parity(NaNAbove(), path, inputs))
    with pytest.raises(RuntimeError, match="differs from PyTorch"):
        check_parity(NaNAbove(), path, inputs, tolerance=1e-4)
    assert not path.exists()  # a failed export leaves no file behind


def test_non_finite_weights_are_refused_by_name(tmp_path):
    model = nn.Sequential(nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(ExportError, match=r"0\.weight holds 1 non-finite"):
        export_onnx(model, tmp_path / "bad.onnx", torch.randn(2, 4))
    assert not (tmp_path / "bad.onnx").exists()
