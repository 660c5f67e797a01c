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


class TinyKeywordModel(nn.Module):
    """Waveform -> LogMel -> a small conv net -> logits: the shape of every exported classifier."""

    def __init__(self):
        super().__init__()
        from devicelab.audio.features import LogMel

        torch.manual_seed(0)
        self.frontend = LogMel(n_mels=16)
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.net(self.frontend(waveform).unsqueeze(1))


def test_int8_keeps_the_front_end_in_float32_and_stays_close(tmp_path):
    import numpy as np
    import onnx
    import onnxruntime as ort

    from devicelab.core.onnx import front_end_nodes, int8_path, quantize_int8

    model = TinyKeywordModel().eval()
    path = export_onnx(model, tmp_path / "m.onnx", 0.1 * torch.randn(2, 4000), input_name="waveform")
    graph = onnx.load(str(path))
    front = front_end_nodes(graph)
    assert front and graph.graph.node[[n.name for n in graph.graph.node].index(front[-1])].op_type == "Log"
    clips = 0.1 * torch.randn(8, 4000, generator=torch.Generator().manual_seed(1))
    feeds = [{"waveform": c[None].numpy()} for c in clips]
    static = quantize_int8(path, int8_path(path), feeds)
    dynamic = quantize_int8(path, tmp_path / "m.dynamic.onnx")
    assert static.name == "m.int8.onnx" and not list(tmp_path.glob(".*"))
    ops = {n.op_type for n in onnx.load(str(static)).graph.node}
    assert "QuantizeLinear" in ops and "Log" in ops
    with torch.no_grad():
        reference = model(clips).numpy()
    for p in (static, dynamic):
        out = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(
            None, {"waveform": clips.numpy()}
        )
        assert np.abs(out[0] - reference).max() < 0.1 * np.abs(reference).max() + 1e-3
