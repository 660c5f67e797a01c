"""The two-stage DFT that LogMel exports: same log-mel as the eager path, no STFT/DFT op in the graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from devicelab.audio.factored_dft import choose_factoring, stage2_weights
from devicelab.audio.features import LogMel

SETTINGS = [
    {},  # BC-ResNet: 512 / 160
    {"n_fft": 1024, "win_length": 640, "hop_length": 320, "power": 1.0, "log_offset": 1e-10},  # ASC
    {"win_length": 400},  # SV
    {"n_fft": 480, "win_length": 480, "mel_scale": "slaney", "mel_norm": "slaney", "center": False},
]


def _stft_log_mel(front: LogMel, x: torch.Tensor) -> torch.Tensor:
    """The reference: ``torch.stft`` magnitude, as LogMel computed it before."""
    spec = torch.stft(
        x,
        front.n_fft,
        front.hop_length,
        front.n_fft,
        front.window,
        center=front.center,
        pad_mode=front.pad_mode,
        return_complex=True,
    )
    return torch.log(front.mel_fbank @ spec.abs().pow(front.power) + front.log_offset)


@pytest.mark.parametrize("kwargs", SETTINGS)
def test_eager_and_factored_forms_equal_stft(kwargs):
    front = LogMel(**kwargs).eval()
    x = 0.1 * torch.randn(20, 16000, generator=torch.Generator().manual_seed(0))  # > CHUNK clips
    reference = _stft_log_mel(front, x)
    assert torch.allclose(front(x), reference, atol=1e-4)
    padded = F.pad(x.unsqueeze(1), (front.n_fft // 2,) * 2, mode="reflect").squeeze(1) if front.center else x
    factored = torch.log(front._factored_mel(padded) + front.log_offset)
    assert torch.allclose(factored, reference, atol=1e-4)


def test_every_bin_appears_once_and_cost_falls_eightfold():
    f = choose_factoring(512, 160)
    assert (f.n1, f.n2) == (32, 16)
    _, bins = stage2_weights(f)
    assert sorted(bins[bins >= 0].tolist()) == list(range(257))
    assert f.macs_per_frame * 7 < 512 * 514  # direct real DFT: n_fft × (n_fft + 2) MACs per frame
    assert choose_factoring(512, 161) is None  # no common factor with the hop: eager form exported


def test_exported_logmel_has_no_stft_and_matches_eager(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from devicelab.core.onnx import export_onnx

    front = LogMel().eval()
    path = export_onnx(front, tmp_path / "logmel.onnx", 0.1 * torch.randn(2, 16000), output_name="logmel")
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert not ops & {"STFT", "DFT"}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = 0.1 * torch.randn(3, 16000, generator=torch.Generator().manual_seed(1))
    out = session.run(None, {"input": x.numpy()})[0]
    assert np.abs(out - front(x).numpy()).max() < 1e-3
